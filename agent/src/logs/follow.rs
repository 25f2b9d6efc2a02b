//! Reading logs back: [`read_history`] for `bramble logs`, and
//! [`LogFollower`] for `bramble logs -f`, which reads from an offset, returns
//! new complete lines, and notices rotation by the file's inode changing.

use std::fs::{self, File};
use std::io::{self, Read, Seek, SeekFrom};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use super::writer::rotated_path;

/// All lines of `path` and its rotated files, oldest first.
pub fn read_history(path: &Path) -> io::Result<Vec<String>> {
    let mut files = Vec::new();
    let mut n = 1;
    while rotated_path(path, n).exists() {
        files.push(rotated_path(path, n));
        n += 1;
    }
    files.reverse();
    files.push(path.to_owned());
    let mut out = Vec::new();
    for f in files {
        match fs::read(&f) {
            Ok(bytes) => out.extend(
                bytes
                    .split(|&b| b == b'\n')
                    .filter(|l| !l.is_empty())
                    .map(|l| String::from_utf8_lossy(l).into_owned()),
            ),
            // Rotated away between listing and reading.
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
    }
    Ok(out)
}

/// Where a new follower starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Start {
    /// From the first byte of the current file.
    Beginning,
    /// From the current end (only lines written from now on).
    End,
}

/// Follows one log file across rotations.
#[derive(Debug)]
pub struct LogFollower {
    path: PathBuf,
    file: Option<File>,
    ino: u64,
    offset: u64,
    partial: Vec<u8>,
}

impl LogFollower {
    /// Follows `path`, which may not exist yet.
    pub fn open(path: impl Into<PathBuf>, start: Start) -> io::Result<Self> {
        let mut f = Self {
            path: path.into(),
            file: None,
            ino: 0,
            offset: 0,
            partial: Vec::new(),
        };
        if f.reopen()? && start == Start::End {
            f.offset = f
                .file
                .as_ref()
                .map_or(Ok(0), |x| x.metadata().map(|m| m.len()))?;
        }
        Ok(f)
    }

    /// Resumes at `offset` of the file with inode `ino` (from an earlier
    /// follower's [`LogFollower::position`]); starts over if the file was
    /// rotated since.
    pub fn resume(path: impl Into<PathBuf>, ino: u64, offset: u64) -> io::Result<Self> {
        let mut f = Self::open(path, Start::Beginning)?;
        if f.file.is_some() && f.ino == ino {
            f.offset = offset;
        }
        Ok(f)
    }

    /// The followed path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// `(inode, offset)` of the next byte to read.
    pub fn position(&self) -> (u64, u64) {
        (self.ino, self.offset)
    }

    /// The lines before [`LogFollower::position`]: the rotated files older
    /// than the followed one (which may have been rotated meanwhile), then
    /// the followed file up to the offset — so history and
    /// [`LogFollower::poll`] together see each line once.
    pub fn history(&self) -> io::Result<Vec<String>> {
        let mut files = Vec::new();
        let mut n = 1;
        while rotated_path(&self.path, n).exists() {
            files.push(rotated_path(&self.path, n));
            n += 1;
        }
        files.reverse();
        let mut bytes = Vec::new();
        for f in files {
            match File::open(&f) {
                // The followed file, rotated: it and what is newer come below.
                Ok(file) if self.file.is_some() && file.metadata()?.ino() == self.ino => break,
                Ok(mut file) => {
                    file.read_to_end(&mut bytes)?;
                }
                // Rotated away between listing and reading.
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(e),
            }
        }
        if let Some(file) = &self.file {
            let mut file = file.try_clone()?;
            file.seek(SeekFrom::Start(0))?;
            let mut head = Vec::new();
            (&mut file).take(self.offset).read_to_end(&mut head)?;
            bytes.extend_from_slice(&head);
        }
        Ok(bytes
            .split(|&b| b == b'\n')
            .filter(|l| !l.is_empty())
            .map(|l| String::from_utf8_lossy(l).into_owned())
            .collect())
    }

    /// Opens the file now at `path`; `false` if there is none.
    fn reopen(&mut self) -> io::Result<bool> {
        match File::open(&self.path) {
            Ok(file) => {
                self.ino = file.metadata()?.ino();
                self.file = Some(file);
                self.offset = 0;
                self.partial.clear();
                Ok(true)
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Whether `path` now names another file than the one being read.
    fn rotated(&self) -> io::Result<bool> {
        match fs::metadata(&self.path) {
            Ok(m) => Ok(m.ino() != self.ino),
            // Between the writer's rename and its create: not yet.
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// The complete lines written since the last call (without newlines).
    /// A line still being written is kept for the next call.
    pub fn poll(&mut self) -> io::Result<Vec<String>> {
        let mut out = Vec::new();
        if self.file.is_none() && !self.reopen()? {
            return Ok(out);
        }
        // Check for rotation first: once the writer has moved on, the old
        // file is complete, so draining it loses nothing.
        let rotated = self.rotated()?;
        self.drain(&mut out)?;
        if rotated && self.reopen()? {
            self.drain(&mut out)?;
        }
        Ok(out)
    }

    fn drain(&mut self, out: &mut Vec<String>) -> io::Result<()> {
        let Some(file) = &mut self.file else {
            return Ok(());
        };
        let len = file.metadata()?.len();
        if len < self.offset {
            // Truncated in place: start over.
            self.offset = 0;
            self.partial.clear();
        }
        file.seek(SeekFrom::Start(self.offset))?;
        let mut buf = Vec::new();
        let n = file.read_to_end(&mut buf)?;
        self.offset += n as u64;
        self.partial.extend_from_slice(&buf);
        if let Some(last) = self.partial.iter().rposition(|&b| b == b'\n') {
            let rest = self.partial.split_off(last + 1);
            out.extend(
                self.partial
                    .split(|&b| b == b'\n')
                    .filter(|l| !l.is_empty())
                    .map(|l| String::from_utf8_lossy(l).into_owned()),
            );
            self.partial = rest;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::logs::format::{LogLine, Stream};
    use crate::logs::writer::{LogConfig, LogWriter};
    use std::fs::OpenOptions;
    use std::io::Write;
    use std::time::{Duration, SystemTime};

    fn t(i: u64) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(1_795_820_400 + i)
    }

    fn messages(lines: &[String]) -> Vec<String> {
        lines
            .iter()
            .map(|l| LogLine::parse(l).unwrap().message.to_owned())
            .collect()
    }

    #[test]
    fn returns_only_new_complete_lines() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("0.log");
        let mut f = LogFollower::open(&p, Start::Beginning).unwrap();
        assert!(f.poll().unwrap().is_empty(), "no file yet");
        let mut raw = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&p)
            .unwrap();
        raw.write_all(b"one\ntw").unwrap();
        assert_eq!(f.poll().unwrap(), ["one"]);
        assert!(f.poll().unwrap().is_empty());
        raw.write_all(b"o\nthree\n").unwrap();
        assert_eq!(f.poll().unwrap(), ["two", "three"]);
        assert_eq!(f.position().1, 14);
    }

    #[test]
    fn start_at_end_skips_existing_lines_and_resume_continues() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("0.log");
        let mut w = LogWriter::open(&p, LogConfig::default()).unwrap();
        w.write(Stream::Stdout, b"old\n", t(0)).unwrap();
        let mut f = LogFollower::open(&p, Start::End).unwrap();
        assert!(f.poll().unwrap().is_empty());
        w.write(Stream::Stdout, b"new\n", t(1)).unwrap();
        assert_eq!(messages(&f.poll().unwrap()), ["new"]);

        let (ino, off) = f.position();
        w.write(Stream::Stderr, b"later\n", t(2)).unwrap();
        let mut g = LogFollower::resume(&p, ino, off).unwrap();
        assert_eq!(messages(&g.poll().unwrap()), ["later"]);
        // A stale inode starts from the beginning.
        let mut h = LogFollower::resume(&p, ino + 1, off).unwrap();
        assert_eq!(messages(&h.poll().unwrap()), ["old", "new", "later"]);
    }

    #[test]
    fn follows_across_rotations_without_losing_lines() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("0.log");
        let cfg = LogConfig {
            max_size: 120,
            max_files: 2,
            max_line: 64,
        };
        let mut w = LogWriter::open(&p, cfg).unwrap();
        let mut f = LogFollower::open(&p, Start::Beginning).unwrap();
        let mut seen = Vec::new();
        let mut wrote = Vec::new();
        // Several lines per poll, so rotations happen between polls.
        for i in 0..30u64 {
            let msg = format!("m{i}");
            w.write(Stream::Stdout, format!("{msg}\n").as_bytes(), t(i))
                .unwrap();
            wrote.push(msg);
            if i % 2 == 1 {
                seen.extend(messages(&f.poll().unwrap()));
            }
        }
        assert!(rotated_path(&p, 1).exists(), "rotation happened");
        assert_eq!(seen, wrote);
    }

    #[test]
    fn history_then_poll_sees_each_line_once_across_a_rotation() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("0.log");
        let cfg = LogConfig {
            max_size: 120,
            max_files: 3,
            max_line: 64,
        };
        let mut w = LogWriter::open(&p, cfg).unwrap();
        for i in 0..4u64 {
            w.write(Stream::Stdout, format!("a{i}\n").as_bytes(), t(i))
                .unwrap();
        }
        let mut f = LogFollower::open(&p, Start::End).unwrap();
        // Written after the follower started, rotating the followed file
        // (2 lines a file).
        for i in 4..6u64 {
            w.write(Stream::Stdout, format!("a{i}\n").as_bytes(), t(i))
                .unwrap();
        }
        assert!(rotated_path(&p, 2).exists());
        let mut seen = messages(&f.history().unwrap());
        seen.extend(messages(&f.poll().unwrap()));
        let want: Vec<String> = (0..6).map(|i| format!("a{i}")).collect();
        assert_eq!(seen, want, "nothing twice, nothing lost");
    }

    #[test]
    fn truncation_in_place_starts_over() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("0.log");
        fs::write(&p, "a long first line\n").unwrap();
        let mut f = LogFollower::open(&p, Start::Beginning).unwrap();
        assert_eq!(f.poll().unwrap(), ["a long first line"]);
        let file = OpenOptions::new().write(true).open(&p).unwrap();
        file.set_len(0).unwrap();
        fs::write(&p, "b\n").unwrap();
        assert_eq!(f.poll().unwrap(), ["b"]);
    }

    #[test]
    fn history_reads_rotated_files_oldest_first() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("0.log");
        let cfg = LogConfig {
            max_size: 100,
            max_files: 4,
            max_line: 64,
        };
        let mut w = LogWriter::open(&p, cfg).unwrap();
        for i in 0..5u64 {
            w.write(Stream::Stdout, format!("h{i}\n").as_bytes(), t(i))
                .unwrap();
        }
        assert!(rotated_path(&p, 2).exists());
        let got = messages(&read_history(&p).unwrap());
        assert_eq!(got, ["h0", "h1", "h2", "h3", "h4"]);
        let empty = dir.path().join("none.log");
        assert!(read_history(&empty).unwrap().is_empty());
    }
}
