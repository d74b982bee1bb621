//! Seccomp profiles: berth's default, and `--security-opt seccomp=PATH` files in docker's
//! profile format (the OCI `linux.seccomp` shape plus `archMap` and per-rule
//! `includes`/`excludes` on capabilities, architectures and kernel versions).
//!
//! The default is a deny list, not docker's allow list of ~370 syscalls: it returns EPERM
//! for the syscalls docker's profile keeps from a default container (kernel modules,
//! keyrings, mount and namespace creation, clock setting, reboot, kexec, BPF, perf, ...) and
//! lets the rest through. A syscall is let through again when the container holds the
//! capability docker's profile ties it to (`--cap-add SYS_ADMIN` allows mount/unshare, as
//! in docker). Syscalls newer than the host's libseccomp can't be named in a filter, and
//! berth-runtime refuses unknown names, so a deny list stays loadable where an allow list
//! would have to track libseccomp's table. Differences from docker: syscalls docker lacks
//! in its list (new or exotic ones) are allowed here rather than denied, and personality(2)
//! is not restricted to docker's five personas.

use crate::error::{Error, Result};
use serde_json::{json, Value};
use std::path::Path;

const CLONE_NAMESPACE_FLAGS: &[u64] = &[
    0x0002_0000, // CLONE_NEWNS
    0x0200_0000, // CLONE_NEWCGROUP
    0x0400_0000, // CLONE_NEWUTS
    0x0800_0000, // CLONE_NEWIPC
    0x1000_0000, // CLONE_NEWUSER
    0x2000_0000, // CLONE_NEWPID
    0x4000_0000, // CLONE_NEWNET
];

/// (syscalls, capabilities that allow them) — an empty capability list: denied always.
const DENIED: &[(&[&str], &[&str])] = &[
    (
        &[
            "add_key",
            "keyctl",
            "request_key",
            "create_module",
            "get_kernel_syms",
            "query_module",
            "nfsservctl",
            "uselib",
            "ustat",
            "_sysctl",
            "sysfs",
            "userfaultfd",
        ],
        &[],
    ),
    (
        &[
            "mount",
            "umount2",
            "pivot_root",
            "unshare",
            "setns",
            "fsopen",
            "fsconfig",
            "fsmount",
            "fspick",
            "move_mount",
            "open_tree",
            "mount_setattr",
            "lookup_dcookie",
            "quotactl",
            "quotactl_fd",
            "swapon",
            "swapoff",
            "setdomainname",
            "sethostname",
            "fanotify_init",
            "name_to_handle_at",
        ],
        &["CAP_SYS_ADMIN"],
    ),
    (&["bpf"], &["CAP_SYS_ADMIN", "CAP_BPF"]),
    (&["perf_event_open"], &["CAP_SYS_ADMIN", "CAP_PERFMON"]),
    (&["open_by_handle_at"], &["CAP_DAC_READ_SEARCH"]),
    (
        &["init_module", "finit_module", "delete_module"],
        &["CAP_SYS_MODULE"],
    ),
    (
        &["reboot", "kexec_load", "kexec_file_load"],
        &["CAP_SYS_BOOT"],
    ),
    (
        &["clock_settime", "clock_adjtime", "settimeofday"],
        &["CAP_SYS_TIME"],
    ),
    (&["acct"], &["CAP_SYS_PACCT"]),
    (&["iopl", "ioperm"], &["CAP_SYS_RAWIO"]),
    (&["syslog"], &["CAP_SYSLOG", "CAP_SYS_ADMIN"]),
    (
        &["get_mempolicy", "mbind", "set_mempolicy", "move_pages"],
        &["CAP_SYS_NICE"],
    ),
    (&["vhangup"], &["CAP_SYS_TTY_CONFIG"]),
];

fn architectures() -> Value {
    if cfg!(target_arch = "x86_64") {
        json!(["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"])
    } else if cfg!(target_arch = "aarch64") {
        json!(["SCMP_ARCH_AARCH64", "SCMP_ARCH_ARM"])
    } else {
        json!([])
    }
}

/// The default profile for a container holding `caps` (its bounding set).
pub fn default_profile(caps: &[String]) -> Value {
    let holds = |c: &&str| caps.iter().any(|have| have == c);
    let mut syscalls = Vec::new();
    for (names, allowed_by) in DENIED {
        if allowed_by.iter().any(holds) {
            continue;
        }
        syscalls.push(json!({"names": names, "action": "SCMP_ACT_ERRNO", "errnoRet": 1}));
    }
    if !caps.iter().any(|c| c == "CAP_SYS_ADMIN") {
        // New namespaces: clone with any CLONE_NEW* flag fails with EPERM. clone3 passes its
        // flags in memory a filter can't read, so it fails with ENOSYS and libc falls back
        // to clone (docker's profile does the same).
        for flag in CLONE_NAMESPACE_FLAGS {
            syscalls.push(json!({
                "names": ["clone"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1,
                "args": [{"index": 0, "value": flag, "valueTwo": flag, "op": "SCMP_CMP_MASKED_EQ"}],
            }));
        }
        syscalls.push(json!({"names": ["clone3"], "action": "SCMP_ACT_ERRNO", "errnoRet": 38}));
    }
    json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "architectures": architectures(),
        "syscalls": syscalls,
    })
}

fn kernel_version() -> (u32, u32) {
    let release = nix::sys::utsname::uname()
        .map(|u| u.release().to_string_lossy().into_owned())
        .unwrap_or_default();
    let mut parts = release
        .split(|c: char| !c.is_ascii_digit())
        .filter_map(|p| p.parse::<u32>().ok());
    (parts.next().unwrap_or(0), parts.next().unwrap_or(0))
}

fn native_arch() -> &'static str {
    if cfg!(target_arch = "x86_64") {
        "SCMP_ARCH_X86_64"
    } else if cfg!(target_arch = "aarch64") {
        "SCMP_ARCH_AARCH64"
    } else {
        ""
    }
}

/// Whether a rule's `includes`/`excludes` select it for this container.
fn rule_applies(rule: &Value, caps: &[String]) -> bool {
    let strings = |v: &Value| -> Vec<String> {
        v.as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|s| s.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default()
    };
    let arch = native_arch();
    let inc = &rule["includes"];
    let inc_caps = strings(&inc["caps"]);
    if !inc_caps.is_empty() && !inc_caps.iter().any(|c| caps.contains(c)) {
        return false;
    }
    let inc_arches = strings(&inc["arches"]);
    if !inc_arches.is_empty() && !inc_arches.iter().any(|a| a == arch) {
        return false;
    }
    if let Some(min) = inc["minKernel"].as_str() {
        let mut p = min.split('.').filter_map(|x| x.parse::<u32>().ok());
        let want = (p.next().unwrap_or(0), p.next().unwrap_or(0));
        if kernel_version() < want {
            return false;
        }
    }
    let exc = &rule["excludes"];
    if strings(&exc["caps"]).iter().any(|c| caps.contains(c)) {
        return false;
    }
    if strings(&exc["arches"]).iter().any(|a| a == arch) {
        return false;
    }
    true
}

/// Reads a profile file (docker's format or plain OCI) for a container holding `caps` and
/// returns the OCI `linux.seccomp` object.
pub fn load_profile(path: &Path, caps: &[String]) -> Result<Value> {
    let bad = |reason: String| {
        Error::InvalidOption(format!(
            "opening seccomp profile ({}) failed: {reason}",
            path.display()
        ))
    };
    let text = std::fs::read_to_string(path).map_err(|e| bad(e.to_string()))?;
    let profile: Value = serde_json::from_str(&text).map_err(|e| bad(e.to_string()))?;
    if !profile["defaultAction"].is_string() {
        return Err(bad("no defaultAction".into()));
    }
    let mut out = json!({"defaultAction": profile["defaultAction"]});
    if let Some(e) = profile.get("defaultErrnoRet") {
        out["defaultErrnoRet"] = e.clone();
    }
    if let Some(flags) = profile.get("flags") {
        out["flags"] = flags.clone();
    }
    // archMap: the native architecture and its sub-architectures.
    let mut arches: Vec<Value> = profile["architectures"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    for entry in profile["archMap"].as_array().into_iter().flatten() {
        if entry["architecture"] == native_arch() {
            arches.push(entry["architecture"].clone());
            arches.extend(
                entry["subArchitectures"]
                    .as_array()
                    .cloned()
                    .unwrap_or_default(),
            );
        }
    }
    if !arches.is_empty() {
        out["architectures"] = Value::Array(arches);
    }
    let mut syscalls = Vec::new();
    for rule in profile["syscalls"].as_array().into_iter().flatten() {
        if !rule_applies(rule, caps) {
            continue;
        }
        let mut names: Vec<Value> = rule["names"].as_array().cloned().unwrap_or_default();
        if let Some(name) = rule.get("name").filter(|n| n.is_string()) {
            names.push(name.clone());
        }
        if names.is_empty() {
            return Err(bad("a syscall rule has no names".into()));
        }
        let mut r = json!({"names": names, "action": rule["action"]});
        for key in ["errnoRet", "args"] {
            if let Some(v) = rule.get(key).filter(|v| !v.is_null()) {
                r[key] = v.clone();
            }
        }
        syscalls.push(r);
    }
    out["syscalls"] = Value::Array(syscalls);
    // Checked here so a bad file is reported as such, not as a broken spec.
    serde_json::from_value::<oci_spec::runtime::LinuxSeccomp>(out.clone())
        .map_err(|e| bad(e.to_string()))?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn denied(profile: &Value) -> Vec<String> {
        profile["syscalls"]
            .as_array()
            .unwrap()
            .iter()
            .flat_map(|r| r["names"].as_array().unwrap().clone())
            .map(|n| n.as_str().unwrap().to_string())
            .collect()
    }

    #[test]
    fn default_denies_dangerous_calls_unless_capable() {
        let p = default_profile(&["CAP_CHOWN".into()]);
        let d = denied(&p);
        for s in [
            "mount", "unshare", "keyctl", "bpf", "reboot", "clone", "clone3",
        ] {
            assert!(d.contains(&s.to_string()), "{s}");
        }
        assert!(!d.contains(&"read".to_string()));
        let p = default_profile(&["CAP_SYS_ADMIN".into()]);
        let d = denied(&p);
        assert!(!d.contains(&"mount".to_string()) && !d.contains(&"clone".to_string()));
        assert!(d.contains(&"keyctl".to_string()) && d.contains(&"reboot".to_string()));
        serde_json::from_value::<oci_spec::runtime::LinuxSeccomp>(p).unwrap();
    }

    #[test]
    fn docker_format_profiles_are_converted() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("p.json");
        std::fs::write(
            &path,
            r#"{"defaultAction":"SCMP_ACT_ERRNO","defaultErrnoRet":1,
                "archMap":[{"architecture":"SCMP_ARCH_X86_64","subArchitectures":["SCMP_ARCH_X86"]},
                           {"architecture":"SCMP_ARCH_AARCH64","subArchitectures":["SCMP_ARCH_ARM"]}],
                "syscalls":[{"names":["read","write"],"action":"SCMP_ACT_ALLOW"},
                            {"names":["mount"],"action":"SCMP_ACT_ALLOW","includes":{"caps":["CAP_SYS_ADMIN"]}},
                            {"names":["getpid"],"action":"SCMP_ACT_ALLOW","excludes":{"caps":["CAP_KILL"]}}]}"#,
        )
        .unwrap();
        let p = load_profile(&path, &["CAP_KILL".into()]).unwrap();
        assert_eq!(denied(&p), ["read", "write"]);
        if cfg!(target_arch = "x86_64") {
            assert_eq!(
                p["architectures"],
                json!(["SCMP_ARCH_X86_64", "SCMP_ARCH_X86"])
            );
        }
        let p = load_profile(&path, &["CAP_SYS_ADMIN".into()]).unwrap();
        assert_eq!(denied(&p), ["read", "write", "mount", "getpid"]);
        std::fs::write(&path, "{").unwrap();
        assert!(load_profile(&path, &[])
            .unwrap_err()
            .to_string()
            .contains("seccomp profile"));
        assert!(load_profile(&dir.path().join("missing"), &[]).is_err());
    }
}
