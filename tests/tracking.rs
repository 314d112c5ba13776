//! Link tracking and link faults in the lab, A (priority 200) and B (100),
//! each with `lan-gw` (VRID 1, 192.0.2.1 on `lan0`, tracking `wan0` with
//! weight -150) and `wan-gw` (VRID 2, 203.0.113.1 on `wan0`) in one sync
//! group, 100 ms adverts, preempting:
//!
//! - P10: A's `wan0` down lowers A's advertised LAN priority to 50 (on the
//!   wire and in `status`), the group moves to B, and comes back when the
//!   link does;
//! - F05: the master loses carrier on its LAN port: B takes over, traffic
//!   keeps flowing both ways, A's instance is in fault until the link returns;
//! - F06: 30 rapid carrier flaps, some shorter and some longer than the
//!   100 ms debounce, end with A master of both routers, a bounded number of
//!   transitions and no leaked descriptors.

#![allow(clippy::unwrap_used)]

mod common;

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::Path;
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use common::{flow, lab, netns, raw::Capture, Appliance, Lab, TestLab, WorkDir, NO_STOP};

const LAN_VIP: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 1);
const WAN_VIP: Ipv4Addr = Ipv4Addr::new(203, 0, 113, 1);
const CLIENT: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 100);
const SERVER: Ipv4Addr = Ipv4Addr::new(203, 0, 113, 100);
/// A's primary address on the LAN: the source of its LAN adverts.
const A_LAN: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 2);
const A_PRIORITY: u8 = 200;
const B_PRIORITY: u8 = 100;
/// Added to `lan-gw`'s priority while `wan0` is down.
const WEIGHT: i32 = -150;
/// A's `lan-gw` priority while its `wan0` is down: 200 - 150.
const A_TRACKED_PRIORITY: u8 = 50;
/// The daemon's link debounce (src/track.rs).
const DEBOUNCE: Duration = Duration::from_millis(100);
/// A takeover must complete well within this (3 × 100 ms adverts + skew,
/// plus slack for a loaded machine).
const TAKEOVER_TIMEOUT: Duration = Duration::from_secs(5);

// ----- the rig ---------------------------------------------------------------------

/// The configuration of one appliance. The fixtures' config builder has no
/// `track`, so the text is written here, in the same shape.
fn tracking_config(socket: &str, priority: u8, (track, wan_track): (&str, &str)) -> String {
    format!(
        r#"[global]
control_socket = {socket:?}

[dataplane]
cores = [0]
idle = "adaptive"

[[port]]
name = "lan0"

[[port]]
name = "wan0"

[[vrrp]]
name = "lan-gw"
port = "lan0"
vrid = 1
priority = {priority}
advert_interval = {interval:?}
preempt = true
addresses = ["192.0.2.1/24"]
track = [{track}]

[[vrrp]]
name = "wan-gw"
port = "wan0"
vrid = 2
priority = {priority}
advert_interval = {interval:?}
preempt = true
addresses = ["203.0.113.1/24"]
track = [{wan_track}]

[[sync_group]]
name = "gw"
members = ["lan-gw", "wan-gw"]
"#,
        interval = common::TEST_INTERVAL,
    )
}

/// A and B running the tracking configuration, then the lab. Fields drop
/// in order: the daemons are killed (by PID) before their scratch
/// directory and the lab are removed.
struct Rig {
    a: Appliance,
    b: Appliance,
    work: WorkDir,
    lab: TestLab,
}

impl Rig {
    /// Builds the lab, starts A and B and waits for A to be master and B
    /// backup of both routers; `None` when the test must be skipped.
    fn start(test: &str) -> Option<Rig> {
        let wan0 = format!("{{ port = \"wan0\", weight = {WEIGHT} }}");
        Rig::start_with(test, |_| (wan0.clone(), String::new()), |_| Ok(()))
    }

    /// [`Rig::start`] with each appliance's `track` lists of lan-gw and
    /// wan-gw (by appliance name, `a` or `b`) and a set-up step run on the
    /// lab before the daemons start.
    fn start_with(
        test: &str,
        track: impl Fn(&str) -> (String, String),
        prepare: impl FnOnce(&Lab) -> Result<()>,
    ) -> Option<Rig> {
        let lab = common::setup(test)?;
        prepare(&lab).unwrap();
        let work = WorkDir::create(lab.prefix()).unwrap();
        let exe = Path::new(common::XVRRP);
        let appliance = |name: &str, role: &str, priority: u8| {
            let fixture = common::gateway_config(&lab, name, priority);
            let app = Appliance::new(name, exe, &lab.ns(role), &fixture, work.path()).unwrap();
            let (lan_track, wan_track) = track(name);
            let text = tracking_config(
                &common::socket_path(&lab, name),
                priority,
                (&lan_track, &wan_track),
            );
            std::fs::write(app.config_path(), text).unwrap();
            app
        };
        let a = appliance("a", "gw-a", A_PRIORITY);
        let b = appliance("b", "gw-b", B_PRIORITY);
        let mut rig = Rig { a, b, work, lab };
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

    /// Waits until A is master and B backup of both routers.
    fn wait_a_master(&mut self, timeout: Duration) {
        let (a, b) = (&mut self.a, &mut self.b);
        let r = lab::wait_until("A master and B backup", timeout, &NO_STOP, || {
            Ok(a.all_in("master")? && b.all_in("backup")?)
        });
        self.check(r);
    }

    /// Runs `ip ARGS...`, failing the test with the logs if it fails.
    fn ip(&mut self, args: &[&str]) {
        let r = netns::ip(args);
        self.check(r);
    }

    /// A's instance `name` from `status --json`.
    fn a_instance(&mut self, name: &str) -> serde_json::Value {
        let r = instance(&self.a, name);
        self.check(r)
    }

    /// Both appliances' states, compactly: `lan-gw A=master B=backup, ...`.
    fn describe(&self) -> String {
        let a = self.a.states().unwrap_or_default();
        let b = self.b.states().unwrap_or_default();
        a.iter()
            .map(|(name, sa)| {
                let sb = b.get(name).map_or("?", String::as_str);
                format!("{name} A={sa} B={sb}")
            })
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// Instance `name` in `app`'s `status --json`.
fn instance(app: &Appliance, name: &str) -> Result<serde_json::Value> {
    let reply = app.query(&["status"])?;
    let found = lab::instances(&reply).find(|i| i["name"] == name).cloned();
    found.with_context(|| format!("no instance {name} in {reply}"))
}

/// State of instance `name` of `app` ("" when the daemon does not answer).
fn state(app: &Appliance, name: &str) -> String {
    instance(app, name)
        .ok()
        .and_then(|i| i["state"].as_str().map(str::to_owned))
        .unwrap_or_default()
}

/// Whether A is master and B backup of every router.
fn a_sole_master(rig: &Rig) -> Result<bool> {
    let a = rig.a.states()?;
    let b = rig.b.states()?;
    Ok(!a.is_empty()
        && a.values().all(|s| s == "master")
        && b.len() == a.len()
        && b.values().all(|s| s == "backup"))
}

/// Number of descriptors process `pid` has open.
fn open_fds(pid: u32) -> Result<usize> {
    let dir = format!("/proc/{pid}/fd");
    Ok(std::fs::read_dir(&dir)
        .with_context(|| format!("read {dir}"))?
        .count())
}

/// Starts a UDP flow from `from_ns` to `dst` (received in `to_ns`) and
/// waits until it arrives.
fn flowing(rig: &mut Rig, from: &str, to: &str, dst: Ipv4Addr) -> flow::Flow {
    let dst = SocketAddr::from((dst, flow::DEFAULT_PORT));
    let (from, to) = (rig.lab.ns(from), rig.lab.ns(to));
    let f = flow::Flow::start(&from, &to, dst, 1000);
    let f = rig.check(f);
    let r = lab::wait_until(
        "the flow to arrive",
        Duration::from_secs(5),
        &NO_STOP,
        || Ok(f.received() > 0),
    );
    rig.check(r);
    f
}

// ----- a VRRP capture -------------------------------------------------------------------

/// One IPv4 VRRP advertisement seen on the wire.
#[derive(Clone, Copy, Debug)]
struct Seen {
    src: Ipv4Addr,
    vrid: u8,
    priority: u8,
}

/// Reads the VRRP fields of an IPv4 packet (no link header), if it is one.
fn parse_vrrp(packet: &[u8]) -> Option<Seen> {
    let first = *packet.first()?;
    if first >> 4 != 4 || *packet.get(9)? != 112 {
        return None;
    }
    let src: [u8; 4] = packet.get(12..16)?.try_into().ok()?;
    let vrrp = packet.get(usize::from(first & 0x0f) * 4..)?;
    Some(Seen {
        src: Ipv4Addr::from(src),
        vrid: *vrrp.get(1)?,
        priority: *vrrp.get(2)?,
    })
}

/// Records the VRRP adverts reaching `ifname` in `ns`, until finished.
fn adverts_seen(ns: &str, ifname: &str) -> Result<Capture<Seen>> {
    Capture::start(ns, ifname, packet_socket, |fd| {
        let mut buf = [0u8; 2048];
        // SAFETY: reading into our own buffer of buf.len() bytes.
        let n = unsafe { libc::recv(fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len(), 0) };
        // Negative: the receive timeout, to look at the stop flag again.
        buf.get(..usize::try_from(n).ok()?).and_then(parse_vrrp)
    })
}

/// An AF_PACKET datagram socket (IPv4 only, link header stripped) bound to
/// `ifname` in the calling thread's namespace, with a 50 ms receive timeout.
fn packet_socket(ifname: &str) -> Result<OwnedFd> {
    let proto = u16::try_from(libc::ETH_P_IP)?.to_be();
    // SAFETY: plain socket(2) call; the result is checked before use.
    let fd = unsafe { libc::socket(libc::AF_PACKET, libc::SOCK_DGRAM, i32::from(proto)) };
    if fd < 0 {
        bail!("AF_PACKET socket: {}", std::io::Error::last_os_error());
    }
    // SAFETY: `fd` is a fresh descriptor owned by nothing else.
    let fd = unsafe { OwnedFd::from_raw_fd(fd) };
    let name = std::ffi::CString::new(ifname)?;
    // SAFETY: `name` is a valid NUL-terminated string.
    let ifindex = unsafe { libc::if_nametoindex(name.as_ptr()) };
    if ifindex == 0 {
        bail!("no interface {ifname}");
    }
    // SAFETY: sockaddr_ll is plain data; all-zero is a valid value.
    let mut addr: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
    addr.sll_family = u16::try_from(libc::AF_PACKET)?;
    addr.sll_protocol = proto;
    addr.sll_ifindex = i32::try_from(ifindex)?;
    let len = libc::socklen_t::try_from(std::mem::size_of::<libc::sockaddr_ll>())?;
    // SAFETY: `addr` is a valid sockaddr_ll of `len` bytes.
    let rc = unsafe { libc::bind(fd.as_raw_fd(), std::ptr::addr_of!(addr).cast(), len) };
    if rc < 0 {
        bail!("bind to {ifname}: {}", std::io::Error::last_os_error());
    }
    let timeout = libc::timeval {
        tv_sec: 0,
        tv_usec: 50_000,
    };
    let tlen = libc::socklen_t::try_from(std::mem::size_of::<libc::timeval>())?;
    // SAFETY: `timeout` is a valid timeval of `tlen` bytes.
    let rc = unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_RCVTIMEO,
            std::ptr::addr_of!(timeout).cast(),
            tlen,
        )
    };
    if rc < 0 {
        bail!("SO_RCVTIMEO: {}", std::io::Error::last_os_error());
    }
    Ok(fd)
}

/// The priorities of consecutive adverts, run-length collapsed: `[200, 50, 200]`.
fn runs(priorities: impl Iterator<Item = u8>) -> Vec<u8> {
    let mut out: Vec<u8> = Vec::new();
    for p in priorities {
        if out.last() != Some(&p) {
            out.push(p);
        }
    }
    out
}

// ----- P10 ------------------------------------------------------------------------------

#[test]
fn p10_tracking_lowers_the_advertised_priority_and_moves_the_group() {
    let Some(mut rig) =
        Rig::start("p10_tracking_lowers_the_advertised_priority_and_moves_the_group")
    else {
        return;
    };
    let lan = rig.a_instance("lan-gw");
    assert_eq!(lan["effective_priority"], A_PRIORITY, "{lan}");
    assert_eq!(lan["track"][0]["port"], "wan0", "{lan}");
    assert_eq!(lan["track"][0]["weight"], WEIGHT, "{lan}");
    assert_eq!(lan["track"][0]["up"], true, "{lan}");

    let client = rig.lab.ns("client");
    let capture = adverts_seen(&client, "eth0");
    let capture = rig.check(capture);
    // A few of A's adverts at its full priority first.
    thread::sleep(Duration::from_millis(300));

    let gw_a = rig.lab.ns("gw-a");
    rig.ip(&["-n", &gw_a, "link", "set", "wan0", "down"]);
    let down = Instant::now();
    let (a, b) = (&rig.a, &rig.b);
    let r = lab::wait_until(
        "A's lan-gw at the tracked priority and B master of both",
        TAKEOVER_TIMEOUT,
        &NO_STOP,
        || {
            let lan = instance(a, "lan-gw")?;
            Ok(lan["effective_priority"] == A_TRACKED_PRIORITY
                && state(a, "wan-gw") == "fault"
                && b.states()?.values().all(|s| s == "master"))
        },
    );
    rig.check(r);
    let moved = down.elapsed();
    let lan = rig.a_instance("lan-gw");
    assert_eq!(lan["priority"], A_PRIORITY, "{lan}");
    assert_eq!(lan["effective_priority"], A_TRACKED_PRIORITY, "{lan}");
    assert_eq!(lan["track"][0]["up"], false, "{lan}");
    assert_eq!(lan["state"], "backup", "{lan}");
    let wan = rig.a_instance("wan-gw");
    assert_eq!(wan["state"], "fault", "{wan}");
    // The client reaches the server through B, both ways.
    let ping = flow::ping(&client, IpAddr::V4(SERVER), 3, Duration::from_secs(5));
    rig.check(ping);

    rig.ip(&["-n", &gw_a, "link", "set", "wan0", "up"]);
    let up = Instant::now();
    rig.wait_a_master(TAKEOVER_TIMEOUT);
    let back = up.elapsed();
    // A few adverts at the restored priority.
    thread::sleep(Duration::from_millis(300));
    let seen = capture.finish();
    let seen = rig.check(seen);
    let lan = rig.a_instance("lan-gw");
    assert_eq!(lan["effective_priority"], A_PRIORITY, "{lan}");
    assert_eq!(lan["track"][0]["up"], true, "{lan}");
    let ping = flow::ping(&client, IpAddr::V4(SERVER), 3, Duration::from_secs(5));
    rig.check(ping);

    // On the wire: A advertised 200, then 50 while it was still master
    // with wan0 down (until B preempted it), then 200 again.
    let from_a: Vec<Seen> = seen
        .iter()
        .filter(|s| s.src == A_LAN && s.vrid == 1)
        .copied()
        .collect();
    let at = |p: u8| from_a.iter().filter(|s| s.priority == p).count();
    let pattern = runs(from_a.iter().map(|s| s.priority));
    println!(
        "P10: B master of both {moved:?} after wan0 down, A back {back:?} after wan0 up; \
         A's LAN adverts by priority: 200 ×{}, 50 ×{}; sequence {pattern:?}; {}",
        at(A_PRIORITY),
        at(A_TRACKED_PRIORITY),
        rig.describe()
    );
    // 200 while master; 50 once wan0 is down; then 0, because wan-gw went
    // into fault and took its sync group (lan-gw) down with a priority-0
    // advert so that B takes over at once; 200 again after wan0 returns.
    assert_eq!(
        pattern,
        [A_PRIORITY, A_TRACKED_PRIORITY, 0, A_PRIORITY],
        "A's LAN adverts: {from_a:?}\n{}",
        rig.logs()
    );
}

// ----- F05 ------------------------------------------------------------------------------

/// P10 beyond links: a tracked route and a tracked address. Each appliance
/// tracks, on both of its routers, the route 198.51.100.0/24 and an address
/// of its own on `lo`; either one going away lowers A's priorities by 150
/// and moves the group to B, its return brings the group back.
#[test]
fn p10_route_and_address_tracking_move_the_group() {
    let route = "198.51.100.0/24";
    let own = |name: &str| {
        if name == "a" {
            "198.51.100.2"
        } else {
            "198.51.100.3"
        }
    };
    let track = |name: &str| {
        let list = format!(
            "{{ route = \"{route}\", weight = {WEIGHT} }}, {{ address = \"{}\", weight = {WEIGHT} }}",
            own(name)
        );
        (list.clone(), list)
    };
    let prepare = |lab: &Lab| {
        for (name, role) in [("a", "gw-a"), ("b", "gw-b")] {
            let ns = lab.ns(role);
            netns::ip(&[
                "-n",
                &ns,
                "route",
                "add",
                route,
                "via",
                "203.0.113.100",
                "dev",
                "wan0",
            ])?;
            let addr = format!("{}/32", own(name));
            netns::ip(&["-n", &ns, "addr", "add", &addr, "dev", "lo"])?;
        }
        Ok(())
    };
    let Some(mut rig) = Rig::start_with(
        "p10_route_and_address_tracking_move_the_group",
        track,
        prepare,
    ) else {
        return;
    };
    let lan = rig.a_instance("lan-gw");
    assert_eq!(lan["effective_priority"], A_PRIORITY, "{lan}");
    assert_eq!(lan["track"][0]["route"], route, "{lan}");
    assert_eq!(lan["track"][1]["address"], "198.51.100.2", "{lan}");
    let gw_a = rig.lab.ns("gw-a");
    for (remove, restore, what) in [
        (
            vec!["-n", gw_a.as_str(), "route", "del", route],
            vec![
                "-n",
                gw_a.as_str(),
                "route",
                "add",
                route,
                "via",
                "203.0.113.100",
                "dev",
                "wan0",
            ],
            "route",
        ),
        (
            vec![
                "-n",
                gw_a.as_str(),
                "addr",
                "del",
                "198.51.100.2/32",
                "dev",
                "lo",
            ],
            vec![
                "-n",
                gw_a.as_str(),
                "addr",
                "add",
                "198.51.100.2/32",
                "dev",
                "lo",
            ],
            "address",
        ),
    ] {
        rig.ip(&remove);
        let (a, b) = (&rig.a, &rig.b);
        let r = lab::wait_until(
            &format!("{what} gone: A at the tracked priority, B master of both"),
            TAKEOVER_TIMEOUT,
            &NO_STOP,
            || {
                let lan = instance(a, "lan-gw")?;
                Ok(lan["effective_priority"] == A_TRACKED_PRIORITY
                    && b.states()?.values().all(|s| s == "master"))
            },
        );
        rig.check(r);
        let lan = rig.a_instance("lan-gw");
        let down = lan["track"]
            .as_array()
            .map_or(0, |t| t.iter().filter(|t| t["up"] == false).count());
        assert_eq!(down, 1, "{what}: {lan}");
        rig.ip(&restore);
        rig.wait_a_master(TAKEOVER_TIMEOUT);
        let lan = rig.a_instance("lan-gw");
        assert_eq!(lan["effective_priority"], A_PRIORITY, "{what}: {lan}");
    }
}

#[test]
fn f05_master_link_down_no_blackhole() {
    let Some(mut rig) = Rig::start("f05_master_link_down_no_blackhole") else {
        return;
    };
    // Both directions: the return path must not end at A either.
    let up_flow = flowing(&mut rig, "client", "server", SERVER);
    let down_flow = flowing(&mut rig, "server", "client", CLIENT);
    thread::sleep(Duration::from_millis(300));

    // A's lan0 loses carrier; its admin state stays up.
    let sw = rig.lab.ns("sw");
    rig.ip(&["-n", &sw, "link", "set", "a-lan", "down"]);
    let cut = Instant::now();
    let b = &rig.b;
    let r = lab::wait_until("B master of lan-gw", TAKEOVER_TIMEOUT, &NO_STOP, || {
        Ok(state(b, "lan-gw") == "master")
    });
    rig.check(r);
    let takeover = cut.elapsed();
    let a = &rig.a;
    let r = lab::wait_until(
        "A's lan-gw in fault",
        Duration::from_secs(2),
        &NO_STOP,
        || Ok(state(a, "lan-gw") == "fault"),
    );
    rig.check(r);
    let (at_up, at_down) = (up_flow.received(), down_flow.received());
    let (fu, fd) = (&up_flow, &down_flow);
    let resumed = lab::wait_until(
        "both flows to resume",
        Duration::from_secs(2),
        &NO_STOP,
        || Ok(fu.received() > at_up + 200 && fd.received() > at_down + 200),
    );
    let during = rig.describe();
    let up_report = up_flow.stop().unwrap();
    let down_report = down_flow.stop().unwrap();
    println!(
        "F05: B master of lan-gw {takeover:?} after the carrier loss; {during}; \
         client→server: {up_report}; server→client: {down_report}"
    );
    rig.check(resumed);
    let ping = flow::ping(
        &rig.lab.ns("client"),
        IpAddr::V4(SERVER),
        3,
        Duration::from_secs(5),
    );
    rig.check(ping);
    assert!(
        takeover < Duration::from_millis(1500),
        "takeover took {takeover:?}\n{}",
        rig.logs()
    );
    for report in [&up_report, &down_report] {
        assert!(report.max_gap_ms < 1500.0, "{report}\n{}", rig.logs());
    }

    rig.ip(&["-n", &sw, "link", "set", "a-lan", "up"]);
    rig.wait_a_master(TAKEOVER_TIMEOUT);
    let ping = flow::ping(
        &rig.lab.ns("client"),
        IpAddr::V4(SERVER),
        3,
        Duration::from_secs(5),
    );
    rig.check(ping);
}

// ----- F06 ------------------------------------------------------------------------------

/// How long flap `i` keeps the carrier down, then up: mostly 10–20 ms each
/// (inside the debounce), and every sixth flap 150 ms each (outside it, so
/// A's instance faults and restarts).
fn flap_times(i: u64) -> (Duration, Duration) {
    if i % 6 == 5 {
        (Duration::from_millis(150), Duration::from_millis(150))
    } else {
        (
            Duration::from_millis(10 + (i * 7) % 11),
            Duration::from_millis(10 + (i * 3) % 11),
        )
    }
}

#[test]
fn f06_rapid_flaps_end_in_the_right_state() {
    let Some(mut rig) = Rig::start("f06_rapid_flaps_end_in_the_right_state") else {
        return;
    };
    let pid = rig.a.pid().unwrap();
    let fds_before = rig.check(open_fds(pid));
    let before = rig.check(common::transitions(&rig.a));

    let sw = rig.lab.ns("sw");
    let flaps: u64 = 30;
    let started = Instant::now();
    let mut long = 0;
    for i in 0..flaps {
        let (down, up) = flap_times(i);
        if down > DEBOUNCE {
            long += 1;
        }
        rig.ip(&["-n", &sw, "link", "set", "a-lan", "down"]);
        thread::sleep(down);
        rig.ip(&["-n", &sw, "link", "set", "a-lan", "up"]);
        if i + 1 < flaps {
            thread::sleep(up);
        }
    }
    let flapping = started.elapsed();
    let last_up = Instant::now();

    let r = lab::wait_until(
        "A sole master after the flaps",
        Duration::from_secs(2),
        &NO_STOP,
        || a_sole_master(&rig),
    );
    let settled = last_up.elapsed();
    rig.check(r);
    // And it stays so.
    thread::sleep(Duration::from_millis(500));
    let stable = a_sole_master(&rig);
    let stable = rig.check(stable);
    assert!(stable, "not stable: {}\n{}", rig.describe(), rig.logs());

    let after = rig.check(common::transitions(&rig.a));
    let moves: BTreeMap<String, u64> = after
        .iter()
        .map(|(name, n)| {
            let d = n.saturating_sub(before.get(name).copied().unwrap_or(0));
            (name.clone(), d)
        })
        .collect();
    let fds_after = rig.check(open_fds(pid));
    println!(
        "F06: {flaps} flaps ({long} outlasting the debounce) in {flapping:?}; A sole master \
         {settled:?} after the last; A's transitions {moves:?}; A's fds {fds_before} → {fds_after}"
    );
    // Only the flaps that outlasted the debounce count: each moves lan-gw
    // at most out of its state (fault), back to backup and on to master.
    let lan_moves = moves.get("lan-gw").copied().unwrap_or(0);
    assert!(
        lan_moves <= 3 * long,
        "lan-gw moved {lan_moves} times for {long} real link changes\n{}",
        rig.logs()
    );
    // wan-gw's own link never changed; it follows lan-gw through the sync
    // group (forced to backup while lan-gw is in fault, back with it): at
    // most two moves per real link change.
    let wan_moves = moves.get("wan-gw").copied().unwrap_or(0);
    assert!(
        wan_moves <= 2 * long,
        "wan-gw moved {wan_moves} times for {long} real link changes\n{}",
        rig.logs()
    );
    assert!(
        fds_after.abs_diff(fds_before) <= 2,
        "A's descriptors went from {fds_before} to {fds_after}"
    );
    // No virtual address leaked onto a kernel interface.
    for gw in ["gw-a", "gw-b"] {
        for vip in [LAN_VIP, WAN_VIP] {
            let ns = rig.lab.ns(gw);
            assert!(
                !common::ip_on_any_interface(&ns, IpAddr::V4(vip)).unwrap(),
                "{vip} configured on a kernel interface of {ns}"
            );
        }
    }
    // A still answers and serves: the client reaches the server.
    let ping = flow::ping(
        &rig.lab.ns("client"),
        IpAddr::V4(SERVER),
        3,
        Duration::from_secs(5),
    );
    rig.check(ping);
}
