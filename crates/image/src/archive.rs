//! Loading and saving images: docker-archive (`docker save`: `manifest.json` with
//! `<id>/layer.tar`, `<diffid>.tar` or `blobs/sha256/...`), OCI archive (a tar of an OCI
//! layout) and OCI layout directories; layers plain, gzip or zstd.
//!
//! Loading streams every file of the archive once: blobs go straight into the store (a
//! `blobs/sha256/<hex>` entry is checked against its name while it is written), small JSON
//! documents stay in memory. Then the images are registered (layers checked against the
//! config's diff ids and unpacked). Whatever fails, blobs and layers that no image refers
//! to are removed again, so a failed load leaves the store as it was.

use std::collections::{BTreeMap, HashMap};
use std::fs::File;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::path::Path;

use crate::compress::Compression;
use crate::digest::Digest;
use crate::error::{Error, IoContext, Result};
use crate::images::{ImageStore, Loaded};
use crate::reference;
use crate::spec::{self, Descriptor, DockerArchiveEntry, Index, Manifest};

/// The archive format `save` writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SaveFormat {
    /// What `docker save` writes today: an OCI layout plus `manifest.json` and
    /// `repositories`, so both old and new docker load it.
    Docker,
    /// An OCI image layout in a tar (`oci-archive`).
    Oci,
}

/// Files kept in memory while staging (everything else is a blob).
const SMALL: u64 = 4 << 20;

#[derive(Default)]
struct Staged {
    /// Small documents by archive path.
    files: HashMap<String, Vec<u8>>,
    /// Archive path → stored blob.
    blobs: HashMap<String, Digest>,
    /// Archive path → path it links to.
    links: HashMap<String, String>,
}

fn norm(p: &str) -> String {
    let v: Vec<&str> = p
        .split('/')
        .filter(|c| !c.is_empty() && *c != ".")
        .collect();
    v.join("/")
}

fn join_rel(base_dir: &str, target: &str) -> String {
    if target.starts_with('/') {
        return norm(target);
    }
    let mut parts: Vec<&str> = base_dir.split('/').filter(|c| !c.is_empty()).collect();
    for c in target.split('/') {
        match c {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            c => parts.push(c),
        }
    }
    parts.join("/")
}

impl Staged {
    fn resolve(&self, p: &str) -> String {
        let mut p = norm(p);
        for _ in 0..16 {
            match self.links.get(&p) {
                Some(t) => p = t.clone(),
                None => break,
            }
        }
        p
    }

    fn file(&self, store: &ImageStore, p: &str) -> Result<Option<Vec<u8>>> {
        let p = self.resolve(p);
        if let Some(v) = self.files.get(&p) {
            return Ok(Some(v.clone()));
        }
        match self.blobs.get(&p) {
            Some(d) => store.blobs.read_blob(d).map(Some),
            None => Ok(None),
        }
    }
}

fn archive_err(what: &str, reason: impl Into<String>) -> Error {
    Error::Archive {
        what: what.to_string(),
        reason: reason.into(),
    }
}

impl ImageStore {
    /// Load a docker-archive or OCI archive (optionally gzip/zstd compressed as a whole)
    /// from `reader`; `what` names it in errors.
    pub fn load_archive(&mut self, reader: &mut dyn Read, what: &str) -> Result<Vec<Loaded>> {
        let _l = self.lock()?;
        let res = self.load_archive_locked(reader, what);
        let gc = self.gc();
        let loaded = res?;
        gc?;
        Ok(loaded)
    }

    /// Load an archive file or an OCI layout directory.
    pub fn load_path(&mut self, path: &Path) -> Result<Vec<Loaded>> {
        if path.is_dir() {
            let _l = self.lock()?;
            let res = self.load_layout_locked(path);
            let gc = self.gc();
            let loaded = res?;
            gc?;
            return Ok(loaded);
        }
        let mut f = File::open(path).at(path)?;
        self.load_archive(&mut f, &path.display().to_string())
    }

    fn load_archive_locked(&mut self, reader: &mut dyn Read, what: &str) -> Result<Vec<Loaded>> {
        let mut br = BufReader::with_capacity(64 * 1024, reader);
        let head = br
            .fill_buf()
            .map_err(|e| archive_err(what, e.to_string()))?;
        if head.is_empty() {
            return Err(archive_err(what, "empty input"));
        }
        let (_, plain) =
            crate::compress::decompress(br).map_err(|e| archive_err(what, e.to_string()))?;
        let staged = self.stage(plain, what)?;
        if let Some(index) = staged.files.get("index.json") {
            let index: Index = spec::parse(index, format!("{what}: index.json"))?;
            let names = match staged.file(self, "manifest.json")? {
                Some(m) => docker_names(&spec::parse::<Vec<DockerArchiveEntry>>(
                    &m,
                    format!("{what}: manifest.json"),
                )?),
                None => HashMap::new(),
            };
            let mut have = |s: &ImageStore, d: &Descriptor| -> Result<()> {
                if !s.blobs.contains(&d.digest) {
                    return Err(archive_err(what, format!("blob {} is missing", d.digest)));
                }
                Ok(())
            };
            return self.load_index(&index, &names, &mut have, what);
        }
        if let Some(m) = staged.file(self, "manifest.json")? {
            let entries: Vec<DockerArchiveEntry> =
                spec::parse(&m, format!("{what}: manifest.json"))?;
            return self.load_docker_entries(&entries, &staged, what);
        }
        Err(archive_err(
            what,
            "not an image archive: neither index.json nor manifest.json in it",
        ))
    }

    fn stage(&self, plain: Box<dyn Read + '_>, what: &str) -> Result<Staged> {
        let mut staged = Staged::default();
        let mut ar = tar::Archive::new(plain);
        let corrupt =
            |e: io::Error| archive_err(what, format!("corrupt or truncated archive: {e}"));
        for entry in ar.entries().map_err(corrupt)? {
            let mut entry = entry.map_err(corrupt)?;
            let path = norm(&String::from_utf8_lossy(&entry.path_bytes()));
            let kind = entry.header().entry_type();
            if kind.is_symlink() || kind.is_hard_link() {
                let target = entry
                    .link_name_bytes()
                    .map(|t| String::from_utf8_lossy(&t).into_owned())
                    .unwrap_or_default();
                let dir = path.rsplit_once('/').map_or("", |(d, _)| d);
                let resolved = if kind.is_symlink() {
                    join_rel(dir, &target)
                } else {
                    norm(&target)
                };
                staged.links.insert(path, resolved);
                continue;
            }
            if !kind.is_file() {
                continue;
            }
            let size = entry.header().size().map_err(corrupt)?;
            if let Some(hex) = path.strip_prefix("blobs/sha256/") {
                let expected = Digest::from_hex(hex)
                    .map_err(|_| archive_err(what, format!("{path}: not a sha256 blob name")))?;
                let (d, _) = self
                    .blobs
                    .put(&mut entry, Some(&expected), Some(size))
                    .map_err(|e| match e {
                        Error::Io { source, .. } => corrupt(source),
                        e => e,
                    })?;
                staged.blobs.insert(path, d);
            } else if size <= SMALL
                && (path.ends_with(".json") || !path.ends_with(".tar"))
                && !path.ends_with("layer.tar")
            {
                let mut v = Vec::with_capacity(size as usize);
                entry.read_to_end(&mut v).map_err(corrupt)?;
                staged.files.insert(path, v);
            } else {
                let (d, _) = self
                    .blobs
                    .put(&mut entry, None, Some(size))
                    .map_err(|e| match e {
                        Error::Io { source, .. } => corrupt(source),
                        e => e,
                    })?;
                staged.blobs.insert(path, d);
            }
        }
        Ok(staged)
    }

    fn load_layout_locked(&mut self, dir: &Path) -> Result<Vec<Loaded>> {
        let what = dir.display().to_string();
        let ip = dir.join("index.json");
        let raw = std::fs::read(&ip).at(&ip)?;
        let index: Index = spec::parse(&raw, ip.display().to_string())?;
        let mut fetch = |s: &ImageStore, d: &Descriptor| -> Result<()> {
            if s.blobs.contains(&d.digest) {
                return Ok(());
            }
            let p = dir.join("blobs").join("sha256").join(d.digest.hex());
            let mut f = match File::open(&p) {
                Ok(f) => f,
                Err(e) if e.kind() == io::ErrorKind::NotFound => {
                    return Err(archive_err(&what, format!("blob {} is missing", d.digest)))
                }
                Err(e) => return Err(Error::Io { path: p, source: e }),
            };
            s.blobs.put(&mut f, Some(&d.digest), Some(d.size)).map(drop)
        };
        self.load_index(&index, &HashMap::new(), &mut fetch, &what)
    }

    /// Register every manifest an index lists (nested indexes: the linux/amd64 entry, or
    /// every manifest when none says its platform).
    fn load_index(
        &mut self,
        index: &Index,
        docker_names: &HashMap<Digest, Vec<String>>,
        fetch: &mut dyn FnMut(&ImageStore, &Descriptor) -> Result<()>,
        what: &str,
    ) -> Result<Vec<Loaded>> {
        let mut out = Vec::new();
        for d in &index.manifests {
            let mut tags = Vec::new();
            if let Some(n) = d.annotations.get(spec::ANNOTATION_IMAGE_NAME) {
                tags.push(reference::normalize_tag(n)?);
            } else if let Some(n) = d.annotations.get(spec::ANNOTATION_REF_NAME) {
                if n.contains(':') || n.contains('/') {
                    tags.push(reference::normalize_tag(n)?);
                }
            }
            fetch(self, d)?;
            let manifest_digest = if spec::is_index(&d.media_type) {
                let inner: Index = spec::parse(
                    &self.blobs.read_blob(&d.digest)?,
                    format!("index {}", d.digest),
                )?;
                let pick = inner
                    .manifests
                    .iter()
                    .find(|m| {
                        m.platform
                            .as_ref()
                            .is_some_and(|p| p.os == "linux" && p.architecture == "amd64")
                    })
                    .or_else(|| inner.manifests.first())
                    .ok_or_else(|| {
                        archive_err(what, format!("index {} lists no manifest", d.digest))
                    })?;
                fetch(self, pick)?;
                pick.digest.clone()
            } else if spec::is_manifest(&d.media_type) {
                d.digest.clone()
            } else {
                continue;
            };
            let m: Manifest = self.read_manifest(&manifest_digest)?;
            fetch(self, &m.config)?;
            for l in &m.layers {
                fetch(self, l)?;
            }
            if tags.is_empty() {
                if let Some(n) = docker_names.get(&m.config.digest) {
                    tags = n.clone();
                }
            }
            out.push(self.register(&manifest_digest, &tags)?);
        }
        if out.is_empty() {
            return Err(archive_err(what, "index.json lists no image"));
        }
        self.write_index()?;
        Ok(out)
    }

    fn load_docker_entries(
        &mut self,
        entries: &[DockerArchiveEntry],
        staged: &Staged,
        what: &str,
    ) -> Result<Vec<Loaded>> {
        let mut out = Vec::new();
        for e in entries {
            let config = staged
                .file(self, &e.config)?
                .ok_or_else(|| archive_err(what, format!("config {} is missing", e.config)))?;
            let config_digest = Digest::of(&config);
            // Configs are named by their digest: "<hex>.json" or "blobs/sha256/<hex>".
            let base = e.config.rsplit('/').next().unwrap_or(&e.config);
            let named = base.strip_suffix(".json").unwrap_or(base);
            if let Ok(named) = Digest::from_hex(named) {
                if named != config_digest {
                    return Err(Error::DigestMismatch {
                        expected: named,
                        actual: config_digest,
                    });
                }
            }
            self.blobs.put_bytes(&config)?;
            let mut layers = Vec::new();
            for lp in &e.layers {
                let p = staged.resolve(lp);
                let d = staged
                    .blobs
                    .get(&p)
                    .ok_or_else(|| archive_err(what, format!("layer {lp} is missing")))?;
                let mut head = [0u8; 4];
                let n = self
                    .blobs
                    .open_blob(d)?
                    .read(&mut head)
                    .at(self.blobs.path(d))?;
                layers.push(Descriptor {
                    media_type: Compression::detect(&head[..n]).media_type().to_string(),
                    digest: d.clone(),
                    size: self.blobs.size(d)?,
                    platform: None,
                    annotations: BTreeMap::new(),
                });
            }
            let manifest = Manifest {
                schema_version: 2,
                media_type: Some(spec::MEDIA_OCI_MANIFEST.to_string()),
                config: Descriptor {
                    media_type: spec::MEDIA_OCI_CONFIG.to_string(),
                    digest: config_digest,
                    size: config.len() as u64,
                    platform: None,
                    annotations: BTreeMap::new(),
                },
                layers,
            };
            let md = self
                .blobs
                .put_bytes(&spec::to_json(&manifest, "manifest")?)?;
            let tags = e
                .repo_tags
                .iter()
                .flatten()
                .map(|t| reference::normalize_tag(t))
                .collect::<Result<Vec<_>>>()?;
            out.push(self.register(&md, &tags)?);
        }
        if out.is_empty() {
            return Err(archive_err(what, "manifest.json lists no image"));
        }
        self.write_index()?;
        Ok(out)
    }

    /// Write the images `refs` as one archive to `out`.
    pub fn save(&self, refs: &[String], format: SaveFormat, out: &mut dyn Write) -> Result<()> {
        // (manifest, tags to write)
        let mut images: Vec<(Digest, Vec<String>)> = Vec::new();
        for r in refs {
            let (m, tag) = self.resolve(r)?;
            let tags = match tag {
                Some(t) => vec![t],
                None => self.tags_of(&m)?,
            };
            match images.iter_mut().find(|(d, _)| *d == m) {
                Some((_, ts)) => {
                    for t in tags {
                        if !ts.contains(&t) {
                            ts.push(t);
                        }
                    }
                }
                None => images.push((m, tags)),
            }
        }
        let mut b = tar::Builder::new(out);
        let mut written = std::collections::HashSet::new();
        let mut index = Vec::new();
        let mut docker = Vec::new();
        let mut repos: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
        add_dir(&mut b, "blobs/")?;
        add_dir(&mut b, "blobs/sha256/")?;
        for (m, tags) in &images {
            let manifest = self.read_manifest(m)?;
            let mut blobs = vec![m.clone(), manifest.config.digest.clone()];
            blobs.extend(manifest.layers.iter().map(|l| l.digest.clone()));
            for d in blobs {
                if written.insert(d.clone()) {
                    let size = self.blobs.size(&d)?;
                    let mut f = self.blobs.open_blob(&d)?;
                    let mut h = file_header(size);
                    b.append_data(&mut h, format!("blobs/sha256/{}", d.hex()), &mut f)
                        .at(self.blobs.path(&d))?;
                }
            }
            let desc = self.descriptor_of(m)?;
            if tags.is_empty() {
                index.push(desc.clone());
            }
            for t in tags {
                let mut d = desc.clone();
                d.annotations
                    .insert(spec::ANNOTATION_IMAGE_NAME.to_string(), t.clone());
                d.annotations.insert(
                    spec::ANNOTATION_REF_NAME.to_string(),
                    reference::split_tag(t).1.to_string(),
                );
                index.push(d);
                let (n, tg) = reference::split_tag(t);
                repos
                    .entry(n.to_string())
                    .or_default()
                    .insert(tg.to_string(), manifest.config.digest.hex().to_string());
            }
            docker.push(DockerArchiveEntry {
                config: format!("blobs/sha256/{}", manifest.config.digest.hex()),
                repo_tags: if tags.is_empty() {
                    None
                } else {
                    Some(tags.clone())
                },
                layers: manifest
                    .layers
                    .iter()
                    .map(|l| format!("blobs/sha256/{}", l.digest.hex()))
                    .collect(),
            });
        }
        let idx = Index {
            schema_version: 2,
            media_type: Some(spec::MEDIA_OCI_INDEX.to_string()),
            manifests: index,
        };
        add_file(&mut b, "index.json", &spec::to_json(&idx, "index.json")?)?;
        add_file(&mut b, "oci-layout", br#"{"imageLayoutVersion":"1.0.0"}"#)?;
        if format == SaveFormat::Docker {
            add_file(
                &mut b,
                "manifest.json",
                &spec::to_json(&docker, "manifest.json")?,
            )?;
            add_file(
                &mut b,
                "repositories",
                &spec::to_json(&repos, "repositories")?,
            )?;
        }
        b.into_inner()
            .and_then(|w| w.flush())
            .at("archive output")?;
        Ok(())
    }
}

/// docker-archive RepoTags by config digest (for OCI indexes without name annotations).
fn docker_names(entries: &[DockerArchiveEntry]) -> HashMap<Digest, Vec<String>> {
    let mut out = HashMap::new();
    for e in entries {
        let base = e.config.rsplit('/').next().unwrap_or(&e.config);
        let hex = base.strip_suffix(".json").unwrap_or(base);
        if let Ok(d) = Digest::from_hex(hex) {
            let tags: Vec<String> = e
                .repo_tags
                .iter()
                .flatten()
                .filter_map(|t| reference::normalize_tag(t).ok())
                .collect();
            out.insert(d, tags);
        }
    }
    out
}

fn file_header(size: u64) -> tar::Header {
    let mut h = tar::Header::new_ustar();
    h.set_entry_type(tar::EntryType::Regular);
    h.set_mode(0o644);
    h.set_size(size);
    h.set_mtime(0);
    h.set_uid(0);
    h.set_gid(0);
    h
}

fn add_file<W: Write>(b: &mut tar::Builder<W>, name: &str, data: &[u8]) -> Result<()> {
    let mut h = file_header(data.len() as u64);
    b.append_data(&mut h, name, data).at(name)
}

fn add_dir<W: Write>(b: &mut tar::Builder<W>, name: &str) -> Result<()> {
    let mut h = file_header(0);
    h.set_entry_type(tar::EntryType::Directory);
    h.set_mode(0o755);
    b.append_data(&mut h, name, io::empty()).at(name)
}
