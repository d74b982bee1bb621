//! Registry credentials: `berth login` stores them in `<root>/auth.json`, in docker's
//! `config.json` format (`{"auths": {"host:port": {"auth": base64("user:pass")}}}`, mode
//! 0600), so `docker --config` / `podman --authfile` can read the same file.

use std::fs::{self, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use base64::Engine;
use serde_json::{Map, Value};

use super::client::{Access, Client};
use super::remote::{RemoteRef, DEFAULT_REGISTRY};
use super::RegistryOptions;
use crate::error::{Error, IoContext, Result};

/// A user name and password (or token) for one registry.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    pub username: String,
    pub password: String,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Credentials({}:***)", self.username)
    }
}

/// The credentials file of an engine root.
pub fn auth_file(root: &Path) -> PathBuf {
    root.join("auth.json")
}

/// `https://host:port/v1/`, `index.docker.io` ... → the key berth stores under.
pub fn registry_key(registry: &str) -> String {
    let r = registry
        .trim()
        .trim_start_matches("https://")
        .trim_start_matches("http://");
    let r = r.split('/').next().unwrap_or(r);
    match r {
        "index.docker.io" | "registry-1.docker.io" | "registry.hub.docker.com" => {
            DEFAULT_REGISTRY.to_string()
        }
        r => r.to_string(),
    }
}

fn read_file(path: &Path) -> Result<Map<String, Value>> {
    match fs::read(path) {
        Ok(b) => crate::spec::parse(&b, path.display().to_string()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(Map::new()),
        Err(e) => Err(Error::Io {
            path: path.to_path_buf(),
            source: e,
        }),
    }
}

/// What is stored for `host` (docker's `https://index.docker.io/v1/` key counts for
/// docker.io).
pub fn lookup(root: &Path, host: &str) -> Result<Option<Credentials>> {
    let path = auth_file(root);
    let file = read_file(&path)?;
    let Some(Value::Object(auths)) = file.get("auths") else {
        return Ok(None);
    };
    let key = registry_key(host);
    let entry = auths.get(&key).or_else(|| {
        auths
            .iter()
            .find(|(k, _)| registry_key(k) == key)
            .map(|(_, v)| v)
    });
    let Some(auth) = entry.and_then(|e| e.get("auth")).and_then(|a| a.as_str()) else {
        return Ok(None);
    };
    let bad = || Error::Registry {
        reference: host.to_string(),
        reason: format!(
            "{}: the stored \"auth\" is not base64(user:password)",
            path.display()
        ),
    };
    let raw = base64::engine::general_purpose::STANDARD
        .decode(auth)
        .map_err(|_| bad())?;
    let raw = String::from_utf8(raw).map_err(|_| bad())?;
    let (u, p) = raw.split_once(':').ok_or_else(bad)?;
    Ok(Some(Credentials {
        username: u.to_string(),
        password: p.to_string(),
    }))
}

/// Change the file: other keys (and other registries) are kept as they were.
fn update(root: &Path, change: impl FnOnce(&mut Map<String, Value>) -> bool) -> Result<bool> {
    fs::create_dir_all(root).at(root)?;
    let path = auth_file(root);
    let mut file = read_file(&path)?;
    if !matches!(file.get("auths"), Some(Value::Object(_))) {
        file.insert("auths".into(), Value::Object(Map::new()));
    }
    let Some(Value::Object(auths)) = file.get_mut("auths") else {
        return Ok(false);
    };
    if !change(auths) {
        return Ok(false);
    }
    let data = serde_json::to_vec_pretty(&file).map_err(|source| Error::Json {
        what: path.display().to_string(),
        source,
    })?;
    let tmp = root.join(format!(".auth.json.{}", std::process::id()));
    let res = (|| -> io::Result<()> {
        let mut f = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&tmp)?;
        f.write_all(&data)?;
        f.write_all(b"\n")?;
        f.sync_all()?;
        fs::rename(&tmp, &path)
    })();
    if res.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    res.at(&path)?;
    Ok(true)
}

/// `berth login`: check the credentials against the registry, then store them.
pub fn login(
    root: &Path,
    registry: &str,
    credentials: &Credentials,
    opts: &RegistryOptions,
) -> Result<()> {
    let key = registry_key(registry);
    if key.is_empty() {
        return Err(Error::InvalidReference(registry.to_string()));
    }
    let r = RemoteRef {
        host: key.clone(),
        repository: String::new(),
        reference: String::new(),
    };
    let client = Client::connect(&r, opts, Some(credentials.clone()), Access::Login)?;
    client.verify_login()?;
    let auth = base64::engine::general_purpose::STANDARD
        .encode(format!("{}:{}", credentials.username, credentials.password));
    update(root, |auths| {
        auths.insert(key, serde_json::json!({ "auth": auth }));
        true
    })?;
    Ok(())
}

/// `berth logout`: forget a registry's credentials. False when none were stored.
pub fn logout(root: &Path, registry: &str) -> Result<bool> {
    let key = registry_key(registry);
    if !auth_file(root).exists() {
        return Ok(false);
    }
    update(root, |auths| {
        let keys: Vec<String> = auths
            .keys()
            .filter(|k| registry_key(k) == key)
            .cloned()
            .collect();
        for k in &keys {
            auths.remove(k);
        }
        !keys.is_empty()
    })
}

/// The credentials a pull or push uses: `--creds`, else the stored ones.
pub(crate) fn for_registry(
    root: &Path,
    r: &RemoteRef,
    opts: &RegistryOptions,
) -> Result<Option<Credentials>> {
    match &opts.credentials {
        Some(c) => Ok(Some(c.clone())),
        None => lookup(root, &r.host),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_and_file() {
        assert_eq!(registry_key("https://index.docker.io/v1/"), "docker.io");
        assert_eq!(registry_key("127.0.0.1:5000"), "127.0.0.1:5000");
        assert_eq!(registry_key("http://reg.example:443/"), "reg.example:443");
        let dir = tempfile::tempdir().expect("tempdir");
        let c = Credentials {
            username: "u".into(),
            password: "p:w".into(),
        };
        let auth = base64::engine::general_purpose::STANDARD.encode("u:p:w");
        fs::write(
            auth_file(dir.path()),
            format!(r#"{{"auths":{{"https://index.docker.io/v1/":{{"auth":"{auth}"}}}},"credsStore":"x"}}"#),
        )
        .expect("write");
        assert_eq!(lookup(dir.path(), "docker.io").expect("lookup"), Some(c));
        assert_eq!(lookup(dir.path(), "other:1").expect("lookup"), None);
        assert!(logout(dir.path(), "docker.io").expect("logout"));
        assert!(!logout(dir.path(), "docker.io").expect("logout"));
        let left = fs::read_to_string(auth_file(dir.path())).expect("read");
        assert!(left.contains("credsStore"), "{left}");
    }
}
