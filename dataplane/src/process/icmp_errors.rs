//! The ICMP and ICMPv6 errors a router owes the sender of a packet it does
//! not forward: Time Exceeded when the TTL / hop limit runs out, Destination
//! Unreachable when it has no route (net unreachable / no route) or when the
//! next hop never answers resolution (host / address unreachable).
//!
//! Every error goes back out of the ingress port from the ingress side's
//! virtual address and MAC (or the port's own), at most one per
//! [`crate::shared::ICMP_ERROR_SPACING`] over all workers, and never about a
//! packet no error may answer (RFC 1812 §4.3.2.7, RFC 4443 §2.4 (e)): an
//! error message, a packet to a multicast or broadcast address, a non-first
//! fragment, or one whose source names no single host.

use std::{
    net::{Ipv4Addr, Ipv6Addr},
    time::Instant,
};

use xvrrp_wire::{
    ethernet::{EtherType, EthernetAddress, EthernetFrame, HEADER_LEN},
    frames::{self, Icmpv6Error},
    icmpv4, icmpv6,
    ipv4::{Ipv4Packet, IPPROTO_ICMP},
    ipv6::Ipv6Packet,
};

use super::Processor;
use crate::xsk::Action;

/// An ICMPv4 error the fast path sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Icmpv4Error {
    /// Type 11 code 0: the TTL ran out.
    TimeExceeded,
    /// Type 3 with its code.
    DstUnreachable(icmpv4::Unreachable),
}

/// Room for the quoted part of an IPv4 datagram: a header with the most
/// options (60) and 8 bytes of payload.
const QUOTE_V4: usize = 68;

impl Processor<'_> {
    /// Handles a parked frame whose next hop never answered resolution: the
    /// sender gets host unreachable (IPv4) or address unreachable (IPv6).
    /// The frame itself is already counted as `no-neighbour`.
    pub fn unresolved(&mut self, now: Instant, port: usize, buf: &mut [u8], len: usize) -> Action {
        let Some(eth) = buf
            .get(..len)
            .and_then(|f| EthernetFrame::new_checked(f).ok())
        else {
            return Action::Free;
        };
        let (ethertype, src_mac) = (eth.ethertype(), eth.src_addr());
        match ethertype {
            EtherType::IPV4 => self.icmp_error_v4(
                now,
                port,
                buf,
                len,
                src_mac,
                Icmpv4Error::DstUnreachable(icmpv4::Unreachable::Host),
            ),
            EtherType::IPV6 => self.icmp_error_v6(
                now,
                port,
                buf,
                len,
                src_mac,
                Icmpv6Error::DstUnreachable(icmpv6::Unreachable::Address),
            ),
            _ => Action::Free,
        }
    }

    /// Answers the IPv4 datagram in `buf` (a frame of `len` bytes received
    /// on `port` from `src_mac`) with `kind`, built over the same buffer;
    /// frees it when no error is due or allowed now.
    pub(super) fn icmp_error_v4(
        &mut self,
        now: Instant,
        port: usize,
        buf: &mut [u8],
        len: usize,
        src_mac: EthernetAddress,
        kind: Icmpv4Error,
    ) -> Action {
        // The quote is copied out: the reply is built over the same buffer.
        let mut quote = [0u8; QUOTE_V4];
        let (n, src_ip) = {
            let Some(ip) = buf
                .get(HEADER_LEN..len)
                .and_then(|l3| Ipv4Packet::new_checked(l3).ok())
            else {
                return Action::Free;
            };
            if !error_allowed_v4(&ip) || src_mac.is_multicast() {
                return Action::Free;
            }
            let original = ip.into_inner();
            let n = original.len().min(QUOTE_V4);
            if let (Some(dst), Some(src)) = (quote.get_mut(..n), original.get(..n)) {
                dst.copy_from_slice(src);
            }
            (n, Ipv4Packet::new_unchecked(original).src_addr())
        };
        if !self.shared.icmp_error_allowed(now) {
            return Action::Free;
        }
        let Some((our_mac, our_ip)) = self.tables.egress_identity(self.shared, port, src_ip) else {
            return Action::Free;
        };
        let original = quote.get(..n).unwrap_or(&[]);
        let built = match kind {
            Icmpv4Error::TimeExceeded => {
                frames::time_exceeded_v4(buf, original, our_mac, src_mac, our_ip)
            }
            Icmpv4Error::DstUnreachable(code) => {
                frames::dst_unreachable_v4(buf, original, our_mac, src_mac, our_ip, code)
            }
        };
        self.sent_error(port, built)
    }

    /// Answers the IPv6 packet in `buf` with `kind`, as
    /// [`icmp_error_v4`](Self::icmp_error_v4) does for IPv4.
    pub(super) fn icmp_error_v6(
        &mut self,
        now: Instant,
        port: usize,
        buf: &mut [u8],
        len: usize,
        src_mac: EthernetAddress,
        kind: Icmpv6Error,
    ) -> Action {
        let mut quote = [0u8; icmpv6::MAX_QUOTE];
        let (n, src_ip) = {
            let Some(ip) = buf
                .get(HEADER_LEN..len)
                .and_then(|l3| Ipv6Packet::new_checked(l3).ok())
            else {
                return Action::Free;
            };
            if !error_allowed_v6(&ip) || src_mac.is_multicast() {
                return Action::Free;
            }
            let src_ip = ip.src_addr();
            let original = ip.into_inner();
            let n = original.len().min(icmpv6::MAX_QUOTE);
            if let (Some(dst), Some(src)) = (quote.get_mut(..n), original.get(..n)) {
                dst.copy_from_slice(src);
            }
            (n, src_ip)
        };
        if !self.shared.icmp_error_allowed(now) {
            return Action::Free;
        }
        let Some((our_mac, our_ip)) =
            self.tables
                .egress_identity::<Ipv6Addr>(self.shared, port, src_ip)
        else {
            return Action::Free;
        };
        let original = quote.get(..n).unwrap_or(&[]);
        let built = frames::icmpv6_error(buf, original, our_mac, src_mac, our_ip, kind);
        self.sent_error(port, built)
    }

    fn sent_error(
        &mut self,
        port: usize,
        built: Result<usize, xvrrp_wire::error::WireError>,
    ) -> Action {
        match built {
            Ok(len) => {
                self.counters.port(port).icmp_errors += 1;
                Action::Send { port, len }
            }
            Err(_) => Action::Free,
        }
    }
}

/// Whether an IPv4 datagram may be answered with an ICMP error (RFC 1812
/// §4.3.2.7): its source names one host, its destination is not multicast
/// or broadcast, it is not a fragment other than the first, and it is not
/// itself an ICMP error.
fn error_allowed_v4(ip: &Ipv4Packet<&[u8]>) -> bool {
    let (src, dst) = (ip.src_addr(), ip.dst_addr());
    let one_host = |a: Ipv4Addr| {
        !(a.is_unspecified() || a.is_loopback() || a.is_multicast() || a.is_broadcast())
            && a.octets()[0] < 240
    };
    if !one_host(src) || dst.is_multicast() || dst.is_broadcast() || ip.frag_offset() != 0 {
        return false;
    }
    ip.protocol() != IPPROTO_ICMP || ip.payload().first().is_some_and(|t| !icmpv4::is_error(*t))
}

/// Whether an IPv6 packet may be answered with an ICMPv6 error (RFC 4443
/// §2.4 (e)): its source names one node, its destination is not multicast,
/// and it is not itself an ICMPv6 error (extension headers are not walked:
/// a packet that has them is answered).
fn error_allowed_v6(ip: &Ipv6Packet<&[u8]>) -> bool {
    let src = ip.src_addr();
    if src.is_unspecified() || src.is_multicast() || src.is_loopback() {
        return false;
    }
    if ip.dst_addr().is_multicast() {
        return false;
    }
    ip.next_header() != icmpv6::IPPROTO_ICMPV6
        || ip.payload().first().is_some_and(|t| !icmpv6::is_error(*t))
}
