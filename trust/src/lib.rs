//! Bramble's message protection, so that the MQTT broker is never trusted:
//! whatever a broker, a LAN sniffer or another board sees or sends, a board
//! gets only what the hub meant for it, and the hub believes only what a
//! board signed.
//!
//! - [`keys`]: each party (the hub, every board) holds a signing key
//!   (Ed25519) and an encryption key (X25519, for HPKE); their public halves
//!   travel as [`PublicKeys`] and are named by a [`Fingerprint`].
//! - [`frame`]: every MQTT payload is a frame signed by its sender over the
//!   topic it is published on; a frame that carries Secrets or private data
//!   is also sealed to the receiver's encryption key (HPKE, RFC 9180:
//!   X25519-HKDF-SHA256, HKDF-SHA256, ChaCha20-Poly1305).
//! - [`token`]: join tokens (`K10<hub key hash>::<id>.<secret>`) that name
//!   the hub's key, so a board pins it at join, and the proofs a board gives
//!   of knowing a token without sending it.
//! - [`login`]: the MQTT and registry passwords of a board, derived from its
//!   key or its token (never issued, never sent on a topic).
//!
//! - [`ca`]: the hub's key vouches for its TLS CA, so pinning the key pins
//!   the CA; [`tls`]: TLS clients (rustls with ring) trusting only that CA.
//!
//! Pure: no I/O beyond the operating system's random source. The
//! primitives are the RustCrypto, dalek and ring crates'; nothing here
//! implements one.

pub mod ca;
pub mod challenge;
pub mod error;
pub mod frame;
pub mod keys;
pub mod login;
pub mod text;
pub mod tls;
pub mod token;

pub use error::TrustError;
pub use frame::{Frame, Opened};
pub use keys::{Fingerprint, KeyId, PublicKeys, SecretKeys};
pub use token::JoinToken;
