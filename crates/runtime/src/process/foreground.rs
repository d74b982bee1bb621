//! A process the runtime waits for in the foreground (`run`, `exec` without -d): signals
//! are blocked before it is forked (so a fast exit can't lose its SIGCHLD), forwarded to
//! it while it runs, and its terminal is relayed through ours.

use crate::error::{Result, SysContext};
use crate::sys;
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::signal::{SigSet, SigmaskHow, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use nix::sys::termios;
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

/// Signals passed on to the foreground process, as runc does.
const FORWARDED: [Signal; 12] = [
    Signal::SIGHUP,
    Signal::SIGINT,
    Signal::SIGQUIT,
    Signal::SIGUSR1,
    Signal::SIGUSR2,
    Signal::SIGTERM,
    Signal::SIGALRM,
    Signal::SIGCONT,
    Signal::SIGTSTP,
    Signal::SIGTTIN,
    Signal::SIGTTOU,
    Signal::SIGWINCH,
];

/// SIGCHLD and the forwarded signals, blocked until dropped and read through a signalfd.
pub struct Signals {
    old: SigSet,
    pub fd: SignalFd,
}

impl Signals {
    /// Call before forking the process to wait for.
    pub fn block() -> Result<Signals> {
        let mut mask = SigSet::empty();
        mask.add(Signal::SIGCHLD);
        for s in FORWARDED {
            mask.add(s);
        }
        let mut old = SigSet::empty();
        nix::sys::signal::sigprocmask(SigmaskHow::SIG_BLOCK, Some(&mask), Some(&mut old))
            .sys(|| "sigprocmask".into())?;
        let fd = SignalFd::with_flags(&mask, SfdFlags::SFD_CLOEXEC | SfdFlags::SFD_NONBLOCK)
            .sys(|| "signalfd".into());
        match fd {
            Ok(fd) => Ok(Signals { old, fd }),
            Err(e) => {
                let _ = nix::sys::signal::sigprocmask(SigmaskHow::SIG_SETMASK, Some(&old), None);
                Err(e)
            }
        }
    }
}

impl Drop for Signals {
    fn drop(&mut self) {
        let _ = nix::sys::signal::sigprocmask(SigmaskHow::SIG_SETMASK, Some(&self.old), None);
    }
}

/// Puts our terminal in raw mode while relaying, and restores it however we leave.
pub struct RawMode {
    saved: Option<termios::Termios>,
}

impl RawMode {
    fn enter() -> RawMode {
        let stdin = std::io::stdin();
        let saved = termios::tcgetattr(stdin.as_fd()).ok();
        if let Some(t) = &saved {
            let mut raw = t.clone();
            termios::cfmakeraw(&mut raw);
            let _ = termios::tcsetattr(stdin.as_fd(), termios::SetArg::TCSANOW, &raw);
        }
        RawMode { saved }
    }
}

impl Drop for RawMode {
    fn drop(&mut self) {
        if let Some(t) = &self.saved {
            let _ = termios::tcsetattr(std::io::stdin().as_fd(), termios::SetArg::TCSANOW, t);
        }
    }
}

pub fn copy_window_size(master: BorrowedFd) {
    if let Some((rows, cols)) = terminal_size() {
        let _ = sys::set_window_size(master, rows, cols);
    }
}

/// The size of the terminal we run on: stdin's, else stdout's or stderr's (`exec -t`
/// without `-i` has no terminal on stdin), as runc's console.Current() looks.
pub fn terminal_size() -> Option<(u16, u16)> {
    [
        std::io::stdin().as_fd(),
        std::io::stdout().as_fd(),
        std::io::stderr().as_fd(),
    ]
    .into_iter()
    .find_map(|fd| sys::window_size(fd).ok())
}

fn exit_code(status: WaitStatus) -> Option<i32> {
    match status {
        WaitStatus::Exited(_, code) => Some(code),
        WaitStatus::Signaled(_, sig, _) => Some(128 + sig as i32),
        _ => None,
    }
}

pub fn wait(init: Pid, sfd: &SignalFd, console: Option<&OwnedFd>) -> Result<i32> {
    let _raw = console.map(|_| RawMode::enter());
    if let Some(m) = console {
        let _ = nix::fcntl::fcntl(
            m,
            nix::fcntl::FcntlArg::F_SETFL(nix::fcntl::OFlag::O_NONBLOCK),
        );
    }
    let stdin = std::io::stdin();
    let mut stdin_open = console.is_some();
    let mut buf = [0u8; 8192];
    loop {
        let mut fds = vec![PollFd::new(sfd.as_fd(), PollFlags::POLLIN)];
        if let Some(m) = console {
            fds.push(PollFd::new(m.as_fd(), PollFlags::POLLIN));
            if stdin_open {
                fds.push(PollFd::new(stdin.as_fd(), PollFlags::POLLIN));
            }
        }
        match poll(&mut fds, PollTimeout::NONE) {
            Ok(_) => {}
            Err(nix::errno::Errno::EINTR) => continue,
            Err(e) => return Err(e).sys(|| "poll".into()),
        }
        let ready: Vec<bool> = fds
            .iter()
            .map(|f| f.revents().is_some_and(|r| !r.is_empty()))
            .collect();
        drop(fds);
        if let Some(m) = console {
            if ready[1] {
                relay(m.as_fd(), std::io::stdout().as_fd(), &mut buf);
            }
            if stdin_open
                && ready.get(2) == Some(&true)
                && !relay(stdin.as_fd(), m.as_fd(), &mut buf)
            {
                stdin_open = false;
            }
        }
        if !ready[0] {
            continue;
        }
        while let Ok(Some(info)) = sfd.read_signal() {
            let sig = Signal::try_from(info.ssi_signo as i32).ok();
            match sig {
                Some(Signal::SIGCHLD) => {}
                Some(Signal::SIGWINCH) => {
                    if let Some(m) = console {
                        copy_window_size(m.as_fd());
                    }
                }
                Some(s) => {
                    let _ = nix::sys::signal::kill(init, s);
                }
                None => {}
            }
        }
        // Reap everything: we may be a subreaper with adopted grandchildren.
        loop {
            match waitpid(None::<Pid>, Some(WaitPidFlag::WNOHANG)) {
                Ok(WaitStatus::StillAlive) | Err(_) => break,
                Ok(status) if status.pid() == Some(init) => {
                    if let Some(code) = exit_code(status) {
                        if let Some(m) = console {
                            while relay(m.as_fd(), std::io::stdout().as_fd(), &mut buf) {}
                        }
                        return Ok(code);
                    }
                }
                Ok(_) => {}
            }
        }
    }
}

/// Copies what is available from one side to the other; false at EOF or error.
fn relay(from: BorrowedFd, to: BorrowedFd, buf: &mut [u8]) -> bool {
    match nix::unistd::read(from, buf) {
        Ok(0) | Err(_) => false,
        Ok(n) => {
            let mut off = 0;
            while off < n {
                match nix::unistd::write(to, &buf[off..n]) {
                    Ok(w) => off += w,
                    Err(nix::errno::Errno::EINTR | nix::errno::Errno::EAGAIN) => continue,
                    Err(_) => return false,
                }
            }
            true
        }
    }
}
