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

use anyhow::Result;

// The helpers every benchmark shares, for this module's benchmarks.
use crate::bench_common::{f, interrupt_flag, progress, quantile, sleep_or_stop, unique_prefix};

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

/// `a / b` for reports, `None` when `b` is zero.
#[allow(clippy::cast_precision_loss)]
fn ratio(a: f64, b: f64) -> Option<f64> {
    (b > 0.0).then(|| a / b)
}
