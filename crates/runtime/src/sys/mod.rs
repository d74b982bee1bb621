//! The few syscalls that nix does not wrap safely. Every `unsafe` block of the runtime lives
//! here, each with its SAFETY note; the rest of the crate calls these safe functions.

use nix::errno::Errno;
use nix::unistd::Pid;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};

/// What `clone_process` returned in each of the two processes.
pub enum Forked {
    Parent(Pid),
    Child,
}

/// fork(2) with namespace flags: a raw clone(2) without a new stack, so the child continues
/// on a copy of the caller's address space exactly like fork. `berth-runtime` is
/// single-threaded (no async runtime, no helper threads), which is what makes running
/// ordinary Rust code in the child sound.
pub fn clone_process(ns_flags: libc::c_int) -> nix::Result<Forked> {
    let flags = (ns_flags | libc::SIGCHLD) as libc::c_ulong;
    // SAFETY: with a null stack pointer clone behaves like fork: the child gets a private
    // copy of the single-threaded parent's memory, so no lock or allocator state can be
    // held by another thread at the time of the call. The remaining pointer arguments
    // (parent_tid, child_tid, tls) are unused without CLONE_*TID/CLONE_SETTLS flags.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_clone,
            flags,
            std::ptr::null_mut::<libc::c_void>(),
            std::ptr::null_mut::<libc::c_int>(),
            std::ptr::null_mut::<libc::c_int>(),
            0usize,
        )
    };
    match Errno::result(ret)? {
        0 => Ok(Forked::Child),
        pid => Ok(Forked::Parent(Pid::from_raw(pid as i32))),
    }
}

/// Marks every descriptor from `first` upwards close-on-exec, so nothing of the runtime's
/// reaches the container's process (CVE-2024-21626) while descriptors still needed until
/// execve (the exec fifo, the sync socket) stay usable.
pub fn cloexec_from(first: RawFd) -> nix::Result<()> {
    // SAFETY: close_range only changes descriptor flags; it reads no memory of ours.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_close_range,
            first as libc::c_uint,
            libc::c_uint::MAX,
            libc::CLOSE_RANGE_CLOEXEC,
        )
    };
    Errno::result(ret).map(drop)
}

/// A pidfd for `pid`, so waiting with a timeout and signalling can't hit a recycled pid.
pub fn pidfd_open(pid: Pid) -> nix::Result<OwnedFd> {
    // SAFETY: pidfd_open takes two integers and returns a new descriptor that we own.
    let ret = unsafe { libc::syscall(libc::SYS_pidfd_open, pid.as_raw(), 0) };
    let fd = Errno::result(ret)? as RawFd;
    // SAFETY: the kernel just returned this descriptor to us and nothing else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Signals the process behind a pidfd (no pid-reuse race).
pub fn pidfd_send_signal(pidfd: BorrowedFd<'_>, signal: i32) -> nix::Result<()> {
    // SAFETY: a null siginfo pointer is documented to mean "as kill(2) would send".
    let ret = unsafe {
        libc::syscall(
            libc::SYS_pidfd_send_signal,
            pidfd.as_raw_fd(),
            signal,
            std::ptr::null_mut::<libc::siginfo_t>(),
            0,
        )
    };
    Errno::result(ret).map(drop)
}

pub fn set_domainname(name: &str) -> nix::Result<()> {
    // SAFETY: the pointer and length describe `name`'s bytes, which outlive the call.
    let ret = unsafe { libc::setdomainname(name.as_ptr().cast(), name.len()) };
    Errno::result(ret).map(drop)
}

/// Makes the terminal on `fd` the controlling terminal of this (session leader) process.
pub fn set_controlling_terminal(fd: BorrowedFd<'_>) -> nix::Result<()> {
    // SAFETY: TIOCSCTTY takes an integer argument, no pointer.
    let ret = unsafe { libc::ioctl(fd.as_raw_fd(), libc::TIOCSCTTY, 0) };
    Errno::result(ret).map(drop)
}

pub fn set_window_size(fd: BorrowedFd<'_>, rows: u16, cols: u16) -> nix::Result<()> {
    let ws = libc::winsize {
        ws_row: rows,
        ws_col: cols,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCSWINSZ reads one winsize struct, which lives on our stack for the call.
    let ret = unsafe { libc::ioctl(fd.as_raw_fd(), libc::TIOCSWINSZ, &ws) };
    Errno::result(ret).map(drop)
}

pub fn window_size(fd: BorrowedFd<'_>) -> nix::Result<(u16, u16)> {
    let mut ws = libc::winsize {
        ws_row: 0,
        ws_col: 0,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCGWINSZ writes one winsize struct into our stack variable.
    let ret = unsafe { libc::ioctl(fd.as_raw_fd(), libc::TIOCGWINSZ, &mut ws) };
    Errno::result(ret).map(|_| (ws.ws_row, ws.ws_col))
}

/// Joins a new session keyring named `name`, so containers don't share the host's keys.
pub fn join_session_keyring(name: &std::ffi::CStr) -> nix::Result<()> {
    const KEYCTL_JOIN_SESSION_KEYRING: libc::c_long = 1;
    // SAFETY: the name pointer is a valid NUL-terminated string for the call's duration.
    let ret =
        unsafe { libc::syscall(libc::SYS_keyctl, KEYCTL_JOIN_SESSION_KEYRING, name.as_ptr()) };
    Errno::result(ret).map(drop)
}

/// Sets one resource limit by its raw number (every RLIMIT_* of the spec, including the
/// ones nix has no enum variant for on every libc).
pub fn set_rlimit(resource: libc::c_int, soft: u64, hard: u64) -> nix::Result<()> {
    let lim = libc::rlimit64 {
        rlim_cur: soft,
        rlim_max: hard,
    };
    // SAFETY: prlimit64 on our own pid (0) reads one rlimit64 struct from our stack.
    let ret = unsafe { libc::prlimit64(0, resource as _, &lim, std::ptr::null_mut()) };
    Errno::result(ret).map(drop)
}

/// Applies mount attributes (read-only, nosuid, ... and propagation) to the mount at `fd`,
/// recursively when asked: the only way to make a whole bind tree read-only.
pub fn mount_setattr(
    fd: BorrowedFd<'_>,
    recursive: bool,
    attr_set: u64,
    attr_clr: u64,
    propagation: u64,
) -> nix::Result<()> {
    #[repr(C)]
    struct MountAttr {
        attr_set: u64,
        attr_clr: u64,
        propagation: u64,
        userns_fd: u64,
    }
    let attr = MountAttr {
        attr_set,
        attr_clr,
        propagation,
        userns_fd: 0,
    };
    let mut flags = libc::AT_EMPTY_PATH as libc::c_uint;
    if recursive {
        flags |= libc::AT_RECURSIVE as libc::c_uint;
    }
    // SAFETY: the path is an empty C string literal, the attr struct lives on our stack and
    // its size is passed alongside.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_mount_setattr,
            fd.as_raw_fd(),
            c"".as_ptr(),
            flags,
            &attr as *const MountAttr,
            std::mem::size_of::<MountAttr>(),
        )
    };
    Errno::result(ret).map(drop)
}

/// The child of a clone inherits the runtime's signal mask and dispositions; this gives the
/// container's program the defaults: nothing blocked, SIGPIPE not ignored.
pub fn reset_signals() -> nix::Result<()> {
    nix::sys::signal::sigprocmask(
        nix::sys::signal::SigmaskHow::SIG_SETMASK,
        Some(&nix::sys::signal::SigSet::empty()),
        None,
    )?;
    // Rust's start-up code ignores SIGPIPE, and an ignored signal stays ignored across
    // execve: the container's program must start with the default (as under runc), or
    // `yes | head -1` never ends.
    // SAFETY: SIG_DFL installs no handler, so no code of ours can run in signal context.
    unsafe {
        nix::sys::signal::signal(
            nix::sys::signal::Signal::SIGPIPE,
            nix::sys::signal::SigHandler::SigDfl,
        )
    }
    .map(drop)
}

/// Unlocks a pty master (TIOCSPTLCK 0) so its peer can be opened.
pub fn unlock_pty(master: BorrowedFd<'_>) -> nix::Result<()> {
    let unlock: libc::c_int = 0;
    // SAFETY: TIOCSPTLCK reads one int from the pointer, which points at our stack variable.
    let ret = unsafe { libc::ioctl(master.as_raw_fd(), libc::TIOCSPTLCK, &unlock) };
    Errno::result(ret).map(drop)
}

/// Opens the peer (slave) of a pty master without a path lookup (TIOCGPTPEER), so no
/// path in the container can substitute another file for the terminal.
pub fn open_pty_peer(master: BorrowedFd<'_>) -> nix::Result<OwnedFd> {
    let flags = libc::O_RDWR | libc::O_NOCTTY | libc::O_CLOEXEC;
    // SAFETY: TIOCGPTPEER takes the open flags as an integer and returns a new descriptor.
    let ret = unsafe { libc::ioctl(master.as_raw_fd(), libc::TIOCGPTPEER, flags) };
    let fd = Errno::result(ret)?;
    // SAFETY: the kernel just returned this descriptor to us and nothing else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Drops capability number `cap` from the bounding set; false once `cap` is past the
/// last capability this kernel knows (EINVAL), so callers can loop without probing first.
pub fn capbset_drop(cap: u32) -> nix::Result<bool> {
    // SAFETY: PR_CAPBSET_DROP takes the capability number as an integer argument.
    let ret = unsafe { libc::prctl(libc::PR_CAPBSET_DROP, cap as libc::c_ulong, 0, 0, 0) };
    match Errno::result(ret) {
        Ok(_) => Ok(true),
        Err(Errno::EINVAL) => Ok(false),
        Err(e) => Err(e),
    }
}

/// clone3(2) like [`clone_process`], optionally straight into the cgroup v2 directory
/// `cgroup` (CLONE_INTO_CGROUP): the child starts in its cgroup without a migration, which
/// on cgroup v2 would otherwise take the kernel's global threadgroup lock.
pub fn clone3_process(
    ns_flags: libc::c_int,
    cgroup: Option<BorrowedFd<'_>>,
) -> nix::Result<Forked> {
    #[repr(C)]
    struct CloneArgs {
        flags: u64,
        pidfd: u64,
        child_tid: u64,
        parent_tid: u64,
        exit_signal: u64,
        stack: u64,
        stack_size: u64,
        tls: u64,
        set_tid: u64,
        set_tid_size: u64,
        cgroup: u64,
    }
    const CLONE_INTO_CGROUP: u64 = 0x2_0000_0000;
    let mut args = CloneArgs {
        flags: ns_flags as u32 as u64,
        pidfd: 0,
        child_tid: 0,
        parent_tid: 0,
        exit_signal: libc::SIGCHLD as u64,
        stack: 0,
        stack_size: 0,
        tls: 0,
        set_tid: 0,
        set_tid_size: 0,
        cgroup: 0,
    };
    if let Some(fd) = cgroup {
        args.flags |= CLONE_INTO_CGROUP;
        args.cgroup = fd.as_raw_fd() as u64;
    }
    // SAFETY: as for clone_process: no stack given, so the child runs on a copy of this
    // single-threaded process's memory, like fork. The args struct lives on our stack for
    // the duration of the call and its size is passed alongside.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_clone3,
            &mut args as *mut CloneArgs,
            std::mem::size_of::<CloneArgs>(),
        )
    };
    match Errno::result(ret)? {
        0 => Ok(Forked::Child),
        pid => Ok(Forked::Parent(Pid::from_raw(pid as i32))),
    }
}

/// Forks with `ns_flags`, straight into the cgroup v2 directory `cgroup` when given and the
/// kernel takes it, else a plain clone (older kernels, or a cgroup that can't take
/// processes directly). Returns whether the child started in that cgroup.
pub fn fork_into_cgroup(
    ns_flags: libc::c_int,
    cgroup: Option<BorrowedFd<'_>>,
) -> (nix::Result<Forked>, bool) {
    match clone3_process(ns_flags, cgroup) {
        Err(_) if cgroup.is_some() => (clone_process(ns_flags), false),
        other => (other, cgroup.is_some()),
    }
}

pub const SECCOMP_FILTER_FLAG_TSYNC: u32 = 1;
pub const SECCOMP_FILTER_FLAG_LOG: u32 = 2;
pub const SECCOMP_FILTER_FLAG_SPEC_ALLOW: u32 = 4;
pub const SECCOMP_FILTER_FLAG_NEW_LISTENER: u32 = 8;
pub const SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV: u32 = 32;

/// Installs a compiled seccomp program (an array of `struct sock_filter`, as libseccomp's
/// export gives it). With SECCOMP_FILTER_FLAG_NEW_LISTENER, returns the notify descriptor.
pub fn seccomp_set_filter(program: &[u8], flags: u32) -> nix::Result<Option<OwnedFd>> {
    #[repr(C)]
    struct SockFprog {
        len: libc::c_ushort,
        filter: *const u8,
    }
    const SOCK_FILTER_SIZE: usize = 8;
    const SECCOMP_SET_MODE_FILTER: libc::c_uint = 1;
    if !program.len().is_multiple_of(SOCK_FILTER_SIZE) || program.len() / SOCK_FILTER_SIZE > 4096 {
        return Err(Errno::EINVAL);
    }
    let prog = SockFprog {
        len: (program.len() / SOCK_FILTER_SIZE) as libc::c_ushort,
        filter: program.as_ptr(),
    };
    // SAFETY: `prog` points at `program`'s bytes, a whole number of 8-byte sock_filter
    // entries that outlive the call; the kernel copies the program before returning.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_seccomp,
            SECCOMP_SET_MODE_FILTER,
            flags as libc::c_uint,
            &prog as *const SockFprog,
        )
    };
    let ret = Errno::result(ret)?;
    if flags & SECCOMP_FILTER_FLAG_NEW_LISTENER != 0 {
        // SAFETY: with NEW_LISTENER the kernel returns a new descriptor that we own.
        return Ok(Some(unsafe { OwnedFd::from_raw_fd(ret as RawFd) }));
    }
    Ok(None)
}
