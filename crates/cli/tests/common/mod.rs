//! Shared support for berth-runtime's integration tests: busybox bundles, a runner for the
//! built binary with a timeout, and a guard that removes everything a test made.
//!
//! Every test makes its own [`Env`]: a private directory (bundles, output files), a private
//! `--root` state directory and unique container ids, so tests run in parallel. Dropping the
//! `Env` (also when the test panics) force-deletes its containers, kills any process still
//! tagged with its marker, unmounts anything under its directory and removes it.

#![allow(dead_code)]

use serde_json::{json, Value};
use std::ffi::OsStr;
use std::fs;
use std::os::fd::{AsFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

pub const BIN: &str = env!("CARGO_BIN_EXE_berth-runtime");
/// busybox-static, the only program a test container needs.
pub const BUSYBOX: &str = "/bin/busybox";
/// Default timeout of one runtime invocation.
pub const TIMEOUT: Duration = Duration::from_secs(30);
/// The env var marking every process a test starts (runtime, init, container program).
pub const TAG_VAR: &str = "BERTH_IT_TAG";

static SEQ: AtomicUsize = AtomicUsize::new(0);

fn next() -> usize {
    SEQ.fetch_add(1, Ordering::Relaxed)
}

/// What one invocation of the runtime did.
#[derive(Debug)]
pub struct Out {
    /// Exit code; `None` when killed by a signal (or by our timeout).
    pub code: Option<i32>,
    pub status: Option<ExitStatus>,
    pub timed_out: bool,
    pub stdout: String,
    pub stderr: String,
    pub elapsed: Duration,
    pub args: Vec<String>,
}

impl Out {
    pub fn ok(&self) -> bool {
        self.code == Some(0) && !self.timed_out
    }

    /// Panics with the whole invocation unless it exited 0.
    #[track_caller]
    pub fn assert_ok(&self) -> &Self {
        assert!(self.ok(), "expected success: {self}");
        self
    }

    /// Panics unless it failed (non-zero, not a timeout) with exactly one non-empty line on
    /// stderr that contains every `needle` (case-insensitive).
    #[track_caller]
    pub fn assert_clear_error(&self, needles: &[&str]) -> &Self {
        assert!(!self.timed_out, "timed out: {self}");
        assert!(
            matches!(self.code, Some(c) if c != 0),
            "expected a non-zero exit: {self}"
        );
        let lines: Vec<&str> = self
            .stderr
            .lines()
            .filter(|l| !l.trim().is_empty())
            .collect();
        assert_eq!(
            lines.len(),
            1,
            "expected exactly one error line on stderr: {self}"
        );
        let segs: Vec<&str> = lines[0].split(": ").collect();
        for k in 1..=3 {
            for i in 0..segs.len().saturating_sub(2 * k - 1) {
                assert!(
                    segs[i..i + k] != segs[i + k..i + 2 * k],
                    "error line repeats {:?}: {self}",
                    segs[i..i + k].join(": ")
                );
            }
        }
        let low = lines[0].to_lowercase();
        for n in needles {
            assert!(
                low.contains(&n.to_lowercase()),
                "error line lacks {n:?}: {self}"
            );
        }
        self
    }

    pub fn json(&self) -> Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("stdout is not JSON ({e}): {self}"))
    }
}

impl std::fmt::Display for Out {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "`berth-runtime {}` -> code {:?} (status {:?}, timed out: {}, {:?})\n--- stdout ---\n{}\n--- stderr ---\n{}",
            self.args.join(" "),
            self.code,
            self.status,
            self.timed_out,
            self.elapsed,
            self.stdout,
            self.stderr
        )
    }
}

/// How to run one invocation.
pub struct Opts {
    pub timeout: Duration,
    /// Capture stdout/stderr in files (else /dev/null).
    pub capture: bool,
    pub stdin: Option<Stdio>,
    /// Give the runtime (and so the container) these fds as 3, 4, ...
    pub extra_fds: Vec<OwnedFd>,
    /// Run in the given directory.
    pub cwd: Option<PathBuf>,
}

impl Default for Opts {
    fn default() -> Self {
        Opts {
            timeout: TIMEOUT,
            capture: true,
            stdin: None,
            extra_fds: Vec::new(),
            cwd: None,
        }
    }
}

pub fn pidfd_open(pid: i32) -> std::io::Result<OwnedFd> {
    // SAFETY: plain syscall with integer arguments.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
    if fd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: the kernel just gave us this descriptor.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as i32) })
}

/// Waits up to `timeout` for `child`; kills it if it is still running then.
pub fn wait_timeout(
    child: &mut std::process::Child,
    timeout: Duration,
) -> (Option<ExitStatus>, bool) {
    let deadline = Instant::now() + timeout;
    let pidfd = pidfd_open(child.id() as i32).ok();
    loop {
        if let Ok(Some(st)) = child.try_wait() {
            return (Some(st), false);
        }
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            let _ = child.kill();
            let st = child.wait().ok();
            return (st, true);
        }
        match &pidfd {
            Some(fd) => {
                let mut fds = [nix::poll::PollFd::new(
                    fd.as_fd(),
                    nix::poll::PollFlags::POLLIN,
                )];
                let ms = left.as_millis().min(60_000) as u16;
                let _ = nix::poll::poll(&mut fds, nix::poll::PollTimeout::from(ms));
            }
            None => std::thread::sleep(Duration::from_millis(2)),
        }
    }
}

/// Runs the runtime binary with exactly these arguments (no --root added).
pub fn run_bin(args: &[&str], out_dir: &Path, tag: &str, opts: Opts) -> Out {
    let n = next();
    let out_path = out_dir.join(format!("out-{n}.stdout"));
    let err_path = out_dir.join(format!("out-{n}.stderr"));
    let mut cmd = Command::new(BIN);
    cmd.args(args).env(TAG_VAR, tag);
    if let Some(d) = &opts.cwd {
        cmd.current_dir(d);
    }
    cmd.stdin(opts.stdin.unwrap_or_else(Stdio::null));
    if opts.capture {
        cmd.stdout(fs::File::create(&out_path).expect("stdout file"));
        cmd.stderr(fs::File::create(&err_path).expect("stderr file"));
    } else {
        cmd.stdout(Stdio::null()).stderr(Stdio::null());
    }
    let extra: Vec<i32> = opts
        .extra_fds
        .iter()
        .map(std::os::fd::AsRawFd::as_raw_fd)
        .collect();
    if !extra.is_empty() {
        use std::os::unix::process::CommandExt;
        // SAFETY: only async-signal-safe dup2/fcntl between fork and exec.
        unsafe {
            cmd.pre_exec(move || {
                // First move them out of the way so dup2 never clobbers one we still need.
                let mut moved = Vec::new();
                for fd in &extra {
                    let m = libc::fcntl(*fd, libc::F_DUPFD, 100);
                    if m < 0 {
                        return Err(std::io::Error::last_os_error());
                    }
                    moved.push(m);
                }
                for (i, m) in moved.iter().enumerate() {
                    if libc::dup2(*m, 3 + i as i32) < 0 {
                        return Err(std::io::Error::last_os_error());
                    }
                    libc::close(*m);
                }
                Ok(())
            });
        }
    }
    let start = Instant::now();
    let mut child = cmd.spawn().expect("spawning berth-runtime");
    drop(opts.extra_fds);
    let (status, timed_out) = wait_timeout(&mut child, opts.timeout);
    let elapsed = start.elapsed();
    let read = |p: &Path| {
        fs::read(p)
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .unwrap_or_default()
    };
    Out {
        code: status.and_then(|s| s.code()),
        status,
        timed_out,
        stdout: if opts.capture {
            read(&out_path)
        } else {
            String::new()
        },
        stderr: if opts.capture {
            read(&err_path)
        } else {
            String::new()
        },
        elapsed,
        args: args.iter().map(|s| s.to_string()).collect(),
    }
}

/// One test's world: a directory, a state root, and the containers it made.
pub struct Env {
    pub base: PathBuf,
    pub root: PathBuf,
    pub tag: String,
    ids: Mutex<Vec<String>>,
}

impl Env {
    pub fn new(name: &str) -> Env {
        let tag = format!("bit-{}-{}-{}", name, std::process::id(), next());
        let base = std::env::temp_dir().join(&tag);
        let _ = fs::remove_dir_all(&base);
        fs::create_dir_all(&base).expect("test dir");
        let root = base.join("state");
        Env {
            base,
            root,
            tag,
            ids: Mutex::new(Vec::new()),
        }
    }

    /// A unique container id, force-deleted when the Env is dropped.
    pub fn id(&self, name: &str) -> String {
        let id = format!("{name}-{}-{}", std::process::id(), next());
        self.ids.lock().unwrap().push(id.clone());
        id
    }

    /// `berth-runtime --root <root> ARGS`, 30 s timeout.
    /// The runtime as a `Command` with our --root and test tag, for tests that drive its
    /// stdio themselves (ptys, pipes, processes killed mid-way).
    pub fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(BIN);
        cmd.arg("--root")
            .arg(&self.root)
            .args(args)
            .env(TAG_VAR, &self.tag);
        cmd
    }

    pub fn rt(&self, args: &[&str]) -> Out {
        self.rt_opts(args, Opts::default())
    }

    pub fn rt_opts(&self, args: &[&str], opts: Opts) -> Out {
        let root = self.root.to_str().unwrap().to_string();
        let mut full = vec!["--root", root.as_str()];
        full.extend_from_slice(args);
        run_bin(&full, &self.base, &self.tag, opts)
    }

    /// A fresh bundle: busybox rootfs + `berth-runtime spec` with terminal off and these args.
    pub fn bundle(&self, args: &[&str]) -> Bundle {
        let dir = self.base.join(format!("bundle-{}", next()));
        make_rootfs(&dir.join("rootfs"));
        let out = run_bin(
            &["spec", "--bundle", dir.to_str().unwrap()],
            &self.base,
            &self.tag,
            Opts::default(),
        );
        out.assert_ok();
        let text = fs::read_to_string(dir.join("config.json")).expect("spec wrote config.json");
        let mut config: Value = serde_json::from_str(&text).expect("spec output is JSON");
        config["process"]["terminal"] = json!(false);
        config["process"]["args"] = json!(args);
        if let Some(env) = config["process"]["env"].as_array_mut() {
            env.push(json!(format!("{TAG_VAR}={}", self.tag)));
        }
        let b = Bundle { dir, config };
        b.save();
        b
    }

    /// A bundle running `sh -c SCRIPT`.
    pub fn sh_bundle(&self, script: &str) -> Bundle {
        self.bundle(&["sh", "-c", script])
    }

    /// `run <new id> --bundle B` in the foreground: the container's output and exit code.
    pub fn run(&self, b: &Bundle) -> Out {
        let id = self.id("run");
        self.rt(&["run", &id, "--bundle", b.path()])
    }

    /// Runs `sh -c SCRIPT` in the default container; returns its output.
    pub fn run_sh(&self, script: &str) -> Out {
        let b = self.sh_bundle(script);
        self.run(&b)
    }

    /// `state ID` parsed.
    pub fn state(&self, id: &str) -> Value {
        let out = self.rt(&["state", id]);
        out.assert_ok();
        out.json()
    }

    pub fn status(&self, id: &str) -> String {
        self.state(id)["status"].as_str().unwrap_or("").to_string()
    }

    /// `create` + checks; returns the init's pid.
    pub fn create(&self, id: &str, b: &Bundle) -> i32 {
        self.rt(&["create", id, "--bundle", b.path()]).assert_ok();
        let st = self.state(id);
        assert_eq!(st["status"], "created", "{st}");
        st["pid"].as_i64().expect("pid") as i32
    }

    /// Everything a failed or deleted container must not have left: a description of each.
    pub fn leftovers(&self, id: &str, bundle: &Bundle) -> Vec<String> {
        let mut found = Vec::new();
        let dir = self.root.join(id);
        if dir.exists() {
            found.push(format!("state dir {}", dir.display()));
        }
        for cg in cgroup_dirs(id) {
            found.push(format!("cgroup dir {}", cg.display()));
        }
        let bpath = bundle.path();
        if let Ok(info) = fs::read_to_string("/proc/self/mountinfo") {
            for l in info.lines().filter(|l| l.contains(bpath)) {
                found.push(format!("mount {l}"));
            }
        }
        for pid in tagged_pids(&self.tag) {
            found.push(format!("process {pid} ({})", cmdline(pid)));
        }
        for pid in pids_in_cgroup_of(id) {
            found.push(format!("process {pid} in the container's cgroup"));
        }
        found
    }

    #[track_caller]
    pub fn assert_nothing_left(&self, id: &str, bundle: &Bundle) {
        // A failed create may still be tearing down a child that is already SIGKILLed.
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let l = self.leftovers(id, bundle);
            if l.is_empty() {
                return;
            }
            if Instant::now() > deadline {
                panic!("container {id} left behind:\n  {}", l.join("\n  "));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// A path inside this test's directory (not created).
    pub fn path(&self, name: &str) -> PathBuf {
        self.base.join(name)
    }
}

impl Drop for Env {
    fn drop(&mut self) {
        let ids = std::mem::take(&mut *self.ids.lock().unwrap_or_else(|e| e.into_inner()));
        for id in &ids {
            let root = self.root.to_str().unwrap_or_default().to_string();
            let _ = run_bin(
                &["--root", &root, "delete", "--force", id],
                Path::new("/tmp"),
                "cleanup",
                Opts {
                    timeout: Duration::from_secs(20),
                    capture: false,
                    ..Opts::default()
                },
            );
        }
        for pid in tagged_pids(&self.tag) {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid),
                nix::sys::signal::Signal::SIGKILL,
            );
        }
        for id in &ids {
            for pid in pids_in_cgroup_of(id) {
                let _ = nix::sys::signal::kill(
                    nix::unistd::Pid::from_raw(pid),
                    nix::sys::signal::Signal::SIGKILL,
                );
            }
            std::thread::sleep(Duration::from_millis(1));
            for cg in cgroup_dirs(id) {
                let _ = fs::remove_dir(cg);
            }
        }
        unmount_under(&self.base);
        let _ = fs::remove_dir_all(&self.base);
    }
}

/// A bundle directory and its config, edited as JSON and written with [`Bundle::save`].
pub struct Bundle {
    pub dir: PathBuf,
    pub config: Value,
}

impl Bundle {
    pub fn path(&self) -> &str {
        self.dir.to_str().unwrap()
    }

    pub fn rootfs(&self) -> PathBuf {
        self.dir.join("rootfs")
    }

    pub fn save(&self) {
        fs::write(
            self.dir.join("config.json"),
            serde_json::to_vec_pretty(&self.config).unwrap(),
        )
        .expect("writing config.json");
    }

    /// Edits the config and saves it.
    pub fn edit(&mut self, f: impl FnOnce(&mut Value)) -> &mut Self {
        f(&mut self.config);
        self.save();
        self
    }

    pub fn set_args(&mut self, args: &[&str]) -> &mut Self {
        self.edit(|c| c["process"]["args"] = json!(args))
    }

    /// Adds a namespace of this type (or replaces the entry of the same type).
    pub fn set_namespace(&mut self, typ: &str, path: Option<&str>) -> &mut Self {
        self.edit(|c| {
            let ns = c["linux"]["namespaces"].as_array_mut().unwrap();
            ns.retain(|n| n["type"] != typ);
            let mut entry = json!({ "type": typ });
            if let Some(p) = path {
                entry["path"] = json!(p);
            }
            ns.push(entry);
        })
    }

    pub fn remove_namespace(&mut self, typ: &str) -> &mut Self {
        self.edit(|c| {
            c["linux"]["namespaces"]
                .as_array_mut()
                .unwrap()
                .retain(|n| n["type"] != typ)
        })
    }

    pub fn add_mount(&mut self, m: Value) -> &mut Self {
        self.edit(|c| c["mounts"].as_array_mut().unwrap().push(m))
    }
}

fn applets() -> &'static Vec<String> {
    static LIST: OnceLock<Vec<String>> = OnceLock::new();
    LIST.get_or_init(|| {
        let out = Command::new(BUSYBOX)
            .arg("--list-full")
            .output()
            .expect("busybox --list-full (is busybox-static installed?)");
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(str::to_string)
            .filter(|l| !l.is_empty() && l != "bin/busybox")
            .collect()
    })
}

/// A root file system of busybox and its applets (as symlinks), like a minimal image.
pub fn make_rootfs(r: &Path) {
    for d in [
        "bin", "sbin", "usr/bin", "usr/sbin", "proc", "dev", "sys", "tmp", "etc", "root", "run",
        "var",
    ] {
        fs::create_dir_all(r.join(d)).unwrap();
    }
    fs::set_permissions(r.join("tmp"), fs::Permissions::from_mode(0o1777)).unwrap();
    fs::copy(BUSYBOX, r.join("bin/busybox")).expect("copying busybox");
    fs::set_permissions(r.join("bin/busybox"), fs::Permissions::from_mode(0o755)).unwrap();
    for a in applets() {
        let p = r.join(a);
        if let Some(parent) = p.parent() {
            fs::create_dir_all(parent).unwrap();
        }
        let _ = std::os::unix::fs::symlink("/bin/busybox", &p);
    }
    for a in ["sh", "true", "false", "echo", "sleep", "cat", "ls", "id"] {
        let _ = std::os::unix::fs::symlink("busybox", r.join("bin").join(a));
    }
    fs::write(
        r.join("etc/passwd"),
        "root:x:0:0:root:/root:/bin/sh\nuser:x:1000:1000:user:/home/user:/bin/sh\n",
    )
    .unwrap();
    fs::write(r.join("etc/group"), "root:x:0:\nuser:x:1000:\n").unwrap();
}

fn read_link_str(p: impl AsRef<Path>) -> Option<String> {
    fs::read_link(p)
        .ok()
        .map(|l| l.to_string_lossy().into_owned())
}

/// The namespace inode link of the current (test) process, e.g. `net:[4026531840]`.
pub fn host_ns(kind: &str) -> String {
    read_link_str(format!("/proc/self/ns/{kind}")).unwrap_or_default()
}

pub fn proc_ns(pid: i32, kind: &str) -> String {
    read_link_str(format!("/proc/{pid}/ns/{kind}")).unwrap_or_default()
}

pub fn cmdline(pid: i32) -> String {
    fs::read(format!("/proc/{pid}/cmdline"))
        .map(|b| String::from_utf8_lossy(&b).replace('\0', " "))
        .unwrap_or_default()
}

/// Every live (non-zombie) process whose environment carries `TAG_VAR=tag`.
pub fn tagged_pids(tag: &str) -> Vec<i32> {
    let needle = format!("{TAG_VAR}={tag}");
    let me = std::process::id() as i32;
    let mut pids = Vec::new();
    let Ok(rd) = fs::read_dir("/proc") else {
        return pids;
    };
    for e in rd.flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<i32>().ok()) else {
            continue;
        };
        if pid == me {
            continue;
        }
        let Ok(env) = fs::read(format!("/proc/{pid}/environ")) else {
            continue;
        };
        if env.split(|b| *b == 0).any(|kv| kv == needle.as_bytes()) && !is_zombie(pid) {
            pids.push(pid);
        }
    }
    pids
}

pub fn is_zombie(pid: i32) -> bool {
    fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| {
            s.rfind(')')
                .and_then(|i| s[i + 2..].chars().next())
                .map(|c| c == 'Z' || c == 'X')
        })
        .unwrap_or(true)
}

/// The container's cgroup directories that exist: /sys/fs/cgroup/*/berth/<id> (v1) and
/// /sys/fs/cgroup/berth/<id> (v2).
pub fn cgroup_dirs(id: &str) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let base = Path::new("/sys/fs/cgroup");
    let direct = base.join("berth").join(id);
    if direct.is_dir() {
        out.push(direct);
    }
    if let Ok(rd) = fs::read_dir(base) {
        for e in rd.flatten() {
            let p = e.path().join("berth").join(id);
            if p.is_dir() && !e.path().is_symlink() {
                out.push(p);
            }
        }
    }
    out
}

/// Pids listed in any of the container's cgroups.
pub fn pids_in_cgroup_of(id: &str) -> Vec<i32> {
    let mut pids = Vec::new();
    for d in cgroup_dirs(id) {
        if let Ok(text) = fs::read_to_string(d.join("cgroup.procs")) {
            pids.extend(text.lines().filter_map(|l| l.trim().parse::<i32>().ok()));
        }
    }
    pids.sort();
    pids.dedup();
    pids
}

/// Lazily unmounts everything mounted under `dir` (deepest first).
pub fn unmount_under(dir: &Path) {
    let Ok(info) = fs::read_to_string("/proc/self/mountinfo") else {
        return;
    };
    let prefix = dir.as_os_str().as_bytes();
    let mut points: Vec<String> = info
        .lines()
        .filter_map(|l| l.split(' ').nth(4))
        .map(|p| p.replace("\\040", " "))
        .filter(|p| p.as_bytes().starts_with(prefix))
        .collect();
    points.sort_by_key(|p| std::cmp::Reverse(p.len()));
    for p in points {
        let _ = nix::mount::umount2(OsStr::new(&p), nix::mount::MntFlags::MNT_DETACH);
    }
}

/// Polls `f` until it returns Some or `timeout` passes.
pub fn wait_for<T>(timeout: Duration, mut f: impl FnMut() -> Option<T>) -> Option<T> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = f() {
            return Some(v);
        }
        if Instant::now() > deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A line of /proc/<pid>/status, e.g. `status_field(pid, "CapEff")`.
pub fn status_field(text: &str, key: &str) -> Option<String> {
    text.lines()
        .find_map(|l| l.strip_prefix(&format!("{key}:")))
        .map(|v| v.trim().to_string())
}

/// The bit mask of a list of capability names (CAP_CHOWN = bit 0 ...).
pub fn cap_mask(names: &[&str]) -> u64 {
    const CAPS: [&str; 41] = [
        "CAP_CHOWN",
        "CAP_DAC_OVERRIDE",
        "CAP_DAC_READ_SEARCH",
        "CAP_FOWNER",
        "CAP_FSETID",
        "CAP_KILL",
        "CAP_SETGID",
        "CAP_SETUID",
        "CAP_SETPCAP",
        "CAP_LINUX_IMMUTABLE",
        "CAP_NET_BIND_SERVICE",
        "CAP_NET_BROADCAST",
        "CAP_NET_ADMIN",
        "CAP_NET_RAW",
        "CAP_IPC_LOCK",
        "CAP_IPC_OWNER",
        "CAP_SYS_MODULE",
        "CAP_SYS_RAWIO",
        "CAP_SYS_CHROOT",
        "CAP_SYS_PTRACE",
        "CAP_SYS_PACCT",
        "CAP_SYS_ADMIN",
        "CAP_SYS_BOOT",
        "CAP_SYS_NICE",
        "CAP_SYS_RESOURCE",
        "CAP_SYS_TIME",
        "CAP_SYS_TTY_CONFIG",
        "CAP_MKNOD",
        "CAP_LEASE",
        "CAP_AUDIT_WRITE",
        "CAP_AUDIT_CONTROL",
        "CAP_SETFCAP",
        "CAP_MAC_OVERRIDE",
        "CAP_MAC_ADMIN",
        "CAP_SYSLOG",
        "CAP_WAKE_ALARM",
        "CAP_BLOCK_SUSPEND",
        "CAP_AUDIT_READ",
        "CAP_PERFMON",
        "CAP_BPF",
        "CAP_CHECKPOINT_RESTORE",
    ];
    names
        .iter()
        .map(|n| {
            let i = CAPS
                .iter()
                .position(|c| c == n)
                .unwrap_or_else(|| panic!("unknown capability {n}"));
            1u64 << i
        })
        .fold(0, |a, b| a | b)
}

/// Receives the terminal master a runtime sends over a console socket (runc's protocol:
/// one message with the fd as SCM_RIGHTS).
pub struct ConsoleSocket {
    pub path: PathBuf,
    handle: Option<std::thread::JoinHandle<std::io::Result<OwnedFd>>>,
}

impl ConsoleSocket {
    pub fn listen(path: PathBuf) -> ConsoleSocket {
        let listener = std::os::unix::net::UnixListener::bind(&path).expect("binding socket");
        let handle = std::thread::spawn(move || -> std::io::Result<OwnedFd> {
            let (stream, _) = listener.accept()?;
            recv_fd(&stream)
        });
        ConsoleSocket {
            path,
            handle: Some(handle),
        }
    }

    /// The master fd (waits for the runtime to send it; the accept thread ends with it).
    pub fn master(&mut self, timeout: Duration) -> OwnedFd {
        let h = self.handle.take().expect("master() called once");
        let deadline = Instant::now() + timeout;
        while !h.is_finished() {
            assert!(
                Instant::now() < deadline,
                "no console master received on {}",
                self.path.display()
            );
            std::thread::sleep(Duration::from_millis(10));
        }
        h.join().unwrap().expect("receiving the console master")
    }
}

fn recv_fd(stream: &std::os::unix::net::UnixStream) -> std::io::Result<OwnedFd> {
    use nix::sys::socket::{recvmsg, ControlMessageOwned, MsgFlags};
    use std::os::fd::AsRawFd;
    let mut buf = [0u8; 4096];
    let mut iov = [std::io::IoSliceMut::new(&mut buf)];
    let mut space = nix::cmsg_space!([std::os::fd::RawFd; 1]);
    let msg = recvmsg::<()>(
        stream.as_raw_fd(),
        &mut iov,
        Some(&mut space),
        MsgFlags::MSG_CMSG_CLOEXEC,
    )
    .map_err(std::io::Error::from)?;
    for c in msg.cmsgs().map_err(std::io::Error::from)? {
        if let ControlMessageOwned::ScmRights(fds) = c {
            if let Some(fd) = fds.first() {
                // SAFETY: SCM_RIGHTS installed this descriptor for us.
                return Ok(unsafe { OwnedFd::from_raw_fd(*fd) });
            }
        }
    }
    Err(std::io::Error::other("message had no fd"))
}

/// Reads from a pty master until `needle` shows up, EOF/EIO, or the timeout.
pub fn read_pty_until(master: &OwnedFd, needle: &str, timeout: Duration) -> String {
    let deadline = Instant::now() + timeout;
    let mut acc = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        if String::from_utf8_lossy(&acc).contains(needle) {
            break;
        }
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            break;
        }
        let mut fds = [nix::poll::PollFd::new(
            master.as_fd(),
            nix::poll::PollFlags::POLLIN,
        )];
        let ms = left.as_millis().min(1000) as u16;
        match nix::poll::poll(&mut fds, nix::poll::PollTimeout::from(ms)) {
            Ok(0) => continue,
            Ok(_) => {}
            Err(nix::errno::Errno::EINTR) => continue,
            Err(_) => break,
        }
        match nix::unistd::read(master, &mut buf) {
            Ok(0) => break,
            Ok(n) => acc.extend_from_slice(&buf[..n]),
            Err(nix::errno::Errno::EAGAIN | nix::errno::Errno::EINTR) => continue,
            Err(_) => break,
        }
    }
    String::from_utf8_lossy(&acc).into_owned()
}
