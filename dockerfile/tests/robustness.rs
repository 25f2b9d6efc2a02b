//! The front end runs on the hub and the agent on Dockerfiles from users:
//! whatever the text, parsing and planning return an error or a plan, never
//! panic. Deterministic mutations of the corpus (truncations and inserted
//! syntax characters at many positions) are parsed and planned.

mod common;
use common::corpus;

use std::fs;

use bramble_dockerfile::ignore::Ignore;
use bramble_dockerfile::plan::{ImageConfig, plan, required_images};
use bramble_dockerfile::{BuildRequest, Platform, parse};

/// Parses and plans `text`; returns whether it planned.
fn attempt(text: &str) -> bool {
    let Ok(df) = parse(text) else { return false };
    let mut req = BuildRequest::new(Platform::parse("linux/arm64").unwrap());
    let Ok(images) = required_images(&df, &req) else {
        return false;
    };
    for i in images {
        req.base_images.insert(i, ImageConfig::scratch());
    }
    plan(&df, &req).is_ok()
}

const INSERTS: [&str; 12] = [
    "\\", "\"", "'", "<<", "<<-EOF\n", "${", "}", "[", "\n", "--", "#", "`",
];

#[test]
fn mutated_corpus_never_panics() {
    let mut attempts = 0;
    let mut planned = 0;
    for path in corpus() {
        let chars: Vec<char> = fs::read_to_string(&path).unwrap().chars().collect();
        let step = (chars.len() / 40).max(1);
        for (n, pos) in (0..chars.len()).step_by(step).enumerate() {
            let truncated: String = chars[..pos].iter().collect();
            let insert = INSERTS[n % INSERTS.len()];
            let mutated: String = chars[..pos]
                .iter()
                .copied()
                .chain(insert.chars())
                .chain(chars[pos..].iter().copied())
                .collect();
            for text in [truncated, mutated] {
                attempts += 1;
                if attempt(&text) {
                    planned += 1;
                }
            }
        }
    }
    assert!(attempts > 5000, "attempts {attempts}");
    // Many mutations still make valid Dockerfiles, many do not: both paths ran.
    assert!(
        planned > 0 && planned < attempts,
        "planned {planned} of {attempts}"
    );
}

#[test]
fn dockerignore_never_panics() {
    let mut parsed = 0;
    let alphabet = [
        "*", "**", "?", "[", "]", "!", "/", "\\", "a", ".", "-", "^", " ", "#",
    ];
    for i in 0..alphabet.len() {
        for j in 0..alphabet.len() {
            for k in 0..alphabet.len() {
                let pattern = format!("{}{}{}", alphabet[i], alphabet[j], alphabet[k]);
                if let Ok(ig) = Ignore::parse(&pattern) {
                    parsed += 1;
                    for path in ["a", "a/b", ".a", "a/b/c.d", "[", "!", "*"] {
                        let _ = ig.is_ignored(path);
                    }
                }
            }
        }
    }
    assert!(parsed > 1000, "parsed {parsed}");
}
