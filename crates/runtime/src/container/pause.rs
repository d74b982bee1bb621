//! `pause` / `resume`: freeze and thaw every process of a container through its cgroup.

use crate::cgroup;
use crate::error::{Result, RuntimeError};
use crate::state::{Locked, State, StateRoot, Status, EXEC_FIFO};

/// Freezes a created or running container (as runc, which pauses both) and records it as
/// paused.
pub fn pause(root: &StateRoot, id: &str) -> Result<()> {
    let (locked, mut state) = root.open(id)?;
    if !matches!(state.status, Status::Created | Status::Running) {
        return Err(RuntimeError::WrongState {
            id: id.to_string(),
            status: state.status.as_str(),
            action: "pause",
            wanted: "running or created",
        });
    }
    let manager = cgroup::open(cgroup_of(&state)?)?;
    manager.freeze(true)?;
    state.status = Status::Paused;
    if let Err(e) = locked.save(&state) {
        let _ = manager.freeze(false);
        return Err(e);
    }
    Ok(())
}

/// Thaws a paused container; it goes back to running (or to created, if it was paused
/// before `start`: its exec fifo is still there).
pub fn resume(root: &StateRoot, id: &str) -> Result<()> {
    let (locked, mut state) = root.open(id)?;
    if state.status != Status::Paused {
        return Err(RuntimeError::WrongState {
            id: id.to_string(),
            status: state.status.as_str(),
            action: "resume",
            wanted: "paused",
        });
    }
    cgroup::open(cgroup_of(&state)?)?.freeze(false)?;
    state.status = status_after_thaw(&locked);
    locked.save(&state)
}

fn status_after_thaw(locked: &Locked) -> Status {
    if locked.dir.join(EXEC_FIFO).exists() {
        Status::Created
    } else {
        Status::Running
    }
}

/// The container's cgroup config, or an error saying it has none (a crashed create).
pub(crate) fn cgroup_of(state: &State) -> Result<&berth_cgroups::CgroupConfig> {
    state
        .cgroup
        .as_ref()
        .ok_or_else(|| RuntimeError::CorruptState {
            id: state.id.clone(),
            msg: "no cgroup recorded (its create did not finish)".into(),
        })
}
