//! The envelope every payload travels in, `{"protocol": 2, "type": "status",
//! "body": {...}}`, and encoding/decoding with size limits.
//!
//! Decoding checks, in order: the payload size against the message's limit
//! (before any parsing), the protocol version (before looking at the body, so a
//! newer peer gets a version error and not a confusing body error), the `type`
//! against the topic, the body (errors carry the JSON path), then the
//! message's own validation. Unknown envelope keys are always ignored: the
//! envelope may grow advisory metadata; anything a receiver must understand
//! goes into a body, under that body's rules.

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::field::FieldErrors;

use super::PROTOCOL_VERSION;
use super::desired::Desired;
use super::hello::{Hello, HelloAck};
use super::online::Online;
use super::rpc::{RpcRequest, RpcResponse};
use super::status::Status;
use super::topics::{Topic, TopicError};

/// A message body: its envelope `type`, its size limit and its checks.
pub trait Message: Serialize + DeserializeOwned {
    /// The envelope `type`.
    const TYPE: &'static str;
    /// The largest encoded payload (envelope included) sent or accepted.
    const MAX_BYTES: usize;
    /// Whether the message travels sealed to its receiver (it carries
    /// Secrets or private data); a receiver refuses it in clear.
    const SEALED: bool = false;

    /// Checks beyond the JSON shape. `node` is the node the topic names.
    fn validate(&self, node: &str) -> FieldErrors {
        let _ = node;
        FieldErrors::new()
    }
}

/// Why a payload or topic was refused. Every variant says what a reader needs
/// to find the culprit; none echoes secret values.
#[derive(Debug, thiserror::Error)]
pub enum ProtocolError {
    #[error(
        "`{message_type}` payload of {size} bytes exceeds the limit of {limit} bytes \
         (split it, or raise the limit in a new protocol version)"
    )]
    TooLarge {
        message_type: &'static str,
        size: usize,
        limit: usize,
    },
    #[error("payload is not a Bramble message: {reason}")]
    Malformed { reason: String },
    #[error("payload has no `protocol` version (this side speaks protocol {supported})")]
    MissingVersion { supported: u32 },
    #[error(
        "payload speaks protocol version {got} but this side speaks protocol version \
         {supported}: run the same Bramble release on the hub and the agents"
    )]
    VersionMismatch { got: u64, supported: u32 },
    #[error("expected a `{expected}` message, got `{got}`")]
    WrongType { expected: &'static str, got: String },
    #[error("invalid `{message_type}` message at `{path}`: {reason}")]
    Body {
        message_type: &'static str,
        path: String,
        reason: String,
    },
    #[error("invalid `{message_type}` message: {errors}")]
    Invalid {
        message_type: &'static str,
        errors: FieldErrors,
    },
    #[error("cannot encode `{message_type}`: {reason}")]
    Encode {
        message_type: &'static str,
        reason: String,
    },
    #[error(transparent)]
    Topic(#[from] TopicError),
    #[error(transparent)]
    Trust(#[from] bramble_trust::TrustError),
    #[error(
        "node {node:?} has no registered key: it must join with a token first (or it was \
         deleted on the hub)"
    )]
    UnknownNode { node: String },
    #[error(
        "the hub's signing key {got} is not the one this node trusts ({expected}): not the hub \
         the join token was made for (a rogue hub?), or the hub's keys were replaced"
    )]
    HubKeyMismatch { expected: String, got: String },
    #[error("no hub key pinned yet: only a helloAck can be read before the node joined")]
    NotJoined,
    #[error("topic {topic} is not one this side receives: {reason}")]
    NotForUs { topic: String, reason: String },
}

#[derive(Serialize)]
struct Outgoing<'a, M> {
    protocol: u32,
    #[serde(rename = "type")]
    type_: &'static str,
    body: &'a M,
}

/// The envelope without its body, parsed first.
#[derive(Deserialize)]
struct Header {
    #[serde(default)]
    protocol: Option<u64>,
    #[serde(rename = "type", default)]
    type_: Option<String>,
}

#[derive(Deserialize)]
struct Incoming<M> {
    body: M,
}

/// Encodes `msg` in its envelope; refuses a payload over the message's limit so
/// the sender learns before the broker drops it.
pub fn encode<M: Message>(msg: &M) -> Result<Vec<u8>, ProtocolError> {
    let out = Outgoing {
        protocol: PROTOCOL_VERSION,
        type_: M::TYPE,
        body: msg,
    };
    let bytes = serde_json::to_vec(&out).map_err(|e| ProtocolError::Encode {
        message_type: M::TYPE,
        reason: e.to_string(),
    })?;
    check_size::<M>(bytes.len())?;
    Ok(bytes)
}

/// Decodes a `M` received on a topic of `node`: size, version, type, body,
/// then [`Message::validate`].
pub fn decode<M: Message>(node: &str, payload: &[u8]) -> Result<M, ProtocolError> {
    check_size::<M>(payload.len())?;
    // Parsed once into a tree; the header and then the body are read from
    // it (the body through the same path-tracking deserializer over `Value`
    // as all typed decoding, see `crate::decode::decode_slice`).
    let value: serde_json::Value =
        serde_json::from_slice(payload).map_err(|e| ProtocolError::Malformed {
            reason: e.to_string(),
        })?;
    let header = Header::deserialize(&value).map_err(|e| ProtocolError::Malformed {
        reason: e.to_string(),
    })?;
    match header.protocol {
        None => {
            return Err(ProtocolError::MissingVersion {
                supported: PROTOCOL_VERSION,
            });
        }
        Some(v) if v != u64::from(PROTOCOL_VERSION) => {
            return Err(ProtocolError::VersionMismatch {
                got: v,
                supported: PROTOCOL_VERSION,
            });
        }
        Some(_) => {}
    }
    match header.type_ {
        Some(t) if t == M::TYPE => {}
        other => {
            return Err(ProtocolError::WrongType {
                expected: M::TYPE,
                got: other.unwrap_or_else(|| "(none)".into()),
            });
        }
    }
    let msg: Incoming<M> =
        serde_path_to_error::deserialize(value).map_err(|e| ProtocolError::Body {
            message_type: M::TYPE,
            path: e.path().to_string(),
            reason: e.inner().to_string(),
        })?;
    msg.body
        .validate(node)
        .into_result()
        .map_err(|errors| ProtocolError::Invalid {
            message_type: M::TYPE,
            errors,
        })?;
    Ok(msg.body)
}

fn check_size<M: Message>(size: usize) -> Result<(), ProtocolError> {
    if size > M::MAX_BYTES {
        return Err(ProtocolError::TooLarge {
            message_type: M::TYPE,
            size,
            limit: M::MAX_BYTES,
        });
    }
    Ok(())
}

/// What the hub receives from an agent.
#[derive(Debug, Clone, PartialEq)]
pub enum AgentMessage {
    /// Boxed: rare and the largest.
    Hello(Box<Hello>),
    Status(Status),
    Online(Online),
    RpcResponse(RpcResponse),
}

/// What an agent receives from the hub.
#[derive(Debug, Clone, PartialEq)]
pub enum HubMessage {
    HelloAck(HelloAck),
    Desired(Desired),
    RpcRequest(RpcRequest),
}

pub(super) fn not_for_us(t: &Topic, reason: &str) -> ProtocolError {
    ProtocolError::NotForUs {
        topic: t.to_string(),
        reason: reason.to_string(),
    }
}
