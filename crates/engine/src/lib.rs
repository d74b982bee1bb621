//! berth's engine: container records, the per-container monitor, run/exec/logs/top/stats,
//! volumes. A library with typed requests and results: the `berth` CLI only parses
//! arguments and renders output (a Docker Engine API socket will be a second front-end).

pub mod attach;
pub mod container;
pub mod engine;
pub mod error;
pub mod init;
pub mod logs;
pub mod monitor;
pub mod network;
pub mod networking;
pub mod oneshot;
pub mod paths;
pub mod records;
pub mod runtime;
pub mod spec;
pub mod stats;
mod sys;
pub mod top;
pub mod user;
pub mod volumes;

pub use container::create::CreateRequest;
pub use container::ps::ContainerSummary;
pub use container::start::Started;
pub use engine::{Engine, EngineConfig};
pub use error::{Error, Result};
pub use network::NetworkMode;
pub use records::Status;
