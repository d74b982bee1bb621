//! `kill`: a signal to a running container's init.

use std::str::FromStr;

use nix::sys::signal::Signal;

use crate::engine::Engine;
use crate::error::{Error, Result};

/// A signal as docker accepts it ("KILL", "SIGKILL", "9") in the runtime's spelling.
pub fn parse_signal(s: &str) -> Result<String> {
    let bad = || Error::InvalidOption(format!("invalid signal: {s}"));
    if let Ok(n) = s.parse::<i32>() {
        return Signal::try_from(n)
            .map(|_| n.to_string())
            .map_err(|_| bad());
    }
    let up = s.to_ascii_uppercase();
    let name = if up.starts_with("SIG") {
        up
    } else {
        format!("SIG{up}")
    };
    Signal::from_str(&name).map(|_| name).map_err(|_| bad())
}

impl Engine {
    /// Send `signal` (default SIGKILL) to a running container. Its id.
    pub fn kill(&self, what: &str, signal: Option<&str>) -> Result<String> {
        let sig = parse_signal(signal.unwrap_or("SIGKILL"))?;
        let (_lock, rec) = self.lock(what)?;
        self.require_running(&rec)?;
        self.runtime_of(&rec).kill(&rec.id, &sig)?;
        Ok(rec.id)
    }
}
