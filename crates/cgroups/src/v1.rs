//! cgroup v1: one directory per mounted hierarchy.

use crate::devices::{rules_from_oci, DevicePolicy};
use crate::fsutil::{self, is_not_found};
use crate::mountinfo::{self, V1Hierarchy};
use crate::oom::{oom_kill_of, OomNotifier};
use crate::resources::{self, check_page_size, rdma_line};
use crate::stats::{self, Hugetlb, MemoryEntry, Stats};
use crate::{CgroupConfig, CgroupError, CgroupManager, FreezerState, LayoutKind, Signal};
use oci_spec::runtime::LinuxResources;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The manager for hosts with cgroup v1 only (also the v1 half of [`crate::HybridManager`]).
#[derive(Debug, Clone)]
pub struct V1Manager {
    config: CgroupConfig,
    /// Each mounted hierarchy with the container's directory in it.
    hierarchies: Vec<(V1Hierarchy, PathBuf)>,
}

/// Either checks (dry run) or performs the writes of a `set`, so every resource is
/// validated before the first write.
struct Writer<'a> {
    mgr: &'a V1Manager,
    dry: bool,
}

impl Writer<'_> {
    fn dir(&self, controller: &str, resource: &str) -> Result<&Path, CgroupError> {
        self.mgr
            .dir(controller)
            .ok_or_else(|| CgroupError::Unsupported {
                resource: resource.to_string(),
                reason: format!("the cgroup v1 {controller} controller is not mounted"),
            })
    }

    fn write(
        &self,
        controller: &str,
        resource: &str,
        file: &str,
        value: &str,
    ) -> Result<(), CgroupError> {
        let dir = self.dir(controller, resource)?;
        if self.dry {
            return Ok(());
        }
        fsutil::write(dir, file, value).map_err(|e| missing_is_unsupported(e, resource))
    }
}

/// A missing file means the kernel lacks the feature: say which resource asked for it.
fn missing_is_unsupported(e: CgroupError, resource: &str) -> CgroupError {
    if is_not_found(&e) {
        let path = match &e {
            CgroupError::Write { path, .. } | CgroupError::Read { path, .. } => path.clone(),
            _ => PathBuf::new(),
        };
        CgroupError::Unsupported {
            resource: resource.to_string(),
            reason: format!("{} does not exist on this kernel", path.display()),
        }
    } else {
        e
    }
}

impl V1Manager {
    /// A manager for `config` over the given hierarchies.
    pub fn new(hierarchies: Vec<V1Hierarchy>, config: CgroupConfig) -> Self {
        let hierarchies = hierarchies
            .into_iter()
            .map(|h| {
                let dir = mountinfo::join(&h.mount_point, &h.root, config.path_for(&h.controllers));
                (h, dir)
            })
            .collect();
        V1Manager {
            config,
            hierarchies,
        }
    }

    /// The container's directory in the hierarchy of `controller`, if mounted.
    pub fn dir(&self, controller: &str) -> Option<&Path> {
        self.hierarchies
            .iter()
            .find(|(h, _)| h.has(controller))
            .map(|(_, d)| d.as_path())
    }

    /// Whether a v1 hierarchy has `controller`.
    pub fn has(&self, controller: &str) -> bool {
        self.dir(controller).is_some()
    }

    /// The directory used for pids and existence: freezer's, else pids', else any.
    fn main_dir(&self) -> Option<&Path> {
        ["freezer", "pids", "devices", "memory"]
            .iter()
            .find_map(|c| self.dir(c))
            .or_else(|| self.hierarchies.first().map(|(_, d)| d.as_path()))
    }

    fn ensure(&self, h: &V1Hierarchy, dir: &Path) -> Result<(), CgroupError> {
        let created = fsutil::mkdir_all(dir)?;
        if h.has("cpuset") && !created.is_empty() {
            // A new cpuset is empty and refuses tasks (ENOSPC): copy the parent's.
            let parent = created[0].parent().unwrap_or(&h.mount_point);
            let cpus = fsutil::read(parent, "cpuset.cpus")?;
            let mems = fsutil::read(parent, "cpuset.mems")?;
            for d in &created {
                fsutil::write(d, "cpuset.cpus", cpus.trim_end())?;
                fsutil::write(d, "cpuset.mems", mems.trim_end())?;
            }
        }
        Ok(())
    }

    /// The writes of `set`, in runc's order of subsystems.
    fn set_resources(&self, r: &LinuxResources, dry: bool) -> Result<(), CgroupError> {
        let w = Writer { mgr: self, dry };
        if let Some(cpu) = r.cpu() {
            if let Some(cpus) = cpu.cpus().as_deref().filter(|s| !s.is_empty()) {
                w.write("cpuset", "cpu.cpus", "cpuset.cpus", cpus)?;
            }
            if let Some(mems) = cpu.mems().as_deref().filter(|s| !s.is_empty()) {
                w.write("cpuset", "cpu.mems", "cpuset.mems", mems)?;
            }
        }
        if let Some(rules) = r.devices() {
            let target = DevicePolicy::from_rules(&rules_from_oci(rules)?)?;
            let dir = w.dir("devices", "devices")?;
            if !dry {
                let current = DevicePolicy::from_v1_list(&fsutil::read(dir, "devices.list")?)?;
                // One open per file, one write(2) per rule (the kernel takes one rule per
                // write): a dozen rules cost a dozen writes, not three dozen syscalls.
                let mut files: Vec<(&str, std::fs::File)> = Vec::with_capacity(2);
                for rule in current.transition(&target) {
                    let name = rule.v1_file();
                    let idx = match files.iter().position(|(n, _)| *n == name) {
                        Some(i) => i,
                        None => {
                            files.push((name, fsutil::open_write(&dir.join(name))?));
                            files.len() - 1
                        }
                    };
                    fsutil::write_to(&mut files[idx].1, &dir.join(name), &rule.v1_string())?;
                }
            }
        }
        if let Some(m) = r.memory() {
            self.set_memory(&w, m)?;
        }
        if let Some(cpu) = r.cpu() {
            self.set_cpu(&w, cpu)?;
        }
        if let Some(p) = r.pids() {
            if p.limit() != 0 {
                let v = if p.limit() > 0 {
                    p.limit().to_string()
                } else {
                    "max".into()
                };
                w.write("pids", "pids.limit", "pids.max", &v)?;
            }
        }
        if let Some(b) = r.block_io() {
            self.set_blkio(&w, b)?;
        }
        if let Some(limits) = r.hugepage_limits().as_ref().filter(|l| !l.is_empty()) {
            let sizes = stats::hugepage_sizes();
            for l in limits {
                let res = format!("hugepageLimits[{}]", l.page_size());
                check_page_size(l.page_size(), &sizes)?;
                let dir = w.dir("hugetlb", &res)?;
                w.write(
                    "hugetlb",
                    &res,
                    &format!("hugetlb.{}.limit_in_bytes", l.page_size()),
                    &l.limit().to_string(),
                )?;
                let rsvd = format!("hugetlb.{}.rsvd.limit_in_bytes", l.page_size());
                if !dry && dir.join(&rsvd).exists() {
                    fsutil::write(dir, &rsvd, &l.limit().to_string())?;
                }
            }
        }
        if let Some(n) = r.network() {
            if let Some(id) = n.class_id().filter(|&c| c != 0) {
                w.write(
                    "net_cls",
                    "network.classID",
                    "net_cls.classid",
                    &id.to_string(),
                )?;
            }
            for p in n.priorities().iter().flatten() {
                let v = format!("{} {}", p.name(), p.priority());
                w.write("net_prio", "network.priorities", "net_prio.ifpriomap", &v)?;
            }
        }
        for (dev, l) in r.rdma().iter().flatten() {
            w.write(
                "rdma",
                &format!("rdma[{dev}]"),
                "rdma.max",
                &rdma_line(dev, l),
            )?;
        }
        if let Some((k, _)) = r.unified().as_ref().and_then(|u| u.iter().next()) {
            return Err(CgroupError::Unsupported {
                resource: format!("unified[{k:?}]"),
                reason: "unified (cgroup v2) keys need a cgroup v2 hierarchy; this host has cgroup v1 only".into(),
            });
        }
        Ok(())
    }

    fn set_memory(
        &self,
        w: &Writer,
        m: &oci_spec::runtime::LinuxMemory,
    ) -> Result<(), CgroupError> {
        let limit = m.limit().unwrap_or(0);
        let mut swap = m.swap().unwrap_or(0);
        if limit == -1 && swap == 0 {
            swap = -1;
        }
        let set_limit = |w: &Writer| {
            w.write(
                "memory",
                "memory.limit",
                "memory.limit_in_bytes",
                &limit.to_string(),
            )
        };
        let set_swap = |w: &Writer| {
            w.write(
                "memory",
                "memory.swap",
                "memory.memsw.limit_in_bytes",
                &swap.to_string(),
            )
        };
        if limit != 0 && swap != 0 {
            // Keep memory <= memory+swap at every step.
            let swap_first = if w.dry {
                true
            } else {
                let cur = fsutil::read(w.dir("memory", "memory.limit")?, "memory.limit_in_bytes")?;
                let cur = fsutil::parse_u64(Path::new("memory.limit_in_bytes"), &cur)?;
                swap == -1 || cur < swap as u64
            };
            if swap_first {
                set_swap(w)?;
                set_limit(w)?;
            } else {
                set_limit(w)?;
                set_swap(w)?;
            }
        } else {
            if limit != 0 {
                set_limit(w)?;
            }
            if swap != 0 {
                set_swap(w)?;
            }
        }
        if let Some(v) = m.reservation().filter(|&v| v != 0) {
            w.write(
                "memory",
                "memory.reservation",
                "memory.soft_limit_in_bytes",
                &v.to_string(),
            )?;
        }
        #[allow(deprecated)]
        if let Some(v) = m.kernel().filter(|&v| v != 0) {
            w.write(
                "memory",
                "memory.kernel",
                "memory.kmem.limit_in_bytes",
                &v.to_string(),
            )?;
        }
        if let Some(v) = m.kernel_tcp().filter(|&v| v != 0) {
            w.write(
                "memory",
                "memory.kernelTCP",
                "memory.kmem.tcp.limit_in_bytes",
                &v.to_string(),
            )?;
        }
        if let Some(s) = m.swappiness().filter(|&s| s != u64::MAX) {
            if s > 100 {
                return Err(CgroupError::Invalid {
                    resource: "memory.swappiness".into(),
                    reason: format!("{s} is not in 0..=100"),
                });
            }
            w.write(
                "memory",
                "memory.swappiness",
                "memory.swappiness",
                &s.to_string(),
            )?;
        }
        if m.disable_oom_killer() == Some(true) {
            w.write(
                "memory",
                "memory.disableOOMKiller",
                "memory.oom_control",
                "1",
            )?;
        }
        if let Some(h) = m.use_hierarchy() {
            w.write(
                "memory",
                "memory.useHierarchy",
                "memory.use_hierarchy",
                if h { "1" } else { "0" },
            )?;
        }
        Ok(())
    }

    fn set_cpu(&self, w: &Writer, c: &oci_spec::runtime::LinuxCpu) -> Result<(), CgroupError> {
        if let Some(s) = c.shares().filter(|&s| s != 0) {
            w.write("cpu", "cpu.shares", "cpu.shares", &s.to_string())?;
            if !w.dry {
                let got = fsutil::read(w.dir("cpu", "cpu.shares")?, "cpu.shares")?;
                if got.trim() != s.to_string() {
                    return Err(CgroupError::Invalid {
                        resource: "cpu.shares".into(),
                        reason: format!("the kernel clamped {s} to {}", got.trim()),
                    });
                }
            }
        }
        let quota = c.quota().unwrap_or(0);
        let period = c.period().unwrap_or(0);
        let mut period_pending = false;
        if period != 0 {
            match w.write(
                "cpu",
                "cpu.period",
                "cpu.cfs_period_us",
                &period.to_string(),
            ) {
                Ok(()) => {}
                // A shorter period can be refused while the old quota is in place: retry
                // after the quota.
                Err(CgroupError::Write { ref source, .. })
                    if source.raw_os_error() == Some(libc::EINVAL) && quota != 0 =>
                {
                    period_pending = true
                }
                Err(e) => return Err(e),
            }
        }
        if quota != 0 {
            w.write("cpu", "cpu.quota", "cpu.cfs_quota_us", &quota.to_string())?;
            if period_pending {
                w.write(
                    "cpu",
                    "cpu.period",
                    "cpu.cfs_period_us",
                    &period.to_string(),
                )?;
            }
        }
        if let Some(b) = c.burst() {
            w.write("cpu", "cpu.burst", "cpu.cfs_burst_us", &b.to_string())?;
        }
        let rt_period = c.realtime_period().unwrap_or(0);
        let rt_runtime = c.realtime_runtime().unwrap_or(0);
        let mut rt_pending = false;
        if rt_period != 0 {
            match w.write(
                "cpu",
                "cpu.realtimePeriod",
                "cpu.rt_period_us",
                &rt_period.to_string(),
            ) {
                Ok(()) => {}
                Err(CgroupError::Write { ref source, .. })
                    if source.raw_os_error() == Some(libc::EINVAL) && rt_runtime != 0 =>
                {
                    rt_pending = true
                }
                Err(e) => return Err(e),
            }
        }
        if rt_runtime != 0 {
            w.write(
                "cpu",
                "cpu.realtimeRuntime",
                "cpu.rt_runtime_us",
                &rt_runtime.to_string(),
            )?;
            if rt_pending {
                w.write(
                    "cpu",
                    "cpu.realtimePeriod",
                    "cpu.rt_period_us",
                    &rt_period.to_string(),
                )?;
            }
        }
        if let Some(i) = c.idle() {
            w.write("cpu", "cpu.idle", "cpu.idle", &i.to_string())?;
        }
        Ok(())
    }

    fn set_blkio(
        &self,
        w: &Writer,
        b: &oci_spec::runtime::LinuxBlockIo,
    ) -> Result<(), CgroupError> {
        let needs_weight = b.weight().is_some_and(|v| v != 0)
            || b.weight_device().as_ref().is_some_and(|d| !d.is_empty());
        // BFQ's file when the scheduler is BFQ, CFQ's (pre-5.0 kernels) otherwise.
        let prefix = if needs_weight && !w.dry {
            let dir = w.dir("blkio", "blockIO.weight")?;
            if dir.join("blkio.bfq.weight").exists() {
                "blkio.bfq."
            } else if dir.join("blkio.weight").exists() {
                "blkio."
            } else {
                return Err(CgroupError::Unsupported {
                    resource: "blockIO.weight".into(),
                    reason: format!(
                        "neither blkio.bfq.weight nor blkio.weight exists in {} (no BFQ/CFQ scheduler)",
                        dir.display()
                    ),
                });
            }
        } else {
            "blkio."
        };
        if let Some(v) = b.weight().filter(|&v| v != 0) {
            w.write(
                "blkio",
                "blockIO.weight",
                &format!("{prefix}weight"),
                &v.to_string(),
            )?;
        }
        if let Some(v) = b.leaf_weight().filter(|&v| v != 0) {
            w.write(
                "blkio",
                "blockIO.leafWeight",
                "blkio.leaf_weight",
                &v.to_string(),
            )?;
        }
        for d in b.weight_device().iter().flatten() {
            if let Some(v) = d.weight() {
                let line = format!("{}:{} {v}", d.major(), d.minor());
                w.write(
                    "blkio",
                    "blockIO.weightDevice",
                    &format!("{prefix}weight_device"),
                    &line,
                )?;
            }
            if let Some(v) = d.leaf_weight() {
                let line = format!("{}:{} {v}", d.major(), d.minor());
                w.write(
                    "blkio",
                    "blockIO.weightDevice.leafWeight",
                    "blkio.leaf_weight_device",
                    &line,
                )?;
            }
        }
        let throttles = [
            (
                b.throttle_read_bps_device(),
                "blockIO.throttleReadBpsDevice",
                "blkio.throttle.read_bps_device",
            ),
            (
                b.throttle_write_bps_device(),
                "blockIO.throttleWriteBpsDevice",
                "blkio.throttle.write_bps_device",
            ),
            (
                b.throttle_read_iops_device(),
                "blockIO.throttleReadIOPSDevice",
                "blkio.throttle.read_iops_device",
            ),
            (
                b.throttle_write_iops_device(),
                "blockIO.throttleWriteIOPSDevice",
                "blkio.throttle.write_iops_device",
            ),
        ];
        for (devs, res, file) in throttles {
            for d in devs.iter().flatten() {
                w.write(
                    "blkio",
                    res,
                    file,
                    &format!("{}:{} {}", d.major(), d.minor(), d.rate()),
                )?;
            }
        }
        Ok(())
    }

    fn freezer_dir(&self) -> Result<&Path, CgroupError> {
        self.dir("freezer").ok_or_else(|| CgroupError::Unsupported {
            resource: "freezer".into(),
            reason: "the cgroup v1 freezer controller is not mounted".into(),
        })
    }

    fn memory_dir(&self) -> Result<&Path, CgroupError> {
        self.dir("memory").ok_or_else(|| CgroupError::Unsupported {
            resource: "memory".into(),
            reason: "the cgroup v1 memory controller is not mounted".into(),
        })
    }

    /// The v1 half of the stats (hugetlb only where v1 has it).
    pub(crate) fn v1_stats(&self) -> Result<Stats, CgroupError> {
        let mut s = Stats::default();
        if let Some(d) = self.dir("cpuacct") {
            let u = &mut s.cpu.usage;
            u.total = fsutil::read_u64_opt(d, "cpuacct.usage")?.unwrap_or(0);
            let list = |f| -> Result<Vec<u64>, CgroupError> {
                Ok(fsutil::read_opt(d, f)?
                    .map(|t| {
                        t.split_whitespace()
                            .filter_map(|v| v.parse().ok())
                            .collect()
                    })
                    .unwrap_or_default())
            };
            u.percpu = list("cpuacct.usage_percpu")?;
            u.percpu_kernel = list("cpuacct.usage_percpu_sys")?;
            u.percpu_user = list("cpuacct.usage_percpu_user")?;
            if let Some(t) = fsutil::read_opt(d, "cpuacct.stat")? {
                // USER_HZ ticks to ns.
                let hz = nix::unistd::sysconf(nix::unistd::SysconfVar::CLK_TCK)
                    .ok()
                    .flatten()
                    .filter(|&v| v > 0)
                    .unwrap_or(100) as u64;
                for (k, v) in fsutil::parse_flat_keyed(&t) {
                    match k {
                        "user" => u.user = v * 1_000_000_000 / hz,
                        "system" => u.kernel = v * 1_000_000_000 / hz,
                        _ => {}
                    }
                }
            }
        }
        if let Some(d) = self.dir("cpu") {
            if let Some(t) = fsutil::read_opt(d, "cpu.stat")? {
                for (k, v) in fsutil::parse_flat_keyed(&t) {
                    match k {
                        "nr_periods" => s.cpu.throttling.periods = v,
                        "nr_throttled" => s.cpu.throttling.throttled_periods = v,
                        "throttled_time" => s.cpu.throttling.throttled_time = v,
                        _ => {}
                    }
                }
            }
        }
        if let Some(d) = self.dir("memory") {
            let entry = |prefix: &str| -> Result<MemoryEntry, CgroupError> {
                let f = |n: &str| fsutil::read_u64_opt(d, &format!("{prefix}{n}"));
                Ok(MemoryEntry {
                    limit: f("limit_in_bytes")?.unwrap_or(0),
                    usage: f("usage_in_bytes")?.unwrap_or(0),
                    max: f("max_usage_in_bytes")?.unwrap_or(0),
                    failcnt: f("failcnt")?.unwrap_or(0),
                })
            };
            s.memory.usage = entry("memory.")?;
            s.memory.swap = entry("memory.memsw.")?;
            s.memory.kernel = entry("memory.kmem.")?;
            s.memory.kernel_tcp = entry("memory.kmem.tcp.")?;
            if let Some(t) = fsutil::read_opt(d, "memory.stat")? {
                s.memory.raw = fsutil::parse_flat_keyed(&t)
                    .map(|(k, v)| (k.to_string(), v))
                    .collect();
                s.memory.cache = s.memory.raw.get("cache").copied().unwrap_or(0);
            }
        }
        if let Some(d) = self.dir("pids") {
            s.pids.current = fsutil::read_u64_opt(d, "pids.current")?.unwrap_or(0);
            s.pids.limit = fsutil::read_u64_opt(d, "pids.max")?
                .filter(|&v| v != u64::MAX)
                .unwrap_or(0);
        }
        if let Some(d) = self.dir("blkio") {
            let first = |names: &[&str]| -> Result<Vec<stats::BlkioEntry>, CgroupError> {
                for n in names {
                    if let Some(t) = fsutil::read_opt(d, n)? {
                        let e = stats::parse_blkio_v1(&t);
                        if !e.is_empty() {
                            return Ok(e);
                        }
                    }
                }
                Ok(Vec::new())
            };
            s.blkio.io_service_bytes_recursive = first(&[
                "blkio.bfq.io_service_bytes_recursive",
                "blkio.io_service_bytes_recursive",
                "blkio.throttle.io_service_bytes_recursive",
            ])?;
            s.blkio.io_serviced_recursive = first(&[
                "blkio.bfq.io_serviced_recursive",
                "blkio.io_serviced_recursive",
                "blkio.throttle.io_serviced_recursive",
            ])?;
        }
        if let Some(d) = self.dir("hugetlb") {
            for size in stats::hugepage_sizes() {
                let f = |n: &str| fsutil::read_u64_opt(d, &format!("hugetlb.{size}.{n}"));
                let h = Hugetlb {
                    usage: f("usage_in_bytes")?.unwrap_or(0),
                    max: f("max_usage_in_bytes")?.unwrap_or(0),
                    failcnt: f("failcnt")?.unwrap_or(0),
                };
                s.hugetlb.insert(size, h);
            }
        }
        Ok(s)
    }
}

impl CgroupManager for V1Manager {
    fn kind(&self) -> LayoutKind {
        LayoutKind::V1
    }

    fn config(&self) -> &CgroupConfig {
        &self.config
    }

    fn create(&self) -> Result<(), CgroupError> {
        for (h, dir) in &self.hierarchies {
            self.ensure(h, dir)?;
        }
        Ok(())
    }

    fn apply(&self, pid: i32) -> Result<(), CgroupError> {
        let pid = pid.to_string();
        for (h, dir) in &self.hierarchies {
            self.ensure(h, dir)?;
            fsutil::write(dir, "cgroup.procs", &pid)?;
        }
        Ok(())
    }

    fn create_unified(&self) -> Result<(), CgroupError> {
        Ok(())
    }

    fn join_self(&self, _in_unified: bool) -> Result<(), CgroupError> {
        for (h, dir) in &self.hierarchies {
            self.ensure(h, dir)?;
            fsutil::write(dir, "tasks", "0")?;
        }
        Ok(())
    }

    fn set(&self, r: &LinuxResources) -> Result<(), CgroupError> {
        if resources::is_empty(r) {
            return Ok(());
        }
        self.set_resources(r, true)?;
        self.set_resources(r, false)
    }

    fn freeze(&self, frozen: bool) -> Result<(), CgroupError> {
        let dir = self.freezer_dir()?;
        if !frozen {
            return fsutil::write(dir, "freezer.state", "THAWED");
        }
        // runc's loop: v1 can stay in FREEZING while tasks fork; retry, thawing now and
        // then, and give up after a while (thawing back).
        for i in 0..1000 {
            if i % 50 == 49 {
                let _ = fsutil::write(dir, "freezer.state", "THAWED");
                std::thread::sleep(Duration::from_millis(10));
            }
            fsutil::write(dir, "freezer.state", "FROZEN")?;
            if i % 25 == 24 {
                std::thread::sleep(Duration::from_micros(10));
            }
            match fsutil::read(dir, "freezer.state")?.trim() {
                "FROZEN" => return Ok(()),
                "FREEZING" => continue,
                other => {
                    let _ = fsutil::write(dir, "freezer.state", "THAWED");
                    return Err(CgroupError::Freeze {
                        path: dir.join("freezer.state"),
                        reason: format!("unexpected state {other} after writing FROZEN"),
                    });
                }
            }
        }
        let _ = fsutil::write(dir, "freezer.state", "THAWED");
        Err(CgroupError::Freeze {
            path: dir.join("freezer.state"),
            reason: "stuck in FREEZING; thawed back".into(),
        })
    }

    fn freezer_state(&self) -> Result<FreezerState, CgroupError> {
        let dir = self.freezer_dir()?;
        let path = dir.join("freezer.state");
        match fsutil::read_path(&path)?.trim() {
            "THAWED" => Ok(FreezerState::Thawed),
            "FREEZING" => Ok(FreezerState::Freezing),
            "FROZEN" => Ok(FreezerState::Frozen),
            other => Err(CgroupError::Parse {
                path,
                reason: format!("unknown freezer state {other:?}"),
            }),
        }
    }

    fn pids(&self) -> Result<Vec<i32>, CgroupError> {
        let mut out = Vec::new();
        if let Some(d) = self.main_dir() {
            fsutil::pids_recursive(d, &mut out)?;
        }
        Ok(out)
    }

    fn stats(&self) -> Result<Stats, CgroupError> {
        self.v1_stats()
    }

    fn oom_kill_count(&self) -> Result<u64, CgroupError> {
        Ok(oom_kill_of(&fsutil::read(
            self.memory_dir()?,
            "memory.oom_control",
        )?))
    }

    fn oom_notifier(&self) -> Result<OomNotifier, CgroupError> {
        OomNotifier::v1(self.memory_dir()?)
    }

    fn kill_all(&self, signal: Signal) -> Result<(), CgroupError> {
        crate::signal_all(&|f| self.freeze(f), &|| self.pids(), signal)
    }

    fn destroy(&self) -> Result<(), CgroupError> {
        let mut first_err = None;
        for (_, dir) in &self.hierarchies {
            if let Err(e) = fsutil::remove_cgroup(dir) {
                first_err.get_or_insert(e);
            }
        }
        first_err.map_or(Ok(()), Err)
    }

    fn exists(&self) -> bool {
        self.main_dir().is_some_and(|d| d.exists())
    }

    fn unified_dir(&self) -> Option<PathBuf> {
        None
    }
}
