//! The frame every MQTT payload travels in (protocol 2):
//!
//! ```text
//! "BRM" | version 2 | flags | signer key id (8) | body | Ed25519 signature (64)
//! ```
//!
//! - `flags` bit 0 (`SEALED`): the body is `HPKE enc (32) | ciphertext`,
//!   sealed to the receiver's encryption key (base mode, X25519-HKDF-SHA256,
//!   HKDF-SHA256, ChaCha20-Poly1305) with `info` = domain ‖ topic and `aad`
//!   = the 13 header bytes. Otherwise the body is the message in clear.
//! - The signature is the sender's over domain ‖ topic length ‖ topic ‖
//!   every byte before it: a frame copied to another topic, or altered in
//!   any byte, does not verify. Encrypt-then-sign: a receiver checks the
//!   signature (cheap, and refuses forgeries before any decryption), then
//!   opens the seal.
//!
//! Replays are the protocol's to refuse: the messages carry generations,
//! sessions and sequence numbers inside what is signed.

use hpke::aead::ChaCha20Poly1305;
use hpke::kdf::HkdfSha256;
use hpke::{Deserializable, Kem, OpModeR, OpModeS, Serializable};

use crate::TrustError;
use crate::keys::{KemType, KeyId, PublicKeys, SecretKeys};

/// The frame's first bytes.
pub const MAGIC: &[u8; 3] = b"BRM";
/// The frame version, equal to the wire protocol's major version.
pub const VERSION: u8 = 2;
const FLAG_SEALED: u8 = 1;
/// Magic, version, flags, key id.
const HEADER: usize = 13;
const ENCAPPED: usize = 32;
const TAG: usize = 16;
const SIGNATURE: usize = 64;
/// Bytes a frame adds to a message in clear.
pub const OVERHEAD: usize = HEADER + SIGNATURE;
/// Bytes a frame adds to a sealed message.
pub const SEALED_OVERHEAD: usize = HEADER + ENCAPPED + TAG + SIGNATURE;
const SIGN_DOMAIN: &[u8] = b"bramble/v2 frame\0";
const SEAL_DOMAIN: &[u8] = b"bramble/v2 seal\0";

/// What the signature covers: domain, topic (length-prefixed) and the frame
/// up to the signature.
fn signed_bytes(topic: &str, unsigned: &[u8]) -> Vec<u8> {
    let mut m = Vec::with_capacity(SIGN_DOMAIN.len() + 2 + topic.len() + unsigned.len());
    m.extend_from_slice(SIGN_DOMAIN);
    m.extend_from_slice(&(topic.len() as u16).to_be_bytes());
    m.extend_from_slice(topic.as_bytes());
    m.extend_from_slice(unsigned);
    m
}

fn seal_info(topic: &str) -> Vec<u8> {
    [SEAL_DOMAIN, topic.as_bytes()].concat()
}

fn header(sender: &SecretKeys, flags: u8) -> Vec<u8> {
    let mut h = Vec::with_capacity(HEADER);
    h.extend_from_slice(MAGIC);
    h.push(VERSION);
    h.push(flags);
    h.extend_from_slice(&sender.public().key_id().0);
    h
}

fn finish(sender: &SecretKeys, topic: &str, mut frame: Vec<u8>) -> Vec<u8> {
    let sig = sender.sign(&signed_bytes(topic, &frame));
    frame.extend_from_slice(&sig);
    frame
}

/// `body` in clear, signed by `sender` for `topic`.
pub fn sign(sender: &SecretKeys, topic: &str, body: &[u8]) -> Vec<u8> {
    let mut frame = header(sender, 0);
    frame.reserve(body.len() + SIGNATURE);
    frame.extend_from_slice(body);
    finish(sender, topic, frame)
}

/// `body` sealed to `recipient` and signed by `sender` for `topic`.
pub fn seal(
    sender: &SecretKeys,
    recipient: &PublicKeys,
    topic: &str,
    body: &[u8],
) -> Result<Vec<u8>, TrustError> {
    let mut frame = header(sender, FLAG_SEALED);
    let (enc, ciphertext) = hpke::single_shot_seal::<ChaCha20Poly1305, HkdfSha256, KemType>(
        &OpModeS::Base,
        recipient.encryption(),
        &seal_info(topic),
        body,
        &frame,
    )
    .map_err(|e| TrustError::Random(format!("sealing: {e}")))?;
    frame.reserve(ENCAPPED + ciphertext.len() + SIGNATURE);
    frame.extend_from_slice(&enc.to_bytes());
    frame.extend_from_slice(&ciphertext);
    Ok(finish(sender, topic, frame))
}

/// A parsed frame, not yet verified.
#[derive(Debug, Clone, Copy)]
pub struct Frame<'a> {
    bytes: &'a [u8],
    sealed: bool,
    key_id: KeyId,
}

/// A verified (and, if sealed, decrypted) body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Opened {
    pub body: Vec<u8>,
    /// Whether it arrived sealed.
    pub sealed: bool,
}

impl<'a> Frame<'a> {
    /// Checks the framing (magic, version, flags, length); says plainly when
    /// the payload is protocol 1's plain JSON.
    pub fn parse(bytes: &'a [u8]) -> Result<Frame<'a>, TrustError> {
        if bytes.first() == Some(&b'{') {
            return Err(TrustError::PlainJson);
        }
        if bytes.len() < 4 || &bytes[..3] != MAGIC {
            return Err(TrustError::Malformed {
                reason: "no BRM magic".into(),
            });
        }
        if bytes[3] != VERSION {
            return Err(TrustError::Version {
                got: bytes[3],
                supported: VERSION,
            });
        }
        if bytes.len() < OVERHEAD {
            return Err(TrustError::Malformed {
                reason: format!("{} bytes is shorter than a frame", bytes.len()),
            });
        }
        let flags = bytes[4];
        if flags & !FLAG_SEALED != 0 {
            return Err(TrustError::Malformed {
                reason: format!("unknown flags {flags:#04x}"),
            });
        }
        let sealed = flags & FLAG_SEALED != 0;
        if sealed && bytes.len() < SEALED_OVERHEAD {
            return Err(TrustError::Malformed {
                reason: format!("{} bytes is shorter than a sealed frame", bytes.len()),
            });
        }
        let mut id = [0u8; 8];
        id.copy_from_slice(&bytes[5..HEADER]);
        Ok(Frame {
            bytes,
            sealed,
            key_id: KeyId(id),
        })
    }

    /// The id of the key that claims to have signed it.
    pub fn key_id(&self) -> KeyId {
        self.key_id
    }

    /// Whether the body is sealed.
    pub fn sealed(&self) -> bool {
        self.sealed
    }

    /// The body in clear **before** verification, `None` when sealed: only
    /// to read the key a first `hello` is signed with, which it then must
    /// verify against.
    pub fn unverified_body(&self) -> Option<&'a [u8]> {
        (!self.sealed).then(|| &self.bytes[HEADER..self.bytes.len() - SIGNATURE])
    }

    /// Verifies the signature of `signer` over `topic`, then opens the seal
    /// with `recipient` (a sealed frame needs one).
    pub fn open(
        &self,
        topic: &str,
        signer: &PublicKeys,
        recipient: Option<&SecretKeys>,
    ) -> Result<Opened, TrustError> {
        if self.key_id != signer.key_id() {
            return Err(TrustError::WrongSigner {
                got: self.key_id.to_string(),
                expected: signer.key_id().to_string(),
            });
        }
        let split = self.bytes.len() - SIGNATURE;
        let mut sig = [0u8; SIGNATURE];
        sig.copy_from_slice(&self.bytes[split..]);
        if !signer.verify(&signed_bytes(topic, &self.bytes[..split]), &sig) {
            return Err(TrustError::BadSignature {
                topic: topic.to_string(),
            });
        }
        let body = &self.bytes[HEADER..split];
        if !self.sealed {
            return Ok(Opened {
                body: body.to_vec(),
                sealed: false,
            });
        }
        let recipient = recipient.ok_or(TrustError::Undecryptable)?;
        let enc = <KemType as Kem>::EncappedKey::from_bytes(&body[..ENCAPPED])
            .map_err(|_| TrustError::Undecryptable)?;
        let plain = hpke::single_shot_open::<ChaCha20Poly1305, HkdfSha256, KemType>(
            &OpModeR::Base,
            recipient.decryption(),
            &enc,
            &seal_info(topic),
            &body[ENCAPPED..],
            &self.bytes[..HEADER],
        )
        .map_err(|_| TrustError::Undecryptable)?;
        Ok(Opened {
            body: plain,
            sealed: true,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T: &str = "bramble/v2/nodes/pi-1/desired";

    fn keys() -> (SecretKeys, SecretKeys, SecretKeys) {
        (
            SecretKeys::generate().unwrap(),
            SecretKeys::generate().unwrap(),
            SecretKeys::generate().unwrap(),
        )
    }

    #[test]
    fn signed_frames_verify_only_for_their_signer_and_topic() {
        let (hub, node, other) = keys();
        let f = sign(&hub, T, b"{\"a\":1}");
        assert_eq!(f.len(), 7 + OVERHEAD);
        let p = Frame::parse(&f).unwrap();
        assert!(!p.sealed());
        assert_eq!(p.unverified_body(), Some(&b"{\"a\":1}"[..]));
        let o = p.open(T, hub.public(), None).unwrap();
        assert_eq!(o.body, b"{\"a\":1}");
        assert!(!o.sealed);
        // Another topic, another signer, any altered byte: refused.
        let e = p
            .open("bramble/v2/nodes/pi-2/desired", hub.public(), None)
            .unwrap_err();
        assert!(matches!(e, TrustError::BadSignature { .. }), "{e}");
        let e = p.open(T, node.public(), None).unwrap_err();
        assert!(matches!(e, TrustError::WrongSigner { .. }), "{e}");
        for i in 0..f.len() {
            let mut bad = f.clone();
            bad[i] ^= 0x20;
            let refused = Frame::parse(&bad).and_then(|p| p.open(T, hub.public(), None));
            assert!(refused.is_err(), "byte {i} altered and accepted");
        }
        // A frame re-signed by another key claiming the hub's id fails.
        let mut forged = sign(&other, T, b"{\"a\":1}");
        forged[5..13].copy_from_slice(&hub.public().key_id().0);
        let e = Frame::parse(&forged)
            .unwrap()
            .open(T, hub.public(), None)
            .unwrap_err();
        assert!(matches!(e, TrustError::BadSignature { .. }), "{e}");
        let _ = node;
    }

    #[test]
    fn sealed_frames_open_only_for_their_recipient() {
        let (hub, node, other) = keys();
        let secret = b"{\"password\":\"hunter2\"}";
        let f = seal(&hub, node.public(), T, secret).unwrap();
        assert_eq!(f.len(), secret.len() + SEALED_OVERHEAD);
        assert!(
            !f.windows(7).any(|w| w == b"hunter2"),
            "plaintext visible in a sealed frame"
        );
        let p = Frame::parse(&f).unwrap();
        assert!(p.sealed());
        assert_eq!(p.unverified_body(), None);
        let o = p.open(T, hub.public(), Some(&node)).unwrap();
        assert_eq!((o.body.as_slice(), o.sealed), (&secret[..], true));
        assert_eq!(
            p.open(T, hub.public(), Some(&other)).unwrap_err(),
            TrustError::Undecryptable
        );
        assert_eq!(
            p.open(T, hub.public(), None).unwrap_err(),
            TrustError::Undecryptable
        );
        // Two seals of the same body differ (fresh HPKE key each time).
        assert_ne!(seal(&hub, node.public(), T, secret).unwrap(), f);
    }

    #[test]
    fn garbage_and_old_payloads_are_named() {
        assert_eq!(
            Frame::parse(b"{\"protocol\":1}").unwrap_err(),
            TrustError::PlainJson
        );
        assert!(matches!(
            Frame::parse(b"nope").unwrap_err(),
            TrustError::Malformed { .. }
        ));
        assert!(matches!(
            Frame::parse(b"BRM\x03rest").unwrap_err(),
            TrustError::Version { got: 3, .. }
        ));
        assert!(matches!(
            Frame::parse(b"BRM\x02\x00short").unwrap_err(),
            TrustError::Malformed { .. }
        ));
        let (hub, _, _) = keys();
        let mut f = sign(&hub, T, b"{}");
        f[4] = 0x80;
        assert!(Frame::parse(&f).unwrap_err().to_string().contains("flags"));
        let mut f = sign(&hub, T, b"{}");
        f[4] = FLAG_SEALED;
        assert!(Frame::parse(&f).is_err(), "too short to be sealed");
    }
}
