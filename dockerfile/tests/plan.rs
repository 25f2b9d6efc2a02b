//! Planner rules: ARG/ENV scoping, expansion per instruction, stage
//! selection and order, RUN/COPY resolution, image config as Docker builds
//! it, cache keys, and refusals.

use bramble_dockerfile::plan::plan as make_plan;
use bramble_dockerfile::plan::{
    Action, Base, BuildPlan, CopyStep, ImageConfig, MountKind, Network, RunStep, Source, cache_key,
    context_inputs, required_images,
};
use bramble_dockerfile::{BuildRequest, ErrorKind, Platform, parse};

fn base_config() -> ImageConfig {
    ImageConfig {
        env: vec!["PATH=/usr/bin:/bin".into()],
        cmd: Some(vec!["bash".into()]),
        ..ImageConfig::default()
    }
}

fn request(text: &str, args: &[(&str, &str)]) -> BuildRequest {
    let df = parse(text).unwrap();
    let mut req = BuildRequest::new(Platform::parse("linux/arm64").unwrap());
    req.build_args = args
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    for image in required_images(&df, &req).unwrap() {
        req.base_images.insert(image, base_config());
    }
    req
}

fn plan_with(text: &str, args: &[(&str, &str)]) -> BuildPlan {
    let req = request(text, args);
    make_plan(&parse(text).unwrap(), &req).unwrap()
}

fn p(text: &str) -> BuildPlan {
    plan_with(text, &[])
}

fn runs(plan: &BuildPlan) -> Vec<RunStep> {
    plan.target()
        .steps
        .iter()
        .filter_map(|s| match &s.action {
            Action::Run(r) => Some(r.clone()),
            _ => None,
        })
        .collect()
}

fn copies(plan: &BuildPlan) -> Vec<CopyStep> {
    plan.target()
        .steps
        .iter()
        .filter_map(|s| match &s.action {
            Action::Copy(c) => Some(c.clone()),
            _ => None,
        })
        .collect()
}

fn strs(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

#[test]
fn cmd_entrypoint_and_shell_forms_as_docker_stores_them() {
    let c = p("FROM a\nCMD echo hi\n").target().config.clone();
    assert_eq!(c.cmd, Some(strs(&["/bin/sh", "-c", "echo hi"])));
    // ENTRYPOINT resets the CMD inherited from the base image…
    let c = p("FROM a\nENTRYPOINT [\"/init\"]\n")
        .target()
        .config
        .clone();
    assert_eq!(c.entrypoint, Some(strs(&["/init"])));
    assert_eq!(c.cmd, None);
    // …but not one set earlier in the same stage.
    let c = p("FROM a\nCMD [\"x\"]\nENTRYPOINT [\"/init\"]\n")
        .target()
        .config
        .clone();
    assert_eq!(c.cmd, Some(strs(&["x"])));
    // SHELL changes later shell forms.
    let plan =
        p("FROM a\nSHELL [\"/bin/bash\", \"-eo\", \"pipefail\", \"-c\"]\nRUN ls | wc\nCMD run\n");
    assert_eq!(
        runs(&plan)[0].argv,
        strs(&["/bin/bash", "-eo", "pipefail", "-c", "ls | wc"])
    );
    assert_eq!(
        plan.target().config.cmd,
        Some(strs(&["/bin/bash", "-eo", "pipefail", "-c", "run"]))
    );
    // Exec form is never expanded or shell-wrapped.
    let plan = p("FROM a\nENV X=1\nRUN [\"echo\", \"$X\"]\n");
    assert_eq!(runs(&plan)[0].argv, strs(&["echo", "$X"]));
}

#[test]
fn workdir_env_user_reach_later_runs() {
    let plan = p(
        "FROM a\nWORKDIR /app\nWORKDIR src\nENV GOPATH=/go PATH=/go/bin:$PATH\nUSER 1000\nRUN make\n",
    );
    let r = &runs(&plan)[0];
    assert_eq!(r.workdir, "/app/src");
    assert_eq!(r.user, "1000");
    assert_eq!(r.env, strs(&["PATH=/go/bin:/usr/bin:/bin", "GOPATH=/go"]));
    assert_eq!(r.argv, strs(&["/bin/sh", "-c", "make"]));
    let c = &plan.target().config;
    assert_eq!(c.working_dir, "/app/src");
    assert_eq!(c.env, strs(&["PATH=/go/bin:/usr/bin:/bin", "GOPATH=/go"]));
    let mkdirs: Vec<_> = plan
        .target()
        .steps
        .iter()
        .filter_map(|s| match &s.action {
            Action::Mkdir { path, .. } => Some(path.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(mkdirs, ["/app", "/app/src"]);
}

#[test]
fn env_line_expands_against_the_environment_before_it() {
    // Docker's documented example.
    let plan = p("FROM a\nENV abc=hello\nENV abc=bye def=$abc\nENV ghi=$abc\n");
    let c = &plan.target().config;
    assert_eq!(c.env_value("def"), Some("hello"));
    assert_eq!(c.env_value("ghi"), Some("bye"));
}

#[test]
fn global_args_only_in_from_unless_redeclared() {
    let text = "ARG VERSION=1.0\nARG BASE=alpine\nFROM $BASE:$VERSION\nRUN echo $VERSION\nLABEL v=$VERSION\nARG VERSION\nLABEL w=$VERSION\n";
    let plan = p(text);
    assert_eq!(plan.images, ["alpine:1.0"]);
    assert_eq!(plan.target().base, Base::Image("alpine:1.0".into()));
    let labels = &plan.target().config.labels;
    assert_eq!(labels["v"], "");
    assert_eq!(labels["w"], "1.0");
    // The first RUN does not see VERSION as an argument.
    assert!(
        runs(&plan)[0]
            .env
            .iter()
            .all(|e| !e.starts_with("VERSION="))
    );
    // --build-arg overrides the global default everywhere.
    let plan = plan_with(text, &[("VERSION", "2.0")]);
    assert_eq!(plan.images, ["alpine:2.0"]);
    assert_eq!(plan.target().config.labels["w"], "2.0");
    assert!(plan.warnings.is_empty(), "{:?}", plan.warnings);
}

#[test]
fn stage_args_defaults_build_args_and_run_env() {
    let text = "FROM a\nARG MODE=debug\nARG EMPTY\nRUN build $MODE\nENV MODE=env\nRUN again\n";
    let plan = plan_with(text, &[("MODE", "release"), ("UNUSED", "x")]);
    let r = runs(&plan);
    assert!(r[0].env.contains(&"MODE=release".to_string()));
    assert!(r[1].env.contains(&"MODE=env".to_string()));
    // ARGs are not in the image config; ENV is.
    assert_eq!(
        plan.target().config.env,
        strs(&["PATH=/usr/bin:/bin", "MODE=env"])
    );
    assert_eq!(plan.target().steps[0].args, ["MODE=release"]);
    assert_eq!(plan.warnings.len(), 1);
    assert!(plan.warnings[0].message.contains("[UNUSED]"));
    assert_eq!(plan.source_date_epoch, None);
    let plan = plan_with(text, &[("SOURCE_DATE_EPOCH", "1700000000")]);
    assert_eq!(plan.source_date_epoch, Some(1_700_000_000));
    assert!(plan.warnings.is_empty(), "{:?}", plan.warnings);
    let req = request(text, &[("SOURCE_DATE_EPOCH", "yesterday")]);
    let e = make_plan(&parse(text).unwrap(), &req).unwrap_err();
    assert_eq!(e.kind, ErrorKind::Request);
}

#[test]
fn predefined_platform_args() {
    let text = "FROM --platform=$BUILDPLATFORM a AS build\nARG TARGETARCH TARGETVARIANT\nRUN echo $TARGETARCH\nFROM b\nCOPY --from=build /out/${TARGETARCH} /bin/\nARG TARGETPLATFORM\nLABEL p=$TARGETPLATFORM\n";
    let df = parse(text).unwrap();
    let mut req = BuildRequest::new(Platform::parse("linux/arm/v7").unwrap());
    req.base_images.insert("a".into(), base_config());
    req.base_images.insert("b".into(), base_config());
    let plan = make_plan(&df, &req).unwrap();
    assert_eq!(plan.stages.len(), 2);
    assert_eq!(plan.stages[0].platform.to_string(), "linux/arm/v7");
    let Action::Run(r) = &plan.stages[0].steps[0].action else {
        panic!()
    };
    assert!(r.env.contains(&"TARGETARCH=arm".to_string()));
    assert!(r.env.contains(&"TARGETVARIANT=v7".to_string()));
    // Undeclared in the second stage: not expanded.
    assert_eq!(copies(&plan)[0].sources, ["/out/"]);
    assert_eq!(plan.target().config.labels["p"], "linux/arm/v7");
}

#[test]
fn only_stages_the_target_needs_in_dependency_order() {
    let text = "FROM a AS deps\nRUN d\nFROM a AS unused\nRUN u\nFROM deps AS build\nRUN b\nFROM a AS tools\nFROM scratch\nCOPY --from=build /app /app\nCOPY --from=tools /t /t\n";
    let plan = p(text);
    let order: Vec<_> = plan.stages.iter().map(|s| s.name.clone()).collect();
    assert_eq!(
        order,
        [
            Some("deps".to_string()),
            Some("build".into()),
            Some("tools".into()),
            None
        ]
    );
    assert_eq!(plan.stages[1].base, Base::Stage(0));
    assert_eq!(copies(&plan)[0].from, Source::Stage(2));
    // --target picks a stage, case-insensitively; unknown names are errors.
    let mut req = request(text, &[]);
    req.target = Some("BUILD".into());
    let t = make_plan(&parse(text).unwrap(), &req).unwrap();
    assert_eq!(t.stages.len(), 2);
    req.target = Some("nope".into());
    let e = make_plan(&parse(text).unwrap(), &req).unwrap_err();
    assert_eq!(e.kind, ErrorKind::Stage);
    assert!(e.hint.contains("deps, unused, build, tools"));
}

#[test]
fn a_base_without_path_gets_the_default_path() {
    let df = parse("FROM nopath\nRUN ls\n").unwrap();
    let mut req = BuildRequest::new(Platform::parse("linux/arm64").unwrap());
    req.base_images.insert(
        "nopath".into(),
        ImageConfig {
            env: strs(&["A=1"]),
            ..ImageConfig::default()
        },
    );
    let plan = make_plan(&df, &req).unwrap();
    let path = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
    assert_eq!(plan.target().config.env, strs(&["A=1", path]));
    assert_eq!(runs(&plan)[0].env, strs(&["A=1", path]));
}

#[test]
fn scratch_stage_and_inherited_stage_config() {
    let plan = p("FROM scratch AS base\nENV A=1\nCMD [\"x\"]\nFROM base\nRUN y\n");
    let c = &plan.target().config;
    assert_eq!(
        c.env,
        strs(&[
            "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
            "A=1"
        ])
    );
    assert_eq!(c.cmd, Some(strs(&["x"])));
    assert_eq!(c.working_dir, "/");
}

#[test]
fn copy_resolution_destinations_and_checks() {
    let plan = p(
        "FROM a\nWORKDIR /app\nARG OWNER=10\nCOPY --chown=$OWNER:$OWNER --chmod=640 go.* ./\nCOPY . .\nCOPY x rel\nCOPY --from=nginx:1.27 /etc/nginx/nginx.conf /etc/\nADD app.tar.gz /opt/\n",
    );
    let c = copies(&plan);
    assert_eq!(c[0].sources, ["go.*"]);
    assert_eq!(c[0].dest, "/app/");
    assert_eq!(c[0].chown.as_deref(), Some("10:10"));
    assert_eq!(c[0].chmod, Some(0o640));
    assert_eq!(c[1].dest, "/app/");
    assert_eq!(c[2].dest, "/app/rel");
    assert_eq!(c[3].from, Source::Image("nginx:1.27".into()));
    assert!(c[4].add && c[4].unpack_archives);
    assert_eq!(plan.images, ["a", "nginx:1.27"]);
    assert_eq!(
        plan.target().steps[1].text,
        "COPY --chown=10:10 --chmod=0640 go.* ./"
    );

    let err = |text: &str| make_plan(&parse(text).unwrap(), &request(text, &[])).unwrap_err();
    let e = err("FROM a\nCOPY a b /dst\n");
    assert!(e.message.contains("must be a directory and end with a /"));
    let e = err("FROM a\nARG S=x\nCOPY --from=$S a /a\n");
    assert!(e.message.contains("not supported for --from"));
    let e = err("FROM a\nCOPY --from=7 a /a\n");
    assert_eq!((e.kind, e.line), (ErrorKind::Stage, 2));
    let e = err("FROM a\nADD https://example.com/x.tgz /x\n");
    assert_eq!((e.kind, e.line, e.column), (ErrorKind::Unsupported, 2, 5));
    assert!(e.message.contains("no network"));
    let e = err("FROM a\nADD git@github.com:x/y.git /y\n");
    assert_eq!(e.kind, ErrorKind::Unsupported);
    let e = err("FROM a\nCOPY --chmod=u+x a /a\n");
    assert!(e.message.contains("octal"));
    let df = parse("FROM a AS s\nCOPY --from=s a /a\n").unwrap();
    let req = BuildRequest::new(Platform::parse("linux/arm64").unwrap());
    let e = required_images(&df, &req).unwrap_err();
    assert_eq!((e.kind, e.line), (ErrorKind::Stage, 2));
}

#[test]
fn copy_heredocs_expand_unless_quoted() {
    let plan = p(
        "FROM a\nENV NAME=world\nCOPY <<EOF /hello.txt\nhello $NAME\nEOF\nCOPY --chmod=755 <<'A' <<B /bin/\nraw $NAME\nA\nexpanded $NAME\nB\n",
    );
    let c = copies(&plan);
    assert_eq!(c[0].inline[0].path, "/hello.txt");
    assert_eq!(c[0].inline[0].content, "hello world\n");
    assert_eq!(c[0].inline[0].mode, 0o644);
    assert_eq!(c[1].inline[0].path, "/bin/A");
    assert_eq!(c[1].inline[0].content, "raw $NAME\n");
    assert_eq!(c[1].inline[1].content, "expanded world\n");
    assert_eq!(c[1].inline[1].mode, 0o755);
}

#[test]
fn run_heredocs_as_buildkit_runs_them() {
    let plan = p(
        "FROM a\nRUN <<EOF\napt-get update\napt-get install -y x\nEOF\nRUN <<-EOT\n\t#!/usr/bin/env python3\n\tprint(1)\n\tEOT\nRUN cat <<EOF > /etc/x.conf\nkey=$V\nEOF\n",
    );
    let r = runs(&plan);
    assert_eq!(
        r[0].argv,
        strs(&["/bin/sh", "-c", "apt-get update\napt-get install -y x\n"])
    );
    assert_eq!(r[1].argv, strs(&["/bin/sh", "-c", "/dev/pipes/EOT"]));
    assert_eq!(
        r[1].inline_files[0].content,
        "#!/usr/bin/env python3\nprint(1)\n"
    );
    assert_eq!(r[1].inline_files[0].mode, 0o755);
    assert_eq!(
        r[2].argv,
        strs(&["/bin/sh", "-c", "cat <<EOF > /etc/x.conf\nkey=$V\nEOF"])
    );
}

#[test]
fn run_mounts_network_and_security() {
    let plan = p(
        "FROM golang AS build\nWORKDIR /src\nRUN --mount=type=cache,target=/go/pkg/mod --mount=type=bind,source=go.sum,target=go.sum --mount=type=tmpfs,target=/tmp --network=none go mod download\nFROM a\nRUN --mount=from=build,source=/out,target=/mnt cp /mnt/app /\n",
    );
    let Action::Run(r) = &plan.stages[0].steps[1].action else {
        panic!()
    };
    assert_eq!(r.network, Network::None);
    assert_eq!(
        r.mounts[0].kind,
        MountKind::Cache {
            id: "/go/pkg/mod".into(),
            sharing: "shared".into()
        }
    );
    assert_eq!(r.mounts[1].target, "/src/go.sum");
    assert_eq!(r.mounts[1].from, Some(Source::Context));
    assert_eq!(r.mounts[1].kind, MountKind::Bind { readonly: true });
    assert_eq!(r.mounts[2].kind, MountKind::Tmpfs { size: None });
    // A mount from a stage makes it a dependency.
    assert_eq!(plan.stages.len(), 2);
    assert_eq!(runs(&plan)[0].mounts[0].from, Some(Source::Stage(0)));

    let err = |text: &str| make_plan(&parse(text).unwrap(), &request(text, &[])).unwrap_err();
    let e = err("FROM a\nRUN --mount=type=secret,id=tok cat /run/secrets/tok\n");
    assert_eq!((e.kind, e.line), (ErrorKind::Unsupported, 2));
    let e = err("FROM a\nRUN --network=host curl x\n");
    assert_eq!(e.kind, ErrorKind::Unsupported);
    let e = err("FROM a\nRUN --security=insecure x\n");
    assert_eq!(e.kind, ErrorKind::Unsupported);
    let e = err("FROM a\nRUN --mount=type=cache x\n");
    assert!(e.message.contains("no target"));
}

#[test]
fn config_instructions_expand_and_normalize() {
    let plan = p(
        "FROM a\nARG PORT=8080\nARG MORE=\"7000 7001/udp\"\nEXPOSE $PORT 53/udp 9000-9001 $MORE 0.0.0.0:80:8443\nVOLUME /data [\"/x\"]\nSTOPSIGNAL SIGQUIT\nLABEL a=1 \"b c\"=\"d e\"\nMAINTAINER someone\nHEALTHCHECK --interval=30s --timeout=3s --retries=3 CMD curl -f localhost || exit 1\n",
    );
    let c = &plan.target().config;
    let ports: Vec<_> = c.exposed_ports.iter().cloned().collect();
    assert_eq!(
        ports,
        [
            "53/udp", "7000/tcp", "7001/udp", "8080/tcp", "8443/tcp", "9000/tcp", "9001/tcp"
        ]
    );
    assert!(
        plan.warnings
            .iter()
            .any(|w| w.message.contains("host port are ignored"))
    );
    assert!(c.volumes.contains("/data"));
    assert_eq!(c.stop_signal, "SIGQUIT");
    assert_eq!(c.labels["b c"], "d e");
    assert_eq!(c.author, "someone");
    let h = c.healthcheck.as_ref().unwrap();
    assert_eq!(h.test, strs(&["CMD-SHELL", "curl -f localhost || exit 1"]));
    assert_eq!(
        (h.interval, h.timeout, h.retries),
        (30_000_000_000, 3_000_000_000, 3)
    );
    assert!(
        plan.warnings
            .iter()
            .any(|w| w.message.contains("MAINTAINER"))
    );
    let c = p("FROM a\nHEALTHCHECK NONE\n").target().config.clone();
    assert_eq!(c.healthcheck.unwrap().test, ["NONE"]);

    let err = |text: &str| make_plan(&parse(text).unwrap(), &request(text, &[])).unwrap_err();
    assert!(err("FROM a\nEXPOSE 80/xtp\n").message.contains("protocol"));
    assert!(
        err("FROM a\nHEALTHCHECK --interval=1us CMD x\n")
            .message
            .contains("1ms")
    );
    assert!(
        err("FROM a\nSTOPSIGNAL sig term\n")
            .message
            .contains("invalid signal")
    );
    for bad in ["SIGNOPE", "0", "RTMIN+99"] {
        let e = err(&format!("FROM a\nSTOPSIGNAL {bad}\n"));
        assert!(e.message.contains("invalid signal"), "{bad}");
    }
    for ok in ["sigterm", "9", "SIGRTMIN+3", "KILL"] {
        let c = p(&format!("FROM a\nSTOPSIGNAL {ok}\n"))
            .target()
            .config
            .clone();
        assert_eq!(c.stop_signal, ok);
    }
    assert!(
        err("FROM a\nENV X=${Y:?required}\n")
            .message
            .contains("Y: required")
    );
}

#[test]
fn structural_errors() {
    let err = |text: &str| {
        let df = parse(text).unwrap();
        make_plan(
            &df,
            &BuildRequest::new(Platform::parse("linux/arm64").unwrap()),
        )
        .unwrap_err()
    };
    let e = err("RUN x\nFROM a\n");
    assert!(e.message.contains("before the first FROM"));
    let e = err("ARG X\n");
    assert!(e.message.contains("no FROM"));
    let e = err("FROM a AS x\nFROM b AS x\n");
    assert_eq!((e.kind, e.line), (ErrorKind::Stage, 2));
    let e = err("ARG IMG\nFROM $IMG\n");
    assert!(e.message.contains("should not be blank"));
    let e = err("FROM alpine\n");
    assert_eq!(e.kind, ErrorKind::Request);
    assert!(e.message.contains("alpine"));
}

#[test]
fn cache_keys_change_with_every_input() {
    let key = |text: &str, args: &[(&str, &str)], inputs: &[(String, String)]| {
        let plan = plan_with(text, args);
        let mut k = "sha256:base".to_string();
        for s in &plan.target().steps {
            k = cache_key(&k, s, inputs);
        }
        k
    };
    let text = "FROM a\nARG V=1\nCOPY . /src/\nRUN make\n";
    let files = vec![("main.c".to_string(), "sha256:aa".to_string())];
    let k1 = key(text, &[], &files);
    assert_eq!(k1, key(text, &[], &files));
    assert_ne!(k1, key(text, &[("V", "2")], &files));
    assert_ne!(
        k1,
        key("FROM a\nARG V=1\nCOPY . /src/\nRUN make all\n", &[], &files)
    );
    let other = vec![("main.c".to_string(), "sha256:bb".to_string())];
    assert_ne!(k1, key(text, &[], &other));
    let plan = plan_with(text, &[]);
    let step = &plan.target().steps[0];
    assert_ne!(
        cache_key("sha256:p1", step, &[]),
        cache_key("sha256:p2", step, &[])
    );
    let swapped = vec![
        ("b".to_string(), "1".to_string()),
        ("a".to_string(), "2".to_string()),
    ];
    let mut sorted = swapped.clone();
    sorted.reverse();
    assert_eq!(
        cache_key("p", step, &swapped),
        cache_key("p", step, &sorted)
    );
}

#[test]
fn copy_inputs_are_matched_against_the_context() {
    let files: Vec<String> = [
        "a.txt",
        "b.txt",
        "go.mod",
        "go.sum",
        "src/main.go",
        "src/x/y.go",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let plan = p(
        "FROM a\nCOPY go.* ./\nCOPY src /src/\nCOPY *.txt ./src/main.go /d/\nRUN make\nCOPY --from=b /x /x\nCOPY missing* /m/\n",
    );
    let steps = &plan.target().steps;
    assert_eq!(
        context_inputs(&steps[0], &files).unwrap(),
        ["go.mod", "go.sum"]
    );
    assert_eq!(
        context_inputs(&steps[1], &files).unwrap(),
        ["src/main.go", "src/x/y.go"]
    );
    assert_eq!(
        context_inputs(&steps[2], &files).unwrap(),
        ["a.txt", "b.txt", "src/main.go"]
    );
    assert!(context_inputs(&steps[3], &files).unwrap().is_empty());
    assert!(context_inputs(&steps[4], &files).unwrap().is_empty());
    let e = context_inputs(&steps[5], &files).unwrap_err();
    assert_eq!((e.kind, e.line), (ErrorKind::Request, 7));
    assert!(e.message.contains("not found in the build context"));
}
