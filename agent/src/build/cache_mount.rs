//! The directory of a `RUN --mount=type=cache` on this board and how
//! concurrent builds share it, as BuildKit's `sharing` says: `shared` (the
//! default) lets every step use it at once; `locked` makes a step wait
//! until no other `locked` step holds it (e.g. apt's caches, which apt
//! locks itself and would refuse); `private` gives a step the directory
//! when nobody holds it and another instance of it (`<dir>-1`, `-2`, …)
//! when it is held. The hold is an exclusive `flock` on `<dir>.lock`, kept
//! for as long as the returned [`Hold`] lives: the step's run.

use std::fs::{File, OpenOptions, TryLockError};
use std::os::unix::fs::{DirBuilderExt, chown};
use std::path::{Path, PathBuf};

/// An exclusive hold on a cache directory; released when dropped.
#[derive(Debug)]
pub struct Hold {
    _lock: File,
}

/// How the directory is shared (`--mount sharing=`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sharing {
    Shared,
    Locked,
    Private,
}

impl Sharing {
    /// From the Dockerfile's word (validated by the parser); anything else
    /// is `shared`, BuildKit's default.
    pub fn parse(word: &str) -> Sharing {
        match word {
            "locked" => Sharing::Locked,
            "private" => Sharing::Private,
            _ => Sharing::Shared,
        }
    }
}

/// Who owns a new cache directory, and its mode.
#[derive(Debug, Clone, Copy)]
pub struct Owner {
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
}

/// The directory named `name` under `caches` for a step, made as `owner`
/// says the first time, with the hold `sharing` asks for.
pub fn take(
    caches: &Path,
    name: &str,
    sharing: Sharing,
    owner: Owner,
) -> std::io::Result<(PathBuf, Option<Hold>)> {
    std::fs::create_dir_all(caches)?;
    let (dir, hold) = match sharing {
        Sharing::Shared => (caches.join(name), None),
        Sharing::Locked => {
            let lock = lock_file(caches, name)?;
            lock.lock()?;
            (caches.join(name), Some(Hold { _lock: lock }))
        }
        Sharing::Private => {
            let mut n = 0u32;
            loop {
                let instance = if n == 0 {
                    name.to_string()
                } else {
                    format!("{name}-{n}")
                };
                let lock = lock_file(caches, &instance)?;
                match lock.try_lock() {
                    Ok(()) => break (caches.join(instance), Some(Hold { _lock: lock })),
                    Err(TryLockError::WouldBlock) => n += 1,
                    Err(TryLockError::Error(e)) => return Err(e),
                }
            }
        }
    };
    if !dir.exists() {
        std::fs::DirBuilder::new().mode(owner.mode).create(&dir)?;
        chown(&dir, Some(owner.uid), Some(owner.gid))?;
    }
    Ok((dir, hold))
}

fn lock_file(caches: &Path, name: &str) -> std::io::Result<File> {
    OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(caches.join(format!("{name}.lock")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::{Arc, mpsc};

    const ROOT: Owner = Owner {
        mode: 0o755,
        uid: 0,
        gid: 0,
    };

    #[test]
    fn a_locked_cache_waits_for_the_step_holding_it() {
        let dir = tempfile::tempdir().unwrap();
        let caches = dir.path().to_path_buf();
        let (first, hold) = take(&caches, "apt", Sharing::Locked, ROOT).unwrap();
        assert!(hold.is_some());
        let done = Arc::new(AtomicBool::new(false));
        let (tx, rx) = mpsc::channel();
        let waiter = {
            let (done, caches) = (done.clone(), caches.clone());
            std::thread::spawn(move || {
                tx.send(()).unwrap();
                let got = take(&caches, "apt", Sharing::Locked, ROOT).unwrap();
                done.store(true, Ordering::SeqCst);
                got.0
            })
        };
        rx.recv().unwrap();
        // While the first step holds it, the second cannot have it, however
        // long it is given.
        std::thread::sleep(std::time::Duration::from_millis(300));
        assert!(!done.load(Ordering::SeqCst), "the second step did not wait");
        // A shared user does not wait for it.
        let (shared, none) = take(&caches, "apt", Sharing::Shared, ROOT).unwrap();
        assert_eq!((shared, none.is_none()), (first.clone(), true));
        drop(hold);
        assert_eq!(
            waiter.join().unwrap(),
            first,
            "then it gets the same directory"
        );
    }

    #[test]
    fn a_private_cache_held_elsewhere_is_another_instance() {
        let dir = tempfile::tempdir().unwrap();
        let caches = dir.path();
        let (a, hold_a) = take(caches, "go", Sharing::Private, ROOT).unwrap();
        let (b, hold_b) = take(caches, "go", Sharing::Private, ROOT).unwrap();
        assert_ne!(a, b, "two steps at once got one directory");
        assert_eq!(b, caches.join("go-1"));
        drop((hold_a, hold_b));
        let (again, _hold) = take(caches, "go", Sharing::Private, ROOT).unwrap();
        assert_eq!(again, a, "a free instance is reused");
    }
}
