//! mount(8)-style option lists from config.json, split into what the kernel takes as flags,
//! propagation changes, recursive attributes and the fs-specific data string.

use nix::mount::MsFlags;

pub const ATTR_RDONLY: u64 = 0x1;
pub const ATTR_NOSUID: u64 = 0x2;
pub const ATTR_NODEV: u64 = 0x4;
pub const ATTR_NOEXEC: u64 = 0x8;
pub const ATTR_ATIME_MASK: u64 = 0x70;
pub const ATTR_RELATIME: u64 = 0x0;
pub const ATTR_NOATIME: u64 = 0x10;
pub const ATTR_STRICTATIME: u64 = 0x20;
pub const ATTR_NODIRATIME: u64 = 0x80;
pub const ATTR_NOSYMFOLLOW: u64 = 0x200000;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MountOptions {
    /// Flags to set (MS_RDONLY, MS_NOSUID, ...), including MS_BIND/MS_REC for (r)bind.
    pub flags: MsFlags,
    /// Propagation changes, applied in order after the mount (MS_SHARED, MS_PRIVATE|MS_REC...).
    pub propagation: Vec<MsFlags>,
    /// Recursive mount_setattr(2) attributes from the r* options (rro, rnosuid, ...).
    pub rec_set: u64,
    pub rec_clr: u64,
    /// Everything else, joined with commas as the filesystem's data string.
    pub data: String,
    /// `tmpcopyup`: fill the new tmpfs with what the image had at the mount point.
    pub copy_up: bool,
}

/// (option, flag, set?) — `set == false` means the option clears the flag.
const FLAGS: &[(&str, MsFlags, bool)] = &[
    ("async", MsFlags::MS_SYNCHRONOUS, false),
    ("atime", MsFlags::MS_NOATIME, false),
    ("bind", MsFlags::MS_BIND, true),
    ("defaults", MsFlags::empty(), true),
    ("dev", MsFlags::MS_NODEV, false),
    ("diratime", MsFlags::MS_NODIRATIME, false),
    ("dirsync", MsFlags::MS_DIRSYNC, true),
    ("exec", MsFlags::MS_NOEXEC, false),
    ("lazytime", MsFlags::MS_LAZYTIME, true),
    ("loud", MsFlags::MS_SILENT, false),
    ("mand", MsFlags::MS_MANDLOCK, true),
    ("noatime", MsFlags::MS_NOATIME, true),
    ("nodev", MsFlags::MS_NODEV, true),
    ("nodiratime", MsFlags::MS_NODIRATIME, true),
    ("noexec", MsFlags::MS_NOEXEC, true),
    ("nolazytime", MsFlags::MS_LAZYTIME, false),
    ("nomand", MsFlags::MS_MANDLOCK, false),
    ("norelatime", MsFlags::MS_RELATIME, false),
    ("nostrictatime", MsFlags::MS_STRICTATIME, false),
    ("nosuid", MsFlags::MS_NOSUID, true),
    ("nosymfollow", MsFlags::from_bits_retain(256), true),
    ("rbind", MsFlags::MS_BIND.union(MsFlags::MS_REC), true),
    ("relatime", MsFlags::MS_RELATIME, true),
    ("remount", MsFlags::MS_REMOUNT, true),
    ("ro", MsFlags::MS_RDONLY, true),
    ("rw", MsFlags::MS_RDONLY, false),
    ("silent", MsFlags::MS_SILENT, true),
    ("strictatime", MsFlags::MS_STRICTATIME, true),
    ("suid", MsFlags::MS_NOSUID, false),
    ("symfollow", MsFlags::from_bits_retain(256), false),
    ("sync", MsFlags::MS_SYNCHRONOUS, true),
];

const PROPAGATION: &[(&str, MsFlags)] = &[
    ("private", MsFlags::MS_PRIVATE),
    ("rprivate", MsFlags::MS_PRIVATE.union(MsFlags::MS_REC)),
    ("shared", MsFlags::MS_SHARED),
    ("rshared", MsFlags::MS_SHARED.union(MsFlags::MS_REC)),
    ("slave", MsFlags::MS_SLAVE),
    ("rslave", MsFlags::MS_SLAVE.union(MsFlags::MS_REC)),
    ("unbindable", MsFlags::MS_UNBINDABLE),
    ("runbindable", MsFlags::MS_UNBINDABLE.union(MsFlags::MS_REC)),
];

/// (option, attribute, set?) for mount_setattr(2) with AT_RECURSIVE.
const RECURSIVE: &[(&str, u64, bool)] = &[
    ("rro", ATTR_RDONLY, true),
    ("rrw", ATTR_RDONLY, false),
    ("rnosuid", ATTR_NOSUID, true),
    ("rsuid", ATTR_NOSUID, false),
    ("rnodev", ATTR_NODEV, true),
    ("rdev", ATTR_NODEV, false),
    ("rnoexec", ATTR_NOEXEC, true),
    ("rexec", ATTR_NOEXEC, false),
    ("rnodiratime", ATTR_NODIRATIME, true),
    ("rdiratime", ATTR_NODIRATIME, false),
    ("rnosymfollow", ATTR_NOSYMFOLLOW, true),
    ("rsymfollow", ATTR_NOSYMFOLLOW, false),
];

/// Atime options are one field in mount_setattr: setting one clears the others.
const RECURSIVE_ATIME: &[(&str, u64)] = &[
    ("rrelatime", ATTR_RELATIME),
    ("rnoatime", ATTR_NOATIME),
    ("rstrictatime", ATTR_STRICTATIME),
];

/// Every option name we accept that isn't passed on to the filesystem.
pub fn known_option_names() -> Vec<&'static str> {
    FLAGS
        .iter()
        .map(|f| f.0)
        .chain(PROPAGATION.iter().map(|p| p.0))
        .chain(RECURSIVE.iter().map(|r| r.0))
        .chain(RECURSIVE_ATIME.iter().map(|r| r.0))
        .chain(std::iter::once("tmpcopyup"))
        .collect()
}

impl Default for MountOptions {
    fn default() -> Self {
        MountOptions {
            flags: MsFlags::empty(),
            propagation: Vec::new(),
            rec_set: 0,
            rec_clr: 0,
            data: String::new(),
            copy_up: false,
        }
    }
}

pub fn propagation_flag(name: &str) -> Option<MsFlags> {
    PROPAGATION.iter().find(|p| p.0 == name).map(|p| p.1)
}

impl MountOptions {
    /// Fails with the offending option for the ones we refuse rather than mis-apply.
    pub fn parse<S: AsRef<str>>(options: &[S]) -> Result<MountOptions, String> {
        let mut o = MountOptions::default();
        let mut data = Vec::new();
        for opt in options {
            let opt = opt.as_ref();
            if let Some(&(_, flag, set)) = FLAGS.iter().find(|f| f.0 == opt) {
                if set {
                    o.flags |= flag;
                } else {
                    o.flags &= !flag;
                }
            } else if let Some(flag) = propagation_flag(opt) {
                o.propagation.push(flag);
            } else if let Some(&(_, attr, set)) = RECURSIVE.iter().find(|r| r.0 == opt) {
                if set {
                    o.rec_set |= attr;
                    o.rec_clr &= !attr;
                } else {
                    o.rec_clr |= attr;
                    o.rec_set &= !attr;
                }
            } else if let Some(&(_, attr)) = RECURSIVE_ATIME.iter().find(|r| r.0 == opt) {
                o.rec_clr |= ATTR_ATIME_MASK;
                o.rec_set = (o.rec_set & !ATTR_ATIME_MASK) | attr;
            } else if opt == "tmpcopyup" {
                o.copy_up = true;
            } else if matches!(opt, "idmap" | "ridmap") {
                return Err(opt.to_string());
            } else if !opt.is_empty() {
                data.push(opt);
            }
        }
        o.data = data.join(",");
        Ok(o)
    }

    pub fn is_bind(&self) -> bool {
        self.flags.contains(MsFlags::MS_BIND)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_flags_propagation_and_data() {
        let o =
            MountOptions::parse(&["nosuid", "strictatime", "mode=755", "size=65536k", "rslave"])
                .expect("parses");
        assert_eq!(o.flags, MsFlags::MS_NOSUID | MsFlags::MS_STRICTATIME);
        assert_eq!(o.propagation, vec![MsFlags::MS_SLAVE | MsFlags::MS_REC]);
        assert_eq!(o.data, "mode=755,size=65536k");
    }

    #[test]
    fn later_options_win() {
        let o = MountOptions::parse(&["ro", "rw", "rbind"]).expect("parses");
        assert_eq!(o.flags, MsFlags::MS_BIND | MsFlags::MS_REC);
        assert!(o.is_bind());
    }

    #[test]
    fn recursive_attributes() {
        let o = MountOptions::parse(&["rro", "rnoatime"]).expect("parses");
        assert_eq!(o.rec_set, ATTR_RDONLY | ATTR_NOATIME);
        assert_eq!(o.rec_clr, ATTR_ATIME_MASK);
    }

    #[test]
    fn idmap_refused() {
        assert_eq!(MountOptions::parse(&["idmap"]), Err("idmap".to_string()));
    }
}
