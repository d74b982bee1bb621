//! Errors of the network crate: each names the network, container, address or path concerned.

use std::io;
use std::net::Ipv4Addr;
use std::path::PathBuf;

/// Result of the network crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong with networks.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{}: {source}", path.display())]
    Io { path: PathBuf, source: io::Error },
    #[error("network database {}: {source}", path.display())]
    Db {
        path: PathBuf,
        source: rusqlite::Error,
    },
    #[error("network {0}: no such network")]
    NetworkNotFound(String),
    #[error("network with name {0} already exists")]
    NetworkExists(String),
    #[error("invalid network name {0:?}: use letters, digits, '_', '.', '-' (starting with a letter or digit, at most 64)")]
    InvalidName(String),
    #[error("{0} is a pre-defined network and cannot be {1}")]
    Predefined(String, &'static str),
    #[error("invalid subnet {0:?}: want an IPv4 CIDR such as 172.20.0.0/24 (prefix 8 to 30)")]
    InvalidSubnet(String),
    #[error("invalid address {0:?}: want an IPv4 address")]
    InvalidAddress(String),
    #[error("subnet {subnet} overlaps with {other}")]
    SubnetOverlap { subnet: String, other: String },
    #[error("no free subnet left for a new network (all of 172.18.0.0/16 - 172.31.255.0/24 overlap existing networks or routes)")]
    NoFreeSubnet,
    #[error("gateway {gateway} is not a host address of subnet {subnet}")]
    GatewayOutsideSubnet { gateway: Ipv4Addr, subnet: String },
    #[error("network {network}: address {ip} is not in subnet {subnet}")]
    AddressOutsideSubnet {
        network: String,
        ip: Ipv4Addr,
        subnet: String,
    },
    #[error("network {network}: address {ip} is already in use")]
    AddressInUse { network: String, ip: Ipv4Addr },
    #[error("network {0}: no free address left")]
    NetworkFull(String),
    #[error("network {network} has active endpoints ({containers}); disconnect them first")]
    NetworkInUse { network: String, containers: String },
    #[error("container {container} is already connected to network {network}")]
    AlreadyConnected { container: String, network: String },
    #[error("container {container} is not connected to network {network}")]
    NotConnected { container: String, network: String },
    #[error("invalid port publication {spec:?}: {reason}")]
    InvalidPublish { spec: String, reason: String },
    #[error("port {proto} {host_ip}:{host_port} is already published by container {container}")]
    PortAllocated {
        proto: String,
        host_ip: Ipv4Addr,
        host_port: u16,
        container: String,
    },
    #[error("cannot publish port {proto} {host_ip}:{host_port}: {reason}")]
    PortBind {
        proto: String,
        host_ip: Ipv4Addr,
        host_port: u16,
        reason: String,
    },
    #[error("ports can only be published from a container on a bridge network")]
    PortsNeedNetwork,
    #[error("netlink: {what}: {reason}")]
    Netlink { what: String, reason: String },
    #[error("network namespace {}: {what}: {source}", path.display())]
    Netns {
        path: PathBuf,
        what: &'static str,
        source: io::Error,
    },
    #[error("nftables: {0}")]
    Nft(String),
    #[error("{what}: {reason}")]
    Helper { what: String, reason: String },
}

/// Attach a path to an `io::Result`.
pub(crate) trait IoContext<T> {
    fn at(self, path: impl Into<PathBuf>) -> Result<T>;
}

impl<T> IoContext<T> for io::Result<T> {
    fn at(self, path: impl Into<PathBuf>) -> Result<T> {
        self.map_err(|source| Error::Io {
            path: path.into(),
            source,
        })
    }
}
