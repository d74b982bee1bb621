//! `stats`: one resource sample of a running container, from its cgroup.

use crate::engine::Engine;
use crate::error::Result;
use crate::stats::{sample, Stats};

/// A sample with the container it belongs to.
pub struct ContainerStats {
    pub id: String,
    pub name: String,
    pub stats: Stats,
}

impl Engine {
    pub fn stats(&self, what: &str) -> Result<ContainerStats> {
        let rec = self.db.find(what)?;
        self.require_running(&rec)?;
        Ok(ContainerStats {
            stats: sample(&format!("/berth/{}", rec.id))?,
            id: rec.id,
            name: rec.name,
        })
    }
}
