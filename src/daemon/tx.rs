//! Frames the control thread sends: advertisements (to the group or each
//! unicast peer) and address announcements, on its own packet socket per
//! port (`crate::rawtx`). A frame that finds no room is kept and sent on the
//! next pass, in order, and counted: an advert is never dropped for want of
//! room (docs/conformance.md F15).

use std::collections::VecDeque;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::time::Instant;

use xvrrp_control::{vrrp::Router, RouterSpec};
use xvrrp_dataplane::InstanceView;
use xvrrp_wire::{
    ethernet::EthernetAddress,
    frames,
    vrrp::{AddrList, Version, VrrpRepr},
};

use crate::peers::PeerMacs;
use crate::rawtx::{RawTx, Sent};

/// Frames kept for a later pass at most; past that the oldest go (counted):
/// only a port that accepts nothing for seconds gets there.
const MAX_PENDING: usize = 8192;

/// Counters of the control thread's transmit path.
#[derive(Debug, Default, Clone, Copy)]
pub(super) struct TxCounters {
    /// Frames the kernel took.
    pub(super) sent: u64,
    /// Frames that found no room at first and waited for a later pass.
    pub(super) deferred: u64,
    /// Frames given up: the wait list was full, or the send failed.
    pub(super) dropped: u64,
}

/// What one router's frames carry, derived once from its fast-path view.
struct Template {
    port: usize,
    vips4: Vec<Ipv4Addr>,
    vips6: Vec<Ipv6Addr>,
}

/// Builds and sends the control thread's frames.
pub(super) struct Transmitter {
    /// Indexed by `RouterId`.
    templates: Vec<Template>,
    peers: PeerMacs,
    out: Sender,
}

fn templates(views: &[InstanceView]) -> Vec<Template> {
    views
        .iter()
        .map(|v| Template {
            port: v.port,
            vips4: v.vips4.iter().map(|(a, _)| *a).collect(),
            vips6: v.vips6.iter().map(|(a, _)| *a).collect(),
        })
        .collect()
}

/// The sockets and the frames waiting for room.
struct Sender {
    /// One socket per port index.
    sockets: Vec<RawTx>,
    /// Frames waiting for room, in order: (port, frame).
    pending: VecDeque<(usize, Vec<u8>)>,
    counters: TxCounters,
}

impl Transmitter {
    /// Templates from the fast path's router views (indexed by `RouterId`)
    /// and one send socket per port (`ifindexes`, by port index).
    ///
    /// # Errors
    /// A socket that cannot be opened (needs CAP_NET_RAW).
    pub(super) fn new(views: &[InstanceView], ifindexes: &[u32]) -> std::io::Result<Self> {
        let sockets = ifindexes
            .iter()
            .map(|i| RawTx::open(*i))
            .collect::<std::io::Result<Vec<_>>>()?;
        Ok(Self {
            templates: templates(views),
            peers: PeerMacs::default(),
            out: Sender {
                sockets,
                pending: VecDeque::new(),
                counters: TxCounters::default(),
            },
        })
    }

    /// The routers are now `views` (a reload), indexed by `RouterId`;
    /// frames waiting for room still go out.
    pub(super) fn set_routers(&mut self, views: &[InstanceView]) {
        self.templates = templates(views);
    }

    /// Counters for `stats`.
    pub(super) fn counters(&self) -> TxCounters {
        self.out.counters
    }

    /// Whether frames wait for room (the loop then comes back soon).
    pub(super) fn has_pending(&self) -> bool {
        !self.out.pending.is_empty()
    }

    /// Sends what waited, in order, until a port has no room again.
    pub(super) fn flush_pending(&mut self) {
        self.out.flush_pending();
    }

    /// Sends one advertisement of `router`; false if none could be queued.
    /// An advert to the group is shown to `sent_to_group` (port, frame).
    pub(super) fn send_advert(
        &mut self,
        router: &Router,
        priority: u8,
        max_advert_int_cs: u16,
        sent_to_group: impl FnOnce(usize, &[u8]),
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
            let port = t.port;
            let Some(n) = advert_frame(&mut buf, spec, primary, &repr, group, group_mac) else {
                return false;
            };
            let frame = buf.get(..n).unwrap_or(&[]);
            let sent = self.out.send(port, frame);
            if sent {
                sent_to_group(port, frame);
            }
            sent
        } else {
            let now = Instant::now();
            let port = t.port;
            let mut sent = false;
            for peer in &spec.unicast_peers {
                let mac = self.peers.lookup(now, &spec.port, *peer);
                if let Some(n) = advert_frame(&mut buf, spec, primary, &repr, *peer, mac) {
                    sent |= self.out.send(port, buf.get(..n).unwrap_or(&[]));
                }
            }
            sent
        }
    }

    /// Announces every virtual address of `spec` once: gratuitous ARP for
    /// IPv4, unsolicited Neighbour Advertisement for IPv6.
    pub(super) fn announce(&mut self, spec: &RouterSpec) {
        let Some(t) = self.templates.get(spec.id.index()) else {
            return;
        };
        let mut buf = [0u8; 128];
        for vip in &t.vips4 {
            if let Ok(n) = frames::garp_v4(&mut buf, spec.vmac, *vip) {
                self.out.send(t.port, buf.get(..n).unwrap_or(&[]));
            }
        }
        for vip in &t.vips6 {
            if let Ok(n) = frames::unsolicited_na(&mut buf, spec.vmac, *vip) {
                self.out.send(t.port, buf.get(..n).unwrap_or(&[]));
            }
        }
    }
}

impl Sender {
    fn flush_pending(&mut self) {
        while let Some((port, frame)) = self.pending.pop_front() {
            match self.sockets.get(port).map(|s| s.send(&frame)) {
                Some(Ok(Sent::Done)) => self.counters.sent += 1,
                Some(Ok(Sent::NoRoom)) => {
                    self.pending.push_front((port, frame));
                    return;
                }
                Some(Err(_)) | None => self.counters.dropped += 1,
            }
        }
    }

    /// Sends `frame` on `port`, or keeps it for a later pass (behind any
    /// frame already waiting, so the order holds).
    fn send(&mut self, port: usize, frame: &[u8]) -> bool {
        if self.pending.is_empty() {
            match self.sockets.get(port).map(|s| s.send(frame)) {
                Some(Ok(Sent::Done)) => {
                    self.counters.sent += 1;
                    return true;
                }
                Some(Ok(Sent::NoRoom)) => {}
                Some(Err(e)) => {
                    self.counters.dropped += 1;
                    tracing::debug!(port, error = %e, "control frame not sent");
                    return false;
                }
                None => return false,
            }
        }
        self.counters.deferred += 1;
        if self.pending.len() >= MAX_PENDING {
            self.pending.pop_front();
            self.counters.dropped += 1;
        }
        self.pending.push_back((port, frame.to_vec()));
        true
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
