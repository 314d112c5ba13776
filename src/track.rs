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
use std::sync::{
    atomic::{AtomicBool, Ordering},
    Arc,
};

use xvrrp_control::{config::TrackTarget, RouterId};
use xvrrp_dataplane::iface::{self, IfAddr};

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
/// [`PROBE_PERIOD`] by the [`Prober`] (the result is debounced by the
/// routers).
pub fn is_up(target: &TrackTarget) -> bool {
    match target {
        TrackTarget::Port(name) => iface::link_up(name),
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

/// What the prober found: the state of every tracked address and route,
/// and the address each router's adverts should come from.
#[derive(Debug, Default)]
pub struct ProbeReport {
    /// Tracked addresses and routes, and whether each is up.
    pub targets: Vec<(TrackTarget, bool)>,
    /// Routers and their ports' current primary addresses.
    pub primaries: Vec<(RouterId, IpAddr)>,
}

/// What one router's primary address is read from.
#[derive(Debug, Clone)]
pub struct PrimaryOf {
    /// The router.
    pub id: RouterId,
    /// Its port.
    pub port: String,
    /// IPv6 router: the port's link-local address, else its first IPv4 one.
    pub ipv6: bool,
}

/// Reads tracked addresses and routes and the ports' primary addresses
/// every [`PROBE_PERIOD`] on a thread of its own: those reads go through
/// netlink dumps and /proc, which can wait for the kernel's RTNL lock while
/// other work changes interfaces, and the real-time control thread must
/// never wait for that. The control thread takes the reports with
/// [`Prober::take`], without blocking.
#[derive(Debug)]
pub struct Prober {
    reports: std::sync::mpsc::Receiver<ProbeReport>,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Prober {
    /// Starts probing `targets` (addresses and routes; ports come as link
    /// events) and the primary addresses of `primaries`.
    ///
    /// # Errors
    /// The thread could not be started.
    pub fn start(targets: Vec<TrackTarget>, primaries: Vec<PrimaryOf>) -> io::Result<Self> {
        let (tx, reports) = std::sync::mpsc::sync_channel(4);
        let stop = Arc::new(AtomicBool::new(false));
        let stopping = Arc::clone(&stop);
        let thread = std::thread::Builder::new()
            .name("xvrrp-probe".into())
            .spawn(move || {
                while !stopping.load(Ordering::Relaxed) {
                    let report = ProbeReport {
                        targets: targets.iter().map(|t| (t.clone(), is_up(t))).collect(),
                        primaries: primaries_of(&primaries),
                    };
                    // A full channel means the control thread has not taken
                    // the last reports yet: this one can wait for the next.
                    let _ = tx.try_send(report);
                    std::thread::sleep(PROBE_PERIOD);
                }
            })?;
        Ok(Self {
            reports,
            stop,
            thread: Some(thread),
        })
    }

    /// Stops probing without waiting for the thread (it ends after its
    /// current probe); reports not taken yet are dropped. For a reload,
    /// which starts a prober for the new routers.
    pub fn retire(mut self) {
        self.stop.store(true, Ordering::Relaxed);
        // Detached: the control thread must not wait out a probe period.
        drop(self.thread.take());
    }

    /// The reports made since the last call, oldest first.
    pub fn take(&self) -> impl Iterator<Item = ProbeReport> + '_ {
        self.reports.try_iter()
    }
}

impl Drop for Prober {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// The address each router's adverts come from: its port's first IPv4
/// address, or the port's IPv6 link-local address (RFC 9568 §5.1.2.1).
/// One read of the namespace's addresses serves every router, however
/// many share a port (510 routers on one port would otherwise cost 2 000
/// netlink dumps a second).
fn primaries_of(primaries: &[PrimaryOf]) -> Vec<(RouterId, IpAddr)> {
    // The first address of each (port, family) in the kernel's order.
    let mut first: Vec<(Vec<u8>, bool, IpAddr)> = Vec::new();
    each_address(|name, addr| {
        let ipv6 = match addr {
            IpAddr::V4(_) => false,
            IpAddr::V6(a) if a.is_unicast_link_local() => true,
            IpAddr::V6(_) => return,
        };
        if !first.iter().any(|(n, v6, _)| n == name && *v6 == ipv6) {
            first.push((name.to_vec(), ipv6, addr));
        }
    });
    primaries
        .iter()
        .filter_map(|p| {
            first
                .iter()
                .find(|(n, v6, _)| n == p.port.as_bytes() && *v6 == p.ipv6)
                .map(|(_, _, addr)| (p.id, *addr))
        })
        .collect()
}

/// Whether some interface of this namespace has `addr`.
fn address_present(addr: IpAddr) -> bool {
    let mut found = false;
    each_address(|_, a| found |= a == addr);
    found
}

/// Calls `f(interface name, address)` for every IPv4 and IPv6 address of
/// this namespace's interfaces, in the kernel's order. If the addresses
/// cannot be listed there are none: tracked addresses read as absent and
/// primaries as unknown until the next probe.
fn each_address(mut f: impl FnMut(&[u8], IpAddr)) {
    // On an error `f` was not called, which is the answer described above.
    let _ = iface::for_each_ifaddr(|name, addr| match addr {
        IfAddr::V4(a, _) => f(name, IpAddr::V4(a)),
        IfAddr::V6(a, _) => f(name, IpAddr::V6(a)),
        IfAddr::Mac(_) => {}
    });
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn primaries_are_read_once_for_every_router() {
        // Loopback is up in any namespace: 127.0.0.1, and ::1, which is
        // not link-local, so no IPv6 router of it has a primary address.
        let of = |id: u16, port: &str, ipv6: bool| PrimaryOf {
            id: RouterId(id),
            port: port.to_owned(),
            ipv6,
        };
        let found = primaries_of(&[
            of(0, "lo", false),
            of(1, "lo", true),
            of(2, "no-such-port", false),
            of(3, "lo", false),
        ]);
        let lo = IpAddr::V4(Ipv4Addr::LOCALHOST);
        assert_eq!(found, vec![(RouterId(0), lo), (RouterId(3), lo)]);
    }
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
