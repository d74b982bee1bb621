//! `berth`: argument parsing and output only; the engine's work is done by the library
//! crates (berth-image, ...). One module per command group.

mod build;
mod containers;
mod images;
mod networks;
mod output;
mod progress;
mod registry;
mod volumes;

use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};

#[derive(Parser, Debug)]
#[command(name = "berth", version, about = "berth container engine")]
struct Cli {
    /// Engine state directory (default: $BERTH_ROOT or /var/lib/berth)
    #[arg(long, global = true, value_name = "DIR")]
    root: Option<PathBuf>,
    /// Volatile state: mounts, runtime state, monitor locks (default: $BERTH_RUNROOT or
    /// /run/berth)
    #[arg(long = "runroot", global = true, value_name = "DIR")]
    run_root: Option<PathBuf>,
    /// The network of containers run without --network: bridge (default), none, host or
    /// a network name ($BERTH_DEFAULT_NETWORK; like dockerd's --bridge none)
    #[arg(long, global = true, value_name = "NETWORK")]
    default_network: Option<String>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    #[command(flatten)]
    Images(images::ImageCommands),
    /// Build an image from a Dockerfile
    Build(build::BuildArgs),
    /// Show the history of an image
    History(build::HistoryArgs),
    #[command(flatten)]
    Containers(containers::ContainerCommands),
    /// Manage volumes
    #[command(subcommand)]
    Volume(volumes::VolumeCommand),
    /// Manage networks
    #[command(subcommand)]
    Network(networks::NetworkCommand),
    /// The name server of a user network (started by berth itself)
    #[command(name = "network-dns", hide = true)]
    NetworkDns(networks::HelperArgs),
    /// The userspace proxy of a container's published ports (started by berth itself)
    #[command(name = "port-proxy", hide = true)]
    PortProxy(networks::HelperArgs),
}

/// Options every command group sees, resolved once.
#[derive(Debug)]
pub struct Globals {
    /// The engine root (image store, database).
    pub root: PathBuf,
    /// The engine's volatile state directory.
    pub run_root: PathBuf,
    /// `--default-network` / $BERTH_DEFAULT_NETWORK, when given.
    pub default_network: Option<String>,
}

impl Globals {
    /// The engine's configuration from the global options.
    pub fn engine_config(&self) -> Result<berth_engine::EngineConfig> {
        let mut cfg = berth_engine::EngineConfig::new(&self.root);
        cfg.run_root = self.run_root.clone();
        if let Some(n) = &self.default_network {
            cfg.default_network = berth_engine::NetworkMode::parse(n)
                .map_err(|e| anyhow::anyhow!("--default-network: {e}"))?;
        }
        Ok(cfg)
    }

    /// The engine, opened with the global options.
    pub fn engine(&self) -> Result<berth_engine::Engine> {
        berth_engine::Engine::open(self.engine_config()?)
            .with_context(|| format!("open engine root {}", self.root.display()))
    }
}

pub fn main() -> i32 {
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let _ = e.print();
            // docker's status for a usage error is 125 (help and --version are not errors).
            return if e.use_stderr() { 125 } else { 0 };
        }
    };
    let globals = Globals {
        root: root_dir(cli.root),
        run_root: cli
            .run_root
            .or_else(|| std::env::var_os("BERTH_RUNROOT").map(PathBuf::from))
            .unwrap_or_else(|| PathBuf::from(berth_engine::paths::DEFAULT_RUN_ROOT)),
        default_network: cli
            .default_network
            .or_else(|| std::env::var("BERTH_DEFAULT_NETWORK").ok()),
    };
    let res: Result<()> = match cli.command {
        Command::Images(c) => images::run(&globals, c),
        Command::Build(a) => build::build(&globals, a),
        Command::History(a) => build::history(&globals, a),
        Command::Containers(c) => return containers::run(&globals, c),
        Command::Volume(c) => volumes::run(&globals, c),
        Command::Network(c) => networks::run(&globals, c),
        Command::NetworkDns(a) => return networks::network_dns(a),
        Command::PortProxy(a) => return networks::port_proxy(a),
    };
    match res {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("berth: {e:#}");
            1
        }
    }
}

fn root_dir(cli_root: Option<PathBuf>) -> PathBuf {
    cli_root
        .or_else(|| std::env::var_os("BERTH_ROOT").map(PathBuf::from))
        .unwrap_or_else(|| PathBuf::from(berth_image::DEFAULT_ROOT))
}
