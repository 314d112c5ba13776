//! Zero-copy views and typed representations of the frames xvrrp reads and
//! writes: Ethernet, ARP, IPv4, IPv6, ICMPv4, ICMPv6 (Echo and Neighbour
//! Discovery) and VRRP (v2 and v3); and the pcapng blocks `xvrrp capture`
//! writes.
//!
//! The crate follows smoltcp's split: `XxxPacket<T: AsRef<[u8]>>` is a view
//! over a caller's buffer (getters on `AsRef`, setters on `AsMut`), and
//! `XxxRepr` is a typed, high-level form with `parse` / `emit` /
//! `buffer_len`. It has no dependencies and never allocates, so both the
//! AF_XDP fast path and the control thread use it.
//!
//! # Panic contract
//!
//! Nothing in this crate panics on any input, whatever the buffer length.
//! Accessors read through bounds-checked helpers: after `new_checked` (or a
//! successful `check_len`) every field they name is in bounds and the values
//! are exact; on a view built with `new_unchecked` over a too-short buffer a
//! getter returns zero (or an empty slice) for bytes that are absent, and a
//! setter leaves the buffer unchanged. `emit` expects a buffer of at least
//! `buffer_len()` bytes; the whole-frame builders in [`frames`] check that and
//! return [`WireError::Truncated`] instead.

#![cfg_attr(test, allow(clippy::unwrap_used))]

pub mod arp;
pub mod checksum;
pub mod error;
pub mod ethernet;
pub mod frames;
pub mod icmpv4;
pub mod icmpv6;
pub mod ipv4;
pub mod ipv6;
pub mod nd;
pub mod pcapng;
pub mod vrrp;

pub use arp::{ArpOperation, ArpPacket, ArpRepr};
pub use error::WireError;
pub use ethernet::{EtherType, EthernetAddress, EthernetFrame};
pub use icmpv4::{Icmpv4Packet, Icmpv4Repr};
pub use icmpv6::{Icmpv6Packet, Icmpv6Repr};
pub use ipv4::{Ipv4Packet, Ipv4Repr};
pub use ipv6::{Ipv6Packet, Ipv6Repr};
pub use nd::{parse_ipv6_nd, NaFlags, NdRepr};
pub use vrrp::{
    parse_ipv4_advert, parse_ipv6_advert, AddrList, ChecksumKind, Version, VrrpPacket, VrrpRepr,
    IPPROTO_VRRP, VRRP_V4_MCAST, VRRP_V4_MCAST_MAC, VRRP_V6_MCAST, VRRP_V6_MCAST_MAC,
};

/// Bounds-checked byte access shared by every view.
///
/// Reads of absent bytes yield zeros and writes to absent bytes do nothing, so
/// a view never panics even when built with `new_unchecked` over a short
/// buffer (see the crate's panic contract).
mod bytes {
    use core::ops::Range;

    /// The `N` bytes at `range`, or zeros if the buffer does not hold them.
    pub(crate) fn read<const N: usize>(buf: &[u8], range: Range<usize>) -> [u8; N] {
        buf.get(range)
            .and_then(|s| <[u8; N]>::try_from(s).ok())
            .unwrap_or([0; N])
    }

    /// Writes `value` at `range` if the buffer holds it.
    pub(crate) fn write<const N: usize>(buf: &mut [u8], range: Range<usize>, value: [u8; N]) {
        if let Some(dst) = buf
            .get_mut(range)
            .and_then(|s| <&mut [u8; N]>::try_from(s).ok())
        {
            *dst = value;
        }
    }

    /// The byte at `index`, or zero.
    pub(crate) fn read_u8(buf: &[u8], index: usize) -> u8 {
        buf.get(index).copied().unwrap_or(0)
    }

    /// Writes the byte at `index` if the buffer holds it.
    pub(crate) fn write_u8(buf: &mut [u8], index: usize, value: u8) {
        if let Some(b) = buf.get_mut(index) {
            *b = value;
        }
    }

    /// The big-endian `u16` at `range` (two bytes), or zero.
    pub(crate) fn read_u16(buf: &[u8], range: Range<usize>) -> u16 {
        u16::from_be_bytes(read(buf, range))
    }

    /// Writes a big-endian `u16` at `range` (two bytes) if the buffer holds it.
    pub(crate) fn write_u16(buf: &mut [u8], range: Range<usize>, value: u16) {
        write(buf, range, value.to_be_bytes());
    }

    /// `buf[range]`, clamped to the buffer (empty if `range` starts past it).
    pub(crate) fn slice(buf: &[u8], range: Range<usize>) -> &[u8] {
        let end = range.end.min(buf.len());
        buf.get(range.start..end).unwrap_or(&[])
    }

    /// `&mut buf[range]`, clamped to the buffer (empty if `range` starts past it).
    pub(crate) fn slice_mut(buf: &mut [u8], range: Range<usize>) -> &mut [u8] {
        let end = range.end.min(buf.len());
        buf.get_mut(range.start..end).unwrap_or(&mut [])
    }

    /// Copies `src` into `buf` at `start`, truncated to what fits.
    pub(crate) fn copy_into(buf: &mut [u8], start: usize, src: &[u8]) {
        let dst = slice_mut(buf, start..start.saturating_add(src.len()));
        let n = dst.len();
        if let (Some(d), Some(s)) = (dst.get_mut(..n), src.get(..n)) {
            d.copy_from_slice(s);
        }
    }
}
