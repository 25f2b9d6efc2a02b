//! The hub's key vouches for its TLS certificate authority. The hub signs
//! its CA certificate (DER) with its signing key, with a domain prefix so
//! the signature means nothing else. A board pins the hub's key from its
//! join token; the hub's signature then makes it trust exactly this CA for
//! HTTPS and MQTT over TLS, with no file to copy. [`CaHash`] names a CA in
//! messages and in the CLI's config (`sha256:<hex>` of the DER, as k3s'
//! token hash).

use std::fmt;

use sha2::{Digest, Sha256};

use crate::keys::{PublicKeys, SecretKeys};
use crate::text::hex;

const DOMAIN: &[u8] = b"bramble/v2 tls ca\0";

fn message(ca_der: &[u8]) -> Vec<u8> {
    [DOMAIN, ca_der].concat()
}

/// The hub's signature over its CA certificate.
pub fn endorse(hub: &SecretKeys, ca_der: &[u8]) -> [u8; 64] {
    hub.sign(&message(ca_der))
}

/// Whether `signature` is `hub`'s endorsement of `ca_der`.
pub fn verify(hub: &PublicKeys, ca_der: &[u8], signature: &[u8; 64]) -> bool {
    hub.verify(&message(ca_der), signature)
}

/// SHA-256 of a CA certificate's DER.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct CaHash(pub [u8; 32]);

impl CaHash {
    pub fn of(der: &[u8]) -> CaHash {
        CaHash(Sha256::digest(der).into())
    }
}

impl fmt::Display for CaHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "sha256:{}", hex(&self.0))
    }
}

impl fmt::Debug for CaHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_endorsement_names_one_ca_and_one_key() {
        let hub = SecretKeys::generate().unwrap();
        let sig = endorse(&hub, b"ca one");
        assert!(verify(hub.public(), b"ca one", &sig));
        assert!(!verify(hub.public(), b"ca two", &sig));
        assert!(!verify(
            SecretKeys::generate().unwrap().public(),
            b"ca one",
            &sig
        ));
        // A challenge proof over the same bytes is no endorsement.
        assert!(!verify(
            hub.public(),
            b"ca one",
            &crate::challenge::prove(&hub, b"ca one")
        ));
    }

    #[test]
    fn a_hash_reads_like_k3s() {
        let h = CaHash::of(b"x").to_string();
        assert!(h.starts_with("sha256:2d711642b726b044"), "{h}");
        assert_eq!(h.len(), 7 + 64);
    }
}
