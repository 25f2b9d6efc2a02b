//! Writes seed inputs to `corpus/unpack_layer/` and runs each through the
//! harness once (a quick check without libFuzzer).
fn main() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("corpus/unpack_layer");
    std::fs::create_dir_all(&dir).expect("corpus dir");
    for (name, input) in bramble_images_fuzz::seeds() {
        if let Some(case) = bramble_images_fuzz::prepare(&input) {
            bramble_images_fuzz::run(&case);
        }
        std::fs::write(dir.join(&name), &input).expect("write seed");
    }
    println!("seeds written to {}", dir.display());
}
