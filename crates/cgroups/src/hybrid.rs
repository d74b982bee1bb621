//! Hybrid: the v1 hierarchies for the controllers bound to v1, plus a directory in the
//! cgroup2 mount for whatever is left there (hugetlb on this project's CI hosts), as runc.

use crate::mountinfo::V1Hierarchy;
use crate::oom::OomNotifier;
use crate::stats::Stats;
use crate::v1::V1Manager;
use crate::v2::V2Manager;
use crate::{CgroupConfig, CgroupError, CgroupManager, FreezerState, LayoutKind, Signal};
use oci_spec::runtime::LinuxResources;
use std::path::PathBuf;
use std::sync::OnceLock;

/// The manager for hybrid hosts.
#[derive(Debug)]
pub struct HybridManager {
    v1: V1Manager,
    v2: V2Manager,
    /// The unified root's cgroup.controllers, read when first needed.
    unified_controllers: OnceLock<Vec<String>>,
}

impl HybridManager {
    /// A manager for `config` over the v1 `hierarchies` and the cgroup2 mount `unified`.
    pub fn new(hierarchies: Vec<V1Hierarchy>, unified: PathBuf, config: CgroupConfig) -> Self {
        HybridManager {
            v1: V1Manager::new(hierarchies, config.clone()),
            v2: V2Manager::new(unified, config),
            unified_controllers: OnceLock::new(),
        }
    }

    /// The v1 half.
    pub fn v1(&self) -> &V1Manager {
        &self.v1
    }

    /// The unified half.
    pub fn v2(&self) -> &V2Manager {
        &self.v2
    }

    fn unified_has(&self, controller: &str) -> Result<bool, CgroupError> {
        if self.unified_controllers.get().is_none() {
            let c = self.v2.root_controllers()?;
            let _ = self.unified_controllers.set(c);
        }
        Ok(self
            .unified_controllers
            .get()
            .is_some_and(|c| c.iter().any(|x| x == controller)))
    }

    /// Splits resources: what v1 cannot take but the unified hierarchy can goes there.
    fn split(&self, r: &LinuxResources) -> Result<(LinuxResources, LinuxResources), CgroupError> {
        let mut v1 = r.clone();
        let mut v2 = LinuxResources::default();
        let has_huge = r.hugepage_limits().as_ref().is_some_and(|l| !l.is_empty());
        if has_huge && !self.v1.has("hugetlb") && self.unified_has("hugetlb")? {
            v2.set_hugepage_limits(v1.hugepage_limits_mut().take());
        }
        let has_rdma = r.rdma().as_ref().is_some_and(|l| !l.is_empty());
        if has_rdma && !self.v1.has("rdma") && self.unified_has("rdma")? {
            v2.set_rdma(v1.rdma_mut().take());
        }
        if let Some(u) = v1.unified_mut().take().filter(|u| !u.is_empty()) {
            for k in u.keys() {
                let ctrl = k.split('.').next().unwrap_or("");
                if ctrl != "cgroup" && !self.unified_has(ctrl)? {
                    return Err(CgroupError::Unsupported {
                        resource: format!("unified[{k:?}]"),
                        reason: format!(
                            "on this hybrid host the {ctrl} controller is bound to cgroup v1; the unified hierarchy has only {:?}",
                            self.unified_controllers.get().cloned().unwrap_or_default()
                        ),
                    });
                }
            }
            v2.set_unified(Some(u));
        }
        Ok((v1, v2))
    }
}

impl CgroupManager for HybridManager {
    fn kind(&self) -> LayoutKind {
        LayoutKind::Hybrid
    }

    fn config(&self) -> &CgroupConfig {
        self.v1.config()
    }

    fn create(&self) -> Result<(), CgroupError> {
        self.v1.create()?;
        self.v2.create()
    }

    fn apply(&self, pid: i32) -> Result<(), CgroupError> {
        self.v1.apply(pid)?;
        self.v2.apply(pid)
    }

    fn create_unified(&self) -> Result<(), CgroupError> {
        self.v2.create()
    }

    fn join_self(&self, in_unified: bool) -> Result<(), CgroupError> {
        self.v1.join_self(in_unified)?;
        self.v2.join_self(in_unified)
    }

    fn set(&self, r: &LinuxResources) -> Result<(), CgroupError> {
        if crate::resources::is_empty(r) {
            return Ok(());
        }
        let (r1, r2) = self.split(r)?;
        self.v1.set(&r1)?;
        self.v2.set(&r2)
    }

    fn freeze(&self, frozen: bool) -> Result<(), CgroupError> {
        self.v1.freeze(frozen)
    }

    fn freezer_state(&self) -> Result<FreezerState, CgroupError> {
        self.v1.freezer_state()
    }

    fn pids(&self) -> Result<Vec<i32>, CgroupError> {
        self.v1.pids()
    }

    fn stats(&self) -> Result<Stats, CgroupError> {
        let mut s = self.v1.v1_stats()?;
        if !self.v1.has("hugetlb") {
            self.v2.hugetlb_stats(&mut s)?;
        }
        Ok(s)
    }

    fn oom_kill_count(&self) -> Result<u64, CgroupError> {
        self.v1.oom_kill_count()
    }

    fn oom_notifier(&self) -> Result<OomNotifier, CgroupError> {
        self.v1.oom_notifier()
    }

    fn kill_all(&self, signal: Signal) -> Result<(), CgroupError> {
        self.v1.kill_all(signal)
    }

    fn destroy(&self) -> Result<(), CgroupError> {
        let a = self.v1.destroy();
        let b = self.v2.destroy();
        a.and(b)
    }

    fn exists(&self) -> bool {
        self.v1.exists()
    }

    fn unified_dir(&self) -> Option<PathBuf> {
        Some(self.v2.dir().to_path_buf())
    }
}
