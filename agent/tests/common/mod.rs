//! Shared parts of the runtime tests and bench: the busybox fixture image
//! for this host's platform unpacked once into a layer cache, and a
//! [`Sandbox`] per test that prepares overlay rootfses in a temp dir, runs
//! containers under a cgroup parent of its own, and on drop (also after a
//! failed assertion) deletes its containers, unmounts and removes its
//! rootfses and removes its cgroup parent.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard, OnceLock};

use bramble_agent::runtime::cgroup::CgroupFiles;
use bramble_agent::runtime::libcontainer::{LibcontainerOptions, LibcontainerRuntime};
use bramble_agent::runtime::{
    ContainerConfig, ContainerHandle, OciBinaryOptions, OciBinaryRuntime, Runtime,
};
use bramble_images::{BlobStore, Compression, Digest, LayerStore, Platform, Rootfs};
use oci_spec::image::ImageConfiguration;

/// The fixture image for this host: its config and its unpacked layers,
/// bottom first.
pub struct Image {
    pub config: ImageConfiguration,
    pub layers: Vec<PathBuf>,
}

/// The busybox image, unpacked once per process into a cache under
/// `target/tmp/` (an agent's layer cache would persist the same way).
pub fn image() -> &'static Image {
    static IMAGE: OnceLock<Image> = OnceLock::new();
    IMAGE.get_or_init(|| {
        let cache = bramble_tests::workspace_root().join("target/tmp/agent-image-cache");
        let blobs = BlobStore::open(cache.join("blobs")).expect("blob store");
        let layers = LayerStore::open(cache.join("layers")).expect("layer store");
        let multi = bramble_tests::busybox::busybox_image().expect("busybox fixture image");
        let want = Platform::current();
        let img = multi
            .images
            .iter()
            .find(|i| Platform::new(&i.os, &i.arch, i.variant.as_deref()) == want)
            .unwrap_or_else(|| panic!("fixture has no image for {want:?}"));
        let config: ImageConfiguration =
            serde_json::from_slice(&img.config.bytes).expect("image config");
        let diff_ids = config.rootfs().diff_ids().clone();
        assert_eq!(diff_ids.len(), img.layers.len());
        let mut dirs = Vec::new();
        for (layer, diff_id) in img.layers.iter().zip(diff_ids) {
            let digest = blobs.put_bytes(&layer.bytes, None).expect("put layer");
            let diff_id: Digest = diff_id.parse().expect("diff_id");
            let dir = layers
                .ensure(&blobs, &digest, Compression::Gzip, &diff_id)
                .expect("unpack layer");
            dirs.push(dir);
        }
        Image {
            config,
            layers: dirs,
        }
    })
}

/// Which [`Runtime`] backend a [`Sandbox`] runs containers with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// youki's libcontainer, in-process.
    Libcontainer,
    /// The OCI runtime binary backend driving `runc` (`BRAMBLE_OCI_RUNTIME`
    /// overrides the binary, e.g. `/usr/bin/crun`).
    Runc,
}

/// A backend plus what the tests inspect of it (paths of its state).
pub trait TestRuntime: Runtime {
    fn cgroup_files(&self, id: &str) -> bramble_agent::runtime::Result<CgroupFiles>;
    fn state_dir(&self, id: &str) -> PathBuf;
    fn bundle_dir(&self, id: &str) -> PathBuf;
}

macro_rules! test_runtime {
    ($t:ty) => {
        impl TestRuntime for $t {
            fn cgroup_files(&self, id: &str) -> bramble_agent::runtime::Result<CgroupFiles> {
                <$t>::cgroup_files(self, id)
            }
            fn state_dir(&self, id: &str) -> PathBuf {
                <$t>::state_dir(self, id)
            }
            fn bundle_dir(&self, id: &str) -> PathBuf {
                <$t>::bundle_dir(self, id)
            }
        }
    };
}
test_runtime!(LibcontainerRuntime);
test_runtime!(OciBinaryRuntime);

/// One test at a time per process: libcontainer clones from this process,
/// and a clone while other threads hold locks (malloc, stdio) is the hazard
/// FINDINGS.md warns about.
static SERIAL: Mutex<()> = Mutex::new(());

/// A test's private world; everything in it is removed on drop.
pub struct Sandbox {
    pub name: String,
    pub runtime: std::sync::Arc<dyn TestRuntime>,
    pub backend: Backend,
    pub cgroup_parent: String,
    rootfses: Mutex<Vec<Rootfs>>,
    handles: Mutex<Vec<ContainerHandle>>,
    tmp: tempfile::TempDir,
    _serial: MutexGuard<'static, ()>,
}

impl Sandbox {
    /// A sandbox running containers with the libcontainer backend.
    pub fn new(name: &str) -> Sandbox {
        Sandbox::with_backend(name, Backend::Libcontainer)
    }

    pub fn with_backend(name: &str, backend: Backend) -> Sandbox {
        bramble_tests::require_root("containers");
        let serial = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
        let name = format!("{name}-{}", std::process::id());
        let tmp = tempfile::Builder::new()
            .prefix(&format!("bramble-agent-{name}-"))
            .tempdir()
            .expect("tempdir");
        let cgroup_parent = format!("bramble-test-{name}");
        let runtime = make_runtime(backend, &tmp.path().join("runtime"), &cgroup_parent);
        Sandbox {
            name,
            runtime,
            backend,
            cgroup_parent,
            rootfses: Mutex::new(Vec::new()),
            handles: Mutex::new(Vec::new()),
            tmp,
            _serial: serial,
        }
    }

    pub fn dir(&self) -> &Path {
        self.tmp.path()
    }

    /// Another runtime instance on the same state directories and cgroup
    /// parent, as a restarted agent would open them.
    pub fn fresh_runtime(&self) -> std::sync::Arc<dyn TestRuntime> {
        make_runtime(
            self.backend,
            &self.tmp.path().join("runtime"),
            &self.cgroup_parent,
        )
    }

    /// A unique container id: `<test>-<pid>-<suffix>`.
    pub fn id(&self, suffix: &str) -> String {
        format!("{}-{suffix}", self.name)
    }

    /// A config for container `suffix` running `argv` on a fresh overlay
    /// rootfs of the fixture image; logs at `DIR/logs/<id>.out|.err`.
    pub fn config(&self, suffix: &str, argv: &[&str]) -> ContainerConfig {
        let id = self.id(suffix);
        let rootfs = Rootfs::prepare(&image().layers, self.dir().join("rootfs").join(&id), false)
            .expect("prepare rootfs");
        let path = rootfs.path();
        self.rootfses.lock().unwrap().push(rootfs);
        let logs = self.dir().join("logs");
        let mut c = ContainerConfig::new(
            id.clone(),
            path,
            argv.iter().map(|s| s.to_string()).collect(),
            logs.join(format!("{id}.out")),
            logs.join(format!("{id}.err")),
        );
        c.env = vec!["PATH=/bin".into()];
        c
    }

    /// Creates and starts; the container is deleted on drop unless
    /// [`Sandbox::deleted`] says it already was.
    pub fn run(&self, config: &ContainerConfig) -> ContainerHandle {
        let h = self.runtime.create(config).expect("create");
        self.handles.lock().unwrap().push(h.clone());
        self.runtime.start(&h).expect("start");
        h
    }

    /// Marks `h` as deleted by the test itself.
    pub fn deleted(&self, h: &ContainerHandle) {
        self.handles.lock().unwrap().retain(|x| x.id != h.id);
    }

    pub fn stdout(&self, config: &ContainerConfig) -> String {
        std::fs::read_to_string(&config.stdout_path).unwrap_or_default()
    }

    pub fn stderr(&self, config: &ContainerConfig) -> String {
        std::fs::read_to_string(&config.stderr_path).unwrap_or_default()
    }

    /// The cgroup files of the sandbox's parent cgroup.
    pub fn parent_cgroup(&self) -> CgroupFiles {
        CgroupFiles::detect(Path::new(&format!("/{}", self.cgroup_parent))).expect("cgroup")
    }
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        for h in self.handles.lock().unwrap().drain(..) {
            if let Err(e) = self.runtime.delete(&h) {
                eprintln!("sandbox cleanup: deleting {}: {e}", h.id);
            }
        }
        for r in self.rootfses.lock().unwrap().drain(..) {
            if let Err(e) = r.remove() {
                eprintln!("sandbox cleanup: removing rootfs: {e}");
            }
        }
        for (d, e) in self.parent_cgroup().remove_leftovers() {
            eprintln!("sandbox cleanup: removing {}: {e}", d.display());
        }
    }
}

/// The `bramble-agent` binary: the libcontainer backend's clone helper.
pub fn helper_binary() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_bramble-agent"))
}

/// A runtime of `backend` keeping its state under `root`.
pub fn make_runtime(
    backend: Backend,
    root: &Path,
    cgroup_parent: &str,
) -> std::sync::Arc<dyn TestRuntime> {
    let root = root.to_path_buf();
    match backend {
        Backend::Libcontainer => std::sync::Arc::new(
            LibcontainerRuntime::new(LibcontainerOptions {
                root,
                cgroup_parent: cgroup_parent.to_string(),
                helper: helper_binary(),
            })
            .expect("libcontainer runtime"),
        ),
        Backend::Runc => {
            let mut options = OciBinaryOptions::runc(root, cgroup_parent.to_string());
            if let Some(bin) = std::env::var_os("BRAMBLE_OCI_RUNTIME") {
                options.binary = bin.into();
            }
            std::sync::Arc::new(
                OciBinaryRuntime::new(options).expect("OCI binary runtime (is runc installed?)"),
            )
        }
    }
}

/// Whether process `pid` exists (and is not a zombie we forgot to reap).
pub fn process_exists(pid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok()
}

/// An image source giving the busybox fixture for every image reference.
pub fn fixture_images() -> impl bramble_agent::pod::ImageSource {
    |_: &str| -> Result<bramble_agent::pod::ResolvedImage, bramble_agent::pod::ImageError> {
        let img = image();
        Ok(bramble_agent::pod::ResolvedImage {
            layers: img.layers.clone(),
            config: img.config.clone(),
            size: 0,
        })
    }
}

/// A pod test's world: a tmpfs run dir (runtime state and namespace files,
/// as `/run` is on a board), pod data and logs on disk, a runtime of
/// `backend` under a cgroup parent of its own. Tests of a process run one
/// at a time (as for [`Sandbox`]). On drop — after the test's
/// [`PodGuard`]s stopped their pods, also after a failed assertion — it
/// unmounts whatever is still mounted under it and removes leftover
/// cgroups.
pub struct PodEnv {
    pub backend: Backend,
    pub runtime: std::sync::Arc<dyn TestRuntime>,
    pub cgroup_parent: String,
    pub dirs: bramble_agent::pod::PodDirs,
    tmp: tempfile::TempDir,
    _serial: MutexGuard<'static, ()>,
}

impl PodEnv {
    pub fn new(name: &str, backend: Backend) -> PodEnv {
        bramble_tests::require_root("containers");
        let serial = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
        let pid = std::process::id();
        let tag = match backend {
            Backend::Libcontainer => "lc",
            Backend::Runc => "runc",
        };
        let tmp = tempfile::Builder::new()
            .prefix(&format!("bramble-pod-{name}-{tag}-"))
            .tempdir()
            .expect("tempdir");
        let run = tmp.path().join("run");
        std::fs::create_dir(&run).expect("run dir");
        rustix::mount::mount(
            "tmpfs",
            &run,
            "tmpfs",
            rustix::mount::MountFlags::empty(),
            c"mode=0700,size=16m",
        )
        .expect("mounting the run tmpfs");
        let cgroup_parent = format!("bramble-test-pod-{name}-{tag}-{pid}");
        let runtime = make_runtime(backend, &run.join("runtime"), &cgroup_parent);
        let dirs = bramble_agent::pod::PodDirs {
            data: tmp.path().join("data"),
            logs: tmp.path().join("logs"),
            netns: run.join("netns"),
        };
        PodEnv {
            backend,
            runtime,
            cgroup_parent,
            dirs,
            tmp,
            _serial: serial,
        }
    }

    pub fn path(&self) -> &Path {
        self.tmp.path()
    }

    /// Another runtime instance on the same state directories and cgroup
    /// parent, as a restarted agent would open them.
    pub fn fresh_runtime(&self) -> std::sync::Arc<dyn TestRuntime> {
        make_runtime(
            self.backend,
            &self.tmp.path().join("run/runtime"),
            &self.cgroup_parent,
        )
    }

    /// Starts `yaml` with the fixture image for every container.
    pub fn start_with(
        &self,
        yaml: &str,
        inputs: &bramble_agent::pod::PodInputs,
        options: &bramble_agent::pod::PodOptions,
    ) -> Result<bramble_agent::pod::RunningPod, bramble_agent::pod::PodError> {
        self.start_images(yaml, inputs, options, &fixture_images())
    }

    /// Starts `yaml` with the images of `images`.
    pub fn start_images(
        &self,
        yaml: &str,
        inputs: &bramble_agent::pod::PodInputs,
        options: &bramble_agent::pod::PodOptions,
        images: &dyn bramble_agent::pod::ImageSource,
    ) -> Result<bramble_agent::pod::RunningPod, bramble_agent::pod::PodError> {
        let pod: bramble_api::objects::pod::Pod = serde_yaml_ng::from_str(yaml).expect("pod yaml");
        bramble_agent::pod::RunningPod::start(
            self.runtime.clone(),
            &pod,
            inputs,
            images,
            &self.dirs,
            options,
        )
    }

    /// Mount points under the test's directory (the run tmpfs included).
    pub fn mounts(&self) -> Vec<String> {
        mounts_under(self.tmp.path())
    }

    /// Containers' cgroups left under the cgroup parent.
    pub fn container_cgroups(&self) -> Vec<PathBuf> {
        let Ok(cg) = CgroupFiles::detect(Path::new(&format!("/{}", self.cgroup_parent))) else {
            return Vec::new();
        };
        cg.existing_dirs()
            .into_iter()
            .flat_map(|d| std::fs::read_dir(d).into_iter().flatten().flatten())
            .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
            .map(|e| e.path())
            .collect()
    }
}

impl Drop for PodEnv {
    fn drop(&mut self) {
        // Deepest first: mountinfo lists a mount after its parent.
        for m in self.mounts().into_iter().rev() {
            if let Err(e) = rustix::mount::unmount(&m, rustix::mount::UnmountFlags::DETACH) {
                eprintln!("cleanup: unmounting {m}: {e}");
            }
        }
        if let Ok(cg) = CgroupFiles::detect(Path::new(&format!("/{}", self.cgroup_parent))) {
            for (d, e) in cg.remove_leftovers() {
                eprintln!("cleanup: removing {}: {e}", d.display());
            }
        }
    }
}

/// Mount points at or under `dir`, in mountinfo order.
pub fn mounts_under(dir: &Path) -> Vec<String> {
    let d = dir.to_str().expect("utf-8 path");
    std::fs::read_to_string("/proc/self/mountinfo")
        .expect("mountinfo")
        .lines()
        .filter_map(|l| l.split(' ').nth(4))
        .filter(|m| m.starts_with(d))
        .map(String::from)
        .collect()
}

/// A running pod of a test; stops it on drop (after a failed assertion).
pub struct PodGuard(pub Option<bramble_agent::pod::RunningPod>);

impl PodGuard {
    pub fn pod(&mut self) -> &mut bramble_agent::pod::RunningPod {
        self.0.as_mut().expect("pod not stopped yet")
    }

    /// Ticks (as [`bramble_tests::eventually`] polls) until `done` holds for
    /// the status and the events so far, or panics after `timeout` (with
    /// status, events and logs); returns
    /// the status and all events with the time they came.
    pub fn tick_until(
        &mut self,
        timeout: std::time::Duration,
        mut done: impl FnMut(
            &bramble_api::objects::pod_status::PodStatus,
            &[(std::time::Instant, bramble_agent::pod::PodEvent)],
        ) -> bool,
    ) -> (
        bramble_api::objects::pod_status::PodStatus,
        Vec<(std::time::Instant, bramble_agent::pod::PodEvent)>,
    ) {
        use std::time::{Instant, SystemTime};
        let mut events = Vec::new();
        let mut last = None;
        let waited = bramble_tests::try_eventually(timeout, || {
            let now = Instant::now();
            let evs = self.pod().tick(now).expect("tick");
            events.extend(evs.into_iter().map(|e| (now, e)));
            let status = self.pod().status(SystemTime::now());
            if done(&status, &events) {
                return Some(status);
            }
            last = Some(status);
            None
        });
        match waited {
            Ok(status) => (status, events),
            Err(t) => {
                let logs: Vec<String> = self
                    .pod()
                    .containers()
                    .iter()
                    .map(|c| {
                        let log = std::fs::read_to_string(&c.log_path).unwrap_or_default();
                        format!("{}:\n{log}", c.name)
                    })
                    .collect();
                panic!("timed out {t}; status {last:#?}\nevents {events:#?}\nlogs {logs:#?}");
            }
        }
    }
}

impl Drop for PodGuard {
    fn drop(&mut self) {
        if let Some(p) = self.0.take()
            && let Err(e) = p.stop(std::time::Duration::ZERO)
        {
            eprintln!("cleanup: stopping the pod: {e}");
        }
    }
}

/// `mod libcontainer { #[test] fn NAME() }` and `mod runc { ... }` calling
/// `NAME(Backend)` of the including file for each listed test.
#[macro_export]
macro_rules! both_backends {
    ($($name:ident),* $(,)?) => {
        mod libcontainer {
            $(#[test] fn $name() { super::$name($crate::common::Backend::Libcontainer) })*
        }
        mod runc {
            $(#[test] fn $name() { super::$name($crate::common::Backend::Runc) })*
        }
    };
}

/// Whether `p` is on a tmpfs or an overlay (memory, or a container's view).
#[allow(clippy::unnecessary_cast)] // statfs field types differ between libcs
pub fn is_mem_fs(p: &Path) -> bool {
    let fs = rustix::fs::statfs(p).unwrap();
    let t = fs.f_type as i64;
    t == libc::TMPFS_MAGIC as i64 || t == libc::OVERLAYFS_SUPER_MAGIC as i64
}

/// Files under `dir` on disk (not descending into tmpfs or overlay mounts;
/// overlay uppers are scanned where they live) that contain `needle`.
pub fn files_containing(dir: &Path, needle: &[u8]) -> Vec<PathBuf> {
    let mut hits = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        if is_mem_fs(&d) {
            continue;
        }
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in entries.flatten() {
            let ft = e.file_type().unwrap();
            if ft.is_dir() {
                stack.push(e.path());
            } else if ft.is_file()
                && let Ok(bytes) = std::fs::read(e.path())
                && bytes.windows(needle.len()).any(|w| w == needle)
            {
                hits.push(e.path());
            }
        }
    }
    hits
}

/// The lines of this process's mount table that mention `dir`.
pub fn mountinfo_mentions(dir: &Path) -> Vec<String> {
    let d = dir.to_str().unwrap();
    std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap()
        .lines()
        .filter(|l| l.contains(d))
        .map(String::from)
        .collect()
}
