//! `bramble build --check` on a real context directory: the plan it prints,
//! `.dockerignore` applied, missing sources and Dockerfile errors reported
//! with their line. Local only: no hub.

use std::fs;
use std::path::Path;
use std::process::{Command, Output};

fn bramble(args: &[&str], dir: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_bramble"))
        .args(args)
        .env("XDG_CONFIG_HOME", dir.join("no-config"))
        .env("BRAMBLE_DATA_DIR", dir.join("no-data"))
        .env("FROM_ENV", "from-env")
        .output()
        .unwrap()
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

const DOCKERFILE: &str = "\
ARG GO=1.22
FROM golang:${GO} AS build
WORKDIR /src
COPY go.* ./
COPY main.go .
RUN go build -o /out/app .
FROM scratch
ARG FROM_ENV
LABEL e=$FROM_ENV
COPY --from=build /out/app /app
CMD [\"/app\"]
";

fn context() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for (f, body) in [
        ("Dockerfile", DOCKERFILE),
        ("go.mod", "module x\n"),
        ("main.go", "package main\n"),
        ("secret.txt", "no\n"),
        (".dockerignore", "secret.txt\n"),
    ] {
        fs::write(dir.path().join(f), body).unwrap();
    }
    dir
}

#[test]
fn prints_the_plan_for_each_platform() {
    let dir = context();
    let ctx = dir.path().to_str().unwrap();
    let o = bramble(
        &[
            "build",
            "--check",
            "--platform",
            "linux/arm64,linux/arm/v7",
            "--build-arg",
            "GO=1.23",
            "--build-arg",
            "FROM_ENV",
            "-t",
            "app:1",
            ctx,
        ],
        dir.path(),
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let out = stdout(&o);
    // Dockerfile, go.mod, main.go, .dockerignore; secret.txt is ignored.
    assert!(
        out.contains("context: 4 files (after .dockerignore)"),
        "{out}"
    );
    assert!(out.contains("platform linux/arm64:"), "{out}");
    assert!(out.contains("platform linux/arm/v7:"), "{out}");
    assert!(
        out.contains("stage 0 build FROM golang:1.23 (linux/arm/v7)"),
        "{out}"
    );
    assert!(out.contains("   4  copy  COPY go.* ./"), "{out}");
    assert!(
        out.contains("   6  run   RUN go build -o /out/app ."),
        "{out}"
    );
    assert!(
        out.contains("  10  copy  COPY --from=build /out/app /app"),
        "{out}"
    );
    assert!(out.contains(r#""Cmd":["/app"]"#), "{out}");
    assert!(out.contains(r#""Labels":{"e":"from-env"}"#), "{out}");
}

#[test]
fn json_output_is_the_plan() {
    let dir = context();
    let o = bramble(
        &[
            "build",
            "--check",
            "-o",
            "json",
            dir.path().to_str().unwrap(),
        ],
        dir.path(),
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    // No --platform: this machine's.
    assert_eq!(
        v[0]["platform"],
        bramble_cli::build::platform_of(std::env::consts::ARCH)
    );
    assert_eq!(v[0]["plan"]["stages"].as_array().unwrap().len(), 2);
    assert_eq!(v[0]["plan"]["images"], serde_json::json!(["golang:1.22"]));
}

#[test]
fn ignored_or_missing_sources_and_bad_lines_are_reported_with_their_line() {
    let dir = context();
    let ctx = dir.path().to_str().unwrap();
    fs::write(dir.path().join("Dockerfile"), "FROM a\nCOPY secret.txt /\n").unwrap();
    let o = bramble(&["build", "--check", ctx], dir.path());
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains("Dockerfile:2:1: \"secret.txt\" not found in the build context"),
        "{}",
        stderr(&o)
    );

    fs::write(dir.path().join("Dockerfile"), "FROM a\nRUNN x\n").unwrap();
    let o = bramble(&["build", "--check", ctx], dir.path());
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains("Dockerfile:2:1: unknown instruction: RUNN"),
        "{}",
        stderr(&o)
    );

    fs::write(dir.path().join("Dockerfile"), DOCKERFILE).unwrap();
    let o = bramble(
        &["build", "--check", "--platform", "linux/", ctx],
        dir.path(),
    );
    assert!(!o.status.success());
    assert!(stderr(&o).contains("invalid platform"), "{}", stderr(&o));

    // Without --check the build goes to the hub, under a name.
    let o = bramble(&["build", ctx], dir.path());
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("needs -t NAME[:TAG]"), "{}", stderr(&o));
}
