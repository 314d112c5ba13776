//! Faults in the namespace lab, named by docs/conformance.md ID, with A
//! (priority 200) and B (100) advertising every 100 ms:
//!
//! - F02: SIGTERM of the master under a UDP flow: its priority-0 advert is
//!   on the wire before B's first advert as master, B takes over after its
//!   Skew_Time, the flow barely notices, A exits 0 and removes its socket;
//!   with A's priority-0 adverts dropped on the switch, B still takes over,
//!   by its Master_Down_Interval;
//! - F07: VRRP dropped between the gateways (both become master), then
//!   healed: A alone is master again within an interval or so, announces
//!   its addresses, and the client still gets through the virtual MAC;
//! - B18: a backup configured with another interval adopts the master's
//!   and says so in its log once per instance.
//!
//! Faults are made on the switch (`{P}-sw`) with `tc`: a u32 filter on a
//! bridge port's ingress redirects the matching frames to a veth that is
//! down, which drops them (the kernel used in CI has no gact/police actions
//! and no nftables or ebtables tools, but u32 and mirred). Captures run
//! `tcpdump` on the LAN bridge, stopped by PID, decoded by `tshark`. Every
//! test's daemons, capture and lab are removed on every exit path.

#![allow(clippy::unwrap_used)]

mod common;

use std::io::Write;
use std::net::{IpAddr, Ipv4Addr};
use std::path::Path;
use std::process::{Command, Stdio};
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{bail, Context, Result};
use common::{flow, lab, netns, pcap::Tcpdump, Neighbour, Pair, Rig, WorkDir, NO_STOP};

const VMAC: &str = "00:00:5e:00:01:01";
const A_LAN: &str = "192.0.2.2";
const B_LAN: &str = "192.0.2.3";
const LAN_VIP: &str = "192.0.2.1";
const SERVER: Ipv4Addr = Ipv4Addr::new(203, 0, 113, 100);
/// The fixtures' advertisement interval, in seconds.
const INTERVAL: f64 = 0.100;
/// B's Skew_Time at priority 100 and 100 ms: (256 − 100) / 256 × 100 ms
/// (RFC 9568 §6.1).
const B_SKEW: f64 = 0.060_937_5;
/// B's Master_Down_Interval: 3 × 100 ms + Skew_Time.
const B_MDI: f64 = 3.0 * INTERVAL + B_SKEW;
/// How much earlier than the LAN router's the WAN router's adverts may
/// leave: routers spread their adverts over half an interval in 32 steps,
/// by id (lan-gw is id 0, wan-gw id 1).
const PHASE: f64 = INTERVAL / 2.0 / 32.0;
/// B times each router's Master_Down_Interval from the advert's arrival at
/// its own port, and the WAN router's adverts are not in this LAN capture:
/// allow for the two ports' arrival stamps to differ by this much.
const ARRIVAL_SKEW: f64 = 0.001;
/// Timestamps of one capture: allow for their microsecond rounding.
const EPSILON: f64 = 0.000_1;
/// The log line of a peer advertising another interval (B18).
const INTERVAL_WARNING: &str = "the peer advertises another interval than ours";

// ----- capture ----------------------------------------------------------------------

/// Stops the capture and decodes its frames with tshark (which checks the
/// VRRPv3 checksum in xvrrp's default form, RFC 9568).
fn frames(cap: &mut Tcpdump) -> Result<Vec<Frame>> {
    cap.decode(&FIELDS)?
        .iter()
        .map(|row| Frame::parse(row))
        .collect()
}

const FIELDS: [&str; 7] = [
    "frame.time_epoch",
    "eth.src",
    "ip.src",
    "vrrp.virt_rtr_id",
    "vrrp.prio",
    "arp.src.proto_ipv4",
    "arp.dst.proto_ipv4",
];

/// One captured frame: an advert or an ARP packet.
#[derive(Debug)]
struct Frame {
    /// Capture time, seconds since the Unix epoch.
    t: f64,
    eth_src: String,
    ip_src: String,
    /// VRID and priority of an advert.
    advert: Option<(u8, u8)>,
    /// A gratuitous ARP: sender and target address are both this one.
    garp_for: Option<String>,
}

impl Frame {
    fn parse(row: &[String]) -> Result<Frame> {
        let [t, eth_src, ip_src, vrid, prio, arp_src, arp_dst] = row else {
            bail!("tshark line {row:?}");
        };
        let advert = match (vrid.as_str(), prio.as_str()) {
            ("", _) | (_, "") => None,
            (v, p) => Some((v.parse()?, p.parse()?)),
        };
        let garp_for = (!arp_src.is_empty() && arp_src == arp_dst).then(|| arp_src.to_owned());
        Ok(Frame {
            t: t.parse().with_context(|| format!("time in {row:?}"))?,
            eth_src: eth_src.to_owned(),
            ip_src: ip_src.to_owned(),
            advert,
            garp_for,
        })
    }

    /// The priority of `src`'s advert for the LAN router (VRID 1).
    fn lan_advert_from(&self, src: &str) -> Option<u8> {
        match self.advert {
            Some((1, prio)) if self.ip_src == src => Some(prio),
            _ => None,
        }
    }

    /// Whether this is a gratuitous ARP for the LAN VIP from the virtual MAC.
    fn lan_garp(&self) -> bool {
        self.eth_src == VMAC && self.garp_for.as_deref() == Some(LAN_VIP)
    }
}

/// The frames one per line, times in ms relative to `t0`, for failure
/// messages.
fn describe(frames: &[Frame], t0: f64) -> String {
    frames
        .iter()
        .map(|f| {
            let what = match (&f.advert, &f.garp_for) {
                (Some((vrid, prio)), _) => format!("advert vrid {vrid} priority {prio}"),
                (None, Some(ip)) => format!("gratuitous ARP for {ip}"),
                (None, None) => "ARP".to_owned(),
            };
            format!(
                "  {:>+9.1} ms  {} {:<11} {what}",
                (f.t - t0) * 1000.0,
                f.eth_src,
                f.ip_src
            )
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// Starts capturing VRRP and ARP on the LAN bridge into `work`.
fn capture_lan(rig: &Rig, work: &WorkDir) -> Tcpdump {
    let path = work.path().join("lan.pcap");
    let r = Tcpdump::start(&rig.lab.ns("sw"), "lan", "ip proto 112 or arp", &path);
    rig.pair.check(r)
}

// ----- faults on the switch -------------------------------------------------------------

/// Runs `tc ARGS` in the root namespace (the arguments name the lab's).
fn tc(args: &[&str]) -> Result<String> {
    tc_fed(args, None)
}

/// `tc` with `input` on its standard input (`-batch -`).
fn tc_fed(args: &[&str], input: Option<&str>) -> Result<String> {
    let mut child = Command::new("tc")
        .args(args)
        .stdin(if input.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .context("run tc")?;
    if let (Some(text), Some(mut stdin)) = (input, child.stdin.take()) {
        stdin.write_all(text.as_bytes()).context("write to tc")?;
    }
    let out = child.wait_with_output().context("wait for tc")?;
    if !out.status.success() {
        bail!(
            "`tc {}`{}: {}",
            args.join(" "),
            input
                .map(|t| format!(" ({})", t.trim()))
                .unwrap_or_default(),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// The veth the dropped frames are redirected to: down, so the kernel
/// drops whatever is sent to it.
const SINK: &str = "sink0";

/// Frames from the switch ports listed dropped at those ports' ingress,
/// before the bridge sees them (so it neither forwards nor learns from
/// them). Removed by [`SwitchDrop::heal`]; the lab's teardown removes
/// everything anyway.
struct SwitchDrop {
    sw: String,
    ports: Vec<String>,
}

impl SwitchDrop {
    /// Drops the IPv4 frames matching the u32 `matches` on `ports` of the
    /// switch `sw`.
    fn install(sw: &str, ports: &[&str], matches: &[&str]) -> Result<SwitchDrop> {
        if netns::ip(&["-n", sw, "link", "show", SINK]).is_err() {
            netns::ip(&[
                "-n", sw, "link", "add", SINK, "type", "veth", "peer", "name", "sink1",
            ])?;
        }
        // Holds the ports set up so far: a failure half-way undoes them.
        let mut drop = SwitchDrop {
            sw: sw.to_owned(),
            ports: Vec::new(),
        };
        for port in ports {
            tc(&["-n", sw, "qdisc", "add", "dev", port, "clsact"])?;
            drop.ports.push((*port).to_owned());
            let mut args = vec![
                "-n", sw, "filter", "add", "dev", port, "ingress", "protocol", "ip", "pref", "10",
                "u32",
            ];
            args.extend_from_slice(matches);
            args.extend_from_slice(&["action", "mirred", "egress", "redirect", "dev", SINK]);
            tc(&args)?;
        }
        Ok(drop)
    }

    /// Frames dropped so far on each port (the redirect action's count).
    fn dropped(&self) -> Result<Vec<(String, u64)>> {
        let mut out = Vec::new();
        for port in &self.ports {
            let text = tc(&[
                "-n", &self.sw, "-s", "filter", "show", "dev", port, "ingress",
            ])?;
            let sent = text
                .lines()
                .find_map(|l| {
                    let rest = l.trim().strip_prefix("Sent ")?;
                    rest.split(" bytes ")
                        .nth(1)?
                        .split(' ')
                        .next()?
                        .parse()
                        .ok()
                })
                .with_context(|| format!("no action statistics on {port}: {text}"))?;
            out.push((port.clone(), sent));
        }
        Ok(out)
    }

    /// Removes the filters: frames flow again, on every port at once (one
    /// tc run; with a run per port, a frame sent between two of them was
    /// lost: B, hearing A first, resigned through a port still filtered,
    /// and A never re-announced).
    fn heal(&mut self) -> Result<()> {
        let ports = std::mem::take(&mut self.ports);
        if ports.is_empty() {
            return Ok(());
        }
        let batch: String = ports
            .iter()
            .map(|port| format!("qdisc del dev {port} clsact\n"))
            .collect();
        tc_fed(&["-n", &self.sw, "-batch", "-"], Some(&batch)).map(drop)
    }
}

impl Drop for SwitchDrop {
    fn drop(&mut self) {
        if let Err(e) = self.heal() {
            eprintln!("warning: removing the switch filters: {e:#}");
        }
    }
}

/// u32 matches of every VRRP packet (IPv4 protocol 112).
const VRRP: [&str; 5] = ["match", "ip", "protocol", "112", "0xff"];

/// u32 matches of a VRRP advert with priority 0: a 20-byte IPv4 header
/// (xvrrp sends no options), so the VRRP priority is byte 22.
const VRRP_PRIORITY_0: [&str; 17] = [
    "match", "u8", "0x45", "0xff", "at", "0", "match", "ip", "protocol", "112", "0xff", "match",
    "u8", "0", "0xff", "at", "22",
];

// ----- helpers -----------------------------------------------------------------------

/// Now, in seconds since the Unix epoch: the clock of pcap timestamps.
fn epoch_now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
}

/// Waits up to `timeout` for process `pid` (a child of this process) to
/// exit and returns its exit code, leaving it unreaped: its `Appliance`
/// reaps it later, and would lose the status otherwise.
fn exit_code(pid: u32, timeout: Duration) -> Result<i32> {
    let deadline = Instant::now() + timeout;
    loop {
        // SAFETY: siginfo_t is plain data; all-zero is a valid value.
        let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
        // SAFETY: `info` is valid and writable; WNOWAIT leaves the child
        // waitable, WNOHANG makes the call return at once.
        let rc = unsafe {
            libc::waitid(
                libc::P_PID,
                libc::id_t::from(pid),
                &mut info,
                libc::WEXITED | libc::WNOHANG | libc::WNOWAIT,
            )
        };
        if rc != 0 {
            bail!("waitid({pid}): {}", std::io::Error::last_os_error());
        }
        // SAFETY: waitid filled `info` (si_pid 0: still running).
        let (who, code, status) = unsafe { (info.si_pid(), info.si_code, info.si_status()) };
        if who != 0 {
            if code != libc::CLD_EXITED {
                bail!("process {pid} was killed by signal {status}");
            }
            return Ok(status);
        }
        if Instant::now() >= deadline {
            bail!("process {pid} still running after {timeout:?}");
        }
        thread::sleep(Duration::from_millis(5));
    }
}

/// Whether every instance of both appliances is in the given state.
fn both_in(pair: &mut Pair, a: &str, b: &str) -> Result<bool> {
    Ok(pair.a.all_in(a)? && pair.b.all_in(b)?)
}

/// Seconds as milliseconds, for messages.
fn ms(seconds: f64) -> String {
    format!("{:.1} ms", seconds * 1000.0)
}

// ----- F02 ---------------------------------------------------------------------------

/// What the wire showed around the SIGTERM of A, times relative to it.
struct Handover {
    /// A's priority-0 adverts for the LAN router.
    zero: Vec<f64>,
    /// A's last advert with its own priority.
    last_a: f64,
    /// B's first advert.
    first_b: f64,
    /// A's adverts with a non-zero priority after its first priority-0 one.
    a_after_zero: usize,
}

impl Handover {
    fn from(frames: &[Frame], t_signal: f64) -> Result<Handover> {
        let rel = |f: &Frame| f.t - t_signal;
        let zero: Vec<f64> = frames
            .iter()
            .filter(|f| f.lan_advert_from(A_LAN) == Some(0))
            .map(rel)
            .collect();
        let last_a = frames
            .iter()
            .filter(|f| f.lan_advert_from(A_LAN) == Some(200))
            .map(rel)
            .fold(None, |m: Option<f64>, t| Some(m.map_or(t, |m| m.max(t))))
            .context("no advert of A at priority 200")?;
        let first_b = frames
            .iter()
            .find(|f| f.lan_advert_from(B_LAN).is_some())
            .map(rel)
            .context("no advert of B")?;
        let a_after_zero = zero.first().map_or(0, |&z| {
            frames
                .iter()
                .filter(|f| rel(f) > z && f.lan_advert_from(A_LAN).is_some_and(|p| p != 0))
                .count()
        });
        Ok(Handover {
            zero,
            last_a,
            first_b,
            a_after_zero,
        })
    }
}

/// What a SIGTERM of A under a flow showed.
struct Sigterm {
    /// The LAN, captured from before the signal until B is master.
    frames: Vec<Frame>,
    /// When the signal was sent, seconds since the epoch.
    t_signal: f64,
    /// A's exit code.
    code: i32,
    /// How long A took to exit.
    exited: Duration,
    /// The flow, from before the signal until well after B took over.
    report: flow::FlowReport,
    /// When the signal was sent, in ms into the flow (give or take the
    /// start of its threads).
    signal_ms: f64,
}

/// SIGTERMs A under a flow with the LAN captured.
fn sigterm_a_under_flow(rig: &mut Rig, work: &WorkDir) -> Sigterm {
    // The client and A resolve their next hops before the flow starts, so
    // its largest silence is the handover's.
    let client = rig.lab.ns("client");
    let r = flow::ping(&client, IpAddr::V4(SERVER), 2, Duration::from_secs(5));
    rig.pair.check(r);
    let mut cap = capture_lan(rig, work);
    let flow_started = Instant::now();
    let f = rig.flowing(2000);
    // A few of A's adverts at priority 200 first.
    thread::sleep(Duration::from_millis(350));
    let pid = rig.pair.a.pid().unwrap();
    let t_signal = epoch_now();
    let signalled = Instant::now();
    let signal_ms = (signalled - flow_started).as_secs_f64() * 1000.0;
    netns::signal(pid, libc::SIGTERM).unwrap();
    let r = exit_code(pid, Duration::from_secs(3));
    let code = rig.pair.check(r);
    let exited = signalled.elapsed();
    rig.pair.wait_b_master(Duration::from_secs(3));
    thread::sleep(Duration::from_millis(500));
    let report = f.stop().unwrap();
    let r = frames(&mut cap);
    let frames = rig.pair.check(r);
    assert!(
        report.received > 0 && report.lost < report.sent,
        "{report}\n{}",
        rig.pair.logs()
    );
    Sigterm {
        frames,
        t_signal,
        code,
        exited,
        report,
        signal_ms,
    }
}

#[test]
fn f02_sigterm_master_sends_priority_zero_before_the_vip_stops_being_served() {
    let test = "f02_sigterm_master_sends_priority_zero_before_the_vip_stops_being_served";
    let Some(mut rig) = Rig::standard(test) else {
        return;
    };
    let work = WorkDir::create(rig.lab.prefix()).unwrap();
    let socket = common::socket_path(&rig.lab, "a");
    let Sigterm {
        frames,
        t_signal,
        code,
        exited,
        report,
        signal_ms,
    } = sigterm_a_under_flow(&mut rig, &work);
    let h = rig.pair.check(Handover::from(&frames, t_signal));
    let dump = || format!("\n{}\n{}", describe(&frames, t_signal), rig.pair.logs());

    // At least one priority-0 advert after the signal, none of A's own
    // priority after it, and B's first advert only after it.
    let Some(&zero) = h.zero.first() else {
        panic!("no priority-0 advert from A: {}", dump());
    };
    assert!(zero >= 0.0, "priority 0 before the signal: {}", dump());
    assert_eq!(h.a_after_zero, 0, "A advertised again: {}", dump());
    assert!(h.last_a < zero, "{}", dump());
    let takeover = h.first_b - zero;
    // B waits its Skew_Time after the priority-0 advert (RFC 9568 §6.4.2),
    // far less than the Master_Down_Interval a crash would cost.
    assert!(
        (B_SKEW - EPSILON..0.300).contains(&takeover),
        "B's first advert {} after A's priority 0: {}",
        ms(takeover),
        dump()
    );
    assert!(
        report.max_gap_ms < 300.0,
        "flow: {report}; SIGTERM at {signal_ms:.0} ms\n{}",
        dump()
    );
    assert_eq!(code, 0, "A's exit code\n{}", rig.pair.logs());
    assert!(!Path::new(&socket).exists(), "{socket} left behind");
    println!(
        "F02: priority 0 at +{} after SIGTERM ({} sent), B's first advert {} later \
         (Skew_Time {}); A exited 0 after {exited:?}; flow: {report}, SIGTERM at \
         {signal_ms:.0} ms",
        ms(zero),
        h.zero.len(),
        ms(takeover),
        ms(B_SKEW)
    );
}

#[test]
fn f02_first_priority_zero_dropped_backup_takes_over_by_master_down_interval() {
    let test = "f02_first_priority_zero_dropped_backup_takes_over_by_master_down_interval";
    if !common::supported(test) {
        return;
    }
    common::require(&["tc"]);
    let Some(mut rig) = Rig::standard(test) else {
        return;
    };
    let work = WorkDir::create(rig.lab.prefix()).unwrap();
    let sw = rig.lab.ns("sw");
    // A's priority-0 adverts dropped where they enter the switch, on both
    // ports: the WAN router's would otherwise bring B's LAN router up
    // through their sync group. xvrrp sends one per router, so this drops
    // the first, which is all of them.
    let r = SwitchDrop::install(&sw, &["a-lan", "a-wan"], &VRRP_PRIORITY_0);
    let filter = rig.pair.check(r);
    let socket = common::socket_path(&rig.lab, "a");
    let Sigterm {
        frames,
        t_signal,
        code,
        exited,
        report,
        signal_ms,
    } = sigterm_a_under_flow(&mut rig, &work);
    let h = rig.pair.check(Handover::from(&frames, t_signal));
    let dropped = rig.pair.check(filter.dropped());
    let dump = || {
        let frames = describe(&frames, t_signal);
        format!("\n{frames}\ndropped {dropped:?}\n{}", rig.pair.logs())
    };

    assert!(
        dropped.iter().all(|(_, n)| *n >= 1),
        "priority-0 adverts not dropped: {}",
        dump()
    );
    assert!(
        h.zero.is_empty(),
        "a priority-0 advert got through: {}",
        dump()
    );
    // Without it, B waits its Master_Down_Interval from A's last advert.
    // A's WAN router advertises up to PHASE earlier than its LAN router
    // (adverts are spread by router id): B's WAN router may time out first
    // and bring its LAN router up through their sync group.
    let takeover = h.first_b - h.last_a;
    assert!(
        (B_MDI - PHASE - ARRIVAL_SKEW..B_MDI + 0.300).contains(&takeover),
        "B's first advert {} after A's last: {}",
        ms(takeover),
        dump()
    );
    // A kept forwarding for 3 intervals after the signal: the outage is
    // what remains of B's Master_Down_Interval, at most its Skew_Time.
    assert!(
        report.max_gap_ms < 300.0,
        "flow: {report}; SIGTERM at {signal_ms:.0} ms\n{}",
        dump()
    );
    assert_eq!(code, 0, "A's exit code\n{}", rig.pair.logs());
    assert!(!Path::new(&socket).exists(), "{socket} left behind");
    println!(
        "F02 with priority 0 dropped ({dropped:?}): B's first advert {} after A's last \
         (Master_Down_Interval {}), {} after SIGTERM; A exited 0 after {exited:?}; flow: \
         {report}, SIGTERM at {signal_ms:.0} ms",
        ms(takeover),
        ms(B_MDI),
        ms(h.first_b)
    );
}

// ----- F07 ---------------------------------------------------------------------------

#[test]
fn f07_partition_then_heal() {
    let test = "f07_partition_then_heal";
    if !common::supported(test) {
        return;
    }
    common::require(&["tc"]);
    let Some(mut rig) = Rig::standard(test) else {
        return;
    };
    let work = WorkDir::create(rig.lab.prefix()).unwrap();
    let sw = rig.lab.ns("sw");

    // VRRP between the gateways dropped on every gateway port of the
    // switch, both ways; everything else still flows.
    let partitioned = Instant::now();
    let r = SwitchDrop::install(&sw, &["a-lan", "b-lan", "a-wan", "b-wan"], &VRRP);
    let mut partition = rig.pair.check(r);
    let r = lab::wait_until("both masters", Duration::from_secs(3), &NO_STOP, || {
        both_in(&mut rig.pair, "master", "master")
    });
    rig.pair.check(r);
    let dual_after = partitioned.elapsed();
    // Dual master holds while the partition lasts.
    thread::sleep(Duration::from_millis(1000));
    let r = both_in(&mut rig.pair, "master", "master");
    assert!(rig.pair.check(r), "not both master: {}", rig.pair.logs());

    let mut cap = capture_lan(&rig, &work);
    let t_heal = epoch_now();
    let healed = Instant::now();
    rig.pair.check(partition.heal());
    let r = lab::wait_until(
        "A master and B backup",
        Duration::from_secs(3),
        &NO_STOP,
        || both_in(&mut rig.pair, "master", "backup"),
    );
    rig.pair.check(r);
    let single_after = healed.elapsed();
    // Stays so.
    thread::sleep(Duration::from_millis(500));
    let r = both_in(&mut rig.pair, "master", "backup");
    assert!(rig.pair.check(r), "not A alone: {}", rig.pair.logs());
    let r = frames(&mut cap);
    let frames = rig.pair.check(r);
    let dump = || format!("\n{}\n{}", describe(&frames, t_heal), rig.pair.logs());
    let rel = |f: &Frame| f.t - t_heal;

    // On the wire: A's first advert comes within an interval of the heal,
    // and B, hearing it, advertises no more.
    let first_a = frames
        .iter()
        .filter(|f| f.lan_advert_from(A_LAN).is_some() && rel(f) >= 0.0)
        .map(rel)
        .next();
    let first_a = first_a.unwrap_or_else(|| panic!("no advert of A after the heal: {}", dump()));
    assert!(first_a < INTERVAL + 0.050, "{}", dump());
    let last_b = frames
        .iter()
        .filter(|f| f.lan_advert_from(B_LAN).is_some())
        .map(rel)
        .fold(f64::NEG_INFINITY, f64::max);
    assert!(
        last_b < first_a + 0.050,
        "B advertised {} after the heal, A first at {}: {}",
        ms(last_b),
        ms(first_a),
        dump()
    );
    assert!(
        single_after < Duration::from_secs(1),
        "one master only {single_after:?} after the heal: {}",
        dump()
    );
    // A re-announces its addresses: on B's advert if that reached it
    // first, else on B's resignation (priority 0) when A's reached B first.
    let garp = frames
        .iter()
        .find(|f| f.lan_garp() && rel(f) >= 0.0)
        .map(rel)
        .unwrap_or_else(|| panic!("no gratuitous ARP after the heal: {}", dump()));
    assert!(garp < first_a + INTERVAL, "{}", dump());
    let garp = format!("+{}", ms(garp));

    // The client gets through, resolving its gateway to the virtual MAC.
    let client = rig.lab.ns("client");
    let vip = IpAddr::V4(LAN_VIP.parse().unwrap());
    let mac = rig.pair.check(common::resolved_mac(
        &client,
        vip,
        IpAddr::V4(SERVER),
        3,
        Neighbour::Keep,
    ));
    assert_eq!(mac.as_deref(), Some(VMAC), "{}", rig.pair.logs());
    println!(
        "F07: dual master {dual_after:?} after the partition; after the heal: A's first advert \
         at +{}, B's last at {}, gratuitous ARP {garp}, status A master / B backup after \
         {single_after:?}",
        ms(first_a),
        if last_b.is_finite() {
            format!("+{}", ms(last_b))
        } else {
            "none".to_owned()
        },
    );
}

// ----- B18 ---------------------------------------------------------------------------

#[test]
fn b18_peer_with_another_interval_is_adopted_and_logged_once() {
    let test = "b18_peer_with_another_interval_is_adopted_and_logged_once";
    let Some(lab) = common::setup(test) else {
        return;
    };
    let a = common::gateway_config(&lab, "a", 200);
    let mut b = common::gateway_config(&lab, "b", 100);
    b.advert_interval = "200ms".to_owned();
    let mut pair = Pair::start(&lab, &a, &b);
    pair.wait_a_master(common::ELECTION_TIMEOUT);
    // Some 30 adverts of A at 100 ms.
    thread::sleep(Duration::from_secs(3));
    let reply = pair.check(pair.b.query(&["status"]));
    let names = ["lan-gw", "wan-gw"];
    for name in names {
        let inst = lab::instances(&reply).find(|i| i["name"] == name).cloned();
        let inst = inst.unwrap_or_else(|| panic!("no {name} in {reply}"));
        assert_eq!(inst["state"], "backup", "{inst}");
        assert_eq!(inst["master_adver_interval_ms"], 100, "{inst}");
    }
    let log = std::fs::read_to_string(pair.b.log_path()).unwrap();
    let warnings: Vec<&str> = log
        .lines()
        .filter(|l| l.contains(INTERVAL_WARNING))
        .collect();
    for name in names {
        let n = warnings
            .iter()
            .filter(|l| l.contains(&format!("instance={name} ")))
            .count();
        assert_eq!(n, 1, "{name}: {warnings:#?}\n{}", pair.logs());
    }
    assert_eq!(warnings.len(), names.len(), "{warnings:#?}");
    println!("B18: B adopted 100 ms; its log: {warnings:#?}");
}
