//! Golden frames: fixed bytes plus the expected representation, checked both
//! ways (parse → repr, builder → bytes).
//!
//! The bytes were produced by this crate's builders and then decoded by an
//! independent implementation before being frozen: Wireshark/TShark 4.0.17
//! (Debian 12), `tshark -r golden.pcap -V -o ip.check_checksum:TRUE
//! -o vrrp.v3_checksum_as_in_v2:FALSE` (and `:TRUE`). TShark reported every
//! IPv4 header, ICMP and VRRP checksum `[correct]`, with the v3/IPv4
//! pseudo-header frame correct only under `v3_checksum_as_in_v2:FALSE` and the
//! RFC 9568 (message-only) frame correct only under `:TRUE`, and the fields
//! (version, VRID, priority, count, interval, addresses, TTL 255, DSCP CS6,
//! ARP opcodes and addresses, ICMP id/seq) as listed next to each vector.

#![allow(clippy::unwrap_used)]

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use hex_literal::hex;
use xvrrp_wire::frames::{self, VRRP_V4_MCAST_MAC, VRRP_V6_MCAST_MAC};
use xvrrp_wire::{
    parse_ipv4_advert, parse_ipv6_advert, AddrList, ArpOperation, ArpPacket, ArpRepr, ChecksumKind,
    EtherType, EthernetAddress, EthernetFrame, Icmpv4Packet, Icmpv4Repr, Ipv4Packet, Ipv4Repr,
    Ipv6Packet, Version, VrrpRepr, VRRP_V4_MCAST, VRRP_V6_MCAST,
};

/// Asserts byte equality and, on failure, shows both frames as hex with the
/// first differing offset.
fn assert_bytes_eq(got: &[u8], want: &[u8]) {
    if got != want {
        let first = got
            .iter()
            .zip(want)
            .position(|(a, b)| a != b)
            .unwrap_or(got.len().min(want.len()));
        let dump = |b: &[u8]| {
            b.chunks(16)
                .map(|c| {
                    c.iter()
                        .map(|x| format!("{x:02x}"))
                        .collect::<Vec<_>>()
                        .join(" ")
                })
                .collect::<Vec<_>>()
                .join("\n")
        };
        panic!(
            "frames differ at byte {first} (got {} bytes, want {})\n-- got --\n{}\n-- want --\n{}",
            got.len(),
            want.len(),
            dump(got),
            dump(want)
        );
    }
}

/// VRRPv3 over IPv4 with the pseudo-header checksum, as keepalived and FRR
/// send it. TShark: v3 Advertisement, VRID 1, priority 150, count 1,
/// Adver Int 100 cs, checksum 0xd405 [correct], 192.0.2.1; IPv4 192.0.2.2 →
/// 224.0.0.18, TTL 255, DSCP CS6, header checksum 0x1899 [correct]; 14 bytes
/// of Ethernet padding.
const V3_V4_PSEUDO: [u8; 60] = hex!(
    "01005e000012 00005e000101 0800"
    "45c0 0020 0000 0000 ff 70 1899 c0000202 e0000012"
    "31 01 96 01 0064 d405 c0000201"
    "0000000000000000000000000000"
);

/// The same advertisement with the RFC 9568 checksum (message only):
/// checksum 0x7697, TShark [correct] with `v3_checksum_as_in_v2:TRUE`.
const V3_V4_RFC9568: [u8; 60] = hex!(
    "01005e000012 00005e000101 0800"
    "45c0 0020 0000 0000 ff 70 1899 c0000202 e0000012"
    "31 01 96 01 0064 7697 c0000201"
    "0000000000000000000000000000"
);

/// VRRPv2 (RFC 3768): VRID 7, priority 100, count 2, auth type 0, Adver Int
/// 1 s, checksum 0xf6e8 [correct], 192.0.2.1 and 192.0.2.10, 8 zero bytes of
/// authentication data; from 192.0.2.3.
const V2_V4: [u8; 60] = hex!(
    "01005e000012 00005e000107 0800"
    "45c0 002c 0000 0000 ff 70 188c c0000203 e0000012"
    "21 07 64 02 00 01 f6e8 c0000201 c000020a 0000000000000000"
    "0000"
);

/// VRRPv3 over IPv6: fe80::2 → ff02::12, hop limit 255, traffic class 0xc0,
/// VRID 1, priority 200, count 2, Adver Int 10 cs, checksum 0xdc84 [correct]
/// (RFC 8200 §8.1 pseudo-header), fe80::1 and 2001:db8:1::1.
const V3_V6: [u8; 94] = hex!(
    "333300000012 00005e000201 86dd"
    "6c000000 0028 70 ff fe800000000000000000000000000002 ff020000000000000000000000000012"
    "31 01 c8 02 000a dc84 fe800000000000000000000000000001 20010db8000100000000000000000001"
);

/// Gratuitous ARP for 192.0.2.1 from 00:00:5e:00:01:01 (TShark: "ARP
/// Announcement for 192.0.2.1").
const GARP: [u8; 60] = hex!(
    "ffffffffffff 00005e000101 0806"
    "0001 0800 06 04 0001 00005e000101 c0000201 000000000000 c0000201"
    "000000000000000000000000000000000000"
);

/// ARP request "Who has 192.0.2.1? Tell 192.0.2.100".
const ARP_REQUEST: [u8; 60] = hex!(
    "ffffffffffff 020000000064 0806"
    "0001 0800 06 04 0001 020000000064 c0000264 000000000000 c0000201"
    "000000000000000000000000000000000000"
);

/// ARP reply "192.0.2.1 is at 00:00:5e:00:01:01" to the request above.
const ARP_REPLY: [u8; 60] = hex!(
    "020000000064 00005e000101 0806"
    "0001 0800 06 04 0002 00005e000101 c0000201 020000000064 c0000264"
    "000000000000000000000000000000000000"
);

/// ICMP Echo Request 192.0.2.100 → 192.0.2.1, id 0x1c2d, seq 1, 27 bytes of
/// data; IP header checksum 0xf770, ICMP checksum 0x3dbb, both [correct].
const ECHO_REQUEST: [u8; 69] = hex!(
    "00005e000101 020000000064 0800"
    "4500 0037 beef 4000 40 01 f770 c0000264 c0000201"
    "08 00 3dbb 1c2d 0001 78767272702d70696e672d30313233343536373839616263646566"
);

/// Its Echo Reply as built in place: ICMP checksum 0x45bb [correct].
const ECHO_REPLY: [u8; 69] = hex!(
    "020000000064 00005e000101 0800"
    "4500 0037 beef 4000 40 01 f770 c0000201 c0000264"
    "00 00 45bb 1c2d 0001 78767272702d70696e672d30313233343536373839616263646566"
);

const VIP: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 1);
const CLIENT_MAC: EthernetAddress = EthernetAddress([0x02, 0, 0, 0, 0, 0x64]);

fn ip_of(frame: &[u8]) -> Ipv4Packet<&[u8]> {
    let eth = EthernetFrame::new_checked(frame).unwrap();
    assert_eq!(eth.ethertype(), EtherType::IPV4);
    Ipv4Packet::new_unchecked(&frame[14..])
}

fn v3_repr(addrs: &[Ipv4Addr]) -> VrrpRepr<'_> {
    VrrpRepr {
        version: Version::V3,
        vrid: 1,
        priority: 150,
        max_advert_int: 100,
        addresses: AddrList::V4(addrs),
    }
}

#[test]
fn golden_v3_ipv4_pseudo_header() {
    let addrs = [VIP];
    let (repr, kind) = parse_ipv4_advert(&ip_of(&V3_V4_PSEUDO), true).unwrap();
    assert_eq!(repr, v3_repr(&addrs));
    assert_eq!(kind, ChecksumKind::PseudoHeader);
    let mut buf = [0xaa; 128];
    let n = frames::advert_v4(
        &mut buf,
        EthernetAddress::vrrp_v4(1),
        Ipv4Addr::new(192, 0, 2, 2),
        VRRP_V4_MCAST,
        VRRP_V4_MCAST_MAC,
        &repr,
        ChecksumKind::PseudoHeader,
    )
    .unwrap();
    assert_bytes_eq(&buf[..n], &V3_V4_PSEUDO);
}

#[test]
fn golden_v3_ipv4_rfc9568() {
    let addrs = [VIP];
    let (repr, kind) = parse_ipv4_advert(&ip_of(&V3_V4_RFC9568), true).unwrap();
    assert_eq!(repr, v3_repr(&addrs));
    assert_eq!(kind, ChecksumKind::Rfc9568);
    let mut buf = [0xaa; 128];
    let n = frames::advert_v4(
        &mut buf,
        EthernetAddress::vrrp_v4(1),
        Ipv4Addr::new(192, 0, 2, 2),
        VRRP_V4_MCAST,
        VRRP_V4_MCAST_MAC,
        &repr,
        ChecksumKind::Rfc9568,
    )
    .unwrap();
    assert_bytes_eq(&buf[..n], &V3_V4_RFC9568);
}

#[test]
fn golden_v2_ipv4() {
    let addrs = [VIP, Ipv4Addr::new(192, 0, 2, 10)];
    let want = VrrpRepr {
        version: Version::V2,
        vrid: 7,
        priority: 100,
        max_advert_int: 1,
        addresses: AddrList::V4(&addrs),
    };
    let (repr, kind) = parse_ipv4_advert(&ip_of(&V2_V4), true).unwrap();
    assert_eq!(repr, want);
    assert_eq!(kind, ChecksumKind::Rfc9568);
    let mut buf = [0xaa; 128];
    // The checksum kind asked for is irrelevant to v2.
    let n = frames::advert_v4(
        &mut buf,
        EthernetAddress::vrrp_v4(7),
        Ipv4Addr::new(192, 0, 2, 3),
        VRRP_V4_MCAST,
        VRRP_V4_MCAST_MAC,
        &want,
        ChecksumKind::PseudoHeader,
    )
    .unwrap();
    assert_bytes_eq(&buf[..n], &V2_V4);
}

#[test]
fn golden_v3_ipv6() {
    let addrs: [Ipv6Addr; 2] = ["fe80::1".parse().unwrap(), "2001:db8:1::1".parse().unwrap()];
    let want = VrrpRepr {
        version: Version::V3,
        vrid: 1,
        priority: 200,
        max_advert_int: 10,
        addresses: AddrList::V6(&addrs),
    };
    let eth = EthernetFrame::new_checked(&V3_V6[..]).unwrap();
    assert_eq!(eth.ethertype(), EtherType::IPV6);
    let ip = Ipv6Packet::new_checked(&V3_V6[14..]).unwrap();
    assert_eq!(parse_ipv6_advert(&ip, true).unwrap(), want);
    let mut buf = [0xaa; 128];
    let n = frames::advert_v6(
        &mut buf,
        EthernetAddress::vrrp_v6(1),
        "fe80::2".parse().unwrap(),
        VRRP_V6_MCAST,
        VRRP_V6_MCAST_MAC,
        &want,
    )
    .unwrap();
    assert_bytes_eq(&buf[..n], &V3_V6);
}

#[test]
fn golden_arp() {
    let mut buf = [0xaa; 64];
    let n = frames::garp_v4(&mut buf, EthernetAddress::vrrp_v4(1), VIP).unwrap();
    assert_bytes_eq(&buf[..n], &GARP);

    let n = frames::arp_request(&mut buf, CLIENT_MAC, Ipv4Addr::new(192, 0, 2, 100), VIP).unwrap();
    assert_bytes_eq(&buf[..n], &ARP_REQUEST);
    let request = ArpRepr::parse(&ArpPacket::new_checked(&ARP_REQUEST[14..]).unwrap()).unwrap();
    assert_eq!(
        request,
        ArpRepr {
            operation: ArpOperation::Request,
            source_hw: CLIENT_MAC,
            source_ip: Ipv4Addr::new(192, 0, 2, 100),
            target_hw: EthernetAddress::ZERO,
            target_ip: VIP,
        }
    );

    let n = frames::arp_reply(
        &mut buf,
        &request,
        CLIENT_MAC,
        EthernetAddress::vrrp_v4(1),
        VIP,
    )
    .unwrap();
    assert_bytes_eq(&buf[..n], &ARP_REPLY);
    let reply = ArpRepr::parse(&ArpPacket::new_checked(&ARP_REPLY[14..]).unwrap()).unwrap();
    assert_eq!(reply.operation, ArpOperation::Reply);
    assert_eq!(reply.source_hw, EthernetAddress::vrrp_v4(1));
    assert_eq!(reply.target_hw, CLIENT_MAC);
}

#[test]
fn golden_icmp_echo() {
    let ip = ip_of(&ECHO_REQUEST);
    let ip_repr = Ipv4Repr::parse(&ip).unwrap();
    assert_eq!(
        ip_repr,
        Ipv4Repr {
            src: Ipv4Addr::new(192, 0, 2, 100),
            dst: VIP,
            protocol: 1,
            ttl: 64,
            tos: 0,
            ident: 0xbeef,
            dont_frag: true,
            payload_len: 35,
        }
    );
    let icmp = Icmpv4Repr::parse(&Icmpv4Packet::new_checked(ip.payload()).unwrap()).unwrap();
    let data = b"xvrrp-ping-0123456789abcdef";
    assert_eq!(
        icmp,
        Icmpv4Repr::EchoRequest {
            ident: 0x1c2d,
            seq_no: 1,
            data
        }
    );

    // Construct the request from its representations.
    let mut built = [0u8; 69];
    let mut eth = EthernetFrame::new_unchecked(&mut built[..]);
    eth.set_dst_addr(EthernetAddress::vrrp_v4(1));
    eth.set_src_addr(CLIENT_MAC);
    eth.set_ethertype(EtherType::IPV4);
    ip_repr.emit(&mut Ipv4Packet::new_unchecked(&mut built[14..]));
    icmp.emit(&mut Icmpv4Packet::new_unchecked(&mut built[34..]));
    assert_bytes_eq(&built, &ECHO_REQUEST);

    // Frames from a veth carry no padding: the reply is the request's length.
    let mut frame = ECHO_REQUEST;
    assert_eq!(frames::icmp_echo_reply_in_place(&mut frame).unwrap(), 69);
    assert_bytes_eq(&frame, &ECHO_REPLY);
    let reply_ip = ip_of(&ECHO_REPLY);
    assert_eq!(
        Icmpv4Repr::parse(&Icmpv4Packet::new_checked(reply_ip.payload()).unwrap()).unwrap(),
        Icmpv4Repr::EchoReply {
            ident: 0x1c2d,
            seq_no: 1,
            data
        }
    );
}

#[test]
fn advert_addresses_iterate_in_order() {
    let (repr, _) = parse_ipv4_advert(&ip_of(&V2_V4), true).unwrap();
    let got: Vec<IpAddr> = repr.addresses.iter().collect();
    assert_eq!(
        got,
        vec![IpAddr::V4(VIP), IpAddr::V4(Ipv4Addr::new(192, 0, 2, 10))]
    );
}

#[test]
fn builders_refuse_short_buffers_without_writing() {
    let addrs = [VIP];
    let mut buf = [0xaa; 59];
    let e = frames::advert_v4(
        &mut buf,
        EthernetAddress::vrrp_v4(1),
        Ipv4Addr::new(192, 0, 2, 2),
        VRRP_V4_MCAST,
        VRRP_V4_MCAST_MAC,
        &v3_repr(&addrs),
        ChecksumKind::Rfc9568,
    );
    assert_eq!(
        e,
        Err(xvrrp_wire::WireError::Truncated { need: 60, got: 59 })
    );
    assert_eq!(
        frames::garp_v4(&mut buf, EthernetAddress::vrrp_v4(1), VIP),
        Err(xvrrp_wire::WireError::Truncated { need: 60, got: 59 })
    );
    assert!(buf.iter().all(|&b| b == 0xaa));
}
