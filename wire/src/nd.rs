//! IPv6 Neighbour Discovery: Neighbour Solicitation and Advertisement
//! (RFC 4861 §4.3, §4.4, §7.1), the link-layer address options (RFC 4861
//! §4.6.1 with RFC 2464 §6 for Ethernet), and the address mappings a VRRP
//! master and the fast path's resolver need (solicited-node groups, IPv6
//! multicast MACs, EUI-64 link-local addresses).
//!
//! ```text
//! Neighbour Solicitation (135)        Neighbour Advertisement (136)
//! +-------+-------+---------------+   +-------+-------+---------------+
//! | Type  | Code  |   Checksum    |   | Type  | Code  |   Checksum    |
//! +-------+-------+---------------+   +-+-+-+---------+---------------+
//! |           Reserved            |   |R|S|O|       Reserved          |
//! +-------------------------------+   +-+-+-+-------------------------+
//! |   Target Address (128 bits)   |   |   Target Address (128 bits)   |
//! +-------------------------------+   +-------------------------------+
//! |   Options ...                     |   Options ...
//!
//! Source / Target Link-Layer Address option (types 1 / 2) on Ethernet:
//! +-------+-------+-----------------------------------------------+
//! | Type  |Len = 1|            Link-Layer Address (48 bits)       |
//! +-------+-------+-----------------------------------------------+
//! ```
//!
//! A VRRP master answers solicitations for its virtual IPv6 addresses from
//! the virtual MAC with R, S and O set and a Target Link-Layer Address
//! option, and announces them with unsolicited advertisements (RFC 9568
//! §6.4.3, §8.2); [`crate::frames`] builds those frames from these types.
//!
//! Panic contract: nothing here panics on any input; the option walk
//! consumes at least 8 bytes per step, so it is bounded by the message.

use core::ops::BitOr;
use std::net::Ipv6Addr;

use crate::bytes;
use crate::error::WireError;
use crate::ethernet::EthernetAddress;
use crate::icmpv6::{self, Icmpv6Packet};
use crate::ipv6::{self, Ipv6Packet};

/// Hop limit every ND message is sent with and must arrive with (RFC 4861
/// §7.1.1, §7.1.2), proving it was not forwarded.
pub const ND_HOP_LIMIT: u8 = 255;

/// The link-local all-nodes group ff02::1, destination of unsolicited
/// advertisements (RFC 4861 §7.2.6).
pub const ALL_NODES: Ipv6Addr = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 1);

/// The Ethernet group of ff02::1, 33:33:00:00:00:01 (RFC 2464 §7).
pub const ALL_NODES_MAC: EthernetAddress = EthernetAddress([0x33, 0x33, 0, 0, 0, 1]);

/// Option type of the Source Link-Layer Address option.
pub const OPT_SOURCE_LLADDR: u8 = 1;
/// Option type of the Target Link-Layer Address option.
pub const OPT_TARGET_LLADDR: u8 = 2;

/// Bytes of a link-layer address option carrying a MAC (Length field 1).
const LLADDR_OPT_LEN: usize = 8;

/// Option lengths are counted in units of 8 bytes.
const OPT_UNIT: usize = 8;

/// The Neighbour Advertisement flags (RFC 4861 §4.4): Router, Solicited,
/// Override. The reserved bits are not kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct NaFlags(u8);

impl NaFlags {
    /// R: the sender is a router.
    pub const ROUTER: NaFlags = NaFlags(0x80);
    /// S: sent in response to a Neighbour Solicitation.
    pub const SOLICITED: NaFlags = NaFlags(0x40);
    /// O: the advertisement overrides an existing cache entry.
    pub const OVERRIDE: NaFlags = NaFlags(0x20);

    const ALL: u8 = 0xe0;

    /// No flag set.
    pub const fn empty() -> NaFlags {
        NaFlags(0)
    }

    /// The flags in the top three bits of `bits`; the reserved bits are
    /// dropped.
    pub const fn from_bits_truncate(bits: u8) -> NaFlags {
        NaFlags(bits & Self::ALL)
    }

    /// The flags as they sit in the message's first reserved byte.
    pub const fn bits(self) -> u8 {
        self.0
    }

    /// Whether every flag of `other` is set.
    pub const fn contains(self, other: NaFlags) -> bool {
        self.0 & other.0 == other.0
    }

    /// The flags of both.
    pub const fn union(self, other: NaFlags) -> NaFlags {
        NaFlags(self.0 | other.0)
    }
}

impl BitOr for NaFlags {
    type Output = NaFlags;

    fn bitor(self, rhs: NaFlags) -> NaFlags {
        self.union(rhs)
    }
}

/// A parsed Neighbour Solicitation or Advertisement. It owns its fields
/// (addresses are `Copy`), so it outlives the frame it came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum NdRepr {
    /// Neighbour Solicitation: who has `target`?
    Solicit {
        /// The address being resolved.
        target: Ipv6Addr,
        /// The Source Link-Layer Address option, if present (absent in a
        /// Duplicate Address Detection probe and often in unicast probes).
        source_lladdr: Option<EthernetAddress>,
    },
    /// Neighbour Advertisement: `target` is at `target_lladdr`.
    Advert {
        /// R, S and O.
        flags: NaFlags,
        /// The address advertised.
        target: Ipv6Addr,
        /// The Target Link-Layer Address option, if present.
        target_lladdr: Option<EthernetAddress>,
    },
}

impl NdRepr {
    /// The Target Address of either message.
    pub const fn target(&self) -> Ipv6Addr {
        match *self {
            NdRepr::Solicit { target, .. } | NdRepr::Advert { target, .. } => target,
        }
    }

    /// Parses a Neighbour Solicitation or Advertisement carried from `src` to
    /// `dst`, applying the RFC 4861 §7.1.1 / §7.1.2 checks that concern the
    /// ICMPv6 message and its addresses (the hop limit is the IP header's:
    /// see [`parse_ipv6_nd`]). Checks, in order:
    ///
    /// 1. length ≥ 8 ([`WireError::Truncated`]);
    /// 2. checksum with the pseudo-header ([`WireError::BadChecksum`]);
    /// 3. type 135 or 136, then code 0 ([`WireError::BadType`] with the
    ///    type);
    /// 4. length ≥ 24 ([`WireError::Truncated`]);
    /// 5. target not multicast ([`WireError::BadNd`]);
    /// 6. every option of non-zero length and inside the message, and the
    ///    link-layer address option the message uses of length 1
    ///    ([`WireError::BadNd`]); unknown options are skipped, options meant
    ///    for the other message are ignored, and of repeated link-layer
    ///    address options the first is kept;
    /// 7. NS: source unicast or unspecified ([`WireError::BadSource`]);
    ///    destination unicast or a solicited-node group, and a solicited-node
    ///    group if the source is unspecified ([`WireError::BadDestination`]);
    ///    no Source Link-Layer Address option from the unspecified source
    ///    ([`WireError::BadNd`]);
    /// 8. NA: source unicast ([`WireError::BadSource`]); destination not
    ///    unspecified ([`WireError::BadDestination`]); Solicited clear when
    ///    the destination is multicast ([`WireError::BadNd`]).
    ///
    /// # Errors
    /// As listed above.
    pub fn parse(
        packet: &Icmpv6Packet<&[u8]>,
        src: Ipv6Addr,
        dst: Ipv6Addr,
    ) -> Result<NdRepr, WireError> {
        packet.check_len()?;
        if !packet.verify_checksum(src, dst) {
            return Err(WireError::BadChecksum);
        }
        let msg_type = packet.msg_type();
        if msg_type != icmpv6::TYPE_NEIGHBOR_SOLICIT && msg_type != icmpv6::TYPE_NEIGHBOR_ADVERT {
            return Err(WireError::BadType(msg_type));
        }
        if packet.msg_code() != 0 {
            return Err(WireError::BadType(msg_type));
        }
        let got = packet.into_inner().len();
        if got < icmpv6::ND_HEADER_LEN {
            return Err(WireError::Truncated {
                need: icmpv6::ND_HEADER_LEN,
                got,
            });
        }
        let target = packet.nd_target();
        if target.is_multicast() {
            return Err(WireError::BadNd);
        }
        let solicit = msg_type == icmpv6::TYPE_NEIGHBOR_SOLICIT;
        let wanted = if solicit {
            OPT_SOURCE_LLADDR
        } else {
            OPT_TARGET_LLADDR
        };
        let lladdr = scan_options(packet.nd_options(), wanted)?;
        if solicit {
            if src.is_multicast() || src.is_loopback() {
                return Err(WireError::BadSource);
            }
            let dst_ok = if src.is_unspecified() {
                is_solicited_node(dst)
            } else {
                is_solicited_node(dst) || !(dst.is_multicast() || dst.is_unspecified())
            };
            if !dst_ok {
                return Err(WireError::BadDestination);
            }
            if src.is_unspecified() && lladdr.is_some() {
                return Err(WireError::BadNd);
            }
            Ok(NdRepr::Solicit {
                target,
                source_lladdr: lladdr,
            })
        } else {
            if src.is_multicast() || src.is_unspecified() || src.is_loopback() {
                return Err(WireError::BadSource);
            }
            if dst.is_unspecified() {
                return Err(WireError::BadDestination);
            }
            let flags = NaFlags::from_bits_truncate(packet.nd_flags());
            if dst.is_multicast() && flags.contains(NaFlags::SOLICITED) {
                return Err(WireError::BadNd);
            }
            Ok(NdRepr::Advert {
                flags,
                target,
                target_lladdr: lladdr,
            })
        }
    }

    /// Bytes [`emit`](Self::emit) writes: 24, plus 8 for a link-layer
    /// address option.
    pub const fn buffer_len(&self) -> usize {
        let lladdr = match *self {
            NdRepr::Solicit { source_lladdr, .. } => source_lladdr,
            NdRepr::Advert { target_lladdr, .. } => target_lladdr,
        };
        match lladdr {
            Some(_) => icmpv6::ND_HEADER_LEN + LLADDR_OPT_LEN,
            None => icmpv6::ND_HEADER_LEN,
        }
    }

    /// Writes the message into the first [`buffer_len`](Self::buffer_len)
    /// bytes of `packet` (reserved bits zero) and fills the checksum for
    /// `src` → `dst` over exactly those bytes.
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(
        &self,
        packet: &mut Icmpv6Packet<T>,
        src: Ipv6Addr,
        dst: Ipv6Addr,
    ) {
        let len = self.buffer_len();
        let mut p = Icmpv6Packet::new_unchecked(packet.prefix_mut(len));
        let (msg_type, flags, target, opt) = match *self {
            NdRepr::Solicit {
                target,
                source_lladdr,
            } => (
                icmpv6::TYPE_NEIGHBOR_SOLICIT,
                NaFlags::empty(),
                target,
                source_lladdr.map(|m| (OPT_SOURCE_LLADDR, m)),
            ),
            NdRepr::Advert {
                flags,
                target,
                target_lladdr,
            } => (
                icmpv6::TYPE_NEIGHBOR_ADVERT,
                flags,
                target,
                target_lladdr.map(|m| (OPT_TARGET_LLADDR, m)),
            ),
        };
        p.set_msg_type(msg_type);
        p.set_msg_code(0);
        p.set_nd_flags(flags.bits());
        p.set_nd_target(target);
        if let Some((opt_type, mac)) = opt {
            let [a, b, c, d, e, f] = mac.octets();
            // Length 1: one unit of 8 bytes (RFC 2464 §6).
            bytes::write(p.nd_options_mut(), 0..8, [opt_type, 1, a, b, c, d, e, f]);
        }
        p.fill_checksum(src, dst);
    }
}

/// Walks the options, checking each, and returns the first link-layer
/// address option of type `wanted`.
fn scan_options(mut opts: &[u8], wanted: u8) -> Result<Option<EthernetAddress>, WireError> {
    let mut found = None;
    while !opts.is_empty() {
        let [opt_type, units] = match *opts {
            [t, l, ..] => [t, l],
            _ => return Err(WireError::BadNd),
        };
        // RFC 4861 §4.6: "Nodes MUST silently discard an ND packet that
        // contains an option with length zero" (it would also never end).
        let len = usize::from(units) * OPT_UNIT;
        if len == 0 {
            return Err(WireError::BadNd);
        }
        let (opt, rest) = opts.split_at_checked(len).ok_or(WireError::BadNd)?;
        if opt_type == wanted {
            if len != LLADDR_OPT_LEN {
                return Err(WireError::BadNd);
            }
            found.get_or_insert(EthernetAddress(bytes::read(opt, 2..8)));
        }
        opts = rest;
    }
    Ok(found)
}

/// Parses a Neighbour Solicitation or Advertisement from an IPv6 packet.
/// Checks, in order: [`Ipv6Packet::check_len`]; version 6
/// ([`WireError::BadIpHeader`]); no Fragment header
/// ([`WireError::Fragment`]); next header 58
/// ([`WireError::UnexpectedProtocol`]); hop limit 255
/// ([`WireError::BadTtl`]); then [`NdRepr::parse`] on the payload. Extension
/// headers other than Fragment are not walked, so a message behind one is
/// [`WireError::UnexpectedProtocol`].
///
/// ICMPv6 messages other than NS/NA give [`WireError::BadType`] with their
/// type: a caller that also answers Echo can dispatch on that.
///
/// # Errors
/// As listed above.
pub fn parse_ipv6_nd<T: AsRef<[u8]>>(ip: &Ipv6Packet<T>) -> Result<NdRepr, WireError> {
    ip.check_len()?;
    if ip.version() != 6 {
        return Err(WireError::BadIpHeader);
    }
    match ip.next_header() {
        ipv6::NEXT_HEADER_FRAGMENT => return Err(WireError::Fragment),
        icmpv6::IPPROTO_ICMPV6 => {}
        nh => return Err(WireError::UnexpectedProtocol(nh)),
    }
    if ip.hop_limit() != ND_HOP_LIMIT {
        return Err(WireError::BadTtl(ip.hop_limit()));
    }
    NdRepr::parse(
        &Icmpv6Packet::new_unchecked(ip.payload()),
        ip.src_addr(),
        ip.dst_addr(),
    )
}

/// The solicited-node multicast group of `addr`, ff02::1:ffXX:XXXX with the
/// address's low 24 bits (RFC 4291 §2.7.1): where solicitations for `addr`
/// are sent.
pub fn solicited_node(addr: Ipv6Addr) -> Ipv6Addr {
    let o = addr.octets();
    Ipv6Addr::from([
        0xff, 0x02, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x01, 0xff, o[13], o[14], o[15],
    ])
}

/// Whether `addr` is a solicited-node multicast group (ff02::1:ff00:0/104).
pub fn is_solicited_node(addr: Ipv6Addr) -> bool {
    addr.octets().get(..13) == solicited_node(Ipv6Addr::UNSPECIFIED).octets().get(..13)
}

/// The Ethernet group an IPv6 multicast address maps to, 33:33 followed by
/// the address's low 32 bits (RFC 2464 §7).
pub fn multicast_mac(addr: Ipv6Addr) -> EthernetAddress {
    let o = addr.octets();
    EthernetAddress([0x33, 0x33, o[12], o[13], o[14], o[15]])
}

/// The link-local address fe80::/64 with the modified EUI-64 interface
/// identifier of `mac` (RFC 4291 §2.5.1 and Appendix A: ff:fe inserted in the
/// middle, universal/local bit inverted).
///
/// For a VRRP instance whose configuration names only global IPv6 virtual
/// addresses, the control plane derives the instance's link-local virtual
/// address — the first address of every IPv6 advertisement (RFC 9568
/// §5.2.9) — from the virtual MAC 00:00:5e:00:02:VRID, giving
/// fe80::200:5eff:fe00:2VV. Every router of the group derives the same
/// address, so their advertised lists agree; keepalived instead takes the
/// interface's own link-local address, which differs per router.
pub fn link_local_from_mac(mac: EthernetAddress) -> Ipv6Addr {
    let [a, b, c, d, e, f] = mac.octets();
    Ipv6Addr::from([
        0xfe,
        0x80,
        0,
        0,
        0,
        0,
        0,
        0,
        a ^ 0x02,
        b,
        c,
        0xff,
        0xfe,
        d,
        e,
        f,
    ])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn address_mappings() {
        let a: Ipv6Addr = "2001:db8::2aa:ff:fe28:9c5a".parse().unwrap();
        // RFC 4291 §2.7.1's example group form.
        assert_eq!(
            solicited_node(a),
            "ff02::1:ff28:9c5a".parse::<Ipv6Addr>().unwrap()
        );
        assert!(is_solicited_node(solicited_node(a)));
        assert!(!is_solicited_node(ALL_NODES));
        assert!(!is_solicited_node(a));
        assert_eq!(
            multicast_mac(solicited_node(a)),
            EthernetAddress([0x33, 0x33, 0xff, 0x28, 0x9c, 0x5a])
        );
        assert_eq!(multicast_mac(ALL_NODES), ALL_NODES_MAC);
        assert_eq!(
            link_local_from_mac(EthernetAddress::vrrp_v6(1)),
            "fe80::200:5eff:fe00:201".parse::<Ipv6Addr>().unwrap()
        );
        // A locally administered MAC clears the bit it sets.
        assert_eq!(
            link_local_from_mac(EthernetAddress([0x02, 0, 0, 0, 0, 0x64])),
            "fe80::ff:fe00:64".parse::<Ipv6Addr>().unwrap()
        );
    }

    #[test]
    fn flags_keep_only_r_s_o() {
        let f = NaFlags::from_bits_truncate(0xff);
        assert_eq!(f, NaFlags::ROUTER | NaFlags::SOLICITED | NaFlags::OVERRIDE);
        assert_eq!(f.bits(), 0xe0);
        assert!(f.contains(NaFlags::SOLICITED));
        assert!(!NaFlags::ROUTER.contains(NaFlags::OVERRIDE));
        assert!(NaFlags::empty().contains(NaFlags::empty()));
    }

    #[test]
    fn option_walk() {
        let mac = [0, 0, 0x5e, 0, 2, 1];
        let lla = [1, 1, mac[0], mac[1], mac[2], mac[3], mac[4], mac[5]];
        let nonce = [14, 1, 1, 2, 3, 4, 5, 6];
        let mut opts = Vec::new();
        opts.extend_from_slice(&nonce);
        opts.extend_from_slice(&lla);
        opts.extend_from_slice(&[1, 1, 9, 9, 9, 9, 9, 9]);
        assert_eq!(
            scan_options(&opts, OPT_SOURCE_LLADDR),
            Ok(Some(EthernetAddress(mac)))
        );
        assert_eq!(scan_options(&opts, OPT_TARGET_LLADDR), Ok(None));
        assert_eq!(scan_options(&[], OPT_SOURCE_LLADDR), Ok(None));
        for bad in [
            &[14u8, 0, 0, 0, 0, 0, 0, 0][..],
            &[14, 2, 0, 0, 0, 0, 0, 0][..],
            &[1, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0][..],
            &[14][..],
        ] {
            assert_eq!(
                scan_options(bad, OPT_SOURCE_LLADDR),
                Err(WireError::BadNd),
                "{bad:?}"
            );
        }
    }
}
