//! ICMPv6 (RFC 4443): the message view shared by Echo, the error messages
//! and Neighbour Discovery; Echo Request / Echo Reply, Destination
//! Unreachable and Time Exceeded.
//!
//! ```text
//!  0                   1                   2                   3
//!  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |     Type      |     Code      |          Checksum             |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |           Identifier          |        Sequence Number        |  Echo (128 / 129)
//! |                             Unused                            |  Unreachable (1), Time Exceeded (3)
//! |R|S|O|                     Reserved                            |  NA (136); NS (135): Reserved
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |   Data ... / Invoking packet (errors) / Target Address (ND)   |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |   Options ... (ND)
//! +-+-+-+-+-+-+-+-+-+-+-+-
//! ```
//!
//! The view's buffer is the whole ICMPv6 message (the IPv6 payload). Unlike
//! ICMPv4, the checksum covers the RFC 8200 §8.1 pseudo-header too (RFC 4443
//! §2.3), so verifying and filling it take the IPv6 source and destination.
//! Neighbour Solicitation / Advertisement are parsed by [`crate::nd`]; the
//! view's `nd_*` accessors name their fields (RFC 4861 §4.3, §4.4).
//! Panic contract: see the crate documentation.

use std::net::Ipv6Addr;

use crate::bytes;
use crate::checksum;
use crate::error::WireError;

mod field {
    use core::ops::Range;
    pub(crate) const TYPE: usize = 0;
    pub(crate) const CODE: usize = 1;
    pub(crate) const CHECKSUM: Range<usize> = 2..4;
    pub(crate) const IDENT: Range<usize> = 4..6;
    pub(crate) const SEQ_NO: Range<usize> = 6..8;
    /// NA: R, S, O flags in the top three bits; NS: reserved.
    pub(crate) const ND_FLAGS: usize = 4;
    /// NS/NA: the 4-byte word holding the flags and the reserved bits.
    pub(crate) const ND_RESERVED: Range<usize> = 4..8;
    pub(crate) const ND_TARGET: Range<usize> = 8..24;
}

/// IPv6 Next Header value of ICMPv6.
pub const IPPROTO_ICMPV6: u8 = 58;

/// Length of the ICMPv6 header: type, code, checksum and the 4-byte word
/// that every message xvrrp handles carries (echo id/seq, ND flags).
pub const HEADER_LEN: usize = 8;

/// Length of a Neighbour Solicitation / Advertisement without options: the
/// header and the 16-byte target (RFC 4861 §7.1.1: "ICMP length ... is 24
/// or more octets").
pub const ND_HEADER_LEN: usize = 24;

/// Type of Destination Unreachable (RFC 4443 §3.1).
pub const TYPE_DST_UNREACHABLE: u8 = 1;
/// Type of Time Exceeded (RFC 4443 §3.3).
pub const TYPE_TIME_EXCEEDED: u8 = 3;
/// Type of Echo Request (RFC 4443 §4.1).
pub const TYPE_ECHO_REQUEST: u8 = 128;
/// Type of Echo Reply (RFC 4443 §4.2).
pub const TYPE_ECHO_REPLY: u8 = 129;
/// Type of Router Solicitation (RFC 4861 §4.1).
pub const TYPE_ROUTER_SOLICIT: u8 = 133;
/// Type of Router Advertisement (RFC 4861 §4.2).
pub const TYPE_ROUTER_ADVERT: u8 = 134;
/// Type of Neighbour Solicitation (RFC 4861 §4.3).
pub const TYPE_NEIGHBOR_SOLICIT: u8 = 135;
/// Type of Neighbour Advertisement (RFC 4861 §4.4).
pub const TYPE_NEIGHBOR_ADVERT: u8 = 136;
/// Type of Redirect (RFC 4861 §4.5).
pub const TYPE_REDIRECT: u8 = 137;

/// Most an error message quotes of the invoking packet: as much as fits
/// without the error exceeding the minimum IPv6 MTU, 1280 bytes, with its
/// IPv6 header (40) and ICMPv6 header (8) (RFC 4443 §2.4 (c)).
pub const MAX_QUOTE: usize = 1280 - 40 - HEADER_LEN;

/// Code of a Destination Unreachable message (RFC 4443 §3.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Unreachable {
    /// 0: no route to destination.
    NoRoute,
    /// 3: address unreachable (the link-layer address could not be resolved).
    Address,
    /// Any other code, kept as received.
    Unknown(u8),
}

impl From<u8> for Unreachable {
    fn from(v: u8) -> Self {
        match v {
            0 => Unreachable::NoRoute,
            3 => Unreachable::Address,
            other => Unreachable::Unknown(other),
        }
    }
}

impl From<Unreachable> for u8 {
    fn from(code: Unreachable) -> u8 {
        match code {
            Unreachable::NoRoute => 0,
            Unreachable::Address => 3,
            Unreachable::Unknown(v) => v,
        }
    }
}

/// Whether an ICMPv6 message of type `msg_type` is an error message (types
/// 0 to 127, RFC 4443 §2.1), which no error may answer (§2.4 (e.1)).
pub fn is_error(msg_type: u8) -> bool {
    msg_type < 128
}

/// A view over an ICMPv6 message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Icmpv6Packet<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Icmpv6Packet<T> {
    /// Wraps a buffer without checking it.
    pub const fn new_unchecked(buffer: T) -> Icmpv6Packet<T> {
        Icmpv6Packet { buffer }
    }

    /// Wraps a buffer after [`check_len`](Self::check_len).
    ///
    /// # Errors
    /// [`WireError::Truncated`] if shorter than 8 bytes.
    pub fn new_checked(buffer: T) -> Result<Icmpv6Packet<T>, WireError> {
        let p = Self::new_unchecked(buffer);
        p.check_len()?;
        Ok(p)
    }

    /// Checks that the 8-byte header is present.
    ///
    /// # Errors
    /// [`WireError::Truncated`] if it is not.
    pub fn check_len(&self) -> Result<(), WireError> {
        let got = self.buffer.as_ref().len();
        if got < HEADER_LEN {
            return Err(WireError::Truncated {
                need: HEADER_LEN,
                got,
            });
        }
        Ok(())
    }

    /// The wrapped buffer.
    pub fn into_inner(self) -> T {
        self.buffer
    }

    /// Type.
    pub fn msg_type(&self) -> u8 {
        bytes::read_u8(self.buffer.as_ref(), field::TYPE)
    }

    /// Code.
    pub fn msg_code(&self) -> u8 {
        bytes::read_u8(self.buffer.as_ref(), field::CODE)
    }

    /// Checksum field.
    pub fn checksum(&self) -> u16 {
        bytes::read_u16(self.buffer.as_ref(), field::CHECKSUM)
    }

    /// Echo identifier.
    pub fn echo_ident(&self) -> u16 {
        bytes::read_u16(self.buffer.as_ref(), field::IDENT)
    }

    /// Echo sequence number.
    pub fn echo_seq_no(&self) -> u16 {
        bytes::read_u16(self.buffer.as_ref(), field::SEQ_NO)
    }

    /// Everything after the 8-byte header (echo data).
    pub fn data(&self) -> &[u8] {
        let b = self.buffer.as_ref();
        bytes::slice(b, HEADER_LEN..b.len())
    }

    /// NS/NA: the byte holding the R, S and O flags (NA) in its top bits.
    pub fn nd_flags(&self) -> u8 {
        bytes::read_u8(self.buffer.as_ref(), field::ND_FLAGS)
    }

    /// NS/NA: Target Address.
    pub fn nd_target(&self) -> Ipv6Addr {
        Ipv6Addr::from(bytes::read::<16>(self.buffer.as_ref(), field::ND_TARGET))
    }

    /// NS/NA: the options after the target (empty if the message is shorter).
    pub fn nd_options(&self) -> &[u8] {
        let b = self.buffer.as_ref();
        bytes::slice(b, ND_HEADER_LEN..b.len())
    }

    /// Whether the checksum over the pseudo-header (`src`, `dst`, the
    /// message length, next header 58) and the whole message verifies.
    pub fn verify_checksum(&self, src: Ipv6Addr, dst: Ipv6Addr) -> bool {
        let b = self.buffer.as_ref();
        checksum::verifies(pseudo_header(src, dst, b.len()) + checksum::sum(b))
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Icmpv6Packet<T> {
    /// Sets the type.
    pub fn set_msg_type(&mut self, v: u8) {
        bytes::write_u8(self.buffer.as_mut(), field::TYPE, v);
    }

    /// Sets the code.
    pub fn set_msg_code(&mut self, v: u8) {
        bytes::write_u8(self.buffer.as_mut(), field::CODE, v);
    }

    /// Sets the checksum field.
    pub fn set_checksum(&mut self, v: u16) {
        bytes::write_u16(self.buffer.as_mut(), field::CHECKSUM, v);
    }

    /// Sets the echo identifier.
    pub fn set_echo_ident(&mut self, v: u16) {
        bytes::write_u16(self.buffer.as_mut(), field::IDENT, v);
    }

    /// Sets the echo sequence number.
    pub fn set_echo_seq_no(&mut self, v: u16) {
        bytes::write_u16(self.buffer.as_mut(), field::SEQ_NO, v);
    }

    /// Mutable data after the 8-byte header.
    pub fn data_mut(&mut self) -> &mut [u8] {
        let b = self.buffer.as_mut();
        let len = b.len();
        bytes::slice_mut(b, HEADER_LEN..len)
    }

    /// NS/NA: writes the flags byte and zeroes the other reserved bytes.
    pub fn set_nd_flags(&mut self, flags: u8) {
        bytes::write(self.buffer.as_mut(), field::ND_RESERVED, [flags, 0, 0, 0]);
    }

    /// NS/NA: sets the Target Address.
    pub fn set_nd_target(&mut self, a: Ipv6Addr) {
        bytes::write(self.buffer.as_mut(), field::ND_TARGET, a.octets());
    }

    /// NS/NA: mutable options after the target.
    pub fn nd_options_mut(&mut self) -> &mut [u8] {
        let b = self.buffer.as_mut();
        let len = b.len();
        bytes::slice_mut(b, ND_HEADER_LEN..len)
    }

    /// The first `len` bytes of the buffer (fewer if it is shorter), for
    /// representations that emit into a prefix and checksum exactly it.
    pub(crate) fn prefix_mut(&mut self, len: usize) -> &mut [u8] {
        bytes::slice_mut(self.buffer.as_mut(), 0..len)
    }

    /// Computes and writes the checksum over the pseudo-header and the whole
    /// buffer.
    pub fn fill_checksum(&mut self, src: Ipv6Addr, dst: Ipv6Addr) {
        self.set_checksum(0);
        let b = self.buffer.as_ref();
        let c = checksum::finish(pseudo_header(src, dst, b.len()) + checksum::sum(b));
        self.set_checksum(c);
    }
}

/// The pseudo-header's partial sum for a message of `len` bytes.
fn pseudo_header(src: Ipv6Addr, dst: Ipv6Addr, len: usize) -> u32 {
    // An IPv6 payload is at most 65535 bytes without jumbograms, so the
    // length always fits; saturating keeps the sum wrong rather than panicking.
    let len = u32::try_from(len).unwrap_or(u32::MAX);
    checksum::pseudo_header_v6(src, dst, IPPROTO_ICMPV6, len)
}

/// A parsed ICMPv6 Echo or error message. Neighbour Discovery messages are
/// parsed by [`crate::nd::NdRepr`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Icmpv6Repr<'a> {
    /// Type 128 code 0.
    EchoRequest {
        /// Identifier.
        ident: u16,
        /// Sequence number.
        seq_no: u16,
        /// Echo data, borrowed.
        data: &'a [u8],
    },
    /// Type 129 code 0.
    EchoReply {
        /// Identifier.
        ident: u16,
        /// Sequence number.
        seq_no: u16,
        /// Echo data, borrowed.
        data: &'a [u8],
    },
    /// Type 1, any code.
    DstUnreachable {
        /// Why.
        code: Unreachable,
        /// The start of the invoking packet, from its IPv6 header on.
        quoted: &'a [u8],
    },
    /// Type 3 code 0 (hop limit exceeded in transit).
    TimeExceeded {
        /// The start of the invoking packet, from its IPv6 header on.
        quoted: &'a [u8],
    },
}

impl<'a> Icmpv6Repr<'a> {
    /// Parses an Echo or error message carried from `src` to `dst`. Checks,
    /// in order: length ≥ 8 ([`WireError::Truncated`]); checksum with the
    /// pseudo-header ([`WireError::BadChecksum`]); type/code 128/0, 129/0,
    /// 1/any or 3/0 ([`WireError::BadType`] with the type).
    ///
    /// # Errors
    /// As listed above.
    pub fn parse(
        packet: &Icmpv6Packet<&'a [u8]>,
        src: Ipv6Addr,
        dst: Ipv6Addr,
    ) -> Result<Icmpv6Repr<'a>, WireError> {
        packet.check_len()?;
        if !packet.verify_checksum(src, dst) {
            return Err(WireError::BadChecksum);
        }
        let buf: &'a [u8] = packet.into_inner();
        let data = bytes::slice(buf, HEADER_LEN..buf.len());
        let (ident, seq_no) = (packet.echo_ident(), packet.echo_seq_no());
        match (packet.msg_type(), packet.msg_code()) {
            (TYPE_ECHO_REQUEST, 0) => Ok(Icmpv6Repr::EchoRequest {
                ident,
                seq_no,
                data,
            }),
            (TYPE_ECHO_REPLY, 0) => Ok(Icmpv6Repr::EchoReply {
                ident,
                seq_no,
                data,
            }),
            (TYPE_DST_UNREACHABLE, code) => Ok(Icmpv6Repr::DstUnreachable {
                code: code.into(),
                quoted: data,
            }),
            (TYPE_TIME_EXCEEDED, 0) => Ok(Icmpv6Repr::TimeExceeded { quoted: data }),
            (t, _) => Err(WireError::BadType(t)),
        }
    }

    /// A Time Exceeded message for `original` (an IPv6 packet as received,
    /// from its header on), quoting as much of it as
    /// [`MAX_QUOTE`] allows, bounded by its Payload Length and the slice.
    pub fn time_exceeded(original: &'a [u8]) -> Icmpv6Repr<'a> {
        Icmpv6Repr::TimeExceeded {
            quoted: quote(original),
        }
    }

    /// A Destination Unreachable message with `code` for `original`, quoted
    /// as [`time_exceeded`](Self::time_exceeded) quotes it.
    pub fn dst_unreachable(code: Unreachable, original: &'a [u8]) -> Icmpv6Repr<'a> {
        Icmpv6Repr::DstUnreachable {
            code,
            quoted: quote(original),
        }
    }

    /// Bytes [`emit`](Self::emit) writes: 8 + data.
    pub fn buffer_len(&self) -> usize {
        match self {
            Icmpv6Repr::EchoRequest { data, .. } | Icmpv6Repr::EchoReply { data, .. } => {
                HEADER_LEN + data.len()
            }
            Icmpv6Repr::DstUnreachable { quoted, .. } | Icmpv6Repr::TimeExceeded { quoted } => {
                HEADER_LEN + quoted.len()
            }
        }
    }

    /// Writes the message into the first [`buffer_len`](Self::buffer_len)
    /// bytes of `packet` and fills the checksum for `src` → `dst` over
    /// exactly those bytes.
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(
        &self,
        packet: &mut Icmpv6Packet<T>,
        src: Ipv6Addr,
        dst: Ipv6Addr,
    ) {
        let len = self.buffer_len();
        let mut p = Icmpv6Packet::new_unchecked(packet.prefix_mut(len));
        // Type, code, the second word (echo id/seq; unused in errors), data.
        let (t, code, word, data) = match *self {
            Icmpv6Repr::EchoRequest {
                ident,
                seq_no,
                data,
            } => (TYPE_ECHO_REQUEST, 0, (ident, seq_no), data),
            Icmpv6Repr::EchoReply {
                ident,
                seq_no,
                data,
            } => (TYPE_ECHO_REPLY, 0, (ident, seq_no), data),
            Icmpv6Repr::DstUnreachable { code, quoted } => {
                (TYPE_DST_UNREACHABLE, code.into(), (0, 0), quoted)
            }
            Icmpv6Repr::TimeExceeded { quoted } => (TYPE_TIME_EXCEEDED, 0, (0, 0), quoted),
        };
        p.set_msg_type(t);
        p.set_msg_code(code);
        p.set_echo_ident(word.0);
        p.set_echo_seq_no(word.1);
        bytes::copy_into(p.data_mut(), 0, data);
        p.fill_checksum(src, dst);
    }
}

/// What an error message quotes of `original` (an IPv6 packet as received,
/// from its header on): up to [`MAX_QUOTE`] bytes, bounded by the packet's
/// own length (40 + Payload Length) and the slice.
fn quote(original: &[u8]) -> &[u8] {
    let payload_len = usize::from(bytes::read_u16(original, 4..6));
    let end = (40 + payload_len).min(MAX_QUOTE).min(original.len());
    bytes::slice(original, 0..end)
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 0x100);
    const B: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1);

    #[test]
    fn echo_round_trip_and_checksum_covers_pseudo_header() {
        let r = Icmpv6Repr::EchoRequest {
            ident: 0x1234,
            seq_no: 7,
            data: b"hello",
        };
        let mut buf = [0u8; 13];
        r.emit(&mut Icmpv6Packet::new_unchecked(&mut buf[..]), A, B);
        let p = Icmpv6Packet::new_checked(&buf[..]).unwrap();
        assert_eq!(Icmpv6Repr::parse(&p, A, B).unwrap(), r);
        // The same bytes between other addresses do not verify.
        assert_eq!(Icmpv6Repr::parse(&p, B, B), Err(WireError::BadChecksum));
        buf[9] ^= 0x40;
        assert_eq!(
            Icmpv6Repr::parse(&Icmpv6Packet::new_unchecked(&buf[..]), A, B),
            Err(WireError::BadChecksum)
        );
        assert_eq!(
            Icmpv6Repr::parse(&Icmpv6Packet::new_unchecked(&buf[..7]), A, B),
            Err(WireError::Truncated { need: 8, got: 7 })
        );
    }

    #[test]
    fn errors_round_trip_and_quote_at_most_the_minimum_mtu() {
        let mut pkt = vec![0u8; 1400];
        pkt[0] = 0x60;
        pkt[4..6].copy_from_slice(&1360u16.to_be_bytes());
        let te = Icmpv6Repr::time_exceeded(&pkt);
        assert_eq!(te.buffer_len(), 1280 - 40);
        let short = Icmpv6Repr::dst_unreachable(Unreachable::Address, &pkt[..100]);
        assert_eq!(short.buffer_len(), 8 + 100);
        for r in [
            te,
            short,
            Icmpv6Repr::dst_unreachable(Unreachable::NoRoute, &pkt[..60]),
        ] {
            let mut buf = vec![0xffu8; r.buffer_len()];
            r.emit(&mut Icmpv6Packet::new_unchecked(&mut buf[..]), A, B);
            assert_eq!(&buf[4..8], &[0; 4]);
            let p = Icmpv6Packet::new_checked(&buf[..]).unwrap();
            assert_eq!(Icmpv6Repr::parse(&p, A, B).unwrap(), r);
        }
        assert!(is_error(TYPE_TIME_EXCEEDED) && is_error(TYPE_DST_UNREACHABLE));
        assert!(!is_error(TYPE_ECHO_REQUEST) && !is_error(TYPE_NEIGHBOR_SOLICIT));
        assert_eq!(u8::from(Unreachable::from(3)), 3);
        assert_eq!(Unreachable::from(4), Unreachable::Unknown(4));
    }

    #[test]
    fn non_echo_types_and_codes_rejected() {
        for (t, code) in [
            (TYPE_NEIGHBOR_SOLICIT, 0),
            (TYPE_ECHO_REQUEST, 1),
            (TYPE_TIME_EXCEEDED, 1),
        ] {
            let mut buf = [t, code, 0, 0, 0, 0, 0, 0];
            Icmpv6Packet::new_unchecked(&mut buf[..]).fill_checksum(A, B);
            assert_eq!(
                Icmpv6Repr::parse(&Icmpv6Packet::new_unchecked(&buf[..]), A, B),
                Err(WireError::BadType(t))
            );
        }
    }

    #[test]
    fn nd_accessors_read_and_write_their_fields() {
        let mut buf = [0xffu8; 32];
        let mut p = Icmpv6Packet::new_unchecked(&mut buf[..]);
        p.set_nd_flags(0xe0);
        p.set_nd_target(B);
        assert_eq!(p.nd_flags(), 0xe0);
        assert_eq!(p.nd_target(), B);
        assert_eq!(p.nd_options_mut().len(), 8);
        assert_eq!(&buf[4..8], &[0xe0, 0, 0, 0]);
        // A short buffer reads zeros and an empty option area.
        let short = Icmpv6Packet::new_unchecked(&buf[..10]);
        assert_eq!(short.nd_target(), Ipv6Addr::UNSPECIFIED);
        assert!(short.nd_options().is_empty());
    }
}
