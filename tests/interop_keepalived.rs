//! Interoperability with keepalived (docs/conformance.md P14): xvrrp runs as
//! appliance A in gw-a, keepalived as its peer in gw-b, and the two elect
//! one master between them, stay put, hand over when one stops and preempt
//! back when it returns, in VRRPv3 and VRRPv2.
//!
//! Both peers run the lab's two virtual routers in one sync group: `lan`
//! (VRID 1, 192.0.2.1/24 on lan0) and `wan` (VRID 2, 203.0.113.1/24 on
//! wan0); the WAN router is what lets the server's replies come back through
//! whichever peer is master. keepalived runs without `use_vmac`: as master it
//! puts the virtual addresses on its kernel interfaces and answers ARP with
//! lan0's own MAC, and gw-b's kernel forwards (`ip_forward=1`, set in gw-b
//! only). So keepalived's state is read from its interfaces: master holds
//! both virtual addresses, backup neither; and its state changes are counted
//! from its log ("Entering ... STATE").
//!
//! Debian's keepalived computes the VRRPv3 checksum over the IPv4
//! pseudo-header and rejects the message-only form, so in v3 xvrrp sends
//! `checksum = "pseudo-header"`.

#![allow(clippy::unwrap_used)]

mod common;

use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

use common::{flow, lab, netns, Appliance, TestLab, WorkDir, NO_STOP, XVRRP};

const KEEPALIVED: &str = "/usr/sbin/keepalived";
const LAN_VIP: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 1);
const WAN_VIP: Ipv4Addr = Ipv4Addr::new(203, 0, 113, 1);
const SERVER: Ipv4Addr = Ipv4Addr::new(203, 0, 113, 100);
/// The VRRP virtual MAC of VRID 1, which xvrrp answers ARP with.
const LAN_VMAC: &str = "00:00:5e:00:01:01";
/// A stopping master announces priority 0, so its peer takes over within a
/// skew time; this leaves room for a loaded 2-core machine.
const TAKEOVER_TIMEOUT: Duration = Duration::from_secs(5);
/// How often the steady-state checks sample both peers.
const SAMPLE: Duration = Duration::from_millis(250);
/// The advertisement checks that must never reject a keepalived advert.
const VALIDATION_DROPS: [&str; 9] = [
    "checksum-error",
    "version-error",
    "interval-error",
    "auth-type",
    "address-count-error",
    "packet-length-error",
    "ip-ttl-error",
    "vrid-error",
    "invalid-type",
];

/// The VRRP version both peers speak, with its timing.
#[derive(Clone, Copy, Debug)]
enum Version {
    V2,
    V3,
}

impl Version {
    fn number(self) -> u8 {
        match self {
            Version::V2 => 2,
            Version::V3 => 3,
        }
    }

    /// xvrrp's `advert_interval`.
    fn xvrrp_interval(self) -> &'static str {
        match self {
            Version::V2 => "1s",
            Version::V3 => "100ms",
        }
    }

    /// keepalived's `advert_int` (v2 has whole seconds only).
    fn keepalived_interval(self) -> &'static str {
        match self {
            Version::V2 => "1",
            Version::V3 => "0.1",
        }
    }

    /// How long an election may take: daemon start-up plus a master-down
    /// interval (3 adverts and a skew), with room for a loaded machine.
    fn election_timeout(self) -> Duration {
        match self {
            Version::V2 => Duration::from_secs(20),
            Version::V3 => common::ELECTION_TIMEOUT,
        }
    }

    /// How long the elected roles must hold with no transition (10 s for
    /// both versions, as the interop requirement asks).
    fn steady(self) -> Duration {
        match self {
            Version::V2 | Version::V3 => Duration::from_secs(10),
        }
    }

    /// Adverts a backup must at least receive per instance while steady
    /// (half of what the master sends, in case the machine is loaded).
    fn min_adverts_while_steady(self) -> u64 {
        match self {
            Version::V2 => 5,
            Version::V3 => 50,
        }
    }
}

/// keepalived's role, read from the virtual addresses on gw-b's interfaces.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Role {
    /// Holds both virtual addresses.
    Master,
    /// Holds neither.
    Backup,
    /// Holds one of the two (a sync-group transition in progress).
    Mixed,
}

/// keepalived (VRRP subsystem only) running in the foreground in one
/// namespace, logging to a file. Dropping it stops the parent by its PID
/// and kills the VRRP child by its PID if the parent left it behind.
struct Keepalived {
    ns: String,
    conf: PathBuf,
    log: PathBuf,
    pid_file: PathBuf,
    vrrp_pid_file: PathBuf,
    parent: Option<Child>,
    vrrp_child: Option<u32>,
}

impl Keepalived {
    /// Writes `conf_text` to `DIR/keepalived.conf`; does not start it.
    fn new(ns: &str, dir: &Path, conf_text: &str) -> Result<Keepalived> {
        let conf = dir.join("keepalived.conf");
        std::fs::write(&conf, conf_text).with_context(|| format!("write {}", conf.display()))?;
        Ok(Keepalived {
            ns: ns.to_owned(),
            conf,
            log: dir.join("keepalived.log"),
            pid_file: dir.join("keepalived.pid"),
            vrrp_pid_file: dir.join("keepalived-vrrp.pid"),
            parent: None,
            vrrp_child: None,
        })
    }

    /// Starts keepalived and waits until its VRRP child has written its PID.
    fn start(&mut self) -> Result<()> {
        if self.parent.is_some() {
            bail!("keepalived is already running in {}", self.ns);
        }
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .with_context(|| format!("open {}", self.log.display()))?;
        let log_err = log.try_clone()?;
        let (conf, pid, vrrp_pid) = (
            self.conf.to_string_lossy().into_owned(),
            self.pid_file.to_string_lossy().into_owned(),
            self.vrrp_pid_file.to_string_lossy().into_owned(),
        );
        // -n foreground, -l log to the console (our file), -D detailed,
        // -G no syslog, -P the VRRP subsystem only; private PID files so
        // parallel tests do not see each other's daemon.
        let args = [
            "-n", "-l", "-D", "-G", "-P", "-f", &conf, "-p", &pid, "-r", &vrrp_pid,
        ];
        let child = netns::spawn(
            &self.ns,
            KEEPALIVED,
            &args,
            Stdio::from(log),
            Stdio::from(log_err),
        )?;
        let parent = child.id();
        self.parent = Some(child);
        let vrrp_pid_file = self.vrrp_pid_file.clone();
        let mut found = None;
        lab::wait_until(
            "keepalived's VRRP child",
            Duration::from_secs(5),
            &NO_STOP,
            || {
                found = std::fs::read_to_string(&vrrp_pid_file)
                    .ok()
                    .and_then(|s| s.trim().parse::<u32>().ok())
                    .filter(|&p| parent_of(p) == Some(parent));
                Ok(found.is_some())
            },
        )
        .with_context(|| format!("log:\n{}", self.log_tail(15)))?;
        self.vrrp_child = found;
        Ok(())
    }

    /// Stops keepalived with SIGTERM, as an operator would: the VRRP child
    /// gives up mastership (priority 0 adverts) and removes its addresses.
    /// Anything still alive after 5 s is killed.
    fn stop(&mut self) -> Result<()> {
        if let Some(mut parent) = self.parent.take() {
            netns::stop_child(&mut parent, Duration::from_secs(5))?;
        }
        if let Some(pid) = self.vrrp_child.take() {
            // The VRRP child outlives a killed parent; kill it only if the
            // PID still runs this test's configuration.
            let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
            let conf = self.conf.to_string_lossy();
            if String::from_utf8_lossy(&cmdline).contains(conf.as_ref()) {
                netns::signal(pid, libc::SIGKILL)?;
            }
        }
        Ok(())
    }

    /// Sends SIGTERM to keepalived without waiting for it to exit (which
    /// takes about a second), so a takeover can be timed from the signal.
    fn terminate(&self) -> Result<()> {
        match &self.parent {
            Some(parent) => netns::signal(parent.id(), libc::SIGTERM),
            None => bail!("keepalived is not running in {}", self.ns),
        }
    }

    /// Whether keepalived holds both, neither or one virtual address.
    fn role(&self) -> Result<Role> {
        let lan = common::ip_on_any_interface(&self.ns, IpAddr::V4(LAN_VIP))?;
        let wan = common::ip_on_any_interface(&self.ns, IpAddr::V4(WAN_VIP))?;
        Ok(match (lan, wan) {
            (true, true) => Role::Master,
            (false, false) => Role::Backup,
            _ => Role::Mixed,
        })
    }

    /// How many state changes ("Entering MASTER/BACKUP/FAULT STATE") its
    /// log shows so far.
    fn state_changes(&self) -> usize {
        std::fs::read_to_string(&self.log)
            .unwrap_or_default()
            .lines()
            .filter(|l| l.contains(" Entering ") && l.contains(" STATE"))
            .count()
    }

    fn log_tail(&self, lines: usize) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let all: Vec<&str> = text.lines().collect();
        all.get(all.len().saturating_sub(lines)..)
            .unwrap_or_default()
            .iter()
            .map(|l| format!("  {l}"))
            .collect::<Vec<_>>()
            .join("\n")
    }
}

impl Drop for Keepalived {
    fn drop(&mut self) {
        if let Err(e) = self.stop() {
            eprintln!("warning: stopping keepalived in {}: {e:#}", self.ns);
        }
    }
}

/// The parent PID of `pid`, from `/proc/PID/status`.
fn parent_of(pid: u32) -> Option<u32> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("PPid:"))
        .and_then(|v| v.trim().parse().ok())
}

/// keepalived's configuration: both routers in one sync group, starting as
/// backup, preempting (keepalived's default), no `use_vmac`.
fn keepalived_conf(version: Version, priority: u8) -> String {
    let instance = |name: &str, ifname: &str, vrid: u8, vip: &str| {
        format!(
            "vrrp_instance {name} {{\n    state BACKUP\n    interface {ifname}\n    \
             virtual_router_id {vrid}\n    priority {priority}\n    advert_int {}\n    \
             virtual_ipaddress {{\n        {vip}\n    }}\n}}\n",
            version.keepalived_interval()
        )
    };
    format!(
        "global_defs {{\n    vrrp_version {}\n}}\n\
         vrrp_sync_group gw {{\n    group {{\n        lan\n        wan\n    }}\n}}\n{}{}",
        version.number(),
        instance("lan", "lan0", 1, "192.0.2.1/24"),
        instance("wan", "wan0", 2, "203.0.113.1/24"),
    )
}

/// xvrrp's configuration: the lab gateway (both routers in one sync group,
/// preempting) at `priority`, speaking `version` at its interval, and in v3
/// with the pseudo-header checksum keepalived expects.
fn xvrrp_conf(lab: &lab::Lab, version: Version, priority: u8) -> String {
    let mut c = lab::ApplianceConfig::gateway(&common::socket_path(lab, "a"), priority);
    c.advert_interval = version.xvrrp_interval().to_owned();
    let mut out = String::new();
    for line in c.render().lines() {
        out.push_str(line);
        out.push('\n');
        if line.starts_with("advert_interval = ") {
            out.push_str(&format!("version = {}\n", version.number()));
            if let Version::V3 = version {
                out.push_str("checksum = \"pseudo-header\"\n");
            }
        }
    }
    // A change in the renderer must not leave an instance on the defaults.
    assert_eq!(
        out.matches("\nversion = ").count(),
        c.instances.len(),
        "{out}"
    );
    out
}

/// xvrrp in gw-a and keepalived in gw-b on a lab of their own. Fields drop
/// in order: both daemons are stopped before the lab is removed.
struct Interop {
    ka: Keepalived,
    xv: Appliance,
    _work: WorkDir,
    lab: TestLab,
    version: Version,
}

impl Interop {
    /// Builds the lab and writes both configurations; starts nothing.
    /// `None` when the test must be skipped (not root, no `ip netns`); fails
    /// at once without keepalived.
    fn new(test: &str, version: Version, xvrrp_prio: u8, keepalived_prio: u8) -> Option<Interop> {
        if !common::supported(test) {
            return None;
        }
        common::require(&[KEEPALIVED]);
        let lab = common::setup(test)?;
        let gw_b = lab.ns("gw-b");
        // keepalived's master routes in the kernel: forwarding on in gw-b only.
        common::sysctl(&gw_b, "net.ipv4.ip_forward", "1");
        let work = WorkDir::create(lab.prefix()).unwrap();
        let ka = Keepalived::new(
            &gw_b,
            work.path(),
            &keepalived_conf(version, keepalived_prio),
        )
        .unwrap();
        let socket = common::socket_path(&lab, "a");
        // The lab's config type has no version or checksum keys: the runner
        // writes it, then the file is replaced with the interop variant.
        let placeholder = lab::ApplianceConfig::gateway(&socket, xvrrp_prio);
        let xv = Appliance::new(
            "a",
            Path::new(XVRRP),
            &lab.ns("gw-a"),
            &placeholder,
            work.path(),
        )
        .unwrap();
        std::fs::write(xv.config_path(), xvrrp_conf(&lab, version, xvrrp_prio)).unwrap();
        Some(Interop {
            ka,
            xv,
            _work: work,
            lab,
            version,
        })
    }

    /// Unwraps `r`, panicking with both daemons' logs on error.
    fn check<T>(&self, r: Result<T>) -> T {
        match r {
            Ok(v) => v,
            Err(e) => panic!("{e:#}\n{}", self.logs()),
        }
    }

    fn logs(&self) -> String {
        format!(
            "--- xvrrp (gw-a):\n{}\n--- keepalived (gw-b):\n{}",
            self.xv.log_tail(20),
            self.ka.log_tail(30)
        )
    }

    /// Waits until keepalived is in `role` and xvrrp has every instance in
    /// `xv_state`.
    fn wait_for(&mut self, xv_state: &str, role: Role, timeout: Duration) -> Duration {
        let start = Instant::now();
        let (xv, ka) = (&mut self.xv, &self.ka);
        let what = format!("xvrrp {xv_state} and keepalived {role:?}");
        let r = lab::wait_until(&what, timeout, &NO_STOP, || {
            Ok(ka.role()? == role && xv.all_in(xv_state)?)
        });
        self.check(r);
        start.elapsed()
    }

    /// Starts keepalived alone and waits until it is master.
    fn start_keepalived_master(&mut self) {
        let r = self.ka.start();
        self.check(r);
        let (ka, timeout) = (&self.ka, self.version.election_timeout());
        let r = lab::wait_until("keepalived master", timeout, &NO_STOP, || {
            Ok(ka.role()? == Role::Master)
        });
        self.check(r);
    }

    /// Starts xvrrp.
    fn start_xvrrp(&mut self) {
        let r = self.xv.start();
        self.check(r);
    }

    /// xvrrp's `status --json` instances.
    fn xv_instances(&self) -> Vec<serde_json::Value> {
        let reply = self.check(self.xv.query(&["status"]));
        lab::instances(&reply).cloned().collect()
    }

    /// Checks that, for the version's steady period, xvrrp keeps every
    /// instance in `xv_state` and keepalived stays in `role`, sampled every
    /// 250 ms, with no transition counted on either side, and that xvrrp
    /// rejected none of keepalived's adverts.
    fn hold_steady(&mut self, xv_state: &str, role: Role) {
        let before = self.check(common::transitions(&self.xv));
        let ka_before = self.ka.state_changes();
        let rx_before = adverts_rx(&self.xv_instances());
        let deadline = Instant::now() + self.version.steady();
        while Instant::now() < deadline {
            thread::sleep(SAMPLE);
            let in_state = self.check(self.xv.states());
            let ka_role = self.check(self.ka.role());
            assert!(
                in_state.values().all(|s| s == xv_state) && ka_role == role,
                "while steady: xvrrp {in_state:?}, keepalived {ka_role:?}\n{}",
                self.logs()
            );
        }
        let after = self.check(common::transitions(&self.xv));
        assert_eq!(before, after, "xvrrp transitions\n{}", self.logs());
        assert_eq!(
            ka_before,
            self.ka.state_changes(),
            "keepalived changed state\n{}",
            self.logs()
        );
        if xv_state == "backup" {
            let rx_after = adverts_rx(&self.xv_instances());
            for (name, n) in &rx_after {
                let got = n - rx_before.get(name).copied().unwrap_or(0);
                assert!(
                    got >= self.version.min_adverts_while_steady(),
                    "{name} received {got} adverts from keepalived in {:?}\n{}",
                    self.version.steady(),
                    self.logs()
                );
            }
        }
        let stats = self.check(self.xv.query(&["stats"]));
        for reason in VALIDATION_DROPS {
            assert_eq!(
                common::drop_count(&stats, reason),
                0,
                "xvrrp dropped adverts as {reason}: {stats}\n{}",
                self.logs()
            );
        }
    }

    /// Checks the checksum form xvrrp saw from keepalived (v3 only: v2 has
    /// a single form).
    fn assert_peer_checksum(&self) {
        if let Version::V2 = self.version {
            return;
        }
        for i in self.xv_instances() {
            assert_eq!(i["peer_checksum"], "pseudo-header", "{i}");
        }
    }

    /// Waits until xvrrp, as backup, names keepalived's addresses as the
    /// master of each instance (it learns them from the first advert).
    fn wait_xvrrp_sees_keepalived_master(&self) {
        let mut last = Vec::new();
        let r = lab::wait_until(
            "xvrrp to name keepalived as master",
            Duration::from_secs(5),
            &NO_STOP,
            || {
                last = self.xv_instances();
                Ok(!last.is_empty()
                    && last.iter().all(|i| {
                        let want = match i["name"].as_str() {
                            Some("lan-gw") => "192.0.2.3",
                            Some("wan-gw") => "203.0.113.3",
                            _ => return false,
                        };
                        i["state"] == "backup" && i["master"] == want
                    }))
            },
        );
        self.check(r.with_context(|| format!("last status: {last:?}")));
    }

    /// Pings the server from the client through the LAN virtual address and
    /// checks the client resolved that address to `gateway_mac`.
    fn ping_through(&self, gateway_mac: &str) {
        let client = self.lab.ns("client");
        self.check(flow::ping(
            &client,
            IpAddr::V4(SERVER),
            3,
            Duration::from_secs(5),
        ));
        let mac = self.check(flow::neighbour_mac(&client, IpAddr::V4(LAN_VIP)));
        assert_eq!(
            mac.as_deref(),
            Some(gateway_mac),
            "the client's gateway\n{}",
            self.logs()
        );
    }

    /// The MAC of gw-b's lan0, which keepalived answers ARP with.
    fn keepalived_mac(&self) -> String {
        let out = self.check(netns::ip(&[
            "-n",
            &self.lab.ns("gw-b"),
            "-j",
            "link",
            "show",
            "lan0",
        ]));
        let links: serde_json::Value = serde_json::from_str(&out).unwrap();
        links[0]["address"].as_str().unwrap().to_owned()
    }
}

/// Instance name → `adverts_rx`.
fn adverts_rx(instances: &[serde_json::Value]) -> std::collections::BTreeMap<String, u64> {
    instances
        .iter()
        .map(|i| {
            (
                i["name"].as_str().unwrap_or_default().to_owned(),
                i["adverts_rx"].as_u64().unwrap_or(0),
            )
        })
        .collect()
}

/// xvrrp (200) joins a running keepalived master (100): it preempts, and
/// keepalived steps down and stays backup.
fn xvrrp_higher(test: &str, version: Version) {
    let Some(mut t) = Interop::new(test, version, 200, 100) else {
        return;
    };
    t.start_keepalived_master();
    t.start_xvrrp();
    let took = t.wait_for("master", Role::Backup, version.election_timeout());
    eprintln!("{test}: xvrrp master {took:?} after its start");
    t.assert_peer_checksum();
    t.hold_steady("master", Role::Backup);
    t.ping_through(LAN_VMAC);
}

/// xvrrp (100) joins a running keepalived master (200): it stays backup,
/// never master, naming keepalived as master; traffic goes through
/// keepalived.
fn xvrrp_lower(test: &str, version: Version) {
    let Some(mut t) = Interop::new(test, version, 100, 200) else {
        return;
    };
    t.start_keepalived_master();
    t.start_xvrrp();
    t.wait_for("backup", Role::Master, version.election_timeout());
    t.wait_xvrrp_sees_keepalived_master();
    t.assert_peer_checksum();
    t.hold_steady("backup", Role::Master);
    for (name, n) in t.check(common::transitions(&t.xv)) {
        // Only init → backup: xvrrp never claimed mastership.
        assert_eq!(n, 1, "{name} transitions\n{}", t.logs());
    }
    let mac = t.keepalived_mac();
    t.ping_through(&mac);
}

#[test]
fn p14_keepalived_v3_xvrrp_higher() {
    xvrrp_higher("p14_keepalived_v3_xvrrp_higher", Version::V3);
}

#[test]
fn p14_keepalived_v3_xvrrp_lower() {
    xvrrp_lower("p14_keepalived_v3_xvrrp_lower", Version::V3);
}

#[test]
fn p14_keepalived_v2_xvrrp_higher() {
    xvrrp_higher("p14_keepalived_v2_xvrrp_higher", Version::V2);
}

#[test]
fn p14_keepalived_v2_xvrrp_lower() {
    xvrrp_lower("p14_keepalived_v2_xvrrp_lower", Version::V2);
}

/// xvrrp (200) master over keepalived (100): stopping xvrrp (SIGTERM)
/// hands the routers to keepalived; xvrrp restarted preempts them back.
fn preempt_xvrrp_higher(test: &str, version: Version) {
    let Some(mut t) = Interop::new(test, version, 200, 100) else {
        return;
    };
    t.start_keepalived_master();
    t.start_xvrrp();
    t.wait_for("master", Role::Backup, version.election_timeout());

    // SIGTERM without waiting for the exit, so the takeover is timed from
    // the signal; stop() then reaps the daemon.
    let pid = t.xv.pid().unwrap();
    let stopped = Instant::now();
    t.check(netns::signal(pid, libc::SIGTERM));
    let ka = &t.ka;
    let r = lab::wait_until("keepalived master", TAKEOVER_TIMEOUT, &NO_STOP, || {
        Ok(ka.role()? == Role::Master)
    });
    t.check(r);
    let takeover = stopped.elapsed();
    let r = t.xv.stop();
    t.check(r);
    let mac = t.keepalived_mac();
    t.ping_through(&mac);

    t.start_xvrrp();
    let back = t.wait_for("master", Role::Backup, version.election_timeout());
    eprintln!(
        "{test}: keepalived master {takeover:?} after xvrrp's SIGTERM; \
         xvrrp master again {back:?} after its restart"
    );
    t.ping_through(LAN_VMAC);
}

/// keepalived (200) master over xvrrp (100): stopping keepalived (SIGTERM)
/// hands the routers to xvrrp; keepalived restarted preempts them back.
fn preempt_keepalived_higher(test: &str, version: Version) {
    let Some(mut t) = Interop::new(test, version, 100, 200) else {
        return;
    };
    t.start_keepalived_master();
    t.start_xvrrp();
    t.wait_for("backup", Role::Master, version.election_timeout());
    t.wait_xvrrp_sees_keepalived_master();

    let stopped = Instant::now();
    t.check(t.ka.terminate());
    t.wait_for("master", Role::Backup, TAKEOVER_TIMEOUT);
    let takeover = stopped.elapsed();
    let r = t.ka.stop();
    t.check(r);
    t.ping_through(LAN_VMAC);

    let r = t.ka.start();
    t.check(r);
    let back = t.wait_for("backup", Role::Master, version.election_timeout());
    eprintln!(
        "{test}: xvrrp master {takeover:?} after keepalived's SIGTERM; \
         keepalived master again {back:?} after its restart"
    );
    t.wait_xvrrp_sees_keepalived_master();
    let mac = t.keepalived_mac();
    t.ping_through(&mac);
}

#[test]
fn p14_keepalived_v3_preempt_xvrrp_higher() {
    preempt_xvrrp_higher("p14_keepalived_v3_preempt_xvrrp_higher", Version::V3);
}

#[test]
fn p14_keepalived_v3_preempt_keepalived_higher() {
    preempt_keepalived_higher("p14_keepalived_v3_preempt_keepalived_higher", Version::V3);
}

#[test]
fn p14_keepalived_v2_preempt_xvrrp_higher() {
    preempt_xvrrp_higher("p14_keepalived_v2_preempt_xvrrp_higher", Version::V2);
}

#[test]
fn p14_keepalived_v2_preempt_keepalived_higher() {
    preempt_keepalived_higher("p14_keepalived_v2_preempt_keepalived_higher", Version::V2);
}
