//! Registration: the agent's `hello` (what the board is, its public keys and
//! how it proves it may join) and the hub's `helloAck` (accepted, pending
//! approval, or refused with a reason; always with the hub's public keys,
//! which a joining agent pins after checking them against its token).
//!
//! No secret travels here: a joining board proves it knows a join token with
//! an HMAC over what it claims ([`JoinProof`]); a joined one is known by the
//! key its frames are signed with. Both messages are lenient: unknown fields
//! are ignored, because they only describe the board or the outcome and a
//! newer peer adding a fact is safe to not read.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::cidr::Cidr;
use crate::field::{FieldError, FieldErrors};
use crate::meta::validate_labels;

use super::envelope::Message;

/// Limit of an encoded `hello`.
pub const MAX_HELLO_BYTES: usize = 64 * 1024;
/// Limit of an encoded `helloAck`.
pub const MAX_HELLO_ACK_BYTES: usize = 16 * 1024;

/// `hello` (agent → hub, `nodes/{node}/hello`, QoS 1, not retained): sent after
/// every (re)connect, repeated until a `helloAck` with the same `session` arrives.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Hello {
    /// Must equal the node in the topic.
    pub node_name: String,
    /// Random per agent process start; echoed by `helloAck`, repeated in `status`
    /// and `online` so the hub can tell a restart from a reconnect.
    pub session: String,
    /// The agent's release, e.g. `0.1.0`.
    pub agent_version: String,
    pub platform: Platform,
    /// `uname -r`.
    pub kernel_version: String,
    /// `PRETTY_NAME` of os-release, e.g. `Debian GNU/Linux 12 (bookworm)`.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub os_image: String,
    /// The node's LAN address (the Node's `InternalIP`): other nodes route
    /// to its pods through it. `--node-ip`, or the address the agent reaches
    /// the hub from.
    #[serde(
        rename = "internalIP",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub internal_ip: Option<String>,
    /// Online CPUs.
    pub cpus: u32,
    /// Total memory.
    pub memory_bytes: u64,
    /// Labels from the agent's configuration, merged into the Node's labels.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
    pub cgroups: Cgroups,
    /// Runtime backend: `libcontainer`, or `oci:crun` / `oci:runc` on armv7.
    pub runtime: String,
    /// Optional protocol features this agent understands (`network`); the hub
    /// only sends a field added after v1.0 to an agent announcing it.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub features: Vec<String>,
    /// Where the agent keeps `local-path` volumes (`DATA_DIR/volumes`),
    /// shown in the paths of the volumes provisioned on the node.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub volumes_dir: Option<String>,
    /// Counts the agent's process starts on this board (kept in its data
    /// directory). A hello with an incarnation below the one the hub
    /// registered is a replay and refused; a new session needs a higher one.
    pub incarnation: u64,
    /// The board's public keys; the frame of this hello is signed with the
    /// signing one.
    pub keys: KeysText,
    pub auth: HelloAuth,
}

/// A party's public keys in their text form (unpadded base64url of 32
/// bytes each; `bramble_trust::PublicKeys::from_text` checks them).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct KeysText {
    /// Ed25519: verifies the party's frames.
    pub signing: String,
    /// X25519: frames sealed to the party.
    pub encryption: String,
}

/// Label domains a node may not give itself labels under (nor under their
/// subdomains): they steer scheduling and trust. Kubernetes' NodeRestriction
/// keeps kubelets off the first two.
pub const RESTRICTED_LABEL_DOMAINS: [&str; 3] = [
    "node-role.kubernetes.io",
    "node-restriction.kubernetes.io",
    "bramble.dev",
];

/// Whether a node may set label `key` on itself.
pub fn node_may_set_label(key: &str) -> bool {
    let Some((domain, _)) = key.split_once('/') else {
        return true;
    };
    !RESTRICTED_LABEL_DOMAINS
        .iter()
        .any(|d| domain == *d || domain.strip_suffix(d).is_some_and(|sub| sub.ends_with('.')))
}

/// OCI platform of the board.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Platform {
    /// `linux`.
    pub os: String,
    /// GOARCH spelling: `arm64`, `arm`, `amd64`.
    pub architecture: String,
    /// `v8`, `v7`, `v6`; empty when none applies.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub variant: String,
}

/// The cgroup hierarchy the agent found.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Cgroups {
    /// 2 for the unified hierarchy, 1 for v1 or hybrid.
    pub version: u8,
    /// Enabled controllers (`cpu`, `memory`, `pids`, ...). Raspberry Pi OS
    /// ships without `memory` unless `cgroup_enable=memory` is on the kernel
    /// command line: see [`Cgroups::memory_missing`].
    #[serde(default)]
    pub controllers: Vec<String>,
}

impl Cgroups {
    /// Whether memory limits cannot be enforced on this node.
    pub fn memory_missing(&self) -> bool {
        !self.controllers.iter().any(|c| c == "memory")
    }
}

/// How the agent proves it may say hello.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum HelloAuth {
    /// First join: proof of knowing a join token.
    JoinToken(JoinProof),
    /// A joined node: the frame's signature by the key the hub registered
    /// is the proof.
    #[default]
    Key,
}

/// Proof of knowing the join token `id`: HMAC-SHA256 with the token's
/// secret over the node name, session, incarnation and signing key
/// (`bramble_trust::JoinToken::proof` with label [`JOIN_PROOF_LABEL`]). The
/// secret itself never travels.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct JoinProof {
    /// The token's id (the part before the dot; not secret).
    pub id: String,
    /// Unpadded base64url of the HMAC.
    pub proof: String,
}

/// The label of a hello's join proof.
pub const JOIN_PROOF_LABEL: &str = "hello";

impl Hello {
    /// Signs up with `token`: `auth` becomes the proof of knowing it, over
    /// this hello's node name, session, incarnation and signing key (set
    /// them first).
    pub fn prove_token(&mut self, token: &bramble_trust::JoinToken) {
        let fields = self.proof_fields();
        let fields: Vec<&[u8]> = fields.iter().map(Vec::as_slice).collect();
        self.auth = HelloAuth::JoinToken(JoinProof {
            id: token.id().to_string(),
            proof: token.proof(JOIN_PROOF_LABEL, &fields),
        });
    }

    /// The fields a join proof covers, in order.
    pub fn proof_fields(&self) -> [Vec<u8>; 4] {
        [
            self.node_name.as_bytes().to_vec(),
            self.session.as_bytes().to_vec(),
            self.incarnation.to_be_bytes().to_vec(),
            self.keys.signing.as_bytes().to_vec(),
        ]
    }
}

/// `helloAck` (hub → agent, `nodes/{node}/hello/ack`, QoS 1, not retained).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "outcome", rename_all = "camelCase")]
pub enum HelloAck {
    Accepted(Accepted),
    /// Registered, waiting for `bramble nodes approve NAME` (hub with
    /// `--approve-nodes`): the agent says hello again now and then.
    Pending(Pending),
    Refused(Refused),
}

/// The node is registered.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Accepted {
    /// The `session` of the `hello` answered.
    pub session: String,
    /// The hub's public keys: a joining agent pins them after checking the
    /// signing key against its token's hash.
    pub hub: KeysText,
    /// The node's pod CIDR.
    #[serde(rename = "podCIDR", default, skip_serializing_if = "Option::is_none")]
    pub pod_cidr: Option<String>,
    /// How often to send `status`; the agent's default when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub heartbeat_millis: Option<u64>,
}

/// The node is known but not yet approved.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Pending {
    pub session: String,
    pub hub: KeysText,
    /// For the operator: what to run on the hub.
    pub reason: String,
}

/// The node is not registered; the agent logs `reason` and exits or retries
/// as `code` says.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Refused {
    pub session: String,
    pub hub: KeysText,
    pub code: RefusalCode,
    /// For the operator: what was wrong and what to do.
    pub reason: String,
}

/// Why a hello was refused.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum RefusalCode {
    /// Wrong, expired or used-up join token: fatal until the operator
    /// fixes it.
    InvalidToken,
    /// The node's key is not (or no longer) registered, e.g. the node was
    /// deleted on the hub: rejoin with a token.
    UnknownNode,
    /// Another key is registered under this name.
    NameTaken,
    /// A replayed hello (its incarnation is below the registered one).
    Replay,
    /// The hello itself was invalid (see `reason`).
    InvalidHello,
    /// Anything a newer hub adds; treated as fatal.
    #[default]
    #[serde(other)]
    Other,
}

impl HelloAck {
    /// The session answered.
    pub fn session(&self) -> &str {
        match self {
            HelloAck::Accepted(a) => &a.session,
            HelloAck::Pending(p) => &p.session,
            HelloAck::Refused(r) => &r.session,
        }
    }

    /// The hub's public keys it carries.
    pub fn hub(&self) -> &KeysText {
        match self {
            HelloAck::Accepted(a) => &a.hub,
            HelloAck::Pending(p) => &p.hub,
            HelloAck::Refused(r) => &r.hub,
        }
    }
}

impl Message for Hello {
    const TYPE: &'static str = "hello";
    const MAX_BYTES: usize = MAX_HELLO_BYTES;

    fn validate(&self, node: &str) -> FieldErrors {
        let mut errs = FieldErrors::new();
        if self.node_name != node {
            errs.push(FieldError::invalid(
                "nodeName",
                format!(
                    "{:?}: must match the node in the topic ({node:?})",
                    self.node_name
                ),
            ));
        }
        for (path, value) in [
            ("session", &self.session),
            ("agentVersion", &self.agent_version),
            ("platform.os", &self.platform.os),
            ("platform.architecture", &self.platform.architecture),
            ("runtime", &self.runtime),
        ] {
            if value.is_empty() {
                errs.push(FieldError::required(path));
            }
        }
        if let Some(ip) = &self.internal_ip
            && ip.parse::<std::net::IpAddr>().is_err()
        {
            errs.push(FieldError::invalid(
                "internalIP",
                format!("{ip:?}: not an IP address"),
            ));
        }
        if self.cpus == 0 {
            errs.push(FieldError::invalid("cpus", "0: must be at least 1"));
        }
        if let Some(d) = &self.volumes_dir
            && (!d.starts_with('/') || d.split('/').any(|c| c == "..") || d.len() > 4096)
        {
            errs.push(FieldError::invalid(
                "volumesDir",
                format!("{d:?}: must be an absolute path without '..'"),
            ));
        }
        if !matches!(self.cgroups.version, 1 | 2) {
            errs.push(FieldError::invalid(
                "cgroups.version",
                format!("{}: must be 1 or 2", self.cgroups.version),
            ));
        }
        errs.extend(validate_labels(&self.labels, "labels"));
        for key in self.labels.keys() {
            if !node_may_set_label(key) {
                errs.push(FieldError::invalid(
                    format!("labels[{key}]"),
                    format!(
                        "nodes may not label themselves under {}/: an operator sets such \
                         labels on the Node object",
                        RESTRICTED_LABEL_DOMAINS.join("/, ")
                    ),
                ));
            }
        }
        if self.keys.signing.is_empty() {
            errs.push(FieldError::required("keys.signing"));
        }
        if self.keys.encryption.is_empty() {
            errs.push(FieldError::required("keys.encryption"));
        }
        if let HelloAuth::JoinToken(t) = &self.auth {
            if t.id.is_empty() {
                errs.push(FieldError::required("auth.joinToken.id"));
            }
            if t.proof.is_empty() {
                errs.push(FieldError::required("auth.joinToken.proof"));
            }
        }
        errs
    }
}

impl Message for HelloAck {
    const TYPE: &'static str = "helloAck";
    const MAX_BYTES: usize = MAX_HELLO_ACK_BYTES;

    fn validate(&self, node: &str) -> FieldErrors {
        let mut errs = FieldErrors::new();
        if self.session().is_empty() {
            errs.push(FieldError::required("session"));
        }
        let _ = node;
        if self.hub().signing.is_empty() {
            errs.push(FieldError::required("hub.signing"));
        }
        if let HelloAck::Accepted(a) = self
            && let Some(cidr) = &a.pod_cidr
            && let Err(e) = cidr.parse::<Cidr>()
        {
            errs.push(FieldError::invalid("podCIDR", e.to_string()));
        }
        errs
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::tests::hello;
    use crate::protocol::{decode, encode};

    #[test]
    fn hello_round_trips_and_checks_its_node() {
        let h = hello();
        let bytes = encode(&h).unwrap();
        assert_eq!(decode::<Hello>("pi-1", &bytes).unwrap(), h);
        let e = decode::<Hello>("pi-2", &bytes).unwrap_err().to_string();
        assert!(
            e.contains(
                "nodeName: Invalid value: \"pi-1\": must match the node in the topic (\"pi-2\")"
            ),
            "{e}"
        );
        assert!(!Cgroups::default().memory_missing() || h.cgroups.memory_missing());
    }

    #[test]
    fn hello_tolerates_unknown_fields_and_reports_missing_ones() {
        let mut v = serde_json::to_value(hello()).unwrap();
        v["gpu"] = serde_json::json!("videocore");
        let env = serde_json::json!({"protocol": 2, "type": "hello", "body": v});
        let got: Hello = decode("pi-1", env.to_string().as_bytes()).unwrap();
        assert_eq!(got, hello());

        v.as_object_mut().unwrap().remove("cpus");
        let env = serde_json::json!({"protocol": 2, "type": "hello", "body": v});
        let e = decode::<Hello>("pi-1", env.to_string().as_bytes()).unwrap_err();
        assert!(e.to_string().contains("missing field `cpus`"), "{e}");
    }

    #[test]
    fn hello_validation() {
        let mut h = hello();
        h.cpus = 0;
        h.cgroups.version = 3;
        h.keys.encryption.clear();
        h.auth = HelloAuth::JoinToken(JoinProof::default());
        let errs = h.validate("pi-1").to_string();
        assert!(errs.contains("cpus: Invalid value"), "{errs}");
        assert!(errs.contains("cgroups.version: Invalid value: 3"), "{errs}");
        assert!(errs.contains("keys.encryption: Required value"), "{errs}");
        assert!(
            errs.contains("auth.joinToken.proof: Required value"),
            "{errs}"
        );
    }

    #[test]
    fn nodes_may_not_give_themselves_restricted_labels() {
        for key in [
            "node-role.kubernetes.io/control-plane",
            "node-restriction.kubernetes.io/trusted",
            "bramble.dev/room",
            "x.bramble.dev/zone",
        ] {
            assert!(!node_may_set_label(key), "{key}");
            let mut h = hello();
            h.labels = [(key.to_string(), "yes".to_string())].into();
            let errs = h.validate("pi-1").to_string();
            assert!(errs.contains("nodes may not label themselves"), "{errs}");
        }
        for key in [
            "room",
            "kubernetes.io/arch",
            "example.com/rack",
            "notbramble.dev/x",
        ] {
            assert!(node_may_set_label(key), "{key}");
        }
    }

    #[test]
    fn acks_round_trip() {
        let hub = KeysText {
            signing: "s".into(),
            encryption: "e".into(),
        };
        let acks = [
            HelloAck::Accepted(Accepted {
                session: "s1".into(),
                hub: hub.clone(),
                pod_cidr: Some("10.42.1.0/24".into()),
                heartbeat_millis: Some(1000),
            }),
            HelloAck::Pending(Pending {
                session: "s1".into(),
                hub: hub.clone(),
                reason: "run bramble nodes approve pi-1 on the hub".into(),
            }),
            HelloAck::Refused(Refused {
                session: "s1".into(),
                hub: hub.clone(),
                code: RefusalCode::InvalidToken,
                reason: "the join token is wrong: copy DATA_DIR/node-token from the hub".into(),
            }),
        ];
        for ack in acks {
            let bytes = encode(&ack).unwrap();
            assert_eq!(decode::<HelloAck>("pi-1", &bytes).unwrap(), ack);
        }
        let v = serde_json::json!({"protocol": 2, "type": "helloAck",
            "body": {"outcome": "refused", "session": "s", "hub": {"signing": "s", "encryption": "e"},
                "code": "quotaExceeded", "reason": "r"}});
        let ack: HelloAck = decode("pi-1", v.to_string().as_bytes()).unwrap();
        assert!(matches!(
            ack,
            HelloAck::Refused(Refused {
                code: RefusalCode::Other,
                ..
            })
        ));
        let v = serde_json::json!({"protocol": 2, "type": "helloAck",
            "body": {"outcome": "accepted", "session": "s", "hub": {"signing": "s", "encryption": "e"},
                "podCIDR": "10.42.1.0/99"}});
        assert!(decode::<HelloAck>("pi-1", v.to_string().as_bytes()).is_err());
    }
}
