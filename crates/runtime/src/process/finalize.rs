//! The last steps in the container before execve: limits, identity, capabilities, the
//! executable's path, and closing everything the runtime had open.

use crate::error::{Result, RuntimeError, SysContext};
use crate::security::capabilities::Sets;
use crate::sys;
use nix::unistd::{Gid, Uid};
use oci_spec::runtime::{PosixRlimit, PosixRlimitType, Process};
use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

/// Enters the working directory through a descriptor resolved inside the root we now
/// live in (no magic links): a cwd like /proc/self/fd/N naming a descriptor of ours can't
/// put the process outside the container (CVE-2024-21626).
pub fn enter_cwd(cwd: &Path) -> Result<()> {
    let root = crate::rootfs::Root::open(Path::new("/"))?;
    let dir = root
        .open_at(
            cwd,
            nix::fcntl::OFlag::O_PATH | nix::fcntl::OFlag::O_DIRECTORY,
        )
        .sys(|| format!("process.cwd {}", cwd.display()))?;
    nix::unistd::fchdir(&dir).sys(|| format!("chdir to {}", cwd.display()))
}

pub const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

fn rlimit_resource(t: PosixRlimitType) -> libc::c_int {
    (match t {
        PosixRlimitType::RlimitCpu => libc::RLIMIT_CPU,
        PosixRlimitType::RlimitFsize => libc::RLIMIT_FSIZE,
        PosixRlimitType::RlimitData => libc::RLIMIT_DATA,
        PosixRlimitType::RlimitStack => libc::RLIMIT_STACK,
        PosixRlimitType::RlimitCore => libc::RLIMIT_CORE,
        PosixRlimitType::RlimitRss => libc::RLIMIT_RSS,
        PosixRlimitType::RlimitNproc => libc::RLIMIT_NPROC,
        PosixRlimitType::RlimitNofile => libc::RLIMIT_NOFILE,
        PosixRlimitType::RlimitMemlock => libc::RLIMIT_MEMLOCK,
        PosixRlimitType::RlimitAs => libc::RLIMIT_AS,
        PosixRlimitType::RlimitLocks => libc::RLIMIT_LOCKS,
        PosixRlimitType::RlimitSigpending => libc::RLIMIT_SIGPENDING,
        PosixRlimitType::RlimitMsgqueue => libc::RLIMIT_MSGQUEUE,
        PosixRlimitType::RlimitNice => libc::RLIMIT_NICE,
        PosixRlimitType::RlimitRtprio => libc::RLIMIT_RTPRIO,
        PosixRlimitType::RlimitRttime => libc::RLIMIT_RTTIME,
    }) as libc::c_int
}

pub fn set_rlimits(limits: &[PosixRlimit]) -> Result<()> {
    for l in limits {
        if l.soft() > l.hard() {
            return Err(RuntimeError::InvalidConfig(format!(
                "rlimit {:?}: soft limit {} is above hard limit {}",
                l.typ(),
                l.soft(),
                l.hard()
            )));
        }
        sys::set_rlimit(rlimit_resource(l.typ()), l.soft(), l.hard())
            .sys(|| format!("setting rlimit {:?} to {}/{}", l.typ(), l.soft(), l.hard()))?;
    }
    Ok(())
}

/// Switches to the configured user with the configured capabilities (runc's order:
/// bounding set, keepcaps, groups/gid/uid, then the other sets).
pub fn become_user(process: &Process, caps: Option<&Sets>, setgroups_allowed: bool) -> Result<()> {
    let user = process.user();
    if let Some(c) = caps {
        c.drop_bounding()?;
        nix::sys::prctl::set_keepcaps(true).sys(|| "PR_SET_KEEPCAPS".into())?;
    }
    if setgroups_allowed {
        let gids: Vec<Gid> = user
            .additional_gids()
            .iter()
            .flatten()
            .map(|g| Gid::from_raw(*g))
            .collect();
        nix::unistd::setgroups(&gids).sys(|| format!("setgroups {gids:?}"))?;
    }
    let gid = Gid::from_raw(user.gid());
    nix::unistd::setresgid(gid, gid, gid).sys(|| format!("setgid {gid}"))?;
    let uid = Uid::from_raw(user.uid());
    nix::unistd::setresuid(uid, uid, uid).sys(|| format!("setuid {uid}"))?;
    if let Some(c) = caps {
        nix::sys::prctl::set_keepcaps(false).sys(|| "PR_SET_KEEPCAPS".into())?;
        c.apply()?;
    }
    Ok(())
}

/// The program to run, looked up like execvp would in the container's PATH (so a missing
/// program is reported by `create`, not discovered after `start`).
pub fn find_executable(arg0: &str, env: &[String]) -> Result<PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    let is_exec = |p: &Path| {
        std::fs::metadata(p)
            .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
            .unwrap_or(false)
    };
    if arg0.contains('/') {
        let p = PathBuf::from(arg0);
        return if is_exec(&p) {
            Ok(p)
        } else if p.exists() {
            // There but not runnable: execve's EACCES, which engines map to status 126.
            Err(RuntimeError::Init(format!(
                "exec: {arg0:?}: permission denied"
            )))
        } else {
            Err(RuntimeError::Init(format!(
                "exec: {arg0:?}: no such executable file in the container"
            )))
        };
    }
    let path = env
        .iter()
        .find_map(|kv| kv.strip_prefix("PATH="))
        .unwrap_or(DEFAULT_PATH);
    path.split(':')
        .map(|dir| Path::new(if dir.is_empty() { "." } else { dir }).join(arg0))
        .find(|p| is_exec(p))
        .ok_or_else(|| {
            RuntimeError::Init(format!(
                "exec: {arg0:?}: executable file not found in $PATH"
            ))
        })
}

/// HOME from the container's /etc/passwd when the config doesn't set it (as runc does).
pub fn with_home(mut env: Vec<String>, uid: u32) -> Vec<String> {
    if env.iter().any(|kv| kv.starts_with("HOME=")) {
        return env;
    }
    let home = std::fs::read_to_string("/etc/passwd")
        .ok()
        .and_then(|text| {
            text.lines().find_map(|l| {
                let f: Vec<&str> = l.split(':').collect();
                (f.len() >= 6 && f[2].parse::<u32>().ok() == Some(uid)).then(|| f[5].to_string())
            })
        })
        .unwrap_or_else(|| "/".into());
    env.push(format!("HOME={home}"));
    env
}

fn cstrings<S: AsRef<[u8]>>(items: &[S]) -> Result<Vec<CString>> {
    items
        .iter()
        .map(|s| {
            CString::new(s.as_ref()).map_err(|_| {
                RuntimeError::InvalidConfig("process.args/env may not contain NUL bytes".into())
            })
        })
        .collect()
}

pub fn exec(path: &Path, args: &[String], env: &[String]) -> RuntimeError {
    let run = || -> Result<std::convert::Infallible> {
        let path_c = CString::new(path.as_os_str().as_bytes())
            .map_err(|_| RuntimeError::InvalidConfig("executable path has a NUL byte".into()))?;
        let argv = cstrings(args)?;
        let envp = cstrings(env)?;
        nix::unistd::execve(&path_c, &argv, &envp).sys(|| format!("exec {}", path.display()))
    };
    match run() {
        Ok(never) => match never {},
        Err(e) => e,
    }
}
