//! Robustness case L09: the fast path delivers every frame. In a lab that
//! keeps the kernel's default offloads, the client and the server hand
//! over UDP and TCP frames whose checksum is partial (CHECKSUM_PARTIAL: the
//! field holds only the pseudo-header sum); a kernel router carries that
//! state along, an AF_XDP copy does not, so appliance A must complete the
//! checksums it forwards, and count them.

#![allow(clippy::unwrap_used)]

mod common;

use std::io::{Read, Write};
use std::net::{Ipv4Addr, Shutdown, SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::thread;
use std::time::{Duration, Instant};

use common::{flow, lab, netns, Appliance, LabOptions, TestLab, WorkDir, NO_STOP};

const SERVER: Ipv4Addr = Ipv4Addr::new(203, 0, 113, 100);

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
        let lab = common::setup_with(test, LabOptions { offloads: true })?;
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
