//! maskedPaths and readonlyPaths.

use super::resolve::{fd_path, Root};
use crate::error::{Result, RuntimeError, SysContext};
use nix::mount::{mount, MsFlags};
use nix::sys::stat::{fstat, SFlag};
use std::os::fd::{AsFd, OwnedFd};
use std::path::Path;

/// The host's /dev/null, checked to be the real null device before it is used to hide
/// anything (CVE-2025-31133: a path swapped in for /dev/null would unmask what it covers).
pub fn verified_dev_null() -> Result<OwnedFd> {
    let fd = nix::fcntl::open(
        "/dev/null",
        nix::fcntl::OFlag::O_PATH | nix::fcntl::OFlag::O_CLOEXEC,
        nix::sys::stat::Mode::empty(),
    )
    .sys(|| "opening /dev/null".into())?;
    let st = fstat(&fd).sys(|| "stat /dev/null".into())?;
    let is_chr = SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT == SFlag::S_IFCHR;
    if !is_chr || st.st_rdev != nix::sys::stat::makedev(1, 3) {
        return Err(RuntimeError::Init(
            "/dev/null is not the null device (1:3); refusing to mask paths with it".into(),
        ));
    }
    Ok(fd)
}

fn none() -> Option<&'static str> {
    None
}

pub fn mask(root: &Root, path: &Path, dev_null: &OwnedFd) -> Result<()> {
    let Some(fd) = root.lookup(path)? else {
        return Ok(());
    };
    let st = fstat(&fd).sys(|| format!("stat {}", path.display()))?;
    let what = || format!("masking {}", path.display());
    if SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT == SFlag::S_IFDIR {
        mount(
            Some("tmpfs"),
            fd_path(&fd).as_str(),
            Some("tmpfs"),
            MsFlags::MS_RDONLY,
            Some("size=0k"),
        )
        .sys(what)
    } else {
        mount(
            Some(fd_path(dev_null).as_str()),
            fd_path(&fd).as_str(),
            none(),
            MsFlags::MS_BIND,
            none(),
        )
        .sys(what)
    }
}

pub fn readonly(root: &Root, path: &Path) -> Result<()> {
    let Some(fd) = root.lookup(path)? else {
        return Ok(());
    };
    let what = || format!("making {} read-only", path.display());
    let p = fd_path(&fd);
    mount(
        Some(p.as_str()),
        p.as_str(),
        none(),
        MsFlags::MS_BIND | MsFlags::MS_REC,
        none(),
    )
    .sys(what)?;
    // The descriptor still names the covered directory: reopen to reach the new mount.
    let Some(top) = root.lookup(path)? else {
        return Ok(());
    };
    crate::sys::mount_setattr(top.as_fd(), true, super::options::ATTR_RDONLY, 0, 0).sys(what)
}
