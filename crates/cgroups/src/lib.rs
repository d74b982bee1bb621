//! cgroup managers for the runtime: one trait, three layouts (v1, unified v2, hybrid).
//!
//! The runtime only ever talks to [`CgroupManager`]; which implementation it gets is decided
//! at run time from the host's mounts by [`open`]:
//! - [`V1Manager`]: one directory per mounted v1 hierarchy (comounted controllers share one);
//! - [`V2Manager`]: one directory in the unified hierarchy, controllers enabled on the way
//!   down through `cgroup.subtree_control`, devices by an eBPF program;
//! - [`HybridManager`]: the v1 hierarchies for the controllers plus a directory in the
//!   cgroup2 mount (systemd's hybrid mode), which holds whatever controllers are not bound to
//!   v1 (hugetlb on Debian 12 with `systemd.unified_cgroup_hierarchy=0`).
//!
//! Start-path costs: [`CgroupManager::apply`] makes one `mkdir` and one `cgroup.procs` write
//! per hierarchy and reads nothing unless it created a cpuset (v1) or enabled controllers
//! (v2) level. Values of 0 / `None` in the resources mean "leave alone", as in runc; a
//! resource the layout cannot honour is an error naming it, never silently dropped.

mod bpf;
mod config;
pub mod devices;
mod error;
mod fsutil;
mod hybrid;
mod mountinfo;
mod oom;
mod resources;
pub mod stats;
mod v1;
mod v2;

pub use bpf::{device_filter_program, Insn};
pub use config::{default_config, resolve_config, CgroupConfig, DEFAULT_PARENT};
pub use error::CgroupError;
pub use hybrid::HybridManager;
pub use mountinfo::{parse_mountinfo, CgroupMounts, Layout, LayoutKind, V1Hierarchy};
pub use nix::sys::signal::Signal;
pub use oom::OomNotifier;
pub use resources::shares_to_weight;
pub use stats::Stats;
pub use v1::V1Manager;
pub use v2::V2Manager;

use oci_spec::runtime::LinuxResources;
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

/// The freezer state of a cgroup, as `state`/`pause` need it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FreezerState {
    /// Running.
    Thawed,
    /// Asked to freeze, not every task stopped yet.
    Freezing,
    /// Every task stopped.
    Frozen,
}

/// The operations the runtime needs on a container's cgroup(s).
pub trait CgroupManager: Send + Sync {
    /// Which layout this manager drives.
    fn kind(&self) -> LayoutKind;
    /// The cgroup paths it manages.
    fn config(&self) -> &CgroupConfig;
    /// Creates the cgroup directories (in every hierarchy of the layout) without moving a
    /// process, so [`set`](Self::set) can run before the container's init exists.
    /// Idempotent.
    fn create(&self) -> Result<(), CgroupError>;
    /// Creates the cgroup directories if needed and moves `pid` in: one `cgroup.procs`
    /// write per hierarchy.
    fn apply(&self, pid: i32) -> Result<(), CgroupError>;
    /// Moves the calling process in from inside (call it in a single-threaded process, e.g.
    /// a container's init, after [`create`](Self::create)). On v1 it writes "0" to each
    /// hierarchy's `tasks`: a thread moving itself skips the kernel's global threadgroup
    /// lock, whose writer side waits for an RCU grace period (~14 ms after a quiet spell)
    /// on every `cgroup.procs` write. `in_unified`: the process already is in the unified
    /// cgroup (cloned there with CLONE_INTO_CGROUP), so the unified side is left alone.
    fn join_self(&self, in_unified: bool) -> Result<(), CgroupError>;
    /// Creates only the unified (v2) directory, if the layout has one: what cloning with
    /// CLONE_INTO_CGROUP needs up front, so the v1 directories can be made meanwhile.
    fn create_unified(&self) -> Result<(), CgroupError>;
    /// Writes the resources where the kernel reads them. Every resource is checked against
    /// the layout before anything is written; one that cannot be honoured is an error
    /// naming it.
    fn set(&self, resources: &LinuxResources) -> Result<(), CgroupError>;
    /// Freezes (true) or thaws (false) every process in the cgroup; returns once done.
    fn freeze(&self, frozen: bool) -> Result<(), CgroupError>;
    /// The freezer's state.
    fn freezer_state(&self) -> Result<FreezerState, CgroupError>;
    /// PIDs (host namespace) of every process in the cgroup and the cgroups below it.
    fn pids(&self) -> Result<Vec<i32>, CgroupError>;
    /// Resource usage, shaped like runc's `events --stats` data. Controllers that are not
    /// there leave their part at zero.
    fn stats(&self) -> Result<Stats, CgroupError>;
    /// How many processes the OOM killer killed in the cgroup so far.
    fn oom_kill_count(&self) -> Result<u64, CgroupError>;
    /// A pollable notifier of OOM kills in the cgroup.
    fn oom_notifier(&self) -> Result<OomNotifier, CgroupError>;
    /// Sends `signal` to every process in the cgroup: freeze, signal each, thaw, as runc
    /// does (v2 with SIGKILL: `cgroup.kill`).
    fn kill_all(&self, signal: Signal) -> Result<(), CgroupError>;
    /// Removes the cgroup directories (and any below them) in every hierarchy; missing ones
    /// are not an error.
    fn destroy(&self) -> Result<(), CgroupError>;
    /// Whether the cgroup directory exists (in the hierarchy used for pids).
    fn exists(&self) -> bool;
    /// The directory in the unified hierarchy, if the layout has one: a runtime can open it
    /// for `clone3(CLONE_INTO_CGROUP)`.
    fn unified_dir(&self) -> Option<PathBuf>;
}

/// Opens the manager for `config` on this host, detecting the layout (see
/// [`Layout::detect`]). Nothing is created until [`CgroupManager::create`] or
/// [`CgroupManager::apply`].
pub fn open(config: CgroupConfig) -> Result<Box<dyn CgroupManager>, CgroupError> {
    open_with(Layout::detect()?, config)
}

/// Opens the manager for `config` on a given layout.
pub fn open_with(
    layout: Layout,
    config: CgroupConfig,
) -> Result<Box<dyn CgroupManager>, CgroupError> {
    config.validate()?;
    Ok(match layout {
        Layout::V1 { hierarchies } => Box::new(V1Manager::new(hierarchies, config)),
        Layout::V2 { mount_point } => Box::new(V2Manager::new(mount_point, config)),
        Layout::Hybrid {
            hierarchies,
            unified,
        } => Box::new(HybridManager::new(hierarchies, unified, config)),
    })
}

/// runc's signalAllProcesses: freeze if a freezer is there, signal every pid, thaw.
pub(crate) fn signal_all(
    freeze: &dyn Fn(bool) -> Result<(), CgroupError>,
    pids: &dyn Fn() -> Result<Vec<i32>, CgroupError>,
    signal: Signal,
) -> Result<(), CgroupError> {
    let frozen = match freeze(true) {
        Ok(()) => true,
        Err(CgroupError::Unsupported { .. }) => false,
        Err(e) => return Err(e),
    };
    let res = pids().and_then(|pids| {
        for pid in pids {
            match nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), signal) {
                Ok(()) | Err(nix::errno::Errno::ESRCH) => {}
                Err(source) => {
                    return Err(CgroupError::Signal {
                        signal: signal.as_str().to_string(),
                        pid,
                        source,
                    })
                }
            }
        }
        Ok(())
    });
    if frozen {
        let thaw = freeze(false);
        res?;
        thaw
    } else {
        res
    }
}
