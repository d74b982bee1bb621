//! Finding the cgroup hierarchies of this host from `/proc/self/mountinfo`.

use crate::CgroupError;
use std::path::{Path, PathBuf};

/// One mounted cgroup v1 hierarchy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct V1Hierarchy {
    /// Where it is mounted, e.g. `/sys/fs/cgroup/memory`.
    pub mount_point: PathBuf,
    /// The cgroup mounted there (mountinfo's 4th field), `/` unless bind-mounted or seen
    /// from a cgroup namespace.
    pub root: String,
    /// Its controllers, e.g. `["cpu", "cpuacct"]`, or `["name=systemd"]` for a named one.
    pub controllers: Vec<String>,
}

impl V1Hierarchy {
    /// Whether `controller` is one of this hierarchy's.
    pub fn has(&self, controller: &str) -> bool {
        self.controllers.iter().any(|c| c == controller)
    }
}

/// The cgroup mounts found in one mountinfo text.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CgroupMounts {
    /// The v1 hierarchies, each once (the first mount of each set of controllers).
    pub v1: Vec<V1Hierarchy>,
    /// The first cgroup2 mount: (mount point, root).
    pub unified: Option<(PathBuf, String)>,
}

/// Mount options of cgroup v1 that are not controllers.
const NOT_CONTROLLERS: &[&str] = &[
    "rw",
    "ro",
    "noprefix",
    "clone_children",
    "xattr",
    "cpuset_v2_mode",
    "favordynmods",
    "nofavordynmods",
    "nsdelegate",
];

/// Parses mountinfo text (see proc(5)); lines that are not cgroup mounts are skipped.
pub fn parse_mountinfo(text: &str) -> CgroupMounts {
    let mut out = CgroupMounts::default();
    for line in text.lines() {
        let Some((left, right)) = line.split_once(" - ") else {
            continue;
        };
        let fields: Vec<&str> = left.split(' ').collect();
        let mut r = right.split(' ');
        let (Some(fstype), Some(_source), Some(super_opts)) = (r.next(), r.next(), r.next()) else {
            continue;
        };
        if fields.len() < 5 {
            continue;
        }
        let root = unescape(fields[3]);
        let mount_point = PathBuf::from(unescape(fields[4]));
        match fstype {
            "cgroup2" if out.unified.is_none() => out.unified = Some((mount_point, root)),
            "cgroup" => {
                let mut controllers: Vec<String> = super_opts
                    .split(',')
                    .filter(|o| !NOT_CONTROLLERS.contains(o))
                    .filter(|o| !o.contains('=') || o.starts_with("name="))
                    .map(str::to_string)
                    .collect();
                controllers.sort();
                if controllers.is_empty() || out.v1.iter().any(|h| h.controllers == controllers) {
                    continue;
                }
                out.v1.push(V1Hierarchy {
                    mount_point,
                    root,
                    controllers,
                });
            }
            _ => {}
        }
    }
    out
}

/// Undoes mountinfo's octal escapes (`\040` for a space ...).
fn unescape(s: &str) -> String {
    if !s.contains('\\') {
        return s.to_string();
    }
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\'
            && i + 3 < b.len()
            && b[i + 1..i + 4].iter().all(|c| (b'0'..=b'7').contains(c))
        {
            let v = (b[i + 1] - b'0') * 64 + (b[i + 2] - b'0') * 8 + (b[i + 3] - b'0');
            out.push(v);
            i += 4;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Joins an absolute cgroup path onto a hierarchy mounted at `mount_point` whose root is
/// `root` (`/` normally).
pub(crate) fn join(mount_point: &Path, root: &str, cgroup: &Path) -> PathBuf {
    let rel = cgroup.strip_prefix("/").unwrap_or(cgroup);
    if root != "/" {
        if let Ok(below) = cgroup.strip_prefix(root) {
            return mount_point.join(below);
        }
    }
    mount_point.join(rel)
}

/// The cgroup layout of a host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Layout {
    /// Only cgroup v1 hierarchies.
    V1 {
        /// The mounted hierarchies.
        hierarchies: Vec<V1Hierarchy>,
    },
    /// Only the unified hierarchy (cgroup v2).
    V2 {
        /// Where it is mounted (`/sys/fs/cgroup` normally).
        mount_point: PathBuf,
    },
    /// v1 hierarchies for the controllers plus a cgroup2 mount (systemd's "hybrid" mode).
    Hybrid {
        /// The mounted v1 hierarchies.
        hierarchies: Vec<V1Hierarchy>,
        /// Where the unified hierarchy is mounted (`/sys/fs/cgroup/unified` normally).
        unified: PathBuf,
    },
}

/// Which of the three layouts, without the details.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LayoutKind {
    /// cgroup v1 only.
    V1,
    /// cgroup v2 only.
    V2,
    /// v1 controllers plus the unified hierarchy.
    Hybrid,
}

impl Layout {
    /// Detects the layout of this host: `statfs(/sys/fs/cgroup)` says cgroup2 => pure v2;
    /// otherwise the cgroup mounts of `/proc/self/mountinfo` decide.
    pub fn detect() -> Result<Layout, CgroupError> {
        const ROOT: &str = "/sys/fs/cgroup";
        if let Ok(st) = nix::sys::statfs::statfs(ROOT) {
            if st.filesystem_type() == nix::sys::statfs::CGROUP2_SUPER_MAGIC {
                return Ok(Layout::V2 {
                    mount_point: PathBuf::from(ROOT),
                });
            }
        }
        let path = Path::new("/proc/self/mountinfo");
        let text = crate::fsutil::read_with_capacity(path, 64 * 1024).map_err(|source| {
            CgroupError::Read {
                path: path.to_path_buf(),
                source,
            }
        })?;
        Self::from_mounts(parse_mountinfo(&text))
    }

    /// The layout that the given mounts make.
    pub fn from_mounts(m: CgroupMounts) -> Result<Layout, CgroupError> {
        match (m.v1.is_empty(), m.unified) {
            (true, None) => Err(CgroupError::NoCgroupFs(
                "/proc/self/mountinfo lists no cgroup or cgroup2 mount".into(),
            )),
            (true, Some((mount_point, _))) => Ok(Layout::V2 { mount_point }),
            (false, None) => Ok(Layout::V1 { hierarchies: m.v1 }),
            (false, Some((unified, _))) => Ok(Layout::Hybrid {
                hierarchies: m.v1,
                unified,
            }),
        }
    }

    /// Which of the three layouts this is.
    pub fn kind(&self) -> LayoutKind {
        match self {
            Layout::V1 { .. } => LayoutKind::V1,
            Layout::V2 { .. } => LayoutKind::V2,
            Layout::Hybrid { .. } => LayoutKind::Hybrid,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HYBRID: &str = "\
22 1 8:1 / / rw,relatime shared:1 - ext4 /dev/sda1 rw
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
33 31 0:30 / /sys/fs/cgroup/cpuacct rw,relatime - cgroup cgroup rw,cpuacct
34 31 0:31 / /sys/fs/cgroup/cpuset rw,relatime - cgroup cgroup rw,cpuset,clone_children
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,xattr,release_agent=/lib/systemd/systemd-cgroups-agent,name=systemd
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
";

    const V1_COMOUNTED: &str = "\
25 20 0:23 / /sys/fs/cgroup ro,nosuid,nodev,noexec shared:4 - tmpfs tmpfs ro,mode=755
28 25 0:26 / /sys/fs/cgroup/cpu,cpuacct rw,nosuid,nodev,noexec,relatime shared:10 - cgroup cgroup rw,cpu,cpuacct
29 25 0:27 / /sys/fs/cgroup/net_cls,net_prio rw,nosuid shared:11 - cgroup cgroup rw,net_cls,net_prio
30 25 0:28 /docker/abc /sys/fs/cgroup/pids rw,nosuid shared:12 - cgroup cgroup rw,pids
31 25 0:26 / /mnt/cpu\\040again rw - cgroup cgroup rw,cpu,cpuacct
";

    const V2: &str = "\
26 22 0:23 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:4 - cgroup2 cgroup2 rw,nsdelegate,memory_recursiveprot
";

    #[test]
    fn hybrid() {
        let m = parse_mountinfo(HYBRID);
        assert_eq!(m.v1.len(), 5);
        assert_eq!(m.v1[2].controllers, vec!["cpuset"]);
        assert_eq!(m.v1[4].controllers, vec!["name=systemd"]);
        assert_eq!(
            m.unified,
            Some((PathBuf::from("/sys/fs/cgroup/unified"), "/".to_string()))
        );
        let l = Layout::from_mounts(m).unwrap();
        assert_eq!(l.kind(), LayoutKind::Hybrid);
    }

    #[test]
    fn v1_comounted_and_escapes() {
        let m = parse_mountinfo(V1_COMOUNTED);
        assert_eq!(m.v1.len(), 3, "the second mount of cpu,cpuacct is skipped");
        assert_eq!(m.v1[0].controllers, vec!["cpu", "cpuacct"]);
        assert!(m.v1[0].has("cpuacct"));
        assert_eq!(m.v1[2].root, "/docker/abc");
        assert_eq!(m.unified, None);
        assert_eq!(Layout::from_mounts(m).unwrap().kind(), LayoutKind::V1);
        assert_eq!(unescape("/mnt/cpu\\040again"), "/mnt/cpu again");
    }

    #[test]
    fn v2_only() {
        let m = parse_mountinfo(V2);
        assert!(m.v1.is_empty());
        let l = Layout::from_mounts(m).unwrap();
        assert_eq!(
            l,
            Layout::V2 {
                mount_point: "/sys/fs/cgroup".into()
            }
        );
        assert!(Layout::from_mounts(CgroupMounts::default()).is_err());
    }

    #[test]
    fn join_paths() {
        let mp = Path::new("/sys/fs/cgroup/pids");
        assert_eq!(
            join(mp, "/", Path::new("/berth/x")),
            PathBuf::from("/sys/fs/cgroup/pids/berth/x")
        );
        assert_eq!(
            join(mp, "/docker/abc", Path::new("/docker/abc/sub")),
            PathBuf::from("/sys/fs/cgroup/pids/sub")
        );
    }
}
