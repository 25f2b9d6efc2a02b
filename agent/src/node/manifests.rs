//! Pods, ConfigMaps and Secrets from YAML files, for the local entry point
//! (`bramble-agent run -f FILE`): parsed, defaulted and validated exactly as
//! the hub admits them, so a file that runs here is accepted there.

use std::path::Path;

use bramble_api::admit;
use bramble_api::decode::decode;
use bramble_api::objects::core::ConfigMap;
use bramble_api::objects::pod::Pod;
use bramble_api::objects::secret::Secret;

use crate::pod::PodInputs;

/// The desired pods and what they reference.
#[derive(Debug, Default)]
pub struct Manifests {
    pub pods: Vec<Pod>,
    pub inputs: PodInputs,
}

/// Reads every document of every file; other kinds are an error (this
/// entry point runs pods only).
pub fn load(paths: &[impl AsRef<Path>]) -> Result<Manifests, String> {
    let mut out = Manifests::default();
    for path in paths {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("reading {}: {e}", path.display()))?;
        let docs = bramble_api::parse_documents(&text, &path.display().to_string())
            .map_err(|e| e.to_string())?;
        for (i, doc) in docs.into_iter().enumerate() {
            let where_ = format!("{} (document {})", path.display(), i + 1);
            let admitted = admit(doc).map_err(|e| format!("{where_}: {e}"))?;
            let kind = admitted.resource.kind;
            let object = admitted.object;
            let bad = |e: bramble_api::field::FieldErrors| format!("{where_}: {e}");
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
                    return Err(format!(
                        "{where_}: kind {other} is not run by the agent alone; \
                         give Pods, ConfigMaps and Secrets (or apply it to a hub)"
                    ));
                }
            }
        }
    }
    Ok(out)
}
