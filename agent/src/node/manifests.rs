//! Pods, ConfigMaps and Secrets from YAML files, for the local entry point
//! (`bramble-agent run -f FILE`): parsed, defaulted and validated exactly as
//! the hub admits them, so a file that runs here is accepted there. A file
//! that does not give such objects is a [`ManifestFileError`].

use std::path::{Path, PathBuf};

use bramble_api::decode::decode;
use bramble_api::field::FieldErrors;
use bramble_api::objects::core::ConfigMap;
use bramble_api::objects::pod::Pod;
use bramble_api::objects::secret::Secret;
use bramble_api::{AdmitError, ManifestError, admit};

use crate::pod::PodInputs;

/// The desired pods and what they reference.
#[derive(Debug, Default)]
pub struct Manifests {
    pub pods: Vec<Pod>,
    pub inputs: PodInputs,
}

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

/// Reads every document of every file; other kinds are an error (this
/// entry point runs pods only).
pub fn load(paths: &[impl AsRef<Path>]) -> Result<Manifests, ManifestFileError> {
    let mut out = Manifests::default();
    for path in paths {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|source| ManifestFileError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        let docs = bramble_api::parse_documents(&text, &path.display().to_string())?;
        for (i, doc) in docs.into_iter().enumerate() {
            let document = i + 1;
            let admitted = admit(doc).map_err(|source| ManifestFileError::Admit {
                path: path.to_path_buf(),
                document,
                source,
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
                "ConfigMap" => {
                    let cm: ConfigMap = decode(object).map_err(bad)?;
                    out.inputs.config_maps.insert(
                        cm.metadata.key().to_string(),
                        cm.data
                            .into_iter()
                            .map(|(k, v)| (k, v.into_bytes()))
                            .collect(),
                    );
                }
                "Secret" => {
                    let s: Secret = decode(object).map_err(bad)?;
                    let mut data = s.decoded_data();
                    for (k, v) in &s.string_data {
                        data.insert(k.clone(), v.clone().into_bytes());
                    }
                    let key = s.metadata.key().to_string();
                    out.inputs.secrets.insert(key, data);
                }
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
