//! Handling `hello`: check the join token or the node's credentials, issue
//! credentials on a token join, register the `Node`, reset the node's live
//! facts for a new session and answer with a `helloAck`.

use std::time::SystemTime;

use anyhow::Context;
use bramble_api::protocol::hello::{Accepted, Refused};
use bramble_api::protocol::{Hello, HelloAck, RefusalCode};
use bramble_api::resource::{ResourceInfo, by_plural};

use super::Ingest;
use super::node_object::{node_object, node_status};
use crate::network::pod_cidr::PodCidrExhausted;
use crate::node_auth::{HUB_USERNAME, HelloVerdict};
use crate::store::StoreError;

/// How often agents should send `status`.
pub const HEARTBEAT_MILLIS: u64 = 1000;

fn nodes() -> &'static ResourceInfo {
    by_plural("", "v1", "nodes").expect("nodes are registered")
}

impl Ingest {
    /// Answers one validated `hello` (its `nodeName` is the topic's node).
    pub(super) async fn on_hello(&self, hello: Hello) {
        let node = hello.node_name.clone();
        let ack = match self.accept(&hello).await {
            Ok(ack) => ack,
            Err(e) => {
                // No answer: the agent repeats its hello and may hit a working store.
                tracing::error!(node, error = %format!("{e:#}"), "registering node failed");
                return;
            }
        };
        match &ack {
            HelloAck::Accepted(a) => tracing::info!(
                node,
                session = hello.session,
                token_join = a.credentials.is_some(),
                arch = hello.platform.architecture,
                agent_version = hello.agent_version,
                "node registered"
            ),
            HelloAck::Refused(r) => tracing::warn!(
                node,
                session = hello.session,
                code = ?r.code,
                reason = r.reason,
                "hello refused"
            ),
        }
        self.send(&node, &ack).await;
    }

    async fn accept(&self, hello: &Hello) -> anyhow::Result<HelloAck> {
        let node = hello.node_name.as_str();
        let refuse = |code, reason: &str| {
            Ok(HelloAck::Refused(Refused {
                session: hello.session.clone(),
                code,
                reason: reason.to_string(),
            }))
        };
        if node == HUB_USERNAME {
            return refuse(
                RefusalCode::InvalidHello,
                "the node name bramble-hub is reserved for the hub: rename the node",
            );
        }
        let verdict = self
            .auth
            .check_hello(node, &hello.session, &hello.auth)
            .await?;
        let credentials = match verdict {
            HelloVerdict::Accepted(credentials) => credentials,
            HelloVerdict::Refused(code, reason) => return refuse(code, reason),
        };
        let pod_cidr = match self.register(hello).await {
            Ok(c) => c,
            // Not fatal for the agent: it retries with back-off and joins
            // once the operator frees or widens the range.
            Err(e) => match e.downcast_ref::<PodCidrExhausted>() {
                Some(full) => return refuse(RefusalCode::InvalidHello, &full.to_string()),
                None => return Err(e),
            },
        };
        let switching_login = credentials.is_some();
        self.fleet.update(node, |live| {
            live.switching_login = switching_login;
            if live.session != hello.session {
                live.session = hello.session.clone();
                live.last_seq = 0;
                live.observed = None;
                live.rejected = None;
                live.running.clear();
                live.pod_usage.clear();
                live.node_usage = None;
            }
            live.online = true;
            live.last_heartbeat = Some(SystemTime::now());
        });
        Ok(HelloAck::Accepted(Accepted {
            session: hello.session.clone(),
            credentials,
            pod_cidr,
            heartbeat_millis: Some(HEARTBEAT_MILLIS),
        }))
    }

    /// Creates or updates the `Node` object and its status (retrying on
    /// concurrent updates); returns the node's pod CIDR.
    async fn register(&self, hello: &Hello) -> anyhow::Result<Option<String>> {
        let node = hello.node_name.as_str();
        let now = humantime::format_rfc3339_seconds(SystemTime::now()).to_string();
        for _ in 0..8 {
            let existing = self.store.get(nodes(), None, node)?;
            let mut object = node_object(existing.as_ref(), hello);
            let pod_cidr = match object["spec"]["podCIDR"].as_str() {
                Some(c) if !c.is_empty() => c.to_string(),
                _ => {
                    let c = self.allocate_pod_cidr(node)?;
                    object["spec"]["podCIDR"] = c.clone().into();
                    object["spec"]["podCIDRs"] = serde_json::json!([c]);
                    c
                }
            };
            let status = node_status(existing.as_ref().and_then(|n| n.get("status")), hello, &now);
            let admitted = bramble_api::admit(object)
                .with_context(|| format!("admitting the Node object of {node}"))?
                .object;
            let written = match existing {
                None => {
                    let mut obj = admitted;
                    obj["status"] = status.clone();
                    match self.store.create(nodes(), obj).await {
                        Ok(_) => return Ok(Some(pod_cidr)),
                        Err(StoreError::AlreadyExists { .. }) => continue,
                        Err(e) => return Err(e).context("creating the Node object"),
                    }
                }
                Some(_) => self.store.update(nodes(), admitted).await,
            };
            let mut current = match written {
                Ok((obj, _)) => obj,
                Err(StoreError::Conflict { .. } | StoreError::NotFound { .. }) => continue,
                Err(e) => return Err(e).context("updating the Node object"),
            };
            if current.get("status") == Some(&status) {
                return Ok(Some(pod_cidr));
            }
            current["status"] = status;
            match self.store.update_status(nodes(), current).await {
                Ok(_) => return Ok(Some(pod_cidr)),
                Err(StoreError::Conflict { .. } | StoreError::NotFound { .. }) => continue,
                Err(e) => return Err(e).context("updating the Node status"),
            }
        }
        anyhow::bail!("the Node object of {node} changed concurrently too often")
    }

    /// A pod CIDR no other node holds (hellos are handled one at a time, so
    /// two nodes never get the same).
    fn allocate_pod_cidr(&self, node: &str) -> anyhow::Result<String> {
        let all = self
            .store
            .list(nodes(), None, &bramble_api::Selector::default())?;
        let used = all
            .items
            .iter()
            .filter(|n| n["metadata"]["name"] != node)
            .flat_map(|n| {
                let one = n["spec"]["podCIDR"].as_str().into_iter();
                let many = n["spec"]["podCIDRs"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|c| c.as_str());
                one.chain(many)
                    .filter_map(|c| c.parse().ok())
                    .collect::<Vec<_>>()
            });
        let cidr = crate::network::pod_cidr::allocate(&self.network, used)?;
        tracing::info!(node, pod_cidr = %cidr, "pod CIDR allocated");
        Ok(cidr.to_string())
    }
}
