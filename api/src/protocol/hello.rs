//! Registration: the agent's `hello` (what the board is, how it authenticates)
//! and the hub's `helloAck` (credentials issued, or a refusal with a reason).
//!
//! Both are lenient: unknown fields are ignored, because they only describe the
//! board or the outcome and a newer peer adding a fact is safe to not read.
//! Tokens and passwords never appear in `Debug` output or error messages.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::cidr::Cidr;
use crate::field::{FieldError, FieldErrors};
use crate::meta::validate_labels;
use crate::objects::secret::REDACTED;

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
    pub auth: HelloAuth,
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

/// How the agent authenticates its `hello`.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum HelloAuth {
    /// First join: the cluster's join token (`DATA_DIR/node-token` on the hub).
    JoinToken(String),
    /// Later starts: the credentials the hub issued on the first join.
    Credentials(NodeCredentials),
}

impl Default for HelloAuth {
    fn default() -> Self {
        HelloAuth::JoinToken(String::new())
    }
}

impl fmt::Debug for HelloAuth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HelloAuth::JoinToken(_) => f.debug_tuple("JoinToken").field(&REDACTED).finish(),
            HelloAuth::Credentials(c) => f.debug_tuple("Credentials").field(c).finish(),
        }
    }
}

/// MQTT username and password of one node; the username is the node name.
#[derive(Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NodeCredentials {
    pub username: String,
    pub password: String,
}

impl fmt::Debug for NodeCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NodeCredentials")
            .field("username", &self.username)
            .field("password", &REDACTED)
            .finish()
    }
}

/// `helloAck` (hub → agent, `nodes/{node}/hello/ack`, QoS 1, not retained).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "outcome", rename_all = "camelCase")]
pub enum HelloAck {
    Accepted(Accepted),
    Refused(Refused),
}

/// The node is registered.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Accepted {
    /// The `session` of the `hello` answered.
    pub session: String,
    /// Issued on a join with a token; the agent stores them (mode 0600) and
    /// reconnects with them. Absent when the hello used credentials.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credentials: Option<NodeCredentials>,
    /// The node's pod CIDR, once the hub allocates them (M2 networking).
    #[serde(rename = "podCIDR", default, skip_serializing_if = "Option::is_none")]
    pub pod_cidr: Option<String>,
    /// How often to send `status`; the agent's default when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub heartbeat_millis: Option<u64>,
}

/// The node is not registered; the agent logs `reason` and exits or retries
/// as `code` says.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Refused {
    pub session: String,
    pub code: RefusalCode,
    /// For the operator: what was wrong and what to do.
    pub reason: String,
}

/// Why a hello was refused.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum RefusalCode {
    /// Wrong or missing join token: fatal until the operator fixes it.
    InvalidToken,
    /// Stored credentials no longer valid (node deleted): rejoin with a token.
    InvalidCredentials,
    /// Another registered node has this name and the hello did not prove it.
    NameTaken,
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
            HelloAck::Refused(r) => &r.session,
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
        if !matches!(self.cgroups.version, 1 | 2) {
            errs.push(FieldError::invalid(
                "cgroups.version",
                format!("{}: must be 1 or 2", self.cgroups.version),
            ));
        }
        errs.extend(validate_labels(&self.labels, "labels"));
        match &self.auth {
            HelloAuth::JoinToken(t) if t.is_empty() => {
                errs.push(FieldError::required("auth.joinToken"))
            }
            HelloAuth::Credentials(c) if c.username != node => errs.push(FieldError::invalid(
                "auth.credentials.username",
                format!("{:?}: must be the node name", c.username),
            )),
            _ => {}
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
        if let HelloAck::Accepted(a) = self {
            if let Some(c) = &a.credentials
                && c.username != node
            {
                errs.push(FieldError::invalid(
                    "credentials.username",
                    format!("{:?}: must be the node name", c.username),
                ));
            }
            if let Some(cidr) = &a.pod_cidr
                && let Err(e) = cidr.parse::<Cidr>()
            {
                errs.push(FieldError::invalid("podCIDR", e.to_string()));
            }
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
        let env = serde_json::json!({"protocol": 1, "type": "hello", "body": v});
        let got: Hello = decode("pi-1", env.to_string().as_bytes()).unwrap();
        assert_eq!(got, hello());

        v.as_object_mut().unwrap().remove("cpus");
        let env = serde_json::json!({"protocol": 1, "type": "hello", "body": v});
        let e = decode::<Hello>("pi-1", env.to_string().as_bytes()).unwrap_err();
        assert!(e.to_string().contains("missing field `cpus`"), "{e}");
    }

    #[test]
    fn hello_validation_and_redaction() {
        let mut h = hello();
        h.cpus = 0;
        h.cgroups.version = 3;
        h.auth = HelloAuth::Credentials(NodeCredentials {
            username: "pi-9".into(),
            password: "hunter2".into(),
        });
        let errs = h.validate("pi-1").to_string();
        assert!(errs.contains("cpus: Invalid value"), "{errs}");
        assert!(errs.contains("cgroups.version: Invalid value: 3"), "{errs}");
        assert!(errs.contains("auth.credentials.username"), "{errs}");
        assert!(!format!("{h:?}").contains("hunter2"));
        assert!(!format!("{:?}", hello()).contains("K10secret"));
    }

    #[test]
    fn acks_round_trip() {
        let acks = [
            HelloAck::Accepted(Accepted {
                session: "s1".into(),
                credentials: Some(NodeCredentials {
                    username: "pi-1".into(),
                    password: "p".into(),
                }),
                pod_cidr: Some("10.42.1.0/24".into()),
                heartbeat_millis: Some(1000),
            }),
            HelloAck::Refused(Refused {
                session: "s1".into(),
                code: RefusalCode::InvalidToken,
                reason: "the join token is wrong: copy DATA_DIR/node-token from the hub".into(),
            }),
        ];
        for ack in acks {
            let bytes = encode(&ack).unwrap();
            assert_eq!(decode::<HelloAck>("pi-1", &bytes).unwrap(), ack);
        }
        let v = serde_json::json!({"protocol": 1, "type": "helloAck",
            "body": {"outcome": "refused", "session": "s", "code": "quotaExceeded", "reason": "r"}});
        let ack: HelloAck = decode("pi-1", v.to_string().as_bytes()).unwrap();
        assert!(matches!(
            ack,
            HelloAck::Refused(Refused {
                code: RefusalCode::Other,
                ..
            })
        ));
        let v = serde_json::json!({"protocol": 1, "type": "helloAck",
            "body": {"outcome": "accepted", "session": "s", "podCIDR": "10.42.1.0/99"}});
        assert!(decode::<HelloAck>("pi-1", v.to_string().as_bytes()).is_err());
    }
}
