//! libcontainer clones container processes from the agent's own process
//! with a raw `clone3` (no `pthread_atfork` handlers run), while other agent
//! threads allocate and log. A child that needs a lock another thread held
//! at the moment of the clone (a malloc arena, the log writer) would hang
//! forever (FINDINGS.md). This test creates, starts, waits for and deletes
//! containers in a loop while four threads allocate and log at debug level
//! through a real `tracing` subscriber, and fails (instead of hanging) if
//! any container takes more than 20 s.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::time::Duration;

use bramble_agent::runtime::ExitStatus;
use common::{Backend, Sandbox};

const ROUNDS: usize = 60;

#[test]
fn creates_while_other_threads_allocate_and_log() {
    let log = tempfile::NamedTempFile::new().unwrap();
    let writer = log.reopen().unwrap();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::DEBUG)
        .with_writer(std::sync::Mutex::new(writer))
        .finish();
    tracing::subscriber::set_global_default(subscriber).unwrap();

    let stop = Arc::new(AtomicBool::new(false));
    let noise: Vec<_> = (0..4)
        .map(|t| {
            let stop = stop.clone();
            std::thread::spawn(move || {
                let mut n = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    let v: Vec<String> = (0..64).map(|i| format!("{t}-{n}-{i}")).collect();
                    tracing::debug!(thread = t, n, first = %v[0], "noise");
                    n += 1;
                }
                n
            })
        })
        .collect();

    let (tx, rx) = mpsc::channel();
    let worker = std::thread::spawn(move || {
        let sb = Sandbox::with_backend("stress", Backend::Libcontainer);
        for i in 0..ROUNDS {
            let cfg = sb.config(&format!("r{i}"), &["true"]);
            let h = sb.run(&cfg);
            let status = sb.runtime.wait(&h, Some(Duration::from_secs(20))).unwrap();
            assert_eq!(status, Some(ExitStatus::Code(0)), "round {i}");
            sb.runtime.delete(&h).unwrap();
            sb.deleted(&h);
            tx.send(i).unwrap();
        }
    });
    for i in 0..ROUNDS {
        match rx.recv_timeout(Duration::from_secs(20)) {
            Ok(done) => assert_eq!(done, i),
            Err(e) => {
                stop.store(true, Ordering::Relaxed);
                panic!(
                    "container round {i} did not finish within 20 s ({e}): a cloned child is stuck"
                );
            }
        }
    }
    worker.join().unwrap();
    stop.store(true, Ordering::Relaxed);
    let lines: u64 = noise.into_iter().map(|t| t.join().unwrap()).sum();
    assert!(lines > 1000, "the noise threads logged only {lines} lines");
    let text = std::fs::read_to_string(log.path()).unwrap();
    assert!(text.contains("noise"));
}
