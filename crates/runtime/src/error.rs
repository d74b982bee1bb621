use std::path::PathBuf;

/// Everything that can go wrong in the runtime library. Each variant names the container,
/// path or setting it concerns so the CLI can print one clear line.
#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    #[error("container id {0:?} is not valid: use letters, digits, '.', '_', '+' and '-' (max 1024 characters), not starting with '.' or '-'")]
    InvalidId(String),
    #[error("container {0:?} already exists")]
    IdInUse(String),
    #[error("container {0:?} does not exist")]
    NotFound(String),
    #[error("container {id:?} is {status}: {action} needs it {wanted}")]
    WrongState {
        id: String,
        status: &'static str,
        action: &'static str,
        wanted: &'static str,
    },
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{what}: {source}")]
    Sys {
        what: String,
        #[source]
        source: nix::Error,
    },
    #[error("config {path}: {msg}")]
    Config { path: PathBuf, msg: String },
    #[error("invalid config: {0}")]
    InvalidConfig(String),
    #[error("state of container {id:?} is unreadable: {msg}")]
    CorruptState { id: String, msg: String },
    #[error("{hook} hook {path}: {msg}")]
    Hook {
        hook: &'static str,
        path: PathBuf,
        msg: String,
    },
    #[error("cgroup: {0}")]
    Cgroup(#[from] berth_cgroups::CgroupError),
    #[error("container init: {0}")]
    Init(String),
    /// A process being started in a running container (`exec`) failed before execve.
    #[error("{0}")]
    Process(String),
    #[error("unsupported: {0}")]
    Unsupported(String),
    #[error("console socket {path}: {msg}")]
    ConsoleSocket { path: PathBuf, msg: String },
    #[error("invalid value for {flag}: {msg}")]
    InvalidValue { flag: String, msg: String },
    #[error("{what}: {msg}")]
    Failed { what: String, msg: String },
}

pub type Result<T, E = RuntimeError> = std::result::Result<T, E>;

/// Adds the path or operation to low-level errors, so no error reaches the user without
/// the thing it concerns.
pub trait Context<T> {
    fn at(self, path: impl Into<PathBuf>) -> Result<T>;
}

impl<T> Context<T> for std::io::Result<T> {
    fn at(self, path: impl Into<PathBuf>) -> Result<T> {
        self.map_err(|source| RuntimeError::Io {
            path: path.into(),
            source,
        })
    }
}

pub trait SysContext<T> {
    fn sys(self, what: impl FnOnce() -> String) -> Result<T>;
}

impl<T> SysContext<T> for nix::Result<T> {
    fn sys(self, what: impl FnOnce() -> String) -> Result<T> {
        self.map_err(|source| RuntimeError::Sys {
            what: what(),
            source,
        })
    }
}
