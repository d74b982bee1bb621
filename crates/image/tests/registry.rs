//! Push to and pull from a real registry (Debian's docker-registry, started here on a free
//! loopback port with its own storage; those tests skip when it isn't installed), and from
//! fake registries written here that misbehave on purpose.

mod common;
mod registry_support;

use std::collections::BTreeMap;
use std::fs;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::Duration;

use berth_image::registry::{PlatformSpec, Progress, RegistryOptions, TlsVerify};
use berth_image::{Digest, Error, ImageStore};
use common::*;
use registry_support::*;

macro_rules! need_registry {
    ($e:expr) => {
        match $e {
            Some(r) => r,
            None => {
                eprintln!("skipped: docker-registry not installed");
                return;
            }
        }
    };
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

fn two_layer_image() -> TestImage {
    let l1 = tar_of(&[dir("etc"), file("etc/hostname", "pushed\n")]);
    let l2 = tar_of(&[file("b", "b"), file("etc/.wh.hostname", "")]);
    image(vec![(gzip(&l1), l1), (zstd(&l2), l2)], &["/bin/sh"])
}

fn opts() -> RegistryOptions {
    RegistryOptions::default()
}

fn quiet(_: Progress) {}

/// Per layer, the kinds of event seen, in order (consecutive Transferring merged).
fn per_layer(events: &[Progress]) -> BTreeMap<Digest, Vec<&'static str>> {
    let mut out: BTreeMap<Digest, Vec<&'static str>> = BTreeMap::new();
    for e in events {
        let kind = match e {
            Progress::Manifest { .. } => continue,
            Progress::Waiting { .. } => "waiting",
            Progress::AlreadyExists { .. } => "exists",
            Progress::Mounted { .. } => "mounted",
            Progress::Transferring { .. } => "bytes",
            Progress::Transferred { .. } => "done",
            Progress::Extracting { .. } => "extracting",
            Progress::Extracted { .. } => "extracted",
        };
        let v = out.entry(e.digest().clone()).or_default();
        if v.last() != Some(&kind) {
            v.push(kind);
        }
    }
    out
}

#[test]
fn push_then_pull_round_trips() {
    need_root!();
    let tmp = tempdir();
    let reg = need_registry!(start_registry(tmp.path(), "", ""));
    let img = two_layer_image();
    let mut a = ImageStore::open(tmp.path().join("a")).expect("open");
    a.load_archive(&mut &oci_archive(&[(&img, "app:1")])[..], "app.tar")
        .expect("load");
    let remote = format!("{}/test/app:1", reg.addr);
    let events = Events::default();
    let pushed = a
        .push("app:1", Some(&remote), &opts(), &events.record())
        .expect("push");
    assert_eq!(pushed, Digest::of(&img.manifest));
    let layers = per_layer(&events.take());
    assert_eq!(layers.len(), 2);
    for (d, kinds) in &layers {
        assert_eq!(kinds, &["waiting", "bytes", "done"], "{d}");
    }
    // Again: every layer is already there.
    a.push("app:1", Some(&remote), &opts(), &events.record())
        .expect("push again");
    for kinds in per_layer(&events.take()).values() {
        assert_eq!(kinds, &["waiting", "exists"]);
    }

    let mut b = ImageStore::open(tmp.path().join("b")).expect("open");
    let loaded = b.pull(&remote, &opts(), &events.record()).expect("pull");
    assert_eq!(loaded.manifest, pushed);
    assert_eq!(loaded.tags, vec![remote.clone()]);
    let ev = events.take();
    assert_eq!(
        ev.first(),
        Some(&Progress::Manifest {
            digest: pushed.clone(),
            platform: None
        })
    );
    for kinds in per_layer(&ev).values() {
        assert_eq!(
            kinds,
            &["waiting", "bytes", "done", "extracting", "extracted"]
        );
    }
    assert_eq!(
        blobs_of(b.root()),
        blobs_of(a.root()),
        "pulled blobs are byte-identical"
    );
    // Pulled again into the same store: nothing to fetch.
    b.pull(&remote, &opts(), &events.record())
        .expect("pull again");
    for kinds in per_layer(&events.take()).values() {
        assert_eq!(kinds, &["exists"]);
    }
    // By digest, into a third store: no tag.
    let mut c = ImageStore::open(tmp.path().join("c")).expect("open");
    let by_digest = format!("{}/test/app@{pushed}", reg.addr);
    let l = c.pull(&by_digest, &opts(), &quiet).expect("pull by digest");
    assert!(l.tags.is_empty());
    assert_eq!(
        c.inspect(pushed.as_str()).expect("inspect").id,
        Digest::of(&img.config)
    );

    // Unknown tag: "manifest unknown", the store unchanged.
    let before = store_contents(c.root());
    let err = c
        .pull(&format!("{}/test/app:nope", reg.addr), &opts(), &quiet)
        .unwrap_err();
    assert!(matches!(err, Error::ManifestUnknown { .. }), "{err}");
    assert!(err.to_string().contains("manifest unknown"), "{err}");
    assert!(err.to_string().contains("test/app:nope"), "{err}");
    assert_eq!(store_contents(c.root()), before);
    // Pushing an image the store doesn't have.
    let err = c
        .push("nothing:here", Some(&remote), &opts(), &quiet)
        .unwrap_err();
    assert!(matches!(err, Error::ImageNotFound(_)), "{err}");
}

#[test]
fn pull_push_pull_keeps_digests() {
    need_root!();
    let tmp = tempdir();
    let reg = need_registry!(start_registry(tmp.path(), "", ""));
    let img = two_layer_image();
    let mut a = ImageStore::open(tmp.path().join("a")).expect("open");
    a.load_archive(&mut &oci_archive(&[(&img, "app:1")])[..], "app.tar")
        .expect("load");
    let first = format!("{}/one/app:1", reg.addr);
    let d0 = a
        .push("app:1", Some(&first), &opts(), &quiet)
        .expect("push");

    let mut b = ImageStore::open(tmp.path().join("b")).expect("open");
    let d1 = b.pull(&first, &opts(), &quiet).expect("pull").manifest;
    // Push what was pulled under another repository (by its pulled name), pull that.
    // The registry has the layers under one/app: it mounts them into two/app.
    let second = format!("{}/two/app:2", reg.addr);
    let events = Events::default();
    let d2 = b
        .push(&first, Some(&second), &opts(), &events.record())
        .expect("re-push");
    let mounted: Vec<_> = events
        .take()
        .into_iter()
        .filter_map(|e| match e {
            Progress::Mounted { digest, from } => Some((digest, from)),
            Progress::Transferring { .. } => panic!("a layer was uploaded again: {e:?}"),
            _ => None,
        })
        .collect();
    let mut want: Vec<_> = img
        .layers
        .iter()
        .map(|(b, _)| (Digest::of(b), "one/app".to_string()))
        .collect();
    let mut got = mounted;
    got.sort();
    want.sort();
    assert_eq!(got, want);
    let mut c = ImageStore::open(tmp.path().join("c")).expect("open");
    let loaded = c.pull(&second, &opts(), &quiet).expect("pull again");
    assert_eq!([&d1, &d2, &loaded.manifest], [&d0, &d0, &d0]);
    assert_eq!(blobs_of(c.root()), blobs_of(a.root()));
    assert_eq!(
        c.inspect(&second).expect("inspect").root_fs.chain_ids,
        a.inspect("app:1").expect("inspect").root_fs.chain_ids
    );
}

#[test]
fn multi_platform_index_picks_the_platform() {
    need_root!();
    let tmp = tempdir();
    let reg = need_registry!(start_registry(tmp.path(), "", ""));
    let amd = two_layer_image();
    let arm = with_arch(
        &image(
            vec![{
                let t = tar_of(&[file("arch", "arm64")]);
                (gzip(&t), t)
            }],
            &["/bin/sh"],
        ),
        "arm64",
    );
    let mut a = ImageStore::open(tmp.path().join("a")).expect("open");
    a.load_archive(
        &mut &oci_archive(&[(&amd, "multi:amd64"), (&arm, "multi:arm64")])[..],
        "multi.tar",
    )
    .expect("load");
    for arch in ["amd64", "arm64"] {
        a.push(
            &format!("multi:{arch}"),
            Some(&format!("{}/test/multi:{arch}", reg.addr)),
            &opts(),
            &quiet,
        )
        .expect("push");
    }
    let entry = |img: &TestImage, arch: &str, variant: Option<&str>| {
        let mut p = serde_json::json!({"os": "linux", "architecture": arch});
        if let Some(v) = variant {
            p["variant"] = v.into();
        }
        serde_json::json!({
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "digest": Digest::of(&img.manifest).to_string(),
            "size": img.manifest.len(),
            "platform": p,
        })
    };
    let index = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [entry(&arm, "arm64", Some("v8")), entry(&amd, "amd64", None)],
    }))
    .expect("json");
    let (status, resp) = http(
        &reg.addr,
        "PUT",
        "/v2/test/multi/manifests/latest",
        &[("Content-Type", "application/vnd.oci.image.index.v1+json")],
        &index,
    );
    assert_eq!(status, 201, "{resp}");

    let remote = format!("{}/test/multi:latest", reg.addr);
    let mut b = ImageStore::open(tmp.path().join("b")).expect("open");
    let events = Events::default();
    let host = b
        .pull(&remote, &opts(), &events.record())
        .expect("pull host");
    assert_eq!(host.manifest, Digest::of(&amd.manifest));
    assert_eq!(
        events.take().first(),
        Some(&Progress::Manifest {
            digest: host.manifest.clone(),
            platform: Some("linux/amd64".into())
        })
    );
    let mut o = opts();
    o.platform = Some("linux/arm64".parse::<PlatformSpec>().expect("platform"));
    let other = b.pull(&remote, &o, &quiet).expect("pull arm64");
    assert_eq!(other.manifest, Digest::of(&arm.manifest));
    assert_eq!(b.inspect(&remote).expect("inspect").architecture, "arm64");

    o.platform = Some("linux/s390x".parse().expect("platform"));
    let before = store_contents(b.root());
    let err = b.pull(&remote, &o, &quiet).unwrap_err();
    assert!(matches!(err, Error::NoMatchingPlatform { .. }), "{err}");
    let msg = err.to_string();
    assert!(
        msg.contains("linux/s390x") && msg.contains("linux/arm64/v8, linux/amd64"),
        "{msg}"
    );
    assert_eq!(store_contents(b.root()), before);
    // A single-platform image asked for with another platform.
    o.platform = Some("linux/arm64".parse().expect("platform"));
    let err = b
        .pull(&format!("{}/test/multi:amd64", reg.addr), &o, &quiet)
        .unwrap_err();
    assert!(err.to_string().contains("available: linux/amd64"), "{err}");
}

#[test]
fn https_registry_needs_its_ca_or_tls_verify_false() {
    need_root!();
    let tmp = tempdir();
    let certs = tmp.path().join("certs");
    make_certs(&certs);
    let tls = format!(
        "  tls:\n    certificate: {}\n    key: {}\n",
        certs.join("server.crt").display(),
        certs.join("server.key").display()
    );
    let reg = need_registry!(start_registry(tmp.path(), &tls, ""));
    let img = two_layer_image();
    let mut a = ImageStore::open(tmp.path().join("a")).expect("open");
    a.load_archive(&mut &oci_archive(&[(&img, "app:1")])[..], "app.tar")
        .expect("load");
    let remote = format!("{}/tls/app:1", reg.addr);

    // Not trusted: refused (the http fallback a loopback registry gets fails too).
    let err = a.push("app:1", Some(&remote), &opts(), &quiet).unwrap_err();
    assert!(err.to_string().contains("UnknownIssuer"), "{err}");

    // With the CA in --cert-dir (only ca.crt: *.crt files are CAs).
    let cert_dir = tmp.path().join("cert-dir");
    fs::create_dir(&cert_dir).expect("mkdir");
    fs::copy(certs.join("ca.crt"), cert_dir.join("ca.crt")).expect("copy");
    let with_ca = RegistryOptions {
        cert_dir: Some(cert_dir),
        tls_verify: TlsVerify::Required,
        ..opts()
    };
    let pushed = a
        .push("app:1", Some(&remote), &with_ca, &quiet)
        .expect("push over verified https");

    // --tls-verify=false: unverified https.
    let insecure = RegistryOptions {
        tls_verify: TlsVerify::Disabled,
        ..opts()
    };
    let mut b = ImageStore::open(tmp.path().join("b")).expect("open");
    let l = b
        .pull(&remote, &insecure, &quiet)
        .expect("pull with tls-verify=false");
    assert_eq!(l.manifest, pushed);
}

#[test]
fn client_certificates_from_the_cert_dir() {
    need_root!();
    let tmp = tempdir();
    let certs = tmp.path().join("certs");
    make_certs(&certs);
    let tls = format!(
        "  tls:\n    certificate: {}\n    key: {}\n    clientcas:\n      - {}\n",
        certs.join("server.crt").display(),
        certs.join("server.key").display(),
        certs.join("ca.crt").display()
    );
    let reg = need_registry!(start_registry(tmp.path(), &tls, ""));
    let img = two_layer_image();
    let mut a = ImageStore::open(tmp.path().join("a")).expect("open");
    a.load_archive(&mut &oci_archive(&[(&img, "app:1")])[..], "app.tar")
        .expect("load");
    let remote = format!("{}/mtls/app:1", reg.addr);
    let cert_dir = tmp.path().join("cert-dir");
    fs::create_dir(&cert_dir).expect("mkdir");
    fs::copy(certs.join("ca.crt"), cert_dir.join("ca.crt")).expect("copy");
    let o = RegistryOptions {
        cert_dir: Some(cert_dir.clone()),
        tls_verify: TlsVerify::Required,
        ..opts()
    };
    // The CA alone: the registry wants a client certificate.
    let err = a.push("app:1", Some(&remote), &o, &quiet).unwrap_err();
    assert!(err.to_string().contains("not reachable"), "{err}");
    // client.cert + client.key, as docker's certs.d has them.
    fs::copy(certs.join("client.crt"), cert_dir.join("client.cert")).expect("copy");
    fs::copy(certs.join("client.key"), cert_dir.join("client.key")).expect("copy");
    let pushed = a
        .push("app:1", Some(&remote), &o, &quiet)
        .expect("push with a client certificate");
    assert_eq!(pushed, Digest::of(&img.manifest));
    // A client certificate without its key is an error naming the file.
    fs::remove_file(cert_dir.join("client.key")).expect("rm");
    let err = a.push("app:1", Some(&remote), &o, &quiet).unwrap_err();
    assert!(err.to_string().contains("client.key"), "{err}");
}

#[test]
fn tls_verify_true_refuses_plain_http() {
    need_root!();
    let tmp = tempdir();
    let reg = need_registry!(start_registry(tmp.path(), "", ""));
    let mut b = ImageStore::open(tmp.path().join("b")).expect("open");
    let strict = RegistryOptions {
        tls_verify: TlsVerify::Required,
        ..opts()
    };
    let err = b
        .pull(&format!("{}/x/y:1", reg.addr), &strict, &quiet)
        .unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.contains("not reachable") && msg.contains("https:"),
        "{msg}"
    );
    assert!(!msg.contains("http: "), "no plain http attempt: {msg}");
}

#[test]
fn layers_download_three_at_a_time() {
    need_root!();
    let tmp = tempdir();
    let layers: Vec<(Vec<u8>, Vec<u8>)> = (0..6)
        .map(|i| {
            let t = tar_of(&[file(&format!("f{i}"), &"x".repeat(300_000 + i))]);
            (gzip(&t), t)
        })
        .collect();
    let img = image(layers, &["/bin/sh"]);
    let running = Arc::new(AtomicUsize::new(0));
    let peak = Arc::new(AtomicUsize::new(0));
    let (r2, p2) = (running.clone(), peak.clone());
    let server = fake_registry("many/layers", &[(&img, "1")], move |req, reply| {
        if req.path().contains("/blobs/") && reply.body.len() > 1000 {
            let now = r2.fetch_add(1, Ordering::SeqCst) + 1;
            p2.fetch_max(now, Ordering::SeqCst);
            thread::sleep(Duration::from_millis(300));
            r2.fetch_sub(1, Ordering::SeqCst);
        }
        reply
    });
    let mut s = ImageStore::open(tmp.path().join("s")).expect("open");
    let events = Events::default();
    let l = s
        .pull(
            &format!("{}/many/layers:1", server.addr),
            &opts(),
            &events.record(),
        )
        .expect("pull");
    assert_eq!(l.manifest, Digest::of(&img.manifest));
    assert_eq!(peak.load(Ordering::SeqCst), 3, "downloads at once");
    let ev = events.take();
    // Layers unpack bottom-up whatever order they arrive in.
    let extracted: Vec<Digest> = ev
        .iter()
        .filter_map(|e| match e {
            Progress::Extracted { digest } => Some(digest.clone()),
            _ => None,
        })
        .collect();
    let order: Vec<Digest> = img.layers.iter().map(|(b, _)| Digest::of(b)).collect();
    assert_eq!(extracted, order);
    // Byte progress reaches each layer's size.
    for (b, _) in &img.layers {
        let d = Digest::of(b);
        let last = ev.iter().rev().find_map(|e| match e {
            Progress::Transferring {
                digest,
                done,
                total,
                ..
            } if *digest == d => Some((*done, *total)),
            _ => None,
        });
        assert_eq!(last, Some((b.len() as u64, b.len() as u64)));
    }
}

/// A fake registry serving `img`, its first layer's reply changed by `tamper`; the pull
/// must fail with an error matching `expect`, leaving no blob, layer or temp file.
fn bad_pull(tamper: fn(Reply) -> Reply, what: &str, expect: fn(&Error) -> bool) {
    let tmp = tempdir();
    let img = two_layer_image();
    let target = format!("/blobs/{}", Digest::of(&img.layers[1].0));
    let server = fake_registry("bad/img", &[(&img, "1")], move |req, reply| {
        if req.path().ends_with(&target) {
            tamper(reply)
        } else {
            reply
        }
    });
    let mut s = ImageStore::open(tmp.path().join("s")).expect("open");
    let err = s
        .pull(&format!("{}/bad/img:1", server.addr), &opts(), &quiet)
        .unwrap_err();
    assert!(expect(&err), "{what}: {err}");
    assert_eq!(
        store_contents(s.root()),
        Vec::<std::path::PathBuf>::new(),
        "{what}"
    );
    assert!(s.list().expect("list").is_empty(), "{what}");
}

#[test]
fn bad_blobs_fail_cleanly() {
    need_root!();
    bad_pull(
        |mut r| {
            r.body[20] ^= 0xff;
            r
        },
        "wrong bytes",
        |e| matches!(e, Error::DigestMismatch { .. }),
    );
    bad_pull(
        |mut r| {
            r.claimed_len = Some(r.body.len());
            r.body.truncate(r.body.len() / 2);
            r
        },
        "connection closed early",
        |e| e.to_string().contains("download broke off after"),
    );
    bad_pull(
        |mut r| {
            r.body.truncate(r.body.len() / 2);
            r
        },
        "short blob",
        |e| matches!(e, Error::SizeMismatch { .. } | Error::DigestMismatch { .. }),
    );
    bad_pull(
        |mut r| {
            r.body.extend_from_slice(&[0; 4096]);
            r
        },
        "long blob",
        |e| matches!(e, Error::SizeMismatch { .. } | Error::DigestMismatch { .. }),
    );
    bad_pull(
        |_| {
            Reply::new(
                404,
                r#"{"errors":[{"code":"BLOB_UNKNOWN","message":"blob unknown"}]}"#,
            )
        },
        "missing blob",
        |e| e.to_string().contains("blob unknown"),
    );
}

#[test]
fn manifest_digest_is_verified() {
    need_root!();
    let tmp = tempdir();
    let img = two_layer_image();
    let server = fake_registry("bad/img", &[(&img, "1")], |req, mut reply| {
        if req.path().contains("/manifests/") && reply.status == 200 {
            reply.body.push(b' ');
        }
        reply
    });
    let mut s = ImageStore::open(tmp.path().join("s")).expect("open");
    // By tag: the registry's Docker-Content-Digest no longer matches.
    let err = s
        .pull(&format!("{}/bad/img:1", server.addr), &opts(), &quiet)
        .unwrap_err();
    assert!(matches!(err, Error::DigestMismatch { .. }), "{err}");
    // By digest: the digest asked for.
    let err = s
        .pull(
            &format!("{}/bad/img@{}", server.addr, Digest::of(&img.manifest)),
            &opts(),
            &quiet,
        )
        .unwrap_err();
    assert!(matches!(err, Error::DigestMismatch { .. }), "{err}");
    assert!(store_contents(s.root()).is_empty());
}
