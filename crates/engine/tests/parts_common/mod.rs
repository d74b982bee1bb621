//! Shared support for the engine parts' integration tests: root check, the runtime binaries,
//! busybox root file systems, leftover checks.
#![allow(dead_code)]

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

/// busybox-static, the only program a test container needs.
pub const BUSYBOX: &str = "/bin/busybox";
pub const RUNC: &str = "/usr/sbin/runc";

/// False (with a note) when not root: these tests need namespaces, mounts and cgroups.
pub fn is_root(test: &str) -> bool {
    if nix::unistd::geteuid().is_root() {
        return true;
    }
    eprintln!("{test}: skipped (needs root)");
    false
}

/// berth-runtime: $BERTH_RUNTIME, else the one built beside this test binary
/// (`<target>/<triple>/debug/berth-runtime`; `cargo test --workspace` builds it, or run
/// `cargo build -p berth-cli` first).
pub fn berth_runtime() -> PathBuf {
    if let Some(p) = std::env::var_os("BERTH_RUNTIME") {
        return PathBuf::from(p);
    }
    let exe = std::env::current_exe().expect("test executable path");
    // .../debug/deps/parts_x-hash -> .../debug/berth-runtime
    let p = exe
        .parent()
        .and_then(Path::parent)
        .map(|d| d.join("berth-runtime"))
        .expect("target directory");
    assert!(
        p.exists(),
        "{} is missing: build it with `cargo build -p berth-cli` (same CARGO_TARGET_DIR) \
         or set BERTH_RUNTIME",
        p.display()
    );
    p
}

/// The runtimes to run a check under: berth-runtime and, when installed, runc.
pub fn runtimes() -> Vec<PathBuf> {
    let mut v = vec![berth_runtime()];
    if Path::new(RUNC).exists() {
        v.push(RUNC.into());
    } else {
        eprintln!("note: {RUNC} not installed; checking berth-runtime only");
    }
    v
}

/// A root file system of busybox and its applets (as symlinks), with root and `user`
/// (1000:1000, also in group `audio` 29) in /etc/passwd and /etc/group.
pub fn make_rootfs(r: &Path) {
    for d in [
        "bin",
        "sbin",
        "usr/bin",
        "usr/sbin",
        "proc",
        "dev",
        "sys",
        "tmp",
        "etc",
        "root",
        "run",
        "var",
        "home/user",
    ] {
        fs::create_dir_all(r.join(d)).unwrap();
    }
    fs::set_permissions(r.join("tmp"), fs::Permissions::from_mode(0o1777)).unwrap();
    fs::copy(BUSYBOX, r.join("bin/busybox")).expect("copying busybox (install busybox-static)");
    fs::set_permissions(r.join("bin/busybox"), fs::Permissions::from_mode(0o755)).unwrap();
    let out = Command::new(BUSYBOX)
        .arg("--list-full")
        .output()
        .expect("busybox --list-full");
    for a in String::from_utf8_lossy(&out.stdout).lines() {
        if a.is_empty() || a == "bin/busybox" {
            continue;
        }
        let p = r.join(a);
        if let Some(parent) = p.parent() {
            fs::create_dir_all(parent).unwrap();
        }
        let _ = std::os::unix::fs::symlink("/bin/busybox", &p);
    }
    fs::write(
        r.join("etc/passwd"),
        "root:x:0:0:root:/root:/bin/sh\nuser:x:1000:1000:user:/home/user:/bin/sh\n",
    )
    .unwrap();
    fs::write(
        r.join("etc/group"),
        "root:x:0:\nuser:x:1000:\naudio:x:29:user\n",
    )
    .unwrap();
}

/// A unique temporary directory under /tmp, removed on drop.
pub fn tempdir(tag: &str) -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix(&format!("berth-parts-{tag}-"))
        .tempdir()
        .unwrap()
}

/// Cgroup directories below /berth whose name starts with `prefix`, in any v1 hierarchy or
/// the unified one.
pub fn cgroups_named(prefix: &str) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let Ok(roots) = fs::read_dir("/sys/fs/cgroup") else {
        return found;
    };
    for root in roots.flatten() {
        let dir = root.path().join("berth");
        for e in fs::read_dir(&dir).into_iter().flatten().flatten() {
            if e.file_name().to_string_lossy().starts_with(prefix) {
                found.push(e.path());
            }
        }
    }
    found
}
