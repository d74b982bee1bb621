//! The merged overlay view of a 3-layer image (deletions, an opaque dir, file↔dir swaps,
//! hard links, xattrs, setuid, devices, long and odd names) against a model of the OCI
//! layer semantics — and against umoci's unpack when umoci is installed.

mod common;

use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::process::Command;

use berth_image::ImageStore;
use common::*;

/// cap_net_raw+ep as a VFS_CAP_REVISION_2 security.capability value.
const CAP_NET_RAW_EP: [u8; 20] = [
    0x01, 0x00, 0x00, 0x02, 0x00, 0x20, 0x00, 0x00, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
];

pub fn fixture_layers() -> Vec<Vec<Entry>> {
    let long = format!("fixture/long/{}", "n".repeat(200));
    let l1 = vec![
        dir("fixture"),
        file("fixture/deleted.txt", "bye"),
        dir("fixture/gone-dir"),
        file("fixture/gone-dir/x.txt", "x"),
        dir("fixture/gone-dir/sub"),
        file("fixture/gone-dir/sub/y.txt", "y"),
        dir("fixture/olddir"),
        file("fixture/olddir/a.txt", "a"),
        file("fixture/olddir/b.txt", "b"),
        dir("fixture/olddir/sub"),
        file("fixture/olddir/sub/c.txt", "c"),
        file("fixture/modified.txt", "v1"),
        file("fixture/target.txt", "target"),
        hardlink("fixture/hardlink.txt", "fixture/target.txt"),
        symlink("fixture/symlink", "target.txt"),
        symlink("fixture/abs-symlink", "/etc/passwd"),
        symlink("fixture/dangling-symlink", "does/not/exist"),
        file("fixture/setuid-bin", "#!/bin/sh\n").mode(0o4755),
        file("fixture/setgid-bin", "#!/bin/sh\n").mode(0o2755),
        dir("fixture/setgid-dir").mode(0o2775),
        dir("fixture/sticky-dir").mode(0o1777),
        file("fixture/xattr.txt", "x")
            .xattr("user.fixture", b"hello")
            .xattr("user.other", b"world"),
        file("fixture/cap-net-raw", "ping")
            .mode(0o755)
            .xattr("security.capability", &CAP_NET_RAW_EP),
        file("fixture/owned-1000.txt", "mine")
            .owner(1000, 1000)
            .mode(0o640),
        dir("fixture/owned-dir-65534")
            .owner(65534, 65534)
            .mode(0o750),
        file("fixture/ro.txt", "ro").mode(0o444),
        e("fixture/fifo", Kind::Fifo),
        e("fixture/null", Kind::Char(1, 3)).mode(0o666),
        file("fixture/space name.txt", "space"),
        file("fixture/ünïcødé.txt", "utf8"),
        dir("fixture/long"),
        file(&long, "long"),
        file("fixture/empty.txt", ""),
        file("fixture/filetodir", "was a file"),
        dir("fixture/dirtofile"),
        file("fixture/dirtofile/inner.txt", "inner"),
        dir("fixture/recreated"),
        file("fixture/recreated/old.txt", "old"),
        file("fixture/mtime.txt", "t").mtime(1_234_567_890),
    ];
    let l2 = vec![
        dir("fixture"),
        file("fixture/.wh.deleted.txt", ""),
        file("fixture/.wh.gone-dir", ""),
        file("fixture/modified.txt", "v2"),
        file("fixture/added-in-layer2.txt", "2"),
        dir("etc"),
        file("etc/motd", "hello from layer 2\n"),
    ];
    let l3 = vec![
        dir("fixture"),
        dir("fixture/olddir"),
        file("fixture/olddir/.wh..wh..opq", ""),
        file("fixture/olddir/new.txt", "new"),
        file("fixture/.wh.filetodir", ""),
        dir("fixture/filetodir"),
        file("fixture/filetodir/inside.txt", "inside"),
        file("fixture/dirtofile", "now a file"),
        file("fixture/l3-src.txt", "l3"),
        hardlink("fixture/l3-hardlink.txt", "fixture/l3-src.txt"),
        symlink("fixture/symlink-to-dir", "olddir"),
        file("fixture/setuid-bin", "#!/bin/sh\necho v3\n").mode(0o4755),
        file("fixture/.wh.recreated", ""),
        dir("fixture/recreated"),
        file("fixture/recreated/new.txt", "new"),
    ];
    vec![l1, l2, l3]
}

fn load_fixture(store: &mut ImageStore, compress: fn(&[u8]) -> Vec<u8>) {
    let layers = fixture_layers()
        .iter()
        .map(|l| {
            let t = tar_of(l);
            (compress(&t), t)
        })
        .collect();
    let img = image(layers, &["/bin/sh"]);
    let ar = oci_archive(&[(&img, "fixture:3")]);
    store
        .load_archive(&mut &ar[..], "fixture.tar")
        .expect("load fixture");
}

fn mount(store: &ImageStore, r: &str, base: &Path) -> Mounted {
    let (upper, work, merged) = (base.join("upper"), base.join("work"), base.join("merged"));
    for d in [&upper, &work, &merged] {
        fs::create_dir_all(d).expect("mkdir");
    }
    store.mount(r, &upper, &work, &merged).expect("mount");
    Mounted(merged)
}

#[test]
fn merged_view_matches_oci_semantics() {
    need_root!();
    for (name, compress) in [
        ("plain", (|d: &[u8]| d.to_vec()) as fn(&[u8]) -> Vec<u8>),
        ("gzip", gzip as fn(&[u8]) -> Vec<u8>),
        ("zstd", zstd as fn(&[u8]) -> Vec<u8>),
    ] {
        let tmp = tempdir();
        let mut store = ImageStore::open(tmp.path().join("root")).expect("open");
        load_fixture(&mut store, compress);
        let m = mount(&store, "fixture:3", tmp.path());
        let merged = &m.0;
        let actual = listing(merged);
        let expected = model(&fixture_layers());
        assert!(expected.len() > 30, "model too small: {}", expected.len());
        assert_trees_eq(&actual, &expected);

        // Spot checks, independent of the model.
        let f = merged.join("fixture");
        for gone in [
            "deleted.txt",
            "gone-dir",
            "olddir/a.txt",
            "olddir/sub",
            "recreated/old.txt",
        ] {
            assert!(
                fs::symlink_metadata(f.join(gone)).is_err(),
                "{name}: {gone} still visible"
            );
        }
        assert_eq!(
            fs::read_to_string(f.join("modified.txt")).expect("read"),
            "v2"
        );
        assert_eq!(
            fs::read_to_string(f.join("olddir/new.txt")).expect("read"),
            "new"
        );
        assert!(f.join("filetodir").is_dir() && f.join("filetodir/inside.txt").is_file());
        assert!(f.join("dirtofile").is_file());
        let md = fs::metadata(f.join("setuid-bin")).expect("stat");
        assert_eq!(md.mode() & 0o7777, 0o4755);
        assert_eq!(
            fs::metadata(f.join("sticky-dir")).expect("stat").mode() & 0o7777,
            0o1777
        );
        let (a, b) = (
            fs::metadata(f.join("target.txt")).expect("stat"),
            fs::metadata(f.join("hardlink.txt")).expect("stat"),
        );
        assert_eq!((a.ino(), a.nlink()), (b.ino(), 2), "{name}: hard link");
        let (a, b) = (
            fs::metadata(f.join("l3-src.txt")).expect("stat"),
            fs::metadata(f.join("l3-hardlink.txt")).expect("stat"),
        );
        assert_eq!(a.ino(), b.ino(), "{name}: layer 3 hard link");
        assert_eq!(
            fs::read_link(f.join("abs-symlink"))
                .expect("readlink")
                .to_str(),
            Some("/etc/passwd")
        );
        for (k, _) in actual.iter() {
            assert!(
                !k.rsplit('/').next().unwrap_or("").starts_with(".wh."),
                "{name}: {k} visible"
            );
        }
    }
}

#[test]
fn merged_view_matches_umoci() {
    need_root!();
    if Command::new("umoci").arg("--version").output().is_err() {
        eprintln!("skipped: umoci not installed");
        return;
    }
    let tmp = tempdir();
    let layers = fixture_layers().into_iter().map(|l| {
        let t = tar_of(&l);
        (gzip(&t), t)
    });
    let img = image(layers.collect(), &["/bin/sh"]);
    let layout = tmp.path().join("layout");
    oci_layout_dir(&img, "latest", &layout);
    let bundle = tmp.path().join("bundle");
    let out = Command::new("umoci")
        .args(["unpack", "--image"])
        .arg(format!("{}:latest", layout.display()))
        .arg(&bundle)
        .output()
        .expect("umoci");
    assert!(
        out.status.success(),
        "umoci: {}",
        String::from_utf8_lossy(&out.stderr)
    );

    let mut store = ImageStore::open(tmp.path().join("root")).expect("open");
    store.load_path(&layout).expect("load layout");
    let loaded = store.list().expect("list");
    let id = loaded[0].id.hex().to_string();
    let m = mount(&store, &id, tmp.path());
    let ours = listing(&m.0);
    let theirs = listing(&bundle.join("rootfs"));
    assert!(theirs.len() > 30, "umoci tree too small: {}", theirs.len());
    assert_trees_eq(&ours, &theirs);
}
