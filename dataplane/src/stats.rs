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
    /// Frames sent on behalf of the control thread (adverts, GARPs).
    pub control_tx: u64,
    /// Neighbour Advertisements sent for virtual IPv6 addresses.
    pub nd_replies: u64,
    /// Neighbour Solicitations sent to resolve IPv6 next hops.
    pub nd_requests: u64,
    /// ICMP errors sent (Time Exceeded).
    pub icmp_errors: u64,
    /// Frames forwarded towards this port but handed, copied, to the worker
    /// with a socket on it (which counts them `forwarded` when it sends
    /// them): this worker has none.
    pub handed_off: u64,
}

const PORT_FIELDS: usize = 12;

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
            self.control_tx,
            self.nd_replies,
            self.nd_requests,
            self.icmp_errors,
            self.handed_off,
        ]
    }

    fn from_array(a: [u64; PORT_FIELDS]) -> Self {
        let [rx, tx, forwarded, punted, arp_replies, arp_requests, icmp_replies, control_tx, nd_replies, nd_requests, icmp_errors, handed_off] =
            a;
        Self {
            rx,
            tx,
            forwarded,
            punted,
            arp_replies,
            arp_requests,
            icmp_replies,
            control_tx,
            nd_replies,
            nd_requests,
            icmp_errors,
            handed_off,
        }
    }

    /// Field names and values, for display.
    pub fn fields(&self) -> [(&'static str, u64); PORT_FIELDS] {
        [
            ("rx", self.rx),
            ("tx", self.tx),
            ("forwarded", self.forwarded),
            ("punted", self.punted),
            ("arp_replies", self.arp_replies),
            ("arp_requests", self.arp_requests),
            ("icmp_replies", self.icmp_replies),
            ("control_tx", self.control_tx),
            ("nd_replies", self.nd_replies),
            ("nd_requests", self.nd_requests),
            ("icmp_errors", self.icmp_errors),
            ("handed_off", self.handed_off),
        ]
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
