//! The columns of `bramble.dev/v1` Builds: IMAGE, PLATFORMS, STATUS,
//! DURATION and AGE; `-o wide` adds the NODES each platform runs on and
//! the DIGEST pushed.

use std::time::SystemTime;

use serde_json::Value;

use super::age::{age, run_duration};
use super::json::{list_at, str_at};

/// Base headers and wide headers of a Build.
pub const BUILD_HEADERS: (&[&str], &[&str]) = (
    &["NAME", "IMAGE", "PLATFORMS", "STATUS", "DURATION", "AGE"],
    &["NODES", "DIGEST"],
);

/// A Build's row.
pub fn build_cells(o: &Value, name: String, now: SystemTime) -> (Vec<String>, Vec<String>) {
    let strings = |pointer: &str, field: &str| -> String {
        list_at(o, pointer)
            .iter()
            .filter_map(|v| {
                if field.is_empty() {
                    v.as_str()
                } else {
                    v[field].as_str()
                }
            })
            .collect::<Vec<_>>()
            .join(",")
    };
    let duration = run_duration(o, now);
    (
        vec![
            name,
            str_at(o, "/spec/image").unwrap_or("").to_string(),
            strings("/spec/platforms", ""),
            str_at(o, "/status/phase").unwrap_or("Pending").to_string(),
            duration,
            age(str_at(o, "/metadata/creationTimestamp"), now),
        ],
        vec![
            strings("/status/platforms", "node"),
            str_at(o, "/status/digest").unwrap_or("").to_string(),
        ],
    )
}
