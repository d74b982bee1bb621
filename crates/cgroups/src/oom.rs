//! OOM kill notification: v1 `memory.oom_control` + eventfd via `cgroup.event_control`,
//! v2 inotify on `memory.events` and its `oom_kill` counter.

use crate::fsutil;
use crate::CgroupError;
use nix::sys::eventfd::{EfdFlags, EventFd};
use nix::sys::inotify::{AddWatchFlags, InitFlags, Inotify};
use std::fs::File;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd};
use std::path::{Path, PathBuf};

/// Waits for OOM kills in one cgroup. Its fd (see [`AsFd`]) becomes readable when there
/// may be news, so it can sit in a poll loop; [`OomNotifier::wait`] then says what.
#[derive(Debug)]
pub struct OomNotifier {
    inner: Inner,
}

#[derive(Debug)]
enum Inner {
    V1 {
        efd: EventFd,
        _oom_control: File,
        event_control: PathBuf,
    },
    V2 {
        inotify: Inotify,
        events: PathBuf,
        last: u64,
    },
}

fn sys(op: &'static str, path: &Path, e: nix::Error) -> CgroupError {
    CgroupError::Sys {
        op,
        path: path.to_path_buf(),
        source: std::io::Error::from(e),
    }
}

/// The `oom_kill` counter of a `memory.oom_control` (v1) or `memory.events` (v2) text.
pub(crate) fn oom_kill_of(text: &str) -> u64 {
    fsutil::parse_flat_keyed(text)
        .find(|(k, _)| *k == "oom_kill")
        .map_or(0, |(_, v)| v)
}

impl OomNotifier {
    /// v1: registers an eventfd for `memory.oom_control` of the memory cgroup `dir`.
    pub(crate) fn v1(dir: &Path) -> Result<Self, CgroupError> {
        let oc_path = dir.join("memory.oom_control");
        let oom_control = File::open(&oc_path).map_err(|source| CgroupError::Read {
            path: oc_path.clone(),
            source,
        })?;
        let efd =
            EventFd::from_flags(EfdFlags::EFD_CLOEXEC).map_err(|e| sys("eventfd", &oc_path, e))?;
        let event_control = dir.join("cgroup.event_control");
        fsutil::write_path(
            &event_control,
            &format!("{} {}", efd.as_raw_fd(), oom_control.as_raw_fd()),
        )?;
        Ok(OomNotifier {
            inner: Inner::V1 {
                efd,
                _oom_control: oom_control,
                event_control,
            },
        })
    }

    /// v2: watches `memory.events` of `dir`.
    pub(crate) fn v2(dir: &Path) -> Result<Self, CgroupError> {
        let events = dir.join("memory.events");
        let inotify =
            Inotify::init(InitFlags::IN_CLOEXEC).map_err(|e| sys("inotify_init", &events, e))?;
        inotify
            .add_watch(&events, AddWatchFlags::IN_MODIFY)
            .map_err(|e| sys("inotify_add_watch", &events, e))?;
        let last = oom_kill_of(&fsutil::read_path(&events)?);
        Ok(OomNotifier {
            inner: Inner::V2 {
                inotify,
                events,
                last,
            },
        })
    }

    /// Blocks until the next OOM event: `Some(n)` with the number of new OOM events (v1
    /// counts the kernel's notifications, v2 the increase of `oom_kill`), or `None` once
    /// the cgroup is gone (then stop waiting).
    pub fn wait(&mut self) -> Result<Option<u64>, CgroupError> {
        match &mut self.inner {
            Inner::V1 {
                efd, event_control, ..
            } => {
                let n = efd
                    .read()
                    .map_err(|e| sys("read eventfd", event_control, e))?;
                if !event_control.exists() {
                    return Ok(None);
                }
                Ok(Some(n))
            }
            Inner::V2 {
                inotify,
                events,
                last,
            } => loop {
                let evs = inotify
                    .read_events()
                    .map_err(|e| sys("read inotify", events, e))?;
                if evs
                    .iter()
                    .any(|e| e.mask.contains(AddWatchFlags::IN_IGNORED))
                {
                    return Ok(None);
                }
                let Some(text) =
                    fsutil::read_opt(events.parent().unwrap_or(events), "memory.events")?
                else {
                    return Ok(None);
                };
                let now = oom_kill_of(&text);
                if now > *last {
                    let n = now - *last;
                    *last = now;
                    return Ok(Some(n));
                }
            },
        }
    }
}

impl AsFd for OomNotifier {
    fn as_fd(&self) -> BorrowedFd<'_> {
        match &self.inner {
            Inner::V1 { efd, .. } => efd.as_fd(),
            Inner::V2 { inotify, .. } => inotify.as_fd(),
        }
    }
}
