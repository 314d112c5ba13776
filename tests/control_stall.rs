//! F04 / L06: a master whose control thread loses its core keeps
//! advertising.
//!
//! On a virtual machine the hypervisor takes a vCPU away for tens of
//! milliseconds at times, with whatever thread runs on it; when that is the
//! master's control thread, its adverts stop and the backup takes over
//! although the master is alive. Here the same is done on purpose: A's
//! control thread is pinned to core 1 and a real-time busy loop above it
//! holds that core for 200 ms at a time, five times, while A's workers and
//! all of B run on core 0. B's Master_Down_Interval at 10 ms adverts is
//! 36 ms. A's workers send its last adverts when its control thread is late
//! by a quarter of an interval (dataplane `rescue`), so nothing may move and A's
//! adverts on the wire may not pause for a Master_Down_Interval.
//!
//! This file holds a single test, so that its binary runs alone: the busy
//! loop holds a core.

#![allow(clippy::unwrap_used)]

mod common;

use std::net::Ipv4Addr;
use std::thread;
use std::time::{Duration, Instant};

use xvrrp_lab::stall_probe::StallProbe;

use common::{
    adverts::{advert_stamps, Gaps},
    machine_stalled, Pair, Rig,
};

const NAME: &str = "f04_a_master_whose_control_thread_loses_its_core_keeps_advertising";
const INTERVAL: &str = "10ms";
/// A's primary addresses, the sources of its adverts: LAN (VRID 1) and
/// WAN (VRID 2).
const A_LAN: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 2);
const A_WAN: Ipv4Addr = Ipv4Addr::new(203, 0, 113, 2);
/// The core A's control thread is confined to and the busy loop holds.
const HELD_CORE: usize = 1;
/// How long the busy loop holds the core each time, and how often.
const HOLD: Duration = Duration::from_millis(200);
const HOLDS: u32 = 5;
/// Above the control thread (10), below the stall probe (50).
const HOG_RT_PRIORITY: i32 = 40;
/// B's Master_Down_Interval: 3 × 10 ms + (256 − 100) × 10 ms / 256.
const B_MASTER_DOWN: Duration = Duration::from_nanos(36_093_750);

fn cpu_set(core: usize) -> libc::cpu_set_t {
    // SAFETY: cpu_set_t is plain data; all-zero is the empty set.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    // SAFETY: `core` is below CPU_SETSIZE on any machine this runs on.
    unsafe { libc::CPU_SET(core, &mut set) };
    set
}

/// Confines thread `tid` (0: the calling thread) to `core`.
fn pin(tid: i32, core: usize) {
    let set = cpu_set(core);
    // SAFETY: a valid cpu_set_t of the size given.
    let rc = unsafe { libc::sched_setaffinity(tid, std::mem::size_of_val(&set), &set) };
    assert_eq!(
        rc,
        0,
        "sched_setaffinity: {}",
        std::io::Error::last_os_error()
    );
}

/// Holds `core` with a SCHED_FIFO busy loop for [`HOLD`], [`HOLDS`] times,
/// 300 ms apart; returns when done.
fn hold_core(core: usize) {
    thread::spawn(move || {
        pin(0, core);
        let param = libc::sched_param {
            sched_priority: HOG_RT_PRIORITY,
        };
        // SAFETY: sched_setscheduler on the calling thread with a valid param.
        let rc = unsafe { libc::sched_setscheduler(0, libc::SCHED_FIFO, &param) };
        assert_eq!(rc, 0, "SCHED_FIFO: {}", std::io::Error::last_os_error());
        for _ in 0..HOLDS {
            let until = Instant::now() + HOLD;
            while Instant::now() < until {
                std::hint::spin_loop();
            }
            thread::sleep(Duration::from_millis(300));
        }
    })
    .join()
    .unwrap();
}

#[test]
fn f04_a_master_whose_control_thread_loses_its_core_keeps_advertising() {
    let Some(lab) = common::setup(NAME) else {
        return;
    };
    let mut a = common::gateway_config(&lab, "a", 200);
    let mut b = common::gateway_config(&lab, "b", 100);
    for c in [&mut a, &mut b] {
        c.advert_interval = INTERVAL.to_owned();
        c.idle = "adaptive".to_owned();
        // Everything but A's control thread on core 0.
        c.cores = vec![0];
    }
    let mut pair = Pair::start(&lab, &a, &b);
    pair.wait_a_master(common::ELECTION_TIMEOUT);
    let rig = Rig { pair, lab };
    // The control thread is the main thread: its id is the process id.
    let pid_a = rig.pair.a.pid().unwrap();
    pin(i32::try_from(pid_a).unwrap(), HELD_CORE);
    // Settle on the new core before counting.
    thread::sleep(Duration::from_millis(300));
    let before = (
        rig.pair.check(common::transitions(&rig.pair.a)),
        rig.pair.check(common::transitions(&rig.pair.b)),
    );
    let rescued_before = rescued(&rig);
    let probe = StallProbe::start().unwrap();
    let sw = rig.lab.ns("sw");
    let lan = rig.pair.check(advert_stamps(&sw, "a-lan", A_LAN, 1));
    let wan = rig.pair.check(advert_stamps(&sw, "a-wan", A_WAN, 2));

    hold_core(HELD_CORE);

    thread::sleep(Duration::from_millis(200));
    let stalls = probe.finish().unwrap();
    let lan = Gaps::of(&rig.pair.check(lan.finish()));
    let wan = Gaps::of(&rig.pair.check(wan.finish()));
    let after = (
        rig.pair.check(common::transitions(&rig.pair.a)),
        rig.pair.check(common::transitions(&rig.pair.b)),
    );
    let rescued = rescued(&rig).saturating_sub(rescued_before);
    println!("lan-gw: {lan}");
    println!("wan-gw: {wan}");
    println!(
        "adverts A's workers sent in its control thread's place: {rescued}; the machine's own \
         stalls: at worst {:.1} ms; hypervisor steal {}",
        stalls.max.as_secs_f64() * 1000.0,
        stalls.steal_described()
    );
    if machine_stalled(&stalls) && (after != before || lan.max.max(wan.max) >= B_MASTER_DOWN) {
        // Nothing runs when the machine itself stops: only that excuses it.
        println!("NOT COUNTED: a machine stall of {:?}", stalls.max);
        return;
    }
    assert_eq!(after, before, "transitions\n{}", rig.pair.logs());
    for (name, gaps) in [("lan-gw", &lan), ("wan-gw", &wan)] {
        assert!(
            gaps.max < B_MASTER_DOWN,
            "{name}: A's adverts paused {:?}\n{}",
            gaps.max,
            rig.pair.logs()
        );
    }
    // The holds did take the control thread away for longer than B waits.
    assert!(
        rescued > 0,
        "no advert was sent in the control thread's place"
    );
}

/// `adverts_rescued` of A's ports, summed over its workers.
fn rescued(rig: &Rig) -> u64 {
    let stats = rig.pair.check(rig.pair.a.query(&["stats"]));
    ["lan0", "wan0"]
        .iter()
        .map(|p| common::port_counter(&stats, p, "adverts_rescued"))
        .sum()
}
