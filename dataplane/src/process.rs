//! Per-frame decisions of the fast path: classify, answer ARP and ICMP echo
//! for virtual addresses, forward frames sent to a virtual MAC, and punt
//! VRRP advertisements to the control thread.
//!
//! Everything here works on a caller-owned frame buffer and returns an
//! [`Action`]; nothing allocates, locks, logs or makes a system call, and no
//! input can make it panic (all parsing goes through checked views).

use std::{net::Ipv4Addr, time::Instant};

use xvrrp_wire::{
    arp::{ArpOperation, ArpPacket, ArpRepr},
    error::WireError,
    ethernet::{EtherType, EthernetAddress, EthernetFrame, HEADER_LEN},
    frames,
    icmpv4::{Icmpv4Packet, TYPE_ECHO_REQUEST},
    ipv4::{Ipv4Packet, IPPROTO_ICMP},
    vrrp::{self, Version},
};

use crate::{
    lpm::RouteTable,
    neigh::{Lookup, NeighbourTable},
    shared::{RxAdvert, Shared},
    stats::{Counters, DropReason},
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
    pub addrs: Vec<(Ipv4Addr, u8)>,
}

/// What the fast path knows of a virtual router instance.
#[derive(Debug, Clone)]
pub struct InstanceView {
    /// Port index.
    pub port: usize,
    /// VRID.
    pub vrid: u8,
    /// VRRP version it speaks.
    pub version: Version,
    /// Virtual MAC.
    pub vmac: EthernetAddress,
    /// Virtual IPv4 addresses with prefix lengths.
    pub vips: Vec<(Ipv4Addr, u8)>,
    /// Answer ICMP echo sent to the virtual addresses.
    pub accept: bool,
}

/// The fast path's static tables (built once at start).
#[derive(Debug, Clone)]
pub struct Tables {
    /// Ports, by index.
    pub ports: Vec<PortView>,
    /// Instances, by index (the same index as the ownership flags).
    pub instances: Vec<InstanceView>,
    /// Routes (connected + static).
    pub routes: RouteTable,
}

fn in_subnet(a: Ipv4Addr, net: Ipv4Addr, len: u8) -> bool {
    let m = match len {
        0 => 0,
        l if l >= 32 => u32::MAX,
        l => u32::MAX << (32 - u32::from(l)),
    };
    u32::from(a) & m == u32::from(net) & m
}

impl Tables {
    fn instance_for_vip(&self, port: usize, ip: Ipv4Addr) -> Option<(usize, &InstanceView)> {
        self.instances
            .iter()
            .enumerate()
            .find(|(_, i)| i.port == port && i.vips.iter().any(|(v, _)| *v == ip))
    }

    fn instance_for_vmac(&self, port: usize, mac: EthernetAddress) -> Option<(usize, &InstanceView)> {
        self.instances
            .iter()
            .enumerate()
            .find(|(_, i)| i.port == port && i.vmac == mac)
    }

    fn on_link(&self, port: usize, ip: Ipv4Addr) -> bool {
        self.ports
            .get(port)
            .is_some_and(|p| p.addrs.iter().any(|(a, l)| in_subnet(ip, *a, *l)))
            || self
                .instances
                .iter()
                .any(|i| i.port == port && i.vips.iter().any(|(a, l)| in_subnet(ip, *a, *l)))
    }

    /// The MAC and source address to use on `port` towards `target`: the
    /// virtual ones of an instance we are master of there (so replies come
    /// back to the fast path), else the port's own.
    fn egress_identity(&self, shared: &Shared, port: usize, target: Ipv4Addr) -> Option<(EthernetAddress, Ipv4Addr)> {
        let vip = self.instances.iter().enumerate().find_map(|(idx, i)| {
            if i.port != port || !shared.is_master(idx) {
                return None;
            }
            i.vips
                .iter()
                .find(|(a, l)| in_subnet(target, *a, *l))
                .or(i.vips.first())
                .map(|(a, _)| (i.vmac, *a))
        });
        vip.or_else(|| {
            self.ports
                .get(port)
                .and_then(|p| p.addrs.first().map(|(a, _)| (p.mac, *a)))
        })
    }

    fn egress_mac(&self, shared: &Shared, port: usize) -> Option<EthernetAddress> {
        self.instances
            .iter()
            .enumerate()
            .find(|(idx, i)| i.port == port && shared.is_master(*idx))
            .map(|(_, i)| i.vmac)
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
}

impl Processor<'_> {
    fn drop(&mut self, port: usize, reason: DropReason) -> Action {
        self.counters.drop(port, reason);
        Action::Free
    }

    /// Handles one received frame: `buf` is the whole frame buffer, `len`
    /// the received length. May rewrite `buf` in place.
    pub fn handle(&mut self, now: Instant, port: usize, buf: &mut [u8], len: usize) -> Action {
        self.counters.port(port).rx += 1;
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
            self.neigh.learn(now, port, repr.source_ip, repr.source_hw);
        }
        let Some((idx, inst)) = self.tables.instance_for_vip(port, repr.target_ip) else {
            // A reply to one of our resolution requests: learned above.
            if self.tables.instance_for_vmac(port, dst_mac).is_some() {
                return Action::Free;
            }
            return self.drop(port, DropReason::Unhandled);
        };
        if !self.shared.is_master(idx) {
            return self.drop(port, DropReason::NotMaster);
        }
        // Only requests from someone else get an answer: a gratuitous ARP
        // for our address (sender == target) is a peer announcing itself.
        if repr.operation != ArpOperation::Request || repr.source_ip == repr.target_ip {
            return self.drop(port, DropReason::ToVirtualAddress);
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
                return self.punt(now, port, src_mac, payload);
            }
            (ip.protocol(), ip.src_addr(), ip.dst_addr(), ip.ttl())
        };

        if let Some((idx, inst)) = self.tables.instance_for_vip(port, dst_ip) {
            if !self.shared.is_master(idx) {
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

        let Some((idx, _)) = self.tables.instance_for_vmac(port, dst_mac) else {
            return self.drop(port, DropReason::Unhandled);
        };
        if !self.shared.is_master(idx) {
            return self.drop(port, DropReason::NotMaster);
        }
        self.forward(now, port, buf, len, src_mac, src_ip, dst_ip, ttl)
    }

    fn is_echo_request(&self, buf: &[u8], len: usize) -> bool {
        let Some(payload) = buf.get(HEADER_LEN..len) else { return false };
        let Ok(ip) = Ipv4Packet::new_checked(payload) else { return false };
        Icmpv4Packet::new_checked(ip.payload()).is_ok_and(|icmp| icmp.msg_type() == TYPE_ECHO_REQUEST && icmp.verify_checksum())
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
            self.neigh.learn(now, port, src_ip, src_mac);
        }
        let Some(hop) = self.tables.routes.lookup(dst_ip) else {
            return self.drop(port, DropReason::NoRoute);
        };
        if ttl <= 1 {
            return self.drop(port, DropReason::TtlExceeded);
        }
        let next_mac = match self.neigh.lookup(now, hop.port, hop.addr) {
            Lookup::Hit(mac) => mac,
            Lookup::Pending => return self.drop(port, DropReason::NoNeighbour),
            Lookup::Ask => {
                // Reuse this frame for the ARP request that resolves the hop.
                self.counters.drop(port, DropReason::NoNeighbour);
                let Some((mac, ip)) = self.tables.egress_identity(self.shared, hop.port, hop.addr) else {
                    return Action::Free;
                };
                return match frames::arp_request(buf, mac, ip, hop.addr) {
                    Ok(n) => {
                        self.counters.port(hop.port).arp_requests += 1;
                        Action::Send { port: hop.port, len: n }
                    }
                    Err(_) => Action::Free,
                };
            }
        };
        let Some(egress_mac) = self.tables.egress_mac(self.shared, hop.port) else {
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
        match Ipv4Packet::new_checked(l3) {
            Ok(mut ip) => {
                ip.decrement_ttl();
            }
            Err(_) => return self.drop(port, DropReason::Malformed),
        }
        self.counters.port(hop.port).forwarded += 1;
        Action::Send { port: hop.port, len }
    }

    fn punt(&mut self, now: Instant, port: usize, src_mac: EthernetAddress, payload: &[u8]) -> Action {
        let Ok(ip) = Ipv4Packet::new_checked(payload) else {
            return self.drop(port, DropReason::Malformed);
        };
        let repr = match vrrp::parse_ipv4_advert(&ip, true) {
            Ok((repr, _)) => repr,
            Err(e) => return self.drop(port, advert_drop_reason(e)),
        };
        let known = self
            .tables
            .instances
            .iter()
            .find(|i| i.port == port && i.vrid == repr.vrid)
            .map(|i| i.version);
        match known {
            None => return self.drop(port, DropReason::VridError),
            Some(v) if v != repr.version => return self.drop(port, DropReason::VersionError),
            Some(_) => {}
        }
        let total = usize::from(ip.total_len());
        let bytes = payload.get(..total).unwrap_or(&[]);
        let Some(advert) = RxAdvert::new(port, now, src_mac, bytes) else {
            return self.drop(port, DropReason::TooLarge);
        };
        if self.shared.adverts.push(advert).is_err() {
            return self.drop(port, DropReason::PuntQueueFull);
        }
        self.counters.port(port).punted += 1;
        self.punted = true;
        Action::Free
    }
}
