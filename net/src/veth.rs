//! A pod's link: a veth pair whose host side (`bv` + 10 hex digits of a
//! hash of the pod's key) stays on the node and whose peer is moved into
//! the pod's network namespace as `eth0`. Routed, no bridge: the pod has
//! `podIP/32`, a link route to the gateway and its default route via it;
//! the host side carries the gateway address (`/32`, so every pod's veth
//! can have it and the pod's ARP for it is answered) and the host route
//! `podIP/32 dev <host side>` (protocol [`POD_PROTO`]). Deleting the host
//! side removes the peer and the route with it.

use std::net::Ipv4Addr;
use std::os::fd::AsRawFd;
use std::path::Path;

use netlink_packet_route::RouteNetlinkMessage;
use netlink_packet_route::link::{
    InfoData, InfoKind, InfoVeth, LinkAttribute, LinkInfo, LinkMessage,
};

use crate::NetError;
use crate::nl::{
    ENODEV, NLM_F_CREATE, NLM_F_EXCL, Nl, add_address, del_link, if_name, link_index, links,
    set_link, with_nl,
};
use crate::routes::{NextHop, POD_PROTO, Route, add_on};

/// A pod's veth as made by [`create`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PodLink {
    /// The host side's name.
    pub host_if: String,
    pub pod_ip: Ipv4Addr,
    pub gateway: Ipv4Addr,
}

/// The host side's name for `key` (≤ 15 bytes: `bv` + 10 hex digits of
/// an FNV-1a hash).
pub fn host_ifname(key: &str) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in key.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    format!("bv{:010x}", h & 0xff_ffff_ffff)
}

/// The peer's name before it is renamed `eth0` in the pod.
fn peer_ifname(host: &str) -> String {
    format!("bp{}", &host[2..])
}

/// Makes the pod link of `key` (see the module docs): host side in
/// `host_netns` (the caller's with `None`), `eth0` in the namespace pinned
/// at `pod_netns`. A host side left from an earlier attempt is replaced.
/// On error the host side is removed again.
pub fn create(
    host_netns: Option<&Path>,
    pod_netns: &Path,
    key: &str,
    pod_ip: Ipv4Addr,
    gateway: Ipv4Addr,
) -> Result<PodLink, NetError> {
    let link = PodLink {
        host_if: host_ifname(key),
        pod_ip,
        gateway,
    };
    let made = host_side(host_netns, pod_netns, &link).and_then(|()| pod_side(pod_netns, &link));
    if let Err(e) = made {
        if let Err(r) = remove(host_netns, &link.host_if) {
            tracing::warn!(error = %r, link = %link.host_if, "removing a half-made pod link");
        }
        return Err(e);
    }
    Ok(link)
}

fn host_side(host_netns: Option<&Path>, pod_netns: &Path, link: &PodLink) -> Result<(), NetError> {
    let ns = std::fs::File::open(pod_netns).map_err(|source| NetError::Netns {
        path: pod_netns.to_path_buf(),
        source,
    })?;
    let fd = ns.as_raw_fd();
    let host = &link.host_if;
    let peer = peer_ifname(host);
    with_nl(host_netns, |nl| {
        if let Some(old) = link_index(nl, host)? {
            del_link(nl, old).map_err(NetError::netlink(format!("delete old link {host}")))?;
        }
        add_veth(nl, host, &peer).map_err(NetError::netlink(format!("add veth {host}")))?;
        let peer_idx = link_index(nl, &peer)?
            .ok_or_else(|| NetError::Invalid(format!("veth peer {peer} missing")))?;
        set_link(nl, peer_idx, false, vec![LinkAttribute::NetNsFd(fd)])
            .map_err(NetError::netlink(format!("move {peer} into the pod")))?;
        let idx = link_index(nl, host)?
            .ok_or_else(|| NetError::Invalid(format!("veth {host} missing")))?;
        add_address(nl, idx, link.gateway, 32).map_err(NetError::netlink(format!(
            "add {}/32 to {host}",
            link.gateway
        )))?;
        set_link(nl, idx, true, Vec::new()).map_err(NetError::netlink(format!("set {host} up")))?;
        let route = Route {
            dst: link.pod_ip,
            prefix: 32,
            next: NextHop::Dev(host.clone()),
        };
        add_on(nl, POD_PROTO, &route)
    })?;
    drop(ns);
    Ok(())
}

/// `ip link add NAME type veth peer name PEER`.
fn add_veth(nl: &mut Nl, name: &str, peer: &str) -> std::io::Result<()> {
    let mut peer_msg = LinkMessage::default();
    peer_msg
        .attributes
        .push(LinkAttribute::IfName(peer.to_string()));
    let mut m = LinkMessage::default();
    m.attributes.push(LinkAttribute::IfName(name.to_string()));
    m.attributes.push(LinkAttribute::LinkInfo(vec![
        LinkInfo::Kind(InfoKind::Veth),
        LinkInfo::Data(InfoData::Veth(InfoVeth::Peer(peer_msg))),
    ]));
    nl.ack(RouteNetlinkMessage::NewLink(m), NLM_F_CREATE | NLM_F_EXCL)
}

fn pod_side(pod_netns: &Path, link: &PodLink) -> Result<(), NetError> {
    let peer = peer_ifname(&link.host_if);
    with_nl(Some(pod_netns), |nl| {
        let idx = link_index(nl, &peer)?
            .ok_or_else(|| NetError::Invalid(format!("{peer} not in the pod's namespace")))?;
        set_link(nl, idx, false, vec![LinkAttribute::IfName("eth0".into())])
            .map_err(NetError::netlink("rename the pod's link to eth0"))?;
        add_address(nl, idx, link.pod_ip, 32)
            .map_err(NetError::netlink(format!("add {}/32 to eth0", link.pod_ip)))?;
        set_link(nl, idx, true, Vec::new()).map_err(NetError::netlink("set eth0 up"))?;
        let to_gw = Route {
            dst: link.gateway,
            prefix: 32,
            next: NextHop::Dev("eth0".into()),
        };
        add_on(nl, 4, &to_gw)?;
        let default = Route {
            dst: Ipv4Addr::UNSPECIFIED,
            prefix: 0,
            next: NextHop::Via(link.gateway),
        };
        add_on(nl, 4, &default)
    })
}

/// Deletes the host side `host_if` (its peer and route go with it); a
/// missing link is fine.
pub fn remove(host_netns: Option<&Path>, host_if: &str) -> Result<(), NetError> {
    with_nl(host_netns, |nl| match link_index(nl, host_if)? {
        None => Ok(()),
        Some(idx) => match del_link(nl, idx) {
            Ok(()) => Ok(()),
            Err(e) if e.raw_os_error() == Some(ENODEV) => Ok(()),
            Err(e) => Err(NetError::netlink(format!("delete link {host_if}"))(e)),
        },
    })
}

/// Names of the links in `netns` that look like pod links (`bv…`).
pub fn pod_links(netns: Option<&Path>) -> Result<Vec<String>, NetError> {
    with_nl(netns, |nl| {
        let all = links(nl).map_err(NetError::netlink("list links"))?;
        Ok(all
            .iter()
            .filter_map(if_name)
            .filter(|n| n.starts_with("bv") && n.len() == 12)
            .collect())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_names_are_short_stable_and_distinct() {
        let a = host_ifname("/run/bramble-agent/netns/default_web");
        assert_eq!(a.len(), 12);
        assert!(a.starts_with("bv"));
        assert_eq!(a, host_ifname("/run/bramble-agent/netns/default_web"));
        assert_ne!(a, host_ifname("/run/bramble-agent/netns/default_web2"));
        assert_eq!(peer_ifname(&a), format!("bp{}", &a[2..]));
    }
}
