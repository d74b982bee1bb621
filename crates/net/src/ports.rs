//! Published ports: `-p [hostip:][hostport:]ctrport[/tcp|udp]` parsing and the mapping type.

use std::fmt;
use std::net::Ipv4Addr;

use crate::error::{Error, Result};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Protocol {
    Tcp,
    Udp,
}

impl Protocol {
    pub fn as_str(&self) -> &'static str {
        match self {
            Protocol::Tcp => "tcp",
            Protocol::Udp => "udp",
        }
    }
}

impl fmt::Display for Protocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One published port. `host_port` 0 means "any free port" (`-p 80`, `-P`): the proxy
/// binds port 0 and the attachment reports the port it got.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
pub struct PortMapping {
    pub proto: Protocol,
    /// 0.0.0.0 = every address of the host.
    pub host_ip: Ipv4Addr,
    pub host_port: u16,
    pub container_port: u16,
}

impl fmt::Display for PortMapping {
    /// As `docker port` prints it: `80/tcp -> 0.0.0.0:8080`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}/{} -> {}:{}",
            self.container_port, self.proto, self.host_ip, self.host_port
        )
    }
}

/// Parse one `-p` value naming single ports (no ranges).
pub fn parse_publish(s: &str) -> Result<PortMapping> {
    let mut all = parse_publish_all(s)?;
    if all.len() != 1 {
        return Err(bad(s, "a port range here; give one port"));
    }
    Ok(all.remove(0))
}

/// Parse one `-p` value: `ctr`, `host:ctr`, `ip:host:ctr`, `ip::ctr`, each port may be a
/// range `a-b` (host and container ranges of the same length, or a host range for a
/// single container port is refused as docker's load-balancing form is not supported),
/// optionally followed by `/tcp` or `/udp`.
pub fn parse_publish_all(s: &str) -> Result<Vec<PortMapping>> {
    let (rest, proto) = match s.rsplit_once('/') {
        Some((rest, "tcp")) => (rest, Protocol::Tcp),
        Some((rest, "udp")) => (rest, Protocol::Udp),
        Some((_, other)) => {
            return Err(bad(s, &format!("unknown protocol {other:?} (tcp or udp)")));
        }
        None => (s, Protocol::Tcp),
    };
    if rest.contains('[') {
        return Err(bad(s, "IPv6 host addresses are not supported"));
    }
    let parts: Vec<&str> = rest.split(':').collect();
    let (ip, host, ctr) = match parts.as_slice() {
        [ctr] => ("", "", *ctr),
        [host, ctr] => ("", *host, *ctr),
        [ip, host, ctr] => (*ip, *host, *ctr),
        _ => return Err(bad(s, "want [hostip:][hostport:]containerport[/proto]")),
    };
    let host_ip = if ip.is_empty() {
        Ipv4Addr::UNSPECIFIED
    } else {
        ip.parse()
            .map_err(|_| bad(s, &format!("invalid host address {ip:?}")))?
    };
    let ctr = range(s, ctr, false)?;
    let host = if host.is_empty() {
        None
    } else {
        Some(range(s, host, true)?)
    };
    let mut out = Vec::new();
    for (i, container_port) in (ctr.0..=ctr.1).enumerate() {
        let host_port = match host {
            None => 0,
            Some((a, b)) => {
                if b - a != ctr.1 - ctr.0 {
                    return Err(bad(s, "host and container port ranges differ in length"));
                }
                a + i as u16
            }
        };
        out.push(PortMapping {
            proto,
            host_ip,
            host_port,
            container_port,
        });
    }
    Ok(out)
}

fn range(spec: &str, s: &str, host: bool) -> Result<(u16, u16)> {
    let port = |p: &str| -> Result<u16> {
        match p.parse::<u16>() {
            Ok(n) if n > 0 => Ok(n),
            _ => Err(bad(
                spec,
                &format!(
                    "invalid {} port {p:?} (1-65535)",
                    if host { "host" } else { "container" }
                ),
            )),
        }
    };
    let (a, b) = match s.split_once('-') {
        Some((a, b)) => (port(a)?, port(b)?),
        None => {
            let p = port(s)?;
            (p, p)
        }
    };
    if a > b {
        return Err(bad(spec, &format!("empty port range {s:?}")));
    }
    Ok((a, b))
}

fn bad(spec: &str, reason: &str) -> Error {
    Error::InvalidPublish {
        spec: spec.to_string(),
        reason: reason.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(proto: Protocol, ip: [u8; 4], host: u16, ctr: u16) -> PortMapping {
        PortMapping {
            proto,
            host_ip: Ipv4Addr::from(ip),
            host_port: host,
            container_port: ctr,
        }
    }

    #[test]
    fn publish_forms() {
        use Protocol::*;
        assert_eq!(parse_publish("80").unwrap(), m(Tcp, [0; 4], 0, 80));
        assert_eq!(parse_publish("8080:80").unwrap(), m(Tcp, [0; 4], 8080, 80));
        assert_eq!(
            parse_publish("127.0.0.1:8080:80/udp").unwrap(),
            m(Udp, [127, 0, 0, 1], 8080, 80)
        );
        assert_eq!(
            parse_publish("127.0.0.1::80").unwrap(),
            m(Tcp, [127, 0, 0, 1], 0, 80)
        );
        assert_eq!(
            parse_publish_all("8000-8001:80-81").unwrap(),
            vec![m(Tcp, [0; 4], 8000, 80), m(Tcp, [0; 4], 8001, 81)]
        );
        for bad in [
            "",
            "0",
            "70000",
            "80/sctp",
            "a:b",
            "1.2.3:80:80",
            "8000-8002:80-81",
            "90-80",
            "[::1]:80:80",
            "1:2:3:4",
            "8000-8001:80",
        ] {
            assert!(parse_publish_all(bad).is_err(), "{bad}");
        }
        assert!(parse_publish("8000-8001:80-81").is_err());
    }
}
