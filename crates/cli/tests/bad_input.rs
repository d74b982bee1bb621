//! Bad input: one clear error line, a non-zero exit, and nothing left behind (state dir,
//! cgroup dirs, mounts, processes).

mod common;

use common::*;
use serde_json::json;
use std::fs;

/// `create` and `run` of this bundle both fail clearly and leave nothing.
fn refused(env: &Env, b: &Bundle, needles: &[&str]) {
    for verb in ["create", "run"] {
        let id = env.id(verb);
        env.rt(&[verb, &id, "--bundle", b.path()])
            .assert_clear_error(needles);
        env.assert_nothing_left(&id, b);
    }
}

#[test]
fn malformed_config_json() {
    let env = Env::new("malformed");
    let b = env.bundle(&["true"]);
    fs::write(
        b.dir.join("config.json"),
        "{\"ociVersion\": \"1.0.2\", \"process\": ",
    )
    .unwrap();
    refused(&env, &b, &["config.json"]);
}

#[test]
fn missing_config_json() {
    let env = Env::new("noconfig");
    let b = env.bundle(&["true"]);
    fs::remove_file(b.dir.join("config.json")).unwrap();
    refused(&env, &b, &["config.json"]);
}

#[test]
fn missing_process_args() {
    let env = Env::new("noargs");
    let mut b = env.bundle(&["true"]);
    b.edit(|c| {
        c["process"].as_object_mut().unwrap().remove("args");
    });
    refused(&env, &b, &["args"]);
    b.edit(|c| c["process"]["args"] = json!([]));
    refused(&env, &b, &["args"]);
}

#[test]
fn relative_cwd() {
    let env = Env::new("relcwd");
    let mut b = env.bundle(&["true"]);
    b.edit(|c| c["process"]["cwd"] = json!("relative/dir"));
    refused(&env, &b, &["cwd"]);
}

#[test]
fn missing_rootfs() {
    let env = Env::new("norootfs");
    let b = env.bundle(&["true"]);
    fs::remove_dir_all(b.rootfs()).unwrap();
    refused(&env, &b, &["root"]);
}

#[test]
fn unknown_namespace_type() {
    let env = Env::new("badns");
    let mut b = env.bundle(&["true"]);
    b.edit(|c| {
        c["linux"]["namespaces"]
            .as_array_mut()
            .unwrap()
            .push(json!({"type": "bogus"}))
    });
    refused(&env, &b, &["bogus"]);
}

#[test]
fn namespace_path_that_does_not_exist() {
    let env = Env::new("badnspath");
    let mut b = env.bundle(&["true"]);
    b.set_namespace("network", Some("/proc/999999999/ns/net"));
    refused(&env, &b, &["/proc/999999999/ns/net"]);
}

#[test]
fn missing_program() {
    let env = Env::new("noprog");
    let b = env.bundle(&["/no/such/program"]);
    refused(&env, &b, &["/no/such/program"]);
    let b = env.bundle(&["no-such-program"]);
    refused(&env, &b, &["no-such-program"]);
}

#[test]
fn host_sysctl_is_refused() {
    let env = Env::new("badsysctl");
    let mut b = env.bundle(&["true"]);
    b.edit(|c| c["linux"]["sysctl"] = json!({"vm.swappiness": "10"}));
    refused(&env, &b, &["vm.swappiness"]);
}

#[test]
fn bad_mount_fails_during_setup_and_leaves_nothing() {
    // Fails inside the container's init, after namespaces and the cgroup exist.
    let env = Env::new("badmount");
    let mut b = env.bundle(&["true"]);
    b.add_mount(json!({"destination": "/data", "type": "bind",
                       "source": "/no/such/source/dir", "options": ["bind"]}));
    refused(&env, &b, &["/no/such/source/dir"]);
}

#[test]
fn id_in_use() {
    let env = Env::new("inuse");
    let b = env.bundle(&["sleep", "1000"]);
    let id = env.id("dup");
    let pid = env.create(&id, &b);
    for verb in ["create", "run"] {
        env.rt(&[verb, &id, "--bundle", b.path()])
            .assert_clear_error(&[&id, "exists"]);
    }
    // The first container is untouched.
    let st = env.state(&id);
    assert_eq!(st["status"], "created");
    assert_eq!(st["pid"], json!(pid));
    env.rt(&["delete", &id]).assert_ok();
    env.assert_nothing_left(&id, &b);
}

#[test]
fn console_socket_that_does_not_exist() {
    let env = Env::new("badsock");
    let mut b = env.bundle(&["true"]);
    b.edit(|c| c["process"]["terminal"] = json!(true));
    let sock = env.path("nope.sock");
    let id = env.id("sock");
    env.rt(&[
        "create",
        &id,
        "--bundle",
        b.path(),
        "--console-socket",
        sock.to_str().unwrap(),
    ])
    .assert_clear_error(&["nope.sock"]);
    env.assert_nothing_left(&id, &b);
}
