//! `xvrrp demo`: the lab, two appliances, traffic through the virtual
//! gateway and a failover and failback, narrated step by step.
//!
//! Everything the demo starts is held by a guard (lab, appliances, scratch
//! directory), so it is all stopped and removed on every exit path: success,
//! error, or Ctrl-C (which turns into an error at the next wait).

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

use crate::flow::{self, Flow, FlowReport};
use crate::lab::{self, Appliance, ApplianceConfig, Lab, WorkDir};
use crate::netns;

/// `xvrrp demo`: lab, two appliances, traffic and a failover.
#[derive(clap::Args, Debug)]
pub struct DemoArgs {
    /// Lab prefix ([a-z0-9]{1,8}); the lab is removed at the end.
    #[arg(long, default_value = "xv")]
    prefix: String,
    /// Rate of the UDP flow through the gateway, datagrams per second.
    #[arg(long, default_value_t = flow::DEFAULT_RATE)]
    rate: u32,
    /// Milliseconds of steady traffic before and after each failover.
    #[arg(long, default_value_t = 1000)]
    settle_ms: u64,
}

/// The LAN virtual address, the client's gateway.
const LAN_VIP: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 1);
/// The virtual MAC of VRID 1 (IPv4): 00-00-5E-00-01-{VRID}.
const LAN_VMAC: &str = "00:00:5e:00:01:01";
/// The server, on the far side of the gateway.
const SERVER: Ipv4Addr = Ipv4Addr::new(203, 0, 113, 100);
/// How long an appliance may take to start and win or lose its election.
const ELECTION_TIMEOUT: Duration = Duration::from_secs(15);
/// How long a takeover may take before the demo calls it a failure.
const TAKEOVER_TIMEOUT: Duration = Duration::from_secs(5);

/// Runs `xvrrp demo`; `self_exe` is this binary, started again as the two
/// appliances and as their status client.
pub fn run(args: &DemoArgs, self_exe: &Path) -> Result<()> {
    lab::validate_prefix(&args.prefix)?;
    if !netns::is_root() {
        bail!("xvrrp demo must run as root: it creates network namespaces");
    }
    // Everything the demo runs, checked before it builds anything.
    netns::require(&["ip", "ethtool", "ping"])?;
    let interrupted = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(sig, Arc::clone(&interrupted))
            .context("install signal handler")?;
    }
    let mut work = WorkDir::create("demo")?;
    let result = Demo {
        args,
        self_exe,
        work: &work,
        stop: &interrupted,
    }
    .run();
    if result.is_err() {
        work.keep();
        eprintln!(
            "\nThe appliances' configs and logs are kept in {}",
            work.path().display()
        );
    }
    result
}

struct Demo<'a> {
    args: &'a DemoArgs,
    self_exe: &'a Path,
    work: &'a WorkDir,
    stop: &'a AtomicBool,
}

fn heading(text: &str) {
    println!("\n== {text}");
}

fn say(text: &str) {
    println!("   {text}");
}

impl Demo<'_> {
    fn run(&self) -> Result<()> {
        let prefix = &self.args.prefix;

        heading("1. Building the lab");
        say(&format!(
            "Network namespaces {prefix}-client (192.0.2.100) and {prefix}-server (203.0.113.100),"
        ));
        say(&format!(
            "joined by two gateways {prefix}-gw-a and {prefix}-gw-b through the bridges of {prefix}-sw."
        ));
        say("The client's default route is the virtual address 192.0.2.1; no kernel owns it,");
        say("and the gateways' kernels do not forward: forwarding is xvrrp's job.");
        // Declared first so it is dropped last, after the appliances.
        let lab = Lab::up(prefix)?;
        say("Lab is up.");

        heading("2. Writing the two appliances' configurations");
        let mut a = self.appliance(&lab, "a", "gw-a", 200)?;
        let mut b = self.appliance(&lab, "b", "gw-b", 100)?;
        say("A (priority 200) and B (priority 100) each run two virtual routers, kept together");
        say("by a sync group: lan-gw (VRID 1, 192.0.2.1 on lan0) and wan-gw (VRID 2,");
        say("203.0.113.1 on wan0), advertising every 10 ms, with preemption.");
        say(&format!(
            "Configs: {} and {}",
            a.config_path().display(),
            b.config_path().display()
        ));

        heading("3. Starting both appliances");
        a.start()?;
        b.start()?;
        say(&format!(
            "A runs as PID {} in {}, B as PID {} in {}.",
            a.pid().unwrap_or(0),
            lab.ns("gw-a"),
            b.pid().unwrap_or(0),
            lab.ns("gw-b")
        ));

        heading("4. Waiting for the election");
        let t0 = Instant::now();
        self.wait_roles(&mut a, &mut b, ELECTION_TIMEOUT)
            .map_err(|e| with_logs(e, &a, &b))?;
        say(&format!(
            "After {} ms: A is master of both virtual routers, B is backup.",
            t0.elapsed().as_millis()
        ));

        heading("5. The client's view of its gateway");
        flow::ping(
            &lab.ns("client"),
            IpAddr::V4(SERVER),
            3,
            Duration::from_secs(5),
        )
        .map_err(|e| with_logs(e, &a, &b))?;
        say("ping 203.0.113.100 from the client through the virtual gateway: 3/3 answered.");
        self.check_vmac(&lab)?;

        heading("6. Failover: SIGKILL the master under traffic");
        let flow_run = self.start_flow(&lab)?;
        self.settle(&flow_run)?;
        let killed = Instant::now();
        a.kill()?;
        say("A killed with SIGKILL: no goodbye, its XDP program detached with the process.");
        self.wait_until("B to become master", TAKEOVER_TIMEOUT, || {
            b.all_in("master")
        })
        .map_err(|e| with_logs(e, &a, &b))?;
        say(&format!(
            "B reports master of both virtual routers {} ms after the kill.",
            killed.elapsed().as_millis()
        ));
        self.settle(&flow_run)?;
        let report = flow_run.stop()?;
        self.report(&report)?;
        self.check_vmac(&lab)?;

        heading("7. Failback: restart A, which preempts B");
        let flow_run = self.start_flow(&lab)?;
        self.settle(&flow_run)?;
        a.start()?;
        say(&format!("A restarted as PID {}.", a.pid().unwrap_or(0)));
        self.wait_roles(&mut a, &mut b, ELECTION_TIMEOUT)
            .map_err(|e| with_logs(e, &a, &b))?;
        say("A is master again and B is backup.");
        self.settle(&flow_run)?;
        let report = flow_run.stop()?;
        self.report(&report)?;

        heading("8. Cleaning up");
        a.stop()?;
        b.stop()?;
        say("Both appliances stopped.");
        lab.down()?;
        say(&format!("Lab {prefix} removed."));
        println!("\nDemo complete.");
        Ok(())
    }

    fn appliance(&self, lab: &Lab, name: &str, role: &str, priority: u8) -> Result<Appliance> {
        let socket = format!("/run/xvrrp/{}-{name}.sock", lab.prefix());
        let config = ApplianceConfig::gateway(&socket, priority);
        Appliance::new(
            name,
            self.self_exe,
            &lab.ns(role),
            &config,
            self.work.path(),
        )
    }

    fn wait_until(
        &self,
        what: &str,
        timeout: Duration,
        cond: impl FnMut() -> Result<bool>,
    ) -> Result<()> {
        lab::wait_until(what, timeout, self.stop, cond)
    }

    /// Waits for A master and B backup of every virtual router.
    fn wait_roles(&self, a: &mut Appliance, b: &mut Appliance, timeout: Duration) -> Result<()> {
        self.wait_until("A master and B backup", timeout, || {
            Ok(a.all_in("master")? && b.all_in("backup")?)
        })
    }

    fn check_vmac(&self, lab: &Lab) -> Result<()> {
        let client = lab.ns("client");
        let mac = flow::neighbour_mac(&client, IpAddr::V4(LAN_VIP))?;
        match mac.as_deref() {
            Some(LAN_VMAC) => {
                say(&format!(
                    "The client's neighbour entry for 192.0.2.1 is {LAN_VMAC}, the virtual MAC of VRID 1."
                ));
                Ok(())
            }
            Some(other) => {
                bail!("the client resolved 192.0.2.1 to {other}, not the virtual MAC {LAN_VMAC}")
            }
            None => bail!("the client has no neighbour entry for 192.0.2.1"),
        }
    }

    fn start_flow(&self, lab: &Lab) -> Result<Flow> {
        let dst = SocketAddr::from((SERVER, flow::DEFAULT_PORT));
        let f = Flow::start(&lab.ns("client"), &lab.ns("server"), dst, self.args.rate)?;
        say(&format!(
            "UDP flow client -> 203.0.113.100:{} at {} datagrams/s, each numbered.",
            flow::DEFAULT_PORT,
            self.args.rate
        ));
        Ok(f)
    }

    /// Lets traffic run for the settle time, then checks it is flowing.
    fn settle(&self, f: &Flow) -> Result<()> {
        let before = f.received();
        let until = Instant::now() + Duration::from_millis(self.args.settle_ms);
        while Instant::now() < until {
            if self.stop.load(Ordering::Relaxed) {
                bail!("interrupted");
            }
            thread::sleep(Duration::from_millis(20));
        }
        let now = f.received();
        if now <= before {
            bail!(
                "no traffic reached the server in the last {} ms",
                self.args.settle_ms
            );
        }
        say(&format!(
            "Traffic flowing: {now} datagrams received so far."
        ));
        Ok(())
    }

    fn report(&self, r: &FlowReport) -> Result<()> {
        say(&format!(
            "Result: {} sent, {} received, {} lost; the largest gap in arrivals was {:.1} ms.",
            r.sent, r.received, r.lost, r.max_gap_ms
        ));
        if r.max_send_gap_ms > r.max_gap_ms / 2.0 && r.max_send_gap_ms > 20.0 {
            say(&format!(
                "(The sender itself stalled for {:.1} ms: the machine is busy.)",
                r.max_send_gap_ms
            ));
        }
        if r.received == 0 {
            bail!("no datagram of the flow arrived");
        }
        Ok(())
    }
}

/// Prints both appliances' log tails to stderr and passes the error on.
fn with_logs(e: anyhow::Error, a: &Appliance, b: &Appliance) -> anyhow::Error {
    for app in [a, b] {
        eprintln!(
            "--- last lines of appliance {}'s log ({}):\n{}",
            app.name(),
            app.log_path().display(),
            app.log_tail(10)
        );
    }
    e
}
