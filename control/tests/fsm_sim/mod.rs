//! A simulated LAN for the VRRP state machine (quinn-proto's `Pair`, for N
//! routers): a fake clock that jumps to the earliest timer, and adverts
//! delivered at once to every other live router on the same segment.
#![allow(dead_code, unreachable_pub, clippy::unwrap_used)]

use std::net::{IpAddr, Ipv4Addr};
use std::time::{Duration, Instant};

use xvrrp_control::vrrp::{
    propagate, Advert, Instance, InstanceConfig, Output, Reason, State, SyncGroup, Version,
};

/// One output, when and by whom it was emitted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Event {
    pub at: Instant,
    pub node: usize,
    pub out: Output,
}

/// Per-router simulation facts the instance does not know.
#[derive(Debug, Clone)]
pub struct Meta {
    pub cfg: InstanceConfig,
    pub segment: u8,
    /// A dead (or frozen) router runs no timers and neither sends nor receives.
    pub alive: bool,
    /// State as last reported by StateChanged, to check the reports are consistent.
    pub reported: State,
}

/// Decides whether the advert from `from` to `to` is lost.
pub type LossFn = Box<dyn FnMut(usize, usize) -> bool>;

pub struct Lan {
    pub t0: Instant,
    pub now: Instant,
    pub insts: Vec<Instance>,
    pub meta: Vec<Meta>,
    pub groups: Vec<SyncGroup>,
    pub log: Vec<Event>,
    pub loss: Option<LossFn>,
}

/// A v3 IPv4 configuration: address 192.0.2.`host`.
pub fn cfg(host: u8, priority: u8, interval_cs: u16, preempt: bool) -> InstanceConfig {
    InstanceConfig {
        name: format!("r{host}"),
        vrid: 1,
        version: Version::V3,
        priority,
        advert_interval_cs: interval_cs,
        preempt,
        preempt_delay: Duration::ZERO,
        primary_addr: addr(host),
    }
}

pub fn addr(host: u8) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(192, 0, 2, host))
}

impl Lan {
    pub fn new(cfgs: Vec<InstanceConfig>) -> Self {
        Self::with_segments(cfgs.into_iter().map(|c| (c, 0)).collect())
    }

    pub fn with_segments(cfgs: Vec<(InstanceConfig, u8)>) -> Self {
        let t0 = Instant::now();
        let insts = cfgs.iter().map(|(c, _)| Instance::new(c.clone())).collect();
        let meta = cfgs
            .into_iter()
            .map(|(cfg, segment)| Meta {
                cfg,
                segment,
                alive: true,
                reported: State::Initialize,
            })
            .collect();
        Self {
            t0,
            now: t0,
            insts,
            meta,
            groups: Vec::new(),
            log: Vec::new(),
            loss: None,
        }
    }

    /// Time since the simulation began.
    pub fn elapsed(&self) -> Duration {
        self.now - self.t0
    }

    pub fn start_all(&mut self) {
        let now = self.now;
        for inst in &mut self.insts {
            inst.handle_startup(now);
        }
        self.drain();
    }

    pub fn start(&mut self, i: usize) {
        let now = self.now;
        self.insts[i].handle_startup(now);
        self.drain();
    }

    /// Replaces router `i` by a fresh instance (a restarted process) and starts it.
    pub fn restart(&mut self, i: usize, cfg: InstanceConfig) {
        self.insts[i] = Instance::new(cfg.clone());
        self.meta[i].cfg = cfg;
        self.meta[i].alive = true;
        self.meta[i].reported = State::Initialize;
        self.start(i);
    }

    /// Orderly stop: Shutdown event, then the router goes silent.
    pub fn shutdown(&mut self, i: usize) {
        let now = self.now;
        self.insts[i].handle_shutdown(now);
        self.drain();
        self.meta[i].alive = false;
    }

    /// SIGKILL or SIGSTOP: the router stops running, keeping its state.
    pub fn freeze(&mut self, i: usize) {
        self.meta[i].alive = false;
    }

    /// SIGCONT: the router runs again with whatever timers are now overdue.
    pub fn thaw(&mut self, i: usize) {
        self.meta[i].alive = true;
    }

    pub fn set_priority(&mut self, i: usize, priority: u8) {
        let now = self.now;
        self.insts[i].handle_priority(now, priority);
        self.drain();
    }

    /// Advances the clock to the earliest timer not after `limit` and fires
    /// every timer due then; returns false (with the clock at `limit`) if none.
    pub fn step(&mut self, limit: Instant) -> bool {
        let next = (0..self.insts.len())
            .filter(|&i| self.meta[i].alive)
            .filter_map(|i| self.insts[i].poll_timeout())
            .min();
        let Some(next) = next.filter(|&t| t <= limit) else {
            self.now = self.now.max(limit);
            return false;
        };
        // A router thawed after a long freeze has a deadline in the past.
        self.now = self.now.max(next);
        let now = self.now;
        for i in 0..self.insts.len() {
            if !self.meta[i].alive {
                continue;
            }
            if self.insts[i].poll_timeout().is_some_and(|t| t <= now) {
                self.insts[i].handle_timeout(now);
                let after = self.insts[i].poll_timeout();
                assert!(
                    after.is_none_or(|t| t > now),
                    "busy loop: node {i} timer {after:?} not after now"
                );
            }
        }
        self.drain();
        true
    }

    pub fn run_until(&mut self, limit: Instant) {
        let mut steps = 0u32;
        while self.step(limit) {
            steps += 1;
            assert!(steps < 5_000_000, "runaway simulation");
        }
    }

    pub fn run_for(&mut self, d: Duration) {
        let limit = self.now + d;
        self.run_until(limit);
    }

    /// Carries out every pending output, including those caused by deliveries.
    pub fn drain(&mut self) {
        loop {
            let mut any = false;
            for i in 0..self.insts.len() {
                while let Some(out) = self.insts[i].poll_output() {
                    any = true;
                    self.act(i, out);
                }
            }
            if !any {
                break;
            }
        }
        // Once every output is carried out, the reports match the states.
        for (i, meta) in self.meta.iter().enumerate() {
            assert_eq!(
                meta.reported,
                self.insts[i].state(),
                "node {i}: report vs state"
            );
        }
    }

    fn act(&mut self, i: usize, out: Output) {
        let now = self.now;
        self.log.push(Event {
            at: now,
            node: i,
            out,
        });
        match out {
            Output::SendAdvert {
                priority,
                max_advert_int_cs,
            } => {
                let adv = Advert {
                    src: self.meta[i].cfg.primary_addr,
                    priority,
                    max_advert_int_cs,
                };
                for j in 0..self.insts.len() {
                    if j == i || !self.meta[j].alive || self.meta[j].segment != self.meta[i].segment
                    {
                        continue;
                    }
                    if let Some(loss) = self.loss.as_mut() {
                        if loss(i, j) {
                            continue;
                        }
                    }
                    self.insts[j].handle_advert(now, &adv);
                }
            }
            Output::StateChanged { from, to, reason } => {
                assert_ne!(from, to, "node {i}: empty transition");
                assert_eq!(from, self.meta[i].reported, "node {i}: inconsistent from");
                match (from, to, reason) {
                    (State::Initialize, State::Backup, Reason::Startup)
                    | (State::Initialize, State::Master, Reason::OwnerStartup)
                    | (_, State::Initialize, Reason::Shutdown) => {}
                    (State::Backup, State::Master, r) => assert!(matches!(
                        r,
                        Reason::MasterDown
                            | Reason::PriorityZero
                            | Reason::Preempt
                            | Reason::SyncGroup
                    )),
                    (State::Master, State::Backup, r) => assert!(matches!(
                        r,
                        Reason::HigherPriority | Reason::Stalled | Reason::SyncGroup
                    )),
                    other => panic!("node {i}: invalid transition {other:?}"),
                }
                self.meta[i].reported = to;
                if !self.groups.is_empty() {
                    let groups = self.groups.clone();
                    propagate(&mut self.insts, &groups, i, &out, now);
                }
            }
            Output::SendGarp | Output::SetOwnership { .. } => {}
        }
    }

    /// Live routers in Master.
    pub fn masters(&self) -> Vec<usize> {
        (0..self.insts.len())
            .filter(|&i| self.meta[i].alive && self.insts[i].state() == State::Master)
            .collect()
    }

    pub fn events_of(&self, node: usize) -> impl Iterator<Item = &Event> + '_ {
        self.log.iter().filter(move |e| e.node == node)
    }

    /// (time, from, to, reason) of every state change of `node`.
    pub fn changes(&self, node: usize) -> Vec<(Instant, State, State, Reason)> {
        self.events_of(node)
            .filter_map(|e| match e.out {
                Output::StateChanged { from, to, reason } => Some((e.at, from, to, reason)),
                _ => None,
            })
            .collect()
    }

    /// Send times of `node`'s adverts with a non-zero priority.
    pub fn advert_times(&self, node: usize) -> Vec<Instant> {
        self.events_of(node)
            .filter(|e| matches!(e.out, Output::SendAdvert { priority, .. } if priority > 0))
            .map(|e| e.at)
            .collect()
    }

    /// Number of state changes of any router logged since `since`.
    pub fn changes_since(&self, since: Instant) -> usize {
        self.log
            .iter()
            .filter(|e| e.at >= since && matches!(e.out, Output::StateChanged { .. }))
            .count()
    }
}
