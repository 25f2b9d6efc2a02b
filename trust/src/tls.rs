//! TLS clients that trust exactly the cluster's CA, never the system's or
//! Mozilla's roots: rustls with *ring*, Bramble's one TLS stack. The same
//! roots serve the hub's API and registry (ureq) and MQTT over TLS
//! (rumqttc takes the [`client_config`]).

use std::sync::Arc;

use rustls::SignatureScheme;
use rustls::crypto::{
    CryptoProvider, GetRandomFailed, KeyProvider, SecureRandom, WebPkiSupportedAlgorithms,
};
use rustls::sign::SigningKey;
use rustls::{ClientConfig, RootCertStore};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

use crate::TrustError;

/// The crypto provider of the servers (the hub): rustls' ring provider,
/// every suite and algorithm (browsers and old clients reach the ingress).
pub fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// The crypto provider of Bramble's TLS clients (agent, CLI): TLS 1.3 with
/// ChaCha20-Poly1305 (fast on boards without AES instructions) or
/// AES-128-GCM, X25519 key exchange, and only the signatures the cluster
/// CA and its certificates use (ECDSA P-256, Ed25519). Nothing reaches
/// ring's RSA, P-384 or P-256 key generation (its 148 KiB table), so the
/// agent binary does not carry them (docs/operations.md, "Agent size"). A
/// client never loads a private key.
pub fn client_provider() -> Arc<CryptoProvider> {
    use rustls::crypto::ring::{cipher_suite, kx_group};
    static SIGNATURES: WebPkiSupportedAlgorithms = WebPkiSupportedAlgorithms {
        all: &[webpki::ring::ECDSA_P256_SHA256, webpki::ring::ED25519],
        mapping: &[
            (
                SignatureScheme::ECDSA_NISTP256_SHA256,
                &[webpki::ring::ECDSA_P256_SHA256],
            ),
            (SignatureScheme::ED25519, &[webpki::ring::ED25519]),
        ],
    };
    Arc::new(CryptoProvider {
        cipher_suites: vec![
            cipher_suite::TLS13_CHACHA20_POLY1305_SHA256,
            cipher_suite::TLS13_AES_128_GCM_SHA256,
        ],
        kx_groups: vec![kx_group::X25519],
        signature_verification_algorithms: SIGNATURES,
        secure_random: &OsRandom,
        key_provider: &NoKeys,
    })
}

/// The operating system's random source.
#[derive(Debug)]
struct OsRandom;

impl SecureRandom for OsRandom {
    fn fill(&self, buf: &mut [u8]) -> Result<(), GetRandomFailed> {
        getrandom::fill(buf).map_err(|_| GetRandomFailed)
    }
}

/// Clients authenticate with tokens and key logins, never a certificate.
#[derive(Debug)]
struct NoKeys;

impl KeyProvider for NoKeys {
    fn load_private_key(
        &self,
        _key: PrivateKeyDer<'static>,
    ) -> Result<Arc<dyn SigningKey>, rustls::Error> {
        Err(rustls::Error::General(
            "Bramble's TLS clients hold no private key".into(),
        ))
    }
}

/// The certificates of a PEM bundle (`ca.crt`); at least one.
pub fn pem_certs(pem: &[u8]) -> Result<Vec<CertificateDer<'static>>, TrustError> {
    let certs = CertificateDer::pem_slice_iter(pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| TrustError::Tls(format!("not a PEM certificate bundle: {e}")))?;
    if certs.is_empty() {
        return Err(TrustError::Tls(
            "no certificate in the PEM bundle (expected -----BEGIN CERTIFICATE-----)".into(),
        ));
    }
    Ok(certs)
}

/// One certificate as PEM.
pub fn to_pem(der: &[u8]) -> String {
    use base64::Engine;
    let b64 = base64::engine::general_purpose::STANDARD.encode(der);
    let mut pem = String::from("-----BEGIN CERTIFICATE-----\n");
    for line in b64.as_bytes().chunks(64) {
        pem.push_str(std::str::from_utf8(line).unwrap_or_default());
        pem.push('\n');
    }
    pem.push_str("-----END CERTIFICATE-----\n");
    pem
}

/// A rustls client that accepts only servers certified by `cas` for the
/// name it connects to.
pub fn client_config(cas: &[CertificateDer<'static>]) -> Result<Arc<ClientConfig>, TrustError> {
    let mut roots = RootCertStore::empty();
    for ca in cas {
        roots
            .add(ca.clone())
            .map_err(|e| TrustError::Tls(format!("the CA certificate is unusable: {e}")))?;
    }
    let config = ClientConfig::builder_with_provider(client_provider())
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(|e| TrustError::Tls(e.to_string()))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(config))
}

/// ureq's TLS settings trusting only `cas` (every `https://` request of a
/// Bramble client goes through one of these: ureq has no other roots).
pub fn ureq_config(cas: &[CertificateDer<'static>]) -> ureq::tls::TlsConfig {
    let roots = cas
        .iter()
        .map(|c| ureq::tls::Certificate::from_der(c.as_ref()).to_owned())
        .collect();
    ureq::tls::TlsConfig::builder()
        .provider(ureq::tls::TlsProvider::Rustls)
        .unversioned_rustls_crypto_provider(client_provider())
        .root_certs(ureq::tls::RootCerts::Specific(Arc::new(roots)))
        .build()
}

/// ureq's TLS settings that accept any server: only for reading what the
/// caller verifies by signature afterwards (the hub's identity and CA,
/// checked against the key the join token names).
pub fn ureq_unverified() -> ureq::tls::TlsConfig {
    ureq::tls::TlsConfig::builder()
        .provider(ureq::tls::TlsProvider::Rustls)
        .unversioned_rustls_crypto_provider(client_provider())
        .disable_verification(true)
        .build()
}

/// The TLS failure behind `e` (an I/O error of a client library wrapping
/// rustls' error), if there is one: found by type along the source chain.
pub fn failure<'a>(e: &'a (dyn std::error::Error + 'static)) -> Option<&'a rustls::Error> {
    let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = cur {
        if let Some(tls) = err.downcast_ref::<rustls::Error>() {
            return Some(tls);
        }
        if let Some(io) = err.downcast_ref::<std::io::Error>()
            && let Some(inner) = io.get_ref()
        {
            if let Some(tls) = inner.downcast_ref::<rustls::Error>() {
                return Some(tls);
            }
            cur = inner.source();
            continue;
        }
        cur = err.source();
    }
    None
}

/// What a failed TLS connection to the hub means for its user, with the
/// fix; `ca_source` says where the trusted CA came from.
pub fn explain(e: &rustls::Error, ca_source: &str) -> String {
    use rustls::{CertificateError, Error};
    match e {
        Error::InvalidCertificate(CertificateError::UnknownIssuer)
        | Error::InvalidCertificate(CertificateError::BadSignature) => format!(
            "the hub's certificate is not signed by the CA from {ca_source}: this is another \
             hub, or its CA was replaced (get the hub's ca.crt again, or run `bramble config` \
             on the hub)"
        ),
        Error::InvalidCertificate(CertificateError::NotValidForName)
        | Error::InvalidCertificate(CertificateError::NotValidForNameContext { .. }) => {
            "the hub's certificate does not cover the name or address used to reach it: use \
             one it covers (its host name, `localhost`, its addresses) or start the hub with \
             --tls-san NAME"
                .to_string()
        }
        Error::InvalidCertificate(CertificateError::Expired)
        | Error::InvalidCertificate(CertificateError::ExpiredContext { .. })
        | Error::InvalidCertificate(CertificateError::NotValidYet)
        | Error::InvalidCertificate(CertificateError::NotValidYetContext { .. }) => {
            "the hub's certificate is outside its validity period: check this machine's clock \
             (and the hub's)"
                .to_string()
        }
        Error::InvalidMessage(_) | Error::InappropriateMessage { .. } => {
            "the hub does not speak TLS here: a lab hub started with --insecure-http is \
             reached with http://"
                .to_string()
        }
        other => format!("TLS with the hub failed: {other}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pem_round_trip_and_clear_errors() {
        let der = b"\x30\x03\x02\x01\x01".to_vec();
        let pem = to_pem(&der);
        let back = pem_certs(pem.as_bytes()).unwrap();
        assert_eq!(back[0].as_ref(), &der[..]);
        let e = pem_certs(b"hello").unwrap_err().to_string();
        assert!(e.contains("no certificate"), "{e}");
    }

    #[test]
    fn failures_are_explained_with_their_fix() {
        use rustls::{CertificateError, Error};
        let unknown = explain(
            &Error::InvalidCertificate(CertificateError::UnknownIssuer),
            "/x/ca.crt",
        );
        assert!(
            unknown.contains("not signed by the CA from /x/ca.crt"),
            "{unknown}"
        );
        let name = explain(
            &Error::InvalidCertificate(CertificateError::NotValidForName),
            "",
        );
        assert!(name.contains("--tls-san"), "{name}");
    }

    #[test]
    fn a_wrapped_tls_failure_is_found_by_its_type() {
        let tls = rustls::Error::InvalidCertificate(rustls::CertificateError::UnknownIssuer);
        let io = std::io::Error::new(std::io::ErrorKind::InvalidData, tls.clone());
        assert_eq!(failure(&io), Some(&tls));
        let other = std::io::Error::other("nope");
        assert_eq!(failure(&other), None);
    }

    #[test]
    fn a_garbage_ca_is_refused_with_the_reason() {
        let e = client_config(&[CertificateDer::from(vec![1u8, 2, 3])])
            .unwrap_err()
            .to_string();
        assert!(e.contains("CA certificate is unusable"), "{e}");
    }
}
