//! The five capability sets of process.capabilities.

use crate::error::{Result, RuntimeError};
use caps::{CapSet, Capability as Cap, CapsHashSet};
use oci_spec::runtime::{Capabilities, LinuxCapabilities};
use std::str::FromStr;

fn err(what: &str, e: impl std::fmt::Display) -> RuntimeError {
    RuntimeError::Init(format!("capabilities: {what}: {e}"))
}

/// oci-spec names capabilities without the CAP_ prefix; the caps crate with it.
pub fn to_caps(set: Option<&Capabilities>) -> Result<CapsHashSet> {
    let mut out = CapsHashSet::new();
    for c in set.into_iter().flatten() {
        let name = format!("CAP_{c}");
        let cap = Cap::from_str(&name)
            .map_err(|_| RuntimeError::InvalidConfig(format!("unknown capability {name}")))?;
        out.insert(cap);
    }
    Ok(out)
}

/// The parsed sets, computed before any privilege is dropped so a bad name fails early.
pub struct Sets {
    bounding: CapsHashSet,
    effective: CapsHashSet,
    permitted: CapsHashSet,
    inheritable: CapsHashSet,
    ambient: CapsHashSet,
}

impl Sets {
    pub fn parse(c: &LinuxCapabilities) -> Result<Sets> {
        Ok(Sets {
            bounding: to_caps(c.bounding().as_ref())?,
            effective: to_caps(c.effective().as_ref())?,
            permitted: to_caps(c.permitted().as_ref())?,
            inheritable: to_caps(c.inheritable().as_ref())?,
            ambient: to_caps(c.ambient().as_ref())?,
        })
    }

    /// Step 1, while still root: shrink the bounding set (needs CAP_SETPCAP). One prctl per
    /// dropped capability, without probing each first.
    pub fn drop_bounding(&self) -> Result<()> {
        let keep: Vec<u8> = self.bounding.iter().map(|c| c.index()).collect();
        for cap in 0..64u8 {
            if keep.contains(&cap) {
                continue;
            }
            if !crate::sys::capbset_drop(u32::from(cap)).map_err(|e| err("bounding", e))? {
                break;
            }
        }
        Ok(())
    }

    /// Step 2, after setuid (with keepcaps): set the rest. Inheritable is set while the
    /// permitted set is still full, effective before permitted shrinks under it.
    pub fn apply(&self) -> Result<()> {
        let last = last_cap();
        let keep = |s: &CapsHashSet| -> CapsHashSet {
            s.iter().copied().filter(|c| c.index() <= last).collect()
        };
        caps::set(None, CapSet::Inheritable, &keep(&self.inheritable))
            .map_err(|e| err("inheritable", e))?;
        caps::set(None, CapSet::Effective, &keep(&self.effective))
            .map_err(|e| err("effective", e))?;
        caps::set(None, CapSet::Permitted, &keep(&self.permitted))
            .map_err(|e| err("permitted", e))?;
        caps::clear(None, CapSet::Ambient).map_err(|e| err("ambient", e))?;
        // The kernel raises an ambient capability only if it is both permitted and
        // inheritable; like runc we skip the others rather than fail the container.
        let raisable = keep(&self.ambient)
            .into_iter()
            .filter(|c| self.permitted.contains(c) && self.inheritable.contains(c));
        for cap in raisable {
            caps::raise(None, CapSet::Ambient, cap).map_err(|e| err("ambient", e))?;
        }
        Ok(())
    }
}

/// The highest capability number this kernel knows; names it doesn't know are skipped, as
/// runc does, so one config works across kernels.
fn last_cap() -> u8 {
    std::fs::read_to_string("/proc/sys/kernel/cap_last_cap")
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(40)
}
