//! Splitting an instruction's arguments the way BuildKit's line parsers do:
//! leading `--flag[=value]` words, whitespace-separated words that keep their
//! quotes (ENV/LABEL/ARG), and the JSON array (exec) form.

/// Splits off the leading `--name[=value]` words of `line` (a lone `--` ends
/// them). Returns (flags, rest). Quotes and escapes inside flags are removed.
pub(crate) fn extract_flags(line: &str, escape: char) -> (Vec<String>, String) {
    let chars: Vec<char> = line.chars().collect();
    let mut words = Vec::new();
    let mut pos = 0;
    loop {
        while pos < chars.len() && chars[pos].is_whitespace() {
            pos += 1;
        }
        if pos >= chars.len() {
            return (words, String::new());
        }
        if !(chars[pos] == '-' && chars.get(pos + 1) == Some(&'-')) {
            return (words, chars[pos..].iter().collect());
        }
        let mut word = String::new();
        let mut quote: Option<char> = None;
        while pos < chars.len() {
            let ch = chars[pos];
            match quote {
                None if ch.is_whitespace() => break,
                None if ch == '\'' || ch == '"' => quote = Some(ch),
                Some(q) if ch == q => quote = None,
                _ if ch == escape => {
                    if pos + 1 < chars.len() {
                        pos += 1;
                        word.push(chars[pos]);
                    }
                }
                _ => word.push(ch),
            }
            pos += 1;
        }
        if word == "--" {
            return (words, chars[pos..].iter().collect::<String>().trim().into());
        }
        words.push(word);
    }
}

/// Whitespace-separated words that keep quotes and escapes (BuildKit's
/// `parseWords`), for ENV, LABEL and ARG.
pub(crate) fn quoted_words(rest: &str, escape: char) -> Vec<String> {
    let chars: Vec<char> = rest.chars().collect();
    let mut words = Vec::new();
    let mut word = String::new();
    let mut blank_ok = false;
    let mut in_word = false;
    let mut quote: Option<char> = None;
    let mut pos = 0;
    while pos < chars.len() {
        let ch = chars[pos];
        if let Some(q) = quote {
            if ch == q {
                quote = None;
            } else if ch == escape && q != '\'' {
                if pos + 1 == chars.len() {
                    pos += 1;
                    continue;
                }
                word.push(ch);
                pos += 1;
            }
            word.push(chars[pos]);
            pos += 1;
            continue;
        }
        if ch.is_whitespace() {
            if in_word && (blank_ok || !word.is_empty()) {
                words.push(std::mem::take(&mut word));
            }
            word.clear();
            blank_ok = false;
            in_word = false;
            pos += 1;
            continue;
        }
        in_word = true;
        if ch == '\'' || ch == '"' {
            quote = Some(ch);
            blank_ok = true;
        }
        if ch == escape {
            if pos + 1 == chars.len() {
                pos += 1;
                continue;
            }
            word.push(ch);
            pos += 1;
        }
        word.push(chars[pos]);
        pos += 1;
    }
    if in_word && (blank_ok || !word.is_empty()) {
        words.push(word);
    }
    words
}

/// Splits on runs of whitespace (BuildKit's `parseStringsWhitespaceDelimited`).
pub(crate) fn whitespace_words(rest: &str) -> Vec<String> {
    rest.split_whitespace().map(str::to_string).collect()
}

/// Result of trying the JSON (exec) form.
pub(crate) enum Json {
    /// A JSON array of strings.
    Array(Vec<String>),
    /// Not JSON: use the shell / whitespace form.
    Other,
    /// A JSON array with something other than strings in it.
    NotStrings,
}

/// Tries `rest` as a JSON array of strings.
pub(crate) fn json_array(rest: &str) -> Json {
    let rest = rest.trim_start();
    if !rest.starts_with('[') {
        return Json::Other;
    }
    match serde_json::from_str::<Vec<serde_json::Value>>(rest) {
        Err(_) => Json::Other,
        Ok(values) => {
            let mut out = Vec::with_capacity(values.len());
            for v in values {
                match v {
                    serde_json::Value::String(s) => out.push(s),
                    _ => return Json::NotStrings,
                }
            }
            Json::Array(out)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_are_split_off_with_quotes_removed() {
        let (flags, rest) = extract_flags("--from=build --chown=\"a b\" src dst", '\\');
        assert_eq!(flags, ["--from=build", "--chown=a b"]);
        assert_eq!(rest, "src dst");
        let (flags, rest) = extract_flags("-- --not-a-flag x", '\\');
        assert!(flags.is_empty());
        assert_eq!(rest, "--not-a-flag x");
        let (flags, rest) = extract_flags("-x --y", '\\');
        assert!(flags.is_empty());
        assert_eq!(rest, "-x --y");
    }

    #[test]
    fn quoted_words_keep_quotes_and_split_on_blanks() {
        assert_eq!(
            quoted_words(r#"A="x y" B=z\ w C='q'"#, '\\'),
            [r#"A="x y""#, r"B=z\ w", "C='q'"]
        );
        assert_eq!(quoted_words("  a   b ", '\\'), ["a", "b"]);
        assert_eq!(quoted_words(r#"E="""#, '\\'), [r#"E="""#]);
    }

    #[test]
    fn json_arrays_of_strings_only() {
        assert!(matches!(json_array(r#" ["a", "b"]"#), Json::Array(v) if v == ["a", "b"]));
        assert!(matches!(json_array("[1]"), Json::NotStrings));
        assert!(matches!(json_array("[oops"), Json::Other));
        assert!(matches!(json_array("echo [x]"), Json::Other));
    }
}
