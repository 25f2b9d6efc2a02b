//! Text forms of binary values: unpadded base64url for keys, signatures and
//! proofs (safe in JSON, URLs and MQTT passwords), lowercase hex for hashes
//! an operator compares by eye.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

/// Unpadded base64url.
pub fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// Decodes unpadded base64url into exactly `N` bytes.
pub fn unb64<const N: usize>(text: &str) -> Result<[u8; N], String> {
    let raw = URL_SAFE_NO_PAD
        .decode(text.trim())
        .map_err(|e| format!("not base64url: {e}"))?;
    raw.try_into()
        .map_err(|v: Vec<u8>| format!("{} bytes, expected {N}", v.len()))
}

/// Lowercase hex.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// `n` bytes from the operating system's random source.
pub fn random<const N: usize>() -> Result<[u8; N], crate::TrustError> {
    let mut buf = [0u8; N];
    getrandom::fill(&mut buf).map_err(|e| crate::TrustError::Random(e.to_string()))?;
    Ok(buf)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_refuses_wrong_lengths() {
        let v = [0xfbu8; 32];
        let t = b64(&v);
        assert!(!t.contains(['+', '/', '=']));
        assert_eq!(unb64::<32>(&t).unwrap(), v);
        assert!(
            unb64::<16>(&t)
                .unwrap_err()
                .contains("32 bytes, expected 16")
        );
        assert!(unb64::<32>("!!").is_err());
        assert_eq!(hex(&[0, 0xab]), "00ab");
        assert_ne!(random::<16>().unwrap(), random::<16>().unwrap());
    }
}
