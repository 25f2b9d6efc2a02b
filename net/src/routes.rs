//! IPv4 routes in the main table that Bramble owns, reconciled as a set.
//!
//! Ownership is the route protocol field (`ip route ... proto N`): node
//! routes (host-gw to other nodes' pod CIDRs, the service CIDR) carry
//! [`NODE_PROTO`] and are reconciled as a whole by [`reconcile`]; the
//! `podIP/32 dev <veth>` routes of [`crate::veth`] carry [`POD_PROTO`] and
//! go with their veth. 77 and 78 are unassigned in iproute2's `rt_protos`
//! (188, an obvious pick, is OSPF's); a route of any other protocol is
//! never added over, replaced or deleted.

use std::net::Ipv4Addr;
use std::path::Path;

use netlink_packet_route::route::{
    RouteAddress, RouteAttribute, RouteHeader, RouteMessage, RouteProtocol, RouteScope, RouteType,
};
use netlink_packet_route::{AddressFamily, RouteNetlinkMessage};

use crate::NetError;
use crate::nl::{NLM_F_CREATE, NLM_F_EXCL, NLM_F_REPLACE, Nl, link_index, routes, with_nl};

/// Route protocol of the node routes [`reconcile`] owns.
pub const NODE_PROTO: u8 = 77;
/// Route protocol of the pod host routes (`podIP/32 dev <veth>`).
pub const POD_PROTO: u8 = 78;

/// Where a route sends traffic.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum NextHop {
    /// Through a gateway (host-gw: another node's LAN address).
    Via(Ipv4Addr),
    /// Straight out of a link (scope link).
    Dev(String),
}

/// A wanted route: destination prefix and next hop.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Route {
    pub dst: Ipv4Addr,
    pub prefix: u8,
    pub next: NextHop,
}

impl std::fmt::Display for Route {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.next {
            NextHop::Via(gw) => write!(f, "{}/{} via {gw}", self.dst, self.prefix),
            NextHop::Dev(d) => write!(f, "{}/{} dev {d}", self.dst, self.prefix),
        }
    }
}

/// An installed route as [`plan`] compares it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Installed {
    pub dst: Ipv4Addr,
    pub prefix: u8,
    pub gateway: Option<Ipv4Addr>,
    pub oif: Option<u32>,
}

/// A wanted route with its link resolved to an index.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resolved {
    pub route: Route,
    pub gateway: Option<Ipv4Addr>,
    pub oif: Option<u32>,
}

/// What [`plan`] decided for one route.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    Add(Resolved),
    Replace(Resolved),
    Delete(Installed),
}

/// Installed (ours only) vs wanted → actions. Same destination and prefix
/// is the same route; a different next hop is a replace.
pub fn plan(installed: &[Installed], wanted: &[Resolved]) -> Vec<Action> {
    let mut out = Vec::new();
    for w in wanted {
        let same = |i: &&Installed| i.dst == w.route.dst && i.prefix == w.route.prefix;
        match installed.iter().find(same) {
            None => out.push(Action::Add(w.clone())),
            Some(i) => {
                let ok = match w.gateway {
                    Some(gw) => i.gateway == Some(gw),
                    None => i.gateway.is_none() && i.oif == w.oif,
                };
                if !ok {
                    out.push(Action::Replace(w.clone()));
                }
            }
        }
    }
    for i in installed {
        if !wanted
            .iter()
            .any(|w| w.route.dst == i.dst && w.route.prefix == i.prefix)
        {
            out.push(Action::Delete(i.clone()));
        }
    }
    out
}

/// What [`reconcile`] changed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Changes {
    pub added: Vec<Route>,
    pub replaced: Vec<Route>,
    pub removed: Vec<(Ipv4Addr, u8)>,
}

impl Changes {
    pub fn is_empty(&self) -> bool {
        self.added.is_empty() && self.replaced.is_empty() && self.removed.is_empty()
    }
}

fn installed_of(m: &RouteMessage) -> Installed {
    let mut dst = None;
    let mut gateway = None;
    let mut oif = None;
    for a in &m.attributes {
        match a {
            RouteAttribute::Destination(RouteAddress::Inet(d)) => dst = Some(*d),
            RouteAttribute::Gateway(RouteAddress::Inet(g)) => gateway = Some(*g),
            RouteAttribute::Oif(i) => oif = Some(*i),
            _ => {}
        }
    }
    Installed {
        dst: dst.unwrap_or(Ipv4Addr::UNSPECIFIED),
        prefix: m.header.destination_prefix_length,
        gateway,
        oif,
    }
}

/// Our routes (main table, protocol `proto`) with the kernel's messages
/// (sent back as they are to delete them).
fn list(nl: &mut Nl, proto: u8) -> Result<Vec<(Installed, RouteMessage)>, NetError> {
    Ok(routes(nl)
        .map_err(NetError::netlink("list routes"))?
        .into_iter()
        .filter(|m| {
            m.header.table == RouteHeader::RT_TABLE_MAIN && u8::from(m.header.protocol) == proto
        })
        .map(|m| (installed_of(&m), m))
        .collect())
}

/// `RTM_NEWROUTE` for `r`: main table, unicast, scope link for a route
/// straight out of a link (universe otherwise).
fn message(r: &Resolved, proto: u8) -> RouteMessage {
    let mut m = RouteMessage::default();
    m.header.address_family = AddressFamily::Inet;
    m.header.table = RouteHeader::RT_TABLE_MAIN;
    m.header.protocol = RouteProtocol::from(proto);
    m.header.scope = RouteScope::Universe;
    m.header.kind = RouteType::Unicast;
    m.header.destination_prefix_length = r.route.prefix;
    m.attributes
        .push(RouteAttribute::Destination(RouteAddress::Inet(r.route.dst)));
    if let Some(gw) = r.gateway {
        m.attributes
            .push(RouteAttribute::Gateway(RouteAddress::Inet(gw)));
    }
    if let Some(i) = r.oif {
        m.attributes.push(RouteAttribute::Oif(i));
        if r.gateway.is_none() {
            m.header.scope = RouteScope::Link;
        }
    }
    m
}

/// Adds `r` (`replace`: or replaces the route to its destination).
fn send_add(nl: &mut Nl, r: &Resolved, proto: u8, replace: bool) -> std::io::Result<()> {
    let how = if replace { NLM_F_REPLACE } else { NLM_F_EXCL };
    nl.ack(
        RouteNetlinkMessage::NewRoute(message(r, proto)),
        NLM_F_CREATE | how,
    )
}

fn resolve(nl: &mut Nl, wanted: &[Route]) -> Result<Vec<Resolved>, NetError> {
    let mut out = Vec::new();
    for r in wanted {
        let (gateway, oif) = match &r.next {
            NextHop::Via(gw) => (Some(*gw), None),
            NextHop::Dev(d) => {
                let i = link_index(nl, d)?
                    .ok_or_else(|| NetError::Invalid(format!("route {r}: no link {d:?}")))?;
                (None, Some(i))
            }
        };
        out.push(Resolved {
            route: r.clone(),
            gateway,
            oif,
        });
    }
    Ok(out)
}

/// Makes the main table's routes of protocol `proto` in `netns` (the
/// caller's with `None`) exactly `wanted`.
pub fn reconcile(netns: Option<&Path>, proto: u8, wanted: &[Route]) -> Result<Changes, NetError> {
    with_nl(netns, |nl| {
        let installed = list(nl, proto)?;
        let resolved = resolve(nl, wanted)?;
        let only: Vec<Installed> = installed.iter().map(|(i, _)| i.clone()).collect();
        let mut changes = Changes::default();
        for a in plan(&only, &resolved) {
            match a {
                Action::Add(r) => {
                    send_add(nl, &r, proto, false)
                        .map_err(NetError::netlink(format!("add route {}", r.route)))?;
                    changes.added.push(r.route);
                }
                Action::Replace(r) => {
                    send_add(nl, &r, proto, true)
                        .map_err(NetError::netlink(format!("replace route {}", r.route)))?;
                    changes.replaced.push(r.route);
                }
                Action::Delete(i) => {
                    if let Some((_, m)) = installed.iter().find(|(x, _)| *x == i) {
                        nl.ack(RouteNetlinkMessage::DelRoute(m.clone()), 0)
                            .map_err(NetError::netlink(format!(
                                "delete route {}/{}",
                                i.dst, i.prefix
                            )))?;
                    }
                    changes.removed.push((i.dst, i.prefix));
                }
            }
        }
        Ok(changes)
    })
}

/// Adds (or replaces) `route` with protocol `proto` on an open socket.
pub(crate) fn add_on(nl: &mut Nl, proto: u8, route: &Route) -> Result<(), NetError> {
    let r = resolve(nl, std::slice::from_ref(route))?;
    send_add(nl, &r[0], proto, true).map_err(NetError::netlink(format!("add route {route}")))
}

/// Adds (or replaces) one route of protocol `proto`.
pub fn add(netns: Option<&Path>, proto: u8, route: &Route) -> Result<(), NetError> {
    with_nl(netns, |nl| add_on(nl, proto, route))
}

/// The routes of protocol `proto` in the main table (for reset and tests).
pub fn installed(netns: Option<&Path>, proto: u8) -> Result<Vec<Installed>, NetError> {
    with_nl(netns, |nl| {
        Ok(list(nl, proto)?.into_iter().map(|(i, _)| i).collect())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> Ipv4Addr {
        s.parse().unwrap()
    }

    fn via(dst: &str, prefix: u8, gw: &str) -> Resolved {
        Resolved {
            route: Route {
                dst: ip(dst),
                prefix,
                next: NextHop::Via(ip(gw)),
            },
            gateway: Some(ip(gw)),
            oif: None,
        }
    }

    fn inst(dst: &str, prefix: u8, gw: Option<&str>, oif: Option<u32>) -> Installed {
        Installed {
            dst: ip(dst),
            prefix,
            gateway: gw.map(ip),
            oif,
        }
    }

    #[test]
    fn plan_adds_replaces_and_deletes_only_what_differs() {
        let dev = Resolved {
            route: Route {
                dst: ip("10.43.0.0"),
                prefix: 16,
                next: NextHop::Dev("eth0".into()),
            },
            gateway: None,
            oif: Some(2),
        };
        let wanted = vec![
            via("10.42.2.0", 24, "10.77.0.12"),
            via("10.42.3.0", 24, "10.77.0.13"),
            dev.clone(),
        ];
        let installed = vec![
            // kept: same gateway (oif as the kernel fills it in)
            inst("10.42.2.0", 24, Some("10.77.0.12"), Some(2)),
            // moved node: replaced
            inst("10.42.3.0", 24, Some("10.77.0.99"), Some(2)),
            // gone node: deleted
            inst("10.42.4.0", 24, Some("10.77.0.14"), Some(2)),
        ];
        let actions = plan(&installed, &wanted);
        assert_eq!(
            actions,
            vec![
                Action::Replace(via("10.42.3.0", 24, "10.77.0.13")),
                Action::Add(dev.clone()),
                Action::Delete(inst("10.42.4.0", 24, Some("10.77.0.14"), Some(2))),
            ]
        );
        // Converged: nothing to do; a dev route on another link is replaced.
        let now = vec![
            inst("10.42.2.0", 24, Some("10.77.0.12"), Some(2)),
            inst("10.42.3.0", 24, Some("10.77.0.13"), Some(2)),
            inst("10.43.0.0", 16, None, Some(2)),
        ];
        assert!(plan(&now, &wanted).is_empty());
        let mut moved = now.clone();
        moved[2].oif = Some(3);
        assert_eq!(plan(&moved, &wanted), vec![Action::Replace(dev)]);
    }
}
