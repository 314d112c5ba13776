//! The event stream (`xvrrp events`, the control socket's `subscribe`) and
//! the notify script, on the lab's gateway pair with the real binary.

#![allow(clippy::unwrap_used)]

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use common::{
    gateway_config, lab, setup, socket_path, Pair, Rig, ELECTION_TIMEOUT, NO_STOP, XVRRP,
};
use serde_json::Value;

/// `xvrrp events --json` against `socket`, its lines sent to a channel;
/// killed (by its PID) when dropped.
struct Subscriber {
    child: Child,
    lines: mpsc::Receiver<String>,
}

impl Subscriber {
    fn start(socket: &str, json: bool) -> Subscriber {
        let mut cmd = Command::new(XVRRP);
        cmd.args(["-s", socket, "events"]);
        if json {
            cmd.arg("--json");
        }
        let mut child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Subscriber { child, lines }
    }

    /// Lines received until `done` says the list is complete, or panics
    /// after `timeout` with what came.
    fn until(&self, timeout: Duration, done: impl Fn(&[String]) -> bool) -> Vec<String> {
        let deadline = std::time::Instant::now() + timeout;
        let mut got = Vec::new();
        while !done(&got) {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => got.push(line),
                Err(_) => panic!("events so far: {got:#?}"),
            }
        }
        got
    }
}

impl Drop for Subscriber {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn parsed(lines: &[String]) -> Vec<Value> {
    lines
        .iter()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect()
}

fn is(e: &Value, event: &str, instance: &str) -> bool {
    e["event"] == event && e["instance"] == instance
}

fn priority_client(socket: &str, name: &str, priority: u8) {
    let out = Command::new(XVRRP)
        .args(["-s", socket, "priority", name, &priority.to_string()])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Checks `seq` counts up by one, `mono` never goes back and `time` is
/// RFC 3339 UTC and never goes back.
fn check_stamps(events: &[Value]) {
    for w in events.windows(2) {
        let (a, b) = (&w[0], &w[1]);
        assert_eq!(
            b["seq"].as_u64().unwrap(),
            a["seq"].as_u64().unwrap() + 1,
            "{a} {b}"
        );
        assert!(
            b["mono"].as_f64().unwrap() >= a["mono"].as_f64().unwrap(),
            "{a} {b}"
        );
        assert!(
            b["time"].as_str().unwrap() >= a["time"].as_str().unwrap(),
            "{a} {b}"
        );
    }
    for e in events {
        let t = e["time"].as_str().unwrap();
        // 2026-12-02T11:40:01.123Z
        assert_eq!(t.len(), 24, "{t}");
        assert!(t.ends_with('Z') && t.as_bytes()[10] == b'T', "{t}");
        assert!(e["mono"].as_f64().unwrap() > 0.0);
    }
}

#[test]
fn subscribe_streams_priority_changes_and_failovers_in_order() {
    let Some(rig) = Rig::standard("subscribe_streams_priority_changes_and_failovers_in_order")
    else {
        return;
    };
    let sock_b = socket_path(&rig.lab, "b");
    let sub = Subscriber::start(&sock_b, true);
    let human = Subscriber::start(&sock_b, false);
    // The subscription is in place once the client has its answer; give
    // the client a moment to connect.
    std::thread::sleep(Duration::from_millis(500));

    // B above A: B preempts, both instances (one sync group) move to B.
    priority_client(&sock_b, "lan-gw", 250);
    let masters = |got: &[String]| {
        let ev = parsed(got);
        ["lan-gw", "wan-gw"].iter().all(|i| {
            ev.iter()
                .any(|e| is(e, "transition", i) && e["to"] == "master")
        })
    };
    let got = sub.until(ELECTION_TIMEOUT, masters);
    // B below A again: A preempts back.
    priority_client(&sock_b, "lan-gw", 50);
    let back = |got: &[String]| {
        let ev = parsed(got);
        ["lan-gw", "wan-gw"].iter().all(|i| {
            ev.iter()
                .any(|e| is(e, "transition", i) && e["to"] == "backup")
        })
    };
    let mut all = got;
    all.extend(sub.until(ELECTION_TIMEOUT, back));
    let ev = parsed(&all);
    check_stamps(&ev);
    println!("{}", all.join("\n"));

    let pos =
        |f: &dyn Fn(&Value) -> bool| ev.iter().position(f).unwrap_or_else(|| panic!("{all:#?}"));
    let up = pos(&|e| is(e, "priority", "lan-gw") && e["priority"] == 250);
    let master = pos(&|e| is(e, "transition", "lan-gw") && e["to"] == "master");
    let down = pos(&|e| is(e, "priority", "lan-gw") && e["priority"] == 50);
    let backup = pos(&|e| is(e, "transition", "lan-gw") && e["to"] == "backup");
    assert!(up < master && master < down && down < backup, "{all:#?}");
    assert_eq!(ev[master]["from"], "backup");
    assert_eq!(ev[master]["priority"], 250);
    assert_eq!(ev[up]["configured"], 100);
    assert_eq!(ev[backup]["from"], "master");

    // The readable form carries the same events.
    let lines = human.until(Duration::from_secs(5), |got| {
        got.iter()
            .filter(|l| l.contains(" transition lan-gw: "))
            .count()
            >= 2
    });
    assert!(
        lines
            .iter()
            .any(|l| l.contains(" priority lan-gw: priority 250 (configured 100)")),
        "{lines:#?}"
    );
    assert!(
        lines
            .iter()
            .any(|l| l.contains(" transition lan-gw: backup -> master (")),
        "{lines:#?}"
    );
}

#[test]
fn notify_script_sees_each_instance_s_transitions_in_order_and_failures_are_logged() {
    let Some(lab) =
        setup("notify_script_sees_each_instance_s_transitions_in_order_and_failures_are_logged")
    else {
        return;
    };
    let work = lab::WorkDir::create(&format!("{}-notify", lab.prefix())).unwrap();
    let out = work.path().join("notified");
    let script = work.path().join("notify.sh");
    // Slow on purpose (so that runs started out of order would interleave),
    // and failing with status 3 on master.
    std::fs::write(
        &script,
        format!(
            "#!/bin/sh\nsleep 0.2\necho \"$@\" >> {}\n[ \"$2\" = master ] && exit 3\nexit 0\n",
            out.display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&script, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let a = gateway_config(&lab, "a", 200);
    let mut b = gateway_config(&lab, "b", 100);
    b.notify = Some(script.to_string_lossy().into_owned());
    let mut pair = Pair::start(&lab, &a, &b);
    pair.wait_a_master(ELECTION_TIMEOUT);
    // A dies: B takes over; A comes back: B steps down.
    pair.a.kill().unwrap();
    pair.wait_b_master(ELECTION_TIMEOUT);
    pair.a.start().unwrap();
    pair.wait_a_master(ELECTION_TIMEOUT);

    // What B logged, per instance: "STATE PRIORITY" of each state change.
    let logged = |instance: &str| -> Vec<String> {
        let log = std::fs::read_to_string(pair.b.log_path()).unwrap();
        log.lines()
            .filter(|l| l.contains("state change") && l.contains(&format!("instance={instance} ")))
            .map(|l| {
                let field = |k: &str| {
                    l.split_whitespace()
                        .find_map(|w| w.strip_prefix(k))
                        .unwrap_or("?")
                        .to_owned()
                };
                format!("{} {}", field("to="), field("priority="))
            })
            .collect()
    };
    let notified = |instance: &str| -> Vec<String> {
        std::fs::read_to_string(&out)
            .unwrap_or_default()
            .lines()
            .filter_map(|l| l.strip_prefix(&format!("{instance} ")).map(str::to_owned))
            .collect()
    };
    let r = lab::wait_until(
        "the notify scripts to run",
        Duration::from_secs(20),
        &NO_STOP,
        || {
            Ok(["lan-gw", "wan-gw"]
                .iter()
                .all(|i| notified(i).len() >= logged(i).len()))
        },
    );
    pair.check(r);
    for instance in ["lan-gw", "wan-gw"] {
        // Every state change, in order, and the failover and failback last.
        let seen = notified(instance);
        assert_eq!(seen, logged(instance), "{instance}\n{}", pair.logs());
        assert!(
            seen.ends_with(&["master 100".to_owned(), "backup 100".to_owned()]),
            "{instance}: {seen:?}\n{}",
            pair.logs()
        );
    }
    let log = std::fs::read_to_string(pair.b.log_path()).unwrap();
    assert!(
        log.contains("notify script exited with status 3"),
        "{}",
        pair.logs()
    );
    assert!(!log.contains("notify queue full"), "{}", pair.logs());
}

#[test]
fn events_without_a_daemon_is_one_error_line_and_a_failure() {
    let out = Command::new(XVRRP)
        .args(["-s", "/run/xvrrp/no-such-daemon.sock", "events"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(
        err.starts_with("xvrrp: cannot reach xvrrp at /run/xvrrp/no-such-daemon.sock"),
        "{err}"
    );
    assert!(out.stdout.is_empty());
    // `subscribe` is the same command.
    let out = Command::new(XVRRP)
        .args(["subscribe", "--help"])
        .output()
        .unwrap();
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("--json"));
}
