//! Control socket over real Unix sockets: a mio loop in a thread serves a
//! test handler; clients use the library's client side or raw streams.
#![allow(clippy::unwrap_used)]

use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{mpsc, Arc};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use mio::{Events, Poll, Token, Waker};
use serde_json::{json, Map, Value};
use xvrrp_control::ctl_socket::{
    self, CtlError, CtlServer, Request, Response, IDLE_TIMEOUT, MAX_CLIENTS, MAX_LINE, MAX_OUTPUT,
    REQUESTS_PER_CALL, REQUESTS_PER_PASS, STALL_TIMEOUT,
};

const WAKER: Token = Token(0);
const FIRST: usize = 10;
const TIMEOUT: Duration = Duration::from_secs(5);

static NEXT_DIR: AtomicUsize = AtomicUsize::new(0);

/// A unique directory under /tmp, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new() -> Self {
        let n = NEXT_DIR.fetch_add(1, Ordering::Relaxed);
        let dir = PathBuf::from(format!("/tmp/xvrrp-ctl-test-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A CtlServer in its own poll loop, run as the daemon runs it; events sent
/// on `events` are published.
struct Server {
    path: PathBuf,
    stop: Arc<AtomicBool>,
    waker: Arc<Waker>,
    events: mpsc::Sender<Value>,
    thread: Option<JoinHandle<()>>,
    _dir: TempDir,
}

/// Answers status with `{"instances": []}`, hello with a version, capture with
/// a large payload, and everything else with an error.
fn test_handler(req: &Request) -> Response {
    let mut m = Map::new();
    match req {
        Request::Hello => {
            m.insert("version".into(), "test".into());
            Response::Ok(m)
        }
        Request::Status => {
            m.insert("instances".into(), json!([]));
            Response::Ok(m)
        }
        Request::Subscribe => Response::ok(),
        Request::Capture { .. } => {
            m.insert("blob".into(), "x".repeat(64 * 1024).into());
            Response::Ok(m)
        }
        _ => Response::error("unsupported", "not in this test"),
    }
}

impl Server {
    fn start() -> Server {
        Server::start_with_group(None)
    }

    fn start_with_group(group: Option<&'static str>) -> Server {
        let dir = TempDir::new();
        let path = dir.0.join("run").join("xvrrp.sock");
        let stop = Arc::new(AtomicBool::new(false));
        let (events_tx, events_rx) = mpsc::channel::<Value>();
        let (ready_tx, ready_rx) = mpsc::channel();
        let thread = {
            let path = path.clone();
            let stop = stop.clone();
            std::thread::spawn(move || {
                let mut poll = Poll::new().unwrap();
                let waker = Arc::new(Waker::new(poll.registry(), WAKER).unwrap());
                let mut server = CtlServer::bind(&path, group, poll.registry(), FIRST).unwrap();
                ready_tx.send(waker).unwrap();
                let mut events = Events::with_capacity(128);
                let mut handler = test_handler;
                while !stop.load(Ordering::Relaxed) {
                    // A pass, then no sleep while work is left over.
                    let now = Instant::now();
                    server.handle_timeout(poll.registry(), now);
                    server.service_pending(poll.registry(), now, REQUESTS_PER_PASS, &mut handler);
                    let wait = if server.pending_work() {
                        Duration::ZERO
                    } else {
                        Duration::from_millis(100)
                    };
                    poll.poll(&mut events, Some(wait)).unwrap();
                    for event in events.iter() {
                        if event.token() == WAKER {
                            while let Ok(ev) = events_rx.try_recv() {
                                server.publish(poll.registry(), &ev);
                            }
                        } else {
                            assert!(server.owns(event.token()));
                            server.handle_event(
                                poll.registry(),
                                Instant::now(),
                                event,
                                &mut handler,
                            );
                        }
                    }
                }
            })
        };
        let waker = ready_rx.recv_timeout(TIMEOUT).unwrap();
        Server {
            path,
            stop,
            waker,
            events: events_tx,
            thread: Some(thread),
            _dir: dir,
        }
    }

    fn publish(&self, v: Value) {
        self.events.send(v).unwrap();
        self.waker.wake().unwrap();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        let _ = self.waker.wake();
        if let Some(t) = self.thread.take() {
            t.join().unwrap();
        }
    }
}

fn raw_client(path: &Path) -> (UnixStream, BufReader<UnixStream>) {
    let s = UnixStream::connect(path).unwrap();
    s.set_read_timeout(Some(TIMEOUT)).unwrap();
    let r = BufReader::new(s.try_clone().unwrap());
    (s, r)
}

fn read_json(r: &mut BufReader<UnixStream>) -> Value {
    let mut line = String::new();
    r.read_line(&mut line).unwrap();
    assert!(line.ends_with('\n'), "{line:?}");
    serde_json::from_str(&line).unwrap()
}

fn error_code(v: &Value) -> &str {
    assert_eq!(v["ok"], json!(false), "{v}");
    v["error"]["code"].as_str().unwrap()
}

#[test]
fn request_reply_round_trip() {
    let srv = Server::start();
    let reply = ctl_socket::request(&srv.path, &json!({"cmd": "hello"}), TIMEOUT).unwrap();
    assert_eq!(reply, json!({"ok": true, "version": "test"}));
    let reply = ctl_socket::request(&srv.path, &Request::Status.to_json(), TIMEOUT).unwrap();
    assert_eq!(reply, json!({"ok": true, "instances": []}));
    let reply = ctl_socket::request(&srv.path, &json!({"cmd": "reload"}), TIMEOUT).unwrap();
    assert_eq!(error_code(&reply), "unsupported");
}

#[test]
fn malformed_lines_get_errors_and_the_connection_stays_usable() {
    let srv = Server::start();
    let (mut w, mut r) = raw_client(&srv.path);
    let bad: &[&[u8]] = &[
        b"not json\n",
        b"[1,2]\n",
        b"\n",
        b"{\"cmd\":\"bogus\"}\n",
        b"{\"cmd\":\"priority\",\"name\":\"x\"}\n",
        b"{\"cmd\":\"status\"\xff}\n",
        b"{\"cmd\":\"status\"}\0\n",
    ];
    for line in bad {
        w.write_all(line).unwrap();
        let reply = read_json(&mut r);
        assert_eq!(
            error_code(&reply),
            "bad-request",
            "{}",
            String::from_utf8_lossy(line)
        );
        assert!(!reply["error"]["message"].as_str().unwrap().is_empty());
    }
    // Two requests in one write, then one split across writes.
    w.write_all(b"{\"cmd\":\"status\"}\n{\"cmd\":\"hello\"}\n{\"cmd\":")
        .unwrap();
    assert_eq!(read_json(&mut r)["instances"], json!([]));
    assert_eq!(read_json(&mut r)["version"], json!("test"));
    w.write_all(b"\"hello\"}\r\n").unwrap();
    assert_eq!(read_json(&mut r)["version"], json!("test"));
}

#[test]
fn oversized_line_is_refused_then_the_next_line_works() {
    let srv = Server::start();
    let (mut w, mut r) = raw_client(&srv.path);
    let big = vec![b'a'; MAX_LINE * 3];
    w.write_all(&big).unwrap();
    w.write_all(b"\n{\"cmd\":\"hello\"}\n").unwrap();
    let reply = read_json(&mut r);
    assert_eq!(error_code(&reply), "bad-request");
    assert!(reply["error"]["message"]
        .as_str()
        .unwrap()
        .contains("longer than"));
    assert_eq!(read_json(&mut r)["version"], json!("test"));
}

#[test]
fn last_line_without_newline_is_answered_after_half_close() {
    let srv = Server::start();
    let (w, mut r) = raw_client(&srv.path);
    (&w).write_all(b"{\"cmd\":\"hello\"}").unwrap();
    w.shutdown(std::net::Shutdown::Write).unwrap();
    assert_eq!(read_json(&mut r)["version"], json!("test"));
    // Then the server closes the connection.
    let mut rest = Vec::new();
    r.read_to_end(&mut rest).unwrap();
    assert!(rest.is_empty());
}

#[test]
fn a_client_that_reads_late_does_not_block_the_server_and_loses_nothing() {
    let srv = Server::start();
    // The slow client asks for 40 replies of 64 KiB, more than MAX_OUTPUT
    // and the socket buffer hold, and does not read them for now.
    let (mut slow, mut slow_r) = raw_client(&srv.path);
    let req = b"{\"cmd\":\"capture\",\"port\":\"lan0\"}\n";
    for _ in 0..40 {
        slow.write_all(req).unwrap();
    }
    // Another client is served promptly all along.
    for _ in 0..10 {
        let reply = ctl_socket::request(&srv.path, &json!({"cmd": "hello"}), TIMEOUT).unwrap();
        assert_eq!(reply["ok"], json!(true));
    }
    // The server stopped reading the slow client rather than drop it or pile
    // up its replies; once it reads, it gets every one of them.
    for _ in 0..40 {
        let reply = read_json(&mut slow_r);
        assert_eq!(reply["blob"].as_str().unwrap().len(), 64 * 1024);
    }
}

#[test]
fn too_many_clients_are_refused() {
    let srv = Server::start();
    let mut held = Vec::new();
    for _ in 0..MAX_CLIENTS {
        let (mut w, mut r) = raw_client(&srv.path);
        // A round trip proves the server accepted this one.
        w.write_all(b"{\"cmd\":\"hello\"}\n").unwrap();
        assert_eq!(read_json(&mut r)["ok"], json!(true));
        held.push((w, r));
    }
    let (_w, mut r) = raw_client(&srv.path);
    assert_eq!(error_code(&read_json(&mut r)), "busy");
    // Once one leaves, a new client gets in.
    drop(held.pop());
    let reply = (0..50)
        .find_map(|_| {
            std::thread::sleep(Duration::from_millis(20));
            ctl_socket::request(&srv.path, &json!({"cmd": "hello"}), TIMEOUT)
                .ok()
                .filter(|v| v["ok"] == json!(true))
        })
        .unwrap();
    assert_eq!(reply["version"], json!("test"));
}

#[test]
fn subscribers_receive_published_events() {
    let srv = Server::start();
    let mut sub = ctl_socket::subscribe(&srv.path).unwrap();
    // A plain client is not subscribed and gets nothing unasked.
    let (_w, mut plain) = raw_client(&srv.path);
    plain
        .get_ref()
        .set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let first = json!({"event": "state", "instance": "lan-gw", "from": "backup", "to": "master"});
    let second = json!({"event": "state", "instance": "lan-gw", "from": "master", "to": "backup"});
    srv.publish(first.clone());
    srv.publish(second.clone());
    assert_eq!(sub.next().unwrap().unwrap(), first);
    assert_eq!(sub.next().unwrap().unwrap(), second);
    let mut line = String::new();
    assert!(plain.read_line(&mut line).is_err(), "{line}");
    // When the daemon goes away the stream ends.
    drop(srv);
    assert!(sub.next().is_none());
}

#[test]
fn symlink_and_regular_file_at_the_path_are_refused() {
    let dir = TempDir::new();
    let poll = Poll::new().unwrap();
    let target = dir.0.join("target");
    std::fs::write(&target, b"keep").unwrap();
    let link = dir.0.join("link.sock");
    std::os::unix::fs::symlink(&target, &link).unwrap();
    let e = CtlServer::bind(&link, None, poll.registry(), FIRST).unwrap_err();
    assert!(matches!(e, CtlError::Symlink { .. }), "{e}");
    // A dangling symlink too: never created through.
    let dangling = dir.0.join("dangling.sock");
    std::os::unix::fs::symlink(dir.0.join("nowhere"), &dangling).unwrap();
    let e = CtlServer::bind(&dangling, None, poll.registry(), FIRST).unwrap_err();
    assert!(matches!(e, CtlError::Symlink { .. }), "{e}");
    assert!(!dir.0.join("nowhere").exists());

    let e = CtlServer::bind(&target, None, poll.registry(), FIRST).unwrap_err();
    assert!(matches!(e, CtlError::NotSocket { .. }), "{e}");
    assert_eq!(std::fs::read(&target).unwrap(), b"keep");
}

#[test]
fn stale_socket_is_replaced_and_live_one_refused() {
    let dir = TempDir::new();
    let poll = Poll::new().unwrap();
    let path = dir.0.join("x.sock");
    drop(std::os::unix::net::UnixListener::bind(&path).unwrap());
    assert!(path.exists());
    let mut server = CtlServer::bind(&path, None, poll.registry(), FIRST).unwrap();
    let poll2 = Poll::new().unwrap();
    let e = CtlServer::bind(&path, None, poll2.registry(), FIRST).unwrap_err();
    assert!(matches!(e, CtlError::InUse { .. }), "{e}");
    server.shutdown();
    assert!(!path.exists());
}

#[test]
fn socket_mode_is_0660_under_umask_000_and_parent_is_created_0750() {
    let dir = TempDir::new();
    let poll = Poll::new().unwrap();
    let path = dir.0.join("run").join("xvrrp").join("xvrrp.sock");
    // SAFETY: umask only swaps the process mask; restored below.
    let old = unsafe { libc::umask(0) };
    let result = CtlServer::bind(&path, None, poll.registry(), FIRST);
    // SAFETY: as above.
    unsafe { libc::umask(old) };
    let server = result.unwrap();
    let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o7777;
    assert_eq!(mode, 0o660);
    let parent = std::fs::metadata(path.parent().unwrap()).unwrap();
    assert_eq!(parent.permissions().mode() & 0o7777, 0o750);
    drop(server);
    assert!(!path.exists(), "socket removed on drop");
}

#[test]
fn socket_group_is_applied() {
    let dir = TempDir::new();
    let poll = Poll::new().unwrap();
    let path = dir.0.join("g.sock");
    // "root" exists everywhere; gid 0.
    let _server = CtlServer::bind(&path, Some("root"), poll.registry(), FIRST).unwrap();
    assert_eq!(std::fs::metadata(&path).unwrap().gid(), 0);
    let e = CtlServer::bind(
        &dir.0.join("h.sock"),
        Some("no-such-group-xvrrp"),
        poll.registry(),
        FIRST + 100,
    )
    .unwrap_err();
    assert!(matches!(e, CtlError::UnknownGroup(_)), "{e}");
}

#[test]
fn client_reports_a_daemon_that_is_not_running() {
    let dir = TempDir::new();
    let missing = dir.0.join("missing.sock");
    let e = ctl_socket::request(&missing, &json!({"cmd": "status"}), TIMEOUT).unwrap_err();
    assert_eq!(
        e.to_string(),
        format!(
            "cannot reach xvrrp at {}: no such file (is the daemon running?)",
            missing.display()
        )
    );
    let stale = dir.0.join("stale.sock");
    drop(std::os::unix::net::UnixListener::bind(&stale).unwrap());
    let e = ctl_socket::request(&stale, &json!({"cmd": "status"}), TIMEOUT).unwrap_err();
    assert!(e.to_string().contains("connection refused"), "{e}");
}

#[test]
fn client_times_out_on_a_silent_daemon() {
    let dir = TempDir::new();
    let path = dir.0.join("silent.sock");
    // Accepts (via the backlog) but never answers.
    let _listener = std::os::unix::net::UnixListener::bind(&path).unwrap();
    let e = ctl_socket::request(&path, &json!({"cmd": "status"}), Duration::from_millis(200))
        .unwrap_err();
    assert!(matches!(e, CtlError::Timeout { .. }), "{e}");
}

// ---------------------------------------------------------------------------
// Bounded work, backpressure and timeouts, driven step by step from the test
// thread with the time passed in: no server thread, no waiting for timeouts.

/// A CtlServer whose events, passes and timeouts the test drives itself.
struct Direct {
    poll: Poll,
    events: Events,
    server: CtlServer,
    path: PathBuf,
    /// Requests answered so far.
    answered: usize,
    _dir: TempDir,
}

impl Direct {
    fn new() -> Direct {
        let dir = TempDir::new();
        let path = dir.0.join("run").join("xvrrp.sock");
        let poll = Poll::new().unwrap();
        let server = CtlServer::bind(&path, None, poll.registry(), FIRST).unwrap();
        Direct {
            poll,
            events: Events::with_capacity(128),
            server,
            path,
            answered: 0,
            _dir: dir,
        }
    }

    /// Hands every ready event to `handle_event` at `now`; returns the
    /// requests each call answered. Writes to a Unix socket are complete when
    /// they return, so a poll that does not wait sees them.
    fn handle_events(&mut self, now: Instant) -> Vec<Vec<Request>> {
        self.poll
            .poll(&mut self.events, Some(Duration::ZERO))
            .unwrap();
        let mut per_call = Vec::new();
        for event in self.events.iter() {
            let mut seen = Vec::new();
            self.server
                .handle_event(self.poll.registry(), now, event, &mut |req: &Request| {
                    seen.push(req.clone());
                    test_handler(req)
                });
            self.answered += seen.len();
            per_call.push(seen);
        }
        per_call
    }

    /// One pass with `budget`; returns the requests it answered.
    fn service_pending(&mut self, now: Instant, budget: usize) -> Vec<Request> {
        let mut seen = Vec::new();
        self.server
            .service_pending(self.poll.registry(), now, budget, &mut |req: &Request| {
                seen.push(req.clone());
                test_handler(req)
            });
        self.answered += seen.len();
        seen
    }

    /// Runs passes at `now` as the daemon does until no work is left,
    /// checking the bounds on the way; returns the number of passes.
    fn settle(&mut self, now: Instant) -> usize {
        for pass in 0..100_000 {
            let mut in_pass = self.service_pending(now, REQUESTS_PER_PASS).len();
            for call in self.handle_events(now) {
                assert!(
                    call.len() <= REQUESTS_PER_CALL,
                    "{} in one call",
                    call.len()
                );
                in_pass += call.len();
            }
            assert!(
                in_pass <= REQUESTS_PER_PASS,
                "{in_pass} requests in one pass"
            );
            if !self.server.pending_work() && self.handle_events(now).is_empty() {
                return pass;
            }
        }
        panic!("the server never ran out of work");
    }

    fn handle_timeout(&mut self, now: Instant) {
        self.server.handle_timeout(self.poll.registry(), now);
    }
}

/// Reads from `r` until the server closes the connection (EOF, or a reset
/// if it had our unread requests); returns the complete lines received.
fn lines_until_closed(r: &mut BufReader<UnixStream>) -> Vec<Value> {
    let mut bytes = Vec::new();
    if let Err(e) = r.read_to_end(&mut bytes) {
        assert_eq!(e.kind(), std::io::ErrorKind::ConnectionReset, "{e}");
    }
    bytes
        .split_inclusive(|&b| b == b'\n')
        .filter(|line| line.ends_with(b"\n"))
        .map(|line| serde_json::from_slice(line).unwrap())
        .collect()
}

/// The `priority` request client `i` of a flood sends: its name says whose it is.
fn tagged_request(i: usize) -> Vec<u8> {
    format!("{{\"cmd\":\"priority\",\"name\":\"c{i}\",\"priority\":1}}\n").into_bytes()
}

/// How many of `requests` each flood client sent.
fn per_client(requests: &[Request]) -> [usize; 3] {
    let mut n = [0; 3];
    for req in requests {
        let Request::Priority { name, .. } = req else {
            panic!("{req:?}")
        };
        n[name[1..].parse::<usize>().unwrap()] += 1;
    }
    n
}

#[test]
fn a_flood_of_requests_is_answered_a_few_per_call_and_finished_later() {
    let mut d = Direct::new();
    let now = Instant::now();
    let mut clients: Vec<_> = (0..3).map(|_| raw_client(&d.path)).collect();
    d.settle(now);
    assert_eq!(d.server.client_count(), 3);
    // A pass with nothing to do leaves all of a large budget to the events.
    assert!(d.service_pending(now, 1000).is_empty());
    // Each client writes 1000 requests at once and reads nothing for now.
    for (i, (w, _)) in clients.iter_mut().enumerate() {
        w.write_all(&tagged_request(i).repeat(1000)).unwrap();
    }
    // One readiness event per client: each call answers REQUESTS_PER_CALL
    // of its 1000 and leaves the rest pending.
    let calls = d.handle_events(now);
    assert_eq!(calls.len(), 3);
    for call in &calls {
        assert_eq!(call.len(), REQUESTS_PER_CALL);
    }
    assert!(d.server.pending_work());
    // Later passes carry on: at most `budget` each, REQUESTS_PER_CALL per
    // client, and every client gets its turn.
    let budget = 2 * REQUESTS_PER_CALL + 4;
    let mut totals = per_client(&calls.concat());
    let mut passes = 0;
    while d.server.pending_work() {
        // Pending means there may be work: the last read of a client may
        // find nothing, so a pass can answer none.
        let pass = d.service_pending(now, budget);
        assert!(pass.len() <= budget, "{} in a pass of {budget}", pass.len());
        let counts = per_client(&pass);
        assert!(counts.iter().all(|n| *n <= REQUESTS_PER_CALL), "{counts:?}");
        for (t, n) in totals.iter_mut().zip(counts) {
            *t += n;
        }
        // The events of a pass share its budget: nothing is left here.
        assert!(d.handle_events(now).concat().is_empty());
        passes += 1;
        if passes == 30 {
            assert!(totals.iter().all(|t| *t >= 150), "{totals:?}");
        }
        assert!(passes < 1000);
    }
    assert_eq!(totals, [1000; 3]);
    assert_eq!(d.answered, 3000);
    assert!(passes >= 3000 / budget - 2, "{passes} passes");
    // Every client gets all its replies, then the server closes the
    // half-closed connection.
    for (w, r) in &mut clients {
        w.shutdown(std::net::Shutdown::Write).unwrap();
        d.settle(now);
        let replies = lines_until_closed(r);
        assert_eq!(replies.len(), 1000);
        assert!(replies.iter().all(|v| error_code(v) == "unsupported"));
    }
    assert_eq!(d.server.client_count(), 0);
}

#[test]
fn the_events_after_a_pass_share_its_budget() {
    let mut d = Direct::new();
    let now = Instant::now();
    let mut clients: Vec<_> = (0..2).map(|_| raw_client(&d.path)).collect();
    d.settle(now);
    // A pass of 3 with nothing to do leaves 3 for the events that follow.
    assert!(d.service_pending(now, 3).is_empty());
    for (w, _) in &mut clients {
        w.write_all(&b"{\"cmd\":\"hello\"}\n".repeat(10)).unwrap();
    }
    let calls = d.handle_events(now);
    assert_eq!(calls.len(), 2);
    assert_eq!(calls.concat().len(), 3);
    // The rest waits for the next passes.
    assert!(d.server.pending_work());
    // Of the 17 left, a pass answers at most REQUESTS_PER_CALL per client.
    assert_eq!(
        d.service_pending(now, 100).len(),
        (10 - 3).min(REQUESTS_PER_CALL) + REQUESTS_PER_CALL
    );
    d.settle(now);
    assert_eq!(d.answered, 20);
}

#[test]
fn a_client_that_never_reads_is_not_read_then_dropped_after_the_stall_timeout() {
    let mut d = Direct::new();
    let t0 = Instant::now();
    // 100 requests for 64 KiB replies, never read.
    let (mut w, mut r) = raw_client(&d.path);
    w.write_all(&b"{\"cmd\":\"capture\",\"port\":\"lan0\"}\n".repeat(100))
        .unwrap();
    d.settle(t0);
    // Answered until MAX_OUTPUT was queued past what the socket took, then
    // neither read nor answered: the queue does not grow and the client is
    // no pending work (the control loop does not spin on it).
    assert!(d.answered >= MAX_OUTPUT / (64 * 1024), "{}", d.answered);
    assert!(d.answered < 100, "{}", d.answered);
    assert!(!d.server.pending_work());
    let answered = d.answered;
    d.settle(t0 + STALL_TIMEOUT / 2);
    assert_eq!(d.answered, answered);
    // Full since t0: closed at t0 + STALL_TIMEOUT, not before.
    assert_eq!(d.server.poll_timeout(), Some(t0 + STALL_TIMEOUT));
    d.handle_timeout(t0 + STALL_TIMEOUT - Duration::from_millis(1));
    assert_eq!(d.server.client_count(), 1);
    d.handle_timeout(t0 + STALL_TIMEOUT);
    assert_eq!(d.server.client_count(), 0);
    assert_eq!(d.server.poll_timeout(), None);
    // What it gets is what was answered before it stopped being read, the
    // last reply perhaps cut short by the close.
    let got = lines_until_closed(&mut r);
    assert!(got.len() <= answered, "{} of {answered}", got.len());
}

#[test]
fn idle_clients_are_closed_but_subscribers_are_not() {
    let mut d = Direct::new();
    let t0 = Instant::now();
    let (_silent_w, mut silent) = raw_client(&d.path);
    let (mut sub_w, mut sub) = raw_client(&d.path);
    let (mut busy_w, mut busy) = raw_client(&d.path);
    let (mut partial_w, mut partial) = raw_client(&d.path);
    sub_w.write_all(b"{\"cmd\":\"subscribe\"}\n").unwrap();
    d.settle(t0);
    assert_eq!(read_json(&mut sub)["ok"], json!(true));
    assert_eq!(d.server.client_count(), 4);
    assert_eq!(d.server.poll_timeout(), Some(t0 + IDLE_TIMEOUT));
    // Half-way, one client sends a request and another half a line.
    let t1 = t0 + IDLE_TIMEOUT / 2;
    busy_w.write_all(b"{\"cmd\":\"hello\"}\n").unwrap();
    partial_w.write_all(b"{\"cmd\":").unwrap();
    d.settle(t1);
    assert_eq!(read_json(&mut busy)["version"], json!("test"));
    d.handle_timeout(t0 + IDLE_TIMEOUT - Duration::from_millis(1));
    assert_eq!(d.server.client_count(), 4);
    // The silent one and the one that never finished its line go.
    d.handle_timeout(t0 + IDLE_TIMEOUT);
    assert_eq!(d.server.client_count(), 2);
    assert!(lines_until_closed(&mut silent).is_empty());
    assert!(lines_until_closed(&mut partial).is_empty());
    assert_eq!(d.server.poll_timeout(), Some(t1 + IDLE_TIMEOUT));
    d.handle_timeout(t1 + IDLE_TIMEOUT);
    assert_eq!(d.server.client_count(), 1);
    assert!(lines_until_closed(&mut busy).is_empty());
    // The subscriber stays, however long, and still gets its events.
    assert_eq!(d.server.poll_timeout(), None);
    d.handle_timeout(t0 + IDLE_TIMEOUT * 100);
    assert_eq!(d.server.client_count(), 1);
    let event = json!({"event": "transition", "to": "master"});
    d.server.publish(d.poll.registry(), &event);
    assert_eq!(read_json(&mut sub), event);
}

#[test]
fn when_every_slot_is_taken_the_next_client_is_busy_until_idle_ones_are_reaped() {
    let mut d = Direct::new();
    let t0 = Instant::now();
    let mut held: Vec<_> = (0..MAX_CLIENTS).map(|_| raw_client(&d.path)).collect();
    // More than one call's worth of connections: accepting carries on in
    // the following passes.
    d.settle(t0);
    assert_eq!(d.server.client_count(), MAX_CLIENTS);
    let (_w, mut r) = raw_client(&d.path);
    d.settle(t0);
    let refused = lines_until_closed(&mut r);
    assert_eq!(refused.len(), 1);
    assert_eq!(error_code(&refused[0]), "busy");
    // The silent clients are reaped, and then a new one gets in.
    d.handle_timeout(t0 + IDLE_TIMEOUT);
    assert_eq!(d.server.client_count(), 0);
    for (_, r) in &mut held {
        assert!(lines_until_closed(r).is_empty());
    }
    let (mut w, mut r) = raw_client(&d.path);
    w.write_all(b"{\"cmd\":\"hello\"}\n").unwrap();
    d.settle(t0 + IDLE_TIMEOUT);
    assert_eq!(read_json(&mut r)["version"], json!("test"));
}

#[test]
fn requests_sent_just_before_hanging_up_are_carried_out() {
    let mut d = Direct::new();
    let now = Instant::now();
    let (mut w, r) = raw_client(&d.path);
    w.write_all(&b"{\"cmd\":\"hello\"}\n".repeat(100)).unwrap();
    drop(w);
    drop(r);
    d.settle(now);
    assert_eq!(d.answered, 100);
    assert_eq!(d.server.client_count(), 0);
}

// ---------------------------------------------------------------------------
// Peer credentials, with real peers of other uids and groups (needs root).

/// Connects to `path` from a forked child running as `uid`, `gid` and
/// supplementary `groups`, sends a `hello` line, shuts down its sending side
/// and returns what the server sent until it closed the connection.
fn exchange_as(path: &Path, uid: u32, gid: u32, groups: &[u32]) -> String {
    use std::os::unix::ffi::OsStrExt;
    use std::os::unix::io::FromRawFd;

    // Everything the child uses is made before fork: with other threads in
    // this process, the child may only make async-signal-safe calls (no
    // allocation, no locks) until it exits.
    // SAFETY: sockaddr_un is plain old data; all zeroes is a valid value.
    let mut addr: libc::sockaddr_un = unsafe { std::mem::zeroed() };
    addr.sun_family = libc::sa_family_t::try_from(libc::AF_UNIX).unwrap();
    let bytes = path.as_os_str().as_bytes();
    assert!(bytes.len() < addr.sun_path.len());
    for (d, s) in addr.sun_path.iter_mut().zip(bytes) {
        *d = libc::c_char::from_ne_bytes([*s]);
    }
    let addr_len = libc::socklen_t::try_from(std::mem::size_of::<libc::sockaddr_un>()).unwrap();
    let timeout = libc::timeval {
        tv_sec: 5,
        tv_usec: 0,
    };
    let timeout_len = libc::socklen_t::try_from(std::mem::size_of::<libc::timeval>()).unwrap();
    let request = b"{\"cmd\":\"hello\"}\n";
    let mut pipe = [0; 2];
    // Close-on-exec keeps the pipe out of processes other tests may start
    // meanwhile, which would hold its write end open.
    // SAFETY: `pipe` has room for the two descriptors.
    let rc = unsafe { libc::pipe2(pipe.as_mut_ptr(), libc::O_CLOEXEC) };
    assert_eq!(rc, 0);
    // SAFETY: the child makes only raw system calls on memory prepared above
    // and leaves with _exit, never returning into the test harness.
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0, "fork failed");
    if pid == 0 {
        // SAFETY: async-signal-safe calls only, on live locals; the exit
        // status says which step failed.
        unsafe {
            let step = (|| {
                if libc::setgroups(groups.len(), groups.as_ptr()) != 0 {
                    return 10;
                }
                if libc::setgid(gid) != 0 {
                    return 11;
                }
                if libc::setuid(uid) != 0 {
                    return 12;
                }
                let s = libc::socket(libc::AF_UNIX, libc::SOCK_STREAM, 0);
                if s < 0 {
                    return 13;
                }
                libc::setsockopt(
                    s,
                    libc::SOL_SOCKET,
                    libc::SO_RCVTIMEO,
                    std::ptr::from_ref(&timeout).cast(),
                    timeout_len,
                );
                if libc::connect(s, std::ptr::from_ref(&addr).cast(), addr_len) != 0 {
                    return 14;
                }
                // A refused peer may be closed before this: no SIGPIPE, and
                // the error is fine.
                libc::send(
                    s,
                    request.as_ptr().cast(),
                    request.len(),
                    libc::MSG_NOSIGNAL,
                );
                libc::shutdown(s, libc::SHUT_WR);
                let mut buf = [0u8; 4096];
                loop {
                    let n = libc::read(s, buf.as_mut_ptr().cast(), buf.len());
                    let Ok(n) = usize::try_from(n) else { break };
                    if n == 0 || libc::write(pipe[1], buf.as_ptr().cast(), n) < 0 {
                        break;
                    }
                }
                0
            })();
            libc::_exit(step);
        }
    }
    // SAFETY: the write end is ours to close; the read end becomes the File.
    let mut out = unsafe {
        libc::close(pipe[1]);
        std::fs::File::from_raw_fd(pipe[0])
    };
    let mut text = String::new();
    out.read_to_string(&mut text).unwrap();
    let mut status = 0;
    // SAFETY: waits for the child forked above.
    assert_eq!(unsafe { libc::waitpid(pid, &mut status, 0) }, pid);
    assert!(
        libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
        "child failed at step {}",
        libc::WEXITSTATUS(status)
    );
    text
}

#[test]
fn peers_are_let_in_by_uid_and_group() {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("skipped: needs root to connect as other users");
        return;
    }
    // Debian's nobody (65534) and nogroup (65534); 4242 is a group no one is in.
    let srv = Server::start_with_group(Some("nogroup"));
    let group = std::fs::metadata(&srv.path).unwrap().gid();
    // Open the file permissions up so that only the server's check decides.
    let run = srv.path.parent().unwrap();
    std::fs::set_permissions(run, std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::set_permissions(&srv.path, std::fs::Permissions::from_mode(0o666)).unwrap();
    let (nobody, other) = (65_534, 4242);

    let reply = |text: &str| -> Value {
        assert_eq!(text.lines().count(), 1, "{text:?}");
        serde_json::from_str(text).unwrap()
    };
    // Neither root, nor the daemon's user, nor in the group: one error line, closed.
    let refused = reply(&exchange_as(&srv.path, nobody, other, &[]));
    assert_eq!(error_code(&refused), "permission-denied");
    assert!(refused["error"]["message"]
        .as_str()
        .unwrap()
        .contains("uid 65534"));
    // In the group as primary or supplementary group: served.
    let primary = reply(&exchange_as(&srv.path, nobody, group, &[]));
    assert_eq!(primary["version"], json!("test"));
    let supplementary = reply(&exchange_as(&srv.path, nobody, other, &[group]));
    assert_eq!(supplementary["version"], json!("test"));
    // Root is always let in.
    let root = reply(&exchange_as(&srv.path, 0, other, &[]));
    assert_eq!(root["version"], json!("test"));
}
