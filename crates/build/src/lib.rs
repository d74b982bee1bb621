//! berth build: Dockerfiles to layered images, with a layer cache.
//!
//! * [`dockerfile`]: the parsed Dockerfile (stages, steps, line numbers).
//! * [`expand`]: docker's word processing (`${VAR:-default}`, quotes, escapes).
//! * [`ignore`]: `.dockerignore`; [`source`]: COPY/ADD sources resolved inside their root
//!   and digested for the cache; [`copy`]: writing them into the image's view.
//! * [`fsops`]: the root-confined file operations both rely on.
//! * [`scratch`]: per-step overlay mounts and scratch dirs (removed on drop).
//! * [`cache`]: the layer cache table; [`config`]: the image config being built.
//! * [`builder`]: the driver; [`history`]: `berth history`.

pub mod builder;
pub mod cache;
pub mod config;
pub mod copy;
pub mod dockerfile;
pub mod error;
pub mod expand;
pub mod fsops;
pub mod history;
pub mod ignore;
pub mod scratch;
pub mod source;

pub use builder::{build, BuildOptions, Built, DockerfileInput, Event, Network, Progress};
pub use error::{Error, Result};
