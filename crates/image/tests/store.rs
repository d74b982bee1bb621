//! Load / save / tag / rmi / prune / import, round trips and bad input.

mod common;

use std::collections::BTreeMap;
use std::fs;
use std::path::Path;

use berth_image::{Digest, Error, ImageStore, Removed, SaveFormat};
use common::*;

fn blobs_of(root: &Path) -> BTreeMap<String, Vec<u8>> {
    let dir = root.join("blobs/sha256");
    fs::read_dir(&dir)
        .map(|r| {
            r.map(|e| {
                let e = e.expect("entry");
                (
                    e.file_name().to_string_lossy().into_owned(),
                    fs::read(e.path()).expect("read"),
                )
            })
            .collect()
        })
        .unwrap_or_default()
}

fn assert_store_empty(root: &Path) {
    let count = |d: &str| fs::read_dir(root.join(d)).map(|r| r.count()).unwrap_or(0);
    assert_eq!(
        count("blobs/sha256"),
        0,
        "orphan blobs: {:?}",
        blobs_of(root).keys()
    );
    assert_eq!(count("layers"), 0, "orphan layers");
    assert_eq!(count("tmp"), 0, "leftovers in tmp");
}

fn two_layer_image() -> TestImage {
    let l1 = tar_of(&[dir("etc"), file("etc/hostname", "one\n"), file("a", "a")]);
    let l2 = tar_of(&[file(".wh.a", ""), file("b", "b")]);
    image(vec![(gzip(&l1), l1), (zstd(&l2), l2)], &["/bin/sh"])
}

fn save(store: &ImageStore, refs: &[&str], format: SaveFormat) -> Vec<u8> {
    let refs: Vec<String> = refs.iter().map(|s| s.to_string()).collect();
    let mut out = Vec::new();
    store.save(&refs, format, &mut out).expect("save");
    out
}

#[test]
fn oci_archive_round_trip_is_byte_identical() {
    need_root!();
    let tmp = tempdir();
    let img = two_layer_image();
    let ar = oci_archive(&[(&img, "example.com/app:1.0")]);
    let mut s1 = ImageStore::open(tmp.path().join("r1")).expect("open");
    let loaded = s1.load_archive(&mut &ar[..], "app.tar").expect("load");
    assert_eq!(loaded.len(), 1);
    assert_eq!(loaded[0].tags, vec!["example.com/app:1.0".to_string()]);
    assert_eq!(loaded[0].manifest, Digest::of(&img.manifest));
    let original = blobs_of(s1.root());
    assert_eq!(original.len(), 4, "manifest, config, 2 layers");

    for format in [SaveFormat::Oci, SaveFormat::Docker] {
        let saved = save(&s1, &["example.com/app:1.0"], format);
        let mut s2 = ImageStore::open(tmp.path().join(format!("r2-{format:?}"))).expect("open");
        let l2 = s2
            .load_archive(&mut &saved[..], "saved.tar")
            .expect("reload");
        assert_eq!(l2[0].manifest, loaded[0].manifest, "{format:?}");
        assert_eq!(l2[0].tags, loaded[0].tags, "{format:?}");
        assert_eq!(blobs_of(s2.root()), original, "{format:?}: blobs differ");
        // And saving again gives the same archive.
        assert_eq!(
            save(&s2, &["example.com/app:1.0"], format),
            saved,
            "{format:?}: save not stable"
        );
    }
}

#[test]
fn legacy_docker_archive_loads_and_round_trips() {
    need_root!();
    let tmp = tempdir();
    let img = two_layer_image();
    let ar = legacy_docker_archive(&img, "docker.io/library/app:latest");
    let mut s = ImageStore::open(tmp.path().join("r")).expect("open");
    let loaded = s
        .load_archive(&mut &ar[..], "docker.tar")
        .expect("load docker archive");
    assert_eq!(loaded[0].config, Digest::of(&img.config));
    // docker.io/library/app:latest answers to app too.
    let d = s.inspect("app").expect("inspect short name");
    assert_eq!(d.id, Digest::of(&img.config));
    assert_eq!(d.root_fs.layers.len(), 2);
    let saved = save(&s, &["app"], SaveFormat::Docker);
    let mut s2 = ImageStore::open(tmp.path().join("r2")).expect("open");
    s2.load_archive(&mut &saved[..], "saved.tar")
        .expect("reload");
    assert_eq!(blobs_of(s2.root()), blobs_of(s.root()));
    // The saved archive has docker's manifest.json too.
    let mut ar = tar::Archive::new(&saved[..]);
    let names: Vec<String> = ar
        .entries()
        .expect("entries")
        .map(|e| {
            e.expect("entry")
                .path()
                .expect("path")
                .display()
                .to_string()
        })
        .collect();
    for n in ["manifest.json", "index.json", "oci-layout", "repositories"] {
        assert!(names.iter().any(|x| x == n), "{n} missing in {names:?}");
    }
    // Merged layers: /a deleted by layer 2, /b added.
    let m = mount_image(&s, "app", tmp.path());
    assert!(
        !m.0.join("a").exists() && m.0.join("b").is_file() && m.0.join("etc/hostname").is_file()
    );
}

fn mount_image(s: &ImageStore, r: &str, base: &Path) -> Mounted {
    let dirs: Vec<_> = ["u", "w", "m"]
        .iter()
        .map(|d| base.join(format!("{r}-{d}")))
        .collect();
    for d in &dirs {
        fs::create_dir_all(d).expect("mkdir");
    }
    s.mount(r, &dirs[0], &dirs[1], &dirs[2]).expect("mount");
    Mounted(dirs[2].clone())
}

#[test]
fn oci_layout_directory_loads() {
    need_root!();
    let tmp = tempdir();
    let img = two_layer_image();
    oci_layout_dir(&img, "registry.local/x:v1", &tmp.path().join("layout"));
    let mut s = ImageStore::open(tmp.path().join("r")).expect("open");
    s.load_path(&tmp.path().join("layout"))
        .expect("load layout");
    let list = s.list().expect("list");
    assert_eq!(list.len(), 1);
    assert_eq!(
        (list[0].repository.as_str(), list[0].tag.as_str()),
        ("registry.local/x", "v1")
    );
    // The store root is itself a valid OCI layout listing the tag.
    let idx: serde_json::Value =
        serde_json::from_slice(&fs::read(s.root().join("index.json")).expect("index"))
            .expect("json");
    assert_eq!(
        idx["manifests"][0]["annotations"]["org.opencontainers.image.ref.name"],
        "registry.local/x:v1"
    );
}

#[test]
fn layers_are_shared_by_chain_id() {
    need_root!();
    let tmp = tempdir();
    let base = tar_of(&[file("base", "base")]);
    let a = image_plain(vec![base.clone(), tar_of(&[file("a", "a")])]);
    let b = image_plain(vec![base.clone(), tar_of(&[file("b", "b")])]);
    let mut s = ImageStore::open(tmp.path().join("r")).expect("open");
    s.load_archive(&mut &oci_archive(&[(&a, "a:1"), (&b, "b:1")])[..], "ab.tar")
        .expect("load");
    let layers = fs::read_dir(s.root().join("layers"))
        .expect("layers")
        .count();
    assert_eq!(layers, 3, "the base layer is unpacked once");
    assert_eq!(
        s.layer_dirs("a:1").expect("a")[0],
        s.layer_dirs("b:1").expect("b")[0]
    );
    // Removing one image keeps the shared layer.
    s.remove("a:1", false).expect("rmi");
    assert_eq!(
        fs::read_dir(s.root().join("layers"))
            .expect("layers")
            .count(),
        2
    );
    assert!(s.layer_dirs("b:1").expect("b")[0].join("base").is_file());
}

#[test]
fn tag_rmi_prune() {
    need_root!();
    let tmp = tempdir();
    let img = two_layer_image();
    let mut s = ImageStore::open(tmp.path().join("r")).expect("open");
    s.load_archive(&mut &oci_archive(&[(&img, "app:1")])[..], "a.tar")
        .expect("load");
    s.tag("app:1", "app:2").expect("tag");
    s.tag("app:1", "other").expect("tag");
    assert_eq!(s.list().expect("list").len(), 3);
    let id = Digest::of(&img.config);
    // By id with several tags: refused without force.
    assert!(matches!(
        s.remove(id.short(), false),
        Err(Error::InUse { .. })
    ));
    assert_eq!(
        s.remove("app:2", false).expect("rmi"),
        vec![Removed::Untagged("app:2".into())]
    );
    assert!(matches!(s.inspect("app:2"), Err(Error::ImageNotFound(_))));
    assert!(matches!(
        s.remove("nope:1", false),
        Err(Error::ImageNotFound(_))
    ));
    // Tag moved away: the image stays reachable by the other tag.
    let img2 = image_plain(vec![tar_of(&[file("x", "x")])]);
    s.load_archive(&mut &oci_archive(&[(&img2, "app:1")])[..], "b.tar")
        .expect("load");
    assert_eq!(s.inspect("other:latest").expect("other").id, id);
    s.remove("other", false).expect("rmi");
    // Now the first image is untagged (app:1 moved): prune removes it.
    assert_eq!(s.list().expect("list").len(), 1);
    let remaining = blobs_of(s.root()).len();
    assert_eq!(remaining, 3, "only the second image's blobs");
    s.remove("app:1", false).expect("rmi");
    assert_eq!(s.prune().expect("prune"), Vec::<Digest>::new());
    assert_store_empty(s.root());
}

#[test]
fn a_lease_defers_collection() {
    need_root!();
    let tmp = tempdir();
    let mut s = ImageStore::open(tmp.path().join("r")).expect("open");
    let a = image_plain(vec![tar_of(&[file("a", "1")])]);
    s.load_archive(&mut &oci_archive(&[(&a, "x:1")])[..], "a.tar")
        .expect("load");
    let layers = || {
        fs::read_dir(tmp.path().join("r/layers"))
            .expect("layers")
            .count()
    };
    // A build holds a lease while its layers have no image yet: removing an image then
    // leaves unreferenced layers and blobs for a later collection.
    let lease = s.lease().expect("lease");
    s.remove("x:1", false).expect("rmi");
    assert_eq!(layers(), 1);
    assert_eq!(blobs_of(s.root()).len(), 3);
    drop(lease);
    assert_eq!(s.prune().expect("prune"), Vec::<Digest>::new());
    assert_store_empty(s.root());
}

#[test]
fn prune_removes_untagged() {
    need_root!();
    let tmp = tempdir();
    let mut s = ImageStore::open(tmp.path().join("r")).expect("open");
    let a = image_plain(vec![tar_of(&[file("a", "1")])]);
    let b = image_plain(vec![tar_of(&[file("a", "2")])]);
    s.load_archive(&mut &oci_archive(&[(&a, "x:1")])[..], "a.tar")
        .expect("load");
    s.load_archive(&mut &oci_archive(&[(&b, "x:1")])[..], "b.tar")
        .expect("load");
    let list = s.list().expect("list");
    assert_eq!(list.iter().filter(|i| i.tag == "<none>").count(), 1);
    assert_eq!(s.prune().expect("prune"), vec![Digest::of(&a.config)]);
    assert_eq!(s.list().expect("list").len(), 1);
    assert_eq!(blobs_of(s.root()).len(), 3);
}

#[test]
fn import_busybox_rootfs() {
    need_root!();
    let Some(rootfs) = busybox_rootfs() else {
        eprintln!("skipped: no static busybox");
        return;
    };
    let tmp = tempdir();
    let mut s = ImageStore::open(tmp.path().join("r")).expect("open");
    let gz = gzip(&rootfs);
    let l = s.import_rootfs(&mut &gz[..], "busybox").expect("import");
    assert_eq!(l.tags, vec!["busybox:latest".to_string()]);
    let d = s.inspect("busybox").expect("inspect");
    assert_eq!(d.root_fs.layers, vec![Digest::of(&rootfs)]);
    assert_eq!((d.architecture.as_str(), d.os.as_str()), ("amd64", "linux"));
    let m = mount_image(&s, "busybox", tmp.path());
    let out = std::process::Command::new("chroot")
        .arg(&m.0)
        .args(["/bin/sh", "-c", "echo hi > /tmp/x && cat /tmp/x && ls /bin"])
        .output()
        .expect("chroot");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout)
            .split_whitespace()
            .collect::<Vec<_>>(),
        ["hi", "busybox", "cat", "echo", "ls", "sh", "true"]
    );
    // A bad name leaves nothing behind.
    drop(m);
    assert!(matches!(
        s.import_rootfs(&mut &gz[..], "Bad Name"),
        Err(Error::InvalidReference(_))
    ));
}

#[test]
fn bad_input_gives_clear_errors_and_a_clean_store() {
    need_root!();
    let tmp = tempdir();
    let root = tmp.path().join("r");
    let mut s = ImageStore::open(&root).expect("open");
    let img = two_layer_image();
    let good = oci_archive(&[(&img, "app:1")]);

    // Not an archive at all.
    let err = s
        .load_archive(&mut &b"hello, this is not a tar"[..], "junk.tar")
        .unwrap_err();
    assert!(matches!(err, Error::Archive { .. }), "{err}");
    assert!(err.to_string().contains("junk.tar"), "{err}");
    // Empty input.
    assert!(matches!(
        s.load_archive(&mut &b""[..], "empty.tar"),
        Err(Error::Archive { .. })
    ));
    // Truncated in the middle of a blob.
    let err = s
        .load_archive(&mut &good[..good.len() / 2][..], "half.tar")
        .unwrap_err();
    assert!(
        err.to_string().contains("half.tar") || err.to_string().contains("sha256"),
        "{err}"
    );
    assert_store_empty(&root);

    // A blob whose content doesn't match its name.
    let mut bad = img_with_layer_bytes(&img, |l| {
        let mid = l.len() / 2;
        l[mid] ^= 0xff
    });
    let err = s.load_archive(&mut &bad[..], "flipped.tar").unwrap_err();
    assert!(
        matches!(
            err,
            Error::DigestMismatch { .. } | Error::Archive { .. } | Error::Layer { .. }
        ),
        "{err}"
    );
    assert!(err.to_string().contains("sha256:"), "{err}");
    assert_store_empty(&root);

    // A layer whose content doesn't match the config's diff id.
    let wrong = image(
        vec![(tar_of(&[file("a", "a")]), tar_of(&[file("a", "other")]))],
        &["/bin/sh"],
    );
    let err = s
        .load_archive(&mut &oci_archive(&[(&wrong, "w:1")])[..], "w.tar")
        .unwrap_err();
    assert!(matches!(err, Error::Layer { .. }), "{err}");
    assert!(err.to_string().contains("config says"), "{err}");
    assert_store_empty(&root);

    // A manifest that names a missing blob.
    let mut ar = tar::Builder::new(Vec::new());
    let mut it = tar::Archive::new(&good[..]);
    for e in it.entries().expect("entries") {
        let mut e = e.expect("entry");
        let p = e.path().expect("path").display().to_string();
        if p.ends_with(Digest::of(&img.layers[1].0).hex()) {
            continue;
        }
        let mut h = e.header().clone();
        let mut data = Vec::new();
        std::io::Read::read_to_end(&mut e, &mut data).expect("read");
        ar.append_data(&mut h, &p, &data[..]).expect("append");
    }
    let missing = ar.into_inner().expect("tar");
    let err = s
        .load_archive(&mut &missing[..], "missing.tar")
        .unwrap_err();
    assert!(err.to_string().contains("missing"), "{err}");
    assert_store_empty(&root);

    // Corrupt docker archive config (named by a digest it doesn't have).
    let mut legacy = legacy_docker_archive(&img, "app:1");
    let pos = find(&legacy, b"\"architecture\"").expect("config in archive");
    legacy[pos + 1] = b'A';
    fix_checksums(&mut legacy);
    let err = s.load_archive(&mut &legacy[..], "legacy.tar").unwrap_err();
    assert!(matches!(err, Error::DigestMismatch { .. }), "{err}");
    assert_store_empty(&root);

    // Unknown image.
    assert!(matches!(s.inspect("nothere"), Err(Error::ImageNotFound(_))));
    let mut out = Vec::new();
    let err = s
        .save(&["nothere:1".into()], SaveFormat::Oci, &mut out)
        .unwrap_err();
    assert!(err.to_string().contains("nothere"), "{err}");
    assert!(matches!(
        s.tag("nothere", "x"),
        Err(Error::ImageNotFound(_))
    ));

    // After all that, a good load works and nothing else is there.
    s.load_archive(&mut &good[..], "good.tar")
        .expect("good load");
    assert_eq!(blobs_of(&root).len(), 4);
    bad.clear();
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// Recompute every tar header checksum (after editing contents in place).
fn fix_checksums(data: &mut [u8]) {
    let mut off = 0;
    while off + 512 <= data.len() {
        if data[off..off + 512].iter().all(|b| *b == 0) {
            break;
        }
        let size = tar::Header::from_byte_slice(&data[off..off + 512])
            .entry_size()
            .expect("size");
        let h = &mut data[off..off + 512];
        h[148..156].fill(b' ');
        let sum: u32 = h.iter().map(|b| u32::from(*b)).sum();
        h[148..156].copy_from_slice(format!("{sum:06o}\0 ").as_bytes());
        off += 512 + size.div_ceil(512) as usize * 512;
    }
}

/// The OCI archive of `img` with its first layer blob's bytes edited (name unchanged).
fn img_with_layer_bytes(img: &TestImage, edit: impl Fn(&mut Vec<u8>)) -> Vec<u8> {
    let mut ar = oci_archive(&[(img, "app:1")]);
    let layer = &img.layers[0].0;
    let pos = find(&ar, &layer[..64]).expect("layer in archive");
    let mut l = layer.clone();
    edit(&mut l);
    ar[pos..pos + l.len()].copy_from_slice(&l);
    ar
}
