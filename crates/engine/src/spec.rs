//! Image config + run options -> the OCI runtime spec (config.json) of a container, shaped
//! like the one docker hands runc for a default container: docker's capability set, its
//! masked and read-only paths, /proc, a tmpfs /dev with /dev/pts, /dev/shm (64 MiB) and
//! /dev/mqueue, read-only /sys and cgroup file system, new pid/ipc/uts/mount (and cgroup)
//! namespaces, the network namespace asked for, and a seccomp profile.
//!
//! Also the pieces of docker's run semantics that decide what goes in: the
//! Entrypoint/Cmd merge ([`merge_command`]), the environment ([`merge_env`]) and size
//! strings ([`parse_memory`]).

mod capabilities;
mod seccomp;

pub use capabilities::{capability_set, normalize_capability};
pub use seccomp::{default_profile, load_profile};

use crate::error::{Error, Result};
use crate::user::ResolvedUser;
use oci_spec::runtime::Spec;
use serde_json::{json, Value};
use std::path::{Path, PathBuf};

/// The PATH docker gives a container whose image sets none.
pub const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// Where `--init`'s binary is bind-mounted (as podman does).
pub const INIT_PATH: &str = "/dev/init";

/// docker's floor for `--memory` ("Minimum memory limit allowed is 6MB").
const MIN_MEMORY: i64 = 6 << 20;

/// Which network namespace the container gets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NetworkNamespace {
    /// A fresh namespace holding only `lo`.
    New,
    /// The host's namespace (`--network host`).
    Host,
    /// Join this namespace file (`/proc/<pid>/ns/net`, a bind-mounted netns).
    Path(PathBuf),
}

/// How a [`MountSpec`] is mounted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MountKind {
    /// A recursive bind of `source` (a host path: a volume's `_data`, `-v /host:/ctr`).
    Bind { read_only: bool },
    /// A tmpfs; `options` are the user's (`size=64m`, `mode=1777`, ...), applied after
    /// docker's defaults `nosuid,nodev,noexec` so they can override them.
    Tmpfs { options: Vec<String> },
}

/// One mount asked for by `-v`, `--mount`, `--tmpfs` or an image volume.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MountSpec {
    pub source: PathBuf,
    pub destination: String,
    pub kind: MountKind,
}

/// Everything [`build_spec`] needs, already resolved (command merged, user resolved).
#[derive(Debug, Clone)]
pub struct SpecInput {
    /// The mounted root file system (absolute).
    pub rootfs: PathBuf,
    /// The final argv (after [`merge_command`]).
    pub args: Vec<String>,
    /// The final environment (after [`merge_env`]); HOSTNAME, TERM (with a terminal) and
    /// HOME are added when missing, as docker and runc do.
    pub env: Vec<String>,
    /// Absolute; "" means "/".
    pub cwd: String,
    pub user: ResolvedUser,
    pub hostname: String,
    pub terminal: bool,
    /// With `terminal`: the pty's (rows, cols) from the start (process.consoleSize).
    pub console_size: Option<(u16, u16)>,
    pub read_only_rootfs: bool,
    /// In the order given; sorted by depth (parents first) as docker does.
    pub mounts: Vec<MountSpec>,
    /// Bytes (`--memory`).
    pub memory: Option<i64>,
    /// `--cpus`: CFS quota = cpus * 100000 per 100000 µs period.
    pub cpus: Option<f64>,
    /// `--pids-limit`; 0 or negative is unlimited, as docker.
    pub pids_limit: Option<i64>,
    /// "NET_ADMIN" / "CAP_NET_ADMIN" / "ALL".
    pub cap_add: Vec<String>,
    pub cap_drop: Vec<String>,
    /// `no-new-privileges[:true|false]`, `seccomp=unconfined|PATH`, `apparmor=unconfined`,
    /// `label=disable`, `systempaths=unconfined`; anything else is an error naming it.
    pub security_opt: Vec<String>,
    pub network: NetworkNamespace,
    /// e.g. "/berth/<id>".
    pub cgroups_path: String,
    /// `--init`: this static binary is bind-mounted at [`INIT_PATH`] and argv becomes
    /// `[INIT_PATH, "--", args...]`.
    pub init: Option<PathBuf>,
    pub annotations: Vec<(String, String)>,
}

/// docker's masked paths (moby's oci.DefaultSpec).
const MASKED_PATHS: &[&str] = &[
    "/proc/asound",
    "/proc/acpi",
    "/proc/interrupts",
    "/proc/kcore",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/proc/sched_debug",
    "/proc/scsi",
    "/sys/firmware",
    "/sys/devices/virtual/powercap",
];

/// docker's read-only paths.
const READONLY_PATHS: &[&str] = &[
    "/proc/bus",
    "/proc/fs",
    "/proc/irq",
    "/proc/sys",
    "/proc/sysrq-trigger",
];

/// Security options after parsing.
struct Security {
    no_new_privileges: bool,
    seccomp: SeccompChoice,
    system_paths_unconfined: bool,
}

enum SeccompChoice {
    Default,
    Unconfined,
    File(PathBuf),
}

fn parse_security_opts(opts: &[String]) -> Result<Security> {
    let mut sec = Security {
        no_new_privileges: false,
        seccomp: SeccompChoice::Default,
        system_paths_unconfined: false,
    };
    for opt in opts {
        // docker accepts both "key=value" and the legacy "key:value".
        let (key, value) = match opt.split_once('=').or_else(|| opt.split_once(':')) {
            Some((k, v)) => (k, Some(v)),
            None => (opt.as_str(), None),
        };
        match (key, value) {
            ("no-new-privileges", None) => sec.no_new_privileges = true,
            ("no-new-privileges", Some(v)) => {
                sec.no_new_privileges = match v {
                    "true" => true,
                    "false" => false,
                    _ => {
                        return Err(Error::InvalidOption(format!(
                            "invalid --security-opt {opt:?}: no-new-privileges takes true or false"
                        )))
                    }
                }
            }
            ("seccomp", Some("unconfined")) => sec.seccomp = SeccompChoice::Unconfined,
            ("seccomp", Some(path)) if !path.is_empty() => {
                sec.seccomp = SeccompChoice::File(PathBuf::from(path))
            }
            ("systempaths", Some("unconfined")) => sec.system_paths_unconfined = true,
            // No AppArmor or SELinux confinement is applied, so these hold already.
            ("apparmor", Some("unconfined")) | ("label", Some("disable")) => {}
            ("apparmor", _) | ("label", _) => {
                return Err(Error::InvalidOption(format!(
                    "invalid --security-opt {opt:?}: berth applies no {key} profile (only {key}={} is accepted)",
                    if key == "label" { "disable" } else { "unconfined" }
                )))
            }
            _ => {
                return Err(Error::InvalidOption(format!(
                    "invalid --security-opt {opt:?}: unknown option"
                )))
            }
        }
    }
    Ok(sec)
}

/// docker's default mounts, minus those the user's mounts replace (same destination; a
/// user mount on /dev replaces everything under it too, as moby does).
fn default_mounts(user_mounts: &[MountSpec]) -> Vec<Value> {
    let defaults = [
        json!({"destination": "/proc", "type": "proc", "source": "proc",
               "options": ["nosuid", "noexec", "nodev"]}),
        json!({"destination": "/dev", "type": "tmpfs", "source": "tmpfs",
               "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]}),
        json!({"destination": "/dev/pts", "type": "devpts", "source": "devpts",
               "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"]}),
        json!({"destination": "/sys", "type": "sysfs", "source": "sysfs",
               "options": ["nosuid", "noexec", "nodev", "ro"]}),
        json!({"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup",
               "options": ["ro", "nosuid", "noexec", "nodev"]}),
        json!({"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue",
               "options": ["nosuid", "noexec", "nodev"]}),
        json!({"destination": "/dev/shm", "type": "tmpfs", "source": "shm",
               "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=67108864"]}),
    ];
    let user_dest = |d: &str| {
        user_mounts
            .iter()
            .any(|m| clean_destination(&m.destination) == d)
    };
    let dev_replaced = user_dest("/dev");
    defaults
        .into_iter()
        .filter(|m| {
            let d = m["destination"].as_str().unwrap_or_default();
            !(user_dest(d) || (dev_replaced && d.starts_with("/dev/")))
        })
        .collect()
}

/// "/data/" and "/data" are one destination.
fn clean_destination(d: &str) -> String {
    let trimmed = d.trim_end_matches('/');
    if trimmed.is_empty() {
        "/".into()
    } else {
        trimmed.to_string()
    }
}

fn user_mount(m: &MountSpec) -> Result<Value> {
    let dest = clean_destination(&m.destination);
    if !dest.starts_with('/') || dest == "/" || dest.split('/').any(|c| c == "..") {
        return Err(Error::InvalidOption(format!(
            "invalid mount destination {:?}: must be an absolute path other than / without ..",
            m.destination
        )));
    }
    Ok(match &m.kind {
        MountKind::Bind { read_only } => {
            if !m.source.is_absolute() {
                return Err(Error::InvalidOption(format!(
                    "invalid mount source {:?} for {dest}: must be an absolute path",
                    m.source.display().to_string()
                )));
            }
            let mut options = vec!["rbind", "rprivate"];
            if *read_only {
                options.push("ro");
            }
            json!({"destination": dest, "type": "bind", "source": m.source, "options": options})
        }
        MountKind::Tmpfs { options } => {
            let mut all: Vec<String> = ["nosuid", "nodev", "noexec"].map(String::from).into();
            all.extend(options.iter().cloned());
            json!({"destination": dest, "type": "tmpfs", "source": "tmpfs", "options": all})
        }
    })
}

/// Adds `key=value` unless the environment has `key` already.
fn env_default(env: &mut Vec<String>, key: &str, value: &str) {
    let prefix = format!("{key}=");
    if !env.iter().any(|e| e.starts_with(&prefix)) {
        env.push(format!("{prefix}{value}"));
    }
}

/// Whether the host accounts swap in memory cgroups (v1 `memory.memsw.*`, or v2).
fn swap_accounting() -> bool {
    Path::new("/sys/fs/cgroup/memory/memory.memsw.limit_in_bytes").exists()
        || std::fs::read_to_string("/sys/fs/cgroup/cgroup.controllers")
            .map(|c| c.split_whitespace().any(|c| c == "memory"))
            .unwrap_or(false)
}

fn online_cpus() -> usize {
    std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
}

fn resources(input: &SpecInput) -> Result<Value> {
    let mut res = json!({"devices": [{"allow": false, "access": "rwm"}]});
    if let Some(mem) = input.memory.filter(|m| *m != 0) {
        if mem < MIN_MEMORY {
            return Err(Error::InvalidOption(
                "Minimum memory limit allowed is 6MB".into(),
            ));
        }
        // docker: without --memory-swap the container may use as much swap as memory, i.e.
        // memory+swap = 2 x memory, where the kernel accounts swap.
        res["memory"] = if swap_accounting() {
            json!({"limit": mem, "swap": mem.saturating_mul(2)})
        } else {
            json!({"limit": mem})
        };
    }
    if let Some(cpus) = input.cpus.filter(|c| *c != 0.0) {
        let n = online_cpus();
        if !(0.01..=n as f64).contains(&cpus) || !cpus.is_finite() {
            return Err(Error::InvalidOption(format!(
                "invalid --cpus {cpus}: range of CPUs is from 0.01 to {n}.00, as there are only {n} CPUs available"
            )));
        }
        res["cpu"] = json!({"quota": (cpus * 100_000.0).round() as i64, "period": 100_000u64});
    }
    if let Some(limit) = input.pids_limit.filter(|l| *l > 0) {
        res["pids"] = json!({"limit": limit});
    }
    Ok(res)
}

/// The OCI spec for a container.
pub fn build_spec(input: &SpecInput) -> Result<Spec> {
    if !input.rootfs.is_absolute() {
        return Err(Error::Spec(format!(
            "root file system {} is not absolute",
            input.rootfs.display()
        )));
    }
    if input.args.is_empty() {
        return Err(Error::NoCommand);
    }
    let cwd = if input.cwd.is_empty() {
        "/".to_string()
    } else {
        input.cwd.clone()
    };
    if !cwd.starts_with('/') {
        return Err(Error::InvalidOption(format!(
            "the working directory '{cwd}' is invalid, it needs to be an absolute path"
        )));
    }
    let sec = parse_security_opts(&input.security_opt)?;

    let mut env = input.env.clone();
    env_default(&mut env, "PATH", DEFAULT_PATH);
    if !input.hostname.is_empty() {
        env_default(&mut env, "HOSTNAME", &input.hostname);
    }
    if input.terminal {
        env_default(&mut env, "TERM", "xterm");
    }
    env_default(&mut env, "HOME", &input.user.home);

    let mut args = input.args.clone();
    let mut user_mounts = input.mounts.clone();
    // Parents before children whatever the order given (moby sorts by depth too).
    user_mounts.sort_by_key(|m| clean_destination(&m.destination).matches('/').count());
    let mut mounts = default_mounts(&user_mounts);
    for m in &user_mounts {
        mounts.push(user_mount(m)?);
    }
    if let Some(init) = &input.init {
        mounts.push(
            json!({"destination": INIT_PATH, "type": "bind", "source": init,
                           "options": ["bind", "ro", "nosuid", "nodev"]}),
        );
        args.splice(0..0, [INIT_PATH.to_string(), "--".to_string()]);
    }

    let caps = capability_set(&input.cap_add, &input.cap_drop)?;
    // A non-root process keeps its capabilities only in the bounding set (docker's
    // behaviour: --cap-add for a non-root user needs file capabilities).
    let (effective, permitted) = if input.user.uid == 0 {
        (caps.clone(), caps.clone())
    } else {
        (Vec::new(), Vec::new())
    };

    let mut namespaces = vec![
        json!({"type": "pid"}),
        json!({"type": "ipc"}),
        json!({"type": "uts"}),
        json!({"type": "mount"}),
        json!({"type": "cgroup"}),
    ];
    match &input.network {
        NetworkNamespace::New => namespaces.push(json!({"type": "network"})),
        NetworkNamespace::Host => {}
        NetworkNamespace::Path(p) => namespaces.push(json!({"type": "network", "path": p})),
    }

    let (masked, readonly): (&[&str], &[&str]) = if sec.system_paths_unconfined {
        (&[], &[])
    } else {
        (MASKED_PATHS, READONLY_PATHS)
    };
    let mut linux = json!({
        "namespaces": namespaces,
        "resources": resources(input)?,
        "cgroupsPath": input.cgroups_path,
        "maskedPaths": masked,
        "readonlyPaths": readonly,
    });
    match &sec.seccomp {
        SeccompChoice::Unconfined => {}
        SeccompChoice::Default => linux["seccomp"] = default_profile(&caps),
        SeccompChoice::File(p) => linux["seccomp"] = load_profile(p, &caps)?,
    }

    let mut process = json!({
        "terminal": input.terminal,
        "user": {"uid": input.user.uid, "gid": input.user.gid},
        "args": args,
        "env": env,
        "cwd": cwd,
        "capabilities": {"bounding": caps, "effective": effective, "permitted": permitted},
        "noNewPrivileges": sec.no_new_privileges,
    });
    if let Some((rows, cols)) = input.console_size.filter(|_| input.terminal) {
        process["consoleSize"] = json!({"height": rows, "width": cols});
    }
    if !input.user.additional_gids.is_empty() {
        process["user"]["additionalGids"] = json!(input.user.additional_gids);
    }

    let mut spec = json!({
        "ociVersion": "1.0.2",
        "root": {"path": input.rootfs, "readonly": input.read_only_rootfs},
        "process": process,
        "mounts": mounts,
        "linux": linux,
    });
    if !input.hostname.is_empty() {
        spec["hostname"] = json!(input.hostname);
    }
    if !input.annotations.is_empty() {
        let map: serde_json::Map<String, Value> = input
            .annotations
            .iter()
            .map(|(k, v)| (k.clone(), Value::String(v.clone())))
            .collect();
        spec["annotations"] = Value::Object(map);
    }
    serde_json::from_value(spec).map_err(|e| Error::Spec(e.to_string()))
}

/// docker's Entrypoint/Cmd rules: `--entrypoint` replaces the image's entrypoint and drops
/// its Cmd (`--entrypoint ""` clears both); otherwise the CMD given on the command line
/// replaces the image's Cmd. The result is entrypoint + cmd; empty is "no command specified".
pub fn merge_command(
    entrypoint_override: Option<&[String]>,
    cmd_override: &[String],
    image_entrypoint: &[String],
    image_cmd: &[String],
) -> Result<Vec<String>> {
    let (entrypoint, cmd): (&[String], &[String]) = match entrypoint_override {
        Some(ep) => (ep, cmd_override),
        None if !cmd_override.is_empty() => (image_entrypoint, cmd_override),
        None => (image_entrypoint, image_cmd),
    };
    let args: Vec<String> = entrypoint
        .iter()
        .filter(|_| !(entrypoint.len() == 1 && entrypoint[0].is_empty()))
        .chain(cmd)
        .cloned()
        .collect();
    if args.is_empty() {
        return Err(Error::NoCommand);
    }
    Ok(args)
}

/// The image's environment with the run's on top: a later `KEY=...` replaces an earlier
/// one in place; `KEY` alone (docker's `-e KEY`) takes the value of this process's
/// environment, or is dropped when it has none. PATH defaults to docker's.
pub fn merge_env(image_env: &[String], overrides: &[String]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let mut set = |entry: String| {
        let key = entry.split_once('=').map_or(entry.as_str(), |(k, _)| k);
        let key = format!("{key}=");
        match out.iter_mut().find(|e| e.starts_with(&key)) {
            Some(slot) => *slot = entry,
            None => out.push(entry),
        }
    };
    for e in image_env {
        if e.contains('=') {
            set(e.clone());
        }
    }
    for e in overrides {
        if e.contains('=') {
            set(e.clone());
        } else if let Ok(v) = std::env::var(e) {
            set(format!("{e}={v}"));
        }
    }
    env_default(&mut out, "PATH", DEFAULT_PATH);
    out
}

/// A size as docker reads `--memory`: a number with an optional unit b, k, m, g, t, p
/// (powers of 1024, any case, an optional trailing "b": "512m", "1.5g", "100kb", "1000").
pub fn parse_memory(s: &str) -> Result<i64> {
    let bad = || Error::InvalidOption(format!("invalid size: '{s}'"));
    let lower = s.trim().to_ascii_lowercase();
    let split = lower
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(lower.len());
    let (number, unit) = lower.split_at(split);
    let value: f64 = number.parse().map_err(|_| bad())?;
    let unit = unit.trim();
    let unit = match unit.strip_suffix('b') {
        Some(u) if !u.is_empty() => u,
        _ => unit,
    };
    let multiplier: f64 = match unit {
        "" | "b" => 1.0,
        "k" => 1024.0,
        "m" => 1024.0 * 1024.0,
        "g" => 1024.0 * 1024.0 * 1024.0,
        "t" => 1024f64.powi(4),
        "p" => 1024f64.powi(5),
        _ => return Err(bad()),
    };
    let bytes = value * multiplier;
    if !bytes.is_finite() || bytes < 0.0 || bytes > i64::MAX as f64 {
        return Err(bad());
    }
    Ok(bytes as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn input() -> SpecInput {
        SpecInput {
            rootfs: "/var/lib/berth/rootfs".into(),
            args: vec!["sh".into()],
            env: vec!["PATH=/bin".into()],
            cwd: String::new(),
            user: ResolvedUser {
                uid: 0,
                gid: 0,
                additional_gids: vec![],
                home: "/root".into(),
            },
            hostname: "abc123".into(),
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
            cgroups_path: "/berth/abc123".into(),
            init: None,
            annotations: vec![],
        }
    }

    fn json_of(spec: &Spec) -> Value {
        serde_json::to_value(spec).unwrap()
    }

    fn mount<'a>(v: &'a Value, dest: &str) -> Option<&'a Value> {
        v["mounts"]
            .as_array()
            .unwrap()
            .iter()
            .find(|m| m["destination"] == dest)
    }

    #[test]
    fn a_terminal_starts_with_the_console_size() {
        let mut i = input();
        i.console_size = Some((27, 91));
        let v = json_of(&build_spec(&i).unwrap());
        assert!(
            v["process"].get("consoleSize").is_none(),
            "no terminal: {v}"
        );
        i.terminal = true;
        let v = json_of(&build_spec(&i).unwrap());
        assert_eq!(
            v["process"]["consoleSize"],
            json!({"height": 27, "width": 91})
        );
    }

    #[test]
    fn default_container_looks_like_dockers() {
        let v = json_of(&build_spec(&input()).unwrap());
        let caps: Vec<&str> = v["process"]["capabilities"]["bounding"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c.as_str().unwrap())
            .collect();
        assert_eq!(caps.len(), 14, "{caps:?}");
        assert!(caps.contains(&"CAP_NET_BIND_SERVICE") && !caps.contains(&"CAP_SYS_ADMIN"));
        assert_eq!(
            v["process"]["capabilities"]["effective"]
                .as_array()
                .unwrap()
                .len(),
            14
        );
        assert!(v["process"]["capabilities"].get("inheritable").is_none());
        assert_eq!(v["process"]["cwd"], "/");
        let env = v["process"]["env"].as_array().unwrap();
        assert!(env.contains(&json!("HOSTNAME=abc123")));
        assert!(env.contains(&json!("HOME=/root")));
        assert!(env.contains(&json!("PATH=/bin")));
        assert_eq!(
            mount(&v, "/dev/shm").unwrap()["options"][4],
            "size=67108864"
        );
        assert!(mount(&v, "/dev/mqueue").is_some());
        assert!(mount(&v, "/sys").unwrap()["options"]
            .as_array()
            .unwrap()
            .contains(&json!("ro")));
        assert!(mount(&v, "/sys/fs/cgroup").unwrap()["options"]
            .as_array()
            .unwrap()
            .contains(&json!("ro")));
        let ns: Vec<&str> = v["linux"]["namespaces"]
            .as_array()
            .unwrap()
            .iter()
            .map(|n| n["type"].as_str().unwrap())
            .collect();
        assert_eq!(ns, ["pid", "ipc", "uts", "mount", "cgroup", "network"]);
        assert!(v["linux"]["maskedPaths"]
            .as_array()
            .unwrap()
            .contains(&json!("/proc/kcore")));
        assert!(v["linux"]["readonlyPaths"]
            .as_array()
            .unwrap()
            .contains(&json!("/proc/sys")));
        assert_eq!(v["linux"]["seccomp"]["defaultAction"], "SCMP_ACT_ALLOW");
        assert_eq!(v["linux"]["cgroupsPath"], "/berth/abc123");
        assert_eq!(v["hostname"], "abc123");
        assert!(v["process"].get("rlimits").is_none());
        assert_eq!(v["process"]["noNewPrivileges"], false);
    }

    #[test]
    fn non_root_keeps_only_the_bounding_set() {
        let mut i = input();
        i.user = ResolvedUser {
            uid: 1000,
            gid: 1000,
            additional_gids: vec![10],
            home: "/home/u".into(),
        };
        let v = json_of(&build_spec(&i).unwrap());
        assert!(v["process"]["capabilities"]["effective"]
            .as_array()
            .is_none_or(|a| a.is_empty()));
        assert_eq!(v["process"]["user"]["additionalGids"], json!([10]));
    }

    #[test]
    fn resources_and_security_options() {
        let mut i = input();
        i.memory = Some(parse_memory("512m").unwrap());
        i.cpus = Some(1.5);
        i.pids_limit = Some(100);
        i.security_opt = vec!["no-new-privileges".into(), "seccomp=unconfined".into()];
        i.read_only_rootfs = true;
        let v = json_of(&build_spec(&i).unwrap());
        let r = &v["linux"]["resources"];
        assert_eq!(r["memory"]["limit"], 512 << 20);
        assert_eq!(r["cpu"]["quota"], 150_000);
        assert_eq!(r["cpu"]["period"], 100_000);
        assert_eq!(r["pids"]["limit"], 100);
        assert_eq!(v["process"]["noNewPrivileges"], true);
        assert!(v["linux"].get("seccomp").is_none());
        assert_eq!(v["root"]["readonly"], true);

        i.memory = Some(1 << 20);
        assert!(build_spec(&i).unwrap_err().to_string().contains("6MB"));
        i.memory = None;
        i.cpus = Some(1000.0);
        assert!(build_spec(&i).unwrap_err().to_string().contains("--cpus"));
        i.cpus = None;
        i.security_opt = vec!["apparmor=docker-default".into()];
        assert!(build_spec(&i).unwrap_err().to_string().contains("apparmor"));
        i.security_opt = vec!["bogus".into()];
        assert!(build_spec(&i).unwrap_err().to_string().contains("bogus"));
        i.security_opt = vec!["systempaths=unconfined".into()];
        let v = json_of(&build_spec(&i).unwrap());
        assert!(v["linux"]
            .get("maskedPaths")
            .is_none_or(|m| m.as_array().unwrap().is_empty()));
    }

    #[test]
    fn user_mounts_replace_defaults_and_come_parents_first() {
        let mut i = input();
        i.mounts = vec![
            MountSpec {
                source: "/host/a/b".into(),
                destination: "/data/sub".into(),
                kind: MountKind::Bind { read_only: true },
            },
            MountSpec {
                source: "/host/a".into(),
                destination: "/data/".into(),
                kind: MountKind::Bind { read_only: false },
            },
            MountSpec {
                source: "".into(),
                destination: "/dev/shm".into(),
                kind: MountKind::Tmpfs {
                    options: vec!["size=1m".into(), "exec".into()],
                },
            },
        ];
        let v = json_of(&build_spec(&i).unwrap());
        let dests: Vec<&str> = v["mounts"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["destination"].as_str().unwrap())
            .collect();
        assert_eq!(dests.iter().filter(|d| **d == "/dev/shm").count(), 1);
        let data = dests.iter().position(|d| *d == "/data").unwrap();
        let sub = dests.iter().position(|d| *d == "/data/sub").unwrap();
        assert!(data < sub);
        assert_eq!(
            mount(&v, "/data/sub").unwrap()["options"],
            json!(["rbind", "rprivate", "ro"])
        );
        assert_eq!(
            mount(&v, "/dev/shm").unwrap()["options"],
            json!(["nosuid", "nodev", "noexec", "size=1m", "exec"])
        );
        i.mounts[0].destination = "relative".into();
        assert!(build_spec(&i).is_err());
        i.mounts[0].destination = "/data/sub".into();
        i.mounts[0].source = "host/a/b".into();
        let e = build_spec(&i).unwrap_err().to_string();
        assert!(e.contains("must be an absolute path"), "{e}");
    }

    #[test]
    fn init_and_network_choices() {
        let mut i = input();
        i.init = Some("/usr/libexec/berth-init".into());
        i.network = NetworkNamespace::Host;
        let v = json_of(&build_spec(&i).unwrap());
        assert_eq!(v["process"]["args"], json!(["/dev/init", "--", "sh"]));
        assert_eq!(
            mount(&v, "/dev/init").unwrap()["source"],
            "/usr/libexec/berth-init"
        );
        assert!(!v["linux"]["namespaces"]
            .as_array()
            .unwrap()
            .iter()
            .any(|n| n["type"] == "network"));
        i.network = NetworkNamespace::Path("/run/netns/x".into());
        let v = json_of(&build_spec(&i).unwrap());
        assert!(v["linux"]["namespaces"]
            .as_array()
            .unwrap()
            .contains(&json!({"type": "network", "path": "/run/netns/x"})));
    }

    #[test]
    fn command_merge_follows_docker() {
        let s = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let ep = s(&["/entry.sh"]);
        let cmd = s(&["serve", "--port", "80"]);
        assert_eq!(
            merge_command(None, &[], &ep, &cmd).unwrap(),
            s(&["/entry.sh", "serve", "--port", "80"])
        );
        assert_eq!(
            merge_command(None, &s(&["sh"]), &ep, &cmd).unwrap(),
            s(&["/entry.sh", "sh"])
        );
        // --entrypoint drops the image's Cmd.
        assert_eq!(
            merge_command(Some(&s(&["env"])), &[], &ep, &cmd).unwrap(),
            s(&["env"])
        );
        assert_eq!(
            merge_command(Some(&s(&[""])), &s(&["ls", "/"]), &ep, &cmd).unwrap(),
            s(&["ls", "/"])
        );
        assert_eq!(
            merge_command(Some(&s(&[""])), &[], &ep, &cmd)
                .unwrap_err()
                .to_string(),
            "no command specified"
        );
        assert!(merge_command(None, &[], &[], &[]).is_err());
        assert_eq!(merge_command(None, &[], &[], &cmd).unwrap(), cmd);
    }

    #[test]
    fn env_merge_later_wins_and_path_defaults() {
        let s = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let merged = merge_env(&s(&["A=1", "B=2"]), &s(&["B=3", "C=", "NO_SUCH_VAR_XYZ"]));
        assert_eq!(
            merged,
            s(&["A=1", "B=3", "C=", &format!("PATH={DEFAULT_PATH}")])
        );
        let merged = merge_env(&s(&["PATH=/x"]), &[]);
        assert_eq!(merged, s(&["PATH=/x"]));
    }

    #[test]
    fn memory_sizes() {
        assert_eq!(parse_memory("1000").unwrap(), 1000);
        assert_eq!(parse_memory("512m").unwrap(), 512 << 20);
        assert_eq!(parse_memory("512MB").unwrap(), 512 << 20);
        assert_eq!(parse_memory("1g").unwrap(), 1 << 30);
        assert_eq!(parse_memory("1.5k").unwrap(), 1536);
        assert_eq!(parse_memory("10b").unwrap(), 10);
        for bad in ["", "m", "12x", "-1m", "1..2g", "1e3"] {
            let e = parse_memory(bad).unwrap_err().to_string();
            assert!(e.contains("invalid size"), "{bad}: {e}");
        }
    }
}
