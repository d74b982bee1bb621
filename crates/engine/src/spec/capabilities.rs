//! The capability set of a container: docker's default set tweaked by `--cap-add` and
//! `--cap-drop` (moby's caps.TweakCapabilities).

use crate::error::{Error, Result};

/// docker's default capabilities (moby's caps.DefaultCapabilities), in its order.
pub const DEFAULT_CAPABILITIES: &[&str] = &[
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_FSETID",
    "CAP_FOWNER",
    "CAP_MKNOD",
    "CAP_NET_RAW",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETFCAP",
    "CAP_SETPCAP",
    "CAP_NET_BIND_SERVICE",
    "CAP_SYS_CHROOT",
    "CAP_KILL",
    "CAP_AUDIT_WRITE",
];

/// Every capability by number (capability.h), so "ALL" can be limited to what the kernel
/// and our own bounding set have.
const ALL_CAPABILITIES: &[&str] = &[
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

/// "net_admin", "NET_ADMIN", "CAP_NET_ADMIN" -> "CAP_NET_ADMIN"; "all" -> "ALL"; an unknown
/// name is docker's error.
pub fn normalize_capability(name: &str) -> Result<String> {
    let upper = name.trim().to_ascii_uppercase();
    if upper == "ALL" {
        return Ok(upper);
    }
    let full = if upper.starts_with("CAP_") {
        upper
    } else {
        format!("CAP_{upper}")
    };
    if ALL_CAPABILITIES.contains(&full.as_str()) {
        Ok(full)
    } else {
        Err(Error::InvalidOption(format!(
            "unknown capability: {name:?}"
        )))
    }
}

/// The capabilities "ALL" means here: those the kernel knows and this process may still
/// hand out (its bounding set; e.g. CI lacks CAP_SYS_RESOURCE, which no container could
/// then get).
fn available_capabilities() -> Vec<&'static str> {
    let last = std::fs::read_to_string("/proc/sys/kernel/cap_last_cap")
        .ok()
        .and_then(|s| s.trim().parse::<usize>().ok())
        .unwrap_or(ALL_CAPABILITIES.len() - 1);
    let bounding = std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("CapBnd:"))
                .and_then(|v| u64::from_str_radix(v.trim(), 16).ok())
        })
        .unwrap_or(u64::MAX);
    ALL_CAPABILITIES
        .iter()
        .enumerate()
        .filter(|(bit, _)| *bit <= last && bounding & (1u64 << bit) != 0)
        .map(|(_, name)| *name)
        .collect()
}

/// docker's default set with `add` and `drop` applied: "ALL" in `add` starts from every
/// available capability, "ALL" in `drop` from none; otherwise drops, then adds.
pub fn capability_set(add: &[String], drop: &[String]) -> Result<Vec<String>> {
    let add: Vec<String> = add
        .iter()
        .map(|c| normalize_capability(c))
        .collect::<Result<_>>()?;
    let drop: Vec<String> = drop
        .iter()
        .map(|c| normalize_capability(c))
        .collect::<Result<_>>()?;
    let has_all = |v: &[String]| v.iter().any(|c| c == "ALL");

    let mut set: Vec<String> = if has_all(&add) {
        available_capabilities()
            .into_iter()
            .map(String::from)
            .collect()
    } else if has_all(&drop) {
        Vec::new()
    } else {
        DEFAULT_CAPABILITIES.iter().map(|c| c.to_string()).collect()
    };
    set.retain(|c| !drop.contains(c));
    if !has_all(&add) {
        for c in add {
            if !set.contains(&c) {
                set.push(c);
            }
        }
    }
    Ok(set)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(s: &[&str]) -> Vec<String> {
        s.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn names_are_normalized() {
        assert_eq!(normalize_capability("net_admin").unwrap(), "CAP_NET_ADMIN");
        assert_eq!(
            normalize_capability("CAP_SYS_ADMIN").unwrap(),
            "CAP_SYS_ADMIN"
        );
        assert_eq!(normalize_capability("all").unwrap(), "ALL");
        assert_eq!(
            normalize_capability("FLY").unwrap_err().to_string(),
            "unknown capability: \"FLY\""
        );
    }

    #[test]
    fn add_and_drop() {
        let s = capability_set(&v(&["NET_ADMIN"]), &v(&["chown", "CAP_KILL"])).unwrap();
        assert_eq!(s.len(), 13);
        assert!(s.contains(&"CAP_NET_ADMIN".into()) && !s.contains(&"CAP_CHOWN".into()));
        let s = capability_set(&v(&["SYS_ADMIN"]), &v(&["ALL"])).unwrap();
        assert_eq!(s, v(&["CAP_SYS_ADMIN"]));
        let s = capability_set(&v(&["ALL"]), &v(&["NET_RAW"])).unwrap();
        assert!(s.len() > 30 && !s.contains(&"CAP_NET_RAW".into()));
        assert!(s.contains(&"CAP_SYS_ADMIN".into()));
        assert!(capability_set(&v(&["NOPE"]), &[]).is_err());
    }
}
