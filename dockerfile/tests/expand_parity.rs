//! Parity with BuildKit's shell lexer tests: `envVarTest` (expansion) and
//! `wordsTest` (splitting into words), copied unchanged from
//! `frontend/dockerfile/shell/` into `tests/corpus/buildkit/shell/` and run
//! the way BuildKit's `lex_test.go` runs them (Linux cases).

use std::fs;
use std::path::Path;

use bramble_dockerfile::expand::Lexer;

fn data(name: &str) -> String {
    fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/corpus/buildkit/shell")
            .join(name),
    )
    .unwrap()
}

#[test]
fn expands_like_buildkit_env_var_test() {
    let vars = |n: &str| -> Option<String> {
        match n {
            "PWD" => Some("/home".into()),
            "SHELL" => Some("bash".into()),
            "KOREAN" => Some("한국어".into()),
            "NULL" => Some(String::new()),
            _ => None,
        }
    };
    let lexer = Lexer::new('\\');
    let mut checked = 0;
    let mut failures = Vec::new();
    for (n, line) in data("envVarTest").lines().enumerate() {
        if line.starts_with('#') || line.trim().is_empty() {
            continue;
        }
        let parts: Vec<&str> = line.trim().split('|').collect();
        assert_eq!(parts.len(), 3, "line {}", n + 1);
        if parts[0].trim() == "W" {
            continue;
        }
        let (source, expected) = (parts[1].trim(), parts[2].trim());
        let got = lexer.expand(source, &vars);
        let ok = match (&got, expected) {
            (Err(_), "error") => true,
            (Ok(v), e) => e != "error" && v == e,
            _ => false,
        };
        if !ok {
            failures.push(format!(
                "line {}: {source:?} → {got:?}, want {expected:?}",
                n + 1
            ));
        }
        checked += 1;
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    assert!(checked > 200, "checked {checked}");
}

#[test]
fn splits_words_like_buildkit_words_test() {
    let mut env: Vec<(String, String)> = Vec::new();
    let lexer = Lexer::new('\\');
    let mut checked = 0;
    for (n, line) in data("wordsTest").lines().enumerate() {
        if line.starts_with('#') {
            continue;
        }
        if let Some(rest) = line.strip_prefix("ENV ") {
            let rest = rest.trim_start_matches(' ');
            let (k, v) = rest.split_once('=').unwrap_or((rest, ""));
            env.push((k.to_string(), v.to_string()));
            continue;
        }
        let (test, expected) = line.split_once('|').unwrap();
        let expected: Vec<&str> = expected.trim_start_matches(' ').split(',').collect();
        let vars = |name: &str| {
            env.iter()
                .rev()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.clone())
        };
        let got = lexer
            .words(test.trim(), &vars)
            .unwrap_or_else(|_| vec!["error".to_string()]);
        assert_eq!(got, expected, "line {}: {test:?}", n + 1);
        checked += 1;
    }
    assert!(checked >= 20, "checked {checked}");
}
