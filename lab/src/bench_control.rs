//! `xvrrp bench control`: the cost of many virtual routers at 10 ms.
//!
//! Two appliances on one port (`lan0`), A at priority 200 and B at 100,
//! each running N virtual routers (VRIDs 1..N, 198.51.100.k/32 on lan0,
//! 10 ms adverts, preempting, no sync group), and with `--families 2` as
//! many IPv6 ones (VRIDs 1..N, 2001:db8:100::k/128). Once A is master and B backup
//! of every router, for `--seconds`:
//! - the CPU of each appliance's control thread (its main thread) and of
//!   its workers (`xvrrp-worker*`), from `/proc/PID/task/TID/stat`;
//! - adverts sent late: the control thread's `late_wakeups` (timers served
//!   late, from `stats --json`), and the gaps between consecutive adverts
//!   of each router of A, captured on A's switch port with kernel receive
//!   timestamps (frames towards A ignored);
//! - spurious transitions: the growth of the `transitions` of every router
//!   of both appliances (`status --json`), which nothing should change.
//!
//! VRIDs are 8 bits and 0 is reserved: one port holds at most 255 virtual
//! routers per address family, so a larger `--instances` is capped at 255,
//! and the run says so.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};

use std::thread;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use serde_json::json;

use crate::bare_sender::{Advertiser, BareCost, BareSender};
use crate::bench_common::{
    self as common, core_percent, ms, progress, quantile, Background, ThreadCpu,
};
use crate::lab::{self, Appliance, ApplianceConfig, Lab, LabInstance, LabOptions, WorkDir};
use crate::netns;
use crate::stall_probe::{StallProbe, Stalls};

/// `xvrrp bench control`.
#[derive(clap::Args, Debug)]
pub struct ControlArgs {
    /// Virtual routers per appliance (VRIDs 1..N on one port; capped at 255).
    #[arg(long, default_value_t = 255, value_parser = clap::value_parser!(u32).range(1..))]
    instances: u32,
    /// Address families: 1 (IPv4 routers only) or 2 (as many IPv6 routers
    /// beside them, RFC 9568's L06 case).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u8).range(1..=2))]
    families: u8,
    /// Seconds measured once every router is elected.
    #[arg(long, default_value_t = 10.0)]
    seconds: f64,
    /// Print one JSON object instead of the table.
    #[arg(long)]
    json: bool,
    /// Lab prefix ([a-z0-9]{1,8}); default: unique to this run.
    #[arg(long)]
    prefix: Option<String>,
    /// Keep the appliances' configs and logs (their directory is printed);
    /// they are kept anyway when the run fails.
    #[arg(long)]
    keep_logs: bool,
}

/// The most virtual routers of one family on one port: VRIDs 1..=255.
const MAX_INSTANCES: u32 = 255;
/// The advertisement interval under test.
const INTERVAL: Duration = Duration::from_millis(10);
/// An advert is late when it follows the previous one of its router by
/// more than this (half an interval late).
const LATE: Duration = Duration::from_millis(15);
/// Three intervals: a gap this long lets a backup's Master_Down timer
/// nearly run out.
const NEAR_MISS: Duration = Duration::from_millis(30);
/// The aim for each appliance's control thread, percent of one core.
const AIM_CONTROL_PERCENT: f64 = 10.0;
/// A's primary LAN address, the source of its adverts.
const A_LAN: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 2);
/// Time for every router to be elected on a loaded machine.
const ELECTION_TIMEOUT: Duration = Duration::from_secs(60);
/// The longest the wire's cost is measured: it is steady.
const WIRE_WINDOW: Duration = Duration::from_secs(30);
/// Thread-name prefix of the fast-path workers.
const WORKER: &str = "xvrrp-worker";

/// Runs `xvrrp bench control`; `self_exe` is this binary, started again
/// as the appliances and their client.
///
/// # Errors
/// Not root, a program missing, or a step failing; the lab and the
/// daemons are removed or stopped either way.
pub fn run(args: &ControlArgs, self_exe: &Path) -> Result<()> {
    if !netns::is_root() {
        bail!("xvrrp bench control must run as root: it creates network namespaces");
    }
    if !(args.seconds.is_finite() && args.seconds > 0.0 && args.seconds <= 3600.0) {
        bail!("--seconds must be more than 0 and at most 3600");
    }
    netns::require(&["ip", "ethtool"])?;
    let n = args.instances.min(MAX_INSTANCES);
    if args.instances > MAX_INSTANCES {
        progress(&format!(
            "--instances {} capped at {MAX_INSTANCES}: one port has VRIDs 1..255 only",
            args.instances
        ));
    }
    let prefix = args
        .prefix
        .clone()
        .unwrap_or_else(|| common::unique_prefix('c'));
    lab::validate_prefix(&prefix)?;
    let stop = common::interrupt_flag()?;
    let mut work = WorkDir::create(&format!("bench-control-{prefix}"))?;
    progress(&format!("building lab {prefix}"));
    // No netfilter on the switch's bridges: the sender pays for it on veth.
    let options = LabOptions {
        no_bridge_netfilter: true,
        ..LabOptions::default()
    };
    let lab = Lab::up_with(&prefix, &options)?;
    let result = measure(args, n, self_exe, &lab, &work, &stop);
    if result.is_err() {
        work.keep();
        eprintln!(
            "bench: the appliances' configs and logs are kept in {}",
            work.path().display()
        );
    }
    let report = result?;
    progress(&format!("removing lab {prefix}"));
    drop(lab);
    if args.keep_logs {
        work.keep();
        progress(&format!(
            "the appliances' configs and logs are kept in {}",
            work.path().display()
        ));
    }
    if args.json {
        println!("{}", report.json());
    } else {
        print!("{}", report.table());
    }
    Ok(())
}

/// The configuration of appliance `name` of lab `prefix`: `n` routers on
/// lan0 per address family.
fn config(prefix: &str, name: &str, priority: u8, n: u32, families: u8) -> ApplianceConfig {
    let socket = format!("/run/xvrrp/{prefix}-{name}.sock");
    let mut c = ApplianceConfig::gateway(&socket, priority);
    c.advert_interval = format!("{}ms", INTERVAL.as_millis());
    c.ports = vec!["lan0".to_owned()];
    c.sync_group = false;
    // Each appliance's worker on a core of its own, as on two boxes: A's
    // on the first, B's on the last (the same one on a one-core machine).
    if name == "b" {
        let cores = thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get);
        c.cores = vec![cores - 1];
    }
    let vrids = || (1..=n).filter_map(|k| u8::try_from(k).ok());
    let v4 = vrids().map(|vrid| LabInstance {
        name: format!("r{vrid}"),
        port: "lan0".to_owned(),
        vrid,
        addresses: vec![format!("198.51.100.{vrid}/32")],
    });
    let v6 = vrids().filter(|_| families > 1).map(|vrid| LabInstance {
        name: format!("r{vrid}v6"),
        port: "lan0".to_owned(),
        vrid,
        addresses: vec![format!("2001:db8:100::{vrid:x}/128")],
    });
    c.instances = v4.chain(v6).collect();
    c
}

/// What one appliance's counters say at one moment.
#[derive(Clone, Debug, Default)]
struct Reading {
    cpu: ThreadCpu,
    late_wakeups: u64,
    transitions: u64,
    /// Takeovers held back (fast path behind, or just after a stall).
    takeovers_deferred: u64,
    /// Takeovers made while the fast path still lagged.
    takeovers_unconfirmed: u64,
    adverts_tx: u64,
    adverts_rx: u64,
    /// Adverts the workers sent in a late control thread's place.
    adverts_rescued: u64,
    tx_deferred: u64,
    tx_dropped: u64,
    /// Frames dropped on the way to the state machine, by where and why.
    drops: BTreeMap<String, u64>,
}

fn read(app: &Appliance) -> Result<Reading> {
    let pid = app.pid().context("the appliance is not running")?;
    let cpu = ThreadCpu::read(pid, WORKER)?;
    let status = app.query(&["status"])?;
    let sum = |key: &str| -> u64 {
        lab::instances(&status)
            .filter_map(|i| i.get(key).and_then(serde_json::Value::as_u64))
            .sum()
    };
    let stats = app.query(&["stats"])?;
    let control = stats.get("control").context("no control in stats")?;
    let late_wakeups = control
        .get("late_wakeups")
        .and_then(serde_json::Value::as_u64)
        .context("no control.late_wakeups in stats")?;
    let tx = |key: &str| {
        control
            .get("tx")
            .and_then(|t| t.get(key))
            .and_then(serde_json::Value::as_u64)
            .unwrap_or(0)
    };
    Ok(Reading {
        cpu,
        late_wakeups,
        transitions: sum("transitions"),
        takeovers_deferred: sum("takeovers_deferred"),
        takeovers_unconfirmed: sum("takeovers_unconfirmed"),
        adverts_tx: sum("adverts_tx"),
        adverts_rx: sum("adverts_rx"),
        adverts_rescued: rescued_of(&stats),
        tx_deferred: tx("deferred"),
        tx_dropped: tx("dropped"),
        drops: drops_of(&stats),
    })
}

/// `adverts_rescued` of `stats --json`, summed over ports and workers.
fn rescued_of(stats: &serde_json::Value) -> u64 {
    stats
        .get("ports")
        .and_then(serde_json::Value::as_object)
        .into_iter()
        .flat_map(|ports| ports.values())
        .filter_map(|p| p.get("workers").and_then(serde_json::Value::as_object))
        .flat_map(|workers| workers.values())
        .filter_map(|w| w.get("adverts_rescued").and_then(serde_json::Value::as_u64))
        .sum()
}

/// Every drop counter of `stats --json`, summed over ports and workers:
/// `xdp:REASON` (the XDP filter), `worker:REASON`, `xsk:rx_dropped` and
/// `xsk:rx_ring_full` (the kernel, before a worker saw the frame) and
/// `control:REASON`.
fn drops_of(stats: &serde_json::Value) -> BTreeMap<String, u64> {
    let mut out = BTreeMap::new();
    let add =
        |out: &mut BTreeMap<String, u64>, place: &str, counters: Option<&serde_json::Value>| {
            for (reason, n) in counters
                .and_then(serde_json::Value::as_object)
                .into_iter()
                .flatten()
            {
                *out.entry(format!("{place}:{reason}")).or_insert(0) += n.as_u64().unwrap_or(0);
            }
        };
    for port in values_of(stats, "ports") {
        add(&mut out, "xdp", port.get("xdp_drops"));
        for worker in values_of(port, "workers") {
            add(&mut out, "worker", worker.get("drops"));
            let xsk = worker.get("xsk");
            for key in ["rx_dropped", "rx_ring_full"] {
                let n = xsk
                    .and_then(|x| x.get(key))
                    .and_then(serde_json::Value::as_u64);
                *out.entry(format!("xsk:{key}")).or_insert(0) += n.unwrap_or(0);
            }
        }
    }
    add(
        &mut out,
        "control",
        stats.get("control").and_then(|c| c.get("drops")),
    );
    out
}

/// The values of the object under `key` (none when there is no such
/// object).
fn values_of<'a>(
    v: &'a serde_json::Value,
    key: &str,
) -> impl Iterator<Item = &'a serde_json::Value> {
    v.get(key)
        .and_then(serde_json::Value::as_object)
        .into_iter()
        .flat_map(serde_json::Map::values)
}

fn measure(
    args: &ControlArgs,
    n: u32,
    self_exe: &Path,
    lab: &Lab,
    work: &WorkDir,
    stop: &AtomicBool,
) -> Result<Report> {
    let mut a = Appliance::new(
        "a",
        self_exe,
        &lab.ns("gw-a"),
        &config(lab.prefix(), "a", 200, n, args.families),
        work.path(),
    )?;
    let mut b = Appliance::new(
        "b",
        self_exe,
        &lab.ns("gw-b"),
        &config(lab.prefix(), "b", 100, n, args.families),
        work.path(),
    )?;
    let routers = n * u32::from(args.families);
    progress(&format!(
        "starting A (200) and B (100), {routers} routers each at {} ms",
        INTERVAL.as_millis()
    ));
    // The wire's cost first: B alone, hearing A's adverts from a bare
    // sender in A's place; then A itself.
    b.start()?;
    let wire_window = window_of(args).min(WIRE_WINDOW);
    let wire = wire_cost(lab, n, args.families, wire_window, &mut b, stop)?;
    a.start()?;
    let t0 = Instant::now();
    lab::wait_until(
        "A master and B backup of every router",
        ELECTION_TIMEOUT,
        stop,
        || Ok(a.all_in("master")? && b.all_in("backup")?),
    )
    .map_err(|e| e.context(format!("A:\n{}\nB:\n{}", a.log_tail(10), b.log_tail(10))))?;
    progress(&format!(
        "elected after {} ms; settling 1 s",
        t0.elapsed().as_millis()
    ));
    common::sleep_or_stop(Duration::from_secs(1), stop)?;
    // The CPU first, with nothing else listening on the switch: on veth,
    // sending a frame runs the bridge and every receiver's delivery in the
    // sender's context, so a capture socket on A's port would be charged
    // to A's control thread. Then the adverts' gaps, with the capture.
    let window = window_of(args);
    let probe = StallProbe::start()?;
    let (a0, b0) = (read(&a)?, read(&b)?);
    let started = Instant::now();
    progress(&format!(
        "measuring CPU for {} s, then capturing A's adverts for {} s",
        args.seconds, args.seconds
    ));
    common::sleep_or_stop(window, stop)?;
    let (a1, b1) = (read(&a)?, read(&b)?);
    let wall = started.elapsed();
    let capture = AdvertCapture::start(&lab.ns("sw"), "a-lan", A_LAN)?;
    common::sleep_or_stop(window, stop)?;
    let log = capture.finish()?;
    let (a2, b2) = (read(&a)?, read(&b)?);
    let whole = started.elapsed();
    let stalls = probe.finish()?;
    a.stop()?;
    b.stop()?;
    Ok(Report {
        requested: args.instances,
        instances: n,
        families: args.families,
        wall,
        whole,
        a: Delta::of(a0, a1, a2),
        b: Delta::of(b0, b1, b2),
        adverts: AdvertGaps::of(&log, routers),
        wire,
        stalls,
    })
}

fn window_of(args: &ControlArgs) -> Duration {
    Duration::from_secs_f64(args.seconds)
}

/// What sending A's adverts costs on this lab's wire: a bare sender in
/// A's place (see `bare_sender`) while B, already started, stays backup.
fn wire_cost(
    lab: &Lab,
    n: u32,
    families: u8,
    window: Duration,
    b: &mut Appliance,
    stop: &AtomicBool,
) -> Result<BareCost> {
    let ns = lab.ns("gw-a");
    let advertiser = Advertiser {
        v4_source: A_LAN,
        v6_source: link_local(&ns, "lan0")?,
        priority: 200,
        interval: INTERVAL,
    };
    let vrids = || (1..=n).filter_map(|k| u8::try_from(k).ok());
    let v4 = vrids().map(|vrid| (vrid, IpAddr::V4(Ipv4Addr::new(198, 51, 100, vrid))));
    let v6 = vrids().filter(|_| families > 1).map(|vrid| {
        (
            vrid,
            IpAddr::V6(Ipv6Addr::new(
                0x2001,
                0xdb8,
                0x100,
                0,
                0,
                0,
                0,
                u16::from(vrid),
            )),
        )
    });
    let routers: Vec<(u8, IpAddr)> = v4.chain(v6).collect();
    progress(&format!(
        "the wire's cost: a bare sender of A's {} adverts in A's place for {} s",
        routers.len(),
        window.as_secs_f64()
    ));
    let sender = BareSender::start(&ns, "lan0", &advertiser, &routers)?;
    lab::wait_until("B backup of every router", ELECTION_TIMEOUT, stop, || {
        b.all_in("backup")
    })
    .map_err(|e| e.context(format!("B:\n{}", b.log_tail(10))))?;
    common::sleep_or_stop(Duration::from_secs(1), stop)?;
    sender.measure_from_now();
    common::sleep_or_stop(window, stop)?;
    sender.finish()
}

/// The link-local IPv6 address of `ifname` in `ns`.
fn link_local(ns: &str, ifname: &str) -> Result<Ipv6Addr> {
    let out = netns::ip(&[
        "-n", ns, "-6", "-o", "addr", "show", "dev", ifname, "scope", "link",
    ])?;
    out.split_whitespace()
        .skip_while(|w| *w != "inet6")
        .nth(1)
        .and_then(|a| a.split('/').next())
        .and_then(|a| a.parse().ok())
        .with_context(|| format!("no link-local address on {ifname} in {ns}"))
}

/// What one appliance did during the measurement.
#[derive(Clone, Debug)]
struct Delta {
    cpu: ThreadCpu,
    late_wakeups: u64,
    transitions: u64,
    takeovers_deferred: u64,
    takeovers_unconfirmed: u64,
    adverts_tx: u64,
    adverts_rx: u64,
    adverts_rescued: u64,
    tx_deferred: u64,
    tx_dropped: u64,
    /// Drop counters that grew, by where and why.
    drops: BTreeMap<String, u64>,
}

impl Delta {
    /// CPU from `before` to `cpu_end`; the counters from `before` to `after`.
    fn of(before: Reading, cpu_end: Reading, after: Reading) -> Delta {
        Delta {
            cpu: cpu_end.cpu.since(before.cpu),
            late_wakeups: after.late_wakeups.saturating_sub(before.late_wakeups),
            transitions: after.transitions.saturating_sub(before.transitions),
            takeovers_deferred: after
                .takeovers_deferred
                .saturating_sub(before.takeovers_deferred),
            takeovers_unconfirmed: after
                .takeovers_unconfirmed
                .saturating_sub(before.takeovers_unconfirmed),
            adverts_tx: after.adverts_tx.saturating_sub(before.adverts_tx),
            adverts_rx: after.adverts_rx.saturating_sub(before.adverts_rx),
            adverts_rescued: after.adverts_rescued.saturating_sub(before.adverts_rescued),
            tx_deferred: after.tx_deferred.saturating_sub(before.tx_deferred),
            tx_dropped: after.tx_dropped.saturating_sub(before.tx_dropped),
            drops: after
                .drops
                .iter()
                .map(|(k, n)| {
                    (
                        k.clone(),
                        n.saturating_sub(before.drops.get(k).copied().unwrap_or(0)),
                    )
                })
                .filter(|(_, n)| *n > 0)
                .collect(),
        }
    }
}

/// A's adverts as captured on the switch.
#[derive(Clone, Debug, Default)]
struct AdvertGaps {
    due: u64,
    captured: u64,
    capture_drops: u64,
    p50_ms: f64,
    p99_ms: f64,
    max_ms: f64,
    late: u64,
    near_miss: u64,
    /// Routers of which no advert was captured.
    silent: u64,
}

impl AdvertGaps {
    fn of(log: &CaptureLog, n: u32) -> AdvertGaps {
        let mut per_vrid: BTreeMap<(Family, u8), Vec<u64>> = BTreeMap::new();
        for &(router, t) in &log.stamps {
            per_vrid.entry(router).or_default().push(t);
        }
        let mut gaps = Vec::new();
        for stamps in per_vrid.values_mut() {
            stamps.sort_unstable();
            gaps.extend(stamps.windows(2).map(|w| w[1].saturating_sub(w[0])));
        }
        gaps.sort_unstable();
        let q = |p: f64| {
            let v: Vec<f64> = gaps.iter().map(|&g| ms(g)).collect();
            quantile(&v, p).unwrap_or(f64::NAN)
        };
        let late_ns = u64::try_from(LATE.as_nanos()).unwrap_or(u64::MAX);
        let near_ns = u64::try_from(NEAR_MISS.as_nanos()).unwrap_or(u64::MAX);
        let per_router = log.open_for.as_secs_f64() / INTERVAL.as_secs_f64();
        // Whole adverts due: a report's arithmetic on small positive values.
        #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
        let due = (per_router * f64::from(n)).floor() as u64;
        AdvertGaps {
            due,
            captured: u64::try_from(log.stamps.len()).unwrap_or(u64::MAX),
            capture_drops: log.drops,
            p50_ms: q(0.5),
            p99_ms: q(0.99),
            max_ms: gaps.last().map_or(f64::NAN, |&g| ms(g)),
            late: u64::try_from(gaps.iter().filter(|&&g| g > late_ns).count()).unwrap_or(0),
            near_miss: u64::try_from(gaps.iter().filter(|&&g| g >= near_ns).count()).unwrap_or(0),
            silent: u64::from(n).saturating_sub(u64::try_from(per_vrid.len()).unwrap_or(0)),
        }
    }
}

struct Report {
    requested: u32,
    /// Routers per family.
    instances: u32,
    families: u8,
    /// The CPU window.
    wall: Duration,
    /// Both windows: the counters' span.
    whole: Duration,
    a: Delta,
    b: Delta,
    adverts: AdvertGaps,
    /// A bare sender's cost of A's adverts on this wire.
    wire: BareCost,
    /// The machine's stalls over both windows.
    stalls: Stalls,
}

impl Report {
    fn json(&self) -> serde_json::Value {
        let app = |name: &str, role: &str, d: &Delta| {
            json!({
                "name": name,
                "role": role,
                "control_cpu_pct": round2(core_percent(d.cpu.main, self.wall)),
                "control_kernel_cpu_pct": round2(core_percent(d.cpu.main_kernel, self.wall)),
                "workers_cpu_pct": round2(core_percent(d.cpu.workers, self.wall)),
                "other_threads_cpu_pct": round2(core_percent(d.cpu.other, self.wall)),
                "late_wakeups": d.late_wakeups,
                "adverts_tx": d.adverts_tx,
                "adverts_rx": d.adverts_rx,
                "adverts_rescued": d.adverts_rescued,
                "tx_deferred": d.tx_deferred,
                "tx_dropped": d.tx_dropped,
                "spurious_transitions": d.transitions,
                "takeovers_deferred": d.takeovers_deferred,
                "takeovers_unconfirmed": d.takeovers_unconfirmed,
                "drops": d.drops,
            })
        };
        let g = &self.adverts;
        json!({
            "instances_requested": self.requested,
            "instances": self.instances,
            "families": self.families,
            "capped": self.requested > self.instances,
            "interval_ms": round2(INTERVAL.as_secs_f64() * 1000.0),
            "seconds": round2(self.wall.as_secs_f64()),
            "counters_seconds": round2(self.whole.as_secs_f64()),
            "aim_control_cpu_pct": AIM_CONTROL_PERCENT,
            "appliances": [app("a", "master", &self.a), app("b", "backup", &self.b)],
            "adverts": {
                "due": g.due,
                "captured": g.captured,
                "capture_drops": g.capture_drops,
                "silent_routers": g.silent,
                "gap_p50_ms": round2(g.p50_ms),
                "gap_p99_ms": round2(g.p99_ms),
                "gap_max_ms": round2(g.max_ms),
                "late": g.late,
                "late_threshold_ms": round2(LATE.as_secs_f64() * 1000.0),
                "gaps_3_intervals": g.near_miss,
            },
            "wire": {
                "cpu_pct": round2(self.wire_percent()),
                "kernel_cpu_pct": round2(core_percent(self.wire.kernel, self.wire.wall)),
                "seconds": round2(self.wire.wall.as_secs_f64()),
                "adverts_sent": self.wire.sent,
            },
            "control_cpu_pct_less_wire": round2(self.worst_own()),
            "machine_stalls": {
                "max_ms": round2(self.stalls.max.as_secs_f64() * 1000.0),
                "over_10ms": self.stalls.over_10ms,
                "over_30ms": self.stalls.over_30ms,
                "seconds": round2(self.stalls.watched.as_secs_f64()),
                "steal_pct": self.stalls.steal_pct.map(round2),
            },
            "late_wakeups": self.a.late_wakeups + self.b.late_wakeups,
            "spurious_transitions": self.a.transitions + self.b.transitions,
        })
    }

    fn table(&self) -> String {
        let mut t = String::new();
        let secs = self.wall.as_secs_f64();
        let _ = writeln!(
            t,
            "{} virtual routers{} at {} ms on one port: CPU over {:.1} s, counters over {:.1} s \
             (with the capture of A's adverts in the second half){}",
            self.instances * u32::from(self.families),
            if self.families > 1 {
                format!(" ({} IPv4 + {} IPv6)", self.instances, self.instances)
            } else {
                String::new()
            },
            INTERVAL.as_millis(),
            secs,
            self.whole.as_secs_f64(),
            if self.requested > self.instances {
                format!(
                    " (--instances {} capped at {MAX_INSTANCES})",
                    self.requested
                )
            } else {
                String::new()
            }
        );
        let _ = writeln!(
            t,
            "{:<10} {:<7} {:>13} {:>11} {:>13} {:>11} {:>11} {:>11} {:>11} {:>9} {:>12}",
            "appliance",
            "role",
            "control %core",
            "(in kernel)",
            "workers %core",
            "late wakeup",
            "adverts tx",
            "adverts rx",
            "transitions",
            "deferred",
            "unconfirmed"
        );
        for (name, role, d) in [("A", "master", &self.a), ("B", "backup", &self.b)] {
            let _ = writeln!(
                t,
                "{:<10} {:<7} {:>13.1} {:>11.1} {:>13.1} {:>11} {:>11} {:>11} {:>11} {:>9} {:>12}",
                name,
                role,
                core_percent(d.cpu.main, self.wall),
                core_percent(d.cpu.main_kernel, self.wall),
                core_percent(d.cpu.workers, self.wall),
                d.late_wakeups,
                d.adverts_tx,
                d.adverts_rx,
                d.transitions,
                d.takeovers_deferred,
                d.takeovers_unconfirmed
            );
        }
        let g = &self.adverts;
        let _ = writeln!(
            t,
            "\nA's adverts on its switch port: {} captured of {} due ({} lost by the capture, \
             {} routers silent); gap between adverts of one router p50 {:.2} ms, p99 {:.2} ms, \
             max {:.2} ms; {} gaps > {} ms (late), {} >= {} ms.",
            g.captured,
            g.due,
            g.capture_drops,
            g.silent,
            g.p50_ms,
            g.p99_ms,
            g.max_ms,
            g.late,
            LATE.as_millis(),
            g.near_miss,
            NEAR_MISS.as_millis()
        );
        let _ = writeln!(
            t,
            "Spurious transitions: {} (A {}, B {}). Frames the control thread deferred / dropped: \
             A {}/{}, B {}/{}. Adverts the workers sent in a late control thread's place: A {}.",
            self.a.transitions + self.b.transitions,
            self.a.transitions,
            self.b.transitions,
            self.a.tx_deferred,
            self.a.tx_dropped,
            self.b.tx_deferred,
            self.b.tx_dropped,
            self.a.adverts_rescued
        );
        let _ = writeln!(
            t,
            "The machine's own stalls: a SCHED_FIFO thread above the control threads, sleeping \
             1 ms at a time, woke at worst {:.1} ms late; {} times over 10 ms, {} over 30 ms in \
             {:.0} s; the hypervisor's steal: {}.",
            self.stalls.max.as_secs_f64() * 1000.0,
            self.stalls.over_10ms,
            self.stalls.over_30ms,
            self.stalls.watched.as_secs_f64(),
            self.stalls.steal_described()
        );
        for (name, d) in [("A", &self.a), ("B", &self.b)] {
            let drops: Vec<String> = d.drops.iter().map(|(k, n)| format!("{k} {n}")).collect();
            let _ = writeln!(
                t,
                "Frames {name} dropped on their way in: {}.",
                if drops.is_empty() {
                    "none".to_owned()
                } else {
                    drops.join(", ")
                }
            );
        }
        let _ = writeln!(
            t,
            "The wire's cost of A's adverts: a bare sender of the same frames at the same phases \
             in A's place (SCHED_FIFO, one sendmmsg per phase, B backup) used {:.1} % of a core \
             ({:.1} in kernel) for {} adverts in {:.1} s.",
            self.wire_percent(),
            core_percent(self.wire.kernel, self.wire.wall),
            self.wire.sent,
            self.wire.wall.as_secs_f64()
        );
        let worst =
            core_percent(self.a.cpu.main, self.wall).max(core_percent(self.b.cpu.main, self.wall));
        let own = self.worst_own();
        let verdict = |v: f64| {
            if v <= AIM_CONTROL_PERCENT {
                "met"
            } else {
                "NOT met"
            }
        };
        let _ = writeln!(
            t,
            "Aim: control thread <= {AIM_CONTROL_PERCENT:.0} % of a core per appliance: {} \
             (worst {worst:.1} %); less the wire's cost of A's adverts: {} (worst {own:.1} %).",
            verdict(worst),
            verdict(own)
        );
        t
    }

    /// The bare sender's CPU, percent of a core.
    fn wire_percent(&self) -> f64 {
        core_percent(self.wire.cpu, self.wire.wall)
    }

    /// The worse control thread once A's is relieved of the wire's cost
    /// (B's receiving runs in A's sender context, so B owes none of it).
    fn worst_own(&self) -> f64 {
        let a = core_percent(self.a.cpu.main, self.wall) - self.wire_percent();
        a.max(core_percent(self.b.cpu.main, self.wall)).max(0.0)
    }
}

fn round2(v: f64) -> f64 {
    (v * 100.0).round() / 100.0
}

// ----- capture of A's adverts on the switch -----------------------------------------

/// An advert's address family.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Family {
    /// IPv4 (VRRP in IPv4, protocol 112).
    V4,
    /// IPv6 (next header 112).
    V6,
}

/// What the capture kept: (router, kernel receive time in ns) per advert
/// of A, and the frames the kernel dropped for want of room in the socket.
#[derive(Debug, Default)]
struct CaptureLog {
    stamps: Vec<((Family, u8), u64)>,
    drops: u64,
    /// How long the socket was open: the window the adverts were due in.
    open_for: Duration,
}

/// A thread inside the switch's namespace recording A's adverts on one
/// bridge port until finished or dropped.
struct AdvertCapture(Background<CaptureLog>);

impl AdvertCapture {
    fn start(ns: &str, ifname: &str, src: Ipv4Addr) -> Result<AdvertCapture> {
        let (ns, ifname) = (ns.to_owned(), ifname.to_owned());
        Background::start(
            "advert-capture",
            move || netns::enter(&ns).and_then(|()| capture_socket(&ifname)),
            move |fd, stop| {
                let mut log = CaptureLog::default();
                let opened = Instant::now();
                while !stop.load(Ordering::Relaxed) {
                    if let Some(stamp) = recv_advert(&fd, src) {
                        log.stamps.push(stamp);
                    }
                }
                log.drops = packet_drops(&fd);
                log.open_for = opened.elapsed();
                Ok(log)
            },
        )
        .map(AdvertCapture)
    }

    fn finish(self) -> Result<CaptureLog> {
        self.0.finish()
    }
}

fn set_int(fd: &OwnedFd, level: libc::c_int, name: libc::c_int, value: libc::c_int) -> Result<()> {
    let len = libc::socklen_t::try_from(std::mem::size_of::<libc::c_int>())?;
    // SAFETY: `value` is a valid c_int for the length given.
    let rc = unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            level,
            name,
            std::ptr::addr_of!(value).cast(),
            len,
        )
    };
    if rc < 0 {
        bail!(
            "setsockopt {level}/{name}: {}",
            std::io::Error::last_os_error()
        );
    }
    Ok(())
}

/// An AF_PACKET datagram socket (link header stripped) bound to `ifname`
/// in the calling thread's namespace: frames leaving the interface (those
/// towards A) ignored, kernel timestamps on, a 50 ms receive timeout. All
/// protocols: the port is a bridge port, and the bridge takes frames before
/// a socket bound to one protocol would see them. Also the tests' capture
/// of adverts on the wire.
pub fn capture_socket(ifname: &str) -> Result<OwnedFd> {
    let proto = u16::try_from(libc::ETH_P_ALL)?.to_be();
    // SAFETY: plain socket(2) call; the result is checked before use.
    let fd = unsafe { libc::socket(libc::AF_PACKET, libc::SOCK_DGRAM, i32::from(proto)) };
    if fd < 0 {
        bail!("AF_PACKET socket: {}", std::io::Error::last_os_error());
    }
    // SAFETY: `fd` is a fresh descriptor owned by nothing else.
    let fd = unsafe { OwnedFd::from_raw_fd(fd) };
    set_int(&fd, libc::SOL_PACKET, libc::PACKET_IGNORE_OUTGOING, 1)?;
    set_int(&fd, libc::SOL_SOCKET, libc::SO_TIMESTAMPNS, 1)?;
    set_int(&fd, libc::SOL_SOCKET, libc::SO_RCVBUF, 16 << 20)?;
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

/// Frames the kernel dropped on the socket since it was opened
/// (PACKET_STATISTICS; reading resets them).
fn packet_drops(fd: &OwnedFd) -> u64 {
    let mut st = libc::tpacket_stats {
        tp_packets: 0,
        tp_drops: 0,
    };
    let Ok(mut len) = libc::socklen_t::try_from(std::mem::size_of::<libc::tpacket_stats>()) else {
        return 0;
    };
    // SAFETY: `st` is a writable tpacket_stats of `len` bytes; the kernel
    // writes at most `len` bytes and updates `len`.
    let rc = unsafe {
        libc::getsockopt(
            fd.as_raw_fd(),
            libc::SOL_PACKET,
            libc::PACKET_STATISTICS,
            std::ptr::addr_of_mut!(st).cast(),
            &mut len,
        )
    };
    if rc < 0 {
        return 0;
    }
    u64::from(st.tp_drops)
}

/// Receives one packet; `((family, VRID), kernel receive time in ns)` if
/// it is an IPv4 VRRP advert from `src` or an IPv6 one (the socket sees
/// only frames from A's port, and B, a backup, sends none). `None` on a
/// timeout or another packet. Also the tests' reading of adverts on the
/// wire.
pub fn recv_advert(fd: &OwnedFd, src: Ipv4Addr) -> Option<((Family, u8), u64)> {
    let mut buf = [0u8; 2048];
    // u64 elements keep the control buffer aligned for cmsghdr.
    let mut control = [0u64; 16];
    let mut iov = libc::iovec {
        iov_base: buf.as_mut_ptr().cast(),
        iov_len: buf.len(),
    };
    // SAFETY: sockaddr_ll is plain data; all-zero is a valid value.
    let mut from: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
    // SAFETY: msghdr is plain data; all-zero is a valid value.
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_name = std::ptr::addr_of_mut!(from).cast();
    msg.msg_namelen = u32::try_from(std::mem::size_of::<libc::sockaddr_ll>()).ok()?;
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control.as_mut_ptr().cast();
    msg.msg_controllen = std::mem::size_of_val(&control);
    // SAFETY: `msg` points at `from`, `iov` (into `buf`) and `control`,
    // all live and of the lengths given.
    let n = unsafe { libc::recvmsg(fd.as_raw_fd(), &mut msg, 0) };
    let packet = buf.get(..usize::try_from(n).ok()?)?;
    let router = if from.sll_protocol == u16::try_from(libc::ETH_P_IP).ok()?.to_be() {
        let first = *packet.first()?;
        let from_ip: [u8; 4] = packet.get(12..16)?.try_into().ok()?;
        let vrrp = packet.get(usize::from(first & 0x0f) * 4..)?;
        if first >> 4 != 4 || *packet.get(9)? != 112 || Ipv4Addr::from(from_ip) != src {
            return None;
        }
        (Family::V4, *vrrp.get(1)?)
    } else if from.sll_protocol == u16::try_from(libc::ETH_P_IPV6).ok()?.to_be() {
        // Next header VRRP right after the fixed header: adverts carry no
        // extension headers.
        if *packet.first()? >> 4 != 6 || *packet.get(6)? != 112 {
            return None;
        }
        (Family::V6, *packet.get(40 + 1)?)
    } else {
        return None;
    };
    // SAFETY: `msg` was filled by recvmsg; the CMSG macros walk its
    // control buffer within msg_controllen.
    let mut cmsg = unsafe { libc::CMSG_FIRSTHDR(&msg) };
    while !cmsg.is_null() {
        // SAFETY: `cmsg` is non-null and inside the control buffer.
        let hdr = unsafe { &*cmsg };
        if hdr.cmsg_level == libc::SOL_SOCKET && hdr.cmsg_type == libc::SCM_TIMESTAMPNS {
            // SAFETY: an SCM_TIMESTAMPNS message carries one timespec;
            // read unaligned, the data need not be aligned for it.
            let ts: libc::timespec =
                unsafe { std::ptr::read_unaligned(libc::CMSG_DATA(cmsg).cast()) };
            let secs = u64::try_from(ts.tv_sec).ok()?;
            let nanos = u64::try_from(ts.tv_nsec).ok()?;
            return Some((
                router,
                secs.saturating_mul(1_000_000_000).saturating_add(nanos),
            ));
        }
        // SAFETY: as above; returns null past the last message.
        cmsg = unsafe { libc::CMSG_NXTHDR(&msg, cmsg) };
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn all_255_routers_on_one_port_are_a_valid_config() {
        let text = config("xv", "a", 200, MAX_INSTANCES, 1).render();
        let cfg = xvrrp_control::config::parse(&text, "bench").unwrap();
        assert_eq!(cfg.vrrp.len(), 255);
        let text = config("xv", "a", 200, MAX_INSTANCES, 2).render();
        let cfg = xvrrp_control::config::parse(&text, "bench").unwrap();
        assert_eq!(cfg.vrrp.len(), 510);
        assert!(cfg.vrrp[509].is_ipv6());
        assert_eq!(cfg.ports.len(), 1);
        assert!(cfg.sync_groups.is_empty());
        assert_eq!(cfg.vrrp[254].vrid, 255);
        assert_eq!(cfg.vrrp[0].advert_interval(), INTERVAL);
    }

    #[test]
    fn gaps_per_router_late_and_silent() {
        let ms_ns = 1_000_000u64;
        let mut log = CaptureLog {
            open_for: Duration::from_millis(50),
            ..CaptureLog::default()
        };
        // Router 1: every 10 ms, one 20 ms gap; router 2: every 10 ms.
        for t in [0u64, 10, 20, 40, 50] {
            log.stamps.push(((Family::V4, 1), t * ms_ns));
        }
        for t in [5u64, 15, 25, 35, 45] {
            log.stamps.push(((Family::V6, 1), t * ms_ns));
        }
        let g = AdvertGaps::of(&log, 3);
        assert_eq!(g.captured, 10);
        assert_eq!(g.due, 15);
        assert_eq!(g.late, 1);
        assert_eq!(g.near_miss, 0);
        assert_eq!(g.silent, 1);
        assert!((g.max_ms - 20.0).abs() < 1e-9);
        assert!((g.p50_ms - 10.0).abs() < 1e-9);
    }
}
