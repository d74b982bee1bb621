//! `update`: changes a live container's resources. The request (runc's flags, or
//! runtime-spec `LinuxResources` JSON) is merged into the resources the container has now
//! (its stored config.json), written through the cgroup manager, and recorded in the
//! stored config so a later `update` or `exec` starts from it.

use super::pause::cgroup_of;
use crate::cgroup;
use crate::error::{Context, Result, RuntimeError};
use crate::state::{StateRoot, Status, CONFIG_FILE};
use oci_spec::runtime::LinuxResources;
use serde_json::{json, Map, Value};

/// runc's `update` flags, as given (values are parsed by [`update`], so a bad one is
/// reported with its flag's name).
#[derive(Debug, Default, Clone)]
pub struct UpdateFlags {
    pub blkio_weight: Option<u16>,
    pub cpu_period: Option<String>,
    pub cpu_quota: Option<String>,
    pub cpu_shares: Option<String>,
    pub cpu_rt_period: Option<String>,
    pub cpu_rt_runtime: Option<String>,
    pub cpuset_cpus: Option<String>,
    pub cpuset_mems: Option<String>,
    pub memory: Option<String>,
    pub memory_reservation: Option<String>,
    pub memory_swap: Option<String>,
    pub kernel_memory: Option<String>,
    pub kernel_memory_tcp: Option<String>,
    pub pids_limit: Option<i64>,
    pub l3_cache_schema: Option<String>,
    pub mem_bw_schema: Option<String>,
}

/// Where the new values come from.
pub enum Request<'a> {
    /// `--resources FILE|-`: runtime-spec LinuxResources JSON (the flags are ignored, as
    /// in runc).
    Json(&'a [u8]),
    Flags(&'a UpdateFlags),
}

/// Applies `request` to container `id`; returns the container's resources after it.
pub fn update(root: &StateRoot, id: &str, request: Request) -> Result<LinuxResources> {
    let req = match request {
        Request::Json(bytes) => json_request(bytes)?,
        Request::Flags(f) => flags_request(f)?,
    };
    let (locked, state) = root.open(id)?;
    if matches!(state.status, Status::Stopped | Status::Creating) {
        return Err(RuntimeError::WrongState {
            id: id.to_string(),
            status: state.status.as_str(),
            action: "update",
            wanted: "created, running or paused",
        });
    }
    let config = cgroup_of(&state)?.clone();
    let path = locked.dir.join(CONFIG_FILE);
    let raw = std::fs::read(&path).at(&path)?;
    let corrupt = |msg: String| RuntimeError::CorruptState {
        id: id.to_string(),
        msg,
    };
    let mut doc: Value =
        serde_json::from_slice(&raw).map_err(|e| corrupt(format!("{CONFIG_FILE}: {e}")))?;
    let linux = doc
        .as_object_mut()
        .ok_or_else(|| corrupt(format!("{CONFIG_FILE} is not an object")))?
        .entry("linux")
        .or_insert_with(|| json!({}));
    let linux = linux
        .as_object_mut()
        .ok_or_else(|| corrupt(format!("{CONFIG_FILE}: linux is not an object")))?;
    let mut merged = linux.get("resources").cloned().unwrap_or_else(|| json!({}));
    merge(&mut merged, &req);
    let resources: LinuxResources = serde_json::from_value(merged.clone())
        .map_err(|e| corrupt(format!("merged resources: {e}")))?;
    // Device rules are not updatable (runc skips them too): the cgroup keeps its rules.
    let mut to_write = resources.clone();
    to_write.set_devices(None);
    cgroup::open(&config)?.set(&to_write)?;
    linux.insert("resources".into(), merged);
    let tmp = locked.dir.join(".config.json.tmp");
    let bytes = serde_json::to_vec_pretty(&doc).map_err(|e| corrupt(e.to_string()))?;
    std::fs::write(&tmp, bytes).at(&tmp)?;
    std::fs::rename(&tmp, &path).at(&path)?;
    Ok(resources)
}

/// `--resources` JSON, checked against the runtime-spec types; device rules are dropped.
fn json_request(bytes: &[u8]) -> Result<Value> {
    let bad = |msg: String| RuntimeError::InvalidValue {
        flag: "--resources".into(),
        msg,
    };
    let mut v: Value = serde_json::from_slice(bytes).map_err(|e| bad(e.to_string()))?;
    if !v.is_object() {
        return Err(bad(
            "expected a JSON object (runtime-spec LinuxResources)".into()
        ));
    }
    serde_json::from_value::<LinuxResources>(v.clone()).map_err(|e| bad(e.to_string()))?;
    if let Some(o) = v.as_object_mut() {
        o.remove("devices");
    }
    Ok(v)
}

/// The flags as a LinuxResources JSON object (only the ones given).
fn flags_request(f: &UpdateFlags) -> Result<Value> {
    for (flag, v) in [
        ("--l3-cache-schema", &f.l3_cache_schema),
        ("--mem-bw-schema", &f.mem_bw_schema),
    ] {
        if v.is_some() {
            return Err(RuntimeError::Unsupported(format!(
                "{flag}: Intel RDT is not supported by berth-runtime"
            )));
        }
    }
    let mut memory = Map::new();
    for (flag, key, v) in [
        ("--memory", "limit", &f.memory),
        ("--memory-reservation", "reservation", &f.memory_reservation),
        ("--memory-swap", "swap", &f.memory_swap),
        ("--kernel-memory", "kernel", &f.kernel_memory),
        ("--kernel-memory-tcp", "kernelTCP", &f.kernel_memory_tcp),
    ] {
        if let Some(s) = v.as_deref().filter(|s| !s.is_empty()) {
            let n = if s == "-1" {
                -1
            } else {
                ram_in_bytes(s).map_err(|msg| RuntimeError::InvalidValue {
                    flag: flag.into(),
                    msg,
                })?
            };
            memory.insert(key.into(), n.into());
        }
    }
    let mut cpu = Map::new();
    for (flag, key, v, signed) in [
        ("--cpu-period", "period", &f.cpu_period, false),
        ("--cpu-rt-period", "realtimePeriod", &f.cpu_rt_period, false),
        ("--cpu-share", "shares", &f.cpu_shares, false),
        ("--cpu-quota", "quota", &f.cpu_quota, true),
        (
            "--cpu-rt-runtime",
            "realtimeRuntime",
            &f.cpu_rt_runtime,
            true,
        ),
    ] {
        if let Some(s) = v.as_deref().filter(|s| !s.is_empty()) {
            let bad = |e: std::num::ParseIntError| RuntimeError::InvalidValue {
                flag: flag.into(),
                msg: format!("{s:?}: {e}"),
            };
            let n: Value = if signed {
                s.parse::<i64>().map_err(bad)?.into()
            } else {
                s.parse::<u64>().map_err(bad)?.into()
            };
            cpu.insert(key.into(), n);
        }
    }
    if let Some(s) = f.cpuset_cpus.as_deref().filter(|s| !s.is_empty()) {
        cpu.insert("cpus".into(), s.into());
    }
    if let Some(s) = f.cpuset_mems.as_deref().filter(|s| !s.is_empty()) {
        cpu.insert("mems".into(), s.into());
    }
    let mut req = Map::new();
    if !memory.is_empty() {
        req.insert("memory".into(), memory.into());
    }
    if !cpu.is_empty() {
        req.insert("cpu".into(), cpu.into());
    }
    if let Some(w) = f.blkio_weight.filter(|&w| w != 0) {
        req.insert("blockIO".into(), json!({ "weight": w }));
    }
    if let Some(l) = f.pids_limit.filter(|&l| l != 0) {
        req.insert("pids".into(), json!({ "limit": l }));
    }
    Ok(req.into())
}

/// Values that mean "leave alone" (0, "") change nothing, so the stored config keeps
/// saying what the kernel has; except where 0 is a real setting.
fn is_unchanged(key: &str, v: &Value) -> bool {
    match v {
        Value::Null => true,
        Value::String(s) => s.is_empty(),
        Value::Number(n) => {
            n.as_f64() == Some(0.0) && !matches!(key, "swappiness" | "idle" | "classID")
        }
        _ => false,
    }
}

/// Deep-merges `req` into `base`: objects key by key, hugepage limits by page size, any
/// other value replaced. As runc, a memory limit of -1 without a swap value makes swap
/// unlimited too.
fn merge(base: &mut Value, req: &Value) {
    let (Some(b), Some(r)) = (base.as_object_mut(), req.as_object()) else {
        return;
    };
    for (k, v) in r {
        if is_unchanged(k, v) {
            continue;
        }
        match (b.get_mut(k), v) {
            (Some(bv @ Value::Object(_)), Value::Object(_)) => merge(bv, v),
            (Some(Value::Array(old)), Value::Array(new)) if k == "hugepageLimits" => {
                for limit in new {
                    let size = &limit["pageSize"];
                    old.retain(|l| &l["pageSize"] != size);
                    old.push(limit.clone());
                }
            }
            _ => {
                b.insert(k.clone(), v.clone());
            }
        }
    }
    if let Some(m) = r.get("memory") {
        if m.get("limit").and_then(Value::as_i64) == Some(-1) && m.get("swap").is_none() {
            b["memory"]["swap"] = json!(-1);
        }
    }
}

/// go-units' RAMInBytes: a number (decimals allowed), an optional space and an optional
/// binary unit `k`, `m`, `g`, `t`, `p` with optional `i` and `b` (`512m`, `1.5GiB`,
/// `64 MB`, `4096`, `10b`); case-insensitive.
pub fn ram_in_bytes(s: &str) -> std::result::Result<i64, String> {
    let bad = || format!("invalid size: {s:?}");
    let num_len = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(s.len());
    let (num, rest) = s.split_at(num_len);
    if num.is_empty() || num.starts_with('.') || num.ends_with('.') || num.contains("..") {
        return Err(bad());
    }
    let rest = rest.strip_prefix(' ').unwrap_or(rest).to_ascii_lowercase();
    let mut chars = rest.chars().peekable();
    let shift = match chars.peek() {
        Some('k') => 10,
        Some('m') => 20,
        Some('g') => 30,
        Some('t') => 40,
        Some('p') => 50,
        _ => 0,
    };
    if shift != 0 {
        chars.next();
    }
    if chars.peek() == Some(&'i') {
        chars.next();
    }
    if chars.peek() == Some(&'b') {
        chars.next();
    }
    if chars.next().is_some() {
        return Err(bad());
    }
    // Go parses "1.2.3" as far as it can; we take the integer and first fraction only.
    let mut parts = num.split('.');
    let value: f64 = match (parts.next(), parts.next()) {
        (Some(i), Some(f)) => format!("{i}.{f}").parse().map_err(|_| bad())?,
        (Some(i), None) => i.parse().map_err(|_| bad())?,
        _ => return Err(bad()),
    };
    let bytes = value * (1u64 << shift) as f64;
    if !bytes.is_finite() || bytes >= i64::MAX as f64 {
        return Err(format!("{s:?} is too large"));
    }
    Ok(bytes as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(ram_in_bytes("4096"), Ok(4096));
        assert_eq!(ram_in_bytes("512m"), Ok(512 << 20));
        assert_eq!(ram_in_bytes("512M"), Ok(512 << 20));
        assert_eq!(ram_in_bytes("1g"), Ok(1 << 30));
        assert_eq!(ram_in_bytes("1.5GiB"), Ok(3 << 29));
        assert_eq!(ram_in_bytes("64 MB"), Ok(64 << 20));
        assert_eq!(ram_in_bytes("2k"), Ok(2048));
        assert_eq!(ram_in_bytes("10b"), Ok(10));
        assert_eq!(ram_in_bytes("1t"), Ok(1 << 40));
        for bad in ["", "m", "-5", "5x", "5mbb", "1..5m", ".5m", "5  m", "1e3"] {
            assert!(ram_in_bytes(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn flags_become_resources() {
        let f = UpdateFlags {
            memory: Some("64m".into()),
            memory_swap: Some("-1".into()),
            cpu_quota: Some("-1".into()),
            cpu_shares: Some("512".into()),
            cpuset_cpus: Some("0".into()),
            pids_limit: Some(20),
            blkio_weight: Some(0),
            ..Default::default()
        };
        let v = flags_request(&f).unwrap();
        assert_eq!(
            v,
            json!({
                "memory": {"limit": 64 << 20, "swap": -1},
                "cpu": {"quota": -1, "shares": 512, "cpus": "0"},
                "pids": {"limit": 20},
            })
        );
        let bad = UpdateFlags {
            cpu_period: Some("-5".into()),
            ..Default::default()
        };
        let e = flags_request(&bad).unwrap_err().to_string();
        assert!(e.contains("--cpu-period"), "{e}");
        let bad = UpdateFlags {
            memory: Some("lots".into()),
            ..Default::default()
        };
        assert!(flags_request(&bad)
            .unwrap_err()
            .to_string()
            .contains("--memory"));
        let rdt = UpdateFlags {
            l3_cache_schema: Some("L3:0=f".into()),
            ..Default::default()
        };
        assert!(flags_request(&rdt).is_err());
    }

    #[test]
    fn merging() {
        let mut base = json!({
            "devices": [{"allow": false, "access": "rwm"}],
            "memory": {"limit": 100, "swap": 200},
            "cpu": {"shares": 1024, "cpus": "0-1"},
            "pids": {"limit": 10},
            "hugepageLimits": [{"pageSize": "2MB", "limit": 1}, {"pageSize": "1GB", "limit": 2}],
        });
        merge(
            &mut base,
            &json!({
                "memory": {"limit": 300, "reservation": 0},
                "cpu": {"cpus": "", "quota": 5000},
                "pids": {"limit": 0},
                "hugepageLimits": [{"pageSize": "2MB", "limit": 9}],
                "unified": {"memory.high": "1000"},
            }),
        );
        assert_eq!(base["memory"], json!({"limit": 300, "swap": 200}));
        assert_eq!(
            base["cpu"],
            json!({"shares": 1024, "cpus": "0-1", "quota": 5000})
        );
        assert_eq!(base["pids"]["limit"], 10);
        assert_eq!(base["devices"][0]["access"], "rwm");
        assert_eq!(
            base["hugepageLimits"],
            json!([{"pageSize": "1GB", "limit": 2}, {"pageSize": "2MB", "limit": 9}])
        );
        assert_eq!(base["unified"]["memory.high"], "1000");
        merge(&mut base, &json!({"memory": {"limit": -1}}));
        assert_eq!(base["memory"], json!({"limit": -1, "swap": -1}));
    }

    #[test]
    fn json_requests() {
        let v = json_request(br#"{"memory":{"limit":1048576},"devices":[]}"#).unwrap();
        assert_eq!(v, json!({"memory": {"limit": 1048576}}));
        assert!(json_request(b"[1]").is_err());
        assert!(json_request(br#"{"memory":{"limit":"x"}}"#).is_err());
        assert!(json_request(b"not json").is_err());
    }
}
