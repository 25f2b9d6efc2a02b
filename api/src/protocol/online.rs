//! `online` (agent → hub, `nodes/{node}/online`, QoS 1, retained): `true` after
//! every connect; the connection's last will publishes `false`, so the retained
//! value is always the node's current liveness. Both are signed by the node
//! (the will when the connection is made), and carry the connection number,
//! so a recorded `false` of an earlier connection replayed later changes
//! nothing. Lenient: unknown fields ignored.

use serde::{Deserialize, Serialize};

use super::envelope::Message;

/// Limit of an encoded `online`.
pub const MAX_ONLINE_BYTES: usize = 1024;

/// The node's liveness flag.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Online {
    pub online: bool,
    /// The agent session that connected (see `hello`). A broker may deliver an
    /// old connection's last will after the new connection's `true`; the hub
    /// ignores a `false` whose session is not the node's current one.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub session: String,
    /// Counts the session's connections to the broker (1, 2, ...). The hub
    /// ignores an `online` of an earlier connection than the newest it saw.
    #[serde(default)]
    pub connection: u64,
}

impl Online {
    /// The payload published after connecting.
    pub fn up(session: &str, connection: u64) -> Self {
        Online {
            online: true,
            session: session.into(),
            connection,
        }
    }

    /// The last will registered with the connection.
    pub fn last_will(session: &str, connection: u64) -> Self {
        Online {
            online: false,
            session: session.into(),
            connection,
        }
    }
}

impl Message for Online {
    const TYPE: &'static str = "online";
    const MAX_BYTES: usize = MAX_ONLINE_BYTES;
}
