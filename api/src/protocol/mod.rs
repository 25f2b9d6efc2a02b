//! The versioned MQTT wire protocol between the hub and its agents: topic names,
//! message types and their JSON encoding. Pure types and validation; the hub's
//! dispatcher and the agent's session own the I/O. `docs/protocol.md` is the
//! reader-facing description and must change together with this module.
//!
//! Every payload is an [`envelope`] `{"protocol": 2, "type": "...",
//! "body": {...}}`. The topic says which message to expect; the envelope's
//! `type` must agree, so a payload published on the wrong topic is refused.

pub mod build;
pub mod desired;
pub mod envelope;
pub mod hello;
pub mod network;
pub mod online;
pub mod rpc;
pub mod rpc_stdin;
pub mod status;
pub mod topics;
pub mod volumes;
pub mod wire;

#[cfg(test)]
mod tests;

pub use build::{
    BuildJob, BuildReport, FEATURE_BUILD, JobBase, JobStage, JobStep, LayerRef, PushGrant,
    StepReport,
};
pub use desired::{Desired, Freshness, Generation};
pub use envelope::{AgentMessage, HubMessage, Message, ProtocolError, decode, encode};
pub use hello::{Cgroups, Hello, HelloAck, HelloAuth, JoinProof, KeysText, Platform, RefusalCode};
pub use network::{
    DnsConfig, Endpoint, FEATURE_NETWORK, FEATURE_POD_HOSTNAMES, LbPort, NetworkConfig, PodHost,
    PodRoute, PolicyEntry, PolicyPeer, PolicyPort, PolicyRule, ServiceEntry, ServicePortEntry,
};
pub use online::Online;
pub use rpc::{RpcCall, RpcChunk, RpcId, RpcRequest, RpcResponse};
pub use status::{ContainerUsage, ImagePull, PodKey, PodReport, PodUsage, Status, Usage};
pub use topics::{Topic, TopicError, TopicKind};
pub use volumes::{ClaimVolume, FEATURE_VOLUMES};
pub use wire::{
    FromAgent, FromHub, HubKey, Signer, Verified, decode_frame, decode_from_agent, decode_from_hub,
    encode_frame, keys_text, public_keys, verify_from_hub,
};

/// The mDNS service type a hub announces (`bramble-agent --join auto` looks
/// it up); TXT `mqtt` gives the broker port when the hub embeds one.
pub const MDNS_SERVICE_TYPE: &str = "_bramble._tcp.local.";

/// The wire protocol version this build speaks: the `protocol` field of every
/// envelope, the `v2` of the topic prefix and the version byte of every
/// frame (`bramble_trust::frame`).
pub const PROTOCOL_VERSION: u32 = 2;

/// The largest MQTT packet any Bramble message needs: the largest payload limit
/// ([`Desired`]'s) plus room for the fixed header and topic. MQTT clients
/// (rumqttc defaults to 10 KiB each way) and brokers (rumqttd
/// `max_payload_size`, mosquitto `message_size_limit`) must allow at least this.
pub const MAX_PACKET_BYTES: usize = desired::MAX_DESIRED_BYTES + 1024;
