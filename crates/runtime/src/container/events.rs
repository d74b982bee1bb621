//! `events`: runc's event stream on stdout, one JSON object per line —
//! `{"type":"stats","id":ID,"data":STATS}` every interval (or once with `--stats`) and
//! `{"type":"oom","id":ID}` on each OOM kill — until the container stops.

use super::pause::cgroup_of;
use crate::cgroup;
use crate::error::{Result, RuntimeError};
use crate::state::{State, StateRoot, Status};
use crate::sys;
use berth_cgroups::{CgroupError, Stats};
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use serde::Serialize;
use std::io::Write;
use std::os::fd::AsFd;
use std::time::{Duration, Instant};

/// runc's `types.Event`.
#[derive(Debug, Serialize)]
pub struct Event<'a> {
    #[serde(rename = "type")]
    pub typ: &'static str,
    pub id: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data: Option<&'a Stats>,
}

/// The state of a container that must not be stopped (runc: "container with id X is not
/// running"). The lock is released on return: a long `events` never blocks `delete`.
fn live_state(root: &StateRoot, id: &str) -> Result<State> {
    let (_locked, state) = root.open(id)?;
    if matches!(state.status, Status::Stopped | Status::Creating) {
        return Err(RuntimeError::WrongState {
            id: id.to_string(),
            status: state.status.as_str(),
            action: "events",
            wanted: "created, running or paused",
        });
    }
    cgroup_of(&state)?;
    Ok(state)
}

/// One stats sample of a container's cgroup.
pub fn stats(root: &StateRoot, id: &str) -> Result<Stats> {
    let state = live_state(root, id)?;
    Ok(cgroup::open(cgroup_of(&state)?)?.stats()?)
}

/// Writes one event as a JSON line and flushes it.
fn emit(out: &mut dyn Write, ev: &Event) -> std::io::Result<()> {
    let mut line = serde_json::to_vec(ev).map_err(std::io::Error::other)?;
    line.push(b'\n');
    out.write_all(&line)?;
    out.flush()
}

fn write_err(e: std::io::Error) -> RuntimeError {
    RuntimeError::Io {
        path: "stdout".into(),
        source: e,
    }
}

/// `events [--stats] [--interval D] ID`. With `stats_only`, one stats event; otherwise
/// stats every `interval` and OOM events as they happen, returning once the container's
/// init is gone or its cgroup removed. A closed stdout ends it quietly.
pub fn events(
    root: &StateRoot,
    id: &str,
    interval: Duration,
    stats_only: bool,
    out: &mut dyn Write,
) -> Result<()> {
    if interval.is_zero() {
        return Err(RuntimeError::InvalidValue {
            flag: "--interval".into(),
            msg: "the interval must be greater than 0".into(),
        });
    }
    let state = live_state(root, id)?;
    let manager = cgroup::open(cgroup_of(&state)?)?;
    if stats_only {
        let s = manager.stats()?;
        return emit(
            out,
            &Event {
                typ: "stats",
                id,
                data: Some(&s),
            },
        )
        .map_err(write_err);
    }
    // The init's pidfd becomes readable when it exits; taken before checking that the pid
    // still is our init, so a recycled pid can't stand in for it.
    let pidfd = sys::pidfd_open(state.init_pid()).ok();
    if pidfd.is_none() || !crate::state::process_alive(state.pid, state.pid_start) {
        return Ok(());
    }
    let mut oom = match manager.oom_notifier() {
        Ok(n) => Some(n),
        // No memory controller: stats only.
        Err(CgroupError::Unsupported { .. }) => None,
        Err(e) => return Err(e.into()),
    };
    let mut next = Instant::now() + interval;
    let result = (|| -> std::io::Result<()> {
        loop {
            let left = next.saturating_duration_since(Instant::now());
            let ms = u16::try_from(left.as_millis().max(1)).unwrap_or(u16::MAX);
            let (init_gone, oom_ready) = {
                let mut fds = Vec::with_capacity(2);
                if let Some(fd) = &pidfd {
                    fds.push(PollFd::new(fd.as_fd(), PollFlags::POLLIN));
                }
                if let Some(n) = &oom {
                    fds.push(PollFd::new(n.as_fd(), PollFlags::POLLIN));
                }
                match poll(&mut fds, PollTimeout::from(ms)) {
                    Ok(_) | Err(nix::errno::Errno::EINTR) => {}
                    Err(e) => return Err(e.into()),
                }
                let ready = |i: usize| {
                    fds.get(i)
                        .and_then(|f| f.revents())
                        .is_some_and(|r| !r.is_empty())
                };
                (ready(0), ready(1))
            };
            // An OOM kill is reported before its victim is gone: check the notifier even
            // when only the init's exit woke us.
            let oom_ready = oom_ready || (init_gone && oom.as_ref().is_some_and(readable_now));
            if oom_ready {
                if let Some(n) = &mut oom {
                    match n.wait() {
                        Ok(Some(_)) => emit(
                            out,
                            &Event {
                                typ: "oom",
                                id,
                                data: None,
                            },
                        )?,
                        // The cgroup is gone: the container was deleted.
                        Ok(None) => return Ok(()),
                        Err(e) => {
                            crate::log::warn(&format!("events: {e}"));
                            oom = None;
                        }
                    }
                }
            }
            if init_gone {
                return Ok(());
            }
            if Instant::now() >= next {
                next += interval;
                match manager.stats() {
                    Ok(s) => emit(
                        out,
                        &Event {
                            typ: "stats",
                            id,
                            data: Some(&s),
                        },
                    )?,
                    Err(_) if !manager.exists() => return Ok(()),
                    Err(e) => crate::log::warn(&format!("events: {e}")),
                }
            }
        }
    })();
    match result {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        other => other.map_err(write_err),
    }
}

fn readable_now(fd: &impl AsFd) -> bool {
    let mut fds = [PollFd::new(fd.as_fd(), PollFlags::POLLIN)];
    matches!(poll(&mut fds, PollTimeout::ZERO), Ok(n) if n > 0)
}

/// A Go duration (`5s`, `100ms`, `1m30s`, `1.5h`, `0`), as runc's `--interval` takes it.
pub fn parse_duration(s: &str) -> Result<Duration> {
    let bad = |why: &str| RuntimeError::InvalidValue {
        flag: "--interval".into(),
        msg: format!("{s:?}: {why}"),
    };
    let body = s.strip_prefix('+').unwrap_or(s);
    if body.starts_with('-') {
        return Err(bad("negative durations are not allowed"));
    }
    if body == "0" {
        return Ok(Duration::ZERO);
    }
    if body.is_empty() {
        return Err(bad("empty"));
    }
    let mut total = 0f64;
    let mut rest = body;
    while !rest.is_empty() {
        let num_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .ok_or_else(|| bad("missing unit (ns, us, ms, s, m, h)"))?;
        let (num, tail) = rest.split_at(num_len);
        if num.is_empty() || num == "." || num.matches('.').count() > 1 {
            return Err(bad("expected a number"));
        }
        let value: f64 = num.parse().map_err(|_| bad("expected a number"))?;
        let unit_len = tail
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(tail.len());
        let (unit, next) = tail.split_at(unit_len);
        let nanos = match unit {
            "ns" => 1.0,
            "us" | "µs" | "μs" => 1e3,
            "ms" => 1e6,
            "s" => 1e9,
            "m" => 60e9,
            "h" => 3600e9,
            _ => return Err(bad(&format!("unknown unit {unit:?}"))),
        };
        total += value * nanos;
        rest = next;
    }
    if total > u64::MAX as f64 {
        return Err(bad("too large"));
    }
    Ok(Duration::from_nanos(total as u64))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_durations() {
        let ms = |n| Duration::from_millis(n);
        assert_eq!(parse_duration("5s").unwrap(), ms(5000));
        assert_eq!(parse_duration("100ms").unwrap(), ms(100));
        assert_eq!(parse_duration("1m30s").unwrap(), ms(90_000));
        assert_eq!(parse_duration("1.5h").unwrap(), ms(5_400_000));
        assert_eq!(parse_duration("250us").unwrap(), Duration::from_micros(250));
        assert_eq!(parse_duration("10ns").unwrap(), Duration::from_nanos(10));
        assert_eq!(parse_duration("0").unwrap(), Duration::ZERO);
        assert_eq!(parse_duration("+2s").unwrap(), ms(2000));
        for bad in ["", "5", "s", "5x", "-1s", "1..2s", "abc", "5 s"] {
            assert!(parse_duration(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn event_json_shape() {
        let s = Stats::default();
        let j = serde_json::to_string(&Event {
            typ: "oom",
            id: "a",
            data: None,
        })
        .unwrap();
        assert_eq!(j, r#"{"type":"oom","id":"a"}"#);
        let v: serde_json::Value = serde_json::to_value(Event {
            typ: "stats",
            id: "a",
            data: Some(&s),
        })
        .unwrap();
        assert_eq!(v["type"], "stats");
        assert!(v["data"]["memory"].is_object());
    }
}
