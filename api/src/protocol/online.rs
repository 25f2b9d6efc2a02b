//! `online` (agent → hub, `nodes/{node}/online`, QoS 1, retained): `true` after
//! every connect; the connection's last will publishes `false`, so the retained
//! value is always the node's current liveness. Lenient: unknown fields ignored.

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
}

impl Online {
    /// The payload published after connecting.
    pub fn up(session: &str) -> Self {
        Online {
            online: true,
            session: session.into(),
        }
    }

    /// The last will registered with the connection.
    pub fn last_will(session: &str) -> Self {
        Online {
            online: false,
            session: session.into(),
        }
    }
}

impl Message for Online {
    const TYPE: &'static str = "online";
    const MAX_BYTES: usize = MAX_ONLINE_BYTES;
}
