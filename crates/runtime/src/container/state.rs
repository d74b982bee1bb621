//! `state`: the runtime-spec state of one container.

use crate::error::{Context, Result, RuntimeError};
use crate::state::{Locked, State, StateRoot, Status, CONFIG_FILE, STATE_FILE};
use oci_spec::runtime::Spec;

/// Reads a container's state without taking its lock (state.json is replaced atomically),
/// so `state` and `list` never wait behind a slow create or delete.
pub fn read(root: &StateRoot, id: &str) -> Result<State> {
    crate::state::validate_id(id)?;
    let dir = root.dir(id);
    let path = dir.join(STATE_FILE);
    match std::fs::read(&path) {
        Ok(bytes) => {
            let mut st: State =
                serde_json::from_slice(&bytes).map_err(|e| RuntimeError::CorruptState {
                    id: id.to_string(),
                    msg: e.to_string(),
                })?;
            st.refresh();
            Ok(st)
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            if dir.is_dir() {
                // The directory exists but create hasn't written state yet.
                Ok(State {
                    id: id.to_string(),
                    status: Status::Creating,
                    pid: 0,
                    pid_start: 0,
                    bundle: Default::default(),
                    rootfs: Default::default(),
                    annotations: Default::default(),
                    created: String::new(),
                    cgroup: None,
                    own_pid_ns: false,
                })
            } else {
                Err(RuntimeError::NotFound(id.to_string()))
            }
        }
        Err(e) => Err(e).at(&path),
    }
}

pub fn oci_json(state: &State) -> Result<String> {
    serde_json::to_string_pretty(&state.oci()).map_err(|e| RuntimeError::CorruptState {
        id: state.id.clone(),
        msg: e.to_string(),
    })
}

/// The config.json the container was created with.
pub fn stored_spec(locked: &Locked, id: &str) -> Result<Spec> {
    let path = locked.dir.join(CONFIG_FILE);
    let raw = std::fs::read(&path).at(&path)?;
    crate::spec::parse(&raw).map_err(|msg| RuntimeError::CorruptState {
        id: id.to_string(),
        msg,
    })
}
