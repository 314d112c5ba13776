//! The resolved plan `xvrrp check` prints: what the daemon would do with a
//! configuration, every default filled in and every derived timer computed.

use std::fmt::Write;

use super::{format_duration, queue_worker, ChecksumMode, Config, Queues, RouterSpec, Version};

/// The queue count of an interface present where `check` runs, if any.
pub(super) type RxQueues<'a> = &'a dyn Fn(&str) -> Option<u32>;

pub(super) fn render(c: &Config, rx_queues: RxQueues<'_>) -> String {
    let mut out = String::new();
    // Writing to a String cannot fail; the results are discarded on purpose.
    let _ = write_plan(&mut out, c, rx_queues);
    out
}

fn write_plan(out: &mut String, c: &Config, rx_queues: RxQueues<'_>) -> std::fmt::Result {
    let g = &c.global;
    writeln!(out, "control socket: {}", g.control_socket.display())?;
    match &g.socket_group {
        Some(group) => writeln!(out, "  mode 0660, group {group}")?,
        None => writeln!(out, "  mode 0660, group unchanged")?,
    }
    match g.metrics_listen {
        Some(a) => writeln!(out, "metrics: http://{a}/metrics (Prometheus text)")?,
        None => writeln!(out, "metrics: off")?,
    }
    match &g.notify {
        Some(p) => writeln!(out, "notify: {} INSTANCE STATE PRIORITY", p.display())?,
        None => writeln!(out, "notify: off")?,
    }

    let d = &c.dataplane;
    let (idle, xdp, zc) = (d.idle.as_str(), d.xdp_mode.as_str(), d.zero_copy.as_str());
    let cores: Vec<String> = d.cores.iter().map(ToString::to_string).collect();
    writeln!(
        out,
        "dataplane: af_xdp, {} worker{} on core{} {}, idle {idle}, xdp {xdp}, zero-copy {zc}, batch {}",
        d.cores.len(),
        if d.cores.len() == 1 { "" } else { "s" },
        if d.cores.len() == 1 { "" } else { "s" },
        cores.join(","),
        d.batch
    )?;

    writeln!(out, "ports:")?;
    if c.ports.is_empty() {
        writeln!(out, "  (none)")?;
    }
    for p in &c.ports {
        let queues = match &p.queues {
            Queues::All => "all".to_string(),
            Queues::List(ids) => ids
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(","),
        };
        writeln!(out, "  {}: queues {queues}", p.name)?;
    }
    write_workers(out, c, rx_queues)?;

    writeln!(out, "instances:")?;
    if c.vrrp.is_empty() {
        writeln!(out, "  (none)")?;
    }
    for v in &c.vrrp {
        write_instance(out, v)?;
    }

    writeln!(out, "sync groups:")?;
    if c.sync_groups.is_empty() {
        writeln!(out, "  (none)")?;
    }
    for sg in &c.sync_groups {
        writeln!(out, "  {}: {}", sg.name, sg.members.join(", "))?;
    }

    writeln!(out, "routes:")?;
    writeln!(out, "  connected subnets of each port's own addresses")?;
    for r in &c.routes {
        writeln!(out, "  {} via {} port {}", r.to, r.via, r.port)?;
    }
    writeln!(
        out,
        "  kernel main table: {}",
        if c.kernel_routes {
            "mirrored"
        } else {
            "not mirrored"
        }
    )?;
    Ok(())
}

/// Which queues each worker will serve, and through which worker it sends
/// on a port where it serves none.
fn write_workers(out: &mut String, c: &Config, rx_queues: RxQueues<'_>) -> std::fmt::Result {
    let cores = &c.dataplane.cores;
    let n = cores.len().max(1);
    writeln!(out, "workers:")?;
    for (w, core) in cores.iter().enumerate() {
        let mut served = Vec::new();
        let mut via = Vec::new();
        for p in &c.ports {
            let ids = match (&p.queues, rx_queues(&p.name)) {
                (Queues::List(ids), _) => Some(ids.clone()),
                (Queues::All, Some(count)) => Some(p.queues.resolve(count)),
                (Queues::All, None) => None,
            };
            match ids {
                Some(ids) => {
                    let mine: Vec<String> = ids
                        .iter()
                        .enumerate()
                        .filter(|(i, _)| queue_worker(*i, n) == w)
                        .map(|(_, q)| q.to_string())
                        .collect();
                    match mine.len() {
                        0 => via.push(p.name.clone()),
                        1 => served.push(format!("{} queue {}", p.name, mine.join(","))),
                        _ => served.push(format!("{} queues {}", p.name, mine.join(","))),
                    }
                }
                None if n == 1 => served.push(format!("{} all queues", p.name)),
                None => served.push(format!(
                    "{} queues {w}, {}, ... (of all: {} is not here, counted at start)",
                    p.name,
                    w + n,
                    p.name
                )),
            }
        }
        let served = if served.is_empty() {
            "no queue (not started)".to_string()
        } else {
            served.join("; ")
        };
        write!(out, "  worker {w} (core {core}): {served}")?;
        if !via.is_empty() && !c.ports.is_empty() {
            write!(out, "; sends on {} through worker 0", via.join(", "))?;
        }
        writeln!(out)?;
    }
    Ok(())
}

/// The checksum an instance's adverts carry, as the plan names it.
pub(super) fn checksum_name(v: &RouterSpec) -> &'static str {
    match (v.version, v.is_ipv6(), v.checksum) {
        (Version::V2, _, _) => "VRRPv2",
        (_, true, _) => "IPv6 pseudo-header",
        (_, false, ChecksumMode::Rfc9568) => "rfc9568",
        (_, false, ChecksumMode::PseudoHeader) => "pseudo-header",
    }
}

fn write_instance(out: &mut String, v: &RouterSpec) -> std::fmt::Result {
    let family = if v.is_ipv6() { "IPv6" } else { "IPv4" };
    let mac = v.vmac;
    writeln!(
        out,
        "  {}: port {}, vrid {}, VRRPv{} {family}, vmac {mac}",
        v.name, v.port, v.vrid, v.version
    )?;
    let role = if v.priority == 255 {
        " (address owner)"
    } else {
        ""
    };
    writeln!(
        out,
        "    priority {}{role}, advert every {}, skew {}, master down after {}",
        v.priority,
        format_duration(v.advert_interval()),
        format_duration(v.skew_time()),
        format_duration(v.master_down_interval())
    )?;
    let preempt = if v.preempt {
        format!("on, delay {}", format_duration(v.preempt_delay))
    } else {
        "off".to_string()
    };
    let checksum = checksum_name(v);
    writeln!(
        out,
        "    preempt {preempt}, accept {}, checksum {checksum}",
        if v.accept { "on" } else { "off" }
    )?;
    let addrs: Vec<String> = v.addresses.iter().map(ToString::to_string).collect();
    writeln!(out, "    addresses {}", addrs.join(", "))?;
    if let Some(ll) = v.derived_link_local() {
        writeln!(
            out,
            "    first advertised address {ll} (link-local, derived from the virtual MAC: RFC 9568 wants a link-local first)"
        )?;
    }
    if v.unicast_peers.is_empty() {
        let group = if v.is_ipv6() {
            "ff02::12"
        } else {
            "224.0.0.18"
        };
        writeln!(out, "    advertise to {group}")?;
    } else {
        let peers: Vec<String> = v.unicast_peers.iter().map(ToString::to_string).collect();
        writeln!(out, "    advertise by unicast to {}", peers.join(", "))?;
    }
    let refresh = if v.garp.refresh.is_zero() {
        "off".to_string()
    } else {
        format!("every {}", format_duration(v.garp.refresh))
    };
    let announce = if v.is_ipv6() {
        "unsolicited NA"
    } else {
        "gratuitous ARP"
    };
    writeln!(
        out,
        "    {announce}: {} every {}, refresh {refresh}",
        v.garp.count,
        format_duration(v.garp.interval)
    )?;
    for t in &v.track {
        writeln!(out, "    track {}: weight {:+}", t.target, t.weight)?;
    }
    Ok(())
}
