//! Every berth store (images, layers, build cache, containers, volumes, networks) keeps
//! its records in SQLite, and any number of `berth` processes may open the same file at
//! the same moment: a `docker run` racing a `docker build` racing `docker ps`.
//!
//! SQLite's busy timeout covers ordinary lock waits, but not the first open of a fresh
//! file: switching it to WAL and creating the schema can answer `SQLITE_BUSY` at once,
//! without calling the busy handler (the journal-mode change needs an exclusive lock and
//! a reader that must upgrade to a writer cannot wait for it). So the set-up is retried
//! until the same deadline the busy timeout gives every other statement.

use std::path::Path;
use std::thread::sleep;
use std::time::{Duration, Instant};

use rusqlite::{Connection, ErrorCode};

/// How long any statement waits for another process's lock before giving up.
pub const BUSY_TIMEOUT: Duration = Duration::from_secs(30);

/// Open (creating it if needed) the database at `path` in WAL mode, then run `setup`:
/// the connection's pragmas and `CREATE ... IF NOT EXISTS` statements, which must be
/// safe to run again because a busy attempt is retried from the start.
pub fn open(path: &Path, setup: &str) -> rusqlite::Result<Connection> {
    let conn = Connection::open(path)?;
    conn.busy_timeout(BUSY_TIMEOUT)?;
    let deadline = Instant::now() + BUSY_TIMEOUT;
    let mut pause = Duration::from_millis(1);
    loop {
        match conn
            .execute_batch("PRAGMA journal_mode=WAL;")
            .and_then(|()| conn.execute_batch(setup))
        {
            Ok(()) => return Ok(conn),
            Err(e) if is_busy(&e) && Instant::now() < deadline => {
                sleep(pause);
                pause = (pause * 2).min(Duration::from_millis(50));
            }
            Err(e) => return Err(e),
        }
    }
}

fn is_busy(e: &rusqlite::Error) -> bool {
    matches!(
        e.sqlite_error_code(),
        Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked)
    )
}
