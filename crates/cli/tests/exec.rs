//! `exec`: a new process in a running container joins its namespaces and cgroup, sees its
//! rootfs, gets the process config (capabilities, rlimits, seccomp) with the command-line
//! overrides, and its exit code is ours unless detached. Bad input fails clearly and leaves
//! nothing behind.

mod common;

use common::*;
use serde_json::json;
use std::fs;
use std::os::fd::{AsFd, OwnedFd};
use std::time::Duration;

/// Starts a detached container running `sleep 1000`; returns its id and init pid.
fn sleeper(env: &Env, b: &Bundle) -> (String, i32) {
    let id = env.id("ex");
    env.rt(&["run", "-d", "--bundle", b.path(), &id])
        .assert_ok();
    let st = env.state(&id);
    assert_eq!(st["status"], "running", "{st}");
    (id, st["pid"].as_i64().expect("pid") as i32)
}

fn sleep_bundle(env: &Env) -> Bundle {
    env.bundle(&["sleep", "1000"])
}

fn exec_sh(env: &Env, id: &str, script: &str) -> Out {
    env.rt(&["exec", id, "sh", "-c", script])
}

fn read_pid_file(p: &std::path::Path) -> i32 {
    fs::read_to_string(p)
        .unwrap_or_else(|e| panic!("pid file {}: {e}", p.display()))
        .trim()
        .parse()
        .expect("pid file holds a pid")
}

/// Processes in the container's cgroup besides the init (an exec left behind).
fn extra_in_cgroup(id: &str, init: i32) -> Vec<i32> {
    pids_in_cgroup_of(id)
        .into_iter()
        .filter(|p| *p != init && !is_zombie(*p))
        .collect()
}

/// Runs `exec -d --pid-file` of `sleep 1000` and checks every namespace and the cgroup of
/// the new process against the init's.
fn assert_exec_joins(env: &Env, id: &str, init: i32, kinds: &[&str]) -> i32 {
    let pid_file = env.path(&format!("exec-{id}.pid"));
    let out = env.rt(&[
        "exec",
        "-d",
        "--pid-file",
        pid_file.to_str().unwrap(),
        id,
        "sleep",
        "1000",
    ]);
    out.assert_ok();
    let pid = read_pid_file(&pid_file);
    assert_ne!(pid, init);
    let cmd = wait_for(Duration::from_secs(5), || {
        let c = cmdline(pid);
        c.starts_with("sleep").then_some(c)
    });
    assert!(
        cmd.is_some(),
        "pid-file pid {pid} is not the exec'd sleep: {:?}",
        cmdline(pid)
    );
    for k in kinds {
        let want = proc_ns(init, k);
        assert!(!want.is_empty(), "init has no {k} namespace link");
        assert_eq!(
            proc_ns(pid, k),
            want,
            "exec'd process is not in the {k} namespace"
        );
    }
    let cg = |p: i32| fs::read_to_string(format!("/proc/{p}/cgroup")).unwrap();
    assert_eq!(
        cg(pid),
        cg(init),
        "exec'd process is not in the init's cgroups"
    );
    assert!(
        pids_in_cgroup_of(id).contains(&pid),
        "cgroup.procs lacks the exec'd pid"
    );
    std::thread::sleep(Duration::from_millis(300));
    assert!(!is_zombie(pid), "the detached exec'd process {pid} died");
    pid
}

#[test]
fn exec_joins_every_namespace_and_the_cgroup() {
    let env = Env::new("exjoin");
    let mut b = sleep_bundle(&env);
    b.set_namespace("cgroup", None);
    fs::write(b.rootfs().join("only-in-rootfs"), "rootfs-marker\n").unwrap();
    let (id, init) = sleeper(&env, &b);
    assert_exec_joins(
        &env,
        &id,
        init,
        &["mnt", "net", "pid", "ipc", "uts", "cgroup"],
    );
    // The rootfs, and the pid namespace seen from inside (the init is 1).
    let out = exec_sh(
        &env,
        &id,
        "cat /only-in-rootfs; cat /proc/1/cmdline | tr '\\0' ' '",
    );
    out.assert_ok();
    assert!(out.stdout.contains("rootfs-marker"), "{out}");
    assert!(
        out.stdout.contains("sleep 1000"),
        "pid 1 is not the init: {out}"
    );
}

#[test]
fn exec_joins_the_user_namespace() {
    let env = Env::new("exuser");
    let mut b = sleep_bundle(&env);
    b.set_namespace("user", None);
    b.edit(|c| {
        c["linux"]["uidMappings"] = json!([{"containerID": 0, "hostID": 100000, "size": 65536}]);
        c["linux"]["gidMappings"] = json!([{"containerID": 0, "hostID": 100000, "size": 65536}]);
    });
    let (id, init) = sleeper(&env, &b);
    assert_ne!(proc_ns(init, "user"), host_ns("user"));
    let pid = assert_exec_joins(
        &env,
        &id,
        init,
        &["user", "mnt", "net", "pid", "ipc", "uts"],
    );
    let status = fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    // Container root is host uid 100000.
    assert_eq!(
        status_field(&status, "Uid")
            .unwrap()
            .split_whitespace()
            .next(),
        Some("100000"),
        "{status}"
    );
    let out = exec_sh(&env, &id, "id -u; cat /proc/self/uid_map");
    out.assert_ok();
    assert!(out.stdout.starts_with("0\n"), "{out}");
    assert!(out.stdout.contains("100000"), "{out}");
}

#[test]
fn exec_exit_code_is_ours_in_the_foreground() {
    let env = Env::new("excode");
    let b = sleep_bundle(&env);
    let (id, _) = sleeper(&env, &b);
    let out = exec_sh(&env, &id, "echo out; echo err >&2; exit 7");
    assert_eq!(out.code, Some(7), "{out}");
    assert_eq!(out.stdout, "out\n", "{out}");
    assert_eq!(out.stderr, "err\n", "{out}");
    let out = exec_sh(&env, &id, "kill -TERM $$");
    assert_eq!(out.code, Some(128 + 15), "signalled exec: {out}");
    // The container keeps running.
    assert_eq!(env.status(&id), "running");
}

#[test]
fn exec_detached_returns_at_once_with_the_host_pid() {
    let env = Env::new("exdetach");
    let b = sleep_bundle(&env);
    let (id, init) = sleeper(&env, &b);
    let pid_file = env.path("d.pid");
    let out = env.rt(&[
        "exec",
        "-d",
        "--pid-file",
        pid_file.to_str().unwrap(),
        &id,
        "sh",
        "-c",
        "sleep 30; exit 3",
    ]);
    out.assert_ok();
    assert!(
        out.elapsed < Duration::from_secs(10),
        "exec -d waited: {out}"
    );
    let pid = read_pid_file(&pid_file);
    // The detached process must outlive the `exec` that started it (a death signal left
    // set by the runtime would kill it as soon as `exec -d` exits).
    std::thread::sleep(Duration::from_millis(500));
    assert!(
        !is_zombie(pid),
        "pid {pid} of the pid file died after `exec -d` returned"
    );
    assert!(cmdline(pid).contains("sleep 30"), "{}", cmdline(pid));
    assert_eq!(proc_ns(pid, "pid"), proc_ns(init, "pid"));
    assert!(extra_in_cgroup(&id, init).contains(&pid));
}

#[test]
fn exec_env_cwd_user_and_additional_gids() {
    let env = Env::new("exenv");
    let mut b = sleep_bundle(&env);
    b.edit(|c| {
        c["process"]["env"]
            .as_array_mut()
            .unwrap()
            .push(json!("FOO=from-config"));
        c["process"]["env"]
            .as_array_mut()
            .unwrap()
            .push(json!("KEEP=kept"));
    });
    fs::create_dir_all(b.rootfs().join("work/dir")).unwrap();
    let (id, _) = sleeper(&env, &b);
    let out = env.rt(&[
        "exec",
        "--env",
        "FOO=overridden",
        "--env",
        "NEW=added",
        "--cwd",
        "/work/dir",
        &id,
        "sh",
        "-c",
        "echo FOO=$FOO KEEP=$KEEP NEW=$NEW; pwd; env | grep -c '^FOO='",
    ]);
    out.assert_ok();
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(lines[0], "FOO=overridden KEEP=kept NEW=added", "{out}");
    assert_eq!(lines[1], "/work/dir", "{out}");
    assert_eq!(lines[2], "1", "FOO is set twice: {out}");

    let out = env.rt(&[
        "exec",
        "--user",
        "1000:1000",
        "--additional-gids",
        "10",
        "--additional-gids",
        "20",
        &id,
        "sh",
        "-c",
        "id -u; id -g; id -G; grep Groups /proc/self/status",
    ]);
    out.assert_ok();
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(lines[0], "1000", "{out}");
    assert_eq!(lines[1], "1000", "{out}");
    let mut groups: Vec<&str> = lines[2].split_whitespace().collect();
    groups.sort();
    assert_eq!(groups, ["10", "1000", "20"], "{out}");
    let mut supp: Vec<&str> = lines[3]
        .trim_start_matches("Groups:")
        .split_whitespace()
        .collect();
    supp.sort();
    assert_eq!(supp, ["10", "20"], "{out}");
}

#[test]
fn exec_with_a_process_json() {
    let env = Env::new("exproc");
    let b = sleep_bundle(&env);
    let (id, _) = sleeper(&env, &b);
    let p = env.path("process.json");
    fs::write(
        &p,
        serde_json::to_vec(&json!({
            "terminal": false,
            "user": {"uid": 1000, "gid": 1000},
            "args": ["sh", "-c", "echo $WHO; pwd; id -u; exit 4"],
            "env": ["PATH=/bin:/usr/bin", "WHO=process-json", format!("{TAG_VAR}={}", env.tag)],
            "cwd": "/tmp",
            "noNewPrivileges": true
        }))
        .unwrap(),
    )
    .unwrap();
    let out = env.rt(&["exec", "--process", p.to_str().unwrap(), &id]);
    assert_eq!(out.code, Some(4), "{out}");
    assert_eq!(out.stdout, "process-json\n/tmp\n1000\n", "{out}");
}

fn caps(text: &str) -> (u64, u64, u64) {
    let get = |k: &str| {
        u64::from_str_radix(
            &status_field(text, k).unwrap_or_else(|| panic!("no {k} in {text}")),
            16,
        )
        .unwrap()
    };
    (get("CapBnd"), get("CapEff"), get("CapInh"))
}

#[test]
fn exec_gets_the_process_capabilities_and_cap_adds_one() {
    let env = Env::new("excaps");
    let mut b = sleep_bundle(&env);
    let set = ["CAP_CHOWN", "CAP_KILL", "CAP_NET_BIND_SERVICE"];
    b.edit(|c| {
        c["process"]["capabilities"] = json!({"bounding": set, "effective": set, "permitted": set});
    });
    let (id, _) = sleeper(&env, &b);
    let out = exec_sh(&env, &id, "grep Cap /proc/self/status");
    out.assert_ok();
    let (bnd, eff, inh) = caps(&out.stdout);
    assert_eq!(bnd, cap_mask(&set), "CapBnd: {out}");
    assert_eq!(eff, cap_mask(&set), "CapEff: {out}");
    assert_eq!(inh, 0, "CapInh: {out}");

    let out = env.rt(&[
        "exec",
        "--cap",
        "CAP_NET_ADMIN",
        &id,
        "grep",
        "Cap",
        "/proc/self/status",
    ]);
    out.assert_ok();
    let (bnd, eff, inh) = caps(&out.stdout);
    let want = cap_mask(&set) | cap_mask(&["CAP_NET_ADMIN"]);
    assert_eq!(bnd, want, "CapBnd with --cap: {out}");
    assert_eq!(eff, want, "CapEff with --cap: {out}");
    // CVE-2022-29162: --cap must not put anything in the inheritable set.
    assert_eq!(inh, 0, "CapInh with --cap: {out}");

    env.rt(&["exec", "--cap", "CAP_NO_SUCH_THING", &id, "true"])
        .assert_clear_error(&["CAP_NO_SUCH_THING"]);
}

#[test]
fn exec_no_new_privs_and_rlimits() {
    let env = Env::new("exnnp");
    let mut b = sleep_bundle(&env);
    b.edit(|c| {
        c["process"]["noNewPrivileges"] = json!(false);
        c["process"]["rlimits"] = json!([
            {"type": "RLIMIT_NOFILE", "soft": 1111, "hard": 2222},
            {"type": "RLIMIT_CORE", "soft": 0, "hard": 0}
        ]);
    });
    let (id, _) = sleeper(&env, &b);
    let out = exec_sh(&env, &id, "grep NoNewPrivs /proc/self/status");
    out.assert_ok();
    assert_eq!(out.stdout.trim(), "NoNewPrivs:\t0", "{out}");
    let out = env.rt(&[
        "exec",
        "--no-new-privs",
        &id,
        "grep",
        "NoNewPrivs",
        "/proc/self/status",
    ]);
    out.assert_ok();
    assert_eq!(out.stdout.trim(), "NoNewPrivs:\t1", "{out}");

    let out = exec_sh(
        &env,
        &id,
        "grep -E 'open files|core file' /proc/self/limits",
    );
    out.assert_ok();
    let nofile = out
        .stdout
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .unwrap_or_else(|| panic!("{out}"));
    let f: Vec<&str> = nofile.split_whitespace().collect();
    assert_eq!(&f[3..5], ["1111", "2222"], "{out}");
    let core = out
        .stdout
        .lines()
        .find(|l| l.starts_with("Max core file size"))
        .unwrap_or_else(|| panic!("{out}"));
    let f: Vec<&str> = core.split_whitespace().collect();
    assert_eq!(&f[4..6], ["0", "0"], "{out}");
}

#[test]
fn exec_gets_the_containers_seccomp_filter() {
    let env = Env::new("exsecc");
    let mut b = sleep_bundle(&env);
    b.edit(|c| {
        c["root"]["readonly"] = json!(false);
        c["linux"]["seccomp"] = json!({
            "defaultAction": "SCMP_ACT_ALLOW",
            "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 122}]
        });
    });
    let (id, _) = sleeper(&env, &b);
    let out = exec_sh(&env, &id, "grep Seccomp: /proc/self/status; mkdir /tmp/x");
    assert_ne!(out.code, Some(0), "mkdir was allowed in exec: {out}");
    assert!(out.stdout.contains("Seccomp:\t2"), "{out}");
    // EDQUOT's strerror.
    assert!(out.stderr.contains("quota"), "{out}");
    assert!(!b.rootfs().join("tmp/x").exists());
}

#[test]
fn exec_preserve_fds_passes_fd_3() {
    let env = Env::new("expfd");
    let b = sleep_bundle(&env);
    let (id, _) = sleeper(&env, &b);
    let target = env.path("fd3.txt");
    let f = fs::File::create(&target).unwrap();
    let out = env.rt_opts(
        &[
            "exec",
            "--preserve-fds",
            "1",
            &id,
            "sh",
            "-c",
            "echo through-fd3 >&3; ls /proc/self/fd | tr '\\n' ' '",
        ],
        Opts {
            extra_fds: vec![f.into()],
            ..Opts::default()
        },
    );
    out.assert_ok();
    assert_eq!(fs::read_to_string(&target).unwrap(), "through-fd3\n");
    // 0-2, the preserved 3, and ls's own directory fd (4).
    assert_eq!(out.stdout.trim(), "0 1 2 3 4", "{out}");

    // Without --preserve-fds it is closed before the program runs.
    let target2 = env.path("fd3b.txt");
    let f = fs::File::create(&target2).unwrap();
    let out = env.rt_opts(
        &["exec", &id, "sh", "-c", "echo leaked >&3"],
        Opts {
            extra_fds: vec![f.into()],
            ..Opts::default()
        },
    );
    assert_ne!(out.code, Some(0), "fd 3 leaked into exec: {out}");
    assert_eq!(fs::read_to_string(&target2).unwrap(), "");
}

#[test]
fn exec_tty_with_console_socket_detached() {
    let env = Env::new("exconsock");
    let b = sleep_bundle(&env);
    let (id, _) = sleeper(&env, &b);
    let mut sock = ConsoleSocket::listen(env.path("exec-console.sock"));
    let out = env.rt(&[
        "exec",
        "-t",
        "-d",
        "--console-socket",
        sock.path.to_str().unwrap(),
        &id,
        "sh",
        "-c",
        "tty; [ -t 0 ] && [ -t 1 ] && echo STDIO-TTY; read x; echo got:$x",
    ]);
    out.assert_ok();
    let master = sock.master(Duration::from_secs(10));
    let text = read_pty_until(&master, "STDIO-TTY", Duration::from_secs(10));
    assert!(text.contains("/dev/pts/"), "{text:?}");
    assert!(text.contains("STDIO-TTY"), "{text:?}");
    nix::unistd::write(&master, b"typed\n").unwrap();
    let text = read_pty_until(&master, "got:typed", Duration::from_secs(10));
    assert!(text.contains("got:typed"), "{text:?}");
}

fn openpty() -> (OwnedFd, OwnedFd) {
    let ws = nix::pty::Winsize {
        ws_row: 27,
        ws_col: 91,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    let p = nix::pty::openpty(Some(&ws), None).expect("openpty");
    (p.master, p.slave)
}

#[test]
fn exec_tty_in_the_foreground_relays_a_pty() {
    let env = Env::new("exfgtty");
    let b = sleep_bundle(&env);
    let (id, _) = sleeper(&env, &b);
    let (master, slave) = openpty();
    let mut child = env
        .command(&["exec", "-t", &id])
        .args([
            "sh",
            "-c",
            "stty size; [ -t 0 ] && echo IN-TTY; read x; echo got:$x; exit 6",
        ])
        .stdin(slave.try_clone().unwrap())
        .stdout(slave.try_clone().unwrap())
        .stderr(slave.try_clone().unwrap())
        .spawn()
        .unwrap();
    let text = read_pty_until(&master, "IN-TTY", Duration::from_secs(15));
    assert!(text.contains("27 91"), "window size not copied: {text:?}");
    assert!(text.contains("IN-TTY"), "{text:?}");
    nix::unistd::write(master.as_fd(), b"typed\r").unwrap();
    let text = read_pty_until(&master, "got:typed", Duration::from_secs(10));
    assert!(text.contains("got:typed"), "input not relayed: {text:?}");
    let (st, timed_out) = wait_timeout(&mut child, Duration::from_secs(15));
    assert!(!timed_out, "exec -t did not return");
    assert_eq!(st.and_then(|s| s.code()), Some(6));
}

#[test]
fn exec_into_an_unknown_id() {
    let env = Env::new("exunknown");
    let id = env.id("nosuch");
    env.rt(&["exec", &id, "true"])
        .assert_clear_error(&["does not exist"]);
    assert!(!env.root.join(&id).exists(), "exec created a state dir");
    assert!(tagged_pids(&env.tag).is_empty());
}

#[test]
fn exec_into_a_stopped_container() {
    let env = Env::new("exstopped");
    let b = env.bundle(&["true"]);
    let id = env.id("stopped");
    env.rt(&["run", "-d", "--bundle", b.path(), &id])
        .assert_ok();
    let stopped = wait_for(Duration::from_secs(10), || {
        (env.status(&id) == "stopped").then_some(())
    });
    assert!(stopped.is_some());
    env.rt(&["exec", &id, "true"])
        .assert_clear_error(&["stopped"]);
    assert_eq!(env.status(&id), "stopped");
    assert!(
        tagged_pids(&env.tag).is_empty(),
        "processes left: {:?}",
        tagged_pids(&env.tag)
    );
    env.rt(&["delete", &id]).assert_ok();
    env.assert_nothing_left(&id, &b);
}

#[test]
fn exec_of_a_missing_program() {
    let env = Env::new("exmissing");
    let b = sleep_bundle(&env);
    let (id, init) = sleeper(&env, &b);
    env.rt(&["exec", &id, "no-such-program"])
        .assert_clear_error(&["no-such-program"]);
    env.rt(&["exec", &id, "/bin/nope/absolute"])
        .assert_clear_error(&["/bin/nope/absolute"]);
    let left = wait_for(Duration::from_secs(5), || {
        extra_in_cgroup(&id, init).is_empty().then_some(())
    });
    assert!(
        left.is_some(),
        "exec left processes in the container: {:?}",
        extra_in_cgroup(&id, init)
    );
    let tagged: Vec<i32> = tagged_pids(&env.tag)
        .into_iter()
        .filter(|p| *p != init)
        .collect();
    assert!(tagged.is_empty(), "processes left: {tagged:?}");
    assert_eq!(env.status(&id), "running");
    // No argument at all.
    env.rt(&["exec", &id]).assert_clear_error(&[]);
}
