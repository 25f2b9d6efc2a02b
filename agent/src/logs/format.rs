//! The CRI log line format the kubelet writes and `kubectl logs` reads:
//! `<RFC 3339 nano timestamp> <stdout|stderr> <F|P> <message>\n`, where `P`
//! marks a piece of a line that was split and `F` its final piece.

use std::fmt;
use std::time::SystemTime;

/// Which pipe a line came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Stream {
    Stdout,
    Stderr,
}

impl Stream {
    /// `stdout` / `stderr`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Stdout => "stdout",
            Self::Stderr => "stderr",
        }
    }
}

impl fmt::Display for Stream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Formats one CRI line (with its trailing newline). `message` must not
/// contain a newline.
pub fn format_line(at: SystemTime, stream: Stream, partial: bool, message: &[u8]) -> Vec<u8> {
    let ts = humantime::format_rfc3339_nanos(at).to_string();
    let tag = if partial { "P" } else { "F" };
    let mut out = Vec::with_capacity(ts.len() + 10 + message.len());
    out.extend_from_slice(ts.as_bytes());
    out.push(b' ');
    out.extend_from_slice(stream.as_str().as_bytes());
    out.push(b' ');
    out.extend_from_slice(tag.as_bytes());
    out.push(b' ');
    out.extend_from_slice(message);
    out.push(b'\n');
    out
}

/// One parsed CRI line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogLine<'a> {
    /// The timestamp as written (RFC 3339 with nanoseconds).
    pub timestamp: &'a str,
    pub stream: Stream,
    /// `P`: more pieces of the same line follow.
    pub partial: bool,
    pub message: &'a str,
}

impl<'a> LogLine<'a> {
    /// Parses a line (without its newline); `None` if it is not CRI.
    pub fn parse(line: &'a str) -> Option<Self> {
        let mut it = line.splitn(4, ' ');
        let timestamp = it.next()?;
        humantime::parse_rfc3339(timestamp).ok()?;
        let stream = match it.next()? {
            "stdout" => Stream::Stdout,
            "stderr" => Stream::Stderr,
            _ => return None,
        };
        let partial = match it.next()? {
            "P" => true,
            "F" => false,
            _ => return None,
        };
        Some(Self {
            timestamp,
            stream,
            partial,
            message: it.next().unwrap_or(""),
        })
    }

    /// The timestamp as a time.
    pub fn time(&self) -> Option<SystemTime> {
        humantime::parse_rfc3339(self.timestamp).ok()
    }
}

/// Joins `P` pieces back into whole lines, per stream (what `kubectl logs`
/// prints).
#[derive(Debug, Default)]
pub struct Reassembler {
    stdout: String,
    stderr: String,
}

impl Reassembler {
    /// Feeds a parsed line; returns the whole message once its `F` piece
    /// arrives.
    pub fn push(&mut self, line: &LogLine<'_>) -> Option<(Stream, String)> {
        let buf = match line.stream {
            Stream::Stdout => &mut self.stdout,
            Stream::Stderr => &mut self.stderr,
        };
        buf.push_str(line.message);
        (!line.partial).then(|| (line.stream, std::mem::take(buf)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn at() -> SystemTime {
        // 2026-11-27T23:00:00.123456789Z
        SystemTime::UNIX_EPOCH + Duration::new(1_795_820_400, 123_456_789)
    }

    #[test]
    fn formats_like_the_kubelet() {
        let l = format_line(at(), Stream::Stdout, false, b"hello world");
        assert_eq!(
            String::from_utf8(l).unwrap(),
            "2026-11-27T23:00:00.123456789Z stdout F hello world\n"
        );
        let l = format_line(at(), Stream::Stderr, true, b"");
        assert_eq!(
            String::from_utf8(l).unwrap(),
            "2026-11-27T23:00:00.123456789Z stderr P \n"
        );
    }

    #[test]
    fn parses_what_it_formats() {
        let raw = String::from_utf8(format_line(at(), Stream::Stderr, true, b"a b  c")).unwrap();
        let l = LogLine::parse(raw.trim_end_matches('\n')).unwrap();
        assert_eq!(l.stream, Stream::Stderr);
        assert!(l.partial);
        assert_eq!(l.message, "a b  c");
        assert_eq!(l.time(), Some(at()));
        assert_eq!(LogLine::parse("not a log line"), None);
        assert_eq!(
            LogLine::parse("2026-11-27T23:00:00Z stdin F x"),
            None,
            "unknown stream"
        );
    }

    #[test]
    fn reassembles_partial_lines_per_stream() {
        let mut r = Reassembler::default();
        let lines = [
            "2026-11-27T23:00:00Z stdout P abc",
            "2026-11-27T23:00:00Z stderr F oops",
            "2026-11-27T23:00:00Z stdout F def",
        ];
        let out: Vec<_> = lines
            .iter()
            .filter_map(|l| r.push(&LogLine::parse(l).unwrap()))
            .collect();
        assert_eq!(
            out,
            [
                (Stream::Stderr, "oops".to_string()),
                (Stream::Stdout, "abcdef".to_string())
            ]
        );
    }
}
