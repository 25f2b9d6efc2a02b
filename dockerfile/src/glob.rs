//! The matching engine shared by COPY globs (`fnmatch`), `.dockerignore`
//! (`ignore`) and `${X#pat}` patterns (`shell_pattern`): a pattern is a list
//! of tokens, matched against a whole string with memoization, so the time
//! is at most (tokens × characters) whatever the pattern (no exponential
//! backtracking on `a*a*a*…b` from a hostile Dockerfile).

use crate::fnmatch::Class;

/// One pattern element.
#[derive(Debug, Clone)]
pub(crate) enum Tok {
    /// This character.
    Lit(char),
    /// Any one character; `/` only if `slash`.
    One { slash: bool },
    /// One character of the class; `/` only if `slash`.
    Class { class: Class, slash: bool },
    /// Any run of characters without `/`.
    Star,
    /// Any run of characters.
    AnyAll,
    /// Nothing, or any run of characters ending in `/` (`**/`).
    AnyDirs,
}

/// Whether `toks` match all of `s`.
pub(crate) fn matches(toks: &[Tok], s: &[char]) -> bool {
    let width = s.len() + 1;
    let mut memo = vec![None; (toks.len() + 1) * width];
    go(toks, s, 0, 0, width, &mut memo)
}

fn go(
    toks: &[Tok],
    s: &[char],
    mut ti: usize,
    mut si: usize,
    width: usize,
    memo: &mut [Option<bool>],
) -> bool {
    let (start_ti, start_si) = (ti, si);
    if let Some(done) = memo[start_ti * width + start_si] {
        return done;
    }
    let result = loop {
        let Some(tok) = toks.get(ti) else {
            break si == s.len();
        };
        let c = s.get(si).copied();
        let single = match tok {
            Tok::Lit(l) => Some(c == Some(*l)),
            Tok::One { slash } => Some(c.is_some_and(|c| *slash || c != '/')),
            Tok::Class { class, slash } => {
                Some(c.is_some_and(|c| (*slash || c != '/') && class.matches(c)))
            }
            _ => None,
        };
        if let Some(ok) = single {
            if !ok {
                break false;
            }
            ti += 1;
            si += 1;
            continue;
        }
        break match tok {
            Tok::Star => {
                let mut end = si;
                loop {
                    if go(toks, s, ti + 1, end, width, memo) {
                        break true;
                    }
                    if end == s.len() || s[end] == '/' {
                        break false;
                    }
                    end += 1;
                }
            }
            Tok::AnyAll => (si..=s.len()).any(|end| go(toks, s, ti + 1, end, width, memo)),
            Tok::AnyDirs => {
                go(toks, s, ti + 1, si, width, memo)
                    || (si..s.len()).any(|i| s[i] == '/' && go(toks, s, ti + 1, i + 1, width, memo))
            }
            _ => unreachable!("single-character tokens are handled above"),
        };
    };
    memo[start_ti * width + start_si] = Some(result);
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hostile_patterns_stay_polynomial() {
        // a*a*…a*b against a long run of `a`: exponential without the memo.
        let mut toks = Vec::new();
        for _ in 0..30 {
            toks.push(Tok::Lit('a'));
            toks.push(Tok::AnyAll);
        }
        toks.push(Tok::Lit('b'));
        let s: Vec<char> = "a".repeat(200).chars().collect();
        assert!(!matches(&toks, &s));
        let mut with_b = s.clone();
        with_b.push('b');
        assert!(matches(&toks, &with_b));
    }
}
