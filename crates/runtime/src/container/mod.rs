//! The lifecycle verbs, one file each.

pub mod create;
pub mod delete;
pub mod events;
pub mod exec;
pub mod kill;
pub mod list;
pub mod pause;
pub mod ps;
pub mod run;
pub mod start;
pub mod state;
pub mod update;

use crate::error::{Result, RuntimeError};
use crate::spec::Bundle;
use crate::state::OCI_VERSION;
use std::collections::HashMap;

/// The state document hooks read on stdin.
pub fn hook_state(id: &str, status: &str, pid: i32, bundle: &Bundle) -> Result<Vec<u8>> {
    let annotations = bundle.spec.annotations().clone().unwrap_or_default();
    state_json(id, status, Some(pid), &bundle.dir, &annotations)
}

pub fn state_json(
    id: &str,
    status: &str,
    pid: Option<i32>,
    bundle: &std::path::Path,
    annotations: &HashMap<String, String>,
) -> Result<Vec<u8>> {
    let mut v = serde_json::json!({
        "ociVersion": OCI_VERSION,
        "id": id,
        "status": status,
        "bundle": bundle,
    });
    if let Some(pid) = pid {
        v["pid"] = pid.into();
    }
    if !annotations.is_empty() {
        v["annotations"] = serde_json::to_value(annotations).unwrap_or_default();
    }
    serde_json::to_vec(&v).map_err(|e| RuntimeError::Init(e.to_string()))
}

/// Signal by name (KILL, SIGKILL, sigkill) or number, as runc and kill(1) take them.
pub fn parse_signal(s: &str) -> Result<nix::sys::signal::Signal> {
    use std::str::FromStr;
    let bad = || RuntimeError::InvalidConfig(format!("unknown signal {s:?}"));
    if let Ok(n) = s.parse::<i32>() {
        return nix::sys::signal::Signal::try_from(n).map_err(|_| bad());
    }
    let upper = s.to_ascii_uppercase();
    let name = if upper.starts_with("SIG") {
        upper
    } else {
        format!("SIG{upper}")
    };
    nix::sys::signal::Signal::from_str(&name).map_err(|_| bad())
}

#[cfg(test)]
mod tests {
    use super::*;
    use nix::sys::signal::Signal;

    #[test]
    fn signals() {
        assert_eq!(parse_signal("9").ok(), Some(Signal::SIGKILL));
        assert_eq!(parse_signal("KILL").ok(), Some(Signal::SIGKILL));
        assert_eq!(parse_signal("sigterm").ok(), Some(Signal::SIGTERM));
        assert_eq!(parse_signal("SIGUSR1").ok(), Some(Signal::SIGUSR1));
        assert!(parse_signal("NOPE").is_err());
        assert!(parse_signal("99").is_err());
    }
}
