//! The crate's error: what went wrong, where in the Dockerfile (line and
//! column, 1-based) and how to fix it, with a kind callers can match on.

use std::fmt;

/// What class of problem an [`Error`] reports; match on this, never on text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// The text is not a valid Dockerfile (quotes, JSON, flags, arguments).
    Syntax,
    /// Valid Docker syntax that Bramble refuses (ONBUILD, `ADD <url>`, …).
    Unsupported,
    /// `$VAR` expansion failed (`${X:?msg}`, bad substitution).
    Expansion,
    /// Stages: unknown `--target`, `--from` or stage name, duplicate names.
    Stage,
    /// The build request itself (platform, build arguments, base images).
    Request,
}

/// A Dockerfile error with its location and a hint on how to fix it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct Error {
    /// The class of problem.
    pub kind: ErrorKind,
    /// 1-based line of the instruction (0: not tied to a line).
    pub line: usize,
    /// 1-based column in that line (1 when the whole instruction is meant).
    pub column: usize,
    /// What is wrong.
    pub message: String,
    /// How to fix it (may be empty).
    pub hint: String,
}

impl Error {
    pub(crate) fn new(kind: ErrorKind, line: usize, message: impl Into<String>) -> Self {
        Error {
            kind,
            line,
            column: 1,
            message: message.into(),
            hint: String::new(),
        }
    }

    pub(crate) fn syntax(line: usize, message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Syntax, line, message)
    }

    pub(crate) fn unsupported(line: usize, message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Unsupported, line, message)
    }

    pub(crate) fn hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = hint.into();
        self
    }

    pub(crate) fn at_column(mut self, column: usize) -> Self {
        self.column = column.max(1);
        self
    }

    /// Places an error from a helper (line 0) at `line`, keeping its column.
    pub(crate) fn on_line(mut self, line: usize) -> Self {
        if self.line == 0 {
            self.line = line;
        }
        self
    }
}

impl Error {
    /// The error as `FILE:LINE:COL: message (hint)`, naming the Dockerfile.
    pub fn display_in(&self, file: &str) -> String {
        let mut s = if self.line > 0 {
            format!("{file}:{}:{}: ", self.line, self.column)
        } else {
            format!("{file}: ")
        };
        s.push_str(&self.message);
        if !self.hint.is_empty() {
            s.push_str(&format!(" ({})", self.hint));
        }
        s
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.line > 0 {
            write!(f, "Dockerfile:{}:{}: ", self.line, self.column)?;
        }
        f.write_str(&self.message)?;
        if !self.hint.is_empty() {
            write!(f, " ({})", self.hint)?;
        }
        Ok(())
    }
}

/// A non-fatal finding (empty continuation line, unused build argument, …).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Warning {
    /// 1-based line (0: the whole build).
    pub line: usize,
    /// What was found and what to do about it.
    pub message: String,
}
