//! Encryption at rest of chosen tables (Secrets, join tokens): each stored
//! value is sealed with AES-256-GCM (ring) under the active key of a key ring
//! the hub keeps outside the database (`DATA_DIR/secrets.key`), so a copy of
//! `state.redb` alone reveals none of them (as k3s' `--secrets-encryption`).
//!
//! A sealed value is `MAGIC | key id (4 bytes, BE) | nonce (12) | ciphertext+tag`;
//! the table and the key are the associated data, so a sealed value moved to
//! another name does not open. Values written before sealing existed are JSON
//! (first byte `{`), read as they are and sealed by [`Store::open`](super::Store::open).
//! Pure: no files, no clock; the key file is `crate::secrets_key`.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::sync::RwLock;

use ring::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};

/// First bytes of every sealed value (JSON never starts with a NUL).
const MAGIC: &[u8; 4] = b"\0bs1";
const HEADER: usize = MAGIC.len() + 4 + NONCE_LEN;
/// Length of one key.
pub const KEY_LEN: usize = 32;

/// Why a stored value could not be opened.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SealError {
    #[error(
        "it is sealed with key {id:08x}, which the key file does not hold (DATA_DIR/secrets.key replaced or lost? restore it from the backup made with state.redb)"
    )]
    UnknownKey { id: u32 },
    #[error(
        "it does not open with key {id:08x} (the key file's key {id:08x} is not the one it was sealed with, or the stored bytes were altered)"
    )]
    Unauthentic { id: u32 },
    #[error("it is sealed but the store was opened without a key ring")]
    NoKeys,
    #[error("it is cut short ({len} bytes, a sealed value has at least {HEADER})")]
    Truncated { len: usize },
}

/// The keys: one active (seals), all (open).
#[derive(Clone, PartialEq, Eq)]
pub struct Keyring {
    pub active: u32,
    pub keys: BTreeMap<u32, [u8; KEY_LEN]>,
}

impl std::fmt::Debug for Keyring {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Keyring")
            .field("active", &format_args!("{:08x}", self.active))
            .field("ids", &self.keys.keys().collect::<Vec<_>>())
            .finish()
    }
}

impl Keyring {
    /// A ring with one fresh random key.
    pub fn generate() -> Result<Keyring, getrandom::Error> {
        let mut ring = Keyring {
            active: 0,
            keys: BTreeMap::new(),
        };
        ring.add_active()?;
        Ok(ring)
    }

    /// Adds a fresh random key (with an id not in use) and makes it active.
    pub fn add_active(&mut self) -> Result<u32, getrandom::Error> {
        let mut key = [0u8; KEY_LEN];
        getrandom::fill(&mut key)?;
        let mut id = 0u32;
        while id == 0 || self.keys.contains_key(&id) {
            let mut b = [0u8; 4];
            getrandom::fill(&mut b)?;
            id = u32::from_be_bytes(b);
        }
        self.keys.insert(id, key);
        self.active = id;
        Ok(id)
    }

    /// Drops every key but the active one.
    pub fn retire_inactive(&mut self) -> usize {
        let before = self.keys.len();
        let active = self.active;
        self.keys.retain(|id, _| *id == active);
        before - self.keys.len()
    }
}

/// Seals and opens the values of the tables it covers.
pub struct Sealer {
    tables: Vec<&'static str>,
    ring: RwLock<Keyring>,
}

impl std::fmt::Debug for Sealer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sealer")
            .field("tables", &self.tables)
            .finish_non_exhaustive()
    }
}

/// The key id a stored value is sealed with; `None` for a plain value.
pub fn sealed_with(stored: &[u8]) -> Option<u32> {
    (stored.len() >= HEADER && stored.starts_with(MAGIC))
        .then(|| u32::from_be_bytes(stored[MAGIC.len()..MAGIC.len() + 4].try_into().unwrap()))
}

fn aad(table: &str, key: &str) -> Vec<u8> {
    let mut a = Vec::with_capacity(table.len() + key.len() + 1);
    a.extend_from_slice(table.as_bytes());
    a.push(0);
    a.extend_from_slice(key.as_bytes());
    a
}

fn aead_key(bytes: &[u8; KEY_LEN]) -> LessSafeKey {
    LessSafeKey::new(UnboundKey::new(&AES_256_GCM, bytes).expect("32-byte key"))
}

impl Sealer {
    /// A sealer for `tables` (object tables by plural, or `kv_` tables).
    pub fn new(tables: Vec<&'static str>, ring: Keyring) -> Sealer {
        Sealer {
            tables,
            ring: RwLock::new(ring),
        }
    }

    /// Whether values of `table` are sealed.
    pub fn covers(&self, table: &str) -> bool {
        self.tables.contains(&table)
    }

    /// The tables covered.
    pub fn tables(&self) -> &[&'static str] {
        &self.tables
    }

    /// A copy of the key ring.
    pub fn keyring(&self) -> Keyring {
        self.ring.read().expect("key ring lock").clone()
    }

    /// Replaces the key ring (after its file was written).
    pub fn set_keyring(&self, ring: Keyring) {
        *self.ring.write().expect("key ring lock") = ring;
    }

    /// Whether `stored` should be sealed again: plain, or not under the active key.
    pub fn is_stale(&self, stored: &[u8]) -> bool {
        sealed_with(stored) != Some(self.ring.read().expect("key ring lock").active)
    }

    /// Seals `plain` as the value of `key` in `table` under the active key.
    pub fn seal(&self, table: &str, key: &str, plain: &[u8]) -> Vec<u8> {
        let ring = self.ring.read().expect("key ring lock");
        let k = aead_key(&ring.keys[&ring.active]);
        let mut nonce = [0u8; NONCE_LEN];
        // Random 96-bit nonces: safe far beyond the number of Secret writes a
        // hub makes under one key (NIST's bound is 2^32 messages).
        getrandom::fill(&mut nonce).expect("OS randomness");
        let mut out = Vec::with_capacity(HEADER + plain.len() + AES_256_GCM.tag_len());
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&ring.active.to_be_bytes());
        out.extend_from_slice(&nonce);
        out.extend_from_slice(plain);
        let mut body = out.split_off(HEADER);
        k.seal_in_place_append_tag(
            Nonce::assume_unique_for_key(nonce),
            Aad::from(aad(table, key)),
            &mut body,
        )
        .expect("sealing fits in memory");
        out.extend_from_slice(&body);
        out
    }

    /// Opens a stored value of `key` in `table`; plain values come back as they are.
    pub fn open<'a>(
        &self,
        table: &str,
        key: &str,
        stored: &'a [u8],
    ) -> Result<Cow<'a, [u8]>, SealError> {
        open_with(Some(self), table, key, stored)
    }
}

/// Opens `stored` with `sealer`, if any: plain values pass through.
pub fn open_with<'a>(
    sealer: Option<&Sealer>,
    table: &str,
    key: &str,
    stored: &'a [u8],
) -> Result<Cow<'a, [u8]>, SealError> {
    if !stored.starts_with(MAGIC) {
        return Ok(Cow::Borrowed(stored));
    }
    let Some(id) = sealed_with(stored) else {
        return Err(SealError::Truncated { len: stored.len() });
    };
    let sealer = sealer.ok_or(SealError::NoKeys)?;
    let ring = sealer.ring.read().expect("key ring lock");
    let bytes = ring.keys.get(&id).ok_or(SealError::UnknownKey { id })?;
    let nonce: [u8; NONCE_LEN] = stored[MAGIC.len() + 4..HEADER].try_into().unwrap();
    let mut body = stored[HEADER..].to_vec();
    let plain = aead_key(bytes)
        .open_in_place(
            Nonce::assume_unique_for_key(nonce),
            Aad::from(aad(table, key)),
            &mut body,
        )
        .map_err(|_| SealError::Unauthentic { id })?;
    let n = plain.len();
    body.truncate(n);
    Ok(Cow::Owned(body))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sealer() -> Sealer {
        Sealer::new(vec!["secrets"], Keyring::generate().unwrap())
    }

    #[test]
    fn sealed_values_hide_the_plain_text_and_open_again() {
        let s = sealer();
        let plain = br#"{"data":{"password":"aHVudGVyMg=="}}"#;
        let sealed = s.seal("secrets", "default/db", plain);
        assert!(!sealed.windows(8).any(|w| w == b"aHVudGVy"));
        assert_eq!(sealed_with(&sealed), Some(s.keyring().active));
        assert_eq!(
            s.open("secrets", "default/db", &sealed).unwrap().as_ref(),
            plain
        );
        // Two seals of one value differ (fresh nonce).
        assert_ne!(sealed, s.seal("secrets", "default/db", plain));
    }

    #[test]
    fn a_value_moved_to_another_name_or_altered_does_not_open() {
        let s = sealer();
        let id = s.keyring().active;
        let sealed = s.seal("secrets", "default/db", b"{}");
        assert_eq!(
            s.open("secrets", "default/other", &sealed),
            Err(SealError::Unauthentic { id })
        );
        let mut bad = sealed.clone();
        *bad.last_mut().unwrap() ^= 1;
        assert_eq!(
            s.open("secrets", "default/db", &bad),
            Err(SealError::Unauthentic { id })
        );
        assert_eq!(
            s.open("secrets", "default/db", &sealed[..10]),
            Err(SealError::Truncated { len: 10 })
        );
        assert_eq!(
            open_with(None, "secrets", "default/db", &sealed),
            Err(SealError::NoKeys)
        );
    }

    #[test]
    fn rotation_keeps_old_values_readable_until_the_old_key_is_retired() {
        let s = sealer();
        let old = s.seal("secrets", "a/b", b"{\"v\":1}");
        let old_id = s.keyring().active;
        let mut ring = s.keyring();
        let new_id = ring.add_active().unwrap();
        assert_ne!(new_id, old_id);
        s.set_keyring(ring.clone());
        assert!(s.is_stale(&old));
        assert!(s.is_stale(b"{}"));
        assert_eq!(
            s.open("secrets", "a/b", &old).unwrap().as_ref(),
            b"{\"v\":1}"
        );
        let new = s.seal("secrets", "a/b", b"{\"v\":1}");
        assert!(!s.is_stale(&new));
        assert_eq!(ring.retire_inactive(), 1);
        s.set_keyring(ring);
        assert_eq!(
            s.open("secrets", "a/b", &old),
            Err(SealError::UnknownKey { id: old_id })
        );
        assert_eq!(
            s.open("secrets", "a/b", &new).unwrap().as_ref(),
            b"{\"v\":1}"
        );
    }

    #[test]
    fn plain_values_pass_through() {
        let s = sealer();
        assert_eq!(
            s.open("secrets", "k", b"{\"a\":1}").unwrap().as_ref(),
            b"{\"a\":1}"
        );
        assert!(s.covers("secrets"));
        assert!(!s.covers("configmaps"));
    }
}
