//! `run`: create + start, and without -d wait for the container, forwarding signals and
//! relaying its terminal, then delete it and return its exit code.

use super::create::{create, CreateOptions};
use super::start::start_locked;
use crate::error::Result;
use crate::process::foreground::{copy_window_size, wait, Signals};
use crate::state::StateRoot;
use std::os::fd::AsFd;

pub fn run(root: &StateRoot, o: &CreateOptions, detach: bool) -> Result<i32> {
    if detach {
        let mut c = create(root, o)?;
        start_locked(&c.locked, &mut c.state, &c.bundle.spec)?;
        return Ok(0);
    }
    // Blocked before the clone: a container that exits at once can't lose its SIGCHLD.
    let signals = Signals::block()?;
    run_foreground(root, o, &signals)
}

fn run_foreground(root: &StateRoot, o: &CreateOptions, signals: &Signals) -> Result<i32> {
    let foreground = CreateOptions {
        foreground: o.console_socket.is_none(),
        ..*o
    };
    let mut c = create(root, &foreground)?;
    let init = c.state.init_pid();
    // The program may ask for its window size first thing: set it before it starts.
    if let Some(m) = &c.console {
        copy_window_size(m.as_fd());
    }
    let started = start_locked(&c.locked, &mut c.state, &c.bundle.spec);
    // Release the lock while we wait: `state`, `kill`, `ps` must work meanwhile.
    drop(c.locked);
    let code = match started {
        Ok(()) => wait(init, &signals.fd, c.console.as_ref()),
        Err(e) => Err(e),
    };
    let known = super::delete::Known {
        spec: &c.bundle.spec,
        layout: &c.layout,
    };
    let deleted = super::delete::delete_with(root, o.id, true, Some(known));
    let code = code?;
    deleted?;
    Ok(code)
}
