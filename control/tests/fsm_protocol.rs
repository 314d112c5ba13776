//! Protocol behaviour of the VRRP state machine, named by docs/conformance.md
//! ID (P02, P04–P07, B19, B20, F08, F10, F13): single instances driven input
//! by input with a fake clock, and the simulated LAN of `fsm_sim` where the
//! outcome depends on a peer. No sleeps: every instant is computed.
#![allow(clippy::unwrap_used)]

mod fsm_sim;

use std::net::{IpAddr, Ipv6Addr};
use std::time::{Duration, Instant};

use fsm_sim::{addr, cfg, Lan};
use xvrrp_control::vrrp::{
    master_down_interval, skew_time, Advert, Instance, InstanceConfig, Output, Reason, State,
    Version,
};

const SEC: Duration = Duration::from_secs(1);
const NS: Duration = Duration::from_nanos(1);

fn drain(i: &mut Instance) -> Vec<Output> {
    std::iter::from_fn(|| i.poll_output()).collect()
}

fn v6(last: u16) -> IpAddr {
    IpAddr::V6(Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, last))
}

fn config(version: Version, primary: IpAddr, priority: u8, interval_cs: u16) -> InstanceConfig {
    InstanceConfig {
        name: "p".into(),
        vrid: 1,
        version,
        priority,
        advert_interval_cs: interval_cs,
        preempt: true,
        preempt_delay: Duration::ZERO,
        primary_addr: primary,
    }
}

fn advert(src: IpAddr, priority: u8, cs: u16) -> Advert {
    Advert {
        src,
        priority,
        max_advert_int_cs: cs,
    }
}

/// A started instance, its startup output drained.
fn started(c: InstanceConfig, t0: Instant) -> Instance {
    let mut i = Instance::new(c);
    i.handle_startup(t0);
    drain(&mut i);
    i
}

/// A started instance that became master on its own Master_Down_Timer;
/// returns it with the instant it became master.
fn master(c: InstanceConfig, t0: Instant) -> (Instance, Instant) {
    let mut i = started(c, t0);
    let at = i.poll_timeout().unwrap();
    i.handle_timeout(at);
    drain(&mut i);
    assert_eq!(i.state(), State::Master);
    (i, at)
}

fn became_master(reason: Reason, priority: u8, cs: u16) -> Vec<Output> {
    vec![
        Output::SendAdvert {
            priority,
            max_advert_int_cs: cs,
        },
        Output::SendGarp,
        Output::SetOwnership { master: true },
        Output::StateChanged {
            from: State::Backup,
            to: State::Master,
            reason,
        },
    ]
}

// ----- P02 ---------------------------------------------------------------------------

/// Init → Backup at Startup, silent and with one timer armed at exactly
/// Master_Down_Interval; a nanosecond before it nothing happens; at it the
/// instance becomes master with advert, announcement and ownership, in
/// that order — for v3/IPv4, v3/IPv6 and v2.
#[test]
fn p02_init_to_backup_silent_for_mdi_then_master_at_exactly_mdi() {
    let cases = [
        (
            Version::V3,
            addr(2),
            100u8,
            100u16,
            Duration::from_nanos(3_609_375_000),
        ),
        (
            Version::V3,
            v6(2),
            200,
            10,
            Duration::from_nanos(321_875_000),
        ),
        // v2: Skew_Time is (256 − 100)/256 s whatever the interval.
        (
            Version::V2,
            addr(2),
            100,
            200,
            Duration::from_nanos(6_609_375_000),
        ),
    ];
    for (version, primary, priority, cs, mdi) in cases {
        let t0 = Instant::now();
        let mut i = Instance::new(config(version, primary, priority, cs));
        i.handle_startup(t0);
        assert_eq!(
            drain(&mut i),
            vec![Output::StateChanged {
                from: State::Initialize,
                to: State::Backup,
                reason: Reason::Startup
            }],
            "{version:?}: no advert, no announcement at startup"
        );
        assert_eq!(i.master_down_interval(), mdi, "{version:?}");
        assert_eq!(i.poll_timeout(), Some(t0 + mdi));
        // Every instant short of MDI: nothing, not even a re-arm.
        for at in [t0, t0 + mdi / 2, t0 + mdi - NS] {
            i.handle_timeout(at);
            assert_eq!(i.poll_output(), None, "{version:?} at {:?}", at - t0);
            assert_eq!(i.state(), State::Backup);
            assert_eq!(i.poll_timeout(), Some(t0 + mdi));
        }
        i.handle_timeout(t0 + mdi);
        assert_eq!(
            drain(&mut i),
            became_master(Reason::MasterDown, priority, cs)
        );
        assert_eq!(i.since(), Some(t0 + mdi));
        assert_eq!(
            i.poll_timeout(),
            Some(t0 + mdi + Duration::from_millis(10 * u64::from(cs)))
        );
    }
}

// ----- P04 ---------------------------------------------------------------------------

/// Backup (priority 100) hearing a higher, an equal and a lower priority,
/// with preemption on and off: a higher or equal advert re-arms
/// Master_Down_Timer and names the master; a lower one re-arms only when
/// preemption is off, and with preemption on the timer it left running
/// makes this backup master (reason Preempt) at the original deadline.
#[test]
fn p04_backup_rearms_on_higher_or_equal_and_lower_only_without_preempt() {
    for preempt in [true, false] {
        for (priority, rearms) in [(150u8, true), (100, true), (50, !preempt)] {
            let t0 = Instant::now();
            let mut c = config(Version::V3, addr(5), 100, 100);
            c.preempt = preempt;
            let mut i = started(c, t0);
            let armed = i.poll_timeout().unwrap();
            let t = t0 + SEC;
            i.handle_advert(t, &advert(addr(9), priority, 100));
            assert_eq!(i.poll_output(), None, "a backup never answers");
            let what = format!("preempt={preempt} advert priority {priority}");
            if rearms {
                assert_eq!(
                    i.poll_timeout(),
                    Some(t + i.master_down_interval()),
                    "{what}"
                );
                assert_eq!(i.master_addr(), Some(addr(9)), "{what}");
            } else {
                assert_eq!(i.poll_timeout(), Some(armed), "{what}");
                assert_eq!(i.master_addr(), None, "{what}");
                i.handle_timeout(armed);
                assert_eq!(drain(&mut i), became_master(Reason::Preempt, 100, 100));
            }
        }
    }
}

// ----- P05 ---------------------------------------------------------------------------

/// Master (priority 100) demoted by a higher priority, or by an equal one
/// from a higher address (IPv4 and IPv6 compared as unsigned integers):
/// ownership is given up exactly once, however many such adverts follow.
/// An equal priority from a lower address is answered, not obeyed.
#[test]
fn p05_master_demotion_gives_up_the_addresses_exactly_once() {
    let cases = [
        (addr(5), addr(9), addr(1), 150u8),
        (addr(5), addr(9), addr(1), 100),
        (v6(0x5), v6(0x9), v6(0x1), 100),
        // fe80::1:0 is greater than fe80::ffff: the whole address counts.
        (
            v6(0xffff),
            IpAddr::V6("fe80::1:0".parse().unwrap()),
            v6(0xfffe),
            100,
        ),
    ];
    for (own, higher, lower, priority) in cases {
        let t0 = Instant::now();
        let (mut m, at) = master(config(Version::V3, own, 100, 100), t0);
        let t = at + SEC / 2;
        // An equal priority from a lower address: answered, mastership kept.
        m.handle_advert(t, &advert(lower, 100, 100));
        assert_eq!(
            drain(&mut m),
            vec![
                Output::SendAdvert {
                    priority: 100,
                    max_advert_int_cs: 100
                },
                Output::SendGarp
            ],
            "{own} vs {lower}"
        );
        assert_eq!(m.state(), State::Master);
        let mut outs = Vec::new();
        for k in 0..5u32 {
            m.handle_advert(t + SEC / 10 * k, &advert(higher, priority, 100));
            outs.extend(drain(&mut m));
        }
        assert_eq!(
            outs,
            vec![
                Output::SetOwnership { master: false },
                Output::StateChanged {
                    from: State::Master,
                    to: State::Backup,
                    reason: Reason::HigherPriority
                }
            ],
            "{own} vs {higher} at {priority}"
        );
        assert_eq!(m.master_addr(), Some(higher));
    }
}

// ----- P06 ---------------------------------------------------------------------------

/// The four combinations of preemption and preempt_delay, as a
/// higher-priority router (A, 200) starts on a LAN where a lower one
/// (B, 100) is already master, 1 s adverts:
/// - off, no delay: A never preempts;
/// - off, 10 s delay: the same (the delay only postpones preemption);
/// - on, no delay: A discards B's adverts from its first one and preempts
///   at exactly its first Master_Down_Interval;
/// - on, 10 s delay: A accepts B's adverts for 10 s, then discards them and
///   preempts one Master_Down_Interval after the last one it accepted.
#[test]
fn p06_preempt_off_on_with_and_without_delay() {
    let mdi_a = master_down_interval(Version::V3, 200, 100);
    let delay = 10 * SEC;
    for (preempt, hold) in [
        (false, Duration::ZERO),
        (false, delay),
        (true, Duration::ZERO),
        (true, delay),
    ] {
        let what = format!("preempt={preempt} delay={hold:?}");
        let mut a = cfg(2, 200, 100, preempt);
        a.preempt_delay = hold;
        let mut lan = Lan::new(vec![a, cfg(3, 100, 100, true)]);
        lan.start(1);
        lan.run_for(10 * SEC);
        assert_eq!(lan.masters(), vec![1]);
        let start = lan.now;
        lan.start(0);
        lan.run_for(60 * SEC);
        if !preempt {
            assert_eq!(lan.masters(), vec![1], "{what}");
            assert_eq!(lan.changes(0).len(), 1, "{what}: only Startup");
            assert_eq!(lan.insts[0].master_addr(), Some(addr(3)), "{what}");
            continue;
        }
        assert_eq!(lan.masters(), vec![0], "{what}");
        let changes = lan.changes(0);
        assert_eq!(changes.len(), 2, "{what}: {changes:?}");
        let (at, _, _, reason) = changes[1];
        assert_eq!(reason, Reason::Preempt, "{what}");
        let expected = if hold.is_zero() {
            start + mdi_a
        } else {
            // The last advert from B that A heard inside its delay window.
            let last_accepted = lan
                .advert_times(1)
                .into_iter()
                .filter(|&t| t >= start && t < start + hold)
                .max()
                .unwrap();
            last_accepted + mdi_a
        };
        assert_eq!(at, expected, "{what}");
        assert!(hold.is_zero() || at > start + hold, "{what}");
        // B yielded to A's first advert as master, at once.
        let (b_at, _, b_to, b_reason) = *lan.changes(1).last().unwrap();
        assert_eq!(
            (b_at, b_to, b_reason),
            (at, State::Backup, Reason::HigherPriority)
        );
    }
}

// ----- P07 ---------------------------------------------------------------------------

/// Priority 0 in Backup sets Master_Down_Timer to Skew_Time — per version:
/// v3 (256 − p) × Master_Adver_Interval / 256, v2 (256 − p) / 256 s — and
/// its expiry makes the backup master with reason PriorityZero. In Master,
/// priority 0 is answered with an advert at once and Adver_Timer restarts.
#[test]
fn p07_priority_zero_backup_waits_skew_master_answers() {
    for (version, priority, cs, skew) in [
        (
            Version::V3,
            100u8,
            100u16,
            Duration::from_nanos(609_375_000),
        ),
        (Version::V3, 254, 10, Duration::from_nanos(781_250)),
        (Version::V2, 100, 300, Duration::from_nanos(609_375_000)),
        (Version::V2, 1, 100, Duration::from_nanos(996_093_750)),
    ] {
        let t0 = Instant::now();
        let mut b = started(config(version, addr(5), priority, cs), t0);
        let t = t0 + SEC;
        b.handle_advert(t, &advert(addr(9), 0, cs));
        assert_eq!(b.poll_output(), None);
        assert_eq!(b.skew_time(), skew, "{version:?} p={priority}");
        assert_eq!(b.poll_timeout(), Some(t + skew));
        b.handle_timeout(t + skew - NS);
        assert_eq!(b.poll_output(), None);
        b.handle_timeout(t + skew);
        assert_eq!(
            drain(&mut b),
            became_master(Reason::PriorityZero, priority, cs)
        );

        let (mut m, at) = master(config(version, addr(5), priority, cs), t0);
        let t = at + Duration::from_millis(3);
        m.handle_advert(t, &advert(addr(9), 0, cs));
        assert_eq!(
            drain(&mut m),
            vec![Output::SendAdvert {
                priority,
                max_advert_int_cs: cs
            }]
        );
        assert_eq!(
            m.poll_timeout(),
            Some(t + Duration::from_millis(10 * u64::from(cs)))
        );
        assert_eq!(m.state(), State::Master);
    }
}

// ----- B19 / B20 -------------------------------------------------------------------------

/// A rogue advertising the smallest interval the field can carry (1 cs):
/// the v3 backup adopts it (RFC 9568 §6.4.2), its Master_Down_Interval is
/// 3 × 10 ms + Skew_Time, never zero, and once master it advertises at its
/// own configured interval: no timer at or before `now`, no busy loop.
/// Zero, the one value below the floor, is discarded without touching the
/// timer.
#[test]
fn b19_one_cs_interval_adopted_with_a_nonzero_timer_zero_discarded() {
    let t0 = Instant::now();
    let mut b = started(config(Version::V3, addr(5), 100, 100), t0);
    let armed = b.poll_timeout();
    let t = t0 + SEC;
    b.handle_advert(t, &advert(addr(66), 200, 0));
    assert_eq!(b.poll_timeout(), armed);
    assert_eq!(b.master_adver_interval_cs(), 100);
    assert_eq!(b.counters().adverts_invalid, 1);

    b.handle_advert(t, &advert(addr(66), 200, 1));
    assert_eq!(b.master_adver_interval_cs(), 1);
    // 30 ms + 156 × 10 ms / 256.
    let mdi = Duration::from_nanos(36_093_750);
    assert_eq!(b.master_down_interval(), mdi);
    assert_eq!(b.poll_timeout(), Some(t + mdi));
    b.handle_timeout(t + mdi);
    assert_eq!(drain(&mut b), became_master(Reason::MasterDown, 100, 100));
    let next = b.poll_timeout().unwrap();
    assert_eq!(next, t + mdi + SEC);
    b.handle_timeout(t + mdi);
    assert_eq!(b.poll_output(), None);
}

/// The largest v3 interval (4095 cs) at the lowest priority (1): Skew_Time
/// 255 × 40.95 s / 256 and Master_Down_Interval 3 × 40.95 s + that, exact to
/// the nanosecond, armed and fired without overflow; v2 at its largest
/// interval (255 s) the same way.
#[test]
fn b20_4095_cs_at_priority_1_without_overflow() {
    let t0 = Instant::now();
    let mut b = started(config(Version::V3, addr(5), 1, 100), t0);
    let t = t0 + SEC;
    b.handle_advert(t, &advert(addr(9), 200, 4095));
    assert_eq!(b.master_adver_interval_cs(), 4095);
    assert_eq!(b.skew_time(), Duration::from_nanos(40_790_039_062));
    let mdi = Duration::from_nanos(163_640_039_062);
    assert_eq!(b.master_down_interval(), mdi);
    assert_eq!(b.poll_timeout(), Some(t + mdi));
    b.handle_timeout(t + mdi - NS);
    assert_eq!(b.poll_output(), None);
    b.handle_timeout(t + mdi);
    assert_eq!(drain(&mut b), became_master(Reason::MasterDown, 1, 100));

    let mut v2 = Instance::new(config(Version::V2, addr(5), 1, 25_500));
    v2.handle_startup(t0);
    let mdi = Duration::from_secs(765) + Duration::from_nanos(996_093_750);
    assert_eq!(v2.master_down_interval(), mdi);
    assert_eq!(v2.poll_timeout(), Some(t0 + mdi));
    assert_eq!(
        master_down_interval(Version::V2, 1, 25_500),
        mdi,
        "the free function agrees"
    );
    assert_eq!(
        skew_time(Version::V3, 1, 4095),
        Duration::from_nanos(40_790_039_062)
    );
}

// ----- F08 ---------------------------------------------------------------------------

/// Deterministic advert loss from the master (200) to the backup (100), 1 s
/// adverts, Master_Down_Interval 3.609375 s: losing 1 of every 3, or 2 of
/// every 3, leaves a gap of at most 3 s and causes no transition; losing 3
/// in a row leaves 4 s: the backup takes over exactly one MDI after the
/// last advert it heard, and yields at the same instant, because the master
/// answers its first (lower-priority) advert at once (RFC 9568 §6.4.3) —
/// one spurious transition each way, no more.
#[test]
fn f08_advert_loss_patterns() {
    for (pattern, lost_per_3) in [("1 of 3", 1u64), ("2 of 3", 2)] {
        let mut lan = Lan::new(vec![cfg(2, 200, 100, true), cfg(3, 100, 100, true)]);
        lan.start_all();
        lan.run_for(10 * SEC);
        let quiet = lan.now;
        let mut k = 0u64;
        lan.loss = Some(Box::new(move |from, _| {
            if from != 0 {
                return false;
            }
            k += 1;
            k % 3 < lost_per_3
        }));
        lan.run_for(120 * SEC);
        assert_eq!(lan.changes_since(quiet), 0, "{pattern}");
        assert_eq!(lan.masters(), vec![0], "{pattern}");
    }

    let mut lan = Lan::new(vec![cfg(2, 200, 100, true), cfg(3, 100, 100, true)]);
    lan.start_all();
    lan.run_for(10 * SEC);
    let quiet = lan.now;
    let mut k = 0u64;
    lan.loss = Some(Box::new(move |from, _| {
        if from != 0 {
            return false;
        }
        k += 1;
        (3..6).contains(&k)
    }));
    lan.run_for(30 * SEC);
    let a_adverts: Vec<Instant> = lan
        .advert_times(0)
        .into_iter()
        .filter(|&t| t >= quiet)
        .collect();
    // Deliveries 1 and 2 arrived; 3, 4 and 5 were lost.
    let last_heard = a_adverts[1];
    let b = lan.changes(1);
    let spurious: Vec<_> = b.iter().filter(|c| c.0 >= quiet).collect();
    assert_eq!(spurious.len(), 2, "{spurious:?}");
    assert_eq!(
        (spurious[0].0, spurious[0].2, spurious[0].3),
        (
            last_heard + master_down_interval(Version::V3, 100, 100),
            State::Master,
            Reason::MasterDown
        )
    );
    assert_eq!(
        (spurious[1].0, spurious[1].2, spurious[1].3),
        (spurious[0].0, State::Backup, Reason::HigherPriority)
    );
    // That answer is A's sixth advert since the loss began, out of cadence.
    assert_eq!(a_adverts[5], spurious[0].0);
    assert_eq!(lan.changes(0).len(), 2, "A never left Master");
    assert_eq!(lan.masters(), vec![0]);
}

// ----- F10 ---------------------------------------------------------------------------

/// The fake clock jumps forward by an hour (far beyond Master_Down_Interval).
/// - A backup's overdue Master_Down_Timer fires once: master (RFC 9568
///   §6.4.2), one advert, the next deadline one interval after the jump.
/// - A master's Adver_Timer overdue by more than Master_Down_Interval is
///   taken as a freeze: it steps down without an advert (the documented
///   choice that keeps a resumed master from fighting its replacement),
///   and becomes master again one MDI later if nobody else is heard.
/// - The same jump for a whole LAN (both routers at once) ends with the
///   priority-200 router master again and a bounded number of changes.
///
/// No deadline is ever at or before `now` after a timeout (no busy loop).
#[test]
fn f10_clock_jump_forward_beyond_mdi() {
    let jump = 3600 * SEC;
    let t0 = Instant::now();
    let mut b = started(config(Version::V3, addr(5), 100, 100), t0);
    let now = t0 + jump;
    b.handle_timeout(now);
    assert_eq!(drain(&mut b), became_master(Reason::MasterDown, 100, 100));
    assert_eq!(b.poll_timeout(), Some(now + SEC));
    b.handle_timeout(now);
    assert_eq!(b.poll_output(), None);

    let (mut m, at) = master(config(Version::V3, addr(5), 200, 100), t0);
    let now = at + jump;
    m.handle_timeout(now);
    assert_eq!(
        drain(&mut m),
        vec![
            Output::SetOwnership { master: false },
            Output::StateChanged {
                from: State::Master,
                to: State::Backup,
                reason: Reason::Stalled
            }
        ]
    );
    let mdi = master_down_interval(Version::V3, 200, 100);
    assert_eq!(m.poll_timeout(), Some(now + mdi));
    m.handle_timeout(now + mdi);
    assert_eq!(drain(&mut m), became_master(Reason::MasterDown, 200, 100));
    assert!(m.poll_timeout().unwrap() > now + mdi);

    let mut lan = Lan::new(vec![cfg(2, 200, 100, true), cfg(3, 100, 100, true)]);
    lan.start_all();
    lan.run_for(10 * SEC);
    assert_eq!(lan.masters(), vec![0]);
    let before = lan.now;
    lan.freeze(0);
    lan.freeze(1);
    lan.run_for(jump);
    lan.thaw(0);
    lan.thaw(1);
    lan.run_for(30 * SEC);
    assert_eq!(lan.masters(), vec![0]);
    // A: Stalled, then Preempt; B: MasterDown, then HigherPriority.
    assert_eq!(lan.changes_since(before), 4);
    let reasons: Vec<Reason> = lan.changes(0).iter().skip(2).map(|c| c.3).collect();
    assert_eq!(reasons, vec![Reason::Stalled, Reason::Preempt]);
}

// ----- F13 ---------------------------------------------------------------------------

/// Two address owners (priority 255) on one LAN. xvrrp is RFC-pure here, no
/// keepalived-style de-escalation: both become master at Startup, the one
/// with the lower address yields on the other's first advert (equal
/// priority, higher address wins, RFC 9568 §6.4.3) and stays backup, still
/// at 255; it accepts the other's adverts (equal priority) so it never
/// preempts back, and it takes over one Master_Down_Interval (with the
/// owner's Skew_Time) after the other falls silent.
#[test]
fn f13_two_owners_resolve_by_address_rfc_pure() {
    let mut lan = Lan::new(vec![cfg(2, 255, 100, false), cfg(3, 255, 100, false)]);
    lan.start_all();
    let t0 = lan.t0;
    let reasons = |lan: &Lan, i| -> Vec<(Instant, Reason)> {
        lan.changes(i).iter().map(|c| (c.0, c.3)).collect()
    };
    assert_eq!(
        reasons(&lan, 0),
        vec![(t0, Reason::OwnerStartup), (t0, Reason::HigherPriority)]
    );
    assert_eq!(reasons(&lan, 1), vec![(t0, Reason::OwnerStartup)]);
    lan.run_for(120 * SEC);
    assert_eq!(lan.masters(), vec![1]);
    assert_eq!(lan.changes_since(t0 + NS), 0);
    assert_eq!(lan.insts[0].effective_priority(), 255);
    assert_eq!(lan.insts[0].master_addr(), Some(addr(3)));

    lan.freeze(1);
    let last = *lan.advert_times(1).last().unwrap();
    lan.run_for(10 * SEC);
    assert_eq!(lan.masters(), vec![0]);
    let (at, _, _, reason) = *lan.changes(0).last().unwrap();
    assert_eq!(reason, Reason::MasterDown);
    assert_eq!(at - last, 3 * SEC + Duration::from_nanos(3_906_250));
}
