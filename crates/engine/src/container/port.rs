//! `port`: a container's published ports. Publishing needs the bridge network (crate
//! berth-net); until it is wired no container has any, so this lists none.

use crate::engine::Engine;
use crate::error::Result;

/// One published port: `80/tcp -> 0.0.0.0:8080`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortBinding {
    pub container_port: String,
    pub host_ip: String,
    pub host_port: u16,
}

impl Engine {
    pub fn ports(&self, what: &str) -> Result<Vec<PortBinding>> {
        let _rec = self.db.find(what)?;
        Ok(Vec::new())
    }
}
