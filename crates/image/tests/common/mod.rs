//! Test fixtures made here, in Rust: layer tars (including hostile ones, written byte by
//! byte so nothing sanitizes them), OCI layouts/archives, legacy docker archives, a model
//! of OCI layer semantics, and tree listings to compare against.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::fs;
use std::io::Write;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

use berth_image::Digest;
use serde_json::json;

pub fn is_root() -> bool {
    nix::unistd::geteuid().is_root()
}

/// Skip a test (with a note) when not root.
#[macro_export]
macro_rules! need_root {
    () => {
        if !common::is_root() {
            eprintln!("skipped: needs root");
            return;
        }
    };
}

// ---------------------------------------------------------------- raw tar writer

#[derive(Clone, Debug)]
pub enum Kind {
    File(Vec<u8>),
    Dir,
    Symlink(String),
    Hardlink(String),
    Char(u32, u32),
    Block(u32, u32),
    Fifo,
}

#[derive(Clone, Debug)]
pub struct Entry {
    pub path: String,
    pub kind: Kind,
    pub mode: u32,
    pub uid: u64,
    pub gid: u64,
    pub mtime: u64,
    pub xattrs: Vec<(String, Vec<u8>)>,
}

pub fn e(path: &str, kind: Kind) -> Entry {
    let mode = match kind {
        Kind::Dir => 0o755,
        Kind::Symlink(_) => 0o777,
        _ => 0o644,
    };
    Entry {
        path: path.to_string(),
        kind,
        mode,
        uid: 0,
        gid: 0,
        mtime: 1_600_000_000,
        xattrs: Vec::new(),
    }
}
pub fn file(path: &str, data: &str) -> Entry {
    e(path, Kind::File(data.as_bytes().to_vec()))
}
pub fn dir(path: &str) -> Entry {
    e(path, Kind::Dir)
}
pub fn symlink(path: &str, target: &str) -> Entry {
    e(path, Kind::Symlink(target.to_string()))
}
pub fn hardlink(path: &str, target: &str) -> Entry {
    e(path, Kind::Hardlink(target.to_string()))
}
impl Entry {
    pub fn mode(mut self, m: u32) -> Self {
        self.mode = m;
        self
    }
    pub fn owner(mut self, uid: u64, gid: u64) -> Self {
        self.uid = uid;
        self.gid = gid;
        self
    }
    pub fn mtime(mut self, t: u64) -> Self {
        self.mtime = t;
        self
    }
    pub fn xattr(mut self, k: &str, v: &[u8]) -> Self {
        self.xattrs.push((k.to_string(), v.to_vec()));
        self
    }
}

fn pax_record(key: &str, value: &[u8]) -> Vec<u8> {
    let body_len = key.len() + value.len() + 3; // ' ' '=' '\n'
    let mut n = body_len + 1;
    loop {
        let total = body_len + n.to_string().len();
        if total == n {
            break;
        }
        n = total;
    }
    let mut v = format!("{n} {key}=").into_bytes();
    v.extend_from_slice(value);
    v.push(b'\n');
    v
}

fn header(name: &[u8], typeflag: u8, size: u64, en: &Entry, link: &[u8]) -> [u8; 512] {
    let mut h = tar::Header::new_ustar();
    h.set_size(size);
    h.set_mode(en.mode);
    h.set_uid(en.uid);
    h.set_gid(en.gid);
    h.set_mtime(en.mtime);
    h.set_entry_type(tar::EntryType::new(typeflag));
    {
        let b = h.as_mut_bytes();
        let n = name.len().min(100);
        b[..n].copy_from_slice(&name[..n]);
        let l = link.len().min(100);
        b[157..157 + l].copy_from_slice(&link[..l]);
    }
    if let Kind::Char(ma, mi) | Kind::Block(ma, mi) = en.kind {
        h.set_device_major(ma).expect("major");
        h.set_device_minor(mi).expect("minor");
    }
    h.set_cksum();
    *h.as_bytes()
}

fn pad(out: &mut Vec<u8>) {
    let r = out.len() % 512;
    if r != 0 {
        out.extend(std::iter::repeat_n(0u8, 512 - r));
    }
}

/// A tar of `entries`, exactly as given (no path cleaning): PAX headers carry long
/// paths, long link targets and xattrs.
pub fn tar_of(entries: &[Entry]) -> Vec<u8> {
    let mut out = Vec::new();
    for en in entries {
        let (typeflag, data, link): (u8, &[u8], &[u8]) = match &en.kind {
            Kind::File(d) => (b'0', d, b""),
            Kind::Dir => (b'5', b"", b""),
            Kind::Symlink(t) => (b'2', b"", t.as_bytes()),
            Kind::Hardlink(t) => (b'1', b"", t.as_bytes()),
            Kind::Char(..) => (b'3', b"", b""),
            Kind::Block(..) => (b'4', b"", b""),
            Kind::Fifo => (b'6', b"", b""),
        };
        let mut path = en.path.clone();
        if matches!(en.kind, Kind::Dir) && !path.ends_with('/') {
            path.push('/');
        }
        let mut pax = Vec::new();
        if path.len() > 100 {
            pax.extend(pax_record("path", path.as_bytes()));
        }
        if link.len() > 100 {
            pax.extend(pax_record("linkpath", link));
        }
        for (k, v) in &en.xattrs {
            pax.extend(pax_record(&format!("SCHILY.xattr.{k}"), v));
        }
        if !pax.is_empty() {
            out.extend_from_slice(&header(b"PaxHeader", b'x', pax.len() as u64, en, b""));
            out.extend_from_slice(&pax);
            pad(&mut out);
        }
        out.extend_from_slice(&header(
            path.as_bytes(),
            typeflag,
            data.len() as u64,
            en,
            link,
        ));
        out.extend_from_slice(data);
        pad(&mut out);
    }
    out.extend(std::iter::repeat_n(0u8, 1024));
    out
}

pub fn gzip(data: &[u8]) -> Vec<u8> {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    enc.write_all(data).expect("gzip");
    enc.finish().expect("gzip")
}

pub fn zstd(data: &[u8]) -> Vec<u8> {
    ruzstd::encoding::compress_to_vec(data, ruzstd::encoding::CompressionLevel::Fastest)
}

// ---------------------------------------------------------------- images

/// An image made of layer blobs (each possibly compressed; `diff` is the plain tar).
pub struct TestImage {
    pub layers: Vec<(Vec<u8>, Vec<u8>)>, // (blob, plain tar)
    pub config: Vec<u8>,
    pub manifest: Vec<u8>,
}

pub fn media_type(blob: &[u8]) -> &'static str {
    if blob.starts_with(&[0x1f, 0x8b]) {
        "application/vnd.oci.image.layer.v1.tar+gzip"
    } else if blob.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
        "application/vnd.oci.image.layer.v1.tar+zstd"
    } else {
        "application/vnd.oci.image.layer.v1.tar"
    }
}

pub fn image(layers: Vec<(Vec<u8>, Vec<u8>)>, cmd: &[&str]) -> TestImage {
    let diff_ids: Vec<String> = layers
        .iter()
        .map(|(_, plain)| Digest::of(plain).to_string())
        .collect();
    let config = serde_json::to_vec(&json!({
        "created": "2024-01-02T03:04:05Z",
        "architecture": "amd64",
        "os": "linux",
        "config": {"Cmd": cmd, "Env": ["PATH=/usr/sbin:/usr/bin:/sbin:/bin"]},
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
    }))
    .expect("json");
    let manifest = serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {
            "mediaType": "application/vnd.oci.image.config.v1+json",
            "digest": Digest::of(&config).to_string(),
            "size": config.len(),
        },
        "layers": layers.iter().map(|(b, _)| json!({
            "mediaType": media_type(b),
            "digest": Digest::of(b).to_string(),
            "size": b.len(),
        })).collect::<Vec<_>>(),
    }))
    .expect("json");
    TestImage {
        layers,
        config,
        manifest,
    }
}

/// Plain tars → an image with uncompressed layers.
pub fn image_plain(tars: Vec<Vec<u8>>) -> TestImage {
    image(
        tars.into_iter().map(|t| (t.clone(), t)).collect(),
        &["/bin/sh"],
    )
}

fn add(b: &mut tar::Builder<Vec<u8>>, name: &str, data: &[u8]) {
    let mut h = tar::Header::new_ustar();
    h.set_size(data.len() as u64);
    h.set_mode(0o644);
    h.set_entry_type(tar::EntryType::Regular);
    b.append_data(&mut h, name, data).expect("tar");
}

/// An OCI archive (tar of an OCI layout) holding `images` with their names.
pub fn oci_archive(images: &[(&TestImage, &str)]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    add(&mut b, "oci-layout", br#"{"imageLayoutVersion":"1.0.0"}"#);
    let mut manifests = Vec::new();
    for (img, name) in images {
        for blob in [&img.config, &img.manifest]
            .into_iter()
            .chain(img.layers.iter().map(|(b, _)| b))
        {
            add(
                &mut b,
                &format!("blobs/sha256/{}", Digest::of(blob).hex()),
                blob,
            );
        }
        manifests.push(json!({
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "digest": Digest::of(&img.manifest).to_string(),
            "size": img.manifest.len(),
            "annotations": {"org.opencontainers.image.ref.name": name},
        }));
    }
    let index = json!({"schemaVersion": 2, "manifests": manifests});
    add(
        &mut b,
        "index.json",
        &serde_json::to_vec(&index).expect("json"),
    );
    b.into_inner().expect("tar")
}

/// The same, as a directory.
pub fn oci_layout_dir(img: &TestImage, name: &str, dir: &Path) {
    let data = oci_archive(&[(img, name)]);
    tar::Archive::new(&data[..])
        .unpack(dir)
        .expect("unpack layout");
}

/// A docker-archive as older `docker save` made it: `<id>/layer.tar`, `<hex>.json`,
/// manifest.json, repositories.
pub fn legacy_docker_archive(img: &TestImage, tag: &str) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    let config_name = format!("{}.json", Digest::of(&img.config).hex());
    add(&mut b, &config_name, &img.config);
    let mut layer_paths = Vec::new();
    for (i, (blob, _)) in img.layers.iter().enumerate() {
        let id = Digest::of(format!("layer{i}").as_bytes());
        let p = format!("{}/layer.tar", id.hex());
        add(&mut b, &format!("{}/VERSION", id.hex()), b"1.0");
        add(&mut b, &p, blob);
        layer_paths.push(p);
    }
    let manifest = json!([{"Config": config_name, "RepoTags": [tag], "Layers": layer_paths}]);
    add(
        &mut b,
        "manifest.json",
        &serde_json::to_vec(&manifest).expect("json"),
    );
    b.into_inner().expect("tar")
}

// ---------------------------------------------------------------- busybox rootfs

/// A minimal rootfs tar from the host's static busybox (skips when there is none).
pub fn busybox_rootfs() -> Option<Vec<u8>> {
    let bb = ["/bin/busybox", "/usr/bin/busybox"]
        .into_iter()
        .find(|p| Path::new(p).exists())?;
    let data = fs::read(bb).ok()?;
    let mut entries = vec![
        dir("bin"),
        file("bin/busybox", "").mode(0o755),
        dir("etc"),
        file("etc/passwd", "root:x:0:0:root:/root:/bin/sh\n"),
        file("etc/group", "root:x:0:\n"),
        dir("tmp").mode(0o1777),
        dir("root").mode(0o700),
    ];
    entries[1].kind = Kind::File(data);
    for applet in ["sh", "ls", "cat", "echo", "true"] {
        entries.push(symlink(&format!("bin/{applet}"), "busybox"));
    }
    Some(tar_of(&entries))
}

// ---------------------------------------------------------------- OCI semantics model

#[derive(Clone, Debug, PartialEq)]
pub struct Node {
    pub kind: String,
    pub mode: u32,
    pub uid: u64,
    pub gid: u64,
    pub mtime: Option<u64>,
    pub xattrs: BTreeMap<String, Vec<u8>>,
}

fn clean(p: &str) -> String {
    p.split('/')
        .filter(|c| !c.is_empty() && *c != ".")
        .collect::<Vec<_>>()
        .join("/")
}

fn remove_subtree(tree: &mut BTreeMap<String, Node>, p: &str) {
    let prefix = format!("{p}/");
    tree.retain(|k, _| k != p && !k.starts_with(&prefix));
}

fn node_of(en: &Entry, tree: &BTreeMap<String, Node>, layer: &[Entry]) -> Node {
    let kind = match &en.kind {
        Kind::File(d) => format!("file {}", Digest::of(d).short()),
        Kind::Dir => "dir".to_string(),
        Kind::Symlink(t) => format!("symlink -> {t}"),
        Kind::Hardlink(t) => {
            let t = clean(t);
            return tree.get(&t).cloned().unwrap_or_else(|| {
                // target is in this layer, added before
                let src = layer
                    .iter()
                    .find(|x| clean(&x.path) == t)
                    .expect("link target");
                node_of(src, tree, layer)
            });
        }
        Kind::Char(a, b) => format!("char {a}:{b}"),
        Kind::Block(a, b) => format!("block {a}:{b}"),
        Kind::Fifo => "fifo".to_string(),
    };
    Node {
        mode: if matches!(en.kind, Kind::Symlink(_)) {
            0o777
        } else {
            en.mode & 0o7777
        },
        uid: en.uid,
        gid: en.gid,
        mtime: if matches!(en.kind, Kind::Dir) {
            None
        } else {
            Some(en.mtime)
        },
        xattrs: en
            .xattrs
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
        kind,
    }
}

/// Apply layers per the OCI image spec: whiteouts and opaque markers hide what lower
/// layers had; then the layer's entries are added in order (a non-directory replaces
/// whatever was there, a directory over a directory keeps its contents).
pub fn model(layers: &[Vec<Entry>]) -> BTreeMap<String, Node> {
    let mut tree: BTreeMap<String, Node> = BTreeMap::new();
    for layer in layers {
        for en in layer {
            let p = clean(&en.path);
            let (parent, name) = p.rsplit_once('/').unwrap_or(("", p.as_str()));
            if name == ".wh..wh..opq" {
                let prefix = if parent.is_empty() {
                    String::new()
                } else {
                    format!("{parent}/")
                };
                tree.retain(|k, _| !(k.starts_with(&prefix) && k != parent));
            } else if let Some(t) = name.strip_prefix(".wh.") {
                let target = if parent.is_empty() {
                    t.to_string()
                } else {
                    format!("{parent}/{t}")
                };
                remove_subtree(&mut tree, &target);
            }
        }
        for en in layer {
            let p = clean(&en.path);
            let name = p.rsplit('/').next().unwrap_or("");
            if name.starts_with(".wh.") || p.is_empty() {
                continue;
            }
            let n = node_of(en, &tree, layer);
            let keep_children = n.kind == "dir" && tree.get(&p).is_some_and(|o| o.kind == "dir");
            if !keep_children {
                remove_subtree(&mut tree, &p);
            }
            tree.insert(p, n);
        }
    }
    tree
}

/// What's on disk under `root`, in the model's terms.
pub fn listing(root: &Path) -> BTreeMap<String, Node> {
    let mut out = BTreeMap::new();
    walk(root, root, &mut out);
    out
}

fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<String, Node>) {
    let mut names: Vec<_> = fs::read_dir(dir)
        .expect("read_dir")
        .map(|e| e.expect("entry").path())
        .collect();
    names.sort();
    for p in names {
        let md = fs::symlink_metadata(&p).expect("lstat");
        let ft = md.file_type();
        let kind = if ft.is_dir() {
            "dir".to_string()
        } else if ft.is_symlink() {
            format!(
                "symlink -> {}",
                fs::read_link(&p).expect("readlink").display()
            )
        } else if ft.is_file() {
            format!("file {}", Digest::of(&fs::read(&p).expect("read")).short())
        } else if ft.is_char_device() {
            let r = md.rdev();
            format!(
                "char {}:{}",
                nix::sys::stat::major(r),
                nix::sys::stat::minor(r)
            )
        } else if ft.is_block_device() {
            let r = md.rdev();
            format!(
                "block {}:{}",
                nix::sys::stat::major(r),
                nix::sys::stat::minor(r)
            )
        } else if ft.is_fifo() {
            "fifo".to_string()
        } else {
            "other".to_string()
        };
        let rel = p
            .strip_prefix(root)
            .expect("prefix")
            .to_string_lossy()
            .into_owned();
        let xattrs = berth_image::snapshot::xattrs_of(&p)
            .expect("xattrs")
            .into_iter()
            .filter(|(k, _)| !k.starts_with(b"security.selinux"))
            .map(|(k, v)| (String::from_utf8_lossy(&k).into_owned(), v))
            .collect();
        out.insert(
            rel,
            Node {
                mode: md.mode() & 0o7777,
                uid: u64::from(md.uid()),
                gid: u64::from(md.gid()),
                mtime: if ft.is_dir() {
                    None
                } else {
                    Some(md.mtime() as u64)
                },
                xattrs,
                kind: kind.clone(),
            },
        );
        if ft.is_dir() {
            walk(root, &p, out);
        }
    }
}

/// Assert two trees are equal, printing the differences.
pub fn assert_trees_eq(actual: &BTreeMap<String, Node>, expected: &BTreeMap<String, Node>) {
    let mut diffs = Vec::new();
    for (k, v) in expected {
        match actual.get(k) {
            None => diffs.push(format!("missing: {k} {v:?}")),
            Some(a) if a != v => diffs.push(format!("differs: {k}\n   got  {a:?}\n   want {v:?}")),
            _ => {}
        }
    }
    for (k, v) in actual {
        if !expected.contains_key(k) {
            diffs.push(format!("unexpected: {k} {v:?}"));
        }
    }
    assert!(diffs.is_empty(), "trees differ:\n{}", diffs.join("\n"));
}

/// A temporary directory on a file system that supports overlay upper dirs and trusted
/// xattrs (under the target dir, not tmpfs-limited).
pub fn tempdir() -> tempfile::TempDir {
    let base = PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
    fs::create_dir_all(&base).expect("tmpdir base");
    tempfile::Builder::new()
        .prefix("berth-image-")
        .tempdir_in(base)
        .expect("tempdir")
}

/// Unmounts on drop.
pub struct Mounted(pub PathBuf);
impl Drop for Mounted {
    fn drop(&mut self) {
        let _ = berth_image::snapshot::unmount(&self.0);
    }
}
