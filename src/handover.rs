//! `xvrrp drain` and `xvrrp resume`: planned handover from the command line.

use std::{
    path::Path,
    time::{Duration, Instant},
};

use anyhow::{bail, Context};
use clap::Args;
use serde_json::{json, Value};

use crate::client::call;

/// How often `drain --wait` looks at the status.
const WAIT_POLL: Duration = Duration::from_millis(20);

/// Which instances: one by name (with its sync group), or every one.
#[derive(Args, Debug)]
#[group(required = true, multiple = false)]
pub struct Target {
    /// Instance name; the other members of its sync group follow.
    name: Option<String>,
    /// Every instance.
    #[arg(long)]
    all: bool,
}

impl Target {
    fn request(&self, cmd: &str) -> Value {
        match &self.name {
            Some(name) => json!({"cmd": cmd, "name": name}),
            None => json!({"cmd": cmd, "all": true}),
        }
    }
}

/// `xvrrp drain`.
#[derive(Args, Debug)]
pub struct DrainArgs {
    #[command(flatten)]
    target: Target,
    /// Print the daemon's JSON reply (with --wait: the instances once handed over).
    #[arg(long)]
    json: bool,
    /// Wait until every drained master has heard its successor advertise
    /// as master, and print who took over.
    #[arg(long)]
    wait: bool,
    /// How long --wait waits at most, in seconds.
    #[arg(long, default_value_t = 10, requires = "wait", value_parser = clap::value_parser!(u64).range(1..=3600))]
    timeout: u64,
}

/// `xvrrp resume`.
#[derive(Args, Debug)]
pub struct ResumeArgs {
    #[command(flatten)]
    target: Target,
    /// Print the daemon's JSON reply.
    #[arg(long)]
    json: bool,
}

fn instances(reply: &Value) -> impl Iterator<Item = &Value> {
    reply
        .get("instances")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
}

fn field<'a>(inst: &'a Value, key: &str) -> &'a str {
    inst.get(key).and_then(Value::as_str).unwrap_or("-")
}

fn print_json(v: &Value) -> anyhow::Result<()> {
    println!(
        "{}",
        serde_json::to_string_pretty(v).context("encoding JSON")?
    );
    Ok(())
}

/// `xvrrp drain NAME|--all [--wait]`.
pub fn drain(socket: &Path, args: &DrainArgs) -> anyhow::Result<()> {
    let reply = call(socket, &args.target.request("drain"))?;
    if !args.wait {
        if args.json {
            return print_json(&reply);
        }
        for inst in instances(&reply) {
            let name = field(inst, "name");
            match field(inst, "drain") {
                "draining" => println!(
                    "{name}: draining: priority 0 advertised, forwarding until a peer takes over"
                ),
                _ => println!("{name}: drained ({})", field(inst, "state")),
            }
        }
        return Ok(());
    }
    let names: Vec<String> = instances(&reply)
        .map(|i| field(i, "name").to_owned())
        .collect();
    let deadline = Instant::now() + Duration::from_secs(args.timeout);
    loop {
        let status = call(socket, &json!({"cmd": "status"}))?;
        let ours: Vec<&Value> = instances(&status)
            .filter(|i| names.iter().any(|n| n == field(i, "name")))
            .collect();
        let waiting: Vec<&str> = ours
            .iter()
            .filter(|i| field(i, "drain") != "drained")
            .map(|i| field(i, "name"))
            .collect();
        if waiting.is_empty() {
            if args.json {
                return print_json(&json!({"ok": true, "instances": ours}));
            }
            for inst in ours {
                println!(
                    "{}: drained; master now {}",
                    field(inst, "name"),
                    field(inst, "master")
                );
            }
            return Ok(());
        }
        if Instant::now() >= deadline {
            bail!(
                "still draining after {} s (no peer has taken over; still forwarding and advertising priority 0): {}",
                args.timeout,
                waiting.join(", ")
            );
        }
        std::thread::sleep(WAIT_POLL);
    }
}

/// `xvrrp resume NAME|--all`.
pub fn resume(socket: &Path, args: &ResumeArgs) -> anyhow::Result<()> {
    let reply = call(socket, &args.target.request("resume"))?;
    if args.json {
        return print_json(&reply);
    }
    for inst in instances(&reply) {
        println!(
            "{}: resumed ({}): back in the election at its priority",
            field(inst, "name"),
            field(inst, "state")
        );
    }
    Ok(())
}
