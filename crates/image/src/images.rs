//! The image store of an engine root: blobs + records + unpacked layers, and the
//! operations the CLI offers (list, inspect, tag, remove, prune, import, mount).
//!
//! On-disk layout under the root (default `/var/lib/berth`):
//!
//! ```text
//! oci-layout, index.json, blobs/sha256/<hex>   an OCI image layout (index.json lists every tag)
//! berth.db                                     SQLite: images, tags, layers, image_layers
//! layers/<chain id hex>/diff                   one unpacked layer (overlay format whiteouts)
//! tmp/                                         blobs and layers being written
//! lock                                         flock held by every writer
//! ```

use std::collections::{BTreeMap, BTreeSet};
use std::fs::{self, File};
use std::io::Read;
use std::path::{Path, PathBuf};

use nix::fcntl::{Flock, FlockArg};
use serde::Serialize;

use crate::db::{Db, ImageRecord, LayerRecord};
use crate::digest::Digest;
use crate::error::{Error, IoContext, Result};
use crate::reference::{self, Reference};
use crate::snapshot::{self, OverlaySpec};
use crate::spec::{self, Descriptor, ImageConfig, Index, Manifest};
use crate::store::{self, BlobStore};
use crate::unpack::{self, UnpackOptions};

/// Where the engine keeps its state when nothing else is said.
pub const DEFAULT_ROOT: &str = "/var/lib/berth";

/// The image store.
pub struct ImageStore {
    root: PathBuf,
    pub(crate) blobs: BlobStore,
    pub(crate) db: Db,
    pub(crate) unpack_opts: UnpackOptions,
    /// Image ids (config digests) containers were created from, with one such container:
    /// their layers are those containers' lower dirs, so rmi/prune never delete them.
    in_use: BTreeMap<Digest, String>,
}

/// One line of `berth images`.
#[derive(Debug, Clone, Serialize)]
pub struct ImageSummary {
    pub repository: String,
    pub tag: String,
    pub id: Digest,
    pub digest: Digest,
    pub created: Option<String>,
    pub size: u64,
}

/// `berth image inspect`.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct ImageDetails {
    pub id: Digest,
    pub repo_tags: Vec<String>,
    pub repo_digests: Vec<String>,
    pub created: Option<String>,
    pub architecture: String,
    pub os: String,
    pub size: u64,
    #[serde(rename = "RootFS")]
    pub root_fs: RootFsDetails,
    pub config: serde_json::Value,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct RootFsDetails {
    #[serde(rename = "Type")]
    pub kind: String,
    pub layers: Vec<Digest>,
    #[serde(rename = "ChainIDs")]
    pub chain_ids: Vec<Digest>,
}

/// What a removal did, in `docker rmi` words.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Removed {
    Untagged(String),
    Deleted(Digest),
}

/// An image added to the store.
#[derive(Debug, Clone)]
pub struct Loaded {
    pub manifest: Digest,
    pub config: Digest,
    pub tags: Vec<String>,
}

/// A held writer lock on the root.
pub(crate) struct RootLock(#[allow(dead_code)] Flock<File>);

/// Held by work that makes layers and blobs before an image refers to them (a build):
/// while any lease is held, garbage collection leaves unreferenced blobs and layers alone
/// (the next collection takes them), like containerd's leases.
pub struct Lease(#[allow(dead_code)] Flock<File>);

impl ImageStore {
    /// Open (creating) the store under `root`.
    pub fn open(root: impl AsRef<Path>) -> Result<ImageStore> {
        let root = root.as_ref().to_path_buf();
        fs::create_dir_all(root.join("layers")).at(root.join("layers"))?;
        let blobs = BlobStore::open(&root)?;
        let db = Db::open(&root.join("berth.db"))?;
        Ok(ImageStore {
            root,
            blobs,
            db,
            unpack_opts: UnpackOptions::default(),
            in_use: BTreeMap::new(),
        })
    }

    /// Marks images as used by containers (the engine knows which): `remove` refuses them
    /// (only untags them with `force`, as docker does) and `prune` keeps them.
    pub fn set_in_use(&mut self, images: impl IntoIterator<Item = (Digest, String)>) {
        self.in_use = images.into_iter().collect();
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn blobs(&self) -> &BlobStore {
        &self.blobs
    }

    pub(crate) fn lock(&self) -> Result<RootLock> {
        let p = self.root.join("lock");
        let f = Self::open_lock_file(&p)?;
        Flock::lock(f, FlockArg::LockExclusive)
            .map(RootLock)
            .map_err(|(_, e)| Error::Io {
                path: p,
                source: e.into(),
            })
    }

    /// The directory of an unpacked layer.
    pub fn layer_dir(&self, chain_id: &Digest) -> PathBuf {
        self.root.join("layers").join(chain_id.hex()).join("diff")
    }

    pub fn read_manifest(&self, d: &Digest) -> Result<Manifest> {
        spec::parse(&self.blobs.read_blob(d)?, format!("manifest {d}"))
    }

    pub fn read_config(&self, d: &Digest) -> Result<ImageConfig> {
        spec::parse(&self.blobs.read_blob(d)?, format!("config {d}"))
    }

    /// Find the image a reference names: its manifest digest, and the tag if named by one.
    pub fn resolve(&self, r: &str) -> Result<(Digest, Option<String>)> {
        let not_found = || Error::ImageNotFound(r.to_string());
        match reference::parse(r)? {
            Reference::Tagged(t) => {
                if let Some(m) = self.db.tag_target(&t)? {
                    return Ok((m, Some(t)));
                }
                // docker.io/library/x:t and x:t name the same image.
                for alt in [format!("docker.io/library/{t}"), format!("docker.io/{t}")] {
                    if let Some(m) = self.db.tag_target(&alt)? {
                        return Ok((m, Some(alt)));
                    }
                }
                Err(not_found())
            }
            Reference::Digest(d) => {
                let d: Digest = d.parse()?;
                self.db
                    .images()?
                    .into_iter()
                    .find(|i| i.manifest == d || i.config == d)
                    .map(|i| (i.manifest, None))
                    .ok_or_else(not_found)
            }
            Reference::IdPrefix(p) => {
                let imgs = self.db.images()?;
                let mut hits: Vec<_> = imgs
                    .iter()
                    .filter(|i| i.config.hex().starts_with(&p) || i.manifest.hex().starts_with(&p))
                    .map(|i| i.manifest.clone())
                    .collect();
                hits.dedup();
                match hits.len() {
                    1 => Ok((hits.remove(0), None)),
                    0 => {
                        // Might be a short name like "abcd" after all.
                        let t = reference::normalize_tag(r)?;
                        self.db
                            .tag_target(&t)?
                            .map(|m| (m, Some(t)))
                            .ok_or_else(not_found)
                    }
                    _ => Err(Error::InvalidReference(format!(
                        "{r} (ambiguous id prefix)"
                    ))),
                }
            }
        }
    }

    fn record(&self, manifest: &Digest) -> Result<ImageRecord> {
        self.db
            .image(manifest)?
            .ok_or_else(|| Error::ImageNotFound(manifest.to_string()))
    }

    /// Tags of one image.
    pub fn tags_of(&self, manifest: &Digest) -> Result<Vec<String>> {
        Ok(self
            .db
            .tags()?
            .into_iter()
            .filter(|(_, m)| m == manifest)
            .map(|(t, _)| t)
            .collect())
    }

    /// Unpack a layer on top of `parent` (a chain id) unless that chain is already there.
    /// `expected_diff` is the diff id the image config promises (checked); `None` takes the
    /// content's own. Returns the chain id.
    pub(crate) fn ensure_layer(
        &self,
        parent: Option<&Digest>,
        blob: &Digest,
        expected_diff: Option<&Digest>,
    ) -> Result<Digest> {
        if let Some(d) = expected_diff {
            let chain = Digest::chain(parent, d);
            if self.db.layer(&chain)?.is_some() && self.layer_dir(&chain).is_dir() {
                return Ok(chain);
            }
        }
        let tmp = self.blobs.tmp_dir().join(store::tmp_name("layer"));
        let diff_dir = tmp.join("diff");
        fs::create_dir_all(&diff_dir).at(&diff_dir)?;
        let result = (|| -> Result<Digest> {
            let f = self.blobs.open_blob(blob)?;
            let u = unpack::unpack_layer(f, &diff_dir, blob.as_str(), &self.unpack_opts)?;
            if let Some(exp) = expected_diff {
                if *exp != u.diff_id {
                    return Err(Error::Layer {
                        layer: blob.to_string(),
                        reason: format!(
                            "uncompressed content has digest {}, the image config says {exp}",
                            u.diff_id
                        ),
                    });
                }
            }
            let chain = Digest::chain(parent, &u.diff_id);
            let dest = self.root.join("layers").join(chain.hex());
            if self.db.layer(&chain)?.is_some() && dest.join("diff").is_dir() {
                return Ok(chain);
            }
            // Everything on disk before the layer gets its name and record.
            let d = File::open(&tmp).at(&tmp)?;
            nix::unistd::syncfs(&d).at(&tmp)?;
            // A leftover from a crash between rename and record: replace it.
            unpack::remove_tree(&dest)?;
            fs::rename(&tmp, &dest).at(&dest)?;
            self.db.add_layer(&LayerRecord {
                chain_id: chain.clone(),
                diff_id: u.diff_id,
                parent: parent.cloned(),
            })?;
            Ok(chain)
        })();
        unpack::remove_tree(&tmp)?;
        result
    }

    /// Check an image's blobs and unpack its layers; then record it with `tags`.
    /// The caller holds the lock.
    pub(crate) fn register(&mut self, manifest_digest: &Digest, tags: &[String]) -> Result<Loaded> {
        let manifest = self.read_manifest(manifest_digest)?;
        let check = |d: &Descriptor| -> Result<()> {
            let size = self.blobs.size(&d.digest)?;
            if size != d.size {
                return Err(Error::SizeMismatch {
                    digest: d.digest.clone(),
                    expected: d.size,
                    actual: size,
                });
            }
            Ok(())
        };
        check(&manifest.config)?;
        let config = self.read_config(&manifest.config.digest)?;
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
        let mut chain = Vec::new();
        let mut parent: Option<Digest> = None;
        let mut size = 0;
        for (l, diff) in manifest.layers.iter().zip(&config.rootfs.diff_ids) {
            check(l)?;
            size += l.size;
            let c = self.ensure_layer(parent.as_ref(), &l.digest, Some(diff))?;
            chain.push(c.clone());
            parent = Some(c);
        }
        let rec = ImageRecord {
            manifest: manifest_digest.clone(),
            config: manifest.config.digest.clone(),
            added: now_secs(),
            size,
        };
        self.db.add_image(&rec, &chain, tags)?;
        Ok(Loaded {
            manifest: rec.manifest,
            config: rec.config,
            tags: tags.to_vec(),
        })
    }

    /// Remove blobs no image refers to, layers no image uses, and leftovers in tmp/.
    /// The caller holds the lock.
    /// Takes a lease (a shared lock on `<root>/gc.lock`) until the value is dropped.
    pub fn lease(&self) -> Result<Lease> {
        let p = self.root.join("gc.lock");
        let f = Self::open_lock_file(&p)?;
        Flock::lock(f, FlockArg::LockShared)
            .map(Lease)
            .map_err(|(_, e)| Error::Io {
                path: p,
                source: e.into(),
            })
    }

    fn open_lock_file(p: &Path) -> Result<File> {
        File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(p)
            .at(p)
    }

    /// Whether no lease is held; the returned lock keeps new leases out while collecting.
    fn no_lease(&self) -> Result<Option<Flock<File>>> {
        let p = self.root.join("gc.lock");
        let f = Self::open_lock_file(&p)?;
        match Flock::lock(f, FlockArg::LockExclusiveNonblock) {
            Ok(l) => Ok(Some(l)),
            Err((_, nix::errno::Errno::EWOULDBLOCK)) => Ok(None),
            Err((_, e)) => Err(Error::Io {
                path: p,
                source: e.into(),
            }),
        }
    }

    pub(crate) fn gc(&self) -> Result<()> {
        let Some(_no_lease) = self.no_lease()? else {
            return self.write_index();
        };
        let mut keep = BTreeSet::new();
        for img in self.db.images()? {
            keep.insert(img.manifest.clone());
            keep.insert(img.config.clone());
            if let Ok(m) = self.read_manifest(&img.manifest) {
                keep.extend(m.layers.into_iter().map(|l| l.digest));
            }
        }
        for b in self.blobs.list()? {
            if !keep.contains(&b) {
                self.blobs.remove(&b)?;
            }
        }
        let used: BTreeSet<Digest> = self.db.used_layers()?.into_iter().collect();
        for l in self.db.layers()? {
            if !used.contains(&l.chain_id) {
                unpack::remove_tree(&self.root.join("layers").join(l.chain_id.hex()))?;
                self.db.remove_layer(&l.chain_id)?;
            }
        }
        // Layer directories without a record (a crash before the record was written).
        let layers = self.root.join("layers");
        for e in fs::read_dir(&layers).at(&layers)? {
            let e = e.at(&layers)?;
            let known = e
                .file_name()
                .to_str()
                .and_then(|n| Digest::from_hex(n).ok())
                .map(|d| used.contains(&d))
                .unwrap_or(false);
            if !known {
                unpack::remove_tree(&e.path())?;
            }
        }
        let tmp = self.blobs.tmp_dir();
        for e in fs::read_dir(&tmp).at(&tmp)? {
            unpack::remove_tree(&e.at(&tmp)?.path())?;
        }
        self.write_index()
    }

    /// Keep `<root>/index.json` listing every image, so the root stays an OCI layout.
    pub(crate) fn write_index(&self) -> Result<()> {
        let tags = self.db.tags()?;
        let mut manifests = Vec::new();
        let mut tagged = BTreeSet::new();
        for (t, m) in &tags {
            tagged.insert(m.clone());
            let mut d = self.descriptor_of(m)?;
            d.annotations
                .insert(spec::ANNOTATION_REF_NAME.to_string(), t.clone());
            manifests.push(d);
        }
        for img in self.db.images()? {
            if !tagged.contains(&img.manifest) && !self.in_use.contains_key(&img.config) {
                manifests.push(self.descriptor_of(&img.manifest)?);
            }
        }
        let idx = Index {
            schema_version: 2,
            media_type: Some(spec::MEDIA_OCI_INDEX.to_string()),
            manifests,
        };
        store::write_atomic(
            &self.root.join("index.json"),
            &spec::to_json(&idx, "index.json")?,
            &self.blobs.tmp_dir(),
        )
    }

    pub(crate) fn descriptor_of(&self, manifest: &Digest) -> Result<Descriptor> {
        let m = self.read_manifest(manifest)?;
        Ok(Descriptor {
            media_type: m
                .media_type
                .unwrap_or_else(|| spec::MEDIA_OCI_MANIFEST.to_string()),
            digest: manifest.clone(),
            size: self.blobs.size(manifest)?,
            platform: None,
            annotations: BTreeMap::new(),
        })
    }

    /// `berth images`.
    pub fn list(&self) -> Result<Vec<ImageSummary>> {
        let tags = self.db.tags()?;
        let mut out = Vec::new();
        for img in self.db.images()? {
            let created = self.read_config(&img.config).ok().and_then(|c| c.created);
            let mine: Vec<_> = tags.iter().filter(|(_, m)| *m == img.manifest).collect();
            let mk = |repository: String, tag: String| ImageSummary {
                repository,
                tag,
                id: img.config.clone(),
                digest: img.manifest.clone(),
                created: created.clone(),
                size: img.size,
            };
            if mine.is_empty() {
                out.push(mk("<none>".into(), "<none>".into()));
            }
            for (t, _) in mine {
                let (n, tag) = reference::split_tag(t);
                out.push(mk(n.to_string(), tag.to_string()));
            }
        }
        Ok(out)
    }

    /// `berth image inspect`.
    pub fn inspect(&self, r: &str) -> Result<ImageDetails> {
        let (m, _) = self.resolve(r)?;
        let rec = self.record(&m)?;
        let raw = self.blobs.read_blob(&rec.config)?;
        let cfg: ImageConfig = spec::parse(&raw, format!("config {}", rec.config))?;
        let value: serde_json::Value = spec::parse(&raw, format!("config {}", rec.config))?;
        let tags = self.tags_of(&m)?;
        let repo_digests = tags
            .iter()
            .map(|t| format!("{}@{m}", reference::split_tag(t).0))
            .collect();
        Ok(ImageDetails {
            id: rec.config,
            repo_tags: tags,
            repo_digests,
            created: cfg.created,
            architecture: cfg.architecture,
            os: cfg.os,
            size: rec.size,
            root_fs: RootFsDetails {
                kind: cfg.rootfs.kind,
                layers: cfg.rootfs.diff_ids,
                chain_ids: self.db.image_layers(&m)?,
            },
            config: value
                .get("config")
                .cloned()
                .unwrap_or(serde_json::Value::Null),
        })
    }

    /// `berth tag SOURCE TARGET`.
    pub fn tag(&mut self, source: &str, target: &str) -> Result<()> {
        let _l = self.lock()?;
        let (m, _) = self.resolve(source)?;
        let t = reference::normalize_tag(target)?;
        self.db.set_tag(&t, &m)?;
        // A tag moved away may leave an untagged image: kept, as docker does (prune takes it).
        self.write_index()
    }

    /// `berth rmi`: untag; delete the image when no tag is left. An image named by id with
    /// several tags needs `force`.
    pub fn remove(&mut self, r: &str, force: bool) -> Result<Vec<Removed>> {
        let _l = self.lock()?;
        let (m, tag) = self.resolve(r)?;
        let mut out = Vec::new();
        let tags = self.tags_of(&m)?;
        let rec = self.record(&m)?;
        let deletes = tag.is_none() || tags.len() <= 1;
        if let Some(container) = self.in_use.get(&rec.config).filter(|_| deletes) {
            if !force {
                return Err(Error::UsedByContainer {
                    reference: r.to_string(),
                    container: container.chars().take(12).collect(),
                });
            }
            // Forced: the names go, the image stays for its containers.
            let untag = match tag {
                Some(t) => vec![t],
                None => tags,
            };
            for t in untag {
                self.db.remove_tag(&t)?;
                out.push(Removed::Untagged(t));
            }
            self.write_index()?;
            return Ok(out);
        }
        match tag {
            Some(t) => {
                self.db.remove_tag(&t)?;
                out.push(Removed::Untagged(t.clone()));
                if tags.len() > 1 {
                    self.write_index()?;
                    return Ok(out);
                }
            }
            None => {
                if tags.len() > 1 && !force {
                    return Err(Error::InUse {
                        reference: r.to_string(),
                        count: tags.len(),
                    });
                }
                for t in tags {
                    self.db.remove_tag(&t)?;
                    out.push(Removed::Untagged(t));
                }
            }
        }
        self.db.remove_image(&m)?;
        out.push(Removed::Deleted(rec.config));
        self.gc()?;
        Ok(out)
    }

    /// `berth image prune`: remove every untagged image. Returns the ids deleted.
    pub fn prune(&mut self) -> Result<Vec<Digest>> {
        let _l = self.lock()?;
        let tagged: BTreeSet<Digest> = self.db.tags()?.into_iter().map(|(_, m)| m).collect();
        let mut out = Vec::new();
        for img in self.db.images()? {
            if !tagged.contains(&img.manifest) {
                self.db.remove_image(&img.manifest)?;
                out.push(img.config);
            }
        }
        self.gc()?;
        Ok(out)
    }

    /// `berth import ROOTFS.tar NAME`: one layer (stored as given: plain, gzip or zstd), a
    /// minimal config for linux/amd64.
    pub fn import_rootfs(&mut self, reader: &mut dyn Read, name: &str) -> Result<Loaded> {
        let tag = reference::normalize_tag(name)?;
        let _l = self.lock()?;
        let res = self.import_locked(reader, &tag);
        if res.is_err() {
            let _ = self.gc();
        }
        res
    }

    fn import_locked(&mut self, reader: &mut dyn Read, tag: &str) -> Result<Loaded> {
        let (blob, size) = self.blobs.put(reader, None, None)?;
        let chain = self.ensure_layer(None, &blob, None)?;
        let diff_id = self
            .db
            .layer(&chain)?
            .map(|l| l.diff_id)
            .ok_or_else(|| Error::Layer {
                layer: blob.to_string(),
                reason: "layer record missing after unpack".into(),
            })?;
        let mut head = [0u8; 4];
        let n = self
            .blobs
            .open_blob(&blob)?
            .read(&mut head)
            .at(self.blobs.path(&blob))?;
        let media = crate::compress::Compression::detect(&head[..n]).media_type();
        let created = rfc3339(now_secs());
        let config = serde_json::json!({
            "created": created,
            "architecture": "amd64",
            "os": "linux",
            "config": {},
            "rootfs": {"type": "layers", "diff_ids": [diff_id]},
            "history": [{"created": created, "created_by": "berth import"}],
        });
        let config_bytes = spec::to_json(&config, "config")?;
        let config_digest = self.blobs.put_bytes(&config_bytes)?;
        let manifest = Manifest {
            schema_version: 2,
            media_type: Some(spec::MEDIA_OCI_MANIFEST.to_string()),
            config: Descriptor {
                media_type: spec::MEDIA_OCI_CONFIG.to_string(),
                digest: config_digest,
                size: config_bytes.len() as u64,
                platform: None,
                annotations: BTreeMap::new(),
            },
            layers: vec![Descriptor {
                media_type: media.to_string(),
                digest: blob,
                size,
                platform: None,
                annotations: BTreeMap::new(),
            }],
        };
        let md = self
            .blobs
            .put_bytes(&spec::to_json(&manifest, "manifest")?)?;
        let loaded = self.register(&md, &[tag.to_string()])?;
        self.gc()?;
        Ok(loaded)
    }

    /// The unpacked layer directories of an image, bottom first.
    pub fn layer_dirs(&self, r: &str) -> Result<Vec<PathBuf>> {
        let (m, _) = self.resolve(r)?;
        Ok(self
            .db
            .image_layers(&m)?
            .iter()
            .map(|c| self.layer_dir(c))
            .collect())
    }

    /// Mount an image's layers with a writable `upper` (and `work`, same file system) on
    /// `target`.
    pub fn mount(&self, r: &str, upper: &Path, work: &Path, target: &Path) -> Result<()> {
        let lowers = self.layer_dirs(r)?;
        snapshot::mount_overlay(
            &OverlaySpec {
                lowers,
                upper: Some((upper.to_path_buf(), work.to_path_buf())),
            },
            target,
        )
    }
}

pub(crate) fn now_secs() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// Unix seconds as an RFC 3339 UTC timestamp.
pub fn rfc3339(secs: i64) -> String {
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = if m <= 2 { y + 1 } else { y };
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {
    #[test]
    fn rfc3339() {
        assert_eq!(super::rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(super::rfc3339(1_700_000_000), "2023-11-14T22:13:20Z");
    }
}
