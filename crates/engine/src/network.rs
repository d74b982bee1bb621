//! A container's network mode: `--network none|host|bridge|NAME|container:NAME`. Bridge
//! and named networks are crate berth-net's (wired in `crate::networking`).

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// The name of the network containers join when `--network` isn't given.
pub const DEFAULT_NETWORK: &str = "bridge";

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(into = "String", try_from = "String")]
pub enum NetworkMode {
    /// A network namespace of its own with only `lo`.
    None,
    /// The host's network namespace.
    Host,
    /// A network by name; "bridge" is the default network.
    Bridge(String),
    /// Another container's network namespace (name or id as given).
    Container(String),
}

impl NetworkMode {
    /// `--network VALUE` as docker spells it ("default" is the default network).
    pub fn parse(s: &str) -> Result<NetworkMode> {
        Ok(match s {
            "none" => NetworkMode::None,
            "host" => NetworkMode::Host,
            "" => return Err(Error::InvalidOption("--network: empty network name".into())),
            "default" | DEFAULT_NETWORK => NetworkMode::Bridge(DEFAULT_NETWORK.into()),
            _ => match s.strip_prefix("container:") {
                Some("") => {
                    return Err(Error::InvalidOption(
                        "--network container: needs a container name or id".into(),
                    ))
                }
                Some(c) => NetworkMode::Container(c.to_string()),
                None => NetworkMode::Bridge(s.to_string()),
            },
        })
    }
}

impl fmt::Display for NetworkMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NetworkMode::None => f.write_str("none"),
            NetworkMode::Host => f.write_str("host"),
            NetworkMode::Bridge(n) => f.write_str(n),
            NetworkMode::Container(c) => write!(f, "container:{c}"),
        }
    }
}

impl From<NetworkMode> for String {
    fn from(m: NetworkMode) -> String {
        m.to_string()
    }
}

impl TryFrom<String> for NetworkMode {
    type Error = Error;
    fn try_from(s: String) -> Result<NetworkMode> {
        NetworkMode::parse(&s)
    }
}
