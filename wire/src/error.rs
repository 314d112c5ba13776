//! The one error type of the wire crate.
//!
//! Every parser returns a [`WireError`]; the fast path maps it to its drop
//! counter (the one list of drop reasons is `xvrrp_control::DropReason`). The enum is small and `Copy` so returning it costs nothing on
//! the fast path.

use core::fmt;

/// Why a frame was rejected (or could not be written).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum WireError {
    /// The buffer holds `got` bytes where `need` are required.
    Truncated {
        /// Bytes required.
        need: usize,
        /// Bytes available.
        got: usize,
    },
    /// IPv4/IPv6 header inconsistent: wrong IP version, IHL < 5, header longer
    /// than the datagram, or total length larger than the frame or smaller
    /// than the header.
    BadIpHeader,
    /// IPv4 header checksum wrong.
    BadIpChecksum,
    /// IP fragment (MF set, fragment offset non-zero, or an IPv6 Fragment
    /// header): never parsed as a complete message.
    Fragment,
    /// TTL / hop limit other than the one required (255 for VRRP).
    BadTtl(u8),
    /// VRRP version not 2 or 3 (or 2 over IPv6).
    BadVersion(u8),
    /// Unknown message type (VRRP type other than Advertisement, or an ICMP
    /// type the parser does not handle).
    BadType(u8),
    /// VRRP or ICMP checksum wrong.
    BadChecksum,
    /// VRRP length differs from what the address count implies (short, or
    /// trailing bytes).
    BadLength,
    /// VRRP address count not allowed (zero).
    BadAddrCount(u8),
    /// VRRP advertisement interval zero.
    BadInterval(u16),
    /// VRRPv2 authentication type other than 0 (no authentication).
    BadAuthType(u8),
    /// Source address multicast, broadcast, unspecified or loopback.
    BadSource,
    /// Destination address not the one expected (224.0.0.18 / ff02::12 in
    /// multicast mode, a unicast address in unicast mode).
    BadDestination,
    /// IP protocol / next header is not VRRP (112).
    NotVrrp,
    /// IP protocol is not the one the parser handles (e.g. not ICMP).
    UnexpectedProtocol(u8),
    /// ARP hardware/protocol type or address length other than Ethernet/IPv4.
    BadArp,
    /// Neighbour Solicitation / Advertisement invalid beyond its lengths and
    /// addresses (RFC 4861 §7.1): multicast target, an option of length
    /// zero or overrunning the message, a link-layer address option of the
    /// wrong size, a Source Link-Layer Address option from the unspecified
    /// source, or Solicited set on a multicast advertisement.
    BadNd,
    /// EtherType the parser does not handle.
    UnknownEtherType(u16),
}

impl fmt::Display for WireError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WireError::Truncated { need, got } => {
                write!(f, "truncated: need {need} bytes, got {got}")
            }
            WireError::BadIpHeader => f.write_str("malformed IP header"),
            WireError::BadIpChecksum => f.write_str("bad IPv4 header checksum"),
            WireError::Fragment => f.write_str("IP fragment"),
            WireError::BadTtl(ttl) => write!(f, "bad TTL/hop limit {ttl}"),
            WireError::BadVersion(v) => write!(f, "bad version {v}"),
            WireError::BadType(t) => write!(f, "bad message type {t}"),
            WireError::BadChecksum => f.write_str("bad checksum"),
            WireError::BadLength => f.write_str("length does not match the address count"),
            WireError::BadAddrCount(n) => write!(f, "bad address count {n}"),
            WireError::BadInterval(i) => write!(f, "bad advertisement interval {i}"),
            WireError::BadAuthType(t) => write!(f, "unsupported VRRPv2 auth type {t}"),
            WireError::BadSource => f.write_str("invalid source address"),
            WireError::BadDestination => f.write_str("unexpected destination address"),
            WireError::NotVrrp => f.write_str("IP protocol is not VRRP"),
            WireError::UnexpectedProtocol(p) => write!(f, "unexpected IP protocol {p}"),
            WireError::BadArp => f.write_str("malformed ARP packet"),
            WireError::BadNd => f.write_str("invalid neighbour discovery message"),
            WireError::UnknownEtherType(t) => write!(f, "unknown EtherType {t:#06x}"),
        }
    }
}

impl std::error::Error for WireError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_is_informative() {
        let e = WireError::Truncated { need: 20, got: 3 };
        assert_eq!(e.to_string(), "truncated: need 20 bytes, got 3");
        assert_eq!(WireError::BadTtl(254).to_string(), "bad TTL/hop limit 254");
        assert_eq!(
            WireError::UnknownEtherType(0x88cc).to_string(),
            "unknown EtherType 0x88cc"
        );
    }
}
