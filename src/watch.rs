//! `xvrrp stats --watch`: a live view of the fast path, per port and per
//! worker: packets per second received, sent, forwarded and punted, and the
//! drops by reason (only the reasons that have counted something).
//!
//! Rates are the differences between two `stats` replies divided by the
//! time between them as this client measured it. On a terminal each view
//! replaces the previous one in place; piped, the views follow one another
//! separated by a blank line. Ctrl-C (or SIGTERM) ends the watch with exit
//! status 0; a daemon that goes away ends it with one line and status 1.

use std::collections::BTreeMap;
use std::io::{IsTerminal, Write};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use serde_json::{json, Map, Value};

use crate::client::{call, format_table};

/// Clears the screen and moves the cursor home (ANSI).
const CLEAR: &str = "\x1b[H\x1b[2J";
/// How often the sleep between two samples looks at the stop flag.
const STOP_POLL: Duration = Duration::from_millis(50);

/// The counters of one worker on one port, from a `stats` reply.
#[derive(Debug, Clone, Default, PartialEq)]
struct WorkerCounters {
    rx: u64,
    tx: u64,
    forwarded: u64,
    punted: u64,
    /// Drop reason → count.
    drops: BTreeMap<String, u64>,
}

/// One port's counters: its workers (by index) and its XDP filter's drops.
#[derive(Debug, Clone, Default, PartialEq)]
struct PortCounters {
    workers: BTreeMap<u32, WorkerCounters>,
    xdp_drops: BTreeMap<String, u64>,
}

/// The counters of a `stats` reply that the watch shows, by port name.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Snapshot {
    ports: BTreeMap<String, PortCounters>,
}

fn counters(v: Option<&Value>) -> BTreeMap<String, u64> {
    v.and_then(Value::as_object)
        .into_iter()
        .flatten()
        .filter_map(|(k, n)| Some((k.clone(), n.as_u64()?)))
        .collect()
}

impl Snapshot {
    /// The counters of a `stats` reply; what is missing counts as zero.
    pub fn from_reply(reply: &Value) -> Snapshot {
        let mut ports = BTreeMap::new();
        for (name, pv) in reply
            .get("ports")
            .and_then(Value::as_object)
            .into_iter()
            .flatten()
        {
            let mut workers = BTreeMap::new();
            for (w, wv) in pv
                .get("workers")
                .and_then(Value::as_object)
                .into_iter()
                .flatten()
            {
                let Ok(index) = w.parse::<u32>() else {
                    continue;
                };
                let n = |k: &str| wv.get(k).and_then(Value::as_u64).unwrap_or(0);
                workers.insert(
                    index,
                    WorkerCounters {
                        rx: n("rx"),
                        tx: n("tx"),
                        forwarded: n("forwarded"),
                        punted: n("punted"),
                        drops: counters(wv.get("drops")),
                    },
                );
            }
            let xdp_drops = counters(pv.get("xdp_drops"));
            ports.insert(name.clone(), PortCounters { workers, xdp_drops });
        }
        Snapshot { ports }
    }
}

/// A drop reason that has counted something: its rate and its total.
#[derive(Debug, Clone, PartialEq)]
pub struct DropRate {
    pub reason: String,
    pub per_sec: f64,
    pub total: u64,
}

/// The rates of one worker on one port over an interval.
#[derive(Debug, Clone, PartialEq)]
pub struct WorkerRates {
    pub port: String,
    pub worker: u32,
    pub rx: f64,
    pub tx: f64,
    pub forwarded: f64,
    pub punted: f64,
    /// Sum of the drop rates of every reason.
    pub dropped: f64,
    /// The reasons with a non-zero total, by name.
    pub drops: Vec<DropRate>,
}

/// The XDP filter's drops of one port with a non-zero total.
#[derive(Debug, Clone, PartialEq)]
pub struct XdpRates {
    pub port: String,
    pub drops: Vec<DropRate>,
}

/// The rates between two snapshots `secs` seconds apart.
#[derive(Debug, Clone, PartialEq)]
pub struct Rates {
    pub secs: f64,
    pub workers: Vec<WorkerRates>,
    pub xdp: Vec<XdpRates>,
}

/// `(new - old) / secs`; a counter that went back (a restarted daemon)
/// counts from zero.
fn rate(old: u64, new: u64, secs: f64) -> f64 {
    let delta = if new >= old { new - old } else { new };
    delta as f64 / secs
}

fn drop_rates(
    old: Option<&BTreeMap<String, u64>>,
    new: &BTreeMap<String, u64>,
    secs: f64,
) -> Vec<DropRate> {
    new.iter()
        .filter(|(_, total)| **total > 0)
        .map(|(reason, total)| {
            let before = old.and_then(|o| o.get(reason)).copied().unwrap_or(0);
            DropRate {
                reason: reason.clone(),
                per_sec: rate(before, *total, secs),
                total: *total,
            }
        })
        .collect()
}

/// The rates from `old` to `new`, taken `elapsed` apart. A worker or port
/// absent from `old` counts from zero.
pub fn rates(old: &Snapshot, new: &Snapshot, elapsed: Duration) -> Rates {
    // Replies taken back to back still divide by a positive time.
    let secs = elapsed.as_secs_f64().max(1e-3);
    let mut workers = Vec::new();
    let mut xdp = Vec::new();
    for (port, pc) in &new.ports {
        let old_port = old.ports.get(port);
        for (w, c) in &pc.workers {
            let before = old_port.and_then(|p| p.workers.get(w));
            let zero = WorkerCounters::default();
            let b = before.unwrap_or(&zero);
            let drops = drop_rates(before.map(|b| &b.drops), &c.drops, secs);
            let dropped = c
                .drops
                .iter()
                .map(|(r, n)| rate(b.drops.get(r).copied().unwrap_or(0), *n, secs))
                .sum();
            workers.push(WorkerRates {
                port: port.clone(),
                worker: *w,
                rx: rate(b.rx, c.rx, secs),
                tx: rate(b.tx, c.tx, secs),
                forwarded: rate(b.forwarded, c.forwarded, secs),
                punted: rate(b.punted, c.punted, secs),
                dropped,
                drops,
            });
        }
        let drops = drop_rates(old_port.map(|p| &p.xdp_drops), &pc.xdp_drops, secs);
        if !drops.is_empty() {
            xdp.push(XdpRates {
                port: port.clone(),
                drops,
            });
        }
    }
    Rates { secs, workers, xdp }
}

fn per_sec(v: f64) -> String {
    format!("{v:.0}")
}

fn drop_list(drops: &[DropRate]) -> String {
    drops
        .iter()
        .map(|d| format!("{} {:.0}/s ({})", d.reason, d.per_sec, d.total))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The text view of `r`: a table of rates, then the drop reasons.
pub fn render(r: &Rates) -> String {
    let mut out = format!(
        "xvrrp stats --watch: packets per second over {:.2} s\n",
        r.secs
    );
    let rows: Vec<Vec<String>> = r
        .workers
        .iter()
        .map(|w| {
            vec![
                w.port.clone(),
                w.worker.to_string(),
                per_sec(w.rx),
                per_sec(w.tx),
                per_sec(w.forwarded),
                per_sec(w.punted),
                per_sec(w.dropped),
            ]
        })
        .collect();
    out.push_str(&format_table(
        &[
            "PORT",
            "WORKER",
            "RX/s",
            "TX/s",
            "FORWARDED/s",
            "PUNTED/s",
            "DROPPED/s",
        ],
        &rows,
    ));
    let worker_drops = r.workers.iter().filter(|w| !w.drops.is_empty());
    let mut lines: Vec<String> = worker_drops
        .map(|w| format!("  {} worker {}: {}", w.port, w.worker, drop_list(&w.drops)))
        .collect();
    lines.extend(
        r.xdp
            .iter()
            .map(|x| format!("  {} xdp: {}", x.port, drop_list(&x.drops))),
    );
    if !lines.is_empty() {
        out.push_str("drops by reason (rate, total):\n");
        for l in lines {
            out.push_str(&l);
            out.push('\n');
        }
    }
    out
}

fn drops_json(drops: &[DropRate]) -> Value {
    let map: Map<String, Value> = drops
        .iter()
        .map(|d| {
            (
                d.reason.clone(),
                json!({"per_sec": d.per_sec, "total": d.total}),
            )
        })
        .collect();
    Value::Object(map)
}

/// The JSON view of `r` (`stats --watch --json`: one line per interval).
pub fn to_json(r: &Rates) -> Value {
    let mut ports: Map<String, Value> = Map::new();
    for w in &r.workers {
        let port = ports
            .entry(w.port.clone())
            .or_insert_with(|| json!({"workers": {}}));
        port["workers"][w.worker.to_string()] = json!({
            "rx_pps": w.rx,
            "tx_pps": w.tx,
            "forwarded_pps": w.forwarded,
            "punted_pps": w.punted,
            "dropped_pps": w.dropped,
            "drops": drops_json(&w.drops),
        });
    }
    for x in &r.xdp {
        let port = ports
            .entry(x.port.clone())
            .or_insert_with(|| json!({"workers": {}}));
        port["xdp_drops"] = drops_json(&x.drops);
    }
    json!({"interval_s": r.secs, "ports": ports})
}

/// Sleeps `d`, or less if `stop` is raised; returns whether it was.
fn sleep_unless(stop: &AtomicBool, d: Duration) -> bool {
    let until = Instant::now() + d;
    loop {
        if stop.load(Ordering::Relaxed) {
            return true;
        }
        let left = until.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return false;
        }
        std::thread::sleep(left.min(STOP_POLL));
    }
}

/// `xvrrp stats --watch [--interval SECS] [--json]`: samples the daemon
/// every `interval` until Ctrl-C.
pub fn run(socket: &Path, as_json: bool, interval: Duration) -> anyhow::Result<()> {
    let stop = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(sig, Arc::clone(&stop))
            .context("installing the Ctrl-C handler")?;
    }
    let req = json!({"cmd": "stats"});
    let in_place = std::io::stdout().is_terminal() && !as_json;
    let sample = || -> anyhow::Result<(Snapshot, Instant)> {
        let reply = call(socket, &req)?;
        Ok((Snapshot::from_reply(&reply), Instant::now()))
    };
    let (mut old, mut old_at) = sample()?;
    let mut first = true;
    while !sleep_unless(&stop, interval) {
        let (new, at) = sample().context("the daemon went away")?;
        let r = rates(&old, &new, at.duration_since(old_at));
        let block = if as_json {
            format!(
                "{}\n",
                serde_json::to_string(&to_json(&r)).context("encoding JSON")?
            )
        } else if in_place {
            format!("{CLEAR}{}", render(&r))
        } else if first {
            render(&r)
        } else {
            format!("\n{}", render(&r))
        };
        let mut out = std::io::stdout().lock();
        // A reader that went away (`| head`) ends the watch quietly.
        if out
            .write_all(block.as_bytes())
            .and_then(|()| out.flush())
            .is_err()
        {
            return Ok(());
        }
        (old, old_at, first) = (new, at, false);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reply(rx: u64, fwd: u64, no_route: u64, xdp_bad: u64) -> Value {
        json!({"ok": true, "ports": {
            "lan0": {
                "workers": {"0": {"rx": rx, "tx": 3, "forwarded": fwd, "punted": 1,
                    "drops": {"no_route": no_route, "bad_ttl": 0}}},
                "xdp_drops": {"bad_vrrp": xdp_bad, "other": 0},
            },
        }})
    }

    #[test]
    fn rates_are_deltas_over_the_measured_time() {
        let old = Snapshot::from_reply(&reply(1000, 900, 10, 0));
        let new = Snapshot::from_reply(&reply(5000, 4900, 30, 4));
        let r = rates(&old, &new, Duration::from_millis(2000));
        assert_eq!(r.secs, 2.0);
        let w = &r.workers[0];
        assert_eq!((w.port.as_str(), w.worker), ("lan0", 0));
        assert_eq!(w.rx, 2000.0);
        assert_eq!(w.forwarded, 2000.0);
        assert_eq!(w.tx, 0.0);
        assert_eq!(w.punted, 0.0);
        assert_eq!(w.dropped, 10.0);
        // Only the reasons that counted something.
        assert_eq!(
            w.drops,
            [DropRate {
                reason: "no_route".into(),
                per_sec: 10.0,
                total: 30
            }]
        );
        assert_eq!(r.xdp.len(), 1);
        assert_eq!(r.xdp[0].drops[0].reason, "bad_vrrp");
        assert_eq!(r.xdp[0].drops[0].per_sec, 2.0);
    }

    #[test]
    fn a_counter_that_went_back_counts_from_zero() {
        let old = Snapshot::from_reply(&reply(5000, 0, 0, 0));
        let new = Snapshot::from_reply(&reply(100, 0, 0, 0));
        let r = rates(&old, &new, Duration::from_secs(1));
        assert_eq!(r.workers[0].rx, 100.0);
    }

    #[test]
    fn a_new_worker_counts_from_zero_and_no_time_divides_by_a_millisecond() {
        let r = rates(
            &Snapshot::default(),
            &Snapshot::from_reply(&reply(7, 0, 0, 0)),
            Duration::ZERO,
        );
        assert_eq!(r.workers[0].rx, 7000.0);
    }

    #[test]
    fn malformed_replies_give_empty_snapshots() {
        for v in [json!(null), json!({"ports": 3}), json!({"ports": {"x": 1}})] {
            let s = Snapshot::from_reply(&v);
            assert!(s.ports.values().all(|p| p.workers.is_empty()), "{v}");
        }
    }

    #[test]
    fn the_views_show_rates_and_nonzero_reasons() {
        let old = Snapshot::from_reply(&reply(0, 0, 0, 0));
        let new = Snapshot::from_reply(&reply(2000, 1990, 10, 0));
        let r = rates(&old, &new, Duration::from_secs(1));
        let text = render(&r);
        let row = text
            .lines()
            .find(|l| l.starts_with("lan0"))
            .expect("a row for lan0");
        let cells: Vec<&str> = row.split_whitespace().collect();
        // tx and punted did not move.
        assert_eq!(cells, ["lan0", "0", "2000", "0", "1990", "0", "10"]);
        assert!(text.contains("lan0 worker 0: no_route 10/s (10)"), "{text}");
        assert!(!text.contains("bad_ttl"), "{text}");
        assert!(!text.contains("xdp"), "{text}");
        let j = to_json(&r);
        assert_eq!(j["ports"]["lan0"]["workers"]["0"]["rx_pps"], 2000.0);
        assert_eq!(
            j["ports"]["lan0"]["workers"]["0"]["drops"]["no_route"]["total"],
            10
        );
    }
}
