//! `.env` and `env_file` files: `KEY=VALUE` lines, `#` comments, blank
//! lines, an optional `export ` prefix, single-quoted values taken as they
//! are, double-quoted values with `\n`, `\t`, `\"` and `\\` escapes, and
//! unquoted values with a trailing ` #comment` removed (docker compose's
//! dotenv rules). A bare `KEY` takes the value from the environment.

use std::path::Path;

use anyhow::{Context as _, bail};

/// The pairs of a file, in order; `None` for a bare `KEY` whose value the
/// caller takes from its environment.
pub fn parse(text: &str, source: &str) -> anyhow::Result<Vec<(String, Option<String>)>> {
    let mut out = Vec::new();
    for (n, raw) in text.lines().enumerate() {
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let line = line
            .strip_prefix("export ")
            .map(str::trim_start)
            .unwrap_or(line);
        let (key, value) = match line.split_once('=') {
            Some((k, v)) => (k.trim(), Some(value(v.trim(), source, n + 1)?)),
            None => (line, None),
        };
        if key.is_empty() || key.chars().any(char::is_whitespace) {
            bail!(
                "{source}:{}: {raw:?} is not KEY=VALUE (a key has no spaces)",
                n + 1
            );
        }
        out.push((key.to_string(), value));
    }
    Ok(out)
}

fn value(v: &str, source: &str, line: usize) -> anyhow::Result<String> {
    if let Some(rest) = v.strip_prefix('\'') {
        return match rest.find('\'') {
            Some(end) => Ok(rest[..end].to_string()),
            None => bail!("{source}:{line}: a single quote is never closed"),
        };
    }
    if let Some(rest) = v.strip_prefix('"') {
        let mut out = String::new();
        let mut chars = rest.chars();
        while let Some(c) = chars.next() {
            match c {
                '"' => return Ok(out),
                '\\' => match chars.next() {
                    Some('n') => out.push('\n'),
                    Some('t') => out.push('\t'),
                    Some('r') => out.push('\r'),
                    Some(o) => out.push(o),
                    None => break,
                },
                c => out.push(c),
            }
        }
        bail!("{source}:{line}: a double quote is never closed");
    }
    let v = match v.find(" #") {
        Some(i) => &v[..i],
        None => v,
    };
    Ok(v.trim_end().to_string())
}

/// Reads and parses a file, resolving bare keys with `lookup`.
pub fn read(
    path: &Path,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> anyhow::Result<Vec<(String, String)>> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("reading env file {}", path.display()))?;
    Ok(parse(&text, &path.display().to_string())?
        .into_iter()
        .filter_map(|(k, v)| match v {
            Some(v) => Some((k, v)),
            None => lookup(&k).map(|v| (k, v)),
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn docker_compose_dotenv_rules() {
        let text = "# comment\n\nA=1\nexport B = two words \nC='x #y $Z'\nD=\"l1\\nl2 \\\"q\\\"\"\nE=v #note\nF\nG=\n";
        let got = parse(text, ".env").unwrap();
        let want: Vec<(String, Option<String>)> = vec![
            ("A".into(), Some("1".into())),
            ("B".into(), Some("two words".into())),
            ("C".into(), Some("x #y $Z".into())),
            ("D".into(), Some("l1\nl2 \"q\"".into())),
            ("E".into(), Some("v".into())),
            ("F".into(), None),
            ("G".into(), Some(String::new())),
        ];
        assert_eq!(got, want);
    }

    #[test]
    fn bad_lines_name_file_and_line() {
        let e = parse("A=1\nB C=2\n", "app.env").unwrap_err();
        assert!(e.to_string().starts_with("app.env:2:"), "{e}");
        let e = parse("A='open\n", "app.env").unwrap_err();
        assert_eq!(e.to_string(), "app.env:1: a single quote is never closed");
    }
}
