//! Cache keys of steps, keyed as BuildKit keys its operations: a step's key
//! is a digest of its parent's key, the step itself after expansion (its
//! command, environment, working directory, user, mounts, flags), the build
//! arguments it sees, the platform, and — for COPY/ADD — the digests of the
//! files it reads (and the key of a `--from` stage), which the caller gives.
//! Same inputs, same key; any change to one of them, a new key.

use sha2::{Digest, Sha256};

use super::step::Step;
use crate::platform::Platform;

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn field(h: &mut Sha256, tag: &str, value: &str) {
    // Length-prefixed so no two field lists hash the same.
    h.update(tag.as_bytes());
    h.update((value.len() as u64).to_le_bytes());
    h.update(value.as_bytes());
}

/// The key a stage starts from: its base (an image manifest digest, a
/// stage's final key, or `scratch`) on a platform.
pub fn base_key(base: &str, platform: &Platform) -> String {
    let mut h = Sha256::new();
    field(&mut h, "base", base);
    field(&mut h, "platform", &platform.to_string());
    format!("sha256:{}", hex(&h.finalize()))
}

/// The key of `step` after `parent`. `inputs` are (name, digest) pairs of
/// what the step reads besides its parent: for COPY/ADD every source file
/// (context-relative path → content digest), for `--from` stages or mounts
/// their keys; order does not matter.
pub fn cache_key(parent: &str, step: &Step, inputs: &[(String, String)]) -> String {
    let mut h = Sha256::new();
    field(&mut h, "parent", parent);
    let action = serde_json::to_string(&step.action).unwrap_or_default();
    field(&mut h, "action", &action);
    for a in &step.args {
        field(&mut h, "arg", a);
    }
    let mut inputs: Vec<&(String, String)> = inputs.iter().collect();
    inputs.sort();
    for (name, digest) in inputs {
        field(&mut h, "input", name);
        field(&mut h, "digest", digest);
    }
    format!("sha256:{}", hex(&h.finalize()))
}
