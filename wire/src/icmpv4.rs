//! ICMPv4 Echo Request / Echo Reply, Destination Unreachable and Time
//! Exceeded (RFC 792, RFC 1812 §4.3.2).
//!
//! ```text
//!  0                   1                   2                   3
//!  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |     Type      |     Code      |          Checksum             |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |           Identifier          |        Sequence Number        |  Echo (8 / 0)
//! |                             unused                            |  Unreachable (3), Time Exceeded (11)
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |     Data ... / Internet Header + 64 bits of Original Data      |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! ```
//!
//! The view's buffer is the whole ICMP message (the IPv4 payload); the
//! checksum covers all of it. Panic contract: see the crate documentation.

use crate::bytes;
use crate::checksum;
use crate::error::WireError;
use crate::ipv4::{self, Ipv4Packet};

mod field {
    use core::ops::Range;
    pub(crate) const TYPE: usize = 0;
    pub(crate) const CODE: usize = 1;
    pub(crate) const CHECKSUM: Range<usize> = 2..4;
    pub(crate) const IDENT: Range<usize> = 4..6;
    pub(crate) const SEQ_NO: Range<usize> = 6..8;
    pub(crate) const REST: Range<usize> = 4..8;
}

/// Length of the ICMP header (type, code, checksum and the 4-byte rest).
pub const HEADER_LEN: usize = 8;

/// Type of Echo Reply.
pub const TYPE_ECHO_REPLY: u8 = 0;
/// Type of Echo Request.
pub const TYPE_ECHO_REQUEST: u8 = 8;
/// Type of Destination Unreachable.
pub const TYPE_DST_UNREACHABLE: u8 = 3;
/// Type of Time Exceeded.
pub const TYPE_TIME_EXCEEDED: u8 = 11;

/// Code of a Destination Unreachable message (RFC 792, RFC 1812 §5.2.7.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Unreachable {
    /// 0: no route to the destination network.
    Net,
    /// 1: the destination host cannot be reached (its link-layer address
    /// could not be resolved).
    Host,
    /// Any other code, kept as received.
    Unknown(u8),
}

impl From<u8> for Unreachable {
    fn from(v: u8) -> Self {
        match v {
            0 => Unreachable::Net,
            1 => Unreachable::Host,
            other => Unreachable::Unknown(other),
        }
    }
}

impl From<Unreachable> for u8 {
    fn from(code: Unreachable) -> u8 {
        match code {
            Unreachable::Net => 0,
            Unreachable::Host => 1,
            Unreachable::Unknown(v) => v,
        }
    }
}

/// Bytes of the original datagram's payload quoted after its header in an
/// error message (RFC 792: "64 bits of Original Data Datagram").
const QUOTED_PAYLOAD_LEN: usize = 8;

/// A view over an ICMPv4 message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Icmpv4Packet<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Icmpv4Packet<T> {
    /// Wraps a buffer without checking it.
    pub const fn new_unchecked(buffer: T) -> Icmpv4Packet<T> {
        Icmpv4Packet { buffer }
    }

    /// Wraps a buffer after [`check_len`](Self::check_len).
    ///
    /// # Errors
    /// [`WireError::Truncated`] if shorter than 8 bytes.
    pub fn new_checked(buffer: T) -> Result<Icmpv4Packet<T>, WireError> {
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

    /// Everything after the 8-byte header.
    pub fn data(&self) -> &[u8] {
        let b = self.buffer.as_ref();
        bytes::slice(b, HEADER_LEN..b.len())
    }

    /// Whether the checksum over the whole message verifies.
    pub fn verify_checksum(&self) -> bool {
        checksum::verifies(checksum::sum(self.buffer.as_ref()))
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Icmpv4Packet<T> {
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

    /// Computes and writes the checksum over the whole buffer.
    pub fn fill_checksum(&mut self) {
        self.set_checksum(0);
        let c = checksum::finish(checksum::sum(self.buffer.as_ref()));
        self.set_checksum(c);
    }
}

/// A parsed ICMPv4 message of a kind xvrrp handles.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Icmpv4Repr<'a> {
    /// Type 8 code 0.
    EchoRequest {
        /// Identifier.
        ident: u16,
        /// Sequence number.
        seq_no: u16,
        /// Echo data, borrowed.
        data: &'a [u8],
    },
    /// Type 0 code 0.
    EchoReply {
        /// Identifier.
        ident: u16,
        /// Sequence number.
        seq_no: u16,
        /// Echo data, borrowed.
        data: &'a [u8],
    },
    /// Type 3, any code.
    DstUnreachable {
        /// Why.
        code: Unreachable,
        /// The quoted part of the original datagram (see
        /// [`Icmpv4Repr::time_exceeded`]).
        quoted: &'a [u8],
    },
    /// Type 11 code 0 (TTL exceeded in transit).
    TimeExceeded {
        /// The quoted part of the original datagram: its IP header and the
        /// first 8 bytes of its payload (see [`Icmpv4Repr::time_exceeded`]).
        quoted: &'a [u8],
    },
}

impl<'a> Icmpv4Repr<'a> {
    /// Parses a message. Checks, in order: length ≥ 8
    /// ([`WireError::Truncated`]); checksum ([`WireError::BadChecksum`]);
    /// type/code one of 8/0, 0/0, 11/0 ([`WireError::BadType`] with the type).
    ///
    /// # Errors
    /// As listed above.
    pub fn parse(packet: &Icmpv4Packet<&'a [u8]>) -> Result<Icmpv4Repr<'a>, WireError> {
        packet.check_len()?;
        if !packet.verify_checksum() {
            return Err(WireError::BadChecksum);
        }
        let buf: &'a [u8] = packet.into_inner();
        let data = bytes::slice(buf, HEADER_LEN..buf.len());
        match (packet.msg_type(), packet.msg_code()) {
            (TYPE_ECHO_REQUEST, 0) => Ok(Icmpv4Repr::EchoRequest {
                ident: packet.echo_ident(),
                seq_no: packet.echo_seq_no(),
                data,
            }),
            (TYPE_ECHO_REPLY, 0) => Ok(Icmpv4Repr::EchoReply {
                ident: packet.echo_ident(),
                seq_no: packet.echo_seq_no(),
                data,
            }),
            (TYPE_DST_UNREACHABLE, code) => Ok(Icmpv4Repr::DstUnreachable {
                code: code.into(),
                quoted: data,
            }),
            (TYPE_TIME_EXCEEDED, 0) => Ok(Icmpv4Repr::TimeExceeded { quoted: data }),
            (t, _) => Err(WireError::BadType(t)),
        }
    }

    /// A Time Exceeded message for `original` (an IPv4 datagram as received,
    /// starting at its header): quotes the header, options included, and the
    /// first 8 bytes of its payload, bounded by its Total Length and by the
    /// slice.
    pub fn time_exceeded(original: &'a [u8]) -> Icmpv4Repr<'a> {
        Icmpv4Repr::TimeExceeded {
            quoted: quote(original),
        }
    }

    /// A Destination Unreachable message with `code` for `original`, quoted
    /// as [`time_exceeded`](Self::time_exceeded) quotes it.
    pub fn dst_unreachable(code: Unreachable, original: &'a [u8]) -> Icmpv4Repr<'a> {
        Icmpv4Repr::DstUnreachable {
            code,
            quoted: quote(original),
        }
    }

    /// Bytes [`emit`](Self::emit) writes: 8 + data.
    pub fn buffer_len(&self) -> usize {
        let data = match self {
            Icmpv4Repr::EchoRequest { data, .. } | Icmpv4Repr::EchoReply { data, .. } => data,
            Icmpv4Repr::DstUnreachable { quoted, .. } | Icmpv4Repr::TimeExceeded { quoted } => {
                quoted
            }
        };
        HEADER_LEN + data.len()
    }

    /// Writes the message into the first [`buffer_len`](Self::buffer_len)
    /// bytes of `packet` and fills the checksum over exactly those bytes.
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(&self, packet: &mut Icmpv4Packet<T>) {
        let len = self.buffer_len();
        let mut p = Icmpv4Packet::new_unchecked(bytes::slice_mut(packet.buffer.as_mut(), 0..len));
        p.set_msg_code(0);
        match *self {
            Icmpv4Repr::EchoRequest {
                ident,
                seq_no,
                data,
            }
            | Icmpv4Repr::EchoReply {
                ident,
                seq_no,
                data,
            } => {
                let t = if matches!(self, Icmpv4Repr::EchoRequest { .. }) {
                    TYPE_ECHO_REQUEST
                } else {
                    TYPE_ECHO_REPLY
                };
                p.set_msg_type(t);
                p.set_echo_ident(ident);
                p.set_echo_seq_no(seq_no);
                bytes::copy_into(p.data_mut(), 0, data);
            }
            Icmpv4Repr::DstUnreachable { code, quoted } => {
                p.set_msg_type(TYPE_DST_UNREACHABLE);
                p.set_msg_code(code.into());
                bytes::write(p.buffer, field::REST, [0; 4]);
                bytes::copy_into(p.data_mut(), 0, quoted);
            }
            Icmpv4Repr::TimeExceeded { quoted } => {
                p.set_msg_type(TYPE_TIME_EXCEEDED);
                bytes::write(p.buffer, field::REST, [0; 4]);
                bytes::copy_into(p.data_mut(), 0, quoted);
            }
        }
        p.fill_checksum();
    }
}

/// What an error message quotes of `original` (an IPv4 datagram as
/// received, from its header on): the header, options included, and the
/// first 8 bytes of its payload, bounded by its Total Length and the slice.
fn quote(original: &[u8]) -> &[u8] {
    let ip = Ipv4Packet::new_unchecked(original);
    let header_len = ip.header_len().max(ipv4::HEADER_LEN);
    let total_len = usize::from(ip.total_len()).max(header_len);
    let end = header_len
        .saturating_add(QUOTED_PAYLOAD_LEN)
        .min(total_len)
        .min(original.len());
    bytes::slice(original, 0..end)
}

/// Whether an ICMP message of type `msg_type` is an error message, which
/// no error may answer (RFC 1812 §4.3.2.7): anything but the queries and
/// replies (echo, timestamp, information, address mask, router discovery).
pub fn is_error(msg_type: u8) -> bool {
    !matches!(
        msg_type,
        TYPE_ECHO_REPLY | TYPE_ECHO_REQUEST | 9 | 10 | 13..=18
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ipv4::Ipv4Repr;
    use std::net::Ipv4Addr;

    #[test]
    fn echo_round_trip_and_checksum() {
        let r = Icmpv4Repr::EchoRequest {
            ident: 0x1234,
            seq_no: 7,
            data: b"hello!",
        };
        let mut buf = [0u8; 14];
        r.emit(&mut Icmpv4Packet::new_unchecked(&mut buf[..]));
        assert_eq!(
            Icmpv4Repr::parse(&Icmpv4Packet::new_unchecked(&buf[..])).unwrap(),
            r
        );
        buf[9] ^= 0x40;
        assert_eq!(
            Icmpv4Repr::parse(&Icmpv4Packet::new_unchecked(&buf[..])),
            Err(WireError::BadChecksum)
        );
        assert_eq!(
            Icmpv4Repr::parse(&Icmpv4Packet::new_unchecked(&buf[..7])),
            Err(WireError::Truncated { need: 8, got: 7 })
        );
    }

    #[test]
    fn unknown_type_rejected() {
        let mut buf = [13u8, 0, 0, 0, 0, 0, 0, 0];
        Icmpv4Packet::new_unchecked(&mut buf[..]).fill_checksum();
        assert_eq!(
            Icmpv4Repr::parse(&Icmpv4Packet::new_unchecked(&buf[..])),
            Err(WireError::BadType(13))
        );
    }

    #[test]
    fn dst_unreachable_codes_round_trip() {
        let dgram = [
            0x45u8, 0, 0, 28, 0, 0, 0, 0, 64, 17, 0, 0, 192, 0, 2, 100, 198, 51, 100, 1, 1, 2, 3,
            4, 5, 6, 7, 8, 9, 9,
        ];
        for (code, wire) in [
            (Unreachable::Net, 0u8),
            (Unreachable::Host, 1),
            (Unreachable::Unknown(13), 13),
        ] {
            let r = Icmpv4Repr::dst_unreachable(code, &dgram);
            assert_eq!(
                r.buffer_len(),
                8 + 28,
                "header + 8 bytes, not the trailing padding"
            );
            let mut buf = [0xffu8; 36];
            r.emit(&mut Icmpv4Packet::new_unchecked(&mut buf[..]));
            assert_eq!(&buf[..2], &[3, wire]);
            assert_eq!(&buf[4..8], &[0; 4]);
            assert_eq!(
                Icmpv4Repr::parse(&Icmpv4Packet::new_unchecked(&buf[..])).unwrap(),
                r
            );
            assert_eq!(u8::from(Unreachable::from(wire)), wire);
        }
    }

    #[test]
    fn errors_are_told_from_queries() {
        for t in [3, 4, 5, 11, 12, 42] {
            assert!(is_error(t), "{t}");
        }
        for t in [0, 8, 13, 14, 17, 18] {
            assert!(!is_error(t), "{t}");
        }
    }

    #[test]
    fn time_exceeded_quotes_header_with_options_and_8_bytes() {
        // A 24-byte header (IHL 6) + 20 bytes of payload + 4 bytes of padding.
        let mut dgram = [0u8; 48];
        let ip = Ipv4Repr {
            src: Ipv4Addr::new(192, 0, 2, 100),
            dst: Ipv4Addr::new(203, 0, 113, 100),
            protocol: 17,
            ttl: 1,
            tos: 0,
            ident: 9,
            dont_frag: true,
            payload_len: 20,
        };
        ip.emit(&mut Ipv4Packet::new_unchecked(&mut dgram[..]));
        let mut p = Ipv4Packet::new_unchecked(&mut dgram[..]);
        p.set_version_and_header_len(4, 24);
        p.set_total_len(44);
        let te = Icmpv4Repr::time_exceeded(&dgram);
        assert_eq!(
            te,
            Icmpv4Repr::TimeExceeded {
                quoted: &dgram[..32]
            }
        );
        let mut buf = [0u8; 40];
        te.emit(&mut Icmpv4Packet::new_unchecked(&mut buf[..]));
        assert_eq!(&buf[..8], &[11, 0, buf[2], buf[3], 0, 0, 0, 0]);
        assert_eq!(
            Icmpv4Repr::parse(&Icmpv4Packet::new_unchecked(&buf[..])).unwrap(),
            te
        );
        // A short original is quoted whole, without reading past it.
        assert_eq!(
            Icmpv4Repr::time_exceeded(&dgram[..10]),
            Icmpv4Repr::TimeExceeded {
                quoted: &dgram[..10]
            }
        );
    }
}
