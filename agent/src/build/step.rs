//! One `RUN` step of an image build, on this board: the step's process runs
//! in a container of the agent's runtime, on an overlay of the layers
//! before it (writable, so what it changes lands in the overlay's upper
//! directory, which `bramble_images::layer_diff` turns into the step's
//! layer). With a `network` ([`super::network`]) the container joins a
//! namespace of its own on the pod network, with `/etc/resolv.conf`
//! bind-mounted read-only; without one, it has an empty network namespace
//! (a step that needs the network fails with its own error). It gets the
//! hostname `buildkitsandbox` as BuildKit gives, and the runtime's default
//! confinement (capabilities, seccomp, device cgroup) as a pod has. The
//! working directory is created first, as Docker does, its symlinks
//! resolved inside the image's root (never on the board). Output goes to
//! `log` (stdout and stderr interleaved). Mount points the runtime had to
//! create (`/dev`, `/proc`, `/sys`, `/etc/resolv.conf`) are taken out of
//! the upper directory again while still empty, so they never land in the
//! layer. A step past its timeout, or whose `cancel` flag is set (its
//! Build was deleted), is killed: the flag is looked at every
//! [`CANCEL_CHECK`]. Whatever happens, the container is deleted and the
//! overlay unmounted before [`run_step`] returns; the upper directory stays
//! for the caller.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use bramble_images::Rootfs;

use super::network::{StepNet, StepNetError, StepNetwork};
use crate::image_root::in_root::make_dir_in_root;
use crate::runtime::{
    ContainerConfig, ContainerHandle, ExitStatus, MountSpec, Runtime, RuntimeError, Signal,
};

/// How often a running step looks at its cancel flag.
pub const CANCEL_CHECK: Duration = Duration::from_millis(200);

/// What a step runs, and where.
#[derive(Debug, Clone)]
pub struct Step {
    /// The container id (unique on the node).
    pub id: String,
    /// The layers before the step, unpacked, bottom first.
    pub layers: Vec<PathBuf>,
    /// The step's own directory (`rootfs`, `upper`, `work` are made in it).
    pub dir: PathBuf,
    pub argv: Vec<String>,
    /// `NAME=value` entries.
    pub env: Vec<String>,
    /// Absolute working directory (created if missing).
    pub cwd: String,
    pub uid: u32,
    pub gid: u32,
    /// `USER` as written (`app`, `app:staff`, `1000`): when given, looked
    /// up in the image's `/etc/passwd` and `/etc/group` (through the
    /// mounted root) instead of `uid`/`gid`.
    pub user: Option<String>,
    /// Where the step's output goes.
    pub log: PathBuf,
    /// Longest the step may run (`None`: no limit); then it is killed.
    pub timeout: Option<Duration>,
    /// Set: the step is killed.
    pub cancel: Option<Arc<AtomicBool>>,
    /// The pod network for the step; `None`: an empty namespace.
    pub network: Option<StepNetwork>,
    /// Its `--mount`s ([`super::mounts`]).
    pub mounts: Vec<MountSpec>,
}

/// How a step ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StepOutcome {
    /// `None`: killed after its timeout or when cancelled.
    pub exit: Option<ExitStatus>,
    /// What it changed (the overlay's upper directory).
    pub upper: PathBuf,
}

/// Why a step could not be run.
#[derive(Debug, thiserror::Error)]
pub enum StepError {
    #[error("preparing the step's filesystem: {0}")]
    Rootfs(#[from] bramble_images::RootfsError),
    #[error("creating the working directory {cwd}: {source}")]
    Workdir {
        cwd: String,
        #[source]
        source: std::io::Error,
    },
    #[error("USER: {0}")]
    User(String),
    #[error("running the step: {0}")]
    Runtime(#[from] RuntimeError),
    #[error("the step's network: {0}")]
    Network(#[from] StepNetError),
    #[error("the step's resolv.conf: {0}")]
    Resolv(std::io::Error),
}

/// Runs `step` and returns how it ended; see the module docs.
pub fn run_step(runtime: &dyn Runtime, step: &Step) -> Result<StepOutcome, StepError> {
    let rootfs = Rootfs::prepare(&step.layers, &step.dir, false)?;
    let net = match &step.network {
        Some(n) => StepNet::connect(n, &step.id).map(Some),
        None => Ok(None),
    };
    let result = net.map_err(StepError::from).and_then(|net| {
        let ran = run_in(runtime, step, &rootfs, net.as_ref());
        if let Some(n) = net {
            n.remove();
        }
        ran
    });
    let unmounted = rootfs.unmount();
    let (exit, made) = result?;
    unmounted?;
    let upper = rootfs
        .upper()
        .expect("a writable rootfs has an upper directory");
    made.forget(&upper);
    Ok(StepOutcome { exit, upper })
}

/// Where the runtime mounts something for every step (and
/// `/etc/resolv.conf` for a step on the network), deepest first.
const MOUNT_POINTS: [&str; 5] = ["etc/resolv.conf", "etc", "dev", "proc", "sys"];

/// The mount points the root lacked before the step: the runtime creates
/// them, and they are not the step's doing (BuildKit removes its mount
/// stubs too).
#[derive(Debug, Default)]
struct MadeMountPoints(Vec<String>);

impl MadeMountPoints {
    /// Those of [`MOUNT_POINTS`] and of the step's own mounts' targets
    /// (with their parents) missing from `root`, deepest first.
    fn missing_in(root: &std::path::Path, mounts: &[MountSpec]) -> MadeMountPoints {
        let mut paths: Vec<String> = Vec::new();
        for m in mounts {
            let mut p = std::path::Path::new(m.destination().trim_start_matches('/'));
            while !p.as_os_str().is_empty() {
                paths.push(p.to_string_lossy().into_owned());
                p = p.parent().unwrap_or(std::path::Path::new(""));
            }
        }
        paths.extend(MOUNT_POINTS.map(String::from));
        // Deepest first, so a parent goes after what was made in it.
        paths.sort_by_key(|p| std::cmp::Reverse(p.matches('/').count()));
        let mut seen = std::collections::HashSet::new();
        paths.retain(|p| seen.insert(p.clone()));
        MadeMountPoints(
            paths
                .into_iter()
                .filter(|p| root.join(p).symlink_metadata().is_err())
                .collect(),
        )
    }

    /// Removes them from `upper` where they are still empty (an empty file
    /// or directory): what the step put there stays.
    fn forget(&self, upper: &std::path::Path) {
        for p in &self.0 {
            let path = upper.join(p);
            match path.symlink_metadata() {
                Ok(m) if m.is_file() && m.len() == 0 => {
                    let _ = std::fs::remove_file(&path);
                }
                Ok(m) if m.is_dir() => {
                    // Fails, as wanted, unless empty.
                    let _ = std::fs::remove_dir(&path);
                }
                _ => {}
            }
        }
    }
}

fn run_in(
    runtime: &dyn Runtime,
    step: &Step,
    rootfs: &Rootfs,
    net: Option<&StepNet>,
) -> Result<(Option<ExitStatus>, MadeMountPoints), StepError> {
    let root = rootfs.path();
    let cwd = step.cwd.trim_start_matches('/');
    if !cwd.is_empty() {
        make_dir_in_root(&root, cwd).map_err(|source| StepError::Workdir {
            cwd: step.cwd.clone(),
            source,
        })?;
    }
    let mut config = ContainerConfig::new(&step.id, &root, step.argv.clone(), &step.log, &step.log);
    config.env = step.env.clone();
    config.cwd = step.cwd.clone();
    let (uid, gid) = match step.user.as_deref().filter(|u| !u.is_empty()) {
        Some(spec) => {
            let image = crate::image_root::in_root::Root::open(&root).map_err(|source| {
                StepError::Workdir {
                    cwd: "/".into(),
                    source,
                }
            })?;
            super::copy::resolve_owner(&image, spec)
                .map_err(|e| StepError::User(e.to_string()))?
                .unwrap_or((0, 0))
        }
        None => (step.uid, step.gid),
    };
    config.uid = uid;
    config.gid = gid;
    config.hostname = Some("buildkitsandbox".into());
    let made = MadeMountPoints::missing_in(&root, &step.mounts);
    config.mounts.extend(step.mounts.iter().cloned());
    if let (Some(n), Some(net)) = (&step.network, net) {
        config.netns_path = Some(net.path().to_path_buf());
        let etc = root.join("etc");
        let resolv = etc.join("resolv.conf");
        let link = |p: &std::path::Path| p.symlink_metadata().is_ok_and(|m| m.is_symlink());
        // A link (to ../run/…, say) is left alone: the step has no
        // resolv.conf then, rather than one written where the link points.
        if !link(&etc) && !link(&resolv) {
            let source = step.dir.join("resolv.conf");
            std::fs::write(&source, &n.resolv_conf).map_err(StepError::Resolv)?;
            config.mounts.push(MountSpec::Bind {
                source,
                destination: "/etc/resolv.conf".into(),
                read_only: true,
            });
        }
    }
    let handle = runtime.create(&config)?;
    let ran = runtime
        .start(&handle)
        .and_then(|()| wait(runtime, &handle, step));
    let exit = match ran {
        Ok(Some(exit)) => Ok(Some(exit)),
        Ok(None) => runtime.kill(&handle, Signal::SIGKILL).map(|()| None),
        Err(e) => Err(e),
    };
    let deleted = runtime.delete(&handle);
    let exit = exit?;
    deleted?;
    Ok((exit, made))
}

/// Waits for the step's process; `None` once its timeout passed or it was
/// cancelled (the caller kills it).
fn wait(
    runtime: &dyn Runtime,
    handle: &ContainerHandle,
    step: &Step,
) -> Result<Option<ExitStatus>, RuntimeError> {
    let Some(cancel) = &step.cancel else {
        return runtime.wait(handle, step.timeout);
    };
    let deadline = step.timeout.map(|t| Instant::now() + t);
    loop {
        let slice = match deadline {
            Some(d) => d
                .saturating_duration_since(Instant::now())
                .min(CANCEL_CHECK),
            None => CANCEL_CHECK,
        };
        if let Some(exit) = runtime.wait(handle, Some(slice))? {
            return Ok(Some(exit));
        }
        let late = deadline.is_some_and(|d| Instant::now() >= d);
        if late || cancel.load(Ordering::Relaxed) {
            return Ok(None);
        }
    }
}
