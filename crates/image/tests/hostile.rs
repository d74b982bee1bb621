//! Hostile layers: each is refused or contained, and nothing outside the layer root
//! changes (a sentinel directory beside it is compared before and after).

mod common;

use std::fs;
use std::path::{Path, PathBuf};

use berth_image::unpack::{unpack_layer, UnpackOptions};
use berth_image::{Error, ImageStore};
use common::*;

struct Arena {
    _tmp: tempfile::TempDir,
    base: PathBuf,
    root: PathBuf,
    outside: PathBuf,
}

impl Arena {
    fn new() -> Arena {
        let tmp = tempdir();
        let base = tmp.path().to_path_buf();
        let root = base.join("layer");
        let outside = base.join("outside");
        fs::create_dir_all(&root).expect("mkdir");
        fs::create_dir_all(&outside).expect("mkdir");
        fs::write(outside.join("sentinel"), "untouched").expect("sentinel");
        fs::write(base.join("sentinel"), "untouched").expect("sentinel");
        Arena {
            _tmp: tmp,
            base,
            root,
            outside,
        }
    }

    /// Everything outside the layer root: the names beside it, the sentinel's content, and
    /// the whole tree of the `outside` directory.
    fn outside_state(&self) -> Vec<(String, String)> {
        let mut out: Vec<(String, String)> = fs::read_dir(&self.base)
            .expect("read_dir")
            .map(|e| {
                (
                    e.expect("entry").file_name().to_string_lossy().into_owned(),
                    String::new(),
                )
            })
            .collect();
        out.sort();
        out.push((
            "sentinel".into(),
            fs::read_to_string(self.base.join("sentinel")).expect("sentinel"),
        ));
        for (k, v) in listing(&self.outside) {
            out.push((k, format!("{v:?}")));
        }
        out
    }

    fn unpack(&self, entries: &[Entry]) -> Result<(), Error> {
        unpack_layer(
            &tar_of(entries)[..],
            &self.root,
            "hostile",
            &UnpackOptions::default(),
        )
        .map(drop)
    }

    /// Unpack and check that nothing outside changed; returns the unpack result.
    fn check(&self, name: &str, entries: &[Entry]) -> Result<(), Error> {
        let before = self.outside_state();
        let passwd = fs::read("/etc/passwd").expect("passwd");
        let r = self.unpack(entries);
        assert_eq!(
            self.outside_state(),
            before,
            "{name}: something outside the root changed"
        );
        assert_eq!(
            fs::read("/etc/passwd").expect("passwd"),
            passwd,
            "{name}: /etc/passwd changed"
        );
        r
    }
}

fn refused(name: &str, r: Result<(), Error>) {
    match r {
        Err(Error::UnsafeEntry { .. }) => {}
        other => panic!("{name}: expected an unsafe-entry error, got {other:?}"),
    }
}

#[test]
fn dotdot_escapes_are_refused() {
    need_root!();
    let a = Arena::new();
    refused("../", a.check("../", &[file("../sentinel", "pwned")]));
    refused(
        "a/../../",
        a.check("a/../..", &[dir("a"), file("a/../../sentinel", "pwned")]),
    );
    refused(
        "./../",
        a.check("./..", &[file("./../outside/sentinel", "pwned")]),
    );
    let err = a
        .check("dotdot", &[file("../x", "")])
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("..") && err.contains("hostile"),
        "error names the entry: {err}"
    );
}

#[test]
fn absolute_paths_stay_inside() {
    need_root!();
    let a = Arena::new();
    let outside = a.outside.join("abs.txt").display().to_string();
    a.check("absolute", &[file("/abs.txt", "in"), file(&outside, "in")])
        .expect("absolute paths are taken as relative");
    assert_eq!(
        fs::read_to_string(a.root.join("abs.txt")).expect("read"),
        "in"
    );
    let inner = a.root.join(outside.trim_start_matches('/'));
    assert!(inner.is_file(), "{} made inside the root", inner.display());
    assert!(!a.outside.join("abs.txt").exists());
}

#[test]
fn writing_through_symlinks_is_refused() {
    need_root!();
    let a = Arena::new();
    let out = a.outside.display().to_string();
    refused(
        "absolute symlink then write",
        a.check("abs", &[symlink("evil", &out), file("evil/pwned", "x")]),
    );
    let a = Arena::new();
    refused(
        "relative symlink then write",
        a.check("rel", &[symlink("up", "../outside"), file("up/pwned", "x")]),
    );
    let a = Arena::new();
    refused(
        "symlink chain",
        a.check(
            "chain",
            &[
                dir("d"),
                symlink("d/l", "/"),
                symlink("l2", "d/l"),
                file("l2/etc/pwned", "x"),
            ],
        ),
    );
    let a = Arena::new();
    refused(
        "dir swapped for a symlink",
        a.check(
            "swap",
            &[
                dir("d"),
                file("d/a", "a"),
                symlink("d", &out),
                file("d/sentinel", "pwned"),
            ],
        ),
    );
    let a = Arena::new();
    refused(
        "directory entry through a symlink",
        a.check("dir", &[symlink("s", &out), dir("s/newdir")]),
    );
    let a = Arena::new();
    refused(
        "opaque marker through a symlink",
        a.check("opq", &[symlink("o", &out), file("o/.wh..wh..opq", "")]),
    );
    let a = Arena::new();
    refused(
        "whiteout through a symlink",
        a.check("wh", &[symlink("o", &out), file("o/.wh.sentinel", "")]),
    );
    assert!(a.outside.join("sentinel").is_file());
}

#[test]
fn replacing_a_symlink_does_not_write_its_target() {
    need_root!();
    let a = Arena::new();
    let target = a.outside.join("sentinel").display().to_string();
    a.check(
        "replace",
        &[
            symlink("x", &target),
            file("x", "pwned"),
            symlink("s", &target),
            hardlink("h", "s"),
            file("h", "pwned"),
        ],
    )
    .expect("replacing a symlink is fine");
    assert_eq!(fs::read_to_string(a.root.join("x")).expect("read"), "pwned");
    assert!(fs::symlink_metadata(a.root.join("s"))
        .expect("lstat")
        .file_type()
        .is_symlink());
}

#[test]
fn hard_links_only_inside() {
    need_root!();
    let a = Arena::new();
    refused(
        "hardlink /etc/passwd",
        a.check("passwd", &[hardlink("h", "/etc/passwd")]),
    );
    refused(
        "hardlink ../",
        a.check("up", &[hardlink("h", "../sentinel")]),
    );
    let out = a.outside.display().to_string();
    refused(
        "hardlink through symlink",
        a.check(
            "through",
            &[symlink("s", &out), hardlink("h", "s/sentinel")],
        ),
    );
    assert!(!a.root.join("h").exists());
    // A link to something inside is fine, absolute or not.
    a.check(
        "inside",
        &[
            dir("etc"),
            file("etc/passwd", "inner"),
            hardlink("h", "/etc/passwd"),
        ],
    )
    .expect("link inside");
    assert_eq!(fs::read_to_string(a.root.join("h")).expect("read"), "inner");
}

#[test]
fn whiteouts_of_dot_and_dotdot_are_refused() {
    need_root!();
    for bad in [".wh...", ".wh..", "sub/.wh...", ".wh."] {
        let a = Arena::new();
        refused(bad, a.check(bad, &[dir("sub"), file(bad, "")]));
    }
}

#[test]
fn device_nodes_only_inside() {
    need_root!();
    let a = Arena::new();
    refused(
        "../dev",
        a.check("dev", &[e("../evil-null", Kind::Char(1, 3))]),
    );
    let out = a.outside.display().to_string();
    refused(
        "device through symlink",
        a.check(
            "devsym",
            &[symlink("dev", &out), e("dev/sda", Kind::Block(8, 0))],
        ),
    );
    a.check(
        "inside",
        &[dir("dev"), e("dev/null", Kind::Char(1, 3)).mode(0o666)],
    )
    .expect("device inside");
    let md = fs::symlink_metadata(a.root.join("dev/null")).expect("lstat");
    use std::os::unix::fs::{FileTypeExt, MetadataExt};
    assert!(md.file_type().is_char_device() && md.rdev() == nix::sys::stat::makedev(1, 3));
    // And refused altogether when devices are off.
    let r = unpack_layer(
        &tar_of(&[e("zero", Kind::Char(1, 5))])[..],
        &a.root,
        "nodev",
        &UnpackOptions {
            allow_devices: false,
        },
    );
    refused("devices off", r.map(drop));
}

#[test]
fn very_long_paths_are_contained() {
    need_root!();
    let a = Arena::new();
    // ~15 KiB deep path (far over PATH_MAX): made inside, one component at a time.
    let comp = "d".repeat(50);
    let deep: Vec<String> = (1..=300)
        .map(|i| vec![comp.as_str(); i].join("/"))
        .collect();
    let mut entries: Vec<Entry> = deep.iter().map(|p| dir(p)).collect();
    entries.push(file(&format!("{}/leaf", deep[299]), "deep"));
    a.check("deep", &entries).expect("deep tree");
    // A component longer than NAME_MAX is a clear error.
    let r = a.check("long name", &[file(&"x".repeat(300), "x")]);
    let err = r.expect_err("name too long").to_string();
    assert!(err.contains("xxxx"), "{err}");
    // A long path that escapes at the end is refused.
    refused(
        "long escape",
        a.check(
            "long escape",
            &[file(
                &format!("{}/../../{}", "a/".repeat(200), "../".repeat(300)),
                "x",
            )],
        ),
    );
}

#[test]
fn overlay_xattrs_from_a_tar_are_ignored() {
    need_root!();
    let a = Arena::new();
    a.check(
        "xattr",
        &[dir("d")
            .xattr("trusted.overlay.redirect", b"/etc")
            .xattr("trusted.overlay.opaque", b"y")],
    )
    .expect("unpack");
    assert!(berth_image::snapshot::xattrs_of(&a.root.join("d"))
        .expect("xattrs")
        .is_empty());
    let all = std::process::Command::new("getfattr")
        .args(["-d", "-m", "trusted"])
        .arg(a.root.join("d"))
        .output();
    if let Ok(o) = all {
        assert!(!String::from_utf8_lossy(&o.stdout).contains("overlay"));
    }
}

#[test]
fn hostile_image_load_leaves_store_clean() {
    need_root!();
    let tmp = tempdir();
    let mut store = ImageStore::open(tmp.path().join("root")).expect("open");
    let sentinel = tmp.path().join("sentinel");
    fs::write(&sentinel, "untouched").expect("write");
    let evil = tar_of(&[
        dir("ok"),
        file("ok/file", "fine"),
        symlink("escape", &tmp.path().display().to_string()),
        file("escape/sentinel", "pwned"),
    ]);
    let img = image_plain(vec![tar_of(&[file("base", "base")]), evil]);
    let ar = oci_archive(&[(&img, "evil:latest")]);
    let err = store
        .load_archive(&mut &ar[..], "evil.tar")
        .expect_err("hostile image");
    assert!(matches!(err, Error::UnsafeEntry { .. }), "{err}");
    assert_eq!(fs::read_to_string(&sentinel).expect("read"), "untouched");
    assert_store_empty(store.root());
}

pub fn assert_store_empty(root: &Path) {
    let count = |d: &str| fs::read_dir(root.join(d)).map(|r| r.count()).unwrap_or(0);
    assert_eq!(count("blobs/sha256"), 0, "orphan blobs");
    assert_eq!(count("layers"), 0, "orphan layers");
    assert_eq!(count("tmp"), 0, "leftovers in tmp");
}
