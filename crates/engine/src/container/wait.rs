//! `wait`: block until a container stops; its exit code.

use std::os::unix::net::UnixStream;

use crate::attach::{self, Kind};
use crate::engine::Engine;
use crate::error::Result;

impl Engine {
    pub fn wait(&self, what: &str) -> Result<i32> {
        let rec = self.db.find(what)?;
        if self.monitor_alive(&rec.id) {
            // The monitor's last frame carries the code, also for a --rm container whose
            // record is gone by then.
            if let Ok(mut s) = UnixStream::connect(self.paths.attach_socket(&rec.id)) {
                while let Ok(Some((kind, payload))) = attach::read_frame(&mut s) {
                    if kind == Kind::Exit {
                        self.wait_monitor(&rec.id);
                        return Ok(attach::i32_payload(&payload));
                    }
                }
            }
            // The monitor records the exit before it lets go of its lock.
            self.wait_monitor(&rec.id);
        }
        match self.db.get(&rec.id)? {
            Some(r) => Ok(self.live_status(&r).1),
            None => Ok(rec.state.exit_code),
        }
    }
}
