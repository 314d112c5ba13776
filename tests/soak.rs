//! Soak at a 10 ms advertisement interval (docs/conformance.md L01, F04
//! and F14): A (200) and B (100) in one lab hold their election through 30 s of
//! steady state, 10 s of an operator at A's control socket (priority
//! changes, status, stats, routes, neighbours), 30 s of a full-speed flood of malformed and foreign VRRP
//! with a UDP flow through the gateway, and 15 s with every core taken by a
//! busy loop.
//!
//! B's Master_Down_Interval is 3 × 10 ms + 6 ms of skew: three adverts of A
//! late or lost in a row, and B takes over. A's adverts are captured on its
//! switch port with kernel receive timestamps, so the gaps measured are
//! those on the wire, not those of a capture thread starved by the load.
//!
//! This file holds a single test, so that its binary runs alone: the busy
//! loops must not starve other tests, nor other tests disturb the figures.

#![allow(clippy::unwrap_used)]

mod common;

use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use xvrrp_lab::stall_probe::StallProbe;

use common::{
    adverts::{advert_stamps, Gaps},
    frames, machine_stalled,
    raw::flood,
    Pair, Rig,
};

const NAME: &str = "l01_f04_ten_ms_pair_holds_under_flood_and_cpu_starvation";
/// The advertisement interval under test.
const INTERVAL: Duration = Duration::from_millis(10);
const STEADY: Duration = Duration::from_secs(30);
const OPERATOR: Duration = Duration::from_secs(10);
const FLOOD: Duration = Duration::from_secs(30);
const STARVE: Duration = Duration::from_secs(15);
const CLIENT_IP: [u8; 4] = [192, 0, 2, 100];
/// A's primary addresses, the sources of its adverts: LAN (VRID 1) and
/// WAN (VRID 2).
const A_LAN: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 2);
const A_WAN: Ipv4Addr = Ipv4Addr::new(203, 0, 113, 2);

// ----- flood frames ---------------------------------------------------------------

/// A VRRPv3 advertisement from the client with `version_type`, `vrid` and
/// priority 250 (taken for valid, it would make A step down), 100 ms,
/// address 192.0.2.1, with a correct checksum.
fn v3(version_type: u8, vrid: u8) -> Vec<u8> {
    let mut v = frames::v3(CLIENT_IP, vrid, 250);
    v[0] = version_type;
    frames::fill_v3_checksum(&mut v, CLIENT_IP);
    v
}

/// An Ethernet + IPv4 frame from the client to 224.0.0.18 carrying `vrrp`,
/// with `ttl` and a correct IPv4 header checksum.
fn frame(ttl: u8, vrrp: &[u8]) -> Vec<u8> {
    frames::frame(CLIENT_IP, ttl, vrrp)
}

/// The flood's pattern: an unknown VRID, a bad checksum, TTL 64, two
/// truncations and version 4, each otherwise a valid priority-250 advert
/// for VRID 1.
fn flood_pattern() -> Vec<Vec<u8>> {
    let good = v3(0x31, 1);
    let mut bad_sum = good.clone();
    bad_sum[7] ^= 0x01;
    vec![
        frame(255, &v3(0x31, 77)),
        frame(255, &bad_sum),
        frame(64, &good),
        frame(255, &good[..6]),
        frame(255, &v3(0x41, 1)),
        frame(255, &good[..8]),
    ]
}

// ----- load and readings ----------------------------------------------------------

/// Busy loops, one pinned to each core; killed by PID when dropped, so a
/// failing test never leaves the machine starved.
struct Hogs(Vec<Child>);

impl Hogs {
    fn start() -> Hogs {
        let mut hogs = Hogs(Vec::new());
        for core in ["0", "1"] {
            let child = Command::new("taskset")
                .args(["-c", core, "sh", "-c", "while :; do :; done"])
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .spawn()
                .unwrap();
            hogs.0.push(child);
        }
        hogs
    }
}

impl Drop for Hogs {
    fn drop(&mut self) {
        for child in &mut self.0 {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Transition counters of both appliances.
fn transitions(pair: &Pair) -> (BTreeMap<String, u64>, BTreeMap<String, u64>) {
    (
        pair.check(common::transitions(&pair.a)),
        pair.check(common::transitions(&pair.b)),
    )
}

/// `control.late_wakeups` of `app`'s stats.
fn late_wakeups(app: &common::Appliance) -> u64 {
    let stats = app.query(&["stats"]).unwrap();
    stats["control"]["late_wakeups"]
        .as_u64()
        .unwrap_or_else(|| panic!("no control.late_wakeups in {stats}"))
}

/// Time `app`'s worker threads (`xvrrp-worker*`) have spent runnable but
/// waiting for a CPU (`/proc/PID/task/TID/schedstat`), in all.
fn worker_wait(app: &common::Appliance) -> Duration {
    let Some(pid) = app.pid() else {
        return Duration::ZERO;
    };
    let tasks = std::fs::read_dir(format!("/proc/{pid}/task")).unwrap();
    let mut wait = 0u64;
    for task in tasks.flatten() {
        let comm = std::fs::read_to_string(task.path().join("comm")).unwrap_or_default();
        if !comm.starts_with("xvrrp-worker") {
            continue;
        }
        let stat = std::fs::read_to_string(task.path().join("schedstat")).unwrap_or_default();
        wait += stat
            .split_whitespace()
            .nth(1)
            .and_then(|w| w.parse::<u64>().ok())
            .unwrap_or(0);
    }
    Duration::from_nanos(wait)
}

/// Samples both appliances' states once a second while `busy` holds (at
/// least once); returns the samples where A was not master of every
/// instance or B not backup of every instance.
fn watch(pair: &mut Pair, busy: impl Fn() -> bool) -> Vec<String> {
    let mut wrong = Vec::new();
    let start = Instant::now();
    let mut next = start;
    loop {
        let (a, b) = (pair.a.all_in("master"), pair.b.all_in("backup"));
        if !matches!((&a, &b), (Ok(true), Ok(true))) {
            wrong.push(format!(
                "+{:.1} s: A master {a:?}, B backup {b:?}",
                start.elapsed().as_secs_f64()
            ));
        }
        next += Duration::from_secs(1);
        while Instant::now() < next {
            if !busy() {
                return wrong;
            }
            thread::sleep(Duration::from_millis(50));
        }
    }
}

/// A's adverts during one phase, per instance.
struct Cadence {
    lan: Gaps,
    wan: Gaps,
    /// Whether the machine itself stopped for 3 intervals meanwhile.
    machine_stalled: bool,
}

impl Cadence {
    /// The largest gap of either instance.
    fn max(&self) -> Duration {
        self.lan.max.max(self.wan.max)
    }

    /// Whether the largest gap stayed under `bound`, or the machine itself
    /// stopped long enough to explain it.
    fn held(&self, bound: Duration) -> bool {
        self.max() < bound || self.machine_stalled
    }
}

/// F14: an operator at A's control socket for `OPERATOR`: A's priority
/// moved between 150 and 200 (above B's 100) and every reading command,
/// one client after another. Returns the commands run.
fn operate(socket: String) -> u32 {
    let started = Instant::now();
    let mut runs = 0u32;
    let commands: [&[&str]; 6] = [
        &["priority", "lan-gw", "150"],
        &["status", "--json"],
        &["stats", "--json"],
        &["priority", "lan-gw", "200"],
        &["routes", "--json"],
        &["neighbors", "--json"],
    ];
    while started.elapsed() < OPERATOR {
        for args in commands {
            let out = Command::new(common::XVRRP)
                .arg("-s")
                .arg(&socket)
                .args(args)
                .stdin(Stdio::null())
                .output()
                .unwrap();
            assert!(
                out.status.success(),
                "xvrrp {args:?}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            runs += 1;
        }
    }
    runs
}

/// Runs one phase: captures A's adverts on both switch ports while `run`
/// runs, sampling the states each second; asserts that nobody moved and
/// returns what `run` returned and the adverts' gaps.
fn phase<T>(rig: &mut Rig, label: &str, run: impl FnOnce() -> T + Send + 'static) -> (T, Cadence)
where
    T: Send + 'static,
{
    let before = transitions(&rig.pair);
    let late = late_wakeups(&rig.pair.a);
    let waited = worker_wait(&rig.pair.a);
    let started = Instant::now();
    let probe = StallProbe::start().unwrap();
    let sw = rig.lab.ns("sw");
    let lan = rig.pair.check(advert_stamps(&sw, "a-lan", A_LAN, 1));
    let wan = rig.pair.check(advert_stamps(&sw, "a-wan", A_WAN, 2));
    let worker = thread::spawn(run);
    let wrong = watch(&mut rig.pair, || !worker.is_finished());
    let out = worker.join().unwrap();
    let stalls = probe.finish().unwrap();
    let cadence = Cadence {
        lan: Gaps::of(&rig.pair.check(lan.finish())),
        wan: Gaps::of(&rig.pair.check(wan.finish())),
        machine_stalled: machine_stalled(&stalls),
    };
    let after = transitions(&rig.pair);
    println!("{label}: lan-gw {}", cadence.lan);
    println!("{label}: wan-gw {}", cadence.wan);
    let waited = worker_wait(&rig.pair.a).saturating_sub(waited);
    println!(
        "{label}: late wake-ups of A's control thread +{}; A's worker waited for a CPU \
         {:.0} ms in {:.1} s ({:.1} %)",
        late_wakeups(&rig.pair.a).saturating_sub(late),
        waited.as_secs_f64() * 1000.0,
        started.elapsed().as_secs_f64(),
        waited.as_secs_f64() * 100.0 / started.elapsed().as_secs_f64()
    );
    println!(
        "{label}: the machine's own stalls: a SCHED_FIFO thread above the control threads woke \
         at worst {:.1} ms late ({} times over 10 ms); hypervisor steal {}",
        stalls.max.as_secs_f64() * 1000.0,
        stalls.over_10ms,
        stalls.steal_described()
    );
    if (!wrong.is_empty() || after != before) && cadence.machine_stalled {
        // Nothing runs when the machine itself stops: not the appliance's
        // timers, not its peer's. Only such a stall excuses a move.
        println!(
            "{label}: NOT COUNTED: transitions {before:?} → {after:?}, states {wrong:?}, during a \
             machine stall of {:.1} ms (≥ 3 intervals)",
            stalls.max.as_secs_f64() * 1000.0
        );
        return (out, cadence);
    }
    assert!(wrong.is_empty(), "{label}: {wrong:?}\n{}", rig.pair.logs());
    assert_eq!(after, before, "{label}: transitions\n{}", rig.pair.logs());
    (out, cadence)
}

#[test]
fn l01_f04_ten_ms_pair_holds_under_flood_and_cpu_starvation() {
    let Some(lab) = common::setup(NAME) else {
        return;
    };
    // Only the last phase (busy loops) needs it: check before the first.
    common::require(&["taskset"]);
    let interval = format!("{}ms", INTERVAL.as_millis());
    let mut a = common::gateway_config(&lab, "a", 200);
    let socket_a = a.control_socket.clone();
    let mut b = common::gateway_config(&lab, "b", 100);
    a.advert_interval.clone_from(&interval);
    b.advert_interval = interval;
    a.idle = "adaptive".to_owned();
    b.idle = "adaptive".to_owned();
    let mut pair = Pair::start(&lab, &a, &b);
    pair.wait_a_master(common::ELECTION_TIMEOUT);
    let mut rig = Rig { pair, lab };
    let started = Instant::now();

    // 1. Steady state.
    let (_, steady) = phase(&mut rig, "steady", || thread::sleep(STEADY));

    // 2. An operator at A's control socket (F14).
    let (commands, operated) = phase(&mut rig, "operator", move || operate(socket_a));
    println!("operator: {commands} commands in {} s", OPERATOR.as_secs());

    // 3. Flood with a flow through the gateway.
    let f = rig.flowing(2000);
    let client = rig.lab.ns("client");
    let ((sent, took), flooded) = phase(&mut rig, "flood", move || {
        let r = flood(&client, flood_pattern(), FLOOD, None).unwrap();
        (r.total(), r.elapsed)
    });
    let flow_report = f.stop().unwrap();
    let rate = sent as f64 / took.as_secs_f64();
    println!(
        "flood: {sent} frames in {:.1} s = {rate:.0} frames/s; flow: {flow_report}",
        took.as_secs_f64()
    );
    assert!(
        flow_report.lost * 4 < flow_report.sent,
        "flow lost too much: {flow_report}"
    );
    let late_before = late_wakeups(&rig.pair.a);

    // 4. Every core contended by a busy loop.
    let hogs = Hogs::start();
    let (_, starved) = phase(&mut rig, "starvation", || thread::sleep(STARVE));
    drop(hogs);
    println!(
        "late wake-ups of A: {late_before} before starvation, {} after",
        late_wakeups(&rig.pair.a)
    );
    println!(
        "summary: largest advert gap steady {:.2} ms, operator {:.2} ms, flood {:.2} ms, \
         starvation {:.2} ms; total {:.0} s",
        steady.max().as_secs_f64() * 1000.0,
        operated.max().as_secs_f64() * 1000.0,
        flooded.max().as_secs_f64() * 1000.0,
        starved.max().as_secs_f64() * 1000.0,
        started.elapsed().as_secs_f64()
    );
    // The capture saw A's cadence (at least 90 % of the adverts due on each
    // port), and no gap reached B's Master_Down_Interval, the bound that
    // matters: 3 × 10 ms + Skew_Time at priority 100, (256 − 100) × 10 ms /
    // 256 = 6.09375 ms. (Typical maxima are 13–19 ms; the worker that sends
    // the adverts is not real-time, so an unlucky schedule on a loaded CI
    // machine can reach three intervals.)
    let due = usize::try_from(STARVE.as_millis() / INTERVAL.as_millis()).unwrap();
    for gaps in [&starved.lan, &starved.wan] {
        assert!(gaps.adverts >= due * 9 / 10, "captured {gaps}");
    }
    let b_master_down = INTERVAL * 3 + Duration::from_nanos(6_093_750);
    assert!(
        operated.held(b_master_down),
        "operator: largest advert gap {:?}\n{}",
        operated.max(),
        rig.pair.logs()
    );
    assert!(
        starved.held(b_master_down),
        "starvation: largest advert gap {:?}\n{}",
        starved.max(),
        rig.pair.logs()
    );
}
