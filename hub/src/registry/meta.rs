//! Registry metadata in redb (raw `kv_` tables in the hub store, committed with
//! everything else): which manifests each repository has, with their media
//! types, and tags. Blobs themselves live in the blob store on disk.

use bramble_images::Digest;

use crate::store::{KvWrite, Store, StoreError};

/// `repo@sha256:…` -> media type.
const MANIFESTS: &str = "kv_registry_manifests";
/// `repo:tag` -> `sha256:…`.
const TAGS: &str = "kv_registry_tags";

fn manifest_key(repo: &str, d: &Digest) -> String {
    format!("{repo}@{d}")
}

fn tag_key(repo: &str, tag: &str) -> String {
    format!("{repo}:{tag}")
}

/// Typed access to the registry tables.
#[derive(Clone)]
pub struct Meta {
    store: Store,
}

impl Meta {
    pub fn new(store: Store) -> Self {
        Meta { store }
    }

    /// The store the tables live in.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// The manifest a tag points at.
    pub fn tag(&self, repo: &str, tag: &str) -> Result<Option<Digest>, StoreError> {
        Ok(self
            .store
            .kv_get(TAGS, &tag_key(repo, tag))?
            .and_then(|v| String::from_utf8(v).ok())
            .and_then(|s| s.parse().ok()))
    }

    /// Tags of a repository with their digests, sorted by tag.
    pub fn tags(&self, repo: &str) -> Result<Vec<(String, Digest)>, StoreError> {
        let prefix = format!("{repo}:");
        Ok(self
            .store
            .kv_list(TAGS, &prefix)?
            .into_iter()
            .filter_map(|(k, v)| {
                let d = String::from_utf8(v).ok()?.parse().ok()?;
                Some((k[prefix.len()..].to_string(), d))
            })
            .collect())
    }

    /// Media type of a manifest the repository has.
    pub fn manifest(&self, repo: &str, d: &Digest) -> Result<Option<String>, StoreError> {
        Ok(self
            .store
            .kv_get(MANIFESTS, &manifest_key(repo, d))?
            .and_then(|v| String::from_utf8(v).ok()))
    }

    /// Every (repository, manifest digest, media type).
    pub fn all_manifests(&self) -> Result<Vec<(String, Digest, String)>, StoreError> {
        Ok(self
            .store
            .kv_list(MANIFESTS, "")?
            .into_iter()
            .filter_map(|(k, v)| {
                let (repo, d) = k.rsplit_once('@')?;
                Some((
                    repo.to_string(),
                    d.parse().ok()?,
                    String::from_utf8(v).ok()?,
                ))
            })
            .collect())
    }

    /// Every (repository, tag, digest).
    pub fn all_tags(&self) -> Result<Vec<(String, String, Digest)>, StoreError> {
        Ok(self
            .store
            .kv_list(TAGS, "")?
            .into_iter()
            .filter_map(|(k, v)| {
                let (repo, tag) = k.rsplit_once(':')?;
                Some((
                    repo.to_string(),
                    tag.to_string(),
                    String::from_utf8(v).ok()?.parse().ok()?,
                ))
            })
            .collect())
    }

    /// Repository names, sorted.
    pub fn repositories(&self) -> Result<Vec<String>, StoreError> {
        let mut repos: Vec<String> = self
            .all_manifests()?
            .into_iter()
            .map(|(r, _, _)| r)
            .collect();
        repos.sort();
        repos.dedup();
        Ok(repos)
    }

    /// Records a manifest (and optionally a tag pointing at it) atomically.
    pub async fn put_manifest(
        &self,
        repo: &str,
        d: &Digest,
        media_type: &str,
        tag: Option<&str>,
    ) -> Result<(), StoreError> {
        let mut writes = vec![KvWrite {
            table: MANIFESTS,
            key: manifest_key(repo, d),
            value: Some(media_type.as_bytes().to_vec()),
        }];
        if let Some(t) = tag {
            writes.push(KvWrite {
                table: TAGS,
                key: tag_key(repo, t),
                value: Some(d.to_string().into_bytes()),
            });
        }
        self.store.kv_write(writes).await
    }

    /// Removes a tag.
    pub async fn delete_tag(&self, repo: &str, tag: &str) -> Result<(), StoreError> {
        self.store
            .kv_write(vec![KvWrite {
                table: TAGS,
                key: tag_key(repo, tag),
                value: None,
            }])
            .await
    }

    /// Removes a manifest from a repository with every tag pointing at it.
    pub async fn delete_manifest(&self, repo: &str, d: &Digest) -> Result<(), StoreError> {
        let mut writes = vec![KvWrite {
            table: MANIFESTS,
            key: manifest_key(repo, d),
            value: None,
        }];
        for (tag, td) in self.tags(repo)? {
            if &td == d {
                writes.push(KvWrite {
                    table: TAGS,
                    key: tag_key(repo, &tag),
                    value: None,
                });
            }
        }
        self.store.kv_write(writes).await
    }
}
