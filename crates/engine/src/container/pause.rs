//! `pause`/`unpause`: freeze and thaw every process of a running container.

use crate::engine::Engine;
use crate::error::{Error, Result};
use crate::records::Status;

impl Engine {
    pub fn pause(&self, what: &str) -> Result<String> {
        let (_lock, rec) = self.lock(what)?;
        self.require_running(&rec)?;
        self.runtime_of(&rec).pause(&rec.id)?;
        self.db.set_status(&rec.id, Status::Paused)?;
        Ok(rec.id)
    }

    pub fn unpause(&self, what: &str) -> Result<String> {
        let (_lock, rec) = self.lock(what)?;
        if self.live_status(&rec).0 != Status::Paused {
            return Err(Error::State {
                id: rec.name.clone(),
                reason: "is not paused".into(),
            });
        }
        self.runtime_of(&rec).resume(&rec.id)?;
        self.db.set_status(&rec.id, Status::Running)?;
        Ok(rec.id)
    }
}
