//! Sync groups: virtual routers that change state together, as the two sides
//! of a gateway must (keepalived `vrrp_sync_group` semantics), sans-IO.
//!
//! The shell drains each instance's outputs and passes every one to
//! [`propagate`], which forces the other members of the changed instance's
//! groups with [`Instance::handle_force`]. Forced changes carry
//! [`Reason::SyncGroup`] and are never propagated again, so one change
//! causes at most one round of forcing and no loop. Start every instance
//! before draining any output, so an owner's Initialize → Master finds its
//! partners already in Backup.
//!
//! What propagates:
//! - a member becoming Master (MDI expiry, preemption, owner startup) forces
//!   every other member in Backup to Master;
//! - a member going Master → Backup (higher priority heard) forces
//!   every other Master member to Backup — unless it had itself been forced
//!   into Master and now yields to the peer box's member, a transient that
//!   the peer box's own group resolves — and holds every member in Backup:
//!   a held member keeps listening and still takes over when it hears no
//!   master, but does not preempt a lower-priority master, which would flip
//!   the group straight back;
//! - Initialize → Backup at startup, any change to Initialize (shutdown),
//!   a drained master's handover (the whole group is drained together, see
//!   `Routers::drain_set`), and a stalled step-down (the whole process was frozen, so every member
//!   stalled and steps down by itself, then preempts back) do not propagate.
//!
//! - a member whose own port goes down ([`propagate_fault`]) forces every
//!   other Master member to Backup: a gateway that lost one side must not
//!   keep the other, or traffic would enter one box and leave by the dead
//!   port of the other (keepalived puts the whole group in FAULT).
//!
//! Limits: the hold is lifted when the member next becomes master or its
//! effective priority changes (tracking, an admin command). If
//! two boxes disagree (box A best on one side, box B on the other) the group
//! follows whichever member changed last; like keepalived, the fix is to
//! give a group's members the same tracking.

use std::time::Instant;

use super::fsm::{Output, Reason, State};
use super::instance::Instance;

/// What a sync group needs of a member: [`Instance`], or the
/// [`Router`](super::Router) around one.
pub trait SyncMember {
    /// Current state.
    fn state(&self) -> State;
    /// Whether a sync group holds it in Backup.
    fn sync_held(&self) -> bool;
    /// Whether its latest Master period was forced by a sync group.
    fn master_was_forced(&self) -> bool;
    /// Forces the state the group chose.
    fn handle_force(&mut self, now: Instant, to: State);
}

impl SyncMember for Instance {
    fn state(&self) -> State {
        Instance::state(self)
    }
    fn sync_held(&self) -> bool {
        Instance::sync_held(self)
    }
    fn master_was_forced(&self) -> bool {
        Instance::master_was_forced(self)
    }
    fn handle_force(&mut self, now: Instant, to: State) {
        Instance::handle_force(self, now, to);
    }
}

/// A named set of instances, given by their indices in the shell's instance slice.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyncGroup {
    /// Group name, as in the configuration file.
    pub name: String,
    /// Indices of the member instances.
    pub members: Vec<usize>,
}

/// Applies one output drained from `instances[changed]` to the groups that
/// contain it; returns how many other members were forced.
///
/// Outputs other than a propagating [`Output::StateChanged`] are ignored, as
/// are member indices outside `instances`. The forced members queue their own
/// outputs, which the shell drains (and passes here) as usual.
pub fn propagate<M: SyncMember>(
    instances: &mut [M],
    groups: &[SyncGroup],
    changed: usize,
    output: &Output,
    now: Instant,
) -> usize {
    let Output::StateChanged { from, to, reason } = *output else {
        return 0;
    };
    if reason == Reason::SyncGroup {
        return 0;
    }
    let target = match (from, to) {
        // A stalled member was frozen with its whole process: its partners
        // stalled with it and step down by themselves. Forcing (and so
        // holding) them would keep the box from preempting back on resume.
        (State::Master, State::Backup) if reason == Reason::Stalled => return 0,
        // A drained member hands over when its own peer has taken over; the
        // group's other members are drained with it and do the same, each
        // when its peer is heard, so none loses its addresses early.
        (State::Master, State::Backup) if reason == Reason::Drain => return 0,
        (_, State::Master) => State::Master,
        // A member the group pushed into Master that then meets a better
        // master on its own segment is only catching up with the peer box,
        // whose group is about to follow; passing its step-down on would
        // undo the change that started it.
        (State::Master, State::Backup)
            if reason == Reason::HigherPriority
                && instances
                    .get(changed)
                    .is_some_and(SyncMember::master_was_forced) =>
        {
            return 0
        }
        (State::Master, State::Backup) => State::Backup,
        _ => return 0,
    };
    force_partners(instances, groups, changed, target, now)
}

/// A member's own port went down: every other Master member of its groups
/// steps down (held, like any forced step-down); returns how many did.
pub fn propagate_fault<M: SyncMember>(
    instances: &mut [M],
    groups: &[SyncGroup],
    faulted: usize,
    now: Instant,
) -> usize {
    let mut forced = 0;
    for group in groups.iter().filter(|g| g.members.contains(&faulted)) {
        for &member in group.members.iter().filter(|&&m| m != faulted) {
            if let Some(m) = instances.get_mut(member) {
                if m.state() == State::Master {
                    m.handle_force(now, State::Backup);
                    forced += 1;
                }
            }
        }
    }
    forced
}

fn force_partners<M: SyncMember>(
    instances: &mut [M],
    groups: &[SyncGroup],
    changed: usize,
    target: State,
    now: Instant,
) -> usize {
    let mut forced = 0;
    for group in groups.iter().filter(|g| g.members.contains(&changed)) {
        for &member in group.members.iter().filter(|&&m| m != changed) {
            let Some(instance) = instances.get_mut(member) else {
                continue;
            };
            let before = (instance.state(), instance.sync_held());
            instance.handle_force(now, target);
            if (instance.state(), instance.sync_held()) != before {
                forced += 1;
            }
        }
    }
    forced
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::net::{IpAddr, Ipv4Addr};
    use std::time::Duration;

    use super::*;
    use crate::vrrp::{Advert, InstanceConfig, Version};

    fn member(host: u8, t0: Instant) -> Instance {
        let mut i = Instance::new(InstanceConfig {
            name: format!("m{host}"),
            vrid: host,
            version: Version::V3,
            priority: 100,
            advert_interval_cs: 100,
            preempt: true,
            preempt_delay: Duration::ZERO,
            primary_addr: IpAddr::V4(Ipv4Addr::new(10, 0, 0, host)),
        });
        i.handle_startup(t0);
        while i.poll_output().is_some() {}
        i
    }

    fn group() -> Vec<SyncGroup> {
        vec![SyncGroup {
            name: "g".into(),
            members: vec![0, 1, 2, 99],
        }]
    }

    fn changed(from: State, to: State, reason: Reason) -> Output {
        Output::StateChanged { from, to, reason }
    }

    #[test]
    fn master_and_backup_propagate_startup_shutdown_and_forced_do_not() {
        let t0 = Instant::now();
        let mut v: Vec<Instance> = (1..=3).map(|h| member(h, t0)).collect();
        let g = group();
        for out in [
            changed(State::Initialize, State::Backup, Reason::Startup),
            changed(State::Master, State::Initialize, Reason::Shutdown),
            changed(State::Backup, State::Master, Reason::SyncGroup),
            Output::SendGarp,
        ] {
            assert_eq!(propagate(&mut v, &g, 0, &out, t0), 0);
        }
        assert!(v
            .iter()
            .all(|i| i.state() == State::Backup && !i.sync_held()));

        let up = changed(State::Backup, State::Master, Reason::MasterDown);
        assert_eq!(propagate(&mut v, &g, 0, &up, t0), 2);
        assert!(v[1..].iter().all(|i| i.state() == State::Master));
        // Not a member of any group: nothing happens.
        assert_eq!(propagate(&mut v, &g, 5, &up, t0), 0);

        let stalled = changed(State::Master, State::Backup, Reason::Stalled);
        assert_eq!(propagate(&mut v, &g, 0, &stalled, t0), 0);
        let down = changed(State::Master, State::Backup, Reason::HigherPriority);
        assert_eq!(propagate(&mut v, &g, 0, &down, t0), 2);
        assert!(v[1..]
            .iter()
            .all(|i| i.state() == State::Backup && i.sync_held()));
    }

    #[test]
    fn forced_master_yielding_on_its_segment_does_not_propagate() {
        let t0 = Instant::now();
        let mut v: Vec<Instance> = (1..=2).map(|h| member(h, t0)).collect();
        let g = group();
        let up = changed(State::Backup, State::Master, Reason::Preempt);
        assert_eq!(propagate(&mut v, &g, 0, &up, t0), 1);
        while v[1].poll_output().is_some() {}
        // Member 1 (forced master) hears a better master on its own segment.
        let better = Advert {
            src: IpAddr::V4(Ipv4Addr::new(10, 0, 0, 200)),
            priority: 200,
            max_advert_int_cs: 100,
        };
        v[1].handle_advert(t0, &better);
        let outs: Vec<Output> = std::iter::from_fn(|| v[1].poll_output()).collect();
        let yielded = *outs.last().unwrap();
        assert_eq!(
            yielded,
            changed(State::Master, State::Backup, Reason::HigherPriority)
        );
        v[0].handle_force(t0, State::Master);
        assert_eq!(propagate(&mut v, &g, 1, &yielded, t0), 0);
        assert_eq!(v[0].state(), State::Master);
    }
}
