//! Traffic tools for measuring a failover: a numbered UDP flow, a ping check
//! and a neighbour-table lookup, all run inside the lab's namespaces.
//!
//! The flow's sender and receiver are threads that enter their namespace
//! with `setns`, so `xvrrp demo` and the tests measure traffic without child
//! processes. Each datagram carries a magic number, a sequence number and the
//! send time (CLOCK_MONOTONIC, so it compares across processes on one host);
//! the receiver records distinct sequence numbers and the largest silence
//! between arrivals. `xvrrp flow send|recv` (hidden) wraps the same code.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::{self, JoinHandle};
use std::time::Duration;

use anyhow::{anyhow, bail, Context, Result};

use crate::netns;

/// `xvrrp flow`: run one side of a numbered UDP flow by hand.
#[derive(clap::Args, Debug)]
pub struct FlowArgs {
    /// Which side to run.
    #[command(subcommand)]
    action: FlowAction,
}

/// The two sides of a flow.
#[derive(clap::Subcommand, Debug)]
enum FlowAction {
    /// Send numbered datagrams at a fixed rate; print a JSON summary.
    Send {
        /// Network namespace to send from (default: the current one).
        #[arg(long)]
        ns: Option<String>,
        /// Destination address and port.
        #[arg(long, default_value = "203.0.113.100:9000")]
        to: SocketAddr,
        /// Datagrams per second.
        #[arg(long, default_value_t = DEFAULT_RATE)]
        rate: u32,
        /// UDP payload size in bytes (at least the 20-byte header).
        #[arg(long, default_value_t = DEFAULT_SIZE)]
        size: usize,
        /// How long to send, in seconds (Ctrl-C stops early).
        #[arg(long, default_value_t = 10.0)]
        seconds: f64,
    },
    /// Receive a flow and print what arrived and the largest gap as JSON.
    Recv {
        /// Network namespace to receive in (default: the current one).
        #[arg(long)]
        ns: Option<String>,
        /// Address and port to listen on.
        #[arg(long, default_value = "0.0.0.0:9000")]
        listen: SocketAddr,
        /// How long to listen, in seconds (Ctrl-C stops early).
        #[arg(long, default_value_t = 10.0)]
        seconds: f64,
    },
}

/// Default flow rate, datagrams per second.
pub(crate) const DEFAULT_RATE: u32 = 2000;
/// Default UDP payload size.
const DEFAULT_SIZE: usize = 64;
/// Default UDP port of the flow.
pub const DEFAULT_PORT: u16 = 9000;

/// Marks our datagrams, so stray traffic on the port is ignored.
const MAGIC: u32 = 0x7876_666c;
/// magic (4) + sequence number (8) + send time in ns (8).
const HEADER_LEN: usize = 20;
/// Sequence numbers beyond this are ignored: bounds the receiver's bitmap
/// (8 MiB) whatever arrives on the port.
const MAX_SEQ: u64 = 1 << 26;
/// How often blocked threads look at their stop flag.
const POLL: Duration = Duration::from_millis(20);
/// How long the receiver keeps listening after the sender stopped, for the
/// datagrams still in flight.
const DRAIN: Duration = Duration::from_millis(200);

/// Runs `xvrrp flow ...`.
pub fn run(args: &FlowArgs) -> Result<()> {
    let stop = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(sig, Arc::clone(&stop)).context("install signal handler")?;
    }
    match &args.action {
        FlowAction::Send {
            ns,
            to,
            rate,
            size,
            seconds,
        } => {
            let sender = Sender::start(ns.as_deref(), *to, *rate, *size, None)?;
            wait_or_stop(&stop, *seconds);
            let sent = sender.stop()?;
            let json = serde_json::json!({
                "sent": sent.sent,
                "send_errors": sent.send_errors,
                "max_send_gap_ms": ms(sent.max_send_gap_ns),
                "duration_ms": ms(sent.last_ns.saturating_sub(sent.first_ns)),
            });
            println!("{json}");
        }
        FlowAction::Recv {
            ns,
            listen,
            seconds,
        } => {
            let receiver = Receiver::start(ns.as_deref(), *listen, FlowOptions::default())?;
            wait_or_stop(&stop, *seconds);
            let log = receiver.stop()?;
            // Without the sender's count, the highest sequence number seen
            // stands in for "sent" (tail losses are invisible here).
            let sent = log.max_seq.map_or(0, |s| s + 1);
            let epoch = log.first_send_ns.unwrap_or(0);
            let json = serde_json::json!({
                "received": log.distinct,
                "duplicates": log.duplicates,
                "lost": sent.saturating_sub(log.distinct),
                "highest_seq": log.max_seq,
                "max_gap_ms": ms(log.max_gap_ns),
                "gap_from_ms": log.gap_from_ns.map(|t| ms(t.saturating_sub(epoch))),
                "gap_to_ms": log.gap_to_ns.map(|t| ms(t.saturating_sub(epoch))),
                "max_delay_ms": ms(log.max_delay_ns),
            });
            println!("{json}");
        }
    }
    Ok(())
}

fn wait_or_stop(stop: &AtomicBool, seconds: f64) {
    let total = Duration::try_from_secs_f64(seconds.max(0.0)).unwrap_or(Duration::MAX);
    let start = std::time::Instant::now();
    while !stop.load(Ordering::Relaxed) && start.elapsed() < total {
        thread::sleep(POLL);
    }
}

/// Nanoseconds to milliseconds, for reports.
fn ms(ns: u64) -> f64 {
    // Precision loss above 2^53 ns (104 days) does not matter for a report.
    #[allow(clippy::cast_precision_loss)]
    let v = ns as f64 / 1e6;
    v
}

/// CLOCK_MONOTONIC in nanoseconds: comparable between processes and threads
/// of one host, unlike `Instant`, which cannot leave the process. The flow's
/// send and arrival times are on this clock, so an event (a failover
/// triggered by a benchmark) can be placed among them.
pub fn monotonic_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec; CLOCK_MONOTONIC always
    // exists on Linux, so the call only writes `ts`.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    let secs = u64::try_from(ts.tv_sec).unwrap_or(0);
    let nanos = u64::try_from(ts.tv_nsec).unwrap_or(0);
    secs.saturating_mul(1_000_000_000).saturating_add(nanos)
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panicked peer thread leaves plain counters behind: still usable.
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Spawns `f` on a thread that first enters `ns` (if given). The thread
/// reports readiness (its socket bound) through `ready` before its loop.
fn spawn_in<T, F>(
    name: &str,
    ns: Option<&str>,
    realtime: Option<i32>,
    f: F,
) -> Result<(JoinHandle<Result<T>>, Result<()>)>
where
    T: Send + 'static,
    F: FnOnce(mpsc::Sender<Result<()>>) -> Result<T> + Send + 'static,
{
    let (tx, rx) = mpsc::channel();
    let ns = ns.map(str::to_owned);
    let handle = thread::Builder::new()
        .name(name.to_owned())
        .spawn(move || {
            if let Some(priority) = realtime {
                // Best effort: without CAP_SYS_NICE the flow runs at normal
                // priority, and a starved sender shows in max_send_gap.
                let _ = crate::bench_common::set_fifo(priority);
            }
            if let Some(ns) = &ns {
                if let Err(e) = netns::enter(ns) {
                    let msg = format!("{e:#}");
                    // The spawner waits on this channel; if it is gone, the
                    // error is returned through join instead.
                    let _ = tx.send(Err(anyhow!(msg)));
                    return Err(e);
                }
            }
            f(tx)
        })
        .context("cannot spawn a flow thread")?;
    let ready = rx
        .recv_timeout(Duration::from_secs(5))
        .unwrap_or_else(|_| Err(anyhow!("{name} thread did not start")));
    Ok((handle, ready))
}

fn join<T>(handle: JoinHandle<Result<T>>) -> Result<T> {
    handle.join().map_err(|_| anyhow!("flow thread panicked"))?
}

/// What a sender did.
#[derive(Clone, Copy, Debug, Default)]
struct SendLog {
    /// Datagrams handed to the kernel or attempted (a failed send counts:
    /// for the flow it is a lost datagram).
    sent: u64,
    /// Sends the kernel refused (no route, neighbour failed, ...).
    send_errors: u64,
    /// Monotonic time of the first and last send, ns.
    first_ns: u64,
    /// Monotonic time of the last send, ns.
    last_ns: u64,
    /// Largest interval between two sends: a sender starved of CPU shows up
    /// here, not as network loss.
    max_send_gap_ns: u64,
}

/// A thread sending numbered datagrams at a fixed rate until stopped.
#[derive(Debug)]
struct Sender {
    stop: Arc<AtomicBool>,
    handle: Option<JoinHandle<Result<SendLog>>>,
}

impl Sender {
    /// Starts sending to `dst` from namespace `ns` at `rate` datagrams per
    /// second, each `size` bytes of UDP payload.
    fn start(
        ns: Option<&str>,
        dst: SocketAddr,
        rate: u32,
        size: usize,
        realtime: Option<i32>,
    ) -> Result<Sender> {
        if rate == 0 {
            bail!("flow rate must be at least 1 datagram per second");
        }
        let size = size.max(HEADER_LEN);
        let stop = Arc::new(AtomicBool::new(false));
        let stop_thread = Arc::clone(&stop);
        let (handle, ready) = spawn_in("flow-send", ns, realtime, move |ready| {
            let bind: SocketAddr = match dst.ip() {
                IpAddr::V4(_) => (Ipv4Addr::UNSPECIFIED, 0).into(),
                IpAddr::V6(_) => (Ipv6Addr::UNSPECIFIED, 0).into(),
            };
            let socket = match UdpSocket::bind(bind) {
                Ok(s) => s,
                Err(e) => {
                    let _ = ready.send(Err(anyhow!("bind {bind}: {e}")));
                    return Err(e.into());
                }
            };
            let _ = ready.send(Ok(()));
            send_loop(&socket, dst, rate, size, &stop_thread)
        })?;
        let sender = Sender {
            stop,
            handle: Some(handle),
        };
        if let Err(e) = ready {
            let _ = sender.stop();
            return Err(e.context("starting the flow sender"));
        }
        Ok(sender)
    }

    /// Stops sending and returns what was sent.
    fn stop(mut self) -> Result<SendLog> {
        self.stop.store(true, Ordering::Relaxed);
        let handle = self.handle.take().context("flow sender already stopped")?;
        join(handle)
    }
}

impl Drop for Sender {
    /// A sender dropped without `stop` (an error or panic on the way) must
    /// not keep sending into the lab: raise its flag; it ends on its own.
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

fn send_loop(
    socket: &UdpSocket,
    dst: SocketAddr,
    rate: u32,
    size: usize,
    stop: &AtomicBool,
) -> Result<SendLog> {
    let interval = 1_000_000_000 / u64::from(rate);
    let mut buf = vec![0u8; size];
    buf[..4].copy_from_slice(&MAGIC.to_be_bytes());
    let mut log = SendLog::default();
    let mut base = monotonic_ns();
    let mut slot: u64 = 0;
    while !stop.load(Ordering::Relaxed) {
        let due = base.saturating_add(slot.saturating_mul(interval));
        let now = monotonic_ns();
        if now < due {
            thread::sleep(Duration::from_nanos(due - now).min(POLL));
            continue;
        }
        if now - due > 50_000_000 {
            // Descheduled for a long time: resume the pace from now rather
            // than sending a burst that would hide the stall.
            base = now;
            slot = 0;
        }
        let seq = log.sent;
        buf[4..12].copy_from_slice(&seq.to_be_bytes());
        buf[12..20].copy_from_slice(&now.to_be_bytes());
        if socket.send_to(&buf, dst).is_err() {
            log.send_errors += 1;
        }
        if log.sent == 0 {
            log.first_ns = now;
        } else {
            log.max_send_gap_ns = log.max_send_gap_ns.max(now - log.last_ns);
        }
        log.last_ns = now;
        log.sent += 1;
        slot += 1;
    }
    Ok(log)
}

/// What a receiver saw.
#[derive(Clone, Debug, Default)]
struct RecvLog {
    /// Distinct sequence numbers received.
    distinct: u64,
    /// Datagrams received more than once.
    duplicates: u64,
    /// Highest sequence number received.
    max_seq: Option<u64>,
    /// Monotonic arrival time of the first and last datagram, ns.
    first_arrival_ns: Option<u64>,
    /// Monotonic arrival time of the last datagram, ns.
    last_arrival_ns: Option<u64>,
    /// Send time carried by the earliest-sent datagram received, ns.
    first_send_ns: Option<u64>,
    /// Largest interval between two consecutive arrivals, ns.
    max_gap_ns: u64,
    /// Arrival times bounding that interval.
    gap_from_ns: Option<u64>,
    /// Arrival time ending that interval.
    gap_to_ns: Option<u64>,
    /// Largest one-way delay (arrival minus send time), ns.
    max_delay_ns: u64,
    seen: Vec<u64>,
    /// Every first arrival in order, when the flow is traced.
    arrivals: Option<Vec<Arrival>>,
}

impl RecvLog {
    fn record(&mut self, seq: u64, sent_ns: u64, now: u64) {
        if seq >= MAX_SEQ {
            return;
        }
        let word = usize::try_from(seq / 64).unwrap_or(usize::MAX);
        let bit = 1u64 << (seq % 64);
        if self.seen.len() <= word {
            self.seen.resize(word + 1, 0);
        }
        let Some(slot) = self.seen.get_mut(word) else {
            return;
        };
        if *slot & bit != 0 {
            self.duplicates += 1;
            return;
        }
        *slot |= bit;
        self.distinct += 1;
        if let Some(arrivals) = &mut self.arrivals {
            arrivals.push(Arrival { seq, at_ns: now });
        }
        self.max_seq = Some(self.max_seq.map_or(seq, |m| m.max(seq)));
        self.first_send_ns = Some(self.first_send_ns.map_or(sent_ns, |f| f.min(sent_ns)));
        self.max_delay_ns = self.max_delay_ns.max(now.saturating_sub(sent_ns));
        if let Some(last) = self.last_arrival_ns {
            let gap = now.saturating_sub(last);
            if gap > self.max_gap_ns {
                self.max_gap_ns = gap;
                self.gap_from_ns = Some(last);
                self.gap_to_ns = Some(now);
            }
        } else {
            self.first_arrival_ns = Some(now);
        }
        self.last_arrival_ns = Some(now);
    }
}

/// Parses one of our datagrams: `(seq, send time)`.
fn parse_datagram(buf: &[u8]) -> Option<(u64, u64)> {
    let magic = u32::from_be_bytes(buf.get(0..4)?.try_into().ok()?);
    if magic != MAGIC {
        return None;
    }
    let seq = u64::from_be_bytes(buf.get(4..12)?.try_into().ok()?);
    let sent = u64::from_be_bytes(buf.get(12..20)?.try_into().ok()?);
    Some((seq, sent))
}

/// A thread receiving a flow until stopped; its log can be read meanwhile.
#[derive(Debug)]
struct Receiver {
    stop: Arc<AtomicBool>,
    log: Arc<Mutex<RecvLog>>,
    handle: Option<JoinHandle<Result<()>>>,
}

impl Receiver {
    /// Starts receiving on `listen` inside namespace `ns`; returns once the
    /// socket is bound.
    fn start(ns: Option<&str>, listen: SocketAddr, options: FlowOptions) -> Result<Receiver> {
        let stop = Arc::new(AtomicBool::new(false));
        let log = Arc::new(Mutex::new(RecvLog {
            arrivals: options.trace.then(Vec::new),
            ..RecvLog::default()
        }));
        let (stop_thread, log_thread) = (Arc::clone(&stop), Arc::clone(&log));
        let (handle, ready) = spawn_in("flow-recv", ns, options.realtime, move |ready| {
            let socket = match UdpSocket::bind(listen)
                .and_then(|s| s.set_read_timeout(Some(POLL)).map(|()| s))
            {
                Ok(s) => s,
                Err(e) => {
                    let _ = ready.send(Err(anyhow!("bind {listen}: {e}")));
                    return Err(e.into());
                }
            };
            let _ = ready.send(Ok(()));
            recv_loop(&socket, &stop_thread, &log_thread)
        })?;
        let receiver = Receiver {
            stop,
            log,
            handle: Some(handle),
        };
        if let Err(e) = ready {
            let _ = receiver.stop();
            return Err(e.context("starting the flow receiver"));
        }
        Ok(receiver)
    }

    /// Distinct datagrams so far and the time of the last arrival.
    fn progress(&self) -> (u64, Option<u64>) {
        let log = lock(&self.log);
        (log.distinct, log.last_arrival_ns)
    }

    /// Stops receiving and returns the log.
    fn stop(mut self) -> Result<RecvLog> {
        self.stop.store(true, Ordering::Relaxed);
        let handle = self
            .handle
            .take()
            .context("flow receiver already stopped")?;
        join(handle)?;
        Ok(std::mem::take(&mut *lock(&self.log)))
    }
}

impl Drop for Receiver {
    /// Like [`Sender`]'s: a receiver dropped without `stop` ends on its own.
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

fn recv_loop(socket: &UdpSocket, stop: &AtomicBool, log: &Mutex<RecvLog>) -> Result<()> {
    let mut buf = [0u8; 2048];
    while !stop.load(Ordering::Relaxed) {
        match socket.recv_from(&mut buf) {
            Ok((n, _)) => {
                let now = monotonic_ns();
                if let Some((seq, sent)) = buf.get(..n).and_then(parse_datagram) {
                    lock(log).record(seq, sent, now);
                }
            }
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock
                        | std::io::ErrorKind::TimedOut
                        | std::io::ErrorKind::Interrupted
                ) => {}
            Err(e) => return Err(anyhow!(e).context("flow receive")),
        }
    }
    Ok(())
}

/// The outcome of a flow, times in ms from its first send.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct FlowReport {
    /// Datagrams sent.
    pub sent: u64,
    /// Distinct datagrams received.
    pub received: u64,
    /// `sent - received`.
    pub lost: u64,
    /// Datagrams received twice or more.
    pub duplicates: u64,
    /// Sends the kernel refused.
    pub send_errors: u64,
    /// Largest silence at the receiver: between consecutive arrivals, or
    /// from the first send to the first arrival, or from the last arrival
    /// to the last send (a flow that never resumed has a gap to its end).
    pub max_gap_ms: f64,
    /// When that silence began.
    pub gap_from_ms: f64,
    /// When that silence ended.
    pub gap_to_ms: f64,
    /// Largest interval between two sends (a starved sender, not loss).
    pub max_send_gap_ms: f64,
    /// Time from first to last send.
    pub duration_ms: f64,
}

impl FlowReport {
    fn new(sent: &SendLog, recv: &RecvLog) -> FlowReport {
        let epoch = sent.first_ns;
        // Candidate silences as (from, to) in monotonic ns.
        let mut gaps: Vec<(u64, u64)> = Vec::new();
        match (recv.first_arrival_ns, recv.last_arrival_ns) {
            (Some(first), Some(last)) => {
                gaps.push((sent.first_ns, first.max(sent.first_ns)));
                if let (Some(from), Some(to)) = (recv.gap_from_ns, recv.gap_to_ns) {
                    gaps.push((from, to));
                }
                gaps.push((last.min(sent.last_ns), sent.last_ns));
            }
            _ => gaps.push((sent.first_ns, sent.last_ns)),
        }
        let (from, to) = gaps
            .into_iter()
            .max_by_key(|&(from, to)| to.saturating_sub(from))
            .unwrap_or((epoch, epoch));
        let rel = |t: u64| ms(t.saturating_sub(epoch));
        FlowReport {
            sent: sent.sent,
            received: recv.distinct,
            lost: sent.sent.saturating_sub(recv.distinct),
            duplicates: recv.duplicates,
            send_errors: sent.send_errors,
            max_gap_ms: ms(to.saturating_sub(from)),
            gap_from_ms: rel(from),
            gap_to_ms: rel(to),
            max_send_gap_ms: ms(sent.max_send_gap_ns),
            duration_ms: ms(sent.last_ns.saturating_sub(sent.first_ns)),
        }
    }
}

impl std::fmt::Display for FlowReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "sent {}, received {}, lost {}; largest gap {:.1} ms (from {:.0} ms to {:.0} ms into the flow)",
            self.sent, self.received, self.lost, self.max_gap_ms, self.gap_from_ms, self.gap_to_ms
        )
    }
}

/// One datagram's first arrival at the receiver.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Arrival {
    /// Its sequence number.
    pub seq: u64,
    /// When it arrived, on [`monotonic_ns`]'s clock.
    pub at_ns: u64,
}

/// Every arrival of a traced flow, with the bounds of its sending, all on
/// [`monotonic_ns`]'s clock.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FlowTrace {
    /// When the first datagram was sent.
    pub first_send_ns: u64,
    /// When the last datagram was sent.
    pub last_send_ns: u64,
    /// First arrivals in arrival order (duplicates left out).
    pub arrivals: Vec<Arrival>,
}

/// How a flow's threads run, beyond its addresses and rate.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FlowOptions {
    /// Keep every arrival ([`Flow::stop_traced`]); memory grows by 16 bytes
    /// per datagram, so for flows of seconds, not hours.
    pub trace: bool,
    /// Run the sender and receiver threads in SCHED_FIFO at this priority,
    /// so that a benchmark loading the CPU measures the gateway and not a
    /// starved generator (best effort: without CAP_SYS_NICE they run at
    /// normal priority).
    pub realtime: Option<i32>,
}

/// A UDP flow from a client namespace to a server namespace.
#[derive(Debug)]
pub struct Flow {
    sender: Sender,
    receiver: Receiver,
}

impl Flow {
    /// Starts a receiver on `dst`'s port in `server_ns`, then a sender in
    /// `client_ns` sending to `dst` at `rate` datagrams per second.
    pub fn start(client_ns: &str, server_ns: &str, dst: SocketAddr, rate: u32) -> Result<Flow> {
        Flow::start_with(client_ns, server_ns, dst, rate, FlowOptions::default())
    }

    /// [`Flow::start`] with `options`.
    pub fn start_with(
        client_ns: &str,
        server_ns: &str,
        dst: SocketAddr,
        rate: u32,
        options: FlowOptions,
    ) -> Result<Flow> {
        let listen: SocketAddr = match dst.ip() {
            IpAddr::V4(_) => (Ipv4Addr::UNSPECIFIED, dst.port()).into(),
            IpAddr::V6(_) => (Ipv6Addr::UNSPECIFIED, dst.port()).into(),
        };
        let receiver = Receiver::start(Some(server_ns), listen, options)?;
        let sender = match Sender::start(Some(client_ns), dst, rate, DEFAULT_SIZE, options.realtime)
        {
            Ok(s) => s,
            Err(e) => {
                let _ = receiver.stop();
                return Err(e);
            }
        };
        Ok(Flow { sender, receiver })
    }

    /// Distinct datagrams received so far.
    pub fn received(&self) -> u64 {
        self.receiver.progress().0
    }

    /// When the last datagram arrived so far, on [`monotonic_ns`]'s clock.
    pub fn last_arrival_ns(&self) -> Option<u64> {
        self.receiver.progress().1
    }

    /// Stops the flow (sender first, then the receiver once the datagrams in
    /// flight had time to land) and returns its report.
    pub fn stop(self) -> Result<FlowReport> {
        self.stop_traced().map(|(report, _)| report)
    }

    /// [`Flow::stop`], also returning every arrival if the flow was started
    /// with [`FlowOptions::trace`] (else the trace has none).
    pub fn stop_traced(self) -> Result<(FlowReport, FlowTrace)> {
        let sent = self.sender.stop();
        thread::sleep(DRAIN);
        let mut recv = self.receiver.stop()?;
        let sent = sent?;
        let report = FlowReport::new(&sent, &recv);
        let trace = FlowTrace {
            first_send_ns: sent.first_ns,
            last_send_ns: sent.last_ns,
            arrivals: recv.arrivals.take().unwrap_or_default(),
        };
        Ok((report, trace))
    }
}

/// Pings `dst` from namespace `ns`: `count` echo requests 200 ms apart, all
/// of which must be answered within `timeout`.
///
/// # Errors
/// Missing replies (with ping's summary), or ping cannot run.
pub fn ping(ns: &str, dst: IpAddr, count: u32, timeout: Duration) -> Result<()> {
    let deadline = timeout.as_secs().max(1).to_string();
    let out = netns::exec_output(
        ns,
        "ping",
        &[
            "-n",
            "-q",
            "-c",
            &count.to_string(),
            "-i",
            "0.2",
            "-w",
            &deadline,
            &dst.to_string(),
        ],
    )?;
    if out.status.success() {
        return Ok(());
    }
    let stdout = String::from_utf8_lossy(&out.stdout);
    let summary = stdout
        .lines()
        .find(|l| l.contains("packets transmitted"))
        .unwrap_or("no summary");
    bail!(
        "ping {dst} from {ns} failed: {summary}{}",
        String::from_utf8_lossy(&out.stderr).trim()
    )
}

/// The link-layer address namespace `ns` has for neighbour `ip`, if it has a
/// usable (not failed, not incomplete) entry.
pub fn neighbour_mac(ns: &str, ip: IpAddr) -> Result<Option<String>> {
    let out = netns::ip(&["-n", ns, "-j", "neigh", "show", &ip.to_string()])?;
    let entries: serde_json::Value =
        serde_json::from_str(if out.trim().is_empty() { "[]" } else { &out })
            .with_context(|| format!("parse `ip -j neigh` of {ns}"))?;
    for entry in entries.as_array().into_iter().flatten() {
        let failed = entry
            .get("state")
            .and_then(|s| s.as_array())
            .is_some_and(|s| {
                s.iter()
                    .any(|v| matches!(v.as_str(), Some("FAILED" | "INCOMPLETE")))
            });
        if let (false, Some(mac)) = (failed, entry.get("lladdr").and_then(|v| v.as_str())) {
            return Ok(Some(mac.to_owned()));
        }
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn datagram(seq: u64, sent: u64) -> Vec<u8> {
        let mut b = MAGIC.to_be_bytes().to_vec();
        b.extend_from_slice(&seq.to_be_bytes());
        b.extend_from_slice(&sent.to_be_bytes());
        b
    }

    #[test]
    fn datagram_round_trip_and_foreign_rejected() {
        assert_eq!(parse_datagram(&datagram(7, 99)), Some((7, 99)));
        assert_eq!(parse_datagram(&datagram(7, 99)[..19]), None);
        let mut foreign = datagram(7, 99);
        foreign[0] ^= 1;
        assert_eq!(parse_datagram(&foreign), None);
    }

    #[test]
    fn report_counts_loss_duplicates_and_largest_gap() {
        let ms = 1_000_000u64;
        let sent = SendLog {
            sent: 10,
            send_errors: 0,
            first_ns: 1000 * ms,
            last_ns: 1009 * ms,
            max_send_gap_ns: ms,
        };
        let mut recv = RecvLog::default();
        // Seqs 0..=2 on time, 3..=5 lost, 6..=9 late, 7 twice.
        for seq in [0u64, 1, 2] {
            recv.record(seq, 1000 * ms + seq * ms, 1000 * ms + seq * ms + 100);
        }
        for seq in [6u64, 7, 7, 8, 9] {
            recv.record(seq, 1000 * ms + seq * ms, 1000 * ms + seq * ms + 100);
        }
        let r = FlowReport::new(&sent, &recv);
        assert_eq!((r.sent, r.received, r.lost, r.duplicates), (10, 7, 3, 1));
        assert!((r.max_gap_ms - 4.0).abs() < 1e-9, "{r}");
        assert!((r.gap_from_ms - 2.0001).abs() < 1e-9, "{r}");
    }

    #[test]
    fn report_counts_a_flow_that_never_resumed_to_its_end() {
        let ms = 1_000_000u64;
        let sent = SendLog {
            sent: 100,
            first_ns: 0,
            last_ns: 99 * ms,
            ..SendLog::default()
        };
        let mut recv = RecvLog::default();
        for seq in 0u64..10 {
            recv.record(seq, seq * ms, seq * ms);
        }
        let r = FlowReport::new(&sent, &recv);
        assert_eq!(r.lost, 90);
        assert!((r.max_gap_ms - 90.0).abs() < 1e-9, "{r}");
        let nothing = FlowReport::new(&sent, &RecvLog::default());
        assert!((nothing.max_gap_ms - 99.0).abs() < 1e-9, "{nothing}");
    }

    #[test]
    fn sequence_numbers_beyond_the_bound_are_ignored() {
        let mut recv = RecvLog::default();
        recv.record(MAX_SEQ, 0, 0);
        assert_eq!(recv.distinct, 0);
        assert!(recv.seen.is_empty());
    }
}
