//! `berth pull`: manifest (picking a platform out of an index), config, then the layers,
//! [`super::MAX_CONCURRENT_TRANSFERS`] downloads at a time while the layers already
//! downloaded are unpacked in order on the calling thread.

use std::collections::BTreeSet;

use super::client::{Access, Client};
use super::credentials;
use super::platform::PlatformSpec;
use super::progress::{Progress, ProgressFn};
use super::remote::RemoteRef;
use super::transfer;
use super::RegistryOptions;
use crate::digest::Digest;
use crate::error::{Error, Result};
use crate::images::{ImageStore, Loaded};
use crate::spec::{self, Descriptor, ImageConfig, Index, Manifest};

impl ImageStore {
    /// Pull `reference` (`[host[:port]/]name[:tag|@digest]`) into the store and tag it
    /// `host/name:tag`. Nothing of a failed pull stays in the store.
    pub fn pull(
        &mut self,
        reference: &str,
        opts: &RegistryOptions,
        progress: ProgressFn<'_>,
    ) -> Result<Loaded> {
        let r = RemoteRef::parse(reference)?;
        let creds = credentials::for_registry(self.root(), &r, opts)?;
        let client = Client::connect(&r, opts, creds, Access::Pull)?;
        let _lock = self.lock()?;
        let res = self.pull_locked(&client, opts, progress);
        let gc = self.gc();
        let loaded = res?;
        gc?;
        Ok(loaded)
    }

    fn pull_locked(
        &mut self,
        c: &Client,
        opts: &RegistryOptions,
        progress: ProgressFn<'_>,
    ) -> Result<Loaded> {
        let (mut body, media) = c.get_manifest(&c.r.reference)?;
        let mut picked = None;
        if spec::is_index(&media) || !spec::is_manifest(&media) && has_key(&body, "manifests") {
            let index: Index = spec::parse(&body, format!("{}: index", c.r))?;
            let want = opts.platform.clone().unwrap_or_else(PlatformSpec::host);
            let entry = want
                .select(&index)
                .ok_or_else(|| Error::NoMatchingPlatform {
                    reference: c.r.to_string(),
                    wanted: want.to_string(),
                    available: list_or_none(PlatformSpec::available(&index)),
                })?;
            picked = entry
                .platform
                .as_ref()
                .map(|p| PlatformSpec::from(p).to_string());
            (body, _) = c.get_manifest(entry.digest.as_str())?;
        }
        let manifest: Manifest = spec::parse(&body, format!("{}: manifest", c.r))?;
        let manifest_digest = self.blobs.put_bytes(&body)?;
        progress(Progress::Manifest {
            digest: manifest_digest.clone(),
            platform: picked.clone(),
        });

        let never = Default::default();
        if !self.blobs.contains(&manifest.config.digest) {
            c.download(&self.blobs, &manifest.config, None, &never)?;
        }
        let config = self.read_config(&manifest.config.digest)?;
        if let (Some(want), None) = (&opts.platform, &picked) {
            // A single-platform image: it must be what --platform asked for (docker errors too).
            if config.os != want.os || config.architecture != want.architecture {
                return Err(Error::NoMatchingPlatform {
                    reference: c.r.to_string(),
                    wanted: want.to_string(),
                    available: format!("{}/{}", config.os, config.architecture),
                });
            }
        }
        if config.rootfs.diff_ids.len() != manifest.layers.len() {
            return Err(Error::Layer {
                layer: manifest_digest.to_string(),
                reason: format!(
                    "manifest has {} layers, config lists {} diff ids",
                    manifest.layers.len(),
                    config.rootfs.diff_ids.len()
                ),
            });
        }

        let mut have = BTreeSet::new();
        let mut missing: Vec<&Descriptor> = Vec::new();
        for l in &manifest.layers {
            if have.contains(&l.digest) || missing.iter().any(|m| m.digest == l.digest) {
                continue;
            }
            if self.blobs.contains(&l.digest) {
                have.insert(l.digest.clone());
                progress(Progress::AlreadyExists {
                    digest: l.digest.clone(),
                });
            } else {
                missing.push(l);
                progress(Progress::Waiting {
                    digest: l.digest.clone(),
                    size: l.size,
                });
            }
        }
        let mut unpacker = Unpacker {
            next: 0,
            parent: None,
        };
        let this = &*self;
        let blobs = &self.blobs;
        transfer::concurrently(
            &missing,
            |d, cancel| c.download(blobs, d, Some(progress), cancel),
            |i| {
                let d = &missing[i].digest;
                progress(Progress::Transferred { digest: d.clone() });
                have.insert(d.clone());
                unpacker.advance(this, &manifest, &config, &have, progress)
            },
        )?;
        unpacker.advance(this, &manifest, &config, &have, progress)?;

        let tags: Vec<String> = c.r.tag_name().into_iter().collect();
        let loaded = self.register(&manifest_digest, &tags)?;
        self.write_index()?;
        Ok(loaded)
    }
}

/// Unpacks layers bottom-up as soon as each one and everything below it is downloaded.
struct Unpacker {
    next: usize,
    parent: Option<Digest>,
}

impl Unpacker {
    fn advance(
        &mut self,
        store: &ImageStore,
        manifest: &Manifest,
        config: &ImageConfig,
        have: &BTreeSet<Digest>,
        progress: ProgressFn<'_>,
    ) -> Result<()> {
        while let Some(layer) = manifest.layers.get(self.next) {
            if !have.contains(&layer.digest) {
                return Ok(());
            }
            let diff_id = &config.rootfs.diff_ids[self.next];
            let chain = Digest::chain(self.parent.as_ref(), diff_id);
            let present = store.db.layer(&chain)?.is_some() && store.layer_dir(&chain).is_dir();
            if !present {
                progress(Progress::Extracting {
                    digest: layer.digest.clone(),
                });
            }
            let chain = store.ensure_layer(self.parent.as_ref(), &layer.digest, Some(diff_id))?;
            if !present {
                progress(Progress::Extracted {
                    digest: layer.digest.clone(),
                });
            }
            self.parent = Some(chain);
            self.next += 1;
        }
        Ok(())
    }
}

fn has_key(body: &[u8], key: &str) -> bool {
    serde_json::from_slice::<serde_json::Map<String, serde_json::Value>>(body)
        .map(|v| v.contains_key(key))
        .unwrap_or(false)
}

fn list_or_none(v: Vec<String>) -> String {
    if v.is_empty() {
        "none".into()
    } else {
        v.join(", ")
    }
}
