//! `stop`: the stop signal, then SIGKILL after the timeout; returns once the monitor has
//! recorded the exit and cleaned up.

use std::os::fd::AsFd;

use nix::poll::{poll, PollFd, PollFlags, PollTimeout};

use crate::engine::Engine;
use crate::error::Result;
use crate::records::{ContainerRecord, Status};
use crate::sys;

/// docker's default grace period.
pub const DEFAULT_STOP_TIMEOUT: u32 = 10;

impl Engine {
    /// Stop a container (a container that isn't running is left as it is). Its id.
    pub fn stop(&self, what: &str, timeout: Option<u32>) -> Result<String> {
        let (_lock, rec) = self.lock(what)?;
        self.stop_locked(&rec, timeout)?;
        Ok(rec.id)
    }

    pub(crate) fn stop_locked(&self, rec: &ContainerRecord, timeout: Option<u32>) -> Result<()> {
        if !self.monitor_alive(&rec.id) {
            return Ok(());
        }
        let rt = self.runtime_of(rec);
        let timeout = timeout
            .or(rec.config.stop_timeout)
            .unwrap_or(DEFAULT_STOP_TIMEOUT);
        // Taken before signalling, so a pid reused after the exit can't fool the wait.
        let pidfd = (rec.state.pid > 0)
            .then(|| sys::pidfd_open(rec.state.pid).ok())
            .flatten();
        let paused = rec.state.status == Status::Paused;
        let _ = rt.kill(&rec.id, &rec.config.stop_signal);
        if paused {
            // Frozen processes can't act on a signal.
            let _ = rt.resume(&rec.id);
        }
        let exited = match &pidfd {
            Some(fd) => {
                let ms = (timeout as u64 * 1000).min(u16::MAX as u64 * 1000);
                wait_readable(fd.as_fd(), ms)
            }
            None => false,
        };
        if !exited {
            let _ = rt.kill(&rec.id, "SIGKILL");
        }
        self.wait_monitor(&rec.id);
        Ok(())
    }
}

/// Wait up to `ms` for a pidfd to report its process's exit.
fn wait_readable(fd: std::os::fd::BorrowedFd, ms: u64) -> bool {
    let deadline = std::time::Instant::now() + std::time::Duration::from_millis(ms);
    loop {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        let chunk = left.as_millis().min(60_000) as u16;
        let mut fds = [PollFd::new(fd, PollFlags::POLLIN)];
        match poll(&mut fds, PollTimeout::from(chunk)) {
            Ok(n) if n > 0 => return true,
            Ok(_) if left.is_zero() || chunk == 0 => return false,
            Ok(_) | Err(nix::errno::Errno::EINTR) => {}
            Err(_) => return false,
        }
    }
}
