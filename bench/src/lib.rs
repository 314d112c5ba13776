//! Fixtures of the micro-benchmarks in `benches/hot.rs` and
//! `benches/pipeline.rs`: the frames, fast-path tables, routes (up to an
//! Internet-sized table) and virtual-router configurations they run on.
//!
//! Frames are built with the project's own codecs (`xvrrp_wire::frames`), so
//! a benchmark measures exactly what the appliance receives. The topology is
//! the lab's gateway: a LAN port (192.0.2.0/24, VIP .1, VRID 1) and a WAN
//! port (203.0.113.0/24, VIP .1, VRID 2), a client on the LAN and a server
//! on the WAN.

use std::collections::HashSet;
use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

use xvrrp_control::{vrrp::InstanceConfig, RouterId};
use xvrrp_dataplane::{
    lpm::{NextHop, Route, RouteTable},
    process::{InstanceView, PortView, Tables},
};
use xvrrp_wire::{
    error::WireError,
    ethernet::{EtherType, EthernetAddress, EthernetFrame, HEADER_LEN},
    frames,
    ipv4::{self, Ipv4Packet, Ipv4Repr},
    vrrp::{AddrList, ChecksumKind, Version, VrrpRepr},
};

/// The client's MAC (LAN side).
pub const CLIENT_MAC: EthernetAddress = EthernetAddress([2, 0, 0, 0, 0, 0x64]);
/// The server's MAC (WAN side).
pub const SERVER_MAC: EthernetAddress = EthernetAddress([2, 0, 0, 0, 1, 0x64]);
/// The appliance's own LAN port MAC.
pub const LAN_MAC: EthernetAddress = EthernetAddress([2, 0, 0, 0, 0, 2]);
/// The appliance's own WAN port MAC.
pub const WAN_MAC: EthernetAddress = EthernetAddress([2, 0, 0, 0, 1, 2]);
/// The client's address.
pub const CLIENT: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 100);
/// The server's address.
pub const SERVER: Ipv4Addr = Ipv4Addr::new(203, 0, 113, 100);
/// The LAN virtual address (VRID 1).
pub const LAN_VIP: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 1);
/// The WAN virtual address (VRID 2).
pub const WAN_VIP: Ipv4Addr = Ipv4Addr::new(203, 0, 113, 1);
/// The peer appliance's LAN address: the source of the adverts it sends.
pub const PEER_LAN: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 3);
/// Port index of the LAN in [`gateway_tables`].
pub const LAN: usize = 0;
/// Port index of the WAN in [`gateway_tables`].
pub const WAN: usize = 1;
/// Room for any frame the benchmarks build or the processor writes.
pub const FRAME_BUF: usize = 2048;

/// The fast-path tables of the lab gateway: two ports, one VRRPv3 instance
/// on each (answering ICMP echo), and the two connected routes.
pub fn gateway_tables() -> Tables {
    gateway_tables_with(Vec::new())
}

/// [`gateway_tables`] with `extra` routes beside the two connected ones.
pub fn gateway_tables_with(extra: Vec<Route<Ipv4Addr>>) -> Tables {
    let ports = vec![
        PortView {
            name: "lan0".into(),
            mac: LAN_MAC,
            addrs4: vec![(Ipv4Addr::new(192, 0, 2, 2), 24)],
            addrs6: Vec::new(),
        },
        PortView {
            name: "wan0".into(),
            mac: WAN_MAC,
            addrs4: vec![(Ipv4Addr::new(203, 0, 113, 2), 24)],
            addrs6: Vec::new(),
        },
    ];
    let instance = |port: usize, vrid, vip| InstanceView {
        id: RouterId(u16::try_from(port).unwrap_or(u16::MAX)),
        port,
        vrid,
        version: Version::V3,
        vmac: EthernetAddress::vrrp_v4(vrid),
        vips4: vec![(vip, 24)],
        vips6: Vec::new(),
        accept: true,
        unicast: false,
    };
    let connected = |net, port| Route {
        net,
        len: 24,
        via: None,
        port,
    };
    Tables {
        ports,
        instances: vec![instance(LAN, 1, LAN_VIP), instance(WAN, 2, WAN_VIP)],
        routes4: RouteTable::new(
            [
                connected(Ipv4Addr::new(192, 0, 2, 0), LAN),
                connected(Ipv4Addr::new(203, 0, 113, 0), WAN),
            ]
            .into_iter()
            .chain(extra),
        ),
        routes6: RouteTable::default(),
    }
}

/// A VRRPv3 advertisement for `vrid` at `priority` (interval 1 s, the LAN
/// VIP, RFC 9568 checksum) from the peer's LAN address to 224.0.0.18, as
/// one Ethernet frame.
///
/// # Errors
/// Whatever the frame builder reports (not expected for these inputs).
pub fn advert_frame(vrid: u8, priority: u8) -> Result<Vec<u8>, WireError> {
    let vips = [LAN_VIP];
    let repr = VrrpRepr {
        version: Version::V3,
        vrid,
        priority,
        max_advert_int: 100,
        addresses: AddrList::V4(&vips),
    };
    let mut buf = [0u8; FRAME_BUF];
    let n = frames::advert_v4(
        &mut buf,
        EthernetAddress::vrrp_v4(vrid),
        PEER_LAN,
        frames::VRRP_V4_MCAST,
        frames::VRRP_V4_MCAST_MAC,
        &repr,
        ChecksumKind::Rfc9568,
    )?;
    Ok(buf.get(..n).unwrap_or_default().to_vec())
}

/// A broadcast ARP request from the client asking who has `target`.
///
/// # Errors
/// Whatever the frame builder reports (not expected for these inputs).
pub fn arp_request_frame(target: Ipv4Addr) -> Result<Vec<u8>, WireError> {
    let mut buf = [0u8; FRAME_BUF];
    let n = frames::arp_request(&mut buf, CLIENT_MAC, CLIENT, target)?;
    Ok(buf.get(..n).unwrap_or_default().to_vec())
}

/// An IPv4 datagram from the client to `dst` with `ttl`, protocol UDP and
/// `payload_len` zero bytes, sent to Ethernet `dst_mac`. A 26-byte payload
/// makes the 60-byte minimum frame (64 bytes on the wire with the FCS).
///
/// # Errors
/// [`WireError::BadLength`] if the datagram does not fit an IPv4 header.
pub fn ipv4_frame(
    dst_mac: EthernetAddress,
    dst: Ipv4Addr,
    ttl: u8,
    payload_len: usize,
) -> Result<Vec<u8>, WireError> {
    let mut frame = vec![0u8; HEADER_LEN + ipv4::HEADER_LEN + payload_len];
    let mut eth = EthernetFrame::new_checked(&mut frame[..])?;
    eth.set_dst_addr(dst_mac);
    eth.set_src_addr(CLIENT_MAC);
    eth.set_ethertype(EtherType::IPV4);
    let repr = Ipv4Repr {
        src: CLIENT,
        dst,
        protocol: 17,
        ttl,
        tos: 0,
        ident: 7,
        dont_frag: true,
        payload_len,
    };
    let l3 = frame.get_mut(HEADER_LEN..).ok_or(WireError::BadLength)?;
    repr.emit(&mut Ipv4Packet::new_unchecked(l3));
    Ok(frame)
}

/// A table of 16 routes (15 disjoint prefixes of lengths 16 to 30, every
/// third via a gateway, plus a default route via the WAN gateway) and one
/// probe address per route with the next hop a correct longest-prefix match
/// returns for it. Every probe also matches the default route, so only the
/// longest match is right.
pub fn sixteen_routes() -> (RouteTable<Ipv4Addr>, Vec<(Ipv4Addr, NextHop<Ipv4Addr>)>) {
    let gw = Ipv4Addr::new(203, 0, 113, 254);
    let mut routes = Vec::with_capacity(16);
    let mut probes = Vec::with_capacity(16);
    for i in 0u8..15 {
        let net = Ipv4Addr::new(10 + i, i, 0, 0);
        let via = (i % 3 == 0).then_some(Ipv4Addr::new(192, 0, 2, 10 + i));
        let port = usize::from(i % 2);
        routes.push(Route {
            net,
            len: 16 + i,
            via,
            port,
        });
        let probe = Ipv4Addr::new(10 + i, i, 0, 1);
        probes.push((
            probe,
            NextHop {
                port,
                addr: via.unwrap_or(probe),
            },
        ));
    }
    routes.push(Route {
        net: Ipv4Addr::UNSPECIFIED,
        len: 0,
        via: Some(gw),
        port: WAN,
    });
    probes.push((
        Ipv4Addr::new(198, 51, 100, 7),
        NextHop {
            port: WAN,
            addr: gw,
        },
    ));
    (RouteTable::new(routes), probes)
}

/// A VRRPv3 virtual router on the LAN with a 1 s interval and preemption
/// on, at `priority`, whose primary address is 192.0.2.`host`.
pub fn router_config(name: &str, priority: u8, host: u8) -> InstanceConfig {
    InstanceConfig {
        name: name.to_owned(),
        vrid: 1,
        version: Version::V3,
        priority,
        advert_interval_cs: 100,
        preempt: true,
        preempt_delay: Duration::ZERO,
        primary_addr: IpAddr::V4(Ipv4Addr::new(192, 0, 2, host)),
    }
}

/// The WAN routers the [`internet_routes`] point at (neighbours of `wan0`).
pub const WAN_GATEWAYS: [Ipv4Addr; 4] = [
    Ipv4Addr::new(203, 0, 113, 250),
    Ipv4Addr::new(203, 0, 113, 251),
    Ipv4Addr::new(203, 0, 113, 252),
    Ipv4Addr::new(203, 0, 113, 253),
];

/// The MAC of `WAN_GATEWAYS[i]`.
pub fn wan_gateway_mac(i: usize) -> EthernetAddress {
    EthernetAddress([2, 0, 0, 0, 1, 0xf0 | u8::try_from(i & 0x0f).unwrap_or(0)])
}

/// A small deterministic generator (xorshift64*): the same tables and
/// probes on every run, no dependency.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// A generator from a non-zero seed.
    pub fn new(seed: u64) -> Rng {
        Rng(seed.max(1))
    }

    /// The next 64 pseudo-random bits.
    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// 32 pseudo-random bits.
    pub fn next_u32(&mut self) -> u32 {
        u32::try_from(self.next_u64() >> 32).unwrap_or(0)
    }

    /// A number below `n` (`n` > 0; the modulo bias does not matter here).
    pub fn below(&mut self, n: usize) -> usize {
        usize::try_from(self.next_u64() % u64::try_from(n.max(1)).unwrap_or(1)).unwrap_or(0)
    }
}

/// `n` distinct IPv4 prefixes shaped like a full Internet table (most /24,
/// then /22–/23, /16–/21 and a few longer), outside the lab's two connected
/// subnets, each via one of the [`WAN_GATEWAYS`] out of the WAN port.
pub fn internet_routes(n: usize, seed: u64) -> Vec<Route<Ipv4Addr>> {
    // Prefix lengths by weight, roughly as in a global BGP table.
    const LENGTHS: [(u8, u32); 10] = [
        (24, 60),
        (23, 8),
        (22, 10),
        (21, 5),
        (20, 5),
        (19, 3),
        (18, 2),
        (16, 3),
        (28, 2),
        (32, 2),
    ];
    let total: u32 = LENGTHS.iter().map(|(_, w)| w).sum();
    let mut rng = Rng::new(seed);
    let mut seen = HashSet::with_capacity(n);
    let mut routes = Vec::with_capacity(n);
    while routes.len() < n {
        let mut pick = rng.next_u32() % total;
        let len = LENGTHS
            .iter()
            .find(|(_, w)| {
                let hit = pick < *w;
                pick = pick.saturating_sub(*w);
                hit
            })
            .map_or(24, |(l, _)| *l);
        let mask = u32::MAX.checked_shl(32 - u32::from(len)).unwrap_or(0);
        let net = rng.next_u32() & mask;
        let first = net >> 24;
        // Not in 0/8, 127/8, multicast and above, nor the lab's subnets.
        let lab = (net & 0xffff_ff00) == 0xc000_0200 || (net & 0xffff_ff00) == 0xcb00_7100;
        if first == 0 || first == 127 || first >= 224 || lab || !seen.insert((net, len)) {
            continue;
        }
        routes.push(Route {
            net: Ipv4Addr::from(net),
            len,
            via: Some(WAN_GATEWAYS[routes.len() % WAN_GATEWAYS.len()]),
            port: WAN,
        });
    }
    routes
}

/// `count` destinations inside `routes` (a random host of a random route
/// each), with the next hop a correct longest-prefix match returns for it,
/// found by brute force over every route.
pub fn probes_into(
    routes: &[Route<Ipv4Addr>],
    count: usize,
    seed: u64,
) -> Vec<(Ipv4Addr, NextHop<Ipv4Addr>)> {
    let mut rng = Rng::new(seed);
    (0..count)
        .filter_map(|_| {
            let r = routes.get(rng.below(routes.len()))?;
            let mask = u32::MAX.checked_shl(32 - u32::from(r.len)).unwrap_or(0);
            let dst = Ipv4Addr::from(u32::from(r.net) | (rng.next_u32() & !mask));
            let best = routes
                .iter()
                .filter(|c| {
                    let m = u32::MAX.checked_shl(32 - u32::from(c.len)).unwrap_or(0);
                    u32::from(dst) & m == u32::from(c.net) & m
                })
                .max_by_key(|c| c.len)?;
            Some((
                dst,
                NextHop {
                    port: best.port,
                    addr: best.via.unwrap_or(dst),
                },
            ))
        })
        .collect()
}
