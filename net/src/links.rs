//! Looking links up: which link holds an address (the node's LAN link, out
//! of which the service CIDR is routed).

use std::net::{IpAddr, Ipv4Addr};
use std::path::Path;

use netlink_packet_route::address::AddressAttribute;

use crate::NetError;
use crate::nl::{addresses, link_name, with_nl};

/// The name of the link in `netns` that has address `ip`, if any.
pub fn link_with_address(netns: Option<&Path>, ip: Ipv4Addr) -> Result<Option<String>, NetError> {
    with_nl(netns, |nl| {
        let index = addresses(nl)
            .map_err(NetError::netlink("list addresses"))?
            .into_iter()
            .find(|a| {
                a.attributes
                    .iter()
                    .any(|x| matches!(x, AddressAttribute::Local(IpAddr::V4(v)) if *v == ip))
            })
            .map(|a| a.header.index);
        match index {
            Some(index) => link_name(nl, index),
            None => Ok(None),
        }
    })
}

/// The IPv4 addresses (`IFA_LOCAL`) of the links in `netns`, loopback
/// excluded: the interfaces a LAN protocol (mDNS) talks on.
pub fn ipv4_addresses(netns: Option<&Path>) -> Result<Vec<Ipv4Addr>, NetError> {
    with_nl(netns, |nl| {
        let all = addresses(nl).map_err(NetError::netlink("list addresses"))?;
        let mut out: Vec<Ipv4Addr> = all
            .iter()
            .flat_map(|a| &a.attributes)
            .filter_map(|x| match x {
                AddressAttribute::Local(IpAddr::V4(v)) if !v.is_loopback() => Some(*v),
                _ => None,
            })
            .collect();
        out.dedup();
        Ok(out)
    })
}
