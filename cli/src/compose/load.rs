//! Finding and reading a project's Compose files as docker compose does:
//! the default file names, `-f` files merged in order by the
//! specification's merge rules, `.env` then the environment for
//! interpolation, the project name (`-p`, `COMPOSE_PROJECT_NAME`, `name:`,
//! else the directory's name, normalised), and active profiles.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Context as _, bail};
use serde_yaml_ng::{Mapping, Value};

use super::interpolate;

/// The file names `compose` looks for, in order of preference.
pub const DEFAULT_FILES: &[&str] = &[
    "compose.yaml",
    "compose.yml",
    "docker-compose.yaml",
    "docker-compose.yml",
];

/// What the command line and the environment say about the project.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// `-f` files; empty: discover one in `cwd` or above.
    pub files: Vec<PathBuf>,
    pub project_name: Option<String>,
    pub profiles: Vec<String>,
    pub cwd: PathBuf,
    /// The process environment.
    pub env: BTreeMap<String, String>,
}

/// A loaded project: the merged, interpolated document and where it lives.
#[derive(Debug, Clone)]
pub struct Loaded {
    pub name: String,
    /// The directory of the first file: relative paths resolve against it.
    pub dir: PathBuf,
    pub files: Vec<PathBuf>,
    pub doc: Value,
    /// Interpolation's variables: the environment over `.env`.
    pub vars: BTreeMap<String, String>,
    pub profiles: Vec<String>,
    pub warnings: Vec<String>,
}

/// The compose file in `dir` or its nearest ancestor that has one.
pub fn discover(dir: &Path) -> anyhow::Result<PathBuf> {
    let mut at = Some(dir);
    while let Some(d) = at {
        let found: Vec<PathBuf> = DEFAULT_FILES
            .iter()
            .map(|f| d.join(f))
            .filter(|p| p.is_file())
            .collect();
        if let Some(first) = found.first() {
            return Ok(first.clone());
        }
        at = d.parent();
    }
    bail!(
        "no configuration file provided: no {} in {} or above (give one with -f FILE)",
        DEFAULT_FILES.join(", "),
        dir.display()
    )
}

/// docker compose's normalisation: lower case, only `a-z0-9_-`, starting
/// with a letter or digit.
pub fn normalize_name(s: &str) -> String {
    let lower: String = s
        .to_lowercase()
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '_' || *c == '-')
        .collect();
    lower.trim_start_matches(['_', '-']).to_string()
}

/// Reads, interpolates and merges the project's files.
pub fn load(opts: &Options) -> anyhow::Result<Loaded> {
    let files = if opts.files.is_empty() {
        vec![discover(&opts.cwd)?]
    } else {
        opts.files.iter().map(|f| opts.cwd.join(f)).collect()
    };
    let dir = files[0]
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| opts.cwd.clone());
    let mut vars = BTreeMap::new();
    let dotenv = dir.join(".env");
    if dotenv.is_file() {
        let env = |k: &str| opts.env.get(k).cloned();
        vars.extend(super::dotenv::read(&dotenv, &env)?);
    }
    vars.extend(opts.env.clone());
    let lookup = |k: &str| vars.get(k).cloned();
    let mut report = interpolate::Report::default();
    let mut merged = Value::Mapping(Mapping::new());
    for f in &files {
        let text =
            std::fs::read_to_string(f).with_context(|| format!("reading {}", f.display()))?;
        let mut doc: Value = serde_yaml_ng::from_str(&text)
            .with_context(|| format!("{}: not a YAML document", f.display()))?;
        if doc.is_null() {
            doc = Value::Mapping(Mapping::new());
        }
        doc.apply_merge()
            .with_context(|| format!("{}: resolving `<<` merge keys", f.display()))?;
        if !doc.is_mapping() {
            bail!(
                "{}: a compose file is a mapping with `services:`",
                f.display()
            );
        }
        interpolate::tree(&mut doc, &lookup, &mut report, "")
            .with_context(|| f.display().to_string())?;
        merge(&mut merged, doc, "");
    }
    let warnings = report
        .unset
        .iter()
        .map(|v| format!("The {v:?} variable is not set. Defaulting to a blank string."))
        .collect();
    let from_file = merged
        .get("name")
        .and_then(Value::as_str)
        .map(str::to_string);
    let raw_name = opts
        .project_name
        .clone()
        .or_else(|| opts.env.get("COMPOSE_PROJECT_NAME").cloned())
        .or(from_file)
        .unwrap_or_else(|| {
            dir.file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default()
        });
    let name = normalize_name(&raw_name);
    if name.is_empty() {
        bail!("project name {raw_name:?} is empty once normalised: give one with -p NAME");
    }
    if let Some(m) = merged.as_mapping_mut() {
        m.insert("name".into(), name.clone().into());
    }
    let mut profiles = opts.profiles.clone();
    if profiles.is_empty()
        && let Some(p) = opts.env.get("COMPOSE_PROFILES")
    {
        profiles = p
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_string)
            .collect();
    }
    Ok(Loaded {
        name,
        dir,
        files,
        doc: merged,
        vars,
        profiles,
        warnings,
    })
}

/// Keys whose sequences replace the earlier file's instead of adding to it.
const REPLACED: &[&str] = &["command", "entrypoint", "test"];
/// Keys written as a list of `K=V` or a mapping, merged by key.
const KEYED_LISTS: &[&str] = &[
    "environment",
    "labels",
    "sysctls",
    "extra_hosts",
    "annotations",
];

/// Merges `over` into `base` per the Compose Specification's merge rules:
/// mappings recursively, `command`/`entrypoint`/`healthcheck.test`
/// replaced, `environment`/`labels` by key, `volumes`/`devices` by their
/// target path, `ports` and other sequences appended without duplicates.
pub fn merge(base: &mut Value, over: Value, key: &str) {
    match (base, over) {
        (Value::Mapping(b), Value::Mapping(o)) => {
            for (k, v) in o {
                let ks = k.as_str().unwrap_or("").to_string();
                match b.get_mut(&k) {
                    Some(existing) => merge(existing, v, &ks),
                    None => {
                        b.insert(k, v);
                    }
                }
            }
        }
        (b, o) if KEYED_LISTS.contains(&key) => {
            let mut m = as_map(b);
            m.extend(as_map(&o));
            *b = Value::Mapping(m.into_iter().map(|(k, v)| (k.into(), v)).collect());
        }
        (Value::Sequence(b), Value::Sequence(o)) if !REPLACED.contains(&key) => {
            for item in o {
                let id = merge_id(key, &item);
                match id.and_then(|id| b.iter().position(|x| merge_id(key, x) == Some(id.clone())))
                {
                    Some(i) => b[i] = item,
                    None if !b.contains(&item) => b.push(item),
                    None => {}
                }
            }
        }
        (b, o) => *b = o,
    }
}

/// The key identifying an entry of a sequence merged by key: the target of
/// a volume or device.
fn merge_id(key: &str, item: &Value) -> Option<String> {
    match (key, item) {
        ("volumes" | "devices", Value::String(s)) => s.split(':').nth(1).map(str::to_string),
        ("volumes", Value::Mapping(_)) => item
            .get("target")
            .and_then(Value::as_str)
            .map(str::to_string),
        _ => None,
    }
}

/// A `K=V` list or a mapping as an ordered map (a bare `K` maps to null).
pub fn as_map(v: &Value) -> BTreeMap<String, Value> {
    match v {
        Value::Mapping(m) => m
            .iter()
            .map(|(k, v)| (scalar(k).unwrap_or_default(), v.clone()))
            .collect(),
        Value::Sequence(items) => items
            .iter()
            .filter_map(scalar)
            .map(|s| match s.split_once('=') {
                Some((k, v)) => (k.to_string(), Value::String(v.to_string())),
                None => (s, Value::Null),
            })
            .collect(),
        _ => BTreeMap::new(),
    }
}

/// A scalar as text (`3306` and `true` too), as compose reads them.
pub fn scalar(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn y(s: &str) -> Value {
        serde_yaml_ng::from_str(s).unwrap()
    }

    #[test]
    fn names_are_normalised_as_docker_does() {
        assert_eq!(normalize_name("My App.v2"), "myappv2");
        assert_eq!(normalize_name("_x-Y_z"), "x-y_z");
        assert_eq!(normalize_name("..."), "");
    }

    #[test]
    fn merge_follows_the_spec() {
        let mut base = y(
            "services:\n  web:\n    image: a\n    command: [x, y]\n    ports: ['80:80']\n    environment: [A=1, B=2]\n    volumes: ['d:/data', 'e:/e']\n",
        );
        let over = y(
            "services:\n  web:\n    image: b\n    command: [z]\n    ports: ['443:443', '80:80']\n    environment: {B: '3', C: '4'}\n    volumes: ['f:/data']\n  db:\n    image: pg\n",
        );
        merge(&mut base, over, "");
        let want = y(
            "services:\n  web:\n    image: b\n    command: [z]\n    ports: ['80:80', '443:443']\n    environment: {A: '1', B: '3', C: '4'}\n    volumes: ['f:/data', 'e:/e']\n  db:\n    image: pg\n",
        );
        assert_eq!(base, want);
    }

    #[test]
    fn load_discovers_interpolates_from_dotenv_and_names_the_project() {
        let dir = tempfile::tempdir().unwrap();
        let proj = dir.path().join("My_Shop");
        std::fs::create_dir(&proj).unwrap();
        std::fs::write(proj.join(".env"), "TAG=1.36\nPORT=8080\n").unwrap();
        std::fs::write(
            proj.join("docker-compose.yml"),
            "services:\n  web:\n    image: busybox:${TAG}\n    ports: ['${PORT}:80']\n    command: echo $$HOME ${MISSING}\n",
        )
        .unwrap();
        let sub = proj.join("sub");
        std::fs::create_dir(&sub).unwrap();
        let mut env = BTreeMap::new();
        env.insert("PORT".to_string(), "9090".to_string());
        let l = load(&Options {
            cwd: sub,
            env,
            ..Options::default()
        })
        .unwrap();
        assert_eq!(l.name, "my_shop");
        assert_eq!(l.doc["services"]["web"]["image"], "busybox:1.36");
        assert_eq!(l.doc["services"]["web"]["ports"][0], "9090:80");
        assert_eq!(l.doc["services"]["web"]["command"], "echo $HOME ");
        assert_eq!(
            l.warnings,
            ["The \"MISSING\" variable is not set. Defaulting to a blank string."]
        );
        let l = load(&Options {
            cwd: proj.clone(),
            project_name: Some("Other".into()),
            ..Options::default()
        })
        .unwrap();
        assert_eq!(l.name, "other");
    }

    #[test]
    fn no_file_is_a_clear_error() {
        let dir = tempfile::tempdir().unwrap();
        let e = load(&Options {
            cwd: dir.path().into(),
            ..Options::default()
        })
        .unwrap_err();
        assert!(
            e.to_string().contains("no configuration file provided"),
            "{e}"
        );
    }
}
