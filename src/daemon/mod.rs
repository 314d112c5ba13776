//! `xvrrp run`: the control thread and its wiring to the fast path.
//!
//! The control thread is the only I/O shell around the sans-IO routers
//! (`xvrrp_control::vrrp::Routers`): it reads the clock once per pass,
//! feeds them the adverts the workers validated (typed, stamped with their
//! arrival time), link events and due timers, carries out their actions
//! (frames through the workers, ownership flags, logs, events), serves the
//! control socket, and sleeps in one `mio::Poll` until the next timer, an
//! advert, a client or a signal.
//!
//! - [`requests`]: control-socket answers; [`render`]: status/stats JSON;
//!   [`drain`]: planned handover (`drain`, `resume`, SIGTERM);
//!   [`tables`]: the `routes` and `neighbors` answers;
//! - [`tx`]: the frames the control thread sends; [`log`]: journal lines;
//! - [`os`]: real-time priority, systemd notify and watchdog;
//! - [`events`]: the `subscribe` stream ([`Daemon::publish_event`]);
//!   [`notify`]: the notify script, off the control thread; [`metrics`]:
//!   the Prometheus endpoint, on threads of its own;
//! - [`capture`]: `capture` requests, served by a thread per capture.

mod capture;
mod drain;
mod events;
mod log;
mod metrics;
mod notify;
mod os;
mod reload;
mod render;
mod requests;
mod tables;
mod tx;

use std::{
    collections::{HashMap, HashSet},
    net::IpAddr,
    path::Path,
    sync::atomic::{AtomicBool, Ordering},
    time::{Duration, Instant},
};

use anyhow::{bail, Context};
use mio::{unix::SourceFd, Events, Interest, Poll, Token};
use serde_json::json;
use xvrrp_control::{
    config::{self, Config, TrackTarget},
    ctl_socket::{CtlServer, Request, Response, REQUESTS_PER_PASS},
    vrrp::{Action, Notice, Reason, Router, Routers, SyncGroup, LATE_TIMER},
    DropReason, RouterId,
};
use xvrrp_dataplane::{iface::InterfaceInfo, Dataplane, DataplaneConfig};
use xvrrp_wire::frames;

use crate::{
    kernel_routes::{KernelRoutes, PortMap},
    mcast::Memberships,
    track::{self, LinkEvents},
};
use log::DropLog;
use requests::{Query, Route};
use tx::Transmitter;

const WAKE: Token = Token(0);
const LINKS: Token = Token(1);
const CTL_FIRST_TOKEN: usize = 16;
/// How long a stopping master keeps forwarding at most after its priority-0
/// advertisement, in advertisement intervals: it stops earlier once another
/// router advertises each virtual router it was master of
/// (docs/conformance.md F02).
const DRAIN_INTERVALS: u32 = 3;
/// Longest sleep of the control loop with no timer due.
const MAX_SLEEP: Duration = Duration::from_millis(500);
/// Longest an advert that arrived during a pass waits for the next one.
const ADVERT_BATCH: Duration = Duration::from_micros(500);
/// How soon frames that found no room are tried again.
const TX_RETRY: Duration = Duration::from_micros(200);
/// A fast path that lags this much behind a pass may be losing frames.
const FAST_PATH_STALL: Duration = Duration::from_millis(10);
/// How long the routers' start waits for the workers to read their rings.
const WORKERS_START: Duration = Duration::from_secs(1);

static STOP: AtomicBool = AtomicBool::new(false);
/// Set by SIGHUP: re-read the configuration file.
static RELOAD: AtomicBool = AtomicBool::new(false);

/// The address a router's adverts come from: the port's primary IPv4
/// address, or its IPv6 link-local address (RFC 9568 §5.1.2.1).
fn primary_address(info: &InterfaceInfo, ipv6: bool) -> Option<IpAddr> {
    if ipv6 {
        info.link_local().map(IpAddr::V6)
    } else {
        info.addrs_v4.first().map(|(a, _)| IpAddr::V4(*a))
    }
}

/// Runs the appliance until SIGINT/SIGTERM.
pub fn run(config_path: &Path) -> anyhow::Result<()> {
    let cfg = config::load(config_path).map_err(|e| anyhow::anyhow!("{e}"))?;
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        bail!("xvrrp run needs root (CAP_NET_ADMIN, CAP_NET_RAW, CAP_BPF, CAP_IPC_LOCK) to attach XDP programs");
    }
    let dcfg = DataplaneConfig::from_config(&cfg)?;
    let dataplane = Dataplane::start(&dcfg).context("starting the fast path")?;
    // Before the first frame is forwarded: the kernel's routes are in the
    // tables from the start.
    let kernel_routes = if cfg.kernel_routes {
        let ports: PortMap = (0..cfg.ports.len())
            .filter_map(|i| dataplane.port_info(i).map(|info| (info.index, i)))
            .collect();
        Some(KernelRoutes::start(dataplane.route_publisher(), ports)?)
    } else {
        None
    };
    let mut daemon = Daemon::new(config_path, cfg, dataplane, kernel_routes)?;
    let result = daemon.run();
    daemon.finish();
    result
}

struct Daemon {
    /// The file the configuration was read from (`reload` reads it again).
    config_path: std::path::PathBuf,
    cfg: Config,
    dp: Dataplane,
    routers: Routers,
    tx: Transmitter,
    poll: Poll,
    ctl: CtlServer,
    started: Instant,
    /// Adverts the control thread itself refused, by reason.
    control_drops: [u64; DropReason::COUNT],
    /// Link events from the kernel.
    link_events: LinkEvents,
    /// ifindex → port name, for the link events.
    port_names: HashMap<u32, String>,
    /// VRRP multicast group memberships (held for their lifetime).
    memberships: Memberships,
    drop_log: DropLog,
    /// State-machine timers served late (a starved control thread).
    late_wakeups: u64,
    /// Reads tracked addresses and routes and the ports' primary addresses.
    prober: track::Prober,
    /// The kernel route mirror (`[routes] kernel = true`).
    kernel_routes: Option<KernelRoutes>,
    /// Sequence and times of the events published to subscribers.
    event_stamps: events::EventStamps,
    /// Runs the notify script off the control thread.
    notifier: notify::Notifier,
    /// The figures the metrics endpoint reads (`metrics_listen`).
    metrics: Option<metrics::Publisher>,
    /// Starts the threads that serve `capture` requests.
    capture: capture::Launcher,
    /// When the control loop next runs a full pass ([`Daemon::step`]):
    /// the earliest deadline known, or `None` for at once. Between full
    /// passes, adverts get a pass of their own ([`Daemon::step_adverts`]).
    next_full: Option<Instant>,
    /// The routers an advert-only pass handled adverts for (kept for its
    /// allocation).
    touched: Vec<RouterId>,
    /// The actions of one pass, in the order they are carried out (kept
    /// for its allocation).
    pass: Vec<(RouterId, Action)>,
    /// The fast path lagged more than [`FAST_PATH_STALL`] at a pass and has
    /// not caught up since.
    fast_path_lagged: bool,
}

/// Router `r`'s master when that is a peer, for the XDP filters.
fn peer_master(r: &Router) -> (RouterId, Option<IpAddr>) {
    let peer = r.instance().master_addr().filter(|a| *a != r.primary());
    (r.id(), peer)
}

impl Daemon {
    fn new(
        config_path: &Path,
        cfg: Config,
        dp: Dataplane,
        kernel_routes: Option<KernelRoutes>,
    ) -> anyhow::Result<Self> {
        let poll = Poll::new().context("creating the control poller")?;
        let wake_fd = dp.shared().control_wakeup.raw_fd();
        poll.registry()
            .register(&mut SourceFd(&wake_fd), WAKE, Interest::READABLE)
            .context("registering the worker wake-up")?;
        let ctl = CtlServer::bind(
            &cfg.global.control_socket,
            cfg.global.socket_group.as_deref(),
            poll.registry(),
            CTL_FIRST_TOKEN,
        )
        .with_context(|| format!("control socket {}", cfg.global.control_socket.display()))?;
        for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
            // SAFETY: the handler only stores to an atomic, which is async-signal-safe.
            unsafe {
                signal_hook::low_level::register(sig, move || {
                    STOP.store(true, Ordering::SeqCst);
                })
            }
            .context("installing signal handlers")?;
        }
        // SAFETY: the handler only stores to an atomic, which is async-signal-safe.
        unsafe {
            signal_hook::low_level::register(signal_hook::consts::SIGHUP, || {
                RELOAD.store(true, Ordering::SeqCst);
            })
        }
        .context("installing signal handlers")?;
        let mut routers = Vec::with_capacity(cfg.vrrp.len());
        for spec in &cfg.vrrp {
            let info = cfg.port_index(&spec.port).and_then(|i| dp.port_info(i));
            let primary = info
                .and_then(|i| primary_address(i, spec.is_ipv6()))
                .with_context(|| {
                    format!(
                        "port {} has no address to advertise {} from",
                        spec.port, spec.name
                    )
                })?;
            routers.push(Router::new(spec.clone(), primary));
        }
        let routers = Routers::new(routers, sync_groups(&cfg), crate::track::is_up);
        let port_names = (0..cfg.ports.len())
            .filter_map(|i| dp.port_info(i))
            .map(|info| (info.index, info.name.clone()))
            .collect();
        let memberships = join_groups(&cfg, &dp, &routers)?;
        let link_events = LinkEvents::open().context("subscribing to link events (rtnetlink)")?;
        poll.registry()
            .register(
                &mut SourceFd(&link_events.raw_fd()),
                LINKS,
                Interest::READABLE,
            )
            .context("registering link events")?;
        let ifindexes: Vec<u32> = (0..cfg.ports.len())
            .map(|i| dp.port_info(i).map_or(0, |info| info.index))
            .collect();
        let tx = Transmitter::new(&dp.tables().instances, &ifindexes)
            .context("opening the control thread's packet sockets")?;
        let prober = start_prober(&routers)?;
        let now = Instant::now();
        let capture = capture::Launcher::new(
            &dp,
            &cfg.global.control_socket,
            cfg.global.socket_group.is_some(),
        );
        let notifier = notify::Notifier::start().context("starting the notify thread")?;
        let metrics = match cfg.global.metrics_listen {
            Some(addr) => {
                let reader = dp
                    .stats_reader()
                    .context("opening the fast path's counters for the metrics endpoint")?;
                let ports = (0..cfg.ports.len())
                    .map(|i| {
                        dp.port_info(i)
                            .map_or_else(|| format!("port{i}"), |p| p.name.clone())
                    })
                    .collect();
                Some(metrics::start(
                    addr,
                    reader,
                    ports,
                    &routers,
                    notifier.counters(),
                    now,
                )?)
            }
            None => None,
        };
        Ok(Self {
            capture,
            config_path: config_path.to_path_buf(),
            cfg,
            dp,
            routers,
            tx,
            poll,
            ctl,
            started: now,
            control_drops: [0; DropReason::COUNT],
            link_events,
            port_names,
            memberships,
            drop_log: DropLog::new(now),
            late_wakeups: 0,
            prober,
            kernel_routes,
            event_stamps: events::EventStamps::new(now),
            notifier,
            metrics,
            next_full: None,
            touched: Vec::with_capacity(1024),
            pass: Vec::with_capacity(1024),
            fast_path_lagged: false,
        })
    }

    fn run(&mut self) -> anyhow::Result<()> {
        os::raise_control_priority();
        os::keep_off_worker_cores(&self.cfg.dataplane.cores);
        if !self.dp.wait_for_workers(WORKERS_START) {
            tracing::warn!(
                waited_ms = WORKERS_START.as_millis(),
                "the workers have not read their rings yet; starting the routers anyway"
            );
        }
        let now = Instant::now();
        self.routers.handle_startup(now);
        self.drain_actions(now);
        tracing::info!(instances = self.routers.len(), "xvrrp running");
        os::notify_systemd("READY=1");
        let mut watchdog = os::Watchdog::from_env();
        let max_sleep = watchdog.max_sleep(MAX_SLEEP);
        let mut events = Events::with_capacity(64);
        while !STOP.load(Ordering::SeqCst) {
            watchdog.tick(Instant::now());
            if RELOAD.swap(false, Ordering::SeqCst) {
                self.reload_on_signal(Instant::now());
                self.next_full = None;
            }
            let stepped = Instant::now();
            if self
                .next_full
                .is_some_and(|at| stepped.saturating_duration_since(at) > LATE_TIMER)
            {
                // The loop ran late: this process was frozen or starved,
                // and a master beside it may have been too.
                self.routers.handle_stall(stepped);
            }
            // Woken by the workers before anything was due: the adverts
            // alone, unless what they did needs the rest of a pass.
            let full = self.next_full.is_none_or(|at| at <= stepped) || self.step_adverts(stepped);
            if full {
                self.step(stepped);
                // Timers first, then the control socket's leftover work.
                self.serve_client(None);
                let due = self
                    .routers
                    .poll_timeout()
                    .into_iter()
                    .chain(self.ctl.poll_timeout())
                    .min();
                let latest = Instant::now() + max_sleep;
                self.next_full = Some(due.map_or(latest, |d| d.min(latest)));
            }
            if self.tx.has_pending() {
                // Frames waiting for room are tried again soon.
                let retry = Instant::now() + TX_RETRY;
                self.next_full = self.next_full.map(|at| at.min(retry));
            }
            // Requests left for the next pass are served at once.
            if self.ctl.pending_work() {
                self.next_full = None;
            }
            let timeout = if let Some(at) = self.next_full {
                let sleep = at.saturating_duration_since(Instant::now());
                if self.dp.has_adverts() {
                    // Adverts carry their arrival time: reading those that
                    // came during the pass up to ADVERT_BATCH after it
                    // changes no decision, and makes one pass per batch
                    // rather than one per advert (a pass costs every
                    // router's timers: 510 routers at 10 ms send 51 000
                    // adverts a second). The workers do not wake us.
                    sleep.min(ADVERT_BATCH.saturating_sub(stepped.elapsed()))
                } else {
                    let wake = &self.dp.shared().control_wakeup;
                    wake.prepare_sleep();
                    // An advert queued before the flag was seen.
                    if self.dp.has_adverts() {
                        Duration::ZERO
                    } else {
                        sleep
                    }
                }
            } else {
                Duration::ZERO
            };
            let timeout = Some(timeout);
            match self.poll.poll(&mut events, timeout) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e).context("waiting for events"),
            }
            self.dp.shared().control_wakeup.woke();
            for ev in events.iter() {
                match ev.token() {
                    WAKE => {}
                    LINKS => {
                        self.read_link_events(Instant::now());
                        self.next_full = None;
                    }
                    token if self.ctl.owns(token) => {
                        self.serve_client(Some(ev));
                        self.next_full = None;
                    }
                    _ => {}
                }
            }
        }
        Ok(())
    }

    /// One pass: adverts first (so a master's advert that waited is seen
    /// before its Master_Down_Timer), then due timers (a backup's takeover
    /// waits for the workers to have read their rings up to its deadline),
    /// then the actions.
    fn step(&mut self, now: Instant) {
        // Read before the queue is drained: every advert the workers had
        // read by then is in the queue.
        let heard_until = self.dp.heard_until(now);
        self.note_fast_path_stall(now, heard_until);
        self.read_adverts(now, |_| {});
        self.take_probes(now);
        self.late_wakeups += self.routers.handle_timeout(now, heard_until);
        self.tx.flush_pending();
        self.drain_actions(now);
        self.note_peer_masters();
        self.drop_log.tick(now, &self.dp, &self.routers);
        if let Some(m) = &mut self.metrics {
            m.update(
                &self.routers,
                &self.control_drops,
                self.late_wakeups,
                self.tx.counters(),
            );
        }
    }

    /// A fast path that lagged more than [`FAST_PATH_STALL`] and has caught
    /// up again may have lost frames meanwhile (a ring that overflowed while
    /// its worker was off its core): the master's adverts among them, so
    /// the routers are told, as after a stall of this thread
    /// ([`Routers::handle_stall`]): a backup gives its master one interval
    /// of fresh adverts.
    fn note_fast_path_stall(&mut self, now: Instant, heard_until: Instant) {
        let lag = now.saturating_duration_since(heard_until);
        if lag > FAST_PATH_STALL {
            self.fast_path_lagged = true;
        } else if lag <= LATE_TIMER && std::mem::take(&mut self.fast_path_lagged) {
            self.routers.handle_stall(now);
        }
    }

    /// Feeds every advert the workers queued to its router; `each` is
    /// told the router of each.
    fn read_adverts(&mut self, now: Instant, mut each: impl FnMut(RouterId)) {
        let (routers, drops) = (&mut self.routers, &mut self.control_drops);
        self.dp.drain_adverts(|adv| {
            each(adv.router);
            if let Err(reason) = routers.handle_advert(now, &adv) {
                if let Some(n) = drops.get_mut(reason as usize) {
                    *n += 1;
                }
            }
        });
    }

    /// A pass for adverts alone, run when the workers wake the loop before
    /// anything is due: each advert's router takes it and does what it
    /// says (answer it, restart a timer), which costs the adverts read
    /// rather than every router's timers (a backup of 510 routers at 10 ms
    /// is woken by 51 000 adverts a second). Their new deadlines bring the
    /// next full pass forward if they are earlier. Returns whether a full
    /// pass must follow at once: an advert moved more than its router's
    /// adverts (a state change: ownership, sync groups and the figures
    /// follow there), or one found no room to leave.
    fn step_adverts(&mut self, now: Instant) -> bool {
        let mut touched = std::mem::take(&mut self.touched);
        touched.clear();
        self.read_adverts(now, |id| touched.push(id));
        let mut more = false;
        for &id in &touched {
            while let Some(action) = self.routers.poll_output_of(now, id) {
                more |= !matches!(action, Action::SendAdvert { .. });
                self.apply(id, action);
            }
            if let Some(due) = self.routers.get(id).and_then(Router::poll_timeout) {
                self.next_full = self.next_full.map(|at| at.min(due));
            }
        }
        let routers = &self.routers;
        self.dp.set_peer_masters(
            touched
                .iter()
                .filter_map(|&id| routers.get(id))
                .map(peer_master),
        );
        self.touched = touched;
        more || self.tx.has_pending()
    }

    /// Tells the XDP filters whose adverts to let through ahead of the
    /// advert rate limit: each router's master when it is a peer (only
    /// changes reach the kernel).
    fn note_peer_masters(&self) {
        self.dp
            .set_peer_masters(self.routers.iter().map(peer_master));
    }

    /// Applies what the prober found about tracked addresses and routes
    /// and the ports' primary addresses.
    fn take_probes(&mut self, now: Instant) {
        for report in self.prober.take() {
            for (target, up) in &report.targets {
                self.routers.handle_link(now, target, *up);
            }
            for (id, addr) in report.primaries {
                self.routers.handle_primary(id, addr);
            }
        }
    }

    fn read_link_events(&mut self, now: Instant) {
        let (routers, names) = (&mut self.routers, &self.port_names);
        self.link_events.drain(|ifindex, up| {
            if let Some(port) = names.get(&ifindex) {
                routers.handle_link(now, &TrackTarget::Port(port.clone()), up);
            }
        });
    }

    /// Serves the control socket: the listener or client of `ev`, or with
    /// `None` a new pass: clients whose time is up are closed and the work
    /// earlier events left is carried on, within the pass's budget.
    fn serve_client(&mut self, ev: Option<&mio::event::Event>) {
        let view = requests::View {
            routers: &self.routers,
            dp: &self.dp,
            control_drops: &self.control_drops,
            late_wakeups: self.late_wakeups,
            tx: self.tx.counters(),
            started: self.started,
            kernel_routes: self.kernel_routes.is_some(),
            capture: &self.capture,
        };
        let mut changes: Vec<(String, u8)> = Vec::new();
        // A reload is checked and answered here and carried out below; of
        // several in one pass (each checked against the running
        // configuration) the last one read is carried out.
        let mut reload = None;
        let mut handovers: Vec<drain::Handover> = Vec::new();
        let mut handler = |req: &Request| {
            let query = match requests::route(req) {
                Route::View(query) => query,
                Route::Reload => {
                    return match reload::prepare(&self.config_path, &self.cfg, &self.dp) {
                        Ok(prepared) => {
                            let answer = Response::Ok(prepared.summary());
                            reload = Some(prepared);
                            answer
                        }
                        Err(refused) => refused.response(),
                    };
                }
            };
            match query {
                Query::Priority { name, priority } => changes.push((name.to_owned(), priority)),
                Query::Drain { name } => {
                    handovers.push(drain::Handover::Drain(name.map(str::to_owned)));
                }
                Query::Resume { name } => {
                    handovers.push(drain::Handover::Resume(name.map(str::to_owned)));
                }
                _ => {}
            }
            view.handle(query)
        };
        let (registry, now) = (self.poll.registry(), Instant::now());
        match ev {
            Some(ev) => self.ctl.handle_event(registry, now, ev, &mut handler),
            None => {
                self.ctl.handle_timeout(registry, now);
                self.ctl
                    .service_pending(registry, now, REQUESTS_PER_PASS, &mut handler);
            }
        }
        if let Some(prepared) = reload {
            self.apply_reload(now, prepared);
        }
        for change in &handovers {
            self.handover(now, change);
        }
        if changes.is_empty() {
            return;
        }
        for (name, priority) in changes {
            self.routers.handle_priority(now, &name, priority);
        }
        self.drain_actions(now);
    }

    /// Carries out every pending action of every router.
    fn drain_actions(&mut self, now: Instant) {
        let mut pass = std::mem::take(&mut self.pass);
        loop {
            self.routers.poll_pass(now, &mut pass);
            if pass.is_empty() {
                break;
            }
            for &(id, action) in &pass {
                self.apply(id, action);
            }
        }
        self.dp.publish_advert_deadlines(now);
        self.pass = pass;
        self.note_draining();
    }

    fn apply(&mut self, id: RouterId, action: Action) {
        let Some(router) = self.routers.get(id) else {
            return;
        };
        match action {
            Action::SendAdvert {
                priority,
                max_advert_int_cs,
            } => {
                if !router.spec().unicast_peers.is_empty() {
                    self.dp.forget_advert(id);
                }
                let hold = held_for_workers(&self.dp, router);
                if self
                    .tx
                    .send_advert(router, priority, max_advert_int_cs, hold)
                {
                    self.routers.note_advert_sent(id);
                }
            }
            Action::Announce => self.tx.announce(router.spec()),
            Action::SetOwnership { master } => self.dp.set_master(id, master),
            Action::StateChanged {
                from,
                to,
                reason,
                priority,
            } => {
                let spec = router.spec();
                log::transition(spec, from, to, reason, priority);
                let event = json!({
                    "event": "transition",
                    "instance": spec.name,
                    "from": from.to_string(),
                    "to": to.to_string(),
                    "reason": format!("{reason:?}"),
                    "priority": priority,
                });
                let script = self.cfg.global.notify.as_deref();
                self.notifier.notify(script, &spec.name, to, priority);
                self.publish_event(event);
                if reason == Reason::Drain {
                    self.handed_over(id);
                }
            }
            Action::Notice(notice) => {
                log::notice(router.spec(), notice);
                if let Notice::PriorityChanged(priority) = notice {
                    let event = json!({
                        "event": "priority",
                        "instance": router.spec().name,
                        "priority": priority,
                        "configured": router.instance().priority(),
                    });
                    self.publish_event(event);
                }
            }
        }
    }

    /// Graceful stop: every router is drained (priority-0 adverts) and
    /// each master keeps forwarding until the router taking over is heard
    /// advertising as master, or a few intervals passed (SPEC §7); then
    /// shutdown (a master still draining sends priority 0 once more), and
    /// the XDP programs detach.
    fn finish(mut self) {
        let longest = self
            .routers
            .iter()
            .map(|r| r.spec().advert_interval())
            .max()
            .unwrap_or(Duration::from_secs(1));
        self.drain_for_exit(longest * DRAIN_INTERVALS);
        let now = Instant::now();
        self.routers.handle_shutdown(now);
        while let Some((id, action)) = self.routers.poll_output(now) {
            if let (
                Action::SendAdvert {
                    priority,
                    max_advert_int_cs,
                },
                Some(router),
            ) = (action, self.routers.get(id))
            {
                // Held too: a worker stepping in before the ownership goes
                // below then sends this priority-0 advert, not an older one.
                let hold = held_for_workers(&self.dp, router);
                self.tx
                    .send_advert(router, priority, max_advert_int_cs, hold);
            }
        }
        for r in self.routers.iter() {
            self.dp.set_master(r.id(), false);
        }
        self.ctl.shutdown();
        if let Some(mirror) = self.kernel_routes.take() {
            mirror.stop();
        }
        self.dp.stop();
        tracing::info!("xvrrp stopped; XDP programs detached");
    }
}

/// The sync groups of `cfg`, with their members' ids.
/// Hands an advert `router` just sent to the workers, which send it again
/// should the control thread be late with the next (its vCPU taken away:
/// dataplane `rescue`).
fn held_for_workers<'a>(dp: &'a Dataplane, router: &Router) -> impl FnOnce(usize, &[u8]) + 'a {
    let (id, interval) = (router.id(), router.spec().advert_interval());
    move |port, frame| dp.record_advert(id, port, frame, Instant::now(), interval)
}

fn sync_groups(cfg: &Config) -> Vec<SyncGroup> {
    cfg.sync_groups
        .iter()
        .map(|g| SyncGroup {
            name: g.name.clone(),
            members: g
                .members
                .iter()
                .filter_map(|m| cfg.vrrp.iter().position(|v| &v.name == m))
                .collect(),
        })
        .collect()
}

/// Joins the VRRP multicast group of each port and family a multicast
/// router runs on.
fn join_groups(cfg: &Config, dp: &Dataplane, routers: &Routers) -> anyhow::Result<Memberships> {
    let mut memberships = Memberships::default();
    let mut joined = HashSet::new();
    for r in routers.iter().filter(|r| r.spec().unicast_peers.is_empty()) {
        let Some(info) = cfg.port_index(&r.spec().port).and_then(|i| dp.port_info(i)) else {
            continue;
        };
        let v6 = r.primary().is_ipv6();
        if joined.insert((info.index, v6)) {
            if v6 {
                memberships.join_v6(frames::VRRP_V6_MCAST, info.index)?;
            } else {
                memberships.join_v4(frames::VRRP_V4_MCAST, info.index)?;
            }
        }
    }
    Ok(memberships)
}

/// A prober of the routers' tracked addresses and routes and their ports'
/// primary addresses.
fn start_prober(routers: &Routers) -> anyhow::Result<track::Prober> {
    let targets: Vec<TrackTarget> = routers
        .tracked()
        .filter(|t| !matches!(t, TrackTarget::Port(_)))
        .cloned()
        .collect();
    let primaries = routers
        .iter()
        .map(|r| track::PrimaryOf {
            id: r.id(),
            port: r.spec().port.clone(),
            ipv6: r.spec().is_ipv6(),
        })
        .collect();
    track::Prober::start(targets, primaries).context("starting the prober")
}
