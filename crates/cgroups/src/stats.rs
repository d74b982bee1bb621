//! Resource usage of a cgroup, shaped like runc's `types.Stats` (the `data` of
//! `runc events --stats`), plus the parsers of the kernel files it is read from.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

fn is_zero(v: &u64) -> bool {
    *v == 0
}

/// Everything `events --stats` reports about a cgroup.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Stats {
    /// CPU time and throttling.
    pub cpu: Cpu,
    /// Memory usage and limits.
    pub memory: Memory,
    /// Process counts.
    pub pids: Pids,
    /// Block I/O.
    pub blkio: Blkio,
    /// Huge pages, keyed by page size (`2MB`, `1GB`).
    pub hugetlb: BTreeMap<String, Hugetlb>,
}

/// `cpu` of runc's stats.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Cpu {
    /// Time used.
    pub usage: CpuUsage,
    /// CFS throttling.
    pub throttling: Throttling,
}

/// CPU time in nanoseconds.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CpuUsage {
    /// Total.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub total: u64,
    /// Per CPU (v1 only).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub percpu: Vec<u64>,
    /// Per CPU in kernel mode (v1 only).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub percpu_kernel: Vec<u64>,
    /// Per CPU in user mode (v1 only).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub percpu_user: Vec<u64>,
    /// In kernel mode.
    pub kernel: u64,
    /// In user mode.
    pub user: u64,
}

/// CFS bandwidth throttling.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Throttling {
    /// Enforcement periods elapsed.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub periods: u64,
    /// Periods in which the cgroup was throttled.
    #[serde(default, rename = "throttledPeriods", skip_serializing_if = "is_zero")]
    pub throttled_periods: u64,
    /// Total time throttled, in nanoseconds.
    #[serde(default, rename = "throttledTime", skip_serializing_if = "is_zero")]
    pub throttled_time: u64,
}

/// One memory counter with its limit.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct MemoryEntry {
    /// The limit in bytes (`u64::MAX` when unlimited).
    pub limit: u64,
    /// Current usage in bytes.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub usage: u64,
    /// Highest usage seen, in bytes.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub max: u64,
    /// How often the limit was hit.
    pub failcnt: u64,
}

/// `memory` of runc's stats.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Memory {
    /// Page cache in bytes.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub cache: u64,
    /// Memory.
    pub usage: MemoryEntry,
    /// Memory + swap (v1 memsw semantics, on v2 too).
    pub swap: MemoryEntry,
    /// Kernel memory (v1 with kmem accounting only).
    pub kernel: MemoryEntry,
    /// Kernel TCP buffers (v1 only).
    #[serde(rename = "kernelTCP")]
    pub kernel_tcp: MemoryEntry,
    /// memory.stat as is.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub raw: BTreeMap<String, u64>,
}

/// `pids` of runc's stats.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Pids {
    /// Processes (tasks) in the cgroup.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub current: u64,
    /// pids.max; 0 when unlimited.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub limit: u64,
}

/// One block I/O counter of one device.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlkioEntry {
    /// Device major.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub major: u64,
    /// Device minor.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub minor: u64,
    /// `Read`, `Write`, `Sync`, `Async`, `Discard`, `Total`.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub op: String,
    /// The count.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub value: u64,
}

/// `blkio` of runc's stats.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Blkio {
    /// Bytes transferred.
    #[serde(
        default,
        rename = "ioServiceBytesRecursive",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub io_service_bytes_recursive: Vec<BlkioEntry>,
    /// I/O operations.
    #[serde(
        default,
        rename = "ioServicedRecursive",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub io_serviced_recursive: Vec<BlkioEntry>,
}

/// One huge page size's counters.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hugetlb {
    /// Bytes in use.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub usage: u64,
    /// Highest usage (v1 only).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub max: u64,
    /// Allocations that failed at the limit.
    pub failcnt: u64,
}

/// Parses v1 `blkio.*_recursive` files: `8:0 Read 4096` lines and a final `Total N`.
pub fn parse_blkio_v1(text: &str) -> Vec<BlkioEntry> {
    text.lines()
        .filter_map(|l| {
            let mut it = l.split_whitespace();
            let dev = it.next()?;
            let op = it.next()?;
            let value = it.next()?.parse().ok()?;
            let (ma, mi) = dev.split_once(':')?;
            Some(BlkioEntry {
                major: ma.parse().ok()?,
                minor: mi.parse().ok()?,
                op: op.to_string(),
                value,
            })
        })
        .collect()
}

/// Parses v2 `io.stat` (`8:0 rbytes=1 wbytes=2 rios=3 wios=4 dbytes=0 dios=0`) into runc's
/// (bytes, ios) entries with ops `Read`/`Write`/`Discard`.
pub fn parse_io_stat(text: &str) -> (Vec<BlkioEntry>, Vec<BlkioEntry>) {
    let (mut bytes, mut ios) = (Vec::new(), Vec::new());
    for l in text.lines() {
        let mut it = l.split_whitespace();
        let Some((ma, mi)) = it.next().and_then(|d| d.split_once(':')) else {
            continue;
        };
        let (Ok(major), Ok(minor)) = (ma.parse(), mi.parse()) else {
            continue;
        };
        for kv in it {
            let Some((k, v)) = kv.split_once('=') else {
                continue;
            };
            let Ok(value) = v.parse() else { continue };
            let (list, op) = match k {
                "rbytes" => (&mut bytes, "Read"),
                "wbytes" => (&mut bytes, "Write"),
                "dbytes" => (&mut bytes, "Discard"),
                "rios" => (&mut ios, "Read"),
                "wios" => (&mut ios, "Write"),
                "dios" => (&mut ios, "Discard"),
                _ => continue,
            };
            list.push(BlkioEntry {
                major,
                minor,
                op: op.to_string(),
                value,
            });
        }
    }
    (bytes, ios)
}

/// The huge page sizes of this host as cgroup file names use them (`2MB`, `1GB`), from
/// `/sys/kernel/mm/hugepages/hugepages-<N>kB`.
pub fn hugepage_sizes() -> Vec<String> {
    let Ok(rd) = std::fs::read_dir("/sys/kernel/mm/hugepages") else {
        return Vec::new();
    };
    let mut out: Vec<String> = rd
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().into_string().ok()?;
            let kb: u64 = name
                .strip_prefix("hugepages-")?
                .strip_suffix("kB")?
                .parse()
                .ok()?;
            Some(page_size_name(kb * 1024))
        })
        .collect();
    out.sort();
    out
}

/// `2097152` -> `2MB`, as the kernel names hugetlb files.
pub fn page_size_name(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KB", "MB", "GB", "TB"];
    let mut v = bytes;
    let mut i = 0;
    while v >= 1024 && v % 1024 == 0 && i < UNITS.len() - 1 {
        v /= 1024;
        i += 1;
    }
    format!("{v}{}", UNITS[i])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blkio_v1() {
        let e = parse_blkio_v1("8:0 Read 4096\n8:0 Write 0\nTotal 4096\n");
        assert_eq!(e.len(), 2);
        assert_eq!(
            e[0],
            BlkioEntry {
                major: 8,
                minor: 0,
                op: "Read".into(),
                value: 4096
            }
        );
    }

    #[test]
    fn io_stat_v2() {
        let (b, i) = parse_io_stat("259:0 rbytes=10 wbytes=20 rios=1 wios=2 dbytes=0 dios=0\n");
        assert_eq!(b.len(), 3);
        assert_eq!(b[1].op, "Write");
        assert_eq!(b[1].value, 20);
        assert_eq!(i[0].value, 1);
        assert_eq!(i[0].major, 259);
    }

    #[test]
    fn page_sizes() {
        assert_eq!(page_size_name(2 * 1024 * 1024), "2MB");
        assert_eq!(page_size_name(1 << 30), "1GB");
        assert_eq!(page_size_name(64 * 1024), "64KB");
    }

    #[test]
    fn json_shape_matches_runc() {
        let mut s = Stats::default();
        s.memory.usage.limit = 10;
        s.cpu.throttling.throttled_periods = 2;
        let v: serde_json::Value = serde_json::to_value(&s).unwrap();
        assert_eq!(v["memory"]["usage"]["limit"], 10);
        assert_eq!(v["memory"]["usage"]["failcnt"], 0);
        assert!(v["memory"]["kernelTCP"].is_object());
        assert_eq!(v["cpu"]["throttling"]["throttledPeriods"], 2);
        assert!(
            v["cpu"]["usage"].get("total").is_none(),
            "zero totals are omitted"
        );
        assert!(v["hugetlb"].is_object());
        assert!(v["pids"].is_object());
        assert!(v["blkio"].is_object());
    }
}
