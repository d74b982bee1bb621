//! `rm`: a container's record, files and (with -v) anonymous volumes.

use crate::container::cleanup;
use crate::engine::Engine;
use crate::error::{Error, Result};
use crate::records::{ContainerRecord, Status};
use crate::volumes::VolumeStore;

impl Engine {
    /// Remove a container; a running one only with `force` (it is killed). Its id.
    pub fn remove(&self, what: &str, force: bool, volumes: bool) -> Result<String> {
        let (_lock, rec) = self.lock(what)?;
        self.remove_locked(&rec, force, volumes)?;
        Ok(rec.id)
    }

    pub(crate) fn remove_locked(
        &self,
        rec: &ContainerRecord,
        force: bool,
        volumes: bool,
    ) -> Result<()> {
        let rt = self.runtime_of(rec);
        if self.monitor_alive(&rec.id) {
            let status = rec.state.status;
            if !force && matches!(status, Status::Running | Status::Paused) {
                return Err(Error::State {
                    id: rec.name.clone(),
                    reason: format!(
                        "cannot remove a {} container: stop it first or use rm -f",
                        status.as_str()
                    ),
                });
            }
            let _ = rt.kill(&rec.id, "SIGKILL");
            if status == Status::Paused {
                let _ = rt.resume(&rec.id);
            }
            self.wait_monitor(&rec.id);
        }
        cleanup::teardown(&self.paths, &rt, &rec.id)?;
        cleanup::remove_files(&self.paths, &rec.id)?;
        self.db.remove(&rec.id)?;
        if volumes {
            let anonymous: Vec<&str> = rec
                .config
                .mounts
                .iter()
                .filter(|m| m.anonymous)
                .map(|m| m.source.as_str())
                .collect();
            if !anonymous.is_empty() {
                let store = VolumeStore::open(&self.paths.root)?;
                for v in anonymous {
                    match store.remove(v, &[]) {
                        Ok(()) | Err(Error::NoSuchVolume(_)) => {}
                        Err(e) => return Err(e),
                    }
                }
            }
        }
        Ok(())
    }
}
