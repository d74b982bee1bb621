//! Which namespaces a container gets: created fresh by clone/unshare, or joined by path.

use crate::error::{Context, Result, RuntimeError, SysContext};
use nix::sched::CloneFlags;
use oci_spec::runtime::{Linux, LinuxIdMapping, LinuxNamespaceType};
use std::fs::File;
use std::io::Write;
use std::os::fd::OwnedFd;

pub fn clone_flag(t: LinuxNamespaceType) -> CloneFlags {
    match t {
        LinuxNamespaceType::Mount => CloneFlags::CLONE_NEWNS,
        LinuxNamespaceType::Cgroup => CloneFlags::CLONE_NEWCGROUP,
        LinuxNamespaceType::Uts => CloneFlags::CLONE_NEWUTS,
        LinuxNamespaceType::Ipc => CloneFlags::CLONE_NEWIPC,
        LinuxNamespaceType::User => CloneFlags::CLONE_NEWUSER,
        LinuxNamespaceType::Pid => CloneFlags::CLONE_NEWPID,
        LinuxNamespaceType::Network => CloneFlags::CLONE_NEWNET,
        // CLONE_NEWTIME shares its bit with CSIGNAL, so it only works with unshare/setns.
        LinuxNamespaceType::Time => CloneFlags::from_bits_retain(libc::CLONE_NEWTIME),
    }
}

/// The namespace work of one container start, split by who does it:
/// the runtime process (pid and time: both only affect children), the clone call, or the
/// container's init (everything joined by path, and the cgroup namespace, which must be
/// made after the init was moved into its cgroup).
pub struct Plan {
    /// Namespaces created by the clone call itself.
    pub clone_flags: CloneFlags,
    /// Namespaces the init creates with unshare after joining a user namespace by path
    /// (a namespace is owned by the user namespace of its creator at creation time).
    pub unshare_after_userns: CloneFlags,
    pub new_cgroup: bool,
    pub new_time: bool,
    pub new_pid: bool,
    pub new_user: bool,
    /// Whether the container has a mount namespace (new or joined). Without one it shares
    /// the runtime's, where we must not mount anything: it only gets a chroot.
    pub mount_ns: bool,
    pub join_user: Option<OwnedFd>,
    pub join_pid: Option<OwnedFd>,
    pub join_time: Option<OwnedFd>,
    /// Joined by the init, in this order, after the user namespace.
    pub join_in_init: Vec<(LinuxNamespaceType, OwnedFd)>,
}

impl Plan {
    pub fn new(linux: &Linux) -> Result<Plan> {
        let mut plan = Plan {
            clone_flags: CloneFlags::empty(),
            unshare_after_userns: CloneFlags::empty(),
            new_cgroup: false,
            new_time: false,
            new_pid: false,
            new_user: false,
            mount_ns: false,
            join_user: None,
            join_pid: None,
            join_time: None,
            join_in_init: Vec::new(),
        };
        let mut new_flags = CloneFlags::empty();
        for ns in linux.namespaces().as_deref().unwrap_or_default() {
            let t = ns.typ();
            if t == LinuxNamespaceType::Mount {
                plan.mount_ns = true;
            }
            match ns.path() {
                Some(path) => {
                    let fd: OwnedFd = File::open(path).at(path)?.into();
                    match t {
                        LinuxNamespaceType::User => plan.join_user = Some(fd),
                        LinuxNamespaceType::Pid => plan.join_pid = Some(fd),
                        LinuxNamespaceType::Time => plan.join_time = Some(fd),
                        _ => plan.join_in_init.push((t, fd)),
                    }
                }
                None => match t {
                    LinuxNamespaceType::Cgroup => plan.new_cgroup = true,
                    LinuxNamespaceType::Time => plan.new_time = true,
                    _ => {
                        if t == LinuxNamespaceType::Pid {
                            plan.new_pid = true;
                        }
                        if t == LinuxNamespaceType::User {
                            plan.new_user = true;
                        }
                        new_flags |= clone_flag(t);
                    }
                },
            }
        }
        // The mount namespace is joined last so the others are still reachable by path.
        plan.join_in_init
            .sort_by_key(|(t, _)| *t == LinuxNamespaceType::Mount);
        if plan.join_user.is_some() {
            plan.unshare_after_userns = new_flags;
        } else {
            plan.clone_flags = new_flags;
        }
        Ok(plan)
    }
}

pub fn join(t: LinuxNamespaceType, fd: &OwnedFd) -> Result<()> {
    nix::sched::setns(fd, clone_flag(t)).sys(|| format!("joining {t} namespace"))
}

/// Writes the id maps of a new user namespace from outside it. As root the kernel accepts
/// any mapping; the setgroups file must say deny only for unprivileged writers.
pub fn write_id_maps(
    pid: nix::unistd::Pid,
    uid_maps: &[LinuxIdMapping],
    gid_maps: &[LinuxIdMapping],
) -> Result<()> {
    write_map(pid, "uid_map", uid_maps)?;
    write_map(pid, "gid_map", gid_maps)
}

fn write_map(pid: nix::unistd::Pid, file: &str, maps: &[LinuxIdMapping]) -> Result<()> {
    let text: String = maps
        .iter()
        .map(|m| format!("{} {} {}\n", m.container_id(), m.host_id(), m.size()))
        .collect();
    let path = format!("/proc/{pid}/{file}");
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .open(&path)
        .at(&path)?;
    f.write_all(text.as_bytes()).map_err(|e| {
        RuntimeError::InvalidConfig(format!(
            "{file} {:?} was refused by the kernel: {e}",
            text.trim_end()
        ))
    })
}

/// Offsets must be written after the time namespace is made and before any process is in it.
pub fn write_time_offsets(linux: &Linux) -> Result<()> {
    let Some(offsets) = linux.time_offsets() else {
        return Ok(());
    };
    let text: String = offsets
        .iter()
        .map(|(clock, o)| {
            format!(
                "{clock} {} {}\n",
                o.secs().unwrap_or(0),
                o.nanosecs().unwrap_or(0)
            )
        })
        .collect();
    if text.is_empty() {
        return Ok(());
    }
    std::fs::write("/proc/self/timens_offsets", text.as_bytes()).at("/proc/self/timens_offsets")
}
