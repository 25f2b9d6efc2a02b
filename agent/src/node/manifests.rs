//! Pods, ConfigMaps and Secrets from YAML files, for the local entry point
//! (`bramble-agent run -f FILE`): parsed, defaulted and validated exactly as
//! the hub admits them, so a file that runs here is accepted there.

use std::path::Path;

use bramble_api::admit;
use bramble_api::decode::decode;
use bramble_api::protocol::{Desired, Generation};

/// Reads every document of every file into one desired set (generation 1,
/// no pod network), as a hub would send it; other kinds are an error (this
/// entry point runs pods only). The node loop turns its ConfigMaps and
/// Secrets into pod inputs as it does a hub's.
pub fn load(paths: &[impl AsRef<Path>]) -> Result<Desired, String> {
    let mut out = Desired {
        generation: Generation(1),
        pods: Vec::new(),
        config_maps: Vec::new(),
        secrets: Vec::new(),
        network: None,
    };
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
                "ConfigMap" => out.config_maps.push(decode(object).map_err(bad)?),
                "Secret" => out.secrets.push(decode(object).map_err(bad)?),
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
