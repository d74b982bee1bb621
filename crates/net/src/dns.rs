//! The embedded name server of a user network: one process per network, listening on the
//! gateway address, port 53 (UDP and TCP). It answers A questions for the names and aliases (and
//! short ids) of the containers on its network from the endpoint table, read on every
//! question, so it follows containers as they come and go with no signalling. Other
//! questions go to the asking container's --dns servers, else to the network's upstream
//! servers (the host's resolv.conf), else get NXDOMAIN.

use std::io::{Read, Write};
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpListener, UdpSocket};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use simple_dns::rdata::{RData, A};
use simple_dns::{Name, Packet, PacketFlag, ResourceRecord, CLASS, QTYPE, RCODE, TYPE};

use crate::error::Result;
use crate::helper::{self, HelperCommand};
use crate::ipam::Subnet;
use crate::store::{Db, Endpoint, Network};

/// The helper's role name.
pub const ROLE: &str = "network-dns";

/// Records we hand out live shortly: a container that goes away must not linger in caches.
const TTL: u32 = 5;

pub(crate) fn start(
    cmd: &HelperCommand,
    root: &Path,
    network: &Network,
    upstream: &[IpAddr],
) -> Result<i32> {
    let mut args = vec![
        ROLE.to_string(),
        network.id.clone(),
        root.to_string_lossy().into_owned(),
        network.gateway.to_string(),
    ];
    args.extend(upstream.iter().map(|u| u.to_string()));
    let (pid, _) = helper::spawn(
        cmd,
        &args,
        &format!("name server of network {}", network.name),
    )?;
    Ok(pid)
}

pub(crate) fn is_running(pid: i32, network_id: &str) -> bool {
    helper::is_alive(pid, &[ROLE, network_id])
}

pub(crate) fn stop(pid: i32, network_id: &str) {
    helper::stop(pid, &[ROLE, network_id]);
}

/// `network-dns NETWORK_ID ROOT GATEWAY [UPSTREAM...]`: says "ok" once it listens.
pub fn serve_main(args: &[String]) -> i32 {
    let mut out = std::io::stdout();
    let [network_id, root, gateway, upstream @ ..] = args else {
        let _ = writeln!(
            out,
            "usage: network-dns NETWORK_ID ROOT GATEWAY [UPSTREAM...]"
        );
        return 2;
    };
    let Ok(gateway) = gateway.parse::<Ipv4Addr>() else {
        let _ = writeln!(out, "invalid gateway {gateway:?}");
        return 2;
    };
    let upstream: Vec<IpAddr> = upstream.iter().filter_map(|u| u.parse().ok()).collect();
    let db = match Db::open(Path::new(root)) {
        Ok(db) => db,
        Err(e) => {
            let _ = writeln!(out, "{e}");
            return 1;
        }
    };
    let socket = match UdpSocket::bind((gateway, 53)) {
        Ok(s) => s,
        Err(e) => {
            let _ = writeln!(out, "listen on {gateway}:53/udp: {e}");
            return 1;
        }
    };
    let listener = match TcpListener::bind((gateway, 53)) {
        Ok(l) => l,
        Err(e) => {
            let _ = writeln!(out, "listen on {gateway}:53/tcp: {e}");
            return 1;
        }
    };
    let _ = writeln!(out, "ok");
    let _ = out.flush();
    let subnet = db
        .networks()
        .ok()
        .and_then(|all| all.into_iter().find(|n| &n.id == network_id))
        .map(|n| n.subnet);
    let Some(subnet) = subnet else {
        let _ = writeln!(out, "network {network_id}: no such network");
        return 1;
    };
    let server = Arc::new(Server {
        db: Mutex::new(db),
        network_id: network_id.clone(),
        subnet,
        upstream,
    });
    let _ = writeln!(out, "ok");
    let _ = out.flush();
    let tcp_server = server.clone();
    std::thread::spawn(move || serve_tcp(&tcp_server, listener));
    let mut buf = vec![0u8; 4096];
    loop {
        let Ok((n, from)) = socket.recv_from(&mut buf) else {
            continue;
        };
        let query = &buf[..n];
        match server.answer(query, from) {
            Answer::Reply(bytes) => {
                let _ = socket.send_to(&bytes, from);
            }
            Answer::Forward(servers) => {
                let (query, socket) = (query.to_vec(), socket.try_clone());
                if let Ok(socket) = socket {
                    std::thread::spawn(move || {
                        if let Some(reply) = forward(&query, &servers) {
                            let _ = socket.send_to(&reply, from);
                        }
                    });
                }
            }
            Answer::Drop => {}
        }
    }
}

/// DNS over TCP (RFC 1035 4.2.2: two-byte length, then the message), a thread per client.
fn serve_tcp(server: &Arc<Server>, listener: TcpListener) {
    for conn in listener.incoming() {
        let Ok(mut conn) = conn else { continue };
        let server = server.clone();
        std::thread::spawn(move || {
            let _ = conn.set_read_timeout(Some(Duration::from_secs(10)));
            let Ok(from) = conn.peer_addr() else { return };
            loop {
                let mut len = [0u8; 2];
                if conn.read_exact(&mut len).is_err() {
                    return;
                }
                let mut query = vec![0u8; usize::from(u16::from_be_bytes(len))];
                if conn.read_exact(&mut query).is_err() {
                    return;
                }
                let reply = match server.answer(&query, from) {
                    Answer::Reply(bytes) => Some(bytes),
                    Answer::Forward(servers) => forward(&query, &servers),
                    Answer::Drop => None,
                };
                let Some(reply) = reply else { return };
                let Ok(n) = u16::try_from(reply.len()) else {
                    return;
                };
                if conn.write_all(&n.to_be_bytes()).is_err() || conn.write_all(&reply).is_err() {
                    return;
                }
            }
        });
    }
}

struct Server {
    db: Mutex<Db>,
    network_id: String,
    /// Only the network's members (and the host through its gateway address) may ask:
    /// a container of another network reaches this address too (it is the host's).
    subnet: Subnet,
    upstream: Vec<IpAddr>,
}

impl Server {
    fn answer(&self, query: &[u8], from: SocketAddr) -> Answer {
        let member = match from.ip() {
            IpAddr::V4(ip) => self.subnet.contains(ip),
            IpAddr::V6(_) => false,
        };
        if !member {
            return refused(query);
        }
        let db = match self.db.lock() {
            Ok(db) => db,
            Err(p) => p.into_inner(),
        };
        answer(&db, &self.network_id, &self.upstream, query, from)
    }
}

enum Answer {
    Reply(Vec<u8>),
    Forward(Vec<IpAddr>),
    Drop,
}

fn answer(
    db: &Db,
    network_id: &str,
    upstream: &[IpAddr],
    query: &[u8],
    from: SocketAddr,
) -> Answer {
    let Ok(packet) = Packet::parse(query) else {
        return Answer::Drop;
    };
    if packet.has_flags(PacketFlag::RESPONSE) {
        return Answer::Drop;
    }
    let Some(question) = packet.questions.first() else {
        return Answer::Drop;
    };
    let name = question
        .qname
        .to_string()
        .trim_end_matches('.')
        .to_lowercase();
    let endpoints = db.endpoints_of_network(network_id).unwrap_or_default();
    let ips: Vec<Ipv4Addr> = endpoints
        .iter()
        .filter(|e| answers_to(e, &name))
        .map(|e| e.ip)
        .collect();
    let mut reply = Packet::new_reply(packet.id());
    reply.set_flags(PacketFlag::RECURSION_AVAILABLE);
    if packet.has_flags(PacketFlag::RECURSION_DESIRED) {
        reply.set_flags(PacketFlag::RECURSION_DESIRED);
    }
    reply.questions.push(question.clone());
    if ips.is_empty() {
        let asker = match from.ip() {
            IpAddr::V4(ip) => endpoints.iter().find(|e| e.ip == ip),
            IpAddr::V6(_) => None,
        };
        let servers = match asker {
            Some(e) if !e.dns.is_empty() => e.dns.clone(),
            _ => upstream.to_vec(),
        };
        if !servers.is_empty() {
            return Answer::Forward(servers);
        }
        // Nowhere to ask: the name does not exist as far as this network knows.
        *reply.rcode_mut() = RCODE::NameError;
    } else {
        reply.set_flags(PacketFlag::AUTHORITATIVE_ANSWER);
        if question.qtype == QTYPE::TYPE(TYPE::A) {
            let Ok(owner) = Name::new(&name) else {
                return Answer::Drop;
            };
            for ip in ips {
                reply.answers.push(ResourceRecord::new(
                    owner.clone(),
                    CLASS::IN,
                    TTL,
                    RData::A(A::from(ip)),
                ));
            }
        }
        // Any other type of a known name: no error, no data (busybox and glibc ask AAAA too).
    }
    match reply.build_bytes_vec() {
        Ok(bytes) => Answer::Reply(bytes),
        Err(_) => Answer::Drop,
    }
}

fn refused(query: &[u8]) -> Answer {
    let Ok(packet) = Packet::parse(query) else {
        return Answer::Drop;
    };
    let mut reply = Packet::new_reply(packet.id());
    reply.questions = packet.questions.clone();
    *reply.rcode_mut() = RCODE::Refused;
    reply.build_bytes_vec().map_or(Answer::Drop, Answer::Reply)
}

fn answers_to(e: &Endpoint, name: &str) -> bool {
    e.container_name.eq_ignore_ascii_case(name)
        || e.aliases.iter().any(|a| a.eq_ignore_ascii_case(name))
        || (name.len() == 12 && e.container_id.starts_with(name))
        || e.container_id == name
}

fn forward(query: &[u8], servers: &[IpAddr]) -> Option<Vec<u8>> {
    for server in servers {
        let bind: SocketAddr = match server {
            IpAddr::V4(_) => (Ipv4Addr::UNSPECIFIED, 0).into(),
            IpAddr::V6(_) => (std::net::Ipv6Addr::UNSPECIFIED, 0).into(),
        };
        let Ok(up) = UdpSocket::bind(bind) else {
            continue;
        };
        let _ = up.set_read_timeout(Some(Duration::from_secs(3)));
        if up.connect((*server, 53)).is_err() || up.send(query).is_err() {
            continue;
        }
        let mut buf = vec![0u8; 4096];
        if let Ok(n) = up.recv(&mut buf) {
            buf.truncate(n);
            return Some(buf);
        }
    }
    None
}
