//! redb table layout: one table per resource kind (key `ns/name` or `name`,
//! value the object's canonical JSON) and a `meta` table holding the revision.

use bramble_api::ResourceInfo;
use redb::{ReadableDatabase, TableDefinition};
use serde_json::Value;

use super::StoreError;
use super::sealing::{self, Sealer};

/// `meta` table: `revision` -> last committed store revision.
pub const META: TableDefinition<&str, u64> = TableDefinition::new("meta");
/// Key of the revision counter in [`META`].
pub const REVISION: &str = "revision";

/// The table holding objects of `resource`.
pub fn objects(
    resource: &'static ResourceInfo,
) -> TableDefinition<'static, &'static str, &'static [u8]> {
    TableDefinition::new(resource.plural)
}

/// Opens a stored value (unsealing it when sealed).
pub fn open(
    sealer: Option<&Sealer>,
    table: &'static str,
    key: &str,
    bytes: &[u8],
) -> Result<Vec<u8>, StoreError> {
    sealing::open_with(sealer, table, key, bytes)
        .map(|b| b.into_owned())
        .map_err(|source| StoreError::Sealed {
            table,
            key: key.to_string(),
            source,
        })
}

/// Decodes a stored object (unsealing it when sealed).
pub fn decode(
    sealer: Option<&Sealer>,
    table: &'static str,
    key: &str,
    bytes: &[u8],
) -> Result<Value, StoreError> {
    let bytes =
        sealing::open_with(sealer, table, key, bytes).map_err(|source| StoreError::Sealed {
            table,
            key: key.to_string(),
            source,
        })?;
    serde_json::from_slice(&bytes).map_err(|source| StoreError::Corrupt {
        table,
        key: key.to_string(),
        source,
    })
}

/// Range bounds covering every key in namespace `ns` (`ns/` up to `ns0`).
pub fn namespace_range(ns: &str) -> (String, String) {
    (format!("{ns}/"), format!("{ns}0"))
}

/// Reads the current revision (0 for a new database).
pub fn read_revision(db: &redb::Database) -> Result<u64, StoreError> {
    let txn = db.begin_read()?;
    match txn.open_table(META) {
        Ok(t) => Ok(t.get(REVISION)?.map(|g| g.value()).unwrap_or(0)),
        Err(redb::TableError::TableDoesNotExist(_)) => Ok(0),
        Err(e) => Err(e.into()),
    }
}
