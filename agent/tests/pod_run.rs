//! A whole pod on each backend (libcontainer, runc) with real containers
//! (root): the issue's acceptance pod — a busybox httpd and a client
//! sharing localhost through the pod's network namespace, a ConfigMap-mounted
//! page, a Secret as env and as a tmpfs-only volume, an init container
//! filling an emptyDir — and that stopping it leaves no mount, namespace
//! file or cgroup. Every test cleans up also after a failed assertion
//! ([`common::PodEnv`], [`common::PodGuard`]).

// statfs field types differ between libcs and architectures.
#![allow(clippy::unnecessary_cast)]

mod common;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use bramble_agent::pod::{PodInputs, PodOptions, RunPhase, RunningPod};
use bramble_agent::runtime::ExitStatus;
use bramble_api::objects::pod_status::PodStatus;
use common::{Backend, PodEnv, PodGuard, files_containing, mountinfo_mentions};

/// Whether `name`'s status in `s` (init or app) is terminated.
fn terminated(s: &PodStatus, name: &str) -> bool {
    s.container_statuses
        .iter()
        .chain(&s.init_container_statuses)
        .any(|c| c.name == name && c.state.as_ref().is_some_and(|st| st.terminated.is_some()))
}

fn two_containers_share_localhost_with_config_map_secret_and_init(backend: Backend) {
    let env = PodEnv::new("run", backend);
    let pid = std::process::id();
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
    let yaml = format!(
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
    );

    let mut running = PodGuard(Some(
        env.start_with(
            &yaml,
            &inputs,
            &PodOptions {
                pids_limit: Some(64),
                ..Default::default()
            },
        )
        .expect("start pod"),
    ));
    let netns = running.pod().netns_path().unwrap().to_path_buf();
    let pod_dir = running.pod().dir().to_path_buf();
    assert!(netns.exists());

    // The init container runs first; the app containers once it completed.
    let (status, _) = running.tick_until(Duration::from_secs(30), |s, _| terminated(s, "client"));
    let p = running.pod();
    assert_eq!(p.failed_init(), None);
    let client_log =
        std::fs::read_to_string(&p.container("client").unwrap().log_path).unwrap_or_default();
    let server_log =
        std::fs::read_to_string(&p.container("server").unwrap().log_path).unwrap_or_default();
    let exit = |name: &str| {
        status
            .container_statuses
            .iter()
            .chain(&status.init_container_statuses)
            .find(|c| c.name == name)
            .and_then(|c| c.state.as_ref()?.terminated.as_ref())
            .map(|t| t.exit_code)
    };
    assert_eq!(
        exit("client"),
        Some(0),
        "client log:\n{client_log}\nserver log:\n{server_log}"
    );
    assert_eq!(exit("prep"), Some(0));
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
    p.poll().unwrap();
    // The server still runs, so the pod does too.
    assert_eq!(p.phase(), RunPhase::Running);
    assert_eq!(status.phase.as_deref(), Some("Running"));

    // The secret is on a tmpfs and in no file on disk.
    let secret_dir = p.volumes().unwrap().host_path("creds").unwrap();
    let fs = rustix::fs::statfs(secret_dir).unwrap();
    let fs_type = fs.f_type as i64;
    assert_eq!(fs_type, libc::TMPFS_MAGIC as i64);
    assert_eq!(
        std::fs::read_to_string(secret_dir.join("password")).unwrap(),
        secret
    );
    for d in [&env.dirs.data, &env.dirs.logs] {
        let hits = files_containing(d, secret.as_bytes());
        assert!(hits.is_empty(), "secret found on disk in {hits:?}");
    }

    let ended = running
        .0
        .take()
        .unwrap()
        .stop(Duration::from_secs(2))
        .expect("stop pod");
    let names: Vec<&str> = ended.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, vec!["prep", "server", "client"]);
    assert_eq!(ended[0].1, ExitStatus::Code(0));
    assert_eq!(ended[2].1, ExitStatus::Code(0));

    // Nothing left: mounts, namespace file, pod dir, cgroups.
    assert_eq!(mountinfo_mentions(&pod_dir), Vec::<String>::new());
    assert!(!netns.exists());
    assert_eq!(mountinfo_mentions(&env.dirs.netns), Vec::<String>::new());
    assert!(!pod_dir.exists());
    assert_eq!(
        env.container_cgroups(),
        Vec::<PathBuf>::new(),
        "container cgroups left"
    );
}

fn failing_init_container_fails_the_pod_and_starts_nothing(backend: Backend) {
    let env = PodEnv::new("initfail", backend);
    let pid = std::process::id();
    let yaml = format!(
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
    );
    let mut running = PodGuard(Some(
        env.start_with(&yaml, &PodInputs::default(), &PodOptions::default())
            .unwrap(),
    ));
    assert_eq!(running.pod().phase(), RunPhase::Pending);
    let (status, _) = running.tick_until(Duration::from_secs(30), |s, _| {
        s.phase.as_deref() == Some("Failed")
    });
    let p = running.pod();
    assert_eq!(p.failed_init(), Some(("boom", ExitStatus::Code(7))));
    assert_eq!(p.phase(), RunPhase::Failed);
    // The app container was never created.
    let app = p.container("app").unwrap();
    assert!(app.is_deleted());
    assert_eq!(app.record().container_id, None);
    let app_status = &status.container_statuses[0];
    assert_eq!(
        app_status
            .state
            .as_ref()
            .unwrap()
            .waiting
            .as_ref()
            .unwrap()
            .reason
            .as_deref(),
        Some("PodInitializing")
    );
    let log = std::fs::read_to_string(&p.container("boom").unwrap().log_path).unwrap();
    assert_eq!(log, "init-failed\n");
    // Failed for good: nothing more happens.
    let events = p.tick(Instant::now()).unwrap();
    assert!(events.is_empty(), "{events:?}");
    let pod_dir = p.dir().to_path_buf();
    let ended = running
        .0
        .take()
        .unwrap()
        .stop(Duration::from_secs(1))
        .unwrap();
    assert_eq!(ended, vec![("boom".to_string(), ExitStatus::Code(7))]);
    assert!(!pod_dir.exists());
    assert_eq!(mountinfo_mentions(&env.dirs.data), Vec::<String>::new());
}

fn start(env: &PodEnv, yaml: &str) -> Result<RunningPod, bramble_agent::pod::PodError> {
    env.start_with(yaml, &PodInputs::default(), &PodOptions::default())
}

/// Mounts on the netns directory, and files in it.
fn leftovers(env: &PodEnv) -> (Vec<String>, Vec<PathBuf>) {
    let files = std::fs::read_dir(&env.dirs.netns)
        .map(|d| d.flatten().map(|e| e.path()).collect())
        .unwrap_or_default();
    (mountinfo_mentions(&env.dirs.netns), files)
}

/// Prints the container's namespaces and keeps it running: namespace inode
/// numbers are reused once a namespace is gone, so only containers alive at
/// the same time can be compared.
const SHOW_NS: &str = "echo ipc=$(readlink /proc/self/ns/ipc) uts=$(readlink /proc/self/ns/uts) \
     net=$(readlink /proc/self/ns/net) mnt=$(readlink /proc/self/ns/mnt) host=$(hostname); \
     exec sleep 1000";

/// `key=value` words of a container's log.
fn fields(pod: &RunningPod, container: &str) -> std::collections::BTreeMap<String, String> {
    let log =
        std::fs::read_to_string(&pod.container(container).unwrap().log_path).unwrap_or_default();
    log.split_whitespace()
        .filter_map(|w| w.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn containers_of_a_pod_share_ipc_uts_and_hostname_and_pods_do_not(backend: Backend) {
    let env = PodEnv::new("ns", backend);
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
        start(&env, &pod_yaml("one", "")).expect("start pod one"),
    ));
    let mut two = PodGuard(Some(
        start(&env, &pod_yaml("two", "hostname: second")).expect("start pod two"),
    ));
    for pod in [&mut one, &mut two] {
        let p = pod.pod();
        for c in ["a", "b"] {
            bramble_tests::eventually(format!("{c}'s output"), Duration::from_secs(30), || {
                if fields(p, c).contains_key("host") {
                    return true;
                }
                assert_eq!(p.poll().unwrap(), Vec::new(), "a container ended");
                false
            });
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
    one.0.take().unwrap().stop(Duration::ZERO).unwrap();
    two.0.take().unwrap().stop(Duration::ZERO).unwrap();
    assert_eq!(leftovers(&env), (Vec::new(), Vec::new()));
    assert_eq!(mountinfo_mentions(&env.dirs.data), Vec::<String>::new());
    assert_eq!(env.container_cgroups(), Vec::<PathBuf>::new());
}

fn a_pod_failing_to_start_leaves_no_namespace_behind(backend: Backend) {
    let env = PodEnv::new("nsfail", backend);
    let pid = std::process::id();
    // The second container cannot be created (an unknown capability), after
    // the namespaces and the first container were made.
    let err = start(
        &env,
        &format!(
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
        ),
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("NET_ADMINN") && err.contains("bad"), "{err}");
    assert_eq!(leftovers(&env), (Vec::new(), Vec::new()));
    assert_eq!(mountinfo_mentions(&env.dirs.data), Vec::<String>::new());
    assert_eq!(env.container_cgroups(), Vec::<PathBuf>::new());
}

both_backends!(
    two_containers_share_localhost_with_config_map_secret_and_init,
    failing_init_container_fails_the_pod_and_starts_nothing,
    containers_of_a_pod_share_ipc_uts_and_hostname_and_pods_do_not,
    a_pod_failing_to_start_leaves_no_namespace_behind,
);
