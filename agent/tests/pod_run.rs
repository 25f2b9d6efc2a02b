//! A whole pod on the libcontainer backend with real containers (root): the
//! issue's acceptance pod — a busybox httpd and a client sharing localhost
//! through the pod's network namespace, a ConfigMap-mounted page, a Secret
//! as env and as a tmpfs-only volume, an init container filling an emptyDir
//! — and that stopping it leaves no mount, namespace file or cgroup.

// statfs field types differ between libcs and architectures.
#![allow(clippy::unnecessary_cast)]

mod common;

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

use bramble_agent::pod::{PodDirs, PodInputs, PodOptions, RunPhase, RunningPod};
use bramble_agent::runtime::ExitStatus;
use bramble_agent::runtime::cgroup::CgroupFiles;
use bramble_agent::runtime::libcontainer::{LibcontainerOptions, LibcontainerRuntime};
use bramble_api::objects::pod::Pod;

/// One test at a time: libcontainer forks from this process (FINDINGS.md).
static SERIAL: Mutex<()> = Mutex::new(());

fn mountinfo_mentions(dir: &Path) -> Vec<String> {
    let d = dir.to_str().unwrap();
    std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap()
        .lines()
        .filter(|l| l.contains(d))
        .map(String::from)
        .collect()
}

fn is_mem_fs(p: &Path) -> bool {
    let fs = rustix::fs::statfs(p).unwrap();
    let t = fs.f_type as i64;
    t == libc::TMPFS_MAGIC as i64 || t == libc::OVERLAYFS_SUPER_MAGIC as i64
}

/// Files under `dir` on disk (not descending into tmpfs or overlay mounts;
/// overlay uppers are scanned where they live) that contain `needle`.
fn files_containing(dir: &Path, needle: &[u8]) -> Vec<PathBuf> {
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

/// Unmounts the test's tmpfs run dir and removes the cgroup parent, also
/// after a failed assertion.
struct Cleanup {
    run: PathBuf,
    cgroup_parent: String,
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        let _ = rustix::mount::unmount(&self.run, rustix::mount::UnmountFlags::DETACH);
        if let Ok(cg) = CgroupFiles::detect(Path::new(&self.cgroup_parent)) {
            for (d, e) in cg.remove_leftovers() {
                eprintln!("cleanup: removing {}: {e}", d.display());
            }
        }
    }
}

#[test]
fn two_containers_share_localhost_with_config_map_secret_and_init() {
    let _serial = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    let pid = std::process::id();
    let tmp = tempfile::Builder::new()
        .prefix("bramble-pod-run-")
        .tempdir()
        .unwrap();
    // The agent's run dir (runtime state, netns files) is a tmpfs, as
    // /run is on a board; data and logs are on disk.
    let run = tmp.path().join("run");
    std::fs::create_dir(&run).unwrap();
    rustix::mount::mount(
        "tmpfs",
        &run,
        "tmpfs",
        rustix::mount::MountFlags::empty(),
        c"mode=0700,size=16m",
    )
    .unwrap();
    let cgroup_parent = format!("/bramble-test-pod-{pid}");
    let _cleanup = Cleanup {
        run: run.clone(),
        cgroup_parent: cgroup_parent.clone(),
    };
    let runtime = LibcontainerRuntime::new(LibcontainerOptions {
        root: run.join("runtime"),
        cgroup_parent: cgroup_parent.clone(),
    })
    .unwrap();
    let dirs = PodDirs {
        data: tmp.path().join("data"),
        logs: tmp.path().join("logs"),
        netns: run.join("netns"),
    };

    let secret = format!("s3cret-{pid}-7c1e9a");
    let page = format!("<h1>hello from bramble {pid}</h1>");
    let mut inputs = PodInputs::default();
    inputs.config_maps.insert(
        "site".into(),
        [("index.html".to_string(), page.clone().into_bytes())].into(),
    );
    inputs.secrets.insert(
        "creds".into(),
        [("password".to_string(), secret.clone().into_bytes())].into(),
    );
    let pod_name = format!("web-{pid}");
    let pod: Pod = serde_yaml_ng::from_str(&format!(
        r#"
apiVersion: v1
kind: Pod
metadata: {{name: {pod_name}}}
spec:
  restartPolicy: Never
  volumes:
  - name: www
    configMap: {{name: site}}
  - name: creds
    secret: {{secretName: creds}}
  - name: shared
    emptyDir: {{}}
  initContainers:
  - name: prep
    image: busybox
    command: [sh, -c, "echo from-init > /shared/init.txt"]
    volumeMounts: [{{name: shared, mountPath: /shared}}]
  containers:
  - name: server
    image: busybox
    command: [httpd, -f, -p, "8080", -h, /www]
    volumeMounts: [{{name: www, mountPath: /www}}]
    resources: {{limits: {{memory: 64Mi, cpu: 500m}}}}
  - name: client
    image: busybox
    command:
    - sh
    - -c
    - |
      cat /shared/init.txt
      [ "$SECRET" = "$(cat /etc/creds/password)" ] && echo secret-env-matches-file
      echo "host=$(hostname)"
      for i in $(seq 1 50); do wget -q -O - http://127.0.0.1:8080/ && exit 0; sleep 0.1; done
      exit 1
    env:
    - name: SECRET
      valueFrom: {{secretKeyRef: {{name: creds, key: password}}}}
    volumeMounts:
    - {{name: creds, mountPath: /etc/creds}}
    - {{name: shared, mountPath: /shared, readOnly: true}}
"#
    ))
    .unwrap();

    let images = common::fixture_images();
    let mut running = RunningPod::start(
        &runtime,
        &pod,
        &inputs,
        &images,
        &dirs,
        &PodOptions {
            pids_limit: Some(64),
            ..Default::default()
        },
    )
    .expect("start pod");
    assert_eq!(running.failed_init(), None);
    let netns = running.netns_path().unwrap().to_path_buf();
    let pod_dir = running.dir().to_path_buf();
    assert!(netns.exists());

    let status = running
        .wait_container("client", Some(Duration::from_secs(30)))
        .unwrap();
    let client_log =
        std::fs::read_to_string(&running.container("client").unwrap().log_path).unwrap_or_default();
    let server_log =
        std::fs::read_to_string(&running.container("server").unwrap().log_path).unwrap_or_default();
    assert_eq!(
        status,
        Some(ExitStatus::Code(0)),
        "client log:\n{client_log}\nserver log:\n{server_log}"
    );
    assert!(client_log.contains(&page), "{client_log}");
    assert!(client_log.contains("from-init"), "{client_log}");
    assert!(
        client_log.contains("secret-env-matches-file"),
        "{client_log}"
    );
    assert!(
        client_log.contains(&format!("host={pod_name}")),
        "{client_log}"
    );
    running.poll().unwrap();
    // The server still runs, so the pod does too.
    assert_eq!(running.phase(), RunPhase::Running);

    // The secret is on a tmpfs and in no file on disk.
    let secret_dir = running.volumes().unwrap().host_path("creds").unwrap();
    let fs = rustix::fs::statfs(secret_dir).unwrap();
    let fs_type = fs.f_type as i64;
    assert_eq!(fs_type, libc::TMPFS_MAGIC as i64);
    assert_eq!(
        std::fs::read_to_string(secret_dir.join("password")).unwrap(),
        secret
    );
    for d in [&dirs.data, &dirs.logs] {
        let hits = files_containing(d, secret.as_bytes());
        assert!(hits.is_empty(), "secret found on disk in {hits:?}");
    }

    let ended = running.stop(Duration::from_secs(2)).expect("stop pod");
    let names: Vec<&str> = ended.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, vec!["prep", "server", "client"]);
    assert_eq!(ended[0].1, ExitStatus::Code(0));
    assert_eq!(ended[2].1, ExitStatus::Code(0));

    // Nothing left: mounts, namespace file, pod dir, cgroups.
    assert_eq!(mountinfo_mentions(&pod_dir), Vec::<String>::new());
    assert!(!netns.exists());
    assert_eq!(mountinfo_mentions(&run.join("netns")), Vec::<String>::new());
    assert!(!pod_dir.exists());
    let cg = CgroupFiles::detect(Path::new(&cgroup_parent)).unwrap();
    let leftovers: Vec<PathBuf> = cg
        .existing_dirs()
        .into_iter()
        .flat_map(|d| std::fs::read_dir(d).into_iter().flatten().flatten())
        .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
        .map(|e| e.path())
        .collect();
    assert_eq!(leftovers, Vec::<PathBuf>::new(), "container cgroups left");
}

#[test]
fn failing_init_container_fails_the_pod_and_starts_nothing() {
    let _serial = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    let pid = std::process::id();
    let tmp = tempfile::Builder::new()
        .prefix("bramble-pod-init-")
        .tempdir()
        .unwrap();
    let cgroup_parent = format!("/bramble-test-podinit-{pid}");
    let run = tmp.path().join("run");
    std::fs::create_dir(&run).unwrap();
    let _cleanup = Cleanup {
        run: run.clone(),
        cgroup_parent: cgroup_parent.clone(),
    };
    let runtime = LibcontainerRuntime::new(LibcontainerOptions {
        root: run.join("runtime"),
        cgroup_parent,
    })
    .unwrap();
    let dirs = PodDirs {
        data: tmp.path().join("data"),
        logs: tmp.path().join("logs"),
        netns: run.join("netns"),
    };
    let pod: Pod = serde_yaml_ng::from_str(&format!(
        r#"
apiVersion: v1
kind: Pod
metadata: {{name: initfail-{pid}}}
spec:
  restartPolicy: Never
  initContainers:
  - {{name: boom, image: busybox, command: [sh, -c, "echo init-failed; exit 7"]}}
  containers:
  - {{name: app, image: busybox, command: [sleep, "100"]}}
"#
    ))
    .unwrap();
    let images = common::fixture_images();
    let mut running = RunningPod::start(
        &runtime,
        &pod,
        &PodInputs::default(),
        &images,
        &dirs,
        &PodOptions::default(),
    )
    .unwrap();
    assert_eq!(running.failed_init(), Some(("boom", ExitStatus::Code(7))));
    assert_eq!(running.phase(), RunPhase::Failed);
    assert!(running.container("app").is_none());
    running.poll().unwrap();
    let log = std::fs::read_to_string(&running.container("boom").unwrap().log_path).unwrap();
    assert_eq!(log, "init-failed\n");
    let pod_dir = running.dir().to_path_buf();
    running.stop(Duration::from_secs(1)).unwrap();
    assert!(!pod_dir.exists());
    assert_eq!(mountinfo_mentions(tmp.path()), Vec::<String>::new());
}

/// A test's tmpfs run dir, runtime and pod directories.
struct PodEnv {
    tmp: tempfile::TempDir,
    runtime: LibcontainerRuntime,
    dirs: PodDirs,
    _cleanup: Cleanup,
}

impl PodEnv {
    fn new(name: &str) -> PodEnv {
        let pid = std::process::id();
        let tmp = tempfile::Builder::new()
            .prefix(&format!("bramble-pod-{name}-"))
            .tempdir()
            .unwrap();
        let run = tmp.path().join("run");
        std::fs::create_dir(&run).unwrap();
        let cgroup_parent = format!("/bramble-test-pod{name}-{pid}");
        let cleanup = Cleanup {
            run: run.clone(),
            cgroup_parent: cgroup_parent.clone(),
        };
        let runtime = LibcontainerRuntime::new(LibcontainerOptions {
            root: run.join("runtime"),
            cgroup_parent,
        })
        .unwrap();
        let dirs = PodDirs {
            data: tmp.path().join("data"),
            logs: tmp.path().join("logs"),
            netns: run.join("netns"),
        };
        PodEnv {
            tmp,
            runtime,
            dirs,
            _cleanup: cleanup,
        }
    }

    fn start(&self, yaml: &str) -> Result<RunningPod<'_>, bramble_agent::pod::PodError> {
        let pod: Pod = serde_yaml_ng::from_str(yaml).unwrap();
        RunningPod::start(
            &self.runtime,
            &pod,
            &PodInputs::default(),
            &common::fixture_images(),
            &self.dirs,
            &PodOptions::default(),
        )
    }

    /// Mounts under the test's directory, and files in the netns directory.
    fn leftovers(&self) -> (Vec<String>, Vec<PathBuf>) {
        let files = std::fs::read_dir(&self.dirs.netns)
            .map(|d| d.flatten().map(|e| e.path()).collect())
            .unwrap_or_default();
        (mountinfo_mentions(&self.dirs.netns), files)
    }
}

/// Stops the pod on drop (after a failed assertion).
struct PodGuard<'r>(Option<RunningPod<'r>>);

impl Drop for PodGuard<'_> {
    fn drop(&mut self) {
        if let Some(p) = self.0.take()
            && let Err(e) = p.stop(Duration::ZERO)
        {
            eprintln!("cleanup: stopping the pod: {e}");
        }
    }
}

const SHOW_NS: &str = "echo ipc=$(readlink /proc/self/ns/ipc) uts=$(readlink /proc/self/ns/uts) \
     net=$(readlink /proc/self/ns/net) mnt=$(readlink /proc/self/ns/mnt) host=$(hostname)";

/// `key=value` words of a container's log.
fn fields(pod: &RunningPod<'_>, container: &str) -> std::collections::BTreeMap<String, String> {
    let log = std::fs::read_to_string(&pod.container(container).unwrap().log_path).unwrap();
    log.split_whitespace()
        .filter_map(|w| w.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

#[test]
fn containers_of_a_pod_share_ipc_uts_and_hostname_and_pods_do_not() {
    let _serial = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    let env = PodEnv::new("ns");
    let pid = std::process::id();
    let pod_yaml = |name: &str, hostname: &str| {
        format!(
            r#"
apiVersion: v1
kind: Pod
metadata: {{name: {name}-{pid}}}
spec:
  restartPolicy: Never
  {hostname}
  containers:
  - {{name: a, image: busybox, command: [sh, -c, "{SHOW_NS}"]}}
  - {{name: b, image: busybox, command: [sh, -c, "{SHOW_NS}"]}}
"#
        )
    };
    let mut one = PodGuard(Some(
        env.start(&pod_yaml("one", "")).expect("start pod one"),
    ));
    let mut two = PodGuard(Some(
        env.start(&pod_yaml("two", "hostname: second"))
            .expect("start pod two"),
    ));
    for pod in [&mut one, &mut two] {
        let p = pod.0.as_mut().unwrap();
        for c in ["a", "b"] {
            let status = p.wait_container(c, Some(Duration::from_secs(30))).unwrap();
            assert_eq!(status, Some(ExitStatus::Code(0)), "{c}: {:?}", fields(p, c));
        }
    }
    let (p1, p2) = (one.0.as_ref().unwrap(), two.0.as_ref().unwrap());
    let (a1, b1, a2, b2) = (
        fields(p1, "a"),
        fields(p1, "b"),
        fields(p2, "a"),
        fields(p2, "b"),
    );
    eprintln!("{a1:?}\n{b1:?}\n{a2:?}\n{b2:?}");
    let host_ns = |kind: &str| {
        std::fs::read_link(format!("/proc/self/ns/{kind}"))
            .unwrap()
            .to_string_lossy()
            .into_owned()
    };
    for kind in ["ipc", "uts", "net"] {
        assert!(a1[kind].starts_with(&format!("{kind}:[")), "{a1:?}");
        assert_eq!(a1[kind], b1[kind], "{kind} differs within pod one");
        assert_eq!(a2[kind], b2[kind], "{kind} differs within pod two");
        assert_ne!(a1[kind], a2[kind], "pods one and two share {kind}");
        assert_ne!(a1[kind], host_ns(kind), "pod one is in the host's {kind}");
    }
    // Each container has its own mount namespace.
    assert_ne!(a1["mnt"], b1["mnt"]);
    assert_eq!(a1["host"], format!("one-{pid}"));
    assert_eq!(b1["host"], format!("one-{pid}"));
    assert_eq!(
        (a2["host"].as_str(), b2["host"].as_str()),
        ("second", "second")
    );

    // The namespace files are the pod's, and stop removes them all.
    let net1 = p1.netns_path().unwrap().to_path_buf();
    let ipc1 = PathBuf::from(format!("{}:ipc", net1.display()));
    let uts1 = PathBuf::from(format!("{}:uts", net1.display()));
    assert!(ipc1.exists() && uts1.exists());
    let ino = |p: &Path| std::os::unix::fs::MetadataExt::ino(&std::fs::metadata(p).unwrap());
    assert_eq!(a1["ipc"], format!("ipc:[{}]", ino(&ipc1)));
    assert_eq!(a1["uts"], format!("uts:[{}]", ino(&uts1)));
    one.0.take().unwrap().stop(Duration::from_secs(1)).unwrap();
    two.0.take().unwrap().stop(Duration::from_secs(1)).unwrap();
    assert_eq!(env.leftovers(), (Vec::new(), Vec::new()));
    assert_eq!(
        mountinfo_mentions(env.tmp.path().join("data").as_path()),
        Vec::<String>::new()
    );
}

#[test]
fn a_pod_failing_to_start_leaves_no_namespace_behind() {
    let _serial = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    let env = PodEnv::new("nsfail");
    let pid = std::process::id();
    // The second container cannot be created (an unknown capability), after
    // the namespaces and the first container were made.
    let err = env
        .start(&format!(
            r#"
apiVersion: v1
kind: Pod
metadata: {{name: nsfail-{pid}}}
spec:
  containers:
  - {{name: ok, image: busybox, command: [sleep, "100"]}}
  - name: bad
    image: busybox
    command: [sleep, "100"]
    securityContext: {{capabilities: {{add: [NET_ADMINN]}}}}
"#
        ))
        .unwrap_err()
        .to_string();
    assert!(err.contains("NET_ADMINN") && err.contains("bad"), "{err}");
    assert_eq!(env.leftovers(), (Vec::new(), Vec::new()));
    assert_eq!(mountinfo_mentions(env.tmp.path()), Vec::<String>::new());
}
