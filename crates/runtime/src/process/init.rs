//! The container's init: runs in the cloned child, sets the container up step by step in
//! lockstep with the runtime process, waits for `start`, then becomes the user's program.

use super::channel::{Channel, Tag};
use super::finalize;
use crate::error::{Result, RuntimeError, SysContext};
use crate::hooks;
use crate::namespaces::{self, Plan};
use crate::procfs::Proc;
use crate::rootfs;
use crate::security::capabilities::Sets;
use crate::security::seccomp::Filter;
use crate::spec::Bundle;
use crate::sys;
use crate::tty;
use nix::sched::CloneFlags;
use nix::sys::signal::Signal;
use nix::unistd::{Gid, Uid};
use std::os::fd::OwnedFd;
use std::path::Path;

/// Everything the init needs, borrowed from the runtime process's memory (the init runs on
/// a copy of it after clone).
pub struct InitArgs<'a> {
    pub id: &'a str,
    pub bundle: &'a Bundle,
    pub plan: &'a Plan,
    pub channel: &'a Channel,
    /// The exec fifo, opened read-write: `start` writes one byte into it.
    pub exec_fifo: &'a OwnedFd,
    pub console_socket: Option<(&'a OwnedFd, &'a Path)>,
    pub preserve_fds: i32,
    pub no_pivot: bool,
    pub no_new_keyring: bool,
    pub cgroup_path: Option<&'a Path>,
    pub cgroup_layout: Option<&'a berth_cgroups::Layout>,
    /// Set when the init moves itself into its cgroups (not in a user namespace).
    pub cgroup: Option<&'a dyn berth_cgroups::CgroupManager>,
    /// Join `cgroup` only after `CgroupReady` (the runtime creates its directories while we
    /// mount), instead of first thing.
    pub join_late: bool,
    /// Whether clone already put us in the unified cgroup.
    pub in_unified: bool,
    /// The container's state directory, where a failure after `start` is reported.
    pub state_dir: &'a Path,
}

/// Never returns: either execs the user's program or exits after reporting the error to
/// the runtime (or, once `create` has returned, to stderr).
pub fn run(args: InitArgs) -> ! {
    let started = std::cell::Cell::new(None);
    let err = match setup(&args, &started) {
        Ok(never) => match never {},
        Err(e) => e,
    };
    let msg = match err {
        RuntimeError::Init(m) => m,
        e => e.to_string(),
    };
    match started.take() {
        // Before `create` returned: it reports our error (if it is gone, so is the caller
        // who would have read it).
        None => {
            let _ = args.channel.send(Tag::Error, msg.as_bytes());
        }
        // After `start`: leave the error where `start` looks for it, and on our stderr.
        Some(state_dir) => {
            report_start_error(&state_dir, &msg);
            eprintln!("berth-runtime: container {}: {msg}", args.id);
        }
    }
    std::process::exit(127)
}

/// `start` waits for the exec fifo to close (at our execve or our exit); a file in the
/// state directory, written through the descriptor kept from before pivot_root, tells it
/// which of the two happened.
fn report_start_error(state_dir: &OwnedFd, msg: &str) {
    let how = nix::fcntl::OpenHow::new()
        .flags(
            nix::fcntl::OFlag::O_WRONLY | nix::fcntl::OFlag::O_CREAT | nix::fcntl::OFlag::O_CLOEXEC,
        )
        .mode(nix::sys::stat::Mode::from_bits_truncate(0o600))
        .resolve(
            nix::fcntl::ResolveFlag::RESOLVE_BENEATH | nix::fcntl::ResolveFlag::RESOLVE_NO_SYMLINKS,
        );
    if let Ok(fd) = nix::fcntl::openat2(state_dir, crate::state::START_ERROR, how) {
        let _ = nix::unistd::write(&fd, msg.as_bytes());
    }
}

fn setup(
    a: &InitArgs,
    started: &std::cell::Cell<Option<OwnedFd>>,
) -> Result<std::convert::Infallible> {
    let spec = &a.bundle.spec;
    let process = spec
        .process()
        .as_ref()
        .ok_or_else(|| RuntimeError::InvalidConfig("process is missing".into()))?;
    let linux = spec
        .linux()
        .as_ref()
        .ok_or_else(|| RuntimeError::InvalidConfig("linux is missing".into()))?;
    sys::reset_signals().sys(|| "sigprocmask".into())?;
    // Until execve this process is a copy of the runtime: not dumpable, so no process in
    // the container can open /proc/<pid>/exe (the runtime binary) or our descriptors
    // (CVE-2019-5736). execve of the user's program makes it dumpable again. Without root
    // the runtime needs us dumpable until it has written our id maps (see create).
    let dumpable_until_mapped = a.plan.rootless && a.plan.new_user;
    if !dumpable_until_mapped {
        nix::sys::prctl::set_dumpable(false).sys(|| "PR_SET_DUMPABLE".into())?;
    }
    // If the runtime dies before the container is created, so do we.
    nix::sys::prctl::set_pdeathsig(Signal::SIGKILL).sys(|| "PR_SET_PDEATHSIG".into())?;
    nix::sys::stat::umask(nix::sys::stat::Mode::empty());

    let plan = a.plan;
    if plan.new_user {
        a.channel.expect(Tag::Mapped)?;
        if dumpable_until_mapped {
            nix::sys::prctl::set_dumpable(false).sys(|| "PR_SET_DUMPABLE".into())?;
        }
        become_ns_root();
    }
    if let Some(userns) = &plan.join_user {
        nix::sched::setns(userns, CloneFlags::CLONE_NEWUSER)
            .sys(|| "joining user namespace".into())?;
        become_ns_root();
        let deferred = plan.unshare_after_userns;
        nix::sched::unshare(deferred - CloneFlags::CLONE_NEWPID)
            .sys(|| "creating namespaces".into())?;
        if deferred.contains(CloneFlags::CLONE_NEWPID) {
            second_fork(a)?;
        }
    }
    // Before joining namespaces by path: the cgroup paths are the host's as we see them now.
    if let Some(cg) = a.cgroup.filter(|_| !a.join_late) {
        cg.join_self(a.in_unified)?;
    }
    for (t, fd) in &plan.join_in_init {
        namespaces::join(*t, fd)?;
    }
    if let Some(h) = spec.hostname().as_deref().filter(|h| !h.is_empty()) {
        nix::unistd::sethostname(h).sys(|| format!("sethostname {h:?}"))?;
    }
    if let Some(d) = spec.domainname().as_deref().filter(|d| !d.is_empty()) {
        sys::set_domainname(d).sys(|| format!("setdomainname {d:?}"))?;
    }
    // Opened while the host's paths are in view; used only if we fail after `start`.
    let state_dir = nix::fcntl::open(
        a.state_dir,
        nix::fcntl::OFlag::O_PATH | nix::fcntl::OFlag::O_DIRECTORY | nix::fcntl::OFlag::O_CLOEXEC,
        nix::sys::stat::Mode::empty(),
    )
    .sys(|| format!("opening {}", a.state_dir.display()))?;
    let proc = Proc::open()?;
    // In a user namespace the runtime set it for us before the clone (see create).
    let in_userns = plan.new_user || plan.join_user.is_some();
    if let Some(adj) = process.oom_score_adj().filter(|_| !in_userns) {
        proc.write("self/oom_score_adj", &adj.to_string())?;
    }
    if !a.no_new_keyring {
        let name = std::ffi::CString::new(format!("_ses.{}", a.id))
            .map_err(|_| RuntimeError::InvalidId(a.id.into()))?;
        match sys::join_session_keyring(&name) {
            // No keyrings in this kernel, or not allowed in this user namespace: runc too
            // carries on without a private keyring.
            Ok(()) | Err(nix::errno::Errno::ENOSYS) => {}
            Err(nix::errno::Errno::EACCES | nix::errno::Errno::EPERM)
                if plan.new_user || plan.join_user.is_some() => {}
            Err(e) => return Err(e).sys(|| "joining a session keyring".into()),
        }
    }

    // The runtime moves us into our cgroup while we mount: wait for it only where it
    // matters (a cgroup mount or namespace), so the kernel's slow first cgroup attach
    // overlaps our own work.
    let mut cgroup_ready = false;
    let mut wait_cgroup = || -> Result<()> {
        if !cgroup_ready {
            a.channel.expect(Tag::CgroupReady)?;
            if let Some(cg) = a.cgroup.filter(|_| a.join_late) {
                cg.join_self(a.in_unified)?;
            }
            if plan.new_cgroup {
                nix::sched::unshare(CloneFlags::CLONE_NEWCGROUP)
                    .sys(|| "creating cgroup namespace".into())?;
            }
            cgroup_ready = true;
        }
        Ok(())
    };
    let setup = rootfs::Setup {
        spec,
        bundle: &a.bundle.dir,
        rootfs: &a.bundle.rootfs,
        cgroup_path: a.cgroup_path,
        cgroup_layout: a.cgroup_layout,
        in_new_userns: plan.new_user || plan.join_user.is_some(),
        new_cgroupns: plan.new_cgroup,
    };
    // Without a mount namespace we are in the runtime's: mount nothing there.
    let root = if plan.mount_ns {
        let root = rootfs::prepare(&setup, &mut wait_cgroup)?;
        root.mkdir_all(process.cwd(), 0o755)?;
        Some(root)
    } else {
        None
    };
    for (key, value) in linux.sysctl().iter().flatten() {
        proc.sysctl(key, value)?;
    }
    let pty = if process.terminal() == Some(true) {
        let size = process
            .console_size()
            .as_ref()
            .map(|b| (b.height() as u16, b.width() as u16));
        let root = root.as_ref().ok_or_else(|| {
            RuntimeError::InvalidConfig("process.terminal needs a mount namespace".into())
        })?;
        let pty = tty::allocate(root, size)?;
        tty::bind_console(root, &pty.slave)?;
        tty::hand_over(&pty.master, a.console_socket, a.channel)?;
        Some(pty.slave)
    } else {
        None
    };
    if let Some(root) = &root {
        rootfs::lock_down(root, spec)?;
    }
    drop(proc);
    drop(root);

    let spec_hooks = spec.hooks().as_ref();
    if hooks::any(
        spec_hooks,
        &[
            hooks::Kind::Prestart,
            hooks::Kind::CreateRuntime,
            hooks::Kind::CreateContainer,
        ],
    ) {
        // Hooks expect the container in its cgroup (they may configure it).
        wait_cgroup()?;
        a.channel.send(Tag::HookPoint, b"")?;
        let state = a.channel.expect(Tag::HooksDone)?.payload;
        hooks::run(hooks::Kind::CreateContainer, spec_hooks, &state)?;
    }
    // While the host's paths and /proc are in view: the seccomp listener's socket, and our
    // pid as the runtime (and so a seccomp agent) sees it.
    let seccomp = linux.seccomp().as_ref().map(Filter::prepare).transpose()?;
    let host_pid = own_host_pid();
    // In our cgroup (and cgroup namespace) before the host's cgroupfs leaves our view.
    wait_cgroup()?;
    if plan.mount_ns {
        rootfs::enter(&setup, a.no_pivot)?;
    } else {
        nix::unistd::chroot(&a.bundle.rootfs)
            .sys(|| format!("chroot {}", a.bundle.rootfs.display()))?;
    }

    finalize::enter_cwd(process.cwd())?;
    let env = finalize::with_home(
        process.env().clone().unwrap_or_default(),
        process.user().uid(),
    );
    let args = process.args().as_deref().unwrap_or_default();
    let program = finalize::find_executable(&args[0], &env)?;
    let caps = process
        .capabilities()
        .as_ref()
        .map(Sets::parse)
        .transpose()?;
    let no_new_privs = process.no_new_privileges() == Some(true);

    // With a terminal the pty becomes our stdio now, before `create` returns: callers such
    // as containerd's shim wait for create's stdout/stderr to close, which our copies of
    // them would otherwise keep open until `start` (runc sets up the console here too).
    if let Some(slave) = &pty {
        tty::become_console(slave)?;
    }
    drop(pty);
    nix::sys::prctl::set_pdeathsig(None::<Signal>).sys(|| "PR_SET_PDEATHSIG".into())?;
    a.channel.send(Tag::Ready, b"")?;
    wait_for_start(a.exec_fifo)?;
    started.set(Some(state_dir));

    if hooks::any(spec_hooks, &[hooks::Kind::StartContainer]) {
        let state = crate::container::hook_state(a.id, "created", host_pid, a.bundle)?;
        hooks::run(hooks::Kind::StartContainer, spec_hooks, &state)?;
    }
    finalize::set_rlimits(process.rlimits().as_deref().unwrap_or_default())?;
    // Nothing of the runtime's may reach the user's program (CVE-2024-21626); marked now,
    // before a seccomp filter could refuse close_range.
    sys::cloexec_from(3 + a.preserve_fds).sys(|| "close_range".into())?;
    let mut seccomp = seccomp;
    let load_seccomp = |f: Filter| -> Result<()> {
        let state = crate::container::hook_state(a.id, "running", host_pid, a.bundle)?;
        let state: serde_json::Value = serde_json::from_slice(&state).unwrap_or_default();
        f.load(&state, host_pid)
    };
    // Without no_new_privs, loading a filter needs CAP_SYS_ADMIN: load it while we are
    // still privileged. With it, load as late as possible so the filter sees only execve.
    if !no_new_privs {
        if let Some(f) = seccomp.take() {
            load_seccomp(f)?;
        }
    }
    let setgroups_allowed = !(plan.new_user || plan.join_user.is_some()) || setgroups_allowed();
    finalize::become_user(process, caps.as_ref(), setgroups_allowed)?;
    nix::sys::stat::umask(nix::sys::stat::Mode::from_bits_truncate(
        process.user().umask().unwrap_or(0o022),
    ));
    if no_new_privs {
        nix::sys::prctl::set_no_new_privs().sys(|| "PR_SET_NO_NEW_PRIVS".into())?;
        if let Some(f) = seccomp.take() {
            load_seccomp(f)?;
        }
    }
    Err(finalize::exec(&program, args, &env))
}

/// In a new user namespace we start as the overflow id until the maps exist; afterwards
/// become the namespace's root if it is mapped (it may not be: then stay as we are).
fn become_ns_root() {
    let _ = nix::unistd::setresgid(Gid::from_raw(0), Gid::from_raw(0), Gid::from_raw(0));
    let _ = nix::unistd::setresuid(Uid::from_raw(0), Uid::from_raw(0), Uid::from_raw(0));
}

fn setgroups_allowed() -> bool {
    std::fs::read_to_string("/proc/self/setgroups")
        .map(|s| s.trim() == "allow")
        .unwrap_or(true)
}

/// After joining a user namespace by path, a new pid namespace only applies to children:
/// fork once more, report the grandchild's pid, and let it carry on as the init. The
/// runtime is our subreaper, so the grandchild is adopted by it when we exit.
fn second_fork(a: &InitArgs) -> Result<()> {
    nix::sched::unshare(CloneFlags::CLONE_NEWPID).sys(|| "creating pid namespace".into())?;
    match sys::clone_process(0).sys(|| "fork into the pid namespace".into())? {
        sys::Forked::Child => {
            // The death signal fires when the *current* parent exits, and ours exits right
            // away: arm it only once the runtime has reaped that parent, since the kernel
            // hands us to the subreaper before the exit can be reaped. (Anything earlier,
            // e.g. EOF on a pipe the parent held, races with the reparenting and gets us
            // killed.) If the runtime dies first, the channel reads EOF and we exit.
            a.channel.expect(Tag::Adopted)?;
            nix::sys::prctl::set_pdeathsig(Signal::SIGKILL).sys(|| "PR_SET_PDEATHSIG".into())?;
            Ok(())
        }
        sys::Forked::Parent(pid) => {
            let _ = a
                .channel
                .send(Tag::InitPid, pid.as_raw().to_string().as_bytes());
            std::process::exit(0)
        }
    }
}

/// Blocks until `start` writes its byte into the exec fifo.
fn wait_for_start(fifo: &OwnedFd) -> Result<()> {
    let mut byte = [0u8; 1];
    loop {
        match nix::unistd::read(fifo, &mut byte) {
            Ok(1) => return Ok(()),
            Ok(_) => return Err(RuntimeError::Init("exec fifo closed before start".into())),
            Err(nix::errno::Errno::EINTR) => continue,
            Err(e) => return Err(e).sys(|| "reading the exec fifo".into()),
        }
    }
}

/// Our pid in the runtime's pid namespace: /proc is still the host's procfs here, where
/// "self" names us by that pid (getpid() would say 1 in a new pid namespace).
pub(crate) fn own_host_pid() -> i32 {
    std::fs::read_link("/proc/self")
        .ok()
        .and_then(|p| p.to_str().and_then(|s| s.parse().ok()))
        .unwrap_or_else(|| nix::unistd::getpid().as_raw())
}
