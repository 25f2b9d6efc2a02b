//! The keys of one party (the hub, or one board): an Ed25519 signing key
//! and an X25519 encryption key (HPKE's DHKEM). The signing key is the
//! party's identity: its [`Fingerprint`] is what a join token names and
//! what operators compare; the encryption key travels inside messages the
//! signing key signed, so it is bound to it.

use std::fmt;

use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};
use hpke::kem::X25519HkdfSha256;
use hpke::{Deserializable, Kem, Serializable};
use sha2::{Digest, Sha256};

use crate::TrustError;
use crate::text::{b64, hex, random, unb64};

/// The KEM of every sealed frame.
pub(crate) type KemType = X25519HkdfSha256;
type EncSecret = <KemType as Kem>::PrivateKey;
pub(crate) type EncPublic = <KemType as Kem>::PublicKey;

/// SHA-256 of a party's public signing key: its identity, shown as 64 hex
/// digits (a join token carries the hub's).
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Fingerprint(pub [u8; 32]);

impl Fingerprint {
    /// Parses 64 hex digits.
    pub fn parse(text: &str) -> Result<Fingerprint, TrustError> {
        let bad = |reason: &str| TrustError::BadKey {
            what: "key fingerprint",
            reason: reason.to_string(),
        };
        if text.len() != 64 || !text.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(bad("expected 64 hex digits"));
        }
        let mut out = [0u8; 32];
        for (i, pair) in text.as_bytes().chunks(2).enumerate() {
            let s = std::str::from_utf8(pair).map_err(|_| bad("not ASCII"))?;
            out[i] = u8::from_str_radix(s, 16).map_err(|_| bad("not hex"))?;
        }
        Ok(Fingerprint(out))
    }

    /// The short id frames carry: the first 8 bytes.
    pub fn key_id(&self) -> KeyId {
        let mut id = [0u8; 8];
        id.copy_from_slice(&self.0[..8]);
        KeyId(id)
    }
}

impl fmt::Display for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex(&self.0))
    }
}

impl fmt::Debug for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Fingerprint({self})")
    }
}

/// The first 8 bytes of a [`Fingerprint`]: which key signed a frame, so a
/// receiver can name the wrong one in its refusal.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub struct KeyId(pub [u8; 8]);

impl fmt::Display for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex(&self.0))
    }
}

/// The public halves of a party's keys.
#[derive(Clone, PartialEq, Eq)]
pub struct PublicKeys {
    signing: VerifyingKey,
    encryption: EncPublic,
    fingerprint: Fingerprint,
}

impl fmt::Debug for PublicKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PublicKeys")
            .field("fingerprint", &self.fingerprint.to_string())
            .finish()
    }
}

impl PublicKeys {
    fn new(signing: VerifyingKey, encryption: EncPublic) -> PublicKeys {
        let fingerprint = Fingerprint(Sha256::digest(signing.as_bytes()).into());
        PublicKeys {
            signing,
            encryption,
            fingerprint,
        }
    }

    /// From their text forms (unpadded base64url of 32 bytes each). Weak
    /// (small-order) signing keys are refused.
    pub fn from_text(signing: &str, encryption: &str) -> Result<PublicKeys, TrustError> {
        let sk = unb64::<32>(signing).map_err(|reason| TrustError::BadKey {
            what: "signing key",
            reason,
        })?;
        let signing = VerifyingKey::from_bytes(&sk).map_err(|e| TrustError::BadKey {
            what: "signing key",
            reason: e.to_string(),
        })?;
        if signing.is_weak() {
            return Err(TrustError::BadKey {
                what: "signing key",
                reason: "a weak (small-order) key".into(),
            });
        }
        let ek = unb64::<32>(encryption).map_err(|reason| TrustError::BadKey {
            what: "encryption key",
            reason,
        })?;
        let encryption = EncPublic::from_bytes(&ek).map_err(|e| TrustError::BadKey {
            what: "encryption key",
            reason: e.to_string(),
        })?;
        Ok(PublicKeys::new(signing, encryption))
    }

    /// The signing key's text form.
    pub fn signing_text(&self) -> String {
        b64(self.signing.as_bytes())
    }

    /// The encryption key's text form.
    pub fn encryption_text(&self) -> String {
        b64(&self.encryption.to_bytes())
    }

    /// SHA-256 of the signing key.
    pub fn fingerprint(&self) -> Fingerprint {
        self.fingerprint
    }

    /// The id frames carry.
    pub fn key_id(&self) -> KeyId {
        self.fingerprint.key_id()
    }

    /// Whether `signature` is this party's over `message` (strict Ed25519:
    /// no malleable or non-canonical signatures).
    pub fn verify(&self, message: &[u8], signature: &[u8; 64]) -> bool {
        let sig = Signature::from_bytes(signature);
        self.signing.verify_strict(message, &sig).is_ok()
    }

    pub(crate) fn encryption(&self) -> &EncPublic {
        &self.encryption
    }
}

/// A party's private keys (and their public halves). Never printed.
#[derive(Clone)]
pub struct SecretKeys {
    signing: SigningKey,
    encryption: EncSecret,
    public: PublicKeys,
}

impl fmt::Debug for SecretKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SecretKeys")
            .field("fingerprint", &self.public.fingerprint.to_string())
            .finish_non_exhaustive()
    }
}

impl SecretKeys {
    /// New random keys.
    pub fn generate() -> Result<SecretKeys, TrustError> {
        let seed = random::<32>()?;
        let ikm = random::<32>()?;
        let (encryption, _) = KemType::derive_keypair(&ikm);
        Ok(SecretKeys::from_parts(
            SigningKey::from_bytes(&seed),
            encryption,
        ))
    }

    fn from_parts(signing: SigningKey, encryption: EncSecret) -> SecretKeys {
        let public = PublicKeys::new(signing.verifying_key(), KemType::sk_to_pk(&encryption));
        SecretKeys {
            signing,
            encryption,
            public,
        }
    }

    /// From the text forms [`SecretKeys::signing_text`] and
    /// [`SecretKeys::encryption_text`] gave.
    pub fn from_text(signing: &str, encryption: &str) -> Result<SecretKeys, TrustError> {
        let seed = unb64::<32>(signing).map_err(|reason| TrustError::BadKey {
            what: "private signing key",
            reason,
        })?;
        let ek = unb64::<32>(encryption).map_err(|reason| TrustError::BadKey {
            what: "private encryption key",
            reason,
        })?;
        let encryption = EncSecret::from_bytes(&ek).map_err(|e| TrustError::BadKey {
            what: "private encryption key",
            reason: e.to_string(),
        })?;
        Ok(SecretKeys::from_parts(
            SigningKey::from_bytes(&seed),
            encryption,
        ))
    }

    /// The private signing key's text form (for a 0600 key file only).
    pub fn signing_text(&self) -> String {
        b64(self.signing.as_bytes())
    }

    /// The private encryption key's text form (for a 0600 key file only).
    pub fn encryption_text(&self) -> String {
        b64(&self.encryption.to_bytes())
    }

    /// The public halves.
    pub fn public(&self) -> &PublicKeys {
        &self.public
    }

    /// An Ed25519 signature over `message`.
    pub fn sign(&self, message: &[u8]) -> [u8; 64] {
        self.signing.sign(message).to_bytes()
    }

    pub(crate) fn decryption(&self) -> &EncSecret {
        &self.encryption
    }

    /// The X25519 secret this party shares with `peer` (static-static: both
    /// sides compute the same from their private and the other's public
    /// encryption key); `None` for a low-order peer key.
    pub(crate) fn shared_with(&self, peer: &PublicKeys) -> Option<[u8; 32]> {
        let own = x25519_dalek::StaticSecret::from(<[u8; 32]>::from(self.encryption.to_bytes()));
        let theirs = x25519_dalek::PublicKey::from(<[u8; 32]>::from(peer.encryption.to_bytes()));
        let shared = own.diffie_hellman(&theirs);
        shared.was_contributory().then(|| shared.to_bytes())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_round_trip_through_text_and_sign() {
        let k = SecretKeys::generate().unwrap();
        let back = SecretKeys::from_text(&k.signing_text(), &k.encryption_text()).unwrap();
        assert_eq!(back.public(), k.public());
        let p = PublicKeys::from_text(&k.public().signing_text(), &k.public().encryption_text())
            .unwrap();
        assert_eq!(&p, k.public());
        let sig = k.sign(b"hello");
        assert!(p.verify(b"hello", &sig));
        assert!(!p.verify(b"hellO", &sig));
        let other = SecretKeys::generate().unwrap();
        assert!(!other.public().verify(b"hello", &sig));
        assert_ne!(other.public().fingerprint(), p.fingerprint());
        // Secrets never show in Debug output.
        let dbg = format!("{k:?}");
        assert!(!dbg.contains(&k.signing_text()) && !dbg.contains(&k.encryption_text()));
    }

    #[test]
    fn fingerprints_parse_and_bad_keys_are_named() {
        let k = SecretKeys::generate().unwrap();
        let f = k.public().fingerprint();
        assert_eq!(Fingerprint::parse(&f.to_string()).unwrap(), f);
        assert_eq!(f.key_id().to_string(), f.to_string()[..16]);
        assert!(Fingerprint::parse("abc").is_err());
        assert!(Fingerprint::parse(&"g".repeat(64)).is_err());
        let e = PublicKeys::from_text("short", &k.public().encryption_text()).unwrap_err();
        assert!(e.to_string().starts_with("signing key"), "{e}");
        // The identity point is a weak key.
        let mut ident = [0u8; 32];
        ident[0] = 1;
        let e = PublicKeys::from_text(&b64(&ident), &k.public().encryption_text()).unwrap_err();
        assert!(e.to_string().contains("weak"), "{e}");
    }
}
