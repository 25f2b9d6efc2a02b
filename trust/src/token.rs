//! Join tokens, in the shape k3s and kubeadm users know:
//!
//! ```text
//! K10<SHA-256 of the hub's signing key, 64 hex>::<id>.<secret>
//! ```
//!
//! `id` is 6 and `secret` 32 characters of `[a-z0-9]` (165 bits). The hash
//! lets a board pin the hub's key at join (a hub that cannot prove that key
//! is refused); the id says which token, and is not secret. The secret never
//! leaves the board: it proves knowing it with an HMAC-SHA256 over what it
//! claims ([`JoinToken::proof`]), which the hub recomputes
//! ([`verify_proof`]).

use std::fmt;

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

use crate::TrustError;
use crate::keys::Fingerprint;
use crate::text::{b64, random, unb64};

/// Length of a token id.
pub const ID_LEN: usize = 6;
/// Length of a token secret.
pub const SECRET_LEN: usize = 32;
const PREFIX: &str = "K10";
const ALPHABET: &[u8; 36] = b"abcdefghijklmnopqrstuvwxyz0123456789";
const PROOF_DOMAIN: &[u8] = b"bramble/v2 token proof\0";

/// A parsed join token. `Debug` hides the secret; `Display` is the whole
/// token (for the operator's file and screen only).
#[derive(Clone, PartialEq, Eq)]
pub struct JoinToken {
    hub: Fingerprint,
    id: String,
    secret: String,
}

impl fmt::Debug for JoinToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JoinToken")
            .field("hub", &self.hub.to_string())
            .field("id", &self.id)
            .field("secret", &"<redacted>")
            .finish()
    }
}

impl fmt::Display for JoinToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{PREFIX}{}::{}.{}", self.hub, self.id, self.secret)
    }
}

fn random_text(n: usize) -> Result<String, TrustError> {
    let raw = random::<64>()?;
    // 64 random bytes, each mapped without bias: reject >= 252 (7 × 36).
    let text: String = raw
        .iter()
        .filter(|b| **b < 252)
        .map(|b| ALPHABET[(*b % 36) as usize] as char)
        .take(n)
        .collect();
    if text.len() < n {
        return random_text(n);
    }
    Ok(text)
}

fn check_part(what: &str, part: &str, len: usize) -> Result<(), TrustError> {
    if part.len() != len || !part.bytes().all(|b| ALPHABET.contains(&b)) {
        return Err(TrustError::Token(format!(
            "the join token's {what} must be {len} characters of a-z and 0-9"
        )));
    }
    Ok(())
}

impl JoinToken {
    /// A new random token of the hub whose key has `hub` as fingerprint.
    pub fn generate(hub: Fingerprint) -> Result<JoinToken, TrustError> {
        Ok(JoinToken {
            hub,
            id: random_text(ID_LEN)?,
            secret: random_text(SECRET_LEN)?,
        })
    }

    /// A token from stored parts.
    pub fn from_parts(hub: Fingerprint, id: &str, secret: &str) -> Result<JoinToken, TrustError> {
        check_part("id", id, ID_LEN)?;
        check_part("secret", secret, SECRET_LEN)?;
        Ok(JoinToken {
            hub,
            id: id.to_string(),
            secret: secret.to_string(),
        })
    }

    /// Parses `K10<hash>::<id>.<secret>`; an old token (a bare secret, no
    /// hub key hash) is refused with what to do.
    pub fn parse(text: &str) -> Result<JoinToken, TrustError> {
        let text = text.trim();
        let Some(rest) = text.strip_prefix(PREFIX) else {
            return Err(TrustError::Token(
                "the join token does not name the hub's key (it must start with K10, as \
                 DATA_DIR/node-token of this Bramble release does): copy the token again from \
                 the hub, or create one with `bramble token create`"
                    .into(),
            ));
        };
        let (hash, credential) = rest.split_once("::").ok_or_else(|| {
            TrustError::Token("the join token must look like K10<hash>::<id>.<secret>".into())
        })?;
        let hub = Fingerprint::parse(hash).map_err(|e| {
            TrustError::Token(format!("the join token's hub key hash is invalid: {e}"))
        })?;
        let (id, secret) = credential.split_once('.').ok_or_else(|| {
            TrustError::Token("the join token must look like K10<hash>::<id>.<secret>".into())
        })?;
        JoinToken::from_parts(hub, id, secret)
    }

    /// The fingerprint of the hub's signing key.
    pub fn hub(&self) -> Fingerprint {
        self.hub
    }

    /// The token's id (not secret).
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The secret (for the hub's store only).
    pub fn secret(&self) -> &str {
        &self.secret
    }

    /// The proof of knowing this token for `label` over `fields` (each
    /// length-prefixed, so no two field lists give the same input).
    pub fn proof(&self, label: &str, fields: &[&[u8]]) -> String {
        b64(&mac(&self.secret, label, fields).finalize().into_bytes())
    }
}

fn mac(secret: &str, label: &str, fields: &[&[u8]]) -> Hmac<Sha256> {
    let mut m = <Hmac<Sha256> as KeyInit>::new_from_slice(secret.as_bytes())
        .expect("HMAC takes keys of any length");
    m.update(PROOF_DOMAIN);
    for part in std::iter::once(label.as_bytes()).chain(fields.iter().copied()) {
        m.update(&(part.len() as u32).to_be_bytes());
        m.update(part);
    }
    m
}

/// Whether `proof` is [`JoinToken::proof`] of the token with `secret` for
/// `label` and `fields` (compared in constant time).
pub fn verify_proof(secret: &str, label: &str, fields: &[&[u8]], proof: &str) -> bool {
    let Ok(tag) = unb64::<32>(proof) else {
        return false;
    };
    mac(secret, label, fields).verify_slice(&tag).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::SecretKeys;

    #[test]
    fn tokens_round_trip_and_hide_their_secret() {
        let hub = SecretKeys::generate().unwrap().public().fingerprint();
        let t = JoinToken::generate(hub).unwrap();
        let text = t.to_string();
        assert!(text.starts_with("K10") && text.len() == 3 + 64 + 2 + 6 + 1 + 32);
        assert_eq!(JoinToken::parse(&format!(" {text}\n")).unwrap(), t);
        assert!(!format!("{t:?}").contains(t.secret()));
        assert_ne!(JoinToken::generate(hub).unwrap(), t);
    }

    #[test]
    fn bad_tokens_say_what_is_wrong() {
        let hub = SecretKeys::generate().unwrap().public().fingerprint();
        let cases = [
            ("0123456789abcdef", "does not name the hub's key"),
            ("K10abc::abcdef.x", "hub key hash is invalid"),
            (&format!("K10{hub}"), "K10<hash>::<id>.<secret>"),
            (&format!("K10{hub}::nodot"), "K10<hash>::<id>.<secret>"),
            (
                &format!("K10{hub}::ABCDEF.{}", "a".repeat(32)),
                "id must be",
            ),
            (&format!("K10{hub}::abcdef.short"), "secret must be"),
        ];
        for (text, want) in cases {
            let e = JoinToken::parse(text).unwrap_err().to_string();
            assert!(e.contains(want), "{text}: {e}");
        }
    }

    #[test]
    fn proofs_bind_label_and_fields() {
        let hub = SecretKeys::generate().unwrap().public().fingerprint();
        let t = JoinToken::generate(hub).unwrap();
        let p = t.proof("hello", &[b"pi-1", b"s1"]);
        assert!(verify_proof(t.secret(), "hello", &[b"pi-1", b"s1"], &p));
        assert!(!verify_proof(t.secret(), "login", &[b"pi-1", b"s1"], &p));
        assert!(!verify_proof(t.secret(), "hello", &[b"pi-2", b"s1"], &p));
        assert!(!verify_proof(t.secret(), "hello", &[b"pi-1s", b"1"], &p));
        let other = JoinToken::generate(hub).unwrap();
        assert!(!verify_proof(
            other.secret(),
            "hello",
            &[b"pi-1", b"s1"],
            &p
        ));
        assert!(!verify_proof(
            t.secret(),
            "hello",
            &[b"pi-1", b"s1"],
            "garbage"
        ));
    }
}
