//! Named network namespaces: `<run_root>/netns/<name>` files, each a bind mount of a
//! namespace so it lives without a process in it (the OCI runtime joins it by path).

use std::path::{Path, PathBuf};

use nix::mount::{mount, umount2, MntFlags, MsFlags};
use nix::sched::CloneFlags;

use crate::error::{Error, IoContext, Result};
use crate::netlink::{self, Netlink};

pub fn netns_dir(run_root: &Path) -> PathBuf {
    run_root.join("netns")
}

/// Make a new network namespace with only `lo` (up) at `<run_root>/netns/<name>`. An
/// existing file of that name is an error; on any error nothing is left.
pub fn create(run_root: &Path, name: &str) -> Result<PathBuf> {
    if name.is_empty() || name.contains('/') || name.starts_with('.') {
        return Err(Error::Netns {
            path: PathBuf::from(name),
            what: "name",
            source: std::io::Error::from(std::io::ErrorKind::InvalidInput),
        });
    }
    let dir = netns_dir(run_root);
    std::fs::create_dir_all(&dir).at(&dir)?;
    let path = dir.join(name);
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&path)
        .at(&path)?;
    let res = bind_new_netns(&path).and_then(|()| bring_up_lo(&path));
    if let Err(e) = res {
        let _ = remove(&path);
        return Err(e);
    }
    Ok(path)
}

/// A short-lived thread unshares its network namespace and binds it onto `path`; the
/// calling thread stays where it is.
fn bind_new_netns(path: &Path) -> Result<()> {
    let err = |what, e: nix::Error| Error::Netns {
        path: path.to_path_buf(),
        what,
        source: e.into(),
    };
    std::thread::scope(|s| {
        s.spawn(|| {
            nix::sched::unshare(CloneFlags::CLONE_NEWNET).map_err(|e| err("unshare", e))?;
            mount(
                Some("/proc/thread-self/ns/net"),
                path,
                None::<&str>,
                MsFlags::MS_BIND,
                None::<&str>,
            )
            .map_err(|e| err("bind mount", e))
        })
        .join()
        .unwrap_or_else(|_| Err(err("unshare", nix::Error::EINVAL)))
    })
}

fn bring_up_lo(path: &Path) -> Result<()> {
    let nl = Netlink::open()?;
    let file = std::fs::File::open(path).at(path)?;
    let h = nl.handle_in(&file, path)?;
    nl.block_on(netlink::set_up(&h, "lo"))
}

/// Unmount and delete a namespace file; one already gone is fine.
pub fn remove(path: &Path) -> Result<()> {
    match umount2(path, MntFlags::MNT_DETACH) {
        Ok(()) | Err(nix::Error::EINVAL) | Err(nix::Error::ENOENT) => {}
        Err(e) => {
            return Err(Error::Netns {
                path: path.to_path_buf(),
                what: "unmount",
                source: e.into(),
            })
        }
    }
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(Error::Io {
            path: path.to_path_buf(),
            source: e,
        }),
        _ => Ok(()),
    }
}

/// Whether `path` is a live namespace file (a bind mount of an nsfs inode).
pub fn exists(path: &Path) -> bool {
    nix::sys::statfs::statfs(path)
        .map(|s| s.filesystem_type() == nix::sys::statfs::NSFS_MAGIC)
        .unwrap_or(false)
}
