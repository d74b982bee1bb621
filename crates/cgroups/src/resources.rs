//! Pure conversions shared by the managers (runc's values).

use crate::CgroupError;
use oci_spec::runtime::LinuxResources;

/// cpu.shares (v1, 2..=262144) to cpu.weight (v2, 1..=10000), runc's linear formula:
/// `1 + ((shares - 2) * 9999) / 262142`; 0 stays 0 (= leave alone).
pub fn shares_to_weight(shares: u64) -> u64 {
    if shares == 0 {
        return 0;
    }
    let s = shares.clamp(2, 262_144);
    1 + ((s - 2) * 9999) / 262_142
}

/// blkio.weight (10..=1000) to io.weight (1..=10000), runc's
/// `1 + (weight - 10) * 9999 / 990`.
pub(crate) fn blkio_weight_to_io_weight(w: u16) -> u64 {
    let w = u64::from(w.clamp(10, 1000));
    1 + (w - 10) * 9999 / 990
}

/// OCI memory.swap (memory + swap) to v2 memory.swap.max (swap alone), as runc:
/// `None` = leave alone, `Some(-1)` = max.
pub(crate) fn swap_to_v2(swap: i64, limit: i64) -> Result<Option<i64>, CgroupError> {
    let invalid = |reason: &str| CgroupError::Invalid {
        resource: "memory.swap".into(),
        reason: reason.into(),
    };
    if limit == -1 && swap == 0 {
        return Ok(Some(-1));
    }
    match swap {
        0 => Ok(None),
        -1 => Ok(Some(-1)),
        _ if limit == 0 || limit == -1 => Err(invalid("a swap limit needs a memory limit")),
        _ if limit < 0 || swap < 0 => Err(invalid("negative limits other than -1 are invalid")),
        _ if swap < limit => Err(invalid("memory+swap limit must be >= the memory limit")),
        _ => Ok(Some(swap - limit)),
    }
}

/// A limit for a cgroup file: `-1` (or any negative) is `max` (v2) / `-1` (v1).
pub(crate) fn v2_limit(v: i64) -> String {
    if v < 0 {
        "max".into()
    } else {
        v.to_string()
    }
}

/// Checks a hugepage size such as `2MB` against the host's sizes.
pub(crate) fn check_page_size(size: &str, sizes: &[String]) -> Result<(), CgroupError> {
    if sizes.iter().any(|s| s == size) {
        Ok(())
    } else {
        Err(CgroupError::Invalid {
            resource: format!("hugepageLimits[{size}]"),
            reason: format!("this host's huge page sizes are {sizes:?}"),
        })
    }
}

/// Whether any of the resources asks for something (so an all-default resources block
/// costs nothing).
pub(crate) fn is_empty(r: &LinuxResources) -> bool {
    r.devices().is_none()
        && r.memory().is_none()
        && r.cpu().is_none()
        && r.pids().is_none()
        && r.block_io().is_none()
        && r.hugepage_limits().as_ref().map_or(true, |v| v.is_empty())
        && r.network().is_none()
        && r.rdma().as_ref().map_or(true, |v| v.is_empty())
        && r.unified().as_ref().map_or(true, |v| v.is_empty())
}

/// rdma.max line for one device.
pub(crate) fn rdma_line(dev: &str, l: &oci_spec::runtime::LinuxRdma) -> String {
    let v = |o: Option<u32>| o.map_or_else(|| "max".to_string(), |n| n.to_string());
    format!(
        "{dev} hca_handle={} hca_object={}",
        v(l.hca_handles()),
        v(l.hca_objects())
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shares_weight() {
        assert_eq!(shares_to_weight(0), 0);
        assert_eq!(shares_to_weight(2), 1);
        assert_eq!(shares_to_weight(1024), 39);
        assert_eq!(shares_to_weight(262_144), 10_000);
        assert_eq!(shares_to_weight(1), 1, "clamped");
        assert_eq!(shares_to_weight(1 << 40), 10_000, "clamped");
    }

    #[test]
    fn blkio_weight() {
        assert_eq!(blkio_weight_to_io_weight(10), 1);
        assert_eq!(blkio_weight_to_io_weight(500), 4950);
        assert_eq!(blkio_weight_to_io_weight(1000), 10_000);
    }

    #[test]
    fn swap_conversion() {
        assert_eq!(swap_to_v2(0, 100).unwrap(), None);
        assert_eq!(swap_to_v2(0, -1).unwrap(), Some(-1));
        assert_eq!(swap_to_v2(-1, 100).unwrap(), Some(-1));
        assert_eq!(swap_to_v2(300, 100).unwrap(), Some(200));
        assert_eq!(swap_to_v2(100, 100).unwrap(), Some(0));
        assert!(swap_to_v2(50, 100).is_err());
        assert!(swap_to_v2(50, 0).is_err());
    }

    #[test]
    fn misc() {
        assert_eq!(v2_limit(-1), "max");
        assert_eq!(v2_limit(4096), "4096");
        let sizes = vec!["2MB".to_string(), "1GB".to_string()];
        assert!(check_page_size("2MB", &sizes).is_ok());
        assert!(check_page_size("4MB", &sizes).is_err());
        assert!(is_empty(&LinuxResources::default()));
    }
}
