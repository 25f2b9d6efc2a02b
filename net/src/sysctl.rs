//! The few `/proc/sys/net` switches the pod network needs, written in the
//! network namespace of the calling thread (see [`crate::netns::run_in`]).

use std::path::Path;

use crate::NetError;
use crate::netns::run_in;

fn write(path: &str, value: &str) -> Result<(), NetError> {
    let cur = std::fs::read_to_string(path).unwrap_or_default();
    if cur.trim() == value {
        return Ok(());
    }
    std::fs::write(path, value).map_err(NetError::io(format!("write {value} to {path}")))
}

/// `net.ipv4.ip_forward=1` in `netns` (the caller's with `None`).
pub fn enable_forwarding(netns: Option<&Path>) -> Result<(), NetError> {
    run_in(netns, || write("/proc/sys/net/ipv4/ip_forward", "1"))
}

/// `net.ipv4.ip_forward` in `netns`.
pub fn forwarding(netns: Option<&Path>) -> Result<bool, NetError> {
    run_in(netns, || {
        std::fs::read_to_string("/proc/sys/net/ipv4/ip_forward")
            .map(|s| s.trim() == "1")
            .map_err(NetError::io("read ip_forward"))
    })
}
