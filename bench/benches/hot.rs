//! Micro-benchmarks of the fast path and the control core, timed with
//! `std::time` (no framework: they build in seconds).
//!
//! Each benchmark calibrates an iteration count for runs of about
//! [`RUN_TIME`], times [`RUNS`] runs and prints one table line: name,
//! iterations per run, the median ns per operation, the budget it guards,
//! and OK or OVER. OVER is reported, not failed: benchmarks measure, tests
//! check. A wrong *result* (a parse that fails, a frame not forwarded, an
//! election that does not converge) makes the process exit 1.
//!
//! Budgets (why each number is what it is: see `bench/README.md`):
//! - `parse_ipv4_advert` ≤ 100 ns: validation of every punted advert;
//! - `handle_*` ≤ 200 ns: one worker core at 5 Mpps has 200 ns per frame;
//! - `lpm_lookup_*` ≤ 50 ns: a quarter of that per-frame budget;
//! - `fsm_backup_rx_advert` ≤ 200 ns: 1000 routers at 10 ms intervals
//!   (100k adverts/s) then cost the control thread 2 % of a core;
//! - `fsm_election_2_routers` ≤ 20 µs per election, i.e. ≥ 50 000/s.
//!
//! Run with `cargo bench -p xvrrp-bench`.

use std::error::Error;
use std::hint::black_box;
use std::net::IpAddr;
use std::process::ExitCode;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use xvrrp_bench::{
    advert_frame, arp_request_frame, gateway_tables, ipv4_frame, router_config, sixteen_routes,
    CLIENT, CLIENT_MAC, FRAME_BUF, LAN, LAN_VIP, SERVER, SERVER_MAC, WAN,
};
use xvrrp_control::vrrp::{Advert, Instance, InstanceConfig, Output, State};
use xvrrp_dataplane::{
    neigh::NeighbourTable,
    process::{Processor, Tables},
    shared::Shared,
    stats::{Counters, DropReason},
    xsk::Action,
};
use xvrrp_wire::{
    arp::{ArpOperation, ArpPacket, ArpRepr},
    ethernet::{EthernetAddress, EthernetFrame, HEADER_LEN},
    ipv4::Ipv4Packet,
    vrrp::parse_ipv4_advert,
};

/// A benchmark's failure: its setup broke or its result was wrong.
type Outcome<T> = Result<T, Box<dyn Error>>;

/// Timed runs per benchmark; the median is reported.
const RUNS: usize = 9;
/// Wall time one run aims at.
const RUN_TIME: Duration = Duration::from_millis(40);
/// `Processor::handle` calls timed between two drains of the punt queue
/// (its depth is 1024, so it never fills).
const CHUNK: u64 = 512;

/// One measured benchmark.
struct Row {
    name: &'static str,
    iters: u64,
    ns_per_op: f64,
    budget_ns: f64,
    /// What one operation is, when it is not a single call.
    note: String,
}

impl Row {
    fn print(&self) {
        let verdict = if self.ns_per_op <= self.budget_ns {
            "OK"
        } else {
            "OVER"
        };
        println!(
            "{:<28} {:>10} {:>10.1} {:>12} {:<5} {}",
            self.name,
            self.iters,
            self.ns_per_op,
            format!("<= {} ns", self.budget_ns),
            verdict,
            self.note
        );
    }
}

/// Calibrates, then times [`RUNS`] runs of `run(iters)`, which performs
/// `iters` operations and returns the time they took (setup excluded) or
/// an error if a result was wrong. Returns the iterations per run and the
/// median ns per operation.
fn measure(mut run: impl FnMut(u64) -> Outcome<Duration>) -> Outcome<(u64, f64)> {
    let mut iters: u64 = 16;
    let target = RUN_TIME.as_nanos();
    loop {
        let took = run(iters)?.as_nanos().max(1);
        if took * 8 >= target || iters >= 1 << 32 {
            let scaled = u128::from(iters) * target / took;
            iters = u64::try_from(scaled).unwrap_or(u64::MAX).max(1);
            break;
        }
        iters *= 4;
    }
    let mut samples = Vec::with_capacity(RUNS);
    for _ in 0..RUNS {
        let took = run(iters)?;
        samples.push(took.as_nanos() as f64 / iters as f64);
    }
    samples.sort_by(f64::total_cmp);
    let median = samples.get(RUNS / 2).copied().ok_or("no samples")?;
    Ok((iters, median))
}

// ----- wire ------------------------------------------------------------------

/// `parse_ipv4_advert` on a valid VRRPv3 advert (IPv4 header checks, VRRP
/// ladder, RFC 9568 checksum over the pseudo-header). Budget ≤ 100 ns.
fn parse_ipv4_advert_bench() -> Outcome<Row> {
    let frame = advert_frame(1, 100)?;
    let ip_bytes = frame.get(HEADER_LEN..).ok_or("advert frame too short")?;
    let (repr, _) = parse_ipv4_advert(&Ipv4Packet::new_checked(ip_bytes)?, true)?;
    if (repr.vrid, repr.priority, repr.max_advert_int) != (1, 100, 100) {
        return Err(format!("advert parsed as {repr:?}").into());
    }
    let (iters, ns) = measure(|iters| {
        let mut failed = 0u64;
        let start = Instant::now();
        for _ in 0..iters {
            let ip = Ipv4Packet::new_unchecked(black_box(ip_bytes));
            match parse_ipv4_advert(&ip, true) {
                Ok(parsed) => {
                    black_box(parsed);
                }
                Err(_) => failed += 1,
            }
        }
        let took = start.elapsed();
        if failed > 0 {
            return Err(format!("{failed} of {iters} parses failed").into());
        }
        Ok(took)
    })?;
    Ok(Row {
        name: "parse_ipv4_advert",
        iters,
        ns_per_op: ns,
        budget_ns: 100.0,
        note: String::new(),
    })
}

// ----- fast path -------------------------------------------------------------

/// What one worker owns, around the lab gateway's tables, master of both
/// virtual routers.
struct Worker {
    tables: Tables,
    shared: Shared,
    neigh: NeighbourTable,
    counters: Counters,
    now: Instant,
}

impl Worker {
    fn new() -> Outcome<Self> {
        let tables = gateway_tables();
        let shared = Shared::new(1, tables.ports.len(), tables.instances.len())?;
        for flag in &shared.master {
            flag.store(true, Ordering::Release);
        }
        Ok(Self {
            counters: Counters::new(tables.ports.len()),
            tables,
            shared,
            neigh: NeighbourTable::new(),
            now: Instant::now(),
        })
    }

    /// Handles `frame` once on `port`; returns the action and the frame as
    /// the processor left it.
    fn handle_once(&mut self, port: usize, frame: &[u8]) -> (Action, Vec<u8>) {
        let mut buf = [0u8; FRAME_BUF];
        load(&mut buf, frame);
        let now = self.now;
        let action = self.processor().handle(now, port, &mut buf, frame.len());
        let out = match action {
            Action::Send { len, .. } | Action::Forward { len, .. } => {
                buf.get(..len).unwrap_or_default().to_vec()
            }
            Action::Free | Action::Park => Vec::new(),
        };
        (action, out)
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

    /// Times `iters` calls of `handle` on a fresh copy of `frame` each (the
    /// processor rewrites frames in place, as a received frame in the UMEM
    /// is new each time), in chunks between which the punt queue is drained
    /// untimed. Fails if any call's action differs from `expect`; returns
    /// the time and how many adverts were punted.
    fn time_handle(
        &mut self,
        port: usize,
        frame: &[u8],
        expect: Action,
        iters: u64,
    ) -> Outcome<(Duration, u64)> {
        let mut buf = [0u8; FRAME_BUF];
        let (mut took, mut wrong, mut punted) = (Duration::ZERO, 0u64, 0u64);
        let now = self.now;
        let mut left = iters;
        while left > 0 {
            let chunk = left.min(CHUNK);
            left -= chunk;
            let mut p = self.processor();
            let start = Instant::now();
            for _ in 0..chunk {
                load(&mut buf, frame);
                let action = p.handle(now, port, black_box(&mut buf), frame.len());
                if black_box(action) != expect {
                    wrong += 1;
                }
            }
            took += start.elapsed();
            while self.shared.adverts.pop().is_some() {
                punted += 1;
            }
        }
        if wrong > 0 {
            return Err(
                format!("{wrong} of {iters} frames gave another action than {expect:?}").into(),
            );
        }
        Ok((took, punted))
    }
}

/// Copies `frame` to the start of `buf` (sized to hold any bench frame).
fn load(buf: &mut [u8], frame: &[u8]) {
    if let Some(dst) = buf.get_mut(..frame.len()) {
        dst.copy_from_slice(frame);
    }
}

/// `Processor::handle` on an ARP request for the LAN VIP while master: the
/// reply is built in place from the virtual MAC. Budget ≤ 200 ns.
fn handle_arp_bench() -> Outcome<Row> {
    let mut w = Worker::new()?;
    let request = arp_request_frame(LAN_VIP)?;
    let (action, reply) = w.handle_once(LAN, &request);
    let expect = Action::Send {
        port: LAN,
        len: reply.len(),
    };
    let eth = EthernetFrame::new_checked(&reply[..])?;
    let arp = ArpRepr::parse(&ArpPacket::new_checked(eth.payload())?)?;
    let vmac = EthernetAddress::vrrp_v4(1);
    if !matches!(action, Action::Send { port: LAN, .. })
        || eth.dst_addr() != CLIENT_MAC
        || eth.src_addr() != vmac
        || arp.operation != ArpOperation::Reply
        || (arp.source_hw, arp.source_ip, arp.target_ip) != (vmac, LAN_VIP, CLIENT)
    {
        return Err(format!("ARP request for the VIP gave {action:?}, {arp:?}").into());
    }
    let (iters, ns) = measure(|iters| Ok(w.time_handle(LAN, &request, expect, iters)?.0))?;
    Ok(Row {
        name: "handle_arp_request_master",
        iters,
        ns_per_op: ns,
        budget_ns: 200.0,
        note: "incl. 60 B frame copy".into(),
    })
}

/// `Processor::handle` on a 60-byte UDP frame from the client to the server
/// sent to the LAN virtual MAC, the server's MAC already learned: route
/// lookup, neighbour hit, MAC rewrite, TTL decrement with checksum update.
/// Budget ≤ 200 ns.
fn handle_forward_bench() -> Outcome<Row> {
    let mut w = Worker::new()?;
    w.neigh.learn(w.now, WAN, SERVER.into(), SERVER_MAC);
    let frame = ipv4_frame(EthernetAddress::vrrp_v4(1), SERVER, 64, 26)?;
    let (action, out) = w.handle_once(LAN, &frame);
    let expect = Action::Forward {
        port: WAN,
        len: frame.len(),
    };
    let eth = EthernetFrame::new_checked(&out[..])?;
    let ip = Ipv4Packet::new_checked(eth.payload())?;
    if action != expect
        || (eth.dst_addr(), eth.src_addr()) != (SERVER_MAC, EthernetAddress::vrrp_v4(2))
        || ip.ttl() != 63
        || !ip.verify_checksum()
    {
        return Err(format!(
            "frame to the virtual MAC gave {action:?}: to {:?} from {:?}, TTL {}",
            eth.dst_addr(),
            eth.src_addr(),
            ip.ttl()
        )
        .into());
    }
    let (iters, ns) = measure(|iters| Ok(w.time_handle(LAN, &frame, expect, iters)?.0))?;
    Ok(Row {
        name: "handle_forward_vmac_hit",
        iters,
        ns_per_op: ns,
        budget_ns: 200.0,
        note: "incl. 60 B frame copy".into(),
    })
}

/// `Processor::handle` on a valid advert from the peer: validated and
/// punted to the control thread's queue (which copies it). Budget ≤ 200 ns.
fn handle_punt_bench() -> Outcome<Row> {
    let mut w = Worker::new()?;
    let frame = advert_frame(1, 100)?;
    let (iters, ns) = measure(|iters| {
        let punted_before = w.counters.ports.get(LAN).map_or(0, |c| c.punted);
        let (took, popped) = w.time_handle(LAN, &frame, Action::Free, iters)?;
        let punted = w.counters.ports.get(LAN).map_or(0, |c| c.punted) - punted_before;
        if (punted, popped) != (iters, iters) {
            let full = w
                .counters
                .drops
                .get(LAN)
                .and_then(|d| d.get(DropReason::PuntQueueFull as usize))
                .copied()
                .unwrap_or(0);
            return Err(format!(
                "{iters} adverts: {punted} punted, {popped} reached control, {full} queue-full drops"
            )
            .into());
        }
        Ok(took)
    })?;
    Ok(Row {
        name: "handle_advert_punt",
        iters,
        ns_per_op: ns,
        budget_ns: 200.0,
        note: "incl. frame copy; pop untimed".into(),
    })
}

/// `RouteTable::lookup` over 16 routes. `probes` cycles through the given
/// destinations; every answer is checked. Budget ≤ 50 ns.
fn lpm_bench(name: &'static str, all_probes: bool) -> Outcome<Row> {
    let (table, probes) = sixteen_routes();
    // The default route is listed last, so its probe scans the whole table.
    let probes = if all_probes {
        probes
    } else {
        probes.last().copied().into_iter().collect()
    };
    let (iters, ns) = measure(|iters| {
        let mut wrong = 0u64;
        let start = Instant::now();
        for (dst, hop) in probes.iter().cycle().take(usize::try_from(iters)?) {
            if table.lookup(black_box(*dst)) != Some(*hop) {
                wrong += 1;
            }
        }
        let took = start.elapsed();
        if wrong > 0 {
            return Err(format!("{wrong} of {iters} lookups gave a wrong next hop").into());
        }
        Ok(took)
    })?;
    Ok(Row {
        name,
        iters,
        ns_per_op: ns,
        budget_ns: 50.0,
        note: if all_probes {
            "each of the 16 routes in turn".into()
        } else {
            "default route: full scan".into()
        },
    })
}

// ----- control core ----------------------------------------------------------

/// `Instance::handle_advert` plus draining `poll_output`, for a backup
/// (priority 100) hearing its master's (200) periodic advert: timer reset,
/// no output. Budget ≤ 200 ns.
fn fsm_backup_bench() -> Outcome<Row> {
    let master = router_config("a", 200, 2);
    let mut backup = Instance::new(router_config("b", 100, 3));
    let mut now = Instant::now();
    backup.handle_startup(now);
    while backup.poll_output().is_some() {}
    let advert = Advert {
        src: master.primary_addr,
        priority: master.priority,
        max_advert_int_cs: master.advert_interval_cs,
    };
    let step = Duration::from_millis(10);
    let (iters, ns) = measure(|iters| {
        let mut outputs = 0u64;
        let start = Instant::now();
        for _ in 0..iters {
            now += step;
            backup.handle_advert(now, black_box(&advert));
            while let Some(out) = backup.poll_output() {
                black_box(out);
                outputs += 1;
            }
        }
        let took = start.elapsed();
        let armed = Some(now + backup.master_down_interval());
        if outputs != 0 || backup.state() != State::Backup || backup.poll_timeout() != armed {
            return Err(format!(
                "backup hearing its master: {outputs} outputs, state {}, timer {:?}",
                backup.state(),
                backup.poll_timeout()
            )
            .into());
        }
        Ok(took)
    })?;
    Ok(Row {
        name: "fsm_backup_rx_advert",
        iters,
        ns_per_op: ns,
        budget_ns: 200.0,
        note: String::new(),
    })
}

/// Events one election may take before it is declared not to converge.
const MAX_EVENTS: u32 = 100;

/// One simulated election on a lossless zero-delay LAN with a clock that
/// jumps to the next deadline: B (100) starts alone and becomes master, A
/// (200) joins 10 s later as backup, preempts B, and B steps down. Ends at
/// steady state (A master, B backup following A); returns the events taken.
fn election(a: &InstanceConfig, b: &InstanceConfig, t0: Instant) -> Outcome<u32> {
    let mut routers = [Instance::new(a.clone()), Instance::new(b.clone())];
    let a_addr: IpAddr = a.primary_addr;
    routers[1].handle_startup(t0);
    let mut join = Some(t0 + Duration::from_secs(10));
    let mut now = t0;
    for events in 0..MAX_EVENTS {
        deliver(&mut routers, now);
        let [ra, rb] = &routers;
        if ra.state() == State::Master
            && rb.state() == State::Backup
            && rb.master_addr() == Some(a_addr)
        {
            return Ok(events);
        }
        let next = routers
            .iter()
            .filter_map(Instance::poll_timeout)
            .chain(join)
            .min()
            .ok_or("no timer armed")?;
        now = next;
        if join == Some(now) {
            join = None;
            routers[0].handle_startup(now);
        } else {
            for r in &mut routers {
                r.handle_timeout(now);
            }
        }
    }
    Err(format!("no steady state after {MAX_EVENTS} events").into())
}

/// Carries every advert a router asks to send to the other one at `now`,
/// until neither has anything left to say.
fn deliver(routers: &mut [Instance; 2], now: Instant) {
    let mut quiet = false;
    while !quiet {
        quiet = true;
        for from in 0..2 {
            let to = 1 - from;
            while let Some(out) = routers.get_mut(from).and_then(Instance::poll_output) {
                let Output::SendAdvert {
                    priority,
                    max_advert_int_cs,
                } = out
                else {
                    continue;
                };
                let src = routers.get(from).map(|r| r.config().primary_addr);
                if let (Some(src), Some(peer)) = (src, routers.get_mut(to)) {
                    let advert = Advert {
                        src,
                        priority,
                        max_advert_int_cs,
                    };
                    peer.handle_advert(now, &advert);
                    quiet = false;
                }
            }
        }
    }
}

/// Whole 2-router elections to steady state, including building both
/// instances. Budget ≤ 20 µs per election (≥ 50 000 elections/s).
fn fsm_election_bench() -> Outcome<Row> {
    let a = router_config("a", 200, 2);
    let b = router_config("b", 100, 3);
    let t0 = Instant::now();
    let events = election(&a, &b, t0)?;
    let (iters, ns) = measure(|iters| {
        let start = Instant::now();
        for _ in 0..iters {
            black_box(election(black_box(&a), &b, t0)?);
        }
        Ok(start.elapsed())
    })?;
    Ok(Row {
        name: "fsm_election_2_routers",
        iters,
        ns_per_op: ns,
        budget_ns: 20_000.0,
        note: format!(
            "{:.0} elections/s, {events} events each",
            1e9 / ns.max(f64::MIN_POSITIVE)
        ),
    })
}

fn main() -> ExitCode {
    type BenchFn = fn() -> Outcome<Row>;
    let benches: [(&str, BenchFn); 8] = [
        ("parse_ipv4_advert", parse_ipv4_advert_bench),
        ("handle_arp_request_master", handle_arp_bench),
        ("handle_forward_vmac_hit", handle_forward_bench),
        ("handle_advert_punt", handle_punt_bench),
        ("lpm_lookup_16_mixed", || {
            lpm_bench("lpm_lookup_16_mixed", true)
        }),
        ("lpm_lookup_16_default", || {
            lpm_bench("lpm_lookup_16_default", false)
        }),
        ("fsm_backup_rx_advert", fsm_backup_bench),
        ("fsm_election_2_routers", fsm_election_bench),
    ];
    println!(
        "{:<28} {:>10} {:>10} {:>12} {:<5} note",
        "bench", "iters/run", "ns/op", "budget", "ok"
    );
    let mut failed = 0;
    for (name, bench) in benches {
        match bench() {
            Ok(row) => row.print(),
            Err(e) => {
                println!("{name:<28} WRONG RESULT: {e}");
                failed += 1;
            }
        }
    }
    if failed > 0 {
        eprintln!("{failed} benchmark(s) produced a wrong result");
        return ExitCode::FAILURE;
    }
    ExitCode::SUCCESS
}
