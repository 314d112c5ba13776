//! IPv6 Neighbour Discovery and ICMPv6 Echo: golden frames both ways (parse
//! → repr, builder → bytes), frames captured from the Linux kernel, and one
//! test per RFC 4861 §7.1 validity check.
//!
//! Two independent sources back the vectors:
//!
//! - The frames xvrrp builds were decoded by TShark 4.0.17 (Debian 12) from
//!   a pcap of exactly these bytes: `tshark -r nd.pcap -V`. It reported every
//!   ICMPv6 checksum `[correct]` and the fields listed next to each vector
//!   (hop limit 255, flags, target, link-layer address options).
//! - The `KERNEL_*` frames were captured with tcpdump on a veth pair between
//!   two network namespaces on Linux 6.18 (MACs 02:00:00:00:00:0a / 0b,
//!   addresses 2001:db8::a / ::b and their EUI-64 link-local addresses,
//!   `enhanced_dad` on): a DAD probe, multicast and unicast resolution, and
//!   `ping -6`. TShark decoded those too, checksums `[correct]`.

#![allow(clippy::unwrap_used)]

use std::net::Ipv6Addr;

use hex_literal::hex;
use xvrrp_wire::frames::{self, ALL_NODES, ALL_NODES_MAC};
use xvrrp_wire::icmpv6::{self, Icmpv6Packet};
use xvrrp_wire::nd::{self, is_solicited_node, multicast_mac, solicited_node};
use xvrrp_wire::{
    parse_ipv6_nd, EtherType, EthernetAddress, EthernetFrame, Icmpv6Repr, Ipv6Packet, Ipv6Repr,
    NaFlags, NdRepr, WireError,
};

const ETH: usize = 14;

const VIP: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1);
const CLIENT: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 0x100);
const CLIENT_MAC: EthernetAddress = EthernetAddress([0x02, 0, 0, 0, 0, 0x64]);
const VMAC: EthernetAddress = EthernetAddress::vrrp_v6(1);

/// NS for 2001:db8::1 from 2001:db8::100 (02:00:00:00:00:64) to
/// ff02::1:ff00:1 / 33:33:ff:00:00:01. TShark: Neighbor Solicitation, hop
/// limit 255, checksum 0x1ac7 [correct], Source link-layer address option
/// (length 1) 02:00:00:00:00:64.
const NS: [u8; 86] = hex!(
    "3333ff000001 020000000064 86dd"
    "60000000 0020 3a ff 20010db8000000000000000000000100 ff0200000000000000000001ff000001"
    "87 00 1ac7 00000000 20010db8000000000000000000000001 0101020000000064"
);

/// The master's answer: 2001:db8::1 → 2001:db8::100 from 00:00:5e:00:02:01.
/// TShark: Neighbor Advertisement, flags 0xe0000000 Router, Solicited,
/// Override, checksum 0xab74 [correct], Target link-layer address option
/// 00:00:5e:00:02:01.
const NA_SOLICITED: [u8; 86] = hex!(
    "020000000064 00005e000201 86dd"
    "60000000 0020 3a ff 20010db8000000000000000000000001 20010db8000000000000000000000100"
    "88 00 ab74 e0000000 20010db8000000000000000000000001 020100005e000201"
);

/// Unsolicited NA on becoming master (also the answer to a DAD probe):
/// 2001:db8::1 → ff02::1 / 33:33:00:00:00:01. TShark: flags 0xa0000000
/// Router, Override, checksum 0x1b2a [correct], TLLA 00:00:5e:00:02:01.
const NA_UNSOLICITED: [u8; 86] = hex!(
    "333300000001 00005e000201 86dd"
    "60000000 0020 3a ff 20010db8000000000000000000000001 ff020000000000000000000000000001"
    "88 00 1b2a a0000000 20010db8000000000000000000000001 020100005e000201"
);

/// ICMPv6 Echo Request 2001:db8::100 → 2001:db8::1, hop limit 64, id
/// 0x1c2d, seq 1, 27 bytes of data. TShark: checksum 0x68ea [correct].
const ECHO_REQUEST: [u8; 89] = hex!(
    "00005e000201 020000000064 86dd"
    "60000000 0023 3a 40 20010db8000000000000000000000100 20010db8000000000000000000000001"
    "80 00 68ea 1c2d 0001 78767272702d70696e672d30313233343536373839616263646566"
);

/// Its reply built in place. TShark: Echo (ping) reply, checksum 0x67ea
/// [correct], "request in 1".
const ECHO_REPLY: [u8; 89] = hex!(
    "020000000064 00005e000201 86dd"
    "60000000 0023 3a 40 20010db8000000000000000000000001 20010db8000000000000000000000100"
    "81 00 67ea 1c2d 0001 78767272702d70696e672d30313233343536373839616263646566"
);

/// Kernel: Duplicate Address Detection probe for 2001:db8::a from ::, with a
/// Nonce option (type 14, RFC 7527) and no SLLA.
const KERNEL_DAD_NS: [u8; 86] = hex!(
    "3333ff00000a 02000000000a 86dd"
    "60000000 0020 3a ff 00000000000000000000000000000000 ff0200000000000000000001ff00000a"
    "87 00 ca57 00000000 20010db800000000000000000000000a 0e019397bfac2136"
);

/// Kernel: multicast NS for 2001:db8::b from 2001:db8::a, SLLA 02:..:0a.
const KERNEL_NS: [u8; 86] = hex!(
    "3333ff00000b 02000000000a 86dd"
    "60000000 0020 3a ff 20010db800000000000000000000000a ff0200000000000000000001ff00000b"
    "87 00 1c03 00000000 20010db800000000000000000000000b 010102000000000a"
);

/// Kernel: its solicited NA (S, O), TLLA 02:..:0b.
const KERNEL_NA: [u8; 86] = hex!(
    "02000000000a 02000000000b 86dd"
    "60000000 0020 3a ff 20010db800000000000000000000000b 20010db800000000000000000000000a"
    "88 00 8a4d 60000000 20010db800000000000000000000000b 020102000000000b"
);

/// Kernel: unicast (reachability) NS between link-local addresses.
const KERNEL_UNICAST_NS: [u8; 86] = hex!(
    "02000000000a 02000000000b 86dd"
    "60000000 0020 3a ff fe80000000000000000000fffe00000b fe80000000000000000000fffe00000a"
    "87 00 7cf7 00000000 fe80000000000000000000fffe00000a 010102000000000b"
);

/// Kernel: its answer, S only and no TLLA (allowed for a unicast NS).
const KERNEL_UNICAST_NA: [u8; 78] = hex!(
    "02000000000b 02000000000a 86dd"
    "60000000 0018 3a ff fe80000000000000000000fffe00000a fe80000000000000000000fffe00000b"
    "88 00 3f0b 40000000 fe80000000000000000000fffe00000a"
);

/// Kernel: `ping -6` request (flow label 0x91d7a, 56 bytes of data) ...
const KERNEL_ECHO_REQUEST: [u8; 118] = hex!(
    "02000000000b 02000000000a 86dd"
    "60091d7a 0040 3a 40 20010db800000000000000000000000a 20010db800000000000000000000000b"
    "80 00 3281 0a8f 0001 fde8066b0000000022c6010000000000"
    "101112131415161718191a1b1c1d1e1f202122232425262728292a2b2c2d2e2f3031323334353637"
);

/// ... and the kernel's reply (its own flow label 0xa9eca).
const KERNEL_ECHO_REPLY: [u8; 118] = hex!(
    "02000000000a 02000000000b 86dd"
    "600a9eca 0040 3a 40 20010db800000000000000000000000b 20010db800000000000000000000000a"
    "81 00 3181 0a8f 0001 fde8066b0000000022c6010000000000"
    "101112131415161718191a1b1c1d1e1f202122232425262728292a2b2c2d2e2f3031323334353637"
);

fn ip_of(frame: &[u8]) -> Ipv6Packet<&[u8]> {
    let eth = EthernetFrame::new_checked(frame).unwrap();
    assert_eq!(eth.ethertype(), EtherType::IPV6);
    Ipv6Packet::new_checked(&frame[ETH..]).unwrap()
}

fn nd_of(frame: &[u8]) -> Result<NdRepr, WireError> {
    parse_ipv6_nd(&ip_of(frame))
}

fn hexdump(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn assert_bytes_eq(got: &[u8], want: &[u8]) {
    assert!(
        got == want,
        "frames differ\n got: {}\nwant: {}",
        hexdump(got),
        hexdump(want)
    );
}

fn kernel_mac(last: u8) -> EthernetAddress {
    EthernetAddress([2, 0, 0, 0, 0, last])
}

fn addr(s: &str) -> Ipv6Addr {
    s.parse().unwrap()
}

// ---------------------------------------------------------------------------
// Golden frames

#[test]
fn golden_ns() {
    let mut buf = [0xaa; 128];
    let n = frames::ns_request(&mut buf, CLIENT_MAC, CLIENT, VIP).unwrap();
    assert_bytes_eq(&buf[..n], &NS);
    assert_eq!(
        nd_of(&NS).unwrap(),
        NdRepr::Solicit {
            target: VIP,
            source_lladdr: Some(CLIENT_MAC)
        }
    );
    let eth = EthernetFrame::new_checked(&NS[..]).unwrap();
    assert_eq!(eth.dst_addr(), multicast_mac(solicited_node(VIP)));
    assert_eq!(ip_of(&NS).dst_addr(), addr("ff02::1:ff00:1"));
}

#[test]
fn golden_solicited_na() {
    let mut buf = [0xaa; 128];
    let n = frames::na_reply(&mut buf, CLIENT, CLIENT_MAC, VMAC, VIP, true).unwrap();
    assert_bytes_eq(&buf[..n], &NA_SOLICITED);
    assert_eq!(
        nd_of(&NA_SOLICITED).unwrap(),
        NdRepr::Advert {
            flags: NaFlags::ROUTER | NaFlags::SOLICITED | NaFlags::OVERRIDE,
            target: VIP,
            target_lladdr: Some(VMAC)
        }
    );
    // Without R, only the flags byte and the checksum change.
    let n = frames::na_reply(&mut buf, CLIENT, CLIENT_MAC, VMAC, VIP, false).unwrap();
    let NdRepr::Advert { flags, .. } = nd_of(&buf[..n]).unwrap() else {
        panic!("not an advert")
    };
    assert_eq!(flags, NaFlags::SOLICITED | NaFlags::OVERRIDE);
}

#[test]
fn golden_unsolicited_na_and_dad_answer() {
    let mut buf = [0xaa; 128];
    let n = frames::unsolicited_na(&mut buf, VMAC, VIP).unwrap();
    assert_bytes_eq(&buf[..n], &NA_UNSOLICITED);
    assert_eq!(
        nd_of(&NA_UNSOLICITED).unwrap(),
        NdRepr::Advert {
            flags: NaFlags::ROUTER | NaFlags::OVERRIDE,
            target: VIP,
            target_lladdr: Some(VMAC)
        }
    );
    // RFC 4861 §7.2.4: a probe from :: is answered to ff02::1 with S clear,
    // which is exactly the unsolicited form.
    let n = frames::na_reply(&mut buf, Ipv6Addr::UNSPECIFIED, CLIENT_MAC, VMAC, VIP, true).unwrap();
    assert_bytes_eq(&buf[..n], &NA_UNSOLICITED);
    let eth = EthernetFrame::new_checked(&buf[..n]).unwrap();
    assert_eq!(eth.dst_addr(), ALL_NODES_MAC);
    assert_eq!(ip_of(&buf[..n]).dst_addr(), ALL_NODES);
}

#[test]
fn golden_icmpv6_echo() {
    let ip = ip_of(&ECHO_REQUEST);
    let data = b"xvrrp-ping-0123456789abcdef";
    let want = Icmpv6Repr::EchoRequest {
        ident: 0x1c2d,
        seq_no: 1,
        data,
    };
    let icmp = Icmpv6Packet::new_checked(ip.payload()).unwrap();
    assert_eq!(Icmpv6Repr::parse(&icmp, CLIENT, VIP).unwrap(), want);

    // Construct the request from its representations.
    let mut built = [0u8; 89];
    let mut eth = EthernetFrame::new_unchecked(&mut built[..]);
    eth.set_dst_addr(VMAC);
    eth.set_src_addr(CLIENT_MAC);
    eth.set_ethertype(EtherType::IPV6);
    Ipv6Repr::parse(&ip)
        .unwrap()
        .emit(&mut Ipv6Packet::new_unchecked(&mut built[ETH..]));
    want.emit(
        &mut Icmpv6Packet::new_unchecked(&mut built[ETH + 40..]),
        CLIENT,
        VIP,
    );
    assert_bytes_eq(&built, &ECHO_REQUEST);

    let mut frame = ECHO_REQUEST;
    assert_eq!(frames::icmpv6_echo_reply_in_place(&mut frame).unwrap(), 89);
    assert_bytes_eq(&frame, &ECHO_REPLY);
    let reply = ip_of(&ECHO_REPLY);
    assert_eq!(
        Icmpv6Repr::parse(
            &Icmpv6Packet::new_checked(reply.payload()).unwrap(),
            VIP,
            CLIENT
        )
        .unwrap(),
        Icmpv6Repr::EchoReply {
            ident: 0x1c2d,
            seq_no: 1,
            data
        }
    );
    // An echo is not ND: its hop limit of 64 already fails.
    assert_eq!(nd_of(&ECHO_REQUEST), Err(WireError::BadTtl(64)));
}

// ---------------------------------------------------------------------------
// Kernel captures

#[test]
fn kernel_frames_parse() {
    // The DAD probe: from ::, no SLLA, an unknown Nonce option skipped.
    assert_eq!(
        nd_of(&KERNEL_DAD_NS).unwrap(),
        NdRepr::Solicit {
            target: addr("2001:db8::a"),
            source_lladdr: None
        }
    );
    assert_eq!(
        nd_of(&KERNEL_NS).unwrap(),
        NdRepr::Solicit {
            target: addr("2001:db8::b"),
            source_lladdr: Some(kernel_mac(0x0a))
        }
    );
    assert_eq!(
        nd_of(&KERNEL_NA).unwrap(),
        NdRepr::Advert {
            flags: NaFlags::SOLICITED | NaFlags::OVERRIDE,
            target: addr("2001:db8::b"),
            target_lladdr: Some(kernel_mac(0x0b))
        }
    );
    assert_eq!(
        nd_of(&KERNEL_UNICAST_NS).unwrap(),
        NdRepr::Solicit {
            target: addr("fe80::ff:fe00:a"),
            source_lladdr: Some(kernel_mac(0x0b))
        }
    );
    assert_eq!(
        nd_of(&KERNEL_UNICAST_NA).unwrap(),
        NdRepr::Advert {
            flags: NaFlags::SOLICITED,
            target: addr("fe80::ff:fe00:a"),
            target_lladdr: None
        }
    );
    // The kernel's link-local addresses are the EUI-64 ones.
    assert_eq!(
        nd::link_local_from_mac(kernel_mac(0x0a)),
        addr("fe80::ff:fe00:a")
    );
}

#[test]
fn kernel_frames_reemit_identically() {
    for frame in [
        &KERNEL_DAD_NS[..],
        &KERNEL_NS,
        &KERNEL_NA,
        &KERNEL_UNICAST_NS,
        &KERNEL_UNICAST_NA,
    ] {
        let ip = ip_of(frame);
        let repr = parse_ipv6_nd(&ip).unwrap();
        let icmp = ip.payload();
        let mut out = vec![0u8; repr.buffer_len()];
        repr.emit(
            &mut Icmpv6Packet::new_unchecked(&mut out[..]),
            ip.src_addr(),
            ip.dst_addr(),
        );
        if matches!(
            repr,
            NdRepr::Solicit {
                source_lladdr: None,
                ..
            }
        ) && icmp.len() > 24
        {
            // The nonce is not kept: the re-emitted probe stops at the target.
            assert_eq!(out[4..], icmp[4..24]);
        } else {
            assert_bytes_eq(&out, icmp);
        }
    }
}

#[test]
fn kernel_echo_request_answered_like_the_kernel() {
    let mut frame = KERNEL_ECHO_REQUEST;
    assert_eq!(frames::icmpv6_echo_reply_in_place(&mut frame).unwrap(), 118);
    // Identical to the kernel's reply except for the flow label (bytes 1..4 of
    // the IPv6 header, outside the checksum), which we reflect.
    assert_bytes_eq(&frame[..ETH + 1], &KERNEL_ECHO_REPLY[..ETH + 1]);
    assert_eq!(frame[ETH + 1] & 0xf0, KERNEL_ECHO_REPLY[ETH + 1] & 0xf0);
    assert_bytes_eq(&frame[ETH + 4..], &KERNEL_ECHO_REPLY[ETH + 4..]);
    assert_eq!(
        ip_of(&frame).flow_label(),
        ip_of(&KERNEL_ECHO_REQUEST).flow_label()
    );
}

// ---------------------------------------------------------------------------
// RFC 4861 §7.1 validity checks, one mutation of a valid frame each

/// Rewrites the Payload Length to match the frame and recomputes the ICMPv6
/// checksum, so that only the mutation under test is wrong.
fn refix(frame: &mut [u8]) {
    let payload_len = u16::try_from(frame.len() - ETH - 40).unwrap();
    let mut ip = Ipv6Packet::new_unchecked(&mut frame[ETH..]);
    ip.set_payload_len(payload_len);
    let (src, dst) = (ip.src_addr(), ip.dst_addr());
    Icmpv6Packet::new_unchecked(ip.payload_mut()).fill_checksum(src, dst);
}

fn mutated(base: &[u8], f: impl FnOnce(&mut Vec<u8>)) -> Vec<u8> {
    let mut v = base.to_vec();
    f(&mut v);
    refix(&mut v);
    v
}

fn set_src(frame: &mut [u8], a: Ipv6Addr) {
    Ipv6Packet::new_unchecked(&mut frame[ETH..]).set_src_addr(a);
}

fn set_dst(frame: &mut [u8], a: Ipv6Addr) {
    Ipv6Packet::new_unchecked(&mut frame[ETH..]).set_dst_addr(a);
}

/// Offset of the ICMPv6 message in a frame.
const ICMP: usize = ETH + 40;

#[test]
fn refix_keeps_valid_frames_valid() {
    assert!(nd_of(&mutated(&NS, |_| {})).is_ok());
    assert!(nd_of(&mutated(&NA_SOLICITED, |_| {})).is_ok());
}

#[test]
fn hop_limit_must_be_255() {
    for hl in [254, 64, 1, 0] {
        let f = mutated(&NS, |f| f[ETH + 7] = hl);
        assert_eq!(nd_of(&f), Err(WireError::BadTtl(hl)));
    }
}

#[test]
fn code_must_be_zero() {
    let f = mutated(&NS, |f| f[ICMP + 1] = 1);
    assert_eq!(nd_of(&f), Err(WireError::BadType(135)));
    let f = mutated(&NA_SOLICITED, |f| f[ICMP + 1] = 1);
    assert_eq!(nd_of(&f), Err(WireError::BadType(136)));
}

#[test]
fn other_icmpv6_types_are_not_nd() {
    for t in [
        icmpv6::TYPE_ROUTER_SOLICIT,
        icmpv6::TYPE_ROUTER_ADVERT,
        icmpv6::TYPE_REDIRECT,
        icmpv6::TYPE_ECHO_REQUEST,
    ] {
        let f = mutated(&NS, |f| f[ICMP] = t);
        assert_eq!(nd_of(&f), Err(WireError::BadType(t)));
    }
}

#[test]
fn shorter_than_24_bytes_rejected() {
    for len in [8, 16, 20, 23] {
        let f = mutated(&NS, |f| f.truncate(ICMP + len));
        assert_eq!(nd_of(&f), Err(WireError::Truncated { need: 24, got: len }));
    }
    let f = mutated(&NS, |f| f.truncate(ICMP + 7));
    assert_eq!(nd_of(&f), Err(WireError::Truncated { need: 8, got: 7 }));
}

#[test]
fn multicast_target_rejected() {
    let f = mutated(&NS, |f| {
        f[ICMP + 8..ICMP + 24].copy_from_slice(&ALL_NODES.octets());
    });
    assert_eq!(nd_of(&f), Err(WireError::BadNd));
    let f = mutated(&NA_SOLICITED, |f| {
        f[ICMP + 8..ICMP + 24].copy_from_slice(&addr("ff02::1:ff00:1").octets());
    });
    assert_eq!(nd_of(&f), Err(WireError::BadNd));
}

#[test]
fn malformed_options_rejected() {
    // Length zero: RFC 4861 §4.6 says discard (and a walker would never end).
    let f = mutated(&NS, |f| f[ICMP + 25] = 0);
    assert_eq!(nd_of(&f), Err(WireError::BadNd));
    // An unknown option of length zero after a valid one.
    let f = mutated(&NS, |f| f.extend_from_slice(&[99, 0, 0, 0, 0, 0, 0, 0]));
    assert_eq!(nd_of(&f), Err(WireError::BadNd));
    // Running past the message.
    let f = mutated(&NS, |f| f[ICMP + 25] = 2);
    assert_eq!(nd_of(&f), Err(WireError::BadNd));
    // A lone trailing byte.
    let f = mutated(&NA_SOLICITED, |f| f.push(2));
    assert_eq!(nd_of(&f), Err(WireError::BadNd));
    // A link-layer address option of 16 bytes is not an Ethernet address.
    let f = mutated(&NA_SOLICITED, |f| {
        f[ICMP + 25] = 2;
        f.extend_from_slice(&[0; 8]);
    });
    assert_eq!(nd_of(&f), Err(WireError::BadNd));
}

#[test]
fn unknown_and_foreign_options_skipped() {
    // An unknown option before the SLLA, and a TLLA (meant for NAs) after it.
    let f = mutated(&NS, |f| {
        let slla = f.split_off(ICMP + 24);
        f.extend_from_slice(&[200, 2, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14]);
        f.extend_from_slice(&slla);
        f.extend_from_slice(&[2, 1, 9, 9, 9, 9, 9, 9]);
    });
    assert_eq!(
        nd_of(&f),
        Ok(NdRepr::Solicit {
            target: VIP,
            source_lladdr: Some(CLIENT_MAC)
        })
    );
    // Of two TLLAs, the first is kept.
    let f = mutated(&NA_SOLICITED, |f| {
        f.extend_from_slice(&[2, 1, 9, 9, 9, 9, 9, 9]);
    });
    let NdRepr::Advert { target_lladdr, .. } = nd_of(&f).unwrap() else {
        panic!("not an advert")
    };
    assert_eq!(target_lladdr, Some(VMAC));
}

#[test]
fn bad_checksum_rejected() {
    let mut f = NS;
    f[ICMP + 30] ^= 0x01;
    assert_eq!(nd_of(&f), Err(WireError::BadChecksum));
    // The pseudo-header is covered: the same message from another source.
    let mut f = NS;
    set_src(&mut f, addr("2001:db8::101"));
    assert_eq!(nd_of(&f), Err(WireError::BadChecksum));
}

#[test]
fn unspecified_source_rules() {
    // From :: with an SLLA.
    let f = mutated(&NS, |f| set_src(f, Ipv6Addr::UNSPECIFIED));
    assert_eq!(nd_of(&f), Err(WireError::BadNd));
    // From :: to a unicast address.
    let f = mutated(&KERNEL_DAD_NS, |f| set_dst(f, addr("2001:db8::a")));
    assert_eq!(nd_of(&f), Err(WireError::BadDestination));
    // An NA cannot come from :: (or a group).
    let f = mutated(&NA_SOLICITED, |f| set_src(f, Ipv6Addr::UNSPECIFIED));
    assert_eq!(nd_of(&f), Err(WireError::BadSource));
    let f = mutated(&NA_SOLICITED, |f| set_src(f, ALL_NODES));
    assert_eq!(nd_of(&f), Err(WireError::BadSource));
}

#[test]
fn ns_destination_is_unicast_or_solicited_node() {
    for dst in [ALL_NODES, addr("ff02::2"), Ipv6Addr::UNSPECIFIED] {
        let f = mutated(&NS, |f| set_dst(f, dst));
        assert_eq!(nd_of(&f), Err(WireError::BadDestination), "{dst}");
    }
    // Any solicited-node group, and any unicast address, are accepted.
    for dst in [addr("ff02::1:ff12:3456"), VIP] {
        let f = mutated(&NS, |f| set_dst(f, dst));
        assert!(nd_of(&f).is_ok(), "{dst}");
    }
    let f = mutated(&NS, |f| set_src(f, ALL_NODES));
    assert_eq!(nd_of(&f), Err(WireError::BadSource));
}

#[test]
fn multicast_na_must_not_be_solicited() {
    let f = mutated(&NA_SOLICITED, |f| set_dst(f, ALL_NODES));
    assert_eq!(nd_of(&f), Err(WireError::BadNd));
    let f = mutated(&NA_SOLICITED, |f| set_dst(f, Ipv6Addr::UNSPECIFIED));
    assert_eq!(nd_of(&f), Err(WireError::BadDestination));
}

#[test]
fn ip_layer_checks() {
    let f = mutated(&NS, |f| f[ETH] = 0x40);
    assert_eq!(nd_of(&f), Err(WireError::BadIpHeader));
    let f = mutated(&NS, |f| f[ETH + 6] = 44);
    assert_eq!(nd_of(&f), Err(WireError::Fragment));
    let f = mutated(&NS, |f| f[ETH + 6] = 0);
    assert_eq!(nd_of(&f), Err(WireError::UnexpectedProtocol(0)));
    assert_eq!(
        parse_ipv6_nd(&Ipv6Packet::new_unchecked(&NS[ETH..ETH + 39])),
        Err(WireError::Truncated { need: 40, got: 39 })
    );
    // Payload Length beyond the buffer.
    assert_eq!(
        parse_ipv6_nd(&Ipv6Packet::new_unchecked(&NS[ETH..NS.len() - 1])),
        Err(WireError::BadIpHeader)
    );
    // Ethernet padding after the payload is ignored.
    let mut padded = NS.to_vec();
    padded.extend_from_slice(&[0xee; 6]);
    assert!(nd_of(&padded).is_ok());
}

// ---------------------------------------------------------------------------
// Builders and the echo responder

#[test]
fn ns_from_unspecified_leaves_out_the_slla() {
    let mut buf = [0u8; 128];
    let n = frames::ns_request(&mut buf, CLIENT_MAC, Ipv6Addr::UNSPECIFIED, VIP).unwrap();
    assert_eq!(n, 78);
    assert_eq!(
        nd_of(&buf[..n]).unwrap(),
        NdRepr::Solicit {
            target: VIP,
            source_lladdr: None
        }
    );
}

#[test]
fn builders_refuse_short_buffers_without_writing() {
    let mut buf = [0xaa; 85];
    let want = Err(WireError::Truncated { need: 86, got: 85 });
    assert_eq!(
        frames::na_reply(&mut buf, CLIENT, CLIENT_MAC, VMAC, VIP, true),
        want
    );
    assert_eq!(frames::unsolicited_na(&mut buf, VMAC, VIP), want);
    assert_eq!(frames::ns_request(&mut buf, CLIENT_MAC, CLIENT, VIP), want);
    assert!(buf.iter().all(|&b| b == 0xaa));
    // Exactly 86 is enough.
    assert_eq!(frames::unsolicited_na(&mut [0; 86], VMAC, VIP), Ok(86));
}

#[test]
fn solicited_node_helpers() {
    assert!(is_solicited_node(solicited_node(CLIENT)));
    assert_eq!(
        multicast_mac(solicited_node(CLIENT)),
        EthernetAddress([0x33, 0x33, 0xff, 0, 1, 0])
    );
}

#[test]
fn echo_reply_refusals_leave_the_frame_unchanged() {
    let cases: Vec<(Vec<u8>, WireError)> = vec![
        (
            mutated(&ECHO_REQUEST, |f| f[ETH + 6] = 17),
            WireError::UnexpectedProtocol(17),
        ),
        (
            mutated(&ECHO_REQUEST, |f| f[ETH + 6] = 44),
            WireError::Fragment,
        ),
        (
            mutated(&ECHO_REQUEST, |f| f[ICMP] = icmpv6::TYPE_ECHO_REPLY),
            WireError::BadType(129),
        ),
        (
            mutated(&ECHO_REQUEST, |f| f[ICMP + 1] = 1),
            WireError::BadType(128),
        ),
        (
            mutated(&ECHO_REQUEST, |f| set_src(f, ALL_NODES)),
            WireError::BadSource,
        ),
        (
            mutated(&ECHO_REQUEST, |f| set_src(f, Ipv6Addr::UNSPECIFIED)),
            WireError::BadSource,
        ),
        (
            mutated(&ECHO_REQUEST, |f| set_dst(f, ALL_NODES)),
            WireError::BadDestination,
        ),
        (
            {
                let mut f = ECHO_REQUEST.to_vec();
                f[ICMP + 10] ^= 1;
                f
            },
            WireError::BadChecksum,
        ),
        (
            {
                let mut f = ECHO_REQUEST.to_vec();
                f[12] = 0x08;
                f[13] = 0x00;
                f
            },
            WireError::UnknownEtherType(0x0800),
        ),
        (
            mutated(&ECHO_REQUEST, |f| f.truncate(ICMP + 6)),
            WireError::Truncated { need: 8, got: 6 },
        ),
        (
            ECHO_REQUEST[..10].to_vec(),
            WireError::Truncated { need: 14, got: 10 },
        ),
    ];
    for (mut f, want) in cases {
        let before = f.clone();
        assert_eq!(frames::icmpv6_echo_reply_in_place(&mut f), Err(want));
        assert_eq!(f, before);
    }
}

#[test]
fn echo_reply_ignores_trailing_bytes() {
    let mut f = ECHO_REQUEST.to_vec();
    f.extend_from_slice(&[0xee; 7]);
    assert_eq!(frames::icmpv6_echo_reply_in_place(&mut f), Ok(89));
    assert_bytes_eq(&f[..89], &ECHO_REPLY);
}
