//! Provisioning an external mosquitto's dynamic security plugin
//! (`--mqtt-url mqtt://ADMIN:PASSWORD@HOST:PORT --mqtt-dynsec`), so that the
//! broker, too, knows every node's login and lets it reach only its own
//! topics: defence in depth on top of the signed and sealed frames, which
//! keep any broker safe on their own (see `docs/protocol.md`).
//!
//! The hub logs in as a user with the plugin's `admin` role and keeps the
//! plugin's clients and roles in line with its identity ([`plan`]): after
//! every (re)connect it lists the plugin's clients, deletes the ones it
//! manages that should not be there, and creates what is missing; then it
//! sends the difference on every change of the node keys or join tokens
//! (and each minute, for tokens that expire). A node deleted on the hub is
//! deleted from the plugin at once, which disconnects it. Passwords are the
//! ones the boards derive themselves (`bramble_trust::login`): nothing is
//! sent to the boards. The commands go over the hub's own MQTT connection:
//! use TLS to the broker (M2-2) where the LAN is not trusted.

pub mod plan;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use bramble_trust::login::{self, Service};
use serde_json::{Value, json};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

use crate::fleet::{Fleet, Outgoing};
use crate::identity::Identity;
use plan::Provisioned;

/// The plugin's command topic.
pub const CONTROL: &str = "$CONTROL/dynamic-security/v1";
/// Where the plugin answers.
pub const RESPONSE: &str = "$CONTROL/dynamic-security/v1/response";
/// How long to wait for the plugin's answer to `listClients`.
const ANSWER_WAIT: Duration = Duration::from_secs(5);
/// How often the provisioning is checked without a change (token expiry).
const RECHECK: Duration = Duration::from_secs(60);
/// Pause before asking the plugin again after it did not answer.
const RETRY: Duration = Duration::from_secs(2);

/// Node key logins computed so far, by node and key fingerprint (each is an
/// X25519 and an HKDF).
type Passwords = HashMap<(String, String), String>;

/// What the plugin should hold now.
fn desired(identity: &Identity, cache: &mut Passwords) -> Provisioned {
    let mut want = Provisioned::default();
    for (name, record) in identity.nodes().all() {
        if !record.approved {
            continue;
        }
        let Ok(keys) = record.keys() else { continue };
        let key = (name.clone(), keys.fingerprint().to_string());
        let password = match cache.get(&key) {
            Some(p) => p.clone(),
            None => {
                let Some(p) = login::key_password(identity.hub_keys(), &keys, Service::Mqtt, &name)
                else {
                    continue;
                };
                cache.insert(key, p.clone());
                p
            }
        };
        want.nodes.insert(name, password);
    }
    cache.retain(|(n, _), _| want.nodes.contains_key(n));
    for t in identity.tokens().admitting_tokens() {
        want.joins.insert(
            format!("{}{}", login::JOIN_PREFIX, t.id()),
            login::join_password(&t),
        );
    }
    want
}

async fn send(fleet: &Fleet, commands: &[Value]) {
    if commands.is_empty() {
        return;
    }
    fleet
        .publish(Outgoing {
            topic: CONTROL.into(),
            payload: plan::envelope(commands),
            retain: false,
        })
        .await;
}

/// Logs the plugin's errors, except "already exists" (every resync
/// creates what may be there); returns the `listClients` data if any.
fn read_answer(payload: &[u8]) -> Option<Value> {
    let v: Value = serde_json::from_slice(payload).ok()?;
    let mut list = None;
    for r in v["responses"].as_array().into_iter().flatten() {
        let command = r["command"].as_str().unwrap_or("?");
        if let Some(err) = r["error"].as_str() {
            if !err.contains("already exists") && !err.contains("not found") {
                tracing::warn!(
                    command,
                    error = err,
                    "mosquitto dynamic security refused a command"
                );
            }
        } else if command == "listClients" {
            list = Some(r["data"].clone());
        }
    }
    list
}

/// Starts the provisioner; `answers` carries the plugin's responses (the
/// hub's MQTT client subscribes to [`RESPONSE`]), `hub_user` is the hub's
/// own broker username.
pub fn spawn(
    identity: Arc<Identity>,
    fleet: Arc<Fleet>,
    hub_user: String,
    mut answers: mpsc::Receiver<Vec<u8>>,
    mut stop: watch::Receiver<bool>,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut connections = fleet.connections();
        let mut nodes = identity.nodes().changes();
        let mut tokens = identity.tokens().changes();
        let mut cache = Passwords::new();
        let mut applied: Option<Provisioned> = None;
        let mut recheck = tokio::time::interval(RECHECK);
        loop {
            let want = desired(&identity, &mut cache);
            match &applied {
                None if *connections.borrow() > 0 => {
                    let mut cmds = plan::roles();
                    cmds.push(json!({"command": "listClients", "verbose": true}));
                    send(&fleet, &cmds).await;
                    let list = tokio::time::timeout(ANSWER_WAIT, async {
                        while let Some(a) = answers.recv().await {
                            if let Some(list) = read_answer(&a) {
                                return Some(list);
                            }
                        }
                        None
                    })
                    .await
                    .ok()
                    .flatten();
                    let Some(list) = list else {
                        tracing::warn!(user = %hub_user,
                            "no answer from mosquitto's dynamic security plugin: is it loaded, and \
                             does the hub's broker user have its admin role? (retrying)");
                        tokio::select! {
                            _ = stop.wait_for(|s| *s) => return,
                            _ = tokio::time::sleep(RETRY) => continue,
                        }
                    };
                    let mut cmds: Vec<Value> =
                        plan::hub_role(&list, &hub_user).into_iter().collect();
                    cmds.extend(plan::stale(&list, &want));
                    cmds.extend(plan::diff(&Provisioned::default(), &want));
                    send(&fleet, &cmds).await;
                    tracing::info!(
                        nodes = want.nodes.len(),
                        join_tokens = want.joins.len(),
                        "mosquitto dynamic security provisioned"
                    );
                    applied = Some(want);
                }
                Some(prev) if *prev != want => {
                    send(&fleet, &plan::diff(prev, &want)).await;
                    applied = Some(want);
                }
                _ => {}
            }
            tokio::select! {
                _ = stop.wait_for(|s| *s) => return,
                r = connections.changed() => {
                    if r.is_err() { return; }
                    applied = None;
                }
                _ = nodes.changed() => {}
                _ = tokens.changed() => {}
                _ = recheck.tick() => {}
                a = answers.recv() => match a {
                    Some(a) => { read_answer(&a); }
                    None => return,
                },
            }
        }
    })
}
