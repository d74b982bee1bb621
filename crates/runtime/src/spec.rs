//! Loading config.json and refusing, before anything is created, what we can't honour.

use crate::error::{Result, RuntimeError};
use oci_spec::runtime::{LinuxNamespaceType, Spec};
use std::collections::HashSet;
use std::path::{Path, PathBuf};

/// A bundle's parsed config plus the raw bytes (kept verbatim in the state dir).
pub struct Bundle {
    pub dir: PathBuf,
    pub spec: Spec,
    pub raw: Vec<u8>,
    pub rootfs: PathBuf,
}

pub fn load(bundle_dir: &Path) -> Result<Bundle> {
    let dir = std::path::absolute(bundle_dir).map_err(|e| RuntimeError::Io {
        path: bundle_dir.to_path_buf(),
        source: e,
    })?;
    let path = dir.join("config.json");
    let raw = std::fs::read(&path).map_err(|e| RuntimeError::Config {
        path: path.clone(),
        msg: e.to_string(),
    })?;
    let spec: Spec = parse(&raw).map_err(|msg| RuntimeError::Config {
        path: path.clone(),
        msg,
    })?;
    let root = spec
        .root()
        .as_ref()
        .ok_or_else(|| RuntimeError::InvalidConfig("root is missing".into()))?;
    let rootfs = if root.path().is_absolute() {
        root.path().clone()
    } else {
        dir.join(root.path())
    };
    match std::fs::metadata(&rootfs) {
        Ok(m) if m.is_dir() => {}
        Ok(_) => {
            return Err(RuntimeError::InvalidConfig(format!(
                "root.path {} is not a directory",
                rootfs.display()
            )))
        }
        Err(e) => {
            return Err(RuntimeError::InvalidConfig(format!(
                "root.path {}: {e}",
                rootfs.display()
            )))
        }
    }
    validate(&spec)?;
    Ok(Bundle {
        dir,
        spec,
        raw,
        rootfs,
    })
}

pub fn parse(raw: &[u8]) -> std::result::Result<Spec, String> {
    serde_json::from_slice(raw).map_err(|e| e.to_string())
}

fn invalid(msg: impl Into<String>) -> RuntimeError {
    RuntimeError::InvalidConfig(msg.into())
}

/// Every check that can be made from the config alone, so a bad config fails before any
/// namespace, mount or cgroup exists.
pub fn validate(spec: &Spec) -> Result<()> {
    if !spec.version().starts_with("1.") {
        return Err(invalid(format!(
            "ociVersion {:?} is not supported (1.x expected)",
            spec.version()
        )));
    }
    let process = spec
        .process()
        .as_ref()
        .ok_or_else(|| invalid("process is missing"))?;
    if process.args().as_ref().is_none_or(|a| a.is_empty()) {
        return Err(invalid("process.args must name the program to run"));
    }
    if !process.cwd().is_absolute() {
        return Err(invalid(format!(
            "process.cwd {:?} must be an absolute path",
            process.cwd()
        )));
    }
    if process.scheduler().is_some() {
        return Err(RuntimeError::Unsupported("process.scheduler".into()));
    }
    if process.exec_cpu_affinity().is_some() {
        return Err(RuntimeError::Unsupported("process.execCPUAffinity".into()));
    }
    if process
        .apparmor_profile()
        .as_ref()
        .is_some_and(|p| !p.is_empty())
        && !apparmor_enabled()
    {
        return Err(invalid(
            "process.apparmorProfile is set but AppArmor is not enabled on this host",
        ));
    }
    let linux = spec
        .linux()
        .as_ref()
        .ok_or_else(|| invalid("linux is missing"))?;
    let namespaces = linux.namespaces().as_deref().unwrap_or_default();
    let mut seen = HashSet::new();
    for ns in namespaces {
        if !seen.insert(ns.typ()) {
            return Err(invalid(format!("namespace {} is listed twice", ns.typ())));
        }
        if let Some(path) = ns.path() {
            if !path.exists() {
                return Err(invalid(format!(
                    "namespace {} path {} does not exist",
                    ns.typ(),
                    path.display()
                )));
            }
        }
    }
    let new = |t| {
        namespaces
            .iter()
            .any(|n| n.typ() == t && n.path().is_none())
    };
    let has = |t| seen.contains(&t);
    if spec.hostname().as_ref().is_some_and(|h| !h.is_empty()) && !has(LinuxNamespaceType::Uts) {
        return Err(invalid("hostname needs the container's own uts namespace"));
    }
    if spec.domainname().as_ref().is_some_and(|h| !h.is_empty()) && !has(LinuxNamespaceType::Uts) {
        return Err(invalid(
            "domainname needs the container's own uts namespace",
        ));
    }
    let maps = linux.uid_mappings().as_ref().is_some_and(|m| !m.is_empty())
        || linux.gid_mappings().as_ref().is_some_and(|m| !m.is_empty());
    if new(LinuxNamespaceType::User) {
        if linux.uid_mappings().as_ref().is_none_or(|m| m.is_empty())
            || linux.gid_mappings().as_ref().is_none_or(|m| m.is_empty())
        {
            return Err(invalid(
                "a new user namespace needs linux.uidMappings and linux.gidMappings",
            ));
        }
    } else if maps {
        return Err(invalid(
            "linux.uidMappings/gidMappings need a new user namespace",
        ));
    }
    if linux.time_offsets().as_ref().is_some_and(|t| !t.is_empty()) {
        if !new(LinuxNamespaceType::Time) {
            return Err(invalid("linux.timeOffsets need a new time namespace"));
        }
        for clock in linux.time_offsets().iter().flat_map(|t| t.keys()) {
            if clock != "monotonic" && clock != "boottime" {
                return Err(invalid(format!(
                    "linux.timeOffsets: unknown clock {clock:?} (monotonic or boottime)"
                )));
            }
        }
    }
    for key in linux.sysctl().iter().flat_map(|s| s.keys()) {
        let ns = sysctl_namespace(key).ok_or_else(|| {
            invalid(format!(
                "sysctl {key:?} is not namespaced: it would change the host"
            ))
        })?;
        if !new(ns) && !has(ns) {
            return Err(invalid(format!(
                "sysctl {key:?} needs the container's own {ns} namespace"
            )));
        }
    }
    if let Some(seccomp) = linux.seccomp() {
        crate::security::seccomp::compile(seccomp)?;
    }
    if linux.intel_rdt().is_some() {
        return Err(RuntimeError::Unsupported("linux.intelRdt".into()));
    }
    if linux.memory_policy().is_some() {
        return Err(RuntimeError::Unsupported("linux.memoryPolicy".into()));
    }
    if linux.net_devices().as_ref().is_some_and(|d| !d.is_empty()) {
        return Err(RuntimeError::Unsupported("linux.netDevices".into()));
    }
    if linux.personality().is_some() {
        return Err(RuntimeError::Unsupported("linux.personality".into()));
    }
    if let Some(p) = linux.rootfs_propagation() {
        if !p.is_empty() && crate::rootfs::propagation_flag(p).is_none() {
            return Err(invalid(format!("linux.rootfsPropagation {p:?} is unknown")));
        }
    }
    for m in spec.mounts().as_deref().unwrap_or_default() {
        if !m.destination().is_absolute() {
            return Err(invalid(format!(
                "mount destination {:?} must be absolute",
                m.destination()
            )));
        }
        if m.uid_mappings().is_some() || m.gid_mappings().is_some() {
            return Err(RuntimeError::Unsupported(format!(
                "idmapped mount {}",
                m.destination().display()
            )));
        }
        crate::rootfs::MountOptions::parse(m.options().as_deref().unwrap_or_default()).map_err(
            |opt| {
                invalid(format!(
                    "mount {}: option {opt:?} is not supported",
                    m.destination().display()
                ))
            },
        )?;
    }
    Ok(())
}

/// Which namespace makes a sysctl private to the container (runc's table).
fn sysctl_namespace(key: &str) -> Option<LinuxNamespaceType> {
    const IPC: [&str; 8] = [
        "kernel.msgmax",
        "kernel.msgmnb",
        "kernel.msgmni",
        "kernel.sem",
        "kernel.shmall",
        "kernel.shmmax",
        "kernel.shmmni",
        "kernel.shm_rmid_forced",
    ];
    if IPC.contains(&key) || key.starts_with("fs.mqueue.") {
        Some(LinuxNamespaceType::Ipc)
    } else if key.starts_with("net.") {
        Some(LinuxNamespaceType::Network)
    } else if key == "kernel.hostname" || key == "kernel.domainname" {
        Some(LinuxNamespaceType::Uts)
    } else {
        None
    }
}

fn apparmor_enabled() -> bool {
    std::fs::read_to_string("/sys/module/apparmor/parameters/enabled")
        .map(|s| s.trim() == "Y")
        .unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(json: &str) -> Spec {
        parse(json.as_bytes()).expect("test spec parses")
    }

    const BASE: &str = r#"{"ociVersion":"1.0.2","root":{"path":"rootfs"},
        "process":{"args":["/bin/true"],"cwd":"/","user":{"uid":0,"gid":0}},
        "linux":{"namespaces":[{"type":"mount"},{"type":"pid"}]}"#;

    #[test]
    fn base_is_valid() {
        validate(&spec(&format!("{BASE}}}"))).expect("valid");
    }

    #[test]
    fn unknown_namespace_is_a_parse_error() {
        let bad = BASE.replace(r#"{"type":"pid"}"#, r#"{"type":"bogus"}"#);
        assert!(parse(format!("{bad}}}").as_bytes()).is_err());
    }

    #[test]
    fn hostname_needs_uts() {
        let err = validate(&spec(&format!(r#"{BASE},"hostname":"x"}}"#))).unwrap_err();
        assert!(err.to_string().contains("uts"), "{err}");
    }

    #[test]
    fn host_sysctl_refused() {
        let s = BASE.replace(
            r#""namespaces""#,
            r#""sysctl":{"vm.swappiness":"1"},"namespaces""#,
        );
        assert!(validate(&spec(&format!("{s}}}"))).is_err());
        let s = BASE.replace(
            r#""namespaces""#,
            r#""sysctl":{"net.ipv4.ip_forward":"1"},"namespaces""#,
        );
        let err = validate(&spec(&format!("{s}}}"))).unwrap_err();
        assert!(err.to_string().contains("net namespace"), "{err}");
    }

    #[test]
    fn mappings_need_userns() {
        let s = BASE.replace(
            r#""namespaces""#,
            r#""uidMappings":[{"containerID":0,"hostID":1000,"size":1}],"namespaces""#,
        );
        assert!(validate(&spec(&format!("{s}}}"))).is_err());
    }
}
