//! stats::sample on a real cgroup (made here through berth-cgroups), as root.

mod parts_common;

use berth_cgroups::{CgroupConfig, CgroupManager};
use berth_engine::stats::{cpu_percent, online_cpus, sample};
use parts_common::is_root;
use std::process::{Child, Command};
use std::time::Duration;

/// A cgroup with processes in it; killed and removed on drop.
struct Group {
    manager: Box<dyn CgroupManager>,
    children: Vec<Child>,
}

impl Drop for Group {
    fn drop(&mut self) {
        // Anything a child forked is in the cgroup too.
        let _ = self.manager.kill_all(berth_cgroups::Signal::SIGKILL);
        for c in &mut self.children {
            let _ = c.kill();
            let _ = c.wait();
        }
        for _ in 0..50 {
            if self.manager.destroy().is_ok() {
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

#[test]
fn sample_reads_cpu_memory_and_pids() {
    if !is_root("sample_reads_cpu_memory_and_pids") {
        return;
    }
    let path = format!("/berth/parts-stats-{}", std::process::id());
    let manager = berth_cgroups::open(CgroupConfig::new(&path).unwrap()).unwrap();
    manager.create().unwrap();
    let resources: oci_spec::runtime::LinuxResources = serde_json::from_value(
        serde_json::json!({"memory": {"limit": 64 << 20}, "pids": {"limit": 10}}),
    )
    .unwrap();
    manager.set(&resources).unwrap();
    let mut group = Group {
        manager,
        children: Vec::new(),
    };
    // One process burning a CPU, one sleeping. Pages are charged to the cgroup a process
    // was in when it touched them, so the busy one allocates ~1 MB once it's moved.
    let busy = "sleep 0.2; x=$(seq 1 200000); while :; do :; done";
    for args in [&["sh", "-c", busy][..], &["sleep", "60"]] {
        let child = Command::new(args[0]).args(&args[1..]).spawn().unwrap();
        group.manager.apply(child.id() as i32).unwrap();
        group.children.push(child);
    }

    let first = sample(&path).unwrap();
    std::thread::sleep(Duration::from_millis(500));
    let second = sample(&path).unwrap();
    assert_eq!(second.pids, 2);
    assert_eq!(second.memory_limit, 64 << 20);
    assert!(
        second.memory_usage > 500_000 && second.memory_usage < 64 << 20,
        "{second:?}"
    );
    assert!(second.cpu_usage_ns > first.cpu_usage_ns);
    let pct = cpu_percent(&first, &second, online_cpus());
    // One busy loop is ~100% (one CPU); leave room for a loaded CI machine.
    assert!(pct > 20.0 && pct < 130.0, "cpu {pct:.1}%");

    drop(group);
    let e = sample(&path).unwrap_err().to_string();
    assert!(e.contains("does not exist"), "{e}");
}
