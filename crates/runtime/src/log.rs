//! Warnings the library can't return as errors (a failed poststop hook must not stop
//! `delete`): the binary decides where they go (stderr, the --log file).

use std::sync::OnceLock;

static SINK: OnceLock<fn(&str)> = OnceLock::new();

pub fn set_warning_sink(f: fn(&str)) {
    let _ = SINK.set(f);
}

pub fn warn(msg: &str) {
    match SINK.get() {
        Some(f) => f(msg),
        None => eprintln!("warning: {msg}"),
    }
}
