//! Fixtures the pod modules' unit tests share: a pod from YAML and the
//! ConfigMap `web` and Secret `creds` they read.

use bramble_api::objects::pod::Pod;

use super::volumes::PodInputs;

pub fn pod(yaml: &str) -> Pod {
    serde_yaml_ng::from_str(yaml).unwrap()
}

/// ConfigMap `web` (`index.html`, `mode`) and Secret `creds` (`password`).
pub fn inputs() -> PodInputs {
    let mut i = PodInputs::default();
    i.config_maps.insert(
        "web".into(),
        [
            ("index.html".to_string(), b"<h1>hi</h1>".to_vec()),
            ("mode".into(), b"fast".to_vec()),
        ]
        .into(),
    );
    i.secrets.insert(
        "creds".into(),
        [("password".to_string(), b"s3cret".to_vec())].into(),
    );
    i
}
