//! `logs`: a container's json-file log, optionally followed while it runs.

use std::io::Write;

use crate::engine::Engine;
use crate::error::Result;
use crate::logs::{read_logs, LogOptions};

impl Engine {
    pub fn logs(
        &self,
        what: &str,
        opts: &LogOptions,
        out: &mut dyn Write,
        err: &mut dyn Write,
    ) -> Result<()> {
        let rec = self.db.find(what)?;
        let id = rec.id.clone();
        read_logs(&self.paths.log_file(&id), opts, out, err, &|| {
            self.monitor_alive(&id)
        })
    }
}
