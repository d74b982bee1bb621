//! The command-line front-ends: argument parsing and output only; the work is done by the
//! library crates.

pub mod runtime_cli;
