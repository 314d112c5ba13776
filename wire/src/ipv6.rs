//! IPv6 fixed header (RFC 8200 §3).
//!
//! ```text
//!  0                   1                   2                   3
//!  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |Version| Traffic Class |           Flow Label                  |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |         Payload Length        |  Next Header  |   Hop Limit   |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |                                                               |
//! +                         Source Address                        +
//! |                          (128 bits)                           |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |                                                               |
//! +                      Destination Address                      +
//! |                          (128 bits)                           |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! ```
//!
//! Extension headers are not walked: the payload is whatever follows the
//! fixed header, bounded by Payload Length (not by the buffer, so Ethernet
//! padding is ignored). Panic contract: see the crate documentation.

use core::ops::Range;
use std::net::Ipv6Addr;

use crate::bytes;
use crate::error::WireError;

mod field {
    use core::ops::Range;
    /// Version is the high nibble of the first byte.
    pub(crate) const VER: usize = 0;
    pub(crate) const VER_TC_FLOW: Range<usize> = 0..4;
    pub(crate) const PAYLOAD_LEN: Range<usize> = 4..6;
    pub(crate) const NEXT_HEADER: usize = 6;
    pub(crate) const HOP_LIMIT: usize = 7;
    pub(crate) const SRC: Range<usize> = 8..24;
    pub(crate) const DST: Range<usize> = 24..40;
}

/// Length of the IPv6 fixed header.
pub const HEADER_LEN: usize = 40;

/// Next Header value of the IPv6 Fragment extension header.
pub const NEXT_HEADER_FRAGMENT: u8 = 44;

/// A view over an IPv6 packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ipv6Packet<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Ipv6Packet<T> {
    /// Wraps a buffer without checking it.
    pub const fn new_unchecked(buffer: T) -> Ipv6Packet<T> {
        Ipv6Packet { buffer }
    }

    /// Wraps a buffer after [`check_len`](Self::check_len).
    ///
    /// # Errors
    /// As [`check_len`](Self::check_len).
    pub fn new_checked(buffer: T) -> Result<Ipv6Packet<T>, WireError> {
        let p = Self::new_unchecked(buffer);
        p.check_len()?;
        Ok(p)
    }

    /// Checks, in order: buffer ≥ 40 bytes ([`WireError::Truncated`]);
    /// 40 + Payload Length ≤ buffer ([`WireError::BadIpHeader`]). Trailing
    /// bytes (Ethernet padding) are allowed. The version is not checked here.
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
        if HEADER_LEN + usize::from(self.payload_len()) > got {
            return Err(WireError::BadIpHeader);
        }
        Ok(())
    }

    /// The wrapped buffer.
    pub fn into_inner(self) -> T {
        self.buffer
    }

    fn ver_tc_flow(&self) -> u32 {
        u32::from_be_bytes(bytes::read(self.buffer.as_ref(), field::VER_TC_FLOW))
    }

    /// Version field (6 for IPv6).
    pub fn version(&self) -> u8 {
        bytes::read_u8(self.buffer.as_ref(), field::VER) >> 4
    }

    /// Traffic Class.
    pub fn traffic_class(&self) -> u8 {
        let [.., tc] = (self.ver_tc_flow() >> 20).to_be_bytes();
        tc
    }

    /// Flow Label (20 bits).
    pub fn flow_label(&self) -> u32 {
        self.ver_tc_flow() & 0x000f_ffff
    }

    /// Payload Length: bytes after the fixed header.
    pub fn payload_len(&self) -> u16 {
        bytes::read_u16(self.buffer.as_ref(), field::PAYLOAD_LEN)
    }

    /// Next Header.
    pub fn next_header(&self) -> u8 {
        bytes::read_u8(self.buffer.as_ref(), field::NEXT_HEADER)
    }

    /// Hop Limit.
    pub fn hop_limit(&self) -> u8 {
        bytes::read_u8(self.buffer.as_ref(), field::HOP_LIMIT)
    }

    /// Source address.
    pub fn src_addr(&self) -> Ipv6Addr {
        Ipv6Addr::from(bytes::read::<16>(self.buffer.as_ref(), field::SRC))
    }

    /// Destination address.
    pub fn dst_addr(&self) -> Ipv6Addr {
        Ipv6Addr::from(bytes::read::<16>(self.buffer.as_ref(), field::DST))
    }

    /// Byte range of the payload, clamped to the buffer.
    pub(crate) fn payload_range(&self) -> Range<usize> {
        let len = self.buffer.as_ref().len();
        let end = (HEADER_LEN + usize::from(self.payload_len())).min(len);
        HEADER_LEN.min(end)..end
    }

    /// The payload, bounded by Payload Length.
    pub fn payload(&self) -> &[u8] {
        bytes::slice(self.buffer.as_ref(), self.payload_range())
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Ipv6Packet<T> {
    /// Sets version, traffic class and flow label (low 20 bits) in one write.
    pub fn set_version_tc_flow(&mut self, version: u8, traffic_class: u8, flow_label: u32) {
        let v = (u32::from(version) << 28)
            | (u32::from(traffic_class) << 20)
            | (flow_label & 0x000f_ffff);
        bytes::write(self.buffer.as_mut(), field::VER_TC_FLOW, v.to_be_bytes());
    }

    /// Sets Payload Length.
    pub fn set_payload_len(&mut self, v: u16) {
        bytes::write_u16(self.buffer.as_mut(), field::PAYLOAD_LEN, v);
    }

    /// Sets Next Header.
    pub fn set_next_header(&mut self, v: u8) {
        bytes::write_u8(self.buffer.as_mut(), field::NEXT_HEADER, v);
    }

    /// Sets Hop Limit.
    pub fn set_hop_limit(&mut self, v: u8) {
        bytes::write_u8(self.buffer.as_mut(), field::HOP_LIMIT, v);
    }

    /// Sets the source address.
    pub fn set_src_addr(&mut self, a: Ipv6Addr) {
        bytes::write(self.buffer.as_mut(), field::SRC, a.octets());
    }

    /// Sets the destination address.
    pub fn set_dst_addr(&mut self, a: Ipv6Addr) {
        bytes::write(self.buffer.as_mut(), field::DST, a.octets());
    }

    /// Mutable payload, bounded by Payload Length.
    pub fn payload_mut(&mut self) -> &mut [u8] {
        let range = self.payload_range();
        bytes::slice_mut(self.buffer.as_mut(), range)
    }
}

/// A parsed IPv6 fixed header (the flow label is not kept; emit writes 0).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Ipv6Repr {
    /// Source address.
    pub src: Ipv6Addr,
    /// Destination address.
    pub dst: Ipv6Addr,
    /// Next Header.
    pub next_header: u8,
    /// Hop Limit.
    pub hop_limit: u8,
    /// Traffic Class.
    pub traffic_class: u8,
    /// Payload length in bytes.
    pub payload_len: usize,
}

impl Ipv6Repr {
    /// Parses the fixed header. Checks, in order: [`Ipv6Packet::check_len`];
    /// version 6 ([`WireError::BadIpHeader`]).
    ///
    /// # Errors
    /// As listed above.
    pub fn parse<T: AsRef<[u8]>>(packet: &Ipv6Packet<T>) -> Result<Ipv6Repr, WireError> {
        packet.check_len()?;
        if packet.version() != 6 {
            return Err(WireError::BadIpHeader);
        }
        Ok(Ipv6Repr {
            src: packet.src_addr(),
            dst: packet.dst_addr(),
            next_header: packet.next_header(),
            hop_limit: packet.hop_limit(),
            traffic_class: packet.traffic_class(),
            payload_len: usize::from(packet.payload_len()),
        })
    }

    /// Header bytes [`emit`](Self::emit) writes: 40.
    pub const fn buffer_len(&self) -> usize {
        HEADER_LEN
    }

    /// Writes the fixed header; Payload Length saturates at 65535.
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(&self, packet: &mut Ipv6Packet<T>) {
        packet.set_version_tc_flow(6, self.traffic_class, 0);
        packet.set_payload_len(u16::try_from(self.payload_len).unwrap_or(u16::MAX));
        packet.set_next_header(self.next_header);
        packet.set_hop_limit(self.hop_limit);
        packet.set_src_addr(self.src);
        packet.set_dst_addr(self.dst);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_lengths() {
        let r = Ipv6Repr {
            src: "fe80::2".parse().unwrap(),
            dst: "ff02::12".parse().unwrap(),
            next_header: 112,
            hop_limit: 255,
            traffic_class: 0xc0,
            payload_len: 24,
        };
        let mut buf = [0u8; 70];
        r.emit(&mut Ipv6Packet::new_unchecked(&mut buf[..]));
        let p = Ipv6Packet::new_checked(&buf[..]).unwrap();
        assert_eq!(Ipv6Repr::parse(&p).unwrap(), r);
        assert_eq!(p.traffic_class(), 0xc0);
        assert_eq!(p.flow_label(), 0);
        assert_eq!(p.payload().len(), 24);
        assert_eq!(
            Ipv6Packet::new_checked(&buf[..39]).unwrap_err(),
            WireError::Truncated { need: 40, got: 39 }
        );
        assert_eq!(
            Ipv6Packet::new_checked(&buf[..63]).unwrap_err(),
            WireError::BadIpHeader
        );
        let mut b = buf;
        b[0] = 0x40;
        assert_eq!(
            Ipv6Repr::parse(&Ipv6Packet::new_unchecked(&b[..])),
            Err(WireError::BadIpHeader)
        );
    }
}
