//! `restart`: stop (with the timeout) then start.

use crate::engine::Engine;
use crate::error::Result;

impl Engine {
    pub fn restart(&self, what: &str, timeout: Option<u32>) -> Result<String> {
        let (_lock, rec) = self.lock(what)?;
        self.stop_locked(&rec, timeout)?;
        let rec = self.db.get(&rec.id)?.unwrap_or(rec);
        self.start_locked(&rec, false)?;
        self.db.bump_restart_count(&rec.id)?;
        Ok(rec.id)
    }
}
