//! `berth volume create/ls/inspect/rm/prune`: arguments and output; berth-engine's
//! VolumeStore does the work.

use anyhow::{Context, Result};
use berth_engine::volumes::{Volume, VolumeStore};
use clap::Subcommand;
use serde_json::json;

use super::Globals;

#[derive(Subcommand, Debug)]
pub enum VolumeCommand {
    /// Create a volume (a random name if none is given)
    Create {
        name: Option<String>,
        /// Set a label (KEY=VALUE)
        #[arg(short, long)]
        label: Vec<String>,
    },
    /// List volumes
    #[command(visible_alias = "list")]
    Ls {
        /// Only names
        #[arg(short, long)]
        quiet: bool,
    },
    /// Show volumes as JSON
    Inspect {
        #[arg(required = true)]
        names: Vec<String>,
    },
    /// Remove volumes (not while a container uses them)
    #[command(visible_alias = "remove")]
    Rm {
        #[arg(required = true)]
        names: Vec<String>,
    },
    /// Remove anonymous volumes no container uses (--all: named ones too)
    Prune {
        #[arg(short, long)]
        all: bool,
        /// Don't ask (prune never asks)
        #[arg(short, long)]
        force: bool,
    },
}

fn details(v: &Volume) -> serde_json::Value {
    let labels: serde_json::Map<String, serde_json::Value> = v
        .labels
        .iter()
        .map(|(k, val)| (k.clone(), json!(val)))
        .collect();
    json!({
        "CreatedAt": berth_image::images::rfc3339(v.created),
        "Driver": "local",
        "Labels": labels,
        "Mountpoint": v.mountpoint,
        "Name": v.name,
        "Options": {},
        "Scope": "local",
    })
}

pub fn run(g: &Globals, cmd: VolumeCommand) -> Result<()> {
    let store = VolumeStore::open(&g.root)
        .with_context(|| format!("open volumes under {}", g.root.display()))?;
    let in_use = || -> Result<Vec<String>> { Ok(g.engine()?.volumes_in_use()?) };
    match cmd {
        VolumeCommand::Create { name, label } => {
            let labels: Vec<(String, String)> = label
                .iter()
                .map(|l| {
                    let (k, v) = l.split_once('=').unwrap_or((l, ""));
                    (k.to_string(), v.to_string())
                })
                .collect();
            let v = store.create_with_labels(name.as_deref(), &labels)?;
            println!("{}", v.name);
        }
        VolumeCommand::Ls { quiet } => {
            let list = store.list()?;
            if quiet {
                for v in &list {
                    println!("{}", v.name);
                }
            } else {
                println!("DRIVER    VOLUME NAME");
                for v in &list {
                    println!("local     {}", v.name);
                }
            }
        }
        VolumeCommand::Inspect { names } => {
            let mut out = Vec::new();
            let mut failed = None;
            for n in &names {
                match store.get(n) {
                    Ok(v) => out.push(details(&v)),
                    Err(e) => failed = Some(e),
                }
            }
            println!("{}", serde_json::to_string_pretty(&out)?);
            if let Some(e) = failed {
                return Err(e.into());
            }
        }
        VolumeCommand::Rm { names } => {
            let used = in_use()?;
            let mut failed = None;
            for n in &names {
                let users: Vec<String> = used.iter().filter(|u| *u == n).cloned().collect();
                let users = if users.is_empty() {
                    Vec::new()
                } else {
                    users_of(g, n)?
                };
                match store.remove(n, &users) {
                    Ok(()) => println!("{n}"),
                    Err(e) => {
                        eprintln!("berth: {e}");
                        failed = Some(e);
                    }
                }
            }
            if let Some(e) = failed {
                return Err(e.into());
            }
        }
        VolumeCommand::Prune { all, .. } => {
            let used = in_use()?;
            let removed = if all {
                store.prune_all(&used)?
            } else {
                store.prune(&used)?
            };
            if !removed.is_empty() {
                println!("Deleted Volumes:");
                for n in &removed {
                    println!("{n}");
                }
                println!();
            }
            println!("Total reclaimed: {} volumes", removed.len());
        }
    }
    Ok(())
}

/// The names of the containers that mount volume `name`.
fn users_of(g: &Globals, name: &str) -> Result<Vec<String>> {
    let e = g.engine()?;
    Ok(e.list(true)?
        .into_iter()
        .filter(|c| {
            e.find(&c.id).is_ok_and(|r| {
                r.config
                    .mounts
                    .iter()
                    .any(|m| m.kind == "volume" && m.source == name)
            })
        })
        .map(|c| c.names.join(",").trim_start_matches('/').to_string())
        .collect())
}
