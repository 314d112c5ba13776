//! keepalived in a lab gateway namespace, as the baseline of the failover
//! benchmark: the lab's two virtual routers in one sync group, VRRPv3, no
//! `use_vmac`, with the kernel forwarding.
//!
//! keepalived as master puts the virtual addresses on its kernel interfaces
//! and answers ARP with the interface's own MAC; the kernel of its
//! namespace forwards (`ip_forward=1`, which the caller sets). So its role
//! is read from its interfaces (master holds both virtual addresses, backup
//! neither) and its state changes from its log ("Entering ... STATE").

use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use anyhow::{bail, Context, Result};

use crate::lab;
use crate::netns;

/// Where Debian installs keepalived.
pub const KEEPALIVED: &str = "/usr/sbin/keepalived";
/// The LAN virtual address of the lab.
const LAN_VIP: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 1);
/// The WAN virtual address of the lab.
const WAN_VIP: Ipv4Addr = Ipv4Addr::new(203, 0, 113, 1);

/// keepalived's role, read from the virtual addresses on its interfaces.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// Holds both virtual addresses.
    Master,
    /// Holds neither.
    Backup,
    /// Holds one of the two (a sync-group transition in progress).
    Mixed,
}

/// keepalived's configuration for the lab gateway: `lan` (VRID 1,
/// 192.0.2.1/24 on lan0) and `wan` (VRID 2, 203.0.113.1/24 on wan0) in one
/// sync group, VRRPv3 at `interval`, starting as backup, preempting
/// (keepalived's default), `priority`.
///
/// keepalived takes `advert_int` in seconds with centisecond resolution,
/// so `interval` is rounded down to 10 ms (and at least 10 ms).
pub fn gateway_conf(priority: u8, interval: Duration) -> String {
    let cs = (interval.as_millis() / 10).max(1);
    let advert_int = format!("{}.{:02}", cs / 100, cs % 100);
    let instance = |name: &str, ifname: &str, vrid: u8, vip: &str| {
        format!(
            "vrrp_instance {name} {{\n    state BACKUP\n    interface {ifname}\n    \
             virtual_router_id {vrid}\n    priority {priority}\n    advert_int {advert_int}\n    \
             virtual_ipaddress {{\n        {vip}\n    }}\n}}\n"
        )
    };
    format!(
        "global_defs {{\n    vrrp_version 3\n}}\n\
         vrrp_sync_group gw {{\n    group {{\n        lan\n        wan\n    }}\n}}\n{}{}",
        instance("lan", "lan0", 1, "192.0.2.1/24"),
        instance("wan", "wan0", 2, "203.0.113.1/24"),
    )
}

/// keepalived (VRRP subsystem only) running in the foreground in one
/// namespace, logging to a file. Dropping it stops the parent by its PID
/// and kills the VRRP child by its PID if the parent left it behind.
#[derive(Debug)]
pub struct Keepalived {
    name: String,
    ns: String,
    conf: PathBuf,
    log: PathBuf,
    pid_file: PathBuf,
    vrrp_pid_file: PathBuf,
    parent: Option<Child>,
    vrrp_child: Option<u32>,
}

impl Keepalived {
    /// Writes `conf_text` to `DIR/NAME.conf`; its log will be `DIR/NAME.log`.
    /// Does not start it.
    pub fn new(name: &str, ns: &str, dir: &Path, conf_text: &str) -> Result<Keepalived> {
        let conf = dir.join(format!("{name}.conf"));
        std::fs::write(&conf, conf_text).with_context(|| format!("write {}", conf.display()))?;
        Ok(Keepalived {
            name: name.to_owned(),
            ns: ns.to_owned(),
            conf,
            log: dir.join(format!("{name}.log")),
            pid_file: dir.join(format!("{name}.pid")),
            vrrp_pid_file: dir.join(format!("{name}-vrrp.pid")),
            parent: None,
            vrrp_child: None,
        })
    }

    /// Its name (in messages).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Starts keepalived and waits until its VRRP child has written its PID.
    pub fn start(&mut self, stop: &AtomicBool) -> Result<()> {
        if self.parent.is_some() {
            bail!("keepalived {} is already running", self.name);
        }
        // A PID file left by a killed run would name a stale process.
        let _ = std::fs::remove_file(&self.vrrp_pid_file);
        let _ = std::fs::remove_file(&self.pid_file);
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .with_context(|| format!("open {}", self.log.display()))?;
        let log_err = log.try_clone()?;
        let (conf, pid, vrrp_pid) = (
            self.conf.to_string_lossy().into_owned(),
            self.pid_file.to_string_lossy().into_owned(),
            self.vrrp_pid_file.to_string_lossy().into_owned(),
        );
        // -n foreground, -l log to the console (our file), -D detailed,
        // -G no syslog, -P the VRRP subsystem only; private PID files so
        // parallel runs do not see each other's daemon.
        let args = [
            "-n", "-l", "-D", "-G", "-P", "-f", &conf, "-p", &pid, "-r", &vrrp_pid,
        ];
        let child = netns::spawn(
            &self.ns,
            KEEPALIVED,
            &args,
            Stdio::from(log),
            Stdio::from(log_err),
        )?;
        let parent = child.id();
        self.parent = Some(child);
        let vrrp_pid_file = self.vrrp_pid_file.clone();
        let mut found = None;
        lab::wait_until(
            "keepalived's VRRP child",
            Duration::from_secs(10),
            stop,
            || {
                found = std::fs::read_to_string(&vrrp_pid_file)
                    .ok()
                    .and_then(|s| s.trim().parse::<u32>().ok())
                    .filter(|&p| parent_of(p) == Some(parent));
                Ok(found.is_some())
            },
        )
        .with_context(|| format!("log:\n{}", self.log_tail(15)))?;
        self.vrrp_child = found;
        Ok(())
    }

    /// The PID of the VRRP child, the process that speaks VRRP.
    pub fn vrrp_pid(&self) -> Option<u32> {
        self.vrrp_child
    }

    /// Stops keepalived with SIGTERM, as an operator would: the VRRP child
    /// gives up mastership (priority 0 adverts) and removes its addresses.
    /// Anything still alive after 5 s is killed.
    pub fn stop(&mut self) -> Result<()> {
        if let Some(mut parent) = self.parent.take() {
            netns::stop_child(&mut parent, Duration::from_secs(5))?;
        }
        if let Some(pid) = self.vrrp_child.take() {
            // The VRRP child outlives a killed parent; kill it only if the
            // PID still runs this configuration.
            if self.runs_our_conf(pid) {
                netns::signal(pid, libc::SIGKILL)?;
            }
        }
        Ok(())
    }

    /// Sends SIGTERM to keepalived without waiting for it to exit, so a
    /// takeover can be timed from the signal.
    pub fn terminate(&self) -> Result<()> {
        match &self.parent {
            Some(parent) => netns::signal(parent.id(), libc::SIGTERM),
            None => bail!("keepalived {} is not running", self.name),
        }
    }

    /// A crash: SIGKILL of the VRRP child and of the parent, with nothing
    /// sent on the wire. The parent is stopped first (SIGSTOP), so it can
    /// neither restart the child nor tell it to shut down cleanly. The
    /// virtual addresses stay on the interfaces, as they do after a real
    /// crash of keepalived: nobody is left to remove them.
    pub fn kill(&mut self) -> Result<()> {
        let parent = self.parent.as_ref().map(Child::id);
        if let Some(p) = parent {
            netns::signal(p, libc::SIGSTOP)?;
        }
        if let Some(pid) = self.vrrp_child.take() {
            if self.runs_our_conf(pid) {
                netns::signal(pid, libc::SIGKILL)?;
            }
        }
        if let Some(mut child) = self.parent.take() {
            netns::kill_child(&mut child)?;
        }
        Ok(())
    }

    fn runs_our_conf(&self, pid: u32) -> bool {
        let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
        let conf = self.conf.to_string_lossy();
        String::from_utf8_lossy(&cmdline).contains(conf.as_ref())
    }

    /// Whether keepalived holds both, neither or one virtual address.
    pub fn role(&self) -> Result<Role> {
        role_in(&self.ns)
    }

    /// How many state changes ("Entering MASTER/BACKUP/FAULT STATE") its
    /// log shows so far, over every start.
    pub fn state_changes(&self) -> usize {
        std::fs::read_to_string(&self.log)
            .unwrap_or_default()
            .lines()
            .filter(|l| l.contains(" Entering ") && l.contains(" STATE"))
            .count()
    }

    /// The last `lines` lines of its log.
    pub fn log_tail(&self, lines: usize) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let all: Vec<&str> = text.lines().collect();
        all.get(all.len().saturating_sub(lines)..)
            .unwrap_or_default()
            .iter()
            .map(|l| format!("  {l}"))
            .collect::<Vec<_>>()
            .join("\n")
    }
}

impl Drop for Keepalived {
    fn drop(&mut self) {
        if let Err(e) = self.stop() {
            eprintln!("warning: stopping keepalived {}: {e:#}", self.name);
        }
    }
}

/// The role of namespace `ns` from the virtual addresses on its interfaces.
pub fn role_in(ns: &str) -> Result<Role> {
    let held = addresses(ns)?;
    let lan = held.contains(&IpAddr::V4(LAN_VIP));
    let wan = held.contains(&IpAddr::V4(WAN_VIP));
    Ok(match (lan, wan) {
        (true, true) => Role::Master,
        (false, false) => Role::Backup,
        _ => Role::Mixed,
    })
}

/// Removes the lab's virtual addresses from the interfaces of `ns`, where a
/// killed keepalived left them.
pub fn remove_virtual_addresses(ns: &str) -> Result<()> {
    let held = addresses(ns)?;
    for (vip, ifname) in [(LAN_VIP, "lan0"), (WAN_VIP, "wan0")] {
        if held.contains(&IpAddr::V4(vip)) {
            netns::ip(&["-n", ns, "addr", "del", &format!("{vip}/24"), "dev", ifname])?;
        }
    }
    Ok(())
}

/// Every address on the interfaces of `ns`.
fn addresses(ns: &str) -> Result<Vec<IpAddr>> {
    let out = netns::ip(&["-n", ns, "-j", "addr", "show"])?;
    let links: serde_json::Value =
        serde_json::from_str(&out).with_context(|| format!("parse `ip -j addr` of {ns}"))?;
    Ok(links
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|l| l.get("addr_info").and_then(|a| a.as_array()))
        .flatten()
        .filter_map(|a| a.get("local").and_then(|v| v.as_str()))
        .filter_map(|s| s.parse().ok())
        .collect())
}

/// The parent PID of `pid`, from `/proc/PID/status`.
fn parent_of(pid: u32) -> Option<u32> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("PPid:"))
        .and_then(|v| v.trim().parse().ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn advert_int_in_centiseconds() {
        let c = gateway_conf(200, Duration::from_millis(10));
        assert!(c.contains("advert_int 0.01\n"), "{c}");
        assert!(c.contains("priority 200\n"), "{c}");
        assert_eq!(c.matches("vrrp_instance ").count(), 2);
        let c = gateway_conf(100, Duration::from_millis(1500));
        assert!(c.contains("advert_int 1.50\n"), "{c}");
        let c = gateway_conf(100, Duration::from_millis(3));
        assert!(c.contains("advert_int 0.01\n"), "{c}");
    }
}
