//! Why the hub's identity state could not be read or written.

use std::path::PathBuf;

use crate::store::StoreError;

/// A failure of the hub's key file, the node key registry or the token
/// table. Never carries a secret.
#[derive(Debug, thiserror::Error)]
pub enum IdentityError {
    #[error("reading {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("writing {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "{path} is not a valid hub key file ({reason}): restore it from a backup; removing it gives the hub new keys and every node must rejoin"
    )]
    BadKeyFile { path: PathBuf, reason: String },
    #[error("the stored {what} of {key:?} is corrupt: {reason}")]
    Corrupt {
        what: &'static str,
        key: String,
        reason: String,
    },
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Trust(#[from] bramble_trust::TrustError),
}
