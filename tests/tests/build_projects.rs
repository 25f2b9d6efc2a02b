//! Dockerfiles of real projects, built by the real `bramble build` on the
//! board of this machine's platform and run as Deployments behind Services:
//! a Flask app on `fixture/python:3.11` (pip installs its requirements, one
//! a local package, offline; `USER nobody`) and a static site on
//! `fixture/nginx:1` (its config replaced and checked with `nginx -t` in a
//! `RUN`). A busybox pod fetches each one's pages by the Service's name; the
//! images' configs are what Docker writes (`skopeo inspect --config`); the
//! same build again runs nothing, every step `CACHED`. The bases are Debian
//! packages unpacked into one layer (`bramble_tests::debian_image`), fetched
//! beforehand by `scripts/test`.

use std::path::Path;
use std::time::Duration;

use bramble_tests::cluster::{Broker, Cluster, DEPLOYMENTS, IDLE, deployment};
use bramble_tests::debian_image::Base;
use bramble_tests::net::exec;
use bramble_tests::projects::{STATIC_SITE, write_tree};
use bramble_tests::{eventually, skopeo};
use serde_json::{Value, json};

/// A Deployment `name` (label `app=name`) of one pod running `image` as
/// its config says, port `http` = `port`, Ready when `GET /` answers.
fn app(name: &str, image: &str, port: u16) -> Value {
    json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name},
        "spec": {"replicas": 1, "selector": {"matchLabels": {"app": name}},
            "template": {"metadata": {"labels": {"app": name}},
                "spec": {"terminationGracePeriodSeconds": 1, "containers": [{
                    "name": "main", "image": image,
                    "ports": [{"name": "http", "containerPort": port}],
                    "readinessProbe": {"httpGet": {"path": "/", "port": "http"}, "periodSeconds": 1}}]}}}})
}

/// Creates Deployment `name` and a Service `name` on `port` for it, and a
/// busybox client pod; waits until the app is Ready; the client's name.
fn serve(c: &Cluster, name: &str, image: &str, port: u16) -> String {
    let (code, v) = c.client().post(DEPLOYMENTS, &app(name, image, port));
    assert_eq!(code, 201, "{v}");
    let svc = json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": name},
        "spec": {"selector": {"app": name}, "ports": [{"port": port, "targetPort": "http"}]}});
    let (code, v) = c.client().post("/api/v1/namespaces/default/services", &svc);
    assert_eq!(code, 201, "{v}");
    let client = format!("{name}-client");
    let (code, v) = c
        .client()
        .post(DEPLOYMENTS, &deployment(&client, 1, "bb:1", IDLE));
    assert_eq!(code, 201, "{v}");
    eventually(format!("{name} Ready"), Duration::from_secs(120), || {
        (c.ready_pods(&format!("app={name}")).len() == 1).then_some(())
    });
    eventually(format!("{client} Ready"), Duration::from_secs(60), || {
        c.ready_pods(&format!("app={client}"))
            .pop()
            .map(|(pod, _)| pod)
    })
}

/// `wget` of `url` in pod `client`, once the Service answers: its output.
fn fetch(c: &Cluster, client: &str, url: &str) -> String {
    eventually(format!("GET {url}"), Duration::from_secs(60), || {
        let (ok, out) = exec(c, client, &format!("wget -S -qO- {url} 2>&1"));
        ok.then_some(out)
    })
}

/// `bramble build -t image ctx`, which must succeed: its output.
fn build(c: &Cluster, image: &str, ctx: &Path) -> String {
    let (ok, out) = c.cli(&["build", "-t", image, ctx.to_str().unwrap()]);
    assert!(ok, "{out}");
    assert!(out.contains(&format!("naming to {image} done")), "{out}");
    out
}

/// A second build of `ctx` with no change: nothing sent, each of the
/// `steps` CACHED, no RUN ran (`ran` is not in the output); the same config.
fn rebuild_runs_nothing(
    c: &Cluster,
    dir: &Path,
    first: &str,
    again: &str,
    ctx: &Path,
    steps: usize,
    ran: &str,
) {
    let out = build(c, again, ctx);
    assert!(out.contains("nothing sent"), "{out}");
    assert_eq!(out.matches("CACHED").count(), steps, "{out}");
    assert!(!out.contains(ran), "a RUN ran again: {out}");
    assert_eq!(
        skopeo::inspect(c, dir, again, true),
        skopeo::inspect(c, dir, first, true),
        "the same image"
    );
}

const FLASK_DOCKERFILE: &str = "FROM fixture/python:3.11\n\
WORKDIR /app\n\
COPY requirements.txt .\n\
COPY greeting/ greeting/\n\
RUN pip install --no-index --no-build-isolation --no-cache-dir --break-system-packages -r requirements.txt\n\
COPY . .\n\
RUN python3 -m compileall -q . && mkdir -p /var/lib/app && chown nobody:nogroup /var/lib/app\n\
ENV GREETING=\"Hello from Flask\" PORT=5000\n\
EXPOSE 5000\n\
USER nobody\n\
CMD [\"python3\", \"app.py\"]\n";

const APP_PY: &str = r#"import importlib.metadata
import os
import pwd

from flask import Flask

import greeting

app = Flask(__name__)


@app.route("/")
def index():
    user = pwd.getpwuid(os.getuid()).pw_name
    flask = importlib.metadata.version("flask")
    return f"{greeting.greet(os.environ['GREETING'])} (flask {flask}) as {user} in {os.getcwd()}\n"


@app.route("/visits")
def visits():
    path = "/var/lib/app/visits"
    count = int(open(path).read()) + 1 if os.path.exists(path) else 1
    with open(path, "w") as f:
        f.write(str(count))
    return f"visit {count}\n"


if __name__ == "__main__":
    app.run(host="0.0.0.0", port=int(os.environ["PORT"]))
"#;

#[test]
fn a_flask_app_on_python_builds_with_pip_runs_as_nobody_and_rebuilds_from_cache() {
    let c = Cluster::start(Broker::Embedded, 1, &[]);
    c.push_debian(Base::Python, "fixture/python", "3.11");
    c.push_busybox("bb", "1");
    let dir = tempfile::tempdir().unwrap();
    let ctx = dir.path().join("flask-app");
    write_tree(
        &ctx,
        &[
            ("Dockerfile", FLASK_DOCKERFILE),
            (".dockerignore", "__pycache__\n*.pyc\n.venv\n"),
            ("requirements.txt", "flask>=2.2\n./greeting\n"),
            (
                "greeting/pyproject.toml",
                "[build-system]\nrequires = [\"setuptools\"]\nbuild-backend = \"setuptools.build_meta\"\n\n\
                 [project]\nname = \"greeting\"\nversion = \"1.0\"\n",
            ),
            (
                "greeting/greeting.py",
                "def greet(text):\n    return text + \", greeted by a pip-installed package\"\n",
            ),
            ("app.py", APP_PY),
            (".venv/pyvenv.cfg", "not for the image\n"),
        ],
    );

    let out = build(&c, "projects/flask:1", &ctx);
    assert!(out.contains("RUN pip install --no-index"), "{out}");
    assert!(out.contains("Successfully installed greeting-1.0"), "{out}");
    assert!(!out.contains("CACHED"), "{out}");

    // The config as Docker writes it: the base's PATH and LANG kept.
    let cfg = skopeo::inspect(&c, dir.path(), "projects/flask:1", true);
    let conf = &cfg["config"];
    assert_eq!(conf["Cmd"], json!(["python3", "app.py"]), "{cfg}");
    assert_eq!(conf["WorkingDir"], "/app", "{cfg}");
    assert_eq!(conf["User"], "nobody", "{cfg}");
    assert_eq!(conf["ExposedPorts"], json!({"5000/tcp": {}}), "{cfg}");
    let env: Vec<&str> = conf["Env"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e.as_str().unwrap())
        .collect();
    assert_eq!(
        env,
        [
            "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
            "LANG=C.UTF-8",
            "GREETING=Hello from Flask",
            "PORT=5000",
        ],
        "{cfg}"
    );
    // One layer per step that changes files, on the base's one.
    assert_eq!(
        cfg["rootfs"]["diff_ids"].as_array().unwrap().len(),
        7,
        "{cfg}"
    );

    let client = serve(&c, "flask", "projects/flask:1", 5000);
    let page = fetch(&c, &client, "http://flask:5000/");
    assert!(page.contains("HTTP/1.1 200 OK"), "{page}");
    assert!(page.contains("Server: Werkzeug/"), "{page}");
    assert!(
        page.contains(
            "Hello from Flask, greeted by a pip-installed package (flask 2.2.2) as nobody in /app\n"
        ),
        "{page}"
    );
    // The directory the RUN gave to nobody is writable by the app.
    let first = fetch(&c, &client, "http://flask:5000/visits");
    assert!(first.contains("visit 1\n"), "{first}");
    let second = fetch(&c, &client, "http://flask:5000/visits");
    assert!(second.contains("visit 2\n"), "{second}");
    // Ignored files are not in the image; compileall's are.
    let (ok, listing) = c.cli(&[
        "exec",
        &c.ready_pods("app=flask")[0].0,
        "--",
        "ls",
        "-a",
        "/app",
        "/app/__pycache__",
    ]);
    assert!(ok, "{listing}");
    assert!(!listing.contains(".venv"), "{listing}");
    assert!(listing.contains("app.cpython-311.pyc"), "{listing}");

    rebuild_runs_nothing(
        &c,
        dir.path(),
        "projects/flask:1",
        "projects/flask:2",
        &ctx,
        6,
        "Successfully installed",
    );
}

#[test]
fn a_static_site_on_nginx_builds_serves_its_pages_and_rebuilds_from_cache() {
    let c = Cluster::start(Broker::Embedded, 1, &[]);
    c.push_debian(Base::Nginx, "fixture/nginx", "1");
    c.push_busybox("bb", "1");
    let dir = tempfile::tempdir().unwrap();
    let ctx = dir.path().join("site");
    write_tree(&ctx, STATIC_SITE);

    let out = build(&c, "projects/site:1", &ctx);
    assert!(out.contains("RUN nginx -t"), "{out}");
    assert!(
        out.contains("nginx: the configuration file /etc/nginx/nginx.conf syntax is ok"),
        "{out}"
    );
    assert!(!out.contains("CACHED"), "{out}");

    let cfg = skopeo::inspect(&c, dir.path(), "projects/site:1", true);
    let conf = &cfg["config"];
    assert_eq!(conf["Cmd"], json!(["nginx", "-g", "daemon off;"]), "{cfg}");
    assert_eq!(conf["ExposedPorts"], json!({"80/tcp": {}}), "{cfg}");
    assert_eq!(conf["StopSignal"], "SIGQUIT", "the base's: {cfg}");
    assert_eq!(
        conf["Env"],
        json!(["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"]),
        "{cfg}"
    );
    assert_eq!(conf.get("User").unwrap_or(&json!("")), "", "{cfg}");

    let client = serve(&c, "site", "projects/site:1", 80);
    let page = fetch(&c, &client, "http://site/");
    assert!(page.contains("HTTP/1.1 200 OK"), "{page}");
    assert!(page.contains("Server: nginx/1.22.1"), "{page}");
    assert!(page.contains("X-Site: bramble-static"), "{page}");
    assert!(page.contains("<h1>A static site on a board</h1>"), "{page}");
    let css = fetch(&c, &client, "http://site/css/site.css");
    assert!(css.contains("Content-Type: text/css"), "{css}");
    assert!(css.contains("h1 { color: green; }"), "{css}");
    let (ok, missing) = exec(&c, &client, "wget -qO- http://site/welcome.html 2>&1");
    assert!(!ok && missing.contains("404 Not Found"), "{missing}");
    // The RUN removed the base's server; the COPY put the site's in its place.
    let pod = c.ready_pods("app=site")[0].0.clone();
    let (ok, confs) = c.cli(&["exec", &pod, "--", "ls", "/etc/nginx/conf.d"]);
    assert!(ok, "{confs}");
    assert_eq!(confs, "site.conf\n");
    // nginx logs to stdout (the base's link), as the official image does.
    eventually("the access log", Duration::from_secs(30), || {
        let (ok, log) = c.cli(&["logs", &pod]);
        (ok && log.contains("\"GET /css/site.css HTTP/1.1\" 200")).then_some(())
    });

    rebuild_runs_nothing(
        &c,
        dir.path(),
        "projects/site:1",
        "projects/site:2",
        &ctx,
        4,
        "syntax is ok",
    );
}
