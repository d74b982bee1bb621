//! The long-running helper processes a network needs (the name server of a user network,
//! the port proxy of a container that publishes ports): started once, outliving the
//! `berth` invocation that started them, found again by pid and command line.

use std::ffi::OsString;
use std::io::{BufRead, BufReader};
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

use crate::error::{Error, Result};

/// How to start a helper: `program args... <role> <role args...>`. The default is the
/// running executable (the `berth` binary has hidden `network-dns` and `port-proxy`
/// subcommands that call [`crate::dns::serve_main`] and [`crate::proxy::proxy_main`]).
#[derive(Debug, Clone)]
pub struct HelperCommand {
    pub program: PathBuf,
    pub args: Vec<OsString>,
}

impl HelperCommand {
    pub fn current_exe() -> Result<HelperCommand> {
        let program = std::env::current_exe().map_err(|source| Error::Io {
            path: PathBuf::from("/proc/self/exe"),
            source,
        })?;
        Ok(HelperCommand {
            program,
            args: Vec::new(),
        })
    }
}

/// Start a helper and wait for its first line on stdout: "ok[ DETAILS]" once it is
/// serving, anything else is its error. Returns the pid and the details.
pub(crate) fn spawn(
    cmd: &HelperCommand,
    role_args: &[String],
    what: &str,
) -> Result<(i32, String)> {
    let helper_err = |reason: String| Error::Helper {
        what: what.to_string(),
        reason,
    };
    let mut child = Command::new(&cmd.program)
        .args(&cmd.args)
        .args(role_args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        // Its own process group: a ^C meant for `berth run` must not reach it.
        .process_group(0)
        .spawn()
        .map_err(|e| helper_err(format!("{}: {e}", cmd.program.display())))?;
    let mut line = String::new();
    if let Some(out) = child.stdout.take() {
        let _ = BufReader::new(out).read_line(&mut line);
    }
    let pid = child.id() as i32;
    let line = line.trim_end().to_string();
    if line == "ok" || line.starts_with("ok ") {
        // Reap it if it ends while this process still runs; otherwise init or the
        // nearest subreaper adopts it.
        std::thread::spawn(move || child.wait());
        return Ok((pid, line.get(3..).unwrap_or("").to_string()));
    }
    let _ = child.kill();
    let _ = child.wait();
    Err(helper_err(if line.is_empty() {
        "helper exited without a word".to_string()
    } else {
        line
    }))
}

/// Whether `pid` is a live helper whose command line contains every one of `marks`
/// (guards against a recycled pid).
pub(crate) fn is_alive(pid: i32, marks: &[&str]) -> bool {
    let Ok(cmdline) = std::fs::read(format!("/proc/{pid}/cmdline")) else {
        return false;
    };
    let args: Vec<&[u8]> = cmdline.split(|b| *b == 0).collect();
    let matches = marks.iter().all(|m| args.contains(&m.as_bytes()));
    matches && !is_zombie(pid)
}

fn is_zombie(pid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| {
            s.rsplit_once(')')
                .map(|(_, rest)| rest.trim_start().starts_with('Z'))
        })
        .unwrap_or(true)
}

/// Stop a helper (if `pid` still is one) and wait until it is gone, so what it held (a
/// port, the name server's address) is free when this returns.
pub(crate) fn stop(pid: i32, marks: &[&str]) {
    if !is_alive(pid, marks) {
        return;
    }
    let target = Pid::from_raw(pid);
    let _ = kill(target, Signal::SIGTERM);
    let deadline = Instant::now() + Duration::from_secs(2);
    while is_alive(pid, marks) {
        if Instant::now() > deadline {
            let _ = kill(target, Signal::SIGKILL);
            std::thread::sleep(Duration::from_millis(20));
            break;
        }
        std::thread::sleep(Duration::from_millis(2));
    }
}
