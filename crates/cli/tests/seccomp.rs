//! linux.seccomp: default actions, every rule action, architectures, flags, argument
//! conditions, the notify listener protocol, and profiles that must be refused.

mod common;

use common::*;
use serde_json::{json, Value};
use std::fs;
use std::os::fd::{FromRawFd, OwnedFd};
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// A bundle running ARGS with this seccomp profile (root writable, so mkdir can work).
fn seccomp_bundle(env: &Env, args: &[&str], profile: Value) -> Bundle {
    let mut b = env.bundle(args);
    b.edit(|c| {
        c["root"]["readonly"] = json!(false);
        c["linux"]["seccomp"] = profile;
    });
    b
}

fn allow_but(names: &[&str], action: &str) -> Value {
    json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [{"names": names, "action": action}]
    })
}

#[test]
fn errno_action_with_errno_ret() {
    let env = Env::new("scerrno");
    let b = seccomp_bundle(
        &env,
        &[
            "sh",
            "-c",
            "mkdir /tmp/a; echo rc=$?; grep Seccomp: /proc/self/status",
        ],
        json!({
            "defaultAction": "SCMP_ACT_ALLOW",
            "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 122}]
        }),
    );
    let out = env.run(&b);
    out.assert_ok();
    // busybox prints strerror(EDQUOT).
    assert!(out.stderr.contains("Disk quota exceeded"), "{out}");
    assert!(out.stdout.contains("rc=1"), "{out}");
    assert!(out.stdout.contains("Seccomp:\t2"), "{out}");
    assert!(!b.rootfs().join("tmp/a").exists());

    // Without errnoRet: EPERM.
    let b = seccomp_bundle(
        &env,
        &["mkdir", "/tmp/b"],
        allow_but(&["mkdir", "mkdirat"], "SCMP_ACT_ERRNO"),
    );
    let out = env.run(&b);
    assert_eq!(out.code, Some(1), "{out}");
    assert!(out.stderr.contains("Operation not permitted"), "{out}");
    assert!(!b.rootfs().join("tmp/b").exists());
}

#[test]
fn kill_kill_process_kill_thread_and_trap_die_with_sigsys() {
    let env = Env::new("sckill");
    for action in [
        "SCMP_ACT_KILL",
        "SCMP_ACT_KILL_PROCESS",
        "SCMP_ACT_KILL_THREAD",
        "SCMP_ACT_TRAP",
    ] {
        let b = seccomp_bundle(
            &env,
            &["mkdir", "/tmp/k"],
            allow_but(&["mkdir", "mkdirat"], action),
        );
        let out = env.run(&b);
        // SIGSYS is 31: run reports 128 + 31.
        assert_eq!(out.code, Some(159), "{action}: {out}");
        assert!(!b.rootfs().join("tmp/k").exists(), "{action}");
    }
}

#[test]
fn log_and_allow_actions_let_the_call_through() {
    let env = Env::new("sclog");
    let b = seccomp_bundle(
        &env,
        &["mkdir", "/tmp/logged"],
        allow_but(&["mkdir", "mkdirat"], "SCMP_ACT_LOG"),
    );
    env.run(&b).assert_ok();
    assert!(b.rootfs().join("tmp/logged").is_dir());

    // An explicit ALLOW rule under an ERRNO rule for the rest of a group.
    let b = seccomp_bundle(
        &env,
        &["sh", "-c", "mkdir /tmp/ok && chmod 700 /tmp/ok; echo rc=$?"],
        json!({
            "defaultAction": "SCMP_ACT_ALLOW",
            "syscalls": [
                {"names": ["mkdir"], "action": "SCMP_ACT_ALLOW"},
                {"names": ["chmod", "fchmodat"], "action": "SCMP_ACT_ERRNO"}
            ]
        }),
    );
    let out = env.run(&b);
    out.assert_ok();
    assert!(out.stdout.contains("rc=1"), "{out}");
    assert!(b.rootfs().join("tmp/ok").is_dir());
}

#[test]
fn trace_without_a_tracer_is_enosys() {
    let env = Env::new("sctrace");
    let b = seccomp_bundle(
        &env,
        &["mkdir", "/tmp/t"],
        allow_but(&["mkdir", "mkdirat"], "SCMP_ACT_TRACE"),
    );
    let out = env.run(&b);
    assert_eq!(out.code, Some(1), "{out}");
    assert!(out.stderr.contains("Function not implemented"), "{out}");
    assert!(!b.rootfs().join("tmp/t").exists());
}

/// Every syscall busybox's sh, echo and grep need (from strace), and execve; not mkdir.
const BUSYBOX_NEEDS: &[&str] = &[
    "execve",
    "arch_prctl",
    "brk",
    "mmap",
    "munmap",
    "mprotect",
    "set_tid_address",
    "set_robust_list",
    "rseq",
    "prlimit64",
    "getrandom",
    "readlink",
    "uname",
    "getuid",
    "geteuid",
    "getgid",
    "getegid",
    "getpid",
    "getppid",
    "rt_sigaction",
    "rt_sigprocmask",
    "rt_sigreturn",
    "prctl",
    "clone",
    "clone3",
    "fork",
    "vfork",
    "wait4",
    "dup2",
    "fcntl",
    "openat",
    "open",
    "close",
    "read",
    "write",
    "newfstatat",
    "fstat",
    "stat",
    "lseek",
    "ioctl",
    "getcwd",
    "exit",
    "exit_group",
];

#[test]
fn deny_by_default_still_allows_execve() {
    // Only what the program itself needs is allowed: the runtime must do nothing after
    // loading the filter but execve (with noNewPrivileges, the filter goes in last).
    let env = Env::new("scdeny");
    let b = seccomp_bundle(
        &env,
        &[
            "sh",
            "-c",
            "echo hi; mkdir /tmp/d; echo rc=$?; grep Seccomp: /proc/self/status",
        ],
        json!({
            "defaultAction": "SCMP_ACT_ERRNO",
            "syscalls": [{"names": BUSYBOX_NEEDS, "action": "SCMP_ACT_ALLOW"}]
        }),
    );
    let out = env.run(&b);
    out.assert_ok();
    assert!(out.stdout.starts_with("hi\n"), "{out}");
    assert!(out.stdout.contains("rc=1"), "{out}");
    assert!(out.stdout.contains("Seccomp:\t2"), "{out}");
    assert!(out.stderr.contains("Operation not permitted"), "{out}");
    assert!(!b.rootfs().join("tmp/d").exists());
}

#[test]
fn filter_loads_without_no_new_privileges() {
    let env = Env::new("scnonnp");
    let mut b = seccomp_bundle(
        &env,
        &[
            "sh",
            "-c",
            "grep -E 'NoNewPrivs|Seccomp' /proc/self/status; mkdir /tmp/n; echo rc=$?",
        ],
        json!({
            "defaultAction": "SCMP_ACT_ALLOW",
            "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 122}]
        }),
    );
    b.edit(|c| c["process"]["noNewPrivileges"] = json!(false));
    let out = env.run(&b);
    out.assert_ok();
    assert!(out.stdout.contains("NoNewPrivs:\t0"), "{out}");
    assert!(out.stdout.contains("Seccomp:\t2"), "{out}");
    assert!(out.stdout.contains("rc=1"), "{out}");
    assert!(out.stderr.contains("Disk quota exceeded"), "{out}");
}

#[test]
fn architectures_and_log_flag() {
    let env = Env::new("scarch");
    let b = seccomp_bundle(
        &env,
        &["sh", "-c", "mkdir /tmp/x; echo rc=$?"],
        json!({
            "defaultAction": "SCMP_ACT_ALLOW",
            "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"],
            "flags": ["SECCOMP_FILTER_FLAG_LOG"],
            "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 122}]
        }),
    );
    let out = env.run(&b);
    out.assert_ok();
    assert!(out.stdout.contains("rc=1"), "{out}");
    assert!(out.stderr.contains("Disk quota exceeded"), "{out}");
}

#[test]
fn argument_conditions() {
    let env = Env::new("scargs");
    // personality(PER_LINUX32 = 8) is refused; personality(0) (linux64) is not.
    // chmod with a mode that has no group/other bits (mode & 077 == 0) is refused.
    let b = seccomp_bundle(
        &env,
        &[
            "sh",
            "-c",
            "linux32 true; echo l32=$?; linux64 true; echo l64=$?; \
             touch /tmp/f; chmod 700 /tmp/f; echo c700=$?; chmod 755 /tmp/f; echo c755=$?; \
             stat -c %a /tmp/f",
        ],
        json!({
            "defaultAction": "SCMP_ACT_ALLOW",
            "syscalls": [
                {"names": ["personality"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1,
                 "args": [{"index": 0, "value": 8, "op": "SCMP_CMP_EQ"}]},
                {"names": ["personality"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1,
                 "args": [{"index": 0, "value": 4294967295u64, "op": "SCMP_CMP_EQ"}]},
                {"names": ["chmod"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1,
                 "args": [{"index": 1, "value": 63, "valueTwo": 0, "op": "SCMP_CMP_MASKED_EQ"}]}
            ]
        }),
    );
    let out = env.run(&b);
    out.assert_ok();
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(
        lines,
        ["l32=1", "l64=0", "c700=1", "c755=0", "755"],
        "{out}"
    );
}

/// What a seccomp listener received: the message and the descriptors.
struct Received {
    msg: String,
    fds: Vec<OwnedFd>,
}

/// Accepts one connection on `path` (up to 20 s) and reads one message with SCM_RIGHTS.
fn notify_listener(path: PathBuf) -> std::thread::JoinHandle<Result<Received, String>> {
    let listener = std::os::unix::net::UnixListener::bind(&path).expect("binding listener");
    listener.set_nonblocking(true).unwrap();
    std::thread::spawn(move || {
        let deadline = Instant::now() + Duration::from_secs(20);
        let stream = loop {
            match listener.accept() {
                Ok((s, _)) => break s,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                    if Instant::now() > deadline {
                        return Err("nobody connected to the listener".into());
                    }
                    std::thread::sleep(Duration::from_millis(10));
                }
                Err(e) => return Err(e.to_string()),
            }
        };
        stream.set_nonblocking(false).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(20)))
            .unwrap();
        use nix::sys::socket::{recvmsg, ControlMessageOwned, MsgFlags};
        use std::os::fd::AsRawFd;
        let mut buf = vec![0u8; 64 * 1024];
        let mut iov = [std::io::IoSliceMut::new(&mut buf)];
        let mut space = nix::cmsg_space!([std::os::fd::RawFd; 4]);
        // A signal meant for another test's child can land on this thread: retry.
        let msg = loop {
            match recvmsg::<()>(
                stream.as_raw_fd(),
                &mut iov,
                Some(&mut space),
                MsgFlags::MSG_CMSG_CLOEXEC,
            ) {
                Err(nix::errno::Errno::EINTR) => continue,
                r => break r.map_err(|e| e.to_string())?,
            }
        };
        let mut fds = Vec::new();
        for c in msg.cmsgs().map_err(|e| e.to_string())? {
            if let ControlMessageOwned::ScmRights(v) = c {
                // SAFETY: SCM_RIGHTS installed these descriptors for us.
                fds.extend(v.into_iter().map(|fd| unsafe { OwnedFd::from_raw_fd(fd) }));
            }
        }
        let n = msg.bytes;
        Ok(Received {
            msg: String::from_utf8_lossy(&buf[..n]).into_owned(),
            fds,
        })
    })
}

/// Starts a container whose mkdir is notified to a listener on `listenerPath`, checks
/// the message the listener gets (runc's ContainerProcessState), closes the fd, and checks
/// the notified mkdir then failed with ENOSYS. With `also_inside`, the socket is also
/// hard-linked at the same path inside the rootfs (so a runtime that connects only after
/// pivot_root still reaches it and the rest of the protocol is checked).
fn notify_case(name: &str, also_inside: bool) {
    let env = Env::new(name);
    let sock = env.path("seccomp.sock");
    let handle = notify_listener(sock.clone());
    let b = seccomp_bundle(
        &env,
        &["sh", "-c", "mkdir /tmp/nt; echo rc=$? >/result"],
        json!({
            "defaultAction": "SCMP_ACT_ALLOW",
            "listenerPath": sock.to_str().unwrap(),
            "listenerMetadata": "meta-berth-it",
            "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_NOTIFY"}]
        }),
    );
    if also_inside {
        let inside = b.rootfs().join(sock.strip_prefix("/").unwrap());
        fs::create_dir_all(inside.parent().unwrap()).unwrap();
        fs::hard_link(&sock, &inside).expect("hard-linking the socket into the rootfs");
    }
    let id = env.id("notify");
    env.rt(&["create", &id, "--bundle", b.path()]).assert_ok();
    let init = env.state(&id)["pid"].as_i64().unwrap();
    let start = std::thread::spawn({
        let root = env.root.clone();
        let base = env.base.clone();
        let tag = env.tag.clone();
        let id = id.clone();
        move || {
            run_bin(
                &["--root", root.to_str().unwrap(), "start", &id],
                &base,
                &tag,
                Opts::default(),
            )
        }
    });
    let got = handle.join().unwrap().expect("listener");
    let msg: Value = serde_json::from_str(&got.msg).unwrap_or_else(|e| {
        panic!("listener message is not JSON ({e}): {:?}", got.msg);
    });
    assert_eq!(msg["fds"], json!(["seccompFd"]), "{msg}");
    assert_eq!(msg["metadata"], "meta-berth-it", "{msg}");
    assert_eq!(msg["state"]["id"], id.as_str(), "{msg}");
    assert!(msg["ociVersion"].is_string(), "{msg}");
    assert_eq!(
        got.fds.len(),
        1,
        "exactly the seccomp fd rides along: {msg}"
    );
    // The fd is a seccomp notify fd (anon inode).
    let link = fs::read_link(format!(
        "/proc/self/fd/{}",
        std::os::fd::AsRawFd::as_raw_fd(&got.fds[0])
    ))
    .unwrap();
    assert!(
        link.to_string_lossy().contains("seccomp"),
        "not a seccomp fd: {link:?}"
    );
    // Closing the listener's fd: the notified syscall then fails with ENOSYS.
    drop(got);
    start.join().unwrap().assert_ok();
    let stopped = wait_for(Duration::from_secs(10), || {
        (env.status(&id) == "stopped").then_some(())
    });
    assert!(stopped.is_some(), "container did not finish");
    assert_eq!(
        fs::read_to_string(b.rootfs().join("result")).unwrap_or_default(),
        "rc=1\n"
    );
    assert!(!b.rootfs().join("tmp/nt").exists());
    // runtime-spec: pid is the container process "as seen by the runtime" (the host pid,
    // which a seccomp agent needs to reach /proc/<pid>/mem); checked last.
    assert_eq!(msg["pid"].as_i64(), Some(init), "message pid: {msg}");
    assert_eq!(msg["state"]["pid"].as_i64(), Some(init), "state pid: {msg}");
    env.rt(&["delete", &id]).assert_ok();
    env.assert_nothing_left(&id, &b);
}

#[test]
fn notify_sends_the_fd_to_a_listener_on_a_host_path() {
    notify_case("scnotify", false);
}

#[test]
fn notify_protocol_and_enosys_once_the_listener_closes_the_fd() {
    notify_case("scnotify2", true);
}

fn refused(env: &Env, profile: Value, needles: &[&str]) {
    let b = seccomp_bundle(env, &["true"], profile);
    let id = env.id("bad");
    env.rt(&["create", &id, "--bundle", b.path()])
        .assert_clear_error(needles);
    env.assert_nothing_left(&id, &b);
}

#[test]
fn unknown_action_is_a_config_error() {
    let env = Env::new("scbadact");
    refused(
        &env,
        allow_but(&["mkdir"], "SCMP_ACT_EXPLODE"),
        &["SCMP_ACT_EXPLODE"],
    );
    refused(
        &env,
        json!({"defaultAction": "SCMP_ACT_NOPE"}),
        &["SCMP_ACT_NOPE"],
    );
}

#[test]
fn unknown_syscall_is_an_error() {
    let env = Env::new("scbadsys");
    refused(
        &env,
        allow_but(&["no_such_syscall_at_all"], "SCMP_ACT_ERRNO"),
        &["no_such_syscall_at_all"],
    );
}

#[test]
fn notify_without_listener_path_is_an_error() {
    let env = Env::new("scnolistener");
    refused(
        &env,
        allow_but(&["mkdir"], "SCMP_ACT_NOTIFY"),
        &["listenerPath"],
    );
    // A listenerPath nobody listens on.
    let missing = env.path("nobody.sock");
    refused(
        &env,
        json!({
            "defaultAction": "SCMP_ACT_ALLOW",
            "listenerPath": missing.to_str().unwrap(),
            "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_NOTIFY"}]
        }),
        &["listenerPath"],
    );
}
