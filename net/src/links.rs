//! Looking links up: which link holds an address (the node's LAN link, out
//! of which the service CIDR is routed).

use std::net::{IpAddr, Ipv4Addr};
use std::path::Path;

use futures_util::TryStreamExt;
use rtnetlink::packet_route::address::AddressAttribute;
use rtnetlink::packet_route::link::LinkAttribute;

use crate::NetError;
use crate::nl::with_handle;

/// The name of the link in `netns` that has address `ip`, if any.
pub fn link_with_address(netns: Option<&Path>, ip: Ipv4Addr) -> Result<Option<String>, NetError> {
    with_handle(netns, |h| async move {
        let mut addrs = h.address().get().execute();
        let mut index = None;
        while let Some(a) = addrs
            .try_next()
            .await
            .map_err(NetError::netlink("list addresses"))?
        {
            if a.attributes
                .iter()
                .any(|x| matches!(x, AddressAttribute::Local(IpAddr::V4(v)) if *v == ip))
            {
                index = Some(a.header.index);
                break;
            }
        }
        let Some(index) = index else {
            return Ok(None);
        };
        let mut links = h.link().get().match_index(index).execute();
        let link = links
            .try_next()
            .await
            .map_err(NetError::netlink(format!("get link {index}")))?;
        Ok(link.and_then(|l| {
            l.attributes.into_iter().find_map(|a| match a {
                LinkAttribute::IfName(n) => Some(n),
                _ => None,
            })
        }))
    })
}
