//! Named volumes, docker's "local" driver: a record in table `volumes` of `<root>/berth.db`
//! and a directory `<root>/volumes/<name>/_data` that containers bind-mount.
//!
//! Anonymous volumes (an image's `VOLUME`, `-v /path`) get a random 64-hex name and are
//! flagged, so `prune` removes only them by default, as docker 23+ does.

use crate::error::{Error, Result};
use rusqlite::{params, Connection, OptionalExtension};
use std::io::Read;
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// A volume.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Volume {
    pub name: String,
    /// The directory containers mount (`<root>/volumes/<name>/_data`).
    pub mountpoint: PathBuf,
    /// Unix seconds.
    pub created: i64,
    pub labels: Vec<(String, String)>,
    /// Made without a name (random name), for one container's `VOLUME`/`-v /path`.
    pub anonymous: bool,
}

/// The volume records and directories under an engine root.
pub struct VolumeStore {
    conn: Connection,
    db_path: PathBuf,
    dir: PathBuf,
}

/// docker's rule for local volume names.
fn valid_name(name: &str) -> bool {
    let mut bytes = name.bytes();
    matches!(bytes.next(), Some(b) if b.is_ascii_alphanumeric())
        && name.len() >= 2
        && bytes.all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
}

/// 64 hex digits from the kernel's random pool, as docker names anonymous volumes.
fn random_name() -> Result<String> {
    let path = Path::new("/dev/urandom");
    let mut bytes = [0u8; 32];
    std::fs::File::open(path)
        .and_then(|mut f| f.read_exact(&mut bytes))
        .map_err(|source| Error::Io {
            path: path.to_path_buf(),
            source,
        })?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

impl VolumeStore {
    /// Opens the store of the engine at `root` (creating the table and directory).
    pub fn open(root: &Path) -> Result<VolumeStore> {
        let db_path = root.join("berth.db");
        let dir = root.join("volumes");
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o701)
            .create(&dir)
            .map_err(|source| Error::Io {
                path: dir.clone(),
                source,
            })?;
        let err = |source| Error::Database {
            path: db_path.clone(),
            source,
        };
        let conn = berth_sqlite::open(
            &db_path,
            "CREATE TABLE IF NOT EXISTS volumes(
                name TEXT PRIMARY KEY,
                created INTEGER NOT NULL,
                labels TEXT NOT NULL DEFAULT '[]',
                anonymous INTEGER NOT NULL DEFAULT 0);",
        )
        .map_err(err)?;
        Ok(VolumeStore { conn, db_path, dir })
    }

    fn err(&self, source: rusqlite::Error) -> Error {
        Error::Database {
            path: self.db_path.clone(),
            source,
        }
    }

    fn mountpoint(&self, name: &str) -> PathBuf {
        self.dir.join(name).join("_data")
    }

    /// Creates a volume; with `None` an anonymous one with a random name. An existing
    /// name returns that volume unchanged, as docker.
    pub fn create(&self, name: Option<&str>) -> Result<Volume> {
        self.create_with_labels(name, &[])
    }

    /// [`create`](Self::create) with labels (`volume create --label k=v`).
    pub fn create_with_labels(
        &self,
        name: Option<&str>,
        labels: &[(String, String)],
    ) -> Result<Volume> {
        let (name, anonymous) = match name {
            Some(n) if !valid_name(n) => return Err(Error::InvalidVolumeName(n.to_string())),
            Some(n) => (n.to_string(), false),
            None => (random_name()?, true),
        };
        if let Some(v) = self.find(&name)? {
            return Ok(v);
        }
        let data = self.mountpoint(&name);
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o755)
            .create(&data)
            .map_err(|source| Error::Io {
                path: data.clone(),
                source,
            })?;
        // The umask may have narrowed it; containers of any user need to enter it.
        let _ = std::fs::set_permissions(&data, std::fs::Permissions::from_mode(0o755));
        let labels_json = serde_json::to_string(labels).unwrap_or_else(|_| "[]".into());
        // Two creators racing on one name both end up with the first one's record.
        self.conn
            .execute(
                "INSERT OR IGNORE INTO volumes(name, created, labels, anonymous) VALUES (?1, ?2, ?3, ?4)",
                params![name, now(), labels_json, anonymous],
            )
            .map_err(|e| self.err(e))?;
        self.get(&name)
    }

    fn find(&self, name: &str) -> Result<Option<Volume>> {
        self.conn
            .query_row(
                "SELECT name, created, labels, anonymous FROM volumes WHERE name = ?1",
                params![name],
                |r| self.row(r),
            )
            .optional()
            .map_err(|e| self.err(e))
    }

    fn row(&self, r: &rusqlite::Row) -> rusqlite::Result<Volume> {
        let name: String = r.get(0)?;
        let labels: String = r.get(2)?;
        Ok(Volume {
            mountpoint: self.mountpoint(&name),
            name,
            created: r.get(1)?,
            labels: serde_json::from_str(&labels).unwrap_or_default(),
            anonymous: r.get(3)?,
        })
    }

    /// The volume called `name`.
    pub fn get(&self, name: &str) -> Result<Volume> {
        self.find(name)?
            .ok_or_else(|| Error::NoSuchVolume(name.to_string()))
    }

    /// Every volume, by name.
    pub fn list(&self) -> Result<Vec<Volume>> {
        let mut stmt = self
            .conn
            .prepare("SELECT name, created, labels, anonymous FROM volumes ORDER BY name")
            .map_err(|e| self.err(e))?;
        let rows = stmt
            .query_map([], |r| self.row(r))
            .map_err(|e| self.err(e))?;
        rows.collect::<rusqlite::Result<_>>()
            .map_err(|e| self.err(e))
    }

    /// Removes a volume and its data. `in_use`: the containers (names or ids) using it; if
    /// any, the volume stays and the error lists them.
    pub fn remove(&self, name: &str, in_use: &[String]) -> Result<()> {
        self.get(name)?;
        if !in_use.is_empty() {
            return Err(Error::VolumeInUse {
                name: name.to_string(),
                containers: in_use.join(", "),
            });
        }
        // Data first: if that fails half way the record stays, so `volume rm` can retry.
        let dir = self.dir.join(name);
        match std::fs::remove_dir_all(&dir) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(source) => return Err(Error::Io { path: dir, source }),
        }
        self.conn
            .execute("DELETE FROM volumes WHERE name = ?1", params![name])
            .map_err(|e| self.err(e))?;
        Ok(())
    }

    /// `volume prune`: removes the anonymous volumes not named in `in_use` (the volumes
    /// some container uses); returns the names removed.
    pub fn prune(&self, in_use: &[String]) -> Result<Vec<String>> {
        self.prune_where(in_use, false)
    }

    /// docker's copy-up: when the volume is still empty, the image's content at
    /// `destination` (a directory inside `rootfs`) is copied into it, with owners, modes,
    /// links and the directory's own owner and mode, before a container mounts it. Returns
    /// whether anything was copied (nothing when the volume has data or the image has no
    /// directory there).
    ///
    /// The destination is resolved inside the root (RESOLVE_IN_ROOT), so a symlink in the
    /// image can't make us copy host files; below it `cp -a` copies links as links.
    pub fn populate(&self, name: &str, rootfs: &Path, destination: &str) -> Result<bool> {
        let volume = self.get(name)?;
        let data = &volume.mountpoint;
        let io = |path: &Path| {
            let path = path.to_path_buf();
            move |source| Error::Io { path, source }
        };
        if std::fs::read_dir(data).map_err(io(data))?.next().is_some() {
            return Ok(false);
        }
        let Some(dir) = crate::user::open_dir_in_root(rootfs, destination)? else {
            return Ok(false);
        };
        use std::os::fd::AsRawFd;
        // cp reaches the directory through our descriptor (it is close-on-exec, so by our
        // pid, not cp's /proc/self).
        let source = format!("/proc/{}/fd/{}/.", std::process::id(), dir.as_raw_fd());
        let out = std::process::Command::new("cp")
            .arg("-a")
            .arg("--")
            .arg(&source)
            .arg(data)
            .output()
            .map_err(|source| Error::Spawn {
                program: "cp".into(),
                source,
            })?;
        if !out.status.success() {
            return Err(Error::CommandFailed {
                program: format!("copying {destination} of the image into volume {name}: cp"),
                message: String::from_utf8_lossy(&out.stderr).trim().to_string(),
            });
        }
        Ok(true)
    }

    /// `volume prune --all`: every volume not in `in_use`, named ones too.
    pub fn prune_all(&self, in_use: &[String]) -> Result<Vec<String>> {
        self.prune_where(in_use, true)
    }

    fn prune_where(&self, in_use: &[String], all: bool) -> Result<Vec<String>> {
        let mut removed = Vec::new();
        for v in self.list()? {
            if (all || v.anonymous) && !in_use.contains(&v.name) {
                self.remove(&v.name, &[])?;
                removed.push(v.name);
            }
        }
        Ok(removed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn create_get_list_remove() {
        let root = tempfile::tempdir().unwrap();
        let store = VolumeStore::open(root.path()).unwrap();
        let v = store.create(Some("data")).unwrap();
        assert_eq!(v.mountpoint, root.path().join("volumes/data/_data"));
        assert!(v.mountpoint.is_dir() && !v.anonymous);
        std::fs::write(v.mountpoint.join("f"), "x").unwrap();
        // An existing name returns the same volume, data untouched.
        assert_eq!(store.create(Some("data")).unwrap(), v);
        assert!(v.mountpoint.join("f").exists());
        let anon = store.create(None).unwrap();
        assert_eq!(anon.name.len(), 64);
        assert!(anon.anonymous);
        let l = store
            .create_with_labels(Some("lab"), &[("k".into(), "v".into())])
            .unwrap();
        assert_eq!(l.labels, [("k".to_string(), "v".to_string())]);
        let names: Vec<String> = store.list().unwrap().into_iter().map(|v| v.name).collect();
        assert_eq!(names.len(), 3);
        assert!(names.contains(&"data".to_string()));

        let e = store
            .remove("data", &["web".into()])
            .unwrap_err()
            .to_string();
        assert_eq!(e, "remove data: volume is in use - [web]");
        store.remove("data", &[]).unwrap();
        assert!(!root.path().join("volumes/data").exists());
        assert_eq!(
            store.get("data").unwrap_err().to_string(),
            "get data: no such volume"
        );
        assert!(store.remove("data", &[]).is_err());
        // A second store (another process) sees the same records.
        assert_eq!(
            VolumeStore::open(root.path())
                .unwrap()
                .list()
                .unwrap()
                .len(),
            2
        );
    }

    #[test]
    fn names_are_checked() {
        let root = tempfile::tempdir().unwrap();
        let store = VolumeStore::open(root.path()).unwrap();
        for bad in ["a", "../x", "/abs", "-x", "a b", ""] {
            let e = store.create(Some(bad)).unwrap_err().to_string();
            assert!(e.contains("invalid characters"), "{bad}: {e}");
        }
        assert!(store.create(Some("ok_name.1-2")).is_ok());
    }

    #[test]
    fn populate_copies_the_image_content_once() {
        let root = tempfile::tempdir().unwrap();
        let rootfs = tempfile::tempdir().unwrap();
        let store = VolumeStore::open(root.path()).unwrap();
        let src = rootfs.path().join("var/lib/app");
        std::fs::create_dir_all(src.join("sub")).unwrap();
        std::fs::write(src.join("sub/file"), "image data").unwrap();
        std::os::unix::fs::symlink("/etc/shadow", src.join("link")).unwrap();
        std::fs::set_permissions(&src, std::fs::Permissions::from_mode(0o750)).unwrap();
        let v = store.create(Some("appdata")).unwrap();
        assert!(store
            .populate("appdata", rootfs.path(), "/var/lib/app")
            .unwrap());
        let data = &v.mountpoint;
        assert_eq!(
            std::fs::read_to_string(data.join("sub/file")).unwrap(),
            "image data"
        );
        // Links stay links (never followed to the host's file).
        assert_eq!(
            std::fs::read_link(data.join("link")).unwrap(),
            Path::new("/etc/shadow")
        );
        let mode = std::fs::metadata(data).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o750);
        // Not empty any more: a second container's image doesn't overwrite it.
        std::fs::write(src.join("sub/file"), "changed").unwrap();
        assert!(!store
            .populate("appdata", rootfs.path(), "/var/lib/app")
            .unwrap());
        assert_eq!(
            std::fs::read_to_string(data.join("sub/file")).unwrap(),
            "image data"
        );
        // Nothing at the destination, or a symlink leading out of the root: no copy.
        store.create(Some("other")).unwrap();
        assert!(!store
            .populate("other", rootfs.path(), "/nothing/here")
            .unwrap());
        std::os::unix::fs::symlink("/etc", rootfs.path().join("hostetc")).unwrap();
        assert!(!store.populate("other", rootfs.path(), "/hostetc").unwrap());
    }

    #[test]
    fn prune_takes_unused_anonymous_volumes() {
        let root = tempfile::tempdir().unwrap();
        let store = VolumeStore::open(root.path()).unwrap();
        store.create(Some("named")).unwrap();
        let used = store.create(None).unwrap();
        let unused = store.create(None).unwrap();
        let removed = store.prune(std::slice::from_ref(&used.name)).unwrap();
        assert_eq!(removed, std::slice::from_ref(&unused.name));
        assert!(!unused.mountpoint.exists() && used.mountpoint.exists());
        let removed = store.prune_all(&[]).unwrap();
        assert_eq!(removed.len(), 2);
        assert!(store.list().unwrap().is_empty());
    }
}
