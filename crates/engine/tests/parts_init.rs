//! init_main (the `--init` process), run as a child: this file's own binary re-executed with
//! PARTS_INIT_CHILD set becomes the init (harness = false: the init must be the only thread,
//! or a harness thread would take the signals meant for it).

mod parts_common;

use berth_engine::oneshot::{container_id, run_spec};
use berth_engine::spec::{build_spec, NetworkNamespace, SpecInput};
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const CHILD_VAR: &str = "PARTS_INIT_CHILD";

fn main() {
    if std::env::var_os(CHILD_VAR).is_some() {
        let args: Vec<_> = std::env::args_os().skip(1).collect();
        std::process::exit(berth_engine::init::init_main(args));
    }
    let tests: [(&str, fn()); 6] = [
        ("exit_status_is_the_commands", exit_status_is_the_commands),
        ("signals_are_forwarded", signals_are_forwarded),
        ("orphans_are_reaped", orphans_are_reaped),
        (
            "a_killed_command_is_128_plus_signal",
            a_killed_command_is_128_plus_signal,
        ),
        ("a_missing_command_is_127", a_missing_command_is_127),
        ("as_pid_1_of_a_container", as_pid_1_of_a_container),
    ];
    for (name, test) in tests {
        test();
        println!("test {name} ... ok");
    }
    println!("test result: ok. {} passed", tests.len());
}

fn init(args: &[&str]) -> Command {
    let mut c = Command::new(std::env::current_exe().unwrap());
    c.env(CHILD_VAR, "1").args(args);
    c
}

fn status_of(args: &[&str]) -> (i32, String, String) {
    let out = init(args).stdin(Stdio::null()).output().unwrap();
    (
        out.status.code().expect("init exits, not killed"),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn exit_status_is_the_commands() {
    let (code, out, _) = status_of(&["--", "sh", "-c", "echo hi; exit 7"]);
    assert_eq!((code, out.as_str()), (7, "hi\n"));
    assert_eq!(status_of(&["true"]).0, 0);
}

fn signals_are_forwarded() {
    let mut child = init(&[
        "sh",
        "-c",
        "trap 'echo got TERM; exit 42' TERM; echo ready; while :; do sleep 0.05; done",
    ])
    .stdin(Stdio::null())
    .stdout(Stdio::piped())
    .spawn()
    .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    assert_eq!(lines.next().unwrap().unwrap(), "ready");
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap();
    assert_eq!(lines.next().unwrap().unwrap(), "got TERM");
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(42));
}

fn orphans_are_reaped() {
    // The inner sh leaves a background sleep behind and exits: the sleep is reparented to
    // the init (a subreaper here, PID 1 in a container) and must not stay a zombie.
    let script = "sh -c 'sleep 0.1 &'; sleep 0.6; ps -o stat= --ppid $PPID | grep -c Z || true";
    let started = Instant::now();
    let (code, out, err) = status_of(&["sh", "-c", script]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(out.trim(), "0", "zombies left under the init");
    assert!(started.elapsed() < Duration::from_secs(10));
}

fn a_killed_command_is_128_plus_signal() {
    let (code, _, _) = status_of(&["sh", "-c", "kill -KILL $$"]);
    assert_eq!(code, 137);
}

fn a_missing_command_is_127() {
    let (code, _, err) = status_of(&["/no/such/program"]);
    assert_eq!(code, 127);
    assert!(
        err.contains("berth-init: exec /no/such/program failed"),
        "{err}"
    );
    let (code, _, err) = status_of(&[]);
    assert_eq!(code, 1);
    assert!(err.contains("usage"), "{err}");
}

/// `--init` for real: this binary bind-mounted at /dev/init by build_spec, under
/// berth-runtime and runc.
fn as_pid_1_of_a_container() {
    if !parts_common::is_root("as_pid_1_of_a_container") {
        return;
    }
    let dir = parts_common::tempdir("init");
    let rootfs = dir.path().join("rootfs");
    parts_common::make_rootfs(&rootfs);
    let script = "tr '\\0' ' ' < /proc/1/cmdline; echo; echo $$; \
                  sh -c 'sleep 0.1 &'; sleep 0.5; ps -o stat | grep -c Z; exit 5";
    for rt in parts_common::runtimes() {
        let id = container_id();
        let spec = build_spec(&SpecInput {
            rootfs: rootfs.clone(),
            args: vec!["sh".into(), "-c".into(), script.into()],
            env: vec![format!("{CHILD_VAR}=1")],
            cwd: String::new(),
            user: Default::default(),
            hostname: String::new(),
            terminal: false,
            console_size: None,
            read_only_rootfs: false,
            mounts: vec![],
            memory: None,
            cpus: None,
            pids_limit: None,
            cap_add: vec![],
            cap_drop: vec![],
            security_opt: vec![],
            network: NetworkNamespace::New,
            cgroups_path: format!("/berth/{id}"),
            init: Some(std::env::current_exe().unwrap()),
            annotations: vec![],
        })
        .unwrap();
        let out_path = dir.path().join("out");
        let code = run_spec(
            &rt,
            &dir.path().join(&id),
            &id,
            &spec,
            Stdio::from(std::fs::File::create(&out_path).unwrap()),
            Stdio::inherit(),
        )
        .unwrap();
        let out = std::fs::read_to_string(&out_path).unwrap();
        assert_eq!(code, 5, "{}: {out}", rt.display());
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(lines.len(), 3, "{}: {out}", rt.display());
        // PID 1 is the init; the command is its child (PID 2 under berth-runtime; runc's
        // own init threads used a few pids first).
        assert_eq!(lines[0], format!("/dev/init -- sh -c {script} "));
        assert_ne!(lines[1], "1", "{}", rt.display());
        assert_eq!(lines[2], "0", "{}: zombies left", rt.display());
        assert!(parts_common::cgroups_named(&id).is_empty());
    }
}
