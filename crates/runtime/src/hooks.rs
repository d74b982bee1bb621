//! OCI hooks: each runs with the container's state on stdin, its own env and args, and an
//! optional timeout after which it is killed.

use crate::error::{Result, RuntimeError};
use crate::sys;
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use oci_spec::runtime::{Hook, Hooks};
use std::io::{Read, Seek, Write};
use std::os::fd::AsFd;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::process::{Command, Stdio};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Prestart,
    CreateRuntime,
    CreateContainer,
    StartContainer,
    Poststart,
    Poststop,
}

impl Kind {
    pub fn name(self) -> &'static str {
        match self {
            Kind::Prestart => "prestart",
            Kind::CreateRuntime => "createRuntime",
            Kind::CreateContainer => "createContainer",
            Kind::StartContainer => "startContainer",
            Kind::Poststart => "poststart",
            Kind::Poststop => "poststop",
        }
    }

    pub fn of(self, hooks: &Hooks) -> &[Hook] {
        #[allow(deprecated)]
        let list = match self {
            Kind::Prestart => hooks.prestart(),
            Kind::CreateRuntime => hooks.create_runtime(),
            Kind::CreateContainer => hooks.create_container(),
            Kind::StartContainer => hooks.start_container(),
            Kind::Poststart => hooks.poststart(),
            Kind::Poststop => hooks.poststop(),
        };
        list.as_deref().unwrap_or_default()
    }
}

pub fn any(hooks: Option<&Hooks>, kinds: &[Kind]) -> bool {
    hooks.is_some_and(|h| kinds.iter().any(|k| !k.of(h).is_empty()))
}

/// Runs every hook of `kind` in order; the first failure stops the list and is returned.
pub fn run(kind: Kind, hooks: Option<&Hooks>, state_json: &[u8]) -> Result<()> {
    let Some(hooks) = hooks else { return Ok(()) };
    for hook in kind.of(hooks) {
        run_one(kind, hook, state_json)?;
    }
    Ok(())
}

/// Runs every hook of `kind`, logging failures as warnings and carrying on: what the
/// runtime-spec asks for poststart and poststop hooks.
pub fn run_warn(kind: Kind, hooks: Option<&Hooks>, state_json: &[u8]) {
    let Some(hooks) = hooks else { return };
    for hook in kind.of(hooks) {
        if let Err(e) = run_one(kind, hook, state_json) {
            crate::log::warn(&e.to_string());
        }
    }
}

fn run_one(kind: Kind, hook: &Hook, state_json: &[u8]) -> Result<()> {
    let fail = |msg: String| RuntimeError::Hook {
        hook: kind.name(),
        path: hook.path().clone(),
        msg,
    };
    let mut cmd = Command::new(hook.path());
    if let Some(args) = hook.args().as_deref() {
        if let Some((arg0, rest)) = args.split_first() {
            cmd.arg0(arg0).args(rest);
        }
    }
    cmd.env_clear();
    for kv in hook.env().as_deref().unwrap_or_default() {
        if let Some((k, v)) = kv.split_once('=') {
            cmd.env(k, v);
        }
    }
    // The hook's stderr goes to an anonymous file so a failure can quote it without a
    // reader thread (the runtime stays single-threaded).
    let mut errfile = std::fs::File::from(
        nix::sys::memfd::memfd_create(c"hook-stderr", nix::sys::memfd::MFdFlags::MFD_CLOEXEC)
            .map_err(|e| fail(format!("memfd: {e}")))?,
    );
    let errclone = errfile
        .try_clone()
        .map_err(|e| fail(format!("memfd: {e}")))?;
    cmd.stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::from(errclone));
    let mut child = cmd.spawn().map_err(|e| fail(e.to_string()))?;
    if let Some(mut stdin) = child.stdin.take() {
        // A hook that doesn't read its stdin is fine: ignore EPIPE.
        let _ = stdin.write_all(state_json);
    }
    let pid = nix::unistd::Pid::from_raw(child.id() as i32);
    if let Some(secs) = hook.timeout() {
        if secs <= 0 {
            let _ = child.kill();
            let _ = child.wait();
            return Err(fail(format!("timeout must be positive, got {secs}")));
        }
        let pidfd = sys::pidfd_open(pid).map_err(|e| fail(format!("pidfd_open: {e}")))?;
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(secs as u64);
        loop {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            if left.is_zero() {
                let _ = child.kill();
                let _ = child.wait();
                return Err(fail(format!("timed out after {secs}s")));
            }
            let ms = left.as_millis().min(i32::MAX as u128) as i32;
            let mut fds = [PollFd::new(pidfd.as_fd(), PollFlags::POLLIN)];
            match poll(
                &mut fds,
                PollTimeout::try_from(ms).unwrap_or(PollTimeout::MAX),
            ) {
                Ok(n) if n > 0 => break,
                Ok(_) | Err(nix::errno::Errno::EINTR) => continue,
                Err(e) => return Err(fail(format!("poll: {e}"))),
            }
        }
    }
    let status = child.wait().map_err(|e| fail(e.to_string()))?;
    if status.success() {
        return Ok(());
    }
    let mut stderr = String::new();
    let _ = errfile.rewind();
    let _ = errfile.take(4096).read_to_string(&mut stderr);
    let how = match (status.code(), status.signal()) {
        (Some(c), _) => format!("exit status {c}"),
        (_, Some(s)) => format!("killed by signal {s}"),
        _ => "failed".into(),
    };
    let stderr = stderr.trim();
    Err(fail(if stderr.is_empty() {
        how
    } else {
        format!("{how}: {stderr}")
    }))
}
