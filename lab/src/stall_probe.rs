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
pub(crate) struct Stalls {
    /// The worst lateness.
    pub(crate) max: Duration,
    /// Wake-ups later than 10 ms.
    pub(crate) over_10ms: u64,
    /// Wake-ups later than 30 ms: longer than a 10 ms master's adverts
    /// may be apart before a backup's Master_Down_Interval runs out.
    pub(crate) over_30ms: u64,
    /// The window watched.
    pub(crate) watched: Duration,
}

/// The running probe.
pub(crate) struct StallProbe(Background<Stalls>);

impl StallProbe {
    /// Starts the probe (SCHED_FIFO needs root, which the bench has).
    pub(crate) fn start() -> Result<StallProbe> {
        Background::start(
            "stall-probe",
            || set_fifo(PROBE_RT_PRIORITY),
            |(), stop| Ok(watch(stop)),
        )
        .map(StallProbe)
    }

    /// Stops it; what it saw.
    pub(crate) fn finish(self) -> Result<Stalls> {
        self.0.finish()
    }
}

/// Sleeps a [`TICK`] at a time until `stop`, noting how late it wakes.
fn watch(stop: &AtomicBool) -> Stalls {
    let started = Instant::now();
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
    stalls
}
