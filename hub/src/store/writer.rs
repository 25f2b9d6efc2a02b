//! The single writer: applies queued writes in batches, one durable redb
//! transaction per batch (group commit), then answers every caller and publishes
//! the events. Callers are acknowledged only after the commit returned.
//!
//! Length: over 600 lines because one concept (the single writer: queue,
//! batch, commit, acknowledge, publish); split, its invariants would be
//! spread over files.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Instant, SystemTime};

use bramble_api::ResourceInfo;
use redb::{ReadableTable, WriteTransaction};
use serde_json::Value;
use tokio::sync::{mpsc, oneshot};

use super::object as obj;
use super::sealing::Sealer;
use super::tables::{self, META, REVISION};
use super::watch::{Event, EventLog, EventType};
use super::{StoreError, StoreMetrics};

/// Most writes folded into one transaction.
const MAX_BATCH: usize = 1024;

/// One write a caller asks for.
#[derive(Debug)]
pub enum WriteOp {
    /// Store a new object (already admitted). Fails if it exists.
    Create {
        resource: &'static ResourceInfo,
        object: Value,
    },
    /// Replace the object's spec and metadata, keeping its status. A set
    /// `metadata.resourceVersion` is a precondition.
    Update {
        resource: &'static ResourceInfo,
        object: Value,
    },
    /// Replace only the object's `status`.
    UpdateStatus {
        resource: &'static ResourceInfo,
        object: Value,
    },
    /// Set (`Some`) or remove (`None`) raw entries of `kv_` tables, atomically.
    /// Not Kubernetes objects: no revision, no events (e.g. registry tags).
    Kv(Vec<KvWrite>),
    /// Seal again every value of the sealer's tables that is plain or under an
    /// old key (after a key rotation). No revision, no events.
    Reseal,
    /// Remove an object (and, for a Namespace, everything in it).
    Delete {
        resource: &'static ResourceInfo,
        namespace: Option<String>,
        name: String,
        precondition: Option<u64>,
    },
}

/// One raw entry write; `table` must start with `kv_`.
#[derive(Debug, Clone)]
pub struct KvWrite {
    pub table: &'static str,
    pub key: String,
    pub value: Option<Vec<u8>>,
}

/// What a write did.
#[derive(Debug, Clone)]
pub enum WriteOutcome {
    Created(Value),
    /// `changed` is false when the update was a no-op (nothing written).
    Updated {
        object: Value,
        changed: bool,
    },
    Deleted(Value),
    /// Raw entries written.
    Kv,
    /// Values sealed again.
    Resealed(usize),
}

pub(super) struct Request {
    pub op: WriteOp,
    pub reply: oneshot::Sender<Result<WriteOutcome, StoreError>>,
    /// Try the write in a transaction of its own and roll it back.
    pub dry_run: bool,
}

/// What the writer thread receives.
pub(super) enum Msg {
    Write(Request),
    /// Writes that go into the same transaction (one group commit).
    Batch(Vec<Request>),
    /// Finish queued writes, then stop and signal.
    Close(oneshot::Sender<()>),
}

/// Runs the writer loop until every sender is dropped.
pub(super) fn run(
    db: Arc<redb::Database>,
    mut rx: mpsc::Receiver<Msg>,
    log: Arc<EventLog>,
    metrics: Arc<StoreMetrics>,
    quick_repair: bool,
    sealer: Option<Arc<Sealer>>,
) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    let mut closing = None;
    while closing.is_none() {
        match rx.blocking_recv() {
            Some(Msg::Write(r)) => batch.push(r),
            Some(Msg::Batch(rs)) => batch.extend(rs),
            Some(Msg::Close(done)) => {
                closing = Some(done);
                break;
            }
            None => break,
        }
        while batch.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(Msg::Write(r)) => batch.push(r),
                Ok(Msg::Batch(rs)) => batch.extend(rs),
                Ok(Msg::Close(done)) => {
                    closing = Some(done);
                    break;
                }
                Err(_) => break,
            }
        }
        // Dry runs go alone, each in a transaction that is aborted, after
        // the real writes queued before them.
        let dry: Vec<Request> = batch.extract_if(.., |r| r.dry_run).collect();
        let started = Instant::now();
        let n = batch.len();
        if let Some(rev) = commit_batch(&db, &mut batch, &log, quick_repair, sealer.as_deref()) {
            metrics.set_revision(rev);
        }
        metrics.record_commit(n, started.elapsed());
        tracing::trace!(
            writes = n,
            elapsed_us = started.elapsed().as_micros() as u64,
            "batch committed"
        );
        for req in dry {
            try_and_roll_back(&db, req, sealer.as_deref());
        }
    }
    drop(db);
    tracing::debug!("store writer stopped");
    if let Some(done) = closing {
        let _ = done.send(());
    }
}

/// Applies and commits one batch; returns the revision after it when it committed.
fn commit_batch(
    db: &redb::Database,
    batch: &mut Vec<Request>,
    log: &EventLog,
    quick_repair: bool,
    sealer: Option<&Sealer>,
) -> Option<u64> {
    let mut results = Vec::with_capacity(batch.len());
    let mut events = Vec::new();
    let outcome = (|| -> Result<u64, StoreError> {
        let mut txn = db.begin_write()?;
        // Quick repair (allocator state saved at every commit) costs ~30% of
        // commit throughput here; without it, opening after a crash walks the
        // trees once (measured in the crash test), which a small hub store affords.
        txn.set_quick_repair(quick_repair);
        let mut rev = {
            let meta = txn.open_table(META)?;
            meta.get(REVISION)?.map(|g| g.value()).unwrap_or(0)
        };
        let start_rev = rev;
        let mut dirty = false;
        let mut open = Tables::new(&txn, sealer);
        for req in batch.iter_mut() {
            let op = std::mem::replace(
                &mut req.op,
                WriteOp::Delete {
                    resource: &bramble_api::RESOURCES[0],
                    namespace: None,
                    name: String::new(),
                    precondition: None,
                },
            );
            if let WriteOp::Kv(writes) = op {
                results.push(apply_kv(&txn, sealer, writes));
                dirty |= results.last().is_some_and(|r| r.is_ok());
            } else if let WriteOp::Reseal = op {
                let r = match sealer {
                    Some(s) => reseal(&txn, s).map(|n| n.plain + n.old_key),
                    None => Ok(0),
                };
                dirty |= r.as_ref().is_ok_and(|n| *n > 0);
                results.push(r.map(WriteOutcome::Resealed));
            } else {
                results.push(apply(&mut open, &mut rev, op, &mut events));
            }
            // A storage error leaves the transaction unusable: give up on the batch.
            if let Some(Err(StoreError::Db(_))) = results.last() {
                return Err(results
                    .pop()
                    .and_then(|r| r.err())
                    .unwrap_or(StoreError::Closed));
            }
        }
        drop(open);
        if rev == start_rev && !dirty {
            // Nothing changed (all no-ops or refusals): write nothing to disk.
            txn.abort()?;
            return Ok(rev);
        }
        if rev != start_rev {
            txn.open_table(META)?.insert(REVISION, rev)?;
        }
        txn.commit()?;
        Ok(rev)
    })();
    match outcome {
        Ok(rev) => {
            log.publish(events);
            for (req, res) in batch.drain(..).zip(results) {
                let _ = req.reply.send(res);
            }
            Some(rev)
        }
        Err(e) => {
            tracing::error!(error = %e, writes = batch.len(), "store commit failed");
            let msg = e.to_string();
            for req in batch.drain(..) {
                let _ =
                    req.reply
                        .send(Err(StoreError::Db(redb::Error::Io(std::io::Error::other(
                            msg.clone(),
                        )))));
            }
            None
        }
    }
}

/// Applies one write in a transaction that is then aborted, and answers
/// with what it would have done (`?dryRun=All`).
fn try_and_roll_back(db: &redb::Database, mut req: Request, sealer: Option<&Sealer>) {
    let op = std::mem::replace(&mut req.op, WriteOp::Kv(Vec::new()));
    let result = (|| -> Result<WriteOutcome, StoreError> {
        let txn = db.begin_write()?;
        let mut rev = {
            let meta = txn.open_table(META)?;
            meta.get(REVISION)?.map(|g| g.value()).unwrap_or(0)
        };
        let mut events = Vec::new();
        let mut open = Tables::new(&txn, sealer);
        // Nothing is stored, so no new resourceVersion: a created object has
        // none, an updated one keeps its own (as Kubernetes answers dry runs).
        let kept_version = match &op {
            WriteOp::Update { resource, object } | WriteOp::UpdateStatus { resource, object } => {
                load(&mut open, resource, &object_key(resource, object))?
                    .map(|o| o["metadata"]["resourceVersion"].clone())
            }
            _ => None,
        };
        let outcome = match op {
            WriteOp::Create { .. }
            | WriteOp::Update { .. }
            | WriteOp::UpdateStatus { .. }
            | WriteOp::Delete { .. } => apply(&mut open, &mut rev, op, &mut events),
            WriteOp::Kv(_) | WriteOp::Reseal => Err(StoreError::DryRunUnsupported),
        };
        drop(open);
        txn.abort()?;
        Ok(match outcome? {
            WriteOutcome::Created(mut object) => {
                if let Some(meta) = object["metadata"].as_object_mut() {
                    meta.remove("resourceVersion");
                }
                WriteOutcome::Created(object)
            }
            WriteOutcome::Updated {
                mut object,
                changed,
            } => {
                if let Some(rv) = kept_version {
                    object["metadata"]["resourceVersion"] = rv;
                }
                WriteOutcome::Updated { object, changed }
            }
            other => other,
        })
    })();
    let _ = req.reply.send(result);
}

/// Object tables opened once per batch: opening a redb table costs a lookup,
/// and a batch touches few kinds many times.
struct Tables<'t> {
    txn: &'t WriteTransaction,
    sealer: Option<&'t Sealer>,
    open: HashMap<&'static str, redb::Table<'t, &'static str, &'static [u8]>>,
}

impl<'t> Tables<'t> {
    fn new(txn: &'t WriteTransaction, sealer: Option<&'t Sealer>) -> Self {
        Tables {
            txn,
            sealer,
            open: HashMap::new(),
        }
    }

    fn table(
        &mut self,
        resource: &'static ResourceInfo,
    ) -> Result<&mut redb::Table<'t, &'static str, &'static [u8]>, StoreError> {
        if !self.open.contains_key(resource.plural) {
            let t = self.txn.open_table(tables::objects(resource))?;
            self.open.insert(resource.plural, t);
        }
        Ok(self.open.get_mut(resource.plural).expect("just inserted"))
    }
}

fn apply_kv(
    txn: &WriteTransaction,
    sealer: Option<&Sealer>,
    writes: Vec<KvWrite>,
) -> Result<WriteOutcome, StoreError> {
    for w in writes {
        assert!(
            w.table.starts_with("kv_"),
            "raw table {} must start with kv_",
            w.table
        );
        let def: redb::TableDefinition<&str, &[u8]> = redb::TableDefinition::new(w.table);
        let mut t = txn.open_table(def)?;
        match &w.value {
            Some(v) => match sealer.filter(|s| s.covers(w.table)) {
                Some(s) => {
                    t.insert(w.key.as_str(), s.seal(w.table, &w.key, v).as_slice())?;
                }
                None => {
                    t.insert(w.key.as_str(), v.as_slice())?;
                }
            },
            None => {
                t.remove(w.key.as_str())?;
            }
        }
    }
    Ok(WriteOutcome::Kv)
}

fn now_rfc3339() -> String {
    humantime::format_rfc3339_seconds(SystemTime::now()).to_string()
}

fn load(
    txn: &mut Tables<'_>,
    resource: &'static ResourceInfo,
    key: &str,
) -> Result<Option<Value>, StoreError> {
    let sealer = txn.sealer;
    let table = txn.table(resource)?;
    let v = table.get(key)?;
    v.map(|g| tables::decode(sealer, resource.plural, key, g.value()))
        .transpose()
}

fn put(
    txn: &mut Tables<'_>,
    resource: &'static ResourceInfo,
    key: &str,
    value: &Value,
) -> Result<Vec<u8>, StoreError> {
    let bytes = serde_json::to_vec(value).expect("JSON values always serialize");
    match txn.sealer.filter(|s| s.covers(resource.plural)) {
        Some(s) => {
            let sealed = s.seal(resource.plural, key, &bytes);
            txn.table(resource)?.insert(key, sealed.as_slice())?;
        }
        None => {
            txn.table(resource)?.insert(key, bytes.as_slice())?;
        }
    }
    Ok(bytes)
}

fn namespace_exists(txn: &mut Tables<'_>, ns: &str) -> Result<bool, StoreError> {
    let r = bramble_api::resource::by_plural("", "v1", "namespaces").expect("registered");
    Ok(txn.table(r)?.get(ns)?.is_some())
}

fn object_key(resource: &'static ResourceInfo, object: &Value) -> String {
    let ns = if resource.namespaced {
        obj::namespace(object)
    } else {
        None
    };
    obj::key(ns, obj::name(object))
}

fn apply(
    txn: &mut Tables<'_>,
    rev: &mut u64,
    op: WriteOp,
    events: &mut Vec<Event>,
) -> Result<WriteOutcome, StoreError> {
    match op {
        WriteOp::Kv(_) => unreachable!("kv writes are applied by apply_kv"),
        WriteOp::Reseal => unreachable!("reseals are applied by reseal"),
        WriteOp::Create {
            resource,
            mut object,
        } => {
            let key = object_key(resource, &object);
            if resource.namespaced {
                let ns = obj::namespace(&object).unwrap_or("default").to_string();
                if !namespace_exists(txn, &ns)? {
                    return Err(StoreError::NamespaceNotFound(ns));
                }
            }
            if txn.table(resource)?.get(key.as_str())?.is_some() {
                return Err(StoreError::AlreadyExists {
                    resource,
                    name: obj::name(&object).to_string(),
                });
            }
            *rev += 1;
            // A uid the hub picked already stays: a Job's selector is made
            // from it before it is stored (clients' uids are dropped first).
            if object["metadata"]["uid"].as_str().is_none_or(str::is_empty) {
                obj::set_meta(&mut object, "uid", uuid::Uuid::new_v4().to_string().into());
            }
            obj::set_meta(&mut object, "resourceVersion", rev.to_string().into());
            obj::set_meta(&mut object, "generation", 1.into());
            obj::set_meta(&mut object, "creationTimestamp", now_rfc3339().into());
            let json = put(txn, resource, &key, &object)?;
            events.push(Event::new(
                *rev,
                resource,
                EventType::Added,
                &object,
                Some(&json),
            ));
            Ok(WriteOutcome::Created(object))
        }
        WriteOp::Update { resource, object } => update(txn, rev, resource, object, false, events),
        WriteOp::UpdateStatus { resource, object } => {
            update(txn, rev, resource, object, true, events)
        }
        WriteOp::Delete {
            resource,
            namespace,
            name,
            precondition,
        } => {
            let ns = if resource.namespaced {
                namespace.as_deref()
            } else {
                None
            };
            let key = obj::key(ns, &name);
            let Some(stored) = load(txn, resource, &key)? else {
                return Err(StoreError::NotFound { resource, name });
            };
            let current = obj::resource_version(&stored).ok().flatten().unwrap_or(0);
            if let Some(given) = precondition
                && given != current
            {
                return Err(StoreError::Conflict {
                    resource,
                    name,
                    given,
                    current,
                });
            }
            if resource.plural == "namespaces" {
                delete_namespace_contents(txn, rev, &name, events)?;
            }
            txn.table(resource)?.remove(key.as_str())?;
            *rev += 1;
            let mut gone = stored;
            obj::set_meta(&mut gone, "resourceVersion", rev.to_string().into());
            events.push(Event::new(*rev, resource, EventType::Deleted, &gone, None));
            Ok(WriteOutcome::Deleted(gone))
        }
    }
}

fn update(
    txn: &mut Tables<'_>,
    rev: &mut u64,
    resource: &'static ResourceInfo,
    object: Value,
    status_only: bool,
    events: &mut Vec<Event>,
) -> Result<WriteOutcome, StoreError> {
    let key = object_key(resource, &object);
    let name = obj::name(&object).to_string();
    let Some(stored) = load(txn, resource, &key)? else {
        return Err(StoreError::NotFound { resource, name });
    };
    let current = obj::resource_version(&stored).ok().flatten().unwrap_or(0);
    if let Ok(Some(given)) = obj::resource_version(&object)
        && given != current
    {
        return Err(StoreError::Conflict {
            resource,
            name,
            given,
            current,
        });
    }
    let mut next = if status_only {
        let mut next = stored.clone();
        match object.get("status") {
            Some(s) => next["status"] = s.clone(),
            None => {
                if let Some(m) = next.as_object_mut() {
                    m.remove("status");
                }
            }
        }
        next
    } else {
        let mut next = object;
        match stored.get("status") {
            Some(s) => next["status"] = s.clone(),
            None => {
                if let Some(m) = next.as_object_mut() {
                    m.remove("status");
                }
            }
        }
        for field in ["uid", "creationTimestamp", "generation"] {
            match stored["metadata"].get(field) {
                Some(v) => obj::set_meta(&mut next, field, v.clone()),
                None => obj::remove_meta(&mut next, field),
            }
        }
        if obj::spec_differs(&stored, &next) {
            obj::set_meta(
                &mut next,
                "generation",
                (obj::generation(&stored) + 1).into(),
            );
        }
        next
    };
    obj::set_meta(&mut next, "resourceVersion", current.to_string().into());
    if next == stored {
        return Ok(WriteOutcome::Updated {
            object: stored,
            changed: false,
        });
    }
    *rev += 1;
    obj::set_meta(&mut next, "resourceVersion", rev.to_string().into());
    let json = put(txn, resource, &key, &next)?;
    events.push(Event::modified(*rev, resource, &stored, &next, Some(&json)));
    Ok(WriteOutcome::Updated {
        object: next,
        changed: true,
    })
}

/// Deletes every namespaced object in `ns`, one event each.
fn delete_namespace_contents(
    txn: &mut Tables<'_>,
    rev: &mut u64,
    ns: &str,
    events: &mut Vec<Event>,
) -> Result<(), StoreError> {
    let (lo, hi) = tables::namespace_range(ns);
    let sealer = txn.sealer;
    for resource in bramble_api::RESOURCES.iter().filter(|r| r.namespaced) {
        let table = txn.table(resource)?;
        let mut doomed = Vec::new();
        for entry in table.range(lo.as_str()..hi.as_str())? {
            let (k, v) = entry?;
            doomed.push((
                k.value().to_string(),
                tables::decode(sealer, resource.plural, k.value(), v.value())?,
            ));
        }
        for (k, mut gone) in doomed {
            table.remove(k.as_str())?;
            *rev += 1;
            obj::set_meta(&mut gone, "resourceVersion", rev.to_string().into());
            events.push(Event::new(*rev, resource, EventType::Deleted, &gone, None));
        }
    }
    Ok(())
}

/// How many values a reseal sealed: plain ones and ones under an old key.
#[derive(Debug, Default, Clone, Copy)]
pub(super) struct Resealed {
    pub plain: usize,
    pub old_key: usize,
}

impl Resealed {
    pub fn any(&self) -> bool {
        self.plain + self.old_key > 0
    }
}

/// Seals again, inside `txn`, every value of `sealer`'s tables that is plain
/// or under another key than the active one. Values that do not open fail it.
fn reseal(txn: &WriteTransaction, sealer: &Sealer) -> Result<Resealed, StoreError> {
    let mut n = Resealed::default();
    for &table in sealer.tables() {
        let def: redb::TableDefinition<&str, &[u8]> = redb::TableDefinition::new(table);
        let mut t = txn.open_table(def)?;
        let mut stale = Vec::new();
        for entry in t.iter()? {
            let (k, v) = entry?;
            if sealer.is_stale(v.value()) {
                let plain = tables::open(Some(sealer), table, k.value(), v.value())?;
                if super::sealing::sealed_with(v.value()).is_none() {
                    n.plain += 1;
                } else {
                    n.old_key += 1;
                }
                stale.push((k.value().to_string(), plain));
            }
        }
        for (k, plain) in stale {
            t.insert(k.as_str(), sealer.seal(table, &k, &plain).as_slice())?;
        }
    }
    Ok(n)
}

/// [`reseal`] in a transaction of its own, committed (at open, before the
/// writer starts).
pub(super) fn reseal_all(db: &redb::Database, sealer: &Sealer) -> Result<Resealed, StoreError> {
    let txn = db.begin_write()?;
    let n = reseal(&txn, sealer)?;
    if n.any() {
        txn.commit()?;
    } else {
        txn.abort()?;
    }
    Ok(n)
}
