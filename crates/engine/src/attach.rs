//! The stream between a container's monitor and a front-end (`berth run`, `start -a`):
//! frames of `[kind: u8][length: u32 big-endian][payload]` over a unix stream socket.
//!
//! monitor → client: `Started(pid)` or `Failed(exit code, message)` once, then `Stdout`/
//! `Stderr` data, then `Exit(code)` after the container is gone (and removed with --rm).
//! client → monitor: `Stdin` data, `CloseStdin`, `Resize(rows, cols)`.
//!
//! A length-prefixed framing of our own (docker's stdcopy is the same idea): the two ends
//! are always the same berth build, and there is nothing in a crate for this.

use std::io::{self, Read, Write};
use std::os::fd::AsFd;
use std::os::unix::net::UnixStream;

use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::signal::{SigSet, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use nix::sys::termios::{self, SetArg, Termios};

use crate::sys;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Kind {
    Stdin = 0,
    Stdout = 1,
    Stderr = 2,
    Started = 3,
    Failed = 4,
    Exit = 5,
    Resize = 6,
    CloseStdin = 7,
}

impl Kind {
    fn from_u8(b: u8) -> Option<Kind> {
        Some(match b {
            0 => Kind::Stdin,
            1 => Kind::Stdout,
            2 => Kind::Stderr,
            3 => Kind::Started,
            4 => Kind::Failed,
            5 => Kind::Exit,
            6 => Kind::Resize,
            7 => Kind::CloseStdin,
            _ => return None,
        })
    }
}

/// Frames larger than this are a protocol error (data is sent in pipe-sized chunks).
const MAX_FRAME: usize = 1 << 20;

pub fn write_frame(w: &mut impl Write, kind: Kind, payload: &[u8]) -> io::Result<()> {
    let mut buf = Vec::with_capacity(5 + payload.len());
    buf.push(kind as u8);
    buf.extend_from_slice(&(payload.len() as u32).to_be_bytes());
    buf.extend_from_slice(payload);
    w.write_all(&buf)
}

/// The next frame; `None` at a clean end of stream.
pub fn read_frame(r: &mut impl Read) -> io::Result<Option<(Kind, Vec<u8>)>> {
    let mut head = [0u8; 5];
    let mut got = 0;
    while got < head.len() {
        match r.read(&mut head[got..]) {
            Ok(0) if got == 0 => return Ok(None),
            Ok(0) => return Err(io::ErrorKind::UnexpectedEof.into()),
            Ok(n) => got += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    let kind = Kind::from_u8(head[0])
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "unknown attach frame"))?;
    let len = u32::from_be_bytes([head[1], head[2], head[3], head[4]]) as usize;
    if len > MAX_FRAME {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "attach frame too large",
        ));
    }
    let mut payload = vec![0u8; len];
    r.read_exact(&mut payload)?;
    Ok(Some((kind, payload)))
}

pub fn i32_payload(p: &[u8]) -> i32 {
    p.get(..4)
        .map(|b| i32::from_be_bytes([b[0], b[1], b[2], b[3]]))
        .unwrap_or(-1)
}

/// What the front-end relays.
pub struct RelayOptions {
    /// Forward our stdin (`-i`).
    pub stdin: bool,
    /// The container has a terminal (`-t`): put ours in raw mode, forward resizes.
    pub tty: bool,
}

/// Restores a terminal's settings when dropped.
struct RawMode {
    saved: Termios,
}

impl RawMode {
    fn enter() -> Option<RawMode> {
        let stdin = io::stdin();
        let saved = termios::tcgetattr(stdin.as_fd()).ok()?;
        let mut raw = saved.clone();
        termios::cfmakeraw(&mut raw);
        termios::tcsetattr(stdin.as_fd(), SetArg::TCSANOW, &raw).ok()?;
        Some(RawMode { saved })
    }
}

impl Drop for RawMode {
    fn drop(&mut self) {
        let _ = termios::tcsetattr(io::stdin().as_fd(), SetArg::TCSANOW, &self.saved);
    }
}

/// Relay a started container's streams between this process's stdio and the monitor until
/// the container exits; returns its exit code. `forward` is called with SIGINT/SIGTERM/
/// SIGHUP/SIGQUIT received meanwhile without a terminal (docker's --sig-proxy): the
/// caller sends them to the container. `None` if the monitor went away without an exit
/// code.
pub fn relay(
    stream: &mut UnixStream,
    opts: &RelayOptions,
    forward: &mut dyn FnMut(Signal),
) -> io::Result<Option<i32>> {
    let mut mask = SigSet::empty();
    mask.add(Signal::SIGWINCH);
    if !opts.tty {
        for s in [
            Signal::SIGINT,
            Signal::SIGTERM,
            Signal::SIGHUP,
            Signal::SIGQUIT,
        ] {
            mask.add(s);
        }
    }
    mask.thread_block().map_err(io::Error::from)?;
    let sfd = SignalFd::with_flags(&mask, SfdFlags::SFD_CLOEXEC | SfdFlags::SFD_NONBLOCK)
        .map_err(io::Error::from)?;

    let stdin = io::stdin();
    let stdin_tty = termios::tcgetattr(stdin.as_fd()).is_ok();
    let _raw = (opts.tty && opts.stdin && stdin_tty)
        .then(RawMode::enter)
        .flatten();
    if opts.tty {
        send_size(stream);
    }
    let mut reader = stream.try_clone()?;
    let mut stdin_open = opts.stdin;
    let mut out = io::stdout();
    let mut err = io::stderr();
    let mut buf = vec![0u8; 32 * 1024];
    loop {
        let mut fds = vec![
            PollFd::new(stream.as_fd(), PollFlags::POLLIN),
            PollFd::new(sfd.as_fd(), PollFlags::POLLIN),
        ];
        if stdin_open {
            fds.push(PollFd::new(stdin.as_fd(), PollFlags::POLLIN));
        }
        match poll(&mut fds, PollTimeout::NONE) {
            Ok(_) => {}
            Err(nix::errno::Errno::EINTR) => continue,
            Err(e) => return Err(e.into()),
        }
        let ready = |f: &PollFd| {
            f.revents()
                .is_some_and(|r| r.intersects(PollFlags::POLLIN | PollFlags::POLLHUP))
        };
        let (from_monitor, signal, from_stdin) = (
            ready(&fds[0]),
            ready(&fds[1]),
            fds.get(2).is_some_and(ready),
        );
        drop(fds);
        if from_monitor {
            match read_frame(&mut reader)? {
                None => return Ok(None),
                Some((Kind::Stdout, data)) => {
                    out.write_all(&data)?;
                    out.flush()?;
                }
                Some((Kind::Stderr, data)) => {
                    err.write_all(&data)?;
                    err.flush()?;
                }
                Some((Kind::Exit, p)) => return Ok(Some(i32_payload(&p))),
                Some(_) => {}
            }
        }
        if signal {
            if let Ok(Some(info)) = sfd.read_signal() {
                match Signal::try_from(info.ssi_signo as i32) {
                    Ok(Signal::SIGWINCH) => send_size(stream),
                    Ok(s) => forward(s),
                    Err(_) => {}
                }
            }
        }
        if from_stdin {
            let n = match nix::unistd::read(stdin.as_fd(), &mut buf) {
                Ok(n) => n,
                Err(nix::errno::Errno::EINTR) => continue,
                Err(_) => 0,
            };
            // A closed monitor shows up as EOF on the next read of the stream.
            let _ = if n == 0 {
                stdin_open = false;
                write_frame(stream, Kind::CloseStdin, &[])
            } else {
                write_frame(stream, Kind::Stdin, &buf[..n])
            };
        }
    }
}

/// The (rows, cols) of the terminal this front-end runs on (its stdin, else its stdout).
pub fn terminal_size() -> Option<(u16, u16)> {
    sys::window_size(io::stdin().as_fd()).or_else(|| sys::window_size(io::stdout().as_fd()))
}

fn send_size(stream: &mut UnixStream) {
    if let Some((rows, cols)) = terminal_size() {
        let mut p = rows.to_be_bytes().to_vec();
        p.extend_from_slice(&cols.to_be_bytes());
        let _ = write_frame(stream, Kind::Resize, &p);
    }
}
