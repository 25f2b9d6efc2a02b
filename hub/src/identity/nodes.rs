//! The node key registry: for every node the hub knows, its public keys,
//! the newest incarnation and session it said hello with, and whether it is
//! approved. Durable in redb (`kv_node_keys`, key: node name), cached in
//! memory for the per-message signature checks. Deleting a node's record
//! revokes it: its frames, broker logins and registry pulls are refused from
//! then on.

use std::collections::HashMap;
use std::sync::RwLock;

use bramble_trust::PublicKeys;
use serde::{Deserialize, Serialize};

use super::IdentityError;
use crate::store::{KvWrite, Store};

/// The redb table of node keys.
pub const NODE_KEYS_TABLE: &str = "kv_node_keys";

/// What the hub keeps about one node's identity.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NodeRecord {
    /// Public signing key (text form).
    pub signing: String,
    /// Public encryption key (text form).
    pub encryption: String,
    /// The newest incarnation said hello with; lower ones are replays.
    pub incarnation: u64,
    /// The session of that hello: statuses of other sessions are ignored.
    pub session: String,
    /// False while waiting for `bramble nodes approve` (`--approve-nodes`).
    pub approved: bool,
    /// The id of the join token it joined with.
    pub token_id: String,
    /// When it joined (RFC 3339).
    pub joined: String,
    /// What the board said it is, to show a pending node to the operator.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub architecture: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub internal_ip: Option<String>,
}

impl NodeRecord {
    /// The public keys it names.
    pub fn keys(&self) -> Result<PublicKeys, bramble_trust::TrustError> {
        PublicKeys::from_text(&self.signing, &self.encryption)
    }
}

struct Entry {
    record: NodeRecord,
    keys: PublicKeys,
}

/// See the module docs.
pub struct NodeKeys {
    store: Store,
    cache: RwLock<HashMap<String, Entry>>,
    /// Counts changes (who provisions an external broker watches it).
    changes: tokio::sync::watch::Sender<u64>,
}

impl std::fmt::Debug for NodeKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NodeKeys")
            .field("nodes", &self.read().len())
            .finish()
    }
}

impl NodeKeys {
    /// Loads every record; one that does not parse is logged and left out
    /// (that node must rejoin).
    pub fn load(store: Store) -> Result<NodeKeys, IdentityError> {
        let mut cache = HashMap::new();
        for (node, raw) in store.kv_list(NODE_KEYS_TABLE, "")? {
            let parsed = serde_json::from_slice::<NodeRecord>(&raw)
                .map_err(|e| e.to_string())
                .and_then(|r| r.keys().map(|k| (r, k)).map_err(|e| e.to_string()));
            match parsed {
                Ok((record, keys)) => {
                    cache.insert(node, Entry { record, keys });
                }
                Err(reason) => {
                    tracing::error!(%node, %reason, "ignoring a corrupt node key record; the node must rejoin")
                }
            }
        }
        Ok(NodeKeys {
            store,
            cache: RwLock::new(cache),
            changes: tokio::sync::watch::Sender::new(0),
        })
    }

    /// Wakes on every change of the registry.
    pub fn changes(&self) -> tokio::sync::watch::Receiver<u64> {
        self.changes.subscribe()
    }

    fn changed(&self) {
        self.changes.send_modify(|n| *n += 1);
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, HashMap<String, Entry>> {
        self.cache.read().unwrap_or_else(|p| p.into_inner())
    }

    /// The keys of an approved node.
    pub fn key(&self, node: &str) -> Option<PublicKeys> {
        self.read()
            .get(node)
            .filter(|e| e.record.approved)
            .map(|e| e.keys.clone())
    }

    /// The record and keys of a node, approved or not.
    pub fn get(&self, node: &str) -> Option<(NodeRecord, PublicKeys)> {
        self.read()
            .get(node)
            .map(|e| (e.record.clone(), e.keys.clone()))
    }

    /// Stores `record` for `node` durably, then caches it.
    pub async fn put(&self, node: &str, record: NodeRecord) -> Result<(), IdentityError> {
        let keys = record.keys()?;
        let value = serde_json::to_vec(&record).expect("records serialize");
        self.store
            .kv_write(vec![KvWrite {
                table: NODE_KEYS_TABLE,
                key: node.to_string(),
                value: Some(value),
            }])
            .await?;
        self.cache
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .insert(node.to_string(), Entry { record, keys });
        self.changed();
        Ok(())
    }

    /// Forgets `node` (cache first: it is refused at once); whether it was
    /// known.
    pub async fn remove(&self, node: &str) -> Result<bool, IdentityError> {
        let known = self
            .cache
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .remove(node)
            .is_some();
        self.store
            .kv_write(vec![KvWrite {
                table: NODE_KEYS_TABLE,
                key: node.to_string(),
                value: None,
            }])
            .await?;
        self.changed();
        Ok(known)
    }

    /// Every node's record, by name.
    pub fn all(&self) -> Vec<(String, NodeRecord)> {
        let mut v: Vec<_> = self
            .read()
            .iter()
            .map(|(n, e)| (n.clone(), e.record.clone()))
            .collect();
        v.sort_by(|a, b| a.0.cmp(&b.0));
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::StoreOptions;
    use bramble_trust::SecretKeys;

    fn record(keys: &SecretKeys, approved: bool) -> NodeRecord {
        NodeRecord {
            signing: keys.public().signing_text(),
            encryption: keys.public().encryption_text(),
            incarnation: 1,
            session: "s1".into(),
            approved,
            token_id: "abcdef".into(),
            joined: "2026-12-06T10:00:00Z".into(),
            architecture: "arm64".into(),
            internal_ip: None,
        }
    }

    #[tokio::test]
    async fn records_survive_a_reload_and_removal_is_at_once() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("db"), StoreOptions::default()).unwrap();
        let (a, b) = (
            SecretKeys::generate().unwrap(),
            SecretKeys::generate().unwrap(),
        );
        let reg = NodeKeys::load(store.clone()).unwrap();
        reg.put("pi-1", record(&a, true)).await.unwrap();
        reg.put("pi-2", record(&b, false)).await.unwrap();
        assert_eq!(reg.key("pi-1").as_ref(), Some(a.public()));
        assert_eq!(reg.key("pi-2"), None, "pending nodes have no usable key");
        assert!(reg.get("pi-2").is_some());
        let again = NodeKeys::load(store.clone()).unwrap();
        assert_eq!(again.key("pi-1").as_ref(), Some(a.public()));
        assert_eq!(again.all().len(), 2);
        assert!(reg.remove("pi-1").await.unwrap());
        assert_eq!(reg.key("pi-1"), None);
        assert!(!reg.remove("pi-1").await.unwrap());
        assert_eq!(NodeKeys::load(store.clone()).unwrap().key("pi-1"), None);
        store.shutdown().await;
    }
}
