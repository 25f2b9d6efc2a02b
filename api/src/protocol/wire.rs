//! What travels on MQTT: every message in its JSON [`super::envelope`],
//! inside a frame (`bramble_trust::frame`) signed by its sender for the
//! topic it is published on, and sealed to its receiver when the message
//! says so ([`Message::SEALED`]: `desired`, `rpcRequest`, `rpcResponse`).
//!
//! The receiving side chooses the key a frame must be signed with from the
//! topic, never from the frame: the hub uses the key it registered for the
//! topic's node ([`decode_from_agent`]); an agent the hub key it pinned at
//! join, or before that the hash its join token names ([`decode_from_hub`]).
//! The only frame verified against a key it carries itself is a `hello` of a
//! node the hub does not know by that key: a first join, whose other proof is
//! the join token (the hub checks it).

use bramble_trust::frame::{self, Frame, SEALED_OVERHEAD};
use bramble_trust::{Fingerprint, PublicKeys, SecretKeys, TrustError};

use super::envelope::{
    AgentMessage, HubMessage, Message, ProtocolError, decode, encode, not_for_us,
};
use super::hello::{Hello, HelloAck, KeysText};
use super::rpc::RpcResponse;
use super::topics::{Direction, Topic, TopicKind};
use crate::field::{FieldError, FieldErrors};

/// The public keys named by `text`.
pub fn public_keys(text: &KeysText) -> Result<PublicKeys, ProtocolError> {
    Ok(PublicKeys::from_text(&text.signing, &text.encryption)?)
}

/// The text form of `keys`.
pub fn keys_text(keys: &PublicKeys) -> KeysText {
    KeysText {
        signing: keys.signing_text(),
        encryption: keys.encryption_text(),
    }
}

/// `msg` in its envelope, signed by `sender` for `topic`, and sealed to
/// `recipient` when `M` travels sealed (then `recipient` is required).
pub fn encode_frame<M: Message>(
    sender: &SecretKeys,
    topic: &Topic,
    msg: &M,
    recipient: Option<&PublicKeys>,
) -> Result<Vec<u8>, ProtocolError> {
    let json = encode(msg)?;
    let topic = topic.to_string();
    if M::SEALED {
        let to = recipient.ok_or_else(|| ProtocolError::Encode {
            message_type: M::TYPE,
            reason: "travels sealed, and no recipient key was given".into(),
        })?;
        Ok(frame::seal(sender, to, &topic, &json)?)
    } else {
        Ok(frame::sign(sender, &topic, &json))
    }
}

/// Refuses a frame larger than `M`'s limit plus the framing, before parsing.
fn check_frame_size<M: Message>(payload: &[u8]) -> Result<(), ProtocolError> {
    let limit = M::MAX_BYTES + SEALED_OVERHEAD;
    if payload.len() > limit {
        return Err(ProtocolError::TooLarge {
            message_type: M::TYPE,
            size: payload.len(),
            limit,
        });
    }
    Ok(())
}

/// Verifies `frame` as `signer`'s for `topic`, opens it with `me` if sealed,
/// insists on a seal where `M` needs one, and decodes the message.
fn open<M: Message>(
    node: &str,
    topic: &str,
    frame: &Frame<'_>,
    signer: &PublicKeys,
    me: Option<&SecretKeys>,
) -> Result<M, ProtocolError> {
    let opened = frame.open(topic, signer, me)?;
    if M::SEALED && !opened.sealed {
        return Err(TrustError::NotSealed.into());
    }
    decode(node, &opened.body)
}

/// Decodes a frame received on a topic of `node` from the party with keys
/// `signer` (tests and simulated peers; the sides use [`decode_from_agent`]
/// and [`decode_from_hub`]).
pub fn decode_frame<M: Message>(
    node: &str,
    topic: &str,
    payload: &[u8],
    signer: &PublicKeys,
    me: Option<&SecretKeys>,
) -> Result<M, ProtocolError> {
    check_frame_size::<M>(payload)?;
    open(node, topic, &Frame::parse(payload)?, signer, me)
}

/// Who signed a message the hub accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Signer {
    /// The key the hub registered for the topic's node.
    Registered,
    /// A `hello` signed by the key it carries, which is not the registered
    /// one (a first join, or a board that lost its key): the hub must check
    /// its join token before believing anything in it.
    Claimed(Box<PublicKeys>),
}

/// A message the hub accepted from an agent.
#[derive(Debug, Clone, PartialEq)]
pub struct FromAgent {
    pub topic: Topic,
    pub message: AgentMessage,
    pub signer: Signer,
}

/// The hub's entry point: parses `topic`, refuses hub → agent topics, and
/// verifies and decodes the payload. `registered` gives the key the hub
/// registered for a node; `hub` opens what is sealed to the hub.
pub fn decode_from_agent(
    topic: &str,
    payload: &[u8],
    hub: &SecretKeys,
    registered: impl FnOnce(&str) -> Option<PublicKeys>,
) -> Result<FromAgent, ProtocolError> {
    let t = Topic::parse(topic)?;
    if t.kind().direction() != Direction::AgentToHub {
        return Err(not_for_us(&t, "it is published by the hub"));
    }
    let node = t.node().to_string();
    let key = registered(&node);
    let frame = Frame::parse(payload)?;
    if t.kind() == &TopicKind::Hello && key.as_ref().is_none_or(|k| k.key_id() != frame.key_id()) {
        check_frame_size::<Hello>(payload)?;
        let claimed = claimed_key(&node, &frame)?;
        let hello: Hello = open(&node, topic, &frame, &claimed, None)?;
        return Ok(FromAgent {
            topic: t,
            message: AgentMessage::Hello(Box::new(hello)),
            signer: Signer::Claimed(Box::new(claimed)),
        });
    }
    let key = key.ok_or(ProtocolError::UnknownNode { node: node.clone() })?;
    let message = match t.kind() {
        TopicKind::Hello => {
            check_frame_size::<Hello>(payload)?;
            AgentMessage::Hello(Box::new(open(&node, topic, &frame, &key, None)?))
        }
        TopicKind::Status => {
            check_frame_size::<super::Status>(payload)?;
            AgentMessage::Status(open(&node, topic, &frame, &key, None)?)
        }
        TopicKind::Online => {
            check_frame_size::<super::Online>(payload)?;
            AgentMessage::Online(open(&node, topic, &frame, &key, None)?)
        }
        TopicKind::RpcResponse(id) => {
            check_frame_size::<RpcResponse>(payload)?;
            let resp: RpcResponse = open(&node, topic, &frame, &key, Some(hub))?;
            if &resp.id != id {
                return Err(ProtocolError::Invalid {
                    message_type: RpcResponse::TYPE,
                    errors: FieldErrors(vec![FieldError::invalid(
                        "id",
                        format!(
                            "{:?}: must match the topic's id {:?}",
                            resp.id.as_str(),
                            id.as_str()
                        ),
                    )]),
                });
            }
            AgentMessage::RpcResponse(resp)
        }
        TopicKind::HelloAck | TopicKind::Desired | TopicKind::RpcRequest => {
            unreachable!("direction checked above")
        }
    };
    Ok(FromAgent {
        topic: t,
        message,
        signer: Signer::Registered,
    })
}

/// The key a hello claims to be signed with, read before verification (the
/// frame is then verified against it).
fn claimed_key(node: &str, frame: &Frame<'_>) -> Result<PublicKeys, ProtocolError> {
    let body = frame
        .unverified_body()
        .ok_or_else(|| ProtocolError::Malformed {
            reason: "a hello must not be sealed".into(),
        })?;
    let hello: Hello = decode(node, body)?;
    public_keys(&hello.keys)
}

/// The hub key an agent verifies against.
#[derive(Debug, Clone, Copy)]
pub enum HubKey<'a> {
    /// Pinned at join (`DATA_DIR`).
    Pinned(&'a PublicKeys),
    /// Before the first join: the fingerprint the join token names. Only a
    /// `helloAck` can be read then; its keys are checked against it.
    Expected(Fingerprint),
}

/// A message an agent accepted from its hub, and the hub's keys (to pin
/// after a first join).
#[derive(Debug, Clone, PartialEq)]
pub struct FromHub {
    pub message: HubMessage,
    pub hub: PublicKeys,
}

/// A frame from the hub whose signature verified and whose seal opened: its
/// body is the hub's, not yet decoded. An agent that cannot decode it tells
/// the hub (a forged frame never gets this far, so it cannot make the agent
/// report anything).
#[derive(Debug, Clone)]
pub struct Verified {
    topic: Topic,
    body: Vec<u8>,
    sealed: bool,
    hub: PublicKeys,
}

impl Verified {
    /// What the topic carries.
    pub fn kind(&self) -> &TopicKind {
        self.topic.kind()
    }

    /// The verified body (the JSON envelope).
    pub fn body(&self) -> &[u8] {
        &self.body
    }

    fn open<M: Message>(&self) -> Result<M, ProtocolError> {
        if M::SEALED && !self.sealed {
            return Err(TrustError::NotSealed.into());
        }
        decode(self.topic.node(), &self.body)
    }

    /// Decodes the body as the message its topic carries.
    pub fn decode(self) -> Result<FromHub, ProtocolError> {
        let message = match self.topic.kind() {
            TopicKind::HelloAck => {
                let ack: HelloAck = self.open()?;
                let named = public_keys(ack.hub())?;
                if named != self.hub {
                    return Err(ProtocolError::HubKeyMismatch {
                        expected: self.hub.fingerprint().to_string(),
                        got: named.fingerprint().to_string(),
                    });
                }
                HubMessage::HelloAck(ack)
            }
            TopicKind::Desired => HubMessage::Desired(self.open()?),
            TopicKind::RpcRequest => HubMessage::RpcRequest(self.open()?),
            _ => unreachable!("verify_from_hub admits hub topics only"),
        };
        Ok(FromHub {
            message,
            hub: self.hub,
        })
    }
}

/// An agent's entry point: parses `topic`, refuses other nodes' topics and
/// agent → hub topics, and verifies (with `hub`), opens (with `me`) and
/// decodes the payload.
pub fn decode_from_hub(
    own_node: &str,
    topic: &str,
    payload: &[u8],
    hub: HubKey<'_>,
    me: &SecretKeys,
) -> Result<FromHub, ProtocolError> {
    verify_from_hub(own_node, topic, payload, hub, me)?.decode()
}

/// The first half of [`decode_from_hub`]: everything up to a verified,
/// opened body. Its errors mean the payload is not (provably) the hub's.
pub fn verify_from_hub(
    own_node: &str,
    topic: &str,
    payload: &[u8],
    hub: HubKey<'_>,
    me: &SecretKeys,
) -> Result<Verified, ProtocolError> {
    let t = Topic::parse(topic)?;
    if t.node() != own_node {
        return Err(not_for_us(
            &t,
            &format!("it belongs to another node (this is {own_node:?})"),
        ));
    }
    if t.kind().direction() != Direction::HubToAgent {
        return Err(not_for_us(&t, "it is published by agents"));
    }
    match t.kind() {
        TopicKind::HelloAck => check_frame_size::<HelloAck>(payload)?,
        TopicKind::Desired => check_frame_size::<super::Desired>(payload)?,
        _ => check_frame_size::<super::RpcRequest>(payload)?,
    }
    let frame = Frame::parse(payload)?;
    let key = match hub {
        HubKey::Pinned(k) => k.clone(),
        HubKey::Expected(fingerprint) => {
            if t.kind() != &TopicKind::HelloAck {
                return Err(ProtocolError::NotJoined);
            }
            let body = frame
                .unverified_body()
                .ok_or_else(|| ProtocolError::Malformed {
                    reason: "a helloAck must not be sealed".into(),
                })?;
            let ack: HelloAck = decode(own_node, body)?;
            let claimed = public_keys(ack.hub())?;
            if claimed.fingerprint() != fingerprint {
                return Err(ProtocolError::HubKeyMismatch {
                    expected: fingerprint.to_string(),
                    got: claimed.fingerprint().to_string(),
                });
            }
            claimed
        }
    };
    let opened = frame.open(topic, &key, Some(me))?;
    Ok(Verified {
        topic: t,
        body: opened.body,
        sealed: opened.sealed,
        hub: key,
    })
}
