//! `xvrrp bench forward`: forwarding rate, CPU per packet and latency of
//! gateway A, first as a Linux kernel router, then running xvrrp, with the
//! same generator in the same run and lab.
//!
//! ```text
//!  client (trafgen, core 0) ── sw:lan ── lan0 gw-a wan0 ── sw:wan ── server (sink)
//! ```
//!
//! The generator runs at nice -20, so that on a machine shared with other
//! work it still outruns the gateway (still in the normal scheduling class:
//! it starves nothing).
//!
//! Steps, each announced on stderr:
//! 1. the lab, under a prefix of its own;
//! 2. *generator alone*: frames to A's own MAC, which A's kernel drops at
//!    once (`ip_forward=0`): what the generator can offer here;
//! 3. *kernel*: the VIPs 192.0.2.1 and 203.0.113.1 as kernel addresses on
//!    A's `lan0`/`wan0`, `ip_forward=1`, and RPS steering `lan0`'s receive
//!    work to the gateway core, so the kernel forwards on the core xvrrp's
//!    worker will have; throughput, then ARP/ping round trips idle and
//!    under half the kernel's forwarded rate;
//! 4. *xvrrp busy*: the VIPs removed, forwarding off, xvrrp master on A
//!    (one worker on the gateway core, `idle = "busy"`); the same;
//! 5. *xvrrp adaptive*: the round trips again with `idle = "adaptive"`;
//! 6. with `--workers N` above 1, xvrrp with N workers, one per RX queue,
//!    if A's `lan0` has that many queues (else the row says it needs
//!    multi-queue).
//!
//! Counting: offered = the client's `eth0` tx_packets, forwarded = the
//! server's `eth0` rx_packets (both from netlink; frames a veth could not
//! hand on count as dropped, not sent/received). The sink's kernel drops
//! the datagrams (UDP discard port, nothing bound); its ICMP port
//! unreachable replies are rate-limited by the kernel (1000/s).
//!
//! CPU on the gateway, by the only accounting each kind of work has:
//! - kernel: the softirq time of the gateway core (`/proc/stat`), where
//!   RPS runs A's whole receive-forward-transmit path (and, on the same
//!   core, the wan bridge and the sink: they run inline with A's transmit);
//! - xvrrp: utime + stime of the xvrrp process (`/proc/PID/stat`, all
//!   threads). Its transmit path runs the same wan bridge and sink inline,
//!   and without IRQ time accounting a softirq that interrupts the worker is
//!   charged to it too, so the two are comparable. A busy-polling worker
//!   uses its whole core whatever the load: its CPU per packet is lowest
//!   when the core is saturated.
//! - both rows also show the softirq time of every core together: the
//!   kernel work on the generator's core (bridge, veth, and for xvrrp the
//!   XDP program and the copy into its socket) that neither figure above
//!   holds.

use std::fmt::Write as _;
use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use serde_json::{json, Value};

use super::probe::{self, LinkCounters, MachineTimes, Rtts};
use super::trafgen::{self, FrameSpec, Generator};
use super::{f, progress, ratio, sleep_or_stop};
use crate::flow;
use crate::lab::{self, Appliance, ApplianceConfig, Lab, WorkDir};
use crate::netns;

/// `xvrrp bench forward`.
#[derive(clap::Args, Debug)]
pub struct ForwardArgs {
    /// Frame size on the wire in bytes, FCS included (64..=1518).
    #[arg(long, default_value_t = trafgen::MIN_SIZE,
          value_parser = clap::value_parser!(u16).range(i64::from(trafgen::MIN_SIZE)..=i64::from(trafgen::MAX_SIZE)))]
    size: u16,
    /// Seconds of measured traffic per throughput row.
    #[arg(long, default_value_t = 5.0)]
    seconds: f64,
    /// Workers of the multi-worker row (needs as many RX queues on lan0);
    /// 1 runs no extra row: the xvrrp row is the 1-worker row.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..=64))]
    workers: u16,
    /// ARP requests and pings per latency cell (10 ms apart).
    #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u32).range(10..=10_000))]
    probes: u32,
    /// Print one JSON object instead of the tables.
    #[arg(long)]
    json: bool,
    /// Lab prefix ([a-z0-9]{1,8}); default: unique to this run.
    #[arg(long)]
    prefix: Option<String>,
}

/// The LAN virtual address.
const LAN_VIP: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 1);
/// The client (generator).
const CLIENT: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 100);
/// The server (sink).
const SERVER: Ipv4Addr = Ipv4Addr::new(203, 0, 113, 100);
/// The virtual MAC of VRID 1 (IPv4).
const LAN_VMAC: [u8; 6] = [0, 0, 0x5e, 0, 1, 1];
/// One end of a veth: lab role and interface.
type End = (&'static str, &'static str);

/// The veths a frame crosses from the generator to the sink, as (sending
/// end, receiving end) by lab role. A frame the receiving end could not
/// take (its backlog, RPS queue or XDP ring full) counts as dropped at both
/// ends: the larger of the two is the veth's loss.
const HOPS: [(End, End); 4] = [
    (("client", "eth0"), ("sw", "c-lan")),
    (("sw", "a-lan"), ("gw-a", "lan0")),
    (("gw-a", "wan0"), ("sw", "a-wan")),
    (("sw", "s-wan"), ("server", "eth0")),
];
/// Flows of the generator (distinct UDP source ports).
const FLOWS: u16 = 16;
/// Traffic before the first sample of a row: rings, caches and neighbour
/// entries settle.
const WARMUP: Duration = Duration::from_millis(500);
/// A row whose sink saw at least this share of what was offered lost
/// (almost) nothing: the generator, not the gateway, set its rate.
const GENERATOR_LIMITED: f64 = 0.98;
/// How long an appliance may take to start and win its election.
const ELECTION_TIMEOUT: Duration = Duration::from_secs(15);

/// Runs `xvrrp bench forward`.
///
/// # Errors
/// Not root, a missing program, or any step failing. The lab, the
/// appliance and the generator are stopped and removed on every exit path;
/// on failure the work directory (configs, logs) is kept and named.
pub fn run(args: &ForwardArgs, self_exe: &Path) -> Result<()> {
    if !netns::is_root() {
        bail!("xvrrp bench must run as root: it creates network namespaces");
    }
    if !(args.seconds.is_finite() && args.seconds > 0.0 && args.seconds <= 3600.0) {
        bail!("--seconds must be in (0, 3600]");
    }
    netns::require(&["ip", "ethtool", "ping", "arping", "trafgen"])?;
    let prefix = args
        .prefix
        .clone()
        .unwrap_or_else(|| super::unique_prefix('f'));
    lab::validate_prefix(&prefix)?;
    let stop = super::interrupt_flag()?;
    let ncpu = std::thread::available_parallelism().map_or(1, usize::from);
    let gw_core = usize::from(ncpu >= 2);
    let mut work = WorkDir::create("bench")?;

    progress(&format!(
        "building lab {prefix} ({ncpu} cores: generator on core 0, gateway on core {gw_core})"
    ));
    // As many queues on the gateways' veths as workers in the last row.
    let options = lab::LabOptions {
        queues: u32::from(args.workers.max(1)),
        ..Default::default()
    };
    let lab = Lab::up_with(&prefix, &options)?;
    let result = (|| {
        let bench = Bench::new(args, self_exe, &lab, &work, &stop, ncpu, gw_core)?;
        bench.run()
    })();
    match result {
        Ok(report) => {
            progress(&format!("removing lab {prefix}"));
            lab.down()?;
            if args.json {
                println!("{}", report.json());
            } else {
                print!("{}", report.text());
            }
            Ok(())
        }
        Err(e) => {
            work.keep();
            eprintln!(
                "bench: configs and logs are kept in {}",
                work.path().display()
            );
            Err(e)
        }
    }
}

/// One throughput row.
#[derive(Clone, Debug)]
struct Row {
    name: String,
    /// Frames the generator handed to the wire.
    offered: u64,
    /// Frames that reached the sink.
    forwarded: u64,
    /// Seconds between the two samples.
    secs: f64,
    /// Gateway CPU seconds by the row's method, if it has a gateway.
    gw_cpu_s: Option<f64>,
    /// How `gw_cpu_s` was measured.
    cpu_method: &'static str,
    /// Softirq seconds of every core together.
    softirq_all_s: f64,
    /// The fast path's own counters over the row, for xvrrp.
    fast_path: Option<FastPath>,
    /// Drop counters that grew along the path, by where.
    losses: Vec<(String, u64)>,
}

impl Row {
    fn offered_mpps(&self) -> f64 {
        f(self.offered) / self.secs / 1e6
    }

    fn forwarded_mpps(&self) -> f64 {
        f(self.forwarded) / self.secs / 1e6
    }

    fn loss(&self) -> f64 {
        ratio(
            f(self.offered.saturating_sub(self.forwarded)),
            f(self.offered),
        )
        .unwrap_or(0.0)
    }

    fn generator_limited(&self) -> bool {
        self.offered > 0 && f(self.forwarded) >= GENERATOR_LIMITED * f(self.offered)
    }

    /// Gateway CPU µs per forwarded frame.
    fn gw_us_per_pkt(&self) -> Option<f64> {
        self.gw_cpu_s
            .and_then(|s| ratio(s * 1e6, f(self.forwarded)))
    }

    /// Share of one core the gateway used (its CPU seconds per second).
    fn gw_core_share(&self) -> Option<f64> {
        self.gw_cpu_s.and_then(|s| ratio(s, self.secs))
    }

    /// Softirq µs (all cores) per frame: per forwarded frame when there is
    /// a gateway, else per offered frame.
    fn softirq_us_per_pkt(&self) -> Option<f64> {
        let n = if self.gw_cpu_s.is_some() {
            self.forwarded
        } else {
            self.offered
        };
        ratio(self.softirq_all_s * 1e6, f(n))
    }

    fn json(&self) -> Value {
        json!({
            "name": self.name,
            "offered_mpps": round(self.offered_mpps(), 4),
            "forwarded_mpps": round(self.forwarded_mpps(), 4),
            "offered": self.offered,
            "forwarded": self.forwarded,
            "seconds": round(self.secs, 3),
            "loss": round(self.loss(), 4),
            "gateway_cpu_s": self.gw_cpu_s.map(|s| round(s, 3)),
            "gateway_cpu_us_per_pkt": self.gw_us_per_pkt().map(|v| round(v, 3)),
            "gateway_core_share": self.gw_core_share().map(|v| round(v, 3)),
            "cpu_method": self.cpu_method,
            "softirq_all_cores_us_per_pkt": self.softirq_us_per_pkt().map(|v| round(v, 3)),
            "generator_limited": self.generator_limited(),
            "fast_path": self.fast_path.as_ref().map(FastPath::json),
            "drops_along_the_path": self.losses.iter().map(|(k, v)| (k.clone(), json!(v))).collect::<serde_json::Map<_, _>>(),
        })
    }
}

/// The xvrrp fast path's counters over a row (from `stats --json`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
struct FastPath {
    /// Frames its sockets received on lan0.
    rx: u64,
    /// Frames it forwarded out of wan0.
    forwarded: u64,
    /// Frames it dropped on lan0, by reason (non-zero only).
    drops: Vec<(String, u64)>,
}

impl FastPath {
    fn from_stats(reply: &Value) -> FastPath {
        let workers = |port: &str| {
            reply
                .get("ports")
                .and_then(|p| p.get(port))
                .and_then(|p| p.get("workers"))
                .and_then(Value::as_object)
                .into_iter()
                .flat_map(|m| m.values())
        };
        let sum = |port: &str, key: &str| {
            workers(port)
                .filter_map(|w| w.get(key).and_then(Value::as_u64))
                .sum::<u64>()
        };
        let mut drops: Vec<(String, u64)> = Vec::new();
        for w in workers("lan0") {
            for (reason, n) in w
                .get("drops")
                .and_then(Value::as_object)
                .into_iter()
                .flatten()
            {
                let n = n.as_u64().unwrap_or(0);
                match drops.iter_mut().find(|(r, _)| r == reason) {
                    Some((_, total)) => *total += n,
                    None => drops.push((reason.clone(), n)),
                }
            }
        }
        FastPath {
            rx: sum("lan0", "rx"),
            forwarded: sum("wan0", "forwarded"),
            drops,
        }
    }

    fn minus(&self, before: &FastPath) -> FastPath {
        let old = |reason: &str| {
            before
                .drops
                .iter()
                .find(|(r, _)| r == reason)
                .map_or(0, |(_, n)| *n)
        };
        FastPath {
            rx: self.rx.saturating_sub(before.rx),
            forwarded: self.forwarded.saturating_sub(before.forwarded),
            drops: self
                .drops
                .iter()
                .map(|(r, n)| (r.clone(), n.saturating_sub(old(r))))
                .filter(|(_, n)| *n > 0)
                .collect(),
        }
    }

    fn json(&self) -> Value {
        let drops: serde_json::Map<String, Value> = self
            .drops
            .iter()
            .map(|(r, n)| (r.clone(), json!(n)))
            .collect();
        json!({"rx": self.rx, "forwarded": self.forwarded, "drops": drops})
    }
}

/// Round trips of one implementation at one load.
#[derive(Clone, Debug)]
struct Latency {
    who: &'static str,
    /// Generator rate during the probes, frames/s (0: idle).
    load_pps: u64,
    arp: Rtts,
    ping: Rtts,
}

impl Latency {
    fn json(&self) -> Value {
        let q = |r: &Rtts, p: f64| r.quantile(p).map(|v| round(v, 1));
        json!({
            "impl": self.who,
            "load": if self.load_pps == 0 { "idle" } else { "half" },
            "load_pps": self.load_pps,
            "arp_sent": self.arp.sent,
            "arp_answered": self.arp.micros.len(),
            "arp_p50_us": q(&self.arp, 0.5),
            "arp_p99_us": q(&self.arp, 0.99),
            "ping_sent": self.ping.sent,
            "ping_answered": self.ping.micros.len(),
            "ping_p50_us": q(&self.ping, 0.5),
            "ping_p99_us": q(&self.ping, 0.99),
            "ping_duplicates": self.ping.duplicates,
        })
    }
}

/// The N-worker row, or why it did not run.
#[derive(Clone, Debug)]
enum WorkersRow {
    /// `--workers 1`: the xvrrp row is the 1-worker row.
    Same,
    /// Measured.
    Ran(Row),
    /// Not run, and why.
    Skipped(String),
}

/// Everything one run measured.
#[derive(Clone, Debug)]
struct Report {
    size: u16,
    seconds: f64,
    workers: u16,
    gw_core: usize,
    alone: Row,
    kernel: Row,
    xvrrp: Row,
    workers_row: WorkersRow,
    half_pps: u64,
    probes: u32,
    latency: Vec<Latency>,
}

/// A lab step by step.
struct Bench<'a> {
    args: &'a ForwardArgs,
    exe: &'a Path,
    lab: &'a Lab,
    work: &'a WorkDir,
    stop: &'a AtomicBool,
    ncpu: usize,
    gw_core: usize,
    client: String,
    server: String,
    gw: String,
    client_mac: [u8; 6],
    lan0_mac: [u8; 6],
    tick: f64,
}

impl<'a> Bench<'a> {
    fn new(
        args: &'a ForwardArgs,
        exe: &'a Path,
        lab: &'a Lab,
        work: &'a WorkDir,
        stop: &'a AtomicBool,
        ncpu: usize,
        gw_core: usize,
    ) -> Result<Bench<'a>> {
        let (client, server, gw) = (lab.ns("client"), lab.ns("server"), lab.ns("gw-a"));
        Ok(Bench {
            client_mac: probe::mac_of(&client, "eth0")?,
            lan0_mac: probe::mac_of(&gw, "lan0")?,
            args,
            exe,
            lab,
            work,
            stop,
            ncpu,
            gw_core,
            client,
            server,
            gw,
            tick: probe::tick_seconds(),
        })
    }

    fn run(&self) -> Result<Report> {
        let secs = Duration::try_from_secs_f64(self.args.seconds).context("--seconds")?;

        progress(&format!(
            "generator alone: {} s of {}-byte frames to gw-a's own MAC, dropped by its kernel",
            self.args.seconds, self.args.size
        ));
        let alone = self.throughput("generator alone (A drops)", self.lan0_mac, secs, None)?;

        progress("kernel: VIPs as kernel addresses on gw-a, ip_forward=1, RPS to the gateway core");
        self.kernel_router(true)?;
        let mac = self.resolve()?;
        progress(&format!(
            "kernel: {} s of traffic through gw-a",
            self.args.seconds
        ));
        let kernel = self.throughput("kernel (ip_forward)", mac, secs, Some(Gateway::Kernel))?;
        // Half of what the kernel forwarded: the same load for every
        // implementation's latency cells.
        let half_pps = to_u64(f(kernel.forwarded) / kernel.secs / 2.0).max(1000);
        let mut latency = self.latency("kernel", half_pps)?;
        self.kernel_router(false)?;

        progress(&format!(
            "xvrrp busy: starting the appliance on gw-a, one worker on core {}",
            self.gw_core
        ));
        let mut app = self.start_xvrrp("busy", &[self.gw_core])?;
        let mac = self.resolve()?;
        if mac != LAN_VMAC {
            bail!(
                "the client resolved {LAN_VIP} to {}, not the virtual MAC",
                hex_mac(&mac)
            );
        }
        progress(&format!(
            "xvrrp busy: {} s of traffic through gw-a",
            self.args.seconds
        ));
        let xvrrp = self.throughput(
            "xvrrp busy, 1 worker",
            mac,
            secs,
            Some(Gateway::Xvrrp(&app)),
        )?;
        latency.extend(self.latency("xvrrp busy", half_pps)?);
        app.stop()?;

        progress("xvrrp adaptive: restarting the appliance with idle = \"adaptive\"");
        let mut app = self.start_xvrrp("adaptive", &[self.gw_core])?;
        self.resolve()?;
        latency.extend(self.latency("xvrrp adaptive", half_pps)?);
        app.stop()?;

        let workers_row = self.workers_row(secs)?;
        Ok(Report {
            size: self.args.size,
            seconds: self.args.seconds,
            workers: self.args.workers,
            gw_core: self.gw_core,
            alone,
            kernel,
            xvrrp,
            workers_row,
            half_pps,
            probes: self.args.probes,
            latency,
        })
    }

    /// The `--workers N` row, when N > 1 and lan0 has N queues.
    fn workers_row(&self, secs: Duration) -> Result<WorkersRow> {
        let n = usize::from(self.args.workers);
        if n <= 1 {
            return Ok(WorkersRow::Same);
        }
        let queues = probe::rx_queues(&self.gw, "lan0")?;
        if queues < u64::from(self.args.workers) {
            let why = format!(
                "needs multi-queue: gw-a's lan0 has {queues} RX queue(s), {n} workers need {n}"
            );
            progress(&format!("xvrrp, {n} workers: skipped, {why}"));
            return Ok(WorkersRow::Skipped(why));
        }
        let cores: Vec<usize> = (0..n).map(|i| (self.gw_core + i) % self.ncpu).collect();
        progress(&format!("xvrrp busy, {n} workers on cores {cores:?}"));
        let mut app = self.start_xvrrp("busy", &cores)?;
        let mac = self.resolve()?;
        let row = self.throughput(
            &format!("xvrrp busy, {n} workers"),
            mac,
            secs,
            Some(Gateway::Xvrrp(&app)),
        )?;
        app.stop()?;
        Ok(WorkersRow::Ran(row))
    }

    /// Makes gw-a a kernel router (or undoes it): the VIPs as kernel
    /// addresses, forwarding, and RPS of lan0's receive work to the gateway
    /// core.
    fn kernel_router(&self, on: bool) -> Result<()> {
        let verb = if on { "add" } else { "del" };
        for (dev, addr) in [("lan0", "192.0.2.1/24"), ("wan0", "203.0.113.1/24")] {
            netns::ip(&["-n", &self.gw, "addr", verb, addr, "dev", dev])?;
        }
        netns::sysctl(&self.gw, "net.ipv4.ip_forward", if on { "1" } else { "0" })?;
        let mask = if on { 1u64 << self.gw_core.min(63) } else { 0 };
        // sysfs of the namespace: only visible through `ip netns exec`.
        netns::exec(
            &self.gw,
            "sh",
            &[
                "-c",
                &format!("echo {mask:x} > /sys/class/net/lan0/queues/rx-0/rps_cpus"),
            ],
        )?;
        Ok(())
    }

    /// Forgets every neighbour of the client and the server, pings the
    /// server through the gateway (which resolves both ways) and returns
    /// the MAC the client now has for the VIP.
    fn resolve(&self) -> Result<[u8; 6]> {
        for ns in [&self.client, &self.server] {
            netns::ip(&["-n", ns, "neigh", "flush", "dev", "eth0"])?;
        }
        flow::ping(&self.client, IpAddr::V4(SERVER), 3, Duration::from_secs(5))?;
        let mac = flow::neighbour_mac(&self.client, IpAddr::V4(LAN_VIP))?
            .with_context(|| format!("the client has no neighbour entry for {LAN_VIP}"))?;
        probe::parse_mac(&mac)
    }

    /// Starts xvrrp on gw-a with workers on `cores` and waits for it to be
    /// master of both virtual routers.
    fn start_xvrrp(&self, idle: &str, cores: &[usize]) -> Result<Appliance> {
        let socket = format!("/run/xvrrp/{}-bench-a.sock", self.lab.prefix());
        let mut config = ApplianceConfig::gateway(&socket, 200);
        config.idle = idle.to_owned();
        config.cores = cores.to_vec();
        let mut app = Appliance::new("a", self.exe, &self.gw, &config, self.work.path())?;
        app.start()?;
        lab::wait_until("xvrrp master on gw-a", ELECTION_TIMEOUT, self.stop, || {
            app.all_in("master")
        })
        .map_err(|e| {
            e.context(format!(
                "last lines of {}:\n{}",
                app.log_path().display(),
                app.log_tail(15)
            ))
        })?;
        Ok(app)
    }

    /// Writes the generator's configuration for frames to `dst_mac`.
    fn gen_conf(&self, dst_mac: [u8; 6]) -> Result<PathBuf> {
        let frames = trafgen::frames(&FrameSpec {
            src_mac: self.client_mac,
            dst_mac,
            src: CLIENT,
            dst: SERVER,
            size: self.args.size,
            flows: FLOWS,
        })?;
        let path = self.work.path().join(format!(
            "trafgen-{}.cfg",
            hex_mac(&dst_mac).replace(':', "")
        ));
        std::fs::write(&path, trafgen::config(&frames))
            .with_context(|| format!("write {}", path.display()))?;
        Ok(path)
    }

    fn generator(&self, dst_mac: [u8; 6], rate: Option<u64>) -> Result<Generator> {
        let conf = self.gen_conf(dst_mac)?;
        Generator::start(
            &self.client,
            "eth0",
            &conf,
            rate,
            &self.work.path().join("trafgen.log"),
        )
    }

    /// The generator at full rate for `secs` after a warm-up; counters and
    /// CPU sampled at both ends.
    fn throughput(
        &self,
        name: &str,
        dst_mac: [u8; 6],
        secs: Duration,
        gateway: Option<Gateway<'_>>,
    ) -> Result<Row> {
        let mut gen = self.generator(dst_mac, None)?;
        sleep_or_stop(WARMUP, self.stop)?;
        gen.check_running()?;
        let a = self.sample(gateway.as_ref())?;
        sleep_or_stop(secs, self.stop)?;
        let b = self.sample(gateway.as_ref())?;
        gen.check_running()?;
        gen.stop()?;

        let machine = b.machine.minus(&a.machine);
        let (gw_cpu_s, cpu_method) = match (&gateway, a.proc_ticks, b.proc_ticks) {
            (Some(Gateway::Kernel), _, _) => (
                Some(f(machine.softirq_of(self.gw_core)) * self.tick),
                "softirq time of the gateway core (/proc/stat)",
            ),
            (Some(Gateway::Xvrrp(_)), Some(t0), Some(t1)) => (
                Some(f(t1.saturating_sub(t0)) * self.tick),
                "utime+stime of the xvrrp process (/proc/PID/stat)",
            ),
            _ => (None, "no gateway"),
        };
        let fast_path = match (&a.fast_path, &b.fast_path) {
            (Some(x), Some(y)) => Some(y.minus(x)),
            _ => None,
        };
        let row = Row {
            name: name.to_owned(),
            offered: b.client.tx_packets.saturating_sub(a.client.tx_packets),
            forwarded: if gateway.is_some() {
                b.server.rx_packets.saturating_sub(a.server.rx_packets)
            } else {
                0
            },
            secs: b.at.duration_since(a.at).as_secs_f64(),
            gw_cpu_s,
            cpu_method,
            softirq_all_s: f(machine.softirq_all()) * self.tick,
            fast_path,
            losses: b.losses_since(&a),
        };
        if gateway.is_some() {
            progress(&format!(
                "{name}: offered {:.3} Mpps, forwarded {:.3} Mpps",
                row.offered_mpps(),
                row.forwarded_mpps()
            ));
        } else {
            progress(&format!("{name}: offered {:.3} Mpps", row.offered_mpps()));
        }
        Ok(row)
    }

    fn sample(&self, gateway: Option<&Gateway<'_>>) -> Result<Sample> {
        let fast_path = match gateway {
            Some(Gateway::Xvrrp(app)) => Some(FastPath::from_stats(&app.query(&["stats"])?)),
            _ => None,
        };
        let proc_ticks = match gateway {
            Some(Gateway::Xvrrp(app)) => {
                let pid = app.pid().context("the appliance is not running")?;
                Some(probe::process_ticks(pid)?)
            }
            _ => None,
        };
        let machine = MachineTimes::read()?;
        // The two counter reads straddle the sample's time stamp.
        let client = probe::link_counters(&self.client, "eth0")?;
        let at = Instant::now();
        let server = probe::link_counters(&self.server, "eth0")?;
        let mut hops = Vec::with_capacity(HOPS.len());
        for ((tx_role, tx_dev), (rx_role, rx_dev)) in HOPS {
            let tx = probe::link_counters(&self.lab.ns(tx_role), tx_dev)?;
            let rx = probe::link_counters(&self.lab.ns(rx_role), rx_dev)?;
            hops.push((tx, rx));
        }
        let lan0 = probe::ethtool_stats(&self.gw, "lan0")?;
        Ok(Sample {
            at,
            client,
            server,
            machine,
            proc_ticks,
            fast_path,
            hops,
            lan0,
        })
    }

    /// ARP and ping round trips idle, then under `half_pps` of traffic.
    fn latency(&self, who: &'static str, half_pps: u64) -> Result<Vec<Latency>> {
        let dst_mac = self.resolve()?;
        progress(&format!("{who}: ARP and ping round trips, idle"));
        let (arp, ping) = self.probes()?;
        let idle = Latency {
            who,
            load_pps: 0,
            arp,
            ping,
        };
        progress(&format!(
            "{who}: ARP and ping round trips under {half_pps} frames/s"
        ));
        let mut gen = self.generator(dst_mac, Some(half_pps))?;
        sleep_or_stop(Duration::from_millis(300), self.stop)?;
        let (arp, ping) = self.probes()?;
        gen.check_running()?;
        gen.stop()?;
        Ok(vec![
            idle,
            Latency {
                who,
                load_pps: half_pps,
                arp,
                ping,
            },
        ])
    }

    fn probes(&self) -> Result<(Rtts, Rtts)> {
        if self.stop.load(Ordering::Relaxed) {
            bail!("interrupted");
        }
        let arp = probe::arping(&self.client, "eth0", IpAddr::V4(LAN_VIP), self.args.probes)?;
        let ping = probe::ping(&self.client, IpAddr::V4(SERVER), self.args.probes)?;
        Ok((arp, ping))
    }
}

/// What forwards during a row.
enum Gateway<'a> {
    Kernel,
    Xvrrp(&'a Appliance),
}

/// Counters and CPU times at one instant.
struct Sample {
    at: Instant,
    client: LinkCounters,
    server: LinkCounters,
    machine: MachineTimes,
    proc_ticks: Option<u64>,
    fast_path: Option<FastPath>,
    /// Counters of both ends of every veth in [`HOPS`].
    hops: Vec<(LinkCounters, LinkCounters)>,
    /// `ethtool -S lan0` of gw-a.
    lan0: Vec<(String, u64)>,
}

impl Sample {
    /// The drop and error counters that grew between `before` and `self`.
    fn losses_since(&self, before: &Sample) -> Vec<(String, u64)> {
        let mut out = Vec::new();
        for ((((tx_role, tx_dev), (rx_role, rx_dev)), now), then) in
            HOPS.iter().zip(&self.hops).zip(&before.hops)
        {
            let sent_side = now.0.tx_dropped.saturating_sub(then.0.tx_dropped);
            let recv_side = now.1.rx_dropped.saturating_sub(then.1.rx_dropped);
            let lost = sent_side.max(recv_side);
            if lost > 0 {
                out.push((format!("{tx_role} {tx_dev} → {rx_role} {rx_dev}"), lost));
            }
        }
        for (name, now) in &self.lan0 {
            if !(name.contains("drop") || name.contains("err")) {
                continue;
            }
            let then = before
                .lan0
                .iter()
                .find(|(n, _)| n == name)
                .map_or(0, |(_, v)| *v);
            if *now > then {
                out.push((format!("gw-a lan0 {name}"), now - then));
            }
        }
        out
    }
}

impl Report {
    fn generator_limited(&self) -> bool {
        self.kernel.generator_limited() || self.xvrrp.generator_limited()
    }

    fn json(&self) -> Value {
        let (k, x) = (&self.kernel, &self.xvrrp);
        let workers_row = match &self.workers_row {
            WorkersRow::Same => json!({"workers": 1, "same_as": x.name}),
            WorkersRow::Ran(row) => row.json(),
            WorkersRow::Skipped(why) => json!({"workers": self.workers, "skipped": why}),
        };
        json!({
            "size": self.size,
            "seconds": self.seconds,
            "flows": FLOWS,
            "workers": self.workers,
            "generator_core": 0,
            "gateway_core": self.gw_core,
            "offered_mpps": round(self.alone.offered_mpps(), 4),
            "kernel_mpps": round(k.forwarded_mpps(), 4),
            "xvrrp_mpps": round(x.forwarded_mpps(), 4),
            "ratio": ratio(x.forwarded_mpps(), k.forwarded_mpps()).map(|v| round(v, 3)),
            "kernel_cpu_us_per_pkt": k.gw_us_per_pkt().map(|v| round(v, 3)),
            "xvrrp_cpu_us_per_pkt": x.gw_us_per_pkt().map(|v| round(v, 3)),
            "cpu_ratio": k.gw_us_per_pkt().zip(x.gw_us_per_pkt()).and_then(|(k, x)| ratio(x, k)).map(|v| round(v, 3)),
            "generator_limited": self.generator_limited(),
            "rows": [self.alone.json(), k.json(), x.json()],
            "workers_row": workers_row,
            "latency_load_pps": self.half_pps,
            "latency": self.latency.iter().map(Latency::json).collect::<Vec<_>>(),
        })
    }

    fn text(&self) -> String {
        let mut t = String::new();
        let _ = writeln!(
            t,
            "Forwarding: {}-byte frames, {FLOWS} UDP flows, {} s per row; generator on core 0, gateway on core {}",
            self.size, self.seconds, self.gw_core
        );
        let _ = writeln!(
            t,
            "{:<26} {:>9} {:>10} {:>7} {:>12} {:>9} {:>12}",
            "", "offered", "forwarded", "loss", "gateway CPU", "gw core", "softirq, all"
        );
        let _ = writeln!(
            t,
            "{:<26} {:>9} {:>10} {:>7} {:>12} {:>9} {:>12}",
            "", "Mpps", "Mpps", "", "µs/pkt", "used", "µs/pkt"
        );
        let mut rows = vec![&self.alone, &self.kernel, &self.xvrrp];
        if let WorkersRow::Ran(row) = &self.workers_row {
            rows.push(row);
        }
        for row in rows {
            let has_gw = row.gw_cpu_s.is_some();
            let _ = writeln!(
                t,
                "{:<26} {:>9.3} {:>10} {:>7} {:>12} {:>9} {:>12}",
                row.name,
                row.offered_mpps(),
                if has_gw {
                    format!("{:.3}", row.forwarded_mpps())
                } else {
                    "-".to_owned()
                },
                if has_gw {
                    format!("{:.1} %", row.loss() * 100.0)
                } else {
                    "-".to_owned()
                },
                opt(row.gw_us_per_pkt(), 2),
                row.gw_core_share()
                    .map_or_else(|| "-".to_owned(), |v| format!("{:.0} %", v * 100.0)),
                opt(row.softirq_us_per_pkt(), 2),
            );
        }
        if let WorkersRow::Skipped(why) = &self.workers_row {
            let _ = writeln!(
                t,
                "{:<26} {why}",
                format!("xvrrp busy, {} workers", self.workers)
            );
        }
        let (k, x) = (&self.kernel, &self.xvrrp);
        let _ = writeln!(
            t,
            "xvrrp/kernel: {} the forwarded rate, {} the gateway CPU per packet",
            opt_x(ratio(x.forwarded_mpps(), k.forwarded_mpps())),
            opt_x(
                k.gw_us_per_pkt()
                    .zip(x.gw_us_per_pkt())
                    .and_then(|(k, x)| ratio(x, k))
            ),
        );
        let limited: Vec<&str> = [k, x]
            .iter()
            .filter(|r| r.generator_limited())
            .map(|r| r.name.as_str())
            .collect();
        if limited.is_empty() {
            let _ = writeln!(
                t,
                "generator-limited: no (both gateways dropped what they could not forward)"
            );
        } else {
            let _ = writeln!(
                t,
                "generator-limited: yes ({}: the sink saw ≥ {:.0} % of what was offered, so the generator's rate, not the gateway, set it)",
                limited.join(", "),
                GENERATOR_LIMITED * 100.0
            );
        }
        for row in [&self.kernel, &self.xvrrp] {
            let lost: Vec<String> = row.losses.iter().map(|(k, v)| format!("{k} {v}")).collect();
            let _ = writeln!(
                t,
                "{}: {} lost of {} offered; dropped along the path: {}",
                row.name,
                row.offered.saturating_sub(row.forwarded),
                row.offered,
                if lost.is_empty() {
                    "none grew".to_owned()
                } else {
                    lost.join(", ")
                }
            );
        }
        if let Some(fp) = &x.fast_path {
            let drops: Vec<String> = fp.drops.iter().map(|(r, n)| format!("{r} {n}")).collect();
            let _ = writeln!(
                t,
                "xvrrp's frames: {} offered, {} reached its sockets ({} lost before: veth or socket ring full), {} forwarded, drops [{}], {} reached the sink",
                x.offered,
                fp.rx,
                x.offered.saturating_sub(fp.rx),
                fp.forwarded,
                if drops.is_empty() { "none".to_owned() } else { drops.join(", ") },
                x.forwarded
            );
        }
        let _ = writeln!(
            t,
            "CPU: kernel = {}; xvrrp = {}; softirq, all = every core's softirq time (both rows: also the generator side's veth and bridge work) per forwarded frame",
            k.cpu_method, x.cpu_method
        );

        let _ = writeln!(
            t,
            "\nLatency (µs), {} probes 10 ms apart per cell; load = {} frames/s (half the kernel's forwarded rate)",
            self.probes, self.half_pps
        );
        let _ = writeln!(
            t,
            "{:<16} {:>21} {:>21}   {:>21} {:>21}",
            "", "ARP VIP, idle", "ARP VIP, half load", "ping via gw, idle", "ping via gw, half"
        );
        let _ = writeln!(
            t,
            "{:<16} {:>10} {:>10} {:>10} {:>10}   {:>10} {:>10} {:>10} {:>10}",
            "", "p50", "p99", "p50", "p99", "p50", "p99", "p50", "p99"
        );
        for who in ["kernel", "xvrrp busy", "xvrrp adaptive"] {
            let cell = |load_idle: bool| {
                self.latency
                    .iter()
                    .find(|l| l.who == who && (l.load_pps == 0) == load_idle)
            };
            let q = |l: Option<&Latency>, arp: bool, p: f64| {
                let r = l.map(|l| if arp { &l.arp } else { &l.ping });
                match r {
                    Some(r) if r.micros.is_empty() => "no reply".to_owned(),
                    Some(r) => opt(r.quantile(p), 1),
                    None => "-".to_owned(),
                }
            };
            let (idle, half) = (cell(true), cell(false));
            let _ = writeln!(
                t,
                "{:<16} {:>10} {:>10} {:>10} {:>10}   {:>10} {:>10} {:>10} {:>10}",
                who,
                q(idle, true, 0.5),
                q(idle, true, 0.99),
                q(half, true, 0.5),
                q(half, true, 0.99),
                q(idle, false, 0.5),
                q(idle, false, 0.99),
                q(half, false, 0.5),
                q(half, false, 0.99),
            );
        }
        let lost: Vec<String> = self
            .latency
            .iter()
            .filter(|l| {
                l.arp.micros.len() < usize::try_from(l.arp.sent).unwrap_or(0)
                    || l.ping.micros.len() < usize::try_from(l.ping.sent).unwrap_or(0)
                    || l.ping.duplicates > 0
            })
            .map(|l| {
                format!(
                    "{} {}: ARP {}/{}, ping {}/{}{}",
                    l.who,
                    if l.load_pps == 0 { "idle" } else { "half load" },
                    l.arp.micros.len(),
                    l.arp.sent,
                    l.ping.micros.len(),
                    l.ping.sent,
                    if l.ping.duplicates > 0 {
                        format!(" (+{} duplicate replies)", l.ping.duplicates)
                    } else {
                        String::new()
                    }
                )
            })
            .collect();
        if !lost.is_empty() {
            let _ = writeln!(t, "answered probes: {}", lost.join("; "));
        }
        t
    }
}

/// `aa:bb:cc:dd:ee:ff`.
fn hex_mac(mac: &[u8; 6]) -> String {
    mac.iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

/// Rounds for JSON output.
fn round(v: f64, digits: i32) -> f64 {
    let scale = 10f64.powi(digits);
    (v * scale).round() / scale
}

/// A positive rate as an integer (0 for anything else).
fn to_u64(v: f64) -> u64 {
    if v.is_finite() && v > 0.0 {
        // In range: checked above and rates are far below 2^64.
        #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
        let n = v as u64;
        n
    } else {
        0
    }
}

fn opt(v: Option<f64>, digits: usize) -> String {
    v.map_or_else(|| "-".to_owned(), |v| format!("{v:.digits$}"))
}

fn opt_x(v: Option<f64>) -> String {
    v.map_or_else(|| "-".to_owned(), |v| format!("{v:.2}×"))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn row(offered: u64, forwarded: u64) -> Row {
        Row {
            name: "r".into(),
            offered,
            forwarded,
            secs: 2.0,
            gw_cpu_s: Some(1.0),
            cpu_method: "m",
            softirq_all_s: 0.5,
            fast_path: None,
            losses: Vec::new(),
        }
    }

    #[test]
    fn row_rates_loss_and_cpu() {
        let r = row(2_000_000, 1_000_000);
        assert!((r.offered_mpps() - 1.0).abs() < 1e-12);
        assert!((r.forwarded_mpps() - 0.5).abs() < 1e-12);
        assert!((r.loss() - 0.5).abs() < 1e-12);
        assert!((r.gw_us_per_pkt().unwrap() - 1.0).abs() < 1e-12);
        assert!(!r.generator_limited());
        assert!(row(1000, 990).generator_limited());
        assert!(!row(0, 0).generator_limited());
        assert_eq!(row(0, 0).gw_us_per_pkt(), None);
    }

    #[test]
    fn fast_path_counters_from_stats() {
        let reply = json!({"ok": true, "ports": {
            "lan0": {"workers": {"0": {"rx": 100, "forwarded": 0, "drops": {"no-route": 2, "malformed": 0}},
                                 "1": {"rx": 50, "forwarded": 0, "drops": {"no-route": 1, "malformed": 3}}}},
            "wan0": {"workers": {"0": {"rx": 1, "forwarded": 140}, "1": {"rx": 0, "forwarded": 2}}}}});
        let now = FastPath::from_stats(&reply);
        assert_eq!((now.rx, now.forwarded), (150, 142));
        let before = FastPath {
            rx: 50,
            forwarded: 40,
            drops: vec![("no-route".into(), 3)],
        };
        let d = now.minus(&before);
        assert_eq!((d.rx, d.forwarded), (100, 102));
        assert_eq!(d.drops, vec![("malformed".to_owned(), 3)]);
    }
}
