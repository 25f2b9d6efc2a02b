//! Hands the Rust target triple to the crate as `BRAMBLE_IMAGES_TARGET`:
//! `Platform::current` reads a 32-bit ARM build's variant from it
//! (`armv7-…` → `linux/arm/v7`), since stable rustc does not expose ARM
//! target features such as `v7` to `cfg!(target_feature)`.

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    let target = std::env::var("TARGET").unwrap_or_default();
    println!("cargo:rustc-env=BRAMBLE_IMAGES_TARGET={target}");
}
