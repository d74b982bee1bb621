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
    /// The runtime runs without root (euid != 0): id maps other than a single mapping of
    /// our own id go through newuidmap/newgidmap, and cgroups are best-effort.
    pub rootless: bool,
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
            rootless: !nix::unistd::geteuid().is_root(),
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
        let uids = linux.uid_mappings().as_deref().unwrap_or_default();
        let gids = linux.gid_mappings().as_deref().unwrap_or_default();
        // (spec::load already checked that maps and a new user namespace go together.)
        if plan.new_user {
            check_id_maps("uidMappings", uids)?;
            check_id_maps("gidMappings", gids)?;
            if plan.rootless {
                check_rootless_maps("uidMappings", uids, nix::unistd::geteuid().as_raw())?;
                check_rootless_maps("gidMappings", gids, nix::unistd::getegid().as_raw())?;
            }
        }
        Ok(plan)
    }
}

pub fn join(t: LinuxNamespaceType, fd: &OwnedFd) -> Result<()> {
    nix::sched::setns(fd, clone_flag(t)).sys(|| format!("joining {t} namespace"))
}

/// The kernel takes at most this many lines per map (since Linux 4.15).
const MAX_MAP_LINES: usize = 340;

/// Checks one map of a new user namespace before anything is made: the kernel refuses a
/// bad one with a bare EINVAL, after the container's init already exists.
fn check_id_maps(field: &str, maps: &[LinuxIdMapping]) -> Result<()> {
    let bad = |msg: String| Err(RuntimeError::InvalidConfig(format!("linux.{field}: {msg}")));
    if maps.len() > MAX_MAP_LINES {
        return bad(format!(
            "{} ranges; the kernel takes at most {MAX_MAP_LINES}",
            maps.len()
        ));
    }
    let end = |start: u32, size: u32| start as u64 + size as u64;
    for (i, m) in maps.iter().enumerate() {
        if m.size() == 0 {
            return bad(format!("range {i} has size 0"));
        }
        for (what, start) in [("containerID", m.container_id()), ("hostID", m.host_id())] {
            if end(start, m.size()) > u32::MAX as u64 {
                return bad(format!(
                    "range {i}: {what} {start} + size {} is past the last id {}",
                    m.size(),
                    u32::MAX - 1
                ));
            }
        }
        for (j, o) in maps.iter().enumerate().take(i) {
            let overlap =
                |a: u32, b: u32| (a as u64) < end(b, o.size()) && (b as u64) < end(a, m.size());
            if overlap(m.container_id(), o.container_id()) {
                return bad(format!(
                    "ranges {j} and {i} overlap inside the container (containerID {}+{} and {}+{})",
                    o.container_id(),
                    o.size(),
                    m.container_id(),
                    m.size()
                ));
            }
            if overlap(m.host_id(), o.host_id()) {
                return bad(format!(
                    "ranges {j} and {i} overlap on the host (hostID {}+{} and {}+{})",
                    o.host_id(),
                    o.size(),
                    m.host_id(),
                    m.size()
                ));
            }
        }
    }
    Ok(())
}

/// The one map an unprivileged process may write itself: its own id, once.
fn is_self_map(maps: &[LinuxIdMapping], own: u32) -> bool {
    matches!(maps, [m] if m.size() == 1 && m.host_id() == own)
}

/// Without root, every host id must be ours to map: our own id (a single one), or inside
/// the ranges /etc/subuid (/etc/subgid) gives us — what newuidmap (newgidmap) will check,
/// said before anything is made.
fn check_rootless_maps(field: &str, maps: &[LinuxIdMapping], own: u32) -> Result<()> {
    if maps.is_empty() || is_self_map(maps, own) {
        return Ok(());
    }
    let (tool, file) = if field == "uidMappings" {
        ("newuidmap", "/etc/subuid")
    } else {
        ("newgidmap", "/etc/subgid")
    };
    let bad = |msg: String| Err(RuntimeError::InvalidConfig(format!("linux.{field}: {msg}")));
    if find_program(tool).is_none() {
        return bad(format!(
            "without root only a single mapping of our own id ({own}) can be written directly; \
             anything else needs {tool} (package uidmap), which is not installed"
        ));
    }
    // Only when the file is there: otherwise newuidmap may still know sub-ids from NSS.
    let Ok(text) = std::fs::read_to_string(file) else {
        return Ok(());
    };
    let uid = nix::unistd::getuid().as_raw();
    let name = user_name(uid);
    let ranges: Vec<(u64, u64)> = text
        .lines()
        .filter_map(|l| {
            let mut f = l.trim().split(':');
            let (who, start, count) = (f.next()?, f.next()?, f.next()?);
            let mine = who == uid.to_string() || Some(who) == name.as_deref();
            let start: u64 = start.parse().ok()?;
            mine.then_some((start, start + count.parse::<u64>().ok()?))
        })
        .collect();
    let user = match &name {
        Some(n) => format!("{n} (uid {uid})"),
        None => format!("uid {uid}"),
    };
    for m in maps {
        let (lo, hi) = (m.host_id() as u64, m.host_id() as u64 + m.size() as u64);
        let own_id = m.size() == 1 && m.host_id() == own;
        if own_id || ranges.iter().any(|(a, b)| *a <= lo && hi <= *b) {
            continue;
        }
        let given = if ranges.is_empty() {
            "none".to_string()
        } else {
            ranges
                .iter()
                .map(|(a, b)| format!("{a}-{}", b - 1))
                .collect::<Vec<_>>()
                .join(", ")
        };
        return bad(format!(
            "hostID {}-{} is not ours to map without root: {file} gives {user} {given} \
             (and our own id {own} may be mapped once)",
            lo,
            hi - 1
        ));
    }
    Ok(())
}

fn find_program(name: &str) -> Option<std::path::PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_else(|| "/usr/sbin:/usr/bin:/sbin:/bin".into());
    std::env::split_paths(&path)
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}

/// The name /etc/passwd gives `uid` (no NSS: the binary is static).
fn user_name(uid: u32) -> Option<String> {
    let text = std::fs::read_to_string("/etc/passwd").ok()?;
    text.lines().find_map(|l| {
        let mut f = l.split(':');
        let name = f.next()?;
        (f.nth(1)? == uid.to_string()).then(|| name.to_string())
    })
}

/// Writes the id maps of a new user namespace from outside it. As root the kernel accepts
/// any mapping. Without root we may write only a single mapping of our own id (for
/// gid_map only once setgroups says deny); anything else goes through the setuid helpers
/// newuidmap/newgidmap, which check /etc/subuid and /etc/subgid. The init must be dumpable
/// for that (its /proc files are root's otherwise).
pub fn write_id_maps(
    pid: nix::unistd::Pid,
    uid_maps: &[LinuxIdMapping],
    gid_maps: &[LinuxIdMapping],
) -> Result<()> {
    let euid = nix::unistd::geteuid();
    if euid.is_root() {
        write_map(pid, "uid_map", uid_maps)?;
        return write_map(pid, "gid_map", gid_maps);
    }
    if !uid_maps.is_empty() {
        if is_self_map(uid_maps, euid.as_raw()) {
            write_map(pid, "uid_map", uid_maps)?;
        } else {
            run_id_helper("newuidmap", pid, uid_maps)?;
        }
    }
    if !gid_maps.is_empty() {
        if is_self_map(gid_maps, nix::unistd::getegid().as_raw()) {
            let path = format!("/proc/{pid}/setgroups");
            std::fs::write(&path, "deny").at(&path)?;
            write_map(pid, "gid_map", gid_maps)?;
        } else {
            run_id_helper("newgidmap", pid, gid_maps)?;
        }
    }
    Ok(())
}

fn run_id_helper(tool: &str, pid: nix::unistd::Pid, maps: &[LinuxIdMapping]) -> Result<()> {
    let mut cmd = std::process::Command::new(tool);
    cmd.arg(pid.to_string());
    for m in maps {
        cmd.args([
            m.container_id().to_string(),
            m.host_id().to_string(),
            m.size().to_string(),
        ]);
    }
    cmd.stdin(std::process::Stdio::null());
    let out = cmd.output().map_err(|e| {
        RuntimeError::InvalidConfig(format!(
            "running {tool} (package uidmap) for a user namespace without root: {e}"
        ))
    })?;
    if !out.status.success() {
        let err = String::from_utf8_lossy(&out.stderr);
        let err = err.trim().replace('\n', "; ");
        return Err(RuntimeError::InvalidConfig(format!(
            "{tool} refused the mapping ({}): {err}",
            out.status
        )));
    }
    Ok(())
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
