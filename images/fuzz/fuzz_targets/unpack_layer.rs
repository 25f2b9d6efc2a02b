//! Fuzzes `bramble_images::unpack::unpack_layer` with arbitrary layers and
//! asserts nothing is written outside the destination (see the harness in
//! `src/lib.rs` for the input format and the checks).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Some(case) = bramble_images_fuzz::prepare(data) {
        bramble_images_fuzz::run(&case);
    }
});
