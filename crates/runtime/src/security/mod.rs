//! What the container's process may do: capabilities and the no_new_privs bit.

pub mod capabilities;
pub mod seccomp;
