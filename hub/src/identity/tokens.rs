//! Join tokens: the cluster's token in `DATA_DIR/node-token` (no expiry, no
//! use limit, as k3s' is; `bramble nodes rotate-token` replaces it) and
//! bootstrap tokens made with `bramble token create --ttl 1h --uses 5`,
//! which expire or wear out. All live in redb (`kv_join_tokens`, key: token
//! id); a token names the hub's key ([`bramble_trust::JoinToken`]). Joined
//! nodes never need a token again, so replacing or deleting one leaves them
//! alone.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::RwLock;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bramble_trust::{Fingerprint, JoinToken};
use serde::{Deserialize, Serialize};

use super::IdentityError;
use crate::store::{KvWrite, Store};

/// The redb table of join tokens.
pub const TOKENS_TABLE: &str = "kv_join_tokens";
/// File name of the cluster's join token inside the data directory.
pub const NODE_TOKEN_FILE: &str = "node-token";

/// A stored token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TokenRecord {
    secret: String,
    /// Unix seconds after which it is refused.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires: Option<u64>,
    /// Joins it may still admit; absent: unlimited.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uses_left: Option<u32>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub description: String,
    /// Unix seconds.
    pub created: u64,
    /// The cluster's token (the one in `DATA_DIR/node-token`).
    #[serde(default)]
    pub cluster: bool,
}

/// What `bramble token ls` shows of a token (never its secret).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TokenInfo {
    pub id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expires: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub uses_left: Option<u32>,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub description: String,
    pub created: u64,
    pub cluster: bool,
}

/// Why a token does not admit a join (said to the agent and logged; names
/// the token id, never the secret).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenRefusal {
    #[error(
        "join token {0:?} is not known to this hub (deleted, rotated, or from another hub): \
         use DATA_DIR/node-token of the hub or a token from `bramble token create`"
    )]
    Unknown(String),
    #[error("join token {0:?} expired: create another with `bramble token create`")]
    Expired(String),
    #[error("join token {0:?} is used up: create another with `bramble token create`")]
    UsedUp(String),
    #[error("the proof of join token {0:?} is wrong (not made with that token's secret)")]
    BadProof(String),
}

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs()
}

/// See the module docs.
pub struct Tokens {
    store: Store,
    hub: Fingerprint,
    file: PathBuf,
    cache: RwLock<HashMap<String, TokenRecord>>,
    /// Counts changes (who provisions an external broker watches it).
    changes: tokio::sync::watch::Sender<u64>,
}

impl std::fmt::Debug for Tokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tokens").finish_non_exhaustive()
    }
}

/// Writes `text` to `path` (mode 0600) atomically (`data_dir::write_private`).
fn write_private(path: &Path, text: &str) -> Result<(), IdentityError> {
    let mut bytes = text.as_bytes().to_vec();
    bytes.push(b'\n');
    crate::data_dir::write_private(path, &bytes).map_err(|source| IdentityError::Write {
        path: path.to_path_buf(),
        source,
    })
}

impl Tokens {
    /// Loads the tokens and makes sure `DATA_DIR/node-token` holds a valid
    /// cluster token of this hub: one from before protocol 2 (a bare
    /// secret) or of other hub keys is replaced, with a warning.
    pub async fn open(
        store: Store,
        data_dir: &Path,
        hub: Fingerprint,
    ) -> Result<Tokens, IdentityError> {
        let mut cache = HashMap::new();
        for (id, raw) in store.kv_list(TOKENS_TABLE, "")? {
            let record: TokenRecord =
                serde_json::from_slice(&raw).map_err(|e| IdentityError::Corrupt {
                    what: "join token",
                    key: id.clone(),
                    reason: e.to_string(),
                })?;
            cache.insert(id, record);
        }
        let tokens = Tokens {
            store,
            hub,
            file: data_dir.join(NODE_TOKEN_FILE),
            cache: RwLock::new(cache),
            changes: tokio::sync::watch::Sender::new(0),
        };
        let on_disk = match std::fs::read_to_string(&tokens.file) {
            Ok(t) => Some(t),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(source) => {
                return Err(IdentityError::Read {
                    path: tokens.file.clone(),
                    source,
                });
            }
        };
        let valid = on_disk
            .as_deref()
            .and_then(|t| JoinToken::parse(t).ok())
            .filter(|t| t.hub() == hub);
        match valid {
            Some(t) => {
                let known = tokens
                    .read()
                    .get(t.id())
                    .is_some_and(|r| r.secret == t.secret());
                if !known {
                    tokens.insert(&t, cluster_record(&t)).await?;
                }
            }
            None => {
                if on_disk.is_some() {
                    tracing::warn!(path = %tokens.file.display(),
                        "replacing a join token that does not name this hub's key (from before \
                         protocol 2, or of other hub keys): boards must join with the new one");
                }
                tokens.rotate_cluster().await?;
            }
        }
        Ok(tokens)
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, HashMap<String, TokenRecord>> {
        self.cache.read().unwrap_or_else(|p| p.into_inner())
    }

    /// Wakes on every change of the tokens.
    pub fn changes(&self) -> tokio::sync::watch::Receiver<u64> {
        self.changes.subscribe()
    }

    async fn insert(&self, t: &JoinToken, record: TokenRecord) -> Result<(), IdentityError> {
        self.write_record(t.id(), Some(&record)).await?;
        self.cache
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .insert(t.id().to_string(), record);
        Ok(())
    }

    async fn write_record(
        &self,
        id: &str,
        record: Option<&TokenRecord>,
    ) -> Result<(), IdentityError> {
        self.store
            .kv_write(vec![KvWrite {
                table: TOKENS_TABLE,
                key: id.to_string(),
                value: record.map(|r| serde_json::to_vec(r).expect("records serialize")),
            }])
            .await?;
        self.changes.send_modify(|n| *n += 1);
        Ok(())
    }

    /// The cluster's token (as in `DATA_DIR/node-token`).
    pub fn cluster_token(&self) -> Option<JoinToken> {
        self.read()
            .iter()
            .find(|(_, r)| r.cluster)
            .and_then(|(id, r)| JoinToken::from_parts(self.hub, id, &r.secret).ok())
    }

    /// The secret of token `id` if it admits a join now.
    pub fn admitting(&self, id: &str) -> Result<String, TokenRefusal> {
        let cache = self.read();
        let r = cache
            .get(id)
            .ok_or_else(|| TokenRefusal::Unknown(id.to_string()))?;
        if r.expires.is_some_and(|e| now_secs() >= e) {
            return Err(TokenRefusal::Expired(id.to_string()));
        }
        if r.uses_left == Some(0) {
            return Err(TokenRefusal::UsedUp(id.to_string()));
        }
        Ok(r.secret.clone())
    }

    /// Every token that admits a join now.
    pub fn admitting_tokens(&self) -> Vec<JoinToken> {
        let ids: Vec<String> = self.read().keys().cloned().collect();
        ids.iter()
            .filter_map(|id| {
                let secret = self.admitting(id).ok()?;
                JoinToken::from_parts(self.hub, id, &secret).ok()
            })
            .collect()
    }

    /// Counts one join against token `id` (a limited token that reaches 0
    /// stays listed as used up).
    pub async fn consume(&self, id: &str) -> Result<(), IdentityError> {
        let updated = {
            let cache = self.read();
            match cache.get(id) {
                Some(r) if r.uses_left.is_some() => {
                    let mut r = r.clone();
                    r.uses_left = r.uses_left.map(|n| n.saturating_sub(1));
                    Some(r)
                }
                _ => None,
            }
        };
        if let Some(r) = updated {
            self.write_record(id, Some(&r)).await?;
            self.cache
                .write()
                .unwrap_or_else(|p| p.into_inner())
                .insert(id.to_string(), r);
        }
        Ok(())
    }

    /// A new bootstrap token.
    pub async fn create(
        &self,
        ttl: Option<Duration>,
        uses: Option<u32>,
        description: String,
    ) -> Result<JoinToken, IdentityError> {
        let t = JoinToken::generate(self.hub)?;
        let now = now_secs();
        let record = TokenRecord {
            secret: t.secret().to_string(),
            expires: ttl.map(|d| now.saturating_add(d.as_secs().max(1))),
            uses_left: uses,
            description,
            created: now,
            cluster: false,
        };
        self.insert(&t, record).await?;
        Ok(t)
    }

    /// Every token, without secrets, by id.
    pub fn list(&self) -> Vec<TokenInfo> {
        let mut v: Vec<TokenInfo> = self
            .read()
            .iter()
            .map(|(id, r)| TokenInfo {
                id: id.clone(),
                expires: r.expires,
                uses_left: r.uses_left,
                description: r.description.clone(),
                created: r.created,
                cluster: r.cluster,
            })
            .collect();
        v.sort_by(|a, b| a.id.cmp(&b.id));
        v
    }

    /// Deletes token `id`; whether it existed. The cluster token is replaced
    /// with [`Tokens::rotate_cluster`], not deleted.
    pub async fn delete(&self, id: &str) -> Result<bool, IdentityError> {
        if !self.read().contains_key(id) {
            return Ok(false);
        }
        self.write_record(id, None).await?;
        self.cache
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .remove(id);
        Ok(true)
    }

    /// Replaces the cluster token (and `DATA_DIR/node-token`); the old one
    /// is refused from now on. Joined nodes are unaffected.
    pub async fn rotate_cluster(&self) -> Result<JoinToken, IdentityError> {
        let t = JoinToken::generate(self.hub)?;
        let old: Vec<String> = self
            .read()
            .iter()
            .filter(|(_, r)| r.cluster)
            .map(|(id, _)| id.clone())
            .collect();
        self.insert(&t, cluster_record(&t)).await?;
        write_private(&self.file, &t.to_string())?;
        for id in old {
            self.delete(&id).await?;
        }
        tracing::info!(path = %self.file.display(), id = t.id(), "cluster join token written");
        Ok(t)
    }
}

fn cluster_record(t: &JoinToken) -> TokenRecord {
    TokenRecord {
        secret: t.secret().to_string(),
        expires: None,
        uses_left: None,
        description: "the cluster's join token (DATA_DIR/node-token)".into(),
        created: now_secs(),
        cluster: true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::StoreOptions;
    use bramble_trust::SecretKeys;
    use std::os::unix::fs::PermissionsExt;

    #[tokio::test]
    async fn cluster_token_is_written_kept_and_rotated() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("db"), StoreOptions::default()).unwrap();
        let hub = SecretKeys::generate().unwrap().public().fingerprint();
        // A token from before protocol 2 is replaced.
        std::fs::write(dir.path().join(NODE_TOKEN_FILE), "0123abcd\n").unwrap();
        let tokens = Tokens::open(store.clone(), dir.path(), hub).await.unwrap();
        let file = dir.path().join(NODE_TOKEN_FILE);
        let t = JoinToken::parse(&std::fs::read_to_string(&file).unwrap()).unwrap();
        assert_eq!(t.hub(), hub);
        assert_eq!(tokens.cluster_token(), Some(t.clone()));
        assert_eq!(
            std::fs::metadata(&file).unwrap().permissions().mode() & 0o777,
            0o600
        );
        assert_eq!(tokens.admitting(t.id()).unwrap(), t.secret());
        // Reopening keeps it.
        let again = Tokens::open(store.clone(), dir.path(), hub).await.unwrap();
        assert_eq!(again.cluster_token(), Some(t.clone()));
        // Rotation refuses the old one.
        let new = again.rotate_cluster().await.unwrap();
        assert_ne!(new, t);
        assert!(matches!(
            again.admitting(t.id()),
            Err(TokenRefusal::Unknown(_))
        ));
        assert!(again.admitting(new.id()).is_ok());
        assert_eq!(again.list().len(), 1);
        store.shutdown().await;
    }

    #[tokio::test]
    async fn bootstrap_tokens_wear_out_and_expire() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("db"), StoreOptions::default()).unwrap();
        let hub = SecretKeys::generate().unwrap().public().fingerprint();
        let tokens = Tokens::open(store.clone(), dir.path(), hub).await.unwrap();
        let t = tokens
            .create(None, Some(2), "two boards".into())
            .await
            .unwrap();
        tokens.consume(t.id()).await.unwrap();
        assert!(tokens.admitting(t.id()).is_ok());
        tokens.consume(t.id()).await.unwrap();
        assert!(matches!(
            tokens.admitting(t.id()),
            Err(TokenRefusal::UsedUp(_))
        ));
        let info = tokens.list().into_iter().find(|i| i.id == t.id()).unwrap();
        assert_eq!(
            (info.uses_left, info.description.as_str()),
            (Some(0), "two boards")
        );
        // An expired token (expiry in the past) is refused.
        let e = tokens
            .create(Some(Duration::from_secs(1)), None, String::new())
            .await
            .unwrap();
        let mut r = tokens.read().get(e.id()).unwrap().clone();
        r.expires = Some(now_secs() - 1);
        tokens.insert(&e, r).await.unwrap();
        assert!(matches!(
            tokens.admitting(e.id()),
            Err(TokenRefusal::Expired(_))
        ));
        assert!(tokens.delete(e.id()).await.unwrap());
        assert!(matches!(
            tokens.admitting(e.id()),
            Err(TokenRefusal::Unknown(_))
        ));
        // The cluster token is unlimited.
        let c = tokens.cluster_token().unwrap();
        for _ in 0..3 {
            tokens.consume(c.id()).await.unwrap();
        }
        assert!(tokens.admitting(c.id()).is_ok());
        store.shutdown().await;
    }
}
