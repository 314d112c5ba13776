//! What the benchmarks read: interface counters inside a namespace, CPU
//! time of the machine (per core, by kind) and of a process, and round-trip
//! times from `arping` and `ping`.
//!
//! CPU figures come from the kernel's own accounting: `/proc/stat` per core
//! (user, system, softirq, ... in USER_HZ ticks) and `/proc/PID/stat`
//! (utime + stime of every thread of the process). Without
//! `CONFIG_IRQ_TIME_ACCOUNTING` the kernel samples both at each tick: a
//! softirq that interrupts a task counts as softirq for the core *and* as
//! system time of that task.

use std::net::IpAddr;

use anyhow::{bail, Context, Result};

use crate::netns;

/// Packet counters of one interface, from `ip -s -j link show` (netlink:
/// no sysfs mount of the namespace needed).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(super) struct LinkCounters {
    pub(super) rx_packets: u64,
    pub(super) tx_packets: u64,
    pub(super) rx_dropped: u64,
    pub(super) tx_dropped: u64,
}

/// The counters of `ifname` in namespace `ns`.
pub(super) fn link_counters(ns: &str, ifname: &str) -> Result<LinkCounters> {
    let out = netns::ip(&["-n", ns, "-s", "-j", "link", "show", "dev", ifname])?;
    parse_link_counters(&out).with_context(|| format!("counters of {ifname} in {ns}"))
}

fn parse_link_counters(json: &str) -> Result<LinkCounters> {
    let v: serde_json::Value = serde_json::from_str(json).context("parse `ip -s -j link`")?;
    let stats = v
        .get(0)
        .and_then(|l| l.get("stats64"))
        .context("no stats64 in `ip -s -j link`")?;
    let get = |dir: &str, key: &str| {
        stats
            .get(dir)
            .and_then(|d| d.get(key))
            .and_then(serde_json::Value::as_u64)
            .unwrap_or(0)
    };
    Ok(LinkCounters {
        rx_packets: get("rx", "packets"),
        tx_packets: get("tx", "packets"),
        rx_dropped: get("rx", "dropped"),
        tx_dropped: get("tx", "dropped"),
    })
}

/// The non-zero statistics of `ethtool -S IFNAME` in `ns` (for veth: per
/// queue XDP counters and ring drops), as name and value.
pub(super) fn ethtool_stats(ns: &str, ifname: &str) -> Result<Vec<(String, u64)>> {
    let out = netns::exec(ns, "ethtool", &["-S", ifname])?;
    Ok(parse_ethtool_stats(&out))
}

fn parse_ethtool_stats(text: &str) -> Vec<(String, u64)> {
    text.lines()
        .filter_map(|l| {
            let (k, v) = l.split_once(':')?;
            let v: u64 = v.trim().parse().ok()?;
            let k = k.trim();
            (k != "peer_ifindex").then(|| (k.to_owned(), v))
        })
        .collect()
}

/// Number of receive queues of `ifname` in `ns`.
pub(super) fn rx_queues(ns: &str, ifname: &str) -> Result<u64> {
    let out = netns::ip(&["-n", ns, "-d", "-j", "link", "show", "dev", ifname])?;
    let v: serde_json::Value = serde_json::from_str(&out).context("parse `ip -d -j link`")?;
    v.get(0)
        .and_then(|l| l.get("num_rx_queues"))
        .and_then(serde_json::Value::as_u64)
        .with_context(|| format!("no num_rx_queues for {ifname} in {ns}"))
}

/// The MAC address of `ifname` in `ns`.
pub(super) fn mac_of(ns: &str, ifname: &str) -> Result<[u8; 6]> {
    let out = netns::ip(&["-n", ns, "-j", "link", "show", "dev", ifname])?;
    let v: serde_json::Value = serde_json::from_str(&out).context("parse `ip -j link`")?;
    let text = v
        .get(0)
        .and_then(|l| l.get("address"))
        .and_then(serde_json::Value::as_str)
        .with_context(|| format!("no address for {ifname} in {ns}"))?;
    parse_mac(text)
}

/// `aa:bb:cc:dd:ee:ff` as bytes.
pub(super) fn parse_mac(text: &str) -> Result<[u8; 6]> {
    let mut mac = [0u8; 6];
    let mut parts = text.split(':');
    for byte in &mut mac {
        let part = parts.next().with_context(|| format!("bad MAC {text:?}"))?;
        *byte = u8::from_str_radix(part, 16).with_context(|| format!("bad MAC {text:?}"))?;
    }
    if parts.next().is_some() {
        bail!("bad MAC {text:?}");
    }
    Ok(mac)
}

/// CPU time of one core by kind, in USER_HZ ticks, from `/proc/stat`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(super) struct CoreTimes {
    pub(super) user: u64,
    pub(super) system: u64,
    pub(super) irq: u64,
    pub(super) softirq: u64,
}

impl CoreTimes {
    fn minus(self, before: CoreTimes) -> CoreTimes {
        CoreTimes {
            user: self.user.saturating_sub(before.user),
            system: self.system.saturating_sub(before.system),
            irq: self.irq.saturating_sub(before.irq),
            softirq: self.softirq.saturating_sub(before.softirq),
        }
    }
}

/// Every core's times, indexed by core number.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(super) struct MachineTimes {
    pub(super) cores: Vec<CoreTimes>,
}

impl MachineTimes {
    /// Reads `/proc/stat`.
    pub(super) fn read() -> Result<MachineTimes> {
        let text = std::fs::read_to_string("/proc/stat").context("read /proc/stat")?;
        Ok(parse_proc_stat(&text))
    }

    /// Per-core differences `self - before`.
    pub(super) fn minus(&self, before: &MachineTimes) -> MachineTimes {
        MachineTimes {
            cores: self
                .cores
                .iter()
                .enumerate()
                .map(|(i, c)| c.minus(before.cores.get(i).copied().unwrap_or_default()))
                .collect(),
        }
    }

    /// Softirq ticks of every core together.
    pub(super) fn softirq_all(&self) -> u64 {
        self.cores.iter().map(|c| c.softirq).sum()
    }

    /// Softirq ticks of core `n`.
    pub(super) fn softirq_of(&self, n: usize) -> u64 {
        self.cores.get(n).map_or(0, |c| c.softirq)
    }
}

fn parse_proc_stat(text: &str) -> MachineTimes {
    let mut cores = Vec::new();
    for line in text.lines() {
        let mut fields = line.split_whitespace();
        let Some(name) = fields.next() else { continue };
        let Some(index) = name
            .strip_prefix("cpu")
            .and_then(|n| n.parse::<usize>().ok())
        else {
            continue;
        };
        // user nice system idle iowait irq softirq steal ...
        let v: Vec<u64> = fields.map(|x| x.parse().unwrap_or(0)).collect();
        let at = |i: usize| v.get(i).copied().unwrap_or(0);
        if cores.len() <= index {
            cores.resize(index + 1, CoreTimes::default());
        }
        if let Some(slot) = cores.get_mut(index) {
            *slot = CoreTimes {
                user: at(0) + at(1),
                system: at(2),
                irq: at(5),
                softirq: at(6),
            };
        }
    }
    MachineTimes { cores }
}

/// utime + stime of process `pid` (all its threads), in USER_HZ ticks.
pub(super) fn process_ticks(pid: u32) -> Result<u64> {
    let path = format!("/proc/{pid}/stat");
    let text = std::fs::read_to_string(&path).with_context(|| format!("read {path}"))?;
    parse_pid_stat(&text).with_context(|| format!("parse {path}"))
}

fn parse_pid_stat(text: &str) -> Option<u64> {
    // The command name may hold spaces and parentheses: fields start after
    // the last ") ". Fields 14 and 15 (utime, stime) are then at 11 and 12.
    let (_, rest) = text.rsplit_once(") ")?;
    let mut fields = rest.split_whitespace().skip(11);
    let utime: u64 = fields.next()?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    Some(utime + stime)
}

/// Seconds per USER_HZ tick.
pub(super) fn tick_seconds() -> f64 {
    // SAFETY: sysconf only reads a system constant.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if hz > 0 {
        #[allow(clippy::cast_precision_loss)]
        let s = 1.0 / hz as f64;
        s
    } else {
        0.01
    }
}

/// Round trips of one probe run, in µs, and how many probes were sent.
#[derive(Clone, Debug, Default, PartialEq)]
pub(super) struct Rtts {
    pub(super) sent: u32,
    pub(super) micros: Vec<f64>,
    /// Replies that came twice (ping's `DUP!`), not counted in `micros`.
    pub(super) duplicates: usize,
}

impl Rtts {
    /// The `p` quantile in µs.
    pub(super) fn quantile(&self, p: f64) -> Option<f64> {
        let mut v = self.micros.clone();
        v.sort_by(f64::total_cmp);
        super::quantile(&v, p)
    }
}

/// `arping -i IFACE -c COUNT -W INTERVAL TARGET` from `ns`: the ARP reply
/// round trips (Habets arping prints `time=12.345 usec` per reply).
pub(super) fn arping(ns: &str, iface: &str, target: IpAddr, count: u32) -> Result<Rtts> {
    let out = netns::exec_output(
        ns,
        "arping",
        &[
            "-i",
            iface,
            "-c",
            &count.to_string(),
            "-W",
            "0.01",
            "-w",
            &(count / 50 + 5).to_string(),
            &target.to_string(),
        ],
    )?;
    let text = String::from_utf8_lossy(&out.stdout);
    Ok(Rtts {
        sent: count,
        micros: text.lines().filter_map(parse_time_micros).collect(),
        duplicates: 0,
    })
}

/// `ping -c COUNT -i 0.01 -W 1 DST` from `ns`: the echo round trips (a
/// duplicate reply, marked `DUP!`, is not a second sample). No `-w`: with
/// a deadline ping keeps sending until COUNT replies came back.
pub(super) fn ping(ns: &str, dst: IpAddr, count: u32) -> Result<Rtts> {
    let out = netns::exec_output(
        ns,
        "ping",
        &[
            "-n",
            "-c",
            &count.to_string(),
            "-i",
            "0.01",
            "-W",
            "1",
            &dst.to_string(),
        ],
    )?;
    let text = String::from_utf8_lossy(&out.stdout);
    Ok(Rtts {
        sent: count,
        micros: text
            .lines()
            .filter(|l| !l.contains("DUP!"))
            .filter_map(parse_time_micros)
            .collect(),
        duplicates: text.lines().filter(|l| l.contains("DUP!")).count(),
    })
}

/// The `time=` of one reply line in µs: `time=0.080 ms` (ping),
/// `time=12.345 usec` / `time=1.2 msec` (arping).
fn parse_time_micros(line: &str) -> Option<f64> {
    let (_, rest) = line.split_once("time=")?;
    let rest = rest.trim_start();
    let end = rest
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(rest.len());
    let value: f64 = rest.get(..end)?.parse().ok()?;
    let unit = rest.get(end..)?.trim_start();
    let scale = if unit.starts_with("nsec") {
        1e-3
    } else if unit.starts_with("usec") || unit.starts_with("us") {
        1.0
    } else if unit.starts_with("msec") || unit.starts_with("ms") {
        1e3
    } else if unit.starts_with("sec") || unit.starts_with('s') {
        1e6
    } else {
        return None;
    };
    Some(value * scale)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn reply_times_in_micros() {
        let arp = "42 bytes from ae:4b:51:b9:30:5c (192.0.2.1): index=0 time=9.604 usec";
        assert_eq!(parse_time_micros(arp), Some(9.604));
        let arp_ms = "42 bytes from 00:00:5e:00:01:01 (192.0.2.1): index=3 time=1.500 msec";
        assert_eq!(parse_time_micros(arp_ms), Some(1500.0));
        let ping = "64 bytes from 203.0.113.100: icmp_seq=1 ttl=63 time=0.068 ms";
        assert!((parse_time_micros(ping).unwrap() - 68.0).abs() < 1e-9);
        assert_eq!(
            parse_time_micros("rtt min/avg/max/mdev = 0.074/0.076"),
            None
        );
        assert_eq!(parse_time_micros("Timeout"), None);
    }

    #[test]
    fn proc_stat_per_core() {
        let text = "cpu  10 1 20 30 0 2 7 0 0 0\ncpu0 4 0 10 15 0 1 3 0 0 0\ncpu1 6 1 10 15 0 1 4 0 0 0\nintr 5\n";
        let m = parse_proc_stat(text);
        assert_eq!(m.cores.len(), 2);
        assert_eq!(
            m.cores[1],
            CoreTimes {
                user: 7,
                system: 10,
                irq: 1,
                softirq: 4
            }
        );
        assert_eq!(m.softirq_all(), 7);
        let later = parse_proc_stat("cpu0 5 0 10 15 0 1 9 0 0 0\ncpu1 6 1 12 15 0 1 4 0 0 0\n");
        let d = later.minus(&m);
        assert_eq!((d.softirq_of(0), d.softirq_of(1)), (6, 0));
        assert_eq!(d.cores[1].system, 2);
    }

    #[test]
    fn pid_stat_with_a_strange_name() {
        let text = "1234 (x) (y z) R 1 2 3 4 5 6 7 8 9 10 111 222 0 0 20 0 1 0";
        assert_eq!(parse_pid_stat(text), Some(333));
    }

    #[test]
    fn link_counters_from_ip_json() {
        let json = r#"[{"ifname":"eth0","stats64":{"rx":{"bytes":1,"packets":10,"dropped":2},"tx":{"bytes":1,"packets":20,"dropped":3}}}]"#;
        assert_eq!(
            parse_link_counters(json).unwrap(),
            LinkCounters {
                rx_packets: 10,
                tx_packets: 20,
                rx_dropped: 2,
                tx_dropped: 3
            }
        );
    }

    #[test]
    fn ethtool_counters() {
        let text = "NIC statistics:\n     peer_ifindex: 5\n     rx_queue_0_xdp_packets: 12\n     rx_queue_0_drops: 0\n";
        assert_eq!(
            parse_ethtool_stats(text),
            vec![
                ("rx_queue_0_xdp_packets".to_owned(), 12),
                ("rx_queue_0_drops".to_owned(), 0)
            ]
        );
    }

    #[test]
    fn macs() {
        assert_eq!(
            parse_mac("00:00:5e:00:01:01").unwrap(),
            [0, 0, 0x5e, 0, 1, 1]
        );
        assert!(parse_mac("00:00:5e:00:01").is_err());
        assert!(parse_mac("00:00:5e:00:01:01:02").is_err());
    }
}
