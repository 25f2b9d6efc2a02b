//! A build context as the hub sees it: the tar blob `bramble build`
//! uploaded, read once to learn the Dockerfile's text, which files a build
//! may read (the tar's files and symlinks that `.dockerignore` — or
//! `<Dockerfile>.dockerignore` — does not exclude, applied here again
//! whatever the client did) and the digest of each one's content (a
//! symlink's: of its target), which COPY's cache keys are made of. The
//! contexts of unfinished Builds are [`held`] against the registry's
//! collection (a hub restarted hours later plans them again from it).

use std::collections::BTreeMap;
use std::io::Read;
use std::path::Path;

use bramble_dockerfile::ignore::Ignore;
use sha2::{Digest, Sha256};

/// The context blobs of the Builds that have not ended.
pub fn held(
    store: &crate::store::Store,
) -> Result<Vec<bramble_images::Digest>, crate::store::StoreError> {
    let builds = bramble_api::resource::by_plural("bramble.dev", "v1", "builds")
        .expect("builds are registered");
    let list = store.list(builds, None, &bramble_api::Selector::default())?;
    Ok(list
        .items
        .into_iter()
        .filter_map(|v| serde_json::from_value::<bramble_api::objects::Build>(v).ok())
        .filter(|b| !b.finished())
        .filter_map(|b| b.spec.context.digest.parse().ok())
        .collect())
}

/// Largest Dockerfile or ignore file read from a context.
const MAX_TEXT: u64 = 1024 * 1024;

/// Why a context cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ContextError {
    #[error("reading the build context: {0} (upload it again: run bramble build again)")]
    Read(#[from] std::io::Error),
    #[error("the build context has no {0} (give -f with a path inside the context)")]
    NoDockerfile(String),
    #[error("{path} in the build context is larger than 1 MiB")]
    TooLarge { path: String },
    #[error("{path} in the build context is not UTF-8 text")]
    NotText { path: String },
    #[error("{path}: {source} (fix the pattern or remove the line)")]
    Ignore {
        path: String,
        source: bramble_dockerfile::ignore::IgnoreError,
    },
}

/// What a build needs to know of its context.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ContextIndex {
    pub dockerfile: String,
    /// Files and symlinks a build may read, sorted, with content digests.
    pub files: BTreeMap<String, String>,
    /// Files of the tar a build may not read (sent, but ignored).
    pub hidden: Vec<String>,
}

impl ContextIndex {
    /// The readable paths, sorted (what `context_inputs` matches against).
    pub fn paths(&self) -> Vec<String> {
        self.files.keys().cloned().collect()
    }
}

fn clean(path: &Path) -> String {
    path.to_string_lossy()
        .trim_start_matches("./")
        .trim_end_matches('/')
        .to_string()
}

fn hex(d: &[u8]) -> String {
    d.iter().map(|b| format!("{b:02x}")).collect()
}

/// Reads the context tar at `blob`; `dockerfile` is the Dockerfile's path in it.
pub fn read(blob: &Path, dockerfile: &str) -> Result<ContextIndex, ContextError> {
    let mut all = BTreeMap::new();
    let mut texts: BTreeMap<String, String> = BTreeMap::new();
    let specific = format!("{dockerfile}.dockerignore");
    let mut archive = tar::Archive::new(std::fs::File::open(blob)?);
    for entry in archive.entries()? {
        let mut entry = entry?;
        let path = clean(&entry.path()?);
        let kind = entry.header().entry_type();
        let digest = if kind.is_file() {
            if path == dockerfile || path == ".dockerignore" || path == specific {
                if entry.size() > MAX_TEXT {
                    return Err(ContextError::TooLarge { path });
                }
                let mut text = String::new();
                entry
                    .read_to_string(&mut text)
                    .map_err(|_| ContextError::NotText { path: path.clone() })?;
                texts.insert(path.clone(), text.clone());
                hex(&Sha256::digest(text.as_bytes()))
            } else {
                let mut h = Sha256::new();
                std::io::copy(&mut entry, &mut h)?;
                hex(&h.finalize())
            }
        } else if kind.is_symlink() {
            let target = entry
                .link_name()?
                .map(|t| t.to_string_lossy().into_owned())
                .unwrap_or_default();
            hex(&Sha256::digest(format!("symlink:{target}").as_bytes()))
        } else {
            continue;
        };
        all.insert(path, format!("sha256:{digest}"));
    }
    let text = texts
        .get(dockerfile)
        .cloned()
        .ok_or_else(|| ContextError::NoDockerfile(dockerfile.to_string()))?;
    let ignore_path = [specific.as_str(), ".dockerignore"]
        .into_iter()
        .find(|p| texts.contains_key(*p));
    let ignore = match ignore_path {
        Some(p) => Ignore::parse(&texts[p]).map_err(|source| ContextError::Ignore {
            path: p.to_string(),
            source,
        })?,
        None => Ignore::default(),
    };
    let (files, hidden): (BTreeMap<_, _>, BTreeMap<_, _>) =
        all.into_iter().partition(|(p, _)| !ignore.is_ignored(p));
    Ok(ContextIndex {
        dockerfile: text,
        files,
        hidden: hidden.into_keys().collect(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tar_of(entries: &[(&str, &str)]) -> tempfile::NamedTempFile {
        let f = tempfile::NamedTempFile::new().unwrap();
        let mut b = tar::Builder::new(f.reopen().unwrap());
        for (path, content) in entries {
            let mut h = tar::Header::new_gnu();
            if let Some(target) = content.strip_prefix("->") {
                h.set_entry_type(tar::EntryType::Symlink);
                h.set_size(0);
                b.append_link(&mut h, path, target).unwrap();
            } else {
                h.set_size(content.len() as u64);
                h.set_mode(0o644);
                b.append_data(&mut h, path, content.as_bytes()).unwrap();
            }
        }
        b.finish().unwrap();
        f
    }

    #[test]
    fn files_digests_and_what_the_ignore_file_hides() {
        let t = tar_of(&[
            ("Dockerfile", "FROM scratch\n"),
            (".dockerignore", "Dockerfile\n*.log\n"),
            ("app.py", "print(1)\n"),
            ("debug.log", "x"),
            ("link", "->app.py"),
        ]);
        let c = read(t.path(), "Dockerfile").unwrap();
        assert_eq!(c.dockerfile, "FROM scratch\n");
        assert_eq!(c.paths(), [".dockerignore", "app.py", "link"]);
        assert_eq!(c.hidden, ["Dockerfile", "debug.log"]);
        assert_eq!(
            c.files["app.py"],
            format!("sha256:{}", hex(&Sha256::digest(b"print(1)\n")))
        );
        assert_ne!(c.files["link"], c.files["app.py"]);
    }

    #[test]
    fn a_missing_dockerfile_is_named() {
        let t = tar_of(&[("app.py", "x")]);
        let e = read(t.path(), "build/Dockerfile").unwrap_err();
        assert!(e.to_string().contains("no build/Dockerfile"), "{e}");
    }
}
