//! OCI hooks: when each kind runs, what it gets (state on stdin, args, env), timeouts and
//! failures.

mod common;

use common::*;
use serde_json::{json, Value};
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::time::{Duration, Instant};

/// A host script that saves its stdin as DIR/<name>.json and appends "<name> <FOO> <args>"
/// to DIR/order.
fn host_hook(env: &Env) -> String {
    let dir = env.path("hooks");
    fs::create_dir_all(&dir).unwrap();
    let path = dir.join("hook.sh");
    fs::write(
        &path,
        format!(
            "#!/bin/busybox sh\n/bin/busybox cat > {d}/$1.json\necho \"$1 $FOO $0 $*\" >> {d}/order\n",
            d = dir.display()
        ),
    )
    .unwrap();
    fs::set_permissions(&path, fs::Permissions::from_mode(0o755)).unwrap();
    path.to_str().unwrap().to_string()
}

fn hook(path: &str, name: &str, env: &Env) -> Value {
    json!({"path": path, "args": ["hook-argv0", name, "extra"],
           "env": [format!("FOO=foo-{name}"), format!("{TAG_VAR}={}", env.tag)]})
}

fn read_json(p: &Path) -> Value {
    let text = fs::read_to_string(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}: {text:?}", p.display()))
}

#[test]
fn every_hook_runs_at_its_point_with_state_args_and_env() {
    let env = Env::new("hooks");
    let h = host_hook(&env);
    let dir = env.path("hooks");
    let mut b = env.bundle(&["sleep", "1000"]);
    // startContainer runs in the container: its path is the container's.
    fs::write(
        b.rootfs().join("start-hook.sh"),
        "#!/bin/sh\ncat > /tmp/startContainer.json\necho \"$1 $FOO\" > /tmp/startContainer.order\n",
    )
    .unwrap();
    fs::set_permissions(
        b.rootfs().join("start-hook.sh"),
        fs::Permissions::from_mode(0o755),
    )
    .unwrap();
    b.edit(|c| {
        c["root"]["readonly"] = json!(false);
        c["annotations"] = json!({"hook.test": "yes"});
        c["hooks"] = json!({
            "prestart": [hook(&h, "prestart", &env)],
            "createRuntime": [hook(&h, "createRuntime", &env)],
            "createContainer": [hook(&h, "createContainer", &env)],
            "startContainer": [{"path": "/start-hook.sh", "args": ["start-hook.sh", "startContainer"],
                                "env": ["FOO=foo-startContainer"]}],
            "poststart": [hook(&h, "poststart", &env)],
            "poststop": [hook(&h, "poststop", &env)],
        });
    });
    let id = env.id("hk");
    let pid = env.create(&id, &b);
    let order = || fs::read_to_string(dir.join("order")).unwrap_or_default();
    let names = || -> Vec<String> {
        order()
            .lines()
            .map(|l| l.split(' ').next().unwrap().to_string())
            .collect()
    };
    assert_eq!(
        names(),
        ["prestart", "createRuntime", "createContainer"],
        "after create: {}",
        order()
    );
    for name in ["prestart", "createRuntime", "createContainer"] {
        let st = read_json(&dir.join(format!("{name}.json")));
        assert_eq!(st["id"], json!(id), "{name}: {st}");
        // runc reports "created" here, the runtime-spec lifecycle says "creating": accept either.
        assert!(
            st["status"] == "creating" || st["status"] == "created",
            "{name}: {st}"
        );
        assert_eq!(st["pid"], json!(pid), "{name}: {st}");
        assert!(st["ociVersion"].is_string(), "{name}: {st}");
        assert_eq!(
            fs::canonicalize(st["bundle"].as_str().unwrap()).unwrap(),
            fs::canonicalize(&b.dir).unwrap()
        );
        assert_eq!(st["annotations"]["hook.test"], "yes", "{name}: {st}");
    }
    // args and env are the hook's own.
    let first = order().lines().next().unwrap().to_string();
    // ($0 of a #! script is the script's path; the args after argv[0] are ours.)
    assert_eq!(first, format!("prestart foo-prestart {h} prestart extra"));
    let tmp = b.rootfs().join("tmp");
    assert!(
        !tmp.join("startContainer.json").exists(),
        "startContainer ran before start"
    );

    env.rt(&["start", &id]).assert_ok();
    // poststart ran before start returned, startContainer in the container before that.
    assert_eq!(
        names().last().map(String::as_str),
        Some("poststart"),
        "{}",
        order()
    );
    let st = read_json(&dir.join("poststart.json"));
    assert_eq!(st["status"], "running", "{st}");
    assert_eq!(st["pid"], json!(pid));
    let st = read_json(&tmp.join("startContainer.json"));
    assert_eq!(st["id"], json!(id), "{st}");
    assert_eq!(
        fs::read_to_string(tmp.join("startContainer.order"))
            .unwrap()
            .trim(),
        "startContainer foo-startContainer"
    );
    assert!(
        !dir.join("poststop.json").exists(),
        "poststop ran too early"
    );

    env.rt(&["kill", &id, "KILL"]).assert_ok();
    wait_for(Duration::from_secs(10), || {
        (env.status(&id) == "stopped").then_some(())
    })
    .expect("stopped");
    assert!(
        !dir.join("poststop.json").exists(),
        "poststop ran before delete"
    );
    env.rt(&["delete", &id]).assert_ok();
    assert_eq!(
        names().last().map(String::as_str),
        Some("poststop"),
        "{}",
        order()
    );
    let st = read_json(&dir.join("poststop.json"));
    assert_eq!(st["id"], json!(id));
    assert_eq!(st["status"], "stopped", "{st}");
    assert_eq!(names().len(), 5, "{}", order());
}

#[test]
fn poststop_runs_when_run_ends() {
    let env = Env::new("hookrun");
    let h = host_hook(&env);
    let mut b = env.bundle(&["true"]);
    b.edit(|c| c["hooks"] = json!({"poststop": [hook(&h, "poststop", &env)]}));
    env.run(&b).assert_ok();
    let st = read_json(&env.path("hooks/poststop.json"));
    assert_eq!(st["status"], "stopped", "{st}");
}

#[test]
fn failing_hooks_fail_create_and_leave_nothing() {
    let env = Env::new("hookfail");
    for kind in ["prestart", "createRuntime", "createContainer"] {
        let mut b = env.bundle(&["sleep", "1000"]);
        b.edit(|c| {
            c["hooks"] = json!({kind: [{"path": "/bin/sh",
                "args": ["sh", "-c", "echo hook-said-no >&2; exit 3"]}]})
        });
        let id = env.id("hf");
        let out = env.rt(&["create", &id, "--bundle", b.path()]);
        out.assert_clear_error(&[kind, "hook-said-no"]);
        env.assert_nothing_left(&id, &b);
    }
}

#[test]
fn failing_poststart_and_poststop_only_warn() {
    let env = Env::new("hookwarn");
    let mut b = env.bundle(&["sleep", "1000"]);
    let fail = json!([{"path": "/bin/sh", "args": ["sh", "-c", "exit 1"]}]);
    b.edit(|c| c["hooks"] = json!({"poststart": fail, "poststop": fail}));
    let id = env.id("hw");
    env.create(&id, &b);
    let out = env.rt(&["start", &id]);
    out.assert_ok();
    assert!(out.stderr.contains("poststart"), "no warning: {out}");
    assert_eq!(env.status(&id), "running");
    let out = env.rt(&["delete", "--force", &id]);
    out.assert_ok();
    assert!(out.stderr.contains("poststop"), "no warning: {out}");
    env.assert_nothing_left(&id, &b);
}

#[test]
fn failing_start_container_hook_fails_start() {
    let env = Env::new("hookstart");
    let mut b = env.bundle(&["sleep", "1000"]);
    b.edit(|c| {
        c["hooks"] =
            json!({"startContainer": [{"path": "/bin/sh", "args": ["sh", "-c", "exit 1"]}]})
    });
    let id = env.id("hs");
    env.create(&id, &b);
    let out = env.rt(&["start", &id]);
    assert!(
        !out.ok(),
        "start succeeded although startContainer failed: {out}"
    );
    let stopped = wait_for(Duration::from_secs(10), || {
        (env.status(&id) == "stopped").then_some(())
    });
    assert!(
        stopped.is_some(),
        "container not stopped after a failing startContainer hook"
    );
}

#[test]
fn hook_timeout_kills_it_and_fails_create() {
    let env = Env::new("hooktimeout");
    let mut b = env.bundle(&["sleep", "1000"]);
    b.edit(|c| {
        c["hooks"] = json!({"prestart": [{
            "path": "/bin/sh",
            "args": ["sh", "-c", "exec sleep 30"],
            "env": [format!("{TAG_VAR}={}", env.tag)],
            "timeout": 1
        }]})
    });
    let id = env.id("ht");
    let start = Instant::now();
    let out = env.rt(&["create", &id, "--bundle", b.path()]);
    let took = start.elapsed();
    out.assert_clear_error(&["prestart", "timed out"]);
    assert!(took < Duration::from_secs(10), "took {took:?}");
    // The hook itself (tagged through its env) is gone too.
    env.assert_nothing_left(&id, &b);
}
