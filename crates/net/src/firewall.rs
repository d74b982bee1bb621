//! nftables rules, all in table `ip berth`. The rules are fixed; what changes as networks
//! and containers come and go are set and map elements, so every change is one `nft -f`
//! batch of element adds/deletes (atomic, no rule handles to track):
//!
//! * `bridges` / `self_pairs`: isolation. Forwarding from one berth bridge to another is
//!   dropped unless both are the same bridge.
//! * `subnets`: masquerade of traffic leaving the networks through any other interface.
//! * `tcp_any` / `udp_any` (host port -> container address . port) and `tcp_addr` /
//!   `udp_addr` (host address . port -> ...): DNAT of published ports, for packets to a
//!   local address arriving from outside (prerouting) or made on the host (output; not
//!   127.0.0.0/8, which the userspace proxy serves).
//!
//! Every batch starts with the declarations (idempotent) and re-states the rules after
//! flushing their chains, so a table removed behind our back is rebuilt by the next change.

use std::io::Write;
use std::net::Ipv4Addr;
use std::path::Path;
use std::process::{Command, Stdio};

use crate::error::{Error, Result};
use crate::ipam::Subnet;
use crate::ports::PortMapping;

const DECLARATIONS: &str = r#"
add table ip berth
add set ip berth bridges { type ifname; }
add set ip berth self_pairs { type ifname . ifname; }
add set ip berth subnets { type ipv4_addr; flags interval; }
add map ip berth tcp_any { type inet_service : ipv4_addr . inet_service; }
add map ip berth udp_any { type inet_service : ipv4_addr . inet_service; }
add map ip berth tcp_addr { type ipv4_addr . inet_service : ipv4_addr . inet_service; }
add map ip berth udp_addr { type ipv4_addr . inet_service : ipv4_addr . inet_service; }
add chain ip berth forward { type filter hook forward priority 0; policy accept; }
add chain ip berth ports
add chain ip berth prerouting { type nat hook prerouting priority -100; policy accept; }
add chain ip berth output { type nat hook output priority -100; policy accept; }
add chain ip berth postrouting { type nat hook postrouting priority 100; policy accept; }
flush chain ip berth forward
flush chain ip berth ports
flush chain ip berth prerouting
flush chain ip berth output
flush chain ip berth postrouting
add rule ip berth forward iifname @bridges oifname @bridges iifname . oifname != @self_pairs drop
add rule ip berth ports dnat ip to ip daddr . tcp dport map @tcp_addr
add rule ip berth ports dnat ip to tcp dport map @tcp_any
add rule ip berth ports dnat ip to ip daddr . udp dport map @udp_addr
add rule ip berth ports dnat ip to udp dport map @udp_any
add rule ip berth prerouting fib daddr type local jump ports
add rule ip berth output ip daddr != 127.0.0.0/8 fib daddr type local jump ports
add rule ip berth postrouting ip saddr @subnets oifname != @bridges masquerade
"#;

fn nft_program() -> &'static str {
    ["/usr/sbin/nft", "/sbin/nft", "/usr/bin/nft"]
        .into_iter()
        .find(|p| Path::new(p).exists())
        .unwrap_or("nft")
}

fn run(script: &str) -> Result<()> {
    let mut child = Command::new(nft_program())
        .args(["-f", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| {
            Error::Nft(format!(
                "run {}: {e} (install the nftables package)",
                nft_program()
            ))
        })?;
    if let Some(mut stdin) = child.stdin.take() {
        stdin
            .write_all(script.as_bytes())
            .map_err(|e| Error::Nft(format!("write rules: {e}")))?;
    }
    let out = child
        .wait_with_output()
        .map_err(|e| Error::Nft(format!("wait for nft: {e}")))?;
    if out.status.success() {
        Ok(())
    } else {
        let msg = String::from_utf8_lossy(&out.stderr);
        Err(Error::Nft(
            msg.lines().next().unwrap_or("nft failed").to_string(),
        ))
    }
}

/// Apply additions in one atomic batch (with the declarations).
fn add(elements: &[String]) -> Result<()> {
    let mut script = String::from(DECLARATIONS);
    for e in elements {
        script.push_str("add element ip berth ");
        script.push_str(e);
        script.push('\n');
    }
    run(&script)
}

/// Remove elements: one batch; if it fails (one of them already gone), each on its own,
/// ignoring the ones that are gone.
fn delete(elements: &[String]) {
    if elements.is_empty() {
        return;
    }
    let script: String = elements
        .iter()
        .map(|e| format!("delete element ip berth {e}\n"))
        .collect();
    if run(&script).is_err() {
        for e in elements {
            let _ = run(&format!("delete element ip berth {e}\n"));
        }
    }
}

fn network_elements(bridge: &str, subnet: &Subnet) -> Vec<String> {
    vec![
        format!("bridges {{ \"{bridge}\" }}"),
        format!("self_pairs {{ \"{bridge}\" . \"{bridge}\" }}"),
        format!("subnets {{ {subnet} }}"),
    ]
}

pub(crate) fn add_network(bridge: &str, subnet: &Subnet) -> Result<()> {
    add(&network_elements(bridge, subnet))
}

pub(crate) fn remove_network(bridge: &str, subnet: &Subnet) {
    delete(&network_elements(bridge, subnet))
}

/// The table goes when the last network does.
pub(crate) fn remove_table() {
    let _ = run("delete table ip berth\n");
}

fn port_element(m: &PortMapping, ip: Ipv4Addr, with_target: bool) -> String {
    let target = if with_target {
        format!(" : {ip} . {}", m.container_port)
    } else {
        String::new()
    };
    if m.host_ip.is_unspecified() {
        format!("{}_any {{ {}{target} }}", m.proto, m.host_port)
    } else {
        format!(
            "{}_addr {{ {} . {}{target} }}",
            m.proto, m.host_ip, m.host_port
        )
    }
}

/// DNAT for published ports (host port already resolved) to `container_ip`.
pub(crate) fn add_ports(ports: &[(PortMapping, Ipv4Addr)]) -> Result<()> {
    add(&ports
        .iter()
        .map(|(m, ip)| port_element(m, *ip, true))
        .collect::<Vec<_>>())
}

pub(crate) fn remove_ports(ports: &[PortMapping]) {
    delete(
        &ports
            .iter()
            .map(|m| port_element(m, Ipv4Addr::UNSPECIFIED, false))
            .collect::<Vec<_>>(),
    )
}

/// The rule set as `nft list table ip berth` prints it ("" when there is none): for tests
/// and `network inspect --verbose`-like diagnostics.
pub fn list_table() -> String {
    Command::new(nft_program())
        .args(["list", "table", "ip", "berth"])
        .stderr(Stdio::null())
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        .unwrap_or_default()
}
