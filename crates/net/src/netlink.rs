//! rtnetlink requests: bridges, veth pairs, addresses, routes, in berth's own network
//! namespace or in a container's. The rtnetlink crate is async; one current-thread tokio
//! runtime per [`Netlink`] drives it (no threads of its own, microseconds to make).

use std::fs::File;
use std::net::Ipv4Addr;
use std::os::fd::AsRawFd;
use std::path::Path;

use futures_util::TryStreamExt;
use nix::sched::CloneFlags;
use rtnetlink::packet_route::link::{InfoData, InfoKind, InfoVeth, LinkAttribute};
use rtnetlink::packet_route::route::{RouteAddress, RouteAttribute};
use rtnetlink::{
    Handle, LinkBridge, LinkMessageBuilder, LinkUnspec, LinkVeth, RouteMessageBuilder,
};

use crate::error::{Error, Result};
use crate::ipam::Subnet;

/// A route of the namespace's main table: its destination and outgoing interface index.
pub(crate) struct Route {
    pub dst: Subnet,
    pub oif: Option<u32>,
}

pub(crate) struct Netlink {
    rt: tokio::runtime::Runtime,
    /// A socket in the namespace of the calling thread at [`Netlink::open`].
    host: Handle,
}

const ENODEV: i32 = 19;
const EEXIST: i32 = 17;

fn nl_err(what: impl Into<String>) -> impl FnOnce(rtnetlink::Error) -> Error {
    let what = what.into();
    move |e| Error::Netlink {
        what,
        reason: match &e {
            rtnetlink::Error::NetlinkError(m) => match m.code {
                Some(c) => std::io::Error::from_raw_os_error(-c.get()).to_string(),
                None => e.to_string(),
            },
            _ => e.to_string(),
        },
    }
}

fn errno_of(e: &rtnetlink::Error) -> Option<i32> {
    match e {
        rtnetlink::Error::NetlinkError(m) => m.code.map(|c| -c.get()),
        _ => None,
    }
}

impl Netlink {
    pub fn open() -> Result<Netlink> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_io()
            .build()
            .map_err(|e| Error::Netlink {
                what: "start the netlink runtime".into(),
                reason: e.to_string(),
            })?;
        let host = {
            let _guard = rt.enter();
            let (conn, handle, _) = rtnetlink::new_connection().map_err(|e| Error::Netlink {
                what: "open a netlink socket".into(),
                reason: e.to_string(),
            })?;
            rt.spawn(conn);
            handle
        };
        Ok(Netlink { rt, host })
    }

    /// A netlink socket inside the namespace `netns` (a socket belongs to the namespace
    /// it was made in: a short-lived thread enters the namespace, makes it and ends; the
    /// calling thread never changes namespace).
    pub fn handle_in(&self, netns: &File, netns_path: &Path) -> Result<Handle> {
        let rt = self.rt.handle().clone();
        std::thread::scope(|s| {
            s.spawn(|| {
                nix::sched::setns(netns, CloneFlags::CLONE_NEWNET).map_err(|e| Error::Netns {
                    path: netns_path.to_path_buf(),
                    what: "enter",
                    source: e.into(),
                })?;
                let _guard = rt.enter();
                let (conn, handle, _) =
                    rtnetlink::new_connection().map_err(|source| Error::Netns {
                        path: netns_path.to_path_buf(),
                        what: "open a netlink socket in it",
                        source,
                    })?;
                rt.spawn(conn);
                Ok(handle)
            })
            .join()
            .unwrap_or_else(|_| {
                Err(Error::Netlink {
                    what: format!("enter {}", netns_path.display()),
                    reason: "thread panicked".into(),
                })
            })
        })
    }

    pub fn host(&self) -> &Handle {
        &self.host
    }

    pub fn block_on<F: std::future::Future>(&self, f: F) -> F::Output {
        self.rt.block_on(f)
    }
}

pub(crate) async fn link_index(h: &Handle, name: &str) -> Result<Option<u32>> {
    let mut links = h.link().get().match_name(name.to_string()).execute();
    match links.try_next().await {
        Ok(Some(msg)) => Ok(Some(msg.header.index)),
        Ok(None) => Ok(None),
        Err(e) if errno_of(&e) == Some(ENODEV) => Ok(None),
        Err(e) => Err(nl_err(format!("look up link {name}"))(e)),
    }
}

/// The name of the link with index `index`, if there is one.
pub(crate) async fn link_name(h: &Handle, index: u32) -> Option<String> {
    let mut links = h.link().get().match_index(index).execute();
    let msg = links.try_next().await.ok()??;
    msg.attributes.into_iter().find_map(|a| match a {
        LinkAttribute::IfName(n) => Some(n),
        _ => None,
    })
}

/// Make a bridge with `gateway/prefix` on it and bring it up. An existing bridge of that
/// name is an error (EEXIST), so a half-made network is never adopted by accident. The MAC
/// is set explicitly: otherwise the bridge takes its lowest port's and changes when that
/// container leaves, and the others' ARP entries for the gateway go stale for seconds.
pub(crate) async fn create_bridge(
    h: &Handle,
    name: &str,
    mac: [u8; 6],
    gateway: Ipv4Addr,
    prefix: u8,
) -> Result<u32> {
    h.link()
        .add(LinkBridge::new(name).address(mac.to_vec()).build())
        .execute()
        .await
        .map_err(nl_err(format!("create bridge {name}")))?;
    let idx = link_index(h, name).await?.ok_or_else(|| Error::Netlink {
        what: format!("create bridge {name}"),
        reason: "bridge vanished".into(),
    })?;
    h.address()
        .add(idx, gateway.into(), prefix)
        .execute()
        .await
        .map_err(nl_err(format!("add {gateway}/{prefix} to {name}")))?;
    h.link()
        .set(LinkUnspec::new_with_index(idx).up().build())
        .execute()
        .await
        .map_err(nl_err(format!("bring up {name}")))?;
    Ok(idx)
}

/// Delete a link by name; a link that is already gone is fine.
pub(crate) async fn delete_link(h: &Handle, name: &str) -> Result<()> {
    let Some(idx) = link_index(h, name).await? else {
        return Ok(());
    };
    match h.link().del(idx).execute().await {
        Ok(()) => Ok(()),
        Err(e) if errno_of(&e) == Some(ENODEV) => Ok(()),
        Err(e) => Err(nl_err(format!("delete link {name}"))(e)),
    }
}

/// One request makes both ends: `host_name` enslaved to the bridge and up, the peer made
/// directly inside the container's namespace as `peer_name` with `peer_mac`.
pub(crate) async fn create_veth(
    h: &Handle,
    host_name: &str,
    bridge_index: u32,
    peer_name: &str,
    peer_mac: [u8; 6],
    netns: &File,
) -> Result<()> {
    let peer = LinkMessageBuilder::<LinkUnspec>::new()
        .name(peer_name.to_string())
        .address(peer_mac.to_vec())
        .setns_by_fd(netns.as_raw_fd())
        .build();
    let msg = LinkMessageBuilder::<LinkVeth>::new_with_info_kind(InfoKind::Veth)
        .name(host_name.to_string())
        .controller(bridge_index)
        .up()
        .set_info_data(InfoData::Veth(InfoVeth::Peer(peer)))
        .build();
    h.link().add(msg).execute().await.map_err(|e| {
        if errno_of(&e) == Some(EEXIST) {
            Error::Netlink {
                what: format!("create veth {host_name}"),
                reason: format!("an interface named {host_name} or {peer_name} already exists"),
            }
        } else {
            nl_err(format!("create veth {host_name}"))(e)
        }
    })
}

/// Inside the container: bring `ifname` up with `ip/prefix` and (when `gateway` is given)
/// a default route through it.
pub(crate) async fn configure_interface(
    h: &Handle,
    ifname: &str,
    ip: Ipv4Addr,
    prefix: u8,
    gateway: Option<Ipv4Addr>,
) -> Result<()> {
    let idx = link_index(h, ifname).await?.ok_or_else(|| Error::Netlink {
        what: format!("configure {ifname}"),
        reason: "no such interface in the container".into(),
    })?;
    h.address()
        .add(idx, ip.into(), prefix)
        .execute()
        .await
        .map_err(nl_err(format!("add {ip}/{prefix} to {ifname}")))?;
    h.link()
        .set(LinkUnspec::new_with_index(idx).up().build())
        .execute()
        .await
        .map_err(nl_err(format!("bring up {ifname}")))?;
    if let Some(gw) = gateway {
        let route = RouteMessageBuilder::<Ipv4Addr>::new()
            .gateway(gw)
            .output_interface(idx)
            .build();
        h.route()
            .add(route)
            .execute()
            .await
            .map_err(nl_err(format!("add default route via {gw}")))?;
    }
    Ok(())
}

pub(crate) async fn set_up(h: &Handle, ifname: &str) -> Result<()> {
    let idx = link_index(h, ifname).await?.ok_or_else(|| Error::Netlink {
        what: format!("bring up {ifname}"),
        reason: "no such interface".into(),
    })?;
    h.link()
        .set(LinkUnspec::new_with_index(idx).up().build())
        .execute()
        .await
        .map_err(nl_err(format!("bring up {ifname}")))
}

/// The names of every link of the namespace.
pub(crate) async fn link_names(h: &Handle) -> Result<Vec<String>> {
    let mut out = Vec::new();
    let mut links = h.link().get().execute();
    while let Some(msg) = links.try_next().await.map_err(nl_err("list links"))? {
        for a in msg.attributes {
            if let LinkAttribute::IfName(n) = a {
                out.push(n);
            }
        }
    }
    Ok(out)
}

/// The IPv4 routes of the main table that have a destination prefix (not the default).
pub(crate) async fn routes(h: &Handle) -> Result<Vec<Route>> {
    let mut out = Vec::new();
    let mut routes = h
        .route()
        .get(RouteMessageBuilder::<Ipv4Addr>::new().build())
        .execute();
    while let Some(msg) = routes.try_next().await.map_err(nl_err("list routes"))? {
        if msg.header.table != 254 || msg.header.destination_prefix_length == 0 {
            continue;
        }
        let mut dst = None;
        let mut oif = None;
        for a in &msg.attributes {
            match a {
                RouteAttribute::Destination(RouteAddress::Inet(ip)) => dst = Some(*ip),
                RouteAttribute::Oif(i) => oif = Some(*i),
                _ => {}
            }
        }
        if let Some(ip) = dst {
            out.push(Route {
                dst: Subnet::new(ip, msg.header.destination_prefix_length),
                oif,
            });
        }
    }
    Ok(out)
}
