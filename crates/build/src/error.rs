//! Errors of a build: each names the Dockerfile line, the path or the image concerned.

use std::path::PathBuf;

/// Result of the build crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can make a build fail.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The Dockerfile does not parse (line numbers are 1-based).
    #[error("Dockerfile:{line}: {message}")]
    Syntax { line: usize, message: String },
    /// An instruction that parses but can't be carried out as written.
    #[error("Dockerfile:{line}: {instruction}: {message}")]
    Instruction {
        line: usize,
        instruction: String,
        message: String,
    },
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("build context {}: {message}", path.display())]
    Context { path: PathBuf, message: String },
    #[error("Dockerfile:{line}: {instruction}: {message}")]
    Source {
        line: usize,
        instruction: String,
        message: String,
    },
    #[error("Dockerfile:{line}: {instruction}: process \"{command}\" did not complete successfully: exit code: {code}")]
    RunFailed {
        line: usize,
        instruction: String,
        command: String,
        code: i32,
        /// The last lines the command printed.
        output: String,
    },
    #[error("target stage {0:?} could not be found")]
    NoSuchTarget(String),
    #[error("{0}")]
    Image(#[from] berth_image::Error),
    #[error("{0}")]
    Engine(#[from] berth_engine::Error),
    #[error("build cache {}: {source}", path.display())]
    Cache {
        path: PathBuf,
        source: rusqlite::Error,
    },
    #[error("{0}")]
    Other(String),
}

/// Attach a path to an I/O result.
pub(crate) trait IoContext<T> {
    fn at(self, path: impl Into<PathBuf>) -> Result<T>;
}

impl<T> IoContext<T> for std::io::Result<T> {
    fn at(self, path: impl Into<PathBuf>) -> Result<T> {
        self.map_err(|source| Error::Io {
            path: path.into(),
            source,
        })
    }
}

impl<T> IoContext<T> for nix::Result<T> {
    fn at(self, path: impl Into<PathBuf>) -> Result<T> {
        self.map_err(|e| Error::Io {
            path: path.into(),
            source: e.into(),
        })
    }
}
