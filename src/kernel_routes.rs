//! `[routes] kernel = true`: the kernel's main routing table, mirrored into
//! the fast path, so that `ip route` and routing daemons drive it.
//!
//! A thread of its own (never the control thread, whose adverts must not
//! wait for a table of 100 000 routes to build) holds an rtnetlink socket
//! subscribed to the IPv4 and IPv6 route groups, starts from a dump of the
//! table, applies each added, replaced and deleted route to its copy, and
//! after a burst of changes settles publishes new tables to the workers
//! through the dataplane's `RoutePublisher` (which swaps them in without a
//! lock; see `xvrrp_dataplane::routes`).
//!
//! What is mirrored: unicast routes of the main table whose output
//! interface is one of the ports (a multipath route: its first next hop on
//! a port), with their gateway or none (on-link). Routes through other
//! interfaces, TOS-specific, cloned, and non-unicast ones (blackhole,
//! unreachable, prohibit, local) are left out. For one prefix the lowest
//! metric wins; connected and static routes of the configuration win over
//! the kernel's.
//!
//! The kernel deletes some IPv4 routes without telling (those of an address
//! that goes away), and drops notifications when they come faster than they
//! are read (ENOBUFS): on a link or address change and on an overrun, the
//! table is dumped again.

use std::{
    collections::{BTreeMap, HashMap},
    io,
    net::{IpAddr, Ipv4Addr, Ipv6Addr},
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc,
    },
    thread::JoinHandle,
    time::{Duration, Instant},
};

use anyhow::Context;
use mio::{Events, Interest, Poll, Token, Waker};
use netlink_packet_core::{
    NetlinkHeader, NetlinkMessage, NetlinkPayload, NLM_F_DUMP, NLM_F_DUMP_INTR, NLM_F_REQUEST,
};
use netlink_packet_route::{
    route::{RouteAddress, RouteAttribute, RouteFlags, RouteHeader, RouteMessage, RouteType},
    AddressFamily, RouteNetlinkMessage,
};
use netlink_sys::Socket;
use xvrrp_dataplane::{lpm::Route, routes::RoutePublisher};

use crate::rtnl;

/// Shortest wait after a change before publishing, so that a burst (a
/// routing daemon installing a table) is built once, not once per route.
const SETTLE: Duration = Duration::from_millis(20);
/// The wait after a change is at least this many times the last build
/// time, so that continuous churn costs the mirror at most a fifth of a
/// core however large the table.
const SETTLE_PER_BUILD: u32 = 4;
/// Wake-up of an idle mirror: frees tables the workers let go of, and
/// retries a failed dump.
const IDLE: Duration = Duration::from_secs(1);
/// Receive buffer asked for the notification socket; without it a burst of
/// route changes overruns the default buffer and forces a full dump.
const RCVBUF: usize = 8 * 1024 * 1024;
/// A dump the kernel marks inconsistent (the table changed meanwhile) is
/// tried again this many times.
const DUMP_TRIES: u32 = 5;
/// Replaced tables still held after a reap beyond this many mean a worker
/// has not finished a batch for a while (or sleeps): worth a debug line.
const RETIRED_WARN: usize = 8;

const EVENTS: Token = Token(0);
const STOP: Token = Token(1);

/// ifindex → port index, for the ports the fast path serves.
pub type PortMap = HashMap<u32, usize>;

/// What identifies a route in the kernel's main table (what RTM_DELROUTE
/// names): family, destination, prefix length and metric. Ordered so that
/// for one prefix the lowest metric comes first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Key {
    v6: bool,
    dst: u128,
    len: u8,
    metric: u32,
}

/// A kernel route the fast path can use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KernelRoute {
    /// IPv4.
    V4(Route<Ipv4Addr>),
    /// IPv6.
    V6(Route<Ipv6Addr>),
}

/// What one route message means for the mirror.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    /// The route under this key is now this one (added or replaced).
    Set(Key, KernelRoute),
    /// No usable route under this key any more (deleted, or replaced by
    /// one the fast path cannot use).
    Remove(Key),
}

/// The mirror's copy of the usable routes of the main table.
#[derive(Debug, Default)]
pub struct KernelTable {
    routes: BTreeMap<Key, KernelRoute>,
}

impl KernelTable {
    /// Applies `change`; whether the table changed.
    pub fn apply(&mut self, change: Change) -> bool {
        match change {
            Change::Set(key, route) => self.routes.insert(key, route) != Some(route),
            Change::Remove(key) => self.routes.remove(&key).is_some(),
        }
    }

    /// Replaces the whole table with a dump's routes.
    pub fn reset(&mut self, changes: impl IntoIterator<Item = Change>) {
        self.routes.clear();
        for c in changes {
            self.apply(c);
        }
    }

    /// The routes by family, each prefix's lowest metric first.
    pub fn routes(&self) -> (Vec<Route<Ipv4Addr>>, Vec<Route<Ipv6Addr>>) {
        let (mut v4, mut v6) = (Vec::new(), Vec::new());
        for route in self.routes.values() {
            match route {
                KernelRoute::V4(r) => v4.push(*r),
                KernelRoute::V6(r) => v6.push(*r),
            }
        }
        (v4, v6)
    }

    /// Number of routes.
    pub fn len(&self) -> usize {
        self.routes.len()
    }
}

/// What a route message of the kernel means for the mirror: `None` for one
/// of another table or family (or not a route at all).
pub fn change_of(msg: &RouteNetlinkMessage, ports: &PortMap) -> Option<Change> {
    let (route, deleted) = match msg {
        RouteNetlinkMessage::NewRoute(r) => (r, false),
        RouteNetlinkMessage::DelRoute(r) => (r, true),
        _ => return None,
    };
    let key = key_of(route)?;
    if deleted {
        return Some(Change::Remove(key));
    }
    Some(match usable(route, ports) {
        Some(r) => Change::Set(key, r),
        None => Change::Remove(key),
    })
}

/// The key of a route of the main table we mirror the family of.
fn key_of(msg: &RouteMessage) -> Option<Key> {
    let h = &msg.header;
    let table = msg
        .attributes
        .iter()
        .find_map(|a| match a {
            RouteAttribute::Table(t) => Some(*t),
            _ => None,
        })
        .unwrap_or(u32::from(h.table));
    // TOS-specific routes apply to some packets only; the fast path does
    // not look at the TOS, so it leaves them out.
    if table != u32::from(RouteHeader::RT_TABLE_MAIN) || h.tos != 0 {
        return None;
    }
    let v6 = match h.address_family {
        AddressFamily::Inet => false,
        AddressFamily::Inet6 => true,
        _ => return None,
    };
    let dst = msg
        .attributes
        .iter()
        .find_map(|a| match a {
            RouteAttribute::Destination(d) => address(d),
            _ => None,
        })
        .map_or(0, bits);
    let metric = msg
        .attributes
        .iter()
        .find_map(|a| match a {
            RouteAttribute::Priority(p) => Some(*p),
            _ => None,
        })
        .unwrap_or(0);
    Some(Key {
        v6,
        dst,
        len: h.destination_prefix_length,
        metric,
    })
}

/// The route as the fast path uses it, if it can.
fn usable(msg: &RouteMessage, ports: &PortMap) -> Option<KernelRoute> {
    let h = &msg.header;
    if h.kind != RouteType::Unicast || h.flags.contains(RouteFlags::Cloned) {
        return None;
    }
    let attr = |f: fn(&RouteAttribute) -> Option<u32>| msg.attributes.iter().find_map(f);
    let oif = attr(|a| match a {
        RouteAttribute::Oif(i) => Some(*i),
        _ => None,
    });
    let gateway = msg.attributes.iter().find_map(|a| match a {
        RouteAttribute::Gateway(g) => address(g),
        _ => None,
    });
    // A route through another family's gateway (RTA_VIA) cannot be used.
    if msg
        .attributes
        .iter()
        .any(|a| matches!(a, RouteAttribute::Via(_)))
    {
        return None;
    }
    // A single next hop on a port, or the first of a multipath route's.
    let (port, gateway) = match oif.and_then(|i| ports.get(&i)) {
        Some(port) => (*port, gateway),
        None => msg.attributes.iter().find_map(|a| match a {
            RouteAttribute::MultiPath(hops) => hops.iter().find_map(|hop| {
                let port = ports.get(&hop.interface_index)?;
                let gw = hop.attributes.iter().find_map(|a| match a {
                    RouteAttribute::Gateway(g) => address(g),
                    _ => None,
                });
                Some((*port, gw))
            }),
            _ => None,
        })?,
    };
    let dst = msg.attributes.iter().find_map(|a| match a {
        RouteAttribute::Destination(d) => address(d),
        _ => None,
    });
    let len = h.destination_prefix_length;
    match (h.address_family, dst, gateway) {
        (AddressFamily::Inet, None | Some(IpAddr::V4(_)), None | Some(IpAddr::V4(_))) => {
            let net = match dst {
                Some(IpAddr::V4(a)) => a,
                _ => Ipv4Addr::UNSPECIFIED,
            };
            let via = match gateway {
                Some(IpAddr::V4(g)) => Some(g),
                _ => None,
            };
            Some(KernelRoute::V4(Route {
                net,
                len,
                via,
                port,
            }))
        }
        (AddressFamily::Inet6, None | Some(IpAddr::V6(_)), None | Some(IpAddr::V6(_))) => {
            let net = match dst {
                Some(IpAddr::V6(a)) => a,
                _ => Ipv6Addr::UNSPECIFIED,
            };
            let via = match gateway {
                Some(IpAddr::V6(g)) => Some(g),
                _ => None,
            };
            Some(KernelRoute::V6(Route {
                net,
                len,
                via,
                port,
            }))
        }
        _ => None,
    }
}

fn address(a: &RouteAddress) -> Option<IpAddr> {
    match a {
        RouteAddress::Inet(v4) => Some(IpAddr::V4(*v4)),
        RouteAddress::Inet6(v6) => Some(IpAddr::V6(*v6)),
        _ => None,
    }
}

fn bits(a: IpAddr) -> u128 {
    match a {
        IpAddr::V4(v4) => u128::from(u32::from(v4)),
        IpAddr::V6(v6) => u128::from(v6),
    }
}

/// The running mirror; stopping (or dropping) it ends its thread.
#[derive(Debug)]
pub struct KernelRoutes {
    stop: Arc<AtomicBool>,
    waker: Arc<Waker>,
    thread: Option<JoinHandle<()>>,
}

impl KernelRoutes {
    /// Subscribes to route changes, dumps the main table and publishes it
    /// before returning (the fast path forwards by the kernel's routes from
    /// its first frame), then follows the changes on a thread of its own.
    ///
    /// # Errors
    /// The socket, the first dump or the thread could not be set up.
    pub fn start(mut publisher: RoutePublisher, ports: PortMap) -> anyhow::Result<Self> {
        // Subscribe before dumping, so that no change falls between the two:
        // the changes queued meanwhile are applied on top of the dump, and
        // applying one the dump already shows changes nothing.
        let groups = [
            libc::RTNLGRP_IPV4_ROUTE,
            libc::RTNLGRP_IPV6_ROUTE,
            libc::RTNLGRP_LINK,
            libc::RTNLGRP_IPV4_IFADDR,
            libc::RTNLGRP_IPV6_IFADDR,
        ];
        let mut events =
            rtnl::subscribe(&groups).context("subscribing to route changes (rtnetlink)")?;
        grow_receive_buffer(&events);
        let mut buf = vec![0u8; rtnl::DATAGRAM_MAX];
        let mut table = KernelTable::default();
        table.reset(
            dump(&mut buf, &ports).context("reading the kernel's routing table (rtnetlink)")?,
        );
        let (v4, v6) = table.routes();
        let built = publisher.publish(&v4, &v6);
        tracing::info!(
            routes = table.len(),
            build_ms = built.as_secs_f64() * 1000.0,
            "mirroring the kernel's main routing table"
        );
        let poll = Poll::new().context("starting the route mirror")?;
        poll.registry()
            .register(&mut events, EVENTS, Interest::READABLE)
            .context("starting the route mirror")?;
        let waker =
            Arc::new(Waker::new(poll.registry(), STOP).context("starting the route mirror")?);
        let stop = Arc::new(AtomicBool::new(false));
        let mut mirror = Mirror {
            poll,
            events,
            buf,
            ports,
            table,
            publisher,
            stop: Arc::clone(&stop),
            last_build: built,
        };
        let thread = std::thread::Builder::new()
            .name("xvrrp-routes".into())
            .spawn(move || mirror.run())
            .context("starting the route mirror")?;
        Ok(Self {
            stop,
            waker,
            thread: Some(thread),
        })
    }

    /// Ends the thread and waits for it.
    pub fn stop(mut self) {
        self.shutdown();
    }

    fn shutdown(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // A failed wake only delays the stop until the idle timeout.
        let _ = self.waker.wake();
        if let Some(t) = self.thread.take() {
            // A thread that panicked has aborted the process (panic = "abort").
            let _ = t.join();
        }
    }
}

impl Drop for KernelRoutes {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// The mirror thread's state.
struct Mirror {
    poll: Poll,
    events: Socket,
    buf: Vec<u8>,
    ports: PortMap,
    table: KernelTable,
    publisher: RoutePublisher,
    stop: Arc<AtomicBool>,
    last_build: Duration,
}

impl Mirror {
    fn run(&mut self) {
        let mut events = Events::with_capacity(8);
        // When the first unpublished change was applied.
        let mut pending: Option<Instant> = None;
        let mut resync = false;
        while !self.stop.load(Ordering::SeqCst) {
            let settle = SETTLE.max(self.last_build * SETTLE_PER_BUILD);
            let timeout = match pending {
                Some(since) => settle.saturating_sub(since.elapsed()),
                None => IDLE,
            };
            if let Err(e) = self.poll.poll(&mut events, Some(timeout)) {
                if e.kind() != io::ErrorKind::Interrupted {
                    tracing::warn!(error = %e, "route mirror: waiting for events failed");
                    std::thread::sleep(IDLE);
                }
                continue;
            }
            if events.iter().any(|e| e.token() == EVENTS) {
                let (changed, lost) = self.read_changes();
                resync |= lost;
                if changed {
                    pending.get_or_insert_with(Instant::now);
                }
            }
            if resync {
                match dump(&mut self.buf, &self.ports) {
                    Ok(routes) => {
                        self.table.reset(routes);
                        resync = false;
                        pending.get_or_insert_with(Instant::now);
                    }
                    // Tried again at the next wake-up, at most IDLE away.
                    Err(e) => tracing::warn!(error = %e, "route mirror: dumping the table failed"),
                }
            }
            if pending.is_some_and(|since| since.elapsed() >= settle) {
                let (v4, v6) = self.table.routes();
                self.last_build = self.publisher.publish(&v4, &v6);
                pending = None;
                tracing::debug!(
                    routes = self.table.len(),
                    build_ms = self.last_build.as_secs_f64() * 1000.0,
                    "kernel routes published"
                );
            }
            self.publisher.reap();
            if self.publisher.retired() > RETIRED_WARN {
                tracing::debug!(
                    retired = self.publisher.retired(),
                    "replaced route tables still held by a worker"
                );
            }
        }
    }

    /// Applies every queued notification; (table changed, must dump again).
    fn read_changes(&mut self) -> (bool, bool) {
        let (mut changed, mut resync) = (false, false);
        loop {
            let n = match rtnl::recv(&self.events, &mut self.buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) if rtnl::is_overrun(&e) => {
                    tracing::debug!("route changes overran the socket; dumping the table again");
                    resync = true;
                    continue;
                }
                Err(e) => {
                    tracing::warn!(error = %e, "route mirror: reading changes failed");
                    resync = true;
                    break;
                }
            };
            for msg in rtnl::messages(self.buf.get(..n).unwrap_or(&[])) {
                let NetlinkPayload::InnerMessage(inner) = msg.payload else {
                    continue;
                };
                match &inner {
                    RouteNetlinkMessage::NewRoute(_) | RouteNetlinkMessage::DelRoute(_) => {
                        if let Some(change) = change_of(&inner, &self.ports) {
                            changed |= self.table.apply(change);
                        }
                    }
                    // Routes may have gone without a word (IPv4 routes of a
                    // removed address) or come back with a link.
                    RouteNetlinkMessage::NewLink(_)
                    | RouteNetlinkMessage::DelLink(_)
                    | RouteNetlinkMessage::NewAddress(_)
                    | RouteNetlinkMessage::DelAddress(_) => resync = true,
                    _ => {}
                }
            }
        }
        (changed, resync)
    }
}

/// The kernel's wish for a bigger receive buffer needs CAP_NET_ADMIN past
/// `net.core.rmem_max` (SO_RCVBUFFORCE); without it the plain option gives
/// what the limit allows, and an overrun costs a dump, not correctness.
fn grow_receive_buffer(socket: &Socket) {
    use std::os::fd::AsRawFd;
    let size = libc::c_int::try_from(RCVBUF).unwrap_or(libc::c_int::MAX);
    let len = libc::socklen_t::try_from(std::mem::size_of::<libc::c_int>()).unwrap_or(4);
    // SAFETY: setsockopt reads `len` bytes from a live c_int on our stack.
    let rc = unsafe {
        libc::setsockopt(
            socket.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_RCVBUFFORCE,
            (&size as *const libc::c_int).cast(),
            len,
        )
    };
    if rc != 0 {
        let _ = socket.set_rx_buf_sz(size);
    }
}

/// Dumps the main table (both families) on a socket of its own; the usable
/// routes as changes to apply to an empty table.
fn dump(buf: &mut [u8], ports: &PortMap) -> io::Result<Vec<Change>> {
    let socket = rtnl::request_socket()?;
    for _ in 0..DUMP_TRIES {
        let mut header = NetlinkHeader::default();
        header.flags = NLM_F_REQUEST | NLM_F_DUMP;
        header.sequence_number = 1;
        // AF_UNSPEC: every family's routes in one dump.
        let request = NetlinkMessage::new(
            header,
            NetlinkPayload::InnerMessage(RouteNetlinkMessage::GetRoute(RouteMessage::default())),
        );
        rtnl::send(&socket, request)?;
        let mut changes = Vec::new();
        let mut interrupted = false;
        'dump: loop {
            let n = rtnl::recv(&socket, buf)?;
            if n == 0 {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "the kernel closed the dump",
                ));
            }
            for msg in rtnl::messages(buf.get(..n).unwrap_or(&[])) {
                interrupted |= msg.header.flags & NLM_F_DUMP_INTR != 0;
                match msg.payload {
                    NetlinkPayload::Done(_) => break 'dump,
                    NetlinkPayload::Error(e) => {
                        return Err(e.to_io());
                    }
                    NetlinkPayload::InnerMessage(inner) => {
                        if let Some(Change::Set(key, route)) = change_of(&inner, ports) {
                            changes.push(Change::Set(key, route));
                        }
                    }
                    _ => {}
                }
            }
        }
        if !interrupted {
            return Ok(changes);
        }
    }
    Err(io::Error::other(
        "the routing table kept changing during the dump",
    ))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use netlink_packet_route::route::RouteNextHop;

    const LAN: u32 = 2;
    const WAN: u32 = 3;

    fn ports() -> PortMap {
        HashMap::from([(LAN, 0), (WAN, 1)])
    }

    fn v4(dst: Option<[u8; 4]>, len: u8, gw: Option<[u8; 4]>, oif: u32) -> RouteMessage {
        let mut m = RouteMessage::default();
        m.header.address_family = AddressFamily::Inet;
        m.header.destination_prefix_length = len;
        m.header.table = RouteHeader::RT_TABLE_MAIN;
        m.header.kind = RouteType::Unicast;
        if let Some(d) = dst {
            m.attributes
                .push(RouteAttribute::Destination(RouteAddress::Inet(d.into())));
        }
        if let Some(g) = gw {
            m.attributes
                .push(RouteAttribute::Gateway(RouteAddress::Inet(g.into())));
        }
        m.attributes.push(RouteAttribute::Oif(oif));
        m
    }

    fn new(m: RouteMessage) -> RouteNetlinkMessage {
        RouteNetlinkMessage::NewRoute(m)
    }

    #[test]
    fn routes_through_a_port_are_mirrored_with_their_gateway() {
        let m = v4(Some([198, 51, 100, 0]), 24, Some([203, 0, 113, 100]), WAN);
        let Some(Change::Set(key, route)) = change_of(&new(m.clone()), &ports()) else {
            panic!("not mirrored");
        };
        assert_eq!(
            route,
            KernelRoute::V4(Route {
                net: Ipv4Addr::new(198, 51, 100, 0),
                len: 24,
                via: Some(Ipv4Addr::new(203, 0, 113, 100)),
                port: 1
            })
        );
        // Deleting names the same key.
        assert_eq!(
            change_of(&RouteNetlinkMessage::DelRoute(m), &ports()),
            Some(Change::Remove(key))
        );
        // A default route without a destination attribute, on-link.
        let Some(Change::Set(_, KernelRoute::V4(r))) =
            change_of(&new(v4(None, 0, None, LAN)), &ports())
        else {
            panic!("default route not mirrored");
        };
        assert_eq!(
            (r.net, r.len, r.via, r.port),
            (Ipv4Addr::UNSPECIFIED, 0, None, 0)
        );
    }

    #[test]
    fn other_interfaces_tables_types_and_tos_are_left_out() {
        let m = v4(Some([10, 0, 0, 0]), 8, Some([192, 0, 2, 9]), 99);
        assert!(matches!(
            change_of(&new(m), &ports()),
            Some(Change::Remove(_))
        ));
        let mut m = v4(Some([10, 0, 0, 0]), 8, None, LAN);
        m.header.kind = RouteType::BlackHole;
        assert!(matches!(
            change_of(&new(m), &ports()),
            Some(Change::Remove(_))
        ));
        let mut m = v4(Some([10, 0, 0, 0]), 8, None, LAN);
        m.header.table = 255;
        assert_eq!(change_of(&new(m), &ports()), None);
        let mut m = v4(Some([10, 0, 0, 0]), 8, None, LAN);
        m.header.table = 0;
        m.attributes.push(RouteAttribute::Table(100));
        assert_eq!(change_of(&new(m), &ports()), None);
        let mut m = v4(Some([10, 0, 0, 0]), 8, None, LAN);
        m.header.tos = 0x10;
        assert_eq!(change_of(&new(m), &ports()), None);
    }

    #[test]
    fn ipv6_and_multipath_take_the_first_hop_on_a_port() {
        let mut m = RouteMessage::default();
        m.header.address_family = AddressFamily::Inet6;
        m.header.destination_prefix_length = 48;
        m.header.table = RouteHeader::RT_TABLE_MAIN;
        m.header.kind = RouteType::Unicast;
        let dst: Ipv6Addr = "2001:db8:99::".parse().unwrap();
        let gw: Ipv6Addr = "fe80::1".parse().unwrap();
        m.attributes
            .push(RouteAttribute::Destination(RouteAddress::Inet6(dst)));
        m.attributes.push(RouteAttribute::Priority(1024));
        let mut other = RouteNextHop::default();
        other.interface_index = 99;
        let mut ours = RouteNextHop::default();
        ours.interface_index = WAN;
        ours.attributes
            .push(RouteAttribute::Gateway(RouteAddress::Inet6(gw)));
        m.attributes
            .push(RouteAttribute::MultiPath(vec![other, ours]));
        let Some(Change::Set(key, KernelRoute::V6(r))) = change_of(&new(m), &ports()) else {
            panic!("not mirrored");
        };
        assert_eq!((r.net, r.len, r.via, r.port), (dst, 48, Some(gw), 1));
        assert!(key.v6 && key.metric == 1024);
    }

    #[test]
    fn the_table_keeps_one_route_per_key_lowest_metric_first() {
        let mut t = KernelTable::default();
        let msg = |gw: u8, metric: u32| {
            let mut m = v4(Some([10, 0, 0, 0]), 8, Some([203, 0, 113, gw]), WAN);
            m.attributes.push(RouteAttribute::Priority(metric));
            change_of(&new(m), &ports()).unwrap()
        };
        assert!(t.apply(msg(1, 200)));
        assert!(t.apply(msg(2, 100)));
        assert!(
            !t.apply(msg(2, 100)),
            "the same route again changes nothing"
        );
        assert!(t.apply(msg(3, 200)), "replaced");
        let (v4, v6) = t.routes();
        assert!(v6.is_empty());
        let vias: Vec<_> = v4.iter().map(|r| r.via.unwrap().octets()[3]).collect();
        assert_eq!(vias, vec![2, 3], "metric 100 first, then the replaced 200");
        let Change::Set(key, _) = msg(2, 100) else {
            panic!()
        };
        assert!(t.apply(Change::Remove(key)));
        assert_eq!(t.len(), 1);
        t.reset([msg(9, 5)]);
        assert_eq!(t.routes().0[0].via, Some(Ipv4Addr::new(203, 0, 113, 9)));
    }

    #[test]
    fn dump_of_this_namespace_does_not_fail() {
        // Whatever this machine's table holds, reading it works (no port
        // is known, so nothing is kept).
        let mut buf = vec![0u8; rtnl::DATAGRAM_MAX];
        assert!(dump(&mut buf, &PortMap::new()).unwrap().is_empty());
    }
}
