//! `rename`: a new unique name.

use crate::container::create::check_name;
use crate::engine::Engine;
use crate::error::Result;

impl Engine {
    pub fn rename(&self, what: &str, new_name: &str) -> Result<()> {
        let new_name = new_name.strip_prefix('/').unwrap_or(new_name);
        check_name(new_name)?;
        let (_lock, rec) = self.lock(what)?;
        self.db.rename(&rec.id, new_name)?;
        // A running container's name servers follow at once, as docker's do.
        self.network_store()?.rename(&rec.id, new_name)?;
        Ok(())
    }
}
