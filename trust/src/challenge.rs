//! Proving a key to whoever asks: the asker sends fresh random bytes, the
//! holder signs them (with a domain prefix, so the signature is useless as
//! anything else). `bramble-agent --join auto` asks every hub it finds on the
//! LAN, and joins only the one that proves the key its token names.

use crate::keys::{PublicKeys, SecretKeys};

const DOMAIN: &[u8] = b"bramble/v2 identity proof\0";

/// Challenges shorter than this are refused: they could be replayed.
pub const MIN_CHALLENGE: usize = 16;

fn message(challenge: &[u8]) -> Vec<u8> {
    [DOMAIN, challenge].concat()
}

/// The holder's answer to `challenge`.
pub fn prove(keys: &SecretKeys, challenge: &[u8]) -> [u8; 64] {
    keys.sign(&message(challenge))
}

/// Whether `signature` proves `key` over `challenge`.
pub fn verify(key: &PublicKeys, challenge: &[u8], signature: &[u8; 64]) -> bool {
    challenge.len() >= MIN_CHALLENGE && key.verify(&message(challenge), signature)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_proof_answers_one_challenge_of_one_key() {
        let k = SecretKeys::generate().unwrap();
        let c = [7u8; 32];
        let p = prove(&k, &c);
        assert!(verify(k.public(), &c, &p));
        assert!(!verify(k.public(), &[8u8; 32], &p));
        assert!(!verify(SecretKeys::generate().unwrap().public(), &c, &p));
        assert!(
            !verify(k.public(), &[7u8; 8], &prove(&k, &[7u8; 8])),
            "too short"
        );
        // A frame signature is no proof.
        assert!(!verify(k.public(), &c, &k.sign(&c)));
    }
}
