//! Bramble's host devices under Pod Security: a pod's
//! `bramble.dev/devices` annotation hands it host devices, which
//! `privileged` allows and Baseline and Restricted allow only for the paths
//! its namespace lists in `bramble.dev/allowed-devices`.

use std::collections::BTreeMap;

use bramble_api::objects::pod::{DEVICES_ANNOTATION, devices_from_annotations, validate_devices};
use bramble_api::{FieldError, FieldErrors};

use super::violation::{Violation, join_quote, pluralize};

pub use bramble_api::objects::pod::ALLOWED_DEVICES_ANNOTATION;

/// The device paths a namespace's annotations allow (empty when absent).
pub fn allowed_devices(namespace_annotations: &BTreeMap<String, String>) -> Vec<&str> {
    bramble_api::objects::pod::device_list(namespace_annotations, ALLOWED_DEVICES_ANNOTATION)
}

/// The pod's devices that `allowed` does not list, as a violation.
pub fn check(pod_annotations: &BTreeMap<String, String>, allowed: &[&str]) -> Option<Violation> {
    let bad: Vec<&str> = devices_from_annotations(pod_annotations)
        .into_iter()
        .filter(|d| !allowed.contains(d))
        .collect();
    (!bad.is_empty()).then(|| Violation {
        reason: "host devices",
        detail: format!(
            "pod must not use {} via the {DEVICES_ANNOTATION} annotation; allow {} with the \
             namespace annotation {ALLOWED_DEVICES_ANNOTATION}",
            join_quote(&bad),
            pluralize("it", "them", bad.len())
        ),
    })
}

/// Checks a Namespace's `bramble.dev/allowed-devices` with the rules of
/// the pods' `bramble.dev/devices`.
pub fn validate_allowed_devices(namespace_annotations: &BTreeMap<String, String>) -> FieldErrors {
    let Some(raw) = namespace_annotations.get(ALLOWED_DEVICES_ANNOTATION) else {
        return FieldErrors::new();
    };
    let as_pod = BTreeMap::from([(DEVICES_ANNOTATION.to_string(), raw.clone())]);
    let path = format!("metadata.annotations[{ALLOWED_DEVICES_ANNOTATION}]");
    FieldErrors(
        validate_devices(&as_pod, "metadata.annotations")
            .0
            .into_iter()
            .map(|e| FieldError {
                path: path.clone(),
                kind: e.kind,
            })
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn annotations(key: &str, v: &str) -> BTreeMap<String, String> {
        BTreeMap::from([(key.to_string(), v.to_string())])
    }

    #[test]
    fn devices_outside_the_namespace_list_are_violations() {
        let pod = annotations(DEVICES_ANNOTATION, "/dev/i2c-1, /dev/ttyUSB0");
        let ns = annotations(ALLOWED_DEVICES_ANNOTATION, "/dev/i2c-1,");
        let allowed = allowed_devices(&ns);
        assert_eq!(allowed, ["/dev/i2c-1"]);
        assert_eq!(
            check(&pod, &allowed).unwrap().detail,
            "pod must not use \"/dev/ttyUSB0\" via the bramble.dev/devices annotation; allow it \
             with the namespace annotation bramble.dev/allowed-devices"
        );
        assert!(check(&pod, &["/dev/ttyUSB0", "/dev/i2c-1"]).is_none());
        assert!(check(&pod, &[]).unwrap().detail.contains(
            "\"/dev/i2c-1\", \"/dev/ttyUSB0\" via the bramble.dev/devices annotation; allow them"
        ));
        assert!(check(&BTreeMap::new(), &[]).is_none());
    }

    #[test]
    fn the_namespace_list_is_validated_like_the_pods() {
        assert!(
            validate_allowed_devices(&annotations(ALLOWED_DEVICES_ANNOTATION, "/dev/i2c-1"))
                .is_empty()
        );
        let errs =
            validate_allowed_devices(&annotations(ALLOWED_DEVICES_ANNOTATION, "/etc/shadow"));
        assert_eq!(errs.0.len(), 1);
        assert_eq!(
            errs.0[0].path,
            "metadata.annotations[bramble.dev/allowed-devices]"
        );
        assert!(errs.to_string().contains("\"/etc/shadow\""), "{errs}");
    }
}
