//! Making new images from layers written on this host (the builder's steps): an overlay
//! upper directory becomes a layer blob plus an unpacked layer, and a list of layers plus a
//! config becomes a registered (optionally tagged) image.
//!
//! Layers made here are stored **uncompressed** (`application/vnd.oci.image.layer.v1.tar`):
//! the blob digest is then the diff id, the tar is written once (straight from the upper
//! dir into the blob's temporary file) and no CPU goes into compressing layers that mostly
//! never leave the host. A push sends them as they are, which every registry accepts.

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io::BufWriter;
use std::path::Path;

use crate::db::LayerRecord;
use crate::digest::Digest;
use crate::error::{Error, IoContext, Result};
use crate::images::{ImageStore, Loaded};
use crate::reference;
use crate::snapshot;
use crate::spec::{self, Descriptor, Manifest};
use crate::store;
use crate::unpack;

/// One layer of an image: its blob, what it unpacks to and where it sits in the stack.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct LayerRef {
    pub blob: Digest,
    pub media_type: String,
    pub size: u64,
    pub diff_id: Digest,
    /// Chain id of the stack up to and including this layer (names its unpacked dir).
    pub chain_id: Digest,
}

/// An image as the builder starts from it.
#[derive(Debug, Clone)]
pub struct ImageState {
    pub manifest: Digest,
    /// The image id.
    pub config_digest: Digest,
    /// The config blob, byte for byte.
    pub config: Vec<u8>,
    pub layers: Vec<LayerRef>,
}

/// What [`ImageStore::commit`] registers.
#[derive(Debug, Clone)]
pub struct CommitRequest {
    /// The image config (its `rootfs.diff_ids` must list `layers`' diff ids in order).
    pub config: Vec<u8>,
    pub layers: Vec<LayerRef>,
    /// `name:tag` references (normalized here); may be empty for an untagged image.
    pub tags: Vec<String>,
}

impl ImageStore {
    /// The manifest, config and layer stack of a local image.
    pub fn image_state(&self, r: &str) -> Result<ImageState> {
        let (m, _) = self.resolve(r)?;
        let manifest = self.read_manifest(&m)?;
        let config = self.blobs.read_blob(&manifest.config.digest)?;
        let cfg: spec::ImageConfig =
            spec::parse(&config, format!("config {}", manifest.config.digest))?;
        let chain = self.db.image_layers(&m)?;
        if chain.len() != manifest.layers.len() || cfg.rootfs.diff_ids.len() != chain.len() {
            return Err(Error::Layer {
                layer: m.to_string(),
                reason: "manifest, config and layer records disagree on the layer count".into(),
            });
        }
        let layers = manifest
            .layers
            .iter()
            .zip(cfg.rootfs.diff_ids)
            .zip(chain)
            .map(|((d, diff_id), chain_id)| LayerRef {
                blob: d.digest.clone(),
                media_type: d.media_type.clone(),
                size: d.size,
                diff_id,
                chain_id,
            })
            .collect();
        Ok(ImageState {
            manifest: m,
            config_digest: manifest.config.digest,
            config,
            layers,
        })
    }

    /// Whether a layer's blob and unpacked directory are (still) in the store.
    pub fn has_layer(&self, l: &LayerRef) -> bool {
        self.blobs.contains(&l.blob) && self.layer_dir(&l.chain_id).is_dir()
    }

    /// Turn the overlay upper directory `upper` (changes on top of the stack whose top
    /// chain id is `parent`) into a stored layer: its tar becomes the blob, and the
    /// directory itself becomes the unpacked layer (moved, not copied: an upper dir of a
    /// mount with `redirect_dir`, `metacopy` and `index` off is already in the lower-layer
    /// format, whiteouts and opaque markers included). `upper` is gone afterwards, unless
    /// the same layer was there already or `upper` is on another file system (then the
    /// blob is unpacked as for a pulled layer).
    pub fn commit_layer(&self, parent: Option<&Digest>, upper: &Path) -> Result<LayerRef> {
        let tmp = self.blobs.tmp_dir().join(store::tmp_name("layer-tar"));
        let written = (|| -> Result<(Digest, u64)> {
            let f = File::options()
                .write(true)
                .create_new(true)
                .open(&tmp)
                .at(&tmp)?;
            let mut w = BufWriter::with_capacity(256 * 1024, f);
            let (diff_id, size) = snapshot::diff_upper(upper, &mut w)?;
            let f = w.into_inner().map_err(|e| e.into_error()).at(&tmp)?;
            f.sync_all().at(&tmp)?;
            // Uncompressed: the blob is the diff, so its digest is the diff id.
            let dest = self.blobs.path(&diff_id);
            if self.blobs.contains(&diff_id) {
                fs::remove_file(&tmp).at(&tmp)?;
            } else {
                fs::rename(&tmp, &dest).at(&dest)?;
            }
            Ok((diff_id, size))
        })();
        let (diff_id, size) = match written {
            Ok(v) => v,
            Err(e) => {
                let _ = fs::remove_file(&tmp);
                return Err(e);
            }
        };
        let chain_id = Digest::chain(parent, &diff_id);
        let have = self.db.layer(&chain_id)?.is_some() && self.layer_dir(&chain_id).is_dir();
        if !have && !self.adopt_upper(parent, &chain_id, &diff_id, upper)? {
            self.ensure_layer(parent, &diff_id, Some(&diff_id))?;
        }
        Ok(LayerRef {
            blob: diff_id.clone(),
            media_type: spec::MEDIA_OCI_LAYER.to_string(),
            size,
            diff_id,
            chain_id,
        })
    }

    /// Move `upper` into place as the layer `chain_id`; false when it can't be moved
    /// (another file system).
    fn adopt_upper(
        &self,
        parent: Option<&Digest>,
        chain_id: &Digest,
        diff_id: &Digest,
        upper: &Path,
    ) -> Result<bool> {
        let tmp = self.blobs.tmp_dir().join(store::tmp_name("layer"));
        fs::create_dir_all(&tmp).at(&tmp)?;
        match fs::rename(upper, tmp.join("diff")) {
            Ok(()) => {}
            Err(e) if e.raw_os_error() == Some(libc::EXDEV) => {
                let _ = fs::remove_dir(&tmp);
                return Ok(false);
            }
            Err(e) => {
                let _ = fs::remove_dir(&tmp);
                return Err(Error::Io {
                    path: upper.to_path_buf(),
                    source: e,
                });
            }
        }
        let res = (|| -> Result<()> {
            // On disk before the layer gets its name and record (as ensure_layer does).
            let d = File::open(&tmp).at(&tmp)?;
            nix::unistd::syncfs(&d).at(&tmp)?;
            let dest = self.root().join("layers").join(chain_id.hex());
            unpack::remove_tree(&dest)?;
            fs::rename(&tmp, &dest).at(&dest)?;
            self.db.add_layer(&LayerRecord {
                chain_id: chain_id.clone(),
                diff_id: diff_id.clone(),
                parent: parent.cloned(),
            })
        })();
        if res.is_err() {
            let _ = unpack::remove_tree(&tmp);
        }
        res.map(|()| true)
    }

    /// Register an image made of `req.layers` (already in the store, e.g. from
    /// [`ImageStore::commit_layer`] or another image) and `req.config`; tag it.
    pub fn commit(&mut self, req: &CommitRequest) -> Result<Loaded> {
        let tags = req
            .tags
            .iter()
            .map(|t| reference::normalize_tag(t))
            .collect::<Result<Vec<_>>>()?;
        let cfg: spec::ImageConfig = spec::parse(&req.config, "new image config")?;
        let diffs: Vec<&Digest> = req.layers.iter().map(|l| &l.diff_id).collect();
        if cfg.rootfs.diff_ids.iter().collect::<Vec<_>>() != diffs {
            return Err(Error::Layer {
                layer: "new image".into(),
                reason: "config rootfs.diff_ids do not match the layers given".into(),
            });
        }
        let _l = self.lock()?;
        let config_digest = self.blobs.put_bytes(&req.config)?;
        let manifest = Manifest {
            schema_version: 2,
            media_type: Some(spec::MEDIA_OCI_MANIFEST.to_string()),
            config: Descriptor {
                media_type: spec::MEDIA_OCI_CONFIG.to_string(),
                digest: config_digest,
                size: req.config.len() as u64,
                platform: None,
                annotations: BTreeMap::new(),
            },
            layers: req
                .layers
                .iter()
                .map(|l| Descriptor {
                    media_type: l.media_type.clone(),
                    digest: l.blob.clone(),
                    size: l.size,
                    platform: None,
                    annotations: BTreeMap::new(),
                })
                .collect(),
        };
        let md = self
            .blobs
            .put_bytes(&spec::to_json(&manifest, "manifest")?)?;
        // A rebuild that changed nothing: the image and its tags are there already.
        if self.db.image(&md)?.is_some() {
            let mut all_there = true;
            for t in &tags {
                all_there &= self.db.tag_target(t)?.as_ref() == Some(&md);
            }
            if all_there {
                return Ok(Loaded {
                    manifest: md,
                    config: manifest.config.digest,
                    tags,
                });
            }
        }
        let loaded = self.register(&md, &tags)?;
        self.write_index()?;
        Ok(loaded)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config_for(layers: &[&LayerRef]) -> Vec<u8> {
        let diffs: Vec<&str> = layers.iter().map(|l| l.diff_id.as_str()).collect();
        serde_json::to_vec(&serde_json::json!({
            "architecture": "amd64", "os": "linux", "config": {},
            "rootfs": {"type": "layers", "diff_ids": diffs},
        }))
        .expect("json")
    }

    #[test]
    fn upper_dirs_become_layers_and_layers_an_image() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut store = ImageStore::open(dir.path().join("root")).expect("open");
        let upper = dir.path().join("root").join("upper1");
        fs::create_dir_all(upper.join("app")).expect("mkdir");
        fs::write(upper.join("app/a.txt"), "a\n").expect("write");
        let l1 = store.commit_layer(None, &upper).expect("commit layer");
        assert_eq!(l1.blob, l1.diff_id, "uncompressed: blob = diff");
        assert_eq!(l1.chain_id, l1.diff_id, "first layer: chain = diff");
        assert!(!upper.exists(), "the upper dir was moved into the store");
        assert_eq!(
            fs::read_to_string(store.layer_dir(&l1.chain_id).join("app/a.txt")).expect("read"),
            "a\n"
        );
        assert!(store.has_layer(&l1));

        // The same content on top of l1: a different chain id, same diff.
        let upper2 = dir.path().join("root").join("upper2");
        fs::create_dir_all(upper2.join("app")).expect("mkdir");
        fs::write(upper2.join("app/a.txt"), "a\n").expect("write");
        let l2 = store
            .commit_layer(Some(&l1.chain_id), &upper2)
            .expect("layer 2");
        assert_ne!(l2.chain_id, l1.chain_id);

        let req = CommitRequest {
            config: config_for(&[&l1, &l2]),
            layers: vec![l1.clone(), l2.clone()],
            tags: vec!["built:1".into()],
        };
        let loaded = store.commit(&req).expect("commit");
        let again = store.commit(&req).expect("commit again");
        assert_eq!(loaded.manifest, again.manifest);
        let st = store.image_state("built:1").expect("state");
        assert_eq!(st.layers, vec![l1.clone(), l2]);
        assert_eq!(st.config, req.config);

        // Layers that don't match the config's diff ids are refused.
        let bad = CommitRequest {
            config: config_for(&[&l1]),
            layers: vec![],
            tags: vec![],
        };
        assert!(store.commit(&bad).is_err());
    }
}
