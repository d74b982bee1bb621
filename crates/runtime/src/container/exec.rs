//! `exec`: another process in a running container — in all its namespaces and cgroups,
//! with its rootfs, capabilities, seccomp filter and limits.

use crate::cgroup;
use crate::error::{Context, Result, RuntimeError, SysContext};
use crate::namespaces::clone_flag;
use crate::process::channel::{self, Tag};
use crate::process::exec::{self, ExecArgs};
use crate::process::foreground::{copy_window_size, wait, Signals};
use crate::state::{StateRoot, Status};
use crate::sys::{self, Forked};
use oci_spec::runtime::{LinuxNamespaceType, Process};
use std::os::fd::{AsFd, OwnedFd};
use std::path::Path;

/// What the caller asks of `exec`, over the container's own process config.
#[derive(Default)]
pub struct ExecOptions<'a> {
    pub id: &'a str,
    /// A whole runtime-spec process (`--process FILE`), instead of the container's.
    pub process: Option<Process>,
    pub args: Vec<String>,
    pub tty: bool,
    pub console_socket: Option<&'a Path>,
    pub detach: bool,
    pub pid_file: Option<&'a Path>,
    pub cwd: Option<&'a Path>,
    pub env: Vec<String>,
    pub user: Option<(u32, Option<u32>)>,
    pub additional_gids: Vec<u32>,
    pub caps: Vec<String>,
    pub no_new_privs: bool,
    pub preserve_fds: i32,
}

/// The process to run: `--process`, or the container's with the command-line overrides.
fn build_process(o: &ExecOptions, base: &Process) -> Result<Process> {
    let mut p = match &o.process {
        Some(p) => p.clone(),
        None => {
            if o.args.is_empty() {
                return Err(RuntimeError::InvalidConfig(
                    "exec needs a command (or --process)".into(),
                ));
            }
            let mut p = base.clone();
            p.set_args(Some(o.args.clone()));
            p.set_terminal(Some(o.tty));
            p.set_console_size(None);
            p
        }
    };
    if o.process.is_some() && o.tty {
        p.set_terminal(Some(true));
    }
    if let Some(cwd) = o.cwd {
        p.set_cwd(cwd.to_path_buf());
    }
    if !o.env.is_empty() {
        let mut env = p.env().clone().unwrap_or_default();
        for kv in &o.env {
            let key = kv.split('=').next().unwrap_or(kv);
            env.retain(|e| e.split('=').next() != Some(key));
            env.push(kv.clone());
        }
        p.set_env(Some(env));
    }
    if let Some((uid, gid)) = o.user {
        let user = p.user_mut();
        user.set_uid(uid);
        if let Some(g) = gid {
            user.set_gid(g);
        }
    }
    if !o.additional_gids.is_empty() {
        p.user_mut()
            .set_additional_gids(Some(o.additional_gids.clone()));
    }
    if o.no_new_privs {
        p.set_no_new_privileges(Some(true));
    }
    if !o.caps.is_empty() {
        let mut caps = p.capabilities().clone().unwrap_or_default();
        for name in &o.caps {
            let bare = name.trim_start_matches("CAP_");
            let cap: oci_spec::runtime::Capability = bare
                .parse()
                .map_err(|_| RuntimeError::InvalidConfig(format!("unknown capability {name}")))?;
            let add = |set: &Option<oci_spec::runtime::Capabilities>| {
                let mut set = set.clone().unwrap_or_default();
                set.insert(cap);
                Some(set)
            };
            caps.set_bounding(add(caps.bounding()));
            caps.set_effective(add(caps.effective()));
            caps.set_permitted(add(caps.permitted()));
        }
        p.set_capabilities(Some(caps));
    }
    if p.args().as_ref().is_none_or(|a| a.is_empty()) {
        return Err(RuntimeError::InvalidConfig("process.args is empty".into()));
    }
    Ok(p)
}

pub fn exec(root: &StateRoot, o: &ExecOptions) -> Result<i32> {
    // See create: the forked child stays a non-dumpable copy of us until its execve.
    nix::sys::prctl::set_dumpable(false).sys(|| "PR_SET_DUMPABLE".into())?;
    let (locked, state) = root.open(o.id)?;
    if !matches!(state.status, Status::Running | Status::Created) {
        return Err(RuntimeError::WrongState {
            id: o.id.to_string(),
            status: state.status.as_str(),
            action: "exec",
            wanted: "running",
        });
    }
    let spec = super::state::stored_spec(&locked, o.id)?;
    drop(locked);
    let base = spec
        .process()
        .clone()
        .ok_or_else(|| RuntimeError::InvalidConfig("the container has no process".into()))?;
    let process = build_process(o, &base)?;
    if process.terminal() == Some(true) && o.detach && o.console_socket.is_none() {
        return Err(RuntimeError::InvalidConfig(
            "a detached exec with a terminal needs --console-socket".into(),
        ));
    }
    if process.terminal() != Some(true) && o.console_socket.is_some() {
        return Err(RuntimeError::InvalidConfig(
            "--console-socket was given without a terminal (-t)".into(),
        ));
    }
    let linux = spec
        .linux()
        .clone()
        .ok_or_else(|| RuntimeError::InvalidConfig("linux is missing".into()))?;
    let seccomp = linux
        .seccomp()
        .as_ref()
        .map(crate::security::seccomp::Filter::prepare)
        .transpose()?;
    let caps = process
        .capabilities()
        .as_ref()
        .map(crate::security::capabilities::Sets::parse)
        .transpose()?;

    // The container's namespaces, as /proc/<init>/ns/* descriptors taken while the
    // init's start time still matches (so a recycled pid can't be joined).
    let pid = state.pid;
    let mut namespaces = Vec::new();
    for ns in linux.namespaces().iter().flatten() {
        let t = ns.typ();
        let name = match t {
            LinuxNamespaceType::Mount => "mnt",
            LinuxNamespaceType::Network => "net",
            LinuxNamespaceType::Cgroup => "cgroup",
            LinuxNamespaceType::Uts => "uts",
            LinuxNamespaceType::Ipc => "ipc",
            LinuxNamespaceType::User => "user",
            LinuxNamespaceType::Pid => "pid",
            LinuxNamespaceType::Time => "time",
        };
        let path = format!("/proc/{pid}/ns/{name}");
        let fd: OwnedFd = std::fs::File::open(&path).at(&path)?.into();
        namespaces.push((t, fd));
    }
    if !crate::state::process_alive(pid, state.pid_start) {
        return Err(RuntimeError::WrongState {
            id: o.id.to_string(),
            status: "stopped",
            action: "exec",
            wanted: "running",
        });
    }
    let manager = match &state.cgroup {
        Some(c) => Some(cgroup::open(c)?),
        None => None,
    };
    let joins_userns = namespaces
        .iter()
        .any(|(t, _)| *t == LinuxNamespaceType::User);
    let unified = cgroup::unified_dir_fd(manager.as_deref());
    let console_socket = match o.console_socket {
        Some(path) => Some((crate::tty::connect_console_socket(path)?, path)),
        None => None,
    };
    let signals = if o.detach {
        None
    } else {
        Some(Signals::block()?)
    };
    let (parent_end, child_end) = channel::pair()?;

    // pid and time namespaces apply to children: enter them for the fork only. Without
    // root we may not (that needs CAP_SYS_ADMIN in our own user namespace): the child then
    // joins the container's user namespace first and forks once more into them.
    let inner_fork = joins_userns && !nix::unistd::geteuid().is_root();
    if inner_fork {
        nix::sys::prctl::set_child_subreaper(true).sys(|| "PR_SET_CHILD_SUBREAPER".into())?;
    }
    let mut restore = Vec::new();
    for (t, fd) in namespaces.iter().filter(|_| !inner_fork) {
        if matches!(t, LinuxNamespaceType::Pid | LinuxNamespaceType::Time) {
            let own = if *t == LinuxNamespaceType::Pid {
                "/proc/self/ns/pid_for_children"
            } else {
                "/proc/self/ns/time_for_children"
            };
            let saved: OwnedFd = std::fs::File::open(own).at(own)?.into();
            nix::sched::setns(fd, clone_flag(*t)).sys(|| format!("joining {t} namespace"))?;
            restore.push((*t, saved));
        }
    }
    let (forked, in_unified) = sys::fork_into_cgroup(0, unified.as_ref().map(|f| f.as_fd()));
    let forked = forked.sys(|| "fork".into());
    if !matches!(forked, Ok(Forked::Child)) {
        for (t, fd) in &restore {
            nix::sched::setns(fd, clone_flag(*t)).sys(|| format!("leaving {t} namespace"))?;
        }
    }
    let child = match forked? {
        Forked::Child => {
            drop(parent_end);
            exec::run(ExecArgs {
                id: o.id,
                process: &process,
                namespaces: &namespaces,
                cgroup: manager.as_deref(),
                in_unified,
                channel: &child_end,
                console_socket: console_socket.as_ref().map(|(fd, p)| (fd, *p)),
                preserve_fds: o.preserve_fds,
                caps: caps.as_ref(),
                seccomp,
                rlimits: process.rlimits().as_deref().unwrap_or_default(),
                userns: joins_userns,
                bundle: &state.bundle,
                annotations: &state.annotations,
                init_pid: pid,
                inner_fork,
            })
        }
        Forked::Parent(pid) => pid,
    };
    drop(child_end);
    drop(console_socket);
    let child = if inner_fork {
        // The first child forked the real one into the pid namespace and exits; we are the
        // subreaper that adopts the real one.
        let msg = parent_end.expect(Tag::InitPid).map_err(|e| match e {
            RuntimeError::Init(m) => RuntimeError::Process(m),
            e => e,
        })?;
        let _ = nix::sys::wait::waitpid(child, None);
        let raw: i32 = String::from_utf8_lossy(&msg.payload)
            .parse()
            .map_err(|_| RuntimeError::Process("bad pid from the exec'd process".into()))?;
        nix::unistd::Pid::from_raw(raw)
    } else {
        child
    };

    // Until the child execs (its end of the channel is close-on-exec), it may report an
    // error or hand us the terminal.
    let mut console = None;
    loop {
        match parent_end.recv()? {
            None => break,
            Some(m) if m.tag == Tag::Console => console = m.fd,
            Some(m) if m.tag == Tag::Error => {
                let _ = nix::sys::wait::waitpid(child, None);
                return Err(RuntimeError::Process(
                    String::from_utf8_lossy(&m.payload).into_owned(),
                ));
            }
            Some(m) => {
                return Err(RuntimeError::Process(format!(
                    "unexpected {:?} from the exec'd process",
                    m.tag
                )))
            }
        }
    }
    if let Some(pid_file) = o.pid_file {
        super::create::write_pid_file(pid_file, child)?;
    }
    let Some(signals) = signals else {
        return Ok(0);
    };
    if let Some(m) = &console {
        copy_window_size(m.as_fd());
    }
    wait(child, &signals.fd, console.as_ref())
}
