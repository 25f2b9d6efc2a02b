//! Compose variable interpolation over a parsed YAML tree: `$VAR`, `${VAR}`,
//! `${VAR:-default}`, `${VAR-default}`, `${VAR:?error}`, `${VAR?error}`,
//! `${VAR:+replacement}`, `${VAR+replacement}`, and `$$` for a literal `$`,
//! as the Compose Specification's "Interpolation" section defines them.
//! Defaults may themselves hold variables (`${A:-${B}}`).
//!
//! Only string values are interpolated (keys are not, as in docker compose).
//! An unset variable without a default becomes `""` and is reported once, as
//! docker compose warns "The VAR variable is not set".

use std::collections::BTreeSet;

use serde_yaml_ng::Value;

/// What interpolation of one file found.
#[derive(Debug, Default)]
pub struct Report {
    /// Variables used without a value or default (replaced by `""`).
    pub unset: BTreeSet<String>,
}

/// Interpolates every string in `doc`; `path` names the root in errors.
pub fn tree(
    doc: &mut Value,
    lookup: &dyn Fn(&str) -> Option<String>,
    report: &mut Report,
    path: &str,
) -> anyhow::Result<()> {
    match doc {
        Value::String(s) => {
            *s = string(s, lookup, report).map_err(|e| anyhow::anyhow!("{path}: {e}"))?;
        }
        Value::Sequence(items) => {
            for (i, v) in items.iter_mut().enumerate() {
                tree(v, lookup, report, &format!("{path}[{i}]"))?;
            }
        }
        Value::Mapping(m) => {
            for (k, v) in m.iter_mut() {
                let key = k
                    .as_str()
                    .map(str::to_string)
                    .unwrap_or_else(|| format!("{k:?}"));
                let p = if path.is_empty() {
                    key
                } else {
                    format!("{path}.{key}")
                };
                tree(v, lookup, report, &p)?;
            }
        }
        Value::Tagged(t) => tree(&mut t.value, lookup, report, path)?,
        _ => {}
    }
    Ok(())
}

/// Interpolates one string.
pub fn string(
    s: &str,
    lookup: &dyn Fn(&str) -> Option<String>,
    report: &mut Report,
) -> Result<String, String> {
    let chars: Vec<char> = s.chars().collect();
    let (out, end) = expand(&chars, 0, None, lookup, report)?;
    debug_assert_eq!(end, chars.len());
    Ok(out)
}

fn is_name_start(c: char) -> bool {
    c.is_ascii_alphabetic() || c == '_'
}

fn is_name(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}

/// Expands `chars[at..]` up to the end or (inside a `${…}` default) to the
/// unmatched `stop`; returns the text and the index where it stopped.
fn expand(
    chars: &[char],
    mut at: usize,
    stop: Option<char>,
    lookup: &dyn Fn(&str) -> Option<String>,
    report: &mut Report,
) -> Result<(String, usize), String> {
    let mut out = String::new();
    while at < chars.len() {
        let c = chars[at];
        if Some(c) == stop {
            return Ok((out, at));
        }
        if c != '$' {
            out.push(c);
            at += 1;
            continue;
        }
        match chars.get(at + 1) {
            Some('$') => {
                out.push('$');
                at += 2;
            }
            Some('{') => {
                let (text, next) = braced(chars, at + 2, lookup, report)?;
                out.push_str(&text);
                at = next;
            }
            Some(&n) if is_name_start(n) => {
                let start = at + 1;
                let mut end = start;
                while end < chars.len() && is_name(chars[end]) {
                    end += 1;
                }
                let name: String = chars[start..end].iter().collect();
                out.push_str(&value_or_blank(&name, lookup, report));
                at = end;
            }
            _ => {
                let rest: String = chars[at..].iter().take(20).collect();
                return Err(format!(
                    "invalid interpolation format for {rest:?}: write `$$` for a literal `$`"
                ));
            }
        }
    }
    match stop {
        Some(_) => Err("a `${` is never closed by `}`".into()),
        None => Ok((out, at)),
    }
}

fn value_or_blank(
    name: &str,
    lookup: &dyn Fn(&str) -> Option<String>,
    report: &mut Report,
) -> String {
    lookup(name).unwrap_or_else(|| {
        report.unset.insert(name.to_string());
        String::new()
    })
}

/// `${` already consumed at `at`: the name, an optional operator and its
/// word, then `}`.
fn braced(
    chars: &[char],
    at: usize,
    lookup: &dyn Fn(&str) -> Option<String>,
    report: &mut Report,
) -> Result<(String, usize), String> {
    let mut end = at;
    while end < chars.len() && is_name(chars[end]) {
        end += 1;
    }
    let name: String = chars[at..end].iter().collect();
    if name.is_empty() || !is_name_start(chars[at]) {
        return Err(format!(
            "invalid interpolation format: `${{{}`: a variable name starts with a letter or `_`",
            chars[at..].iter().take(20).collect::<String>()
        ));
    }
    let (op, word_at) = match (chars.get(end), chars.get(end + 1)) {
        (Some('}'), _) => return Ok((value_or_blank(&name, lookup, report), end + 1)),
        (None, _) => return Err(format!("`${{{name}` is never closed by `}}`")),
        (Some(':'), Some(&o @ ('-' | '?' | '+'))) => (format!(":{o}"), end + 2),
        (Some(&o @ ('-' | '?' | '+')), _) => (o.to_string(), end + 1),
        _ => {
            return Err(format!(
                "invalid interpolation format for `${{{name}…`: expected `}}`, `:-`, `-`, `:?`, `?`, `:+` or `+`"
            ));
        }
    };
    let (word, close) = expand(chars, word_at, Some('}'), lookup, report)?;
    let value = lookup(&name);
    let set = value.is_some();
    let non_empty = value.as_deref().is_some_and(|v| !v.is_empty());
    let text = match op.as_str() {
        ":-" => {
            if non_empty {
                value.unwrap_or_default()
            } else {
                word
            }
        }
        "-" => {
            if set {
                value.unwrap_or_default()
            } else {
                word
            }
        }
        ":+" => {
            if non_empty {
                word
            } else {
                String::new()
            }
        }
        "+" => {
            if set {
                word
            } else {
                String::new()
            }
        }
        ":?" if !non_empty => return Err(required(&name, &word, "is not set or empty")),
        "?" if !set => return Err(required(&name, &word, "is not set")),
        _ => value.unwrap_or_default(),
    };
    Ok((text, close + 1))
}

fn required(name: &str, word: &str, what: &str) -> String {
    if word.is_empty() {
        format!("required variable {name} {what}: set it in the environment or in .env")
    } else {
        format!("required variable {name} {what}: {word}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(s: &str) -> Result<String, String> {
        let lookup = |k: &str| match k {
            "SET" => Some("v".to_string()),
            "EMPTY" => Some(String::new()),
            _ => None,
        };
        string(s, &lookup, &mut Report::default())
    }

    #[test]
    fn every_form_of_the_spec() {
        assert_eq!(run("a $SET ${SET} b").unwrap(), "a v v b");
        assert_eq!(run("${UNSET:-d} ${EMPTY:-d} ${SET:-d}").unwrap(), "d d v");
        assert_eq!(run("${UNSET-d} [${EMPTY-d}] ${SET-d}").unwrap(), "d [] v");
        assert_eq!(
            run("[${UNSET:+r}] [${EMPTY:+r}] ${SET:+r}").unwrap(),
            "[] [] r"
        );
        assert_eq!(run("[${UNSET+r}] ${EMPTY+r} ${SET+r}").unwrap(), "[] r r");
        assert_eq!(run("$$SET costs $$5").unwrap(), "$SET costs $5");
        assert_eq!(run("${UNSET:-${SET}x}").unwrap(), "vx");
        assert_eq!(run("${SET:?must}").unwrap(), "v");
        assert_eq!(
            run("${UNSET:?give a password}").unwrap_err(),
            "required variable UNSET is not set or empty: give a password"
        );
        assert!(run("${EMPTY?x}").is_ok());
        assert!(run("${EMPTY:?x}").is_err());
    }

    #[test]
    fn unset_variables_are_blank_and_reported() {
        let mut r = Report::default();
        let got = string("x${NOPE}y$ALSO", &|_| None, &mut r).unwrap();
        assert_eq!(got, "xy");
        assert_eq!(r.unset.iter().collect::<Vec<_>>(), ["ALSO", "NOPE"]);
    }

    #[test]
    fn malformed_references_are_errors() {
        assert!(run("${SET").unwrap_err().contains("never closed"));
        assert!(run("${1A}").unwrap_err().contains("invalid interpolation"));
        assert!(run("cost: $5").unwrap_err().contains("`$$`"));
        assert!(run("${SET!x}").unwrap_err().contains("expected"));
    }

    #[test]
    fn trees_name_the_path_of_a_failure() {
        let mut doc: Value = serde_yaml_ng::from_str(
            "services:\n  db:\n    environment:\n      - P=${PW:?set PW}\n",
        )
        .unwrap();
        let e = tree(&mut doc, &|_| None, &mut Report::default(), "").unwrap_err();
        assert_eq!(
            e.to_string(),
            "services.db.environment[0]: required variable PW is not set or empty: set PW"
        );
    }
}
