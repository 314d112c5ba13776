//! What the control thread and the workers share, all lock-free:
//! advertisements the workers validated (an `ArrayQueue` of small typed
//! values, stamped with their arrival time, and beside it one slot per
//! router for the latest advert of its current master, so that a flood of
//! other adverts cannot crowd the master's out), the ownership flag of each virtual router (atomics), counters,
//! and the wake-ups that let either side sleep. Between workers: the
//! neighbours each one learns, published to the others (one `ArrayQueue`
//! per worker), and the frames a worker forwards to a port where it has no
//! socket, copied to the worker that has one (one `ArrayQueue` per worker).

use std::{
    net::IpAddr,
    os::fd::{AsRawFd, FromRawFd, OwnedFd},
    sync::atomic::{AtomicBool, AtomicU64, Ordering},
    time::Instant,
};

use crossbeam::queue::ArrayQueue;
use xvrrp_control::{vrrp::RxAdvert, RouterId};

use crate::{
    capture::Captures,
    error::DataplaneError,
    limiter::ReplyLimiter,
    neigh::{NeighUpdate, NeighbourBoard},
    rescue::RescueBoard,
    stats::WorkerStats,
};

/// Depth of the advertisement queue towards the control thread.
pub const PUNT_QUEUE: usize = 1024;

/// Depth of each worker's queue of neighbours learned by the others.
pub const NEIGH_QUEUE: usize = 256;
/// Depth of each worker's queue of frames handed off by the others.
pub const HANDOFF_QUEUE: usize = 256;
/// Largest frame one worker can hand to another (an Ethernet frame of a
/// 2000-byte MTU with a VLAN tag; the fast path's ports are usually 1500).
pub const HANDOFF_MAX: usize = 2048;

/// A frame a worker hands to the worker that has a socket on its egress
/// port: a copy, since each worker's frames live in its own UMEM.
#[derive(Clone)]
pub struct HandoffFrame {
    /// Port index to send on.
    pub port: usize,
    /// A forwarded frame (counted `forwarded` by the worker that sends it),
    /// or a resolution request (already counted by the worker that built it).
    pub forwarded: bool,
    len: usize,
    bytes: [u8; HANDOFF_MAX],
}

impl HandoffFrame {
    /// Copies `frame`; `None` if it is larger than [`HANDOFF_MAX`].
    pub fn new(port: usize, forwarded: bool, frame: &[u8]) -> Option<Self> {
        let mut bytes = [0u8; HANDOFF_MAX];
        bytes.get_mut(..frame.len())?.copy_from_slice(frame);
        Some(Self {
            port,
            forwarded,
            len: frame.len(),
            bytes,
        })
    }

    /// The frame bytes.
    pub fn bytes(&self) -> &[u8] {
        self.bytes.get(..self.len).unwrap_or(&[])
    }
}

/// An eventfd a sleeping thread waits on and another thread pokes.
#[derive(Debug)]
pub struct Wakeup {
    fd: OwnedFd,
    sleeping: AtomicBool,
}

impl Wakeup {
    /// A new non-blocking eventfd.
    ///
    /// # Errors
    /// eventfd creation failure.
    pub fn new() -> Result<Self, DataplaneError> {
        // SAFETY: eventfd has no memory-safety preconditions.
        let fd = unsafe { libc::eventfd(0, libc::EFD_NONBLOCK | libc::EFD_CLOEXEC) };
        if fd < 0 {
            return Err(DataplaneError::Io {
                what: "creating an eventfd".into(),
                source: std::io::Error::last_os_error(),
            });
        }
        // SAFETY: fd is a fresh descriptor we own.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        Ok(Self {
            fd,
            sleeping: AtomicBool::new(false),
        })
    }

    /// The descriptor to poll for POLLIN.
    pub fn raw_fd(&self) -> i32 {
        self.fd.as_raw_fd()
    }

    /// Called by the waiting side before it sleeps; the caller must re-check
    /// its queues after this and before sleeping.
    pub fn prepare_sleep(&self) {
        self.sleeping.store(true, Ordering::SeqCst);
    }

    /// Called by the waiting side when it wakes: clears the flag and drains
    /// the counter.
    pub fn woke(&self) {
        self.sleeping.store(false, Ordering::SeqCst);
        let mut buf = [0u8; 8];
        // SAFETY: reading 8 bytes into an 8-byte buffer from our own fd.
        unsafe { libc::read(self.fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) };
    }

    /// Wakes the other side if it sleeps (one syscall per sleep, not per item).
    pub fn wake(&self) {
        if self.sleeping.swap(false, Ordering::SeqCst) {
            let one: u64 = 1;
            // SAFETY: writing 8 bytes from a u64 to our own eventfd.
            unsafe { libc::write(self.fd.as_raw_fd(), (&one as *const u64).cast(), 8) };
        }
    }
}

/// State shared by the control thread and the workers.
pub struct Shared {
    /// Validated advertisements, worker → control, except those of each
    /// router's current master (see [`Shared::push_advert`]).
    pub adverts: ArrayQueue<RxAdvert>,
    /// Per router: the latest advert of its current master (a peer).
    master_slots: Vec<ArrayQueue<RxAdvert>>,
    /// Per router: fingerprint of its current master's address (0: none).
    master_source: Vec<AtomicU64>,
    /// One bit per router, set after an advert was put in its master slot,
    /// so that the control thread reads only the slots that hold one.
    slots_pending: Vec<AtomicU64>,
    /// Per router, indexed by [`RouterId`]: is this appliance master
    /// (answer and forward)?
    pub master: Vec<AtomicBool>,
    /// Per router: a drained master still forwarding until the router
    /// taking over is heard. Its forwarded frames leave from the port's own
    /// MAC, so that they cannot teach the switches the virtual MAC back
    /// after the new master has claimed it.
    pub draining: Vec<AtomicBool>,
    /// Set to stop the workers.
    pub stop: AtomicBool,
    /// Published counters, one per worker.
    pub stats: Vec<WorkerStats>,
    /// Wakes the control thread when adverts arrive.
    pub control_wakeup: Wakeup,
    /// Wakes worker `i` when frames are queued for it.
    pub worker_wakeup: Vec<Wakeup>,
    /// Per worker: how far it has read its receive rings (see
    /// [`Shared::publish_progress`]).
    progress: Vec<AtomicU64>,
    /// Neighbours learned by the other workers, → worker `i`.
    pub neigh: Vec<ArrayQueue<NeighUpdate>>,
    /// Frames for a port where the sending worker has no socket, → worker `i`.
    pub handoff: Vec<ArrayQueue<HandoffFrame>>,
    /// How many ARP/ND replies for the virtual addresses may leave, per
    /// sender and in all (every worker).
    pub replies: ReplyLimiter,
    /// Time origin of `last_icmp_error` and `progress`.
    epoch: Instant,
    /// When the last ICMP error was sent, in ns since `epoch` (all workers).
    last_icmp_error: AtomicU64,
    /// Copies of worker `i`'s neighbour table, for `xvrrp neighbors`.
    pub neighbours: Vec<NeighbourBoard>,
    /// Frame copies for `xvrrp capture`, per port.
    pub capture: Captures,
    /// Per router: its last advert, for the workers to send when the
    /// control thread is late.
    pub rescue: RescueBoard,
}

/// A non-zero 64-bit summary of an address, to compare an advert's
/// source with a router's master without a lock. A sender that forges the
/// master's fingerprint could as well forge its address.
fn source_fingerprint(addr: IpAddr) -> u64 {
    match addr {
        IpAddr::V4(a) => (1 << 63) | u64::from(u32::from(a)),
        IpAddr::V6(a) => {
            let bits = u128::from(a);
            // Truncations intended: the two halves folded into one word.
            #[allow(clippy::cast_possible_truncation)]
            let folded = (bits as u64) ^ ((bits >> 64) as u64);
            (1 << 62) | (folded >> 2)
        }
    }
}

/// Flag bit of a worker's progress word: the worker sleeps.
const SLEEPING: u64 = 1 << 63;

/// Minimum spacing of ICMP errors from the fast path (RFC 1812 §4.3.2.8
/// asks routers to rate-limit them): 1000 per second at most.
pub const ICMP_ERROR_SPACING: std::time::Duration = std::time::Duration::from_millis(1);

impl Shared {
    /// Shared state for `workers` workers, `ports` ports and `routers` routers.
    ///
    /// # Errors
    /// eventfd creation failure.
    pub fn new(workers: usize, ports: usize, routers: usize) -> Result<Self, DataplaneError> {
        Ok(Self {
            adverts: ArrayQueue::new(PUNT_QUEUE),
            master_slots: (0..routers).map(|_| ArrayQueue::new(1)).collect(),
            master_source: (0..routers).map(|_| AtomicU64::new(0)).collect(),
            slots_pending: (0..routers.div_ceil(64))
                .map(|_| AtomicU64::new(0))
                .collect(),
            master: (0..routers).map(|_| AtomicBool::new(false)).collect(),
            draining: (0..routers).map(|_| AtomicBool::new(false)).collect(),
            stop: AtomicBool::new(false),
            stats: (0..workers).map(|_| WorkerStats::new(ports)).collect(),
            neigh: (0..workers).map(|_| ArrayQueue::new(NEIGH_QUEUE)).collect(),
            handoff: (0..workers)
                .map(|_| ArrayQueue::new(HANDOFF_QUEUE))
                .collect(),
            control_wakeup: Wakeup::new()?,
            worker_wakeup: (0..workers)
                .map(|_| Wakeup::new())
                .collect::<Result<_, _>>()?,
            progress: (0..workers).map(|_| AtomicU64::new(0)).collect(),
            replies: ReplyLimiter::new(),
            epoch: Instant::now(),
            last_icmp_error: AtomicU64::new(0),
            neighbours: (0..workers).map(|_| NeighbourBoard::default()).collect(),
            capture: Captures::new(ports),
            rescue: RescueBoard::new(routers),
        })
    }

    /// Records the address of router `id`'s current master when it is a
    /// peer. `None` (we are master, or none is known) keeps the last one:
    /// it is the likeliest router to come back.
    pub fn set_master_source(&self, id: RouterId, addr: Option<IpAddr>) {
        if let (Some(addr), Some(src)) = (addr, self.master_source.get(id.index())) {
            // Called every pass for every router: write only a change, so
            // the workers' cached copy of the line stays valid.
            let fingerprint = source_fingerprint(addr);
            if src.load(Ordering::Relaxed) != fingerprint {
                src.store(fingerprint, Ordering::Relaxed);
            }
        }
    }

    /// Hands a validated advert to the control thread: the current
    /// master's goes to its router's slot (replacing an older one the
    /// control thread has not read: only the latest matters), any other to
    /// the shared queue. Gives the advert back when the queue is full.
    pub fn push_advert(&self, advert: RxAdvert) -> Result<(), RxAdvert> {
        let i = advert.router.index();
        let from_master = self
            .master_source
            .get(i)
            .is_some_and(|s| s.load(Ordering::Relaxed) == source_fingerprint(advert.src));
        match self.master_slots.get(i) {
            Some(slot) if from_master => {
                slot.force_push(advert);
                if let Some(word) = self.slots_pending.get(i / 64) {
                    word.fetch_or(1 << (i % 64), Ordering::Release);
                }
                Ok(())
            }
            _ => self.adverts.push(advert),
        }
    }

    /// Whether adverts wait for the control thread.
    pub fn has_adverts(&self) -> bool {
        self.slots_pending
            .iter()
            .any(|w| w.load(Ordering::Acquire) != 0)
            || !self.adverts.is_empty()
    }

    /// Gives every waiting advert to `f`: the masters' slots first, then the
    /// queue.
    pub fn drain_adverts(&self, mut f: impl FnMut(RxAdvert)) {
        for (w, word) in self.slots_pending.iter().enumerate() {
            let mut bits = word.swap(0, Ordering::Acquire);
            while bits != 0 {
                let bit = bits.trailing_zeros() as usize;
                bits &= bits - 1;
                if let Some(advert) = self
                    .master_slots
                    .get(w * 64 + bit)
                    .and_then(ArrayQueue::pop)
                {
                    f(advert);
                }
            }
        }
        while let Some(advert) = self.adverts.pop() {
            f(advert);
        }
    }

    /// Whether an ICMP error may be sent at `now` (and if so, takes the slot).
    /// Only packets that are not forwarded (expired, unroutable, unresolved)
    /// get here, so one atomic exchange per error is fine.
    pub fn icmp_error_allowed(&self, now: Instant) -> bool {
        let spacing = u64::try_from(ICMP_ERROR_SPACING.as_nanos()).unwrap_or(u64::MAX);
        let at = u64::try_from(now.saturating_duration_since(self.epoch).as_nanos())
            .unwrap_or(u64::MAX)
            .saturating_add(spacing);
        let last = self.last_icmp_error.load(Ordering::Relaxed);
        at.saturating_sub(last) >= spacing
            && self
                .last_icmp_error
                .compare_exchange(last, at, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
    }

    /// Worker `w` has read every frame that reached its rings before `at`
    /// (it found them empty, or short of a batch, in a pass started then).
    /// Released after the adverts it pushed, so a reader that sees `at` also
    /// sees them in the queue.
    pub fn publish_progress(&self, w: usize, at: Instant) {
        if let Some(p) = self.progress.get(w) {
            p.store(self.nanos(at), Ordering::Release);
        }
    }

    /// Worker `w` goes to sleep at `at` with its rings empty.
    pub fn publish_sleep(&self, w: usize, at: Instant) {
        if let Some(p) = self.progress.get(w) {
            p.store(self.nanos(at) | SLEEPING, Ordering::Release);
        }
    }

    /// How far worker `w` has read: the time up to which every frame that
    /// reached its rings has been handled, and whether it sleeps (its rings
    /// were empty then; anything newer wakes it).
    pub fn progress(&self, w: usize) -> Option<(Instant, bool)> {
        let v = self.progress.get(w)?.load(Ordering::Acquire);
        let at = self.epoch + std::time::Duration::from_nanos(v & !SLEEPING);
        Some((at, v & SLEEPING != 0))
    }

    fn nanos(&self, at: Instant) -> u64 {
        u64::try_from(at.saturating_duration_since(self.epoch).as_nanos())
            .unwrap_or(u64::MAX)
            .min(!SLEEPING)
    }

    /// Is this appliance master of router `id`?
    #[inline]
    pub fn is_master(&self, id: RouterId) -> bool {
        self.master
            .get(id.index())
            .is_some_and(|m| m.load(Ordering::Acquire))
    }

    /// Is this appliance master of router `id` and announcing it: master
    /// and not draining (see [`Shared::draining`])?
    #[inline]
    pub fn is_announcing_master(&self, id: RouterId) -> bool {
        self.is_master(id)
            && !self
                .draining
                .get(id.index())
                .is_some_and(|d| d.load(Ordering::Relaxed))
    }
}
