//! Robustness case L09: the fast path delivers every frame. In a lab that
//! keeps the kernel's default offloads, the client and the server hand
//! over UDP and TCP frames whose checksum is partial (CHECKSUM_PARTIAL: the
//! field holds only the pseudo-header sum); a kernel router carries that
//! state along, an AF_XDP copy does not, so appliance A must complete the
//! checksums it forwards, and count them. And the frames the kernel could
//! not hand to a worker (its AF_XDP socket's own drops) are counted too.

#![allow(clippy::unwrap_used)]

mod common;

use std::io::{Read, Write};
use std::net::{Ipv4Addr, Shutdown, SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::thread;
use std::time::{Duration, Instant};

use common::{flow, lab, lab::LabOptions, netns, Appliance, TestLab, WorkDir, NO_STOP};

const SERVER: Ipv4Addr = Ipv4Addr::new(203, 0, 113, 100);
/// The LAN router's virtual MAC.
const LAN_VMAC: [u8; 6] = [0x00, 0x00, 0x5e, 0x00, 0x01, 0x01];

/// Appliance A alone, master of both routers, in a lab whose veths keep
/// the kernel's default offloads. Fields drop in order: the daemon is
/// killed before its directory and the lab are removed.
struct Solo {
    a: Appliance,
    _work: WorkDir,
    lab: TestLab,
}

impl Solo {
    /// Builds the lab with offloads on, starts A and waits until it is
    /// master; `None` when the test must be skipped.
    fn start(test: &str) -> Option<Solo> {
        let lab = common::setup_with(
            test,
            &LabOptions {
                offloads: true,
                ..Default::default()
            },
        )?;
        let work = WorkDir::create(lab.prefix()).unwrap();
        let config = common::gateway_config(&lab, "a", 200);
        let exe = Path::new(common::XVRRP);
        let mut a = Appliance::new("a", exe, &lab.ns("gw-a"), &config, work.path()).unwrap();
        a.start().unwrap();
        let r = lab::wait_until("A master", common::ELECTION_TIMEOUT, &NO_STOP, || {
            a.all_in("master")
        });
        if let Err(e) = r {
            panic!("{e:#}\n--- log of A:\n{}", a.log_tail(20));
        }
        let solo = Solo {
            a,
            _work: work,
            lab,
        };
        // The test means nothing if the senders complete their checksums.
        for role in ["client", "server"] {
            let features = netns::exec(&solo.lab.ns(role), "ethtool", &["-k", "eth0"]).unwrap();
            assert!(
                features
                    .lines()
                    .any(|l| l.trim_start().starts_with("tx-checksumming: on")),
                "tx checksum offload is off on eth0 of {role}:\n{features}"
            );
        }
        Some(solo)
    }

    /// A's `stats --json` reply.
    fn stats(&self) -> serde_json::Value {
        self.a
            .query(&["stats"])
            .unwrap_or_else(|e| panic!("{e:#}\n--- log of A:\n{}", self.a.log_tail(20)))
    }

    /// Frames A forwarded with a completed checksum, all ports and workers.
    fn checksum_completed(&self) -> u64 {
        common::drop_count(&self.stats(), "checksum_completed")
    }
}

#[test]
fn l09_udp_with_checksum_offload_arrives_through_the_gateway() {
    let Some(solo) = Solo::start("l09_udp_with_checksum_offload_arrives_through_the_gateway")
    else {
        return;
    };
    let dst = SocketAddr::from((SERVER, flow::DEFAULT_PORT));
    let f = flow::Flow::start(&solo.lab.ns("client"), &solo.lab.ns("server"), dst, 5000).unwrap();
    thread::sleep(Duration::from_secs(2));
    let report = f.stop().unwrap();
    let completed = solo.checksum_completed();
    eprintln!("L09 UDP with offload on: {report}; checksum_completed {completed}");
    assert!(
        report.sent > 0 && report.received * 100 >= report.sent * 95,
        "{report}; checksum_completed {completed}\n--- log of A:\n{}",
        solo.a.log_tail(20)
    );
    // Every datagram that arrived was partial when A took it.
    assert!(
        completed >= report.received,
        "checksum_completed {completed} < received {}",
        report.received
    );
}

/// Bytes of the TCP transfer.
const TCP_BYTES: usize = 1 << 20;
/// Port of the TCP transfer.
const TCP_PORT: u16 = 9001;

fn pattern(i: usize) -> u8 {
    // A period prime to every segment size, so a misplaced segment shows.
    u8::try_from(i % 251).unwrap()
}

/// Accepts one connection on `listener` within `timeout` and reads it to
/// the end; returns the bytes read and how many of them were out of pattern.
fn receive_all(listener: &TcpListener, timeout: Duration) -> std::io::Result<(usize, usize)> {
    listener.set_nonblocking(true)?;
    let deadline = Instant::now() + timeout;
    let mut stream = loop {
        match listener.accept() {
            Ok((s, _)) => break s,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                if Instant::now() >= deadline {
                    return Ok((0, 0));
                }
                thread::sleep(Duration::from_millis(20));
            }
            Err(e) => return Err(e),
        }
    };
    stream.set_nonblocking(false)?;
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    let (mut total, mut wrong) = (0usize, 0usize);
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = stream.read(&mut buf)?;
        if n == 0 {
            return Ok((total, wrong));
        }
        wrong += buf
            .iter()
            .take(n)
            .enumerate()
            .filter(|(i, b)| **b != pattern(total + i))
            .count();
        total += n;
    }
}

#[test]
fn l09_tcp_with_offloads_crosses_the_gateway() {
    let Some(solo) = Solo::start("l09_tcp_with_offloads_crosses_the_gateway") else {
        return;
    };
    // A socket stays in the namespace it was made in: bind the listener in
    // the server's, connect from the client's, and do the rest from here.
    let listener = netns::run_in(&solo.lab.ns("server"), || {
        Ok(TcpListener::bind((Ipv4Addr::UNSPECIFIED, TCP_PORT))?)
    })
    .unwrap();
    let server = thread::spawn(move || receive_all(&listener, Duration::from_secs(15)));
    let started = Instant::now();
    let connected = netns::run_in(&solo.lab.ns("client"), || {
        Ok(TcpStream::connect_timeout(
            &SocketAddr::from((SERVER, TCP_PORT)),
            Duration::from_secs(5),
        )?)
    });
    let sent = connected.and_then(|mut stream| {
        stream.set_write_timeout(Some(Duration::from_secs(20)))?;
        let data: Vec<u8> = (0..TCP_BYTES).map(pattern).collect();
        stream.write_all(&data)?;
        stream.shutdown(Shutdown::Write)?;
        Ok(())
    });
    let (received, wrong) = server.join().unwrap().unwrap();
    let elapsed = started.elapsed();
    let completed = solo.checksum_completed();
    eprintln!(
        "L09 TCP with offload on: sent {}, received {received} of {TCP_BYTES} bytes in {elapsed:?}; \
         checksum_completed {completed}",
        match &sent {
            Ok(()) => "all".to_owned(),
            Err(e) => format!("failed ({e:#})"),
        }
    );
    assert!(
        sent.is_ok() && received == TCP_BYTES && wrong == 0,
        "sent {sent:?}, received {received} bytes ({wrong} wrong)\n--- log of A:\n{}",
        solo.a.log_tail(20)
    );
    assert!(completed > 0, "no checksum completed");
}

// ----- the sockets' own drops ------------------------------------------------------------

/// The counters `stats --json` shows under `xsk` (the kernel's names).
const XSK_KEYS: [&str; 6] = [
    "rx_dropped",
    "rx_invalid_descs",
    "tx_invalid_descs",
    "rx_ring_full",
    "rx_fill_ring_empty_descs",
    "tx_ring_empty_descs",
];

/// `ports.PORT.workers.0` of a `stats --json` reply (the lab runs one worker).
fn worker0<'a>(stats: &'a serde_json::Value, port: &str) -> &'a serde_json::Value {
    &stats["ports"][port]["workers"]["0"]
}

/// `xsk.KEY` of worker 0 on `port`.
fn xsk(stats: &serde_json::Value, port: &str, key: &str) -> u64 {
    worker0(stats, port)["xsk"][key]
        .as_u64()
        .unwrap_or_else(|| panic!("no xsk.{key} for {port} in {stats}"))
}

/// The Internet checksum of `data` (even length).
fn ip_checksum(data: &[u8]) -> u16 {
    let mut sum: u32 = data
        .chunks_exact(2)
        .map(|w| u32::from(u16::from_be_bytes([w[0], w[1]])))
        .sum();
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !u16::try_from(sum).unwrap()
}

/// A UDP datagram from the client to the LAN router's virtual MAC for an
/// address no route leads to: the worker drops it as `no-route`, cheaply.
fn to_nowhere() -> Vec<u8> {
    let mut f = LAN_VMAC.to_vec();
    f.extend_from_slice(&[0x02, 0x00, 0x00, 0x00, 0x00, 0x99, 0x08, 0x00]);
    let mut ip = vec![0x45, 0, 0, 46, 0, 0, 0x40, 0, 64, 17, 0, 0];
    ip.extend_from_slice(&[192, 0, 2, 100]);
    ip.extend_from_slice(&[198, 51, 100, 1]);
    let c = ip_checksum(&ip);
    ip[10..12].copy_from_slice(&c.to_be_bytes());
    f.extend_from_slice(&ip);
    // UDP 1234 → 9, length 26, no checksum, 18 bytes of zeros.
    f.extend_from_slice(&[0x04, 0xd2, 0x00, 0x09, 0x00, 26, 0, 0]);
    f.extend_from_slice(&[0; 18]);
    f
}

/// Resumes a stopped process when dropped, so a failing test never leaves
/// a frozen daemon behind.
struct Resume(u32);

impl Drop for Resume {
    fn drop(&mut self) {
        let _ = netns::signal(self.0, libc::SIGCONT);
    }
}

/// Frames sent to the frozen appliance: four times what its fill ring
/// (and twice what its fill and RX rings together) can take.
const BURST: u64 = 16384;

#[test]
fn l09_socket_drops_are_shown_and_count_an_overrun() {
    let Some(mut solo) = Solo::start("l09_socket_drops_are_shown_and_count_an_overrun") else {
        return;
    };
    let before = solo.stats();
    for port in ["lan0", "wan0"] {
        let obj = worker0(&before, port)["xsk"]
            .as_object()
            .unwrap_or_else(|| panic!("no xsk object for {port}: {before}"));
        for key in XSK_KEYS {
            assert!(
                obj.get(key).is_some_and(serde_json::Value::is_u64),
                "{port}: xsk.{key} missing or not a number: {obj:?}"
            );
        }
    }

    // Frozen, the worker takes nothing from its RX ring and gives nothing
    // back to its fill ring, while the kernel keeps redirecting frames to
    // its socket: once the fill ring is empty the rest is dropped there.
    let pid = solo.a.pid().unwrap();
    netns::signal(pid, libc::SIGSTOP).unwrap();
    let resume = Resume(pid);
    let burst = vec![to_nowhere(); usize::try_from(BURST).unwrap()];
    let sent = common::send_frames(&solo.lab.ns("client"), "eth0", burst);
    drop(resume);
    sent.unwrap();
    // The worker drains its RX ring once resumed.
    let r = lab::wait_until(
        "the worker to drain its RX ring",
        Duration::from_secs(5),
        &NO_STOP,
        || {
            let s = solo.a.query(&["stats"])?;
            let seen = worker0(&s, "lan0")["rx"].as_u64().unwrap_or(0);
            Ok(seen > worker0(&before, "lan0")["rx"].as_u64().unwrap_or(0))
        },
    );
    if let Err(e) = r {
        panic!(
            "{e:#}
--- log of A:
{}",
            solo.a.log_tail(20)
        );
    }
    thread::sleep(Duration::from_millis(200));
    let after = solo.stats();
    assert!(
        solo.a.running(),
        "A died:
{}",
        solo.a.log_tail(20)
    );

    let delta = |key: &str| xsk(&after, "lan0", key) - xsk(&before, "lan0", key);
    let rx = worker0(&after, "lan0")["rx"].as_u64().unwrap()
        - worker0(&before, "lan0")["rx"].as_u64().unwrap();
    let lost = delta("rx_dropped") + delta("rx_ring_full");
    eprintln!(
        "L09 overrun: {BURST} frames to the frozen worker: {rx} received, rx_dropped +{}, \
         rx_ring_full +{}, rx_fill_ring_empty_descs +{}",
        delta("rx_dropped"),
        delta("rx_ring_full"),
        delta("rx_fill_ring_empty_descs")
    );
    // At most a fill ring and an RX ring of frames (2 × 4096) fit in while
    // frozen; the rest must show as the socket's drops.
    assert!(
        lost >= BURST - 8192,
        "only {lost} of {BURST} frames counted lost ({rx} received): {}",
        after["ports"]["lan0"]
    );
    assert!(rx + lost <= BURST + 64, "counted more than was sent");
}
