//! The command line: global flags, every verb and its flags, lifecycle states, concurrency.

mod common;

use common::*;
use serde_json::{json, Value};
use std::fs;
use std::time::{Duration, Instant};

#[test]
fn root_flag_places_state_under_it() {
    let env = Env::new("root");
    let b = env.bundle(&["sleep", "1000"]);
    let id = env.id("root");
    env.create(&id, &b);
    assert!(
        env.root.join(&id).join("state.json").is_file(),
        "no state.json under --root {}",
        env.root.display()
    );
    // Another root doesn't know the container.
    let other = env.path("other-root");
    run_bin(
        &["--root", other.to_str().unwrap(), "state", &id],
        &env.base,
        &env.tag,
        Opts::default(),
    )
    .assert_clear_error(&[&id]);
}

#[test]
fn log_file_gets_the_error_line_as_text() {
    let env = Env::new("logtext");
    let log = env.path("log.txt");
    let out = env.rt(&["--log", log.to_str().unwrap(), "state", "no-such-ctr"]);
    out.assert_clear_error(&["no-such-ctr"]);
    let text = fs::read_to_string(&log).expect("--log file written");
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 1, "one line in the log: {text:?}");
    assert!(lines[0].contains("level=error"), "{text:?}");
    assert!(lines[0].contains("no-such-ctr"), "{text:?}");
    assert!(lines[0].contains("time="), "{text:?}");
}

#[test]
fn log_format_json_writes_json_lines() {
    let env = Env::new("logjson");
    let log = env.path("log.json");
    let log_s = log.to_str().unwrap();
    for id in ["missing-a", "missing-b"] {
        env.rt(&["--log", log_s, "--log-format", "json", "kill", id, "KILL"])
            .assert_clear_error(&[id]);
    }
    let text = fs::read_to_string(&log).expect("--log file written");
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 2, "{text:?}");
    for (l, id) in lines.iter().zip(["missing-a", "missing-b"]) {
        let v: Value = serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l:?}"));
        assert_eq!(v["level"], "error", "{l}");
        assert!(v["msg"].as_str().unwrap().contains(id), "{l}");
        assert!(
            v["time"].as_str().is_some_and(|t| t.len() >= 20),
            "time: {l}"
        );
    }
    // text is still accepted explicitly; a bad format is refused.
    env.rt(&["--log-format", "text", "list"]).assert_ok();
    let bad = env.rt(&["--log-format", "xml", "list"]);
    assert!(!bad.ok(), "{bad}");
}

#[test]
fn debug_flag_is_accepted() {
    let env = Env::new("debug");
    let b = env.sh_bundle("echo debug-ok");
    let id = env.id("dbg");
    let out = env.rt(&["--debug", "run", &id, "--bundle", b.path()]);
    out.assert_ok();
    assert_eq!(out.stdout.trim(), "debug-ok");
    // --debug logs each invocation; without it, nothing.
    assert!(out.stderr.contains("debug: argv"), "{out}");
    let quiet = env.rt(&["list"]);
    assert!(!quiet.stderr.contains("debug:"), "{quiet}");
}

#[test]
fn systemd_cgroup_is_refused_clearly() {
    let env = Env::new("systemd");
    let b = env.bundle(&["true"]);
    for verb in ["create", "run"] {
        let id = env.id(verb);
        env.rt(&["--systemd-cgroup", verb, &id, "--bundle", b.path()])
            .assert_clear_error(&["systemd"]);
        env.assert_nothing_left(&id, &b);
    }
}

#[test]
fn spec_writes_valid_json_and_refuses_to_overwrite() {
    let env = Env::new("spec");
    let dir = env.path("specdir");
    fs::create_dir_all(&dir).unwrap();
    let d = dir.to_str().unwrap();
    env.rt(&["spec", "--bundle", d]).assert_ok();
    let path = dir.join("config.json");
    let text = fs::read_to_string(&path).unwrap();
    let v: Value = serde_json::from_str(&text).expect("spec writes valid JSON");
    assert!(v["ociVersion"].as_str().unwrap().starts_with("1."), "{v}");
    assert!(v["process"]["args"]
        .as_array()
        .is_some_and(|a| !a.is_empty()));
    assert_eq!(v["root"]["path"], "rootfs");
    let ns: Vec<&str> = v["linux"]["namespaces"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["type"].as_str().unwrap())
        .collect();
    for t in ["pid", "network", "ipc", "uts", "mount"] {
        assert!(ns.contains(&t), "default spec lacks {t}: {ns:?}");
    }
    // Refuses to overwrite, and leaves the file as it was.
    fs::write(&path, "{\"mine\": true}").unwrap();
    env.rt(&["spec", "--bundle", d])
        .assert_clear_error(&["config.json"]);
    assert_eq!(fs::read_to_string(&path).unwrap(), "{\"mine\": true}");
    // Without --bundle: the current directory.
    let cwd = env.path("cwd");
    fs::create_dir_all(&cwd).unwrap();
    env.rt_opts(
        &["spec"],
        Opts {
            cwd: Some(cwd.clone()),
            ..Opts::default()
        },
    )
    .assert_ok();
    let v: Value = serde_json::from_str(&fs::read_to_string(cwd.join("config.json")).unwrap())
        .expect("valid JSON");
    assert!(v["process"].is_object());
}

#[test]
fn spec_rootless() {
    let env = Env::new("specrl");
    let dir = env.path("rl");
    fs::create_dir_all(&dir).unwrap();
    env.rt(&["spec", "--rootless", "--bundle", dir.to_str().unwrap()])
        .assert_ok();
    let v: Value = serde_json::from_str(&fs::read_to_string(dir.join("config.json")).unwrap())
        .expect("valid JSON");
    let ns: Vec<&str> = v["linux"]["namespaces"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["type"].as_str().unwrap())
        .collect();
    assert!(ns.contains(&"user"), "{ns:?}");
    assert!(!ns.contains(&"network"), "{ns:?}");
    let uid = nix::unistd::getuid().as_raw();
    assert_eq!(v["linux"]["uidMappings"][0]["hostID"], json!(uid), "{v}");
    assert_eq!(v["linux"]["uidMappings"][0]["containerID"], json!(0), "{v}");
    assert!(v["linux"]["gidMappings"].is_array(), "{v}");
}

#[test]
fn create_accepts_flags_before_or_after_the_id() {
    let env = Env::new("flags");
    let b = env.bundle(&["sleep", "1000"]);
    let pf1 = env.path("a.pid");
    let id1 = env.id("before");
    env.rt(&[
        "create",
        "--bundle",
        b.path(),
        "--pid-file",
        pf1.to_str().unwrap(),
        &id1,
    ])
    .assert_ok();
    let pf2 = env.path("b.pid");
    let id2 = env.id("after");
    env.rt(&[
        "create",
        &id2,
        "--bundle",
        b.path(),
        "--pid-file",
        pf2.to_str().unwrap(),
        "--no-pivot",
        "--no-new-keyring",
        "--preserve-fds",
        "0",
    ])
    .assert_ok();
    for (id, pf) in [(&id1, &pf1), (&id2, &pf2)] {
        let st = env.state(id);
        assert_eq!(st["status"], "created");
        let pid = fs::read_to_string(pf).expect("pid file written");
        assert_eq!(pid.trim(), st["pid"].to_string(), "pid file vs state");
        assert!(
            std::path::Path::new(&format!("/proc/{}", pid.trim())).exists(),
            "pid from the pid file is not alive"
        );
    }
    // Short -b works too.
    let id3 = env.id("short");
    env.rt(&["create", "-b", b.path(), &id3]).assert_ok();
    assert_eq!(env.status(&id3), "created");
}

#[test]
fn bundle_defaults_to_the_current_directory() {
    let env = Env::new("cwdbundle");
    let b = env.sh_bundle("echo from-cwd");
    let id = env.id("cwd");
    let out = env.rt_opts(
        &["run", &id],
        Opts {
            cwd: Some(b.dir.clone()),
            ..Opts::default()
        },
    );
    out.assert_ok();
    assert_eq!(out.stdout.trim(), "from-cwd");
}

#[test]
fn preserve_fds_passes_extra_descriptors() {
    let env = Env::new("pfds");
    let b = env.sh_bundle("echo through-fd3 >&3 && echo ok");
    let target = env.path("fd3.txt");
    let f = fs::File::create(&target).unwrap();
    let id = env.id("pfd");
    let out = env.rt_opts(
        &["run", &id, "--bundle", b.path(), "--preserve-fds", "1"],
        Opts {
            extra_fds: vec![f.into()],
            ..Opts::default()
        },
    );
    out.assert_ok();
    assert_eq!(fs::read_to_string(&target).unwrap().trim(), "through-fd3");

    // Without --preserve-fds the descriptor is closed before the program runs.
    let target2 = env.path("fd3b.txt");
    let f = fs::File::create(&target2).unwrap();
    let id = env.id("nopfd");
    let out = env.rt_opts(
        &["run", &id, "--bundle", b.path()],
        Opts {
            extra_fds: vec![f.into()],
            ..Opts::default()
        },
    );
    assert_ne!(out.code, Some(0), "fd 3 leaked into the container: {out}");
    assert_eq!(fs::read_to_string(&target2).unwrap(), "");
}

#[test]
fn new_session_keyring_unless_no_new_keyring() {
    let env = Env::new("keyring");
    let mut b = env.sh_bundle("cat /proc/keys");
    b.edit(|c| {
        c["linux"]["maskedPaths"]
            .as_array_mut()
            .unwrap()
            .retain(|p| p != "/proc/keys")
    });
    let id = env.id("kr");
    let out = env.rt(&["run", &id, "--bundle", b.path()]);
    out.assert_ok();
    assert!(
        out.stdout.contains(&format!("_ses.{id}")),
        "no session keyring _ses.{id}: {out}"
    );
    let id = env.id("nokr");
    let out = env.rt(&["run", "--no-new-keyring", &id, "--bundle", b.path()]);
    out.assert_ok();
    assert!(!out.stdout.contains(&format!("_ses.{id}")), "{out}");
}

#[test]
fn create_then_start_runs_the_program() {
    let env = Env::new("start");
    let mut b = env.sh_bundle("echo started > /tmp/marker; sleep 1000");
    b.edit(|c| c["root"]["readonly"] = json!(false));
    let id = env.id("start");
    env.create(&id, &b);
    let marker = b.rootfs().join("tmp/marker");
    std::thread::sleep(Duration::from_millis(200));
    assert!(!marker.exists(), "the program ran before start");
    env.rt(&["start", &id]).assert_ok();
    assert!(
        wait_for(Duration::from_secs(10), || marker.exists().then_some(())).is_some(),
        "program did not run after start"
    );
    assert_eq!(env.status(&id), "running");
    // start on a running container is refused.
    env.rt(&["start", &id]).assert_clear_error(&[&id]);
    env.rt(&["kill", &id, "KILL"]).assert_ok();
    assert!(
        wait_for(Duration::from_secs(10), || (env.status(&id) == "stopped")
            .then_some(()))
        .is_some(),
        "not stopped after SIGKILL"
    );
    let st = env.state(&id);
    env.rt(&["delete", &id]).assert_ok();
    assert!(st.get("pid").is_none_or(|p| p == 0), "{st}");
    env.assert_nothing_left(&id, &b);
}

#[test]
fn run_returns_the_exit_code() {
    let env = Env::new("exitcode");
    for (script, want) in [("exit 0", 0), ("exit 42", 42), ("exit 255", 255)] {
        let out = env.run_sh(script);
        assert_eq!(out.code, Some(want), "{out}");
    }
}

#[test]
fn run_killed_by_signal_gives_128_plus_n() {
    let env = Env::new("sigcode");
    // Without a pid namespace the program is not an init: it can kill itself.
    let mut b = env.sh_bundle("kill -9 $$");
    b.remove_namespace("pid");
    let out = env.run(&b);
    assert_eq!(out.code, Some(128 + 9), "{out}");
    let mut b = env.sh_bundle("kill -TERM $$; sleep 5");
    b.remove_namespace("pid");
    let out = env.run(&b);
    assert_eq!(out.code, Some(128 + 15), "{out}");

    // With a pid namespace: the init killed from outside by `kill`.
    let b = env.bundle(&["sleep", "1000"]);
    let id = env.id("killed");
    let bundle = b.path().to_string();
    let root = env.root.to_str().unwrap().to_string();
    let (base, tag, id2) = (env.base.clone(), env.tag.clone(), id.clone());
    let t = std::thread::spawn(move || {
        run_bin(
            &["--root", &root, "run", &id2, "--bundle", &bundle],
            &base,
            &tag,
            Opts::default(),
        )
    });
    let running = wait_for(Duration::from_secs(10), || {
        let o = env.rt(&["state", &id]);
        (o.ok() && o.json()["status"] == "running").then_some(())
    });
    assert!(running.is_some(), "container never ran");
    env.rt(&["kill", &id, "9"]).assert_ok();
    let out = t.join().unwrap();
    assert_eq!(out.code, Some(137), "{out}");
    // Foreground run deletes the container when it ends.
    assert!(!env.root.join(&id).exists(), "run left its state behind");
}

#[test]
fn run_foreground_forwards_signals() {
    let env = Env::new("fwd");
    let b = env.sh_bundle("trap 'exit 7' TERM; echo ready; while :; do sleep 0.1; done");
    let id = env.id("fwd");
    let mut child = env
        .command(&["run", &id, "--bundle", b.path()])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let running = wait_for(Duration::from_secs(10), || {
        let o = env.rt(&["state", &id]);
        (o.ok() && o.json()["status"] == "running").then_some(())
    });
    assert!(running.is_some(), "container never ran");
    std::thread::sleep(Duration::from_millis(300));
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap();
    let (st, timed_out) = wait_timeout(&mut child, Duration::from_secs(15));
    assert!(!timed_out, "run did not end after SIGTERM");
    assert_eq!(st.and_then(|s| s.code()), Some(7), "SIGTERM not forwarded");
}

#[test]
fn run_detached_returns_at_once() {
    let env = Env::new("detach");
    let b = env.bundle(&["sleep", "1000"]);
    let id = env.id("det");
    let out = env.rt(&["run", "-d", &id, "--bundle", b.path()]);
    out.assert_ok();
    assert!(out.elapsed < Duration::from_secs(10), "{out}");
    assert_eq!(env.status(&id), "running");
    env.rt(&["delete", "--force", &id]).assert_ok();
    env.assert_nothing_left(&id, &b);
}

#[test]
fn state_is_runtime_spec_json() {
    let env = Env::new("state");
    let mut b = env.bundle(&["sleep", "1000"]);
    b.edit(|c| c["annotations"] = json!({"org.example.key": "value-1"}));
    let id = env.id("st");
    let pid = env.create(&id, &b);
    let st = env.state(&id);
    assert!(st["ociVersion"].as_str().unwrap().starts_with("1."), "{st}");
    assert_eq!(st["id"], json!(id));
    assert_eq!(st["status"], "created");
    assert_eq!(st["pid"], json!(pid));
    assert!(pid > 0);
    let bundle = std::fs::canonicalize(&b.dir).unwrap();
    assert_eq!(
        std::fs::canonicalize(st["bundle"].as_str().unwrap()).unwrap(),
        bundle,
        "{st}"
    );
    assert!(
        st["bundle"].as_str().unwrap().starts_with('/'),
        "bundle must be absolute: {st}"
    );
    assert_eq!(st["annotations"]["org.example.key"], "value-1", "{st}");
    env.rt(&["start", &id]).assert_ok();
    let st = env.state(&id);
    assert_eq!(st["status"], "running");
    assert_eq!(st["pid"], json!(pid));
}

#[test]
fn kill_takes_signal_names_and_numbers() {
    let env = Env::new("killsig");
    let mut b = env.sh_bundle(
        "trap 'echo x >> /tmp/usr1' USR1; trap 'echo x >> /tmp/usr2' USR2; \
         trap 'exit 3' TERM; echo up > /tmp/up; while :; do sleep 0.1; done",
    );
    b.edit(|c| c["root"]["readonly"] = json!(false));
    let id = env.id("ks");
    env.create(&id, &b);
    env.rt(&["start", &id]).assert_ok();
    let tmp = b.rootfs().join("tmp");
    assert!(wait_for(Duration::from_secs(10), || tmp
        .join("up")
        .exists()
        .then_some(()))
    .is_some());
    let count = |f: &str| {
        fs::read_to_string(tmp.join(f))
            .map(|s| s.lines().count())
            .unwrap_or(0)
    };
    for (i, sig) in ["USR1", "SIGUSR1", "sigusr1", "10"].into_iter().enumerate() {
        env.rt(&["kill", &id, sig]).assert_ok();
        let want = i + 1;
        let got = wait_for(Duration::from_secs(10), || {
            (count("usr1") >= want).then_some(())
        });
        assert!(got.is_some(), "signal {sig} not delivered");
    }
    env.rt(&["kill", &id, "12"]).assert_ok();
    assert!(wait_for(Duration::from_secs(10), || (count("usr2") == 1)
        .then_some(()))
    .is_some());
    env.rt(&["kill", &id, "NOSUCHSIG"])
        .assert_clear_error(&["NOSUCHSIG"]);
    // Default: SIGTERM.
    env.rt(&["kill", &id]).assert_ok();
    assert!(
        wait_for(Duration::from_secs(10), || (env.status(&id) == "stopped")
            .then_some(()))
        .is_some(),
        "SIGTERM (the default) did not stop it"
    );
    // A stopped container can't be signalled.
    let out = env.rt(&["kill", &id, "KILL"]);
    out.assert_clear_error(&[&id]);
    env.rt(&["delete", &id]).assert_ok();
    env.assert_nothing_left(&id, &b);
}

#[test]
fn kill_all_signals_every_process() {
    let env = Env::new("killall");
    // No pid namespace: killing the init alone would leave the sleepers running.
    let mut b = env.sh_bundle("sleep 1000 & sleep 1000 & sleep 1000");
    b.remove_namespace("pid");
    let id = env.id("ka");
    env.create(&id, &b);
    env.rt(&["start", &id]).assert_ok();
    let three = wait_for(Duration::from_secs(10), || {
        (pids_in_cgroup_of(&id).len() >= 3).then_some(())
    });
    assert!(three.is_some(), "cgroup: {:?}", pids_in_cgroup_of(&id));
    env.rt(&["kill", "--all", &id, "KILL"]).assert_ok();
    let gone = wait_for(Duration::from_secs(10), || {
        pids_in_cgroup_of(&id)
            .iter()
            .all(|p| is_zombie(*p))
            .then_some(())
    });
    assert!(gone.is_some(), "left: {:?}", pids_in_cgroup_of(&id));
    assert!(
        wait_for(Duration::from_secs(10), || (env.status(&id) == "stopped")
            .then_some(()))
        .is_some()
    );
    env.rt(&["delete", &id]).assert_ok();
    env.assert_nothing_left(&id, &b);
}

#[test]
fn delete_needs_force_for_a_running_container() {
    let env = Env::new("delete");
    let b = env.bundle(&["sleep", "1000"]);
    let id = env.id("del");
    let pid = env.create(&id, &b);
    env.rt(&["start", &id]).assert_ok();
    env.rt(&["delete", &id]).assert_clear_error(&[&id]);
    assert_eq!(env.status(&id), "running");
    env.rt(&["delete", "--force", &id]).assert_ok();
    assert!(
        !std::path::Path::new(&format!("/proc/{pid}")).exists() || is_zombie(pid),
        "init {pid} still alive after delete --force"
    );
    env.assert_nothing_left(&id, &b);
    // A created (never started) container is deleted without --force.
    let id = env.id("del2");
    let pid = env.create(&id, &b);
    env.rt(&["delete", &id]).assert_ok();
    assert!(!std::path::Path::new(&format!("/proc/{pid}")).exists() || is_zombie(pid));
    env.assert_nothing_left(&id, &b);
}

#[test]
fn list_in_table_json_and_quiet_form() {
    let env = Env::new("list");
    let b = env.bundle(&["sleep", "1000"]);
    let a = env.id("lista");
    let c = env.id("listb");
    env.create(&a, &b);
    env.create(&c, &b);
    env.rt(&["start", &c]).assert_ok();
    let out = env.rt(&["list"]);
    out.assert_ok();
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert!(lines[0].starts_with("ID"), "{out}");
    assert!(lines[0].contains("STATUS"), "{out}");
    let row = |id: &str| lines.iter().find(|l| l.starts_with(id)).copied();
    assert!(row(&a).is_some_and(|l| l.contains("created")), "{out}");
    assert!(row(&c).is_some_and(|l| l.contains("running")), "{out}");

    let out = env.rt(&["list", "--format", "json"]);
    out.assert_ok();
    let v = out.json();
    let arr = v.as_array().expect("an array");
    assert_eq!(arr.len(), 2, "{v}");
    let find = |id: &str| arr.iter().find(|x| x["id"] == id).cloned().unwrap();
    assert_eq!(find(&a)["status"], "created");
    assert_eq!(find(&c)["status"], "running");
    assert!(find(&c)["pid"].as_i64().unwrap() > 0);

    let out = env.rt(&["list", "-q"]);
    out.assert_ok();
    let mut ids: Vec<&str> = out.stdout.lines().collect();
    ids.sort();
    let mut want = vec![a.as_str(), c.as_str()];
    want.sort();
    assert_eq!(ids, want);
    // An empty root lists nothing (and is not an error).
    let empty = env.path("empty-root");
    let out = run_bin(
        &["--root", empty.to_str().unwrap(), "list", "-q"],
        &env.base,
        &env.tag,
        Opts::default(),
    );
    out.assert_ok();
    assert_eq!(out.stdout.trim(), "");
}

#[test]
fn features_is_json() {
    let env = Env::new("features");
    let out = env.rt(&["features"]);
    out.assert_ok();
    let v = out.json();
    assert!(v["ociVersionMin"].is_string(), "{v}");
    assert!(v["ociVersionMax"].is_string(), "{v}");
    let hooks: Vec<&str> = v["hooks"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|h| h.as_str())
        .collect();
    for h in [
        "prestart",
        "createRuntime",
        "createContainer",
        "startContainer",
        "poststart",
        "poststop",
    ] {
        assert!(hooks.contains(&h), "{h}");
    }
    let ns = v["linux"]["namespaces"].as_array().unwrap();
    assert_eq!(ns.len(), 8, "{ns:?}");
    assert!(v["mountOptions"]
        .as_array()
        .is_some_and(|m| m.iter().any(|o| o == "rbind")));
}

#[test]
fn lifecycle_creating_created_running_stopped() {
    let env = Env::new("lifecycle");
    let mut b = env.bundle(&["sh", "-c", "sleep 1"]);
    // A slow createRuntime hook keeps the container in "creating" for a while.
    b.edit(|c| {
        c["hooks"] =
            json!({"createRuntime": [{"path": "/bin/sh", "args": ["sh", "-c", "sleep 2"]}]})
    });
    let id = env.id("lc");
    let bundle = b.path().to_string();
    let root = env.root.to_str().unwrap().to_string();
    let (base, tag, id2) = (env.base.clone(), env.tag.clone(), id.clone());
    let t = std::thread::spawn(move || {
        run_bin(
            &["--root", &root, "create", &id2, "--bundle", &bundle],
            &base,
            &tag,
            Opts::default(),
        )
    });
    let creating = wait_for(Duration::from_secs(10), || {
        let o = env.rt(&["state", &id]);
        (o.ok() && o.json()["status"] == "creating").then_some(())
    });
    t.join().unwrap().assert_ok();
    assert!(creating.is_some(), "never saw status creating");
    assert_eq!(env.status(&id), "created");
    env.rt(&["start", &id]).assert_ok();
    assert_eq!(env.status(&id), "running");
    let stopped = wait_for(Duration::from_secs(15), || {
        (env.status(&id) == "stopped").then_some(())
    });
    assert!(stopped.is_some(), "not stopped after its program ended");
    env.rt(&["delete", &id]).assert_ok();
    env.rt(&["state", &id]).assert_clear_error(&[&id]);
    env.assert_nothing_left(&id, &b);
}

#[test]
fn concurrent_create_with_one_id_lets_exactly_one_win() {
    let env = Env::new("race");
    let b = env.bundle(&["sleep", "1000"]);
    for round in 0..5 {
        let id = env.id(&format!("race{round}"));
        let handles: Vec<_> = (0..2)
            .map(|_| {
                let root = env.root.to_str().unwrap().to_string();
                let (base, tag, id, bundle) = (
                    env.base.clone(),
                    env.tag.clone(),
                    id.clone(),
                    b.path().to_string(),
                );
                std::thread::spawn(move || {
                    run_bin(
                        &["--root", &root, "create", &id, "--bundle", &bundle],
                        &base,
                        &tag,
                        Opts::default(),
                    )
                })
            })
            .collect();
        let outs: Vec<Out> = handles.into_iter().map(|h| h.join().unwrap()).collect();
        let wins = outs.iter().filter(|o| o.ok()).count();
        assert_eq!(wins, 1, "round {round}: {}\n{}", outs[0], outs[1]);
        let loser = outs.iter().find(|o| !o.ok()).unwrap();
        loser.assert_clear_error(&[&id]);
        // The winner's container is intact.
        assert_eq!(env.status(&id), "created");
        env.rt(&["delete", "--force", &id]).assert_ok();
        env.assert_nothing_left(&id, &b);
    }
}

#[test]
fn parallel_state_calls_while_running() {
    let env = Env::new("pstate");
    let b = env.bundle(&["sleep", "1000"]);
    let id = env.id("ps");
    let pid = env.create(&id, &b);
    env.rt(&["start", &id]).assert_ok();
    let start = Instant::now();
    std::thread::scope(|s| {
        let hs: Vec<_> = (0..6)
            .map(|_| {
                s.spawn(|| {
                    for _ in 0..15 {
                        let o = env.rt(&["state", &id]);
                        o.assert_ok();
                        let v = o.json();
                        assert_eq!(v["status"], "running", "{v}");
                        assert_eq!(v["pid"], json!(pid));
                    }
                })
            })
            .collect();
        // Meanwhile list and signal it too.
        for _ in 0..10 {
            env.rt(&["list", "-q"]).assert_ok();
            env.rt(&["kill", &id, "CONT"]).assert_ok();
        }
        for h in hs {
            h.join().unwrap();
        }
    });
    assert!(start.elapsed() < Duration::from_secs(60));
}

#[test]
fn unknown_id_is_a_clear_error() {
    let env = Env::new("unknown");
    for args in [
        vec!["state", "ghost-ctr"],
        vec!["start", "ghost-ctr"],
        vec!["kill", "ghost-ctr", "KILL"],
        vec!["delete", "ghost-ctr"],
    ] {
        env.rt(&args).assert_clear_error(&["ghost-ctr"]);
    }
    // Forced delete of a container that isn't there is fine (as runc).
    env.rt(&["delete", "--force", "ghost-ctr"]).assert_ok();
    assert!(!env.root.join("ghost-ctr").exists());
}

#[test]
fn invalid_ids_are_refused() {
    let env = Env::new("badid");
    let b = env.bundle(&["true"]);
    for id in ["../escape", "a/b", ".hidden"] {
        env.rt(&["create", id, "--bundle", b.path()])
            .assert_clear_error(&["id"]);
    }
    assert!(!env.base.join("escape").exists());
}
