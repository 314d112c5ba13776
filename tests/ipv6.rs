//! VRRPv3 over IPv6 in the lab, A (priority 200) and B (priority 100), each
//! with four virtual routers in one sync group, 100 ms adverts, preempting:
//!
//! | instance | port | VRID | address |
//! |---|---|---|---|
//! | `lan-gw` | `lan0` | 1 | 192.0.2.1/24 |
//! | `wan-gw` | `wan0` | 2 | 203.0.113.1/24 |
//! | `lan6` | `lan0` | 1 | 2001:db8:1::1/64 |
//! | `wan6` | `wan0` | 2 | 2001:db8:2::1/64 |
//!
//! The election as `status` shows it (a link-local master address), what the
//! client resolves the IPv6 gateway to (the virtual MAC 00:00:5e:00:02:01
//! with the Router flag, answered by the master only), forwarding and echo
//! over IPv6, failover and failback under an IPv6 flow, and the advert on
//! the wire as tshark decodes it (P13).

#![allow(clippy::unwrap_used)]

mod common;

use std::io::Read;
use std::net::{IpAddr, Ipv6Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use common::{flow, lab, netns, Appliance, ApplianceConfig, TestLab, WorkDir, NO_STOP};
use lab::LabInstance;

const LAN_VIP: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 1, 0, 0, 0, 0, 1);
const WAN_VIP: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 2, 0, 0, 0, 0, 1);
const CLIENT: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 1, 0, 0, 0, 0, 0x100);
const SERVER: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 2, 0, 0, 0, 0, 0x100);
/// The link-local virtual addresses: EUI-64 of the virtual MACs
/// 00:00:5e:00:02:01 and 00:00:5e:00:02:02 (RFC 9568 §5.2.9).
const LAN_VLL: Ipv6Addr = Ipv6Addr::new(0xfe80, 0, 0, 0, 0x200, 0x5eff, 0xfe00, 0x201);
const WAN_VLL: Ipv6Addr = Ipv6Addr::new(0xfe80, 0, 0, 0, 0x200, 0x5eff, 0xfe00, 0x202);
/// The IPv6 virtual MAC of VRID 1 (RFC 9568 §7.3).
const LAN_VMAC6: &str = "00:00:5e:00:02:01";
const A_PRIORITY: u8 = 200;
const B_PRIORITY: u8 = 100;
/// A takeover must complete well within this (3 × 100 ms adverts + skew,
/// plus slack for a loaded machine).
const TAKEOVER_TIMEOUT: Duration = Duration::from_secs(5);

fn ip6(a: Ipv6Addr) -> IpAddr {
    IpAddr::V6(a)
}

// ----- the rig ---------------------------------------------------------------------

/// The configuration of one appliance: the fixtures' IPv4 gateway plus the
/// two IPv6 routers, all four in one sync group.
fn dual_stack_config(lab: &lab::Lab, name: &str, priority: u8) -> ApplianceConfig {
    let mut c = common::gateway_config(lab, name, priority);
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
    c
}

/// A and B (not started until asked), then the lab. Fields drop in order:
/// the daemons are killed (by PID) before their scratch directory and the
/// lab are removed.
struct Rig {
    a: Appliance,
    b: Appliance,
    work: WorkDir,
    lab: TestLab,
}

impl Rig {
    /// Builds the lab and writes both configurations; starts nothing.
    /// `None` when the test must be skipped.
    fn new(test: &str) -> Option<Rig> {
        let lab = common::setup(test)?;
        let work = WorkDir::create(lab.prefix()).unwrap();
        let exe = Path::new(common::XVRRP);
        let appliance = |name: &str, role: &str, priority: u8| {
            let config = dual_stack_config(&lab, name, priority);
            Appliance::new(name, exe, &lab.ns(role), &config, work.path()).unwrap()
        };
        let a = appliance("a", "gw-a", A_PRIORITY);
        let b = appliance("b", "gw-b", B_PRIORITY);
        Some(Rig { a, b, work, lab })
    }

    /// Builds the lab, starts A and B and waits until A is master and B
    /// backup of all four routers.
    fn standard(test: &str) -> Option<Rig> {
        let mut rig = Rig::new(test)?;
        rig.a.start().unwrap();
        rig.b.start().unwrap();
        rig.wait_a_master(common::ELECTION_TIMEOUT);
        Some(rig)
    }

    /// Unwraps `r`, panicking with both daemons' logs (kept on disk) on error.
    fn check<T>(&mut self, r: Result<T>) -> T {
        match r {
            Ok(v) => v,
            Err(e) => {
                self.work.keep();
                panic!("{e:#}\n{}", self.logs())
            }
        }
    }

    /// Both daemons' recent log lines, for failure messages.
    fn logs(&self) -> String {
        format!(
            "--- log of A ({}):\n{}\n--- log of B:\n{}",
            self.work.path().display(),
            self.a.log_tail(25),
            self.b.log_tail(25)
        )
    }

    /// Waits until A is master and B backup of every router.
    fn wait_a_master(&mut self, timeout: Duration) {
        let (a, b) = (&mut self.a, &mut self.b);
        let r = lab::wait_until("A master and B backup", timeout, &NO_STOP, || {
            Ok(a.all_in("master")? && b.all_in("backup")?)
        });
        self.check(r);
    }

    /// Waits until B is master of every router.
    fn wait_b_master(&mut self, timeout: Duration) {
        let b = &mut self.b;
        let r = lab::wait_until("B master", timeout, &NO_STOP, || b.all_in("master"));
        self.check(r);
    }

    /// Pings `dst` from the lab namespace `role`, failing with the logs.
    fn ping(&mut self, role: &str, dst: Ipv6Addr, count: u32) {
        let r = flow::ping(&self.lab.ns(role), ip6(dst), count, Duration::from_secs(5));
        self.check(r);
    }

    /// The client's neighbour entry for the LAN VIP, as `ip` prints it.
    fn client_vip_entry(&mut self) -> String {
        let client = self.lab.ns("client");
        let r = netns::ip(&["-n", &client, "-6", "neigh", "show", &LAN_VIP.to_string()]);
        self.check(r).trim().to_owned()
    }

    /// Starts a UDP flow from the client to the server over IPv6 and waits
    /// until it arrives.
    fn flowing(&mut self) -> flow::Flow {
        let dst = SocketAddr::from((SERVER, flow::DEFAULT_PORT));
        let (client, server) = (self.lab.ns("client"), self.lab.ns("server"));
        let f = flow::Flow::start(&client, &server, dst, 1000);
        let f = self.check(f);
        let r = lab::wait_until(
            "the IPv6 flow to arrive",
            Duration::from_secs(5),
            &NO_STOP,
            || Ok(f.received() > 0),
        );
        self.check(r);
        f
    }
}

/// Instance `name` in `app`'s `status --json`.
fn instance(app: &Appliance, name: &str) -> Result<serde_json::Value> {
    let reply = app.query(&["status"])?;
    let found = lab::instances(&reply).find(|i| i["name"] == name).cloned();
    found.with_context(|| format!("no instance {name} in {reply}"))
}

/// Neighbour Advertisements `app`'s fast path sent for its virtual
/// addresses, summed over ports and workers.
fn nd_replies(app: &Appliance) -> Result<u64> {
    Ok(common::drop_count(&app.query(&["stats"])?, "nd_replies"))
}

/// The link-local address of `ifname` in namespace `ns`.
fn link_local(ns: &str, ifname: &str) -> Result<Ipv6Addr> {
    let out = netns::ip(&[
        "-n", ns, "-j", "-6", "addr", "show", "dev", ifname, "scope", "link",
    ])?;
    let links: serde_json::Value = serde_json::from_str(&out)?;
    let found = links
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|l| l.get("addr_info").and_then(|a| a.as_array()))
        .flatten()
        .find_map(|a| a.get("local").and_then(|v| v.as_str()));
    let addr = found.with_context(|| format!("no link-local address on {ifname} in {ns}"))?;
    Ok(addr.parse()?)
}

/// Whether a neighbour line of `ip -6 neigh` carries the Router flag.
fn has_router_flag(entry: &str) -> bool {
    entry.split_whitespace().any(|w| w == "router")
}

// ----- election and status ---------------------------------------------------------

#[test]
fn v6_exactly_one_master_and_status_shows_link_local_master() {
    let Some(mut rig) = Rig::standard("v6_exactly_one_master_and_status_shows_link_local_master")
    else {
        return;
    };
    for (name, port, vrid) in [("lan6", "lan0", 1), ("wan6", "wan0", 2)] {
        let ia = instance(&rig.a, name);
        let ia = rig.check(ia);
        let ib = instance(&rig.b, name);
        let ib = rig.check(ib);
        let masters = [&ia, &ib].iter().filter(|i| i["state"] == "master").count();
        assert_eq!(masters, 1, "{name}: A {ia}, B {ib}");
        assert_eq!(ia["state"], "master", "{ia}");
        assert_eq!(ib["state"], "backup", "{ib}");
        assert_eq!(ia["priority"], A_PRIORITY, "{ia}");
        assert_eq!(ib["priority"], B_PRIORITY, "{ib}");
        assert_eq!(ia["vrid"], vrid, "{ia}");
        assert_eq!(ia["version"], 3, "{ia}");

        // B learnt its master from A's adverts, whose source is A's
        // link-local address on that port (RFC 9568 §5.1.2.2).
        let a_ll = link_local(&rig.lab.ns("gw-a"), port);
        let a_ll = rig.check(a_ll);
        let master = ib["master"].as_str().unwrap_or_default();
        let parsed: Option<Ipv6Addr> = master.parse().ok();
        assert_eq!(
            parsed,
            Some(a_ll),
            "{name}: B's master {ib}\n{}",
            rig.logs()
        );
        assert!(a_ll.is_unicast_link_local(), "{a_ll}");
    }
    // The IPv4 routers of the same group are unaffected.
    for name in ["lan-gw", "wan-gw"] {
        let ia = instance(&rig.a, name);
        let ia = rig.check(ia);
        let ib = instance(&rig.b, name);
        let ib = rig.check(ib);
        assert_eq!(ia["state"], "master", "{ia}");
        assert_eq!(ib["state"], "backup", "{ib}");
    }
}

// ----- neighbour discovery -----------------------------------------------------------

#[test]
fn b30_p08_client_resolves_v6_vip_to_vmac_with_router_flag() {
    let Some(mut rig) = Rig::standard("b30_p08_client_resolves_v6_vip_to_vmac_with_router_flag")
    else {
        return;
    };
    let client = rig.lab.ns("client");
    // Traffic to the server makes the client resolve its IPv6 gateway.
    rig.ping("client", SERVER, 2);
    let entry = rig.client_vip_entry();
    let mac = flow::neighbour_mac(&client, ip6(LAN_VIP)).unwrap();
    assert_eq!(mac.as_deref(), Some(LAN_VMAC6), "{entry}\n{}", rig.logs());
    assert!(has_router_flag(&entry), "no Router flag: {entry}");

    // A fresh solicitation, multicast to the solicited-node group, reaches
    // both appliances: only the master answers.
    let b_before = nd_replies(&rig.b);
    let b_before = rig.check(b_before);
    let a_before = nd_replies(&rig.a);
    let a_before = rig.check(a_before);
    let flushed = netns::ip(&["-n", &client, "-6", "neigh", "flush", "dev", "eth0"]);
    rig.check(flushed);
    rig.ping("client", LAN_VIP, 1);
    let entry = rig.client_vip_entry();
    let mac = flow::neighbour_mac(&client, ip6(LAN_VIP)).unwrap();
    assert_eq!(mac.as_deref(), Some(LAN_VMAC6), "{entry}\n{}", rig.logs());
    assert!(has_router_flag(&entry), "no Router flag: {entry}");
    let a_after = nd_replies(&rig.a);
    let a_after = rig.check(a_after);
    let b_after = nd_replies(&rig.b);
    let b_after = rig.check(b_after);
    assert!(
        a_after > a_before,
        "A answered no NS: {a_before} → {a_after}"
    );
    assert_eq!(
        (b_before, b_after),
        (0, 0),
        "the backup answered NS\n{}",
        rig.logs()
    );
}

// ----- forwarding and echo ------------------------------------------------------------

#[test]
fn v6_ping_client_to_server_through_gateway() {
    let Some(mut rig) = Rig::standard("v6_ping_client_to_server_through_gateway") else {
        return;
    };
    rig.ping("client", SERVER, 5);
    // And back: the server's route to the LAN goes through the WAN VIP.
    rig.ping("server", CLIENT, 3);
}

#[test]
fn v6_ping_to_the_vips_answered_in_accept_mode() {
    let Some(mut rig) = Rig::standard("v6_ping_to_the_vips_answered_in_accept_mode") else {
        return;
    };
    let lan6 = instance(&rig.a, "lan6");
    let lan6 = rig.check(lan6);
    assert_eq!(lan6["accept"], true, "{lan6}");
    rig.ping("client", LAN_VIP, 3);
    rig.ping("server", WAN_VIP, 3);
    // The link-local virtual address is a virtual address too.
    let scoped = format!("{LAN_VLL}%eth0");
    let out = netns::exec_output(
        &rig.lab.ns("client"),
        "ping",
        &["-n", "-q", "-c", "2", "-i", "0.2", "-w", "5", &scoped],
    );
    let out = rig.check(out);
    assert!(
        out.status.success(),
        "ping {scoped}: {}{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
        rig.logs()
    );
}

#[test]
fn v6_vip_on_no_kernel_interface() {
    let Some(rig) = Rig::standard("v6_vip_on_no_kernel_interface") else {
        return;
    };
    for gw in ["gw-a", "gw-b"] {
        let ns = rig.lab.ns(gw);
        for vip in [LAN_VIP, WAN_VIP, LAN_VLL, WAN_VLL] {
            assert!(
                !common::ip_on_any_interface(&ns, ip6(vip)).unwrap(),
                "{vip} configured on a kernel interface of {ns}"
            );
        }
    }
}

// ----- failover and failback -----------------------------------------------------------

#[test]
fn f01_v6_sigkill_master_backup_takes_over() {
    let Some(mut rig) = Rig::standard("f01_v6_sigkill_master_backup_takes_over") else {
        return;
    };
    rig.ping("client", SERVER, 1);
    let f = rig.flowing();
    thread::sleep(Duration::from_millis(500));
    let killed = rig.a.kill();
    rig.check(killed);
    let killed = Instant::now();
    rig.wait_b_master(TAKEOVER_TIMEOUT);
    let takeover = killed.elapsed();
    let at_takeover = f.received();
    let r = lab::wait_until(
        "the IPv6 flow to resume through B",
        Duration::from_secs(2),
        &NO_STOP,
        || Ok(f.received() > at_takeover + 100),
    );
    rig.check(r);
    thread::sleep(Duration::from_millis(300));
    let report = f.stop().unwrap();
    eprintln!("v6 takeover after {takeover:?}; {report}");
    assert!(report.max_gap_ms < 2000.0, "{report}\n{}", rig.logs());
    assert!(report.received > 0 && report.lost < report.sent, "{report}");
    // The hosts never see the change: the gateway keeps its virtual MAC.
    let entry = rig.client_vip_entry();
    let mac = flow::neighbour_mac(&rig.lab.ns("client"), ip6(LAN_VIP)).unwrap();
    assert_eq!(mac.as_deref(), Some(LAN_VMAC6), "{entry}");
    rig.ping("client", SERVER, 3);
    rig.ping("server", CLIENT, 3);
}

#[test]
fn v6_restarted_master_takes_back() {
    let Some(mut rig) = Rig::standard("v6_restarted_master_takes_back") else {
        return;
    };
    let killed = rig.a.kill();
    rig.check(killed);
    rig.wait_b_master(TAKEOVER_TIMEOUT);
    let f = rig.flowing();
    let started = rig.a.start();
    rig.check(started);
    rig.wait_a_master(common::ELECTION_TIMEOUT);
    thread::sleep(Duration::from_millis(500));
    let report = f.stop().unwrap();
    eprintln!("v6 failback: {report}");
    assert!(report.max_gap_ms < 2000.0, "{report}\n{}", rig.logs());
    // The client still reaches the server, both ways, through the same MAC.
    rig.ping("client", SERVER, 3);
    rig.ping("server", CLIENT, 3);
    let entry = rig.client_vip_entry();
    let mac = flow::neighbour_mac(&rig.lab.ns("client"), ip6(LAN_VIP)).unwrap();
    assert_eq!(mac.as_deref(), Some(LAN_VMAC6), "{entry}");
}

// ----- P13: the advert on the wire -----------------------------------------------------

/// tcpdump writing a pcap file in a lab namespace; killed by its PID when
/// dropped.
struct Tcpdump {
    child: Child,
    file: PathBuf,
}

impl Tcpdump {
    /// Starts `tcpdump -i IFNAME -w FILE -c COUNT FILTER` in `ns` and
    /// returns once it listens.
    fn start(ns: &str, ifname: &str, file: &Path, count: u32, filter: &str) -> Result<Tcpdump> {
        let err_path = file.with_extension("err");
        let err = std::fs::File::create(&err_path)?;
        let file_arg = file.to_string_lossy().into_owned();
        let count = count.to_string();
        let child = netns::spawn(
            ns,
            "tcpdump",
            // -Z root: keep the rights to write into the private directory;
            // -U: each packet reaches the file as it is captured.
            &[
                "-Z", "root", "-U", "-n", "-i", ifname, "-w", &file_arg, "-c", &count, filter,
            ],
            Stdio::null(),
            Stdio::from(err),
        )?;
        let mut dump = Tcpdump {
            child,
            file: file.to_owned(),
        };
        let r = lab::wait_until(
            "tcpdump to listen",
            Duration::from_secs(5),
            &NO_STOP,
            || {
                if dump.child.try_wait()?.is_some() {
                    bail!("tcpdump exited: {}", read_text(&err_path));
                }
                Ok(read_text(&err_path).contains("listening on"))
            },
        );
        r.map(|()| dump)
    }

    /// Waits until tcpdump has its packets and exits; the pcap file.
    fn finish(&mut self, timeout: Duration) -> Result<&Path> {
        let child = &mut self.child;
        lab::wait_until("tcpdump to capture its packets", timeout, &NO_STOP, || {
            Ok(child.try_wait()?.is_some())
        })?;
        Ok(&self.file)
    }
}

impl Drop for Tcpdump {
    fn drop(&mut self) {
        if let Err(e) = netns::kill_child(&mut self.child) {
            eprintln!("warning: stopping tcpdump: {e:#}");
        }
    }
}

fn read_text(path: &Path) -> String {
    let mut s = String::new();
    if let Ok(mut f) = std::fs::File::open(path) {
        let _ = f.read_to_string(&mut s);
    }
    s
}

/// One IPv6 VRRP packet as tshark decodes it.
#[derive(Debug)]
struct Decoded {
    eth_src: String,
    src: String,
    dst: String,
    hop_limit: String,
    version: String,
    kind: String,
    priority: String,
    addresses: Vec<String>,
    checksum_status: String,
}

/// Decodes every packet of `pcap` with tshark's VRRP dissector.
fn decode(pcap: &Path) -> Result<Vec<Decoded>> {
    let mut args: Vec<&str> = vec!["-n", "-r"];
    let file = pcap.to_string_lossy().into_owned();
    args.push(&file);
    args.extend(["-T", "fields", "-E", "separator=|", "-E", "aggregator=,"]);
    for field in [
        "eth.src",
        "ipv6.src",
        "ipv6.dst",
        "ipv6.hlim",
        "vrrp.version",
        "vrrp.type",
        "vrrp.prio",
        "vrrp.ipv6_addr",
        "vrrp.checksum.status",
    ] {
        args.extend(["-e", field]);
    }
    let out = std::process::Command::new("tshark")
        .args(&args)
        .stdin(Stdio::null())
        .output()
        .context("cannot run tshark")?;
    if !out.status.success() {
        bail!(
            "tshark -r {file} failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    let text = String::from_utf8_lossy(&out.stdout);
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|line| {
            let f: Vec<&str> = line.split('|').collect();
            let [eth_src, src, dst, hop_limit, version, kind, priority, addrs, checksum] =
                f.as_slice()
            else {
                bail!("tshark line with {} fields: {line}", f.len());
            };
            Ok(Decoded {
                eth_src: (*eth_src).to_owned(),
                src: (*src).to_owned(),
                dst: (*dst).to_owned(),
                hop_limit: (*hop_limit).to_owned(),
                version: (*version).to_owned(),
                kind: (*kind).to_owned(),
                priority: (*priority).to_owned(),
                addresses: addrs.split(',').map(str::to_owned).collect(),
                checksum_status: (*checksum).to_owned(),
            })
        })
        .collect()
}

#[test]
fn p13_v6_advert_on_the_wire() {
    let Some(mut rig) = Rig::new("p13_v6_advert_on_the_wire") else {
        return;
    };
    common::require(&["tcpdump", "tshark"]);
    // On the switch's LAN bridge, so every port's frames are seen as sent.
    let pcap = rig.work.path().join("lan.pcap");
    let dump = Tcpdump::start(&rig.lab.ns("sw"), "lan", &pcap, 5, "ip6 proto 112");
    let mut dump = rig.check(dump);
    // A alone: every advert captured is A's.
    let started = rig.a.start();
    rig.check(started);
    let finished = dump.finish(common::ELECTION_TIMEOUT).map(Path::to_owned);
    let pcap = rig.check(finished);
    let decoded = decode(&pcap);
    let decoded = rig.check(decoded);
    let a_ll = link_local(&rig.lab.ns("gw-a"), "lan0");
    let a_ll = rig.check(a_ll).to_string();
    assert_eq!(decoded.len(), 5, "{decoded:#?}");
    println!(
        "P13: the first advert as tshark decodes it: {:?}",
        decoded.first()
    );
    for d in &decoded {
        assert_eq!(d.eth_src, LAN_VMAC6, "{d:?}");
        assert!(d.src.starts_with("fe80::"), "{d:?}");
        assert_eq!(d.src, a_ll, "{d:?}");
        assert_eq!(d.dst, "ff02::12", "{d:?}");
        assert_eq!(d.hop_limit, "255", "{d:?}");
        assert_eq!(d.version, "3", "{d:?}");
        assert_eq!(d.kind, "1", "{d:?}");
        assert_eq!(d.priority, A_PRIORITY.to_string(), "{d:?}");
        assert_eq!(
            d.addresses,
            [LAN_VLL.to_string(), LAN_VIP.to_string()],
            "{d:?}"
        );
        // tshark's "Good" (PROTO_CHECKSUM_E_GOOD).
        assert_eq!(d.checksum_status, "1", "{d:?}\n{}", rig.logs());
    }
}
