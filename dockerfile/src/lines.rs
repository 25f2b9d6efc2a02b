//! Physical lines → logical lines, following BuildKit's rules: parser
//! directives (`# syntax=`, `# escape=`, `# check=`) only at the very top
//! (the first line that is not one ends them: an instruction, an empty line
//! or any other comment); comment lines anywhere, also inside continuations;
//! a line ending in the escape character (not itself escaped) continues on
//! the next; empty lines inside a continuation are skipped with a warning.
//! Heredoc bodies are read raw, line by line, up to their delimiter.

use crate::{Error, Warning};

/// Parser directives found at the top of the file.
#[derive(Debug, Default)]
pub(crate) struct Directives {
    pub escape: Option<char>,
    pub syntax: Option<String>,
    pub check: Option<String>,
    done: bool,
    seen: Vec<String>,
}

impl Directives {
    /// Looks at one physical line (left-trimmed); returns true if it was a directive.
    fn scan(&mut self, line: &str, lineno: usize) -> Result<bool, Error> {
        if self.done {
            return Ok(false);
        }
        let Some(rest) = line.strip_prefix('#') else {
            self.done = true;
            return Ok(false);
        };
        let rest = rest.trim_start();
        let Some((key, value)) = rest.split_once('=') else {
            self.done = true;
            return Ok(false);
        };
        let key = key.trim_end();
        let value = value.trim();
        let valid_key = key.chars().next().is_some_and(|c| c.is_ascii_alphabetic())
            && key.chars().all(|c| c.is_ascii_alphanumeric());
        let key = key.to_ascii_lowercase();
        if !valid_key || value.is_empty() || !matches!(key.as_str(), "syntax" | "escape" | "check")
        {
            self.done = true;
            return Ok(false);
        }
        if self.seen.contains(&key) {
            return Err(Error::syntax(
                lineno,
                format!("only one {key} parser directive can be used"),
            )
            .hint("remove the repeated directive"));
        }
        self.seen.push(key.clone());
        match key.as_str() {
            "escape" => match value {
                "\\" => self.escape = Some('\\'),
                "`" => self.escape = Some('`'),
                _ => {
                    return Err(Error::syntax(
                        lineno,
                        format!("invalid escape token '{value}' does not match ` or \\"),
                    )
                    .hint("use `# escape=\\` or `# escape=``"));
                }
            },
            "syntax" => self.syntax = Some(value.to_string()),
            _ => self.check = Some(value.to_string()),
        }
        Ok(true)
    }
}

/// One logical line: an instruction's text with continuations joined.
#[derive(Debug)]
pub(crate) struct Logical {
    pub text: String,
    /// 1-based first physical line.
    pub start: usize,
}

/// Reads logical lines and heredoc bodies from the Dockerfile text.
pub(crate) struct LineReader<'a> {
    lines: Vec<&'a str>,
    /// Index of the next physical line.
    next: usize,
    pub directives: Directives,
    pub warnings: Vec<Warning>,
}

fn trim_newline(s: &str) -> &str {
    s.trim_end_matches(['\r', '\n'])
}

fn is_comment(s: &str) -> bool {
    s.trim_start().starts_with('#')
}

impl<'a> LineReader<'a> {
    pub fn new(text: &'a str) -> Self {
        let text = text.strip_prefix('\u{feff}').unwrap_or(text);
        LineReader {
            lines: text.split_inclusive('\n').collect(),
            next: 0,
            directives: Directives::default(),
            warnings: Vec::new(),
        }
    }

    fn escape(&self) -> char {
        self.directives.escape.unwrap_or('\\')
    }

    /// Number of physical lines consumed so far (= last line read, 1-based).
    pub fn consumed(&self) -> usize {
        self.next
    }

    /// The original text of physical lines `start..=end` (1-based).
    pub fn original(&self, start: usize, end: usize) -> String {
        self.lines[start - 1..end].concat()
    }

    /// Removes a trailing continuation (escape char + blanks) if present.
    fn trim_continuation(&self, line: &str) -> (String, bool) {
        let esc = self.escape();
        let trimmed = line.trim_end_matches([' ', '\t']);
        if let Some(before) = trimmed.strip_suffix(esc) {
            // `\\` at the end is an escaped escape, not a continuation
            // (BuildKit's regex needs a non-escape character before it).
            if before.is_empty() || !before.ends_with(esc) {
                return (before.to_string(), false);
            }
        }
        (line.to_string(), true)
    }

    /// The next logical line, or None at the end.
    pub fn next_logical(&mut self) -> Result<Option<Logical>, Error> {
        while self.next < self.lines.len() {
            let raw = trim_newline(self.lines[self.next]).trim_start();
            self.next += 1;
            let lineno = self.next;
            self.directives.scan(raw, lineno)?;
            let content = if is_comment(raw) { "" } else { raw };
            let (first, mut end) = self.trim_continuation(content);
            if end && first.is_empty() {
                continue;
            }
            let mut text = first;
            let mut empty_continuation = false;
            while !end && self.next < self.lines.len() {
                let raw = trim_newline(self.lines[self.next]);
                self.next += 1;
                let lineno = self.next;
                self.directives.scan(raw.trim_start(), lineno)?;
                if is_comment(raw) {
                    continue;
                }
                if raw.trim().is_empty() {
                    empty_continuation = true;
                    continue;
                }
                let (part, e) = self.trim_continuation(raw);
                text.push_str(&part);
                end = e;
            }
            if empty_continuation {
                self.warnings.push(Warning {
                    line: lineno,
                    message: format!(
                        "empty continuation line in the instruction starting here \
                         (remove the empty line; Docker will make this an error): {}",
                        text.trim()
                    ),
                });
            }
            return Ok(Some(Logical {
                text,
                start: lineno,
            }));
        }
        Ok(None)
    }

    /// Reads a heredoc body up to the line equal to `name` (after removing
    /// leading tabs if `chomp`). Returns the body, each line with its newline.
    pub fn heredoc_body(&mut self, name: &str, chomp: bool, start: usize) -> Result<String, Error> {
        let mut body = String::new();
        while self.next < self.lines.len() {
            let raw = self.lines[self.next];
            self.next += 1;
            let mut candidate = trim_newline(raw);
            if chomp {
                candidate = candidate.trim_start_matches('\t');
            }
            if candidate == name {
                return Ok(body);
            }
            body.push_str(raw);
        }
        Err(
            Error::syntax(start, format!("unterminated heredoc <<{name}")).hint(format!(
                "end the here-document with a line containing only `{name}`"
            )),
        )
    }
}
