//! `run`: create + start; a container whose start fails is removed again, so a bad
//! command leaves nothing behind.

use crate::container::create::CreateRequest;
use crate::container::start::Started;
use crate::engine::Engine;
use crate::error::Result;

impl Engine {
    pub fn run(&self, req: &CreateRequest, attach: bool) -> Result<Started> {
        let id = self.create(req)?;
        match self.start(&id, attach) {
            Ok(s) => Ok(s),
            Err(e) => {
                let _ = self.remove(&id, true, true);
                Err(e)
            }
        }
    }
}
