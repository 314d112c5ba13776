//! The polling packet loop of one worker, pinned to one core.
//!
//! Each iteration: read the clock once, apply the neighbours the other
//! workers learned, send what the other workers handed over, then for each socket recycle completed frames, top
//! up the fill ring and handle a bounded batch of received frames (handing
//! those for a port where this worker has no socket to the worker that
//! has one, and publishing what it learned to the others); flush
//! transmissions once, publish counters, and wake the control thread if
//! adverts were punted. When there is nothing to do the loop spins
//! (`busy`), spins then sleeps in poll(2) (`adaptive`), or sleeps at once
//! (`wait`).
//! Once per iteration it also picks up route tables the control side
//! replaced (one atomic load when there are none) and publishes a copy of
//! its neighbour table when asked.

use std::{
    sync::atomic::Ordering,
    sync::Arc,
    time::{Duration, Instant},
};

use xvrrp_control::RouterId;

use crate::{
    capture::{CaptureTap, Verdict},
    neigh::NeighbourTable,
    process::Processor,
    routes::{TablesCell, TablesView},
    shared::{HandoffFrame, Shared},
    stats::{Counters, DropReason},
    xsk::{Egress, Retry, Tally, WorkerXsk},
};

/// What a worker does when idle.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Idle {
    /// Spin forever (dedicated cores).
    Busy,
    /// Spin for a while, then sleep until a frame or a wake-up arrives.
    Adaptive,
    /// Sleep as soon as there is nothing to do.
    Wait,
}

/// Nice value of the workers: ahead of ordinary tasks sharing their core
/// (CFS gives a nice -10 thread about ten times the share of a nice 0 one),
/// so that a busy neighbour cannot hold adverts and replies back for long;
/// still a normal-class thread, so the kernel's own work on that core (the
/// softirqs that feed the rings) is never starved, as a real-time spinning
/// thread could starve it.
const WORKER_NICE: i32 = -10;

/// Empty iterations before an adaptive worker sleeps.
const SPIN_BEFORE_SLEEP: u32 = 2000;
/// Upper bound on one sleep; a safety net, wake-ups normally come first.
const SLEEP_MS: u64 = 100;
/// How long a frame may wait for its next hop to be resolved (a few ARP
/// retries); then it is dropped as `no-neighbour`.
const PARK_TIMEOUT: Duration = Duration::from_secs(1);
/// How often parked frames are checked for expiry with no resolution.
const PARK_CHECK: Duration = Duration::from_millis(50);
/// Longest interval between two copies of the neighbour table while it
/// changes (a copy is made at once when the control thread asks).
const NEIGH_PUBLISH: Duration = Duration::from_secs(1);

/// Everything a worker owns.
pub struct Worker {
    /// Worker index (also its transmit queue and counters index).
    pub index: usize,
    /// Core to pin to.
    pub core: Option<usize>,
    /// Idle policy.
    pub idle: Idle,
    /// Sockets and frames.
    pub xsk: WorkerXsk,
    /// Ports, routers and routes, replaced when the routes change.
    pub tables: Arc<TablesCell>,
    /// Shared with control.
    pub shared: Arc<Shared>,
    /// The other running workers (they get the neighbours this one learns).
    pub peers: Vec<usize>,
    /// By port: the worker that sends for this one where it has no socket.
    pub tx_owner: Vec<Option<usize>>,
}

impl Worker {
    /// Runs until `shared.stop` is set.
    pub fn run(mut self) {
        if let Some(core) = self.core {
            // Pinning can fail in a restricted cpuset; the loop still works.
            let _ = core_affinity::set_for_current(core_affinity::CoreId { id: core });
        }
        raise_priority();
        let mut neigh = NeighbourTable::new();
        let mut tables = TablesView::new(Arc::clone(&self.tables));
        let mut counters = Counters::new(tables.get().ports.len());
        let mut tap = CaptureTap::new(self.index, tables.get().ports.len());
        let mut pollfds: Vec<libc::pollfd> = self
            .xsk
            .fds()
            .chain(std::iter::once(self.wakeup_fd()))
            .map(|fd| libc::pollfd {
                fd,
                events: libc::POLLIN,
                revents: 0,
            })
            .collect();
        let mut empty_loops: u32 = 0;
        let mut seen_generation = neigh.generation();
        let mut next_park_check = Instant::now();
        let mut neigh_published: Option<u64> = None;
        let mut next_neigh_publish = Instant::now();
        let shared = Arc::clone(&self.shared);
        let stats = shared.stats.get(self.index);
        let board = shared.neighbours.get(self.index);
        let rescue_ports: Vec<bool> = (0..tables.get().ports.len())
            .map(|p| matches!(self.xsk.egress(p), Egress::Local(_)))
            .collect();
        let mut rescue = RescueClock::default();
        while !self.shared.stop.load(Ordering::Relaxed) {
            let now = Instant::now();
            let mut work = 0;
            if rescue.due(&shared, now) {
                work += self.rescue_adverts(now, &rescue_ports, &mut counters, &mut rescue);
            }
            // One load per batch; a capture's copies cost only while it runs.
            let capturing = self.shared.capture.active();
            tables.refresh();
            work += self.apply_neighbours(&mut neigh);
            work += self.send_handed_off(&mut counters);
            let mut punted = false;
            let mut caught_up = true;
            let batch = self.xsk.batch_size();
            for s in 0..self.xsk.len() {
                self.xsk.recycle(s);
                let mut proc = Processor {
                    tables: tables.get(),
                    shared: &self.shared,
                    neigh: &mut neigh,
                    counters: &mut counters,
                    punted: false,
                    dropped: None,
                };
                let caps = &self.shared.capture;
                let n = self.xsk.receive(s, now, |port, buf, len| {
                    if !capturing {
                        return proc.handle(now, port, buf, len);
                    }
                    tap.rx(caps, now, port, buf, len, |buf, len| {
                        let action = proc.handle(now, port, buf, len);
                        (action, proc.dropped)
                    })
                });
                caught_up &= n < batch;
                work += n;
                punted |= proc.punted;
                self.send_requests(&mut neigh, capturing.then_some((&mut tap, now)));
                self.hand_off();
                self.share_neighbours(&mut neigh);
            }
            // Parked frames go again once an address was resolved, and are
            // given up when too old.
            if self.xsk.parked() > 0
                && (neigh.generation() != seen_generation || now >= next_park_check)
            {
                seen_generation = neigh.generation();
                next_park_check = now + PARK_CHECK;
                let mut proc = Processor {
                    tables: tables.get(),
                    shared: &self.shared,
                    neigh: &mut neigh,
                    counters: &mut counters,
                    punted: false,
                    dropped: None,
                };
                // Given up, a frame's sender hears that its next hop does not answer.
                let caps = &self.shared.capture;
                self.xsk
                    .retry_parked(now, PARK_TIMEOUT, |why, port, buf, len| {
                        let action = match why {
                            Retry::Again => proc.resume(now, port, buf, len),
                            Retry::Expired => proc.unresolved(now, port, buf, len),
                        };
                        if capturing {
                            tap.sent(caps, now, port, buf, action);
                        }
                        action
                    });
                self.send_requests(&mut neigh, capturing.then_some((&mut tap, now)));
                self.hand_off();
                self.share_neighbours(&mut neigh);
            }
            self.xsk
                .take_tally(|port, t| count_tally(&mut counters, port, t));
            tap.take_lost(|port, n| counters.port(port).capture_lost += n);
            self.xsk.flush(|port, sent| {
                let c = counters.port(port);
                c.tx += sent.frames as u64;
                c.tx_bytes += sent.bytes;
                for _ in 0..sent.dropped {
                    counters.drop(port, DropReason::TxRingFull);
                }
            });
            if caught_up {
                // After the adverts were queued: the control thread trusts
                // that nothing older than `now` is still in a ring.
                self.shared.publish_progress(self.index, now);
            }
            if punted {
                self.shared.control_wakeup.wake();
            }
            if let Some(board) = board {
                let asked = board.take_request();
                if asked || (now >= next_neigh_publish && neigh_published != Some(neigh.writes())) {
                    board.publish(now, &neigh);
                    neigh_published = Some(neigh.writes());
                    next_neigh_publish = now + NEIGH_PUBLISH;
                }
            }
            if work > 0 {
                empty_loops = 0;
                if let Some(s) = stats {
                    s.publish(&counters);
                }
                continue;
            }
            empty_loops = empty_loops.saturating_add(1);
            let sleep = match self.idle {
                Idle::Busy => false,
                Idle::Adaptive => empty_loops >= SPIN_BEFORE_SLEEP,
                Idle::Wait => true,
            };
            if !sleep {
                std::hint::spin_loop();
                continue;
            }
            counters.idle_sleeps += 1;
            if let Some(s) = stats {
                s.publish(&counters);
            }
            let woken = self.sleep(&mut pollfds, rescue.next);
            // Woken by its timeout (an advert deadline to check), not by
            // work: straight back to sleep when there is none.
            empty_loops = if woken { 0 } else { SPIN_BEFORE_SLEEP };
        }
        if let Some(s) = stats {
            s.publish(&counters);
        }
    }

    /// Sends the ARP requests / Neighbour Solicitations the handler queued,
    /// through the worker that has a socket on the port if this one has none;
    /// copies them for a capture when `tap` is given.
    fn send_requests(
        &mut self,
        neigh: &mut NeighbourTable,
        mut tap: Option<(&mut CaptureTap, Instant)>,
    ) {
        while let Some((port, frame, len)) = neigh.take_request() {
            let frame = frame.get(..len).unwrap_or(&[]);
            if let Some((tap, now)) = tap.as_mut() {
                tap.tx(&self.shared.capture, *now, port, frame, Verdict::Request);
            }
            // A request that finds no room is asked again after a wait.
            if !self.xsk.queue_copy(port, frame) {
                self.push_handoff(port, false, frame);
            }
        }
    }

    /// Copies the forwarded frames for ports where this worker has no
    /// socket to the workers that have one.
    fn hand_off(&mut self) {
        if self.xsk.outgoing() == 0 {
            return;
        }
        let (shared, owners) = (&self.shared, &self.tx_owner);
        self.xsk
            .hand_off(|port, frame| push_handoff(shared, owners, port, true, frame));
    }

    fn push_handoff(&self, port: usize, forwarded: bool, frame: &[u8]) -> bool {
        push_handoff(&self.shared, &self.tx_owner, port, forwarded, frame)
    }

    /// Sends what the other workers handed over: forwarded frames (counted
    /// `forwarded` here, where they leave) and resolution requests.
    fn send_handed_off(&mut self, counters: &mut Counters) -> usize {
        let Some(queue) = self.shared.handoff.get(self.index) else {
            return 0;
        };
        let mut n = 0;
        while let Some(frame) = queue.pop() {
            if self.xsk.queue_copy(frame.port, frame.bytes()) {
                if frame.forwarded {
                    counters.port(frame.port).forwarded += 1;
                }
            } else {
                counters.drop(frame.port, DropReason::EgressFull);
            }
            n += 1;
        }
        n
    }

    /// Publishes what this worker learned to every other worker.
    fn share_neighbours(&self, neigh: &mut NeighbourTable) {
        while let Some(update) = neigh.take_announcement() {
            for &w in &self.peers {
                if let Some(q) = self.shared.neigh.get(w) {
                    // A full queue loses this one; the entry is published
                    // again on its next refresh, and the other worker
                    // resolves it itself meanwhile.
                    let _ = q.push(update);
                }
                if let Some(wake) = self.shared.worker_wakeup.get(w) {
                    wake.wake();
                }
            }
        }
    }

    /// Applies the neighbours the other workers learned.
    fn apply_neighbours(&self, neigh: &mut NeighbourTable) -> usize {
        let Some(queue) = self.shared.neigh.get(self.index) else {
            return 0;
        };
        let mut n = 0;
        while let Some(update) = queue.pop() {
            neigh.handle_update(update);
            n += 1;
        }
        n
    }

    fn wakeup_fd(&self) -> i32 {
        self.shared
            .worker_wakeup
            .get(self.index)
            .map_or(-1, |w| w.raw_fd())
    }

    /// Sends the adverts the control thread is late with (through this
    /// worker's own sockets only: each port's are sent by a worker that
    /// has one), counted per port; returns how many. A router being
    /// drained is handing over: its adverts are left to the control thread.
    fn rescue_adverts(
        &mut self,
        now: Instant,
        ports: &[bool],
        counters: &mut Counters,
        clock: &mut RescueClock,
    ) -> usize {
        let shared = &self.shared;
        let xsk = &mut self.xsk;
        let done = shared.rescue.rescue(
            now,
            |slot, port| {
                ports.get(port).copied().unwrap_or(false)
                    && u16::try_from(slot).is_ok_and(|s| shared.is_announcing_master(RouterId(s)))
            },
            |port, frame| {
                let queued = xsk.queue_copy(port, frame);
                if queued {
                    counters.port(port).adverts_rescued += 1;
                }
                queued
            },
        );
        clock.next = done.next;
        usize::try_from(done.sent).unwrap_or(usize::MAX)
    }

    /// Sleeps until a frame or a wake-up arrives, for [`SLEEP_MS`] at most
    /// and not past `wake_by`; false if it woke by its timeout.
    fn sleep(&mut self, pollfds: &mut [libc::pollfd], wake_by: Option<Instant>) -> bool {
        let Some(wakeup) = self.shared.worker_wakeup.get(self.index) else {
            return true;
        };
        let mut woken = true;
        wakeup.prepare_sleep();
        // Re-check after announcing the sleep so a frame queued in between
        // is not left waiting for the timeout.
        let queued = self
            .shared
            .handoff
            .get(self.index)
            .is_some_and(|q| !q.is_empty())
            || self
                .shared
                .neigh
                .get(self.index)
                .is_some_and(|q| !q.is_empty());
        if !queued && !self.shared.stop.load(Ordering::Relaxed) {
            self.shared.publish_sleep(self.index, Instant::now());
            for p in pollfds.iter_mut() {
                p.revents = 0;
            }
            let nfds = libc::nfds_t::try_from(pollfds.len()).unwrap_or(0);
            // An advert the control thread may owe by then wakes us.
            let limit = Duration::from_millis(SLEEP_MS);
            let timeout = wake_by.map_or(limit, |at| {
                at.saturating_duration_since(Instant::now()).min(limit)
            });
            let ts = libc::timespec {
                tv_sec: 0,
                tv_nsec: libc::c_long::try_from(timeout.as_nanos()).unwrap_or(0),
            };
            // SAFETY: pollfds is a valid, exclusively borrowed array of nfds
            // entries; `ts` is a valid timespec; no signal mask.
            let rc = unsafe { libc::ppoll(pollfds.as_mut_ptr(), nfds, &ts, std::ptr::null()) };
            woken = rc != 0;
        }
        wakeup.woke();
        woken
    }
}

/// When a worker next looks for adverts the control thread is late with:
/// at the earliest deadline the control thread published, or, once the
/// worker has sent some in its place (the control thread not publishing
/// meanwhile), at the deadline the worker's own scan left.
#[derive(Default)]
struct RescueClock {
    seen: Option<Instant>,
    next: Option<Instant>,
}

impl RescueClock {
    fn due(&mut self, shared: &Shared, now: Instant) -> bool {
        let published = shared.rescue.earliest();
        if published != self.seen {
            self.seen = published;
            self.next = published;
        }
        self.next.is_some_and(|at| now >= at)
    }
}

/// Copies `frame` into the hand-off queue of the worker that sends on
/// `port` for the others, and wakes it; false if there is none, the frame
/// is too large or the queue is full.
fn push_handoff(
    shared: &Shared,
    owners: &[Option<usize>],
    port: usize,
    forwarded: bool,
    frame: &[u8],
) -> bool {
    let Some(w) = owners.get(port).copied().flatten() else {
        return false;
    };
    let (Some(queue), Some(copy)) = (
        shared.handoff.get(w),
        HandoffFrame::new(port, forwarded, frame),
    ) else {
        return false;
    };
    let pushed = queue.push(copy).is_ok();
    if let Some(wake) = shared.worker_wakeup.get(w) {
        wake.wake();
    }
    pushed
}

/// Adds what became of the frames placed on `port` to the counters.
fn count_tally(counters: &mut Counters, port: usize, t: &Tally) {
    let c = counters.port(port);
    c.forwarded += t.forwarded;
    c.handed_off += t.handed_off;
    counters.drop_n(port, DropReason::EgressFull, t.egress_full);
    counters.drop_n(port, DropReason::HandoffFull, t.handoff_full);
    counters.drop_n(port, DropReason::NoEgress, t.no_egress);
    counters.drop_n(port, DropReason::NoNeighbour, t.parked_lost);
}

/// Gives the calling worker thread [`WORKER_NICE`]; needs CAP_SYS_NICE,
/// without which the worker keeps the default and a warning says so.
fn raise_priority() {
    // SAFETY: gettid has no preconditions.
    let tid = unsafe { libc::gettid() };
    let Ok(tid) = libc::id_t::try_from(tid) else {
        return;
    };
    // SAFETY: setpriority on our own thread id with a plain integer value.
    let rc = unsafe { libc::setpriority(libc::PRIO_PROCESS, tid, WORKER_NICE) };
    if rc != 0 {
        tracing::warn!(
            error = %std::io::Error::last_os_error(),
            "could not raise the worker's priority (needs CAP_SYS_NICE)"
        );
    }
}
