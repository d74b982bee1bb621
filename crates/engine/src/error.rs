//! The engine's typed errors: each names the container, image, volume or path it concerns.

use std::path::PathBuf;

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Image(#[from] berth_image::Error),
    #[error(transparent)]
    Net(#[from] berth_net::Error),
    // --- containers (records, monitor, container verbs) ---
    #[error("No such container: {0}")]
    NoSuchContainer(String),
    #[error("multiple containers match {0:?}: use more of the id")]
    AmbiguousContainer(String),
    #[error("Conflict. The container name \"/{name}\" is already in use by container \"{id}\". You have to remove (or rename) that container to be able to reuse that name.")]
    NameInUse { name: String, id: String },
    #[error("Invalid container name ({0}), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed")]
    InvalidName(String),
    /// The container isn't in a state the operation needs; the message says which.
    #[error("container {id}: {reason}")]
    State { id: String, reason: String },
    /// The container's program could not be found (docker's exit status 127).
    #[error("failed to create task for container: {0}")]
    CommandNotFound(String),
    /// The container's program exists but can't be executed (exit status 126).
    #[error("failed to create task for container: {0}")]
    CommandNotExecutable(String),
    #[error(
        "network mode {0:?} is not available yet (--network: use none, host or container:NAME)"
    )]
    NetworkUnavailable(String),
    #[error("container monitor for {id}: {message}")]
    Monitor { id: String, message: String },
    #[error("container database {path}: {source}")]
    Db {
        path: PathBuf,
        #[source]
        source: rusqlite::Error,
    },
    // --- user, spec, oneshot, logs, top, stats, volumes (the engine's leaf modules) ---
    #[error("unable to find user {0}: no matching entries in passwd file")]
    UnknownUser(String),
    #[error("unable to find group {0}: no matching entries in group file")]
    UnknownGroup(String),
    #[error("invalid user {spec:?}: {reason}")]
    InvalidUser { spec: String, reason: String },
    #[error("no command specified")]
    NoCommand,
    /// A run option that can't be honoured; the message names the option and the value.
    #[error("{0}")]
    InvalidOption(String),
    #[error("building the runtime spec: {0}")]
    Spec(String),
    /// The OCI runtime failed; `message` is its own error output.
    #[error("{runtime} {verb}: {message}")]
    Runtime {
        runtime: PathBuf,
        verb: String,
        message: String,
    },
    #[error("running {program}: {source}")]
    Spawn {
        program: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{program} failed: {message}")]
    CommandFailed { program: String, message: String },
    #[error("cgroup {path}: {source}")]
    Cgroup {
        path: String,
        #[source]
        source: berth_cgroups::CgroupError,
    },
    #[error("get {0}: no such volume")]
    NoSuchVolume(String),
    #[error("remove {name}: volume is in use - [{containers}]")]
    VolumeInUse { name: String, containers: String },
    #[error("create {0}: \"{0}\" includes invalid characters for a local volume name, only \"[a-zA-Z0-9][a-zA-Z0-9_.-]\" are allowed")]
    InvalidVolumeName(String),
    #[error("volume database {path}: {source}")]
    Database {
        path: PathBuf,
        #[source]
        source: rusqlite::Error,
    },
}

impl Error {
    /// The exit status docker's CLI uses for this error: 127 for a program that isn't in the
    /// image, 126 for one that can't be executed, 125 for everything the engine refused.
    pub fn exit_code(&self) -> i32 {
        match self {
            Error::CommandNotFound(_) => 127,
            Error::CommandNotExecutable(_) => 126,
            _ => 125,
        }
    }
}
