//! Platforms (`os/arch[/variant]`) and picking one image out of a multi-platform index.

use std::fmt;
use std::str::FromStr;

use crate::error::Error;
use crate::spec::{Descriptor, Index, Platform};

/// A platform as `--platform` names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlatformSpec {
    pub os: String,
    pub architecture: String,
    pub variant: Option<String>,
}

impl PlatformSpec {
    /// The platform this binary runs on (Go's names, as image indexes use them).
    pub fn host() -> PlatformSpec {
        let (arch, variant) = match std::env::consts::ARCH {
            "x86_64" => ("amd64", None),
            "aarch64" => ("arm64", Some("v8")),
            "arm" => ("arm", Some("v7")),
            "x86" => ("386", None),
            "powerpc64" if cfg!(target_endian = "little") => ("ppc64le", None),
            "s390x" => ("s390x", None),
            "riscv64" => ("riscv64", None),
            other => (other, None),
        };
        PlatformSpec {
            os: "linux".into(),
            architecture: arch.into(),
            variant: variant.map(String::from),
        }
    }

    /// Does an index entry's platform match? A variant not asked for matches any; arm64's
    /// only variant, v8, may also be left out by the index.
    pub fn matches(&self, p: &Platform) -> bool {
        if p.os != self.os || p.architecture != self.architecture {
            return false;
        }
        match (&self.variant, &p.variant) {
            (None, _) => true,
            (Some(w), Some(v)) => w == v,
            (Some(w), None) => self.architecture == "arm64" && w == "v8",
        }
    }

    /// The index entry to pull: an exact variant match first, then any match.
    pub fn select<'a>(&self, index: &'a Index) -> Option<&'a Descriptor> {
        let candidates = || {
            index
                .manifests
                .iter()
                .filter(|d| d.platform.as_ref().is_some_and(|p| self.matches(p)))
        };
        candidates()
            .find(|d| d.platform.as_ref().and_then(|p| p.variant.as_ref()) == self.variant.as_ref())
            .or_else(|| candidates().next())
    }

    /// `os/arch[/variant]` of every image an index offers (attestations left out).
    pub fn available(index: &Index) -> Vec<String> {
        index
            .manifests
            .iter()
            .filter_map(|d| d.platform.as_ref())
            .filter(|p| p.os != "unknown")
            .map(|p| PlatformSpec::from(p).to_string())
            .collect()
    }
}

impl From<&Platform> for PlatformSpec {
    fn from(p: &Platform) -> Self {
        PlatformSpec {
            os: p.os.clone(),
            architecture: p.architecture.clone(),
            variant: p.variant.clone(),
        }
    }
}

impl FromStr for PlatformSpec {
    type Err = Error;
    /// `os/arch[/variant]`, with the usual aliases (x86_64, aarch64, armhf...).
    fn from_str(s: &str) -> Result<Self, Error> {
        let bad = || Error::InvalidPlatform(s.to_string());
        let parts: Vec<&str> = s.split('/').collect();
        if !(2..=3).contains(&parts.len()) || parts.iter().any(|p| p.is_empty()) {
            return Err(bad());
        }
        let os = parts[0].to_ascii_lowercase();
        let (arch, mut variant) = match parts[1].to_ascii_lowercase().as_str() {
            "x86_64" | "x86-64" => ("amd64".to_string(), None),
            "aarch64" => ("arm64".to_string(), None),
            "armhf" => ("arm".to_string(), Some("v7".to_string())),
            "armel" => ("arm".to_string(), Some("v6".to_string())),
            "i386" | "i686" => ("386".to_string(), None),
            a => (a.to_string(), None),
        };
        if let Some(v) = parts.get(2) {
            variant = Some(v.to_ascii_lowercase());
        }
        Ok(PlatformSpec {
            os,
            architecture: arch,
            variant,
        })
    }
}

impl fmt::Display for PlatformSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.os, self.architecture)?;
        if let Some(v) = &self.variant {
            write!(f, "/{v}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::digest::Digest;
    use std::collections::BTreeMap;

    fn entry(os: &str, arch: &str, variant: Option<&str>) -> Descriptor {
        Descriptor {
            media_type: crate::spec::MEDIA_OCI_MANIFEST.into(),
            digest: Digest::of(format!("{os}{arch}{variant:?}").as_bytes()),
            size: 1,
            platform: Some(Platform {
                os: os.into(),
                architecture: arch.into(),
                variant: variant.map(String::from),
            }),
            annotations: BTreeMap::new(),
        }
    }

    #[test]
    fn parse_and_select() {
        let p: PlatformSpec = "linux/x86_64".parse().expect("parse");
        assert_eq!(p.to_string(), "linux/amd64");
        assert_eq!(
            "linux/arm/v6"
                .parse::<PlatformSpec>()
                .expect("parse")
                .to_string(),
            "linux/arm/v6"
        );
        assert!("linux".parse::<PlatformSpec>().is_err());
        assert!("linux//v7".parse::<PlatformSpec>().is_err());
        let idx = Index {
            schema_version: 2,
            media_type: None,
            manifests: vec![
                entry("linux", "arm", Some("v6")),
                entry("linux", "arm", Some("v7")),
                entry("linux", "arm64", None),
                entry("linux", "amd64", None),
                entry("unknown", "unknown", None),
            ],
        };
        let pick = |s: &str| {
            s.parse::<PlatformSpec>()
                .expect("parse")
                .select(&idx)
                .map(|d| d.digest.clone())
        };
        assert_eq!(pick("linux/amd64"), Some(idx.manifests[3].digest.clone()));
        assert_eq!(pick("linux/arm/v7"), Some(idx.manifests[1].digest.clone()));
        assert_eq!(
            pick("linux/arm64/v8"),
            Some(idx.manifests[2].digest.clone())
        );
        assert_eq!(pick("linux/s390x"), None);
        assert_eq!(
            PlatformSpec::available(&idx),
            ["linux/arm/v6", "linux/arm/v7", "linux/arm64", "linux/amd64"]
        );
    }
}
