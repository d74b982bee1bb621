//! The few system calls the lifecycle code needs that nix doesn't wrap safely. Every
//! `unsafe` block of the container lifecycle is here.

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};

/// `pidfd_open(2)`: a descriptor that becomes readable when `pid` exits, immune to pid
/// reuse once taken.
pub fn pidfd_open(pid: i32) -> io::Result<OwnedFd> {
    // SAFETY: plain syscall with integer arguments; the result is a new descriptor we own.
    let r = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
    if r < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: r is a descriptor the kernel just gave us and nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(r as i32) })
}

/// A terminal's size (rows, columns).
pub fn window_size(fd: BorrowedFd) -> Option<(u16, u16)> {
    let mut ws = libc::winsize {
        ws_row: 0,
        ws_col: 0,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCGWINSZ writes one winsize into the struct we pass.
    let r = unsafe { libc::ioctl(fd.as_raw_fd(), libc::TIOCGWINSZ, &mut ws) };
    (r == 0 && ws.ws_row > 0).then_some((ws.ws_row, ws.ws_col))
}

/// Set a terminal's size (on the pty master: the container's shell sees SIGWINCH).
pub fn set_window_size(fd: BorrowedFd, rows: u16, cols: u16) -> io::Result<()> {
    let ws = libc::winsize {
        ws_row: rows,
        ws_col: cols,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCSWINSZ reads one winsize from the struct we pass.
    let r = unsafe { libc::ioctl(fd.as_raw_fd(), libc::TIOCSWINSZ, &ws) };
    if r < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Take ownership of a descriptor received as SCM_RIGHTS.
pub fn received_fd(fd: RawFd) -> OwnedFd {
    // SAFETY: recvmsg just installed this descriptor in our table and nothing else
    // refers to it.
    unsafe { OwnedFd::from_raw_fd(fd) }
}

/// `fork(2)`; true in the child. Only for a process with a single thread (the monitor,
/// first thing after exec), where the child may go on running any code.
pub fn fork_single_threaded() -> io::Result<bool> {
    // SAFETY: the caller guarantees no other thread exists, so the child's copy of the
    // address space holds no lock another thread owned.
    match unsafe { nix::unistd::fork() } {
        Ok(nix::unistd::ForkResult::Child) => Ok(true),
        Ok(nix::unistd::ForkResult::Parent { .. }) => Ok(false),
        Err(e) => Err(e.into()),
    }
}

/// Makes `cmd`'s child start with no blocked signals. A process that blocks signals to
/// read them from a signalfd (the `--init`) passes its mask on through fork and execve,
/// and std's spawn keeps it: the command would then never see a forwarded SIGTERM.
pub fn spawn_with_empty_sigmask(cmd: &mut std::process::Command) {
    use std::os::unix::process::CommandExt;
    // SAFETY: the closure runs in the child between fork and exec and only calls
    // sigprocmask, which is async-signal-safe; it touches no memory of the parent's.
    unsafe {
        cmd.pre_exec(|| {
            nix::sys::signal::sigprocmask(
                nix::sys::signal::SigmaskHow::SIG_SETMASK,
                Some(&nix::sys::signal::SigSet::empty()),
                None,
            )
            .map_err(io::Error::from)
        });
    }
}
