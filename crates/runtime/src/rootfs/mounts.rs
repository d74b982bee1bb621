//! The mounts of config.json, each made onto a descriptor resolved inside the root.

use super::options::MountOptions;
use super::resolve::{fd_path, relative, Root};
use crate::error::{Result, RuntimeError, SysContext};
use nix::mount::{mount, MsFlags};
use nix::sys::statvfs::{fstatvfs, FsFlags};
use oci_spec::runtime::Mount;
use std::path::{Path, PathBuf};

/// What the mounts need to know beyond config.json.
pub struct Context<'a> {
    pub root: &'a Root,
    pub bundle: &'a Path,
    /// The container's cgroup path (e.g. /berth/ctr1), for bind-mounting its own cgroup when
    /// it has no cgroup namespace.
    pub cgroup_path: Option<&'a Path>,
    /// The host's cgroup mounts as the runtime already found them (saves re-reading
    /// mountinfo); `None` means look them up.
    pub cgroup_layout: Option<&'a berth_cgroups::Layout>,
    pub in_new_userns: bool,
    pub new_cgroupns: bool,
}

fn none() -> Option<&'static str> {
    None
}

pub fn mount_all(
    ctx: &Context,
    mounts: &[Mount],
    before_cgroup_mount: &mut dyn FnMut() -> Result<()>,
) -> Result<()> {
    for m in mounts {
        let opts =
            MountOptions::parse(m.options().as_deref().unwrap_or_default()).map_err(|o| {
                RuntimeError::InvalidConfig(format!("mount option {o:?} is not supported"))
            })?;
        let typ = m.typ().as_deref().unwrap_or("");
        let what = || format!("mounting {} on {}", typ, m.destination().display());
        if opts.is_bind() || typ == "bind" {
            bind(ctx, m, &opts)?;
        } else if typ == "cgroup" || typ == "cgroup2" {
            before_cgroup_mount()?;
            mount_cgroup(ctx, m, &opts)?;
        } else {
            let dest = ctx.root.mkdir_all(m.destination(), 0o755)?;
            // For tmpcopyup: the image's directory, still reachable once covered.
            let below = if opts.copy_up {
                Some(
                    ctx.root
                        .open_at(
                            m.destination(),
                            nix::fcntl::OFlag::O_RDONLY | nix::fcntl::OFlag::O_DIRECTORY,
                        )
                        .sys(|| format!("opening {}", m.destination().display()))?,
                )
            } else {
                None
            };
            let source = m
                .source()
                .as_deref()
                .map(Path::to_path_buf)
                .unwrap_or_else(|| PathBuf::from(typ));
            let data = (!opts.data.is_empty()).then_some(opts.data.as_str());
            let res = mount(
                Some(&source),
                fd_path(&dest).as_str(),
                Some(typ),
                opts.flags,
                data,
            );
            match res {
                // sysfs can't be mounted in a user namespace that doesn't own the network
                // namespace; runc then binds the host's /sys, read-only as asked.
                Err(nix::errno::Errno::EPERM) if typ == "sysfs" && ctx.in_new_userns => {
                    let fallback = MountOptions {
                        flags: opts.flags | MsFlags::MS_BIND | MsFlags::MS_REC,
                        ..opts.clone()
                    };
                    bind_from(ctx, Path::new("/sys"), m.destination(), &fallback)?;
                }
                // devpts takes gid=5 (tty) only if the user namespace maps that group; as
                // crun, mount it without the option then (ptys get the creator's group).
                Err(nix::errno::Errno::EINVAL)
                    if typ == "devpts"
                        && ctx.in_new_userns
                        && opts.data.split(',').any(|o| o.starts_with("gid=")) =>
                {
                    let data: Vec<&str> = opts
                        .data
                        .split(',')
                        .filter(|o| !o.starts_with("gid="))
                        .collect();
                    let data = data.join(",");
                    mount(
                        Some(&source),
                        fd_path(&dest).as_str(),
                        Some(typ),
                        opts.flags,
                        (!data.is_empty()).then_some(data.as_str()),
                    )
                    .sys(what)?;
                }
                other => other.sys(what)?,
            }
            if let Some(below) = below {
                let top = ctx.root.mkdir_all(m.destination(), 0o755)?;
                super::copyup::copy_tree(Path::new(&fd_path(&below)), Path::new(&fd_path(&top)))?;
            }
        }
        finish(ctx, m.destination(), &opts)?;
    }
    Ok(())
}

/// Propagation changes and recursive attributes, on the mount now at `dest`.
fn finish(ctx: &Context, dest: &Path, opts: &MountOptions) -> Result<()> {
    if opts.propagation.is_empty() && opts.rec_set == 0 && opts.rec_clr == 0 {
        return Ok(());
    }
    let Some(fd) = ctx.root.lookup(dest)? else {
        return Ok(());
    };
    for p in &opts.propagation {
        mount(none(), fd_path(&fd).as_str(), none(), *p, none())
            .sys(|| format!("setting propagation of {}", dest.display()))?;
    }
    if opts.rec_set != 0 || opts.rec_clr != 0 {
        crate::sys::mount_setattr(
            std::os::fd::AsFd::as_fd(&fd),
            true,
            opts.rec_set,
            opts.rec_clr,
            0,
        )
        .sys(|| format!("setting recursive attributes of {}", dest.display()))?;
    }
    Ok(())
}

fn bind(ctx: &Context, m: &Mount, opts: &MountOptions) -> Result<()> {
    let source = m.source().as_deref().ok_or_else(|| {
        RuntimeError::InvalidConfig(format!(
            "bind mount {} has no source",
            m.destination().display()
        ))
    })?;
    let source = if source.is_absolute() {
        source.to_path_buf()
    } else {
        ctx.bundle.join(source)
    };
    bind_from(ctx, &source, m.destination(), opts)
}

pub fn bind_from(ctx: &Context, source: &Path, dest: &Path, opts: &MountOptions) -> Result<()> {
    let meta = std::fs::metadata(source).map_err(|e| RuntimeError::Io {
        path: source.to_path_buf(),
        source: e,
    })?;
    let target = if meta.is_dir() {
        ctx.root.mkdir_all(dest, 0o755)?
    } else {
        ctx.root.ensure_file(dest)?
    };
    let what = || format!("bind-mounting {} on {}", source.display(), dest.display());
    let bind_flags = MsFlags::MS_BIND | (opts.flags & MsFlags::MS_REC);
    mount(
        Some(source),
        fd_path(&target).as_str(),
        none(),
        bind_flags,
        none(),
    )
    .sys(what)?;
    let extra = opts.flags - (MsFlags::MS_BIND | MsFlags::MS_REC | MsFlags::MS_REMOUNT);
    if !extra.is_empty() {
        remount(ctx, dest, extra)?;
    }
    Ok(())
}

/// Remounts the bind mount at `dest` with `flags`, keeping the flags the kernel locks on
/// mounts inherited by a user namespace (else the remount fails with EPERM).
pub fn remount(ctx: &Context, dest: &Path, flags: MsFlags) -> Result<()> {
    let Some(fd) = ctx.root.lookup(dest)? else {
        return Ok(());
    };
    let mut flags = flags | MsFlags::MS_BIND | MsFlags::MS_REMOUNT;
    if let Ok(st) = fstatvfs(&fd) {
        let locked = [
            (FsFlags::ST_NOSUID, MsFlags::MS_NOSUID),
            (FsFlags::ST_NODEV, MsFlags::MS_NODEV),
            (FsFlags::ST_NOEXEC, MsFlags::MS_NOEXEC),
            (FsFlags::ST_NOATIME, MsFlags::MS_NOATIME),
            (FsFlags::ST_NODIRATIME, MsFlags::MS_NODIRATIME),
            (FsFlags::ST_RELATIME, MsFlags::MS_RELATIME),
        ];
        for (st_flag, ms_flag) in locked {
            if st.flags().contains(st_flag) {
                flags |= ms_flag;
            }
        }
    }
    mount(none(), fd_path(&fd).as_str(), none(), flags, none())
        .sys(|| format!("remounting {} with {flags:?}", dest.display()))
}

/// One line of /proc/self/mountinfo that matters for cgroup mounts.
struct CgroupMount {
    mountpoint: PathBuf,
    fstype: String,
    /// The controllers (or name=...) of a v1 hierarchy, as mount -o takes them.
    subsystems: String,
}

fn host_cgroup_mounts(layout: Option<&berth_cgroups::Layout>) -> Result<Vec<CgroupMount>> {
    use berth_cgroups::Layout;
    let v1 = |hs: &[berth_cgroups::V1Hierarchy]| -> Vec<CgroupMount> {
        hs.iter()
            .map(|h| CgroupMount {
                mountpoint: h.mount_point.clone(),
                fstype: "cgroup".into(),
                subsystems: h.controllers.join(","),
            })
            .collect()
    };
    let unified = |p: &Path| CgroupMount {
        mountpoint: p.to_path_buf(),
        fstype: "cgroup2".into(),
        subsystems: String::new(),
    };
    Ok(match layout {
        Some(Layout::V1 { hierarchies }) => v1(hierarchies),
        Some(Layout::V2 { mount_point }) => vec![unified(mount_point)],
        Some(Layout::Hybrid {
            hierarchies,
            unified: u,
        }) => {
            let mut all = v1(hierarchies);
            all.push(unified(u));
            all
        }
        None => parse_cgroup_mounts(&crate::procfs::mountinfo()?),
    })
}

fn parse_cgroup_mounts(mountinfo: &str) -> Vec<CgroupMount> {
    const NOT_SUBSYSTEMS: [&str; 6] = [
        "rw",
        "ro",
        "xattr",
        "clone_children",
        "noprefix",
        "nsdelegate",
    ];
    let mut out = Vec::new();
    for line in mountinfo.lines() {
        let Some((left, right)) = line.split_once(" - ") else {
            continue;
        };
        let mut r = right.split(' ');
        let (Some(fstype), Some(_src), Some(superopts)) = (r.next(), r.next(), r.next()) else {
            continue;
        };
        if fstype != "cgroup" && fstype != "cgroup2" {
            continue;
        }
        let Some(mp) = left.split(' ').nth(4) else {
            continue;
        };
        if !mp.starts_with("/sys/fs/cgroup") {
            continue;
        }
        let subsystems = superopts
            .split(',')
            .filter(|o| !NOT_SUBSYSTEMS.contains(o) && !o.starts_with("release_agent="))
            .collect::<Vec<_>>()
            .join(",");
        out.push(CgroupMount {
            mountpoint: PathBuf::from(mp),
            fstype: fstype.to_string(),
            subsystems,
        });
    }
    out
}

fn mount_cgroup(ctx: &Context, m: &Mount, opts: &MountOptions) -> Result<()> {
    let dest = m.destination();
    let hosts = host_cgroup_mounts(ctx.cgroup_layout)?;
    let flags = opts.flags - (MsFlags::MS_BIND | MsFlags::MS_REC);
    let unified_only = hosts.len() == 1 && hosts[0].fstype == "cgroup2";
    if unified_only {
        return mount_hierarchy(ctx, &hosts[0], dest, flags);
    }
    // v1 or hybrid: a tmpfs holding one mount per hierarchy, as on the host.
    let dir = ctx.root.mkdir_all(dest, 0o755)?;
    mount(
        Some("tmpfs"),
        fd_path(&dir).as_str(),
        Some("tmpfs"),
        flags - MsFlags::MS_RDONLY,
        Some("mode=755"),
    )
    .sys(|| format!("mounting tmpfs on {}", dest.display()))?;
    for h in &hosts {
        let Some(name) = h
            .mountpoint
            .strip_prefix("/sys/fs/cgroup")
            .ok()
            .and_then(|n| {
                let n = n.to_str()?;
                (!n.is_empty() && !n.contains('/')).then(|| n.to_string())
            })
        else {
            continue;
        };
        let sub = dest.join(&name);
        mount_hierarchy(ctx, h, &sub, flags)?;
        // cpu,cpuacct comounted: /sys/fs/cgroup/cpu -> cpu,cpuacct as on the host.
        if name.contains(',') {
            for part in name.split(',') {
                let (dirfd, link) = ctx.root.parent_of(&dest.join(part))?;
                match nix::unistd::symlinkat(name.as_str(), dirfd, &link) {
                    Ok(()) | Err(nix::errno::Errno::EEXIST) => {}
                    Err(e) => {
                        return Err(e).sys(|| format!("linking {}", dest.join(part).display()))
                    }
                }
            }
        }
    }
    if opts.flags.contains(MsFlags::MS_RDONLY) {
        let fd = ctx.root.mkdir_all(dest, 0o755)?;
        mount(
            none(),
            fd_path(&fd).as_str(),
            none(),
            flags | MsFlags::MS_REMOUNT,
            Some("mode=755"),
        )
        .sys(|| format!("remounting {} read-only", dest.display()))?;
    }
    Ok(())
}

fn mount_hierarchy(ctx: &Context, h: &CgroupMount, dest: &Path, flags: MsFlags) -> Result<()> {
    let target = ctx.root.mkdir_all(dest, 0o755)?;
    if ctx.new_cgroupns {
        let (typ, data) = if h.fstype == "cgroup2" {
            ("cgroup2", None)
        } else {
            ("cgroup", Some(h.subsystems.as_str()))
        };
        return mount(Some(typ), fd_path(&target).as_str(), Some(typ), flags, data)
            .sys(|| format!("mounting {typ} on {}", dest.display()));
    }
    // Without a cgroup namespace, show the container its own cgroup only.
    let own = ctx
        .cgroup_path
        .map(|p| h.mountpoint.join(relative(p)))
        .filter(|p| p.is_dir());
    let source = own.unwrap_or_else(|| h.mountpoint.clone());
    mount(
        Some(&source),
        fd_path(&target).as_str(),
        none(),
        MsFlags::MS_BIND | MsFlags::MS_REC,
        none(),
    )
    .sys(|| format!("bind-mounting {} on {}", source.display(), dest.display()))?;
    if !flags.is_empty() {
        remount(ctx, dest, flags)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hybrid_mountinfo() {
        let text = "\
30 24 0:26 / /sys/fs/cgroup ro,nosuid,nodev,noexec shared:4 - tmpfs tmpfs ro,mode=755
31 30 0:27 / /sys/fs/cgroup/unified rw,nosuid,nodev,noexec,relatime shared:5 - cgroup2 cgroup2 rw,nsdelegate
32 30 0:28 / /sys/fs/cgroup/systemd rw,nosuid shared:6 - cgroup cgroup rw,xattr,name=systemd
35 30 0:31 / /sys/fs/cgroup/cpu,cpuacct rw,nosuid shared:9 - cgroup cgroup rw,cpu,cpuacct
36 30 0:32 / /sys/fs/cgroup/memory rw,nosuid shared:10 - cgroup cgroup rw,memory
";
        let m = parse_cgroup_mounts(text);
        assert_eq!(m.len(), 4);
        assert_eq!(m[0].fstype, "cgroup2");
        assert_eq!(m[1].subsystems, "name=systemd");
        assert_eq!(m[2].subsystems, "cpu,cpuacct");
        assert_eq!(m[3].mountpoint, PathBuf::from("/sys/fs/cgroup/memory"));
    }
}
