//! Two workers on two queues: appliance A alone in a lab whose gateway
//! ports have two receive queues, with `cores = [0, 1]`, so each port's
//! queue 0 is served by worker 0 and queue 1 by worker 1. The switch spreads
//! flows over the queues by their hash; a set of UDP flows from the client
//! to the server must arrive whole whichever worker carries each, both
//! workers must receive and forward, and a next hop resolved by one worker
//! (the server's ARP reply lands on one queue only) must serve the other.
//! A port with fewer queues than workers is sent on through the worker
//! that has a socket there.
//!
//! Behaviour only: no rate is asserted (the machine has two cores, shared
//! with the traffic generators).

#![allow(clippy::unwrap_used)]

mod common;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::Path;
use std::thread;
use std::time::Duration;

use serde_json::Value;

use common::{flow, lab, netns, Appliance, TestLab, WorkDir, NO_STOP, XVRRP};

const SERVER: Ipv4Addr = Ipv4Addr::new(203, 0, 113, 100);
const CLIENT: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 100);
/// Flows of distinct destination ports: the switch hashes each to one of
/// the two queues, so 16 leave a queue empty with odds of 2 in 65536.
const FLOWS: u16 = 16;
/// Datagrams per second of each flow (2000/s in all).
const FLOW_RATE: u32 = 125;
const FLOW_TIME: Duration = Duration::from_secs(3);

/// Appliance A with two workers in a two-queue lab. Fields drop in order:
/// the daemon is killed before its directory and the lab are removed.
struct Single {
    app: Appliance,
    _work: WorkDir,
    lab: TestLab,
}

impl Single {
    /// Builds the lab, runs `tune` on it (before the daemon binds its
    /// queues), starts A with `cores = [0, 1]` and the `queues` of each
    /// port listed, and waits for it to be master of both routers.
    fn start(test: &str, queues: &[(&str, Vec<u32>)], tune: impl FnOnce(&TestLab)) -> Option<Self> {
        Self::start_on(test, &[0, 1], queues, tune)
    }

    /// [`Self::start`] with workers on `cores`.
    fn start_on(
        test: &str,
        cores: &[usize],
        queues: &[(&str, Vec<u32>)],
        tune: impl FnOnce(&TestLab),
    ) -> Option<Self> {
        let lab = common::setup_with(
            test,
            &lab::LabOptions {
                queues: 2,
                ..Default::default()
            },
        )?;
        tune(&lab);
        let mut config = common::gateway_config(&lab, "a", 200);
        config.cores = cores.to_vec();
        for (port, ids) in queues {
            config.queues.insert((*port).to_owned(), ids.clone());
        }
        let work = WorkDir::create(lab.prefix()).unwrap();
        let mut app =
            Appliance::new("a", Path::new(XVRRP), &lab.ns("gw-a"), &config, work.path()).unwrap();
        app.start().unwrap();
        let mut single = Single {
            app,
            _work: work,
            lab,
        };
        let app = &mut single.app;
        let r = lab::wait_until("A master", common::ELECTION_TIMEOUT, &NO_STOP, || {
            app.all_in("master")
        });
        single.check(r);
        Some(single)
    }

    fn check<T>(&self, r: anyhow::Result<T>) -> T {
        match r {
            Ok(v) => v,
            Err(e) => panic!("{e:#}\n--- log of A:\n{}", self.app.log_tail(30)),
        }
    }

    fn query(&self, what: &str) -> Value {
        self.check(self.app.query(&[what]))
    }

    /// Runs [`FLOWS`] client → server flows at once and returns their
    /// reports, each with its destination port.
    fn flows(&self) -> Vec<(u16, flow::FlowReport)> {
        let (client, server) = (self.lab.ns("client"), self.lab.ns("server"));
        let flows: Vec<(u16, flow::Flow)> = (0..FLOWS)
            .map(|i| {
                let port = flow::DEFAULT_PORT + i;
                let dst = SocketAddr::from((SERVER, port));
                let f = self.check(flow::Flow::start(&client, &server, dst, FLOW_RATE));
                (port, f)
            })
            .collect();
        thread::sleep(FLOW_TIME);
        flows
            .into_iter()
            .map(|(port, f)| (port, self.check(f.stop())))
            .collect()
    }
}

/// A counter of worker `w` on `port` in a `stats --json` reply.
fn counter(stats: &Value, port: &str, w: usize, name: &str) -> u64 {
    stats
        .pointer(&format!("/ports/{port}/workers/{w}/{name}"))
        .and_then(Value::as_u64)
        .unwrap_or_else(|| panic!("no {name} for worker {w} on {port} in {stats}"))
}

impl Single {
    /// Every flow arrived, but for a datagram or two lost to a starved
    /// sender or receiver on this 2-core machine (loss ≈ 0). On failure,
    /// says where frames were lost: the fast path's drops, the veths' own
    /// drops (the XDP redirect found a socket's ring full), the server's
    /// UDP receive errors.
    fn assert_delivered(&self, reports: &[(u16, flow::FlowReport)]) {
        let sent: u64 = reports.iter().map(|(_, r)| r.sent).sum();
        let lost: u64 = reports.iter().map(|(_, r)| r.lost).sum();
        if sent > 0 && reports.iter().all(|(_, r)| r.received > 0) && lost * 1000 <= sent * 2 {
            return;
        }
        let listing: Vec<String> = reports
            .iter()
            .map(|(p, r)| format!("port {p}: {r}"))
            .collect();
        let drops = self.app.query(&["stats"]).map(|stats| {
            let mut found = Vec::new();
            for port in ["lan0", "wan0"] {
                for w in 0..2 {
                    if let Some(d) = stats
                        .pointer(&format!("/ports/{port}/workers/{w}/drops"))
                        .and_then(Value::as_object)
                    {
                        found.extend(
                            d.iter()
                                .filter(|(_, v)| v.as_u64().unwrap_or(0) > 0)
                                .map(|(k, v)| format!("{port}/{w} {k}={v}")),
                        );
                    }
                }
            }
            found
        });
        let gw = self.lab.ns("gw-a");
        let veth: Vec<String> = ["lan0", "wan0"]
            .iter()
            .filter_map(|i| netns::exec(&gw, "ethtool", &["-S", i]).ok())
            .flat_map(|t| {
                t.lines()
                    .filter(|l| l.contains("drops") && !l.trim_end().ends_with(": 0"))
                    .map(str::to_owned)
                    .collect::<Vec<_>>()
            })
            .collect();
        // The server namespace's own counters (RcvbufErrors: a starved receiver).
        let udp = netns::exec(&self.lab.ns("server"), "cat", &["/proc/net/snmp"])
            .ok()
            .map(|t| {
                t.lines()
                    .filter(|l| l.starts_with("Udp:"))
                    .collect::<Vec<_>>()
                    .join("\n")
            });
        panic!(
            "lost {lost} of {sent}:\n{listing:#?}\nfast-path drops: {drops:?}\nveth drops: {veth:#?}\nserver UDP:\n{}\n--- log of A:\n{}",
            udp.unwrap_or_default(),
            self.app.log_tail(30)
        );
    }
}

/// The `queue → worker` pairs of a port in `status --json`.
fn queue_workers(status: &Value, port: &str) -> Vec<(u64, u64)> {
    let ports = status
        .pointer("/dataplane/ports")
        .and_then(Value::as_array)
        .unwrap_or_else(|| panic!("no dataplane.ports in {status}"));
    let p = ports
        .iter()
        .find(|p| p["name"] == port)
        .unwrap_or_else(|| panic!("no port {port} in {status}"));
    p["queues"]
        .as_array()
        .unwrap()
        .iter()
        .map(|q| (q["queue"].as_u64().unwrap(), q["worker"].as_u64().unwrap()))
        .collect()
}

#[test]
fn two_workers_serve_two_queues_and_share_what_they_resolve() {
    let Some(s) = Single::start(
        "two_workers_serve_two_queues_and_share_what_they_resolve",
        &[],
        |_| {},
    ) else {
        return;
    };
    // `status` says how each port is served: native XDP on veth (generic
    // only if native failed), copy-mode sockets (veth has no zero-copy),
    // queue n to worker n.
    let status = s.query("status");
    for port in ["lan0", "wan0"] {
        assert_eq!(queue_workers(&status, port), [(0, 0), (1, 1)], "{status}");
        let p = status["dataplane"]["ports"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["name"] == port)
            .unwrap();
        assert!(
            p["xdp_mode"] == "native" || p["xdp_mode"] == "generic",
            "{p}"
        );
        assert_eq!(p["socket_mode"], "copy", "{p}");
        assert_eq!(p["zero_copy"], false, "{p}");
    }
    let workers = status["dataplane"]["workers"].as_array().unwrap();
    assert_eq!(workers.len(), 2, "{status}");
    // `check` where the ports exist lists the same queues per worker.
    let plan = s.check(netns::exec(
        &s.lab.ns("gw-a"),
        XVRRP,
        &["check", "-c", &s.app.config_path().to_string_lossy()],
    ));
    assert!(
        plan.contains("worker 0 (core 0): lan0 queue 0; wan0 queue 0\n")
            && plan.contains("worker 1 (core 1): lan0 queue 1; wan0 queue 1\n"),
        "{plan}"
    );

    let reports = s.flows();
    s.assert_delivered(&reports);

    let stats = s.query("stats");
    for w in 0..2 {
        assert!(
            counter(&stats, "lan0", w, "rx") > 0,
            "worker {w} received nothing: {stats}"
        );
        assert!(
            counter(&stats, "wan0", w, "forwarded") > 0,
            "worker {w} forwarded nothing: {stats}"
        );
        assert_eq!(counter(&stats, "wan0", w, "handed_off"), 0, "{stats}");
    }
    // The server's ARP replies all land on one queue of wan0 (the switch
    // hashes every ARP frame alike), and this one-way flow brings nothing
    // else back: the worker that received nothing on wan0 still forwarded
    // to the server, with the MAC the other worker resolved and published.
    let learned_from_the_other = (0..2).find(|&w| {
        counter(&stats, "wan0", w, "rx") == 0 && counter(&stats, "wan0", w, "forwarded") > 0
    });
    assert!(
        learned_from_the_other.is_some(),
        "expected one worker to forward with a neighbour resolved by the other: {stats}"
    );
    for reason in ["no-neighbour", "egress-full", "handoff-full", "no-egress"] {
        assert_eq!(common::drop_count(&stats, reason), 0, "{reason}: {stats}");
    }
}

#[test]
fn ping_both_ways_through_two_workers() {
    let Some(s) = Single::start("ping_both_ways_through_two_workers", &[], |_| {}) else {
        return;
    };
    let (client, server) = (s.lab.ns("client"), s.lab.ns("server"));
    s.check(flow::ping(
        &client,
        IpAddr::V4(SERVER),
        5,
        Duration::from_secs(5),
    ));
    s.check(flow::ping(
        &server,
        IpAddr::V4(CLIENT),
        5,
        Duration::from_secs(5),
    ));
    // And the virtual gateway itself answers.
    s.check(flow::ping(
        &client,
        IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1)),
        3,
        Duration::from_secs(5),
    ));
}

#[test]
fn a_port_with_one_queue_is_sent_on_through_the_worker_that_has_it() {
    // wan0 keeps two queues but the appliance serves only queue 0, and the
    // switch sends on one queue towards it, so nothing arrives on queue 1
    // (which would go to the kernel): worker 1 serves lan0's queue 1 and
    // has no socket on wan0.
    let Some(s) = Single::start(
        "a_port_with_one_queue_is_sent_on_through_the_worker_that_has_it",
        &[("wan0", vec![0])],
        |lab| {
            netns::exec(&lab.ns("sw"), "ethtool", &["-L", "a-wan", "tx", "1"]).unwrap();
        },
    ) else {
        return;
    };
    let status = s.query("status");
    assert_eq!(queue_workers(&status, "lan0"), [(0, 0), (1, 1)], "{status}");
    assert_eq!(queue_workers(&status, "wan0"), [(0, 0)], "{status}");
    let w1 = &status["dataplane"]["workers"][1];
    assert_eq!(w1["sends_via"]["wan0"], 0, "{status}");

    let reports = s.flows();
    s.assert_delivered(&reports);

    let stats = s.query("stats");
    assert!(counter(&stats, "lan0", 1, "rx") > 0, "{stats}");
    // Worker 1 forwards nothing itself: it hands its frames for wan0 to
    // worker 0, which sends (and counts) them.
    assert!(counter(&stats, "wan0", 1, "handed_off") > 0, "{stats}");
    assert_eq!(counter(&stats, "wan0", 1, "forwarded"), 0, "{stats}");
    let received: u64 = reports.iter().map(|(_, r)| r.received).sum();
    assert!(
        counter(&stats, "wan0", 0, "forwarded") >= received,
        "worker 0 sent {} of {received} datagrams: {stats}",
        counter(&stats, "wan0", 0, "forwarded")
    );
    assert_eq!(common::drop_count(&stats, "no-egress"), 0, "{stats}");
}

#[test]
fn one_worker_serves_every_queue_of_both_ports() {
    // Four sockets over one UMEM: the fill rings share its frames, so the
    // two queues that receive nothing (the flow is one-way) never starve
    // the two that do — this flow is longer than a UMEM's worth of frames.
    let Some(s) = Single::start_on(
        "one_worker_serves_every_queue_of_both_ports",
        &[0],
        &[],
        |_| {},
    ) else {
        return;
    };
    let status = s.query("status");
    for port in ["lan0", "wan0"] {
        assert_eq!(queue_workers(&status, port), [(0, 0), (1, 0)], "{status}");
    }
    let reports = s.flows();
    s.assert_delivered(&reports);
    let received: u64 = reports.iter().map(|(_, r)| r.received).sum();
    assert!(
        received > 4096,
        "too short a flow to cycle the UMEM: {received}"
    );
    let stats = s.query("stats");
    assert!(
        counter(&stats, "wan0", 0, "forwarded") >= received,
        "{stats}"
    );
}
