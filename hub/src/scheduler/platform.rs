//! The platform filter's two sides: a node's platform (from what its agent
//! reports) and the platforms a pod's images are available for (from the hub's
//! registry).

use std::collections::{BTreeSet, HashMap};

use bramble_api::objects::{Node, PodSpec};
use bramble_images::Platform;

/// Image reference, exactly as written in the container's `image`, to the
/// platforms the image is available for. An image that is absent, or listed
/// with no platforms, is taken to run anywhere.
pub type ImagePlatforms = HashMap<String, Vec<Platform>>;

/// The platform of a node: `status.nodeInfo` (`operatingSystem`,
/// `architecture`), else the `kubernetes.io/os` and `kubernetes.io/arch` labels;
/// `None` when the architecture is unknown (such a node passes the filter).
pub fn node_platform(node: &Node) -> Option<Platform> {
    let info = node.status.as_ref().and_then(|s| s.node_info.as_ref());
    let labels = &node.metadata.labels;
    fn pick<'a>(
        reported: Option<&'a str>,
        labels: &'a std::collections::BTreeMap<String, String>,
        label: &str,
    ) -> Option<&'a str> {
        reported
            .filter(|v| !v.is_empty())
            .or_else(|| labels.get(label).map(String::as_str))
            .filter(|v| !v.is_empty())
    }
    let arch = pick(
        info.map(|i| i.architecture.as_str()),
        labels,
        "kubernetes.io/arch",
    )?;
    let os = pick(
        info.map(|i| i.operating_system.as_str()),
        labels,
        "kubernetes.io/os",
    )
    .unwrap_or("linux");
    Some(Platform::new(os, arch, None))
}

/// The platform lists of a pod's images that the registry knows.
#[derive(Debug, Default)]
pub(crate) struct PlatformNeeds<'a> {
    lists: Vec<&'a [Platform]>,
}

impl<'a> PlatformNeeds<'a> {
    /// The needs of every container (init containers included) of `spec`.
    pub fn of(spec: &PodSpec, images: &'a ImagePlatforms) -> PlatformNeeds<'a> {
        let mut seen = BTreeSet::new();
        let lists = spec
            .all_containers()
            .filter(|c| seen.insert(c.image.as_str()))
            .filter_map(|c| images.get(&c.image))
            .filter(|l| !l.is_empty())
            .map(Vec::as_slice)
            .collect();
        PlatformNeeds { lists }
    }

    /// Whether every image has a build that runs on `node` (an unknown node
    /// platform passes).
    pub fn accepts(&self, node: Option<&Platform>) -> bool {
        let Some(node) = node else { return true };
        self.lists
            .iter()
            .all(|l| l.iter().any(|have| node.accepts(have)))
    }

    /// For the message: the platforms every image has (`linux/arm64 only`,
    /// `linux/amd64, linux/arm64 only`), or `no common platform`.
    pub fn describe(&self) -> String {
        let Some((first, rest)) = self.lists.split_first() else {
            return "any platform".into();
        };
        let common: BTreeSet<String> = first
            .iter()
            .filter(|p| rest.iter().all(|l| l.contains(p)))
            .map(Platform::to_string)
            .collect();
        if common.is_empty() {
            "no common platform".into()
        } else {
            format!("{} only", common.into_iter().collect::<Vec<_>>().join(", "))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn p(s: &str) -> Platform {
        s.parse().unwrap()
    }

    fn images(entries: &[(&str, &[&str])]) -> ImagePlatforms {
        entries
            .iter()
            .map(|(i, ps)| (i.to_string(), ps.iter().map(|s| p(s)).collect()))
            .collect()
    }

    fn spec(images: &[&str]) -> PodSpec {
        let cs: Vec<_> = images
            .iter()
            .enumerate()
            .map(|(i, im)| json!({"name": format!("c{i}"), "image": im}))
            .collect();
        serde_json::from_value(json!({"containers": cs})).unwrap()
    }

    #[test]
    fn node_platform_from_info_or_labels() {
        let n: Node = serde_json::from_value(json!({"apiVersion": "v1", "kind": "Node",
            "metadata": {"name": "pi", "labels": {"kubernetes.io/arch": "amd64"}},
            "status": {"nodeInfo": {"architecture": "aarch64", "operatingSystem": "linux"}}}))
        .unwrap();
        assert_eq!(node_platform(&n), Some(p("linux/arm64")));
        let n: Node = serde_json::from_value(json!({"apiVersion": "v1", "kind": "Node",
            "metadata": {"name": "pi", "labels": {"kubernetes.io/arch": "arm"}}}))
        .unwrap();
        assert_eq!(node_platform(&n), Some(p("linux/arm/v7")));
        assert_eq!(node_platform(&Node::default()), None);
    }

    #[test]
    fn every_known_image_must_run_on_the_node() {
        let imgs = images(&[
            ("multi:1", &["linux/amd64", "linux/arm64", "linux/arm/v6"]),
            ("arm64only:1", &["linux/arm64"]),
            ("empty:1", &[]),
        ]);
        let multi = PlatformNeeds::of(&spec(&["multi:1", "unknown:1", "empty:1"]), &imgs);
        assert!(multi.accepts(Some(&p("linux/amd64"))));
        assert!(multi.accepts(Some(&p("linux/arm/v7"))), "v6 runs on v7");
        assert!(!multi.accepts(Some(&p("linux/riscv64"))));
        assert!(multi.accepts(None));
        assert_eq!(
            multi.describe(),
            "linux/amd64, linux/arm/v6, linux/arm64 only"
        );

        let both = PlatformNeeds::of(&spec(&["multi:1", "arm64only:1"]), &imgs);
        assert!(both.accepts(Some(&p("linux/arm64"))));
        assert!(!both.accepts(Some(&p("linux/amd64"))));
        assert_eq!(both.describe(), "linux/arm64 only");

        let imgs2 = images(&[("a", &["linux/amd64"]), ("b", &["linux/arm64"])]);
        let none = PlatformNeeds::of(&spec(&["a", "b"]), &imgs2);
        assert!(!none.accepts(Some(&p("linux/arm64"))));
        assert_eq!(none.describe(), "no common platform");

        let unknown = PlatformNeeds::of(&spec(&["unknown:1"]), &imgs);
        assert!(unknown.accepts(Some(&p("linux/riscv64"))));
    }
}
