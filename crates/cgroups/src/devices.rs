//! Device access rules: the OCI rules, the kernel's v1 semantics (emulated, as runc does),
//! the strings for `devices.allow`/`devices.deny`, and the eBPF program for v2.

use crate::CgroupError;
use indexmap::IndexMap;
use oci_spec::runtime::{LinuxDeviceCgroup, LinuxDeviceType};
use std::fmt;

/// `m`: may mknod (the values are the kernel's `BPF_DEVCG_ACC_*`).
pub const ACC_MKNOD: u8 = 1;
/// `r`: may read.
pub const ACC_READ: u8 = 2;
/// `w`: may write.
pub const ACC_WRITE: u8 = 4;
/// `rwm`.
pub const ACC_ALL: u8 = 7;

/// A device type a rule can name (`u` is a char device; fifos are not device-controlled).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum DevType {
    /// `a`: every device (only in whole-policy rules).
    All,
    /// `b`.
    Block,
    /// `c` (and `u`).
    Char,
}

impl DevType {
    fn letter(self) -> char {
        match self {
            DevType::All => 'a',
            DevType::Block => 'b',
            DevType::Char => 'c',
        }
    }
}

/// One device rule, validated. `None` major/minor is the wildcard `*`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DeviceRule {
    /// Allow (true) or deny.
    pub allow: bool,
    /// Which devices.
    pub typ: DevType,
    /// Major number, `None` = any.
    pub major: Option<u32>,
    /// Minor number, `None` = any.
    pub minor: Option<u32>,
    /// `ACC_*` bits.
    pub access: u8,
}

impl DeviceRule {
    /// Validates an OCI rule: unset type is `a`, unset or empty access is `rwm`, a negative
    /// number is the wildcard.
    pub fn from_oci(r: &LinuxDeviceCgroup) -> Result<Self, CgroupError> {
        let invalid = |reason: String| CgroupError::Invalid {
            resource: format!("devices rule {r}"),
            reason,
        };
        let typ = match r.typ() {
            None | Some(LinuxDeviceType::A) => DevType::All,
            Some(LinuxDeviceType::B) => DevType::Block,
            Some(LinuxDeviceType::C) | Some(LinuxDeviceType::U) => DevType::Char,
            Some(LinuxDeviceType::P) => {
                return Err(invalid(
                    "fifos (type p) are not controlled by cgroups".into(),
                ))
            }
        };
        let num = |v: Option<i64>| -> Result<Option<u32>, CgroupError> {
            match v {
                None => Ok(None),
                Some(n) if n < 0 => Ok(None),
                Some(n) if n <= i32::MAX as i64 => Ok(Some(n as u32)),
                Some(n) => Err(invalid(format!("device number {n} is out of range"))),
            }
        };
        let access = match r.access().as_deref() {
            None | Some("") => ACC_ALL,
            Some(a) => parse_access(a).ok_or_else(|| {
                invalid(format!("access {a:?} must be made of the letters r, w, m"))
            })?,
        };
        Ok(DeviceRule {
            allow: r.allow(),
            typ,
            major: num(r.major())?,
            minor: num(r.minor())?,
            access,
        })
    }

    /// The v1 string, e.g. `c 1:3 rwm` or `a *:* rwm`.
    pub fn v1_string(&self) -> String {
        let n = |v: Option<u32>| v.map_or_else(|| "*".to_string(), |n| n.to_string());
        format!(
            "{} {}:{} {}",
            self.typ.letter(),
            n(self.major),
            n(self.minor),
            access_string(self.access)
        )
    }

    /// The v1 file this rule is written to.
    pub fn v1_file(&self) -> &'static str {
        if self.allow {
            "devices.allow"
        } else {
            "devices.deny"
        }
    }
}

fn parse_access(s: &str) -> Option<u8> {
    let mut a = 0;
    for c in s.chars() {
        a |= match c {
            'r' => ACC_READ,
            'w' => ACC_WRITE,
            'm' => ACC_MKNOD,
            _ => return None,
        };
    }
    (a != 0).then_some(a)
}

fn access_string(a: u8) -> String {
    let mut s = String::with_capacity(3);
    if a & ACC_READ != 0 {
        s.push('r');
    }
    if a & ACC_WRITE != 0 {
        s.push('w');
    }
    if a & ACC_MKNOD != 0 {
        s.push('m');
    }
    s
}

/// (type, major, minor) of an exception; `-1` is the wildcard so that it sorts first.
type Key = (DevType, i64, i64);

fn key(r: &DeviceRule) -> Key {
    let n = |v: Option<u32>| v.map_or(-1, i64::from);
    (r.typ, n(r.major), n(r.minor))
}

/// A device policy as the v1 kernel keeps it: a default and exceptions to it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DevicePolicy {
    /// Whether devices not in `exceptions` are allowed.
    pub default_allow: bool,
    /// Exceptions to the default, with their access bits, in the order they were first
    /// made: the kernel lists (and the runtime-spec wants) rules in the order applied.
    exceptions: IndexMap<Key, u8>,
}

impl fmt::Display for DevicePolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "default {}",
            if self.default_allow { "allow" } else { "deny" }
        )?;
        for r in self.exceptions() {
            write!(f, ", {}", r.v1_string())?;
        }
        Ok(())
    }
}

impl DevicePolicy {
    /// Everything denied (where rules from config.json start, as in runc).
    pub fn deny_all() -> Self {
        DevicePolicy {
            default_allow: false,
            exceptions: IndexMap::new(),
        }
    }

    /// The policy that `rules` make, starting from deny-all.
    pub fn from_rules(rules: &[DeviceRule]) -> Result<Self, CgroupError> {
        let mut p = Self::deny_all();
        for r in rules {
            p.apply(r)?;
        }
        Ok(p)
    }

    /// Parses v1 `devices.list` (`a *:* rwm` alone means allow-all, since the kernel lists
    /// no exceptions then).
    pub fn from_v1_list(text: &str) -> Result<Self, CgroupError> {
        let mut p = Self::deny_all();
        for line in text.lines().filter(|l| !l.trim().is_empty()) {
            let bad = || CgroupError::Parse {
                path: "devices.list".into(),
                reason: format!("unexpected line {line:?}"),
            };
            let mut it = line.split_whitespace();
            let (Some(t), Some(nums), Some(acc)) = (it.next(), it.next(), it.next()) else {
                return Err(bad());
            };
            let typ = match t {
                "a" => DevType::All,
                "b" => DevType::Block,
                "c" => DevType::Char,
                _ => return Err(bad()),
            };
            let (ma, mi) = nums.split_once(':').ok_or_else(bad)?;
            let n = |s: &str| -> Result<Option<u32>, CgroupError> {
                if s == "*" {
                    Ok(None)
                } else {
                    s.parse().map(Some).map_err(|_| bad())
                }
            };
            let rule = DeviceRule {
                allow: true,
                typ,
                major: n(ma)?,
                minor: n(mi)?,
                access: parse_access(acc).ok_or_else(bad)?,
            };
            p.apply(&rule)?;
        }
        Ok(p)
    }

    /// Applies one rule with the kernel's v1 semantics: `a` resets the default and drops
    /// every exception; a rule agreeing with the default removes those access bits from
    /// the exactly matching exception; one disagreeing adds (merges) an exception. Removing
    /// part of a wildcard exception is refused (v1 would silently ignore it).
    pub fn apply(&mut self, r: &DeviceRule) -> Result<(), CgroupError> {
        if r.typ == DevType::All {
            self.default_allow = r.allow;
            self.exceptions.clear();
            return Ok(());
        }
        let k = key(r);
        if r.allow != self.default_allow {
            *self.exceptions.entry(k).or_insert(0) |= r.access;
            return Ok(());
        }
        for partial in [(k.0, -1, k.2), (k.0, k.1, -1), (k.0, -1, -1)] {
            if partial == k {
                continue;
            }
            if let Some(a) = self.exceptions.get(&partial) {
                if a & r.access != 0 {
                    return Err(CgroupError::Invalid {
                        resource: format!("devices rule {}", r.v1_string()),
                        reason: "cannot punch a hole in a wildcard rule before it".into(),
                    });
                }
            }
        }
        if let Some(a) = self.exceptions.get_mut(&k) {
            *a &= !r.access;
            if *a == 0 {
                self.exceptions.shift_remove(&k);
            }
        }
        Ok(())
    }

    /// The exceptions as rules (allow = !default), in a stable order.
    pub fn exceptions(&self) -> impl Iterator<Item = DeviceRule> + '_ {
        self.exceptions
            .iter()
            .map(|(&(typ, ma, mi), &access)| DeviceRule {
                allow: !self.default_allow,
                typ,
                major: u32::try_from(ma).ok(),
                minor: u32::try_from(mi).ok(),
                access,
            })
    }

    /// The v1 writes that take a cgroup from `self` (as read from `devices.list`) to
    /// `target`, as runc computes them: a whole-policy `a` rule when the default differs or
    /// the current one is allow-all (its deny exceptions cannot be listed), then removals
    /// of dropped access, then additions.
    pub fn transition(&self, target: &DevicePolicy) -> Vec<DeviceRule> {
        let mut out = Vec::new();
        let empty = IndexMap::new();
        let old = if self.default_allow || self.default_allow != target.default_allow {
            out.push(DeviceRule {
                allow: target.default_allow,
                typ: DevType::All,
                major: None,
                minor: None,
                access: ACC_ALL,
            });
            &empty
        } else {
            &self.exceptions
        };
        let rule = |(typ, ma, mi): Key, access, allow| DeviceRule {
            allow,
            typ,
            major: u32::try_from(ma).ok(),
            minor: u32::try_from(mi).ok(),
            access,
        };
        for (&k, &a) in old {
            let dropped = a & !target.exceptions.get(&k).copied().unwrap_or(0);
            if dropped != 0 {
                out.push(rule(k, dropped, target.default_allow));
            }
        }
        for (&k, &a) in &target.exceptions {
            let gained = a & !old.get(&k).copied().unwrap_or(0);
            if gained != 0 {
                out.push(rule(k, gained, !target.default_allow));
            }
        }
        out
    }
}

/// The devices runc allows in every container on top of config.json's rules (its
/// `AllowedDevices`): mknod of any char/block device, `/dev/null`, `zero`, `full`,
/// `random`, `urandom`, `tty`, `console`, `ptmx`, `pts/*` and `net/tun`. The runtime appends
/// these (and `linux.devices`) after the rules from config.json.
pub fn default_allowed_devices() -> Vec<DeviceRule> {
    let r = |typ, major, minor, access| DeviceRule {
        allow: true,
        typ,
        major,
        minor,
        access,
    };
    vec![
        r(DevType::Char, None, None, ACC_MKNOD),
        r(DevType::Block, None, None, ACC_MKNOD),
        r(DevType::Char, Some(1), Some(3), ACC_ALL),
        r(DevType::Char, Some(1), Some(8), ACC_ALL),
        r(DevType::Char, Some(1), Some(7), ACC_ALL),
        r(DevType::Char, Some(5), Some(0), ACC_ALL),
        r(DevType::Char, Some(1), Some(5), ACC_ALL),
        r(DevType::Char, Some(1), Some(9), ACC_ALL),
        r(DevType::Char, Some(5), Some(1), ACC_ALL),
        r(DevType::Char, Some(136), None, ACC_ALL),
        r(DevType::Char, Some(5), Some(2), ACC_ALL),
        r(DevType::Char, Some(10), Some(200), ACC_ALL),
    ]
}

/// Validates a list of OCI rules.
pub fn rules_from_oci(rules: &[LinuxDeviceCgroup]) -> Result<Vec<DeviceRule>, CgroupError> {
    rules.iter().map(DeviceRule::from_oci).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use oci_spec::runtime::LinuxDeviceCgroupBuilder;

    fn oci(
        allow: bool,
        t: Option<LinuxDeviceType>,
        ma: Option<i64>,
        mi: Option<i64>,
        a: &str,
    ) -> LinuxDeviceCgroup {
        let mut b = LinuxDeviceCgroupBuilder::default().allow(allow).access(a);
        if let Some(t) = t {
            b = b.typ(t);
        }
        if let Some(ma) = ma {
            b = b.major(ma);
        }
        if let Some(mi) = mi {
            b = b.minor(mi);
        }
        b.build().unwrap()
    }

    #[test]
    fn oci_rules_to_v1_strings() {
        let deny_all = DeviceRule::from_oci(&oci(false, None, None, None, "rwm")).unwrap();
        assert_eq!(deny_all.v1_string(), "a *:* rwm");
        assert_eq!(deny_all.v1_file(), "devices.deny");
        let null =
            DeviceRule::from_oci(&oci(true, Some(LinuxDeviceType::C), Some(1), Some(3), "rw"))
                .unwrap();
        assert_eq!(null.v1_string(), "c 1:3 rw");
        assert_eq!(null.v1_file(), "devices.allow");
        let pts = DeviceRule::from_oci(&oci(
            true,
            Some(LinuxDeviceType::U),
            Some(136),
            Some(-1),
            "mwr",
        ))
        .unwrap();
        assert_eq!(pts.v1_string(), "c 136:* rwm");
        let blk =
            DeviceRule::from_oci(&oci(true, Some(LinuxDeviceType::B), None, None, "m")).unwrap();
        assert_eq!(blk.v1_string(), "b *:* m");
        assert!(
            DeviceRule::from_oci(&oci(true, Some(LinuxDeviceType::C), Some(1), Some(3), "rx"))
                .is_err()
        );
        assert!(
            DeviceRule::from_oci(&oci(true, Some(LinuxDeviceType::P), Some(1), Some(3), "r"))
                .is_err()
        );
    }

    #[test]
    fn fresh_cgroup_transition_is_deny_all_then_allows() {
        let current = DevicePolicy::from_v1_list("a *:* rwm\n").unwrap();
        assert!(current.default_allow);
        let mut rules = vec![DeviceRule::from_oci(&oci(false, None, None, None, "rwm")).unwrap()];
        rules.extend(default_allowed_devices());
        let target = DevicePolicy::from_rules(&rules).unwrap();
        let writes: Vec<String> = current
            .transition(&target)
            .iter()
            .map(|r| format!("{} {}", r.v1_file(), r.v1_string()))
            .collect();
        assert_eq!(writes[0], "devices.deny a *:* rwm");
        assert_eq!(writes.len(), 13);
        assert!(writes.contains(&"devices.allow c 1:3 rwm".to_string()));
        assert!(writes.contains(&"devices.allow c *:* m".to_string()));
        assert!(writes[1..].iter().all(|w| w.starts_with("devices.allow")));
    }

    #[test]
    fn update_transition_is_minimal() {
        let current = DevicePolicy::from_v1_list("c 1:3 rwm\nc 1:5 rwm\nc 136:* rw\n").unwrap();
        assert!(!current.default_allow);
        let target = DevicePolicy::from_rules(&[
            DeviceRule {
                allow: true,
                typ: DevType::Char,
                major: Some(1),
                minor: Some(3),
                access: ACC_ALL,
            },
            DeviceRule {
                allow: true,
                typ: DevType::Char,
                major: Some(136),
                minor: None,
                access: ACC_ALL,
            },
            DeviceRule {
                allow: true,
                typ: DevType::Char,
                major: Some(1),
                minor: Some(9),
                access: ACC_READ,
            },
        ])
        .unwrap();
        let writes: Vec<String> = current
            .transition(&target)
            .iter()
            .map(|r| format!("{} {}", r.v1_file(), r.v1_string()))
            .collect();
        assert_eq!(
            writes,
            vec![
                "devices.deny c 1:5 rwm",
                "devices.allow c 136:* m",
                "devices.allow c 1:9 r",
            ]
        );
    }

    #[test]
    fn emulator_semantics() {
        let mut p = DevicePolicy::deny_all();
        let allow = |ma, mi, a| DeviceRule {
            allow: true,
            typ: DevType::Char,
            major: ma,
            minor: mi,
            access: a,
        };
        let deny = |ma, mi, a| DeviceRule {
            allow: false,
            typ: DevType::Char,
            major: ma,
            minor: mi,
            access: a,
        };
        p.apply(&allow(Some(1), Some(3), ACC_READ)).unwrap();
        p.apply(&allow(Some(1), Some(3), ACC_WRITE)).unwrap();
        assert_eq!(p.to_string(), "default deny, c 1:3 rw");
        p.apply(&deny(Some(1), Some(3), ACC_READ)).unwrap();
        assert_eq!(p.to_string(), "default deny, c 1:3 w");
        p.apply(&allow(None, None, ACC_MKNOD)).unwrap();
        // denying mknod of one device inside the wildcard cannot be expressed in v1
        assert!(p.apply(&deny(Some(4), Some(1), ACC_MKNOD)).is_err());
        p.apply(&DeviceRule {
            allow: true,
            typ: DevType::All,
            major: None,
            minor: None,
            access: ACC_ALL,
        })
        .unwrap();
        assert_eq!(p.to_string(), "default allow");
        p.apply(&deny(Some(10), Some(200), ACC_ALL)).unwrap();
        assert_eq!(p.to_string(), "default allow, c 10:200 rwm");
    }
}
