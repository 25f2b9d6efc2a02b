//! Why a key, a frame or a token was refused. No variant carries a secret.

/// A refusal, with what a reader needs to find the culprit.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TrustError {
    #[error("{what}: not a valid key ({reason})")]
    BadKey { what: &'static str, reason: String },
    #[error(
        "payload is plain JSON from protocol 1: this side speaks signed protocol 2 frames; run \
         the same Bramble release on the hub and the agents"
    )]
    PlainJson,
    #[error("payload is not a Bramble frame: {reason}")]
    Malformed { reason: String },
    #[error(
        "frame speaks protocol version {got} but this side speaks {supported}: run the same \
         Bramble release on the hub and the agents"
    )]
    Version { got: u8, supported: u8 },
    #[error("frame of {size} bytes exceeds the limit of {limit} bytes")]
    TooLarge { size: usize, limit: usize },
    #[error("frame is signed by key {got}, but {expected} is expected from this sender")]
    WrongSigner { got: String, expected: String },
    #[error(
        "frame signature does not verify for topic {topic} (forged, altered, or copied from \
         another topic)"
    )]
    BadSignature { topic: String },
    #[error("frame is sealed to another key, or its ciphertext was altered")]
    Undecryptable,
    #[error("frame must be sealed (encrypted) but arrived in clear")]
    NotSealed,
    #[error("no randomness from the operating system: {0}")]
    Random(String),
    #[error("{0}")]
    Token(String),
    #[error("TLS: {0}")]
    Tls(String),
}
