//! `--user` / the image's `USER`: a name or id, with an optional group, resolved against the
//! image's own /etc/passwd and /etc/group the way docker (runc's libcontainer/user) does.
//!
//! The files are opened with `RESOLVE_IN_ROOT`, so a symlink planted in the image (say
//! `/etc/passwd -> /../../../etc/shadow`) resolves inside the root file system and never
//! reads a host file.

use crate::error::{Error, Result};
use nix::errno::Errno;
use nix::fcntl::{openat2, OFlag, OpenHow, ResolveFlag};
use nix::sys::stat::Mode;
use std::io::Read;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};

/// The ids a container's process runs with.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ResolvedUser {
    pub uid: u32,
    pub gid: u32,
    /// Supplementary groups: the groups of /etc/group listing the user by name (only when
    /// no group was given explicitly, as docker).
    pub additional_gids: Vec<u32>,
    /// The home directory from /etc/passwd, "/" when there is no entry.
    pub home: String,
}

/// The largest id docker accepts (ids are signed 32-bit in the kernel's user API).
const MAX_ID: u64 = i32::MAX as u64;

/// Resolves `spec` ("", "name", "uid", "name:group", "uid:gid", ...) inside `rootfs`.
/// Numeric ids need no entry; an unknown name is an error naming it.
pub fn resolve_user(rootfs: &Path, spec: &str) -> Result<ResolvedUser> {
    let (user_arg, group_arg) = match spec.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (spec, None),
    };
    let user_arg = if user_arg.is_empty() { "0" } else { user_arg };
    let user_id = parse_id(user_arg, spec)?;

    let passwd = read_in_root(rootfs, "etc/passwd")?;
    let entry = passwd
        .as_deref()
        .and_then(|text| parse_passwd(text).find(|e| e.name == user_arg || Some(e.uid) == user_id));
    let (uid, mut gid, home, name) = match (entry, user_id) {
        (Some(e), _) => (e.uid, e.gid, e.home.to_string(), Some(e.name.to_string())),
        (None, Some(uid)) => (uid, 0, "/".to_string(), None),
        (None, None) => return Err(Error::UnknownUser(user_arg.to_string())),
    };

    let mut additional_gids = Vec::new();
    let group_arg = group_arg.filter(|g| !g.is_empty());
    if group_arg.is_some() || name.is_some() {
        let group = read_in_root(rootfs, "etc/group")?;
        let groups: Vec<GroupEntry> = group.as_deref().map(parse_group).unwrap_or_default();
        match group_arg {
            Some(g) => {
                let gid_arg = parse_id(g, spec)?;
                gid = match groups
                    .iter()
                    .find(|e| e.name == g || Some(e.gid) == gid_arg)
                {
                    Some(e) => e.gid,
                    None => gid_arg.ok_or_else(|| Error::UnknownGroup(g.to_string()))?,
                };
            }
            None => {
                let name = name.unwrap_or_default();
                for e in &groups {
                    if e.members.iter().any(|m| *m == name) && !additional_gids.contains(&e.gid) {
                        additional_gids.push(e.gid);
                    }
                }
            }
        }
    }
    Ok(ResolvedUser {
        uid,
        gid,
        additional_gids,
        home: if home.is_empty() { "/".into() } else { home },
    })
}

/// `Some(id)` for a decimal id in docker's range, `None` for a name.
fn parse_id(s: &str, spec: &str) -> Result<Option<u32>> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return Ok(None);
    }
    match s.parse::<u64>() {
        Ok(n) if n <= MAX_ID => Ok(Some(n as u32)),
        _ => Err(Error::InvalidUser {
            spec: spec.to_string(),
            reason: format!("uids and gids must be in range 0-{MAX_ID}"),
        }),
    }
}

struct PasswdEntry<'a> {
    name: &'a str,
    uid: u32,
    gid: u32,
    home: &'a str,
}

/// passwd(5) lines; malformed lines are skipped, as libc and runc do.
fn parse_passwd(text: &str) -> impl Iterator<Item = PasswdEntry<'_>> {
    text.lines().filter_map(|line| {
        let f: Vec<&str> = line.split(':').collect();
        if f.len() < 4 || line.starts_with('#') {
            return None;
        }
        Some(PasswdEntry {
            name: f[0],
            uid: f[2].trim().parse().ok()?,
            gid: f[3].trim().parse().ok()?,
            home: f.get(5).copied().unwrap_or(""),
        })
    })
}

struct GroupEntry<'a> {
    name: &'a str,
    gid: u32,
    members: Vec<&'a str>,
}

/// group(5) lines; malformed lines are skipped.
fn parse_group(text: &str) -> Vec<GroupEntry<'_>> {
    text.lines()
        .filter_map(|line| {
            let f: Vec<&str> = line.split(':').collect();
            if f.len() < 3 || line.starts_with('#') {
                return None;
            }
            Some(GroupEntry {
                name: f[0],
                gid: f[2].trim().parse().ok()?,
                members: f
                    .get(3)
                    .map(|m| {
                        m.split(',')
                            .map(str::trim)
                            .filter(|m| !m.is_empty())
                            .collect()
                    })
                    .unwrap_or_default(),
            })
        })
        .collect()
}

/// Reads `rel` (relative to the root) with every path component resolved inside `rootfs`.
/// `None` when the file doesn't exist (an image without /etc/passwd is fine for ids).
pub fn read_in_root(rootfs: &Path, rel: &str) -> Result<Option<String>> {
    let io_err = |e: Errno| Error::Io {
        path: rootfs.join(rel),
        source: std::io::Error::from(e),
    };
    let root = nix::fcntl::open(
        rootfs,
        OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| Error::Io {
        path: rootfs.to_path_buf(),
        source: e.into(),
    })?;
    // O_PATH first: opening a device node or FIFO planted at /etc/passwd for reading
    // could block or have side effects; only a regular file is then opened for real.
    let how = OpenHow::new()
        .flags(OFlag::O_PATH | OFlag::O_CLOEXEC)
        .resolve(ResolveFlag::RESOLVE_IN_ROOT | ResolveFlag::RESOLVE_NO_MAGICLINKS);
    let path_fd = match openat2(&root, &PathBuf::from(rel), how) {
        Ok(fd) => fd,
        Err(Errno::ENOENT) | Err(Errno::ENOTDIR) => return Ok(None),
        Err(e) => return Err(io_err(e)),
    };
    let stat = nix::sys::stat::fstat(&path_fd).map_err(io_err)?;
    if stat.st_mode & libc::S_IFMT != libc::S_IFREG {
        return Ok(None);
    }
    // Reopening our own descriptor through /proc reads exactly the file resolved above.
    let reopen = format!("/proc/self/fd/{}", path_fd.as_raw_fd());
    let mut file = std::fs::File::open(&reopen).map_err(|source| Error::Io {
        path: rootfs.join(rel),
        source,
    })?;
    let mut bytes = Vec::new();
    // A passwd file of more than 16 MiB is hostile; reading stops there.
    file.by_ref()
        .take(16 << 20)
        .read_to_end(&mut bytes)
        .map_err(|source| Error::Io {
            path: rootfs.join(rel),
            source,
        })?;
    Ok(Some(String::from_utf8_lossy(&bytes).into_owned()))
}

/// A descriptor of the directory `path` (absolute, as the container sees it) resolved
/// inside `rootfs`; `None` when there is no directory there.
pub fn open_dir_in_root(rootfs: &Path, path: &str) -> Result<Option<std::os::fd::OwnedFd>> {
    let root = nix::fcntl::open(
        rootfs,
        OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| Error::Io {
        path: rootfs.to_path_buf(),
        source: e.into(),
    })?;
    let rel = path.trim_start_matches('/');
    let rel = if rel.is_empty() { "." } else { rel };
    let how = OpenHow::new()
        .flags(OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC)
        .resolve(ResolveFlag::RESOLVE_IN_ROOT | ResolveFlag::RESOLVE_NO_MAGICLINKS);
    match openat2(&root, &PathBuf::from(rel), how) {
        Ok(fd) => Ok(Some(fd)),
        Err(Errno::ENOENT) | Err(Errno::ENOTDIR) => Ok(None),
        Err(e) => Err(Error::Io {
            path: rootfs.join(rel),
            source: e.into(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    fn rootfs(passwd: Option<&str>, group: Option<&str>) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        fs::create_dir_all(dir.path().join("etc")).unwrap();
        if let Some(p) = passwd {
            fs::write(dir.path().join("etc/passwd"), p).unwrap();
        }
        if let Some(g) = group {
            fs::write(dir.path().join("etc/group"), g).unwrap();
        }
        dir
    }

    const PASSWD: &str = "root:x:0:0:root:/root:/bin/sh\n\
        daemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin\n\
        # comment\n\
        broken line\n\
        app:x:1000:1001:App:/home/app:/bin/sh\n";
    const GROUP: &str =
        "root:x:0:\nwheel:x:10:app,other\napp:x:1001:\naudio:x:29:app\nstaff:x:50:\n";

    #[test]
    fn empty_is_root_with_home() {
        let r = rootfs(Some(PASSWD), Some(GROUP));
        let u = resolve_user(r.path(), "").unwrap();
        assert_eq!((u.uid, u.gid, u.home.as_str()), (0, 0, "/root"));
        assert!(u.additional_gids.is_empty());
    }

    #[test]
    fn name_gets_entry_and_supplementary_groups() {
        let r = rootfs(Some(PASSWD), Some(GROUP));
        let u = resolve_user(r.path(), "app").unwrap();
        assert_eq!((u.uid, u.gid, u.home.as_str()), (1000, 1001, "/home/app"));
        assert_eq!(u.additional_gids, vec![10, 29]);
        // A numeric uid with an entry resolves like its name.
        assert_eq!(resolve_user(r.path(), "1000").unwrap(), u);
    }

    #[test]
    fn explicit_group_by_name_or_id_and_no_supplementary() {
        let r = rootfs(Some(PASSWD), Some(GROUP));
        let u = resolve_user(r.path(), "app:staff").unwrap();
        assert_eq!((u.uid, u.gid), (1000, 50));
        assert!(u.additional_gids.is_empty());
        let u = resolve_user(r.path(), "daemon:4242").unwrap();
        assert_eq!((u.uid, u.gid, u.home.as_str()), (1, 4242, "/usr/sbin"));
    }

    #[test]
    fn numeric_ids_need_no_entry() {
        let r = rootfs(None, None);
        let u = resolve_user(r.path(), "4000:4001").unwrap();
        assert_eq!((u.uid, u.gid, u.home.as_str()), (4000, 4001, "/"));
        let u = resolve_user(r.path(), "4000").unwrap();
        assert_eq!((u.uid, u.gid), (4000, 0));
    }

    #[test]
    fn unknown_names_are_docker_errors() {
        let r = rootfs(Some(PASSWD), Some(GROUP));
        let e = resolve_user(r.path(), "nobody").unwrap_err().to_string();
        assert_eq!(
            e,
            "unable to find user nobody: no matching entries in passwd file"
        );
        let e = resolve_user(r.path(), "app:nogroup")
            .unwrap_err()
            .to_string();
        assert_eq!(
            e,
            "unable to find group nogroup: no matching entries in group file"
        );
        let r = rootfs(None, None);
        assert!(resolve_user(r.path(), "app").is_err());
        let e = resolve_user(r.path(), "99999999999")
            .unwrap_err()
            .to_string();
        assert!(e.contains("range"), "{e}");
    }

    #[test]
    fn symlinks_stay_inside_the_root() {
        let r = rootfs(None, None);
        // An absolute symlink and a climbing one both resolve inside the root, where no
        // such file exists: no host file is read.
        std::os::unix::fs::symlink("/etc/hostname", r.path().join("etc/passwd")).unwrap();
        std::os::unix::fs::symlink("../../../../../../etc/shadow", r.path().join("etc/group"))
            .unwrap();
        assert_eq!(read_in_root(r.path(), "etc/passwd").unwrap(), None);
        assert_eq!(read_in_root(r.path(), "etc/group").unwrap(), None);
        assert!(resolve_user(r.path(), "root").is_err());
        // ...and a link inside the root is followed there.
        fs::write(r.path().join("etc/hostname"), "root:x:0:0::/r00t:/bin/sh\n").unwrap();
        assert_eq!(resolve_user(r.path(), "root").unwrap().home, "/r00t");
        // A FIFO is not read (it would block).
        fs::remove_file(r.path().join("etc/group")).unwrap();
        nix::unistd::mkfifo(&r.path().join("etc/group"), Mode::from_bits_truncate(0o644)).unwrap();
        assert_eq!(read_in_root(r.path(), "etc/group").unwrap(), None);
        assert_eq!(resolve_user(r.path(), "root").unwrap().uid, 0);
    }
}
