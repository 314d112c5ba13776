//! `xvrrp bench forward` end to end: one short run in its own lab, checked
//! for behaviour only (the JSON it promises, frames forwarded both by the
//! kernel and by xvrrp, round trips measured, nothing left behind), never
//! for speed: this machine's rates depend on what else runs on it.

#![allow(clippy::unwrap_used)]

mod common;

use std::process::Command;

use serde_json::Value;

#[test]
fn bench_forward_json_reports_both_gateways_and_cleans_up() {
    let test = "bench_forward_json_reports_both_gateways_and_cleans_up";
    if !common::supported(test) {
        return;
    }
    common::require(&["ip", "ethtool", "ping", "arping", "trafgen"]);
    let prefix = common::prefix_for(test);
    let out = Command::new(common::XVRRP)
        .args([
            "bench",
            "forward",
            "--seconds",
            "1",
            "--probes",
            "20",
            "--json",
            "--prefix",
            &prefix,
        ])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "bench forward failed:\n{stderr}");
    // A progress line per step on stderr.
    for step in [
        "building lab",
        "generator alone",
        "kernel:",
        "xvrrp busy",
        "xvrrp adaptive",
    ] {
        assert!(
            stderr.contains(step),
            "no progress line for {step:?}:\n{stderr}"
        );
    }

    let report: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "stdout is not one JSON object ({e}):\n{}",
            String::from_utf8_lossy(&out.stdout)
        )
    });
    let number = |key: &str| {
        report
            .get(key)
            .and_then(Value::as_f64)
            .unwrap_or_else(|| panic!("no number {key:?} in {report}"))
    };
    for key in [
        "offered_mpps",
        "kernel_mpps",
        "xvrrp_mpps",
        "ratio",
        "kernel_cpu_us_per_pkt",
        "xvrrp_cpu_us_per_pkt",
    ] {
        assert!(number(key) >= 0.0, "{key} = {}", number(key));
    }
    assert!(report
        .get("generator_limited")
        .and_then(Value::as_bool)
        .is_some());
    assert!(
        number("offered_mpps") > 0.0,
        "the generator sent nothing: {report}"
    );
    assert!(
        number("kernel_mpps") > 0.0,
        "the kernel forwarded nothing: {report}"
    );
    assert!(
        number("xvrrp_mpps") > 0.0,
        "xvrrp forwarded nothing: {report}"
    );

    let rows = report.get("rows").and_then(Value::as_array).unwrap();
    assert_eq!(rows.len(), 3, "{report}");
    let xvrrp = &rows[2];
    let fast_path = xvrrp.get("fast_path").unwrap();
    assert!(
        fast_path.get("forwarded").and_then(Value::as_u64).unwrap() > 0,
        "{xvrrp}"
    );

    // Six latency cells: three implementations, idle and under load. Idle,
    // ARP and ping are answered; under load a saturated gateway may drop
    // probes (the cell then says how many were answered).
    let cells = report.get("latency").and_then(Value::as_array).unwrap();
    assert_eq!(cells.len(), 6, "{report}");
    for cell in cells {
        let idle = cell.get("load").and_then(Value::as_str) == Some("idle");
        for key in ["arp_answered", "ping_answered"] {
            let answered = cell.get(key).and_then(Value::as_u64).unwrap();
            assert!(!idle || answered > 0, "{key} in {cell}");
        }
        for key in ["arp_p50_us", "arp_p99_us", "ping_p50_us", "ping_p99_us"] {
            let v = cell
                .get(key)
                .unwrap_or_else(|| panic!("no {key} in {cell}"));
            assert!(v.is_f64() || (!idle && v.is_null()), "{key} in {cell}");
        }
    }

    // Its lab is gone.
    let left = common::netns::ip(&["netns", "list"]).unwrap();
    assert!(
        !left.lines().any(|l| l.starts_with(&format!("{prefix}-"))),
        "namespaces of {prefix} left behind:\n{left}"
    );
}
