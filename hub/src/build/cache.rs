//! The layer cache of builds: which layer a step of a given cache key
//! made, per node (raw `kv_build_cache` table in the hub store). A layer is
//! reused only on the node that made it: a board is trusted with its own
//! builds, never with another board's (a hostile board could otherwise
//! plant a layer under a key every build of the fleet reuses). Each entry
//! keeps when its layer was made: an image made of cached layers gets
//! the same timestamps, and so the same digest, every time.

use bramble_api::protocol::LayerRef;
use serde::{Deserialize, Serialize};

use crate::store::{KvWrite, Store, StoreError};

const TABLE: &str = "kv_build_cache";

fn key(node: &str, cache_key: &str) -> String {
    format!("{node}\n{cache_key}")
}

/// A cached layer and when it was made (RFC 3339).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    pub layer: LayerRef,
    pub created: String,
}

/// The layer `node` made for `cache_key`, if any.
pub fn get(store: &Store, node: &str, cache_key: &str) -> Option<Entry> {
    let bytes = store.kv_get(TABLE, &key(node, cache_key)).ok()??;
    serde_json::from_slice(&bytes).ok()
}

/// Records the layers `node` made, by cache key.
pub async fn put(store: &Store, node: &str, layers: &[(String, Entry)]) -> Result<(), StoreError> {
    if layers.is_empty() {
        return Ok(());
    }
    let writes = layers
        .iter()
        .map(|(k, l)| KvWrite {
            table: TABLE,
            key: key(node, k),
            value: Some(serde_json::to_vec(l).expect("an entry serializes")),
        })
        .collect();
    store.kv_write(writes).await
}

/// Every layer the cache references (kept by the registry's collection).
pub fn all_layers(store: &Store) -> Vec<LayerRef> {
    store
        .kv_list(TABLE, "")
        .unwrap_or_default()
        .into_iter()
        .filter_map(|(_, v)| serde_json::from_slice::<Entry>(&v).ok())
        .map(|e| e.layer)
        .collect()
}
