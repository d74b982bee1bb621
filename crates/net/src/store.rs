//! Network records, address leases, published ports and helper pids in SQLite
//! (`<root>/berth.db`, the engine database; the `net_*` tables are this crate's).
//!
//! * `net_networks`: one row per network (name, bridge, subnet, gateway, dns server pid).
//! * `net_endpoints`: one row per (container, network): the lease (ip), the veth names,
//!   the container's netns path, its names on that network and its upstream resolvers.
//! * `net_ports`: published ports, unique per (proto, host ip, host port).
//! * `net_proxies`: the pid of each container's userspace port proxy.

use std::collections::HashSet;
use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};

use rusqlite::config::DbConfig;
use rusqlite::{params, Connection, OptionalExtension, TransactionBehavior};

use crate::error::{Error, Result};
use crate::ipam::Subnet;
use crate::ports::{PortMapping, Protocol};

/// A network's record.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Network {
    /// 64 hex digits.
    pub id: String,
    pub name: String,
    /// The bridge interface in the namespace berth runs in.
    pub bridge: String,
    #[serde(serialize_with = "display")]
    pub subnet: Subnet,
    pub gateway: Ipv4Addr,
    /// Unix seconds.
    pub created: i64,
    /// Whether containers on it get the embedded name server (user networks; not the
    /// default bridge, as docker).
    pub dns: bool,
}

impl Network {
    /// An address asked for (`--ip`) must be a host address of the subnet (not the
    /// network or broadcast address). Whether it is free is the lease's business.
    pub fn check_requested_address(&self, ip: Ipv4Addr) -> Result<()> {
        if self.subnet.is_host(ip) {
            return Ok(());
        }
        Err(Error::AddressOutsideSubnet {
            network: self.name.clone(),
            ip,
            subnet: self.subnet.to_string(),
        })
    }
}

fn display<S: serde::Serializer, T: std::fmt::Display>(v: &T, s: S) -> Result<S::Ok, S::Error> {
    s.collect_str(v)
}

/// A container's place on one network.
#[derive(Debug, Clone, PartialEq)]
pub struct Endpoint {
    pub container_id: String,
    pub network_id: String,
    pub container_name: String,
    pub aliases: Vec<String>,
    pub ip: Ipv4Addr,
    pub mac: String,
    /// The interface name inside the container (eth0, eth1, ...).
    pub ifname: String,
    /// The host end of the veth pair.
    pub host_veth: String,
    pub netns: PathBuf,
    /// The container's --dns servers: where the name server forwards its other questions.
    pub dns: Vec<IpAddr>,
}

/// A published port as recorded.
#[derive(Debug, Clone, PartialEq)]
pub struct PortRecord {
    pub container_id: String,
    pub mapping: PortMapping,
    pub container_ip: Ipv4Addr,
}

pub struct Db {
    conn: Connection,
    path: PathBuf,
}

const ENDPOINT_COLUMNS: &str =
    "container_id, network_id, container_name, aliases, ip, mac, ifname, host_veth, netns, dns";

impl Db {
    pub fn open(root: &Path) -> Result<Db> {
        let path = root.join("berth.db");
        let err = |source| Error::Db {
            path: path.clone(),
            source,
        };
        std::fs::create_dir_all(root).map_err(|source| Error::Io {
            path: root.to_path_buf(),
            source,
        })?;
        let conn = berth_sqlite::open(
            &path,
            // NORMAL: a commit doesn't wait for fsync (a checkpoint does). Leases lost to
            // a power cut are leases of containers the reboot ended: reconcile frees them.
            "PRAGMA synchronous=NORMAL;
             PRAGMA foreign_keys=ON;
             CREATE TABLE IF NOT EXISTS net_networks(
                id TEXT PRIMARY KEY, name TEXT NOT NULL UNIQUE, bridge TEXT NOT NULL UNIQUE,
                subnet TEXT NOT NULL, gateway TEXT NOT NULL, created INTEGER NOT NULL,
                dns INTEGER NOT NULL, dns_pid INTEGER);
             CREATE TABLE IF NOT EXISTS net_endpoints(
                container_id TEXT NOT NULL,
                network_id TEXT NOT NULL REFERENCES net_networks(id),
                container_name TEXT NOT NULL, aliases TEXT NOT NULL,
                ip TEXT NOT NULL, ip_num INTEGER NOT NULL, mac TEXT NOT NULL,
                ifname TEXT NOT NULL, host_veth TEXT NOT NULL UNIQUE, netns TEXT NOT NULL,
                dns TEXT NOT NULL,
                PRIMARY KEY(container_id, network_id),
                UNIQUE(network_id, ip_num));
             CREATE TABLE IF NOT EXISTS net_ports(
                container_id TEXT NOT NULL, proto TEXT NOT NULL, host_ip TEXT NOT NULL,
                host_port INTEGER NOT NULL, container_ip TEXT NOT NULL,
                container_port INTEGER NOT NULL,
                PRIMARY KEY(proto, host_ip, host_port));
             CREATE TABLE IF NOT EXISTS net_proxies(
                container_id TEXT PRIMARY KEY, pid INTEGER NOT NULL);",
        )
        .map_err(err)?;
        // Closing must not checkpoint (an fsync'ing write on every attach's exit path);
        // commits checkpoint as the WAL grows.
        conn.set_db_config(DbConfig::SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE, true)
            .map_err(err)?;
        Ok(Db { conn, path })
    }

    fn err(&self, source: rusqlite::Error) -> Error {
        Error::Db {
            path: self.path.clone(),
            source,
        }
    }

    pub fn insert_network(&self, n: &Network) -> Result<()> {
        self.conn
            .execute(
                "INSERT INTO net_networks(id, name, bridge, subnet, gateway, created, dns)
                 VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                params![
                    n.id,
                    n.name,
                    n.bridge,
                    n.subnet.to_string(),
                    n.gateway.to_string(),
                    n.created,
                    n.dns
                ],
            )
            .map_err(|e| match e {
                rusqlite::Error::SqliteFailure(f, _)
                    if f.code == rusqlite::ErrorCode::ConstraintViolation =>
                {
                    Error::NetworkExists(n.name.clone())
                }
                e => self.err(e),
            })?;
        Ok(())
    }

    pub fn delete_network(&self, id: &str) -> Result<()> {
        self.conn
            .execute("DELETE FROM net_networks WHERE id = ?1", [id])
            .map_err(|e| self.err(e))?;
        Ok(())
    }

    pub fn networks(&self) -> Result<Vec<Network>> {
        let mut st = self
            .conn
            .prepare(
                "SELECT id, name, bridge, subnet, gateway, created, dns FROM net_networks
                 ORDER BY created, name",
            )
            .map_err(|e| self.err(e))?;
        let rows = st
            .query_map([], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, String>(2)?,
                    r.get::<_, String>(3)?,
                    r.get::<_, String>(4)?,
                    r.get::<_, i64>(5)?,
                    r.get::<_, bool>(6)?,
                ))
            })
            .map_err(|e| self.err(e))?;
        let mut out = Vec::new();
        for row in rows {
            let (id, name, bridge, subnet, gateway, created, dns) = row.map_err(|e| self.err(e))?;
            out.push(Network {
                id,
                name,
                bridge,
                subnet: subnet.parse()?,
                gateway: crate::ipam::parse_ipv4(&gateway)?,
                created,
                dns,
            });
        }
        Ok(out)
    }

    /// By exact name, exact id, or unique id prefix (as docker).
    pub fn find_network(&self, name_or_id: &str) -> Result<Option<Network>> {
        let all = self.networks()?;
        if let Some(n) = all
            .iter()
            .find(|n| n.name == name_or_id || n.id == name_or_id)
        {
            return Ok(Some(n.clone()));
        }
        if name_or_id.is_empty() {
            return Ok(None);
        }
        let mut by_prefix = all.into_iter().filter(|n| n.id.starts_with(name_or_id));
        match (by_prefix.next(), by_prefix.next()) {
            (Some(n), None) => Ok(Some(n)),
            _ => Ok(None),
        }
    }

    pub fn dns_pid(&self, network_id: &str) -> Result<Option<i32>> {
        self.conn
            .query_row(
                "SELECT dns_pid FROM net_networks WHERE id = ?1",
                [network_id],
                |r| r.get::<_, Option<i32>>(0),
            )
            .optional()
            .map(Option::flatten)
            .map_err(|e| self.err(e))
    }

    pub fn set_dns_pid(&self, network_id: &str, pid: Option<i32>) -> Result<()> {
        self.conn
            .execute(
                "UPDATE net_networks SET dns_pid = ?2 WHERE id = ?1",
                params![network_id, pid],
            )
            .map_err(|e| self.err(e))?;
        Ok(())
    }

    /// Lease an address on `network` and record the endpoint, in one immediate transaction
    /// so two attaches at once can't take the same address. `ep.ip` is the requested
    /// address, or UNSPECIFIED for the next free one.
    pub fn add_endpoint(&mut self, network: &Network, mut ep: Endpoint) -> Result<Endpoint> {
        let path = self.path.clone();
        let err = |source| Error::Db {
            path: path.clone(),
            source,
        };
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(err)?;
        let connected: bool = tx
            .query_row(
                "SELECT 1 FROM net_endpoints WHERE container_id = ?1 AND network_id = ?2",
                [&ep.container_id, &network.id],
                |_| Ok(true),
            )
            .optional()
            .map_err(err)?
            .unwrap_or(false);
        if connected {
            return Err(Error::AlreadyConnected {
                container: ep.container_id.clone(),
                network: network.name.clone(),
            });
        }
        let used: HashSet<Ipv4Addr> = {
            let mut st = tx
                .prepare("SELECT ip_num FROM net_endpoints WHERE network_id = ?1")
                .map_err(err)?;
            let rows = st
                .query_map([&network.id], |r| r.get::<_, u32>(0))
                .map_err(err)?;
            rows.collect::<rusqlite::Result<Vec<u32>>>()
                .map_err(err)?
                .into_iter()
                .map(Ipv4Addr::from)
                .collect()
        };
        if ep.ip.is_unspecified() {
            ep.ip = network
                .subnet
                .next_free(network.gateway, &used)
                .ok_or_else(|| Error::NetworkFull(network.name.clone()))?;
        } else {
            network.check_requested_address(ep.ip)?;
            if ep.ip == network.gateway || used.contains(&ep.ip) {
                return Err(Error::AddressInUse {
                    network: network.name.clone(),
                    ip: ep.ip,
                });
            }
        }
        ep.mac = crate::veth::mac_for(ep.ip);
        tx.execute(
            "INSERT INTO net_endpoints(container_id, network_id, container_name, aliases, ip,
                 ip_num, mac, ifname, host_veth, netns, dns)
             VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
            params![
                ep.container_id,
                network.id,
                ep.container_name,
                json(&ep.aliases),
                ep.ip.to_string(),
                u32::from(ep.ip),
                ep.mac,
                ep.ifname,
                ep.host_veth,
                ep.netns.to_string_lossy(),
                json(&ep.dns.iter().map(|d| d.to_string()).collect::<Vec<_>>()),
            ],
        )
        .map_err(err)?;
        tx.commit().map_err(err)?;
        ep.network_id = network.id.clone();
        Ok(ep)
    }

    /// The name a container's endpoints answer to (its aliases stay).
    pub fn rename_endpoints(&self, container_id: &str, new_name: &str) -> Result<()> {
        self.conn
            .execute(
                "UPDATE net_endpoints SET container_name = ?2 WHERE container_id = ?1",
                [container_id, new_name],
            )
            .map_err(|e| self.err(e))?;
        Ok(())
    }

    pub fn delete_endpoint(&self, container_id: &str, network_id: &str) -> Result<()> {
        self.conn
            .execute(
                "DELETE FROM net_endpoints WHERE container_id = ?1 AND network_id = ?2",
                [container_id, network_id],
            )
            .map_err(|e| self.err(e))?;
        Ok(())
    }

    fn endpoints_where(&self, clause: &str, arg: &str) -> Result<Vec<Endpoint>> {
        let sql = format!("SELECT {ENDPOINT_COLUMNS} FROM net_endpoints {clause} ORDER BY rowid");
        let mut st = self.conn.prepare(&sql).map_err(|e| self.err(e))?;
        let map = |r: &rusqlite::Row| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, String>(2)?,
                r.get::<_, String>(3)?,
                r.get::<_, String>(4)?,
                r.get::<_, String>(5)?,
                r.get::<_, String>(6)?,
                r.get::<_, String>(7)?,
                r.get::<_, String>(8)?,
                r.get::<_, String>(9)?,
            ))
        };
        let rows: Vec<_> = if clause.is_empty() {
            st.query_map([], map)
                .map_err(|e| self.err(e))?
                .collect::<rusqlite::Result<_>>()
        } else {
            st.query_map([arg], map)
                .map_err(|e| self.err(e))?
                .collect::<rusqlite::Result<_>>()
        }
        .map_err(|e| self.err(e))?;
        rows.into_iter()
            .map(
                |(
                    container_id,
                    network_id,
                    container_name,
                    aliases,
                    ip,
                    mac,
                    ifname,
                    host_veth,
                    netns,
                    dns,
                )| {
                    let dns: Vec<String> = unjson(&dns);
                    Ok(Endpoint {
                        container_id,
                        network_id,
                        container_name,
                        aliases: unjson(&aliases),
                        ip: crate::ipam::parse_ipv4(&ip)?,
                        mac,
                        ifname,
                        host_veth,
                        netns: PathBuf::from(netns),
                        dns: dns.iter().filter_map(|d| d.parse().ok()).collect(),
                    })
                },
            )
            .collect()
    }

    pub fn endpoints_of_network(&self, network_id: &str) -> Result<Vec<Endpoint>> {
        self.endpoints_where("WHERE network_id = ?1", network_id)
    }

    pub fn endpoints_of_container(&self, container_id: &str) -> Result<Vec<Endpoint>> {
        self.endpoints_where("WHERE container_id = ?1", container_id)
    }

    pub fn all_endpoints(&self) -> Result<Vec<Endpoint>> {
        self.endpoints_where("", "")
    }

    /// Record a container's published ports, refusing any already published by another
    /// container (same protocol and port, and the same host address or either one 0.0.0.0).
    pub fn add_ports(&mut self, container_id: &str, ports: &[PortRecord]) -> Result<()> {
        let path = self.path.clone();
        let err = |source| Error::Db {
            path: path.clone(),
            source,
        };
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(err)?;
        for p in ports {
            let m = &p.mapping;
            let holder: Option<String> = tx
                .query_row(
                    "SELECT container_id FROM net_ports WHERE proto = ?1 AND host_port = ?2
                       AND (host_ip = ?3 OR host_ip = '0.0.0.0' OR ?3 = '0.0.0.0')",
                    params![m.proto.as_str(), m.host_port, m.host_ip.to_string()],
                    |r| r.get(0),
                )
                .optional()
                .map_err(err)?;
            if let Some(container) = holder {
                return Err(Error::PortAllocated {
                    proto: m.proto.to_string(),
                    host_ip: m.host_ip,
                    host_port: m.host_port,
                    container,
                });
            }
            tx.execute(
                "INSERT INTO net_ports(container_id, proto, host_ip, host_port, container_ip,
                     container_port) VALUES(?1, ?2, ?3, ?4, ?5, ?6)",
                params![
                    container_id,
                    m.proto.as_str(),
                    m.host_ip.to_string(),
                    m.host_port,
                    p.container_ip.to_string(),
                    m.container_port
                ],
            )
            .map_err(err)?;
        }
        tx.commit().map_err(err)?;
        Ok(())
    }

    /// Whether a host port is already published (checked before a proxy binds it, so the
    /// error names the container that holds it).
    pub fn port_holder(&self, m: &PortMapping) -> Result<Option<String>> {
        self.conn
            .query_row(
                "SELECT container_id FROM net_ports WHERE proto = ?1 AND host_port = ?2
                   AND (host_ip = ?3 OR host_ip = '0.0.0.0' OR ?3 = '0.0.0.0')",
                params![m.proto.as_str(), m.host_port, m.host_ip.to_string()],
                |r| r.get(0),
            )
            .optional()
            .map_err(|e| self.err(e))
    }

    pub fn ports_of_container(&self, container_id: &str) -> Result<Vec<PortRecord>> {
        let mut st = self
            .conn
            .prepare(
                "SELECT proto, host_ip, host_port, container_ip, container_port FROM net_ports
                 WHERE container_id = ?1 ORDER BY rowid",
            )
            .map_err(|e| self.err(e))?;
        let rows = st
            .query_map([container_id], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, u16>(2)?,
                    r.get::<_, String>(3)?,
                    r.get::<_, u16>(4)?,
                ))
            })
            .map_err(|e| self.err(e))?
            .collect::<rusqlite::Result<Vec<_>>>()
            .map_err(|e| self.err(e))?;
        rows.into_iter()
            .map(
                |(proto, host_ip, host_port, container_ip, container_port)| {
                    Ok(PortRecord {
                        container_id: container_id.to_string(),
                        mapping: PortMapping {
                            proto: if proto == "udp" {
                                Protocol::Udp
                            } else {
                                Protocol::Tcp
                            },
                            host_ip: crate::ipam::parse_ipv4(&host_ip)?,
                            host_port,
                            container_port,
                        },
                        container_ip: crate::ipam::parse_ipv4(&container_ip)?,
                    })
                },
            )
            .collect()
    }

    pub fn delete_ports(&self, container_id: &str) -> Result<()> {
        self.conn
            .execute(
                "DELETE FROM net_ports WHERE container_id = ?1",
                [container_id],
            )
            .map_err(|e| self.err(e))?;
        Ok(())
    }

    pub fn proxy_pid(&self, container_id: &str) -> Result<Option<i32>> {
        self.conn
            .query_row(
                "SELECT pid FROM net_proxies WHERE container_id = ?1",
                [container_id],
                |r| r.get(0),
            )
            .optional()
            .map_err(|e| self.err(e))
    }

    pub fn set_proxy_pid(&self, container_id: &str, pid: Option<i32>) -> Result<()> {
        let res = match pid {
            Some(pid) => self.conn.execute(
                "INSERT OR REPLACE INTO net_proxies(container_id, pid) VALUES(?1, ?2)",
                params![container_id, pid],
            ),
            None => self.conn.execute(
                "DELETE FROM net_proxies WHERE container_id = ?1",
                [container_id],
            ),
        };
        res.map_err(|e| self.err(e))?;
        Ok(())
    }

    /// Every container id with anything recorded here (endpoints, ports or a proxy).
    pub fn container_ids(&self) -> Result<Vec<String>> {
        let mut st = self
            .conn
            .prepare(
                "SELECT container_id FROM net_endpoints UNION SELECT container_id FROM net_ports
                 UNION SELECT container_id FROM net_proxies",
            )
            .map_err(|e| self.err(e))?;
        let ids = st
            .query_map([], |r| r.get(0))
            .map_err(|e| self.err(e))?
            .collect::<rusqlite::Result<Vec<String>>>()
            .map_err(|e| self.err(e))?;
        Ok(ids)
    }
}

fn json(v: &[String]) -> String {
    serde_json::to_string(v).unwrap_or_else(|_| "[]".into())
}

fn unjson(s: &str) -> Vec<String> {
    serde_json::from_str(s).unwrap_or_default()
}
