//! Fixtures for the network-namespace integration tests.
//!
//! The lab, the appliance runner and the traffic tools come from the
//! `xvrrp-lab` crate, which also backs `xvrrp lab` and `xvrrp demo`, so the
//! tests drive exactly the code those commands use.
//!
//! Every test builds its own lab under a unique prefix, so tests run in
//! parallel. Guards tear everything down on every exit path: the daemons
//! (killed by PID) and then the lab, on success, failure or panic; a
//! SIGINT/SIGTERM handler removes the labs still registered before exiting.

// Each test crate uses a different part of these fixtures.
#![allow(dead_code)]
#![allow(clippy::unwrap_used)]

pub(crate) mod adverts;
pub(crate) mod frames;
pub(crate) mod pcap;
pub(crate) mod raw;

// Re-exported so every test file names them `common::lab` etc.; not every
// test crate uses all three.
#[allow(unused_imports)]
pub(crate) use xvrrp_lab::{flow, lab, netns};

use std::collections::BTreeMap;
use std::hash::{Hash, Hasher};
use std::net::IpAddr;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::Path;
use std::process::Command;
use std::sync::atomic::AtomicBool;
use std::sync::{Mutex, Once};
use std::time::Duration;

use anyhow::{bail, Context, Result};

pub(crate) use lab::{Appliance, ApplianceConfig, Lab, WorkDir};

/// The binary under test.
pub(crate) const XVRRP: &str = env!("CARGO_BIN_EXE_xvrrp");

/// Never raised: the tests' waits are bounded by their timeouts, and Ctrl-C
/// is handled by the cleanup handler instead.
pub(crate) static NO_STOP: AtomicBool = AtomicBool::new(false);

/// Labs alive in this test process, for the signal handler.
static LIVE_LABS: Mutex<Vec<String>> = Mutex::new(Vec::new());
static HANDLER: Once = Once::new();

/// Whether the namespace tests can run here. When they cannot, a
/// developer's run prints why and the test passes without running; under CI
/// (`CI=true`) the test fails with the reason instead, so a CI machine that
/// cannot run them is red, not green with nothing tested.
pub(crate) fn can_run(test: &str) -> bool {
    let Some(why) = unsupported() else {
        return true;
    };
    assert!(
        std::env::var("CI").as_deref() != Ok("true"),
        "{test} cannot run with CI=true: {why}"
    );
    eprintln!("skipping {test}: {why}");
    false
}

/// Why this machine cannot run namespace tests, if it cannot.
fn unsupported() -> Option<String> {
    if !netns::is_root() {
        return Some("not running as root".to_owned());
    }
    match Command::new("ip").args(["netns", "list"]).output() {
        Ok(out) if out.status.success() => {}
        Ok(out) => {
            return Some(format!(
                "`ip netns` unavailable: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            ))
        }
        Err(e) => return Some(format!("`ip` not found: {e}")),
    }
    None
}

/// Fails the test at once, naming the first of `programs` (names on `PATH`
/// or absolute paths) that is not installed: a machine that can run the
/// namespace tests but lacks a tool they use is broken, not unsupported.
pub(crate) fn require(programs: &[&str]) {
    if let Err(e) = netns::require(programs) {
        panic!("{e:#}");
    }
}

/// A prefix unique to this test and process: `t`, 3 characters from the
/// test name, 4 from the PID (all `[a-z0-9]`, 8 in all).
pub(crate) fn prefix_for(test: &str) -> String {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    test.hash(&mut h);
    let name = base36(h.finish(), 3);
    let pid = base36(u64::from(std::process::id()), 4);
    format!("t{name}{pid}")
}

fn base36(mut v: u64, digits: usize) -> String {
    const ALPHABET: &[u8; 36] = b"0123456789abcdefghijklmnopqrstuvwxyz";
    let mut s = String::new();
    for _ in 0..digits {
        s.push(char::from(ALPHABET[(v % 36) as usize]));
        v /= 36;
    }
    s
}

fn install_cleanup_handler() {
    HANDLER.call_once(|| {
        use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
        let Ok(mut signals) = signal_hook::iterator::Signals::new([SIGINT, SIGTERM, SIGHUP]) else {
            eprintln!("warning: no cleanup on Ctrl-C (cannot install a signal handler)");
            return;
        };
        std::thread::spawn(move || {
            if let Some(sig) = signals.forever().next() {
                let labs = LIVE_LABS
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .clone();
                for prefix in labs {
                    eprintln!("signal {sig}: removing lab {prefix}");
                    let _ = lab::teardown(&prefix);
                }
                std::process::exit(128 + sig);
            }
        });
    });
}

/// A lab registered for cleanup on Ctrl-C; removed when dropped.
pub(crate) struct TestLab {
    lab: Lab,
}

impl std::ops::Deref for TestLab {
    type Target = Lab;
    fn deref(&self) -> &Lab {
        &self.lab
    }
}

impl Drop for TestLab {
    fn drop(&mut self) {
        let mut labs = LIVE_LABS
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        labs.retain(|p| p != self.lab.prefix());
        // `self.lab` is dropped next, which tears the lab down.
    }
}

/// Builds a lab for `test`, or returns `None` when the test cannot run
/// here (see [`can_run`]). Fails if `ethtool` is not installed.
pub(crate) fn setup(test: &str) -> Option<TestLab> {
    setup_with(test, &lab::LabOptions::default())
}

/// [`setup`] with lab `options` (multi-queue gateway ports).
pub(crate) fn setup_with(test: &str, options: &lab::LabOptions) -> Option<TestLab> {
    if !can_run(test) {
        return None;
    }
    install_cleanup_handler();
    let prefix = prefix_for(test);
    LIVE_LABS
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .push(prefix.clone());
    match Lab::up_with(&prefix, options) {
        Ok(lab) => Some(TestLab { lab }),
        Err(e) => panic!("lab up {prefix}: {e:#}"),
    }
}

/// [`can_run`], with the Ctrl-C cleanup installed when it can (for tests
/// that build their lab later or some other way).
pub(crate) fn supported(test: &str) -> bool {
    if !can_run(test) {
        return false;
    }
    install_cleanup_handler();
    true
}

/// Advertisement interval of the test appliances: slow enough that a
/// loaded 2-core CI machine never misses three in a row, fast enough that a
/// failover takes well under a second.
pub(crate) const TEST_INTERVAL: &str = "100ms";

/// The lab gateway configuration for appliance `name` (`a` or `b`) at
/// `priority`, with the test advertisement interval.
pub(crate) fn gateway_config(lab: &Lab, name: &str, priority: u8) -> ApplianceConfig {
    let mut c = ApplianceConfig::gateway(&socket_path(lab, name), priority);
    c.advert_interval = TEST_INTERVAL.to_owned();
    // A's worker on core 0, B's on core 1: tests run in parallel, and one
    // busy worker should not hold both appliances of another test, nor the
    // kernel's deferred packet processing on its core, for long.
    if name == "b" {
        c.cores = vec![1];
    }
    c
}

/// Control socket of appliance `name` in `lab`.
pub(crate) fn socket_path(lab: &Lab, name: &str) -> String {
    format!("/run/xvrrp/{}-{name}.sock", lab.prefix())
}

/// Two appliances, A in gw-a and B in gw-b, with their scratch directory.
/// Declare it after the lab: dropping it kills both daemons first.
pub(crate) struct Pair {
    pub(crate) a: Appliance,
    pub(crate) b: Appliance,
    work: WorkDir,
}

impl Pair {
    /// Writes both configs and starts both daemons.
    pub(crate) fn start(lab: &Lab, a: &ApplianceConfig, b: &ApplianceConfig) -> Pair {
        let work = WorkDir::create(lab.prefix()).unwrap();
        let exe = Path::new(XVRRP);
        let mut a = Appliance::new("a", exe, &lab.ns("gw-a"), a, work.path()).unwrap();
        let mut b = Appliance::new("b", exe, &lab.ns("gw-b"), b, work.path()).unwrap();
        a.start().unwrap();
        b.start().unwrap();
        Pair { a, b, work }
    }

    /// The standard pair: A at priority 200, B at 100, both instances.
    pub(crate) fn standard(lab: &Lab) -> Pair {
        Pair::start(
            lab,
            &gateway_config(lab, "a", 200),
            &gateway_config(lab, "b", 100),
        )
    }

    /// Waits until A is master and B backup of every instance; panics with
    /// both logs otherwise.
    pub(crate) fn wait_a_master(&mut self, timeout: Duration) {
        let (a, b) = (&mut self.a, &mut self.b);
        let r = lab::wait_until("A master and B backup", timeout, &NO_STOP, || {
            Ok(a.all_in("master")? && b.all_in("backup")?)
        });
        self.check(r);
    }

    /// Waits until B is master of every instance.
    pub(crate) fn wait_b_master(&mut self, timeout: Duration) {
        let b = &mut self.b;
        let r = lab::wait_until("B master", timeout, &NO_STOP, || b.all_in("master"));
        self.check(r);
    }

    /// Unwraps `r`, panicking with both daemons' logs on error.
    pub(crate) fn check<T>(&self, r: Result<T>) -> T {
        match r {
            Ok(v) => v,
            Err(e) => panic!("{e:#}\n{}", self.logs()),
        }
    }

    /// Both daemons' recent log lines, for failure messages.
    pub(crate) fn logs(&self) -> String {
        format!(
            "--- log of A:\n{}\n--- log of B:\n{}",
            self.a.log_tail(20),
            self.b.log_tail(20)
        )
    }

    /// Keeps the configs and logs after the test (for a failing test).
    pub(crate) fn keep_logs(&mut self) {
        self.work.keep();
    }
}

/// Instance name → `transitions`, from `status --json`.
pub(crate) fn transitions(app: &Appliance) -> Result<BTreeMap<String, u64>> {
    let reply = app.query(&["status"])?;
    let mut out = BTreeMap::new();
    for i in lab::instances(&reply) {
        let name = i.get("name").and_then(|v| v.as_str()).unwrap_or_default();
        let n = i
            .get("transitions")
            .and_then(serde_json::Value::as_u64)
            .with_context(|| format!("no transitions count in {i}"))?;
        out.insert(name.to_owned(), n);
    }
    Ok(out)
}

/// Sums every numeric field named `reason` anywhere in a `stats --json`
/// reply, however the daemon nests its counters (port, worker, instance).
pub(crate) fn drop_count(stats: &serde_json::Value, reason: &str) -> u64 {
    match stats {
        serde_json::Value::Object(map) => map
            .iter()
            .map(|(k, v)| {
                let own = if k == reason {
                    v.as_u64().unwrap_or(0)
                } else {
                    0
                };
                own + drop_count(v, reason)
            })
            .sum(),
        serde_json::Value::Array(items) => items.iter().map(|v| drop_count(v, reason)).sum(),
        _ => 0,
    }
}

/// Sum of `ports.PORT.workers.*.FIELD` in a `stats --json` reply.
pub(crate) fn port_counter(stats: &serde_json::Value, port: &str, field: &str) -> u64 {
    stats["ports"][port]["workers"]
        .as_object()
        .into_iter()
        .flat_map(|w| w.values())
        .filter_map(|w| w[field].as_u64())
        .sum()
}

/// `FIELD` of instance `name` in `app`'s `status --json`.
pub(crate) fn instance_field(app: &Appliance, name: &str, field: &str) -> u64 {
    let reply = app.query(&["status"]).unwrap();
    let value = lab::instances(&reply)
        .find(|i| i["name"] == name)
        .and_then(|i| i[field].as_u64());
    value.unwrap_or_else(|| panic!("no {field} for {name} in {reply}"))
}

/// Whether [`resolved_mac`] first flushes the neighbour entry it reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Neighbour {
    /// Flush it, so the address read comes from a new resolution.
    Flush,
    /// Keep it: the ping resolves the address if nothing has yet.
    Keep,
}

/// The link-layer address namespace `ns` has resolved the virtual address
/// `vip` to once `dst` answers `count` pings (all within 5 s): `dst` is
/// `vip` itself, or a host reached through the gateway at `vip`. With
/// [`Neighbour::Flush`] the entry for `vip` is flushed before the ping.
///
/// # Errors
/// The flush or the ping failed, or the neighbour table cannot be read.
pub(crate) fn resolved_mac(
    ns: &str,
    vip: IpAddr,
    dst: IpAddr,
    count: u32,
    neighbour: Neighbour,
) -> Result<Option<String>> {
    if neighbour == Neighbour::Flush {
        flush_neighbour(ns, vip)?;
    }
    flow::ping(ns, dst, count, Duration::from_secs(5))?;
    flow::neighbour_mac(ns, vip)
}

/// Flushes namespace `ns`'s neighbour entry for `ip`.
pub(crate) fn flush_neighbour(ns: &str, ip: IpAddr) -> Result<()> {
    netns::ip(&["-n", ns, "neigh", "flush", "to", &ip.to_string()]).map(drop)
}

/// Sum of `ports.*.xdp_drops.REASON` in a `stats --json` reply: what the
/// XDP filters dropped before any copy to the workers.
pub(crate) fn xdp_drops(stats: &serde_json::Value, reason: &str) -> u64 {
    ports(stats)
        .filter_map(|p| p["xdp_drops"][reason].as_u64())
        .sum()
}

/// Sum of `ports.*.workers.*.drops.REASON` in a `stats --json` reply: what
/// the workers dropped.
pub(crate) fn worker_drops(stats: &serde_json::Value, reason: &str) -> u64 {
    ports(stats)
        .filter_map(|p| p["workers"].as_object())
        .flat_map(|w| w.values())
        .filter_map(|w| w["drops"][reason].as_u64())
        .sum()
}

/// Sum of `ports.*.xdp.FIELD` (`adverts_passed`, `master_adverts`,
/// `vmac_conflicts`) in a `stats --json` reply.
pub(crate) fn xdp_counter(stats: &serde_json::Value, field: &str) -> u64 {
    ports(stats).filter_map(|p| p["xdp"][field].as_u64()).sum()
}

fn ports(stats: &serde_json::Value) -> impl Iterator<Item = &serde_json::Value> {
    stats["ports"]
        .as_object()
        .into_iter()
        .flat_map(|p| p.values())
}

/// Whether `ip` is configured on any interface of namespace `ns`.
pub(crate) fn ip_on_any_interface(ns: &str, ip: IpAddr) -> Result<bool> {
    let out = netns::ip(&["-n", ns, "-j", "addr", "show"])?;
    let links: serde_json::Value = serde_json::from_str(&out)?;
    let wanted = ip.to_string();
    Ok(links
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|l| l.get("addr_info").and_then(|a| a.as_array()))
        .flatten()
        .any(|a| a.get("local").and_then(|v| v.as_str()) == Some(wanted.as_str())))
}

/// Sends raw Ethernet `frames` out of interface `ifname` in namespace `ns`
/// through an AF_PACKET socket (bypassing the stack, so malformed packets
/// leave as written).
pub(crate) fn send_frames(ns: &str, ifname: &str, frames: Vec<Vec<u8>>) -> Result<()> {
    let ifname = std::ffi::CString::new(ifname)?;
    netns::run_in(ns, move || {
        // SAFETY: plain socket(2) call; the result is checked before use.
        let fd = unsafe { libc::socket(libc::AF_PACKET, libc::SOCK_RAW, 0) };
        if fd < 0 {
            bail!("AF_PACKET socket: {}", std::io::Error::last_os_error());
        }
        // SAFETY: `fd` is a fresh descriptor owned by nothing else.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        // SAFETY: `ifname` is a valid NUL-terminated string.
        let ifindex = unsafe { libc::if_nametoindex(ifname.as_ptr()) };
        if ifindex == 0 {
            bail!("no interface {ifname:?}");
        }
        // SAFETY: sockaddr_ll is plain data; all-zero is a valid value.
        let mut addr: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
        addr.sll_family = u16::try_from(libc::AF_PACKET)?;
        addr.sll_ifindex = i32::try_from(ifindex)?;
        addr.sll_halen = 6;
        let addr_len = libc::socklen_t::try_from(std::mem::size_of::<libc::sockaddr_ll>())?;
        for frame in &frames {
            if let Some(dst) = frame.get(..6) {
                addr.sll_addr[..6].copy_from_slice(dst);
            }
            // SAFETY: `frame` and `addr` are valid for the lengths given
            // and outlive the call.
            let n = unsafe {
                libc::sendto(
                    fd.as_raw_fd(),
                    frame.as_ptr().cast(),
                    frame.len(),
                    0,
                    std::ptr::addr_of!(addr).cast(),
                    addr_len,
                )
            };
            if n < 0 {
                bail!("send a raw frame: {}", std::io::Error::last_os_error());
            }
        }
        Ok(())
    })
}

/// Sets sysctl `key` in namespace `ns` (test-only topology changes).
pub(crate) fn sysctl(ns: &str, key: &str, value: &str) {
    netns::sysctl(ns, key, value).unwrap();
}

/// A stall of the whole machine (a real-time thread doing nothing else,
/// `xvrrp_lab::stall_probe`, woke this late) outlasts a 10 ms master's
/// Master_Down_Interval at its backup: the host did not run the VM, and no
/// appliance holds then. Tests at 10 ms excuse a move only during one.
const MACHINE_STALL: Duration = Duration::from_millis(30);

/// Whether the machine stopped for [`MACHINE_STALL`] or more.
pub(crate) fn machine_stalled(stalls: &xvrrp_lab::stall_probe::Stalls) -> bool {
    stalls.max >= MACHINE_STALL
}

/// Election deadline: daemon start-up (XDP attach, UMEM) plus a master-down
/// interval, with room for a loaded machine.
pub(crate) const ELECTION_TIMEOUT: Duration = Duration::from_secs(15);

/// A lab with the standard pair running, A elected master. Fields drop in
/// order: the daemons are killed before the lab is removed.
pub(crate) struct Rig {
    pub(crate) pair: Pair,
    pub(crate) lab: TestLab,
}

impl Rig {
    /// Builds the lab, starts A (200) and B (100) and waits for A to be
    /// master of both routers; `None` when the test must be skipped.
    pub(crate) fn standard(test: &str) -> Option<Rig> {
        let lab = setup(test)?;
        let mut pair = Pair::standard(&lab);
        pair.wait_a_master(ELECTION_TIMEOUT);
        Some(Rig { pair, lab })
    }

    /// Starts a UDP flow of `rate` datagrams per second from the client to
    /// the server through the gateway, and waits until it arrives.
    pub(crate) fn flowing(&self, rate: u32) -> flow::Flow {
        let server = std::net::Ipv4Addr::new(203, 0, 113, 100);
        let dst = std::net::SocketAddr::from((server, flow::DEFAULT_PORT));
        let f =
            flow::Flow::start(&self.lab.ns("client"), &self.lab.ns("server"), dst, rate).unwrap();
        let r = lab::wait_until(
            "the flow to arrive",
            Duration::from_secs(5),
            &NO_STOP,
            || Ok(f.received() > 0),
        );
        self.pair.check(r);
        f
    }
}
