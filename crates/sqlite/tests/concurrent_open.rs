//! Many processes open a fresh database at once; every one must get a working connection.

use std::sync::{Arc, Barrier};

const SETUP: &str = "PRAGMA synchronous=NORMAL;
    CREATE TABLE IF NOT EXISTS t(id INTEGER PRIMARY KEY, who TEXT NOT NULL);";

#[test]
fn racing_opens_of_a_fresh_file_all_succeed() {
    // Each round uses a fresh file: the race is in the first open's set-up.
    for round in 0..20 {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = Arc::new(dir.path().join("race.db"));
        let start = Arc::new(Barrier::new(8));
        let threads: Vec<_> = (0..8)
            .map(|i| {
                let (path, start) = (path.clone(), start.clone());
                std::thread::spawn(move || {
                    start.wait();
                    let conn = berth_sqlite::open(&path, SETUP)?;
                    conn.execute("INSERT INTO t(who) VALUES (?1)", [format!("{i}")])?;
                    Ok::<_, rusqlite::Error>(())
                })
            })
            .collect();
        for t in threads {
            match t.join() {
                Ok(Ok(())) => {}
                Ok(Err(e)) => panic!("round {round}: open or insert failed: {e}"),
                Err(_) => panic!("round {round}: a thread panicked"),
            }
        }
        let conn = berth_sqlite::open(&path, SETUP).expect("reopen");
        let n: i64 = conn
            .query_row("SELECT count(*) FROM t", [], |r| r.get(0))
            .expect("count");
        assert_eq!(n, 8, "round {round}");
        let mode: String = conn
            .query_row("PRAGMA journal_mode", [], |r| r.get(0))
            .expect("journal_mode");
        assert_eq!(mode, "wal");
    }
}

#[test]
fn a_broken_setup_fails_at_once_with_sqlites_error() {
    let dir = tempfile::tempdir().expect("tempdir");
    let err =
        berth_sqlite::open(&dir.path().join("x.db"), "CREATE TABLE (").expect_err("syntax error");
    assert!(err.to_string().contains("syntax error"), "{err}");
}

#[test]
fn a_file_that_is_not_a_database_is_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("x.db");
    std::fs::write(&path, vec![0x5a; 8192]).expect("write");
    let err = berth_sqlite::open(&path, SETUP).expect_err("not a database");
    assert!(err.to_string().contains("not a database"), "{err}");
}
