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
    /// Where container state lives (as non-root: $XDG_RUNTIME_DIR/berth-runtime)
    #[arg(long, global = true, default_value_os_t = default_root())]
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

/// runc's rule: /run/berth-runtime for root; for anyone else $XDG_RUNTIME_DIR/berth-runtime
/// (a non-root user can't write /run), falling back to /run/berth-runtime without it.
pub fn default_root() -> PathBuf {
    let rootless = !nix::unistd::geteuid().is_root();
    match std::env::var_os("XDG_RUNTIME_DIR").filter(|d| !d.is_empty()) {
        Some(dir) if rootless => PathBuf::from(dir).join("berth-runtime"),
        _ => PathBuf::from("/run/berth-runtime"),
    }
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
    /// Suspend every process of a container (cgroup freezer)
    Pause(crate::runtime_cli::cgroup_verbs::IdArg),
    /// Resume every process of a paused container
    Resume(crate::runtime_cli::cgroup_verbs::IdArg),
    /// Show the processes running in a container
    Ps(crate::runtime_cli::cgroup_verbs::PsArgs),
    /// Print a container's events (stats, OOM kills) as JSON lines
    Events(crate::runtime_cli::cgroup_verbs::EventsArgs),
    /// Change a container's resource limits
    Update(crate::runtime_cli::cgroup_verbs::UpdateArgs),
    /// Print the runtime-spec features document
    Features,
    /// Run another process in a running container
    Exec(ExecArgs),
}

#[derive(Args, Debug)]
pub struct ExecArgs {
    /// Container id
    pub id: String,
    /// The command and its arguments (unless --process)
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub command: Vec<String>,
    /// A runtime-spec process JSON file describing what to run
    #[arg(short, long)]
    pub process: Option<PathBuf>,
    /// Allocate a terminal
    #[arg(short, long)]
    pub tty: bool,
    /// Unix socket that receives the terminal's master fd
    #[arg(long = "console-socket")]
    pub console_socket: Option<PathBuf>,
    /// Don't wait for the process
    #[arg(short, long)]
    pub detach: bool,
    /// Write the process's pid here
    #[arg(long = "pid-file")]
    pub pid_file: Option<PathBuf>,
    /// Working directory in the container
    #[arg(long)]
    pub cwd: Option<PathBuf>,
    /// Set an environment variable (KEY=VALUE), repeatable
    #[arg(short, long)]
    pub env: Vec<String>,
    /// uid[:gid] to run as
    #[arg(short, long)]
    pub user: Option<String>,
    /// Additional group ids, repeatable
    #[arg(short = 'g', long = "additional-gids")]
    pub additional_gids: Vec<u32>,
    /// Add a capability (e.g. CAP_NET_ADMIN), repeatable
    #[arg(short, long)]
    pub cap: Vec<String>,
    /// Set no_new_privs for the process
    #[arg(long = "no-new-privs")]
    pub no_new_privs: bool,
    /// Pass this many extra fds (from 3 up) to the process
    #[arg(long = "preserve-fds", default_value_t = 0)]
    pub preserve_fds: i32,
}
