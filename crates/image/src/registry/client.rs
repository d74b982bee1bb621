//! One registry repository over the distribution API: finding the endpoint (https, or
//! http where allowed), authenticated requests, manifests and blobs.

use std::io::Read;
use std::sync::atomic::AtomicBool;

use ureq::http::Response;
use ureq::{Agent, Body};

use super::auth::{Auth, Challenge};
use super::credentials::Credentials;
use super::progress::ProgressFn;
use super::remote::RemoteRef;
use super::tls::{self, TlsVerify};
use super::transfer::ProgressReader;
use super::RegistryOptions;
use crate::digest::Digest;
use crate::error::{Error, Result};
use crate::spec::Descriptor;
use crate::store::BlobStore;

const ACCEPT: &str = "application/vnd.oci.image.manifest.v1+json, \
application/vnd.oci.image.index.v1+json, \
application/vnd.docker.distribution.manifest.v2+json, \
application/vnd.docker.distribution.manifest.list.v2+json";

/// Manifests and indexes are small; a registry sending more is broken or hostile.
const MAX_MANIFEST: u64 = 8 << 20;

/// What the operation needs from the registry (the token scope).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Access {
    Pull,
    Push,
    Login,
}

/// A connection to one repository of one registry.
pub(crate) struct Client {
    agent: Agent,
    pub(crate) r: RemoteRef,
    /// `https://host:port` or `http://host:port`.
    base: String,
    auth: Auth,
    scope: String,
}

/// How a blob got into the registry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Uploaded {
    Sent,
    Mounted,
}

type Call<'a> =
    dyn Fn(&Agent, Option<&str>) -> std::result::Result<Response<Body>, ureq::Error> + 'a;

impl Client {
    /// Find the registry's endpoint and its authentication challenge (`GET /v2/`).
    pub(crate) fn connect(
        r: &RemoteRef,
        opts: &RegistryOptions,
        credentials: Option<Credentials>,
        access: Access,
    ) -> Result<Client> {
        let agent = tls::agent(&r.host, opts.tls_verify, opts.cert_dir.as_deref())?;
        let insecure_ok = match opts.tls_verify {
            TlsVerify::Disabled => true,
            TlsVerify::Default => r.is_loopback(),
            TlsVerify::Required => false,
        };
        let schemes: &[&str] = if insecure_ok {
            &["https", "http"]
        } else {
            &["https"]
        };
        let mut failures = Vec::new();
        for scheme in schemes {
            let base = format!("{scheme}://{}", r.api_host());
            match ping(&agent, &base) {
                Ok(challenge) => {
                    let auth = Auth::new(&r.host, credentials);
                    auth.set_challenge(challenge);
                    let actions = match access {
                        Access::Pull => "pull",
                        Access::Push => "pull,push",
                        Access::Login => "",
                    };
                    return Ok(Client {
                        agent,
                        r: r.clone(),
                        base,
                        auth,
                        scope: format!("repository:{}:{actions}", r.repository),
                    });
                }
                Err(e) => failures.push(format!("{scheme}: {e}")),
            }
        }
        let hint = if insecure_ok {
            ""
        } else {
            " (for a registry without a trusted certificate: --cert-dir with its CA, or \
             --tls-verify=false)"
        };
        Err(Error::Registry {
            reference: r.host.clone(),
            reason: format!("not reachable: {}{hint}", failures.join("; ")),
        })
    }

    fn err(&self, reason: impl Into<String>) -> Error {
        Error::Registry {
            reference: self.r.to_string(),
            reason: reason.into(),
        }
    }

    /// `<base>/v2/<repository>/<path>`.
    fn url(&self, path: &str) -> String {
        format!("{}/v2/{}/{path}", self.base, self.r.repository)
    }

    /// Absolute URL of a `Location` header.
    fn absolute(&self, location: &str) -> String {
        if location.starts_with('/') {
            format!("{}{location}", self.base)
        } else {
            location.to_string()
        }
    }

    /// Send with authentication; on 401 take the new challenge, get a fresh token, retry
    /// once. `call` builds the whole request each time (a body is re-opened, not replayed).
    fn send(&self, what: &str, call: &Call<'_>) -> Result<Response<Body>> {
        let header = self.auth.header(&self.agent, &self.scope, false)?;
        let resp =
            call(&self.agent, header.as_deref()).map_err(|e| self.err(format!("{what}: {e}")))?;
        if resp.status().as_u16() != 401 {
            return Ok(resp);
        }
        let fresh = challenge_of(&resp);
        if fresh.is_some() {
            self.auth.set_challenge(fresh);
        }
        let retry = self.auth.header(&self.agent, &self.scope, true)?;
        let bearer = matches!(self.auth.challenge(), Some(Challenge::Bearer { .. }));
        if retry.is_none() || (retry == header && !bearer) {
            return Err(self.unauthorized(what, resp));
        }
        let resp =
            call(&self.agent, retry.as_deref()).map_err(|e| self.err(format!("{what}: {e}")))?;
        if resp.status().as_u16() == 401 {
            return Err(self.unauthorized(what, resp));
        }
        Ok(resp)
    }

    fn unauthorized(&self, what: &str, resp: Response<Body>) -> Error {
        let detail = error_detail(resp);
        Error::Unauthorized {
            registry: self.r.host.clone(),
            reason: if self.auth.has_credentials() {
                format!("{what}: the registry refused the user name and password{detail}")
            } else {
                format!("{what}: the registry wants a user name and password (berth login, or --creds){detail}")
            },
        }
    }

    /// An error for an unexpected status.
    fn status_error(&self, what: &str, resp: Response<Body>) -> Error {
        let status = resp.status();
        let detail = error_detail(resp);
        match status.as_u16() {
            403 => Error::Unauthorized {
                registry: self.r.host.clone(),
                reason: format!("{what}: 403 Forbidden: access denied{detail}"),
            },
            s => self.err(format!(
                "{what}: HTTP {s} {}{detail}",
                status.canonical_reason().unwrap_or("")
            )),
        }
    }

    /// `berth login`: are the credentials good?
    pub(crate) fn verify_login(&self) -> Result<()> {
        if self.auth.verify(&self.agent)? {
            return Ok(());
        }
        let url = format!("{}/v2/", self.base);
        let resp = self.send("login", &|a, h| with_auth(a.get(&url), h).call())?;
        match resp.status().as_u16() {
            200 => Ok(()),
            _ => Err(self.status_error("login", resp)),
        }
    }

    /// A manifest or index: its bytes and media type. Verified against the digest when
    /// `reference` is one, or against the registry's `Docker-Content-Digest`.
    pub(crate) fn get_manifest(&self, reference: &str) -> Result<(Vec<u8>, String)> {
        let what = format!("manifest {reference}");
        let url = self.url(&format!("manifests/{reference}"));
        let mut resp = self.send(&what, &|a, h| {
            with_auth(a.get(&url).header("Accept", ACCEPT), h).call()
        })?;
        match resp.status().as_u16() {
            200 => {}
            404 => {
                return Err(Error::ManifestUnknown {
                    reference: self.r.with_reference(reference).to_string(),
                })
            }
            _ => return Err(self.status_error(&what, resp)),
        }
        let header = |n: &str| {
            resp.headers()
                .get(n)
                .and_then(|v| v.to_str().ok())
                .map(|s| s.split(';').next().unwrap_or(s).trim().to_string())
        };
        let media = header("Content-Type").unwrap_or_default();
        let claimed = header("Docker-Content-Digest");
        let body = resp
            .body_mut()
            .with_config()
            .limit(MAX_MANIFEST)
            .read_to_vec()
            .map_err(|e| self.err(format!("{what}: {e}")))?;
        let actual = Digest::of(&body);
        let expected = match reference.parse::<Digest>() {
            Ok(d) => Some(d),
            Err(_) => claimed.and_then(|c| c.parse().ok()),
        };
        if let Some(expected) = expected {
            if expected != actual {
                return Err(Error::DigestMismatch { expected, actual });
            }
        }
        Ok((body, media))
    }

    /// Download a blob into the store (verified by the store against digest and size).
    pub(crate) fn download(
        &self,
        blobs: &BlobStore,
        d: &Descriptor,
        progress: Option<ProgressFn<'_>>,
        cancel: &AtomicBool,
    ) -> Result<()> {
        let what = format!("blob {}", d.digest);
        let url = self.url(&format!("blobs/{}", d.digest));
        let mut resp = self.send(&what, &|a, h| with_auth(a.get(&url), h).call())?;
        match resp.status().as_u16() {
            200 => {}
            404 => return Err(self.err(format!("{what}: blob unknown to the registry"))),
            _ => return Err(self.status_error(&what, resp)),
        }
        // One byte more than promised is enough to know the size is wrong.
        let body = resp
            .body_mut()
            .with_config()
            .limit(u64::MAX)
            .reader()
            .take(d.size.saturating_add(1));
        let quiet: ProgressFn<'_> = &|_| {};
        let mut reader =
            ProgressReader::new(body, &d.digest, d.size, progress.unwrap_or(quiet), cancel);
        match blobs.put(&mut reader, Some(&d.digest), Some(d.size)) {
            Ok(_) => Ok(()),
            // The store names a failed read by the digest: it was the connection.
            Err(Error::Io { path, source }) if path.as_os_str() == d.digest.as_str() => Err(self
                .err(format!(
                    "{what}: download broke off after {} of {} bytes: {source}",
                    reader.done(),
                    d.size
                ))),
            Err(e) => Err(e),
        }
    }

    pub(crate) fn has_blob(&self, d: &Digest) -> Result<bool> {
        let what = format!("blob {d}");
        let url = self.url(&format!("blobs/{d}"));
        let resp = self.send(&what, &|a, h| with_auth(a.head(&url), h).call())?;
        match resp.status().as_u16() {
            200 => Ok(true),
            404 => Ok(false),
            _ => Err(self.status_error(&what, resp)),
        }
    }

    /// Also ask for pull access to `repository` (the source of cross-repository mounts).
    /// Before the client is shared.
    pub(crate) fn also_pull_from(&mut self, repository: &str) {
        self.scope
            .push_str(&format!(" repository:{repository}:pull"));
    }

    /// Put a blob in the registry: mounted from `mount_from` (another repository of the
    /// same registry that has it) when the registry agrees, else a monolithic upload (POST,
    /// then one PUT streamed from the stored file).
    pub(crate) fn upload(
        &self,
        blobs: &BlobStore,
        d: &Digest,
        mount_from: Option<&str>,
        progress: Option<ProgressFn<'_>>,
        cancel: &AtomicBool,
    ) -> Result<Uploaded> {
        let what = format!("upload {d}");
        let mut start = self.url("blobs/uploads/");
        if let Some(from) = mount_from {
            start.push_str(&format!("?mount={d}&from={from}"));
        }
        let resp = self.send(&what, &|a, h| with_auth(a.post(&start), h).send_empty())?;
        match resp.status().as_u16() {
            201 if mount_from.is_some() => return Ok(Uploaded::Mounted),
            // 202: an upload session (also what a registry that won't mount answers).
            202 => {}
            _ => return Err(self.status_error(&what, resp)),
        }
        let location = resp
            .headers()
            .get("Location")
            .and_then(|v| v.to_str().ok())
            .ok_or_else(|| self.err(format!("{what}: the registry gave no upload location")))?;
        let mut url = self.absolute(location);
        url.push(if url.contains('?') { '&' } else { '?' });
        url.push_str(&format!("digest={d}"));
        let size = blobs.size(d)?;
        let quiet: ProgressFn<'_> = &|_| {};
        let progress = progress.unwrap_or(quiet);
        // Credentials go to the registry only, not to an upload location elsewhere.
        let same_host = url.starts_with(&format!("{}/", self.base));
        let resp = self.send(&what, &|a, h| {
            let h = h.filter(|_| same_host);
            let file = blobs
                .open_blob(d)
                .map_err(|e| ureq::Error::Io(std::io::Error::other(e.to_string())))?;
            let mut body = ProgressReader::new(file, d, size, progress, cancel);
            with_auth(
                a.put(&url)
                    .header("Content-Type", "application/octet-stream")
                    .header("Content-Length", size.to_string()),
                h,
            )
            .send(ureq::SendBody::from_reader(&mut body))
        })?;
        if resp.status().as_u16() != 201 {
            return Err(self.status_error(&what, resp));
        }
        Ok(Uploaded::Sent)
    }

    /// PUT a manifest; returns the digest the registry computed, if it said.
    pub(crate) fn put_manifest(
        &self,
        reference: &str,
        media_type: &str,
        body: &[u8],
    ) -> Result<Option<Digest>> {
        let what = format!("manifest {reference}");
        let url = self.url(&format!("manifests/{reference}"));
        let resp = self.send(&what, &|a, h| {
            with_auth(a.put(&url).header("Content-Type", media_type), h).send(body)
        })?;
        if resp.status().as_u16() != 201 {
            return Err(self.status_error(&what, resp));
        }
        Ok(resp
            .headers()
            .get("Docker-Content-Digest")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse().ok()))
    }
}

fn with_auth<B>(req: ureq::RequestBuilder<B>, header: Option<&str>) -> ureq::RequestBuilder<B> {
    match header {
        Some(h) => req.header("Authorization", h),
        None => req,
    }
}

/// `GET /v2/`: 200 (open) or 401 (with a challenge) means a registry answered.
fn ping(agent: &Agent, base: &str) -> std::result::Result<Option<Challenge>, String> {
    let resp = agent.get(format!("{base}/v2/")).call().map_err(|e| {
        let e = e.to_string();
        if e.contains("InvalidContentType") {
            format!("{e} (the server does not speak TLS: a plain-http registry?)")
        } else {
            e
        }
    })?;
    match resp.status().as_u16() {
        200 => Ok(None),
        401 => match challenge_of(&resp) {
            Some(c) => Ok(Some(c)),
            None => Err("401 without a WWW-Authenticate challenge berth understands".into()),
        },
        s => Err(format!("GET /v2/: HTTP {s} (not a registry?)")),
    }
}

fn challenge_of(resp: &Response<Body>) -> Option<Challenge> {
    resp.headers()
        .get_all("WWW-Authenticate")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .filter_map(Challenge::parse)
        // Bearer first: a registry offering both prefers tokens.
        .min_by_key(|c| !matches!(c, Challenge::Bearer { .. }))
}

/// `: CODE: message` from a registry's JSON error body, if there is one.
fn error_detail(mut resp: Response<Body>) -> String {
    #[derive(serde::Deserialize)]
    struct Errors {
        errors: Vec<Item>,
    }
    #[derive(serde::Deserialize)]
    struct Item {
        #[serde(default)]
        code: String,
        #[serde(default)]
        message: String,
    }
    let Ok(body) = resp.body_mut().with_config().limit(64 << 10).read_to_vec() else {
        return String::new();
    };
    match serde_json::from_slice::<Errors>(&body) {
        Ok(e) => e
            .errors
            .iter()
            .map(|i| format!(": {}: {}", i.code, i.message))
            .collect(),
        Err(_) => String::new(),
    }
}
