//! Configuration parsing: defaults, every error kind with its exact location,
//! cross-references, the example file and the plan.
#![allow(clippy::unwrap_used)]

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use xvrrp_control::config::{
    self, ChecksumMode, Config, ConfigError, Idle, IfAddr, Queues, RouterId, TrackTarget, Version,
    XdpMode, ZeroCopy,
};

const MINIMAL: &str = r#"
[[port]]
name = "lan0"

[[vrrp]]
name = "lan-gw"
port = "lan0"
vrid = 1
addresses = ["192.0.2.1/24"]
"#;

/// Errors as "LINE:COL: message".
fn errors(text: &str) -> Vec<String> {
    match config::parse(text, "t.toml") {
        Ok(c) => panic!("expected errors, got {c:?}"),
        Err(e) => e
            .errors()
            .iter()
            .map(|d| format!("{}:{}: {}", d.line, d.col, d.message))
            .collect(),
    }
}

/// The single error of `text`, which must start with `prefix`.
fn one_error(text: &str, prefix: &str) {
    let errs = errors(text);
    assert_eq!(errs.len(), 1, "{errs:#?}");
    assert!(errs[0].starts_with(prefix), "{:?} !~ {prefix:?}", errs[0]);
}

fn ok(text: &str) -> Config {
    config::parse(text, "t.toml").unwrap_or_else(|e| panic!("{e}"))
}

/// MINIMAL with extra lines in the [[vrrp]] table (line 10 onwards).
fn vrrp_with(extra: &str) -> String {
    format!("{MINIMAL}{extra}\n")
}

#[test]
fn defaults_are_resolved() {
    let c = ok(MINIMAL);
    assert_eq!(
        c.global.control_socket,
        PathBuf::from("/run/xvrrp/xvrrp.sock")
    );
    assert_eq!(c.global.socket_group, None);
    assert_eq!(c.global.metrics_listen, None);
    assert_eq!(c.global.notify, None);
    assert_eq!(c.dataplane.cores, vec![0]);
    assert_eq!(c.dataplane.idle, Idle::Adaptive);
    assert_eq!(c.dataplane.xdp_mode, XdpMode::Auto);
    assert_eq!(c.dataplane.zero_copy, ZeroCopy::Auto);
    assert_eq!(c.dataplane.batch, 64);
    assert_eq!(c.ports[0].queues, Queues::All);
    let v = &c.vrrp[0];
    assert_eq!(v.version, Version::V3);
    assert_eq!(v.priority, 100);
    assert_eq!(v.advert_interval(), Duration::from_secs(1));
    assert_eq!(v.interval_cs, 100);
    assert_eq!(v.id, RouterId(0));
    assert!(v.preempt);
    assert_eq!(v.preempt_delay, Duration::ZERO);
    assert!(v.accept);
    assert_eq!(v.checksum, ChecksumMode::Rfc9568);
    assert_eq!(
        v.addresses,
        vec![IfAddr {
            addr: "192.0.2.1".parse().unwrap(),
            prefix_len: 24
        }]
    );
    assert!(v.unicast_peers.is_empty());
    assert_eq!(v.garp.count, 3);
    assert_eq!(v.garp.interval, Duration::from_millis(50));
    assert_eq!(v.garp.refresh, Duration::ZERO);
    assert!(v.track.is_empty());
    assert!(c.sync_groups.is_empty());
    assert!(c.routes.is_empty());
    assert!(!c.kernel_routes);
}

#[test]
fn empty_file_is_a_valid_empty_config() {
    let c = ok("");
    assert!(c.ports.is_empty() && c.vrrp.is_empty());
}

#[test]
fn bare_address_is_a_host_prefix() {
    let c = ok(&MINIMAL.replace("192.0.2.1/24", "192.0.2.1"));
    assert_eq!(c.vrrp[0].addresses[0].prefix_len, 32);
    let c = ok(&MINIMAL.replace("192.0.2.1/24", "2001:db8::1"));
    assert_eq!(c.vrrp[0].addresses[0].prefix_len, 128);
    assert!(c.vrrp[0].is_ipv6());
}

#[test]
fn example_file_parses() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../xvrrp.example.toml");
    let c = config::load(&path).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(c.ports.len(), 2);
    assert_eq!(c.vrrp.len(), 4);
    assert_eq!(c.sync_groups.len(), 2);
    assert_eq!(c.routes.len(), 2);
    assert_eq!(c.global.socket_group.as_deref(), Some("xvrrp"));
    assert_eq!(
        c.global.metrics_listen,
        Some("127.0.0.1:9477".parse().unwrap())
    );
    let lan = c.instance("lan-gw").unwrap();
    assert_eq!(lan.priority, 150);
    assert_eq!(lan.advert_interval(), Duration::from_millis(10));
    assert_eq!(lan.track[0].target, TrackTarget::Port("wan0".into()));
    assert_eq!(lan.track[0].weight, -60);
    let lan6 = c.instance("lan-gw6").unwrap();
    assert_eq!(lan6.vmac.0, [0, 0, 0x5e, 0, 2, 1]);
    assert_eq!(lan.vmac.0, [0, 0, 0x5e, 0, 1, 1]);
}

#[test]
fn plan_shows_resolved_values() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../xvrrp.example.toml");
    let plan = config::load(&path).unwrap().plan();
    assert!(plan.contains("lan-gw: port lan0, vrid 1, VRRPv3 IPv4, vmac 00:00:5e:00:01:01"));
    assert!(plan.contains("lan-gw6: port lan0, vrid 1, VRRPv3 IPv6, vmac 00:00:5e:00:02:01"));
    // v3: skew = (256 - 150) * 10ms / 256 = 4.140625ms; MDI = 30ms + skew.
    assert!(
        plan.contains(
            "priority 150, advert every 10ms, skew 4.140625ms, master down after 34.140625ms"
        ),
        "{plan}"
    );
    assert!(plan.contains("dataplane: af_xdp, 1 worker on core 1"));
    // The metrics endpoint `run` serves.
    assert!(
        plan.contains("metrics: http://127.0.0.1:9477/metrics (Prometheus text)"),
        "{plan}"
    );
    // One worker serves every queue of both ports.
    assert!(
        plan.contains("worker 0 (core 1): lan0 all queues; wan0 all queues"),
        "{plan}"
    );
    assert!(plan.contains("gw: lan-gw, wan-gw"));
    assert!(plan.contains("198.51.100.0/24 via 203.0.113.100 port wan0"));
    assert!(plan.contains("track port wan0: weight -60"));
    // Stable: the same config renders the same text.
    assert_eq!(plan, config::load(&path).unwrap().plan());
}

#[test]
fn skew_and_master_down_interval() {
    let mut v = ok(MINIMAL).vrrp[0].clone();
    v.priority = 1;
    v.interval_cs = 4095;
    // B20: 4095 cs at priority 1: skew = 255 * 40.95 s / 256.
    assert_eq!(v.skew_time(), Duration::from_nanos(40_790_039_062));
    assert_eq!(
        v.master_down_interval(),
        Duration::from_nanos(122_850_000_000 + 40_790_039_062)
    );
    v.version = Version::V2;
    v.priority = 100;
    v.interval_cs = 100;
    // RFC 3768: (256 - 100) / 256 s, regardless of the interval.
    assert_eq!(v.skew_time(), Duration::from_nanos(609_375_000));
}

// --- Syntax and types -------------------------------------------------------

#[test]
fn syntax_error_has_location() {
    let errs = errors("[global]\ncontrol_socket = \"/x\n");
    assert_eq!(errs.len(), 1);
    assert!(errs[0].starts_with("2:"), "{errs:?}");
    assert!(errs[0].contains("invalid TOML"), "{errs:?}");
}

#[test]
fn duplicate_key_is_a_syntax_error() {
    let errs = errors("[dataplane]\nbatch = 1\nbatch = 2\n");
    assert_eq!(errs.len(), 1);
    assert!(errs[0].starts_with("3:1: invalid TOML"), "{errs:?}");
}

#[test]
fn display_prints_origin_line_col() {
    let e = config::parse("[dataplane]\nbatch = 0\n", "xvrrp.toml").unwrap_err();
    assert_eq!(
        e.to_string(),
        "xvrrp.toml:2:9: batch: 0 is out of range (1..=256)"
    );
}

#[test]
fn wrong_types() {
    one_error(
        "[dataplane]\nbatch = \"64\"\n",
        "2:9: batch: expected an integer",
    );
    one_error(
        "[dataplane]\nbackend = 1\n",
        "2:11: backend: expected a string, found an integer",
    );
    one_error(
        "[global]\nsocket_group = []\n",
        "2:16: socket_group: expected a string, found an array",
    );
    one_error(
        &vrrp_with("preempt = \"yes\""),
        "10:11: preempt: expected true or false, found a string",
    );
    one_error(
        &vrrp_with("advert_interval = 1"),
        "10:19: advert_interval: expected a duration string",
    );
    one_error("global = 3\n", "1:10: global: expected a table ([global])");
    one_error(
        "[vrrp]\nname = \"x\"\n",
        "1:1: vrrp: expected an array of tables ([[vrrp]]), found a table",
    );
    one_error(
        "port = [1]\n",
        "1:9: port: expected a table ([[port]]), found an integer",
    );
}

#[test]
fn out_of_range_values() {
    one_error(
        &MINIMAL.replace("vrid = 1", "vrid = 256"),
        "8:8: vrid: 256 is out of range (1..=255)",
    );
    one_error(
        &MINIMAL.replace("vrid = 1", "vrid = 0"),
        "8:8: vrid: 0 is not a valid virtual router id",
    );
    one_error(&vrrp_with("priority = 0"), "10:12: priority: 0 is reserved");
    one_error(
        &vrrp_with("priority = 300"),
        "10:12: priority: 300 is out of range (1..=255)",
    );
    one_error(
        &vrrp_with("version = 4"),
        "10:11: version: 4 is not a VRRP version",
    );
    one_error(
        "[dataplane]\nbatch = 257\n",
        "2:9: batch: 257 is out of range (1..=256)",
    );
    one_error(
        &vrrp_with("track = [{ port = \"lan0\", weight = -255 }]"),
        "10:36: weight: -255 is out of range (-254..=254)",
    );
    one_error(
        &vrrp_with("garp = { count = -1 }"),
        "10:18: count: -1 is out of range (0..=1000)",
    );
}

#[test]
fn owner_priority_is_accepted() {
    let c = ok(&vrrp_with("priority = 255"));
    assert_eq!(c.vrrp[0].priority, 255);
    assert!(c.plan().contains("priority 255 (address owner)"));
}

#[test]
fn bad_enumerations() {
    one_error(
        "[dataplane]\nidle = \"spin\"\n",
        "2:8: idle: unknown value \"spin\" (expected one of: busy, adaptive, wait)",
    );
    one_error(
        "[dataplane]\nxdp_mode = \"skb\"\n",
        "2:12: xdp_mode: unknown value",
    );
    one_error(
        "[dataplane]\nzero_copy = \"yes\"\n",
        "2:13: zero_copy: unknown value",
    );
    one_error(
        &vrrp_with("checksum = \"rfc5798\""),
        "10:12: checksum: unknown value",
    );
}

#[test]
fn bad_durations() {
    one_error(
        &vrrp_with("advert_interval = \"10\""),
        "10:19: advert_interval: duration \"10\" needs a unit",
    );
    one_error(
        &vrrp_with("advert_interval = \"10h\""),
        "10:19: advert_interval: unknown unit \"h\"",
    );
    one_error(
        &vrrp_with("preempt_delay = \"soon\""),
        "10:17: preempt_delay: invalid duration",
    );
    one_error(
        &vrrp_with("garp = { interval = \"\" }"),
        "10:21: interval: empty duration",
    );
}

#[test]
fn advert_interval_rules_per_version() {
    one_error(
        &vrrp_with("advert_interval = \"15ms\""),
        "10:19: advert_interval: 15ms is not a multiple of 10ms",
    );
    one_error(
        &vrrp_with("advert_interval = \"5ms\""),
        "10:19: advert_interval: 5ms is out of range for VRRPv3",
    );
    one_error(
        &vrrp_with("advert_interval = \"41s\""),
        "10:19: advert_interval: 41s is out of range",
    );
    assert_eq!(
        ok(&vrrp_with("advert_interval = \"40.95s\"")).vrrp[0].advert_interval(),
        Duration::from_millis(40_950)
    );
    one_error(
        &vrrp_with("version = 2\nadvert_interval = \"1.5s\""),
        "11:19: advert_interval: VRRPv2 needs whole seconds from 1s to 255s, found 1.5s",
    );
    one_error(
        &vrrp_with("version = 2\nadvert_interval = \"256s\""),
        "11:19: advert_interval: VRRPv2",
    );
    assert_eq!(
        ok(&vrrp_with("version = 2\nadvert_interval = \"3s\"")).vrrp[0].version,
        Version::V2
    );
}

#[test]
fn bad_addresses() {
    let with = |a: &str| MINIMAL.replace("\"192.0.2.1/24\"", a);
    one_error(
        &with("\"192.0.2.300/24\""),
        "9:14: addresses[0]: \"192.0.2.300/24\" is not an address",
    );
    one_error(
        &with("\"192.0.2.1/33\""),
        "9:14: addresses[0]: prefix length \"33\" must be 0..=32",
    );
    one_error(
        &with("\"2001:db8::1/129\""),
        "9:14: addresses[0]: prefix length \"129\" must be 0..=128",
    );
    one_error(
        &with("\"224.0.0.18\""),
        "9:14: addresses[0]: 224.0.0.18 is a multicast address",
    );
    one_error(
        &with("\"0.0.0.0/0\""),
        "9:14: addresses[0]: 0.0.0.0 is the unspecified address",
    );
    one_error(
        &with(""),
        "9:13: addresses: list at least one virtual address",
    );
    one_error(
        &with("\"192.0.2.1/24\", \"2001:db8::1/64\""),
        "9:30: addresses[1]: 2001:db8::1/64 is IPv6 but 192.0.2.1/24 is IPv4",
    );
    one_error(
        &with("\"192.0.2.1/24\", \"192.0.2.1/25\""),
        "9:30: addresses[1]: 192.0.2.1 is listed twice",
    );
    one_error(
        &format!("{}version = 2\n", with("\"2001:db8::1/64\"")),
        "9:14: addresses[0]: 2001:db8::1 is IPv6, but VRRP version 2",
    );
    one_error(
        &vrrp_with("unicast_peers = [\"2001:db8::3\"]"),
        "10:18: unicast_peers[0]: 2001:db8::3 is IPv6",
    );
    one_error(
        &vrrp_with("unicast_peers = [\"nope\"]"),
        "10:18: unicast_peers[0]: \"nope\" is not an IPv4 or IPv6 address",
    );
    one_error(
        "[global]\nmetrics_listen = \"127.0.0.1\"\n",
        "2:18: metrics_listen: \"127.0.0.1\" is not an address and port",
    );
}

#[test]
fn missing_required_keys_point_at_the_table() {
    let errs = errors("[[port]]\nname = \"lan0\"\n\n[[vrrp]]\nname = \"x\"\n");
    assert_eq!(
        errs,
        vec![
            "4:1: missing key \"port\" in [[vrrp]]",
            "4:1: missing key \"vrid\" in [[vrrp]]",
            "4:1: missing key \"addresses\" in [[vrrp]]",
        ]
    );
    one_error(
        "[[port]]\nqueues = \"all\"\n",
        "1:1: missing key \"name\" in [[port]]",
    );
    one_error(
        &vrrp_with("track = [{ weight = -10 }]"),
        "10:10: track: give exactly one of `port`, `address` or `route`, with a `weight`",
    );
}

/// P10: an address or a route can be tracked as well as a port; exactly one
/// target per entry.
#[test]
fn track_address_and_route() {
    let c = ok(&vrrp_with(
        "track = [{ address = \"203.0.113.2\", weight = -20 }, { route = \"0.0.0.0/0\", weight = -30 }]",
    ));
    let t = &c.vrrp[0].track;
    assert_eq!(
        t[0].target,
        TrackTarget::Address("203.0.113.2".parse().unwrap())
    );
    assert_eq!(
        t[1].target,
        TrackTarget::Route(IfAddr {
            addr: "0.0.0.0".parse().unwrap(),
            prefix_len: 0
        })
    );
    assert!(c.plan().contains("track route 0.0.0.0/0: weight -30"));
    one_error(
        &vrrp_with("track = [{ port = \"lan0\", address = \"192.0.2.9\", weight = -1 }]"),
        "10:10: track: give exactly one of",
    );
    one_error(
        &vrrp_with("track = [{ route = \"198.51.100.7/24\", weight = -1 }]"),
        "10:20: route: 198.51.100.7/24 has host bits set",
    );
}

// --- Unknown keys, one per table --------------------------------------------

#[test]
fn unknown_key_in_every_table() {
    one_error(
        "bogus = 1\n",
        "1:1: unknown key \"bogus\" in the top level (expected one of: global, dataplane, port, vrrp, sync_group, route, routes)",
    );
    one_error(
        "[global]\nsocket = \"/x\"\n",
        "2:1: unknown key \"socket\" in [global]",
    );
    one_error("[dataplane]\ncore = [1]\n", "2:1: unknown key \"core\" in [dataplane] (expected one of: backend, cores, idle, xdp_mode, zero_copy, batch); did you mean \"cores\"?");
    one_error(
        "[[port]]\nname = \"a\"\nqueue = 1\n",
        "3:1: unknown key \"queue\" in [[port]]",
    );
    one_error(
        &vrrp_with("prioriy = 120"),
        "10:1: unknown key \"prioriy\" in [[vrrp]] (expected one of: name, port, vrid, version, priority, advert_interval, preempt, preempt_delay, accept, checksum, addresses, unicast_peers, garp, track); did you mean \"priority\"?",
    );
    one_error(
        &vrrp_with("garp = { cnt = 1 }"),
        "10:10: unknown key \"cnt\" in vrrp.garp",
    );
    one_error(
        &vrrp_with("track = [{ port = \"lan0\", weight = 1, w = 2 }]"),
        "10:39: unknown key \"w\" in vrrp.track",
    );
    one_error(
        &format!("{MINIMAL}[[sync_group]]\nname = \"g\"\nmembers = [\"lan-gw\"]\nmember = []\n"),
        "13:1: unknown key \"member\" in [[sync_group]]",
    );
    one_error(
        "[[port]]\nname = \"wan0\"\n[[route]]\nto = \"0.0.0.0/0\"\nvia = \"203.0.113.254\"\nport = \"wan0\"\ndev = \"x\"\n",
        "7:1: unknown key \"dev\" in [[route]]",
    );
    one_error("[routes]\nkernal = true\n", "2:1: unknown key \"kernal\" in [routes] (expected one of: kernel); did you mean \"kernel\"?");
}

#[test]
fn dotted_and_standard_subtables_are_checked_too() {
    one_error(
        &vrrp_with("garp.bogus = 1"),
        "10:6: unknown key \"bogus\" in vrrp.garp",
    );
    let c = ok(&vrrp_with("[vrrp.garp]\ncount = 5"));
    assert_eq!(c.vrrp[0].garp.count, 5);
}

// --- Cross-references -------------------------------------------------------

#[test]
fn references_to_undeclared_ports() {
    one_error(
        &MINIMAL.replace("port = \"lan0\"", "port = \"lan9\""),
        "7:8: port: no [[port]] named \"lan9\" (declared: lan0)",
    );
    one_error(
        &vrrp_with("track = [{ port = \"wan0\", weight = -10 }]"),
        "10:19: track.port: no [[port]] named \"wan0\"",
    );
    one_error(
        &format!(
            "{MINIMAL}[[route]]\nto = \"0.0.0.0/0\"\nvia = \"192.0.2.254\"\nport = \"wan0\"\n"
        ),
        "13:8: port: no [[port]] named \"wan0\"",
    );
}

#[test]
fn duplicates_are_rejected() {
    one_error(
        &format!("{MINIMAL}[[vrrp]]\nname = \"lan-gw\"\nport = \"lan0\"\nvrid = 2\naddresses = [\"192.0.2.9\"]\n"),
        "11:8: name: instance \"lan-gw\" is declared twice",
    );
    one_error(
        &format!("{MINIMAL}[[vrrp]]\nname = \"b\"\nport = \"lan0\"\nvrid = 1\naddresses = [\"192.0.2.9\"]\n"),
        "13:8: vrid: 1 (IPv4) on port \"lan0\" is already used by instance \"lan-gw\"",
    );
    // The same VRID for the other family is fine.
    ok(&format!("{MINIMAL}[[vrrp]]\nname = \"b\"\nport = \"lan0\"\nvrid = 1\naddresses = [\"2001:db8::1\"]\n"));
    one_error(
        &format!("{MINIMAL}[[port]]\nname = \"lan0\"\n"),
        "11:8: name: port \"lan0\" is declared twice",
    );
    one_error(
        "[dataplane]\ncores = [1, 2, 1]\n",
        "2:16: cores: core 1 is listed twice",
    );
    one_error(
        "[dataplane]\ncores = []\n",
        "2:9: cores: list at least one core",
    );
    one_error(
        "[[port]]\nname = \"a\"\nqueues = [0, 0]\n",
        "3:14: queues: queue 0 is listed twice",
    );
    one_error(
        "[[port]]\nname = \"a\"\nqueues = [0, 64]\n",
        "3:14: queues[1]: 64 is out of range (0..=63)",
    );
}

// --- The dataplane's backend and the settings it does not serve --------------

#[test]
fn backend_af_xdp_is_accepted_and_af_packet_refused() {
    // SPEC §2 lists the key: a file that names the one backend stays valid.
    ok(&format!("[dataplane]\nbackend = \"af_xdp\"\n{MINIMAL}"));
    // AF_PACKET is not implemented: refused at its location, never run as AF_XDP.
    one_error(
        "[dataplane]\nbackend = \"af_packet\"\n",
        "2:11: backend: \"af_packet\" is not available in this version of xvrrp (AF_XDP is the only backend); write \"af_xdp\" or remove the key",
    );
    one_error(
        "[dataplane]\nbackend = \"dpdk\"\n",
        "2:11: backend: unknown value \"dpdk\" (the only backend is \"af_xdp\")",
    );
    // Still one error per problem: a refused backend hides nothing else.
    let errs = errors("[dataplane]\nbackend = \"af_packet\"\nbatch = 0\n");
    assert_eq!(errs.len(), 2, "{errs:#?}");
}

#[test]
fn metrics_listen_is_parsed_and_the_plan_prints_its_url() {
    let c = ok(&format!(
        "[global]\nmetrics_listen = \"127.0.0.1:9477\"\n{MINIMAL}"
    ));
    assert_eq!(
        c.global.metrics_listen,
        Some("127.0.0.1:9477".parse().unwrap())
    );
    let plan = c.plan();
    assert!(
        plan.contains("metrics: http://127.0.0.1:9477/metrics (Prometheus text)"),
        "{plan}"
    );
    assert!(ok(MINIMAL).plan().contains("metrics: off"));
}

#[test]
fn plan_lists_the_queues_of_each_worker() {
    let text =
        format!("[dataplane]\ncores = [0, 1]\n{MINIMAL}[[port]]\nname = \"wan0\"\nqueues = [0]\n");
    let c = ok(&text);
    // Queue counts as `check` reads them where the ports exist.
    let plan = c.plan_with(&|name| (name == "lan0").then_some(4));
    assert!(
        plan.contains("worker 0 (core 0): lan0 queues 0,2; wan0 queue 0\n"),
        "{plan}"
    );
    assert!(
        plan.contains("worker 1 (core 1): lan0 queues 1,3; sends on wan0 through worker 0\n"),
        "{plan}"
    );
    // A port not present here: its queues are counted at start.
    let plan = c.plan();
    assert!(
        plan.contains(
            "worker 1 (core 1): lan0 queues 1, 3, ... (of all: lan0 is not here, counted at start)"
        ),
        "{plan}"
    );
    // The assignment the fast path uses: queues in turn, the first to worker 0.
    assert_eq!(
        (0..5)
            .map(|i| config::queue_worker(i, 2))
            .collect::<Vec<_>>(),
        [0, 1, 0, 1, 0]
    );
    assert_eq!(Queues::All.resolve(3), [0, 1, 2]);
    assert_eq!(Queues::List(vec![5]).resolve(3), [5]);
}

#[test]
fn sync_group_membership() {
    let base = format!(
        "{MINIMAL}[[vrrp]]\nname = \"wan-gw\"\nport = \"lan0\"\nvrid = 2\naddresses = [\"192.0.2.9\"]\n"
    );
    // The sync groups start on line 15.
    one_error(
        &format!("{base}[[sync_group]]\nname = \"g\"\nmembers = [\"lan-gw\", \"nope\"]\n"),
        "17:22: members: no [[vrrp]] instance named \"nope\"",
    );
    one_error(
        &format!("{base}[[sync_group]]\nname = \"g\"\nmembers = [\"lan-gw\"]\n[[sync_group]]\nname = \"h\"\nmembers = [\"wan-gw\", \"lan-gw\"]\n"),
        "20:22: members: \"lan-gw\" is already in sync group \"g\"",
    );
    let c = ok(&format!(
        "{base}[[sync_group]]\nname = \"g\"\nmembers = [\"lan-gw\", \"wan-gw\"]\n"
    ));
    assert_eq!(c.sync_groups[0].members, vec!["lan-gw", "wan-gw"]);
}

#[test]
fn routes() {
    let base = format!("{MINIMAL}[[route]]\n");
    let c = ok(&format!(
        "{base}to = \"0.0.0.0/0\"\nvia = \"192.0.2.254\"\nport = \"lan0\"\n[routes]\nkernel = true\n"
    ));
    assert_eq!(c.routes[0].via, "192.0.2.254".parse::<IpAddr>().unwrap());
    assert!(c.kernel_routes);
    one_error(
        &format!("{base}to = \"10.1.2.3/8\"\nvia = \"192.0.2.254\"\nport = \"lan0\"\n"),
        "11:6: to: 10.1.2.3/8 has host bits set; did you mean 10.0.0.0/8?",
    );
    one_error(
        &format!("{base}to = \"::/0\"\nvia = \"192.0.2.254\"\nport = \"lan0\"\n"),
        "12:7: via: next hop 192.0.2.254 is IPv4",
    );
}

#[test]
fn global_paths() {
    one_error(
        "[global]\ncontrol_socket = \"\"\n",
        "2:18: control_socket: must not be empty",
    );
    one_error(
        &format!("[global]\ncontrol_socket = \"/{}\"\n", "a".repeat(120)),
        "2:18: control_socket: path is longer than 107 bytes",
    );
    one_error(
        "[global]\nnotify = \"notify.sh\"\n",
        "2:10: notify: must be an absolute path",
    );
    one_error(
        "[[port]]\nname = \"a-very-long-interface\"\n",
        "2:8: name: interface name",
    );
    one_error(
        "[[port]]\nname = \"a/b\"\n",
        "2:8: name: \"a/b\" is not a valid interface name",
    );
}

#[test]
fn many_errors_are_reported_together_in_file_order() {
    let text = r#"[dataplane]
batch = 0
idle = "spin"

[[port]]
name = "lan0"
speed = 10

[[vrrp]]
name = "lan-gw"
port = "lan1"
vrid = 300
priority = 0
advert_interval = "15ms"
addresses = ["192.0.2.1/24", "2001:db8::1"]
"#;
    assert_eq!(
        errors(text),
        vec![
            "2:9: batch: 0 is out of range (1..=256)",
            "3:8: idle: unknown value \"spin\" (expected one of: busy, adaptive, wait)",
            "7:1: unknown key \"speed\" in [[port]] (expected one of: name, queues)",
            "11:8: port: no [[port]] named \"lan1\" (declared: lan0)",
            "12:8: vrid: 300 is out of range (1..=255)",
            "13:12: priority: 0 is reserved for a master giving up (RFC 5798 §5.2.4); use 1..=254, or 255 for the address owner",
            "14:19: advert_interval: 15ms is not a multiple of 10ms (VRRPv3 counts in centiseconds)",
            "15:30: addresses[1]: 2001:db8::1/128 is IPv6 but 192.0.2.1/24 is IPv4; use one instance per address family",
        ]
    );
}

#[test]
fn column_counts_characters_not_bytes() {
    // "é" is two bytes; the column of the value after it must count it once.
    let errs = errors("[[port]]\nname = \"é\" ; x = 1\n");
    assert_eq!(errs.len(), 1);
    assert!(errs[0].starts_with("2:12:"), "{errs:?}");
}

#[test]
fn load_reports_io_and_utf8_errors() {
    let dir = std::env::temp_dir().join(format!("xvrrp-cfg-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let missing = dir.join("missing.toml");
    let e = config::load(&missing).unwrap_err();
    assert!(matches!(e, ConfigError::Io { .. }));
    assert!(e
        .to_string()
        .starts_with(&format!("{}: ", missing.display())));

    let bad = dir.join("bad.toml");
    std::fs::write(&bad, b"[global]\nnotify = \"/a\xffb\"\n").unwrap();
    let e = config::load(&bad).unwrap_err();
    assert_eq!(
        e.to_string(),
        format!("{}:2:13: invalid UTF-8", bad.display())
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn ipv6_instance_with_only_global_addresses_gets_a_derived_link_local_first() {
    let text = r#"
[[port]]
name = "lan0"

[[vrrp]]
name = "lan6"
port = "lan0"
vrid = 1
addresses = ["2001:db8:1::1/64"]
"#;
    let cfg = xvrrp_control::config::parse(text, "v6.toml").unwrap();
    let v = &cfg.vrrp[0];
    let advertised: Vec<String> = v
        .advertised_addresses()
        .iter()
        .map(ToString::to_string)
        .collect();
    // EUI-64 of 00:00:5e:00:02:01 with the universal/local bit flipped.
    assert_eq!(
        advertised,
        ["fe80::200:5eff:fe00:201/64", "2001:db8:1::1/64"]
    );
    assert!(cfg
        .plan()
        .contains("fe80::200:5eff:fe00:201/64 (link-local, derived"));

    let given = text.replace(
        "[\"2001:db8:1::1/64\"]",
        "[\"fe80::1/64\", \"2001:db8:1::1/64\"]",
    );
    let cfg = xvrrp_control::config::parse(&given, "v6.toml").unwrap();
    assert_eq!(cfg.vrrp[0].derived_link_local(), None);
    assert_eq!(cfg.vrrp[0].advertised_addresses().len(), 2);
}
