//! The cgroup v2 device controller: an eBPF `BPF_PROG_TYPE_CGROUP_DEVICE` program built from
//! a [`DevicePolicy`], loaded and attached with `bpf(2)`.
//!
//! The program (same shape as runc's devicefilter) reads `struct bpf_cgroup_dev_ctx
//! { u32 access_type; u32 major; u32 minor; }` into R2 = type, R3 = access, R4 = major,
//! R5 = minor, then tests each exception in turn, returning its verdict on the first match
//! and the policy's default at the end.

use crate::devices::{DevType, DevicePolicy, ACC_ALL};
use crate::CgroupError;
use std::fs::File;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::Path;

/// One eBPF instruction (`struct bpf_insn`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Insn {
    /// Opcode.
    pub code: u8,
    /// Destination register.
    pub dst: u8,
    /// Source register.
    pub src: u8,
    /// Offset (jumps: instructions to skip).
    pub off: i16,
    /// Immediate.
    pub imm: i32,
}

impl Insn {
    /// The kernel's 8-byte encoding (little-endian host assumed for the register nibbles:
    /// dst in the low four bits).
    pub fn to_bytes(self) -> [u8; 8] {
        let off = self.off.to_ne_bytes();
        let imm = self.imm.to_ne_bytes();
        [
            self.code,
            (self.src << 4) | (self.dst & 0x0f),
            off[0],
            off[1],
            imm[0],
            imm[1],
            imm[2],
            imm[3],
        ]
    }
}

const LDX_MEM_W: u8 = 0x61; // BPF_LDX | BPF_MEM | BPF_W
const ALU32_AND_K: u8 = 0x54; // BPF_ALU | BPF_AND | BPF_K
const ALU32_RSH_K: u8 = 0x74; // BPF_ALU | BPF_RSH | BPF_K
const ALU32_MOV_K: u8 = 0xb4; // BPF_ALU | BPF_MOV | BPF_K
const ALU32_MOV_X: u8 = 0xbc; // BPF_ALU | BPF_MOV | BPF_X
const JNE_K: u8 = 0x55; // BPF_JMP | BPF_JNE | BPF_K
const JNE_X: u8 = 0x5d; // BPF_JMP | BPF_JNE | BPF_X
const EXIT: u8 = 0x95; // BPF_JMP | BPF_EXIT

/// `BPF_DEVCG_DEV_BLOCK` / `BPF_DEVCG_DEV_CHAR`.
const DEV_BLOCK: i32 = 1;
const DEV_CHAR: i32 = 2;

fn insn(code: u8, dst: u8, src: u8, off: i16, imm: i32) -> Insn {
    Insn {
        code,
        dst,
        src,
        off,
        imm,
    }
}

/// The device filter program for `policy`.
pub fn device_filter_program(policy: &DevicePolicy) -> Vec<Insn> {
    let mut p = vec![
        insn(LDX_MEM_W, 2, 1, 0, 0),
        insn(ALU32_AND_K, 2, 0, 0, 0xffff),
        insn(LDX_MEM_W, 3, 1, 0, 0),
        insn(ALU32_RSH_K, 3, 0, 0, 16),
        insn(LDX_MEM_W, 4, 1, 4, 0),
        insn(LDX_MEM_W, 5, 1, 8, 0),
    ];
    for r in policy.exceptions() {
        // Each test jumps to the end of this block; the offset is fixed up below.
        let mut block: Vec<Insn> = Vec::with_capacity(8);
        let ty = match r.typ {
            DevType::Block => DEV_BLOCK,
            DevType::Char => DEV_CHAR,
            // Exceptions never have type `a`: an `a` rule resets the policy instead.
            DevType::All => continue,
        };
        block.push(insn(JNE_K, 2, 0, 0, ty));
        if r.access != ACC_ALL {
            block.push(insn(ALU32_MOV_X, 1, 3, 0, 0));
            block.push(insn(ALU32_AND_K, 1, 0, 0, i32::from(r.access)));
            block.push(insn(JNE_X, 1, 3, 0, 0));
        }
        if let Some(ma) = r.major {
            block.push(insn(JNE_K, 4, 0, 0, ma as i32));
        }
        if let Some(mi) = r.minor {
            block.push(insn(JNE_K, 5, 0, 0, mi as i32));
        }
        block.push(insn(ALU32_MOV_K, 0, 0, 0, i32::from(r.allow)));
        block.push(insn(EXIT, 0, 0, 0, 0));
        let n = block.len();
        for (i, ins) in block.iter_mut().enumerate() {
            if ins.code == JNE_K || ins.code == JNE_X {
                ins.off = (n - i - 1) as i16;
            }
        }
        p.extend(block);
    }
    p.push(insn(ALU32_MOV_K, 0, 0, 0, i32::from(policy.default_allow)));
    p.push(insn(EXIT, 0, 0, 0, 0));
    p
}

// bpf(2) commands, program and attach types, flags (linux/bpf.h).
const BPF_PROG_LOAD: libc::c_int = 5;
const BPF_PROG_ATTACH: libc::c_int = 8;
const BPF_PROG_DETACH: libc::c_int = 9;
const BPF_PROG_GET_FD_BY_ID: libc::c_int = 13;
const BPF_PROG_QUERY: libc::c_int = 16;
const BPF_PROG_TYPE_CGROUP_DEVICE: u32 = 15;
const BPF_CGROUP_DEVICE: u32 = 6;
const BPF_F_ALLOW_MULTI: u32 = 2;

#[repr(C)]
#[derive(Default)]
struct ProgLoadAttr {
    prog_type: u32,
    insn_cnt: u32,
    insns: u64,
    license: u64,
    log_level: u32,
    log_size: u32,
    log_buf: u64,
    kern_version: u32,
    prog_flags: u32,
    prog_name: [u8; 16],
    prog_ifindex: u32,
    expected_attach_type: u32,
}

#[repr(C)]
#[derive(Default)]
struct AttachAttr {
    target_fd: u32,
    attach_bpf_fd: u32,
    attach_type: u32,
    attach_flags: u32,
    replace_bpf_fd: u32,
}

#[repr(C)]
#[derive(Default)]
struct QueryAttr {
    target_fd: u32,
    attach_type: u32,
    query_flags: u32,
    attach_flags: u32,
    prog_ids: u64,
    prog_cnt: u32,
    _pad: u32,
}

#[repr(C)]
#[derive(Default)]
struct GetFdAttr {
    prog_id: u32,
    next_id: u32,
    open_flags: u32,
}

/// The `bpf_attr` variants this module passes to the kernel.
trait Attr {}
impl Attr for ProgLoadAttr {}
impl Attr for AttachAttr {}
impl Attr for QueryAttr {}
impl Attr for GetFdAttr {}

/// `bpf(cmd, attr, sizeof attr)`; returns the syscall's non-negative result.
fn sys_bpf<A: Attr>(cmd: libc::c_int, attr: &mut A) -> io::Result<libc::c_long> {
    // SAFETY: `attr` is a live, exclusively borrowed #[repr(C)] struct laid out as the
    // kernel's `union bpf_attr` member for `cmd`, and we pass its exact size, so the kernel
    // reads and writes only inside it. The u64 pointer fields of the attrs (instructions,
    // license, log buffer, id array) are set by the callers in this module to buffers that
    // are alive across this call and as long as the count/size fields say.
    let r = unsafe {
        libc::syscall(
            libc::SYS_bpf,
            cmd,
            attr as *mut A as *mut libc::c_void,
            std::mem::size_of::<A>() as libc::c_uint,
        )
    };
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(r)
    }
}

/// [`sys_bpf`] for commands that return a new file descriptor.
fn sys_bpf_fd<A: Attr>(cmd: libc::c_int, attr: &mut A) -> io::Result<OwnedFd> {
    let fd = sys_bpf(cmd, attr)? as libc::c_int;
    // SAFETY: for BPF_PROG_LOAD and BPF_PROG_GET_FD_BY_ID a non-negative result is a new
    // file descriptor that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

fn load(insns: &[Insn], cgroup: &Path) -> Result<OwnedFd, CgroupError> {
    let bytes: Vec<u8> = insns.iter().flat_map(|i| i.to_bytes()).collect();
    let license = b"Apache\0";
    let mut attr = ProgLoadAttr {
        prog_type: BPF_PROG_TYPE_CGROUP_DEVICE,
        insn_cnt: insns.len() as u32,
        insns: bytes.as_ptr() as u64,
        license: license.as_ptr() as u64,
        ..Default::default()
    };
    let name = b"berth_devices";
    attr.prog_name[..name.len()].copy_from_slice(name);
    match sys_bpf_fd(BPF_PROG_LOAD, &mut attr) {
        Ok(fd) => Ok(fd),
        Err(source) => {
            // Load again with the verifier's log to say why.
            let mut log = vec![0u8; 64 * 1024];
            attr.log_level = 1;
            attr.log_size = log.len() as u32;
            attr.log_buf = log.as_mut_ptr() as u64;
            let _ = sys_bpf(BPF_PROG_LOAD, &mut attr);
            let end = log.iter().position(|&b| b == 0).unwrap_or(log.len());
            Err(CgroupError::BpfLoad {
                path: cgroup.to_path_buf(),
                source,
                log: String::from_utf8_lossy(&log[..end]).into_owned(),
            })
        }
    }
}

/// The programs attached to `cgroup` for devices: their ids and the attach flags.
fn query(cg: &File, cgroup: &Path) -> Result<(Vec<u32>, u32), CgroupError> {
    let mut ids = vec![0u32; 64];
    let mut attr = QueryAttr {
        target_fd: cg.as_raw_fd() as u32,
        attach_type: BPF_CGROUP_DEVICE,
        prog_ids: ids.as_mut_ptr() as u64,
        prog_cnt: ids.len() as u32,
        ..Default::default()
    };
    sys_bpf(BPF_PROG_QUERY, &mut attr)
        .map_err(|source| sys_err("BPF_PROG_QUERY", cgroup, source))?;
    ids.truncate(attr.prog_cnt as usize);
    Ok((ids, attr.attach_flags))
}

fn sys_err(op: &'static str, path: &Path, source: io::Error) -> CgroupError {
    CgroupError::Sys {
        op,
        path: path.to_path_buf(),
        source,
    }
}

fn attach(cmd: libc::c_int, cg: &File, prog: &OwnedFd, flags: u32) -> io::Result<()> {
    let mut attr = AttachAttr {
        target_fd: cg.as_raw_fd() as u32,
        attach_bpf_fd: prog.as_raw_fd() as u32,
        attach_type: BPF_CGROUP_DEVICE,
        attach_flags: flags,
        replace_bpf_fd: 0,
    };
    sys_bpf(cmd, &mut attr).map(drop)
}

fn detach_id(cg: &File, id: u32, cgroup: &Path) -> Result<(), CgroupError> {
    let mut a = GetFdAttr {
        prog_id: id,
        ..Default::default()
    };
    let prog = match sys_bpf_fd(BPF_PROG_GET_FD_BY_ID, &mut a) {
        Ok(fd) => fd,
        Err(e) if e.raw_os_error() == Some(libc::ENOENT) => return Ok(()),
        Err(e) => return Err(sys_err("BPF_PROG_GET_FD_BY_ID", cgroup, e)),
    };
    match attach(BPF_PROG_DETACH, cg, &prog, 0) {
        Err(e) if e.raw_os_error() != Some(libc::ENOENT) => {
            Err(sys_err("BPF_PROG_DETACH", cgroup, e))
        }
        _ => Ok(()),
    }
}

/// Makes `policy` the device policy of the v2 cgroup `dir`: loads its program, attaches it
/// (multi), then detaches the programs that were there before, as runc does. An allow-all
/// policy with no exceptions just detaches.
pub(crate) fn apply_device_filter(dir: &Path, policy: &DevicePolicy) -> Result<(), CgroupError> {
    let cg = File::open(dir).map_err(|source| CgroupError::Read {
        path: dir.to_path_buf(),
        source,
    })?;
    let (old, flags) = query(&cg, dir)?;
    if policy.default_allow && policy.exceptions().next().is_none() {
        for id in old {
            detach_id(&cg, id, dir)?;
        }
        return Ok(());
    }
    let prog = load(&device_filter_program(policy), dir)?;
    if !old.is_empty() && flags & BPF_F_ALLOW_MULTI == 0 {
        // A program attached without ALLOW_MULTI blocks multi attachments: swap it out.
        for id in &old {
            detach_id(&cg, *id, dir)?;
        }
        return attach(BPF_PROG_ATTACH, &cg, &prog, BPF_F_ALLOW_MULTI)
            .map_err(|e| sys_err("BPF_PROG_ATTACH", dir, e));
    }
    attach(BPF_PROG_ATTACH, &cg, &prog, BPF_F_ALLOW_MULTI)
        .map_err(|e| sys_err("BPF_PROG_ATTACH", dir, e))?;
    for id in old {
        detach_id(&cg, id, dir)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::devices::{DeviceRule, ACC_MKNOD, ACC_READ, ACC_WRITE};

    #[test]
    fn deny_all_program_is_prologue_and_default() {
        let p = device_filter_program(&DevicePolicy::deny_all());
        assert_eq!(p.len(), 8);
        assert_eq!(p[6], insn(ALU32_MOV_K, 0, 0, 0, 0));
        assert_eq!(p[7].code, EXIT);
        assert_eq!(p[0].to_bytes(), [0x61, 0x12, 0, 0, 0, 0, 0, 0]);
        assert_eq!(p[4].to_bytes(), [0x61, 0x14, 4, 0, 0, 0, 0, 0]);
    }

    #[test]
    fn rule_blocks_and_jump_offsets() {
        let policy = DevicePolicy::from_rules(&[
            DeviceRule {
                allow: true,
                typ: DevType::Block,
                major: None,
                minor: None,
                access: ACC_MKNOD,
            },
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
                access: ACC_READ | ACC_WRITE,
            },
        ])
        .unwrap();
        let p = device_filter_program(&policy);
        // Exceptions keep their order: b *:* m, c 1:3 rwm, c 136:* rw.
        // block 1: jne type; mov r1,r3; and r1,1; jne r1,r3; mov r0,1; exit  (6)
        let b1 = &p[6..12];
        assert_eq!(b1[0], insn(JNE_K, 2, 0, 5, DEV_BLOCK));
        assert_eq!(b1[1], insn(ALU32_MOV_X, 1, 3, 0, 0));
        assert_eq!(b1[2], insn(ALU32_AND_K, 1, 0, 0, 1));
        assert_eq!(b1[3], insn(JNE_X, 1, 3, 2, 0));
        assert_eq!(b1[4], insn(ALU32_MOV_K, 0, 0, 0, 1));
        // block 2: jne type; jne major; jne minor; mov; exit (5)
        let b2 = &p[12..17];
        assert_eq!(b2[0], insn(JNE_K, 2, 0, 4, DEV_CHAR));
        assert_eq!(b2[1], insn(JNE_K, 4, 0, 3, 1));
        assert_eq!(b2[2], insn(JNE_K, 5, 0, 2, 3));
        // block 3: jne type; mov; and 6; jne; jne major; mov; exit (7)
        let b3 = &p[17..24];
        assert_eq!(b3[0].off, 6);
        assert_eq!(b3[2].imm, 6);
        assert_eq!(b3[3].off, 3);
        assert_eq!(b3[4], insn(JNE_K, 4, 0, 2, 136));
        assert_eq!(
            &p[24..],
            &[insn(ALU32_MOV_K, 0, 0, 0, 0), insn(EXIT, 0, 0, 0, 0)]
        );
    }

    #[test]
    fn allow_default_program_denies_exceptions() {
        let mut policy = DevicePolicy::deny_all();
        policy
            .apply(&DeviceRule {
                allow: true,
                typ: DevType::All,
                major: None,
                minor: None,
                access: ACC_ALL,
            })
            .unwrap();
        policy
            .apply(&DeviceRule {
                allow: false,
                typ: DevType::Char,
                major: Some(10),
                minor: Some(200),
                access: ACC_ALL,
            })
            .unwrap();
        let p = device_filter_program(&policy);
        let n = p.len();
        assert_eq!(
            p[n - 4],
            insn(ALU32_MOV_K, 0, 0, 0, 0),
            "exception verdict is deny"
        );
        assert_eq!(p[n - 2], insn(ALU32_MOV_K, 0, 0, 0, 1), "default is allow");
    }
}
