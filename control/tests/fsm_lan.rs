//! Scenario tests of the VRRP state machine on a simulated LAN.
#![allow(clippy::unwrap_used)]

mod fsm_sim;

use std::time::Duration;

use fsm_sim::{addr, cfg, Lan};
use xvrrp_control::vrrp::{
    master_down_interval, skew_time, Advert, Instance, Output, Reason, State, SyncGroup, Version,
};

const SEC: Duration = Duration::from_secs(1);

fn mdi(priority: u8, cs: u16) -> Duration {
    master_down_interval(Version::V3, priority, cs)
}

/// Routers 200 (.2) and 100 (.3), 1 s adverts, converged.
fn converged_pair(preempt: bool) -> Lan {
    let mut lan = Lan::new(vec![cfg(2, 200, 100, preempt), cfg(3, 100, 100, preempt)]);
    lan.start_all();
    lan.run_for(20 * SEC);
    lan
}

#[test]
fn higher_priority_is_elected_after_its_master_down_interval() {
    let lan = converged_pair(true);
    assert_eq!(lan.masters(), vec![0]);
    assert_eq!(lan.insts[1].state(), State::Backup);
    assert_eq!(lan.insts[1].master_addr(), Some(addr(2)));
    assert_eq!(lan.insts[0].master_addr(), Some(addr(2)));
    // P02: no advert before MDI; the 200 wins because its skew is shorter.
    let changes = lan.changes(0);
    assert_eq!(changes.len(), 2);
    assert_eq!(changes[0].3, Reason::Startup);
    assert_eq!(changes[1].0 - lan.t0, mdi(200, 100));
    assert_eq!(changes[1].3, Reason::MasterDown);
    assert_eq!(lan.advert_times(0)[0] - lan.t0, mdi(200, 100));
    assert!(lan.advert_times(1).is_empty());
    assert_eq!(lan.changes(1).len(), 1);
    assert_eq!(lan.insts[0].transitions(), 2);
    assert_eq!(lan.insts[1].transitions(), 1);
    // Adverts keep an exact 1 s cadence.
    let times = lan.advert_times(0);
    assert!(times.windows(2).all(|w| w[1] - w[0] == SEC));
}

#[test]
fn killed_master_is_replaced_exactly_one_mdi_after_its_last_advert() {
    let mut lan = converged_pair(true);
    lan.run_for(SEC / 2);
    lan.freeze(0);
    let last = *lan.advert_times(0).last().unwrap();
    lan.run_for(10 * SEC);
    assert_eq!(lan.masters(), vec![1]);
    let (at, from, to, reason) = *lan.changes(1).last().unwrap();
    assert_eq!(
        (from, to, reason),
        (State::Backup, State::Master, Reason::MasterDown)
    );
    assert_eq!(at - last, mdi(100, 100));
}

#[test]
fn restarted_higher_priority_preempts_only_with_preempt_on() {
    for preempt in [true, false] {
        let mut lan = converged_pair(preempt);
        lan.freeze(0);
        lan.run_for(10 * SEC);
        assert_eq!(lan.masters(), vec![1]);
        let restart = lan.now;
        lan.restart(0, cfg(2, 200, 100, preempt));
        lan.run_for(20 * SEC);
        if preempt {
            assert_eq!(lan.masters(), vec![0]);
            let (at, _, _, reason) = *lan.changes(0).last().unwrap();
            assert_eq!(reason, Reason::Preempt);
            // It discards the lower adverts, so its first MDI runs out.
            assert_eq!(at - restart, mdi(200, 100));
            let (_, _, _, reason) = *lan.changes(1).last().unwrap();
            assert_eq!(reason, Reason::HigherPriority);
        } else {
            assert_eq!(lan.masters(), vec![1]);
            assert_eq!(lan.insts[0].state(), State::Backup);
            assert_eq!(lan.insts[0].master_addr(), Some(addr(3)));
        }
    }
}

#[test]
fn preempt_delay_holds_off_preemption_after_startup() {
    let mut lan = converged_pair(true);
    lan.freeze(0);
    lan.run_for(10 * SEC);
    let restart = lan.now;
    let mut c = cfg(2, 200, 100, true);
    c.preempt_delay = 10 * SEC;
    lan.restart(0, c);
    lan.run_for(9 * SEC);
    assert_eq!(lan.masters(), vec![1], "no preemption inside the delay");
    lan.run_for(20 * SEC);
    assert_eq!(lan.masters(), vec![0]);
    let (at, _, _, reason) = *lan.changes(0).last().unwrap();
    assert_eq!(reason, Reason::Preempt);
    // The last advert accepted inside the window re-armed MDI; it then ran out.
    let since = at - restart;
    assert!(
        since > 10 * SEC && since <= 10 * SEC + mdi(200, 100) + SEC,
        "{since:?}"
    );
}

#[test]
fn shutdown_sends_priority_zero_first_and_backup_takes_over_after_skew() {
    let mut lan = converged_pair(true);
    lan.run_for(SEC / 4);
    let t = lan.now;
    lan.shutdown(0);
    let outs: Vec<Output> = lan
        .events_of(0)
        .filter(|e| e.at == t)
        .map(|e| e.out)
        .collect();
    assert_eq!(
        outs,
        vec![
            Output::SendAdvert {
                priority: 0,
                max_advert_int_cs: 100
            },
            Output::SetOwnership { master: false },
            Output::StateChanged {
                from: State::Master,
                to: State::Initialize,
                reason: Reason::Shutdown
            },
        ]
    );
    lan.run_for(5 * SEC);
    assert_eq!(lan.masters(), vec![1]);
    let (at, _, _, reason) = *lan.changes(1).last().unwrap();
    assert_eq!(reason, Reason::PriorityZero);
    assert_eq!(at - t, skew_time(Version::V3, 100, 100));
    assert_eq!(at - t, Duration::from_micros(609_375));
}

#[test]
fn equal_priorities_converge_to_the_higher_address() {
    let mut lan = Lan::new(vec![cfg(2, 100, 100, true), cfg(3, 100, 100, true)]);
    lan.start_all();
    lan.run_for(20 * SEC);
    assert_eq!(lan.masters(), vec![1]);
    // Both timers ran out together; the lower address yielded on the first advert.
    let (at, from, to, reason) = *lan.changes(0).last().unwrap();
    assert_eq!(
        (from, to, reason),
        (State::Master, State::Backup, Reason::HigherPriority)
    );
    assert_eq!(at - lan.t0, mdi(100, 100));
    assert_eq!(lan.changes(1).len(), 2);
}

#[test]
fn owner_becomes_master_at_startup_advert_before_garp() {
    let mut lan = converged_pair(true);
    let t = lan.now;
    // A third router, the address owner, starts on the LAN.
    lan.insts.push(Instance::new(cfg(9, 255, 100, false)));
    lan.meta.push(fsm_sim::Meta {
        cfg: cfg(9, 255, 100, false),
        segment: 0,
        alive: true,
        reported: State::Initialize,
    });
    lan.start(2);
    let outs: Vec<Output> = lan.events_of(2).map(|e| e.out).collect();
    assert_eq!(
        outs,
        vec![
            Output::SendAdvert {
                priority: 255,
                max_advert_int_cs: 100
            },
            Output::SendGarp,
            Output::SetOwnership { master: true },
            Output::StateChanged {
                from: State::Initialize,
                to: State::Master,
                reason: Reason::OwnerStartup
            },
            // The old master resigned with priority 0 (F07); the owner
            // answers it (RFC 9568 §6.4.3), its announcement fresh enough.
            Output::SendAdvert {
                priority: 255,
                max_advert_int_cs: 100
            },
        ]
    );
    // The old master yields to the owner's first advert, at once.
    let (at, _, to, reason) = *lan.changes(0).last().unwrap();
    assert_eq!((at, to, reason), (t, State::Backup, Reason::HigherPriority));
    lan.run_for(30 * SEC);
    assert_eq!(lan.masters(), vec![2]);
    assert_eq!(lan.insts[2].skew_time(), Duration::from_nanos(3_906_250));
}

#[test]
fn two_owners_resolve_by_address() {
    let mut lan = Lan::new(vec![cfg(2, 255, 100, true), cfg(3, 255, 100, true)]);
    lan.start_all();
    lan.run_for(10 * SEC);
    assert_eq!(lan.masters(), vec![1]);
    assert_eq!(lan.changes_since(lan.t0 + SEC), 0);
}

#[test]
fn backup_adopts_the_masters_interval() {
    // The master advertises every 50 cs; the backup is configured with 100 cs.
    let mut lan = Lan::new(vec![cfg(2, 200, 50, true), cfg(3, 100, 100, true)]);
    lan.start_all();
    lan.run_for(20 * SEC);
    assert_eq!(lan.masters(), vec![0]);
    assert_eq!(lan.insts[1].master_adver_interval_cs(), 50);
    assert_eq!(lan.insts[1].master_down_interval(), mdi(100, 50));
    assert_eq!(lan.insts[1].skew_time(), skew_time(Version::V3, 100, 50));
    lan.freeze(0);
    let last = *lan.advert_times(0).last().unwrap();
    lan.run_for(10 * SEC);
    let (at, _, _, _) = *lan.changes(1).last().unwrap();
    assert_eq!(at - last, mdi(100, 50));
    // As master it advertises its own interval.
    assert!(lan.events_of(1).any(|e| e.out
        == Output::SendAdvert {
            priority: 100,
            max_advert_int_cs: 100
        }));
}

#[test]
fn lower_priority_flood_gets_one_immediate_advert_per_interval() {
    let mut lan = converged_pair(true);
    let m = &mut lan.insts[0];
    while m.poll_output().is_some() {}
    let t = lan.now;
    let rogue = Advert {
        src: addr(66),
        priority: 50,
        max_advert_int_cs: 100,
    };
    let mut sent = 0;
    for interval in 0..3u32 {
        let base = t + SEC * interval;
        let (mut immediate, mut garps) = (0, 0);
        for k in 0..1000u32 {
            let now = base + Duration::from_micros(u64::from(k) * 900);
            m.handle_advert(now, &rogue);
            while let Some(out) = m.poll_output() {
                match out {
                    Output::SendAdvert {
                        priority: 200,
                        max_advert_int_cs: 100,
                    } => immediate += 1,
                    // RFC 9568 re-announce, under the same rate limit.
                    Output::SendGarp => garps += 1,
                    other => panic!("unexpected {other:?}"),
                }
            }
        }
        assert_eq!(immediate, 1, "interval {interval}");
        assert_eq!(garps, 1, "interval {interval}");
        sent += immediate;
    }
    assert_eq!(m.state(), State::Master);
    assert_eq!(m.counters().responses_sent, sent);
    assert_eq!(m.counters().responses_suppressed, 3 * 999);
}

#[test]
fn priority_zero_flood_is_answered_once_per_interval() {
    let mut lan = converged_pair(true);
    let m = &mut lan.insts[0];
    while m.poll_output().is_some() {}
    let t = lan.now;
    let zero = Advert {
        src: addr(66),
        priority: 0,
        max_advert_int_cs: 100,
    };
    let mut adverts = 0;
    for k in 0..1000u32 {
        m.handle_advert(t + Duration::from_micros(u64::from(k) * 900), &zero);
        while let Some(out) = m.poll_output() {
            if matches!(out, Output::SendAdvert { .. }) {
                adverts += 1;
            }
        }
    }
    assert_eq!(adverts, 1);
    // The one answer restarted Adver_Timer (RFC 9568 §6.4.3).
    assert_eq!(m.poll_timeout(), Some(t + SEC));
}

#[test]
fn stale_and_early_timeouts_do_nothing() {
    let mut lan = converged_pair(true);
    let now = lan.now;
    // Nothing due: no output, no change.
    for i in 0..2 {
        let before = lan.insts[i].poll_timeout();
        lan.insts[i].handle_timeout(now);
        assert_eq!(lan.insts[i].poll_output(), None);
        assert_eq!(lan.insts[i].poll_timeout(), before);
    }
    // The master's Adver deadline, then it is demoted before that deadline.
    let adver_deadline = lan.insts[0].poll_timeout().unwrap();
    let better = Advert {
        src: addr(50),
        priority: 250,
        max_advert_int_cs: 100,
    };
    lan.insts[0].handle_advert(now, &better);
    while lan.insts[0].poll_output().is_some() {}
    assert_eq!(lan.insts[0].state(), State::Backup);
    // The old Adver deadline arrives: no advert, no change.
    lan.insts[0].handle_timeout(adver_deadline);
    assert_eq!(lan.insts[0].poll_output(), None);
    assert_eq!(lan.insts[0].state(), State::Backup);
    assert_eq!(lan.insts[0].poll_timeout(), Some(now + mdi(200, 100)));
    // A backup's MDI deadline is pushed back by an advert; the old one is stale.
    let old = lan.insts[1].poll_timeout().unwrap();
    let later = now + SEC / 2;
    lan.insts[1].handle_advert(later, &better);
    lan.insts[1].handle_timeout(old);
    assert_eq!(lan.insts[1].poll_output(), None);
    assert_eq!(lan.insts[1].state(), State::Backup);
}

#[test]
fn frozen_master_steps_down_on_resume_instead_of_fighting() {
    for preempt in [true, false] {
        let mut lan = converged_pair(preempt);
        lan.freeze(0);
        lan.run_for(10 * SEC);
        assert_eq!(lan.masters(), vec![1]);
        let resume = lan.now;
        let adverts_before = lan.advert_times(0).len();
        lan.thaw(0);
        lan.step(resume);
        // First thing on resume: give up the addresses, without an advert.
        let outs: Vec<Output> = lan
            .events_of(0)
            .filter(|e| e.at == resume)
            .map(|e| e.out)
            .collect();
        assert_eq!(
            outs,
            vec![
                Output::SetOwnership { master: false },
                Output::StateChanged {
                    from: State::Master,
                    to: State::Backup,
                    reason: Reason::Stalled
                },
            ]
        );
        assert_eq!(lan.advert_times(0).len(), adverts_before);
        assert_eq!(lan.masters(), vec![1]);
        lan.run_for(20 * SEC);
        if preempt {
            // Then it preempts cleanly, one MDI later.
            assert_eq!(lan.masters(), vec![0]);
            assert_eq!(lan.changes(0).last().unwrap().3, Reason::Preempt);
        } else {
            assert_eq!(lan.masters(), vec![1]);
        }
    }
}

#[test]
fn late_master_wakeup_within_mdi_keeps_mastership_without_a_burst() {
    let mut lan = converged_pair(true);
    let before = *lan.advert_times(0).last().unwrap();
    lan.freeze(0);
    lan.run_for(2 * SEC + SEC / 2); // late, but under the backup's MDI
    lan.thaw(0);
    let resume = lan.now;
    lan.step(resume);
    assert_eq!(lan.masters(), vec![0]);
    let at_resume = lan.advert_times(0).iter().filter(|&&t| t == resume).count();
    assert_eq!(at_resume, 1);
    // The next advert is on the old cadence, at least half an interval on.
    let next = lan.insts[0].poll_timeout().unwrap();
    assert!(next >= resume + SEC / 2 && next < resume + SEC + SEC / 2);
    assert_eq!((next - before).as_nanos() % SEC.as_nanos(), 0);
}

#[test]
fn tracking_priority_changes_move_mastership() {
    let mut lan = converged_pair(true);
    lan.set_priority(0, 50);
    assert_eq!(lan.insts[0].effective_priority(), 50);
    assert_eq!(lan.insts[0].priority(), 200);
    // The master announces the new priority at once.
    assert_eq!(
        lan.log.last().map(|e| e.out),
        Some(Output::SendAdvert {
            priority: 50,
            max_advert_int_cs: 100
        })
    );
    lan.run_for(10 * SEC);
    assert_eq!(lan.masters(), vec![1]);
    lan.set_priority(0, 200);
    lan.run_for(10 * SEC);
    assert_eq!(lan.masters(), vec![0]);
    // Tracking cannot reach 0 or 255.
    lan.set_priority(0, 0);
    assert_eq!(lan.insts[0].effective_priority(), 1);
    lan.set_priority(0, 255);
    assert_eq!(lan.insts[0].effective_priority(), 254);
}

#[test]
fn v2_uses_whole_second_skew_and_rejects_interval_mismatch() {
    let v2 = |host, prio| {
        let mut c = cfg(host, prio, 100, true);
        c.version = Version::V2;
        c
    };
    let mut lan = Lan::new(vec![v2(2, 200), v2(3, 100)]);
    lan.start_all();
    lan.run_for(10 * SEC);
    assert_eq!(lan.masters(), vec![0]);
    assert_eq!(
        lan.insts[1].master_down_interval(),
        3 * SEC + Duration::from_nanos(156 * 3_906_250)
    );
    // RFC 3768 §7.1: a v2 advert with another interval is discarded.
    let now = lan.now;
    let deadline = lan.insts[1].poll_timeout();
    let odd = Advert {
        src: addr(2),
        priority: 200,
        max_advert_int_cs: 200,
    };
    lan.insts[1].handle_advert(now + SEC / 10, &odd);
    assert_eq!(lan.insts[1].poll_timeout(), deadline);
    assert_eq!(lan.insts[1].counters().adverts_invalid, 1);
    assert_eq!(lan.insts[1].master_adver_interval_cs(), 100);
}

/// Box A (.2) and box B (.3) each run a LAN-side and a WAN-side router; each
/// box's two routers form a sync group.
fn gateway_pair() -> Lan {
    let mut lan = Lan::with_segments(vec![
        (cfg(2, 200, 100, true), 0), // 0: lan A
        (cfg(3, 100, 100, true), 0), // 1: lan B
        (cfg(2, 200, 100, true), 1), // 2: wan A
        (cfg(3, 100, 100, true), 1), // 3: wan B
    ]);
    lan.groups = vec![
        SyncGroup {
            name: "A".into(),
            members: vec![0, 2],
        },
        SyncGroup {
            name: "B".into(),
            members: vec![1, 3],
        },
    ];
    lan.start_all();
    lan.run_for(20 * SEC);
    lan
}

/// F03 with sync groups: box A (priority 200 on both sides) is frozen for
/// longer than Master_Down_Interval, box B takes both sides over; on resume
/// A's routers step down (stalled) and, preempt being on, take both sides
/// back, once, without the group holding them in Backup.
#[test]
fn f03_frozen_box_takes_its_group_back_after_resume() {
    let mut lan = gateway_pair();
    assert_eq!(lan.masters(), vec![0, 2]);
    lan.freeze(0);
    lan.freeze(2);
    lan.run_for(5 * SEC);
    assert_eq!(lan.masters(), vec![1, 3], "B took over while A is frozen");
    let thawed = lan.now;
    lan.thaw(0);
    lan.thaw(2);
    lan.run_for(30 * SEC);
    assert_eq!(lan.masters(), vec![0, 2]);
    assert!(!lan.insts[0].sync_held() && !lan.insts[2].sync_held());
    // Each of A's routers: stalled, then master again; no flapping after.
    for i in [0, 2] {
        let after: Vec<Reason> = lan
            .changes(i)
            .iter()
            .filter(|c| c.0 >= thawed)
            .map(|c| c.3)
            .collect();
        assert_eq!(after.first(), Some(&Reason::Stalled), "{i}: {after:?}");
        assert!(after.len() <= 3, "{i}: {after:?}");
    }
    let quiet = lan.now;
    lan.run_for(60 * SEC);
    assert_eq!(lan.changes_since(quiet), 0);
}

#[test]
fn sync_group_members_move_together_both_ways() {
    let mut lan = gateway_pair();
    assert_eq!(lan.masters(), vec![0, 2]);

    // WAN A loses priority: WAN B preempts, and both boxes' groups follow.
    lan.set_priority(2, 50);
    lan.run_for(10 * SEC);
    assert_eq!(lan.masters(), vec![1, 3]);
    assert!(lan.insts[0].sync_held());
    let (_, from, to, reason) = *lan.changes(0).last().unwrap();
    assert_eq!(
        (from, to, reason),
        (State::Master, State::Backup, Reason::SyncGroup)
    );
    // The forced step-down announced priority 0 so LAN B took over quickly.
    assert!(lan
        .events_of(0)
        .any(|e| matches!(e.out, Output::SendAdvert { priority: 0, .. })));
    // The WAN side changed once and never flipped back.
    let wan_b: Vec<Reason> = lan.changes(3).iter().map(|c| c.3).collect();
    assert_eq!(wan_b, vec![Reason::Startup, Reason::Preempt]);
    // Stable: held LAN A does not preempt LAN B's lower priority.
    let quiet = lan.now;
    lan.run_for(60 * SEC);
    assert_eq!(lan.changes_since(quiet), 0);

    // A new priority lifts the hold: it is a new situation to elect afresh.
    lan.set_priority(0, 199);
    assert!(!lan.insts[0].sync_held());
    lan.set_priority(0, 200);

    // WAN A recovers and preempts; everything moves back to box A.
    lan.set_priority(2, 200);
    lan.run_for(10 * SEC);
    assert_eq!(lan.masters(), vec![0, 2]);
    assert!(!lan.insts[0].sync_held());
    let quiet = lan.now;
    lan.run_for(60 * SEC);
    assert_eq!(lan.changes_since(quiet), 0);
}

#[test]
fn sync_group_follows_a_dead_peer_box() {
    let mut lan = gateway_pair();
    lan.freeze(0);
    lan.freeze(2);
    lan.run_for(10 * SEC);
    assert_eq!(lan.masters(), vec![1, 3]);
    // Both of box B's timers ran out at the same instant; forcing the other
    // member, already master, changed nothing.
    for i in [1, 3] {
        let changes = lan.changes(i);
        assert_eq!(changes.len(), 2, "{changes:?}");
        assert_eq!(changes[1].3, Reason::MasterDown);
    }
}

/// A frozen master that, on resume, first sees the adverts queued while it
/// slept must step down before answering them: it must not send a
/// priority-200 advert that knocks the new master down
/// (docs/conformance.md F03).
#[test]
fn f03_frozen_master_steps_down_before_answering_queued_adverts() {
    use std::net::{IpAddr, Ipv4Addr};
    use std::time::{Duration, Instant};
    use xvrrp_control::vrrp::fsm::{Advert, Output, Reason, State, Version};
    use xvrrp_control::vrrp::instance::{Instance, InstanceConfig};

    let t0 = Instant::now();
    let mut a = Instance::new(InstanceConfig {
        name: "a".into(),
        vrid: 1,
        version: Version::V3,
        priority: 200,
        advert_interval_cs: 10,
        preempt: true,
        preempt_delay: Duration::ZERO,
        primary_addr: IpAddr::V4(Ipv4Addr::new(192, 0, 2, 2)),
    });
    a.handle_startup(t0);
    let mdi = a.master_down_interval();
    a.handle_timeout(t0 + mdi);
    assert_eq!(a.state(), State::Master);
    while a.poll_output().is_some() {}
    // Frozen for a second; on resume the first input is B's queued advert.
    let resume = t0 + mdi + Duration::from_secs(1);
    let from_b = Advert {
        src: IpAddr::V4(Ipv4Addr::new(192, 0, 2, 3)),
        priority: 100,
        max_advert_int_cs: 10,
    };
    a.handle_advert(resume, &from_b);
    assert_eq!(a.state(), State::Backup);
    let outputs: Vec<Output> = std::iter::from_fn(|| a.poll_output()).collect();
    assert!(
        !outputs
            .iter()
            .any(|o| matches!(o, Output::SendAdvert { priority, .. } if *priority > 0)),
        "no advert claiming mastership after the freeze: {outputs:?}"
    );
    assert!(outputs.contains(&Output::StateChanged {
        from: State::Master,
        to: State::Backup,
        reason: Reason::Stalled
    }));
}
