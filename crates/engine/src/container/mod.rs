//! The container verbs, one file each, as `impl Engine` blocks.

pub mod attach;
pub mod cleanup;
pub mod create;
pub mod exec;
pub mod inspect;
pub mod kill;
pub mod logs;
pub mod pause;
pub mod port;
pub mod prune;
pub mod ps;
pub mod rename;
pub mod restart;
pub mod rm;
pub mod run;
pub mod start;
pub mod stats;
pub mod stop;
pub mod top;
pub mod wait;
