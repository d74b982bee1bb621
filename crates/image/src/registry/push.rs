//! `berth push`: layers (those the registry lacks, [`super::MAX_CONCURRENT_TRANSFERS`] at a
//! time), then the config, then the manifest byte for byte, so its digest is kept.

use super::client::{Access, Client};
use super::credentials;
use super::progress::{Progress, ProgressFn};
use super::remote::RemoteRef;
use super::transfer;
use super::RegistryOptions;
use crate::digest::Digest;
use crate::error::{Error, Result};
use crate::images::ImageStore;
use crate::spec;

impl ImageStore {
    /// Push the local image `source` to `destination` (default: where `source`'s name
    /// points). Returns the manifest digest.
    pub fn push(
        &self,
        source: &str,
        destination: Option<&str>,
        opts: &RegistryOptions,
        progress: ProgressFn<'_>,
    ) -> Result<Digest> {
        let (manifest_digest, _) = self.resolve(source)?;
        let manifest = self.read_manifest(&manifest_digest)?;
        let r = RemoteRef::parse(destination.unwrap_or(source))?;
        let creds = credentials::for_registry(self.root(), &r, opts)?;
        let c = Client::connect(&r, opts, creds, Access::Push)?;
        progress(Progress::Manifest {
            digest: manifest_digest.clone(),
            platform: None,
        });

        let mut layers: Vec<&Digest> = Vec::new();
        for l in &manifest.layers {
            if !layers.contains(&&l.digest) {
                layers.push(&l.digest);
                progress(Progress::Waiting {
                    digest: l.digest.clone(),
                    size: l.size,
                });
            }
        }
        let blobs = &self.blobs;
        transfer::concurrently(
            &layers,
            |d, cancel| {
                if c.has_blob(d)? {
                    progress(Progress::AlreadyExists {
                        digest: (*d).clone(),
                    });
                    return Ok(());
                }
                c.upload(blobs, d, Some(progress), cancel)?;
                progress(Progress::Transferred {
                    digest: (*d).clone(),
                });
                Ok(())
            },
            |_| Ok(()),
        )?;
        let config = &manifest.config.digest;
        if !c.has_blob(config)? {
            c.upload(&self.blobs, config, None, &Default::default())?;
        }

        let body = self.blobs.read_blob(&manifest_digest)?;
        let media = manifest
            .media_type
            .clone()
            .unwrap_or_else(|| spec::MEDIA_OCI_MANIFEST.to_string());
        if let Some(theirs) = c.put_manifest(&r.reference, &media, &body)? {
            if theirs != manifest_digest {
                return Err(Error::DigestMismatch {
                    expected: manifest_digest,
                    actual: theirs,
                });
            }
        }
        Ok(manifest_digest)
    }
}
