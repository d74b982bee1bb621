//! berth's OCI runtime library: everything `berth-runtime` does, as functions with typed
//! errors. The binary only parses arguments and prints.

pub mod cgroup;
pub mod container;
pub mod error;
pub mod features;
pub mod hooks;
pub mod log;
pub mod namespaces;
pub mod process;
pub mod procfs;
pub mod rootfs;
pub mod security;
pub mod spec;
pub mod state;
mod sys;
pub mod tty;

pub use error::{Result, RuntimeError};
pub use state::{StateRoot, Status};
