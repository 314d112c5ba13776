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
//! - [`tx`]: the frames the control thread sends; [`log`]: journal lines;
//! - [`os`]: real-time priority, systemd notify and watchdog, notify script.

mod log;
mod os;
mod render;
mod requests;
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
    config::{self, Config},
    ctl_socket::{CtlServer, Request},
    vrrp::{Action, Router, Routers, State, SyncGroup},
    DropReason, RouterId,
};
use xvrrp_dataplane::{Dataplane, DataplaneConfig};
use xvrrp_wire::frames;

use crate::{mcast::Memberships, track::LinkEvents};
use log::DropLog;
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

static STOP: AtomicBool = AtomicBool::new(false);

/// Runs the appliance until SIGINT/SIGTERM.
pub fn run(config_path: &Path) -> anyhow::Result<()> {
    let cfg = config::load(config_path).map_err(|e| anyhow::anyhow!("{e}"))?;
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        bail!("xvrrp run needs root (CAP_NET_ADMIN, CAP_NET_RAW, CAP_BPF, CAP_IPC_LOCK) to attach XDP programs");
    }
    let dcfg = DataplaneConfig::from_config(&cfg)?;
    let dataplane = Dataplane::start(&dcfg).context("starting the fast path")?;
    let mut daemon = Daemon::new(cfg, dataplane)?;
    let result = daemon.run();
    daemon.finish();
    result
}

struct Daemon {
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
    _memberships: Memberships,
    drop_log: DropLog,
    /// State-machine timers served late (a starved control thread).
    late_wakeups: u64,
}

impl Daemon {
    fn new(cfg: Config, dp: Dataplane) -> anyhow::Result<Self> {
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
        let mut routers = Vec::with_capacity(cfg.vrrp.len());
        for spec in &cfg.vrrp {
            let info = cfg.port_index(&spec.port).and_then(|i| dp.port_info(i));
            let primary = if spec.is_ipv6() {
                info.and_then(|i| i.link_local()).map(IpAddr::V6)
            } else {
                info.and_then(|i| i.addrs_v4.first().map(|(a, _)| IpAddr::V4(*a)))
            }
            .with_context(|| {
                format!(
                    "port {} has no address to advertise {} from",
                    spec.port, spec.name
                )
            })?;
            routers.push(Router::new(spec.clone(), primary));
        }
        let groups = cfg
            .sync_groups
            .iter()
            .map(|g| SyncGroup {
                name: g.name.clone(),
                members: g
                    .members
                    .iter()
                    .filter_map(|m| cfg.vrrp.iter().position(|v| &v.name == m))
                    .collect(),
            })
            .collect();
        let routers = Routers::new(routers, groups, xvrrp_dataplane::iface::link_up);
        let port_names = (0..cfg.ports.len())
            .filter_map(|i| dp.port_info(i))
            .map(|info| (info.index, info.name.clone()))
            .collect();
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
        let link_events = LinkEvents::open().context("subscribing to link events (rtnetlink)")?;
        poll.registry()
            .register(
                &mut SourceFd(&link_events.raw_fd()),
                LINKS,
                Interest::READABLE,
            )
            .context("registering link events")?;
        let tx = Transmitter::new(&dp.tables().instances);
        let now = Instant::now();
        Ok(Self {
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
            _memberships: memberships,
            drop_log: DropLog::new(now),
            late_wakeups: 0,
        })
    }

    fn run(&mut self) -> anyhow::Result<()> {
        os::raise_control_priority();
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
            self.step(Instant::now());
            let wake = &self.dp.shared().control_wakeup;
            wake.prepare_sleep();
            // Adverts that arrived after the pass are served at once.
            let timeout = if self.dp.shared().adverts.is_empty() {
                self.routers
                    .poll_timeout()
                    .map(|d| d.saturating_duration_since(Instant::now()).min(max_sleep))
                    .or(Some(max_sleep))
            } else {
                Some(Duration::ZERO)
            };
            match self.poll.poll(&mut events, timeout) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e).context("waiting for events"),
            }
            self.dp.shared().control_wakeup.woke();
            for ev in events.iter() {
                match ev.token() {
                    WAKE => {}
                    LINKS => self.read_link_events(Instant::now()),
                    token if self.ctl.owns(token) => self.serve_client(ev),
                    _ => {}
                }
            }
        }
        Ok(())
    }

    /// One pass: adverts first (so a master's advert that waited is seen
    /// before its Master_Down_Timer), then due timers, then the actions.
    fn step(&mut self, now: Instant) {
        while let Some(adv) = self.dp.shared().adverts.pop() {
            if let Err(reason) = self.routers.handle_advert(now, &adv) {
                if let Some(n) = self.control_drops.get_mut(reason as usize) {
                    *n += 1;
                }
            }
        }
        self.late_wakeups += self.routers.handle_timeout(now);
        self.drain_actions(now);
        self.note_peer_masters();
        self.drop_log.tick(now, &self.dp, &self.routers);
    }

    /// Tells the XDP filters whose adverts to let through ahead of the
    /// advert rate limit: each router's master when it is a peer (only
    /// changes reach the kernel).
    fn note_peer_masters(&self) {
        self.dp.set_peer_masters(self.routers.iter().map(|r| {
            let peer = r.instance().master_addr().filter(|a| *a != r.primary());
            (r.id(), peer)
        }));
    }

    fn read_link_events(&mut self, now: Instant) {
        let (routers, names) = (&mut self.routers, &self.port_names);
        self.link_events.drain(|ifindex, up| {
            if let Some(port) = names.get(&ifindex) {
                routers.handle_link(now, port, up);
            }
        });
    }

    fn serve_client(&mut self, ev: &mio::event::Event) {
        let view = requests::View {
            routers: &self.routers,
            dp: &self.dp,
            control_drops: &self.control_drops,
            late_wakeups: self.late_wakeups,
            started: self.started,
        };
        let mut changes: Vec<(String, u8)> = Vec::new();
        self.ctl
            .handle_event(self.poll.registry(), ev, &mut |req: &Request| {
                if let Request::Priority { name, priority } = req {
                    changes.push((name.clone(), *priority));
                }
                view.handle(req)
            });
        if changes.is_empty() {
            return;
        }
        let now = Instant::now();
        for (name, priority) in changes {
            self.routers.handle_priority(now, &name, priority);
        }
        self.drain_actions(now);
    }

    /// Carries out every pending action of every router.
    fn drain_actions(&mut self, now: Instant) {
        while let Some((id, action)) = self.routers.poll_output(now) {
            self.apply(id, action);
        }
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
                if self
                    .tx
                    .send_advert(&self.dp, router, priority, max_advert_int_cs)
                {
                    self.routers.note_advert_sent(id);
                }
            }
            Action::Announce => self.tx.announce(&self.dp, router.spec()),
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
                });
                os::run_notify(&self.cfg, &spec.name, to, priority);
                self.ctl.publish(self.poll.registry(), &event);
            }
            Action::Notice(notice) => log::notice(router.spec(), notice),
        }
    }

    /// Graceful stop: priority-0 adverts from masters, keep forwarding until
    /// a backup took over or a few intervals passed, then detach.
    fn finish(mut self) {
        let now = Instant::now();
        let was_master: Vec<bool> = self
            .routers
            .iter()
            .map(|r| r.instance().state() == State::Master)
            .collect();
        let longest = self
            .routers
            .iter()
            .map(|r| r.spec().advert_interval())
            .max()
            .unwrap_or(Duration::from_secs(1));
        self.routers.handle_shutdown(now);
        // Send the priority-0 adverts but keep ownership while draining.
        while let Some((id, action)) = self.routers.poll_output(now) {
            if let (
                Action::SendAdvert {
                    priority,
                    max_advert_int_cs,
                },
                Some(router),
            ) = (action, self.routers.get(id))
            {
                self.tx
                    .send_advert(&self.dp, router, priority, max_advert_int_cs);
            }
        }
        if was_master.iter().any(|m| *m) {
            let deadline = now + longest * DRAIN_INTERVALS;
            let mut taken_over = vec![false; self.routers.len()];
            while Instant::now() < deadline {
                while let Some(adv) = self.dp.shared().adverts.pop() {
                    if adv.priority > 0 {
                        if let Some(t) = taken_over.get_mut(adv.router.index()) {
                            *t = true;
                        }
                    }
                }
                if was_master.iter().zip(&taken_over).all(|(m, t)| !m || *t) {
                    break;
                }
                std::thread::sleep(Duration::from_millis(1));
            }
        }
        for r in self.routers.iter() {
            self.dp.set_master(r.id(), false);
        }
        self.ctl.shutdown();
        self.dp.stop();
        tracing::info!("xvrrp stopped; XDP programs detached");
    }
}
