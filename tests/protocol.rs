//! Protocol behaviour on the wire, in the namespace lab, named by
//! docs/conformance.md ID:
//!
//! - P01/P13: the first frames of a new master (the address owner, so it
//!   takes over at Startup), captured on the LAN bridge and decoded by
//!   tshark: every advert's Ethernet, IPv4 and VRRP fields, and the
//!   gratuitous ARPs right after the first advert;
//! - P03: `status --json` timers equal the RFC 9568 §6.1 formulas;
//! - P09: with `accept = false` the virtual address answers no ping but is
//!   still resolved by ARP, and traffic through the gateway still flows;
//! - P11: two appliances with `unicast_peers` pointing at each other elect
//!   one master, whose adverts go to the peer's MAC and address only.
//!
//! Captures run `tcpdump` in the switch namespace, stopped by PID; every
//! test's daemons, capture and lab are removed on every exit path.

#![allow(clippy::unwrap_used)]

mod common;

use std::path::Path;
use std::thread;
use std::time::Duration;

use anyhow::{Context, Result};
use common::{lab, netns, pcap::Tcpdump, Appliance, TestLab, WorkDir, NO_STOP};

const VMAC: &str = "00:00:5e:00:01:01";
const A_LAN: &str = "192.0.2.2";
const B_LAN: &str = "192.0.2.3";
const LAN_VIP: &str = "192.0.2.1";
/// The fixtures' advertisement interval, in milliseconds.
const INTERVAL_MS: u64 = 100;
/// The default gratuitous ARP burst: 3, 50 ms apart.
const GARP_COUNT: usize = 3;
const GARP_INTERVAL: f64 = 0.050;

// ----- the rig --------------------------------------------------------------------

/// Appliances started by a test, then its scratch directory, then the lab:
/// fields drop in that order, so the daemons are killed (by PID) first.
struct Rig {
    apps: Vec<Appliance>,
    work: WorkDir,
    lab: TestLab,
}

impl Rig {
    fn new(test: &str) -> Option<Rig> {
        let lab = common::setup(test)?;
        let work = WorkDir::create(lab.prefix()).unwrap();
        Some(Rig {
            apps: Vec::new(),
            work,
            lab,
        })
    }

    /// Writes `text` as appliance `name`'s configuration (the fixture's
    /// config is written first, then replaced) and starts it in `role`.
    fn start(&mut self, name: &str, role: &str, text: &str) {
        let fixture = common::gateway_config(&self.lab, name, 100);
        let exe = Path::new(common::XVRRP);
        let ns = self.lab.ns(role);
        let mut app = Appliance::new(name, exe, &ns, &fixture, self.work.path()).unwrap();
        std::fs::write(app.config_path(), text).unwrap();
        app.start().unwrap();
        self.apps.push(app);
    }

    /// Waits until every appliance `i` is in `states[i]` for every instance.
    fn wait_states(&mut self, states: &[&str]) {
        let apps = &mut self.apps;
        let what = format!("states {states:?}");
        let r = lab::wait_until(&what, common::ELECTION_TIMEOUT, &NO_STOP, || {
            for (app, state) in apps.iter_mut().zip(states) {
                if !app.all_in(state)? {
                    return Ok(false);
                }
            }
            Ok(true)
        });
        self.check(r);
    }

    /// Unwraps `r`, panicking with the daemons' logs (kept on disk) on error.
    fn check<T>(&mut self, r: Result<T>) -> T {
        match r {
            Ok(v) => v,
            Err(e) => {
                self.work.keep();
                panic!("{e:#}\n{}", self.logs())
            }
        }
    }

    fn logs(&self) -> String {
        self.apps
            .iter()
            .map(|a| format!("--- log of {}:\n{}", a.name(), a.log_tail(25)))
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// Starts capturing `filter` on the LAN bridge, once the bridge
    /// forwards: a fresh veth's carrier reaches its bridge port up to a
    /// second late, and frames sent before that never cross the bridge.
    fn capture(&mut self, filter: &str) -> Tcpdump {
        let client = self.lab.ns("client");
        let r = lab::wait_until(
            "the LAN bridge to forward",
            Duration::from_secs(10),
            &NO_STOP,
            || {
                let ping = |dst| netns::exec_output(&client, "ping", &["-c", "1", "-W", "1", dst]);
                Ok(ping(A_LAN)?.status.success() && ping(B_LAN)?.status.success())
            },
        );
        self.check(r);
        let path = self.work.path().join("lan.pcap");
        let r = Tcpdump::start(&self.lab.ns("sw"), "lan", filter, &path);
        self.check(r)
    }
}

/// Appliance `name`'s configuration: the lab gateway at `priority` with the
/// fixtures' interval, every `[[vrrp]]` table extended with `extra` lines.
fn config_text(lab: &lab::Lab, name: &str, priority: u8, extra: &[&str]) -> String {
    let text = common::gateway_config(lab, name, priority).render();
    if extra.is_empty() {
        return text;
    }
    let lines = extra.join("\n");
    text.replace("preempt = true\n", &format!("preempt = true\n{lines}\n"))
}

/// The instance `name` of `app`'s `status --json`.
fn instance(app: &Appliance, name: &str) -> Result<serde_json::Value> {
    let reply = app.query(&["status"])?;
    let found = lab::instances(&reply).find(|i| i["name"] == name).cloned();
    found.with_context(|| format!("no instance {name} in {reply}"))
}

/// The MAC of `ifname` in namespace `ns`.
fn mac_of(ns: &str, ifname: &str) -> String {
    let out = netns::ip(&["-n", ns, "-j", "link", "show", ifname]).unwrap();
    let links: serde_json::Value = serde_json::from_str(&out).unwrap();
    links[0]["address"].as_str().unwrap().to_owned()
}

// ----- P01 / P13 ---------------------------------------------------------------------

const FRAME_FIELDS: [&str; 17] = [
    "frame.time_relative",
    "eth.src",
    "eth.dst",
    "ip.src",
    "ip.dst",
    "ip.ttl",
    "ip.dsfield",
    "ip.proto",
    "vrrp.version",
    "vrrp.type",
    "vrrp.virt_rtr_id",
    "vrrp.prio",
    "vrrp.checksum.status",
    "arp.opcode",
    "arp.src.hw_mac",
    "arp.src.proto_ipv4",
    "arp.dst.proto_ipv4",
];

#[test]
fn p01_p13_new_master_sends_well_formed_advert_then_garp() {
    let Some(mut rig) = Rig::new("p01_p13_new_master_sends_well_formed_advert_then_garp") else {
        return;
    };
    let mut cap = rig.capture("ip proto 112 or arp");
    // The address owner becomes master at Startup (RFC 9568 §6.4.1).
    let text = config_text(&rig.lab, "a", 255, &[]);
    rig.start("a", "gw-a", &text);
    rig.wait_states(&["master"]);
    thread::sleep(Duration::from_millis(5 * INTERVAL_MS));
    let r = cap.decode(&FRAME_FIELDS);
    let frames = rig.check(r);
    let col = |name: &str| FRAME_FIELDS.iter().position(|f| *f == name).unwrap();
    let time = |f: &[String]| f[col("frame.time_relative")].parse::<f64>().unwrap();

    let adverts: Vec<&Vec<String>> = frames
        .iter()
        .filter(|f| f[col("ip.proto")] == "112")
        .collect();
    assert!(
        adverts.len() >= 3,
        "adverts captured: {adverts:?} in {frames:?}\n{}",
        rig.logs()
    );
    for f in &adverts {
        let got: Vec<&str> = [
            "eth.src",
            "eth.dst",
            "ip.src",
            "ip.dst",
            "ip.ttl",
            "ip.dsfield",
            "vrrp.version",
            "vrrp.type",
            "vrrp.virt_rtr_id",
            "vrrp.prio",
            "vrrp.checksum.status",
        ]
        .iter()
        .map(|n| f[col(n)].as_str())
        .collect();
        assert_eq!(
            got,
            vec![
                VMAC,
                "01:00:5e:00:00:12",
                A_LAN,
                "224.0.0.18",
                "255",
                "0xc0",
                "3",
                "1",
                "1",
                "255",
                // Wireshark's checksum status "Good" (0 is "Bad").
                "1",
            ],
            "advert {f:?}"
        );
    }

    let garps: Vec<&Vec<String>> = frames
        .iter()
        .filter(|f| {
            f[col("arp.src.proto_ipv4")] == LAN_VIP && f[col("arp.dst.proto_ipv4")] == LAN_VIP
        })
        .collect();
    assert_eq!(garps.len(), GARP_COUNT, "gratuitous ARPs: {garps:?}");
    for f in &garps {
        assert_eq!(
            (
                f[col("eth.src")].as_str(),
                f[col("eth.dst")].as_str(),
                f[col("arp.opcode")].as_str(),
                f[col("arp.src.hw_mac")].as_str()
            ),
            (VMAC, "ff:ff:ff:ff:ff:ff", "1", VMAC),
            "{f:?}"
        );
    }
    // The first frame of the new master is its advert; the announcement
    // follows within one GARP interval.
    let first = frames.iter().find(|f| f[col("eth.src")] == VMAC).unwrap();
    assert_eq!(first[col("ip.proto")], "112", "first frame {first:?}");
    let (t_advert, t_garp) = (time(adverts[0]), time(garps[0]));
    assert!(
        t_garp >= t_advert && t_garp - t_advert <= GARP_INTERVAL,
        "advert at {t_advert}, GARP at {t_garp}"
    );
    // Nothing else from the virtual MAC: it speaks only VRRP and ARP here.
    assert_eq!(
        frames.iter().filter(|f| f[col("eth.src")] == VMAC).count(),
        adverts.len() + garps.len()
    );
}

// ----- P03 ----------------------------------------------------------------------------

/// Skew_Time and Master_Down_Interval in microseconds for VRRPv3 at
/// `priority` with a Master_Adver_Interval of `interval_ms`, computed from
/// RFC 9568 §6.1 in integers: ((256 − p) × MAI) / 256, and 3 × MAI + skew;
/// `status` reports whole microseconds, rounded down.
fn rfc_timers_us(priority: u64, interval_ms: u64) -> (u64, u64) {
    let skew_ns = (256 - priority) * interval_ms * 1_000_000 / 256;
    let mdi_ns = 3 * interval_ms * 1_000_000 + skew_ns;
    (skew_ns / 1000, mdi_ns / 1000)
}

#[test]
fn p03_status_timers_match_the_rfc_formulas() {
    let Some(mut rig) = Rig::new("p03_status_timers_match_the_rfc_formulas") else {
        return;
    };
    for (name, role, priority) in [("a", "gw-a", 200u8), ("b", "gw-b", 100)] {
        let text = config_text(&rig.lab, name, priority, &[]);
        rig.start(name, role, &text);
    }
    rig.wait_states(&["master", "backup"]);
    // Hand-computed: 56/256 and 156/256 of 100 ms.
    assert_eq!(rfc_timers_us(200, 100), (21_875, 321_875));
    assert_eq!(rfc_timers_us(100, 100), (60_937, 360_937));
    for (i, priority) in [(0usize, 200u64), (1, 100)] {
        for name in ["lan-gw", "wan-gw"] {
            let r = instance(&rig.apps[i], name);
            let inst = rig.check(r);
            let got = (
                inst["master_adver_interval_ms"].as_u64(),
                inst["skew_time_us"].as_u64(),
                inst["master_down_interval_us"].as_u64(),
            );
            let (skew, mdi) = rfc_timers_us(priority, INTERVAL_MS);
            assert_eq!(
                got,
                (Some(INTERVAL_MS), Some(skew), Some(mdi)),
                "{name} at priority {priority}: {inst}"
            );
        }
    }
}

// ----- P09 ----------------------------------------------------------------------------

#[test]
fn p09_accept_false_vip_not_pingable_but_resolved() {
    let Some(mut rig) = Rig::new("p09_accept_false_vip_not_pingable_but_resolved") else {
        return;
    };
    for (name, role, priority) in [("a", "gw-a", 200u8), ("b", "gw-b", 100)] {
        let text = config_text(&rig.lab, name, priority, &["accept = false"]);
        rig.start(name, role, &text);
    }
    rig.wait_states(&["master", "backup"]);
    let r = instance(&rig.apps[0], "lan-gw");
    let inst = rig.check(r);
    assert_eq!(inst["accept"], false, "{inst}");
    let client = rig.lab.ns("client");

    // ARP for the VIP is answered, from the virtual MAC.
    let r = netns::exec_output(
        &client,
        "arping",
        &["-c", "3", "-C", "1", "-i", "eth0", LAN_VIP],
    );
    let out = rig.check(r);
    let text = String::from_utf8_lossy(&out.stdout).to_lowercase();
    assert!(
        out.status.success() && text.contains(VMAC),
        "arping {LAN_VIP}: {text}"
    );
    // Ping to the VIP gets nothing back.
    let before = common::drop_count(
        &rig.apps[0].query(&["stats"]).unwrap(),
        "to-virtual-address",
    );
    let r = netns::exec_output(
        &client,
        "ping",
        &["-c", "3", "-i", "0.2", "-W", "1", LAN_VIP],
    );
    let out = rig.check(r);
    assert!(
        !out.status.success(),
        "ping {LAN_VIP} answered: {}",
        String::from_utf8_lossy(&out.stdout)
    );
    let after = common::drop_count(
        &rig.apps[0].query(&["stats"]).unwrap(),
        "to-virtual-address",
    );
    assert!(
        after >= before + 3,
        "to-virtual-address {before} -> {after}"
    );
    // The client's neighbour entry for the gateway is the virtual MAC.
    let neigh = netns::ip(&["-n", &client, "neigh", "show", LAN_VIP]).unwrap();
    assert!(neigh.contains(VMAC), "client neighbour entry: {neigh}");
    // Accept mode concerns the VIP only: traffic through the gateway flows.
    let r = netns::exec_output(
        &client,
        "ping",
        &["-c", "3", "-i", "0.2", "-W", "2", "203.0.113.100"],
    );
    let out = rig.check(r);
    assert!(
        out.status.success(),
        "ping through the gateway: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        rig.logs()
    );
}

// ----- P11 ----------------------------------------------------------------------------

#[test]
fn p11_unicast_peers_elect_one_master_adverts_to_the_peer() {
    let Some(mut rig) = Rig::new("p11_unicast_peers_elect_one_master_adverts_to_the_peer") else {
        return;
    };
    let mut cap = rig.capture("ip proto 112");
    let peers = |lan: &str, wan: &str| {
        let text = format!("unicast_peers = [\"{lan}\"]");
        (text, format!("unicast_peers = [\"{wan}\"]"))
    };
    for (name, role, priority, (lan, wan)) in [
        ("a", "gw-a", 200u8, peers(B_LAN, "203.0.113.3")),
        ("b", "gw-b", 100, peers(A_LAN, "203.0.113.2")),
    ] {
        // The line goes into both [[vrrp]] tables; each gets its own port's peer.
        let text = config_text(&rig.lab, name, priority, &[&lan]);
        let wan_table = text.find("name = \"wan-gw\"").unwrap();
        let (head, tail) = text.split_at(wan_table);
        let text = format!("{head}{}", tail.replacen(&lan, &wan, 1));
        rig.start(name, role, &text);
    }
    rig.wait_states(&["master", "backup"]);
    // The peer's MAC comes from the kernel's neighbour table, read once a
    // second; until the kernel has resolved the peer, adverts go out in
    // broadcast frames (to the peer's address still).
    thread::sleep(Duration::from_millis(3000));
    let b_mac = mac_of(&rig.lab.ns("gw-b"), "lan0");
    let fields = [
        "eth.src",
        "eth.dst",
        "ip.src",
        "ip.dst",
        "ip.ttl",
        "vrrp.prio",
    ];
    let r = cap.decode(&fields);
    let frames = rig.check(r);
    // Once A is master, every advert on the LAN is A's, to B's address,
    // from the virtual MAC and A's own address.
    let last_b = frames.iter().rposition(|f| f[2] == B_LAN);
    let steady = &frames[last_b.map_or(0, |i| i + 1)..];
    assert!(steady.len() >= 20, "{frames:?}\n{}", rig.logs());
    for f in steady {
        assert_eq!(
            (f[0].as_str(), f[2].as_str(), f[3].as_str(), f[4].as_str()),
            (VMAC, A_LAN, B_LAN, "255"),
            "{f:?}"
        );
        assert_eq!(f[5], "200");
        assert!(f[1] == b_mac || f[1] == "ff:ff:ff:ff:ff:ff", "{f:?}");
    }
    // Broadcast only until the peer's MAC is known, then its MAC for good.
    let first_unicast = steady.iter().position(|f| f[1] == b_mac);
    let first_unicast = first_unicast.unwrap_or_else(|| panic!("never to {b_mac}: {steady:?}"));
    let unicast = &steady[first_unicast..];
    assert!(
        unicast.iter().all(|f| f[1] == b_mac) && unicast.len() >= 10,
        "{steady:?}"
    );
    // Nothing was sent to the multicast group by either side.
    assert!(
        frames.iter().all(|f| f[3] != "224.0.0.18"),
        "multicast adverts in unicast mode: {frames:?}"
    );
    let r = instance(&rig.apps[1], "lan-gw");
    let b = rig.check(r);
    assert_eq!(b["master"], A_LAN, "{b}");
}
