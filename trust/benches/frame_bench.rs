//! Cost of protecting one message: prints figures, asserts nothing about time.
//!
//! `cargo bench -p bramble-trust --bench frame_bench` signs and verifies a
//! status-sized body (2 KiB, in clear), and seals and opens a desired-set-sized
//! body (16 KiB, sealed to the receiver), as the hub and the agents do for
//! every message; prints microseconds per operation (median of 5 rounds).
//! `BENCH_QUICK=1` runs few iterations (CI checks the bench still runs).

use std::hint::black_box;
use std::time::Instant;

use bramble_trust::SecretKeys;
use bramble_trust::frame::{Frame, seal, sign};

/// Median over 5 rounds of `iters` calls of `f`, in µs per call.
fn per_op(iters: u32, mut f: impl FnMut()) -> f64 {
    let mut rounds: Vec<f64> = (0..5)
        .map(|_| {
            let t = Instant::now();
            for _ in 0..iters {
                f();
            }
            t.elapsed().as_secs_f64() * 1e6 / f64::from(iters)
        })
        .collect();
    rounds.sort_by(f64::total_cmp);
    rounds[2]
}

fn main() {
    // As bramble_tests::bench::quick (this crate does not depend on it).
    let quick = std::env::var("BENCH_QUICK").is_ok_and(|v| !v.is_empty() && v != "0");
    let iters = if quick { 10 } else { 2_000 };
    let hub = SecretKeys::generate().expect("hub keys");
    let board = SecretKeys::generate().expect("board keys");
    let status = vec![b's'; 2 * 1024];
    let desired = vec![b'd'; 16 * 1024];
    let st_topic = "bramble/v2/nodes/pi-1/status";
    let de_topic = "bramble/v2/nodes/pi-1/desired";

    let signed = sign(&board, st_topic, &status);
    let sealed = seal(&hub, board.public(), de_topic, &desired).expect("seal");
    // Both really open before timing them.
    let opened = Frame::parse(&signed)
        .and_then(|f| f.open(st_topic, board.public(), None))
        .expect("verify");
    assert_eq!(opened.body, status);
    let opened = Frame::parse(&sealed)
        .and_then(|f| f.open(de_topic, hub.public(), Some(&board)))
        .expect("open");
    assert_eq!(opened.body, desired);

    let sign_us = per_op(iters, || {
        black_box(sign(&board, st_topic, black_box(&status)));
    });
    let verify_us = per_op(iters, || {
        let f = Frame::parse(black_box(&signed)).expect("parse");
        black_box(f.open(st_topic, board.public(), None).expect("verify"));
    });
    let seal_us = per_op(iters, || {
        black_box(seal(&hub, board.public(), de_topic, black_box(&desired)).expect("seal"));
    });
    let open_us = per_op(iters, || {
        let f = Frame::parse(black_box(&sealed)).expect("parse");
        black_box(f.open(de_topic, hub.public(), Some(&board)).expect("open"));
    });
    println!(
        "frame_bench ({iters} iterations x 5 rounds, median):\n  \
         status 2 KiB, signed: sign {sign_us:.1} us, verify {verify_us:.1} us \
         ({} B on the wire, +{} B)\n  \
         desired 16 KiB, sealed + signed: seal {seal_us:.1} us, open {open_us:.1} us \
         ({} B on the wire, +{} B)",
        signed.len(),
        signed.len() - status.len(),
        sealed.len(),
        sealed.len() - desired.len()
    );
    // µs per status x 1,000 statuses = ms.
    println!("  hub CPU for 1,000 statuses (verify only): {verify_us:.1} ms");
}
