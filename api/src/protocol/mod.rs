//! The versioned MQTT wire protocol between the hub and its agents: topic names,
//! message types and their JSON encoding. Pure types and validation; the hub's
//! dispatcher and the agent's session own the I/O. `docs/protocol.md` is the
//! reader-facing description and must change together with this module.
//!
//! Every payload is an [`envelope`] `{"protocol": 1, "type": "...",
//! "body": {...}}`. The topic says which message to expect; the envelope's
//! `type` must agree, so a payload published on the wrong topic is refused.

pub mod desired;
pub mod envelope;
pub mod hello;
pub mod network;
pub mod online;
pub mod rpc;
pub mod status;
pub mod topics;

#[cfg(test)]
mod tests;

pub use desired::{Desired, Freshness, Generation};
pub use envelope::{
    AgentMessage, HubMessage, Message, ProtocolError, decode, decode_from_agent, decode_from_hub,
    encode,
};
pub use hello::{Cgroups, Hello, HelloAck, HelloAuth, NodeCredentials, Platform, RefusalCode};
pub use network::{
    DnsConfig, Endpoint, FEATURE_NETWORK, NetworkConfig, PodRoute, PolicyEntry, PolicyPeer,
    PolicyPort, PolicyRule, ServiceEntry, ServicePortEntry,
};
pub use online::Online;
pub use rpc::{RpcCall, RpcChunk, RpcId, RpcRequest, RpcResponse};
pub use status::{ContainerUsage, PodKey, PodReport, PodUsage, Status, Usage};
pub use topics::{Topic, TopicError, TopicKind};

/// The mDNS service type a hub announces (`bramble-agent --join auto` looks
/// it up); TXT `mqtt` gives the broker port when the hub embeds one.
pub const MDNS_SERVICE_TYPE: &str = "_bramble._tcp.local.";

/// The wire protocol version this build speaks: the `protocol` field of every
/// envelope and the `v1` of the topic prefix.
pub const PROTOCOL_VERSION: u32 = 1;

/// The largest MQTT packet any Bramble message needs: the largest payload limit
/// ([`Desired`]'s) plus room for the fixed header and topic. MQTT clients
/// (rumqttc defaults to 10 KiB each way) and brokers (rumqttd
/// `max_payload_size`, mosquitto `message_size_limit`) must allow at least this.
pub const MAX_PACKET_BYTES: usize = desired::MAX_DESIRED_BYTES + 1024;
