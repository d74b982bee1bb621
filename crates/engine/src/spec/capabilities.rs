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

/// "net_admin", "NET_ADMIN", "CAP_NET_ADMIN" -> "CAP_NET_ADMIN"; "all" -> "ALL"; an unknown
/// name is docker's error.
pub fn normalize_capability(name: &str) -> Result<String> {
    let full = caps::to_canonical(name.trim());
    if full == "CAP_ALL" {
        return Ok("ALL".into());
    }
    full.parse::<caps::Capability>()
        .map(|c| c.to_string())
        .map_err(|_| Error::InvalidOption(format!("unknown capability: {name:?}")))
}

/// The capabilities "ALL" means here: those the kernel knows that this process may still
/// hand out (its bounding set; e.g. CI lacks CAP_SYS_RESOURCE, which no container could
/// then get), in number order.
fn available_capabilities() -> Vec<String> {
    let mut set: Vec<caps::Capability> = caps::read(None, caps::CapSet::Bounding)
        .unwrap_or_else(|_| caps::runtime::thread_all_supported())
        .into_iter()
        .collect();
    set.sort_by_key(|c| c.index());
    set.into_iter().map(|c| c.to_string()).collect()
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
