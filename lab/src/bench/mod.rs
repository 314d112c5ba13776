//! `xvrrp bench`: end-to-end benchmarks, each in a lab of its own, with its
//! baseline measured in the same run.
//!
//! Why the orchestration lives here, in the lab crate, and not in `bench/`:
//! an end-to-end benchmark is namespaces, appliances started as processes,
//! a traffic generator and probes, which is what this crate already is (the
//! `xvrrp` binary links it for `lab` and `demo`, the integration tests for
//! their fixtures). `bench/` holds the in-process micro-benchmarks of the
//! per-frame code (`cargo bench`, no root, no lab), which link the fast path
//! directly; keeping them apart keeps criterion and the micro-benchmark
//! fixtures out of the appliance binary, and the lab out of `cargo bench`.
//!
//! Adding a benchmark (`failover`, `control`): a module with its clap
//! `XxxArgs` and `run(&XxxArgs, self_exe)`, and one variant of
//! [`BenchCommand`]. The helpers here (unique lab prefix, Ctrl-C flag,
//! progress lines, percentiles) and in `probe` (interface counters, CPU
//! time, ARP and ping round trips) are shared.
//!
//! Conventions every benchmark keeps: the tables (or `--json`, one object)
//! go to stdout, one progress line per step to stderr; everything started
//! is held by a guard, so the lab, the appliances and the generator are
//! stopped and removed on every exit path (error, panic, Ctrl-C).

pub mod forward;
mod probe;
mod trafgen;

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

/// `xvrrp bench`: end-to-end benchmarks in a lab of their own.
#[derive(clap::Args, Debug)]
pub struct BenchArgs {
    /// Which benchmark to run.
    #[command(subcommand)]
    command: BenchCommand,
}

/// The benchmarks.
#[derive(clap::Subcommand, Debug)]
enum BenchCommand {
    /// Forwarding rate, CPU per packet and latency: Linux kernel forwarding
    /// on gateway A, then xvrrp on A, same generator, same run.
    Forward(forward::ForwardArgs),
    /// Traffic gap and loss when the master fails (cut, kill, term), under
    /// load, xvrrp beside keepalived.
    Failover(crate::bench_failover::FailoverArgs),
    /// Control-thread and worker CPU, late adverts and spurious transitions
    /// of N virtual routers at 10 ms between two appliances.
    Control(crate::bench_control::ControlArgs),
}

/// Runs `xvrrp bench ...`; `self_exe` is this binary, started again as the
/// appliance and as its client.
///
/// # Errors
/// Not root, a program missing, or any step failing; the lab is removed
/// either way.
pub fn run(args: &BenchArgs, self_exe: &Path) -> Result<()> {
    match &args.command {
        BenchCommand::Forward(a) => forward::run(a, self_exe),
        BenchCommand::Failover(a) => crate::bench_failover::run(a, self_exe),
        BenchCommand::Control(a) => crate::bench_control::run(a, self_exe),
    }
}

/// One progress line on stderr.
fn progress(msg: &str) {
    eprintln!("bench: {msg}");
}

/// A lab prefix unique to this run: `b`, a letter for the benchmark and
/// six base-36 digits of the PID (8 characters, `[a-z0-9]`).
fn unique_prefix(tag: char) -> String {
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
fn interrupt_flag() -> Result<Arc<AtomicBool>> {
    let stop = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(sig, Arc::clone(&stop)).context("install signal handler")?;
    }
    Ok(stop)
}

/// Sleeps for `d` in short steps; fails at once when `stop` is raised.
fn sleep_or_stop(d: Duration, stop: &AtomicBool) -> Result<()> {
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
/// `None` for no samples.
fn quantile(sorted: &[f64], p: f64) -> Option<f64> {
    if sorted.is_empty() {
        return None;
    }
    let n = sorted.len();
    // Nearest rank: ceil(p * n), 1-based; a report's arithmetic on small
    // counts, so the float round trip is exact.
    #[allow(
        clippy::cast_precision_loss,
        clippy::cast_possible_truncation,
        clippy::cast_sign_loss
    )]
    let rank = (p.clamp(0.0, 1.0) * n as f64).ceil() as usize;
    sorted.get(rank.clamp(1, n) - 1).copied()
}

/// `a / b` for reports, `None` when `b` is zero.
#[allow(clippy::cast_precision_loss)]
fn ratio(a: f64, b: f64) -> Option<f64> {
    (b > 0.0).then(|| a / b)
}

/// A count as f64 for rates (exact below 2^53).
#[allow(clippy::cast_precision_loss)]
fn f(v: u64) -> f64 {
    v as f64
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
        assert_eq!(quantile(&[], 0.5), None);
    }
}
