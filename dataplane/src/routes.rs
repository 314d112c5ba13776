//! Route tables the workers read while the control side replaces them.
//!
//! The tables a worker forwards by are one immutable [`Tables`] value behind
//! an `ArcSwap`. An update (the kernel's routing table changed) builds a
//! whole new value on the publishing thread and swaps it in; a worker checks
//! one atomic generation counter per batch and, only when it moved, takes a
//! reference to the new value. No worker ever waits for an update, takes a
//! lock, or pays more than one atomic load per batch for the chance of one.
//!
//! Freeing a table of 100 000 routes takes a while, so a worker must never
//! drop the last reference to a table: the publisher keeps every table it
//! replaced until the workers have let go of it, and frees it itself.

use std::{
    net::{Ipv4Addr, Ipv6Addr},
    sync::{
        atomic::{AtomicU64, Ordering},
        Arc, Mutex,
    },
    time::{Duration, Instant},
};

use arc_swap::ArcSwap;

use crate::{
    lpm::{Origin, Route, RouteTable},
    process::Tables,
};

/// The current tables and the number of times they were replaced.
#[derive(Debug)]
pub struct TablesCell {
    current: ArcSwap<Tables>,
    generation: AtomicU64,
}

impl TablesCell {
    /// A cell holding `tables`.
    pub fn new(tables: Tables) -> Self {
        Self {
            current: ArcSwap::from_pointee(tables),
            generation: AtomicU64::new(0),
        }
    }

    /// The current tables.
    pub fn load(&self) -> Arc<Tables> {
        self.current.load_full()
    }

    /// Bumped after each replacement.
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    /// Puts `tables` in place and returns the ones they replace.
    pub(crate) fn replace(&self, tables: Tables) -> Arc<Tables> {
        let old = self.current.swap(Arc::new(tables));
        // After the swap: a worker that sees the new generation loads the
        // new tables (or newer ones).
        self.generation.fetch_add(1, Ordering::Release);
        old
    }
}

/// A worker's reference to the current tables, refreshed once per batch.
#[derive(Debug)]
pub struct TablesView {
    cell: Arc<TablesCell>,
    tables: Arc<Tables>,
    generation: u64,
}

impl TablesView {
    /// A view of `cell`'s current tables.
    pub fn new(cell: Arc<TablesCell>) -> Self {
        let generation = cell.generation();
        let tables = cell.load();
        Self {
            cell,
            tables,
            generation,
        }
    }

    /// Takes the newest tables if they were replaced since the last call:
    /// one atomic load when they were not. The tables let go of here are
    /// still held by the publisher, so this never frees them.
    #[inline]
    pub fn refresh(&mut self) {
        let generation = self.cell.generation();
        if generation != self.generation {
            self.tables = self.cell.load();
            self.generation = generation;
        }
    }

    /// The tables to forward by.
    #[inline]
    pub fn get(&self) -> &Tables {
        &self.tables
    }
}

/// The routes that do not come from the kernel: the ports' subnets and
/// the configuration's static routes.
#[derive(Debug, Clone, Default)]
pub struct RouteSources {
    /// Subnets of the ports' IPv4 addresses.
    pub connected4: Vec<Route<Ipv4Addr>>,
    /// Subnets of the ports' IPv6 addresses.
    pub connected6: Vec<Route<Ipv6Addr>>,
    /// Static IPv4 routes.
    pub static4: Vec<Route<Ipv4Addr>>,
    /// Static IPv6 routes.
    pub static6: Vec<Route<Ipv6Addr>>,
}

impl RouteSources {
    /// The tables of both families with `kernel4`/`kernel6` added. Connected
    /// routes win over static ones, and both over the kernel's, for one
    /// prefix: the kernel's copy of a port's subnet or of a static route
    /// must not replace what the configuration says.
    pub fn build(
        &self,
        kernel4: &[Route<Ipv4Addr>],
        kernel6: &[Route<Ipv6Addr>],
    ) -> (RouteTable<Ipv4Addr>, RouteTable<Ipv6Addr>) {
        fn tagged<A: Copy>(
            routes: &[Route<A>],
            origin: Origin,
        ) -> impl Iterator<Item = (Route<A>, Origin)> + '_ {
            routes.iter().map(move |r| (*r, origin))
        }
        let v4 = RouteTable::build(
            tagged(&self.connected4, Origin::Connected)
                .chain(tagged(&self.static4, Origin::Static))
                .chain(tagged(kernel4, Origin::Kernel)),
        );
        let v6 = RouteTable::build(
            tagged(&self.connected6, Origin::Connected)
                .chain(tagged(&self.static6, Origin::Static))
                .chain(tagged(kernel6, Origin::Kernel)),
        );
        (v4, v6)
    }
}

/// The sources of a cell's routes, shared by its two writers: the
/// publisher of the kernel's routes and the dataplane, which replaces the
/// static routes on a reload. Held only to read or replace the sources and
/// to swap a table in, never while a table of the kernel's routes is built,
/// so the control thread never waits for one.
#[derive(Debug, Default)]
pub(crate) struct SharedSources {
    pub(crate) sources: RouteSources,
    /// Bumped at each replacement of the sources.
    pub(crate) generation: u64,
}

/// The one writer of a [`TablesCell`]'s routes: rebuilds the route tables from the
/// fixed sources plus the kernel's routes, publishes them, and frees the
/// tables it replaced once no worker holds them any more.
#[derive(Debug)]
pub struct RoutePublisher {
    cell: Arc<TablesCell>,
    /// Shared with the dataplane (see [`SharedSources`]).
    sources: Arc<Mutex<SharedSources>>,
    /// Replaced tables, kept until the publisher holds the last reference.
    retired: Vec<Arc<Tables>>,
}

impl RoutePublisher {
    /// A publisher for `cell`, whose tables are built from `sources`.
    pub fn new(cell: Arc<TablesCell>, sources: RouteSources) -> Self {
        let sources = SharedSources {
            sources,
            generation: 0,
        };
        Self::shared(cell, Arc::new(Mutex::new(sources)))
    }

    /// A publisher for `cell` whose sources another writer may replace.
    pub(crate) fn shared(cell: Arc<TablesCell>, sources: Arc<Mutex<SharedSources>>) -> Self {
        Self {
            cell,
            sources,
            retired: Vec::new(),
        }
    }

    /// Replaces the routes with `sources` plus `kernel4`/`kernel6`; the
    /// ports and routers stay. Returns how long building took.
    pub fn publish(
        &mut self,
        kernel4: &[Route<Ipv4Addr>],
        kernel6: &[Route<Ipv6Addr>],
    ) -> Duration {
        let start = Instant::now();
        loop {
            let (sources, generation) = {
                let shared = self.lock();
                (shared.sources.clone(), shared.generation)
            };
            let (routes4, routes6) = sources.build(kernel4, kernel6);
            let built = start.elapsed();
            let shared = self.lock();
            if shared.generation != generation {
                // A reload replaced the static routes meanwhile.
                continue;
            }
            let current = self.cell.load();
            let tables = Tables {
                ports: current.ports.clone(),
                instances: current.instances.clone(),
                routes4,
                routes6,
            };
            drop(current);
            let old = self.cell.replace(tables);
            drop(shared);
            self.retired.push(old);
            self.reap();
            return built;
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, SharedSources> {
        // The other writer is the control thread and panics abort: a
        // poisoned lock cannot hold half-written sources.
        self.sources
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Frees the replaced tables no worker holds any more; call it now and
    /// then (the workers let go of a table at their next batch).
    pub fn reap(&mut self) {
        // The cell no longer hands these out, so a count of one cannot grow.
        self.retired.retain(|t| Arc::strong_count(t) > 1);
    }

    /// Replaced tables still held by a worker (or the control thread).
    pub fn retired(&self) -> usize {
        self.retired.len()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn route(net: [u8; 4], len: u8, via: Option<[u8; 4]>, port: usize) -> Route<Ipv4Addr> {
        Route {
            net: Ipv4Addr::from(net),
            len,
            via: via.map(Ipv4Addr::from),
            port,
        }
    }

    fn empty_tables() -> Tables {
        Tables {
            ports: Vec::new(),
            instances: Vec::new(),
            routes4: RouteTable::default(),
            routes6: RouteTable::default(),
        }
    }

    #[test]
    fn a_view_sees_a_publication_at_its_next_refresh_and_never_frees_it() {
        let cell = Arc::new(TablesCell::new(empty_tables()));
        let mut view = TablesView::new(Arc::clone(&cell));
        let sources = RouteSources {
            connected4: vec![route([203, 0, 113, 0], 24, None, 1)],
            static4: vec![route([203, 0, 113, 0], 24, Some([192, 0, 2, 9]), 0)],
            ..RouteSources::default()
        };
        let mut publisher = RoutePublisher::new(Arc::clone(&cell), sources);
        let dst = Ipv4Addr::new(198, 51, 100, 1);
        assert!(view.get().routes4.lookup(dst).is_none());

        publisher.publish(
            &[route([198, 51, 100, 0], 24, Some([203, 0, 113, 100]), 1)],
            &[],
        );
        // Not before the view refreshes: a batch sees one table throughout.
        assert!(view.get().routes4.lookup(dst).is_none());
        // The view still holds the first table, so the publisher keeps it.
        assert_eq!(publisher.retired(), 1);
        view.refresh();
        let hop = view.get().routes4.lookup(dst).unwrap();
        assert_eq!((hop.port, hop.addr), (1, Ipv4Addr::new(203, 0, 113, 100)));
        // The connected route beats the kernel's and the static one.
        let origins: Vec<Origin> = view.get().routes4.entries().map(|(_, o)| o).collect();
        assert_eq!(origins, vec![Origin::Kernel, Origin::Connected]);
        publisher.reap();
        assert_eq!(publisher.retired(), 0, "freed by the publisher");

        publisher.publish(&[], &[]);
        view.refresh();
        assert!(view.get().routes4.lookup(dst).is_none());
    }

    #[test]
    fn a_reader_thread_keeps_forwarding_through_many_publications() {
        let cell = Arc::new(TablesCell::new(empty_tables()));
        let mut publisher = RoutePublisher::new(Arc::clone(&cell), RouteSources::default());
        publisher.publish(&[route([0, 0, 0, 0], 0, Some([192, 0, 2, 1]), 0)], &[]);
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let (started_tx, started) = std::sync::mpsc::channel();
        let reader = {
            let (cell, stop) = (Arc::clone(&cell), Arc::clone(&stop));
            std::thread::spawn(move || {
                let mut view = TablesView::new(cell);
                let mut seen = 0u64;
                loop {
                    view.refresh();
                    // The default route is in every table published.
                    assert!(view
                        .get()
                        .routes4
                        .lookup(Ipv4Addr::new(10, 1, 2, 3))
                        .is_some());
                    seen += 1;
                    if seen == 1 {
                        started_tx.send(()).unwrap();
                    }
                    if stop.load(Ordering::Relaxed) {
                        return seen;
                    }
                }
            })
        };
        started.recv().unwrap();
        for i in 0..200u8 {
            let routes = [
                route([0, 0, 0, 0], 0, Some([192, 0, 2, 1]), 0),
                route([10, i, 0, 0], 16, Some([192, 0, 2, 2]), 1),
            ];
            publisher.publish(&routes, &[]);
        }
        stop.store(true, Ordering::Relaxed);
        assert!(reader.join().unwrap() > 0);
        publisher.reap();
        assert_eq!(publisher.retired(), 0);
    }
}
