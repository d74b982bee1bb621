//! Registry references: `[host[:port]/]repository[:tag|@digest]`, docker's defaults.

use std::net::IpAddr;

use crate::digest::Digest;
use crate::error::{Error, Result};
use crate::reference;

/// The registry a reference without a host names, as docker and podman do.
pub const DEFAULT_REGISTRY: &str = "docker.io";
/// Where [`DEFAULT_REGISTRY`]'s API lives.
const DEFAULT_REGISTRY_API: &str = "registry-1.docker.io";

/// `host[:port]/repository` plus a tag or digest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteRef {
    /// As written (or [`DEFAULT_REGISTRY`]): the key of stored credentials.
    pub host: String,
    pub repository: String,
    /// A tag, or a digest (`sha256:...`).
    pub reference: String,
}

impl RemoteRef {
    /// Parse a reference; a first component without `.` or `:` (and not `localhost`) is
    /// a repository on docker.io (`busybox` = `docker.io/library/busybox:latest`).
    pub fn parse(r: &str) -> Result<RemoteRef> {
        let bad = || Error::InvalidReference(r.to_string());
        let (name, reference) = match r.split_once('@') {
            Some((n, d)) => {
                let d: Digest = d.parse()?;
                reference::normalize_tag(n)?;
                (n.to_string(), d.to_string())
            }
            None => {
                let full = reference::normalize_tag(r)?;
                let (n, t) = reference::split_tag(&full);
                (n.to_string(), t.to_string())
            }
        };
        let (host, repository) = match name.split_once('/') {
            Some((first, rest))
                if first.contains('.') || first.contains(':') || first == "localhost" =>
            {
                (first.to_string(), rest.to_string())
            }
            _ => (DEFAULT_REGISTRY.to_string(), name.clone()),
        };
        if repository.is_empty() || repository.bytes().any(|b| b.is_ascii_uppercase()) {
            return Err(bad());
        }
        let repository = if host == DEFAULT_REGISTRY && !repository.contains('/') {
            format!("library/{repository}")
        } else {
            repository
        };
        Ok(RemoteRef {
            host,
            repository,
            reference,
        })
    }

    /// The same repository at another tag or digest.
    pub fn with_reference(&self, reference: &str) -> RemoteRef {
        RemoteRef {
            reference: reference.to_string(),
            ..self.clone()
        }
    }

    /// `host:port` the API is served on.
    pub fn api_host(&self) -> &str {
        if self.host == DEFAULT_REGISTRY {
            DEFAULT_REGISTRY_API
        } else {
            &self.host
        }
    }

    /// The host without its port (and without IPv6 brackets).
    pub fn hostname(&self) -> &str {
        let h = match self.host.rsplit_once(':') {
            Some((h, p)) if p.bytes().all(|b| b.is_ascii_digit()) && !h.ends_with(':') => h,
            _ => self.host.as_str(),
        };
        h.trim_start_matches('[').trim_end_matches(']')
    }

    /// `localhost`, 127.0.0.0/8 or ::1: docker lets these speak plain http unasked.
    pub fn is_loopback(&self) -> bool {
        let h = self.hostname();
        h == "localhost" || h.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
    }

    /// The digest, when the reference is one.
    pub fn digest(&self) -> Option<Digest> {
        self.reference.parse().ok()
    }

    /// `host/repository:tag` as the store names the image (none for a digest reference).
    pub fn tag_name(&self) -> Option<String> {
        match self.digest() {
            Some(_) => None,
            None => Some(format!(
                "{}/{}:{}",
                self.host, self.repository, self.reference
            )),
        }
    }
}

impl std::fmt::Display for RemoteRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let sep = if self.digest().is_some() { '@' } else { ':' };
        write!(
            f,
            "{}/{}{sep}{}",
            self.host, self.repository, self.reference
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remote_refs() {
        let r = RemoteRef::parse("127.0.0.1:5000/a/b:1").expect("parse");
        assert_eq!(
            (r.host.as_str(), r.repository.as_str(), r.reference.as_str()),
            ("127.0.0.1:5000", "a/b", "1")
        );
        assert!(r.is_loopback());
        assert_eq!(r.to_string(), "127.0.0.1:5000/a/b:1");
        let r = RemoteRef::parse("localhost/x").expect("parse");
        assert_eq!(r.reference, "latest");
        assert!(r.is_loopback());
        let r = RemoteRef::parse("busybox").expect("parse");
        assert_eq!(r.to_string(), "docker.io/library/busybox:latest");
        assert_eq!(r.api_host(), "registry-1.docker.io");
        assert!(!r.is_loopback());
        let r = RemoteRef::parse("user/app:2").expect("parse");
        assert_eq!(r.repository, "user/app");
        assert!(!RemoteRef::parse("example.com/x")
            .expect("parse")
            .is_loopback());
        assert!(RemoteRef::parse("127.0.0.1:5000/Upper").is_err());
        let d = Digest::of(b"x");
        let r = RemoteRef::parse(&format!("h.io/x@{d}")).expect("parse");
        assert_eq!(r.digest(), Some(d));
        assert_eq!(r.tag_name(), None);
    }
}
