//! `DATA_DIR/ca.crt` and `DATA_DIR/ca.key`: the cluster's certificate
//! authority, ECDSA P-256 (what every TLS client, browsers included,
//! verifies), made by rcgen at first start and valid for ten years. Both
//! files are 0600. It signs the hub's serving certificates
//! ([`ClusterCa::issue`]); clients trust it from `ca.crt`, from the
//! kubeconfig, or (boards) from the hub key's endorsement.
//!
//! Validity starts at [`VALID_FROM`], not at creation: boards without a
//! real-time clock boot with a clock in the past until NTP (if any) sets it,
//! and a certificate "not yet valid" would keep them out of their own
//! cluster. The start of validity protects nothing here; the end does.

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::time::{Duration, SystemTime};

use bramble_trust::ca::CaHash;
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose, PKCS_ECDSA_P256_SHA256, SanType,
};
use rustls::sign::CertifiedKey;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use sha2::{Digest, Sha256};

use super::{ServingName, ServingNames, TlsError};

/// File name of the CA certificate inside the data directory.
pub const CA_CERT_FILE: &str = "ca.crt";
/// File name of the CA's private key inside the data directory.
pub const CA_KEY_FILE: &str = "ca.key";
/// How long the CA is valid.
pub const CA_LIFETIME: Duration = Duration::from_secs(10 * 365 * 24 * 3600);
/// Start of every certificate's validity: 2024-01-01T00:00:00Z.
pub const VALID_FROM: Duration = Duration::from_secs(1_704_067_200);

/// The CA: its key signs, its certificate is what clients trust.
pub struct ClusterCa {
    key: KeyPair,
    name: String,
    cert_der: CertificateDer<'static>,
    cert_pem: String,
}

impl std::fmt::Debug for ClusterCa {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClusterCa")
            .field("name", &self.name)
            .field("hash", &self.hash())
            .finish_non_exhaustive()
    }
}

/// A serving certificate just issued.
pub struct Issued {
    /// The leaf, then the CA (clients that pin the CA find it in the chain).
    pub key: std::sync::Arc<CertifiedKey>,
    pub names: ServingNames,
    pub not_before: SystemTime,
    pub not_after: SystemTime,
}

/// The CA's subject: unique per CA (from its key), so a client that trusts
/// several Bramble clusters tells them apart.
fn ca_name(key: &KeyPair) -> String {
    let h = Sha256::digest(key.public_key_raw());
    format!("bramble-ca-{}", bramble_trust::text::hex(&h[..6]))
}

fn ca_params(name: &str, now: SystemTime) -> CertificateParams {
    let mut p = CertificateParams::default();
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, name);
    dn.push(DnType::OrganizationName, "Bramble");
    p.distinguished_name = dn;
    p.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    p.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    p.not_before = (SystemTime::UNIX_EPOCH + VALID_FROM).into();
    p.not_after = (now + CA_LIFETIME).into();
    p
}

fn write_private(path: &Path, bytes: &[u8]) -> Result<(), TlsError> {
    let write = || -> std::io::Result<()> {
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(path)?;
        f.write_all(bytes)?;
        f.sync_all()
    };
    write().map_err(|source| TlsError::Write {
        path: path.to_path_buf(),
        source,
    })
}

fn read_optional(path: &Path) -> Result<Option<String>, TlsError> {
    match std::fs::read_to_string(path) {
        Ok(t) => Ok(Some(t)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(TlsError::Read {
            path: path.to_path_buf(),
            source,
        }),
    }
}

impl ClusterCa {
    /// Reads the CA from `data_dir`, creating it if neither file exists. A
    /// key without its certificate gets a new certificate for the same key
    /// (clients that trust the old one trust the new one: same name, same
    /// key); a certificate without its key is an error.
    pub fn load_or_create(data_dir: &Path) -> Result<ClusterCa, TlsError> {
        let key_path = data_dir.join(CA_KEY_FILE);
        let cert_path = data_dir.join(CA_CERT_FILE);
        let key_pem = read_optional(&key_path)?;
        let cert_pem = read_optional(&cert_path)?;
        let key = match key_pem {
            Some(pem) => KeyPair::from_pem(&pem).map_err(|e| TlsError::BadFile {
                path: key_path.clone(),
                what: "CA key",
                reason: e.to_string(),
            })?,
            None if cert_pem.is_some() => {
                return Err(TlsError::HalfCa {
                    path: cert_path,
                    missing: key_path,
                });
            }
            None => {
                let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256)?;
                write_private(&key_path, key.serialize_pem().as_bytes())?;
                key
            }
        };
        let name = ca_name(&key);
        let (cert_der, cert_pem) = match cert_pem {
            Some(pem) => {
                let der = bramble_trust::tls::pem_certs(pem.as_bytes())
                    .map_err(|e| TlsError::BadFile {
                        path: cert_path.clone(),
                        what: "CA certificate",
                        reason: e.to_string(),
                    })?
                    .remove(0);
                check_matches(&der, &key, &cert_path)?;
                (der, pem)
            }
            None => {
                let cert = ca_params(&name, SystemTime::now()).self_signed(&key)?;
                write_private(&cert_path, cert.pem().as_bytes())?;
                tracing::info!(path = %cert_path.display(), hash = %CaHash::of(cert.der()), "cluster CA created");
                (cert.der().clone(), cert.pem())
            }
        };
        Ok(ClusterCa {
            key,
            name,
            cert_der,
            cert_pem,
        })
    }

    /// The CA certificate (DER).
    pub fn der(&self) -> &CertificateDer<'static> {
        &self.cert_der
    }

    /// The CA certificate (PEM), as `ca.crt` holds it.
    pub fn pem(&self) -> &str {
        &self.cert_pem
    }

    /// `sha256:<hex>` of the CA certificate.
    pub fn hash(&self) -> CaHash {
        CaHash::of(&self.cert_der)
    }

    /// A new serving certificate (fresh P-256 key) for `names`, valid until
    /// `now + lifetime`.
    pub fn issue(
        &self,
        names: &ServingNames,
        now: SystemTime,
        lifetime: Duration,
    ) -> Result<Issued, TlsError> {
        let leaf = self.sign_leaf(names, now, lifetime)?;
        let der = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(leaf.key.serialize_der()));
        let signer = bramble_trust::tls::provider()
            .key_provider
            .load_private_key(der)?;
        let key = CertifiedKey::new(vec![leaf.cert.der().clone(), self.cert_der.clone()], signer);
        Ok(Issued {
            key: std::sync::Arc::new(key),
            names: names.clone(),
            not_before: leaf.not_before,
            not_after: leaf.not_after,
        })
    }

    /// A serving certificate for another server (an external MQTT broker),
    /// as PEM: the leaf followed by the CA, and its private key (PKCS #8).
    pub fn issue_pem(
        &self,
        names: &ServingNames,
        now: SystemTime,
        lifetime: Duration,
    ) -> Result<(String, String), TlsError> {
        let leaf = self.sign_leaf(names, now, lifetime)?;
        Ok((
            format!("{}{}", leaf.cert.pem(), self.pem()),
            leaf.key.serialize_pem(),
        ))
    }

    fn sign_leaf(
        &self,
        names: &ServingNames,
        now: SystemTime,
        lifetime: Duration,
    ) -> Result<Leaf, TlsError> {
        let issuer = Issuer::new(ca_params(&self.name, now), &self.key);
        let mut p = CertificateParams::default();
        let mut dn = DistinguishedName::new();
        dn.push(DnType::CommonName, "bramble-hub");
        dn.push(DnType::OrganizationName, "Bramble");
        p.distinguished_name = dn;
        p.subject_alt_names = names
            .iter()
            .map(|n| match n {
                ServingName::Ip(ip) => Ok(SanType::IpAddress(*ip)),
                ServingName::Dns(d) => Ok(SanType::DnsName(d.as_str().try_into()?)),
            })
            .collect::<Result<_, rcgen::Error>>()?;
        p.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        p.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        p.use_authority_key_identifier_extension = true;
        let not_before = SystemTime::UNIX_EPOCH + VALID_FROM;
        let not_after = now + lifetime;
        p.not_before = not_before.into();
        p.not_after = not_after.into();
        let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256)?;
        let cert = p.signed_by(&key, &issuer)?;
        Ok(Leaf {
            cert,
            key,
            not_before,
            not_after,
        })
    }
}

/// A signed leaf certificate and its key.
struct Leaf {
    cert: rcgen::Certificate,
    key: KeyPair,
    not_before: SystemTime,
    not_after: SystemTime,
}

/// The certificate's public key must be the key's (a mixed-up pair would
/// issue certificates no client accepts).
fn check_matches(der: &CertificateDer<'_>, key: &KeyPair, path: &Path) -> Result<(), TlsError> {
    let cert = webpki::EndEntityCert::try_from(der).map_err(|e| TlsError::BadFile {
        path: path.to_path_buf(),
        what: "CA certificate",
        reason: format!("{e:?}"),
    })?;
    let spki = cert.subject_public_key_info();
    if !spki.as_ref().ends_with(key.public_key_raw()) {
        return Err(TlsError::BadFile {
            path: path.to_path_buf(),
            what: "CA certificate",
            reason: format!("its key is not the one in {CA_KEY_FILE}"),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn created_once_private_then_reused() {
        let dir = tempfile::tempdir().unwrap();
        let a = ClusterCa::load_or_create(dir.path()).unwrap();
        for f in [CA_CERT_FILE, CA_KEY_FILE] {
            let mode = std::fs::metadata(dir.path().join(f))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600, "{f}");
        }
        let b = ClusterCa::load_or_create(dir.path()).unwrap();
        assert_eq!(a.hash(), b.hash());
        assert!(a.name.starts_with("bramble-ca-"));
    }

    #[test]
    fn a_lost_certificate_is_remade_for_the_same_key_a_lost_key_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let a = ClusterCa::load_or_create(dir.path()).unwrap();
        std::fs::remove_file(dir.path().join(CA_CERT_FILE)).unwrap();
        let b = ClusterCa::load_or_create(dir.path()).unwrap();
        assert_eq!(a.name, b.name);
        std::fs::remove_file(dir.path().join(CA_KEY_FILE)).unwrap();
        let e = ClusterCa::load_or_create(dir.path())
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("exists without") && e.contains(CA_KEY_FILE),
            "{e}"
        );
    }

    #[test]
    fn a_certificate_of_another_key_is_refused() {
        let one = tempfile::tempdir().unwrap();
        let two = tempfile::tempdir().unwrap();
        ClusterCa::load_or_create(one.path()).unwrap();
        ClusterCa::load_or_create(two.path()).unwrap();
        std::fs::copy(one.path().join(CA_CERT_FILE), two.path().join(CA_CERT_FILE)).unwrap();
        let e = ClusterCa::load_or_create(two.path())
            .unwrap_err()
            .to_string();
        assert!(e.contains("not the one in ca.key"), "{e}");
    }

    #[test]
    fn issued_certificates_verify_against_the_ca_for_their_names_only() {
        let dir = tempfile::tempdir().unwrap();
        let ca = ClusterCa::load_or_create(dir.path()).unwrap();
        let names = super::super::names::plan("gw", &["10.1.2.3".parse().unwrap()], &[]);
        let now = SystemTime::now();
        let issued = ca.issue(&names, now, Duration::from_secs(3600)).unwrap();
        assert_eq!(issued.key.cert.len(), 2, "leaf and CA");
        let anchor = webpki::anchor_from_trusted_cert(ca.der()).unwrap();
        let leaf = webpki::EndEntityCert::try_from(&issued.key.cert[0]).unwrap();
        let at = rustls_pki_types::UnixTime::since_unix_epoch(
            now.duration_since(SystemTime::UNIX_EPOCH).unwrap(),
        );
        let algs = bramble_trust::tls::provider().signature_verification_algorithms;
        leaf.verify_for_usage(
            algs.all,
            std::slice::from_ref(&anchor),
            &[],
            at,
            webpki::KeyUsage::server_auth(),
            None,
            None,
        )
        .unwrap();
        let name = |n: &str| rustls_pki_types::ServerName::try_from(n.to_string()).unwrap();
        leaf.verify_is_valid_for_subject_name(&name("gw.local"))
            .unwrap();
        leaf.verify_is_valid_for_subject_name(&name("10.1.2.3"))
            .unwrap();
        assert!(
            leaf.verify_is_valid_for_subject_name(&name("evil.example"))
                .is_err()
        );
        // Expired an hour and a second later.
        let late = rustls_pki_types::UnixTime::since_unix_epoch(
            (now + Duration::from_secs(3601))
                .duration_since(SystemTime::UNIX_EPOCH)
                .unwrap(),
        );
        assert!(
            leaf.verify_for_usage(
                algs.all,
                &[anchor],
                &[],
                late,
                webpki::KeyUsage::server_auth(),
                None,
                None
            )
            .is_err()
        );
    }
}
