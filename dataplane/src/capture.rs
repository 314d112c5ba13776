//! Copies of the frames the fast path sees on a port, for `xvrrp capture`:
//! `tcpdump` on the interface cannot see what the XDP program redirects to
//! the workers, so the workers copy it themselves, only while a capture
//! runs on that port.
//!
//! Cost: the worker reads one atomic per batch ([`Captures::active`]);
//! while no capture runs that is all. While one does, per frame of an
//! armed port it reads that port's filter (one relaxed load), classifies
//! the frame from a few header bytes, and copies at most [`SNAP_LEN`]
//! bytes into its own scratch slot, then moves the slot into the port's
//! ring: a bounded, preallocated, lock-free queue ([`RING_SLOTS`] slots,
//! allocated when the fast path starts). No allocation, lock, system call
//! or log per frame. When the ring is full the frame is not copied and
//! the worker counts it in `capture_lost` of the port.
//!
//! A frame is stamped with its batch's clock reading (the worker reads the
//! clock once per batch), so frames of one batch share a timestamp.

use std::{
    sync::atomic::{AtomicBool, AtomicU8, AtomicUsize, Ordering},
    time::Instant,
};

use crossbeam::queue::ArrayQueue;
use xvrrp_control::{CaptureFilter, DropReason};
use xvrrp_wire::pcapng::Direction;

use crate::xsk::Action;

/// Most bytes of a frame copied (the frame's own length is kept).
pub const SNAP_LEN: usize = 2048;
/// Frames a port's ring holds before copies are lost.
pub const RING_SLOTS: usize = 512;

/// What became of a frame, as its worker saw it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Received and dropped.
    Dropped(DropReason),
    /// Received and forwarded out of `port`, or sent forwarded from `port`.
    Forwarded {
        /// The other port.
        port: usize,
    },
    /// Received and answered (a reply or an ICMP error, sent on `port`).
    Answered {
        /// Where the answer goes.
        port: usize,
    },
    /// Received and held until its next hop is resolved.
    Parked,
    /// Received and taken: an advertisement handed to the control thread,
    /// or a reply to one of the fast path's resolution requests.
    Consumed,
    /// Sent: a reply or ICMP error the fast path built.
    Reply,
    /// Sent: a resolution request (ARP request, Neighbour Solicitation).
    Request,
}

/// One copied frame.
#[derive(Clone)]
pub struct CapturedFrame {
    /// Clock reading of the worker's batch.
    pub at: Instant,
    /// Received on the port or sent out of it.
    pub direction: Direction,
    /// Worker that copied it.
    pub worker: usize,
    /// What became of it.
    pub verdict: Verdict,
    /// Length of the whole frame.
    pub original_len: usize,
    len: usize,
    bytes: [u8; SNAP_LEN],
}

impl std::fmt::Debug for CapturedFrame {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CapturedFrame")
            .field("direction", &self.direction)
            .field("worker", &self.worker)
            .field("verdict", &self.verdict)
            .field("original_len", &self.original_len)
            .field("len", &self.len)
            .finish()
    }
}

impl CapturedFrame {
    /// An empty slot.
    pub fn new(at: Instant) -> Self {
        Self {
            at,
            direction: Direction::Inbound,
            worker: 0,
            verdict: Verdict::Consumed,
            original_len: 0,
            len: 0,
            bytes: [0; SNAP_LEN],
        }
    }

    /// The bytes copied (the first [`SNAP_LEN`] of the frame).
    pub fn data(&self) -> &[u8] {
        self.bytes.get(..self.len).unwrap_or(&[])
    }

    fn fill(&mut self, frame: &[u8]) {
        let n = frame.len().min(SNAP_LEN);
        if let (Some(dst), Some(src)) = (self.bytes.get_mut(..n), frame.get(..n)) {
            dst.copy_from_slice(src);
        }
        self.len = n;
        self.original_len = frame.len();
    }
}

/// The kind of a frame, from its first header bytes: what the protocol
/// filters need.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Class {
    /// IPv4 protocol or IPv6 next header 112.
    Vrrp,
    /// EtherType ARP.
    Arp,
    /// ICMPv6 types 133 to 137 right after the IPv6 header.
    Nd,
    /// Anything else.
    Other,
}

/// Classifies `frame` from its EtherType and first IP header bytes.
pub fn classify(frame: &[u8]) -> Class {
    const IPPROTO_VRRP: u8 = 112;
    const IPPROTO_ICMPV6: u8 = 58;
    let byte = |i: usize| frame.get(i).copied();
    match (byte(12), byte(13)) {
        (Some(0x08), Some(0x06)) => Class::Arp,
        (Some(0x08), Some(0x00)) if byte(23) == Some(IPPROTO_VRRP) => Class::Vrrp,
        (Some(0x86), Some(0xdd)) => match byte(20) {
            Some(IPPROTO_VRRP) => Class::Vrrp,
            Some(IPPROTO_ICMPV6) if matches!(byte(54), Some(133..=137)) => Class::Nd,
            _ => Class::Other,
        },
        _ => Class::Other,
    }
}

/// Whether a frame of `class` may pass `filter` before its verdict is known.
fn may_match(filter: CaptureFilter, class: Class) -> bool {
    match filter {
        CaptureFilter::All | CaptureFilter::Forwarded | CaptureFilter::Dropped => true,
        CaptureFilter::Vrrp => class == Class::Vrrp,
        CaptureFilter::Arp => class == Class::Arp,
        CaptureFilter::Nd => class == Class::Nd,
    }
}

/// Whether a frame of `class` with `verdict` passes `filter`.
pub fn matches(filter: CaptureFilter, class: Class, verdict: Verdict) -> bool {
    match filter {
        CaptureFilter::Forwarded => matches!(verdict, Verdict::Forwarded { .. }),
        CaptureFilter::Dropped => matches!(verdict, Verdict::Dropped(_)),
        f => may_match(f, class),
    }
}

/// One port's capture: its filter (0: off) and its ring.
struct PortCapture {
    /// 0 when no capture runs, else 1 + the filter's index in
    /// [`CaptureFilter::ALL`].
    filter: AtomicU8,
    /// Held by the capture in progress, armed or not.
    claimed: AtomicBool,
    ring: ArrayQueue<CapturedFrame>,
}

/// The captures of every port, shared by the workers (which fill the
/// rings) and the capture's reader (which drains one).
pub struct Captures {
    ports: Vec<PortCapture>,
    /// Ports armed now: the one load a worker makes per batch.
    active: AtomicUsize,
}

impl std::fmt::Debug for Captures {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Captures")
            .field("ports", &self.ports.len())
            .field("active", &self.active.load(Ordering::Relaxed))
            .finish()
    }
}

impl Captures {
    /// Idle captures of `ports` ports, their rings allocated now.
    pub fn new(ports: usize) -> Self {
        Self {
            ports: (0..ports)
                .map(|_| PortCapture {
                    filter: AtomicU8::new(0),
                    claimed: AtomicBool::new(false),
                    ring: ArrayQueue::new(RING_SLOTS),
                })
                .collect(),
            active: AtomicUsize::new(0),
        }
    }

    /// Whether any port is armed (one load; the workers read it per batch).
    #[inline]
    pub fn active(&self) -> bool {
        self.active.load(Ordering::Relaxed) > 0
    }

    /// Takes `port` for one capture; false if one already holds it (or
    /// there is no such port).
    pub fn claim(&self, port: usize) -> bool {
        self.ports.get(port).is_some_and(|p| {
            p.claimed
                .compare_exchange(false, true, Ordering::AcqRel, Ordering::Acquire)
                .is_ok()
        })
    }

    /// Empties `port`'s ring (frames left by an earlier capture) and has
    /// the workers copy what passes `filter`.
    pub fn arm(&self, port: usize, filter: CaptureFilter) {
        let Some(p) = self.ports.get(port) else {
            return;
        };
        while p.ring.pop().is_some() {}
        let code = CaptureFilter::ALL
            .iter()
            .position(|f| *f == filter)
            .and_then(|i| u8::try_from(i + 1).ok())
            .unwrap_or(1);
        if p.filter.swap(code, Ordering::AcqRel) == 0 {
            self.active.fetch_add(1, Ordering::AcqRel);
        }
    }

    /// Stops the copies on `port`. A worker that read the filter before
    /// may still copy a frame or two: they stay in the ring until the next
    /// capture empties it.
    pub fn disarm(&self, port: usize) {
        let Some(p) = self.ports.get(port) else {
            return;
        };
        if p.filter.swap(0, Ordering::AcqRel) != 0 {
            self.active.fetch_sub(1, Ordering::AcqRel);
        }
    }

    /// Stops the copies on `port`, empties its ring and gives the port up
    /// for the next capture.
    pub fn release(&self, port: usize) {
        let Some(p) = self.ports.get(port) else {
            return;
        };
        self.disarm(port);
        while p.ring.pop().is_some() {}
        p.claimed.store(false, Ordering::Release);
    }

    /// The oldest frame copied on `port`.
    pub fn pop(&self, port: usize) -> Option<CapturedFrame> {
        self.ports.get(port)?.ring.pop()
    }

    /// The filter of `port` while it is armed.
    #[inline]
    fn filter(&self, port: usize) -> Option<CaptureFilter> {
        let code = self.ports.get(port)?.filter.load(Ordering::Relaxed);
        CaptureFilter::ALL
            .get(usize::from(code).checked_sub(1)?)
            .copied()
    }

    fn has_room(&self, port: usize) -> bool {
        self.ports.get(port).is_some_and(|p| !p.ring.is_full())
    }
}

/// A worker's side of the captures: its scratch slot and its count of
/// copies lost per port, moved into its counters once per batch.
pub struct CaptureTap {
    worker: usize,
    /// Allocated once when the worker starts.
    scratch: Box<CapturedFrame>,
    lost: Vec<u64>,
}

impl CaptureTap {
    /// The tap of worker `worker` on `ports` ports.
    pub fn new(worker: usize, ports: usize) -> Self {
        Self {
            worker,
            scratch: Box::new(CapturedFrame::new(Instant::now())),
            lost: vec![0; ports],
        }
    }

    /// Handles one received frame with `handle` (which returns its action
    /// and, if it was dropped, why), copying the frame as received and
    /// what the action sends when their ports are armed. Call only when
    /// [`Captures::active`] said so this batch.
    pub fn rx<F>(
        &mut self,
        caps: &Captures,
        now: Instant,
        port: usize,
        buf: &mut [u8],
        len: usize,
        handle: F,
    ) -> Action
    where
        F: FnOnce(&mut [u8], usize) -> (Action, Option<DropReason>),
    {
        let filter = caps.filter(port);
        let frame = buf.get(..len).unwrap_or(&[]);
        // Frames of a port no capture runs on are only looked at for what
        // they send.
        let class = if filter.is_some() {
            classify(frame)
        } else {
            Class::Other
        };
        let (mut copied, mut full) = (false, false);
        if filter.is_some_and(|f| may_match(f, class)) {
            if caps.has_room(port) {
                self.scratch.fill(frame);
                copied = true;
            } else {
                full = true;
            }
        }
        let (action, dropped) = handle(buf, len);
        if let Some(f) = filter {
            let verdict = match (dropped, action) {
                (Some(r), _) => Verdict::Dropped(r),
                (None, Action::Forward { port, .. }) => Verdict::Forwarded { port },
                (None, Action::Send { port, .. }) => Verdict::Answered { port },
                (None, Action::Park) => Verdict::Parked,
                (None, Action::Free) => Verdict::Consumed,
            };
            if matches(f, class, verdict) {
                if copied {
                    self.scratch.at = now;
                    self.scratch.direction = Direction::Inbound;
                    self.scratch.worker = self.worker;
                    self.scratch.verdict = verdict;
                    self.push(caps, port);
                } else if full {
                    self.count_lost(port);
                }
            }
        }
        self.sent(caps, now, port, buf, action);
        action
    }

    /// Copies what `action` sends, if its port is armed: `from` is the
    /// port the frame came in on.
    pub fn sent(&mut self, caps: &Captures, now: Instant, from: usize, buf: &[u8], action: Action) {
        let (out, len, verdict) = match action {
            Action::Forward { port, len } => (port, len, Verdict::Forwarded { port: from }),
            Action::Send { port, len } => (port, len, Verdict::Reply),
            Action::Free | Action::Park => return,
        };
        self.tx(caps, now, out, buf.get(..len).unwrap_or(&[]), verdict);
    }

    /// Copies `frame`, sent out of `port` with `verdict`, if `port` is armed
    /// and the frame passes its filter.
    pub fn tx(
        &mut self,
        caps: &Captures,
        now: Instant,
        port: usize,
        frame: &[u8],
        verdict: Verdict,
    ) {
        let Some(f) = caps.filter(port) else {
            return;
        };
        if !matches(f, classify(frame), verdict) {
            return;
        }
        if !caps.has_room(port) {
            self.count_lost(port);
            return;
        }
        self.scratch.fill(frame);
        self.scratch.at = now;
        self.scratch.direction = Direction::Outbound;
        self.scratch.worker = self.worker;
        self.scratch.verdict = verdict;
        self.push(caps, port);
    }

    /// Copies lost since the last call, by port (then zeroed).
    pub fn take_lost(&mut self, mut f: impl FnMut(usize, u64)) {
        for (port, n) in self.lost.iter_mut().enumerate() {
            if *n > 0 {
                f(port, *n);
                *n = 0;
            }
        }
    }

    fn push(&mut self, caps: &Captures, port: usize) {
        let pushed = caps
            .ports
            .get(port)
            .is_some_and(|p| p.ring.push((*self.scratch).clone()).is_ok());
        if !pushed {
            self.count_lost(port);
        }
    }

    fn count_lost(&mut self, port: usize) {
        if let Some(n) = self.lost.get_mut(port) {
            *n += 1;
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn eth(ethertype: [u8; 2], rest: &[u8]) -> Vec<u8> {
        let mut f = vec![0u8; 12];
        f.extend_from_slice(&ethertype);
        f.extend_from_slice(rest);
        f
    }

    fn ipv4(proto: u8) -> Vec<u8> {
        let mut ip = vec![0x45u8; 20];
        ip[9] = proto;
        eth([0x08, 0x00], &ip)
    }

    fn nd(icmp_type: u8) -> Vec<u8> {
        let mut ip = vec![0x60u8; 40];
        ip[6] = 58;
        ip.push(icmp_type);
        eth([0x86, 0xdd], &ip)
    }

    #[test]
    fn classifies_by_ethertype_and_protocol() {
        assert_eq!(classify(&ipv4(112)), Class::Vrrp);
        assert_eq!(classify(&ipv4(17)), Class::Other);
        assert_eq!(classify(&eth([0x08, 0x06], &[0; 28])), Class::Arp);
        assert_eq!(classify(&nd(135)), Class::Nd);
        assert_eq!(classify(&nd(128)), Class::Other);
        assert_eq!(classify(&[]), Class::Other);
    }

    fn forward(buf: &mut [u8], len: usize) -> (Action, Option<DropReason>) {
        let _ = buf;
        (Action::Forward { port: 1, len }, None)
    }

    #[test]
    fn nothing_is_copied_unless_armed_and_a_port_is_claimed_once() {
        let caps = Captures::new(2);
        let mut tap = CaptureTap::new(0, 2);
        let now = Instant::now();
        let mut f = ipv4(17);
        let len = f.len();
        tap.rx(&caps, now, 0, &mut f, len, forward);
        assert!(caps.pop(0).is_none() && caps.pop(1).is_none());
        assert!(!caps.active());
        assert!(caps.claim(0));
        assert!(!caps.claim(0), "a second capture of the port is refused");
        assert!(!caps.claim(7));
        caps.arm(0, CaptureFilter::All);
        assert!(caps.active());
        caps.release(0);
        assert!(!caps.active());
        assert!(caps.claim(0));
    }

    #[test]
    fn received_and_forwarded_copies_carry_direction_and_verdict() {
        let caps = Captures::new(2);
        let mut tap = CaptureTap::new(3, 2);
        let now = Instant::now();
        caps.claim(0);
        caps.arm(0, CaptureFilter::All);
        caps.claim(1);
        caps.arm(1, CaptureFilter::Forwarded);
        let mut f = ipv4(17);
        let len = f.len();
        tap.rx(&caps, now, 0, &mut f, len, forward);
        let got = caps.pop(0).unwrap();
        assert_eq!(got.direction, Direction::Inbound);
        assert_eq!(got.worker, 3);
        assert_eq!(got.verdict, Verdict::Forwarded { port: 1 });
        assert_eq!(got.data(), &f[..]);
        let out = caps.pop(1).unwrap();
        assert_eq!(out.direction, Direction::Outbound);
        assert_eq!(out.verdict, Verdict::Forwarded { port: 0 });
    }

    #[test]
    fn filters_select_by_class_and_by_verdict() {
        let caps = Captures::new(1);
        let mut tap = CaptureTap::new(0, 1);
        let now = Instant::now();
        caps.claim(0);
        caps.arm(0, CaptureFilter::Dropped);
        let mut udp = ipv4(17);
        let len = udp.len();
        tap.rx(&caps, now, 0, &mut udp, len, |_, _| (Action::Free, None));
        assert!(caps.pop(0).is_none(), "not dropped: not copied");
        tap.rx(&caps, now, 0, &mut udp, len, |_, _| {
            (Action::Free, Some(DropReason::NoRoute))
        });
        assert_eq!(
            caps.pop(0).unwrap().verdict,
            Verdict::Dropped(DropReason::NoRoute)
        );
        caps.arm(0, CaptureFilter::Vrrp);
        tap.rx(&caps, now, 0, &mut udp, len, |_, _| (Action::Free, None));
        assert!(caps.pop(0).is_none());
        let mut advert = ipv4(112);
        let len = advert.len();
        tap.rx(&caps, now, 0, &mut advert, len, |_, _| (Action::Free, None));
        assert_eq!(caps.pop(0).unwrap().verdict, Verdict::Consumed);
    }

    #[test]
    fn long_frames_are_cut_to_the_snap_length() {
        let caps = Captures::new(1);
        let mut tap = CaptureTap::new(0, 1);
        caps.claim(0);
        caps.arm(0, CaptureFilter::All);
        let big = vec![7u8; SNAP_LEN + 100];
        tap.tx(&caps, Instant::now(), 0, &big, Verdict::Reply);
        let got = caps.pop(0).unwrap();
        assert_eq!(got.data().len(), SNAP_LEN);
        assert_eq!(got.original_len, SNAP_LEN + 100);
    }

    proptest! {
        /// Whatever the mix of frames and reads, the ring never holds more
        /// than its slots, every frame offered is either read back, in
        /// order, or counted lost, and nothing is copied once released.
        #[test]
        fn every_frame_is_read_or_counted_lost(ops in proptest::collection::vec(0u8..4, 0..3000)) {
            let caps = Captures::new(1);
            let mut tap = CaptureTap::new(0, 1);
            caps.claim(0);
            caps.arm(0, CaptureFilter::All);
            let now = Instant::now();
            let (mut offered, mut read, mut next) = (0u64, 0u64, 0u64);
            for op in ops {
                if op == 0 {
                    if let Some(f) = caps.pop(0) {
                        let seq = u64::from_le_bytes(f.data()[..8].try_into().unwrap());
                        prop_assert!(seq >= next, "out of order");
                        next = seq + 1;
                        read += 1;
                    }
                } else {
                    tap.tx(&caps, now, 0, &offered.to_le_bytes(), Verdict::Reply);
                    offered += 1;
                }
            }
            while caps.pop(0).is_some() {
                read += 1;
            }
            let mut lost = 0;
            tap.take_lost(|_, n| lost += n);
            prop_assert_eq!(read + lost, offered);
            caps.release(0);
            tap.tx(&caps, now, 0, &[1; 8], Verdict::Reply);
            prop_assert!(caps.pop(0).is_none());
        }
    }
}
