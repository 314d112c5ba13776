//! Two appliances in the lab, A (priority 200) and B (priority 100), each
//! with `lan-gw` (VRID 1, 192.0.2.1) and `wan-gw` (VRID 2, 203.0.113.1) in
//! one sync group: the election, what the client sees, forwarding through
//! the virtual gateway, and failover and failback under traffic.

#![allow(clippy::unwrap_used)]

mod common;

use std::net::{IpAddr, Ipv4Addr};
use std::thread;
use std::time::{Duration, Instant};

use common::{flow, lab, Rig, NO_STOP};

const LAN_VIP: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 1);
const WAN_VIP: Ipv4Addr = Ipv4Addr::new(203, 0, 113, 1);
const SERVER: Ipv4Addr = Ipv4Addr::new(203, 0, 113, 100);
const LAN_VMAC: &str = "00:00:5e:00:01:01";
/// A takeover must complete well within this (3 × 100 ms adverts + skew,
/// plus slack for a loaded machine).
const TAKEOVER_TIMEOUT: Duration = Duration::from_secs(5);

fn ip(a: Ipv4Addr) -> IpAddr {
    IpAddr::V4(a)
}

#[test]
fn exactly_one_master_a200_b100() {
    let Some(rig) = Rig::standard("exactly_one_master_a200_b100") else {
        return;
    };
    let a = rig.pair.check(rig.pair.a.query(&["status"]));
    let b = rig.pair.check(rig.pair.b.query(&["status"]));
    for name in ["lan-gw", "wan-gw"] {
        let find = |reply: &serde_json::Value| {
            lab::instances(reply)
                .find(|i| i["name"] == name)
                .cloned()
                .unwrap_or_else(|| panic!("no instance {name} in {reply}"))
        };
        let (ia, ib) = (find(&a), find(&b));
        let masters = [&ia, &ib].iter().filter(|i| i["state"] == "master").count();
        assert_eq!(masters, 1, "{name}: A {ia}, B {ib}");
        assert_eq!(ia["state"], "master", "{ia}");
        assert_eq!(ib["state"], "backup", "{ib}");
        assert_eq!(ia["priority"], 200, "{ia}");
        assert_eq!(ib["priority"], 100, "{ib}");
    }
}

#[test]
fn client_resolves_lan_vip_to_virtual_mac() {
    let Some(rig) = Rig::standard("client_resolves_lan_vip_to_virtual_mac") else {
        return;
    };
    let client = rig.lab.ns("client");
    // Traffic to the server makes the client resolve its gateway.
    rig.pair
        .check(flow::ping(&client, ip(SERVER), 2, Duration::from_secs(5)));
    let mac = flow::neighbour_mac(&client, ip(LAN_VIP)).unwrap();
    assert_eq!(mac.as_deref(), Some(LAN_VMAC), "{}", rig.pair.logs());
}

#[test]
fn ping_client_to_server_through_the_gateway() {
    let Some(rig) = Rig::standard("ping_client_to_server_through_the_gateway") else {
        return;
    };
    let client = rig.lab.ns("client");
    let server = rig.lab.ns("server");
    rig.pair
        .check(flow::ping(&client, ip(SERVER), 5, Duration::from_secs(5)));
    // And back: the server's route to the LAN goes through the WAN VIP.
    rig.pair.check(flow::ping(
        &server,
        ip(Ipv4Addr::new(192, 0, 2, 100)),
        3,
        Duration::from_secs(5),
    ));
}

#[test]
fn vips_are_on_no_kernel_interface() {
    let Some(rig) = Rig::standard("vips_are_on_no_kernel_interface") else {
        return;
    };
    for gw in ["gw-a", "gw-b"] {
        for vip in [LAN_VIP, WAN_VIP] {
            let ns = rig.lab.ns(gw);
            assert!(
                !common::ip_on_any_interface(&ns, ip(vip)).unwrap(),
                "{vip} configured on a kernel interface of {ns}"
            );
        }
    }
}

#[test]
fn gateway_own_addresses_answer_while_xvrrp_runs() {
    let Some(rig) = Rig::standard("gateway_own_addresses_answer_while_xvrrp_runs") else {
        return;
    };
    let client = rig.lab.ns("client");
    let server = rig.lab.ns("server");
    let own = [
        (&client, Ipv4Addr::new(192, 0, 2, 2)),
        (&client, Ipv4Addr::new(192, 0, 2, 3)),
        (&server, Ipv4Addr::new(203, 0, 113, 2)),
    ];
    for (ns, addr) in own {
        rig.pair
            .check(flow::ping(ns, ip(addr), 3, Duration::from_secs(5)));
    }
}

#[test]
fn f01_sigkill_master_backup_takes_over_and_flow_resumes() {
    let Some(mut rig) = Rig::standard("f01_sigkill_master_backup_takes_over_and_flow_resumes")
    else {
        return;
    };
    let f = rig.flowing(2000);
    thread::sleep(Duration::from_millis(500));
    rig.pair.a.kill().unwrap();
    let killed = Instant::now();
    rig.pair.wait_b_master(TAKEOVER_TIMEOUT);
    let takeover = killed.elapsed();
    let at_takeover = f.received();
    let r = lab::wait_until(
        "the flow to resume",
        Duration::from_secs(2),
        &NO_STOP,
        || Ok(f.received() > at_takeover + 100),
    );
    rig.pair.check(r);
    thread::sleep(Duration::from_millis(500));
    let report = f.stop().unwrap();
    eprintln!("takeover after {takeover:?}; {report}");
    assert!(report.max_gap_ms < 2000.0, "{report}\n{}", rig.pair.logs());
    assert!(report.received > 0 && report.lost < report.sent, "{report}");
}

#[test]
fn f11_restarted_master_takes_the_address_back() {
    let Some(mut rig) = Rig::standard("f11_restarted_master_takes_the_address_back") else {
        return;
    };
    rig.pair.a.kill().unwrap();
    rig.pair.wait_b_master(TAKEOVER_TIMEOUT);
    let f = rig.flowing(2000);
    rig.pair.a.start().unwrap();
    rig.pair.wait_a_master(common::ELECTION_TIMEOUT);
    thread::sleep(Duration::from_millis(500));
    let report = f.stop().unwrap();
    eprintln!("failback: {report}");
    assert!(report.max_gap_ms < 2000.0, "{report}\n{}", rig.pair.logs());
    // The client still reaches the server and still sees the virtual MAC.
    let client = rig.lab.ns("client");
    rig.pair
        .check(flow::ping(&client, ip(SERVER), 3, Duration::from_secs(5)));
    let mac = flow::neighbour_mac(&client, ip(LAN_VIP)).unwrap();
    assert_eq!(mac.as_deref(), Some(LAN_VMAC));
}
