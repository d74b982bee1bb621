//! A container's link to a bridge: a veth pair, the host end (`bth<12 hex>`) enslaved to
//! the bridge, the other end made inside the container's namespace as eth<N> with a MAC
//! derived from its address (as docker: 02:42 + the IPv4 address).

use std::fs::File;
use std::net::Ipv4Addr;

use rtnetlink::Handle;

use crate::error::{Error, Result};
use crate::netlink;
use crate::store::{Endpoint, Network};

/// Prefix of every host-side veth berth makes (reconciliation finds strays by it).
pub const HOST_VETH_PREFIX: &str = "bth";

/// The host end's name for a container on a network: stable, so a crash between the
/// lease and the link leaves a name reconciliation can find.
pub fn host_veth_name(container_id: &str, network_id: &str) -> String {
    // FNV-1a, 64 bits: short names, no collisions in practice; the endpoint table's
    // unique constraint catches one if it ever happens.
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in container_id.bytes().chain([b'/']).chain(network_id.bytes()) {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    format!("{HOST_VETH_PREFIX}{:012x}", h & 0xffff_ffff_ffff)
}

pub fn is_host_veth_name(name: &str) -> bool {
    name.len() == HOST_VETH_PREFIX.len() + 12
        && name.starts_with(HOST_VETH_PREFIX)
        && name[HOST_VETH_PREFIX.len()..]
            .bytes()
            .all(|b| b.is_ascii_hexdigit())
}

fn mac_bytes(ip: Ipv4Addr) -> [u8; 6] {
    let o = ip.octets();
    [0x02, 0x42, o[0], o[1], o[2], o[3]]
}

pub fn mac_for(ip: Ipv4Addr) -> String {
    mac_bytes(ip)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

/// Make the pair and configure the container end (address, up, default route when
/// `default_route`).
pub(crate) async fn plug(
    host: &Handle,
    container: &Handle,
    bridge_index: u32,
    network: &Network,
    ep: &Endpoint,
    netns: &File,
    default_route: bool,
) -> Result<()> {
    let create = || {
        netlink::create_veth(
            host,
            &ep.host_veth,
            bridge_index,
            &ep.ifname,
            mac_bytes(ep.ip),
            netns,
        )
    };
    if let Err(e) = create().await {
        // The same container on the same network a moment ago: its namespace (and veth)
        // may still be in the kernel's asynchronous clean-up. The lease is ours now, so
        // the old link is stale: delete it and try once more.
        if netlink::link_index(host, &ep.host_veth).await?.is_none() {
            return Err(e);
        }
        netlink::delete_link(host, &ep.host_veth).await?;
        create().await?;
    }
    netlink::configure_interface(
        container,
        &ep.ifname,
        ep.ip,
        network.subnet.prefix,
        default_route.then_some(network.gateway),
    )
    .await
}

/// Delete the host end (the kernel deletes its peer with it).
pub(crate) async fn unplug(host: &Handle, host_veth: &str) -> Result<()> {
    if !is_host_veth_name(host_veth) {
        return Err(Error::Netlink {
            what: format!("delete {host_veth}"),
            reason: "not a berth veth name".into(),
        });
    }
    netlink::delete_link(host, host_veth).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_macs() {
        let n = host_veth_name("abc", "def");
        assert_eq!(n.len(), 15);
        assert!(is_host_veth_name(&n));
        assert_ne!(n, host_veth_name("abc", "deg"));
        assert!(!is_host_veth_name("veth1234"));
        assert_eq!(mac_for(Ipv4Addr::new(172, 17, 0, 2)), "02:42:ac:11:00:02");
    }
}
