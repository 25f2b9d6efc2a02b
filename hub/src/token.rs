//! The admin token: created once at first start in `DATA_DIR/token`, mode 0600.

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

/// File name of the admin token inside the data directory.
pub const TOKEN_FILE: &str = "token";

/// Why the admin token could not be read or created.
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    #[error("token file {path} is empty: delete it to have the hub generate a new one")]
    Empty { path: PathBuf },
    #[error("reading {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("creating token file {path}: {source}")]
    Create {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("writing token file {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(transparent)]
    Random(#[from] NoRandomness),
}

/// The OS gave no random bytes.
#[derive(Debug, thiserror::Error)]
#[error("no OS randomness: {0}")]
pub struct NoRandomness(#[source] pub getrandom::Error);

/// Reads the token at `path`, creating a fresh random one if the file is missing.
pub fn load_or_create(path: &Path) -> Result<String, TokenError> {
    match std::fs::read_to_string(path) {
        Ok(t) if !t.trim().is_empty() => return Ok(t.trim().to_string()),
        Ok(_) => {
            return Err(TokenError::Empty {
                path: path.to_path_buf(),
            });
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(source) => {
            return Err(TokenError::Read {
                path: path.to_path_buf(),
                source,
            });
        }
    }
    let token = random_hex(32)?;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(|source| TokenError::Create {
            path: path.to_path_buf(),
            source,
        })?;
    f.write_all(token.as_bytes())
        .and_then(|_| f.write_all(b"\n"))
        .and_then(|_| f.sync_all())
        .map_err(|source| TokenError::Write {
            path: path.to_path_buf(),
            source,
        })?;
    tracing::info!(path = %path.display(), "token created");
    Ok(token)
}

/// Compares two secrets in time independent of where they differ.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// `n` random bytes from the OS, hex-encoded.
pub fn random_hex(n: usize) -> Result<String, NoRandomness> {
    let mut buf = vec![0u8; n];
    getrandom::fill(&mut buf).map_err(NoRandomness)?;
    Ok(buf.iter().map(|b| format!("{b:02x}")).collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn compares_exactly() {
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"ab"));
    }

    #[test]
    fn creates_once_with_private_mode_then_reuses() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join(TOKEN_FILE);
        let a = load_or_create(&p).unwrap();
        assert_eq!(a.len(), 64);
        let mode = std::fs::metadata(&p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        assert_eq!(load_or_create(&p).unwrap(), a);
        std::fs::write(&p, "").unwrap();
        assert!(
            load_or_create(&p)
                .unwrap_err()
                .to_string()
                .contains("empty")
        );
    }
}
