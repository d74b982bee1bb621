//! run_oneshot (the builder's RUN steps) under berth-runtime and runc, as root.

mod parts_common;

use berth_engine::oneshot::{run_oneshot, OneShot};
use parts_common::*;
use std::fs::File;
use std::path::Path;
use std::process::Stdio;

struct Outcome {
    result: berth_engine::Result<i32>,
    stdout: String,
    stderr: String,
}

/// One container at a time: the leftover check looks at every cgroup of this process's
/// one-shot containers.
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn run(runtime: &Path, rootfs: &Path, args: &[&str], user: &str, cwd: &str) -> Outcome {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let dir = tempdir("oneshot");
    let scratch = dir.path().join("scratch");
    std::fs::create_dir(&scratch).unwrap();
    let (out_path, err_path) = (dir.path().join("out"), dir.path().join("err"));
    let result = run_oneshot(OneShot {
        runtime,
        scratch: &scratch,
        rootfs,
        args: args.iter().map(|s| s.to_string()).collect(),
        env: vec!["GREETING=hi".into()],
        cwd: cwd.into(),
        user: user.into(),
        host_network: false,
        hostname: "builder".into(),
        stdout: Stdio::from(File::create(&out_path).unwrap()),
        stderr: Stdio::from(File::create(&err_path).unwrap()),
    });
    // Nothing of the container is left in the runtime's state directory.
    let state: Vec<_> = std::fs::read_dir(scratch.join("state"))
        .map(|d| d.flatten().map(|e| e.file_name()).collect())
        .unwrap_or_default();
    assert!(
        state.is_empty(),
        "{}: state left: {state:?}",
        runtime.display()
    );
    let leftover = cgroups_named(&format!("berth-oneshot-{}-", std::process::id()));
    Outcome {
        result,
        stdout: std::fs::read_to_string(out_path).unwrap(),
        stderr: std::fs::read_to_string(err_path).unwrap(),
    }
    .check_no_cgroups(leftover)
}

impl Outcome {
    fn check_no_cgroups(self, leftover: Vec<std::path::PathBuf>) -> Self {
        assert!(leftover.is_empty(), "cgroups left: {leftover:?}");
        self
    }
}

#[test]
fn exit_code_and_output_are_captured() {
    if !is_root("exit_code_and_output_are_captured") {
        return;
    }
    let dir = tempdir("rootfs");
    make_rootfs(dir.path());
    for rt in runtimes() {
        let o = run(
            &rt,
            dir.path(),
            &["sh", "-c", "echo $GREETING; echo oops >&2; exit 3"],
            "",
            "",
        );
        assert_eq!(o.result.unwrap(), 3, "{}: {}", rt.display(), o.stderr);
        assert_eq!(o.stdout, "hi\n");
        assert_eq!(o.stderr, "oops\n");
    }
}

#[test]
fn the_container_is_isolated_like_a_default_docker_container() {
    if !is_root("the_container_is_isolated_like_a_default_docker_container") {
        return;
    }
    let dir = tempdir("rootfs");
    make_rootfs(dir.path());
    let script = "ls /sys/class/net; hostname; grep -E '^(CapBnd|CapEff|Seccomp|NoNewPrivs):' /proc/self/status; \
                  df -k /dev/shm | tail -n 1 | awk '{print \"shm\", $2}'; \
                  if unshare -n true 2>/dev/null; then echo unshare-allowed; else echo unshare-denied; fi; \
                  cat /proc/kcore | wc -c; echo $HOME $PATH";
    for rt in runtimes() {
        let o = run(&rt, dir.path(), &["sh", "-c", script], "", "");
        assert_eq!(o.result.unwrap(), 0, "{}: {}", rt.display(), o.stderr);
        let lines: Vec<&str> = o.stdout.lines().collect();
        assert_eq!(
            lines,
            [
                "lo",
                "builder",
                "CapEff:\t00000000a80425fb",
                "CapBnd:\t00000000a80425fb",
                "NoNewPrivs:\t0",
                "Seccomp:\t2",
                "shm 65536",
                "unshare-denied",
                "0",
                "/root /usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
            ],
            "{}",
            rt.display()
        );
    }
}

#[test]
fn user_and_working_directory_are_honoured() {
    if !is_root("user_and_working_directory_are_honoured") {
        return;
    }
    let dir = tempdir("rootfs");
    make_rootfs(dir.path());
    for rt in runtimes() {
        let o = run(
            &rt,
            dir.path(),
            &[
                "sh",
                "-c",
                "id; pwd; echo $HOME; grep CapEff /proc/self/status",
            ],
            "user",
            "/tmp",
        );
        assert_eq!(o.result.unwrap(), 0, "{}: {}", rt.display(), o.stderr);
        assert_eq!(
            o.stdout,
            "uid=1000(user) gid=1000(user) groups=29(audio)\n/tmp\n/home/user\nCapEff:\t0000000000000000\n",
            "{}",
            rt.display()
        );
        // A working directory the image lacks is made, as docker's WORKDIR.
        let cwd = format!("/made/by/{}", rt.file_name().unwrap().to_string_lossy());
        let o = run(&rt, dir.path(), &["pwd"], "user", &cwd);
        assert_eq!(o.result.unwrap(), 0, "{}: {}", rt.display(), o.stderr);
        assert_eq!(o.stdout, format!("{cwd}\n"));
        let o = run(&rt, dir.path(), &["id"], "nobody", "");
        assert_eq!(
            o.result.unwrap_err().to_string(),
            "unable to find user nobody: no matching entries in passwd file"
        );
    }
}

#[test]
fn runtime_failures_are_errors_and_leave_nothing() {
    if !is_root("runtime_failures_are_errors_and_leave_nothing") {
        return;
    }
    let dir = tempdir("rootfs");
    make_rootfs(dir.path());
    for rt in runtimes() {
        let o = run(&rt, dir.path(), &["no-such-program", "x"], "", "");
        let e = o.result.expect_err("a missing program is an error");
        assert_eq!(e.exit_code(), 127, "{}: {e}", rt.display());
        assert!(
            e.to_string().contains("no-such-program"),
            "{}: {e}",
            rt.display()
        );

        // A working directory that is a file: the runtime's error, with its message.
        let o = run(&rt, dir.path(), &["true"], "", "/etc/passwd");
        let e = o.result.expect_err("a file as cwd is an error");
        assert!(
            e.to_string().contains("/etc/passwd"),
            "{}: {e}",
            rt.display()
        );
    }
}
