//! Parses and plans every Dockerfile of `tests/corpus/` for the platforms
//! Bramble builds for, and checks what Docker produces for a few images
//! (verified by reading their Dockerfiles).

mod common;
use common::corpus;

use std::collections::BTreeMap;
use std::fs;
use std::path::Path;

use bramble_dockerfile::plan::{Action, ImageConfig, Source, plan, required_images};
use bramble_dockerfile::{BuildPlan, BuildRequest, ErrorKind, Platform, parse};

const PLATFORMS: [&str; 3] = ["linux/amd64", "linux/arm64", "linux/arm/v7"];

/// Corpus files Bramble refuses on purpose, and why (the error kind).
const REFUSED: &[(&str, ErrorKind)] = &[
    // `ADD --keep-git-dir https://…git`: builds have no network.
    ("buildkit/buildkit.Dockerfile", ErrorKind::Unsupported),
    // `ADD http://…`: builds have no network.
    (
        "buildkit/parser-testfiles/cpuguy83-nagios.Dockerfile",
        ErrorKind::Unsupported,
    ),
    // ONBUILD.
    (
        "buildkit/parser-testfiles/lk4d4-the-edge-case-generator.Dockerfile",
        ErrorKind::Unsupported,
    ),
    // BuildKit's parser-only test files: quotes that do not close, so
    // expanding them fails in BuildKit as here.
    (
        "buildkit/parser-testfiles/env.Dockerfile",
        ErrorKind::Expansion,
    ),
    (
        "buildkit/parser-testfiles/escapes.Dockerfile",
        ErrorKind::Expansion,
    ),
    // Parser-only test files with instructions BuildKit's next stage refuses
    // too (unknown flags, empty HEALTHCHECK) or without any FROM.
    (
        "buildkit/parser-testfiles/flags.Dockerfile",
        ErrorKind::Syntax,
    ),
    (
        "buildkit/parser-testfiles/health.Dockerfile",
        ErrorKind::Syntax,
    ),
    (
        "buildkit/parser-testfiles/jeztah-invalid-json-json-inside-string-double.Dockerfile",
        ErrorKind::Syntax,
    ),
    (
        "buildkit/parser-testfiles/jeztah-invalid-json-json-inside-string.Dockerfile",
        ErrorKind::Syntax,
    ),
    (
        "buildkit/parser-testfiles/jeztah-invalid-json-single-quotes.Dockerfile",
        ErrorKind::Syntax,
    ),
    (
        "buildkit/parser-testfiles/jeztah-invalid-json-unterminated-bracket.Dockerfile",
        ErrorKind::Syntax,
    ),
    (
        "buildkit/parser-testfiles/jeztah-invalid-json-unterminated-string.Dockerfile",
        ErrorKind::Syntax,
    ),
    (
        "buildkit/parser-testfiles/json.Dockerfile",
        ErrorKind::Syntax,
    ),
];

fn rel(p: &Path) -> String {
    p.strip_prefix(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/corpus"))
        .unwrap()
        .to_string_lossy()
        .into_owned()
}

fn base() -> ImageConfig {
    ImageConfig {
        env: vec!["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".into()],
        cmd: Some(vec!["sh".into()]),
        ..ImageConfig::default()
    }
}

fn plan_file(
    text: &str,
    platform: &str,
    args: &[(&str, &str)],
) -> Result<BuildPlan, bramble_dockerfile::Error> {
    let df = parse(text)?;
    let mut req = BuildRequest::new(Platform::parse(platform).unwrap());
    req.build_args = args
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    for image in required_images(&df, &req)? {
        req.base_images.insert(image, base());
    }
    plan(&df, &req)
}

fn load(name: &str) -> String {
    fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/corpus")
            .join(name),
    )
    .unwrap()
}

#[test]
fn every_corpus_file_parses_and_plans_or_is_refused_as_listed() {
    let files = corpus();
    assert!(files.len() >= 30, "corpus has {} files", files.len());
    let mut failures = Vec::new();
    let mut planned = 0;
    for path in &files {
        let name = rel(path);
        let text = fs::read_to_string(path).unwrap();
        let expected = REFUSED.iter().find(|(n, _)| *n == name).map(|(_, k)| *k);
        for platform in PLATFORMS {
            match (plan_file(&text, platform, &[]), expected) {
                (Ok(plan), None) => {
                    planned += 1;
                    let target = plan.target();
                    if target.steps.is_empty() && target.config == ImageConfig::default() {
                        failures.push(format!("{name}: empty plan"));
                    }
                }
                (Err(e), Some(kind)) if e.kind == kind => {}
                (Err(e), _) => failures.push(format!("{name} ({platform}): {e}")),
                (Ok(_), Some(kind)) => failures.push(format!("{name}: expected {kind:?}, planned")),
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} failures:\n{}",
        failures.len(),
        failures.join("\n")
    );
    assert!(planned >= 90, "planned {planned}");
}

#[test]
fn nginx_image_config_matches_docker() {
    let plan = plan_file(
        &load("nginx/mainline-debian.Dockerfile"),
        "linux/arm64",
        &[],
    )
    .unwrap();
    assert_eq!(plan.stages.len(), 1);
    let c = &plan.target().config;
    assert_eq!(
        c.entrypoint,
        Some(vec!["/docker-entrypoint.sh".to_string()])
    );
    assert_eq!(
        c.cmd,
        Some(vec!["nginx".into(), "-g".into(), "daemon off;".into()])
    );
    assert_eq!(c.exposed_ports.iter().collect::<Vec<_>>(), ["80/tcp"]);
    assert_eq!(c.stop_signal, "SIGQUIT");
    assert_eq!(c.env_value("NGINX_VERSION"), Some("1.27.4"));
    assert_eq!(c.env_value("NJS_RELEASE"), Some("1~bookworm"));
    // Legacy `ENV K   V` keeps the value without the separating blanks.
    assert!(c.env.contains(&"PKG_RELEASE=1~bookworm".to_string()));
    assert_eq!(plan.images, ["debian:bookworm-slim"]);
}

#[test]
fn python_and_golang_images_keep_their_env_and_cmd() {
    let plan = plan_file(
        &load("python/3.13-slim-bookworm.Dockerfile"),
        "linux/arm/v7",
        &[],
    )
    .unwrap();
    let c = &plan.target().config;
    assert_eq!(c.cmd, Some(vec!["python3".to_string()]));
    assert_eq!(
        c.env_value("PATH"),
        Some("/usr/local/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin")
    );
    assert!(
        c.env_value("PYTHON_VERSION")
            .is_some_and(|v| v.starts_with("3.13."))
    );
    let plan = plan_file(&load("golang/1.26-bookworm.Dockerfile"), "linux/arm64", &[]).unwrap();
    let c = &plan.target().config;
    assert_eq!(c.working_dir, "/go");
    assert_eq!(c.env_value("GOPATH"), Some("/go"));
    assert!(
        c.env_value("PATH")
            .is_some_and(|p| p.starts_with("/go/bin:/usr/local/go/bin:"))
    );
}

#[test]
fn multi_stage_app_copies_from_its_build_stage() {
    let text = load("awesome-compose/nginx-golang-backend.Dockerfile");
    let plan = plan_file(&text, "linux/arm64", &[]).unwrap();
    assert!(plan.stages.len() >= 2, "{:#?}", plan.stages);
    let copies_from_stage = plan
        .target()
        .steps
        .iter()
        .any(|s| matches!(&s.action, Action::Copy(c) if matches!(c.from, Source::Stage(_))));
    assert!(copies_from_stage);
}

fn inline_files(plan: &BuildPlan) -> BTreeMap<String, String> {
    plan.stages
        .iter()
        .flat_map(|s| &s.steps)
        .filter_map(|s| match &s.action {
            Action::Copy(c) => Some(c.inline.clone()),
            _ => None,
        })
        .flatten()
        .map(|f| (f.path, f.content))
        .collect()
}

fn run_scripts(plan: &BuildPlan) -> Vec<Vec<String>> {
    plan.stages
        .iter()
        .flat_map(|s| &s.steps)
        .filter_map(|s| match &s.action {
            Action::Run(r) => Some(r.argv.clone()),
            _ => None,
        })
        .collect()
}

/// The file contents BuildKit's integration tests expect
/// (`dockerfile_heredoc_test.go`).
#[test]
fn copy_heredocs_match_buildkit_integration_results() {
    let plan = plan_file(
        &load("buildkit/heredoc-special-symbols.Dockerfile"),
        "linux/arm64",
        &[],
    )
    .unwrap();
    let files = inline_files(&plan);
    let want = [
        ("/quotefile", "\"quotes in file\"\n"),
        ("/slashfile1", "\n"),
        ("/slashfile2", "\\\n"),
        ("/slashfile3", "$\n"),
        ("/rawslashfile1", "\\\n"),
        ("/rawslashfile2", "\\\\\n"),
        ("/rawslashfile3", "\\$\n"),
    ];
    for (path, content) in want {
        assert_eq!(files[path], content, "{path}");
    }

    let plan = plan_file(
        &load("buildkit/heredoc-var-substitution.Dockerfile"),
        "linux/arm64",
        &[],
    )
    .unwrap();
    let files = inline_files(&plan);
    let want = [
        ("c1", "Hello world!\n"),
        ("c2", "Hello ${name}!\n"),
        ("c3", "Hello ${name}!\n"),
        ("q1", "Hello 'world'!\n"),
        ("q2", "Hello \"world\"!\n"),
        ("qsingle1", "Hello '${name}'!\n"),
        ("qsingle2", "Hello \"${name}\"!\n"),
        ("qdouble1", "Hello '${name}'!\n"),
        ("qdouble2", "Hello \"${name}\"!\n"),
    ];
    for (name, content) in want {
        assert_eq!(files[&format!("/dest/{name}")], content, "{name}");
    }
    // RUN heredocs are never expanded by the builder: the shell does it.
    let scripts = run_scripts(&plan);
    assert_eq!(
        scripts[0][2],
        "greeting=\"Hello\"\necho \"${greeting} ${name}!\" > /dest/r1\n"
    );
}

#[test]
fn heredoc_indentation_matches_buildkit() {
    let plan = plan_file(
        &load("buildkit/heredoc-indent.Dockerfile"),
        "linux/arm64",
        &[],
    )
    .unwrap();
    let files = inline_files(&plan);
    assert_eq!(files["/dest/foo-copy"], "\tfoo\n");
    assert_eq!(files["/dest/bar-copy"], "bar\n");
    let s = run_scripts(&plan);
    // Simple heredocs: the (chomped) body is the script.
    assert_eq!(
        s[0],
        ["/bin/sh", "-c", "echo \"\n\tfoo\" > /dest/foo-run\n"]
    );
    assert_eq!(s[1], ["/bin/sh", "-c", "echo \"\nbar\" > /dest/bar-run\n"]);
    // Shebang: run from /dev/pipes.
    assert_eq!(s[2], ["/bin/sh", "-c", "/dev/pipes/EOF"]);
    // Complex: the shell gets the line and the raw body (it strips the tabs).
    assert_eq!(
        s[5],
        [
            "/bin/sh",
            "-c",
            "<<-EOF sh > /dest/bar3-run\necho \"\n\tbar\"\nEOF"
        ]
    );
}
