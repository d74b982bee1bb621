//! The child side of `exec`: joins the container's cgroups and namespaces, then becomes the
//! requested process exactly as the container's init did (limits, identity, capabilities,
//! seccomp, no inherited descriptors).

use super::channel::{Channel, Tag};
use super::finalize;
use crate::error::{Result, RuntimeError, SysContext};
use crate::namespaces;
use crate::rootfs::Root;
use crate::security::capabilities::Sets;
use crate::security::seccomp::Filter;
use crate::sys;
use crate::tty;
use nix::sys::signal::Signal;
use oci_spec::runtime::{LinuxNamespaceType, PosixRlimit, Process};
use std::collections::HashMap;
use std::os::fd::OwnedFd;
use std::path::Path;

pub struct ExecArgs<'a> {
    pub id: &'a str,
    pub process: &'a Process,
    /// The init's namespaces; pid and time were entered by the runtime for the fork.
    pub namespaces: &'a [(LinuxNamespaceType, OwnedFd)],
    pub cgroup: Option<&'a dyn berth_cgroups::CgroupManager>,
    pub in_unified: bool,
    pub channel: &'a Channel,
    pub console_socket: Option<(&'a OwnedFd, &'a Path)>,
    pub preserve_fds: i32,
    pub caps: Option<&'a Sets>,
    pub seccomp: Option<Filter>,
    pub rlimits: &'a [PosixRlimit],
    pub userns: bool,
    pub bundle: &'a Path,
    pub annotations: &'a HashMap<String, String>,
    pub init_pid: i32,
    /// Join the user namespace, then the pid and time namespaces, and fork once more (the
    /// runtime could not enter them for us without root).
    pub inner_fork: bool,
}

pub fn run(a: ExecArgs) -> ! {
    let channel = a.channel;
    let err = match setup(a) {
        Ok(never) => match never {},
        Err(e) => e,
    };
    let msg = match err {
        RuntimeError::Init(m) => m,
        e => e.to_string(),
    };
    let _ = channel.send(Tag::Error, msg.as_bytes());
    std::process::exit(127)
}

fn setup(a: ExecArgs) -> Result<std::convert::Infallible> {
    sys::reset_signals().sys(|| "sigprocmask".into())?;
    // Not dumpable until execve: see the init (CVE-2019-5736).
    nix::sys::prctl::set_dumpable(false).sys(|| "PR_SET_DUMPABLE".into())?;
    nix::sys::prctl::set_pdeathsig(Signal::SIGKILL).sys(|| "PR_SET_PDEATHSIG".into())?;
    // Joining the cgroups from inside, while the host's cgroupfs is still in view and we
    // are still the host's root (see CgroupManager::join_self).
    if let Some(cg) = a.cgroup {
        cg.join_self(a.in_unified)?;
    }
    if a.inner_fork {
        for (t, fd) in a
            .namespaces
            .iter()
            .filter(|(t, _)| *t == LinuxNamespaceType::User)
        {
            namespaces::join(*t, fd)?;
        }
        for (t, fd) in a.namespaces.iter() {
            if matches!(t, LinuxNamespaceType::Pid | LinuxNamespaceType::Time) {
                namespaces::join(*t, fd)?;
            }
        }
        match sys::clone_process(0).sys(|| "fork into the pid namespace".into())? {
            sys::Forked::Child => {}
            sys::Forked::Parent(pid) => {
                let _ = a
                    .channel
                    .send(Tag::InitPid, pid.as_raw().to_string().as_bytes());
                std::process::exit(0)
            }
        }
    }
    let host_pid = super::init::own_host_pid();
    let mut ordered: Vec<&(LinuxNamespaceType, OwnedFd)> = a
        .namespaces
        .iter()
        .filter(|(t, _)| !matches!(t, LinuxNamespaceType::Pid | LinuxNamespaceType::Time))
        .filter(|(t, _)| !(a.inner_fork && *t == LinuxNamespaceType::User))
        .collect();
    // The user namespace first (it grants the rights to join the others), mount last.
    ordered.sort_by_key(|(t, _)| match t {
        LinuxNamespaceType::User => 0,
        LinuxNamespaceType::Mount => 2,
        _ => 1,
    });
    for (t, fd) in ordered {
        namespaces::join(*t, fd)?;
    }
    let process = a.process;
    let pty = if process.terminal() == Some(true) {
        let root = Root::open(Path::new("/"))?;
        // The program may ask for its size first thing, and the runtime's copy of the
        // size reaches the pty only after we are running: size it here, from the
        // process's consoleSize or, in the foreground, the terminal we were started on.
        let size = process
            .console_size()
            .as_ref()
            .map(|b| (b.height() as u16, b.width() as u16))
            .or_else(|| {
                a.console_socket
                    .is_none()
                    .then(super::foreground::terminal_size)
                    .flatten()
            });
        let pty = tty::allocate(&root, size)?;
        tty::hand_over(&pty.master, a.console_socket, a.channel)?;
        Some(pty.slave)
    } else {
        None
    };
    finalize::enter_cwd(process.cwd())?;
    let env = finalize::with_home(
        process.env().clone().unwrap_or_default(),
        process.user().uid(),
    );
    let args = process.args().as_deref().unwrap_or_default();
    let program = finalize::find_executable(&args[0], &env)?;
    if let Some(slave) = &pty {
        tty::become_console(slave)?;
    }
    drop(pty);
    if let Some(adj) = process.oom_score_adj() {
        std::fs::write("/proc/self/oom_score_adj", adj.to_string()).map_err(|e| {
            RuntimeError::Io {
                path: "/proc/self/oom_score_adj".into(),
                source: e,
            }
        })?;
    }
    finalize::set_rlimits(a.rlimits)?;
    sys::cloexec_from(3 + a.preserve_fds).sys(|| "close_range".into())?;
    let no_new_privs = process.no_new_privileges() == Some(true);
    let mut seccomp = a.seccomp;
    let load = |f: Filter| -> Result<()> {
        let state = crate::container::state_json(
            a.id,
            "running",
            Some(a.init_pid),
            a.bundle,
            a.annotations,
        )?;
        f.load(
            &serde_json::from_slice(&state).unwrap_or_default(),
            host_pid,
        )
    };
    if !no_new_privs {
        if let Some(f) = seccomp.take() {
            load(f)?;
        }
    }
    let setgroups_allowed = !a.userns
        || std::fs::read_to_string("/proc/self/setgroups")
            .map(|s| s.trim() == "allow")
            .unwrap_or(true);
    finalize::become_user(process, a.caps, setgroups_allowed)?;
    nix::sys::stat::umask(nix::sys::stat::Mode::from_bits_truncate(
        process.user().umask().unwrap_or(0o022),
    ));
    if no_new_privs {
        nix::sys::prctl::set_no_new_privs().sys(|| "PR_SET_NO_NEW_PRIVS".into())?;
        if let Some(f) = seccomp.take() {
            load(f)?;
        }
    }
    // Detached, nobody waits for us any more: our life no longer depends on the runtime's.
    nix::sys::prctl::set_pdeathsig(None::<Signal>).sys(|| "PR_SET_PDEATHSIG".into())?;
    Err(finalize::exec(&program, args, &env))
}
