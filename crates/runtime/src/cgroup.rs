//! The runtime's use of the cgroups crate: where a container's cgroup is and how to open it.

use crate::error::Result;
use berth_cgroups::{CgroupConfig, CgroupManager};
use oci_spec::runtime::Spec;

pub fn config_for(spec: &Spec, id: &str) -> Result<CgroupConfig> {
    let path = spec
        .linux()
        .as_ref()
        .and_then(|l| l.cgroups_path().as_deref())
        .map(|p| p.to_string_lossy().into_owned());
    Ok(berth_cgroups::default_config(path.as_deref(), id)?)
}

pub fn open(config: &CgroupConfig) -> Result<Box<dyn CgroupManager>> {
    Ok(berth_cgroups::open(config.clone())?)
}

use oci_spec::runtime::{
    LinuxDeviceCgroup, LinuxDeviceCgroupBuilder, LinuxDeviceType, LinuxResources,
};

/// Device rules every container needs on top of config.json's (runc's AllowedDevices):
/// without them a "deny all" rule would take away /dev/null and the terminal.
const ALLOWED_DEVICES: &[(LinuxDeviceType, Option<i64>, Option<i64>, &str)] = &[
    (LinuxDeviceType::C, None, None, "m"),
    (LinuxDeviceType::B, None, None, "m"),
    (LinuxDeviceType::C, Some(1), Some(3), "rwm"),
    (LinuxDeviceType::C, Some(1), Some(8), "rwm"),
    (LinuxDeviceType::C, Some(1), Some(7), "rwm"),
    (LinuxDeviceType::C, Some(5), Some(0), "rwm"),
    (LinuxDeviceType::C, Some(1), Some(5), "rwm"),
    (LinuxDeviceType::C, Some(1), Some(9), "rwm"),
    (LinuxDeviceType::C, Some(5), Some(1), "rwm"),
    (LinuxDeviceType::C, Some(136), None, "rwm"),
    (LinuxDeviceType::C, Some(5), Some(2), "rwm"),
    (LinuxDeviceType::C, Some(10), Some(200), "rwm"),
];

fn rule(
    typ: LinuxDeviceType,
    major: Option<i64>,
    minor: Option<i64>,
    access: &str,
) -> Option<LinuxDeviceCgroup> {
    let mut b = LinuxDeviceCgroupBuilder::default()
        .allow(true)
        .typ(typ)
        .access(access);
    if let Some(m) = major {
        b = b.major(m);
    }
    if let Some(m) = minor {
        b = b.minor(m);
    }
    b.build().ok()
}

/// The resources to write: config.json's, with device rules completed as runc does — the
/// config's rules, then the always-allowed devices, then each of `linux.devices`.
pub fn effective_resources(spec: &Spec) -> Option<LinuxResources> {
    let linux = spec.linux().as_ref()?;
    let mut res = linux.resources().clone()?;
    let Some(user_rules) = res.devices().clone() else {
        return Some(res);
    };
    let mut rules = user_rules;
    rules.extend(
        ALLOWED_DEVICES
            .iter()
            .filter_map(|(t, maj, min, acc)| rule(*t, *maj, *min, acc)),
    );
    for d in linux.devices().iter().flatten() {
        // Fifos aren't devices to the cgroup; "u" (unbuffered) is a character device.
        let typ = match d.typ() {
            LinuxDeviceType::P => continue,
            LinuxDeviceType::U => LinuxDeviceType::C,
            t => t,
        };
        if let Some(r) = rule(typ, Some(d.major()), Some(d.minor()), "rwm") {
            rules.push(r);
        }
    }
    res.set_devices(Some(rules));
    Some(res)
}

/// The resources config.json asks for, by their config.json names, leaving out device
/// rules: without root they can't be enforced and are skipped, as runc does.
pub fn requested_resources(spec: &Spec) -> Vec<String> {
    let Some(res) = spec.linux().as_ref().and_then(|l| l.resources().as_ref()) else {
        return Vec::new();
    };
    match serde_json::to_value(res) {
        Ok(serde_json::Value::Object(map)) => map
            .into_iter()
            .filter(|(k, v)| k != "devices" && !v.is_null())
            .filter(|(_, v)| !matches!(v, serde_json::Value::Object(o) if o.is_empty()))
            .filter(|(_, v)| !matches!(v, serde_json::Value::Array(a) if a.is_empty()))
            .map(|(k, _)| format!("linux.resources.{k}"))
            .collect(),
        _ => Vec::new(),
    }
}

/// Whether a cgroup operation failed for want of permission (or a read-only cgroupfs).
pub fn is_permission_error(e: &berth_cgroups::CgroupError) -> bool {
    use berth_cgroups::CgroupError as E;
    let io = match e {
        E::Create { source, .. }
        | E::Write { source, .. }
        | E::Remove { source, .. }
        | E::Sys { source, .. } => source,
        _ => return false,
    };
    io.kind() == std::io::ErrorKind::PermissionDenied
        || matches!(
            io.raw_os_error(),
            Some(libc::EROFS | libc::EPERM | libc::EACCES)
        )
}

/// Without root: the error for a cgroup we can't create or write although resources need it.
pub fn rootless_error(spec: &Spec, e: berth_cgroups::CgroupError) -> crate::error::RuntimeError {
    crate::error::RuntimeError::InvalidConfig(format!(
        "running without root, {} need a cgroup this user can write, but: {e} \
         (remove them from config.json, or delegate a cgroup and name it in linux.cgroupsPath)",
        requested_resources(spec).join(", ")
    ))
}

/// A descriptor of the container's unified (v2) cgroup directory, for cloning straight into
/// it (CLONE_INTO_CGROUP); `None` on v1-only hosts or when it can't be opened.
pub fn unified_dir_fd(manager: Option<&dyn CgroupManager>) -> Option<std::os::fd::OwnedFd> {
    let dir = manager?.unified_dir()?;
    nix::fcntl::open(
        &dir,
        nix::fcntl::OFlag::O_RDONLY | nix::fcntl::OFlag::O_DIRECTORY | nix::fcntl::OFlag::O_CLOEXEC,
        nix::sys::stat::Mode::empty(),
    )
    .ok()
}
