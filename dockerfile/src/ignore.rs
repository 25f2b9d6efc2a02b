//! `.dockerignore` with moby/patternmatcher's semantics: one pattern per
//! line, lines starting with `#` are comments, blanks trimmed, `!` makes an
//! exception, patterns are cleaned like Go's `filepath.Clean` with a leading
//! `/` removed; `*` and `?` stay within one path element, `**` crosses any
//! number of them, `[…]` classes and `\` escapes work; patterns apply in
//! order, the last one that matches a path (or one of its parent
//! directories) decides.

use crate::fnmatch::{self, Class};
use crate::glob::{self, Tok};

/// A bad `.dockerignore` line.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(".dockerignore:{line}: {message}")]
pub struct IgnoreError {
    /// 1-based line in the file.
    pub line: usize,
    pub message: String,
}

#[derive(Debug, Clone)]
enum Matcher {
    Exact,
    Prefix,
    Suffix,
    Tokens(Vec<Tok>),
}

#[derive(Debug, Clone)]
struct Pattern {
    cleaned: String,
    exclusion: bool,
    matcher: Matcher,
}

/// Compiled `.dockerignore` patterns.
#[derive(Debug, Clone, Default)]
pub struct Ignore {
    patterns: Vec<Pattern>,
}

/// Go's `filepath.Clean` for `/`-separated paths.
pub(crate) fn go_clean(path: &str) -> String {
    if path.is_empty() {
        return ".".into();
    }
    let rooted = path.starts_with('/');
    let mut out: Vec<&str> = Vec::new();
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                if out.last().is_some_and(|p| *p != "..") {
                    out.pop();
                } else if !rooted {
                    out.push("..");
                }
            }
            p => out.push(p),
        }
    }
    let joined = out.join("/");
    match (rooted, joined.is_empty()) {
        (true, _) => format!("/{joined}"),
        (false, true) => ".".into(),
        (false, false) => joined,
    }
}

impl Ignore {
    /// Parses the text of a `.dockerignore` file.
    pub fn parse(text: &str) -> Result<Ignore, IgnoreError> {
        let text = text.strip_prefix('\u{feff}').unwrap_or(text);
        let mut patterns = Vec::new();
        for (idx, raw) in text.lines().enumerate() {
            let line = idx + 1;
            if raw.starts_with('#') {
                continue;
            }
            let mut pattern = raw.trim();
            if pattern.is_empty() {
                continue;
            }
            let exclusion = pattern.starts_with('!');
            if exclusion {
                pattern = pattern[1..].trim();
                if pattern.is_empty() {
                    return Err(IgnoreError {
                        line,
                        message: "illegal exclusion pattern: \"!\"".into(),
                    });
                }
            }
            let mut cleaned = go_clean(pattern);
            if cleaned.len() > 1 && cleaned.starts_with('/') {
                cleaned.remove(0);
            }
            if let Err(e) = fnmatch::matches(&cleaned, ".") {
                return Err(IgnoreError {
                    line,
                    message: format!("{e}: check `[`…`]` pairs and trailing `\\`"),
                });
            }
            let matcher = compile(&cleaned);
            patterns.push(Pattern {
                cleaned,
                exclusion,
                matcher,
            });
        }
        Ok(Ignore { patterns })
    }

    /// True if there are no patterns.
    pub fn is_empty(&self) -> bool {
        self.patterns.is_empty()
    }

    /// Whether the context path `path` (relative, `/`-separated) is ignored:
    /// the path or one of its parent directories matches (moby's
    /// `MatchesOrParentMatches`).
    pub fn is_ignored(&self, path: &str) -> bool {
        let file = go_clean(path);
        let parent = match file.rfind('/') {
            Some(i) => &file[..i],
            None => ".",
        };
        let parent_dirs: Vec<&str> = parent.split('/').collect();
        let mut matched = false;
        for p in &self.patterns {
            if p.exclusion != matched {
                continue;
            }
            let mut hit = p.matches(&file);
            if !hit && parent != "." {
                for i in 0..parent_dirs.len() {
                    if p.matches(&parent_dirs[..=i].join("/")) {
                        hit = true;
                        break;
                    }
                }
            }
            if hit {
                matched = !p.exclusion;
            }
        }
        matched
    }
}

fn compile(pattern: &str) -> Matcher {
    #[derive(PartialEq)]
    enum Detected {
        Exact,
        Prefix,
        Suffix,
        Regexp,
    }
    let p: Vec<char> = pattern.chars().collect();
    let mut detected = Detected::Exact;
    let mut toks = Vec::new();
    let mut i = 0;
    let mut first = true;
    while i < p.len() {
        let ch = p[i];
        i += 1;
        match ch {
            '*' if p.get(i) == Some(&'*') => {
                i += 1;
                if p.get(i) == Some(&'/') {
                    i += 1;
                }
                if i >= p.len() {
                    if detected == Detected::Exact {
                        detected = Detected::Prefix;
                    } else {
                        toks.push(Tok::AnyAll);
                        detected = Detected::Regexp;
                    }
                } else {
                    toks.push(Tok::AnyDirs);
                    detected = Detected::Regexp;
                }
                if first {
                    detected = Detected::Suffix;
                }
            }
            '*' => {
                toks.push(Tok::Star);
                detected = Detected::Regexp;
            }
            '?' => {
                toks.push(Tok::One { slash: false });
                detected = Detected::Regexp;
            }
            '\\' => {
                if let Some(c) = p.get(i) {
                    toks.push(Tok::Lit(*c));
                    i += 1;
                    detected = Detected::Regexp;
                } else {
                    toks.push(Tok::Lit('\\'));
                }
            }
            '[' => {
                // Validated by fnmatch already; a regexp class otherwise.
                match Class::parse(&p, i) {
                    Some((class, next)) => {
                        toks.push(Tok::Class { class, slash: true });
                        i = next;
                    }
                    None => toks.push(Tok::Lit('[')),
                }
                detected = Detected::Regexp;
            }
            c => toks.push(Tok::Lit(c)),
        }
        first = false;
    }
    match detected {
        Detected::Exact => Matcher::Exact,
        Detected::Prefix => Matcher::Prefix,
        Detected::Suffix => Matcher::Suffix,
        Detected::Regexp => Matcher::Tokens(toks),
    }
}

impl Pattern {
    fn matches(&self, path: &str) -> bool {
        match &self.matcher {
            Matcher::Exact => path == self.cleaned,
            Matcher::Prefix => path.starts_with(&self.cleaned[..self.cleaned.len() - 2]),
            Matcher::Suffix => {
                let suffix = &self.cleaned[2..];
                path.ends_with(suffix) || suffix.strip_prefix('/').is_some_and(|s| path == s)
            }
            Matcher::Tokens(toks) => {
                let s: Vec<char> = path.chars().collect();
                glob::matches(toks, &s)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ign(text: &str) -> Ignore {
        Ignore::parse(text).unwrap()
    }

    #[test]
    fn comments_blanks_and_cleaning() {
        let i = ign("# comment\n\n  /node_modules  \n./build/\n #not a comment\n");
        assert!(i.is_ignored("node_modules"));
        assert!(i.is_ignored("node_modules/x/y.js"));
        assert!(i.is_ignored("build/out"));
        assert!(!i.is_ignored("src/node_modules"));
        // Only a `#` in the first column starts a comment.
        assert!(i.is_ignored("#not a comment"));
    }

    #[test]
    fn star_stays_in_one_element_double_star_crosses() {
        let i = ign("*.log\n**/*.tmp\ndocs/**\n");
        assert!(i.is_ignored("a.log"));
        assert!(!i.is_ignored("sub/a.log"));
        assert!(i.is_ignored("x.tmp"));
        assert!(i.is_ignored("a/b/c/x.tmp"));
        assert!(i.is_ignored("docs/a/b.md"));
        assert!(!i.is_ignored("docs"));
        let i = ign("a/**/z\n");
        assert!(i.is_ignored("a/z"));
        assert!(i.is_ignored("a/b/c/z"));
        assert!(!i.is_ignored("a/bz"));
    }

    #[test]
    fn exceptions_apply_in_order() {
        let i = ign("*.md\n!README.md\n");
        assert!(i.is_ignored("CHANGES.md"));
        assert!(!i.is_ignored("README.md"));
        let i = ign("!README.md\n*.md\n");
        assert!(i.is_ignored("README.md"));
        let i = ign("dir\n!dir/keep\n");
        assert!(i.is_ignored("dir/other"));
        assert!(!i.is_ignored("dir/keep"));
    }

    #[test]
    fn parent_directory_matches_ignore_children() {
        let i = ign("vendor\n*/cache\n");
        assert!(i.is_ignored("vendor/a/b.go"));
        assert!(i.is_ignored("x/cache/blob"));
        assert!(!i.is_ignored("vendors/a"));
    }

    #[test]
    fn question_mark_classes_and_escapes() {
        let i = ign("file?.txt\n[ab]c\n\\*star\n");
        assert!(i.is_ignored("file1.txt"));
        assert!(!i.is_ignored("file10.txt"));
        assert!(i.is_ignored("ac"));
        assert!(!i.is_ignored("cc"));
        assert!(i.is_ignored("*star"));
        assert!(!i.is_ignored("xstar"));
    }

    #[test]
    fn bad_patterns_are_reported_with_their_line() {
        let e = Ignore::parse("ok\n!\n").unwrap_err();
        assert_eq!(e.line, 2);
        let e = Ignore::parse("a\n[unclosed\n").unwrap_err();
        assert_eq!(e.line, 2);
    }

    #[test]
    fn go_clean_matches_filepath_clean() {
        assert_eq!(go_clean("./a//b/../c/"), "a/c");
        assert_eq!(go_clean("/../x"), "/x");
        assert_eq!(go_clean("../x"), "../x");
        assert_eq!(go_clean("."), ".");
        assert_eq!(go_clean(""), ".");
    }
}
