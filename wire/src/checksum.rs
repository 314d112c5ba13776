//! The Internet checksum: RFC 1071 one's-complement sum, the IPv4 and IPv6
//! pseudo-headers, and RFC 1624 incremental update.
//!
//! RFC 1071 §1: the checksum is the 16-bit one's complement of the one's
//! complement sum of the 16-bit big-endian words covered. RFC 8200 §8.1
//! defines the IPv6 pseudo-header:
//!
//! ```text
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |                   Source Address (128 bits)                   |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |                Destination Address (128 bits)                 |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |                   Upper-Layer Packet Length                   |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |                      zero                     |  Next Header  |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! ```
//!
//! Partial sums are kept folded to at most `0xffff` in a `u32`, so callers
//! can add a handful of them without overflow before [`fold`]ing again.
//! Nothing here panics.
//!
//! # Partial transport checksums
//!
//! A sender with transmit checksum offload (Linux `CHECKSUM_PARTIAL`, the
//! default on veth and virtio) leaves in the UDP/TCP checksum field only the
//! folded sum of the pseudo-header, not complemented, and expects the device
//! to finish it. A kernel router carries that state along with the frame; a
//! copy taken by AF_XDP does not, so the fast path recognises such a field —
//! it equals the pseudo-header sum of the packet, which costs a few
//! additions to compute — and completes it ([`complete_partial`]).
//!
//! The recognition is heuristic: a complete checksum equals the
//! pseudo-header sum about once in 65536 packets, and such a packet is
//! taken for a partial one (and counted as completed: its bytes are those
//! of a partial packet whose complete checksum has that value). Completing
//! it does no harm: the checksum is recomputed over the segment with the
//! field zeroed, which yields the value already there (a valid checksum
//! stays valid; only a TCP field of `0xffff`, the other one's-complement
//! zero, comes back as `0x0000`). The one loss is for a *corrupted*
//! segment whose field happens to equal the pseudo-header sum: it leaves
//! with a valid checksum, so the receiver no longer sees the corruption —
//! about one corrupted segment in 65536, the order of the odds that a
//! corruption leaves the checksum valid anyway.

use core::ops::Range;
use std::net::{Ipv4Addr, Ipv6Addr};

use crate::bytes;

/// IP protocol number of TCP.
pub const IPPROTO_TCP: u8 = 6;
/// IP protocol number of UDP.
pub const IPPROTO_UDP: u8 = 17;

mod field {
    use core::ops::Range;
    /// UDP (RFC 768): Length, header included.
    pub(crate) const UDP_LENGTH: Range<usize> = 4..6;
    /// UDP: Checksum.
    pub(crate) const UDP_CHECKSUM: Range<usize> = 6..8;
    /// TCP (RFC 9293 §3.1): Checksum.
    pub(crate) const TCP_CHECKSUM: Range<usize> = 16..18;
}

/// Length of a UDP header.
const UDP_HEADER_LEN: usize = 8;
/// Length of a TCP header without options.
const TCP_HEADER_LEN: usize = 20;

/// One's-complement sum of `data` as big-endian 16-bit words, folded to at
/// most `0xffff`. An odd trailing byte is padded with zero (RFC 1071), so only
/// the last piece of a multi-piece sum may have odd length.
pub fn sum(data: &[u8]) -> u32 {
    let mut acc: u64 = 0;
    let mut words = data.chunks_exact(2);
    for w in &mut words {
        if let [hi, lo] = *w {
            acc += u64::from(u16::from_be_bytes([hi, lo]));
        }
    }
    if let [last] = *words.remainder() {
        acc += u64::from(u16::from_be_bytes([last, 0]));
    }
    u32::from(fold64(acc))
}

/// Folds the carries of a partial sum into 16 bits (not complemented).
pub fn fold(sum: u32) -> u16 {
    fold64(u64::from(sum))
}

fn fold64(mut acc: u64) -> u16 {
    while acc > 0xffff {
        acc = (acc & 0xffff) + (acc >> 16);
    }
    let [.., hi, lo] = acc.to_be_bytes();
    u16::from_be_bytes([hi, lo])
}

/// The checksum field value for a partial sum: `!fold(sum)`.
pub fn finish(sum: u32) -> u16 {
    !fold(sum)
}

/// Whether a sum taken over data that includes its checksum field verifies
/// (folds to `0xffff`, one's-complement negative zero).
pub fn verifies(sum: u32) -> bool {
    fold(sum) == 0xffff
}

/// Partial sum of the IPv4 pseudo-header (RFC 768 / RFC 793 layout: source,
/// destination, zero, protocol, upper-layer length).
pub fn pseudo_header_v4(src: Ipv4Addr, dst: Ipv4Addr, protocol: u8, len: u16) -> u32 {
    sum(&src.octets()) + sum(&dst.octets()) + u32::from(protocol) + u32::from(len)
}

/// Partial sum of the IPv6 pseudo-header (RFC 8200 §8.1): the upper-layer
/// length is a 32-bit field.
pub fn pseudo_header_v6(src: Ipv6Addr, dst: Ipv6Addr, next_header: u8, len: u32) -> u32 {
    let [a, b, c, d] = len.to_be_bytes();
    sum(&src.octets())
        + sum(&dst.octets())
        + u32::from(u16::from_be_bytes([a, b]))
        + u32::from(u16::from_be_bytes([c, d]))
        + u32::from(next_header)
}

/// RFC 1624 eqn. 3: the new checksum after one 16-bit word covered by
/// `old_cksum` changed from `old_word` to `new_word`:
/// `HC' = ~(~HC + ~m + m')`.
pub fn incremental_update(old_cksum: u16, old_word: u16, new_word: u16) -> u16 {
    !fold(u32::from(!old_cksum) + u32::from(!old_word) + u32::from(new_word))
}

/// Completes, in place, a UDP or TCP checksum that the sender left partial
/// (see the module documentation); returns whether it did, that is whether
/// the field was taken for a partial one and the checksum computed.
///
/// `protocol` is the IP protocol / next header: anything but UDP and TCP is
/// left alone. `segment` is the transport header and payload as bounded by
/// the IP length (Ethernet padding excluded). `pseudo(len)` is the partial
/// sum of the packet's pseudo-header for an upper-layer length `len`
/// ([`pseudo_header_v4`] / [`pseudo_header_v6`]); UDP's is its Length field,
/// TCP's the whole segment.
///
/// Cost: the pseudo-header sum and one comparison for a complete checksum;
/// the whole segment is summed only when the field is recognised as
/// partial. A UDP checksum of 0 (none, over IPv4) is never partial, and a
/// completed UDP checksum of 0 is sent as `0xffff` (RFC 768, RFC 8200 §8.1).
/// Completing twice changes nothing the second time. A partial checksum
/// whose complete value happens to equal the pseudo-header sum is
/// completed (and counted by the caller) without a byte changing, as is a
/// complete one of that value: the bytes alone cannot tell them apart.
pub fn complete_partial(protocol: u8, segment: &mut [u8], pseudo: impl FnOnce(u16) -> u32) -> bool {
    let (checksum, len): (Range<usize>, usize) = match protocol {
        IPPROTO_UDP if segment.len() >= UDP_HEADER_LEN => (
            field::UDP_CHECKSUM,
            usize::from(bytes::read_u16(segment, field::UDP_LENGTH)),
        ),
        IPPROTO_TCP if segment.len() >= TCP_HEADER_LEN => (field::TCP_CHECKSUM, segment.len()),
        _ => return false,
    };
    if len < checksum.end {
        return false;
    }
    let (Ok(len16), Some(segment)) = (u16::try_from(len), segment.get_mut(..len)) else {
        return false;
    };
    let pseudo = pseudo(len16);
    let old = bytes::read_u16(segment, checksum.clone());
    if old != fold(pseudo) {
        return false;
    }
    bytes::write_u16(segment, checksum.clone(), 0);
    let mut new = finish(pseudo + sum(segment));
    if protocol == IPPROTO_UDP && new == 0 {
        new = 0xffff;
    }
    bytes::write_u16(segment, checksum, new);
    true
}

/// [`complete_partial`] for a segment carried over IPv4 from `src` to `dst`.
pub fn complete_partial_v4(src: Ipv4Addr, dst: Ipv4Addr, protocol: u8, segment: &mut [u8]) -> bool {
    complete_partial(protocol, segment, |len| {
        pseudo_header_v4(src, dst, protocol, len)
    })
}

/// [`complete_partial`] for a segment carried over IPv6 from `src` to `dst`
/// (`next_header` the fixed header's: extension headers are not walked).
pub fn complete_partial_v6(
    src: Ipv6Addr,
    dst: Ipv6Addr,
    next_header: u8,
    segment: &mut [u8],
) -> bool {
    complete_partial(next_header, segment, |len| {
        pseudo_header_v6(src, dst, next_header, u32::from(len))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn rfc1071_example() {
        // RFC 1071 §3 worked example: sum of 00 01 f2 03 f4 f5 f6 f7 is ddf2.
        let data = [0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7];
        assert_eq!(fold(sum(&data)), 0xddf2);
        assert_eq!(finish(sum(&data)), !0xddf2);
    }

    #[test]
    fn odd_length_pads_with_zero() {
        assert_eq!(fold(sum(&[0x12, 0x34, 0x56])), 0x1234 + 0x5600);
    }

    #[test]
    fn incremental_matches_full_recompute() {
        // A real IPv4 header; decrement the TTL word (ttl=64, proto=1).
        let mut hdr = [
            0x45, 0x00, 0x00, 0x54, 0x12, 0x34, 0x40, 0x00, 0x40, 0x01, 0x00, 0x00, 0xc0, 0x00,
            0x02, 0x64, 0xcb, 0x00, 0x71, 0x64,
        ];
        let c = finish(sum(&hdr));
        hdr[10..12].copy_from_slice(&c.to_be_bytes());
        let inc = incremental_update(c, 0x4001, 0x3f01);
        hdr[8] = 0x3f;
        hdr[10..12].copy_from_slice(&[0, 0]);
        assert_eq!(inc, finish(sum(&hdr)));
    }

    #[test]
    fn pseudo_header_v6_uses_32_bit_length() {
        let a: Ipv6Addr = "fe80::1".parse().unwrap();
        let b: Ipv6Addr = "ff02::12".parse().unwrap();
        // A length above 0xffff contributes its upper half as its own word.
        let big = pseudo_header_v6(a, b, 112, 0x1_0002);
        let small = pseudo_header_v6(a, b, 112, 0x0002);
        assert_eq!(fold(big), fold(small + 1));
    }

    /// A UDP datagram captured at the server of the lab with the client's
    /// tx checksum offload on (as forwarded before the fix): the field
    /// holds the pseudo-header sum 0xff03, the complete checksum is 0xd5a8.
    const CAPTURED_UDP: [u8; 41] = [
        0xeb, 0xef, 0x23, 0x28, 0x00, 0x29, 0xff, 0x03, 0x78, 0x76, 0x66, 0x6c, 0x00, 0x00, 0x00,
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x93, 0x3f, 0x75, 0xfd, 0x26, 0x00, 0x00,
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    ];
    const CLIENT: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 100);
    const SERVER: Ipv4Addr = Ipv4Addr::new(203, 0, 113, 100);

    fn verifies_v4(src: Ipv4Addr, dst: Ipv4Addr, protocol: u8, seg: &[u8]) -> bool {
        let len = u16::try_from(seg.len()).unwrap();
        verifies(pseudo_header_v4(src, dst, protocol, len) + sum(seg))
    }

    #[test]
    fn captured_partial_udp_is_completed_once() {
        let mut seg = CAPTURED_UDP;
        assert!(!verifies_v4(CLIENT, SERVER, IPPROTO_UDP, &seg));
        assert!(complete_partial_v4(CLIENT, SERVER, IPPROTO_UDP, &mut seg));
        assert_eq!(seg[6..8], [0xd5, 0xa8]);
        assert!(verifies_v4(CLIENT, SERVER, IPPROTO_UDP, &seg));
        // 0xd5a8 is not the pseudo-header sum: not taken for partial again.
        assert!(!complete_partial_v4(CLIENT, SERVER, IPPROTO_UDP, &mut seg));
        assert_eq!(seg[6..8], [0xd5, 0xa8]);
    }

    #[test]
    fn other_protocols_short_segments_and_udp_without_checksum_are_left_alone() {
        let mut seg = CAPTURED_UDP;
        for protocol in [1, 58, 112] {
            assert!(!complete_partial_v4(CLIENT, SERVER, protocol, &mut seg));
        }
        assert_eq!(seg, CAPTURED_UDP);
        // A UDP Length beyond the segment, or below the header.
        for bad_len in [42u16, 7] {
            seg[4..6].copy_from_slice(&bad_len.to_be_bytes());
            assert!(!complete_partial_v4(CLIENT, SERVER, IPPROTO_UDP, &mut seg));
        }
        // Too short for a TCP header.
        let mut short = [0u8; 19];
        assert!(!complete_partial_v4(
            CLIENT,
            SERVER,
            IPPROTO_TCP,
            &mut short
        ));
        // No UDP checksum (0 over IPv4) is never taken for a partial one.
        let mut none = CAPTURED_UDP;
        none[6..8].copy_from_slice(&[0, 0]);
        assert!(!complete_partial_v4(CLIENT, SERVER, IPPROTO_UDP, &mut none));
    }

    /// A partial field: the folded pseudo-header sum, as Linux leaves it.
    fn make_partial(seg: &mut [u8], field: Range<usize>, pseudo: u32) {
        seg[field].copy_from_slice(&fold(pseudo).to_be_bytes());
    }

    /// A complete field.
    fn make_complete(seg: &mut [u8], field: Range<usize>, pseudo: u32, udp: bool) {
        seg[field.clone()].copy_from_slice(&[0, 0]);
        let mut c = finish(pseudo + sum(seg));
        if udp && c == 0 {
            c = 0xffff;
        }
        seg[field].copy_from_slice(&c.to_be_bytes());
    }

    #[test]
    fn partial_tcp_over_ipv6_is_completed() {
        let (src, dst): (Ipv6Addr, Ipv6Addr) = (
            "2001:db8:1::100".parse().unwrap(),
            "2001:db8:2::100".parse().unwrap(),
        );
        let mut seg = vec![0u8; 20 + 1001];
        seg[12] = 5 << 4;
        for (i, b) in seg.iter_mut().enumerate().skip(20) {
            *b = u8::try_from(i % 253).unwrap();
        }
        let pseudo = pseudo_header_v6(src, dst, IPPROTO_TCP, u32::try_from(seg.len()).unwrap());
        make_partial(&mut seg, field::TCP_CHECKSUM, pseudo);
        assert!(complete_partial_v6(src, dst, IPPROTO_TCP, &mut seg));
        assert!(verifies(pseudo + sum(&seg)));
    }

    #[test]
    fn a_complete_checksum_equal_to_the_pseudo_header_sum_is_kept() {
        // Choose one payload word so that the complete UDP checksum equals
        // the pseudo-header sum: the one case the recognition cannot tell.
        let mut seg = CAPTURED_UDP;
        let pseudo = pseudo_header_v4(CLIENT, SERVER, IPPROTO_UDP, 41);
        let target = fold(pseudo);
        seg[6..8].copy_from_slice(&[0, 0]);
        seg[8..10].copy_from_slice(&[0, 0]);
        // finish(pseudo + rest + w) == target  ⇔  fold(pseudo + rest + w) == !target.
        let w = fold(u32::from(!target) + u32::from(!fold(pseudo + sum(&seg))));
        seg[8..10].copy_from_slice(&w.to_be_bytes());
        seg[6..8].copy_from_slice(&target.to_be_bytes());
        assert!(verifies_v4(CLIENT, SERVER, IPPROTO_UDP, &seg));
        let before = seg;
        assert!(complete_partial_v4(CLIENT, SERVER, IPPROTO_UDP, &mut seg));
        assert_eq!(seg, before);
    }

    proptest! {
        /// A complete checksum is taken for a partial one exactly when it
        /// equals the pseudo-header sum, and then completing keeps it
        /// valid; a partial one is always completed, and completing again
        /// changes nothing.
        #[test]
        fn recognition_is_exact_and_completion_idempotent(
            src in any::<[u8; 4]>(),
            dst in any::<[u8; 4]>(),
            tcp in any::<bool>(),
            payload in proptest::collection::vec(any::<u8>(), 0..300),
        ) {
            let (src, dst) = (Ipv4Addr::from(src), Ipv4Addr::from(dst));
            let (protocol, field, header) = if tcp {
                (IPPROTO_TCP, field::TCP_CHECKSUM, TCP_HEADER_LEN)
            } else {
                (IPPROTO_UDP, field::UDP_CHECKSUM, UDP_HEADER_LEN)
            };
            let mut seg = vec![0u8; header];
            seg.extend_from_slice(&payload);
            let len = u16::try_from(seg.len()).unwrap();
            if !tcp {
                seg[field::UDP_LENGTH].copy_from_slice(&len.to_be_bytes());
            }
            let pseudo = pseudo_header_v4(src, dst, protocol, len);

            let mut complete = seg.clone();
            make_complete(&mut complete, field.clone(), pseudo, !tcp);
            let field_value = u16::from_be_bytes([complete[field.start], complete[field.start + 1]]);
            let before = complete.clone();
            let taken = complete_partial_v4(src, dst, protocol, &mut complete);
            prop_assert_eq!(taken, field_value == fold(pseudo));
            prop_assert!(verifies(pseudo + sum(&complete)));
            if !taken {
                prop_assert_eq!(&complete, &before);
            }

            let mut partial = seg;
            make_partial(&mut partial, field, pseudo);
            prop_assert!(complete_partial_v4(src, dst, protocol, &mut partial));
            prop_assert!(verifies(pseudo + sum(&partial)));
            prop_assert_eq!(&partial, &before);
            complete_partial_v4(src, dst, protocol, &mut partial);
            prop_assert_eq!(&partial, &before);
        }
    }
}
