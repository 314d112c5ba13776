//! The namespace lab and the traffic tools, without the daemon: the lab
//! builds, works at layer 2 and leaves nothing behind; the UDP flow
//! measures no loss through a working gateway and measures an outage.
//!
//! For the flow tests this file makes gw-a a plain kernel router (VIPs on
//! its interfaces, ip_forward on) inside the test's own namespaces only:
//! that validates the measurement independently of xvrrp.

#![allow(clippy::unwrap_used)]

mod common;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::process::Command;
use std::thread;
use std::time::Duration;

use common::{flow, lab, netns, XVRRP};

const ROLES: [&str; 5] = ["sw", "client", "gw-a", "gw-b", "server"];

fn v4(a: u8, b: u8, c: u8, d: u8) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(a, b, c, d))
}

fn namespaces_of(prefix: &str) -> Vec<String> {
    let out = netns::ip(&["netns", "list"]).unwrap();
    out.lines()
        .filter_map(|l| l.split_whitespace().next())
        .filter(|n| n.starts_with(&format!("{prefix}-")))
        .map(str::to_owned)
        .collect()
}

#[test]
fn lab_up_builds_a_working_lab_and_down_leaves_nothing() {
    let Some(lab) = common::setup("lab_up_builds_a_working_lab_and_down_leaves_nothing") else {
        return;
    };
    let prefix = lab.prefix().to_owned();
    let mut found = namespaces_of(&prefix);
    found.sort();
    let mut want: Vec<String> = ROLES.iter().map(|r| format!("{prefix}-{r}")).collect();
    want.sort();
    assert_eq!(found, want);

    // Addresses and layer 2: every host reaches the gateways' own addresses.
    let client = lab.ns("client");
    let server = lab.ns("server");
    assert!(common::ip_on_any_interface(&client, v4(192, 0, 2, 100)).unwrap());
    for (ns, dst) in [
        (&client, v4(192, 0, 2, 2)),
        (&client, v4(192, 0, 2, 3)),
        (&client, "2001:db8:1::2".parse().unwrap()),
        (&server, v4(203, 0, 113, 2)),
        (&server, v4(203, 0, 113, 3)),
        (&server, "2001:db8:2::3".parse().unwrap()),
    ] {
        flow::ping(ns, dst, 1, Duration::from_secs(3)).unwrap();
    }
    // Nobody owns the VIPs and the gateways do not forward: the server is
    // unreachable from the client until an appliance runs.
    for gw in ["gw-a", "gw-b"] {
        let ns = lab.ns(gw);
        assert!(!common::ip_on_any_interface(&ns, v4(192, 0, 2, 1)).unwrap());
        let fwd = netns::run_in(&ns, || {
            Ok(std::fs::read_to_string("/proc/sys/net/ipv4/ip_forward")?)
        })
        .unwrap();
        assert_eq!(fwd.trim(), "0", "{gw} forwards");
    }
    assert!(flow::ping(&client, v4(203, 0, 113, 100), 1, Duration::from_secs(1)).is_err());

    // Status lists it; a second `up` replaces it (idempotent).
    let status = lab::status(&prefix).unwrap();
    assert!(status.contains(&format!("{prefix}-gw-a:")), "{status}");
    assert!(status.contains("192.0.2.2/24"), "{status}");
    let again = lab::Lab::up(&prefix).unwrap();
    again.keep();
    assert_eq!(namespaces_of(&prefix).len(), 5);

    drop(lab);
    assert!(namespaces_of(&prefix).is_empty());
    assert!(lab::teardown(&prefix).unwrap().is_empty(), "down twice");
    assert!(lab::status(&prefix).unwrap().contains("is down"));
    // Nothing was ever created in the root namespace.
    let root_links = netns::ip(&["-br", "link", "show"]).unwrap();
    for peer in ["c-lan", "a-lan", "a-wan", "b-lan", "b-wan", "s-wan"] {
        assert!(
            !root_links
                .lines()
                .any(|l| l.starts_with(&format!("{peer}@"))),
            "{peer} in the root namespace"
        );
    }
}

#[test]
fn lab_down_stops_processes_left_in_the_lab() {
    let Some(lab) = common::setup("lab_down_stops_processes_left_in_the_lab") else {
        return;
    };
    let mut child = netns::spawn(
        &lab.ns("gw-a"),
        "sleep",
        &["60"],
        std::process::Stdio::null(),
        std::process::Stdio::null(),
    )
    .unwrap();
    let pid = child.id();
    lab::wait_until(
        "sleep to enter the lab",
        Duration::from_secs(3),
        &common::NO_STOP,
        || Ok(netns::pids(&lab.ns("gw-a"))?.contains(&pid)),
    )
    .unwrap();
    let prefix = lab.prefix().to_owned();
    drop(lab);
    let status = child.wait().unwrap();
    assert!(!status.success(), "sleep was not stopped: {status}");
    assert!(namespaces_of(&prefix).is_empty());
}

#[test]
fn lab_cli_up_status_down() {
    if !common::supported("lab_cli_up_status_down") {
        return;
    }
    let prefix = common::prefix_for("lab_cli_up_status_down");
    // Removes the lab whatever happens below.
    struct Down(String);
    impl Drop for Down {
        fn drop(&mut self) {
            let _ = lab::teardown(&self.0);
        }
    }
    let _down = Down(prefix.clone());
    let run = |args: &[&str]| {
        let out = Command::new(XVRRP).args(args).output().unwrap();
        assert!(
            out.status.success(),
            "xvrrp {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    run(&["lab", "up", "--prefix", &prefix]);
    assert_eq!(namespaces_of(&prefix).len(), 5);
    let status = run(&["lab", "--prefix", &prefix, "status"]);
    assert!(status.contains("203.0.113.100/24"), "{status}");
    run(&["lab", "down", "--prefix", &prefix]);
    assert!(namespaces_of(&prefix).is_empty());
    let status = run(&["lab", "status", "--prefix", &prefix]);
    assert!(status.contains("is down"), "{status}");
    run(&["lab", "down", "--prefix", &prefix]);

    let bad = Command::new(XVRRP)
        .args(["lab", "up", "--prefix", "No-Good"])
        .output()
        .unwrap();
    assert!(!bad.status.success());
    let stderr = String::from_utf8_lossy(&bad.stderr);
    assert!(stderr.contains("invalid lab prefix"), "{stderr}");
}

/// Makes gw-a a kernel router owning both VIPs, for this test only.
fn kernel_gateway(lab: &lab::Lab) {
    let gw = lab.ns("gw-a");
    netns::ip(&["-n", &gw, "addr", "add", "192.0.2.1/24", "dev", "lan0"]).unwrap();
    netns::ip(&["-n", &gw, "addr", "add", "203.0.113.1/24", "dev", "wan0"]).unwrap();
    common::sysctl(&gw, "net.ipv4.ip_forward", "1");
}

fn server_dst() -> SocketAddr {
    SocketAddr::from((Ipv4Addr::new(203, 0, 113, 100), flow::DEFAULT_PORT))
}

#[test]
fn flow_measures_no_loss_through_a_working_gateway() {
    let Some(lab) = common::setup("flow_measures_no_loss_through_a_working_gateway") else {
        return;
    };
    kernel_gateway(&lab);
    // Resolve the path first so the flow's first datagrams do not wait on ARP.
    flow::ping(
        &lab.ns("client"),
        v4(203, 0, 113, 100),
        1,
        Duration::from_secs(3),
    )
    .unwrap();
    let f = flow::Flow::start(&lab.ns("client"), &lab.ns("server"), server_dst(), 2000).unwrap();
    thread::sleep(Duration::from_millis(1500));
    assert!(f.received() > 0);
    let r = f.stop().unwrap();
    assert!(r.sent >= 1500, "{r}");
    assert_eq!(r.lost, 0, "{r}");
    assert_eq!(r.received, r.sent, "{r}");
    assert_eq!(r.duplicates, 0, "{r}");
    assert_eq!(r.send_errors, 0, "{r}");
    // At 2000 datagrams/s arrivals are 0.5 ms apart; allow for a busy host.
    assert!(r.max_gap_ms < 200.0, "{r}");
}

#[test]
fn flow_measures_an_outage() {
    let Some(lab) = common::setup("flow_measures_an_outage") else {
        return;
    };
    kernel_gateway(&lab);
    flow::ping(
        &lab.ns("client"),
        v4(203, 0, 113, 100),
        1,
        Duration::from_secs(3),
    )
    .unwrap();
    let f = flow::Flow::start(&lab.ns("client"), &lab.ns("server"), server_dst(), 2000).unwrap();
    thread::sleep(Duration::from_millis(500));
    // A 400 ms outage: the gateway stops forwarding.
    common::sysctl(&lab.ns("gw-a"), "net.ipv4.ip_forward", "0");
    thread::sleep(Duration::from_millis(400));
    common::sysctl(&lab.ns("gw-a"), "net.ipv4.ip_forward", "1");
    thread::sleep(Duration::from_millis(500));
    let r = f.stop().unwrap();
    // 400 ms at 2000/s is 800 datagrams; the sysctl writes take a little
    // time, and a busy host stretches the sleeps.
    assert!(r.lost >= 600 && r.lost <= 2000, "{r}");
    assert!(r.max_gap_ms >= 300.0 && r.max_gap_ms <= 1000.0, "{r}");
    assert!(
        r.gap_from_ms >= 300.0 && r.gap_to_ms <= r.duration_ms,
        "{r}"
    );
    assert_eq!(r.received + r.lost, r.sent, "{r}");
}
