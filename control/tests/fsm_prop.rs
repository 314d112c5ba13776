//! Randomised LAN scenarios: random priorities, intervals, preemption, start
//! times, advert loss, freezes and clock jumps; then a loss-free period after
//! which the LAN must have settled on exactly one master.
#![allow(clippy::unwrap_used)]

mod fsm_sim;

use std::time::Duration;

use fsm_sim::{cfg, Lan};
use proptest::prelude::*;
use xvrrp_control::vrrp::{master_down_interval, Version};

#[derive(Debug, Clone)]
struct Router {
    priority: u8,
    interval_cs: u16,
    preempt: bool,
    start_after_ms: u64,
}

fn router() -> impl Strategy<Value = Router> {
    (
        prop_oneof![Just(255u8), 1u8..=254],
        prop_oneof![Just(1u16), 1u16..=150, Just(100)],
        any::<bool>(),
        0u64..3_000,
    )
        .prop_map(|(priority, interval_cs, preempt, start_after_ms)| Router {
            priority,
            interval_cs,
            preempt,
            start_after_ms,
        })
}

#[derive(Debug, Clone)]
struct Scenario {
    routers: Vec<Router>,
    /// Percentage of adverts lost during the chaotic phase.
    loss_pct: u64,
    chaos_ms: u64,
    /// (router, freeze at ms into the chaos, frozen for ms)
    freeze: Option<(usize, u64, u64)>,
    seed: u64,
}

fn scenario() -> impl Strategy<Value = Scenario> {
    (
        prop::collection::vec(router(), 2..=4),
        0u64..=60,
        0u64..20_000,
        prop::option::of((0usize..4, 0u64..10_000, 0u64..30_000)),
        any::<u64>(),
    )
        .prop_map(|(routers, loss_pct, chaos_ms, freeze, seed)| Scenario {
            freeze: freeze.map(|(i, at, d)| (i % routers.len(), at, d)),
            routers,
            loss_pct,
            chaos_ms,
            seed,
        })
}

/// xorshift64*: a tiny deterministic generator for the loss model.
fn lossy(mut state: u64, pct: u64) -> Box<dyn FnMut(usize, usize) -> bool> {
    state |= 1;
    Box::new(move |_, _| {
        state ^= state >> 12;
        state ^= state << 25;
        state ^= state >> 27;
        state.wrapping_mul(0x2545_f491_4f6c_dd1d) % 100 < pct
    })
}

fn run(s: &Scenario) {
    let cfgs = s
        .routers
        .iter()
        .enumerate()
        .map(|(i, r)| {
            cfg(
                10 + u8::try_from(i).unwrap(),
                r.priority,
                r.interval_cs,
                r.preempt,
            )
        })
        .collect();
    let mut lan = Lan::new(cfgs);
    lan.loss = Some(lossy(s.seed, s.loss_pct));

    // Chaotic phase: staggered starts, loss, an optional freeze (a clock jump
    // for that router when it thaws).
    let mut pending: Vec<(u64, usize)> = s
        .routers
        .iter()
        .enumerate()
        .map(|(i, r)| (r.start_after_ms, i))
        .collect();
    pending.sort_unstable();
    for (at, i) in pending {
        lan.run_until(lan.t0 + Duration::from_millis(at));
        lan.start(i);
    }
    let chaos_start = lan.now;
    if let Some((i, at, frozen)) = s.freeze {
        lan.run_until(chaos_start + Duration::from_millis(at));
        lan.freeze(i);
        lan.run_for(Duration::from_millis(frozen));
        lan.thaw(i);
    }
    lan.run_until(chaos_start + Duration::from_millis(s.chaos_ms).max(lan.now - chaos_start));

    // Quiet phase: no loss. Everyone hears the master within a few of the
    // longest Master_Down_Intervals (one for a preemption, one for a
    // takeover, margin for adverts in flight).
    lan.loss = None;
    let longest = s
        .routers
        .iter()
        .map(|r| master_down_interval(Version::V3, 1, r.interval_cs))
        .max()
        .unwrap();
    lan.run_for(longest * 4);
    let settled = lan.now;
    lan.run_for(longest * 2);

    let masters = lan.masters();
    assert_eq!(masters.len(), 1, "masters {masters:?}");
    assert_eq!(
        lan.changes_since(settled),
        0,
        "state changes after settling"
    );
    let m = masters[0];
    for (i, inst) in lan.insts.iter().enumerate() {
        if i != m {
            assert_eq!(inst.master_addr(), lan.insts[m].master_addr(), "router {i}");
        }
        assert!(inst.transitions() >= 1);
        assert!(inst.poll_timeout().is_some_and(|t| t > lan.now));
    }
    // With every router preempting, the highest priority wins. Among equals
    // the address breaks ties only between two masters: a backup never
    // preempts an equal priority (RFC 9568 §6.4.2), so any of them may hold it.
    if s.routers.iter().all(|r| r.preempt) {
        let best = s.routers.iter().map(|r| r.priority).max().unwrap();
        assert_eq!(s.routers[m].priority, best);
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, ..ProptestConfig::default() })]

    #[test]
    fn lan_settles_on_one_master(s in scenario()) {
        run(&s);
    }
}
