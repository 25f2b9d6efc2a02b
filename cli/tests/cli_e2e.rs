//! End-to-end: the real `bramble` binary against an in-process hub.
//!
//! Each test starts its own hub (temporary data dir, 127.0.0.1 port 0) and
//! runs the binary with a scrubbed environment and a temporary HOME
//! (`support::Env`, shared with `build_upload.rs`).
//!
//! Length: over 600 lines because one suite (the CLI against a real hub);
//! each test a command's flow.

use std::io::{BufRead, BufReader};
use std::process::{Output, Stdio};
use std::sync::mpsc;
use std::time::Duration;

mod support;

use support::Env;

impl Env {
    fn run(&self, args: &[&str]) -> Run {
        Run::from(self.cmd(args).output().unwrap())
    }

    fn dir(&self, rel: &str) -> String {
        self.work.path().join(rel).display().to_string()
    }
}

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

impl From<Output> for Run {
    fn from(o: Output) -> Self {
        Run {
            code: o.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
        }
    }
}

impl Run {
    #[track_caller]
    fn ok(self) -> Self {
        assert_eq!(
            self.code, 0,
            "stdout:\n{}\nstderr:\n{}",
            self.stdout, self.stderr
        );
        self
    }
    #[track_caller]
    fn fails(self) -> Self {
        assert_eq!(
            self.code, 1,
            "stdout:\n{}\nstderr:\n{}",
            self.stdout, self.stderr
        );
        self
    }
}

const CONFIG: &str = "\
apiVersion: v1
kind: ConfigMap
metadata:
  name: app-config
  namespace: shop
  labels:
    app: web
data:
  greeting: hello
  color: blue
";

const EXTRA: &str = "\
apiVersion: v1
kind: ConfigMap
metadata:
  name: extra
  namespace: shop
data:
  a: \"1\"
";

/// Sorted before the namespace file, so apply must reorder to succeed.
fn write_app(env: &Env) -> String {
    env.write("app/a-config.yaml", &format!("{CONFIG}---\n{EXTRA}"));
    env.write(
        "app/z-namespace.yaml",
        "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: shop\n",
    );
    env.write("app/README.md", "not a manifest");
    env.dir("app")
}

#[test]
fn apply_get_describe_delete_round_trip() {
    let env = Env::start();
    let dir = write_app(&env);

    let r = env.run(&["apply", "-f", &dir]).ok();
    assert_eq!(
        r.stdout,
        "namespace/shop created\nconfigmap/app-config created\nconfigmap/extra created\n"
    );

    let r = env.run(&["apply", "-f", &dir]).ok();
    assert_eq!(
        r.stdout,
        "namespace/shop unchanged\nconfigmap/app-config unchanged\nconfigmap/extra unchanged\n"
    );

    env.write(
        "app/a-config.yaml",
        &format!("{}---\n{EXTRA}", CONFIG.replace("blue", "green")),
    );
    let r = env.run(&["apply", "-f", &dir]).ok();
    assert_eq!(
        r.stdout,
        "namespace/shop unchanged\nconfigmap/app-config configured\nconfigmap/extra unchanged\n"
    );

    // Tables.
    let r = env.run(&["get", "cm", "-n", "shop"]).ok();
    let lines: Vec<&str> = r.stdout.lines().collect();
    assert_eq!(lines.len(), 3, "{}", r.stdout);
    assert!(
        lines[0].starts_with("NAME         DATA   AGE"),
        "{}",
        r.stdout
    );
    assert!(lines[1].starts_with("app-config   2      "), "{}", r.stdout);
    assert!(lines[2].starts_with("extra        1      "), "{}", r.stdout);

    let r = env
        .run(&[
            "get",
            "configmaps",
            "-l",
            "app=web",
            "-n",
            "shop",
            "-o",
            "name",
        ])
        .ok();
    assert_eq!(r.stdout, "configmap/app-config\n");

    let r = env.run(&["get", "cm", "-A", "--no-headers"]).ok();
    assert!(
        r.stdout
            .lines()
            .any(|l| l.starts_with("shop        app-config")),
        "{}",
        r.stdout
    );

    let r = env.run(&["get", "ns"]).ok();
    assert!(r.stdout.starts_with("NAME"), "{}", r.stdout);
    assert!(
        r.stdout
            .lines()
            .any(|l| l.starts_with("shop") && l.contains("Active")),
        "{}",
        r.stdout
    );

    let r = env.run(&["get", "cm", "-n", "default"]).ok();
    assert_eq!(r.stdout, "");
    assert_eq!(r.stderr, "No resources found in default namespace.\n");

    // Documents.
    let r = env
        .run(&["get", "cm", "app-config", "-n", "shop", "-o", "yaml"])
        .ok();
    let v: serde_json::Value = serde_yaml_ng::from_str(&r.stdout).unwrap();
    assert_eq!(v["kind"], "ConfigMap");
    assert_eq!(v["data"]["color"], "green");
    assert!(v["metadata"]["resourceVersion"].is_string(), "{}", r.stdout);

    let r = env.run(&["get", "cm", "-n", "shop", "-o", "json"]).ok();
    let v: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(v["kind"], "List");
    assert_eq!(v["items"].as_array().unwrap().len(), 2);

    let r = env
        .run(&["describe", "configmap", "app-config", "-n", "shop"])
        .ok();
    assert!(
        r.stdout.starts_with("Name:               app-config\nNamespace:          shop\nLabels:             app=web\n"),
        "{}",
        r.stdout
    );
    assert!(r.stdout.contains("color:\n----\ngreen\n"), "{}", r.stdout);

    // Unknown kinds and missing objects.
    let r = env.run(&["get", "widgets"]).fails();
    assert_eq!(
        r.stderr,
        "error: the server doesn't have a resource type \"widgets\"\n"
    );
    let r = env.run(&["get", "cm", "nope", "-n", "shop"]).fails();
    assert_eq!(
        r.stderr,
        "Error from server (NotFound): configmaps \"nope\" not found\n"
    );

    // Delete by file (extra), then by name, then the namespace via its file.
    let extra = env.write("extra.yaml", EXTRA);
    let r = env
        .run(&["delete", "-f", &extra.display().to_string()])
        .ok();
    assert_eq!(r.stdout, "configmap \"extra\" deleted\n");
    let r = env.run(&["delete", "cm", "app-config", "-n", "shop"]).ok();
    assert_eq!(r.stdout, "configmap \"app-config\" deleted\n");
    let r = env
        .run(&["delete", "cm", "app-config", "-n", "shop"])
        .fails();
    assert!(r.stderr.contains("NotFound"), "{}", r.stderr);
    assert!(r.stderr.contains("app-config"), "{}", r.stderr);
    env.run(&[
        "delete",
        "cm",
        "app-config",
        "-n",
        "shop",
        "--ignore-not-found",
    ])
    .ok();
    let r = env.run(&["get", "cm", "-n", "shop"]).ok();
    assert_eq!(r.stderr, "No resources found in shop namespace.\n");
}

#[test]
fn bad_yaml_aborts_before_anything_is_sent() {
    let env = Env::start();
    env.write(
        "bad/a-good.yaml",
        EXTRA.replace("namespace: shop\n", "").as_str(),
    );
    let bad = env.write(
        "bad/b-broken.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: [oops\ndata: {}\n",
    );
    let r = env.run(&["apply", "-f", &env.dir("bad")]).fails();
    assert_eq!(r.stdout, "");
    let first = r.stderr.lines().next().unwrap();
    assert!(
        first.starts_with(&format!("error: {}: line ", bad.display())),
        "{}",
        r.stderr
    );
    assert!(first.contains("column"), "{}", r.stderr);

    // The good file in the same directory was not applied.
    let r = env.run(&["get", "cm", "extra"]).fails();
    assert!(r.stderr.contains("NotFound"), "{}", r.stderr);
}

#[test]
fn invalid_objects_report_the_field_and_the_rest_still_applies() {
    let env = Env::start();
    let file = env.write(
        "mixed.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: typo\n  labelz: {a: b}\ndata: {}\n---\n\
         apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: fine\n",
    );
    let path = file.display().to_string();
    let r = env.run(&["apply", "-f", &path]).fails();
    assert_eq!(r.stdout, "configmap/fine created\n");
    // bramble asks for strict field validation: a misspelt field is an error
    // in Kubernetes' words, never dropped.
    assert!(
        r.stderr.starts_with(&format!(
            "Error from server (BadRequest): error when applying \"{path}\": ConfigMap in version \"v1\" \
             cannot be handled as a ConfigMap: strict decoding error: unknown field \"metadata.labelz\""
        )),
        "{}",
        r.stderr
    );

    // Unknown kinds are refused before anything is sent, naming file and document.
    let widget = env.write(
        "widget.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: w1}\n---\napiVersion: v1\nkind: Widget\nmetadata: {name: w}\n",
    );
    let r = env
        .run(&["apply", "-f", &widget.display().to_string()])
        .fails();
    assert!(
        r.stderr.contains("widget.yaml: document 2 (Widget \"w\")"),
        "{}",
        r.stderr
    );
    env.run(&["get", "cm", "w1"]).fails();
}

#[test]
fn tokens_and_unreachable_hubs_get_helpful_errors() {
    let env = Env::start();
    let r = env.run(&["get", "pods", "--token", "wrong"]).fails();
    assert!(
        r.stderr.starts_with("Error from server (Unauthorized): "),
        "{}",
        r.stderr
    );
    assert!(
        r.stderr.contains("rejected the token from --token"),
        "{}",
        r.stderr
    );

    // No CA anywhere (the data dir is elsewhere): the hub cannot be
    // trusted, and the message says where to get its CA.
    let empty = tempfile::tempdir().unwrap();
    let r = Run::from(
        env.cmd(&["get", "pods"])
            .env("BRAMBLE_DATA_DIR", empty.path())
            .output()
            .unwrap(),
    )
    .fails();
    assert!(
        r.stderr
            .starts_with("error: cannot trust the hub at https://"),
        "{}",
        r.stderr
    );
    assert!(r.stderr.contains("--certificate-authority"), "{}", r.stderr);
    // Another CA than the hub's: refused, naming where the CA came from.
    let other = tempfile::tempdir().unwrap();
    bramble_hub::tls::ClusterCa::load_or_create(other.path()).unwrap();
    let other_ca = other.path().join("ca.crt");
    let r = Run::from(
        env.cmd(&["get", "pods"])
            .env("BRAMBLE_DATA_DIR", empty.path())
            .env("BRAMBLE_CA_FILE", &other_ca)
            .output()
            .unwrap(),
    )
    .fails();
    assert!(
        r.stderr
            .contains("not signed by the CA from --certificate-authority"),
        "{}",
        r.stderr
    );
    let ca = env.hub().data_dir().join("ca.crt");

    // No token anywhere: the data dir is elsewhere.
    let r = Run::from(
        env.cmd(&["get", "pods"])
            .env("BRAMBLE_DATA_DIR", empty.path())
            .env("BRAMBLE_CA_FILE", &ca)
            .output()
            .unwrap(),
    )
    .fails();
    assert!(
        r.stderr
            .contains("no token was sent: pass --token, set BRAMBLE_TOKEN"),
        "{}",
        r.stderr
    );

    // The right token from the environment and from the config file.
    let r = Run::from(
        env.cmd(&["get", "cm"])
            .env("BRAMBLE_DATA_DIR", empty.path())
            .env("BRAMBLE_CA_FILE", &ca)
            .env("BRAMBLE_TOKEN", env.hub().token())
            .output()
            .unwrap(),
    );
    let r = r.ok();
    assert!(r.stderr.contains("No resources found"), "{}", r.stderr);
    let cfg = env.home.path().join(".config/bramble/config");
    std::fs::create_dir_all(cfg.parent().unwrap()).unwrap();
    std::fs::write(
        &cfg,
        format!(
            "token: {}\nnamespace: kube-system\nca: |\n{}",
            env.hub().token(),
            std::fs::read_to_string(&ca)
                .unwrap()
                .lines()
                .map(|l| format!("  {l}\n"))
                .collect::<String>()
        ),
    )
    .unwrap();
    let r = Run::from(
        env.cmd(&["get", "cm"])
            .env("BRAMBLE_DATA_DIR", empty.path())
            .output()
            .unwrap(),
    )
    .ok();
    assert_eq!(r.stderr, "No resources found in kube-system namespace.\n");

    // Nothing listening.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("http://127.0.0.1:{port}");
    let r = env.run(&["get", "pods", "--hub", &url]).fails();
    assert_eq!(
        r.stderr,
        format!(
            "error: cannot reach the hub at {url}: connection refused — is bramble-hub running? (set --hub or BRAMBLE_HUB)\n"
        )
    );
}

#[test]
fn watch_prints_rows_as_objects_change() {
    let env = Env::start();
    let file = env.write(
        "one.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: one\ndata: {a: \"1\"}\n",
    );
    env.run(&["apply", "-f", &file.display().to_string()]).ok();

    let mut child = env
        .cmd(&["get", "cm", "-w"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            if tx.send(line.unwrap()).is_err() {
                break;
            }
        }
    });
    let next = || {
        rx.recv_timeout(Duration::from_secs(20))
            .expect("a watch line in time")
    };
    assert!(next().starts_with("NAME"));
    let cells = |l: String| {
        l.split_whitespace()
            .take(2)
            .map(str::to_string)
            .collect::<Vec<_>>()
    };
    assert_eq!(cells(next()), ["one", "1"]);

    let two = env.write(
        "two.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: two\n",
    );
    env.run(&["apply", "-f", &two.display().to_string()]).ok();
    assert_eq!(cells(next()), ["two", "0"]);

    env.run(&["delete", "cm", "one"]).ok();
    assert_eq!(cells(next()), ["one", "1"], "the deletion shows as a row");

    child.kill().unwrap();
    child.wait().unwrap();
}

#[test]
fn join_tokens_and_node_keys_from_the_command_line() {
    let env = Env::start();
    let identity = env.hub().hub().identity().clone();
    let fingerprint = identity.hub_keys().public().fingerprint().to_string();
    // A limited bootstrap token naming the hub's key, shown once.
    let r = env
        .run(&[
            "token",
            "create",
            "--ttl",
            "1h",
            "--uses",
            "2",
            "--description",
            "shop",
        ])
        .ok();
    let token = r.stdout.trim().to_string();
    assert!(token.starts_with(&format!("K10{fingerprint}::")), "{token}");
    let id = token
        .rsplit_once("::")
        .unwrap()
        .1
        .split('.')
        .next()
        .unwrap();
    assert!(identity.tokens().admitting(id).is_ok());
    let ls = env.run(&["token", "ls"]).ok().stdout;
    let row = ls.lines().find(|l| l.starts_with(id)).expect("listed");
    assert!(
        row.contains("in 59m") && row.contains(" 2 ") && row.contains("shop"),
        "{ls}"
    );
    assert!(
        !ls.contains(token.rsplit_once('.').unwrap().1),
        "a secret in the list: {ls}"
    );
    assert!(ls.contains("unlimited"), "the cluster token: {ls}");
    // Bad limits are refused with the reason.
    let e = env.run(&["token", "create", "--uses", "0"]).fails().stderr;
    assert!(e.contains("must be at least 1"), "{e}");
    // Deleted: refused from now on.
    env.run(&["token", "rm", id]).ok();
    assert!(identity.tokens().admitting(id).is_err());
    let e = env.run(&["token", "rm", id]).fails().stderr;
    assert!(e.contains("not found"), "{e}");
    // The cluster token: rotated, the file follows, the old one is refused.
    let file = env.hub().data_dir().join("node-token");
    let old = std::fs::read_to_string(&file).unwrap().trim().to_string();
    let old_id = old
        .rsplit_once("::")
        .unwrap()
        .1
        .split('.')
        .next()
        .unwrap()
        .to_string();
    let e = env.run(&["token", "rm", &old_id]).fails().stderr;
    assert!(e.contains("rotate-token"), "{e}");
    let new = env
        .run(&["nodes", "rotate-token"])
        .ok()
        .stdout
        .trim()
        .to_string();
    assert_ne!(new, old);
    assert_eq!(std::fs::read_to_string(&file).unwrap().trim(), new);
    assert!(identity.tokens().admitting(&old_id).is_err());
    // Node keys: none yet; approving an unknown board says so.
    let keys = env.run(&["nodes", "keys"]).ok().stdout;
    assert_eq!(keys.lines().count(), 1, "{keys}");
    let e = env.run(&["nodes", "approve", "pi-9"]).fails().stderr;
    assert!(
        e.contains("no board has asked to join as node \"pi-9\""),
        "{e}"
    );
}

/// Whether the bytes of `path` (the hub's live redb file, as a copy of it
/// would hold them) contain `needle`.
fn file_holds(path: &std::path::Path, needle: &str) -> bool {
    std::fs::read(path)
        .unwrap()
        .windows(needle.len())
        .any(|w| w == needle.as_bytes())
}

#[test]
fn secrets_and_join_tokens_are_sealed_at_rest_and_rotate_key_seals_them_again() {
    use base64::Engine;
    let env = Env::start();
    let db = env.hub().data_dir().join("state.redb");
    let plain = "sealed-at-rest-marker-7c1e";
    let encoded = base64::engine::general_purpose::STANDARD.encode(plain);
    let file = env.write(
        "secret.yaml",
        &format!(
            "apiVersion: v1\nkind: Secret\nmetadata:\n  name: db\nstringData:\n  password: {plain}\n"
        ),
    );
    env.run(&["apply", "-f", &file.display().to_string()]).ok();
    let token = env.run(&["token", "create"]).ok().stdout;
    let token_secret = token.trim().rsplit('.').next().unwrap().to_string();
    assert_eq!(token_secret.len(), 32, "{token}");

    let leaks = |when: &str| {
        for (what, needle) in [
            ("the Secret value", plain),
            ("the Secret value in base64", encoded.as_str()),
            ("the join token's secret", token_secret.as_str()),
        ] {
            assert!(!file_holds(&db, needle), "{when}: state.redb holds {what}");
        }
    };
    leaks("after create");

    let status = env.run(&["secrets", "status"]).ok().stdout;
    assert!(status.contains("Encryption: enabled"), "{status}");
    let key_of = |status: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix("Active key: "))
            .unwrap()
            .to_string()
    };
    let before = key_of(&status);
    let key_file = std::fs::read_to_string(env.hub().data_dir().join("secrets.key")).unwrap();
    assert!(key_file.contains(&format!("active {before}")), "{key_file}");

    let out = env.run(&["secrets", "rotate-key"]).ok().stdout;
    assert!(out.contains("old key(s) removed"), "{out}");
    let status = env.run(&["secrets", "status"]).ok().stdout;
    let after = key_of(&status);
    assert_ne!(after, before);
    assert!(status.contains("Keys in file: 1"), "{status}");
    let key_file = std::fs::read_to_string(env.hub().data_dir().join("secrets.key")).unwrap();
    assert!(!key_file.contains(&before), "{key_file}");
    leaks("after rotation");

    // Still readable through the API, and the token still admits a join.
    let got = env.run(&["get", "secret", "db", "-o", "json"]).ok().stdout;
    let got: serde_json::Value = serde_json::from_str(&got).unwrap();
    assert_eq!(got["data"]["password"], encoded.as_str());
    let tokens = env.run(&["token", "ls"]).ok().stdout;
    let id = token
        .trim()
        .rsplit("::")
        .next()
        .unwrap()
        .split('.')
        .next()
        .unwrap();
    assert!(tokens.contains(id), "{tokens}");
}

#[test]
fn the_hubs_warnings_are_printed_as_kubectl_prints_them() {
    let env = Env::start();
    let file = env.write(
        "warned.yaml",
        "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: warned\n  labels:\n    pod-security.kubernetes.io/warn: restricted\n---\n\
         apiVersion: v1\nkind: Pod\nmetadata:\n  name: plain\n  namespace: warned\nspec:\n  containers:\n  - name: app\n    image: busybox\n",
    );
    let r = env.run(&["apply", "-f", &file.display().to_string()]).ok();
    assert!(
        r.stderr
            .contains("Warning: would violate PodSecurity \"restricted:latest\": "),
        "{}",
        r.stderr
    );
    assert!(r.stdout.contains("pod/plain"), "{}", r.stdout);
}

const CRONJOB: &str = "\
apiVersion: batch/v1
kind: CronJob
metadata:
  name: hello
spec:
  schedule: \"@hourly\"
  jobTemplate:
    metadata:
      labels:
        app: hello
    spec:
      template:
        spec:
          restartPolicy: OnFailure
          containers:
          - name: hello
            image: busybox
";

#[test]
fn create_job_from_a_cronjob_then_get_both() {
    let env = Env::start();
    let file = env.write("cronjob.yaml", CRONJOB);
    env.run(&["apply", "-f", file.to_str().unwrap()]).ok();
    let r = env
        .run(&["create", "job", "now", "--from=cronjob/hello"])
        .ok();
    assert_eq!(r.stdout, "job.batch/now created\n");
    let r = env.run(&["get", "jobs,cronjobs"]).ok();
    let lines: Vec<&str> = r.stdout.lines().collect();
    assert!(lines[0].starts_with("NAME"), "{}", r.stdout);
    assert!(lines[0].contains("COMPLETIONS"), "{}", r.stdout);
    assert!(
        lines.iter().any(|l| l.starts_with("job.batch/now")),
        "{}",
        r.stdout
    );
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("cronjob.batch/hello") && l.contains("@hourly")),
        "{}",
        r.stdout
    );
    let r = env.run(&["get", "job", "now", "-o", "json"]).ok();
    let job: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(
        job["metadata"]["annotations"]["cronjob.kubernetes.io/instantiate"],
        "manual"
    );
    assert_eq!(job["metadata"]["ownerReferences"][0]["kind"], "CronJob");
    assert_eq!(job["metadata"]["labels"]["app"], "hello");
    let r = env
        .run(&["create", "job", "later", "--from=deployment/web"])
        .fails();
    assert!(r.stderr.contains("only a cronjob"), "{}", r.stderr);
}
