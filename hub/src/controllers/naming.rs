//! Stable names: the `pod-template-hash` of a template and pod name suffixes.
//!
//! Both are FNV-1a 64 hashes written in Kubernetes' "safe" alphabet (no
//! vowels, no `0`, `1`, `3`), so they are stable across hub versions and
//! platforms and never spell words. Names are derived from a seed (owner uid,
//! `now`, an index) instead of randomness to keep plans deterministic.

use std::collections::BTreeSet;

use bramble_api::objects::PodTemplateSpec;

/// Label carrying the hash of the template a pod was stamped from.
pub const POD_TEMPLATE_HASH: &str = "pod-template-hash";

const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";

/// FNV-1a, 64 bits.
pub fn fnv1a(parts: &[&[u8]]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for p in parts {
        for b in *p {
            h ^= u64::from(*b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
        // Separator, so ("ab", "c") and ("a", "bc") differ.
        h ^= 0xff;
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

/// `len` characters of the safe alphabet from `v`.
pub fn encode(mut v: u64, len: usize) -> String {
    let base = ALPHABET.len() as u64;
    (0..len)
        .map(|_| {
            let c = ALPHABET[(v % base) as usize] as char;
            v /= base;
            c
        })
        .collect()
}

/// The `pod-template-hash` of a template (10 characters). A
/// `pod-template-hash` label already on the template is ignored.
pub fn template_hash(template: &PodTemplateSpec) -> String {
    template_hash_with(template, 0)
}

/// [`template_hash`] salted with a Deployment's `status.collisionCount`,
/// as Kubernetes salts it: a count of 0 (no collision yet) leaves the hash
/// as it is, so the hashes of existing pods never change.
pub fn template_hash_with(template: &PodTemplateSpec, collision_count: i32) -> String {
    let mut t = template.clone();
    t.metadata.labels.remove(POD_TEMPLATE_HASH);
    // Serializing a typed struct is deterministic: fields in declaration
    // order, maps are BTreeMaps.
    let bytes = serde_json::to_vec(&t).unwrap_or_default();
    let h = if collision_count == 0 {
        fnv1a(&[&bytes])
    } else {
        fnv1a(&[&bytes, &collision_count.to_le_bytes()])
    };
    encode(h, 10)
}

/// `count` names `prefix-xxxxx` not in `taken`, derived from `seed`.
/// The seed of the pod names an owner (`uid`, else its name) makes at
/// `now`, to the nanosecond: a pod deleted and replaced within one second
/// gets another name (a name taken again would make the replacement wait
/// on its node for the old pod to stop).
pub fn pod_name_seed(owner: &bramble_api::meta::ObjectMeta, now: std::time::SystemTime) -> String {
    let nanos = now
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
        .as_nanos();
    format!("{}/{nanos}", owner.uid.as_deref().unwrap_or(&owner.name))
}

pub fn pod_names(prefix: &str, count: usize, seed: &str, taken: &BTreeSet<&str>) -> Vec<String> {
    let mut out = Vec::with_capacity(count);
    let mut i: u64 = 0;
    while out.len() < count {
        let h = fnv1a(&[seed.as_bytes(), &i.to_le_bytes()]);
        let name = format!("{prefix}-{}", encode(h, 5));
        if !taken.contains(name.as_str()) && !out.contains(&name) {
            out.push(name);
        }
        i += 1;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_made_within_one_second_differ() {
        let meta = bramble_api::meta::ObjectMeta {
            name: "web".into(),
            uid: Some("u-1".into()),
            ..Default::default()
        };
        let t = std::time::UNIX_EPOCH + std::time::Duration::from_secs(1_700_000_000);
        let later = t + std::time::Duration::from_millis(300);
        let none = BTreeSet::new();
        assert_ne!(
            pod_names("web-abc", 1, &pod_name_seed(&meta, t), &none),
            pod_names("web-abc", 1, &pod_name_seed(&meta, later), &none)
        );
        assert_eq!(pod_name_seed(&meta, t), "u-1/1700000000000000000");
    }

    #[test]
    fn hash_is_stable_and_ignores_own_label() {
        let mut t = PodTemplateSpec::default();
        t.metadata.labels.insert("app".into(), "web".into());
        let h = template_hash(&t);
        assert_eq!(h.len(), 10);
        assert!(h.bytes().all(|b| ALPHABET.contains(&b)));
        let mut labelled = t.clone();
        labelled
            .metadata
            .labels
            .insert(POD_TEMPLATE_HASH.into(), h.clone());
        assert_eq!(template_hash(&labelled), h);
        assert_eq!(template_hash_with(&t, 0), h);
        assert_ne!(template_hash_with(&t, 1), h);
        t.metadata.labels.insert("app".into(), "api".into());
        assert_ne!(template_hash(&t), h);
    }

    #[test]
    fn names_avoid_taken_ones() {
        let first = pod_names("web", 2, "seed", &BTreeSet::new());
        let taken: BTreeSet<&str> = [first[0].as_str()].into();
        let again = pod_names("web", 2, "seed", &taken);
        assert_eq!(again[0], first[1]);
        assert!(!again.contains(&first[0]));
        assert!(again.iter().all(|n| n.starts_with("web-") && n.len() == 9));
    }
}
