//! Push to and pull from a real registry (Debian's docker-registry, started here on a free
//! loopback port with its own storage; skipped when it isn't installed).

mod common;

use std::collections::BTreeMap;
use std::fs;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use berth_image::{Digest, Error, ImageStore};
use common::*;

struct Registry {
    child: Child,
    addr: String,
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_registry(dir: &Path) -> Option<Registry> {
    let bin = ["/usr/bin/docker-registry", "/usr/bin/registry"]
        .into_iter()
        .find(|p| Path::new(p).exists())?;
    let port = TcpListener::bind("127.0.0.1:0")
        .ok()?
        .local_addr()
        .ok()?
        .port();
    let addr = format!("127.0.0.1:{port}");
    let config = dir.join("config.yml");
    fs::write(
        &config,
        format!(
            "version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: {}\nhttp:\n  addr: {addr}\n",
            dir.join("storage").display()
        ),
    )
    .ok()?;
    let child = Command::new(bin)
        .arg("serve")
        .arg(&config)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .ok()?;
    let reg = Registry { child, addr };
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        if let Ok(mut s) = TcpStream::connect(&reg.addr) {
            let _ = write!(s, "GET /v2/ HTTP/1.0\r\nHost: {}\r\n\r\n", reg.addr);
            let mut buf = [0u8; 12];
            if s.read_exact(&mut buf).is_ok() && buf.starts_with(b"HTTP/1.0 200")
                || buf.starts_with(b"HTTP/1.1 200")
            {
                return Some(reg);
            }
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    None
}

fn blobs_of(root: &Path) -> BTreeMap<String, Vec<u8>> {
    fs::read_dir(root.join("blobs/sha256"))
        .expect("blobs")
        .map(|e| {
            let e = e.expect("entry");
            (
                e.file_name().to_string_lossy().into_owned(),
                fs::read(e.path()).expect("read"),
            )
        })
        .collect()
}

#[test]
fn push_then_pull_round_trips() {
    need_root!();
    let tmp = tempdir();
    let Some(reg) = start_registry(tmp.path()) else {
        eprintln!("skipped: docker-registry not installed or did not start");
        return;
    };
    let l1 = tar_of(&[dir("etc"), file("etc/hostname", "pushed\n")]);
    let l2 = tar_of(&[file("b", "b"), file("etc/.wh.hostname", "")]);
    let img = image(vec![(gzip(&l1), l1), (zstd(&l2), l2)], &["/bin/sh"]);
    let mut a = ImageStore::open(tmp.path().join("a")).expect("open");
    a.load_archive(&mut &oci_archive(&[(&img, "app:1")])[..], "app.tar")
        .expect("load");
    let remote = format!("{}/test/app:1", reg.addr);
    a.tag("app:1", &remote).expect("tag");
    let mut lines = Vec::new();
    let pushed = a
        .push(&remote, &mut |l| lines.push(l.to_string()))
        .expect("push");
    assert_eq!(pushed, Digest::of(&img.manifest));
    assert!(
        lines.iter().filter(|l| l.ends_with("pushed")).count() >= 3,
        "{lines:?}"
    );
    // Again: every layer is already there.
    let mut again = Vec::new();
    a.push(&remote, &mut |l| again.push(l.to_string()))
        .expect("push again");
    assert!(
        again
            .iter()
            .filter(|l| l.ends_with("already there"))
            .count()
            == 2,
        "{again:?}"
    );

    let mut b = ImageStore::open(tmp.path().join("b")).expect("open");
    let loaded = b.pull(&remote, &mut |_| {}).expect("pull");
    assert_eq!(loaded.manifest, pushed);
    assert_eq!(loaded.tags, vec![remote.clone()]);
    assert_eq!(
        blobs_of(b.root()),
        blobs_of(a.root()),
        "pulled blobs are byte-identical"
    );
    // By digest, into a third store.
    let mut c = ImageStore::open(tmp.path().join("c")).expect("open");
    let by_digest = format!("{}/test/app@{pushed}", reg.addr);
    let l = c.pull(&by_digest, &mut |_| {}).expect("pull by digest");
    assert!(l.tags.is_empty());
    assert_eq!(
        c.inspect(pushed.as_str()).expect("inspect").id,
        Digest::of(&img.config)
    );

    // Errors: unknown tag, no registry host; the store stays clean.
    let err = c
        .pull(&format!("{}/test/app:nope", reg.addr), &mut |_| {})
        .unwrap_err();
    assert!(
        matches!(err, Error::Registry { .. }) && err.to_string().contains("not found"),
        "{err}"
    );
    let err = c.pull("busybox", &mut |_| {}).unwrap_err();
    assert!(err.to_string().contains("registry host"), "{err}");
    assert_eq!(blobs_of(c.root()).len(), 4);
}
