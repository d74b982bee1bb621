//! [`NetworkStore`]: networks (create, list, inspect, remove, prune) and containers on them
//! (attach, connect, disconnect, detach, reconcile).
//!
//! A network is a record (`net_networks`) plus, once realized in the namespace berth runs
//! in, a bridge with the gateway address, its firewall elements and (user networks) its
//! name server process. `create` realizes at once; the default network `bridge` is only a
//! record until the first container attaches; a network whose bridge vanished (reboot) is
//! realized again by the next attach. Every step undoes what it did when a later one fails.

use std::fs::File;
use std::io::Read;
use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};

use nix::fcntl::{Flock, FlockArg};

use crate::dns;
use crate::error::{Error, IoContext, Result};
use crate::firewall;
use crate::helper::HelperCommand;
use crate::hosts;
use crate::ipam::{self, Subnet};
use crate::netlink::{self, Netlink};
use crate::netns;
use crate::ports::PortMapping;
use crate::proxy;
use crate::store::{Db, Endpoint, Network, PortRecord};
use crate::veth;

/// The default network, as docker's: name, bridge, subnet.
pub const DEFAULT_NETWORK: &str = "bridge";
pub const DEFAULT_BRIDGE: &str = "berth0";
pub const DEFAULT_SUBNET: &str = "172.17.0.0/16";
/// Names `berth run --network` takes that are not networks of this store.
pub const PREDEFINED: [&str; 3] = ["bridge", "host", "none"];

/// `berth network create` options.
#[derive(Debug, Clone, Default)]
pub struct CreateOptions {
    pub name: String,
    /// CIDR; a free /24 of 172.18.0.0-172.31.255.0 when None.
    pub subnet: Option<String>,
    /// A host address of the subnet; its first one when None.
    pub gateway: Option<String>,
}

/// One network a container joins.
#[derive(Debug, Clone, Default)]
pub struct NetworkAttach {
    /// Network name or id ("bridge" = the default network).
    pub name: String,
    /// --network-alias: more names the container answers to on this network.
    pub aliases: Vec<String>,
    /// --ip: a fixed address (must be free and in the subnet).
    pub ip: Option<Ipv4Addr>,
}

/// Everything `berth run` asks of the network layer for one container.
#[derive(Debug, Clone)]
pub struct AttachRequest<'a> {
    pub container_id: &'a str,
    pub container_name: &'a str,
    pub hostname: &'a str,
    /// The container's network namespace file (see [`crate::netns::create`]).
    pub netns: &'a Path,
    /// First one carries the default route; empty = no interfaces (only files).
    pub networks: Vec<NetworkAttach>,
    /// -p / -P (host_port 0 = any free port).
    pub ports: Vec<PortMapping>,
    /// --dns: resolv.conf servers (default network), or the name server's upstream for
    /// this container (user networks), as docker.
    pub dns: Vec<IpAddr>,
    /// --add-host
    pub extra_hosts: Vec<(String, IpAddr)>,
}

#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct InterfaceInfo {
    pub network: String,
    /// Inside the container.
    pub ifname: String,
    pub ip: Ipv4Addr,
    pub prefix: u8,
    pub gateway: Ipv4Addr,
    pub mac: String,
}

/// What the engine writes into the container (`hosts` -> /etc/hosts, ...) and records.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Attachment {
    pub interfaces: Vec<InterfaceInfo>,
    pub hosts: String,
    pub resolv_conf: String,
    pub hostname: String,
    /// The published ports with their host ports resolved.
    pub ports: Vec<PortMapping>,
}

/// A network with the containers on it (`network inspect`).
#[derive(Debug, Clone, serde::Serialize)]
pub struct NetworkDetails {
    #[serde(flatten)]
    pub network: Network,
    pub containers: Vec<ContainerOnNetwork>,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct ContainerOnNetwork {
    pub id: String,
    pub name: String,
    pub ip: Ipv4Addr,
    pub prefix: u8,
    pub mac: String,
    pub aliases: Vec<String>,
}

/// What [`NetworkStore::reconcile`] cleaned up.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Reconciled {
    pub containers: Vec<String>,
    pub stray_links: Vec<String>,
    pub name_servers_restarted: Vec<String>,
}

pub struct NetworkStore {
    root: PathBuf,
    run_root: PathBuf,
    db: Mutex<Db>,
    helper: HelperCommand,
    dns_upstream: Option<Vec<IpAddr>>,
    host_resolv_conf: PathBuf,
}

impl NetworkStore {
    /// Open the store of the engine at `root` (database) / `run_root` (namespace files,
    /// locks). Helpers are started from the running executable.
    pub fn open(root: &Path, run_root: &Path) -> Result<NetworkStore> {
        Ok(NetworkStore {
            root: root.to_path_buf(),
            run_root: run_root.to_path_buf(),
            db: Mutex::new(Db::open(root)?),
            helper: HelperCommand::current_exe()?,
            dns_upstream: None,
            host_resolv_conf: PathBuf::from("/etc/resolv.conf"),
        })
    }

    /// Start helpers with another command (tests; an engine whose executable lacks the
    /// hidden subcommands).
    pub fn with_helper(mut self, helper: HelperCommand) -> Self {
        self.helper = helper;
        self
    }

    /// Where name servers send the questions they can't answer (default: the nameservers
    /// of the host's resolv.conf). An empty list makes them answer NXDOMAIN.
    pub fn with_dns_upstream(mut self, servers: Vec<IpAddr>) -> Self {
        self.dns_upstream = Some(servers);
        self
    }

    /// The host resolv.conf containers' files are derived from (default /etc/resolv.conf).
    pub fn with_host_resolv_conf(mut self, path: &Path) -> Self {
        self.host_resolv_conf = path.to_path_buf();
        self
    }

    /// The database, locked. Never hold the guard across another call of this (a
    /// temporary in an `if let`/`match`/`for` head lives through the whole block).
    fn db(&self) -> MutexGuard<'_, Db> {
        match self.db.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        }
    }

    /// Serializes realizing and removing networks between berth processes.
    fn lock(&self) -> Result<Flock<File>> {
        std::fs::create_dir_all(&self.run_root).at(&self.run_root)?;
        let path = self.run_root.join("networks.lock");
        let f = File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .at(&path)?;
        Flock::lock(f, FlockArg::LockExclusive).map_err(|(_, e)| Error::Io {
            path,
            source: e.into(),
        })
    }

    fn host_resolv(&self) -> String {
        std::fs::read_to_string(&self.host_resolv_conf).unwrap_or_default()
    }

    fn upstream(&self) -> Vec<IpAddr> {
        match &self.dns_upstream {
            Some(s) => s.clone(),
            None => hosts::host_nameservers(&self.host_resolv())
                .into_iter()
                .filter(|ip| !ip.is_loopback())
                .collect(),
        }
    }

    // ---- networks -------------------------------------------------------------------

    /// `network create`: record, bridge, firewall elements, name server; all or nothing.
    pub fn create(&self, opts: &CreateOptions) -> Result<Network> {
        validate_name(&opts.name)?;
        if PREDEFINED.contains(&opts.name.as_str()) {
            return Err(if opts.name == DEFAULT_NETWORK {
                Error::NetworkExists(opts.name.clone())
            } else {
                Error::Predefined(opts.name.clone(), "created")
            });
        }
        let _lock = self.lock()?;
        let nl = Netlink::open()?;
        if self.db().find_network(&opts.name)?.is_some() {
            return Err(Error::NetworkExists(opts.name.clone()));
        }
        let taken = self.taken_subnets(&nl)?;
        let subnet = match &opts.subnet {
            Some(s) => {
                let subnet: Subnet = s.parse()?;
                if let Some((other, what)) = taken.iter().find(|(t, _)| t.overlaps(&subnet)) {
                    return Err(Error::SubnetOverlap {
                        subnet: subnet.to_string(),
                        other: format!("{what} ({other})"),
                    });
                }
                subnet
            }
            None => ipam::pick_subnet(&taken.iter().map(|(s, _)| *s).collect::<Vec<_>>())?,
        };
        let gateway = match &opts.gateway {
            Some(g) => {
                let gw = ipam::parse_ipv4(g)?;
                if !subnet.is_host(gw) {
                    return Err(Error::GatewayOutsideSubnet {
                        gateway: gw,
                        subnet: subnet.to_string(),
                    });
                }
                gw
            }
            None => subnet.default_gateway(),
        };
        let id = random_id()?;
        let network = Network {
            bridge: format!("br-{}", &id[..12]),
            id,
            name: opts.name.clone(),
            subnet,
            gateway,
            created: now(),
            dns: true,
        };
        self.db().insert_network(&network)?;
        if let Err(e) = self.realize(&nl, &network) {
            let _ = self.db().delete_network(&network.id);
            return Err(e);
        }
        Ok(network)
    }

    /// Subnets a new network must not overlap: other networks' and the routes of this
    /// namespace (a LAN the host is on), each with a description for the error.
    fn taken_subnets(&self, nl: &Netlink) -> Result<Vec<(Subnet, String)>> {
        let mut taken: Vec<(Subnet, String)> = self
            .db()
            .networks()?
            .into_iter()
            .map(|n| (n.subnet, format!("network {}", n.name)))
            .collect();
        for r in nl.block_on(netlink::routes(nl.host()))? {
            if !taken.iter().any(|(s, _)| *s == r.dst) {
                let dev = r
                    .oif
                    .and_then(|i| nl.block_on(netlink::link_name(nl.host(), i)))
                    .map(|name| format!(" on {name}"))
                    .unwrap_or_default();
                taken.push((r.dst, format!("a route of the host{dev}")));
            }
        }
        Ok(taken)
    }

    /// Bridge + forwarding + firewall + name server, undoing all on failure. The caller
    /// holds the lock.
    fn realize(&self, nl: &Netlink, n: &Network) -> Result<u32> {
        let idx = nl.block_on(netlink::create_bridge(
            nl.host(),
            &n.bridge,
            bridge_mac(&n.id),
            n.gateway,
            n.subnet.prefix,
        ));
        let idx = match idx {
            Ok(i) => i,
            Err(e) => {
                let _ = nl.block_on(netlink::delete_link(nl.host(), &n.bridge));
                return Err(e);
            }
        };
        let rest = enable_forwarding()
            .and_then(|()| firewall::add_network(&n.bridge, &n.subnet))
            .and_then(|()| if n.dns { self.start_dns(n) } else { Ok(()) });
        if let Err(e) = rest {
            firewall::remove_network(&n.bridge, &n.subnet);
            let _ = nl.block_on(netlink::delete_link(nl.host(), &n.bridge));
            return Err(e);
        }
        Ok(idx)
    }

    fn start_dns(&self, n: &Network) -> Result<()> {
        let old = self.db().dns_pid(&n.id)?;
        if let Some(pid) = old {
            dns::stop(pid, &n.id);
        }
        let pid = dns::start(&self.helper, &self.root, n, &self.upstream())?;
        self.db().set_dns_pid(&n.id, Some(pid))
    }

    /// The bridge index of a network, realizing it first if needed (default network,
    /// after a reboot); restarts a name server that died.
    fn ensure_up(&self, nl: &Netlink, n: &Network) -> Result<u32> {
        let dns_ok = |s: &Self| -> Result<bool> {
            Ok(!n.dns
                || s.db()
                    .dns_pid(&n.id)?
                    .is_some_and(|pid| dns::is_running(pid, &n.id)))
        };
        if let Some(idx) = nl.block_on(netlink::link_index(nl.host(), &n.bridge))? {
            if dns_ok(self)? {
                return Ok(idx);
            }
        }
        let _lock = self.lock()?;
        match nl.block_on(netlink::link_index(nl.host(), &n.bridge))? {
            Some(idx) => {
                if !dns_ok(self)? {
                    self.start_dns(n)?;
                }
                Ok(idx)
            }
            None => {
                if n.name == DEFAULT_NETWORK {
                    let taken = self.taken_subnets(nl)?;
                    if let Some((_, what)) = taken
                        .iter()
                        .find(|(s, what)| s.overlaps(&n.subnet) && *what != "network bridge")
                    {
                        return Err(Error::SubnetOverlap {
                            subnet: n.subnet.to_string(),
                            other: what.clone(),
                        });
                    }
                }
                self.realize(nl, n)
            }
        }
    }

    fn default_network(&self) -> Result<Network> {
        let found = self.db().find_network(DEFAULT_NETWORK)?;
        if let Some(n) = found {
            return Ok(n);
        }
        let subnet: Subnet = DEFAULT_SUBNET.parse()?;
        let n = Network {
            id: random_id()?,
            name: DEFAULT_NETWORK.into(),
            bridge: DEFAULT_BRIDGE.into(),
            subnet,
            gateway: subnet.default_gateway(),
            created: now(),
            dns: false,
        };
        let inserted = self.db().insert_network(&n);
        match inserted {
            Ok(()) => Ok(n),
            // Another berth made it meanwhile.
            Err(Error::NetworkExists(_)) => self
                .db()
                .find_network(DEFAULT_NETWORK)?
                .ok_or_else(|| Error::NetworkNotFound(DEFAULT_NETWORK.into())),
            Err(e) => Err(e),
        }
    }

    /// A network by name, id or unique id prefix ("bridge" always exists).
    pub fn get(&self, name_or_id: &str) -> Result<Network> {
        if name_or_id == DEFAULT_NETWORK {
            return self.default_network();
        }
        self.db()
            .find_network(name_or_id)?
            .ok_or_else(|| Error::NetworkNotFound(name_or_id.to_string()))
    }

    /// Every network, the default one included.
    pub fn list(&self) -> Result<Vec<Network>> {
        self.default_network()?;
        self.db().networks()
    }

    pub fn inspect(&self, name_or_id: &str) -> Result<NetworkDetails> {
        let network = self.get(name_or_id)?;
        let containers = self
            .db()
            .endpoints_of_network(&network.id)?
            .into_iter()
            .map(|e| ContainerOnNetwork {
                id: e.container_id,
                name: e.container_name,
                ip: e.ip,
                prefix: network.subnet.prefix,
                mac: e.mac,
                aliases: e.aliases,
            })
            .collect();
        Ok(NetworkDetails {
            network,
            containers,
        })
    }

    /// `network rm`: refused while containers are on it; removes the name server,
    /// firewall elements, bridge and record.
    pub fn remove(&self, name_or_id: &str) -> Result<()> {
        if PREDEFINED.contains(&name_or_id) {
            return Err(Error::Predefined(name_or_id.to_string(), "removed"));
        }
        let n = self.get(name_or_id)?;
        if n.name == DEFAULT_NETWORK {
            return Err(Error::Predefined(n.name, "removed"));
        }
        let _lock = self.lock()?;
        let eps = self.db().endpoints_of_network(&n.id)?;
        if !eps.is_empty() {
            return Err(Error::NetworkInUse {
                network: n.name,
                containers: eps
                    .iter()
                    .map(|e| e.container_name.as_str())
                    .collect::<Vec<_>>()
                    .join(", "),
            });
        }
        let nl = Netlink::open()?;
        self.unrealize(&nl, &n)?;
        self.db().delete_network(&n.id)?;
        // The table goes with the last bridge.
        let any_left = self
            .db()
            .networks()?
            .iter()
            .map(|o| nl.block_on(netlink::link_index(nl.host(), &o.bridge)))
            .collect::<Result<Vec<_>>>()?
            .iter()
            .any(Option::is_some);
        if !any_left {
            firewall::remove_table();
        }
        Ok(())
    }

    fn unrealize(&self, nl: &Netlink, n: &Network) -> Result<()> {
        let pid = self.db().dns_pid(&n.id)?;
        if let Some(pid) = pid {
            dns::stop(pid, &n.id);
            self.db().set_dns_pid(&n.id, None)?;
        }
        firewall::remove_network(&n.bridge, &n.subnet);
        nl.block_on(netlink::delete_link(nl.host(), &n.bridge))
    }

    /// `network prune`: remove every user network no container is on; their names.
    pub fn prune(&self) -> Result<Vec<String>> {
        let mut removed = Vec::new();
        let networks = self.db().networks()?;
        for n in networks {
            if n.name == DEFAULT_NETWORK {
                continue;
            }
            let unused = self.db().endpoints_of_network(&n.id)?.is_empty();
            if unused {
                match self.remove(&n.id) {
                    Ok(()) => removed.push(n.name),
                    // Someone attached meanwhile: not unused after all.
                    Err(Error::NetworkInUse { .. }) => {}
                    Err(e) => return Err(e),
                }
            }
        }
        Ok(removed)
    }

    // ---- containers -----------------------------------------------------------------

    /// Put a container on its networks: a veth pair per network, addresses leased, ports
    /// published; returns what to write into its /etc. On error everything done for it is
    /// undone (the netns file stays: the caller made it).
    pub fn attach(&self, req: &AttachRequest) -> Result<Attachment> {
        if req.networks.is_empty() && !req.ports.is_empty() {
            return Err(Error::PortsNeedNetwork);
        }
        let networks: Vec<Network> = req
            .networks
            .iter()
            .map(|a| self.get(&a.name))
            .collect::<Result<_>>()?;
        // A second attach would be undone with the first on error: refuse it up front.
        let existing = self.db().endpoints_of_container(req.container_id)?;
        if let Some(e) = existing.first() {
            let all = self.db().networks()?;
            return Err(Error::AlreadyConnected {
                container: req.container_id.to_string(),
                network: all
                    .into_iter()
                    .find(|n| n.id == e.network_id)
                    .map_or_else(|| e.network_id.clone(), |n| n.name),
            });
        }
        let res = self.attach_inner(req, &networks);
        if res.is_err() {
            let _ = self.detach(req.container_id);
        }
        res
    }

    fn attach_inner(&self, req: &AttachRequest, networks: &[Network]) -> Result<Attachment> {
        let mut interfaces = Vec::new();
        if !networks.is_empty() {
            let nl = Netlink::open()?;
            let netns = File::open(req.netns).at(req.netns)?;
            let container = nl.handle_in(&netns, req.netns)?;
            for (i, (n, a)) in networks.iter().zip(&req.networks).enumerate() {
                interfaces.push(self.plug(
                    &nl,
                    &container,
                    &netns,
                    n,
                    a,
                    req,
                    format!("eth{i}"),
                    i == 0,
                )?);
            }
        }
        let ports = match interfaces.first() {
            Some(first) if !req.ports.is_empty() => {
                self.publish(req.container_id, &req.ports, first.ip)?
            }
            _ => Vec::new(),
        };
        let first = interfaces.first();
        let nameservers: Vec<IpAddr> = match networks.first() {
            Some(n) if n.dns => vec![IpAddr::V4(n.gateway)],
            _ => req.dns.clone(),
        };
        Ok(Attachment {
            hosts: hosts::hosts_file(req.hostname, first.map(|i| i.ip), &req.extra_hosts),
            resolv_conf: hosts::resolv_conf(&nameservers, &self.host_resolv()),
            hostname: hosts::hostname_file(req.hostname),
            interfaces,
            ports,
        })
    }

    #[allow(clippy::too_many_arguments)]
    fn plug(
        &self,
        nl: &Netlink,
        container: &rtnetlink::Handle,
        netns: &File,
        n: &Network,
        a: &NetworkAttach,
        req: &AttachRequest,
        ifname: String,
        default_route: bool,
    ) -> Result<InterfaceInfo> {
        let bridge = self.ensure_up(nl, n)?;
        let ep = self.db().add_endpoint(
            n,
            Endpoint {
                container_id: req.container_id.to_string(),
                network_id: n.id.clone(),
                container_name: req.container_name.to_string(),
                aliases: a.aliases.clone(),
                ip: a.ip.unwrap_or(Ipv4Addr::UNSPECIFIED),
                mac: String::new(),
                ifname,
                host_veth: veth::host_veth_name(req.container_id, &n.id),
                netns: req.netns.to_path_buf(),
                dns: req.dns.clone(),
            },
        )?;
        nl.block_on(veth::plug(
            nl.host(),
            container,
            bridge,
            n,
            &ep,
            netns,
            default_route,
        ))?;
        Ok(InterfaceInfo {
            network: n.name.clone(),
            ifname: ep.ifname,
            ip: ep.ip,
            prefix: n.subnet.prefix,
            gateway: n.gateway,
            mac: ep.mac,
        })
    }

    /// Proxy (binds the ports: a port in use fails here), then records, then DNAT.
    fn publish(
        &self,
        container_id: &str,
        ports: &[PortMapping],
        ip: Ipv4Addr,
    ) -> Result<Vec<PortMapping>> {
        for m in ports.iter().filter(|m| m.host_port != 0) {
            let holder = self.db().port_holder(m)?;
            if let Some(holder) = holder {
                return Err(Error::PortAllocated {
                    proto: m.proto.to_string(),
                    host_ip: m.host_ip,
                    host_port: m.host_port,
                    container: holder,
                });
            }
        }
        let with_ip: Vec<(PortMapping, Ipv4Addr)> = ports.iter().map(|m| (*m, ip)).collect();
        let (pid, bound) = proxy::start(&self.helper, container_id, &with_ip)?;
        let recorded = self.db().set_proxy_pid(container_id, Some(pid));
        if let Err(e) = recorded {
            proxy::stop(pid, container_id);
            return Err(e);
        }
        let resolved: Vec<PortMapping> = ports
            .iter()
            .zip(bound)
            .map(|(m, port)| PortMapping {
                host_port: port,
                ..*m
            })
            .collect();
        let records: Vec<PortRecord> = resolved
            .iter()
            .map(|m| PortRecord {
                container_id: container_id.to_string(),
                mapping: *m,
                container_ip: ip,
            })
            .collect();
        self.db().add_ports(container_id, &records)?;
        firewall::add_ports(&resolved.iter().map(|m| (*m, ip)).collect::<Vec<_>>())?;
        Ok(resolved)
    }

    /// `network connect`: one more network for an attached (or unattached) container.
    pub fn connect(
        &self,
        container_id: &str,
        container_name: &str,
        netns_path: &Path,
        attach: &NetworkAttach,
    ) -> Result<InterfaceInfo> {
        let n = self.get(&attach.name)?;
        let existing = self.db().endpoints_of_container(container_id)?;
        if existing.iter().any(|e| e.network_id == n.id) {
            return Err(Error::AlreadyConnected {
                container: container_id.to_string(),
                network: n.name,
            });
        }
        let next = (0..)
            .map(|i| format!("eth{i}"))
            .find(|name| !existing.iter().any(|e| e.ifname == *name))
            .unwrap_or_else(|| "eth0".into());
        let req = AttachRequest {
            container_id,
            container_name,
            hostname: container_name,
            netns: netns_path,
            networks: vec![attach.clone()],
            ports: Vec::new(),
            dns: existing.first().map(|e| e.dns.clone()).unwrap_or_default(),
            extra_hosts: Vec::new(),
        };
        let nl = Netlink::open()?;
        let netns = File::open(netns_path).at(netns_path)?;
        let container = nl.handle_in(&netns, netns_path)?;
        let res = self.plug(
            &nl,
            &container,
            &netns,
            &n,
            attach,
            &req,
            next,
            existing.is_empty(),
        );
        if res.is_err() {
            let _ = self.unplug_endpoint(&nl, container_id, &n.id);
        }
        res
    }

    /// `network disconnect`.
    pub fn disconnect(&self, container_id: &str, network: &str) -> Result<()> {
        let n = self.get(network)?;
        if !self
            .db()
            .endpoints_of_container(container_id)?
            .iter()
            .any(|e| e.network_id == n.id)
        {
            return Err(Error::NotConnected {
                container: container_id.to_string(),
                network: n.name,
            });
        }
        let nl = Netlink::open()?;
        self.unplug_endpoint(&nl, container_id, &n.id)
    }

    fn unplug_endpoint(&self, nl: &Netlink, container_id: &str, network_id: &str) -> Result<()> {
        let host_veth = veth::host_veth_name(container_id, network_id);
        nl.block_on(veth::unplug(nl.host(), &host_veth))?;
        self.db().delete_endpoint(container_id, network_id)
    }

    /// Take a container off every network: unpublish its ports (DNAT elements, proxy),
    /// delete its veths, free its leases. Idempotent; the netns file is the caller's.
    /// Deleting a veth waits for the kernel (~20 ms a link here): when the namespace goes
    /// too (container stop or rm), [`NetworkStore::release`] is the cheaper call.
    pub fn detach(&self, container_id: &str) -> Result<()> {
        self.unpublish(container_id)?;
        let endpoints = self.db().endpoints_of_container(container_id)?;
        if endpoints.is_empty() {
            return Ok(());
        }
        let nl = Netlink::open()?;
        let mut first_err = None;
        for e in endpoints {
            if let Err(err) = self.unplug_endpoint(&nl, container_id, &e.network_id) {
                first_err.get_or_insert(err);
            }
        }
        first_err.map_or(Ok(()), Err)
    }

    /// Container stop / rm: unpublish its ports, free its leases, remove its namespace
    /// file (`netns`, made by [`crate::netns::create`]). The veth pairs go with the
    /// namespace, deleted by the kernel in the background (so this does not wait for
    /// them); an attach of the same container meanwhile replaces a leftover link.
    pub fn release(&self, container_id: &str, netns_path: &Path) -> Result<()> {
        self.unpublish(container_id)?;
        let endpoints = self.db().endpoints_of_container(container_id)?;
        let res = netns::remove(netns_path);
        let db = self.db();
        for e in endpoints {
            db.delete_endpoint(container_id, &e.network_id)?;
        }
        res
    }

    fn unpublish(&self, container_id: &str) -> Result<()> {
        let ports = self.db().ports_of_container(container_id)?;
        firewall::remove_ports(&ports.iter().map(|p| p.mapping).collect::<Vec<_>>());
        let proxy_pid = self.db().proxy_pid(container_id)?;
        if let Some(pid) = proxy_pid {
            proxy::stop(pid, container_id);
        }
        {
            let db = self.db();
            db.delete_ports(container_id)?;
            db.set_proxy_pid(container_id, None)?;
        }
        Ok(())
    }

    /// A renamed container: its networks' name servers answer to the new name at once
    /// (they read the endpoints on every query), the old name stops resolving.
    pub fn rename(&self, container_id: &str, new_name: &str) -> Result<()> {
        self.db().rename_endpoints(container_id, new_name)
    }

    /// The published ports of a container (`berth port`).
    pub fn ports(&self, container_id: &str) -> Result<Vec<PortMapping>> {
        Ok(self
            .db()
            .ports_of_container(container_id)?
            .into_iter()
            .map(|p| p.mapping)
            .collect())
    }

    /// The interfaces of a container (for `inspect`).
    pub fn interfaces(&self, container_id: &str) -> Result<Vec<InterfaceInfo>> {
        let networks = self.db().networks()?;
        Ok(self
            .db()
            .endpoints_of_container(container_id)?
            .into_iter()
            .filter_map(|e| {
                let n = networks.iter().find(|n| n.id == e.network_id)?;
                Some(InterfaceInfo {
                    network: n.name.clone(),
                    ifname: e.ifname,
                    ip: e.ip,
                    prefix: n.subnet.prefix,
                    gateway: n.gateway,
                    mac: e.mac,
                })
            })
            .collect())
    }

    /// Start-up clean-up: detach every container not in `live` or whose netns file is
    /// gone, delete berth veths no endpoint owns, restart dead name servers of networks
    /// in use.
    pub fn reconcile(&self, live: &[String]) -> Result<Reconciled> {
        let mut out = Reconciled::default();
        let endpoints = self.db().all_endpoints()?;
        let ids = self.db().container_ids()?;
        for id in ids {
            let netns_gone = endpoints
                .iter()
                .any(|e| e.container_id == id && !netns::exists(&e.netns));
            if !live.contains(&id) || netns_gone {
                self.detach(&id)?;
                out.containers.push(id);
            }
        }
        let nl = Netlink::open()?;
        let owned: Vec<String> = self
            .db()
            .all_endpoints()?
            .into_iter()
            .map(|e| e.host_veth)
            .collect();
        for link in nl.block_on(netlink::link_names(nl.host()))? {
            if veth::is_host_veth_name(&link) && !owned.contains(&link) {
                nl.block_on(netlink::delete_link(nl.host(), &link))?;
                out.stray_links.push(link);
            }
        }
        let networks = self.db().networks()?;
        for n in networks {
            if !n.dns || self.db().endpoints_of_network(&n.id)?.is_empty() {
                continue;
            }
            let alive = self
                .db()
                .dns_pid(&n.id)?
                .is_some_and(|pid| dns::is_running(pid, &n.id));
            if !alive {
                self.ensure_up(&nl, &n)?;
                out.name_servers_restarted.push(n.name);
            }
        }
        Ok(out)
    }
}

fn validate_name(name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .next()
            .is_some_and(|b| b.is_ascii_alphanumeric())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'.' || b == b'-');
    if ok {
        Ok(())
    } else {
        Err(Error::InvalidName(name.to_string()))
    }
}

/// The bridge routes between its containers and the rest of the namespace it lives in.
fn enable_forwarding() -> Result<()> {
    let path = Path::new("/proc/sys/net/ipv4/ip_forward");
    if std::fs::read_to_string(path).at(path)?.trim() != "1" {
        std::fs::write(path, "1").at(path)?;
    }
    Ok(())
}

/// A stable, locally administered MAC for a network's bridge, from its id.
fn bridge_mac(network_id: &str) -> [u8; 6] {
    let mut mac = [0x02, 0x42, 0, 0, 0, 0];
    for (i, b) in mac[2..].iter_mut().enumerate() {
        *b = network_id
            .get(i * 2..i * 2 + 2)
            .and_then(|h| u8::from_str_radix(h, 16).ok())
            .unwrap_or(0);
    }
    mac
}

fn random_id() -> Result<String> {
    let path = Path::new("/dev/urandom");
    let mut bytes = [0u8; 32];
    File::open(path)
        .and_then(|mut f| f.read_exact(&mut bytes))
        .at(path)?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}
