//! Whole-frame builders: Ethernet + IPv4/IPv6 + VRRP advertisements, ARP
//! (gratuitous, request, reply), IPv6 Neighbour Discovery (solicited and
//! unsolicited advertisements, solicitations), the ICMPv4 and ICMPv6 errors
//! a router sends (time exceeded, destination unreachable) and the in-place
//! ICMPv4 and ICMPv6 echo responders.
//!
//! Each builder writes into a caller-provided buffer and returns the frame
//! length, padded with zeros to the 60-byte Ethernet minimum (RFC 894). The
//! control thread uses them to hand ready frames to the fast path; the fast
//! path's responders use them per packet, so none of them allocates.
//!
//! ```text
//! +---------------+-----------------------+---------------------+---------+
//! | Ethernet (14) | IPv4 (20) / IPv6 (40) | VRRP / ICMP ...     | padding |
//! +---------------+-----------------------+---------------------+---------+
//! | Ethernet (14) | ARP (28)                                    | pad(18) |
//! +---------------+---------------+-----------------------------+---------+
//! | Ethernet (14) | IPv6 (40)     | NS / NA (24) + LLA option (8)         |
//! +---------------+---------------+---------------------------------------+
//! ```
//!
//! Panic contract: never panics; a buffer shorter than the frame is
//! [`WireError::Truncated`] and is left untouched.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use crate::arp::{self, ArpOperation, ArpPacket, ArpRepr};
use crate::bytes;
use crate::error::WireError;
use crate::ethernet::{self, EtherType, EthernetAddress, EthernetFrame};
use crate::icmpv4::{self, Icmpv4Packet};
use crate::icmpv6::{self, Icmpv6Packet};
use crate::ipv4::{self, Ipv4Packet, Ipv4Repr};
use crate::ipv6::{self, Ipv6Packet, Ipv6Repr};
use crate::nd::{NaFlags, NdRepr, ND_HOP_LIMIT};
use crate::vrrp::{ChecksumKind, VrrpPacket, VrrpRepr, VRRP_TTL};

pub use crate::nd::{link_local_from_mac, multicast_mac, solicited_node, ALL_NODES, ALL_NODES_MAC};
pub use crate::vrrp::{
    IPPROTO_VRRP, VRRP_V4_MCAST, VRRP_V4_MCAST_MAC, VRRP_V6_MCAST, VRRP_V6_MCAST_MAC,
};

/// TOS / traffic class of advertisements: DSCP CS6 (network control), as
/// keepalived sets it.
pub const VRRP_TOS: u8 = 0xc0;

/// TTL / hop limit of ICMP echo replies built in place (the Linux default).
pub const ECHO_REPLY_TTL: u8 = 64;

/// The frame of `used` bytes padded to the Ethernet minimum, zeroed, or
/// `Truncated` if `buf` cannot hold it. Returns the slice and its length.
fn frame_slot(buf: &mut [u8], used: usize) -> Result<(&mut [u8], usize), WireError> {
    let len = used.max(ethernet::MIN_FRAME_LEN);
    let got = buf.len();
    let frame = buf
        .get_mut(..len)
        .ok_or(WireError::Truncated { need: len, got })?;
    frame.fill(0);
    Ok((frame, len))
}

fn write_ethernet(
    frame: &mut [u8],
    dst: EthernetAddress,
    src: EthernetAddress,
    ethertype: EtherType,
) {
    let mut eth = EthernetFrame::new_unchecked(frame);
    eth.set_dst_addr(dst);
    eth.set_src_addr(src);
    eth.set_ethertype(ethertype);
}

/// Builds an IPv4 VRRP advertisement: Ethernet from `vmac` to `dst_mac`
/// ([`VRRP_V4_MCAST_MAC`] or a unicast peer's MAC), IPv4 from `src_ip` to
/// `dst_ip` ([`VRRP_V4_MCAST`] or the peer) with TTL 255, TOS 0xc0, protocol
/// 112, DF clear and ident 0, then `repr` with its checksum computed as
/// `checksum` (v3 only; v2 is always message-only).
///
/// # Errors
/// [`WireError::Truncated`] if `buf` is too small.
pub fn advert_v4(
    buf: &mut [u8],
    vmac: EthernetAddress,
    src_ip: Ipv4Addr,
    dst_ip: Ipv4Addr,
    dst_mac: EthernetAddress,
    repr: &VrrpRepr<'_>,
    checksum: ChecksumKind,
) -> Result<usize, WireError> {
    let vrrp_len = repr.buffer_len();
    let (frame, len) = frame_slot(buf, ethernet::HEADER_LEN + ipv4::HEADER_LEN + vrrp_len)?;
    write_ethernet(frame, dst_mac, vmac, EtherType::IPV4);
    let ip = Ipv4Repr {
        src: src_ip,
        dst: dst_ip,
        protocol: IPPROTO_VRRP,
        ttl: VRRP_TTL,
        tos: VRRP_TOS,
        ident: 0,
        dont_frag: false,
        payload_len: vrrp_len,
    };
    let ip_buf = bytes::slice_mut(frame, ethernet::HEADER_LEN..len);
    ip.emit(&mut Ipv4Packet::new_unchecked(&mut *ip_buf));
    let vrrp_buf = bytes::slice_mut(ip_buf, ipv4::HEADER_LEN..ipv4::HEADER_LEN + vrrp_len);
    repr.emit(
        &mut VrrpPacket::new_unchecked(vrrp_buf),
        checksum,
        IpAddr::V4(src_ip),
        IpAddr::V4(dst_ip),
    );
    Ok(len)
}

/// Builds an IPv6 VRRPv3 advertisement: Ethernet from `vmac` to `dst_mac`
/// ([`VRRP_V6_MCAST_MAC`] or a unicast peer's MAC), IPv6 from `src_ip` (the
/// link-local address) to `dst_ip` ([`VRRP_V6_MCAST`] or the peer) with hop
/// limit 255 and traffic class 0xc0, then `repr` with the IPv6 pseudo-header
/// checksum.
///
/// # Errors
/// [`WireError::Truncated`] if `buf` is too small.
pub fn advert_v6(
    buf: &mut [u8],
    vmac: EthernetAddress,
    src_ip: Ipv6Addr,
    dst_ip: Ipv6Addr,
    dst_mac: EthernetAddress,
    repr: &VrrpRepr<'_>,
) -> Result<usize, WireError> {
    let vrrp_len = repr.buffer_len();
    let (frame, len) = frame_slot(buf, ethernet::HEADER_LEN + ipv6::HEADER_LEN + vrrp_len)?;
    write_ethernet(frame, dst_mac, vmac, EtherType::IPV6);
    let ip = Ipv6Repr {
        src: src_ip,
        dst: dst_ip,
        next_header: IPPROTO_VRRP,
        hop_limit: VRRP_TTL,
        traffic_class: VRRP_TOS,
        payload_len: vrrp_len,
    };
    let ip_buf = bytes::slice_mut(frame, ethernet::HEADER_LEN..len);
    ip.emit(&mut Ipv6Packet::new_unchecked(&mut *ip_buf));
    let vrrp_buf = bytes::slice_mut(ip_buf, ipv6::HEADER_LEN..ipv6::HEADER_LEN + vrrp_len);
    repr.emit(
        &mut VrrpPacket::new_unchecked(vrrp_buf),
        ChecksumKind::PseudoHeader,
        IpAddr::V6(src_ip),
        IpAddr::V6(dst_ip),
    );
    Ok(len)
}

fn arp_frame(
    buf: &mut [u8],
    eth_dst: EthernetAddress,
    eth_src: EthernetAddress,
    repr: &ArpRepr,
) -> Result<usize, WireError> {
    let (frame, len) = frame_slot(buf, ethernet::HEADER_LEN + arp::PACKET_LEN)?;
    write_ethernet(frame, eth_dst, eth_src, EtherType::ARP);
    repr.emit(&mut ArpPacket::new_unchecked(bytes::slice_mut(
        frame,
        ethernet::HEADER_LEN..len,
    )));
    Ok(len)
}

/// Builds the ICMP Time Exceeded (type 11, code 0) a router sends back when
/// a datagram's TTL runs out (RFC 792, RFC 1812 §4.3.2.3, §5.3.1): Ethernet
/// from `our_mac` to `dst_mac` (the sender's next hop, usually the sender),
/// IPv4 from `our_ip` to the original source with TTL 64, quoting the
/// original header and the first 8 bytes of its payload. `original` is the
/// expired datagram from its IP header on; it must not overlap `buf` (copy
/// the quoted part out first when building in place).
///
/// # Errors
/// [`WireError::Truncated`] if `buf` is too small or `original` shorter
/// than an IPv4 header, [`WireError::BadIpHeader`] if it is not one;
/// nothing is written then.
pub fn time_exceeded_v4(
    buf: &mut [u8],
    original: &[u8],
    our_mac: EthernetAddress,
    dst_mac: EthernetAddress,
    our_ip: Ipv4Addr,
) -> Result<usize, WireError> {
    icmp_error_v4(
        buf,
        original,
        our_mac,
        dst_mac,
        our_ip,
        icmpv4::Icmpv4Repr::time_exceeded(original),
    )
}

/// Builds the ICMP Destination Unreachable (type 3) with `code` a router
/// sends back for a datagram it cannot deliver (RFC 1812 §4.3.2.3,
/// §5.2.7.1): net unreachable when it has no route, host unreachable when
/// the next hop does not answer resolution. Addressed and quoted as
/// [`time_exceeded_v4`], with the same conditions on `original`.
///
/// # Errors
/// As [`time_exceeded_v4`].
pub fn dst_unreachable_v4(
    buf: &mut [u8],
    original: &[u8],
    our_mac: EthernetAddress,
    dst_mac: EthernetAddress,
    our_ip: Ipv4Addr,
    code: icmpv4::Unreachable,
) -> Result<usize, WireError> {
    icmp_error_v4(
        buf,
        original,
        our_mac,
        dst_mac,
        our_ip,
        icmpv4::Icmpv4Repr::dst_unreachable(code, original),
    )
}

/// The frame of an ICMPv4 error `icmp` about `original`, from `our_ip`.
fn icmp_error_v4(
    buf: &mut [u8],
    original: &[u8],
    our_mac: EthernetAddress,
    dst_mac: EthernetAddress,
    our_ip: Ipv4Addr,
    icmp: icmpv4::Icmpv4Repr<'_>,
) -> Result<usize, WireError> {
    // `original` may be only the quoted part of a longer datagram, so only
    // its header is checked, not its Total Length.
    if original.len() < ipv4::HEADER_LEN {
        return Err(WireError::Truncated {
            need: ipv4::HEADER_LEN,
            got: original.len(),
        });
    }
    let orig = Ipv4Packet::new_unchecked(original);
    if orig.version() != 4 || orig.header_len() < ipv4::HEADER_LEN {
        return Err(WireError::BadIpHeader);
    }
    let icmp_len = icmp.buffer_len();
    let ip = Ipv4Repr {
        src: our_ip,
        dst: orig.src_addr(),
        protocol: ipv4::IPPROTO_ICMP,
        ttl: ECHO_REPLY_TTL,
        tos: 0,
        ident: 0,
        dont_frag: false,
        payload_len: icmp_len,
    };
    let (frame, len) = frame_slot(buf, ethernet::HEADER_LEN + ipv4::HEADER_LEN + icmp_len)?;
    write_ethernet(frame, dst_mac, our_mac, EtherType::IPV4);
    let ip_buf = bytes::slice_mut(frame, ethernet::HEADER_LEN..len);
    ip.emit(&mut Ipv4Packet::new_unchecked(&mut *ip_buf));
    let icmp_buf = bytes::slice_mut(ip_buf, ipv4::HEADER_LEN..ipv4::HEADER_LEN + icmp_len);
    icmp.emit(&mut Icmpv4Packet::new_unchecked(icmp_buf));
    Ok(len)
}

/// An ICMPv6 error a router sends back about a packet it does not deliver
/// (RFC 4443 §3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Icmpv6Error {
    /// Destination Unreachable (type 1) with its code: no route (0), or
    /// address unreachable (3) when the next hop does not answer.
    DstUnreachable(icmpv6::Unreachable),
    /// Time Exceeded (type 3) code 0: the hop limit ran out.
    HopLimitExceeded,
}

/// Builds the ICMPv6 error `kind` about `original` (the IPv6 packet from
/// its header on; it must not overlap `buf`): Ethernet from `our_mac` to
/// `dst_mac`, IPv6 from `our_ip` to the original source with hop limit 64,
/// quoting as much of the packet as fits in 1280 bytes (RFC 4443 §2.4 (c)).
///
/// # Errors
/// [`WireError::Truncated`] if `original` is shorter than an IPv6 header or
/// `buf` cannot hold the frame, [`WireError::BadIpHeader`] if `original` is
/// not IPv6; nothing is written then.
pub fn icmpv6_error(
    buf: &mut [u8],
    original: &[u8],
    our_mac: EthernetAddress,
    dst_mac: EthernetAddress,
    our_ip: Ipv6Addr,
    kind: Icmpv6Error,
) -> Result<usize, WireError> {
    if original.len() < ipv6::HEADER_LEN {
        return Err(WireError::Truncated {
            need: ipv6::HEADER_LEN,
            got: original.len(),
        });
    }
    let orig = Ipv6Packet::new_unchecked(original);
    if orig.version() != 6 {
        return Err(WireError::BadIpHeader);
    }
    let icmp = match kind {
        Icmpv6Error::DstUnreachable(code) => icmpv6::Icmpv6Repr::dst_unreachable(code, original),
        Icmpv6Error::HopLimitExceeded => icmpv6::Icmpv6Repr::time_exceeded(original),
    };
    let icmp_len = icmp.buffer_len();
    let dst = orig.src_addr();
    let ip = Ipv6Repr {
        src: our_ip,
        dst,
        next_header: icmpv6::IPPROTO_ICMPV6,
        hop_limit: ECHO_REPLY_TTL,
        traffic_class: 0,
        payload_len: icmp_len,
    };
    let (frame, len) = frame_slot(buf, ethernet::HEADER_LEN + ipv6::HEADER_LEN + icmp_len)?;
    write_ethernet(frame, dst_mac, our_mac, EtherType::IPV6);
    let ip_buf = bytes::slice_mut(frame, ethernet::HEADER_LEN..len);
    ip.emit(&mut Ipv6Packet::new_unchecked(&mut *ip_buf));
    let icmp_buf = bytes::slice_mut(ip_buf, ipv6::HEADER_LEN..ipv6::HEADER_LEN + icmp_len);
    icmp.emit(&mut Icmpv6Packet::new_unchecked(icmp_buf), our_ip, dst);
    Ok(len)
}

/// Builds a gratuitous ARP request announcing `vip` at `vmac` (RFC 5227
/// §3 form: broadcast, sender = target = `vip`, target MAC zero), as a new
/// master sends (RFC 9568 §6.4.1).
///
/// # Errors
/// [`WireError::Truncated`] if `buf` is shorter than 60 bytes.
pub fn garp_v4(buf: &mut [u8], vmac: EthernetAddress, vip: Ipv4Addr) -> Result<usize, WireError> {
    let repr = ArpRepr {
        operation: ArpOperation::Request,
        source_hw: vmac,
        source_ip: vip,
        target_hw: EthernetAddress::ZERO,
        target_ip: vip,
    };
    arp_frame(buf, EthernetAddress::BROADCAST, vmac, &repr)
}

/// Builds the ARP reply to `request` (received in a frame from
/// `request_src_mac`): `our_ip` is at `our_mac`, sent unicast to the
/// requester.
///
/// # Errors
/// [`WireError::Truncated`] if `buf` is shorter than 60 bytes.
pub fn arp_reply(
    buf: &mut [u8],
    request: &ArpRepr,
    request_src_mac: EthernetAddress,
    our_mac: EthernetAddress,
    our_ip: Ipv4Addr,
) -> Result<usize, WireError> {
    let repr = ArpRepr {
        operation: ArpOperation::Reply,
        source_hw: our_mac,
        source_ip: our_ip,
        target_hw: request.source_hw,
        target_ip: request.source_ip,
    };
    arp_frame(buf, request_src_mac, our_mac, &repr)
}

/// Builds a broadcast ARP request for `target_ip` from `our_mac`/`our_ip`
/// (next-hop resolution).
///
/// # Errors
/// [`WireError::Truncated`] if `buf` is shorter than 60 bytes.
pub fn arp_request(
    buf: &mut [u8],
    our_mac: EthernetAddress,
    our_ip: Ipv4Addr,
    target_ip: Ipv4Addr,
) -> Result<usize, WireError> {
    let repr = ArpRepr {
        operation: ArpOperation::Request,
        source_hw: our_mac,
        source_ip: our_ip,
        target_hw: EthernetAddress::ZERO,
        target_ip,
    };
    arp_frame(buf, EthernetAddress::BROADCAST, our_mac, &repr)
}

/// Ethernet + IPv6 (hop limit 255, traffic class 0) + one ND message,
/// checksummed for `ip_src` → `ip_dst`.
fn nd_frame(
    buf: &mut [u8],
    eth_dst: EthernetAddress,
    eth_src: EthernetAddress,
    ip_src: Ipv6Addr,
    ip_dst: Ipv6Addr,
    repr: &NdRepr,
) -> Result<usize, WireError> {
    let nd_len = repr.buffer_len();
    let (frame, len) = frame_slot(buf, ethernet::HEADER_LEN + ipv6::HEADER_LEN + nd_len)?;
    write_ethernet(frame, eth_dst, eth_src, EtherType::IPV6);
    let ip = Ipv6Repr {
        src: ip_src,
        dst: ip_dst,
        next_header: icmpv6::IPPROTO_ICMPV6,
        hop_limit: ND_HOP_LIMIT,
        traffic_class: 0,
        payload_len: nd_len,
    };
    let ip_buf = bytes::slice_mut(frame, ethernet::HEADER_LEN..len);
    ip.emit(&mut Ipv6Packet::new_unchecked(&mut *ip_buf));
    let nd_buf = bytes::slice_mut(ip_buf, ipv6::HEADER_LEN..ipv6::HEADER_LEN + nd_len);
    repr.emit(&mut Icmpv6Packet::new_unchecked(nd_buf), ip_src, ip_dst);
    Ok(len)
}

/// Builds the Neighbour Advertisement a master sends in answer to a
/// solicitation for its virtual address `vip` (RFC 9568 §8.2, RFC 4861
/// §7.2.4): from `vmac` / `vip`, hop limit 255, flags O and (if `router`) R,
/// target `vip`, Target Link-Layer Address option `vmac`.
///
/// The solicitation came from `ns_ip_src`, in a frame from `ns_eth_src`
/// (the caller may pass the solicitation's Source Link-Layer Address option
/// instead when it has one). A specified source gets a unicast reply with S
/// set; the unspecified source of a Duplicate Address Detection probe gets
/// the reply multicast to ff02::1 ([`ALL_NODES_MAC`]) with S clear.
///
/// # Errors
/// [`WireError::Truncated`] if `buf` is shorter than 86 bytes.
pub fn na_reply(
    buf: &mut [u8],
    ns_ip_src: Ipv6Addr,
    ns_eth_src: EthernetAddress,
    vmac: EthernetAddress,
    vip: Ipv6Addr,
    router: bool,
) -> Result<usize, WireError> {
    let mut flags = NaFlags::OVERRIDE;
    if router {
        flags = flags | NaFlags::ROUTER;
    }
    let (eth_dst, ip_dst) = if ns_ip_src.is_unspecified() {
        (ALL_NODES_MAC, ALL_NODES)
    } else {
        flags = flags | NaFlags::SOLICITED;
        (ns_eth_src, ns_ip_src)
    };
    let repr = NdRepr::Advert {
        flags,
        target: vip,
        target_lladdr: Some(vmac),
    };
    nd_frame(buf, eth_dst, vmac, vip, ip_dst, &repr)
}

/// Builds the unsolicited Neighbour Advertisement a new master sends for
/// each virtual address (RFC 9568 §6.4.3 / §8.2, RFC 4861 §7.2.6): from
/// `vmac` / `vip` to ff02::1 ([`ALL_NODES_MAC`]), hop limit 255, R and O set,
/// S clear, target `vip`, Target Link-Layer Address option `vmac`.
///
/// # Errors
/// [`WireError::Truncated`] if `buf` is shorter than 86 bytes.
pub fn unsolicited_na(
    buf: &mut [u8],
    vmac: EthernetAddress,
    vip: Ipv6Addr,
) -> Result<usize, WireError> {
    let repr = NdRepr::Advert {
        flags: NaFlags::ROUTER | NaFlags::OVERRIDE,
        target: vip,
        target_lladdr: Some(vmac),
    };
    nd_frame(buf, ALL_NODES_MAC, vmac, vip, ALL_NODES, &repr)
}

/// Builds a multicast Neighbour Solicitation for `target` (next-hop
/// resolution, RFC 4861 §7.2.2): from `our_mac` / `our_ip` to the
/// solicited-node group of `target` and its MAC 33:33:ff:XX:XX:XX, hop limit
/// 255, with a Source Link-Layer Address option `our_mac`. If `our_ip` is
/// unspecified the option is left out, as RFC 4861 §7.2.2 requires (the
/// frame is then a Duplicate Address Detection probe).
///
/// # Errors
/// [`WireError::Truncated`] if `buf` is shorter than 86 bytes (78 without the
/// option).
pub fn ns_request(
    buf: &mut [u8],
    our_mac: EthernetAddress,
    our_ip: Ipv6Addr,
    target: Ipv6Addr,
) -> Result<usize, WireError> {
    let group = solicited_node(target);
    let repr = NdRepr::Solicit {
        target,
        source_lladdr: (!our_ip.is_unspecified()).then_some(our_mac),
    };
    nd_frame(buf, multicast_mac(group), our_mac, our_ip, group, &repr)
}

/// Turns an Ethernet/IPv4/ICMP Echo Request into its Echo Reply in place:
/// MACs and IP addresses swapped, TTL 64, ICMP type 0, both checksums fixed
/// (the ICMP one incrementally, RFC 1624). IP options are kept as received.
/// The caller has already decided the destination is one of ours.
///
/// Checks, in order: Ethernet header ([`WireError::Truncated`]); EtherType
/// IPv4 ([`WireError::UnknownEtherType`]); IPv4 lengths, version, header
/// checksum and not a fragment (as [`Ipv4Repr::parse`]); protocol ICMP
/// ([`WireError::UnexpectedProtocol`]); source usable as a destination
/// ([`WireError::BadSource`]); ICMP length and checksum; type 8 code 0
/// ([`WireError::BadType`]). On error the frame is unchanged.
///
/// Returns the reply's length: Ethernet + IP Total Length, padded to 60 bytes
/// when the frame holds them (padding zeroed).
///
/// # Errors
/// As listed above.
pub fn icmp_echo_reply_in_place(frame: &mut [u8]) -> Result<usize, WireError> {
    let eth = EthernetFrame::new_checked(&*frame)?;
    if eth.ethertype() != EtherType::IPV4 {
        return Err(WireError::UnknownEtherType(eth.ethertype().0));
    }
    let ip = Ipv4Packet::new_unchecked(eth.payload());
    let ip_repr = Ipv4Repr::parse(&ip)?;
    if ip_repr.protocol != ipv4::IPPROTO_ICMP {
        return Err(WireError::UnexpectedProtocol(ip_repr.protocol));
    }
    if ip_repr.src.is_multicast() || ip_repr.src.is_broadcast() || ip_repr.src.is_unspecified() {
        return Err(WireError::BadSource);
    }
    let icmp = Icmpv4Packet::new_checked(ip.payload())?;
    if !icmp.verify_checksum() {
        return Err(WireError::BadChecksum);
    }
    if icmp.msg_type() != icmpv4::TYPE_ECHO_REQUEST || icmp.msg_code() != 0 {
        return Err(WireError::BadType(icmp.msg_type()));
    }
    let (eth_src, eth_dst) = (eth.src_addr(), eth.dst_addr());
    let used = ethernet::HEADER_LEN + usize::from(ip.total_len());

    let mut eth = EthernetFrame::new_unchecked(&mut *frame);
    eth.set_dst_addr(eth_src);
    eth.set_src_addr(eth_dst);
    let mut ip = Ipv4Packet::new_unchecked(eth.payload_mut());
    ip.set_src_addr(ip_repr.dst);
    ip.set_dst_addr(ip_repr.src);
    ip.set_ttl(ECHO_REPLY_TTL);
    ip.fill_checksum();
    let mut icmp = Icmpv4Packet::new_unchecked(ip.payload_mut());
    let c = crate::checksum::incremental_update(
        icmp.checksum(),
        u16::from_be_bytes([icmpv4::TYPE_ECHO_REQUEST, 0]),
        u16::from_be_bytes([icmpv4::TYPE_ECHO_REPLY, 0]),
    );
    icmp.set_msg_type(icmpv4::TYPE_ECHO_REPLY);
    icmp.set_checksum(c);

    let padded = used.max(ethernet::MIN_FRAME_LEN);
    if frame.len() >= padded {
        bytes::slice_mut(frame, used..padded).fill(0);
        Ok(padded)
    } else {
        Ok(used)
    }
}

/// Turns an Ethernet/IPv6/ICMPv6 Echo Request into its Echo Reply in place:
/// MACs and IP addresses swapped, hop limit 64, ICMPv6 type 129, checksum
/// fixed incrementally (RFC 1624; the pseudo-header sum does not change when
/// source and destination swap). The caller has already decided the
/// destination is one of ours.
///
/// Checks, in order: Ethernet header ([`WireError::Truncated`]); EtherType
/// IPv6 ([`WireError::UnknownEtherType`]); IPv6 lengths and version (as
/// [`Ipv6Repr::parse`]); no Fragment header ([`WireError::Fragment`]); next
/// header 58 ([`WireError::UnexpectedProtocol`]); source usable as a
/// destination ([`WireError::BadSource`]); destination usable as a source
/// (not multicast or unspecified, [`WireError::BadDestination`]); ICMPv6
/// length and checksum; type 128 code 0 ([`WireError::BadType`]). On error
/// the frame is unchanged.
///
/// Traffic class and flow label are kept as received: reflecting the flow
/// label is what Linux does with `net.ipv6.flowlabel_reflect` bit 2 set
/// (RFC 6437 leaves the choice to the replying source).
///
/// Returns the reply's length, Ethernet + 40 + Payload Length (at least 62,
/// so never padded); trailing bytes of `frame` are not part of it.
///
/// # Errors
/// As listed above.
pub fn icmpv6_echo_reply_in_place(frame: &mut [u8]) -> Result<usize, WireError> {
    let eth = EthernetFrame::new_checked(&*frame)?;
    if eth.ethertype() != EtherType::IPV6 {
        return Err(WireError::UnknownEtherType(eth.ethertype().0));
    }
    let ip = Ipv6Packet::new_unchecked(eth.payload());
    let ip_repr = Ipv6Repr::parse(&ip)?;
    match ip_repr.next_header {
        ipv6::NEXT_HEADER_FRAGMENT => return Err(WireError::Fragment),
        icmpv6::IPPROTO_ICMPV6 => {}
        nh => return Err(WireError::UnexpectedProtocol(nh)),
    }
    if ip_repr.src.is_multicast() || ip_repr.src.is_unspecified() {
        return Err(WireError::BadSource);
    }
    if ip_repr.dst.is_multicast() || ip_repr.dst.is_unspecified() {
        return Err(WireError::BadDestination);
    }
    let icmp = Icmpv6Packet::new_checked(ip.payload())?;
    if !icmp.verify_checksum(ip_repr.src, ip_repr.dst) {
        return Err(WireError::BadChecksum);
    }
    if icmp.msg_type() != icmpv6::TYPE_ECHO_REQUEST || icmp.msg_code() != 0 {
        return Err(WireError::BadType(icmp.msg_type()));
    }
    let (eth_src, eth_dst) = (eth.src_addr(), eth.dst_addr());
    let used = ethernet::HEADER_LEN + ipv6::HEADER_LEN + ip_repr.payload_len;

    let mut eth = EthernetFrame::new_unchecked(&mut *frame);
    eth.set_dst_addr(eth_src);
    eth.set_src_addr(eth_dst);
    let mut ip = Ipv6Packet::new_unchecked(eth.payload_mut());
    ip.set_src_addr(ip_repr.dst);
    ip.set_dst_addr(ip_repr.src);
    ip.set_hop_limit(ECHO_REPLY_TTL);
    let mut icmp = Icmpv6Packet::new_unchecked(ip.payload_mut());
    let c = crate::checksum::incremental_update(
        icmp.checksum(),
        u16::from_be_bytes([icmpv6::TYPE_ECHO_REQUEST, 0]),
        u16::from_be_bytes([icmpv6::TYPE_ECHO_REPLY, 0]),
    );
    icmp.set_msg_type(icmpv6::TYPE_ECHO_REPLY);
    icmp.set_checksum(c);
    Ok(used)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::icmpv4::Icmpv4Repr;

    const CLIENT: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 100);
    const VIP: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 1);

    /// An echo request frame of `len` bytes (padding zero-filled).
    fn echo_request(len: usize, protocol: u8) -> Vec<u8> {
        let data = [7u8; 4];
        let icmp = Icmpv4Repr::EchoRequest {
            ident: 1,
            seq_no: 2,
            data: &data,
        };
        let ip = Ipv4Repr {
            src: CLIENT,
            dst: VIP,
            protocol,
            ttl: 3,
            tos: 0,
            ident: 5,
            dont_frag: false,
            payload_len: icmp.buffer_len(),
        };
        let mut f = vec![0u8; len];
        write_ethernet(
            &mut f,
            EthernetAddress::vrrp_v4(1),
            EthernetAddress([2, 0, 0, 0, 0, 0x64]),
            EtherType::IPV4,
        );
        ip.emit(&mut Ipv4Packet::new_unchecked(&mut f[14..]));
        icmp.emit(&mut Icmpv4Packet::new_unchecked(&mut f[34..46]));
        f
    }

    #[test]
    fn echo_reply_pads_to_60_and_zeroes_padding() {
        let mut f = echo_request(60, ipv4::IPPROTO_ICMP);
        f[50] = 0xee; // non-zero padding from the sender
        assert_eq!(icmp_echo_reply_in_place(&mut f).unwrap(), 60);
        assert!(f[46..].iter().all(|&b| b == 0));
        let ip = Ipv4Packet::new_checked(&f[14..]).unwrap();
        assert_eq!(
            (ip.src_addr(), ip.dst_addr(), ip.ttl()),
            (VIP, CLIENT, ECHO_REPLY_TTL)
        );
        assert!(ip.verify_checksum());
        let icmp = Icmpv4Packet::new_checked(ip.payload()).unwrap();
        assert_eq!(
            Icmpv4Repr::parse(&icmp).unwrap(),
            Icmpv4Repr::EchoReply {
                ident: 1,
                seq_no: 2,
                data: &[7; 4]
            }
        );
        let eth = EthernetFrame::new_checked(&f[..]).unwrap();
        assert_eq!(eth.dst_addr(), EthernetAddress([2, 0, 0, 0, 0, 0x64]));
        assert_eq!(eth.src_addr(), EthernetAddress::vrrp_v4(1));
        // An unpadded 46-byte frame (veth) gives a 46-byte reply.
        let mut f = echo_request(46, ipv4::IPPROTO_ICMP);
        assert_eq!(icmp_echo_reply_in_place(&mut f).unwrap(), 46);
    }

    #[test]
    fn echo_reply_refusals_leave_the_frame_unchanged() {
        let cases: [(Vec<u8>, WireError); 4] = [
            (echo_request(60, 17), WireError::UnexpectedProtocol(17)),
            (
                {
                    let mut f = echo_request(60, ipv4::IPPROTO_ICMP);
                    f[12] = 0x86;
                    f[13] = 0xdd;
                    f
                },
                WireError::UnknownEtherType(0x86dd),
            ),
            (
                {
                    let mut f = echo_request(60, ipv4::IPPROTO_ICMP);
                    f[34] = icmpv4::TYPE_ECHO_REPLY;
                    Icmpv4Packet::new_unchecked(&mut f[34..46]).fill_checksum();
                    f
                },
                WireError::BadType(0),
            ),
            (
                {
                    let mut f = echo_request(60, ipv4::IPPROTO_ICMP);
                    let mut ip = Ipv4Packet::new_unchecked(&mut f[14..]);
                    ip.set_src_addr(Ipv4Addr::BROADCAST);
                    ip.fill_checksum();
                    f
                },
                WireError::BadSource,
            ),
        ];
        for (mut f, want) in cases {
            let before = f.clone();
            assert_eq!(icmp_echo_reply_in_place(&mut f), Err(want));
            assert_eq!(f, before);
        }
        let mut f = echo_request(60, ipv4::IPPROTO_ICMP);
        f[40] ^= 1;
        assert_eq!(
            icmp_echo_reply_in_place(&mut f),
            Err(WireError::BadChecksum)
        );
        assert_eq!(
            icmp_echo_reply_in_place(&mut [0u8; 10]),
            Err(WireError::Truncated { need: 14, got: 10 })
        );
    }

    #[test]
    fn unicast_advert_to_a_peer() {
        let addrs = [VIP];
        let repr = VrrpRepr {
            version: crate::vrrp::Version::V3,
            vrid: 3,
            priority: 100,
            max_advert_int: 100,
            addresses: crate::vrrp::AddrList::V4(&addrs),
        };
        let peer_mac = EthernetAddress([2, 0, 0, 0, 0, 3]);
        let mut buf = [0u8; 64];
        let n = advert_v4(
            &mut buf,
            EthernetAddress::vrrp_v4(3),
            Ipv4Addr::new(192, 0, 2, 2),
            Ipv4Addr::new(192, 0, 2, 3),
            peer_mac,
            &repr,
            ChecksumKind::PseudoHeader,
        )
        .unwrap();
        assert_eq!(n, 60);
        assert_eq!(
            EthernetFrame::new_checked(&buf[..n]).unwrap().dst_addr(),
            peer_mac
        );
        let ip = Ipv4Packet::new_checked(&buf[14..n]).unwrap();
        let (parsed, kind) = crate::vrrp::parse_ipv4_advert(&ip, false).unwrap();
        assert_eq!((parsed, kind), (repr, ChecksumKind::PseudoHeader));
    }

    #[test]
    fn dst_unreachable_v4_quotes_header_and_8_bytes_from_our_address() {
        let f = echo_request(60, ipv4::IPPROTO_ICMP);
        let mut buf = [0u8; 128];
        let our_mac = EthernetAddress::vrrp_v4(1);
        let sender = EthernetAddress([2, 0, 0, 0, 0, 0x64]);
        let n = dst_unreachable_v4(
            &mut buf,
            &f[14..42],
            our_mac,
            sender,
            VIP,
            icmpv4::Unreachable::Host,
        )
        .unwrap();
        assert_eq!(n, 14 + 20 + 8 + 28);
        let eth = EthernetFrame::new_checked(&buf[..n]).unwrap();
        assert_eq!((eth.dst_addr(), eth.src_addr()), (sender, our_mac));
        let ip = Ipv4Packet::new_checked(&buf[14..n]).unwrap();
        assert_eq!((ip.src_addr(), ip.dst_addr()), (VIP, CLIENT));
        assert!(ip.verify_checksum());
        let icmp = Icmpv4Packet::new_checked(ip.payload()).unwrap();
        assert_eq!(
            Icmpv4Repr::parse(&icmp).unwrap(),
            Icmpv4Repr::DstUnreachable {
                code: icmpv4::Unreachable::Host,
                quoted: &f[14..42]
            }
        );
        // Not IPv4: refused, nothing written.
        let mut other = [0u8; 128];
        let mut bad = f[14..42].to_vec();
        bad[0] = 0x65;
        assert_eq!(
            dst_unreachable_v4(
                &mut other,
                &bad,
                our_mac,
                sender,
                VIP,
                icmpv4::Unreachable::Net
            ),
            Err(WireError::BadIpHeader)
        );
        assert!(other.iter().all(|&b| b == 0));
    }

    #[test]
    fn icmpv6_errors_go_back_to_the_source_and_verify() {
        let src: Ipv6Addr = "2001:db8:1::100".parse().unwrap();
        let dst: Ipv6Addr = "2001:db8:99::1".parse().unwrap();
        let ours: Ipv6Addr = "2001:db8:1::1".parse().unwrap();
        let mut pkt = vec![0u8; 40 + 64];
        Ipv6Repr {
            src,
            dst,
            next_header: 17,
            hop_limit: 1,
            traffic_class: 0,
            payload_len: 64,
        }
        .emit(&mut Ipv6Packet::new_unchecked(&mut pkt[..]));
        let mac = EthernetAddress::vrrp_v6(1);
        let peer = EthernetAddress([2, 0, 0, 0, 0, 0x64]);
        for (kind, t, code) in [
            (Icmpv6Error::HopLimitExceeded, 3, 0),
            (
                Icmpv6Error::DstUnreachable(icmpv6::Unreachable::NoRoute),
                1,
                0,
            ),
            (
                Icmpv6Error::DstUnreachable(icmpv6::Unreachable::Address),
                1,
                3,
            ),
        ] {
            let mut buf = [0u8; 256];
            let n = icmpv6_error(&mut buf, &pkt, mac, peer, ours, kind).unwrap();
            assert_eq!(n, 14 + 40 + 8 + pkt.len());
            let ip = Ipv6Packet::new_checked(&buf[14..n]).unwrap();
            assert_eq!(
                (ip.src_addr(), ip.dst_addr(), ip.next_header()),
                (ours, src, 58)
            );
            let icmp = Icmpv6Packet::new_checked(ip.payload()).unwrap();
            assert!(icmp.verify_checksum(ours, src));
            assert_eq!((icmp.msg_type(), icmp.msg_code()), (t, code));
            assert_eq!(&ip.payload()[8..], &pkt[..]);
        }
        let mut small = [0u8; 100];
        assert!(matches!(
            icmpv6_error(
                &mut small,
                &pkt,
                mac,
                peer,
                ours,
                Icmpv6Error::HopLimitExceeded
            ),
            Err(WireError::Truncated { .. })
        ));
    }
}
