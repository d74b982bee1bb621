//! `delete`: removes a stopped container (or, forced, a running one) and everything it
//! had: processes, cgroups, state; then runs the poststop hooks.

use super::kill::{kill_all, signal_init};
use crate::cgroup;
use crate::error::{Result, RuntimeError};
use crate::hooks;
use crate::state::{State, StateRoot, Status};
use crate::sys;
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::signal::Signal;
use std::os::fd::AsFd;

pub fn delete(root: &StateRoot, id: &str, force: bool) -> Result<()> {
    delete_with(root, id, force, None)
}

/// What a caller that just created the container (`run`) already has: its config and the
/// host's cgroup layout, so delete needn't read and detect them again.
pub struct Known<'a> {
    pub spec: &'a oci_spec::runtime::Spec,
    pub layout: &'a berth_cgroups::Layout,
}

pub fn delete_with(root: &StateRoot, id: &str, force: bool, known: Option<Known>) -> Result<()> {
    let (locked, state) = match root.open(id) {
        Err(RuntimeError::NotFound(_)) if force => return Ok(()),
        other => other?,
    };
    match state.status {
        Status::Stopped | Status::Creating => {}
        // A created container never ran the user's program: runc removes it unasked.
        Status::Created => stop(&state)?,
        Status::Running | Status::Paused if force => stop(&state)?,
        s => {
            return Err(RuntimeError::WrongState {
                id: id.to_string(),
                status: s.as_str(),
                action: "delete",
                wanted: "stopped (or use --force)",
            })
        }
    }
    let stored;
    let spec = match &known {
        Some(k) => Some(k.spec),
        None => {
            stored = super::state::stored_spec(&locked, id).ok();
            stored.as_ref()
        }
    };
    if let Some(config) = &state.cgroup {
        // Without a pid namespace of its own, the init's children outlive it.
        if !state.own_pid_ns {
            let _ = kill_all(&state, Signal::SIGKILL);
        }
        match &known {
            Some(k) => berth_cgroups::open_with(k.layout.clone(), config.clone())?.destroy()?,
            None => cgroup::open(config)?.destroy()?,
        }
    } else if let Some(config) = spec.and_then(|s| cgroup::config_for(s, id).ok()) {
        // A create that died before recording its state may have made the cgroup and even
        // left an init waiting for start in it: the cgroup config.json names is the only
        // trace of it.
        let manager = cgroup::open(&config)?;
        let _ = manager.kill_all(Signal::SIGKILL);
        manager.destroy()?;
    }
    let hooks = spec.and_then(|s| s.hooks().as_ref());
    let had_state = state.pid != 0;
    locked.remove()?;
    if had_state && hooks::any(hooks, &[hooks::Kind::Poststop]) {
        let json = super::state_json(id, "stopped", None, &state.bundle, &state.annotations)?;
        hooks::run_warn(hooks::Kind::Poststop, hooks, &json);
    }
    Ok(())
}

/// SIGKILLs the container (thawing it first if frozen) and waits until the init is gone.
fn stop(state: &State) -> Result<()> {
    let pidfd = sys::pidfd_open(state.init_pid()).ok();
    if state.status == Status::Paused {
        if let Some(config) = &state.cgroup {
            let manager = cgroup::open(config)?;
            let _ = kill_all(state, Signal::SIGKILL);
            let _ = manager.freeze(false);
        }
    }
    signal_init(state, Signal::SIGKILL)?;
    if let Some(fd) = pidfd {
        let mut fds = [PollFd::new(fd.as_fd(), PollFlags::POLLIN)];
        let _ = poll(&mut fds, PollTimeout::from(10_000u16));
    }
    Ok(())
}
