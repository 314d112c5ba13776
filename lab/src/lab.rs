//! The network-namespace lab: a gateway pair between a client LAN and a
//! server WAN, in documentation address ranges only, used by `xvrrp lab`,
//! `xvrrp demo`, the integration tests and the benchmarks.
//!
//! ```text
//!   {P}-client eth0 ── c-lan ┐                      ┌ s-wan ── eth0 {P}-server
//!                            │ {P}-sw: bridge lan   │ bridge wan
//!   {P}-gw-a  lan0 ── a-lan ─┤                      ├─ a-wan ── wan0 {P}-gw-a
//!   {P}-gw-b  lan0 ── b-lan ─┘                      └─ b-wan ── wan0 {P}-gw-b
//! ```
//!
//! Every veth is created inside its namespaces (`ip -n NS link add ... peer
//! ... netns {P}-sw`), so labs with different prefixes never collide and
//! nothing is left in the root namespace. Deleting the namespaces deletes the
//! veths and bridges with them.

use std::collections::BTreeMap;
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

use crate::netns;

/// `xvrrp lab`: build, remove or list a lab.
#[derive(clap::Args, Debug)]
pub struct LabArgs {
    /// What to do with the lab.
    #[command(subcommand)]
    action: LabAction,
    /// Name prefix of the lab's namespaces ([a-z0-9]{1,8}); a second prefix
    /// builds a second lab beside the first.
    #[arg(long, default_value = "xv", global = true)]
    prefix: String,
}

/// The `xvrrp lab` actions.
#[derive(clap::Subcommand, Debug)]
enum LabAction {
    /// Build the lab (removing any leftover with the same prefix first).
    Up {
        /// Keep the kernel's default offloads on every veth (partial
        /// checksums reach the gateways) instead of turning them off.
        #[arg(long)]
        offloads: bool,
        /// Receive and transmit queues of the gateways' veths (1 to 16):
        /// with more than one, their ports spread flows over their queues,
        /// served by as many fast-path workers.
        #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=i64::from(MAX_QUEUES)))]
        queues: u32,
    },
    /// Remove everything the lab made; succeeds if nothing is there.
    Down,
    /// List the lab's namespaces, interfaces, addresses and processes.
    Status {
        /// Print the same as a JSON object.
        #[arg(long)]
        json: bool,
    },
}

/// Runs `xvrrp lab ...`.
pub fn run(args: &LabArgs) -> Result<()> {
    validate_prefix(&args.prefix)?;
    match args.action {
        LabAction::Up { queues, offloads } => {
            let lab = Lab::up_with(
                &args.prefix,
                &LabOptions {
                    queues,
                    offloads,
                    ..LabOptions::default()
                },
            )?;
            // The CLI lab outlives this process: keep it.
            lab.keep();
            println!(
                "lab {} is up{}: namespaces {}",
                args.prefix,
                if queues > 1 {
                    format!(" with {queues} queues per gateway port")
                } else {
                    String::new()
                },
                ROLES
                    .iter()
                    .map(|r| format!("{}-{r}", args.prefix))
                    .collect::<Vec<_>>()
                    .join(", ")
            );
            Ok(())
        }
        LabAction::Down => {
            let removed = teardown(&args.prefix)?;
            if removed.is_empty() {
                println!("lab {}: nothing to remove", args.prefix);
            } else {
                println!("lab {}: removed {}", args.prefix, removed.join(", "));
            }
            Ok(())
        }
        LabAction::Status { json: false } => {
            print!("{}", status(&args.prefix)?);
            Ok(())
        }
        LabAction::Status { json: true } => {
            let v = status_json(&args.prefix)?;
            println!(
                "{}",
                serde_json::to_string_pretty(&v).context("encoding JSON")?
            );
            Ok(())
        }
    }
}

/// The lab's namespace roles, in creation order.
const ROLES: [&str; 5] = ["sw", "client", "gw-a", "gw-b", "server"];

/// Most queues a lab veth can have (the machine's cores are fewer).
pub const MAX_QUEUES: u32 = 16;

/// How to build a lab.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LabOptions {
    /// Receive and transmit queues of each gateway veth, both ends (1 to
    /// [`MAX_QUEUES`]; the hosts' veths stay single-queue). A gateway port
    /// receives a frame on the queue its switch-side peer sent it from,
    /// which the switch picks by flow hash: flows spread over the queues,
    /// and over the fast-path workers serving them.
    pub queues: u32,
    /// Keep the kernel's default offloads (tx/rx checksum, TSO, GSO) on
    /// every veth end instead of turning them off: senders then hand over
    /// frames with partial checksums (CHECKSUM_PARTIAL), as in a container
    /// setup nobody tuned, and the fast path must complete them.
    pub offloads: bool,
    /// Turn off the host's bridge netfilter hooks (`bridge-nf-call-*`) in
    /// the switch's namespace. With `br_netfilter` loaded (docker loads
    /// it), every bridge of every new namespace calls the iptables hooks
    /// for each frame, which on veth the sender pays for: a third of a
    /// control thread sending 51 000 adverts a second (`bench control`).
    /// Off only where asked: `bench forward`'s trafgen then fails to flush
    /// its ring through the kernel-forwarding gateway (EAGAIN), not
    /// understood yet.
    pub no_bridge_netfilter: bool,
}

impl Default for LabOptions {
    fn default() -> Self {
        LabOptions {
            queues: 1,
            offloads: false,
            no_bridge_netfilter: false,
        }
    }
}

/// Checks that a lab prefix keeps namespace names short and valid.
pub(crate) fn validate_prefix(prefix: &str) -> Result<()> {
    let ok = !prefix.is_empty()
        && prefix.len() <= 8
        && prefix
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit());
    if !ok {
        bail!("invalid lab prefix {prefix:?}: use 1 to 8 characters from [a-z0-9]");
    }
    Ok(())
}

/// A lab that exists while this value lives: dropping it tears the lab down
/// (unless [`Lab::keep`] was called), so cleanup runs on every exit path,
/// panics included.
#[derive(Debug)]
pub struct Lab {
    prefix: String,
    options: LabOptions,
    keep: bool,
}

impl Lab {
    /// Builds the lab for `prefix`, removing any leftover of a previous lab
    /// with the same prefix first; single-queue veths.
    ///
    /// # Errors
    /// An invalid prefix, `ip` or `ethtool` not installed, or any
    /// `ip`/`ethtool`/sysctl step failing (not root). What was built so far is
    /// removed before returning.
    pub fn up(prefix: &str) -> Result<Lab> {
        Lab::up_with(prefix, &LabOptions::default())
    }

    /// [`Lab::up`] with `options` (multi-queue veths).
    ///
    /// # Errors
    /// As [`Lab::up`], and a queue count out of range.
    pub fn up_with(prefix: &str, options: &LabOptions) -> Result<Lab> {
        validate_prefix(prefix)?;
        if !(1..=MAX_QUEUES).contains(&options.queues) {
            bail!("{} queues per veth: use 1 to {MAX_QUEUES}", options.queues);
        }
        // Before anything exists: a missing ethtool would otherwise fail
        // at the first veth, after the namespaces were made.
        netns::require(&["ip", "ethtool"])?;
        teardown(prefix)?;
        // From here on, a failure drops `lab`, which removes the partial lab.
        let lab = Lab {
            prefix: prefix.to_owned(),
            options: *options,
            keep: false,
        };
        lab.build()
            .with_context(|| format!("building lab {prefix}"))?;
        Ok(lab)
    }

    /// The lab's prefix.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// Receive and transmit queues of each gateway veth.
    pub fn queues(&self) -> u32 {
        self.options.queues
    }

    /// Namespace name of `role` (`sw`, `client`, `gw-a`, `gw-b`, `server`).
    pub fn ns(&self, role: &str) -> String {
        format!("{}-{role}", self.prefix)
    }

    /// Tears the lab down now, reporting errors (drop does it silently).
    pub(crate) fn down(mut self) -> Result<()> {
        self.keep = true;
        teardown(&self.prefix).map(|_| ())
    }

    /// Leaves the lab in place when this value is dropped.
    pub fn keep(mut self) {
        self.keep = true;
    }

    fn build(&self) -> Result<()> {
        for role in ROLES {
            let ns = self.ns(role);
            netns::ip(&["netns", "add", &ns])?;
            // Addresses must be usable at once: no duplicate address detection,
            // set before any interface exists so every interface inherits it.
            for scope in ["all", "default"] {
                netns::sysctl(&ns, &format!("net.ipv6.conf.{scope}.accept_dad"), "0")?;
                netns::sysctl(&ns, &format!("net.ipv6.conf.{scope}.dad_transmits"), "0")?;
            }
            if role == "sw" {
                // The switch has no addresses of its own: keep it quiet on the wire.
                for scope in ["all", "default"] {
                    netns::sysctl(&ns, &format!("net.ipv6.conf.{scope}.disable_ipv6"), "1")?;
                }
            } else {
                // Forwarding is xvrrp's job, never the gateways' kernels'.
                netns::sysctl(&ns, "net.ipv4.ip_forward", "0")?;
                netns::sysctl(&ns, "net.ipv6.conf.all.forwarding", "0")?;
            }
            netns::ip(&["-n", &ns, "link", "set", "lo", "up"])?;
        }

        let sw = self.ns("sw");
        for bridge in ["lan", "wan"] {
            // No multicast snooping: VRRP adverts and ND reach every port.
            // Ageing 30 s (in centiseconds): a moved virtual MAC is relearnt
            // from its first frame anyway.
            netns::ip(&[
                "-n",
                &sw,
                "link",
                "add",
                bridge,
                "type",
                "bridge",
                "mcast_snooping",
                "0",
                "ageing_time",
                "3000",
                "stp_state",
                "0",
            ])?;
            netns::ip(&["-n", &sw, "link", "set", bridge, "up"])?;
        }

        if self.options.no_bridge_netfilter && std::path::Path::new("/proc/sys/net/bridge").exists()
        {
            for table in ["arptables", "iptables", "ip6tables"] {
                netns::sysctl(&sw, &format!("net.bridge.bridge-nf-call-{table}"), "0")?;
            }
        }

        let links: [(&str, &str, &str, &str); 6] = [
            ("client", "eth0", "c-lan", "lan"),
            ("gw-a", "lan0", "a-lan", "lan"),
            ("gw-a", "wan0", "a-wan", "wan"),
            ("gw-b", "lan0", "b-lan", "lan"),
            ("gw-b", "wan0", "b-wan", "wan"),
            ("server", "eth0", "s-wan", "wan"),
        ];
        for (role, ifname, peer, bridge) in links {
            self.veth(role, ifname, peer, bridge)?;
        }

        let addrs: [(&str, &str, &str); 10] = [
            ("client", "eth0", "192.0.2.100/24"),
            ("client", "eth0", "2001:db8:1::100/64"),
            ("gw-a", "lan0", "192.0.2.2/24"),
            ("gw-a", "lan0", "2001:db8:1::2/64"),
            ("gw-a", "wan0", "203.0.113.2/24"),
            ("gw-a", "wan0", "2001:db8:2::2/64"),
            ("gw-b", "lan0", "192.0.2.3/24"),
            ("gw-b", "lan0", "2001:db8:1::3/64"),
            ("gw-b", "wan0", "203.0.113.3/24"),
            ("gw-b", "wan0", "2001:db8:2::3/64"),
        ];
        for (role, ifname, addr) in addrs {
            add_addr(&self.ns(role), ifname, addr)?;
        }
        let server = self.ns("server");
        add_addr(&server, "eth0", "203.0.113.100/24")?;
        add_addr(&server, "eth0", "2001:db8:2::100/64")?;

        let client = self.ns("client");
        netns::ip(&["-n", &client, "route", "add", "default", "via", "192.0.2.1"])?;
        netns::ip(&[
            "-n",
            &client,
            "-6",
            "route",
            "add",
            "default",
            "via",
            "2001:db8:1::1",
        ])?;
        netns::ip(&[
            "-n",
            &server,
            "route",
            "add",
            "192.0.2.0/24",
            "via",
            "203.0.113.1",
        ])?;
        netns::ip(&[
            "-n",
            &server,
            "-6",
            "route",
            "add",
            "2001:db8:1::/64",
            "via",
            "2001:db8:2::1",
        ])?;

        self.wait_links_up(Duration::from_secs(5))
    }

    /// Creates veth `ifname` in `role`'s namespace with its peer `peer` in
    /// the switch, enslaved to `bridge`, and up: a gateway's with the lab's
    /// number of queues at both ends, a host's single-queue.
    ///
    /// Hosts stay single-queue on purpose: a frame keeps the transmit queue
    /// its sender picked as the receive queue the bridge sees, and the
    /// bridge then sends it out of that queue minus one (`skb_tx_hash`
    /// takes a recorded receive queue over the flow hash), which folds
    /// every flow of a multi-queue host onto the gateway's queue 0. From a
    /// single-queue host nothing is recorded, so the bridge spreads flows
    /// over the gateway port's queues by their hash.
    fn veth(&self, role: &str, ifname: &str, peer: &str, bridge: &str) -> Result<()> {
        let ns = self.ns(role);
        let sw = self.ns("sw");
        let queues = if role.starts_with("gw-") {
            self.options.queues
        } else {
            1
        };
        let q = queues.to_string();
        netns::ip(&[
            "-n",
            &ns,
            "link",
            "add",
            ifname,
            "numtxqueues",
            &q,
            "numrxqueues",
            &q,
            "type",
            "veth",
            "peer",
            "name",
            peer,
            "numtxqueues",
            &q,
            "numrxqueues",
            &q,
            "netns",
            &sw,
        ])?;
        if queues > 1 {
            set_channels(&ns, ifname, queues)?;
            set_channels(&sw, peer, queues)?;
        }
        // Frames a gateway's XDP program takes never meet the kernel stack,
        // so by default they are made complete on the wire: no checksum left
        // to offload and no GSO/GRO super-frames, on every end. (A native
        // XDP program on a veth strips GSO from its peer by itself; partial
        // checksums it leaves, and the fast path completes them.)
        if !self.options.offloads {
            disable_offloads(&ns, ifname)?;
            disable_offloads(&sw, peer)?;
        }
        netns::ip(&["-n", &sw, "link", "set", peer, "master", bridge, "up"])?;
        netns::ip(&["-n", &ns, "link", "set", ifname, "up"])?;
        Ok(())
    }

    /// Waits until every lab interface reports its carrier up.
    pub(crate) fn wait_links_up(&self, timeout: Duration) -> Result<()> {
        let deadline = Instant::now() + timeout;
        for role in ROLES {
            let ns = self.ns(role);
            loop {
                let down = links_not_up(&ns)?;
                if down.is_empty() {
                    break;
                }
                if Instant::now() >= deadline {
                    bail!("links not up in {ns}: {}", down.join(", "));
                }
                thread::sleep(Duration::from_millis(20));
            }
        }
        Ok(())
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        if self.keep {
            return;
        }
        if let Err(e) = teardown(&self.prefix) {
            eprintln!("warning: removing lab {}: {e:#}", self.prefix);
        }
    }
}

fn add_addr(ns: &str, ifname: &str, addr: &str) -> Result<()> {
    let mut args = vec!["-n", ns, "addr", "add", addr, "dev", ifname];
    if addr.contains(':') {
        args.push("nodad");
    }
    netns::ip(&args).map(|_| ())
}

/// Makes `queues` receive and transmit channels of `ifname` active: a veth
/// made with that many queues has them all active on current kernels, but
/// an older kernel may start with one, so they are checked and set with
/// `ethtool -L` when short.
fn set_channels(ns: &str, ifname: &str, queues: u32) -> Result<()> {
    let current = |text: &str, key: &str| -> Option<u32> {
        let after = text.split("Current hardware settings:").nth(1)?;
        after
            .lines()
            .find_map(|l| l.trim().strip_prefix(key))
            .and_then(|v| v.trim().parse().ok())
    };
    let text = netns::exec(ns, "ethtool", &["-l", ifname])?;
    if current(&text, "RX:") == Some(queues) && current(&text, "TX:") == Some(queues) {
        return Ok(());
    }
    let q = queues.to_string();
    netns::exec(ns, "ethtool", &["-L", ifname, "rx", &q, "tx", &q])?;
    let text = netns::exec(ns, "ethtool", &["-l", ifname])?;
    if current(&text, "RX:") != Some(queues) || current(&text, "TX:") != Some(queues) {
        bail!("{ifname} in {ns}: cannot make {queues} queues active:\n{text}");
    }
    Ok(())
}

/// Turns off the offloads that would hand an XDP program partial checksums
/// or aggregated frames. Features a veth cannot change are left alone.
fn disable_offloads(ns: &str, ifname: &str) -> Result<()> {
    let out = netns::exec_output(
        ns,
        "ethtool",
        &[
            "-K", ifname, "tx", "off", "rx", "off", "tso", "off", "gso", "off", "gro", "off",
        ],
    )?;
    // ethtool exits non-zero when some feature is fixed; what matters is the
    // checksum offload, which veth lets us turn off.
    let features = netns::exec(ns, "ethtool", &["-k", ifname])?;
    let tx_on = features
        .lines()
        .any(|l| l.trim_start().starts_with("tx-checksumming: on"));
    if tx_on {
        bail!(
            "cannot turn off tx checksum offload on {ifname} in {ns}: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(())
}

/// Interfaces of `ns` (other than lo) whose operational state is not up.
fn links_not_up(ns: &str) -> Result<Vec<String>> {
    let out = netns::ip(&["-n", ns, "-j", "link", "show"])?;
    let links: serde_json::Value =
        serde_json::from_str(&out).with_context(|| format!("parse `ip -j link` of {ns}"))?;
    let mut down = Vec::new();
    for link in links.as_array().into_iter().flatten() {
        let name = link.get("ifname").and_then(|v| v.as_str()).unwrap_or("?");
        let state = link.get("operstate").and_then(|v| v.as_str()).unwrap_or("");
        if name != "lo" && state != "UP" {
            down.push(name.to_owned());
        }
    }
    Ok(down)
}

/// Removes the lab `prefix`: stops the processes still running in its
/// namespaces (an interrupted run's appliances), then deletes the
/// namespaces, which takes their veths and bridges with them. Returns the
/// namespaces removed; nothing to remove is not an error.
pub fn teardown(prefix: &str) -> Result<Vec<String>> {
    validate_prefix(prefix)?;
    let present: Vec<String> = ROLES
        .iter()
        .map(|r| format!("{prefix}-{r}"))
        .filter(|ns| netns::exists(ns))
        .collect();
    let mut pids = Vec::new();
    for ns in &present {
        pids.extend(netns::pids(ns)?);
    }
    if !pids.is_empty() {
        for &pid in &pids {
            netns::signal(pid, libc::SIGTERM)?;
        }
        let deadline = Instant::now() + Duration::from_secs(2);
        while Instant::now() < deadline && pids.iter().any(|&p| process_alive(p)) {
            thread::sleep(Duration::from_millis(20));
        }
        for &pid in &pids {
            netns::signal(pid, libc::SIGKILL)?;
        }
    }
    for ns in &present {
        netns::ip(&["netns", "del", ns])?;
    }
    Ok(present)
}

fn process_alive(pid: u32) -> bool {
    // A zombie still has a /proc entry but is gone as far as we care.
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => !stat
            .rsplit_once(") ")
            .is_some_and(|(_, rest)| rest.starts_with('Z')),
        Err(_) => false,
    }
}

/// A human-readable listing of what exists of lab `prefix`.
pub fn status(prefix: &str) -> Result<String> {
    validate_prefix(prefix)?;
    if !ROLES
        .iter()
        .any(|r| netns::exists(&format!("{prefix}-{r}")))
    {
        return Ok(format!("lab {prefix} is down\n"));
    }
    let mut text = String::new();
    for role in ROLES {
        let ns = format!("{prefix}-{role}");
        if !netns::exists(&ns) {
            text.push_str(&format!("{ns}: absent\n"));
            continue;
        }
        text.push_str(&format!("{ns}:\n"));
        let brief = netns::ip(&["-n", &ns, "-br", "addr", "show"])?;
        for line in brief.lines().filter(|l| !l.starts_with("lo ")) {
            text.push_str(&format!("  {line}\n"));
        }
        let pids = netns::pids(&ns)?;
        if !pids.is_empty() {
            let list: Vec<String> = pids.iter().map(u32::to_string).collect();
            text.push_str(&format!("  processes: {}\n", list.join(" ")));
        }
    }
    Ok(text)
}

/// What [`status`] shows, as JSON: `{"prefix", "up", "namespaces": [{"name",
/// "present", "interfaces": [{"name", "state", "addresses"}], "processes"}]}`.
pub fn status_json(prefix: &str) -> Result<serde_json::Value> {
    use serde_json::{json, Value};
    validate_prefix(prefix)?;
    let mut namespaces = Vec::new();
    for role in ROLES {
        let ns = format!("{prefix}-{role}");
        if !netns::exists(&ns) {
            namespaces.push(json!({"name": ns, "present": false}));
            continue;
        }
        let links: Value = serde_json::from_str(&netns::ip(&["-n", &ns, "-j", "addr", "show"])?)
            .with_context(|| format!("parsing `ip -j addr show` in {ns}"))?;
        let interfaces: Vec<Value> = links
            .as_array()
            .into_iter()
            .flatten()
            .filter(|l| l["ifname"] != "lo")
            .map(|l| {
                let addresses: Vec<String> = l["addr_info"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|a| Some(format!("{}/{}", a["local"].as_str()?, a["prefixlen"])))
                    .collect();
                json!({"name": l["ifname"], "state": l["operstate"], "addresses": addresses})
            })
            .collect();
        namespaces.push(json!({
            "name": ns,
            "present": true,
            "interfaces": interfaces,
            "processes": netns::pids(&ns)?,
        }));
    }
    let up = namespaces.iter().any(|n| n["present"] == true);
    Ok(json!({"prefix": prefix, "up": up, "namespaces": namespaces}))
}

/// One virtual router of an appliance in the lab.
#[derive(Clone, Debug)]
pub struct LabInstance {
    /// Instance name (`lan-gw`, `wan-gw`).
    pub name: String,
    /// Gateway interface it serves (`lan0`, `wan0`).
    pub port: String,
    /// Virtual router id.
    pub vrid: u8,
    /// Virtual addresses with prefix length.
    pub addresses: Vec<String>,
}

/// The configuration of one appliance (gw-a or gw-b) in the lab, rendered
/// as a configuration file (the format `xvrrp.example.toml` documents).
#[derive(Clone, Debug)]
pub struct ApplianceConfig {
    /// Control socket path.
    pub control_socket: String,
    /// Priority of every instance.
    pub priority: u8,
    /// Advertisement interval of every instance, with its unit ("10ms").
    pub advert_interval: String,
    /// Preempt a lower-priority master.
    pub preempt: bool,
    /// Cores of the polling workers.
    pub cores: Vec<usize>,
    /// Idle policy of the workers (`busy`, `adaptive`, `wait`).
    pub idle: String,
    /// Ports served by the fast path.
    pub ports: Vec<String>,
    /// Receive queues served, by port; a port not listed serves all.
    pub queues: BTreeMap<String, Vec<u32>>,
    /// Virtual routers.
    pub instances: Vec<LabInstance>,
    /// Put every instance in one `[[sync_group]]`.
    pub sync_group: bool,
    /// Mirror the kernel's routing table (`[routes] kernel = true`).
    pub kernel_routes: bool,
    /// `[global] metrics_listen` ("ADDR:PORT"), if any.
    pub metrics_listen: Option<String>,
    /// `[global] notify` (an absolute path), if any.
    pub notify: Option<String>,
}

impl ApplianceConfig {
    /// The lab's gateway: `lan-gw` (VRID 1, 192.0.2.1/24 on lan0) and
    /// `wan-gw` (VRID 2, 203.0.113.1/24 on wan0) in one sync group, 10 ms
    /// adverts, preempting, one adaptive worker on core 0.
    pub fn gateway(control_socket: &str, priority: u8) -> ApplianceConfig {
        ApplianceConfig {
            control_socket: control_socket.to_owned(),
            priority,
            advert_interval: "10ms".to_owned(),
            preempt: true,
            cores: vec![0],
            idle: "adaptive".to_owned(),
            ports: vec!["lan0".to_owned(), "wan0".to_owned()],
            queues: BTreeMap::new(),
            instances: vec![
                LabInstance {
                    name: "lan-gw".to_owned(),
                    port: "lan0".to_owned(),
                    vrid: 1,
                    addresses: vec!["192.0.2.1/24".to_owned()],
                },
                LabInstance {
                    name: "wan-gw".to_owned(),
                    port: "wan0".to_owned(),
                    vrid: 2,
                    addresses: vec!["203.0.113.1/24".to_owned()],
                },
            ],
            sync_group: true,
            kernel_routes: false,
            metrics_listen: None,
            notify: None,
        }
    }

    /// The configuration file's text.
    pub fn render(&self) -> String {
        let quoted = |items: &[String]| {
            items
                .iter()
                .map(|s| format!("{s:?}"))
                .collect::<Vec<_>>()
                .join(", ")
        };
        let cores: Vec<String> = self.cores.iter().map(usize::to_string).collect();
        let mut t = String::new();
        t.push_str("[global]\n");
        t.push_str(&format!("control_socket = {:?}\n", self.control_socket));
        if let Some(addr) = &self.metrics_listen {
            t.push_str(&format!("metrics_listen = {addr:?}\n"));
        }
        if let Some(script) = &self.notify {
            t.push_str(&format!("notify = {script:?}\n"));
        }
        t.push('\n');
        t.push_str("[dataplane]\n");
        t.push_str(&format!("cores = [{}]\n", cores.join(", ")));
        t.push_str(&format!("idle = {:?}\n", self.idle));
        for port in &self.ports {
            t.push_str(&format!("\n[[port]]\nname = {port:?}\n"));
            if let Some(queues) = self.queues.get(port) {
                let ids: Vec<String> = queues.iter().map(u32::to_string).collect();
                t.push_str(&format!("queues = [{}]\n", ids.join(", ")));
            }
        }
        for i in &self.instances {
            t.push_str("\n[[vrrp]]\n");
            t.push_str(&format!("name = {:?}\n", i.name));
            t.push_str(&format!("port = {:?}\n", i.port));
            t.push_str(&format!("vrid = {}\n", i.vrid));
            t.push_str(&format!("priority = {}\n", self.priority));
            t.push_str(&format!("advert_interval = {:?}\n", self.advert_interval));
            t.push_str(&format!("preempt = {}\n", self.preempt));
            t.push_str(&format!("addresses = [{}]\n", quoted(&i.addresses)));
        }
        if self.sync_group && !self.instances.is_empty() {
            let members: Vec<String> = self.instances.iter().map(|i| i.name.clone()).collect();
            t.push_str("\n[[sync_group]]\nname = \"gw\"\n");
            t.push_str(&format!("members = [{}]\n", quoted(&members)));
        }
        if self.kernel_routes {
            t.push_str("\n[routes]\nkernel = true\n");
        }
        t
    }
}

/// A private scratch directory (mode 0700) for configs and logs, removed on
/// drop unless [`WorkDir::keep`] was called.
#[derive(Debug)]
pub struct WorkDir {
    path: PathBuf,
    keep: bool,
}

impl WorkDir {
    /// Creates `/tmp/xvrrp-{tag}-{pid}-{n}`; fails rather than reuse a
    /// directory that already exists.
    pub fn create(tag: &str) -> Result<WorkDir> {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        let path =
            std::env::temp_dir().join(format!("xvrrp-{tag}-{}-{nanos:08x}", std::process::id()));
        std::fs::DirBuilder::new()
            .mode(0o700)
            .create(&path)
            .with_context(|| format!("create {}", path.display()))?;
        Ok(WorkDir { path, keep: false })
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Leaves the directory in place (for its logs) when dropped.
    pub fn keep(&mut self) {
        self.keep = true;
    }
}

impl Drop for WorkDir {
    fn drop(&mut self) {
        if !self.keep {
            let _ = std::fs::remove_dir_all(&self.path);
        }
    }
}

/// Polls `cond` every 20 ms until it holds; fails after `timeout`, or at
/// once when `stop` is raised (Ctrl-C) or `cond` fails.
pub fn wait_until(
    what: &str,
    timeout: Duration,
    stop: &AtomicBool,
    mut cond: impl FnMut() -> Result<bool>,
) -> Result<()> {
    let deadline = Instant::now() + timeout;
    loop {
        if stop.load(Ordering::Relaxed) {
            bail!("interrupted while waiting for {what}");
        }
        if cond()? {
            return Ok(());
        }
        if Instant::now() >= deadline {
            bail!("timed out after {timeout:?} waiting for {what}");
        }
        thread::sleep(Duration::from_millis(20));
    }
}

/// An xvrrp daemon running in one of the lab's gateway namespaces,
/// started as `ip netns exec NS EXE run -c CONFIG`. Dropping it kills it
/// (by its PID only) and reaps it.
#[derive(Debug)]
pub struct Appliance {
    name: String,
    exe: PathBuf,
    ns: String,
    socket: String,
    config_path: PathBuf,
    log_path: PathBuf,
    child: Option<Child>,
}

impl Appliance {
    /// Writes `config` to `DIR/NAME.toml`; the daemon's output will go to
    /// `DIR/NAME.log`. Does not start it.
    pub fn new(
        name: &str,
        exe: &Path,
        ns: &str,
        config: &ApplianceConfig,
        dir: &Path,
    ) -> Result<Appliance> {
        let config_path = dir.join(format!("{name}.toml"));
        std::fs::write(&config_path, config.render())
            .with_context(|| format!("write {}", config_path.display()))?;
        Ok(Appliance {
            name: name.to_owned(),
            exe: exe.to_owned(),
            ns: ns.to_owned(),
            socket: config.control_socket.clone(),
            config_path,
            log_path: dir.join(format!("{name}.log")),
            child: None,
        })
    }

    /// The appliance's name (used in messages and file names).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The configuration file.
    pub fn config_path(&self) -> &Path {
        &self.config_path
    }

    /// The daemon's log file.
    pub fn log_path(&self) -> &Path {
        &self.log_path
    }

    /// Starts the daemon; its stdout and stderr are appended to the log.
    pub fn start(&mut self) -> Result<()> {
        if self.running() {
            bail!("appliance {} is already running", self.name);
        }
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log_path)
            .with_context(|| format!("open {}", self.log_path.display()))?;
        let log_err = log.try_clone().context("duplicate log descriptor")?;
        let exe = self.exe.to_string_lossy().into_owned();
        let config = self.config_path.to_string_lossy().into_owned();
        let child = netns::spawn(
            &self.ns,
            &exe,
            &["run", "-c", &config],
            Stdio::from(log),
            Stdio::from(log_err),
        )?;
        self.child = Some(child);
        Ok(())
    }

    /// The daemon's PID while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Whether the daemon is running (reaps it if it exited).
    pub fn running(&mut self) -> bool {
        match self.child.as_mut().map(Child::try_wait) {
            Some(Ok(None)) => true,
            Some(_) => {
                self.child = None;
                false
            }
            None => false,
        }
    }

    /// Kills the daemon with SIGKILL (a crash, as far as the peer can tell).
    pub fn kill(&mut self) -> Result<()> {
        match self.child.take() {
            Some(mut child) => netns::kill_child(&mut child),
            None => Ok(()),
        }
    }

    /// Stops the daemon with SIGTERM (SIGKILL if it lingers past 3 s).
    pub fn stop(&mut self) -> Result<()> {
        match self.child.take() {
            Some(mut child) => netns::stop_child(&mut child, Duration::from_secs(3)),
            None => Ok(()),
        }
    }

    /// Runs `EXE -s SOCKET ARGS... --json` and returns the reply object.
    ///
    /// # Errors
    /// The client fails or hangs for 10 s, or its reply is not `ok`.
    pub fn query(&self, args: &[&str]) -> Result<serde_json::Value> {
        let child = Command::new(&self.exe)
            .arg("-s")
            .arg(&self.socket)
            .args(args)
            .arg("--json")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .with_context(|| format!("run {}", self.exe.display()))?;
        let pid = child.id();
        let (tx, rx) = mpsc::channel();
        thread::spawn(move || {
            let _ = tx.send(child.wait_with_output());
        });
        // Generous: on a loaded 2-core machine starting a process can take
        // seconds; a daemon that really hangs is still caught.
        let out = match rx.recv_timeout(Duration::from_secs(10)) {
            Ok(out) => out.context("wait for the xvrrp client")?,
            Err(_) => {
                netns::signal(pid, libc::SIGKILL)?;
                bail!("`xvrrp {}` hung on {}", args.join(" "), self.socket);
            }
        };
        if !out.status.success() {
            bail!(
                "`xvrrp -s {} {} --json` failed: {}",
                self.socket,
                args.join(" "),
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
        let reply: serde_json::Value = serde_json::from_slice(&out.stdout)
            .with_context(|| format!("parse the reply of `xvrrp {}`", args.join(" ")))?;
        if reply.get("ok").and_then(serde_json::Value::as_bool) != Some(true) {
            bail!("`xvrrp {}` replied {reply}", args.join(" "));
        }
        Ok(reply)
    }

    /// Instance name → state, from `status --json`.
    pub fn states(&self) -> Result<BTreeMap<String, String>> {
        let reply = self.query(&["status"])?;
        let mut states = BTreeMap::new();
        for i in instances(&reply) {
            let name = i.get("name").and_then(|v| v.as_str()).unwrap_or_default();
            let state = i.get("state").and_then(|v| v.as_str()).unwrap_or_default();
            states.insert(name.to_owned(), state.to_owned());
        }
        Ok(states)
    }

    /// Whether the daemon answers and every instance is in `state`. Not
    /// answering yet is `false`; a daemon that exited is an error.
    pub fn all_in(&mut self, state: &str) -> Result<bool> {
        if !self.running() {
            bail!(
                "appliance {} is not running; last lines of {}:\n{}",
                self.name,
                self.log_path.display(),
                self.log_tail(15)
            );
        }
        Ok(match self.states() {
            Ok(states) => !states.is_empty() && states.values().all(|s| s == state),
            Err(_) => false,
        })
    }

    /// The last `lines` lines of the daemon's log.
    pub fn log_tail(&self, lines: usize) -> String {
        let text = std::fs::read_to_string(&self.log_path).unwrap_or_default();
        let all: Vec<&str> = text.lines().collect();
        let tail = all
            .get(all.len().saturating_sub(lines)..)
            .unwrap_or_default();
        if tail.is_empty() {
            "  (empty)".to_owned()
        } else {
            tail.iter()
                .map(|l| format!("  {l}"))
                .collect::<Vec<_>>()
                .join("\n")
        }
    }
}

impl Drop for Appliance {
    fn drop(&mut self) {
        if let Err(e) = self.kill() {
            eprintln!("warning: stopping appliance {}: {e:#}", self.name);
        }
        // A daemon killed by SIGKILL cannot remove its control socket: the
        // one who started it does, so runs leave nothing behind.
        let _ = std::fs::remove_file(&self.socket);
    }
}

/// The `instances` array of a `status --json` reply (empty if absent).
pub fn instances(reply: &serde_json::Value) -> impl Iterator<Item = &serde_json::Value> {
    reply
        .get("instances")
        .and_then(serde_json::Value::as_array)
        .into_iter()
        .flatten()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn prefixes_keep_names_valid() {
        for ok in ["xv", "t1", "abcdefgh", "0"] {
            assert!(validate_prefix(ok).is_ok(), "{ok}");
        }
        for bad in ["", "abcdefghi", "Xv", "x-v", "x v", "x/v", "é"] {
            assert!(validate_prefix(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn gateway_config_is_accepted_by_the_parser() {
        let text = ApplianceConfig::gateway("/run/xvrrp/xv-a.sock", 200).render();
        let config = xvrrp_control::config::parse(&text, "lab").unwrap();
        assert_eq!(config.ports.len(), 2);
        let names: Vec<&str> = config.vrrp.iter().map(|v| v.name.as_str()).collect();
        assert_eq!(names, ["lan-gw", "wan-gw"]);
        assert!(config.vrrp.iter().all(|v| v.priority == 200 && v.preempt));
        assert_eq!(
            config.vrrp.iter().map(|v| v.vrid).collect::<Vec<_>>(),
            [1, 2]
        );
        assert_eq!(config.vrrp[0].advert_interval(), Duration::from_millis(10));
        assert_eq!(config.sync_groups.len(), 1);
        assert_eq!(config.ports[0].queues, xvrrp_control::config::Queues::All);
    }

    #[test]
    fn queues_of_a_port_are_rendered() {
        let mut c = ApplianceConfig::gateway("/run/xvrrp/xv-a.sock", 200);
        c.cores = vec![0, 1];
        c.queues.insert("wan0".to_owned(), vec![0]);
        let config = xvrrp_control::config::parse(&c.render(), "lab").unwrap();
        assert_eq!(config.dataplane.cores, [0, 1]);
        assert_eq!(config.ports[0].queues, xvrrp_control::config::Queues::All);
        assert_eq!(
            config.ports[1].queues,
            xvrrp_control::config::Queues::List(vec![0])
        );
    }
}
