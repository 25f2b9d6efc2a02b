//! A small synchronous rtnetlink client: one `NETLINK_ROUTE` socket opened
//! in a given network namespace (see [`crate::netns`]), requests answered
//! by an ACK or an error, and dumps read up to `NLMSG_DONE`. Messages are
//! `netlink-packet-route` 0.31 / `netlink-packet-core` 0.8 over a blocking
//! `netlink-sys` 0.8 socket: the netlink stack libcontainer links into the
//! agent anyway, so the agent carries one.
//!
//! Kernel errors come back as [`std::io::Error`]s carrying the errno
//! (`raw_os_error`); callers wrap them with the operation
//! ([`NetError::netlink`]). Flags and attributes follow what `ip(8)` (and
//! rtnetlink, which this replaced) send: `CREATE|EXCL` for adds,
//! `CREATE|REPLACE` for replaces, `CREATE|EXCL` on `RTM_SETLINK`.

use std::io;
use std::net::{IpAddr, Ipv4Addr};
use std::path::Path;

use netlink_packet_core::{
    NLM_F_ACK, NLM_F_DUMP, NLM_F_MULTIPART, NLM_F_REQUEST, NLMSG_DONE, NLMSG_ERROR, NLMSG_NOOP,
    NLMSG_OVERRUN, NetlinkBuffer, NetlinkMessage, NetlinkPayload,
};
use netlink_packet_route::RouteNetlinkMessage;
use netlink_packet_route::address::{AddressAttribute, AddressMessage};
use netlink_packet_route::link::{LinkAttribute, LinkFlags, LinkMessage};
use netlink_packet_route::{AddressFamily, route};
use netlink_sys::{Socket, SocketAddr, protocols::NETLINK_ROUTE};

pub(crate) use netlink_packet_core::{NLM_F_CREATE, NLM_F_EXCL, NLM_F_REPLACE};

use crate::NetError;
use crate::netns::run_in;

/// `ENODEV`: "no such device", the answer for a missing link.
pub(crate) const ENODEV: i32 = 19;

/// Receive buffer: the kernel fills dump datagrams up to 32 KiB when the
/// reader's buffer allows it; larger than that is never needed.
const RECV_BUF: usize = 64 * 1024;

/// An open `NETLINK_ROUTE` socket.
pub(crate) struct Nl {
    socket: Socket,
    seq: u32,
    buf: Vec<u8>,
}

/// Runs `f` with a fresh netlink socket opened in `netns` (the caller's
/// with `None`).
pub(crate) fn with_nl<T: Send>(
    netns: Option<&Path>,
    f: impl FnOnce(&mut Nl) -> Result<T, NetError> + Send,
) -> Result<T, NetError> {
    run_in(netns, || {
        let mut nl = Nl::open().map_err(NetError::io("open a netlink socket"))?;
        f(&mut nl)
    })
}

impl Nl {
    /// Opens a socket in the calling thread's network namespace.
    pub(crate) fn open() -> io::Result<Nl> {
        let mut socket = Socket::new(NETLINK_ROUTE)?;
        socket.bind_auto()?;
        socket.connect(&SocketAddr::new(0, 0))?;
        Ok(Nl {
            socket,
            seq: 0,
            buf: vec![0; RECV_BUF],
        })
    }

    /// Sends `msg` with `NLM_F_REQUEST|NLM_F_ACK|extra` and waits for the
    /// kernel's answer.
    pub(crate) fn ack(&mut self, msg: RouteNetlinkMessage, extra: u16) -> io::Result<()> {
        self.exchange(msg, NLM_F_REQUEST | NLM_F_ACK | extra, |_| {})
    }

    /// Dumps (`NLM_F_DUMP`) what `msg` asks for: every reply message up to
    /// `NLMSG_DONE`, however many datagrams they span.
    pub(crate) fn dump(
        &mut self,
        msg: RouteNetlinkMessage,
    ) -> io::Result<Vec<RouteNetlinkMessage>> {
        let mut out = Vec::new();
        self.exchange(msg, NLM_F_REQUEST | NLM_F_DUMP, |m| out.push(m))?;
        Ok(out)
    }

    /// A plain request (`RTM_GET*` of one object): its single reply.
    pub(crate) fn get(
        &mut self,
        msg: RouteNetlinkMessage,
    ) -> io::Result<Option<RouteNetlinkMessage>> {
        let mut out = None;
        self.exchange(msg, NLM_F_REQUEST, |m| out = Some(m))?;
        Ok(out)
    }

    fn exchange(
        &mut self,
        msg: RouteNetlinkMessage,
        flags: u16,
        mut each: impl FnMut(RouteNetlinkMessage),
    ) -> io::Result<()> {
        self.seq = self.seq.wrapping_add(1);
        let seq = self.seq;
        let mut req = NetlinkMessage::from(msg);
        req.header.flags = flags;
        req.header.sequence_number = seq;
        req.finalize();
        let mut bytes = vec![0; req.buffer_len()];
        req.serialize(&mut bytes);
        let sent = self.socket.send(&bytes, 0)?;
        if sent != bytes.len() {
            return Err(io::Error::other("short netlink send"));
        }
        let wait_ack = flags & NLM_F_ACK != 0;
        loop {
            let n = self.socket.recv(&mut &mut self.buf[..], libc::MSG_TRUNC)?;
            if n > self.buf.len() {
                return Err(io::Error::other(format!(
                    "netlink reply of {n} bytes truncated"
                )));
            }
            let mut data = &self.buf[..n];
            while !data.is_empty() {
                let nb = NetlinkBuffer::new_checked(data).map_err(invalid)?;
                let len = nb.length() as usize;
                let (mtype, mflags, mseq) = (nb.message_type(), nb.flags(), nb.sequence_number());
                let this = &data[..len];
                // Messages are 4-byte aligned; the last may lack the padding.
                data = &data[len.next_multiple_of(4).min(data.len())..];
                if mseq != seq {
                    continue; // a late answer to an earlier request
                }
                match mtype {
                    NLMSG_NOOP => {}
                    NLMSG_ERROR | NLMSG_DONE => {
                        // Both carry an i32 (0: ACK / end of dump; else -errno).
                        let payload = nb.payload();
                        let code = match payload.get(..4) {
                            Some(b) => i32::from_ne_bytes([b[0], b[1], b[2], b[3]]),
                            None if mtype == NLMSG_DONE => 0,
                            None => return Err(invalid("short NLMSG_ERROR")),
                        };
                        return if code == 0 {
                            Ok(())
                        } else {
                            Err(io::Error::from_raw_os_error(code.saturating_abs()))
                        };
                    }
                    NLMSG_OVERRUN => return Err(io::Error::other("netlink overrun")),
                    _ => {
                        match NetlinkMessage::<RouteNetlinkMessage>::deserialize(this) {
                            Ok(NetlinkMessage {
                                payload: NetlinkPayload::InnerMessage(m),
                                ..
                            }) => each(m),
                            Ok(_) => {}
                            // One message this version cannot parse (a
                            // kernel newer than the crate) must not hide
                            // the others of a dump.
                            Err(e) if mflags & NLM_F_MULTIPART != 0 => {
                                tracing::debug!(error = %e, mtype, "skipping an undecodable netlink message");
                            }
                            Err(e) => return Err(invalid(e)),
                        }
                        if mflags & NLM_F_MULTIPART == 0 && !wait_ack {
                            return Ok(());
                        }
                    }
                }
            }
        }
    }
}

fn invalid(e: impl std::fmt::Display) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, format!("netlink: {e}"))
}

/// The index of link `name`, `None` if there is none.
pub(crate) fn link_index(nl: &mut Nl, name: &str) -> Result<Option<u32>, NetError> {
    let mut m = LinkMessage::default();
    m.attributes.push(LinkAttribute::IfName(name.to_string()));
    match nl.get(RouteNetlinkMessage::GetLink(m)) {
        Ok(Some(RouteNetlinkMessage::NewLink(l))) => Ok(Some(l.header.index)),
        Ok(_) => Ok(None),
        Err(e) if e.raw_os_error() == Some(ENODEV) => Ok(None),
        Err(e) => Err(NetError::netlink(format!("find link {name}"))(e)),
    }
}

/// The name of link `index`, `None` if there is none.
pub(crate) fn link_name(nl: &mut Nl, index: u32) -> Result<Option<String>, NetError> {
    let mut m = LinkMessage::default();
    m.header.index = index;
    match nl.get(RouteNetlinkMessage::GetLink(m)) {
        Ok(Some(RouteNetlinkMessage::NewLink(l))) => Ok(if_name(&l)),
        Ok(_) => Ok(None),
        Err(e) if e.raw_os_error() == Some(ENODEV) => Ok(None),
        Err(e) => Err(NetError::netlink(format!("get link {index}"))(e)),
    }
}

/// A link's name attribute.
pub(crate) fn if_name(l: &LinkMessage) -> Option<String> {
    l.attributes.iter().find_map(|a| match a {
        LinkAttribute::IfName(n) => Some(n.clone()),
        _ => None,
    })
}

/// Every link (`ip link show`).
pub(crate) fn links(nl: &mut Nl) -> io::Result<Vec<LinkMessage>> {
    let all = nl.dump(RouteNetlinkMessage::GetLink(LinkMessage::default()))?;
    Ok(all
        .into_iter()
        .filter_map(|m| match m {
            RouteNetlinkMessage::NewLink(l) => Some(l),
            _ => None,
        })
        .collect())
}

/// Every address (`ip addr show`).
pub(crate) fn addresses(nl: &mut Nl) -> io::Result<Vec<AddressMessage>> {
    let all = nl.dump(RouteNetlinkMessage::GetAddress(AddressMessage::default()))?;
    Ok(all
        .into_iter()
        .filter_map(|m| match m {
            RouteNetlinkMessage::NewAddress(a) => Some(a),
            _ => None,
        })
        .collect())
}

/// `RTM_SETLINK` of link `index` with `attributes` (and `up`: `IFF_UP` set).
pub(crate) fn set_link(
    nl: &mut Nl,
    index: u32,
    up: bool,
    attributes: Vec<LinkAttribute>,
) -> io::Result<()> {
    let mut m = LinkMessage::default();
    m.header.index = index;
    if up {
        m.header.flags |= LinkFlags::Up;
        m.header.change_mask |= LinkFlags::Up;
    }
    m.attributes = attributes;
    nl.ack(RouteNetlinkMessage::SetLink(m), NLM_F_CREATE | NLM_F_EXCL)
}

/// Deletes link `index` (`ip link del`).
pub(crate) fn del_link(nl: &mut Nl, index: u32) -> io::Result<()> {
    let mut m = LinkMessage::default();
    m.header.index = index;
    nl.ack(RouteNetlinkMessage::DelLink(m), 0)
}

/// Adds `ip/prefix` to link `index` (`ip addr add`).
pub(crate) fn add_address(nl: &mut Nl, index: u32, ip: Ipv4Addr, prefix: u8) -> io::Result<()> {
    let mut m = AddressMessage::default();
    m.header.family = AddressFamily::Inet;
    m.header.prefix_len = prefix;
    m.header.index = index;
    m.attributes.push(AddressAttribute::Address(IpAddr::V4(ip)));
    m.attributes.push(AddressAttribute::Local(IpAddr::V4(ip)));
    if prefix < 31 {
        let brd = Ipv4Addr::from(u32::MAX >> prefix | u32::from(ip));
        m.attributes.push(AddressAttribute::Broadcast(brd));
    }
    nl.ack(
        RouteNetlinkMessage::NewAddress(m),
        NLM_F_CREATE | NLM_F_EXCL,
    )
}

/// Every IPv4 route (`ip route show table all`).
pub(crate) fn routes(nl: &mut Nl) -> io::Result<Vec<route::RouteMessage>> {
    let mut m = route::RouteMessage::default();
    m.header.address_family = AddressFamily::Inet;
    let all = nl.dump(RouteNetlinkMessage::GetRoute(m))?;
    Ok(all
        .into_iter()
        .filter_map(|m| match m {
            RouteNetlinkMessage::NewRoute(r) => Some(r),
            _ => None,
        })
        .collect())
}
