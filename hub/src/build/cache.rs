//! The layer cache of builds: which layer a step of a given cache key
//! made, per node (raw `kv_build_cache` table in the hub store). A layer is
//! reused only on the node that made it: a board is trusted with its own
//! builds, never with another board's (a hostile board could otherwise
//! plant a layer under a key every build of the fleet reuses).

use bramble_api::protocol::LayerRef;

use crate::store::{KvWrite, Store, StoreError};

const TABLE: &str = "kv_build_cache";

fn key(node: &str, cache_key: &str) -> String {
    format!("{node}\n{cache_key}")
}

/// The layer `node` made for `cache_key`, if any.
pub fn get(store: &Store, node: &str, cache_key: &str) -> Option<LayerRef> {
    let bytes = store.kv_get(TABLE, &key(node, cache_key)).ok()??;
    serde_json::from_slice(&bytes).ok()
}

/// Records the layers `node` made, by cache key.
pub async fn put(
    store: &Store,
    node: &str,
    layers: &[(String, LayerRef)],
) -> Result<(), StoreError> {
    if layers.is_empty() {
        return Ok(());
    }
    let writes = layers
        .iter()
        .map(|(k, l)| KvWrite {
            table: TABLE,
            key: key(node, k),
            value: Some(serde_json::to_vec(l).expect("a layer serializes")),
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
        .filter_map(|(_, v)| serde_json::from_slice(&v).ok())
        .collect()
}
