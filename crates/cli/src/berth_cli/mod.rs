//! `berth`: argument parsing and output only; the engine's work is done by the library
//! crates (berth-image, ...). One module per command group.

mod images;
mod output;

use std::path::PathBuf;

use anyhow::Result;
use clap::{Parser, Subcommand};

#[derive(Parser, Debug)]
#[command(name = "berth", version, about = "berth container engine")]
struct Cli {
    /// Engine state directory (default: $BERTH_ROOT or /var/lib/berth)
    #[arg(long, global = true, value_name = "DIR")]
    root: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    #[command(flatten)]
    Images(images::ImageCommands),
}

/// Options every command group sees, resolved once.
#[derive(Debug)]
pub struct Globals {
    /// The engine root (image store, database).
    pub root: PathBuf,
}

pub fn main() -> i32 {
    let cli = Cli::parse();
    let globals = Globals {
        root: root_dir(cli.root),
    };
    let res: Result<()> = match cli.command {
        Command::Images(c) => images::run(&globals, c),
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
