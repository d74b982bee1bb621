//! Undoing a container's run-time state (runtime state, rootfs mount, bundle) and its
//! files. Every step is idempotent: after a reboot or a killed monitor only some of it
//! is there.

use std::fs;
use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use crate::error::{Error, Result};
use crate::paths::Paths;
use crate::runtime::Runtime;

/// Whether `path` is the root of a mount (its device differs from its parent's).
pub fn is_mount_point(path: &Path) -> bool {
    let (Ok(me), Some(Ok(parent))) = (
        fs::symlink_metadata(path),
        path.parent().map(fs::symlink_metadata),
    ) else {
        return false;
    };
    me.dev() != parent.dev() || me.ino() == parent.ino()
}

/// After the container stopped (or was found dead): the runtime's container, the rootfs
/// mount and the bundle go; the monitor lock file stays (waiters may hold it open).
pub fn teardown(paths: &Paths, runtime: &Runtime, id: &str) -> Result<()> {
    runtime.delete_force(id)?;
    // Its processes are gone: ports, leases and the network namespace go back.
    crate::networking::release(paths, id)?;
    let rootfs = paths.rootfs(id);
    if is_mount_point(&rootfs) {
        berth_image::snapshot::unmount(&rootfs)?;
    }
    for p in [
        rootfs,
        paths.run_dir(id).join("config.json"),
        paths.pid_file(id),
        paths.console_socket(id),
        paths.attach_socket(id),
    ] {
        remove_path(&p)?;
    }
    Ok(())
}

/// Remove every file of a container (after [`teardown`]).
pub fn remove_files(paths: &Paths, id: &str) -> Result<()> {
    remove_path(&paths.run_dir(id))?;
    remove_path(&paths.container_dir(id))
}

fn remove_path(p: &Path) -> Result<()> {
    let res = match fs::symlink_metadata(p) {
        Ok(m) if m.is_dir() => fs::remove_dir_all(p),
        Ok(_) => fs::remove_file(p),
        Err(e) => Err(e),
    };
    match res {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(Error::Io {
            path: p.to_path_buf(),
            source: e,
        }),
        _ => Ok(()),
    }
}
