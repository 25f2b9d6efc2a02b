//! `bramble compose` end to end: a real hub and agent, real containers from
//! the busybox fixture. A `web` service that reaches `db` by name once `db`
//! is healthy; a named volume whose data survives `down`/`up` and goes with
//! `down -v`; `ps` and `logs` as docker compose prints them; bind mounts
//! refused under the `baseline` Pod Security level before anything is made;
//! a published port answering through the hub's LoadBalancer; orphans
//! warned about then removed; `up --wait`, `stop`, `start`, `restart`,
//! `exec` and `run` on running services.

use std::time::Duration;

use bramble_tests::cluster::{Broker, Cluster};
use bramble_tests::eventually;
use serde_json::Value;

/// One cluster at a time: a hub and an agent on 2 cores.
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|p| p.into_inner())
}

mod support {
    pub mod compose;
}

use support::compose::{Project, curl};

impl Project<'_> {
    fn get(&self, path: &str) -> Option<Value> {
        let (code, v) = self.c.client().get(path);
        (code == 200).then_some(v)
    }

    fn ns_path(&self, rest: &str) -> String {
        format!("/api/v1/namespaces/{}{rest}", self.name)
    }

    fn apps_path(&self, rest: &str) -> String {
        format!("/apis/apps/v1/namespaces/{}{rest}", self.name)
    }

    /// `bramble compose …` run apart: (exit code, stdout, stderr).
    fn compose_status(&self, args: &[&str]) -> (i32, String, String) {
        let file = self.file().display().to_string();
        let out = std::process::Command::new(bramble_tests::bin("bramble"))
            .args(["--hub", &self.c.hub.url, "--token", &self.c.hub.token])
            .arg("--data-dir")
            .arg(&self.c.hub.data_dir)
            .args(["compose", "-f", &file, "-p", &self.name])
            .args(args)
            .output()
            .expect("running bramble");
        (
            out.status.code().expect("an exit code"),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    /// The pods of `service` that are not being deleted.
    fn pods(&self, service: &str) -> Vec<Value> {
        let v = self
            .get(&self.ns_path(&format!(
                "/pods?labelSelector=com.docker.compose.service%3D{service}"
            )))
            .expect("pods");
        v["items"]
            .as_array()
            .cloned()
            .unwrap_or_default()
            .into_iter()
            .filter(|p| p["metadata"]["deletionTimestamp"].is_null())
            .collect()
    }
}

fn is_ready(pod: &Value) -> bool {
    pod["status"]["conditions"].as_array().is_some_and(|c| {
        c.iter()
            .any(|c| c["type"] == "Ready" && c["status"] == "True")
    })
}

fn uids(pods: &[Value]) -> Vec<String> {
    let mut u: Vec<String> = pods
        .iter()
        .map(|p| p["metadata"]["uid"].as_str().expect("a uid").to_string())
        .collect();
    u.sort();
    u
}

/// `db`: on its first start writes the `.env` token into its volume, then
/// serves it over HTTP on 8000 and becomes healthy 3 s later (a file its
/// health check tests). `web`: waits for db to be healthy, then fetches
/// `http://db:8000/` every second and prints what it got.
const APP: &str = r#"
services:
  db:
    image: busybox:e2e
    command:
      - sh
      - -c
      - |
        [ -f /data/token ] || echo "$TOKEN" > /data/token
        mkdir -p /www && echo "db says $$(cat /data/token)" > /www/index.html
        mkdir -p /tmp && (sleep 3; touch /tmp/healthy) &
        exec httpd -f -p 8000 -h /www
    environment:
      TOKEN: ${TOKEN:?set TOKEN in .env}
    volumes:
      - data:/data
    healthcheck:
      test: ["CMD", "test", "-f", "/tmp/healthy"]
      interval: 1s
      retries: 3
    stop_grace_period: 1s
    container_name: the-db
  web:
    image: busybox:e2e
    entrypoint: sh -c 'while true; do wget -q -O - http://db:8000/ || echo fetch failed; sleep 1; done'
    depends_on:
      db:
        condition: service_healthy
    stop_grace_period: 1s
volumes:
  data:
"#;

fn time(v: &Value) -> std::time::SystemTime {
    bramble_api::printing::age::parse_time(v.as_str().expect("a timestamp")).expect("RFC 3339")
}

/// Waits until `compose logs web` shows `web` fetched `want` from db.
fn web_fetched(p: &Project, want: &str) -> String {
    eventually(
        format!("web logs {want:?}"),
        Duration::from_secs(90),
        || {
            let (ok, out) = p.compose(&["logs", "web"]);
            if ok && out.lines().any(|l| l.contains(" | ") && l.ends_with(want)) {
                return Ok(out);
            }
            let (_, ps) = p.compose(&["ps"]);
            let tail: Vec<&str> = out.lines().rev().take(5).collect();
            Err(format!(
                "logs (last lines, newest first): {tail:?}\nps:\n{ps}"
            ))
        },
    )
}

#[test]
fn web_reaches_db_by_name_after_it_is_healthy_and_the_volume_outlives_down() {
    let _one = serial();
    let c = Cluster::start(Broker::Embedded, 1, &[]);
    c.push_busybox("busybox", "e2e");
    let p = Project::new(&c, "proj", APP);
    p.write(".env", "TOKEN=first\n");

    let up = p.ok(&["up", "-d"]);
    let wait_at = up.find("waiting for db to be healthy").expect(&up);
    let web_at = up.find("deployment.apps/web created").expect(&up);
    assert!(wait_at < web_at, "{up}");
    assert!(
        up.contains("services.db.container_name: ignored"),
        "one warning for a fleet-meaningless key: {up}"
    );

    // Start order: web's Deployment was made after db's pod turned Ready.
    let pods = p
        .get(&p.ns_path("/pods?labelSelector=com.docker.compose.service%3Ddb"))
        .expect("pods");
    let db_pod = &pods["items"][0];
    let ready = db_pod["status"]["conditions"]
        .as_array()
        .and_then(|c| {
            c.iter()
                .find(|c| c["type"] == "Ready" && c["status"] == "True")
        })
        .map(|c| time(&c["lastTransitionTime"]))
        .expect("db is Ready");
    let web = p
        .get(&format!(
            "/apis/apps/v1/namespaces/{}/deployments/web",
            p.name
        ))
        .expect("web");
    assert!(
        time(&web["metadata"]["creationTimestamp"]) >= ready,
        "web made before db was healthy"
    );
    assert!(time(&db_pod["metadata"]["creationTimestamp"]) < ready);

    let logs = web_fetched(&p, "db says first");
    let line = logs.lines().find(|l| l.ends_with("db says first")).unwrap();
    assert!(line.starts_with("web-"), "lines carry the pod name: {line}");

    let ps = p.ok(&["ps"]);
    let mut lines = ps.lines();
    let header: Vec<&str> = lines.next().unwrap().split_whitespace().collect();
    assert_eq!(
        header,
        [
            "NAME", "IMAGE", "COMMAND", "SERVICE", "CREATED", "STATUS", "PORTS"
        ]
    );
    let db_row = ps.lines().find(|l| l.contains(" db ")).expect(&ps);
    assert!(
        db_row.starts_with("db-") && db_row.contains("busybox:e2e"),
        "{ps}"
    );
    assert!(
        db_row.contains("Up ") && db_row.contains("(healthy)"),
        "{ps}"
    );
    assert!(
        ps.lines()
            .any(|l| l.starts_with("web-") && l.contains(" web ") && l.contains("Up ")),
        "{ps}"
    );

    // down keeps the volume: the new db finds the first token.
    p.write(".env", "TOKEN=second\n");
    let down = p.ok(&["down"]);
    assert!(down.contains("deployment.apps/db deleted"), "{down}");
    assert!(
        p.get(&p.ns_path("/persistentvolumeclaims/data")).is_some(),
        "the claim outlives down"
    );
    let (_, ps) = p.compose(&["ps"]);
    assert_eq!(ps.lines().count(), 1, "no pods after down: {ps}");
    p.ok(&["up", "-d"]);
    web_fetched(&p, "db says first");

    // down -v deletes the claim (and the namespace up made).
    let down = p.ok(&["down", "-v"]);
    assert!(
        down.contains("persistentvolumeclaim/data deleted"),
        "{down}"
    );
    eventually("the namespace gone", Duration::from_secs(60), || {
        p.get(&format!("/api/v1/namespaces/{}", p.name))
            .is_none()
            .then_some(())
    });
    p.ok(&["up", "-d"]);
    web_fetched(&p, "db says second");
}

#[test]
fn refusals_name_the_key_and_nothing_is_made() {
    let _one = serial();
    let c = Cluster::start(Broker::Embedded, 1, &[]);
    let p = Project::new(
        &c,
        "proj",
        "services:\n  web:\n    image: busybox:e2e\n    volumes: ['./site:/www']\n  api:\n    build:\n      context: ./api\n      dockerfile_inline: FROM busybox:e2e\n",
    );
    let (ok, out) = p.compose(&["up", "-d"]);
    assert!(!ok);
    assert!(
        out.contains("services.api.build.dockerfile_inline: not supported: write the Dockerfile into the context"),
        "{out}"
    );
    let (ok, out) = p.compose(&["build"]);
    assert!(
        !ok && out.contains("services.api.build.dockerfile_inline:"),
        "{out}"
    );

    // Without the service to build, the bind mount meets Pod Security.
    std::fs::write(
        p.file(),
        "services:\n  web:\n    image: busybox:e2e\n    volumes: ['./site:/www']\n    ipc: host\n",
    )
    .unwrap();
    let (ok, out) = p.compose(&["up", "-d"]);
    assert!(
        !ok && out.contains("services.web.ipc: not supported"),
        "{out}"
    );
    std::fs::write(
        p.file(),
        "services:\n  web:\n    image: busybox:e2e\n    volumes: ['./site:/www']\n",
    )
    .unwrap();
    let (ok, out) = p.compose(&["up", "-d"]);
    assert!(!ok, "{out}");
    assert!(
        out.contains("services.web:") && out.contains("hostPath"),
        "{out}"
    );
    assert!(
        out.contains("--allowed-host-paths"),
        "says how to allow it: {out}"
    );
    assert!(
        p.get(&format!(
            "/apis/apps/v1/namespaces/{}/deployments/web",
            p.name
        ))
        .is_none(),
        "nothing made"
    );

    // `config` needs no hub and prints the resolved file.
    let (ok, out) = p.compose(&["config"]);
    assert!(ok, "{out}");
    assert!(
        out.contains(&format!("name: {}", p.name)) && out.contains("./site:/www"),
        "{out}"
    );
}

/// A published port answers through the hub's LoadBalancer: `web` on
/// container port 80 published on 8080 of the hub's load-balancer address
/// (a loopback address of this cluster's own).
#[test]
fn a_published_port_answers_through_the_hub() {
    let _one = serial();
    let c = Cluster::start(Broker::Embedded, 1, &[]);
    c.push_busybox("busybox", "e2e");
    let port = 8080;
    let lb = c.hub.lb_address;
    let p = Project::new(
        &c,
        "proj",
        &format!(
            "services:\n  web:\n    image: busybox:e2e\n    command: [sh, -c, 'mkdir -p /www && echo hello from web > /www/index.html && exec httpd -f -p 80 -h /www']\n    ports: ['{port}:80']\n    stop_grace_period: 1s\n"
        ),
    );
    p.ok(&["up", "-d"]);
    let body = eventually(
        "curl through the published port",
        Duration::from_secs(90),
        || {
            curl(&format!("http://{lb}:{port}/")).map_err(|err| {
                let (_, ep) = c.cli(&["get", "endpoints,svc", "-n", &p.name, "-o", "wide"]);
                format!("{err}\n{ep}")
            })
        },
    );
    assert_eq!(body.trim(), "hello from web");
    // The Service's status names the hub's address once the hub serves it.
    let want = format!("{lb}:{port}->80/tcp");
    eventually(
        "ps shows the published address",
        Duration::from_secs(30),
        || {
            let ps = p.ok(&["ps"]);
            if ps
                .lines()
                .any(|l| l.starts_with("web-") && l.ends_with(&want))
            {
                Ok(())
            } else {
                let (_, svc) = c.cli(&["get", "svc", "web-published", "-n", &p.name, "-o", "yaml"]);
                Err(format!("{ps}\n{svc}"))
            }
        },
    );
}

/// `migrate` runs once as a Job and `app` starts only after it succeeded,
/// with a file-based secret and an inline config mounted as files;
/// a second `up` of the same file changes nothing and waits on the
/// finished Job without running it again.
#[test]
fn a_one_shot_dependency_completes_before_its_dependent_starts() {
    let _one = serial();
    let c = Cluster::start(Broker::Embedded, 1, &[]);
    c.push_busybox("busybox", "e2e");
    let p = Project::new(
        &c,
        "proj",
        r#"
services:
  migrate:
    image: busybox:e2e
    command: [sh, -c, 'sleep 2; echo migrated > /data/schema']
    volumes: [data:/data]
  app:
    image: busybox:e2e
    command: [sh, -c, 'echo "$$(cat /data/schema) $$(cat /run/secrets/pw) $$(cat /etc/greeting)"; while true; do sleep 1; done']
    volumes: [data:/data]
    secrets: [pw]
    configs:
      - source: greeting
        target: /etc/greeting
    depends_on:
      migrate:
        condition: service_completed_successfully
    stop_grace_period: 1s
volumes:
  data:
secrets:
  pw:
    file: ./pw.txt
configs:
  greeting:
    content: hello
"#,
    );
    p.write("pw.txt", "s3cret");
    let up = p.ok(&["up", "-d"]);
    assert!(up.contains("job.batch/migrate created"), "{up}");
    assert!(
        up.contains("secret/pw created") && up.contains("configmap/greeting created"),
        "{up}"
    );
    let wait_at = up
        .find("waiting for migrate to be completed successfully")
        .expect(&up);
    assert!(
        wait_at < up.find("deployment.apps/app created").expect(&up),
        "{up}"
    );
    let job = p
        .get(&format!(
            "/apis/batch/v1/namespaces/{}/jobs/migrate",
            p.name
        ))
        .expect("the job");
    let app = p
        .get(&format!(
            "/apis/apps/v1/namespaces/{}/deployments/app",
            p.name
        ))
        .expect("app");
    assert!(
        time(&app["metadata"]["creationTimestamp"]) >= time(&job["status"]["completionTime"]),
        "app made before migrate completed: {job}"
    );
    eventually("app read the schema", Duration::from_secs(60), || {
        let (ok, out) = p.compose(&["logs", "app"]);
        if ok
            && out
                .lines()
                .any(|l| l.starts_with("app-") && l.ends_with("| migrated s3cret hello"))
        {
            Ok(())
        } else {
            Err(out)
        }
    });
    let ps = p.ok(&["ps"]);
    assert!(
        ps.lines()
            .any(|l| l.starts_with("migrate-") && l.contains("Exited (0)")),
        "{ps}"
    );

    let again = p.ok(&["up", "-d"]);
    assert!(again.contains("job.batch/migrate unchanged"), "{again}");
    assert!(again.contains("deployment.apps/app unchanged"), "{again}");
    let job_again = p
        .get(&format!(
            "/apis/batch/v1/namespaces/{}/jobs/migrate",
            p.name
        ))
        .expect("the job");
    assert_eq!(job_again["metadata"]["uid"], job["metadata"]["uid"]);
    assert_eq!(job_again["status"]["succeeded"], 1);

    // A changed one-shot service runs again: its Job is made anew.
    let changed = std::fs::read_to_string(p.file())
        .unwrap()
        .replace("echo migrated", "echo migrated again");
    std::fs::write(p.file(), changed).unwrap();
    let third = p.ok(&["up", "-d"]);
    assert!(third.contains("job.batch/migrate recreated"), "{third}");
    let job_new = p
        .get(&format!(
            "/apis/batch/v1/namespaces/{}/jobs/migrate",
            p.name
        ))
        .expect("the job");
    assert_ne!(job_new["metadata"]["uid"], job["metadata"]["uid"]);
    assert_eq!(job_new["status"]["succeeded"], 1, "up waited for it again");

    // stop: app's pods go; the finished Job's pod stays, as docker keeps
    // an exited container. A Job is not restarted; start runs app again.
    let out = p.ok(&["stop"]);
    assert!(
        out.contains("app stopped") && out.contains("migrate stopped"),
        "{out}"
    );
    assert!(p.pods("app").is_empty(), "app stopped");
    assert!(
        p.pods("migrate")
            .iter()
            .any(|p| p["status"]["phase"] == "Succeeded"),
        "the finished pod stays"
    );
    let (ok, out) = p.compose(&["restart", "migrate"]);
    assert!(!ok && out.contains("migrate runs once, as a Job"), "{out}");
    let out = p.ok(&["start"]);
    assert!(out.contains("app ready"), "{out}");
    assert!(p.pods("app").iter().any(is_ready), "app started");
    let job_after = p
        .get(&format!(
            "/apis/batch/v1/namespaces/{}/jobs/migrate",
            p.name
        ))
        .expect("the job");
    assert_eq!(job_after["metadata"]["uid"], job_new["metadata"]["uid"]);
    assert_eq!(job_after["status"]["succeeded"], 1, "not run again");
}

/// `worker` (with a published port, a config and a named volume) leaves
/// the file: `up` warns and changes nothing; `up --remove-orphans`
/// deletes its Deployment, both Services and the config, and keeps the
/// claim; `up --wait` returns with every service Ready.
#[test]
fn orphans_are_warned_about_then_removed_and_their_volume_stays() {
    let _one = serial();
    let c = Cluster::start(Broker::Embedded, 1, &[]);
    c.push_busybox("busybox", "e2e");
    let web = "  web:\n    image: busybox:e2e\n    command: [sh, -c, 'while true; do sleep 1; done']\n    stop_grace_period: 1s\n";
    let p = Project::new(
        &c,
        "orphans",
        &format!(
            "services:\n{web}  worker:\n    image: busybox:e2e\n    command: [sh, -c, 'mkdir -p /www && exec httpd -f -p 80 -h /www']\n    ports: ['8081:80']\n    volumes: [data:/data]\n    configs: [conf]\n    stop_grace_period: 1s\nvolumes:\n  data:\nconfigs:\n  conf:\n    content: hello\n"
        ),
    );
    let up = p.ok(&["up", "-d", "--wait"]);
    assert!(
        up.contains("web ready") && up.contains("worker ready"),
        "{up}"
    );
    for s in ["web", "worker"] {
        let pods = p.pods(s);
        assert!(
            !pods.is_empty() && pods.iter().all(is_ready),
            "{s} Ready when up --wait returns: {pods:?}"
        );
    }
    let worker_objects = [
        p.apps_path("/deployments/worker"),
        p.ns_path("/services/worker"),
        p.ns_path("/services/worker-published"),
        p.ns_path("/configmaps/conf"),
    ];
    for o in &worker_objects {
        assert!(p.get(o).is_some(), "{o} made");
    }

    std::fs::write(p.file(), format!("services:\n{web}volumes:\n  data:\n")).unwrap();
    let (ok, out) = p.compose(&["up", "-d"]);
    assert!(ok, "{out}");
    assert!(
        out.contains("Found orphan services ([worker]) for this project. If you removed or renamed this service in your compose file, you can run this command with the --remove-orphans flag to clean it up."),
        "{out}"
    );
    assert!(out.contains("([configmap/conf])"), "{out}");
    for o in &worker_objects {
        assert!(p.get(o).is_some(), "{o} kept without --remove-orphans");
    }

    let out = p.ok(&["up", "-d", "--remove-orphans"]);
    assert!(out.contains("deployment.apps/worker deleted"), "{out}");
    assert!(!out.contains("Found orphan"), "{out}");
    for o in &worker_objects {
        assert!(p.get(o).is_none(), "{o} deleted by --remove-orphans");
    }
    assert!(p.pods("worker").is_empty(), "worker's pods are gone");
    assert!(
        p.get(&p.ns_path("/persistentvolumeclaims/data")).is_some(),
        "the named volume stays"
    );
    assert!(p.get(&p.apps_path("/deployments/web")).is_some());
    let again = p.ok(&["up", "-d"]);
    assert!(!again.contains("Found orphan"), "{again}");
}

/// `web` has two replicas, `other` one: `exec` runs in them with the
/// command's output and exit code; `stop web` leaves no pod of web and
/// `other` alone; `start` brings both replicas back; `restart` replaces
/// them; `run` makes one-off pods that `down` deletes; `up --wait` fails
/// on a service whose healthcheck never passes, naming it and why.
#[test]
fn stop_start_restart_and_exec_act_on_a_services_pods() {
    let _one = serial();
    let c = Cluster::start(Broker::Embedded, 1, &[]);
    c.push_busybox("busybox", "e2e");
    let app = "services:\n  web:\n    image: busybox:e2e\n    command: [sh, -c, 'while true; do sleep 1; done']\n    deploy:\n      replicas: 2\n    stop_grace_period: 1s\n  other:\n    image: busybox:e2e\n    command: [sh, -c, 'while true; do sleep 1; done']\n    stop_grace_period: 1s\n";
    let p = Project::new(&c, "lifecycle", app);
    p.ok(&["up", "-d", "--wait"]);
    let web = p.pods("web");
    assert_eq!(web.len(), 2, "{web:?}");
    assert!(web.iter().all(is_ready), "{web:?}");
    let other = uids(&p.pods("other"));

    // exec: output on its streams, the exit code ours; with and without `--`.
    let (code, out, err) =
        p.compose_status(&["exec", "web", "sh", "-c", "echo out; echo err >&2; exit 3"]);
    assert_eq!((code, out.as_str(), err.as_str()), (3, "out\n", "err\n"));
    let (code, out, err) = p.compose_status(&["exec", "-T", "web", "--", "echo", "-n", "hi"]);
    assert_eq!((code, out.as_str(), err.as_str()), (0, "hi", ""));
    // --index N: the Nth replica, oldest first.
    let mut order: Vec<(String, String)> = web
        .iter()
        .map(|p| {
            (
                p["metadata"]["creationTimestamp"]
                    .as_str()
                    .unwrap()
                    .to_string(),
                p["metadata"]["name"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    order.sort();
    let (code, out, _) = p.compose_status(&["exec", "--index", "2", "web", "hostname"]);
    assert_eq!((code, out.trim()), (0, order[1].1.as_str()));
    let (code, _, err) = p.compose_status(&["exec", "--index", "3", "web", "true"]);
    assert!(code != 0 && err.contains("2 running replica(s)"), "{err}");

    let out = p.ok(&["stop", "web"]);
    assert!(out.contains("web stopped"), "{out}");
    assert!(p.pods("web").is_empty(), "no pod of web after stop");
    let d = p.get(&p.apps_path("/deployments/web")).expect("web");
    assert_eq!(d["spec"]["replicas"], 0);
    assert_eq!(uids(&p.pods("other")), other, "other left alone");
    let (code, _, err) = p.compose_status(&["exec", "web", "true"]);
    assert!(
        code != 0 && err.contains("service web is not running"),
        "{err}"
    );

    let out = p.ok(&["start"]);
    assert!(
        out.contains("web started") && out.contains("web ready"),
        "{out}"
    );
    let started = p.pods("web");
    assert_eq!(started.len(), 2, "the two replicas are back: {started:?}");
    assert!(started.iter().all(is_ready), "{started:?}");
    assert_eq!(
        uids(&p.pods("other")),
        other,
        "other was running: left alone"
    );

    let before = uids(&started);
    let out = p.ok(&["restart", "web"]);
    assert!(out.contains("web restarted"), "{out}");
    let restarted = p.pods("web");
    assert_eq!(restarted.len(), 2, "{restarted:?}");
    assert!(restarted.iter().all(is_ready), "{restarted:?}");
    assert!(
        uids(&restarted).iter().all(|u| !before.contains(u)),
        "new pods: {before:?} -> {:?}",
        uids(&restarted)
    );
    assert_eq!(uids(&p.pods("other")), other);

    // run: a one-off pod with the command, its output and exit code;
    // --rm deletes it; without, it stays (not one of web's pods) until down.
    let (code, out, _) =
        p.compose_status(&["run", "--rm", "web", "sh", "-c", "echo one-off; exit 2"]);
    assert_eq!((code, out.as_str()), (2, "one-off\n"));
    let one_offs = p.ns_path("/pods?labelSelector=com.docker.compose.oneoff%3DTrue");
    assert_eq!(
        p.get(&one_offs).expect("pods")["items"],
        serde_json::json!([])
    );
    let (code, out, err) = p.compose_status(&["run", "-T", "web", "--", "hostname"]);
    assert_eq!(code, 0, "{err}");
    let one_off = out.trim().to_string();
    assert!(one_off.starts_with("web-run-"), "{out}");
    assert_eq!(
        p.get(&one_offs).expect("pods")["items"][0]["metadata"]["name"],
        one_off.as_str()
    );
    assert_eq!(uids(&p.pods("web")), uids(&restarted), "not one of web's");
    // The flags: environment (given, and passed from this shell), the
    // entrypoint replaced (shell-split), working directory, name, label.
    let (code, out, err) = p.compose_status(&[
        "run",
        "--rm",
        "-e",
        "GREETING=hello there",
        "-e",
        "PATH",
        "--entrypoint",
        "sh -c 'echo \"$GREETING from $(pwd)\"; [ -n \"$PATH\" ]'",
        "-w",
        "/tmp",
        "web",
    ]);
    assert_eq!(
        (code, out.as_str()),
        (0, "hello there from /tmp\n"),
        "{err}"
    );
    let (code, out, err) = p.compose_status(&[
        "run",
        "-d",
        "--name",
        "named-one",
        "-l",
        "purpose=check",
        "web",
        "sleep",
        "600",
    ]);
    assert_eq!(
        (code, out.as_str()),
        (0, "named-one\n"),
        "-d prints the name: {err}"
    );
    let named = p.get(&p.ns_path("/pods/named-one")).expect("the named pod");
    assert_eq!(named["metadata"]["labels"]["purpose"], "check", "{named}");
    assert_eq!(
        named["spec"]["containers"][0]["args"],
        serde_json::json!(["sleep", "600"])
    );

    let (ok, out) = p.compose(&["stop", "nosuch"]);
    assert!(!ok && out.contains("no such service: nosuch"), "{out}");

    // A healthcheck that never passes: `up --wait` names the service and why.
    std::fs::write(
        p.file(),
        format!("{app}  sick:\n    image: busybox:e2e\n    command: [sh, -c, 'while true; do sleep 1; done']\n    healthcheck:\n      test: [CMD, 'false']\n      interval: 1s\n    stop_grace_period: 1s\n"),
    )
    .unwrap();
    p.ok(&["up", "-d"]);
    eventually("sick running", Duration::from_secs(90), || {
        let pods = p.pods("sick");
        pods.iter()
            .any(|p| p["status"]["containerStatuses"][0]["state"]["running"].is_object())
            .then_some(())
            .ok_or(format!("{pods:?}"))
    });
    let (ok, out) = p.compose(&["up", "-d", "--wait", "--wait-timeout", "1s"]);
    assert!(!ok, "{out}");
    assert!(
        out.contains("sick: 0 of 1 pods Ready; pod sick-")
            && out.contains("its healthcheck has not passed"),
        "{out}"
    );

    let down = p.ok(&["down"]);
    assert!(down.contains(&format!("pod/{one_off} deleted")), "{down}");
    assert!(down.contains("pod/named-one deleted"), "{down}");
    assert!(p.get(&p.ns_path("/pods")).expect("pods")["items"] == serde_json::json!([]));
}

/// `deploy.mode: global`: a DaemonSet, one pod on every node (two agents
/// here); `up --wait` waits for each; `stop` empties it and `start` brings
/// one back on each node; switching the service to `replicated` replaces
/// the DaemonSet with a Deployment; `down` deletes it.
#[test]
fn a_global_service_runs_one_pod_on_every_node() {
    let _one = serial();
    let c = Cluster::start(Broker::Embedded, 2, &[]);
    c.push_busybox("busybox", "e2e");
    let service = "services:\n  exporter:\n    image: busybox:e2e\n    command: [sh, -c, 'while true; do sleep 1; done']\n    stop_grace_period: 1s\n";
    let p = Project::new(
        &c,
        "global",
        &format!("{service}    deploy:\n      mode: global\n"),
    );
    let up = p.ok(&["up", "-d", "--wait"]);
    assert!(up.contains("daemonset.apps/exporter created"), "{up}");
    assert!(up.contains("exporter ready"), "{up}");
    let nodes = |pods: &[Value]| {
        let mut n: Vec<String> = pods
            .iter()
            .map(|p| p["spec"]["nodeName"].as_str().unwrap_or("").to_string())
            .collect();
        n.sort();
        n
    };
    let mut all: Vec<String> = c.agents.iter().map(|a| a.name.clone()).collect();
    all.sort();
    let pods = p.pods("exporter");
    assert!(pods.iter().all(is_ready), "{pods:?}");
    assert_eq!(nodes(&pods), all, "one pod on each node");
    let ps = p.ok(&["ps"]);
    assert_eq!(
        ps.lines().filter(|l| l.contains(" exporter ")).count(),
        2,
        "{ps}"
    );

    let out = p.ok(&["stop"]);
    assert!(out.contains("exporter stopped"), "{out}");
    assert!(p.pods("exporter").is_empty(), "no pod after stop");
    let out = p.ok(&["start"]);
    assert!(out.contains("exporter ready"), "{out}");
    let back = p.pods("exporter");
    assert!(back.iter().all(is_ready), "{back:?}");
    assert_eq!(nodes(&back), all, "one pod on each node again");
    // `up` starts a stopped global service, as docker starts a container.
    p.ok(&["stop"]);
    let up = p.ok(&["up", "-d", "--wait"]);
    assert!(up.contains("daemonset.apps/exporter configured"), "{up}");
    assert_eq!(nodes(&p.pods("exporter")), all);

    std::fs::write(p.file(), service).unwrap();
    let up = p.ok(&["up", "-d", "--wait"]);
    assert!(up.contains("daemonset.apps/exporter deleted"), "{up}");
    assert!(up.contains("deployment.apps/exporter created"), "{up}");
    let one = eventually("one replica left", Duration::from_secs(60), || {
        let pods = p.pods("exporter");
        if pods.len() == 1 {
            Ok(pods)
        } else {
            Err(format!("{pods:?}"))
        }
    });
    assert!(is_ready(&one[0]), "{one:?}");

    std::fs::write(
        p.file(),
        format!("{service}    deploy:\n      mode: global\n"),
    )
    .unwrap();
    p.ok(&["up", "-d", "--wait"]);
    let down = p.ok(&["down"]);
    assert!(down.contains("daemonset.apps/exporter deleted"), "{down}");
    assert!(p.pods("exporter").is_empty());
}
