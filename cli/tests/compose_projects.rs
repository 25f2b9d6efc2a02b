//! Real multi-service projects through `bramble compose`, end to end on a
//! real hub and agent: Docker's own Compose tutorial ("Get started with
//! Docker Compose": a Flask app built from source that counts its visits in
//! Redis), with its files as the tutorial writes them except for what an
//! offline site needs (the Debian fixture images of `python:3.11` and
//! `redis:7`, `bramble_tests::debian_image`, instead of Docker Hub's), plus
//! the tutorial's own later steps: a named volume for Redis' data and a
//! healthcheck the web service waits for. The count answers on the
//! published port, survives `compose down` / `up` in the volume, and starts
//! again at 1 after `down -v`.

use std::time::Duration;

use bramble_tests::cluster::{Broker, Cluster};
use bramble_tests::debian_image::Base;
use bramble_tests::eventually;

mod support {
    pub mod compose;
}

use support::compose::{Project, curl};

/// The tutorial's `app.py`, as written there.
const APP_PY: &str = r#"import time

import redis
from flask import Flask

app = Flask(__name__)
cache = redis.Redis(host='redis', port=6379)

def get_hit_count():
    retries = 5
    while True:
        try:
            return cache.incr('hits')
        except redis.exceptions.ConnectionError as exc:
            if retries == 0:
                raise exc
            retries -= 1
            time.sleep(0.5)

@app.route('/')
def hello():
    count = get_hit_count()
    return f'Hello World! I have been seen {count} times.\n'
"#;

/// The tutorial's Dockerfile on the fixture base: no `apk add` of a
/// compiler (Debian's packages are built), pip offline and allowed to
/// install beside Debian's packages (PEP 668), which already satisfy it.
const DOCKERFILE: &str = "# syntax=docker/dockerfile:1\n\
FROM fixture/python:3.11\n\
WORKDIR /code\n\
ENV FLASK_APP=app.py\n\
ENV FLASK_RUN_HOST=0.0.0.0\n\
COPY requirements.txt requirements.txt\n\
RUN pip install --no-index --break-system-packages -r requirements.txt\n\
EXPOSE 5000\n\
COPY . .\n\
CMD [\"flask\", \"run\"]\n";

/// The tutorial's `compose.yaml` with its named volume and a healthcheck.
fn compose(port: u16) -> String {
    format!(
        "services:
  web:
    build: .
    ports:
      - \"{port}:5000\"
    depends_on:
      redis:
        condition: service_healthy
    stop_grace_period: 1s
  redis:
    image: \"fixture/redis:7\"
    command: [redis-server, --appendonly, \"yes\"]
    volumes:
      - redis-data:/data
    healthcheck:
      test: [CMD, redis-cli, ping]
      interval: 1s
      retries: 30
volumes:
  redis-data:
"
    )
}

/// What the published port answers, once it answers.
fn visit(p: &Project, url: &str) -> String {
    eventually(
        "the app on its published port",
        Duration::from_secs(90),
        || curl(url).map_err(|err| format!("{err}\n{}", p.compose(&["ps"]).1)),
    )
}

#[test]
fn dockers_compose_tutorial_counts_visits_in_redis_and_keeps_them_in_its_volume() {
    let c = Cluster::start(Broker::Embedded, 1, &[]);
    c.push_debian(Base::Python, "fixture/python", "3.11");
    c.push_debian(Base::Redis, "fixture/redis", "7");
    let port = 8000;
    let url = format!("http://{}:{port}/", c.hub.lb_address);
    let p = Project::new(&c, "composetest", &compose(port));
    p.write("app.py", APP_PY);
    p.write("requirements.txt", "flask\nredis\n");
    p.write("Dockerfile", DOCKERFILE);

    let up = p.ok(&["up", "-d", "--wait"]);
    assert!(up.contains("RUN pip install"), "{up}");
    assert!(
        up.contains("Requirement already satisfied: redis"),
        "Debian's redis-py serves the requirement: {up}"
    );
    let wait_at = up.find("waiting for redis to be healthy").expect(&up);
    let web_at = up.find("deployment.apps/web created").expect(&up);
    assert!(wait_at < web_at, "{up}");

    assert_eq!(visit(&p, &url), "Hello World! I have been seen 1 times.\n");
    assert_eq!(visit(&p, &url), "Hello World! I have been seen 2 times.\n");

    let ps = p.ok(&["ps"]);
    let web = ps.lines().find(|l| l.starts_with("web-")).expect(&ps);
    assert!(web.contains("\"flask run\""), "the image's Cmd: {ps}");
    assert!(web.ends_with(&format!(":{port}->5000/tcp")), "{ps}");
    let redis = ps.lines().find(|l| l.starts_with("redis-")).expect(&ps);
    assert!(redis.contains("fixture/redis:7"), "{ps}");
    assert!(
        redis.contains("\"docker-entrypoint.s…\""),
        "the image's entrypoint before the service's command, cut as docker cuts it: {ps}"
    );
    assert!(redis.contains("(healthy)"), "{ps}");
    // Flask's request log, each line after its container's name.
    let logs = p.ok(&["logs", "web"]);
    let get = logs
        .lines()
        .find(|l| l.contains("\"GET / HTTP/1.1\" 200"))
        .expect(&logs);
    assert!(get.starts_with("web-"), "{logs}");

    // Down keeps the named volume: Redis reloads its append-only file.
    let down = p.ok(&["down"]);
    assert!(!down.contains("redis-data"), "down without -v: {down}");
    p.ok(&["up", "-d", "--wait"]);
    assert_eq!(visit(&p, &url), "Hello World! I have been seen 3 times.\n");

    // Down -v removes it: the count starts again.
    let down = p.ok(&["down", "-v"]);
    assert!(down.contains("redis-data"), "{down}");
    let up = p.ok(&["up", "-d", "--wait"]);
    assert!(!up.contains("RUN pip install"), "the image is built: {up}");
    assert_eq!(visit(&p, &url), "Hello World! I have been seen 1 times.\n");
}
