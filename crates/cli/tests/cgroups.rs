//! Cgroups through berth-runtime: limits land where the kernel reads them and are enforced
//! (OOM kill, pids.max), `pause`/`resume`, `ps`, `events`, `update`, and no cgroup is left
//! behind by delete (also after a crashed create).

mod common;

use common::*;
use serde_json::{json, Value};
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn is_root() -> bool {
    if nix::unistd::geteuid().is_root() {
        return true;
    }
    eprintln!("skipped: needs root");
    false
}

/// The container's directory for a v1 controller, or its unified directory on a pure v2
/// host.
fn cg_dir(id: &str, v1_controller: &str) -> PathBuf {
    let v1 = Path::new("/sys/fs/cgroup")
        .join(v1_controller)
        .join("berth")
        .join(id);
    if Path::new("/sys/fs/cgroup").join(v1_controller).is_dir() {
        v1
    } else {
        Path::new("/sys/fs/cgroup/berth").join(id)
    }
}

fn v1_has(controller: &str) -> bool {
    Path::new("/sys/fs/cgroup").join(controller).is_dir()
}

fn read_trim(p: impl AsRef<Path>) -> String {
    fs::read_to_string(p.as_ref())
        .unwrap_or_else(|e| panic!("{}: {e}", p.as_ref().display()))
        .trim()
        .to_string()
}

fn memory_limit_file(id: &str) -> PathBuf {
    if v1_has("memory") {
        cg_dir(id, "memory").join("memory.limit_in_bytes")
    } else {
        cg_dir(id, "memory").join("memory.max")
    }
}

fn set_resources(b: &mut Bundle, r: Value) {
    b.edit(|c| c["linux"]["resources"] = r);
}

#[test]
fn memory_hog_is_oom_killed() {
    if !is_root() {
        return;
    }
    let env = Env::new("cg-oom");
    // The pipeline's last command decides sh's status: tail, OOM-killed, gives 137.
    let mut b = env.sh_bundle("head -c 314572800 /dev/zero | tail");
    let mib64 = 64 << 20;
    set_resources(&mut b, json!({"memory": {"limit": mib64, "swap": mib64}}));
    let out = env.run(&b);
    assert_eq!(out.code, Some(137), "expected an OOM kill: {out}");
}

#[test]
fn pids_limit_stops_a_fork_loop() {
    if !is_root() {
        return;
    }
    let env = Env::new("cg-pids");
    let mut b = env.sh_bundle(
        "ok=0; fail=0; i=0; while [ $i -lt 40 ]; do i=$((i+1)); \
         if (sleep 30 &) 2>/dev/null; then ok=$((ok+1)); else fail=$((fail+1)); fi; done; \
         echo ok=$ok fail=$fail",
    );
    set_resources(&mut b, json!({"pids": {"limit": 20}}));
    let out = env.run(&b);
    out.assert_ok();
    let line = out.stdout.trim();
    let num = |k: &str| -> u32 {
        line.split_whitespace()
            .find_map(|w| w.strip_prefix(k))
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("no {k} in {line:?}"))
    };
    let (ok, fail) = (num("ok="), num("fail="));
    assert!(ok < 20, "more than pids.max processes started: {line}");
    assert!(ok >= 10, "the limit bit far too early: {line}");
    assert_eq!(ok + fail, 40, "{line}");
}

/// A counter the container bumps in a loop, read from the host.
fn counter(b: &Bundle) -> Option<u64> {
    fs::read_to_string(b.rootfs().join("tmp/counter"))
        .ok()
        .and_then(|s| s.trim().parse().ok())
}

#[test]
fn paused_container_does_not_run() {
    if !is_root() {
        return;
    }
    let env = Env::new("cg-pause");
    let mut b =
        env.sh_bundle(
        // Renamed into place: frozen between truncate and write, the file would read empty.
        "i=0; while true; do i=$((i+1)); echo $i > /tmp/c; mv /tmp/c /tmp/counter; usleep 2000; done",
    );
    b.edit(|c| c["root"]["readonly"] = json!(false));
    let id = env.id("pause");
    // Not running yet: pause of a stopped/unknown container fails, resume of a created one
    // too.
    env.rt(&["pause", "no-such-ctr"])
        .assert_clear_error(&["no-such-ctr"]);
    env.create(&id, &b);
    env.rt(&["resume", &id])
        .assert_clear_error(&[&id, "created", "paused"]);
    env.rt(&["start", &id]).assert_ok();
    wait_for(Duration::from_secs(10), || counter(&b).filter(|&c| c > 5))
        .expect("the counter starts");
    env.rt(&["resume", &id])
        .assert_clear_error(&[&id, "running", "paused"]);

    env.rt(&["pause", &id]).assert_ok();
    assert_eq!(env.status(&id), "paused");
    let list = env.rt(&["list", "--format", "json"]);
    list.assert_ok();
    assert_eq!(list.json()[0]["status"], "paused", "{list}");
    let freezer = if v1_has("freezer") {
        read_trim(cg_dir(&id, "freezer").join("freezer.state"))
    } else {
        read_trim(cg_dir(&id, "freezer").join("cgroup.freeze"))
    };
    assert!(freezer == "FROZEN" || freezer == "1", "{freezer}");
    env.rt(&["pause", &id]).assert_clear_error(&[&id, "paused"]);
    std::thread::sleep(Duration::from_millis(50));
    let before = counter(&b);
    std::thread::sleep(Duration::from_millis(400));
    assert_eq!(counter(&b), before, "the counter moved while paused");
    assert!(before.is_some());

    env.rt(&["resume", &id]).assert_ok();
    assert_eq!(env.status(&id), "running");
    let before = before.unwrap();
    wait_for(Duration::from_secs(10), || {
        counter(&b).filter(|&c| c > before + 5)
    })
    .expect("the counter moves again after resume");
    // A paused container can be force-deleted.
    env.rt(&["pause", &id]).assert_ok();
    env.rt(&["delete", &id])
        .assert_clear_error(&[&id, "paused"]);
    env.rt(&["delete", "--force", &id]).assert_ok();
    env.assert_nothing_left(&id, &b);
    env.rt(&["pause", &id]).assert_clear_error(&[&id]);
}

#[test]
fn ps_lists_the_container_processes() {
    if !is_root() {
        return;
    }
    let env = Env::new("cg-ps");
    let b = env.sh_bundle("sleep 1000 & sleep 1001");
    let id = env.id("ps");
    let init = env.create(&id, &b);
    let out = env.rt(&["ps", "-f", "json", &id]);
    out.assert_ok();
    assert_eq!(out.json(), json!([init]), "{out}");
    assert!(out.stdout.ends_with("]\n"), "{out}");

    env.rt(&["start", &id]).assert_ok();
    let pids = wait_for(Duration::from_secs(10), || {
        let out = env.rt(&["ps", "--format", "json", &id]);
        out.assert_ok();
        let v: Vec<i32> = serde_json::from_value(out.json()).unwrap();
        (v.len() == 2).then_some(v)
    })
    .expect("two processes in the container");
    assert!(pids.contains(&init), "{pids:?} lacks init {init}");

    // Default table: ps -ef, header plus exactly the container's lines.
    let out = env.rt(&["ps", &id]);
    out.assert_ok();
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert!(
        lines[0].contains("PID") && lines[0].contains("CMD"),
        "{out}"
    );
    assert_eq!(lines.len(), 3, "{out}");
    assert!(
        out.stdout.contains("sleep 1000") && out.stdout.contains("sleep 1001"),
        "{out}"
    );
    // ps options after the id go to ps.
    let out = env.rt(&["ps", &id, "-o", "pid,comm"]);
    out.assert_ok();
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(
        lines[0].split_whitespace().collect::<Vec<_>>(),
        ["PID", "COMMAND"],
        "{out}"
    );
    assert_eq!(lines.len(), 3, "{out}");
    let listed: Vec<i32> = lines[1..]
        .iter()
        .map(|l| l.split_whitespace().next().unwrap().parse().unwrap())
        .collect();
    let mut sorted = listed.clone();
    sorted.sort();
    assert_eq!(sorted, pids, "{out}");
    let bad = env.rt(&["ps", "-f", "yaml", &id]);
    assert!(!bad.ok() && bad.stderr.contains("yaml"), "{bad}");
    env.rt(&["ps", "nope"]).assert_clear_error(&["nope"]);
}

#[test]
fn events_stats_and_oom() {
    if !is_root() {
        return;
    }
    let env = Env::new("cg-events");
    let mut b = env.sh_bundle(
        "while [ ! -e /tmp/go ]; do usleep 20000; done; head -c 314572800 /dev/zero | tail; usleep 300000",
    );
    let mib64 = 64 << 20;
    set_resources(&mut b, json!({"memory": {"limit": mib64, "swap": mib64}}));
    let id = env.id("ev");
    env.rt(&["run", "-d", &id, "--bundle", b.path()])
        .assert_ok();

    let out = env.rt(&["events", "--stats", &id]);
    out.assert_ok();
    assert_eq!(out.stdout.lines().count(), 1, "{out}");
    let ev = out.json();
    assert_eq!(ev["type"], "stats", "{out}");
    assert_eq!(ev["id"], id.as_str(), "{out}");
    let usage = ev["data"]["memory"]["usage"]["usage"].as_u64().unwrap_or(0);
    assert!(usage > 0, "memory usage is 0: {out}");
    assert_eq!(ev["data"]["memory"]["usage"]["limit"], mib64, "{out}");
    assert!(
        ev["data"]["pids"]["current"].as_u64().unwrap_or(0) >= 1,
        "{out}"
    );
    env.rt(&["events", "--interval", "0s", &id])
        .assert_clear_error(&["interval"]);
    env.rt(&["events", "--interval", "5parsecs", &id])
        .assert_clear_error(&["interval", "5parsecs"]);

    // Streaming: stats every 100ms, an OOM event, and the end when the container stops.
    let out_path = env.path("events.out");
    let mut child = env
        .command(&["events", "--interval", "100ms", &id])
        .stdout(fs::File::create(&out_path).unwrap())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let stats_seen = wait_for(Duration::from_secs(10), || {
        let t = fs::read_to_string(&out_path).unwrap_or_default();
        (t.lines().count() >= 3).then_some(())
    });
    fs::write(b.rootfs().join("tmp/go"), "").unwrap();
    let (status, timed_out) = wait_timeout(&mut child, Duration::from_secs(20));
    let text = fs::read_to_string(&out_path).unwrap_or_default();
    assert!(stats_seen.is_some(), "no stats lines every 100ms: {text}");
    assert!(
        !timed_out,
        "events did not end when the container stopped: {text}"
    );
    assert!(status.unwrap().success(), "{text}");
    let events: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l:?}")))
        .collect();
    assert!(
        events
            .iter()
            .any(|e| *e == json!({"type": "oom", "id": id})),
        "no oom event: {text}"
    );
    assert!(events.iter().all(|e| e["id"] == id.as_str()), "{text}");
    assert!(
        events.iter().filter(|e| e["type"] == "stats").count() >= 3,
        "{text}"
    );
    // A stopped container has no events.
    env.rt(&["events", "--stats", &id])
        .assert_clear_error(&[&id, "stopped"]);
}

#[test]
fn update_changes_limits_and_records_them() {
    if !is_root() {
        return;
    }
    let env = Env::new("cg-update");
    let mut b = env.bundle(&["sleep", "1000"]);
    set_resources(
        &mut b,
        json!({
            "devices": [{"allow": false, "access": "rwm"}],
            "memory": {"limit": 64 << 20},
            "pids": {"limit": 50},
        }),
    );
    let id = env.id("upd");
    env.rt(&["run", "-d", &id, "--bundle", b.path()])
        .assert_ok();
    let mem = memory_limit_file(&id);
    assert_eq!(read_trim(&mem), (64u64 << 20).to_string());
    let pids_max = cg_dir(&id, "pids").join("pids.max");
    assert_eq!(read_trim(&pids_max), "50");

    env.rt(&["update", "--memory", "128m", &id]).assert_ok();
    assert_eq!(read_trim(&mem), (128u64 << 20).to_string());
    env.rt(&["update", "--memory", "200000000", "--pids-limit", "70", &id])
        .assert_ok();
    // The kernel rounds to pages.
    let got: u64 = read_trim(&mem).parse().unwrap();
    assert!((199_999_488..=200_000_000).contains(&got), "{got}");
    assert_eq!(read_trim(&pids_max), "70");

    // --resources from stdin, then from a file.
    let out = env.rt_opts(
        &["update", "--resources", "-", &id],
        Opts {
            stdin: Some(stdin_bytes(
                &env,
                br#"{"memory": {"limit": 100663296}, "pids": {"limit": 33}}"#,
            )),
            ..Opts::default()
        },
    );
    out.assert_ok();
    assert_eq!(read_trim(&mem), "100663296");
    assert_eq!(read_trim(&pids_max), "33");
    let file = env.path("res.json");
    fs::write(&file, r#"{"pids": {"limit": -1}}"#).unwrap();
    env.rt(&[
        "update",
        "-r",
        file.to_str().unwrap(),
        "--memory",
        "1g",
        &id,
    ])
    .assert_ok();
    assert_eq!(read_trim(&pids_max), "max");
    assert_eq!(
        read_trim(&mem),
        "100663296",
        "flags are ignored with --resources"
    );

    // Recorded in the stored config; other resources kept.
    let stored: Value =
        serde_json::from_slice(&fs::read(env.root.join(&id).join("config.json")).unwrap()).unwrap();
    let r = &stored["linux"]["resources"];
    assert_eq!(r["memory"]["limit"], 100663296, "{r}");
    assert_eq!(r["pids"]["limit"], -1, "{r}");
    assert!(r["devices"].is_array(), "{r}");
    assert_eq!(stored["process"]["args"], json!(["sleep", "1000"]));

    // Bad values and unsupported resources: one clear line each.
    env.rt(&["update", "--memory", "lots", &id])
        .assert_clear_error(&["--memory", "lots"]);
    env.rt(&["update", "--cpu-period", "-5", &id])
        .assert_clear_error(&["--cpu-period"]);
    fs::write(&file, "{not json").unwrap();
    env.rt(&["update", "-r", file.to_str().unwrap(), &id])
        .assert_clear_error(&["--resources"]);
    if v1_has("memory") {
        fs::write(&file, r#"{"unified": {"memory.high": "1000000"}}"#).unwrap();
        env.rt(&["update", "-r", file.to_str().unwrap(), &id])
            .assert_clear_error(&["memory.high", "not supported"]);
    }
    env.rt(&["update", "--memory", "1m", "nope"])
        .assert_clear_error(&["nope"]);
    env.rt(&["kill", &id, "KILL"]).assert_ok();
    wait_for(Duration::from_secs(10), || {
        (env.status(&id) == "stopped").then_some(())
    })
    .expect("container stops");
    env.rt(&["update", "--memory", "1m", &id])
        .assert_clear_error(&[&id, "stopped"]);
}

fn stdin_bytes(env: &Env, bytes: &[u8]) -> Stdio {
    let p = env.path(&format!("stdin-{}", bytes.len()));
    fs::write(&p, bytes).unwrap();
    Stdio::from(fs::File::open(p).unwrap())
}

#[test]
fn create_delete_cycles_leave_no_cgroups() {
    if !is_root() {
        return;
    }
    let env = Env::new("cg-leak");
    let mut b = env.bundle(&["sleep", "1000"]);
    set_resources(
        &mut b,
        json!({"memory": {"limit": 64 << 20}, "pids": {"limit": 100}}),
    );
    let start = Instant::now();
    let mut ids = Vec::new();
    for i in 0..100 {
        let id = env.id("cyc");
        env.rt(&["create", &id, "--bundle", b.path()]).assert_ok();
        match i % 3 {
            0 => {}
            1 => {
                env.rt(&["start", &id]).assert_ok();
            }
            _ => {
                env.rt(&["start", &id]).assert_ok();
                env.rt(&["pause", &id]).assert_ok();
            }
        }
        let args: &[&str] = if i % 3 == 0 {
            &["delete", &id]
        } else {
            &["delete", "--force", &id]
        };
        env.rt(args).assert_ok();
        ids.push(id);
    }
    for id in &ids {
        let dirs = cgroup_dirs(id);
        assert!(dirs.is_empty(), "{id} left {dirs:?}");
        assert!(!env.root.join(id).exists(), "{id} left its state dir");
    }
    let left = tagged_pids(&env.tag);
    assert!(left.is_empty(), "processes left: {left:?}");
    eprintln!("100 cycles in {:?}", start.elapsed());
}

#[test]
fn delete_after_a_crashed_create_removes_its_cgroups() {
    if !is_root() {
        return;
    }
    let env = Env::new("cg-crash");
    // 1. A create that finished everything but writing its state: the init waits for start.
    let b = env.bundle(&["sleep", "1000"]);
    let id = env.id("nostate");
    let init = env.create(&id, &b);
    fs::remove_file(env.root.join(&id).join("state.json")).unwrap();
    assert!(!cgroup_dirs(&id).is_empty());
    env.rt(&["delete", &id]).assert_ok();
    env.assert_nothing_left(&id, &b);
    assert!(
        !Path::new(&format!("/proc/{init}")).exists() || is_zombie(init),
        "the waiting init survived"
    );

    // 2. A create killed while a createRuntime hook runs (cgroup made, init mid-setup).
    let mut b = env.bundle(&["sleep", "1000"]);
    b.edit(|c| {
        c["hooks"] =
            json!({"createRuntime": [{"path": "/bin/sh", "args": ["sh", "-c", "sleep 30"]}]})
    });
    let id = env.id("killed");
    let mut child = env
        .command(&["create", &id, "--bundle", b.path()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    wait_for(Duration::from_secs(10), || {
        (!pids_in_cgroup_of(&id).is_empty()).then_some(())
    })
    .expect("the create's init reaches its cgroup");
    std::thread::sleep(Duration::from_millis(100));
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(!env.root.join(&id).join("state.json").exists());
    let out = env.rt(&["state", &id]);
    out.assert_ok();
    env.rt(&["delete", &id]).assert_ok();
    // The hook's sleep is the test's own leftover (hooks run on the host), not the runtime's.
    for pid in tagged_pids(&env.tag) {
        if cmdline(pid).starts_with("sleep 30") || cmdline(pid).starts_with("sh -c sleep 30") {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid),
                nix::sys::signal::Signal::SIGKILL,
            );
        }
    }
    env.assert_nothing_left(&id, &b);
}

/// Pure cgroup v2: in a private mount namespace with cgroup2 mounted at /sys/fs/cgroup,
/// the runtime sees a unified-only host. Only controllers not bound to v1 can be enabled
/// there (hugetlb on this project's hybrid hosts), so this checks what needs none:
/// freezing, ps, stats, kill, delete.
#[test]
fn pure_v2_layout_in_a_private_mount_namespace() {
    if !is_root() {
        return;
    }
    let env = Env::new("cg-v2");
    let b = env.bundle(&["sleep", "1000"]);
    let id = env.id("v2");
    let root = env.root.to_str().unwrap().to_string();
    let script = format!(
        r#"set -e
mount -t cgroup2 none /sys/fs/cgroup || {{ echo "SKIP: cannot mount cgroup2"; exit 0; }}
echo "controllers: $(cat /sys/fs/cgroup/cgroup.controllers)"
R="{bin} --root {root}"
$R run -d {id} --bundle {bundle}
test -d /sys/fs/cgroup/berth/{id}
$R pause {id}
echo "freeze=$(cat /sys/fs/cgroup/berth/{id}/cgroup.freeze)"
$R state {id} | grep -q '"paused"'
$R resume {id}
echo "freeze=$(cat /sys/fs/cgroup/berth/{id}/cgroup.freeze)"
echo "ps=$($R ps -f json {id})"
echo "init=$($R state {id} | sed -n 's/.*"pid": \([0-9]*\).*/\1/p')"
$R events --stats {id} > {ev}
$R delete -f {id}
test ! -d /sys/fs/cgroup/berth/{id} && echo gone
"#,
        bin = BIN,
        id = id,
        bundle = b.path(),
        ev = env.path("v2-events").display(),
    );
    let out = Command::new("unshare")
        .args(["-m", "--propagation", "private", "sh", "-c", &script])
        .env(TAG_VAR, &env.tag)
        .output()
        .expect("unshare");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    if stdout.contains("SKIP") {
        eprintln!("skipped: {stdout}");
        return;
    }
    assert!(out.status.success(), "{stdout}\n{stderr}");
    assert!(
        stdout.contains("freeze=1\n") && stdout.contains("freeze=0\n"),
        "{stdout}"
    );
    let init = stdout
        .lines()
        .find_map(|l| l.strip_prefix("init="))
        .unwrap_or_default();
    assert!(stdout.contains(&format!("ps=[{init}]")), "{stdout}");
    assert!(stdout.contains("gone"), "{stdout}");
    let ev: Value = serde_json::from_slice(&fs::read(env.path("v2-events")).unwrap()).unwrap();
    assert_eq!(ev["type"], "stats");
    assert!(ev["data"]["cpu"].is_object(), "{ev}");
    eprintln!("{}", stdout.lines().next().unwrap_or_default());
    env.assert_nothing_left(&id, &b);
}
