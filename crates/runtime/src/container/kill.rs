//! `kill`: a signal to the container's init, or with --all to every process in its cgroup.

use crate::cgroup;
use crate::error::{Result, RuntimeError, SysContext};
use crate::state::{State, StateRoot, Status};
use crate::sys;
use nix::sys::signal::Signal;
use std::os::fd::AsFd;

pub fn kill(root: &StateRoot, id: &str, signal: Signal, all: bool) -> Result<()> {
    let (_locked, state) = root.open(id)?;
    if state.status == Status::Stopped && !all {
        return Err(RuntimeError::WrongState {
            id: id.to_string(),
            status: "stopped",
            action: "kill",
            wanted: "created, running or paused",
        });
    }
    if all {
        return kill_all(&state, signal);
    }
    signal_init(&state, signal)
}

/// Signals the init through a pidfd taken while its start time still matched, so a pid
/// recycled after the container exited is never signalled.
pub fn signal_init(state: &State, signal: Signal) -> Result<()> {
    let pidfd = match sys::pidfd_open(state.init_pid()) {
        Ok(fd) => fd,
        Err(nix::errno::Errno::ESRCH) => return Ok(()),
        Err(e) => return Err(e).sys(|| format!("pidfd_open {}", state.pid)),
    };
    if !crate::state::process_alive(state.pid, state.pid_start) {
        return Ok(());
    }
    match sys::pidfd_send_signal(pidfd.as_fd(), signal as i32) {
        Ok(()) | Err(nix::errno::Errno::ESRCH) => Ok(()),
        Err(e) => Err(e).sys(|| format!("sending {signal} to {}", state.pid)),
    }
}

pub fn kill_all(state: &State, signal: Signal) -> Result<()> {
    let Some(config) = &state.cgroup else {
        return signal_init(state, signal);
    };
    // Freeze, signal every process, thaw: nothing can fork out of the way meanwhile.
    Ok(cgroup::open(config)?.kill_all(signal)?)
}
