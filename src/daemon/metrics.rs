//! The Prometheus endpoint (`metrics_listen` in `[global]`): `GET /metrics`
//! over HTTP/1.x, in the text exposition format 0.0.4.
//!
//! Served by threads of its own, never by the control thread nor the
//! workers:
//! - the fast path's figures are read at scrape time, as `stats` reads
//!   them: the workers' atomic counters (summed on read), the XDP filters'
//!   maps and the AF_XDP sockets' kernel counters ([`StatsReader`]);
//! - the control plane's figures are numbers the control thread stores
//!   once per pass into atomics ([`Publisher::update`]: a few relaxed
//!   stores per router, no allocation, no text); the table of routers is
//!   swapped (`ArcSwap`) only when the set of routers changes.
//!
//! One acceptor thread hands connections to [`HANDLERS`] handler threads
//! through a queue of [`BACKLOG`]; a connection that finds it full is
//! closed at once. Each connection gets one request (at most
//! [`MAX_REQUEST`] bytes, read and write timeouts of [`IO_TIMEOUT`]) and
//! one answer, then is closed: a client that never sends, or never reads,
//! holds one handler for a few seconds at most, and the election none.

use std::{
    fmt::Write as _,
    io::{Read, Write},
    net::{SocketAddr, TcpListener, TcpStream},
    sync::{
        atomic::{AtomicU64, AtomicU8, Ordering},
        Arc,
    },
    time::{Duration, Instant},
};

use anyhow::Context;
use arc_swap::ArcSwap;
use crossbeam::channel::{self, Receiver};
use xvrrp_control::{vrrp::Routers, DropReason};
use xvrrp_dataplane::{stats::SocketStats, xdp_maps::XdpCounter, StatsReader};

use super::{notify::NotifyCounters, tx::TxCounters};

/// Threads answering scrapes.
const HANDLERS: usize = 2;
/// Accepted connections waiting for a handler, at most.
const BACKLOG: usize = 16;
/// Longest request head read (request line and headers).
pub(super) const MAX_REQUEST: usize = 8 * 1024;
/// The most read of a refused request before closing.
const DRAIN: u64 = 64 * 1024;
/// Read and write timeout of a connection.
const IO_TIMEOUT: Duration = Duration::from_secs(2);
/// Content type of the text exposition format.
const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";
/// The operator-facing state names, by [`state_code`].
const STATES: [&str; 4] = ["init", "backup", "master", "fault"];

/// One router's figures, as the control thread last stored them.
#[derive(Debug)]
struct InstanceFigures {
    name: String,
    port: String,
    vrid: u8,
    /// Index into [`STATES`].
    state: AtomicU8,
    priority: AtomicU8,
    effective_priority: AtomicU8,
    transitions: AtomicU64,
    adverts_rx: AtomicU64,
    adverts_tx: AtomicU64,
    address_list_errors: AtomicU64,
    takeovers_deferred: AtomicU64,
    takeovers_unconfirmed: AtomicU64,
}

/// The control plane's figures, stored by the control thread each pass.
#[derive(Debug)]
pub(super) struct ControlFigures {
    /// By router id.
    instances: Vec<InstanceFigures>,
    control_drops: [AtomicU64; DropReason::COUNT],
    late_wakeups: AtomicU64,
    tx_sent: AtomicU64,
    tx_deferred: AtomicU64,
    tx_dropped: AtomicU64,
    /// Passes of the control loop that stored figures.
    passes: AtomicU64,
    /// Time the control thread spent storing them, in nanoseconds.
    update_nanos: AtomicU64,
}

impl ControlFigures {
    fn new(routers: &Routers) -> Self {
        let instances = routers
            .iter()
            .map(|r| InstanceFigures {
                name: r.spec().name.clone(),
                port: r.spec().port.clone(),
                vrid: r.spec().vrid,
                state: AtomicU8::new(0),
                priority: AtomicU8::new(0),
                effective_priority: AtomicU8::new(0),
                transitions: AtomicU64::new(0),
                adverts_rx: AtomicU64::new(0),
                adverts_tx: AtomicU64::new(0),
                address_list_errors: AtomicU64::new(0),
                takeovers_deferred: AtomicU64::new(0),
                takeovers_unconfirmed: AtomicU64::new(0),
            })
            .collect();
        Self {
            instances,
            control_drops: std::array::from_fn(|_| AtomicU64::new(0)),
            late_wakeups: AtomicU64::new(0),
            tx_sent: AtomicU64::new(0),
            tx_deferred: AtomicU64::new(0),
            tx_dropped: AtomicU64::new(0),
            passes: AtomicU64::new(0),
            update_nanos: AtomicU64::new(0),
        }
    }

    /// Whether this table lists exactly `routers`, in order.
    fn lists(&self, routers: &Routers) -> bool {
        self.instances.len() == routers.len()
            && self
                .instances
                .iter()
                .zip(routers.iter())
                .all(|(f, r)| f.name == r.spec().name && f.port == r.spec().port)
    }
}

fn state_code(name: &str) -> u8 {
    STATES
        .iter()
        .position(|s| *s == name)
        .and_then(|i| u8::try_from(i).ok())
        .unwrap_or(0)
}

/// The control thread's end: stores the figures each pass.
#[derive(Debug)]
pub(super) struct Publisher {
    current: Arc<ControlFigures>,
    shared: Arc<ArcSwap<ControlFigures>>,
}

impl Publisher {
    /// Stores the control plane's figures for the next scrape: a few
    /// relaxed atomic stores per router. A new table of routers (a reload
    /// added or removed one) is built and swapped in, the only allocation.
    pub(super) fn update(
        &mut self,
        routers: &Routers,
        control_drops: &[u64; DropReason::COUNT],
        late_wakeups: u64,
        tx: TxCounters,
    ) {
        let start = Instant::now();
        if !self.current.lists(routers) {
            let fresh = ControlFigures::new(routers);
            for (to, from) in [
                (&fresh.passes, &self.current.passes),
                (&fresh.update_nanos, &self.current.update_nanos),
            ] {
                to.store(from.load(Ordering::Relaxed), Ordering::Relaxed);
            }
            self.current = Arc::new(fresh);
            self.shared.store(Arc::clone(&self.current));
        }
        let f = &*self.current;
        for (fig, r) in f.instances.iter().zip(routers.iter()) {
            let (inst, c) = (r.instance(), r.counters());
            fig.state
                .store(state_code(r.state_name()), Ordering::Relaxed);
            fig.priority.store(inst.priority(), Ordering::Relaxed);
            fig.effective_priority
                .store(inst.effective_priority(), Ordering::Relaxed);
            fig.transitions.store(inst.transitions(), Ordering::Relaxed);
            fig.adverts_rx.store(c.adverts_rx, Ordering::Relaxed);
            fig.adverts_tx.store(c.adverts_tx, Ordering::Relaxed);
            fig.address_list_errors
                .store(c.address_list_errors, Ordering::Relaxed);
            fig.takeovers_deferred
                .store(c.takeovers_deferred, Ordering::Relaxed);
            fig.takeovers_unconfirmed
                .store(c.takeovers_unconfirmed, Ordering::Relaxed);
        }
        for (slot, n) in f.control_drops.iter().zip(control_drops) {
            slot.store(*n, Ordering::Relaxed);
        }
        f.late_wakeups.store(late_wakeups, Ordering::Relaxed);
        f.tx_sent.store(tx.sent, Ordering::Relaxed);
        f.tx_deferred.store(tx.deferred, Ordering::Relaxed);
        f.tx_dropped.store(tx.dropped, Ordering::Relaxed);
        let spent = u64::try_from(start.elapsed().as_nanos()).unwrap_or(u64::MAX);
        f.update_nanos.fetch_add(spent, Ordering::Relaxed);
        f.passes.fetch_add(1, Ordering::Relaxed);
    }
}

/// What a scrape reads.
struct Source {
    reader: StatsReader,
    /// Port names by port index.
    ports: Vec<String>,
    figures: Arc<ArcSwap<ControlFigures>>,
    notify: Arc<NotifyCounters>,
    started: Instant,
    /// Connections closed unanswered because every handler was busy.
    rejected: AtomicU64,
    scrapes: AtomicU64,
}

/// Binds `addr` and starts the metrics threads; returns the control
/// thread's [`Publisher`].
///
/// # Errors
/// The address cannot be bound, or a thread cannot be started.
pub(super) fn start(
    addr: SocketAddr,
    reader: StatsReader,
    ports: Vec<String>,
    routers: &Routers,
    notify: Arc<NotifyCounters>,
    started: Instant,
) -> anyhow::Result<Publisher> {
    let listener =
        TcpListener::bind(addr).with_context(|| format!("metrics_listen: binding {addr}"))?;
    let current = Arc::new(ControlFigures::new(routers));
    let shared = Arc::new(ArcSwap::new(Arc::clone(&current)));
    let source = Arc::new(Source {
        reader,
        ports,
        figures: Arc::clone(&shared),
        notify,
        started,
        rejected: AtomicU64::new(0),
        scrapes: AtomicU64::new(0),
    });
    let (tx, rx) = channel::bounded::<TcpStream>(BACKLOG);
    for n in 0..HANDLERS {
        let (rx, source) = (rx.clone(), Arc::clone(&source));
        std::thread::Builder::new()
            .name(format!("xvrrp-metrics-{n}"))
            .spawn(move || {
                lower_priority();
                handle_connections(&rx, &source);
            })
            .context("starting the metrics threads")?;
    }
    std::thread::Builder::new()
        .name("xvrrp-metrics".into())
        .spawn(move || {
            lower_priority();
            for conn in listener.incoming() {
                match conn {
                    Ok(stream) => {
                        if tx.try_send(stream).is_err() {
                            // Full: dropping the stream closes it.
                            source.rejected.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                    // Out of descriptors or the like: do not spin.
                    Err(_) => std::thread::sleep(Duration::from_millis(10)),
                }
            }
        })
        .context("starting the metrics threads")?;
    tracing::info!(%addr, "serving Prometheus metrics at http://{addr}/metrics");
    Ok(Publisher { current, shared })
}

/// Nice value of the metrics threads: below the workers (which are in the
/// normal class, nice 0), so that scrapes never take CPU time from them on
/// a busy machine.
const METRICS_NICE: i32 = 10;

/// Lowers the calling thread's scheduling priority to [`METRICS_NICE`]
/// (best effort: a failure leaves it at the default).
fn lower_priority() {
    // SAFETY: gettid has no preconditions.
    let Ok(tid) = libc::id_t::try_from(unsafe { libc::gettid() }) else {
        return;
    };
    // SAFETY: setpriority has no memory-safety preconditions; on Linux,
    // PRIO_PROCESS with a thread id applies to that thread only.
    let rc = unsafe { libc::setpriority(libc::PRIO_PROCESS, tid, METRICS_NICE) };
    if rc != 0 {
        tracing::debug!(error = %std::io::Error::last_os_error(), "metrics thread keeps its priority");
    }
}

fn handle_connections(rx: &Receiver<TcpStream>, source: &Source) {
    for mut stream in rx {
        // Errors only mean the client went away or was too slow.
        let _ = answer(&mut stream, source);
    }
}

/// Reads one request head and writes one answer.
fn answer(stream: &mut TcpStream, source: &Source) -> std::io::Result<()> {
    stream.set_read_timeout(Some(IO_TIMEOUT))?;
    stream.set_write_timeout(Some(IO_TIMEOUT))?;
    let mut head = Vec::with_capacity(1024);
    let mut buf = [0u8; 1024];
    let complete = loop {
        if head.windows(4).any(|w| w == b"\r\n\r\n") || head.windows(2).any(|w| w == b"\n\n") {
            break true;
        }
        if head.len() > MAX_REQUEST {
            break false;
        }
        let n = stream.read(&mut buf)?;
        if n == 0 {
            break false;
        }
        head.extend_from_slice(buf.get(..n).unwrap_or_default());
    };
    let (status, body) = if complete {
        route(&head, source)
    } else if head.len() > MAX_REQUEST {
        (
            "431 Request Header Fields Too Large",
            "request too large\n".to_owned(),
        )
    } else {
        ("400 Bad Request", "incomplete request\n".to_owned())
    };
    let allow = if status.starts_with("405") {
        "Allow: GET\r\n"
    } else {
        ""
    };
    let content_type = if status.starts_with("200") {
        CONTENT_TYPE
    } else {
        "text/plain; charset=utf-8"
    };
    let response = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\n{allow}Connection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(response.as_bytes())?;
    stream.flush()?;
    if !complete {
        // Let the client read the answer: closing with its request unread
        // would reset the connection and lose it.
        stream.shutdown(std::net::Shutdown::Write)?;
        std::io::copy(&mut stream.take(DRAIN), &mut std::io::sink())?;
    }
    Ok(())
}

/// The status line and body for a request head.
fn route(head: &[u8], source: &Source) -> (&'static str, String) {
    let line = head
        .split(|b| *b == b'\n')
        .next()
        .map(|l| String::from_utf8_lossy(l).trim_end().to_owned())
        .unwrap_or_default();
    let mut parts = line.split(' ');
    let (Some(method), Some(target), Some(version), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return ("400 Bad Request", "bad request line\n".to_owned());
    };
    if !version.starts_with("HTTP/1.") {
        return (
            "505 HTTP Version Not Supported",
            "HTTP/1.x only\n".to_owned(),
        );
    }
    let path = target.split('?').next().unwrap_or_default();
    if path != "/metrics" {
        return ("404 Not Found", "not found: try /metrics\n".to_owned());
    }
    if method != "GET" {
        return ("405 Method Not Allowed", "GET only\n".to_owned());
    }
    source.scrapes.fetch_add(1, Ordering::Relaxed);
    ("200 OK", render(source, Instant::now()))
}

/// The exposition text: families of samples, each with HELP and TYPE.
struct Text {
    out: String,
}

impl Text {
    fn family(&mut self, name: &str, kind: &str, help: &str) {
        let _ = writeln!(self.out, "# HELP {name} {help}");
        let _ = writeln!(self.out, "# TYPE {name} {kind}");
    }

    fn sample(&mut self, name: &str, labels: &[(&str, &str)], value: impl std::fmt::Display) {
        self.out.push_str(name);
        if !labels.is_empty() {
            self.out.push('{');
            for (i, (k, v)) in labels.iter().enumerate() {
                if i > 0 {
                    self.out.push(',');
                }
                let _ = write!(self.out, "{k}=\"{}\"", escape_label(v));
            }
            self.out.push('}');
        }
        let _ = writeln!(self.out, " {value}");
    }

    /// A family with one unlabelled sample.
    fn single(&mut self, name: &str, kind: &str, help: &str, value: impl std::fmt::Display) {
        self.family(name, kind, help);
        self.sample(name, &[], value);
    }
}

/// A label value as the exposition format writes it: `\`, `"` and newline
/// escaped.
fn escape_label(v: &str) -> String {
    let mut out = String::with_capacity(v.len());
    for c in v.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out
}

/// `reason` as a label value: the counter names of `stats`, with `_` for `-`.
fn reason_label(r: DropReason) -> String {
    r.name().replace('-', "_")
}

fn render(source: &Source, now: Instant) -> String {
    let mut t = Text {
        out: String::with_capacity(32 * 1024),
    };
    t.family(
        "xvrrp_build_info",
        "gauge",
        "The running xvrrp's version (always 1).",
    );
    t.sample(
        "xvrrp_build_info",
        &[("version", env!("CARGO_PKG_VERSION"))],
        1,
    );
    t.single(
        "xvrrp_uptime_seconds",
        "gauge",
        "Seconds since the daemon started.",
        now.saturating_duration_since(source.started).as_secs_f64(),
    );
    let figures = source.figures.load();
    render_instances(&mut t, &figures, &source.reader.vmac_conflicts());
    render_control(&mut t, &figures, source);
    render_fast_path(&mut t, source);
    t.out
}

/// A router's priority figure, for the table of gauges.
type PriorityField = fn(&InstanceFigures) -> &AtomicU8;
/// A router's counter, for the table of counters.
type CounterField = fn(&InstanceFigures) -> &AtomicU64;

fn render_instances(t: &mut Text, f: &ControlFigures, conflicts: &[u64]) {
    let load8 = |a: &AtomicU8| a.load(Ordering::Relaxed);
    let load = |a: &AtomicU64| a.load(Ordering::Relaxed);
    t.family(
        "xvrrp_instance_info",
        "gauge",
        "Each virtual router's port and VRID (always 1).",
    );
    for i in &f.instances {
        let vrid = i.vrid.to_string();
        t.sample(
            "xvrrp_instance_info",
            &[("instance", &i.name), ("port", &i.port), ("vrid", &vrid)],
            1,
        );
    }
    t.family(
        "xvrrp_instance_state",
        "gauge",
        "1 for the state each virtual router is in (init, backup, master, fault), 0 for the others.",
    );
    for i in &f.instances {
        let code = usize::from(load8(&i.state));
        for (n, state) in STATES.iter().enumerate() {
            t.sample(
                "xvrrp_instance_state",
                &[("instance", &i.name), ("state", state)],
                u8::from(n == code),
            );
        }
    }
    let gauges: [(&str, &str, PriorityField); 2] = [
        ("xvrrp_instance_priority", "Configured priority.", |i| {
            &i.priority
        }),
        (
            "xvrrp_instance_effective_priority",
            "Priority in force (after the priority command and tracking).",
            |i| &i.effective_priority,
        ),
    ];
    for (name, help, field) in gauges {
        t.family(name, "gauge", help);
        for i in &f.instances {
            t.sample(name, &[("instance", &i.name)], load8(field(i)));
        }
    }
    let counters: [(&str, &str, CounterField); 6] = [
        (
            "xvrrp_instance_transitions_total",
            "State changes.",
            |i| &i.transitions,
        ),
        (
            "xvrrp_instance_adverts_received_total",
            "Advertisements accepted for the state machine.",
            |i| &i.adverts_rx,
        ),
        (
            "xvrrp_instance_adverts_sent_total",
            "Advertisements sent.",
            |i| &i.adverts_tx,
        ),
        (
            "xvrrp_instance_address_list_errors_total",
            "Accepted advertisements whose address list differs from ours.",
            |i| &i.address_list_errors,
        ),
        (
            "xvrrp_instance_takeovers_deferred_total",
            "Master_Down_Timer expiries held until the fast path had read every frame before the deadline.",
            |i| &i.takeovers_deferred,
        ),
        (
            "xvrrp_instance_takeovers_unconfirmed_total",
            "Takeovers made while the fast path had still not read every frame before the deadline.",
            |i| &i.takeovers_unconfirmed,
        ),
    ];
    for (name, help, field) in counters {
        t.family(name, "counter", help);
        for i in &f.instances {
            t.sample(name, &[("instance", &i.name)], load(field(i)));
        }
    }
    t.family(
        "xvrrp_instance_vmac_conflicts_total",
        "counter",
        "Frames another station sent from the virtual router's MAC.",
    );
    for (idx, i) in f.instances.iter().enumerate() {
        let n = conflicts.get(idx).copied().unwrap_or(0);
        t.sample(
            "xvrrp_instance_vmac_conflicts_total",
            &[("instance", &i.name)],
            n,
        );
    }
}

fn render_control(t: &mut Text, f: &ControlFigures, source: &Source) {
    let load = |a: &AtomicU64| a.load(Ordering::Relaxed);
    t.family(
        "xvrrp_control_drops_total",
        "counter",
        "Advertisements the control thread refused, by reason.",
    );
    for (r, n) in DropReason::ALL.iter().zip(&f.control_drops) {
        t.sample(
            "xvrrp_control_drops_total",
            &[("reason", &reason_label(*r))],
            load(n),
        );
    }
    t.single(
        "xvrrp_control_late_wakeups_total",
        "counter",
        "State-machine timers the control thread served late.",
        load(&f.late_wakeups),
    );
    t.family(
        "xvrrp_control_tx_frames_total",
        "counter",
        "Frames the control thread sent (sent), had to retry (deferred) or gave up (dropped).",
    );
    for (result, n) in [
        ("sent", &f.tx_sent),
        ("deferred", &f.tx_deferred),
        ("dropped", &f.tx_dropped),
    ] {
        t.sample(
            "xvrrp_control_tx_frames_total",
            &[("result", result)],
            load(n),
        );
    }
    t.single(
        "xvrrp_control_passes_total",
        "counter",
        "Passes of the control loop that published these figures.",
        load(&f.passes),
    );
    t.single(
        "xvrrp_control_metrics_update_seconds_total",
        "counter",
        "Time the control thread spent storing the figures of this endpoint.",
        Duration::from_nanos(load(&f.update_nanos)).as_secs_f64(),
    );
    t.family(
        "xvrrp_notify_scripts_total",
        "counter",
        "Notify scripts run to their end, by result (ok: exit status 0; failed: anything else).",
    );
    for (result, n) in [
        ("ok", &source.notify.succeeded),
        ("failed", &source.notify.failed),
    ] {
        t.sample("xvrrp_notify_scripts_total", &[("result", result)], load(n));
    }
    t.single(
        "xvrrp_notify_queue_overflows_total",
        "counter",
        "State changes whose notify script was not run: the queue was full.",
        load(&source.notify.overflows),
    );
    t.single(
        "xvrrp_metrics_scrapes_total",
        "counter",
        "Scrapes of this endpoint answered.",
        load(&source.scrapes),
    );
    t.single(
        "xvrrp_metrics_connections_rejected_total",
        "counter",
        "Connections to this endpoint closed unanswered: every handler was busy.",
        load(&source.rejected),
    );
}

/// The fast path's counters by port and worker, the XDP filters' by port
/// and the AF_XDP sockets' by port and worker.
fn render_fast_path(t: &mut Text, source: &Source) {
    let workers = source.reader.workers();
    let port_name = |p: usize| source.ports.get(p).map_or("?", String::as_str);
    // (port index, worker index) pairs that exist.
    let pairs: Vec<(usize, usize)> = (0..source.ports.len())
        .flat_map(|p| {
            workers
                .iter()
                .enumerate()
                .filter(move |(_, c)| c.ports.get(p).is_some())
                .map(move |(w, _)| (p, w))
        })
        .collect();
    t.family(
        "xvrrp_port_packets_total",
        "counter",
        "Frames by port, worker and kind: rx, tx, forwarded (out of the port), punted (adverts to the control thread), arp_replies, arp_requests, icmp_replies, nd_replies, nd_requests, icmp_errors, checksum_completed, handed_off, capture_lost, adverts_rescued (sent by the worker in a late control thread's place).",
    );
    for &(p, w) in &pairs {
        let Some(pc) = workers.get(w).and_then(|c| c.ports.get(p)) else {
            continue;
        };
        let worker = w.to_string();
        for (kind, n) in pc.packets() {
            t.sample(
                "xvrrp_port_packets_total",
                &[("port", port_name(p)), ("worker", &worker), ("kind", kind)],
                n,
            );
        }
    }
    t.family(
        "xvrrp_port_bytes_total",
        "counter",
        "Bytes of the frames received (rx) and transmitted (tx), Ethernet header included, by port and worker.",
    );
    for &(p, w) in &pairs {
        let Some(pc) = workers.get(w).and_then(|c| c.ports.get(p)) else {
            continue;
        };
        let worker = w.to_string();
        for (direction, n) in pc.bytes() {
            t.sample(
                "xvrrp_port_bytes_total",
                &[
                    ("port", port_name(p)),
                    ("worker", &worker),
                    ("direction", direction),
                ],
                n,
            );
        }
    }
    t.family(
        "xvrrp_port_drops_total",
        "counter",
        "Frames the workers dropped, by port, worker and reason.",
    );
    for &(p, w) in &pairs {
        let Some(d) = workers.get(w).and_then(|c| c.drops.get(p)) else {
            continue;
        };
        let worker = w.to_string();
        for (r, n) in DropReason::ALL.iter().zip(d) {
            t.sample(
                "xvrrp_port_drops_total",
                &[
                    ("port", port_name(p)),
                    ("worker", &worker),
                    ("reason", &reason_label(*r)),
                ],
                n,
            );
        }
    }
    t.family(
        "xvrrp_worker_idle_sleeps_total",
        "counter",
        "Times a worker went to sleep for want of work.",
    );
    for (w, c) in workers.iter().enumerate() {
        t.sample(
            "xvrrp_worker_idle_sleeps_total",
            &[("worker", &w.to_string())],
            c.idle_sleeps,
        );
    }
    let xdp = source.reader.xdp();
    t.family(
        "xvrrp_xdp_drops_total",
        "counter",
        "Frames the XDP filter dropped before any copy, by port and reason.",
    );
    for (p, st) in xdp.iter().enumerate() {
        for r in XdpCounter::ALL.iter().filter_map(|c| c.drop_reason()) {
            let n = st.drops.get(r as usize).copied().unwrap_or(0);
            t.sample(
                "xvrrp_xdp_drops_total",
                &[("port", port_name(p)), ("reason", &reason_label(r))],
                n,
            );
        }
    }
    type XdpField = fn(&xvrrp_dataplane::xdp_maps::XdpPortStats) -> u64;
    let xdp_fields: [(&str, &str, XdpField); 3] = [
        (
            "xvrrp_xdp_adverts_passed_total",
            "Advertisements the XDP filter handed to the workers.",
            |s| s.adverts_passed,
        ),
        (
            "xvrrp_xdp_master_adverts_total",
            "Advertisements let through as their router's current master's.",
            |s| s.master_adverts,
        ),
        (
            "xvrrp_xdp_vmac_conflicts_total",
            "Frames from one of the port's virtual MACs that another station sent.",
            |s| s.vmac_conflicts,
        ),
    ];
    for (name, help, field) in xdp_fields {
        t.family(name, "counter", help);
        for (p, st) in xdp.iter().enumerate() {
            t.sample(name, &[("port", port_name(p))], field(st));
        }
    }
    render_xsk(t, &source.reader.xsk(), &port_name);
}

/// The kernel's counters of the AF_XDP sockets, summed by port and worker,
/// one family per counter (`xvrrp_xsk_rx_dropped_total`, ...), under the
/// kernel's names; a counter the kernel does not give is left out.
fn render_xsk<'a>(t: &mut Text, sockets: &[SocketStats], port_name: &dyn Fn(usize) -> &'a str) {
    let mut sums: Vec<(usize, usize, xvrrp_dataplane::stats::XskStats)> = Vec::new();
    for s in sockets {
        let Some(st) = s.stats else { continue };
        match sums
            .iter_mut()
            .find(|(p, w, _)| *p == s.port && *w == s.worker)
        {
            Some((_, _, sum)) => *sum = sum.sum(st),
            None => sums.push((s.port, s.worker, st)),
        }
    }
    let Some((_, _, first)) = sums.first() else {
        return;
    };
    for (i, (field, _)) in first.fields().iter().enumerate() {
        let name = format!("xvrrp_xsk_{field}_total");
        let values: Vec<(usize, usize, u64)> = sums
            .iter()
            .filter_map(|(p, w, st)| {
                st.fields()
                    .get(i)
                    .and_then(|(_, v)| *v)
                    .map(|v| (*p, *w, v))
            })
            .collect();
        if values.is_empty() {
            continue;
        }
        t.family(
            &name,
            "counter",
            &format!(
                "The AF_XDP sockets' {field} (the kernel's XDP_STATISTICS), by port and worker."
            ),
        );
        for (p, w, v) in values {
            t.sample(
                &name,
                &[("port", port_name(p)), ("worker", &w.to_string())],
                v,
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn label_values_are_escaped() {
        assert_eq!(escape_label(r#"a"b\c"#), r#"a\"b\\c"#);
        assert_eq!(escape_label("x\ny"), "x\\ny");
        assert_eq!(escape_label("lan-gw"), "lan-gw");
    }

    #[test]
    fn samples_are_written_with_labels() {
        let mut t = Text { out: String::new() };
        t.family("xvrrp_x_total", "counter", "Help.");
        t.sample("xvrrp_x_total", &[("port", "lan0"), ("kind", "a\"b")], 7);
        t.single("xvrrp_y", "gauge", "Y.", 1.5);
        assert_eq!(
            t.out,
            "# HELP xvrrp_x_total Help.\n# TYPE xvrrp_x_total counter\n\
             xvrrp_x_total{port=\"lan0\",kind=\"a\\\"b\"} 7\n\
             # HELP xvrrp_y Y.\n# TYPE xvrrp_y gauge\nxvrrp_y 1.5\n"
        );
    }

    #[test]
    fn state_codes_round_trip() {
        for (i, s) in STATES.iter().enumerate() {
            assert_eq!(usize::from(state_code(s)), i);
        }
    }
}
