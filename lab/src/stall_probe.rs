//! The machine's own stalls, for `bench control`: a real-time thread that
//! sleeps a millisecond at a time and records how late it wakes.
//!
//! The appliances' control threads are SCHED_FIFO; when even this thread,
//! at a higher priority and doing nothing else, wakes tens of milliseconds
//! late, the whole machine stalled (on a VM, most often the host not
//! running the virtual CPU), and so did the appliances' timers.

use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use anyhow::Result;

use crate::bench_common::{set_fifo, Background};

/// Above the control threads (10), so that only the machine delays it.
const PROBE_RT_PRIORITY: i32 = 50;
/// How long it sleeps each time.
const TICK: Duration = Duration::from_millis(1);

/// How late the probe woke.
#[derive(Clone, Copy, Debug, Default)]
pub struct Stalls {
    /// The worst lateness.
    pub max: Duration,
    /// Wake-ups later than 10 ms.
    pub over_10ms: u64,
    /// Wake-ups later than 30 ms: longer than a 10 ms master's adverts
    /// may be apart before a backup's Master_Down_Interval runs out.
    pub over_30ms: u64,
    /// The window watched.
    pub watched: Duration,
    /// Share of the machine's CPU time the hypervisor gave to others while
    /// a virtual CPU wanted to run (`steal` of `/proc/stat`), in percent;
    /// `None` where the kernel does not count it.
    pub steal_pct: Option<f64>,
}

impl Stalls {
    /// The hypervisor's steal, for a report line.
    pub fn steal_described(&self) -> String {
        self.steal_pct.map_or_else(
            || "not counted".to_owned(),
            |p| format!("{p:.2} % of CPU time"),
        )
    }
}

/// The running probe.
pub struct StallProbe(Background<Stalls>);

impl StallProbe {
    /// Starts the probe (SCHED_FIFO needs root, which the bench has).
    pub fn start() -> Result<StallProbe> {
        Background::start(
            "stall-probe",
            || set_fifo(PROBE_RT_PRIORITY),
            |(), stop| Ok(watch(stop)),
        )
        .map(StallProbe)
    }

    /// Stops it; what it saw.
    pub fn finish(self) -> Result<Stalls> {
        self.0.finish()
    }
}

/// Sleeps a [`TICK`] at a time until `stop`, noting how late it wakes.
fn watch(stop: &AtomicBool) -> Stalls {
    let started = Instant::now();
    let steal_before = cpu_ticks();
    let mut stalls = Stalls::default();
    while !stop.load(Ordering::Relaxed) {
        let due = Instant::now() + TICK;
        thread::sleep(TICK);
        let late = Instant::now().saturating_duration_since(due);
        stalls.max = stalls.max.max(late);
        stalls.over_10ms += u64::from(late > Duration::from_millis(10));
        stalls.over_30ms += u64::from(late > Duration::from_millis(30));
    }
    stalls.watched = started.elapsed();
    stalls.steal_pct = steal_before.zip(cpu_ticks()).and_then(|(b, a)| {
        let total = a.total.checked_sub(b.total).filter(|t| *t > 0)?;
        let steal = a.steal.saturating_sub(b.steal);
        Some(100.0 * steal as f64 / total as f64)
    });
    stalls
}

/// The machine's CPU time so far, in ticks, from `/proc/stat`.
#[derive(Clone, Copy, Debug)]
struct CpuTicks {
    steal: u64,
    total: u64,
}

fn cpu_ticks() -> Option<CpuTicks> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    parse_cpu_line(stat.lines().next()?)
}

/// `cpu  user nice system idle iowait irq softirq steal guest guest_nice`;
/// guest time is already in user time, so it is not added again.
fn parse_cpu_line(line: &str) -> Option<CpuTicks> {
    let mut fields = line.split_whitespace();
    if fields.next()? != "cpu" {
        return None;
    }
    let ticks: Vec<u64> = fields
        .take(8)
        .map(str::parse)
        .collect::<Result<_, _>>()
        .ok()?;
    let steal = *ticks.get(7)?;
    Some(CpuTicks {
        steal,
        total: ticks.iter().sum(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cpu_line_gives_steal_and_total() {
        let t = parse_cpu_line("cpu  8494 0 3166 334068 478 0 112 677 0 0").unwrap();
        assert_eq!(t.steal, 677);
        assert_eq!(t.total, 8494 + 3166 + 334_068 + 478 + 112 + 677);
        assert!(parse_cpu_line("cpu0 1 2 3 4 5 6 7 8 0 0").is_none());
        assert!(parse_cpu_line("cpu  1 2 3").is_none());
    }
}
