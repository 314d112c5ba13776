//! One virtual router as the control thread runs it, and the set of them.
//!
//! [`Router`] wraps the RFC state machine ([`Instance`]) with the protocol
//! around it that the RFC leaves to the implementation: the gratuitous-ARP
//! burst and refresh timers, the own port's link fault, tracking weights,
//! and the checks an advert needs against local state (own source, unicast
//! peers, address list). [`Routers`] holds every router, their sync groups
//! and the debounced link state, and is what the shell drives.
//!
//! Like the instance, nothing here reads a clock or touches a socket:
//! every input carries `now`, and inputs must carry monotonically
//! increasing time (as quinn-proto asks of its callers); an earlier `now`
//! than the last one seen is treated as the last one.

use std::collections::VecDeque;
use std::net::IpAddr;
use std::time::{Duration, Instant};

use xvrrp_wire::vrrp::{ChecksumKind, Version};

use super::advert::{AddressList, RxAdvert};
use super::fsm::{Advert, Output, Reason, State};
use super::instance::{Instance, OWNER_PRIORITY};
use super::links::LinkTracker;
use super::sync::{propagate, propagate_fault, SyncGroup, SyncMember};
use crate::config::{RouterId, RouterSpec, TrackTarget};
use crate::drop_reason::DropReason;

/// A timer served later than this after its deadline counts as a late
/// wake-up of the control thread (a starved or frozen process).
pub const LATE_TIMER: Duration = Duration::from_millis(2);

/// Routers' adverts are spread over this many phases of half an interval.
const PHASE_SLOTS: u16 = 32;

/// How soon a held-back Master_Down_Timer expiry is looked at again.
const DEFER_STEP: Duration = Duration::from_micros(500);

/// Longest a backup waits for its fast path to read its rings up to the
/// Master_Down deadline (or one interval, if longer): a worker that lags
/// more is taken for wedged. Until it reads, the master's adverts may be
/// waiting in its ring, and a backup whose worker does not run could not
/// forward anyway.
pub const FAST_PATH_WAIT: Duration = Duration::from_secs(1);

/// What the shell must carry out for one router, in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Build and send one advertisement with these fields.
    SendAdvert {
        /// Priority field (0 on shutdown or forced step-down).
        priority: u8,
        /// Interval field in centiseconds (v2: seconds × 100).
        max_advert_int_cs: u16,
    },
    /// Announce every virtual address once now (gratuitous ARP for IPv4,
    /// unsolicited NA for IPv6); the burst's count and spacing are timed here.
    Announce,
    /// Start (`true`) or stop answering and forwarding for the router.
    SetOwnership {
        /// Whether the fast path now owns the virtual addresses.
        master: bool,
    },
    /// The router changed state.
    StateChanged {
        /// Previous state.
        from: State,
        /// New state.
        to: State,
        /// Why.
        reason: Reason,
        /// Effective priority after the change.
        priority: u8,
    },
    /// Something an operator should read in the log.
    Notice(Notice),
}

/// Log-worthy facts, each reported once (or once per change), never per advert.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Notice {
    /// The router's own port went down: it is in fault.
    PortDown,
    /// The port is up again: the router starts over.
    PortUp,
    /// The effective priority changed (tracking or an admin command).
    PriorityChanged(u8),
    /// A peer lists other virtual addresses than ours (first time).
    AddressListMismatch {
        /// The peer's address.
        peer: IpAddr,
    },
    /// A peer computes the v3 IPv4 checksum the other way (first time).
    PeerChecksum {
        /// The peer's address.
        peer: IpAddr,
        /// The variant it uses.
        theirs: ChecksumKind,
    },
    /// The port's primary address changed: adverts now come from `to`.
    PrimaryChanged {
        /// The address used so far.
        from: IpAddr,
        /// The address used from now on.
        to: IpAddr,
    },
    /// A peer advertises another interval than ours (first time).
    PeerInterval {
        /// The peer's address.
        peer: IpAddr,
        /// Its interval in centiseconds.
        theirs_cs: u16,
    },
}

/// Where a drained router is in its planned handover.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DrainState {
    /// Master advertising priority 0, still owning the addresses and
    /// forwarding: waiting for a peer to advertise as master.
    Draining,
    /// Backup, out of the election until resumed.
    Drained,
}

impl DrainState {
    /// Name shown in `status` and events.
    pub fn name(self) -> &'static str {
        match self {
            DrainState::Draining => "draining",
            DrainState::Drained => "drained",
        }
    }
}

/// A gratuitous-ARP burst in progress.
#[derive(Debug, Clone, Copy)]
struct GarpBurst {
    remaining: u32,
    next: Instant,
}

/// Advert counters of a router, for `status` and `stats`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RouterCounters {
    /// Adverts accepted for the state machine.
    pub adverts_rx: u64,
    /// Adverts the shell reported sent.
    pub adverts_tx: u64,
    /// Accepted adverts whose address list differs from ours (B16/B22).
    pub address_list_errors: u64,
    /// Master_Down_Timer expiries held back because the fast path had not
    /// yet read every frame that arrived before the deadline, or because
    /// the control thread had just been frozen (see [`Router::handle_stall`]).
    pub takeovers_deferred: u64,
    /// Takeovers made although the fast path had still not read every frame
    /// up to the deadline when the wait ran out (it lagged that long): the
    /// master's adverts may have been waiting unread, so possibly false.
    pub takeovers_unconfirmed: u64,
}

/// One virtual router: its spec, its state machine and the timers around it.
#[derive(Debug)]
pub struct Router {
    spec: RouterSpec,
    instance: Instance,
    /// Priority before tracking: the configured one, or what an admin set.
    base_priority: u8,
    /// Sum of the weights of the tracked ports that are down.
    track_adjust: i32,
    /// The own port is down (shown as state "fault").
    fault: bool,
    /// Whether the fast path owns the addresses (mirrors `SetOwnership`).
    owning: bool,
    garp: Option<GarpBurst>,
    garp_refresh_at: Option<Instant>,
    peer_checksum: Option<ChecksumKind>,
    checksum_noticed: bool,
    interval_noticed: bool,
    counters: RouterCounters,
    outputs: VecDeque<Action>,
    /// The latest `now` passed in.
    now: Option<Instant>,
    /// A held-back Master_Down_Timer expiry is looked at again then.
    deferred_until: Option<Instant>,
    /// After a stall of the shell: the Master_Down_Timer deadline that is
    /// held, and until when (one grace per silence of the master).
    stall_grace: Option<(Instant, Instant)>,
    /// A stalled master: when it first ran again (it waits for the fast path
    /// to read what came meanwhile before it decides).
    stalled_since: Option<Instant>,
}

impl Router {
    /// A router in Initialize, advertising from `primary` (the port's
    /// primary IPv4 address, or its IPv6 link-local address).
    pub fn new(spec: RouterSpec, primary: IpAddr) -> Self {
        let mut instance = Instance::new(spec.instance_config(primary));
        // Spread the routers' adverts over half an interval, by id.
        let slot = u32::from(spec.id.0 % PHASE_SLOTS);
        instance.set_advert_phase(spec.advert_interval() / 2 * slot / u32::from(PHASE_SLOTS));
        Self {
            base_priority: spec.priority,
            spec,
            instance,
            track_adjust: 0,
            fault: false,
            owning: false,
            garp: None,
            garp_refresh_at: None,
            peer_checksum: None,
            checksum_noticed: false,
            interval_noticed: false,
            counters: RouterCounters::default(),
            outputs: VecDeque::new(),
            now: None,
            deferred_until: None,
            stall_grace: None,
            stalled_since: None,
        }
    }

    /// Monotonic time: an input older than the last one counts as the last.
    fn clock(&mut self, now: Instant) -> Instant {
        let now = self.now.map_or(now, |last| last.max(now));
        self.now = Some(now);
        now
    }

    // ----- inputs -------------------------------------------------------------

    /// Starts the router: Backup (or Master for the owner), or fault while
    /// its port is down.
    pub fn handle_startup(&mut self, now: Instant, port_up: bool) {
        let now = self.clock(now);
        if port_up {
            self.instance.handle_startup(now);
        } else {
            self.fault = true;
            self.outputs.push_back(Action::Notice(Notice::PortDown));
        }
        self.pump(now);
    }

    /// The debounced link state changed: the own port (`port_up`) and the
    /// sum of the weights of the tracked ports that are down. Returns true
    /// when the router has just gone into fault (its sync group follows).
    pub fn handle_links(&mut self, now: Instant, port_up: bool, track_adjust: i32) -> bool {
        let now = self.clock(now);
        let mut faulted = false;
        if self.fault && port_up {
            self.fault = false;
            self.outputs.push_back(Action::Notice(Notice::PortUp));
            self.instance.handle_startup(now);
        } else if !self.fault && !port_up && self.instance.state() != State::Initialize {
            self.fault = true;
            self.outputs.push_back(Action::Notice(Notice::PortDown));
            self.instance.handle_shutdown(now);
            faulted = true;
        }
        self.track_adjust = track_adjust;
        self.apply_priority(now);
        self.pump(now);
        faulted
    }

    /// Sets the priority before tracking (the `priority` command).
    pub fn handle_priority(&mut self, now: Instant, priority: u8) {
        let now = self.clock(now);
        self.base_priority = priority;
        self.apply_priority(now);
        self.pump(now);
    }

    /// An advertisement for this router; `Err` says why it was refused
    /// before the state machine saw it.
    ///
    /// # Errors
    /// Our own advert looped back, a source that is not a unicast peer, or
    /// a VRRPv2 address list that is not ours.
    pub fn handle_advert(&mut self, now: Instant, adv: &RxAdvert) -> Result<(), DropReason> {
        let now = self.clock(now);
        let arrival = adv.arrival.min(now);
        if adv.src == self.primary() {
            return Err(DropReason::OwnAdvert);
        }
        if !self.spec.unicast_peers.is_empty() && !self.spec.unicast_peers.contains(&adv.src) {
            // Unicast mode: only the configured peers take part.
            return Err(DropReason::SourceError);
        }
        match adv.addresses {
            AddressList::Matches => {}
            AddressList::Drop => return Err(DropReason::AddressListError),
            AddressList::Mismatch => {
                if self.counters.address_list_errors == 0 {
                    self.outputs
                        .push_back(Action::Notice(Notice::AddressListMismatch {
                            peer: adv.src,
                        }));
                }
                self.counters.address_list_errors += 1;
            }
        }
        self.counters.adverts_rx += 1;
        if let Some(kind) = adv.checksum {
            self.peer_checksum = Some(kind);
            if kind != self.spec.checksum
                && self.spec.version == Version::V3
                && !self.checksum_noticed
            {
                self.checksum_noticed = true;
                self.outputs.push_back(Action::Notice(Notice::PeerChecksum {
                    peer: adv.src,
                    theirs: kind,
                }));
            }
        }
        if adv.max_advert_int_cs != self.spec.interval_cs
            && adv.priority != 0
            && !self.interval_noticed
        {
            // RFC 9568 §6.4.2: a v3 backup adopts the master's interval (a v2
            // one drops the advert); worth one line, not one per advert (B18).
            self.interval_noticed = true;
            self.outputs.push_back(Action::Notice(Notice::PeerInterval {
                peer: adv.src,
                theirs_cs: adv.max_advert_int_cs,
            }));
        }
        self.instance.handle_advert(
            arrival,
            &Advert {
                src: adv.src,
                priority: adv.priority,
                max_advert_int_cs: adv.max_advert_int_cs,
            },
        );
        self.pump(now);
        Ok(())
    }

    /// Fires what is due at `now`; returns whether the state machine's timer
    /// was served more than [`LATE_TIMER`] after its deadline.
    ///
    /// `heard_until` is the time up to which every frame that reached the
    /// fast path has been handed over (and fed in before this call). A
    /// backup does not declare the master down at deadline D while frames
    /// that arrived before D may still wait unread in a ring: it looks again
    /// shortly, for at most [`FAST_PATH_WAIT`] (or one Master_Adver_Interval
    /// if longer), after which a fast path that lags that much is taken for
    /// wedged. A flood or a starved worker then delays a takeover instead of
    /// causing a false one. In the same way a master frozen past a backup's
    /// patience waits for the frames that came meanwhile: a successor's
    /// advert among them steps it down, none means nobody took over.
    pub fn handle_timeout(&mut self, now: Instant, heard_until: Instant) -> bool {
        let now = self.clock(now);
        let mut late = false;
        if !self.instance.is_stalled_master(now) {
            self.stalled_since = None;
        }
        if let Some(due) = self.instance.poll_timeout().filter(|t| *t <= now) {
            let graced = self.stall_grace.filter(|&(held, until)| {
                held == due && now < until && self.state() == State::Backup
            });
            if let Some((_, until)) = graced {
                if self.deferred_until.is_none() {
                    self.counters.takeovers_deferred += 1;
                }
                self.deferred_until = Some(until);
                self.pump(now);
                return false;
            }
            if self.instance.is_stalled_master(now) {
                // Frozen past a backup's patience: a backup that took over
                // has advertised meanwhile, and its advert, once read,
                // steps this master down. Wait (at most one interval) for
                // the fast path to read what came; nothing there means
                // nobody took over.
                let since = *self.stalled_since.get_or_insert(now);
                let limit = self.spec.advert_interval();
                if heard_until < since && now.saturating_duration_since(since) < limit {
                    self.deferred_until = Some(now + DEFER_STEP);
                    self.pump(now);
                    return false;
                }
                self.instance.handle_not_replaced(now);
            }
            if self.must_wait_for_frames(due, now, heard_until) {
                if self.deferred_until.is_none() {
                    self.counters.takeovers_deferred += 1;
                }
                self.deferred_until = Some(now + DEFER_STEP);
                self.pump(now);
                return false;
            }
            self.deferred_until = None;
            late = now.saturating_duration_since(due) > LATE_TIMER;
            let unconfirmed = self.instance.state() == State::Backup && heard_until < due;
            self.instance.handle_timeout(now);
            if unconfirmed && self.instance.state() == State::Master {
                self.counters.takeovers_unconfirmed += 1;
            }
        }
        self.pump(now);
        late
    }

    /// The shell was not running until `now` (its pass came more than
    /// [`LATE_TIMER`] after a deadline: the process was frozen or starved).
    /// A master on the same host (another VM of the hypervisor that froze
    /// this one, a container beside it) may have been frozen too and
    /// advertises as soon as it runs again, so a backup whose
    /// Master_Down_Timer falls due within one Master_Adver_Interval of now
    /// waits until then for it. Once per silence of the master: a run of
    /// stalls delays a takeover by one interval at most.
    pub fn handle_stall(&mut self, now: Instant) {
        let now = self.clock(now);
        if self.state() != State::Backup {
            return;
        }
        let grace = self.master_adver_interval();
        if let Some(due) = self
            .instance
            .poll_timeout()
            .filter(|&due| due < now + grace)
        {
            if self.stall_grace.is_none_or(|(held, _)| held != due) {
                self.stall_grace = Some((due, now + grace));
            }
        }
    }

    /// The master's advertisement interval, as this backup counts it.
    fn master_adver_interval(&self) -> Duration {
        super::timer::cs_to_duration(self.instance.master_adver_interval_cs())
    }

    fn must_wait_for_frames(&self, due: Instant, now: Instant, heard_until: Instant) -> bool {
        let limit = self.master_adver_interval().max(FAST_PATH_WAIT);
        self.instance.state() == State::Backup
            && heard_until < due
            && now.saturating_duration_since(due) < limit
    }

    /// Forces the state its sync group chose.
    pub fn handle_force(&mut self, now: Instant, to: State) {
        let now = self.clock(now);
        self.instance.handle_force(now, to);
        self.pump(now);
    }

    /// Shutdown: a master sends priority 0 (and, here, keeps ownership: the
    /// shell gives it up once a backup has taken over).
    pub fn handle_shutdown(&mut self, now: Instant) {
        let now = self.clock(now);
        self.instance.handle_shutdown(now);
        self.pump(now);
    }

    /// Drain: planned handover (see [`Instance::handle_drain`]).
    pub fn handle_drain(&mut self, now: Instant) {
        let now = self.clock(now);
        self.instance.handle_drain(now);
        self.pump(now);
    }

    /// Resume: undoes [`Router::handle_drain`] (see [`Instance::handle_resume`]).
    pub fn handle_resume(&mut self, now: Instant) {
        let now = self.clock(now);
        self.instance.handle_resume(now);
        self.pump(now);
    }

    /// The port's primary address is now `addr` (docs/conformance.md F17).
    pub fn handle_primary(&mut self, addr: IpAddr) {
        let from = self.primary();
        if from != addr {
            self.instance.set_primary_addr(addr);
            self.outputs
                .push_back(Action::Notice(Notice::PrimaryChanged { from, to: addr }));
        }
    }

    /// A reload gave the router new settings that keep its state (see
    /// [`crate::config::reload`]): `spec` has the same port, VRID, version,
    /// family, interval and ownership, and possibly a new id. A new
    /// configured priority replaces one an admin set; a master owning its
    /// addresses announces them all at once when they changed (the fast
    /// path answers for the new ones from the same moment). The tracking
    /// adjustment follows with the next [`Router::handle_links`].
    pub fn handle_reconfigure(&mut self, now: Instant, spec: RouterSpec) {
        let now = self.clock(now);
        let addresses_changed = spec.addresses != self.spec.addresses;
        let garp_changed = spec.garp != self.spec.garp;
        if spec.priority != self.spec.priority {
            self.base_priority = spec.priority;
        }
        self.instance
            .reconfigure(spec.priority, spec.preempt, spec.preempt_delay);
        self.spec = spec;
        if self.announcing() {
            if addresses_changed {
                self.garp = Some(GarpBurst {
                    remaining: self.spec.garp.count.max(1),
                    next: now,
                });
            }
            if garp_changed || addresses_changed {
                self.garp_refresh_at =
                    (!self.spec.garp.refresh.is_zero()).then(|| now + self.spec.garp.refresh);
            }
        }
        self.apply_priority(now);
        self.pump(now);
    }

    /// The shell sent an advertisement.
    pub fn note_advert_sent(&mut self) {
        self.counters.adverts_tx += 1;
    }

    // ----- outputs ------------------------------------------------------------

    /// The next action, in the order they must be carried out.
    pub fn poll_output(&mut self) -> Option<Action> {
        self.outputs.pop_front()
    }

    /// The earliest deadline: the state machine's timers and the
    /// announcement burst and refresh (only while they can fire).
    pub fn poll_timeout(&self) -> Option<Instant> {
        let garp = if self.announcing() {
            [self.garp.map(|g| g.next), self.garp_refresh_at]
        } else {
            [None, None]
        };
        let fsm = match (self.instance.poll_timeout(), self.deferred_until) {
            (Some(due), Some(retry)) => Some(due.max(retry)),
            (due, _) => due,
        };
        fsm.into_iter().chain(garp.into_iter().flatten()).min()
    }

    // ----- accessors ----------------------------------------------------------

    /// The router's spec.
    pub fn spec(&self) -> &RouterSpec {
        &self.spec
    }

    /// Its id.
    pub fn id(&self) -> RouterId {
        self.spec.id
    }

    /// The state machine.
    pub fn instance(&self) -> &Instance {
        &self.instance
    }

    /// The address adverts come from.
    pub fn primary(&self) -> IpAddr {
        self.instance.config().primary_addr
    }

    /// State as shown to operators: `fault` while the port is down.
    pub fn state_name(&self) -> &'static str {
        if self.fault {
            return "fault";
        }
        match self.instance.state() {
            State::Initialize => "init",
            State::Backup => "backup",
            State::Master => "master",
        }
    }

    /// Where the router is in a drain, if drained.
    pub fn drain_state(&self) -> Option<DrainState> {
        if !self.instance.drained() {
            return None;
        }
        Some(if self.instance.state() == State::Master {
            DrainState::Draining
        } else {
            DrainState::Drained
        })
    }

    /// Whether the own port is down.
    pub fn in_fault(&self) -> bool {
        self.fault
    }

    /// The checksum variant the peer uses (v3 over IPv4).
    pub fn peer_checksum(&self) -> Option<ChecksumKind> {
        self.peer_checksum
    }

    /// Advert counters.
    pub fn counters(&self) -> RouterCounters {
        self.counters
    }

    // ----- internals ----------------------------------------------------------

    /// Effective priority: the base plus the weights of the tracked ports
    /// that are down, within 1..=254; the owner's never moves (RFC 9568 §6.1).
    fn apply_priority(&mut self, now: Instant) {
        if self.spec.priority == OWNER_PRIORITY {
            return;
        }
        let wanted = (i32::from(self.base_priority) + self.track_adjust).clamp(1, 254);
        let wanted = u8::try_from(wanted).unwrap_or(1);
        if wanted != self.instance.effective_priority() {
            self.outputs
                .push_back(Action::Notice(Notice::PriorityChanged(wanted)));
            self.instance.handle_priority(now, wanted);
        }
    }

    /// A drained master still owns the addresses but no longer announces
    /// them: the switches are to follow the router taking over.
    fn announcing(&self) -> bool {
        self.owning && self.instance.state() == State::Master && !self.instance.drained()
    }

    /// Moves the state machine's outputs into ours, running the
    /// announcement timers on the way.
    ///
    /// A new master's ownership goes out before its first advert (the
    /// state machine orders them as RFC 9568 §6.4.2 lists them): that
    /// advert, from the virtual MAC, moves the switches' forwarding of the
    /// virtual MAC to this box, and a frame arriving before the fast path
    /// owns the addresses would be dropped.
    fn pump(&mut self, now: Instant) {
        let mut advert_at = None;
        while let Some(out) = self.instance.poll_output() {
            match out {
                Output::SendAdvert {
                    priority,
                    max_advert_int_cs,
                } => {
                    advert_at = Some(self.outputs.len());
                    self.outputs.push_back(Action::SendAdvert {
                        priority,
                        max_advert_int_cs,
                    });
                }
                Output::SendGarp => {
                    self.garp = Some(GarpBurst {
                        remaining: self.spec.garp.count.max(1),
                        next: now,
                    });
                    self.garp_refresh_at =
                        (!self.spec.garp.refresh.is_zero()).then(|| now + self.spec.garp.refresh);
                }
                Output::SetOwnership { master } => {
                    self.owning = master;
                    if !master {
                        self.garp = None;
                        self.garp_refresh_at = None;
                    }
                    match advert_at.filter(|_| master) {
                        Some(at) => self.outputs.insert(at, Action::SetOwnership { master }),
                        None => self.outputs.push_back(Action::SetOwnership { master }),
                    }
                }
                Output::StateChanged { from, to, reason } => {
                    self.outputs.push_back(Action::StateChanged {
                        from,
                        to,
                        reason,
                        priority: self.instance.effective_priority(),
                    })
                }
            }
        }
        self.run_announcements(now);
    }

    /// Announces the addresses when the burst or the refresh is due, only
    /// while master and owning them.
    fn run_announcements(&mut self, now: Instant) {
        if !self.announcing() {
            self.garp = None;
            return;
        }
        if self.garp_refresh_at.is_some_and(|t| t <= now) {
            self.garp = Some(GarpBurst {
                remaining: 1,
                next: now,
            });
            self.garp_refresh_at = Some(now + self.spec.garp.refresh);
        }
        let Some(burst) = self.garp.as_mut() else {
            return;
        };
        if burst.next > now {
            return;
        }
        self.outputs.push_back(Action::Announce);
        burst.remaining = burst.remaining.saturating_sub(1);
        burst.next = now + self.spec.garp.interval;
        if burst.remaining == 0 {
            self.garp = None;
        }
    }
}

impl SyncMember for Router {
    fn state(&self) -> State {
        self.instance.state()
    }
    fn sync_held(&self) -> bool {
        self.instance.sync_held()
    }
    fn master_was_forced(&self) -> bool {
        self.instance.master_was_forced()
    }
    fn handle_force(&mut self, now: Instant, to: State) {
        Router::handle_force(self, now, to);
    }
}

/// Every router of the appliance, their sync groups and the debounced link
/// state of their ports: the whole protocol the control thread runs.
#[derive(Debug)]
pub struct Routers {
    routers: Vec<Router>,
    groups: Vec<SyncGroup>,
    links: LinkTracker,
    /// Where `poll_output` resumes, so one busy router cannot starve the rest.
    cursor: usize,
}

impl Routers {
    /// The routers (index = [`RouterId`]), their groups, and the current
    /// state of every port they run on and everything they track.
    pub fn new(
        routers: Vec<Router>,
        groups: Vec<SyncGroup>,
        is_up: impl Fn(&TrackTarget) -> bool,
    ) -> Self {
        let mut links = LinkTracker::default();
        for r in &routers {
            let spec = r.spec();
            let own = TrackTarget::Port(spec.port.clone());
            for target in std::iter::once(&own).chain(spec.track.iter().map(|t| &t.target)) {
                links.track(target, is_up(target));
            }
        }
        Self {
            routers,
            groups,
            links,
            cursor: 0,
        }
    }

    /// The routers, by id.
    pub fn iter(&self) -> impl Iterator<Item = &Router> {
        self.routers.iter()
    }

    /// The router with this id.
    pub fn get(&self, id: RouterId) -> Option<&Router> {
        self.routers.get(id.index())
    }

    /// The router named `name`.
    pub fn by_name(&self, name: &str) -> Option<&Router> {
        self.routers.iter().find(|r| r.spec().name == name)
    }

    /// Number of routers.
    pub fn len(&self) -> usize {
        self.routers.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.routers.is_empty()
    }

    /// Whether `target` counts as up.
    pub fn is_up(&self, target: &TrackTarget) -> bool {
        self.links.is_up(target)
    }

    /// Everything watched: the routers' ports and tracked targets.
    pub fn tracked(&self) -> impl Iterator<Item = &TrackTarget> {
        self.links.targets()
    }

    /// Starts every router (tracking weights first, so each starts at its
    /// effective priority). Every router starts before any output is
    /// drained, so an owner's Initialize → Master finds its partners in Backup.
    pub fn handle_startup(&mut self, now: Instant) {
        for i in 0..self.routers.len() {
            let (port_up, adjust) = self.link_view(i);
            if let Some(r) = self.routers.get_mut(i) {
                r.track_adjust = adjust;
                let now = r.clock(now);
                r.apply_priority(now);
                r.handle_startup(now, port_up);
            }
        }
    }

    /// The kernel reported `target` as `up` (debounced before it counts).
    pub fn handle_link(&mut self, now: Instant, target: &TrackTarget, up: bool) {
        self.links.handle_link(now, target, up);
    }

    /// An advert for one of the routers.
    ///
    /// # Errors
    /// Why the router refused it ([`Router::handle_advert`]), or
    /// `VridError` for an id that names no router.
    pub fn handle_advert(&mut self, now: Instant, adv: &RxAdvert) -> Result<(), DropReason> {
        self.routers
            .get_mut(adv.router.index())
            .ok_or(DropReason::VridError)?
            .handle_advert(now, adv)
    }

    /// Sets the base priority of the router named `name`; false if none is.
    pub fn handle_priority(&mut self, now: Instant, name: &str, priority: u8) -> bool {
        match self.routers.iter_mut().find(|r| r.spec().name == name) {
            Some(r) => {
                r.handle_priority(now, priority);
                true
            }
            None => false,
        }
    }

    /// The routers a drain or resume of `name` (every router with `None`)
    /// applies to: the named one and every member of its sync groups, since
    /// a group shares one state (a gateway handed over on one side only
    /// would send traffic into one box and out of the other). `None` if no
    /// router is named `name`.
    pub fn drain_set(&self, name: Option<&str>) -> Option<Vec<RouterId>> {
        let Some(name) = name else {
            return Some(self.routers.iter().map(Router::id).collect());
        };
        let i = self.routers.iter().position(|r| r.spec().name == name)?;
        let mut set: Vec<usize> = vec![i];
        for g in self.groups.iter().filter(|g| g.members.contains(&i)) {
            set.extend(g.members.iter().copied());
        }
        set.sort_unstable();
        set.dedup();
        Some(
            set.into_iter()
                .filter_map(|m| self.routers.get(m).map(Router::id))
                .collect(),
        )
    }

    /// Drains the routers `ids` (see [`Routers::drain_set`]).
    pub fn handle_drain(&mut self, now: Instant, ids: &[RouterId]) {
        for id in ids {
            if let Some(r) = self.routers.get_mut(id.index()) {
                r.handle_drain(now);
            }
        }
    }

    /// Resumes the routers `ids`.
    pub fn handle_resume(&mut self, now: Instant, ids: &[RouterId]) {
        for id in ids {
            if let Some(r) = self.routers.get_mut(id.index()) {
                r.handle_resume(now);
            }
        }
    }

    /// Fires every due timer (link debounce, state machines, announcements);
    /// returns how many state-machine timers were served late. For
    /// `heard_until` see [`Router::handle_timeout`].
    pub fn handle_timeout(&mut self, now: Instant, heard_until: Instant) -> u64 {
        if self.links.poll_timeout().is_some_and(|t| t <= now) && self.links.handle_timeout(now) {
            self.apply_links(now);
        }
        let mut late = 0;
        for r in &mut self.routers {
            if r.poll_timeout().is_some_and(|t| t <= now) && r.handle_timeout(now, heard_until) {
                late += 1;
            }
        }
        late
    }

    /// The shell was not running until `now`: see [`Router::handle_stall`].
    pub fn handle_stall(&mut self, now: Instant) {
        for r in &mut self.routers {
            r.handle_stall(now);
        }
    }

    /// Shutdown of router `id` alone (it is being removed by a reload):
    /// a master sends priority 0, as at shutdown.
    pub fn handle_shutdown_of(&mut self, now: Instant, id: RouterId) {
        if let Some(r) = self.routers.get_mut(id.index()) {
            r.handle_shutdown(now);
        }
    }

    /// After a reload built this set from carried-over and new routers:
    /// the routers in `started` start (as at startup), the others take the
    /// current link state and tracking weights of their (possibly new)
    /// settings, which changes nothing for an unchanged router.
    pub fn handle_reload(&mut self, now: Instant, started: &[RouterId]) {
        for i in 0..self.routers.len() {
            let (port_up, adjust) = self.link_view(i);
            let Some(r) = self.routers.get_mut(i) else {
                continue;
            };
            if started.contains(&r.id()) {
                r.track_adjust = adjust;
                let now = r.clock(now);
                r.apply_priority(now);
                r.handle_startup(now, port_up);
            } else if r.handle_links(now, port_up, adjust) {
                propagate_fault(&mut self.routers, &self.groups, i, now);
            }
        }
    }

    /// The routers, by id, taken out of the set (a reload builds a new one).
    pub fn into_routers(self) -> Vec<Router> {
        self.routers
    }

    /// Shutdown of every router.
    pub fn handle_shutdown(&mut self, now: Instant) {
        for r in &mut self.routers {
            r.handle_shutdown(now);
        }
    }

    /// The primary address of router `id`'s port is now `addr`.
    pub fn handle_primary(&mut self, id: RouterId, addr: IpAddr) {
        if let Some(r) = self.routers.get_mut(id.index()) {
            r.handle_primary(addr);
        }
    }

    /// The shell sent an advert for `id`.
    pub fn note_advert_sent(&mut self, id: RouterId) {
        if let Some(r) = self.routers.get_mut(id.index()) {
            r.note_advert_sent();
        }
    }

    /// The next action of any router, with sync-group propagation applied
    /// as each state change goes out.
    pub fn poll_output(&mut self, now: Instant) -> Option<(RouterId, Action)> {
        let n = self.routers.len();
        for step in 0..n {
            let i = (self.cursor + step) % n;
            if let Some(out) = self.take_output(i, now) {
                self.cursor = i;
                return Some(out);
            }
        }
        None
    }

    /// Every action due now, in `pass` (cleared first), in the order the
    /// shell carries them out: the ownership routers gain comes first, then
    /// everything else in order. A sync group taking over thus owns all its
    /// addresses before any member's advert or gratuitous ARP leaves, and
    /// the first frame forwarded after a takeover never finds its egress
    /// router still backup (the worker would ask for the next hop from the
    /// port's own address, and the answer would go to the kernel: one
    /// retry, 100 ms, lost).
    pub fn poll_pass(&mut self, now: Instant, pass: &mut Vec<(RouterId, Action)>) {
        pass.clear();
        pass.extend(std::iter::from_fn(|| self.poll_output(now)));
        let gains = |a: Option<&(RouterId, Action)>| {
            a.is_some_and(|(_, a)| matches!(a, Action::SetOwnership { master: true }))
        };
        let mut first_other = 0;
        for j in 0..pass.len() {
            if gains(pass.get(j)) {
                if let Some(span) = pass.get_mut(first_other..=j) {
                    span.rotate_right(1);
                }
                first_other += 1;
            }
        }
    }

    /// The next action of router `id` alone, for a pass that handled
    /// adverts only: an advert acts on its own router, and whatever else
    /// it moves (a state change propagated to a sync group) waits for the
    /// next full [`Routers::poll_output`], which the caller runs after a
    /// state change.
    pub fn poll_output_of(&mut self, now: Instant, id: RouterId) -> Option<Action> {
        self.take_output(id.index(), now).map(|(_, action)| action)
    }

    /// Router `i`'s next action, with sync-group propagation applied.
    fn take_output(&mut self, i: usize, now: Instant) -> Option<(RouterId, Action)> {
        let action = self.routers.get_mut(i).and_then(Router::poll_output)?;
        if let Action::StateChanged {
            from, to, reason, ..
        } = action
        {
            if !self.groups.is_empty() {
                let out = Output::StateChanged { from, to, reason };
                propagate(&mut self.routers, &self.groups, i, &out, now);
            }
        }
        let id = self.routers.get(i).map(Router::id)?;
        Some((id, action))
    }

    /// The earliest deadline of any router or pending link change.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.routers
            .iter()
            .filter_map(Router::poll_timeout)
            .chain(self.links.poll_timeout())
            .min()
    }

    /// Own port state and tracking adjustment of router `i`.
    fn link_view(&self, i: usize) -> (bool, i32) {
        let Some(spec) = self.routers.get(i).map(Router::spec) else {
            return (true, 0);
        };
        let adjust = spec
            .track
            .iter()
            .filter(|t| !self.links.is_up(&t.target))
            .map(|t| t.weight)
            .sum();
        let own = TrackTarget::Port(spec.port.clone());
        (self.links.is_up(&own), adjust)
    }

    /// Applies the debounced link state to every router; a router that went
    /// into fault takes its sync group's masters down with it.
    fn apply_links(&mut self, now: Instant) {
        for i in 0..self.routers.len() {
            let (port_up, adjust) = self.link_view(i);
            let faulted = self
                .routers
                .get_mut(i)
                .is_some_and(|r| r.handle_links(now, port_up, adjust));
            if faulted {
                propagate_fault(&mut self.routers, &self.groups, i, now);
            }
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::net::Ipv4Addr;

    use super::*;
    use crate::config::{GarpConfig, IfAddr, TrackConfig};

    fn spec(id: u16, name: &str, port: &str, priority: u8) -> RouterSpec {
        RouterSpec {
            id: RouterId(id),
            name: name.into(),
            port: port.into(),
            vrid: 1,
            version: Version::V3,
            vmac: RouterSpec::vmac_for(1, false),
            priority,
            interval_cs: 10,
            preempt: true,
            preempt_delay: Duration::ZERO,
            accept: true,
            checksum: ChecksumKind::Rfc9568,
            addresses: vec![IfAddr {
                addr: IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1)),
                prefix_len: 24,
            }],
            unicast_peers: Vec::new(),
            garp: GarpConfig {
                count: 3,
                interval: Duration::from_millis(50),
                refresh: Duration::ZERO,
            },
            track: Vec::new(),
        }
    }

    /// `n` routers r0, r1, … on lan0 at `priority`, VRIDs 1, 2, ….
    fn numbered(n: u16, priority: u8) -> Vec<Router> {
        (0..n)
            .map(|i| {
                let mut s = spec(i, &format!("r{i}"), "lan0", priority);
                s.vrid = u8::try_from(i + 1).unwrap();
                Router::new(s, primary(2))
            })
            .collect()
    }

    fn primary(host: u8) -> IpAddr {
        IpAddr::V4(Ipv4Addr::new(192, 0, 2, host))
    }

    fn drain(r: &mut Router) -> Vec<Action> {
        std::iter::from_fn(|| r.poll_output()).collect()
    }

    fn advert(src: IpAddr, priority: u8, at: Instant) -> RxAdvert {
        RxAdvert {
            router: RouterId(0),
            arrival: at,
            src,
            priority,
            max_advert_int_cs: 10,
            checksum: Some(ChecksumKind::Rfc9568),
            addresses: AddressList::Matches,
        }
    }

    /// Runs a lone router's timers until `until`, collecting its actions.
    fn run(r: &mut Router, until: Instant) -> Vec<(Instant, Action)> {
        let mut out = Vec::new();
        while let Some(t) = r.poll_timeout().filter(|t| *t <= until) {
            r.handle_timeout(t, t);
            out.extend(drain(r).into_iter().map(|a| (t, a)));
        }
        out
    }

    #[test]
    fn owner_announces_count_times_spaced_by_the_interval_after_its_advert() {
        let t0 = Instant::now();
        let mut r = Router::new(spec(0, "gw", "lan0", 255), primary(2));
        r.handle_startup(t0, true);
        let first = drain(&mut r);
        // Ownership (before the advert from the virtual MAC moves the
        // switches), advert, transition, then the first announcement.
        assert_eq!(first[0], Action::SetOwnership { master: true });
        assert!(matches!(first[1], Action::SendAdvert { priority: 255, .. }));
        assert!(matches!(
            first[2],
            Action::StateChanged {
                to: State::Master,
                ..
            }
        ));
        assert_eq!(first[3], Action::Announce);
        let later = run(&mut r, t0 + Duration::from_millis(200));
        let announces: Vec<Instant> = later
            .iter()
            .filter(|(_, a)| *a == Action::Announce)
            .map(|(t, _)| *t)
            .collect();
        assert_eq!(
            announces,
            vec![
                t0 + Duration::from_millis(50),
                t0 + Duration::from_millis(100)
            ]
        );
    }

    #[test]
    fn a_reconfigured_master_stays_master_and_announces_new_addresses() {
        let t0 = Instant::now();
        let mut r = Router::new(spec(0, "gw", "lan0", 200), primary(2));
        r.handle_startup(t0, true);
        let t1 = t0 + Duration::from_millis(500);
        run(&mut r, t1);
        assert_eq!(r.instance().state(), State::Master);
        let transitions = r.instance().transitions();
        // Same settings at a new id: nothing to do.
        let t2 = t1 + Duration::from_millis(1);
        r.handle_reconfigure(t2, spec(3, "gw", "lan0", 200));
        assert!(drain(&mut r).is_empty());
        assert_eq!(r.id(), RouterId(3));
        // A new priority and a second address: an advert at once, the
        // addresses announced, still master.
        let mut s = spec(3, "gw", "lan0", 150);
        s.addresses.push(IfAddr {
            addr: IpAddr::V4(Ipv4Addr::new(192, 0, 2, 9)),
            prefix_len: 24,
        });
        r.handle_reconfigure(t2, s);
        let acts = drain(&mut r);
        assert!(
            acts.contains(&Action::SendAdvert {
                priority: 150,
                max_advert_int_cs: 10
            }),
            "{acts:?}"
        );
        assert!(acts.contains(&Action::Announce), "{acts:?}");
        assert_eq!(
            (r.instance().state(), r.instance().transitions()),
            (State::Master, transitions)
        );
        assert_eq!(
            (r.instance().priority(), r.instance().effective_priority()),
            (150, 150)
        );
    }

    #[test]
    fn refresh_repeats_announcements_only_while_master() {
        let t0 = Instant::now();
        let mut s = spec(0, "gw", "lan0", 255);
        s.garp = GarpConfig {
            count: 1,
            interval: Duration::from_millis(50),
            refresh: Duration::from_secs(1),
        };
        let mut r = Router::new(s, primary(2));
        r.handle_startup(t0, true);
        drain(&mut r);
        let acts = run(&mut r, t0 + Duration::from_millis(2500));
        let n = acts.iter().filter(|(_, a)| *a == Action::Announce).count();
        assert_eq!(n, 2, "refreshes at 1 s and 2 s");
        r.handle_shutdown(t0 + Duration::from_millis(2600));
        drain(&mut r);
        assert!(run(&mut r, t0 + Duration::from_secs(10)).is_empty());
    }

    #[test]
    fn own_advert_and_strangers_in_unicast_mode_are_refused() {
        let t0 = Instant::now();
        let mut s = spec(0, "gw", "lan0", 100);
        s.unicast_peers = vec![primary(3)];
        let mut r = Router::new(s, primary(2));
        r.handle_startup(t0, true);
        assert_eq!(
            r.handle_advert(t0, &advert(primary(2), 200, t0)),
            Err(DropReason::OwnAdvert)
        );
        assert_eq!(
            r.handle_advert(t0, &advert(primary(9), 200, t0)),
            Err(DropReason::SourceError)
        );
        assert_eq!(r.handle_advert(t0, &advert(primary(3), 200, t0)), Ok(()));
        assert_eq!(r.counters().adverts_rx, 1);
    }

    #[test]
    fn address_list_mismatch_is_counted_and_noticed_once_v2_drop_refused() {
        let t0 = Instant::now();
        let mut r = Router::new(spec(0, "gw", "lan0", 100), primary(2));
        r.handle_startup(t0, true);
        drain(&mut r);
        let mut adv = advert(primary(3), 200, t0);
        adv.addresses = AddressList::Mismatch;
        for _ in 0..3 {
            assert_eq!(r.handle_advert(t0, &adv), Ok(()));
        }
        let notices = drain(&mut r)
            .into_iter()
            .filter(|a| matches!(a, Action::Notice(Notice::AddressListMismatch { .. })))
            .count();
        assert_eq!(notices, 1);
        assert_eq!(r.counters().address_list_errors, 3);
        adv.addresses = AddressList::Drop;
        assert_eq!(r.handle_advert(t0, &adv), Err(DropReason::AddressListError));
    }

    /// A LAN and a WAN router of one sync group, started at `t0`.
    fn lan_wan_group(priority: u8, t0: Instant) -> Routers {
        let lan = spec(0, "lan-gw", "lan0", priority);
        let mut wan = spec(1, "wan-gw", "wan0", priority);
        wan.vrid = 2;
        let routers = vec![Router::new(lan, primary(2)), Router::new(wan, primary(2))];
        let groups = vec![SyncGroup {
            name: "gw".into(),
            members: vec![0, 1],
        }];
        let mut set = Routers::new(routers, groups, |_| true);
        set.handle_startup(t0);
        while set.poll_output(t0).is_some() {}
        set
    }

    #[test]
    fn port_down_faults_the_router_and_its_sync_partner_steps_down() {
        let t0 = Instant::now();
        let mut set = lan_wan_group(255, t0);
        assert!(set.iter().all(|r| r.state_name() == "master"));
        let t1 = t0 + Duration::from_millis(5);
        let lan0 = TrackTarget::Port("lan0".into());
        set.handle_link(t1, &lan0, false);
        // Not before the debounce.
        set.handle_timeout(
            t1 + Duration::from_millis(50),
            t1 + Duration::from_millis(50),
        );
        assert_eq!(set.get(RouterId(0)).unwrap().state_name(), "master");
        let t2 = t1 + super::super::links::DEBOUNCE;
        set.handle_timeout(t2, t2);
        let acts: Vec<(RouterId, Action)> = std::iter::from_fn(|| set.poll_output(t2)).collect();
        assert_eq!(set.get(RouterId(0)).unwrap().state_name(), "fault");
        assert_eq!(set.get(RouterId(1)).unwrap().state_name(), "backup");
        assert!(acts.contains(&(RouterId(0), Action::Notice(Notice::PortDown))));
        assert!(acts.contains(&(RouterId(1), Action::SetOwnership { master: false })));
        // The port comes back: the faulted router starts over.
        let t3 = t2 + Duration::from_millis(10);
        set.handle_link(t3, &lan0, true);
        let t4 = t3 + super::super::links::DEBOUNCE;
        set.handle_timeout(t4, t4);
        while set.poll_output(t3).is_some() {}
        assert_ne!(set.get(RouterId(0)).unwrap().state_name(), "fault");
    }

    /// A sync group taking over: both members own their addresses before
    /// either sends a frame.
    #[test]
    fn a_sync_group_owns_every_address_before_its_first_frame_leaves() {
        let t0 = Instant::now();
        let mut set = lan_wan_group(100, t0);
        let due = set.get(RouterId(0)).unwrap().poll_timeout().unwrap();
        set.handle_timeout(due, due);
        let mut pass = Vec::new();
        set.poll_pass(due, &mut pass);
        assert!(set.iter().all(|r| r.state_name() == "master"));
        let is_gain = |a: &Action| matches!(a, Action::SetOwnership { master: true });
        let gains = pass.iter().take_while(|(_, a)| is_gain(a)).count();
        assert_eq!(gains, 2, "{pass:?}");
        assert!(pass.iter().skip(2).all(|(_, a)| !is_gain(a)));
        // Everything else keeps its order: each router's advert, then its
        // state change, then its announcement.
        let of = |id: u16| -> Vec<Action> {
            pass.iter()
                .skip(2)
                .filter(|(r, _)| *r == RouterId(id))
                .map(|(_, a)| *a)
                .collect()
        };
        for id in [0, 1] {
            let acts = of(id);
            let at = |f: fn(&Action) -> bool| acts.iter().position(f);
            let advert = at(|a| matches!(a, Action::SendAdvert { .. }));
            let changed = at(|a| matches!(a, Action::StateChanged { .. }));
            let announce = at(|a| matches!(a, Action::Announce));
            assert!(
                advert.is_some() && advert < changed && changed < announce,
                "{id}: {acts:?}"
            );
        }
    }

    #[test]
    fn a_tracked_port_down_lowers_the_effective_priority() {
        let t0 = Instant::now();
        let mut s = spec(0, "lan-gw", "lan0", 200);
        let default_route = TrackTarget::Route(IfAddr {
            addr: IpAddr::V4(Ipv4Addr::UNSPECIFIED),
            prefix_len: 0,
        });
        s.track = vec![
            TrackConfig {
                target: TrackTarget::Port("wan0".into()),
                weight: -150,
            },
            TrackConfig {
                target: default_route.clone(),
                weight: -20,
            },
        ];
        let wan0 = TrackTarget::Port("wan0".into());
        let mut set = Routers::new(vec![Router::new(s, primary(2))], Vec::new(), |t| *t != wan0);
        set.handle_startup(t0);
        while set.poll_output(t0).is_some() {}
        let r = set.get(RouterId(0)).unwrap();
        assert_eq!(r.instance().effective_priority(), 50);
        assert!(set.handle_priority(t0, "lan-gw", 220));
        assert_eq!(
            set.get(RouterId(0))
                .unwrap()
                .instance()
                .effective_priority(),
            70
        );
        assert!(!set.handle_priority(t0, "nope", 1));
    }

    /// A backup (priority 100) that heard a master of 200 at `t0`, and its
    /// Master_Down deadline.
    fn backup_of_200(t0: Instant) -> (Router, Instant) {
        let mut r = Router::new(spec(0, "gw", "lan0", 100), primary(2));
        r.handle_startup(t0, true);
        assert_eq!(r.handle_advert(t0, &advert(primary(3), 200, t0)), Ok(()));
        drain(&mut r);
        let due = r.poll_timeout().unwrap();
        (r, due)
    }

    /// A backup whose Master_Down_Timer falls due while the fast path has
    /// not read every frame up to the deadline waits for it; the master's
    /// advert found then keeps it backup (no false takeover).
    #[test]
    fn master_down_waits_for_the_fast_path_to_catch_up() {
        let t0 = Instant::now();
        let (mut r, due) = backup_of_200(t0);
        // The worker lags: it has read its rings only up to 5 ms before the deadline.
        let lag = due - Duration::from_millis(5);
        assert!(!r.handle_timeout(due, lag));
        assert_eq!(r.state_name(), "backup");
        assert_eq!(r.counters().takeovers_deferred, 1);
        let retry = r.poll_timeout().unwrap();
        assert!(retry > due && retry <= due + Duration::from_millis(1));
        // The worker catches up and hands over the master's advert, which
        // arrived 1 ms before the deadline.
        let late_advert = advert(primary(3), 200, due - Duration::from_millis(1));
        assert_eq!(r.handle_advert(retry, &late_advert), Ok(()));
        r.handle_timeout(retry, retry);
        assert_eq!(r.state_name(), "backup");
        assert!(r.poll_timeout().unwrap() > retry + Duration::from_millis(20));
    }

    #[test]
    fn master_down_waits_a_bounded_time_for_a_lagging_fast_path() {
        let t0 = Instant::now();
        let mut r = Router::new(spec(0, "gw", "lan0", 100), primary(2));
        r.handle_startup(t0, true);
        drain(&mut r);
        let due = r.poll_timeout().unwrap();
        let mut t = due;
        // The fast path never gets past t0 (a wedged worker): the takeover
        // comes FAST_PATH_WAIT late.
        let ms = Duration::from_millis;
        loop {
            assert!(t <= due + FAST_PATH_WAIT + ms(1), "waited too long");
            r.handle_timeout(t, t0);
            if r.state_name() == "master" {
                break;
            }
            t = r.poll_timeout().unwrap().max(t);
        }
        assert!(t >= due + FAST_PATH_WAIT - ms(1), "waited {:?}", t - due);
        assert_eq!(r.counters().takeovers_unconfirmed, 1);
        // Caught up: no wait at all.
        let mut r = Router::new(spec(0, "gw", "lan0", 100), primary(2));
        r.handle_startup(t0, true);
        drain(&mut r);
        let due = r.poll_timeout().unwrap();
        r.handle_timeout(due, due);
        assert_eq!(r.state_name(), "master");
        assert_eq!(r.counters().takeovers_deferred, 0);
        assert_eq!(r.counters().takeovers_unconfirmed, 0);
    }

    /// A host frozen as a whole (the hypervisor stopped both VMs): the
    /// backup's pass comes long after its Master_Down deadline; the master,
    /// frozen too, advertises as soon as it runs again and keeps it backup.
    #[test]
    fn a_backup_frozen_past_its_deadline_gives_the_master_one_interval() {
        let t0 = Instant::now();
        let (mut r, due) = backup_of_200(t0);
        let resumed = due + Duration::from_millis(80);
        r.handle_stall(resumed);
        assert!(!r.handle_timeout(resumed, resumed));
        assert_eq!(r.state_name(), "backup");
        assert_eq!(r.counters().takeovers_deferred, 1);
        assert_eq!(r.poll_timeout(), Some(resumed + Duration::from_millis(100)));
        let back = resumed + Duration::from_millis(2);
        assert_eq!(
            r.handle_advert(back, &advert(primary(3), 200, back)),
            Ok(())
        );
        assert_eq!(r.state_name(), "backup");
        assert!(r.poll_timeout().unwrap() > back + Duration::from_millis(300));
    }

    /// A dead master: the stall's grace delays the takeover by one interval,
    /// and a second stall in the same silence does not extend it; a stall
    /// long before the deadline changes nothing.
    #[test]
    fn a_stall_delays_a_takeover_by_one_interval_at_most() {
        let t0 = Instant::now();
        let (mut r, due) = backup_of_200(t0);
        r.handle_stall(t0 + Duration::from_millis(5));
        assert_eq!(r.poll_timeout(), Some(due));
        let resumed = due + Duration::from_millis(50);
        r.handle_stall(resumed);
        r.handle_timeout(resumed, resumed);
        assert_eq!(r.state_name(), "backup");
        r.handle_stall(resumed + Duration::from_millis(90));
        let retry = r.poll_timeout().unwrap();
        assert_eq!(retry, resumed + Duration::from_millis(100));
        r.handle_timeout(retry, retry);
        assert_eq!(r.state_name(), "master");
    }

    /// F15: 64 owners that become master at the same instant advertise
    /// once at once (the RFC's immediate advert), then on 32 different ticks.
    #[test]
    fn routers_that_become_master_together_advertise_on_spread_ticks() {
        let t0 = Instant::now();
        let mut set = Routers::new(numbered(64, 255), Vec::new(), |_| true);
        set.handle_startup(t0);
        let mut sends: Vec<Instant> = Vec::new();
        let mut now = t0;
        while now < t0 + Duration::from_millis(350) {
            while let Some((_, a)) = set.poll_output(now) {
                if matches!(a, Action::SendAdvert { .. }) {
                    sends.push(now);
                }
            }
            now = set.poll_timeout().unwrap();
            set.handle_timeout(now, now);
        }
        let later: std::collections::BTreeSet<Instant> =
            sends.iter().filter(|t| **t > t0).copied().collect();
        assert_eq!(sends.iter().filter(|t| **t == t0).count(), 64);
        // Interval 100 ms: over three intervals, 32 ticks each.
        assert!(later.len() >= 32 * 3, "{} distinct ticks", later.len());
        // Still one advert per router per interval.
        assert!(sends.len() <= 64 * 4 + 64);
    }

    /// An advert-only pass carries out the actions of the advert's router
    /// and leaves every other router's for the next full pass.
    #[test]
    fn poll_output_of_serves_one_router_and_leaves_the_rest() {
        let t0 = Instant::now();
        let mut set = Routers::new(numbered(3, 100), Vec::new(), |_| true);
        set.handle_startup(t0);
        while set.poll_output(t0).is_some() {}
        // Every router is master (nobody else advertised) after its
        // Master_Down_Interval; each now answers a priority-0 advert.
        let t1 = set.poll_timeout().unwrap() + Duration::from_millis(100);
        set.handle_timeout(t1, t1);
        while set.poll_output(t1).is_some() {}
        let t2 = t1 + Duration::from_millis(1);
        for i in 0..3u16 {
            let mut adv = advert(primary(9), 0, t2);
            adv.router = RouterId(i);
            set.handle_advert(t2, &adv).unwrap();
        }
        let first: Vec<Action> =
            std::iter::from_fn(|| set.poll_output_of(t2, RouterId(1))).collect();
        assert!(
            first.iter().all(|a| matches!(a, Action::SendAdvert { .. })) && !first.is_empty(),
            "{first:?}"
        );
        let rest: Vec<RouterId> = std::iter::from_fn(|| set.poll_output(t2))
            .map(|(id, _)| id)
            .collect();
        assert!(!rest.contains(&RouterId(1)), "{rest:?}");
        assert!(
            rest.contains(&RouterId(0)) && rest.contains(&RouterId(2)),
            "{rest:?}"
        );
    }

    /// F17: the port's address changes while master: the new one is the
    /// source from then on, said once, and our own adverts from it are inert.
    #[test]
    fn primary_address_change_is_followed() {
        let t0 = Instant::now();
        let mut r = Router::new(spec(0, "gw", "lan0", 255), primary(2));
        r.handle_startup(t0, true);
        drain(&mut r);
        r.handle_primary(primary(7));
        assert_eq!(r.primary(), primary(7));
        assert_eq!(
            drain(&mut r),
            vec![Action::Notice(Notice::PrimaryChanged {
                from: primary(2),
                to: primary(7)
            })]
        );
        r.handle_primary(primary(7));
        assert!(drain(&mut r).is_empty());
        assert_eq!(r.instance().master_addr(), Some(primary(7)));
        assert_eq!(
            r.handle_advert(t0, &advert(primary(7), 255, t0)),
            Err(DropReason::OwnAdvert)
        );
    }

    // ----- drain / resume ------------------------------------------------------

    /// A master of priority 200 (the peer at .3 is backup).
    fn master_200(t0: Instant) -> Router {
        let mut r = Router::new(spec(0, "gw", "lan0", 200), primary(2));
        r.handle_startup(t0, true);
        let due = r.poll_timeout().unwrap();
        r.handle_timeout(due, due);
        assert_eq!(r.state_name(), "master");
        drain(&mut r);
        r
    }

    fn advert_priorities(acts: &[(Instant, Action)]) -> Vec<u8> {
        acts.iter()
            .filter_map(|(_, a)| match a {
                Action::SendAdvert { priority, .. } => Some(*priority),
                _ => None,
            })
            .collect()
    }

    /// A master frozen long past a backup's patience looks at what came
    /// meanwhile before it decides: nothing (the backups were frozen with
    /// it) → it stays master and advertises on its cadence.
    #[test]
    fn a_master_resumed_from_a_freeze_that_nobody_noticed_stays_master() {
        let t0 = Instant::now();
        let mut a = master_200(t0);
        let due = a.instance().poll_timeout().unwrap();
        let resumed = due + Duration::from_millis(1234);
        // Its fast path has not yet read the frames of the freeze.
        assert!(!a.handle_timeout(resumed, due));
        assert_eq!(a.state_name(), "master");
        assert!(!drain(&mut a)
            .iter()
            .any(|x| matches!(x, Action::SendAdvert { .. })));
        assert!(a.poll_timeout().unwrap() <= resumed + Duration::from_millis(1));
        // It has: nobody advertised.
        let t = resumed + Duration::from_millis(1);
        a.handle_timeout(t, t);
        assert_eq!(a.state_name(), "master");
        let acts = drain(&mut a);
        assert!(acts.contains(&Action::SendAdvert {
            priority: 200,
            max_advert_int_cs: 10
        }));
        let next = a.instance().poll_timeout().unwrap();
        assert_eq!((next - due).as_millis() % 100, 0, "on its cadence");
        assert!(next > t + Duration::from_millis(50));
    }

    /// The same freeze while the backup took over: its advert, read from the
    /// ring after the resume, steps the master down (stalled).
    #[test]
    fn a_master_resumed_from_a_freeze_steps_down_on_its_successors_advert() {
        let t0 = Instant::now();
        let mut a = master_200(t0);
        let due = a.instance().poll_timeout().unwrap();
        let resumed = due + Duration::from_millis(1234);
        assert!(!a.handle_timeout(resumed, due));
        let t = resumed + Duration::from_millis(1);
        let queued = advert(primary(3), 100, resumed - Duration::from_millis(300));
        assert_eq!(a.handle_advert(t, &queued), Ok(()));
        a.handle_timeout(t, t);
        assert_eq!(a.state_name(), "backup");
        assert!(drain(&mut a).iter().any(|x| matches!(
            x,
            Action::StateChanged {
                to: State::Backup,
                reason: Reason::Stalled,
                ..
            }
        )));
    }

    #[test]
    fn drained_master_keeps_the_addresses_until_the_peer_advertises_as_master() {
        let t0 = Instant::now();
        let mut r = master_200(t0);
        let t1 = t0 + Duration::from_secs(1);
        r.handle_drain(t1);
        // Priority 0 at once, ownership kept.
        assert_eq!(
            drain(&mut r),
            vec![Action::SendAdvert {
                priority: 0,
                max_advert_int_cs: 10
            }]
        );
        assert_eq!(r.drain_state(), Some(DrainState::Draining));
        assert_eq!(r.state_name(), "master");
        // Until the peer answers: priority 0 every interval, no announcement,
        // no loss of ownership.
        let acts = run(&mut r, t1 + Duration::from_millis(250));
        assert_eq!(advert_priorities(&acts), vec![0, 0]);
        assert!(acts
            .iter()
            .all(|(_, a)| matches!(a, Action::SendAdvert { .. })));
        // A priority-0 advert (another router leaving) is no handover.
        let t2 = t1 + Duration::from_millis(260);
        r.handle_advert(t2, &advert(primary(3), 0, t2)).unwrap();
        assert_eq!(r.drain_state(), Some(DrainState::Draining));
        drain(&mut r);
        // The peer took over (after Skew_Time) and advertises as master.
        let t3 = t2 + Duration::from_millis(5);
        r.handle_advert(t3, &advert(primary(3), 100, t3)).unwrap();
        let acts = drain(&mut r);
        assert_eq!(acts[0], Action::SetOwnership { master: false });
        assert!(matches!(
            acts[1],
            Action::StateChanged {
                from: State::Master,
                to: State::Backup,
                reason: Reason::Drain,
                ..
            }
        ));
        assert_eq!(r.drain_state(), Some(DrainState::Drained));
        assert_eq!(r.instance().master_addr(), Some(primary(3)));
        // The peer dies: the drained router stays out, even so.
        let acts = run(&mut r, t3 + Duration::from_secs(10));
        assert!(acts.is_empty(), "{acts:?}");
        assert_eq!(r.state_name(), "backup");
        assert_eq!(r.instance().master_addr(), None);
    }

    #[test]
    fn drained_master_with_no_peer_keeps_forwarding_and_advertising_priority_zero() {
        let t0 = Instant::now();
        let mut r = master_200(t0);
        r.handle_drain(t0 + Duration::from_secs(1));
        let acts = run(&mut r, t0 + Duration::from_secs(11));
        let prios = advert_priorities(&acts);
        assert!(prios.len() >= 99, "{} adverts", prios.len());
        assert!(prios.iter().all(|p| *p == 0), "{prios:?}");
        assert!(!acts
            .iter()
            .any(|(_, a)| matches!(a, Action::SetOwnership { .. } | Action::StateChanged { .. })));
        assert_eq!(r.state_name(), "master");
        assert_eq!(r.drain_state(), Some(DrainState::Draining));
        // Resume: its priority again at once.
        let t1 = t0 + Duration::from_secs(12);
        r.handle_resume(t1);
        assert_eq!(
            drain(&mut r),
            vec![Action::SendAdvert {
                priority: 200,
                max_advert_int_cs: 10
            }]
        );
        assert_eq!(r.drain_state(), None);
        let acts = run(&mut r, t1 + Duration::from_millis(250));
        assert_eq!(advert_priorities(&acts), vec![200, 200]);
    }

    #[test]
    fn resumed_router_preempts_back_and_the_old_master_hands_over_on_its_advert() {
        let t0 = Instant::now();
        let mut a = master_200(t0);
        let t1 = t0 + Duration::from_secs(1);
        a.handle_drain(t1);
        a.handle_advert(t1, &advert(primary(3), 100, t1)).unwrap();
        drain(&mut a);
        assert_eq!(a.drain_state(), Some(DrainState::Drained));
        // B (100) keeps advertising; A does not preempt while drained.
        let mut t = t1;
        for _ in 0..30 {
            t += Duration::from_millis(100);
            a.handle_advert(t, &advert(primary(3), 100, t)).unwrap();
            a.handle_timeout(t, t);
        }
        assert_eq!(a.state_name(), "backup");
        drain(&mut a);
        // Resume: preempt applies as usual; A takes over after
        // Master_Down_Interval of B's lower-priority adverts.
        a.handle_resume(t);
        assert_eq!(a.drain_state(), None);
        let resumed = t;
        let mut took_over = None;
        for _ in 0..10 {
            t += Duration::from_millis(100);
            a.handle_timeout(t, t);
            if a.state_name() == "master" {
                took_over = Some(t);
                break;
            }
            a.handle_advert(t, &advert(primary(3), 100, t)).unwrap();
        }
        let took_over = took_over.expect("A preempts back");
        assert!(took_over - resumed <= Duration::from_millis(400));
        let acts = drain(&mut a);
        assert!(acts.contains(&Action::SendAdvert {
            priority: 200,
            max_advert_int_cs: 10
        }));
        assert!(acts.iter().any(|a| matches!(
            a,
            Action::StateChanged {
                to: State::Master,
                reason: Reason::Preempt,
                ..
            }
        )));
        // B, a plain master hearing A's 200, gives way (RFC 9568 §6.4.3):
        // modelled with B as a router of its own.
        let mut b = Router::new(spec(0, "gw", "lan0", 100), primary(3));
        b.handle_startup(t0, true);
        let due = b.poll_timeout().unwrap();
        b.handle_timeout(due, due);
        drain(&mut b);
        b.handle_advert(took_over, &advert(primary(2), 200, took_over))
            .unwrap();
        assert_eq!(b.state_name(), "backup");
    }

    #[test]
    fn drained_backup_stays_backup_and_never_takes_over() {
        let t0 = Instant::now();
        let mut r = Router::new(spec(0, "gw", "lan0", 200), primary(2));
        r.handle_startup(t0, true);
        // A master of 100 is heard: with preempt, 200 would take over.
        r.handle_advert(t0, &advert(primary(3), 100, t0)).unwrap();
        r.handle_drain(t0);
        drain(&mut r);
        assert_eq!(r.drain_state(), Some(DrainState::Drained));
        let mut t = t0;
        for _ in 0..20 {
            t += Duration::from_millis(100);
            r.handle_advert(t, &advert(primary(3), 100, t)).unwrap();
            r.handle_timeout(t, t);
        }
        assert_eq!(r.state_name(), "backup");
        // The master shuts down (priority 0), then is silent.
        r.handle_advert(t, &advert(primary(3), 0, t)).unwrap();
        let acts = run(&mut r, t + Duration::from_secs(5));
        assert!(acts.is_empty(), "{acts:?}");
        assert_eq!(r.state_name(), "backup");
        // Resumed, with no master at all: it takes over after Master_Down_Interval.
        let t1 = t + Duration::from_secs(5);
        r.handle_resume(t1);
        run(&mut r, t1 + Duration::from_millis(400));
        assert_eq!(r.state_name(), "master");
        assert_eq!(r.drain_state(), None);
    }

    #[test]
    fn drained_owner_hands_over_and_stays_backup_across_a_port_flap() {
        let t0 = Instant::now();
        let mut r = Router::new(spec(0, "gw", "lan0", 255), primary(2));
        r.handle_startup(t0, true);
        drain(&mut r);
        r.handle_drain(t0);
        assert_eq!(
            drain(&mut r),
            vec![Action::SendAdvert {
                priority: 0,
                max_advert_int_cs: 10
            }]
        );
        r.handle_advert(t0, &advert(primary(3), 100, t0)).unwrap();
        assert_eq!(r.drain_state(), Some(DrainState::Drained));
        // Port down and up: an owner starts as master, but not a drained one.
        let t1 = t0 + Duration::from_secs(1);
        r.handle_links(t1, false, 0);
        r.handle_links(t1, true, 0);
        assert_eq!(r.state_name(), "backup");
        assert!(!drain(&mut r).contains(&Action::SetOwnership { master: true }));
    }

    /// Draining one member drains its sync group; each member hands over
    /// when its own peer is heard, and the handover of one does not take the
    /// other's addresses away early (no flap, no loss on the other side).
    #[test]
    fn draining_a_sync_group_member_drains_the_group_member_by_member() {
        let t0 = Instant::now();
        let lan = spec(0, "lan-gw", "lan0", 200);
        let mut wan = spec(1, "wan-gw", "wan0", 200);
        wan.vrid = 2;
        let other = spec(2, "other", "lan0", 200);
        let routers = vec![
            Router::new(lan, primary(2)),
            Router::new(wan, primary(2)),
            Router::new(other, primary(2)),
        ];
        let groups = vec![SyncGroup {
            name: "gw".into(),
            members: vec![0, 1],
        }];
        let mut set = Routers::new(routers, groups, |_| true);
        set.handle_startup(t0);
        let mut now = t0;
        while set.iter().any(|r| r.state_name() != "master") {
            now = set.poll_timeout().unwrap();
            set.handle_timeout(now, now);
            while set.poll_output(now).is_some() {}
        }
        assert_eq!(
            set.drain_set(Some("wan-gw")),
            Some(vec![RouterId(0), RouterId(1)])
        );
        assert_eq!(set.drain_set(Some("other")), Some(vec![RouterId(2)]));
        assert_eq!(set.drain_set(Some("nope")), None);
        assert_eq!(set.drain_set(None).map(|v| v.len()), Some(3));
        let ids = set.drain_set(Some("lan-gw")).unwrap();
        set.handle_drain(now, &ids);
        let acts: Vec<(RouterId, Action)> = std::iter::from_fn(|| set.poll_output(now)).collect();
        assert!(acts.iter().all(|(_, a)| *a
            == Action::SendAdvert {
                priority: 0,
                max_advert_int_cs: 10
            }));
        assert_eq!(acts.len(), 2);
        // The peer box's LAN member takes over first.
        let mut lan_adv = advert(primary(3), 100, now);
        lan_adv.router = RouterId(0);
        set.handle_advert(now, &lan_adv).unwrap();
        let acts: Vec<(RouterId, Action)> = std::iter::from_fn(|| set.poll_output(now)).collect();
        assert!(acts.contains(&(RouterId(0), Action::SetOwnership { master: false })));
        assert!(
            !acts.iter().any(|(id, _)| *id != RouterId(0)),
            "the WAN member keeps its addresses: {acts:?}"
        );
        let name = |set: &Routers, i| set.get(RouterId(i)).unwrap().drain_state();
        assert_eq!(name(&set, 0), Some(DrainState::Drained));
        assert_eq!(name(&set, 1), Some(DrainState::Draining));
        assert_eq!(name(&set, 2), None);
        // Then its WAN member.
        let mut wan_adv = advert(primary(3), 100, now);
        wan_adv.router = RouterId(1);
        set.handle_advert(now, &wan_adv).unwrap();
        while set.poll_output(now).is_some() {}
        assert_eq!(name(&set, 1), Some(DrainState::Drained));
        assert_eq!(set.get(RouterId(2)).unwrap().state_name(), "master");
        // Resume of the group.
        let ids = set.drain_set(Some("wan-gw")).unwrap();
        set.handle_resume(now, &ids);
        assert!(set.iter().all(|r| r.drain_state().is_none()));
    }
}
