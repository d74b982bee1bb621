//! berth's image store and union file system.
//!
//! * [`store`]: content-addressed blobs (sha256) in an OCI image layout under the root.
//! * [`db`]: image records (`name:tag` → manifest) and layer records (by chain id) in SQLite.
//! * [`archive`]: load docker-archive / OCI archive / OCI layout; save as docker or OCI.
//! * [`unpack`]: safe layer extraction into overlay-ready directories.
//! * [`snapshot`]: overlay mounts of layer stacks (new mount API, up to 500 layers) and
//!   upper dir → layer diffs.
//! * [`commit`]: new layers from overlay upper dirs, new images from layers + config
//!   (the builder).
//! * [`images`]: [`ImageStore`], the operations the `berth` CLI offers.
//! * [`registry`]: pull/push over the distribution API (TLS, token/basic auth, platforms,
//!   concurrent transfers), and `berth login`'s credentials.

pub mod archive;
pub mod commit;
pub mod compress;
pub mod db;
pub mod digest;
pub mod error;
pub mod images;
pub mod reference;
pub mod registry;
pub mod snapshot;
pub mod spec;
pub mod store;
pub mod unpack;

mod sys;

pub use archive::SaveFormat;
pub use digest::Digest;
pub use error::{Error, Result};
pub use images::{ImageStore, Lease, Loaded, Removed, DEFAULT_ROOT};
