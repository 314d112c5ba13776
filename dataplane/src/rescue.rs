//! Advertisements a worker sends in the control thread's place when the
//! control thread is late.
//!
//! The control thread (SCHED_FIFO) sends every advert itself, on time as
//! long as it runs. On a virtual machine the hypervisor can take its vCPU
//! away for tens of milliseconds, however high its priority; a backup on
//! the other side then hears nothing for longer than its
//! Master_Down_Interval and takes over while this master is alive. So the
//! control thread leaves, per master, the last advert frame it sent and
//! when the next one is due here; a worker (on another core) that finds an
//! advert overdue by [`grace`] (a quarter of an interval, 2 ms at least)
//! sends that same frame itself, so that it still lands well within half
//! an interval of its due time. A
//! silence then needs both the control thread and the workers stalled.
//!
//! Lock-free: one writer per slot (the control thread) and readers that
//! retry a torn read (a sequence lock over atomic words). A worker claims
//! each rescue by moving the slot's deadline on (compare-and-swap), so
//! several workers on one port send it once. A slot stops being rescued
//! once its router is no longer master (cleared before the ownership goes)
//! or when the control thread has recorded nothing for [`RESCUE_SPAN`] (a
//! control thread wedged for good must not keep a dead router alive).

use std::{
    sync::atomic::{AtomicU64, AtomicUsize, Ordering},
    time::{Duration, Instant},
};

/// Largest advert frame a slot holds (Ethernet, no VLAN tag).
pub const RESCUE_FRAME_MAX: usize = 1514;
const WORDS: usize = RESCUE_FRAME_MAX.div_ceil(8);

/// "No deadline": the slot is not rescued.
const NONE: u64 = u64::MAX;

/// How long after the control thread's last advert of a router the
/// workers may still send it in its place: at least this, or three of
/// the router's intervals if longer.
pub const RESCUE_SPAN: Duration = Duration::from_secs(1);

/// How close the published deadline must be before the control thread
/// computes it again (a pass every slot's deadline would cost it a scan
/// of every slot).
const PUBLISH_AHEAD_NS: u64 = 2_000_000;

/// How late the control thread may be with an advert before a worker
/// sends it: a quarter of the interval, at least 2 ms (the lateness a
/// loaded control thread shows without being stalled).
pub fn grace(interval_ns: u64) -> u64 {
    (interval_ns / 4).max(2_000_000)
}

/// One router's last advert and its deadline.
struct Slot {
    /// When a worker sends the advert if the control thread has not sent a
    /// newer one, in ns since the board's epoch; [`NONE`] when not rescued.
    due: AtomicU64,
    /// The advert interval, ns.
    interval: AtomicU64,
    /// Past this (ns since the epoch) the slot is not rescued any more.
    until: AtomicU64,
    port: AtomicUsize,
    /// Odd while the control thread writes the frame.
    seq: AtomicU64,
    len: AtomicUsize,
    words: Box<[AtomicU64]>,
}

impl Slot {
    fn new() -> Self {
        Self {
            due: AtomicU64::new(NONE),
            interval: AtomicU64::new(0),
            until: AtomicU64::new(0),
            port: AtomicUsize::new(0),
            seq: AtomicU64::new(0),
            len: AtomicUsize::new(0),
            words: (0..WORDS).map(|_| AtomicU64::new(0)).collect(),
        }
    }

    /// Whether the stored frame is `frame` (read by its only writer).
    fn holds(&self, port: usize, frame: &[u8]) -> bool {
        self.len.load(Ordering::Relaxed) == frame.len()
            && self.port.load(Ordering::Relaxed) == port
            && frame
                .chunks(8)
                .zip(self.words.iter())
                .all(|(c, w)| w.load(Ordering::Relaxed) == word_of(c))
    }

    fn write(&self, port: usize, frame: &[u8]) {
        self.seq.fetch_add(1, Ordering::AcqRel);
        self.port.store(port, Ordering::Relaxed);
        self.len.store(frame.len(), Ordering::Relaxed);
        for (c, w) in frame.chunks(8).zip(self.words.iter()) {
            w.store(word_of(c), Ordering::Relaxed);
        }
        self.seq.fetch_add(1, Ordering::Release);
    }

    /// Copies the frame into `buf`: (port, length), or `None` if it was
    /// being written (the caller tries again on its next check).
    fn read(&self, buf: &mut [u8; RESCUE_FRAME_MAX]) -> Option<(usize, usize)> {
        let before = self.seq.load(Ordering::Acquire);
        if before % 2 == 1 {
            return None;
        }
        let port = self.port.load(Ordering::Relaxed);
        let len = self.len.load(Ordering::Relaxed).min(RESCUE_FRAME_MAX);
        for (c, w) in buf
            .chunks_mut(8)
            .zip(self.words.iter())
            .take(len.div_ceil(8))
        {
            let bytes = w.load(Ordering::Relaxed).to_ne_bytes();
            let n = c.len();
            c.copy_from_slice(bytes.get(..n).unwrap_or(&[]));
        }
        std::sync::atomic::fence(Ordering::Acquire);
        (self.seq.load(Ordering::Relaxed) == before).then_some((port, len))
    }
}

fn word_of(chunk: &[u8]) -> u64 {
    let mut b = [0u8; 8];
    let n = chunk.len().min(8);
    if let (Some(dst), Some(src)) = (b.get_mut(..n), chunk.get(..n)) {
        dst.copy_from_slice(src);
    }
    u64::from_ne_bytes(b)
}

/// Every router's last advert, indexed by fast-path slot.
pub struct RescueBoard {
    epoch: Instant,
    slots: Vec<Slot>,
    /// The earliest deadline the control thread published (ns since the
    /// epoch, [`NONE`] for none): a worker scans the slots only once it
    /// passed.
    earliest: AtomicU64,
}

/// What a worker's scan found.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Rescued {
    /// Adverts sent in the control thread's place.
    pub sent: u64,
    /// When to look again (the earliest deadline left), if any.
    pub next: Option<Instant>,
}

impl RescueBoard {
    /// A board for `routers` slots, none rescued.
    pub fn new(routers: usize) -> Self {
        Self {
            epoch: Instant::now(),
            slots: (0..routers).map(|_| Slot::new()).collect(),
            earliest: AtomicU64::new(NONE),
        }
    }

    fn nanos(&self, at: Instant) -> u64 {
        u64::try_from(at.saturating_duration_since(self.epoch).as_nanos())
            .unwrap_or(NONE - 1)
            .min(NONE - 1)
    }

    fn instant(&self, ns: u64) -> Instant {
        self.epoch + Duration::from_nanos(ns)
    }

    /// Control thread: router `slot` sent `frame` on `port` at `sent`; its
    /// next advert is due one `interval` later, and a worker sends this
    /// frame if none came [`grace`] after that.
    pub fn record(
        &self,
        slot: usize,
        port: usize,
        frame: &[u8],
        sent: Instant,
        interval: Duration,
    ) {
        let Some(s) = self.slots.get(slot) else {
            return;
        };
        if frame.len() > RESCUE_FRAME_MAX {
            self.clear(slot);
            return;
        }
        if !s.holds(port, frame) {
            s.write(port, frame);
        }
        let interval_ns = u64::try_from(interval.as_nanos()).unwrap_or(NONE / 4);
        let sent_ns = self.nanos(sent);
        let span = u64::try_from(RESCUE_SPAN.as_nanos())
            .unwrap_or(NONE / 4)
            .max(interval_ns.saturating_mul(3));
        let due = sent_ns
            .saturating_add(interval_ns)
            .saturating_add(grace(interval_ns))
            .min(NONE - 1);
        s.interval.store(interval_ns, Ordering::Relaxed);
        s.until
            .store(sent_ns.saturating_add(span), Ordering::Relaxed);
        s.due.store(due, Ordering::Release);
        self.earliest.fetch_min(due, Ordering::AcqRel);
    }

    /// Control thread: router `slot` is not to be rescued (it stops being
    /// master, or its advert cannot be held).
    pub fn clear(&self, slot: usize) {
        if let Some(s) = self.slots.get(slot) {
            s.due.store(NONE, Ordering::Release);
        }
    }

    /// Control thread, after a pass at `now`: once the deadline the
    /// workers wait for is near, publishes the earliest of every slot
    /// (later, as the control thread kept sending), so that they sleep on
    /// rather than scan; a new earlier one was published by
    /// [`RescueBoard::record`] already.
    pub fn publish_earliest(&self, now: Instant) {
        let published = self.earliest.load(Ordering::Acquire);
        if published != NONE && published > self.nanos(now).saturating_add(PUBLISH_AHEAD_NS) {
            return;
        }
        let earliest = self
            .slots
            .iter()
            .map(|s| s.due.load(Ordering::Relaxed))
            .min()
            .unwrap_or(NONE);
        self.earliest.store(earliest, Ordering::Release);
    }

    /// Worker: the earliest deadline the control thread published, if any.
    pub fn earliest(&self) -> Option<Instant> {
        let e = self.earliest.load(Ordering::Acquire);
        (e != NONE).then(|| self.instant(e))
    }

    /// Worker, at `now`: sends every overdue advert of a router for which
    /// `serves(slot)` holds (this appliance is its master and the worker
    /// can send on its port) through `send(port, frame)` (false: no room,
    /// tried again on the next check), and moves its deadline one interval
    /// on. Returns what it sent and the earliest deadline left.
    pub fn rescue(
        &self,
        now: Instant,
        mut serves: impl FnMut(usize, usize) -> bool,
        mut send: impl FnMut(usize, &[u8]) -> bool,
    ) -> Rescued {
        let now_ns = self.nanos(now);
        let mut out = Rescued::default();
        let mut next = NONE;
        let mut buf = [0u8; RESCUE_FRAME_MAX];
        for (i, s) in self.slots.iter().enumerate() {
            let due = s.due.load(Ordering::Acquire);
            if due == NONE {
                continue;
            }
            if due > now_ns {
                next = next.min(due);
                continue;
            }
            if now_ns > s.until.load(Ordering::Relaxed) {
                continue;
            }
            let Some((port, len)) = s.read(&mut buf) else {
                next = next.min(now_ns);
                continue;
            };
            if !serves(i, port) {
                continue;
            }
            let interval = s.interval.load(Ordering::Relaxed).max(1);
            // Keeps the cadence: the next deadline is the first one after now.
            let behind = (now_ns - due) / interval + 1;
            let moved = due.saturating_add(behind.saturating_mul(interval));
            if s.due
                .compare_exchange(due, moved, Ordering::AcqRel, Ordering::Relaxed)
                .is_err()
            {
                // The control thread recorded a newer advert, or another
                // worker took this one.
                continue;
            }
            if send(port, buf.get(..len).unwrap_or(&[])) {
                out.sent += 1;
            } else {
                // No room: tried again on the next check.
                let _ = s
                    .due
                    .compare_exchange(moved, due, Ordering::AcqRel, Ordering::Relaxed);
                next = next.min(now_ns);
                continue;
            }
            next = next.min(moved);
        }
        out.next = (next != NONE).then(|| self.instant(next));
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    fn frame(tag: u8, len: usize) -> Vec<u8> {
        (0..len)
            .map(|i| tag ^ u8::try_from(i % 256).unwrap_or(0))
            .collect()
    }

    fn rescue_all(b: &RescueBoard, now: Instant) -> (Rescued, Vec<(usize, Vec<u8>)>) {
        let mut sent = Vec::new();
        let r = b.rescue(
            now,
            |_, _| true,
            |port, f| {
                sent.push((port, f.to_vec()));
                true
            },
        );
        (r, sent)
    }

    #[test]
    fn nothing_is_sent_while_the_control_thread_keeps_time() {
        let b = RescueBoard::new(4);
        let t0 = Instant::now();
        b.record(1, 0, &frame(1, 60), t0, 10 * MS);
        b.publish_earliest(t0);
        assert_eq!(b.earliest(), Some(t0 + 12 * MS + MS / 2));
        // The control thread sends the next advert on time.
        b.record(1, 0, &frame(1, 60), t0 + 10 * MS, 10 * MS);
        let (r, sent) = rescue_all(&b, t0 + 16 * MS);
        assert_eq!((r.sent, sent.len()), (0, 0));
        assert_eq!(r.next, Some(t0 + 22 * MS + MS / 2));
    }

    #[test]
    fn an_overdue_advert_is_sent_once_per_interval_on_its_cadence() {
        let b = RescueBoard::new(4);
        let t0 = Instant::now();
        let f = frame(7, 78);
        b.record(2, 1, &f, t0, 10 * MS);
        let (r, sent) = rescue_all(&b, t0 + 13 * MS);
        assert_eq!(sent, vec![(1, f.clone())]);
        assert_eq!(r.next, Some(t0 + 22 * MS + MS / 2));
        // A second worker at the same moment finds it taken.
        assert_eq!(rescue_all(&b, t0 + 13 * MS).1.len(), 0);
        // Late by more than an interval: one advert, the cadence kept.
        let (r, sent) = rescue_all(&b, t0 + 47 * MS);
        assert_eq!(sent.len(), 1);
        assert_eq!(r.next, Some(t0 + 52 * MS + MS / 2));
    }

    #[test]
    fn a_cleared_router_and_a_control_thread_silent_too_long_are_not_rescued() {
        let b = RescueBoard::new(4);
        let t0 = Instant::now();
        b.record(0, 0, &frame(1, 60), t0, 10 * MS);
        b.record(3, 0, &frame(2, 60), t0, 10 * MS);
        b.clear(0);
        let (_, sent) = rescue_all(&b, t0 + 13 * MS);
        assert_eq!(sent, vec![(0, frame(2, 60))]);
        let (r, sent) = rescue_all(&b, t0 + RESCUE_SPAN + 20 * MS);
        assert!(sent.is_empty(), "{sent:?}");
        assert_eq!(r.next, None);
    }

    #[test]
    fn the_newest_frame_is_sent_and_a_worker_without_the_port_leaves_it() {
        let b = RescueBoard::new(2);
        let t0 = Instant::now();
        b.record(1, 0, &frame(1, 60), t0, 10 * MS);
        // A priority change: a new frame of another length.
        b.record(1, 0, &frame(9, 67), t0 + 3 * MS, 10 * MS);
        let r = b.rescue(t0 + 20 * MS, |_, port| port == 1, |_, _| true);
        assert_eq!(r.sent, 0);
        let (_, sent) = rescue_all(&b, t0 + 20 * MS);
        assert_eq!(sent, vec![(0, frame(9, 67))]);
    }

    #[test]
    fn an_advert_that_finds_no_room_is_tried_again() {
        let b = RescueBoard::new(1);
        let t0 = Instant::now();
        b.record(0, 0, &frame(1, 60), t0, 10 * MS);
        let r = b.rescue(t0 + 16 * MS, |_, _| true, |_, _| false);
        assert_eq!((r.sent, r.next), (0, Some(t0 + 16 * MS)));
        assert_eq!(rescue_all(&b, t0 + 17 * MS).1.len(), 1);
    }

    #[test]
    fn the_grace_is_a_quarter_interval_and_2_ms_at_least() {
        assert_eq!(grace(10_000_000), 2_500_000);
        assert_eq!(grace(1_000_000_000), 250_000_000);
        assert_eq!(grace(4_000_000), 2_000_000);
    }

    #[test]
    fn an_oversized_frame_is_not_held() {
        let b = RescueBoard::new(1);
        let t0 = Instant::now();
        b.record(0, 0, &frame(1, 60), t0, 10 * MS);
        b.record(0, 0, &frame(1, RESCUE_FRAME_MAX + 1), t0, 10 * MS);
        assert!(rescue_all(&b, t0 + 20 * MS).1.is_empty());
    }
}
