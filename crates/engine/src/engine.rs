//! [`Engine`]: the entry point of the container lifecycle. Each verb lives in its own file
//! under `container/` as an `impl Engine` block; this file holds what they share: the
//! database, locks, and how a container's live state is read.

use std::fs::{self, File};
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::{Flock, FlockArg};

use crate::error::{Error, Result};
use crate::network::{NetworkMode, DEFAULT_NETWORK};
use crate::paths::{Paths, DEFAULT_RUN_ROOT};
use crate::records::{ContainerRecord, Records, Status};
use crate::runtime::Runtime;

/// Where the engine keeps things and what it runs.
#[derive(Debug, Clone)]
pub struct EngineConfig {
    /// Persistent state (`--root`, default /var/lib/berth).
    pub root: PathBuf,
    /// Volatile state (`--runroot`, default /run/berth).
    pub run_root: PathBuf,
    /// The default OCI runtime (None: berth-runtime beside the running executable).
    pub runtime: Option<PathBuf>,
    /// The executable that serves the hidden `container-monitor` command (None: the
    /// running executable).
    pub monitor_exe: Option<PathBuf>,
    /// The network of a container created without `--network`: the default bridge, as
    /// docker's (`--default-network none` is dockerd's `--bridge none`).
    pub default_network: NetworkMode,
}

impl EngineConfig {
    pub fn new(root: &Path) -> EngineConfig {
        EngineConfig {
            root: root.to_path_buf(),
            run_root: PathBuf::from(DEFAULT_RUN_ROOT),
            runtime: None,
            monitor_exe: None,
            default_network: NetworkMode::Bridge(DEFAULT_NETWORK.into()),
        }
    }
}

pub struct Engine {
    pub(crate) paths: Paths,
    pub(crate) db: Records,
    pub(crate) config: EngineConfig,
}

/// A held lock on one container's state changes.
pub(crate) struct ContainerLock(#[allow(dead_code)] Flock<File>);

impl Engine {
    pub fn open(config: EngineConfig) -> Result<Engine> {
        let paths = Paths::new(&config.root, &config.run_root);
        for d in [
            paths.root.join("containers"),
            paths.run_root.join("containers"),
            paths.runtime_root(),
        ] {
            fs::create_dir_all(&d).map_err(|source| Error::Io { path: d, source })?;
        }
        let db = Records::open(&paths.database())?;
        let engine = Engine { paths, db, config };
        engine.reconcile_after_boot();
        Ok(engine)
    }

    /// The run root is volatile: when it is new (a reboot, or the first use) no monitor
    /// can be alive, so what crashed containers left in the network store (leases,
    /// published ports, endpoints, name servers) is cleaned up once, as a daemon would at
    /// its start-up; so are `--rm` containers the reboot ended (docker removes them at
    /// its restart). The marker is made first (O_EXCL) so concurrent commands do it once.
    fn reconcile_after_boot(&self) {
        let marker = self.paths.run_root.join("reconciled");
        let first = fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&marker)
            .is_ok();
        if first {
            self.remove_ended_auto_remove();
            if let Err(e) = self.reconcile_networks() {
                // Not fatal for the command at hand; `network prune` retries it.
                eprintln!("berth: warning: network clean-up after a restart: {e}");
            }
        }
    }

    /// `--rm` containers that were started (a `create --rm` one waits for its start) and
    /// whose monitor is gone.
    fn remove_ended_auto_remove(&self) {
        let Ok(all) = self.db.list() else { return };
        for rec in all {
            if !rec.config.auto_remove
                || rec.state.status == Status::Created
                || self.monitor_alive(&rec.id)
            {
                continue;
            }
            if let Err(e) = self.remove(&rec.id, true, true) {
                eprintln!("berth: warning: removing --rm container {}: {e}", rec.name);
            }
        }
    }

    pub fn paths(&self) -> &Paths {
        &self.paths
    }

    /// The record of a container by id, name or unique id prefix.
    pub fn find(&self, what: &str) -> Result<ContainerRecord> {
        self.db.find(what)
    }

    /// Lock `what`'s state changes and return its record as it is under the lock.
    pub(crate) fn lock(&self, what: &str) -> Result<(ContainerLock, ContainerRecord)> {
        let rec = self.db.find(what)?;
        let path = self.paths.lock_file(&rec.id);
        let file = File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(|source| Error::Io {
                path: path.clone(),
                source,
            })?;
        let lock = Flock::lock(file, FlockArg::LockExclusive).map_err(|(_, e)| Error::Io {
            path,
            source: e.into(),
        })?;
        // It may have been removed (or changed) while we waited.
        let rec = self
            .db
            .get(&rec.id)?
            .ok_or_else(|| Error::NoSuchContainer(what.to_string()))?;
        Ok((ContainerLock(lock), rec))
    }

    /// Whether the container's monitor is alive (its lock is held).
    pub fn monitor_alive(&self, id: &str) -> bool {
        let Ok(f) = File::open(self.paths.monitor_lock(id)) else {
            return false;
        };
        match Flock::lock(f, FlockArg::LockSharedNonblock) {
            Ok(_) => false,
            Err((_, e)) => e == Errno::EWOULDBLOCK,
        }
    }

    /// Block until the container's monitor has exited (it has then recorded the exit and
    /// cleaned up).
    pub(crate) fn wait_monitor(&self, id: &str) {
        if let Ok(f) = File::open(self.paths.monitor_lock(id)) {
            let _ = Flock::lock(f, FlockArg::LockShared);
        }
    }

    /// The container's status as it really is: a record saying running/paused whose
    /// monitor is gone (killed, or the host rebooted) is exited, code 255 unless known.
    pub fn live_status(&self, rec: &ContainerRecord) -> (Status, i32) {
        match rec.state.status {
            Status::Running | Status::Paused if !self.monitor_alive(&rec.id) => {
                (Status::Exited, 255)
            }
            s => (s, rec.state.exit_code),
        }
    }

    pub(crate) fn runtime_of(&self, rec: &ContainerRecord) -> Runtime {
        Runtime::new(&rec.config.runtime, &self.paths.runtime_root())
    }

    /// Refuse unless the container runs; its record.
    pub(crate) fn require_running(&self, rec: &ContainerRecord) -> Result<()> {
        match self.live_status(rec).0 {
            Status::Running => Ok(()),
            Status::Paused => Err(Error::State {
                id: rec.name.clone(),
                reason: "is paused, unpause it first".into(),
            }),
            _ => Err(Error::State {
                id: rec.name.clone(),
                reason: "is not running".into(),
            }),
        }
    }
}
