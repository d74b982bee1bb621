//! The contents of a container's /etc/hosts, /etc/resolv.conf and /etc/hostname.

use std::net::{IpAddr, Ipv4Addr};

/// As docker writes it: loopback and IPv6 boilerplate, --add-host entries, then the
/// container's own address with its hostname.
pub fn hosts_file(
    hostname: &str,
    own_ip: Option<Ipv4Addr>,
    extra_hosts: &[(String, IpAddr)],
) -> String {
    let mut s = String::from(
        "127.0.0.1\tlocalhost\n\
         ::1\tlocalhost ip6-localhost ip6-loopback\n\
         fe00::0\tip6-localnet\n\
         ff00::0\tip6-mcastprefix\n\
         ff02::1\tip6-allnodes\n\
         ff02::2\tip6-allrouters\n",
    );
    for (name, ip) in extra_hosts {
        s.push_str(&format!("{ip}\t{name}\n"));
    }
    if let Some(ip) = own_ip {
        s.push_str(&format!("{ip}\t{hostname}\n"));
    }
    s
}

pub fn hostname_file(hostname: &str) -> String {
    format!("{hostname}\n")
}

/// `nameservers` first (the network's name server, or --dns); when none are given, the
/// host's non-loopback servers (a loopback resolver of the host is unreachable from the
/// container), and docker's public fallback when the host has none left. `search` and
/// `options` lines of the host's file are kept.
pub fn resolv_conf(nameservers: &[IpAddr], host_resolv_conf: &str) -> String {
    let mut servers: Vec<IpAddr> = nameservers.to_vec();
    if servers.is_empty() {
        servers = host_nameservers(host_resolv_conf)
            .into_iter()
            .filter(|ip| !ip.is_loopback())
            .collect();
    }
    if servers.is_empty() {
        servers = vec![
            IpAddr::V4(Ipv4Addr::new(8, 8, 8, 8)),
            IpAddr::V4(Ipv4Addr::new(8, 8, 4, 4)),
        ];
    }
    let mut s = String::new();
    for line in host_resolv_conf.lines() {
        let l = line.trim();
        if l.starts_with("search ") || l.starts_with("options ") {
            s.push_str(l);
            s.push('\n');
        }
    }
    for ip in servers {
        s.push_str(&format!("nameserver {ip}\n"));
    }
    s
}

/// The `nameserver` addresses of a resolv.conf.
pub fn host_nameservers(resolv_conf: &str) -> Vec<IpAddr> {
    resolv_conf
        .lines()
        .filter_map(|l| l.trim().strip_prefix("nameserver"))
        .filter_map(|rest| rest.split_whitespace().next()?.parse().ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn files() {
        let h = hosts_file(
            "web",
            Some(Ipv4Addr::new(172, 18, 0, 2)),
            &[("db".into(), "10.0.0.5".parse().unwrap())],
        );
        assert!(h.starts_with("127.0.0.1\tlocalhost\n"));
        assert!(h.ends_with("10.0.0.5\tdb\n172.18.0.2\tweb\n"));
        let host =
            "search example.org\nnameserver 127.0.0.53\nnameserver 10.1.1.1\noptions edns0\n";
        assert_eq!(
            resolv_conf(&[], host),
            "search example.org\noptions edns0\nnameserver 10.1.1.1\n"
        );
        assert_eq!(
            resolv_conf(&["172.18.0.1".parse().unwrap()], "nameserver 127.0.0.1\n"),
            "nameserver 172.18.0.1\n"
        );
        assert_eq!(
            resolv_conf(&[], "nameserver 127.0.0.1\n"),
            "nameserver 8.8.8.8\nnameserver 8.8.4.4\n"
        );
    }
}
