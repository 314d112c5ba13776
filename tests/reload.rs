//! `xvrrp reload` and SIGHUP in the lab: A (priority 200, master of
//! `lan-gw` and `wan-gw`) and B (priority 100). A's file is rewritten and
//! read again while a flow crosses the gateway: instances that did not
//! change keep their state and lose no datagram, an added instance answers
//! for its address, a removed one stops, a new priority moves the master,
//! and a bad file or a change that needs a restart is refused with the
//! running configuration kept.

#![allow(clippy::unwrap_used)]

mod common;

use std::net::{IpAddr, Ipv4Addr};
use std::process::Command;
use std::sync::Mutex;
use std::thread;
use std::time::Duration;

use common::{flow, gateway_config, lab, netns, Neighbour, Rig, NO_STOP, XVRRP};

const EXTRA_VIP: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 50);
const EXTRA_VIP2: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 51);
const EXTRA_VMAC: &str = "00:00:5e:00:01:03";
const SERVER: Ipv4Addr = Ipv4Addr::new(203, 0, 113, 100);
const ELECTION: Duration = Duration::from_secs(10);

/// A's standard file plus `extra` (VRID 3 on lan0, answering pings) with
/// these addresses, or the standard file alone.
fn a_config(rig: &Rig, vrid: u8, extra: &[Ipv4Addr]) -> String {
    let mut text = gateway_config(&rig.lab, "a", 200).render();
    if !extra.is_empty() {
        let addrs: Vec<String> = extra.iter().map(|a| format!("\"{a}/24\"")).collect();
        text.push_str(&format!(
            "\n[[vrrp]]\nname = \"extra\"\nport = \"lan0\"\nvrid = {vrid}\npriority = 200\nadvert_interval = \"{}\"\naccept = true\naddresses = [{}]\n",
            common::TEST_INTERVAL,
            addrs.join(", ")
        ));
    }
    text
}

/// Only one of this file's tests starts its pair at a time: the kernel's
/// BPF verifier checks each daemon's filters for seconds of CPU, and six at
/// once on a busy 2-core machine outlast the election timeout.
static STARTING: Mutex<()> = Mutex::new(());

/// The lab with A (200) master and B (100) backup, in the standard sync
/// group or (`grouped` false) without one.
fn rig(test: &str, grouped: bool) -> Option<Rig> {
    let _one = STARTING
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    if grouped {
        return Rig::standard(test);
    }
    let lab = common::setup(test)?;
    let pair = common::Pair::start(&lab, &ungrouped(&lab, "a", 200), &ungrouped(&lab, "b", 100));
    let mut rig = Rig { pair, lab };
    rig.pair.wait_a_master(common::ELECTION_TIMEOUT);
    Some(rig)
}

fn names(reply: &serde_json::Value, key: &str) -> Vec<String> {
    reply[key]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|v| v.as_str().map(str::to_owned))
        .collect()
}

/// `xvrrp reload` as an operator types it: (exit success, stdout, stderr).
fn reload_cli(rig: &Rig) -> (bool, String, String) {
    let out = Command::new(XVRRP)
        .args(["-s", &common::socket_path(&rig.lab, "a"), "reload"])
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn wait_state(rig: &mut Rig, name: &str, state: &str) {
    let a = &rig.pair.a;
    let r = lab::wait_until(&format!("A's {name} {state}"), ELECTION, &NO_STOP, || {
        Ok(a.states()?.get(name).map(String::as_str) == Some(state))
    });
    rig.pair.check(r);
}

#[test]
fn reload_adds_and_removes_an_instance_without_loss_for_the_others() {
    let Some(mut rig) = rig("reload_adds_and_removes_an_instance_without_loss", true) else {
        return;
    };
    let before = (
        common::transitions(&rig.pair.a).unwrap(),
        common::transitions(&rig.pair.b).unwrap(),
    );
    let f = rig.flowing(2000);
    thread::sleep(Duration::from_millis(300));

    std::fs::write(rig.pair.a.config_path(), a_config(&rig, 3, &[EXTRA_VIP])).unwrap();
    let reply = rig.pair.check(rig.pair.a.query(&["reload"]));
    eprintln!("$ xvrrp reload --json\n{reply:#}");
    assert_eq!(names(&reply, "added"), ["extra"], "{reply}");
    assert_eq!(names(&reply, "unchanged"), ["lan-gw", "wan-gw"], "{reply}");
    assert!(names(&reply, "removed").is_empty(), "{reply}");
    wait_state(&mut rig, "extra", "master");
    let client = rig.lab.ns("client");
    let extra = IpAddr::V4(EXTRA_VIP);
    let mac = rig.pair.check(common::resolved_mac(
        &client,
        extra,
        extra,
        2,
        Neighbour::Keep,
    ));
    assert_eq!(mac.as_deref(), Some(EXTRA_VMAC));

    // A second address on the master: answered at once, no new election.
    let extra_transitions = common::instance_field(&rig.pair.a, "extra", "transitions");
    std::fs::write(
        rig.pair.a.config_path(),
        a_config(&rig, 3, &[EXTRA_VIP, EXTRA_VIP2]),
    )
    .unwrap();
    let (ok, stdout, stderr) = reload_cli(&rig);
    eprintln!("$ xvrrp reload\n{stdout}");
    assert!(ok, "{stderr}\n{}", rig.pair.logs());
    assert!(stdout.contains("changed    extra (addresses)"), "{stdout}");
    rig.pair.check(flow::ping(
        &client,
        IpAddr::V4(EXTRA_VIP2),
        2,
        Duration::from_secs(5),
    ));
    assert_eq!(
        common::instance_field(&rig.pair.a, "extra", "transitions"),
        extra_transitions
    );

    // Another VRID makes another virtual router: it starts over, and the
    // same address is answered from the new virtual MAC.
    std::fs::write(
        rig.pair.a.config_path(),
        a_config(&rig, 4, &[EXTRA_VIP, EXTRA_VIP2]),
    )
    .unwrap();
    let (ok, stdout, stderr) = reload_cli(&rig);
    eprintln!("$ xvrrp reload\n{stdout}");
    assert!(ok, "{stderr}\n{}", rig.pair.logs());
    assert!(
        stdout.contains("changed    extra (vrid; restarted)"),
        "{stdout}"
    );
    wait_state(&mut rig, "extra", "master");
    let mac = rig.pair.check(common::resolved_mac(
        &client,
        extra,
        extra,
        2,
        Neighbour::Flush,
    ));
    assert_eq!(mac.as_deref(), Some("00:00:5e:00:01:04"));

    std::fs::write(rig.pair.a.config_path(), a_config(&rig, 0, &[])).unwrap();
    let (ok, stdout, stderr) = reload_cli(&rig);
    eprintln!("$ xvrrp reload\n{stdout}");
    assert!(ok, "{stderr}\n{}", rig.pair.logs());
    assert!(stdout.contains("removed    extra"), "{stdout}");
    assert!(stdout.contains("unchanged  lan-gw, wan-gw"), "{stdout}");
    let states = rig.pair.check(rig.pair.a.states());
    assert!(!states.contains_key("extra"), "{states:?}");
    // The removed instance's address is no longer answered.
    common::flush_neighbour(&client, extra).unwrap();
    assert!(
        flow::ping(&client, extra, 1, Duration::from_secs(2)).is_err(),
        "{EXTRA_VIP} still answers after its instance was removed"
    );

    thread::sleep(Duration::from_millis(300));
    let report = f.stop().unwrap();
    eprintln!("four reloads under the flow: {report}");
    assert!(report.received > 0, "{report}");
    assert_eq!(report.lost, 0, "{report}\n{}", rig.pair.logs());
    let after = (
        common::transitions(&rig.pair.a).unwrap(),
        common::transitions(&rig.pair.b).unwrap(),
    );
    assert_eq!(before, after, "an unchanged instance changed state");
    // And the gateway still forwards.
    rig.pair.check(flow::ping(
        &client,
        IpAddr::V4(SERVER),
        2,
        Duration::from_secs(5),
    ));
}

#[test]
fn reload_refuses_a_bad_file_and_a_restart_only_change() {
    let Some(mut rig) = rig("reload_refuses_a_bad_file_and_a_restart_only_change", true) else {
        return;
    };
    let path = rig.pair.a.config_path().to_path_buf();
    let good = std::fs::read_to_string(&path).unwrap();
    // Line 2 of the bad file: a priority out of range.
    std::fs::write(&path, good.replacen("priority = 200", "priority = 300", 1)).unwrap();
    let (ok, stdout, stderr) = reload_cli(&rig);
    assert!(!ok, "a bad file was accepted: {stdout}");
    let origin = format!("{}:", path.display());
    let located = stderr.lines().any(|l| {
        l.split_once(&origin).is_some_and(|(_, rest)| {
            let mut parts = rest.splitn(3, ':');
            let (line, col) = (parts.next(), parts.next());
            line.is_some_and(|n| n.parse::<u32>().is_ok())
                && col.is_some_and(|n| n.parse::<u32>().is_ok())
        })
    });
    assert!(located, "no FILE:LINE:COL error in: {stderr}");
    assert!(stderr.contains("priority"), "{stderr}");

    std::fs::write(&path, good.replace("cores = [0]", "cores = [0, 1]")).unwrap();
    eprintln!("$ xvrrp reload\n{stderr}");
    let (ok, _, stderr) = reload_cli(&rig);
    assert!(!ok);
    assert!(stderr.contains("dataplane.cores"), "{stderr}");
    eprintln!("$ xvrrp reload\n{stderr}");

    // The running configuration stayed: A is still master of both.
    rig.pair.wait_a_master(ELECTION);
    let status = rig.pair.check(rig.pair.a.query(&["status"]));
    for i in lab::instances(&status) {
        assert_eq!(i["priority"], 200, "{i}");
    }
    // SIGHUP with the bad file: logged, nothing changes.
    std::fs::write(&path, good.replacen("priority = 200", "priority = 300", 1)).unwrap();
    netns::signal(rig.pair.a.pid().unwrap(), libc::SIGHUP).unwrap();
    let log = rig.pair.a.log_path().to_path_buf();
    let r = lab::wait_until("the refusal in A's log", ELECTION, &NO_STOP, || {
        Ok(std::fs::read_to_string(&log)?.contains("reload refused"))
    });
    rig.pair.check(r);
    rig.pair.wait_a_master(ELECTION);

    // A static route added by a reload is forwarded by at once: the
    // server's 198.51.100.1 is reachable only through it.
    let (client, server) = (rig.lab.ns("client"), rig.lab.ns("server"));
    netns::ip(&["-n", &server, "link", "set", "lo", "up"]).unwrap();
    netns::ip(&["-n", &server, "addr", "add", "198.51.100.1/32", "dev", "lo"]).unwrap();
    let far = IpAddr::V4(Ipv4Addr::new(198, 51, 100, 1));
    assert!(flow::ping(&client, far, 1, Duration::from_secs(1)).is_err());
    let routed = format!(
        "{good}\n[[route]]\nto = \"198.51.100.0/24\"\nvia = \"{SERVER}\"\nport = \"wan0\"\n"
    );
    std::fs::write(&path, routed).unwrap();
    // A subscriber hears of the reload.
    let socket = common::socket_path(&rig.lab, "a");
    let events = rig.pair.check(
        xvrrp_control::ctl_socket::subscribe(std::path::Path::new(&socket))
            .map_err(anyhow::Error::from),
    );
    let (tx, rx) = std::sync::mpsc::channel();
    // Ends when the daemon closes the connection at the end of the test.
    thread::spawn(move || {
        for event in events {
            if tx.send(event).is_err() {
                return;
            }
        }
    });
    let reply = rig.pair.check(rig.pair.a.query(&["reload"]));
    assert_eq!(reply["routes_changed"], true, "{reply}");
    assert_eq!(names(&reply, "unchanged"), ["lan-gw", "wan-gw"], "{reply}");
    let event = loop {
        let event = rx.recv_timeout(ELECTION).unwrap().unwrap();
        if event["event"] == "reload" {
            break event;
        }
    };
    assert_eq!(event["routes_changed"], true, "{event}");
    assert_eq!(names(&event, "unchanged"), ["lan-gw", "wan-gw"], "{event}");
    rig.pair
        .check(flow::ping(&client, far, 2, Duration::from_secs(5)));
}

/// `name`'s configuration without the sync group, whose hold would keep
/// B from preempting once it has yielded to A (README, sync groups).
fn ungrouped(lab: &common::Lab, name: &str, priority: u8) -> common::ApplianceConfig {
    let mut c = gateway_config(lab, name, priority);
    c.sync_group = false;
    c
}

#[test]
fn sighup_applies_a_new_priority_and_preemption_moves_the_master() {
    let test = "sighup_applies_a_new_priority_and_preemption_moves_the_master";
    let Some(mut rig) = rig(test, false) else {
        return;
    };
    let path = rig.pair.a.config_path().to_path_buf();
    std::fs::write(&path, ungrouped(&rig.lab, "a", 50).render()).unwrap();
    netns::signal(rig.pair.a.pid().unwrap(), libc::SIGHUP).unwrap();
    // B (100, preempting) takes over from A now at 50.
    rig.pair.wait_b_master(ELECTION);
    let a = &mut rig.pair.a;
    let r = lab::wait_until("A backup", ELECTION, &NO_STOP, || a.all_in("backup"));
    rig.pair.check(r);
    let status = rig.pair.check(rig.pair.a.query(&["status"]));
    for i in lab::instances(&status) {
        assert_eq!(i["priority"], 50, "{i}");
    }
    let text = std::fs::read_to_string(rig.pair.a.log_path()).unwrap();
    assert!(text.contains("configuration reloaded"), "{text}");
}
