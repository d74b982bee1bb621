//! TLS settings of a registry connection: trusted CAs, client certificates, and when plain
//! http is allowed.
//!
//! As podman: `--tls-verify=false` allows plain http and unverified https for the registry
//! named. As docker: a loopback registry (localhost, 127.0.0.0/8, ::1) may answer over plain
//! http without the flag; https to it is still verified when it speaks https.

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use ureq::tls::{Certificate, ClientCert, PemItem, PrivateKey, RootCerts, TlsConfig};
use ureq::Agent;

use crate::error::{Error, Result};

/// `--tls-verify`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum TlsVerify {
    /// Not given: verify; plain http only for loopback registries.
    #[default]
    Default,
    /// `--tls-verify=true`: https, verified, even for loopback registries.
    Required,
    /// `--tls-verify=false`: unverified https, or plain http.
    Disabled,
}

impl TlsVerify {
    /// From the flag's value, if it was given.
    pub fn from_flag(flag: Option<bool>) -> TlsVerify {
        match flag {
            None => TlsVerify::Default,
            Some(true) => TlsVerify::Required,
            Some(false) => TlsVerify::Disabled,
        }
    }
}

/// Host CA bundles, first found wins (Debian, Fedora, Alpine/others).
const SYSTEM_CA_BUNDLES: &[&str] = &[
    "/etc/ssl/certs/ca-certificates.crt",
    "/etc/pki/tls/certs/ca-bundle.crt",
    "/etc/ssl/cert.pem",
];

/// Per-registry certificate directories docker and podman read.
const CERTS_D: &[&str] = &["/etc/containers/certs.d", "/etc/docker/certs.d"];

/// An HTTP agent for one registry.
pub(crate) fn agent(host: &str, verify: TlsVerify, cert_dir: Option<&Path>) -> Result<Agent> {
    let dirs: Vec<PathBuf> = match cert_dir {
        Some(d) => {
            if !d.is_dir() {
                return Err(Error::Registry {
                    reference: host.to_string(),
                    reason: format!("--cert-dir {}: not a directory", d.display()),
                });
            }
            vec![d.to_path_buf()]
        }
        None => CERTS_D
            .iter()
            .map(|d| Path::new(d).join(host))
            .filter(|d| d.is_dir())
            .collect(),
    };
    let mut extra_cas = Vec::new();
    let mut client = None;
    for d in &dirs {
        let (cas, c) = read_cert_dir(host, d)?;
        extra_cas.extend(cas);
        client = client.or(c);
    }
    let roots = match system_cas() {
        Some(mut cas) => {
            cas.extend(extra_cas);
            RootCerts::Specific(Arc::new(cas))
        }
        None if extra_cas.is_empty() => RootCerts::WebPki,
        // No host bundle: the CAs given, plus Mozilla's list would be ideal, but ureq takes
        // one or the other; the registry's own CA is what matters here.
        None => RootCerts::Specific(Arc::new(extra_cas)),
    };
    let tls = TlsConfig::builder()
        .root_certs(roots)
        .client_cert(client)
        .disable_verification(verify == TlsVerify::Disabled)
        .build();
    Ok(Agent::config_builder()
        .http_status_as_error(false)
        .tls_config(tls)
        .user_agent(concat!("berth/", env!("CARGO_PKG_VERSION")))
        .timeout_connect(Some(Duration::from_secs(30)))
        // A stalled transfer fails instead of hanging; a slow one may take as long as it takes.
        .timeout_per_read(Some(Duration::from_secs(120)))
        .timeout_per_write(Some(Duration::from_secs(120)))
        .build()
        .into())
}

fn system_cas() -> Option<Vec<Certificate<'static>>> {
    SYSTEM_CA_BUNDLES.iter().find_map(|p| {
        let pem = fs::read(p).ok()?;
        let certs: Vec<_> = ureq::tls::parse_pem(&pem)
            .filter_map(|i| match i {
                Ok(PemItem::Certificate(c)) => Some(c),
                _ => None,
            })
            .collect();
        (!certs.is_empty()).then_some(certs)
    })
}

/// `*.crt`: CA certificates; `X.cert` + `X.key`: a client certificate and its key (the
/// layout of docker's and podman's `certs.d/<host>/`).
fn read_cert_dir(
    host: &str,
    dir: &Path,
) -> Result<(Vec<Certificate<'static>>, Option<ClientCert>)> {
    let err = |p: &Path, reason: String| Error::Registry {
        reference: host.to_string(),
        reason: format!("{}: {reason}", p.display()),
    };
    let mut entries: Vec<PathBuf> = fs::read_dir(dir)
        .map_err(|e| err(dir, e.to_string()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .collect();
    entries.sort();
    let mut cas = Vec::new();
    let mut client = None;
    for p in &entries {
        let ext = p.extension().and_then(|e| e.to_str()).unwrap_or("");
        if ext != "crt" && ext != "cert" {
            continue;
        }
        let pem = fs::read(p).map_err(|e| err(p, e.to_string()))?;
        let certs: Vec<_> = ureq::tls::parse_pem(&pem)
            .filter_map(|i| match i {
                Ok(PemItem::Certificate(c)) => Some(c),
                _ => None,
            })
            .collect();
        if certs.is_empty() {
            return Err(err(p, "no PEM certificate in it".into()));
        }
        if ext == "crt" {
            cas.extend(certs);
            continue;
        }
        let key_path = p.with_extension("key");
        let key_pem = fs::read(&key_path)
            .map_err(|e| err(&key_path, format!("the key of {}: {e}", p.display())))?;
        let key = PrivateKey::from_pem(&key_pem).map_err(|e| err(&key_path, e.to_string()))?;
        client.get_or_insert(ClientCert::new_with_certs(&certs, key));
    }
    Ok((cas, client))
}
