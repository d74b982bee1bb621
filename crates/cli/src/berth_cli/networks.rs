//! `berth network ...`: create, ls, inspect, rm, prune; and the hidden helper processes
//! of the network layer (`network-dns`, `port-proxy`). All logic lives in berth-net.

use anyhow::{bail, Result};
use berth_engine::Engine;
use berth_net::{CreateOptions, NetworkStore};
use clap::{Args, Subcommand};
use serde_json::{json, Map, Value};

use super::Globals;

#[derive(Subcommand, Debug)]
pub enum NetworkCommand {
    /// Create a bridge network
    Create(CreateArgs),
    /// List networks
    #[command(alias = "list")]
    Ls(LsArgs),
    /// Show networks' details as JSON
    Inspect {
        #[arg(required = true)]
        networks: Vec<String>,
    },
    /// Remove networks
    #[command(alias = "remove")]
    Rm {
        #[arg(required = true)]
        networks: Vec<String>,
    },
    /// Connect a container to a network
    Connect {
        /// More names the container answers to on this network
        #[arg(long)]
        alias: Vec<String>,
        /// Its address on this network
        #[arg(long)]
        ip: Option<std::net::Ipv4Addr>,
        network: String,
        container: String,
    },
    /// Disconnect a container from a network
    Disconnect {
        /// Accepted for docker compatibility (disconnecting never needs force)
        #[arg(short, long)]
        force: bool,
        network: String,
        container: String,
    },
    /// Remove every network no container is on
    Prune {
        /// Don't ask (kept for docker compatibility; prune never asks)
        #[arg(short, long)]
        force: bool,
    },
}

#[derive(Args, Debug)]
pub struct CreateArgs {
    /// Subnet in CIDR form (default: a free /24 of 172.18.0.0-172.31.255.0)
    #[arg(long)]
    subnet: Option<String>,
    /// Gateway address of the subnet (default: its first host address)
    #[arg(long)]
    gateway: Option<String>,
    /// Driver (only "bridge")
    #[arg(short, long, default_value = "bridge")]
    driver: String,
    name: String,
}

#[derive(Args, Debug)]
pub struct LsArgs {
    /// Only network ids
    #[arg(short, long)]
    quiet: bool,
    /// Full ids
    #[arg(long)]
    no_trunc: bool,
}

/// The hidden helper processes (started by berth-net from this executable).
#[derive(Args, Debug)]
pub struct HelperArgs {
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    args: Vec<String>,
}

pub fn network_dns(a: HelperArgs) -> i32 {
    berth_net::dns::serve_main(&a.args)
}

pub fn port_proxy(a: HelperArgs) -> i32 {
    berth_net::proxy::proxy_main(&a.args)
}

fn engine(g: &Globals) -> Result<Engine> {
    g.engine()
}

pub fn run(g: &Globals, cmd: NetworkCommand) -> Result<()> {
    let store = NetworkStore::open(&g.root, &g.run_root)?;
    match cmd {
        NetworkCommand::Connect {
            alias,
            ip,
            network,
            container,
        } => {
            engine(g)?.connect_network(&container, &network, &alias, ip)?;
        }
        NetworkCommand::Disconnect {
            force: _,
            network,
            container,
        } => {
            engine(g)?.disconnect_network(&container, &network)?;
        }
        NetworkCommand::Create(a) => {
            if a.driver != "bridge" {
                bail!(
                    "network create: driver {:?} is not supported (bridge)",
                    a.driver
                );
            }
            let n = store.create(&CreateOptions {
                name: a.name,
                subnet: a.subnet,
                gateway: a.gateway,
            })?;
            println!("{}", n.id);
        }
        NetworkCommand::Ls(a) => {
            let list = store.list()?;
            let id = |s: &str| {
                if a.no_trunc {
                    s.to_string()
                } else {
                    s[..12.min(s.len())].to_string()
                }
            };
            if a.quiet {
                for n in &list {
                    println!("{}", id(&n.id));
                }
                return Ok(());
            }
            let width = if a.no_trunc { 64 } else { 12 };
            let name_w = list.iter().map(|n| n.name.len()).max().unwrap_or(4).max(4);
            println!(
                "{:<width$}   {:<name_w$}   DRIVER   SCOPE",
                "NETWORK ID", "NAME"
            );
            for n in &list {
                println!(
                    "{:<width$}   {:<name_w$}   bridge   local",
                    id(&n.id),
                    n.name
                );
            }
        }
        NetworkCommand::Inspect { networks } => {
            let mut out = Vec::new();
            let mut failed = None;
            for name in &networks {
                match store.inspect(name) {
                    Ok(d) => out.push(inspect_json(&d)),
                    Err(e) => failed = Some(e),
                }
            }
            println!("{}", serde_json::to_string_pretty(&out)?);
            if let Some(e) = failed {
                return Err(e.into());
            }
        }
        NetworkCommand::Rm { networks } => {
            let mut failed = None;
            let engine = engine(g)?;
            for name in &networks {
                // Stopped containers hold no endpoint but would join it on start.
                let users = match store.get(name) {
                    Ok(n) => engine.containers_on_network(&n.name)?,
                    Err(_) => Vec::new(),
                };
                if !users.is_empty() {
                    eprintln!(
                        "berth: error while removing network {name}: network has containers ({}): remove them first",
                        users.join(", ")
                    );
                    failed = Some(());
                    continue;
                }
                match store.remove(name) {
                    Ok(()) => println!("{name}"),
                    Err(e) => {
                        eprintln!("berth: {e}");
                        failed = Some(());
                    }
                }
            }
            if failed.is_some() {
                bail!("some networks could not be removed");
            }
        }
        NetworkCommand::Prune { force: _ } => {
            // Containers that died without their monitor (crash, reboot) first.
            let engine = engine(g)?;
            engine.reconcile_networks()?;
            // Not store.prune(): a stopped container holds no endpoint, but its network
            // must stay (docker keeps it too).
            let mut removed = Vec::new();
            for n in store.list()? {
                if berth_net::PREDEFINED.contains(&n.name.as_str())
                    || !engine.containers_on_network(&n.name)?.is_empty()
                {
                    continue;
                }
                match store.remove(&n.name) {
                    Ok(()) => removed.push(n.name),
                    Err(berth_net::Error::NetworkInUse { .. }) => {}
                    Err(e) => return Err(e.into()),
                }
            }
            if !removed.is_empty() {
                println!("Deleted Networks:");
                for n in removed {
                    println!("{n}");
                }
            }
        }
    }
    Ok(())
}

/// docker's `network inspect` shape.
fn inspect_json(d: &berth_net::NetworkDetails) -> Value {
    let n = &d.network;
    let mut containers = Map::new();
    for c in &d.containers {
        containers.insert(
            c.id.clone(),
            json!({
                "Name": c.name,
                "MacAddress": c.mac,
                "IPv4Address": format!("{}/{}", c.ip, c.prefix),
                "IPv6Address": "",
                "Aliases": c.aliases,
            }),
        );
    }
    json!({
        "Name": n.name,
        "Id": n.id,
        "Created": berth_image::images::rfc3339(n.created),
        "Scope": "local",
        "Driver": "bridge",
        "EnableIPv6": false,
        "IPAM": {
            "Driver": "default",
            "Options": {},
            "Config": [{"Subnet": n.subnet.to_string(), "Gateway": n.gateway.to_string()}],
        },
        "Internal": false,
        "Containers": containers,
        "Options": {
            "com.docker.network.bridge.name": n.bridge,
            "com.docker.network.bridge.default_bridge": (n.name == berth_net::DEFAULT_NETWORK).to_string(),
        },
        "Labels": {},
    })
}
