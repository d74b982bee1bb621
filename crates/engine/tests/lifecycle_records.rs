//! The container records and the pieces of the lifecycle that need no root: name
//! uniqueness under concurrency, lookup by id/name/prefix, state updates, `--network`
//! parsing, and how a runtime's error output becomes docker's exit codes.

use std::path::PathBuf;
use std::sync::Arc;

use berth_engine::network::NetworkMode;
use berth_engine::records::{ContainerConfig, ContainerRecord, Records, StateRecord, Status};
use berth_engine::runtime::{error_message, start_exit_code};
use berth_engine::Error;

fn record(id: &str, name: &str) -> ContainerRecord {
    ContainerRecord {
        id: id.into(),
        name: name.into(),
        image: "bb".into(),
        image_id: "sha256:00".into(),
        created: 1,
        config: ContainerConfig {
            entrypoint: vec![],
            cmd: vec!["true".into()],
            args: vec!["true".into()],
            layers: vec![PathBuf::from("/l")],
            env: vec![],
            working_dir: String::new(),
            user: String::new(),
            hostname: "h".into(),
            tty: false,
            console_size: None,
            open_stdin: false,
            auto_remove: false,
            read_only: false,
            mounts: vec![],
            memory: None,
            cpus: None,
            pids_limit: None,
            cap_add: vec![],
            cap_drop: vec![],
            security_opt: vec![],
            init: false,
            runtime: PathBuf::from("/usr/sbin/runc"),
            network: NetworkMode::None,
            net: Default::default(),
            exposed_ports: vec![],
            stop_signal: "SIGTERM".into(),
            stop_timeout: None,
            labels: vec![],
        },
        state: StateRecord {
            status: Status::Created,
            pid: 0,
            exit_code: 0,
            started_at: 0,
            finished_at: 0,
            error: String::new(),
            restart_count: 0,
        },
    }
}

fn db_path(name: &str) -> PathBuf {
    let d = tempfile::tempdir().expect("tmp").keep();
    d.join(format!("{name}.db"))
}

#[test]
fn names_are_unique_even_when_racing() {
    let path = Arc::new(db_path("race"));
    let threads: Vec<_> = (0..8)
        .map(|i| {
            let path = path.clone();
            std::thread::spawn(move || {
                let db = Records::open(&path).expect("open");
                db.insert(&record(&format!("{i:064x}"), "same"))
            })
        })
        .collect();
    let results: Vec<_> = threads
        .into_iter()
        .map(|t| t.join().expect("join"))
        .collect();
    assert_eq!(results.iter().filter(|r| r.is_ok()).count(), 1);
    for r in results.iter().filter(|r| r.is_err()) {
        match r {
            Err(e @ Error::NameInUse { name, .. }) => {
                assert_eq!(name, "same");
                assert!(e.to_string().contains("is already in use"), "{e}");
                assert_eq!(e.exit_code(), 125);
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    let _ = std::fs::remove_dir_all(path.parent().expect("dir"));
}

#[test]
fn lookup_by_id_name_and_prefix() {
    let path = db_path("find");
    let db = Records::open(&path).expect("open");
    db.insert(&record(&format!("ab1{:061x}", 1), "first"))
        .expect("1");
    db.insert(&record(&format!("ab2{:061x}", 2), "second"))
        .expect("2");
    assert_eq!(db.find("first").expect("name").name, "first");
    assert_eq!(db.find("/second").expect("/name").name, "second");
    let id1 = format!("ab1{:061x}", 1);
    assert_eq!(db.find(&id1).expect("id").name, "first");
    assert_eq!(db.find(&id1[..3]).expect("prefix").name, "first");
    assert!(matches!(db.find("ab"), Err(Error::AmbiguousContainer(_))));
    match db.find("ghost") {
        Err(e @ Error::NoSuchContainer(_)) => assert_eq!(e.to_string(), "No such container: ghost"),
        other => panic!("{other:?}"),
    }
    db.set_running(&id1, 42, 100).expect("running");
    let r = db.get(&id1).expect("get").expect("some");
    assert_eq!(
        (r.state.status, r.state.pid, r.state.started_at),
        (Status::Running, 42, 100)
    );
    db.set_exited(&id1, 137, 200).expect("exited");
    let r = db.get(&id1).expect("get").expect("some");
    assert_eq!(
        (r.state.status, r.state.pid, r.state.exit_code),
        (Status::Exited, 0, 137)
    );
    assert!(matches!(
        db.rename(&id1, "second"),
        Err(Error::NameInUse { .. })
    ));
    db.rename(&id1, "third").expect("rename");
    assert_eq!(db.find("third").expect("renamed").id, id1);
    db.remove(&id1).expect("remove");
    assert!(db.get(&id1).expect("get").is_none());
    assert_eq!(db.list().expect("list").len(), 1);
    let _ = std::fs::remove_dir_all(path.parent().expect("dir"));
}

#[test]
fn network_modes() {
    assert_eq!(NetworkMode::parse("none").expect("none"), NetworkMode::None);
    assert_eq!(NetworkMode::parse("host").expect("host"), NetworkMode::Host);
    assert_eq!(
        NetworkMode::parse("container:web").expect("c"),
        NetworkMode::Container("web".into())
    );
    assert_eq!(
        NetworkMode::parse("bridge").expect("b"),
        NetworkMode::Bridge("bridge".into())
    );
    assert!(NetworkMode::parse("container:").is_err());
    assert_eq!(
        NetworkMode::parse("mynet").expect("named"),
        NetworkMode::Bridge("mynet".into())
    );
    assert_eq!(
        NetworkMode::parse("container:web").expect("c").to_string(),
        "container:web"
    );
}

#[test]
fn runtime_errors_become_docker_exit_codes() {
    let runc = br#"time="2026-01-01T00:00:00Z" level=error msg="runc create failed: unable to start container process: exec: \"nope\": executable file not found in $PATH""#;
    let m = error_message(runc);
    assert_eq!(
        m,
        r#"runc create failed: unable to start container process: exec: "nope": executable file not found in $PATH"#
    );
    assert_eq!(start_exit_code(&m), 127);
    let ours = b"berth-runtime: error: container init: exec: \"/etc\": permission denied\n";
    assert_eq!(start_exit_code(&error_message(ours)), 126);
    assert_eq!(start_exit_code("cgroup: no space left"), 125);
}
