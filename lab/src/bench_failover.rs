//! `xvrrp bench failover`: how long traffic stops when the master fails,
//! trial after trial, for xvrrp and (with `--peer keepalived`) for a
//! keepalived pair in the same lab and run.
//!
//! One lab of its own (a prefix unique to the run). Per trial: start the
//! pair (A priority 200, B 100, both routers of the lab in one sync group,
//! at `--interval`), wait until A is master and B backup, start the load
//! (`--load`), run a numbered UDP flow client → server through the LAN
//! virtual address (≥ 2000 datagrams/s, its threads real-time so that the
//! load starves the gateway, not the generator), hold `--hold-ms`, then
//! fail A (`--mode`): `cut` takes A's LAN and WAN links down on the switch
//! (one `ip -batch`: a cable pulled, A sees its carrier go), `kill` is a
//! SIGKILL, `term` a SIGTERM, `drain` a planned handover (`xvrrp drain
//! --all` on A). Wait until B is master and traffic arrives again, hold a
//! little, stop the flow, the load and the pair, and restore the links
//! (`drain`: resume A and wait until it is master again, keeping the pair
//! running into the next trial). keepalived has no drain: with `--mode
//! drain` its trials are skipped, and the run says so.
//!
//! Per trial: the **gap** is the largest silence between two arrivals at
//! the server from the last arrival before the event on; **lost** is the
//! datagrams of the trial's flow that never arrived; **false takeovers**
//! are B's state changes between the election settling and the event,
//! while A was healthy (xvrrp: the `transitions` of `status --json`;
//! keepalived: its "Entering ... STATE" log lines).
//!
//! keepalived runs without `use_vmac`, as the interop tests run it: as
//! master it holds the virtual addresses on its kernel interfaces and the
//! kernel forwards (`ip_forward=1` on both gateways for its trials; 0 for
//! xvrrp's, whose fast path forwards). So a SIGKILLed keepalived leaves
//! A's kernel forwarding with the addresses still on it, which the table's
//! note points out: its `kill` row measures a different failure than
//! xvrrp's, whose fast path dies with the process. `cut` fails both alike.

use std::fmt::Write as _;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use serde_json::json;

use crate::bench_common::{self as common, f, ms, progress, quantile, sorted};
use crate::flow::{self, monotonic_ns, Flow, FlowOptions, FlowTrace};
use crate::keepalived::{self, Keepalived, Role};
use crate::lab::{self, Appliance, ApplianceConfig, Lab, WorkDir};
use crate::load::{Flood, FloodReport, Hogs};
use crate::netns;

/// `xvrrp bench failover`.
#[derive(clap::Args, Debug)]
pub struct FailoverArgs {
    /// Trials per implementation.
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u32).range(1..=1000))]
    trials: u32,
    /// Advertisement interval of both routers (a multiple of 10 ms).
    #[arg(long, default_value = "10ms", value_parser = parse_interval)]
    interval: Duration,
    /// How A fails.
    #[arg(long, value_enum, default_value_t = Mode::Kill)]
    mode: Mode,
    /// What loads the machine while the pair holds and fails over.
    #[arg(long, value_enum, default_value_t = LoadKind::None)]
    load: LoadKind,
    /// Run the same trials with a pair of this implementation too.
    #[arg(long, value_enum)]
    peer: Option<Peer>,
    /// Print one JSON object instead of the table.
    #[arg(long)]
    json: bool,
    /// Draw arrivals around the event and the per-trial gaps into this SVG.
    #[arg(long, value_name = "FILE.svg")]
    plot: Option<PathBuf>,
    /// Datagrams per second of the flow through the gateway.
    #[arg(long, default_value_t = 2000, value_parser = clap::value_parser!(u32).range(2000..=100_000))]
    rate: u32,
    /// Milliseconds the elected pair holds under load, with traffic,
    /// before A fails (the window where false takeovers are counted).
    #[arg(long, default_value_t = 1000)]
    hold_ms: u64,
    /// Lab prefix ([a-z0-9]{1,8}); default: unique to this run.
    #[arg(long)]
    prefix: Option<String>,
    /// Idle policy of xvrrp's workers (`adaptive`, `busy`, `wait`).
    #[arg(long, default_value = "adaptive", value_parser = ["adaptive", "busy", "wait"])]
    idle: String,
    /// Keep the daemons' configs and logs (their directory is printed);
    /// they are kept anyway when the run fails.
    #[arg(long)]
    keep_logs: bool,
}

/// How A fails.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// A's LAN and WAN links go down (on the switch side).
    Cut,
    /// SIGKILL: a crash, nothing said on the wire.
    Kill,
    /// SIGTERM: a clean stop, priority 0 first.
    Term,
    /// `xvrrp drain --all` on A: a planned handover, resumed after the trial.
    Drain,
}

/// The load during a trial.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum LoadKind {
    /// Nothing else.
    None,
    /// A busy loop on every core.
    Cpu,
    /// Malformed and foreign VRRP sent onto the LAN from the client as fast
    /// as an AF_PACKET socket goes.
    Flood,
}

/// The implementation compared against.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Peer {
    /// keepalived (VRRPv3, kernel forwarding).
    Keepalived,
}

/// Which pair a trial ran.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Impl {
    Xvrrp,
    Keepalived,
}

impl Impl {
    pub(crate) fn name(self) -> &'static str {
        match self {
            Impl::Xvrrp => "xvrrp",
            Impl::Keepalived => "keepalived",
        }
    }
}

impl Mode {
    fn name(self) -> &'static str {
        match self {
            Mode::Cut => "cut",
            Mode::Kill => "kill",
            Mode::Term => "term",
            Mode::Drain => "drain",
        }
    }
}

impl LoadKind {
    fn name(self) -> &'static str {
        match self {
            LoadKind::None => "none",
            LoadKind::Cpu => "cpu",
            LoadKind::Flood => "flood",
        }
    }
}

/// Parses `10ms`, `0.1s`, `100` (ms); must be a whole number of
/// centiseconds from 10 ms to 40.95 s (VRRPv3's range).
fn parse_interval(s: &str) -> std::result::Result<Duration, String> {
    let s = s.trim();
    let (num, scale) = if let Some(n) = s.strip_suffix("ms") {
        (n, 1e-3)
    } else if let Some(n) = s.strip_suffix('s') {
        (n, 1.0)
    } else {
        (s, 1e-3)
    };
    let v: f64 = num
        .trim()
        .parse()
        .map_err(|_| format!("{s:?} is not a duration like 10ms or 0.1s"))?;
    let d = Duration::try_from_secs_f64(v * scale).map_err(|e| format!("{s:?}: {e}"))?;
    let ms = d.as_micros();
    if ms % 10_000 != 0 || d < Duration::from_millis(10) || d > Duration::from_millis(40_950) {
        return Err(format!(
            "{s:?}: the interval must be a multiple of 10 ms from 10ms to 40.95s"
        ));
    }
    Ok(d)
}

/// The server, on the far side of the gateway.
const SERVER: Ipv4Addr = Ipv4Addr::new(203, 0, 113, 100);
/// The LAN virtual address, the client's gateway.
const LAN_VIP: &str = "192.0.2.1";
/// Daemon start plus an election, with room for a loaded machine.
const ELECTION_TIMEOUT: Duration = Duration::from_secs(20);
/// How long after the event B may take to be master with traffic back.
const RECOVERY_TIMEOUT: Duration = Duration::from_secs(5);
/// Traffic kept after the recovery, so the trace shows it steady again.
const AFTER: Duration = Duration::from_millis(300);
/// Real-time priority of the flow's threads: above every normal process
/// (the busy loops, keepalived), below xvrrp's control thread (10).
const FLOW_RT_PRIORITY: i32 = 5;
/// A send stall of the generator larger than this is reported with the
/// trial: the gap may then be the generator's, not the gateway's.
const SEND_STALL: Duration = Duration::from_millis(5);
/// Why `--mode drain --peer keepalived` runs xvrrp's trials only.
const KEEPALIVED_NO_DRAIN: &str = "keepalived has no drain (no command hands over while it keeps \
     running; its closest is a stop, `--mode term`): its trials are skipped in this mode";
/// B's priority, for its Skew_Time.
const B_PRIORITY: u8 = 100;

/// B's Master_Down_Interval (RFC 9568 §6.1): 3 × interval + Skew_Time,
/// Skew_Time = (256 − priority) × interval / 256.
pub(crate) fn master_down_interval(interval: Duration) -> Duration {
    interval * 3 + interval * u32::from(256 - u16::from(B_PRIORITY)) / 256
}

/// The gap xvrrp aims at for `cut` and `kill`: B's Master_Down_Interval
/// plus 2 ms for detection and the first frames.
pub(crate) fn aim_gap(interval: Duration) -> Duration {
    master_down_interval(interval) + Duration::from_millis(2)
}

/// One trial's outcome.
#[derive(Clone, Debug)]
pub(crate) struct Trial {
    pub(crate) imp: Impl,
    pub(crate) index: u32,
    pub(crate) gap_ms: f64,
    /// Start and end of the gap, ms from the event.
    pub(crate) gap_from_ms: f64,
    pub(crate) gap_to_ms: f64,
    pub(crate) lost: u64,
    /// Of those, the ones sent before the event (not the failover's).
    pub(crate) lost_before: u64,
    pub(crate) sent: u64,
    pub(crate) false_takeovers: u64,
    /// When B was first seen master, ms after the event (polled: an upper
    /// bound, late by up to one poll).
    pub(crate) b_master_ms: Option<f64>,
    /// The generator's largest pause between two sends.
    pub(crate) max_send_gap_ms: f64,
    /// The largest silence between two arrivals before the event, while A
    /// was healthy (traffic disturbed by the load or a false takeover).
    pub(crate) gap_before_ms: f64,
    /// xvrrp: ARP requests B sent for the flow's next hop during the
    /// failover (1 when the first was answered; each retry is 100 ms).
    pub(crate) b_arp_requests: Option<u64>,
    /// Arrivals as (ms from the event, sequence number).
    pub(crate) arrivals: Vec<(f64, u64)>,
    /// The sequence number sent last before the event.
    pub(crate) seq_at_event: u64,
}

/// Runs `xvrrp bench failover`; `self_exe` is this binary, started again
/// as the appliances and their client.
///
/// # Errors
/// Not root, a program missing, or a step failing; the lab, the daemons
/// and the load are removed or stopped either way.
pub fn run(args: &FailoverArgs, self_exe: &Path) -> Result<()> {
    if !netns::is_root() {
        bail!("xvrrp bench failover must run as root: it creates network namespaces");
    }
    let mut programs = vec!["ip", "ethtool"];
    if args.load == LoadKind::Cpu {
        programs.extend(["taskset", "sh"]);
    }
    if args.peer == Some(Peer::Keepalived) {
        programs.push(keepalived::KEEPALIVED);
    }
    netns::require(&programs)?;
    let prefix = args
        .prefix
        .clone()
        .unwrap_or_else(|| common::unique_prefix('f'));
    lab::validate_prefix(&prefix)?;
    let stop = common::interrupt_flag()?;
    let mut work = WorkDir::create(&format!("bench-failover-{prefix}"))?;
    progress(&format!("building lab {prefix}"));
    // Declared before the pairs, so it is removed after they are stopped.
    let lab = Lab::up(&prefix)?;
    let bench = Bench {
        args,
        self_exe,
        lab: &lab,
        work: &work,
        stop: &stop,
    };
    let mut impls = vec![Impl::Xvrrp];
    if args.peer == Some(Peer::Keepalived) {
        if args.mode == Mode::Drain {
            progress(KEEPALIVED_NO_DRAIN);
        } else {
            impls.push(Impl::Keepalived);
        }
    }
    let mut trials = Vec::new();
    for imp in impls {
        match bench.run_impl(imp, &mut trials) {
            Ok(()) => {}
            Err(e) => {
                work.keep();
                eprintln!(
                    "bench: the daemons' configs and logs are kept in {}",
                    work.path().display()
                );
                return Err(e);
            }
        }
    }
    progress(&format!("removing lab {prefix}"));
    drop(lab);
    if args.keep_logs {
        work.keep();
        progress(&format!(
            "the daemons' configs and logs are kept in {}",
            work.path().display()
        ));
    }
    let report = Report {
        args,
        trials: &trials,
    };
    if let Some(path) = &args.plot {
        crate::bench_plot::failover(path, args.interval, &trials)
            .with_context(|| format!("drawing {}", path.display()))?;
        progress(&format!("plot written to {}", path.display()));
    }
    if args.json {
        println!("{}", report.json());
    } else {
        print!("{}", report.table());
    }
    Ok(())
}

struct Bench<'a> {
    args: &'a FailoverArgs,
    self_exe: &'a Path,
    lab: &'a Lab,
    work: &'a WorkDir,
    stop: &'a AtomicBool,
}

/// A pair of either implementation. Dropping it stops both daemons by PID.
enum Pair {
    Xvrrp { a: Appliance, b: Appliance },
    Keepalived { a: Keepalived, b: Keepalived },
}

impl Pair {
    fn start(&mut self, stop: &AtomicBool) -> Result<()> {
        match self {
            Pair::Xvrrp { a, b } => {
                a.start()?;
                b.start()
            }
            Pair::Keepalived { a, b } => {
                a.start(stop)?;
                b.start(stop)
            }
        }
    }

    /// Whether both daemons run (the pair of a drain trial runs on into
    /// the next one).
    fn running(&mut self) -> bool {
        match self {
            Pair::Xvrrp { a, b } => a.running() && b.running(),
            Pair::Keepalived { .. } => false,
        }
    }

    /// Undoes a drain of A.
    fn resume_a(&mut self) -> Result<()> {
        match self {
            Pair::Xvrrp { a, .. } => a.query(&["resume", "--all"]).map(|_| ()),
            Pair::Keepalived { .. } => bail!("{KEEPALIVED_NO_DRAIN}"),
        }
    }

    /// A master and B backup of both routers.
    fn settled(&mut self, lab: &Lab) -> Result<bool> {
        match self {
            Pair::Xvrrp { a, b } => Ok(a.all_in("master")? && b.all_in("backup")?),
            Pair::Keepalived { .. } => Ok(keepalived::role_in(&lab.ns("gw-a"))? == Role::Master
                && keepalived::role_in(&lab.ns("gw-b"))? == Role::Backup),
        }
    }

    /// B master of both routers.
    fn b_master(&mut self, lab: &Lab) -> Result<bool> {
        match self {
            Pair::Xvrrp { b, .. } => b.all_in("master"),
            Pair::Keepalived { .. } => Ok(keepalived::role_in(&lab.ns("gw-b"))? == Role::Master),
        }
    }

    /// B's state changes so far.
    fn b_transitions(&self) -> Result<u64> {
        match self {
            Pair::Xvrrp { b, .. } => {
                let reply = b.query(&["status"])?;
                Ok(lab::instances(&reply)
                    .filter_map(|i| i.get("transitions").and_then(serde_json::Value::as_u64))
                    .sum())
            }
            Pair::Keepalived { b, .. } => Ok(u64::try_from(b.state_changes())?),
        }
    }

    /// xvrrp's B: ARP requests its workers sent on wan0 so far (resolving
    /// the server, the flow's next hop); `None` for keepalived.
    fn b_arp_requests(&self) -> Option<u64> {
        let Pair::Xvrrp { b, .. } = self else {
            return None;
        };
        let stats = b.query(&["stats"]).ok()?;
        let workers = stats
            .get("ports")?
            .get("wan0")?
            .get("workers")?
            .as_object()?;
        Some(
            workers
                .values()
                .filter_map(|w| w.get("arp_requests").and_then(serde_json::Value::as_u64))
                .sum(),
        )
    }

    /// Fails A by `mode`; returns once the signal is sent or the links are
    /// down.
    fn fail_a(&mut self, mode: Mode, lab: &Lab) -> Result<()> {
        match (mode, self) {
            (Mode::Cut, _) => set_a_links(lab, "down"),
            (Mode::Kill, Pair::Xvrrp { a, .. }) => a.kill(),
            (Mode::Kill, Pair::Keepalived { a, .. }) => a.kill(),
            (Mode::Term, Pair::Xvrrp { a, .. }) => match a.pid() {
                Some(pid) => netns::signal(pid, libc::SIGTERM),
                None => bail!("appliance a is not running"),
            },
            (Mode::Term, Pair::Keepalived { a, .. }) => a.terminate(),
            (Mode::Drain, Pair::Xvrrp { a, .. }) => a.query(&["drain", "--all"]).map(|_| ()),
            (Mode::Drain, Pair::Keepalived { .. }) => bail!("{KEEPALIVED_NO_DRAIN}"),
        }
    }

    fn stop(&mut self) -> Result<()> {
        match self {
            Pair::Xvrrp { a, b } => {
                a.stop()?;
                b.stop()
            }
            Pair::Keepalived { a, b } => {
                a.stop()?;
                b.stop()
            }
        }
    }

    fn logs(&self) -> String {
        match self {
            Pair::Xvrrp { a, b } => format!(
                "--- xvrrp A:\n{}\n--- xvrrp B:\n{}",
                a.log_tail(15),
                b.log_tail(15)
            ),
            Pair::Keepalived { a, b } => format!(
                "--- keepalived A:\n{}\n--- keepalived B:\n{}",
                a.log_tail(15),
                b.log_tail(15)
            ),
        }
    }
}

/// Takes A's two switch ports down or up in one `ip -batch`, so both go
/// within one process's time.
fn set_a_links(lab: &Lab, state: &str) -> Result<()> {
    let sw = lab.ns("sw");
    let script = format!("link set a-lan {state}\nlink set a-wan {state}\n");
    let path = std::env::temp_dir().join(format!("xvrrp-{}-links-{state}", lab.prefix()));
    std::fs::write(&path, script).with_context(|| format!("write {}", path.display()))?;
    let path_s = path.to_string_lossy().into_owned();
    let r = netns::ip(&["-n", &sw, "-batch", &path_s]);
    let _ = std::fs::remove_file(&path);
    r.map(|_| ())
}

/// The load of one trial, stopped when dropped.
enum Load {
    None,
    Cpu(Hogs),
    Flood(Flood),
}

impl Load {
    fn start(kind: LoadKind, lab: &Lab) -> Result<Load> {
        Ok(match kind {
            LoadKind::None => Load::None,
            LoadKind::Cpu => Load::Cpu(Hogs::start()?),
            LoadKind::Flood => Load::Flood(Flood::start(&lab.ns("client"))?),
        })
    }

    /// Stops the load; what a flood sent.
    fn stop(self) -> Result<Option<FloodReport>> {
        match self {
            Load::None => Ok(None),
            Load::Cpu(hogs) => {
                drop(hogs);
                Ok(None)
            }
            Load::Flood(flood) => flood.stop().map(Some),
        }
    }
}

impl Bench<'_> {
    fn pair(&self, imp: Impl) -> Result<Pair> {
        let interval_ms = self.args.interval.as_millis();
        let dir = self.work.path();
        Ok(match imp {
            Impl::Xvrrp => {
                let config = |name: &str, priority: u8| {
                    let socket = format!("/run/xvrrp/{}-{name}.sock", self.lab.prefix());
                    let mut c = ApplianceConfig::gateway(&socket, priority);
                    c.advert_interval = format!("{interval_ms}ms");
                    c.idle.clone_from(&self.args.idle);
                    c
                };
                let a = Appliance::new(
                    "a",
                    self.self_exe,
                    &self.lab.ns("gw-a"),
                    &config("a", 200),
                    dir,
                )?;
                let b = Appliance::new(
                    "b",
                    self.self_exe,
                    &self.lab.ns("gw-b"),
                    &config("b", B_PRIORITY),
                    dir,
                )?;
                Pair::Xvrrp { a, b }
            }
            Impl::Keepalived => {
                let a = Keepalived::new(
                    "ka-a",
                    &self.lab.ns("gw-a"),
                    dir,
                    &keepalived::gateway_conf(200, self.args.interval),
                )?;
                let b = Keepalived::new(
                    "ka-b",
                    &self.lab.ns("gw-b"),
                    dir,
                    &keepalived::gateway_conf(B_PRIORITY, self.args.interval),
                )?;
                Pair::Keepalived { a, b }
            }
        })
    }

    fn run_impl(&self, imp: Impl, out: &mut Vec<Trial>) -> Result<()> {
        // keepalived's master routes in the kernel; xvrrp's gateways must not.
        let forward = if imp == Impl::Keepalived { "1" } else { "0" };
        for gw in ["gw-a", "gw-b"] {
            netns::sysctl(&self.lab.ns(gw), "net.ipv4.ip_forward", forward)?;
        }
        let mut pair = self.pair(imp)?;
        for index in 1..=self.args.trials {
            let r = self.trial(imp, index, &mut pair);
            // Stop the pair and restore the lab whatever happened; a drained
            // pair that did well is resumed instead, for the next trial.
            let cleanup = if self.args.mode == Mode::Drain && r.is_ok() && index < self.args.trials
            {
                self.resume(&mut pair)
            } else {
                self.restore(&mut pair)
            };
            let trial = match r {
                Ok(t) => t,
                Err(e) => {
                    if !self.stop.load(std::sync::atomic::Ordering::Relaxed) {
                        eprintln!("{}", pair.logs());
                    }
                    return Err(e);
                }
            };
            cleanup?;
            progress(&trial_line(&trial, self.args));
            out.push(trial);
        }
        Ok(())
    }

    /// Stops both daemons and puts the lab back as built: links up, no
    /// virtual address left on a kernel interface.
    fn restore(&self, pair: &mut Pair) -> Result<()> {
        pair.stop()?;
        set_a_links(self.lab, "up")?;
        for gw in ["gw-a", "gw-b"] {
            keepalived::remove_virtual_addresses(&self.lab.ns(gw))?;
        }
        self.lab.wait_links_up(Duration::from_secs(5))
    }

    /// Resumes a drained A and waits until it is master again.
    fn resume(&self, pair: &mut Pair) -> Result<()> {
        pair.resume_a()?;
        lab::wait_until(
            "A master again after resume",
            ELECTION_TIMEOUT,
            self.stop,
            || pair.settled(self.lab),
        )
    }

    fn trial(&self, imp: Impl, index: u32, pair: &mut Pair) -> Result<Trial> {
        let args = self.args;
        let lab = self.lab;
        let label = format!(
            "{} {} {} trial {index}/{}",
            imp.name(),
            args.mode.name(),
            args.load.name(),
            args.trials
        );
        // Each trial starts from a client that has not resolved its gateway.
        netns::ip(&[
            "-n",
            &lab.ns("client"),
            "neigh",
            "flush",
            "to",
            LAN_VIP,
            "dev",
            "eth0",
        ])?;
        if args.keep_logs {
            progress(&format!("{label}: starting at {}", wall_clock()));
        }
        if !pair.running() {
            pair.start(self.stop)?;
        }
        lab::wait_until(
            &format!("{label}: A master and B backup"),
            ELECTION_TIMEOUT,
            self.stop,
            || pair.settled(lab),
        )?;
        let b_before = pair.b_transitions()?;
        let load = Load::start(args.load, lab)?;
        let dst = SocketAddr::from((SERVER, flow::DEFAULT_PORT));
        let flow = Flow::start_with(
            &lab.ns("client"),
            &lab.ns("server"),
            dst,
            args.rate,
            FlowOptions {
                trace: true,
                realtime: Some(FLOW_RT_PRIORITY),
            },
        )?;
        lab::wait_until(
            &format!("{label}: traffic through A"),
            Duration::from_secs(5),
            self.stop,
            || Ok(flow.received() > 0),
        )?;
        common::sleep_or_stop(Duration::from_millis(args.hold_ms), self.stop)?;
        let b_at_event = pair.b_transitions()?;
        let arp_before = pair.b_arp_requests();
        if args.keep_logs {
            progress(&format!("{label}: A fails at {}", wall_clock()));
        }
        let event_ns = monotonic_ns();
        let event = Instant::now();
        pair.fail_a(args.mode, lab)?;
        let mut b_master_ms = None;
        lab::wait_until(
            &format!("{label}: B master with traffic back"),
            RECOVERY_TIMEOUT,
            self.stop,
            || {
                if b_master_ms.is_none() && pair.b_master(lab)? {
                    b_master_ms = Some(event.elapsed().as_secs_f64() * 1000.0);
                }
                Ok(b_master_ms.is_some() && flow.last_arrival_ns().is_some_and(|t| t > event_ns))
            },
        )?;
        common::sleep_or_stop(AFTER, self.stop)?;
        let (report, trace) = flow.stop_traced()?;
        let b_arp_requests = pair
            .b_arp_requests()
            .zip(arp_before)
            .map(|(after, before)| after.saturating_sub(before));
        let flood = load.stop()?;
        if let Some(fl) = flood {
            progress(&format!(
                "{label}: flood sent {} frames at {:.0} frames/s",
                fl.frames,
                fl.rate()
            ));
        }
        let (gap_ns, from_ns, to_ns) = gap_after(&trace, event_ns);
        let rel = |t: u64| {
            if t >= event_ns {
                ms(t - event_ns)
            } else {
                -ms(event_ns - t)
            }
        };
        // The sequence number due at the event: the arrivals are plotted
        // against it.
        let interval_ns = 1_000_000_000 / u64::from(args.rate);
        let seq_at_event = event_ns.saturating_sub(trace.first_send_ns) / interval_ns.max(1);
        let lost_before = lost_before(&trace, seq_at_event);
        Ok(Trial {
            imp,
            index,
            gap_ms: ms(gap_ns),
            gap_from_ms: rel(from_ns),
            gap_to_ms: rel(to_ns),
            lost: report.lost,
            lost_before,
            sent: report.sent,
            false_takeovers: b_at_event.saturating_sub(b_before),
            b_master_ms,
            max_send_gap_ms: report.max_send_gap_ms,
            gap_before_ms: ms(gap_before(&trace, event_ns)),
            b_arp_requests,
            arrivals: trace
                .arrivals
                .iter()
                .map(|a| (rel(a.at_ns), a.seq))
                .collect(),
            seq_at_event,
        })
    }
}

/// The largest silence at the receiver from the last arrival at or before
/// `event_ns` on: `(length, from, to)` in monotonic ns. A flow that never
/// resumed is silent to its last send.
fn gap_after(trace: &FlowTrace, event_ns: u64) -> (u64, u64, u64) {
    let arrivals = &trace.arrivals;
    // Index of the last arrival at or before the event.
    let start = arrivals.partition_point(|a| a.at_ns <= event_ns);
    let mut prev = match start.checked_sub(1).and_then(|i| arrivals.get(i)) {
        Some(a) => a.at_ns,
        None => trace.first_send_ns.min(event_ns),
    };
    let mut best = (0, prev, prev);
    for a in arrivals.get(start..).unwrap_or_default() {
        let gap = a.at_ns.saturating_sub(prev);
        if gap > best.0 {
            best = (gap, prev, a.at_ns);
        }
        prev = a.at_ns;
    }
    if trace.last_send_ns > prev {
        let tail = trace.last_send_ns - prev;
        if tail > best.0 {
            best = (tail, prev, trace.last_send_ns);
        }
    }
    best
}

/// Datagrams numbered below `seq_at_event` (sent before the event) that
/// never arrived.
fn lost_before(trace: &FlowTrace, seq_at_event: u64) -> u64 {
    let mut seen: Vec<u64> = trace
        .arrivals
        .iter()
        .map(|a| a.seq)
        .filter(|s| *s < seq_at_event)
        .collect();
    seen.sort_unstable();
    seen.dedup();
    seq_at_event.saturating_sub(u64::try_from(seen.len()).unwrap_or(u64::MAX))
}

/// UTC time of day with microseconds, as the daemons' logs print it.
fn wall_clock() -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    let secs = now.as_secs() % 86_400;
    format!(
        "{:02}:{:02}:{:02}.{:06}Z",
        secs / 3600,
        secs / 60 % 60,
        secs % 60,
        now.subsec_micros()
    )
}

/// The largest silence between two arrivals before `event_ns`.
fn gap_before(trace: &FlowTrace, event_ns: u64) -> u64 {
    let end = trace.arrivals.partition_point(|a| a.at_ns <= event_ns);
    trace
        .arrivals
        .get(..end)
        .unwrap_or_default()
        .windows(2)
        .map(|w| w[1].at_ns.saturating_sub(w[0].at_ns))
        .max()
        .unwrap_or(0)
}

fn trial_line(t: &Trial, args: &FailoverArgs) -> String {
    let mut line = format!(
        "{} {} {} trial {}/{}: gap {:.1} ms, lost {} of {}, false takeovers {}",
        t.imp.name(),
        args.mode.name(),
        args.load.name(),
        t.index,
        args.trials,
        t.gap_ms,
        t.lost,
        t.sent,
        t.false_takeovers
    );
    if t.lost_before > 0 {
        let _ = write!(line, " ({} of them before the event)", t.lost_before);
    }
    if let Some(b) = t.b_master_ms {
        let _ = write!(line, ", B seen master after {b:.0} ms");
    }
    if let Some(n) = t.b_arp_requests.filter(|&n| n > 1) {
        let _ = write!(line, ", B asked for the server's MAC {n} times");
    }
    if t.gap_before_ms > 10.0 {
        let _ = write!(
            line,
            ", traffic already stopped {:.1} ms while A was healthy",
            t.gap_before_ms
        );
    }
    if t.max_send_gap_ms > SEND_STALL.as_secs_f64() * 1000.0 {
        let _ = write!(
            line,
            " (the generator stalled up to {:.1} ms)",
            t.max_send_gap_ms
        );
    }
    line
}

/// The figures of one implementation.
pub(crate) struct Summary {
    pub(crate) imp: Impl,
    pub(crate) trials: usize,
    pub(crate) p50: f64,
    pub(crate) p99: f64,
    pub(crate) max: f64,
    pub(crate) lost_p50: f64,
    pub(crate) lost_max: f64,
    pub(crate) false_takeovers: u64,
    pub(crate) generator_stalls: usize,
}

pub(crate) fn summarise(trials: &[Trial]) -> Vec<Summary> {
    let mut out = Vec::new();
    for imp in [Impl::Xvrrp, Impl::Keepalived] {
        let mine: Vec<&Trial> = trials.iter().filter(|t| t.imp == imp).collect();
        if mine.is_empty() {
            continue;
        }
        let gaps = sorted(mine.iter().map(|t| t.gap_ms));
        let lost = sorted(mine.iter().map(|t| f(t.lost)));
        out.push(Summary {
            imp,
            trials: mine.len(),
            p50: quantile(&gaps, 0.5).unwrap_or(f64::NAN),
            p99: quantile(&gaps, 0.99).unwrap_or(f64::NAN),
            max: gaps.last().copied().unwrap_or(f64::NAN),
            lost_p50: quantile(&lost, 0.5).unwrap_or(f64::NAN),
            lost_max: lost.last().copied().unwrap_or(f64::NAN),
            false_takeovers: mine.iter().map(|t| t.false_takeovers).sum(),
            generator_stalls: mine
                .iter()
                .filter(|t| t.max_send_gap_ms > SEND_STALL.as_secs_f64() * 1000.0)
                .count(),
        });
    }
    out
}

struct Report<'a> {
    args: &'a FailoverArgs,
    trials: &'a [Trial],
}

impl Report<'_> {
    fn json(&self) -> serde_json::Value {
        let (mode, load) = (self.args.mode.name(), self.args.load.name());
        let trials: Vec<serde_json::Value> = self
            .trials
            .iter()
            .map(|t| {
                json!({
                    "impl": t.imp.name(),
                    "mode": mode,
                    "load": load,
                    "trial": t.index,
                    "gap_ms": round2(t.gap_ms),
                    "lost": t.lost,
                    "lost_before_event": t.lost_before,
                    "sent": t.sent,
                    "false_takeovers": t.false_takeovers,
                    "b_master_ms": t.b_master_ms.map(round2),
                    "max_send_gap_ms": round2(t.max_send_gap_ms),
                    "gap_before_ms": round2(t.gap_before_ms),
                    "b_arp_requests": t.b_arp_requests,
                })
            })
            .collect();
        let summary: Vec<serde_json::Value> = summarise(self.trials)
            .iter()
            .map(|s| {
                json!({
                    "impl": s.imp.name(),
                    "mode": mode,
                    "load": load,
                    "trials": s.trials,
                    "p50_gap_ms": round2(s.p50),
                    "p99_gap_ms": round2(s.p99),
                    "max_gap_ms": round2(s.max),
                    "lost_p50": s.lost_p50,
                    "lost_max": s.lost_max,
                    "false_takeovers": s.false_takeovers,
                })
            })
            .collect();
        json!({
            "interval_ms": round2(self.args.interval.as_secs_f64() * 1000.0),
            "rate": self.args.rate,
            "master_down_interval_ms": round2(master_down_interval(self.args.interval).as_secs_f64() * 1000.0),
            "aim_gap_ms": round2(aim_gap(self.args.interval).as_secs_f64() * 1000.0),
            "trials": trials,
            "summary": summary,
        })
    }

    fn table(&self) -> String {
        let (mode, load) = (self.args.mode.name(), self.args.load.name());
        let mut t = String::new();
        let _ = writeln!(
            t,
            "{:<11} {:<5} {:<6} {:>6} {:>9} {:>9} {:>9} {:>9} {:>9} {:>8}",
            "impl",
            "mode",
            "load",
            "trials",
            "gap p50",
            "gap p99",
            "gap max",
            "lost p50",
            "lost max",
            "false to"
        );
        let _ = writeln!(
            t,
            "{:<11} {:<5} {:<6} {:>6} {:>9} {:>9} {:>9} {:>9} {:>9} {:>8}",
            "", "", "", "", "ms", "ms", "ms", "", "", ""
        );
        let summaries = summarise(self.trials);
        for s in &summaries {
            let _ = writeln!(
                t,
                "{:<11} {:<5} {:<6} {:>6} {:>9.1} {:>9.1} {:>9.1} {:>9.0} {:>9.0} {:>8}",
                s.imp.name(),
                mode,
                load,
                s.trials,
                s.p50,
                s.p99,
                s.max,
                s.lost_p50,
                s.lost_max,
                s.false_takeovers
            );
        }
        let interval_ms = self.args.interval.as_secs_f64() * 1000.0;
        let _ = writeln!(
            t,
            "\n{} datagrams/s through the LAN virtual address; adverts every {interval_ms:.0} ms; \
             B's Master_Down_Interval {:.1} ms.",
            self.args.rate,
            master_down_interval(self.args.interval).as_secs_f64() * 1000.0
        );
        if self.args.mode == Mode::Drain {
            if let Some(x) = summaries.iter().find(|s| s.imp == Impl::Xvrrp) {
                let verdict = if x.lost_max == 0.0 && x.false_takeovers == 0 {
                    "met"
                } else {
                    "NOT met"
                };
                let _ = writeln!(
                    t,
                    "Aim for xvrrp: 0 datagrams lost in every trial (A forwards until it hears \
                     B advertise as master), 0 false takeovers: {verdict}."
                );
            }
            if self.args.peer == Some(Peer::Keepalived) {
                let _ = writeln!(t, "{KEEPALIVED_NO_DRAIN}.");
            }
        } else if self.args.mode != Mode::Term {
            let aim = aim_gap(self.args.interval).as_secs_f64() * 1000.0;
            if let Some(x) = summaries.iter().find(|s| s.imp == Impl::Xvrrp) {
                let verdict = if x.p99 <= aim && x.false_takeovers == 0 {
                    "met"
                } else {
                    "NOT met"
                };
                let _ = writeln!(
                    t,
                    "Aim for xvrrp: p99 gap <= {aim:.1} ms (Master_Down_Interval + 2 ms), \
                     0 false takeovers: {verdict}."
                );
            }
        }
        for s in summaries.iter().filter(|s| s.generator_stalls > 0) {
            let _ = writeln!(
                t,
                "{}: in {} of {} trials the generator itself paused more than {} ms \
                 (see the progress lines).",
                s.imp.name(),
                s.generator_stalls,
                s.trials,
                SEND_STALL.as_millis()
            );
        }
        if self.args.mode != Mode::Cut && summaries.iter().any(|s| s.imp == Impl::Keepalived) {
            let _ = writeln!(
                t,
                "keepalived {}: A's kernel keeps forwarding what the client still sends to its MAC \
                 after keepalived is gone (a killed keepalived even leaves the virtual addresses \
                 on A), so its gap is not a failover's; xvrrp's fast path stops with its process. \
                 `--mode cut` fails both alike.",
                self.args.mode.name()
            );
        }
        t
    }
}

fn round2(v: f64) -> f64 {
    (v * 100.0).round() / 100.0
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::flow::Arrival;

    #[test]
    fn intervals_parse_in_centiseconds() {
        assert_eq!(parse_interval("10ms"), Ok(Duration::from_millis(10)));
        assert_eq!(parse_interval("0.1s"), Ok(Duration::from_millis(100)));
        assert_eq!(parse_interval("1s"), Ok(Duration::from_secs(1)));
        assert_eq!(parse_interval("20"), Ok(Duration::from_millis(20)));
        for bad in ["5ms", "15ms", "0", "abc", "41s", "-10ms"] {
            assert!(parse_interval(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn master_down_interval_of_b() {
        // 3 × 10 ms + (256 − 100) × 10 ms / 256 = 36.09375 ms.
        assert_eq!(
            master_down_interval(Duration::from_millis(10)),
            Duration::from_nanos(36_093_750)
        );
        assert_eq!(
            aim_gap(Duration::from_millis(10)),
            Duration::from_nanos(38_093_750)
        );
    }

    fn trace(times_ms: &[u64], last_send_ms: u64) -> FlowTrace {
        FlowTrace {
            first_send_ns: 0,
            last_send_ns: last_send_ms * 1_000_000,
            arrivals: times_ms
                .iter()
                .enumerate()
                .map(|(i, &t)| Arrival {
                    seq: u64::try_from(i).unwrap(),
                    at_ns: t * 1_000_000,
                })
                .collect(),
        }
    }

    #[test]
    fn gap_is_measured_from_the_last_arrival_before_the_event() {
        // A 30 ms stall before the event is not the failover's.
        let t = trace(&[0, 1, 31, 32, 33, 34, 75, 76, 77], 77);
        let (gap, from, to) = gap_after(&t, 50_000_000);
        assert_eq!(
            (gap, from, to),
            (41_000_000, 34_000_000, 75_000_000),
            "{gap}"
        );
    }

    #[test]
    fn gap_before_the_event_is_kept_apart() {
        let t = trace(&[0, 1, 31, 32, 33, 34, 75, 76, 77], 77);
        assert_eq!(gap_before(&t, 50_000_000), 30_000_000);
        assert_eq!(gap_before(&trace(&[], 10), 5_000_000), 0);
    }

    #[test]
    fn losses_before_the_event_are_counted_apart() {
        // Datagrams 0..6 sent before the event; 2 and 4 never arrived, nor 7.
        let mut t = trace(&[0, 1, 2, 3, 4, 5], 10);
        for (a, seq) in t.arrivals.iter_mut().zip([0, 1, 3, 5, 6, 8]) {
            a.seq = seq;
        }
        assert_eq!(lost_before(&t, 6), 2);
        assert_eq!(lost_before(&t, 0), 0);
    }

    #[test]
    fn a_flow_that_never_resumed_is_silent_to_its_end() {
        let t = trace(&[0, 1, 2], 500);
        assert_eq!(gap_after(&t, 2_500_000).0, 498_000_000);
        let empty = trace(&[], 100);
        assert_eq!(gap_after(&empty, 10_000_000).0, 100_000_000);
    }

    #[test]
    fn summary_quantiles_and_sums() {
        let trial = |imp, gap, lost, ft| Trial {
            imp,
            index: 1,
            gap_ms: gap,
            gap_from_ms: 0.0,
            gap_to_ms: gap,
            lost,
            lost_before: 0,
            sent: 1000,
            false_takeovers: ft,
            b_master_ms: None,
            max_send_gap_ms: 1.0,
            gap_before_ms: 0.0,
            b_arp_requests: None,
            arrivals: Vec::new(),
            seq_at_event: 0,
        };
        let trials = vec![
            trial(Impl::Xvrrp, 30.0, 60, 0),
            trial(Impl::Xvrrp, 40.0, 80, 1),
            trial(Impl::Xvrrp, 35.0, 70, 0),
            trial(Impl::Keepalived, 50.0, 100, 0),
        ];
        let s = summarise(&trials);
        assert_eq!(s.len(), 2);
        assert_eq!((s[0].p50, s[0].p99, s[0].max), (35.0, 40.0, 40.0));
        assert_eq!((s[0].lost_p50, s[0].lost_max), (70.0, 80.0));
        assert_eq!(s[0].false_takeovers, 1);
        assert_eq!((s[1].imp, s[1].trials), (Impl::Keepalived, 1));
    }
}
