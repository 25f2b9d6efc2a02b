//! The fields Kubernetes itself has, per type, for the types reachable from
//! the kinds Bramble serves: `k8s_fields.txt`, generated from Kubernetes'
//! OpenAPI spec by `scripts/gen-k8s-fields` (which says how). It tells a
//! Kubernetes field Bramble does not implement (always refused) from a field
//! nobody knows (a typo: governed by `fieldValidation`).

use std::collections::HashMap;
use std::sync::OnceLock;

const DATA: &str = include_str!("k8s_fields.txt");

fn table() -> &'static HashMap<&'static str, Vec<&'static str>> {
    static TABLE: OnceLock<HashMap<&'static str, Vec<&'static str>>> = OnceLock::new();
    TABLE.get_or_init(|| {
        DATA.lines()
            .filter(|l| !l.starts_with('#') && !l.is_empty())
            .filter_map(|l| {
                let mut words = l.split(' ');
                Some((words.next()?, words.collect()))
            })
            .collect()
    })
}

/// The data file's key of a Kubernetes type name: its version and name
/// (`io.k8s.api.core.v1.Container` → `v1.Container`), with the group for
/// events.k8s.io, whose type names are core's too
/// (`io.k8s.api.events.v1.Event` → `events.v1.Event`).
fn key(type_name: &str) -> Option<&str> {
    let mut dots = type_name.rmatch_indices('.');
    dots.next()?;
    let (at, _) = dots.next()?;
    match type_name[..at].rsplit_once('.') {
        Some((before, "events")) if before.ends_with("io.k8s.api") => {
            Some(&type_name[before.len() + 1..])
        }
        _ => Some(&type_name[at + 1..]),
    }
}

/// Whether Kubernetes' type `type_name` knows the type at all.
pub fn knows_type(type_name: &str) -> bool {
    key(type_name).is_some_and(|k| table().contains_key(k))
}

/// Whether Kubernetes' type `type_name` has a field `field`.
pub fn has_field(type_name: &str, field: &str) -> bool {
    key(type_name)
        .and_then(|k| table().get(k))
        .is_some_and(|fields| fields.contains(&field))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn knows_kubernetes_fields_bramble_lacks_and_not_made_up_ones() {
        assert!(has_field(
            "io.k8s.api.core.v1.SecurityContext",
            "seLinuxOptions"
        ));
        assert!(has_field("io.k8s.api.core.v1.PodSpec", "affinity"));
        assert!(has_field("io.k8s.api.apps.v1.DeploymentSpec", "strategy"));
        assert!(!has_field("io.k8s.api.apps.v1.DeploymentSpec", "foo"));
        assert!(!has_field("io.k8s.api.core.v1.NoSuchType", "name"));
        assert!(knows_type(
            "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"
        ));
        // events.k8s.io's Event is not core's.
        assert!(has_field("io.k8s.api.events.v1.Event", "note"));
        assert!(!has_field("io.k8s.api.events.v1.Event", "message"));
        assert!(has_field("io.k8s.api.core.v1.Event", "message"));
    }
}
