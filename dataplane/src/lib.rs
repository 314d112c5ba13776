//! xvrrp's fast path: an XDP filter per port that redirects the appliance's
//! business to AF_XDP sockets, and one polling worker per configured core
//! that answers ARP and ICMP echo for the virtual addresses, forwards frames
//! sent to the virtual MACs, and punts VRRP advertisements to the control
//! thread through lock-free queues; while `xvrrp capture` runs on a port,
//! the workers also copy its frames into a ring ([`capture`]).

pub mod capture;
pub mod error;
pub mod iface;
pub mod limiter;
pub mod lpm;
pub mod neigh;
pub mod process;
pub mod rescue;
pub mod routes;
pub mod shared;
pub mod stats;
pub mod worker;
pub mod xdp;
pub mod xdp_maps;
#[cfg(test)]
mod xdp_tests;
pub mod xsk;

use std::{
    net::{IpAddr, Ipv4Addr, Ipv6Addr},
    os::fd::{AsRawFd, BorrowedFd, OwnedFd},
    sync::{atomic::Ordering, Arc, Mutex},
    thread::JoinHandle,
    time::{Duration, Instant},
};

pub use error::DataplaneError;
use iface::InterfaceInfo;
use lpm::{Origin, Route};
use neigh::NeighbourSnapshot;
pub use process::InstanceView;
use process::{PortView, Tables};
use routes::{RoutePublisher, RouteSources, SharedSources, TablesCell};
use shared::Shared;
use stats::{Counters, SocketStats};
pub use worker::Idle;
use worker::Worker;
pub use xdp::AttachMode;
use xdp::PortFilter;
use xdp_maps::{XdpControl, XdpPortStats};
use xsk::WorkerXsk;
use xvrrp_control::{config, config::Config, vrrp::RxAdvert, RouterId};

/// How the fast path serves one port, as it turned out at start: what
/// `status` shows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortLayout {
    /// Interface name.
    pub name: String,
    /// XDP attach mode in use: `"native"` or `"generic"`.
    pub xdp_mode: &'static str,
    /// The receive queues served, each with its socket's worker and mode.
    pub queues: Vec<QueueLayout>,
    /// Receive queues of the interface (frames on a queue not served go to
    /// the kernel).
    pub rx_queues: u32,
    /// The worker that sends on this port for the workers with no socket
    /// on it, and the control thread's frames.
    pub tx_worker: Option<usize>,
}

/// One served receive queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QueueLayout {
    /// Queue id.
    pub queue: u32,
    /// Worker whose socket serves it.
    pub worker: usize,
    /// That worker's core.
    pub core: Option<usize>,
    /// Whether the socket is in zero-copy mode (else copy mode).
    pub zero_copy: bool,
}

/// A port to serve.
#[derive(Debug, Clone)]
pub struct PortSpec {
    /// Interface name.
    pub name: String,
    /// Queues to bind; `None` for all of them.
    pub queues: Option<Vec<u32>>,
}

/// Everything needed to start the fast path.
#[derive(Debug, Clone)]
pub struct DataplaneConfig {
    /// Ports.
    pub ports: Vec<PortSpec>,
    /// The routers' views, indexed by [`RouterId`].
    pub routers: Vec<InstanceView>,
    /// Static IPv4 routes (connected routes are added from the ports' addresses).
    pub routes4: Vec<Route<Ipv4Addr>>,
    /// Static IPv6 routes.
    pub routes6: Vec<Route<Ipv6Addr>>,
    /// One worker per core listed.
    pub cores: Vec<usize>,
    /// Idle policy.
    pub idle: Idle,
    /// Frames per batch.
    pub batch: usize,
    /// XDP attach mode.
    pub attach: AttachMode,
    /// Force zero-copy on/off; `None` lets the kernel choose.
    pub zero_copy: Option<bool>,
}

impl DataplaneConfig {
    /// What the fast path needs of a validated configuration.
    ///
    /// # Errors
    /// A setting this fast path cannot serve, or a reference the
    /// configuration layer should have caught (unknown port, mixed families).
    pub fn from_config(cfg: &Config) -> Result<Self, DataplaneError> {
        let port_index = |name: &str| {
            cfg.port_index(name)
                .ok_or_else(|| DataplaneError::Unsupported(format!("unknown port {name}")))
        };
        let routers = cfg
            .vrrp
            .iter()
            .map(|spec| Ok(InstanceView::from_spec(spec, port_index(&spec.port)?)))
            .collect::<Result<Vec<_>, DataplaneError>>()?;
        let (mut routes4, mut routes6) = (Vec::new(), Vec::new());
        for r in &cfg.routes {
            let port = port_index(&r.port)?;
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
                _ => {
                    return Err(DataplaneError::Unsupported(format!(
                        "route to {}: the gateway {} is of the other family",
                        r.to, r.via
                    )))
                }
            }
        }
        let d = &cfg.dataplane;
        Ok(Self {
            ports: cfg
                .ports
                .iter()
                .map(|p| PortSpec {
                    name: p.name.clone(),
                    queues: match &p.queues {
                        config::Queues::All => None,
                        config::Queues::List(q) => Some(q.clone()),
                    },
                })
                .collect(),
            routers,
            routes4,
            routes6,
            cores: d.cores.clone(),
            idle: match d.idle {
                config::Idle::Busy => Idle::Busy,
                config::Idle::Adaptive => Idle::Adaptive,
                config::Idle::Wait => Idle::Wait,
            },
            batch: usize::try_from(d.batch).unwrap_or(64),
            attach: match d.xdp_mode {
                config::XdpMode::Auto => AttachMode::Auto,
                config::XdpMode::Native => AttachMode::Native,
                config::XdpMode::Generic => AttachMode::Generic,
            },
            zero_copy: match d.zero_copy {
                config::ZeroCopy::Auto => None,
                config::ZeroCopy::On => Some(true),
                config::ZeroCopy::Off => Some(false),
            },
        })
    }
}

/// The running fast path. Dropping it without [`Dataplane::stop`] also
/// stops the workers and detaches the programs.
pub struct Dataplane {
    shared: Arc<Shared>,
    tables: Arc<TablesCell>,
    /// Connected and static routes, shared with the publisher of kernel
    /// routes (a reload replaces the static ones).
    sources: Arc<Mutex<SharedSources>>,
    /// Tables a reload replaced, kept until no worker holds them (a
    /// worker must not free a large table).
    retired: Vec<Arc<Tables>>,
    /// Each router's slot, by [`RouterId`]: the id the fast path knows it
    /// by (its [`InstanceView::id`], ownership flag and XDP entries). The
    /// slot is the router's id at start and stays the same across reloads
    /// while the router keeps its state, whatever its id becomes.
    slots: Vec<RouterId>,
    /// The reverse of `slots`, by slot.
    ids_by_slot: Vec<Option<RouterId>>,
    infos: Vec<InterfaceInfo>,
    layout: Vec<PortLayout>,
    workers: Vec<JoinHandle<()>>,
    /// The receive-ring descriptors of each running worker, by worker index.
    rx_fds: Vec<(usize, Vec<i32>)>,
    filters: Vec<PortFilter>,
    /// The filters' run-time maps (ownership, peer masters, counters),
    /// shared with the [`StatsReader`]s.
    xdp: Arc<XdpControl>,
    /// Every bound socket, for reading its kernel counters.
    sockets: Vec<SocketRef>,
}

/// Where a bound socket is; its fd stays open while its worker runs,
/// that is as long as the [`Dataplane`] is not stopped.
#[derive(Debug, Clone, Copy)]
struct SocketRef {
    worker: usize,
    port: usize,
    queue: u32,
    fd: i32,
}

impl std::fmt::Debug for Dataplane {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Dataplane")
            .field("ports", &self.infos)
            .finish()
    }
}

impl Dataplane {
    /// Attaches the filters, binds the sockets and starts the workers.
    ///
    /// # Errors
    /// A missing interface, a port without an IPv4 address, or any load,
    /// attach or bind failure; whatever was attached is detached again.
    pub fn start(cfg: &DataplaneConfig) -> Result<Self, DataplaneError> {
        let infos = cfg
            .ports
            .iter()
            .map(|p| iface::interface_info(&p.name))
            .collect::<Result<Vec<_>, _>>()?;
        for inst in &cfg.routers {
            let info = infos.get(inst.port).ok_or_else(|| {
                DataplaneError::Unsupported(format!("instance refers to port #{}", inst.port))
            })?;
            if info.addrs_v4.is_empty() {
                return Err(DataplaneError::NoAddress {
                    ifname: info.name.clone(),
                });
            }
        }
        let (tables, sources) = build_tables(cfg, &infos);
        let tables = Arc::new(TablesCell::new(tables));
        let nworkers = cfg.cores.len().max(1);
        // Ownership flags for every slot a reload may give a router.
        let shared = Arc::new(Shared::new(nworkers, infos.len(), xdp_maps::MAX_ROUTERS)?);

        let mut filters = Vec::with_capacity(infos.len());
        let mut xdp_maps = Vec::with_capacity(infos.len());
        for (idx, info) in infos.iter().enumerate() {
            let mut filter = PortFilter::load(&info.name)?;
            for inst in cfg.routers.iter().filter(|i| i.port == idx) {
                filter.add_router(inst)?;
            }
            xdp_maps.push(filter.take_runtime_maps()?);
            filter.attach(cfg.attach)?;
            filters.push(filter);
        }
        let xdp = Arc::new(XdpControl::new(xdp_maps, &cfg.routers));

        let mut xsks = (0..nworkers)
            .map(|w| WorkerXsk::new(w, cfg.batch, infos.len()))
            .collect::<Result<Vec<_>, _>>()?;
        let mut tx_worker = vec![None; infos.len()];
        let mut sockets = Vec::new();
        let mut layout = Vec::with_capacity(infos.len());
        // (port, queue, fd): put in the program's socket map once every
        // worker's fill rings are primed.
        let mut bound = Vec::new();
        for (idx, (info, spec)) in infos.iter().zip(&cfg.ports).enumerate() {
            let queues = port_queues(info, spec)?;
            let mut served = Vec::with_capacity(queues.len());
            for (n, &queue) in queues.iter().enumerate() {
                let w = config::queue_worker(n, nworkers);
                let xsk = xsks.get_mut(w).ok_or_else(|| {
                    DataplaneError::Unsupported("worker index out of range".into())
                })?;
                let (fd, zero_copy) = xsk.bind(idx, &info.name, queue, cfg.zero_copy)?;
                sockets.push(SocketRef {
                    worker: w,
                    port: idx,
                    queue,
                    fd,
                });
                bound.push((idx, queue, fd));
                if let Some(slot) = tx_worker.get_mut(idx) {
                    slot.get_or_insert(w);
                }
                served.push(QueueLayout {
                    queue,
                    worker: w,
                    core: cfg.cores.get(w).copied(),
                    zero_copy,
                });
            }
            let mode = filters.get(idx).map_or("none", PortFilter::mode);
            tracing::info!(
                port = %info.name,
                xdp = mode,
                sockets = if served.iter().all(|q| q.zero_copy) { "zero-copy" } else { "copy" },
                queues = %served
                    .iter()
                    .map(|q| format!("{}→worker{}", q.queue, q.worker))
                    .collect::<Vec<_>>()
                    .join(","),
                "port served"
            );
            layout.push(PortLayout {
                name: info.name.clone(),
                xdp_mode: mode,
                queues: served,
                rx_queues: info.rx_queues,
                tx_worker: tx_worker.get(idx).copied().flatten(),
            });
        }

        for xsk in &mut xsks {
            xsk.prime();
        }
        for (idx, queue, fd) in bound {
            if let Some(f) = filters.get_mut(idx) {
                f.set_socket(queue, &RawFd(fd))?;
            }
        }

        let running: Vec<usize> = (0..nworkers)
            .filter(|&w| xsks.get(w).is_some_and(|x| !x.is_empty()))
            .collect();
        let mut workers = Vec::with_capacity(nworkers);
        let mut rx_fds = Vec::with_capacity(nworkers);
        for (w, mut xsk) in xsks.into_iter().enumerate() {
            if xsk.is_empty() {
                tracing::warn!(
                    worker = w,
                    "no queue left for this worker; it is not started"
                );
                continue;
            }
            rx_fds.push((w, xsk.fds().collect()));
            shared.publish_progress(w, std::time::Instant::now());
            xsk.set_egress(|port| tx_worker.get(port).copied().flatten().is_some());
            for (port, info) in infos.iter().enumerate() {
                if xsk.egress(port) == xsk::Egress::HandOff {
                    tracing::info!(
                        worker = w,
                        port = %info.name,
                        via = ?tx_worker.get(port).copied().flatten(),
                        "no socket on this port in this worker: its frames for it are handed to another worker"
                    );
                }
            }
            let worker = Worker {
                index: w,
                core: cfg.cores.get(w).copied(),
                idle: cfg.idle,
                xsk,
                tables: Arc::clone(&tables),
                shared: Arc::clone(&shared),
                peers: running.iter().copied().filter(|&p| p != w).collect(),
                tx_owner: tx_worker.clone(),
            };
            let handle = std::thread::Builder::new()
                .name(format!("xvrrp-worker{w}"))
                .spawn(move || worker.run())
                .map_err(|e| DataplaneError::Io {
                    what: "spawning a worker thread".into(),
                    source: e,
                })?;
            workers.push(handle);
        }
        let slots: Vec<RouterId> = cfg.routers.iter().map(|r| r.id).collect();
        Ok(Self {
            shared,
            tables,
            sources: Arc::new(Mutex::new(SharedSources {
                sources,
                generation: 0,
            })),
            retired: Vec::new(),
            ids_by_slot: ids_by_slot(&slots),
            slots,
            infos,
            layout,
            workers,
            rx_fds,
            filters,
            xdp,
            sockets,
        })
    }

    /// How each port is served: XDP mode, sockets and their workers.
    pub fn layout(&self) -> &[PortLayout] {
        &self.layout
    }

    /// State shared with the workers (advert queue, ownership, counters).
    pub fn shared(&self) -> &Arc<Shared> {
        &self.shared
    }

    /// The fast path's tables as the workers use them now.
    pub fn tables(&self) -> Arc<Tables> {
        self.tables.load()
    }

    /// A publisher of route tables to the workers: the connected and static
    /// routes plus the routes it is given (the kernel's). Only one may be
    /// in use at a time.
    pub fn route_publisher(&self) -> RoutePublisher {
        RoutePublisher::shared(Arc::clone(&self.tables), Arc::clone(&self.sources))
    }

    /// Kernel facts of port `idx`.
    pub fn port_info(&self, idx: usize) -> Option<&InterfaceInfo> {
        self.infos.get(idx)
    }

    /// Gives or takes the ownership of router `id` (answer/forward or not),
    /// in the workers and in the port's XDP filter (which drops what is
    /// sent to the router's MAC and addresses while we are not master).
    pub fn set_master(&self, id: RouterId, master: bool) {
        if let Some(slot) = self.slots.get(id.index()) {
            self.set_slot_master(*slot, master);
        }
    }

    fn set_slot_master(&self, slot: RouterId, master: bool) {
        if !master {
            // Before the flag: no worker sends its adverts once it is down.
            self.shared.rescue.clear(slot.index());
        }
        if let Some(flag) = self.shared.master.get(slot.index()) {
            flag.store(master, Ordering::Release);
        }
        self.xdp.set_master(slot, master);
    }

    /// Router `id` sent the advert `frame` on `port` at `sent`, the next
    /// due one `interval` later: a worker sends it again if the control
    /// thread is late by a quarter of an interval (see [`rescue`]).
    pub fn record_advert(
        &self,
        id: RouterId,
        port: usize,
        frame: &[u8],
        sent: Instant,
        interval: Duration,
    ) {
        if let Some(slot) = self.slots.get(id.index()) {
            self.shared
                .rescue
                .record(slot.index(), port, frame, sent, interval);
        }
    }

    /// Router `id`'s adverts are not to be sent in the control thread's
    /// place (they go to unicast peers, which one frame cannot carry).
    pub fn forget_advert(&self, id: RouterId) {
        if let Some(slot) = self.slots.get(id.index()) {
            self.shared.rescue.clear(slot.index());
        }
    }

    /// After a pass: tells the workers when the first advert the control
    /// thread owes falls due.
    pub fn publish_advert_deadlines(&self, now: Instant) {
        self.shared.rescue.publish_earliest(now);
    }

    /// Gives every advertisement the workers validated to `f`, with the
    /// router it is for (the masters' slots first, then the queue). One a
    /// worker read with the tables of before a reload, for a router the
    /// reload removed, is dropped here.
    pub fn drain_adverts(&self, mut f: impl FnMut(RxAdvert)) {
        self.shared.drain_adverts(|mut adv| {
            if let Some(id) = self.ids_by_slot.get(adv.router.index()).copied().flatten() {
                adv.router = id;
                f(adv);
            }
        });
    }

    /// Whether advertisements wait for the control thread.
    pub fn has_adverts(&self) -> bool {
        self.shared.has_adverts()
    }

    /// Serves the routers and static routes of `cfg` from now on (a
    /// reload; the ports and workers of `cfg` must be the running ones).
    /// `carried[i]` is the id router `i` of `cfg` had before when it keeps
    /// its state: it keeps its slot, so its ownership and filter entries
    /// never change and the workers go on answering and forwarding for it
    /// without a gap. Any other router gets a slot no router used before,
    /// starts without ownership, and the slots of the routers left behind
    /// lose theirs. The filters' entries are rewritten in place (what only
    /// a removed router had goes), then the workers' tables are replaced
    /// at once, the kernel's routes kept.
    ///
    /// # Errors
    /// A router on a port without an IPv4 address, no free slot, or a
    /// filter map update failure (the filters may then be half updated:
    /// the daemon should be restarted).
    pub fn reconfigure(
        &mut self,
        cfg: &DataplaneConfig,
        carried: &[Option<RouterId>],
    ) -> Result<(), DataplaneError> {
        for inst in &cfg.routers {
            let info = self.infos.get(inst.port).ok_or_else(|| {
                DataplaneError::Unsupported(format!("instance refers to port #{}", inst.port))
            })?;
            if info.addrs_v4.is_empty() {
                return Err(DataplaneError::NoAddress {
                    ifname: info.name.clone(),
                });
            }
        }
        let before = self.tables.load();
        let mut taken: Vec<RouterId> = before.instances.iter().map(|v| v.id).collect();
        let mut slots = Vec::with_capacity(cfg.routers.len());
        for i in 0..cfg.routers.len() {
            let kept = carried
                .get(i)
                .copied()
                .flatten()
                .and_then(|old| self.slots.get(old.index()).copied());
            let slot = match kept {
                Some(slot) => slot,
                None => {
                    let free = (0..xdp_maps::MAX_ROUTERS)
                        .filter_map(|s| u16::try_from(s).ok().map(RouterId))
                        .find(|s| !taken.contains(s))
                        .ok_or_else(|| {
                            DataplaneError::Unsupported(format!(
                                "no free router slot among {}: restart xvrrp",
                                xdp_maps::MAX_ROUTERS
                            ))
                        })?;
                    taken.push(free);
                    free
                }
            };
            slots.push(slot);
        }
        let views: Vec<InstanceView> = cfg
            .routers
            .iter()
            .zip(&slots)
            .map(|(v, slot)| InstanceView {
                id: *slot,
                ..v.clone()
            })
            .collect();
        for old in before.instances.iter().filter(|v| !slots.contains(&v.id)) {
            self.set_slot_master(old.id, false);
        }
        for (port, filter) in self.filters.iter_mut().enumerate() {
            let kept: Vec<InstanceView> =
                views.iter().filter(|v| v.port == port).cloned().collect();
            for old in before.instances.iter().filter(|v| v.port == port) {
                filter.remove_router(old, &kept)?;
            }
            for inst in &kept {
                filter.add_router(inst)?;
            }
        }
        self.xdp.set_routers(&views);
        {
            // Held for the swap (and a rebuild of the routes when the static
            // ones changed): the kernel route mirror waits meanwhile, and
            // builds again if it was building from the old static routes.
            let mut shared = self
                .sources
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            let current = self.tables.load();
            let (routes4, routes6) =
                if shared.sources.static4 == cfg.routes4 && shared.sources.static6 == cfg.routes6 {
                    (current.routes4.clone(), current.routes6.clone())
                } else {
                    shared.sources.static4 = cfg.routes4.clone();
                    shared.sources.static6 = cfg.routes6.clone();
                    shared.generation += 1;
                    let kernel4: Vec<Route<Ipv4Addr>> = current
                        .routes4
                        .entries()
                        .filter(|(_, o)| *o == Origin::Kernel)
                        .map(|(r, _)| *r)
                        .collect();
                    let kernel6: Vec<Route<Ipv6Addr>> = current
                        .routes6
                        .entries()
                        .filter(|(_, o)| *o == Origin::Kernel)
                        .map(|(r, _)| *r)
                        .collect();
                    shared.sources.build(&kernel4, &kernel6)
                };
            let tables = Tables {
                ports: current.ports.clone(),
                instances: views,
                routes4,
                routes6,
            };
            drop(current);
            let old = self.tables.replace(tables);
            self.retired.push(old);
        }
        drop(before);
        self.retired.retain(|t| Arc::strong_count(t) > 1);
        self.ids_by_slot = ids_by_slot(&slots);
        self.slots = slots;
        Ok(())
    }

    /// Marks router `id` as draining (a master waiting for the router taking
    /// over) or not: forwarded frames then leave from the port's own MAC.
    pub fn set_draining(&self, id: RouterId, draining: bool) {
        let slot = self.slots.get(id.index()).map(|s| s.index());
        // Called every pass for every router: write only a change, so the
        // workers' cached copy of the flag stays valid.
        if let Some(flag) = slot.and_then(|s| self.shared.draining.get(s)) {
            if flag.load(Ordering::Relaxed) != draining {
                flag.store(draining, Ordering::Relaxed);
            }
        }
    }

    /// Tells the XDP filters the source address of each router's current
    /// master (`None` while no peer is: we are master, or none is known
    /// yet), so that its adverts pass ahead of the advert rate limit and
    /// wait in a slot of their own for the control thread. Meant
    /// to be called after each pass of the control loop with every router:
    /// only changes cost a system call.
    pub fn set_peer_masters(&self, masters: impl IntoIterator<Item = (RouterId, Option<IpAddr>)>) {
        let shared = &self.shared;
        self.xdp.set_peer_masters(
            masters
                .into_iter()
                .filter_map(|(id, addr)| self.slots.get(id.index()).map(|s| (*s, addr)))
                .inspect(|(slot, addr)| shared.set_master_source(*slot, *addr)),
        );
    }

    /// The XDP filters' counters, by port index, read now (a few system
    /// calls per port).
    pub fn xdp_stats(&self) -> Vec<XdpPortStats> {
        self.xdp.port_stats()
    }

    /// Frames another station sent from each router's virtual MAC, by
    /// [`RouterId`] (see [`xdp_maps`]), read now.
    pub fn vmac_conflicts(&self) -> Vec<u64> {
        let by_slot = self.xdp.vmac_conflicts();
        self.slots
            .iter()
            .map(|s| by_slot.get(s.index()).copied().unwrap_or(0))
            .collect()
    }

    /// Waits, at most `limit`, until every running worker has read its
    /// rings once since this call (or sleeps on empty rings); returns
    /// whether they all did. Started before that, a backup's first
    /// Master_Down_Timer could run out while the master's adverts still
    /// wait in a ring no worker reads yet (a start under CPU load).
    pub fn wait_for_workers(&self, limit: std::time::Duration) -> bool {
        let start = std::time::Instant::now();
        loop {
            let running = self.rx_fds.iter().all(|(w, _)| {
                self.shared
                    .progress(*w)
                    .is_some_and(|(at, sleeping)| sleeping || at >= start)
            });
            if running {
                return true;
            }
            if start.elapsed() >= limit {
                return false;
            }
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
    }

    /// The time up to which every frame that reached a receive ring has
    /// been handled by its worker (adverts included, already queued for the
    /// control thread): the oldest progress of the running workers. A
    /// sleeping worker is caught up unless its rings hold frames it has not
    /// woken for yet, which one `poll(2)` with no wait tells.
    pub fn heard_until(&self, now: std::time::Instant) -> std::time::Instant {
        let mut until = now;
        for (w, fds) in &self.rx_fds {
            let Some((at, sleeping)) = self.shared.progress(*w) else {
                continue;
            };
            let caught_up_now = sleeping && !rings_readable(fds);
            if !caught_up_now {
                until = until.min(at);
            }
        }
        until
    }

    /// The newest copy of each worker's neighbour table (`None` before its
    /// first), and a request to every worker for a fresh copy, which the
    /// next call sees: the workers copy their own tables, so reading them
    /// never stops one, and this call never waits for one.
    pub fn neighbours(&self) -> Vec<Option<Arc<NeighbourSnapshot>>> {
        self.shared
            .neighbours
            .iter()
            .zip(&self.shared.worker_wakeup)
            .map(|(board, wakeup)| {
                board.request();
                wakeup.wake();
                board.latest()
            })
            .collect()
    }

    /// Counters of each worker.
    pub fn stats(&self) -> Vec<Counters> {
        self.shared.stats.iter().map(|s| s.snapshot()).collect()
    }

    /// The kernel's counters of every AF_XDP socket (frames lost before a
    /// worker saw them), read now: one system call per socket, from the
    /// calling thread, while the workers keep running.
    pub fn xsk_stats(&self) -> Vec<SocketStats> {
        self.sockets
            .iter()
            .map(|s| SocketStats {
                worker: s.worker,
                port: s.port,
                queue: s.queue,
                // The fd is open: its worker runs until `shutdown`, which
                // needs `&mut self`.
                stats: xsk::socket_stats(s.fd).ok(),
            })
            .collect()
    }

    /// A handle on the fast path's counters for another thread (the
    /// metrics server): it reads the workers' counters, the XDP filters'
    /// and the AF_XDP sockets' as `stats`, `xdp_stats` and `xsk_stats` do,
    /// without the control thread.
    ///
    /// # Errors
    /// A socket's descriptor cannot be duplicated (out of descriptors).
    pub fn stats_reader(&self) -> std::io::Result<StatsReader> {
        let sockets = self
            .sockets
            .iter()
            .map(|s| {
                // SAFETY: the fd is open: its worker runs until `shutdown`,
                // which needs `&mut self`; it is only borrowed to duplicate it.
                let fd = unsafe { BorrowedFd::borrow_raw(s.fd) }.try_clone_to_owned()?;
                Ok((s.worker, s.port, s.queue, fd))
            })
            .collect::<std::io::Result<Vec<_>>>()?;
        Ok(StatsReader {
            shared: Arc::clone(&self.shared),
            xdp: Arc::clone(&self.xdp),
            sockets: sockets.into(),
        })
    }

    /// Stops the workers and detaches the programs.
    pub fn stop(mut self) {
        self.shutdown();
    }

    fn shutdown(&mut self) {
        self.shared.stop.store(true, Ordering::Relaxed);
        for w in &self.shared.worker_wakeup {
            w.wake();
        }
        for h in self.workers.drain(..) {
            // A worker that panicked has already aborted the process
            // (panic = "abort"), so join only waits.
            let _ = h.join();
        }
        self.filters.clear();
    }
}

impl Drop for Dataplane {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// The queues to bind on a port: those listed, or every receive queue;
/// a listed queue the interface does not have is an error, and queues left
/// without a socket (their frames go to the kernel) are logged.
fn port_queues(info: &InterfaceInfo, spec: &PortSpec) -> Result<Vec<u32>, DataplaneError> {
    let queues: Vec<u32> = match &spec.queues {
        Some(q) => q.clone(),
        None => (0..info.rx_queues).collect(),
    };
    if let Some(q) = queues.iter().find(|&&q| q >= xdp::MAX_QUEUES) {
        return Err(DataplaneError::Unsupported(format!(
            "port {}: queue {q} is beyond the {} queues the fast path can serve",
            info.name,
            xdp::MAX_QUEUES
        )));
    }
    if let Some(q) = queues.iter().find(|&&q| q >= info.rx_queues) {
        return Err(DataplaneError::Unsupported(format!(
            "port {}: queue {q} does not exist ({} has {} receive queue{})",
            info.name,
            info.name,
            info.rx_queues,
            if info.rx_queues == 1 { "" } else { "s" }
        )));
    }
    let left: Vec<String> = (0..info.rx_queues)
        .filter(|q| !queues.contains(q))
        .map(|q| q.to_string())
        .collect();
    if !left.is_empty() {
        tracing::warn!(
            port = %info.name,
            queues = %left.join(","),
            "receive queues not served: frames arriving there go to the kernel"
        );
    }
    Ok(queues)
}

/// Whether any of `fds` has frames to read, without waiting.
fn rings_readable(fds: &[i32]) -> bool {
    let mut pollfds: Vec<libc::pollfd> = fds
        .iter()
        .map(|fd| libc::pollfd {
            fd: *fd,
            events: libc::POLLIN,
            revents: 0,
        })
        .collect();
    let n = libc::nfds_t::try_from(pollfds.len()).unwrap_or(0);
    // SAFETY: pollfds is a valid, exclusively borrowed array of n entries.
    let rc = unsafe { libc::poll(pollfds.as_mut_ptr(), n, 0) };
    rc > 0 && pollfds.iter().any(|p| p.revents & libc::POLLIN != 0)
}

/// The router of each slot, from the slots by [`RouterId`].
fn ids_by_slot(slots: &[RouterId]) -> Vec<Option<RouterId>> {
    let mut ids = vec![None; slots.iter().map(|s| s.index() + 1).max().unwrap_or(0)];
    for (i, slot) in slots.iter().enumerate() {
        if let (Some(entry), Ok(id)) = (ids.get_mut(slot.index()), u16::try_from(i)) {
            *entry = Some(RouterId(id));
        }
    }
    ids
}

struct RawFd(i32);

impl std::os::fd::AsRawFd for RawFd {
    fn as_raw_fd(&self) -> i32 {
        self.0
    }
}

/// The first tables (connected and static routes) and the route sources
/// later tables are built from.
fn build_tables(cfg: &DataplaneConfig, infos: &[InterfaceInfo]) -> (Tables, RouteSources) {
    let ports: Vec<PortView> = infos
        .iter()
        .map(|i| PortView {
            name: i.name.clone(),
            mac: i.mac,
            addrs4: i.addrs_v4.clone(),
            addrs6: i.addrs_v6.clone(),
        })
        .collect();
    let instances = cfg.routers.clone();
    let sources = RouteSources {
        connected4: infos
            .iter()
            .enumerate()
            .flat_map(|(port, i)| {
                i.addrs_v4.iter().map(move |(a, l)| Route {
                    net: *a,
                    len: *l,
                    via: None,
                    port,
                })
            })
            .collect(),
        connected6: infos
            .iter()
            .enumerate()
            .flat_map(|(port, i)| {
                i.addrs_v6.iter().map(move |(a, l)| Route {
                    net: *a,
                    len: *l,
                    via: None,
                    port,
                })
            })
            .collect(),
        static4: cfg.routes4.clone(),
        static6: cfg.routes6.clone(),
    };
    let (routes4, routes6) = sources.build(&[], &[]);
    let tables = Tables {
        ports,
        instances,
        routes4,
        routes6,
    };
    (tables, sources)
}

/// The fast path's counters, readable from any thread
/// ([`Dataplane::stats_reader`]): the workers' atomic counters, the XDP
/// filters' maps and the AF_XDP sockets' kernel counters, through
/// duplicated descriptors (so it stays valid after the fast path stops).
#[derive(Clone)]
pub struct StatsReader {
    shared: Arc<Shared>,
    xdp: Arc<XdpControl>,
    /// (worker, port, queue, duplicated socket descriptor).
    sockets: Arc<[(usize, usize, u32, OwnedFd)]>,
}

impl std::fmt::Debug for StatsReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StatsReader")
            .field("sockets", &self.sockets.len())
            .finish()
    }
}

impl StatsReader {
    /// Counters of each worker, as [`Dataplane::stats`].
    pub fn workers(&self) -> Vec<Counters> {
        self.shared.stats.iter().map(|s| s.snapshot()).collect()
    }

    /// The XDP filters' counters by port index, as [`Dataplane::xdp_stats`].
    pub fn xdp(&self) -> Vec<XdpPortStats> {
        self.xdp.port_stats()
    }

    /// Frames from each router's virtual MAC sent by another station, by
    /// [`RouterId`], as [`Dataplane::vmac_conflicts`].
    pub fn vmac_conflicts(&self) -> Vec<u64> {
        self.xdp.vmac_conflicts()
    }

    /// Every socket's kernel counters, as [`Dataplane::xsk_stats`].
    pub fn xsk(&self) -> Vec<SocketStats> {
        self.sockets
            .iter()
            .map(|(worker, port, queue, fd)| SocketStats {
                worker: *worker,
                port: *port,
                queue: *queue,
                stats: xsk::socket_stats(fd.as_raw_fd()).ok(),
            })
            .collect()
    }
}
