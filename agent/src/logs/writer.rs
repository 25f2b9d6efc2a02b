//! [`LogWriter`]: turns the bytes of a container's stdout and stderr into
//! timestamped CRI lines in a size-capped file, rotated as `0.log` ->
//! `0.log.1` -> ... and at most [`LogConfig::max_files`] files in all.
//!
//! Each line goes out in one `write`, so a follower never sees half a line
//! from a healthy writer. Nothing is fsynced: logs are not worth SD-card wear.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use super::format::{Stream, format_line};

/// Limits of a container's log files.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LogConfig {
    /// Rotate before a line would take the current file past this size.
    pub max_size: u64,
    /// Files kept, the current one included (at least 1).
    pub max_files: usize,
    /// Longer lines are split into `P` pieces of this many bytes.
    pub max_line: usize,
}

impl Default for LogConfig {
    /// The kubelet's defaults: 10 MiB, 5 files, 16 KiB lines.
    fn default() -> Self {
        Self {
            max_size: 10 * 1024 * 1024,
            max_files: 5,
            max_line: 16 * 1024,
        }
    }
}

/// `path.n`: the `n`-th rotated file (`0.log.1` is the newest).
pub fn rotated_path(path: &Path, n: usize) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(format!(".{n}"));
    PathBuf::from(s)
}

/// `path.previous`: the log of the container's run before the current one
/// (`kubectl logs --previous`), at most one file of the size cap.
pub fn previous_log(path: &Path) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(".previous");
    PathBuf::from(s)
}

/// Writes one container's log file.
#[derive(Debug)]
pub struct LogWriter {
    path: PathBuf,
    config: LogConfig,
    file: File,
    size: u64,
    stdout: Vec<u8>,
    stderr: Vec<u8>,
}

impl LogWriter {
    /// Opens (or creates) `path` for appending, e.g. after the log process
    /// restarted.
    pub fn open(path: impl Into<PathBuf>, config: LogConfig) -> io::Result<Self> {
        let path = path.into();
        let file = open_append(&path)?;
        let size = file.metadata()?.len();
        let config = LogConfig {
            max_files: config.max_files.max(1),
            max_line: config.max_line.max(1),
            ..config
        };
        Ok(Self {
            path,
            config,
            file,
            size,
            stdout: Vec::new(),
            stderr: Vec::new(),
        })
    }

    /// The current file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Bytes in the current file.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// Feeds bytes read from `stream` at `now`: every complete line (and every
    /// `max_line` piece of a long one) is written; the rest waits for more.
    pub fn write(&mut self, stream: Stream, mut bytes: &[u8], now: SystemTime) -> io::Result<()> {
        while !bytes.is_empty() {
            let (segment, newline) = match bytes.iter().position(|&b| b == b'\n') {
                Some(i) => (&bytes[..i], true),
                None => (bytes, false),
            };
            bytes = &bytes[segment.len() + usize::from(newline)..];
            self.pending(stream).extend_from_slice(segment);
            self.emit_pieces(stream, now)?;
            if newline {
                let mut line = std::mem::take(self.pending(stream));
                if line.last() == Some(&b'\r') {
                    line.pop();
                }
                self.write_line(stream, false, &line, now)?;
            }
        }
        Ok(())
    }

    /// The stream ended: a pending unterminated line is written as final.
    pub fn finish(&mut self, stream: Stream, now: SystemTime) -> io::Result<()> {
        let line = std::mem::take(self.pending(stream));
        if !line.is_empty() {
            self.write_line(stream, false, &line, now)?;
        }
        Ok(())
    }

    fn pending(&mut self, stream: Stream) -> &mut Vec<u8> {
        match stream {
            Stream::Stdout => &mut self.stdout,
            Stream::Stderr => &mut self.stderr,
        }
    }

    /// Writes `P` pieces while more than `max_line` bytes are pending.
    fn emit_pieces(&mut self, stream: Stream, now: SystemTime) -> io::Result<()> {
        let max = self.config.max_line;
        while self.pending(stream).len() > max {
            let piece: Vec<u8> = self.pending(stream).drain(..max).collect();
            self.write_line(stream, true, &piece, now)?;
        }
        Ok(())
    }

    fn write_line(
        &mut self,
        stream: Stream,
        partial: bool,
        message: &[u8],
        now: SystemTime,
    ) -> io::Result<()> {
        let line = format_line(now, stream, partial, message);
        let len = line.len() as u64;
        if self.size > 0 && self.size + len > self.config.max_size {
            self.rotate()?;
        }
        self.file.write_all(&line)?;
        self.size += len;
        Ok(())
    }

    /// Shifts `path.n` to `path.n+1` (dropping the oldest), `path` to
    /// `path.1`, and starts a new empty `path`.
    pub fn rotate(&mut self) -> io::Result<()> {
        let keep = self.config.max_files;
        if keep == 1 {
            remove_if_exists(&self.path)?;
        } else {
            for n in (1..keep).rev() {
                let from = if n == 1 {
                    self.path.clone()
                } else {
                    rotated_path(&self.path, n - 1)
                };
                match fs::rename(&from, rotated_path(&self.path, n)) {
                    Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
                    _ => {}
                }
            }
        }
        // Files beyond the limit (left by a larger earlier limit).
        let mut n = keep;
        while remove_if_exists(&rotated_path(&self.path, n))? {
            n += 1;
        }
        self.file = open_append(&self.path)?;
        self.size = 0;
        Ok(())
    }
}

impl LogWriter {
    /// The container starts a new run: the current file replaces the
    /// previous run's log, the older rotations are removed (so a container
    /// keeps at most its files' cap for this run plus one file for the
    /// last), and a new empty file begins.
    pub fn new_run(&mut self) -> io::Result<()> {
        match fs::rename(&self.path, previous_log(&self.path)) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
            _ => {}
        }
        let mut n = 1;
        while remove_if_exists(&rotated_path(&self.path, n))? {
            n += 1;
        }
        self.file = open_append(&self.path)?;
        self.size = 0;
        Ok(())
    }
}

fn open_append(path: &Path) -> io::Result<File> {
    OpenOptions::new().create(true).append(true).open(path)
}

fn remove_if_exists(path: &Path) -> io::Result<bool> {
    match fs::remove_file(path) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::logs::format::LogLine;
    use std::time::Duration;

    fn t(ms: u64) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(1_795_820_400) + Duration::from_millis(ms)
    }

    fn lines(path: &Path) -> Vec<String> {
        fs::read_to_string(path)
            .unwrap()
            .lines()
            .map(str::to_owned)
            .collect()
    }

    #[test]
    fn splits_chunks_into_timestamped_lines_per_stream() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("0.log");
        let mut w = LogWriter::open(&p, LogConfig::default()).unwrap();
        w.write(Stream::Stdout, b"hel", t(0)).unwrap();
        w.write(Stream::Stderr, b"boom\n", t(1)).unwrap();
        w.write(Stream::Stdout, b"lo\r\nsecond\nthi", t(2)).unwrap();
        assert_eq!(
            lines(&p),
            [
                "2026-11-27T23:00:00.001000000Z stderr F boom",
                "2026-11-27T23:00:00.002000000Z stdout F hello",
                "2026-11-27T23:00:00.002000000Z stdout F second",
            ]
        );
        w.finish(Stream::Stdout, t(3)).unwrap();
        w.finish(Stream::Stderr, t(3)).unwrap();
        let all = lines(&p);
        assert_eq!(all.len(), 4);
        assert_eq!(all[3], "2026-11-27T23:00:00.003000000Z stdout F thi");
        assert_eq!(w.size(), fs::metadata(&p).unwrap().len());
    }

    #[test]
    fn long_lines_are_split_into_partial_pieces() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("0.log");
        let cfg = LogConfig {
            max_line: 4,
            ..LogConfig::default()
        };
        let mut w = LogWriter::open(&p, cfg).unwrap();
        w.write(Stream::Stdout, b"abcdefghij\nwxyz\n", t(0))
            .unwrap();
        let got: Vec<(bool, String)> = lines(&p)
            .iter()
            .map(|l| {
                let l = LogLine::parse(l).unwrap();
                (l.partial, l.message.to_owned())
            })
            .collect();
        assert_eq!(
            got,
            [
                (true, "abcd".into()),
                (true, "efgh".into()),
                (false, "ij".into()),
                (false, "wxyz".into()),
            ]
        );
    }

    #[test]
    fn a_new_run_keeps_the_last_runs_file_as_previous() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("main.log");
        let mut w = LogWriter::open(&p, LogConfig::default()).unwrap();
        w.write(Stream::Stdout, b"first run\n", t(1)).unwrap();
        std::fs::write(rotated_path(&p, 1), "older\n").unwrap();
        w.new_run().unwrap();
        w.write(Stream::Stdout, b"second run\n", t(2)).unwrap();
        let prev = std::fs::read_to_string(previous_log(&p)).unwrap();
        assert!(prev.ends_with(" stdout F first run\n"), "{prev}");
        let now = std::fs::read_to_string(&p).unwrap();
        assert!(
            now.ends_with(" stdout F second run\n") && !now.contains("first"),
            "{now}"
        );
        assert!(!rotated_path(&p, 1).exists());
        w.new_run().unwrap();
        let prev = std::fs::read_to_string(previous_log(&p)).unwrap();
        assert!(
            prev.contains("second run") && !prev.contains("first"),
            "{prev}"
        );
    }

    #[test]
    fn rotates_at_the_size_cap_and_keeps_n_files() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("0.log");
        let cfg = LogConfig {
            max_size: 200,
            max_files: 3,
            max_line: 64,
        };
        let mut w = LogWriter::open(&p, cfg).unwrap();
        for i in 0..40 {
            w.write(Stream::Stdout, format!("line {i:02}\n").as_bytes(), t(i))
                .unwrap();
        }
        for f in [p.clone(), rotated_path(&p, 1), rotated_path(&p, 2)] {
            let len = fs::metadata(&f).unwrap().len();
            assert!(len > 0 && len <= 200, "{f:?}: {len}");
        }
        assert!(!rotated_path(&p, 3).exists());
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 3);
        // Oldest to newest, the kept lines are the last ones, in order.
        let kept: Vec<String> = [rotated_path(&p, 2), rotated_path(&p, 1), p.clone()]
            .iter()
            .flat_map(|f| lines(f))
            .map(|l| LogLine::parse(&l).unwrap().message.to_owned())
            .collect();
        assert_eq!(kept.last().unwrap(), "line 39");
        let first: usize = kept[0][5..].parse().unwrap();
        let want: Vec<String> = (first..40).map(|i| format!("line {i:02}")).collect();
        assert_eq!(kept, want);
    }

    #[test]
    fn reopening_appends_and_counts_the_existing_size() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("0.log");
        let cfg = LogConfig {
            max_size: 80,
            max_files: 1,
            max_line: 64,
        };
        let mut w = LogWriter::open(&p, cfg).unwrap();
        w.write(Stream::Stdout, b"first\n", t(0)).unwrap();
        drop(w);
        let mut w = LogWriter::open(&p, cfg).unwrap();
        assert_eq!(w.size(), 46);
        w.write(Stream::Stdout, b"second\n", t(1)).unwrap();
        assert_eq!(lines(&p).len(), 1, "one file only: rotation truncates");
        assert!(lines(&p)[0].ends_with("F second"));
        assert!(!rotated_path(&p, 1).exists());
    }
}
