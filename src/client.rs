//! Client commands: one request over the control socket, a readable answer.

use std::{path::Path, time::Duration};

use anyhow::{bail, Context};
use serde_json::{json, Value};
use xvrrp_control::ctl_socket;

const TIMEOUT: Duration = Duration::from_secs(5);

/// Sends `req` and returns the reply object, turning `ok: false` into an error.
pub fn call(socket: &Path, req: &Value) -> anyhow::Result<Value> {
    // The error's own message already names the socket and the cause.
    let reply = ctl_socket::request(socket, req, TIMEOUT).map_err(|e| anyhow::anyhow!("{e}"))?;
    if reply.get("ok").and_then(Value::as_bool) == Some(true) {
        return Ok(reply);
    }
    let msg = reply
        .pointer("/error/message")
        .and_then(Value::as_str)
        .unwrap_or("the daemon refused the request");
    bail!("{msg}")
}

/// `xvrrp status`.
pub fn status(socket: &Path, as_json: bool) -> anyhow::Result<()> {
    let reply = call(socket, &json!({"cmd": "status"}))?;
    if as_json {
        println!(
            "{}",
            serde_json::to_string_pretty(&reply).context("encoding JSON")?
        );
        return Ok(());
    }
    println!(
        "{:<16} {:<6} {:>4} {:<17} {:>9} {:<26} {:>11} {:>10}",
        "INSTANCE", "PORT", "VRID", "STATE", "PRIORITY", "MASTER", "TRANSITIONS", "SINCE"
    );
    for inst in reply
        .get("instances")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let s = |k: &str| {
            inst.get(k)
                .and_then(Value::as_str)
                .unwrap_or("-")
                .to_string()
        };
        let n = |k: &str| inst.get(k).and_then(Value::as_u64).unwrap_or(0);
        let prio = format!("{}/{}", n("priority"), n("effective_priority"));
        let since = inst.get("since_ms").and_then(Value::as_u64).map_or_else(
            || "-".to_string(),
            |ms| format!("{:.1}s", ms as f64 / 1000.0),
        );
        // A drained instance shows it beside its state: "master (draining)".
        let state = match inst.get("drain").and_then(Value::as_str) {
            Some(drain) => format!("{} ({drain})", s("state")),
            None => s("state"),
        };
        println!(
            "{:<16} {:<6} {:>4} {:<17} {:>9} {:<26} {:>11} {:>10}",
            s("name"),
            s("port"),
            n("vrid"),
            state,
            prio,
            s("master"),
            n("transitions"),
            since
        );
    }
    print_dataplane(&reply);
    Ok(())
}

/// One line per port: XDP mode, socket mode, and the worker of each queue.
fn print_dataplane(reply: &Value) {
    let Some(ports) = reply.pointer("/dataplane/ports").and_then(Value::as_array) else {
        return;
    };
    println!();
    println!(
        "{:<8} {:<8} {:<10} QUEUE→WORKER (CORE)",
        "PORT", "XDP", "SOCKETS"
    );
    for p in ports {
        let s = |k: &str| p.get(k).and_then(Value::as_str).unwrap_or("-");
        let queues: Vec<String> = p
            .get("queues")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .map(|q| {
                let n = |k: &str| q.get(k).and_then(Value::as_u64);
                let core = n("core").map_or_else(String::new, |c| format!(" (core {c})"));
                format!(
                    "{}→{}{core}",
                    n("queue").unwrap_or(0),
                    n("worker").unwrap_or(0)
                )
            })
            .collect();
        println!(
            "{:<8} {:<8} {:<10} {}",
            s("name"),
            s("xdp_mode"),
            s("socket_mode"),
            queues.join(", ")
        );
    }
}

fn print_stats(reply: &Value) {
    let Some(ports) = reply.get("ports").and_then(Value::as_object) else {
        return;
    };
    for (port, pv) in ports {
        print_xdp(port, pv);
        let Some(workers) = pv.get("workers").and_then(Value::as_object) else {
            continue;
        };
        for (w, wv) in workers {
            let get = |v: &Value, k: &str| v.get(k).and_then(Value::as_u64).unwrap_or(0);
            println!(
                "{port} worker {w}: rx {} tx {} forwarded {} checksum-completed {} handed-off {} \
                 punted {} arp-replies {} nd-replies {} icmp-replies {} icmp-errors {} \
                 adverts-rescued {}",
                get(wv, "rx"),
                get(wv, "tx"),
                get(wv, "forwarded"),
                get(wv, "checksum_completed"),
                get(wv, "handed_off"),
                get(wv, "punted"),
                get(wv, "arp_replies"),
                get(wv, "nd_replies"),
                get(wv, "icmp_replies"),
                get(wv, "icmp_errors"),
                get(wv, "adverts_rescued"),
            );
            if let Some(xsk) = wv.get("xsk").and_then(Value::as_object) {
                let fields: Vec<String> = xsk
                    .iter()
                    .map(|(k, v)| match v.as_u64() {
                        Some(n) => format!("{k}={n}"),
                        None => format!("{k}=-"),
                    })
                    .collect();
                println!("  xsk: {}", fields.join(" "));
            }
            print_nonzero("drops", wv.get("drops"));
        }
    }
}

/// The XDP filter's line of a port: what it handed to the workers, the
/// frames from our virtual MACs, and its drops (the non-zero ones).
fn print_xdp(port: &str, pv: &Value) {
    let Some(xdp) = pv.get("xdp") else {
        return;
    };
    let get = |k: &str| xdp.get(k).and_then(Value::as_u64).unwrap_or(0);
    println!(
        "{port} xdp: adverts-passed {} master-adverts {} vmac-conflicts {}",
        get("adverts_passed"),
        get("master_adverts"),
        get("vmac_conflicts"),
    );
    print_nonzero("xdp drops", pv.get("xdp_drops"));
}

/// `  LABEL: key=n ...` for the non-zero counters of `counters` (an
/// object of drop reasons), if any.
fn print_nonzero(label: &str, counters: Option<&Value>) {
    let Some(counters) = counters.and_then(Value::as_object) else {
        return;
    };
    let nonzero: Vec<String> = counters
        .iter()
        .filter(|(_, v)| v.as_u64().unwrap_or(0) > 0)
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    if !nonzero.is_empty() {
        println!("  {label}: {}", nonzero.join(" "));
    }
}

/// `xvrrp stats` (`--watch` is [`crate::watch::run`]).
pub fn stats(socket: &Path, as_json: bool) -> anyhow::Result<()> {
    let reply = call(socket, &json!({"cmd": "stats"}))?;
    if as_json {
        return print_json(&reply);
    }
    print_stats(&reply);
    Ok(())
}

/// `xvrrp priority NAME N`.
pub fn priority(socket: &Path, name: &str, priority: u8, as_json: bool) -> anyhow::Result<()> {
    let reply = call(
        socket,
        &json!({"cmd": "priority", "name": name, "priority": priority}),
    )?;
    if as_json {
        return print_json(&reply);
    }
    println!("{name}: priority {priority}");
    Ok(())
}

/// `xvrrp reload`: the daemon re-reads its configuration file; prints
/// which instances are unchanged, changed (with the keys, and whether the
/// instance started over), added and removed.
pub fn reload(socket: &Path, as_json: bool) -> anyhow::Result<()> {
    let reply = call(socket, &json!({"cmd": "reload"}))?;
    if as_json {
        println!(
            "{}",
            serde_json::to_string_pretty(&reply).context("encoding JSON")?
        );
        return Ok(());
    }
    let names = |k: &str| -> Vec<String> {
        reply
            .get(k)
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(|v| v.as_str().map(str::to_string))
            .collect()
    };
    let changed: Vec<String> = reply
        .get("changed")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .map(|c| {
            let keys: Vec<&str> = c
                .get("keys")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
                .collect();
            let restart = c.get("restart").and_then(Value::as_bool) == Some(true);
            format!(
                "{} ({}{})",
                c.get("name").and_then(Value::as_str).unwrap_or("-"),
                keys.join(", "),
                if restart { "; restarted" } else { "" }
            )
        })
        .collect();
    println!("configuration reloaded");
    for (label, list) in [
        ("unchanged", names("unchanged")),
        ("changed", changed),
        ("added", names("added")),
        ("removed", names("removed")),
    ] {
        let text = if list.is_empty() {
            "-".to_string()
        } else {
            list.join(", ")
        };
        println!("  {label:<10} {text}");
    }
    for (key, label) in [
        ("routes_changed", "static routes changed"),
        ("sync_groups_changed", "sync groups changed"),
    ] {
        if reply.get(key).and_then(Value::as_bool) == Some(true) {
            println!("  {label}");
        }
    }
    Ok(())
}

/// Prints `rows` under `header` in columns as wide as their widest cell.
fn print_table(header: &[&str], rows: &[Vec<String>]) {
    print!("{}", format_table(header, rows));
}

/// `rows` under `header` in columns as wide as their widest cell, one line
/// each.
pub fn format_table(header: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = header.iter().map(|h| h.len()).collect();
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.len());
        }
    }
    let mut out = String::new();
    let mut line = |cells: &mut dyn Iterator<Item = &str>| {
        let padded: Vec<String> = cells
            .zip(&widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect();
        out.push_str(padded.join("  ").trim_end());
        out.push('\n');
    };
    line(&mut header.iter().copied());
    for row in rows {
        line(&mut row.iter().map(String::as_str));
    }
    out
}

fn text(v: &Value, key: &str) -> String {
    v.get(key)
        .and_then(Value::as_str)
        .unwrap_or("-")
        .to_string()
}

fn print_json(reply: &Value) -> anyhow::Result<()> {
    println!(
        "{}",
        serde_json::to_string_pretty(reply).context("encoding JSON")?
    );
    Ok(())
}

/// `xvrrp routes`.
pub fn routes(socket: &Path, as_json: bool) -> anyhow::Result<()> {
    let reply = call(socket, &json!({"cmd": "routes"}))?;
    if as_json {
        return print_json(&reply);
    }
    let rows: Vec<Vec<String>> = reply
        .get("routes")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .map(|r| {
            vec![
                text(r, "to"),
                text(r, "via"),
                text(r, "port"),
                text(r, "origin"),
            ]
        })
        .collect();
    print_table(&["DESTINATION", "VIA", "PORT", "ORIGIN"], &rows);
    let n = |k: &str| reply.get(k).and_then(Value::as_u64).unwrap_or(0);
    if n("total") > n("shown") {
        println!(
            "... and {} more (the first {} are shown)",
            n("total") - n("shown"),
            n("shown")
        );
    }
    if reply.get("kernel").and_then(Value::as_bool) == Some(false) {
        println!("(the kernel's routing table is not mirrored: [routes] kernel = false)");
    }
    Ok(())
}

/// A worker copy older than this is asked again once before printing.
const STALE_COPY_MS: u64 = 250;
/// How long a worker gets to publish the fresh copy asked for.
const COPY_WAIT: Duration = Duration::from_millis(100);

/// `xvrrp neighbors`.
pub fn neighbors(socket: &Path, as_json: bool) -> anyhow::Result<()> {
    let req = json!({"cmd": "neighbors"});
    let mut reply = call(socket, &req)?;
    // Each request asks the workers for a fresh copy of their tables and
    // answers with the copies they have: ask again when one is old.
    let stale = reply
        .get("workers")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .any(|w| {
            w.get("copy_age_ms")
                .and_then(Value::as_u64)
                .is_none_or(|age| age > STALE_COPY_MS)
        });
    if stale {
        std::thread::sleep(COPY_WAIT);
        reply = call(socket, &req)?;
    }
    if as_json {
        return print_json(&reply);
    }
    let rows: Vec<Vec<String>> = reply
        .get("neighbors")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .map(|e| {
            let age = e.get("age_ms").and_then(Value::as_u64).unwrap_or(0);
            let worker = e.get("worker").and_then(Value::as_u64).unwrap_or(0);
            vec![
                text(e, "address"),
                text(e, "mac"),
                text(e, "port"),
                text(e, "state"),
                format!("{:.1}s", age as f64 / 1000.0),
                worker.to_string(),
            ]
        })
        .collect();
    print_table(&["ADDRESS", "MAC", "PORT", "STATE", "AGE", "WORKER"], &rows);
    Ok(())
}
