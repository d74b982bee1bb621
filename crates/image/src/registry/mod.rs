//! Pull and push images over the OCI distribution API.
//!
//! * [`remote`]: `host[:port]/repository[:tag|@digest]` references (docker.io by default).
//! * [`tls`]: https by default (rustls; the host's CA bundle plus `certs.d`/`--cert-dir`),
//!   plain http only for loopback registries or with `--tls-verify=false`.
//! * [`auth`]: the `WWW-Authenticate` challenge: Basic, and Bearer tokens cached per scope.
//! * [`credentials`]: `berth login`'s store, docker's `config.json` format.
//! * [`client`]: one registry endpoint: requests with auth, manifests, blobs.
//! * [`platform`]: `os/arch[/variant]` and picking a manifest out of an index.
//! * [`transfer`]: up to [`MAX_CONCURRENT_TRANSFERS`] blobs at a time, with byte progress.
//! * [`progress`]: the typed events a pull or push reports.
//! * [`pull`] and [`push`]: the two operations, as methods of [`crate::ImageStore`].
//!
//! Every blob and manifest is verified against its digest before it gets its name in the
//! store; a failed pull leaves no blob or layer behind (the store's gc runs either way).

pub mod auth;
pub mod client;
pub mod credentials;
pub mod platform;
pub mod progress;
pub mod pull;
pub mod push;
pub mod remote;
pub mod tls;
pub mod transfer;

use std::path::PathBuf;

pub use credentials::{login, logout, Credentials};
pub use platform::PlatformSpec;
pub use progress::Progress;
pub use remote::RemoteRef;
pub use tls::TlsVerify;

/// Blobs transferred at once by a pull or push (docker's default is 3 as well).
pub const MAX_CONCURRENT_TRANSFERS: usize = 3;

/// How to reach a registry: the flags `pull`, `push` and `login` share.
#[derive(Debug, Clone, Default)]
pub struct RegistryOptions {
    /// `--tls-verify`: unset means verify, except that loopback registries may be plain http.
    pub tls_verify: TlsVerify,
    /// `--cert-dir`: `*.crt` CA certificates and `*.cert`/`*.key` client pairs. Unset:
    /// `/etc/containers/certs.d/<host>` and `/etc/docker/certs.d/<host>`, if present.
    pub cert_dir: Option<PathBuf>,
    /// `--creds`; unset: what `berth login` stored for the registry, if anything.
    pub credentials: Option<Credentials>,
    /// `--platform` for pulls; unset: this host's.
    pub platform: Option<PlatformSpec>,
}
