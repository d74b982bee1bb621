//! Writes to /proc that configure the container (sysctls, oom_score_adj), each through a
//! descriptor checked to be on procfs (CVE-2019-16884, CVE-2025-52881: a mount or symlink
//! placed over /proc must not redirect these writes).

use crate::error::{Result, RuntimeError, SysContext};
use nix::fcntl::{openat2, OFlag, OpenHow, ResolveFlag};
use nix::sys::statfs::{fstatfs, PROC_SUPER_MAGIC};
use std::io::Write;
use std::os::fd::OwnedFd;

pub struct Proc {
    fd: OwnedFd,
}

fn check(fd: &OwnedFd, what: &str) -> Result<()> {
    let st = fstatfs(fd).sys(|| format!("statfs {what}"))?;
    if st.filesystem_type() != PROC_SUPER_MAGIC {
        return Err(RuntimeError::Init(format!(
            "{what} is not on procfs; refusing to write it"
        )));
    }
    Ok(())
}

impl Proc {
    pub fn open() -> Result<Proc> {
        let fd = nix::fcntl::open(
            "/proc",
            OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
            nix::sys::stat::Mode::empty(),
        )
        .sys(|| "opening /proc".into())?;
        check(&fd, "/proc")?;
        Ok(Proc { fd })
    }

    /// Writes `value` to /proc/<rel>, never leaving procfs on the way (plain symlinks such
    /// as /proc/self are followed, magic links and other mounts are not).
    pub fn write(&self, rel: &str, value: &str) -> Result<()> {
        let what = format!("/proc/{rel}");
        let how = OpenHow::new()
            .flags(OFlag::O_WRONLY | OFlag::O_CLOEXEC)
            .resolve(
                ResolveFlag::RESOLVE_BENEATH
                    | ResolveFlag::RESOLVE_NO_MAGICLINKS
                    | ResolveFlag::RESOLVE_NO_XDEV,
            );
        let fd = openat2(&self.fd, rel, how).sys(|| format!("opening {what}"))?;
        check(&fd, &what)?;
        let mut f = std::fs::File::from(fd);
        f.write_all(value.as_bytes()).map_err(|e| RuntimeError::Io {
            path: what.into(),
            source: e,
        })
    }

    pub fn sysctl(&self, key: &str, value: &str) -> Result<()> {
        self.write(&format!("sys/{}", key.replace('.', "/")), value)
    }
}

/// /proc/self/mountinfo in one read: the file reports size 0, and every short read makes
/// the kernel walk the mount table again.
pub fn mountinfo() -> Result<String> {
    use std::io::Read;
    let path = "/proc/self/mountinfo";
    let mut text = String::with_capacity(16 * 1024);
    std::fs::File::open(path)
        .and_then(|mut f| f.read_to_string(&mut text))
        .map_err(|e| RuntimeError::Io {
            path: path.into(),
            source: e,
        })?;
    Ok(text)
}
