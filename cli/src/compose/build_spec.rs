//! A service's `build:` as the Compose Specification reads it, turned into
//! the [`Request`] `bramble build` runs, without I/O: the short form (a
//! context path) or the long one (`context`, `dockerfile`, `args` as a list
//! or a map, `target`, `platforms`, `no_cache`; [`super::keys`] refused the
//! rest). Paths resolve against the project directory, the Dockerfile
//! against the context. The image is the service's `image` (the build tags
//! it), else `PROJECT-SERVICE:latest` as docker compose names it, in the
//! hub's registry. The platforms: the service's `platform`, else
//! `build.platforms`, else what `bramble build` defaults to.

use std::collections::BTreeMap;
use std::path::{Component, Path, PathBuf};

use serde_yaml_ng::{Mapping, Value};

use super::load::{as_map, scalar};
use super::model::Service;
use crate::build::Request;

/// A service's build, resolved.
#[derive(Debug, Clone, PartialEq)]
pub struct BuildSpec {
    /// `NAME:TAG` the build names and the service runs.
    pub image: String,
    pub request: Request,
    /// `pull_policy: build`: `up` builds it even when the image is there.
    pub always: bool,
}

/// The image a built service runs when it names none: docker compose's
/// `PROJECT-SERVICE`, lower case, tagged `latest`.
pub fn default_image(project: &str, service: &str) -> String {
    format!("{project}-{service}:latest").to_lowercase()
}

/// The build of service `name` (`None` without `build:`); every problem,
/// with its path, into `errs`.
pub fn resolve(
    project: &str,
    name: &str,
    svc: &Service,
    dir: &Path,
    vars: &BTreeMap<String, String>,
    errs: &mut Vec<String>,
) -> Option<BuildSpec> {
    let build = svc.build.as_ref()?;
    let path = format!("services.{name}.build");
    let before = errs.len();
    let field = |k: &str| build.as_mapping().and_then(|m| m.get(k));
    let text = |k: &str, errs: &mut Vec<String>| match field(k) {
        None | Some(Value::Null) => None,
        Some(v) => {
            let s = scalar(v);
            if s.is_none() {
                errs.push(format!("{path}.{k}: must be a string"));
            }
            s
        }
    };
    let context = match build {
        Value::String(s) => Some(s.clone()),
        Value::Mapping(_) => text("context", errs),
        _ => {
            errs.push(format!(
                "{path}: must be a context path or a mapping (context, dockerfile, args, …)"
            ));
            return None;
        }
    }
    .unwrap_or_else(|| ".".into());
    if context.contains("://") || context.starts_with("git@") {
        errs.push(format!(
            "{path}.context: {context:?}: a remote context is not supported: clone it and give its directory"
        ));
    }
    let context: PathBuf = dir
        .join(&context)
        .components()
        .filter(|c| !matches!(c, Component::CurDir))
        .collect();
    let file = text("dockerfile", errs).map(|f| context.join(f));
    let mut build_args = BTreeMap::new();
    if let Some(args) = field("args") {
        if !matches!(args, Value::Mapping(_) | Value::Sequence(_)) {
            errs.push(format!(
                "{path}.args: must be a list of KEY=VALUE or a mapping"
            ));
        }
        for (k, v) in as_map(args) {
            if k.is_empty() {
                errs.push(format!("{path}.args: an argument without a name"));
                continue;
            }
            // A bare KEY takes its value from the environment (or `.env`);
            // unset, the argument is left out, as docker compose does.
            let value = match &v {
                Value::Null => vars.get(&k).cloned(),
                v => scalar(v),
            };
            match value {
                Some(value) => {
                    build_args.insert(k, value);
                }
                None if v.is_null() => {}
                None => errs.push(format!("{path}.args.{k}: must be a string")),
            }
        }
    }
    let target = text("target", errs);
    let no_cache = match field("no_cache") {
        None | Some(Value::Null) => false,
        Some(Value::Bool(b)) => *b,
        Some(_) => {
            errs.push(format!("{path}.no_cache: must be true or false"));
            false
        }
    };
    let listed: Vec<String> = match field("platforms") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Sequence(s)) => s.iter().filter_map(scalar).collect(),
        Some(_) => {
            errs.push(format!(
                "{path}.platforms: must be a list (e.g. [linux/arm64])"
            ));
            Vec::new()
        }
    };
    let platforms = match &svc.platform {
        Some(p) if !listed.is_empty() && !listed.contains(p) => {
            errs.push(format!(
                "services.{name}.platform: {p:?} is not one of {path}.platforms ({})",
                listed.join(", ")
            ));
            Vec::new()
        }
        Some(p) => vec![p.clone()],
        None if !listed.is_empty() => listed,
        None => crate::build::default_platforms(),
    };
    let image = match &svc.image {
        Some(image) => {
            match bramble_images::Reference::parse(image) {
                Ok(r) if r.registry().is_some() => errs.push(format!(
                    "services.{name}.image: {image:?}: a built image goes to the hub's registry: name it without a registry host (e.g. {}:{})",
                    r.repository(),
                    r.manifest_reference()
                )),
                Ok(r) if r.digest().is_some() => errs.push(format!(
                    "services.{name}.image: {image:?}: a build names its image by a tag, not a digest (e.g. {}:1)",
                    r.repository()
                )),
                Ok(_) => {}
                Err(e) => errs.push(format!("services.{name}.image: {image:?}: {e}")),
            }
            image.clone()
        }
        None => default_image(project, name),
    };
    if errs.len() > before {
        return None;
    }
    Some(BuildSpec {
        always: svc.pull_policy.as_deref() == Some("build"),
        image: image.clone(),
        request: Request {
            context,
            file,
            build_args,
            target,
            platforms,
            tag: Some(image),
            no_cache,
        },
    })
}

impl BuildSpec {
    /// The build section as `compose config` prints it: the long form,
    /// with the absolute context and the Dockerfile it reads.
    pub fn to_yaml(&self) -> Value {
        let r = &self.request;
        let mut m = Mapping::new();
        let s = |s: &str| Value::String(s.to_string());
        m.insert(s("context"), s(&r.context.display().to_string()));
        let dockerfile = match &r.file {
            Some(f) => f
                .strip_prefix(&r.context)
                .unwrap_or(f)
                .display()
                .to_string(),
            None => "Dockerfile".into(),
        };
        m.insert(s("dockerfile"), s(&dockerfile));
        if !r.build_args.is_empty() {
            let args: Mapping = r.build_args.iter().map(|(k, v)| (s(k), s(v))).collect();
            m.insert(s("args"), Value::Mapping(args));
        }
        if let Some(t) = &r.target {
            m.insert(s("target"), s(t));
        }
        m.insert(
            s("platforms"),
            Value::Sequence(r.platforms.iter().map(|p| s(p)).collect()),
        );
        if r.no_cache {
            m.insert(s("no_cache"), Value::Bool(true));
        }
        Value::Mapping(m)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn svc(yaml: &str) -> Service {
        serde_yaml_ng::from_str(yaml).unwrap()
    }

    fn resolve_ok(yaml: &str, vars: &[(&str, &str)]) -> BuildSpec {
        let vars = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let mut errs = Vec::new();
        let b = resolve(
            "Demo",
            "web",
            &svc(yaml),
            Path::new("/proj"),
            &vars,
            &mut errs,
        );
        assert!(errs.is_empty(), "{errs:?}");
        b.expect("a build")
    }

    fn resolve_err(yaml: &str) -> Vec<String> {
        let mut errs = Vec::new();
        let b = resolve(
            "demo",
            "web",
            &svc(yaml),
            Path::new("/proj"),
            &BTreeMap::new(),
            &mut errs,
        );
        assert!(b.is_none());
        errs
    }

    #[test]
    fn the_short_form_is_a_context_and_the_image_is_named_after_project_and_service() {
        let b = resolve_ok("build: ./app\n", &[]);
        assert_eq!(b.image, "demo-web:latest");
        assert_eq!(b.request.context, Path::new("/proj/app"));
        assert_eq!(b.request.file, None);
        assert_eq!(b.request.tag.as_deref(), Some("demo-web:latest"));
        assert_eq!(b.request.platforms, crate::build::default_platforms());
        assert!(b.request.build_args.is_empty() && !b.request.no_cache && !b.always);
        assert!(resolve_ok("pull_policy: build\nbuild: .\n", &[]).always);
        assert!(resolve_ok("build: {}\n", &[]).request.context == Path::new("/proj"));
    }

    #[test]
    fn the_long_form_resolves_every_key_and_the_service_image_is_the_tag() {
        let b = resolve_ok(
            "image: team/web:2\nbuild:\n  context: backend\n  dockerfile: docker/Dockerfile.prod\n  args: [A=1, FROM_ENV, UNSET, B=x=y]\n  target: builder\n  platforms: [linux/arm64, linux/arm/v7]\n  no_cache: true\n",
            &[("FROM_ENV", "e")],
        );
        assert_eq!(b.image, "team/web:2");
        assert_eq!(
            b.request.file.as_deref(),
            Some(Path::new("/proj/backend/docker/Dockerfile.prod"))
        );
        let args: Vec<_> = b
            .request
            .build_args
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        assert_eq!(args, ["A=1", "B=x=y", "FROM_ENV=e"]);
        assert_eq!(b.request.target.as_deref(), Some("builder"));
        assert_eq!(b.request.platforms, ["linux/arm64", "linux/arm/v7"]);
        assert!(b.request.no_cache);
        // A mapping of args, numbers as text.
        let b = resolve_ok("build:\n  args: {N: 3, E: ''}\n", &[]);
        assert_eq!(b.request.build_args["N"], "3");
        assert_eq!(b.request.build_args["E"], "");
    }

    #[test]
    fn the_service_platform_wins_and_must_be_one_of_the_build_platforms() {
        let b = resolve_ok("platform: linux/arm/v7\nbuild: .\n", &[]);
        assert_eq!(b.request.platforms, ["linux/arm/v7"]);
        let e = resolve_err("platform: linux/riscv64\nbuild: {platforms: [linux/arm64]}\n");
        assert_eq!(
            e,
            [
                "services.web.platform: \"linux/riscv64\" is not one of services.web.build.platforms (linux/arm64)"
            ]
        );
    }

    #[test]
    fn bad_builds_are_refused_with_their_path() {
        let e = resolve_err("image: registry.example.com/web:1\nbuild: .\n");
        assert!(e[0].starts_with("services.web.image: \"registry.example.com/web:1\": a built image goes to the hub's registry"), "{e:?}");
        let e = resolve_err("build: https://github.com/docker/app.git\n");
        assert!(e[0].starts_with("services.web.build.context:"), "{e:?}");
        let e = resolve_err("build: {args: 3, no_cache: maybe, platforms: linux/arm64}\n");
        assert_eq!(e.len(), 3, "{e:?}");
        assert!(e[0].starts_with("services.web.build.args:"), "{e:?}");
        assert!(e[1].starts_with("services.web.build.no_cache:"), "{e:?}");
        assert!(e[2].starts_with("services.web.build.platforms:"), "{e:?}");
        let e = resolve_err("build: [a]\n");
        assert!(e[0].starts_with("services.web.build: must be"), "{e:?}");
    }

    #[test]
    fn config_prints_the_long_form() {
        let b = resolve_ok(
            "build:\n  context: app\n  dockerfile: Dockerfile.dev\n  args: [A=1]\n",
            &[],
        );
        let y = serde_yaml_ng::to_string(&b.to_yaml()).unwrap();
        let platform = &crate::build::default_platforms()[0];
        assert_eq!(
            y,
            format!(
                "context: /proj/app\ndockerfile: Dockerfile.dev\nargs:\n  A: '1'\nplatforms:\n- {platform}\n"
            )
        );
    }
}
