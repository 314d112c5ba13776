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

use std::net::{Ipv4Addr, Ipv6Addr};

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

#[cfg(test)]
mod tests {
    use super::*;

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
}
