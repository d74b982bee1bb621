//! User namespaces: id maps written as root, mounts over a rootfs owned by the mapped root,
//! bad maps refused up front, and rootless (`spec --rootless` + `run` as an unprivileged
//! user, state under $XDG_RUNTIME_DIR).

mod common;

use common::*;
use serde_json::json;
use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::OnceLock;
use std::time::Instant;

const HOST_ROOT: u32 = 100000;

fn is_root() -> bool {
    nix::unistd::geteuid().is_root()
}

fn map_all(b: &mut Bundle, maps: serde_json::Value) {
    b.set_namespace("user", None);
    b.edit(|c| {
        c["linux"]["uidMappings"] = maps.clone();
        c["linux"]["gidMappings"] = maps;
    });
}

/// chown -R (without following symlinks).
fn chown_tree(p: &Path, uid: u32, gid: u32) {
    std::os::unix::fs::lchown(p, Some(uid), Some(gid)).unwrap();
    if fs::symlink_metadata(p).unwrap().is_dir() {
        for e in fs::read_dir(p).unwrap().flatten() {
            chown_tree(&e.path(), uid, gid);
        }
    }
}

#[test]
fn root_run_with_mapping_over_owned_rootfs() {
    if !is_root() {
        eprintln!("skipped: mapping to {HOST_ROOT} needs root");
        return;
    }
    let env = Env::new("usermap");
    let shared = env.path("shared");
    fs::create_dir(&shared).unwrap();
    fs::set_permissions(&shared, fs::Permissions::from_mode(0o777)).unwrap();
    let mut b = env.sh_bundle(
        "echo ID $(id -u) $(id -g); echo UIDMAP $(cat /proc/self/uid_map); \
         echo GIDMAP $(cat /proc/self/gid_map); touch /shared/made; \
         echo hi > /dev/null && echo DEVNULL; head -c 4 /dev/urandom | wc -c; \
         ls /sys/kernel >/dev/null && echo SYS; \
         echo CGROUPS $(ls /sys/fs/cgroup | wc -l); \
         grep -q ' /dev/pts ' /proc/self/mountinfo && echo DEVPTS; \
         echo OWNER $(stat -c %u /bin/busybox)",
    );
    map_all(
        &mut b,
        json!([{"containerID": 0, "hostID": HOST_ROOT, "size": 65536}]),
    );
    b.add_mount(json!({"destination": "/shared", "type": "bind",
        "source": shared.to_str().unwrap(), "options": ["rbind", "rw"]}));
    chown_tree(&b.rootfs(), HOST_ROOT, HOST_ROOT);
    let out = env.run(&b);
    out.assert_ok();
    for want in [
        "ID 0 0",
        "UIDMAP 0 100000 65536",
        "GIDMAP 0 100000 65536",
        "DEVNULL",
        "SYS",
        "DEVPTS",
        "OWNER 0",
    ] {
        assert!(out.stdout.contains(want), "no {want:?}: {out}");
    }
    assert!(out.stdout.lines().any(|l| l.trim() == "4"), "{out}");
    assert!(
        !out.stdout.contains("CGROUPS 0"),
        "/sys/fs/cgroup is empty: {out}"
    );
    let meta = fs::metadata(shared.join("made")).expect("the container made /shared/made");
    assert_eq!(
        (meta.uid(), meta.gid()),
        (HOST_ROOT, HOST_ROOT),
        "host owner of a file the container's root made"
    );
}

#[test]
fn devpts_without_mapped_tty_group() {
    if !is_root() {
        eprintln!("skipped: mapping to {HOST_ROOT} needs root");
        return;
    }
    // Only root is mapped: devpts can't take gid=5 and is mounted without it.
    let env = Env::new("usermap1");
    let mut b = env.sh_bundle("grep ' /dev/pts ' /proc/self/mountinfo && id -u");
    map_all(
        &mut b,
        json!([{"containerID": 0, "hostID": HOST_ROOT, "size": 1}]),
    );
    let out = env.run(&b);
    out.assert_ok();
    assert!(out.stdout.trim_end().ends_with('0'), "{out}");
}

#[test]
fn bad_mappings_are_refused_and_leave_nothing() {
    let env = Env::new("badmap");
    let cases: Vec<(serde_json::Value, bool, &[&str])> = vec![
        (
            json!([{"containerID": 0, "hostID": 100000, "size": 1000},
                   {"containerID": 500, "hostID": 300000, "size": 10}]),
            true,
            &["uidMappings", "overlap inside the container"],
        ),
        (
            json!([{"containerID": 0, "hostID": 100000, "size": 1000},
                   {"containerID": 2000, "hostID": 100999, "size": 10}]),
            true,
            &["uidMappings", "overlap on the host"],
        ),
        (
            json!([{"containerID": 0, "hostID": 4294967000u32, "size": 65536}]),
            true,
            &["uidMappings", "hostID", "past the last id"],
        ),
        (
            json!([{"containerID": 0, "hostID": 100000, "size": 0}]),
            true,
            &["uidMappings", "size 0"],
        ),
        (
            json!([{"containerID": 0, "hostID": 100000, "size": 10}]),
            false,
            &["uidMappings", "user namespace"],
        ),
    ];
    for (maps, userns, needles) in cases {
        let mut b = env.sh_bundle("true");
        b.edit(|c| c["linux"]["uidMappings"] = maps.clone());
        if userns {
            b.set_namespace("user", None);
            b.edit(|c| {
                c["linux"]["gidMappings"] =
                    json!([{"containerID": 0, "hostID": 100000, "size": 65536}])
            });
        }
        let id = env.id("badmap");
        env.rt(&["run", &id, "--bundle", b.path()])
            .assert_clear_error(needles);
        env.assert_nothing_left(&id, &b);
    }
}

// ---- rootless ----

const TEST_USER: &str = "berth-rootless-test";

/// Who the rootless test runs as, and how.
struct User {
    uid: u32,
    gid: u32,
    name: String,
    /// Switch to the user with setpriv (we are root), or we are the user already.
    switch: bool,
}

fn passwd_entry(name: &str) -> Option<(u32, u32)> {
    let text = fs::read_to_string("/etc/passwd").ok()?;
    text.lines().find_map(|l| {
        let f: Vec<&str> = l.split(':').collect();
        if f.len() > 3 && f[0] == name {
            Some((f[2].parse().ok()?, f[3].parse().ok()?))
        } else {
            None
        }
    })
}

/// The unprivileged user (created with useradd when we are root and it is missing), or
/// why there is none.
fn rootless_user() -> Result<User, String> {
    static USER: OnceLock<Result<(u32, u32), String>> = OnceLock::new();
    if !is_root() {
        let uid = nix::unistd::geteuid().as_raw();
        return Ok(User {
            uid,
            gid: nix::unistd::getegid().as_raw(),
            name: format!("#{uid}"),
            switch: false,
        });
    }
    let ids = USER.get_or_init(|| {
        if passwd_entry(TEST_USER).is_none() {
            let out = Command::new("useradd")
                .args(["-m", "-s", "/bin/sh", TEST_USER])
                .output()
                .map_err(|e| format!("useradd: {e}"))?;
            if !out.status.success() && passwd_entry(TEST_USER).is_none() {
                return Err(format!(
                    "useradd {TEST_USER} failed: {}",
                    String::from_utf8_lossy(&out.stderr).trim()
                ));
            }
        }
        passwd_entry(TEST_USER).ok_or_else(|| format!("no {TEST_USER} in /etc/passwd"))
    });
    let (uid, gid) = ids.clone()?;
    Ok(User {
        uid,
        gid,
        name: TEST_USER.into(),
        switch: true,
    })
}

impl User {
    fn command(&self, program: &str, xdg: &Path, tag: &str) -> Command {
        let mut cmd = if self.switch {
            let mut c = Command::new("setpriv");
            c.args([
                &format!("--reuid={}", self.uid),
                &format!("--regid={}", self.gid),
                "--clear-groups",
                "--",
                program,
            ]);
            c
        } else {
            Command::new(program)
        };
        cmd.env_clear()
            .env("PATH", "/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin")
            .env("XDG_RUNTIME_DIR", xdg)
            .env(TAG_VAR, tag)
            .current_dir("/");
        cmd
    }
}

/// Why unprivileged user namespaces can't be made here, if they can't.
fn userns_forbidden(user: &User, xdg: &Path, tag: &str) -> Option<String> {
    let knob = |p: &str| fs::read_to_string(p).ok().map(|s| s.trim().to_string());
    if knob("/proc/sys/user/max_user_namespaces").as_deref() == Some("0") {
        return Some("user.max_user_namespaces is 0".into());
    }
    if knob("/proc/sys/kernel/unprivileged_userns_clone").as_deref() == Some("0") {
        return Some("kernel.unprivileged_userns_clone is 0".into());
    }
    if knob("/proc/sys/kernel/apparmor_restrict_unprivileged_userns").as_deref() == Some("1") {
        return Some("kernel.apparmor_restrict_unprivileged_userns is 1".into());
    }
    let out = user
        .command("unshare", xdg, tag)
        .args(["--user", "--map-root-user", "true"])
        .output();
    match out {
        Ok(o) if o.status.success() => None,
        Ok(o) => Some(format!(
            "`unshare --user --map-root-user` as an unprivileged user failed: {}",
            String::from_utf8_lossy(&o.stderr).trim()
        )),
        Err(e) => Some(format!("running unshare: {e}")),
    }
}

fn run_as(user: &User, env: &Env, xdg: &Path, args: &[&str]) -> Out {
    static SEQ: AtomicUsize = AtomicUsize::new(0);
    let n = SEQ.fetch_add(1, Ordering::Relaxed);
    let out_path = env.path(&format!("rl-{n}.out"));
    let err_path = out_path.with_extension("err");
    let mut cmd = user.command(BIN, xdg, &env.tag);
    cmd.args(args)
        .stdin(Stdio::null())
        .stdout(fs::File::create(&out_path).unwrap())
        .stderr(fs::File::create(&err_path).unwrap());
    let start = Instant::now();
    let mut child = cmd.spawn().expect("spawning berth-runtime as the user");
    let (status, timed_out) = wait_timeout(&mut child, TIMEOUT);
    let read = |p: &Path| String::from_utf8_lossy(&fs::read(p).unwrap_or_default()).into_owned();
    Out {
        code: status.and_then(|s| s.code()),
        status,
        timed_out,
        stdout: read(&out_path),
        stderr: read(&err_path),
        elapsed: start.elapsed(),
        args: args.iter().map(|s| s.to_string()).collect(),
    }
}

/// The user's sub-id range from /etc/subuid, if any.
fn subuid_range(user: &User) -> Option<(u32, u32)> {
    let text = fs::read_to_string("/etc/subuid").ok()?;
    text.lines().find_map(|l| {
        let f: Vec<&str> = l.trim().split(':').collect();
        (f.len() == 3 && (f[0] == user.name || f[0] == user.uid.to_string()))
            .then(|| Some((f[1].parse().ok()?, f[2].parse().ok()?)))
            .flatten()
    })
}

fn assert_nothing_left_rootless(env: &Env, state_root: &Path, id: &str, bundle: &Path) {
    let mut last = Vec::new();
    let ok = wait_for(std::time::Duration::from_secs(5), || {
        let mut left = Vec::new();
        if state_root.join(id).exists() {
            left.push(format!("state dir {}", state_root.join(id).display()));
        }
        for pid in tagged_pids(&env.tag) {
            left.push(format!("process {pid} ({})", cmdline(pid)));
        }
        let info = fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
        let b = bundle.to_str().unwrap();
        left.extend(info.lines().filter(|l| l.contains(b)).map(String::from));
        let done = left.is_empty();
        last = left;
        done.then_some(())
    });
    assert!(
        ok.is_some(),
        "container {id} left behind:\n  {}",
        last.join("\n  ")
    );
}

#[test]
fn rootless_spec_and_run() {
    let env = Env::new("rootless");
    let user = match rootless_user() {
        Ok(u) => u,
        Err(why) => {
            eprintln!("skipped: no unprivileged user: {why}");
            return;
        }
    };
    // Everything the user touches lives in a directory of its own.
    let home = env.path("home");
    let xdg = home.join("xdg");
    let bundle = home.join("bundle");
    fs::create_dir_all(&xdg).unwrap();
    fs::set_permissions(&xdg, fs::Permissions::from_mode(0o700)).unwrap();
    make_rootfs(&bundle.join("rootfs"));
    if user.switch {
        // The test's directory is root's; the user must reach into it.
        fs::set_permissions(&env.base, fs::Permissions::from_mode(0o755)).unwrap();
        chown_tree(&home, user.uid, user.gid);
    }
    if let Some(why) = userns_forbidden(&user, &xdg, &env.tag) {
        eprintln!("skipped: unprivileged user namespaces are not allowed here: {why}");
        return;
    }
    let state_root = xdg.join("berth-runtime");

    // spec --rootless as the user: maps our own ids, no network namespace, no resources.
    run_as(
        &user,
        &env,
        &xdg,
        &["spec", "--rootless", "--bundle", bundle.to_str().unwrap()],
    )
    .assert_ok();
    let text = fs::read_to_string(bundle.join("config.json")).unwrap();
    let mut config: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(
        config["linux"]["uidMappings"],
        json!([{"containerID": 0, "hostID": user.uid, "size": 1}]),
        "{text}"
    );
    assert_eq!(
        config["linux"]["gidMappings"],
        json!([{"containerID": 0, "hostID": user.gid, "size": 1}]),
        "{text}"
    );
    let write = |config: &serde_json::Value| {
        let p = bundle.join("config.json");
        fs::write(&p, serde_json::to_vec_pretty(config).unwrap()).unwrap();
        if user.switch {
            std::os::unix::fs::lchown(&p, Some(user.uid), Some(user.gid)).unwrap();
        }
    };
    config["process"]["terminal"] = json!(false);
    config["process"]["env"]
        .as_array_mut()
        .unwrap()
        .push(json!(format!("{TAG_VAR}={}", env.tag)));
    config["process"]["args"] = json!([
        "sh",
        "-c",
        "echo ID $(id -u) $(id -g); echo UIDMAP $(cat /proc/self/uid_map); \
         echo SETGROUPS $(cat /proc/self/setgroups); echo x > /dev/null && echo DEVNULL; \
         ls /sys/kernel > /dev/null && echo SYS; echo OWNER $(stat -c %u /bin/busybox)"
    ]);
    write(&config);

    // run (foreground) as the user, with the default --root.
    let id = env.id("rl");
    let b = bundle.to_str().unwrap();
    let out = run_as(&user, &env, &xdg, &["run", &id, "--bundle", b]);
    out.assert_ok();
    for want in [
        "ID 0 0".to_string(),
        format!("UIDMAP 0 {} 1", user.uid),
        "SETGROUPS deny".to_string(),
        "DEVNULL".to_string(),
        "SYS".to_string(),
        "OWNER 0".to_string(),
    ] {
        assert!(out.stdout.contains(&want), "no {want:?}: {out}");
    }
    assert!(
        state_root.is_dir(),
        "state did not go under $XDG_RUNTIME_DIR"
    );
    assert_nothing_left_rootless(&env, &state_root, &id, &bundle);

    // Detached: state, list (OWNER is the user), kill, delete — all under the default root.
    config["process"]["args"] = json!(["sleep", "1000"]);
    write(&config);
    let id = env.id("rld");
    run_as(&user, &env, &xdg, &["run", "-d", &id, "--bundle", b]).assert_ok();
    assert!(state_root.join(&id).is_dir());
    let st = run_as(&user, &env, &xdg, &["state", &id]);
    st.assert_ok();
    assert_eq!(st.json()["status"], "running", "{st}");
    let list = run_as(&user, &env, &xdg, &["list"]);
    list.assert_ok();
    let line = list
        .stdout
        .lines()
        .find(|l| l.starts_with(&id))
        .unwrap_or_else(|| panic!("{id} not listed: {list}"));
    assert!(line.trim_end().ends_with(&user.name), "{list}");
    // exec as the user: it must join the container's user namespace before its pid
    // namespace (joining pid from outside needs root).
    let ex = run_as(
        &user,
        &env,
        &xdg,
        &["exec", &id, "sh", "-c", "id -u; echo $$"],
    );
    ex.assert_ok();
    let lines: Vec<&str> = ex.stdout.lines().collect();
    assert_eq!(lines.first().copied(), Some("0"), "{ex}");
    assert_ne!(lines.get(1).copied(), Some("1"), "{ex}");
    run_as(&user, &env, &xdg, &["delete", "--force", &id]).assert_ok();
    assert_nothing_left_rootless(&env, &state_root, &id, &bundle);

    // Resources need a cgroup the user can't create: a clear error naming them.
    let cgroup_writable = nix::unistd::access("/sys/fs/cgroup", nix::unistd::AccessFlags::W_OK)
        .is_ok()
        && !user.switch;
    if !cgroup_writable {
        let mut c = config.clone();
        c["process"]["args"] = json!(["true"]);
        c["linux"]["resources"] = json!({"memory": {"limit": 67108864}});
        write(&c);
        let id = env.id("rlres");
        run_as(&user, &env, &xdg, &["run", &id, "--bundle", b]).assert_clear_error(&[
            "without root",
            "linux.resources.memory",
            "cgroup",
        ]);
        assert_nothing_left_rootless(&env, &state_root, &id, &bundle);
    }

    // More than our own id: newuidmap/newgidmap with the user's sub-ids, or a clear error.
    let Some((sub_start, sub_count)) = subuid_range(&user) else {
        eprintln!(
            "skipped the sub-id part: /etc/subuid has no range for {}",
            user.name
        );
        return;
    };
    let subgid_ok = fs::read_to_string("/etc/subgid")
        .unwrap_or_default()
        .lines()
        .any(|l| l.starts_with(&format!("{}:{sub_start}:", user.name)));
    // hostID past the user's range: refused before anything is made.
    let mut c = config.clone();
    c["process"]["args"] = json!(["true"]);
    c["linux"]["uidMappings"] = json!([
        {"containerID": 0, "hostID": user.uid, "size": 1},
        {"containerID": 1, "hostID": sub_start + sub_count, "size": 10}
    ]);
    write(&c);
    let id = env.id("rlbad");
    let out = run_as(&user, &env, &xdg, &["run", &id, "--bundle", b]);
    if Path::new("/usr/bin/newuidmap").exists() {
        out.assert_clear_error(&["uidMappings", "not ours to map", "/etc/subuid"]);
    } else {
        out.assert_clear_error(&["uidMappings", "newuidmap"]);
    }
    assert_nothing_left_rootless(&env, &state_root, &id, &bundle);

    if !Path::new("/usr/bin/newuidmap").exists() || !subgid_ok {
        eprintln!("skipped the newuidmap part: uidmap not installed or no /etc/subgid range");
        return;
    }
    let maps = json!([
        {"containerID": 0, "hostID": user.uid, "size": 1},
        {"containerID": 1, "hostID": sub_start, "size": 1000}
    ]);
    let mut gmaps = maps.clone();
    gmaps[0]["hostID"] = json!(user.gid);
    c["linux"]["uidMappings"] = maps;
    c["linux"]["gidMappings"] = gmaps;
    c["process"]["args"] = json!(["sh", "-c", "cat /proc/self/uid_map /proc/self/gid_map"]);
    write(&c);
    let id = env.id("rlmulti");
    let out = run_as(&user, &env, &xdg, &["run", &id, "--bundle", b]);
    out.assert_ok();
    let lines: Vec<Vec<&str>> = out
        .stdout
        .lines()
        .map(|l| l.split_whitespace().collect())
        .collect();
    let (uid, gid, start) = (
        user.uid.to_string(),
        user.gid.to_string(),
        sub_start.to_string(),
    );
    assert_eq!(
        lines,
        vec![
            vec!["0", uid.as_str(), "1"],
            vec!["1", start.as_str(), "1000"],
            vec!["0", gid.as_str(), "1"],
            vec!["1", start.as_str(), "1000"],
        ],
        "{out}"
    );
    assert_nothing_left_rootless(&env, &state_root, &id, &bundle);
}

#[test]
fn default_root_follows_xdg_runtime_dir_only_without_root() {
    // As root the default stays /run/berth-runtime whatever XDG_RUNTIME_DIR says.
    if !is_root() {
        eprintln!("skipped: checks root's default");
        return;
    }
    let out = Command::new(BIN)
        .arg("--help")
        .env("XDG_RUNTIME_DIR", "/nonexistent-xdg")
        .output()
        .unwrap();
    let help = String::from_utf8_lossy(&out.stdout);
    assert!(help.contains("/run/berth-runtime"), "{help}");
    assert!(!help.contains("/nonexistent-xdg"), "{help}");
}
