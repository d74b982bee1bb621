//! berth's networks: bridges, veth pairs, IPAM, published ports, name resolution.
//!
//! [`NetworkStore`] is the API: networks (create/list/inspect/remove/prune) and containers
//! on them (attach/connect/disconnect/detach/reconcile). [`netns`] makes the namespace
//! files containers join. Two helper processes exist, each started once and found again
//! by pid: the name server of a user network ([`dns::serve_main`]) and the port proxy of
//! a container that publishes ports ([`proxy::proxy_main`]); the `berth` binary runs them
//! as hidden subcommands.

pub mod dns;
mod error;
pub mod firewall;
mod helper;
pub mod hosts;
pub mod ipam;
mod netlink;
pub mod netns;
mod network;
pub mod ports;
pub mod proxy;
mod store;
pub mod veth;

pub use error::{Error, Result};
pub use helper::HelperCommand;
pub use ipam::Subnet;
pub use network::{
    AttachRequest, Attachment, ContainerOnNetwork, CreateOptions, InterfaceInfo, NetworkAttach,
    NetworkDetails, NetworkStore, Reconciled, DEFAULT_BRIDGE, DEFAULT_NETWORK, DEFAULT_SUBNET,
    PREDEFINED,
};
pub use ports::{parse_publish, parse_publish_all, PortMapping, Protocol};
pub use store::Network;
