//! The `hello` this agent sends after every connect: the node's facts
//! ([`NodeInfo`]) and the runtime. The session machine adds the board's
//! keys, the incarnation and the proof (`super::machine`).

use bramble_api::protocol::{Cgroups, Hello, Platform};

use crate::node::info::NodeInfo;

/// Builds the hello of `node` for `session`.
pub fn build(node: &str, session: &str, info: &NodeInfo, os_image: &str, runtime: &str) -> Hello {
    Hello {
        node_name: node.to_string(),
        session: session.to_string(),
        agent_version: env!("CARGO_PKG_VERSION").to_string(),
        platform: Platform {
            os: info.os.clone(),
            architecture: info.architecture.clone(),
            variant: info.variant.clone().unwrap_or_default(),
        },
        kernel_version: info.kernel.clone(),
        os_image: os_image.to_string(),
        cpus: info.cpus.max(1),
        memory_bytes: info.memory_bytes,
        internal_ip: None,
        labels: Default::default(),
        cgroups: Cgroups {
            version: if info.cgroup_v2 { 2 } else { 1 },
            controllers: info.cgroup_controllers.iter().cloned().collect(),
        },
        runtime: runtime_name(runtime),
        features: Vec::new(),
        ..Hello::default()
    }
}

/// The wire name of the `--runtime` flag: `libcontainer`, or `oci:NAME`
/// for a runtime binary (`runc`, `/usr/bin/crun` → `oci:crun`).
pub fn runtime_name(flag: &str) -> String {
    if flag == "libcontainer" {
        return flag.to_string();
    }
    let base = flag.rsplit('/').next().unwrap_or(flag);
    format!("oci:{base}")
}

/// `PRETTY_NAME` of an os-release file's text.
pub fn pretty_name(os_release: &str) -> String {
    os_release
        .lines()
        .find_map(|l| l.strip_prefix("PRETTY_NAME="))
        .map(|v| v.trim().trim_matches('"').to_string())
        .unwrap_or_default()
}

/// `PRETTY_NAME` of this host (empty when unknown).
pub fn os_image() -> String {
    std::fs::read_to_string("/etc/os-release")
        .map(|t| pretty_name(&t))
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use bramble_api::protocol::{decode, encode};

    fn info() -> NodeInfo {
        NodeInfo {
            os: "linux".into(),
            architecture: "arm64".into(),
            variant: Some("v8".into()),
            kernel: "6.6.31+rpt-rpi-v8".into(),
            cpus: 4,
            memory_bytes: 4 << 30,
            cgroup_v2: true,
            cgroup_controllers: ["cpu", "memory", "pids"].map(String::from).into(),
        }
    }

    #[test]
    fn a_built_hello_is_valid_on_the_wire() {
        let mut h = build(
            "pi-1",
            "s1",
            &info(),
            "Debian GNU/Linux 12 (bookworm)",
            "/usr/bin/crun",
        );
        assert_eq!(h.runtime, "oci:crun");
        assert_eq!(h.platform.variant, "v8");
        assert_eq!(h.cgroups.version, 2);
        assert!(!h.cgroups.memory_missing());
        let keys = bramble_trust::SecretKeys::generate().unwrap();
        h.keys = bramble_api::protocol::keys_text(keys.public());
        let back: Hello = decode("pi-1", &encode(&h).unwrap()).unwrap();
        assert_eq!(back, h);
        let mut h = build("pi-1", "s1", &info(), "", "libcontainer");
        h.keys = bramble_api::protocol::keys_text(keys.public());
        assert_eq!(h.runtime, "libcontainer");
        assert!(decode::<Hello>("pi-1", &encode(&h).unwrap()).is_ok());
    }

    #[test]
    fn os_release_pretty_name() {
        let text = "NAME=\"Debian GNU/Linux\"\nPRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\n";
        assert_eq!(pretty_name(text), "Debian GNU/Linux 12 (bookworm)");
        assert_eq!(pretty_name(""), "");
    }
}
