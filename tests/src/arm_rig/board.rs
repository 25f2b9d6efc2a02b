//! One emulated board: a QEMU process with the kit's kernel and initramfs,
//! a 9p share holding the test's files and `run.sh`, and its serial console
//! in a log file. A watchdog kills QEMU after the board's maximum lifetime;
//! drop kills it and removes the share. When the test is failing (or
//! [`KEEP_LOGS_ENV`] is `1`), the console log is kept and its path printed.

use std::io::Read as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{RecvTimeoutError, Sender};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::{Arch, Kit};

/// The prefix of the rig's own console lines (`BRAMBLE-RIG: network up`).
pub const CONSOLE_MARKER: &str = "BRAMBLE-RIG:";

/// Set to `1` to keep every board's console log (as a failing test does).
pub const KEEP_LOGS_ENV: &str = "BRAMBLE_ARM_KEEP_LOGS";

/// How to boot a board.
#[derive(Debug, Clone)]
pub struct BoardConfig {
    pub arch: Arch,
    /// The guest's hostname; also names the log.
    pub name: String,
    /// `sh` script the guest runs from the share after boot.
    pub script: String,
    /// Files copied into the share: (name in the share, source path).
    pub files: Vec<(String, PathBuf)>,
    /// Extra kernel command line words (e.g. `cgroup_disable=memory`).
    pub cmdline: Vec<String>,
    pub memory_mib: u32,
    pub cpus: u32,
    /// The watchdog kills QEMU after this long.
    pub max_lifetime: Duration,
}

impl BoardConfig {
    /// 2 CPUs (1 for armv7), 1 GiB, 10 minutes at most, no script.
    pub fn new(arch: Arch, name: &str) -> BoardConfig {
        BoardConfig {
            arch,
            name: name.to_string(),
            script: String::new(),
            files: Vec::new(),
            cmdline: Vec::new(),
            memory_mib: 1024,
            cpus: if arch == Arch::Arm64 { 2 } else { 1 },
            max_lifetime: Duration::from_secs(600),
        }
    }

    pub fn script(mut self, script: impl Into<String>) -> Self {
        self.script = script.into();
        self
    }

    pub fn file(mut self, name: &str, source: impl Into<PathBuf>) -> Self {
        self.files.push((name.to_string(), source.into()));
        self
    }

    pub fn cmdline(mut self, word: &str) -> Self {
        self.cmdline.push(word.to_string());
        self
    }

    pub fn max_lifetime(mut self, d: Duration) -> Self {
        self.max_lifetime = d;
        self
    }
}

/// A running board. See the module docs.
pub struct ArmBoard {
    pub name: String,
    pub arch: Arch,
    child: Arc<Mutex<Child>>,
    pid: u32,
    dir: Option<tempfile::TempDir>,
    log: PathBuf,
    watchdog: Option<(Sender<()>, JoinHandle<()>)>,
    started: Instant,
}

impl ArmBoard {
    /// Fetches the kit (cached), prepares the share and starts QEMU. Panics
    /// with the reason when something is missing (a package, the kernel).
    pub fn boot(cfg: BoardConfig) -> ArmBoard {
        let kit = super::kit(cfg.arch).unwrap_or_else(|e| panic!("ARM rig kit: {e}"));
        Self::boot_kit(&kit, cfg)
    }

    /// Boots `kit` (see [`super::kit`]).
    pub fn boot_kit(kit: &Kit, cfg: BoardConfig) -> ArmBoard {
        let dir = tempfile::Builder::new()
            .prefix(&format!("bramble-arm-{}-", cfg.name))
            .tempdir()
            .expect("board dir");
        let share = dir.path().join("share");
        std::fs::create_dir_all(&share).expect("share dir");
        for (name, src) in &cfg.files {
            std::fs::copy(src, share.join(name))
                .unwrap_or_else(|e| panic!("copying {} into the share: {e}", src.display()));
        }
        let script = format!("#!/bin/sh\n{}", cfg.script);
        write_exec(&share.join("run.sh"), script.as_bytes());
        let log = dir.path().join("console.log");
        let out = std::fs::File::create(&log).expect("console log");
        let err = out.try_clone().expect("console log");
        // ttyAMA0: the PL011 UART of `-M virt` (both architectures).
        let mut append = vec![
            "console=ttyAMA0".to_string(),
            "panic=-1".into(),
            "quiet".into(),
            format!("rig.hostname={}", cfg.name),
        ];
        append.extend(cfg.cmdline.iter().cloned());
        let mut cmd = Command::new(cfg.arch.qemu());
        match cfg.arch {
            Arch::Arm64 => cmd.args(["-M", "virt", "-cpu", "max,pauth=off"]),
            Arch::Armv7 => cmd.args(["-M", "virt", "-cpu", "cortex-a7"]),
        };
        cmd.args(["-smp", &cfg.cpus.to_string()])
            .args(["-m", &cfg.memory_mib.to_string()])
            .args(["-nographic", "-monitor", "none", "-no-reboot"])
            .arg("-kernel")
            .arg(&kit.kernel)
            .arg("-initrd")
            .arg(&kit.initramfs)
            .args(["-append", &append.join(" ")])
            .args(["-netdev", "user,id=n0"])
            // romfile= : no iPXE option ROM (Debian's ipxe-qemu not needed)
            .args(["-device", "virtio-net-pci,netdev=n0,romfile="])
            .arg("-virtfs")
            .arg(format!(
                "local,path={},mount_tag=share,security_model=none",
                share.display()
            ))
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err);
        let child = cmd.spawn().unwrap_or_else(|e| {
            panic!(
                "starting {}: {e} (apt-get install qemu-system-arm; see docs/arm.md)",
                cfg.arch.qemu()
            )
        });
        let pid = child.id();
        let child = Arc::new(Mutex::new(child));
        let (tx, rx) = std::sync::mpsc::channel::<()>();
        let watched = child.clone();
        let lifetime = cfg.max_lifetime;
        let name = cfg.name.clone();
        let watchdog = std::thread::spawn(move || {
            if let Err(RecvTimeoutError::Timeout) = rx.recv_timeout(lifetime) {
                eprintln!(
                    "ARM rig watchdog: board {name} (qemu pid {pid}) outlived {lifetime:?}: killing it"
                );
                if let Ok(mut c) = watched.lock() {
                    let _ = c.kill();
                    let _ = c.wait();
                }
            }
        });
        ArmBoard {
            name: cfg.name,
            arch: cfg.arch,
            child,
            pid,
            dir: Some(dir),
            log,
            watchdog: Some((tx, watchdog)),
            started: Instant::now(),
        }
    }

    /// QEMU's process id.
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// The console log file (kept after a failing test).
    pub fn log_path(&self) -> &Path {
        &self.log
    }

    /// The 9p share directory (`/mnt/share` in the guest).
    pub fn share_dir(&self) -> PathBuf {
        self.dir.as_ref().expect("board dir").path().join("share")
    }

    /// Everything on the console so far (lossy UTF-8).
    pub fn console(&self) -> String {
        let mut bytes = Vec::new();
        if let Ok(mut f) = std::fs::File::open(&self.log) {
            let _ = f.read_to_end(&mut bytes);
        }
        String::from_utf8_lossy(&bytes).into_owned()
    }

    /// The last `n` console lines.
    pub fn console_tail(&self, n: usize) -> String {
        let text = self.console();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(n)..].join("\n")
    }

    /// Whether QEMU still runs.
    pub fn running(&self) -> bool {
        self.child
            .lock()
            .map(|mut c| matches!(c.try_wait(), Ok(None)))
            .unwrap_or(false)
    }

    /// Waits until a console line contains `marker` and returns that line;
    /// panics with the console's tail when `timeout` passes or QEMU exits
    /// first.
    pub fn wait_for_console(&self, marker: &str, timeout: Duration) -> String {
        match self.try_wait_for_console(marker, timeout) {
            Ok(line) => line,
            Err(why) => panic!(
                "board {}: {why} waiting for {marker:?} on the console ({:.1?} after boot); console log {}:\n{}",
                self.name,
                self.started.elapsed(),
                self.log.display(),
                self.console_tail(40)
            ),
        }
    }

    /// Like [`ArmBoard::wait_for_console`], with the failure as an error.
    pub fn try_wait_for_console(&self, marker: &str, timeout: Duration) -> Result<String, String> {
        crate::try_eventually(timeout, || {
            // Look once more after QEMU exited: the line may be its last.
            let alive = self.running();
            if let Some(line) = self.console().lines().find(|l| l.contains(marker)) {
                return Some(Ok(line.to_string()));
            }
            (!alive).then(|| Err("QEMU exited".to_string()))
        })
        .unwrap_or_else(|t| Err(format!("timed out {t}")))
    }

    /// Kills QEMU (SIGKILL) and reaps it.
    pub fn kill(&self) {
        if let Ok(mut c) = self.child.lock() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for ArmBoard {
    fn drop(&mut self) {
        self.kill();
        if let Some((tx, handle)) = self.watchdog.take() {
            let _ = tx.send(());
            let _ = handle.join();
        }
        let Some(dir) = self.dir.take() else { return };
        let keep = std::env::var(KEEP_LOGS_ENV).as_deref() == Ok("1");
        if std::thread::panicking() || keep {
            let kept = std::env::temp_dir().join(format!(
                "bramble-arm-{}-{}.console.log",
                self.name, self.pid
            ));
            if std::fs::rename(&self.log, &kept).is_ok() || std::fs::copy(&self.log, &kept).is_ok()
            {
                eprintln!(
                    "===== board {} console (tail; whole log kept at {})\n{}",
                    self.name,
                    kept.display(),
                    tail_of(&kept, 60)
                );
            }
        }
        drop(dir);
    }
}

fn tail_of(path: &Path, n: usize) -> String {
    let bytes = std::fs::read(path).unwrap_or_default();
    let text = String::from_utf8_lossy(&bytes);
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

fn write_exec(path: &Path, bytes: &[u8]) {
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::write(path, bytes).unwrap_or_else(|e| panic!("writing {}: {e}", path.display()));
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755))
        .unwrap_or_else(|e| panic!("chmod {}: {e}", path.display()));
}
