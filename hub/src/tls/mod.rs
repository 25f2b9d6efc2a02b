//! The cluster's certificate authority and the hub's serving certificate:
//! HTTPS on the API and registry, MQTT over TLS.
//!
//! - [`ca`]: `DATA_DIR/ca.crt` and `ca.key`, an ECDSA P-256 CA created at
//!   first start (rcgen); the hub's signing key endorses it
//!   (`bramble_trust::ca`), so boards trust it from their join token alone.
//! - [`names`]: the names the serving certificate covers (host name,
//!   `localhost`, the host's addresses, `--tls-san`).
//! - [`serving`]: the serving certificate as a rustls resolver, renewed
//!   before it expires or when the host's names change, without a restart.
//!   Handshakes in progress keep the certificate they started with.
//! - [`accept`]: the server side of a handshake, with a timeout, for the
//!   API/registry port and the MQTT port alike.

pub mod accept;
pub mod ca;
pub mod names;
pub mod serving;

use std::path::PathBuf;

pub use ca::ClusterCa;
pub use names::{ServingName, ServingNames};
pub use serving::ServingCert;

/// Why the CA or a certificate could not be made or read.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("reading {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("writing {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "{path} is not a usable {what} ({reason}); restore it from a backup, or move ca.crt and \
         ca.key away to create a new CA (every board must then rejoin)"
    )]
    BadFile {
        path: PathBuf,
        what: &'static str,
        reason: String,
    },
    #[error("{path} exists without {missing}: restore both files from a backup")]
    HalfCa { path: PathBuf, missing: PathBuf },
    #[error("making a certificate: {0}")]
    Generate(#[from] rcgen::Error),
    #[error("--tls-san {0:?}: not a DNS name or an IP address")]
    BadName(String),
    #[error("loading the serving key into rustls: {0}")]
    Rustls(#[from] rustls::Error),
}

/// The CA and the serving certificate made from it.
#[derive(Debug)]
pub struct HubTls {
    pub ca: ClusterCa,
    pub serving: std::sync::Arc<ServingCert>,
}
