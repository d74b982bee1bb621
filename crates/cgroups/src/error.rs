//! The one error type of the crate. Every variant that concerns a file carries its path.

use std::io;
use std::path::PathBuf;

/// Anything that can go wrong while managing a container's cgroups.
#[derive(Debug, thiserror::Error)]
pub enum CgroupError {
    /// A cgroup file could not be read.
    #[error("reading {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// What the kernel said.
        source: io::Error,
    },
    /// A value could not be written to a cgroup file.
    #[error("writing {value:?} to {path}: {source}")]
    Write {
        /// The file.
        path: PathBuf,
        /// What we tried to write.
        value: String,
        /// What the kernel said.
        source: io::Error,
    },
    /// A cgroup directory could not be created.
    #[error("creating cgroup {path}: {source}")]
    Create {
        /// The directory.
        path: PathBuf,
        /// What the kernel said.
        source: io::Error,
    },
    /// A cgroup directory could not be removed.
    #[error("removing cgroup {path}: {source}")]
    Remove {
        /// The directory.
        path: PathBuf,
        /// What the kernel said.
        source: io::Error,
    },
    /// A cgroup file held something we could not parse.
    #[error("parsing {path}: {reason}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// What was wrong.
        reason: String,
    },
    /// The layout of this host cannot honour a requested resource.
    #[error("{resource} is not supported: {reason}")]
    Unsupported {
        /// The resource as named in config.json (e.g. `memory.kernel`, `unified["io.max"]`).
        resource: String,
        /// Why (which hierarchy or file is missing).
        reason: String,
    },
    /// A resource value that is invalid on its own or against the cgroup's current state.
    #[error("invalid {resource}: {reason}")]
    Invalid {
        /// The resource as named in config.json.
        resource: String,
        /// What is wrong with it.
        reason: String,
    },
    /// `linux.cgroupsPath` (or a stored cgroup path) cannot be used.
    #[error("invalid cgroups path {path:?}: {reason}")]
    Path {
        /// The path as given.
        path: String,
        /// Why it is refused.
        reason: String,
    },
    /// A systemd-style `slice:prefix:name` path was given.
    #[error(
        "cgroups path {0:?} is in systemd form (slice:prefix:name); systemd cgroups are not \
         supported yet: use a cgroupfs path such as /berth/<id>"
    )]
    Systemd(String),
    /// No usable cgroup file system is mounted.
    #[error("no cgroup file system found: {0}")]
    NoCgroupFs(String),
    /// The freezer did not reach the wanted state.
    #[error("freezing {path}: {reason}")]
    Freeze {
        /// The freezer file.
        path: PathBuf,
        /// What happened.
        reason: String,
    },
    /// Sending a signal to a process of the cgroup failed.
    #[error("sending {signal} to pid {pid}: {source}")]
    Signal {
        /// The signal's name.
        signal: String,
        /// The process.
        pid: i32,
        /// What the kernel said.
        source: nix::Error,
    },
    /// A system call on a cgroup object (eventfd, inotify, bpf) failed.
    #[error("{op} on {path}: {source}")]
    Sys {
        /// What we were doing (`eventfd`, `inotify_add_watch`, `BPF_PROG_LOAD` ...).
        op: &'static str,
        /// The object concerned.
        path: PathBuf,
        /// What the kernel said.
        source: io::Error,
    },
    /// The kernel's verifier refused the device filter program.
    #[error("loading the device filter for {path}: {source}; verifier log: {log}")]
    BpfLoad {
        /// The cgroup the program was meant for.
        path: PathBuf,
        /// What the kernel said.
        source: io::Error,
        /// The verifier's log (may be empty).
        log: String,
    },
}
