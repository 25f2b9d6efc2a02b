//! The planner over real Compose files (`cli/tests/fixtures/compose`, from
//! docker/awesome-compose, CC0), and small files written for one rule: what
//! runs, what is refused and with which paths, what warns.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde_json::{Value, json};

use super::load::{Options, load};
use super::plan::{Plan, PlanInput, Workload, plan};

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/compose")
        .join(name)
}

/// Loads and plans a fixture with `env`; every file it names reads as
/// `secret-of:PATH`.
fn plan_fixture(name: &str, env: &[(&str, &str)]) -> anyhow::Result<Plan> {
    let env: BTreeMap<String, String> = env
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    plan_files(vec![fixture(name)], fixture(""), env)
}

/// Loads and plans `files` as project `demo` from `cwd`; every file they
/// name reads as `secret-of:PATH`.
fn plan_files(
    files: Vec<PathBuf>,
    cwd: PathBuf,
    env: BTreeMap<String, String>,
) -> anyhow::Result<Plan> {
    let l = load(&Options {
        files,
        cwd,
        project_name: Some("demo".into()),
        env,
        ..Options::default()
    })?;
    let read = |p: &Path| Ok(format!("secret-of:{}", p.display()).into_bytes());
    plan(
        &l.doc,
        PlanInput {
            project: &l.name,
            dir: &l.dir,
            vars: &l.vars,
            profiles: &l.profiles,
            services: &[],
            read: &read,
        },
    )
}

fn objects<'a>(p: &'a Plan, service: &str) -> &'a [Value] {
    &p.services
        .iter()
        .find(|s| s.name == service)
        .expect(service)
        .objects
}

fn names(p: &Plan) -> Vec<&str> {
    p.services.iter().map(|s| s.name.as_str()).collect()
}

#[test]
fn wordpress_mysql_runs_with_a_claim_a_peer_service_and_a_published_port() {
    let p = plan_fixture("awesome-compose/wordpress-mysql.yaml", &[]).unwrap();
    assert_eq!(p.namespace, "demo");
    assert_eq!(p.shared.len(), 1);
    assert_eq!(p.shared[0]["kind"], "PersistentVolumeClaim");
    assert_eq!(p.shared[0]["metadata"]["name"], "db-data");
    assert_eq!(p.shared[0]["spec"]["storageClassName"], "local-path");
    let db = objects(&p, "db");
    assert_eq!(db[0]["kind"], "Deployment");
    let c = &db[0]["spec"]["template"]["spec"]["containers"][0];
    assert_eq!(
        c["args"],
        json!(["--default-authentication-plugin=mysql_native_password"])
    );
    assert!(c.get("command").is_none());
    assert_eq!(
        c["env"][0],
        json!({"name": "MYSQL_DATABASE", "value": "wordpress"})
    );
    assert_eq!(
        db[0]["spec"]["template"]["spec"]["volumes"][0]["persistentVolumeClaim"]["claimName"],
        "db-data"
    );
    assert_eq!(db[1]["metadata"]["name"], "db");
    assert_eq!(db[1]["spec"]["clusterIP"], "None");
    assert_eq!(db[1]["spec"]["ports"].as_array().unwrap().len(), 2);
    assert_eq!(db.len(), 2, "nothing published for db");
    let wp = objects(&p, "wordpress");
    assert_eq!(wp[2]["metadata"]["name"], "wordpress-published");
    assert_eq!(wp[2]["spec"]["type"], "LoadBalancer");
    assert_eq!(
        wp[2]["spec"]["ports"],
        json!([{"name": "tcp-80", "port": 80, "targetPort": 80, "protocol": "TCP"}])
    );
    assert_eq!(
        wp[0]["spec"]["selector"]["matchLabels"]["com.docker.compose.service"],
        "wordpress"
    );
    assert!(p.services.iter().all(|s| {
        s.objects
            .iter()
            .all(|o| o["metadata"]["namespace"] == "demo")
    }));
}

#[test]
fn services_to_build_plan_with_their_build_and_run_the_image_it_names() {
    let p = plan_fixture("awesome-compose/nginx-golang-mysql.yaml", &[]).unwrap();
    assert_eq!(names(&p), ["db", "backend", "proxy"], "dependencies first");
    let backend = p.services.iter().find(|s| s.name == "backend").unwrap();
    let b = backend.build.as_ref().expect("backend is built");
    // Named as docker compose names it, in the hub's registry.
    assert_eq!(b.image, "demo-backend:latest");
    assert_eq!(b.request.tag.as_deref(), Some("demo-backend:latest"));
    // The context is relative to the project directory (the file's).
    assert_eq!(b.request.context, fixture("awesome-compose/backend"));
    assert_eq!(b.request.file, None, "CONTEXT/Dockerfile");
    assert_eq!(b.request.target.as_deref(), Some("builder"));
    assert_eq!(b.request.platforms, crate::build::default_platforms());
    assert_eq!(
        objects(&p, "backend")[0]["spec"]["template"]["spec"]["containers"][0]["image"],
        "demo-backend:latest"
    );
    // Services with an image are not built.
    assert!(
        p.services
            .iter()
            .filter(|s| s.name != "backend")
            .all(|s| s.build.is_none())
    );

    // The short form is the context.
    let p = plan_fixture("awesome-compose/traefik-golang.yaml", &[]).unwrap();
    let backend = p.services.iter().find(|s| s.name == "backend").unwrap();
    let b = backend.build.as_ref().expect("backend is built");
    assert_eq!(b.request.context, fixture("awesome-compose/backend"));
    assert_eq!(b.image, "demo-backend:latest");
    assert_eq!(b.request.target, None);
}

#[test]
fn a_built_service_with_its_own_image_name_builds_and_runs_that_name() {
    let dir = tempfile::tempdir().unwrap();
    let over = dir.path().join("override.yaml");
    std::fs::write(
        &over,
        "services:\n  frontend:\n    image: web/frontend:dev\n    platform: linux/arm64\n    build:\n      args: {NODE_ENV: development}\n",
    )
    .unwrap();
    let l = load(&Options {
        files: vec![fixture("awesome-compose/react-express-mongodb.yaml"), over],
        cwd: fixture(""),
        project_name: Some("demo".into()),
        ..Options::default()
    })
    .unwrap();
    let read = |p: &Path| Ok(p.display().to_string().into_bytes());
    let p = plan(
        &l.doc,
        PlanInput {
            project: &l.name,
            dir: &l.dir,
            vars: &l.vars,
            profiles: &[],
            services: &[],
            read: &read,
        },
    )
    .unwrap();
    let front = p.services.iter().find(|s| s.name == "frontend").unwrap();
    let b = front.build.as_ref().unwrap();
    assert_eq!(b.image, "web/frontend:dev");
    assert_eq!(b.request.context, fixture("awesome-compose/frontend"));
    assert_eq!(b.request.target.as_deref(), Some("development"));
    assert_eq!(
        b.request.platforms,
        ["linux/arm64"],
        "the service's platform"
    );
    assert_eq!(b.request.build_args["NODE_ENV"], "development");
    assert_eq!(
        objects(&p, "frontend")[0]["spec"]["template"]["spec"]["containers"][0]["image"],
        "web/frontend:dev"
    );
    let back = p.services.iter().find(|s| s.name == "backend").unwrap();
    assert_eq!(back.build.as_ref().unwrap().image, "demo-backend:latest");
    assert!(
        !p.warnings.iter().any(|w| w.contains("platform")),
        "a built service's platform is honoured: {:?}",
        p.warnings
    );
}

#[test]
fn healthchecks_secrets_and_dollar_escapes_of_a_real_file() {
    // The same file with the backend's image named (what its build tags),
    // merged over the original by a second -f.
    let dir = tempfile::tempdir().unwrap();
    let over = dir.path().join("override.yaml");
    std::fs::write(&over, "services:\n  backend:\n    image: backend:1\n").unwrap();
    let l = load(&Options {
        files: vec![fixture("awesome-compose/nginx-golang-mysql.yaml"), over],
        cwd: fixture(""),
        project_name: Some("demo".into()),
        ..Options::default()
    })
    .unwrap();
    let read =
        |p: &Path| Ok(format!("pw-from:{}", p.file_name().unwrap().to_string_lossy()).into_bytes());
    let p = plan(
        &l.doc,
        PlanInput {
            project: &l.name,
            dir: &l.dir,
            vars: &l.vars,
            profiles: &[],
            services: &[],
            read: &read,
        },
    )
    .unwrap();
    assert_eq!(names(&p), ["db", "backend", "proxy"], "dependencies first");
    let backend = p.services.iter().find(|s| s.name == "backend").unwrap();
    assert_eq!(
        backend.waits,
        [("db".to_string(), super::plan::Condition::Healthy)]
    );
    let db = &objects(&p, "db")[0]["spec"]["template"]["spec"];
    let probe = &db["containers"][0]["readinessProbe"];
    assert_eq!(
        probe["exec"]["command"][2],
        "mysqladmin ping -h 127.0.0.1 --password=\"$(cat /run/secrets/db-password)\" --silent"
    );
    assert_eq!(probe["periodSeconds"], 3);
    assert_eq!(probe["failureThreshold"], 5);
    let mounts = &db["containers"][0]["volumeMounts"];
    assert!(
        mounts
            .as_array()
            .unwrap()
            .iter()
            .any(|m| m["mountPath"] == "/run/secrets/db-password" && m["subPath"] == "db-password"),
        "{mounts}"
    );
    let secret = p.shared.iter().find(|o| o["kind"] == "Secret").unwrap();
    assert_eq!(secret["metadata"]["name"], "db-password");
    use base64::Engine as _;
    let data = base64::engine::general_purpose::STANDARD
        .decode(secret["data"]["db-password"].as_str().unwrap())
        .unwrap();
    assert_eq!(data, b"pw-from:password.txt");
    let proxy = &objects(&p, "proxy")[0]["spec"]["template"]["spec"];
    let host = proxy["volumes"][0]["hostPath"]["path"].as_str().unwrap();
    assert!(
        host.ends_with("fixtures/compose/awesome-compose/proxy/nginx.conf"),
        "{host}"
    );
    assert_eq!(proxy["containers"][0]["volumeMounts"][0]["readOnly"], true);
}

#[test]
fn custom_networks_and_kernel_settings_are_refused_by_path() {
    let e = plan_fixture("awesome-compose/pihole-cloudflared-DoH.yaml", &[])
        .unwrap_err()
        .to_string();
    assert!(e.contains("networks.dns-net.ipam: not supported"), "{e}");
    assert!(
        e.contains("services.cloudflared.networks.dns-net.ipv4_address: not supported"),
        "{e}"
    );
    let e = plan_fixture("awesome-compose/wireguard.yaml", &[])
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("services.wireguard.sysctls: not supported"),
        "{e}"
    );
}

#[test]
fn fleet_meaningless_keys_warn_once_each_and_binds_are_host_paths() {
    let p = plan_fixture("awesome-compose/prometheus-grafana.yaml", &[]).unwrap();
    let w: Vec<&str> = p.warnings.iter().map(String::as_str).collect();
    assert_eq!(
        w.iter().filter(|w| w.contains("container_name")).count(),
        2,
        "{w:?}"
    );
    assert!(
        w.iter().any(
            |w| w.starts_with("services.prometheus.volumes[0]: ./prometheus is /")
                && w.ends_with("on the board that runs the pod, not on this machine")
        ),
        "{w:?}"
    );
    let prom = &objects(&p, "prometheus")[0]["spec"]["template"]["spec"];
    assert!(
        prom["volumes"][0]["hostPath"]["path"]
            .as_str()
            .unwrap()
            .ends_with("awesome-compose/prometheus")
    );
    assert_eq!(
        prom["volumes"][1]["persistentVolumeClaim"]["claimName"],
        "prom-data"
    );
    assert_eq!(
        prom["containers"][0]["args"],
        json!(["--config.file=/etc/prometheus/prometheus.yml"])
    );
    let p = plan_fixture("awesome-compose/nextcloud-redis-mariadb.yaml", &[]).unwrap();
    assert!(
        p.warnings
            .iter()
            .any(|w| w.starts_with("networks.dbnet: ignored")),
        "{:?}",
        p.warnings
    );
    let db = &objects(&p, "db")[0]["spec"]["template"]["spec"]["containers"][0];
    assert_eq!(
        db["args"],
        json!([
            "--transaction-isolation=READ-COMMITTED",
            "--binlog-format=ROW"
        ])
    );
}

#[test]
fn host_network_memory_limits_and_home_binds() {
    let p = plan_fixture(
        "awesome-compose/plex.yaml",
        &[("PLEX_MEDIA_PATH", "/srv/media")],
    )
    .unwrap();
    let plex = &objects(&p, "plex")[0]["spec"]["template"]["spec"];
    assert_eq!(plex["hostNetwork"], true);
    assert_eq!(plex["volumes"][0]["hostPath"]["path"], "/srv/media");
    let e = plan_fixture("awesome-compose/plex.yaml", &[])
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("services.plex.volumes[0]"),
        "an unset path is an error: {e}"
    );
    let p = plan_fixture("awesome-compose/minecraft.yaml", &[("HOME", "/home/pi")]).unwrap();
    let mc = &objects(&p, "minecraft")[0]["spec"]["template"]["spec"];
    assert_eq!(
        mc["containers"][0]["resources"]["limits"]["memory"],
        "1610612736"
    );
    assert_eq!(
        mc["volumes"][0]["hostPath"]["path"],
        "/home/pi/minecraft_data"
    );
    assert_eq!(
        mc["containers"][0]["env"],
        json!([{"name": "EULA", "value": "TRUE"}])
    );
}

#[test]
fn every_corpus_file_plans_or_is_refused_with_paths() {
    let mut seen = 0;
    for entry in std::fs::read_dir(fixture("awesome-compose")).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_none_or(|e| e != "yaml") {
            continue;
        }
        seen += 1;
        let name = format!(
            "awesome-compose/{}",
            path.file_name().unwrap().to_string_lossy()
        );
        match plan_fixture(&name, &[("HOME", "/root"), ("PLEX_MEDIA_PATH", "/m")]) {
            Ok(p) => assert!(
                p.services
                    .iter()
                    .all(|s| s.workload == Workload::Deployment && !s.objects.is_empty()),
                "{name}"
            ),
            Err(e) => {
                let e = e.to_string();
                assert!(
                    e.starts_with("demo cannot run on Bramble:\n  "),
                    "{name}: {e}"
                );
                assert!(
                    e.lines()
                        .skip(1)
                        .all(|l| l.trim_start().starts_with("services.")
                            || l.trim_start().starts_with("networks.")),
                    "{name}: {e}"
                );
            }
        }
    }
    assert!(seen >= 10, "the corpus is there");
}

#[test]
fn completion_dependencies_run_as_jobs_and_profiles_select() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("compose.yaml");
    std::fs::write(
        &f,
        "services:\n  migrate:\n    image: busybox\n    command: [sh, -c, 'echo done']\n    restart: on-failure:2\n  app:\n    image: busybox\n    depends_on:\n      migrate: {condition: service_completed_successfully}\n  debug:\n    image: busybox\n    profiles: [dev]\n",
    )
    .unwrap();
    let l = load(&Options {
        files: vec![f.clone()],
        cwd: dir.path().into(),
        ..Options::default()
    })
    .unwrap();
    let read = |_: &Path| Ok(Vec::new());
    let input = |profiles: &'static [String]| PlanInput {
        project: "x",
        dir: dir.path(),
        vars: &l.vars,
        profiles,
        services: &[],
        read: &read,
    };
    let p = plan(&l.doc, input(&[])).unwrap();
    assert_eq!(names(&p), ["migrate", "app"]);
    let job = &objects(&p, "migrate")[0];
    assert_eq!(job["kind"], "Job");
    assert_eq!(job["spec"]["backoffLimit"], 2);
    assert_eq!(
        job["spec"]["template"]["spec"]["restartPolicy"],
        "OnFailure"
    );
    let hash = job["metadata"]["annotations"][super::plan::CONFIG_HASH]
        .as_str()
        .unwrap();
    assert_eq!(hash.len(), 64, "a SHA-256 of the planned Job: {hash}");
    static DEV: std::sync::LazyLock<Vec<String>> =
        std::sync::LazyLock::new(|| vec!["dev".to_string()]);
    let p = plan(&l.doc, input(DEV.as_slice())).unwrap();
    assert_eq!(names(&p).len(), 3);
    // A service without ports gets a headless Service without ports (DNS
    // answers its ready addresses).
    let peer = &objects(&p, "app")[1];
    assert_eq!(peer["spec"]["clusterIP"], "None");
    assert!(peer["spec"].get("ports").is_none(), "{peer}");
}

/// Plans `yaml` as project `demo` from a directory of its own.
fn plan_text(yaml: &str) -> anyhow::Result<Plan> {
    let dir = tempfile::tempdir()?;
    let file = dir.path().join("compose.yaml");
    std::fs::write(&file, yaml)?;
    plan_files(vec![file], dir.path().to_path_buf(), BTreeMap::new())
}

#[test]
fn a_global_service_runs_on_every_node_as_a_daemonset() {
    let p = plan_text(
        "services:\n  exporter:\n    image: bb:1\n    deploy:\n      mode: global\n      placement:\n        constraints: [node.platform.arch == aarch64]\n  web:\n    image: bb:1\n    depends_on: [exporter]\n",
    )
    .unwrap();
    let s = p.services.iter().find(|s| s.name == "exporter").unwrap();
    assert_eq!(s.workload, Workload::DaemonSet);
    let ds = &s.objects[0];
    assert_eq!(
        (&ds["apiVersion"], &ds["kind"]),
        (&json!("apps/v1"), &json!("DaemonSet"))
    );
    assert!(ds["spec"].get("replicas").is_none(), "{ds}");
    let selector = ds["spec"]["selector"]["matchLabels"].as_object().unwrap();
    assert!(!selector.is_empty(), "{ds}");
    for (k, v) in selector {
        assert_eq!(&ds["spec"]["template"]["metadata"]["labels"][k], v, "{ds}");
    }
    assert_eq!(
        ds["spec"]["template"]["spec"]["nodeSelector"]["kubernetes.io/arch"], "arm64",
        "placement applies to a global service too: {ds}"
    );
    assert_eq!(objects(&p, "web")[0]["kind"], "Deployment");

    let err = |yaml: &str| plan_text(yaml).unwrap_err().to_string();
    let both = err("services:\n  x:\n    image: bb:1\n    deploy: {mode: global, replicas: 2}\n");
    assert!(
        both.contains("services.x.deploy.replicas: a global service"),
        "{both}"
    );
    let other = err("services:\n  x:\n    image: bb:1\n    deploy: {mode: replicated-job}\n");
    assert!(
        other.contains("services.x.deploy.mode: \"replicated-job\" not supported"),
        "{other}"
    );
    let waited = err(
        "services:\n  x:\n    image: bb:1\n    deploy: {mode: global}\n  y:\n    image: bb:1\n    depends_on: {x: {condition: service_completed_successfully}}\n",
    );
    assert!(
        waited.contains("services.x.deploy.mode: global"),
        "{waited}"
    );
}
