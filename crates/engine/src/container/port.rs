//! `port`: a container's published ports (`-p`, `-P`) while it runs, with the host ports
//! they got (see `crate::networking`).

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
        let rec = self.db.find(what)?;
        Ok(self
            .published_ports(&rec.id)?
            .into_iter()
            .map(|m| PortBinding {
                container_port: format!("{}/{}", m.container_port, m.proto),
                host_ip: m.host_ip.to_string(),
                host_port: m.host_port,
            })
            .collect())
    }
}
