//! The `berth` image commands end to end: import, images, tag, save, load, inspect, rmi,
//! prune, and clear errors for bad input. Needs root (unpacking keeps owners and devices).

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn berth(root: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_berth"))
        .arg("--root")
        .arg(root)
        .args(args)
        .output()
        .expect("run berth")
}

fn ok(root: &Path, args: &[&str]) -> String {
    let o = berth(root, args);
    assert!(
        o.status.success(),
        "berth {args:?} failed: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn fails(root: &Path, args: &[&str]) -> String {
    let o = berth(root, args);
    assert!(!o.status.success(), "berth {args:?} should fail");
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn tmpdir() -> PathBuf {
    let d = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("berth-images-cli-{}", std::process::id()));
    let _ = fs::remove_dir_all(&d);
    fs::create_dir_all(&d).expect("tmpdir");
    d
}

/// A busybox rootfs tarball made with the system tar.
fn rootfs_tar(dir: &Path) -> Option<PathBuf> {
    let bb = ["/bin/busybox", "/usr/bin/busybox"]
        .into_iter()
        .find(|p| Path::new(p).exists())?;
    let rootfs = dir.join("rootfs");
    fs::create_dir_all(rootfs.join("bin")).ok()?;
    fs::create_dir_all(rootfs.join("etc")).ok()?;
    fs::copy(bb, rootfs.join("bin/busybox")).ok()?;
    std::os::unix::fs::symlink("busybox", rootfs.join("bin/sh")).ok()?;
    fs::write(rootfs.join("etc/passwd"), "root:x:0:0:root:/root:/bin/sh\n").ok()?;
    let tar = dir.join("rootfs.tar");
    let st = Command::new("tar")
        .arg("-C")
        .arg(&rootfs)
        .arg("-cf")
        .arg(&tar)
        .arg(".")
        .status()
        .ok()?;
    st.success().then_some(tar)
}

#[test]
fn image_commands() {
    if !nix::unistd::geteuid().is_root() {
        eprintln!("skipped: needs root");
        return;
    }
    let dir = tmpdir();
    let Some(tar) = rootfs_tar(&dir) else {
        eprintln!("skipped: no busybox or tar");
        return;
    };
    let r1 = dir.join("root1");
    let tar_s = tar.to_str().expect("utf8");

    let id = ok(&r1, &["import", tar_s, "bb"]);
    assert!(id.trim().starts_with("sha256:"), "{id}");
    let list = ok(&r1, &["images"]);
    assert!(list.starts_with("REPOSITORY"), "{list}");
    assert!(
        list.lines()
            .any(|l| l.starts_with("bb ") && l.contains("latest")),
        "{list}"
    );

    ok(&r1, &["tag", "bb", "example.com/bb:2"]);
    let q = ok(&r1, &["images", "-q"]);
    assert_eq!(q.lines().count(), 1, "one image, two tags: {q}");
    assert_eq!(ok(&r1, &["images"]).lines().count(), 3);

    let inspect = ok(&r1, &["image", "inspect", "example.com/bb:2"]);
    let v: serde_json::Value = serde_json::from_str(&inspect).expect("json");
    assert_eq!(v[0]["Id"].as_str(), Some(id.trim()));
    assert_eq!(v[0]["RootFS"]["Layers"].as_array().map(Vec::len), Some(1));

    for format in ["oci", "docker"] {
        let out = dir.join(format!("saved-{format}.tar"));
        ok(
            &r1,
            &[
                "save",
                "-o",
                out.to_str().expect("utf8"),
                "--format",
                format,
                "example.com/bb:2",
            ],
        );
        let r2 = dir.join(format!("root-{format}"));
        let loaded = ok(&r2, &["load", "-i", out.to_str().expect("utf8")]);
        assert_eq!(loaded.trim(), "Loaded image: example.com/bb:2", "{format}");
        let v: serde_json::Value =
            serde_json::from_str(&ok(&r2, &["image", "inspect", "example.com/bb:2"]))
                .expect("json");
        assert_eq!(v[0]["Id"].as_str(), Some(id.trim()), "{format}");
    }

    // BERTH_ROOT is honoured when --root is absent.
    let o = Command::new(env!("CARGO_BIN_EXE_berth"))
        .arg("images")
        .arg("-q")
        .env("BERTH_ROOT", &r1)
        .output()
        .expect("berth");
    assert_eq!(String::from_utf8_lossy(&o.stdout).trim(), &id.trim()[7..19]);

    // Errors.
    let junk = dir.join("junk.tar");
    fs::write(&junk, "not an archive").expect("write");
    let e = fails(&r1, &["load", "-i", junk.to_str().expect("utf8")]);
    assert!(e.contains("junk.tar") && e.contains("archive"), "{e}");
    let e = fails(&r1, &["rmi", "nothere"]);
    assert!(e.contains("nothere") && e.contains("no such image"), "{e}");
    let e = fails(&r1, &["rmi", &id.trim()[7..19]]);
    assert!(e.contains("tag"), "{e}");
    let e = fails(&r1, &["save", "-o", "/dev/null", "nothere:1"]);
    assert!(e.contains("nothere"), "{e}");

    // rmi by tag, then the last tag deletes the image.
    assert_eq!(
        ok(&r1, &["rmi", "example.com/bb:2"]).trim(),
        "Untagged: example.com/bb:2"
    );
    let out = ok(&r1, &["rmi", "bb"]);
    assert!(
        out.contains("Untagged: bb:latest") && out.contains("Deleted: sha256:"),
        "{out}"
    );
    assert_eq!(ok(&r1, &["images", "-q"]), "");
    assert!(ok(&r1, &["image", "prune"]).contains("Total: 0"));
    assert_eq!(
        fs::read_dir(r1.join("blobs/sha256"))
            .expect("blobs")
            .count(),
        0
    );
    let _ = fs::remove_dir_all(&dir);
}
