//! Pods, ConfigMaps and Secrets from YAML files, for the local entry point
//! (`bramble-agent run -f FILE`): parsed, defaulted and validated exactly as
//! the hub admits them, so a file that runs here is accepted there. A file
//! that does not give such objects is a [`ManifestFileError`].

use std::path::{Path, PathBuf};

use bramble_api::decode::decode;
use bramble_api::field::FieldErrors;
use bramble_api::protocol::{Desired, Generation};
use bramble_api::{AdmitError, ManifestError, admit_node_kind};

/// Why the manifest files give no pods to run; a document is named by its
/// file and its number in it (from 1).
#[derive(Debug, thiserror::Error)]
pub enum ManifestFileError {
    #[error("reading {path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// Not YAML documents.
    #[error(transparent)]
    Parse(#[from] ManifestError),
    /// Not admitted as the hub would not admit it.
    #[error("{path} (document {document}): {source}")]
    Admit {
        path: PathBuf,
        document: usize,
        #[source]
        source: AdmitError,
    },
    #[error("{path} (document {document}): {source}")]
    Invalid {
        path: PathBuf,
        document: usize,
        #[source]
        source: FieldErrors,
    },
    #[error(
        "{path} (document {document}): kind {kind} is not run by the agent alone; give Pods, \
         ConfigMaps and Secrets (or apply it to a hub)"
    )]
    Kind {
        path: PathBuf,
        document: usize,
        kind: String,
    },
}

/// Reads every document of every file into one desired set (generation 1,
/// no pod network), as a hub would send it; other kinds are an error (this
/// entry point runs pods only). The node loop turns its ConfigMaps and
/// Secrets into pod inputs as it does a hub's.
pub fn load(paths: &[impl AsRef<Path>]) -> Result<Desired, ManifestFileError> {
    let mut out = Desired {
        generation: Generation(1),
        pods: Vec::new(),
        config_maps: Vec::new(),
        secrets: Vec::new(),
        network: None,
        volumes: Vec::new(),
        reclaim: Vec::new(),
        builds: Vec::new(),
    };
    for path in paths {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|source| ManifestFileError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        let docs = bramble_api::parse_documents(&text, &path.display().to_string())?;
        for (i, doc) in docs.into_iter().enumerate() {
            let document = i + 1;
            let kind_named = doc["kind"].as_str().unwrap_or("").to_string();
            let admitted = admit_node_kind(doc)
                .map_err(|source| ManifestFileError::Admit {
                    path: path.to_path_buf(),
                    document,
                    source,
                })?
                .ok_or_else(|| ManifestFileError::Kind {
                    path: path.to_path_buf(),
                    document,
                    kind: kind_named,
                })?;
            let kind = admitted.resource.kind;
            let object = admitted.object;
            let bad = |source: FieldErrors| ManifestFileError::Invalid {
                path: path.to_path_buf(),
                document,
                source,
            };
            match kind {
                "Pod" => out.pods.push(decode(object).map_err(bad)?),
                "ConfigMap" => out.config_maps.push(decode(object).map_err(bad)?),
                "Secret" => out.secrets.push(decode(object).map_err(bad)?),
                other => {
                    return Err(ManifestFileError::Kind {
                        path: path.to_path_buf(),
                        document,
                        kind: other.to_string(),
                    });
                }
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pods_and_their_inputs_load_and_other_kinds_are_refused_by_name() {
        let tmp = tempfile::tempdir().unwrap();
        let ok = tmp.path().join("ok.yaml");
        std::fs::write(
            &ok,
            "apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec: {containers: [{name: c, image: busybox}]}\n\
             ---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\ndata: {k: v}\n",
        )
        .unwrap();
        let d = load(&[&ok]).unwrap();
        assert_eq!((d.pods.len(), d.config_maps.len()), (1, 1));
        assert_eq!(
            d.pods[0].spec.restart_policy(),
            "Always",
            "defaults applied"
        );

        let deploy = tmp.path().join("deploy.yaml");
        std::fs::write(
            &deploy,
            "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: web}\nspec: {}\n",
        )
        .unwrap();
        let e = load(&[&deploy]).unwrap_err();
        assert!(
            matches!(e, ManifestFileError::Kind { ref kind, .. } if kind == "Deployment"),
            "{e}"
        );
        assert!(
            e.to_string()
                .contains("kind Deployment is not run by the agent alone"),
            "{e}"
        );

        let bad = tmp.path().join("bad.yaml");
        std::fs::write(
            &bad,
            "apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec: {containers: [{name: c}]}\n",
        )
        .unwrap();
        let e = load(&[&bad]).unwrap_err();
        assert!(matches!(e, ManifestFileError::Admit { .. }), "{e}");
        assert!(
            e.to_string()
                .contains("spec.containers[0].image: Required value"),
            "{e}"
        );
    }
}
