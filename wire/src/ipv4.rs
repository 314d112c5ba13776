//! IPv4 (RFC 791 §3.1), with RFC 1624 incremental checksum update for TTL
//! decrement when forwarding (RFC 1812 §5.3.1).
//!
//! ```text
//!  0                   1                   2                   3
//!  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |Version|  IHL  |Type of Service|          Total Length         |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |         Identification        |Flags|      Fragment Offset    |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |  Time to Live |    Protocol   |         Header Checksum       |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |                       Source Address                          |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |                    Destination Address                        |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |                    Options                    |    Padding    |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! ```
//!
//! The payload is bounded by Total Length, never by the buffer: Ethernet pads
//! short frames to 60 bytes and the padding is not part of the datagram.
//! Panic contract: see the crate documentation; accessors never panic.

use core::ops::Range;
use std::net::Ipv4Addr;

use crate::bytes;
use crate::checksum;
use crate::error::WireError;

mod field {
    use core::ops::Range;
    pub(crate) const VER_IHL: usize = 0;
    pub(crate) const DSCP_ECN: usize = 1;
    pub(crate) const LENGTH: Range<usize> = 2..4;
    pub(crate) const IDENT: Range<usize> = 4..6;
    pub(crate) const FLG_OFF: Range<usize> = 6..8;
    pub(crate) const TTL: usize = 8;
    pub(crate) const PROTOCOL: usize = 9;
    /// TTL and protocol as the one 16-bit word the checksum covers.
    pub(crate) const TTL_PROTO: Range<usize> = 8..10;
    pub(crate) const CHECKSUM: Range<usize> = 10..12;
    pub(crate) const SRC: Range<usize> = 12..16;
    pub(crate) const DST: Range<usize> = 16..20;
}

/// Length of an IPv4 header without options.
pub const HEADER_LEN: usize = 20;

/// IP protocol number of ICMP.
pub const IPPROTO_ICMP: u8 = 1;

const FLAG_DF: u16 = 0x4000;
const FLAG_MF: u16 = 0x2000;
const FRAG_OFFSET_MASK: u16 = 0x1fff;

/// A view over an IPv4 datagram.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ipv4Packet<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Ipv4Packet<T> {
    /// Wraps a buffer without checking it.
    pub const fn new_unchecked(buffer: T) -> Ipv4Packet<T> {
        Ipv4Packet { buffer }
    }

    /// Wraps a buffer after [`check_len`](Self::check_len).
    ///
    /// # Errors
    /// As [`check_len`](Self::check_len).
    pub fn new_checked(buffer: T) -> Result<Ipv4Packet<T>, WireError> {
        let p = Self::new_unchecked(buffer);
        p.check_len()?;
        Ok(p)
    }

    /// Checks the lengths, in order: buffer ≥ 20 bytes
    /// ([`WireError::Truncated`]); IHL ≥ 5, Total Length ≥ header length and
    /// Total Length ≤ buffer ([`WireError::BadIpHeader`]). Bytes after Total
    /// Length (Ethernet padding) are allowed. The version is not checked here.
    ///
    /// # Errors
    /// As listed above.
    pub fn check_len(&self) -> Result<(), WireError> {
        let got = self.buffer.as_ref().len();
        if got < HEADER_LEN {
            return Err(WireError::Truncated {
                need: HEADER_LEN,
                got,
            });
        }
        let header_len = self.header_len();
        let total_len = usize::from(self.total_len());
        if header_len < HEADER_LEN || total_len < header_len || total_len > got {
            return Err(WireError::BadIpHeader);
        }
        Ok(())
    }

    /// The wrapped buffer.
    pub fn into_inner(self) -> T {
        self.buffer
    }

    /// Version field (4 for IPv4).
    pub fn version(&self) -> u8 {
        bytes::read_u8(self.buffer.as_ref(), field::VER_IHL) >> 4
    }

    /// IHL field: header length in 32-bit words.
    pub fn ihl(&self) -> u8 {
        bytes::read_u8(self.buffer.as_ref(), field::VER_IHL) & 0x0f
    }

    /// Header length in bytes (IHL × 4), options included.
    pub fn header_len(&self) -> usize {
        usize::from(self.ihl()) * 4
    }

    /// DSCP and ECN (the former Type of Service byte).
    pub fn dscp_ecn(&self) -> u8 {
        bytes::read_u8(self.buffer.as_ref(), field::DSCP_ECN)
    }

    /// Total Length: header plus payload, in bytes.
    pub fn total_len(&self) -> u16 {
        bytes::read_u16(self.buffer.as_ref(), field::LENGTH)
    }

    /// Identification.
    pub fn ident(&self) -> u16 {
        bytes::read_u16(self.buffer.as_ref(), field::IDENT)
    }

    /// Don't Fragment flag.
    pub fn dont_frag(&self) -> bool {
        bytes::read_u16(self.buffer.as_ref(), field::FLG_OFF) & FLAG_DF != 0
    }

    /// More Fragments flag.
    pub fn more_frags(&self) -> bool {
        bytes::read_u16(self.buffer.as_ref(), field::FLG_OFF) & FLAG_MF != 0
    }

    /// Fragment Offset in 8-octet units, as on the wire.
    pub fn frag_offset(&self) -> u16 {
        bytes::read_u16(self.buffer.as_ref(), field::FLG_OFF) & FRAG_OFFSET_MASK
    }

    /// Whether this datagram is a fragment (MF set or offset non-zero).
    pub fn is_fragment(&self) -> bool {
        self.more_frags() || self.frag_offset() != 0
    }

    /// Time to Live.
    pub fn ttl(&self) -> u8 {
        bytes::read_u8(self.buffer.as_ref(), field::TTL)
    }

    /// Protocol.
    pub fn protocol(&self) -> u8 {
        bytes::read_u8(self.buffer.as_ref(), field::PROTOCOL)
    }

    /// Header Checksum field.
    pub fn checksum(&self) -> u16 {
        bytes::read_u16(self.buffer.as_ref(), field::CHECKSUM)
    }

    /// Source address.
    pub fn src_addr(&self) -> Ipv4Addr {
        Ipv4Addr::from(bytes::read::<4>(self.buffer.as_ref(), field::SRC))
    }

    /// Destination address.
    pub fn dst_addr(&self) -> Ipv4Addr {
        Ipv4Addr::from(bytes::read::<4>(self.buffer.as_ref(), field::DST))
    }

    /// The header bytes, options included (clamped to the buffer).
    pub fn header(&self) -> &[u8] {
        bytes::slice(self.buffer.as_ref(), 0..self.header_len())
    }

    /// Whether the header checksum verifies.
    pub fn verify_checksum(&self) -> bool {
        checksum::verifies(checksum::sum(self.header()))
    }

    /// Byte range of the payload: from the header length to Total Length,
    /// clamped to the buffer.
    pub(crate) fn payload_range(&self) -> Range<usize> {
        let len = self.buffer.as_ref().len();
        let end = usize::from(self.total_len()).min(len);
        let start = self.header_len().min(end);
        start..end
    }

    /// The payload, bounded by Total Length (Ethernet padding excluded).
    pub fn payload(&self) -> &[u8] {
        bytes::slice(self.buffer.as_ref(), self.payload_range())
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Ipv4Packet<T> {
    /// Sets version and IHL from a header length in bytes (a multiple of 4
    /// between 20 and 60).
    pub fn set_version_and_header_len(&mut self, version: u8, header_len: usize) {
        let ihl = u8::try_from(header_len / 4).unwrap_or(0x0f).min(0x0f);
        bytes::write_u8(self.buffer.as_mut(), field::VER_IHL, (version << 4) | ihl);
    }

    /// Sets DSCP and ECN.
    pub fn set_dscp_ecn(&mut self, v: u8) {
        bytes::write_u8(self.buffer.as_mut(), field::DSCP_ECN, v);
    }

    /// Sets Total Length.
    pub fn set_total_len(&mut self, v: u16) {
        bytes::write_u16(self.buffer.as_mut(), field::LENGTH, v);
    }

    /// Sets Identification.
    pub fn set_ident(&mut self, v: u16) {
        bytes::write_u16(self.buffer.as_mut(), field::IDENT, v);
    }

    /// Sets the flags and fragment offset (8-octet units) in one write.
    pub fn set_flags_and_frag_offset(&mut self, dont_frag: bool, more_frags: bool, offset: u16) {
        let mut v = offset & FRAG_OFFSET_MASK;
        if dont_frag {
            v |= FLAG_DF;
        }
        if more_frags {
            v |= FLAG_MF;
        }
        bytes::write_u16(self.buffer.as_mut(), field::FLG_OFF, v);
    }

    /// Sets Time to Live (the checksum is not updated).
    pub fn set_ttl(&mut self, v: u8) {
        bytes::write_u8(self.buffer.as_mut(), field::TTL, v);
    }

    /// Sets Protocol.
    pub fn set_protocol(&mut self, v: u8) {
        bytes::write_u8(self.buffer.as_mut(), field::PROTOCOL, v);
    }

    /// Sets the Header Checksum field.
    pub fn set_checksum(&mut self, v: u16) {
        bytes::write_u16(self.buffer.as_mut(), field::CHECKSUM, v);
    }

    /// Sets the source address.
    pub fn set_src_addr(&mut self, a: Ipv4Addr) {
        bytes::write(self.buffer.as_mut(), field::SRC, a.octets());
    }

    /// Sets the destination address.
    pub fn set_dst_addr(&mut self, a: Ipv4Addr) {
        bytes::write(self.buffer.as_mut(), field::DST, a.octets());
    }

    /// Computes and writes the header checksum (options included).
    pub fn fill_checksum(&mut self) {
        self.set_checksum(0);
        let c = checksum::finish(checksum::sum(self.header()));
        self.set_checksum(c);
    }

    /// Decrements TTL by one and patches the checksum incrementally
    /// (RFC 1624 eqn. 3), for forwarding. Returns the new TTL. A TTL of 0 is
    /// left unchanged (the caller sends Time Exceeded instead of forwarding).
    pub fn decrement_ttl(&mut self) -> u8 {
        let old = self.ttl();
        let Some(new) = old.checked_sub(1) else {
            return old;
        };
        let proto = self.protocol();
        let c = checksum::incremental_update(
            self.checksum(),
            u16::from_be_bytes([old, proto]),
            u16::from_be_bytes([new, proto]),
        );
        bytes::write(self.buffer.as_mut(), field::TTL_PROTO, [new, proto]);
        self.set_checksum(c);
        new
    }

    /// Mutable payload, bounded by Total Length.
    pub fn payload_mut(&mut self) -> &mut [u8] {
        let range = self.payload_range();
        bytes::slice_mut(self.buffer.as_mut(), range)
    }
}

/// A parsed IPv4 header (options are skipped, not kept).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Ipv4Repr {
    /// Source address.
    pub src: Ipv4Addr,
    /// Destination address.
    pub dst: Ipv4Addr,
    /// Protocol.
    pub protocol: u8,
    /// Time to Live.
    pub ttl: u8,
    /// DSCP/ECN (Type of Service).
    pub tos: u8,
    /// Identification.
    pub ident: u16,
    /// Don't Fragment flag.
    pub dont_frag: bool,
    /// Payload length in bytes.
    pub payload_len: usize,
}

impl Ipv4Repr {
    /// Parses a datagram header. Checks, in order: [`Ipv4Packet::check_len`];
    /// version 4 ([`WireError::BadIpHeader`]); header checksum
    /// ([`WireError::BadIpChecksum`]); not a fragment ([`WireError::Fragment`]:
    /// this representation cannot describe one).
    ///
    /// # Errors
    /// As listed above.
    pub fn parse<T: AsRef<[u8]>>(packet: &Ipv4Packet<T>) -> Result<Ipv4Repr, WireError> {
        packet.check_len()?;
        if packet.version() != 4 {
            return Err(WireError::BadIpHeader);
        }
        if !packet.verify_checksum() {
            return Err(WireError::BadIpChecksum);
        }
        if packet.is_fragment() {
            return Err(WireError::Fragment);
        }
        Ok(Ipv4Repr {
            src: packet.src_addr(),
            dst: packet.dst_addr(),
            protocol: packet.protocol(),
            ttl: packet.ttl(),
            tos: packet.dscp_ecn(),
            ident: packet.ident(),
            dont_frag: packet.dont_frag(),
            payload_len: packet.payload_range().len(),
        })
    }

    /// Header bytes [`emit`](Self::emit) writes: 20 (no options).
    pub const fn buffer_len(&self) -> usize {
        HEADER_LEN
    }

    /// Writes a 20-byte header with the checksum filled in. Total Length is
    /// 20 + `payload_len`, saturated at 65535.
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(&self, packet: &mut Ipv4Packet<T>) {
        packet.set_version_and_header_len(4, HEADER_LEN);
        packet.set_dscp_ecn(self.tos);
        let total = u16::try_from(HEADER_LEN.saturating_add(self.payload_len)).unwrap_or(u16::MAX);
        packet.set_total_len(total);
        packet.set_ident(self.ident);
        packet.set_flags_and_frag_offset(self.dont_frag, false, 0);
        packet.set_ttl(self.ttl);
        packet.set_protocol(self.protocol);
        packet.set_src_addr(self.src);
        packet.set_dst_addr(self.dst);
        packet.fill_checksum();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn repr() -> Ipv4Repr {
        Ipv4Repr {
            src: Ipv4Addr::new(192, 0, 2, 2),
            dst: Ipv4Addr::new(224, 0, 0, 18),
            protocol: 112,
            ttl: 255,
            tos: 0xc0,
            ident: 0,
            dont_frag: false,
            payload_len: 12,
        }
    }

    #[test]
    fn emit_parse_round_trip() {
        let mut buf = [0u8; 32];
        repr().emit(&mut Ipv4Packet::new_unchecked(&mut buf[..]));
        let p = Ipv4Packet::new_checked(&buf[..]).unwrap();
        assert!(p.verify_checksum());
        assert_eq!(Ipv4Repr::parse(&p).unwrap(), repr());
        assert_eq!(p.payload().len(), 12);
    }

    #[test]
    fn check_len_ladder() {
        let mut buf = [0u8; 32];
        repr().emit(&mut Ipv4Packet::new_unchecked(&mut buf[..]));
        assert_eq!(
            Ipv4Packet::new_checked(&buf[..19]).unwrap_err(),
            WireError::Truncated { need: 20, got: 19 }
        );
        // Total Length larger than the buffer.
        assert_eq!(
            Ipv4Packet::new_checked(&buf[..31]).unwrap_err(),
            WireError::BadIpHeader
        );
        // IHL 4.
        let mut b = buf;
        b[0] = 0x44;
        assert_eq!(
            Ipv4Packet::new_checked(&b[..]).unwrap_err(),
            WireError::BadIpHeader
        );
        // Total Length smaller than the header.
        let mut b = buf;
        b[2..4].copy_from_slice(&19u16.to_be_bytes());
        assert_eq!(
            Ipv4Packet::new_checked(&b[..]).unwrap_err(),
            WireError::BadIpHeader
        );
        // Header (IHL 15 = 60 bytes) longer than the datagram.
        let mut b = buf;
        b[0] = 0x4f;
        assert_eq!(
            Ipv4Packet::new_checked(&b[..]).unwrap_err(),
            WireError::BadIpHeader
        );
    }

    #[test]
    fn decrement_ttl_keeps_checksum_valid() {
        let mut buf = [0u8; 32];
        Ipv4Repr { ttl: 2, ..repr() }.emit(&mut Ipv4Packet::new_unchecked(&mut buf[..]));
        let mut p = Ipv4Packet::new_checked(&mut buf[..]).unwrap();
        assert_eq!(p.decrement_ttl(), 1);
        assert!(p.verify_checksum());
        assert_eq!(p.decrement_ttl(), 0);
        assert!(p.verify_checksum());
        assert_eq!(p.decrement_ttl(), 0);
        assert!(p.verify_checksum());
    }

    #[test]
    fn version_and_fragment_rejected_by_repr() {
        let mut buf = [0u8; 32];
        repr().emit(&mut Ipv4Packet::new_unchecked(&mut buf[..]));
        let mut b = buf;
        let mut p = Ipv4Packet::new_unchecked(&mut b[..]);
        p.set_version_and_header_len(6, 20);
        p.fill_checksum();
        assert_eq!(
            Ipv4Repr::parse(&Ipv4Packet::new_unchecked(&b[..])),
            Err(WireError::BadIpHeader)
        );
        let mut b = buf;
        let mut p = Ipv4Packet::new_unchecked(&mut b[..]);
        p.set_flags_and_frag_offset(false, false, 3);
        p.fill_checksum();
        assert_eq!(
            Ipv4Repr::parse(&Ipv4Packet::new_unchecked(&b[..])),
            Err(WireError::Fragment)
        );
        let mut b = buf;
        b[11] ^= 1;
        assert_eq!(
            Ipv4Repr::parse(&Ipv4Packet::new_unchecked(&b[..])),
            Err(WireError::BadIpChecksum)
        );
    }
}
