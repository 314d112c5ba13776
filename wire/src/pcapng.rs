//! The pcapng capture format (draft-ietf-opsawg-pcapng): the four blocks
//! `xvrrp capture` writes, in little-endian byte order, and a reader of
//! the same blocks.
//!
//! ```text
//!  0                   1                   2                   3
//!  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |                          Block Type                           |
//! +---------------------------------------------------------------+
//! |                      Block Total Length                       |
//! +---------------------------------------------------------------+
//! /                          Block Body                           /
//! /       (fields, then options: code u16, length u16, value      /
//! /        padded to 32 bits; ended by opt_endofopt)             /
//! +---------------------------------------------------------------+
//! |                      Block Total Length                       |
//! +---------------------------------------------------------------+
//! ```
//!
//! Section Header (§4.1, type 0x0A0D0D0A), Interface Description (§4.2,
//! type 1: link type, snap length, `if_name`, `if_description`), Enhanced
//! Packet (§4.3, type 6: interface, microsecond timestamp, captured and
//! original lengths, data padded to 32 bits, `opt_comment` and
//! `epb_flags` with the direction) and Interface Statistics (§4.6, type 5:
//! `isb_osdrop`, `isb_usrdeliv`).
//!
//! Writers are representations with `buffer_len` and `emit` into a
//! caller's buffer (nothing allocates); `emit` returns
//! [`WireError::Truncated`] when the buffer is shorter than `buffer_len`,
//! and never panics. The reader takes little-endian sections only (what
//! the writer produces) and rejects inconsistent lengths with
//! [`WireError::BadLength`].

use crate::error::WireError;

/// Block type of a Section Header Block.
pub const SHB_TYPE: u32 = 0x0A0D_0D0A;
/// Block type of an Interface Description Block.
pub const IDB_TYPE: u32 = 1;
/// Block type of an Interface Statistics Block.
pub const ISB_TYPE: u32 = 5;
/// Block type of an Enhanced Packet Block.
pub const EPB_TYPE: u32 = 6;
/// Byte-order magic of a section.
pub const BYTE_ORDER_MAGIC: u32 = 0x1A2B_3C4D;
/// Link type Ethernet (LINKTYPE_ETHERNET).
pub const LINKTYPE_ETHERNET: u16 = 1;

/// Smallest block: type, two lengths.
const BLOCK_OVERHEAD: usize = 12;

mod option {
    pub(super) const END: u16 = 0;
    pub(super) const COMMENT: u16 = 1;
    pub(super) const SHB_USERAPPL: u16 = 4;
    pub(super) const IF_NAME: u16 = 2;
    pub(super) const IF_DESCRIPTION: u16 = 3;
    pub(super) const EPB_FLAGS: u16 = 2;
    pub(super) const ISB_OSDROP: u16 = 7;
    pub(super) const ISB_USRDELIV: u16 = 8;
}

/// `n` rounded up to a multiple of 4.
const fn pad4(n: usize) -> usize {
    (n + 3) & !3
}

/// Bytes an option with a value of `len` bytes takes (none when empty).
const fn option_len(len: usize) -> usize {
    if len == 0 {
        0
    } else {
        4 + pad4(len)
    }
}

/// Writes fields in order into a buffer already checked to be long enough.
struct Emitter<'a> {
    buf: &'a mut [u8],
    pos: usize,
}

impl<'a> Emitter<'a> {
    fn new(buf: &'a mut [u8], need: usize) -> Result<Self, WireError> {
        if buf.len() < need {
            return Err(WireError::Truncated {
                need,
                got: buf.len(),
            });
        }
        Ok(Self { buf, pos: 0 })
    }

    fn bytes(&mut self, b: &[u8]) {
        if let Some(dst) = self.buf.get_mut(self.pos..self.pos + b.len()) {
            dst.copy_from_slice(b);
        }
        self.pos += b.len();
    }

    fn u16(&mut self, v: u16) {
        self.bytes(&v.to_le_bytes());
    }

    fn u32(&mut self, v: u32) {
        self.bytes(&v.to_le_bytes());
    }

    /// Zero bytes up to the next multiple of 4.
    fn pad(&mut self) {
        let end = pad4(self.pos);
        if let Some(dst) = self.buf.get_mut(self.pos..end) {
            dst.fill(0);
        }
        self.pos = end;
    }

    /// An option, skipped when `value` is empty.
    fn option(&mut self, code: u16, value: &[u8]) {
        if value.is_empty() {
            return;
        }
        self.u16(code);
        self.u16(u16::try_from(value.len()).unwrap_or(u16::MAX));
        self.bytes(value);
        self.pad();
    }

    fn end_of_options(&mut self) {
        self.u16(option::END);
        self.u16(0);
    }
}

/// Length of a block whose body (fields and options, end of options
/// excluded) is `body` bytes, with `options` true if it has any.
fn block_len(body: usize, options: bool) -> usize {
    BLOCK_OVERHEAD + body + if options { 4 } else { 0 }
}

fn len_u32(len: usize) -> u32 {
    u32::try_from(len).unwrap_or(u32::MAX)
}

/// Option values are at most 65535 bytes: longer text is cut.
fn clip(s: &str) -> &[u8] {
    let b = s.as_bytes();
    b.get(..usize::from(u16::MAX)).unwrap_or(b)
}

/// Section Header Block: little-endian, version 1.0, unknown length.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SectionHeader<'a> {
    /// `shb_userappl`: the application that wrote the section.
    pub application: &'a str,
}

impl SectionHeader<'_> {
    fn options_len(&self) -> usize {
        option_len(clip(self.application).len())
    }

    /// Bytes [`emit`](Self::emit) writes.
    pub fn buffer_len(&self) -> usize {
        let o = self.options_len();
        block_len(16 + o, o > 0)
    }

    /// Writes the block at the start of `buf`; returns its length.
    ///
    /// # Errors
    /// [`WireError::Truncated`] when `buf` is shorter than [`buffer_len`](Self::buffer_len).
    pub fn emit(&self, buf: &mut [u8]) -> Result<usize, WireError> {
        let len = self.buffer_len();
        let mut e = Emitter::new(buf, len)?;
        e.u32(SHB_TYPE);
        e.u32(len_u32(len));
        e.u32(BYTE_ORDER_MAGIC);
        e.u16(1);
        e.u16(0);
        // Section length: -1, not known in advance.
        e.bytes(&u64::MAX.to_le_bytes());
        if self.options_len() > 0 {
            e.option(option::SHB_USERAPPL, clip(self.application));
            e.end_of_options();
        }
        e.u32(len_u32(len));
        Ok(len)
    }
}

/// Interface Description Block of an Ethernet interface, microsecond
/// timestamps (the default resolution).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InterfaceDescription<'a> {
    /// `if_name`.
    pub name: &'a str,
    /// `if_description`.
    pub description: &'a str,
    /// Most bytes of a frame captured.
    pub snap_len: u32,
}

impl InterfaceDescription<'_> {
    fn options_len(&self) -> usize {
        option_len(clip(self.name).len()) + option_len(clip(self.description).len())
    }

    /// Bytes [`emit`](Self::emit) writes.
    pub fn buffer_len(&self) -> usize {
        let o = self.options_len();
        block_len(8 + o, o > 0)
    }

    /// Writes the block at the start of `buf`; returns its length.
    ///
    /// # Errors
    /// [`WireError::Truncated`] when `buf` is shorter than [`buffer_len`](Self::buffer_len).
    pub fn emit(&self, buf: &mut [u8]) -> Result<usize, WireError> {
        let len = self.buffer_len();
        let mut e = Emitter::new(buf, len)?;
        e.u32(IDB_TYPE);
        e.u32(len_u32(len));
        e.u16(LINKTYPE_ETHERNET);
        e.u16(0);
        e.u32(self.snap_len);
        if self.options_len() > 0 {
            e.option(option::IF_NAME, clip(self.name));
            e.option(option::IF_DESCRIPTION, clip(self.description));
            e.end_of_options();
        }
        e.u32(len_u32(len));
        Ok(len)
    }
}

/// Direction of a packet (`epb_flags` bits 0-1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// Received on the interface.
    Inbound,
    /// Sent out of the interface.
    Outbound,
}

impl Direction {
    fn flags(self) -> u32 {
        match self {
            Direction::Inbound => 1,
            Direction::Outbound => 2,
        }
    }

    fn from_flags(flags: u32) -> Option<Direction> {
        match flags & 3 {
            1 => Some(Direction::Inbound),
            2 => Some(Direction::Outbound),
            _ => None,
        }
    }
}

/// Enhanced Packet Block.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EnhancedPacket<'a> {
    /// Index of the interface (its IDB's position in the section).
    pub interface: u32,
    /// Microseconds since the Unix epoch.
    pub timestamp_us: u64,
    /// The bytes captured (at most the snap length).
    pub data: &'a [u8],
    /// The frame's length on the wire.
    pub original_len: u32,
    /// `epb_flags` direction, if known.
    pub direction: Option<Direction>,
    /// `opt_comment` (empty: none).
    pub comment: &'a str,
}

impl<'a> EnhancedPacket<'a> {
    fn options_len(&self) -> usize {
        option_len(clip(self.comment).len()) + if self.direction.is_some() { 8 } else { 0 }
    }

    /// Bytes [`emit`](Self::emit) writes.
    pub fn buffer_len(&self) -> usize {
        let o = self.options_len();
        block_len(20 + pad4(self.data.len()) + o, o > 0)
    }

    /// Writes the block at the start of `buf`; returns its length.
    ///
    /// # Errors
    /// [`WireError::Truncated`] when `buf` is shorter than [`buffer_len`](Self::buffer_len).
    pub fn emit(&self, buf: &mut [u8]) -> Result<usize, WireError> {
        let len = self.buffer_len();
        let mut e = Emitter::new(buf, len)?;
        e.u32(EPB_TYPE);
        e.u32(len_u32(len));
        e.u32(self.interface);
        e.u32(u32::try_from(self.timestamp_us >> 32).unwrap_or(u32::MAX));
        e.u32(u32::try_from(self.timestamp_us & 0xffff_ffff).unwrap_or(0));
        e.u32(len_u32(self.data.len()));
        e.u32(self.original_len);
        e.bytes(self.data);
        e.pad();
        if self.options_len() > 0 {
            e.option(option::COMMENT, clip(self.comment));
            if let Some(d) = self.direction {
                e.option(option::EPB_FLAGS, &d.flags().to_le_bytes());
            }
            e.end_of_options();
        }
        e.u32(len_u32(len));
        Ok(len)
    }

    /// Reads an Enhanced Packet Block (unknown options are skipped).
    ///
    /// # Errors
    /// `BadType` if `block` is another type, `BadLength` if its captured
    /// length runs past the block, `Truncated` if it is short.
    pub fn parse(block: &Block<'a>) -> Result<Self, WireError> {
        if block.block_type != EPB_TYPE {
            return Err(WireError::BadType(0));
        }
        let body = block.body;
        let caplen = usize_at(body, 12)?;
        let data_end = 20usize.checked_add(caplen).ok_or(WireError::BadLength)?;
        let data = body.get(20..data_end).ok_or(WireError::BadLength)?;
        let opts = body.get(pad4(data_end)..).unwrap_or(&[]);
        let mut comment = "";
        let mut direction = None;
        for (code, value) in Options(opts) {
            match code {
                option::COMMENT => comment = core::str::from_utf8(value).unwrap_or(""),
                option::EPB_FLAGS => {
                    let v = u32_at(value, 0)?;
                    direction = Direction::from_flags(v);
                }
                _ => {}
            }
        }
        Ok(Self {
            interface: u32_at(body, 0)?,
            timestamp_us: (u64::from(u32_at(body, 4)?) << 32) | u64::from(u32_at(body, 8)?),
            data,
            original_len: u32_at(body, 16)?,
            direction,
            comment,
        })
    }
}

/// Interface Statistics Block: frames delivered to the reader and frames
/// the capture lost.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InterfaceStatistics {
    /// Index of the interface.
    pub interface: u32,
    /// Microseconds since the Unix epoch.
    pub timestamp_us: u64,
    /// `isb_usrdeliv`: frames written.
    pub delivered: u64,
    /// `isb_osdrop`: frames the capture could not copy.
    pub dropped: u64,
}

impl InterfaceStatistics {
    /// Bytes [`emit`](Self::emit) writes.
    pub fn buffer_len(&self) -> usize {
        block_len(12 + 2 * 12, true)
    }

    /// Writes the block at the start of `buf`; returns its length.
    ///
    /// # Errors
    /// [`WireError::Truncated`] when `buf` is shorter than [`buffer_len`](Self::buffer_len).
    pub fn emit(&self, buf: &mut [u8]) -> Result<usize, WireError> {
        let len = self.buffer_len();
        let mut e = Emitter::new(buf, len)?;
        e.u32(ISB_TYPE);
        e.u32(len_u32(len));
        e.u32(self.interface);
        e.u32(u32::try_from(self.timestamp_us >> 32).unwrap_or(u32::MAX));
        e.u32(u32::try_from(self.timestamp_us & 0xffff_ffff).unwrap_or(0));
        e.option(option::ISB_OSDROP, &self.dropped.to_le_bytes());
        e.option(option::ISB_USRDELIV, &self.delivered.to_le_bytes());
        e.end_of_options();
        e.u32(len_u32(len));
        Ok(len)
    }

    /// Reads an Interface Statistics Block (absent counters read 0).
    ///
    /// # Errors
    /// `BadType` if `block` is another type, `Truncated` if it is short.
    pub fn parse(block: &Block<'_>) -> Result<Self, WireError> {
        if block.block_type != ISB_TYPE {
            return Err(WireError::BadType(0));
        }
        let body = block.body;
        let mut s = Self {
            interface: u32_at(body, 0)?,
            timestamp_us: (u64::from(u32_at(body, 4)?) << 32) | u64::from(u32_at(body, 8)?),
            delivered: 0,
            dropped: 0,
        };
        for (code, value) in Options(body.get(12..).unwrap_or(&[])) {
            let v = value
                .get(..8)
                .and_then(|b| <[u8; 8]>::try_from(b).ok())
                .map_or(0, u64::from_le_bytes);
            match code {
                option::ISB_OSDROP => s.dropped = v,
                option::ISB_USRDELIV => s.delivered = v,
                _ => {}
            }
        }
        Ok(s)
    }
}

/// One block of a little-endian section.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Block<'a> {
    /// Block type.
    pub block_type: u32,
    /// What lies between the leading and trailing lengths.
    pub body: &'a [u8],
}

impl<'a> Block<'a> {
    /// The total length of the block whose first 8 bytes are `head`, so a
    /// reader of a stream knows how much to read.
    ///
    /// # Errors
    /// `Truncated` if `head` is short; `BadLength` if the length is below
    /// 12 or not a multiple of 4.
    pub fn total_len(head: &[u8]) -> Result<usize, WireError> {
        let len = usize_at(head, 4)?;
        if len < BLOCK_OVERHEAD || len % 4 != 0 {
            return Err(WireError::BadLength);
        }
        Ok(len)
    }

    /// The block at the start of `buf` and its length.
    ///
    /// # Errors
    /// `Truncated` if `buf` holds less than the block; `BadLength` if its
    /// two lengths differ or are impossible.
    pub fn parse(buf: &'a [u8]) -> Result<(Self, usize), WireError> {
        let len = Self::total_len(buf)?;
        if buf.len() < len {
            return Err(WireError::Truncated {
                need: len,
                got: buf.len(),
            });
        }
        if usize_at(buf, len - 4)? != len {
            return Err(WireError::BadLength);
        }
        let block = Self {
            block_type: u32_at(buf, 0)?,
            body: buf.get(8..len - 4).unwrap_or(&[]),
        };
        Ok((block, len))
    }
}

/// Iterator over a block's options: (code, value); stops at the end
/// option or at the first option that does not fit.
struct Options<'a>(&'a [u8]);

impl<'a> Iterator for Options<'a> {
    type Item = (u16, &'a [u8]);

    fn next(&mut self) -> Option<Self::Item> {
        let code = u16::from_le_bytes(self.0.get(..2)?.try_into().ok()?);
        let len = usize::from(u16::from_le_bytes(self.0.get(2..4)?.try_into().ok()?));
        if code == option::END {
            return None;
        }
        let value = self.0.get(4..4 + len)?;
        self.0 = self.0.get(4 + pad4(len)..).unwrap_or(&[]);
        Some((code, value))
    }
}

fn u32_at(buf: &[u8], at: usize) -> Result<u32, WireError> {
    buf.get(at..at + 4)
        .and_then(|b| <[u8; 4]>::try_from(b).ok())
        .map(u32::from_le_bytes)
        .ok_or(WireError::Truncated {
            need: at + 4,
            got: buf.len(),
        })
}

fn usize_at(buf: &[u8], at: usize) -> Result<usize, WireError> {
    u32_at(buf, at).map(|v| usize::try_from(v).unwrap_or(usize::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;
    use hex_literal::hex;
    use proptest::prelude::*;

    fn emit_vec(len: usize, f: impl FnOnce(&mut [u8]) -> Result<usize, WireError>) -> Vec<u8> {
        let mut buf = vec![0xAA; len + 8];
        let n = f(&mut buf).unwrap();
        assert_eq!(n, len);
        buf.truncate(n);
        buf
    }

    #[test]
    fn section_header_layout() {
        let shb = SectionHeader { application: "xv" };
        let got = emit_vec(shb.buffer_len(), |b| shb.emit(b));
        let want = hex!(
            "0a0d0d0a 28000000 4d3c2b1a 0100 0000 ffffffffffffffff"
            "0400 0200 78760000" // shb_userappl "xv", padded
            "0000 0000"          // end of options
            "28000000"
        );
        assert_eq!(got, want);
    }

    #[test]
    fn interface_description_layout() {
        let idb = InterfaceDescription {
            name: "lan0",
            description: "abcde",
            snap_len: 2048,
        };
        let got = emit_vec(idb.buffer_len(), |b| idb.emit(b));
        let want = hex!(
            "01000000 2c000000 0100 0000 00080000"
            "0200 0400 6c616e30"         // if_name "lan0"
            "0300 0500 6162636465000000" // if_description, padded to 8
            "0000 0000"
            "2c000000"
        );
        assert_eq!(got, want);
    }

    #[test]
    fn enhanced_packet_layout_pads_data_and_comment() {
        let epb = EnhancedPacket {
            interface: 0,
            timestamp_us: 0x0000_0001_0000_0002,
            data: &[1, 2, 3, 4, 5],
            original_len: 60,
            direction: Some(Direction::Outbound),
            comment: "in",
        };
        let got = emit_vec(epb.buffer_len(), |b| epb.emit(b));
        let want = hex!(
            "06000000 3c000000 00000000 01000000 02000000 05000000 3c000000"
            "0102030405000000"   // data padded to 8
            "0100 0200 696e0000" // opt_comment "in"
            "0200 0400 02000000" // epb_flags outbound
            "0000 0000"
            "3c000000"
        );
        assert_eq!(got, want);
        let (block, n) = Block::parse(&got).unwrap();
        assert_eq!(n, got.len());
        assert_eq!(EnhancedPacket::parse(&block).unwrap(), epb);
    }

    #[test]
    fn packet_without_options_has_no_end_of_options() {
        let epb = EnhancedPacket {
            interface: 0,
            timestamp_us: 7,
            data: &[9; 4],
            original_len: 4,
            direction: None,
            comment: "",
        };
        assert_eq!(epb.buffer_len(), 12 + 20 + 4);
        let got = emit_vec(epb.buffer_len(), |b| epb.emit(b));
        let (block, _) = Block::parse(&got).unwrap();
        assert_eq!(EnhancedPacket::parse(&block).unwrap(), epb);
    }

    #[test]
    fn statistics_round_trip() {
        let isb = InterfaceStatistics {
            interface: 0,
            timestamp_us: 123_456,
            delivered: 10,
            dropped: 3,
        };
        let got = emit_vec(isb.buffer_len(), |b| isb.emit(b));
        assert_eq!(got.len() % 4, 0);
        let (block, _) = Block::parse(&got).unwrap();
        assert_eq!(InterfaceStatistics::parse(&block).unwrap(), isb);
    }

    #[test]
    fn short_buffer_is_truncated_not_a_panic() {
        let epb = EnhancedPacket {
            interface: 0,
            timestamp_us: 0,
            data: &[0; 60],
            original_len: 60,
            direction: Some(Direction::Inbound),
            comment: "x",
        };
        let mut buf = vec![0; epb.buffer_len() - 1];
        assert!(matches!(
            epb.emit(&mut buf),
            Err(WireError::Truncated { .. })
        ));
    }

    #[test]
    fn mismatched_trailing_length_is_refused() {
        let shb = SectionHeader { application: "" };
        let mut b = emit_vec(shb.buffer_len(), |b| shb.emit(b));
        let last = b.len() - 4;
        b[last] = 0;
        assert_eq!(Block::parse(&b), Err(WireError::BadLength));
    }

    proptest! {
        #[test]
        fn packets_round_trip_aligned(
            data in proptest::collection::vec(any::<u8>(), 0..300),
            comment in "[ -~]{0,80}",
            ts in any::<u64>(),
            out in any::<bool>(),
        ) {
            let epb = EnhancedPacket {
                interface: 0,
                timestamp_us: ts,
                data: &data,
                original_len: len_u32(data.len() + 5),
                direction: Some(if out { Direction::Outbound } else { Direction::Inbound }),
                comment: &comment,
            };
            let mut buf = vec![0; epb.buffer_len()];
            let n = epb.emit(&mut buf).unwrap();
            prop_assert_eq!(n % 4, 0);
            let (block, m) = Block::parse(&buf).unwrap();
            prop_assert_eq!(m, n);
            prop_assert_eq!(EnhancedPacket::parse(&block).unwrap(), epb);
            // Every strict prefix is incomplete, never a panic.
            for cut in [0, 4, 8, n / 2, n - 1] {
                prop_assert!(Block::parse(buf.get(..cut).unwrap()).is_err());
            }
        }

        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
            if let Ok((block, _)) = Block::parse(&bytes) {
                let _ = EnhancedPacket::parse(&block);
                let _ = InterfaceStatistics::parse(&block);
            }
        }
    }
}
