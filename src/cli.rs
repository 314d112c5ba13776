//! Command-line interface.

use std::{path::PathBuf, process::ExitCode, time::Duration};

use anyhow::Context;
use clap::{Parser, Subcommand};

use xvrrp_lab::{bench, demo, flow, lab};

use xvrrp_control::CaptureFilter;

use crate::{capture, client, daemon, docs, events, handover, watch};

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
        /// Print the resolved plan as JSON (durations in microseconds).
        #[arg(long)]
        json: bool,
    },
    /// Show every virtual router: state, priority, master, transitions.
    Status {
        /// Print the daemon's JSON reply.
        #[arg(long)]
        json: bool,
    },
    /// Show fast-path counters per port and worker, drops by reason.
    Stats {
        /// Print the daemon's JSON reply (with --watch: one line of rates
        /// per interval).
        #[arg(long)]
        json: bool,
        /// Live view until Ctrl-C: packets per second per port and worker
        /// (received, sent, forwarded, punted, dropped) and the drop reasons
        /// that counted something.
        #[arg(long)]
        watch: bool,
        /// Seconds between two views of --watch (default 1).
        #[arg(long, value_name = "SECS", requires = "watch", value_parser = parse_interval)]
        interval: Option<Duration>,
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
        /// Print the daemon's JSON reply.
        #[arg(long)]
        json: bool,
    },
    /// Stream the daemon's events (transitions, priority changes, drains,
    /// reloads), one line each, until interrupted.
    #[command(visible_alias = "subscribe")]
    Events {
        /// Print each event as the daemon's JSON line.
        #[arg(long)]
        json: bool,
    },
    /// Re-read the daemon's configuration file (as SIGHUP does); print what changed.
    Reload {
        /// Print the daemon's JSON reply.
        #[arg(long)]
        json: bool,
    },
    /// Copy the frames the fast path sees on a port (both directions, and
    /// the dropped ones with their reason) to a pcapng file, or print one
    /// line per frame.
    Capture {
        /// Port (interface) name, as in the configuration.
        port: String,
        /// Write a pcapng file (readable by tshark and Wireshark) instead
        /// of printing a line per frame.
        #[arg(short = 'w', long = "write", value_name = "FILE")]
        write: Option<PathBuf>,
        /// Stop after N frames (default: until Ctrl-C).
        #[arg(short = 'c', long = "count", value_name = "N",
              value_parser = clap::value_parser!(u64).range(1..))]
        count: Option<u64>,
        /// Only these frames.
        #[arg(long, value_parser = capture_filter, default_value = "all")]
        filter: CaptureFilter,
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
    /// Print a shell completion script to stdout.
    #[command(after_help = "Installed by the package; by hand, for example:\n  \
        xvrrp completions bash > /usr/share/bash-completion/completions/xvrrp")]
    Completions {
        /// The shell.
        shell: clap_complete::Shell,
    },
    /// Write the man pages (xvrrp.8 and one per command) generated from
    /// this help text.
    #[command(hide = true)]
    Manpage {
        /// Directory to write them to.
        #[arg(long, default_value = ".")]
        dir: PathBuf,
    },
    /// Traffic tools used by the demo and the tests.
    #[command(hide = true)]
    Flow(flow::FlowArgs),
}

/// `--interval SECS`: a positive number of seconds, at most a day.
fn parse_interval(text: &str) -> Result<Duration, String> {
    let secs: f64 = text
        .parse()
        .map_err(|_| format!("{text:?} is not a number of seconds"))?;
    if !(0.1..=86_400.0).contains(&secs) {
        return Err(format!("{text} s is outside 0.1..=86400"));
    }
    Ok(Duration::from_secs_f64(secs))
}

/// The command-line model, for completions and man pages.
pub fn command() -> clap::Command {
    <Cli as clap::CommandFactory>::command()
}

impl Command {
    /// Whether this command only prints what it reads (a client command,
    /// `check`, completions): one that may simply end when its reader goes
    /// away. The daemon, the lab, the demo and the benchmarks have
    /// processes and namespaces to clean up first.
    pub fn prints_for_a_pipe(&self) -> bool {
        !matches!(
            self,
            Command::Run { .. }
                | Command::Lab(_)
                | Command::Demo(_)
                | Command::Bench(_)
                | Command::Flow(_)
        )
    }
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
        Command::Check { config, json } => check(&config, json),
        Command::Status { json } => client::status(&socket, json).map(|()| ExitCode::SUCCESS),
        Command::Stats {
            json, watch: false, ..
        } => client::stats(&socket, json).map(|()| ExitCode::SUCCESS),
        Command::Stats {
            json,
            watch: true,
            interval,
        } => watch::run(&socket, json, interval.unwrap_or(Duration::from_secs(1)))
            .map(|()| ExitCode::SUCCESS),
        Command::Routes { json } => client::routes(&socket, json).map(|()| ExitCode::SUCCESS),
        Command::Neighbors { json } => client::neighbors(&socket, json).map(|()| ExitCode::SUCCESS),
        Command::Priority {
            name,
            priority,
            json,
        } => client::priority(&socket, &name, priority, json).map(|()| ExitCode::SUCCESS),
        Command::Events { json } => events::run(&socket, json).map(|()| ExitCode::SUCCESS),
        Command::Reload { json } => client::reload(&socket, json).map(|()| ExitCode::SUCCESS),
        Command::Capture {
            port,
            write,
            count,
            filter,
        } => {
            let opts = capture::Options {
                port: &port,
                write: write.as_deref(),
                count,
                filter,
            };
            capture::run(&socket, &opts).map(|()| ExitCode::SUCCESS)
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
        Command::Completions { shell } => {
            docs::completions(shell, &mut std::io::stdout()).map(|()| ExitCode::SUCCESS)
        }
        Command::Manpage { dir } => docs::manpages(&dir).map(|()| ExitCode::SUCCESS),
        Command::Flow(args) => flow::run(&args).map(|()| ExitCode::SUCCESS),
    }
}

/// Parses `--filter`.
fn capture_filter(s: &str) -> Result<CaptureFilter, String> {
    CaptureFilter::from_name(s).ok_or_else(|| {
        let names: Vec<&str> = CaptureFilter::ALL.iter().map(|f| f.name()).collect();
        format!("expected one of {}", names.join(", "))
    })
}

fn check(path: &std::path::Path, as_json: bool) -> anyhow::Result<ExitCode> {
    match xvrrp_control::config::load(path) {
        Ok(cfg) => {
            // Ports present here show which queues each worker will serve.
            let rx_queues = &xvrrp_dataplane::iface::rx_queues;
            if as_json {
                let plan = cfg.plan_json_with(rx_queues);
                println!(
                    "{}",
                    serde_json::to_string_pretty(&plan).context("encoding JSON")?
                );
            } else {
                print!("{}", cfg.plan_with(rx_queues));
            }
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => {
            eprintln!("{e}");
            Ok(ExitCode::FAILURE)
        }
    }
}
