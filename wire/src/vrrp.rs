//! VRRP advertisements: version 3 (RFC 9568 §5.1, IPv4 and IPv6) and
//! version 2 (RFC 3768 §5.1, IPv4 only), with the receive-side validation
//! ladder of RFC 9568 §7.1 / RFC 3768 §7.1.
//!
//! Version 3 (RFC 9568 §5.1):
//!
//! ```text
//!  0                   1                   2                   3
//!  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |                    IPv4 Fields or IPv6 Fields                 |
//! ...                                                             ...
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |Version| Type  | Virtual Rtr ID|   Priority    |Count IPvX Addr|
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |(rsvd) |     Max Adver Int     |          Checksum             |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |                                                               |
//! +                                                               +
//! |                       IPvX Address(es)                        |
//! +                                                               +
//! ...                                                             ...
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! ```
//!
//! Version 2 (RFC 3768 §5.1):
//!
//! ```text
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |Version| Type  | Virtual Rtr ID|   Priority    | Count IP Addrs|
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |   Auth Type   |   Adver Int   |          Checksum             |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |                         IP Address (1)                        |
//! ...                                                             ...
//! |                         IP Address (n)                        |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |                     Authentication Data (1)                   |
//! |                     Authentication Data (2)                   |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! ```
//!
//! Checksums (RFC 9568 §5.2.8, RFC 3768 §5.3.8): v2 covers the VRRP message
//! only. v3 over IPv6 adds the RFC 8200 §8.1 pseudo-header. v3 over IPv4 is
//! read two ways in the field: with the IPv4 pseudo-header (RFC 5798's
//! reading, keepalived and FRR) or over the message only (RFC 9568's text);
//! both are accepted on receive and [`ChecksumKind`] reports which matched.
//!
//! Panic contract: nothing here panics on any input (see the crate docs);
//! address counts up to 255 are bounded by the buffer, never allocated.

use core::fmt;
use core::slice::ChunksExact;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use crate::bytes;
use crate::checksum;
use crate::error::WireError;
use crate::ethernet::EthernetAddress;
use crate::ipv4::Ipv4Packet;
use crate::ipv6::{self, Ipv6Packet};

mod field {
    use core::ops::Range;
    pub(crate) const VER_TYPE: usize = 0;
    pub(crate) const VRID: usize = 1;
    pub(crate) const PRIORITY: usize = 2;
    pub(crate) const COUNT: usize = 3;
    /// v2: Auth Type.
    pub(crate) const AUTH_TYPE: usize = 4;
    /// v2: Adver Int (seconds).
    pub(crate) const ADVER_INT: usize = 5;
    /// v3: 4 reserved bits + 12-bit Max Adver Int (centiseconds).
    pub(crate) const MAX_ADVER_INT: Range<usize> = 4..6;
    pub(crate) const CHECKSUM: Range<usize> = 6..8;
}

/// IP protocol number (and IPv6 Next Header) of VRRP.
pub const IPPROTO_VRRP: u8 = 112;
/// The IPv4 VRRP multicast group, 224.0.0.18.
pub const VRRP_V4_MCAST: Ipv4Addr = Ipv4Addr::new(224, 0, 0, 18);
/// The Ethernet address of 224.0.0.18 (RFC 1112 §6.4 mapping).
pub const VRRP_V4_MCAST_MAC: EthernetAddress =
    EthernetAddress([0x01, 0x00, 0x5e, 0x00, 0x00, 0x12]);
/// The IPv6 VRRP multicast group, ff02::12.
pub const VRRP_V6_MCAST: Ipv6Addr = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 0x12);
/// The Ethernet address of ff02::12 (RFC 2464 §7 mapping).
pub const VRRP_V6_MCAST_MAC: EthernetAddress =
    EthernetAddress([0x33, 0x33, 0x00, 0x00, 0x00, 0x12]);
/// TTL / hop limit every advertisement carries (RFC 9568 §5.1.1.3).
pub const VRRP_TTL: u8 = 255;

/// Length of the fixed VRRP header.
pub const HEADER_LEN: usize = 8;
/// Length of the v2 Authentication Data trailer.
pub const V2_AUTH_DATA_LEN: usize = 8;
/// The only VRRP message type (RFC 9568 §5.2.2).
const TYPE_ADVERTISEMENT: u8 = 1;
/// Addresses one message can carry (the count is 8 bits).
const MAX_ADDRS: usize = 255;
/// v3 Max Adver Int occupies the low 12 bits; the top 4 are reserved.
const MAX_ADVER_INT_MASK: u16 = 0x0fff;

/// VRRP protocol version.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Version {
    /// RFC 3768 (IPv4 only; interval in seconds; auth trailer).
    V2,
    /// RFC 9568 (IPv4 and IPv6; interval in centiseconds).
    V3,
}

impl Version {
    /// The 4-bit version number on the wire.
    pub const fn number(self) -> u8 {
        match self {
            Version::V2 => 2,
            Version::V3 => 3,
        }
    }
}

impl core::fmt::Display for Version {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "{}", self.number())
    }
}

/// How a v3 advertisement's checksum is (or was) computed over IPv4.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ChecksumKind {
    /// Over the VRRP message only (RFC 9568's text; also the only v2 form).
    Rfc9568,
    /// With the IPv4 / IPv6 pseudo-header prepended (RFC 5798 reading,
    /// keepalived and FRR; always the case for v3 over IPv6).
    PseudoHeader,
}

impl ChecksumKind {
    /// The name used in the configuration file and in `status`.
    pub const fn name(self) -> &'static str {
        match self {
            ChecksumKind::Rfc9568 => "rfc9568",
            ChecksumKind::PseudoHeader => "pseudo-header",
        }
    }
}

/// The virtual addresses of an advertisement, without copying or allocating:
/// either the raw bytes of a received message or a caller's slice to emit.
#[derive(Clone, Copy)]
pub enum AddrList<'a> {
    /// IPv4 addresses as they appear on the wire (4 bytes each).
    V4Bytes(&'a [u8]),
    /// IPv6 addresses as they appear on the wire (16 bytes each).
    V6Bytes(&'a [u8]),
    /// IPv4 addresses from the caller.
    V4(&'a [Ipv4Addr]),
    /// IPv6 addresses from the caller.
    V6(&'a [Ipv6Addr]),
}

impl<'a> AddrList<'a> {
    /// Number of addresses (whole 4- or 16-byte addresses for the byte forms).
    pub fn len(&self) -> usize {
        match self {
            AddrList::V4Bytes(b) => b.len() / 4,
            AddrList::V6Bytes(b) => b.len() / 16,
            AddrList::V4(a) => a.len(),
            AddrList::V6(a) => a.len(),
        }
    }

    /// No addresses.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// IPv6 addresses (else IPv4).
    pub fn is_ipv6(&self) -> bool {
        matches!(self, AddrList::V6Bytes(_) | AddrList::V6(_))
    }

    /// Bytes per address on the wire: 4 or 16.
    pub fn addr_len(&self) -> usize {
        if self.is_ipv6() {
            16
        } else {
            4
        }
    }

    /// The IPv4 addresses (nothing for an IPv6 list).
    pub fn iter_v4(&self) -> Ipv4Iter<'a> {
        Ipv4Iter(match *self {
            AddrList::V4Bytes(b) => AddrIter::Bytes(b.chunks_exact(4)),
            AddrList::V4(a) => AddrIter::Addrs(a.iter()),
            AddrList::V6Bytes(_) | AddrList::V6(_) => AddrIter::Bytes([].chunks_exact(4)),
        })
    }

    /// The IPv6 addresses (nothing for an IPv4 list).
    pub fn iter_v6(&self) -> Ipv6Iter<'a> {
        Ipv6Iter(match *self {
            AddrList::V6Bytes(b) => AddrIter::Bytes(b.chunks_exact(16)),
            AddrList::V6(a) => AddrIter::Addrs(a.iter()),
            AddrList::V4Bytes(_) | AddrList::V4(_) => AddrIter::Bytes([].chunks_exact(16)),
        })
    }

    /// The addresses as [`IpAddr`]s, whichever the family.
    pub fn iter(&self) -> impl Iterator<Item = IpAddr> + 'a {
        self.iter_v4()
            .map(IpAddr::V4)
            .chain(self.iter_v6().map(IpAddr::V6))
    }

    /// Writes at most 255 addresses to `buf` (truncated to what fits).
    fn write_to(&self, buf: &mut [u8]) {
        let mut at = 0;
        for a in self.iter_v4().take(MAX_ADDRS) {
            bytes::copy_into(buf, at, &a.octets());
            at += 4;
        }
        for a in self.iter_v6().take(MAX_ADDRS) {
            bytes::copy_into(buf, at, &a.octets());
            at += 16;
        }
    }
}

/// Lists are equal when they hold the same addresses of the same family,
/// whatever their form (wire bytes or a caller's slice).
impl PartialEq for AddrList<'_> {
    fn eq(&self, other: &Self) -> bool {
        self.is_ipv6() == other.is_ipv6()
            && self.iter_v4().eq(other.iter_v4())
            && self.iter_v6().eq(other.iter_v6())
    }
}

impl Eq for AddrList<'_> {}

impl fmt::Debug for AddrList<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

enum AddrIter<'a, A> {
    Bytes(ChunksExact<'a, u8>),
    Addrs(core::slice::Iter<'a, A>),
}

/// Iterator over the IPv4 addresses of an [`AddrList`].
pub struct Ipv4Iter<'a>(AddrIter<'a, Ipv4Addr>);

impl Iterator for Ipv4Iter<'_> {
    type Item = Ipv4Addr;
    fn next(&mut self) -> Option<Ipv4Addr> {
        match &mut self.0 {
            AddrIter::Bytes(c) => c
                .next()
                .and_then(|b| <[u8; 4]>::try_from(b).ok())
                .map(Ipv4Addr::from),
            AddrIter::Addrs(a) => a.next().copied(),
        }
    }
}

/// Iterator over the IPv6 addresses of an [`AddrList`].
pub struct Ipv6Iter<'a>(AddrIter<'a, Ipv6Addr>);

impl Iterator for Ipv6Iter<'_> {
    type Item = Ipv6Addr;
    fn next(&mut self) -> Option<Ipv6Addr> {
        match &mut self.0 {
            AddrIter::Bytes(c) => c
                .next()
                .and_then(|b| <[u8; 16]>::try_from(b).ok())
                .map(Ipv6Addr::from),
            AddrIter::Addrs(a) => a.next().copied(),
        }
    }
}

/// A view over a VRRP message (the IP payload, bounded by the IP length).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VrrpPacket<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> VrrpPacket<T> {
    /// Wraps a buffer without checking it.
    pub const fn new_unchecked(buffer: T) -> VrrpPacket<T> {
        VrrpPacket { buffer }
    }

    /// Wraps a buffer after [`check_len`](Self::check_len).
    ///
    /// # Errors
    /// [`WireError::Truncated`] if shorter than 8 bytes.
    pub fn new_checked(buffer: T) -> Result<VrrpPacket<T>, WireError> {
        let p = Self::new_unchecked(buffer);
        p.check_len()?;
        Ok(p)
    }

    /// Checks that the 8-byte fixed header is present. The exact length
    /// depends on version and family and is checked by [`VrrpRepr::parse`].
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

    /// Version (high nibble of byte 0).
    pub fn version(&self) -> u8 {
        bytes::read_u8(self.buffer.as_ref(), field::VER_TYPE) >> 4
    }

    /// Type (low nibble of byte 0).
    pub fn msg_type(&self) -> u8 {
        bytes::read_u8(self.buffer.as_ref(), field::VER_TYPE) & 0x0f
    }

    /// Virtual Router ID.
    pub fn vrid(&self) -> u8 {
        bytes::read_u8(self.buffer.as_ref(), field::VRID)
    }

    /// Priority.
    pub fn priority(&self) -> u8 {
        bytes::read_u8(self.buffer.as_ref(), field::PRIORITY)
    }

    /// Address count.
    pub fn addr_count(&self) -> u8 {
        bytes::read_u8(self.buffer.as_ref(), field::COUNT)
    }

    /// v2 Auth Type.
    pub fn auth_type(&self) -> u8 {
        bytes::read_u8(self.buffer.as_ref(), field::AUTH_TYPE)
    }

    /// v2 Adver Int, in seconds.
    pub fn adver_int(&self) -> u8 {
        bytes::read_u8(self.buffer.as_ref(), field::ADVER_INT)
    }

    /// v3 Max Adver Int in centiseconds (reserved bits masked off).
    pub fn max_advert_int(&self) -> u16 {
        bytes::read_u16(self.buffer.as_ref(), field::MAX_ADVER_INT) & MAX_ADVER_INT_MASK
    }

    /// v3 reserved bits (top 4 bits of byte 4), which receivers ignore.
    pub fn reserved(&self) -> u8 {
        bytes::read_u8(self.buffer.as_ref(), field::AUTH_TYPE) >> 4
    }

    /// Checksum field.
    pub fn checksum(&self) -> u16 {
        bytes::read_u16(self.buffer.as_ref(), field::CHECKSUM)
    }

    /// Everything after the fixed header: addresses, then (v2) the
    /// authentication data.
    pub fn body(&self) -> &[u8] {
        let b = self.buffer.as_ref();
        bytes::slice(b, HEADER_LEN..b.len())
    }

    /// Whether the checksum verifies when computed as `kind` with addresses
    /// `src`/`dst` (used only for the pseudo-header, which needs both of one
    /// family).
    pub fn verify_checksum(&self, kind: ChecksumKind, src: IpAddr, dst: IpAddr) -> bool {
        let b = self.buffer.as_ref();
        let msg = checksum::sum(b);
        match kind {
            ChecksumKind::Rfc9568 => checksum::verifies(msg),
            ChecksumKind::PseudoHeader => {
                pseudo_header(src, dst, b.len()).is_some_and(|p| checksum::verifies(msg + p))
            }
        }
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> VrrpPacket<T> {
    /// Sets version and type.
    pub fn set_version_and_type(&mut self, version: u8, msg_type: u8) {
        bytes::write_u8(
            self.buffer.as_mut(),
            field::VER_TYPE,
            (version << 4) | (msg_type & 0x0f),
        );
    }

    /// Sets the Virtual Router ID.
    pub fn set_vrid(&mut self, v: u8) {
        bytes::write_u8(self.buffer.as_mut(), field::VRID, v);
    }

    /// Sets the priority.
    pub fn set_priority(&mut self, v: u8) {
        bytes::write_u8(self.buffer.as_mut(), field::PRIORITY, v);
    }

    /// Sets the address count.
    pub fn set_addr_count(&mut self, v: u8) {
        bytes::write_u8(self.buffer.as_mut(), field::COUNT, v);
    }

    /// Sets the v2 Auth Type.
    pub fn set_auth_type(&mut self, v: u8) {
        bytes::write_u8(self.buffer.as_mut(), field::AUTH_TYPE, v);
    }

    /// Sets the v2 Adver Int (seconds).
    pub fn set_adver_int(&mut self, v: u8) {
        bytes::write_u8(self.buffer.as_mut(), field::ADVER_INT, v);
    }

    /// Sets the v3 Max Adver Int (centiseconds, low 12 bits) with the
    /// reserved bits zero.
    pub fn set_max_advert_int(&mut self, v: u16) {
        bytes::write_u16(
            self.buffer.as_mut(),
            field::MAX_ADVER_INT,
            v & MAX_ADVER_INT_MASK,
        );
    }

    /// Sets the checksum field.
    pub fn set_checksum(&mut self, v: u16) {
        bytes::write_u16(self.buffer.as_mut(), field::CHECKSUM, v);
    }

    /// Mutable body (after the fixed header).
    pub fn body_mut(&mut self) -> &mut [u8] {
        let b = self.buffer.as_mut();
        let len = b.len();
        bytes::slice_mut(b, HEADER_LEN..len)
    }

    /// Computes and writes the checksum over the whole buffer as `kind`
    /// (a pseudo-header over mixed address families falls back to the
    /// message-only form).
    pub fn fill_checksum(&mut self, kind: ChecksumKind, src: IpAddr, dst: IpAddr) {
        self.set_checksum(0);
        let b = self.buffer.as_ref();
        let mut sum = checksum::sum(b);
        if kind == ChecksumKind::PseudoHeader {
            sum += pseudo_header(src, dst, b.len()).unwrap_or(0);
        }
        self.set_checksum(checksum::finish(sum));
    }
}

/// Pseudo-header partial sum for a VRRP message of `len` bytes, or `None`
/// if the addresses are not of one family.
fn pseudo_header(src: IpAddr, dst: IpAddr, len: usize) -> Option<u32> {
    match (src, dst) {
        (IpAddr::V4(s), IpAddr::V4(d)) => Some(checksum::pseudo_header_v4(
            s,
            d,
            IPPROTO_VRRP,
            u16::try_from(len).ok()?,
        )),
        (IpAddr::V6(s), IpAddr::V6(d)) => Some(checksum::pseudo_header_v6(
            s,
            d,
            IPPROTO_VRRP,
            u32::try_from(len).ok()?,
        )),
        _ => None,
    }
}

/// A parsed VRRP advertisement. Derived fields (count, checksum, length,
/// type) are not kept: [`emit`](Self::emit) computes them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VrrpRepr<'a> {
    /// Protocol version.
    pub version: Version,
    /// Virtual Router ID (0 is not rejected here; the control thread counts
    /// it as an unknown VRID).
    pub vrid: u8,
    /// Priority (0 = master is stepping down, 255 = address owner).
    pub priority: u8,
    /// v3: Max Adver Int in centiseconds (12 bits; reserved bits masked on
    /// parse, zero on emit). v2: the 8-bit Adver Int in seconds.
    pub max_advert_int: u16,
    /// Virtual addresses.
    pub addresses: AddrList<'a>,
}

impl<'a> VrrpRepr<'a> {
    /// Parses and validates a VRRP message whose IP header carried `src` and
    /// `dst` (they pick the address family and feed the pseudo-header).
    ///
    /// Checks, in this order (earliest defect wins):
    /// 1. length ≥ 8 → [`WireError::Truncated`];
    /// 2. version 3, or 2 over IPv4 → else [`WireError::BadVersion`];
    /// 3. type 1 (Advertisement) → else [`WireError::BadType`];
    /// 4. address count ≥ 1 → else [`WireError::BadAddrCount`] (applied to v2
    ///    too: a v2 virtual router without an address is meaningless);
    /// 5. length exactly 8 + count × (4 | 16), + 8 for v2's authentication
    ///    data → else [`WireError::BadLength`] (short and trailing bytes alike);
    /// 6. interval ≠ 0 (v3 after masking the reserved bits) → else
    ///    [`WireError::BadInterval`];
    /// 7. v2 Auth Type 0 → else [`WireError::BadAuthType`];
    /// 8. checksum → else [`WireError::BadChecksum`]: v2 over the message only;
    ///    v3/IPv4 message-only first, then with the pseudo-header; v3/IPv6
    ///    with the IPv6 pseudo-header only.
    ///
    /// Returns the form that matched ([`ChecksumKind::Rfc9568`] for v2).
    ///
    /// # Errors
    /// As listed above.
    pub fn parse(
        packet: &VrrpPacket<&'a [u8]>,
        src: IpAddr,
        dst: IpAddr,
    ) -> Result<(VrrpRepr<'a>, ChecksumKind), WireError> {
        packet.check_len()?;
        let ipv6 = src.is_ipv6();
        let version = match packet.version() {
            3 => Version::V3,
            2 if !ipv6 => Version::V2,
            v => return Err(WireError::BadVersion(v)),
        };
        let msg_type = packet.msg_type();
        if msg_type != TYPE_ADVERTISEMENT {
            return Err(WireError::BadType(msg_type));
        }
        let count = packet.addr_count();
        if count == 0 {
            return Err(WireError::BadAddrCount(count));
        }
        let addr_len = if ipv6 { 16 } else { 4 };
        let addrs_len = usize::from(count) * addr_len;
        let auth_len = if version == Version::V2 {
            V2_AUTH_DATA_LEN
        } else {
            0
        };
        let buf: &'a [u8] = packet.into_inner();
        if buf.len() != HEADER_LEN + addrs_len + auth_len {
            return Err(WireError::BadLength);
        }
        let interval = match version {
            Version::V2 => u16::from(packet.adver_int()),
            Version::V3 => packet.max_advert_int(),
        };
        if interval == 0 {
            return Err(WireError::BadInterval(interval));
        }
        if version == Version::V2 && packet.auth_type() != 0 {
            return Err(WireError::BadAuthType(packet.auth_type()));
        }
        let kind = match (version, ipv6) {
            (Version::V2, _) if packet.verify_checksum(ChecksumKind::Rfc9568, src, dst) => {
                ChecksumKind::Rfc9568
            }
            (Version::V3, false) if packet.verify_checksum(ChecksumKind::Rfc9568, src, dst) => {
                ChecksumKind::Rfc9568
            }
            (Version::V3, _) if packet.verify_checksum(ChecksumKind::PseudoHeader, src, dst) => {
                ChecksumKind::PseudoHeader
            }
            _ => return Err(WireError::BadChecksum),
        };
        let raw = bytes::slice(buf, HEADER_LEN..HEADER_LEN + addrs_len);
        let addresses = if ipv6 {
            AddrList::V6Bytes(raw)
        } else {
            AddrList::V4Bytes(raw)
        };
        Ok((
            VrrpRepr {
                version,
                vrid: packet.vrid(),
                priority: packet.priority(),
                max_advert_int: interval,
                addresses,
            },
            kind,
        ))
    }

    /// Bytes [`emit`](Self::emit) writes: 8 + addresses (at most 255)
    /// + 8 for v2.
    pub fn buffer_len(&self) -> usize {
        let addrs = self.addresses.len().min(MAX_ADDRS) * self.addresses.addr_len();
        let auth = if self.version == Version::V2 {
            V2_AUTH_DATA_LEN
        } else {
            0
        };
        HEADER_LEN + addrs + auth
    }

    /// Writes the message into the first [`buffer_len`](Self::buffer_len)
    /// bytes of `packet` and fills the checksum.
    ///
    /// `checksum` only matters for v3 over IPv4; v2 is always message-only
    /// and v3 over IPv6 always uses the pseudo-header. `src`/`dst` are the
    /// addresses the IP header will carry. A v2 interval above 255 s is
    /// written as 255; at most 255 addresses are written.
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(
        &self,
        packet: &mut VrrpPacket<T>,
        checksum: ChecksumKind,
        src: IpAddr,
        dst: IpAddr,
    ) {
        let len = self.buffer_len();
        let mut p = VrrpPacket::new_unchecked(bytes::slice_mut(packet.buffer.as_mut(), 0..len));
        p.set_version_and_type(self.version.number(), TYPE_ADVERTISEMENT);
        p.set_vrid(self.vrid);
        p.set_priority(self.priority);
        p.set_addr_count(u8::try_from(self.addresses.len()).unwrap_or(u8::MAX));
        let kind = match self.version {
            Version::V2 => {
                p.set_auth_type(0);
                p.set_adver_int(u8::try_from(self.max_advert_int).unwrap_or(u8::MAX));
                ChecksumKind::Rfc9568
            }
            Version::V3 => {
                p.set_max_advert_int(self.max_advert_int);
                if src.is_ipv6() {
                    ChecksumKind::PseudoHeader
                } else {
                    checksum
                }
            }
        };
        let body = p.body_mut();
        body.fill(0);
        self.addresses.write_to(body);
        p.fill_checksum(kind, src, dst);
    }
}

/// Whether `a` can never be the source of an advertisement.
fn bad_source_v4(a: Ipv4Addr) -> bool {
    a.is_multicast() || a.is_broadcast() || a.is_unspecified() || a.is_loopback()
}

/// Parses and validates an IPv4 datagram carrying a VRRP advertisement
/// (v2 or v3). `expect_multicast` selects the destination rule: 224.0.0.18,
/// or (unicast peers) any non-multicast, non-broadcast address.
///
/// Checks, in this order (earliest defect wins):
/// 1. [`Ipv4Packet::check_len`] → [`WireError::Truncated`] /
///    [`WireError::BadIpHeader`]; IP version 4 → [`WireError::BadIpHeader`];
/// 2. header checksum → [`WireError::BadIpChecksum`];
/// 3. not a fragment (MF clear, offset 0) → [`WireError::Fragment`];
/// 4. protocol 112 → [`WireError::NotVrrp`];
/// 5. source not multicast, broadcast, 0.0.0.0 or loopback →
///    [`WireError::BadSource`];
/// 6. destination as `expect_multicast` says → [`WireError::BadDestination`];
/// 7. TTL 255 → [`WireError::BadTtl`];
/// 8. the VRRP ladder of [`VrrpRepr::parse`] on the payload bounded by Total
///    Length (Ethernet padding is ignored).
///
/// # Errors
/// As listed above.
pub fn parse_ipv4_advert<'a>(
    ip: &Ipv4Packet<&'a [u8]>,
    expect_multicast: bool,
) -> Result<(VrrpRepr<'a>, ChecksumKind), WireError> {
    ip.check_len()?;
    if ip.version() != 4 {
        return Err(WireError::BadIpHeader);
    }
    if !ip.verify_checksum() {
        return Err(WireError::BadIpChecksum);
    }
    if ip.is_fragment() {
        return Err(WireError::Fragment);
    }
    if ip.protocol() != IPPROTO_VRRP {
        return Err(WireError::NotVrrp);
    }
    let src = ip.src_addr();
    if bad_source_v4(src) {
        return Err(WireError::BadSource);
    }
    let dst = ip.dst_addr();
    let dst_ok = if expect_multicast {
        dst == VRRP_V4_MCAST
    } else {
        !dst.is_multicast() && !dst.is_broadcast() && !dst.is_unspecified()
    };
    if !dst_ok {
        return Err(WireError::BadDestination);
    }
    if ip.ttl() != VRRP_TTL {
        return Err(WireError::BadTtl(ip.ttl()));
    }
    let range = ip.payload_range();
    let buf: &'a [u8] = ip.into_inner();
    let payload = bytes::slice(buf, range);
    VrrpRepr::parse(
        &VrrpPacket::new_unchecked(payload),
        IpAddr::V4(src),
        IpAddr::V4(dst),
    )
}

/// Parses and validates an IPv6 packet carrying a VRRPv3 advertisement.
/// `expect_multicast` selects the destination rule: ff02::12, or (unicast
/// peers) any non-multicast, specified address.
///
/// Checks, in this order (earliest defect wins):
/// 1. [`Ipv6Packet::check_len`] → [`WireError::Truncated`] /
///    [`WireError::BadIpHeader`]; IP version 6 → [`WireError::BadIpHeader`];
/// 2. Next Header not a Fragment header → [`WireError::Fragment`];
/// 3. Next Header 112 → [`WireError::NotVrrp`] (adverts carry no extension
///    headers);
/// 4. source not multicast, :: or ::1 → [`WireError::BadSource`];
/// 5. destination as `expect_multicast` says → [`WireError::BadDestination`];
/// 6. hop limit 255 → [`WireError::BadTtl`];
/// 7. the VRRP ladder of [`VrrpRepr::parse`] (version 2 is
///    [`WireError::BadVersion`]: VRRPv2 is IPv4 only).
///
/// # Errors
/// As listed above.
pub fn parse_ipv6_advert<'a>(
    ip: &Ipv6Packet<&'a [u8]>,
    expect_multicast: bool,
) -> Result<VrrpRepr<'a>, WireError> {
    ip.check_len()?;
    if ip.version() != 6 {
        return Err(WireError::BadIpHeader);
    }
    if ip.next_header() == ipv6::NEXT_HEADER_FRAGMENT {
        return Err(WireError::Fragment);
    }
    if ip.next_header() != IPPROTO_VRRP {
        return Err(WireError::NotVrrp);
    }
    let src = ip.src_addr();
    if src.is_multicast() || src.is_unspecified() || src.is_loopback() {
        return Err(WireError::BadSource);
    }
    let dst = ip.dst_addr();
    let dst_ok = if expect_multicast {
        dst == VRRP_V6_MCAST
    } else {
        !dst.is_multicast() && !dst.is_unspecified()
    };
    if !dst_ok {
        return Err(WireError::BadDestination);
    }
    if ip.hop_limit() != VRRP_TTL {
        return Err(WireError::BadTtl(ip.hop_limit()));
    }
    let range = ip.payload_range();
    let buf: &'a [u8] = ip.into_inner();
    let payload = bytes::slice(buf, range);
    VrrpRepr::parse(
        &VrrpPacket::new_unchecked(payload),
        IpAddr::V6(src),
        IpAddr::V6(dst),
    )
    .map(|(r, _)| r)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SRC: IpAddr = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 2));
    const DST: IpAddr = IpAddr::V4(VRRP_V4_MCAST);

    #[test]
    fn addr_list_forms_compare_equal() {
        let addrs = [Ipv4Addr::new(192, 0, 2, 1), Ipv4Addr::new(192, 0, 2, 9)];
        let raw = [192, 0, 2, 1, 192, 0, 2, 9];
        assert_eq!(AddrList::V4(&addrs), AddrList::V4Bytes(&raw));
        assert_ne!(AddrList::V4(&addrs[..1]), AddrList::V4Bytes(&raw));
        assert_ne!(AddrList::V4(&[]), AddrList::V6(&[]));
        assert_eq!(AddrList::V4Bytes(&raw).len(), 2);
        assert_eq!(AddrList::V4Bytes(&raw).iter_v6().count(), 0);
        assert_eq!(
            format!("{:?}", AddrList::V4(&addrs)),
            "[192.0.2.1, 192.0.2.9]"
        );
    }

    #[test]
    fn v3_reserved_bits_masked_and_zero_on_emit() {
        let addrs = [Ipv4Addr::new(192, 0, 2, 1)];
        let r = VrrpRepr {
            version: Version::V3,
            vrid: 1,
            priority: 100,
            max_advert_int: 0xf064,
            addresses: AddrList::V4(&addrs),
        };
        let mut buf = [0u8; 12];
        r.emit(
            &mut VrrpPacket::new_unchecked(&mut buf[..]),
            ChecksumKind::Rfc9568,
            SRC,
            DST,
        );
        assert_eq!(&buf[4..6], &[0x00, 0x64]);
        // Set the reserved bits on the wire (fixing the checksum): masked.
        let mut p = VrrpPacket::new_unchecked(&mut buf[..]);
        p.set_auth_type(0xf0);
        p.fill_checksum(ChecksumKind::Rfc9568, SRC, DST);
        let (parsed, _) = VrrpRepr::parse(&VrrpPacket::new_unchecked(&buf[..]), SRC, DST).unwrap();
        assert_eq!(parsed.max_advert_int, 100);
    }

    #[test]
    fn v2_interval_saturates_on_emit() {
        let addrs = [Ipv4Addr::new(192, 0, 2, 1)];
        let r = VrrpRepr {
            version: Version::V2,
            vrid: 1,
            priority: 100,
            max_advert_int: 300,
            addresses: AddrList::V4(&addrs),
        };
        let mut buf = [0u8; 20];
        r.emit(
            &mut VrrpPacket::new_unchecked(&mut buf[..]),
            ChecksumKind::PseudoHeader,
            SRC,
            DST,
        );
        assert_eq!(buf[5], 255);
        let (_, kind) = VrrpRepr::parse(&VrrpPacket::new_unchecked(&buf[..]), SRC, DST).unwrap();
        assert_eq!(kind, ChecksumKind::Rfc9568);
    }

    #[test]
    fn count_255_ipv6_bounded() {
        let addrs = [Ipv6Addr::LOCALHOST; 300];
        let src = IpAddr::V6("fe80::1".parse().unwrap());
        let dst = IpAddr::V6(VRRP_V6_MCAST);
        let r = VrrpRepr {
            version: Version::V3,
            vrid: 9,
            priority: 1,
            max_advert_int: 4095,
            addresses: AddrList::V6(&addrs),
        };
        assert_eq!(r.buffer_len(), 8 + 255 * 16);
        let mut buf = vec![0u8; r.buffer_len()];
        r.emit(
            &mut VrrpPacket::new_unchecked(&mut buf[..]),
            ChecksumKind::Rfc9568,
            src,
            dst,
        );
        let (p, kind) = VrrpRepr::parse(&VrrpPacket::new_unchecked(&buf[..]), src, dst).unwrap();
        assert_eq!(kind, ChecksumKind::PseudoHeader);
        assert_eq!(p.addresses.len(), 255);
    }
}
