//! The userspace port proxy of a container that publishes ports. The DNAT rules carry
//! traffic to the host's addresses; a connection to 127.0.0.1 never passes the nat
//! prerouting hook (and routing it to a bridge needs route_localnet), so this process
//! listens on the published address and port and relays to the container. Holding the
//! port also makes a port already bound by another program a clear error at publish time.

use std::collections::HashMap;
use std::io::Write;
use std::net::{Ipv4Addr, Shutdown, SocketAddr, SocketAddrV4, TcpListener, TcpStream, UdpSocket};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::error::{Error, Result};
use crate::helper::{self, HelperCommand};
use crate::ports::{PortMapping, Protocol};

/// The helper's role name (first argument after the helper command).
pub const ROLE: &str = "port-proxy";

/// Start the proxy of `container_id` for `ports` (each with the container address it goes
/// to). Returns its pid and the host ports it bound, in order (port 0 resolved).
pub(crate) fn start(
    cmd: &HelperCommand,
    container_id: &str,
    ports: &[(PortMapping, Ipv4Addr)],
) -> Result<(i32, Vec<u16>)> {
    let mut args = vec![ROLE.to_string(), container_id.to_string()];
    for (m, ip) in ports {
        args.push(format!(
            "{}:{}:{}:{}:{}",
            m.proto, m.host_ip, m.host_port, ip, m.container_port
        ));
    }
    let (pid, bound) = helper::spawn(cmd, &args, "port proxy").map_err(|e| match e {
        Error::Helper { reason, .. } if reason.starts_with("bind ") => bind_error(ports, &reason),
        e => e,
    })?;
    let bound: Vec<u16> = bound
        .split_whitespace()
        .filter_map(|p| p.parse().ok())
        .collect();
    if bound.len() != ports.len() {
        helper::stop(pid, &marks(container_id));
        return Err(Error::Helper {
            what: "port proxy".into(),
            reason: format!(
                "reported {} ports for {} mappings",
                bound.len(),
                ports.len()
            ),
        });
    }
    Ok((pid, bound))
}

/// "bind INDEX REASON" from the proxy -> the error naming that mapping.
fn bind_error(ports: &[(PortMapping, Ipv4Addr)], reason: &str) -> Error {
    let mut it = reason.splitn(3, ' ').skip(1);
    let idx: usize = it.next().and_then(|i| i.parse().ok()).unwrap_or(0);
    let why = it.next().unwrap_or("").to_string();
    match ports.get(idx) {
        Some((m, _)) => Error::PortBind {
            proto: m.proto.to_string(),
            host_ip: m.host_ip,
            host_port: m.host_port,
            reason: why,
        },
        None => Error::Helper {
            what: "port proxy".into(),
            reason: reason.to_string(),
        },
    }
}

pub(crate) fn marks(container_id: &str) -> [&str; 2] {
    [ROLE, container_id]
}

pub(crate) fn stop(pid: i32, container_id: &str) {
    helper::stop(pid, &marks(container_id));
}

struct Forward {
    proto: Protocol,
    listen: SocketAddrV4,
    target: SocketAddrV4,
}

fn parse_forward(s: &str) -> Option<Forward> {
    let f: Vec<&str> = s.split(':').collect();
    let [proto, hip, hport, cip, cport] = f.as_slice() else {
        return None;
    };
    Some(Forward {
        proto: match *proto {
            "tcp" => Protocol::Tcp,
            "udp" => Protocol::Udp,
            _ => return None,
        },
        listen: SocketAddrV4::new(hip.parse().ok()?, hport.parse().ok()?),
        target: SocketAddrV4::new(cip.parse().ok()?, cport.parse().ok()?),
    })
}

enum Bound {
    Tcp(TcpListener),
    Udp(UdpSocket),
}

/// `port-proxy CONTAINER_ID PROTO:HOSTIP:HOSTPORT:CTRIP:CTRPORT...`: binds every port,
/// says "ok PORT..." (or "bind INDEX REASON") on stdout, then relays until killed.
pub fn proxy_main(args: &[String]) -> i32 {
    let mut out = std::io::stdout();
    let Some((_, specs)) = args.split_first() else {
        let _ = writeln!(out, "usage: port-proxy CONTAINER_ID SPEC...");
        return 2;
    };
    let mut forwards = Vec::new();
    for s in specs {
        match parse_forward(s) {
            Some(f) => forwards.push(f),
            None => {
                let _ = writeln!(out, "invalid forward {s:?}");
                return 2;
            }
        }
    }
    let mut bound = Vec::new();
    for (i, f) in forwards.iter().enumerate() {
        let b = match f.proto {
            Protocol::Tcp => TcpListener::bind(f.listen).map(Bound::Tcp),
            Protocol::Udp => UdpSocket::bind(f.listen).map(Bound::Udp),
        };
        match b {
            Ok(b) => bound.push(b),
            Err(e) => {
                let _ = writeln!(out, "bind {i} {e}");
                return 1;
            }
        }
    }
    let ports: Vec<String> = bound
        .iter()
        .map(|b| {
            match b {
                Bound::Tcp(l) => l.local_addr(),
                Bound::Udp(u) => u.local_addr(),
            }
            .map(|a| a.port().to_string())
            .unwrap_or_default()
        })
        .collect();
    let _ = writeln!(out, "ok {}", ports.join(" "));
    let _ = out.flush();
    // Nothing more is written to stdout: the parent reads the first line and lets go.
    let mut threads = Vec::new();
    for (b, f) in bound.into_iter().zip(forwards) {
        threads.push(std::thread::spawn(move || match b {
            Bound::Tcp(l) => relay_tcp(l, f.target),
            Bound::Udp(u) => relay_udp(u, f.target),
        }));
    }
    for t in threads {
        let _ = t.join();
    }
    0
}

fn relay_tcp(listener: TcpListener, target: SocketAddrV4) {
    for client in listener.incoming() {
        let Ok(client) = client else { continue };
        std::thread::spawn(move || {
            let Ok(server) = TcpStream::connect_timeout(&target.into(), Duration::from_secs(10))
            else {
                return;
            };
            let (Ok(c2), Ok(s2)) = (client.try_clone(), server.try_clone()) else {
                return;
            };
            let up = std::thread::spawn(move || pipe(c2, s2));
            pipe(server, client);
            let _ = up.join();
        });
    }
}

/// Copy one direction, then pass the end of stream on.
fn pipe(mut from: TcpStream, mut to: TcpStream) {
    let _ = std::io::copy(&mut from, &mut to);
    let _ = to.shutdown(Shutdown::Write);
}

/// One upstream socket per client address; replies go back through the listening socket.
fn relay_udp(socket: UdpSocket, target: SocketAddrV4) {
    let socket = Arc::new(socket);
    let clients: Arc<Mutex<HashMap<SocketAddr, Arc<UdpSocket>>>> = Arc::default();
    let mut buf = vec![0u8; 65536];
    loop {
        let Ok((n, client)) = socket.recv_from(&mut buf) else {
            continue;
        };
        let upstream = {
            let mut map = match clients.lock() {
                Ok(m) => m,
                Err(p) => p.into_inner(),
            };
            if let Some(u) = map.get(&client) {
                u.clone()
            } else {
                let Ok(u) = UdpSocket::bind((Ipv4Addr::UNSPECIFIED, 0)) else {
                    continue;
                };
                if u.connect(target).is_err() {
                    continue;
                }
                let _ = u.set_read_timeout(Some(Duration::from_secs(120)));
                let u = Arc::new(u);
                map.insert(client, u.clone());
                let (back, u2, clients2) = (socket.clone(), u.clone(), clients.clone());
                std::thread::spawn(move || {
                    let mut buf = vec![0u8; 65536];
                    while let Ok(n) = u2.recv(&mut buf) {
                        let _ = back.send_to(&buf[..n], client);
                    }
                    if let Ok(mut m) = clients2.lock() {
                        m.remove(&client);
                    }
                });
                u
            }
        };
        let _ = upstream.send(&buf[..n]);
    }
}
