//! The cluster store: typed redb tables, one monotonic revision, a single
//! group-committing writer, snapshot reads and watches from a revision.
//!
//! Every acknowledged write is durable (redb's default `Durability::Immediate`;
//! quick repair off unless [`StoreOptions::quick_repair`] asks for it, and the
//! hub does not). An idle store writes nothing: no timers, no background flushes.

mod error;
mod metrics;
pub mod object;
pub mod sealing;
mod tables;
mod watch;
mod writer;

use std::path::Path;
use std::sync::Arc;

use bramble_api::{ResourceInfo, Selector};
use redb::{ReadableDatabase, ReadableTable};
use serde_json::Value;
use tokio::sync::{mpsc, oneshot};

pub use error::StoreError;
pub use metrics::StoreMetrics;
pub use sealing::{Keyring, SealError, Sealer};
pub use watch::{Event, EventType, Watch, WatchFilter};
pub use writer::{KvWrite, WriteOp, WriteOutcome};

use watch::EventLog;
use writer::{Msg, Request};

/// Events kept in memory for watches that resume from a revision.
const WATCH_HISTORY: usize = 10_000;

/// Options for opening a store.
#[derive(Debug, Clone)]
pub struct StoreOptions {
    /// redb page cache in bytes. Small by default: the hub must idle small.
    pub cache_bytes: usize,
    /// Events retained for watch resumption...
    pub watch_history: usize,
    /// ...and at most about this many bytes of them.
    pub watch_history_bytes: usize,
    /// Save redb's allocator state at every commit so that opening after a
    /// crash is instant. Off by default: it costs ~30% of write throughput, and
    /// a full repair of a hub-sized store takes well under a second.
    pub quick_repair: bool,
    /// Seals the values of the tables it covers (Secrets, join tokens); `None`
    /// stores everything as written (tests of other things).
    pub sealer: Option<Arc<Sealer>>,
}

impl Default for StoreOptions {
    fn default() -> Self {
        StoreOptions {
            cache_bytes: 8 * 1024 * 1024,
            quick_repair: false,
            watch_history: WATCH_HISTORY,
            watch_history_bytes: 4 * 1024 * 1024,
            sealer: None,
        }
    }
}

/// A handle to the store; cheap to clone.
#[derive(Clone)]
pub struct Store {
    db: Arc<redb::Database>,
    tx: mpsc::Sender<Msg>,
    log: Arc<EventLog>,
    metrics: Arc<StoreMetrics>,
    sealer: Option<Arc<Sealer>>,
    /// Writes through this handle are checked and answered but never
    /// committed (`?dryRun=All`): see [`Store::dry_run`].
    dry_run: bool,
}

/// A snapshot list of one kind.
#[derive(Debug, Clone)]
pub struct ListResult {
    pub items: Vec<Value>,
    /// The store revision the snapshot reflects.
    pub revision: u64,
}

impl Store {
    /// Opens (or creates) the database at `path` and starts the writer thread.
    pub fn open(path: &Path, opts: StoreOptions) -> Result<Store, StoreError> {
        let db = redb::Database::builder()
            .set_cache_size(opts.cache_bytes)
            .create(path)
            .map_err(|e| StoreError::Db(e.into()))?;
        let mut db = db;
        if let Some(sealer) = &opts.sealer {
            let sealed = writer::reseal_all(&db, sealer)?;
            if sealed.plain > 0 {
                // The plain copies are in freed pages now: compacting rewrites
                // the file without them.
                db.compact().map_err(|e| StoreError::Db(e.into()))?;
            }
            if sealed.any() {
                tracing::info!(
                    plain = sealed.plain,
                    old_key = sealed.old_key,
                    "sealed stored values with the active key"
                );
            }
        }
        let db = Arc::new(db);
        let revision = tables::read_revision(&db)?;
        let log = Arc::new(EventLog::new(
            revision,
            opts.watch_history,
            opts.watch_history_bytes,
        ));
        let metrics = Arc::new(StoreMetrics::default());
        metrics.set_revision(revision);
        let (tx, rx) = mpsc::channel(4096);
        let quick_repair = opts.quick_repair;
        {
            let (db, log, metrics) = (db.clone(), log.clone(), metrics.clone());
            let sealer = opts.sealer.clone();
            std::thread::Builder::new()
                .name("store-writer".into())
                .spawn(move || writer::run(db, rx, log, metrics, quick_repair, sealer))
                .map_err(|e| StoreError::Db(redb::Error::Io(e)))?;
        }
        tracing::info!(path = %path.display(), revision, "store opened");
        Ok(Store {
            db,
            tx,
            log,
            metrics,
            sealer: opts.sealer,
            dry_run: false,
        })
    }

    /// Queues a write and waits until it is committed durably (for a
    /// [`Store::dry_run`] handle: until it was tried and rolled back).
    pub async fn write(&self, op: WriteOp) -> Result<WriteOutcome, StoreError> {
        let (reply, rx) = oneshot::channel();
        let dry_run = self.dry_run;
        self.tx
            .send(Msg::Write(Request { op, reply, dry_run }))
            .await
            .map_err(|_| StoreError::Closed)?;
        rx.await.map_err(|_| StoreError::Closed)?
    }

    /// Queues `ops` together, so that they are applied in one transaction
    /// (one group commit), and waits until it is committed; answers each in
    /// order. One op's refusal (exists, not found...) does not stop the others.
    pub async fn write_all(&self, ops: Vec<WriteOp>) -> Vec<Result<WriteOutcome, StoreError>> {
        let mut replies = Vec::with_capacity(ops.len());
        let requests: Vec<Request> = ops
            .into_iter()
            .map(|op| {
                let (reply, rx) = oneshot::channel();
                replies.push(rx);
                Request {
                    op,
                    reply,
                    dry_run: self.dry_run,
                }
            })
            .collect();
        if requests.is_empty() {
            return Vec::new();
        }
        if self.tx.send(Msg::Batch(requests)).await.is_err() {
            return replies.iter().map(|_| Err(StoreError::Closed)).collect();
        }
        let mut out = Vec::with_capacity(replies.len());
        for rx in replies {
            out.push(rx.await.unwrap_or(Err(StoreError::Closed)));
        }
        out
    }

    /// The same store, but its writes are dry runs: each is applied in a
    /// transaction of its own that is then aborted, so the answer (the object
    /// as it would be stored, or the refusal: exists, stale version...) is
    /// the real one and nothing is written, no revision taken, no event sent.
    pub fn dry_run(&self) -> Store {
        Store {
            dry_run: true,
            ..self.clone()
        }
    }

    /// Whether this handle's writes are dry runs.
    pub fn is_dry_run(&self) -> bool {
        self.dry_run
    }

    /// Creates an admitted object.
    pub async fn create(
        &self,
        resource: &'static ResourceInfo,
        object: Value,
    ) -> Result<Value, StoreError> {
        match self.write(WriteOp::Create { resource, object }).await? {
            WriteOutcome::Created(v) => Ok(v),
            other => unreachable!("create answered {other:?}"),
        }
    }

    /// Replaces an object's spec/metadata; returns it and whether anything changed.
    pub async fn update(
        &self,
        resource: &'static ResourceInfo,
        object: Value,
    ) -> Result<(Value, bool), StoreError> {
        match self.write(WriteOp::Update { resource, object }).await? {
            WriteOutcome::Updated { object, changed } => Ok((object, changed)),
            other => unreachable!("update answered {other:?}"),
        }
    }

    /// Replaces an object's status only.
    pub async fn update_status(
        &self,
        resource: &'static ResourceInfo,
        object: Value,
    ) -> Result<(Value, bool), StoreError> {
        match self
            .write(WriteOp::UpdateStatus { resource, object })
            .await?
        {
            WriteOutcome::Updated { object, changed } => Ok((object, changed)),
            other => unreachable!("update_status answered {other:?}"),
        }
    }

    /// Deletes an object; returns it as it was.
    pub async fn delete(
        &self,
        resource: &'static ResourceInfo,
        namespace: Option<&str>,
        name: &str,
        precondition: Option<u64>,
    ) -> Result<Value, StoreError> {
        let op = WriteOp::Delete {
            resource,
            namespace: namespace.map(str::to_string),
            name: name.to_string(),
            precondition,
        };
        match self.write(op).await? {
            WriteOutcome::Deleted(v) => Ok(v),
            other => unreachable!("delete answered {other:?}"),
        }
    }

    /// Reads one object from a snapshot.
    pub fn get(
        &self,
        resource: &'static ResourceInfo,
        namespace: Option<&str>,
        name: &str,
    ) -> Result<Option<Value>, StoreError> {
        let ns = if resource.namespaced { namespace } else { None };
        let key = object::key(ns, name);
        let txn = self.db.begin_read()?;
        let table = match txn.open_table(tables::objects(resource)) {
            Ok(t) => t,
            Err(redb::TableError::TableDoesNotExist(_)) => return Ok(None),
            Err(e) => return Err(e.into()),
        };
        let v = table.get(key.as_str())?;
        v.map(|g| tables::decode(self.sealer.as_deref(), resource.plural, &key, g.value()))
            .transpose()
    }

    /// Lists objects of a kind (in one namespace or all) matching `selector`.
    pub fn list(
        &self,
        resource: &'static ResourceInfo,
        namespace: Option<&str>,
        selector: &Selector,
    ) -> Result<ListResult, StoreError> {
        let txn = self.db.begin_read()?;
        let revision = match txn.open_table(tables::META) {
            Ok(t) => t.get(tables::REVISION)?.map(|g| g.value()).unwrap_or(0),
            Err(redb::TableError::TableDoesNotExist(_)) => 0,
            Err(e) => return Err(e.into()),
        };
        let table = match txn.open_table(tables::objects(resource)) {
            Ok(t) => t,
            Err(redb::TableError::TableDoesNotExist(_)) => {
                return Ok(ListResult {
                    items: vec![],
                    revision,
                });
            }
            Err(e) => return Err(e.into()),
        };
        let mut items = Vec::new();
        let mut push = |k: &str, v: &[u8]| -> Result<(), StoreError> {
            let obj = tables::decode(self.sealer.as_deref(), resource.plural, k, v)?;
            if selector.matches_json(obj["metadata"].get("labels")) {
                items.push(obj);
            }
            Ok(())
        };
        match namespace.filter(|_| resource.namespaced) {
            Some(ns) => {
                let (lo, hi) = tables::namespace_range(ns);
                for entry in table.range(lo.as_str()..hi.as_str())? {
                    let (k, v) = entry?;
                    push(k.value(), v.value())?;
                }
            }
            None => {
                for entry in table.iter()? {
                    let (k, v) = entry?;
                    push(k.value(), v.value())?;
                }
            }
        }
        Ok(ListResult { items, revision })
    }

    /// Writes raw `kv_` entries atomically and durably (group-committed with
    /// everything else).
    pub async fn kv_write(&self, writes: Vec<KvWrite>) -> Result<(), StoreError> {
        self.write(WriteOp::Kv(writes)).await.map(|_| ())
    }

    /// Reads one raw entry.
    pub fn kv_get(&self, table: &'static str, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let txn = self.db.begin_read()?;
        let def: redb::TableDefinition<&str, &[u8]> = redb::TableDefinition::new(table);
        let t = match txn.open_table(def) {
            Ok(t) => t,
            Err(redb::TableError::TableDoesNotExist(_)) => return Ok(None),
            Err(e) => return Err(e.into()),
        };
        t.get(key)?
            .map(|g| tables::open(self.sealer.as_deref(), table, key, g.value()))
            .transpose()
    }

    /// Reads every raw entry whose key starts with `prefix`, in key order.
    pub fn kv_list(
        &self,
        table: &'static str,
        prefix: &str,
    ) -> Result<Vec<(String, Vec<u8>)>, StoreError> {
        let txn = self.db.begin_read()?;
        let def: redb::TableDefinition<&str, &[u8]> = redb::TableDefinition::new(table);
        let t = match txn.open_table(def) {
            Ok(t) => t,
            Err(redb::TableError::TableDoesNotExist(_)) => return Ok(vec![]),
            Err(e) => return Err(e.into()),
        };
        let mut out = Vec::new();
        for entry in t.range(prefix..)? {
            let (k, v) = entry?;
            if !k.value().starts_with(prefix) {
                break;
            }
            let value = tables::open(self.sealer.as_deref(), table, k.value(), v.value())?;
            out.push((k.value().to_string(), value));
        }
        Ok(out)
    }

    /// Seals every value of the covered tables that is plain or under a key
    /// other than the active one (after a key rotation); returns how many.
    pub async fn reseal(&self) -> Result<usize, StoreError> {
        match self.write(WriteOp::Reseal).await? {
            WriteOutcome::Resealed(n) => Ok(n),
            other => unreachable!("reseal answered {other:?}"),
        }
    }

    /// The sealer the store was opened with.
    pub fn sealer(&self) -> Option<&Arc<Sealer>> {
        self.sealer.as_ref()
    }

    /// Commits what is queued, stops the writer and waits for it. Later writes
    /// through any clone fail with `Closed`; the file is released once every
    /// clone is dropped.
    pub async fn shutdown(self) {
        let (done, rx) = oneshot::channel();
        if self.tx.send(Msg::Close(done)).await.is_ok() {
            let _ = rx.await;
        }
    }

    /// The committed revision.
    pub fn revision(&self) -> Result<u64, StoreError> {
        tables::read_revision(&self.db)
    }

    /// Watches for changes after revision `from`; `Err(Gone)` if `from` is older
    /// than the retained history.
    pub fn watch(&self, filter: WatchFilter, from: u64) -> Result<Watch, StoreError> {
        self.log.subscribe(filter, from)
    }

    /// Wakes on every committed object change (unfiltered; a lagging
    /// receiver just re-reads the store). Counts as a watcher.
    pub fn changes(&self) -> tokio::sync::broadcast::Receiver<Arc<Event>> {
        self.log.raw()
    }

    /// Live watcher count.
    pub fn watchers(&self) -> usize {
        self.log.watchers()
    }

    /// Store counters for `/metrics`.
    pub fn metrics(&self) -> &StoreMetrics {
        &self.metrics
    }
}

#[cfg(test)]
mod tests;
