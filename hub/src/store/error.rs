//! Store errors: each maps onto one Kubernetes `Status`.

use bramble_api::{ResourceInfo, Status};

/// Why a store operation failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{} \"{name}\" not found", resource.display_name())]
    NotFound {
        resource: &'static ResourceInfo,
        name: String,
    },
    #[error("namespaces \"{0}\" not found")]
    NamespaceNotFound(String),
    #[error("{} \"{name}\" already exists", resource.display_name())]
    AlreadyExists {
        resource: &'static ResourceInfo,
        name: String,
    },
    #[error("{} \"{name}\": resourceVersion {given} is stale (current {current})", resource.display_name())]
    Conflict {
        resource: &'static ResourceInfo,
        name: String,
        given: u64,
        current: u64,
    },
    #[error("too old resource version: {requested} (oldest available {oldest})")]
    Gone { requested: u64, oldest: u64 },
    #[error("store database error: {0}")]
    Db(#[from] redb::Error),
    #[error("stored object {key} in {table} is not valid JSON: {source}")]
    Corrupt {
        table: &'static str,
        key: String,
        source: serde_json::Error,
    },
    #[error("stored value {key} in {table} cannot be opened: {source}")]
    Sealed {
        table: &'static str,
        key: String,
        source: super::SealError,
    },
    #[error("the store is shutting down")]
    Closed,
    /// Only object writes can be dry runs.
    #[error("this write cannot be a dry run")]
    DryRunUnsupported,
}

impl From<redb::TransactionError> for StoreError {
    fn from(e: redb::TransactionError) -> Self {
        StoreError::Db(e.into())
    }
}
impl From<redb::TableError> for StoreError {
    fn from(e: redb::TableError) -> Self {
        StoreError::Db(e.into())
    }
}
impl From<redb::StorageError> for StoreError {
    fn from(e: redb::StorageError) -> Self {
        StoreError::Db(e.into())
    }
}
impl From<redb::CommitError> for StoreError {
    fn from(e: redb::CommitError) -> Self {
        StoreError::Db(e.into())
    }
}

fn plural_group(r: &ResourceInfo) -> String {
    if r.group.is_empty() {
        r.plural.to_string()
    } else {
        format!("{}.{}", r.plural, r.group)
    }
}

impl StoreError {
    /// The Kubernetes `Status` a client sees.
    pub fn to_status(&self) -> Status {
        match self {
            StoreError::NotFound { resource, name } => {
                Status::not_found(&plural_group(resource), name)
            }
            StoreError::NamespaceNotFound(ns) => Status::not_found("namespaces", ns),
            StoreError::AlreadyExists { resource, name } => {
                Status::already_exists(&plural_group(resource), name)
            }
            StoreError::Conflict {
                resource,
                name,
                given,
                current,
            } => Status::conflict(
                &plural_group(resource),
                name,
                &format!(
                    "the object has been modified (resourceVersion {given} is stale, current is {current})"
                ),
            ),
            StoreError::Gone { .. } => Status::gone(self.to_string()),
            StoreError::Db(_)
            | StoreError::Corrupt { .. }
            | StoreError::Sealed { .. }
            | StoreError::Closed
            | StoreError::DryRunUnsupported => Status::internal(self.to_string()),
        }
    }
}
