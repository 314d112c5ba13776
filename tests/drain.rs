//! Planned handover (`xvrrp drain` / `xvrrp resume`, and the confirmed
//! drain on SIGTERM) with the standard pair, A (priority 200, master) and B
//! (100), both routers in one sync group, under a steady 2000 datagram/s
//! flow from the client to the server through the gateway: a drain loses
//! no datagram, because the master keeps forwarding until it hears B
//! advertise as master.

#![allow(clippy::unwrap_used)]

mod common;

use std::thread;
use std::time::Duration;

use common::{lab, Appliance, Rig, NO_STOP};

/// A handover must complete well within this on a loaded machine.
const HANDOVER_TIMEOUT: Duration = Duration::from_secs(5);
/// The flow's rate, datagrams per second.
const RATE: u32 = 2000;
/// Datagrams a resume (a preempt takeover) may lose: see its test.
const RESUME_LOSS_BOUND: u64 = 10;

/// Instance name → `drain` field (`"draining"`, `"drained"` or `"-"` for null).
fn drain_states(app: &Appliance) -> anyhow::Result<Vec<(String, String)>> {
    let reply = app.query(&["status"])?;
    Ok(lab::instances(&reply)
        .map(|i| {
            (
                i["name"].as_str().unwrap_or_default().to_owned(),
                i["drain"].as_str().unwrap_or("-").to_owned(),
            )
        })
        .collect())
}

/// Waits until every instance of `app` is in drain state `want`.
fn wait_drain(rig: &Rig, app: &Appliance, want: &str) {
    let r = lab::wait_until(
        &format!("{} {want}", app.name()),
        HANDOVER_TIMEOUT,
        &NO_STOP,
        || Ok(drain_states(app)?.iter().all(|(_, d)| d == want)),
    );
    rig.pair.check(r);
}

#[test]
fn drain_of_the_master_loses_no_datagram_and_it_stays_out_until_resumed() {
    let Some(mut rig) = Rig::standard("drain_of_the_master_loses_no_datagram") else {
        return;
    };
    let f = rig.flowing(RATE);
    thread::sleep(Duration::from_millis(500));
    // Draining lan-gw drains its sync group (wan-gw too).
    let reply = rig.pair.check(rig.pair.a.query(&["drain", "lan-gw"]));
    let drains: Vec<&str> = lab::instances(&reply)
        .filter_map(|i| i["drain"].as_str())
        .collect();
    assert_eq!(drains, ["draining", "draining"], "{reply}");
    rig.pair.wait_b_master(HANDOVER_TIMEOUT);
    wait_drain(&rig, &rig.pair.a, "drained");
    thread::sleep(Duration::from_millis(500));
    let report = f.stop().unwrap();
    eprintln!("drain: {report}");
    assert_eq!(report.lost, 0, "{report}\n{}", rig.pair.logs());
    // A (200, preempting) stays backup while drained.
    thread::sleep(Duration::from_secs(1));
    let a = rig.pair.check(rig.pair.a.states());
    assert!(a.values().all(|s| s == "backup"), "{a:?}");
    let status = rig.pair.check(rig.pair.a.query(&["status"]));
    for i in lab::instances(&status) {
        assert!(i["master"].as_str().unwrap().ends_with(".3"), "{i}");
    }
    // Resume gives the addresses back (preempt), and the flow keeps going.
    let f = rig.flowing(RATE);
    thread::sleep(Duration::from_millis(300));
    let reply = rig.pair.check(rig.pair.a.query(&["resume", "wan-gw"]));
    assert_eq!(lab::instances(&reply).count(), 2, "{reply}");
    rig.pair.wait_a_master(HANDOVER_TIMEOUT);
    wait_drain(&rig, &rig.pair.a, "-");
    thread::sleep(Duration::from_millis(500));
    let report = f.stop().unwrap();
    eprintln!("resume: {report}");
    // Resume is a preempt takeover, not a drain: B's routers step down as
    // they hear A's (RFC 9568 §6.4.3), but B's sync group takes its second
    // router down as soon as the first hears A, which can drop the frames
    // already on their way to B on the other side: 0 in most runs, at most
    // 2 at this rate in 15 resumes measured. A takeover that waited for a
    // Master_Down_Interval would lose some 700 here.
    assert!(
        report.lost <= RESUME_LOSS_BOUND,
        "{report}\n{}",
        rig.pair.logs()
    );
}

#[test]
fn sigterm_of_the_master_hands_over_without_loss() {
    let Some(mut rig) = Rig::standard("sigterm_of_the_master_hands_over_without_loss") else {
        return;
    };
    let f = rig.flowing(RATE);
    thread::sleep(Duration::from_millis(500));
    rig.pair.a.stop().unwrap();
    rig.pair.wait_b_master(HANDOVER_TIMEOUT);
    thread::sleep(Duration::from_millis(500));
    let report = f.stop().unwrap();
    eprintln!("SIGTERM: {report}");
    let log = rig.pair.a.log_tail(40);
    assert_eq!(report.lost, 0, "{report}\n{}", rig.pair.logs());
    for name in ["lan-gw", "wan-gw"] {
        assert!(
            log.lines()
                .any(|l| l.contains("stop: handover confirmed") && l.contains(name)),
            "{name} not confirmed:\n{log}"
        );
    }
}

/// With no peer, a drained master keeps the addresses and forwarding,
/// advertising priority 0 and reporting "draining"; `drain --wait` says it
/// is still waiting. Once a peer starts it takes over and the master hands
/// over, which `drain --wait` reports with the new master.
#[test]
fn drain_all_with_no_peer_keeps_forwarding_until_one_comes() {
    let Some(mut rig) = Rig::standard("drain_all_with_no_peer_keeps_forwarding") else {
        return;
    };
    rig.pair.b.kill().unwrap();
    let f = rig.flowing(RATE);
    let reply = rig.pair.check(rig.pair.a.query(&["drain", "--all"]));
    assert_eq!(lab::instances(&reply).count(), 2, "{reply}");
    let err = rig
        .pair
        .a
        .query(&["drain", "--all", "--wait", "--timeout", "1"])
        .unwrap_err();
    assert!(format!("{err:#}").contains("still draining"), "{err:#}");
    let states = rig.pair.check(rig.pair.a.states());
    assert!(states.values().all(|s| s == "master"), "{states:?}");
    let drains = rig.pair.check(drain_states(&rig.pair.a));
    assert!(drains.iter().all(|(_, d)| d == "draining"), "{drains:?}");
    // Unknown names are refused.
    let err = rig.pair.a.query(&["drain", "nope"]).unwrap_err();
    assert!(
        format!("{err:#}").contains("no instance named nope"),
        "{err:#}"
    );
    // B comes back: it hears priority 0 and takes over after Skew_Time.
    rig.pair.b.start().unwrap();
    let done = rig.pair.check(
        rig.pair
            .a
            .query(&["drain", "--all", "--wait", "--timeout", "30"]),
    );
    for i in lab::instances(&done) {
        assert_eq!(i["drain"], "drained", "{done}");
        assert!(i["master"].as_str().unwrap().ends_with(".3"), "{done}");
    }
    rig.pair.wait_b_master(HANDOVER_TIMEOUT);
    thread::sleep(Duration::from_millis(300));
    let report = f.stop().unwrap();
    eprintln!("drain with no peer, then one: {report}");
    assert_eq!(report.lost, 0, "{report}\n{}", rig.pair.logs());
}
