//! Per-frame decisions of the fast path: classify, answer ARP and ICMP echo
//! for virtual addresses, forward frames sent to a virtual MAC (answering
//! what cannot be forwarded with an ICMP error, see [`icmp_errors`]), and
//! punt VRRP advertisements to the control thread.
//!
//! Everything here works on a caller-owned frame buffer and returns an
//! [`Action`]; nothing allocates, locks, logs or makes a system call, and no
//! input can make it panic (all parsing goes through checked views).

mod icmp_errors;

use std::{
    net::{IpAddr, Ipv4Addr, Ipv6Addr},
    time::Instant,
};

use xvrrp_control::{
    vrrp::{address_list_verdict, AddressList, RxAdvert},
    RouterId, RouterSpec,
};
use xvrrp_wire::{
    arp::{ArpOperation, ArpPacket, ArpRepr},
    checksum,
    error::WireError,
    ethernet::{EtherType, EthernetAddress, EthernetFrame, HEADER_LEN},
    frames::{self, Icmpv6Error},
    icmpv4::{self, Icmpv4Packet, TYPE_ECHO_REQUEST},
    icmpv6::{self, IPPROTO_ICMPV6},
    ipv4::{Ipv4Packet, IPPROTO_ICMP},
    ipv6::Ipv6Packet,
    nd::{self, NdRepr},
    vrrp::{self, AddrList, ChecksumKind, Version, VrrpRepr},
};

use icmp_errors::Icmpv4Error;

use crate::{
    lpm::{in_prefix, NextHop, RouteAddr, RouteTable},
    neigh::{Lookup, NeighbourTable},
    shared::Shared,
    stats::{Counters, DropReason, PortCounters},
    xsk::Action,
};

/// What the fast path knows of a port.
#[derive(Debug, Clone)]
pub struct PortView {
    /// Interface name.
    pub name: String,
    /// The port's own MAC.
    pub mac: EthernetAddress,
    /// The port's own IPv4 addresses with prefix lengths; the first is primary.
    pub addrs4: Vec<(Ipv4Addr, u8)>,
    /// The port's own IPv6 addresses with prefix lengths (link-local included).
    pub addrs6: Vec<(Ipv6Addr, u8)>,
}

/// What the fast path knows of a virtual router (one family), derived from
/// its [`RouterSpec`] and kept compact for the per-frame lookups.
#[derive(Debug, Clone)]
pub struct InstanceView {
    /// The router's slot in the fast path: the index of its ownership
    /// flag and of its entries in the XDP filter, and what its adverts are
    /// tagged with. It is the router's [`RouterId`] at start and stays the
    /// same across reloads (`Dataplane::reconfigure`), so the workers never
    /// see a router they serve change slot.
    pub id: RouterId,
    /// Port index.
    pub port: usize,
    /// VRID.
    pub vrid: u8,
    /// VRRP version it speaks.
    pub version: Version,
    /// Virtual MAC (00:00:5e:00:01:VRID for IPv4, 00:00:5e:00:02:VRID for IPv6).
    pub vmac: EthernetAddress,
    /// Virtual IPv4 addresses with prefix lengths.
    pub vips4: Vec<(Ipv4Addr, u8)>,
    /// Virtual IPv6 addresses with prefix lengths.
    pub vips6: Vec<(Ipv6Addr, u8)>,
    /// Answer ICMP echo sent to the virtual addresses.
    pub accept: bool,
    /// Adverts come by unicast from configured peers (to the port's own
    /// address), not to the multicast group.
    pub unicast: bool,
}

impl InstanceView {
    /// The view of `spec`, which runs on port index `port`.
    pub fn from_spec(spec: &RouterSpec, port: usize) -> Self {
        let addrs = spec.advertised_addresses();
        Self {
            id: spec.id,
            port,
            vrid: spec.vrid,
            version: spec.version,
            vmac: spec.vmac,
            vips4: addrs
                .iter()
                .filter_map(|a| match a.addr {
                    IpAddr::V4(ip) => Some((ip, a.prefix_len)),
                    IpAddr::V6(_) => None,
                })
                .collect(),
            vips6: addrs
                .iter()
                .filter_map(|a| match a.addr {
                    IpAddr::V6(ip) => Some((ip, a.prefix_len)),
                    IpAddr::V4(_) => None,
                })
                .collect(),
            accept: spec.accept,
            unicast: !spec.unicast_peers.is_empty(),
        }
    }

    /// Whether `ip` is one of the router's virtual addresses.
    fn serves(&self, ip: IpAddr) -> bool {
        match ip {
            IpAddr::V4(a) => self.vips4.iter().any(|(v, _)| *v == a),
            IpAddr::V6(a) => self.vips6.iter().any(|(v, _)| *v == a),
        }
    }

    /// The address-list verdict on an advert listing `theirs` (B16/B22).
    fn address_list(&self, version: Version, priority: u8, theirs: AddrList<'_>) -> AddressList {
        address_list_verdict(
            version,
            priority,
            self.vips4.len() + self.vips6.len(),
            |a| self.serves(a),
            theirs.len(),
            theirs.iter(),
        )
    }
}

/// The fast path's static tables (built once at start).
#[derive(Debug, Clone)]
pub struct Tables {
    /// Ports, by index.
    pub ports: Vec<PortView>,
    /// Routers, in [`RouterId`] order (their slots, `InstanceView::id`,
    /// may differ after a reload).
    pub instances: Vec<InstanceView>,
    /// IPv4 routes (connected + static).
    pub routes4: RouteTable<Ipv4Addr>,
    /// IPv6 routes (connected + static).
    pub routes6: RouteTable<Ipv6Addr>,
}

/// An address family as the tables and the forwarding path see it.
pub trait Family: RouteAddr + Into<IpAddr> {
    /// The port's own addresses of this family.
    fn port_addrs(port: &PortView) -> &[(Self, u8)];
    /// The instance's virtual addresses of this family.
    fn vips(inst: &InstanceView) -> &[(Self, u8)];
    /// Builds the frame that resolves `target` (ARP request / Neighbour
    /// Solicitation) from `mac`/`ip`; its length.
    fn resolution_request(
        buf: &mut [u8],
        mac: EthernetAddress,
        ip: Self,
        target: Self,
    ) -> Option<usize>;
    /// Counts one resolution request sent.
    fn count_request(counters: &mut PortCounters);
    /// Decrements the TTL / hop limit of the packet starting at `l3`;
    /// false if it is not a packet of this family.
    fn decrement_ttl(l3: &mut [u8]) -> bool;
    /// Completes the UDP/TCP checksum of the packet starting at `l3` if
    /// its sender left it partial (checksum offload: an AF_XDP copy loses
    /// the kernel's note that the device was to finish it); true if it did.
    /// Costs a pseudo-header sum for a complete one.
    fn complete_checksum(l3: &mut [u8]) -> bool;
}

impl Family for Ipv4Addr {
    fn port_addrs(port: &PortView) -> &[(Self, u8)] {
        &port.addrs4
    }
    fn vips(inst: &InstanceView) -> &[(Self, u8)] {
        &inst.vips4
    }
    fn resolution_request(
        buf: &mut [u8],
        mac: EthernetAddress,
        ip: Self,
        target: Self,
    ) -> Option<usize> {
        frames::arp_request(buf, mac, ip, target).ok()
    }
    fn count_request(counters: &mut PortCounters) {
        counters.arp_requests += 1;
    }
    fn decrement_ttl(l3: &mut [u8]) -> bool {
        // The header checksum is updated incrementally (RFC 1624).
        Ipv4Packet::new_checked(l3)
            .map(|mut ip| ip.decrement_ttl())
            .is_ok()
    }
    fn complete_checksum(l3: &mut [u8]) -> bool {
        let Ok(mut ip) = Ipv4Packet::new_checked(l3) else {
            return false;
        };
        // A fragment holds part of the segment the checksum covers (and a
        // sender completes the checksum before it fragments).
        if ip.is_fragment() {
            return false;
        }
        let (src, dst, protocol) = (ip.src_addr(), ip.dst_addr(), ip.protocol());
        checksum::complete_partial_v4(src, dst, protocol, ip.payload_mut())
    }
}

impl Family for Ipv6Addr {
    fn port_addrs(port: &PortView) -> &[(Self, u8)] {
        &port.addrs6
    }
    fn vips(inst: &InstanceView) -> &[(Self, u8)] {
        &inst.vips6
    }
    fn resolution_request(
        buf: &mut [u8],
        mac: EthernetAddress,
        ip: Self,
        target: Self,
    ) -> Option<usize> {
        frames::ns_request(buf, mac, ip, target).ok()
    }
    fn count_request(counters: &mut PortCounters) {
        counters.nd_requests += 1;
    }
    fn decrement_ttl(l3: &mut [u8]) -> bool {
        // IPv6 has no header checksum: the hop limit is all there is to update.
        Ipv6Packet::new_checked(l3)
            .map(|mut ip| {
                let h = ip.hop_limit().saturating_sub(1);
                ip.set_hop_limit(h);
            })
            .is_ok()
    }
    fn complete_checksum(l3: &mut [u8]) -> bool {
        let Ok(mut ip) = Ipv6Packet::new_checked(l3) else {
            return false;
        };
        // Only UDP/TCP right after the fixed header: a segment behind
        // extension headers is forwarded as it came.
        let (src, dst, next_header) = (ip.src_addr(), ip.dst_addr(), ip.next_header());
        checksum::complete_partial_v6(src, dst, next_header, ip.payload_mut())
    }
}

impl Tables {
    fn instance_for_vip<A: Family>(&self, port: usize, ip: A) -> Option<&InstanceView> {
        self.instances
            .iter()
            .find(|i| i.port == port && A::vips(i).iter().any(|(v, _)| *v == ip))
    }

    fn instance_for_vmac(&self, port: usize, mac: EthernetAddress) -> Option<&InstanceView> {
        self.instances
            .iter()
            .find(|i| i.port == port && i.vmac == mac)
    }

    fn on_link<A: Family>(&self, port: usize, ip: A) -> bool {
        self.ports
            .get(port)
            .is_some_and(|p| A::port_addrs(p).iter().any(|(a, l)| in_prefix(ip, *a, *l)))
            || self
                .instances
                .iter()
                .any(|i| i.port == port && A::vips(i).iter().any(|(a, l)| in_prefix(ip, *a, *l)))
    }

    /// The MAC and source address to use on `port` towards `target`: the
    /// virtual ones of an instance of this family we are master of there
    /// (so replies come back to the fast path), else the port's own.
    fn egress_identity<A: Family>(
        &self,
        shared: &Shared,
        port: usize,
        target: A,
    ) -> Option<(EthernetAddress, A)> {
        let vip = self.instances.iter().find_map(|i| {
            if i.port != port || !shared.is_master(i.id) {
                return None;
            }
            let vips = A::vips(i);
            vips.iter()
                .find(|(a, l)| in_prefix(target, *a, *l))
                .or(vips.first())
                .map(|(a, _)| (i.vmac, *a))
        });
        vip.or_else(|| {
            self.ports.get(port).and_then(|p| {
                let addrs = A::port_addrs(p);
                addrs
                    .iter()
                    .find(|(a, l)| in_prefix(target, *a, *l))
                    .or(addrs.first())
                    .map(|(a, _)| (p.mac, *a))
            })
        })
    }

    /// Source MAC of forwarded frames of this family on `port`: the virtual
    /// MAC where we are master there (and not draining), else the port's own.
    fn egress_mac<A: Family>(&self, shared: &Shared, port: usize) -> Option<EthernetAddress> {
        self.instances
            .iter()
            .find(|i| i.port == port && !A::vips(i).is_empty() && shared.is_announcing_master(i.id))
            .map(|i| i.vmac)
            .or_else(|| self.ports.get(port).map(|p| p.mac))
    }
}

/// Maps a codec error on an advertisement to its drop counter.
pub fn advert_drop_reason(e: WireError) -> DropReason {
    match e {
        WireError::Truncated { .. } | WireError::BadLength => DropReason::PacketLengthError,
        WireError::BadIpHeader | WireError::BadIpChecksum => DropReason::IpHeaderError,
        WireError::Fragment => DropReason::Fragment,
        WireError::BadTtl(_) => DropReason::IpTtlError,
        WireError::BadVersion(_) => DropReason::VersionError,
        WireError::BadType(_) => DropReason::InvalidType,
        WireError::BadChecksum => DropReason::ChecksumError,
        WireError::BadAddrCount(_) => DropReason::AddressCountError,
        WireError::BadInterval(_) => DropReason::IntervalError,
        WireError::BadAuthType(_) => DropReason::AuthType,
        WireError::BadSource => DropReason::SourceError,
        WireError::BadDestination => DropReason::DestinationError,
        _ => DropReason::Malformed,
    }
}

/// What the control thread needs of an advert the worker validated for `inst`.
fn typed_advert(
    inst: &InstanceView,
    now: Instant,
    src: IpAddr,
    repr: &VrrpRepr<'_>,
    checksum: Option<ChecksumKind>,
) -> RxAdvert {
    RxAdvert {
        router: inst.id,
        arrival: now,
        src,
        priority: repr.priority,
        max_advert_int_cs: match repr.version {
            Version::V2 => repr.max_advert_int.saturating_mul(100),
            Version::V3 => repr.max_advert_int,
        },
        checksum,
        addresses: inst.address_list(repr.version, repr.priority, repr.addresses),
    }
}

/// The per-worker packet handler.
pub struct Processor<'a> {
    /// Static tables.
    pub tables: &'a Tables,
    /// Shared state (ownership flags, punt queue).
    pub shared: &'a Shared,
    /// This worker's neighbour table.
    pub neigh: &'a mut NeighbourTable,
    /// This worker's counters.
    pub counters: &'a mut Counters,
    /// Set when an advertisement was punted (the worker then wakes control).
    pub punted: bool,
    /// Why the last frame handled was dropped, if it was (cleared as each
    /// frame starts): what `xvrrp capture` shows.
    pub dropped: Option<DropReason>,
}

impl Processor<'_> {
    fn drop(&mut self, port: usize, reason: DropReason) -> Action {
        self.count_drop(port, reason);
        Action::Free
    }

    /// Counts a drop of the frame in hand (which may still be answered).
    fn count_drop(&mut self, port: usize, reason: DropReason) {
        self.counters.drop(port, reason);
        self.dropped = Some(reason);
    }

    /// Handles one received frame: `buf` is the whole frame buffer, `len`
    /// the received length. May rewrite `buf` in place.
    pub fn handle(&mut self, now: Instant, port: usize, buf: &mut [u8], len: usize) -> Action {
        let counters = self.counters.port(port);
        counters.rx += 1;
        counters.rx_bytes += len as u64;
        self.resume(now, port, buf, len)
    }

    /// Handles a frame again: one parked while its next hop was resolved
    /// (not counted as received a second time).
    pub fn resume(&mut self, now: Instant, port: usize, buf: &mut [u8], len: usize) -> Action {
        self.dropped = None;
        let Some(frame) = buf.get(..len) else {
            return self.drop(port, DropReason::Malformed);
        };
        let Ok(eth) = EthernetFrame::new_checked(frame) else {
            return self.drop(port, DropReason::Malformed);
        };
        let dst_mac = eth.dst_addr();
        let src_mac = eth.src_addr();
        match eth.ethertype() {
            EtherType::ARP => self.handle_arp(now, port, buf, len, dst_mac, src_mac),
            EtherType::IPV4 => self.handle_ipv4(now, port, buf, len, dst_mac, src_mac),
            EtherType::IPV6 => self.handle_ipv6(now, port, buf, len, dst_mac, src_mac),
            _ => self.drop(port, DropReason::Unhandled),
        }
    }

    fn handle_arp(
        &mut self,
        now: Instant,
        port: usize,
        buf: &mut [u8],
        len: usize,
        dst_mac: EthernetAddress,
        src_mac: EthernetAddress,
    ) -> Action {
        let repr = {
            let payload = buf.get(HEADER_LEN..len).unwrap_or(&[]);
            match ArpPacket::new_checked(payload).and_then(|p| ArpRepr::parse(&p)) {
                Ok(r) => r,
                Err(_) => return self.drop(port, DropReason::ArpMalformed),
            }
        };
        // Learn the sender when it is a neighbour on this link (replies to our
        // own resolution requests arrive here, addressed to a virtual MAC).
        if !repr.source_ip.is_unspecified() && self.tables.on_link(port, repr.source_ip) {
            self.neigh
                .learn(now, port, IpAddr::V4(repr.source_ip), repr.source_hw);
        }
        // A reply to one of our resolution requests (sent from a virtual MAC
        // and address): its sender was learned above, nothing else to do.
        if repr.operation == ArpOperation::Reply
            && self.tables.instance_for_vmac(port, dst_mac).is_some()
        {
            return Action::Free;
        }
        let Some(inst) = self.tables.instance_for_vip(port, repr.target_ip) else {
            return self.drop(port, DropReason::Unhandled);
        };
        if !self.shared.is_master(inst.id) {
            return self.drop(port, DropReason::NotMaster);
        }
        // Only requests from someone else get an answer: a gratuitous ARP
        // for our address (sender == target) is a peer announcing itself.
        if repr.operation != ArpOperation::Request || repr.source_ip == repr.target_ip {
            return self.drop(port, DropReason::ToVirtualAddress);
        }
        if !self.shared.replies.allow(now, IpAddr::V4(repr.source_ip)) {
            return self.drop(port, DropReason::ArpRateLimited);
        }
        let (vmac, vip) = (inst.vmac, repr.target_ip);
        match frames::arp_reply(buf, &repr, src_mac, vmac, vip) {
            Ok(n) => {
                self.counters.port(port).arp_replies += 1;
                Action::Send { port, len: n }
            }
            Err(_) => self.drop(port, DropReason::Malformed),
        }
    }

    fn handle_ipv4(
        &mut self,
        now: Instant,
        port: usize,
        buf: &mut [u8],
        len: usize,
        dst_mac: EthernetAddress,
        src_mac: EthernetAddress,
    ) -> Action {
        let (protocol, src_ip, dst_ip, ttl) = {
            let payload = buf.get(HEADER_LEN..len).unwrap_or(&[]);
            let Ok(ip) = Ipv4Packet::new_checked(payload) else {
                return self.drop(port, DropReason::Malformed);
            };
            if ip.protocol() == vrrp::IPPROTO_VRRP {
                return self.punt(now, port, dst_mac, payload);
            }
            // Adverts get the VRRP ladder's own checks; everything else is
            // checked here before it is answered or forwarded.
            if ip.version() != 4 || !ip.verify_checksum() {
                return self.drop(port, DropReason::BadIpHeader);
            }
            (ip.protocol(), ip.src_addr(), ip.dst_addr(), ip.ttl())
        };

        if let Some(inst) = self.tables.instance_for_vip(port, dst_ip) {
            if !self.shared.is_master(inst.id) {
                return self.drop(port, DropReason::NotMaster);
            }
            if inst.accept && protocol == IPPROTO_ICMP && self.is_echo_request(buf, len) {
                return match buf.get_mut(..len).map(frames::icmp_echo_reply_in_place) {
                    Some(Ok(n)) => {
                        self.counters.port(port).icmp_replies += 1;
                        Action::Send { port, len: n }
                    }
                    _ => self.drop(port, DropReason::Malformed),
                };
            }
            return self.drop(port, DropReason::ToVirtualAddress);
        }

        let Some(inst) = self.tables.instance_for_vmac(port, dst_mac) else {
            return self.drop(port, DropReason::Unhandled);
        };
        if !self.shared.is_master(inst.id) {
            return self.drop(port, DropReason::NotMaster);
        }
        self.forward(now, port, buf, len, src_mac, src_ip, dst_ip, ttl)
    }

    fn is_echo_request(&self, buf: &[u8], len: usize) -> bool {
        let Some(payload) = buf.get(HEADER_LEN..len) else {
            return false;
        };
        let Ok(ip) = Ipv4Packet::new_checked(payload) else {
            return false;
        };
        Icmpv4Packet::new_checked(ip.payload())
            .is_ok_and(|icmp| icmp.msg_type() == TYPE_ECHO_REQUEST && icmp.verify_checksum())
    }

    #[allow(clippy::too_many_arguments)]
    fn forward(
        &mut self,
        now: Instant,
        port: usize,
        buf: &mut [u8],
        len: usize,
        src_mac: EthernetAddress,
        src_ip: Ipv4Addr,
        dst_ip: Ipv4Addr,
        ttl: u8,
    ) -> Action {
        if self.tables.on_link(port, src_ip) {
            self.neigh.learn(now, port, IpAddr::V4(src_ip), src_mac);
        }
        let Some(hop) = self.tables.routes4.lookup(dst_ip) else {
            self.count_drop(port, DropReason::NoRoute);
            let net = Icmpv4Error::DstUnreachable(icmpv4::Unreachable::Net);
            return self.icmp_error_v4(now, port, buf, len, src_mac, net);
        };
        if ttl <= 1 {
            self.count_drop(port, DropReason::TtlExceeded);
            return self.icmp_error_v4(now, port, buf, len, src_mac, Icmpv4Error::TimeExceeded);
        }
        self.forward_via(now, port, buf, len, hop)
    }

    fn punt(
        &mut self,
        now: Instant,
        port: usize,
        dst_mac: EthernetAddress,
        payload: &[u8],
    ) -> Action {
        let Ok(ip) = Ipv4Packet::new_checked(payload) else {
            return self.drop(port, DropReason::Malformed);
        };
        // The ladder checks the destination against the mode the packet
        // claims; the instance's mode is checked once the VRID is known.
        let multicast = ip.dst_addr().is_multicast();
        let (repr, checksum) = match vrrp::parse_ipv4_advert(&ip, multicast) {
            Ok(parsed) => parsed,
            Err(e) => return self.drop(port, advert_drop_reason(e)),
        };
        let Some(inst) = self
            .tables
            .instances
            .iter()
            .find(|i| i.port == port && i.vrid == repr.vrid && !i.vips4.is_empty())
        else {
            return self.drop(port, DropReason::VridError);
        };
        if inst.version != repr.version {
            return self.drop(port, DropReason::VersionError);
        }
        let to_us = self
            .tables
            .ports
            .get(port)
            .is_some_and(|p| p.addrs4.iter().any(|(a, _)| *a == ip.dst_addr()));
        let unicast_mode = inst.unicast;
        if !self.destination_ok(
            port,
            unicast_mode,
            multicast,
            to_us,
            dst_mac,
            vrrp::VRRP_V4_MCAST_MAC,
        ) {
            return self.drop(port, DropReason::DestinationError);
        }
        let advert = typed_advert(inst, now, IpAddr::V4(ip.src_addr()), &repr, Some(checksum));
        self.queue_advert(port, advert)
    }

    /// Whether an advert's destination fits the instance's mode (B24): a
    /// multicast instance takes adverts to the group, IP and MAC; a unicast
    /// one takes adverts to one of the port's addresses and its MAC, or the
    /// broadcast MAC, which a sender that has not resolved ours yet uses
    /// (xvrrp's own unicast adverts do for their first second).
    fn destination_ok(
        &self,
        port: usize,
        unicast_mode: bool,
        multicast: bool,
        to_us: bool,
        dst_mac: EthernetAddress,
        group_mac: EthernetAddress,
    ) -> bool {
        match (unicast_mode, multicast) {
            (false, true) => dst_mac == group_mac,
            (true, false) => {
                let ours = self
                    .tables
                    .ports
                    .get(port)
                    .is_some_and(|p| p.mac == dst_mac);
                to_us && (ours || dst_mac.is_broadcast())
            }
            _ => false,
        }
    }

    /// Hands a validated advertisement to the control thread.
    fn queue_advert(&mut self, port: usize, advert: RxAdvert) -> Action {
        if self.shared.push_advert(advert).is_err() {
            return self.drop(port, DropReason::PuntQueueFull);
        }
        self.counters.port(port).punted += 1;
        self.punted = true;
        Action::Free
    }

    fn handle_ipv6(
        &mut self,
        now: Instant,
        port: usize,
        buf: &mut [u8],
        len: usize,
        dst_mac: EthernetAddress,
        src_mac: EthernetAddress,
    ) -> Action {
        let (next_header, src_ip, dst_ip, hop_limit) = {
            let payload = buf.get(HEADER_LEN..len).unwrap_or(&[]);
            let Ok(ip) = Ipv6Packet::new_checked(payload) else {
                return self.drop(port, DropReason::Malformed);
            };
            if ip.next_header() == vrrp::IPPROTO_VRRP {
                return self.punt6(now, port, dst_mac, payload);
            }
            if ip.version() != 6 {
                return self.drop(port, DropReason::BadIpHeader);
            }
            if ip.next_header() == IPPROTO_ICMPV6 {
                if let Ok(nd) = nd::parse_ipv6_nd(&ip) {
                    let src_ip = ip.src_addr();
                    return self.handle_nd(now, port, buf, dst_mac, src_mac, src_ip, nd);
                }
            }
            (
                ip.next_header(),
                ip.src_addr(),
                ip.dst_addr(),
                ip.hop_limit(),
            )
        };

        if let Some(inst) = self.tables.instance_for_vip(port, dst_ip) {
            if !self.shared.is_master(inst.id) {
                return self.drop(port, DropReason::NotMaster);
            }
            if inst.accept && next_header == IPPROTO_ICMPV6 {
                if let Some(Ok(n)) = buf.get_mut(..len).map(frames::icmpv6_echo_reply_in_place) {
                    self.counters.port(port).icmp_replies += 1;
                    return Action::Send { port, len: n };
                }
            }
            return self.drop(port, DropReason::ToVirtualAddress);
        }

        let Some(inst) = self.tables.instance_for_vmac(port, dst_mac) else {
            return self.drop(port, DropReason::Unhandled);
        };
        if !self.shared.is_master(inst.id) {
            return self.drop(port, DropReason::NotMaster);
        }
        self.forward6(now, port, buf, len, src_mac, src_ip, dst_ip, hop_limit)
    }

    /// Neighbour Discovery: answer solicitations for our virtual addresses
    /// (master only, from the virtual MAC, Router flag set — RFC 9568 §8.2),
    /// learn from advertisements sent to us.
    #[allow(clippy::too_many_arguments)]
    fn handle_nd(
        &mut self,
        now: Instant,
        port: usize,
        buf: &mut [u8],
        dst_mac: EthernetAddress,
        src_mac: EthernetAddress,
        src_ip: Ipv6Addr,
        nd: NdRepr,
    ) -> Action {
        match nd {
            NdRepr::Solicit {
                target,
                source_lladdr,
            } => {
                if !src_ip.is_unspecified() && self.tables.on_link(port, src_ip) {
                    self.neigh.learn(
                        now,
                        port,
                        IpAddr::V6(src_ip),
                        source_lladdr.unwrap_or(src_mac),
                    );
                }
                let Some(inst) = self.tables.instance_for_vip(port, target) else {
                    return self.drop(port, DropReason::Unhandled);
                };
                if !self.shared.is_master(inst.id) {
                    return self.drop(port, DropReason::NotMaster);
                }
                if !self.shared.replies.allow(now, IpAddr::V6(src_ip)) {
                    return self.drop(port, DropReason::NdRateLimited);
                }
                let vmac = inst.vmac;
                let reply_to = source_lladdr.unwrap_or(src_mac);
                match frames::na_reply(buf, src_ip, reply_to, vmac, target, true) {
                    Ok(n) => {
                        self.counters.port(port).nd_replies += 1;
                        Action::Send { port, len: n }
                    }
                    Err(_) => self.drop(port, DropReason::Malformed),
                }
            }
            NdRepr::Advert {
                target,
                target_lladdr,
                ..
            } => {
                if self.tables.on_link(port, target) {
                    self.neigh.learn(
                        now,
                        port,
                        IpAddr::V6(target),
                        target_lladdr.unwrap_or(src_mac),
                    );
                }
                if self.tables.instance_for_vmac(port, dst_mac).is_some() {
                    // An answer to one of our resolution requests.
                    return Action::Free;
                }
                self.drop(port, DropReason::Unhandled)
            }
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn forward6(
        &mut self,
        now: Instant,
        port: usize,
        buf: &mut [u8],
        len: usize,
        src_mac: EthernetAddress,
        src_ip: Ipv6Addr,
        dst_ip: Ipv6Addr,
        hop_limit: u8,
    ) -> Action {
        if self.tables.on_link(port, src_ip) {
            self.neigh.learn(now, port, IpAddr::V6(src_ip), src_mac);
        }
        let Some(hop) = self.tables.routes6.lookup(dst_ip) else {
            self.count_drop(port, DropReason::NoRoute);
            let no_route = Icmpv6Error::DstUnreachable(icmpv6::Unreachable::NoRoute);
            return self.icmp_error_v6(now, port, buf, len, src_mac, no_route);
        };
        if hop_limit <= 1 {
            self.count_drop(port, DropReason::TtlExceeded);
            let expired = Icmpv6Error::HopLimitExceeded;
            return self.icmp_error_v6(now, port, buf, len, src_mac, expired);
        }
        self.forward_via(now, port, buf, len, hop)
    }

    /// The common tail of forwarding: the next hop's MAC (or park the frame
    /// while a request resolves it), MAC rewrite, TTL / hop limit decrement,
    /// and a partial UDP/TCP checksum completed.
    fn forward_via<A: Family>(
        &mut self,
        now: Instant,
        port: usize,
        buf: &mut [u8],
        len: usize,
        hop: NextHop<A>,
    ) -> Action {
        let next_mac = match self.neigh.lookup(now, hop.port, hop.addr.into()) {
            Lookup::Hit(mac) => mac,
            Lookup::Pending => return Action::Park,
            Lookup::Ask => {
                let Some((mac, ip)) = self.tables.egress_identity(self.shared, hop.port, hop.addr)
                else {
                    return self.drop(port, DropReason::NoEgress);
                };
                if self
                    .neigh
                    .queue_request(hop.port, |b| A::resolution_request(b, mac, ip, hop.addr))
                {
                    A::count_request(self.counters.port(hop.port));
                }
                return Action::Park;
            }
        };
        let Some(egress_mac) = self.tables.egress_mac::<A>(self.shared, hop.port) else {
            return self.drop(port, DropReason::NoEgress);
        };
        let Some(frame) = buf.get_mut(..len) else {
            return self.drop(port, DropReason::Malformed);
        };
        {
            let Ok(mut eth) = EthernetFrame::new_checked(&mut *frame) else {
                return self.drop(port, DropReason::Malformed);
            };
            eth.set_dst_addr(next_mac);
            eth.set_src_addr(egress_mac);
        }
        let Some(l3) = frame.get_mut(HEADER_LEN..) else {
            return self.drop(port, DropReason::Malformed);
        };
        if !A::decrement_ttl(l3) {
            return self.drop(port, DropReason::Malformed);
        }
        if A::complete_checksum(l3) {
            self.counters.port(hop.port).checksum_completed += 1;
        }
        // Counted `forwarded` where it is queued for transmission.
        Action::Forward {
            port: hop.port,
            len,
        }
    }

    fn punt6(
        &mut self,
        now: Instant,
        port: usize,
        dst_mac: EthernetAddress,
        payload: &[u8],
    ) -> Action {
        let Ok(ip) = Ipv6Packet::new_checked(payload) else {
            return self.drop(port, DropReason::Malformed);
        };
        let multicast = ip.dst_addr().is_multicast();
        let repr = match vrrp::parse_ipv6_advert(&ip, multicast) {
            Ok(repr) => repr,
            Err(e) => return self.drop(port, advert_drop_reason(e)),
        };
        let Some(inst) = self
            .tables
            .instances
            .iter()
            .find(|i| i.port == port && i.vrid == repr.vrid && !i.vips6.is_empty())
        else {
            return self.drop(port, DropReason::VridError);
        };
        let to_us = self
            .tables
            .ports
            .get(port)
            .is_some_and(|p| p.addrs6.iter().any(|(a, _)| *a == ip.dst_addr()));
        let unicast_mode = inst.unicast;
        if !self.destination_ok(
            port,
            unicast_mode,
            multicast,
            to_us,
            dst_mac,
            vrrp::VRRP_V6_MCAST_MAC,
        ) {
            return self.drop(port, DropReason::DestinationError);
        }
        let advert = typed_advert(inst, now, IpAddr::V6(ip.src_addr()), &repr, None);
        self.queue_advert(port, advert)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::lpm::Route;
    use crate::shared::PUNT_QUEUE;
    use proptest::prelude::*;
    use xvrrp_wire::{
        icmpv4::Icmpv4Repr,
        ipv4::Ipv4Repr,
        vrrp::{AddrList, ChecksumKind, VrrpRepr},
    };

    const CLIENT_MAC: EthernetAddress = EthernetAddress([2, 0, 0, 0, 0, 0x64]);
    const SERVER_MAC: EthernetAddress = EthernetAddress([2, 0, 0, 0, 1, 0x64]);
    const LAN_MAC: EthernetAddress = EthernetAddress([2, 0, 0, 0, 0, 2]);
    const WAN_MAC: EthernetAddress = EthernetAddress([2, 0, 0, 0, 1, 2]);
    const CLIENT: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 100);
    const SERVER: Ipv4Addr = Ipv4Addr::new(203, 0, 113, 100);
    const LAN_VIP: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 1);
    const WAN_VIP: Ipv4Addr = Ipv4Addr::new(203, 0, 113, 1);

    fn tables(accept: bool) -> Tables {
        let ports = vec![
            PortView {
                name: "lan0".into(),
                mac: LAN_MAC,
                addrs4: vec![(Ipv4Addr::new(192, 0, 2, 2), 24)],
                addrs6: Vec::new(),
            },
            PortView {
                name: "wan0".into(),
                mac: WAN_MAC,
                addrs4: vec![(Ipv4Addr::new(203, 0, 113, 2), 24)],
                addrs6: Vec::new(),
            },
        ];
        let instances = vec![
            InstanceView {
                id: RouterId(0),
                port: 0,
                vrid: 1,
                version: Version::V3,
                vmac: EthernetAddress::vrrp_v4(1),
                vips4: vec![(LAN_VIP, 24)],
                vips6: Vec::new(),
                accept,
                unicast: false,
            },
            InstanceView {
                id: RouterId(1),
                port: 1,
                vrid: 2,
                version: Version::V3,
                vmac: EthernetAddress::vrrp_v4(2),
                vips4: vec![(WAN_VIP, 24)],
                vips6: Vec::new(),
                accept,
                unicast: false,
            },
        ];
        let routes = RouteTable::new([
            Route {
                net: Ipv4Addr::new(192, 0, 2, 0),
                len: 24,
                via: None,
                port: 0,
            },
            Route {
                net: Ipv4Addr::new(203, 0, 113, 0),
                len: 24,
                via: None,
                port: 1,
            },
        ]);
        Tables {
            ports,
            instances,
            routes4: routes,
            routes6: RouteTable::default(),
        }
    }

    struct Rig {
        tables: Tables,
        shared: Shared,
        neigh: NeighbourTable,
        counters: Counters,
        now: Instant,
        /// Why the last frame given to `handle` was dropped.
        dropped: Option<DropReason>,
    }

    impl Rig {
        fn new(accept: bool, master: bool) -> Self {
            let shared = Shared::new(1, 2, 2).unwrap();
            for m in &shared.master {
                m.store(master, std::sync::atomic::Ordering::Relaxed);
            }
            Self {
                tables: tables(accept),
                shared,
                neigh: NeighbourTable::new(),
                counters: Counters::new(2),
                now: Instant::now(),
                dropped: None,
            }
        }

        fn handle(&mut self, port: usize, frame: &[u8]) -> (Action, Vec<u8>) {
            let mut buf = [0u8; 2048];
            buf[..frame.len()].copy_from_slice(frame);
            let mut p = Processor {
                tables: &self.tables,
                shared: &self.shared,
                neigh: &mut self.neigh,
                counters: &mut self.counters,
                punted: false,
                dropped: None,
            };
            let action = p.handle(self.now, port, &mut buf, frame.len());
            self.dropped = p.dropped;
            let out = match action {
                Action::Send { len, .. } | Action::Forward { len, .. } => buf[..len].to_vec(),
                Action::Free | Action::Park => Vec::new(),
            };
            (action, out)
        }

        fn resume(&mut self, port: usize, frame: &[u8]) -> (Action, Vec<u8>) {
            let mut buf = [0u8; 2048];
            buf[..frame.len()].copy_from_slice(frame);
            let mut p = Processor {
                tables: &self.tables,
                shared: &self.shared,
                neigh: &mut self.neigh,
                counters: &mut self.counters,
                punted: false,
                dropped: None,
            };
            let action = p.resume(self.now, port, &mut buf, frame.len());
            let out = match action {
                Action::Send { len, .. } | Action::Forward { len, .. } => buf[..len].to_vec(),
                Action::Free | Action::Park => Vec::new(),
            };
            (action, out)
        }

        /// Offers `frame`, parked and given up, to the handler.
        fn unresolved(&mut self, port: usize, frame: &[u8]) -> (Action, Vec<u8>) {
            let mut buf = [0u8; 2048];
            buf[..frame.len()].copy_from_slice(frame);
            let mut p = Processor {
                tables: &self.tables,
                shared: &self.shared,
                neigh: &mut self.neigh,
                counters: &mut self.counters,
                punted: false,
                dropped: None,
            };
            let action = p.unresolved(self.now, port, &mut buf, frame.len());
            let out = match action {
                Action::Send { len, .. } | Action::Forward { len, .. } => buf[..len].to_vec(),
                Action::Free | Action::Park => Vec::new(),
            };
            (action, out)
        }

        fn drops(&self, port: usize, reason: DropReason) -> u64 {
            self.counters.drops[port][reason as usize]
        }
    }

    /// The ICMP error in `reply`, checked as a host would: Ethernet from the
    /// LAN virtual MAC to the client, IPv4 from the LAN VIP to the client,
    /// both checksums good. Returns (type, code, quoted bytes).
    fn icmp_error_from_lan_vip(reply: &[u8]) -> (u8, u8, Vec<u8>) {
        let eth = EthernetFrame::new_checked(reply).unwrap();
        assert_eq!(
            (eth.dst_addr(), eth.src_addr()),
            (CLIENT_MAC, EthernetAddress::vrrp_v4(1))
        );
        let ip = Ipv4Packet::new_checked(eth.payload()).unwrap();
        assert_eq!(
            (ip.src_addr(), ip.dst_addr(), ip.protocol()),
            (LAN_VIP, CLIENT, IPPROTO_ICMP)
        );
        assert!(ip.verify_checksum());
        let icmp = Icmpv4Packet::new_checked(ip.payload()).unwrap();
        assert!(icmp.verify_checksum());
        (icmp.msg_type(), icmp.msg_code(), icmp.data().to_vec())
    }

    fn arp_request_for(target: Ipv4Addr, sender: Ipv4Addr) -> Vec<u8> {
        let mut buf = [0u8; 64];
        let n = frames::arp_request(&mut buf, CLIENT_MAC, sender, target).unwrap();
        buf[..n].to_vec()
    }

    fn ipv4_frame(
        dst_mac: EthernetAddress,
        src: Ipv4Addr,
        dst: Ipv4Addr,
        ttl: u8,
        protocol: u8,
        payload: &[u8],
    ) -> Vec<u8> {
        let mut f = vec![0u8; HEADER_LEN + 20 + payload.len()];
        {
            let mut eth = EthernetFrame::new_unchecked(&mut f[..]);
            eth.set_dst_addr(dst_mac);
            eth.set_src_addr(CLIENT_MAC);
            eth.set_ethertype(EtherType::IPV4);
        }
        let repr = Ipv4Repr {
            src,
            dst,
            protocol,
            ttl,
            tos: 0,
            ident: 7,
            dont_frag: true,
            payload_len: payload.len(),
        };
        repr.emit(&mut Ipv4Packet::new_unchecked(&mut f[HEADER_LEN..]));
        f[HEADER_LEN + 20..].copy_from_slice(payload);
        f
    }

    fn echo_request() -> Vec<u8> {
        let data = [0xab; 16];
        let repr = Icmpv4Repr::EchoRequest {
            ident: 1,
            seq_no: 2,
            data: &data,
        };
        let mut icmp = vec![0u8; repr.buffer_len()];
        repr.emit(&mut Icmpv4Packet::new_unchecked(&mut icmp[..]));
        icmp
    }

    fn advert(vrid: u8, priority: u8) -> Vec<u8> {
        advert_from(Ipv4Addr::new(192, 0, 2, 3), vrid, priority)
    }

    fn advert_from(src: Ipv4Addr, vrid: u8, priority: u8) -> Vec<u8> {
        let vips = [LAN_VIP];
        let repr = VrrpRepr {
            version: Version::V3,
            vrid,
            priority,
            max_advert_int: 1,
            addresses: AddrList::V4(&vips),
        };
        let mut buf = [0u8; 128];
        let n = frames::advert_v4(
            &mut buf,
            EthernetAddress::vrrp_v4(vrid),
            src,
            frames::VRRP_V4_MCAST,
            frames::VRRP_V4_MCAST_MAC,
            &repr,
            ChecksumKind::Rfc9568,
        )
        .unwrap();
        buf[..n].to_vec()
    }

    #[test]
    fn master_answers_arp_for_vip_from_vmac() {
        let mut rig = Rig::new(true, true);
        let (action, reply) = rig.handle(0, &arp_request_for(LAN_VIP, CLIENT));
        assert_eq!(
            action,
            Action::Send {
                port: 0,
                len: reply.len()
            }
        );
        let eth = EthernetFrame::new_checked(&reply[..]).unwrap();
        assert_eq!(eth.dst_addr(), CLIENT_MAC);
        assert_eq!(eth.src_addr(), EthernetAddress::vrrp_v4(1));
        let arp = ArpRepr::parse(&ArpPacket::new_checked(eth.payload()).unwrap()).unwrap();
        assert_eq!(arp.operation, ArpOperation::Reply);
        assert_eq!(arp.source_hw, EthernetAddress::vrrp_v4(1));
        assert_eq!(arp.source_ip, LAN_VIP);
        assert_eq!(arp.target_ip, CLIENT);
        assert_eq!(rig.counters.ports[0].arp_replies, 1);
    }

    /// docs/conformance.md L05: a flood of requests from one sender gets
    /// a burst of replies, then the sender's rate; another sender is
    /// answered meanwhile.
    #[test]
    fn l05_arp_replies_are_rate_limited_per_sender() {
        use crate::limiter::PER_SENDER_BURST;
        let mut rig = Rig::new(true, true);
        let flood = arp_request_for(LAN_VIP, CLIENT);
        let sent = (0..100)
            .filter(|_| matches!(rig.handle(0, &flood).0, Action::Send { .. }))
            .count();
        assert_eq!(sent, PER_SENDER_BURST as usize);
        assert_eq!(rig.drops(0, DropReason::ArpRateLimited), 100 - sent as u64);
        assert_eq!(rig.counters.ports[0].arp_replies, sent as u64);
        let other = arp_request_for(LAN_VIP, Ipv4Addr::new(192, 0, 2, 101));
        assert!(matches!(rig.handle(0, &other).0, Action::Send { .. }));
    }

    #[test]
    fn backup_answers_nothing_and_counts() {
        let mut rig = Rig::new(true, false);
        assert_eq!(
            rig.handle(0, &arp_request_for(LAN_VIP, CLIENT)).0,
            Action::Free
        );
        assert_eq!(rig.drops(0, DropReason::NotMaster), 1);
        let f = ipv4_frame(EthernetAddress::vrrp_v4(1), CLIENT, SERVER, 64, 17, &[0; 8]);
        assert_eq!(rig.handle(0, &f).0, Action::Free);
        assert_eq!(rig.drops(0, DropReason::NotMaster), 2);
    }

    #[test]
    fn gratuitous_arp_from_a_peer_is_not_answered() {
        let mut rig = Rig::new(true, true);
        assert_eq!(
            rig.handle(0, &arp_request_for(LAN_VIP, LAN_VIP)).0,
            Action::Free
        );
        assert_eq!(rig.counters.ports[0].arp_replies, 0);
    }

    #[test]
    fn echo_to_vip_answered_only_with_accept() {
        let f = ipv4_frame(
            EthernetAddress::vrrp_v4(1),
            CLIENT,
            LAN_VIP,
            64,
            IPPROTO_ICMP,
            &echo_request(),
        );
        let mut rig = Rig::new(true, true);
        let (action, reply) = rig.handle(0, &f);
        assert!(matches!(action, Action::Send { port: 0, .. }));
        let ip = Ipv4Packet::new_checked(&reply[HEADER_LEN..]).unwrap();
        assert_eq!((ip.src_addr(), ip.dst_addr()), (LAN_VIP, CLIENT));
        assert!(ip.verify_checksum());
        let mut rig = Rig::new(false, true);
        assert_eq!(rig.handle(0, &f).0, Action::Free);
        assert_eq!(rig.drops(0, DropReason::ToVirtualAddress), 1);
    }

    #[test]
    fn forward_resolves_then_rewrites_and_decrements_ttl() {
        let mut rig = Rig::new(true, true);
        let f = ipv4_frame(
            EthernetAddress::vrrp_v4(1),
            CLIENT,
            SERVER,
            64,
            17,
            &[1; 12],
        );
        // First packet: the next hop is unknown, so the frame is parked and
        // an ARP request goes out of the WAN from the WAN virtual MAC and
        // address; a second packet meanwhile is parked without another request.
        assert_eq!(rig.handle(0, &f).0, Action::Park);
        assert_eq!(rig.handle(0, &f).0, Action::Park);
        let (req_port, req, req_len) = rig.neigh.take_request().unwrap();
        assert_eq!(req_port, 1);
        assert!(rig.neigh.take_request().is_none());
        let out = req[..req_len].to_vec();
        let eth = EthernetFrame::new_checked(&out[..]).unwrap();
        assert_eq!(eth.src_addr(), EthernetAddress::vrrp_v4(2));
        let arp = ArpRepr::parse(&ArpPacket::new_checked(eth.payload()).unwrap()).unwrap();
        assert_eq!((arp.source_ip, arp.target_ip), (WAN_VIP, SERVER));
        // The server answers to the WAN virtual MAC: learned.
        let generation = rig.neigh.generation();
        let mut reply = [0u8; 64];
        let n = frames::arp_reply(&mut reply, &arp, SERVER_MAC, SERVER_MAC, SERVER).unwrap();
        assert_eq!(rig.handle(1, &reply[..n]).0, Action::Free);
        assert_ne!(
            rig.neigh.generation(),
            generation,
            "parked frames get retried"
        );
        // Now the parked packet, offered again, is forwarded.
        let (action, out) = rig.resume(0, &f);
        assert_eq!(
            action,
            Action::Forward {
                port: 1,
                len: f.len()
            }
        );
        let eth = EthernetFrame::new_checked(&out[..]).unwrap();
        assert_eq!(
            (eth.dst_addr(), eth.src_addr()),
            (SERVER_MAC, EthernetAddress::vrrp_v4(2))
        );
        let ip = Ipv4Packet::new_checked(eth.payload()).unwrap();
        assert_eq!(ip.ttl(), 63);
        assert!(ip.verify_checksum());
        // Counted where it is queued for transmission, not here.
        assert_eq!(rig.counters.ports[1].forwarded, 0);
    }

    /// A draining master forwards from the port's own MAC, so that its
    /// frames do not teach the switches the virtual MAC the router taking
    /// over has claimed; it still forwards.
    #[test]
    fn draining_master_forwards_from_the_port_mac() {
        let mut rig = Rig::new(true, true);
        let now = rig.now;
        rig.neigh.learn(now, 1, IpAddr::V4(SERVER), SERVER_MAC);
        let f = ipv4_frame(
            EthernetAddress::vrrp_v4(1),
            CLIENT,
            SERVER,
            64,
            17,
            &[1; 12],
        );
        let src = |rig: &mut Rig| {
            let (action, out) = rig.handle(0, &f);
            assert!(
                matches!(action, Action::Forward { port: 1, .. }),
                "{action:?}"
            );
            EthernetFrame::new_checked(&out[..]).unwrap().src_addr()
        };
        assert_eq!(src(&mut rig), EthernetAddress::vrrp_v4(2));
        for d in &rig.shared.draining {
            d.store(true, std::sync::atomic::Ordering::Relaxed);
        }
        assert_eq!(src(&mut rig), WAN_MAC);
    }

    #[test]
    fn ttl_one_is_answered_with_time_exceeded_from_the_vip_rate_limited() {
        let mut rig = Rig::new(true, true);
        // Longer than the quote, as a ping is: only header + 8 bytes go back.
        let f = ipv4_frame(EthernetAddress::vrrp_v4(1), CLIENT, SERVER, 1, 17, &[1; 64]);
        let (action, reply) = rig.handle(0, &f);
        assert_eq!(reply.len(), HEADER_LEN + 20 + 8 + 28);
        assert_eq!(
            action,
            Action::Send {
                port: 0,
                len: reply.len()
            }
        );
        assert_eq!(rig.drops(0, DropReason::TtlExceeded), 1);
        let eth = EthernetFrame::new_checked(&reply[..]).unwrap();
        assert_eq!(
            (eth.dst_addr(), eth.src_addr()),
            (CLIENT_MAC, EthernetAddress::vrrp_v4(1))
        );
        let ip = Ipv4Packet::new_checked(eth.payload()).unwrap();
        assert_eq!(
            (ip.src_addr(), ip.dst_addr(), ip.protocol()),
            (LAN_VIP, CLIENT, IPPROTO_ICMP)
        );
        assert!(ip.verify_checksum());
        let icmp = Icmpv4Packet::new_checked(ip.payload()).unwrap();
        assert_eq!((icmp.msg_type(), icmp.msg_code()), (11, 0));
        assert!(icmp.verify_checksum());
        // The quote is the expired datagram's header and first 8 bytes.
        assert_eq!(&icmp.data()[..28], &f[HEADER_LEN..HEADER_LEN + 28]);
        // A second one in the same millisecond is counted but not answered.
        assert_eq!(rig.handle(0, &f).0, Action::Free);
        assert_eq!(rig.drops(0, DropReason::TtlExceeded), 2);
        assert_eq!(rig.counters.ports[0].icmp_errors, 1);
    }

    /// What `xvrrp capture` shows of each frame: the reason of its drop,
    /// also when the drop is answered, and none for the next frame handled.
    #[test]
    fn the_reason_of_the_last_drop_is_kept_for_the_capture() {
        let mut rig = Rig::new(true, true);
        let nowhere = Ipv4Addr::new(198, 51, 100, 1);
        let f = ipv4_frame(
            EthernetAddress::vrrp_v4(1),
            CLIENT,
            nowhere,
            64,
            17,
            &[1; 8],
        );
        assert!(matches!(rig.handle(0, &f).0, Action::Send { .. }));
        assert_eq!(rig.dropped, Some(DropReason::NoRoute));
        let arp = arp_request_for(LAN_VIP, CLIENT);
        assert!(matches!(rig.handle(0, &arp).0, Action::Send { .. }));
        assert_eq!(rig.dropped, None);
        let mut backup = Rig::new(true, false);
        assert_eq!(backup.handle(0, &arp).0, Action::Free);
        assert_eq!(backup.dropped, Some(DropReason::NotMaster));
    }

    #[test]
    fn no_route_is_answered_with_net_unreachable_from_the_vip_rate_limited() {
        let mut rig = Rig::new(true, true);
        let nowhere = Ipv4Addr::new(198, 51, 100, 1);
        let f = ipv4_frame(
            EthernetAddress::vrrp_v4(1),
            CLIENT,
            nowhere,
            64,
            17,
            &[1; 64],
        );
        let (action, reply) = rig.handle(0, &f);
        assert_eq!(
            action,
            Action::Send {
                port: 0,
                len: reply.len()
            }
        );
        assert_eq!(rig.drops(0, DropReason::NoRoute), 1);
        let (t, code, quoted) = icmp_error_from_lan_vip(&reply);
        assert_eq!((t, code), (3, 0), "net unreachable");
        assert_eq!(&quoted[..], &f[HEADER_LEN..HEADER_LEN + 28]);
        // The errors of all kinds share one limit.
        assert_eq!(rig.handle(0, &f).0, Action::Free);
        let expired = ipv4_frame(EthernetAddress::vrrp_v4(1), CLIENT, SERVER, 1, 17, &[1; 8]);
        assert_eq!(rig.handle(0, &expired).0, Action::Free);
        assert_eq!(rig.drops(0, DropReason::NoRoute), 2);
        assert_eq!(rig.counters.ports[0].icmp_errors, 1);
    }

    #[test]
    fn no_error_answers_an_icmp_error_a_fragment_or_a_broadcast_source() {
        let mut rig = Rig::new(true, true);
        let nowhere = Ipv4Addr::new(198, 51, 100, 1);
        let vmac = EthernetAddress::vrrp_v4(1);
        let mut unreachable = vec![3u8, 1, 0, 0, 0, 0, 0, 0];
        unreachable.extend_from_slice(&[0x45; 28]);
        let mut fragment = ipv4_frame(vmac, CLIENT, nowhere, 64, 17, &[1; 16]);
        {
            let mut ip = Ipv4Packet::new_unchecked(&mut fragment[HEADER_LEN..]);
            ip.set_flags_and_frag_offset(false, false, 185);
            ip.fill_checksum();
        }
        let not_answered = [
            ipv4_frame(vmac, CLIENT, nowhere, 64, IPPROTO_ICMP, &unreachable),
            ipv4_frame(vmac, CLIENT, SERVER, 1, IPPROTO_ICMP, &unreachable),
            fragment,
            ipv4_frame(vmac, Ipv4Addr::BROADCAST, nowhere, 64, 17, &[1; 8]),
            ipv4_frame(vmac, Ipv4Addr::UNSPECIFIED, nowhere, 64, 17, &[1; 8]),
        ];
        for (i, f) in not_answered.iter().enumerate() {
            rig.now += std::time::Duration::from_millis(5);
            assert_eq!(rig.handle(0, f).0, Action::Free, "case {i}");
        }
        assert_eq!(rig.counters.ports[0].icmp_errors, 0);
        // An echo request is a query, not an error: it gets its answer.
        rig.now += std::time::Duration::from_millis(5);
        let echo = ipv4_frame(vmac, CLIENT, nowhere, 64, IPPROTO_ICMP, &echo_request());
        let (action, reply) = rig.handle(0, &echo);
        assert!(matches!(action, Action::Send { port: 0, .. }));
        assert_eq!(icmp_error_from_lan_vip(&reply).0, 3);
    }

    #[test]
    fn unresolved_next_hop_is_answered_with_host_unreachable() {
        let mut rig = Rig::new(true, true);
        let absent = Ipv4Addr::new(203, 0, 113, 77);
        let f = ipv4_frame(
            EthernetAddress::vrrp_v4(1),
            CLIENT,
            absent,
            64,
            17,
            &[1; 12],
        );
        assert_eq!(rig.handle(0, &f).0, Action::Park);
        // The worker gives the frame up when the ARP requests go unanswered.
        let (action, reply) = rig.unresolved(0, &f);
        assert_eq!(
            action,
            Action::Send {
                port: 0,
                len: reply.len()
            }
        );
        let (t, code, quoted) = icmp_error_from_lan_vip(&reply);
        assert_eq!((t, code), (3, 1), "host unreachable");
        assert_eq!(&quoted[..28], &f[HEADER_LEN..HEADER_LEN + 28]);
        assert_eq!(rig.counters.ports[0].icmp_errors, 1);
    }

    #[test]
    fn bad_ipv4_version_or_header_checksum_is_dropped_before_anything_else() {
        let mut rig = Rig::new(true, true);
        let vmac = EthernetAddress::vrrp_v4(1);
        let good = ipv4_frame(vmac, CLIENT, SERVER, 64, 17, &[1; 12]);
        let mut bad_sum = good.clone();
        bad_sum[HEADER_LEN + 10] ^= 0xff;
        let mut bad_version = good.clone();
        {
            let mut ip = Ipv4Packet::new_unchecked(&mut bad_version[HEADER_LEN..]);
            ip.set_version_and_header_len(6, 20);
            ip.fill_checksum();
        }
        let mut echo = ipv4_frame(vmac, CLIENT, LAN_VIP, 64, IPPROTO_ICMP, &echo_request());
        echo[HEADER_LEN + 11] ^= 0x01;
        for f in [&bad_sum, &bad_version, &echo] {
            assert_eq!(rig.handle(0, f).0, Action::Free);
        }
        assert_eq!(rig.drops(0, DropReason::BadIpHeader), 3);
        assert!(
            rig.neigh.take_request().is_none(),
            "no next hop was asked for"
        );
        assert_eq!(rig.counters.ports[0].icmp_replies, 0);
        assert_eq!(rig.counters.ports[1].forwarded, 0);
        // The good one goes on to be forwarded (parked while resolving).
        assert_eq!(rig.handle(0, &good).0, Action::Park);
    }

    #[test]
    fn good_advert_is_punted_bad_ones_counted() {
        let mut rig = Rig::new(true, false);
        assert_eq!(rig.handle(0, &advert(1, 100)).0, Action::Free);
        assert_eq!(rig.shared.adverts.len(), 1);
        assert_eq!(rig.counters.ports[0].punted, 1);
        // Handed over typed, matched to its router, never as bytes.
        let typed = rig.shared.adverts.pop().unwrap();
        assert_eq!(typed.router, RouterId(0));
        assert_eq!(typed.priority, 100);
        assert_eq!(typed.arrival, rig.now, "stamped with the batch's clock");
        assert_eq!(typed.addresses, AddressList::Matches);
        assert!(typed.checksum.is_some());
        rig.handle(0, &advert(1, 100));

        let mut bad = advert(1, 100);
        bad[HEADER_LEN + 20 + 6] ^= 0x01; // checksum bit flip
        rig.handle(0, &bad);
        assert_eq!(rig.drops(0, DropReason::ChecksumError), 1);

        let mut ttl = advert(1, 100);
        ttl[HEADER_LEN + 8] = 254;
        let mut ip = Ipv4Packet::new_unchecked(&mut ttl[HEADER_LEN..]);
        ip.fill_checksum();
        rig.handle(0, &ttl);
        assert_eq!(rig.drops(0, DropReason::IpTtlError), 1);

        rig.handle(0, &advert(9, 100));
        assert_eq!(rig.drops(0, DropReason::VridError), 1);

        let short = advert(1, 100);
        rig.handle(0, &short[..HEADER_LEN + 20 + 4]);
        assert_eq!(
            rig.shared.adverts.len(),
            1,
            "only the good advert reached control"
        );
    }

    #[test]
    fn masters_advert_is_not_crowded_out_by_a_flood_of_valid_adverts() {
        let mut rig = Rig::new(true, false);
        let master = Ipv4Addr::new(192, 0, 2, 3);
        rig.shared
            .set_master_source(RouterId(0), Some(IpAddr::V4(master)));
        let stranger = advert_from(Ipv4Addr::new(192, 0, 2, 66), 1, 250);
        for _ in 0..PUNT_QUEUE + 10 {
            rig.handle(0, &stranger);
        }
        assert_eq!(rig.drops(0, DropReason::PuntQueueFull), 10);
        // The master's adverts still get through; an unread one is replaced
        // by the next.
        rig.handle(0, &advert_from(master, 1, 100));
        rig.handle(0, &advert_from(master, 1, 101));
        assert_eq!(rig.drops(0, DropReason::PuntQueueFull), 10);
        assert!(rig.shared.has_adverts());
        let mut seen = Vec::new();
        rig.shared.drain_adverts(|a| seen.push((a.src, a.priority)));
        assert_eq!(seen.len(), PUNT_QUEUE + 1);
        assert_eq!(seen[0], (IpAddr::V4(master), 101), "master's slot first");
        assert!(!rig.shared.has_adverts());
    }

    fn unicast_advert(dst: Ipv4Addr) -> Vec<u8> {
        let vips = [LAN_VIP];
        let repr = VrrpRepr {
            version: Version::V3,
            vrid: 1,
            priority: 100,
            max_advert_int: 1,
            addresses: AddrList::V4(&vips),
        };
        let mut buf = [0u8; 128];
        let n = frames::advert_v4(
            &mut buf,
            EthernetAddress::vrrp_v4(1),
            Ipv4Addr::new(192, 0, 2, 3),
            dst,
            LAN_MAC,
            &repr,
            ChecksumKind::Rfc9568,
        )
        .unwrap();
        buf[..n].to_vec()
    }

    #[test]
    fn b24_advert_to_the_wrong_mac_is_dropped() {
        let mut rig = Rig::new(true, false);
        // Right group address, wrong multicast MAC.
        let mut f = advert(1, 100);
        f[..6].copy_from_slice(&[0x01, 0x00, 0x5e, 0x00, 0x00, 0x13]);
        rig.handle(0, &f);
        // Right group address, a stranger's unicast MAC.
        f[..6].copy_from_slice(&[0x02, 0, 0, 0, 0, 0x99]);
        rig.handle(0, &f);
        assert_eq!(rig.drops(0, DropReason::DestinationError), 2);
        // Unicast instance: to our address but not to our MAC.
        rig.tables.instances[0].unicast = true;
        let mut u = unicast_advert(Ipv4Addr::new(192, 0, 2, 2));
        u[..6].copy_from_slice(&[0x02, 0, 0, 0, 0, 0x99]);
        rig.handle(0, &u);
        assert_eq!(rig.drops(0, DropReason::DestinationError), 3);
        assert!(rig.shared.adverts.is_empty());
    }

    #[test]
    fn b24_advert_destination_must_match_the_instance_mode() {
        // Multicast instance: a unicast advert is refused.
        let mut rig = Rig::new(true, false);
        rig.handle(0, &unicast_advert(Ipv4Addr::new(192, 0, 2, 2)));
        assert_eq!(rig.drops(0, DropReason::DestinationError), 1);
        assert!(rig.shared.adverts.is_empty());
        // Unicast instance: a unicast advert to our address is taken, one to
        // another address or to the group is refused.
        let mut rig = Rig::new(true, false);
        rig.tables.instances[0].unicast = true;
        rig.handle(0, &unicast_advert(Ipv4Addr::new(192, 0, 2, 2)));
        assert_eq!(rig.shared.adverts.len(), 1);
        rig.handle(0, &unicast_advert(Ipv4Addr::new(192, 0, 2, 77)));
        rig.handle(0, &advert(1, 100));
        assert_eq!(rig.drops(0, DropReason::DestinationError), 2);
        assert_eq!(rig.shared.adverts.len(), 1);
    }

    proptest! {
        #[test]
        fn arbitrary_frames_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..200), port in 0usize..3) {
            let mut rig = Rig::new(true, true);
            let _ = rig.handle(port, &bytes);
        }

        #[test]
        fn mutated_frames_never_panic(idx in 0usize..60, val in any::<u8>(), which in 0usize..3) {
            let mut f = match which {
                0 => arp_request_for(LAN_VIP, CLIENT),
                1 => advert(1, 100),
                _ => ipv4_frame(EthernetAddress::vrrp_v4(1), CLIENT, LAN_VIP, 64, IPPROTO_ICMP, &echo_request()),
            };
            let i = idx % f.len();
            f[i] = val;
            let mut rig = Rig::new(true, true);
            let _ = rig.handle(0, &f);
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests_v6 {
    use super::*;
    use crate::lpm::Route;
    use xvrrp_wire::{
        ipv6::Ipv6Repr,
        vrrp::{AddrList, VrrpRepr},
    };

    const CLIENT_MAC: EthernetAddress = EthernetAddress([2, 0, 0, 0, 0, 0x64]);
    const SERVER_MAC: EthernetAddress = EthernetAddress([2, 0, 0, 0, 1, 0x64]);

    fn a(s: &str) -> Ipv6Addr {
        s.parse().unwrap()
    }

    fn tables() -> Tables {
        let ports = vec![
            PortView {
                name: "lan0".into(),
                mac: EthernetAddress([2, 0, 0, 0, 0, 2]),
                addrs4: Vec::new(),
                addrs6: vec![(a("2001:db8:1::2"), 64), (a("fe80::2"), 64)],
            },
            PortView {
                name: "wan0".into(),
                mac: EthernetAddress([2, 0, 0, 0, 1, 2]),
                addrs4: Vec::new(),
                addrs6: vec![(a("2001:db8:2::2"), 64)],
            },
        ];
        let inst = |port: usize, vrid: u8, vip: &str| InstanceView {
            id: RouterId(u16::try_from(port).unwrap()),
            port,
            vrid,
            version: Version::V3,
            vmac: EthernetAddress::vrrp_v6(vrid),
            vips4: Vec::new(),
            vips6: vec![(a(vip), 64)],
            accept: true,
            unicast: false,
        };
        let connected = |net: &str, port| Route {
            net: a(net),
            len: 64,
            via: None,
            port,
        };
        Tables {
            ports,
            instances: vec![inst(0, 1, "2001:db8:1::1"), inst(1, 2, "2001:db8:2::1")],
            routes4: RouteTable::default(),
            routes6: RouteTable::new([connected("2001:db8:1::", 0), connected("2001:db8:2::", 1)]),
        }
    }

    fn run(
        shared: &Shared,
        neigh: &mut NeighbourTable,
        counters: &mut Counters,
        port: usize,
        frame: &[u8],
    ) -> (Action, Vec<u8>) {
        let t = tables();
        let mut buf = [0u8; 2048];
        buf[..frame.len()].copy_from_slice(frame);
        let mut p = Processor {
            tables: &t,
            shared,
            neigh,
            counters,
            punted: false,
            dropped: None,
        };
        let action = p.handle(Instant::now(), port, &mut buf, frame.len());
        let out = match action {
            Action::Send { len, .. } | Action::Forward { len, .. } => buf[..len].to_vec(),
            Action::Free | Action::Park => Vec::new(),
        };
        (action, out)
    }

    fn shared(master: bool) -> Shared {
        let s = Shared::new(1, 2, 2).unwrap();
        for m in &s.master {
            m.store(master, std::sync::atomic::Ordering::Relaxed);
        }
        s
    }

    fn ns_for(target: Ipv6Addr) -> Vec<u8> {
        let mut buf = [0u8; 128];
        let n = frames::ns_request(&mut buf, CLIENT_MAC, a("2001:db8:1::100"), target).unwrap();
        buf[..n].to_vec()
    }

    /// docs/conformance.md L05, for Neighbour Solicitations.
    #[test]
    fn l05_nd_replies_are_rate_limited_per_sender() {
        use crate::limiter::PER_SENDER_BURST;
        let (s, mut n, mut c) = (shared(true), NeighbourTable::new(), Counters::new(2));
        let ns = ns_for(a("2001:db8:1::1"));
        let sent = (0..50)
            .filter(|_| matches!(run(&s, &mut n, &mut c, 0, &ns).0, Action::Send { .. }))
            .count();
        assert_eq!(sent, PER_SENDER_BURST as usize);
        assert_eq!(
            c.drops[0][DropReason::NdRateLimited as usize],
            50 - sent as u64
        );
        assert_eq!(c.ports[0].nd_replies, sent as u64);
    }

    #[test]
    fn b30_master_answers_ns_for_vip_with_router_flag_from_vmac_backup_is_silent() {
        let (s, mut n, mut c) = (shared(true), NeighbourTable::new(), Counters::new(2));
        let (action, reply) = run(&s, &mut n, &mut c, 0, &ns_for(a("2001:db8:1::1")));
        assert!(matches!(action, Action::Send { port: 0, .. }));
        let eth = EthernetFrame::new_checked(&reply[..]).unwrap();
        assert_eq!(
            (eth.src_addr(), eth.dst_addr()),
            (EthernetAddress::vrrp_v6(1), CLIENT_MAC)
        );
        let ip = Ipv6Packet::new_checked(eth.payload()).unwrap();
        match nd::parse_ipv6_nd(&ip).unwrap() {
            NdRepr::Advert {
                flags,
                target,
                target_lladdr,
            } => {
                assert_eq!(target, a("2001:db8:1::1"));
                assert_eq!(target_lladdr, Some(EthernetAddress::vrrp_v6(1)));
                assert!(flags.contains(nd::NaFlags::ROUTER));
                assert!(flags.contains(nd::NaFlags::SOLICITED));
            }
            other => panic!("expected an NA, got {other:?}"),
        }
        assert_eq!(c.ports[0].nd_replies, 1);

        let (s, mut n, mut c) = (shared(false), NeighbourTable::new(), Counters::new(2));
        assert_eq!(
            run(&s, &mut n, &mut c, 0, &ns_for(a("2001:db8:1::1"))).0,
            Action::Free
        );
        assert_eq!(c.drops[0][DropReason::NotMaster as usize], 1);
        assert_eq!(c.ports[0].nd_replies, 0);
    }

    #[test]
    fn forward_v6_resolves_by_ns_then_decrements_hop_limit() {
        let (s, mut n, mut c) = (shared(true), NeighbourTable::new(), Counters::new(2));
        let mut f = vec![0u8; 14 + 40 + 8];
        {
            let mut eth = EthernetFrame::new_unchecked(&mut f[..]);
            eth.set_dst_addr(EthernetAddress::vrrp_v6(1));
            eth.set_src_addr(CLIENT_MAC);
            eth.set_ethertype(EtherType::IPV6);
        }
        let repr = Ipv6Repr {
            src: a("2001:db8:1::100"),
            dst: a("2001:db8:2::100"),
            next_header: 17,
            hop_limit: 64,
            traffic_class: 0,
            payload_len: 8,
        };
        repr.emit(&mut Ipv6Packet::new_unchecked(&mut f[14..]));
        let (action, _) = run(&s, &mut n, &mut c, 0, &f);
        assert_eq!(
            action,
            Action::Park,
            "parked while an NS goes out of the WAN"
        );
        let (req_port, req, req_len) = n.take_request().unwrap();
        assert_eq!(req_port, 1);
        let ip = Ipv6Packet::new_checked(&req[14..req_len]).unwrap();
        assert!(
            matches!(nd::parse_ipv6_nd(&ip).unwrap(), NdRepr::Solicit { target, .. } if target == a("2001:db8:2::100"))
        );
        n.learn(
            Instant::now(),
            1,
            IpAddr::V6(a("2001:db8:2::100")),
            SERVER_MAC,
        );
        let (action, out) = run(&s, &mut n, &mut c, 0, &f);
        assert_eq!(
            action,
            Action::Forward {
                port: 1,
                len: f.len()
            }
        );
        let eth = EthernetFrame::new_checked(&out[..]).unwrap();
        assert_eq!(
            (eth.dst_addr(), eth.src_addr()),
            (SERVER_MAC, EthernetAddress::vrrp_v6(2))
        );
        assert_eq!(
            Ipv6Packet::new_checked(eth.payload()).unwrap().hop_limit(),
            63
        );
    }

    /// A UDP packet from the client to `dst` with `hop_limit`, sent to the
    /// LAN's IPv6 virtual MAC.
    fn udp6(dst: Ipv6Addr, hop_limit: u8) -> Vec<u8> {
        let mut f = vec![0u8; 14 + 40 + 16];
        {
            let mut eth = EthernetFrame::new_unchecked(&mut f[..]);
            eth.set_dst_addr(EthernetAddress::vrrp_v6(1));
            eth.set_src_addr(CLIENT_MAC);
            eth.set_ethertype(EtherType::IPV6);
        }
        Ipv6Repr {
            src: a("2001:db8:1::100"),
            dst,
            next_header: 17,
            hop_limit,
            traffic_class: 0,
            payload_len: 16,
        }
        .emit(&mut Ipv6Packet::new_unchecked(&mut f[14..]));
        f
    }

    /// The ICMPv6 error in `reply`: from the LAN virtual MAC and address to
    /// the client, checksum good, quoting the whole of `original`.
    fn icmpv6_error_from_lan_vip(reply: &[u8], original: &[u8]) -> (u8, u8) {
        let eth = EthernetFrame::new_checked(reply).unwrap();
        assert_eq!(
            (eth.dst_addr(), eth.src_addr()),
            (CLIENT_MAC, EthernetAddress::vrrp_v6(1))
        );
        let ip = Ipv6Packet::new_checked(eth.payload()).unwrap();
        let (src, dst) = (a("2001:db8:1::1"), a("2001:db8:1::100"));
        assert_eq!(
            (ip.src_addr(), ip.dst_addr(), ip.next_header()),
            (src, dst, 58)
        );
        let icmp = xvrrp_wire::icmpv6::Icmpv6Packet::new_checked(ip.payload()).unwrap();
        assert!(icmp.verify_checksum(src, dst));
        assert_eq!(&ip.payload()[8..], &original[14..]);
        (icmp.msg_type(), icmp.msg_code())
    }

    #[test]
    fn v6_no_route_and_hop_limit_one_are_answered_from_the_vip() {
        for (dst, hop_limit, want, reason) in [
            (a("2001:db8:99::1"), 64, (1, 0), DropReason::NoRoute),
            (a("2001:db8:2::100"), 1, (3, 0), DropReason::TtlExceeded),
            (a("2001:db8:2::100"), 0, (3, 0), DropReason::TtlExceeded),
        ] {
            let (s, mut n, mut c) = (shared(true), NeighbourTable::new(), Counters::new(2));
            let f = udp6(dst, hop_limit);
            let (action, reply) = run(&s, &mut n, &mut c, 0, &f);
            assert_eq!(
                action,
                Action::Send {
                    port: 0,
                    len: reply.len()
                }
            );
            assert_eq!(
                icmpv6_error_from_lan_vip(&reply, &f),
                want,
                "{dst} {hop_limit}"
            );
            assert_eq!(c.drops[0][reason as usize], 1);
            assert_eq!(c.ports[0].icmp_errors, 1);
        }
    }

    #[test]
    fn v6_unresolved_next_hop_is_answered_with_address_unreachable() {
        let (s, mut n, mut c) = (shared(true), NeighbourTable::new(), Counters::new(2));
        let f = udp6(a("2001:db8:2::77"), 64);
        assert_eq!(run(&s, &mut n, &mut c, 0, &f).0, Action::Park);
        let t = tables();
        let mut buf = [0u8; 2048];
        buf[..f.len()].copy_from_slice(&f);
        let mut p = Processor {
            tables: &t,
            shared: &s,
            neigh: &mut n,
            counters: &mut c,
            punted: false,
            dropped: None,
        };
        let action = p.unresolved(Instant::now(), 0, &mut buf, f.len());
        let Action::Send { port: 0, len } = action else {
            panic!("expected an error to the sender, got {action:?}");
        };
        assert_eq!(icmpv6_error_from_lan_vip(&buf[..len], &f), (1, 3));
    }

    #[test]
    fn v6_wrong_version_is_dropped_and_an_icmpv6_error_is_not_answered() {
        let (s, mut n, mut c) = (shared(true), NeighbourTable::new(), Counters::new(2));
        let mut f = udp6(a("2001:db8:2::100"), 64);
        f[14] = 0x40;
        assert_eq!(run(&s, &mut n, &mut c, 0, &f).0, Action::Free);
        assert_eq!(c.drops[0][DropReason::BadIpHeader as usize], 1);
        // A Time Exceeded from the client towards nowhere: no error about it.
        let mut f = udp6(a("2001:db8:99::1"), 64);
        f[14 + 6] = 58;
        f[14 + 40] = 3;
        assert_eq!(run(&s, &mut n, &mut c, 0, &f).0, Action::Free);
        assert_eq!(c.drops[0][DropReason::NoRoute as usize], 1);
        assert_eq!(c.ports[0].icmp_errors, 0);
    }

    #[test]
    fn v6_advert_is_punted_and_unknown_vrid_counted() {
        let vips = [a("fe80::200:5eff:fe00:201")];
        let advert = |vrid| {
            let repr = VrrpRepr {
                version: Version::V3,
                vrid,
                priority: 100,
                max_advert_int: 100,
                addresses: AddrList::V6(&vips),
            };
            let mut buf = [0u8; 256];
            let n = frames::advert_v6(
                &mut buf,
                EthernetAddress::vrrp_v6(vrid),
                a("fe80::3"),
                frames::VRRP_V6_MCAST,
                frames::VRRP_V6_MCAST_MAC,
                &repr,
            )
            .unwrap();
            buf[..n].to_vec()
        };
        let (s, mut n, mut c) = (shared(false), NeighbourTable::new(), Counters::new(2));
        run(&s, &mut n, &mut c, 0, &advert(1));
        assert_eq!(s.adverts.len(), 1);
        run(&s, &mut n, &mut c, 0, &advert(9));
        assert_eq!(c.drops[0][DropReason::VridError as usize], 1);
        assert_eq!(s.adverts.len(), 1);
    }
}

/// The advertisement validation ladder and the ARP responder as the worker
/// runs them, one test per row of docs/conformance.md, for a v3/IPv4, a
/// v2/IPv4 and a v3/IPv6 instance on one port: each bad frame moves exactly
/// its drop counter by one, reaches nothing else (no punt, no reply) and
/// never panics.
#[cfg(test)]
#[allow(clippy::unwrap_used)]
pub(crate) mod tests_ladder {
    use super::*;
    use xvrrp_wire::{
        icmpv4::Icmpv4Repr,
        ipv4::Ipv4Repr,
        vrrp::{AddrList, ChecksumKind, VrrpPacket, VrrpRepr},
    };

    pub(crate) const CLIENT_MAC: EthernetAddress = EthernetAddress([2, 0, 0, 0, 0, 0x64]);
    pub(crate) const LAN_MAC: EthernetAddress = EthernetAddress([2, 0, 0, 0, 0, 2]);
    const CLIENT: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 100);
    /// Our primary address: the unicast-mode destination.
    pub(crate) const OWN4: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 2);
    /// The peer that sends the adverts.
    pub(crate) const PEER4: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 3);
    pub(crate) const VIP4: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 1);
    pub(crate) const VIP4_V2: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 10);
    pub(crate) const OWN6: Ipv6Addr = Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, 2);
    pub(crate) const PEER6: Ipv6Addr = Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, 3);
    pub(crate) const VIP6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 1, 0, 0, 0, 0, 1);
    const ETH: usize = HEADER_LEN;

    /// The three kinds of instance, each with its VRID on port 0.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    enum Fam {
        V3,
        V2,
        V6,
    }

    const ALL: [Fam; 3] = [Fam::V3, Fam::V2, Fam::V6];
    const V4_ONLY: [Fam; 2] = [Fam::V3, Fam::V2];

    impl Fam {
        fn vrid(self) -> u8 {
            match self {
                Fam::V3 | Fam::V6 => 1,
                Fam::V2 => 2,
            }
        }
        fn instance(self) -> usize {
            match self {
                Fam::V3 => 0,
                Fam::V2 => 1,
                Fam::V6 => 2,
            }
        }
    }

    pub(crate) fn tables() -> Tables {
        let inst = |id, vrid, version, vmac, vips4, vips6| InstanceView {
            id: RouterId(id),
            port: 0,
            vrid,
            version,
            vmac,
            vips4,
            vips6,
            accept: true,
            unicast: false,
        };
        Tables {
            ports: vec![PortView {
                name: "lan0".into(),
                mac: LAN_MAC,
                addrs4: vec![(OWN4, 24)],
                addrs6: vec![(OWN6, 64)],
            }],
            instances: vec![
                inst(
                    0,
                    1,
                    Version::V3,
                    EthernetAddress::vrrp_v4(1),
                    vec![(VIP4, 24)],
                    Vec::new(),
                ),
                inst(
                    1,
                    2,
                    Version::V2,
                    EthernetAddress::vrrp_v4(2),
                    vec![(VIP4_V2, 24)],
                    Vec::new(),
                ),
                inst(
                    2,
                    1,
                    Version::V3,
                    EthernetAddress::vrrp_v6(1),
                    Vec::new(),
                    vec![(VIP6, 64)],
                ),
            ],
            routes4: RouteTable::default(),
            routes6: RouteTable::default(),
        }
    }

    pub(crate) struct Rig {
        pub(crate) tables: Tables,
        pub(crate) shared: Shared,
        pub(crate) neigh: NeighbourTable,
        pub(crate) counters: Counters,
    }

    impl Rig {
        pub(crate) fn new(master: bool) -> Self {
            let shared = Shared::new(1, 1, 3).unwrap();
            for m in &shared.master {
                m.store(master, std::sync::atomic::Ordering::Relaxed);
            }
            Self {
                tables: tables(),
                shared,
                neigh: NeighbourTable::new(),
                counters: Counters::new(1),
            }
        }

        pub(crate) fn handle(&mut self, frame: &[u8]) -> (Action, Vec<u8>) {
            // Large enough for a 255-address IPv6 advert.
            let mut buf = vec![0u8; 8192];
            buf[..frame.len()].copy_from_slice(frame);
            let mut p = Processor {
                tables: &self.tables,
                shared: &self.shared,
                neigh: &mut self.neigh,
                counters: &mut self.counters,
                punted: false,
                dropped: None,
            };
            let action = p.handle(Instant::now(), 0, &mut buf, frame.len());
            let out = match action {
                Action::Send { len, .. } | Action::Forward { len, .. } => buf[..len].to_vec(),
                Action::Free | Action::Park => Vec::new(),
            };
            (action, out)
        }

        /// `frame` is dropped: `reason` moved by exactly one, no other drop
        /// counter moved, nothing punted, nothing sent.
        fn assert_dropped(&mut self, frame: &[u8], reason: DropReason, what: &str) {
            let drops = self.counters.drops[0];
            let port = self.counters.ports[0];
            let queued = self.shared.adverts.len();
            let (action, _) = self.handle(frame);
            assert_eq!(action, Action::Free, "{what}");
            for r in DropReason::ALL {
                let want = drops[r as usize] + u64::from(r == reason);
                assert_eq!(
                    self.counters.drops[0][r as usize],
                    want,
                    "{what}: counter {} (expected {} +1)",
                    r.name(),
                    reason.name()
                );
            }
            let now = self.counters.ports[0];
            assert_eq!(now.rx, port.rx + 1, "{what}");
            assert_eq!(
                (
                    now.punted,
                    now.arp_replies,
                    now.nd_replies,
                    now.icmp_replies
                ),
                (
                    port.punted,
                    port.arp_replies,
                    port.nd_replies,
                    port.icmp_replies
                ),
                "{what}"
            );
            assert_eq!(self.shared.adverts.len(), queued, "{what}: punted");
        }

        /// `frame` is handed to the control thread, counted once, no drop.
        fn assert_punted(&mut self, frame: &[u8], what: &str) {
            let drops = self.counters.drops[0];
            let punted = self.counters.ports[0].punted;
            let queued = self.shared.adverts.len();
            assert_eq!(self.handle(frame).0, Action::Free, "{what}");
            assert_eq!(
                self.counters.drops[0], drops,
                "{what}: a drop counter moved"
            );
            assert_eq!(self.counters.ports[0].punted, punted + 1, "{what}");
            assert_eq!(self.shared.adverts.len(), queued + 1, "{what}");
        }
    }

    // ----- frames ----------------------------------------------------------------

    /// An advert of `version` for `vrid`, from the peer, to the group (or,
    /// `unicast`, to our own address and MAC), priority 100, with the family's
    /// virtual address; every checksum correct.
    fn advert_with(fam: Fam, version: Version, vrid: u8, unicast: bool) -> Vec<u8> {
        let mut buf = vec![0u8; 256];
        let n = match fam {
            Fam::V3 | Fam::V2 => {
                let vips = [if fam == Fam::V2 { VIP4_V2 } else { VIP4 }];
                let repr = VrrpRepr {
                    version,
                    vrid,
                    priority: 100,
                    max_advert_int: if version == Version::V2 { 1 } else { 100 },
                    addresses: AddrList::V4(&vips),
                };
                let (dst, dst_mac) = if unicast {
                    (OWN4, LAN_MAC)
                } else {
                    (frames::VRRP_V4_MCAST, frames::VRRP_V4_MCAST_MAC)
                };
                frames::advert_v4(
                    &mut buf,
                    EthernetAddress::vrrp_v4(vrid),
                    PEER4,
                    dst,
                    dst_mac,
                    &repr,
                    ChecksumKind::Rfc9568,
                )
            }
            Fam::V6 => {
                let vips = [frames::link_local_from_mac(EthernetAddress::vrrp_v6(1))];
                let repr = VrrpRepr {
                    version,
                    vrid,
                    priority: 100,
                    max_advert_int: 100,
                    addresses: AddrList::V6(&vips),
                };
                let (dst, dst_mac) = if unicast {
                    (OWN6, LAN_MAC)
                } else {
                    (frames::VRRP_V6_MCAST, frames::VRRP_V6_MCAST_MAC)
                };
                frames::advert_v6(
                    &mut buf,
                    EthernetAddress::vrrp_v6(vrid),
                    PEER6,
                    dst,
                    dst_mac,
                    &repr,
                )
            }
        }
        .unwrap();
        buf.truncate(n);
        buf
    }

    fn version_of(fam: Fam) -> Version {
        if fam == Fam::V2 {
            Version::V2
        } else {
            Version::V3
        }
    }

    fn good(fam: Fam) -> Vec<u8> {
        advert_with(fam, version_of(fam), fam.vrid(), false)
    }

    /// Offset and length of the VRRP message inside `f`, as the IP header says.
    fn vrrp_span(f: &[u8], fam: Fam) -> (usize, usize) {
        if fam == Fam::V6 {
            let ip = Ipv6Packet::new_unchecked(&f[ETH..]);
            (ETH + 40, usize::from(ip.payload_len()))
        } else {
            let ip = Ipv4Packet::new_unchecked(&f[ETH..]);
            let hl = ip.header_len();
            (ETH + hl, usize::from(ip.total_len()) - hl)
        }
    }

    /// Sets the VRRP message length in the IP header (growing the frame with
    /// zeros if needed), then fixes only the IPv4 header checksum.
    fn set_vrrp_len(f: &mut Vec<u8>, fam: Fam, len: usize) {
        let (at, _) = vrrp_span(f, fam);
        if f.len() < at + len {
            f.resize(at + len, 0);
        }
        if fam == Fam::V6 {
            Ipv6Packet::new_unchecked(&mut f[ETH..]).set_payload_len(u16::try_from(len).unwrap());
        } else {
            let mut ip = Ipv4Packet::new_unchecked(&mut f[ETH..]);
            let hl = ip.header_len();
            ip.set_total_len(u16::try_from(hl + len).unwrap());
            ip.fill_checksum();
        }
    }

    /// Recomputes the VRRP checksum (the family's form, over the length the
    /// IP header gives) and the IPv4 header checksum, so that only the
    /// defect under test remains.
    fn refix(f: &mut [u8], fam: Fam) {
        let (at, len) = vrrp_span(f, fam);
        let (src, dst, kind) = if fam == Fam::V6 {
            let ip = Ipv6Packet::new_unchecked(&f[ETH..]);
            (
                IpAddr::V6(ip.src_addr()),
                IpAddr::V6(ip.dst_addr()),
                ChecksumKind::PseudoHeader,
            )
        } else {
            let ip = Ipv4Packet::new_unchecked(&f[ETH..]);
            (
                IpAddr::V4(ip.src_addr()),
                IpAddr::V4(ip.dst_addr()),
                ChecksumKind::Rfc9568,
            )
        };
        VrrpPacket::new_unchecked(&mut f[at..at + len]).fill_checksum(kind, src, dst);
        if fam != Fam::V6 {
            Ipv4Packet::new_unchecked(&mut f[ETH..]).fill_checksum();
        }
    }

    /// The family's good advert with `edit` applied to its VRRP message
    /// (given the message's offset), checksums then recomputed.
    fn edited(fam: Fam, edit: impl FnOnce(&mut Vec<u8>, usize)) -> Vec<u8> {
        let mut f = good(fam);
        let (at, _) = vrrp_span(&f, fam);
        edit(&mut f, at);
        refix(&mut f, fam);
        f
    }

    fn set_ttl(f: &mut [u8], fam: Fam, ttl: u8) {
        if fam == Fam::V6 {
            Ipv6Packet::new_unchecked(&mut f[ETH..]).set_hop_limit(ttl);
        } else {
            let mut ip = Ipv4Packet::new_unchecked(&mut f[ETH..]);
            ip.set_ttl(ttl);
            ip.fill_checksum();
        }
    }

    /// The good IPv4 advert of `fam` with IPv4 options `opts` inserted.
    fn with_options(fam: Fam, opts: &[u8]) -> Vec<u8> {
        let g = good(fam);
        let (at, len) = vrrp_span(&g, fam);
        let mut f = g[..at].to_vec();
        f.extend_from_slice(opts);
        f.extend_from_slice(&g[at..at + len]);
        let mut ip = Ipv4Packet::new_unchecked(&mut f[ETH..]);
        ip.set_version_and_header_len(4, 20 + opts.len());
        ip.set_total_len(u16::try_from(20 + opts.len() + len).unwrap());
        ip.fill_checksum();
        f
    }

    // ----- control ---------------------------------------------------------------

    #[test]
    fn good_adverts_of_each_family_are_punted() {
        let mut rig = Rig::new(false);
        for fam in ALL {
            rig.assert_punted(&good(fam), &format!("{fam:?}"));
        }
        // The unicast form, to an instance in unicast mode.
        let mut rig = Rig::new(false);
        for fam in ALL {
            rig.tables.instances[fam.instance()].unicast = true;
            let f = advert_with(fam, version_of(fam), fam.vrid(), true);
            rig.assert_punted(&f, &format!("{fam:?} unicast"));
        }
    }

    // ----- B rows ----------------------------------------------------------------

    #[test]
    fn b01_ttl_254_64_1_dropped_as_ip_ttl_error() {
        let mut rig = Rig::new(false);
        for fam in ALL {
            for ttl in [254, 64, 1] {
                let mut f = good(fam);
                set_ttl(&mut f, fam, ttl);
                rig.assert_dropped(&f, DropReason::IpTtlError, &format!("{fam:?} ttl {ttl}"));
            }
        }
    }

    /// xvrrp has no `min_ttl`: unicast adverts need TTL 255 like multicast
    /// ones (RFC 9568 §7.1), so anything lower is dropped.
    #[test]
    fn b02_unicast_mode_ttl_below_255_dropped() {
        let mut rig = Rig::new(false);
        for fam in ALL {
            rig.tables.instances[fam.instance()].unicast = true;
            for ttl in [254, 64] {
                let mut f = advert_with(fam, version_of(fam), fam.vrid(), true);
                set_ttl(&mut f, fam, ttl);
                rig.assert_dropped(&f, DropReason::IpTtlError, &format!("{fam:?} ttl {ttl}"));
            }
        }
    }

    #[test]
    fn b03_wrong_and_unknown_versions_dropped_as_version_error() {
        let mut rig = Rig::new(false);
        // A well-formed v2 advert at the v3 router, a v3 one at the v2 router.
        let v2_at_v3 = advert_with(Fam::V3, Version::V2, 1, false);
        rig.assert_dropped(&v2_at_v3, DropReason::VersionError, "v2 at v3");
        let v3_at_v2 = advert_with(Fam::V2, Version::V3, 2, false);
        rig.assert_dropped(&v3_at_v2, DropReason::VersionError, "v3 at v2");
        // Version 2 over IPv6, and versions that exist nowhere.
        for fam in ALL {
            let versions: &[u8] = if fam == Fam::V6 {
                &[2, 0, 4, 15]
            } else {
                &[0, 4, 15]
            };
            for &v in versions {
                let f = edited(fam, |f, at| f[at] = v << 4 | 1);
                rig.assert_dropped(&f, DropReason::VersionError, &format!("{fam:?} v{v}"));
            }
        }
    }

    #[test]
    fn b04_types_0_2_15_dropped_as_invalid_type() {
        let mut rig = Rig::new(false);
        for fam in ALL {
            for t in [0u8, 2, 15] {
                let f = edited(fam, |f, at| f[at] = f[at] & 0xf0 | t);
                rig.assert_dropped(&f, DropReason::InvalidType, &format!("{fam:?} type {t}"));
            }
        }
    }

    #[test]
    fn b05_unknown_vrid_and_vrid_0_dropped_as_vrid_error() {
        let mut rig = Rig::new(false);
        for fam in ALL {
            for vrid in [0u8, 9, 255] {
                let f = edited(fam, |f, at| f[at + 1] = vrid);
                rig.assert_dropped(&f, DropReason::VridError, &format!("{fam:?} vrid {vrid}"));
            }
        }
        // VRID 2 exists for IPv4 only: an IPv6 advert for it is unknown.
        let f = edited(Fam::V6, |f, at| f[at + 1] = 2);
        rig.assert_dropped(&f, DropReason::VridError, "v6 vrid 2");
    }

    #[test]
    fn b06_flipped_zero_and_ffff_checksums_dropped_as_checksum_error() {
        let mut rig = Rig::new(false);
        for fam in ALL {
            let g = good(fam);
            let (at, _) = vrrp_span(&g, fam);
            let right = u16::from_be_bytes([g[at + 6], g[at + 7]]);
            assert!(right != 0 && right != 0xffff, "{fam:?}: pick another frame");
            for (what, value) in [
                ("bit flip", right ^ 0x0100),
                ("0x0000", 0),
                ("0xffff", 0xffff),
            ] {
                let mut f = g.clone();
                f[at + 6..at + 8].copy_from_slice(&value.to_be_bytes());
                rig.assert_dropped(&f, DropReason::ChecksumError, &format!("{fam:?} {what}"));
            }
        }
    }

    #[test]
    fn b09_truncated_adverts_dropped_as_packet_length_error() {
        let mut rig = Rig::new(false);
        for fam in ALL {
            // 0 to 7 bytes, then the 8-byte header without its address.
            for len in 0..=8 {
                let mut f = good(fam);
                set_vrrp_len(&mut f, fam, len);
                let what = format!("{fam:?} {len} bytes");
                rig.assert_dropped(&f, DropReason::PacketLengthError, &what);
            }
            // Count 2 with one address.
            let f = edited(fam, |f, at| f[at + 3] = 2);
            let what = format!("{fam:?} count 2, one address");
            rig.assert_dropped(&f, DropReason::PacketLengthError, &what);
        }
    }

    /// Trailing bytes, with the checksum valid over the longer message, so
    /// only the length can fail.
    #[test]
    fn b10_trailing_bytes_dropped_as_packet_length_error_not_checksum() {
        let mut rig = Rig::new(false);
        for fam in ALL {
            for extra in [1usize, 3, 8] {
                let f = edited(fam, |f, _| {
                    let (_, len) = vrrp_span(f, fam);
                    set_vrrp_len(f, fam, len + extra);
                });
                let what = format!("{fam:?} +{extra} bytes");
                rig.assert_dropped(&f, DropReason::PacketLengthError, &what);
            }
        }
    }

    /// An IP length beyond the frame or below the header is malformed framing,
    /// dropped before the VRRP ladder; one that cuts the message short is a
    /// VRRP length error.
    #[test]
    fn b12_ip_length_inconsistent_with_frame_or_payload_dropped() {
        let mut rig = Rig::new(false);
        for fam in ALL {
            let g = good(fam);
            let (at, len) = vrrp_span(&g, fam);
            let beyond = g.len() - at + 1;
            let mut long = g.clone();
            if fam == Fam::V6 {
                Ipv6Packet::new_unchecked(&mut long[ETH..])
                    .set_payload_len(u16::try_from(beyond).unwrap());
            } else {
                let mut ip = Ipv4Packet::new_unchecked(&mut long[ETH..]);
                ip.set_total_len(u16::try_from(20 + beyond).unwrap());
                ip.fill_checksum();
            }
            let what = format!("{fam:?} length beyond the frame");
            rig.assert_dropped(&long, DropReason::Malformed, &what);
            let short = edited(fam, |f, _| set_vrrp_len(f, fam, len - 2));
            let what = format!("{fam:?} length short of the message");
            rig.assert_dropped(&short, DropReason::PacketLengthError, &what);
        }
        for fam in V4_ONLY {
            let mut f = good(fam);
            let mut ip = Ipv4Packet::new_unchecked(&mut f[ETH..]);
            ip.set_total_len(19);
            ip.fill_checksum();
            let what = format!("{fam:?} total length below the header");
            rig.assert_dropped(&f, DropReason::Malformed, &what);
        }
    }

    #[test]
    fn b13_ihl_4_and_overlong_header_dropped_options_decoded() {
        let mut rig = Rig::new(false);
        for fam in V4_ONLY {
            let mut f = good(fam);
            f[ETH] = 0x44;
            Ipv4Packet::new_unchecked(&mut f[ETH..]).fill_checksum();
            rig.assert_dropped(&f, DropReason::Malformed, &format!("{fam:?} IHL 4"));
            // IHL 15 (60-byte header) in a datagram of 40 bytes.
            let mut f = good(fam);
            let mut ip = Ipv4Packet::new_unchecked(&mut f[ETH..]);
            ip.set_version_and_header_len(4, 60);
            ip.set_total_len(40);
            ip.fill_checksum();
            let what = format!("{fam:?} header longer than the datagram");
            rig.assert_dropped(&f, DropReason::Malformed, &what);
            // IHL 6 (Router Alert) and 15 (NOPs): decoded, the advert is taken.
            rig.assert_punted(&with_options(fam, &[0x94, 4, 0, 0]), "IHL 6");
            rig.assert_punted(&with_options(fam, &[1; 40]), "IHL 15");
        }
    }

    #[test]
    fn b14_fragments_never_taken_for_adverts() {
        let mut rig = Rig::new(false);
        for fam in V4_ONLY {
            for (mf, offset) in [(true, 0u16), (false, 1), (true, 8)] {
                let mut f = good(fam);
                let mut ip = Ipv4Packet::new_unchecked(&mut f[ETH..]);
                ip.set_flags_and_frag_offset(false, mf, offset);
                ip.fill_checksum();
                let what = format!("{fam:?} MF {mf} offset {offset}");
                rig.assert_dropped(&f, DropReason::Fragment, &what);
            }
        }
        // IPv6: a Fragment header before the message. Not protocol 112 at
        // the IPv6 layer, so the worker does not even try the ladder.
        let g = good(Fam::V6);
        let (at, len) = vrrp_span(&g, Fam::V6);
        let mut f = g[..at].to_vec();
        f.extend_from_slice(&[112, 0, 0, 0, 0, 0, 0, 1]);
        f.extend_from_slice(&g[at..at + len]);
        let mut ip = Ipv6Packet::new_unchecked(&mut f[ETH..]);
        ip.set_next_header(xvrrp_wire::ipv6::NEXT_HEADER_FRAGMENT);
        ip.set_payload_len(u16::try_from(len + 8).unwrap());
        rig.assert_dropped(&f, DropReason::Unhandled, "v6 fragment header");
    }

    /// Count 0 is refused; 255 IPv6 addresses (a 4088-byte message) parse
    /// without allocation or overflow, and are handed over as a mismatching list.
    #[test]
    fn b15_count_0_refused_count_255_bounded() {
        let mut rig = Rig::new(false);
        for fam in ALL {
            let f = edited(fam, |f, at| f[at + 3] = 0);
            let what = format!("{fam:?} count 0");
            rig.assert_dropped(&f, DropReason::AddressCountError, &what);
        }
        let vips: Vec<Ipv6Addr> = (0..255u16)
            .map(|i| Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 1, i))
            .collect();
        let repr = VrrpRepr {
            version: Version::V3,
            vrid: 1,
            priority: 100,
            max_advert_int: 100,
            addresses: AddrList::V6(&vips),
        };
        let mut buf = vec![0u8; 5000];
        let n = frames::advert_v6(
            &mut buf,
            EthernetAddress::vrrp_v6(1),
            PEER6,
            frames::VRRP_V6_MCAST,
            frames::VRRP_V6_MCAST_MAC,
            &repr,
        )
        .unwrap();
        assert_eq!(n, ETH + 40 + 8 + 255 * 16);
        rig.assert_punted(&buf[..n], "v6 count 255");
        let advert = rig.shared.adverts.pop().unwrap();
        assert_eq!(advert.addresses, AddressList::Mismatch, "not our list");
    }

    /// Interval 0 (v2 and v3, and v3 with only the reserved bits set) is
    /// refused; reserved bits above a non-zero interval are masked.
    #[test]
    fn b17_b19_zero_interval_dropped_reserved_bits_masked() {
        let mut rig = Rig::new(false);
        for fam in ALL {
            let values: &[u16] = if fam == Fam::V2 { &[0] } else { &[0, 0xf000] };
            for &v in values {
                let f = edited(fam, |f, at| {
                    if fam == Fam::V2 {
                        f[at + 5] = 0;
                    } else {
                        f[at + 4..at + 6].copy_from_slice(&v.to_be_bytes());
                    }
                });
                let what = format!("{fam:?} interval {v:#x}");
                rig.assert_dropped(&f, DropReason::IntervalError, &what);
            }
        }
        for fam in [Fam::V3, Fam::V6] {
            let f = edited(fam, |f, at| f[at + 4] |= 0xf0);
            rig.assert_punted(&f, &format!("{fam:?} reserved bits"));
        }
    }

    #[test]
    fn b21_v2_auth_types_1_2_3_dropped_as_auth_type() {
        let mut rig = Rig::new(false);
        for auth in [1u8, 2, 3] {
            let f = edited(Fam::V2, |f, at| f[at + 4] = auth);
            rig.assert_dropped(&f, DropReason::AuthType, &format!("auth type {auth}"));
        }
    }

    #[test]
    fn b23_impossible_sources_dropped_as_source_error() {
        let mut rig = Rig::new(false);
        for fam in V4_ONLY {
            for src in [
                Ipv4Addr::UNSPECIFIED,
                Ipv4Addr::BROADCAST,
                Ipv4Addr::new(224, 0, 0, 5),
            ] {
                let mut f = good(fam);
                Ipv4Packet::new_unchecked(&mut f[ETH..]).set_src_addr(src);
                refix(&mut f, fam);
                rig.assert_dropped(&f, DropReason::SourceError, &format!("{fam:?} {src}"));
            }
        }
        for src in [
            Ipv6Addr::UNSPECIFIED,
            Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 1),
        ] {
            let mut f = good(Fam::V6);
            Ipv6Packet::new_unchecked(&mut f[ETH..]).set_src_addr(src);
            refix(&mut f, Fam::V6);
            rig.assert_dropped(&f, DropReason::SourceError, &format!("v6 {src}"));
        }
    }

    /// A unicast advert at a multicast-mode router, a multicast one at a
    /// unicast-mode router, and the wrong group.
    #[test]
    fn b24_wrong_destination_dropped_as_destination_error() {
        let mut rig = Rig::new(false);
        for fam in ALL {
            let f = advert_with(fam, version_of(fam), fam.vrid(), true);
            let what = format!("{fam:?} unicast in multicast mode");
            rig.assert_dropped(&f, DropReason::DestinationError, &what);
            let mut f = good(fam);
            if fam == Fam::V6 {
                Ipv6Packet::new_unchecked(&mut f[ETH..])
                    .set_dst_addr(Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 0x13));
            } else {
                Ipv4Packet::new_unchecked(&mut f[ETH..]).set_dst_addr(Ipv4Addr::new(224, 0, 0, 19));
            }
            refix(&mut f, fam);
            let what = format!("{fam:?} wrong group");
            rig.assert_dropped(&f, DropReason::DestinationError, &what);
        }
        let mut rig = Rig::new(false);
        for fam in ALL {
            rig.tables.instances[fam.instance()].unicast = true;
            let what = format!("{fam:?} multicast in unicast mode");
            rig.assert_dropped(&good(fam), DropReason::DestinationError, &what);
        }
    }

    fn arp_for_vip() -> Vec<u8> {
        let mut buf = [0u8; 64];
        let n = frames::arp_request(&mut buf, CLIENT_MAC, CLIENT, VIP4).unwrap();
        buf[..n].to_vec()
    }

    /// The master is asked for its virtual address by malformed ARP: bad
    /// hardware/protocol types or lengths, a packet cut short, a gratuitous
    /// announcement by someone else, a reply, an unknown operation. None is
    /// answered; the malformed ones count as `arp-malformed`, the others as
    /// traffic to the virtual address. A well-formed request is answered.
    #[test]
    fn b29_malformed_arp_for_the_vip_is_not_answered() {
        let mut rig = Rig::new(true);
        let arp = |edit: &dyn Fn(&mut Vec<u8>)| {
            let mut f = arp_for_vip();
            edit(&mut f);
            f
        };
        let malformed: [(&str, Vec<u8>); 6] = [
            ("hardware length 8", arp(&|f| f[ETH + 4] = 8)),
            ("protocol length 16", arp(&|f| f[ETH + 5] = 16)),
            ("hardware type 6", arp(&|f| f[ETH + 1] = 6)),
            (
                "protocol type IPv6",
                arp(&|f| f[ETH + 2..ETH + 4].copy_from_slice(&[0x86, 0xdd])),
            ),
            ("27 bytes", arp(&|f| f.truncate(ETH + 27))),
            ("no ARP body", arp(&|f| f.truncate(ETH))),
        ];
        for (what, f) in &malformed {
            rig.assert_dropped(f, DropReason::ArpMalformed, what);
        }
        let mut garp = [0u8; 64];
        let n = frames::garp_v4(&mut garp, CLIENT_MAC, VIP4).unwrap();
        rig.assert_dropped(&garp[..n], DropReason::ToVirtualAddress, "gratuitous");
        let reply = arp(&|f| f[ETH + 7] = 2);
        rig.assert_dropped(&reply, DropReason::ToVirtualAddress, "reply");
        let unknown = arp(&|f| f[ETH + 7] = 9);
        rig.assert_dropped(&unknown, DropReason::ToVirtualAddress, "operation 9");
        let (action, out) = rig.handle(&arp_for_vip());
        assert!(matches!(action, Action::Send { port: 0, .. }));
        assert_eq!(&out[6..12], &EthernetAddress::vrrp_v4(1).0);
        assert_eq!(rig.counters.ports[0].arp_replies, 1);
    }

    // ----- P09 -------------------------------------------------------------------

    fn echo_to_vip() -> Vec<u8> {
        let data = [0xab; 16];
        let repr = Icmpv4Repr::EchoRequest {
            ident: 1,
            seq_no: 2,
            data: &data,
        };
        let mut f = vec![0u8; ETH + 20 + repr.buffer_len()];
        {
            let mut eth = EthernetFrame::new_unchecked(&mut f[..]);
            eth.set_dst_addr(EthernetAddress::vrrp_v4(1));
            eth.set_src_addr(CLIENT_MAC);
            eth.set_ethertype(EtherType::IPV4);
        }
        Ipv4Repr {
            src: CLIENT,
            dst: VIP4,
            protocol: IPPROTO_ICMP,
            ttl: 64,
            tos: 0,
            ident: 7,
            dont_frag: true,
            payload_len: repr.buffer_len(),
        }
        .emit(&mut Ipv4Packet::new_unchecked(&mut f[ETH..]));
        repr.emit(&mut Icmpv4Packet::new_unchecked(&mut f[ETH + 20..]));
        f
    }

    /// `accept = false` on a master: ICMP echo to the virtual address is
    /// dropped, but ARP and Neighbour Solicitations for it are still
    /// answered (RFC 9568 §6.4.3: NS/ARP are never subject to Accept_Mode).
    #[test]
    fn p09_accept_false_drops_echo_but_answers_arp_and_ns() {
        let mut rig = Rig::new(true);
        for inst in &mut rig.tables.instances {
            inst.accept = false;
        }
        rig.assert_dropped(&echo_to_vip(), DropReason::ToVirtualAddress, "echo");
        let (action, _) = rig.handle(&arp_for_vip());
        assert!(matches!(action, Action::Send { port: 0, .. }));
        let mut ns = [0u8; 128];
        let client6 = Ipv6Addr::new(0x2001, 0xdb8, 1, 0, 0, 0, 0, 0x100);
        let n = frames::ns_request(&mut ns, CLIENT_MAC, client6, VIP6).unwrap();
        let (action, out) = rig.handle(&ns[..n]);
        assert!(matches!(action, Action::Send { port: 0, .. }));
        assert_eq!(&out[6..12], &EthernetAddress::vrrp_v6(1).0);
        assert_eq!(
            (
                rig.counters.ports[0].arp_replies,
                rig.counters.ports[0].nd_replies,
                rig.counters.ports[0].icmp_replies
            ),
            (1, 1, 0)
        );
        // The same echo with accept on is answered.
        rig.tables.instances[0].accept = true;
        assert!(matches!(
            rig.handle(&echo_to_vip()).0,
            Action::Send { port: 0, .. }
        ));
    }
}

/// Forwarding of frames whose UDP/TCP checksum the sender left partial
/// (transmit checksum offload): completed on the way out and counted, for
/// both transports over both families; complete frames pass untouched.
#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests_checksum {
    use super::*;
    use crate::lpm::Route;
    use proptest::prelude::*;
    use xvrrp_wire::{
        checksum::{IPPROTO_TCP, IPPROTO_UDP},
        ipv4::Ipv4Repr,
        ipv6::Ipv6Repr,
    };

    const CLIENT_MAC: EthernetAddress = EthernetAddress([2, 0, 0, 0, 0, 0x64]);
    const SERVER_MAC: EthernetAddress = EthernetAddress([2, 0, 0, 0, 1, 0x64]);
    const CLIENT4: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 100);
    const SERVER4: Ipv4Addr = Ipv4Addr::new(203, 0, 113, 100);

    fn a6(s: &str) -> Ipv6Addr {
        s.parse().unwrap()
    }

    fn client6() -> Ipv6Addr {
        a6("2001:db8:1::100")
    }

    fn server6() -> Ipv6Addr {
        a6("2001:db8:2::100")
    }

    /// lan0 and wan0 with an IPv4 and an IPv6 router each, all master.
    fn tables() -> Tables {
        let port = |name: &str, last: u8, v4: Ipv4Addr, v6: &str| PortView {
            name: name.into(),
            mac: EthernetAddress([2, 0, 0, 0, last, 2]),
            addrs4: vec![(v4, 24)],
            addrs6: vec![(a6(v6), 64)],
        };
        let inst = |id: u16, port, vrid: u8, v6: bool| InstanceView {
            id: RouterId(id),
            port,
            vrid,
            version: Version::V3,
            vmac: if v6 {
                EthernetAddress::vrrp_v6(vrid)
            } else {
                EthernetAddress::vrrp_v4(vrid)
            },
            vips4: if v6 {
                Vec::new()
            } else {
                vec![(Ipv4Addr::new(192, 0, 2 + vrid, 1), 24)]
            },
            vips6: if v6 {
                vec![(a6(&format!("2001:db8:{vrid}::1")), 64)]
            } else {
                Vec::new()
            },
            accept: true,
            unicast: false,
        };
        Tables {
            ports: vec![
                port("lan0", 0, Ipv4Addr::new(192, 0, 2, 2), "2001:db8:1::2"),
                port("wan0", 1, Ipv4Addr::new(203, 0, 113, 2), "2001:db8:2::2"),
            ],
            instances: vec![
                inst(0, 0, 1, false),
                inst(1, 1, 2, false),
                inst(2, 0, 1, true),
                inst(3, 1, 2, true),
            ],
            routes4: RouteTable::new([
                Route {
                    net: Ipv4Addr::new(192, 0, 2, 0),
                    len: 24,
                    via: None,
                    port: 0,
                },
                Route {
                    net: Ipv4Addr::new(203, 0, 113, 0),
                    len: 24,
                    via: None,
                    port: 1,
                },
            ]),
            routes6: RouteTable::new([
                Route {
                    net: a6("2001:db8:1::"),
                    len: 64,
                    via: None,
                    port: 0,
                },
                Route {
                    net: a6("2001:db8:2::"),
                    len: 64,
                    via: None,
                    port: 1,
                },
            ]),
        }
    }

    /// The server's MACs already known, so frames go straight out.
    struct Rig {
        tables: Tables,
        shared: Shared,
        neigh: NeighbourTable,
        counters: Counters,
        now: Instant,
    }

    impl Rig {
        fn new() -> Self {
            let shared = Shared::new(1, 2, 4).unwrap();
            for m in &shared.master {
                m.store(true, std::sync::atomic::Ordering::Relaxed);
            }
            let now = Instant::now();
            let mut neigh = NeighbourTable::new();
            neigh.learn(now, 1, IpAddr::V4(SERVER4), SERVER_MAC);
            neigh.learn(now, 1, IpAddr::V6(server6()), SERVER_MAC);
            Self {
                tables: tables(),
                shared,
                neigh,
                counters: Counters::new(2),
                now,
            }
        }

        /// Handles `frame` from lan0; the frame sent out of wan0.
        fn forward(&mut self, frame: &[u8]) -> Vec<u8> {
            let mut buf = [0u8; 2048];
            buf[..frame.len()].copy_from_slice(frame);
            let mut p = Processor {
                tables: &self.tables,
                shared: &self.shared,
                neigh: &mut self.neigh,
                counters: &mut self.counters,
                punted: false,
                dropped: None,
            };
            match p.handle(self.now, 0, &mut buf, frame.len()) {
                Action::Forward { port: 1, len } => buf[..len].to_vec(),
                other => panic!("not forwarded to wan0: {other:?}"),
            }
        }

        fn completed(&self) -> u64 {
            self.counters.ports[1].checksum_completed
        }
    }

    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    enum Fam {
        V4,
        V6,
    }

    /// Where a transport's checksum field sits.
    fn checksum_at(protocol: u8) -> usize {
        if protocol == IPPROTO_UDP {
            6
        } else {
            16
        }
    }

    /// A UDP or TCP segment with `payload` and a zero checksum field.
    fn segment(protocol: u8, payload: &[u8]) -> Vec<u8> {
        let mut s = if protocol == IPPROTO_UDP {
            let mut h = vec![0xc0, 0x01, 0x23, 0x28, 0, 0, 0, 0];
            let len = u16::try_from(8 + payload.len()).unwrap();
            h[4..6].copy_from_slice(&len.to_be_bytes());
            h
        } else {
            // Ports, sequence, acknowledgment, data offset 5, ACK|PSH, window.
            let mut h = vec![0u8; 20];
            h[..4].copy_from_slice(&[0xc0, 0x01, 0x23, 0x29]);
            h[4..8].copy_from_slice(&0x0102_0304u32.to_be_bytes());
            h[8..12].copy_from_slice(&0x0a0b_0c0du32.to_be_bytes());
            h[12] = 5 << 4;
            h[13] = 0x18;
            h[14..16].copy_from_slice(&0xfaf0u16.to_be_bytes());
            h
        };
        s.extend_from_slice(payload);
        s
    }

    /// Partial sum of the client → server pseudo-header for `seg`.
    fn pseudo(fam: Fam, protocol: u8, seg: &[u8]) -> u32 {
        match fam {
            Fam::V4 => checksum::pseudo_header_v4(
                CLIENT4,
                SERVER4,
                protocol,
                u16::try_from(seg.len()).unwrap(),
            ),
            Fam::V6 => checksum::pseudo_header_v6(
                client6(),
                server6(),
                protocol,
                u32::try_from(seg.len()).unwrap(),
            ),
        }
    }

    fn set_field(seg: &mut [u8], protocol: u8, v: u16) {
        let at = checksum_at(protocol);
        seg[at..at + 2].copy_from_slice(&v.to_be_bytes());
    }

    /// `seg` with its complete checksum.
    fn completed(fam: Fam, protocol: u8, mut seg: Vec<u8>) -> Vec<u8> {
        set_field(&mut seg, protocol, 0);
        let mut c = checksum::finish(pseudo(fam, protocol, &seg) + checksum::sum(&seg));
        if protocol == IPPROTO_UDP && c == 0 {
            c = 0xffff;
        }
        set_field(&mut seg, protocol, c);
        seg
    }

    /// `seg` as a sender with checksum offload hands it over: the field
    /// holds the folded pseudo-header sum.
    fn partial(fam: Fam, protocol: u8, mut seg: Vec<u8>) -> Vec<u8> {
        let p = checksum::fold(pseudo(fam, protocol, &seg));
        set_field(&mut seg, protocol, p);
        seg
    }

    /// Client → server frame to the LAN router's virtual MAC carrying
    /// `seg`, padded with `pad` bytes of 0xee (Ethernet padding).
    fn frame(fam: Fam, protocol: u8, seg: &[u8], pad: usize) -> Vec<u8> {
        let (ethertype, vmac, ip_len) = match fam {
            Fam::V4 => (EtherType::IPV4, EthernetAddress::vrrp_v4(1), 20),
            Fam::V6 => (EtherType::IPV6, EthernetAddress::vrrp_v6(1), 40),
        };
        let mut f = vec![0u8; HEADER_LEN + ip_len + seg.len()];
        {
            let mut eth = EthernetFrame::new_unchecked(&mut f[..]);
            eth.set_dst_addr(vmac);
            eth.set_src_addr(CLIENT_MAC);
            eth.set_ethertype(ethertype);
        }
        match fam {
            Fam::V4 => Ipv4Repr {
                src: CLIENT4,
                dst: SERVER4,
                protocol,
                ttl: 64,
                tos: 0,
                ident: 7,
                dont_frag: true,
                payload_len: seg.len(),
            }
            .emit(&mut Ipv4Packet::new_unchecked(&mut f[HEADER_LEN..])),
            Fam::V6 => Ipv6Repr {
                src: client6(),
                dst: server6(),
                next_header: protocol,
                hop_limit: 64,
                traffic_class: 0,
                payload_len: seg.len(),
            }
            .emit(&mut Ipv6Packet::new_unchecked(&mut f[HEADER_LEN..])),
        }
        f[HEADER_LEN + ip_len..].copy_from_slice(seg);
        f.resize(f.len() + pad, 0xee);
        f
    }

    /// The transport segment of a forwarded frame (padding excluded).
    fn segment_of(fam: Fam, out: &[u8]) -> Vec<u8> {
        match fam {
            Fam::V4 => Ipv4Packet::new_checked(&out[HEADER_LEN..])
                .unwrap()
                .payload()
                .to_vec(),
            Fam::V6 => Ipv6Packet::new_checked(&out[HEADER_LEN..])
                .unwrap()
                .payload()
                .to_vec(),
        }
    }

    fn verifies(fam: Fam, protocol: u8, seg: &[u8]) -> bool {
        checksum::verifies(pseudo(fam, protocol, seg) + checksum::sum(seg))
    }

    const CASES: [(Fam, u8, &str); 4] = [
        (Fam::V4, IPPROTO_UDP, "UDP/IPv4"),
        (Fam::V4, IPPROTO_TCP, "TCP/IPv4"),
        (Fam::V6, IPPROTO_UDP, "UDP/IPv6"),
        (Fam::V6, IPPROTO_TCP, "TCP/IPv6"),
    ];

    #[test]
    fn partial_checksums_are_completed_on_forward_and_counted() {
        // Odd and even lengths; the short one is padded on the wire.
        let payloads: [&[u8]; 3] = [b"x", b"partial checksum, odd length", &[0x5a; 1200]];
        for (fam, protocol, what) in CASES {
            for payload in payloads {
                let mut rig = Rig::new();
                let seg = segment(protocol, payload);
                let sent = partial(fam, protocol, seg.clone());
                assert!(!verifies(fam, protocol, &sent), "{what}: already complete");
                let out = rig.forward(&frame(fam, protocol, &sent, 8));
                let got = segment_of(fam, &out);
                assert!(verifies(fam, protocol, &got), "{what}: {got:02x?}");
                assert_eq!(got, completed(fam, protocol, seg), "{what}");
                assert_eq!(rig.completed(), 1, "{what}");
            }
        }
    }

    #[test]
    fn complete_checksums_are_forwarded_untouched_and_not_counted() {
        for (fam, protocol, what) in CASES {
            let mut rig = Rig::new();
            let seg = completed(fam, protocol, segment(protocol, b"complete"));
            let out = rig.forward(&frame(fam, protocol, &seg, 0));
            assert_eq!(segment_of(fam, &out), seg, "{what}");
            assert_eq!(rig.completed(), 0, "{what}");
        }
        // No UDP checksum over IPv4 (0) stays none.
        let mut rig = Rig::new();
        let seg = segment(IPPROTO_UDP, b"no checksum");
        let out = rig.forward(&frame(Fam::V4, IPPROTO_UDP, &seg, 0));
        assert_eq!(segment_of(Fam::V4, &out), seg);
        assert_eq!(rig.completed(), 0);
    }

    #[test]
    fn fragments_and_other_protocols_are_left_alone() {
        let mut rig = Rig::new();
        let seg = partial(
            Fam::V4,
            IPPROTO_UDP,
            segment(IPPROTO_UDP, b"first fragment"),
        );
        let mut f = frame(Fam::V4, IPPROTO_UDP, &seg, 0);
        {
            let mut ip = Ipv4Packet::new_unchecked(&mut f[HEADER_LEN..]);
            ip.set_flags_and_frag_offset(false, true, 0);
            ip.fill_checksum();
        }
        let out = rig.forward(&f);
        assert_eq!(segment_of(Fam::V4, &out), seg);
        // ICMP (whose checksum has no pseudo-header over IPv4).
        let out = rig.forward(&frame(Fam::V4, IPPROTO_ICMP, &seg, 0));
        assert_eq!(segment_of(Fam::V4, &out), seg);
        assert_eq!(rig.completed(), 0);
    }

    #[test]
    fn a_complete_checksum_equal_to_the_pseudo_sum_is_counted_but_unchanged() {
        for (fam, protocol, what) in CASES {
            // One payload word chosen so that the complete checksum equals
            // the pseudo-header sum: what a partial field would hold.
            let mut seg = segment(protocol, &[0; 32]);
            let target = checksum::fold(pseudo(fam, protocol, &seg));
            let word = checksum::fold(
                u32::from(!target)
                    + u32::from(!checksum::fold(
                        pseudo(fam, protocol, &seg) + checksum::sum(&seg),
                    )),
            );
            let at = if protocol == IPPROTO_UDP { 8 } else { 20 };
            seg[at..at + 2].copy_from_slice(&word.to_be_bytes());
            set_field(&mut seg, protocol, target);
            assert!(verifies(fam, protocol, &seg), "{what}");
            let mut rig = Rig::new();
            let out = rig.forward(&frame(fam, protocol, &seg, 0));
            assert_eq!(segment_of(fam, &out), seg, "{what}");
            assert_eq!(rig.completed(), 1, "{what}");
        }
    }

    proptest! {
        /// A forwarded frame whose checksum is complete is counted exactly
        /// when its field equals the pseudo-header sum (the one ambiguity
        /// of the recognition, about 1 in 65536), is otherwise untouched,
        /// and leaves with a valid checksum in every case.
        #[test]
        fn complete_frames_are_taken_for_partial_only_when_equal_to_the_pseudo_sum(
            v6 in any::<bool>(),
            tcp in any::<bool>(),
            payload in proptest::collection::vec(any::<u8>(), 0..400),
        ) {
            let fam = if v6 { Fam::V6 } else { Fam::V4 };
            let protocol = if tcp { IPPROTO_TCP } else { IPPROTO_UDP };
            let seg = completed(fam, protocol, segment(protocol, &payload));
            let at = checksum_at(protocol);
            let field = u16::from_be_bytes([seg[at], seg[at + 1]]);
            let ambiguous = field == checksum::fold(pseudo(fam, protocol, &seg));
            let mut rig = Rig::new();
            let out = segment_of(fam, &rig.forward(&frame(fam, protocol, &seg, 0)));
            prop_assert!(verifies(fam, protocol, &out));
            prop_assert_eq!(rig.completed(), u64::from(ambiguous));
            if !ambiguous {
                prop_assert_eq!(out, seg);
            }
        }
    }
}
