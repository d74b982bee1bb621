//! The container's terminal: a pty from the container's own devpts, its master handed to
//! whoever holds the console socket, its slave becoming /dev/console and the process's stdio.

use crate::error::{Result, RuntimeError, SysContext};
use crate::rootfs::resolve::{fd_path, Root};
use crate::sys;
use nix::fcntl::OFlag;
use nix::mount::{mount, MsFlags};
use nix::sys::socket::{sendmsg, ControlMessage, MsgFlags};
use std::io::IoSlice;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::path::Path;

pub struct Pty {
    pub master: OwnedFd,
    pub slave: OwnedFd,
}

/// A pty from the container's devpts instance, with its window size set.
pub fn allocate(root: &Root, size: Option<(u16, u16)>) -> Result<Pty> {
    let master = root
        .open_at(Path::new("/dev/pts/ptmx"), OFlag::O_RDWR | OFlag::O_NOCTTY)
        .sys(|| "opening the container's /dev/pts/ptmx (is devpts mounted?)".into())?;
    let st = nix::sys::statfs::fstatfs(&master).sys(|| "statfs ptmx".into())?;
    const DEVPTS_SUPER_MAGIC: i64 = 0x1cd1;
    if st.filesystem_type().0 as i64 != DEVPTS_SUPER_MAGIC {
        return Err(RuntimeError::Init("/dev/pts/ptmx is not on devpts".into()));
    }
    sys::unlock_pty(master.as_fd()).sys(|| "unlocking the pty".into())?;
    let slave = sys::open_pty_peer(master.as_fd()).sys(|| "opening the pty peer".into())?;
    if let Some((rows, cols)) = size {
        sys::set_window_size(master.as_fd(), rows, cols).sys(|| "setting console size".into())?;
    }
    Ok(Pty { master, slave })
}

/// Makes /dev/console the pty's slave itself, bind-mounted from our descriptor (never from
/// a path the container could have swapped: CVE-2025-52565).
pub fn bind_console(root: &Root, slave: &OwnedFd) -> Result<()> {
    let console = root.fresh_file(Path::new("/dev/console"))?;
    mount(
        Some(fd_path(slave).as_str()),
        fd_path(&console).as_str(),
        None::<&str>,
        MsFlags::MS_BIND,
        None::<&str>,
    )
    .sys(|| "bind-mounting the pty on /dev/console".into())
}

/// Sends the master over the console socket as runc does (SCM_RIGHTS, name as payload).
pub fn send_master(socket: &OwnedFd, master: &OwnedFd, socket_path: &Path) -> Result<()> {
    let fds = [master.as_raw_fd()];
    let payload = b"/dev/ptmx";
    let iov = [IoSlice::new(payload)];
    sendmsg::<()>(
        socket.as_raw_fd(),
        &iov,
        &[ControlMessage::ScmRights(&fds)],
        MsgFlags::empty(),
        None,
    )
    .map_err(|e| RuntimeError::ConsoleSocket {
        path: socket_path.to_path_buf(),
        msg: e.to_string(),
    })?;
    Ok(())
}

/// Makes the slave the controlling terminal and stdio of this process (a new session).
pub fn become_console(slave: &OwnedFd) -> Result<()> {
    nix::unistd::setsid().sys(|| "setsid".into())?;
    sys::set_controlling_terminal(slave.as_fd()).sys(|| "TIOCSCTTY".into())?;
    nix::unistd::dup2_stdin(slave).sys(|| "dup2 pty to stdin".into())?;
    nix::unistd::dup2_stdout(slave).sys(|| "dup2 pty to stdout".into())?;
    nix::unistd::dup2_stderr(slave).sys(|| "dup2 pty to stderr".into())
}

/// Hands the master to whoever takes the terminal: the console socket's owner, or our own
/// runtime process (a foreground `run`/`exec` relays it) over the sync channel.
pub fn hand_over(
    master: &OwnedFd,
    console_socket: Option<(&OwnedFd, &Path)>,
    channel: &crate::process::channel::Channel,
) -> Result<()> {
    match console_socket {
        Some((sock, path)) => send_master(sock, master, path),
        None => channel.send_with_fd(
            crate::process::channel::Tag::Console,
            b"",
            Some(master.as_raw_fd()),
        ),
    }
}

/// Connects to a `--console-socket` (before any namespace change, while its path is ours).
pub fn connect_console_socket(path: &Path) -> Result<OwnedFd> {
    std::os::unix::net::UnixStream::connect(path)
        .map(OwnedFd::from)
        .map_err(|e| RuntimeError::ConsoleSocket {
            path: path.to_path_buf(),
            msg: e.to_string(),
        })
}
