//! linux.seccomp through libseccomp: the filter is compiled while `create` can still report
//! errors, and loaded just before execve.

use crate::error::{Result, RuntimeError};
use libseccomp::{
    ScmpAction, ScmpArch, ScmpArgCompare, ScmpCompareOp, ScmpFilterContext, ScmpSyscall,
};
use oci_spec::runtime::{
    LinuxSeccomp, LinuxSeccompAction, LinuxSeccompFilterFlag, LinuxSeccompOperator,
};
use std::io::IoSlice;
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::str::FromStr;

fn err(msg: impl Into<String>) -> RuntimeError {
    RuntimeError::InvalidConfig(format!("linux.seccomp: {}", msg.into()))
}

const EPERM: i32 = libc::EPERM;

fn action(a: LinuxSeccompAction, errno: Option<u32>) -> ScmpAction {
    match a {
        LinuxSeccompAction::ScmpActKill | LinuxSeccompAction::ScmpActKillThread => {
            ScmpAction::KillThread
        }
        LinuxSeccompAction::ScmpActKillProcess => ScmpAction::KillProcess,
        LinuxSeccompAction::ScmpActTrap => ScmpAction::Trap,
        LinuxSeccompAction::ScmpActErrno => {
            ScmpAction::Errno(errno.map(|e| e as i32).unwrap_or(EPERM))
        }
        LinuxSeccompAction::ScmpActNotify => ScmpAction::Notify,
        LinuxSeccompAction::ScmpActTrace => {
            ScmpAction::Trace(errno.map(|e| e as u16).unwrap_or(EPERM as u16))
        }
        LinuxSeccompAction::ScmpActLog => ScmpAction::Log,
        LinuxSeccompAction::ScmpActAllow => ScmpAction::Allow,
    }
}

fn compare(op: LinuxSeccompOperator, value: u64, value_two: Option<u64>) -> (ScmpCompareOp, u64) {
    match op {
        LinuxSeccompOperator::ScmpCmpNe => (ScmpCompareOp::NotEqual, value),
        LinuxSeccompOperator::ScmpCmpLt => (ScmpCompareOp::Less, value),
        LinuxSeccompOperator::ScmpCmpLe => (ScmpCompareOp::LessOrEqual, value),
        LinuxSeccompOperator::ScmpCmpEq => (ScmpCompareOp::Equal, value),
        LinuxSeccompOperator::ScmpCmpGe => (ScmpCompareOp::GreaterEqual, value),
        LinuxSeccompOperator::ScmpCmpGt => (ScmpCompareOp::Greater, value),
        // runc's reading: value is the mask, valueTwo the datum.
        LinuxSeccompOperator::ScmpCmpMaskedEq => {
            (ScmpCompareOp::MaskedEqual(value), value_two.unwrap_or(0))
        }
    }
}

/// The architectures a filter can name on this host: libseccomp can't mix byte orders in
/// one filter, so e.g. MIPS (big endian) is refused next to x86_64.
pub fn supported_archs() -> Vec<&'static str> {
    const ALL: [&str; 17] = [
        "SCMP_ARCH_AARCH64",
        "SCMP_ARCH_ARM",
        "SCMP_ARCH_MIPS",
        "SCMP_ARCH_MIPS64",
        "SCMP_ARCH_MIPS64N32",
        "SCMP_ARCH_MIPSEL",
        "SCMP_ARCH_MIPSEL64",
        "SCMP_ARCH_MIPSEL64N32",
        "SCMP_ARCH_PPC",
        "SCMP_ARCH_PPC64",
        "SCMP_ARCH_PPC64LE",
        "SCMP_ARCH_RISCV64",
        "SCMP_ARCH_S390",
        "SCMP_ARCH_S390X",
        "SCMP_ARCH_X32",
        "SCMP_ARCH_X86",
        "SCMP_ARCH_X86_64",
    ];
    ALL.into_iter()
        .filter(|name| {
            let Ok(arch) = ScmpArch::from_str(name) else {
                return false;
            };
            let Ok(mut ctx) = ScmpFilterContext::new(ScmpAction::Allow) else {
                return false;
            };
            match ctx.add_arch(arch) {
                Ok(_) => true,
                Err(e) => e.errno() == Some(libseccomp::error::SeccompErrno::EEXIST),
            }
        })
        .collect()
}

/// A compiled, not yet loaded filter, plus where to send its notify fd if it has one.
/// The filter's BPF program as bytes (libseccomp 2.5 exports only to a descriptor: an
/// anonymous memory file, read back whole).
fn export_program(ctx: &ScmpFilterContext) -> Result<Vec<u8>> {
    use std::io::{Read, Seek};
    let fd = nix::sys::memfd::memfd_create(c"seccomp-bpf", nix::sys::memfd::MFdFlags::MFD_CLOEXEC)
        .map_err(|e| err(format!("memfd: {e}")))?;
    let mut file = std::fs::File::from(fd);
    ctx.export_bpf(&file)
        .map_err(|e| err(format!("generating the filter: {e}")))?;
    let mut program = Vec::new();
    file.rewind()
        .and_then(|_| file.read_to_end(&mut program))
        .map_err(|e| err(format!("reading the generated filter: {e}")))?;
    Ok(program)
}

/// The BPF program is generated here, at `create` (libseccomp takes milliseconds for a
/// docker-sized profile); at `start` the init only hands it to the kernel.
pub struct Filter {
    program: Vec<u8>,
    flags: u32,
    listener: Option<(OwnedFd, PathBuf, String)>,
}

pub fn uses_notify(s: &LinuxSeccomp) -> bool {
    s.default_action() == LinuxSeccompAction::ScmpActNotify
        || s.syscalls()
            .iter()
            .flatten()
            .any(|r| r.action() == LinuxSeccompAction::ScmpActNotify)
}

pub fn compile(s: &LinuxSeccomp) -> Result<ScmpFilterContext> {
    let default = action(s.default_action(), s.default_errno_ret());
    let mut ctx = ScmpFilterContext::new(default).map_err(|e| err(e.to_string()))?;
    // libseccomp would set no_new_privs on load by default; that is process.noNewPrivileges'
    // decision, not the filter's.
    ctx.set_ctl_nnp(false).map_err(|e| err(e.to_string()))?;
    for arch in s.architectures().iter().flatten() {
        let name = serde_json::to_value(arch)
            .ok()
            .and_then(|v| v.as_str().map(str::to_string))
            .unwrap_or_default();
        let a =
            ScmpArch::from_str(&name).map_err(|_| err(format!("unknown architecture {name}")))?;
        match ctx.add_arch(a) {
            Ok(_) => {}
            Err(e) if e.errno() == Some(libseccomp::error::SeccompErrno::EEXIST) => {}
            Err(e) => return Err(err(format!("architecture {name}: {e}"))),
        }
    }
    for flag in s.flags().iter().flatten() {
        let r = match flag {
            LinuxSeccompFilterFlag::SeccompFilterFlagLog => ctx.set_ctl_log(true),
            LinuxSeccompFilterFlag::SeccompFilterFlagTsync => ctx.set_ctl_tsync(true),
            LinuxSeccompFilterFlag::SeccompFilterFlagSpecAllow => ctx.set_ctl_ssb(true),
            LinuxSeccompFilterFlag::SeccompFilterFlagWaitKillableRecv => ctx.set_ctl_waitkill(true),
        };
        r.map_err(|e| err(format!("flag {flag:?}: {e}")))?;
    }
    for rule in s.syscalls().iter().flatten() {
        let act = action(rule.action(), rule.errno_ret());
        if act == default {
            // libseccomp refuses rules that repeat the default action; they change nothing.
            continue;
        }
        let conds: Vec<ScmpArgCompare> = rule
            .args()
            .iter()
            .flatten()
            .map(|a| {
                let (op, datum) = compare(a.op(), a.value(), a.value_two());
                ScmpArgCompare::new(a.index() as u32, op, datum)
            })
            .collect();
        let mut indexes: Vec<usize> = rule.args().iter().flatten().map(|a| a.index()).collect();
        indexes.sort_unstable();
        let repeated = indexes.windows(2).any(|w| w[0] == w[1]);
        for name in rule.names() {
            let sc = ScmpSyscall::from_name(name)
                .map_err(|_| err(format!("unknown syscall {name:?}")))?;
            let add = |ctx: &mut ScmpFilterContext, c: &[ScmpArgCompare]| {
                ctx.add_rule_conditional(act, sc, c)
                    .map(drop)
                    .map_err(|e| err(format!("rule for {name}: {e}")))
            };
            if conds.is_empty() {
                ctx.add_rule(act, sc)
                    .map_err(|e| err(format!("rule for {name}: {e}")))?;
            } else if repeated {
                // Conditions on the same argument can't all hold: runc reads them as OR.
                for c in &conds {
                    add(&mut ctx, std::slice::from_ref(c))?;
                }
            } else {
                add(&mut ctx, &conds)?;
            }
        }
    }
    Ok(ctx)
}

impl Filter {
    /// Compiles the filter; with a notify action, also connects to the listener now,
    /// while its host path is still reachable (before pivot_root).
    pub fn prepare(s: &LinuxSeccomp) -> Result<Filter> {
        let program = export_program(&compile(s)?)?;
        let mut flags = 0;
        for flag in s.flags().iter().flatten() {
            flags |= match flag {
                LinuxSeccompFilterFlag::SeccompFilterFlagLog => crate::sys::SECCOMP_FILTER_FLAG_LOG,
                LinuxSeccompFilterFlag::SeccompFilterFlagTsync => {
                    crate::sys::SECCOMP_FILTER_FLAG_TSYNC
                }
                LinuxSeccompFilterFlag::SeccompFilterFlagSpecAllow => {
                    crate::sys::SECCOMP_FILTER_FLAG_SPEC_ALLOW
                }
                LinuxSeccompFilterFlag::SeccompFilterFlagWaitKillableRecv => {
                    crate::sys::SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV
                }
            };
        }
        let listener = if uses_notify(s) {
            let path = s
                .listener_path()
                .clone()
                .ok_or_else(|| err("SCMP_ACT_NOTIFY needs listenerPath"))?;
            let sock = std::os::unix::net::UnixStream::connect(&path)
                .map_err(|e| err(format!("listenerPath {}: {e}", path.display())))?;
            Some((
                OwnedFd::from(sock),
                path,
                s.listener_metadata().clone().unwrap_or_default(),
            ))
        } else {
            None
        };
        if listener.is_some() {
            flags |= crate::sys::SECCOMP_FILTER_FLAG_NEW_LISTENER;
        }
        Ok(Filter {
            program,
            flags,
            listener,
        })
    }

    /// Loads the filter into this process; hands the notify fd to the listener.
    /// `pid`: ours as the runtime sees it, for the listener's ContainerProcessState.
    pub fn load(self, state: &serde_json::Value, pid: i32) -> Result<()> {
        let notify = crate::sys::seccomp_set_filter(&self.program, self.flags)
            .map_err(|e| RuntimeError::Init(format!("loading seccomp filter: {e}")))?;
        if let (Some((sock, path, metadata)), Some(fd)) = (self.listener, notify) {
            send_notify_fd(&sock, &path, &fd, &metadata, state, pid)?;
        }
        Ok(())
    }
}

/// runc's ContainerProcessState message: the fd rides along as SCM_RIGHTS.
fn send_notify_fd(
    sock: &OwnedFd,
    path: &Path,
    fd: &OwnedFd,
    metadata: &str,
    state: &serde_json::Value,
    pid: i32,
) -> Result<()> {
    let msg = serde_json::json!({
        "ociVersion": crate::state::OCI_VERSION,
        "fds": ["seccompFd"],
        "pid": pid,
        "metadata": metadata,
        "state": state,
    })
    .to_string();
    let fds = [fd.as_raw_fd()];
    let iov = [IoSlice::new(msg.as_bytes())];
    nix::sys::socket::sendmsg::<()>(
        sock.as_raw_fd(),
        &iov,
        &[nix::sys::socket::ControlMessage::ScmRights(&fds)],
        nix::sys::socket::MsgFlags::empty(),
        None,
    )
    .map_err(|e| RuntimeError::Init(format!("sending seccomp fd to {}: {e}", path.display())))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(json: &str) -> LinuxSeccomp {
        serde_json::from_str(json).expect("seccomp json")
    }

    #[test]
    fn compiles_a_profile() {
        let s = parse(
            r#"{"defaultAction":"SCMP_ACT_ALLOW","architectures":["SCMP_ARCH_X86_64"],
            "syscalls":[{"names":["getcwd"],"action":"SCMP_ACT_ERRNO","errnoRet":1},
            {"names":["personality"],"action":"SCMP_ACT_ERRNO","args":[{"index":0,"value":8,"op":"SCMP_CMP_EQ"}]},
            {"names":["clone"],"action":"SCMP_ACT_ERRNO","args":[{"index":0,"value":2114060288,"valueTwo":0,"op":"SCMP_CMP_MASKED_EQ"}]}]}"#,
        );
        compile(&s).expect("compiles");
    }

    #[test]
    fn unknown_syscall_is_an_error() {
        let s = parse(
            r#"{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["no_such_call"],"action":"SCMP_ACT_ERRNO"}]}"#,
        );
        let Err(e) = compile(&s) else {
            panic!("an unknown syscall must be refused")
        };
        assert!(e.to_string().contains("no_such_call"), "{e}");
    }

    #[test]
    fn notify_needs_listener() {
        let s = parse(
            r#"{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["mkdir"],"action":"SCMP_ACT_NOTIFY"}]}"#,
        );
        assert!(Filter::prepare(&s).is_err());
    }
}
