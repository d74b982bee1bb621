//! What the `berth` end-to-end suites (berth_containers.rs, berth_networks.rs) share: the
//! busybox image they import, one engine per test (its own `--root` and `--runroot`, so
//! tests run in parallel) that cleans up when dropped, also when the test fails, and
//! running `berth` with a time limit. Each suite adds its own helpers in an `impl Env`.

// Each suite uses a part of this module.
#![allow(dead_code)]

use std::fs;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use serde_json::Value;

pub const BERTH: &str = env!("CARGO_BIN_EXE_berth");
static SEQ: AtomicUsize = AtomicUsize::new(0);

pub fn is_root() -> bool {
    nix::unistd::geteuid().is_root()
}

/// How a suite's engines are set up.
pub struct Suite {
    /// Names the suite's directories; short, since a console socket path under the run
    /// root must fit a sockaddr_un.
    pub prefix: &'static str,
    /// `BERTH_DEFAULT_NETWORK` (None: docker's default bridge).
    pub default_network: Option<&'static str>,
    /// The tests run in a network namespace of their own: dropping an engine may prune
    /// its networks and kill every other process of the namespace.
    pub private_netns: bool,
}

/// A busybox root file system tarball, made once per test binary: a user `app` (1000)
/// for -u tests and `/bin/not-exec`, a file that isn't executable.
pub fn busybox_tar() -> &'static Path {
    static TAR: OnceLock<PathBuf> = OnceLock::new();
    TAR.get_or_init(|| {
        // Kept between runs (in the target dir): made under a temporary name, renamed
        // into place when complete.
        let tar = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("berth-e2e-busybox.tar");
        if tar.exists() {
            return tar;
        }
        let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
            .join(format!("berth-e2e-bb-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).expect("tmp dir");
        let rootfs = dir.join("rootfs");
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/busybox-rootfs.sh");
        let st = Command::new("bash")
            .arg(&script)
            .arg(&rootfs)
            .status()
            .expect("busybox-rootfs.sh");
        assert!(st.success(), "busybox-rootfs.sh failed");
        let mut passwd = fs::OpenOptions::new()
            .append(true)
            .open(rootfs.join("etc/passwd"))
            .expect("passwd");
        writeln!(passwd, "app:x:1000:1000:app:/home/app:/bin/sh").expect("passwd");
        let mut group = fs::OpenOptions::new()
            .append(true)
            .open(rootfs.join("etc/group"))
            .expect("group");
        writeln!(group, "app:x:1000:").expect("group");
        fs::create_dir_all(rootfs.join("home/app")).expect("home");
        fs::write(rootfs.join("bin/not-exec"), "#!/bin/sh\necho no\n").expect("not-exec");
        let partial = dir.join("busybox.tar");
        let st = Command::new("tar")
            .arg("-C")
            .arg(&rootfs)
            .arg("-cf")
            .arg(&partial)
            .arg(".")
            .status()
            .expect("tar");
        assert!(st.success());
        fs::rename(&partial, &tar).expect("rename tar");
        let _ = fs::remove_dir_all(&dir);
        tar
    })
}

pub struct Res {
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

impl Res {
    #[track_caller]
    pub fn ok(&self) -> &str {
        assert_eq!(
            self.code,
            Some(0),
            "stderr: {}\nstdout: {}",
            self.stderr,
            self.stdout
        );
        &self.stdout
    }
}

/// Wait for `child` (stdout and stderr piped) for at most `limit`, reading both streams
/// meanwhile so a chatty child can't block on a full pipe.
pub fn wait_output(mut child: Child, limit: Duration, what: &[&str]) -> Res {
    let start = Instant::now();
    let drain = |r: Option<Box<dyn Read + Send>>| {
        std::thread::spawn(move || {
            let mut s = String::new();
            if let Some(mut r) = r {
                let _ = r.read_to_string(&mut s);
            }
            s
        })
    };
    let out = drain(
        child
            .stdout
            .take()
            .map(|r| Box::new(r) as Box<dyn Read + Send>),
    );
    let err = drain(
        child
            .stderr
            .take()
            .map(|r| Box::new(r) as Box<dyn Read + Send>),
    );
    let status = loop {
        if let Some(st) = child.try_wait().expect("wait") {
            break st;
        }
        if start.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "{what:?} did not finish in {limit:?}; stderr: {}",
                err.join().unwrap_or_default()
            );
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    Res {
        code: status.code(),
        stdout: out.join().unwrap_or_default(),
        stderr: err.join().unwrap_or_default(),
    }
}

/// One test's engine with the busybox image imported as `bb`.
pub struct Env {
    pub root: PathBuf,
    pub run_root: PathBuf,
    suite: &'static Suite,
}

impl Env {
    pub fn new(suite: &'static Suite, name: &str) -> Env {
        let n = SEQ.fetch_add(1, Ordering::Relaxed);
        let pid = std::process::id();
        let root = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
            .join(format!("berth-{}-{name}-{pid}-{n}", suite.prefix));
        let run_root = PathBuf::from(format!("/run/b{}-{pid}-{n}", suite.prefix));
        let _ = fs::remove_dir_all(&root);
        let env = Env {
            root,
            run_root,
            suite,
        };
        let tar = busybox_tar().to_str().expect("utf8").to_string();
        env.ok(&["import", &tar, "bb"]);
        env
    }

    pub fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new(BERTH);
        if let Some(n) = self.suite.default_network {
            c.env("BERTH_DEFAULT_NETWORK", n);
        }
        c.arg("--root")
            .arg(&self.root)
            .arg("--runroot")
            .arg(&self.run_root)
            .args(args);
        c
    }

    /// Run berth to completion (60 s at most).
    pub fn run(&self, args: &[&str]) -> Res {
        let child = self
            .cmd(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn berth");
        wait_output(child, Duration::from_secs(60), args)
    }

    #[track_caller]
    pub fn ok(&self, args: &[&str]) -> String {
        let r = self.run(args);
        assert_eq!(
            r.code,
            Some(0),
            "berth {args:?} failed: {}\n{}",
            r.stderr,
            r.stdout
        );
        r.stdout
    }

    pub fn inspect(&self, what: &str) -> Value {
        let v: Value = serde_json::from_str(&self.ok(&["inspect", what])).expect("json");
        v[0].clone()
    }

    pub fn ids(&self) -> Vec<String> {
        self.ok(&["ps", "-aq", "--no-trunc"])
            .lines()
            .map(str::to_string)
            .collect()
    }

    /// Mount points under our run root.
    pub fn mounts(&self) -> Vec<String> {
        let rr = self.run_root.to_str().unwrap_or("?").to_string();
        fs::read_to_string("/proc/self/mountinfo")
            .unwrap_or_default()
            .lines()
            .filter_map(|l| l.split(' ').nth(4).map(str::to_string))
            .filter(|m| m.starts_with(&rr))
            .collect()
    }
}

impl Drop for Env {
    fn drop(&mut self) {
        let ids: Vec<String> = self
            .run(&["ps", "-aq", "--no-trunc"])
            .stdout
            .lines()
            .map(str::to_string)
            .collect();
        if !ids.is_empty() {
            let mut args = vec!["rm", "-f", "-v"];
            args.extend(ids.iter().map(String::as_str));
            let _ = self.run(&args);
        }
        if self.suite.private_netns {
            let _ = self.run(&["network", "prune", "-f"]);
            kill_namespace_processes();
        }
        let mut mounts = self.mounts();
        mounts.sort_by_key(|m| std::cmp::Reverse(m.len()));
        for m in mounts {
            let _ = nix::mount::umount2(m.as_str(), nix::mount::MntFlags::MNT_DETACH);
        }
        let _ = fs::remove_dir_all(&self.run_root);
        let _ = fs::remove_dir_all(&self.root);
    }
}

/// Kill every process in this network namespace but us (name servers, proxies, monitors
/// a failed test left): nothing outlives the test.
pub fn kill_namespace_processes() {
    let mine = fs::read_link("/proc/self/ns/net").ok();
    let me = std::process::id() as i32;
    for e in fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        if pid != me && fs::read_link(format!("/proc/{pid}/ns/net")).ok() == mine {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid),
                nix::sys::signal::Signal::SIGKILL,
            );
        }
    }
}
