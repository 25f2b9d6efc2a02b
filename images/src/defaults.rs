//! Image config defaults merged with a pod's container spec, the way Kubernetes
//! (kubelet + containerd's CRI) does it:
//!
//! | `command` | `args` | process argv                         |
//! |-----------|--------|--------------------------------------|
//! | –         | –      | image `Entrypoint` + `Cmd`           |
//! | set       | –      | `command` (image Entrypoint and Cmd ignored) |
//! | –         | set    | image `Entrypoint` + `args`          |
//! | set       | set    | `command` + `args`                   |
//!
//! `$(VAR)` in `command` and `args` expands to the container's env var `VAR`
//! (`$$(VAR)` is a literal `$(VAR)`; unknown names stay as they are), as in
//! Kubernetes; the image's Entrypoint/Cmd are never expanded.
//!
//! Env: the image's `Env`, then the container's env overriding by name (an
//! overridden variable keeps its place, new ones are appended); `PATH` gets
//! the usual default when neither sets it. Working directory: the container's
//! `workingDir`, else the image's `WorkingDir`, else `/`. User: the image's
//! `User` (`user[:group]`, names or numbers), `securityContext.runAsUser`
//! replacing all of it and `runAsGroup` its group, as containerd's CRI
//! does; all numbers give the ids (a uid alone runs with gid 0), a name
//! leaves a [`ProcessUser::Lookup`] that the agent resolves in the image's
//! `/etc/passwd` and `/etc/group` (runc's rules) once the rootfs is
//! mounted, which this pure function does not read. `runAsNonRoot: true`
//! refuses what kubelet refuses: a `runAsUser` of 0, and without
//! `runAsUser` an image that runs as root or whose user is a name (which
//! cannot be verified before the container exists).

use bramble_api::objects::container::Container;
use oci_spec::image::ImageConfiguration;

/// The `PATH` a process gets when neither image nor container sets one
/// (containerd's and Docker's default).
pub const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// A port the image declares (`ExposedPorts`), informational.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ExposedPort {
    pub port: u16,
    /// `tcp`, `udp` or `sctp`.
    pub protocol: String,
}

/// What to run: the merged process settings for one container.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProcessDefaults {
    /// Executable and arguments; never empty.
    pub argv: Vec<String>,
    /// `NAME=value` entries, image first, container overrides in place.
    pub env: Vec<String>,
    /// Absolute working directory.
    pub cwd: String,
    pub user: ProcessUser,
    /// Sorted by port, then protocol.
    pub exposed_ports: Vec<ExposedPort>,
}

/// Who the process runs as.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProcessUser {
    /// Numeric ids: nothing to look up.
    Ids { uid: u32, gid: u32 },
    /// `user[:group]` with a name in it, to resolve in the image's
    /// `/etc/passwd` and `/etc/group` when the container is created.
    Lookup(String),
}

/// Why the defaults cannot be computed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DefaultsError {
    #[error(
        "container {container:?}: nothing to run: the image has no Entrypoint or Cmd and the \
         container sets no `command`{}; set `command` (and `args`) in the pod spec",
        if *.args_only { " (only `args`, which need an Entrypoint)" } else { "" }
    )]
    NoCommand { container: String, args_only: bool },
    #[error(
        "container {container:?}: container's runAsUser breaks non-root policy (runAsNonRoot \
         is true and runAsUser is 0)"
    )]
    RunAsRoot { container: String },
    #[error(
        "container {container:?}: container has runAsNonRoot and image will run as root; set \
         securityContext.runAsUser to a non-zero uid or use an image with a non-root USER"
    )]
    ImageRunsAsRoot { container: String },
    #[error(
        "container {container:?}: container has runAsNonRoot and image has non-numeric user \
         ({user}), cannot verify user is non-root; set securityContext.runAsUser to the \
         user's numeric uid"
    )]
    NonNumericUser { container: String, user: String },
    #[error("container {container:?}: {field} {value} is not a valid id (0 to 4294967295)")]
    InvalidId {
        container: String,
        field: &'static str,
        value: i64,
    },
    #[error(
        "container {container:?}: the image's ExposedPorts entry {entry:?} is invalid \
         (expected `port` or `port/tcp|udp|sctp`)"
    )]
    ExposedPort { container: String, entry: String },
    #[error("container {container:?}: working directory {dir:?} must be an absolute path")]
    RelativeWorkingDir { container: String, dir: String },
    #[error("container {container:?}: the image's Env entry {entry:?} is not NAME=value")]
    ImageEnv { container: String, entry: String },
}

/// The container's own env with literal values, in order (`env` entries that
/// use `valueFrom` are skipped: resolving ConfigMaps, Secrets and the downward
/// API is the agent's job, and it passes the resolved list to
/// [`process_defaults`]).
pub fn literal_env(container: &Container) -> Vec<(String, String)> {
    container
        .env
        .iter()
        .filter(|e| e.value_from.is_none())
        .map(|e| (e.name.clone(), e.value.clone().unwrap_or_default()))
        .collect()
}

/// Merges `image`'s config with `container`. `container_env` is the
/// container's env, already resolved (`envFrom` then `env`, in order; a later
/// entry of the same name wins); see [`literal_env`] for the simple case.
pub fn process_defaults(
    image: &ImageConfiguration,
    container: &Container,
    container_env: &[(String, String)],
) -> Result<ProcessDefaults, DefaultsError> {
    let name = &container.name;
    let cfg = image.config().as_ref();
    let entrypoint = cfg.and_then(|c| c.entrypoint().clone()).unwrap_or_default();
    let cmd = cfg.and_then(|c| c.cmd().clone()).unwrap_or_default();
    let expand_all =
        |v: &[String]| -> Vec<String> { v.iter().map(|s| expand(s, container_env)).collect() };
    let argv: Vec<String> = match (container.command.is_empty(), container.args.is_empty()) {
        (true, true) => entrypoint.into_iter().chain(cmd).collect(),
        (false, true) => expand_all(&container.command),
        (true, false) => entrypoint
            .into_iter()
            .chain(expand_all(&container.args))
            .collect(),
        (false, false) => expand_all(&container.command)
            .into_iter()
            .chain(expand_all(&container.args))
            .collect(),
    };
    if argv.is_empty() || argv[0].is_empty() {
        return Err(DefaultsError::NoCommand {
            container: name.clone(),
            args_only: container.command.is_empty() && !container.args.is_empty(),
        });
    }

    // Env: image first, container overriding by name.
    let mut env: Vec<(String, String)> = Vec::new();
    for entry in cfg.and_then(|c| c.env().as_ref()).into_iter().flatten() {
        let (k, v) = match entry.split_once('=') {
            Some((k, v)) if !k.is_empty() => (k, v),
            // Docker allows a bare `NAME` in Env; it means an empty value.
            None if !entry.is_empty() => (entry.as_str(), ""),
            _ => {
                return Err(DefaultsError::ImageEnv {
                    container: name.clone(),
                    entry: entry.clone(),
                });
            }
        };
        set_env(&mut env, k, v);
    }
    for (k, v) in container_env {
        set_env(&mut env, k, v);
    }
    if !env.iter().any(|(k, _)| k == "PATH") {
        env.insert(0, ("PATH".into(), DEFAULT_PATH.into()));
    }

    let cwd = match container.working_dir.as_deref().filter(|w| !w.is_empty()) {
        Some(w) => w.to_string(),
        None => cfg
            .and_then(|c| c.working_dir().clone())
            .filter(|w| !w.is_empty())
            .unwrap_or_else(|| "/".into()),
    };
    if !cwd.starts_with('/') {
        return Err(DefaultsError::RelativeWorkingDir {
            container: name.clone(),
            dir: cwd,
        });
    }

    let user = user(image, container)?;

    let mut exposed_ports = Vec::new();
    for entry in cfg
        .and_then(|c| c.exposed_ports().as_ref())
        .into_iter()
        .flatten()
    {
        exposed_ports.push(parse_port(entry).ok_or_else(|| DefaultsError::ExposedPort {
            container: name.clone(),
            entry: entry.clone(),
        })?);
    }
    exposed_ports.sort();
    exposed_ports.dedup();

    Ok(ProcessDefaults {
        argv,
        env: env.into_iter().map(|(k, v)| format!("{k}={v}")).collect(),
        cwd,
        user,
        exposed_ports,
    })
}

fn set_env(env: &mut Vec<(String, String)>, k: &str, v: &str) {
    match env.iter_mut().find(|(name, _)| name == k) {
        Some(slot) => slot.1 = v.to_string(),
        None => env.push((k.to_string(), v.to_string())),
    }
}

/// The process's user: the image's `User`, overridden by the security
/// context, checked against `runAsNonRoot`.
fn user(image: &ImageConfiguration, container: &Container) -> Result<ProcessUser, DefaultsError> {
    let name = &container.name;
    let sc = container.security_context.as_ref();
    let run_as_user = sc.and_then(|s| s.run_as_user);
    let run_as_group = sc.and_then(|s| s.run_as_group);
    let id = |field: &'static str, value: i64| {
        u32::try_from(value).map_err(|_| DefaultsError::InvalidId {
            container: name.clone(),
            field,
            value,
        })
    };
    let image_user = image
        .config()
        .as_ref()
        .and_then(|c| c.user().clone())
        .unwrap_or_default();
    let (img_u, img_g) = match image_user.split_once(':') {
        Some((u, g)) => (u, Some(g).filter(|g| !g.is_empty())),
        None => (image_user.as_str(), None),
    };
    let user = match run_as_user {
        Some(u) => id("securityContext.runAsUser", u)?.to_string(),
        None if img_u.is_empty() => "0".to_string(),
        None => img_u.to_string(),
    };
    let group = match run_as_group {
        Some(g) => Some(id("securityContext.runAsGroup", g)?.to_string()),
        // runAsUser alone replaces the whole image user (as containerd does).
        None if run_as_user.is_some() => None,
        None => img_g.map(str::to_string),
    };
    if sc.and_then(|s| s.run_as_non_root) == Some(true) {
        // kubelet's verifyRunAsNonRoot.
        let container = name.clone();
        match run_as_user {
            Some(0) => return Err(DefaultsError::RunAsRoot { container }),
            Some(_) => {}
            None => match user.parse::<u32>() {
                Ok(0) => return Err(DefaultsError::ImageRunsAsRoot { container }),
                Ok(_) => {}
                Err(_) => {
                    return Err(DefaultsError::NonNumericUser {
                        container,
                        user: user.clone(),
                    });
                }
            },
        }
    }
    let number = |s: &str| s.parse::<u32>().ok();
    Ok(match (number(&user), group.as_deref().map(number)) {
        (Some(uid), None) => ProcessUser::Ids { uid, gid: 0 },
        (Some(uid), Some(Some(gid))) => ProcessUser::Ids { uid, gid },
        _ => ProcessUser::Lookup(match group {
            Some(g) => format!("{user}:{g}"),
            None => user,
        }),
    })
}

/// `80`, `80/tcp`, `53/udp`.
fn parse_port(entry: &str) -> Option<ExposedPort> {
    let (port, proto) = entry.split_once('/').unwrap_or((entry, "tcp"));
    let port: u16 = port.parse().ok().filter(|p| *p > 0)?;
    let proto = proto.to_ascii_lowercase();
    matches!(proto.as_str(), "tcp" | "udp" | "sctp").then_some(ExposedPort {
        port,
        protocol: proto,
    })
}

/// Kubernetes `$(VAR)` expansion against the container's env.
pub fn expand(s: &str, env: &[(String, String)]) -> String {
    let lookup = |k: &str| {
        env.iter()
            .rev()
            .find(|(n, _)| n == k)
            .map(|(_, v)| v.as_str())
    };
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find('$') {
        out.push_str(&rest[..i]);
        let after = &rest[i + 1..];
        if let Some(tail) = after.strip_prefix('$') {
            // `$$` is an escaped `$`.
            out.push('$');
            rest = tail;
        } else if let Some(inner) = after.strip_prefix('(')
            && let Some(close) = inner.find(')')
        {
            let var = &inner[..close];
            match lookup(var) {
                Some(v) => out.push_str(v),
                None => {
                    out.push_str("$(");
                    out.push_str(var);
                    out.push(')');
                }
            }
            rest = &inner[close + 1..];
        } else {
            out.push('$');
            rest = after;
        }
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use bramble_api::objects::container::SecurityContext;
    use serde_json::json;

    fn image(config: serde_json::Value) -> ImageConfiguration {
        serde_json::from_value(json!({
            "architecture": "arm64", "os": "linux",
            "rootfs": {"type": "layers", "diff_ids": []},
            "config": config,
        }))
        .unwrap()
    }

    fn nginxish() -> ImageConfiguration {
        image(json!({
            "Entrypoint": ["/docker-entrypoint.sh"],
            "Cmd": ["nginx", "-g", "daemon off;"],
            "Env": ["PATH=/usr/sbin:/usr/bin", "NGINX_VERSION=1.27", "A=1"],
            "WorkingDir": "/srv",
            "User": "101:102",
            "ExposedPorts": {"80/tcp": {}, "53/udp": {}, "8080": {}},
        }))
    }

    fn container(command: &[&str], args: &[&str]) -> Container {
        Container {
            name: "web".into(),
            command: command.iter().map(|s| s.to_string()).collect(),
            args: args.iter().map(|s| s.to_string()).collect(),
            ..Default::default()
        }
    }

    fn argv(img: &ImageConfiguration, c: &Container) -> Vec<String> {
        process_defaults(img, c, &literal_env(c)).unwrap().argv
    }

    #[test]
    fn command_and_args_follow_kubernetes() {
        let img = nginxish();
        assert_eq!(
            argv(&img, &container(&[], &[])),
            ["/docker-entrypoint.sh", "nginx", "-g", "daemon off;"]
        );
        assert_eq!(argv(&img, &container(&["/bin/sh"], &[])), ["/bin/sh"]);
        assert_eq!(
            argv(&img, &container(&[], &["echo", "hi"])),
            ["/docker-entrypoint.sh", "echo", "hi"]
        );
        assert_eq!(
            argv(&img, &container(&["/bin/sh"], &["-c", "x"])),
            ["/bin/sh", "-c", "x"]
        );
        // No entrypoint: args alone are the argv.
        let cmd_only = image(json!({"Cmd": ["sh"]}));
        assert_eq!(argv(&cmd_only, &container(&[], &["ls", "/"])), ["ls", "/"]);
        assert_eq!(argv(&cmd_only, &container(&[], &[])), ["sh"]);
    }

    #[test]
    fn nothing_to_run_is_a_clear_error() {
        let empty = image(json!({}));
        let e = process_defaults(&empty, &container(&[], &[]), &[]).unwrap_err();
        assert!(matches!(
            e,
            DefaultsError::NoCommand {
                args_only: false,
                ..
            }
        ));
        assert!(e.to_string().contains("set `command`"), "{e}");
        let no_config: ImageConfiguration = serde_json::from_value(json!({
            "architecture": "arm64", "os": "linux",
            "rootfs": {"type": "layers", "diff_ids": []},
        }))
        .unwrap();
        assert!(process_defaults(&no_config, &container(&[], &[]), &[]).is_err());
        assert_eq!(argv(&no_config, &container(&["/app"], &[])), ["/app"]);
    }

    #[test]
    fn env_merges_by_name_and_expands_in_command() {
        let img = nginxish();
        let mut c = container(&["/bin/echo"], &["$(GREETING) $(NOPE) $$(GREETING)"]);
        c.env = vec![
            bramble_api::objects::env::EnvVar {
                name: "A".into(),
                value: Some("2".into()),
                value_from: None,
            },
            bramble_api::objects::env::EnvVar {
                name: "GREETING".into(),
                value: Some("hi".into()),
                value_from: None,
            },
        ];
        let d = process_defaults(&img, &c, &literal_env(&c)).unwrap();
        assert_eq!(
            d.env,
            [
                "PATH=/usr/sbin:/usr/bin",
                "NGINX_VERSION=1.27",
                "A=2",
                "GREETING=hi"
            ]
        );
        assert_eq!(d.argv, ["/bin/echo", "hi $(NOPE) $(GREETING)"]);
        // Default PATH when nobody sets one.
        let d =
            process_defaults(&image(json!({"Cmd": ["sh"]})), &container(&[], &[]), &[]).unwrap();
        assert_eq!(d.env, [format!("PATH={DEFAULT_PATH}")]);
    }

    #[test]
    fn working_dir_user_and_ports() {
        let img = nginxish();
        let d = process_defaults(&img, &container(&[], &[]), &[]).unwrap();
        assert_eq!((d.cwd.as_str(), d.user.clone()), ("/srv", ids(101, 102)));
        let port = |port, p: &str| ExposedPort {
            port,
            protocol: p.into(),
        };
        assert_eq!(
            d.exposed_ports,
            [port(53, "udp"), port(80, "tcp"), port(8080, "tcp")]
        );
        let mut c = container(&[], &[]);
        c.working_dir = Some("/data".into());
        c.security_context = Some(SecurityContext {
            run_as_user: Some(1000),
            ..Default::default()
        });
        let d = process_defaults(&img, &c, &[]).unwrap();
        assert_eq!((d.cwd.as_str(), d.user), ("/data", ids(1000, 0)));
        c.security_context = Some(SecurityContext {
            run_as_group: Some(5),
            ..Default::default()
        });
        let d = process_defaults(&img, &c, &[]).unwrap();
        assert_eq!(d.user, ids(101, 5));
        let plain = image(json!({"Cmd": ["sh"]}));
        let d = process_defaults(&plain, &container(&[], &[]), &[]).unwrap();
        assert_eq!((d.cwd.as_str(), d.user), ("/", ids(0, 0)));
        let uid_only = image(json!({"Cmd": ["sh"], "User": "65534"}));
        let d = process_defaults(&uid_only, &container(&[], &[]), &[]).unwrap();
        assert_eq!(d.user, ids(65534, 0));
    }

    fn ids(uid: u32, gid: u32) -> ProcessUser {
        ProcessUser::Ids { uid, gid }
    }

    fn user_of(
        image_user: &str,
        sc: Option<SecurityContext>,
    ) -> Result<ProcessUser, DefaultsError> {
        let img = image(json!({"Cmd": ["sh"], "User": image_user}));
        let mut c = container(&[], &[]);
        c.security_context = sc;
        process_defaults(&img, &c, &[]).map(|d| d.user)
    }

    fn sc(
        user: Option<i64>,
        group: Option<i64>,
        non_root: Option<bool>,
    ) -> Option<SecurityContext> {
        Some(SecurityContext {
            run_as_user: user,
            run_as_group: group,
            run_as_non_root: non_root,
            ..Default::default()
        })
    }

    #[test]
    fn user_names_are_left_to_look_up() {
        let lookup = |s: &str| Ok(ProcessUser::Lookup(s.into()));
        assert_eq!(user_of("nginx", None), lookup("nginx"));
        assert_eq!(user_of("app:staff", None), lookup("app:staff"));
        assert_eq!(user_of("1000:staff", None), lookup("1000:staff"));
        assert_eq!(user_of("app:7", None), lookup("app:7"));
        assert_eq!(user_of(":staff", None), lookup("0:staff"));
        assert_eq!(user_of("app:", None), lookup("app"));
        // runAsUser replaces the whole image user, runAsGroup its group.
        assert_eq!(user_of("nginx", sc(Some(101), None, None)), Ok(ids(101, 0)));
        assert_eq!(user_of("app:staff", sc(Some(5), None, None)), Ok(ids(5, 0)));
        assert_eq!(
            user_of("app:staff", sc(None, Some(9), None)),
            lookup("app:9")
        );
        assert_eq!(user_of("7:staff", sc(None, Some(9), None)), Ok(ids(7, 9)));
        let e = user_of("nginx", sc(Some(-1), None, None)).unwrap_err();
        assert!(matches!(e, DefaultsError::InvalidId { .. }), "{e}");
    }

    #[test]
    fn run_as_non_root_follows_kubelet() {
        let non_root = |u| sc(u, None, Some(true));
        let e = user_of("app", non_root(None)).unwrap_err();
        assert_eq!(
            e.to_string(),
            "container \"web\": container has runAsNonRoot and image has non-numeric user (app), \
             cannot verify user is non-root; set securityContext.runAsUser to the user's numeric uid"
        );
        assert_eq!(user_of("app", non_root(Some(1000))), Ok(ids(1000, 0)));
        let e = user_of("", non_root(None)).unwrap_err();
        assert!(matches!(e, DefaultsError::ImageRunsAsRoot { .. }), "{e}");
        let e = user_of("0:5", non_root(None)).unwrap_err();
        assert!(matches!(e, DefaultsError::ImageRunsAsRoot { .. }), "{e}");
        let e = user_of("app", non_root(Some(0))).unwrap_err();
        assert!(matches!(e, DefaultsError::RunAsRoot { .. }), "{e}");
        assert_eq!(
            user_of("1000:staff", non_root(None)),
            Ok(ProcessUser::Lookup("1000:staff".into()))
        );
        assert_eq!(user_of("0", sc(None, None, Some(false))), Ok(ids(0, 0)));
    }

    #[test]
    fn invalid_image_fields_are_errors() {
        let bad_port = image(json!({"Cmd": ["sh"], "ExposedPorts": {"http/tcp": {}}}));
        let e = process_defaults(&bad_port, &container(&[], &[]), &[]).unwrap_err();
        assert!(matches!(e, DefaultsError::ExposedPort { .. }), "{e}");
        let rel = image(json!({"Cmd": ["sh"], "WorkingDir": "srv"}));
        let e = process_defaults(&rel, &container(&[], &[]), &[]).unwrap_err();
        assert!(matches!(e, DefaultsError::RelativeWorkingDir { .. }), "{e}");
        let bare = image(json!({"Cmd": ["sh"], "Env": ["EMPTY", "=x"]}));
        let e = process_defaults(&bare, &container(&[], &[]), &[]).unwrap_err();
        assert!(matches!(e, DefaultsError::ImageEnv { .. }), "{e}");
    }

    #[test]
    fn expansion_rules() {
        let env = vec![("A".to_string(), "1".to_string())];
        assert_eq!(expand("$(A)-$(B)-$$(A)-$A-$", &env), "1-$(B)-$(A)-$A-$");
        assert_eq!(expand("$(A", &env), "$(A");
        assert_eq!(expand("x$$y", &env), "x$y");
    }
}
