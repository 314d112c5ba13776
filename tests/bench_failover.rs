//! `xvrrp bench failover` and `xvrrp bench control` end to end: one short
//! run of each in its own lab, checked for behaviour only (the JSON they
//! promise, a failover that happened, nothing left behind), never for
//! speed: this machine's timings depend on what else runs on it.

#![allow(clippy::unwrap_used)]

mod common;

use std::process::{Command, Output};

use serde_json::Value;

/// Runs `xvrrp ARGS...`, fails the test with its stderr if it fails, and
/// parses its stdout as one JSON object.
fn run_json(args: &[&str]) -> (Value, String) {
    let out: Output = Command::new(common::XVRRP).args(args).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(
        out.status.success(),
        "xvrrp {} failed:\n{stderr}",
        args.join(" ")
    );
    let json = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "stdout is not one JSON object ({e}):\n{}\nstderr:\n{stderr}",
            String::from_utf8_lossy(&out.stdout)
        )
    });
    (json, stderr)
}

/// Nothing of lab `prefix` is left: no namespace, so no process in one.
fn assert_lab_gone(prefix: &str) {
    let list = Command::new("ip").args(["netns", "list"]).output().unwrap();
    let list = String::from_utf8_lossy(&list.stdout);
    assert!(
        !list.lines().any(|l| l.starts_with(&format!("{prefix}-"))),
        "lab {prefix} left behind:\n{list}"
    );
}

fn str_field<'a>(v: &'a Value, key: &str) -> &'a str {
    v.get(key)
        .and_then(Value::as_str)
        .unwrap_or_else(|| panic!("no string {key:?} in {v}"))
}

fn num_field(v: &Value, key: &str) -> f64 {
    v.get(key)
        .and_then(Value::as_f64)
        .unwrap_or_else(|| panic!("no number {key:?} in {v}"))
}

#[test]
fn bench_failover_kill_reports_a_finite_gap_for_both_pairs() {
    let test = "bench_failover_kill_reports_a_finite_gap_for_both_pairs";
    if !common::supported(test) {
        return;
    }
    common::require(&["ip", "ethtool", "/usr/sbin/keepalived"]);
    let prefix = common::prefix_for(test);
    let dir = common::WorkDir::create(&prefix).unwrap();
    let svg = dir.path().join("failover.svg");
    let svg_arg = svg.to_string_lossy().into_owned();
    let (report, stderr) = run_json(&[
        "bench",
        "failover",
        "--trials",
        "1",
        "--mode",
        "kill",
        "--peer",
        "keepalived",
        "--json",
        "--plot",
        &svg_arg,
        "--prefix",
        &prefix,
    ]);
    assert_lab_gone(&prefix);
    // A progress line per trial.
    for imp in ["xvrrp", "keepalived"] {
        assert!(
            stderr.contains(&format!("bench: {imp} kill none trial 1/1: gap ")),
            "no progress line for {imp}:\n{stderr}"
        );
    }

    let trials = report["trials"].as_array().unwrap();
    assert_eq!(trials.len(), 2, "{report}");
    for (t, imp) in trials.iter().zip(["xvrrp", "keepalived"]) {
        assert_eq!(str_field(t, "impl"), imp, "{t}");
        assert_eq!(str_field(t, "mode"), "kill", "{t}");
        assert_eq!(str_field(t, "load"), "none", "{t}");
        let gap = num_field(t, "gap_ms");
        // Behaviour, not speed: traffic came back, well within 2 s.
        assert!(gap.is_finite() && (0.0..2000.0).contains(&gap), "{t}");
        let (lost, sent) = (num_field(t, "lost"), num_field(t, "sent"));
        assert!(sent > 0.0 && lost < sent, "{t}");
        assert!(num_field(t, "false_takeovers") >= 0.0, "{t}");
    }
    // xvrrp's fast path dies with the process: the flow must have stopped.
    assert!(num_field(&trials[0], "gap_ms") > 0.0, "{report}");

    let summary = report["summary"].as_array().unwrap();
    assert_eq!(summary.len(), 2, "{report}");
    for s in summary {
        for key in ["impl", "mode", "load"] {
            str_field(s, key);
        }
        let (p50, p99, max) = (
            num_field(s, "p50_gap_ms"),
            num_field(s, "p99_gap_ms"),
            num_field(s, "max_gap_ms"),
        );
        assert!(p50 <= p99 && p99 <= max && max < 2000.0, "{s}");
        assert!(num_field(s, "false_takeovers") >= 0.0, "{s}");
    }

    let text = std::fs::read_to_string(&svg).unwrap();
    assert!(text.starts_with("<svg"), "not an SVG: {svg:?}");
    for label in ["xvrrp: trial 1", "keepalived: trial 1", "gap per trial"] {
        assert!(text.contains(label), "{label:?} not in the plot");
    }
}

/// `--mode drain`: A drained, then resumed for the next trial, with the
/// pair running on; no datagram lost in any trial (the handover is
/// confirmed before A stops forwarding), and keepalived, which has no
/// drain, skipped with a line that says so.
#[test]
fn bench_failover_drain_loses_nothing_and_skips_keepalived() {
    let test = "bench_failover_drain_loses_nothing_and_skips_keepalived";
    if !common::supported(test) {
        return;
    }
    common::require(&["ip", "ethtool", "/usr/sbin/keepalived"]);
    let prefix = common::prefix_for(test);
    let (report, stderr) = run_json(&[
        "bench",
        "failover",
        "--trials",
        "2",
        "--mode",
        "drain",
        "--peer",
        "keepalived",
        "--hold-ms",
        "300",
        "--json",
        "--prefix",
        &prefix,
    ]);
    assert_lab_gone(&prefix);
    assert!(
        stderr.contains("keepalived has no drain"),
        "no line on keepalived:\n{stderr}"
    );
    for i in 1..=2 {
        assert!(
            stderr.contains(&format!("bench: xvrrp drain none trial {i}/2: gap ")),
            "no progress line for trial {i}:\n{stderr}"
        );
    }
    let trials = report["trials"].as_array().unwrap();
    assert_eq!(trials.len(), 2, "{report}");
    for t in trials {
        assert_eq!(str_field(t, "impl"), "xvrrp", "{t}");
        assert_eq!(str_field(t, "mode"), "drain", "{t}");
        assert!(num_field(t, "sent") > 0.0, "{t}");
        assert_eq!(num_field(t, "lost"), 0.0, "{t}\n{stderr}");
        assert_eq!(num_field(t, "false_takeovers"), 0.0, "{t}");
    }
    let summary = report["summary"].as_array().unwrap();
    assert_eq!(summary.len(), 1, "{report}");
    assert_eq!(num_field(&summary[0], "lost_max"), 0.0, "{report}");
}

#[test]
fn bench_control_reports_cpu_adverts_and_transitions() {
    let test = "bench_control_reports_cpu_adverts_and_transitions";
    if !common::supported(test) {
        return;
    }
    common::require(&["ip", "ethtool"]);
    let prefix = common::prefix_for(test);
    let (report, _) = run_json(&[
        "bench",
        "control",
        "--instances",
        "4",
        "--seconds",
        "2",
        "--json",
        "--prefix",
        &prefix,
    ]);
    assert_lab_gone(&prefix);
    assert_eq!(report["instances"], 4, "{report}");
    assert_eq!(report["capped"], false, "{report}");
    let apps = report["appliances"].as_array().unwrap();
    assert_eq!(apps.len(), 2, "{report}");
    for app in apps {
        for key in ["control_cpu_pct", "workers_cpu_pct"] {
            let v = num_field(app, key);
            assert!(v.is_finite() && v >= 0.0, "{app}");
        }
        num_field(app, "late_wakeups");
        num_field(app, "spurious_transitions");
    }
    // The master advertised and the backup heard it.
    assert!(num_field(&apps[0], "adverts_tx") > 0.0, "{report}");
    assert!(num_field(&apps[1], "adverts_rx") > 0.0, "{report}");
    let adverts = &report["adverts"];
    assert!(num_field(adverts, "captured") > 0.0, "{report}");
    assert_eq!(num_field(adverts, "silent_routers"), 0.0, "{report}");
    let max = num_field(adverts, "gap_max_ms");
    assert!(max.is_finite() && max > 0.0 && max < 2000.0, "{report}");
    num_field(&report, "spurious_transitions");
    // The wire's cost: the bare sender sent A's adverts, one per router
    // per interval (4 routers at 10 ms for 2 s: about 800).
    let wire = &report["wire"];
    let sent = num_field(wire, "adverts_sent");
    assert!((400.0..=1200.0).contains(&sent), "{report}");
    let cpu = num_field(wire, "cpu_pct");
    assert!(cpu.is_finite() && cpu >= 0.0, "{report}");
    num_field(&report, "control_cpu_pct_less_wire");
    // The machine's stalls were watched over the whole measurement.
    let stalls = &report["machine_stalls"];
    assert!(num_field(stalls, "seconds") >= 3.0, "{report}");
    assert!(num_field(stalls, "max_ms") >= 0.0, "{report}");
    // The hypervisor's steal over that window, where the kernel counts it.
    let steal = &stalls["steal_pct"];
    assert!(
        steal.is_null() || steal.as_f64().is_some_and(|p| (0.0..=100.0).contains(&p)),
        "{report}"
    );
}
