//! Routing like a router, in the lab: A (priority 200) and B (100) with
//! `[routes] kernel = true`, A master.
//!
//! - a route added with `ip route` on A's box is used by the fast path
//!   within a second, shown by `xvrrp routes`, and once deleted the client
//!   hears ICMP net unreachable (ping shows it);
//! - routes added and deleted in bulk while a flow runs through A: the flow
//!   keeps going, the workers never stall;
//! - ICMP and ICMPv6 destination unreachable (no route; a next hop that
//!   does not answer) and ICMPv6 time exceeded, as ping reports them.

#![allow(clippy::unwrap_used)]

mod common;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::process::Command;
use std::thread;
use std::time::{Duration, Instant};

use common::{flow, lab, netns, ApplianceConfig, Pair, TestLab, NO_STOP};
use lab::LabInstance;

const SERVER: Ipv4Addr = Ipv4Addr::new(203, 0, 113, 100);
/// An extra address of the server, reachable only through a route to
/// 198.51.100.0/24 via the server.
const REMOTE: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 1);
const REMOTE_NET: &str = "198.51.100.0/24";

/// The fixtures' gateway with the kernel's routes mirrored; with
/// `dual_stack`, the two IPv6 routers of tests/ipv6.rs as well.
fn config(lab: &lab::Lab, name: &str, priority: u8, dual_stack: bool) -> ApplianceConfig {
    let mut c = common::gateway_config(lab, name, priority);
    c.kernel_routes = true;
    if dual_stack {
        for (inst, port, vrid, addr) in [
            ("lan6", "lan0", 1, "2001:db8:1::1/64"),
            ("wan6", "wan0", 2, "2001:db8:2::1/64"),
        ] {
            c.instances.push(LabInstance {
                name: inst.to_owned(),
                port: port.to_owned(),
                vrid,
                addresses: vec![addr.to_owned()],
            });
        }
    }
    c
}

/// A lab with A and B running, A master of every router. Fields drop in
/// order: the daemons are killed before the lab is removed.
struct Rig {
    pair: Pair,
    lab: TestLab,
}

impl Rig {
    fn new(test: &str, dual_stack: bool) -> Option<Rig> {
        let lab = common::setup(test)?;
        let mut pair = Pair::start(
            &lab,
            &config(&lab, "a", 200, dual_stack),
            &config(&lab, "b", 100, dual_stack),
        );
        pair.wait_a_master(common::ELECTION_TIMEOUT);
        Some(Rig { pair, lab })
    }

    /// `ip -n GW-A ARGS...`.
    fn ip_on_a(&self, args: &[&str]) {
        let ns = self.lab.ns("gw-a");
        let mut all = vec!["-n", ns.as_str()];
        all.extend_from_slice(args);
        self.pair.check(netns::ip(&all));
    }

    /// What ping from the client says (stdout and stderr); ping's exit
    /// status is not looked at, as an error reply makes it fail.
    fn ping_from_client(&self, args: &[&str]) -> String {
        let out = netns::exec_output(&self.lab.ns("client"), "ping", args);
        let out = self.pair.check(out);
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    }

    /// The routes A's fast path uses, from `xvrrp routes --json`.
    fn routes_of_a(&self) -> Vec<serde_json::Value> {
        let reply = self.pair.check(self.pair.a.query(&["routes"]));
        reply["routes"].as_array().cloned().unwrap_or_default()
    }
}

fn has_route(routes: &[serde_json::Value], to: &str) -> bool {
    routes.iter().any(|r| r["to"] == to)
}

/// A client → `dst` flow at 2000 datagrams/s, to the server's receiver.
fn flow_to(rig: &Rig, dst: Ipv4Addr) -> flow::Flow {
    let dst = SocketAddr::from((dst, flow::DEFAULT_PORT));
    let f = flow::Flow::start(&rig.lab.ns("client"), &rig.lab.ns("server"), dst, 2000);
    rig.pair.check(f)
}

#[test]
fn kernel_route_is_used_within_a_second_and_its_removal_answered_net_unreachable() {
    let Some(rig) = Rig::new(
        "kernel_route_is_used_within_a_second_and_its_removal_answered_net_unreachable",
        false,
    ) else {
        return;
    };
    let server = rig.lab.ns("server");
    rig.pair.check(netns::ip(&[
        "-n",
        &server,
        "addr",
        "add",
        &format!("{REMOTE}/32"),
        "dev",
        "eth0",
    ]));
    // No route yet: the gateway says so.
    let said = rig.ping_from_client(&["-n", "-c", "1", "-W", "2", &REMOTE.to_string()]);
    assert!(
        said.contains("From 192.0.2.1") && said.contains("Destination Net Unreachable"),
        "{said}\n{}",
        rig.pair.logs()
    );

    // A flow towards the remote address, then the route: the flow arrives
    // within a second of `ip route add`.
    let f = flow_to(&rig, REMOTE);
    thread::sleep(Duration::from_millis(300));
    assert_eq!(f.received(), 0, "nothing arrives without a route");
    rig.ip_on_a(&["route", "add", REMOTE_NET, "via", &SERVER.to_string()]);
    let added = Instant::now();
    let r = lab::wait_until(
        "the flow to arrive through the new route",
        Duration::from_secs(1),
        &NO_STOP,
        || Ok(f.received() > 0),
    );
    let took = added.elapsed();
    rig.pair.check(r);
    eprintln!("kernel route used {took:?} after `ip route add`");
    // And it keeps arriving (2000/s).
    let at_first = f.received();
    thread::sleep(Duration::from_millis(300));
    assert!(f.received() > at_first + 200, "{}", f.received());
    let report = rig.pair.check(f.stop());
    eprintln!("{report}");

    // `xvrrp routes` shows it as the workers use it, and the neighbour
    // the fast path resolved for it.
    let routes = rig.routes_of_a();
    let route = routes.iter().find(|r| r["to"] == REMOTE_NET).unwrap();
    assert_eq!(route["via"], SERVER.to_string(), "{route}");
    assert_eq!(
        (&route["port"], &route["origin"]),
        (&"wan0".into(), &"kernel".into())
    );
    let neighbours = rig.pair.check(rig.pair.a.query(&["neighbors"]));
    let server_entry = neighbours["neighbors"]
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["address"] == SERVER.to_string())
        .cloned()
        .unwrap_or_else(|| panic!("no {SERVER} in {neighbours}"));
    assert_eq!(server_entry["port"], "wan0");
    assert_eq!(server_entry["state"], "reachable", "{server_entry}");
    // The tables as the CLI prints them.
    let socket = common::socket_path(&rig.lab, "a");
    for (cmd, header, row) in [
        ("routes", "DESTINATION", REMOTE_NET),
        ("neighbors", "ADDRESS", "203.0.113.100"),
    ] {
        let out = Command::new(common::XVRRP)
            .args(["-s", &socket, cmd])
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "{cmd}: {text}");
        assert!(text.starts_with(header) && text.contains(row), "{text}");
    }

    // Deleted: gone from the fast path, and the client hears it.
    rig.ip_on_a(&["route", "del", REMOTE_NET]);
    let r = lab::wait_until(
        "the route to leave the fast path",
        Duration::from_secs(1),
        &NO_STOP,
        || Ok(!has_route(&rig.routes_of_a(), REMOTE_NET)),
    );
    rig.pair.check(r);
    let said =
        rig.ping_from_client(&["-n", "-c", "2", "-i", "0.2", "-W", "2", &REMOTE.to_string()]);
    assert!(
        said.contains("From 192.0.2.1") && said.contains("Destination Net Unreachable"),
        "{said}"
    );
    let stats = rig.pair.check(rig.pair.a.query(&["stats"]));
    assert!(common::drop_count(&stats, "no-route") >= 2, "{stats}");
}

#[test]
fn route_churn_while_forwarding_keeps_the_flow_going() {
    let Some(rig) = Rig::new("route_churn_while_forwarding_keeps_the_flow_going", false) else {
        return;
    };
    let f = flow_to(&rig, SERVER);
    let r = lab::wait_until(
        "the flow to arrive",
        Duration::from_secs(5),
        &NO_STOP,
        || Ok(f.received() > 0),
    );
    rig.pair.check(r);
    // 2000 routes added and deleted at a time (`ip -batch`), and one route
    // that the flow does not use replaced and removed in between.
    let work = std::env::temp_dir().join(format!("xvrrp-churn-{}", rig.lab.prefix()));
    std::fs::create_dir_all(&work).unwrap();
    let batch = |verb: &str| {
        let path = work.join(format!("{verb}.batch"));
        let text: String = (0..2000)
            .map(|i| {
                let tail = if verb == "add" {
                    " via 203.0.113.100"
                } else {
                    ""
                };
                format!("route {verb} 10.{}.{}.0/24{tail}\n", i / 256, i % 256)
            })
            .collect();
        std::fs::write(&path, text).unwrap();
        path.to_string_lossy().into_owned()
    };
    let (adds, dels) = (batch("add"), batch("del"));
    let churn_start = Instant::now();
    let mut rounds = 0;
    while churn_start.elapsed() < Duration::from_secs(5) {
        rig.ip_on_a(&["-batch", &adds]);
        rig.ip_on_a(&["route", "replace", REMOTE_NET, "via", &SERVER.to_string()]);
        // Let one table with the bulk routes in it reach the workers.
        thread::sleep(Duration::from_millis(50));
        rig.ip_on_a(&["-batch", &dels]);
        rig.ip_on_a(&["route", "del", REMOTE_NET]);
        rounds += 1;
    }
    // One more bulk add, left in place: the fast path ends up with it.
    rig.ip_on_a(&["-batch", &adds]);
    let r = lab::wait_until(
        "the last bulk add to reach the fast path",
        Duration::from_secs(2),
        &NO_STOP,
        || {
            let reply = rig.pair.a.query(&["routes"])?;
            Ok(reply["total"].as_u64().unwrap_or(0) >= 2000)
        },
    );
    rig.pair.check(r);
    let report = rig.pair.check(f.stop());
    let _ = std::fs::remove_dir_all(&work);
    eprintln!("{rounds} rounds of 2000 routes added and deleted; flow: {report}");
    assert!(
        report.max_gap_ms < 250.0,
        "a worker stalled: {report}\n{}",
        rig.pair.logs()
    );
    assert!(
        report.lost * 50 < report.sent,
        "{report}\n{}",
        rig.pair.logs()
    );
    // Still master, nothing flapped.
    let transitions = rig.pair.check(common::transitions(&rig.pair.a));
    assert!(transitions.values().all(|n| *n == 2), "{transitions:?}");
}

#[test]
fn icmp_and_icmpv6_destination_unreachable() {
    let Some(rig) = Rig::new("icmp_and_icmpv6_destination_unreachable", true) else {
        return;
    };
    // Each case: what is pinged, and what ping must report, from whom.
    let cases: [(&[&str], &str, &str); 4] = [
        (
            &["-4", "198.51.100.1"],
            "From 192.0.2.1",
            "Destination Net Unreachable",
        ),
        (
            &["-4", "203.0.113.77"],
            "From 192.0.2.1",
            "Destination Host Unreachable",
        ),
        (
            &["-6", "2001:db8:99::1"],
            "From 2001:db8:1::1",
            "Destination unreachable: No route",
        ),
        (
            &["-6", "2001:db8:2::77"],
            "From 2001:db8:1::1",
            "Destination unreachable: Address unreachable",
        ),
    ];
    for (target, from, what) in cases {
        let mut args = vec!["-n", "-c", "2", "-i", "0.3", "-W", "3"];
        args.extend_from_slice(target);
        let said = rig.ping_from_client(&args);
        assert!(
            said.contains(from) && said.contains(what),
            "ping {target:?}: expected `{from} ... {what}`, got:\n{said}\n{}",
            rig.pair.logs()
        );
    }
    let stats = rig.pair.check(rig.pair.a.query(&["stats"]));
    assert!(common::drop_count(&stats, "no-route") >= 4, "{stats}");
    assert!(common::drop_count(&stats, "no-neighbour") >= 4, "{stats}");
}

#[test]
fn icmpv6_time_exceeded_at_hop_limit_one() {
    let Some(rig) = Rig::new("icmpv6_time_exceeded_at_hop_limit_one", true) else {
        return;
    };
    let said = rig.ping_from_client(&[
        "-n",
        "-6",
        "-t",
        "1",
        "-c",
        "2",
        "-i",
        "0.3",
        "-W",
        "2",
        "2001:db8:2::100",
    ]);
    assert!(
        said.contains("From 2001:db8:1::1") && said.contains("Time exceeded: Hop limit"),
        "{said}\n{}",
        rig.pair.logs()
    );
    // With hops to spare, the same ping goes through.
    rig.pair.check(flow::ping(
        &rig.lab.ns("client"),
        IpAddr::V6("2001:db8:2::100".parse().unwrap()),
        2,
        Duration::from_secs(5),
    ));
    let stats = rig.pair.check(rig.pair.a.query(&["stats"]));
    assert!(common::drop_count(&stats, "ttl-exceeded") >= 2, "{stats}");
}
