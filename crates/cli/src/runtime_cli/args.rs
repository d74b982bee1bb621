//! runc's command line: global flags, verbs, and their flags (before or after the id).

use clap::{Args, Parser, Subcommand, ValueEnum};
use std::path::PathBuf;

#[derive(Parser, Debug)]
#[command(
    name = "berth-runtime",
    version,
    about = "berth's OCI runtime (runc-compatible)"
)]
pub struct Cli {
    /// Where container state lives
    #[arg(long, global = true, default_value = "/run/berth-runtime")]
    pub root: PathBuf,
    /// Log file (errors and warnings are written here as well as to stderr)
    #[arg(long, global = true)]
    pub log: Option<PathBuf>,
    /// Log format
    #[arg(long = "log-format", global = true, value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
    /// Also log debug messages
    #[arg(long, global = true)]
    pub debug: bool,
    /// Use systemd for cgroups (not supported: refused with an error)
    #[arg(long = "systemd-cgroup", global = true)]
    pub systemd_cgroup: bool,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Copy, Clone, Debug, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Copy, Clone, Debug, PartialEq, Eq, ValueEnum)]
pub enum ListFormat {
    Table,
    Json,
}

#[derive(Args, Debug)]
pub struct CreateArgs {
    /// Container id
    pub id: String,
    /// Bundle directory (holding config.json)
    #[arg(short, long, default_value = ".")]
    pub bundle: PathBuf,
    /// Write the container's init pid here
    #[arg(long = "pid-file")]
    pub pid_file: Option<PathBuf>,
    /// Unix socket that receives the terminal's master fd
    #[arg(long = "console-socket")]
    pub console_socket: Option<PathBuf>,
    /// Use chroot instead of pivot_root (for a root on a ramdisk)
    #[arg(long = "no-pivot")]
    pub no_pivot: bool,
    /// Don't create a session keyring for the container
    #[arg(long = "no-new-keyring")]
    pub no_new_keyring: bool,
    /// Pass this many extra fds (from 3 up) to the container
    #[arg(long = "preserve-fds", default_value_t = 0)]
    pub preserve_fds: i32,
}

#[derive(Args, Debug)]
pub struct RunArgs {
    #[command(flatten)]
    pub create: CreateArgs,
    /// Don't wait: return once the container has started
    #[arg(short, long)]
    pub detach: bool,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Write a default config.json
    Spec {
        #[arg(short, long, default_value = ".")]
        bundle: PathBuf,
        /// A config for running as a non-root user
        #[arg(long)]
        rootless: bool,
    },
    /// Create a container (its process waits for `start`)
    Create(CreateArgs),
    /// Run the user's program in a created container
    Start { id: String },
    /// Create and start a container; wait for it unless -d
    Run(RunArgs),
    /// Print a container's state (runtime-spec JSON)
    State { id: String },
    /// Send a signal (default SIGTERM) to a container's init
    Kill {
        id: String,
        #[arg(default_value = "SIGTERM")]
        signal: String,
        /// Signal every process in the container
        #[arg(short, long)]
        all: bool,
    },
    /// Delete a container and everything it holds
    Delete {
        id: String,
        /// Kill it first if it is running
        #[arg(short, long)]
        force: bool,
    },
    /// List containers
    #[command(visible_alias = "ls")]
    List {
        #[arg(short, long, value_enum, default_value_t = ListFormat::Table)]
        format: ListFormat,
        /// Ids only
        #[arg(short, long)]
        quiet: bool,
    },
    /// Print the runtime-spec features document
    Features,
}
