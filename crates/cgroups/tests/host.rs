//! Integration tests on this host's real cgroups (need root). Each test makes its own
//! uniquely named cgroup, and a guard kills its processes and removes the cgroup even when
//! the test fails.

use berth_cgroups::{
    open, open_with, CgroupConfig, CgroupError, CgroupManager, FreezerState, Layout, LayoutKind,
    Signal, V2Manager,
};
use oci_spec::runtime::{
    LinuxDeviceCgroupBuilder, LinuxDeviceType, LinuxHugepageLimitBuilder, LinuxMemoryBuilder,
    LinuxNetworkBuilder, LinuxPidsBuilder, LinuxResources, LinuxResourcesBuilder,
};
use std::collections::HashMap;
use std::io::{Read, Write};
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

static COUNTER: AtomicUsize = AtomicUsize::new(0);

fn is_root() -> bool {
    nix::unistd::geteuid().is_root()
}

macro_rules! require_root {
    () => {
        if !is_root() {
            eprintln!("skipped: needs root");
            return;
        }
    };
}

fn unique_path(name: &str) -> String {
    format!(
        "/berth-test-{}-{}-{}",
        std::process::id(),
        name,
        COUNTER.fetch_add(1, Ordering::SeqCst)
    )
}

/// Kills the children and removes the cgroup on drop.
struct Guard {
    mgr: Box<dyn CgroupManager>,
    children: Vec<Child>,
}

impl Guard {
    fn new(name: &str) -> Guard {
        let config = CgroupConfig::new(unique_path(name)).unwrap();
        Guard {
            mgr: open(config).unwrap(),
            children: Vec::new(),
        }
    }

    fn with(mgr: Box<dyn CgroupManager>) -> Guard {
        Guard {
            mgr,
            children: Vec::new(),
        }
    }

    /// Spawns `sh -c script` (which should start with `read x`), moves it into the cgroup
    /// and returns its index; [`Guard::go`] releases it.
    fn spawn_in(&mut self, script: &str) -> usize {
        let child = Command::new("/bin/sh")
            .args(["-c", script])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let t = Instant::now();
        self.mgr.apply(child.id() as i32).unwrap();
        eprintln!("apply took {:?}", t.elapsed());
        self.children.push(child);
        self.children.len() - 1
    }

    fn go(&mut self, i: usize) {
        let stdin = self.children[i].stdin.as_mut().unwrap();
        stdin.write_all(b"go\n").unwrap();
        stdin.flush().unwrap();
    }

    fn pid(&self, i: usize) -> i32 {
        self.children[i].id() as i32
    }

    /// Waits (bounded) for child `i`; returns its status and stdout.
    fn wait(&mut self, i: usize, limit: Duration) -> (std::process::ExitStatus, String) {
        let deadline = Instant::now() + limit;
        let c = &mut self.children[i];
        drop(c.stdin.take());
        loop {
            if let Some(st) = c.try_wait().unwrap() {
                let mut out = String::new();
                if let Some(mut o) = c.stdout.take() {
                    let _ = o.read_to_string(&mut out);
                }
                return (st, out);
            }
            assert!(
                Instant::now() < deadline,
                "child {} did not exit in {limit:?}",
                c.id()
            );
            std::thread::sleep(Duration::from_millis(5));
        }
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        let _ = self.mgr.freeze(false);
        let _ = self.mgr.kill_all(Signal::SIGKILL);
        for c in &mut self.children {
            let _ = c.kill();
            let _ = c.wait();
        }
        if let Err(e) = self.mgr.destroy() {
            eprintln!("cleanup: {e}");
        }
    }
}

/// The directory of the container cgroup in the hierarchy of `controller` (v1) or in the
/// unified one (`""`).
fn dir_of(mgr: &dyn CgroupManager, controller: &str) -> Option<PathBuf> {
    let rel = mgr.config().path.strip_prefix("/").unwrap().to_path_buf();
    match Layout::detect().unwrap() {
        Layout::V2 { mount_point } => Some(mount_point.join(rel)),
        Layout::V1 { hierarchies } | Layout::Hybrid { hierarchies, .. }
            if !controller.is_empty() =>
        {
            hierarchies
                .iter()
                .find(|h| h.has(controller))
                .map(|h| h.mount_point.join(&rel))
        }
        Layout::Hybrid { unified, .. } => Some(unified.join(rel)),
        Layout::V1 { .. } => None,
    }
}

fn read(dir: &Path, file: &str) -> String {
    std::fs::read_to_string(dir.join(file))
        .unwrap_or_else(|e| panic!("{}: {e}", dir.join(file).display()))
        .trim()
        .to_string()
}

fn memory_pids(limit: i64, pids: i64) -> LinuxResources {
    LinuxResourcesBuilder::default()
        .memory(LinuxMemoryBuilder::default().limit(limit).build().unwrap())
        .pids(LinuxPidsBuilder::default().limit(pids).build().unwrap())
        .build()
        .unwrap()
}

#[test]
fn lifecycle_limits_freeze_stats_kill_destroy() {
    require_root!();
    let mut g = Guard::new("life");
    let i = g.spawn_in("read x; exec sleep 100");
    let pid = g.pid(i);
    assert!(g.mgr.exists());
    assert_eq!(g.mgr.pids().unwrap(), vec![pid]);

    g.mgr.set(&memory_pids(64 << 20, 32)).unwrap();

    if let Some(d) = dir_of(g.mgr.as_ref(), "memory") {
        let f = if g.mgr.kind() == LayoutKind::V2 {
            "memory.max"
        } else {
            "memory.limit_in_bytes"
        };
        assert_eq!(read(&d, f), (64u64 << 20).to_string());
    }
    if let Some(d) = dir_of(g.mgr.as_ref(), "pids") {
        assert_eq!(read(&d, "pids.max"), "32");
    }

    g.mgr.freeze(true).unwrap();
    assert_eq!(g.mgr.freezer_state().unwrap(), FreezerState::Frozen);
    g.mgr.freeze(false).unwrap();
    assert_eq!(g.mgr.freezer_state().unwrap(), FreezerState::Thawed);

    let s = g.mgr.stats().unwrap();
    assert_eq!(s.memory.usage.limit, 64 << 20);
    assert_eq!(s.pids.current, 1);
    assert_eq!(s.pids.limit, 32);
    let json = serde_json::to_value(&s).unwrap();
    assert!(json["memory"]["usage"]["limit"].is_number());

    g.mgr.kill_all(Signal::SIGKILL).unwrap();
    let (st, _) = g.wait(i, Duration::from_secs(5));
    assert_eq!(st.signal(), Some(libc::SIGKILL));
    g.mgr.destroy().unwrap();
    assert!(!g.mgr.exists());
    g.mgr.destroy().unwrap(); // idempotent
}

#[test]
fn create_then_set_then_apply() {
    require_root!();
    let mut g = Guard::new("early");
    g.mgr.create().unwrap();
    g.mgr.create().unwrap();
    g.mgr.set(&memory_pids(32 << 20, 16)).unwrap();
    let i = g.spawn_in("read x; echo hi");
    g.go(i);
    let (st, out) = g.wait(i, Duration::from_secs(5));
    assert!(st.success());
    assert_eq!(out, "hi\n");
}

#[test]
fn frozen_process_does_not_run() {
    require_root!();
    let mut g = Guard::new("freeze");
    let i = g.spawn_in("read x; while :; do :; done");
    g.go(i);
    std::thread::sleep(Duration::from_millis(100));
    g.mgr.freeze(true).unwrap();
    let t1 = g.mgr.stats().unwrap().cpu.usage.total;
    std::thread::sleep(Duration::from_millis(300));
    let t2 = g.mgr.stats().unwrap().cpu.usage.total;
    assert!(t1 > 0);
    assert_eq!(t1, t2, "cpu time grew while frozen");
    g.mgr.freeze(false).unwrap();
    std::thread::sleep(Duration::from_millis(300));
    let t3 = g.mgr.stats().unwrap().cpu.usage.total;
    assert!(t3 > t2, "cpu time did not grow after thaw");
    // kill_all with a catchable signal goes through freeze/kill/thaw.
    g.mgr.kill_all(Signal::SIGTERM).unwrap();
    let (st, _) = g.wait(i, Duration::from_secs(5));
    assert_eq!(st.signal(), Some(libc::SIGTERM));
}

#[test]
fn memory_hog_is_oom_killed_and_reported() {
    require_root!();
    let mut g = Guard::new("oom");
    let mut mem = LinuxMemoryBuilder::default().limit(32i64 << 20);
    if dir_of(g.mgr.as_ref(), "memory").is_some_and(|d| {
        d.parent()
            .unwrap()
            .join("memory.memsw.limit_in_bytes")
            .exists()
    }) {
        mem = mem.swap(32i64 << 20);
    }
    g.mgr
        .set(
            &LinuxResourcesBuilder::default()
                .memory(mem.build().unwrap())
                .build()
                .unwrap(),
        )
        .ok();
    let i = g.spawn_in("read x; a=$(head -c 300000000 /dev/zero | tr '\\0' a); echo survived");
    g.mgr
        .set(
            &LinuxResourcesBuilder::default()
                .memory(
                    LinuxMemoryBuilder::default()
                        .limit(32i64 << 20)
                        .build()
                        .unwrap(),
                )
                .build()
                .unwrap(),
        )
        .unwrap();
    let before = g.mgr.oom_kill_count().unwrap();
    let mut notifier = g.mgr.oom_notifier().unwrap();
    g.go(i);
    let (st, out) = g.wait(i, Duration::from_secs(30));
    assert_eq!(out, "", "the hog survived");
    assert_eq!(st.signal(), Some(libc::SIGKILL));
    let after = g.mgr.oom_kill_count().unwrap();
    assert!(after > before, "oom_kill {before} -> {after}");
    // The notifier's fd is readable and says so.
    let mut fds = [nix::poll::PollFd::new(
        std::os::fd::AsFd::as_fd(&notifier),
        nix::poll::PollFlags::POLLIN,
    )];
    let n = nix::poll::poll(&mut fds, nix::poll::PollTimeout::from(5000u16)).unwrap();
    assert_eq!(n, 1, "no OOM notification");
    assert!(matches!(notifier.wait().unwrap(), Some(k) if k >= 1));
    let s = g.mgr.stats().unwrap();
    assert!(s.memory.usage.failcnt > 0 || s.memory.usage.max >= (30 << 20));
}

#[test]
fn fork_bomb_stops_at_pids_max() {
    require_root!();
    let mut g = Guard::new("forks");
    g.mgr.create().unwrap();
    g.mgr.set(&memory_pids(0, 8)).unwrap();
    let i = g.spawn_in("read x; i=0; while [ $i -lt 40 ]; do (sleep 30 >/dev/null &) 2>/dev/null; i=$((i+1)); done; echo done");
    g.go(i);
    let t = Instant::now();
    let (st, out) = g.wait(i, Duration::from_secs(20));
    let s = g.mgr.stats().unwrap();
    eprintln!(
        "{st:?} {out:?} after {:?}; {:?}; pids {:?}",
        t.elapsed(),
        s.pids,
        g.mgr.pids()
    );
    assert!(s.pids.current <= 8, "pids.current {}", s.pids.current);
    let d = dir_of(g.mgr.as_ref(), "pids").unwrap();
    let events = read(&d, "pids.events");
    let max: u64 = events.split_whitespace().nth(1).unwrap().parse().unwrap();
    assert!(max > 0, "pids.events: {events}");
    assert!(!g.mgr.pids().unwrap().is_empty(), "the sleeps still run");
    g.mgr.kill_all(Signal::SIGKILL).unwrap();
}

#[test]
fn unsupported_resources_are_named_and_nothing_is_written() {
    require_root!();
    let g = Guard::new("unsup");
    g.mgr.create().unwrap();
    let mem_dir = dir_of(g.mgr.as_ref(), "memory");
    let before = mem_dir.as_ref().map(|d| {
        read(
            d,
            if g.mgr.kind() == LayoutKind::V2 {
                "memory.max"
            } else {
                "memory.limit_in_bytes"
            },
        )
    });
    let mut r = memory_pids(16 << 20, 0);
    let has_net_cls = std::path::Path::new("/sys/fs/cgroup/net_cls").exists();
    if !has_net_cls {
        r.set_network(Some(
            LinuxNetworkBuilder::default()
                .class_id(0x10001u32)
                .build()
                .unwrap(),
        ));
        let e = g.mgr.set(&r).unwrap_err();
        assert!(
            matches!(e, CgroupError::Unsupported { ref resource, .. } if resource == "network.classID"),
            "{e}"
        );
        let after = mem_dir.as_ref().map(|d| {
            read(
                d,
                if g.mgr.kind() == LayoutKind::V2 {
                    "memory.max"
                } else {
                    "memory.limit_in_bytes"
                },
            )
        });
        assert_eq!(before, after, "memory was written although set failed");
    }
    if g.mgr.kind() != LayoutKind::V2 {
        let mut u = HashMap::new();
        u.insert("memory.high".to_string(), "1000000".to_string());
        let r = LinuxResourcesBuilder::default().unified(u).build().unwrap();
        let e = g.mgr.set(&r).unwrap_err();
        assert!(e.to_string().contains("memory.high"), "{e}");
    }
}

#[test]
fn v1_devices_rules_are_enforced() {
    require_root!();
    let mut g = Guard::new("dev");
    if g.mgr.kind() == LayoutKind::V2 {
        eprintln!("skipped: v2 host (covered by pure_v2_in_private_mount_namespace)");
        return;
    }
    let devs = vec![
        LinuxDeviceCgroupBuilder::default()
            .allow(false)
            .access("rwm")
            .build()
            .unwrap(),
        LinuxDeviceCgroupBuilder::default()
            .allow(true)
            .typ(LinuxDeviceType::C)
            .major(1i64)
            .minor(3i64)
            .access("rwm")
            .build()
            .unwrap(),
    ];
    g.mgr.create().unwrap();
    g.mgr
        .set(
            &LinuxResourcesBuilder::default()
                .devices(devs.clone())
                .build()
                .unwrap(),
        )
        .unwrap();
    let d = dir_of(g.mgr.as_ref(), "devices").unwrap();
    assert_eq!(read(&d, "devices.list"), "c 1:3 rwm");
    // Setting again is a no-op transition.
    g.mgr
        .set(
            &LinuxResourcesBuilder::default()
                .devices(devs)
                .build()
                .unwrap(),
        )
        .unwrap();
    assert_eq!(read(&d, "devices.list"), "c 1:3 rwm");
    let i = g.spawn_in("read x; if (exec 3</dev/null) 2>/dev/null; then echo null-ok; fi; if (exec 3</dev/zero) 2>/dev/null; then echo zero-ok; fi");
    g.go(i);
    let (_, out) = g.wait(i, Duration::from_secs(5));
    assert_eq!(out, "null-ok\n");
}

#[test]
fn hugetlb_limit_lands_where_the_layout_has_it() {
    require_root!();
    let g = Guard::new("huge");
    if !Path::new("/sys/kernel/mm/hugepages/hugepages-2048kB").exists() {
        eprintln!("skipped: no 2MB huge pages");
        return;
    }
    g.mgr.create().unwrap();
    let r = LinuxResourcesBuilder::default()
        .hugepage_limits(vec![LinuxHugepageLimitBuilder::default()
            .page_size("2MB")
            .limit(4i64 << 20)
            .build()
            .unwrap()])
        .build()
        .unwrap();
    match g.mgr.set(&r) {
        Ok(()) => {}
        Err(e @ CgroupError::Unsupported { .. }) => {
            eprintln!("skipped: {e}");
            return;
        }
        Err(e) => panic!("{e}"),
    }
    let (dir, file) = match dir_of(g.mgr.as_ref(), "hugetlb") {
        Some(d) if g.mgr.kind() == LayoutKind::V1 => (d, "hugetlb.2MB.limit_in_bytes"),
        _ => (g.mgr.unified_dir().unwrap(), "hugetlb.2MB.max"),
    };
    assert_eq!(read(&dir, file), (4u64 << 20).to_string());
    let s = g.mgr.stats().unwrap();
    assert!(s.hugetlb.contains_key("2MB"), "{:?}", s.hugetlb);
}

#[test]
fn relative_and_default_paths_resolve() {
    let c = berth_cgroups::default_config(None, "abc").unwrap();
    assert_eq!(c.path, PathBuf::from("/berth/abc"));
    let c = berth_cgroups::default_config(Some("berth-rel/abc"), "abc").unwrap();
    assert!(c.path.ends_with("berth-rel/abc"));
    assert!(matches!(
        berth_cgroups::default_config(Some("system.slice:berth:abc"), "abc"),
        Err(CgroupError::Systemd(_))
    ));
}

/// Runs [`v2_inner`] in a private mount namespace where a cgroup2 file system is mounted
/// afresh, so the v2 manager is exercised on this hybrid host too.
#[test]
fn pure_v2_in_private_mount_namespace() {
    require_root!();
    if Command::new("unshare").arg("--version").output().is_err() {
        eprintln!("skipped: no unshare(1)");
        return;
    }
    let exe = std::env::current_exe().unwrap();
    let out = Command::new("unshare")
        .args(["-m", "--propagation", "private"])
        .arg(exe)
        .args([
            "--exact",
            "v2_inner",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env("BERTH_CGROUPS_V2_INNER", "1")
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    eprintln!("{text}");
    assert!(out.status.success(), "inner v2 test failed");
    assert!(text.contains("1 passed"), "inner v2 test did not run");
}

#[test]
#[ignore = "run by pure_v2_in_private_mount_namespace"]
fn v2_inner() {
    if std::env::var_os("BERTH_CGROUPS_V2_INNER").is_none() {
        return;
    }
    let mnt = PathBuf::from(format!("/tmp/berth-cg2-{}", std::process::id()));
    std::fs::create_dir_all(&mnt).unwrap();
    nix::mount::mount(
        Some("cgroup2"),
        &mnt,
        Some("cgroup2"),
        nix::mount::MsFlags::empty(),
        None::<&str>,
    )
    .unwrap();
    struct Unmount(PathBuf);
    impl Drop for Unmount {
        fn drop(&mut self) {
            let _ = nix::mount::umount(&self.0);
            let _ = std::fs::remove_dir(&self.0);
        }
    }
    let _um = Unmount(mnt.clone());
    let controllers = read(&mnt, "cgroup.controllers");
    eprintln!("cgroup2 controllers free here: {controllers:?}");

    let config = CgroupConfig::new(unique_path("v2")).unwrap();
    let mgr = open_with(
        Layout::V2 {
            mount_point: mnt.clone(),
        },
        config.clone(),
    )
    .unwrap();
    assert_eq!(mgr.kind(), LayoutKind::V2);
    let mut g = Guard::with(mgr);
    let v2 = V2Manager::new(mnt.clone(), config);
    let i = g.spawn_in("read x; if (exec 3</dev/null) 2>/dev/null; then echo null-ok; fi; if (exec 3</dev/zero) 2>/dev/null; then echo zero-ok; fi; exec sleep 100");
    let pid = g.pid(i);
    assert_eq!(g.mgr.pids().unwrap(), vec![pid]);

    // Core v2 features need no controller: freezer, kill, and the device filter (eBPF).
    g.mgr.freeze(true).unwrap();
    assert_eq!(g.mgr.freezer_state().unwrap(), FreezerState::Frozen);
    g.mgr.freeze(false).unwrap();
    assert_eq!(g.mgr.freezer_state().unwrap(), FreezerState::Thawed);
    let devs = vec![
        LinuxDeviceCgroupBuilder::default()
            .allow(false)
            .access("rwm")
            .build()
            .unwrap(),
        LinuxDeviceCgroupBuilder::default()
            .allow(true)
            .typ(LinuxDeviceType::C)
            .major(1i64)
            .minor(3i64)
            .access("rwm")
            .build()
            .unwrap(),
    ];
    g.mgr
        .set(
            &LinuxResourcesBuilder::default()
                .devices(devs.clone())
                .build()
                .unwrap(),
        )
        .unwrap();
    // Replacing the program keeps one attached.
    g.mgr
        .set(
            &LinuxResourcesBuilder::default()
                .devices(devs)
                .build()
                .unwrap(),
        )
        .unwrap();

    if controllers.split_whitespace().any(|c| c == "hugetlb") {
        let r = LinuxResourcesBuilder::default()
            .hugepage_limits(vec![LinuxHugepageLimitBuilder::default()
                .page_size("2MB")
                .limit(2i64 << 20)
                .build()
                .unwrap()])
            .build()
            .unwrap();
        g.mgr.set(&r).unwrap();
        assert_eq!(read(v2.dir(), "hugetlb.2MB.max"), (2u64 << 20).to_string());
    }
    if !controllers.split_whitespace().any(|c| c == "memory") {
        let e = g.mgr.set(&memory_pids(16 << 20, 0)).unwrap_err();
        assert!(
            matches!(e, CgroupError::Unsupported { ref resource, .. } if resource == "memory.limit"),
            "{e}"
        );
    } else {
        g.mgr.set(&memory_pids(16 << 20, 0)).unwrap();
        assert_eq!(read(v2.dir(), "memory.max"), (16u64 << 20).to_string());
    }
    g.go(i);
    std::thread::sleep(Duration::from_millis(200));
    g.mgr.kill_all(Signal::SIGKILL).unwrap();
    let (st, out) = g.wait(i, Duration::from_secs(5));
    assert_eq!(st.signal(), Some(libc::SIGKILL));
    assert_eq!(out, "null-ok\n", "the device filter did not apply");
    drop(g);
    assert!(!v2.dir().exists());
}

#[test]
fn many_fields_read_back() {
    require_root!();
    use oci_spec::runtime::LinuxCpuBuilder;
    let g = Guard::new("fields");
    g.mgr.create().unwrap();
    let v2 = g.mgr.kind() == LayoutKind::V2;
    let mut cpu = LinuxCpuBuilder::default()
        .shares(512u64)
        .quota(50_000i64)
        .period(100_000u64)
        .burst(1000u64)
        .cpus("0")
        .mems("0");
    if !v2 {
        cpu = cpu.idle(0i64);
    }
    let mut mem = LinuxMemoryBuilder::default()
        .limit(64i64 << 20)
        .reservation(32i64 << 20);
    if !v2 {
        mem = mem.swappiness(10u64).disable_oom_killer(true);
    }
    let r = LinuxResourcesBuilder::default()
        .cpu(cpu.build().unwrap())
        .memory(mem.build().unwrap())
        .build()
        .unwrap();
    g.mgr.set(&r).unwrap();
    if v2 {
        let d = g.mgr.unified_dir().unwrap();
        assert_eq!(read(&d, "cpu.max"), "50000 100000");
        assert_eq!(
            read(&d, "cpu.weight"),
            berth_cgroups::shares_to_weight(512).to_string()
        );
        assert_eq!(read(&d, "memory.low"), (32u64 << 20).to_string());
    } else {
        let c = dir_of(g.mgr.as_ref(), "cpu").unwrap();
        assert_eq!(read(&c, "cpu.shares"), "512");
        assert_eq!(read(&c, "cpu.cfs_quota_us"), "50000");
        assert_eq!(read(&c, "cpu.cfs_period_us"), "100000");
        assert_eq!(read(&c, "cpu.cfs_burst_us"), "1000");
        let cs = dir_of(g.mgr.as_ref(), "cpuset").unwrap();
        assert_eq!(read(&cs, "cpuset.cpus"), "0");
        let m = dir_of(g.mgr.as_ref(), "memory").unwrap();
        assert_eq!(
            read(&m, "memory.soft_limit_in_bytes"),
            (32u64 << 20).to_string()
        );
        assert_eq!(read(&m, "memory.swappiness"), "10");
        assert!(read(&m, "memory.oom_control").contains("oom_kill_disable 1"));
    }
    // A shorter period with a new quota (the retry path), then quota -1 (unlimited).
    let r = LinuxResourcesBuilder::default()
        .cpu(
            LinuxCpuBuilder::default()
                .quota(5_000i64)
                .period(10_000u64)
                .build()
                .unwrap(),
        )
        .build()
        .unwrap();
    g.mgr.set(&r).unwrap();
    let r = LinuxResourcesBuilder::default()
        .cpu(LinuxCpuBuilder::default().quota(-1i64).build().unwrap())
        .build()
        .unwrap();
    g.mgr.set(&r).unwrap();
    if !v2 {
        let c = dir_of(g.mgr.as_ref(), "cpu").unwrap();
        assert_eq!(read(&c, "cpu.cfs_quota_us"), "-1");
        assert_eq!(read(&c, "cpu.cfs_period_us"), "10000");
        // kernel memory: written if the kernel still has it, else an error naming it.
        #[allow(deprecated)]
        let r = LinuxResourcesBuilder::default()
            .memory(
                LinuxMemoryBuilder::default()
                    .kernel(64i64 << 20)
                    .build()
                    .unwrap(),
            )
            .build()
            .unwrap();
        match g.mgr.set(&r) {
            Ok(()) => {}
            Err(e) => {
                eprintln!("memory.kernel: {e}");
                assert!(e.to_string().contains("kmem"), "{e}");
            }
        }
    }
}
