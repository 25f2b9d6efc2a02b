//! Go's `path/filepath.Match` (on `/`-separated paths), which COPY and ADD
//! use for source globs: `*` matches any run of characters except `/`, `?`
//! one character except `/`, `[…]` a class (`^` negates, `a-z` ranges, never
//! `/`), `\c` the character c. A malformed pattern is an error, as in Go.

use crate::glob::{self, Tok};

/// The pattern is malformed (unclosed `[`, trailing `\`, bad range).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("syntax error in pattern {0:?}")]
pub struct BadPattern(pub String);

/// True if `s` has any of `*?[\` (so it is a pattern, not a plain path).
pub fn has_meta(s: &str) -> bool {
    s.contains(['*', '?', '[', '\\'])
}

/// A character class `[…]` parsed from a pattern.
#[derive(Debug, Clone)]
pub(crate) struct Class {
    negated: bool,
    ranges: Vec<(char, char)>,
}

impl Class {
    /// Parses the class starting after `[` at `p[i]`; returns it and the index after `]`.
    pub(crate) fn parse(p: &[char], mut i: usize) -> Option<(Class, usize)> {
        let mut negated = false;
        if p.get(i) == Some(&'^') {
            negated = true;
            i += 1;
        }
        let mut ranges = Vec::new();
        let mut first = true;
        loop {
            let c = *p.get(i)?;
            if c == ']' && !first {
                return Some((Class { negated, ranges }, i + 1));
            }
            first = false;
            let (lo, next) = Self::class_char(p, i)?;
            i = next;
            let mut hi = lo;
            if p.get(i) == Some(&'-') {
                let (h, next) = Self::class_char(p, i + 1)?;
                hi = h;
                i = next;
            }
            ranges.push((lo, hi));
        }
    }

    fn class_char(p: &[char], i: usize) -> Option<(char, usize)> {
        match p.get(i)? {
            '\\' => p.get(i + 1).map(|c| (*c, i + 2)),
            '-' | ']' => None,
            c => Some((*c, i + 1)),
        }
    }

    pub(crate) fn matches(&self, c: char) -> bool {
        self.ranges.iter().any(|(lo, hi)| *lo <= c && c <= *hi) != self.negated
    }
}

fn compile(pattern: &str) -> Result<Vec<Tok>, BadPattern> {
    let p: Vec<char> = pattern.chars().collect();
    let bad = || BadPattern(pattern.to_string());
    let mut toks = Vec::new();
    let mut i = 0;
    while i < p.len() {
        match p[i] {
            '*' => {
                toks.push(Tok::Star);
                i += 1;
            }
            '?' => {
                toks.push(Tok::One { slash: false });
                i += 1;
            }
            '[' => {
                let (class, next) = Class::parse(&p, i + 1).ok_or_else(bad)?;
                toks.push(Tok::Class {
                    class,
                    slash: false,
                });
                i = next;
            }
            '\\' => {
                toks.push(Tok::Lit(*p.get(i + 1).ok_or_else(bad)?));
                i += 2;
            }
            c => {
                toks.push(Tok::Lit(c));
                i += 1;
            }
        }
    }
    Ok(toks)
}

fn run(toks: &[Tok], s: &[char]) -> bool {
    glob::matches(toks, s)
}

/// Whether `name` matches `pattern` entirely (Go's `filepath.Match`).
pub fn matches(pattern: &str, name: &str) -> Result<bool, BadPattern> {
    let toks = compile(pattern)?;
    let s: Vec<char> = name.chars().collect();
    Ok(run(&toks, &s))
}

/// The paths of `candidates` (context-relative, `/`-separated) that COPY
/// source `pattern` selects: an exact path, or every path matching the glob
/// (a leading `/` or `./` of the pattern is ignored, as BuildKit does).
pub fn select<'a>(pattern: &str, candidates: &'a [String]) -> Result<Vec<&'a str>, BadPattern> {
    let cleaned = clean_source(pattern);
    if !has_meta(&cleaned) {
        return Ok(candidates
            .iter()
            .filter(|c| {
                cleaned == "." || c.as_str() == cleaned || c.starts_with(&format!("{cleaned}/"))
            })
            .map(String::as_str)
            .collect());
    }
    let toks = compile(&cleaned)?;
    let depth = cleaned.matches('/').count();
    let mut out = Vec::new();
    for c in candidates {
        // A match on a directory selects everything under it.
        let prefix: String = c.split('/').take(depth + 1).collect::<Vec<_>>().join("/");
        let chars: Vec<char> = prefix.chars().collect();
        if run(&toks, &chars) {
            out.push(c.as_str());
        }
    }
    Ok(out)
}

/// `./a/../b/` → `b`; `/x` → `x`; `` → `.`.
pub(crate) fn clean_source(path: &str) -> String {
    let mut parts: Vec<&str> = Vec::new();
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            p => parts.push(p),
        }
    }
    if parts.is_empty() {
        ".".to_string()
    } else {
        parts.join("/")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_filepath_match_cases() {
        // From Go's path/filepath match tests.
        let ok = |p: &str, s: &str| matches(p, s).unwrap();
        assert!(ok("abc", "abc"));
        assert!(ok("*", "abc"));
        assert!(ok("*c", "abc"));
        assert!(!ok("a*", "ab/c"));
        assert!(ok("a*/b", "abc/b"));
        assert!(!ok("a*/b", "a/c/b"));
        assert!(ok("a*b*c*d*e*/f", "axbxcxdxe/f"));
        assert!(!ok("a*b*c*d*e*/f", "axbxcxdxexxx/fff"));
        assert!(ok("ab[c]", "abc"));
        assert!(ok("ab[b-d]", "abc"));
        assert!(!ok("ab[e-g]", "abc"));
        assert!(!ok("ab[^c]", "abc"));
        assert!(ok("ab[^e-g]", "abc"));
        assert!(ok("a\\*b", "a*b"));
        assert!(!ok("a\\*b", "ab"));
        assert!(ok("a?b", "a☺b"));
        assert!(!ok("a?b", "a/b"));
        assert!(!ok("a[^a]b", "a/b"));
        assert!(ok("[\\-]", "-"));
        assert!(ok("[x\\-]", "x"));
        assert!(!ok("*x", "xxx/"));
        assert!(matches("[", "a").is_err());
        assert!(matches("[^", "a").is_err());
        assert!(matches("a\\", "a").is_err());
        assert!(matches("[a-]", "a").is_err());
        assert!(matches("[]a]", "a").is_err());
        assert!(!ok("[z-a]", "a"));
    }

    #[test]
    fn copy_sources_select_paths_and_directories() {
        let files: Vec<String> = [
            "a.txt",
            "b.txt",
            "c.md",
            "src/main.rs",
            "src/lib.rs",
            "srcx/y",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        assert_eq!(select("*.txt", &files).unwrap(), ["a.txt", "b.txt"]);
        assert_eq!(
            select("./src", &files).unwrap(),
            ["src/main.rs", "src/lib.rs"]
        );
        assert_eq!(
            select("src/*.rs", &files).unwrap(),
            ["src/main.rs", "src/lib.rs"]
        );
        assert_eq!(
            select("sr?", &files).unwrap(),
            ["src/main.rs", "src/lib.rs"]
        );
        assert_eq!(select(".", &files).unwrap().len(), 6);
        assert!(select("missing", &files).unwrap().is_empty());
    }
}
