//! `tmpcopyup`: a tmpfs mounted over a directory of the image starts with a copy of what
//! the image had there (podman uses it for --read-only's /tmp, /var/tmp and /run).

use crate::error::{Result, RuntimeError};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> RuntimeError + '_ {
    move |e| RuntimeError::Io {
        path: path.to_path_buf(),
        source: e,
    }
}

/// Copies the tree under `from` into `to` (an empty directory), keeping modes, owners and
/// symlinks as they are (links are copied, never followed).
pub fn copy_tree(from: &Path, to: &Path) -> Result<()> {
    for entry in std::fs::read_dir(from).map_err(io(from))? {
        let entry = entry.map_err(io(from))?;
        let src = entry.path();
        let dst = to.join(entry.file_name());
        let meta = std::fs::symlink_metadata(&src).map_err(io(&src))?;
        let ft = meta.file_type();
        if ft.is_dir() {
            std::fs::create_dir(&dst).map_err(io(&dst))?;
            copy_tree(&src, &dst)?;
        } else if ft.is_symlink() {
            let target = std::fs::read_link(&src).map_err(io(&src))?;
            std::os::unix::fs::symlink(&target, &dst).map_err(io(&dst))?;
        } else if ft.is_file() {
            std::fs::copy(&src, &dst).map_err(io(&dst))?;
        } else {
            // Sockets, fifos and device nodes are not copied: a fresh tmpfs starts without.
            continue;
        }
        std::os::unix::fs::lchown(&dst, Some(meta.uid()), Some(meta.gid())).map_err(io(&dst))?;
        if !ft.is_symlink() {
            std::fs::set_permissions(&dst, std::fs::Permissions::from_mode(meta.mode() & 0o7777))
                .map_err(io(&dst))?;
        }
    }
    Ok(())
}
