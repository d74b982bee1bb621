//! `--init`: a tiny init for the container's PID 1, like docker's tini. It starts the
//! command, forwards every signal it gets to it, reaps every zombie reparented to it, and
//! exits with the command's status (128 + signal when it was killed by one).
//!
//! Signals are blocked before the child exists and read from a signalfd, so none is lost
//! between the spawn and the loop; the child gets an empty mask again before it execs.

use nix::errno::Errno;
use nix::sys::signal::{kill, sigprocmask, SigSet, SigmaskHow, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;
use std::ffi::OsString;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::Command;

/// The name the `berth` binary answers to as an init (also when bind-mounted as
/// `/dev/init`, see [`init_invocation`]).
pub const INIT_NAME: &str = "berth-init";
/// The hidden subcommand: `berth init-process -- CMD ARGS...`.
pub const INIT_COMMAND: &str = "init-process";

/// If `argv` (the process's whole argv) is an init invocation, the command to run:
/// `berth-init [--] CMD...`, `/dev/init [--] CMD...` (how `--init` starts it) or
/// `berth init-process [--] CMD...`.
pub fn init_invocation(argv: &[OsString]) -> Option<Vec<OsString>> {
    let base = Path::new(argv.first()?).file_name()?;
    let rest = if base == INIT_NAME || base == "init" {
        &argv[1..]
    } else if argv.get(1).is_some_and(|a| a == INIT_COMMAND) {
        &argv[2..]
    } else {
        return None;
    };
    let rest = match rest.first() {
        Some(a) if a == "--" => &rest[1..],
        _ => rest,
    };
    Some(rest.to_vec())
}

/// Signals that report a fault of this very process; blocking them would hide a crash.
const SYNCHRONOUS: [Signal; 5] = [
    Signal::SIGSEGV,
    Signal::SIGBUS,
    Signal::SIGFPE,
    Signal::SIGILL,
    Signal::SIGTRAP,
];

/// Runs `args` (a leading "--" is skipped) as the init's child; returns the exit status
/// for the init to exit with.
pub fn init_main(args: Vec<OsString>) -> i32 {
    match run(args) {
        Ok(code) => code,
        Err((code, message)) => {
            eprintln!("{INIT_NAME}: {message}");
            code
        }
    }
}

fn run(mut args: Vec<OsString>) -> Result<i32, (i32, String)> {
    if args.first().is_some_and(|a| a == "--") {
        args.remove(0);
    }
    let Some((program, rest)) = args.split_first() else {
        return Err((1, format!("usage: {INIT_NAME} [--] COMMAND [ARG...]")));
    };
    let sys = |what: &str, e: Errno| (1, format!("{what}: {e}"));

    let mut mask = SigSet::all();
    for s in SYNCHRONOUS {
        mask.remove(s);
    }
    sigprocmask(SigmaskHow::SIG_BLOCK, Some(&mask), None).map_err(|e| sys("sigprocmask", e))?;
    let signals =
        SignalFd::with_flags(&mask, SfdFlags::SFD_CLOEXEC).map_err(|e| sys("signalfd", e))?;
    if nix::unistd::getpid() != Pid::from_raw(1) {
        // Not PID 1 (e.g. `--pid host`): orphans must still come to us to be reaped.
        let _ = nix::sys::prctl::set_child_subreaper(true);
    }

    // Its own process group, made the terminal's foreground group: a ^C from the terminal
    // reaches the command once, not also through us.
    let mut cmd = Command::new(program);
    cmd.args(rest).process_group(0);
    crate::sys::spawn_with_empty_sigmask(&mut cmd);
    let child = cmd.spawn().map_err(|e| {
        let code = match e.kind() {
            std::io::ErrorKind::NotFound => 127,
            std::io::ErrorKind::PermissionDenied => 126,
            _ => 1,
        };
        (
            code,
            format!("exec {} failed: {e}", program.to_string_lossy()),
        )
    })?;
    let child = Pid::from_raw(child.id() as i32);
    let stdin = std::io::stdin();
    if nix::unistd::isatty(&stdin).unwrap_or(false) && nix::unistd::tcsetpgrp(&stdin, child).is_ok()
    {
        // Had the child read the terminal before it was foreground, it was stopped.
        let _ = kill(Pid::from_raw(-child.as_raw()), Signal::SIGCONT);
    }

    loop {
        let info = match signals.read_signal() {
            Ok(Some(info)) => info,
            Ok(None) | Err(Errno::EINTR) => continue,
            Err(e) => return Err(sys("reading signals", e)),
        };
        let Ok(signal) = Signal::try_from(info.ssi_signo as i32) else {
            continue;
        };
        if signal != Signal::SIGCHLD {
            match kill(child, signal) {
                Ok(()) | Err(Errno::ESRCH) => {}
                Err(e) => eprintln!("{INIT_NAME}: forwarding {signal}: {e}"),
            }
            continue;
        }
        if let Some(code) = reap(child) {
            return Ok(code);
        }
    }
}

/// Reaps every exited child; the command's exit status once it is among them.
fn reap(child: Pid) -> Option<i32> {
    let mut status = None;
    loop {
        match waitpid(None, Some(WaitPidFlag::WNOHANG)) {
            Ok(WaitStatus::Exited(pid, code)) if pid == child => status = Some(code),
            Ok(WaitStatus::Signaled(pid, sig, _)) if pid == child => {
                status = Some(128 + sig as i32)
            }
            Ok(WaitStatus::StillAlive) | Err(Errno::ECHILD) => return status,
            Ok(_) | Err(Errno::EINTR) => {}
            Err(_) => return status,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(s: &[&str]) -> Vec<OsString> {
        s.iter().map(OsString::from).collect()
    }

    #[test]
    fn invocations_are_recognised() {
        assert_eq!(
            init_invocation(&v(&["/dev/init", "--", "sh", "-c", "x"])),
            Some(v(&["sh", "-c", "x"]))
        );
        assert_eq!(
            init_invocation(&v(&["/usr/bin/berth-init", "top"])),
            Some(v(&["top"]))
        );
        assert_eq!(
            init_invocation(&v(&["berth", "init-process", "--", "a"])),
            Some(v(&["a"]))
        );
        assert_eq!(init_invocation(&v(&["berth", "run", "x"])), None);
        assert_eq!(init_invocation(&[]), None);
    }
}
