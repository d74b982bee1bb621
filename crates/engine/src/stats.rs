//! `berth stats`: one sample of a container's cgroup (through berth-cgroups, so v1, v2 and
//! hybrid hosts alike) and docker's CPU % between two samples.

use crate::error::{Error, Result};
use std::time::Instant;

/// One reading of a container's usage.
#[derive(Debug, Clone, PartialEq)]
pub struct Stats {
    /// CPU time used by the container's processes, in nanoseconds.
    pub cpu_usage_ns: u64,
    /// CPU time the whole host has spent (every CPU, every state) up to now, in nanoseconds
    /// (docker's `system_cpu_usage`, from /proc/stat).
    pub system_ns: u64,
    /// Memory in use minus inactive page cache, as docker's CLI shows it.
    pub memory_usage: u64,
    /// The container's memory limit; the host's memory when unlimited.
    pub memory_limit: u64,
    /// Processes (tasks) in the cgroup.
    pub pids: u64,
    pub read_at: Instant,
}

/// Reads the cgroup at `cgroups_path` (e.g. "/berth/<id>"). A cgroup that is gone (the
/// container stopped) is an error.
pub fn sample(cgroups_path: &str) -> Result<Stats> {
    let cg_err = |source| Error::Cgroup {
        path: cgroups_path.to_string(),
        source,
    };
    let config = berth_cgroups::CgroupConfig::new(cgroups_path).map_err(cg_err)?;
    let manager = berth_cgroups::open(config).map_err(cg_err)?;
    if !manager.exists() {
        return Err(Error::InvalidOption(format!(
            "cgroup {cgroups_path} does not exist (is the container running?)"
        )));
    }
    let s = manager.stats().map_err(cg_err)?;
    let read_at = Instant::now();
    let system_ns = system_cpu_ns()?;

    // docker's CLI: usage minus inactive file cache (v1: total_inactive_file, v2:
    // inactive_file).
    let raw = &s.memory.raw;
    let inactive = raw
        .get("total_inactive_file")
        .or_else(|| raw.get("inactive_file"))
        .copied()
        .unwrap_or(0);
    let usage = s.memory.usage.usage;
    let memory_usage = if inactive < usage {
        usage - inactive
    } else {
        usage
    };
    let host = host_memory()?;
    let limit = s.memory.usage.limit;
    let memory_limit = if limit == 0 || limit > host {
        host
    } else {
        limit
    };

    Ok(Stats {
        cpu_usage_ns: s.cpu.usage.total,
        system_ns,
        memory_usage,
        memory_limit,
        pids: s.pids.current,
        read_at,
    })
}

/// docker's CPU %: the container's share of the host's CPU time between two samples,
/// scaled by the CPUs (100% = one CPU busy).
pub fn cpu_percent(prev: &Stats, now: &Stats, online_cpus: u32) -> f64 {
    let cpu = now.cpu_usage_ns.saturating_sub(prev.cpu_usage_ns) as f64;
    let system = now.system_ns.saturating_sub(prev.system_ns) as f64;
    if cpu > 0.0 && system > 0.0 {
        cpu / system * f64::from(online_cpus) * 100.0
    } else {
        0.0
    }
}

/// The CPUs online (docker's `online_cpus`).
pub fn online_cpus() -> u32 {
    std::thread::available_parallelism().map_or(1, |n| n.get() as u32)
}

/// Sum of the first `cpu` line of /proc/stat, in nanoseconds.
fn system_cpu_ns() -> Result<u64> {
    let path = "/proc/stat";
    let text = std::fs::read_to_string(path).map_err(|source| Error::Io {
        path: path.into(),
        source,
    })?;
    let ticks: u64 = text
        .lines()
        .find(|l| l.starts_with("cpu "))
        .map(|l| {
            l.split_whitespace()
                .skip(1)
                .filter_map(|v| v.parse::<u64>().ok())
                .sum()
        })
        .unwrap_or(0);
    let hz = nix::unistd::sysconf(nix::unistd::SysconfVar::CLK_TCK)
        .ok()
        .flatten()
        .filter(|h| *h > 0)
        .unwrap_or(100) as u64;
    Ok(ticks.saturating_mul(1_000_000_000 / hz))
}

/// MemTotal of /proc/meminfo in bytes.
fn host_memory() -> Result<u64> {
    let path = "/proc/meminfo";
    let text = std::fs::read_to_string(path).map_err(|source| Error::Io {
        path: path.into(),
        source,
    })?;
    Ok(text
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map_or(u64::MAX, |kb| kb * 1024))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(cpu: u64, system: u64) -> Stats {
        Stats {
            cpu_usage_ns: cpu,
            system_ns: system,
            memory_usage: 0,
            memory_limit: 0,
            pids: 0,
            read_at: Instant::now(),
        }
    }

    #[test]
    fn cpu_percent_is_dockers() {
        // Half of all host CPU time on a 2-CPU host: one CPU busy = 100%.
        assert_eq!(cpu_percent(&at(0, 0), &at(500, 1000), 2), 100.0);
        assert_eq!(cpu_percent(&at(100, 1000), &at(100, 2000), 2), 0.0);
        assert_eq!(cpu_percent(&at(100, 1000), &at(200, 1000), 2), 0.0);
    }

    #[test]
    fn host_counters_read() {
        assert!(system_cpu_ns().unwrap() > 0);
        assert!(host_memory().unwrap() > 1 << 20);
        assert!(online_cpus() >= 1);
    }
}
