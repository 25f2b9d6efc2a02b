//! A build job's log on this board, kept after the job for `bramble logs
//! build/NAME`: `DATA_DIR/build-logs/{uid}-{platform}.log` (the platform's
//! `/` as `-`), written as BuildKit's plain progress reads — each step as
//! it starts (`#3 [2/4] RUN make`), the output of its process as it comes
//! (the step's container appends to the same file), how it ended (`#3
//! DONE 1.2s`, `#3 CACHED`, `#3 ERROR: exit code 1`) — and the job's end
//! (`DONE`, `ERROR: ...`, `CANCELLED`).
//!
//! While the job runs, `{name}.running` exists beside the log: a follower
//! streams until it is gone. An agent that starts removes the markers an
//! earlier process left ([`BuildLogs::open`]). The newest [`KEEP`] logs
//! are kept; older ones go when a new job starts.

use std::fs::{File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// How many build logs a board keeps.
pub const KEEP: usize = 32;

/// The directory of build logs.
#[derive(Debug, Clone)]
pub struct BuildLogs {
    dir: PathBuf,
}

impl BuildLogs {
    /// The logs in `dir`; markers of jobs an earlier agent ran are removed
    /// (those jobs ended with that agent).
    pub fn open(dir: &Path) -> BuildLogs {
        if let Ok(entries) = std::fs::read_dir(dir) {
            for e in entries.flatten() {
                if e.path().extension().is_some_and(|x| x == "running") {
                    let _ = std::fs::remove_file(e.path());
                }
            }
        }
        BuildLogs {
            dir: dir.to_path_buf(),
        }
    }

    /// Where the log of job (`uid`, `platform`) is; see [`log_path`].
    pub fn path(&self, uid: &str, platform: &str) -> Option<PathBuf> {
        log_path(&self.dir, uid, platform)
    }

    /// Starts the log of a job (an earlier run's log of the same job is
    /// replaced) and removes the oldest logs beyond [`KEEP`].
    pub fn create(&self, uid: &str, platform: &str) -> io::Result<BuildLog> {
        let path = self.path(uid, platform).ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("{uid:?} {platform:?}: not a build job"),
            )
        })?;
        std::fs::create_dir_all(&self.dir)?;
        self.prune(KEEP.saturating_sub(1));
        let file = OpenOptions::new()
            .create(true)
            .write(true)
            .truncate(true)
            .read(true)
            .open(&path)?;
        let marker = running_marker(&path);
        File::create(&marker)?;
        Ok(BuildLog { path, file, marker })
    }

    /// Removes the oldest logs (by modification time) beyond `keep`, never
    /// the log of a running job.
    fn prune(&self, keep: usize) {
        let Ok(entries) = std::fs::read_dir(&self.dir) else {
            return;
        };
        let mut logs: Vec<(std::time::SystemTime, PathBuf)> = entries
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|x| x == "log"))
            .filter(|p| !running_marker(p).exists())
            .filter_map(|p| Some((p.metadata().ok()?.modified().ok()?, p)))
            .collect();
        logs.sort();
        let extra = logs.len().saturating_sub(keep);
        for (_, p) in logs.into_iter().take(extra) {
            let _ = std::fs::remove_file(p);
        }
    }
}

/// Where the log of job (`uid`, `platform`) is in `dir`; `None` for names
/// that are not a uid and a platform (they never reach the file system).
pub fn log_path(dir: &Path, uid: &str, platform: &str) -> Option<PathBuf> {
    let safe = |s: &str, extra: u8| {
        !s.is_empty()
            && s.bytes()
                .all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == extra)
    };
    if !safe(uid, b'-') || !safe(platform, b'/') || platform.contains("..") {
        return None;
    }
    Some(dir.join(format!("{uid}-{}.log", platform.replace('/', "-"))))
}

/// `x.log` → `x.running`.
pub fn running_marker(log: &Path) -> PathBuf {
    log.with_extension("running")
}

/// The log of one running job; see the module docs. Dropping it ends the
/// job's log (the marker goes).
#[derive(Debug)]
pub struct BuildLog {
    path: PathBuf,
    file: File,
    marker: PathBuf,
}

impl BuildLog {
    /// The file (a step's process appends its output to it).
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// How long the log is now.
    pub fn len(&self) -> u64 {
        self.file.metadata().map_or(0, |m| m.len())
    }

    /// Whether nothing was written yet.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Appends `line` on a line of its own (after output that did not end
    /// its last line). A log that cannot be written never fails the
    /// build: the write is skipped with a warning.
    pub fn line(&mut self, line: &str) {
        let mut text = String::new();
        if !self.ends_a_line() {
            text.push('\n');
        }
        text.push_str(line);
        text.push('\n');
        let written = self
            .file
            .seek(SeekFrom::End(0))
            .and_then(|_| self.file.write_all(text.as_bytes()));
        if let Err(e) = written {
            tracing::warn!(log = %self.path.display(), error = %e, "writing the build log");
        }
    }

    fn ends_a_line(&mut self) -> bool {
        let len = self.len();
        if len == 0 {
            return true;
        }
        let mut last = [0u8; 1];
        self.file
            .seek(SeekFrom::Start(len - 1))
            .and_then(|_| self.file.read_exact(&mut last))
            .map_or(true, |()| last[0] == b'\n')
    }

    /// The last `lines` lines written since byte `from` (a failed step's
    /// output, for its error), joined by newlines.
    pub fn tail_since(&self, from: u64, lines: usize) -> String {
        let mut text = Vec::new();
        let read = File::open(&self.path).and_then(|mut f| {
            f.seek(SeekFrom::Start(from))?;
            f.read_to_end(&mut text)
        });
        if read.is_err() {
            return String::new();
        }
        let text = String::from_utf8_lossy(&text);
        let all: Vec<&str> = text.lines().collect();
        all[all.len().saturating_sub(lines)..].join("\n")
    }
}

impl Drop for BuildLog {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.marker);
    }
}

/// `1.234s`, as BuildKit prints a step's time.
pub fn seconds(d: Duration) -> String {
    format!("{:.1}s", d.as_secs_f64())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_that_are_not_a_job_never_become_paths() {
        let dir = tempfile::tempdir().unwrap();
        let logs = BuildLogs::open(dir.path());
        assert_eq!(
            logs.path("1f2e-33", "linux/arm/v7").unwrap(),
            dir.path().join("1f2e-33-linux-arm-v7.log")
        );
        assert!(logs.path("../x", "linux/amd64").is_none());
        assert!(logs.path("a", "linux/../../etc").is_none());
        assert!(logs.path("", "linux/amd64").is_none());
        assert!(logs.path("a b", "linux/amd64").is_none());
    }

    #[test]
    fn lines_start_after_unended_output_and_the_marker_lives_with_the_log() {
        let dir = tempfile::tempdir().unwrap();
        let logs = BuildLogs::open(dir.path());
        let mut log = logs.create("u1", "linux/amd64").unwrap();
        let marker = running_marker(log.path());
        assert!(marker.exists());
        log.line("#1 [1/2] RUN x");
        let from = log.len();
        // The step's process appends on its own, without a last newline.
        OpenOptions::new()
            .append(true)
            .open(log.path())
            .unwrap()
            .write_all(b"out 1\nout 2")
            .unwrap();
        log.line("#1 DONE 0.1s");
        assert_eq!(log.tail_since(from, 1), "#1 DONE 0.1s");
        assert_eq!(log.tail_since(from, 20), "out 1\nout 2\n#1 DONE 0.1s");
        let path = log.path().to_path_buf();
        drop(log);
        assert!(!marker.exists());
        assert_eq!(
            std::fs::read_to_string(path).unwrap(),
            "#1 [1/2] RUN x\nout 1\nout 2\n#1 DONE 0.1s\n"
        );
    }

    #[test]
    fn old_logs_go_running_ones_stay_and_stale_markers_are_cleared() {
        let dir = tempfile::tempdir().unwrap();
        let logs = BuildLogs::open(dir.path());
        let running = logs.create("run", "linux/amd64").unwrap();
        let mut kept = Vec::new();
        for i in 0..KEEP + 3 {
            let log = logs.create(&format!("u{i}"), "linux/amd64").unwrap();
            kept.push(log.path().to_path_buf());
        }
        let count = std::fs::read_dir(dir.path())
            .unwrap()
            .flatten()
            .filter(|e| e.path().extension().is_some_and(|x| x == "log"))
            .count();
        assert_eq!(count, KEEP + 1, "{KEEP} ended logs and the running one");
        assert!(running.path().exists());
        assert!(kept.last().unwrap().exists());
        // An agent that dies leaves its marker; the next one clears it.
        let marker = running_marker(running.path());
        std::mem::forget(running);
        assert!(marker.exists());
        BuildLogs::open(dir.path());
        assert!(!marker.exists());
    }
}
