//! `xvrrp run`: the control thread and its wiring to the fast path.
//!
//! The control thread is the only I/O shell around the sans-IO VRRP
//! instances: it reads the clock once per loop, feeds them the
//! advertisements the workers punted (stamped with their arrival time) and
//! the timers that are due, turns their outputs into frames for the workers
//! and ownership flags, serves the control socket, and sleeps in one
//! `mio::Poll` until the next timer, a punted advert, a client or a signal.

use std::{
    collections::HashMap,
    net::{IpAddr, Ipv4Addr, Ipv6Addr},
    path::Path,
    sync::atomic::{AtomicBool, Ordering},
    time::{Duration, Instant},
};

use crate::{
    mcast::Memberships,
    peers::PeerMacs,
    track::{LinkEvents, LinkTracker},
};
use anyhow::{bail, Context};
use mio::{unix::SourceFd, Events, Interest, Poll, Token};
use serde_json::{json, Map, Value};
use xvrrp_control::{
    config::{self, ChecksumMode, Config, Queues},
    ctl_socket::{CtlServer, Request, Response},
    vrrp::{
        fsm::{Advert, Output, State, Version as FsmVersion},
        instance::{Instance, InstanceConfig},
        sync::{propagate, SyncGroup},
    },
};
use xvrrp_dataplane::{
    lpm::Route, stats::DropReason, AttachMode, Dataplane, DataplaneConfig, Idle, InstanceSpec,
    PortSpec,
};
use xvrrp_wire::{
    ethernet::EthernetAddress,
    frames,
    ipv4::Ipv4Packet,
    ipv6::Ipv6Packet,
    vrrp::{self as wire_vrrp, AddrList, ChecksumKind, Version as WireVersion, VrrpRepr},
};

const WAKE: Token = Token(0);
const LINKS: Token = Token(1);
const CTL_FIRST_TOKEN: usize = 16;
/// How long a stopping master keeps forwarding at most after its priority-0
/// advertisement, in advertisement intervals (SPEC §7).
const DRAIN_INTERVALS: u32 = 3;
/// At most one log line about dropped frames per this period: a peer (or
/// an attacker) must not be able to flood the journal.
const DROP_LOG_PERIOD: Duration = Duration::from_secs(10);
/// A timer served later than this after its deadline counts as a late
/// wake-up (a starved control thread; CHECKLIST F04).
const LATE: Duration = Duration::from_millis(2);
/// Real-time priority of the control thread (SCHED_FIFO): above every
/// normal task, so a busy neighbour on its core cannot delay adverts.
const CONTROL_RT_PRIORITY: i32 = 10;
/// Longest sleep of the control loop with no timer due.
const MAX_SLEEP: Duration = Duration::from_millis(500);

/// A gratuitous-ARP burst in progress.
#[derive(Debug, Clone, Copy)]
struct GarpBurst {
    remaining: u32,
    next: Instant,
}

/// The control thread's view of one instance.
struct Slot {
    cfg: config::VrrpConfig,
    port: usize,
    /// The port's address the adverts come from: its primary IPv4 address,
    /// or its IPv6 link-local address for an IPv6 instance (RFC 9568 §5.1.2.1).
    primary: IpAddr,
    vmac: EthernetAddress,
    vips4: Vec<Ipv4Addr>,
    vips6: Vec<Ipv6Addr>,
    /// Whether the peer's checksum variant differing from ours was logged.
    checksum_mismatch_logged: bool,
    /// Accepted adverts whose address list differs from ours (v3, B16/B22).
    address_list_errors: u64,
    /// Whether a master's interval differing from ours was logged (B18).
    interval_mismatch_logged: bool,
    /// Priority before tracking: the configured one, or what `priority` set.
    base_priority: u8,
    /// Tracked links: (port name, ifindex, weight added while it is down).
    tracks: Vec<(String, u32, i32)>,
    /// ifindex of the instance's own port: while it is down the instance is
    /// in fault (Initialize, no ownership) and comes back up through Startup.
    port_ifindex: u32,
    /// The own port is down (shown as state "fault").
    fault: bool,
    garp: Option<GarpBurst>,
    garp_refresh_at: Option<Instant>,
    peer_checksum: Option<ChecksumKind>,
    adverts_rx: u64,
    adverts_tx: u64,
}

static STOP: AtomicBool = AtomicBool::new(false);

/// Runs the appliance until SIGINT/SIGTERM.
pub fn run(config_path: &Path) -> anyhow::Result<()> {
    let cfg = config::load(config_path).map_err(|e| anyhow::anyhow!("{e}"))?;
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        bail!("xvrrp run needs root (CAP_NET_ADMIN, CAP_NET_RAW, CAP_BPF, CAP_IPC_LOCK) to attach XDP programs");
    }
    let dcfg = dataplane_config(&cfg)?;
    let dataplane = Dataplane::start(&dcfg).context("starting the fast path")?;
    let mut daemon = Daemon::new(cfg, dataplane)?;
    let result = daemon.run();
    daemon.finish();
    result
}

fn dataplane_config(cfg: &Config) -> anyhow::Result<DataplaneConfig> {
    let port_index = |name: &str| cfg.ports.iter().position(|p| p.name == name);
    let mut instances = Vec::with_capacity(cfg.vrrp.len());
    for v in &cfg.vrrp {
        let port = port_index(&v.port)
            .with_context(|| format!("instance {} names unknown port {}", v.name, v.port))?;
        let addrs = v.advertised_addresses();
        let vips4 = addrs
            .iter()
            .filter_map(|a| match a.addr {
                IpAddr::V4(ip) => Some((ip, a.prefix_len)),
                IpAddr::V6(_) => None,
            })
            .collect();
        let vips6 = addrs
            .iter()
            .filter_map(|a| match a.addr {
                IpAddr::V6(ip) => Some((ip, a.prefix_len)),
                IpAddr::V4(_) => None,
            })
            .collect();
        instances.push(InstanceSpec {
            port,
            vrid: v.vrid,
            version: if v.version == 2 {
                WireVersion::V2
            } else {
                WireVersion::V3
            },
            vips4,
            vips6,
            accept: v.accept,
            unicast: !v.unicast_peers.is_empty(),
        });
    }
    if cfg.kernel_routes {
        bail!("[routes] kernel = true (mirroring the kernel's routing table) is not supported by this version yet");
    }
    let (mut routes4, mut routes6) = (Vec::new(), Vec::new());
    for r in &cfg.routes {
        let port =
            port_index(&r.port).with_context(|| format!("route names unknown port {}", r.port))?;
        match (r.to.addr, r.via) {
            (IpAddr::V4(net), IpAddr::V4(via)) => routes4.push(Route {
                net,
                len: r.to.prefix_len,
                via: Some(via),
                port,
            }),
            (IpAddr::V6(net), IpAddr::V6(via)) => routes6.push(Route {
                net,
                len: r.to.prefix_len,
                via: Some(via),
                port,
            }),
            _ => bail!(
                "route to {}: the gateway {} is of the other family",
                r.to,
                r.via
            ),
        }
    }
    Ok(DataplaneConfig {
        ports: cfg
            .ports
            .iter()
            .map(|p| PortSpec {
                name: p.name.clone(),
                queues: match &p.queues {
                    Queues::All => None,
                    Queues::List(q) => Some(q.clone()),
                },
            })
            .collect(),
        instances,
        routes4,
        routes6,
        cores: cfg.dataplane.cores.clone(),
        idle: match cfg.dataplane.idle {
            config::Idle::Busy => Idle::Busy,
            config::Idle::Adaptive => Idle::Adaptive,
            config::Idle::Wait => Idle::Wait,
        },
        batch: usize::try_from(cfg.dataplane.batch).unwrap_or(64),
        attach: match cfg.dataplane.xdp_mode {
            config::XdpMode::Auto => AttachMode::Auto,
            config::XdpMode::Native => AttachMode::Native,
            config::XdpMode::Generic => AttachMode::Generic,
        },
        zero_copy: match cfg.dataplane.zero_copy {
            config::ZeroCopy::Auto => None,
            config::ZeroCopy::On => Some(true),
            config::ZeroCopy::Off => Some(false),
        },
    })
}

/// What to make of an advert's address list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum AddressList {
    /// The same addresses as ours (in any order), link-local first for IPv6.
    Matches,
    /// Different (or, for IPv6, no link-local first): a misconfiguration
    /// to count and log, but the advert still counts (VRRPv3, or the owner).
    Mismatch,
    /// Different, from a VRRPv2 router that is not the owner: dropped.
    Drop,
}

/// RFC 9568 §6.4.2 / RFC 3768 §7.1 (CHECKLIST B16, B22): VRRPv3 accepts an
/// advert listing other addresses and counts it; VRRPv2 drops it unless the
/// sender is the address owner (priority 255). An IPv6 list should start
/// with a link-local address.
fn address_list_verdict(
    version: WireVersion,
    priority: u8,
    ours: &[IpAddr],
    theirs: &[IpAddr],
) -> AddressList {
    let same_set = theirs.len() == ours.len() && theirs.iter().all(|a| ours.contains(a));
    let link_local_first = match theirs.first() {
        Some(IpAddr::V6(a)) => a.segments()[0] & 0xffc0 == 0xfe80,
        _ => true,
    };
    if same_set && link_local_first {
        AddressList::Matches
    } else if version == WireVersion::V2 && priority != 255 {
        AddressList::Drop
    } else {
        AddressList::Mismatch
    }
}

/// The fields of an advertisement the worker validated and punted.
struct PuntedAdvert {
    src: IpAddr,
    vrid: u8,
    version: WireVersion,
    priority: u8,
    max_advert_int: u16,
    /// The v3/IPv4 checksum variant the sender used.
    checksum: Option<ChecksumKind>,
    /// The virtual addresses it lists, in order.
    addresses: Vec<IpAddr>,
}

impl PuntedAdvert {
    /// Parses the IP packet again (the worker checked it, with the
    /// destination mode the packet itself claims: multicast group or unicast).
    fn parse(ip_bytes: &[u8]) -> Result<Self, xvrrp_wire::error::WireError> {
        match ip_bytes.first().map(|b| b >> 4) {
            Some(6) => {
                let ip = Ipv6Packet::new_checked(ip_bytes)?;
                let r = wire_vrrp::parse_ipv6_advert(&ip, ip.dst_addr().is_multicast())?;
                Ok(Self {
                    src: IpAddr::V6(ip.src_addr()),
                    vrid: r.vrid,
                    version: r.version,
                    priority: r.priority,
                    max_advert_int: r.max_advert_int,
                    checksum: None,
                    addresses: r.addresses.iter().collect(),
                })
            }
            _ => {
                let ip = Ipv4Packet::new_checked(ip_bytes)?;
                let (r, kind) = wire_vrrp::parse_ipv4_advert(&ip, ip.dst_addr().is_multicast())?;
                Ok(Self {
                    src: IpAddr::V4(ip.src_addr()),
                    vrid: r.vrid,
                    version: r.version,
                    priority: r.priority,
                    max_advert_int: r.max_advert_int,
                    checksum: Some(kind),
                    addresses: r.addresses.iter().collect(),
                })
            }
        }
    }
}

struct Daemon {
    cfg: Config,
    dp: Dataplane,
    slots: Vec<Slot>,
    /// The sans-IO instances, index-aligned with `slots`.
    fsms: Vec<Instance>,
    groups: Vec<SyncGroup>,
    poll: Poll,
    ctl: CtlServer,
    started: Instant,
    /// Adverts the control thread itself refused, by reason.
    control_drops: HashMap<&'static str, u64>,
    /// Debounced state of the tracked links.
    tracker: LinkTracker,
    /// Link events from the kernel, when anything is tracked.
    link_events: Option<LinkEvents>,
    /// MACs of unicast peers.
    peer_macs: PeerMacs,
    /// VRRP multicast group memberships (held for their lifetime).
    _memberships: Memberships,
    /// Drop totals by reason at the last drop log line, and when it was.
    drops_logged: (Vec<u64>, Instant),
    /// Timers served later than [`LATE`] after their deadline.
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
        let mut slots = Vec::with_capacity(cfg.vrrp.len());
        let mut fsms = Vec::with_capacity(cfg.vrrp.len());
        let mut tracker = LinkTracker::default();
        for v in &cfg.vrrp {
            let port = cfg.ports.iter().position(|p| p.name == v.port).unwrap_or(0);
            let info = dp.port_info(port);
            let primary = if v.is_ipv6() {
                info.and_then(|i| i.link_local()).map(IpAddr::V6)
            } else {
                info.and_then(|i| i.addrs_v4.first().map(|(a, _)| IpAddr::V4(*a)))
            }
            .with_context(|| {
                format!(
                    "port {} has no address to advertise {} from",
                    v.port, v.name
                )
            })?;
            let version = if v.version == 2 {
                FsmVersion::V2
            } else {
                FsmVersion::V3
            };
            let interval_cs = u16::try_from(v.advert_interval.as_millis() / 10).unwrap_or(u16::MAX);
            let fsm = Instance::new(InstanceConfig {
                name: v.name.clone(),
                vrid: v.vrid,
                version,
                priority: v.priority,
                advert_interval_cs: interval_cs,
                preempt: v.preempt,
                preempt_delay: v.preempt_delay,
                primary_addr: primary,
            });
            let port_ifindex = info.map(|i| i.index).unwrap_or(0);
            let port_up = xvrrp_dataplane::iface::link_up(&v.port);
            tracker.track(port_ifindex, port_up);
            let mut tracks = Vec::with_capacity(v.track.len());
            for t in &v.track {
                let idx = cfg.ports.iter().position(|p| p.name == t.port);
                let ifindex = idx
                    .and_then(|i| dp.port_info(i))
                    .map(|i| i.index)
                    .with_context(|| {
                        format!("instance {} tracks unknown port {}", v.name, t.port)
                    })?;
                tracker.track(ifindex, xvrrp_dataplane::iface::link_up(&t.port));
                tracks.push((t.port.clone(), ifindex, t.weight));
            }
            let addrs = v.advertised_addresses();
            let vips4 = addrs
                .iter()
                .filter_map(|a| match a.addr {
                    IpAddr::V4(ip) => Some(ip),
                    IpAddr::V6(_) => None,
                })
                .collect();
            let vips6 = addrs
                .iter()
                .filter_map(|a| match a.addr {
                    IpAddr::V6(ip) => Some(ip),
                    IpAddr::V4(_) => None,
                })
                .collect();
            fsms.push(fsm);
            slots.push(Slot {
                cfg: v.clone(),
                port,
                primary,
                vmac: EthernetAddress(v.vmac()),
                vips4,
                vips6,
                checksum_mismatch_logged: false,
                address_list_errors: 0,
                interval_mismatch_logged: false,
                base_priority: v.priority,
                tracks,
                port_ifindex,
                fault: false,
                garp: None,
                garp_refresh_at: None,
                peer_checksum: None,
                adverts_rx: 0,
                adverts_tx: 0,
            });
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
        let mut memberships = Memberships::default();
        let mut joined = std::collections::HashSet::new();
        for slot in slots.iter().filter(|s| s.cfg.unicast_peers.is_empty()) {
            let ifindex = slot.port_ifindex;
            if joined.insert((ifindex, slot.primary.is_ipv6())) {
                if slot.primary.is_ipv6() {
                    memberships.join_v6(frames::VRRP_V6_MCAST, ifindex)?;
                } else {
                    memberships.join_v4(frames::VRRP_V4_MCAST, ifindex)?;
                }
            }
        }
        let link_events = {
            let events = LinkEvents::open().context("subscribing to link events (rtnetlink)")?;
            poll.registry()
                .register(&mut SourceFd(&events.raw_fd()), LINKS, Interest::READABLE)
                .context("registering link events")?;
            Some(events)
        };
        Ok(Self {
            cfg,
            dp,
            slots,
            fsms,
            groups,
            poll,
            ctl,
            started: Instant::now(),
            control_drops: HashMap::new(),
            tracker,
            link_events,
            peer_macs: PeerMacs::default(),
            _memberships: memberships,
            drops_logged: (vec![0; DropReason::COUNT], Instant::now()),
            late_wakeups: 0,
        })
    }

    fn run(&mut self) -> anyhow::Result<()> {
        raise_control_priority();
        let now = Instant::now();
        self.apply_tracking(now);
        for (slot, fsm) in self.slots.iter_mut().zip(&mut self.fsms) {
            if self.tracker.is_up(slot.port_ifindex) {
                fsm.handle_startup(now);
            } else {
                slot.fault = true;
                tracing::warn!(instance = %slot.cfg.name, port = %slot.cfg.port, "port is down: instance in fault");
            }
        }
        self.drain_outputs(now);
        tracing::info!(instances = self.slots.len(), "xvrrp running");
        notify_systemd("READY=1");
        // systemd's watchdog (WatchdogSec): ping at half its period from the
        // control loop, so a stuck control thread gets the unit restarted.
        let watchdog = std::env::var("WATCHDOG_USEC")
            .ok()
            .and_then(|v| v.parse::<u64>().ok())
            .map(|us| Duration::from_micros(us / 2));
        let max_sleep = watchdog.map_or(MAX_SLEEP, |w| w.min(MAX_SLEEP));
        let mut last_ping = Instant::now();
        let mut events = Events::with_capacity(64);
        while !STOP.load(Ordering::SeqCst) {
            if watchdog.is_some_and(|period| last_ping.elapsed() >= period) {
                notify_systemd("WATCHDOG=1");
                last_ping = Instant::now();
            }
            self.step(Instant::now());
            let timeout = self
                .next_deadline()
                .map(|d| d.saturating_duration_since(Instant::now()));
            let wake = &self.dp.shared().control_wakeup;
            wake.prepare_sleep();
            let timeout = if self.dp.shared().adverts.is_empty() {
                timeout.map(|t| t.min(max_sleep)).or(Some(max_sleep))
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
                if ev.token() == WAKE {
                    continue;
                }
                if ev.token() == LINKS {
                    let now = Instant::now();
                    if let Some(events) = &self.link_events {
                        let tracker = &mut self.tracker;
                        events.drain(|ifindex, up| tracker.handle_link(now, ifindex, up));
                    }
                    continue;
                }
                if self.ctl.owns(ev.token()) {
                    let (ctl, registry) = (&mut self.ctl, self.poll.registry());
                    let view = View {
                        late_wakeups: self.late_wakeups,
                        slots: &self.slots,
                        tracker: &self.tracker,
                        fsms: &self.fsms,
                        dp: &self.dp,
                        control_drops: &self.control_drops,
                        started: self.started,
                    };
                    let mut changes: Vec<(String, u8)> = Vec::new();
                    ctl.handle_event(registry, ev, &mut |req: &Request| {
                        if let Request::Priority { name, priority } = req {
                            changes.push((name.clone(), *priority));
                        }
                        view.handle_request(req)
                    });
                    for (name, prio) in changes {
                        self.set_priority(&name, prio);
                    }
                }
            }
        }
        Ok(())
    }

    fn set_priority(&mut self, name: &str, priority: u8) {
        let now = Instant::now();
        if let Some(slot) = self.slots.iter_mut().find(|s| s.cfg.name == name) {
            slot.base_priority = priority;
        }
        self.apply_tracking(now);
        self.drain_outputs(now);
    }

    /// Effective priority of each instance: its base priority plus the
    /// weights of its tracked links that are down (clamped by the FSM).
    fn apply_tracking(&mut self, now: Instant) {
        let mut faulted = Vec::new();
        for (i, (slot, fsm)) in self.slots.iter_mut().zip(&mut self.fsms).enumerate() {
            let port_up = self.tracker.is_up(slot.port_ifindex);
            if slot.fault && port_up {
                slot.fault = false;
                tracing::info!(instance = %slot.cfg.name, port = %slot.cfg.port, "port is up again: instance restarts");
                fsm.handle_startup(now);
            } else if !slot.fault && !port_up && fsm.state() != State::Initialize {
                slot.fault = true;
                tracing::warn!(instance = %slot.cfg.name, port = %slot.cfg.port, "port is down: instance in fault");
                fsm.handle_shutdown(now);
                faulted.push(i);
            }
            if slot.cfg.priority == 255 {
                // The address owner's priority never moves (RFC 9568 §6.1).
                continue;
            }
            let adjust: i32 = slot
                .tracks
                .iter()
                .filter(|(_, ifindex, _)| !self.tracker.is_up(*ifindex))
                .map(|(_, _, w)| *w)
                .sum();
            let wanted = (i32::from(slot.base_priority) + adjust).clamp(1, 254);
            let wanted = u8::try_from(wanted).unwrap_or(1);
            if wanted != fsm.effective_priority() {
                tracing::info!(instance = %slot.cfg.name, priority = wanted, "priority changed");
                fsm.handle_priority(now, wanted);
            }
        }
        // A member in fault takes its sync group down with it (as keepalived
        // puts the whole group in FAULT): a gateway that lost one side must
        // not keep the other, or traffic would enter one box and leave by
        // the dead port of the other.
        for i in faulted {
            for group in self.groups.iter().filter(|g| g.members.contains(&i)) {
                for &j in group.members.iter().filter(|&&j| j != i) {
                    if let Some(other) = self.fsms.get_mut(j) {
                        if other.state() == State::Master {
                            other.handle_force(now, State::Backup);
                        }
                    }
                }
            }
        }
        self.drain_outputs(now);
    }

    /// Logs, at most once per [`DROP_LOG_PERIOD`], what the fast path
    /// dropped since the last line, by reason.
    fn log_drops(&mut self, now: Instant) {
        if now.saturating_duration_since(self.drops_logged.1) < DROP_LOG_PERIOD {
            return;
        }
        let mut totals = vec![0u64; DropReason::COUNT];
        for worker in self.dp.stats() {
            for port in &worker.drops {
                for (t, n) in totals.iter_mut().zip(port) {
                    *t += n;
                }
            }
        }
        let new: Vec<String> = DropReason::ALL
            .iter()
            .zip(totals.iter().zip(&self.drops_logged.0))
            // Backups drop traffic to the VMAC by design; not worth a line.
            .filter(|(r, (t, old))| t > old && **r != DropReason::NotMaster)
            .map(|(r, (t, old))| format!("{}={}", r.name(), t - old))
            .collect();
        if !new.is_empty() {
            tracing::warn!(
                period_s = DROP_LOG_PERIOD.as_secs(),
                "fast path dropped frames: {}",
                new.join(" ")
            );
        }
        self.drops_logged = (totals, now);
    }

    /// One pass: punted adverts, due timers, outputs, GARP bursts.
    fn step(&mut self, now: Instant) {
        while let Some(adv) = self.dp.shared().adverts.pop() {
            self.handle_advert(adv.port, adv.arrival, adv.ip_packet());
        }
        if self.tracker.poll_timeout().is_some_and(|t| t <= now) && self.tracker.handle_timeout(now)
        {
            self.apply_tracking(now);
        }
        for fsm in &mut self.fsms {
            if let Some(due) = fsm.poll_timeout().filter(|t| *t <= now) {
                // A timer served more than LATE after its deadline means the
                // control thread was starved (CPU, freeze): counted for stats.
                if now.saturating_duration_since(due) > LATE {
                    self.late_wakeups += 1;
                }
                fsm.handle_timeout(now);
            }
        }
        self.drain_outputs(now);
        self.run_garps(now);
        self.log_drops(now);
    }

    fn count_control_drop(&mut self, reason: &'static str) {
        *self.control_drops.entry(reason).or_insert(0) += 1;
    }

    fn handle_advert(&mut self, port: usize, arrival: Instant, ip_bytes: &[u8]) {
        let advert = match PuntedAdvert::parse(ip_bytes) {
            Ok(a) => a,
            Err(e) => {
                self.count_control_drop(xvrrp_dataplane::process::advert_drop_reason(e).name());
                return;
            }
        };
        let PuntedAdvert {
            src,
            vrid,
            version,
            priority,
            max_advert_int,
            checksum: kind,
            addresses,
        } = advert;
        let Some(idx) = self.slots.iter().position(|s| {
            s.port == port && s.cfg.vrid == vrid && s.primary.is_ipv6() == src.is_ipv6()
        }) else {
            self.count_control_drop(DropReason::VridError.name());
            return;
        };
        let (Some(slot), Some(fsm)) = (self.slots.get_mut(idx), self.fsms.get_mut(idx)) else {
            return;
        };
        if src == slot.primary {
            // Our own advertisement reflected back: inert.
            self.count_control_drop("own-advert");
            return;
        }
        if !slot.cfg.unicast_peers.is_empty() && !slot.cfg.unicast_peers.contains(&src) {
            // Unicast mode: only the configured peers take part.
            self.count_control_drop(DropReason::SourceError.name());
            return;
        }
        let ours: Vec<IpAddr> = slot
            .vips4
            .iter()
            .map(|a| IpAddr::V4(*a))
            .chain(slot.vips6.iter().map(|a| IpAddr::V6(*a)))
            .collect();
        match address_list_verdict(version, priority, &ours, &addresses) {
            AddressList::Matches => {}
            AddressList::Drop => {
                self.count_control_drop("address-list-error");
                return;
            }
            AddressList::Mismatch => {
                if slot.address_list_errors == 0 {
                    tracing::warn!(
                        instance = %slot.cfg.name,
                        peer = %src,
                        "the peer advertises other virtual addresses than ours (or no link-local first): check both configurations"
                    );
                }
                slot.address_list_errors += 1;
            }
        }
        slot.adverts_rx += 1;
        if let Some(kind) = kind {
            slot.peer_checksum = Some(kind);
            let ours = checksum_kind(slot.cfg.checksum);
            if kind != ours && !slot.checksum_mismatch_logged && slot.cfg.version == 3 {
                slot.checksum_mismatch_logged = true;
                tracing::warn!(
                    instance = %slot.cfg.name,
                    peer = %src,
                    peer_checksum = checksum_name(kind),
                    our_checksum = checksum_name(ours),
                    "the peer computes the VRRPv3 checksum the other way; we accept it, but a peer that checks strictly (keepalived, FRR) will drop our adverts: set `checksum` to match"
                );
            }
        }
        let interval_cs = match version {
            WireVersion::V2 => max_advert_int.saturating_mul(100),
            WireVersion::V3 => max_advert_int,
        };
        let ours_cs = u16::try_from(slot.cfg.advert_interval.as_millis() / 10).unwrap_or(u16::MAX);
        if interval_cs != ours_cs && priority != 0 && !slot.interval_mismatch_logged {
            // RFC 9568 §6.4.2: a v3 backup adopts the master's interval (a v2
            // one drops the advert); worth one line, not one per advert (B18).
            slot.interval_mismatch_logged = true;
            tracing::warn!(
                instance = %slot.cfg.name,
                peer = %src,
                peer_interval_ms = u32::from(interval_cs) * 10,
                our_interval_ms = u32::from(ours_cs) * 10,
                "the peer advertises another interval than ours"
            );
        }
        fsm.handle_advert(
            arrival,
            &Advert {
                src,
                priority,
                max_advert_int_cs: interval_cs,
            },
        );
    }

    /// Drains every instance's outputs, following sync-group propagation.
    fn drain_outputs(&mut self, now: Instant) {
        loop {
            let mut any = false;
            for i in 0..self.slots.len() {
                while let Some(out) = self.fsms.get_mut(i).and_then(Instance::poll_output) {
                    any = true;
                    self.apply(i, out, now);
                    if !self.groups.is_empty() {
                        propagate(&mut self.fsms, &self.groups, i, &out, now);
                    }
                }
            }
            if !any {
                break;
            }
        }
    }

    fn apply(&mut self, i: usize, out: Output, now: Instant) {
        let (Some(slot), Some(fsm)) = (self.slots.get_mut(i), self.fsms.get(i)) else {
            return;
        };
        match out {
            Output::SendAdvert {
                priority,
                max_advert_int_cs,
            } => {
                if send_advert(
                    &self.dp,
                    &mut self.peer_macs,
                    slot,
                    priority,
                    max_advert_int_cs,
                ) {
                    slot.adverts_tx += 1;
                }
            }
            Output::SendGarp => {
                slot.garp = Some(GarpBurst {
                    remaining: slot.cfg.garp.count.max(1),
                    next: now,
                });
                if !slot.cfg.garp.refresh.is_zero() {
                    slot.garp_refresh_at = Some(now + slot.cfg.garp.refresh);
                }
            }
            Output::SetOwnership { master } => {
                self.dp.set_master(i, master);
                if !master {
                    slot.garp = None;
                    slot.garp_refresh_at = None;
                }
            }
            Output::StateChanged { from, to, reason } => {
                tracing::info!(
                    instance = %slot.cfg.name,
                    from = %from,
                    to = %to,
                    reason = ?reason,
                    priority = fsm.effective_priority(),
                    "state change"
                );
                let event = json!({
                    "event": "transition",
                    "instance": slot.cfg.name,
                    "from": from.to_string(),
                    "to": to.to_string(),
                    "reason": format!("{reason:?}"),
                });
                self.ctl.publish(self.poll.registry(), &event);
                run_notify(&self.cfg, &slot.cfg.name, to, fsm.effective_priority());
            }
        }
    }

    /// Sends due gratuitous ARPs, only while master.
    fn run_garps(&mut self, now: Instant) {
        for (i, (slot, fsm)) in self.slots.iter_mut().zip(&self.fsms).enumerate() {
            let master = fsm.state() == State::Master && self.dp.shared().is_master(i);
            if !master {
                slot.garp = None;
                continue;
            }
            if slot.garp_refresh_at.is_some_and(|t| t <= now) {
                slot.garp = Some(GarpBurst {
                    remaining: 1,
                    next: now,
                });
                slot.garp_refresh_at = Some(now + slot.cfg.garp.refresh);
            }
            let Some(burst) = slot.garp.as_mut() else {
                continue;
            };
            if burst.next > now {
                continue;
            }
            let mut buf = [0u8; 128];
            for vip in &slot.vips4 {
                if let Ok(n) = frames::garp_v4(&mut buf, slot.vmac, *vip) {
                    self.dp.send(slot.port, buf.get(..n).unwrap_or(&[]));
                }
            }
            for vip in &slot.vips6 {
                if let Ok(n) = frames::unsolicited_na(&mut buf, slot.vmac, *vip) {
                    self.dp.send(slot.port, buf.get(..n).unwrap_or(&[]));
                }
            }
            burst.remaining = burst.remaining.saturating_sub(1);
            burst.next = now + slot.cfg.garp.interval;
            if burst.remaining == 0 {
                slot.garp = None;
            }
        }
    }

    fn next_deadline(&self) -> Option<Instant> {
        self.slots
            .iter()
            .zip(&self.fsms)
            .flat_map(|(s, f)| [f.poll_timeout(), s.garp.map(|g| g.next), s.garp_refresh_at])
            .flatten()
            .chain(self.tracker.poll_timeout())
            .min()
    }

    /// Graceful stop: priority-0 adverts from masters, keep forwarding until
    /// a backup took over or a few intervals passed, then detach.
    fn finish(mut self) {
        let now = Instant::now();
        let was_master: Vec<bool> = self
            .fsms
            .iter()
            .map(|f| f.state() == State::Master)
            .collect();
        let longest = self
            .slots
            .iter()
            .map(|s| s.cfg.advert_interval)
            .max()
            .unwrap_or(Duration::from_secs(1));
        for fsm in &mut self.fsms {
            fsm.handle_shutdown(now);
        }
        // Send the priority-0 adverts but keep ownership while draining.
        for i in 0..self.slots.len() {
            while let Some(out) = self.fsms.get_mut(i).and_then(Instance::poll_output) {
                if let (
                    Output::SendAdvert {
                        priority,
                        max_advert_int_cs,
                    },
                    Some(slot),
                ) = (out, self.slots.get_mut(i))
                {
                    send_advert(
                        &self.dp,
                        &mut self.peer_macs,
                        slot,
                        priority,
                        max_advert_int_cs,
                    );
                }
            }
        }
        if was_master.iter().any(|m| *m) {
            let deadline = now + longest * DRAIN_INTERVALS;
            let mut taken_over = vec![false; self.slots.len()];
            while Instant::now() < deadline {
                while let Some(adv) = self.dp.shared().adverts.pop() {
                    let Ok(punted) = PuntedAdvert::parse(adv.ip_packet()) else {
                        continue;
                    };
                    for (i, s) in self.slots.iter().enumerate() {
                        let same = s.port == adv.port
                            && s.cfg.vrid == punted.vrid
                            && s.primary.is_ipv6() == punted.src.is_ipv6();
                        if same && punted.priority > 0 {
                            if let Some(t) = taken_over.get_mut(i) {
                                *t = true;
                            }
                        }
                    }
                }
                if was_master.iter().zip(&taken_over).all(|(m, t)| !m || *t) {
                    break;
                }
                std::thread::sleep(Duration::from_millis(1));
            }
        }
        for i in 0..self.slots.len() {
            self.dp.set_master(i, false);
        }
        self.ctl.shutdown();
        self.dp.stop();
        tracing::info!("xvrrp stopped; XDP programs detached");
    }
}

fn checksum_kind(mode: ChecksumMode) -> ChecksumKind {
    match mode {
        ChecksumMode::Rfc9568 => ChecksumKind::Rfc9568,
        ChecksumMode::PseudoHeader => ChecksumKind::PseudoHeader,
    }
}

fn checksum_name(kind: ChecksumKind) -> &'static str {
    match kind {
        ChecksumKind::Rfc9568 => "rfc9568",
        ChecksumKind::PseudoHeader => "pseudo-header",
    }
}

/// Builds one advertisement frame to `dst` (multicast group or unicast peer).
fn advert_frame(
    buf: &mut [u8],
    slot: &Slot,
    repr: &VrrpRepr<'_>,
    dst: IpAddr,
    dst_mac: EthernetAddress,
) -> Option<usize> {
    match (slot.primary, dst) {
        (IpAddr::V4(src), IpAddr::V4(dst)) => frames::advert_v4(
            buf,
            slot.vmac,
            src,
            dst,
            dst_mac,
            repr,
            checksum_kind(slot.cfg.checksum),
        )
        .ok(),
        (IpAddr::V6(src), IpAddr::V6(dst)) => {
            frames::advert_v6(buf, slot.vmac, src, dst, dst_mac, repr).ok()
        }
        _ => None,
    }
}

fn send_advert(
    dp: &Dataplane,
    peers: &mut PeerMacs,
    slot: &Slot,
    priority: u8,
    max_advert_int_cs: u16,
) -> bool {
    let version = if slot.cfg.version == 2 {
        WireVersion::V2
    } else {
        WireVersion::V3
    };
    let max_advert_int = match version {
        WireVersion::V2 => max_advert_int_cs / 100,
        WireVersion::V3 => max_advert_int_cs,
    };
    let addresses = if slot.vips6.is_empty() {
        AddrList::V4(&slot.vips4)
    } else {
        AddrList::V6(&slot.vips6)
    };
    let repr = VrrpRepr {
        version,
        vrid: slot.cfg.vrid,
        priority,
        max_advert_int,
        addresses,
    };
    let mut buf = [0u8; 1514];
    let mut sent = false;
    if slot.cfg.unicast_peers.is_empty() {
        let (group, group_mac) = if slot.primary.is_ipv6() {
            (IpAddr::V6(frames::VRRP_V6_MCAST), frames::VRRP_V6_MCAST_MAC)
        } else {
            (IpAddr::V4(frames::VRRP_V4_MCAST), frames::VRRP_V4_MCAST_MAC)
        };
        if let Some(n) = advert_frame(&mut buf, slot, &repr, group, group_mac) {
            sent = dp.send(slot.port, buf.get(..n).unwrap_or(&[]));
        }
    } else {
        let now = Instant::now();
        for peer in &slot.cfg.unicast_peers {
            let mac = peers.lookup(now, &slot.cfg.port, *peer);
            if let Some(n) = advert_frame(&mut buf, slot, &repr, *peer, mac) {
                sent |= dp.send(slot.port, buf.get(..n).unwrap_or(&[]));
            }
        }
    }
    sent
}

fn state_name(s: State) -> String {
    s.to_string()
}

/// What the control socket's handler reads.
struct View<'a> {
    late_wakeups: u64,
    slots: &'a [Slot],
    tracker: &'a LinkTracker,
    fsms: &'a [Instance],
    dp: &'a Dataplane,
    control_drops: &'a HashMap<&'static str, u64>,
    started: Instant,
}

impl View<'_> {
    fn handle_request(&self, req: &Request) -> Response {
        let (slots, started) = (self.slots, self.started);
        let now = Instant::now();
        match req {
            Request::Hello => ok(json!({"version": env!("CARGO_PKG_VERSION"), "name": "xvrrp"})),
            Request::Status => {
                let instances: Vec<Value> = slots
                .iter()
                .zip(self.fsms)
                .map(|(s, f)| {
                    let master = f.master_addr().map(|a| a.to_string());
                    json!({
                        "name": s.cfg.name,
                        "port": s.cfg.port,
                        "vrid": s.cfg.vrid,
                        "version": s.cfg.version,
                        "state": if s.fault { "fault".to_string() } else { state_name(f.state()) },
                        "priority": f.priority(),
                        "effective_priority": f.effective_priority(),
                        "master": master,
                        "transitions": f.transitions(),
                        "since_ms": f.since().map(|t| millis(now.saturating_duration_since(t))),
                        "advert_interval_ms": millis(s.cfg.advert_interval),
                        "master_adver_interval_ms": u64::from(f.master_adver_interval_cs()) * 10,
                        "skew_time_us": micros(f.skew_time()),
                        "master_down_interval_us": micros(f.master_down_interval()),
                        "preempt": s.cfg.preempt,
                        "accept": s.cfg.accept,
                        "checksum": checksum_name(checksum_kind(s.cfg.checksum)),
                        "peer_checksum": s.peer_checksum.map(checksum_name),
                        "addresses": s.cfg.addresses.iter().map(|a| format!("{}/{}", a.addr, a.prefix_len)).collect::<Vec<_>>(),
                        "track": s.tracks.iter().map(|(port, ifindex, weight)| json!({"port": port, "weight": weight, "up": self.tracker.is_up(*ifindex)})).collect::<Vec<_>>(),
                        "address_list_errors": s.address_list_errors,
                        "adverts_rx": s.adverts_rx,
                        "adverts_tx": s.adverts_tx,
                    })
                })
                .collect();
                ok(
                    json!({"instances": instances, "uptime_ms": millis(now.saturating_duration_since(started))}),
                )
            }
            Request::Stats => {
                let mut stats = stats_json(slots, self.fsms, self.dp, self.control_drops);
                if let Some(control) = stats.get_mut("control").and_then(Value::as_object_mut) {
                    control.insert("late_wakeups".into(), json!(self.late_wakeups));
                }
                ok(stats)
            }
            Request::Priority { name, priority } => {
                if slots.iter().any(|s| &s.cfg.name == name) {
                    ok(json!({"name": name, "priority": priority}))
                } else {
                    Response::Err {
                        code: "unknown-instance",
                        message: format!("no instance named {name}"),
                    }
                }
            }
            _ => Response::Err {
                code: "unsupported",
                message: "this command is not available in this version of xvrrp".into(),
            },
        }
    }
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

fn micros(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX)
}

fn ok(v: Value) -> Response {
    match v {
        Value::Object(m) => Response::Ok(m),
        other => {
            let mut m = Map::new();
            m.insert("result".into(), other);
            Response::Ok(m)
        }
    }
}

fn stats_json(
    slots: &[Slot],
    fsms: &[Instance],
    dp: &Dataplane,
    control_drops: &HashMap<&'static str, u64>,
) -> Value {
    let workers = dp.stats();
    let xsk = dp.xsk_stats();
    let mut ports = Map::new();
    for (p, view) in dp.tables().ports.iter().enumerate() {
        let mut per_worker = Map::new();
        for (w, c) in workers.iter().enumerate() {
            let Some(pc) = c.ports.get(p) else { continue };
            let mut obj = Map::new();
            for (k, v) in pc.fields() {
                obj.insert(k.into(), json!(v));
            }
            let mut drops = Map::new();
            if let Some(d) = c.drops.get(p) {
                for reason in DropReason::ALL {
                    drops.insert(
                        reason.name().into(),
                        json!(d.get(reason as usize).copied().unwrap_or(0)),
                    );
                }
            }
            obj.insert("drops".into(), Value::Object(drops));
            obj.insert("idle_sleeps".into(), json!(c.idle_sleeps));
            if let Some(x) = xsk_json(&xsk, p, w) {
                obj.insert("xsk".into(), x);
            }
            per_worker.insert(w.to_string(), Value::Object(obj));
        }
        ports.insert(view.name.clone(), json!({"workers": per_worker}));
    }
    let instances: Map<String, Value> = slots
        .iter()
        .zip(fsms)
        .map(|(s, f)| {
            (
                s.cfg.name.clone(),
                json!({"adverts_rx": s.adverts_rx, "adverts_tx": s.adverts_tx, "address-list-error": s.address_list_errors, "state": state_name(f.state())}),
            )
        })
        .collect();
    let control: Map<String, Value> = control_drops
        .iter()
        .map(|(k, v)| ((*k).to_string(), json!(v)))
        .collect();
    json!({"ports": ports, "instances": instances, "control": {"drops": control}})
}

/// The kernel's counters of `worker`'s AF_XDP sockets on `port` (summed
/// over its queues: frames lost before the worker saw them), under the
/// kernel's names; `null` if they could not be read, `None` when the
/// worker has no socket there.
fn xsk_json(
    sockets: &[xvrrp_dataplane::stats::SocketStats],
    port: usize,
    worker: usize,
) -> Option<Value> {
    let sum = sockets
        .iter()
        .filter(|s| s.port == port && s.worker == worker)
        .map(|s| s.stats)
        .reduce(|a, b| a.zip(b).map(|(a, b)| a.sum(b)))?;
    Some(sum.map_or(Value::Null, |st| {
        Value::Object(
            st.fields()
                .iter()
                .map(|(k, v)| ((*k).to_owned(), json!(v)))
                .collect(),
        )
    }))
}

/// Puts the calling (control) thread in SCHED_FIFO so that CPU contention
/// cannot delay adverts beyond an interval. The thread sleeps almost all
/// the time, so it cannot starve its core. Needs CAP_SYS_NICE; without it
/// the thread stays in the normal class and a warning says so.
fn raise_control_priority() {
    let param = libc::sched_param {
        sched_priority: CONTROL_RT_PRIORITY,
    };
    // RESET_ON_FORK: threads and processes it starts (the notify script)
    // fall back to the normal class.
    let policy = libc::SCHED_FIFO | libc::SCHED_RESET_ON_FORK;
    // SAFETY: sched_setscheduler on the calling thread (pid 0) with a valid param.
    let rc = unsafe { libc::sched_setscheduler(0, policy, &param) };
    if rc != 0 {
        tracing::warn!(
            error = %std::io::Error::last_os_error(),
            "could not give the control thread real-time priority (needs CAP_SYS_NICE); adverts may be late under CPU load"
        );
    }
}

/// Tells systemd (Type=notify) about our state, if it is listening.
fn notify_systemd(state: &str) {
    let Some(path) = std::env::var_os("NOTIFY_SOCKET") else {
        return;
    };
    let Ok(sock) = std::os::unix::net::UnixDatagram::unbound() else {
        return;
    };
    let path = path.to_string_lossy().into_owned();
    let res = if let Some(abstract_name) = path.strip_prefix('@') {
        use std::os::linux::net::SocketAddrExt;
        std::os::unix::net::SocketAddr::from_abstract_name(abstract_name.as_bytes())
            .and_then(|addr| sock.send_to_addr(state.as_bytes(), &addr))
    } else {
        sock.send_to(state.as_bytes(), &path)
    };
    if let Err(e) = res {
        tracing::warn!(error = %e, "sd_notify failed");
    }
}

/// Runs the configured notify script with INSTANCE STATE PRIORITY, detached.
fn run_notify(cfg: &Config, instance: &str, state: State, priority: u8) {
    let Some(script) = &cfg.global.notify else {
        return;
    };
    let spawned = std::process::Command::new(script)
        .arg(instance)
        .arg(state.to_string())
        .arg(priority.to_string())
        .stdin(std::process::Stdio::null())
        .spawn();
    match spawned {
        // Reap it from a thread so the control loop never waits on a script.
        Ok(mut child) => {
            std::thread::spawn(move || child.wait());
        }
        Err(e) => {
            tracing::warn!(script = %script.display(), error = %e, "notify script failed to start")
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn ips(list: &[&str]) -> Vec<IpAddr> {
        list.iter().map(|a| a.parse().unwrap()).collect()
    }

    #[test]
    fn b16_b22_address_list_verdicts() {
        let ours = ips(&["192.0.2.1", "192.0.2.5"]);
        let v3 = WireVersion::V3;
        let v2 = WireVersion::V2;
        let same = ips(&["192.0.2.5", "192.0.2.1"]);
        let other = ips(&["192.0.2.1", "192.0.2.77"]);
        let fewer = ips(&["192.0.2.1"]);
        assert_eq!(
            address_list_verdict(v3, 100, &ours, &same),
            AddressList::Matches
        );
        assert_eq!(
            address_list_verdict(v2, 100, &ours, &same),
            AddressList::Matches
        );
        // B16: same count, other addresses; and another count.
        assert_eq!(
            address_list_verdict(v3, 100, &ours, &other),
            AddressList::Mismatch
        );
        assert_eq!(
            address_list_verdict(v3, 100, &ours, &fewer),
            AddressList::Mismatch
        );
        assert_eq!(
            address_list_verdict(v2, 100, &ours, &other),
            AddressList::Drop
        );
        assert_eq!(
            address_list_verdict(v2, 100, &ours, &fewer),
            AddressList::Drop
        );
        // (†) the v2 owner is believed whatever it lists.
        assert_eq!(
            address_list_verdict(v2, 255, &ours, &other),
            AddressList::Mismatch
        );
        // B22: an IPv6 list must start with a link-local address.
        let ours6 = ips(&["fe80::200:5eff:fe00:201", "2001:db8:1::1"]);
        let global_first = ips(&["2001:db8:1::1", "fe80::200:5eff:fe00:201"]);
        assert_eq!(
            address_list_verdict(v3, 100, &ours6, &ours6),
            AddressList::Matches
        );
        assert_eq!(
            address_list_verdict(v3, 100, &ours6, &global_first),
            AddressList::Mismatch
        );
    }
}
