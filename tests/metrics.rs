//! The Prometheus endpoint (`metrics_listen`): scraped with a plain TCP
//! client from inside the appliance's namespace, every line checked against
//! the text exposition format, key series checked for plausible values; and
//! clients that hang on the port do not move a 10 ms election.

#![allow(clippy::unwrap_used)]

mod common;

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use common::{
    gateway_config, lab, netns, setup, transitions, Pair, Rig, ELECTION_TIMEOUT, NO_STOP,
};

/// Where the appliances serve their metrics, inside their namespaces.
const METRICS: &str = "127.0.0.1:9477";

/// One sample line: name, labels, value.
#[derive(Debug, Clone)]
struct Sample {
    name: String,
    labels: BTreeMap<String, String>,
    value: f64,
}

/// An HTTP answer: status code, head (lower-cased), body.
struct Answer {
    status: u16,
    head: String,
    body: String,
}

/// Sends `request` to the metrics port of namespace `ns` and reads the
/// whole answer (the server closes the connection after it).
fn http(ns: &str, request: &str) -> Result<Answer> {
    let request = request.to_owned();
    netns::run_in(ns, move || {
        let mut s = TcpStream::connect(METRICS).context("connect to the metrics port")?;
        s.set_read_timeout(Some(Duration::from_secs(10)))?;
        s.write_all(request.as_bytes())?;
        let mut raw = Vec::new();
        s.read_to_end(&mut raw)?;
        let text = String::from_utf8(raw).context("answer is not UTF-8")?;
        let Some((head, body)) = text.split_once("\r\n\r\n") else {
            bail!("no end of head in {text:?}");
        };
        let status = head
            .split(' ')
            .nth(1)
            .and_then(|c| c.parse().ok())
            .with_context(|| format!("no status in {head:?}"))?;
        Ok(Answer {
            status,
            head: head.to_lowercase(),
            body: body.to_owned(),
        })
    })
}

fn scrape(ns: &str) -> Vec<Sample> {
    let a = http(ns, "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
    assert_eq!(a.status, 200, "{}", a.body);
    assert!(
        a.head.contains("content-type: text/plain; version=0.0.4"),
        "{}",
        a.head
    );
    parse(&a.body).unwrap_or_else(|e| panic!("{e:#}\n{}", a.body))
}

fn valid_name(s: &str, colon: bool) -> bool {
    let mut chars = s.chars();
    let ok_first = |c: char| c.is_ascii_alphabetic() || c == '_' || (colon && c == ':');
    chars.next().is_some_and(ok_first) && chars.all(|c| ok_first(c) || c.is_ascii_digit())
}

/// Parses exposition text: every line a HELP, a TYPE or a sample; a
/// family's TYPE before its samples, and its samples together; counters
/// named `_total`; valid metric and label names; label values with only
/// the format's escapes; values numbers.
fn parse(text: &str) -> Result<Vec<Sample>> {
    let mut out = Vec::new();
    let mut types: BTreeMap<String, String> = BTreeMap::new();
    let mut finished: Vec<String> = Vec::new();
    let mut current = String::new();
    for (n, line) in text.lines().enumerate() {
        let at = || format!("line {}: {line:?}", n + 1);
        if let Some(rest) = line.strip_prefix("# HELP ") {
            let (name, help) = rest.split_once(' ').with_context(at)?;
            if !valid_name(name, true) || help.is_empty() {
                bail!("bad HELP, {}", at());
            }
            continue;
        }
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').with_context(at)?;
            if !["counter", "gauge", "histogram", "summary", "untyped"].contains(&kind) {
                bail!("bad TYPE, {}", at());
            }
            if kind == "counter" && !name.ends_with("_total") {
                bail!("counter not named _total, {}", at());
            }
            if types.insert(name.to_owned(), kind.to_owned()).is_some() {
                bail!("TYPE repeated, {}", at());
            }
            continue;
        }
        if line.starts_with('#') || line.is_empty() {
            bail!("unexpected, {}", at());
        }
        // name{labels} value
        let (name, rest) = match line.find(['{', ' ']) {
            Some(i) => line.split_at(i),
            None => bail!("no value, {}", at()),
        };
        if !valid_name(name, true) {
            bail!("bad metric name, {}", at());
        }
        if !types.contains_key(name) {
            bail!("sample before its TYPE, {}", at());
        }
        if name != current {
            if finished.contains(&name.to_owned()) {
                bail!("family {name} not contiguous, {}", at());
            }
            finished.push(std::mem::replace(&mut current, name.to_owned()));
        }
        let mut labels = BTreeMap::new();
        let mut rest = rest;
        if let Some(r) = rest.strip_prefix('{') {
            let mut chars = r.char_indices().peekable();
            let end = loop {
                // label name
                let start = chars.peek().map(|(i, _)| *i).with_context(at)?;
                if r[start..].starts_with('}') {
                    break start + 1;
                }
                let eq = r[start..].find('=').with_context(at)? + start;
                let lname = &r[start..eq];
                if !valid_name(lname, false) {
                    bail!("bad label name {lname:?}, {}", at());
                }
                while chars.peek().is_some_and(|(i, _)| *i <= eq) {
                    chars.next();
                }
                if chars.next().map(|(_, c)| c) != Some('"') {
                    bail!("label value not quoted, {}", at());
                }
                let mut value = String::new();
                loop {
                    match chars.next().with_context(at)?.1 {
                        '"' => break,
                        '\\' => match chars.next().with_context(at)?.1 {
                            '\\' => value.push('\\'),
                            '"' => value.push('"'),
                            'n' => value.push('\n'),
                            c => bail!("bad escape \\{c}, {}", at()),
                        },
                        '\n' => bail!("raw newline, {}", at()),
                        c => value.push(c),
                    }
                }
                labels.insert(lname.to_owned(), value);
                match chars.next().with_context(at)? {
                    (_, ',') => {}
                    (i, '}') => break i + 1,
                    _ => bail!("bad label list, {}", at()),
                }
            };
            rest = &r[end..];
        }
        let value = rest.strip_prefix(' ').with_context(at)?;
        let value: f64 = match value {
            "+Inf" => f64::INFINITY,
            "-Inf" => f64::NEG_INFINITY,
            v => v.parse().with_context(|| format!("bad value, {}", at()))?,
        };
        out.push(Sample {
            name: name.to_owned(),
            labels,
            value,
        });
    }
    if out.is_empty() {
        bail!("no samples");
    }
    Ok(out)
}

/// The value of the one sample of `name` whose labels include `labels`
/// (summed when several match); `None` when none does.
fn value(samples: &[Sample], name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    let matching: Vec<f64> = samples
        .iter()
        .filter(|s| s.name == name)
        .filter(|s| {
            labels
                .iter()
                .all(|(k, v)| s.labels.get(*k).map(String::as_str) == Some(*v))
        })
        .map(|s| s.value)
        .collect();
    (!matching.is_empty()).then(|| matching.iter().sum())
}

fn with_metrics(lab: &lab::Lab, name: &str, priority: u8) -> lab::ApplianceConfig {
    let mut c = gateway_config(lab, name, priority);
    c.metrics_listen = Some(METRICS.to_owned());
    c
}

#[test]
fn metrics_are_served_in_the_exposition_format_with_live_figures() {
    let Some(lab) = setup("metrics_are_served_in_the_exposition_format_with_live_figures") else {
        return;
    };
    let mut pair = Pair::start(
        &lab,
        &with_metrics(&lab, "a", 200),
        &with_metrics(&lab, "b", 100),
    );
    pair.wait_a_master(ELECTION_TIMEOUT);
    let rig = Rig { pair, lab };
    let ns_a = rig.lab.ns("gw-a");
    let first = scrape(&ns_a);
    for (instance, state) in [("lan-gw", "master"), ("wan-gw", "master")] {
        assert_eq!(
            value(
                &first,
                "xvrrp_instance_state",
                &[("instance", instance), ("state", state)]
            ),
            Some(1.0)
        );
        assert_eq!(
            value(
                &first,
                "xvrrp_instance_state",
                &[("instance", instance), ("state", "backup")]
            ),
            Some(0.0)
        );
        assert_eq!(
            value(&first, "xvrrp_instance_priority", &[("instance", instance)]),
            Some(200.0)
        );
        assert_eq!(
            value(
                &first,
                "xvrrp_instance_effective_priority",
                &[("instance", instance)]
            ),
            Some(200.0)
        );
        assert!(value(
            &first,
            "xvrrp_instance_transitions_total",
            &[("instance", instance)]
        )
        .is_some_and(|n| n >= 1.0));
    }
    // B is backup from its start; that it has heard A yet is another
    // matter: wait for its first advert from A before reading its figures.
    let heard = lab::wait_until("B to hear A", Duration::from_secs(5), &NO_STOP, || {
        let status = rig.pair.b.query(&["status"])?;
        let heard = lab::instances(&status)
            .filter(|i| i["name"] == "lan-gw")
            .any(|i| i["adverts_rx"].as_u64().is_some_and(|n| n > 0));
        Ok(heard)
    });
    rig.pair.check(heard);
    let b = scrape(&rig.lab.ns("gw-b"));
    assert_eq!(
        value(
            &b,
            "xvrrp_instance_state",
            &[("instance", "lan-gw"), ("state", "backup")]
        ),
        Some(1.0)
    );
    assert!(value(
        &b,
        "xvrrp_instance_adverts_received_total",
        &[("instance", "lan-gw")]
    )
    .is_some_and(|n| n > 0.0));
    for name in [
        "xvrrp_build_info",
        "xvrrp_control_late_wakeups_total",
        "xvrrp_port_drops_total",
        "xvrrp_xdp_drops_total",
        "xvrrp_xsk_rx_dropped_total",
        "xvrrp_worker_idle_sleeps_total",
        "xvrrp_control_drops_total",
        "xvrrp_notify_queue_overflows_total",
    ] {
        assert!(value(&first, name, &[]).is_some(), "no {name}");
    }
    assert!(value(&first, "xvrrp_uptime_seconds", &[]).is_some_and(|s| s > 0.0));

    // Adverts out increase between two scrapes; forwarded frames appear
    // after a flow through the gateway.
    let adverts = |s: &[Sample]| {
        value(
            s,
            "xvrrp_instance_adverts_sent_total",
            &[("instance", "lan-gw")],
        )
        .unwrap()
    };
    let forwarded = |s: &[Sample]| {
        value(
            s,
            "xvrrp_port_packets_total",
            &[("port", "wan0"), ("kind", "forwarded")],
        )
        .unwrap()
    };
    let before = forwarded(&first);
    let flow = rig.flowing(500);
    std::thread::sleep(Duration::from_millis(500));
    drop(flow);
    let second = scrape(&ns_a);
    assert!(
        adverts(&second) > adverts(&first),
        "adverts out did not move"
    );
    assert!(
        forwarded(&second) > before,
        "no forwarded frames counted after a flow"
    );
    assert!(value(
        &second,
        "xvrrp_port_packets_total",
        &[("port", "lan0"), ("kind", "rx")]
    )
    .is_some_and(|n| n > 0.0));
    // Bytes: at least the smallest Ethernet frame for each frame counted.
    let bytes = |s: &[Sample], port: &str, direction: &str| {
        value(
            s,
            "xvrrp_port_bytes_total",
            &[("port", port), ("direction", direction)],
        )
        .unwrap()
    };
    let tx_frames = value(
        &second,
        "xvrrp_port_packets_total",
        &[("port", "wan0"), ("kind", "tx")],
    )
    .unwrap();
    assert!(bytes(&second, "wan0", "tx") >= 60.0 * tx_frames);
    assert!(bytes(&second, "lan0", "rx") > bytes(&first, "lan0", "rx"));

    // What storing the figures costs the control thread, per pass.
    let passes = value(&second, "xvrrp_control_passes_total", &[]).unwrap();
    let spent = value(&second, "xvrrp_control_metrics_update_seconds_total", &[]).unwrap();
    assert!(passes > 0.0);
    let per_pass_us = spent / passes * 1e6;
    println!(
        "metrics figures: {passes} passes, {per_pass_us:.3} µs per pass on the control thread"
    );
    assert!(per_pass_us < 50.0, "{per_pass_us} µs per pass");

    // Unknown paths, other methods, other protocols.
    let a = http(&ns_a, "GET /nope HTTP/1.1\r\n\r\n").unwrap();
    assert_eq!(a.status, 404);
    let a = http(&ns_a, "POST /metrics HTTP/1.1\r\nContent-Length: 0\r\n\r\n").unwrap();
    assert_eq!(a.status, 405);
    assert!(a.head.contains("allow: get"), "{}", a.head);
    let a = http(&ns_a, "nonsense\r\n\r\n").unwrap();
    assert_eq!(a.status, 400);
    let a = http(
        &ns_a,
        &format!("GET /{} HTTP/1.1\r\n\r\n", "x".repeat(10_000)),
    )
    .unwrap();
    assert_eq!(a.status, 431);
}

#[test]
fn clients_hanging_on_the_metrics_port_do_not_move_a_10ms_election() {
    let Some(lab) = setup("clients_hanging_on_the_metrics_port_do_not_move_a_10ms_election") else {
        return;
    };
    let (mut a, mut b) = (with_metrics(&lab, "a", 200), with_metrics(&lab, "b", 100));
    a.advert_interval = "10ms".to_owned();
    b.advert_interval = "10ms".to_owned();
    let mut pair = Pair::start(&lab, &a, &b);
    pair.wait_a_master(ELECTION_TIMEOUT);
    // Let the pair settle before counting.
    std::thread::sleep(Duration::from_secs(1));
    let ns_a = lab.ns("gw-a");
    let probe = xvrrp_lab::stall_probe::StallProbe::start().unwrap();
    let before = (transitions(&pair.a).unwrap(), transitions(&pair.b).unwrap());

    // 200 clients that connect and send nothing, 50 that send a request
    // and never read the answer, all held for 4 s.
    let held = netns::run_in(&ns_a, move || {
        let mut held = Vec::new();
        for _ in 0..200 {
            held.push(TcpStream::connect(METRICS)?);
        }
        for _ in 0..50 {
            let mut s = TcpStream::connect(METRICS)?;
            // A scrape request, then nothing read (and the write may fail
            // once the server has closed a connection it could not serve).
            let _ = s.write_all(b"GET /metrics HTTP/1.1\r\n\r\n");
            held.push(s);
        }
        Ok(held)
    })
    .unwrap();
    std::thread::sleep(Duration::from_secs(4));
    let after = (transitions(&pair.a).unwrap(), transitions(&pair.b).unwrap());
    drop(held);
    let stalls = probe.finish().unwrap();
    println!(
        "the machine's own worst stall meanwhile: {:.1} ms",
        stalls.max.as_secs_f64() * 1000.0
    );
    if before != after && common::machine_stalled(&stalls) {
        println!("NOT COUNTED: transitions {before:?} → {after:?} during a machine stall");
    } else {
        assert_eq!(
            before,
            after,
            "transitions while clients hung on the metrics port\n{}",
            pair.logs()
        );
    }
    // The endpoint serves again once they are gone, and counted the ones
    // it turned away.
    let r = lab::wait_until(
        "a scrape after the hanging clients",
        Duration::from_secs(20),
        &NO_STOP,
        || Ok(http(&ns_a, "GET /metrics HTTP/1.1\r\n\r\n").is_ok_and(|a| a.status == 200)),
    );
    pair.check(r);
    let s = scrape(&ns_a);
    assert!(value(&s, "xvrrp_metrics_connections_rejected_total", &[]).is_some_and(|n| n > 0.0));
    assert_eq!(
        value(
            &s,
            "xvrrp_instance_state",
            &[("instance", "lan-gw"), ("state", "master")]
        ),
        Some(1.0)
    );
}
