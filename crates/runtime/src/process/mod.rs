//! The container's process: the sync channel with the runtime, the init that sets the
//! container up, and the last steps before execve.

pub mod channel;
pub mod exec;
pub mod finalize;
pub mod foreground;
pub mod init;
