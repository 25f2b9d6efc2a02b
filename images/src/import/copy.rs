//! Copying a checked plan into the store: children first, each blob streamed
//! and verified (size, then digest) by an atomic [`BlobStore`] write.

use std::io::{self, Read, Write};

use super::source::Source;
use super::{ImportError, ImportProgress, ImportedImage, Plan, PlanItem};
use crate::blobs::{BlobError, BlobStore};
use crate::digest::Digest;

/// Copies the plan's blobs into the store in order, then writes the manifests
/// a legacy `docker save` needs. Returns (images, written, present).
pub(super) fn execute(
    store: &BlobStore,
    src: &Source,
    plan: Plan,
    progress: &mut dyn FnMut(ImportProgress<'_>),
) -> Result<(Vec<ImportedImage>, usize, usize), ImportError> {
    let total: u64 = plan.items.iter().map(|i| i.size).sum();
    let mut done = 0u64;
    let (mut written, mut present) = (0, 0);
    let mut learnt: Vec<Option<Digest>> = Vec::new();
    for item in plan.items {
        let digest = match &item.digest {
            Some(d) if store.has(d) => {
                present += 1;
                done += item.size;
                progress(ImportProgress {
                    bytes_done: done,
                    bytes_total: total,
                    current: &item.entry,
                });
                d.clone()
            }
            _ => {
                let d = match &item.bytes {
                    Some(b) => {
                        let d = store.put_bytes(b, item.digest.as_ref())?;
                        done += item.size;
                        progress(ImportProgress {
                            bytes_done: done,
                            bytes_total: total,
                            current: &item.entry,
                        });
                        d
                    }
                    None => copy_blob(store, src, &item, total, &mut done, progress)?,
                };
                written += 1;
                d
            }
        };
        if let Some(slot) = item.slot {
            if learnt.len() <= slot {
                learnt.resize(slot + 1, None);
            }
            learnt[slot] = Some(digest);
        }
    }
    let mut images = plan.images;
    if let Some(deferred) = plan.deferred {
        for (image, bytes) in deferred.finish(&learnt)? {
            if store.has(&image.digest) {
                present += 1;
            } else {
                store.put_bytes(&bytes, Some(&image.digest))?;
                written += 1;
            }
            images.push(image);
        }
    }
    Ok((images, written, present))
}

/// Streams one blob from the source into the store, checking its size and
/// digest. Returns its digest.
fn copy_blob(
    store: &BlobStore,
    src: &Source,
    item: &PlanItem,
    total: u64,
    done: &mut u64,
    progress: &mut dyn FnMut(ImportProgress<'_>),
) -> Result<Digest, ImportError> {
    let read_err = |source| ImportError::Io {
        path: src.path().join(&item.entry),
        source,
    };
    let mut r = src.open(&item.entry)?.take(item.size + 1);
    let mut w = store.writer()?;
    let mut buf = vec![0u8; 256 << 10];
    loop {
        let n = match r.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(read_err(e)),
        };
        w.write_all(&buf[..n]).map_err(|source| {
            ImportError::Store(BlobError::Io {
                path: store.tmp_dir(),
                source,
            })
        })?;
        *done += n as u64;
        progress(ImportProgress {
            bytes_done: *done,
            bytes_total: total,
            current: &item.entry,
        });
    }
    if w.len() != item.size {
        return Err(ImportError::SizeMismatch {
            entry: item.entry.clone(),
            referenced_by: item.referenced_by.clone(),
            expected: item.size,
            actual: w.len(),
        });
    }
    match w.commit(item.digest.as_ref()) {
        Ok(d) => Ok(d),
        Err(BlobError::DigestMismatch {
            expected, actual, ..
        }) => Err(ImportError::DigestMismatch {
            entry: item.entry.clone(),
            expected,
            actual,
        }),
        Err(e) => Err(e.into()),
    }
}
