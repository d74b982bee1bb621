//! `berth` container commands end to end, as root, on a busybox image imported into a
//! private `--root` per test (and a private `--runroot`), so tests run in parallel.
//! Every test's [`Env`] removes its containers, mounts and directories when dropped, also
//! when the test fails.

use std::fs;
use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

mod berth_env;
use berth_env::{busybox_tar, is_root, wait_output, Env, Res, Suite, BERTH};

const RUNC: &str = "/usr/sbin/runc";
/// These tests run in the host's network namespace: no default bridge made there
/// (berth_networks.rs tests networks in namespaces of its own).
static SUITE: Suite = Suite {
    prefix: "ct",
    default_network: Some("none"),
    private_netns: false,
};

impl Env {
    /// `berth ARGS` on a real terminal of 27 rows and 91 columns (script(1) makes the
    /// pty), `input` typed into it.
    fn in_pty(&self, args: &str, input: &[u8]) -> Res {
        let line = format!(
            "stty rows 27 cols 91; {BERTH} --root {} --runroot {} {args}",
            self.root.display(),
            self.run_root.display()
        );
        let mut child = Command::new("script")
            .args(["-qec", &line, "/dev/null"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("script");
        child
            .stdin
            .as_mut()
            .expect("stdin")
            .write_all(input)
            .expect("write");
        wait_output(child, Duration::from_secs(30), &["script", args])
    }

    /// Nothing of container `id` left on the host.
    #[track_caller]
    fn assert_gone(&self, id: &str) {
        assert!(!self.ids().contains(&id.to_string()), "record of {id} left");
        assert!(
            !self.root.join("containers").join(id).exists(),
            "files of {id} left"
        );
        assert!(
            !self.run_root.join("containers").join(id).exists(),
            "run dir of {id} left"
        );
        assert!(
            !self.run_root.join("runtime").join(id).exists(),
            "runtime state of {id} left"
        );
        for m in self.mounts() {
            assert!(!m.contains(id), "mount {m} left");
        }
        for h in ["pids", "memory", "cpu", "freezer", "unified"] {
            let p = Path::new("/sys/fs/cgroup").join(h).join("berth").join(id);
            assert!(!p.exists(), "cgroup {} left", p.display());
        }
    }
}

/// Poll `f` for up to 10 s (tests only: the engine itself never polls).
fn eventually(what: &str, f: impl Fn() -> bool) {
    let start = Instant::now();
    while !f() {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "timed out: {what}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn ppid(pid: i32) -> Option<i32> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after = &stat[stat.rfind(')')? + 2..];
    after.split(' ').nth(1)?.parse().ok()
}

fn cmdline(pid: i32) -> String {
    fs::read(format!("/proc/{pid}/cmdline"))
        .map(|b| {
            String::from_utf8_lossy(&b)
                .replace('\0', " ")
                .trim()
                .to_string()
        })
        .unwrap_or_default()
}

macro_rules! need_root {
    () => {
        if !is_root() {
            eprintln!("skipped: needs root");
            return;
        }
    };
}

#[test]
fn run_foreground_exit_codes_and_streams() {
    need_root!();
    let env = Env::new(&SUITE, "fg");
    let r = env.run(&[
        "run",
        "--rm",
        "bb",
        "sh",
        "-c",
        "echo out; echo err >&2; exit 3",
    ]);
    assert_eq!(r.code, Some(3), "{}", r.stderr);
    assert_eq!(r.stdout, "out\n");
    assert_eq!(r.stderr, "err\n");
    assert_eq!(env.run(&["run", "--rm", "bb", "true"]).code, Some(0));
    // -i: our stdin reaches the container.
    let mut child = env
        .cmd(&["run", "--rm", "-i", "bb", "sh", "-c", "read x; echo got:$x"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(b"hello\n")
        .expect("write");
    let r = wait_output(child, Duration::from_secs(30), &["run -i"]);
    assert_eq!(r.ok(), "got:hello\n");
    assert!(env.ids().is_empty(), "--rm left a record");
    assert!(env.mounts().is_empty(), "mounts left: {:?}", env.mounts());
}

#[test]
fn detached_container_survives_the_cli() {
    need_root!();
    let env = Env::new(&SUITE, "detach");
    let id = env
        .ok(&[
            "run",
            "-d",
            "--name",
            "sleeper",
            "bb",
            "sh",
            "-c",
            "echo ready; exec sleep 1000",
        ])
        .trim()
        .to_string();
    assert_eq!(id.len(), 64, "{id}");
    // The CLI has exited; the container runs on, its monitor its parent.
    let ps = env.ok(&["ps"]);
    assert!(ps.contains("sleeper") && ps.contains("Up "), "{ps}");
    let st = env.inspect("sleeper");
    assert_eq!(st["State"]["Status"], "running");
    assert_eq!(st["Id"], id.as_str());
    let pid = st["State"]["Pid"].as_i64().expect("pid") as i32;
    assert!(pid > 0);
    eventually("sleep exec'd", || cmdline(pid) == "sleep 1000");
    let monitor = ppid(pid).expect("ppid");
    assert!(
        cmdline(monitor).contains("container-monitor"),
        "{}",
        cmdline(monitor)
    );
    // top: host pids, as /proc has them.
    let top = env.ok(&["top", "sleeper"]);
    let mut lines = top.lines();
    let head: Vec<&str> = lines.next().expect("header").split_whitespace().collect();
    let pid_col = head.iter().position(|h| *h == "PID").expect("PID column");
    let pids: Vec<i32> = lines
        .map(|l| {
            l.split_whitespace()
                .nth(pid_col)
                .expect("pid")
                .parse()
                .expect("int")
        })
        .collect();
    assert_eq!(pids, vec![pid], "{top}");
    for p in &pids {
        assert!(Path::new(&format!("/proc/{p}")).exists());
    }
    // logs
    eventually("log written", || env.ok(&["logs", "sleeper"]) == "ready\n");
    // stats: real cgroup numbers.
    let stats = env.ok(&["stats", "--no-stream", "sleeper"]);
    let row = stats.lines().nth(1).expect("stats row");
    let cols: Vec<&str> = row.split_whitespace().collect();
    assert_eq!(cols[0], &id[..12], "{stats}");
    assert_eq!(cols.last(), Some(&"1"), "pids column: {stats}");
    assert!(
        !row.contains(" 0B /"),
        "memory usage should be > 0: {stats}"
    );
    // stop: pid 1 without a TERM handler ignores SIGTERM, so SIGKILL after the timeout.
    let t = Instant::now();
    env.ok(&["stop", "-t", "1", "sleeper"]);
    assert!(t.elapsed() >= Duration::from_millis(900));
    let st = env.inspect("sleeper");
    assert_eq!(st["State"]["Status"], "exited");
    assert_eq!(st["State"]["ExitCode"], 137);
    assert_ne!(st["State"]["FinishedAt"], "0001-01-01T00:00:00Z");
    assert!(!Path::new(&format!("/proc/{pid}")).exists() || cmdline(pid) != "sleep 1000");
    assert!(env.mounts().is_empty(), "stopped container still mounted");
    env.ok(&["rm", "sleeper"]);
    env.assert_gone(&id);
}

#[test]
fn logs_follow_tail_timestamps() {
    need_root!();
    let env = Env::new(&SUITE, "logs");
    env.ok(&[
        "run",
        "-d",
        "--name",
        "talker",
        "bb",
        "sh",
        "-c",
        "echo one; echo two >&2; sleep 1; echo three; sleep 1; echo four",
    ]);
    let mut follow = env
        .cmd(&["logs", "-f", "talker"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("logs -f");
    let mut out = BufReader::new(follow.stdout.take().expect("stdout"));
    let mut line = String::new();
    let start = Instant::now();
    let mut got = Vec::new();
    while out.read_line(&mut line).expect("read") > 0 {
        got.push((line.trim().to_string(), start.elapsed()));
        line.clear();
    }
    let st = follow.wait().expect("wait");
    assert!(st.success());
    let names: Vec<&str> = got.iter().map(|(l, _)| l.as_str()).collect();
    assert_eq!(names, ["one", "three", "four"]);
    // Followed: "four" came a while after "one" (it wasn't all read at the end).
    assert!(got[2].1 > got[0].1 + Duration::from_millis(500), "{got:?}");
    let r = env.run(&["logs", "talker"]);
    assert_eq!(r.stdout, "one\nthree\nfour\n");
    assert_eq!(r.stderr, "two\n");
    assert_eq!(env.ok(&["logs", "--tail", "1", "talker"]), "four\n");
    let ts = env.ok(&["logs", "-t", "talker"]);
    // --until the time "three" was logged: only what came before it.
    let three = ts
        .lines()
        .find_map(|l| l.strip_suffix(" three"))
        .expect("three's time");
    let r = env.run(&["logs", "--until", three, "talker"]);
    assert_eq!(
        (r.stdout.as_str(), r.code),
        ("one\n", Some(0)),
        "{}",
        r.stderr
    );
    assert_eq!(r.stderr, "two\n");
    assert_eq!(env.ok(&["logs", "--until", "1", "talker"]), "");
    let first = ts.lines().next().expect("line");
    assert!(
        first.ends_with("Z one") && first.starts_with("20"),
        "{first}"
    );
    assert_eq!(env.ok(&["wait", "talker"]).trim(), "0");
}

#[test]
fn interactive_terminal_through_a_pty() {
    need_root!();
    if Command::new("script").arg("--version").output().is_err() {
        eprintln!("skipped: no script(1)");
        return;
    }
    let env = Env::new(&SUITE, "tty");
    let r = env.in_pty(
        "--default-network none run --rm -it bb sh",
        b"tty; echo in-shell-$((6*7))\nexit 7\n",
    );
    assert_eq!(r.code, Some(7), "{}\n{}", r.stdout, r.stderr);
    assert!(r.stdout.contains("in-shell-42"), "{}", r.stdout);
    assert!(r.stdout.contains("/dev/pts/"), "{}", r.stdout);
    assert!(env.ids().is_empty());
    // The program sees the terminal's size from its first instruction (not only after
    // the front-end's resize reaches the monitor).
    let r = env.in_pty("--default-network none run --rm -it bb stty size", b"");
    assert_eq!(r.code, Some(0), "{}\n{}", r.stdout, r.stderr);
    assert!(r.stdout.contains("27 91"), "{:?}", r.stdout);

    // exec -it into a running container, through a pty too.
    env.ok(&["run", "-d", "--name", "tt", "bb", "sleep", "1000"]);
    let r = env.in_pty("exec -it tt sh", b"tty; echo exec-$((6*7))\nexit 5\n");
    assert_eq!(r.code, Some(5), "{}\n{}", r.stdout, r.stderr);
    assert!(r.stdout.contains("exec-42"), "{}", r.stdout);
    assert!(r.stdout.contains("/dev/pts/"), "{}", r.stdout);
    // -t without -i: the runtime has no terminal on stdin, the size comes from stdout.
    let r = env.in_pty("exec -t tt stty size", b"");
    assert!(r.stdout.contains("27 91"), "{:?}", r.stdout);
}

#[test]
fn runc_as_the_runtime() {
    need_root!();
    if !Path::new(RUNC).exists() {
        eprintln!("skipped: no {RUNC}");
        return;
    }
    let env = Env::new(&SUITE, "runc");
    let r = env.run(&[
        "run",
        "--rm",
        "--runtime",
        RUNC,
        "bb",
        "sh",
        "-c",
        "echo via-runc; exit 4",
    ]);
    assert_eq!(r.code, Some(4), "{}", r.stderr);
    assert_eq!(r.stdout, "via-runc\n");
    let id = env
        .ok(&["run", "-d", "--runtime", RUNC, "bb", "sleep", "1000"])
        .trim()
        .to_string();
    let st = env.inspect(&id);
    assert_eq!(st["HostConfig"]["Runtime"], RUNC);
    let pid = st["State"]["Pid"].as_i64().expect("pid");
    let top = env.ok(&["top", &id]);
    assert!(top.contains(&pid.to_string()), "{top}");
    assert_eq!(env.ok(&["exec", &id, "echo", "exec-ok"]), "exec-ok\n");
    let r = env.run(&["run", "--rm", "--runtime", RUNC, "bb", "no-such-cmd"]);
    assert_eq!(r.code, Some(127), "{}", r.stderr);
    env.ok(&["rm", "-f", &id]);
    env.assert_gone(&id);
}

#[test]
fn bad_input_fails_cleanly() {
    need_root!();
    let env = Env::new(&SUITE, "bad");
    let r = env.run(&["run", "--rm", "no-such-image", "true"]);
    assert_eq!(r.code, Some(125));
    assert!(
        r.stderr.contains("no-such-image") && r.stderr.contains("no such image"),
        "{}",
        r.stderr
    );

    let id = env
        .ok(&["create", "--name", "taken", "bb", "true"])
        .trim()
        .to_string();
    let r = env.run(&["run", "--name", "taken", "bb", "true"]);
    assert_eq!(r.code, Some(125));
    assert!(r.stderr.contains("is already in use"), "{}", r.stderr);

    let r = env.run(&["run", "--rm", "-v", "relative:path:x", "bb", "true"]);
    assert_eq!(r.code, Some(125));
    assert!(
        r.stderr.contains("invalid volume specification"),
        "{}",
        r.stderr
    );
    let r = env.run(&["run", "--rm", "-v", "/tmp:/x:zz", "bb", "true"]);
    assert_eq!(r.code, Some(125), "{}", r.stderr);

    let r = env.run(&["run", "bb", "no-such-command"]);
    assert_eq!(r.code, Some(127), "{}", r.stderr);
    assert!(r.stderr.contains("no-such-command"), "{}", r.stderr);
    let r = env.run(&["run", "bb", "/bin/not-exec"]);
    assert_eq!(r.code, Some(126), "{}", r.stderr);
    let r = env.run(&["run", "--network", "no-such-net", "bb", "true"]);
    assert_eq!(r.code, Some(125));
    assert!(r.stderr.contains("no-such-net"), "{}", r.stderr);
    let r = env.run(&["run", "--bogus-flag", "bb", "true"]);
    assert_eq!(r.code, Some(125), "{}", r.stderr);
    let r = env.run(&["run", "-u", "nobody-here", "bb", "true"]);
    assert_eq!(r.code, Some(125));
    assert!(r.stderr.contains("nobody-here"), "{}", r.stderr);

    for verb in [
        vec!["stop", "ghost"],
        vec!["rm", "ghost"],
        vec!["logs", "ghost"],
        vec!["top", "ghost"],
        vec!["start", "ghost"],
    ] {
        let r = env.run(&verb);
        assert_ne!(r.code, Some(0), "{verb:?}");
        assert!(
            r.stderr.contains("No such container: ghost"),
            "{verb:?}: {}",
            r.stderr
        );
    }
    let r = env.run(&["rm", "taken"]);
    assert_eq!(r.code, Some(0), "{}", r.stderr);
    // Nothing of the failed runs is left: no records, mounts, runtime state, cgroups.
    assert!(env.ids().is_empty(), "{:?}", env.ids());
    env.assert_gone(&id);
    assert!(env.mounts().is_empty());
    let rt: Vec<_> = fs::read_dir(env.run_root.join("runtime"))
        .map(|d| d.flatten().collect())
        .unwrap_or_default();
    assert!(rt.is_empty(), "runtime state left: {rt:?}");
    let dirs: Vec<_> = fs::read_dir(env.root.join("containers"))
        .map(|d| d.flatten().collect())
        .unwrap_or_default();
    assert!(dirs.is_empty(), "container dirs left: {dirs:?}");
}

#[test]
fn reboot_leaves_exited_containers_that_start_again() {
    need_root!();
    let env = Env::new(&SUITE, "reboot");
    let id = env
        .ok(&[
            "run",
            "-d",
            "--name",
            "survivor",
            "bb",
            "sh",
            "-c",
            "echo boot >> /count; exec sleep 1000",
        ])
        .trim()
        .to_string();
    // A --rm one: the reboot ends it, so it goes (as docker removes it at its restart).
    let ephemeral = env
        .ok(&[
            "run",
            "-d",
            "--rm",
            "--name",
            "ephemeral",
            "bb",
            "sleep",
            "1000",
        ])
        .trim()
        .to_string();
    // The reboot: every process gone, /run empty.
    for c in [&id, &ephemeral] {
        let pid = env.inspect(c)["State"]["Pid"].as_i64().expect("pid") as i32;
        let monitor = ppid(pid).expect("monitor");
        nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(monitor),
            nix::sys::signal::SIGKILL,
        )
        .expect("kill monitor");
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), nix::sys::signal::SIGKILL)
            .expect("kill init");
        eventually("init gone", || {
            !Path::new(&format!("/proc/{pid}")).exists()
                || ppid(pid) == Some(1) && cmdline(pid).is_empty()
        });
    }
    for m in env.mounts() {
        nix::mount::umount2(m.as_str(), nix::mount::MntFlags::MNT_DETACH).expect("umount");
    }
    // The runtime's cgroup went with the host; here it must go by hand.
    for h in [
        "pids",
        "memory",
        "cpu,cpuacct",
        "cpu",
        "cpuacct",
        "freezer",
        "cpuset",
        "devices",
        "blkio",
        "net_cls,net_prio",
        "perf_event",
        "hugetlb",
        "unified",
        "systemd",
        "rdma",
        "misc",
    ] {
        for c in [&id, &ephemeral] {
            let _ = fs::remove_dir(Path::new("/sys/fs/cgroup").join(h).join("berth").join(c));
        }
    }
    fs::remove_dir_all(&env.run_root).expect("clear run root");

    let ps = env.ok(&["ps", "-a"]);
    assert!(ps.contains("survivor") && ps.contains("Exited"), "{ps}");
    assert!(!ps.contains("ephemeral"), "{ps}");
    env.assert_gone(&ephemeral);
    assert_eq!(env.inspect(&id)["State"]["Status"], "exited");
    // It starts again on its own upper layer (the file written before the reboot is there).
    env.ok(&["start", "survivor"]);
    assert_eq!(env.inspect(&id)["State"]["Status"], "running");
    eventually("second boot logged", || {
        env.run(&["exec", "survivor", "cat", "/count"]).stdout == "boot\nboot\n"
    });
    env.ok(&["rm", "-f", "survivor"]);
    env.assert_gone(&id);
}

#[test]
fn lifecycle_verbs() {
    need_root!();
    let env = Env::new(&SUITE, "verbs");
    let id = env
        .ok(&[
            "create",
            "--name",
            "c1",
            "-e",
            "FOO=bar",
            "-w",
            "/tmp",
            "-h",
            "box",
            "bb",
            "sh",
            "-c",
            "trap 'exit 9' TERM; while true; do sleep 0.1; done",
        ])
        .trim()
        .to_string();
    assert!(env.ok(&["ps", "-a"]).contains("Created"));
    assert!(!env.ok(&["ps"]).contains("c1"));
    env.ok(&["start", "c1"]);
    assert_eq!(
        env.ok(&["exec", "c1", "sh", "-c", "echo $FOO $(pwd) $(hostname)"]),
        "bar /tmp box\n"
    );
    assert_eq!(
        env.ok(&[
            "exec",
            "-u",
            "app",
            "-w",
            "/home",
            "-e",
            "X=1",
            "c1",
            "sh",
            "-c",
            "echo $(id -u):$(id -g) $(pwd) $X"
        ]),
        "1000:1000 /home 1\n"
    );
    let r = env.run(&["exec", "c1", "sh", "-c", "exit 5"]);
    assert_eq!(r.code, Some(5));
    assert_eq!(env.run(&["exec", "c1", "nope"]).code, Some(127));

    env.ok(&["pause", "c1"]);
    assert_eq!(env.inspect("c1")["State"]["Status"], "paused");
    assert!(env.ok(&["ps"]).contains("(Paused)"));
    env.ok(&["unpause", "c1"]);
    assert_eq!(env.inspect("c1")["State"]["Status"], "running");

    let pid1 = env.inspect("c1")["State"]["Pid"].as_i64().expect("pid");
    env.ok(&["restart", "-t", "5", "c1"]);
    let st = env.inspect("c1");
    assert_eq!(st["State"]["Status"], "running");
    assert_ne!(st["State"]["Pid"].as_i64(), Some(pid1));
    assert_eq!(st["RestartCount"], 1);

    env.ok(&["rename", "c1", "c2"]);
    assert_eq!(env.inspect(&id)["Name"], "/c2");
    env.ok(&["create", "--name", "other", "bb", "true"]);
    let r = env.run(&["rename", "c2", "other"]);
    assert_ne!(r.code, Some(0));
    assert!(r.stderr.contains("already in use"), "{}", r.stderr);

    env.ok(&["kill", "-s", "TERM", "c2"]);
    assert_eq!(env.ok(&["wait", "c2"]).trim(), "9");
    assert_eq!(env.ok(&["port", "c2"]), "");
    let q = env.ok(&["ps", "-a", "--format", "{{.Names}} {{.State}}"]);
    assert!(
        q.contains("c2 exited") && q.contains("other created"),
        "{q}"
    );
    let pruned = env.ok(&["container", "prune", "-f"]);
    assert!(pruned.contains(&id), "{pruned}");
    assert!(env.ids().is_empty());
    env.assert_gone(&id);
}

#[test]
fn volumes_binds_and_tmpfs() {
    need_root!();
    let env = Env::new(&SUITE, "vol");
    let host = env.root.join("hostdir");
    fs::create_dir_all(&host).expect("hostdir");
    fs::write(host.join("in"), "from-host").expect("write");
    let hv = format!("{}:/h:ro", host.display());
    env.ok(&["volume", "create", "data"]);
    let out = env.ok(&[
        "run", "--rm", "-v", "data:/data", "-v", &hv, "--tmpfs", "/scratch", "--read-only", "bb", "sh", "-c",
        "echo kept > /data/f; cat /h/in; echo; touch /h/x 2>/dev/null || echo ro-ok; touch /x 2>/dev/null || echo rootfs-ro; touch /scratch/y && echo tmpfs-ok",
    ]);
    assert_eq!(out, "from-host\nro-ok\nrootfs-ro\ntmpfs-ok\n");
    assert_eq!(
        env.ok(&["run", "--rm", "-v", "data:/d", "bb", "cat", "/d/f"]),
        "kept\n"
    );
    let id = env
        .ok(&["create", "-v", "data:/d", "bb", "true"])
        .trim()
        .to_string();
    let r = env.run(&["volume", "rm", "data"]);
    assert_ne!(r.code, Some(0));
    assert!(r.stderr.contains("in use"), "{}", r.stderr);
    env.ok(&["rm", &id]);
    env.ok(&["volume", "rm", "data"]);
    assert!(!env.ok(&["volume", "ls", "-q"]).contains("data"));
}

#[test]
fn image_config_is_honoured() {
    need_root!();
    let env = Env::new(&SUITE, "imgcfg");
    // An image with a config: load an OCI layout whose config sets every field.
    let layout = env.root.join("layout");
    fs::create_dir_all(layout.join("blobs/sha256")).expect("layout");
    let put = |data: &[u8]| -> (String, usize) {
        use sha2_hex::hex_sha256;
        let h = hex_sha256(data);
        fs::write(layout.join("blobs/sha256").join(&h), data).expect("blob");
        (h, data.len())
    };
    let layer = fs::read(busybox_tar()).expect("tar");
    let (lh, ls) = put(&layer);
    let config = serde_json::json!({
        "architecture": "amd64", "os": "linux",
        "config": {
            "Entrypoint": ["/bin/sh", "-c"],
            "Cmd": ["echo $GREETING from $(pwd) as $(id -un)"],
            "Env": ["PATH=/usr/bin:/bin", "GREETING=hi"],
            "WorkingDir": "/home/app",
            "User": "app",
            "StopSignal": "SIGUSR1",
            "Volumes": {"/vol": {}},
            "ExposedPorts": {"80/tcp": {}}
        },
        "rootfs": {"type": "layers", "diff_ids": [format!("sha256:{lh}")]}
    });
    let (ch, cs) = put(config.to_string().as_bytes());
    let manifest = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": format!("sha256:{ch}"), "size": cs},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": format!("sha256:{lh}"), "size": ls}]
    });
    let (mh, ms) = put(manifest.to_string().as_bytes());
    fs::write(
        layout.join("oci-layout"),
        r#"{"imageLayoutVersion":"1.0.0"}"#,
    )
    .expect("oci-layout");
    let index = serde_json::json!({
        "schemaVersion": 2,
        "manifests": [{"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": format!("sha256:{mh}"), "size": ms,
            "annotations": {"io.containerd.image.name": "docker.io/library/cfg:latest", "org.opencontainers.image.ref.name": "latest"}}]
    });
    fs::write(layout.join("index.json"), index.to_string()).expect("index");
    env.ok(&["load", "-i", layout.to_str().expect("utf8")]);

    assert_eq!(
        env.ok(&["run", "--rm", "cfg"]),
        "hi from /home/app as app\n"
    );
    // Arguments replace Cmd, keep the Entrypoint; -e overrides Env; -u and -w override.
    assert_eq!(
        env.ok(&[
            "run",
            "--rm",
            "-e",
            "GREETING=yo",
            "-u",
            "root",
            "-w",
            "/",
            "cfg",
            "echo $GREETING $(pwd) $(id -u)"
        ]),
        "yo / 0\n"
    );
    // --entrypoint replaces the entrypoint and drops Cmd.
    assert_eq!(
        env.ok(&["run", "--rm", "--entrypoint", "/bin/echo", "cfg", "plain"]),
        "plain\n"
    );
    let id = env.ok(&["create", "cfg"]).trim().to_string();
    let st = env.inspect(&id);
    assert_eq!(st["Config"]["StopSignal"], "SIGUSR1");
    assert_eq!(st["Config"]["User"], "app");
    assert!(st["Config"]["ExposedPorts"]["80/tcp"].is_object(), "{st}");
    let mounts = st["Mounts"].as_array().expect("mounts");
    assert!(
        mounts
            .iter()
            .any(|m| m["Destination"] == "/vol" && m["Type"] == "volume"),
        "{st}"
    );
    env.ok(&["rm", "-v", &id]);
    // StopSignal: `stop` sends SIGUSR1, which this command traps.
    let id = env
        .ok(&[
            "run",
            "-d",
            "cfg",
            "trap 'exit 42' USR1; while true; do sleep 0.1; done",
        ])
        .trim()
        .to_string();
    let t = Instant::now();
    env.ok(&["stop", "-t", "20", &id]);
    assert!(t.elapsed() < Duration::from_secs(10), "{:?}", t.elapsed());
    assert_eq!(env.inspect(&id)["State"]["ExitCode"], 42);
    env.ok(&["rm", "-v", &id]);
}

#[test]
fn concurrent_commands_are_safe() {
    need_root!();
    let env = std::sync::Arc::new(Env::new(&SUITE, "conc"));
    let handles: Vec<_> = (0..4)
        .map(|_| {
            let env = env.clone();
            std::thread::spawn(move || env.run(&["create", "--name", "same", "bb", "true"]).code)
        })
        .collect();
    let codes: Vec<_> = handles
        .into_iter()
        .map(|h| h.join().expect("join"))
        .collect();
    assert_eq!(
        codes.iter().filter(|c| **c == Some(0)).count(),
        1,
        "{codes:?}"
    );
    assert!(
        codes.iter().all(|c| *c == Some(0) || *c == Some(125)),
        "{codes:?}"
    );
    let handles: Vec<_> = (0..4)
        .map(|i| {
            let env = env.clone();
            std::thread::spawn(move || env.run(&["run", "--rm", "bb", "echo", &i.to_string()]))
        })
        .collect();
    for (i, h) in handles.into_iter().enumerate() {
        assert_eq!(h.join().expect("join").ok(), format!("{i}\n"));
    }
    assert_eq!(env.ids().len(), 1);

    // Racing verbs on one running container: start/stop/rm -f/ps at once end in a
    // consistent state, and `rm -f` leaves nothing.
    let id = env
        .ok(&["run", "-d", "bb", "sleep", "1000"])
        .trim()
        .to_string();
    let handles: Vec<_> = [
        vec!["stop", "-t", "1"],
        vec!["start"],
        vec!["restart", "-t", "1"],
        vec!["ps", "-a"],
        vec!["inspect"],
        vec!["kill"],
    ]
    .into_iter()
    .map(|verb| {
        let env = env.clone();
        let id = id.clone();
        std::thread::spawn(move || {
            let mut args: Vec<&str> = verb.clone();
            if verb[0] != "ps" {
                args.push(&id);
            }
            env.run(&args).code
        })
    })
    .collect();
    for h in handles {
        let code = h.join().expect("join");
        assert!(code.is_some(), "a verb was killed");
    }
    let st = env.inspect(&id)["State"]["Status"]
        .as_str()
        .expect("status")
        .to_string();
    assert!(st == "running" || st == "exited", "{st}");
    env.ok(&["rm", "-f", &id]);
    env.assert_gone(&id);
}

/// SHA-256 in hex through the system's sha256sum (no extra test dependency).
mod sha2_hex {
    use std::io::Write;
    use std::process::{Command, Stdio};

    pub fn hex_sha256(data: &[u8]) -> String {
        let mut c = Command::new("sha256sum")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("sha256sum");
        c.stdin
            .take()
            .expect("stdin")
            .write_all(data)
            .expect("write");
        let o = c.wait_with_output().expect("sha256sum");
        String::from_utf8_lossy(&o.stdout)[..64].to_string()
    }
}

#[test]
fn init_is_pid_1() {
    need_root!();
    let env = Env::new(&SUITE, "init1");
    let out = env.ok(&["run", "--rm", "--init", "bb", "ps", "-o", "pid,args"]);
    let first = out.lines().nth(1).expect("pid 1 row");
    assert!(
        first.trim_start().starts_with("1 ") && first.contains("/dev/init"),
        "{out}"
    );
    // The command's exit status comes through the init.
    let r = env.run(&["run", "--rm", "--init", "bb", "sh", "-c", "exit 3"]);
    assert_eq!(r.code, Some(3), "{}", r.stderr);
}

#[test]
fn init_forwards_signals() {
    need_root!();
    let env = Env::new(&SUITE, "init2");
    env.ok(&["run", "-d", "--init", "--name", "i1", "bb", "sleep", "1000"]);
    // sleep isn't pid 1 now: the forwarded SIGTERM ends it at once, status 143.
    let t = Instant::now();
    env.ok(&["stop", "-t", "20", "i1"]);
    assert!(t.elapsed() < Duration::from_secs(10), "{:?}", t.elapsed());
    assert_eq!(env.inspect("i1")["State"]["ExitCode"], 143);
}

#[test]
fn limits_capabilities_and_start_attach() {
    need_root!();
    let env = Env::new(&SUITE, "limits");
    let id = env
        .ok(&[
            "run",
            "-d",
            "-m",
            "64m",
            "--pids-limit",
            "20",
            "--cpus",
            "0.5",
            "--cap-drop",
            "ALL",
            "--security-opt",
            "no-new-privileges",
            "bb",
            "sleep",
            "1000",
        ])
        .trim()
        .to_string();
    let cg = |h: &str, f: &str| {
        fs::read_to_string(
            Path::new("/sys/fs/cgroup")
                .join(h)
                .join("berth")
                .join(&id)
                .join(f),
        )
        .unwrap_or_default()
        .trim()
        .to_string()
    };
    assert_eq!(cg("memory", "memory.limit_in_bytes"), "67108864");
    assert_eq!(cg("pids", "pids.max"), "20");
    assert_eq!(cg("cpu", "cpu.cfs_quota_us"), "50000");
    let status = env.ok(&["exec", &id, "cat", "/proc/1/status"]);
    assert!(status.contains("CapEff:\t0000000000000000"), "{status}");
    assert!(status.contains("NoNewPrivs:\t1"), "{status}");
    let stats = env.ok(&["stats", "--no-stream", &id]);
    assert!(stats.contains("/ 64MiB"), "{stats}");
    env.ok(&["rm", "-f", &id]);
    env.assert_gone(&id);

    // create + start -a: the output from the first byte, and the exit code.
    let id = env
        .ok(&["create", "bb", "sh", "-c", "echo attached; exit 6"])
        .trim()
        .to_string();
    let r = env.run(&["start", "-a", &id]);
    assert_eq!(r.code, Some(6), "{}", r.stderr);
    assert_eq!(r.stdout, "attached\n");
    // exec -d: started and left running.
    let id2 = env
        .ok(&["run", "-d", "bb", "sleep", "1000"])
        .trim()
        .to_string();
    env.ok(&[
        "exec",
        "-d",
        &id2,
        "sh",
        "-c",
        "echo bg > /tmp/done; sleep 1000",
    ]);
    eventually("exec -d ran", || {
        env.run(&["exec", &id2, "cat", "/tmp/done"]).stdout == "bg\n"
    });
    let top = env.ok(&["top", &id2]);
    assert_eq!(top.lines().count(), 3, "{top}");
}

#[test]
fn network_modes_env_file_and_mount_flag() {
    need_root!();
    let env = Env::new(&SUITE, "netenv");
    let host_ns = fs::read_link("/proc/self/ns/net").expect("netns");
    let host_ns = host_ns.to_str().expect("utf8");
    assert_eq!(
        env.ok(&[
            "run",
            "--rm",
            "--network",
            "host",
            "bb",
            "readlink",
            "/proc/self/ns/net"
        ])
        .trim(),
        host_ns
    );
    // none: a namespace of its own with only lo.
    let out = env.ok(&[
        "run",
        "--rm",
        "--network",
        "none",
        "bb",
        "sh",
        "-c",
        "readlink /proc/self/ns/net; ls /sys/class/net",
    ]);
    let mut lines = out.lines();
    assert_ne!(lines.next(), Some(host_ns));
    assert_eq!(lines.collect::<Vec<_>>(), ["lo"]);
    let a = env
        .ok(&["run", "-d", "--name", "a1", "bb", "sleep", "1000"])
        .trim()
        .to_string();
    let pid = env.inspect(&a)["State"]["Pid"].as_i64().expect("pid");
    let a_ns = fs::read_link(format!("/proc/{pid}/ns/net")).expect("ns");
    assert_eq!(
        env.ok(&[
            "run",
            "--rm",
            "--network",
            "container:a1",
            "bb",
            "readlink",
            "/proc/self/ns/net"
        ])
        .trim(),
        a_ns.to_str().expect("utf8")
    );

    let file = env.root.join("env.list");
    fs::write(&file, "# comment\nFROM_FILE=yes\nBOTH=file\n").expect("env file");
    let f = file.to_str().expect("utf8");
    assert_eq!(
        env.ok(&[
            "run",
            "--rm",
            "--env-file",
            f,
            "-e",
            "BOTH=flag",
            "bb",
            "sh",
            "-c",
            "echo $FROM_FILE $BOTH"
        ]),
        "yes flag\n"
    );
    let dir = env.root.join("m");
    fs::create_dir_all(&dir).expect("dir");
    fs::write(dir.join("f"), "mounted").expect("f");
    let m = format!("type=bind,source={},target=/m,readonly", dir.display());
    assert_eq!(
        env.ok(&[
            "run",
            "--rm",
            "--mount",
            &m,
            "bb",
            "sh",
            "-c",
            "cat /m/f; touch /m/x 2>/dev/null || echo ' ro'"
        ]),
        "mounted ro\n"
    );
    let r = env.run(&[
        "run",
        "--rm",
        "--mount",
        "type=bind,source=/no/such/dir,target=/m",
        "bb",
        "true",
    ]);
    assert_eq!(r.code, Some(125));
    assert!(r.stderr.contains("/no/such/dir"), "{}", r.stderr);
    env.ok(&["rm", "-f", "a1"]);
}

#[test]
fn attach_to_a_running_container() {
    need_root!();
    let env = Env::new(&SUITE, "attach");
    env.ok(&[
        "run",
        "-d",
        "-i",
        "--name",
        "at",
        "bb",
        "sh",
        "-c",
        "read x; echo got-$x; exit 4",
    ]);
    let mut child = env
        .cmd(&["attach", "at"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("attach");
    child
        .stdin
        .as_mut()
        .expect("stdin")
        .write_all(b"hi\n")
        .expect("write");
    let r = wait_output(child, Duration::from_secs(30), &["attach"]);
    assert_eq!(r.code, Some(4), "{}", r.stderr);
    assert_eq!(r.stdout, "got-hi\n");
    assert_eq!(env.ok(&["logs", "at"]), "got-hi\n");
    // wait gets the code of a --rm container too (its record is gone by then).
    let id = env
        .ok(&["run", "-d", "--rm", "bb", "sh", "-c", "sleep 0.5; exit 11"])
        .trim()
        .to_string();
    assert_eq!(env.ok(&["wait", &id]).trim(), "11");
    assert!(!env.ids().contains(&id));
    let r = env.run(&["attach", "at"]);
    assert_eq!(r.code, Some(125));
    assert!(r.stderr.contains("not running"), "{}", r.stderr);
}

#[test]
fn images_used_by_containers_are_kept() {
    need_root!();
    let env = Env::new(&SUITE, "rmi");
    env.ok(&["create", "--name", "user", "bb", "true"]);
    // Its layers are the container's lower dirs: rmi refuses, prune keeps it.
    let r = env.run(&["rmi", "bb"]);
    assert_ne!(r.code, Some(0));
    assert!(r.stderr.contains("container"), "{}", r.stderr);
    env.ok(&["image", "prune", "-f"]);
    // Forced: only the name goes; the container still runs from the untagged image.
    assert!(env.ok(&["rmi", "-f", "bb"]).contains("Untagged: "));
    assert!(env.ok(&["images"]).contains("<none>"));
    env.ok(&["start", "-a", "user"]);
    env.ok(&["rm", "user"]);
    assert!(env.ok(&["image", "prune", "-f"]).contains("Deleted: "));
    assert_eq!(env.ok(&["images", "-q"]).trim(), "");
}

#[test]
fn etc_files_in_every_network_mode() {
    need_root!();
    let env = Env::new(&SUITE, "etcfiles");
    // none: localhost resolves and the hostname is the container's, as docker.
    let out = env.ok(&[
        "run",
        "--rm",
        "--network",
        "none",
        "-h",
        "box1",
        "bb",
        "sh",
        "-c",
        "grep localhost /etc/hosts; cat /etc/hostname; test -f /etc/resolv.conf && echo resolv",
    ]);
    assert!(out.contains("127.0.0.1\tlocalhost"), "{out}");
    assert!(out.contains("box1\n") && out.contains("resolv"), "{out}");
    // host: the host's own resolv.conf (its namespace, its resolvers).
    let host = fs::read_to_string("/etc/resolv.conf").unwrap_or_default();
    let out = env.ok(&[
        "run",
        "--rm",
        "--network",
        "host",
        "bb",
        "cat",
        "/etc/resolv.conf",
    ]);
    assert_eq!(out, host);
    // container:NAME: the other container's files.
    env.ok(&[
        "run", "-d", "--name", "owner", "-h", "owner1", "bb", "sleep", "1000",
    ]);
    let out = env.ok(&[
        "run",
        "--rm",
        "--network",
        "container:owner",
        "bb",
        "cat",
        "/etc/hostname",
    ]);
    assert_eq!(out, "owner1\n");
    env.ok(&["rm", "-f", "owner"]);
}
