//! Where a container's cgroup lives: `linux.cgroupsPath` resolved into [`CgroupConfig`].

use crate::CgroupError;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Component, Path, PathBuf};

/// The parent of containers' cgroups when config.json gives no `linux.cgroupsPath`.
pub const DEFAULT_PARENT: &str = "/berth";

/// Where a container's cgroup lives, as stored in the runtime's state so that later
/// invocations (`kill --all`, `delete`, `pause`, `ps`) reopen the same cgroup.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct CgroupConfig {
    /// The absolute cgroup path, e.g. `/berth/<id>`, used in every hierarchy not listed in
    /// `paths`.
    pub path: PathBuf,
    /// Per-hierarchy exceptions, keyed by v1 controller (`memory`, `name=systemd`) or `""`
    /// for the unified hierarchy. Only a relative `cgroupsPath` makes these: it is resolved
    /// against the runtime's own cgroup in each hierarchy, which may differ between them.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub paths: BTreeMap<String, PathBuf>,
}

impl CgroupConfig {
    /// A config using one absolute cgroup path everywhere. The path is cleaned; the root
    /// cgroup is refused.
    pub fn new(path: impl AsRef<Path>) -> Result<Self, CgroupError> {
        let p = path.as_ref();
        let raw = p.to_string_lossy();
        if !p.is_absolute() {
            return Err(CgroupError::Path {
                path: raw.into_owned(),
                reason: "must be absolute".into(),
            });
        }
        Ok(CgroupConfig {
            path: clean_nonroot(&raw)?,
            paths: BTreeMap::new(),
        })
    }

    /// The cgroup path for the hierarchy holding `controllers` (`&[""]` for the unified
    /// one).
    pub fn path_for<S: AsRef<str>>(&self, controllers: &[S]) -> &Path {
        controllers
            .iter()
            .find_map(|c| self.paths.get(c.as_ref()))
            .unwrap_or(&self.path)
    }

    /// Checks a config read back from state: every path absolute with no `.`/`..`.
    pub fn validate(&self) -> Result<(), CgroupError> {
        for p in std::iter::once(&self.path).chain(self.paths.values()) {
            let ok = p.is_absolute()
                && p.components()
                    .skip(1)
                    .all(|c| matches!(c, Component::Normal(_)))
                && p.components().count() > 1;
            if !ok {
                return Err(CgroupError::Path {
                    path: p.to_string_lossy().into_owned(),
                    reason: "must be an absolute, clean path below the root cgroup".into(),
                });
            }
        }
        Ok(())
    }
}

/// The cgroup config for a container from `linux.cgroupsPath` and its id:
/// - absent: `/berth/<id>` ([`DEFAULT_PARENT`]);
/// - absolute: that path (cleaned, `..` cannot climb above the root);
/// - relative: below this process's own cgroup in each hierarchy (read from
///   `/proc/self/cgroup`), as runc does;
/// - `slice:prefix:name`: [`CgroupError::Systemd`].
pub fn default_config(cgroups_path: Option<&str>, id: &str) -> Result<CgroupConfig, CgroupError> {
    let needs_self = matches!(cgroups_path, Some(p) if !p.is_empty() && !p.starts_with('/'));
    let own = if needs_self {
        crate::fsutil::read_path(Path::new("/proc/self/cgroup"))?
    } else {
        String::new()
    };
    resolve_config(cgroups_path, id, &own)
}

/// [`default_config`] with `/proc/self/cgroup`'s text given (pure; for tests).
pub fn resolve_config(
    cgroups_path: Option<&str>,
    id: &str,
    proc_self_cgroup: &str,
) -> Result<CgroupConfig, CgroupError> {
    let bad_id = id.is_empty() || id.contains('/') || id == "." || id == "..";
    match cgroups_path {
        None | Some("") => {
            if bad_id {
                return Err(CgroupError::Path {
                    path: id.to_string(),
                    reason: "the container id cannot name a cgroup".into(),
                });
            }
            CgroupConfig::new(format!("{DEFAULT_PARENT}/{id}"))
        }
        Some(p) if p.starts_with('/') => CgroupConfig::new(p),
        Some(p) if p.split(':').count() == 3 => Err(CgroupError::Systemd(p.to_string())),
        Some(rel) => {
            let mut own: Vec<(Vec<String>, String)> = Vec::new();
            for line in proc_self_cgroup.lines() {
                let mut parts = line.splitn(3, ':');
                let (Some(_), Some(ctrls), Some(path)) = (parts.next(), parts.next(), parts.next())
                else {
                    continue;
                };
                let keys = if ctrls.is_empty() {
                    vec![String::new()]
                } else {
                    ctrls.split(',').map(str::to_string).collect()
                };
                own.push((keys, path.to_string()));
            }
            if own.is_empty() {
                return Err(CgroupError::Path {
                    path: rel.to_string(),
                    reason: "relative, and /proc/self/cgroup lists no cgroup".into(),
                });
            }
            let main = own
                .iter()
                .find(|(k, _)| k.len() == 1 && k[0].is_empty())
                .unwrap_or(&own[0]);
            let path = clean_nonroot(&format!("{}/{rel}", main.1))?;
            let mut paths = BTreeMap::new();
            for (keys, base) in &own {
                let p = clean_nonroot(&format!("{base}/{rel}"))?;
                if p != path {
                    for k in keys {
                        paths.insert(k.clone(), p.clone());
                    }
                }
            }
            Ok(CgroupConfig { path, paths })
        }
    }
}

/// Lexically cleans a path into an absolute one (`.` dropped, `..` pops and cannot climb
/// above `/`); the root itself is refused.
fn clean_nonroot(p: &str) -> Result<PathBuf, CgroupError> {
    let mut parts: Vec<&str> = Vec::new();
    for c in p.split('/') {
        match c {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            c => parts.push(c),
        }
    }
    if parts.is_empty() {
        return Err(CgroupError::Path {
            path: p.to_string(),
            reason: "names the root cgroup".into(),
        });
    }
    Ok(PathBuf::from(format!("/{}", parts.join("/"))))
}

#[cfg(test)]
mod tests {
    use super::*;

    const HYBRID_SELF: &str = "\
9:name=systemd:/user.slice
4:memory:/process_api/abc
2:cpu,cpuacct:/
0::/user.slice
";

    #[test]
    fn absent_uses_default_parent() {
        let c = resolve_config(None, "ctr1", "").unwrap();
        assert_eq!(c.path, PathBuf::from("/berth/ctr1"));
        assert!(c.paths.is_empty());
        assert!(resolve_config(None, "../x", "").is_err());
        assert!(resolve_config(Some(""), "..", "").is_err());
    }

    #[test]
    fn absolute_is_cleaned() {
        let c = resolve_config(Some("/a/./b/../c//d"), "x", "").unwrap();
        assert_eq!(c.path, PathBuf::from("/a/c/d"));
        let c = resolve_config(Some("/../../etc"), "x", "").unwrap();
        assert_eq!(c.path, PathBuf::from("/etc"));
        assert!(resolve_config(Some("/"), "x", "").is_err());
        assert!(resolve_config(Some("/a/.."), "x", "").is_err());
    }

    #[test]
    fn relative_is_below_own_cgroup_per_hierarchy() {
        let c = resolve_config(Some("ctr/x"), "x", HYBRID_SELF).unwrap();
        assert_eq!(c.path, PathBuf::from("/user.slice/ctr/x"));
        assert_eq!(c.path_for(&[""]), Path::new("/user.slice/ctr/x"));
        assert_eq!(
            c.path_for(&["name=systemd"]),
            Path::new("/user.slice/ctr/x")
        );
        assert_eq!(c.path_for(&["memory"]), Path::new("/process_api/abc/ctr/x"));
        assert_eq!(c.path_for(&["cpu", "cpuacct"]), Path::new("/ctr/x"));
        let c = resolve_config(Some("../../../x"), "x", "0::/a\n").unwrap();
        assert_eq!(c.path, PathBuf::from("/x"));
        c.validate().unwrap();
    }

    #[test]
    fn systemd_form_is_refused() {
        let e = resolve_config(Some("system.slice:docker:abc"), "abc", "0::/\n").unwrap_err();
        assert!(matches!(e, CgroupError::Systemd(_)));
        assert!(e.to_string().contains("systemd"));
    }

    #[test]
    fn serde_roundtrip_keeps_old_shape() {
        let c = CgroupConfig::new("/berth/a").unwrap();
        let j = serde_json::to_string(&c).unwrap();
        assert_eq!(j, r#"{"path":"/berth/a"}"#);
        let back: CgroupConfig = serde_json::from_str(&j).unwrap();
        assert_eq!(back, c);
        let bad = CgroupConfig {
            path: "/a/../b".into(),
            paths: BTreeMap::new(),
        };
        assert!(bad.validate().is_err());
    }
}
