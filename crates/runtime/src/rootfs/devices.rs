//! /dev inside the container: the default devices every container gets, `linux.devices`,
//! and the standard symlinks.

use super::mounts::{bind_from, Context};
use super::options::MountOptions;
use crate::error::{Result, SysContext};
use nix::mount::MsFlags;
use nix::sys::stat::{makedev, mknodat, Mode, SFlag};
use nix::unistd::{fchownat, Gid, Uid};
use oci_spec::runtime::{LinuxDevice, LinuxDeviceType};
use std::path::{Path, PathBuf};

pub struct Device {
    pub path: PathBuf,
    pub kind: SFlag,
    pub major: u64,
    pub minor: u64,
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
}

/// runc's defaults: the devices every container can rely on.
pub fn defaults() -> Vec<Device> {
    [
        ("/dev/null", 1, 3),
        ("/dev/zero", 1, 5),
        ("/dev/full", 1, 7),
        ("/dev/random", 1, 8),
        ("/dev/urandom", 1, 9),
        ("/dev/tty", 5, 0),
    ]
    .into_iter()
    .map(|(path, major, minor)| Device {
        path: PathBuf::from(path),
        kind: SFlag::S_IFCHR,
        major,
        minor,
        mode: 0o666,
        uid: 0,
        gid: 0,
    })
    .collect()
}

pub fn from_spec(d: &LinuxDevice) -> Device {
    let kind = match d.typ() {
        LinuxDeviceType::B => SFlag::S_IFBLK,
        LinuxDeviceType::P => SFlag::S_IFIFO,
        // "c" and "u" (unbuffered character device) are the same to mknod.
        _ => SFlag::S_IFCHR,
    };
    Device {
        path: d.path().clone(),
        kind,
        major: d.major() as u64,
        minor: d.minor() as u64,
        mode: d.file_mode().unwrap_or(0o666) & 0o7777,
        uid: d.uid().unwrap_or(0),
        gid: d.gid().unwrap_or(0),
    }
}

/// Creates the device node, replacing whatever the image had at that path. In a user
/// namespace mknod is not allowed, so the host's node is bind-mounted instead (as runc).
pub fn create(ctx: &Context, dev: &Device) -> Result<()> {
    if ctx.in_new_userns {
        let opts = MountOptions {
            flags: MsFlags::MS_BIND,
            ..MountOptions::default()
        };
        return bind_from(ctx, &dev.path, &dev.path, &opts);
    }
    let (dir, name) = ctx.root.parent_of(&dev.path)?;
    let what = || format!("creating device {}", dev.path.display());
    match nix::unistd::unlinkat(&dir, &name, nix::unistd::UnlinkatFlags::NoRemoveDir) {
        Ok(()) | Err(nix::errno::Errno::ENOENT) => {}
        Err(e) => return Err(e).sys(what),
    }
    mknodat(
        &dir,
        &name,
        dev.kind,
        Mode::from_bits_truncate(dev.mode),
        makedev(dev.major, dev.minor),
    )
    .sys(what)?;
    fchownat(
        &dir,
        &name,
        Some(Uid::from_raw(dev.uid)),
        Some(Gid::from_raw(dev.gid)),
        nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW,
    )
    .sys(what)
}

/// /dev/fd, /dev/std{in,out,err}, /dev/core, and /dev/ptmx pointing at the container's own
/// devpts instance when it has one.
pub fn symlinks(ctx: &Context, has_devpts: bool) -> Result<()> {
    let mut links = vec![
        ("/proc/self/fd", "/dev/fd"),
        ("/proc/self/fd/0", "/dev/stdin"),
        ("/proc/self/fd/1", "/dev/stdout"),
        ("/proc/self/fd/2", "/dev/stderr"),
    ];
    if Path::new("/proc/kcore").exists() {
        links.push(("/proc/kcore", "/dev/core"));
    }
    if has_devpts {
        let (dir, name) = ctx.root.parent_of(Path::new("/dev/ptmx"))?;
        match nix::unistd::unlinkat(&dir, &name, nix::unistd::UnlinkatFlags::NoRemoveDir) {
            Ok(()) | Err(nix::errno::Errno::ENOENT) => {}
            Err(e) => return Err(e).sys(|| "removing /dev/ptmx".into()),
        }
        links.push(("pts/ptmx", "/dev/ptmx"));
    }
    for (target, link) in links {
        let (dir, name) = ctx.root.parent_of(Path::new(link))?;
        match nix::unistd::symlinkat(target, &dir, &name) {
            Ok(()) | Err(nix::errno::Errno::EEXIST) => {}
            Err(e) => return Err(e).sys(|| format!("creating symlink {link}")),
        }
    }
    Ok(())
}
