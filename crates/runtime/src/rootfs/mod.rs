//! The container's root file system: everything from the first mount to pivot_root.
//!
//! All of it happens before pivot_root, while the runtime's own /proc is still in view: every
//! path under the root is resolved by the kernel inside the root (see `resolve`), and
//! mounts are made onto the descriptors it returns.

mod copyup;
mod devices;
mod mounts;
mod options;
mod paths;
mod pivot;
pub mod resolve;

pub use options::{known_option_names, propagation_flag, MountOptions};
pub use pivot::{move_and_chroot, pivot};
pub use resolve::Root;

use crate::error::{Result, SysContext};
use nix::mount::{mount, MsFlags};
use oci_spec::runtime::Spec;
use std::path::Path;

fn none() -> Option<&'static str> {
    None
}

pub struct Setup<'a> {
    pub spec: &'a Spec,
    pub bundle: &'a Path,
    pub rootfs: &'a Path,
    pub cgroup_path: Option<&'a Path>,
    pub cgroup_layout: Option<&'a berth_cgroups::Layout>,
    pub in_new_userns: bool,
    pub new_cgroupns: bool,
}

fn root_propagation(spec: &Spec) -> Option<MsFlags> {
    spec.linux()
        .as_ref()
        .and_then(|l| l.rootfs_propagation().as_deref())
        .filter(|p| !p.is_empty())
        .and_then(propagation_flag)
}

/// Mounts, devices and links under the root; returns the root's handle for what follows.
pub fn prepare(setup: &Setup, before_cgroup_mount: &mut dyn FnMut() -> Result<()>) -> Result<Root> {
    // Until pivot_root, our copy of the host's mounts is a slave (private when the config
    // asks for private or unbindable): nothing we mount reaches the host, and the root can
    // still be bind-mounted. The configured propagation is applied to the new / after.
    // A shared root is shared from the start (mounts in the container reach the host, as
    // rshared volumes promise), with the rootfs's parent made private for pivot_root.
    let flag = match root_propagation(setup.spec) {
        Some(f) if f.intersects(MsFlags::MS_PRIVATE | MsFlags::MS_UNBINDABLE) => {
            MsFlags::MS_PRIVATE | MsFlags::MS_REC
        }
        Some(f) if f.contains(MsFlags::MS_SHARED) => f,
        _ => MsFlags::MS_SLAVE | MsFlags::MS_REC,
    };
    mount(none(), "/", none(), flag, none()).sys(|| "setting propagation of /".into())?;
    if flag.contains(MsFlags::MS_SHARED) {
        make_parent_mount_private(setup.rootfs)?;
    }
    mount(
        Some(setup.rootfs),
        setup.rootfs,
        none(),
        MsFlags::MS_BIND | MsFlags::MS_REC,
        none(),
    )
    .sys(|| format!("bind-mounting {} onto itself", setup.rootfs.display()))?;
    let root = Root::open(setup.rootfs)?;
    let ctx = mounts::Context {
        root: &root,
        bundle: setup.bundle,
        cgroup_path: setup.cgroup_path,
        cgroup_layout: setup.cgroup_layout,
        in_new_userns: setup.in_new_userns,
        new_cgroupns: setup.new_cgroupns,
    };
    let spec_mounts = setup.spec.mounts().as_deref().unwrap_or_default();
    mounts::mount_all(&ctx, spec_mounts, before_cgroup_mount)?;

    let dev_from_host = spec_mounts.iter().any(|m| {
        m.destination() == Path::new("/dev")
            && (m.typ().as_deref() == Some("bind")
                || m.options()
                    .iter()
                    .flatten()
                    .any(|o| o == "bind" || o == "rbind"))
    });
    let linux = setup.spec.linux().as_ref();
    let spec_devices = linux
        .and_then(|l| l.devices().as_deref())
        .unwrap_or_default();
    if !dev_from_host {
        for d in devices::defaults() {
            if !spec_devices.iter().any(|s| s.path() == &d.path) {
                devices::create(&ctx, &d)?;
            }
        }
    }
    for d in spec_devices {
        devices::create(&ctx, &devices::from_spec(d))?;
    }
    let has_devpts = spec_mounts
        .iter()
        .any(|m| m.destination() == Path::new("/dev/pts") && m.typ().as_deref() == Some("devpts"));
    if !dev_from_host {
        devices::symlinks(&ctx, has_devpts)?;
    }
    Ok(root)
}

/// maskedPaths and readonlyPaths; after sysctls (which may write under /proc/sys).
pub fn lock_down(root: &Root, spec: &Spec) -> Result<()> {
    let Some(linux) = spec.linux().as_ref() else {
        return Ok(());
    };
    if let Some(masked) = linux.masked_paths().as_deref().filter(|m| !m.is_empty()) {
        let dev_null = paths::verified_dev_null()?;
        for p in masked {
            paths::mask(root, Path::new(p), &dev_null)?;
        }
    }
    for p in linux.readonly_paths().as_deref().unwrap_or_default() {
        paths::readonly(root, Path::new(p))?;
    }
    Ok(())
}

/// Enters the root and applies what must be done from inside it.
pub fn enter(setup: &Setup, no_pivot: bool) -> Result<()> {
    if no_pivot {
        move_and_chroot(setup.rootfs)?;
    } else {
        pivot(setup.rootfs)?;
    }
    if let Some(flag) = root_propagation(setup.spec) {
        mount(none(), "/", none(), flag, none()).sys(|| "setting propagation of /".into())?;
    }
    let readonly = setup.spec.root().as_ref().and_then(|r| r.readonly()) == Some(true);
    if readonly {
        let fd = nix::fcntl::open(
            "/",
            nix::fcntl::OFlag::O_PATH | nix::fcntl::OFlag::O_CLOEXEC,
            nix::sys::stat::Mode::empty(),
        )
        .sys(|| "opening /".into())?;
        crate::sys::mount_setattr(
            std::os::fd::AsFd::as_fd(&fd),
            false,
            options::ATTR_RDONLY,
            0,
            0,
        )
        .sys(|| "making the root read-only".into())?;
    }
    Ok(())
}

/// pivot_root refuses a new root whose parent mount is shared: make that one private.
fn make_parent_mount_private(rootfs: &Path) -> Result<()> {
    let info = crate::procfs::mountinfo()?;
    let dir = rootfs.parent().unwrap_or(rootfs);
    let parent = info
        .lines()
        .filter_map(|l| l.split(' ').nth(4))
        .filter(|mp| dir.starts_with(mp))
        .max_by_key(|mp| mp.len())
        .unwrap_or("/")
        .to_string();
    mount(none(), parent.as_str(), none(), MsFlags::MS_PRIVATE, none())
        .sys(|| format!("making {parent} private"))
}
