//! The daemon's dealings with the operating system: real-time priority for
//! the control thread, and systemd's notify protocol and watchdog.

use std::time::{Duration, Instant};

/// Real-time priority of the control thread (SCHED_FIFO): above every
/// normal task, so a busy neighbour on its core cannot delay adverts.
const CONTROL_RT_PRIORITY: i32 = 10;

/// Puts the calling (control) thread in SCHED_FIFO so that CPU contention
/// cannot delay adverts beyond an interval. The thread sleeps almost all
/// the time, so it cannot starve its core. Needs CAP_SYS_NICE; without it
/// the thread stays in the normal class and a warning says so.
pub(super) fn raise_control_priority() {
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

/// Keeps the calling (control) thread off the workers' `cores` when the
/// machine has others: a stall of one core (a vCPU the hypervisor takes
/// away) then holds either the control thread or the workers, never both,
/// and the workers send the adverts of a late control thread (dataplane
/// `rescue`). Where the workers hold every core, the thread stays free.
pub(super) fn keep_off_worker_cores(cores: &[usize]) {
    // SAFETY: cpu_set_t is plain data; all-zero is the empty set.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    let size = std::mem::size_of_val(&set);
    // SAFETY: reading the calling thread's affinity into a set of `size`.
    if unsafe { libc::sched_getaffinity(0, size, &mut set) } != 0 {
        return;
    }
    for &c in cores {
        if c < 8 * size {
            // SAFETY: `c` is within the set's bits.
            unsafe { libc::CPU_CLR(c, &mut set) };
        }
    }
    // SAFETY: a valid set, read above.
    if unsafe { libc::CPU_COUNT(&set) } == 0 {
        return;
    }
    // SAFETY: setting the calling thread's affinity to a valid set of `size`.
    if unsafe { libc::sched_setaffinity(0, size, &set) } != 0 {
        tracing::debug!(error = %std::io::Error::last_os_error(), "control thread left on every core");
    }
}

/// Tells systemd (Type=notify) about our state, if it is listening.
pub(super) fn notify_systemd(state: &str) {
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

/// systemd's watchdog (WatchdogSec): pinged at half its period from the
/// control loop, so a stuck control thread gets the unit restarted.
pub(super) struct Watchdog {
    period: Option<Duration>,
    last_ping: Instant,
}

impl Watchdog {
    /// The watchdog systemd asked for, if any.
    pub(super) fn from_env() -> Self {
        let period = std::env::var("WATCHDOG_USEC")
            .ok()
            .and_then(|v| v.parse::<u64>().ok())
            .map(|us| Duration::from_micros(us / 2));
        Self {
            period,
            last_ping: Instant::now(),
        }
    }

    /// The longest the loop may sleep without missing a ping.
    pub(super) fn max_sleep(&self, default: Duration) -> Duration {
        self.period.map_or(default, |p| p.min(default))
    }

    /// Pings systemd when half the period has passed.
    pub(super) fn tick(&mut self, now: Instant) {
        if self
            .period
            .is_some_and(|p| now.saturating_duration_since(self.last_ping) >= p)
        {
            notify_systemd("WATCHDOG=1");
            self.last_ping = now;
        }
    }
}
