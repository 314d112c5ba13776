//! One test per step of the advertisement validation ladders
//! (`parse_ipv4_advert`, `parse_ipv6_advert`), named after the robustness
//! checklist IDs. Each case starts from a valid frame built by the (golden-
//! checked) builders, applies one defect, and re-fixes every checksum the
//! defect does not target, so the step under test is the one that fires.

#![allow(clippy::unwrap_used)]

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use xvrrp_wire::frames::{self, VRRP_V4_MCAST_MAC, VRRP_V6_MCAST_MAC};
use xvrrp_wire::{
    parse_ipv4_advert, parse_ipv6_advert, AddrList, ChecksumKind, EthernetAddress, Ipv4Packet,
    Ipv6Packet, Version, VrrpPacket, VrrpRepr, WireError, VRRP_V4_MCAST, VRRP_V6_MCAST,
};

const ETH: usize = 14;
const SRC4: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 2);
const VIPS4: [Ipv4Addr; 1] = [Ipv4Addr::new(192, 0, 2, 1)];

fn repr4(version: Version) -> VrrpRepr<'static> {
    VrrpRepr {
        version,
        vrid: 1,
        priority: 150,
        max_advert_int: if version == Version::V2 { 1 } else { 100 },
        addresses: AddrList::V4(&VIPS4),
    }
}

fn frame4(version: Version, kind: ChecksumKind) -> Vec<u8> {
    let mut buf = vec![0u8; 128];
    let n = frames::advert_v4(
        &mut buf,
        EthernetAddress::vrrp_v4(1),
        SRC4,
        VRRP_V4_MCAST,
        VRRP_V4_MCAST_MAC,
        &repr4(version),
        kind,
    )
    .unwrap();
    buf.truncate(n);
    buf
}

fn v3() -> Vec<u8> {
    frame4(Version::V3, ChecksumKind::PseudoHeader)
}

fn v2() -> Vec<u8> {
    frame4(Version::V2, ChecksumKind::Rfc9568)
}

fn parse4(frame: &[u8]) -> Result<(VrrpRepr<'_>, ChecksumKind), WireError> {
    parse_ipv4_advert(&Ipv4Packet::new_unchecked(&frame[ETH..]), true)
}

fn err4(frame: &[u8]) -> WireError {
    parse4(frame).unwrap_err()
}

/// Offset of the VRRP message in an IPv4 frame.
fn vrrp_at(frame: &[u8]) -> usize {
    ETH + Ipv4Packet::new_unchecked(&frame[ETH..]).header_len()
}

/// Recomputes the VRRP checksum (over Total Length) as `kind`, then the IPv4
/// header checksum.
fn fix4(frame: &mut [u8], kind: ChecksumKind) {
    let ip = Ipv4Packet::new_unchecked(&frame[ETH..]);
    let (src, dst) = (IpAddr::V4(ip.src_addr()), IpAddr::V4(ip.dst_addr()));
    let end = ETH + usize::from(ip.total_len());
    let start = vrrp_at(frame);
    VrrpPacket::new_unchecked(&mut frame[start..end]).fill_checksum(kind, src, dst);
    Ipv4Packet::new_unchecked(&mut frame[ETH..]).fill_checksum();
}

/// Fixes only the IPv4 header checksum.
fn fix_ip(frame: &mut [u8]) {
    Ipv4Packet::new_unchecked(&mut frame[ETH..]).fill_checksum();
}

fn set_total_len(frame: &mut [u8], len: u16) {
    Ipv4Packet::new_unchecked(&mut frame[ETH..]).set_total_len(len);
}

/// Inserts `opts` as IPv4 options (a multiple of 4 bytes), growing IHL and
/// Total Length; the VRRP checksum is unaffected (same pseudo-header).
fn with_options(frame: &[u8], opts: &[u8]) -> Vec<u8> {
    let mut f = frame[..ETH + 20].to_vec();
    f.extend_from_slice(opts);
    let total = usize::from(Ipv4Packet::new_unchecked(&frame[ETH..]).total_len());
    f.extend_from_slice(&frame[ETH + 20..ETH + total]);
    let mut ip = Ipv4Packet::new_unchecked(&mut f[ETH..]);
    ip.set_version_and_header_len(4, 20 + opts.len());
    ip.set_total_len(u16::try_from(total + opts.len()).unwrap());
    ip.fill_checksum();
    f
}

// ---- IPv4 header steps ------------------------------------------------------

#[test]
fn b13_ihl_4_rejected() {
    let mut f = v3();
    f[ETH] = 0x44;
    assert_eq!(err4(&f), WireError::BadIpHeader);
}

#[test]
fn b13_ihl_6_options_decoded() {
    // Router Alert (RFC 2113), a real 4-byte option.
    let f = with_options(&v3(), &[0x94, 0x04, 0x00, 0x00]);
    assert_eq!(Ipv4Packet::new_checked(&f[ETH..]).unwrap().header_len(), 24);
    let (r, kind) = parse4(&f).unwrap();
    assert_eq!(r, repr4(Version::V3));
    assert_eq!(kind, ChecksumKind::PseudoHeader);
}

#[test]
fn b13_ihl_15_options_decoded() {
    let mut opts = [0x01u8; 40];
    opts[39] = 0x00;
    let f = with_options(&v2(), &opts);
    let (r, _) = parse4(&f).unwrap();
    assert_eq!(r, repr4(Version::V2));
}

#[test]
fn b13_header_longer_than_datagram_rejected() {
    let mut f = v3();
    f[ETH] = 0x4f; // 60-byte header, Total Length 32.
    fix_ip(&mut f);
    assert_eq!(err4(&f), WireError::BadIpHeader);
}

#[test]
fn b12_total_len_larger_than_frame_rejected() {
    let mut f = v3();
    set_total_len(&mut f, 47); // frame holds 46 bytes of IP (with padding)
    fix_ip(&mut f);
    assert_eq!(err4(&f), WireError::BadIpHeader);
}

#[test]
fn b12_total_len_smaller_than_header_rejected() {
    let mut f = v3();
    set_total_len(&mut f, 19);
    fix_ip(&mut f);
    assert_eq!(err4(&f), WireError::BadIpHeader);
}

#[test]
fn b12_total_len_short_of_payload_is_a_length_error() {
    let mut f = v3();
    set_total_len(&mut f, 31);
    fix_ip(&mut f);
    assert_eq!(err4(&f), WireError::BadLength);
}

#[test]
fn b12_ip_shorter_than_20_bytes_truncated() {
    let f = v3();
    assert_eq!(
        parse_ipv4_advert(&Ipv4Packet::new_unchecked(&f[ETH..ETH + 19]), true),
        Err(WireError::Truncated { need: 20, got: 19 })
    );
}

#[test]
fn ip_version_6_in_ipv4_header_rejected() {
    let mut f = v3();
    f[ETH] = 0x65;
    fix_ip(&mut f);
    assert_eq!(err4(&f), WireError::BadIpHeader);
}

#[test]
fn ip_header_checksum_rejected() {
    let mut f = v3();
    f[ETH + 10] ^= 0x01;
    assert_eq!(err4(&f), WireError::BadIpChecksum);
}

#[test]
fn b11_ethernet_padding_accepted() {
    // 60-byte frame, 32-byte datagram; non-zero padding must not matter.
    let mut f = v3();
    assert_eq!(f.len(), 60);
    assert_eq!(Ipv4Packet::new_unchecked(&f[ETH..]).total_len(), 32);
    for b in &mut f[ETH + 32..] {
        *b = 0x5a;
    }
    assert_eq!(parse4(&f).unwrap().0, repr4(Version::V3));
}

#[test]
fn b14_more_fragments_rejected() {
    let mut f = v3();
    Ipv4Packet::new_unchecked(&mut f[ETH..]).set_flags_and_frag_offset(false, true, 0);
    fix_ip(&mut f);
    assert_eq!(err4(&f), WireError::Fragment);
}

#[test]
fn b14_fragment_offset_rejected() {
    let mut f = v3();
    Ipv4Packet::new_unchecked(&mut f[ETH..]).set_flags_and_frag_offset(false, false, 1);
    fix_ip(&mut f);
    assert_eq!(err4(&f), WireError::Fragment);
}

#[test]
fn df_set_is_accepted() {
    let mut f = v3();
    Ipv4Packet::new_unchecked(&mut f[ETH..]).set_flags_and_frag_offset(true, false, 0);
    fix_ip(&mut f);
    assert!(parse4(&f).is_ok());
}

#[test]
fn not_vrrp_protocol_rejected() {
    let mut f = v3();
    Ipv4Packet::new_unchecked(&mut f[ETH..]).set_protocol(17);
    fix_ip(&mut f);
    assert_eq!(err4(&f), WireError::NotVrrp);
}

#[test]
fn b23_bad_sources_rejected() {
    for src in [
        Ipv4Addr::UNSPECIFIED,
        Ipv4Addr::BROADCAST,
        Ipv4Addr::new(224, 0, 0, 5),
        Ipv4Addr::new(127, 0, 0, 1),
    ] {
        let mut f = v3();
        Ipv4Packet::new_unchecked(&mut f[ETH..]).set_src_addr(src);
        fix4(&mut f, ChecksumKind::PseudoHeader);
        assert_eq!(err4(&f), WireError::BadSource, "{src}");
    }
}

#[test]
fn b24_wrong_destination_rejected() {
    // Wrong group, and a unicast advert in multicast mode.
    for dst in [Ipv4Addr::new(224, 0, 0, 5), Ipv4Addr::new(192, 0, 2, 3)] {
        let mut f = v3();
        Ipv4Packet::new_unchecked(&mut f[ETH..]).set_dst_addr(dst);
        fix4(&mut f, ChecksumKind::PseudoHeader);
        assert_eq!(err4(&f), WireError::BadDestination, "{dst}");
    }
}

#[test]
fn b24_unicast_mode_destination_rules() {
    // A multicast advert in unicast mode is rejected ...
    let f = v3();
    assert_eq!(
        parse_ipv4_advert(&Ipv4Packet::new_unchecked(&f[ETH..]), false),
        Err(WireError::BadDestination)
    );
    // ... and a unicast one accepted, both checksum forms included.
    for kind in [ChecksumKind::PseudoHeader, ChecksumKind::Rfc9568] {
        let mut f = v3();
        Ipv4Packet::new_unchecked(&mut f[ETH..]).set_dst_addr(Ipv4Addr::new(192, 0, 2, 3));
        fix4(&mut f, kind);
        let (r, k) = parse_ipv4_advert(&Ipv4Packet::new_unchecked(&f[ETH..]), false).unwrap();
        assert_eq!((r, k), (repr4(Version::V3), kind));
    }
}

#[test]
fn b01_ttl_other_than_255_rejected() {
    for ttl in [254, 64, 1, 0] {
        let mut f = v3();
        Ipv4Packet::new_unchecked(&mut f[ETH..]).set_ttl(ttl);
        fix_ip(&mut f);
        assert_eq!(err4(&f), WireError::BadTtl(ttl));
    }
}

// ---- VRRP steps ---------------------------------------------------------------

#[test]
fn b09_vrrp_shorter_than_header_truncated() {
    for len in 0..8u16 {
        let mut f = v3();
        set_total_len(&mut f, 20 + len);
        fix_ip(&mut f);
        assert_eq!(
            err4(&f),
            WireError::Truncated {
                need: 8,
                got: usize::from(len)
            }
        );
    }
}

#[test]
fn b09_header_only_is_a_length_error() {
    let mut f = v3();
    set_total_len(&mut f, 28);
    fix4(&mut f, ChecksumKind::PseudoHeader);
    assert_eq!(err4(&f), WireError::BadLength);
}

#[test]
fn b03_bad_versions_rejected() {
    for v in [0u8, 1, 4, 15] {
        let mut f = v3();
        let at = vrrp_at(&f);
        f[at] = (v << 4) | 1;
        fix4(&mut f, ChecksumKind::PseudoHeader);
        assert_eq!(err4(&f), WireError::BadVersion(v));
    }
}

#[test]
fn b04_bad_types_rejected() {
    for t in [0u8, 2, 15] {
        let mut f = v3();
        let at = vrrp_at(&f);
        f[at] = 0x30 | t;
        fix4(&mut f, ChecksumKind::PseudoHeader);
        assert_eq!(err4(&f), WireError::BadType(t));
    }
}

#[test]
fn b15_count_zero_rejected() {
    for mut f in [v3(), v2()] {
        let at = vrrp_at(&f);
        f[at + 3] = 0;
        fix4(&mut f, ChecksumKind::Rfc9568);
        assert_eq!(err4(&f), WireError::BadAddrCount(0));
    }
}

#[test]
fn b09_count_n_with_n_minus_1_addresses_is_a_length_error() {
    for mut f in [v3(), v2()] {
        let at = vrrp_at(&f);
        f[at + 3] = 2;
        fix4(&mut f, ChecksumKind::Rfc9568);
        assert_eq!(err4(&f), WireError::BadLength);
    }
}

#[test]
fn b10_trailing_bytes_are_a_length_error_not_a_checksum_error() {
    // v3 followed by a v2-style 8-byte auth trailer, and +1 / +3 bytes; the
    // checksum is made valid over the longer message so only length can fail.
    for extra in [8u16, 1, 3] {
        let mut f = v3();
        set_total_len(&mut f, 32 + extra);
        fix4(&mut f, ChecksumKind::PseudoHeader);
        assert_eq!(err4(&f), WireError::BadLength, "+{extra}");
        // With the checksum left stale, still a length error.
        let mut f = v3();
        set_total_len(&mut f, 32 + extra);
        fix_ip(&mut f);
        assert_eq!(err4(&f), WireError::BadLength, "+{extra} stale");
    }
}

#[test]
fn b17_b19_interval_zero_rejected() {
    let mut f = v3();
    let at = vrrp_at(&f);
    f[at + 4..at + 6].copy_from_slice(&[0x00, 0x00]);
    fix4(&mut f, ChecksumKind::PseudoHeader);
    assert_eq!(err4(&f), WireError::BadInterval(0));
    // Reserved bits set, interval bits zero: still zero after masking.
    f[at + 4] = 0xf0;
    fix4(&mut f, ChecksumKind::PseudoHeader);
    assert_eq!(err4(&f), WireError::BadInterval(0));
    // v2 Adver Int 0.
    let mut f = v2();
    f[at + 5] = 0;
    fix4(&mut f, ChecksumKind::Rfc9568);
    assert_eq!(err4(&f), WireError::BadInterval(0));
}

#[test]
fn b19_reserved_bits_masked() {
    let mut f = v3();
    let at = vrrp_at(&f);
    f[at + 4] |= 0xf0; // 0xF064
    fix4(&mut f, ChecksumKind::PseudoHeader);
    assert_eq!(parse4(&f).unwrap().0.max_advert_int, 100);
}

#[test]
fn b21_v2_auth_type_nonzero_rejected() {
    for t in [1u8, 2, 3] {
        let mut f = v2();
        let at = vrrp_at(&f);
        f[at + 4] = t;
        fix4(&mut f, ChecksumKind::Rfc9568);
        assert_eq!(err4(&f), WireError::BadAuthType(t));
    }
}

#[test]
fn b06_checksum_bit_flip_rejected() {
    for (mut f, name) in [
        (v3(), "v3"),
        (frame4(Version::V3, ChecksumKind::Rfc9568), "v3-9568"),
        (v2(), "v2"),
    ] {
        let at = vrrp_at(&f);
        f[at + 7] ^= 0x10;
        assert_eq!(err4(&f), WireError::BadChecksum, "{name} checksum field");
        f[at + 7] ^= 0x10;
        f[at + 9] ^= 0x01; // a bit of the address
        assert_eq!(err4(&f), WireError::BadChecksum, "{name} address");
    }
}

#[test]
fn b06_checksum_0000_and_ffff_rejected() {
    for c in [0x0000u16, 0xffff] {
        for mut f in [v3(), v2()] {
            let at = vrrp_at(&f);
            f[at + 6..at + 8].copy_from_slice(&c.to_be_bytes());
            assert_eq!(err4(&f), WireError::BadChecksum, "{c:#06x}");
        }
    }
}

#[test]
fn b07_both_v3_ipv4_checksum_forms_accepted_and_flagged() {
    assert_eq!(parse4(&v3()).unwrap().1, ChecksumKind::PseudoHeader);
    let f = frame4(Version::V3, ChecksumKind::Rfc9568);
    assert_eq!(parse4(&f).unwrap().1, ChecksumKind::Rfc9568);
    // v2 with a pseudo-header checksum is wrong: v2 is message-only.
    let mut f = v2();
    fix4(&mut f, ChecksumKind::PseudoHeader);
    assert_eq!(err4(&f), WireError::BadChecksum);
}

#[test]
fn b27_earliest_defect_wins() {
    // TTL 254 and a broken checksum: TTL first.
    let mut f = v3();
    Ipv4Packet::new_unchecked(&mut f[ETH..]).set_ttl(254);
    fix_ip(&mut f);
    let at = vrrp_at(&f);
    f[at + 6] ^= 0xff;
    assert_eq!(err4(&f), WireError::BadTtl(254));

    // Version 4 and type 2: version first.
    let mut f = v3();
    f[at] = 0x42;
    fix4(&mut f, ChecksumKind::PseudoHeader);
    assert_eq!(err4(&f), WireError::BadVersion(4));

    // IHL 4 and TTL 1: IP header first.
    let mut f = v3();
    f[ETH] = 0x44;
    f[ETH + 8] = 1;
    assert_eq!(err4(&f), WireError::BadIpHeader);

    // Source 0.0.0.0 and wrong destination: source first.
    let mut f = v3();
    let mut ip = Ipv4Packet::new_unchecked(&mut f[ETH..]);
    ip.set_src_addr(Ipv4Addr::UNSPECIFIED);
    ip.set_dst_addr(Ipv4Addr::new(224, 0, 0, 5));
    fix_ip(&mut f);
    assert_eq!(err4(&f), WireError::BadSource);

    // Count 0, trailing bytes, interval 0 and auth type 1 (v2): count first.
    let mut f = v2();
    f[at + 3] = 0;
    f[at + 4] = 1;
    f[at + 5] = 0;
    set_total_len(&mut f, 45);
    fix4(&mut f, ChecksumKind::Rfc9568);
    assert_eq!(err4(&f), WireError::BadAddrCount(0));

    // Trailing bytes and interval 0: length first.
    let mut f = v3();
    f[at + 4..at + 6].copy_from_slice(&[0, 0]);
    set_total_len(&mut f, 33);
    fix4(&mut f, ChecksumKind::PseudoHeader);
    assert_eq!(err4(&f), WireError::BadLength);

    // Fragment and not VRRP: fragment first.
    let mut f = v3();
    let mut ip = Ipv4Packet::new_unchecked(&mut f[ETH..]);
    ip.set_flags_and_frag_offset(false, true, 0);
    ip.set_protocol(6);
    fix_ip(&mut f);
    assert_eq!(err4(&f), WireError::Fragment);
}

// ---- IPv6 ----------------------------------------------------------------------

fn src6() -> Ipv6Addr {
    "fe80::2".parse().unwrap()
}

const VIPS6: [Ipv6Addr; 2] = [
    Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, 1),
    Ipv6Addr::new(0x2001, 0xdb8, 1, 0, 0, 0, 0, 1),
];

fn repr6() -> VrrpRepr<'static> {
    VrrpRepr {
        version: Version::V3,
        vrid: 1,
        priority: 200,
        max_advert_int: 10,
        addresses: AddrList::V6(&VIPS6),
    }
}

fn v6() -> Vec<u8> {
    let mut buf = vec![0u8; 128];
    let n = frames::advert_v6(
        &mut buf,
        EthernetAddress::vrrp_v6(1),
        src6(),
        VRRP_V6_MCAST,
        VRRP_V6_MCAST_MAC,
        &repr6(),
    )
    .unwrap();
    buf.truncate(n);
    buf
}

const V6_VRRP: usize = ETH + 40;

fn err6(frame: &[u8]) -> WireError {
    parse_ipv6_advert(&Ipv6Packet::new_unchecked(&frame[ETH..]), true).unwrap_err()
}

/// Recomputes the VRRP checksum with the IPv6 pseudo-header.
fn fix6(frame: &mut [u8]) {
    let ip = Ipv6Packet::new_unchecked(&frame[ETH..]);
    let (src, dst) = (IpAddr::V6(ip.src_addr()), IpAddr::V6(ip.dst_addr()));
    let end = V6_VRRP + usize::from(ip.payload_len());
    VrrpPacket::new_unchecked(&mut frame[V6_VRRP..end]).fill_checksum(
        ChecksumKind::PseudoHeader,
        src,
        dst,
    );
}

#[test]
fn v6_valid_and_padding_accepted() {
    let mut f = v6();
    f.extend_from_slice(&[0x5a; 6]);
    assert_eq!(
        parse_ipv6_advert(&Ipv6Packet::new_unchecked(&f[ETH..]), true).unwrap(),
        repr6()
    );
}

#[test]
fn b01_v6_hop_limit_rejected() {
    for hl in [254, 64, 1] {
        let mut f = v6();
        Ipv6Packet::new_unchecked(&mut f[ETH..]).set_hop_limit(hl);
        assert_eq!(err6(&f), WireError::BadTtl(hl));
    }
}

#[test]
fn v6_header_errors() {
    let f = v6();
    assert_eq!(
        parse_ipv6_advert(&Ipv6Packet::new_unchecked(&f[ETH..ETH + 39]), true),
        Err(WireError::Truncated { need: 40, got: 39 })
    );
    assert_eq!(
        parse_ipv6_advert(&Ipv6Packet::new_unchecked(&f[..f.len() - 1][ETH..]), true),
        Err(WireError::BadIpHeader)
    );
    let mut f = v6();
    f[ETH] = 0x4c;
    assert_eq!(err6(&f), WireError::BadIpHeader);
}

#[test]
fn b14_v6_fragment_header_rejected() {
    let mut f = v6();
    Ipv6Packet::new_unchecked(&mut f[ETH..]).set_next_header(44);
    assert_eq!(err6(&f), WireError::Fragment);
    Ipv6Packet::new_unchecked(&mut f[ETH..]).set_next_header(17);
    assert_eq!(err6(&f), WireError::NotVrrp);
}

#[test]
fn b23_v6_bad_sources_rejected() {
    for src in [
        Ipv6Addr::UNSPECIFIED,
        Ipv6Addr::LOCALHOST,
        "ff02::1".parse().unwrap(),
    ] {
        let mut f = v6();
        Ipv6Packet::new_unchecked(&mut f[ETH..]).set_src_addr(src);
        fix6(&mut f);
        assert_eq!(err6(&f), WireError::BadSource, "{src}");
    }
}

#[test]
fn b24_v6_destination_rules() {
    let mut f = v6();
    Ipv6Packet::new_unchecked(&mut f[ETH..]).set_dst_addr("ff02::1".parse().unwrap());
    fix6(&mut f);
    assert_eq!(err6(&f), WireError::BadDestination);
    let f = v6();
    assert_eq!(
        parse_ipv6_advert(&Ipv6Packet::new_unchecked(&f[ETH..]), false),
        Err(WireError::BadDestination)
    );
    let mut f = v6();
    Ipv6Packet::new_unchecked(&mut f[ETH..]).set_dst_addr("fe80::3".parse().unwrap());
    fix6(&mut f);
    assert_eq!(
        parse_ipv6_advert(&Ipv6Packet::new_unchecked(&f[ETH..]), false).unwrap(),
        repr6()
    );
}

#[test]
fn b03_v2_over_ipv6_rejected() {
    let mut f = v6();
    f[V6_VRRP] = 0x21;
    fix6(&mut f);
    assert_eq!(err6(&f), WireError::BadVersion(2));
}

#[test]
fn b08_v6_checksum_without_or_with_a_misencoded_pseudo_header_rejected() {
    let f = v6();
    let len = f.len() - V6_VRRP;
    let msg = |f: &[u8]| {
        let mut m = f[V6_VRRP..].to_vec();
        m[6] = 0;
        m[7] = 0;
        m
    };
    let sum = xvrrp_wire::checksum::sum;
    let addrs = sum(&src6().octets()) + sum(&VRRP_V6_MCAST.octets());
    let len32 = u32::try_from(len).unwrap();
    let wrong = [
        // Message only (the v3/IPv4 RFC 9568 form) is not valid over IPv6.
        sum(&msg(&f)),
        // Length omitted.
        sum(&msg(&f)) + addrs + 112,
        // Length byte-swapped (little-endian 32-bit).
        sum(&msg(&f)) + addrs + sum(&len32.to_le_bytes()) + 112,
        // Next header in the high byte of its word.
        sum(&msg(&f)) + addrs + len32 + (112 << 8),
    ];
    for (i, s) in wrong.into_iter().enumerate() {
        let mut g = f.clone();
        let c = xvrrp_wire::checksum::finish(s);
        g[V6_VRRP + 6..V6_VRRP + 8].copy_from_slice(&c.to_be_bytes());
        assert_eq!(err6(&g), WireError::BadChecksum, "variant {i}");
    }
    // The correct encoding, computed by hand, is the one in the frame.
    let right = sum(&msg(&f)) + addrs + len32 + 112;
    assert_eq!(
        xvrrp_wire::checksum::finish(right).to_be_bytes(),
        [f[V6_VRRP + 6], f[V6_VRRP + 7]]
    );
}

#[test]
fn v6_length_and_count_errors() {
    let mut f = v6();
    f[V6_VRRP + 3] = 3;
    fix6(&mut f);
    assert_eq!(err6(&f), WireError::BadLength);
    let mut f = v6();
    f[V6_VRRP + 3] = 0;
    fix6(&mut f);
    assert_eq!(err6(&f), WireError::BadAddrCount(0));
}
