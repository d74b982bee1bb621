//! `start`: lets a created container's init exec the user's program.

use crate::error::{Result, RuntimeError, SysContext};
use crate::hooks;
use crate::state::{Locked, State, StateRoot, Status, EXEC_FIFO};
use nix::fcntl::OFlag;
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use oci_spec::runtime::Spec;
use std::os::fd::AsFd;

pub fn start(root: &StateRoot, id: &str) -> Result<()> {
    let (locked, mut state) = root.open(id)?;
    let spec = super::state::stored_spec(&locked, id)?;
    start_locked(&locked, &mut state, &spec)
}

/// `spec`: the container's config (the stored copy; `run` passes the one it just parsed).
pub fn start_locked(locked: &Locked, state: &mut State, spec: &Spec) -> Result<()> {
    if state.status != Status::Created {
        return Err(RuntimeError::WrongState {
            id: state.id.clone(),
            status: state.status.as_str(),
            action: "start",
            wanted: "created",
        });
    }
    signal_exec(locked)?;
    state.status = Status::Running;
    locked.save(state)?;
    if hooks::any(spec.hooks().as_ref(), &[hooks::Kind::Poststart]) {
        wait_until_scheduled(state.pid);
        let json = super::state_json(
            &state.id,
            "running",
            Some(state.pid),
            &state.bundle,
            &state.annotations,
        )?;
        // The runtime-spec: a failing poststart hook is logged, the container runs on.
        hooks::run_warn(hooks::Kind::Poststart, spec.hooks().as_ref(), &json);
    }
    Ok(())
}

/// Writes the start byte and waits until the init has exec'd: its read-write descriptor of
/// the fifo is close-on-exec, so we see POLLERR once no reader remains.
fn signal_exec(locked: &Locked) -> Result<()> {
    let path = locked.dir.join(EXEC_FIFO);
    let fd = nix::fcntl::open(
        &path,
        OFlag::O_WRONLY | OFlag::O_NONBLOCK | OFlag::O_CLOEXEC,
        nix::sys::stat::Mode::empty(),
    )
    .map_err(|e| match e {
        nix::errno::Errno::ENXIO | nix::errno::Errno::ENOENT => {
            RuntimeError::Init("the container's init is not waiting for start".into())
        }
        e => RuntimeError::Sys {
            what: format!("opening {}", path.display()),
            source: e,
        },
    })?;
    nix::unistd::write(&fd, &[0u8]).sys(|| "writing the exec fifo".into())?;
    loop {
        let mut fds = [PollFd::new(fd.as_fd(), PollFlags::empty())];
        match poll(&mut fds, PollTimeout::NONE) {
            Ok(_) => {
                let ev = fds[0].revents().unwrap_or(PollFlags::empty());
                if ev.intersects(PollFlags::POLLERR | PollFlags::POLLHUP) {
                    break;
                }
            }
            Err(nix::errno::Errno::EINTR) => continue,
            Err(e) => return Err(e).sys(|| "waiting for the container to exec".into()),
        }
    }
    let _ = std::fs::remove_file(&path);
    let err_path = locked.dir.join(crate::state::START_ERROR);
    if let Ok(msg) = std::fs::read_to_string(&err_path) {
        let _ = std::fs::remove_file(&err_path);
        return Err(RuntimeError::Init(msg));
    }
    Ok(())
}

/// Poststart hooks run "after the user-specified process is executed": execve returning is
/// not yet the program running, and a hook forked at once can overtake it. Wait (at most
/// 100 ms) until the program has run far enough to block or exit; a program that computes
/// without blocking is running anyway when the budget ends.
fn wait_until_scheduled(pid: i32) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_millis(100);
    while std::time::Instant::now() < deadline {
        match crate::state::process_stat(pid) {
            Some((_, 'R')) => std::thread::sleep(std::time::Duration::from_millis(1)),
            _ => return,
        }
    }
}
