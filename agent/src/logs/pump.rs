//! [`LogPump`]: one agent thread that moves every container's stdout and
//! stderr from named pipes (FIFOs) into its rotated CRI log file
//! ([`LogWriter`]).
//!
//! Each container gets two FIFOs, `<dir>/<key>.out` and `<dir>/<key>.err`,
//! on tmpfs. The container's stdout/stderr are the FIFOs opened
//! **read-write** (the runtime does that for a FIFO path, see
//! `runtime::core::open_output`), and the pump opens them read-write too. So a
//! FIFO always has a reader: when the agent is killed or restarts, a
//! container's writes never hit `EPIPE`/`SIGPIPE`; they fill the pipe's
//! kernel buffer (64 KiB by default) and then block until a new agent
//! [`LogPump::attach`]es the same FIFOs again and carries on. What a
//! container writes while no agent runs is lost only if it also exits
//! before an agent returns (the pipe goes away with its last fd).
//!
//! The FIFOs live as long as the container *name* in the pod: restarts of
//! a container reuse them and append to the same log file; the pod's
//! teardown [`LogPump::detach`]es (drains what is left, ends partial lines,
//! removes the FIFOs). No process per container, no pipe tied to the agent.

use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io::{self, Read};
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::SystemTime;

use rustix::event::{PollFd, PollFlags, poll};
use rustix::pipe::{PipeFlags, pipe_with};

use super::format::Stream;
use super::writer::{LogConfig, LogWriter};

/// Bytes read from a FIFO per `read`.
const CHUNK: usize = 64 * 1024;

/// Reads per stream per round of the pump thread (16 x 64 KiB), so one
/// chatty container cannot keep the others waiting.
const FAIR_READS: usize = 16;

/// One container's FIFOs and log file.
struct Source {
    key: String,
    stdout: Arc<File>,
    stderr: Arc<File>,
    writer: LogWriter,
    /// Detached: the pump thread skips it.
    closed: bool,
}

impl Source {
    /// Reads what is buffered in `stream`'s FIFO without blocking and logs it.
    fn drain(&mut self, stream: Stream, buf: &mut [u8]) -> io::Result<()> {
        self.drain_at_most(stream, buf, usize::MAX)
    }

    /// [`Source::drain`], but at most `reads` reads: a container writing
    /// faster than its log is written must not starve the others.
    fn drain_at_most(&mut self, stream: Stream, buf: &mut [u8], reads: usize) -> io::Result<()> {
        for _ in 0..reads {
            let mut file: &File = match stream {
                Stream::Stdout => &self.stdout,
                Stream::Stderr => &self.stderr,
            };
            match file.read(buf) {
                Ok(0) => return Ok(()),
                Ok(n) => self.writer.write(stream, &buf[..n], SystemTime::now())?,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }
}

struct Shared {
    dir: PathBuf,
    config: LogConfig,
    sources: Mutex<HashMap<String, Arc<Mutex<Source>>>>,
    /// Written to wake the thread after the set of sources changed.
    wake: OwnedFd,
    stop: std::sync::atomic::AtomicBool,
}

/// The agent's log pump. See the module docs.
pub struct LogPump {
    shared: Arc<Shared>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl std::fmt::Debug for LogPump {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LogPump")
            .field("dir", &self.shared.dir)
            .finish_non_exhaustive()
    }
}

/// The container side of an attached FIFO pair: paths for
/// `ContainerConfig::stdout_path` / `stderr_path`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fifos {
    pub stdout: PathBuf,
    pub stderr: PathBuf,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl LogPump {
    /// Starts the pump thread; FIFOs are made in `dir` (tmpfs, e.g.
    /// `/run/bramble/fifo`).
    pub fn start(dir: impl Into<PathBuf>, config: LogConfig) -> io::Result<LogPump> {
        let dir = dir.into();
        std::fs::create_dir_all(&dir).map_err(|e| {
            io::Error::new(
                e.kind(),
                format!("creating FIFO dir {}: {e}", dir.display()),
            )
        })?;
        let (wake_r, wake_w) = pipe_with(PipeFlags::CLOEXEC | PipeFlags::NONBLOCK)?;
        let shared = Arc::new(Shared {
            dir,
            config,
            sources: Mutex::new(HashMap::new()),
            wake: wake_w,
            stop: std::sync::atomic::AtomicBool::new(false),
        });
        let thread_shared = shared.clone();
        let thread = std::thread::Builder::new()
            .name("log-pump".into())
            .spawn(move || run(&thread_shared, File::from(wake_r)))?;
        Ok(LogPump {
            shared,
            thread: Some(thread),
        })
    }

    /// The FIFO paths of `key` (whether attached or not).
    pub fn fifos(&self, key: &str) -> Fifos {
        Fifos {
            stdout: self.shared.dir.join(format!("{key}.out")),
            stderr: self.shared.dir.join(format!("{key}.err")),
        }
    }

    /// Starts pumping `key`'s FIFOs (made if missing, reused if a previous
    /// agent left them) into the log file `log_path`. Attaching an attached
    /// key returns its FIFOs again.
    pub fn attach(&self, key: &str, log_path: &Path) -> io::Result<Fifos> {
        let fifos = self.fifos(key);
        let mut sources = lock(&self.shared.sources);
        if sources.contains_key(key) {
            return Ok(fifos);
        }
        let stdout = open_fifo(&fifos.stdout)?;
        let stderr = open_fifo(&fifos.stderr)?;
        let writer = LogWriter::open(log_path, self.shared.config).map_err(|e| {
            io::Error::new(e.kind(), format!("opening log {}: {e}", log_path.display()))
        })?;
        sources.insert(
            key.to_string(),
            Arc::new(Mutex::new(Source {
                key: key.to_string(),
                stdout: Arc::new(stdout),
                stderr: Arc::new(stderr),
                writer,
                closed: false,
            })),
        );
        drop(sources);
        self.wake();
        tracing::debug!(key, log = %log_path.display(), "log FIFOs attached");
        Ok(fifos)
    }

    /// Stops pumping `key`: logs what is still buffered, ends partial lines
    /// and removes the FIFOs. Unknown keys only get their FIFOs removed.
    pub fn detach(&self, key: &str) -> io::Result<()> {
        let source = lock(&self.shared.sources).remove(key);
        let mut result = Ok(());
        if let Some(source) = source {
            let mut s = lock(&source);
            let mut buf = vec![0; CHUNK];
            for stream in [Stream::Stdout, Stream::Stderr] {
                if let Err(e) = s.drain(stream, &mut buf) {
                    result = Err(e);
                }
                if let Err(e) = s.writer.finish(stream, SystemTime::now()) {
                    result = Err(e);
                }
            }
            s.closed = true;
        }
        self.wake();
        let fifos = self.fifos(key);
        for p in [&fifos.stdout, &fifos.stderr] {
            match std::fs::remove_file(p) {
                Err(e) if e.kind() != io::ErrorKind::NotFound => result = Err(e),
                _ => {}
            }
        }
        result
    }

    /// A new run of `key`'s container begins (a restart): what the last
    /// run left in the FIFOs is logged and partial lines ended, then its
    /// file becomes the previous run's log ([`LogWriter::new_run`]).
    /// Nothing for a key not attached.
    pub fn new_run(&self, key: &str) -> io::Result<()> {
        let Some(source) = lock(&self.shared.sources).get(key).cloned() else {
            return Ok(());
        };
        let mut s = lock(&source);
        let mut buf = vec![0; CHUNK];
        for stream in [Stream::Stdout, Stream::Stderr] {
            s.drain(stream, &mut buf)?;
            s.writer.finish(stream, SystemTime::now())?;
        }
        s.writer.new_run()
    }

    /// Keys currently attached.
    pub fn attached(&self) -> Vec<String> {
        lock(&self.shared.sources).keys().cloned().collect()
    }

    /// FIFO keys present in the directory (attached or left by a crash).
    pub fn fifo_keys(&self) -> io::Result<Vec<String>> {
        let mut keys = Vec::new();
        for entry in std::fs::read_dir(&self.shared.dir)? {
            let name = entry?.file_name();
            let name = name.to_string_lossy();
            if let Some(key) = name
                .strip_suffix(".out")
                .or_else(|| name.strip_suffix(".err"))
                && !keys.iter().any(|k| k == key)
            {
                keys.push(key.to_string());
            }
        }
        Ok(keys)
    }

    fn wake(&self) {
        let _ = rustix::io::write(&self.shared.wake, &[1]);
    }
}

impl Drop for LogPump {
    /// Stops the thread after logging what is buffered; FIFOs stay (the
    /// containers keep them open; a later pump re-attaches).
    fn drop(&mut self) {
        self.shared
            .stop
            .store(true, std::sync::atomic::Ordering::SeqCst);
        self.wake();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Makes the FIFO if missing and opens it read-write, non-blocking.
fn open_fifo(path: &Path) -> io::Result<File> {
    match rustix::fs::mkfifoat(
        rustix::fs::CWD,
        path,
        rustix::fs::Mode::from_raw_mode(0o600),
    ) {
        Ok(()) | Err(rustix::io::Errno::EXIST) => {}
        Err(e) => {
            return Err(io::Error::new(
                io::Error::from(e).kind(),
                format!("making FIFO {}: {e}", path.display()),
            ));
        }
    }
    use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(path)
        .map_err(|e| io::Error::new(e.kind(), format!("opening FIFO {}: {e}", path.display())))?;
    if !file.metadata()?.file_type().is_fifo() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{} exists and is not a FIFO", path.display()),
        ));
    }
    Ok(file)
}

/// The pump thread: poll every source's FIFOs, log what is readable.
fn run(shared: &Shared, mut wake: File) {
    let mut buf = vec![0; CHUNK];
    loop {
        if shared.stop.load(std::sync::atomic::Ordering::SeqCst) {
            for s in lock(&shared.sources).values() {
                let mut s = lock(s);
                for stream in [Stream::Stdout, Stream::Stderr] {
                    // Bounded: a container still writing must not hold the
                    // agent's exit (what is left waits in the FIFO).
                    let _ = s.drain_at_most(stream, &mut buf, FAIR_READS);
                }
            }
            return;
        }
        let sources: Vec<Arc<Mutex<Source>>> = lock(&shared.sources).values().cloned().collect();
        // The files are shared out so polling needs no lock; a detached
        // source's fds stay open until this snapshot is dropped.
        let files: Vec<(Arc<File>, Arc<File>)> = sources
            .iter()
            .map(|s| {
                let s = lock(s);
                (s.stdout.clone(), s.stderr.clone())
            })
            .collect();
        let mut fds = Vec::with_capacity(1 + 2 * files.len());
        fds.push(PollFd::new(&wake, PollFlags::IN));
        for (o, e) in &files {
            fds.push(PollFd::new(o.as_ref(), PollFlags::IN));
            fds.push(PollFd::new(e.as_ref(), PollFlags::IN));
        }
        match poll(&mut fds, None) {
            Ok(_) => {}
            Err(rustix::io::Errno::INTR) => continue,
            Err(e) => {
                tracing::error!(error = %e, "log pump: poll failed");
                std::thread::sleep(std::time::Duration::from_millis(100));
                continue;
            }
        }
        let ready: Vec<bool> = fds.iter().map(|f| !f.revents().is_empty()).collect();
        drop(fds);
        if ready[0] {
            let mut sink = [0u8; 64];
            while matches!(wake.read(&mut sink), Ok(n) if n > 0) {}
        }
        for (i, source) in sources.iter().enumerate() {
            for (j, stream) in [Stream::Stdout, Stream::Stderr].into_iter().enumerate() {
                if !ready.get(1 + 2 * i + j).copied().unwrap_or(false) {
                    continue;
                }
                let mut s = lock(source);
                if s.closed {
                    continue;
                }
                if let Err(e) = s.drain_at_most(stream, &mut buf, FAIR_READS) {
                    tracing::warn!(key = %s.key, %stream, error = %e, "log pump: writing the log failed");
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use std::time::Duration;

    /// Reads `path` until it contains `want`; `Err` (the last contents)
    /// after 5 s.
    fn containing(path: &Path, want: &str) -> Result<String, bramble_tests::wait::TimedOut> {
        bramble_tests::try_eventually(Duration::from_secs(5), || {
            let s = std::fs::read_to_string(path).unwrap_or_default();
            if s.contains(want) {
                Ok(s)
            } else {
                Err(format!("{s:?}"))
            }
        })
    }

    /// The contents of `path` once it contains `want` (panics after 5 s).
    fn logged(path: &Path, want: &str) -> String {
        containing(path, want)
            .unwrap_or_else(|t| panic!("{} never contained {want:?} {t}", path.display()))
    }

    fn writer_end(path: &Path) -> File {
        OpenOptions::new()
            .read(true)
            .write(true)
            .open(path)
            .unwrap()
    }

    #[test]
    fn lines_from_both_streams_become_cri_lines() {
        let tmp = tempfile::tempdir().unwrap();
        let pump = LogPump::start(tmp.path().join("fifo"), LogConfig::default()).unwrap();
        let log = tmp.path().join("c.log");
        let fifos = pump.attach("pod_c", &log).unwrap();
        writer_end(&fifos.stdout).write_all(b"hello\n").unwrap();
        writer_end(&fifos.stderr).write_all(b"oops\n").unwrap();
        let s = logged(&log, "oops");
        assert!(s.contains(" stdout F hello\n"), "{s}");
        assert!(s.contains(" stderr F oops\n"), "{s}");
        pump.detach("pod_c").unwrap();
        assert!(!fifos.stdout.exists() && !fifos.stderr.exists());
    }

    #[test]
    fn a_new_pump_picks_up_what_was_written_while_none_ran() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("fifo");
        let log = tmp.path().join("c.log");
        let pump = LogPump::start(&dir, LogConfig::default()).unwrap();
        let fifos = pump.attach("k", &log).unwrap();
        let mut out = writer_end(&fifos.stdout);
        drop(pump);
        // No pump: the write still succeeds (the writer end is read-write).
        out.write_all(b"while away\n").unwrap();
        let pump = LogPump::start(&dir, LogConfig::default()).unwrap();
        assert_eq!(pump.fifo_keys().unwrap(), vec!["k".to_string()]);
        pump.attach("k", &log).unwrap();
        let s = logged(&log, "while away");
        assert!(s.contains("stdout F while away"), "{s}");
        pump.detach("k").unwrap();
    }

    #[test]
    fn detach_ends_a_partial_line() {
        let tmp = tempfile::tempdir().unwrap();
        let pump = LogPump::start(tmp.path().join("fifo"), LogConfig::default()).unwrap();
        let log = tmp.path().join("c.log");
        let fifos = pump.attach("k", &log).unwrap();
        writer_end(&fifos.stdout).write_all(b"no newline").unwrap();
        pump.detach("k").unwrap();
        let s = std::fs::read_to_string(&log).unwrap();
        assert!(s.ends_with(" stdout F no newline\n"), "{s:?}");
    }

    #[test]
    fn output_is_capped_by_rotation() {
        let tmp = tempfile::tempdir().unwrap();
        let config = LogConfig {
            max_size: 4096,
            max_files: 3,
            max_line: 1024,
        };
        let pump = LogPump::start(tmp.path().join("fifo"), config).unwrap();
        let log = tmp.path().join("c.log");
        let fifos = pump.attach("k", &log).unwrap();
        let mut out = writer_end(&fifos.stdout);
        for i in 0..2000 {
            writeln!(out, "line {i:05} {}", "x".repeat(40)).unwrap();
        }
        writeln!(out, "the last line").unwrap();
        let s = logged(&log, "the last line");
        assert!(s.contains("stdout F the last line"), "{s}");
        pump.detach("k").unwrap();
        let mut total = 0;
        for n in 0..5 {
            let p = if n == 0 {
                log.clone()
            } else {
                crate::logs::writer::rotated_path(&log, n)
            };
            if let Ok(m) = std::fs::metadata(&p) {
                assert!(n < 3, "more than max_files files: {}", p.display());
                assert!(m.len() <= 4096, "{} is {} bytes", p.display(), m.len());
                total += m.len();
            }
        }
        assert!(total <= 3 * 4096, "{total} bytes on disk");
        assert!(total > 2 * 4096, "rotation kept too little: {total}");
    }

    #[test]
    fn a_flooding_container_does_not_starve_another() {
        let tmp = tempfile::tempdir().unwrap();
        let pump = Arc::new(LogPump::start(tmp.path().join("fifo"), LogConfig::default()).unwrap());
        let flood = pump.attach("flood", &tmp.path().join("flood.log")).unwrap();
        let quiet_log = tmp.path().join("quiet.log");
        let quiet = pump.attach("quiet", &quiet_log).unwrap();
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let flooder = {
            let stop = stop.clone();
            let mut out = writer_end(&flood.stdout);
            std::thread::spawn(move || {
                let line = vec![b'x'; 4095];
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    let _ = out.write_all(&line);
                    let _ = out.write_all(b"\n");
                }
            })
        };
        // The flood is being logged before the quiet one speaks.
        let flooded = logged(&tmp.path().join("flood.log"), "xxxxxxxx");
        assert!(flooded.contains("xxxxxxxx"));
        writer_end(&quiet.stdout)
            .write_all(b"still heard\n")
            .unwrap();
        // The flooder stops before any assertion fails.
        let s = containing(&quiet_log, "still heard");
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        flooder.join().unwrap();
        let s = s.unwrap_or_else(|t| panic!("the quiet pod never heard {t}"));
        assert!(s.contains("stdout F still heard"), "{s:?}");
        pump.detach("quiet").unwrap();
        pump.detach("flood").unwrap();
    }

    #[test]
    fn a_regular_file_in_the_way_is_an_error() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("fifo");
        let pump = LogPump::start(&dir, LogConfig::default()).unwrap();
        std::fs::write(dir.join("k.out"), "x").unwrap();
        let err = pump.attach("k", &tmp.path().join("c.log")).unwrap_err();
        assert!(err.to_string().contains("not a FIFO"), "{err}");
    }
}
