//! Container records in the engine database (`<root>/berth.db`, table `containers`).
//!
//! One row per container: what it was created from (`config`, JSON) and its last known
//! state. The monitor writes `running` and `exited`; the CLI writes everything else.
//! Names are UNIQUE in the table, so two concurrent creates of one name can't both win.

use std::path::{Path, PathBuf};

use rusqlite::{params, Connection, OptionalExtension};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::network::NetworkMode;

/// A container's lifecycle status, as docker names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Created,
    Running,
    Paused,
    Exited,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Created => "created",
            Status::Running => "running",
            Status::Paused => "paused",
            Status::Exited => "exited",
        }
    }

    fn parse(s: &str) -> Status {
        match s {
            "running" => Status::Running,
            "paused" => Status::Paused,
            "exited" => Status::Exited,
            _ => Status::Created,
        }
    }
}

/// A mount of the container, resolved at create time.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MountRecord {
    /// "bind", "volume" or "tmpfs".
    pub kind: String,
    /// Host path (bind), volume name (volume); empty for tmpfs.
    pub source: String,
    pub destination: String,
    pub read_only: bool,
    /// tmpfs options (size=..., mode=...).
    pub options: Vec<String>,
    /// An anonymous volume made for the image's VOLUME (removed by `rm -v`).
    pub anonymous: bool,
}

/// Everything a container was created with, after merging the image config.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ContainerConfig {
    /// The effective entrypoint and command (inspect's Config) and the argv they make.
    pub entrypoint: Vec<String>,
    pub cmd: Vec<String>,
    pub args: Vec<String>,
    /// The image's unpacked layers, bottom first (the overlay's lower dirs).
    pub layers: Vec<PathBuf>,
    pub env: Vec<String>,
    pub working_dir: String,
    pub user: String,
    pub hostname: String,
    pub tty: bool,
    /// (rows, cols) the pty starts with (see `CreateRequest::console_size`).
    #[serde(default)]
    pub console_size: Option<(u16, u16)>,
    pub open_stdin: bool,
    pub auto_remove: bool,
    pub read_only: bool,
    pub mounts: Vec<MountRecord>,
    pub memory: Option<i64>,
    pub cpus: Option<f64>,
    pub pids_limit: Option<i64>,
    pub cap_add: Vec<String>,
    pub cap_drop: Vec<String>,
    pub security_opt: Vec<String>,
    pub init: bool,
    /// The OCI runtime binary.
    pub runtime: PathBuf,
    pub network: NetworkMode,
    /// --ip, --network-alias, -p, -P, --dns, --add-host, connected networks.
    #[serde(default)]
    pub net: crate::networking::NetworkOptions,
    pub exposed_ports: Vec<String>,
    pub stop_signal: String,
    pub stop_timeout: Option<u32>,
    pub labels: Vec<(String, String)>,
}

/// A container's last recorded state.
#[derive(Debug, Clone, PartialEq)]
pub struct StateRecord {
    pub status: Status,
    /// The init's host pid while running (0 otherwise).
    pub pid: i32,
    pub exit_code: i32,
    /// Unix nanoseconds; 0 = never.
    pub started_at: i64,
    pub finished_at: i64,
    /// Why the last start failed, if it did.
    pub error: String,
    pub restart_count: i64,
}

#[derive(Debug, Clone)]
pub struct ContainerRecord {
    pub id: String,
    pub name: String,
    /// The image as the user named it, and its id (config digest).
    pub image: String,
    pub image_id: String,
    /// Unix nanoseconds.
    pub created: i64,
    pub config: ContainerConfig,
    pub state: StateRecord,
}

pub struct Records {
    conn: Connection,
    path: PathBuf,
}

const COLUMNS: &str = "id, name, image, image_id, created, config, status, pid, exit_code, \
                       started_at, finished_at, error, restart_count";

impl Records {
    pub fn open(path: &Path) -> Result<Records> {
        let err = |source| Error::Db {
            path: path.to_path_buf(),
            source,
        };
        // synchronous=NORMAL: in WAL mode a crash of any process loses nothing; only a
        // power cut may lose the last state changes, which a container record can afford
        // (and a start doesn't pay an fsync per state change).
        let conn = berth_sqlite::open(
            path,
            "PRAGMA synchronous=NORMAL;
             CREATE TABLE IF NOT EXISTS containers(
                id TEXT PRIMARY KEY,
                name TEXT NOT NULL UNIQUE,
                image TEXT NOT NULL,
                image_id TEXT NOT NULL,
                created INTEGER NOT NULL,
                config TEXT NOT NULL,
                status TEXT NOT NULL,
                pid INTEGER NOT NULL DEFAULT 0,
                exit_code INTEGER NOT NULL DEFAULT 0,
                started_at INTEGER NOT NULL DEFAULT 0,
                finished_at INTEGER NOT NULL DEFAULT 0,
                error TEXT NOT NULL DEFAULT '',
                restart_count INTEGER NOT NULL DEFAULT 0);",
        )
        .map_err(err)?;
        Ok(Records {
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

    /// Add a new container; a name already taken is [`Error::NameInUse`].
    pub fn insert(&self, r: &ContainerRecord) -> Result<()> {
        let config = serde_json::to_string(&r.config).map_err(|e| Error::Monitor {
            id: r.id.clone(),
            message: format!("encoding its config: {e}"),
        })?;
        let res = self.conn.execute(
            "INSERT INTO containers(id, name, image, image_id, created, config, status)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            params![
                r.id,
                r.name,
                r.image,
                r.image_id,
                r.created,
                config,
                r.state.status.as_str()
            ],
        );
        match res {
            Ok(_) => Ok(()),
            Err(rusqlite::Error::SqliteFailure(e, _))
                if e.code == rusqlite::ErrorCode::ConstraintViolation =>
            {
                let id = self.id_of_name(&r.name)?.unwrap_or_else(|| r.id.clone());
                Err(Error::NameInUse {
                    name: r.name.clone(),
                    id,
                })
            }
            Err(e) => Err(self.err(e)),
        }
    }

    fn id_of_name(&self, name: &str) -> Result<Option<String>> {
        self.conn
            .query_row("SELECT id FROM containers WHERE name = ?1", [name], |r| {
                r.get(0)
            })
            .optional()
            .map_err(|e| self.err(e))
    }

    fn row(r: &rusqlite::Row) -> rusqlite::Result<ContainerRecord> {
        let config: String = r.get(5)?;
        let config = serde_json::from_str(&config).map_err(|e| {
            rusqlite::Error::FromSqlConversionFailure(5, rusqlite::types::Type::Text, Box::new(e))
        })?;
        let status: String = r.get(6)?;
        Ok(ContainerRecord {
            id: r.get(0)?,
            name: r.get(1)?,
            image: r.get(2)?,
            image_id: r.get(3)?,
            created: r.get(4)?,
            config,
            state: StateRecord {
                status: Status::parse(&status),
                pid: r.get(7)?,
                exit_code: r.get(8)?,
                started_at: r.get(9)?,
                finished_at: r.get(10)?,
                error: r.get(11)?,
                restart_count: r.get(12)?,
            },
        })
    }

    /// A container by exact id.
    pub fn get(&self, id: &str) -> Result<Option<ContainerRecord>> {
        self.conn
            .query_row(
                &format!("SELECT {COLUMNS} FROM containers WHERE id = ?1"),
                [id],
                Self::row,
            )
            .optional()
            .map_err(|e| self.err(e))
    }

    /// A container by full id, name (with or without docker's leading '/') or a unique
    /// id prefix.
    pub fn find(&self, what: &str) -> Result<ContainerRecord> {
        let name = what.strip_prefix('/').unwrap_or(what);
        let by_name = self
            .conn
            .query_row(
                &format!("SELECT {COLUMNS} FROM containers WHERE id = ?1 OR name = ?2"),
                params![what, name],
                Self::row,
            )
            .optional()
            .map_err(|e| self.err(e))?;
        if let Some(r) = by_name {
            return Ok(r);
        }
        if what.is_empty() || !what.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(Error::NoSuchContainer(what.to_string()));
        }
        let mut st = self
            .conn
            .prepare(&format!(
                "SELECT {COLUMNS} FROM containers WHERE substr(id, 1, ?2) = ?1 LIMIT 2"
            ))
            .map_err(|e| self.err(e))?;
        let mut hits: Vec<ContainerRecord> = st
            .query_map(params![what, what.len() as i64], Self::row)
            .map_err(|e| self.err(e))?
            .collect::<rusqlite::Result<_>>()
            .map_err(|e| self.err(e))?;
        match hits.len() {
            1 => Ok(hits.remove(0)),
            0 => Err(Error::NoSuchContainer(what.to_string())),
            _ => Err(Error::AmbiguousContainer(what.to_string())),
        }
    }

    /// Every container, newest first.
    pub fn list(&self) -> Result<Vec<ContainerRecord>> {
        let mut st = self
            .conn
            .prepare(&format!(
                "SELECT {COLUMNS} FROM containers ORDER BY created DESC"
            ))
            .map_err(|e| self.err(e))?;
        let rows = st
            .query_map([], Self::row)
            .map_err(|e| self.err(e))?
            .collect::<rusqlite::Result<_>>()
            .map_err(|e| self.err(e));
        rows
    }

    pub fn set_running(&self, id: &str, pid: i32, started_at: i64) -> Result<()> {
        self.conn
            .execute(
                "UPDATE containers SET status = 'running', pid = ?2, started_at = ?3,
                 exit_code = 0, error = '' WHERE id = ?1",
                params![id, pid, started_at],
            )
            .map(drop)
            .map_err(|e| self.err(e))
    }

    pub fn set_exited(&self, id: &str, exit_code: i32, finished_at: i64) -> Result<()> {
        self.conn
            .execute(
                "UPDATE containers SET status = 'exited', pid = 0, exit_code = ?2,
                 finished_at = ?3 WHERE id = ?1",
                params![id, exit_code, finished_at],
            )
            .map(drop)
            .map_err(|e| self.err(e))
    }

    /// A start that failed: the container keeps its previous status, with the error and
    /// docker's exit code for it.
    pub fn set_start_error(&self, id: &str, exit_code: i32, error: &str) -> Result<()> {
        self.conn
            .execute(
                "UPDATE containers SET pid = 0, exit_code = ?2, error = ?3 WHERE id = ?1",
                params![id, exit_code, error],
            )
            .map(drop)
            .map_err(|e| self.err(e))
    }

    pub fn set_status(&self, id: &str, status: Status) -> Result<()> {
        self.conn
            .execute(
                "UPDATE containers SET status = ?2 WHERE id = ?1",
                params![id, status.as_str()],
            )
            .map(drop)
            .map_err(|e| self.err(e))
    }

    pub fn bump_restart_count(&self, id: &str) -> Result<()> {
        self.conn
            .execute(
                "UPDATE containers SET restart_count = restart_count + 1 WHERE id = ?1",
                [id],
            )
            .map(drop)
            .map_err(|e| self.err(e))
    }

    /// Replace a container's config (`network connect` / `disconnect` change it).
    pub fn set_config(&self, id: &str, config: &ContainerConfig) -> Result<()> {
        let json = serde_json::to_string(config).map_err(|e| Error::Monitor {
            id: id.to_string(),
            message: format!("encoding its config: {e}"),
        })?;
        self.conn
            .execute(
                "UPDATE containers SET config = ?2 WHERE id = ?1",
                params![id, json],
            )
            .map(drop)
            .map_err(|e| self.err(e))
    }

    pub fn rename(&self, id: &str, new_name: &str) -> Result<()> {
        match self.conn.execute(
            "UPDATE containers SET name = ?2 WHERE id = ?1",
            params![id, new_name],
        ) {
            Ok(_) => Ok(()),
            Err(rusqlite::Error::SqliteFailure(e, _))
                if e.code == rusqlite::ErrorCode::ConstraintViolation =>
            {
                let other = self.id_of_name(new_name)?.unwrap_or_default();
                Err(Error::NameInUse {
                    name: new_name.to_string(),
                    id: other,
                })
            }
            Err(e) => Err(self.err(e)),
        }
    }

    pub fn remove(&self, id: &str) -> Result<()> {
        self.conn
            .execute("DELETE FROM containers WHERE id = ?1", [id])
            .map(drop)
            .map_err(|e| self.err(e))
    }
}
