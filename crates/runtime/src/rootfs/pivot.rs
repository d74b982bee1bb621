//! Entering the new root: pivot_root (chroot only with --no-pivot).

use crate::error::{Result, SysContext};
use nix::fcntl::{open, OFlag};
use nix::mount::{mount, umount2, MntFlags, MsFlags};
use nix::sys::stat::Mode;
use nix::unistd::{chdir, chroot, fchdir, pivot_root};
use std::path::Path;

fn none() -> Option<&'static str> {
    None
}

/// runc's pivot without a temporary directory: pivot_root(".", ".") stacks the old root
/// under the new one at "/", from where it is detached.
pub fn pivot(rootfs: &Path) -> Result<()> {
    let flags = OFlag::O_DIRECTORY | OFlag::O_RDONLY | OFlag::O_CLOEXEC;
    let old = open("/", flags, Mode::empty()).sys(|| "opening /".into())?;
    let new = open(rootfs, flags, Mode::empty()).sys(|| format!("opening {}", rootfs.display()))?;
    fchdir(&new).sys(|| "entering the root".into())?;
    pivot_root(".", ".").sys(|| format!("pivot_root into {}", rootfs.display()))?;
    fchdir(&old).sys(|| "entering the old root".into())?;
    // Slave first, so detaching the old root doesn't propagate unmounts to the host.
    mount(
        none(),
        ".",
        none(),
        MsFlags::MS_SLAVE | MsFlags::MS_REC,
        none(),
    )
    .sys(|| "making the old root a slave".into())?;
    umount2(".", MntFlags::MNT_DETACH).sys(|| "detaching the old root".into())?;
    chdir("/").sys(|| "chdir /".into())
}

pub fn move_and_chroot(rootfs: &Path) -> Result<()> {
    chdir(rootfs).sys(|| format!("chdir {}", rootfs.display()))?;
    mount(Some(rootfs), "/", none(), MsFlags::MS_MOVE, none())
        .sys(|| format!("moving {} to /", rootfs.display()))?;
    chroot(".").sys(|| "chroot".into())?;
    chdir("/").sys(|| "chdir /".into())
}
