//! What the kernel says about tracked targets: link events for the ports,
//! and the presence of tracked addresses and routes.
//!
//! The kernel tells us about carrier and admin changes through an rtnetlink
//! socket subscribed to RTNLGRP_LINK, which the control thread polls with
//! mio and feeds to the routers' debounced `LinkTracker` (control::vrrp).

use std::{
    io,
    net::{IpAddr, Ipv4Addr, Ipv6Addr},
    os::fd::{AsRawFd, RawFd},
    time::Duration,
};

use netlink_packet_core::NetlinkPayload;
use netlink_packet_route::{
    link::{LinkFlags, LinkMessage},
    RouteNetlinkMessage,
};
use netlink_sys::Socket;
use xvrrp_control::config::TrackTarget;

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
                f(link.header.index, link_is_up(&link));
            }
            NetlinkPayload::InnerMessage(RouteNetlinkMessage::DelLink(link)) => {
                f(link.header.index, false);
            }
            _ => {}
        }
    }
}

fn link_is_up(link: &LinkMessage) -> bool {
    link.header
        .flags
        .contains(LinkFlags::Up | LinkFlags::Running)
}

/// The state of a tracked target as the kernel has it now: a port's link,
/// whether an address is on some interface, whether the main table has a
/// route to a prefix. Addresses and routes are read again every
/// [`PROBE_PERIOD`] by the control loop (the result is debounced there).
pub fn is_up(target: &TrackTarget) -> bool {
    match target {
        TrackTarget::Port(name) => xvrrp_dataplane::iface::link_up(name),
        TrackTarget::Address(addr) => address_present(*addr),
        TrackTarget::Route(prefix) => match prefix.addr {
            IpAddr::V4(net) => {
                let table = std::fs::read_to_string("/proc/net/route").unwrap_or_default();
                route4_present(&table, net, prefix.prefix_len)
            }
            IpAddr::V6(net) => {
                let table = std::fs::read_to_string("/proc/net/ipv6_route").unwrap_or_default();
                route6_present(&table, net, prefix.prefix_len)
            }
        },
    }
}

/// How often tracked addresses and routes are read again.
pub const PROBE_PERIOD: Duration = Duration::from_millis(250);

/// Whether some interface of this namespace has `addr`.
fn address_present(addr: IpAddr) -> bool {
    let mut list: *mut libc::ifaddrs = std::ptr::null_mut();
    // SAFETY: getifaddrs fills `list` with a list we free below.
    if unsafe { libc::getifaddrs(&mut list) } != 0 {
        return false;
    }
    let mut found = false;
    let mut cur = list;
    while !cur.is_null() && !found {
        // SAFETY: `cur` is a node of the list getifaddrs returned.
        let ifa = unsafe { &*cur };
        if !ifa.ifa_addr.is_null() {
            // SAFETY: ifa_addr points at a sockaddr of the family it names.
            let family = i32::from(unsafe { (*ifa.ifa_addr).sa_family });
            found = match (family, addr) {
                (libc::AF_INET, IpAddr::V4(want)) => {
                    // SAFETY: an AF_INET address is a sockaddr_in.
                    let sin = unsafe { &*ifa.ifa_addr.cast::<libc::sockaddr_in>() };
                    u32::from_be(sin.sin_addr.s_addr) == u32::from(want)
                }
                (libc::AF_INET6, IpAddr::V6(want)) => {
                    // SAFETY: an AF_INET6 address is a sockaddr_in6.
                    let sin6 = unsafe { &*ifa.ifa_addr.cast::<libc::sockaddr_in6>() };
                    sin6.sin6_addr.s6_addr == want.octets()
                }
                _ => false,
            };
        }
        cur = ifa.ifa_next;
    }
    // SAFETY: `list` came from getifaddrs and is freed once.
    unsafe { libc::freeifaddrs(list) };
    found
}

/// Whether `/proc/net/route` text lists a route to exactly `net/len`.
fn route4_present(table: &str, net: Ipv4Addr, len: u8) -> bool {
    let mask = u32::MAX.checked_shl(32 - u32::from(len)).unwrap_or(0);
    table.lines().skip(1).any(|line| {
        let f: Vec<&str> = line.split_whitespace().collect();
        let hex = |i: usize| f.get(i).and_then(|v| u32::from_str_radix(v, 16).ok());
        // The kernel prints the network-order words as native integers.
        let addr = |v: u32| Ipv4Addr::from(v.to_ne_bytes());
        match (hex(1), hex(7)) {
            (Some(dst), Some(m)) => addr(dst) == net && u32::from(addr(m)) == mask,
            _ => false,
        }
    })
}

/// Whether `/proc/net/ipv6_route` text lists a route to exactly `net/len`.
fn route6_present(table: &str, net: Ipv6Addr, len: u8) -> bool {
    let want = format!("{:032x} {:02x}", u128::from(net), len);
    table.lines().any(|line| line.starts_with(&want))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use netlink_packet_core::{NetlinkHeader, NetlinkMessage};

    #[test]
    fn routes_are_found_by_exact_prefix() {
        // 192.0.2.0/24 on lan0 and a default route via 203.0.113.254, as a
        // little-endian kernel prints them.
        let table =
            "Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT\n\
                     wan0\t00000000\tFE7100CB\t0003\t0\t0\t0\t00000000\t0\t0\t0\n\
                     lan0\t000200C0\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0\n";
        if cfg!(target_endian = "little") {
            assert!(route4_present(table, Ipv4Addr::UNSPECIFIED, 0));
            assert!(route4_present(table, Ipv4Addr::new(192, 0, 2, 0), 24));
            assert!(!route4_present(table, Ipv4Addr::new(192, 0, 2, 0), 25));
            assert!(!route4_present(table, Ipv4Addr::new(198, 51, 100, 0), 24));
        }
        let table6 = "20010db8000200000000000000000000 40 00000000000000000000000000000000 00 00000000000000000000000000000000 00000100 00000001 00000000 00000001     wan0\n";
        assert!(route6_present(table6, "2001:db8:2::".parse().unwrap(), 64));
        assert!(!route6_present(table6, "2001:db8:2::".parse().unwrap(), 48));
        assert!(!route4_present(
            "garbage\nmore garbage",
            Ipv4Addr::UNSPECIFIED,
            0
        ));
    }

    #[test]
    fn an_address_on_no_interface_is_not_present() {
        assert!(!address_present("198.51.100.254".parse().unwrap()));
    }

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
