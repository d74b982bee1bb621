//! Registry authentication against Debian's docker-registry (skipped when it isn't
//! installed): htpasswd Basic auth, and token auth with a token server written here that
//! issues RS256 JWTs signed by an openssl-made key the registry trusts. Plus `berth
//! login`/`logout` and their credentials file.

mod common;
mod registry_support;

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine;
use berth_image::registry::{self, Credentials, Progress, RegistryOptions};
use berth_image::{Error, ImageStore};
use common::*;
use registry_support::*;
use serde_json::json;

const USER: &str = "berth";
const PASS: &str = "s3cret:with colon";

fn creds(pass: &str) -> Credentials {
    Credentials {
        username: USER.into(),
        password: pass.into(),
    }
}

fn with_creds(pass: &str) -> RegistryOptions {
    RegistryOptions {
        credentials: Some(creds(pass)),
        ..Default::default()
    }
}

fn quiet(_: Progress) {}

fn store_with_image(root: &Path) -> ImageStore {
    let l1 = tar_of(&[dir("etc"), file("etc/hostname", "auth\n")]);
    let img = image(vec![(gzip(&l1), l1)], &["/bin/sh"]);
    let mut s = ImageStore::open(root).expect("open");
    s.load_archive(&mut &oci_archive(&[(&img, "app:1")])[..], "app.tar")
        .expect("load");
    s
}

fn is_unauthorized(e: &Error, registry: &str, says: &str) -> bool {
    matches!(e, Error::Unauthorized { .. })
        && e.to_string().contains(registry)
        && e.to_string().contains("401")
        && e.to_string().contains(says)
}

#[test]
fn basic_auth_login_push_pull_logout() {
    need_root!();
    let tmp = tempdir();
    let hash = bcrypt::hash_with_result(PASS, 4)
        .expect("bcrypt")
        .format_for_version(bcrypt::Version::TwoY);
    let htpasswd = tmp.path().join("htpasswd");
    fs::write(&htpasswd, format!("{USER}:{hash}\n")).expect("htpasswd");
    let auth = format!(
        "auth:\n  htpasswd:\n    realm: berth-test\n    path: {}\n",
        htpasswd.display()
    );
    let Some(reg) = start_registry(tmp.path(), "", &auth) else {
        eprintln!("skipped: docker-registry not installed");
        return;
    };
    let root = tmp.path().join("a");
    let a = store_with_image(&root);
    let remote = format!("{}/test/app:1", reg.addr);
    let none = RegistryOptions::default();

    let err = a.push("app:1", Some(&remote), &none, &quiet).unwrap_err();
    assert!(
        is_unauthorized(&err, &reg.addr, "user name and password"),
        "{err}"
    );
    let err = a
        .push("app:1", Some(&remote), &with_creds("wrong"), &quiet)
        .unwrap_err();
    assert!(is_unauthorized(&err, &reg.addr, "refused"), "{err}");

    // login checks before it saves.
    let err = registry::login(&root, &reg.addr, &creds("wrong"), &none).unwrap_err();
    assert!(is_unauthorized(&err, &reg.addr, "refused"), "{err}");
    let auth_file = root.join("auth.json");
    assert!(!auth_file.exists());
    registry::login(&root, &reg.addr, &creds(PASS), &none).expect("login");
    let mode = fs::metadata(&auth_file)
        .expect("auth.json")
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
    let saved: serde_json::Value =
        serde_json::from_slice(&fs::read(&auth_file).expect("read")).expect("json");
    let b64 = base64::engine::general_purpose::STANDARD.encode(format!("{USER}:{PASS}"));
    assert_eq!(saved, json!({"auths": {reg.addr.clone(): {"auth": b64}}}));

    // The stored credentials are used; --creds works without them.
    let pushed = a.push("app:1", Some(&remote), &none, &quiet).expect("push");
    let mut b = ImageStore::open(tmp.path().join("b")).expect("open");
    let err = b.pull(&remote, &none, &quiet).unwrap_err();
    assert!(is_unauthorized(&err, &reg.addr, "berth login"), "{err}");
    assert!(store_contents(b.root()).is_empty());
    let l = b.pull(&remote, &with_creds(PASS), &quiet).expect("pull");
    assert_eq!(l.manifest, pushed);

    assert!(registry::logout(&root, &reg.addr).expect("logout"));
    assert!(!registry::logout(&root, &reg.addr).expect("logout again"));
    let err = a.push("app:1", Some(&remote), &none, &quiet).unwrap_err();
    assert!(
        is_unauthorized(&err, &reg.addr, "user name and password"),
        "{err}"
    );
}

fn b64url(data: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(data)
}

/// An RS256 JWT as docker-registry's token auth wants it: the signing certificate in `x5c`
/// (trusted through `rootcertbundle`), the access granted in `access`.
fn jwt(dir: &Path, subject: &str, scope: Option<&str>) -> String {
    let der = fs::read(dir.join("token.der")).expect("der");
    let header = json!({"typ": "JWT", "alg": "RS256",
        "x5c": [base64::engine::general_purpose::STANDARD.encode(der)]});
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("time")
        .as_secs();
    let access: Vec<_> = scope
        .and_then(|s| {
            let mut p = s.splitn(3, ':');
            let (kind, name, actions) = (p.next()?, p.next()?, p.next()?);
            Some(json!({"type": kind, "name": name, "actions": actions.split(',').collect::<Vec<_>>()}))
        })
        .into_iter()
        .collect();
    let claims = json!({"iss": "berth-issuer", "sub": subject, "aud": "berth-registry",
        "exp": now + 600, "nbf": now - 60, "iat": now - 60, "jti": format!("{now}-{subject}"),
        "access": access});
    let input = format!(
        "{}.{}",
        b64url(header.to_string().as_bytes()),
        b64url(claims.to_string().as_bytes())
    );
    let input_file = dir.join(format!(
        "input-{}",
        std::thread::current()
            .name()
            .unwrap_or("t")
            .replace(':', "_")
    ));
    fs::write(&input_file, &input).expect("input");
    let out = Command::new("openssl")
        .args(["dgst", "-sha256", "-sign"])
        .arg(dir.join("token.key"))
        .arg(&input_file)
        .output()
        .expect("openssl dgst");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    format!("{input}.{}", b64url(&out.stdout))
}

#[test]
fn token_auth_with_a_token_server() {
    need_root!();
    if !Path::new("/usr/bin/docker-registry").exists() {
        eprintln!("skipped: docker-registry not installed");
        return;
    }
    let tmp = tempdir();
    let keys = tmp.path().join("keys");
    fs::create_dir(&keys).expect("mkdir");
    openssl(
        "req -x509 -newkey rsa:2048 -nodes -keyout token.key -out token.crt -days 2 -subj /CN=berth-token-issuer",
        &keys,
    );
    openssl("x509 -in token.crt -outform DER -out token.der", &keys);
    // The token server: tokens for the right password only; it records the scopes asked.
    let asked = Arc::new(Mutex::new(Vec::<String>::new()));
    let issued = Arc::new(AtomicUsize::new(0));
    let (asked2, issued2, keys2) = (asked.clone(), issued.clone(), keys.clone());
    let good = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{USER}:{PASS}"))
    );
    let tokens = Server::start(move |req| {
        if req.path() != "/token" || req.query("service").as_deref() != Some("berth-registry") {
            return Reply::new(404, "");
        }
        if req.header("authorization") != Some(good.as_str()) {
            return Reply::new(401, r#"{"details":"bad credentials"}"#);
        }
        let scope = req.query("scope");
        asked2
            .lock()
            .expect("lock")
            .push(scope.clone().unwrap_or_default());
        issued2.fetch_add(1, Ordering::SeqCst);
        let t = jwt(&keys2, USER, scope.as_deref());
        Reply::new(200, json!({"token": t, "expires_in": 300}).to_string())
            .header("Content-Type", "application/json")
    });
    let auth = format!(
        "auth:\n  token:\n    realm: http://{}/token\n    service: berth-registry\n    issuer: berth-issuer\n    rootcertbundle: {}\n",
        tokens.addr,
        keys.join("token.crt").display()
    );
    let reg = start_registry(tmp.path(), "", &auth).expect("registry");
    let root = tmp.path().join("a");
    let a = store_with_image(&root);
    let remote = format!("{}/test/app:1", reg.addr);
    let none = RegistryOptions::default();

    let err = a.push("app:1", Some(&remote), &none, &quiet).unwrap_err();
    assert!(is_unauthorized(&err, &reg.addr, "token server"), "{err}");
    let err = a
        .push("app:1", Some(&remote), &with_creds("wrong"), &quiet)
        .unwrap_err();
    assert!(is_unauthorized(&err, &reg.addr, "refused"), "{err}");

    let pushed = a
        .push("app:1", Some(&remote), &with_creds(PASS), &quiet)
        .expect("push with a token");
    // One token for the whole push (layer, config, manifest), scoped pull,push.
    assert_eq!(
        *asked.lock().expect("lock"),
        vec!["repository:test/app:pull,push".to_string()]
    );

    let mut b = ImageStore::open(tmp.path().join("b")).expect("open");
    let l = b.pull(&remote, &with_creds(PASS), &quiet).expect("pull");
    assert_eq!(l.manifest, pushed);
    assert_eq!(
        asked.lock().expect("lock").last().map(String::as_str),
        Some("repository:test/app:pull")
    );

    let err = registry::login(&root, &reg.addr, &creds("wrong"), &none).unwrap_err();
    assert!(is_unauthorized(&err, &reg.addr, "refused"), "{err}");
    registry::login(&root, &reg.addr, &creds(PASS), &none).expect("login");
    let mut c = ImageStore::open(&root).expect("reopen");
    c.pull(&remote, &none, &quiet)
        .expect("pull with stored credentials");
    assert!(issued.load(Ordering::SeqCst) >= 4);
}
