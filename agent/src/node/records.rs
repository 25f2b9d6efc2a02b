//! The agent's local state: one [`PodRecord`] file per running pod,
//! `RUN_DIR/pods/<pod-id>.json`, on tmpfs (records hold Secret env).
//! Written atomically (temp file + rename) and **only when the content
//! changed**: [`Records::save`] compares with what it last wrote. A record
//! that cannot be used is an [`UnusableRecord`].

use std::collections::HashMap;
use std::io;
use std::path::{Path, PathBuf};

use crate::pod::PodRecord;
use crate::pod::record::RECORD_VERSION;

/// The record files. See the module docs.
#[derive(Debug)]
pub struct Records {
    dir: PathBuf,
    written: HashMap<String, Vec<u8>>,
}

/// Why a record file cannot be used (its pod is cleaned up).
#[derive(Debug, thiserror::Error)]
pub enum UnusableRecord {
    /// `reason`: the decoder's message.
    #[error("{path}: {reason}")]
    Decode { path: PathBuf, reason: String },
    /// Of another record version, or of another pod than its file name says.
    #[error("record version {version} / id {pod_id:?} not usable")]
    Other { version: u32, pod_id: String },
}

fn ctx(what: &str, path: &Path) -> impl FnOnce(io::Error) -> io::Error {
    let msg = format!("{what} {}", path.display());
    move |e| io::Error::new(e.kind(), format!("{msg}: {e}"))
}

impl Records {
    /// Opens (creating) `dir`.
    pub fn open(dir: impl Into<PathBuf>) -> io::Result<Records> {
        let dir = dir.into();
        std::fs::create_dir_all(&dir).map_err(ctx("creating", &dir))?;
        Ok(Records {
            dir,
            written: HashMap::new(),
        })
    }

    fn path(&self, pod_id: &str) -> PathBuf {
        self.dir.join(format!("{pod_id}.json"))
    }

    /// Every record; unreadable ones (or of another version) are returned
    /// as errors with their pod id, so their pods can be cleaned up.
    pub fn load_all(&mut self) -> io::Result<Vec<Result<PodRecord, (String, UnusableRecord)>>> {
        let mut out = Vec::new();
        for entry in std::fs::read_dir(&self.dir).map_err(ctx("listing", &self.dir))? {
            let path = entry?.path();
            let Some(id) = path
                .file_name()
                .and_then(|n| n.to_str())
                .and_then(|n| n.strip_suffix(".json"))
            else {
                continue;
            };
            let id = id.to_string();
            let bytes = std::fs::read(&path).map_err(ctx("reading", &path))?;
            match bramble_api::decode::decode_slice::<PodRecord>(&bytes) {
                Ok(r) if r.version == RECORD_VERSION && r.pod_id == id => {
                    self.written.insert(id, bytes);
                    out.push(Ok(r));
                }
                Ok(r) => out.push(Err((
                    id,
                    UnusableRecord::Other {
                        version: r.version,
                        pod_id: r.pod_id,
                    },
                ))),
                Err(reason) => out.push(Err((id, UnusableRecord::Decode { path, reason }))),
            }
        }
        Ok(out)
    }

    /// Writes `record` if it differs from what was last written; returns
    /// whether it wrote.
    pub fn save(&mut self, record: &PodRecord) -> io::Result<bool> {
        let bytes = serde_json::to_vec(record).map_err(io::Error::other)?;
        if self.written.get(&record.pod_id) == Some(&bytes) {
            return Ok(false);
        }
        let path = self.path(&record.pod_id);
        let tmp = self.dir.join(format!(".{}.tmp", record.pod_id));
        std::fs::write(&tmp, &bytes).map_err(ctx("writing", &tmp))?;
        std::fs::rename(&tmp, &path).map_err(ctx("renaming into", &path))?;
        self.written.insert(record.pod_id.clone(), bytes);
        Ok(true)
    }

    /// Removes the record of `pod_id` (missing is fine).
    pub fn remove(&mut self, pod_id: &str) -> io::Result<()> {
        self.written.remove(pod_id);
        let path = self.path(pod_id);
        match std::fs::remove_file(&path) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => Err(ctx("removing", &path)(e)),
            _ => Ok(()),
        }
    }
}
