//! berth's engine: container records, the per-container monitor, run/exec/logs/top/stats,
//! volumes. A library with typed requests and results: the `berth` CLI only parses
//! arguments and renders output (a Docker Engine API socket will be a second front-end).

pub mod error;

pub use error::{Error, Result};
