//! `DATA_DIR/hub-ca.crt` (0600): the hub's TLS CA, pinned at join with no
//! file to copy, as k3s pins its CA from the token's hash. The board asks
//! the hub's `/bramble/v2/identity` over TLS without verifying (it has
//! nothing to verify with yet) and believes the answer only if the key in
//! it is the one the join token (or the earlier join) names, the key signed
//! the board's fresh challenge, and the key endorsed the CA certificate.
//! From then on the registry and MQTT over TLS trust that CA and nothing
//! else; a hub that presents another CA is refused by the TLS handshake.
//! Why a hub's answer is not believed is a [`ProofError`]; why no CA could
//! be had, a [`HubCaError`].

use std::path::{Path, PathBuf};
use std::time::Duration;

use bramble_trust::ca::CaHash;
use bramble_trust::{Fingerprint, PublicKeys, TrustError};
use rustls_pki_types::CertificateDer;

use super::files::{WriteError, write_atomic};

/// File name of the pinned CA inside the data directory.
pub const HUB_CA_FILE: &str = "hub-ca.crt";

/// How long a hub has to answer.
const ASK_TIMEOUT: Duration = Duration::from_secs(5);

/// What a hub proved about itself.
#[derive(Debug, Clone)]
pub struct Verified {
    pub keys: PublicKeys,
    /// The CA certificate (PEM) its key endorsed; `None` from a hub that
    /// serves plain HTTP.
    pub ca_pem: Option<String>,
}

/// Why a hub's answer to [`ask`] is not believed (the hub is named by the
/// caller).
#[derive(Debug, thiserror::Error)]
pub enum ProofError {
    #[error("no randomness: {0}")]
    NoRandomness(#[source] TrustError),
    #[error("asking for its key: {0}")]
    Ask(#[source] ureq::Error),
    #[error("reading its answer: {0}")]
    ReadAnswer(#[source] ureq::Error),
    #[error("its answer names no valid key: {0}")]
    InvalidKey(#[source] TrustError),
    #[error(
        "its key {found} is not the one the join token names ({expected}): the token is from \
         another hub, or this is not your hub"
    )]
    WrongKey {
        found: Fingerprint,
        expected: Fingerprint,
    },
    /// `reason`: the base64 decoder's message.
    #[error("its proof is malformed: {reason}")]
    MalformedProof { reason: String },
    #[error("it names the right key but cannot sign with it")]
    CannotSign,
    #[error("its CA: {0}")]
    InvalidCa(#[source] TrustError),
    /// `reason`: the base64 decoder's message.
    #[error("its CA endorsement is malformed: {reason}")]
    MalformedEndorsement { reason: String },
    #[error("its CA {ca} is not endorsed by its key: refusing it")]
    NotEndorsed { ca: CaHash },
    #[error("it serves HTTPS but shows no CA endorsed by its key")]
    NoCa,
}

/// Why the hub's CA could not be had: the pinned file is unusable, or the
/// hub could not prove the CA it shows.
#[derive(Debug, thiserror::Error)]
pub enum HubCaError {
    #[error("reading {path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: {source}; remove it to pin the hub's CA again at the next start")]
    Corrupt {
        path: PathBuf,
        #[source]
        source: TrustError,
    },
    #[error("{url}: no CA pinned and no join token that names the hub's key: give --token")]
    NoToken { url: String },
    #[error("the hub at {url}: {source}")]
    Proof {
        url: String,
        #[source]
        source: ProofError,
    },
    #[error("the hub at {url} shows no CA")]
    NoCa { url: String },
    #[error(transparent)]
    Write(#[from] WriteError),
}

/// Asks the hub at `url` (`https://` or `http://HOST:PORT`) to prove the key
/// `expected` and to show the CA it endorsed.
pub fn ask(url: &str, expected: Fingerprint) -> Result<Verified, ProofError> {
    let challenge = bramble_trust::text::random::<32>().map_err(ProofError::NoRandomness)?;
    let path = format!(
        "{}/bramble/v2/identity?challenge={}",
        url.trim_end_matches('/'),
        bramble_trust::text::b64(&challenge)
    );
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .timeout_global(Some(ASK_TIMEOUT))
        .tls_config(bramble_trust::tls::ureq_unverified())
        .build()
        .into();
    let answer: serde_json::Value = agent
        .get(&path)
        .call()
        .map_err(ProofError::Ask)?
        .body_mut()
        .read_json()
        .map_err(ProofError::ReadAnswer)?;
    let text = |k: &str| answer[k].as_str().unwrap_or_default().to_string();
    let keys = PublicKeys::from_text(&text("signing"), &text("encryption"))
        .map_err(ProofError::InvalidKey)?;
    if keys.fingerprint() != expected {
        return Err(ProofError::WrongKey {
            found: keys.fingerprint(),
            expected,
        });
    }
    let proof = bramble_trust::text::unb64::<64>(&text("proof"))
        .map_err(|reason| ProofError::MalformedProof { reason })?;
    if !bramble_trust::challenge::verify(&keys, &challenge, &proof) {
        return Err(ProofError::CannotSign);
    }
    let ca_pem = answer["ca"].as_str().map(str::to_string);
    if let Some(pem) = &ca_pem {
        let der = bramble_trust::tls::pem_certs(pem.as_bytes())
            .map_err(ProofError::InvalidCa)?
            .remove(0);
        let sig = bramble_trust::text::unb64::<64>(&text("caSignature"))
            .map_err(|reason| ProofError::MalformedEndorsement { reason })?;
        if !bramble_trust::ca::verify(&keys, &der, &sig) {
            return Err(ProofError::NotEndorsed {
                ca: CaHash::of(&der),
            });
        }
    } else if url.starts_with("https://") {
        return Err(ProofError::NoCa);
    }
    Ok(Verified { keys, ca_pem })
}

/// The pinned CA's path under `data_dir`.
pub fn path(data_dir: &Path) -> PathBuf {
    data_dir.join(HUB_CA_FILE)
}

/// The pinned CA, if the board pinned one.
pub fn load(data_dir: &Path) -> Result<Option<Vec<CertificateDer<'static>>>, HubCaError> {
    let p = path(data_dir);
    match std::fs::read(&p) {
        Ok(pem) => bramble_trust::tls::pem_certs(&pem)
            .map(Some)
            .map_err(|source| HubCaError::Corrupt { path: p, source }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(HubCaError::Read { path: p, source }),
    }
}

/// The CA to trust for the hub at `url`: none for `http://` (a lab hub
/// with `--insecure-http`), the pinned one, else the one the hub proves
/// with the key `expected` names (then pinned).
pub fn ensure(
    data_dir: &Path,
    url: &str,
    expected: Option<Fingerprint>,
) -> Result<Option<Vec<CertificateDer<'static>>>, HubCaError> {
    if !url.starts_with("https://") {
        return Ok(None);
    }
    if let Some(cas) = load(data_dir)? {
        return Ok(Some(cas));
    }
    let Some(expected) = expected else {
        return Err(HubCaError::NoToken {
            url: url.to_string(),
        });
    };
    let verified = ask(url, expected).map_err(|source| HubCaError::Proof {
        url: url.to_string(),
        source,
    })?;
    let pem = verified.ca_pem.ok_or_else(|| HubCaError::NoCa {
        url: url.to_string(),
    })?;
    write_atomic(&path(data_dir), pem.as_bytes(), 0o600)?;
    tracing::info!(hub = url, path = %path(data_dir).display(), "hub CA pinned");
    load(data_dir)
}
