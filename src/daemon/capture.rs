//! `capture` requests: a capture thread per capture, so that the control
//! thread, which runs the VRRP timers, never formats or writes frames.
//!
//! The control thread only checks the port, claims it (one capture per
//! port: a second is refused `busy`), binds a one-shot Unix socket beside
//! the control socket (same mode and group, so the same users may connect)
//! and starts the thread; its reply names the socket. The thread accepts
//! one connection, arms the port's ring, drains it into pcapng blocks
//! (a Section Header, the port's Interface Description, one Enhanced
//! Packet per frame with its direction and a comment, and at the end an
//! Interface Statistics block with the frames lost) and stops after the
//! count, when the client shuts down its side (it then still gets the
//! statistics), when the client is gone or stops reading, or when the
//! daemon stops. Then the port is free again.

use std::{
    io::{ErrorKind, Read, Write},
    os::unix::{
        fs::{MetadataExt, PermissionsExt},
        net::{UnixListener, UnixStream},
    },
    path::{Path, PathBuf},
    sync::{atomic::Ordering, Arc},
    time::{Duration, Instant, SystemTime},
};

use serde_json::json;
use xvrrp_control::{ctl_socket::Response, CaptureFilter};
use xvrrp_dataplane::{
    capture::{CapturedFrame, Verdict, SNAP_LEN},
    shared::Shared,
    Dataplane,
};
use xvrrp_wire::pcapng::{
    Direction, EnhancedPacket, InterfaceDescription, InterfaceStatistics, SectionHeader,
};

/// How long the one-shot socket waits for the client to connect.
const ACCEPT_TIMEOUT: Duration = Duration::from_secs(5);
/// How long the thread sleeps when the ring is empty (it also checks then
/// whether the client hung up).
const IDLE_WAIT: Duration = Duration::from_millis(10);
/// Frames drained into one write.
const FRAMES_PER_WRITE: usize = 256;
/// A client that reads nothing for this long ends its capture.
const WRITE_TIMEOUT: Duration = Duration::from_secs(10);
/// While frames keep coming, how often the thread still looks whether the
/// client shut down its side.
const HANGUP_CHECK: Duration = Duration::from_millis(100);

/// What the control thread needs to start captures.
pub(super) struct Launcher {
    shared: Arc<Shared>,
    /// Port names, by index.
    ports: Vec<String>,
    /// The control socket: its directory, name, mode and group are reused.
    ctl_path: PathBuf,
    /// Whether `socket_group` is set (else the socket is the owner's only).
    group_access: bool,
}

impl Launcher {
    pub(super) fn new(dp: &Dataplane, ctl_path: &Path, group_access: bool) -> Self {
        Self {
            shared: Arc::clone(dp.shared()),
            ports: dp.layout().iter().map(|p| p.name.clone()).collect(),
            ctl_path: ctl_path.to_path_buf(),
            group_access,
        }
    }

    /// Answers a `capture` request: the path of the socket to read the
    /// capture from, or why not.
    pub(super) fn start(&self, port: &str, count: Option<u64>, filter: CaptureFilter) -> Response {
        let Some(idx) = self.ports.iter().position(|p| p == port) else {
            return Response::Err {
                code: "unknown-port",
                message: format!(
                    "no port named {port} (the fast path serves: {})",
                    self.ports.join(", ")
                ),
            };
        };
        if !self.shared.capture.claim(idx) {
            return Response::Err {
                code: "busy",
                message: format!("a capture already runs on port {port}"),
            };
        }
        let path = self.socket_path(port);
        let listener = match self.bind(&path) {
            Ok(l) => l,
            Err(e) => {
                self.shared.capture.release(idx);
                let _ = std::fs::remove_file(&path);
                return internal(format!("capture socket {}: {e}", path.display()));
            }
        };
        let session = Session {
            shared: Arc::clone(&self.shared),
            port: idx,
            name: port.to_owned(),
            ports: self.ports.clone(),
            count,
            filter,
            path: path.clone(),
        };
        let spawned = std::thread::Builder::new()
            .name(format!("xvrrp-capture-{port}"))
            .spawn(move || session.run(&listener));
        if let Err(e) = spawned {
            self.shared.capture.release(idx);
            let _ = std::fs::remove_file(&path);
            return internal(format!("starting the capture thread: {e}"));
        }
        tracing::info!(port, filter = filter.name(), "capture started");
        let mut m = serde_json::Map::new();
        m.insert("socket".into(), json!(path));
        m.insert("port".into(), json!(port));
        m.insert("snap_len".into(), json!(SNAP_LEN));
        Response::Ok(m)
    }

    /// `<control socket>.capture-<port>`, beside the control socket.
    fn socket_path(&self, port: &str) -> PathBuf {
        let mut name = self
            .ctl_path
            .file_name()
            .map(std::ffi::OsStr::to_os_string)
            .unwrap_or_default();
        name.push(format!(".capture-{port}"));
        self.ctl_path.with_file_name(name)
    }

    /// A listener at `path` with the control socket's group, mode 0660 when
    /// a socket group is configured and 0600 otherwise: the users the
    /// control socket lets in.
    fn bind(&self, path: &Path) -> std::io::Result<UnixListener> {
        // A socket left by a capture of a daemon that died.
        match std::fs::remove_file(path) {
            Err(e) if e.kind() != ErrorKind::NotFound => return Err(e),
            _ => {}
        }
        let listener = UnixListener::bind(path)?;
        let mode = if self.group_access { 0o660 } else { 0o600 };
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))?;
        let gid = std::fs::metadata(&self.ctl_path)?.gid();
        std::os::unix::fs::lchown(path, None, Some(gid))?;
        listener.set_nonblocking(true)?;
        Ok(listener)
    }
}

fn internal(message: String) -> Response {
    Response::Err {
        code: "internal",
        message,
    }
}

/// One capture, run by its own thread.
struct Session {
    shared: Arc<Shared>,
    port: usize,
    name: String,
    ports: Vec<String>,
    count: Option<u64>,
    filter: CaptureFilter,
    path: PathBuf,
}

/// Why a capture ended.
enum End {
    /// Count reached, the client shut down its side, or the daemon stops:
    /// the statistics block follows.
    Done,
    /// The client is gone or stopped reading.
    Gone,
}

impl Session {
    fn run(self, listener: &UnixListener) {
        let stream = self.accept(listener);
        let _ = std::fs::remove_file(&self.path);
        match stream {
            Some(stream) => {
                let (written, lost) = self.stream(stream);
                tracing::info!(port = %self.name, frames = written, lost, "capture ended");
            }
            None => tracing::warn!(port = %self.name, "capture abandoned: no client connected"),
        }
        self.shared.capture.release(self.port);
    }

    fn accept(&self, listener: &UnixListener) -> Option<UnixStream> {
        let deadline = Instant::now() + ACCEPT_TIMEOUT;
        while Instant::now() < deadline && !self.shared.stop.load(Ordering::Relaxed) {
            match listener.accept() {
                Ok((stream, _)) => return Some(stream),
                Err(e) if e.kind() == ErrorKind::WouldBlock => std::thread::sleep(IDLE_WAIT),
                Err(_) => return None,
            }
        }
        None
    }

    /// Streams the capture to `stream`; returns the frames written and lost.
    fn stream(&self, mut stream: UnixStream) -> (u64, u64) {
        if stream.set_nonblocking(false).is_err()
            || stream.set_write_timeout(Some(WRITE_TIMEOUT)).is_err()
            || stream.set_read_timeout(Some(IDLE_WAIT)).is_err()
        {
            return (0, 0);
        }
        let clock = WallClock::new();
        let mut buf = Vec::with_capacity(64 * 1024);
        let shb = SectionHeader {
            application: concat!("xvrrp ", env!("CARGO_PKG_VERSION")),
        };
        let description = format!(
            "xvrrp fast path, port {} (frames the AF_XDP workers see), filter {}",
            self.name,
            self.filter.name()
        );
        let idb = InterfaceDescription {
            name: &self.name,
            description: &description,
            snap_len: u32::try_from(SNAP_LEN).unwrap_or(u32::MAX),
        };
        append(&mut buf, shb.buffer_len(), |b| shb.emit(b));
        append(&mut buf, idb.buffer_len(), |b| idb.emit(b));
        if stream.write_all(&buf).is_err() {
            return (0, 0);
        }
        buf.clear();
        let lost_before = self.lost();
        self.shared.capture.arm(self.port, self.filter);
        let mut written = 0u64;
        let mut comment = String::new();
        let mut next_check = Instant::now() + HANGUP_CHECK;
        let end = loop {
            if self.shared.stop.load(Ordering::Relaxed) {
                break End::Done;
            }
            let mut n = 0;
            while n < FRAMES_PER_WRITE && self.count.is_none_or(|c| written < c) {
                let Some(frame) = self.shared.capture.pop(self.port) else {
                    break;
                };
                self.describe(&frame, &mut comment);
                let epb = EnhancedPacket {
                    interface: 0,
                    timestamp_us: clock.micros(frame.at),
                    data: frame.data(),
                    original_len: u32::try_from(frame.original_len).unwrap_or(u32::MAX),
                    direction: Some(frame.direction),
                    comment: &comment,
                };
                append(&mut buf, epb.buffer_len(), |b| epb.emit(b));
                n += 1;
                written += 1;
            }
            if !buf.is_empty() {
                if stream.write_all(&buf).is_err() {
                    break End::Gone;
                }
                buf.clear();
            }
            if self.count.is_some_and(|c| written >= c) {
                break End::Done;
            }
            let now = Instant::now();
            if n == 0 || now >= next_check {
                next_check = now + HANGUP_CHECK;
                // Nothing to send (or time to look): wait a little on the
                // client's side, which sends nothing but its end.
                let mut byte = [0u8; 64];
                match stream.read(&mut byte) {
                    Ok(0) => break End::Done,
                    Ok(_) => {}
                    Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
                    Err(_) => break End::Gone,
                }
            }
        };
        // Stop the copies before counting what was lost.
        self.shared.capture.disarm(self.port);
        let lost = self.lost().saturating_sub(lost_before);
        if let End::Done = end {
            let isb = InterfaceStatistics {
                interface: 0,
                timestamp_us: clock.micros(Instant::now()),
                delivered: written,
                dropped: lost,
            };
            append(&mut buf, isb.buffer_len(), |b| isb.emit(b));
            let _ = stream.write_all(&buf);
        }
        (written, lost)
    }

    /// The comment of a frame: direction, worker, and what became of it.
    fn describe(&self, frame: &CapturedFrame, out: &mut String) {
        use std::fmt::Write as _;
        out.clear();
        let port = |i: usize| self.ports.get(i).map_or("?", String::as_str);
        let dir = match frame.direction {
            Direction::Inbound => "in",
            Direction::Outbound => "out",
        };
        let _ = write!(out, "{dir}, worker {}, ", frame.worker);
        let _ = match (frame.direction, frame.verdict) {
            (_, Verdict::Dropped(r)) => write!(out, "dropped: {}", r.name()),
            (Direction::Inbound, Verdict::Forwarded { port: p }) => {
                write!(out, "forwarded to {}", port(p))
            }
            (Direction::Outbound, Verdict::Forwarded { port: p }) => {
                write!(out, "forwarded from {}", port(p))
            }
            (_, Verdict::Answered { port: p }) => write!(out, "answered on {}", port(p)),
            (_, Verdict::Parked) => write!(out, "parked: resolving its next hop"),
            (_, Verdict::Consumed) => write!(out, "consumed"),
            (_, Verdict::Reply) => write!(out, "reply"),
            (_, Verdict::Request) => write!(out, "resolution request"),
        };
    }

    /// Copies lost on this port, all workers, as last published.
    fn lost(&self) -> u64 {
        self.shared
            .stats
            .iter()
            .filter_map(|s| s.snapshot().ports.get(self.port).map(|p| p.capture_lost))
            .sum()
    }
}

/// Appends a block of `len` bytes written by `emit` to `buf`.
fn append(
    buf: &mut Vec<u8>,
    len: usize,
    emit: impl FnOnce(&mut [u8]) -> Result<usize, xvrrp_wire::WireError>,
) {
    let start = buf.len();
    buf.resize(start + len, 0);
    // The buffer has exactly `len` bytes for the block: emit cannot fail.
    if emit(buf.get_mut(start..).unwrap_or(&mut [])).is_err() {
        buf.truncate(start);
    }
}

/// Wall-clock time of the workers' monotonic stamps: one reading of both
/// clocks at the start of the capture.
struct WallClock {
    wall: SystemTime,
    mono: Instant,
}

impl WallClock {
    fn new() -> Self {
        Self {
            wall: SystemTime::now(),
            mono: Instant::now(),
        }
    }

    /// Microseconds since the Unix epoch at `at`.
    fn micros(&self, at: Instant) -> u64 {
        let wall = if at >= self.mono {
            self.wall.checked_add(at - self.mono)
        } else {
            self.wall.checked_sub(self.mono - at)
        };
        wall.and_then(|w| w.duration_since(SystemTime::UNIX_EPOCH).ok())
            .map_or(0, |d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX))
    }
}
