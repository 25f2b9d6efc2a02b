//! What mosquitto's dynamic security plugin must hold for the hub's nodes
//! and join tokens, as its JSON commands (`$CONTROL/dynamic-security/v1`).
//! Pure: the provisioner ([`super`]) sends them.
//!
//! - The hub's own broker user gets role `bramble-hub` (publish `bramble/#`).
//! - Each approved node `N`: client `N` (client id `N`, its key login as
//!   password) with role `bramble-node-N`: publish only its `hello`,
//!   `status`, `online`, `rpc/resp/+`; subscribe only to its `desired`,
//!   `rpc/req`, `hello/ack` (mosquitto 2.0's dynamic security has no `%u`
//!   patterns, so one role per node).
//! - Each join token that admits joins: client `_join.<id>` (its join
//!   password) with role `bramble-join`: publish `nodes/+/hello`, subscribe
//!   `nodes/+/hello/ack`.
//!
//! Everything else is denied by the plugin's default ACL access.

use std::collections::BTreeMap;

use bramble_api::protocol::topics::PREFIX;
use serde_json::{Value, json};

/// The role of the hub's own broker user.
pub const ROLE_HUB: &str = "bramble-hub";
/// The role of join-token logins.
pub const ROLE_JOIN: &str = "bramble-join";
const NODE_ROLE_PREFIX: &str = "bramble-node-";

/// The role of node `node`.
pub fn node_role(node: &str) -> String {
    format!("{NODE_ROLE_PREFIX}{node}")
}

/// What is provisioned: node name → password, join username → password.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Provisioned {
    pub nodes: BTreeMap<String, String>,
    pub joins: BTreeMap<String, String>,
}

fn acl(kind: &str, topic: String) -> Value {
    json!({"acltype": kind, "topic": topic, "priority": 0, "allow": true})
}

/// The commands that set up the fixed roles.
pub fn roles() -> Vec<Value> {
    vec![
        json!({"command": "createRole", "rolename": ROLE_HUB,
            "acls": [acl("publishClientSend", format!("{PREFIX}#"))]}),
        json!({"command": "createRole", "rolename": ROLE_JOIN, "acls": [
            acl("publishClientSend", format!("{PREFIX}nodes/+/hello")),
            acl("subscribePattern", format!("{PREFIX}nodes/+/hello/ack")),
        ]}),
    ]
}

fn add_node(node: &str, password: &str) -> [Value; 2] {
    let own = |suffix: &str| format!("{PREFIX}nodes/{node}/{suffix}");
    let mut acls: Vec<Value> = ["hello", "status", "online", "rpc/resp/+"]
        .iter()
        .map(|s| acl("publishClientSend", own(s)))
        .collect();
    acls.extend(
        ["desired", "rpc/req", "hello/ack"]
            .iter()
            .map(|s| acl("subscribeLiteral", own(s))),
    );
    [
        json!({"command": "createRole", "rolename": node_role(node), "acls": acls}),
        json!({"command": "createClient", "username": node, "password": password,
            "clientid": node, "roles": [{"rolename": node_role(node)}]}),
    ]
}

fn remove_node(node: &str) -> [Value; 2] {
    [
        json!({"command": "deleteClient", "username": node}),
        json!({"command": "deleteRole", "rolename": node_role(node)}),
    ]
}

fn add_join(user: &str, password: &str) -> Value {
    json!({"command": "createClient", "username": user, "password": password,
        "roles": [{"rolename": ROLE_JOIN}]})
}

fn remove_join(user: &str) -> Value {
    json!({"command": "deleteClient", "username": user})
}

/// The commands from `from` to `to`: removals first (a deleted client is
/// disconnected by the plugin), a changed password as removal and addition.
pub fn diff(from: &Provisioned, to: &Provisioned) -> Vec<Value> {
    let mut out = Vec::new();
    for (n, pw) in &from.nodes {
        if to.nodes.get(n) != Some(pw) {
            out.extend(remove_node(n));
        }
    }
    for (u, pw) in &from.joins {
        if to.joins.get(u) != Some(pw) {
            out.push(remove_join(u));
        }
    }
    for (n, pw) in &to.nodes {
        if from.nodes.get(n) != Some(pw) {
            out.extend(add_node(n, pw));
        }
    }
    for (u, pw) in &to.joins {
        if from.joins.get(u) != Some(pw) {
            out.push(add_join(u, pw));
        }
    }
    out
}

/// The clients a `listClients` (verbose) response names that the hub
/// manages (a `bramble-node-` role, or a `_join.` username) and `want` does
/// not have: to delete after a hub restart.
pub fn stale(list: &Value, want: &Provisioned) -> Vec<Value> {
    let clients = list["clients"].as_array().into_iter().flatten();
    let mut out = Vec::new();
    for c in clients {
        let Some(user) = c["username"].as_str() else {
            continue;
        };
        let node_role = c["roles"].as_array().into_iter().flatten().find_map(|r| {
            r["rolename"]
                .as_str()
                .and_then(|n| n.strip_prefix(NODE_ROLE_PREFIX))
        });
        if let Some(node) = node_role
            && !want.nodes.contains_key(node)
        {
            out.extend(remove_node(node));
        } else if user.starts_with(bramble_trust::login::JOIN_PREFIX)
            && !want.joins.contains_key(user)
        {
            out.push(remove_join(user));
        }
    }
    out
}

/// Gives `hub_user` the hub's role unless the `listClients` (verbose)
/// response shows it has it (adding it twice is an error of the plugin).
pub fn hub_role(list: &Value, hub_user: &str) -> Option<Value> {
    let has = list["clients"].as_array().into_iter().flatten().any(|c| {
        c["username"] == hub_user
            && c["roles"]
                .as_array()
                .into_iter()
                .flatten()
                .any(|r| r["rolename"] == ROLE_HUB)
    });
    (!has).then(|| json!({"command": "addClientRole", "username": hub_user, "rolename": ROLE_HUB}))
}

/// A command list as the plugin takes it.
pub fn envelope(commands: &[Value]) -> Vec<u8> {
    serde_json::to_vec(&json!({"commands": commands})).expect("commands serialize")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state(nodes: &[(&str, &str)], joins: &[(&str, &str)]) -> Provisioned {
        Provisioned {
            nodes: nodes
                .iter()
                .map(|(a, b)| (a.to_string(), b.to_string()))
                .collect(),
            joins: joins
                .iter()
                .map(|(a, b)| (a.to_string(), b.to_string()))
                .collect(),
        }
    }

    fn commands(v: &[Value]) -> Vec<String> {
        v.iter()
            .map(|c| {
                let name = c["username"]
                    .as_str()
                    .or(c["rolename"].as_str())
                    .unwrap_or("");
                format!("{} {name}", c["command"].as_str().unwrap())
            })
            .collect()
    }

    #[test]
    fn a_node_gets_its_own_topics_and_nothing_else() {
        let cmds = diff(&Provisioned::default(), &state(&[("pi-1", "key.x")], &[]));
        assert_eq!(
            commands(&cmds),
            ["createRole bramble-node-pi-1", "createClient pi-1"]
        );
        let acls = cmds[0]["acls"].to_string();
        for t in [
            "pi-1/status",
            "pi-1/rpc/resp/+",
            "pi-1/desired",
            "pi-1/hello/ack",
        ] {
            assert!(acls.contains(t), "{t}: {acls}");
        }
        assert!(!acls.contains('#') && !acls.contains("nodes/+"), "{acls}");
        assert_eq!(cmds[1]["clientid"], "pi-1");
    }

    #[test]
    fn changes_remove_before_they_add() {
        let a = state(&[("pi-1", "p1"), ("pi-2", "p2")], &[("_join.abc123", "j")]);
        let b = state(&[("pi-2", "p2b"), ("pi-3", "p3")], &[]);
        assert_eq!(
            commands(&diff(&a, &b)),
            [
                "deleteClient pi-1",
                "deleteRole bramble-node-pi-1",
                "deleteClient pi-2",
                "deleteRole bramble-node-pi-2",
                "deleteClient _join.abc123",
                "createRole bramble-node-pi-2",
                "createClient pi-2",
                "createRole bramble-node-pi-3",
                "createClient pi-3",
            ]
        );
        assert!(diff(&b, &b).is_empty());
    }

    #[test]
    fn stale_clients_of_the_hub_are_found_others_left_alone() {
        let list = json!({"clients": [
            {"username": "admin", "roles": [{"rolename": "admin"}, {"rolename": "bramble-hub"}]},
            {"username": "pi-1", "roles": [{"rolename": "bramble-node-pi-1"}]},
            {"username": "pi-9", "roles": [{"rolename": "bramble-node-pi-9"}]},
            {"username": "_join.old000", "roles": [{"rolename": "bramble-join"}]},
            {"username": "sensor-gw", "roles": [{"rolename": "sensors"}]}
        ]});
        let want = state(&[("pi-1", "p")], &[]);
        assert_eq!(
            commands(&stale(&list, &want)),
            [
                "deleteClient pi-9",
                "deleteRole bramble-node-pi-9",
                "deleteClient _join.old000"
            ]
        );
        assert_eq!(hub_role(&list, "admin"), None, "it has the role");
        let add = hub_role(&list, "sensor-gw").unwrap();
        assert_eq!(
            (add["command"].as_str(), add["username"].as_str()),
            (Some("addClientRole"), Some("sensor-gw"))
        );
        assert!(
            String::from_utf8(envelope(&roles()))
                .unwrap()
                .starts_with("{\"commands\":[")
        );
    }
}
