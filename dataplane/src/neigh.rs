//! The fast path's neighbour table (IPv4 and IPv6): a fixed-size, open-addressed hash
//! owned by one worker. It learns from ARP and from the source of frames it
//! forwards, and remembers when it last asked for a missing entry so that a
//! burst towards an unresolved host sends one ARP request, not one per packet.
//!
//! The control thread never reads a worker's table: the worker publishes a
//! copy of it on a [`NeighbourBoard`] when asked, and at most once a second
//! while it changes (`xvrrp neighbors`).
//!
//! With several workers, the answer to one worker's request may arrive on
//! another worker's queue. So every worker publishes what it learns to the
//! others: a new or changed entry at once, a refreshed one at most every
//! [`SHARE_REFRESH`] (the table queues a [`NeighUpdate`], the worker pushes
//! it into each other worker's lock-free queue), and applies theirs with
//! [`NeighbourTable::handle_update`]. Every worker thus keeps a full table
//! of its own, read without any synchronisation per packet.

use std::{
    net::IpAddr,
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc,
    },
    time::{Duration, Instant},
};

use arc_swap::ArcSwapOption;
use xvrrp_wire::ethernet::EthernetAddress;

const SLOTS: usize = 1024;
const PROBE: usize = 8;

/// How long a learned entry is trusted.
pub const REACHABLE_TIME: Duration = Duration::from_secs(60);
/// Longest wait between two ARP requests for the same address.
pub const RETRY_TIME: Duration = Duration::from_millis(100);
/// The wait before the first request for an address is repeated; each
/// repeat doubles it, up to [`RETRY_TIME`]. A request or answer lost around
/// a takeover (the frames forwarded meanwhile wait) then costs 10 ms, not
/// 100; a host that stays silent is asked ten times a second, as before.
pub const FIRST_RETRY: Duration = Duration::from_millis(10);

/// How long to wait for an answer after `tries` repeats of a request.
fn retry_after(tries: u8) -> Duration {
    FIRST_RETRY
        .saturating_mul(1 << tries.min(7))
        .min(RETRY_TIME)
}
/// How often an entry that keeps being refreshed is published again to the
/// other workers (a new or changed one is published at once).
pub const SHARE_REFRESH: Duration = Duration::from_secs(1);

#[derive(Debug, Clone, Copy)]
enum Slot {
    Empty,
    Incomplete {
        ip: u128,
        port: u16,
        asked: Instant,
        /// Requests repeated so far (the wait doubles with each).
        tries: u8,
    },
    Reachable {
        ip: u128,
        port: u16,
        mac: EthernetAddress,
        seen: Instant,
        /// When the other workers were last told of it (by any worker).
        shared: Option<Instant>,
    },
}

/// A neighbour one worker learned, published to the others.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NeighUpdate {
    ip: u128,
    port: u16,
    mac: EthernetAddress,
    /// When it was learned.
    at: Instant,
}

impl Slot {
    fn key(&self) -> Option<(u128, u16)> {
        match *self {
            Slot::Empty => None,
            Slot::Incomplete { ip, port, .. } | Slot::Reachable { ip, port, .. } => {
                Some((ip, port))
            }
        }
    }
}

/// What a lookup found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lookup {
    /// Known MAC.
    Hit(EthernetAddress),
    /// Unknown: the caller should send an ARP request now.
    Ask,
    /// Unknown, and a request went out recently: just drop.
    Pending,
}

/// One entry, for `xvrrp neighbors`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Entry {
    /// Address.
    pub ip: IpAddr,
    /// Port index.
    pub port: usize,
    /// MAC if resolved.
    pub mac: Option<EthernetAddress>,
    /// When the MAC was last confirmed, or (unresolved) last asked for.
    pub since: Instant,
}

/// Room for one ARP request or Neighbour Solicitation frame.
pub const REQUEST_MAX: usize = 96;
/// Resolution requests that can wait to be sent within one batch.
const OUTBOX: usize = 8;
/// Updates for the other workers that can wait within one batch.
const ANNOUNCE: usize = 16;

/// A resolution request waiting to be sent: (port, length, frame).
type Request = (usize, usize, [u8; REQUEST_MAX]);

/// The table, and the resolution requests it wants sent.
#[derive(Debug)]
pub struct NeighbourTable {
    slots: Box<[Slot; SLOTS]>,
    /// Requests built by the packet handler, sent by the worker.
    outbox: [Option<Request>; OUTBOX],
    /// Bumped whenever an address gets a (new) MAC: parked frames waiting
    /// for a resolution are worth another try only then.
    generation: u64,
    /// Bumped on every change of a slot, so that a copy is published only
    /// when there is something new to show.
    writes: u64,
    /// What this worker learned, for the other workers.
    announce: [Option<NeighUpdate>; ANNOUNCE],
}

impl Default for NeighbourTable {
    fn default() -> Self {
        Self::new()
    }
}

/// IPv4 addresses are keyed in their IPv4-mapped IPv6 form, which never
/// appears as a real IPv6 neighbour, so both families share one table.
fn key_of(ip: IpAddr) -> u128 {
    match ip {
        IpAddr::V4(a) => u128::from(a.to_ipv6_mapped()),
        IpAddr::V6(a) => u128::from(a),
    }
}

fn addr_of(key: u128) -> IpAddr {
    let v6 = std::net::Ipv6Addr::from(key);
    match v6.to_ipv4_mapped() {
        Some(v4) => IpAddr::V4(v4),
        None => IpAddr::V6(v6),
    }
}

fn hash(ip: u128, port: u16) -> usize {
    // Fibonacci hashing: the top bits of the product spread well.
    #[allow(clippy::cast_possible_truncation)] // folding 128 bits to 64 on purpose
    let folded = (ip as u64) ^ ((ip >> 64) as u64);
    let h = (folded ^ (u64::from(port) << 48)).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    (h >> 54) as usize % SLOTS
}

impl NeighbourTable {
    /// An empty table.
    pub fn new() -> Self {
        Self {
            slots: Box::new([Slot::Empty; SLOTS]),
            outbox: [None; OUTBOX],
            generation: 0,
            writes: 0,
            announce: [None; ANNOUNCE],
        }
    }

    fn find(&self, ip: u128, port: u16) -> Option<usize> {
        let start = hash(ip, port);
        (0..PROBE)
            .map(|i| (start + i) % SLOTS)
            .find(|&i| self.slots.get(i).and_then(Slot::key) == Some((ip, port)))
    }

    /// A slot for a new entry: an empty one, else the oldest in the probe run.
    fn victim(&self, ip: u128, port: u16) -> usize {
        let start = hash(ip, port);
        let mut best = start;
        let mut best_age: Option<Instant> = None;
        for i in 0..PROBE {
            let idx = (start + i) % SLOTS;
            let when = match self.slots.get(idx) {
                Some(Slot::Empty) | None => return idx,
                Some(Slot::Incomplete { asked, .. }) => *asked,
                Some(Slot::Reachable { seen, .. }) => *seen,
            };
            if best_age.is_none_or(|b| when < b) {
                best = idx;
                best_age = Some(when);
            }
        }
        best
    }

    fn set(&mut self, idx: usize, slot: Slot) {
        if let Some(s) = self.slots.get_mut(idx) {
            *s = slot;
            self.writes = self.writes.wrapping_add(1);
        }
    }

    /// The entry for (`ip`, `port`) if it is reachable: its MAC, when it
    /// was last seen and last shared.
    fn reachable(
        &self,
        idx: usize,
        ip: u128,
        port: u16,
    ) -> Option<(EthernetAddress, Instant, Option<Instant>)> {
        match self.slots.get(idx) {
            Some(Slot::Reachable {
                ip: i,
                port: p,
                mac,
                seen,
                shared,
            }) if *i == ip && *p == port => Some((*mac, *seen, *shared)),
            _ => None,
        }
    }

    /// Records that `ip` on `port` is at `mac`, and queues it for the other
    /// workers when it is new, changed, or not shared for [`SHARE_REFRESH`].
    pub fn learn(&mut self, now: Instant, port: usize, ip: IpAddr, mac: EthernetAddress) {
        let (ip, port) = (key_of(ip), port_key(port));
        let idx = self.find(ip, port).unwrap_or_else(|| self.victim(ip, port));
        let old = self.reachable(idx, ip, port);
        let known = old.is_some_and(|(m, _, _)| m == mac);
        if !known {
            self.generation = self.generation.wrapping_add(1);
        }
        let mut shared = old.filter(|_| known).and_then(|(_, _, s)| s);
        let due = shared.is_none_or(|s| now.saturating_duration_since(s) >= SHARE_REFRESH);
        if due
            && self.queue_announcement(NeighUpdate {
                ip,
                port,
                mac,
                at: now,
            })
        {
            shared = Some(now);
        }
        self.set(
            idx,
            Slot::Reachable {
                ip,
                port,
                mac,
                seen: now,
                shared,
            },
        );
    }

    /// Applies what another worker learned. An entry seen here more
    /// recently with another MAC is kept; nothing is published again.
    pub fn handle_update(&mut self, update: NeighUpdate) {
        let NeighUpdate { ip, port, mac, at } = update;
        let idx = self.find(ip, port).unwrap_or_else(|| self.victim(ip, port));
        let (seen, shared) = match self.reachable(idx, ip, port) {
            Some((m, seen, shared)) if m == mac => (seen.max(at), shared.max(Some(at))),
            // Seen here since, at another MAC: this worker's view is newer.
            Some((_, seen, _)) if seen > at => return,
            _ => {
                self.generation = self.generation.wrapping_add(1);
                (at, Some(at))
            }
        };
        self.set(
            idx,
            Slot::Reachable {
                ip,
                port,
                mac,
                seen,
                shared,
            },
        );
    }

    fn queue_announcement(&mut self, update: NeighUpdate) -> bool {
        match self.announce.iter_mut().find(|u| u.is_none()) {
            Some(slot) => {
                *slot = Some(update);
                true
            }
            None => false,
        }
    }

    /// Takes the next update to publish to the other workers.
    pub fn take_announcement(&mut self) -> Option<NeighUpdate> {
        self.announce.iter_mut().find_map(Option::take)
    }

    /// Looks `ip` up on `port`; on a miss, records that a request is due.
    pub fn lookup(&mut self, now: Instant, port: usize, ip: IpAddr) -> Lookup {
        let (ipk, portk) = (key_of(ip), port_key(port));
        match self.find(ipk, portk) {
            Some(idx) => match self.slots.get(idx).copied() {
                Some(Slot::Reachable { mac, seen, .. })
                    if now.saturating_duration_since(seen) < REACHABLE_TIME =>
                {
                    Lookup::Hit(mac)
                }
                Some(Slot::Incomplete { asked, tries, .. })
                    if now.saturating_duration_since(asked) < retry_after(tries) =>
                {
                    Lookup::Pending
                }
                other => {
                    let tries = match other {
                        Some(Slot::Incomplete { tries, .. }) => tries.saturating_add(1),
                        _ => 0,
                    };
                    self.set(
                        idx,
                        Slot::Incomplete {
                            ip: ipk,
                            port: portk,
                            asked: now,
                            tries,
                        },
                    );
                    Lookup::Ask
                }
            },
            None => {
                let idx = self.victim(ipk, portk);
                self.set(
                    idx,
                    Slot::Incomplete {
                        ip: ipk,
                        port: portk,
                        asked: now,
                        tries: 0,
                    },
                );
                Lookup::Ask
            }
        }
    }

    /// Changes whenever an address is resolved (or its MAC changes).
    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// Changes whenever any entry changes (learned, refreshed, asked for).
    pub fn writes(&self) -> u64 {
        self.writes
    }

    /// Queues a resolution request for `port`, built by `build` into a
    /// frame buffer (returning its length); false if the outbox is full or
    /// the build failed — the address is asked again after a wait (see
    /// [`FIRST_RETRY`]).
    pub fn queue_request(
        &mut self,
        port: usize,
        build: impl FnOnce(&mut [u8]) -> Option<usize>,
    ) -> bool {
        let Some(slot) = self.outbox.iter_mut().find(|r| r.is_none()) else {
            return false;
        };
        let mut frame = [0u8; REQUEST_MAX];
        match build(&mut frame) {
            Some(len) if len <= REQUEST_MAX => {
                *slot = Some((port, len, frame));
                true
            }
            _ => false,
        }
    }

    /// Takes the next queued request: (port, frame).
    pub fn take_request(&mut self) -> Option<(usize, [u8; REQUEST_MAX], usize)> {
        self.outbox
            .iter_mut()
            .find_map(Option::take)
            .map(|(port, len, frame)| (port, frame, len))
    }

    /// Every entry, for display.
    pub fn entries(&self) -> impl Iterator<Item = Entry> + '_ {
        self.slots.iter().filter_map(|s| match *s {
            Slot::Empty => None,
            Slot::Incomplete {
                ip, port, asked, ..
            } => Some(Entry {
                ip: addr_of(ip),
                port: usize::from(port),
                mac: None,
                since: asked,
            }),
            Slot::Reachable {
                ip,
                port,
                mac,
                seen,
                ..
            } => Some(Entry {
                ip: addr_of(ip),
                port: usize::from(port),
                mac: Some(mac),
                since: seen,
            }),
        })
    }
}

/// A copy of one worker's neighbour table.
#[derive(Debug, Clone)]
pub struct NeighbourSnapshot {
    /// When the worker took it.
    pub taken: Instant,
    /// The entries.
    pub entries: Vec<Entry>,
}

/// Where one worker publishes copies of its table and the control thread
/// asks for a fresh one: an atomic flag and an `ArcSwapOption`, no lock.
#[derive(Debug, Default)]
pub struct NeighbourBoard {
    wanted: AtomicBool,
    latest: ArcSwapOption<NeighbourSnapshot>,
}

impl NeighbourBoard {
    /// Control side: asks the worker for a fresh copy at its next batch
    /// (wake it if it sleeps).
    pub fn request(&self) {
        self.wanted.store(true, Ordering::Relaxed);
    }

    /// Control side: the newest copy published, if any.
    pub fn latest(&self) -> Option<Arc<NeighbourSnapshot>> {
        self.latest.load_full()
    }

    /// Worker side: whether a copy was asked for since the last call.
    #[inline]
    pub fn take_request(&self) -> bool {
        // A plain load first: the common case costs no write to the line.
        self.wanted.load(Ordering::Relaxed) && self.wanted.swap(false, Ordering::Relaxed)
    }

    /// Worker side: publishes a copy of `table` taken at `now`.
    pub fn publish(&self, now: Instant, table: &NeighbourTable) {
        let entries = table.entries().collect();
        self.latest.store(Some(Arc::new(NeighbourSnapshot {
            taken: now,
            entries,
        })));
    }
}

fn port_key(port: usize) -> u16 {
    u16::try_from(port).unwrap_or(u16::MAX)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::cast_possible_truncation)]
mod tests {
    use super::*;

    const MAC: EthernetAddress = EthernetAddress([2, 0, 0, 0, 0, 1]);

    #[test]
    fn miss_asks_once_then_waits_then_asks_again() {
        let mut t = NeighbourTable::new();
        let t0 = Instant::now();
        let ip = IpAddr::V4(std::net::Ipv4Addr::new(203, 0, 113, 100));
        let ms = Duration::from_millis;
        assert_eq!(t.lookup(t0, 1, ip), Lookup::Ask);
        assert_eq!(t.lookup(t0 + ms(9), 1, ip), Lookup::Pending);
        // Asked again after 10 ms, then after 20, 40, 80 and 100 ms.
        let mut at = t0;
        for wait in [10, 20, 40, 80, 100, 100] {
            assert_eq!(
                t.lookup(at + ms(wait - 1), 1, ip),
                Lookup::Pending,
                "{wait}"
            );
            at += ms(wait);
            assert_eq!(t.lookup(at, 1, ip), Lookup::Ask, "{wait}");
        }
        t.learn(at, 1, ip, MAC);
        assert_eq!(t.lookup(at, 1, ip), Lookup::Hit(MAC));
        // same address on another port is another neighbour
        assert_eq!(t.lookup(t0, 0, ip), Lookup::Ask);
    }

    #[test]
    fn families_do_not_collide_and_entries_show_their_family() {
        let mut t = NeighbourTable::new();
        let t0 = Instant::now();
        let v4 = IpAddr::V4(std::net::Ipv4Addr::new(192, 0, 2, 7));
        let v6: IpAddr = "2001:db8:1::7".parse().unwrap();
        t.learn(t0, 0, v4, MAC);
        assert_eq!(t.lookup(t0, 0, v6), Lookup::Ask);
        t.learn(t0, 0, v6, EthernetAddress([2, 0, 0, 0, 0, 7]));
        assert_eq!(t.lookup(t0, 0, v4), Lookup::Hit(MAC));
        let mut ips: Vec<IpAddr> = t.entries().map(|e| e.ip).collect();
        ips.sort();
        assert_eq!(ips, vec![v4, v6]);
    }

    #[test]
    fn learned_entries_are_shared_at_once_then_at_most_every_refresh() {
        let mut t = NeighbourTable::new();
        let t0 = Instant::now();
        let ip = IpAddr::V4(std::net::Ipv4Addr::new(203, 0, 113, 100));
        t.learn(t0, 1, ip, MAC);
        let first = t.take_announcement().unwrap();
        assert!(t.take_announcement().is_none());
        // Refreshed by traffic: not published again before SHARE_REFRESH...
        t.learn(t0 + Duration::from_millis(500), 1, ip, MAC);
        assert!(t.take_announcement().is_none());
        // ...then once.
        t.learn(t0 + SHARE_REFRESH, 1, ip, MAC);
        assert!(t.take_announcement().is_some());
        // A changed MAC is published at once.
        let other = EthernetAddress([2, 0, 0, 0, 0, 9]);
        t.learn(t0 + SHARE_REFRESH, 1, ip, other);
        assert!(t.take_announcement().is_some());

        // Another worker that asked for the address gets the answer.
        let mut w1 = NeighbourTable::new();
        assert_eq!(w1.lookup(t0, 1, ip), Lookup::Ask);
        let generation = w1.generation();
        w1.handle_update(first);
        assert_ne!(w1.generation(), generation, "its parked frames are retried");
        assert_eq!(w1.lookup(t0, 1, ip), Lookup::Hit(MAC));
        // It does not publish it again, nor when its own traffic refreshes
        // the entry within SHARE_REFRESH of the update.
        assert!(w1.take_announcement().is_none());
        w1.learn(t0 + Duration::from_millis(10), 1, ip, MAC);
        assert!(w1.take_announcement().is_none());
        // The same port only: another port's neighbour is another entry.
        assert_eq!(w1.lookup(t0, 0, ip), Lookup::Ask);
    }

    #[test]
    fn an_update_older_than_what_a_worker_saw_since_is_ignored() {
        let mut t = NeighbourTable::new();
        let t0 = Instant::now();
        let ip = IpAddr::V4(std::net::Ipv4Addr::new(192, 0, 2, 100));
        let mut elsewhere = NeighbourTable::new();
        elsewhere.learn(t0, 0, ip, MAC);
        let stale = elsewhere.take_announcement().unwrap();
        let moved = EthernetAddress([2, 0, 0, 0, 0, 7]);
        t.learn(t0 + Duration::from_millis(5), 0, ip, moved);
        t.handle_update(stale);
        assert_eq!(
            t.lookup(t0 + Duration::from_millis(6), 0, ip),
            Lookup::Hit(moved)
        );
        // A newer one wins.
        let mut third = NeighbourTable::new();
        third.learn(t0 + Duration::from_millis(7), 0, ip, MAC);
        t.handle_update(third.take_announcement().unwrap());
        assert_eq!(
            t.lookup(t0 + Duration::from_millis(8), 0, ip),
            Lookup::Hit(MAC)
        );
    }

    #[test]
    fn entries_expire() {
        let mut t = NeighbourTable::new();
        let t0 = Instant::now();
        let ip = IpAddr::V4(std::net::Ipv4Addr::new(192, 0, 2, 100));
        t.learn(t0, 0, ip, MAC);
        assert_eq!(t.lookup(t0 + REACHABLE_TIME, 0, ip), Lookup::Ask);
    }

    #[test]
    fn board_publishes_on_request_and_shows_state() {
        let mut t = NeighbourTable::new();
        let board = NeighbourBoard::default();
        let t0 = Instant::now();
        assert!(board.latest().is_none());
        assert!(!board.take_request());
        board.request();
        assert!(board.take_request());
        assert!(!board.take_request(), "one request, one copy");
        let writes = t.writes();
        let v4 = IpAddr::V4(std::net::Ipv4Addr::new(203, 0, 113, 100));
        t.learn(t0, 1, v4, MAC);
        assert_eq!(
            t.lookup(t0, 1, IpAddr::V4(std::net::Ipv4Addr::new(203, 0, 113, 77))),
            Lookup::Ask
        );
        assert_ne!(t.writes(), writes);
        board.publish(t0, &t);
        let copy = board.latest().unwrap();
        assert_eq!(copy.taken, t0);
        assert_eq!(copy.entries.len(), 2);
        for e in &copy.entries {
            let want = if e.ip == v4 { Some(MAC) } else { None };
            assert_eq!(e.mac, want, "{e:?}: learned, or asked and not answered");
            assert_eq!(e.since, t0);
        }
    }

    #[test]
    fn full_table_evicts_instead_of_failing() {
        let mut t = NeighbourTable::new();
        let t0 = Instant::now();
        for i in 0..(SLOTS as u32 * 2) {
            t.learn(
                t0 + Duration::from_micros(u64::from(i)),
                0,
                IpAddr::V4(std::net::Ipv4Addr::from(0x0a00_0000 + i)),
                MAC,
            );
        }
        let last = IpAddr::V4(std::net::Ipv4Addr::from(0x0a00_0000 + SLOTS as u32 * 2 - 1));
        assert_eq!(
            t.lookup(t0 + Duration::from_secs(1), 0, last),
            Lookup::Hit(MAC)
        );
        assert!(t.entries().count() <= SLOTS);
    }
}
