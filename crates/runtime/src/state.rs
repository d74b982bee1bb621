//! A container's persisted state under `<root>/<id>/`, and the lock that serialises every
//! invocation that touches the same id.

use crate::error::{Context, Result, RuntimeError};
use berth_cgroups::CgroupConfig;
use nix::fcntl::{Flock, FlockArg};
use nix::unistd::Pid;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};

pub const STATE_FILE: &str = "state.json";
/// The container's config.json as it was at create time: later edits of the bundle must not
/// change hooks, namespaces or anything else of a created container.
pub const CONFIG_FILE: &str = "config.json";
/// The FIFO whose first byte tells a created container's init to run the user's program.
pub const EXEC_FIFO: &str = "exec.fifo";
/// Written by an init that failed between `start` and execve (a startContainer hook, say).
pub const START_ERROR: &str = "start.error";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Creating,
    Created,
    Running,
    Paused,
    Stopped,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Creating => "creating",
            Status::Created => "created",
            Status::Running => "running",
            Status::Paused => "paused",
            Status::Stopped => "stopped",
        }
    }
}

/// What we keep about a container between invocations. The OCI `state` output is derived
/// from it (see [`State::oci`]).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct State {
    pub id: String,
    pub status: Status,
    pub pid: i32,
    /// /proc/<pid>/stat start time, so a recycled pid is never mistaken for our init.
    pub pid_start: u64,
    pub bundle: PathBuf,
    pub rootfs: PathBuf,
    #[serde(default)]
    pub annotations: HashMap<String, String>,
    /// RFC 3339 creation time.
    pub created: String,
    pub cgroup: Option<CgroupConfig>,
    /// Whether the container has its own pid namespace: then killing init kills everything.
    pub own_pid_ns: bool,
}

/// The OCI runtime-spec state document.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct OciState<'a> {
    pub oci_version: &'static str,
    pub id: &'a str,
    pub status: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pid: Option<i32>,
    pub bundle: &'a Path,
    #[serde(skip_serializing_if = "HashMap::is_empty")]
    pub annotations: &'a HashMap<String, String>,
}

pub const OCI_VERSION: &str = "1.2.0";

impl State {
    pub fn oci(&self) -> OciState<'_> {
        OciState {
            oci_version: OCI_VERSION,
            id: &self.id,
            status: self.status.as_str(),
            pid: (self.status != Status::Stopped).then_some(self.pid),
            bundle: &self.bundle,
            annotations: &self.annotations,
        }
    }

    /// Re-derives the status from the kernel: a container whose init is gone (or is a
    /// zombie, or is a different process reusing the pid) is stopped, whatever was stored.
    pub fn refresh(&mut self) {
        if matches!(
            self.status,
            Status::Created | Status::Running | Status::Paused | Status::Creating
        ) && !process_alive(self.pid, self.pid_start)
        {
            self.status = Status::Stopped;
        }
    }

    pub fn init_pid(&self) -> Pid {
        Pid::from_raw(self.pid)
    }
}

/// Start time (clock ticks since boot) and run state letter of a process.
pub fn process_stat(pid: i32) -> Option<(u64, char)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name may hold spaces and parentheses: fields start after the last ')'.
    let rest = &stat[stat.rfind(')')? + 2..];
    let mut fields = rest.split(' ');
    let state = fields.next()?.chars().next()?;
    // starttime is field 22 overall, the 20th after the state field.
    let start = fields.nth(18)?.parse().ok()?;
    Some((start, state))
}

pub fn process_alive(pid: i32, start: u64) -> bool {
    matches!(process_stat(pid), Some((s, st)) if s == start && st != 'Z' && st != 'X')
}

/// The runtime's state root (`--root`).
#[derive(Debug, Clone)]
pub struct StateRoot {
    pub path: PathBuf,
}

/// An exclusively locked container directory.
pub struct Locked {
    pub dir: PathBuf,
    _lock: Flock<File>,
}

impl StateRoot {
    pub fn new(path: impl Into<PathBuf>) -> Self {
        StateRoot { path: path.into() }
    }

    pub fn dir(&self, id: &str) -> PathBuf {
        self.path.join(id)
    }

    /// Claims `id`: creates its directory atomically (an existing one means the id is in
    /// use) and locks it.
    pub fn claim(&self, id: &str) -> Result<Locked> {
        validate_id(id)?;
        std::fs::create_dir_all(&self.path).at(&self.path)?;
        let dir = self.dir(id);
        match std::fs::create_dir(&dir) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                return Err(RuntimeError::IdInUse(id.to_string()))
            }
            Err(e) => return Err(e).at(&dir),
        }
        lock_dir(dir)
    }

    /// Locks an existing container's directory and loads its state.
    pub fn open(&self, id: &str) -> Result<(Locked, State)> {
        validate_id(id)?;
        let dir = self.dir(id);
        let locked = match lock_dir(dir) {
            Err(RuntimeError::Io { source, .. })
                if source.kind() == std::io::ErrorKind::NotFound =>
            {
                return Err(RuntimeError::NotFound(id.to_string()))
            }
            other => other?,
        };
        let state = locked.load(id)?;
        Ok((locked, state))
    }

    /// Every container id under the root (directories only; stray files are skipped).
    pub fn ids(&self) -> Result<Vec<String>> {
        let entries = match std::fs::read_dir(&self.path) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(e).at(&self.path),
        };
        let mut ids: Vec<String> = entries
            .filter_map(|e| e.ok())
            .filter(|e| e.file_type().map(|t| t.is_dir()).unwrap_or(false))
            .filter_map(|e| e.file_name().into_string().ok())
            .collect();
        ids.sort();
        Ok(ids)
    }
}

fn lock_dir(dir: PathBuf) -> Result<Locked> {
    let file = File::open(&dir).at(&dir)?;
    let lock = Flock::lock(file, FlockArg::LockExclusive).map_err(|(_, e)| RuntimeError::Io {
        path: dir.clone(),
        source: e.into(),
    })?;
    Ok(Locked { dir, _lock: lock })
}

impl Locked {
    pub fn load(&self, id: &str) -> Result<State> {
        let path = self.dir.join(STATE_FILE);
        let bytes = match std::fs::read(&path) {
            Ok(b) => b,
            // A directory without state is a create that is still running or that crashed
            // before writing it: report it as stopped so that delete can clean it up.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Ok(State {
                    id: id.to_string(),
                    status: Status::Stopped,
                    pid: 0,
                    pid_start: 0,
                    bundle: PathBuf::new(),
                    rootfs: PathBuf::new(),
                    annotations: HashMap::new(),
                    created: String::new(),
                    cgroup: None,
                    own_pid_ns: false,
                })
            }
            Err(e) => return Err(e).at(&path),
        };
        let mut state: State =
            serde_json::from_slice(&bytes).map_err(|e| RuntimeError::CorruptState {
                id: id.to_string(),
                msg: e.to_string(),
            })?;
        state.refresh();
        Ok(state)
    }

    /// Writes the state atomically (temp file + rename): a reader never sees half of it.
    pub fn save(&self, state: &State) -> Result<()> {
        let tmp = self.dir.join(".state.json.tmp");
        let bytes = serde_json::to_vec(state).map_err(|e| RuntimeError::CorruptState {
            id: state.id.clone(),
            msg: e.to_string(),
        })?;
        let mut f = File::create(&tmp).at(&tmp)?;
        f.write_all(&bytes).at(&tmp)?;
        drop(f);
        let path = self.dir.join(STATE_FILE);
        std::fs::rename(&tmp, &path).at(&path)
    }

    /// Removes the whole container directory (the lock goes with it).
    pub fn remove(self) -> Result<()> {
        match std::fs::remove_dir_all(&self.dir) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e).at(&self.dir),
            _ => Ok(()),
        }
    }
}

/// runc's rule: `^[\w+\-.]+$`, and we refuse names that could be mistaken for options or
/// hidden files or that escape the state root.
pub fn validate_id(id: &str) -> Result<()> {
    let ok = !id.is_empty()
        && id.len() <= 1024
        && !id.starts_with('.')
        && !id.starts_with('-')
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '+' | '-' | '.'));
    if ok {
        Ok(())
    } else {
        Err(RuntimeError::InvalidId(id.to_string()))
    }
}

/// RFC 3339 UTC time of now, with nanoseconds, as runc prints `created`.
pub fn now_rfc3339() -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    rfc3339(now.as_secs() as i64, now.subsec_nanos())
}

/// Civil date from days since the epoch (Howard Hinnant's algorithm): a dozen lines instead
/// of a date-time crate in a binary whose size and start time we measure.
pub fn rfc3339(secs: i64, nanos: u32) -> String {
    let days = secs.div_euclid(86400);
    let tod = secs.rem_euclid(86400);
    let z = days + 719468;
    let era = z.div_euclid(146097);
    let doe = z - era * 146097;
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{nanos:09}Z",
        tod / 3600,
        tod / 60 % 60,
        tod % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids() {
        for ok in ["a", "abc-1.2_3+x", "A"] {
            assert!(validate_id(ok).is_ok(), "{ok}");
        }
        for bad in ["", ".", "..", "-x", "a/b", "a b", ".hidden", "x\n"] {
            assert!(validate_id(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn time_format() {
        assert_eq!(rfc3339(0, 0), "1970-01-01T00:00:00.000000000Z");
        assert_eq!(rfc3339(951782400, 5), "2000-02-29T00:00:00.000000005Z");
        assert_eq!(rfc3339(1798761599, 0), "2026-12-31T23:59:59.000000000Z");
    }

    #[test]
    fn stat_of_self() {
        let (start, state) = process_stat(std::process::id() as i32).expect("own stat");
        assert!(start > 0);
        assert!(state == 'R' || state == 'S');
    }
}
