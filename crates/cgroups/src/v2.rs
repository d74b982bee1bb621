//! cgroup v2: one directory in the unified hierarchy.

use crate::devices::{rules_from_oci, DevicePolicy};
use crate::fsutil::{self, is_not_found};
use crate::mountinfo;
use crate::oom::{oom_kill_of, OomNotifier};
use crate::resources::{
    self, blkio_weight_to_io_weight, check_page_size, rdma_line, shares_to_weight, swap_to_v2,
    v2_limit,
};
use crate::stats::{self, Hugetlb, MemoryEntry, Stats};
use crate::{CgroupConfig, CgroupError, CgroupManager, FreezerState, LayoutKind, Signal};
use oci_spec::runtime::LinuxResources;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// The manager for the unified hierarchy (pure v2 hosts, and the v2 half of
/// [`crate::HybridManager`]).
#[derive(Debug, Clone)]
pub struct V2Manager {
    config: CgroupConfig,
    mount_point: PathBuf,
    dir: PathBuf,
}

/// Checks (dry run) or performs the writes of a `set`.
struct Writer<'a> {
    dir: &'a Path,
    /// The controllers available in `dir` (its cgroup.controllers); read once per set.
    controllers: Vec<String>,
    dry: bool,
}

impl Writer<'_> {
    fn need(&self, controller: &str, resource: &str) -> Result<(), CgroupError> {
        if self.controllers.iter().any(|c| c == controller) {
            Ok(())
        } else {
            Err(CgroupError::Unsupported {
                resource: resource.to_string(),
                reason: format!(
                    "the {controller} controller is not available in {} (cgroup.controllers: {:?})",
                    self.dir.display(),
                    self.controllers.join(" ")
                ),
            })
        }
    }

    fn write(
        &self,
        controller: &str,
        resource: &str,
        file: &str,
        value: &str,
    ) -> Result<(), CgroupError> {
        self.need(controller, resource)?;
        if self.dry {
            return Ok(());
        }
        fsutil::write(self.dir, file, value).map_err(|e| {
            if is_not_found(&e) {
                CgroupError::Unsupported {
                    resource: resource.to_string(),
                    reason: format!(
                        "{} does not exist on this kernel",
                        self.dir.join(file).display()
                    ),
                }
            } else {
                e
            }
        })
    }
}

fn unsupported(resource: &str, reason: &str) -> CgroupError {
    CgroupError::Unsupported {
        resource: resource.to_string(),
        reason: reason.to_string(),
    }
}

impl V2Manager {
    /// A manager for `config` in the cgroup2 file system mounted at `mount_point`.
    pub fn new(mount_point: PathBuf, config: CgroupConfig) -> Self {
        let dir = mountinfo::join(&mount_point, "/", config.path_for(&[""]));
        V2Manager {
            config,
            mount_point,
            dir,
        }
    }

    /// The container's directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The controllers the unified hierarchy offers at its root.
    pub fn root_controllers(&self) -> Result<Vec<String>, CgroupError> {
        Ok(fsutil::read(&self.mount_point, "cgroup.controllers")?
            .split_whitespace()
            .map(str::to_string)
            .collect())
    }

    /// Enables every available controller in `cgroup.subtree_control` from the root down
    /// to the container's parent, so the new cgroup gets them.
    fn enable_controllers(&self) -> Result<(), CgroupError> {
        let rel = self
            .dir
            .strip_prefix(&self.mount_point)
            .unwrap_or(&self.dir);
        let mut level = self.mount_point.clone();
        let comps: Vec<_> = rel.components().collect();
        for (i, c) in comps.iter().enumerate() {
            let ctrls = fsutil::read(&level, "cgroup.controllers")?;
            let plus: Vec<String> = ctrls.split_whitespace().map(|c| format!("+{c}")).collect();
            if !plus.is_empty() {
                fsutil::write(&level, "cgroup.subtree_control", &plus.join(" "))?;
            }
            if i + 1 < comps.len() {
                level.push(c);
            }
        }
        Ok(())
    }

    fn ensure(&self) -> Result<(), CgroupError> {
        let created = fsutil::mkdir_all(&self.dir)?;
        if !created.is_empty() {
            self.enable_controllers()?;
        }
        Ok(())
    }

    fn set_resources(
        &self,
        r: &LinuxResources,
        controllers: &[String],
        dry: bool,
    ) -> Result<(), CgroupError> {
        let w = Writer {
            dir: &self.dir,
            controllers: controllers.to_vec(),
            dry,
        };
        if let Some(c) = r.cpu() {
            if let Some(cpus) = c.cpus().as_deref().filter(|s| !s.is_empty()) {
                w.write("cpuset", "cpu.cpus", "cpuset.cpus", cpus)?;
            }
            if let Some(mems) = c.mems().as_deref().filter(|s| !s.is_empty()) {
                w.write("cpuset", "cpu.mems", "cpuset.mems", mems)?;
            }
        }
        if let Some(rules) = r.devices() {
            let policy = DevicePolicy::from_rules(&rules_from_oci(rules)?)?;
            if !dry {
                crate::bpf::apply_device_filter(&self.dir, &policy)?;
            }
        }
        if let Some(m) = r.memory() {
            self.set_memory(&w, m)?;
        }
        if let Some(c) = r.cpu() {
            self.set_cpu(&w, c)?;
        }
        if let Some(p) = r.pids() {
            if p.limit() != 0 {
                w.write("pids", "pids.limit", "pids.max", &v2_limit(p.limit()))?;
            }
        }
        if let Some(b) = r.block_io() {
            self.set_io(&w, b)?;
        }
        if let Some(limits) = r.hugepage_limits().as_ref().filter(|l| !l.is_empty()) {
            let sizes = stats::hugepage_sizes();
            for l in limits {
                let res = format!("hugepageLimits[{}]", l.page_size());
                check_page_size(l.page_size(), &sizes)?;
                let v = v2_limit(l.limit());
                w.write(
                    "hugetlb",
                    &res,
                    &format!("hugetlb.{}.max", l.page_size()),
                    &v,
                )?;
                let rsvd = format!("hugetlb.{}.rsvd.max", l.page_size());
                if !dry && self.dir.join(&rsvd).exists() {
                    fsutil::write(&self.dir, &rsvd, &v)?;
                }
            }
        }
        if let Some(n) = r.network() {
            if n.class_id().is_some_and(|c| c != 0) {
                return Err(unsupported("network.classID", "cgroup v2 has no net_cls controller (use an eBPF program or nftables cgroup matching)"));
            }
            if n.priorities().as_ref().is_some_and(|p| !p.is_empty()) {
                return Err(unsupported(
                    "network.priorities",
                    "cgroup v2 has no net_prio controller",
                ));
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
        if let Some(u) = r.unified() {
            let mut keys: Vec<_> = u.iter().collect();
            keys.sort();
            for (k, v) in keys {
                let res = format!("unified[{k:?}]");
                if k.contains('/') || k.starts_with('.') || k.is_empty() {
                    return Err(CgroupError::Invalid {
                        resource: res,
                        reason: "not a cgroup file name".into(),
                    });
                }
                let ctrl = k.split('.').next().unwrap_or("");
                if ctrl != "cgroup" {
                    w.need(ctrl, &res)?;
                }
                if !dry {
                    fsutil::write(&self.dir, k, v).map_err(|e| {
                        if is_not_found(&e) {
                            unsupported(
                                &res,
                                &format!("{} does not exist", self.dir.join(k).display()),
                            )
                        } else {
                            e
                        }
                    })?;
                }
            }
        }
        Ok(())
    }

    fn set_memory(
        &self,
        w: &Writer,
        m: &oci_spec::runtime::LinuxMemory,
    ) -> Result<(), CgroupError> {
        let limit = m.limit().unwrap_or(0);
        let swap = swap_to_v2(m.swap().unwrap_or(0), limit)?;
        if let Some(s) = swap {
            let v = v2_limit(s);
            match w.write("memory", "memory.swap", "memory.swap.max", &v) {
                // No swap accounting: setting "max" or "0" changes nothing.
                Err(CgroupError::Unsupported { .. })
                    if !w.dry
                        && (v == "max" || v == "0")
                        && w.controllers.iter().any(|c| c == "memory") => {}
                r => r?,
            }
        }
        if limit != 0 {
            if m.check_before_update() == Some(true) && limit > 0 && !w.dry {
                if let Some(cur) = fsutil::read_u64_opt(w.dir, "memory.current")? {
                    if (limit as u64) < cur {
                        return Err(CgroupError::Invalid {
                            resource: "memory.limit".into(),
                            reason: format!(
                                "{limit} is below the current usage {cur} (checkBeforeUpdate)"
                            ),
                        });
                    }
                }
            }
            w.write("memory", "memory.limit", "memory.max", &v2_limit(limit))?;
        }
        if let Some(v) = m.reservation().filter(|&v| v != 0) {
            w.write("memory", "memory.reservation", "memory.low", &v2_limit(v))?;
        }
        #[allow(deprecated)]
        if m.kernel().is_some_and(|v| v != 0) {
            return Err(unsupported(
                "memory.kernel",
                "kernel memory limits do not exist in cgroup v2",
            ));
        }
        if m.kernel_tcp().is_some_and(|v| v != 0) {
            return Err(unsupported(
                "memory.kernelTCP",
                "kernel TCP memory limits do not exist in cgroup v2",
            ));
        }
        if m.swappiness().is_some_and(|s| s != u64::MAX) {
            return Err(unsupported(
                "memory.swappiness",
                "cgroup v2 has no per-cgroup swappiness",
            ));
        }
        if m.disable_oom_killer() == Some(true) {
            return Err(unsupported(
                "memory.disableOOMKiller",
                "cgroup v2 cannot disable the OOM killer",
            ));
        }
        if m.use_hierarchy() == Some(false) {
            return Err(unsupported(
                "memory.useHierarchy",
                "cgroup v2 is always hierarchical",
            ));
        }
        Ok(())
    }

    fn set_cpu(&self, w: &Writer, c: &oci_spec::runtime::LinuxCpu) -> Result<(), CgroupError> {
        if c.realtime_period().is_some_and(|v| v != 0) {
            return Err(unsupported(
                "cpu.realtimePeriod",
                "cgroup v2 has no realtime group scheduling",
            ));
        }
        if c.realtime_runtime().is_some_and(|v| v != 0) {
            return Err(unsupported(
                "cpu.realtimeRuntime",
                "cgroup v2 has no realtime group scheduling",
            ));
        }
        if let Some(s) = c.shares().filter(|&s| s != 0) {
            w.write(
                "cpu",
                "cpu.shares",
                "cpu.weight",
                &shares_to_weight(s).to_string(),
            )?;
        }
        if let Some(i) = c.idle() {
            w.write("cpu", "cpu.idle", "cpu.idle", &i.to_string())?;
        }
        let quota = c.quota().unwrap_or(0);
        let period = c.period().unwrap_or(0);
        if quota != 0 || period != 0 {
            let mut v = if quota > 0 {
                quota.to_string()
            } else {
                "max".into()
            };
            if period != 0 {
                v.push_str(&format!(" {period}"));
            }
            w.write("cpu", "cpu.quota", "cpu.max", &v)?;
        }
        if let Some(b) = c.burst() {
            w.write("cpu", "cpu.burst", "cpu.max.burst", &b.to_string())?;
        }
        Ok(())
    }

    fn set_io(&self, w: &Writer, b: &oci_spec::runtime::LinuxBlockIo) -> Result<(), CgroupError> {
        if b.leaf_weight().is_some_and(|v| v != 0) {
            return Err(unsupported(
                "blockIO.leafWeight",
                "cgroup v2 has no leaf weights",
            ));
        }
        let bfq = !w.dry && self.dir.join("io.bfq.weight").exists();
        if let Some(v) = b.weight().filter(|&v| v != 0) {
            if bfq {
                w.write("io", "blockIO.weight", "io.bfq.weight", &v.to_string())?;
            } else {
                w.write(
                    "io",
                    "blockIO.weight",
                    "io.weight",
                    &blkio_weight_to_io_weight(v).to_string(),
                )?;
            }
        }
        for d in b.weight_device().iter().flatten() {
            if d.leaf_weight().is_some_and(|v| v != 0) {
                return Err(unsupported(
                    "blockIO.weightDevice.leafWeight",
                    "cgroup v2 has no leaf weights",
                ));
            }
            if let Some(v) = d.weight() {
                let (file, v) = if bfq {
                    ("io.bfq.weight", u64::from(v))
                } else {
                    ("io.weight", blkio_weight_to_io_weight(v))
                };
                w.write(
                    "io",
                    "blockIO.weightDevice",
                    file,
                    &format!("{}:{} {v}", d.major(), d.minor()),
                )?;
            }
        }
        let throttles = [
            (
                b.throttle_read_bps_device(),
                "blockIO.throttleReadBpsDevice",
                "rbps",
            ),
            (
                b.throttle_write_bps_device(),
                "blockIO.throttleWriteBpsDevice",
                "wbps",
            ),
            (
                b.throttle_read_iops_device(),
                "blockIO.throttleReadIOPSDevice",
                "riops",
            ),
            (
                b.throttle_write_iops_device(),
                "blockIO.throttleWriteIOPSDevice",
                "wiops",
            ),
        ];
        for (devs, res, key) in throttles {
            for d in devs.iter().flatten() {
                w.write(
                    "io",
                    res,
                    "io.max",
                    &format!("{}:{} {key}={}", d.major(), d.minor(), d.rate()),
                )?;
            }
        }
        Ok(())
    }

    /// `set` with the controllers of the cgroup given (the hybrid manager uses this).
    pub(crate) fn set_checked(&self, r: &LinuxResources) -> Result<(), CgroupError> {
        if resources::is_empty(r) {
            return Ok(());
        }
        let controllers: Vec<String> = match fsutil::read_opt(&self.dir, "cgroup.controllers")? {
            Some(t) => t.split_whitespace().map(str::to_string).collect(),
            None => {
                return Err(CgroupError::Read {
                    path: self.dir.join("cgroup.controllers"),
                    source: std::io::Error::from_raw_os_error(libc::ENOENT),
                })
            }
        };
        self.set_resources(r, &controllers, true)?;
        self.set_resources(r, &controllers, false)
    }

    /// The hugetlb part of the stats.
    pub(crate) fn hugetlb_stats(&self, s: &mut Stats) -> Result<(), CgroupError> {
        for size in stats::hugepage_sizes() {
            let Some(usage) = fsutil::read_u64_opt(&self.dir, &format!("hugetlb.{size}.current"))?
            else {
                continue;
            };
            let failcnt = fsutil::read_opt(&self.dir, &format!("hugetlb.{size}.events"))?
                .map(|t| {
                    fsutil::parse_flat_keyed(&t)
                        .find(|(k, _)| *k == "max")
                        .map_or(0, |(_, v)| v)
                })
                .unwrap_or(0);
            s.hugetlb.insert(
                size,
                Hugetlb {
                    usage,
                    max: 0,
                    failcnt,
                },
            );
        }
        Ok(())
    }

    fn wait_frozen(&self, want: bool) -> Result<(), CgroupError> {
        let deadline = Instant::now() + Duration::from_secs(5);
        let mut delay = Duration::from_micros(50);
        loop {
            let t = fsutil::read(&self.dir, "cgroup.events")?;
            let frozen = fsutil::parse_flat_keyed(&t).any(|(k, v)| k == "frozen" && v == 1);
            if frozen == want {
                return Ok(());
            }
            if Instant::now() > deadline {
                return Err(CgroupError::Freeze {
                    path: self.dir.join("cgroup.freeze"),
                    reason: format!(
                        "cgroup.events did not say frozen {} within 5s",
                        u8::from(want)
                    ),
                });
            }
            std::thread::sleep(delay);
            delay = (delay * 2).min(Duration::from_millis(10));
        }
    }
}

impl CgroupManager for V2Manager {
    fn kind(&self) -> LayoutKind {
        LayoutKind::V2
    }

    fn config(&self) -> &CgroupConfig {
        &self.config
    }

    fn create(&self) -> Result<(), CgroupError> {
        self.ensure()
    }

    fn apply(&self, pid: i32) -> Result<(), CgroupError> {
        self.ensure()?;
        fsutil::write(&self.dir, "cgroup.procs", &pid.to_string())
    }

    fn create_unified(&self) -> Result<(), CgroupError> {
        self.ensure()
    }

    fn join_self(&self, in_unified: bool) -> Result<(), CgroupError> {
        if in_unified {
            return Ok(());
        }
        self.ensure()?;
        fsutil::write(&self.dir, "cgroup.procs", "0")
    }

    fn set(&self, r: &LinuxResources) -> Result<(), CgroupError> {
        self.set_checked(r)
    }

    fn freeze(&self, frozen: bool) -> Result<(), CgroupError> {
        let v = if frozen { "1" } else { "0" };
        fsutil::write(&self.dir, "cgroup.freeze", v).map_err(|e| {
            if is_not_found(&e) {
                unsupported(
                    "freezer",
                    "cgroup.freeze does not exist (kernel < 5.2 or the root cgroup)",
                )
            } else {
                e
            }
        })?;
        self.wait_frozen(frozen).inspect_err(|_| {
            if frozen {
                let _ = fsutil::write(&self.dir, "cgroup.freeze", "0");
            }
        })
    }

    fn freezer_state(&self) -> Result<FreezerState, CgroupError> {
        let want = match fsutil::read_opt(&self.dir, "cgroup.freeze")? {
            Some(t) => t.trim() == "1",
            None => return Err(unsupported("freezer", "cgroup.freeze does not exist")),
        };
        if !want {
            return Ok(FreezerState::Thawed);
        }
        let t = fsutil::read(&self.dir, "cgroup.events")?;
        if fsutil::parse_flat_keyed(&t).any(|(k, v)| k == "frozen" && v == 1) {
            Ok(FreezerState::Frozen)
        } else {
            Ok(FreezerState::Freezing)
        }
    }

    fn pids(&self) -> Result<Vec<i32>, CgroupError> {
        let mut out = Vec::new();
        fsutil::pids_recursive(&self.dir, &mut out)?;
        Ok(out)
    }

    fn stats(&self) -> Result<Stats, CgroupError> {
        let d = &self.dir;
        let mut s = Stats::default();
        if let Some(t) = fsutil::read_opt(d, "cpu.stat")? {
            for (k, v) in fsutil::parse_flat_keyed(&t) {
                match k {
                    "usage_usec" => s.cpu.usage.total = v * 1000,
                    "user_usec" => s.cpu.usage.user = v * 1000,
                    "system_usec" => s.cpu.usage.kernel = v * 1000,
                    "nr_periods" => s.cpu.throttling.periods = v,
                    "nr_throttled" => s.cpu.throttling.throttled_periods = v,
                    "throttled_usec" => s.cpu.throttling.throttled_time = v * 1000,
                    _ => {}
                }
            }
        }
        if let Some(usage) = fsutil::read_u64_opt(d, "memory.current")? {
            let events = fsutil::read_opt(d, "memory.events")?.unwrap_or_default();
            let failcnt = fsutil::parse_flat_keyed(&events)
                .find(|(k, _)| *k == "max")
                .map_or(0, |(_, v)| v);
            s.memory.usage = MemoryEntry {
                limit: fsutil::read_u64_opt(d, "memory.max")?.unwrap_or(u64::MAX),
                usage,
                max: fsutil::read_u64_opt(d, "memory.peak")?.unwrap_or(0),
                failcnt,
            };
            // v1 memsw semantics: memory + swap.
            if let Some(swap) = fsutil::read_u64_opt(d, "memory.swap.current")? {
                let swap_max = fsutil::read_u64_opt(d, "memory.swap.max")?.unwrap_or(u64::MAX);
                s.memory.swap = MemoryEntry {
                    limit: swap_max.saturating_add(s.memory.usage.limit),
                    usage: swap + usage,
                    max: 0,
                    failcnt: 0,
                };
            }
            if let Some(t) = fsutil::read_opt(d, "memory.stat")? {
                s.memory.raw = fsutil::parse_flat_keyed(&t)
                    .map(|(k, v)| (k.to_string(), v))
                    .collect();
                s.memory.cache = s.memory.raw.get("file").copied().unwrap_or(0);
            }
        }
        if let Some(cur) = fsutil::read_u64_opt(d, "pids.current")? {
            s.pids.current = cur;
            s.pids.limit = fsutil::read_u64_opt(d, "pids.max")?
                .filter(|&v| v != u64::MAX)
                .unwrap_or(0);
        }
        if let Some(t) = fsutil::read_opt(d, "io.stat")? {
            let (bytes, ios) = stats::parse_io_stat(&t);
            s.blkio.io_service_bytes_recursive = bytes;
            s.blkio.io_serviced_recursive = ios;
        }
        self.hugetlb_stats(&mut s)?;
        Ok(s)
    }

    fn oom_kill_count(&self) -> Result<u64, CgroupError> {
        match fsutil::read_opt(&self.dir, "memory.events")? {
            Some(t) => Ok(oom_kill_of(&t)),
            None => Err(unsupported(
                "memory",
                "the memory controller is not enabled (no memory.events)",
            )),
        }
    }

    fn oom_notifier(&self) -> Result<OomNotifier, CgroupError> {
        if !self.dir.join("memory.events").exists() {
            return Err(unsupported(
                "memory",
                "the memory controller is not enabled (no memory.events)",
            ));
        }
        OomNotifier::v2(&self.dir)
    }

    fn kill_all(&self, signal: Signal) -> Result<(), CgroupError> {
        if signal == Signal::SIGKILL {
            match fsutil::write_raw(&self.dir.join("cgroup.kill"), "1") {
                Ok(()) => return Ok(()),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound && self.dir.exists() => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
                Err(source) => {
                    return Err(CgroupError::Write {
                        path: self.dir.join("cgroup.kill"),
                        value: "1".into(),
                        source,
                    })
                }
            }
        }
        crate::signal_all(&|f| self.freeze(f), &|| self.pids(), signal)
    }

    fn destroy(&self) -> Result<(), CgroupError> {
        fsutil::remove_cgroup(&self.dir)
    }

    fn exists(&self) -> bool {
        self.dir.exists()
    }

    fn unified_dir(&self) -> Option<PathBuf> {
        Some(self.dir.clone())
    }
}
