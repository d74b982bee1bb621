//! Errors of the image crate: each carries the path, digest or reference concerned.

use std::io;
use std::path::PathBuf;

use crate::digest::Digest;

/// Result of the image crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong in the image store.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{}: {source}", path.display())]
    Io { path: PathBuf, source: io::Error },
    #[error("invalid digest {0:?} (want sha256:<64 hex digits>)")]
    InvalidDigest(String),
    #[error("blob {expected}: content has digest {actual}")]
    DigestMismatch { expected: Digest, actual: Digest },
    #[error("blob {digest}: {actual} bytes, descriptor says {expected}")]
    SizeMismatch {
        digest: Digest,
        expected: u64,
        actual: u64,
    },
    #[error("blob {0} is not in the store")]
    BlobNotFound(Digest),
    #[error("image {0:?}: no such image")]
    ImageNotFound(String),
    #[error("invalid image reference {0:?}")]
    InvalidReference(String),
    #[error("{what}: invalid JSON: {source}")]
    Json {
        what: String,
        source: serde_json::Error,
    },
    #[error("archive {what}: {reason}")]
    Archive { what: String, reason: String },
    #[error("layer {layer}: entry {entry:?}: {reason}")]
    UnsafeEntry {
        layer: String,
        entry: String,
        reason: String,
    },
    #[error("layer {layer}: entry {entry:?}: {source}")]
    Unpack {
        layer: String,
        entry: String,
        source: io::Error,
    },
    #[error("layer {layer}: {reason}")]
    Layer { layer: String, reason: String },
    #[error("image database {}: {source}", path.display())]
    Db {
        path: PathBuf,
        source: rusqlite::Error,
    },
    #[error("too many layers: {count} (overlayfs stacks at most {max} lower layers)")]
    TooManyLayers { count: usize, max: usize },
    #[error("overlay mount on {}: {step}: {source}", target.display())]
    Mount {
        target: PathBuf,
        step: String,
        source: io::Error,
    },
    #[error("registry {reference}: {reason}")]
    Registry { reference: String, reason: String },
    #[error("registry {registry}: 401 Unauthorized: {reason}")]
    Unauthorized { registry: String, reason: String },
    #[error("{reference}: manifest unknown: the registry has no such tag or digest")]
    ManifestUnknown { reference: String },
    #[error("invalid platform {0:?} (want os/arch[/variant], e.g. linux/amd64)")]
    InvalidPlatform(String),
    #[error("{reference}: no image for platform {wanted}; available: {available}")]
    NoMatchingPlatform {
        reference: String,
        wanted: String,
        available: String,
    },
    #[error("image {reference:?} is used by {count} tag(s); remove them or use force")]
    InUse { reference: String, count: usize },
    #[error(
        "conflict: unable to remove {reference} (must force): container {container} is using it"
    )]
    UsedByContainer {
        reference: String,
        container: String,
    },
}

/// Attach a path to an `io::Result`.
pub(crate) trait IoContext<T> {
    fn at(self, path: impl Into<PathBuf>) -> Result<T>;
}

impl<T> IoContext<T> for io::Result<T> {
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
            source: io::Error::from(e),
        })
    }
}
