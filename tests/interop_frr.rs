//! Interoperability with FRRouting's vrrpd (docs/conformance.md P14): xvrrp
//! runs as appliance A in gw-a, FRR (zebra and vrrpd) as its peer in gw-b,
//! and the two elect one master between them, stay put, hand over when one
//! stops and preempt back when it returns, in VRRPv3 over IPv4 and IPv6.
//!
//! Both peers serve four virtual routers: VRID 1 on lan0 (192.0.2.1/24 and
//! 2001:db8:1::1/64) and VRID 2 on wan0 (203.0.113.1/24 and
//! 2001:db8:2::1/64), every one at a 100 ms interval; xvrrp puts each
//! family's pair in a sync group, FRR runs each (VRID, family) on its own.
//! The WAN routers are what let the server's replies come back through
//! whichever peer is master.
//!
//! FRR needs the operator (here, the test) to prepare gw-b:
//! - one macvlan per VRID and family on the parent port, in bridge mode,
//!   with the virtual MAC, the virtual address and a random link-local
//!   address (FRR's "VRRP" chapter, "System Configuration"). vrrpd keeps the
//!   macvlan up as master and puts it in `protodown` as backup;
//! - `arp_ignore = 1`: a protodown macvlan keeps its address, and without it
//!   gw-b's kernel would answer ARP for the virtual address from lan0's own
//!   MAC while xvrrp is master;
//! - forwarding on (IPv4 and IPv6, in gw-b only): FRR's master routes in the
//!   kernel;
//! - router advertisements with a zero router lifetime and no autoconf
//!   prefix: vrrpd asks zebra to advertise on the IPv6 macvlans as master,
//!   which would otherwise give the client a second default router (FRR's
//!   link-local, dead once it is backup) and a SLAAC address.
//!
//! FRR's state is read from `vtysh -c 'show vrrp json'` on the daemons'
//! private socket directory: status, transitions and accepted adverts per
//! (VRID, family). FRR includes the IPv4 pseudo-header in the VRRPv3
//! checksum, so xvrrp sends `checksum = "pseudo-header"` on its IPv4
//! routers. Stopping FRR means stopping vrrpd (zebra keeps running, as under
//! watchfrr).

#![allow(clippy::unwrap_used)]

mod common;

use std::collections::BTreeMap;
use std::io::Read;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

use common::{flow, lab, netns, Appliance, TestLab, WorkDir, NO_STOP, XVRRP};

const ZEBRA: &str = "/usr/lib/frr/zebra";
const VRRPD: &str = "/usr/lib/frr/vrrpd";
const VTYSH: &str = "/usr/bin/vtysh";
/// Advertisement interval of both peers (FRR counts in milliseconds).
const INTERVAL_MS: u32 = 100;
/// A stopping master announces priority 0, so its peer takes over within a
/// skew time; this leaves room for a loaded 2-core machine.
const TAKEOVER_TIMEOUT: Duration = Duration::from_secs(5);
/// How long the elected roles must hold with no transition.
const STEADY: Duration = Duration::from_secs(10);
/// Adverts a backup must at least accept per router while steady (half of
/// what the master sends, in case the machine is loaded).
const MIN_ADVERTS_WHILE_STEADY: u64 = 50;
/// How often the steady-state checks sample both peers.
const SAMPLE: Duration = Duration::from_millis(250);
/// The advertisement checks that must never reject an FRR advert.
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

/// An address family of the virtual routers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Family {
    V4,
    V6,
}

impl Family {
    /// The key of this family in FRR's `show vrrp json`.
    fn frr_key(self) -> &'static str {
        match self {
            Family::V4 => "v4",
            Family::V6 => "v6",
        }
    }
}

/// One virtual router, as both peers configure it.
struct Router {
    /// xvrrp's instance name.
    name: &'static str,
    family: Family,
    port: &'static str,
    vrid: u8,
    /// The virtual address with its prefix length.
    vip: &'static str,
    /// FRR's macvlan for it in gw-b.
    macvlan: &'static str,
    vmac: &'static str,
    /// The address FRR advertises from: gw-b's own address on the port for
    /// IPv4; `None` for IPv6, where it is the macvlan's random link-local.
    frr_source: Option<&'static str>,
}

const ROUTERS: [Router; 4] = [
    Router {
        name: "lan-gw",
        family: Family::V4,
        port: "lan0",
        vrid: 1,
        vip: "192.0.2.1/24",
        macvlan: "vrrp4-1",
        vmac: "00:00:5e:00:01:01",
        frr_source: Some("192.0.2.3"),
    },
    Router {
        name: "wan-gw",
        family: Family::V4,
        port: "wan0",
        vrid: 2,
        vip: "203.0.113.1/24",
        macvlan: "vrrp4-2",
        vmac: "00:00:5e:00:01:02",
        frr_source: Some("203.0.113.3"),
    },
    Router {
        name: "lan-gw6",
        family: Family::V6,
        port: "lan0",
        vrid: 1,
        vip: "2001:db8:1::1/64",
        macvlan: "vrrp6-1",
        vmac: "00:00:5e:00:02:01",
        frr_source: None,
    },
    Router {
        name: "wan-gw6",
        family: Family::V6,
        port: "wan0",
        vrid: 2,
        vip: "2001:db8:2::1/64",
        macvlan: "vrrp6-2",
        vmac: "00:00:5e:00:02:02",
        frr_source: None,
    },
];

impl Router {
    /// The virtual address without its prefix length.
    fn vip_addr(&self) -> &'static str {
        self.vip.split('/').next().unwrap_or(self.vip)
    }

    /// The IPv6 subnet of the virtual address (`2001:db8:1::/64`), which
    /// zebra's router advertisements carry.
    fn v6_subnet(&self) -> String {
        let addr: std::net::Ipv6Addr = self.vip_addr().parse().unwrap();
        let len: u32 = self.vip.rsplit('/').next().unwrap().parse().unwrap();
        let mask = u128::MAX.checked_shl(128 - len).unwrap_or(0);
        format!(
            "{}/{len}",
            std::net::Ipv6Addr::from(u128::from(addr) & mask)
        )
    }

    /// The key of this router in FRR's counters: `VRID/family`.
    fn frr_key(&self) -> String {
        format!("{}/{}", self.vrid, self.family.frr_key())
    }
}

/// The server, reached through each family's LAN router.
const SERVERS: [(Family, &str); 2] = [
    (Family::V4, "203.0.113.100"),
    (Family::V6, "2001:db8:2::100"),
];

/// Which peer a check expects to be master.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Gateway {
    Xvrrp,
    Frr,
}

/// FRR's role over the four routers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Role {
    /// Master of every router.
    Master,
    /// Backup of every router.
    Backup,
    /// Anything else (starting, a transition in progress, a split).
    Mixed,
}

/// Runs `cmd` and returns its output, killing it (by its PID) if it has not
/// finished after `timeout`.
fn output_within(cmd: &mut Command, timeout: Duration) -> Result<Output> {
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("run {cmd:?}"))?;
    let deadline = Instant::now() + timeout;
    let status = loop {
        if let Some(status) = child.try_wait()? {
            break status;
        }
        if Instant::now() >= deadline {
            netns::kill_child(&mut child)?;
            bail!("{cmd:?} hung for {timeout:?}");
        }
        thread::sleep(Duration::from_millis(5));
    };
    let (mut stdout, mut stderr) = (Vec::new(), Vec::new());
    if let Some(mut out) = child.stdout.take() {
        out.read_to_end(&mut stdout)?;
    }
    if let Some(mut err) = child.stderr.take() {
        err.read_to_end(&mut stderr)?;
    }
    Ok(Output {
        status,
        stdout,
        stderr,
    })
}

/// FRR's zebra and vrrpd running in the foreground in one namespace, with
/// their configuration, PID files, sockets and logs in a private directory.
/// Dropping it stops both by their PIDs.
struct Frr {
    ns: String,
    dir: PathBuf,
    zebra: Option<Child>,
    vrrpd: Option<Child>,
}

impl Frr {
    /// Writes `DIR/zebra.conf` and `DIR/vrrpd.conf` (every router at
    /// `priority`, preempting, FRR's default); starts nothing.
    fn new(ns: &str, dir: &Path, priority: u8) -> Result<Frr> {
        let mut zebra = String::new();
        let mut vrrpd = String::new();
        for port in ["lan0", "wan0"] {
            let routers: Vec<&Router> = ROUTERS.iter().filter(|r| r.port == port).collect();
            let Some(vrid) = routers.first().map(|r| r.vrid) else {
                continue;
            };
            vrrpd.push_str(&format!(
                "interface {port}\n vrrp {vrid} version 3\n vrrp {vrid} priority {priority}\n \
                 vrrp {vrid} advertisement-interval {INTERVAL_MS}\n"
            ));
            for r in &routers {
                let keyword = match r.family {
                    Family::V4 => "ip",
                    Family::V6 => "ipv6",
                };
                vrrpd.push_str(&format!(" vrrp {vrid} {keyword} {}\n", r.vip_addr()));
                if r.family == Family::V6 {
                    zebra.push_str(&format!(
                        "interface {}\n ipv6 nd ra-lifetime 0\n ipv6 nd prefix {} no-autoconfig\nexit\n",
                        r.macvlan,
                        r.v6_subnet()
                    ));
                }
            }
            vrrpd.push_str("exit\n");
        }
        let dir = dir.join("frr");
        std::fs::create_dir(&dir).with_context(|| format!("create {}", dir.display()))?;
        std::fs::write(dir.join("zebra.conf"), zebra)?;
        std::fs::write(dir.join("vrrpd.conf"), vrrpd)?;
        Ok(Frr {
            ns: ns.to_owned(),
            dir,
            zebra: None,
            vrrpd: None,
        })
    }

    fn path(&self, file: &str) -> String {
        self.dir.join(file).to_string_lossy().into_owned()
    }

    /// Starts daemon `name` (`zebra` or `vrrpd`) in the foreground.
    fn spawn(&self, name: &str, program: &str) -> Result<Child> {
        let out = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.join(format!("{name}.out")))?;
        let err = out.try_clone()?;
        let (dir, zserv, pid, conf, log) = (
            self.path(""),
            self.path("zserv.api"),
            self.path(&format!("{name}.pid")),
            self.path(&format!("{name}.conf")),
            format!("file:{}", self.path(&format!("{name}.log"))),
        );
        // Root with the vty group (FRR insists its user be in it), no TCP
        // vty (-P 0), and every path private so parallel tests never meet.
        let args = [
            "-u",
            "root",
            "-g",
            "frrvty",
            "-P",
            "0",
            "--vty_socket",
            &dir,
            "-z",
            &zserv,
            "-i",
            &pid,
            "-f",
            &conf,
            "--log",
            &log,
        ];
        netns::spawn(&self.ns, program, &args, Stdio::from(out), Stdio::from(err))
    }

    /// Starts zebra and waits for its API socket.
    fn start_zebra(&mut self) -> Result<()> {
        if self.zebra.is_some() {
            bail!("zebra is already running in {}", self.ns);
        }
        self.zebra = Some(self.spawn("zebra", ZEBRA)?);
        let socket = self.dir.join("zserv.api");
        lab::wait_until("zebra's socket", Duration::from_secs(5), &NO_STOP, || {
            Ok(socket.exists())
        })
        .with_context(|| format!("zebra:\n{}", self.log_tail("zebra", 10)))
    }

    /// Starts vrrpd and waits until it answers with all four routers.
    fn start_vrrpd(&mut self) -> Result<()> {
        if self.vrrpd.is_some() {
            bail!("vrrpd is already running in {}", self.ns);
        }
        self.vrrpd = Some(self.spawn("vrrpd", VRRPD)?);
        lab::wait_until("vrrpd to answer", Duration::from_secs(5), &NO_STOP, || {
            Ok(self.show().is_ok_and(|v| {
                ROUTERS
                    .iter()
                    .all(|r| !frr_router(&v, r)["status"].is_null())
            }))
        })
        .with_context(|| format!("vrrpd:\n{}", self.log_tail("vrrpd", 10)))
    }

    /// Sends SIGTERM to vrrpd without waiting, so a takeover is timed from
    /// the signal: as master it sends priority-0 adverts.
    fn terminate_vrrpd(&self) -> Result<()> {
        match &self.vrrpd {
            Some(child) => netns::signal(child.id(), libc::SIGTERM),
            None => bail!("vrrpd is not running in {}", self.ns),
        }
    }

    /// Stops vrrpd (SIGTERM, SIGKILL after 5 s) and reaps it.
    fn stop_vrrpd(&mut self) -> Result<()> {
        match self.vrrpd.take() {
            Some(mut child) => netns::stop_child(&mut child, Duration::from_secs(5)),
            None => Ok(()),
        }
    }

    /// Stops vrrpd, then zebra.
    fn stop(&mut self) -> Result<()> {
        let vrrpd = self.stop_vrrpd();
        let zebra = match self.zebra.take() {
            Some(mut child) => netns::stop_child(&mut child, Duration::from_secs(5)),
            None => Ok(()),
        };
        vrrpd.and(zebra)
    }

    /// `show vrrp json`.
    fn show(&self) -> Result<serde_json::Value> {
        let dir = self.path("");
        let out = output_within(
            Command::new(VTYSH).args(["--vty_socket", &dir, "-c", "show vrrp json"]),
            Duration::from_secs(10),
        )?;
        if !out.status.success() {
            bail!(
                "vtysh failed ({}): {}{}",
                out.status,
                String::from_utf8_lossy(&out.stdout).trim(),
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
        serde_json::from_slice(&out.stdout).context("parse `show vrrp json`")
    }

    /// FRR's role, from the status of every router.
    fn role(&self) -> Result<Role> {
        let v = self.show()?;
        let states: Vec<&str> = ROUTERS
            .iter()
            .map(|r| frr_router(&v, r)["status"].as_str().unwrap_or("?"))
            .collect();
        Ok(if states.iter().all(|s| *s == "Master") {
            Role::Master
        } else if states.iter().all(|s| *s == "Backup") {
            Role::Backup
        } else {
            Role::Mixed
        })
    }

    /// `VRID/family` → the named counter of FRR's `stats`.
    fn counters(&self, counter: &str) -> Result<BTreeMap<String, u64>> {
        let v = self.show()?;
        ROUTERS
            .iter()
            .map(|r| {
                let n = frr_router(&v, r)["stats"][counter]
                    .as_u64()
                    .with_context(|| format!("no {counter} for {} in {v}", r.frr_key()))?;
                Ok((r.frr_key(), n))
            })
            .collect()
    }

    /// The address FRR advertises router `r` from.
    fn source_address(&self, r: &Router) -> Result<String> {
        let v = self.show()?;
        frr_router(&v, r)["primaryAddress"]
            .as_str()
            .map(str::to_owned)
            .with_context(|| format!("no primaryAddress for {} in {v}", r.frr_key()))
    }

    fn log_tail(&self, name: &str, lines: usize) -> String {
        let mut text =
            std::fs::read_to_string(self.dir.join(format!("{name}.out"))).unwrap_or_default();
        text.push_str(
            &std::fs::read_to_string(self.dir.join(format!("{name}.log"))).unwrap_or_default(),
        );
        let all: Vec<&str> = text
            .lines()
            // vrrpd repeats this for every router on each interface event.
            .filter(|l| !l.contains("Refusing to start Virtual Router"))
            .collect();
        all.get(all.len().saturating_sub(lines)..)
            .unwrap_or_default()
            .iter()
            .map(|l| format!("  {l}"))
            .collect::<Vec<_>>()
            .join("\n")
    }
}

impl Drop for Frr {
    fn drop(&mut self) {
        if let Err(e) = self.stop() {
            eprintln!("warning: stopping FRR in {}: {e:#}", self.ns);
        }
    }
}

/// Router `r`'s object in `show vrrp json` (`Null` when absent).
fn frr_router<'a>(show: &'a serde_json::Value, r: &Router) -> &'a serde_json::Value {
    show.as_array()
        .into_iter()
        .flatten()
        .find(|vr| vr["vrid"].as_u64() == Some(u64::from(r.vrid)) && vr["interface"] == r.port)
        .map_or(&serde_json::Value::Null, |vr| &vr[r.family.frr_key()])
}

/// Prepares gw-b for FRR: the macvlans, ARP replies only for addresses of
/// the receiving interface, and forwarding.
fn prepare_gw_b(ns: &str) -> Result<()> {
    for r in &ROUTERS {
        // addrgenmode is set after creation: in the `link add` request this
        // kernel refuses it (EAFNOSUPPORT).
        let steps: [&[&str]; 5] = [
            &[
                "link", "add", r.macvlan, "link", r.port, "type", "macvlan", "mode", "bridge",
            ],
            &["link", "set", "dev", r.macvlan, "addrgenmode", "random"],
            &["link", "set", "dev", r.macvlan, "address", r.vmac],
            &["addr", "add", r.vip, "dev", r.macvlan],
            &["link", "set", "dev", r.macvlan, "up"],
        ];
        for step in steps {
            let mut args = vec!["-n", ns];
            args.extend_from_slice(step);
            netns::ip(&args)?;
        }
    }
    for (key, value) in [
        ("net.ipv4.conf.all.arp_ignore", "1"),
        ("net.ipv4.ip_forward", "1"),
        ("net.ipv6.conf.all.forwarding", "1"),
    ] {
        netns::sysctl(ns, key, value)?;
    }
    Ok(())
}

/// xvrrp's configuration: the four routers at `priority`, 100 ms adverts,
/// preempting, each family's pair in a sync group, VRRPv3 with the
/// pseudo-header checksum on IPv4.
fn xvrrp_conf(lab: &lab::Lab, priority: u8) -> String {
    let mut c = lab::ApplianceConfig::gateway(&common::socket_path(lab, "a"), priority);
    c.advert_interval = format!("{INTERVAL_MS}ms");
    c.sync_group = false;
    c.instances = ROUTERS
        .iter()
        .map(|r| lab::LabInstance {
            name: r.name.to_owned(),
            port: r.port.to_owned(),
            vrid: r.vrid,
            addresses: vec![r.vip.to_owned()],
        })
        .collect();
    let mut out = String::new();
    let mut family = None;
    for line in c.render().lines() {
        if let Some(name) = line.strip_prefix("name = ") {
            family = ROUTERS
                .iter()
                .find(|r| format!("{:?}", r.name) == name)
                .map(|r| r.family);
        }
        out.push_str(line);
        out.push('\n');
        if line.starts_with("advert_interval = ") {
            out.push_str("version = 3\n");
            if family == Some(Family::V4) {
                out.push_str("checksum = \"pseudo-header\"\n");
            }
        }
    }
    for (group, fam) in [("gw", Family::V4), ("gw6", Family::V6)] {
        let members: Vec<String> = ROUTERS
            .iter()
            .filter(|r| r.family == fam)
            .map(|r| format!("{:?}", r.name))
            .collect();
        out.push_str(&format!(
            "\n[[sync_group]]\nname = {group:?}\nmembers = [{}]\n",
            members.join(", ")
        ));
    }
    // A change in the renderer must not leave a router on the defaults.
    assert_eq!(
        out.matches("\nversion = 3\n").count(),
        ROUTERS.len(),
        "{out}"
    );
    assert_eq!(out.matches("\nchecksum = ").count(), 2, "{out}");
    out
}

/// xvrrp in gw-a and FRR in gw-b on a lab of their own. Fields drop in
/// order: both daemons are stopped before the lab is removed.
struct Interop {
    frr: Frr,
    xv: Appliance,
    _work: WorkDir,
    lab: TestLab,
}

impl Interop {
    /// Builds the lab, prepares gw-b and writes both configurations; starts
    /// nothing. `None` when the test must be skipped (not root, no `ip
    /// netns`); fails at once without FRR.
    fn new(test: &str, xvrrp_prio: u8, frr_prio: u8) -> Option<Interop> {
        if !common::supported(test) {
            return None;
        }
        common::require(&[ZEBRA, VRRPD, VTYSH]);
        let lab = common::setup(test)?;
        let gw_b = lab.ns("gw-b");
        prepare_gw_b(&gw_b).unwrap();
        let work = WorkDir::create(lab.prefix()).unwrap();
        let frr = Frr::new(&gw_b, work.path(), frr_prio).unwrap();
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
        std::fs::write(xv.config_path(), xvrrp_conf(&lab, xvrrp_prio)).unwrap();
        Some(Interop {
            frr,
            xv,
            _work: work,
            lab,
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
            "--- xvrrp (gw-a):\n{}\n--- FRR zebra (gw-b):\n{}\n--- FRR vrrpd (gw-b):\n{}",
            self.xv.log_tail(20),
            self.frr.log_tail("zebra", 10),
            self.frr.log_tail("vrrpd", 30)
        )
    }

    /// Starts zebra and vrrpd alone and waits until FRR is master.
    fn start_frr_master(&mut self) {
        let r = self.frr.start_zebra();
        self.check(r);
        self.start_vrrpd_master();
    }

    /// Starts vrrpd alone and waits until it is master.
    fn start_vrrpd_master(&mut self) {
        let r = self.frr.start_vrrpd();
        self.check(r);
        let frr = &self.frr;
        let r = lab::wait_until("FRR master", common::ELECTION_TIMEOUT, &NO_STOP, || {
            Ok(frr.role()? == Role::Master)
        });
        self.check(r);
    }

    /// Starts xvrrp.
    fn start_xvrrp(&mut self) {
        let r = self.xv.start();
        self.check(r);
    }

    /// Waits until FRR is in `role` and xvrrp has every instance in
    /// `xv_state`.
    fn wait_for(&mut self, xv_state: &str, role: Role, timeout: Duration) -> Duration {
        let start = Instant::now();
        let (xv, frr) = (&mut self.xv, &self.frr);
        let what = format!("xvrrp {xv_state} and FRR {role:?}");
        let r = lab::wait_until(&what, timeout, &NO_STOP, || {
            Ok(frr.role()? == role && xv.all_in(xv_state)?)
        });
        self.check(r);
        start.elapsed()
    }

    /// xvrrp's `status --json` instances.
    fn xv_instances(&self) -> Vec<serde_json::Value> {
        let reply = self.check(self.xv.query(&["status"]));
        lab::instances(&reply).cloned().collect()
    }

    /// Checks that, for 10 s, xvrrp keeps every instance in `xv_state` and
    /// FRR every router in `role`, sampled every 250 ms, with no transition
    /// counted on either side; that the backup accepted at least half of the
    /// master's adverts on every router; and that xvrrp rejected none of
    /// FRR's adverts.
    fn hold_steady(&mut self, xv_state: &str, role: Role) {
        let before = self.check(common::transitions(&self.xv));
        let frr_before = self.check(self.frr.counters("transitions"));
        let xv_rx_before = adverts_rx(&self.xv_instances());
        let frr_rx_before = self.check(self.frr.counters("adverRx"));
        let deadline = Instant::now() + STEADY;
        while Instant::now() < deadline {
            thread::sleep(SAMPLE);
            let in_state = self.check(self.xv.states());
            let frr_role = self.check(self.frr.role());
            assert!(
                in_state.values().all(|s| s == xv_state) && frr_role == role,
                "while steady: xvrrp {in_state:?}, FRR {frr_role:?}\n{}",
                self.logs()
            );
        }
        let after = self.check(common::transitions(&self.xv));
        assert_eq!(before, after, "xvrrp transitions\n{}", self.logs());
        let frr_after = self.check(self.frr.counters("transitions"));
        assert_eq!(frr_before, frr_after, "FRR transitions\n{}", self.logs());
        let (rx_before, rx_after, backup) = if xv_state == "backup" {
            (xv_rx_before, adverts_rx(&self.xv_instances()), "xvrrp")
        } else {
            (
                frr_rx_before,
                self.check(self.frr.counters("adverRx")),
                "FRR",
            )
        };
        assert_eq!(rx_after.len(), ROUTERS.len(), "{rx_after:?}");
        for (name, n) in &rx_after {
            let got = n - rx_before.get(name).copied().unwrap_or(0);
            assert!(
                got >= MIN_ADVERTS_WHILE_STEADY,
                "{backup} accepted {got} adverts on {name} in {STEADY:?}\n{}",
                self.logs()
            );
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

    /// Checks that xvrrp saw FRR's IPv4 adverts with the pseudo-header
    /// checksum.
    fn assert_peer_checksum(&self) {
        for i in self.xv_instances() {
            let v4 = ROUTERS
                .iter()
                .any(|r| r.family == Family::V4 && i["name"] == r.name);
            if v4 {
                assert_eq!(i["peer_checksum"], "pseudo-header", "{i}");
            }
        }
    }

    /// Waits until xvrrp, as backup, names FRR's source address as the
    /// master of each router (it learns them from the first advert).
    fn wait_xvrrp_sees_frr_master(&self) {
        let want: BTreeMap<&str, String> = ROUTERS
            .iter()
            .map(|r| {
                let source = match r.frr_source {
                    Some(a) => a.to_owned(),
                    None => self.check(self.frr.source_address(r)),
                };
                (r.name, source)
            })
            .collect();
        let mut last = Vec::new();
        let r = lab::wait_until(
            "xvrrp to name FRR as master",
            Duration::from_secs(5),
            &NO_STOP,
            || {
                last = self.xv_instances();
                Ok(last.len() == ROUTERS.len()
                    && last.iter().all(|i| {
                        let name = i["name"].as_str().unwrap_or_default();
                        i["state"] == "backup"
                            && want.get(name).is_some_and(|w| i["master"] == w.as_str())
                    }))
            },
        );
        self.check(r.with_context(|| format!("want {want:?}, last status: {last:?}")));
    }

    /// Pings the server from the client through each family's LAN virtual
    /// address, checks the client resolved it to the virtual MAC and that
    /// the LAN bridge learned that MAC on `gateway`'s port.
    fn ping_through(&self, gateway: Gateway) {
        let client = self.lab.ns("client");
        let port = match gateway {
            Gateway::Xvrrp => "a-lan",
            Gateway::Frr => "b-lan",
        };
        for (family, server) in SERVERS {
            let lan = ROUTERS
                .iter()
                .find(|r| r.family == family && r.port == "lan0")
                .unwrap();
            self.check(flow::ping(
                &client,
                server.parse().unwrap(),
                3,
                Duration::from_secs(5),
            ));
            let vip: IpAddr = lan.vip_addr().parse().unwrap();
            let mac = self.check(flow::neighbour_mac(&client, vip));
            assert_eq!(
                mac.as_deref(),
                Some(lan.vmac),
                "the client's gateway {vip}\n{}",
                self.logs()
            );
            let learned = self.check(self.bridge_port_of(lan.vmac));
            assert_eq!(
                learned.as_deref(),
                Some(port),
                "the LAN bridge's port for {} ({gateway:?} master)\n{}",
                lan.vmac,
                self.logs()
            );
        }
    }

    /// The port of the LAN bridge that learned `mac`.
    fn bridge_port_of(&self, mac: &str) -> Result<Option<String>> {
        let out = netns::exec(
            &self.lab.ns("sw"),
            "bridge",
            &["-j", "fdb", "show", "br", "lan"],
        )?;
        let entries: serde_json::Value = serde_json::from_str(&out)?;
        Ok(entries
            .as_array()
            .into_iter()
            .flatten()
            .find(|e| e["mac"] == mac)
            .and_then(|e| e["ifname"].as_str())
            .map(str::to_owned))
    }
}

/// Instance name → `adverts_rx`.
fn adverts_rx(instances: &[serde_json::Value]) -> BTreeMap<String, u64> {
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

/// xvrrp (200) joins a running FRR master (100): it preempts, and FRR steps
/// down and stays backup, accepting xvrrp's adverts; traffic goes through
/// xvrrp.
#[test]
fn p14_frr_v3_xvrrp_higher() {
    let test = "p14_frr_v3_xvrrp_higher";
    let Some(mut t) = Interop::new(test, 200, 100) else {
        return;
    };
    t.start_frr_master();
    t.start_xvrrp();
    let took = t.wait_for("master", Role::Backup, common::ELECTION_TIMEOUT);
    eprintln!("{test}: xvrrp master {took:?} after its start");
    t.assert_peer_checksum();
    t.hold_steady("master", Role::Backup);
    t.ping_through(Gateway::Xvrrp);
}

/// xvrrp (100) joins a running FRR master (200): it stays backup, never
/// master, naming FRR as master; traffic goes through FRR.
#[test]
fn p14_frr_v3_xvrrp_lower() {
    let Some(mut t) = Interop::new("p14_frr_v3_xvrrp_lower", 100, 200) else {
        return;
    };
    t.start_frr_master();
    t.start_xvrrp();
    t.wait_for("backup", Role::Master, common::ELECTION_TIMEOUT);
    t.wait_xvrrp_sees_frr_master();
    t.assert_peer_checksum();
    t.hold_steady("backup", Role::Master);
    for (name, n) in t.check(common::transitions(&t.xv)) {
        // Only init → backup: xvrrp never claimed mastership.
        assert_eq!(n, 1, "{name} transitions\n{}", t.logs());
    }
    t.ping_through(Gateway::Frr);
}

/// xvrrp (200) master over FRR (100): stopping xvrrp (SIGTERM) hands the
/// routers to FRR; xvrrp restarted preempts them back.
#[test]
fn p14_frr_v3_preempt_xvrrp_higher() {
    let test = "p14_frr_v3_preempt_xvrrp_higher";
    let Some(mut t) = Interop::new(test, 200, 100) else {
        return;
    };
    t.start_frr_master();
    t.start_xvrrp();
    t.wait_for("master", Role::Backup, common::ELECTION_TIMEOUT);

    // SIGTERM without waiting for the exit, so the takeover is timed from
    // the signal; stop() then reaps the daemon.
    let pid = t.xv.pid().unwrap();
    let stopped = Instant::now();
    t.check(netns::signal(pid, libc::SIGTERM));
    let frr = &t.frr;
    let r = lab::wait_until("FRR master", TAKEOVER_TIMEOUT, &NO_STOP, || {
        Ok(frr.role()? == Role::Master)
    });
    t.check(r);
    let takeover = stopped.elapsed();
    let r = t.xv.stop();
    t.check(r);
    t.ping_through(Gateway::Frr);

    t.start_xvrrp();
    let back = t.wait_for("master", Role::Backup, common::ELECTION_TIMEOUT);
    eprintln!(
        "{test}: FRR master {takeover:?} after xvrrp's SIGTERM; \
         xvrrp master again {back:?} after its restart"
    );
    t.ping_through(Gateway::Xvrrp);
}

/// FRR (200) master over xvrrp (100): stopping vrrpd (SIGTERM) hands the
/// routers to xvrrp; vrrpd restarted preempts them back.
#[test]
fn p14_frr_v3_preempt_frr_higher() {
    let test = "p14_frr_v3_preempt_frr_higher";
    let Some(mut t) = Interop::new(test, 100, 200) else {
        return;
    };
    t.start_frr_master();
    t.start_xvrrp();
    t.wait_for("backup", Role::Master, common::ELECTION_TIMEOUT);
    t.wait_xvrrp_sees_frr_master();

    let stopped = Instant::now();
    t.check(t.frr.terminate_vrrpd());
    let xv = &mut t.xv;
    let r = lab::wait_until("xvrrp master", TAKEOVER_TIMEOUT, &NO_STOP, || {
        xv.all_in("master")
    });
    t.check(r);
    let takeover = stopped.elapsed();
    let r = t.frr.stop_vrrpd();
    t.check(r);
    t.ping_through(Gateway::Xvrrp);

    let restarted = Instant::now();
    t.start_vrrpd_master();
    t.wait_for("backup", Role::Master, common::ELECTION_TIMEOUT);
    let back = restarted.elapsed();
    eprintln!(
        "{test}: xvrrp master {takeover:?} after vrrpd's SIGTERM; \
         FRR master again {back:?} after its restart"
    );
    t.wait_xvrrp_sees_frr_master();
    t.ping_through(Gateway::Frr);
}
