//! Fast-path counters. Each worker counts into plain integers it owns and
//! publishes them once per batch into its own atomics; readers sum workers.

use std::sync::atomic::{AtomicU64, Ordering};

pub use xvrrp_control::DropReason;

/// Per-port counters of one worker (plain, owned by the worker).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct PortCounters {
    /// Frames received from the port's sockets.
    pub rx: u64,
    /// Frames transmitted on the port.
    pub tx: u64,
    /// Frames forwarded out of this port.
    pub forwarded: u64,
    /// Advertisements handed to the control thread.
    pub punted: u64,
    /// ARP replies sent for virtual addresses.
    pub arp_replies: u64,
    /// ARP requests sent to resolve next hops.
    pub arp_requests: u64,
    /// ICMP echo replies sent from virtual addresses.
    pub icmp_replies: u64,
    /// Neighbour Advertisements sent for virtual IPv6 addresses.
    pub nd_replies: u64,
    /// Neighbour Solicitations sent to resolve IPv6 next hops.
    pub nd_requests: u64,
    /// ICMP errors sent (Time Exceeded).
    pub icmp_errors: u64,
    /// Frames forwarded out of this port whose UDP/TCP checksum the sender
    /// had left partial (transmit checksum offload) and the fast path
    /// completed (recognised by the field: see `xvrrp_wire::checksum` for
    /// the one-in-65536 complete checksum counted here too).
    pub checksum_completed: u64,
    /// Frames forwarded towards this port but handed, copied, to the worker
    /// with a socket on it (which counts them `forwarded` when it sends
    /// them): this worker has none.
    pub handed_off: u64,
    /// Frames `xvrrp capture` did not copy: the port's capture ring was
    /// full (the frames themselves were handled as usual).
    pub capture_lost: u64,
    /// Advertisements this worker sent in the control thread's place, the
    /// control thread being late by half an interval (`rescue`).
    pub adverts_rescued: u64,
    /// Bytes of the frames received (`rx`), Ethernet header included.
    pub rx_bytes: u64,
    /// Bytes of the frames transmitted (`tx`), Ethernet header included.
    pub tx_bytes: u64,
}

const PORT_FIELDS: usize = 16;
/// Frame counters of a [`PortCounters`]: all but the two byte counts.
const PACKET_KINDS: usize = PORT_FIELDS - 2;

impl PortCounters {
    fn to_array(self) -> [u64; PORT_FIELDS] {
        [
            self.rx,
            self.tx,
            self.forwarded,
            self.punted,
            self.arp_replies,
            self.arp_requests,
            self.icmp_replies,
            self.nd_replies,
            self.nd_requests,
            self.icmp_errors,
            self.checksum_completed,
            self.handed_off,
            self.capture_lost,
            self.adverts_rescued,
            self.rx_bytes,
            self.tx_bytes,
        ]
    }

    fn from_array(a: [u64; PORT_FIELDS]) -> Self {
        let [rx, tx, forwarded, punted, arp_replies, arp_requests, icmp_replies, nd_replies, nd_requests, icmp_errors, checksum_completed, handed_off, capture_lost, adverts_rescued, rx_bytes, tx_bytes] =
            a;
        Self {
            rx,
            tx,
            forwarded,
            punted,
            arp_replies,
            arp_requests,
            icmp_replies,
            nd_replies,
            nd_requests,
            icmp_errors,
            checksum_completed,
            handed_off,
            capture_lost,
            adverts_rescued,
            rx_bytes,
            tx_bytes,
        }
    }

    /// Frame counts by kind (the field's name): every field but the byte
    /// counts, which [`PortCounters::bytes`] gives.
    pub fn packets(&self) -> [(&'static str, u64); PACKET_KINDS] {
        [
            ("rx", self.rx),
            ("tx", self.tx),
            ("forwarded", self.forwarded),
            ("punted", self.punted),
            ("arp_replies", self.arp_replies),
            ("arp_requests", self.arp_requests),
            ("icmp_replies", self.icmp_replies),
            ("nd_replies", self.nd_replies),
            ("nd_requests", self.nd_requests),
            ("icmp_errors", self.icmp_errors),
            ("checksum_completed", self.checksum_completed),
            ("handed_off", self.handed_off),
            ("capture_lost", self.capture_lost),
            ("adverts_rescued", self.adverts_rescued),
        ]
    }

    /// Byte counts by direction: `rx` (`rx_bytes`) and `tx` (`tx_bytes`).
    pub fn bytes(&self) -> [(&'static str, u64); 2] {
        [("rx", self.rx_bytes), ("tx", self.tx_bytes)]
    }

    /// Every field's name and value, for display: [`PortCounters::packets`]
    /// then the byte counts as `rx_bytes` and `tx_bytes`.
    pub fn fields(&self) -> impl Iterator<Item = (&'static str, u64)> {
        let bytes = [("rx_bytes", self.rx_bytes), ("tx_bytes", self.tx_bytes)];
        self.packets().into_iter().chain(bytes)
    }
}

/// A worker's counters as plain integers, kept by the worker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Counters {
    /// Per port (indexed like the dataplane's ports).
    pub ports: Vec<PortCounters>,
    /// Drops by reason, per port.
    pub drops: Vec<[u64; DropReason::COUNT]>,
    /// Loop iterations that found nothing to do before sleeping.
    pub idle_sleeps: u64,
    sink: PortCounters,
}

impl Counters {
    /// Zeroed counters for `nports` ports.
    pub fn new(nports: usize) -> Self {
        Self {
            ports: vec![PortCounters::default(); nports],
            drops: vec![[0; DropReason::COUNT]; nports],
            idle_sleeps: 0,
            sink: PortCounters::default(),
        }
    }

    /// Counts `n` drops on `port`.
    pub fn drop_n(&mut self, port: usize, reason: DropReason, n: u64) {
        if let Some(c) = self
            .drops
            .get_mut(port)
            .and_then(|d| d.get_mut(reason as usize))
        {
            *c += n;
        }
    }

    /// Counts one drop on `port`.
    #[inline]
    pub fn drop(&mut self, port: usize, reason: DropReason) {
        if let Some(d) = self.drops.get_mut(port) {
            if let Some(c) = d.get_mut(reason as usize) {
                *c += 1;
            }
        }
    }

    /// The counters of `port`; an out-of-range index counts into a sink so
    /// the hot path has no panic.
    #[inline]
    pub fn port(&mut self, port: usize) -> &mut PortCounters {
        match self.ports.get_mut(port) {
            Some(p) => p,
            None => &mut self.sink,
        }
    }
}

/// The published copy of one worker's counters.
#[derive(Debug)]
pub struct WorkerStats {
    ports: Vec<[AtomicU64; PORT_FIELDS]>,
    drops: Vec<[AtomicU64; DropReason::COUNT]>,
    idle_sleeps: AtomicU64,
}

impl WorkerStats {
    /// Zeroed counters for `nports` ports.
    pub fn new(nports: usize) -> Self {
        Self {
            ports: (0..nports)
                .map(|_| std::array::from_fn(|_| AtomicU64::new(0)))
                .collect(),
            drops: (0..nports)
                .map(|_| std::array::from_fn(|_| AtomicU64::new(0)))
                .collect(),
            idle_sleeps: AtomicU64::new(0),
        }
    }

    /// Publishes the worker's counters (single writer: plain stores).
    pub fn publish(&self, c: &Counters) {
        for (dst, src) in self.ports.iter().zip(&c.ports) {
            for (d, s) in dst.iter().zip(src.to_array()) {
                d.store(s, Ordering::Relaxed);
            }
        }
        for (dst, src) in self.drops.iter().zip(&c.drops) {
            for (d, s) in dst.iter().zip(src) {
                d.store(*s, Ordering::Relaxed);
            }
        }
        self.idle_sleeps.store(c.idle_sleeps, Ordering::Relaxed);
    }

    /// Reads a snapshot.
    pub fn snapshot(&self) -> Counters {
        Counters {
            ports: self
                .ports
                .iter()
                .map(|p| {
                    PortCounters::from_array(std::array::from_fn(|i| p[i].load(Ordering::Relaxed)))
                })
                .collect(),
            drops: self
                .drops
                .iter()
                .map(|d| std::array::from_fn(|i| d[i].load(Ordering::Relaxed)))
                .collect(),
            idle_sleeps: self.idle_sleeps.load(Ordering::Relaxed),
            sink: PortCounters::default(),
        }
    }
}

/// The kernel's counters of one AF_XDP socket (`XDP_STATISTICS`): frames
/// lost before the worker could see them, and descriptors refused. They
/// are cumulative for the socket's life.
///
/// Kernels before 5.9 report only the first three; the others are `None`
/// there.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct XskStats {
    /// Received frames dropped: no free frame in the fill ring (copy mode;
    /// also counted in `rx_fill_ring_empty_descs`), or a frame larger than
    /// a UMEM frame.
    pub rx_dropped: u64,
    /// Fill-ring descriptors the kernel found invalid.
    pub rx_invalid_descs: u64,
    /// TX-ring descriptors the kernel found invalid (not sent).
    pub tx_invalid_descs: u64,
    /// Received frames dropped because the RX ring was full (the worker
    /// did not keep up).
    pub rx_ring_full: Option<u64>,
    /// Times the kernel found the fill ring empty when a frame came (the
    /// worker did not give frames back fast enough).
    pub rx_fill_ring_empty_descs: Option<u64>,
    /// Times the kernel, asked to send, found the TX ring empty (every
    /// send wake-up ends on an empty ring: activity, not loss).
    pub tx_ring_empty_descs: Option<u64>,
}

impl XskStats {
    /// Field names (as the kernel's `struct xdp_statistics` has them) and
    /// values, for display.
    pub fn fields(&self) -> [(&'static str, Option<u64>); 6] {
        [
            ("rx_dropped", Some(self.rx_dropped)),
            ("rx_invalid_descs", Some(self.rx_invalid_descs)),
            ("tx_invalid_descs", Some(self.tx_invalid_descs)),
            ("rx_ring_full", self.rx_ring_full),
            ("rx_fill_ring_empty_descs", self.rx_fill_ring_empty_descs),
            ("tx_ring_empty_descs", self.tx_ring_empty_descs),
        ]
    }

    /// The sum of two sockets' counters (a worker serving several queues of
    /// one port); a counter one of them lacks is lacking in the sum.
    pub fn sum(self, other: XskStats) -> XskStats {
        let both = |a: Option<u64>, b: Option<u64>| a.zip(b).map(|(a, b)| a.saturating_add(b));
        XskStats {
            rx_dropped: self.rx_dropped.saturating_add(other.rx_dropped),
            rx_invalid_descs: self.rx_invalid_descs.saturating_add(other.rx_invalid_descs),
            tx_invalid_descs: self.tx_invalid_descs.saturating_add(other.tx_invalid_descs),
            rx_ring_full: both(self.rx_ring_full, other.rx_ring_full),
            rx_fill_ring_empty_descs: both(
                self.rx_fill_ring_empty_descs,
                other.rx_fill_ring_empty_descs,
            ),
            tx_ring_empty_descs: both(self.tx_ring_empty_descs, other.tx_ring_empty_descs),
        }
    }
}

/// The kernel's counters of one socket of the fast path, as
/// `Dataplane::xsk_stats` reads them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SocketStats {
    /// Worker owning the socket.
    pub worker: usize,
    /// Port index.
    pub port: usize,
    /// Queue id on the port.
    pub queue: u32,
    /// The counters; `None` if reading them failed.
    pub stats: Option<XskStats>,
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `packets` and `bytes` split the fields between them: every field once,
    /// in `fields`' order and under `fields`' names.
    #[test]
    fn packets_and_bytes_cover_every_field() {
        let mut values = [0; PORT_FIELDS];
        for (v, n) in values.iter_mut().zip(1..) {
            *v = n;
        }
        let c = PortCounters::from_array(values);
        let fields: Vec<_> = c.fields().collect();
        let split: Vec<_> = c
            .packets()
            .into_iter()
            .chain(c.bytes().map(|(dir, n)| match dir {
                "rx" => ("rx_bytes", n),
                _ => ("tx_bytes", n),
            }))
            .collect();
        assert_eq!(fields, split);
        let in_order: Vec<u64> = fields.iter().map(|&(_, n)| n).collect();
        assert_eq!(in_order, values);
        assert_eq!(c.bytes(), [("rx", c.rx_bytes), ("tx", c.tx_bytes)]);
    }
}
