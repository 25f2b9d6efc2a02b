//! Shell patterns of `${X#pat}`, `${X%pat}` and `${X/pat/repl}`: `*` any
//! run of characters, `?` one character, `\\x` the character x. Trimming
//! takes the shortest match unless greedy (`##`, `%%`); replacement takes
//! the leftmost, longest match, as BuildKit's greedy regexp does.

use crate::glob::{self, Tok};

/// `${X#pat}` (prefix) / `${X%pat}` (suffix) with shell patterns (`*`, `?`,
/// `\` escapes); `greedy` takes the longest match.
pub(crate) fn trim(value: &str, pattern: &str, prefix: bool, greedy: bool) -> String {
    let chars: Vec<char> = value.chars().collect();
    let n = chars.len();
    let cuts: Vec<usize> = if greedy {
        (0..=n).rev().collect()
    } else {
        (0..=n).collect()
    };
    for cut in cuts {
        let (candidate, rest): (String, String) = if prefix {
            (chars[..cut].iter().collect(), chars[cut..].iter().collect())
        } else {
            (
                chars[n - cut..].iter().collect(),
                chars[..n - cut].iter().collect(),
            )
        };
        if matches(pattern, &candidate) {
            return rest;
        }
    }
    value.to_string()
}

/// Whole-string match of a shell pattern: `*` any run, `?` any char, `\\x` x.
pub(crate) fn matches(pattern: &str, s: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let mut toks = Vec::new();
    let mut i = 0;
    while i < p.len() {
        toks.push(match p[i] {
            '*' => Tok::AnyAll,
            '?' => Tok::One { slash: true },
            '\\' if i + 1 < p.len() => {
                i += 1;
                Tok::Lit(p[i])
            }
            c => Tok::Lit(c),
        });
        i += 1;
    }
    let s: Vec<char> = s.chars().collect();
    glob::matches(&toks, &s)
}

/// Replaces the first (or, with `all`, every) match of `pattern` in `value`.
pub(crate) fn replace(value: &str, pattern: &str, replacement: &str, all: bool) -> String {
    let chars: Vec<char> = value.chars().collect();
    let mut out = String::new();
    let mut start = 0;
    let mut replaced = false;
    while start <= chars.len() {
        let found = if replaced && !all {
            None
        } else {
            (start..=chars.len()).find_map(|from| {
                (from..=chars.len()).rev().find_map(|to| {
                    let candidate: String = chars[from..to].iter().collect();
                    matches(pattern, &candidate).then_some((from, to))
                })
            })
        };
        match found {
            Some((from, to)) => {
                out.extend(&chars[start..from]);
                out.push_str(replacement);
                replaced = true;
                if to == from {
                    if let Some(c) = chars.get(to) {
                        out.push(*c);
                    }
                    start = to + 1;
                } else {
                    start = to;
                }
            }
            None => {
                out.extend(&chars[start..]);
                break;
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns_trim_and_replace() {
        assert!(matches("a*c", "abbc"));
        assert!(matches("a?c", "abc"));
        assert!(!matches("a\\*c", "abc"));
        assert_eq!(trim("a.b.c", "*.", true, false), "b.c");
        assert_eq!(trim("a.b.c", "*.", true, true), "c");
        assert_eq!(trim("a.b.c", ".*", false, false), "a.b");
        assert_eq!(replace("aXbXc", "X", "-", false), "a-bXc");
        assert_eq!(replace("aXbXc", "X", "-", true), "a-b-c");
        assert_eq!(replace("abc", "", "-", true), "-a-b-c-");
    }
}
