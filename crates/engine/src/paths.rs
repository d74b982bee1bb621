//! Where a container's files live.
//!
//! ```text
//! <root>/berth.db                         SQLite: the `containers` table (+ images, volumes, ...)
//! <root>/containers/<id>/lock             flock held by every state change of the container
//! <root>/containers/<id>/upper, work      the overlay's writable layer (survives reboots)
//! <root>/containers/<id>/<id>-json.log    the container's output, docker's json-file format
//! <run_root>/runtime/                     `--root` of the OCI runtime (its state dirs)
//! <run_root>/containers/<id>/rootfs       the overlay mount while the container runs
//! <run_root>/containers/<id>/config.json  the bundle (written on every start)
//! <run_root>/containers/<id>/monitor.lock flock held by the container's monitor for its life
//! <run_root>/containers/<id>/attach.sock  the monitor's attach socket
//! ```
//!
//! Everything under the run root is gone after a reboot (tmpfs /run); every start makes
//! it again, so a container survives reboots with only its records and upper dir.

use std::path::{Path, PathBuf};

/// The engine's default run root.
pub const DEFAULT_RUN_ROOT: &str = "/run/berth";

#[derive(Debug, Clone)]
pub struct Paths {
    pub root: PathBuf,
    pub run_root: PathBuf,
}

impl Paths {
    pub fn new(root: &Path, run_root: &Path) -> Paths {
        Paths {
            root: root.to_path_buf(),
            run_root: run_root.to_path_buf(),
        }
    }

    pub fn database(&self) -> PathBuf {
        self.root.join("berth.db")
    }

    /// The persistent directory of a container.
    pub fn container_dir(&self, id: &str) -> PathBuf {
        self.root.join("containers").join(id)
    }

    pub fn lock_file(&self, id: &str) -> PathBuf {
        self.container_dir(id).join("lock")
    }

    pub fn upper(&self, id: &str) -> PathBuf {
        self.container_dir(id).join("upper")
    }

    pub fn work(&self, id: &str) -> PathBuf {
        self.container_dir(id).join("work")
    }

    pub fn log_file(&self, id: &str) -> PathBuf {
        self.container_dir(id).join(format!("{id}-json.log"))
    }

    /// The state root handed to the OCI runtime as its `--root`.
    pub fn runtime_root(&self) -> PathBuf {
        self.run_root.join("runtime")
    }

    /// The runtime's state directory of a container (exists from `create` to `delete`).
    pub fn runtime_state(&self, id: &str) -> PathBuf {
        self.runtime_root().join(id)
    }

    /// The volatile directory of a container: the bundle.
    pub fn run_dir(&self, id: &str) -> PathBuf {
        self.run_root.join("containers").join(id)
    }

    pub fn rootfs(&self, id: &str) -> PathBuf {
        self.run_dir(id).join("rootfs")
    }

    pub fn monitor_lock(&self, id: &str) -> PathBuf {
        self.run_dir(id).join("monitor.lock")
    }

    pub fn pid_file(&self, id: &str) -> PathBuf {
        self.run_dir(id).join("init.pid")
    }

    pub fn console_socket(&self, id: &str) -> PathBuf {
        self.run_dir(id).join("console.sock")
    }

    /// The monitor's attach socket (front-ends that attach after the start).
    pub fn attach_socket(&self, id: &str) -> PathBuf {
        self.run_dir(id).join("attach.sock")
    }

    /// The monitor's own diagnostics (what it could not report to a client).
    pub fn monitor_log(&self, id: &str) -> PathBuf {
        self.container_dir(id).join("monitor.log")
    }
}
