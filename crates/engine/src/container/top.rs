//! `top`: the host's `ps` rows of every process in a running container.

use crate::engine::Engine;
use crate::error::Result;
use crate::top::{top, Top};

impl Engine {
    /// Host pids (and the other `ps` columns) of the container's processes.
    pub fn top(&self, what: &str, ps_args: &[String]) -> Result<Top> {
        let rec = self.db.find(what)?;
        self.require_running(&rec)?;
        let pids = self.runtime_of(&rec).pids(&rec.id)?;
        top(&pids, ps_args)
    }
}
