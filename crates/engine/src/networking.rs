//! A container's place on the network, through crate berth-net: the namespace it runs in,
//! its veths, leases and published ports, and the /etc/hosts, /etc/resolv.conf and
//! /etc/hostname written for it.
//!
//! - `create` checks the options ([`Engine::check_network`]): the network exists, `-p`
//!   parses, `--ip` is in the subnet; nothing is allocated yet.
//! - Every start ([`Engine::join_network`]) makes the namespace file
//!   `<run_root>/netns/<id>` (also for `--network none`: docker's `lo` is up there, a
//!   namespace the runtime makes has it down) and, on a bridge network, attaches it.
//! - Every teardown ([`release`], from `cleanup::teardown`: after the monitor saw the exit,
//!   on stop, rm, and before a start) gives back leases and ports and removes the
//!   namespace file; the kernel deletes the veths with the namespace.

use std::fs::{self, File};
use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};

use berth_net::{
    hosts, netns, parse_publish_all, AttachRequest, InterfaceInfo, NetworkAttach, NetworkStore,
    PortMapping, Protocol,
};
use nix::fcntl::{Flock, FlockArg};
use serde::{Deserialize, Serialize};

use crate::engine::Engine;
use crate::error::{Error, Result};
use crate::network::NetworkMode;
use crate::paths::Paths;
use crate::records::ContainerRecord;
use crate::spec::{MountKind, MountSpec, NetworkNamespace};

/// The files every container gets from its network set-up: name in the container
/// directory, path in the container.
const ETC_FILES: [(&str, &str); 3] = [
    ("hosts", "/etc/hosts"),
    ("resolv.conf", "/etc/resolv.conf"),
    ("hostname", "/etc/hostname"),
];

const HOST_RESOLV_CONF: &str = "/etc/resolv.conf";

/// The network options of `berth create/run` besides `--network` (kept in the container's
/// config, applied on every start).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct NetworkOptions {
    /// `--network-alias`: more names the container answers to on its network.
    pub aliases: Vec<String>,
    /// `--ip`: a fixed address on a user network (kept across restarts).
    pub ip: Option<Ipv4Addr>,
    /// `-p` values as given (checked at create).
    pub publish: Vec<String>,
    /// `-P`: every port the image EXPOSEs on a free host port.
    pub publish_all: bool,
    /// `--dns`
    pub dns: Vec<IpAddr>,
    /// `--add-host NAME:IP`
    pub extra_hosts: Vec<(String, IpAddr)>,
    /// Networks `berth network connect` added (with their aliases and addresses): joined
    /// again on the next start, as docker does.
    pub connected: Vec<ConnectedNetwork>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ConnectedNetwork {
    pub name: String,
    pub aliases: Vec<String>,
    pub ip: Option<Ipv4Addr>,
}

impl NetworkOptions {
    /// Parse one `--add-host NAME:IP` (docker also takes `NAME=IP`).
    pub fn parse_add_host(s: &str) -> Result<(String, IpAddr)> {
        let bad = || {
            Error::InvalidOption(format!(
                "--add-host {s:?}: want NAME:IP (an IPv4 or IPv6 address)"
            ))
        };
        let (name, ip) = s
            .split_once('=')
            .or_else(|| s.split_once(':'))
            .ok_or_else(bad)?;
        let ip = ip.trim_start_matches('[').trim_end_matches(']');
        if name.is_empty() {
            return Err(bad());
        }
        Ok((name.to_string(), ip.parse().map_err(|_| bad())?))
    }

    /// Parse one `--dns IP`.
    pub fn parse_dns(s: &str) -> Result<IpAddr> {
        s.parse()
            .map_err(|_| Error::InvalidOption(format!("--dns {s:?}: not an IP address")))
    }
}

/// The mappings `-p` and `-P` ask for; `exposed` are the image's ports ("80/tcp").
fn port_mappings(opts: &NetworkOptions, exposed: &[String]) -> Result<Vec<PortMapping>> {
    let mut out = Vec::new();
    for p in &opts.publish {
        out.extend(parse_publish_all(p)?);
    }
    if opts.publish_all {
        for e in exposed {
            let (port, proto) = e.split_once('/').unwrap_or((e.as_str(), "tcp"));
            let proto = match proto {
                "udp" => Protocol::Udp,
                "tcp" => Protocol::Tcp,
                // sctp and the like: docker publishes them; berth's proxy can't.
                _ => continue,
            };
            let Ok(container_port) = port.parse::<u16>() else {
                continue;
            };
            let m = PortMapping {
                proto,
                host_ip: Ipv4Addr::UNSPECIFIED,
                host_port: 0,
                container_port,
            };
            // -p for the same port wins.
            if !out
                .iter()
                .any(|o| o.container_port == container_port && o.proto == proto)
            {
                out.push(m);
            }
        }
    }
    Ok(out)
}

/// inspect's HostConfig.PortBindings: what `-p` asked for ("" = any host port).
pub fn port_bindings(opts: &NetworkOptions) -> serde_json::Value {
    let mut out = serde_json::Map::new();
    for m in opts
        .publish
        .iter()
        .flat_map(|p| parse_publish_all(p).unwrap_or_default())
    {
        let binding = serde_json::json!({
            "HostIp": if m.host_ip.is_unspecified() { String::new() } else { m.host_ip.to_string() },
            "HostPort": if m.host_port == 0 { String::new() } else { m.host_port.to_string() },
        });
        let key = format!("{}/{}", m.container_port, m.proto);
        match out.get_mut(&key).and_then(serde_json::Value::as_array_mut) {
            Some(list) => list.push(binding),
            None => {
                out.insert(key, serde_json::json!([binding]));
            }
        }
    }
    serde_json::Value::Object(out)
}

/// The namespace file of a container.
fn netns_path(paths: &Paths, id: &str) -> PathBuf {
    netns::netns_dir(&paths.run_root).join(id)
}

/// Written before a container is attached, removed once released: teardown opens the
/// network store only for containers that have something there.
fn attached_marker(paths: &Paths, id: &str) -> PathBuf {
    paths.run_dir(id).join("network-attached")
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> Error + '_ {
    move |source| Error::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Give back what the container's last start took on the network: published ports,
/// leases, the namespace file (the kernel deletes the veths with it). Idempotent; call
/// once its processes are gone.
pub fn release(paths: &Paths, id: &str) -> Result<()> {
    let ns = netns_path(paths, id);
    let marker = attached_marker(paths, id);
    if marker.exists() {
        NetworkStore::open(&paths.root, &paths.run_root)?.release(id, &ns)?;
        fs::remove_file(&marker)
            .or_else(|e| match e.kind() {
                std::io::ErrorKind::NotFound => Ok(()),
                _ => Err(e),
            })
            .map_err(io_err(&marker))?;
    } else if fs::symlink_metadata(&ns).is_ok() {
        netns::remove(&ns)?;
    }
    Ok(())
}

impl Engine {
    pub(crate) fn network_store(&self) -> Result<NetworkStore> {
        Ok(NetworkStore::open(&self.paths.root, &self.paths.run_root)?)
    }

    /// `create`: refuse network options that can't work, before anything is made.
    pub(crate) fn check_network(
        &self,
        mode: &NetworkMode,
        opts: &NetworkOptions,
        exposed: &[String],
    ) -> Result<()> {
        let ports = port_mappings(opts, exposed)?;
        let bridge = |flag: &str| {
            Error::InvalidOption(format!(
                "{flag}: only for containers on a bridge network (--network {mode})"
            ))
        };
        let name = match mode {
            NetworkMode::Bridge(name) => name,
            _ => {
                if !opts.publish.is_empty() || (opts.publish_all && !ports.is_empty()) {
                    return Err(bridge("-p/--publish"));
                }
                if opts.ip.is_some() {
                    return Err(bridge("--ip"));
                }
                if !opts.aliases.is_empty() {
                    return Err(bridge("--network-alias"));
                }
                return Ok(());
            }
        };
        let n = self.network_store()?.get(name)?;
        if let Some(ip) = opts.ip {
            if n.name == berth_net::DEFAULT_NETWORK {
                return Err(Error::InvalidOption(format!(
                    "--ip {ip}: user specified IP address is supported on user defined networks only"
                )));
            }
            n.check_requested_address(ip)?;
        }
        if !opts.aliases.is_empty() && n.name == berth_net::DEFAULT_NETWORK {
            return Err(Error::InvalidOption(
                "--network-alias: network-scoped aliases are supported for user defined networks only"
                    .into(),
            ));
        }
        Ok(())
    }

    /// The network namespace a starting container runs in; on a bridge network it is
    /// attached and `mounts` gets its /etc/hosts, /etc/resolv.conf and /etc/hostname.
    pub(crate) fn join_network(
        &self,
        rec: &ContainerRecord,
        mounts: &mut Vec<MountSpec>,
    ) -> Result<NetworkNamespace> {
        let id = &rec.id;
        let c = &rec.config;
        match &c.network {
            NetworkMode::Host => {
                // The host's own files, as docker copies them: the namespace is the host's.
                let host = |p: &str| fs::read_to_string(p).unwrap_or_default();
                self.mount_etc_files(
                    id,
                    &host("/etc/hosts"),
                    &host(HOST_RESOLV_CONF),
                    &hosts::hostname_file(&c.hostname),
                    mounts,
                )?;
                Ok(NetworkNamespace::Host)
            }
            NetworkMode::Container(other) => {
                let o = self.db.find(other)?;
                self.require_running(&o)?;
                // The other container's files: one namespace, one view of names.
                let dir = self.paths.container_dir(&o.id);
                for (file, dest) in ETC_FILES {
                    let source = dir.join(file);
                    if source.exists() && !mounts.iter().any(|m| m.destination == dest) {
                        mounts.push(MountSpec {
                            source,
                            destination: dest.to_string(),
                            kind: MountKind::Bind { read_only: true },
                        });
                    }
                }
                Ok(NetworkNamespace::Path(PathBuf::from(format!(
                    "/proc/{}/ns/net",
                    o.state.pid
                ))))
            }
            NetworkMode::None => {
                let host_resolv = fs::read_to_string(HOST_RESOLV_CONF).unwrap_or_default();
                self.mount_etc_files(
                    id,
                    &hosts::hosts_file(&c.hostname, None, &[]),
                    &hosts::resolv_conf(&c.net.dns, &host_resolv),
                    &hosts::hostname_file(&c.hostname),
                    mounts,
                )?;
                Ok(NetworkNamespace::Path(netns::create(
                    &self.paths.run_root,
                    id,
                )?))
            }
            NetworkMode::Bridge(name) => {
                let marker = attached_marker(&self.paths, id);
                fs::write(&marker, b"").map_err(io_err(&marker))?;
                let ns = match netns::create(&self.paths.run_root, id) {
                    Ok(ns) => ns,
                    Err(e) => {
                        let _ = fs::remove_file(&marker);
                        return Err(e.into());
                    }
                };
                // On error the caller's teardown releases (the marker is there).
                self.attach_bridge(rec, name, &ns, mounts)?;
                Ok(NetworkNamespace::Path(ns))
            }
        }
    }

    fn attach_bridge(
        &self,
        rec: &ContainerRecord,
        network: &str,
        ns: &Path,
        mounts: &mut Vec<MountSpec>,
    ) -> Result<()> {
        let c = &rec.config;
        let opts = &c.net;
        let mut networks = vec![NetworkAttach {
            name: network.to_string(),
            aliases: opts.aliases.clone(),
            ip: opts.ip,
        }];
        networks.extend(opts.connected.iter().map(|n| NetworkAttach {
            name: n.name.clone(),
            aliases: n.aliases.clone(),
            ip: n.ip,
        }));
        let store = self.network_store()?;
        let req = AttachRequest {
            container_id: &rec.id,
            container_name: &rec.name,
            hostname: &c.hostname,
            netns: ns,
            networks,
            ports: port_mappings(opts, &c.exposed_ports)?,
            dns: opts.dns.clone(),
            extra_hosts: opts.extra_hosts.clone(),
        };
        let att = match store.attach(&req) {
            // Endpoints of a run whose release never happened (the host rebooted, the
            // run root was wiped): theirs, stale; take them off and attach again.
            Err(berth_net::Error::AlreadyConnected { .. }) => {
                store.detach(&rec.id)?;
                store.attach(&req)?
            }
            // Held by a container that died without giving it back (killed monitor,
            // reboot): take it back once, then try again.
            Err(e) => match self.stale_holder(&store, &e, &rec.id) {
                Some((holder, _lock)) => {
                    store.detach(&holder)?;
                    release(&self.paths, &holder)?;
                    store.attach(&req).map_err(|e| self.name_holder(e))?
                }
                None => return Err(self.name_holder(e)),
            },
            Ok(a) => a,
        };
        self.mount_etc_files(&rec.id, &att.hosts, &att.resolv_conf, &att.hostname, mounts)
    }

    /// Writes the container's /etc/hosts, /etc/resolv.conf and /etc/hostname into its
    /// directory and bind-mounts them (in every network mode, as docker does: an image
    /// without them still resolves localhost and, on a network, names).
    fn mount_etc_files(
        &self,
        id: &str,
        hosts: &str,
        resolv_conf: &str,
        hostname: &str,
        mounts: &mut Vec<MountSpec>,
    ) -> Result<()> {
        let dir = self.paths.container_dir(id);
        for ((file, dest), contents) in ETC_FILES.into_iter().zip([hosts, resolv_conf, hostname]) {
            let path = dir.join(file);
            fs::write(&path, contents).map_err(io_err(&path))?;
            // A user's own mount of the file wins, as in docker.
            if !mounts.iter().any(|m| m.destination == dest) {
                mounts.push(MountSpec {
                    source: path,
                    destination: dest.to_string(),
                    kind: MountKind::Bind { read_only: false },
                });
            }
        }
        Ok(())
    }

    /// The container holding the port or address `e` complains about, if it is dead:
    /// not running, and not being started (its lock is free; it stays held).
    fn stale_holder(
        &self,
        store: &NetworkStore,
        e: &berth_net::Error,
        me: &str,
    ) -> Option<(String, Option<Flock<File>>)> {
        let holder = match e {
            berth_net::Error::PortAllocated { container, .. } => container.clone(),
            berth_net::Error::AddressInUse { network, ip } => {
                store
                    .inspect(network)
                    .ok()?
                    .containers
                    .into_iter()
                    .find(|c| c.ip == *ip)?
                    .id
            }
            _ => return None,
        };
        if holder == me {
            return None;
        }
        let lock = match self.db.get(&holder).ok()? {
            // Removed, yet still on the network: nothing else can be using it.
            None => None,
            Some(_) => {
                let f = File::options()
                    .write(true)
                    .open(self.paths.lock_file(&holder))
                    .ok()?;
                let lock = Flock::lock(f, FlockArg::LockExclusiveNonblock).ok()?;
                if self.monitor_alive(&holder) {
                    return None;
                }
                Some(lock)
            }
        };
        Some((holder, lock))
    }

    /// Errors name containers by name, not by id.
    fn name_holder(&self, e: berth_net::Error) -> Error {
        match e {
            berth_net::Error::PortAllocated {
                proto,
                host_ip,
                host_port,
                container,
            } => berth_net::Error::PortAllocated {
                proto,
                host_ip,
                host_port,
                container: match self.db.get(&container) {
                    Ok(Some(r)) => r.name,
                    _ => container,
                },
            }
            .into(),
            e => e.into(),
        }
    }

    /// `berth network connect`: a running container is plugged at once; the network is
    /// kept in its config either way, so every later start joins it too.
    pub fn connect_network(
        &self,
        what: &str,
        network: &str,
        aliases: &[String],
        ip: Option<Ipv4Addr>,
    ) -> Result<Option<InterfaceInfo>> {
        let (_lock, mut rec) = self.lock(what)?;
        if !matches!(rec.config.network, NetworkMode::Bridge(_)) {
            return Err(Error::InvalidOption(format!(
                "container {} uses --network {}: only containers on a bridge network can join another",
                rec.name, rec.config.network
            )));
        }
        let store = self.network_store()?;
        let n = store.get(network)?;
        let on_it = matches!(&rec.config.network, NetworkMode::Bridge(p) if *p == n.name || *p == n.id)
            || rec.config.net.connected.iter().any(|c| c.name == n.name);
        if on_it {
            return Err(berth_net::Error::AlreadyConnected {
                container: rec.name.clone(),
                network: n.name,
            }
            .into());
        }
        if let Some(ip) = ip {
            n.check_requested_address(ip)?;
        }
        let attach = NetworkAttach {
            name: n.name.clone(),
            aliases: aliases.to_vec(),
            ip,
        };
        // A stopped container joins on its next start, as in docker.
        let info = if self.live_status(&rec).0 == crate::records::Status::Running {
            Some(store.connect(
                &rec.id,
                &rec.name,
                &netns_path(&self.paths, &rec.id),
                &attach,
            )?)
        } else if self.monitor_alive(&rec.id) {
            self.require_running(&rec)?;
            None
        } else {
            None
        };
        rec.config.net.connected.retain(|c| c.name != n.name);
        rec.config.net.connected.push(ConnectedNetwork {
            name: n.name,
            aliases: aliases.to_vec(),
            ip,
        });
        if let Err(e) = self.db.set_config(&rec.id, &rec.config) {
            if info.is_some() {
                let _ = store.disconnect(&rec.id, network);
            }
            return Err(e);
        }
        Ok(info)
    }

    /// `berth network disconnect`.
    pub fn disconnect_network(&self, what: &str, network: &str) -> Result<()> {
        let (_lock, mut rec) = self.lock(what)?;
        let store = self.network_store()?;
        let n = store.get(network)?;
        let running = self.monitor_alive(&rec.id);
        let was_connected = rec.config.net.connected.iter().any(|c| c.name == n.name);
        let primary = matches!(&rec.config.network, NetworkMode::Bridge(p)
            if *p == n.name || *p == n.id);
        if primary {
            return Err(Error::InvalidOption(format!(
                "container {} was created on network {}: it can't leave it",
                rec.name, n.name
            )));
        }
        if running {
            match store.disconnect(&rec.id, &n.name) {
                Err(berth_net::Error::NotConnected { .. }) if was_connected => {}
                r => r?,
            }
        } else if !was_connected {
            return Err(berth_net::Error::NotConnected {
                container: rec.name.clone(),
                network: n.name,
            }
            .into());
        }
        rec.config.net.connected.retain(|c| c.name != n.name);
        self.db.set_config(&rec.id, &rec.config)
    }

    /// A container's interfaces on its networks while it runs (inspect).
    pub fn interfaces(&self, id: &str) -> Result<Vec<InterfaceInfo>> {
        if !attached_marker(&self.paths, id).exists() {
            return Ok(Vec::new());
        }
        Ok(self.network_store()?.interfaces(id)?)
    }

    /// A container's published ports while it runs.
    pub fn published_ports(&self, id: &str) -> Result<Vec<PortMapping>> {
        if !attached_marker(&self.paths, id).exists() {
            return Ok(Vec::new());
        }
        Ok(self.network_store()?.ports(id)?)
    }

    /// After a crash or reboot: take containers whose monitor is gone off their
    /// networks, delete links nobody owns, restart dead name servers.
    pub fn reconcile_networks(&self) -> Result<berth_net::Reconciled> {
        let live: Vec<String> = self
            .db
            .list()?
            .into_iter()
            .filter(|r| self.monitor_alive(&r.id))
            .map(|r| r.id)
            .collect();
        let store = self.network_store()?;
        let done = store.reconcile(&live)?;
        for id in &done.containers {
            // Their namespace files went with the detach or are stale.
            let _ = release(&self.paths, id);
        }
        Ok(done)
    }

    /// Networks a container record names (created on, or connected to): `network rm`
    /// refuses them as docker does, also while the container is stopped.
    pub fn containers_on_network(&self, network_name: &str) -> Result<Vec<String>> {
        Ok(self
            .db
            .list()?
            .into_iter()
            .filter(|r| {
                matches!(&r.config.network, NetworkMode::Bridge(n) if n == network_name)
                    || r.config
                        .net
                        .connected
                        .iter()
                        .any(|c| c.name == network_name)
            })
            .map(|r| r.name)
            .collect())
    }
}

impl Engine {
    /// docker's `ps` PORTS column: `0.0.0.0:8080->80/tcp`.
    pub(crate) fn port_summary(&self, id: &str) -> Vec<String> {
        self.published_ports(id)
            .unwrap_or_default()
            .into_iter()
            .map(|m| {
                format!(
                    "{}:{}->{}/{}",
                    m.host_ip, m.host_port, m.container_port, m.proto
                )
            })
            .collect()
    }

    /// Where the container's /etc/hosts, resolv.conf or hostname comes from ("" when the
    /// image's own is used).
    pub(crate) fn network_file(&self, rec: &ContainerRecord, name: &str) -> String {
        let path = self.paths.container_dir(&rec.id).join(name);
        match rec.config.network {
            NetworkMode::Bridge(_) if path.exists() => path.display().to_string(),
            _ => String::new(),
        }
    }

    /// inspect's NetworkSettings: `ports` holds the exposed ports (null = unpublished);
    /// published ones get their bindings.
    pub(crate) fn network_settings(
        &self,
        rec: &ContainerRecord,
        running: bool,
        mut ports: serde_json::Map<String, serde_json::Value>,
    ) -> serde_json::Value {
        use serde_json::{json, Value};
        let id = &rec.id;
        let (interfaces, published) = if running {
            (
                self.interfaces(id).unwrap_or_default(),
                self.published_ports(id).unwrap_or_default(),
            )
        } else {
            (Vec::new(), Vec::new())
        };
        for m in &published {
            let key = format!("{}/{}", m.container_port, m.proto);
            let binding =
                json!({"HostIp": m.host_ip.to_string(), "HostPort": m.host_port.to_string()});
            match ports.get_mut(&key).and_then(Value::as_array_mut) {
                Some(list) => list.push(binding),
                None => {
                    ports.insert(key, json!([binding]));
                }
            }
        }
        let mut networks = serde_json::Map::new();
        for i in &interfaces {
            // The first network's aliases are --network-alias; connected ones their own.
            let aliases = match rec
                .config
                .net
                .connected
                .iter()
                .find(|c| c.name == i.network)
            {
                Some(c) => c.aliases.clone(),
                None => rec.config.net.aliases.clone(),
            };
            networks.insert(
                i.network.clone(),
                json!({
                    "Aliases": aliases,
                    "IPAddress": i.ip.to_string(),
                    "IPPrefixLen": i.prefix,
                    "Gateway": i.gateway.to_string(),
                    "MacAddress": i.mac,
                }),
            );
        }
        if !running {
            if let NetworkMode::Bridge(n) = &rec.config.network {
                networks.insert(n.clone(), json!({"Aliases": rec.config.net.aliases}));
            }
        }
        let first = interfaces.first();
        let sandbox = match rec.config.network {
            NetworkMode::Bridge(_) | NetworkMode::None if running => {
                netns_path(&self.paths, id).display().to_string()
            }
            NetworkMode::Container(_) if running => format!("/proc/{}/ns/net", rec.state.pid),
            _ => String::new(),
        };
        json!({
            "Ports": ports,
            "SandboxKey": sandbox,
            "IPAddress": first.map(|i| i.ip.to_string()).unwrap_or_default(),
            "IPPrefixLen": first.map_or(0, |i| i.prefix),
            "Gateway": first.map(|i| i.gateway.to_string()).unwrap_or_default(),
            "MacAddress": first.map(|i| i.mac.clone()).unwrap_or_default(),
            "Networks": networks,
        })
    }
}
