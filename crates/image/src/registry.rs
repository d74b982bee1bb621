//! A small distribution-API client: pull and push images by reference.
//!
//! Plain HTTP only for now, and only to loopback registries (`localhost`, `127.0.0.1`,
//! `[::1]`): TLS and token auth come later. Every blob is verified against its digest while
//! it is written to the store, as with archives.

use std::collections::BTreeMap;
use std::time::Duration;

use ureq::Agent;

use crate::digest::Digest;
use crate::error::{Error, Result};
use crate::images::{ImageStore, Loaded};
use crate::reference;
use crate::spec::{self, Descriptor, Index, Manifest};

const ACCEPT: &str = "application/vnd.oci.image.manifest.v1+json, \
application/vnd.oci.image.index.v1+json, \
application/vnd.docker.distribution.manifest.v2+json, \
application/vnd.docker.distribution.manifest.list.v2+json";

/// `host[:port]/repository` plus a tag or digest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteRef {
    pub host: String,
    pub repository: String,
    /// A tag, or a digest (`sha256:...`).
    pub reference: String,
}

impl RemoteRef {
    pub fn parse(r: &str) -> Result<RemoteRef> {
        let bad = || Error::InvalidReference(r.to_string());
        let (name, reference) = match r.split_once('@') {
            Some((n, d)) => {
                let d: Digest = d.parse()?;
                (n.to_string(), d.to_string())
            }
            None => {
                let full = reference::normalize_tag(r)?;
                let (n, t) = reference::split_tag(&full);
                (n.to_string(), t.to_string())
            }
        };
        let (first, rest) = name.split_once('/').unwrap_or(("", name.as_str()));
        if !(first.contains('.') || first.contains(':') || first == "localhost") {
            return Err(Error::Registry {
                reference: r.to_string(),
                reason: "name a registry host (e.g. 127.0.0.1:5000/name:tag); the default \
                         registry needs TLS, which is not built in yet"
                    .into(),
            });
        }
        if rest.is_empty() {
            return Err(bad());
        }
        Ok(RemoteRef {
            host: first.to_string(),
            repository: rest.to_string(),
            reference,
        })
    }

    fn is_loopback(&self) -> bool {
        let h = self
            .host
            .rsplit_once(':')
            .map_or(self.host.as_str(), |(h, p)| {
                if p.bytes().all(|b| b.is_ascii_digit()) {
                    h
                } else {
                    self.host.as_str()
                }
            });
        h == "localhost" || h.starts_with("127.") || h == "[::1]"
    }

    fn url(&self, what: &str) -> String {
        format!("http://{}/v2/{}/{what}", self.host, self.repository)
    }
}

struct Client {
    agent: Agent,
    r: RemoteRef,
    text: String,
}

impl Client {
    fn new(text: &str) -> Result<Client> {
        let r = RemoteRef::parse(text)?;
        if !r.is_loopback() {
            return Err(Error::Registry {
                reference: text.to_string(),
                reason: "only plain-HTTP registries on this host (localhost, 127.0.0.1) are \
                         supported so far"
                    .into(),
            });
        }
        let agent: Agent = Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(600)))
            .build()
            .into();
        Ok(Client {
            agent,
            r,
            text: text.to_string(),
        })
    }

    fn err(&self, reason: impl Into<String>) -> Error {
        Error::Registry {
            reference: self.text.clone(),
            reason: reason.into(),
        }
    }

    fn check(&self, what: &str, resp: &ureq::http::Response<ureq::Body>, ok: &[u16]) -> Result<()> {
        let s = resp.status().as_u16();
        if ok.contains(&s) {
            return Ok(());
        }
        Err(self.err(match s {
            401 | 403 => format!("{what}: registry wants authentication (not supported yet)"),
            404 => format!("{what}: not found"),
            s => format!("{what}: HTTP {s}"),
        }))
    }

    fn get_manifest(&self, reference: &str) -> Result<(Vec<u8>, String)> {
        let what = format!("manifest {reference}");
        let mut resp = self
            .agent
            .get(&self.r.url(&format!("manifests/{reference}")))
            .header("Accept", ACCEPT)
            .call()
            .map_err(|e| self.err(format!("{what}: {e}")))?;
        self.check(&what, &resp, &[200])?;
        let media = resp
            .headers()
            .get("Content-Type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string();
        let body = resp
            .body_mut()
            .with_config()
            .limit(8 << 20)
            .read_to_vec()
            .map_err(|e| self.err(format!("{what}: {e}")))?;
        Ok((body, media))
    }

    fn fetch_blob(&self, store: &ImageStore, d: &Descriptor) -> Result<()> {
        if store.blobs.contains(&d.digest) {
            return Ok(());
        }
        let what = format!("blob {}", d.digest);
        let mut resp = self
            .agent
            .get(&self.r.url(&format!("blobs/{}", d.digest)))
            .call()
            .map_err(|e| self.err(format!("{what}: {e}")))?;
        self.check(&what, &resp, &[200])?;
        let mut reader = resp.body_mut().with_config().limit(u64::MAX).reader();
        store
            .blobs
            .put(&mut reader, Some(&d.digest), Some(d.size))
            .map(drop)
    }

    fn has_blob(&self, d: &Digest) -> Result<bool> {
        let resp = self
            .agent
            .head(&self.r.url(&format!("blobs/{d}")))
            .call()
            .map_err(|e| self.err(format!("blob {d}: {e}")))?;
        Ok(resp.status().as_u16() == 200)
    }

    fn push_blob(&self, store: &ImageStore, d: &Digest) -> Result<bool> {
        if self.has_blob(d)? {
            return Ok(false);
        }
        let what = format!("upload {d}");
        let resp = self
            .agent
            .post(&self.r.url("blobs/uploads/"))
            .send_empty()
            .map_err(|e| self.err(format!("{what}: {e}")))?;
        self.check(&what, &resp, &[202])?;
        let loc = resp
            .headers()
            .get("Location")
            .and_then(|v| v.to_str().ok())
            .ok_or_else(|| self.err(format!("{what}: no upload location")))?;
        let mut url = if loc.starts_with('/') {
            format!("http://{}{loc}", self.r.host)
        } else {
            loc.to_string()
        };
        url.push(if url.contains('?') { '&' } else { '?' });
        url.push_str(&format!("digest={d}"));
        let file = store.blobs.open_blob(d)?;
        let resp = self
            .agent
            .put(&url)
            .header("Content-Type", "application/octet-stream")
            .send(file)
            .map_err(|e| self.err(format!("{what}: {e}")))?;
        self.check(&what, &resp, &[201])?;
        Ok(true)
    }
}

impl ImageStore {
    /// Pull `reference` (`host:port/name[:tag|@digest]`) into the store and tag it.
    /// `progress` hears one line per step.
    pub fn pull(&mut self, reference: &str, progress: &mut dyn FnMut(&str)) -> Result<Loaded> {
        let c = Client::new(reference)?;
        let _l = self.lock()?;
        let res = self.pull_locked(&c, progress);
        let gc = self.gc();
        let loaded = res?;
        gc?;
        Ok(loaded)
    }

    fn pull_locked(&mut self, c: &Client, progress: &mut dyn FnMut(&str)) -> Result<Loaded> {
        let (mut body, mut media) = c.get_manifest(&c.r.reference)?;
        if let Ok(d) = c.r.reference.parse::<Digest>() {
            if Digest::of(&body) != d {
                return Err(Error::DigestMismatch {
                    expected: d,
                    actual: Digest::of(&body),
                });
            }
        }
        if spec::is_index(&media) || media.is_empty() && body_is_index(&body) {
            let idx: Index = spec::parse(&body, format!("{}: index", c.text))?;
            let pick = idx
                .manifests
                .iter()
                .find(|m| {
                    m.platform
                        .as_ref()
                        .is_some_and(|p| p.os == "linux" && p.architecture == "amd64")
                })
                .or_else(|| idx.manifests.first())
                .ok_or_else(|| c.err("index lists no manifest"))?
                .clone();
            self.blobs.put_bytes(&body)?;
            (body, media) = c.get_manifest(pick.digest.as_str())?;
            if Digest::of(&body) != pick.digest {
                return Err(Error::DigestMismatch {
                    expected: pick.digest,
                    actual: Digest::of(&body),
                });
            }
        }
        let _ = media;
        let manifest: Manifest = spec::parse(&body, format!("{}: manifest", c.text))?;
        let md = self.blobs.put_bytes(&body)?;
        progress(&format!("manifest {md}"));
        c.fetch_blob(self, &manifest.config)?;
        for l in &manifest.layers {
            let had = self.blobs.contains(&l.digest);
            c.fetch_blob(self, l)?;
            progress(&format!(
                "layer {} {}",
                l.digest,
                if had { "already here" } else { "pulled" }
            ));
        }
        let tag = match c.r.reference.parse::<Digest>() {
            Ok(_) => Vec::new(),
            Err(_) => vec![format!("{}/{}:{}", c.r.host, c.r.repository, c.r.reference)],
        };
        let loaded = self.register(&md, &tag)?;
        self.write_index()?;
        Ok(loaded)
    }

    /// Push the local image named `reference` to the registry its name points at.
    /// Returns the manifest digest.
    pub fn push(&self, reference: &str, progress: &mut dyn FnMut(&str)) -> Result<Digest> {
        let c = Client::new(reference)?;
        let (m, _) = self.resolve(reference)?;
        let manifest = self.read_manifest(&m)?;
        for l in &manifest.layers {
            let sent = c.push_blob(self, &l.digest)?;
            progress(&format!(
                "layer {} {}",
                l.digest,
                if sent { "pushed" } else { "already there" }
            ));
        }
        c.push_blob(self, &manifest.config.digest)?;
        let body = self.blobs.read_blob(&m)?;
        let media = manifest
            .media_type
            .clone()
            .unwrap_or_else(|| spec::MEDIA_OCI_MANIFEST.to_string());
        let what = format!("manifest {m}");
        let resp = c
            .agent
            .put(&c.r.url(&format!("manifests/{}", c.r.reference)))
            .header("Content-Type", &media)
            .send(&body[..])
            .map_err(|e| c.err(format!("{what}: {e}")))?;
        c.check(&what, &resp, &[201])?;
        progress(&format!("manifest {m} pushed"));
        Ok(m)
    }
}

fn body_is_index(body: &[u8]) -> bool {
    serde_json::from_slice::<BTreeMap<String, serde_json::Value>>(body)
        .map(|v| v.contains_key("manifests"))
        .unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remote_refs() {
        let r = RemoteRef::parse("127.0.0.1:5000/a/b:1").expect("parse");
        assert_eq!(
            (r.host.as_str(), r.repository.as_str(), r.reference.as_str()),
            ("127.0.0.1:5000", "a/b", "1")
        );
        let r = RemoteRef::parse("localhost/x").expect("parse");
        assert_eq!(r.reference, "latest");
        assert!(r.is_loopback());
        assert!(RemoteRef::parse("busybox").is_err());
        assert!(!RemoteRef::parse("example.com/x")
            .expect("parse")
            .is_loopback());
    }
}
