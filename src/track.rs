//! Link events from the kernel, for the ports' link state and `track`.
//!
//! The kernel tells us about carrier and admin changes through an rtnetlink
//! socket subscribed to RTNLGRP_LINK, which the control thread polls with
//! mio and feeds to the routers' debounced `LinkTracker` (control::vrrp).

use std::{
    io,
    os::fd::{AsRawFd, RawFd},
};

use netlink_packet_core::NetlinkPayload;
use netlink_packet_route::{
    link::{LinkFlags, LinkMessage},
    RouteNetlinkMessage,
};
use netlink_sys::Socket;

use crate::rtnl;

/// An rtnetlink socket subscribed to link events, non-blocking.
#[derive(Debug)]
pub struct LinkEvents {
    socket: Socket,
    buf: Vec<u8>,
}

impl LinkEvents {
    /// Opens and subscribes the socket.
    ///
    /// # Errors
    /// socket/bind failures.
    pub fn open() -> io::Result<Self> {
        Ok(Self {
            socket: rtnl::subscribe(&[libc::RTNLGRP_LINK])?,
            buf: vec![0u8; rtnl::DATAGRAM_MAX],
        })
    }

    /// The descriptor to register with mio.
    pub fn raw_fd(&self) -> RawFd {
        self.socket.as_raw_fd()
    }

    /// Reads every pending message; calls `f(ifindex, up)` per link event.
    pub fn drain(&mut self, mut f: impl FnMut(u32, bool)) {
        loop {
            match rtnl::recv(&self.socket, &mut self.buf) {
                Ok(0) => return,
                Ok(n) => parse_link_messages(self.buf.get(..n).unwrap_or(&[]), &mut f),
                // Some events were lost, and the next ones are queued behind
                // the error: keep reading (mio only signals new data once).
                Err(e) if rtnl::is_overrun(&e) => {
                    tracing::warn!("link events overran the socket; some were lost");
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => return,
            }
        }
    }
}

/// Walks a buffer of netlink messages and reports RTM_NEWLINK/RTM_DELLINK
/// as (ifindex, up). A link counts as up when it is administratively up and
/// has carrier (IFF_UP and IFF_RUNNING); a deleted link is down.
pub fn parse_link_messages(buf: &[u8], f: &mut impl FnMut(u32, bool)) {
    for msg in rtnl::messages(buf) {
        match msg.payload {
            NetlinkPayload::InnerMessage(RouteNetlinkMessage::NewLink(link)) => {
                f(link.header.index, is_up(&link));
            }
            NetlinkPayload::InnerMessage(RouteNetlinkMessage::DelLink(link)) => {
                f(link.header.index, false);
            }
            _ => {}
        }
    }
}

fn is_up(link: &LinkMessage) -> bool {
    link.header
        .flags
        .contains(LinkFlags::Up | LinkFlags::Running)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use netlink_packet_core::{NetlinkHeader, NetlinkMessage};

    fn msg(new: bool, index: u32, flags: LinkFlags) -> Vec<u8> {
        let mut link = LinkMessage::default();
        link.header.index = index;
        link.header.flags = flags;
        let inner = if new {
            RouteNetlinkMessage::NewLink(link)
        } else {
            RouteNetlinkMessage::DelLink(link)
        };
        let mut m = NetlinkMessage::new(
            NetlinkHeader::default(),
            NetlinkPayload::InnerMessage(inner),
        );
        m.finalize();
        let mut buf = vec![0u8; m.buffer_len()];
        m.serialize(&mut buf);
        buf
    }

    #[test]
    fn parses_link_events_and_survives_garbage() {
        let up = LinkFlags::Up | LinkFlags::Running;
        let mut buf = msg(true, 3, up);
        buf.extend(msg(true, 4, LinkFlags::Up));
        buf.extend(msg(false, 5, up));
        let mut seen = Vec::new();
        parse_link_messages(&buf, &mut |i, u| seen.push((i, u)));
        assert_eq!(seen, vec![(3, true), (4, false), (5, false)]);
        for cut in 0..buf.len() {
            parse_link_messages(&buf[..cut], &mut |_, _| {});
        }
        let mut bad = msg(true, 3, up);
        bad[0..4].copy_from_slice(&1000u32.to_ne_bytes());
        let mut n = 0;
        parse_link_messages(&bad, &mut |_, _| n += 1);
        assert_eq!(n, 0);
    }
}
