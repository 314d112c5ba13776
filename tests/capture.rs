//! `xvrrp capture`: the frames the fast path sees on a port, read back by
//! tshark. A flows through A (master) from the client to the server while
//! the client also sends VRRP adverts (VRID 1, priority 50), ARP requests
//! for the LAN VIP and UDP datagrams through the virtual MAC to a network
//! the gateway has no route to (dropped by the worker as `no-route`, and
//! answered with an ICMP error). (A broken IPv4 header checksum would not
//! do: a bridge with `br_netfilter` drops it before the gateway.)

#![allow(clippy::unwrap_used)]

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use common::{frames, Rig, XVRRP};

/// How long one capture may take on a loaded machine.
const CAPTURE_TIMEOUT: Duration = Duration::from_secs(30);
const CLIENT_IP: [u8; 4] = [192, 0, 2, 100];
const LAN_VIP: [u8; 4] = [192, 0, 2, 1];
/// An address the lab gateway has no route to.
const UNROUTED_IP: [u8; 4] = [198, 51, 100, 7];

/// `xvrrp -s SOCKET capture ARGS`.
fn capture_cmd(socket: &str, args: &[&str]) -> Command {
    let mut cmd = Command::new(XVRRP);
    cmd.args(["-s", socket, "capture"])
        .args(args)
        .env_remove("RUST_LOG")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    cmd
}

/// Waits for `child` (killed by its PID after [`CAPTURE_TIMEOUT`]).
fn finish(mut child: Child, what: &str) -> Output {
    let deadline = Instant::now() + CAPTURE_TIMEOUT;
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            let out = child.wait_with_output().unwrap();
            panic!(
                "{what} did not end within {CAPTURE_TIMEOUT:?}; stderr:\n{}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        thread::sleep(Duration::from_millis(20));
    }
    child.wait_with_output().unwrap()
}

fn run_capture(socket: &str, args: &[&str]) -> Output {
    finish(capture_cmd(socket, args).spawn().unwrap(), "capture")
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// `tshark -r FILE ARGS`, its stdout; fails on a tshark error.
fn tshark(file: &Path, args: &[&str]) -> String {
    let out = Command::new("tshark")
        .arg("-r")
        .arg(file)
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "tshark -r {}: {}",
        file.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// (protocols, comment) of every frame of `file`.
fn frames_of(file: &Path) -> Vec<(String, String)> {
    let text = tshark(
        file,
        &[
            "-T",
            "fields",
            "-E",
            "separator=|",
            "-e",
            "frame.protocols",
            "-e",
            "frame.comment",
        ],
    );
    text.lines()
        .map(|l| {
            let (p, c) = l.split_once('|').unwrap_or((l, ""));
            (p.to_owned(), c.to_owned())
        })
        .collect()
}

/// Asserts tshark finds no malformed frame in `file`.
fn assert_well_formed(file: &Path) {
    let all = tshark(file, &[]);
    assert!(
        !all.contains("Malformed"),
        "malformed frames in {}:\n{all}",
        file.display()
    );
    let malformed = tshark(file, &["-Y", "_ws.malformed"]);
    assert!(malformed.trim().is_empty(), "{malformed}");
}

/// A UDP datagram through the LAN virtual MAC to an address the gateway
/// has no route to: the worker drops it as `no-route`.
fn unroutable_frame() -> Vec<u8> {
    let mut f = frames::VMAC1.to_vec();
    f.extend_from_slice(&frames::CLIENT_MAC);
    f.extend_from_slice(&[0x08, 0x00]);
    let mut ip = vec![0x45, 0, 0, 36, 0, 0, 0, 0, 64, 17, 0, 0];
    ip.extend_from_slice(&CLIENT_IP);
    ip.extend_from_slice(&UNROUTED_IP);
    let c = frames::checksum(&[&ip]);
    ip[10..12].copy_from_slice(&c.to_be_bytes());
    f.extend_from_slice(&ip);
    f.extend_from_slice(&[0x30, 0x39, 0x30, 0x39, 0, 16, 0, 0]);
    f.extend_from_slice(&[0x55; 8]);
    f
}

/// Sends, every 50 ms from the client until dropped, an advert (VRID 1,
/// priority 50: below A's, so A stays master), an ARP request for the LAN
/// VIP and a datagram to an unrouted address.
struct Injector {
    stop: Arc<AtomicBool>,
    thread: Option<thread::JoinHandle<()>>,
}

impl Injector {
    fn start(client_ns: String) -> Injector {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&stop);
        let thread = thread::spawn(move || {
            let batch = vec![
                frames::frame(CLIENT_IP, 255, &frames::v3(CLIENT_IP, 1, 50)),
                frames::arp_request(frames::CLIENT_MAC, CLIENT_IP, LAN_VIP),
                unroutable_frame(),
            ];
            while !flag.load(Ordering::Relaxed) {
                common::send_frames(&client_ns, "eth0", batch.clone()).unwrap();
                thread::sleep(Duration::from_millis(50));
            }
        });
        Injector {
            stop,
            thread: Some(thread),
        }
    }
}

impl Drop for Injector {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// A scratch file path for this test, removed on drop.
struct Scratch(PathBuf);

impl Scratch {
    fn new(test: &str, name: &str) -> Scratch {
        Scratch(std::env::temp_dir().join(format!(
            "xvrrp-capture-{}-{test}-{name}",
            std::process::id()
        )))
    }

    fn path(&self) -> &str {
        self.0.to_str().unwrap()
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

#[test]
fn capture_under_a_flow_is_read_by_tshark_with_every_kind_of_frame() {
    const TEST: &str = "capture_under_a_flow_is_read_by_tshark";
    let Some(rig) = Rig::standard(TEST) else {
        return;
    };
    common::require(&["tshark"]);
    let socket = common::socket_path(&rig.lab, "a");
    let flow = rig.flowing(200);
    let _inject = Injector::start(rig.lab.ns("client"));
    let before = rig.pair.check(rig.pair.a.query(&["stats"]));

    let file = Scratch::new(TEST, "all.pcapng");
    let out = run_capture(&socket, &["lan0", "-w", file.path(), "-c", "150"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("150 frames captured on lan0, 0 lost"),
        "{}",
        stderr(&out)
    );
    assert_well_formed(&file.0);
    let got = frames_of(&file.0);
    assert_eq!(got.len(), 150, "{got:?}");
    let any = |f: &dyn Fn(&(String, String)) -> bool| got.iter().any(f);
    for proto in ["vrrp", "udp", "arp"] {
        assert!(
            any(&|(p, _)| p.split(':').any(|x| x == proto)),
            "no {proto} frame in {got:?}"
        );
    }
    assert!(
        any(&|(p, c)| p.contains("udp") && c == "in, worker 0, forwarded to wan0"),
        "no forwarded datagram in {got:?}"
    );
    assert!(
        any(&|(p, c)| p.contains("arp") && c == "out, worker 0, reply"),
        "no ARP reply sent in {got:?}"
    );
    assert!(
        any(&|(_, c)| c == "in, worker 0, dropped: no-route"),
        "no dropped frame with its reason in {got:?}"
    );
    assert!(
        any(&|(p, c)| p.contains("icmp") && c == "out, worker 0, reply"),
        "no ICMP error sent in {got:?}"
    );
    assert!(
        any(&|(p, c)| p.contains("vrrp") && c == "in, worker 0, consumed"),
        "no advert handed to the control thread in {got:?}"
    );
    // The port's name and the direction of each frame are in the file.
    let names = tshark(
        &file.0,
        &["-T", "fields", "-e", "frame.interface_name", "-c", "1"],
    );
    assert_eq!(names.trim(), "lan0");

    // No loss caused by the capture: the ring kept up, and no frame was
    // dropped for want of room on the way out.
    let after = rig.pair.check(rig.pair.a.query(&["stats"]));
    assert_eq!(common::port_counter(&after, "lan0", "capture_lost"), 0);
    for reason in ["egress-full", "tx-ring-full", "handoff-full"] {
        assert_eq!(
            common::drop_count(&after, reason),
            common::drop_count(&before, reason),
            "{reason}"
        );
    }
    // The datagrams went through while the capture ran. (On a loaded
    // machine a stalled sender or worker may lose a few, capture or not:
    // the capture's own losses are the counters above.)
    let report = rig.pair.check(flow.stop());
    assert!(
        report.received > 0 && report.lost * 20 <= report.sent,
        "{report:?}"
    );
}

#[test]
fn filters_busy_port_interrupt_and_unknown_port() {
    const TEST: &str = "filters_busy_port_interrupt";
    let Some(rig) = Rig::standard(TEST) else {
        return;
    };
    common::require(&["tshark"]);
    let socket = common::socket_path(&rig.lab, "a");
    let _inject = Injector::start(rig.lab.ns("client"));

    // --filter vrrp: adverts only.
    let file = Scratch::new(TEST, "vrrp.pcapng");
    let out = run_capture(
        &socket,
        &["lan0", "-w", file.path(), "-c", "5", "--filter", "vrrp"],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert_well_formed(&file.0);
    let got = frames_of(&file.0);
    assert_eq!(got.len(), 5, "{got:?}");
    assert!(got.iter().all(|(p, _)| p.ends_with(":vrrp")), "{got:?}");

    // --filter dropped: the drops, each with its reason.
    let file = Scratch::new(TEST, "dropped.pcapng");
    let out = run_capture(
        &socket,
        &["lan0", "-w", file.path(), "-c", "5", "--filter", "dropped"],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let got = frames_of(&file.0);
    assert_eq!(got.len(), 5, "{got:?}");
    assert!(
        got.iter()
            .all(|(_, c)| c == "in, worker 0, dropped: no-route"),
        "{got:?}"
    );

    // Without -w: one line per frame on stdout.
    let out = run_capture(&socket, &["lan0", "-c", "3", "--filter", "arp"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = String::from_utf8_lossy(&out.stdout);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 3, "{text}");
    assert!(lines.iter().all(|l| l.contains(" ARP ")), "{text}");

    // One capture per port: a second is refused while the first runs;
    // Ctrl-C ends the first cleanly with a complete file.
    let file = Scratch::new(TEST, "interrupted.pcapng");
    let mut first = capture_cmd(&socket, &["lan0", "-w", file.path()])
        .spawn()
        .unwrap();
    let pid = libc::pid_t::try_from(first.id()).unwrap();
    let started = Instant::now();
    let busy = loop {
        thread::sleep(Duration::from_millis(200));
        // A second capture that came first would have made the first busy.
        assert!(
            first.try_wait().unwrap().is_none(),
            "the first capture ended"
        );
        let out = run_capture(&socket, &["lan0", "-c", "1"]);
        if !out.status.success() {
            break out;
        }
        assert!(started.elapsed() < CAPTURE_TIMEOUT, "never busy");
    };
    assert_eq!(busy.status.code(), Some(1));
    let err = stderr(&busy);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("a capture already runs on port lan0"), "{err}");
    // Let some frames in, then interrupt.
    thread::sleep(Duration::from_millis(500));
    // SAFETY: kill(2) on the PID of a child this test started.
    assert_eq!(unsafe { libc::kill(pid, libc::SIGINT) }, 0);
    let out = finish(first, "interrupted capture");
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("lost (ring full)"),
        "{}",
        stderr(&out)
    );
    assert_well_formed(&file.0);
    assert!(!frames_of(&file.0).is_empty());
    // The port is free again.
    let out = run_capture(&socket, &["lan0", "-c", "1"]);
    assert!(out.status.success(), "{}", stderr(&out));

    // A client killed outright: its capture ends and the port is freed.
    let mut killed = capture_cmd(&socket, &["lan0"]).spawn().unwrap();
    let started = Instant::now();
    loop {
        thread::sleep(Duration::from_millis(200));
        assert!(killed.try_wait().unwrap().is_none(), "the capture ended");
        let out = run_capture(&socket, &["lan0", "-c", "1"]);
        if !out.status.success() {
            assert!(stderr(&out).contains("already runs"), "{}", stderr(&out));
            break;
        }
        assert!(started.elapsed() < CAPTURE_TIMEOUT, "never busy");
    }
    killed.kill().unwrap();
    killed.wait().unwrap();
    let freed = common::lab::wait_until(
        "the port to be free after its client was killed",
        CAPTURE_TIMEOUT,
        &common::NO_STOP,
        || Ok(run_capture(&socket, &["lan0", "-c", "1"]).status.success()),
    );
    rig.pair.check(freed);

    // An unknown port: one line, non-zero exit.
    let out = run_capture(&socket, &["nosuch0", "-c", "1"]);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("no port named nosuch0"), "{err}");
}

#[test]
fn capture_errors_without_a_daemon_or_a_writable_file() {
    let dir = std::env::temp_dir().join(format!("xvrrp-capture-nodaemon-{}", std::process::id()));
    let socket = dir.join("absent.sock");
    let out = run_capture(socket.to_str().unwrap(), &["lan0", "-c", "1"]);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("absent.sock"), "{err}");

    let out = run_capture(
        socket.to_str().unwrap(),
        &["lan0", "-w", "/nonexistent-dir/x.pcapng", "-c", "1"],
    );
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.contains("cannot write /nonexistent-dir/x.pcapng"),
        "{err}"
    );
}
