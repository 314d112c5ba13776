//! One virtual router: the RFC 9568 §6.4 state machine, sans-IO.
//!
//! [`Instance`] never reads a clock or touches a socket. The shell feeds it
//! inputs (`handle_*`, each with an explicit `now`), drains the actions it
//! asks for with [`Instance::poll_output`], and calls
//! [`Instance::handle_timeout`] once [`Instance::poll_timeout`] is reached.
//!
//! Choices beyond the RFC text, each documented where it is made:
//! - `preempt_delay` (keepalived semantics): for that long after Startup a
//!   backup does not preempt, so it only becomes master when no master at all
//!   is heard for Master_Down_Interval.
//! - The extra advertisements a master sends in answer to a priority-0 or a
//!   lower-priority advert are limited to one per Advertisement_Interval, so
//!   a flood of such adverts is not amplified.
//! - A master whose Adver_Timer is found overdue by more than
//!   Master_Down_Interval (the process was frozen) steps down to Backup
//!   instead of fighting the backup that has taken over meanwhile.
//! - Adverts from the instance's own primary address (a looped-back copy)
//!   and adverts with a zero interval are discarded.
//! - Drain (planned handover, [`Instance::handle_drain`]): a drained master
//!   advertises priority 0 but keeps the addresses until it hears another
//!   router advertise as master, then becomes Backup; with no such router it
//!   stays Master, advertising priority 0 every interval, and loses nothing.
//!   A drained backup never becomes master (no preemption, no takeover when
//!   the master goes silent) until [`Instance::handle_resume`].

use std::collections::VecDeque;
use std::net::IpAddr;
use std::time::{Duration, Instant};

use super::fsm::{Advert, Output, Reason, State, Version};
use super::timer::{self, Timer, TimerTable};

/// Priority of the router that owns the virtual addresses (RFC 9568 §6.1).
pub const OWNER_PRIORITY: u8 = 255;
/// Largest VRRPv3 interval: the field is 12 bits of centiseconds (RFC 9568 §5.2.7).
pub const MAX_V3_INTERVAL_CS: u16 = 4095;
/// Largest VRRPv2 interval: an 8-bit field of seconds (RFC 3768 §5.3.7), in centiseconds.
pub const MAX_V2_INTERVAL_CS: u16 = 255 * 100;

/// Static parameters of one virtual router.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InstanceConfig {
    /// Instance name, as in the configuration file.
    pub name: String,
    /// Virtual router identifier, 1..=255.
    pub vrid: u8,
    /// Protocol version.
    pub version: Version,
    /// Configured priority, 1..=255 (255 = address owner).
    pub priority: u8,
    /// Advertisement_Interval in centiseconds; v2 callers pass whole seconds × 100.
    pub advert_interval_cs: u16,
    /// Preempt_Mode (RFC 9568 §6.1).
    pub preempt: bool,
    /// How long after Startup preemption stays off (keepalived `preempt_delay`).
    pub preempt_delay: Duration,
    /// This router's primary address on the port: the advert source, the
    /// tie-breaker, and the master address shown while master.
    pub primary_addr: IpAddr,
}

/// Advert counters of one instance, for `status` and alarms.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counters {
    /// Adverts handed to `handle_advert` outside Initialize.
    pub adverts_received: u64,
    /// Of those, adverts carrying priority 0.
    pub priority_zero_received: u64,
    /// Adverts ignored before the state machine saw them: own source,
    /// zero interval, or (v2) an interval different from ours (RFC 3768 §7.1).
    pub adverts_invalid: u64,
    /// Immediate adverts sent in answer to priority-0 or lower-priority adverts.
    pub responses_sent: u64,
    /// Immediate adverts withheld by the one-per-interval limit (a flood sign).
    pub responses_suppressed: u64,
}

/// One virtual router's state machine.
#[derive(Debug)]
pub struct Instance {
    cfg: InstanceConfig,
    state: State,
    effective_priority: u8,
    /// Master_Adver_Interval (RFC 9568 §6.1), in centiseconds.
    master_adver_interval_cs: u16,
    /// Primary address of the master heard last, while Backup.
    peer_master: Option<IpAddr>,
    /// The priority that master advertised when it became ours.
    peer_priority: Option<u8>,
    timers: TimerTable,
    outputs: VecDeque<Output>,
    transitions: u64,
    since: Option<Instant>,
    /// End of the post-Startup window in which preemption is off (`None`:
    /// not started yet, or a delay beyond the clock's range).
    preempt_after: Option<Instant>,
    /// When the last rate-limited immediate advert went out.
    last_response: Option<Instant>,
    /// Set while a sync group keeps this instance in Backup: it then does not preempt.
    sync_hold: bool,
    /// Whether the latest Master period was entered by sync-group forcing.
    forced_master: bool,
    /// The reason a Master_Down_Timer expiry will report.
    down_reason: Reason,
    /// How much earlier than one interval the first periodic advert of a
    /// Master period goes out (see [`Instance::set_advert_phase`]).
    advert_phase: Duration,
    /// Drained by an operator: out of the election until resumed.
    drained: bool,
    counters: Counters,
}

impl Instance {
    /// Creates an instance in Initialize with no timers armed.
    ///
    /// Values the configuration layer should already have rejected are
    /// brought into range rather than trusted: priority 0 becomes 1, and the
    /// interval is clamped to 1..=4095 cs (v3) or 100..=25500 cs (v2).
    pub fn new(mut cfg: InstanceConfig) -> Self {
        cfg.priority = cfg.priority.max(1);
        cfg.advert_interval_cs = match cfg.version {
            Version::V3 => cfg.advert_interval_cs.clamp(1, MAX_V3_INTERVAL_CS),
            Version::V2 => cfg.advert_interval_cs.clamp(100, MAX_V2_INTERVAL_CS),
        };
        Self {
            state: State::Initialize,
            effective_priority: cfg.priority,
            master_adver_interval_cs: cfg.advert_interval_cs,
            peer_master: None,
            peer_priority: None,
            timers: TimerTable::default(),
            outputs: VecDeque::new(),
            transitions: 0,
            since: None,
            preempt_after: None,
            last_response: None,
            sync_hold: false,
            forced_master: false,
            down_reason: Reason::MasterDown,
            advert_phase: Duration::ZERO,
            drained: false,
            counters: Counters::default(),
            cfg,
        }
    }

    // ----- inputs -------------------------------------------------------------

    /// Startup event (RFC 9568 §6.4.1). Ignored outside Initialize.
    pub fn handle_startup(&mut self, now: Instant) {
        if self.state != State::Initialize {
            return;
        }
        // A delay too long to represent means preemption never resumes.
        self.preempt_after = now.checked_add(self.cfg.preempt_delay);
        if self.effective_priority == OWNER_PRIORITY && !self.drained {
            // RFC 9568 §6.4.1: the owner sends an advert, announces the
            // addresses, arms Adver_Timer and becomes Master at once.
            self.become_master(now, Reason::OwnerStartup);
        } else {
            // RFC 9568 §6.4.1: Master_Adver_Interval = Advertisement_Interval,
            // Master_Down_Timer = Master_Down_Interval, then Backup.
            self.become_backup(now, Reason::Startup, self.cfg.advert_interval_cs);
        }
    }

    /// Shutdown event (RFC 9568 §6.4.2, §6.4.3): a master first sends a
    /// priority-0 advert, then gives up the addresses; both states stop their
    /// timers and return to Initialize.
    pub fn handle_shutdown(&mut self, now: Instant) {
        match self.state {
            State::Initialize => return,
            State::Master => {
                // RFC 9568 §6.4.3: advert with priority 0 before the addresses go,
                // so a backup takes over after Skew_Time.
                self.push_advert(0);
                self.outputs
                    .push_back(Output::SetOwnership { master: false });
            }
            // RFC 9568 §6.4.2: a backup only cancels Master_Down_Timer.
            State::Backup => {}
        }
        self.timers.stop_all();
        self.peer_master = None;
        self.sync_hold = false;
        self.transition(now, State::Initialize, Reason::Shutdown);
    }

    /// An advertisement for this virtual router arrived.
    pub fn handle_advert(&mut self, now: Instant, adv: &Advert) {
        if self.state == State::Initialize {
            // RFC 9568 §6.4.1: Initialize only waits for Startup.
            return;
        }
        self.counters.adverts_received += 1;
        if !self.advert_is_usable(adv) {
            self.counters.adverts_invalid += 1;
            return;
        }
        if adv.priority == 0 {
            self.counters.priority_zero_received += 1;
        }
        // A master resuming from a freeze may see queued adverts before its
        // overdue timer: it must step down first, not answer them as master.
        if self.state == State::Master {
            self.step_down_if_stalled(now);
        }
        match self.state {
            State::Initialize => {}
            State::Backup => self.backup_rx(now, adv),
            State::Master => self.master_rx(now, adv),
        }
    }

    /// Not in the RFC: a master that missed its own adverts for longer than
    /// a backup waits has almost surely been replaced (it was frozen, or
    /// starved of CPU); stepping down avoids a dual master fighting on
    /// resume. Returns whether it stepped down.
    fn step_down_if_stalled(&mut self, now: Instant) -> bool {
        if !self.is_stalled_master(now) {
            return false;
        }
        let interval = self.cfg.advert_interval_cs;
        self.become_backup(now, Reason::Stalled, interval);
        // Resuming is like starting again: preemption waits `preempt_delay`.
        self.preempt_after = now.checked_add(self.cfg.preempt_delay);
        true
    }

    /// Whether this is a master whose own advert is overdue by more than a
    /// backup waits (it was frozen or starved): at its next input it steps
    /// down, unless told first that nobody replaced it.
    pub fn is_stalled_master(&self, now: Instant) -> bool {
        self.state == State::Master
            && self.timers.get(Timer::Adver).is_some_and(|deadline| {
                now.saturating_duration_since(deadline) > self.local_master_down_interval()
            })
    }

    /// The shell has read every frame that arrived while this master was
    /// stalled, and none was an advert that stepped it down: no backup took
    /// over (a host frozen as a whole froze the backups too), so it stays
    /// master. Its overdue advert goes now, and the next on its cadence.
    pub fn handle_not_replaced(&mut self, now: Instant) {
        if !self.is_stalled_master(now) {
            return;
        }
        if let Some(deadline) = self.timers.get(Timer::Adver) {
            self.advertise_on_cadence(deadline, now);
        }
    }

    /// RFC 9568 §6.4.3: Adver_Timer (due at `deadline`) fired → advert,
    /// re-arm on the cadence. After a late wake-up, skip the ticks missed
    /// rather than send a burst to catch up, and leave at least half an
    /// interval before the next; staying on the cadence keeps the router's
    /// phase, which spreads many routers' adverts over the interval
    /// (restarting from `now` would scatter them, one control pass per
    /// advert).
    fn advertise_on_cadence(&mut self, deadline: Instant, now: Instant) {
        self.push_advert(self.advert_priority());
        let interval = timer::cs_to_duration(self.cfg.advert_interval_cs);
        let next = next_on_cadence(deadline, interval, now);
        self.timers.set(Timer::Adver, next);
    }

    /// Fires every timer due at `now`. A call with nothing due, or for a timer
    /// that a state change has since cancelled, does nothing.
    pub fn handle_timeout(&mut self, now: Instant) {
        match self.state {
            State::Initialize => {}
            State::Backup => {
                if !self.timers.is_due(Timer::MasterDown, now) {
                    return;
                }
                if self.drained {
                    // Drained: out of the election even with no master at
                    // all; the master heard last is gone.
                    self.timers.stop(Timer::MasterDown);
                    self.peer_master = None;
                    return;
                }
                // RFC 9568 §6.4.2: Master_Down_Timer fired → Master.
                self.become_master(now, self.down_reason);
            }
            State::Master => {
                let Some(deadline) = self.timers.get(Timer::Adver) else {
                    return;
                };
                if deadline > now {
                    return;
                }
                if self.step_down_if_stalled(now) {
                    return;
                }
                self.advertise_on_cadence(deadline, now);
            }
        }
    }

    /// Sets the effective priority at run time (admin command or tracking).
    ///
    /// A non-owner's value is clamped to 1..=254: tracking can neither make an
    /// instance the owner nor make it send priority 0. The owner's effective
    /// priority stays 255 because ownership of the addresses is a fact, not a
    /// preference. A master announces a new priority with an immediate advert
    /// so that backups re-evaluate preemption without waiting an interval.
    pub fn handle_priority(&mut self, now: Instant, priority: u8) {
        if self.cfg.priority == OWNER_PRIORITY {
            return;
        }
        let priority = priority.clamp(1, OWNER_PRIORITY - 1);
        if priority == self.effective_priority {
            return;
        }
        self.effective_priority = priority;
        // A sync group's hold keeps a member from preempting while the
        // priorities that made the group move stay as they were; a new
        // priority is a new situation, to be elected afresh (a restored
        // tracked route must bring the group back).
        self.sync_hold = false;
        if self.state == State::Master && !self.drained {
            self.push_advert(priority);
            let interval = timer::cs_to_duration(self.cfg.advert_interval_cs);
            self.timers.set(Timer::Adver, now + interval);
        }
    }

    /// Drain (planned handover; not in the RFC). A master advertises
    /// priority 0 at once and on every Adver_Timer from then on, so a backup
    /// takes over after Skew_Time, but keeps the addresses (and forwarding)
    /// until it hears another router advertise as master: then it becomes
    /// Backup with reason [`Reason::Drain`]. If none ever does, it stays
    /// Master and loses nothing. A backup stays Backup and stops taking part
    /// in the election: it neither preempts nor takes over when the master
    /// goes silent. Ignored when already drained.
    pub fn handle_drain(&mut self, now: Instant) {
        if self.drained {
            return;
        }
        self.drained = true;
        self.sync_hold = false;
        if self.state == State::Master {
            self.push_advert(0);
            let interval = timer::cs_to_duration(self.cfg.advert_interval_cs);
            self.timers.set(Timer::Adver, now + interval);
        }
    }

    /// Undoes [`Instance::handle_drain`]: the instance rejoins the election
    /// at its effective priority. A master still waiting for a peer
    /// advertises its priority again at once; a backup restarts
    /// Master_Down_Timer, so it takes over if no master is heard, and
    /// preempts a lower-priority master as usual (Preempt_Mode,
    /// `preempt_delay`). Ignored when not drained.
    pub fn handle_resume(&mut self, now: Instant) {
        if !self.drained {
            return;
        }
        self.drained = false;
        match self.state {
            State::Master => {
                self.push_advert(self.effective_priority);
                let interval = timer::cs_to_duration(self.cfg.advert_interval_cs);
                self.timers.set(Timer::Adver, now + interval);
            }
            State::Backup => {
                self.timers
                    .set(Timer::MasterDown, now + self.master_down_interval());
                self.down_reason = Reason::MasterDown;
            }
            State::Initialize => {}
        }
    }

    /// Forces the state chosen by a sync group (reason [`Reason::SyncGroup`]).
    ///
    /// - `Master` on a Backup: becomes master as on Master_Down_Timer expiry.
    /// - `Backup` on a Master: sends a priority-0 advert (so a peer takes over
    ///   after Skew_Time instead of Master_Down_Interval), gives up the
    ///   addresses and becomes Backup.
    /// - `Backup` on a Backup, or a forced step-down: the instance is held —
    ///   it keeps listening and takes over when no master is heard, but does
    ///   not preempt a lower-priority master until it next becomes master.
    ///
    /// Anything else (Initialize, or a forced `Initialize`) is ignored.
    ///
    /// A drained instance is not forced: it hands over by itself, and must
    /// not be pulled back into Master.
    pub fn handle_force(&mut self, now: Instant, to: State) {
        if self.drained {
            return;
        }
        match (self.state, to) {
            (State::Backup, State::Master) => self.become_master(now, Reason::SyncGroup),
            (State::Master, State::Backup) => {
                self.push_advert(0);
                let interval = self.cfg.advert_interval_cs;
                self.become_backup(now, Reason::SyncGroup, interval);
                self.sync_hold = true;
            }
            (State::Backup, State::Backup) => self.sync_hold = true,
            _ => {}
        }
    }

    /// The port's primary address changed: adverts come from `addr` from
    /// now on, and it is the tie-breaker and the master address shown.
    pub fn set_primary_addr(&mut self, addr: IpAddr) {
        self.cfg.primary_addr = addr;
    }

    /// New configured priority and preemption settings (a reload, which
    /// never makes an owner of a non-owner or the reverse). The effective
    /// priority follows through [`Instance::handle_priority`]; preemption
    /// counts from the next election (the window after Startup stays).
    pub fn reconfigure(&mut self, priority: u8, preempt: bool, delay: Duration) {
        if (priority == OWNER_PRIORITY) == (self.cfg.priority == OWNER_PRIORITY) {
            self.cfg.priority = priority.max(1);
        }
        self.cfg.preempt = preempt;
        self.cfg.preempt_delay = delay;
    }

    /// Spreads this router's periodic adverts: as master, its first periodic
    /// advert leaves `phase` (at most half an interval) earlier than one
    /// interval after the immediate one, and the cadence keeps that offset.
    /// Many routers that become master at once (a sync group, 255 VRIDs on
    /// one port) then do not all advertise on the same tick.
    pub fn set_advert_phase(&mut self, phase: Duration) {
        self.advert_phase = phase;
    }

    // ----- outputs ------------------------------------------------------------

    /// The next action for the shell, in the order they must be carried out.
    pub fn poll_output(&mut self) -> Option<Output> {
        self.outputs.pop_front()
    }

    /// The earliest armed timer deadline; call `handle_timeout` once it is reached.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.timers.next_deadline()
    }

    // ----- accessors ----------------------------------------------------------

    /// Instance name.
    pub fn name(&self) -> &str {
        &self.cfg.name
    }

    /// Virtual router identifier.
    pub fn vrid(&self) -> u8 {
        self.cfg.vrid
    }

    /// Protocol version.
    pub fn version(&self) -> Version {
        self.cfg.version
    }

    /// The configuration in force (after range normalisation).
    pub fn config(&self) -> &InstanceConfig {
        &self.cfg
    }

    /// Current state.
    pub fn state(&self) -> State {
        self.state
    }

    /// Configured priority.
    pub fn priority(&self) -> u8 {
        self.cfg.priority
    }

    /// Priority in force: the configured one as adjusted by `handle_priority`.
    pub fn effective_priority(&self) -> u8 {
        self.effective_priority
    }

    /// The master's primary address: ours while Master, the last accepted
    /// advert's source while Backup (`None` until one is heard or in Initialize).
    pub fn master_addr(&self) -> Option<IpAddr> {
        match self.state {
            State::Initialize => None,
            State::Backup => self.peer_master,
            State::Master => Some(self.cfg.primary_addr),
        }
    }

    /// Number of state changes since creation, every one counted: Initialize
    /// → Backup/Master at startup, Backup ↔ Master, and back to Initialize.
    pub fn transitions(&self) -> u64 {
        self.transitions
    }

    /// When the current state was entered (`None` before the first change).
    pub fn since(&self) -> Option<Instant> {
        self.since
    }

    /// Master_Adver_Interval in centiseconds (v3: adopted from the master).
    pub fn master_adver_interval_cs(&self) -> u16 {
        self.master_adver_interval_cs
    }

    /// Skew_Time for the current effective priority and Master_Adver_Interval.
    pub fn skew_time(&self) -> Duration {
        timer::skew_time(
            self.cfg.version,
            self.effective_priority,
            self.master_adver_interval_cs,
        )
    }

    /// Master_Down_Interval for the current effective priority and Master_Adver_Interval.
    pub fn master_down_interval(&self) -> Duration {
        timer::master_down_interval(
            self.cfg.version,
            self.effective_priority,
            self.master_adver_interval_cs,
        )
    }

    /// Whether an operator drained the instance (see [`Instance::handle_drain`]).
    pub fn drained(&self) -> bool {
        self.drained
    }

    /// Whether a sync group currently holds this instance in Backup.
    pub fn sync_held(&self) -> bool {
        self.sync_hold
    }

    /// Whether the latest Master period (current or past) was entered because
    /// a sync group forced it, rather than by this instance's own election.
    pub fn master_was_forced(&self) -> bool {
        self.forced_master
    }

    /// Advert counters.
    pub fn counters(&self) -> Counters {
        self.counters
    }

    // ----- internals ----------------------------------------------------------

    /// Checks the codec cannot make because they depend on local state.
    fn advert_is_usable(&self, adv: &Advert) -> bool {
        if adv.src == self.cfg.primary_addr {
            // Our own advert looped back; it is no evidence of another router.
            return false;
        }
        match self.cfg.version {
            // A zero interval would give a zero Master_Down_Interval and a
            // timer that fires at once; no valid master sends it.
            Version::V3 => adv.max_advert_int_cs != 0,
            // RFC 3768 §7.1: the interval MUST match ours, else discard.
            Version::V2 => adv.max_advert_int_cs == self.cfg.advert_interval_cs,
        }
    }

    /// The sender of `adv` is the master we follow, at its priority.
    fn follow(&mut self, adv: &Advert) {
        self.peer_master = Some(adv.src);
        self.peer_priority = Some(adv.priority);
    }

    /// RFC 9568 §6.4.2: an advert received in Backup.
    fn backup_rx(&mut self, now: Instant, adv: &Advert) {
        // A sync group's hold lasts while the priorities that moved the
        // group stay as they were: our master advertising another priority
        // (a tracked route, address or link of its went) is a new
        // situation, to be elected afresh, as our own new priority is.
        if adv.priority != 0
            && self.sync_hold
            && self.peer_master == Some(adv.src)
            && self.peer_priority.is_some_and(|p| p != adv.priority)
        {
            self.sync_hold = false;
        }
        if adv.priority == 0 {
            // A resignation from a router other than the master we follow
            // (a master yielding to ours after a partition) leaves ours in
            // place: it is not our master leaving.
            if self.peer_master.is_some_and(|m| m != adv.src) {
                return;
            }
            // RFC 9568 §6.4.2: the master is leaving; Master_Down_Timer = Skew_Time.
            self.timers.set(Timer::MasterDown, now + self.skew_time());
            self.peer_master = Some(adv.src);
            self.down_reason = Reason::PriorityZero;
        } else if !self.preempts(now) || adv.priority >= self.effective_priority {
            // RFC 9568 §6.4.2: adopt the interval (v3 only; RFC 3768 has no
            // Master_Adver_Interval), recompute Skew_Time and
            // Master_Down_Interval, reset Master_Down_Timer.
            if self.cfg.version == Version::V3 {
                self.master_adver_interval_cs = adv.max_advert_int_cs;
            }
            self.timers
                .set(Timer::MasterDown, now + self.master_down_interval());
            self.follow(adv);
            self.down_reason = Reason::MasterDown;
        } else {
            // RFC 9568 §6.4.2: preempting a lower-priority master — discard
            // and let Master_Down_Timer run out.
            self.down_reason = Reason::Preempt;
        }
    }

    /// RFC 9568 §6.4.3: an advert received in Master.
    fn master_rx(&mut self, now: Instant, adv: &Advert) {
        if self.drained && adv.priority > 0 {
            // Drain: another router advertises as master, so it owns the
            // addresses now; hand over to it.
            let interval = match self.cfg.version {
                Version::V3 => adv.max_advert_int_cs,
                Version::V2 => self.cfg.advert_interval_cs,
            };
            self.become_backup(now, Reason::Drain, interval);
            self.follow(adv);
            return;
        }
        if adv.priority == 0 {
            // RFC 9568 §6.4.3: answer at once and reset Adver_Timer, so the
            // backups that just shortened their timers hear a live master.
            // Whoever resigned believed itself master too (a healed
            // partition, F07): re-announce the addresses, unless our own
            // takeover announcement is that fresh.
            if self.respond(now) {
                let interval = timer::cs_to_duration(self.cfg.advert_interval_cs);
                self.timers.set(Timer::Adver, now + interval);
                if self.reigned_long(now) {
                    self.outputs.push_back(Output::SendGarp);
                }
            }
        } else if adv.priority > self.effective_priority
            || (adv.priority == self.effective_priority
                && addr_greater(adv.src, self.cfg.primary_addr))
        {
            // RFC 9568 §6.4.3: a better master exists → Backup, adopting its
            // interval (v3) for Master_Down_Interval.
            let interval = match self.cfg.version {
                Version::V3 => adv.max_advert_int_cs,
                Version::V2 => self.cfg.advert_interval_cs,
            };
            // Not in the RFC: a master of some standing resigns with
            // priority 0, as on shutdown. After a partition heals the winner
            // may not have heard us (its advert reached us first): this tells
            // it that another router was master, so that it re-announces the
            // addresses the switches and hosts may have followed to us
            // (docs/conformance.md F07). A master of less than
            // Master_Down_Interval is part of an election still settling
            // (a sync group's move, a preemption): it yields silently.
            if self.reigned_long(now) {
                self.push_advert(0);
            }
            self.become_backup(now, Reason::HigherPriority, interval);
            self.follow(adv);
        } else {
            // RFC 9568 §6.4.3: discard, and assert mastership with an
            // immediate advert; Adver_Timer keeps its cadence. Another
            // router believed itself master, so re-announce the addresses
            // too (switches and hosts may have followed it). Both share the
            // response rate limit.
            if self.respond(now) {
                self.outputs.push_back(Output::SendGarp);
            }
        }
    }

    /// Whether this master has been master for Master_Down_Interval.
    fn reigned_long(&self, now: Instant) -> bool {
        self.since
            .is_some_and(|s| now.saturating_duration_since(s) >= self.local_master_down_interval())
    }

    /// Whether a backup may preempt a lower-priority master now.
    fn preempts(&self, now: Instant) -> bool {
        if self.sync_hold || self.drained {
            return false;
        }
        // RFC 9568 §6.1 Preempt_Mode: the owner always preempts.
        let wanted = self.cfg.preempt || self.effective_priority == OWNER_PRIORITY;
        wanted && self.preempt_after.is_some_and(|after| now >= after)
    }

    /// Sends an immediate advert unless one went out less than an
    /// Advertisement_Interval ago; returns whether it was sent.
    fn respond(&mut self, now: Instant) -> bool {
        let interval = timer::cs_to_duration(self.cfg.advert_interval_cs);
        if self.last_response.is_some_and(|last| now < last + interval) {
            self.counters.responses_suppressed += 1;
            return false;
        }
        self.last_response = Some(now);
        self.counters.responses_sent += 1;
        self.push_advert(self.advert_priority());
        true
    }

    /// Master_Down_Interval from our own Advertisement_Interval, the bound
    /// our backups use to declare us dead.
    fn local_master_down_interval(&self) -> Duration {
        timer::master_down_interval(
            self.cfg.version,
            self.effective_priority,
            self.cfg.advert_interval_cs,
        )
    }

    /// The priority a master advertises: 0 while drained.
    fn advert_priority(&self) -> u8 {
        if self.drained {
            0
        } else {
            self.effective_priority
        }
    }

    fn push_advert(&mut self, priority: u8) {
        self.outputs.push_back(Output::SendAdvert {
            priority,
            max_advert_int_cs: self.cfg.advert_interval_cs,
        });
    }

    /// RFC 9568 §6.4.1 / §6.4.2: send an advert, announce the addresses, arm
    /// Adver_Timer, become Master.
    fn become_master(&mut self, now: Instant, reason: Reason) {
        self.timers.stop_all();
        self.push_advert(self.effective_priority);
        self.outputs.push_back(Output::SendGarp);
        self.outputs
            .push_back(Output::SetOwnership { master: true });
        let interval = timer::cs_to_duration(self.cfg.advert_interval_cs);
        // The first interval is shortened by the phase, so that routers that
        // become master together do not advertise on the same tick forever.
        let phase = self.advert_phase.min(interval / 2);
        self.timers.set(Timer::Adver, now + interval - phase);
        self.sync_hold = false;
        self.forced_master = reason == Reason::SyncGroup;
        self.peer_master = None;
        self.transition(now, State::Master, reason);
    }

    /// RFC 9568 §6.4.1 / §6.4.3: set Master_Adver_Interval, arm
    /// Master_Down_Timer, become Backup (giving up the addresses if master).
    fn become_backup(&mut self, now: Instant, reason: Reason, master_interval_cs: u16) {
        self.timers.stop_all();
        if self.state == State::Master {
            self.outputs
                .push_back(Output::SetOwnership { master: false });
        }
        self.master_adver_interval_cs = master_interval_cs;
        self.timers
            .set(Timer::MasterDown, now + self.master_down_interval());
        self.down_reason = Reason::MasterDown;
        self.transition(now, State::Backup, reason);
    }

    fn transition(&mut self, now: Instant, to: State, reason: Reason) {
        let from = self.state;
        self.state = to;
        self.transitions += 1;
        self.since = Some(now);
        self.outputs
            .push_back(Output::StateChanged { from, to, reason });
    }
}

/// RFC 9568 §6.4.3: primary addresses compare as unsigned integers in
/// network byte order. Addresses of different families never compare greater.
/// The first tick of the cadence `deadline + k × interval` (k ≥ 1) that is
/// at least half an interval after `now`.
fn next_on_cadence(deadline: Instant, interval: Duration, now: Instant) -> Instant {
    let earliest = now + interval / 2;
    let behind = earliest.saturating_duration_since(deadline).as_nanos();
    let ticks = behind / interval.as_nanos().max(1) + 1;
    u32::try_from(ticks)
        .ok()
        .and_then(|k| interval.checked_mul(k))
        .and_then(|d| deadline.checked_add(d))
        .unwrap_or(now + interval)
}

fn addr_greater(a: IpAddr, b: IpAddr) -> bool {
    match (a, b) {
        (IpAddr::V4(a), IpAddr::V4(b)) => u32::from(a) > u32::from(b),
        (IpAddr::V6(a), IpAddr::V6(b)) => u128::from(a) > u128::from(b),
        _ => false,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::net::Ipv4Addr;

    use super::*;

    const SEC: Duration = Duration::from_secs(1);

    #[test]
    fn a_late_advert_keeps_the_cadence_and_leaves_half_an_interval() {
        let d = Instant::now();
        let i = Duration::from_millis(10);
        let ms = Duration::from_millis;
        assert_eq!(next_on_cadence(d, i, d), d + i);
        assert_eq!(next_on_cadence(d, i, d + ms(4)), d + i);
        assert_eq!(next_on_cadence(d, i, d + ms(6)), d + 2 * i);
        // A stall of many intervals sends one advert, not a burst.
        assert_eq!(next_on_cadence(d, i, d + ms(1234)), d + 124 * i);
    }

    fn config(priority: u8, preempt: bool) -> InstanceConfig {
        InstanceConfig {
            name: "t".into(),
            vrid: 7,
            version: Version::V3,
            priority,
            advert_interval_cs: 100,
            preempt,
            preempt_delay: Duration::ZERO,
            primary_addr: IpAddr::V4(Ipv4Addr::new(10, 0, 0, 5)),
        }
    }

    fn adv(host: u8, priority: u8, cs: u16) -> Advert {
        Advert {
            src: IpAddr::V4(Ipv4Addr::new(10, 0, 0, host)),
            priority,
            max_advert_int_cs: cs,
        }
    }

    fn drain(i: &mut Instance) -> Vec<Output> {
        std::iter::from_fn(|| i.poll_output()).collect()
    }

    fn backup(priority: u8, preempt: bool, t0: Instant) -> Instance {
        let mut i = Instance::new(config(priority, preempt));
        i.handle_startup(t0);
        drain(&mut i);
        i
    }

    fn master(priority: u8, t0: Instant) -> Instance {
        let mut i = backup(priority, true, t0);
        let t = i.poll_timeout().unwrap();
        i.handle_timeout(t);
        drain(&mut i);
        assert_eq!(i.state(), State::Master);
        i
    }

    #[test]
    fn new_normalises_out_of_range_config() {
        let mut c = config(0, true);
        c.advert_interval_cs = 0;
        let i = Instance::new(c.clone());
        assert_eq!((i.priority(), i.master_adver_interval_cs()), (1, 1));
        c.advert_interval_cs = 5000;
        assert_eq!(Instance::new(c.clone()).master_adver_interval_cs(), 4095);
        c.version = Version::V2;
        c.advert_interval_cs = 50;
        assert_eq!(Instance::new(c).master_adver_interval_cs(), 100);
    }

    #[test]
    fn initialize_ignores_everything_but_startup() {
        let t0 = Instant::now();
        let mut i = Instance::new(config(100, true));
        i.handle_advert(t0, &adv(1, 200, 100));
        i.handle_timeout(t0 + 100 * SEC);
        i.handle_force(t0, State::Master);
        i.handle_shutdown(t0);
        assert_eq!(i.poll_output(), None);
        assert_eq!(i.poll_timeout(), None);
        assert_eq!(
            (i.state(), i.transitions(), i.since()),
            (State::Initialize, 0, None)
        );
        assert_eq!(i.counters(), Counters::default());
        i.handle_startup(t0);
        assert_eq!(i.poll_timeout(), Some(t0 + i.master_down_interval()));
        // A second Startup changes nothing.
        drain(&mut i);
        i.handle_startup(t0 + SEC);
        assert_eq!(i.poll_output(), None);
        assert_eq!(i.transitions(), 1);
    }

    #[test]
    fn backup_advert_rules() {
        let t0 = Instant::now();
        let mut i = backup(100, true, t0);
        let armed = i.poll_timeout();
        // Lower priority with preempt: discarded, timer untouched.
        i.handle_advert(t0 + SEC, &adv(1, 50, 100));
        assert_eq!(i.poll_timeout(), armed);
        assert_eq!(i.master_addr(), None);
        // Equal priority: accepted, interval adopted, timer reset.
        i.handle_advert(t0 + SEC, &adv(1, 100, 20));
        assert_eq!(i.master_adver_interval_cs(), 20);
        assert_eq!(i.poll_timeout(), Some(t0 + SEC + i.master_down_interval()));
        assert_eq!(i.master_addr(), Some(adv(1, 0, 0).src));
        // Zero interval and our own address are ignored.
        i.handle_advert(t0 + 2 * SEC, &adv(1, 200, 0));
        i.handle_advert(t0 + 2 * SEC, &adv(5, 200, 100));
        assert_eq!(i.master_adver_interval_cs(), 20);
        assert_eq!(i.counters().adverts_invalid, 2);
        // Priority 0: Master_Down_Timer = Skew_Time.
        i.handle_advert(t0 + 2 * SEC, &adv(1, 0, 20));
        assert_eq!(i.poll_timeout(), Some(t0 + 2 * SEC + i.skew_time()));
        assert_eq!(i.poll_output(), None);
        i.handle_timeout(t0 + 2 * SEC + i.skew_time());
        assert_eq!(
            drain(&mut i).last(),
            Some(&Output::StateChanged {
                from: State::Backup,
                to: State::Master,
                reason: Reason::PriorityZero
            })
        );

        // Preempt off: a lower priority still resets the timer.
        let mut j = backup(100, false, t0);
        j.handle_advert(t0 + SEC, &adv(1, 50, 100));
        assert_eq!(j.poll_timeout(), Some(t0 + SEC + j.master_down_interval()));
    }

    #[test]
    fn f07_a_long_master_resigns_and_the_winner_reannounces() {
        let t0 = Instant::now();
        // Two masters of long standing meet when a partition heals.
        let (mut loser, mut winner) = (master(100, t0), master(200, t0));
        let heal = t0 + 10 * SEC;
        for m in [&mut loser, &mut winner] {
            while let Some(due) = m.poll_timeout().filter(|d| *d <= heal) {
                m.handle_timeout(due);
            }
            drain(m);
            assert_eq!(m.state(), State::Master);
        }
        // The winner's advert reaches the loser first: it resigns.
        loser.handle_advert(heal, &adv(9, 200, 100));
        let outs = drain(&mut loser);
        assert_eq!(
            outs.first(),
            Some(&Output::SendAdvert {
                priority: 0,
                max_advert_int_cs: 100
            }),
            "{outs:?}"
        );
        assert_eq!(loser.state(), State::Backup);
        // The winner, hearing the resignation, asserts itself and
        // re-announces the addresses.
        winner.handle_advert(heal, &adv(1, 0, 100));
        assert_eq!(
            drain(&mut winner),
            vec![
                Output::SendAdvert {
                    priority: 200,
                    max_advert_int_cs: 100
                },
                Output::SendGarp
            ]
        );
        // A backup following the winner ignores the loser's resignation.
        let mut third = backup(50, true, t0);
        third.handle_advert(heal, &adv(9, 200, 100));
        let due = third.poll_timeout();
        third.handle_advert(heal, &adv(1, 0, 100));
        assert_eq!(third.poll_timeout(), due, "still waits on the winner");
    }

    #[test]
    fn master_yields_to_higher_priority_or_equal_with_higher_address() {
        let t0 = Instant::now();
        for (host, priority, yields) in [
            (9, 101, true),
            (9, 100, true),
            (1, 100, false),
            (9, 99, false),
        ] {
            let mut m = master(100, t0);
            // The advert arrives while the master is on schedule (not frozen).
            let t = m.poll_timeout().unwrap();
            m.handle_advert(t, &adv(host, priority, 50));
            let outs = drain(&mut m);
            if yields {
                // Master for less than Master_Down_Interval: it yields
                // silently (see `f07_a_long_master_resigns_and_the_winner_reannounces`).
                assert_eq!(
                    outs,
                    vec![
                        Output::SetOwnership { master: false },
                        Output::StateChanged {
                            from: State::Master,
                            to: State::Backup,
                            reason: Reason::HigherPriority
                        }
                    ]
                );
                assert_eq!(m.master_adver_interval_cs(), 50);
                assert_eq!(m.poll_timeout(), Some(t + m.master_down_interval()));
            } else {
                // RFC 9568 §6.4.3: answered at once, and the addresses re-announced.
                assert_eq!(
                    outs,
                    vec![
                        Output::SendAdvert {
                            priority: 100,
                            max_advert_int_cs: 100
                        },
                        Output::SendGarp
                    ]
                );
                assert_eq!(m.state(), State::Master);
            }
        }
    }

    #[test]
    fn backup_shutdown_is_silent() {
        let t0 = Instant::now();
        let mut i = backup(100, true, t0);
        i.handle_shutdown(t0 + SEC);
        assert_eq!(
            drain(&mut i),
            vec![Output::StateChanged {
                from: State::Backup,
                to: State::Initialize,
                reason: Reason::Shutdown
            }]
        );
        assert_eq!(i.poll_timeout(), None);
        assert_eq!(i.transitions(), 2);
    }

    #[test]
    fn forced_step_down_announces_priority_zero_and_holds() {
        let t0 = Instant::now();
        let mut m = master(200, t0);
        m.handle_force(t0 + SEC, State::Backup);
        assert_eq!(
            drain(&mut m),
            vec![
                Output::SendAdvert {
                    priority: 0,
                    max_advert_int_cs: 100
                },
                Output::SetOwnership { master: false },
                Output::StateChanged {
                    from: State::Master,
                    to: State::Backup,
                    reason: Reason::SyncGroup
                }
            ]
        );
        assert!(m.sync_held());
        // Held: a lower-priority master re-arms the timer instead of being preempted.
        m.handle_advert(t0 + 2 * SEC, &adv(1, 100, 100));
        assert_eq!(
            m.poll_timeout(),
            Some(t0 + 2 * SEC + m.master_down_interval())
        );
        // Forced back to Master: the hold ends.
        m.handle_force(t0 + 3 * SEC, State::Master);
        assert_eq!(m.state(), State::Master);
        assert!(!m.sync_held());
        assert!(m.master_was_forced());
        // Forcing a state it already has changes nothing.
        drain(&mut m);
        m.handle_force(t0 + 3 * SEC, State::Master);
        assert_eq!(m.poll_output(), None);
    }

    /// P10 with a sync group: both members stepped down to the peer box
    /// together and are held; the peer's priority then drops (a tracked
    /// route of its went): the hold ends and the member preempts it.
    #[test]
    fn a_held_member_preempts_once_its_master_advertises_a_new_priority() {
        let t0 = Instant::now();
        let mut m = master(150, t0);
        m.handle_advert(t0 + SEC, &adv(1, 200, 100));
        assert_eq!(m.state(), State::Backup);
        m.handle_force(t0 + SEC, State::Backup);
        assert!(m.sync_held());
        // The same master at the same priority: still held.
        m.handle_advert(t0 + 2 * SEC, &adv(1, 200, 100));
        assert!(m.sync_held());
        // Its priority drops below ours: a new election, which we win.
        let low = t0 + 3 * SEC;
        m.handle_advert(low, &adv(1, 100, 100));
        assert!(!m.sync_held());
        let due = m.poll_timeout().unwrap();
        assert_eq!(due, t0 + 2 * SEC + m.master_down_interval());
        m.handle_timeout(due);
        assert_eq!(m.state(), State::Master);
    }

    #[test]
    fn unrepresentable_preempt_delay_disables_preemption_without_panicking() {
        let t0 = Instant::now();
        let mut c = config(200, true);
        c.preempt_delay = Duration::MAX;
        let mut i = Instance::new(c);
        i.handle_startup(t0);
        let armed = t0 + 5 * SEC + i.master_down_interval();
        i.handle_advert(t0 + 5 * SEC, &adv(1, 100, 100));
        assert_eq!(i.poll_timeout(), Some(armed));
    }

    #[test]
    fn owner_keeps_priority_255_and_preempts_even_without_preempt_mode() {
        let t0 = Instant::now();
        let mut o = Instance::new(config(255, false));
        o.handle_priority(t0, 10);
        assert_eq!(o.effective_priority(), 255);
        o.handle_startup(t0);
        assert_eq!(o.state(), State::Master);
        // Demoted by another owner with a higher address, it later preempts a
        // lower-priority master despite preempt = false (RFC 9568 §6.1).
        o.handle_advert(t0 + SEC, &adv(9, 255, 100));
        assert_eq!(o.state(), State::Backup);
        let armed = o.poll_timeout();
        o.handle_advert(t0 + 2 * SEC, &adv(9, 100, 100));
        assert_eq!(o.poll_timeout(), armed);
    }
}
