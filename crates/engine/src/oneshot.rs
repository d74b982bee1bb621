//! One process in a throw-away container, run to completion in the foreground: what a
//! Dockerfile RUN step needs. No container record, no monitor: a bundle and the runtime's
//! state live in a scratch directory the caller owns, the runtime's foreground `run` waits
//! for the process, and a guard deletes the container whatever happens.

use crate::error::{Error, Result};
use crate::spec::{build_spec, NetworkNamespace, SpecInput};
use crate::user::resolve_user;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};

/// What to run and where.
pub struct OneShot<'a> {
    /// The OCI runtime binary (berth-runtime, runc, ...).
    pub runtime: &'a Path,
    /// An empty directory for the bundle and the runtime's state; the caller removes it.
    pub scratch: &'a Path,
    /// The mounted root file system; the process may change it (a RUN step does).
    pub rootfs: &'a Path,
    pub args: Vec<String>,
    pub env: Vec<String>,
    /// Absolute; "" means "/".
    pub cwd: String,
    /// As docker's `--user` / `USER`, resolved in `rootfs`.
    pub user: String,
    /// Share the host's network namespace; otherwise a fresh one holding only `lo`.
    pub host_network: bool,
    pub hostname: String,
    pub stdout: Stdio,
    pub stderr: Stdio,
}

/// A name for a one-shot container, unique per process and call (`berth-oneshot-<pid>-<n>`).
pub fn container_id() -> String {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    format!(
        "berth-oneshot-{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

/// Deletes the container (and so its cgroup) however `run` ended: a foreground `run`
/// removes it itself, so this usually finds nothing to do.
struct Cleanup<'a> {
    runtime: &'a Path,
    state_root: PathBuf,
    id: String,
}

impl Drop for Cleanup<'_> {
    fn drop(&mut self) {
        if self.state_root.join(&self.id).exists() {
            let _ = Command::new(self.runtime)
                .arg("--root")
                .arg(&self.state_root)
                .args(["delete", "--force", &self.id])
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
        }
    }
}

/// Runs the process; returns its exit status (128 + signal when killed by one, as the
/// runtime reports it). A failure of the runtime itself (a missing executable, a bad
/// working directory, ...) is an error carrying the runtime's message.
pub fn run_oneshot(req: OneShot) -> Result<i32> {
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| Error::Io { path, source }
    };
    let rootfs = std::fs::canonicalize(req.rootfs).map_err(io(req.rootfs))?;
    let user = resolve_user(&rootfs, &req.user)?;
    let id = container_id();
    let spec = build_spec(&SpecInput {
        rootfs,
        args: req.args,
        env: req.env,
        cwd: req.cwd,
        user,
        hostname: req.hostname,
        terminal: false,
        console_size: None,
        read_only_rootfs: false,
        mounts: Vec::new(),
        memory: None,
        cpus: None,
        pids_limit: None,
        cap_add: Vec::new(),
        cap_drop: Vec::new(),
        security_opt: Vec::new(),
        network: if req.host_network {
            NetworkNamespace::Host
        } else {
            NetworkNamespace::New
        },
        cgroups_path: format!("/berth/{id}"),
        init: None,
        annotations: Vec::new(),
    })?;

    run_spec(req.runtime, req.scratch, &id, &spec, req.stdout, req.stderr)
}

/// Runs `spec` (its `linux.cgroupsPath` named after `id`, see [`container_id`]) as
/// container `id` in the foreground, with the bundle and the runtime's state in `scratch`;
/// stdin is /dev/null. The exit status as [`run_oneshot`] returns it; the container is
/// deleted whatever happens.
pub fn run_spec(
    runtime: &Path,
    scratch: &Path,
    id: &str,
    spec: &oci_spec::runtime::Spec,
    stdout: Stdio,
    stderr: Stdio,
) -> Result<i32> {
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| Error::Io { path, source }
    };
    let bundle = scratch.join("bundle");
    let state_root = scratch.join("state");
    let log = scratch.join("runtime.log");
    for dir in [&bundle, &state_root] {
        std::fs::create_dir_all(dir).map_err(io(dir))?;
    }
    let config = bundle.join("config.json");
    let text = serde_json::to_vec(&spec).map_err(|e| Error::Spec(e.to_string()))?;
    std::fs::write(&config, text).map_err(io(&config))?;

    let _cleanup = Cleanup {
        runtime,
        state_root: state_root.clone(),
        id: id.to_string(),
    };
    let status = Command::new(runtime)
        .arg("--root")
        .arg(&state_root)
        .arg("--log")
        .arg(&log)
        .args(["--log-format", "json", "run", "--bundle"])
        .arg(&bundle)
        .arg(id)
        .stdin(Stdio::null())
        .stdout(stdout)
        .stderr(stderr)
        .status()
        .map_err(|source| Error::Spawn {
            program: runtime.display().to_string(),
            source,
        })?;
    if let Some(message) = runtime_error(&log) {
        // docker's kinds: a program that isn't there (127) or can't run (126).
        return Err(match crate::runtime::start_exit_code(&message) {
            127 => Error::CommandNotFound(message),
            126 => Error::CommandNotExecutable(message),
            _ => Error::Runtime {
                runtime: runtime.to_path_buf(),
                verb: "run".into(),
                message,
            },
        });
    }
    use std::os::unix::process::ExitStatusExt;
    Ok(match (status.code(), status.signal()) {
        (Some(code), _) => code,
        (None, Some(sig)) => 128 + sig,
        (None, None) => 128,
    })
}

/// The last error the runtime logged (runc's JSON log lines {"level","msg"}), if any: a
/// process that merely exits non-zero logs none.
fn runtime_error(log: &Path) -> Option<String> {
    let text = std::fs::read_to_string(log).ok()?;
    text.lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|v| v["level"] == "error")
        .filter_map(|v| v["msg"].as_str().map(str::to_string))
        .next_back()
}

/// berth-runtime beside the running executable, else the first on PATH.
pub fn default_runtime() -> Result<PathBuf> {
    const NAME: &str = "berth-runtime";
    let beside = std::env::current_exe()
        .ok()
        .and_then(|exe| exe.parent().map(|d| d.join(NAME)));
    if let Some(p) = beside.filter(|p| is_executable(p)) {
        return Ok(p);
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .map(|d| d.join(NAME))
        .find(|p| is_executable(p))
        .ok_or_else(|| {
            Error::InvalidOption(format!(
                "{NAME} not found beside this executable or on PATH (give one with --runtime)"
            ))
        })
}

fn is_executable(p: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}
