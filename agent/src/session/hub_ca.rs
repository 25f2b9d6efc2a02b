//! `DATA_DIR/hub-ca.crt` (0600): the hub's TLS CA, pinned at join with no
//! file to copy, as k3s pins its CA from the token's hash. The board asks
//! the hub's `/bramble/v2/identity` over TLS without verifying (it has
//! nothing to verify with yet) and believes the answer only if the key in
//! it is the one the join token (or the earlier join) names, the key signed
//! the board's fresh challenge, and the key endorsed the CA certificate.
//! From then on the registry and MQTT over TLS trust that CA and nothing
//! else; a hub that presents another CA is refused by the TLS handshake.

use std::path::{Path, PathBuf};
use std::time::Duration;

use bramble_trust::{Fingerprint, PublicKeys};
use rustls_pki_types::CertificateDer;

use super::files::write_atomic;

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

/// Asks the hub at `url` (`https://` or `http://HOST:PORT`) to prove the key
/// `expected` and to show the CA it endorsed.
pub fn ask(url: &str, expected: Fingerprint) -> Result<Verified, String> {
    let challenge =
        bramble_trust::text::random::<32>().map_err(|e| format!("no randomness: {e}"))?;
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
        .map_err(|e| format!("asking for its key: {e}"))?
        .body_mut()
        .read_json()
        .map_err(|e| format!("reading its answer: {e}"))?;
    let text = |k: &str| answer[k].as_str().unwrap_or_default().to_string();
    let keys = PublicKeys::from_text(&text("signing"), &text("encryption"))
        .map_err(|e| format!("its answer names no valid key: {e}"))?;
    if keys.fingerprint() != expected {
        return Err(format!(
            "its key {} is not the one the join token names ({expected}): the token is from \
             another hub, or this is not your hub",
            keys.fingerprint()
        ));
    }
    let proof = bramble_trust::text::unb64::<64>(&text("proof"))
        .map_err(|e| format!("its proof is malformed: {e}"))?;
    if !bramble_trust::challenge::verify(&keys, &challenge, &proof) {
        return Err("it names the right key but cannot sign with it".into());
    }
    let ca_pem = answer["ca"].as_str().map(str::to_string);
    if let Some(pem) = &ca_pem {
        let der = bramble_trust::tls::pem_certs(pem.as_bytes())
            .map_err(|e| format!("its CA: {e}"))?
            .remove(0);
        let sig = bramble_trust::text::unb64::<64>(&text("caSignature"))
            .map_err(|e| format!("its CA endorsement is malformed: {e}"))?;
        if !bramble_trust::ca::verify(&keys, &der, &sig) {
            return Err(format!(
                "its CA {} is not endorsed by its key: refusing it",
                bramble_trust::ca::CaHash::of(&der)
            ));
        }
    } else if url.starts_with("https://") {
        return Err("it serves HTTPS but shows no CA endorsed by its key".into());
    }
    Ok(Verified { keys, ca_pem })
}

/// The pinned CA's path under `data_dir`.
pub fn path(data_dir: &Path) -> PathBuf {
    data_dir.join(HUB_CA_FILE)
}

/// The pinned CA, if the board pinned one.
pub fn load(data_dir: &Path) -> Result<Option<Vec<CertificateDer<'static>>>, String> {
    let p = path(data_dir);
    match std::fs::read(&p) {
        Ok(pem) => bramble_trust::tls::pem_certs(&pem).map(Some).map_err(|e| {
            format!(
                "{}: {e}; remove it to pin the hub's CA again at the next start",
                p.display()
            )
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(format!("reading {}: {e}", p.display())),
    }
}

/// The CA to trust for the hub at `url`: none for `http://` (a lab hub
/// with `--insecure-http`), the pinned one, else the one the hub proves
/// with the key `expected` names (then pinned).
pub fn ensure(
    data_dir: &Path,
    url: &str,
    expected: Option<Fingerprint>,
) -> Result<Option<Vec<CertificateDer<'static>>>, String> {
    if !url.starts_with("https://") {
        return Ok(None);
    }
    if let Some(cas) = load(data_dir)? {
        return Ok(Some(cas));
    }
    let Some(expected) = expected else {
        return Err(format!(
            "{url}: no CA pinned and no join token that names the hub's key: give --token"
        ));
    };
    let verified = ask(url, expected).map_err(|e| format!("the hub at {url}: {e}"))?;
    let pem = verified
        .ca_pem
        .ok_or_else(|| format!("the hub at {url} shows no CA"))?;
    write_atomic(&path(data_dir), pem.as_bytes(), 0o600).map_err(|e| e.to_string())?;
    tracing::info!(hub = url, path = %path(data_dir).display(), "hub CA pinned");
    load(data_dir)
}
