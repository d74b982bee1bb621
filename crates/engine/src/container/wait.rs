//! `wait`: block until a container stops; its exit code.

use crate::engine::Engine;
use crate::error::Result;

impl Engine {
    pub fn wait(&self, what: &str) -> Result<i32> {
        let rec = self.db.find(what)?;
        // The monitor records the exit before it lets go of its lock.
        self.wait_monitor(&rec.id);
        match self.db.get(&rec.id)? {
            Some(r) => Ok(self.live_status(&r).1),
            // Removed on exit (--rm): nothing recorded the code.
            None => Ok(rec.state.exit_code),
        }
    }
}
