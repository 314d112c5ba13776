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
use std::time::Duration;

use mio::{Events, Poll, Token, Waker};
use serde_json::{json, Map, Value};
use xvrrp_control::ctl_socket::{
    self, CtlError, CtlServer, Request, Response, MAX_CLIENTS, MAX_LINE,
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

/// A CtlServer in its own poll loop; events sent on `events` are published.
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
                let mut server = CtlServer::bind(&path, None, poll.registry(), FIRST).unwrap();
                ready_tx.send(waker).unwrap();
                let mut events = Events::with_capacity(128);
                let mut handler = test_handler;
                while !stop.load(Ordering::Relaxed) {
                    poll.poll(&mut events, Some(Duration::from_millis(100)))
                        .unwrap();
                    for event in events.iter() {
                        if event.token() == WAKER {
                            while let Ok(ev) = events_rx.try_recv() {
                                server.publish(poll.registry(), &ev);
                            }
                        } else {
                            assert!(server.owns(event.token()));
                            server.handle_event(poll.registry(), event, &mut handler);
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
fn a_client_that_never_reads_does_not_block_the_server() {
    let srv = Server::start();
    // The stuck client asks for 64 KiB replies and never reads them.
    let (mut stuck, _) = raw_client(&srv.path);
    stuck.set_write_timeout(Some(TIMEOUT)).unwrap();
    let req = b"{\"cmd\":\"capture\",\"port\":\"lan0\"}\n";
    for _ in 0..40 {
        // The server may already have dropped it: a write error is fine.
        if stuck.write_all(req).is_err() {
            break;
        }
    }
    // Another client is served promptly all along.
    for _ in 0..10 {
        let reply = ctl_socket::request(&srv.path, &json!({"cmd": "hello"}), TIMEOUT).unwrap();
        assert_eq!(reply["ok"], json!(true));
    }
    // 40 × 64 KiB exceeds the 1 MiB output cap: the stuck client was dropped,
    // so reading its socket ends (EOF or reset) before 40 replies arrive.
    let mut total = 0usize;
    let mut buf = vec![0u8; 1 << 16];
    loop {
        match stuck.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => total += n,
        }
    }
    assert!(total < 40 * 64 * 1024, "read {total} bytes");
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
