//! The rate at which the fast path answers ARP requests and Neighbour
//! Solicitations for the virtual addresses (docs/conformance.md L05): at
//! most [`PER_SENDER_RATE`] replies per second to one sender, in bursts of
//! [`PER_SENDER_BURST`], and [`TOTAL_RATE`] in all, so that a flood of
//! requests — spoofed to make a victim the target of the replies, or from
//! random senders — never turns the appliance into a reflector. A host
//! resolving the gateway asks a few times a minute.
//!
//! Each bucket is one `u64`, the theoretical arrival time of the next reply
//! (GCRA, the token bucket's equivalent), so the per-sender table is a
//! fixed array of [`SLOTS`] atomics indexed by a seeded hash of the sender's
//! address: no allocation, no lock, shared by every worker. Senders whose
//! hashes collide share a bucket (the seed, drawn at start, keeps anyone
//! from aiming at a given host's slot); a burst of random senders drains
//! many buckets, and the total bound is what holds then.
//!
//! The updates are a relaxed load and store, not a compare-and-swap: two
//! workers answering the same sender at the same instant may both take the
//! last token. The bound is approximate by that much.

use std::{
    hash::BuildHasher,
    net::IpAddr,
    sync::atomic::{AtomicU64, Ordering},
    time::{Duration, Instant},
};

/// Replies per second to one sender.
pub const PER_SENDER_RATE: u32 = 50;
/// Replies one sender can have at once.
pub const PER_SENDER_BURST: u32 = 10;
/// Replies per second in all.
pub const TOTAL_RATE: u32 = 5000;
/// Replies that can leave at once in all.
pub const TOTAL_BURST: u32 = 500;
/// Buckets of the per-sender table (a power of two).
pub const SLOTS: usize = 1024;

/// A GCRA bucket's parameters in nanoseconds.
#[derive(Debug, Clone, Copy)]
struct Rate {
    /// Between two tokens.
    interval: u64,
    /// How far ahead of now the next token may be booked: (burst − 1)
    /// intervals.
    tolerance: u64,
}

impl Rate {
    const fn new(per_second: u32, burst: u32) -> Self {
        let interval = 1_000_000_000 / per_second as u64;
        Self {
            interval,
            tolerance: interval * (burst as u64 - 1),
        }
    }

    /// The bucket's next theoretical arrival time if a token can be taken
    /// at `now` from the bucket at `tat`.
    fn take(self, tat: u64, now: u64) -> Option<u64> {
        (tat <= now.saturating_add(self.tolerance)).then(|| tat.max(now) + self.interval)
    }
}

const PER_SENDER: Rate = Rate::new(PER_SENDER_RATE, PER_SENDER_BURST);
const TOTAL: Rate = Rate::new(TOTAL_RATE, TOTAL_BURST);

/// The reply buckets (see the module docs).
#[derive(Debug)]
pub struct ReplyLimiter {
    epoch: Instant,
    seed: u64,
    senders: Box<[AtomicU64]>,
    total: AtomicU64,
}

impl Default for ReplyLimiter {
    fn default() -> Self {
        Self::new()
    }
}

impl ReplyLimiter {
    /// Full buckets, with a fresh hash seed.
    pub fn new() -> Self {
        Self {
            epoch: Instant::now(),
            seed: std::collections::hash_map::RandomState::new().hash_one(0u8),
            senders: (0..SLOTS).map(|_| AtomicU64::new(0)).collect(),
            total: AtomicU64::new(0),
        }
    }

    /// Whether a reply to `sender` may leave at `now`; if so its tokens are
    /// taken.
    pub fn allow(&self, now: Instant, sender: IpAddr) -> bool {
        let t = nanos(now.saturating_duration_since(self.epoch));
        let Some(total) = TOTAL.take(self.total.load(Ordering::Relaxed), t) else {
            return false;
        };
        let Some(slot) = self.senders.get(self.slot(sender)) else {
            return false;
        };
        let Some(next) = PER_SENDER.take(slot.load(Ordering::Relaxed), t) else {
            return false;
        };
        slot.store(next, Ordering::Relaxed);
        self.total.store(total, Ordering::Relaxed);
        true
    }

    /// The table slot of `sender`: a seeded multiplicative hash.
    fn slot(&self, sender: IpAddr) -> usize {
        let key = match sender {
            IpAddr::V4(a) => u64::from(u32::from(a)),
            IpAddr::V6(a) => {
                let [h0, h1, h2, h3, h4, h5, h6, h7, l0, l1, l2, l3, l4, l5, l6, l7] = a.octets();
                u64::from_be_bytes([h0, h1, h2, h3, h4, h5, h6, h7])
                    ^ u64::from_be_bytes([l0, l1, l2, l3, l4, l5, l6, l7])
            }
        };
        let h = (key ^ self.seed).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        // The top bits are the best mixed; SLOTS is a power of two.
        usize::try_from(h >> (64 - SLOTS.trailing_zeros())).unwrap_or(0)
    }
}

fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{Ipv4Addr, Ipv6Addr};

    const HOST: IpAddr = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 100));
    const OTHER: IpAddr = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 101));

    /// Replies allowed to `sender` when asked `n` times at `now`.
    fn allowed(l: &ReplyLimiter, now: Instant, sender: IpAddr, n: usize) -> usize {
        (0..n).filter(|_| l.allow(now, sender)).count()
    }

    #[test]
    fn one_sender_gets_its_burst_then_its_rate() {
        let l = ReplyLimiter::new();
        let t0 = Instant::now();
        assert_eq!(allowed(&l, t0, HOST, 100), PER_SENDER_BURST as usize);
        // One more every 20 ms.
        assert_eq!(allowed(&l, t0 + Duration::from_millis(10), HOST, 10), 0);
        assert_eq!(allowed(&l, t0 + Duration::from_millis(20), HOST, 10), 1);
        // Over a second at full flood: the rate, give or take the burst.
        let mut n = 0;
        for ms in 21..1021 {
            n += allowed(&l, t0 + Duration::from_millis(ms), HOST, 100);
        }
        assert!((50..=51).contains(&n), "{n}");
        // After a quiet spell the burst is back, no more.
        let later = t0 + Duration::from_secs(5);
        assert_eq!(allowed(&l, later, HOST, 100), PER_SENDER_BURST as usize);
    }

    #[test]
    fn senders_are_limited_apart() {
        let l = ReplyLimiter::new();
        let t0 = Instant::now();
        // Make sure the two do not share a slot under this seed.
        if l.slot(HOST) == l.slot(OTHER) {
            return;
        }
        assert_eq!(allowed(&l, t0, HOST, 100), PER_SENDER_BURST as usize);
        assert_eq!(allowed(&l, t0, OTHER, 100), PER_SENDER_BURST as usize);
        let v6 = IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 1, 0, 0, 0, 0, 0x100));
        assert!(l.allow(t0, v6));
    }

    #[test]
    fn random_senders_are_held_by_the_total() {
        let l = ReplyLimiter::new();
        let t0 = Instant::now();
        let mut n = 0;
        // 100 000 requests from as many senders, over 100 ms.
        for i in 0..100_000u32 {
            let now = t0 + Duration::from_micros(u64::from(i));
            n += usize::from(l.allow(now, IpAddr::V4(Ipv4Addr::from(0x0a00_0000 + i))));
        }
        // The burst plus 100 ms at the total rate (or fewer, where senders
        // collided).
        let bound = TOTAL_BURST as usize + TOTAL_RATE as usize / 10 + 1;
        assert!(n <= bound && n > bound / 2, "{n}");
    }

    #[test]
    fn slots_spread_over_the_table() {
        let l = ReplyLimiter::new();
        let mut used = vec![false; SLOTS];
        for i in 0..4096u32 {
            used[l.slot(IpAddr::V4(Ipv4Addr::from(0xc000_0200 + i)))] = true;
        }
        // 4096 consecutive addresses in 1024 slots leave few empty.
        assert!(used.iter().filter(|u| **u).count() > SLOTS * 9 / 10);
    }
}
