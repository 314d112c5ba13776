//! Property tests: emit → parse identity for every representation, every
//! truncated prefix of a valid advertisement or ND message rejected, and
//! arbitrary or
//! mutated bytes into every parser never panicking (whatever is accepted
//! re-emits to the same bytes where the representation keeps every bit).
//!
//! And an independent decoder: every frame the crate builds (adverts v2/v3
//! over IPv4 and v3 over IPv6, ARP requests, replies and gratuitous ARP,
//! Neighbour Advertisements and Solicitations, ICMP and ICMPv6 echo
//! replies, ICMP Time Exceeded) decoded by `etherparse`, a separate
//! implementation, with the same addresses, TTL or hop limit, protocol,
//! lengths and valid checksums (section "etherparse agrees" at the end).

#![allow(clippy::unwrap_used)]

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use proptest::prelude::*;
use xvrrp_wire::frames::{self, VRRP_V4_MCAST_MAC, VRRP_V6_MCAST_MAC};
use xvrrp_wire::nd::{is_solicited_node, solicited_node, ALL_NODES};
use xvrrp_wire::{
    parse_ipv4_advert, parse_ipv6_advert, parse_ipv6_nd, AddrList, ArpOperation, ArpPacket,
    ArpRepr, ChecksumKind, EthernetAddress, EthernetFrame, Icmpv4Packet, Icmpv4Repr, Icmpv6Packet,
    Icmpv6Repr, Ipv4Packet, Ipv4Repr, Ipv6Packet, Ipv6Repr, NaFlags, NdRepr, Version, VrrpPacket,
    VrrpRepr, WireError, VRRP_V4_MCAST, VRRP_V6_MCAST,
};

const ETH: usize = 14;

mod strategies {
    use super::*;

    pub(super) fn ipv4() -> impl Strategy<Value = Ipv4Addr> {
        any::<[u8; 4]>().prop_map(Ipv4Addr::from)
    }

    pub(super) fn ipv6() -> impl Strategy<Value = Ipv6Addr> {
        any::<[u8; 16]>().prop_map(Ipv6Addr::from)
    }

    /// A source an advertisement may legitimately come from.
    pub(super) fn unicast_v4() -> impl Strategy<Value = Ipv4Addr> {
        ipv4().prop_filter("unicast", |a| {
            !(a.is_multicast() || a.is_broadcast() || a.is_unspecified() || a.is_loopback())
        })
    }

    pub(super) fn unicast_v6() -> impl Strategy<Value = Ipv6Addr> {
        ipv6().prop_filter("unicast", |a| {
            !(a.is_multicast() || a.is_unspecified() || a.is_loopback())
        })
    }

    pub(super) fn mac() -> impl Strategy<Value = EthernetAddress> {
        any::<[u8; 6]>().prop_map(EthernetAddress)
    }

    pub(super) fn checksum_kind() -> impl Strategy<Value = ChecksumKind> {
        prop_oneof![
            Just(ChecksumKind::Rfc9568),
            Just(ChecksumKind::PseudoHeader)
        ]
    }

    /// Fields of a valid IPv4 advertisement: version, vrid, priority,
    /// interval (in range for the version) and 1..=255 addresses.
    pub(super) fn advert_v4() -> impl Strategy<Value = (Version, u8, u8, u16, Vec<Ipv4Addr>)> {
        prop_oneof![Just(Version::V2), Just(Version::V3)].prop_flat_map(|v| {
            let interval = if v == Version::V2 {
                1u16..=255
            } else {
                1u16..=4095
            };
            (
                Just(v),
                any::<u8>(),
                any::<u8>(),
                interval,
                prop::collection::vec(ipv4(), 1..=255),
            )
        })
    }

    pub(super) fn advert_v6() -> impl Strategy<Value = (u8, u8, u16, Vec<Ipv6Addr>)> {
        (
            any::<u8>(),
            any::<u8>(),
            1u16..=4095,
            prop::collection::vec(ipv6(), 1..=255),
        )
    }

    pub(super) fn arp() -> impl Strategy<Value = ArpRepr> {
        (any::<u16>(), mac(), ipv4(), mac(), ipv4()).prop_map(
            |(op, source_hw, source_ip, target_hw, target_ip)| ArpRepr {
                operation: ArpOperation::from(op),
                source_hw,
                source_ip,
                target_hw,
                target_ip,
            },
        )
    }

    pub(super) fn ipv4_repr() -> impl Strategy<Value = Ipv4Repr> {
        (
            ipv4(),
            ipv4(),
            any::<u8>(),
            any::<u8>(),
            any::<u8>(),
            any::<u16>(),
            any::<bool>(),
            0usize..1500,
        )
            .prop_map(
                |(src, dst, protocol, ttl, tos, ident, dont_frag, payload_len)| Ipv4Repr {
                    src,
                    dst,
                    protocol,
                    ttl,
                    tos,
                    ident,
                    dont_frag,
                    payload_len,
                },
            )
    }

    /// A valid ND message with the addresses it may travel between:
    /// (source, destination, message).
    pub(super) fn nd() -> impl Strategy<Value = (Ipv6Addr, Ipv6Addr, NdRepr)> {
        let solicit = (
            unicast_v6(),
            unicast_v6(),
            unicast_v6(),
            prop::option::of(mac()),
            0u8..3,
        )
            .prop_map(|(src, udst, target, lladdr, form)| match form {
                // Multicast resolution.
                0 => (
                    src,
                    solicited_node(target),
                    NdRepr::Solicit {
                        target,
                        source_lladdr: lladdr,
                    },
                ),
                // Unicast reachability probe.
                1 => (
                    src,
                    udst,
                    NdRepr::Solicit {
                        target,
                        source_lladdr: lladdr,
                    },
                ),
                // Duplicate Address Detection: from ::, never with an SLLA.
                _ => (
                    Ipv6Addr::UNSPECIFIED,
                    solicited_node(target),
                    NdRepr::Solicit {
                        target,
                        source_lladdr: None,
                    },
                ),
            });
        let advert = (
            unicast_v6(),
            unicast_v6(),
            unicast_v6(),
            prop::option::of(mac()),
            any::<u8>(),
            any::<bool>(),
        )
            .prop_map(|(src, udst, target, lladdr, bits, multicast)| {
                let mut flags = NaFlags::from_bits_truncate(bits);
                let dst = if multicast {
                    flags = NaFlags::from_bits_truncate(bits & !NaFlags::SOLICITED.bits());
                    ALL_NODES
                } else {
                    udst
                };
                (
                    src,
                    dst,
                    NdRepr::Advert {
                        flags,
                        target,
                        target_lladdr: lladdr,
                    },
                )
            });
        prop_oneof![solicit, advert]
    }

    /// Mutations to apply to a valid frame: (index, new byte) pairs.
    pub(super) fn mutations() -> impl Strategy<Value = Vec<(usize, u8)>> {
        prop::collection::vec((any::<usize>(), any::<u8>()), 1..4)
    }
}

use strategies::*;

/// A valid Ethernet/IPv4 advertisement frame.
fn build_v4(
    src: Ipv4Addr,
    version: Version,
    vrid: u8,
    priority: u8,
    interval: u16,
    addrs: &[Ipv4Addr],
    kind: ChecksumKind,
) -> Vec<u8> {
    let repr = VrrpRepr {
        version,
        vrid,
        priority,
        max_advert_int: interval,
        addresses: AddrList::V4(addrs),
    };
    let mut buf = vec![0u8; 2048];
    let n = frames::advert_v4(
        &mut buf,
        EthernetAddress::vrrp_v4(vrid),
        src,
        VRRP_V4_MCAST,
        VRRP_V4_MCAST_MAC,
        &repr,
        kind,
    )
    .unwrap();
    buf.truncate(n);
    buf
}

fn build_v6(src: Ipv6Addr, vrid: u8, priority: u8, interval: u16, addrs: &[Ipv6Addr]) -> Vec<u8> {
    let repr = VrrpRepr {
        version: Version::V3,
        vrid,
        priority,
        max_advert_int: interval,
        addresses: AddrList::V6(addrs),
    };
    let mut buf = vec![0u8; 8192];
    let n = frames::advert_v6(
        &mut buf,
        EthernetAddress::vrrp_v6(vrid),
        src,
        VRRP_V6_MCAST,
        VRRP_V6_MCAST_MAC,
        &repr,
    )
    .unwrap();
    buf.truncate(n);
    buf
}

/// Whether the accepted VRRP message keeps no bits its representation drops
/// (v3 reserved bits, v2 authentication data), so re-emitting must give the
/// same bytes.
fn lossless(vrrp: &[u8], version: Version) -> bool {
    match version {
        Version::V3 => vrrp.get(4).is_some_and(|b| b >> 4 == 0),
        Version::V2 => vrrp.len() >= 8 && vrrp[vrrp.len() - 8..].iter().all(|&b| b == 0),
    }
}

/// Re-emits an accepted advertisement and checks it parses back equal and,
/// where lossless, to the same bytes.
fn check_reemit(vrrp: &[u8], repr: &VrrpRepr<'_>, kind: ChecksumKind, src: IpAddr, dst: IpAddr) {
    let mut out = vec![0u8; repr.buffer_len()];
    assert_eq!(out.len(), vrrp.len());
    repr.emit(&mut VrrpPacket::new_unchecked(&mut out[..]), kind, src, dst);
    let (again, kind_again) =
        VrrpRepr::parse(&VrrpPacket::new_unchecked(&out[..]), src, dst).unwrap();
    assert_eq!(&again, repr);
    assert_eq!(kind_again, kind);
    if lossless(vrrp, repr.version) {
        // One's-complement zero has two forms: a sender may write 0xffff where
        // we compute 0x0000; the rest must match exactly.
        assert_eq!(vrrp[..6], out[..6]);
        assert_eq!(vrrp[8..], out[8..]);
    }
}

/// An IPv6 packet (no Ethernet header) carrying `repr` from `src` to `dst`
/// with hop limit 255.
fn build_nd(src: Ipv6Addr, dst: Ipv6Addr, repr: &NdRepr) -> Vec<u8> {
    let len = repr.buffer_len();
    let mut buf = vec![0u8; 40 + len];
    Ipv6Repr {
        src,
        dst,
        next_header: 58,
        hop_limit: 255,
        traffic_class: 0,
        payload_len: len,
    }
    .emit(&mut Ipv6Packet::new_unchecked(&mut buf[..]));
    repr.emit(&mut Icmpv6Packet::new_unchecked(&mut buf[40..]), src, dst);
    buf
}

/// Sets Payload Length to the buffer's and recomputes the ICMPv6 checksum.
fn refix_icmpv6(pkt: &mut [u8]) {
    let len = u16::try_from(pkt.len().saturating_sub(40)).unwrap();
    let mut ip = Ipv6Packet::new_unchecked(pkt);
    ip.set_payload_len(len);
    let (src, dst) = (ip.src_addr(), ip.dst_addr());
    Icmpv6Packet::new_unchecked(ip.payload_mut()).fill_checksum(src, dst);
}

/// Re-emits an accepted ND message: it parses back equal, and keeps the
/// type, target and (NA) flags.
fn check_nd_reemit(icmp: &[u8], repr: &NdRepr, src: Ipv6Addr, dst: Ipv6Addr) {
    let mut out = vec![0u8; repr.buffer_len()];
    repr.emit(&mut Icmpv6Packet::new_unchecked(&mut out[..]), src, dst);
    assert_eq!(
        NdRepr::parse(&Icmpv6Packet::new_unchecked(&out[..]), src, dst).unwrap(),
        *repr
    );
    assert_eq!(out[..2], icmp[..2]);
    if matches!(repr, NdRepr::Advert { .. }) {
        // An NS's reserved word is not kept; an NA's flags are.
        assert_eq!(out[4] & 0xe0, icmp[4] & 0xe0);
    }
    assert_eq!(out[8..24], icmp[8..24]);
}

/// Feeds `bytes` to every parser; none may panic, and whatever they accept
/// must be consistent.
fn all_parsers(bytes: &[u8]) {
    let _ = EthernetFrame::new_checked(bytes)
        .map(|e| (e.dst_addr(), e.src_addr(), e.ethertype(), e.payload().len()));

    for mcast in [true, false] {
        if let Ok((repr, kind)) = parse_ipv4_advert(&Ipv4Packet::new_unchecked(bytes), mcast) {
            let ip = Ipv4Packet::new_checked(bytes).unwrap();
            let (src, dst) = (IpAddr::V4(ip.src_addr()), IpAddr::V4(ip.dst_addr()));
            check_reemit(ip.payload(), &repr, kind, src, dst);
        }
        if let Ok(repr) = parse_ipv6_advert(&Ipv6Packet::new_unchecked(bytes), mcast) {
            let ip = Ipv6Packet::new_checked(bytes).unwrap();
            let (src, dst) = (IpAddr::V6(ip.src_addr()), IpAddr::V6(ip.dst_addr()));
            check_reemit(ip.payload(), &repr, ChecksumKind::PseudoHeader, src, dst);
        }
    }

    if let Ok(ip) = Ipv4Packet::new_checked(bytes) {
        assert!(
            ip.header_len() >= 20
                && ip.payload().len() + ip.header_len() == usize::from(ip.total_len())
        );
        let _ = (
            ip.version(),
            ip.ttl(),
            ip.dont_frag(),
            ip.frag_offset(),
            ip.verify_checksum(),
        );
        if let Ok(repr) = Ipv4Repr::parse(&ip) {
            let mut out = vec![0u8; 20 + repr.payload_len];
            repr.emit(&mut Ipv4Packet::new_unchecked(&mut out[..]));
            assert_eq!(
                Ipv4Repr::parse(&Ipv4Packet::new_unchecked(&out[..])).unwrap(),
                repr
            );
        }
    }
    if let Ok(repr) = Ipv6Repr::parse(&Ipv6Packet::new_unchecked(bytes)) {
        let mut out = vec![0u8; 40 + repr.payload_len];
        repr.emit(&mut Ipv6Packet::new_unchecked(&mut out[..]));
        assert_eq!(
            Ipv6Repr::parse(&Ipv6Packet::new_unchecked(&out[..])).unwrap(),
            repr
        );
    }

    if let Ok(repr) = parse_ipv6_nd(&Ipv6Packet::new_unchecked(bytes)) {
        let ip = Ipv6Packet::new_checked(bytes).unwrap();
        check_nd_reemit(ip.payload(), &repr, ip.src_addr(), ip.dst_addr());
    }
    if let Ok(ip) = Ipv6Packet::new_checked(bytes) {
        let (src, dst) = (ip.src_addr(), ip.dst_addr());
        let icmp = ip.payload();
        if let Ok(repr) = Icmpv6Repr::parse(&Icmpv6Packet::new_unchecked(icmp), src, dst) {
            let mut out = vec![0u8; repr.buffer_len()];
            repr.emit(&mut Icmpv6Packet::new_unchecked(&mut out[..]), src, dst);
            // The checksum may use either one's-complement zero; bytes 4..8
            // of the error messages are unused and re-emitted as zero.
            assert_eq!(out.len(), icmp.len());
            assert_eq!(out[..2], icmp[..2]);
            assert_eq!(out[8..], icmp[8..]);
            if !matches!(
                repr,
                Icmpv6Repr::TimeExceeded { .. } | Icmpv6Repr::DstUnreachable { .. }
            ) {
                assert_eq!(out[4..8], icmp[4..8]);
            }
        }
    }

    if let Ok(repr) = ArpRepr::parse(&ArpPacket::new_unchecked(bytes)) {
        let mut out = [0u8; 28];
        repr.emit(&mut ArpPacket::new_unchecked(&mut out[..]));
        assert_eq!(out[..], bytes[..28]);
    }

    if let Ok(repr) = Icmpv4Repr::parse(&Icmpv4Packet::new_unchecked(bytes)) {
        let mut out = vec![0u8; repr.buffer_len()];
        repr.emit(&mut Icmpv4Packet::new_unchecked(&mut out[..]));
        assert_eq!(out.len(), bytes.len());
        // Bytes 4..8 of the error messages are unused and re-emitted as
        // zero; the checksum may use either one's-complement zero.
        let keep_rest = !matches!(
            repr,
            Icmpv4Repr::TimeExceeded { .. } | Icmpv4Repr::DstUnreachable { .. }
        );
        assert_eq!(out[..2], bytes[..2]);
        assert_eq!(out[8..], bytes[8..]);
        if keep_rest {
            assert_eq!(out[4..8], bytes[4..8]);
        }
    }

    let mut frame = bytes.to_vec();
    if let Ok(n) = frames::icmpv6_echo_reply_in_place(&mut frame) {
        let ip = Ipv6Packet::new_checked(&frame[ETH..n]).unwrap();
        let icmp = Icmpv6Packet::new_checked(ip.payload()).unwrap();
        assert!(icmp.verify_checksum(ip.src_addr(), ip.dst_addr()));
        assert_eq!(icmp.msg_type(), 129);
    } else {
        assert_eq!(
            frame, bytes,
            "a refused ICMPv6 echo request must be left unchanged"
        );
    }

    let mut frame = bytes.to_vec();
    if let Ok(n) = frames::icmp_echo_reply_in_place(&mut frame) {
        assert!(n <= frame.len());
        let ip = Ipv4Packet::new_checked(&frame[ETH..]).unwrap();
        assert!(ip.verify_checksum());
        assert!(Icmpv4Packet::new_checked(ip.payload())
            .unwrap()
            .verify_checksum());
    } else {
        assert_eq!(
            frame, bytes,
            "a refused echo request must be left unchanged"
        );
    }
}

proptest! {
    #[test]
    fn vrrp_v4_emit_parse_identity(
        src in unicast_v4(),
        (version, vrid, priority, interval, addrs) in advert_v4(),
        kind in checksum_kind(),
    ) {
        let f = build_v4(src, version, vrid, priority, interval, &addrs, kind);
        let (repr, got_kind) = parse_ipv4_advert(&Ipv4Packet::new_unchecked(&f[ETH..]), true).unwrap();
        let want = VrrpRepr { version, vrid, priority, max_advert_int: interval, addresses: AddrList::V4(&addrs) };
        prop_assert_eq!(repr, want);
        let expected_kind = if version == Version::V2 { ChecksumKind::Rfc9568 } else { kind };
        if got_kind != expected_kind {
            // Only possible when the pseudo-header sums to one's-complement
            // zero, making both forms valid; the message-only form wins.
            let ip = Ipv4Packet::new_unchecked(&f[ETH..]);
            let vrrp = VrrpPacket::new_unchecked(ip.payload());
            prop_assert!(vrrp.verify_checksum(ChecksumKind::Rfc9568, IpAddr::V4(src), IpAddr::V4(VRRP_V4_MCAST)));
            prop_assert_eq!(got_kind, ChecksumKind::Rfc9568);
        }
    }

    #[test]
    fn vrrp_v6_emit_parse_identity(src in unicast_v6(), (vrid, priority, interval, addrs) in advert_v6()) {
        let f = build_v6(src, vrid, priority, interval, &addrs);
        let repr = parse_ipv6_advert(&Ipv6Packet::new_unchecked(&f[ETH..]), true).unwrap();
        let want = VrrpRepr { version: Version::V3, vrid, priority, max_advert_int: interval, addresses: AddrList::V6(&addrs) };
        prop_assert_eq!(repr, want);
    }

    #[test]
    fn arp_emit_parse_identity(repr in arp()) {
        let mut buf = [0u8; 28];
        repr.emit(&mut ArpPacket::new_unchecked(&mut buf[..]));
        prop_assert_eq!(ArpRepr::parse(&ArpPacket::new_unchecked(&buf[..])).unwrap(), repr);
    }

    #[test]
    fn ipv4_emit_parse_identity(repr in ipv4_repr()) {
        let mut buf = vec![0u8; 20 + repr.payload_len];
        repr.emit(&mut Ipv4Packet::new_unchecked(&mut buf[..]));
        prop_assert_eq!(Ipv4Repr::parse(&Ipv4Packet::new_unchecked(&buf[..])).unwrap(), repr);
    }

    #[test]
    fn icmp_echo_emit_parse_identity(ident: u16, seq_no: u16, data in prop::collection::vec(any::<u8>(), 0..200), request: bool) {
        let repr = if request {
            Icmpv4Repr::EchoRequest { ident, seq_no, data: &data }
        } else {
            Icmpv4Repr::EchoReply { ident, seq_no, data: &data }
        };
        let mut buf = vec![0u8; repr.buffer_len()];
        repr.emit(&mut Icmpv4Packet::new_unchecked(&mut buf[..]));
        prop_assert_eq!(Icmpv4Repr::parse(&Icmpv4Packet::new_unchecked(&buf[..])).unwrap(), repr);
    }

    #[test]
    fn truncated_v4_advert_prefixes_rejected(
        src in unicast_v4(),
        (version, vrid, priority, interval, addrs) in advert_v4(),
        kind in checksum_kind(),
    ) {
        let f = build_v4(src, version, vrid, priority, interval, &addrs, kind);
        let total = usize::from(Ipv4Packet::new_unchecked(&f[ETH..]).total_len());
        let dgram = &f[ETH..ETH + total];
        for k in 0..total {
            // The datagram cut short as it stands ...
            prop_assert!(parse_ipv4_advert(&Ipv4Packet::new_unchecked(&dgram[..k]), true).is_err());
            // ... and with Total Length rewritten to match, so the VRRP
            // length checks are the ones exercised.
            if k >= 20 {
                let mut cut = dgram[..k].to_vec();
                let mut ip = Ipv4Packet::new_unchecked(&mut cut[..]);
                ip.set_total_len(u16::try_from(k).unwrap());
                ip.fill_checksum();
                let e = parse_ipv4_advert(&Ipv4Packet::new_unchecked(&cut[..]), true).unwrap_err();
                prop_assert!(matches!(e, WireError::Truncated { .. } | WireError::BadLength), "{:?}", e);
            }
        }
    }

    #[test]
    fn truncated_v6_advert_prefixes_rejected(src in unicast_v6(), (vrid, priority, interval, addrs) in advert_v6()) {
        let f = build_v6(src, vrid, priority, interval, &addrs);
        let pkt = &f[ETH..];
        for k in 0..pkt.len() {
            prop_assert!(parse_ipv6_advert(&Ipv6Packet::new_unchecked(&pkt[..k]), true).is_err());
            if k >= 40 {
                let mut cut = pkt[..k].to_vec();
                Ipv6Packet::new_unchecked(&mut cut[..]).set_payload_len(u16::try_from(k - 40).unwrap());
                let e = parse_ipv6_advert(&Ipv6Packet::new_unchecked(&cut[..]), true).unwrap_err();
                prop_assert!(matches!(e, WireError::Truncated { .. } | WireError::BadLength), "{:?}", e);
            }
        }
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..600)) {
        all_parsers(&bytes);
        if bytes.len() > ETH {
            all_parsers(&bytes[ETH..]);
        }
    }

    #[test]
    fn mutated_v4_adverts_never_panic(
        src in unicast_v4(),
        (version, vrid, priority, interval, addrs) in advert_v4(),
        kind in checksum_kind(),
        muts in mutations(),
    ) {
        let mut f = build_v4(src, version, vrid, priority, interval, &addrs, kind);
        let len = f.len();
        for (i, v) in muts {
            f[i % len] = v;
        }
        all_parsers(&f[ETH..]);
        all_parsers(&f);
    }

    #[test]
    fn mutated_then_refixed_v4_adverts_are_consistent(
        src in unicast_v4(),
        (version, vrid, priority, interval, addrs) in advert_v4(),
        kind in checksum_kind(),
        muts in mutations(),
    ) {
        // Checksums are recomputed after the mutation so that many mutated
        // frames are accepted and the re-emit checks in `all_parsers` bite.
        let mut f = build_v4(src, version, vrid, priority, interval, &addrs, kind);
        let len = f.len();
        for (i, v) in muts {
            f[i % len] = v;
        }
        let ip = Ipv4Packet::new_unchecked(&f[ETH..]);
        let (s, d) = (IpAddr::V4(ip.src_addr()), IpAddr::V4(ip.dst_addr()));
        let range = ETH + ip.header_len().min(len - ETH)..(ETH + usize::from(ip.total_len())).min(len);
        if range.start <= range.end {
            VrrpPacket::new_unchecked(&mut f[range]).fill_checksum(kind, s, d);
        }
        Ipv4Packet::new_unchecked(&mut f[ETH..]).fill_checksum();
        all_parsers(&f[ETH..]);
    }

    #[test]
    fn mutated_v6_adverts_never_panic(src in unicast_v6(), (vrid, priority, interval, addrs) in advert_v6(), muts in mutations()) {
        let mut f = build_v6(src, vrid, priority, interval, &addrs);
        let len = f.len();
        for (i, v) in muts {
            f[i % len] = v;
        }
        all_parsers(&f[ETH..]);
    }

    #[test]
    fn mutated_arp_and_echo_never_panic(repr in arp(), ident: u16, seq_no: u16, muts in mutations()) {
        let mut buf = [0u8; 64];
        let n = frames::arp_reply(&mut buf, &repr, repr.source_hw, EthernetAddress::vrrp_v4(1), repr.target_ip).unwrap();
        for &(i, v) in &muts {
            buf[i % n] = v;
        }
        all_parsers(&buf[ETH..n]);

        // An echo request frame, mutated.
        let data = [0x42u8; 12];
        let icmp = Icmpv4Repr::EchoRequest { ident, seq_no, data: &data };
        let ip = Ipv4Repr {
            src: repr.source_ip, dst: repr.target_ip, protocol: 1, ttl: 64, tos: 0, ident, dont_frag: true,
            payload_len: icmp.buffer_len(),
        };
        let mut f = vec![0u8; ETH + 20 + icmp.buffer_len()];
        EthernetFrame::new_unchecked(&mut f[..]).set_ethertype(xvrrp_wire::EtherType::IPV4);
        ip.emit(&mut Ipv4Packet::new_unchecked(&mut f[ETH..]));
        icmp.emit(&mut Icmpv4Packet::new_unchecked(&mut f[ETH + 20..]));
        all_parsers(&f);
        let len = f.len();
        for (i, v) in muts {
            f[i % len] = v;
        }
        all_parsers(&f);
    }
}

proptest! {
    #[test]
    fn nd_emit_parse_identity((src, dst, repr) in nd()) {
        let pkt = build_nd(src, dst, &repr);
        prop_assert_eq!(parse_ipv6_nd(&Ipv6Packet::new_unchecked(&pkt[..])).unwrap(), repr);
    }

    #[test]
    fn nd_builders_parse_back(mac in mac(), vmac in mac(), src in unicast_v6(), target in unicast_v6(), router: bool) {
        let mut buf = [0u8; 128];
        let n = frames::ns_request(&mut buf, mac, src, target).unwrap();
        let ip = Ipv6Packet::new_checked(&buf[ETH..n]).unwrap();
        prop_assert!(is_solicited_node(ip.dst_addr()));
        prop_assert_eq!(
            parse_ipv6_nd(&ip).unwrap(),
            NdRepr::Solicit { target, source_lladdr: Some(mac) }
        );
        let n = frames::na_reply(&mut buf, src, mac, vmac, target, router).unwrap();
        let want_flags = if router {
            NaFlags::ROUTER | NaFlags::SOLICITED | NaFlags::OVERRIDE
        } else {
            NaFlags::SOLICITED | NaFlags::OVERRIDE
        };
        prop_assert_eq!(
            parse_ipv6_nd(&Ipv6Packet::new_checked(&buf[ETH..n]).unwrap()).unwrap(),
            NdRepr::Advert { flags: want_flags, target, target_lladdr: Some(vmac) }
        );
        prop_assert_eq!(EthernetFrame::new_checked(&buf[..n]).unwrap().dst_addr(), mac);
    }

    #[test]
    fn truncated_nd_prefixes_rejected((src, dst, repr) in nd()) {
        let pkt = build_nd(src, dst, &repr);
        for k in 0..pkt.len() {
            // Cut short as it stands: Payload Length overruns the buffer.
            prop_assert!(parse_ipv6_nd(&Ipv6Packet::new_unchecked(&pkt[..k])).is_err());
            // With Payload Length and checksum rewritten to match, only a cut
            // exactly before the link-layer address option is still valid.
            if k >= 40 {
                let mut cut = pkt[..k].to_vec();
                refix_icmpv6(&mut cut);
                match parse_ipv6_nd(&Ipv6Packet::new_unchecked(&cut[..])) {
                    Ok(r) => {
                        prop_assert_eq!(k, 64);
                        prop_assert_eq!(r.target(), repr.target());
                    }
                    Err(e) => prop_assert!(
                        matches!(e, WireError::Truncated { .. } | WireError::BadNd),
                        "{:?}", e
                    ),
                }
            }
        }
    }

    #[test]
    fn mutated_nd_never_panics((src, dst, repr) in nd(), muts in mutations(), refix: bool) {
        let mut pkt = build_nd(src, dst, &repr);
        let len = pkt.len();
        for (i, v) in muts {
            pkt[i % len] = v;
        }
        // Refixing the checksum lets many mutations through, so that the
        // re-emit checks in `all_parsers` bite.
        if refix {
            refix_icmpv6(&mut pkt);
        }
        all_parsers(&pkt);
    }

    #[test]
    fn nd_options_never_panic((src, dst, repr) in nd(), opts in prop::collection::vec(any::<u8>(), 0..64)) {
        // Arbitrary option bytes after a valid header: accepted or refused,
        // never a panic or an endless walk.
        let mut pkt = build_nd(src, dst, &repr);
        pkt.truncate(64);
        pkt.extend_from_slice(&opts);
        refix_icmpv6(&mut pkt);
        all_parsers(&pkt);
    }

    #[test]
    fn icmpv6_echo_emit_parse_identity(src in unicast_v6(), dst in unicast_v6(), ident: u16, seq_no: u16, data in prop::collection::vec(any::<u8>(), 0..200), request: bool) {
        let repr = if request {
            Icmpv6Repr::EchoRequest { ident, seq_no, data: &data }
        } else {
            Icmpv6Repr::EchoReply { ident, seq_no, data: &data }
        };
        let mut buf = vec![0u8; repr.buffer_len()];
        repr.emit(&mut Icmpv6Packet::new_unchecked(&mut buf[..]), src, dst);
        prop_assert_eq!(Icmpv6Repr::parse(&Icmpv6Packet::new_unchecked(&buf[..]), src, dst).unwrap(), repr);
    }

    #[test]
    fn icmpv6_echo_reply_in_place_answers(
        src in unicast_v6(), dst in unicast_v6(), ident: u16, seq_no: u16,
        data in prop::collection::vec(any::<u8>(), 0..200), muts in mutations(),
    ) {
        let icmp = Icmpv6Repr::EchoRequest { ident, seq_no, data: &data };
        let mut f = vec![0u8; ETH + 40 + icmp.buffer_len()];
        EthernetFrame::new_unchecked(&mut f[..]).set_ethertype(xvrrp_wire::EtherType::IPV6);
        Ipv6Repr { src, dst, next_header: 58, hop_limit: 64, traffic_class: 0, payload_len: icmp.buffer_len() }
            .emit(&mut Ipv6Packet::new_unchecked(&mut f[ETH..]));
        icmp.emit(&mut Icmpv6Packet::new_unchecked(&mut f[ETH + 40..]), src, dst);
        let mut reply = f.clone();
        let n = frames::icmpv6_echo_reply_in_place(&mut reply).unwrap();
        prop_assert_eq!(n, f.len());
        let ip = Ipv6Packet::new_checked(&reply[ETH..]).unwrap();
        prop_assert_eq!((ip.src_addr(), ip.dst_addr()), (dst, src));
        prop_assert_eq!(
            Icmpv6Repr::parse(&Icmpv6Packet::new_unchecked(ip.payload()), dst, src).unwrap(),
            Icmpv6Repr::EchoReply { ident, seq_no, data: &data }
        );
        let len = f.len();
        for (i, v) in muts {
            f[i % len] = v;
        }
        all_parsers(&f);
        all_parsers(&f[ETH..]);
    }
}

// ----- etherparse agrees -----------------------------------------------------
//
// The frames built by `frames::*` decoded by etherparse: Ethernet II, ARP,
// IPv4 (header checksum recomputed by etherparse), IPv6, ICMPv4 and ICMPv6
// (checksums checked by etherparse), field by field against what the
// builder was asked for. etherparse does not know VRRP: its fields are read
// at their RFC offsets and its checksum recomputed with etherparse's
// one's-complement sum, over the message alone (VRRPv2, RFC 9568 form) or
// with the pseudo-header (RFC 5798 form, and always over IPv6).

mod independent {
    use super::*;
    use etherparse as ep;

    /// The frame decoded by etherparse from its Ethernet header on, with
    /// its Ethernet II header checked.
    pub(super) fn sliced(
        frame: &[u8],
        dst: EthernetAddress,
        src: EthernetAddress,
        ethertype: u16,
    ) -> ep::SlicedPacket<'_> {
        let p = ep::SlicedPacket::from_ethernet(frame).unwrap();
        let Some(ep::LinkSlice::Ethernet2(eth)) = &p.link else {
            panic!("etherparse: no Ethernet II header in {frame:02x?}");
        };
        assert_eq!(eth.destination(), dst.0, "Ethernet destination");
        assert_eq!(eth.source(), src.0, "Ethernet source");
        assert_eq!(eth.ether_type(), ep::EtherType(ethertype), "EtherType");
        p
    }

    /// The IPv4 header as etherparse reads it, its checksum recomputed by
    /// etherparse, and the IP payload.
    pub(super) fn ipv4<'a>(
        p: &'a ep::SlicedPacket<'a>,
        src: Ipv4Addr,
        dst: Ipv4Addr,
        ttl: u8,
        protocol: u8,
        payload_len: usize,
    ) -> (ep::Ipv4HeaderSlice<'a>, &'a [u8]) {
        let Some(ep::NetSlice::Ipv4(ip)) = &p.net else {
            panic!("etherparse: not IPv4");
        };
        let h = ip.header();
        assert_eq!(h.source_addr(), src, "IPv4 source");
        assert_eq!(h.destination_addr(), dst, "IPv4 destination");
        assert_eq!(h.ttl(), ttl, "TTL");
        assert_eq!(h.protocol(), ep::IpNumber(protocol), "protocol");
        assert_eq!(usize::from(h.total_len()), 20 + payload_len, "Total Length");
        assert_eq!(
            h.header_checksum(),
            h.to_header().calc_header_checksum(),
            "IPv4 header checksum"
        );
        assert!(!h.is_fragmenting_payload());
        assert_eq!(ip.payload().payload.len(), payload_len);
        (h, ip.payload().payload)
    }

    /// The IPv6 header as etherparse reads it, and the payload.
    pub(super) fn ipv6<'a>(
        p: &'a ep::SlicedPacket<'a>,
        src: Ipv6Addr,
        dst: Ipv6Addr,
        hop_limit: u8,
        next_header: u8,
        payload_len: usize,
    ) -> &'a [u8] {
        let Some(ep::NetSlice::Ipv6(ip)) = &p.net else {
            panic!("etherparse: not IPv6");
        };
        let h = ip.header();
        assert_eq!(h.source_addr(), src, "IPv6 source");
        assert_eq!(h.destination_addr(), dst, "IPv6 destination");
        assert_eq!(h.hop_limit(), hop_limit, "hop limit");
        assert_eq!(h.next_header(), ep::IpNumber(next_header), "next header");
        assert_eq!(
            usize::from(h.payload_length()),
            payload_len,
            "Payload Length"
        );
        ip.payload().payload
    }

    /// One's-complement sum of `parts` folded, complemented: 0 when the
    /// checksum they contain is right.
    pub(super) fn residue(parts: &[&[u8]]) -> u16 {
        parts
            .iter()
            .fold(ep::checksum::Sum16BitWords::new(), |s, p| s.add_slice(p))
            .ones_complement()
    }

    /// Checks a VRRP message at its RFC offsets: version and type, VRID,
    /// priority, count, interval, the addresses, and the checksum.
    pub(super) fn vrrp(
        msg: &[u8],
        version: Version,
        vrid: u8,
        priority: u8,
        interval: u16,
        addrs: &[&[u8]],
        pseudo: Option<&[&[u8]]>,
    ) {
        let v = if version == Version::V2 { 2u8 } else { 3 };
        assert_eq!(msg[0], (v << 4) | 1, "version/type");
        assert_eq!((msg[1], msg[2]), (vrid, priority));
        assert_eq!(usize::from(msg[3]), addrs.len(), "count");
        match version {
            // Auth Type 0, Adver Int in seconds, 8 bytes of zero auth data.
            Version::V2 => {
                assert_eq!(msg[4], 0);
                assert_eq!(u16::from(msg[5]), interval);
                assert!(msg[msg.len() - 8..].iter().all(|&b| b == 0));
            }
            // 4 reserved bits, 12-bit Max Adver Int in centiseconds.
            Version::V3 => assert_eq!(u16::from_be_bytes([msg[4], msg[5]]), interval),
        }
        let mut at = 8;
        for a in addrs {
            assert_eq!(&msg[at..at + a.len()], *a, "address {}", (at - 8) / a.len());
            at += a.len();
        }
        let auth = if version == Version::V2 { 8 } else { 0 };
        assert_eq!(msg.len(), at + auth, "VRRP length");
        let mut parts: Vec<&[u8]> = pseudo.map(<[&[u8]]>::to_vec).unwrap_or_default();
        parts.push(msg);
        assert_eq!(residue(&parts), 0, "VRRP checksum");
    }

    /// An ICMPv4 checksum as etherparse computes it.
    pub(super) fn icmpv4_checksum_ok(icmp: &ep::Icmpv4Slice<'_>) -> bool {
        ep::Icmpv4Header::with_checksum(icmp.icmp_type(), icmp.payload()).checksum
            == icmp.checksum()
    }
}

fn mac_bytes(m: EthernetAddress) -> [u8; 6] {
    m.0
}

proptest! {
    #[test]
    fn etherparse_reads_v4_adverts(
        src in unicast_v4(),
        (version, vrid, priority, interval, addrs) in advert_v4(),
        kind in checksum_kind(),
    ) {
        let f = build_v4(src, version, vrid, priority, interval, &addrs, kind);
        let p = independent::sliced(&f, VRRP_V4_MCAST_MAC, EthernetAddress::vrrp_v4(vrid), 0x0800);
        let vrrp_len = 8 + 4 * addrs.len() + if version == Version::V2 { 8 } else { 0 };
        let (h, msg) = independent::ipv4(&p, src, VRRP_V4_MCAST, 255, 112, vrrp_len);
        prop_assert_eq!(h.dcp().value(), frames::VRRP_TOS >> 2);
        let octets: Vec<[u8; 4]> = addrs.iter().map(|a| a.octets()).collect();
        let list: Vec<&[u8]> = octets.iter().map(|o| &o[..]).collect();
        let len = u16::try_from(vrrp_len).unwrap().to_be_bytes();
        let (s, d) = (src.octets(), VRRP_V4_MCAST.octets());
        let pseudo: [&[u8]; 4] = [&s, &d, &[0, 112], &len];
        let with_pseudo = version == Version::V3 && kind == ChecksumKind::PseudoHeader;
        independent::vrrp(msg, version, vrid, priority, interval, &list, with_pseudo.then_some(&pseudo[..]));
    }

    #[test]
    fn etherparse_reads_v6_adverts(src in unicast_v6(), (vrid, priority, interval, addrs) in advert_v6()) {
        let f = build_v6(src, vrid, priority, interval, &addrs);
        let p = independent::sliced(&f, VRRP_V6_MCAST_MAC, EthernetAddress::vrrp_v6(vrid), 0x86dd);
        let vrrp_len = 8 + 16 * addrs.len();
        let msg = independent::ipv6(&p, src, VRRP_V6_MCAST, 255, 112, vrrp_len);
        let octets: Vec<[u8; 16]> = addrs.iter().map(|a| a.octets()).collect();
        let list: Vec<&[u8]> = octets.iter().map(|o| &o[..]).collect();
        let len = u32::try_from(vrrp_len).unwrap().to_be_bytes();
        let (s, d) = (src.octets(), VRRP_V6_MCAST.octets());
        let pseudo: [&[u8]; 4] = [&s, &d, &len, &[0, 0, 0, 112]];
        independent::vrrp(msg, Version::V3, vrid, priority, interval, &list, Some(&pseudo[..]));
    }

    #[test]
    fn etherparse_reads_arp_frames(req in arp(), req_mac in mac(), our_mac in mac(), our_ip in ipv4(), target in ipv4()) {
        let mut buf = [0u8; 64];
        let check = |frame: &[u8], eth_dst: EthernetAddress, op: etherparse::ArpOperation, sender: (EthernetAddress, Ipv4Addr), target: (EthernetAddress, Ipv4Addr)| {
            prop_assert_eq!(frame.len(), 60);
            let p = independent::sliced(frame, eth_dst, sender.0, 0x0806);
            let Some(etherparse::NetSlice::Arp(a)) = &p.net else {
                panic!("etherparse: not ARP");
            };
            prop_assert_eq!(a.hw_addr_type(), etherparse::ArpHardwareId::ETHERNET);
            prop_assert_eq!(a.proto_addr_type(), etherparse::EtherType::IPV4);
            prop_assert_eq!((a.hw_addr_size(), a.proto_addr_size()), (6, 4));
            prop_assert_eq!(a.operation(), op);
            prop_assert_eq!(a.sender_hw_addr(), &mac_bytes(sender.0)[..]);
            prop_assert_eq!(a.sender_protocol_addr(), &sender.1.octets()[..]);
            prop_assert_eq!(a.target_hw_addr(), &mac_bytes(target.0)[..]);
            prop_assert_eq!(a.target_protocol_addr(), &target.1.octets()[..]);
            Ok(())
        };
        let n = frames::arp_reply(&mut buf, &req, req_mac, our_mac, our_ip).unwrap();
        check(&buf[..n], req_mac, etherparse::ArpOperation::REPLY, (our_mac, our_ip), (req.source_hw, req.source_ip))?;
        let n = frames::garp_v4(&mut buf, our_mac, our_ip).unwrap();
        check(&buf[..n], EthernetAddress::BROADCAST, etherparse::ArpOperation::REQUEST, (our_mac, our_ip), (EthernetAddress::ZERO, our_ip))?;
        let n = frames::arp_request(&mut buf, our_mac, our_ip, target).unwrap();
        check(&buf[..n], EthernetAddress::BROADCAST, etherparse::ArpOperation::REQUEST, (our_mac, our_ip), (EthernetAddress::ZERO, target))?;
    }

    #[test]
    fn etherparse_reads_nd_frames(mac in mac(), vmac in mac(), src in unicast_v6(), vip in unicast_v6(), router: bool, dad: bool) {
        use etherparse::icmpv6::{Icmpv6PayloadSlice, NdpOptionSlice};
        let mut buf = [0u8; 128];
        // NA in answer to an NS from `src` (or from :: for DAD), then unsolicited.
        let ns_src = if dad { Ipv6Addr::UNSPECIFIED } else { src };
        for solicited_form in [true, false] {
            let n = if solicited_form {
                frames::na_reply(&mut buf, ns_src, mac, vmac, vip, router).unwrap()
            } else {
                frames::unsolicited_na(&mut buf, vmac, vip).unwrap()
            };
            let unicast = solicited_form && !dad;
            let (eth_dst, ip_dst) = if unicast { (mac, src) } else { (frames::ALL_NODES_MAC, ALL_NODES) };
            let p = independent::sliced(&buf[..n], eth_dst, vmac, 0x86dd);
            independent::ipv6(&p, vip, ip_dst, 255, 58, 32);
            let Some(etherparse::TransportSlice::Icmpv6(icmp)) = &p.transport else {
                panic!("etherparse: not ICMPv6");
            };
            prop_assert!(icmp.is_checksum_valid(vip.octets(), ip_dst.octets()), "ICMPv6 checksum");
            let etherparse::Icmpv6Type::NeighborAdvertisement(h) = icmp.icmp_type() else {
                panic!("etherparse: not a Neighbour Advertisement: {:?}", icmp.icmp_type());
            };
            let want_router = if solicited_form { router } else { true };
            prop_assert_eq!((h.router, h.solicited, h.r#override), (want_router, unicast, true));
            let Ok(Icmpv6PayloadSlice::NeighborAdvertisement(na)) = icmp.payload_slice() else {
                panic!("etherparse: no NA payload");
            };
            prop_assert_eq!(na.target_address(), vip);
            let opts: Vec<_> = na.options_iterator().collect();
            prop_assert_eq!(opts.len(), 1);
            let Ok(NdpOptionSlice::TargetLinkLayerAddress(tlla)) = &opts[0] else {
                panic!("etherparse: no Target Link-Layer Address option: {opts:?}");
            };
            prop_assert_eq!(tlla.link_layer_address(), &vmac.0[..]);
        }

        // NS to resolve `vip` from `src`.
        let n = frames::ns_request(&mut buf, mac, src, vip).unwrap();
        let group = solicited_node(vip);
        let p = independent::sliced(&buf[..n], frames::multicast_mac(group), mac, 0x86dd);
        independent::ipv6(&p, src, group, 255, 58, 32);
        let Some(etherparse::TransportSlice::Icmpv6(icmp)) = &p.transport else {
            panic!("etherparse: not ICMPv6");
        };
        prop_assert!(icmp.is_checksum_valid(src.octets(), group.octets()), "ICMPv6 checksum");
        prop_assert_eq!(icmp.icmp_type(), etherparse::Icmpv6Type::NeighborSolicitation);
        let Ok(Icmpv6PayloadSlice::NeighborSolicitation(ns)) = icmp.payload_slice() else {
            panic!("etherparse: no NS payload");
        };
        prop_assert_eq!(ns.target_address(), vip);
        let opts: Vec<_> = ns.options_iterator().collect();
        let Ok(NdpOptionSlice::SourceLinkLayerAddress(slla)) = &opts[0] else {
            panic!("etherparse: no Source Link-Layer Address option: {opts:?}");
        };
        prop_assert_eq!(slla.link_layer_address(), &mac.0[..]);
    }

    #[test]
    fn etherparse_reads_icmp_echo_replies(
        host_mac in mac(), our_mac in mac(), host in unicast_v4(), ours in unicast_v4(),
        host6 in unicast_v6(), ours6 in unicast_v6(), ttl in 1u8..=255,
        ident: u16, seq: u16, data in prop::collection::vec(any::<u8>(), 0..200),
    ) {
        // The request, built by etherparse; the reply, by xvrrp-wire in place.
        let req = etherparse::PacketBuilder::ethernet2(host_mac.0, our_mac.0)
            .ipv4(host.octets(), ours.octets(), ttl)
            .icmpv4_echo_request(ident, seq);
        let mut f = Vec::new();
        req.write(&mut f, &data).unwrap();
        f.resize(f.len().max(60), 0);
        let n = frames::icmp_echo_reply_in_place(&mut f).unwrap();
        let p = independent::sliced(&f[..n], host_mac, our_mac, 0x0800);
        independent::ipv4(&p, ours, host, frames::ECHO_REPLY_TTL, 1, 8 + data.len());
        let Some(etherparse::TransportSlice::Icmpv4(icmp)) = &p.transport else {
            panic!("etherparse: not ICMP");
        };
        prop_assert_eq!(icmp.icmp_type(), etherparse::Icmpv4Type::EchoReply(etherparse::IcmpEchoHeader { id: ident, seq }));
        prop_assert!(independent::icmpv4_checksum_ok(icmp), "ICMP checksum");
        prop_assert_eq!(icmp.payload(), &data[..]);

        let req = etherparse::PacketBuilder::ethernet2(host_mac.0, our_mac.0)
            .ipv6(host6.octets(), ours6.octets(), ttl)
            .icmpv6_echo_request(ident, seq);
        let mut f = Vec::new();
        req.write(&mut f, &data).unwrap();
        let n = frames::icmpv6_echo_reply_in_place(&mut f).unwrap();
        let p = independent::sliced(&f[..n], host_mac, our_mac, 0x86dd);
        independent::ipv6(&p, ours6, host6, frames::ECHO_REPLY_TTL, 58, 8 + data.len());
        let Some(etherparse::TransportSlice::Icmpv6(icmp)) = &p.transport else {
            panic!("etherparse: not ICMPv6");
        };
        prop_assert_eq!(icmp.icmp_type(), etherparse::Icmpv6Type::EchoReply(etherparse::IcmpEchoHeader { id: ident, seq }));
        prop_assert!(icmp.is_checksum_valid(ours6.octets(), host6.octets()), "ICMPv6 checksum");
        prop_assert_eq!(icmp.payload(), &data[..]);
    }

    #[test]
    fn etherparse_reads_time_exceeded(
        host_mac in mac(), our_mac in mac(), host in unicast_v4(), far in unicast_v4(), ours in unicast_v4(),
        sport: u16, dport: u16, data in prop::collection::vec(any::<u8>(), 0..100),
    ) {
        // The expired datagram, built by etherparse: UDP with TTL 1.
        let orig = etherparse::PacketBuilder::ipv4(host.octets(), far.octets(), 1).udp(sport, dport);
        let mut ip = Vec::new();
        orig.write(&mut ip, &data).unwrap();
        let mut buf = [0u8; 128];
        let n = frames::time_exceeded_v4(&mut buf, &ip, our_mac, host_mac, ours).unwrap();
        let quoted = &ip[..(20 + 8).min(ip.len())];
        let p = independent::sliced(&buf[..n], host_mac, our_mac, 0x0800);
        independent::ipv4(&p, ours, host, frames::ECHO_REPLY_TTL, 1, 8 + quoted.len());
        let Some(etherparse::TransportSlice::Icmpv4(icmp)) = &p.transport else {
            panic!("etherparse: not ICMP");
        };
        prop_assert_eq!(
            icmp.icmp_type(),
            etherparse::Icmpv4Type::TimeExceeded(etherparse::icmpv4::TimeExceededCode::TtlExceededInTransit)
        );
        prop_assert!(independent::icmpv4_checksum_ok(icmp), "ICMP checksum");
        prop_assert_eq!(icmp.payload(), quoted);
    }
}
