//! The per-frame forwarding pipeline under criterion: a ring of 64-byte
//! frames (60 bytes plus the FCS a NIC adds) handled one after the other by
//! `Processor::handle`, as a worker does with a batch from its RX ring —
//! classify (Ethernet, virtual MAC, IPv4 checks), LPM route lookup,
//! neighbour lookup, MAC rewrite, TTL decrement and incremental checksum.
//!
//! One criterion iteration is one frame, taken round robin from the ring:
//! criterion's `time` is the ns per frame and its `thrpt` the frames per
//! second on one core (Melem/s = Mpps per core). Each frame is copied back
//! to its pristine bytes before it is handled (the processor rewrites in
//! place, and a received frame is new in the UMEM each time): 60 bytes, a
//! few ns, included.
//!
//! Benchmarks, and the budget each guards (one worker core at 5 Mpps has
//! 200 ns per frame, see `bench/README.md`):
//! - `pipeline/forward_connected`: destinations on the WAN subnet, a table
//!   of the two connected routes — the pipeline without a real route
//!   table. Budget ≤ 200 ns/frame.
//! - `pipeline/forward_100k_prefixes`: destinations spread over 100 000
//!   Internet-shaped prefixes via four WAN routers. Budget ≤ 200 ns/frame:
//!   a gateway with a full table must still forward at line rate per core.
//! - `lpm/lookup_100k_prefixes`: the route lookup alone on the same
//!   destinations. Budget ≤ 50 ns, a quarter of the frame's.
//!
//! Before timing, every frame's result is checked once (sent out of the
//! WAN port to the MAC of the right next hop, TTL 63, header checksum
//! valid); inside the timed loop, every action is compared with the
//! expected one and a mismatch panics after the loop.
//!
//! Run with `cargo bench -p xvrrp-bench --bench pipeline`.

use std::hint::black_box;
use std::net::Ipv4Addr;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion, SamplingMode, Throughput};
use xvrrp_bench::{
    gateway_tables_with, internet_routes, ipv4_frame, probes_into, wan_gateway_mac, FRAME_BUF, LAN,
    SERVER, WAN, WAN_GATEWAYS,
};
use xvrrp_dataplane::{
    lpm::{NextHop, RouteTable},
    neigh::NeighbourTable,
    process::{Processor, Tables},
    shared::Shared,
    stats::Counters,
    xsk::Action,
};
use xvrrp_wire::{
    ethernet::{EthernetAddress, EthernetFrame},
    ipv4::Ipv4Packet,
};

/// Frames in the ring: one RX batch's worth several times over, so the
/// frames and their destinations do not all sit in L1.
const RING: usize = 256;
/// Prefixes of the large table.
const PREFIXES: usize = 100_000;
/// UDP payload that makes a 60-byte frame (64 on the wire).
const PAYLOAD_64B: usize = 26;

/// A worker's state around the tables: master of both virtual routers,
/// the WAN neighbours learned.
struct Worker {
    tables: Tables,
    shared: Shared,
    neigh: NeighbourTable,
    counters: Counters,
    now: Instant,
}

impl Worker {
    fn new(tables: Tables) -> Worker {
        let shared = Shared::new(1, tables.ports.len(), tables.instances.len())
            .unwrap_or_else(|e| panic!("shared state: {e}"));
        for flag in &shared.master {
            flag.store(true, Ordering::Release);
        }
        let mut neigh = NeighbourTable::new();
        let now = Instant::now();
        for (i, gw) in WAN_GATEWAYS.iter().enumerate() {
            neigh.learn(now, WAN, (*gw).into(), wan_gateway_mac(i));
        }
        Worker {
            counters: Counters::new(tables.ports.len()),
            tables,
            shared,
            neigh,
            now,
        }
    }

    fn processor(&mut self) -> Processor<'_> {
        Processor {
            tables: &self.tables,
            shared: &self.shared,
            neigh: &mut self.neigh,
            counters: &mut self.counters,
            punted: false,
            dropped: None,
        }
    }
}

/// The frames of a ring, pristine, and the buffers they are handled in
/// (UMEM-sized chunks).
struct Ring {
    frames: Vec<Vec<u8>>,
    slots: Vec<[u8; FRAME_BUF]>,
}

impl Ring {
    /// One 60-byte UDP frame from the client to the LAN virtual MAC per
    /// destination.
    fn to(dsts: &[Ipv4Addr]) -> Ring {
        let frames = dsts
            .iter()
            .map(|d| {
                ipv4_frame(EthernetAddress::vrrp_v4(1), *d, 64, PAYLOAD_64B)
                    .unwrap_or_else(|e| panic!("frame to {d}: {e}"))
            })
            .collect::<Vec<_>>();
        Ring {
            slots: vec![[0u8; FRAME_BUF]; frames.len()],
            frames,
        }
    }

    /// Handles `n` frames round robin from the ring and returns the time
    /// they took; panics afterwards if any gave another action than
    /// `expect`.
    fn time(&mut self, p: &mut Processor<'_>, now: Instant, expect: Action, n: u64) -> Duration {
        let mut wrong = 0u64;
        let mut i = 0;
        let start = Instant::now();
        for _ in 0..n {
            if let (Some(frame), Some(slot)) = (self.frames.get(i), self.slots.get_mut(i)) {
                if let Some(dst) = slot.get_mut(..frame.len()) {
                    dst.copy_from_slice(frame);
                }
                let action = p.handle(now, LAN, black_box(&mut slot[..]), frame.len());
                if black_box(action) != expect {
                    wrong += 1;
                }
            }
            i += 1;
            if i == self.frames.len() {
                i = 0;
            }
        }
        let took = start.elapsed();
        assert_eq!(wrong, 0, "{wrong} of {n} frames were not forwarded");
        took
    }
}

/// Checks each frame's forwarded form once: out of the WAN port, to the
/// next hop's MAC, from the WAN virtual MAC, TTL 63, checksum valid.
fn check_forwarding(w: &mut Worker, ring: &Ring, next_hop_mac: &[EthernetAddress]) {
    let now = w.now;
    let mut p = w.processor();
    for (i, (frame, want_mac)) in ring.frames.iter().zip(next_hop_mac).enumerate() {
        let mut buf = [0u8; FRAME_BUF];
        buf[..frame.len()].copy_from_slice(frame);
        let action = p.handle(now, LAN, &mut buf, frame.len());
        let eth = EthernetFrame::new_checked(&buf[..frame.len()])
            .unwrap_or_else(|e| panic!("frame {i}: {e}"));
        let ip =
            Ipv4Packet::new_checked(eth.payload()).unwrap_or_else(|e| panic!("frame {i}: {e}"));
        let ok = action
            == (Action::Send {
                port: WAN,
                len: frame.len(),
            })
            && eth.dst_addr() == *want_mac
            && eth.src_addr() == EthernetAddress::vrrp_v4(2)
            && ip.ttl() == 63
            && ip.verify_checksum();
        assert!(
            ok,
            "frame {i} to {}: {action:?}, to {:?}, TTL {}",
            ip.dst_addr(),
            eth.dst_addr(),
            ip.ttl()
        );
    }
}

fn forward(c: &mut Criterion) {
    let mut group = c.benchmark_group("pipeline");
    group.throughput(Throughput::Elements(1));
    group.sampling_mode(SamplingMode::Flat);
    group.sample_size(20);
    group.measurement_time(Duration::from_secs(3));
    let expect = Action::Send { port: WAN, len: 60 };

    // The pipeline with a two-route table: hosts of the WAN subnet, each
    // its own learned neighbour.
    {
        let mut w = Worker::new(gateway_tables_with(Vec::new()));
        let hosts: Vec<Ipv4Addr> = (0..RING)
            .map(|i| Ipv4Addr::new(203, 0, 113, 10 + u8::try_from(i % 200).unwrap_or(0)))
            .collect();
        let macs: Vec<EthernetAddress> = hosts
            .iter()
            .map(|h| EthernetAddress([2, 0, 0, 1, 0, h.octets()[3]]))
            .collect();
        for (h, m) in hosts.iter().zip(&macs) {
            w.neigh.learn(w.now, WAN, (*h).into(), *m);
        }
        assert!(hosts.contains(&SERVER));
        let mut ring = Ring::to(&hosts);
        check_forwarding(&mut w, &ring, &macs);
        group.bench_function("forward_connected", |b| {
            let now = w.now;
            let mut p = w.processor();
            b.iter_custom(|n| ring.time(&mut p, now, expect, n));
        });
    }

    // The pipeline with 100 000 prefixes.
    {
        let routes = internet_routes(PREFIXES, 7);
        let probes = probes_into(&routes, RING, 11);
        let mut w = Worker::new(gateway_tables_with(routes));
        let dsts: Vec<Ipv4Addr> = probes.iter().map(|(d, _)| *d).collect();
        let macs: Vec<EthernetAddress> = probes
            .iter()
            .map(|(_, hop)| {
                let i = WAN_GATEWAYS.iter().position(|g| *g == hop.addr);
                wan_gateway_mac(i.unwrap_or_else(|| panic!("next hop {hop:?} is no WAN router")))
            })
            .collect();
        let mut ring = Ring::to(&dsts);
        check_forwarding(&mut w, &ring, &macs);
        group.bench_function("forward_100k_prefixes", |b| {
            let now = w.now;
            let mut p = w.processor();
            b.iter_custom(|n| ring.time(&mut p, now, expect, n));
        });
    }
    group.finish();
}

fn lpm(c: &mut Criterion) {
    let mut group = c.benchmark_group("lpm");
    group.throughput(Throughput::Elements(1));
    group.sampling_mode(SamplingMode::Flat);
    group.sample_size(20);
    group.measurement_time(Duration::from_secs(3));
    let routes = internet_routes(PREFIXES, 7);
    let probes: Vec<(Ipv4Addr, NextHop<Ipv4Addr>)> = probes_into(&routes, RING, 11);
    let table = RouteTable::new(routes);
    for (dst, hop) in &probes {
        assert_eq!(table.lookup(*dst), Some(*hop), "lookup of {dst}");
    }
    group.bench_function("lookup_100k_prefixes", |b| {
        b.iter_custom(|n| {
            let mut wrong = 0u64;
            let start = Instant::now();
            for (dst, hop) in probes
                .iter()
                .cycle()
                .take(usize::try_from(n).unwrap_or(usize::MAX))
            {
                if table.lookup(black_box(*dst)) != Some(*hop) {
                    wrong += 1;
                }
            }
            let took = start.elapsed();
            assert_eq!(wrong, 0, "{wrong} of {n} lookups gave a wrong next hop");
            took
        });
    });
    group.finish();
}

criterion_group!(benches, forward, lpm);
criterion_main!(benches);
