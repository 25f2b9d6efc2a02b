//! Topic names under `bramble/v2/nodes/{node}/...`: building, parsing (anything
//! else is refused with the reason), the subscriptions of each side and the
//! per-node ACL. Every topic is QoS 1; `online` and `desired` are retained.

use std::fmt;

use crate::names;

use super::rpc::RpcId;

/// Prefix of every Bramble topic; `v2` is [`super::PROTOCOL_VERSION`].
pub const PREFIX: &str = "bramble/v2/";
/// QoS of every Bramble publication and subscription (at least once).
pub const QOS: u8 = 1;

/// A topic name that failed to parse or to build.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid topic {topic:?}: {reason}")]
pub struct TopicError {
    pub topic: String,
    pub reason: String,
}

/// Which side publishes on a topic.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    AgentToHub,
    HubToAgent,
}

/// What a topic under `nodes/{node}/` carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TopicKind {
    /// `hello`: registration (agent → hub).
    Hello,
    /// `hello/ack`: acceptance with credentials, or refusal (hub → agent).
    HelloAck,
    /// `status`: heartbeat, observed generation, pod statuses (agent → hub).
    Status,
    /// `online`: retained liveness flag; the last will publishes `false` (agent → hub).
    Online,
    /// `desired`: retained full desired set (hub → agent).
    Desired,
    /// `rpc/req`: logs, exec, prepull, cancel (hub → agent).
    RpcRequest,
    /// `rpc/resp/{id}`: numbered response chunks of request `id` (agent → hub).
    RpcResponse(RpcId),
}

impl TopicKind {
    /// The path after `nodes/{node}/`.
    fn suffix(&self) -> String {
        match self {
            TopicKind::Hello => "hello".into(),
            TopicKind::HelloAck => "hello/ack".into(),
            TopicKind::Status => "status".into(),
            TopicKind::Online => "online".into(),
            TopicKind::Desired => "desired".into(),
            TopicKind::RpcRequest => "rpc/req".into(),
            TopicKind::RpcResponse(id) => format!("rpc/resp/{id}"),
        }
    }

    /// Who publishes on it.
    pub fn direction(&self) -> Direction {
        match self {
            TopicKind::Hello | TopicKind::Status | TopicKind::Online => Direction::AgentToHub,
            TopicKind::RpcResponse(_) => Direction::AgentToHub,
            TopicKind::HelloAck | TopicKind::Desired | TopicKind::RpcRequest => {
                Direction::HubToAgent
            }
        }
    }

    /// Whether publications are retained (the broker keeps the last one).
    pub fn retained(&self) -> bool {
        matches!(self, TopicKind::Online | TopicKind::Desired)
    }

    /// The envelope `type` a payload on this topic must carry.
    pub fn message_type(&self) -> &'static str {
        match self {
            TopicKind::Hello => "hello",
            TopicKind::HelloAck => "helloAck",
            TopicKind::Status => "status",
            TopicKind::Online => "online",
            TopicKind::Desired => "desired",
            TopicKind::RpcRequest => "rpcRequest",
            TopicKind::RpcResponse(_) => "rpcResponse",
        }
    }
}

/// A parsed Bramble topic: the node it belongs to and what it carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Topic {
    node: String,
    kind: TopicKind,
}

impl Topic {
    /// The topic `kind` of `node`; the node name must be a DNS-1123 subdomain.
    pub fn new(node: &str, kind: TopicKind) -> Result<Self, TopicError> {
        let topic = Topic {
            node: node.to_string(),
            kind,
        };
        check_node(node).map_err(|reason| TopicError {
            topic: topic.to_string(),
            reason,
        })?;
        Ok(topic)
    }

    /// Parses a topic name; anything that is not exactly one of the Bramble
    /// topics of a validly named node is refused with the reason.
    pub fn parse(topic: &str) -> Result<Self, TopicError> {
        let err = |reason: String| TopicError {
            topic: topic.to_string(),
            reason,
        };
        let rest = topic.strip_prefix(PREFIX).ok_or_else(|| {
            if topic.starts_with("bramble/") {
                err(format!(
                    "unsupported protocol version in topic (this side speaks {PREFIX}...)"
                ))
            } else {
                err(format!("not a Bramble topic (must start with {PREFIX})"))
            }
        })?;
        let rest = rest
            .strip_prefix("nodes/")
            .ok_or_else(|| err(format!("expected {PREFIX}nodes/{{node}}/...")))?;
        let (node, suffix) = rest
            .split_once('/')
            .ok_or_else(|| err("missing the part after the node name".into()))?;
        check_node(node).map_err(|why| err(format!("node name {node:?}: {why}")))?;
        let kind = match suffix.split('/').collect::<Vec<_>>().as_slice() {
            ["hello"] => TopicKind::Hello,
            ["hello", "ack"] => TopicKind::HelloAck,
            ["status"] => TopicKind::Status,
            ["online"] => TopicKind::Online,
            ["desired"] => TopicKind::Desired,
            ["rpc", "req"] => TopicKind::RpcRequest,
            ["rpc", "resp", id] => TopicKind::RpcResponse(
                RpcId::new(id).map_err(|why| err(format!("rpc id {id:?}: {why}")))?,
            ),
            _ => {
                return Err(err(format!(
                    "unknown topic {suffix:?} (expected hello, hello/ack, status, online, \
                     desired, rpc/req or rpc/resp/{{id}})"
                )));
            }
        };
        Ok(Topic {
            node: node.to_string(),
            kind,
        })
    }

    /// The node this topic belongs to.
    pub fn node(&self) -> &str {
        &self.node
    }

    /// What the topic carries.
    pub fn kind(&self) -> &TopicKind {
        &self.kind
    }
}

impl fmt::Display for Topic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{PREFIX}nodes/{}/{}", self.node, self.kind.suffix())
    }
}

/// A node name must be a DNS-1123 subdomain, as for `Node` objects; that also
/// keeps MQTT wildcards (`+`, `#`) and `/` out of topic names.
pub fn check_node(node: &str) -> Result<(), String> {
    names::dns1123_subdomain(node)
}

/// What an agent subscribes to: its own `nodes/{node}/#` minus what it
/// publishes itself. MQTT filters cannot subtract, so these are the three
/// hub → agent topics, named exactly.
pub fn agent_subscriptions(node: &str) -> Result<Vec<String>, TopicError> {
    [
        TopicKind::Desired,
        TopicKind::RpcRequest,
        TopicKind::HelloAck,
    ]
    .into_iter()
    .map(|k| Topic::new(node, k).map(|t| t.to_string()))
    .collect()
}

/// What the hub subscribes to: every agent → hub topic of every node.
pub fn hub_subscriptions() -> Vec<String> {
    ["hello", "status", "online", "rpc/resp/+"]
        .iter()
        .map(|s| format!("{PREFIX}nodes/+/{s}"))
        .collect()
}

/// The ACL of an agent: it may publish exactly the agent → hub topics of its
/// own node. Brokers without topic ACLs must at least be backed by this check
/// in the hub's dispatcher for the authenticated connection.
pub fn node_may_publish(node: &str, topic: &str) -> bool {
    Topic::parse(topic).is_ok_and(|t| t.node == node && t.kind.direction() == Direction::AgentToHub)
}

/// The ACL of an agent: it may subscribe to exactly the filters of
/// [`agent_subscriptions`] for its own node.
pub fn node_may_subscribe(node: &str, filter: &str) -> bool {
    agent_subscriptions(node).is_ok_and(|subs| subs.iter().any(|s| s == filter))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builds_and_parses_every_topic() {
        let id = RpcId::new("r-42").unwrap();
        let kinds = [
            (TopicKind::Hello, "bramble/v2/nodes/pi-1/hello"),
            (TopicKind::HelloAck, "bramble/v2/nodes/pi-1/hello/ack"),
            (TopicKind::Status, "bramble/v2/nodes/pi-1/status"),
            (TopicKind::Online, "bramble/v2/nodes/pi-1/online"),
            (TopicKind::Desired, "bramble/v2/nodes/pi-1/desired"),
            (TopicKind::RpcRequest, "bramble/v2/nodes/pi-1/rpc/req"),
            (
                TopicKind::RpcResponse(id),
                "bramble/v2/nodes/pi-1/rpc/resp/r-42",
            ),
        ];
        for (kind, name) in kinds {
            let t = Topic::new("pi-1", kind.clone()).unwrap();
            assert_eq!(t.to_string(), name);
            assert_eq!(Topic::parse(name).unwrap(), t);
            assert_eq!(t.node(), "pi-1");
            assert_eq!(t.kind(), &kind);
        }
        assert!(TopicKind::Desired.retained() && TopicKind::Online.retained());
        assert!(!TopicKind::Status.retained());
    }

    #[test]
    fn bad_topics_are_refused_with_a_reason() {
        let cases = [
            ("other/v1/nodes/pi-1/status", "not a Bramble topic"),
            (
                "bramble/v1/nodes/pi-1/status",
                "unsupported protocol version",
            ),
            (
                "bramble/v2/pods/x/status",
                "expected bramble/v2/nodes/{node}/",
            ),
            (
                "bramble/v2/nodes/pi-1",
                "missing the part after the node name",
            ),
            ("bramble/v2/nodes/Pi_1/status", "node name \"Pi_1\""),
            ("bramble/v2/nodes/+/status", "node name \"+\""),
            ("bramble/v2/nodes//status", "node name \"\""),
            ("bramble/v2/nodes/pi-1/state", "unknown topic \"state\""),
            ("bramble/v2/nodes/pi-1/status/", "unknown topic \"status/\""),
            ("bramble/v2/nodes/pi-1/rpc/resp/a+b", "rpc id \"a+b\""),
            ("bramble/v2/nodes/pi-1/rpc/resp/", "rpc id \"\""),
            ("bramble/v2/nodes/pi-1/rpc/resp/a/b", "unknown topic"),
        ];
        for (topic, want) in cases {
            let e = Topic::parse(topic).unwrap_err();
            assert_eq!(e.topic, topic);
            assert!(e.to_string().contains(want), "{topic}: {e}");
        }
        let e = Topic::new("Bad Name", TopicKind::Status).unwrap_err();
        assert!(e.reason.contains("RFC 1123 subdomain"), "{e}");
    }

    #[test]
    fn subscriptions_and_acl() {
        assert_eq!(
            agent_subscriptions("pi-1").unwrap(),
            [
                "bramble/v2/nodes/pi-1/desired",
                "bramble/v2/nodes/pi-1/rpc/req",
                "bramble/v2/nodes/pi-1/hello/ack"
            ]
        );
        assert!(agent_subscriptions("#").is_err());
        assert_eq!(
            hub_subscriptions(),
            [
                "bramble/v2/nodes/+/hello",
                "bramble/v2/nodes/+/status",
                "bramble/v2/nodes/+/online",
                "bramble/v2/nodes/+/rpc/resp/+"
            ]
        );
        assert!(node_may_publish("pi-1", "bramble/v2/nodes/pi-1/status"));
        assert!(node_may_publish(
            "pi-1",
            "bramble/v2/nodes/pi-1/rpc/resp/r1"
        ));
        assert!(!node_may_publish("pi-1", "bramble/v2/nodes/pi-2/status"));
        assert!(!node_may_publish("pi-1", "bramble/v2/nodes/pi-1/desired"));
        assert!(node_may_subscribe("pi-1", "bramble/v2/nodes/pi-1/desired"));
        assert!(!node_may_subscribe("pi-1", "bramble/v2/nodes/pi-1/#"));
        assert!(!node_may_subscribe("pi-1", "bramble/v2/nodes/+/desired"));
    }
}
