//! `berth push`: layers (those the registry lacks, [`super::MAX_CONCURRENT_TRANSFERS`] at a
//! time; mounted from the repository the image was pulled from when that is on the same
//! registry), then the config, then the manifest byte for byte, so its digest is kept.

use super::client::{Access, Client, Uploaded};
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
        let mut c = Client::connect(&r, opts, creds, Access::Push)?;
        // Pulled from another repository of the same registry: the registry can mount the
        // layers from there instead of receiving them again.
        let mount_from = self
            .tags_of(&manifest_digest)?
            .iter()
            .filter_map(|t| RemoteRef::parse(t).ok())
            .find(|t| t.host == r.host && t.repository != r.repository)
            .map(|t| t.repository);
        if let Some(from) = &mount_from {
            c.also_pull_from(from);
        }
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
                let digest = (*d).clone();
                match c.upload(blobs, d, mount_from.as_deref(), Some(progress), cancel)? {
                    Uploaded::Mounted => progress(Progress::Mounted {
                        digest,
                        from: mount_from.clone().unwrap_or_default(),
                    }),
                    Uploaded::Sent => progress(Progress::Transferred { digest }),
                }
                Ok(())
            },
            |_| Ok(()),
        )?;
        let config = &manifest.config.digest;
        if !c.has_blob(config)? {
            c.upload(
                &self.blobs,
                config,
                mount_from.as_deref(),
                None,
                &Default::default(),
            )?;
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
