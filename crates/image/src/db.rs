//! Image and layer records in SQLite (`<root>/berth.db`, the engine database; other crates keep their own tables in the same file).
//!
//! * `images`: one row per manifest we hold (tagged or not).
//! * `tags`: `name:tag` → manifest digest.
//! * `layers`: one row per unpacked layer, keyed by chain id.
//! * `image_layers`: which chain ids an image's stack is made of, bottom first.

use std::path::{Path, PathBuf};

use rusqlite::{params, Connection, OptionalExtension};

use crate::digest::Digest;
use crate::error::{Error, Result};

pub struct Db {
    conn: Connection,
    path: PathBuf,
}

/// An image record.
#[derive(Debug, Clone, PartialEq)]
pub struct ImageRecord {
    pub manifest: Digest,
    pub config: Digest,
    /// Unix seconds when it was added to the store.
    pub added: i64,
    /// Sum of the layer blobs' sizes.
    pub size: u64,
}

/// A layer record.
#[derive(Debug, Clone, PartialEq)]
pub struct LayerRecord {
    pub chain_id: Digest,
    pub diff_id: Digest,
    pub parent: Option<Digest>,
}

fn digest(s: String) -> rusqlite::Result<Digest> {
    s.parse().map_err(|e: Error| {
        rusqlite::Error::FromSqlConversionFailure(0, rusqlite::types::Type::Text, Box::new(e))
    })
}

impl Db {
    pub fn open(path: &Path) -> Result<Db> {
        let err = |source| Error::Db {
            path: path.to_path_buf(),
            source,
        };
        let conn = berth_sqlite::open(
            path,
            "PRAGMA synchronous=FULL;
             PRAGMA foreign_keys=ON;
             CREATE TABLE IF NOT EXISTS images(
                manifest TEXT PRIMARY KEY, config TEXT NOT NULL,
                added INTEGER NOT NULL, size INTEGER NOT NULL);
             CREATE TABLE IF NOT EXISTS tags(
                name TEXT PRIMARY KEY,
                manifest TEXT NOT NULL REFERENCES images(manifest));
             CREATE TABLE IF NOT EXISTS layers(
                chain_id TEXT PRIMARY KEY, diff_id TEXT NOT NULL, parent TEXT);
             CREATE TABLE IF NOT EXISTS image_layers(
                manifest TEXT NOT NULL REFERENCES images(manifest) ON DELETE CASCADE,
                idx INTEGER NOT NULL,
                chain_id TEXT NOT NULL REFERENCES layers(chain_id),
                PRIMARY KEY(manifest, idx));",
        )
        .map_err(err)?;
        Ok(Db {
            conn,
            path: path.to_path_buf(),
        })
    }

    fn err(&self, source: rusqlite::Error) -> Error {
        Error::Db {
            path: self.path.clone(),
            source,
        }
    }

    /// Record an image with its layer stack (bottom first) and tags, in one transaction.
    /// A tag already on another image moves to this one.
    pub fn add_image(
        &mut self,
        rec: &ImageRecord,
        chain: &[Digest],
        tags: &[String],
    ) -> Result<()> {
        let path = self.path.clone();
        let err = |source| Error::Db {
            path: path.clone(),
            source,
        };
        let tx = self.conn.transaction().map_err(err)?;
        tx.execute(
            "INSERT OR IGNORE INTO images(manifest, config, added, size) VALUES (?1, ?2, ?3, ?4)",
            params![
                rec.manifest.as_str(),
                rec.config.as_str(),
                rec.added,
                rec.size as i64
            ],
        )
        .map_err(err)?;
        for (i, c) in chain.iter().enumerate() {
            tx.execute(
                "INSERT OR REPLACE INTO image_layers(manifest, idx, chain_id) VALUES (?1, ?2, ?3)",
                params![rec.manifest.as_str(), i as i64, c.as_str()],
            )
            .map_err(err)?;
        }
        for t in tags {
            tx.execute(
                "INSERT OR REPLACE INTO tags(name, manifest) VALUES (?1, ?2)",
                params![t, rec.manifest.as_str()],
            )
            .map_err(err)?;
        }
        tx.commit().map_err(err)
    }

    pub fn add_layer(&self, l: &LayerRecord) -> Result<()> {
        self.conn
            .execute(
                "INSERT OR IGNORE INTO layers(chain_id, diff_id, parent) VALUES (?1, ?2, ?3)",
                params![
                    l.chain_id.as_str(),
                    l.diff_id.as_str(),
                    l.parent.as_ref().map(Digest::as_str)
                ],
            )
            .map_err(|e| self.err(e))?;
        Ok(())
    }

    pub fn layer(&self, chain_id: &Digest) -> Result<Option<LayerRecord>> {
        self.conn
            .query_row(
                "SELECT chain_id, diff_id, parent FROM layers WHERE chain_id = ?1",
                params![chain_id.as_str()],
                |r| {
                    Ok(LayerRecord {
                        chain_id: digest(r.get(0)?)?,
                        diff_id: digest(r.get(1)?)?,
                        parent: r.get::<_, Option<String>>(2)?.map(digest).transpose()?,
                    })
                },
            )
            .optional()
            .map_err(|e| self.err(e))
    }

    pub fn layers(&self) -> Result<Vec<LayerRecord>> {
        let mut st = self
            .conn
            .prepare("SELECT chain_id, diff_id, parent FROM layers ORDER BY chain_id")
            .map_err(|e| self.err(e))?;
        let rows = st
            .query_map([], |r| {
                Ok(LayerRecord {
                    chain_id: digest(r.get(0)?)?,
                    diff_id: digest(r.get(1)?)?,
                    parent: r.get::<_, Option<String>>(2)?.map(digest).transpose()?,
                })
            })
            .map_err(|e| self.err(e))?;
        rows.collect::<rusqlite::Result<Vec<_>>>()
            .map_err(|e| self.err(e))
    }

    pub fn remove_layer(&self, chain_id: &Digest) -> Result<()> {
        self.conn
            .execute(
                "DELETE FROM layers WHERE chain_id = ?1",
                params![chain_id.as_str()],
            )
            .map_err(|e| self.err(e))?;
        Ok(())
    }

    /// The chain ids of an image's layers, bottom first.
    pub fn image_layers(&self, manifest: &Digest) -> Result<Vec<Digest>> {
        let mut st = self
            .conn
            .prepare("SELECT chain_id FROM image_layers WHERE manifest = ?1 ORDER BY idx")
            .map_err(|e| self.err(e))?;
        let rows = st
            .query_map(params![manifest.as_str()], |r| digest(r.get(0)?))
            .map_err(|e| self.err(e))?;
        rows.collect::<rusqlite::Result<Vec<_>>>()
            .map_err(|e| self.err(e))
    }

    /// Chain ids used by at least one image.
    pub fn used_layers(&self) -> Result<Vec<Digest>> {
        let mut st = self
            .conn
            .prepare("SELECT DISTINCT chain_id FROM image_layers")
            .map_err(|e| self.err(e))?;
        let rows = st
            .query_map([], |r| digest(r.get(0)?))
            .map_err(|e| self.err(e))?;
        rows.collect::<rusqlite::Result<Vec<_>>>()
            .map_err(|e| self.err(e))
    }

    pub fn images(&self) -> Result<Vec<ImageRecord>> {
        let mut st = self
            .conn
            .prepare(
                "SELECT manifest, config, added, size FROM images ORDER BY added DESC, manifest",
            )
            .map_err(|e| self.err(e))?;
        let rows = st
            .query_map([], |r| {
                Ok(ImageRecord {
                    manifest: digest(r.get(0)?)?,
                    config: digest(r.get(1)?)?,
                    added: r.get(2)?,
                    size: r.get::<_, i64>(3)? as u64,
                })
            })
            .map_err(|e| self.err(e))?;
        rows.collect::<rusqlite::Result<Vec<_>>>()
            .map_err(|e| self.err(e))
    }

    pub fn image(&self, manifest: &Digest) -> Result<Option<ImageRecord>> {
        Ok(self.images()?.into_iter().find(|i| &i.manifest == manifest))
    }

    pub fn remove_image(&self, manifest: &Digest) -> Result<()> {
        self.conn
            .execute(
                "DELETE FROM tags WHERE manifest = ?1",
                params![manifest.as_str()],
            )
            .map_err(|e| self.err(e))?;
        self.conn
            .execute(
                "DELETE FROM images WHERE manifest = ?1",
                params![manifest.as_str()],
            )
            .map_err(|e| self.err(e))?;
        Ok(())
    }

    /// Every tag with its manifest, sorted by name.
    pub fn tags(&self) -> Result<Vec<(String, Digest)>> {
        let mut st = self
            .conn
            .prepare("SELECT name, manifest FROM tags ORDER BY name")
            .map_err(|e| self.err(e))?;
        let rows = st
            .query_map([], |r| Ok((r.get::<_, String>(0)?, digest(r.get(1)?)?)))
            .map_err(|e| self.err(e))?;
        rows.collect::<rusqlite::Result<Vec<_>>>()
            .map_err(|e| self.err(e))
    }

    pub fn tag_target(&self, name: &str) -> Result<Option<Digest>> {
        self.conn
            .query_row(
                "SELECT manifest FROM tags WHERE name = ?1",
                params![name],
                |r| digest(r.get(0)?),
            )
            .optional()
            .map_err(|e| self.err(e))
    }

    pub fn set_tag(&self, name: &str, manifest: &Digest) -> Result<()> {
        self.conn
            .execute(
                "INSERT OR REPLACE INTO tags(name, manifest) VALUES (?1, ?2)",
                params![name, manifest.as_str()],
            )
            .map_err(|e| self.err(e))?;
        Ok(())
    }

    pub fn remove_tag(&self, name: &str) -> Result<()> {
        self.conn
            .execute("DELETE FROM tags WHERE name = ?1", params![name])
            .map_err(|e| self.err(e))?;
        Ok(())
    }
}
