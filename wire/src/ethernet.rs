//! Ethernet II frames (IEEE 802.3 with an EtherType), and MAC addresses,
//! including the VRRP virtual MACs of RFC 9568 §7.3.
//!
//! ```text
//!  0                   1                   2                   3
//!  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |                    Destination MAC address                    |
//! +                               +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |                               |                               |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+                               +
//! |                      Source MAC address                       |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |           EtherType           |  Payload ...
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! ```
//!
//! VLAN tags are not parsed: a tagged frame reports [`EtherType::VLAN`].
//! Panic contract: see the crate documentation; accessors never panic.

use core::fmt;
use core::str::FromStr;

use crate::bytes;
use crate::error::WireError;

mod field {
    use core::ops::Range;
    pub(crate) const DST: Range<usize> = 0..6;
    pub(crate) const SRC: Range<usize> = 6..12;
    pub(crate) const ETHERTYPE: Range<usize> = 12..14;
}

/// Length of an untagged Ethernet header.
pub const HEADER_LEN: usize = 14;

/// Minimum Ethernet frame length without the FCS; shorter frames are padded.
pub const MIN_FRAME_LEN: usize = 60;

/// A 48-bit MAC address.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct EthernetAddress(pub [u8; 6]);

impl EthernetAddress {
    /// ff:ff:ff:ff:ff:ff.
    pub const BROADCAST: EthernetAddress = EthernetAddress([0xff; 6]);
    /// 00:00:00:00:00:00 (the ARP request's unknown target).
    pub const ZERO: EthernetAddress = EthernetAddress([0; 6]);

    /// The IPv4 VRRP virtual MAC 00:00:5e:00:01:`vrid` (RFC 9568 §7.3).
    pub const fn vrrp_v4(vrid: u8) -> EthernetAddress {
        EthernetAddress([0x00, 0x00, 0x5e, 0x00, 0x01, vrid])
    }

    /// The IPv6 VRRP virtual MAC 00:00:5e:00:02:`vrid` (RFC 9568 §7.3).
    pub const fn vrrp_v6(vrid: u8) -> EthernetAddress {
        EthernetAddress([0x00, 0x00, 0x5e, 0x00, 0x02, vrid])
    }

    /// Group bit set (multicast or broadcast).
    pub const fn is_multicast(&self) -> bool {
        self.0[0] & 0x01 != 0
    }

    /// ff:ff:ff:ff:ff:ff.
    pub fn is_broadcast(&self) -> bool {
        *self == Self::BROADCAST
    }

    /// Neither multicast nor broadcast.
    pub const fn is_unicast(&self) -> bool {
        !self.is_multicast()
    }

    /// The octets.
    pub const fn octets(&self) -> [u8; 6] {
        self.0
    }
}

impl fmt::Display for EthernetAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let [a, b, c, d, e, g] = self.0;
        write!(f, "{a:02x}:{b:02x}:{c:02x}:{d:02x}:{e:02x}:{g:02x}")
    }
}

/// A string that is not six hex octets separated by `:` or `-`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ParseEthernetAddressError;

impl fmt::Display for ParseEthernetAddressError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("invalid MAC address (expected aa:bb:cc:dd:ee:ff)")
    }
}

impl std::error::Error for ParseEthernetAddressError {}

impl FromStr for EthernetAddress {
    type Err = ParseEthernetAddressError;

    /// Parses `aa:bb:cc:dd:ee:ff` or `aa-bb-cc-dd-ee-ff` (either case).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let sep = if s.contains('-') { '-' } else { ':' };
        let mut out = [0u8; 6];
        let mut parts = s.split(sep);
        for o in &mut out {
            let p = parts.next().ok_or(ParseEthernetAddressError)?;
            if p.len() != 2 || !p.bytes().all(|b| b.is_ascii_hexdigit()) {
                return Err(ParseEthernetAddressError);
            }
            *o = u8::from_str_radix(p, 16).map_err(|_| ParseEthernetAddressError)?;
        }
        if parts.next().is_some() {
            return Err(ParseEthernetAddressError);
        }
        Ok(EthernetAddress(out))
    }
}

/// An EtherType value; the associated constants name the ones xvrrp handles.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct EtherType(pub u16);

impl EtherType {
    /// IPv4.
    pub const IPV4: EtherType = EtherType(0x0800);
    /// ARP.
    pub const ARP: EtherType = EtherType(0x0806);
    /// IPv6.
    pub const IPV6: EtherType = EtherType(0x86dd);
    /// IEEE 802.1Q VLAN tag.
    pub const VLAN: EtherType = EtherType(0x8100);
}

impl fmt::Display for EtherType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:#06x}", self.0)
    }
}

/// A view over an Ethernet II frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EthernetFrame<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> EthernetFrame<T> {
    /// Wraps a buffer without checking its length.
    pub const fn new_unchecked(buffer: T) -> EthernetFrame<T> {
        EthernetFrame { buffer }
    }

    /// Wraps a buffer after [`check_len`](Self::check_len).
    ///
    /// # Errors
    /// [`WireError::Truncated`] if the buffer is shorter than the header.
    pub fn new_checked(buffer: T) -> Result<EthernetFrame<T>, WireError> {
        let f = Self::new_unchecked(buffer);
        f.check_len()?;
        Ok(f)
    }

    /// Checks that the 14-byte header is present.
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

    /// Destination MAC.
    pub fn dst_addr(&self) -> EthernetAddress {
        EthernetAddress(bytes::read(self.buffer.as_ref(), field::DST))
    }

    /// Source MAC.
    pub fn src_addr(&self) -> EthernetAddress {
        EthernetAddress(bytes::read(self.buffer.as_ref(), field::SRC))
    }

    /// EtherType.
    pub fn ethertype(&self) -> EtherType {
        EtherType(bytes::read_u16(self.buffer.as_ref(), field::ETHERTYPE))
    }

    /// Everything after the header (including any Ethernet padding).
    pub fn payload(&self) -> &[u8] {
        let b = self.buffer.as_ref();
        bytes::slice(b, HEADER_LEN..b.len())
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> EthernetFrame<T> {
    /// Sets the destination MAC.
    pub fn set_dst_addr(&mut self, addr: EthernetAddress) {
        bytes::write(self.buffer.as_mut(), field::DST, addr.0);
    }

    /// Sets the source MAC.
    pub fn set_src_addr(&mut self, addr: EthernetAddress) {
        bytes::write(self.buffer.as_mut(), field::SRC, addr.0);
    }

    /// Sets the EtherType.
    pub fn set_ethertype(&mut self, ethertype: EtherType) {
        bytes::write_u16(self.buffer.as_mut(), field::ETHERTYPE, ethertype.0);
    }

    /// Mutable payload (everything after the header).
    pub fn payload_mut(&mut self) -> &mut [u8] {
        let b = self.buffer.as_mut();
        let len = b.len();
        bytes::slice_mut(b, HEADER_LEN..len)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vmacs_and_display() {
        assert_eq!(EthernetAddress::vrrp_v4(7).to_string(), "00:00:5e:00:01:07");
        assert_eq!(
            EthernetAddress::vrrp_v6(255).to_string(),
            "00:00:5e:00:02:ff"
        );
        assert!(EthernetAddress::BROADCAST.is_multicast());
        assert!(EthernetAddress::BROADCAST.is_broadcast());
        assert!(EthernetAddress([0x01, 0, 0x5e, 0, 0, 0x12]).is_multicast());
        assert!(EthernetAddress::vrrp_v4(1).is_unicast());
    }

    #[test]
    fn from_str_round_trips_and_rejects_garbage() {
        let m: EthernetAddress = "00:00:5E:00:01:0a".parse().unwrap();
        assert_eq!(m, EthernetAddress::vrrp_v4(10));
        assert_eq!("00-00-5e-00-01-0a".parse::<EthernetAddress>().unwrap(), m);
        for bad in [
            "",
            "00:00:5e:00:01",
            "00:00:5e:00:01:0a:00",
            "0:00:5e:00:01:0a",
            "zz:00:5e:00:01:0a",
            "00:00:5e:00:01:+a",
        ] {
            assert!(bad.parse::<EthernetAddress>().is_err(), "{bad}");
        }
    }

    #[test]
    fn frame_accessors() {
        let mut buf = [0u8; 20];
        let mut f = EthernetFrame::new_checked(&mut buf[..]).unwrap();
        f.set_dst_addr(EthernetAddress::BROADCAST);
        f.set_src_addr(EthernetAddress::vrrp_v4(1));
        f.set_ethertype(EtherType::ARP);
        f.payload_mut()[0] = 0xaa;
        let f = EthernetFrame::new_checked(&buf[..]).unwrap();
        assert_eq!(f.dst_addr(), EthernetAddress::BROADCAST);
        assert_eq!(f.src_addr(), EthernetAddress::vrrp_v4(1));
        assert_eq!(f.ethertype(), EtherType::ARP);
        assert_eq!(f.payload(), &[0xaa, 0, 0, 0, 0, 0]);
        assert_eq!(
            EthernetFrame::new_checked(&buf[..13]).unwrap_err(),
            WireError::Truncated { need: 14, got: 13 }
        );
        // Unchecked views over short buffers read zeros instead of panicking.
        let short = EthernetFrame::new_unchecked(&buf[..3]);
        assert_eq!(short.ethertype(), EtherType(0));
        assert!(short.payload().is_empty());
    }
}
