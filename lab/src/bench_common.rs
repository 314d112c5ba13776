//! What `xvrrp bench failover` and `xvrrp bench control` share: a lab
//! prefix unique to the run, the Ctrl-C flag, progress lines, quantiles and
//! the CPU time of a process's threads.
//!
//! Conventions both keep: the table (or `--json`, one object) goes to
//! stdout, one progress line per step to stderr; everything started is held
//! by a guard, so the lab, the daemons and the load are stopped (by PID) and
//! removed on every exit path (error, panic, Ctrl-C).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

/// One progress line on stderr.
pub(crate) fn progress(msg: &str) {
    eprintln!("bench: {msg}");
}

/// A lab prefix unique to this run: `b`, a letter for the benchmark and
/// six base-36 digits of the PID (8 characters, `[a-z0-9]`).
pub(crate) fn unique_prefix(tag: char) -> String {
    const ALPHABET: &[u8; 36] = b"0123456789abcdefghijklmnopqrstuvwxyz";
    let mut v = std::process::id();
    let mut s = format!("b{tag}");
    for _ in 0..6 {
        let digit = usize::try_from(v % 36).unwrap_or(0);
        s.push(char::from(ALPHABET.get(digit).copied().unwrap_or(b'0')));
        v /= 36;
    }
    s
}

/// A flag raised by SIGINT or SIGTERM: the benchmark stops at its next wait
/// and its guards clean up.
pub(crate) fn interrupt_flag() -> Result<Arc<AtomicBool>> {
    let stop = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(sig, Arc::clone(&stop)).context("install signal handler")?;
    }
    Ok(stop)
}

/// A thread that sets itself up (enters a namespace, opens a socket...),
/// then runs until stopped and hands back its result: a load, a capture,
/// a probe of the benchmarks. Dropping it stops it too.
#[derive(Debug)]
pub(crate) struct Background<T> {
    name: &'static str,
    stop: Arc<AtomicBool>,
    handle: Option<JoinHandle<Result<T>>>,
}

impl<T: Send + 'static> Background<T> {
    /// Starts thread `name`: `setup` first, and this returns once it has
    /// (its error is this call's); then `run` with what `setup` made, until
    /// the flag it is given is raised.
    pub(crate) fn start<S, Setup, Run>(name: &'static str, setup: Setup, run: Run) -> Result<Self>
    where
        Setup: FnOnce() -> Result<S> + Send + 'static,
        Run: FnOnce(S, &AtomicBool) -> Result<T> + Send + 'static,
    {
        let stop = Arc::new(AtomicBool::new(false));
        let (ready_tx, ready_rx) = mpsc::channel();
        let flag = Arc::clone(&stop);
        let handle = thread::Builder::new()
            .name(name.to_owned())
            .spawn(move || {
                let state = match setup() {
                    Ok(s) => {
                        let _ = ready_tx.send(Ok(()));
                        s
                    }
                    Err(e) => {
                        let _ = ready_tx.send(Err(format!("{e:#}")));
                        return Err(e);
                    }
                };
                run(state, &flag)
            })
            .with_context(|| format!("spawn the {name} thread"))?;
        let background = Background {
            name,
            stop,
            handle: Some(handle),
        };
        match ready_rx.recv_timeout(Duration::from_secs(5)) {
            Ok(Ok(())) => Ok(background),
            Ok(Err(e)) => bail!("{name}: {e}"),
            Err(_) => bail!("the {name} thread did not start"),
        }
    }

    /// Stops the thread; its result.
    pub(crate) fn finish(mut self) -> Result<T> {
        self.stop.store(true, Ordering::Relaxed);
        match self.handle.take().map(JoinHandle::join) {
            Some(Ok(r)) => r,
            Some(Err(_)) => bail!("the {} thread panicked", self.name),
            None => bail!("the {} thread already finished", self.name),
        }
    }
}

impl<T> Drop for Background<T> {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}

/// Puts the calling thread in SCHED_FIFO at `priority` (needs root, which
/// the benchmarks have).
pub(crate) fn set_fifo(priority: i32) -> Result<()> {
    let param = libc::sched_param {
        sched_priority: priority,
    };
    // SAFETY: sched_setscheduler on the calling thread with a valid param.
    if unsafe { libc::sched_setscheduler(0, libc::SCHED_FIFO, &param) } != 0 {
        bail!("SCHED_FIFO: {}", std::io::Error::last_os_error());
    }
    Ok(())
}

/// Sleeps for `d` in short steps; fails at once when `stop` is raised.
pub(crate) fn sleep_or_stop(d: Duration, stop: &AtomicBool) -> Result<()> {
    let until = Instant::now() + d;
    loop {
        if stop.load(Ordering::Relaxed) {
            bail!("interrupted");
        }
        let now = Instant::now();
        if now >= until {
            return Ok(());
        }
        thread::sleep((until - now).min(Duration::from_millis(20)));
    }
}

/// The `p`-quantile (0..=1) of `sorted` by the nearest-rank method, or
/// `None` for no samples. With 5 samples p99 is the largest: a benchmark
/// of few trials reports its worst case as its p99.
pub(crate) fn quantile(sorted: &[f64], p: f64) -> Option<f64> {
    if sorted.is_empty() {
        return None;
    }
    let n = sorted.len();
    // Nearest rank: ceil(p * n), 1-based; small counts, exact in f64.
    #[allow(
        clippy::cast_precision_loss,
        clippy::cast_possible_truncation,
        clippy::cast_sign_loss
    )]
    let rank = (p.clamp(0.0, 1.0) * n as f64).ceil() as usize;
    sorted.get(rank.clamp(1, n) - 1).copied()
}

/// `values` sorted ascending (NaN last).
pub(crate) fn sorted(values: impl IntoIterator<Item = f64>) -> Vec<f64> {
    let mut v: Vec<f64> = values.into_iter().collect();
    v.sort_by(f64::total_cmp);
    v
}

/// A count as f64 for reports (exact below 2^53).
#[allow(clippy::cast_precision_loss)]
pub(crate) fn f(v: u64) -> f64 {
    v as f64
}

/// Nanoseconds as milliseconds, for reports.
pub(crate) fn ms(ns: u64) -> f64 {
    f(ns) / 1e6
}

/// CPU time (user + system) a process's threads have used, by kind.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub(crate) struct ThreadCpu {
    /// The main thread (the thread whose id is the PID).
    pub(crate) main: Duration,
    /// The part of `main` spent in the kernel (stime): system calls and
    /// what the kernel does in their context.
    pub(crate) main_kernel: Duration,
    /// Threads named `worker_prefix*`, summed.
    pub(crate) workers: Duration,
    /// Every other thread, summed.
    pub(crate) other: Duration,
}

impl ThreadCpu {
    /// Reads `/proc/PID/task/*/stat` (utime + stime) of `pid`; threads whose
    /// `comm` starts with `worker_prefix` count as workers.
    ///
    /// # Errors
    /// The process is gone or `/proc` cannot be read.
    pub(crate) fn read(pid: u32, worker_prefix: &str) -> Result<ThreadCpu> {
        let tick = clock_tick()?;
        let dir = format!("/proc/{pid}/task");
        let mut cpu = ThreadCpu::default();
        for task in std::fs::read_dir(&dir).with_context(|| format!("read {dir}"))? {
            let task = task?;
            let Some(tid) = task
                .file_name()
                .to_str()
                .and_then(|t| t.parse::<u32>().ok())
            else {
                continue;
            };
            // A thread may end between the listing and the read: skip it.
            let Ok(stat) = std::fs::read_to_string(task.path().join("stat")) else {
                continue;
            };
            let Some((comm, user, system)) = parse_stat(&stat) else {
                continue;
            };
            let time = tick * u32::try_from(user + system).unwrap_or(u32::MAX);
            if tid == pid {
                cpu.main += time;
                cpu.main_kernel += tick * u32::try_from(system).unwrap_or(u32::MAX);
            } else if comm.starts_with(worker_prefix) {
                cpu.workers += time;
            } else {
                cpu.other += time;
            }
        }
        Ok(cpu)
    }

    /// What was used between `earlier` and `self`.
    pub(crate) fn since(self, earlier: ThreadCpu) -> ThreadCpu {
        ThreadCpu {
            main: self.main.saturating_sub(earlier.main),
            main_kernel: self.main_kernel.saturating_sub(earlier.main_kernel),
            workers: self.workers.saturating_sub(earlier.workers),
            other: self.other.saturating_sub(earlier.other),
        }
    }
}

/// `(comm, utime, stime)` from a `/proc/.../stat` line. `comm` is in
/// parentheses and may hold spaces or parentheses itself, so the fields
/// are counted from its last `)`.
fn parse_stat(stat: &str) -> Option<(&str, u64, u64)> {
    let open = stat.find('(')?;
    let close = stat.rfind(')')?;
    let comm = stat.get(open + 1..close)?;
    // After ") ": state (field 3), ..., utime (14), stime (15).
    let rest: Vec<&str> = stat.get(close + 2..)?.split_whitespace().collect();
    let utime: u64 = rest.get(11)?.parse().ok()?;
    let stime: u64 = rest.get(12)?.parse().ok()?;
    Some((comm, utime, stime))
}

/// The length of one clock tick of `/proc` times (`sysconf(_SC_CLK_TCK)`).
fn clock_tick() -> Result<Duration> {
    // SAFETY: sysconf has no memory effects.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    let hz = u64::try_from(hz)
        .ok()
        .filter(|&h| h > 0)
        .context("sysconf(_SC_CLK_TCK)")?;
    Ok(Duration::from_nanos(1_000_000_000 / hz))
}

/// `part` as a percentage of one core over `wall`.
pub(crate) fn core_percent(part: Duration, wall: Duration) -> f64 {
    if wall.is_zero() {
        return 0.0;
    }
    part.as_secs_f64() * 100.0 / wall.as_secs_f64()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefix_is_a_valid_lab_prefix() {
        let p = unique_prefix('f');
        assert_eq!(p.len(), 8);
        assert!(crate::lab::validate_prefix(&p).is_ok(), "{p}");
    }

    #[test]
    fn nearest_rank_quantiles() {
        let v: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(quantile(&v, 0.5), Some(50.0));
        assert_eq!(quantile(&v, 0.99), Some(99.0));
        assert_eq!(quantile(&v, 1.0), Some(100.0));
        assert_eq!(quantile(&[7.0], 0.99), Some(7.0));
        assert_eq!(
            quantile(&sorted([3.0, 1.0, 2.0, 5.0, 4.0]), 0.99),
            Some(5.0)
        );
        assert_eq!(quantile(&[], 0.5), None);
    }

    #[test]
    fn stat_fields_after_a_comm_with_spaces() {
        let line = "4242 (xvrrp-worker0 (x) y) S 1 2 3 4 5 6 7 8 9 10 120 30 0 0 20 0";
        assert_eq!(parse_stat(line), Some(("xvrrp-worker0 (x) y", 120, 30)));
        assert_eq!(parse_stat("garbage"), None);
    }

    #[test]
    fn own_threads_are_readable() {
        let cpu = ThreadCpu::read(std::process::id(), "no-such-thread").unwrap();
        assert_eq!(cpu.workers, Duration::ZERO);
    }
}
