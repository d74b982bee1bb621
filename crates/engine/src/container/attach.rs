//! `attach`: a front-end joins a running container's streams through its monitor's attach
//! socket (output from now on, stdin, resizes, then the exit code).

use std::os::unix::net::UnixStream;

use crate::container::start::Started;
use crate::engine::Engine;
use crate::error::{Error, Result};

impl Engine {
    pub fn attach(&self, what: &str) -> Result<Started> {
        let rec = self.db.find(what)?;
        self.require_running(&rec)?;
        let sock = self.paths.attach_socket(&rec.id);
        let stream =
            UnixStream::connect(&sock).map_err(|source| Error::Io { path: sock, source })?;
        Ok(Started {
            id: rec.id,
            pid: rec.state.pid,
            stream: Some(stream),
        })
    }
}
