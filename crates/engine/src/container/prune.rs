//! `container prune`: every container that isn't running.

use crate::engine::Engine;
use crate::error::Result;
use crate::records::Status;

impl Engine {
    /// Remove stopped and created containers; their ids.
    pub fn prune(&self) -> Result<Vec<String>> {
        let mut removed = Vec::new();
        for rec in self.db.list()? {
            if matches!(self.live_status(&rec).0, Status::Running | Status::Paused) {
                continue;
            }
            let Ok((_lock, rec)) = self.lock(&rec.id) else {
                continue;
            };
            if matches!(self.live_status(&rec).0, Status::Running | Status::Paused) {
                continue;
            }
            self.remove_locked(&rec, false, false)?;
            removed.push(rec.id);
        }
        // Network state of containers that died with their monitor (crash, reboot).
        self.reconcile_networks()?;
        Ok(removed)
    }

    /// Volume names some container mounts (they can't be removed).
    pub fn volumes_in_use(&self) -> Result<Vec<String>> {
        Ok(self
            .db
            .list()?
            .into_iter()
            .flat_map(|r| r.config.mounts)
            .filter(|m| m.kind == "volume")
            .map(|m| m.source)
            .collect())
    }

    /// Image ids (config digests) some container was created from, each with one such
    /// container: `rmi` must refuse them (their layers are the containers' lower dirs), as
    /// docker does.
    pub fn images_in_use(&self) -> Result<Vec<(String, String)>> {
        let mut ids: Vec<(String, String)> = self
            .db
            .list()?
            .into_iter()
            .map(|r| (r.image_id, r.id))
            .collect();
        ids.sort();
        ids.dedup_by(|a, b| a.0 == b.0);
        Ok(ids)
    }
}
