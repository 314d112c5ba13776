//! Command-line interface.

use std::{path::PathBuf, process::ExitCode};

use anyhow::Context;
use clap::{Parser, Subcommand};

use xvrrp_lab::{bench, demo, flow, lab};

use crate::{client, daemon, handover};

/// Default control socket path.
pub const DEFAULT_SOCKET: &str = "/run/xvrrp/xvrrp.sock";

/// xvrrp: VRRP gateway appliance with an AF_XDP fast path.
#[derive(Parser, Debug)]
#[command(name = "xvrrp", version, about, propagate_version = true)]
pub struct Cli {
    /// Control socket of the daemon (client commands).
    #[arg(short = 's', long = "socket", global = true, env = "XVRRP_SOCKET")]
    pub socket: Option<PathBuf>,
    /// More log output (-v debug, -vv trace); RUST_LOG also works.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Run the appliance in the foreground.
    Run {
        /// Configuration file.
        #[arg(short, long)]
        config: PathBuf,
    },
    /// Validate a configuration and print the resolved plan.
    Check {
        /// Configuration file.
        #[arg(short, long)]
        config: PathBuf,
    },
    /// Show every virtual router: state, priority, master, transitions.
    Status {
        /// Print the daemon's JSON reply.
        #[arg(long)]
        json: bool,
    },
    /// Show fast-path counters per port and worker, drops by reason.
    Stats {
        /// Print the daemon's JSON reply.
        #[arg(long)]
        json: bool,
        /// Refresh every second with packet rates.
        #[arg(long)]
        watch: bool,
    },
    /// Show the fast path's forwarding table: connected, static and kernel routes.
    Routes {
        /// Print the daemon's JSON reply.
        #[arg(long)]
        json: bool,
    },
    /// Show the fast path's neighbour tables (one per worker).
    Neighbors {
        /// Print the daemon's JSON reply.
        #[arg(long)]
        json: bool,
    },
    /// Change an instance's priority at run time.
    Priority {
        /// Instance name.
        name: String,
        /// New priority, 1..=254.
        #[arg(value_parser = clap::value_parser!(u8).range(1..=254))]
        priority: u8,
    },
    /// Planned handover: advertise priority 0, keep forwarding until a peer has taken over.
    Drain(handover::DrainArgs),
    /// Undo drain: rejoin the election at the configured priority.
    Resume(handover::ResumeArgs),
    /// Network-namespace lab: a gateway pair between a client and a server.
    Lab(lab::LabArgs),
    /// Lab + two appliances + traffic + a failover, narrated.
    Demo(demo::DemoArgs),
    /// End-to-end benchmarks, each in a lab of its own, against a baseline.
    Bench(bench::BenchArgs),
    /// Traffic tools used by the demo and the tests.
    #[command(hide = true)]
    Flow(flow::FlowArgs),
}

/// Sets up logging to stderr; `-v` or RUST_LOG raise the level.
pub fn init_logging(verbose: u8) {
    let default = match verbose {
        0 => "info",
        1 => "debug",
        _ => "trace",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_target(false)
        .init();
}

/// Runs the parsed command.
pub fn dispatch(cli: Cli) -> anyhow::Result<ExitCode> {
    let socket = cli
        .socket
        .clone()
        .unwrap_or_else(|| PathBuf::from(DEFAULT_SOCKET));
    match cli.command {
        Command::Run { config } => daemon::run(&config).map(|()| ExitCode::SUCCESS),
        Command::Check { config } => Ok(check(&config)),
        Command::Status { json } => client::status(&socket, json).map(|()| ExitCode::SUCCESS),
        Command::Stats { json, watch } => {
            client::stats(&socket, json, watch).map(|()| ExitCode::SUCCESS)
        }
        Command::Routes { json } => client::routes(&socket, json).map(|()| ExitCode::SUCCESS),
        Command::Neighbors { json } => client::neighbors(&socket, json).map(|()| ExitCode::SUCCESS),
        Command::Priority { name, priority } => {
            client::priority(&socket, &name, priority).map(|()| ExitCode::SUCCESS)
        }
        Command::Drain(args) => handover::drain(&socket, &args).map(|()| ExitCode::SUCCESS),
        Command::Resume(args) => handover::resume(&socket, &args).map(|()| ExitCode::SUCCESS),
        Command::Lab(args) => lab::run(&args).map(|()| ExitCode::SUCCESS),
        Command::Demo(args) => {
            let exe = std::env::current_exe().context("locating the xvrrp binary")?;
            demo::run(&args, &exe).map(|()| ExitCode::SUCCESS)
        }
        Command::Bench(args) => {
            let exe = std::env::current_exe().context("locating the xvrrp binary")?;
            bench::run(&args, &exe).map(|()| ExitCode::SUCCESS)
        }
        Command::Flow(args) => flow::run(&args).map(|()| ExitCode::SUCCESS),
    }
}

fn check(path: &std::path::Path) -> ExitCode {
    match xvrrp_control::config::load(path) {
        Ok(cfg) => {
            // Ports present here show which queues each worker will serve.
            print!("{}", cfg.plan_with(&xvrrp_dataplane::iface::rx_queues));
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("{e}");
            ExitCode::FAILURE
        }
    }
}
