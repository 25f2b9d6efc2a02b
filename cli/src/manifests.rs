//! Manifests named by `-f`: which files, in which order, parsed into objects.
//!
//! Everything is read and parsed before anything is sent, so a syntax error or
//! an unknown kind anywhere stops the command with nothing half-applied.

use std::io::Read;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use bramble_api::ResourceInfo;
use serde_json::Value;

/// File extensions picked up from directories.
pub const EXTENSIONS: &[&str] = &["yaml", "yml", "json"];

/// Where manifest text comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    Stdin,
    File(PathBuf),
}

impl Source {
    /// How the source is named in messages (`STDIN`, as kubectl does, or the path).
    pub fn display_name(&self) -> String {
        match self {
            Source::Stdin => "STDIN".into(),
            Source::File(p) => p.display().to_string(),
        }
    }
}

/// One object from a manifest, resolved to its kind, ready to send.
#[derive(Debug, Clone)]
pub struct Manifest {
    /// File name (or `STDIN`) the object came from.
    pub source: String,
    /// 1-based position of the object in its file.
    pub document: usize,
    pub resource: &'static ResourceInfo,
    pub name: String,
    /// Target namespace for namespaced kinds.
    pub namespace: Option<String>,
    /// The object as written, with `metadata.namespace` filled in.
    pub object: Value,
}

impl Manifest {
    /// `deployment.apps/web`.
    pub fn display(&self) -> String {
        format!("{}/{}", self.resource.display_name(), self.name)
    }

    /// The object's URL path.
    pub fn object_path(&self) -> String {
        self.resource
            .object_path(self.namespace.as_deref(), &self.name)
    }

    /// Its collection's URL path (where it is created).
    pub fn collection_path(&self) -> String {
        self.resource.collection_path(self.namespace.as_deref())
    }
}

/// Expands `-f` arguments into sources: `-` is stdin, a file is itself, a
/// directory contributes its `.yaml`/`.yml`/`.json` files in name order
/// (and its subdirectories' with `recursive`).
pub fn collect_sources(args: &[String], recursive: bool) -> anyhow::Result<Vec<Source>> {
    let mut out = Vec::new();
    for arg in args {
        if arg == "-" {
            if out.contains(&Source::Stdin) {
                bail!("-f - (standard input) can only be given once");
            }
            out.push(Source::Stdin);
            continue;
        }
        let path = Path::new(arg);
        let meta = std::fs::metadata(path).map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => anyhow::anyhow!("the path {arg:?} does not exist"),
            _ => anyhow::anyhow!("cannot read {arg:?}: {e}"),
        })?;
        if meta.is_dir() {
            let before = out.len();
            walk(path, recursive, &mut out)?;
            if out.len() == before {
                bail!(
                    "no manifests in directory {arg:?}: recognized file extensions are .json .yaml .yml{}",
                    if recursive {
                        ""
                    } else {
                        " (use -R to read subdirectories)"
                    }
                );
            }
        } else {
            out.push(Source::File(path.to_path_buf()));
        }
    }
    Ok(out)
}

fn walk(dir: &Path, recursive: bool, out: &mut Vec<Source>) -> anyhow::Result<()> {
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
        .with_context(|| format!("reading directory {}", dir.display()))?
        .map(|e| e.map(|e| e.path()))
        .collect::<Result<_, _>>()
        .with_context(|| format!("reading directory {}", dir.display()))?;
    entries.sort();
    for path in entries {
        if path.is_dir() {
            if recursive {
                walk(&path, recursive, out)?;
            }
        } else if has_manifest_extension(&path) {
            out.push(Source::File(path));
        }
    }
    Ok(())
}

fn has_manifest_extension(path: &Path) -> bool {
    path.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| EXTENSIONS.contains(&e.to_ascii_lowercase().as_str()))
}

/// Collects the `-f` arguments of `apply`/`delete` and loads them (stdin for
/// `-`); `verb` names the command in the "nothing to do" error.
pub fn load_args(
    filenames: &[String],
    recursive: bool,
    settings: &crate::config::Settings,
    verb: &str,
) -> anyhow::Result<Vec<Manifest>> {
    let sources = collect_sources(filenames, recursive)?;
    let list = load(
        &sources,
        &mut std::io::stdin(),
        &settings.namespace,
        settings.namespace_explicit,
    )?;
    if list.is_empty() {
        bail!("no objects passed to {verb}");
    }
    Ok(list)
}

/// Reads and parses every source, then resolves each object's kind, name and
/// namespace. Any problem anywhere is reported (all of them) before returning.
pub fn load(
    sources: &[Source],
    stdin: &mut dyn Read,
    default_namespace: &str,
    namespace_explicit: bool,
) -> anyhow::Result<Vec<Manifest>> {
    let mut parsed = Vec::new();
    for source in sources {
        let name = source.display_name();
        let text = match source {
            Source::Stdin => {
                let mut s = String::new();
                stdin
                    .read_to_string(&mut s)
                    .context("reading manifests from standard input")?;
                s
            }
            Source::File(p) => {
                std::fs::read_to_string(p).with_context(|| format!("reading {}", p.display()))?
            }
        };
        let docs = bramble_api::parse_documents(&text, &name)?;
        parsed.push((name, docs));
    }

    let mut out = Vec::new();
    let mut errors = Vec::new();
    for (source, docs) in parsed {
        for (i, object) in docs.into_iter().enumerate() {
            match resolve(
                &source,
                i + 1,
                object,
                default_namespace,
                namespace_explicit,
            ) {
                Ok(m) => out.push(m),
                Err(e) => errors.push(e),
            }
        }
    }
    if !errors.is_empty() {
        bail!("{}", errors.join("\n"));
    }
    Ok(out)
}

/// One object made by a command (not read from a file), resolved as
/// [`load`] resolves a file's: its kind, name and namespace.
pub fn from_object(source: &str, object: Value, namespace: &str) -> Result<Manifest, String> {
    resolve(source, 1, object, namespace, false)
}

fn resolve(
    source: &str,
    document: usize,
    mut object: Value,
    default_namespace: &str,
    namespace_explicit: bool,
) -> Result<Manifest, String> {
    let kind = object.get("kind").and_then(Value::as_str).unwrap_or("");
    let name = crate::json::name(&object).to_string();
    let what = match (kind.is_empty(), name.is_empty()) {
        (false, false) => format!("{source}: document {document} ({kind} {name:?})"),
        (false, true) => format!("{source}: document {document} ({kind})"),
        _ => format!("{source}: document {document}"),
    };
    let resource = bramble_api::admit::resource_of(&object).map_err(|e| format!("{what}: {e}"))?;
    if name.is_empty() {
        return Err(format!("{what}: metadata.name is required"));
    }
    let namespace = if resource.namespaced {
        let ns = match crate::json::namespace(&object) {
            Some(ns) if namespace_explicit && ns != default_namespace => {
                return Err(format!(
                    "{what}: the namespace from the object ({ns:?}) does not match the namespace \
                     {default_namespace:?} given with -n: pass --namespace={ns} or remove one of them"
                ));
            }
            Some(ns) if !ns.is_empty() => ns.to_string(),
            _ => default_namespace.to_string(),
        };
        if let Some(meta) = object.get_mut("metadata").and_then(Value::as_object_mut) {
            meta.insert("namespace".into(), Value::String(ns.clone()));
        }
        Some(ns)
    } else {
        None
    };
    Ok(Manifest {
        source: source.to_string(),
        document,
        resource,
        name,
        namespace,
        object,
    })
}

/// Position of a kind in apply order: namespaces first, then the config that
/// pods mount, then everything else (as kubectl orders them).
pub fn apply_rank(kind: &str) -> u8 {
    match kind {
        "Namespace" => 0,
        "ConfigMap" | "Secret" => 1,
        _ => 2,
    }
}

/// Stable sort into apply order; within a rank, file order is kept.
pub fn sort_for_apply(manifests: &mut [Manifest]) {
    manifests.sort_by_key(|m| apply_rank(m.resource.kind));
}

/// Stable sort into delete order: the reverse ranks (namespaces last).
pub fn sort_for_delete(manifests: &mut [Manifest]) {
    manifests.sort_by_key(|m| std::cmp::Reverse(apply_rank(m.resource.kind)));
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    fn names(sources: &[Source], root: &Path) -> Vec<String> {
        sources
            .iter()
            .map(|s| match s {
                Source::Stdin => "-".into(),
                Source::File(p) => p.strip_prefix(root).unwrap().display().to_string(),
            })
            .collect()
    }

    #[test]
    fn collects_directories_sorted_and_filtered() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        for f in ["b.yaml", "a.yml", "c.json", "README.md", "d.YAML"] {
            fs::write(root.join(f), "").unwrap();
        }
        fs::create_dir(root.join("sub")).unwrap();
        fs::write(root.join("sub/x.yaml"), "").unwrap();
        let arg = root.display().to_string();

        let flat = collect_sources(std::slice::from_ref(&arg), false).unwrap();
        assert_eq!(names(&flat, root), ["a.yml", "b.yaml", "c.json", "d.YAML"]);

        let deep = collect_sources(std::slice::from_ref(&arg), true).unwrap();
        assert_eq!(
            names(&deep, root),
            ["a.yml", "b.yaml", "c.json", "d.YAML", "sub/x.yaml"]
        );

        // An explicit file is taken whatever its extension; - is stdin.
        let readme = root.join("README.md").display().to_string();
        let mixed = collect_sources(&[readme, "-".into()], false).unwrap();
        assert_eq!(names(&mixed, root), ["README.md", "-"]);
        assert!(collect_sources(&["-".into(), "-".into()], false).is_err());
    }

    #[test]
    fn missing_paths_and_empty_directories_are_errors() {
        let dir = tempfile::tempdir().unwrap();
        let e = collect_sources(&["/no/such/file.yaml".into()], false).unwrap_err();
        assert_eq!(
            e.to_string(),
            "the path \"/no/such/file.yaml\" does not exist"
        );
        let e = collect_sources(&[dir.path().display().to_string()], false).unwrap_err();
        assert!(e.to_string().contains("recognized file extensions"), "{e}");
    }

    const NS: &str = "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: site\n";
    const CM: &str = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: cfg\n  namespace: site\n";
    const DEPLOY: &str =
        "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\nspec: {}\n";

    fn load_text(text: &str, ns: &str, explicit: bool) -> anyhow::Result<Vec<Manifest>> {
        let mut stdin = text.as_bytes();
        load(&[Source::Stdin], &mut stdin, ns, explicit)
    }

    #[test]
    fn loads_resolves_namespaces_and_orders_for_apply() {
        let text = format!("{DEPLOY}---\n{CM}---\n{NS}");
        let mut ms = load_text(&text, "default", false).unwrap();
        assert_eq!(ms.len(), 3);
        assert_eq!(ms[0].document, 1);
        assert_eq!(ms[0].source, "STDIN");
        assert_eq!(ms[0].namespace.as_deref(), Some("default"));
        assert_eq!(ms[0].object["metadata"]["namespace"], "default");
        assert_eq!(ms[1].namespace.as_deref(), Some("site"));
        assert_eq!(ms[2].namespace, None);

        sort_for_apply(&mut ms);
        let order: Vec<String> = ms.iter().map(Manifest::display).collect();
        assert_eq!(
            order,
            ["namespace/site", "configmap/cfg", "deployment.apps/web"]
        );
        assert_eq!(
            ms[2].object_path(),
            "/apis/apps/v1/namespaces/default/deployments/web"
        );
        assert_eq!(ms[0].collection_path(), "/api/v1/namespaces");

        sort_for_delete(&mut ms);
        let order: Vec<String> = ms.iter().map(Manifest::display).collect();
        assert_eq!(
            order,
            ["deployment.apps/web", "configmap/cfg", "namespace/site"]
        );
    }

    #[test]
    fn apply_order_is_stable_within_a_rank() {
        let text = "apiVersion: v1\nkind: Service\nmetadata: {name: b}\n---\n\
                    apiVersion: v1\nkind: Secret\nmetadata: {name: s}\n---\n\
                    apiVersion: v1\nkind: Pod\nmetadata: {name: a}\n";
        let mut ms = load_text(text, "default", false).unwrap();
        sort_for_apply(&mut ms);
        let order: Vec<&str> = ms.iter().map(|m| m.name.as_str()).collect();
        assert_eq!(order, ["s", "b", "a"]);
    }

    #[test]
    fn reports_every_bad_document_with_file_and_position() {
        let text = format!(
            "{DEPLOY}---\napiVersion: v1\nkind: Widget\nmetadata:\n  name: w\n---\napiVersion: v1\nkind: ConfigMap\n"
        );
        let e = load_text(&text, "default", false).unwrap_err().to_string();
        assert!(
            e.contains("STDIN: document 2 (Widget \"w\"): no kind \"Widget\""),
            "{e}"
        );
        assert!(
            e.contains("STDIN: document 3 (ConfigMap): metadata.name is required"),
            "{e}"
        );
    }

    #[test]
    fn syntax_errors_carry_line_and_column() {
        let dir = tempfile::tempdir().unwrap();
        let good = dir.path().join("a.yaml");
        let bad = dir.path().join("b.yaml");
        fs::write(&good, DEPLOY).unwrap();
        fs::write(
            &bad,
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: [x\n",
        )
        .unwrap();
        let sources = [Source::File(good), Source::File(bad.clone())];
        let e = load(&sources, &mut std::io::empty(), "default", false).unwrap_err();
        let msg = e.to_string();
        assert!(
            msg.starts_with(&format!("{}: line ", bad.display())),
            "{msg}"
        );
        assert!(msg.contains("column"), "{msg}");
    }

    #[test]
    fn explicit_namespace_must_agree_with_the_manifest() {
        let e = load_text(CM, "prod", true).unwrap_err().to_string();
        assert!(e.contains("--namespace=site"), "{e}");
        assert!(load_text(CM, "site", true).is_ok());
        let ms = load_text(DEPLOY, "prod", true).unwrap();
        assert_eq!(ms[0].namespace.as_deref(), Some("prod"));
    }
}
