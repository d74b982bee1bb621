//! The layer cache: what a build step produced, by a key made of the parent state, the
//! expanded instruction and (COPY/ADD) the digest of its sources. Kept in the engine
//! database (`<root>/berth.db`), table `build_cache`, through our own connection.
//!
//! A hit gives back the step's resulting config byte for byte (so a rebuild yields the
//! same image id) and its layers, which must still be in the store (an entry whose layers
//! were garbage-collected is a miss). A lost entry (power cut) only costs re-running that
//! step, hence `synchronous=NORMAL`.

use std::path::{Path, PathBuf};

use berth_image::commit::LayerRef;
use rusqlite::{params, Connection, OptionalExtension};

use crate::error::{Error, Result};

pub struct Cache {
    conn: Connection,
    path: PathBuf,
}

/// What a step left: the config after it and the whole layer stack.
#[derive(Debug, Clone)]
pub struct Entry {
    pub config: Vec<u8>,
    pub layers: Vec<LayerRef>,
}

impl Cache {
    pub fn open(root: &Path) -> Result<Cache> {
        let path = root.join("berth.db");
        let err = |source| Error::Cache {
            path: path.clone(),
            source,
        };
        let conn = berth_sqlite::open(
            &path,
            "PRAGMA synchronous=NORMAL;
             CREATE TABLE IF NOT EXISTS build_cache(
                key TEXT PRIMARY KEY, config BLOB NOT NULL, layers TEXT NOT NULL,
                created INTEGER NOT NULL);",
        )
        .map_err(err)?;
        Ok(Cache { conn, path })
    }

    fn err(&self, source: rusqlite::Error) -> Error {
        Error::Cache {
            path: self.path.clone(),
            source,
        }
    }

    pub fn get(&self, key: &str) -> Result<Option<Entry>> {
        let row: Option<(Vec<u8>, String)> = self
            .conn
            .query_row(
                "SELECT config, layers FROM build_cache WHERE key = ?1",
                params![key],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()
            .map_err(|e| self.err(e))?;
        Ok(row.and_then(|(config, layers)| {
            // An entry we can't read is a miss (it is overwritten by the rebuilt step).
            serde_json::from_str(&layers)
                .ok()
                .map(|layers| Entry { config, layers })
        }))
    }

    pub fn put(&self, key: &str, e: &Entry) -> Result<()> {
        let layers = serde_json::to_string(&e.layers).map_err(|e| Error::Other(e.to_string()))?;
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs() as i64)
            .unwrap_or(0);
        self.conn
            .execute(
                "INSERT OR REPLACE INTO build_cache(key, config, layers, created) VALUES (?1, ?2, ?3, ?4)",
                params![key, e.config, layers, now],
            )
            .map_err(|e| self.err(e))?;
        Ok(())
    }
}
