//! What a manifest or index refers to: needed to refuse a manifest whose blobs
//! were not pushed, and for garbage collection.

use bramble_images::Digest;
use serde_json::Value;

/// Media types of indexes (manifest lists).
pub const INDEX_TYPES: [&str; 2] = [
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
];

/// Media types of image manifests.
pub const MANIFEST_TYPES: [&str; 2] = [
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.v2+json",
];

/// References of one manifest document.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct References {
    /// Config and layer blobs (image manifest).
    pub blobs: Vec<Digest>,
    /// Child manifests (index).
    pub manifests: Vec<Digest>,
}

/// Decides the media type (the `Content-Type` sent, else the document's own
/// `mediaType`, else by shape) and parses the references.
pub fn parse(content_type: Option<&str>, body: &[u8]) -> Result<(String, References), String> {
    let doc: Value =
        serde_json::from_slice(body).map_err(|e| format!("manifest is not JSON: {e}"))?;
    let declared = doc["mediaType"].as_str();
    let sent = content_type
        .map(|c| c.split(';').next().unwrap_or("").trim())
        .filter(|c| !c.is_empty() && *c != "application/json" && *c != "application/octet-stream");
    let media_type = match (sent, declared) {
        (Some(s), _) => s.to_string(),
        (None, Some(d)) => d.to_string(),
        (None, None) if doc.get("manifests").is_some() => INDEX_TYPES[0].to_string(),
        (None, None) => MANIFEST_TYPES[0].to_string(),
    };
    let digest = |v: &Value, what: &str| -> Result<Digest, String> {
        v["digest"]
            .as_str()
            .ok_or_else(|| format!("{what} has no digest"))?
            .parse()
            .map_err(|e| format!("{what}: {e}"))
    };
    let mut refs = References::default();
    if INDEX_TYPES.contains(&media_type.as_str()) {
        for (i, m) in doc["manifests"]
            .as_array()
            .ok_or("an index needs manifests[]")?
            .iter()
            .enumerate()
        {
            refs.manifests.push(digest(m, &format!("manifests[{i}]"))?);
        }
    } else if MANIFEST_TYPES.contains(&media_type.as_str()) {
        refs.blobs.push(digest(&doc["config"], "config")?);
        for (i, l) in doc["layers"]
            .as_array()
            .ok_or("a manifest needs layers[]")?
            .iter()
            .enumerate()
        {
            refs.blobs.push(digest(l, &format!("layers[{i}]"))?);
        }
    } else {
        return Err(format!(
            "unsupported manifest media type {media_type:?}: push an OCI or Docker v2 image manifest or index"
        ));
    }
    Ok((media_type, refs))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(c: char) -> String {
        format!("sha256:{}", c.to_string().repeat(64))
    }

    #[test]
    fn reads_manifests_and_indexes() {
        let m = format!(
            r#"{{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{{"digest":"{}"}},"layers":[{{"digest":"{}"}}]}}"#,
            d('a'),
            d('b')
        );
        let (t, r) = parse(None, m.as_bytes()).unwrap();
        assert_eq!(t, MANIFEST_TYPES[0]);
        assert_eq!(r.blobs.len(), 2);
        let i = format!(
            r#"{{"schemaVersion":2,"manifests":[{{"digest":"{}"}}]}}"#,
            d('c')
        );
        let (t, r) = parse(
            Some("application/vnd.oci.image.index.v1+json"),
            i.as_bytes(),
        )
        .unwrap();
        assert_eq!(t, INDEX_TYPES[0]);
        assert_eq!(r.manifests, vec![d('c').parse().unwrap()]);
        assert!(parse(Some("text/plain"), b"{}").is_err());
        assert!(parse(None, b"not json").is_err());
    }
}
