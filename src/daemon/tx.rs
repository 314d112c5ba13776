//! Frames the control thread sends through the fast path: advertisements
//! (to the group or each unicast peer) and address announcements.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::time::Instant;

use xvrrp_control::{vrrp::Router, RouterSpec};
use xvrrp_dataplane::{Dataplane, InstanceView};
use xvrrp_wire::{
    ethernet::EthernetAddress,
    frames,
    vrrp::{AddrList, Version, VrrpRepr},
};

use crate::peers::PeerMacs;

/// What one router's frames carry, derived once from its fast-path view.
struct Template {
    port: usize,
    vips4: Vec<Ipv4Addr>,
    vips6: Vec<Ipv6Addr>,
}

/// Builds and queues the control thread's frames.
pub(super) struct Transmitter {
    /// Indexed by `RouterId`.
    templates: Vec<Template>,
    peers: PeerMacs,
}

impl Transmitter {
    /// Templates from the fast path's router views (indexed by `RouterId`).
    pub(super) fn new(views: &[InstanceView]) -> Self {
        let templates = views
            .iter()
            .map(|v| Template {
                port: v.port,
                vips4: v.vips4.iter().map(|(a, _)| *a).collect(),
                vips6: v.vips6.iter().map(|(a, _)| *a).collect(),
            })
            .collect();
        Self {
            templates,
            peers: PeerMacs::default(),
        }
    }

    /// Sends one advertisement of `router`; false if none could be queued.
    pub(super) fn send_advert(
        &mut self,
        dp: &Dataplane,
        router: &Router,
        priority: u8,
        max_advert_int_cs: u16,
    ) -> bool {
        let spec = router.spec();
        let Some(t) = self.templates.get(spec.id.index()) else {
            return false;
        };
        let repr = VrrpRepr {
            version: spec.version,
            vrid: spec.vrid,
            priority,
            max_advert_int: match spec.version {
                Version::V2 => max_advert_int_cs / 100,
                Version::V3 => max_advert_int_cs,
            },
            addresses: if t.vips6.is_empty() {
                AddrList::V4(&t.vips4)
            } else {
                AddrList::V6(&t.vips6)
            },
        };
        let mut buf = [0u8; 1514];
        let primary = router.primary();
        if spec.unicast_peers.is_empty() {
            let (group, group_mac) = if primary.is_ipv6() {
                (IpAddr::V6(frames::VRRP_V6_MCAST), frames::VRRP_V6_MCAST_MAC)
            } else {
                (IpAddr::V4(frames::VRRP_V4_MCAST), frames::VRRP_V4_MCAST_MAC)
            };
            advert_frame(&mut buf, spec, primary, &repr, group, group_mac)
                .is_some_and(|n| dp.send(t.port, buf.get(..n).unwrap_or(&[])))
        } else {
            let now = Instant::now();
            let mut sent = false;
            for peer in &spec.unicast_peers {
                let mac = self.peers.lookup(now, &spec.port, *peer);
                if let Some(n) = advert_frame(&mut buf, spec, primary, &repr, *peer, mac) {
                    sent |= dp.send(t.port, buf.get(..n).unwrap_or(&[]));
                }
            }
            sent
        }
    }

    /// Announces every virtual address of `spec` once: gratuitous ARP for
    /// IPv4, unsolicited Neighbour Advertisement for IPv6.
    pub(super) fn announce(&self, dp: &Dataplane, spec: &RouterSpec) {
        let Some(t) = self.templates.get(spec.id.index()) else {
            return;
        };
        let mut buf = [0u8; 128];
        for vip in &t.vips4 {
            if let Ok(n) = frames::garp_v4(&mut buf, spec.vmac, *vip) {
                dp.send(t.port, buf.get(..n).unwrap_or(&[]));
            }
        }
        for vip in &t.vips6 {
            if let Ok(n) = frames::unsolicited_na(&mut buf, spec.vmac, *vip) {
                dp.send(t.port, buf.get(..n).unwrap_or(&[]));
            }
        }
    }
}

/// Builds one advertisement frame to `dst` (multicast group or unicast peer).
fn advert_frame(
    buf: &mut [u8],
    spec: &RouterSpec,
    src: IpAddr,
    repr: &VrrpRepr<'_>,
    dst: IpAddr,
    dst_mac: EthernetAddress,
) -> Option<usize> {
    match (src, dst) {
        (IpAddr::V4(src), IpAddr::V4(dst)) => {
            frames::advert_v4(buf, spec.vmac, src, dst, dst_mac, repr, spec.checksum).ok()
        }
        (IpAddr::V6(src), IpAddr::V6(dst)) => {
            frames::advert_v6(buf, spec.vmac, src, dst, dst_mac, repr).ok()
        }
        _ => None,
    }
}
