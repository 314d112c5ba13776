//! The control socket: a Unix stream socket carrying one JSON object per
//! line in each direction. A request is `{"cmd": "status", ...}`; a reply
//! is `{"ok": true, ...}`, or
//! `{"ok": false, "error": {"code": "...", "message": "..."}}`
//! (docs/conformance.md, "Product rules").
//!
//! [`CtlServer`] plugs into the control thread's `mio::Poll`, the thread that
//! also runs the VRRP timers, so it never blocks and does a bounded amount of
//! work per call: a few requests per client ([`REQUESTS_PER_CALL`]), a budget
//! per pass of the control loop for all clients together
//! ([`REQUESTS_PER_PASS`]), a bounded number of bytes read. Work left over is
//! carried on by [`CtlServer::service_pending`]. It bounds what each client
//! can make it hold (line length, unread replies, number of clients); a
//! client that leaves [`MAX_OUTPUT`] of replies unread is not read until it
//! reads them. It closes clients that stay silent ([`IDLE_TIMEOUT`]) or leave
//! their replies unread ([`STALL_TIMEOUT`]), with time passed in
//! ([`CtlServer::handle_timeout`], [`CtlServer::poll_timeout`]). It lets in
//! root, the daemon's own user and members of the socket's group only
//! (`SO_PEERCRED`). Malformed requests get an error reply and the connection
//! stays open. [`request`] and [`subscribe`] are the blocking client side the
//! CLI uses.

use std::ffi::CString;
use std::io::{self, BufRead, BufReader, ErrorKind, Read, Write};
use std::os::fd::AsRawFd;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{DirBuilderExt, FileTypeExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use mio::net::{UnixListener, UnixStream};
use mio::{Interest, Registry, Token};
use serde_json::{Map, Value};

use crate::CaptureFilter;

/// Longest request line accepted, newline excluded.
pub const MAX_LINE: usize = 64 * 1024;
/// Most clients connected at once; more are refused.
pub const MAX_CLIENTS: usize = 64;
/// Most reply bytes queued for one client: at this point the server stops
/// reading its requests until it reads its replies (one reply may take it
/// past the mark by its own size). A subscriber that an event would take
/// past it is dropped: events cannot wait.
pub const MAX_OUTPUT: usize = 1024 * 1024;
/// Most requests answered for one client in one call of
/// [`CtlServer::handle_event`] or [`CtlServer::service_pending`], so that one
/// client cannot take a whole pass.
pub const REQUESTS_PER_CALL: usize = 8;
/// Requests answered per pass of the control loop, all clients together: the
/// budget the daemon gives [`CtlServer::service_pending`]. Rendering a reply
/// keeps the control thread from the VRRP timers, so a pass does little.
pub const REQUESTS_PER_PASS: usize = 16;
/// A client that sends no complete request line for this long is closed,
/// unless it subscribed: it is silent, half-open or gone, and holds a slot.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(60);
/// A client whose unread replies stay at [`MAX_OUTPUT`] for this long is closed.
pub const STALL_TIMEOUT: Duration = Duration::from_secs(10);
/// Longest reply line the client side accepts.
pub const MAX_REPLY: usize = 16 * 1024 * 1024;
/// Client-side timeout the CLI uses.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);

const SOCKET_MODE: u32 = 0o660;
const DIR_MODE: u32 = 0o750;
const READ_CHUNK: usize = 8192;
/// Most bytes read from one client in one call.
const READ_PER_CALL: usize = 2 * READ_CHUNK;
/// Most connections accepted in one call; the rest wait for the next pass.
const ACCEPTS_PER_CALL: usize = 16;
/// Linux's NGROUPS_MAX: no peer has more supplementary groups.
const MAX_GROUPS: usize = 65_536;

/// Error code of a reply to a malformed request.
pub const BAD_REQUEST: &str = "bad-request";
/// Error code sent to a client refused because too many are connected.
pub const BUSY: &str = "busy";
/// Error code sent to a peer whose credentials do not let it in.
pub const PERMISSION_DENIED: &str = "permission-denied";

// ---------------------------------------------------------------------------
// Requests and responses

/// A decoded request line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Request {
    /// `{"cmd":"hello"}`: daemon version.
    Hello,
    /// `{"cmd":"status"}`: every virtual router.
    Status,
    /// `{"cmd":"stats"}`: counters by port, worker and instance.
    Stats,
    /// `{"cmd":"priority","name":N,"priority":P}`: change a priority at run time.
    Priority {
        /// Instance name.
        name: String,
        /// New priority (1..=255).
        priority: u8,
    },
    /// `{"cmd":"drain","name":N}` or `{"cmd":"drain","all":true}`: planned handover.
    Drain {
        /// Instance name; `None` drains all.
        name: Option<String>,
    },
    /// `{"cmd":"resume","name":N}` or `{"cmd":"resume","all":true}`: undo drain.
    Resume {
        /// Instance name; `None` resumes all.
        name: Option<String>,
    },
    /// `{"cmd":"reload"}`: re-read the configuration.
    Reload,
    /// `{"cmd":"routes"}`: the fast path's forwarding table.
    Routes,
    /// `{"cmd":"neighbors"}`: the fast path's neighbour table.
    Neighbors,
    /// `{"cmd":"capture","port":P,"count":N,"filter":F}`: copy fast-path
    /// frames (`filter` is one of [`CaptureFilter::name`], default all).
    Capture {
        /// Port name.
        port: String,
        /// Frames to copy; `None` until the client hangs up.
        count: Option<u64>,
        /// Which frames.
        filter: CaptureFilter,
    },
    /// `{"cmd":"subscribe"}`: one line per state transition until hang-up.
    Subscribe,
}

const COMMANDS: &[&str] = &[
    "hello",
    "status",
    "stats",
    "priority",
    "drain",
    "resume",
    "reload",
    "routes",
    "neighbors",
    "capture",
    "subscribe",
];

impl Request {
    /// The wire form, as [`parse_request`] reads it.
    pub fn to_json(&self) -> Value {
        let mut m = Map::new();
        let cmd = match self {
            Request::Hello => "hello",
            Request::Status => "status",
            Request::Stats => "stats",
            Request::Priority { name, priority } => {
                m.insert("name".into(), name.clone().into());
                m.insert("priority".into(), (*priority).into());
                "priority"
            }
            Request::Drain { name } | Request::Resume { name } => {
                match name {
                    Some(n) => m.insert("name".into(), n.clone().into()),
                    None => m.insert("all".into(), true.into()),
                };
                if matches!(self, Request::Drain { .. }) {
                    "drain"
                } else {
                    "resume"
                }
            }
            Request::Reload => "reload",
            Request::Routes => "routes",
            Request::Neighbors => "neighbors",
            Request::Capture {
                port,
                count,
                filter,
            } => {
                m.insert("port".into(), port.clone().into());
                if let Some(c) = count {
                    m.insert("count".into(), (*c).into());
                }
                if *filter != CaptureFilter::All {
                    m.insert("filter".into(), filter.name().into());
                }
                "capture"
            }
            Request::Subscribe => "subscribe",
        };
        m.insert("cmd".into(), cmd.into());
        Value::Object(m)
    }
}

/// Why a request line was refused; sent back as a `bad-request` error.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RequestError {
    /// The line exceeds [`MAX_LINE`].
    #[error("request line is longer than {max} bytes")]
    TooLong {
        /// The limit.
        max: usize,
    },
    /// The line is blank.
    #[error("empty request; send a JSON object like {{\"cmd\":\"status\"}}")]
    Empty,
    /// The line contains a NUL byte.
    #[error("request contains a NUL byte")]
    Nul,
    /// The line is not UTF-8.
    #[error("request is not valid UTF-8")]
    Utf8,
    /// The line is not JSON.
    #[error("request is not valid JSON: {0}")]
    Json(String),
    /// The JSON is not an object.
    #[error("request must be a JSON object like {{\"cmd\":\"status\"}}")]
    NotObject,
    /// No `cmd` string.
    #[error("request has no \"cmd\" string")]
    MissingCmd,
    /// `cmd` names no command.
    #[error("unknown command {0:?} (expected one of: hello, status, stats, priority, drain, resume, reload, routes, neighbors, capture, subscribe)")]
    UnknownCmd(String),
    /// A field the command needs is absent.
    #[error("{cmd}: missing field {field:?}")]
    MissingField {
        /// The command.
        cmd: &'static str,
        /// The field.
        field: &'static str,
    },
    /// A field has the wrong type or value.
    #[error("{cmd}: field {field:?} must be {expected}")]
    BadField {
        /// The command.
        cmd: &'static str,
        /// The field.
        field: &'static str,
        /// What it must be.
        expected: &'static str,
    },
    /// A field the command does not take.
    #[error("{cmd}: unknown field {field:?}")]
    UnknownField {
        /// The command.
        cmd: &'static str,
        /// The field.
        field: String,
    },
    /// `drain`/`resume` need exactly one of `name` and `all`.
    #[error("{cmd}: give either \"name\" or \"all\": true")]
    NameOrAll {
        /// The command.
        cmd: &'static str,
    },
}

/// Decodes one request line (a trailing `\r` is ignored). Never panics.
///
/// # Errors
///
/// A [`RequestError`] naming what is wrong with the line.
pub fn parse_request(line: &[u8]) -> Result<Request, RequestError> {
    if line.len() > MAX_LINE {
        return Err(RequestError::TooLong { max: MAX_LINE });
    }
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    if line.contains(&0) {
        return Err(RequestError::Nul);
    }
    let text = std::str::from_utf8(line).map_err(|_| RequestError::Utf8)?;
    if text.trim().is_empty() {
        return Err(RequestError::Empty);
    }
    // serde_json bounds nesting depth, so hostile input cannot exhaust the stack.
    let value: Value = serde_json::from_str(text).map_err(|e| RequestError::Json(e.to_string()))?;
    let Value::Object(obj) = value else {
        return Err(RequestError::NotObject);
    };
    let cmd_text = obj
        .get("cmd")
        .and_then(Value::as_str)
        .ok_or(RequestError::MissingCmd)?;
    let cmd = COMMANDS
        .iter()
        .copied()
        .find(|c| *c == cmd_text)
        .ok_or_else(|| RequestError::UnknownCmd(cmd_text.to_string()))?;
    let allowed: &[&str] = match cmd {
        "priority" => &["name", "priority"],
        "drain" | "resume" => &["name", "all"],
        "capture" => &["port", "count", "filter"],
        _ => &[],
    };
    if let Some(extra) = obj
        .keys()
        .find(|k| k.as_str() != "cmd" && !allowed.contains(&k.as_str()))
    {
        return Err(RequestError::UnknownField {
            cmd,
            field: extra.clone(),
        });
    }
    let string = |field: &'static str| -> Result<Option<String>, RequestError> {
        match obj.get(field) {
            None => Ok(None),
            Some(Value::String(s)) if !s.is_empty() => Ok(Some(s.clone())),
            Some(_) => Err(RequestError::BadField {
                cmd,
                field,
                expected: "a non-empty string",
            }),
        }
    };
    let required = |field: &'static str| -> Result<String, RequestError> {
        string(field)?.ok_or(RequestError::MissingField { cmd, field })
    };
    Ok(match cmd {
        "hello" => Request::Hello,
        "status" => Request::Status,
        "stats" => Request::Stats,
        "reload" => Request::Reload,
        "routes" => Request::Routes,
        "neighbors" => Request::Neighbors,
        "subscribe" => Request::Subscribe,
        "priority" => {
            let name = required("name")?;
            let priority = obj
                .get("priority")
                .ok_or(RequestError::MissingField {
                    cmd,
                    field: "priority",
                })?
                .as_u64()
                .and_then(|p| u8::try_from(p).ok())
                .filter(|p| *p >= 1)
                .ok_or(RequestError::BadField {
                    cmd,
                    field: "priority",
                    expected: "an integer from 1 to 255",
                })?;
            Request::Priority { name, priority }
        }
        "drain" | "resume" => {
            let name = string("name")?;
            let all = match obj.get("all") {
                None => false,
                Some(Value::Bool(b)) => *b,
                Some(_) => {
                    return Err(RequestError::BadField {
                        cmd,
                        field: "all",
                        expected: "true or false",
                    })
                }
            };
            if name.is_some() == all {
                return Err(RequestError::NameOrAll { cmd });
            }
            if cmd == "drain" {
                Request::Drain { name }
            } else {
                Request::Resume { name }
            }
        }
        "capture" => {
            let port = required("port")?;
            let count =
                match obj.get("count") {
                    None => None,
                    Some(v) => Some(v.as_u64().filter(|c| *c >= 1).ok_or(
                        RequestError::BadField {
                            cmd,
                            field: "count",
                            expected: "a positive integer",
                        },
                    )?),
                };
            let filter = match string("filter")? {
                None => CaptureFilter::All,
                Some(f) => CaptureFilter::from_name(&f).ok_or(RequestError::BadField {
                    cmd,
                    field: "filter",
                    expected: "one of all, vrrp, arp, nd, forwarded, dropped",
                })?,
            };
            Request::Capture {
                port,
                count,
                filter,
            }
        }
        other => return Err(RequestError::UnknownCmd(other.to_string())),
    })
}

/// The daemon's answer to a request.
#[derive(Debug, Clone, PartialEq)]
pub enum Response {
    /// Success; the server adds `"ok": true` to these fields.
    Ok(Map<String, Value>),
    /// Success, already serialized: the text of one JSON object that has
    /// `"ok": true` among its fields. A large reply (`status` of hundreds
    /// of routers) is written straight from its data, without building a
    /// tree of values on the control thread first.
    OkText(String),
    /// Failure, sent as `{"ok":false,"error":{"code":..,"message":..}}`.
    Err {
        /// Stable machine-readable code, e.g. `"bad-request"`, `"unknown-instance"`.
        code: &'static str,
        /// Human-readable explanation.
        message: String,
    },
}

impl Response {
    /// Success with no other fields.
    pub fn ok() -> Self {
        Response::Ok(Map::new())
    }

    /// Failure with `code` and `message`.
    pub fn error(code: &'static str, message: impl Into<String>) -> Self {
        Response::Err {
            code,
            message: message.into(),
        }
    }

    /// The reply object sent on the wire.
    pub fn to_json(&self) -> Value {
        self.clone().into_json()
    }

    /// As [`to_json`](Self::to_json), moving the fields: the server renders
    /// replies on the control thread and a large one (`stats`) is not copied.
    fn into_json(self) -> Value {
        match self {
            Response::OkText(text) => serde_json::from_str(&text).unwrap_or(Value::Null),
            Response::Ok(mut m) => {
                m.insert("ok".into(), Value::Bool(true));
                Value::Object(m)
            }
            Response::Err { code, message } => {
                let mut m = Map::new();
                m.insert("ok".into(), Value::Bool(false));
                let mut e = Map::new();
                e.insert("code".into(), Value::from(code));
                e.insert("message".into(), Value::from(message));
                m.insert("error".into(), Value::Object(e));
                Value::Object(m)
            }
        }
    }
}

// ---------------------------------------------------------------------------
// Errors

/// Control socket failures, server and client side.
#[derive(Debug, thiserror::Error)]
pub enum CtlError {
    /// The socket path is a symbolic link; it is never followed.
    #[error("{}: refusing to use a symbolic link as the control socket", path.display())]
    Symlink {
        /// The path.
        path: PathBuf,
    },
    /// Something other than a socket sits at the path.
    #[error("{}: exists and is not a socket; refusing to replace it", path.display())]
    NotSocket {
        /// The path.
        path: PathBuf,
    },
    /// A live daemon already answers at the path.
    #[error("{}: another xvrrp is already listening there", path.display())]
    InUse {
        /// The path.
        path: PathBuf,
    },
    /// Creating, binding or setting up the socket failed.
    #[error("{}: cannot {action}: {source}", path.display())]
    Setup {
        /// The path involved.
        path: PathBuf,
        /// What was being done.
        action: &'static str,
        /// The underlying error.
        source: io::Error,
    },
    /// `socket_group` names no group.
    #[error("unknown group {0:?} for the control socket")]
    UnknownGroup(String),
    /// Registering with the poller failed.
    #[error("cannot register the control socket with the poller: {0}")]
    Register(#[source] io::Error),
    /// The daemon cannot be reached.
    #[error("cannot reach xvrrp at {}: {}", path.display(), connect_reason(source))]
    Connect {
        /// The socket path.
        path: PathBuf,
        /// The underlying error.
        source: io::Error,
    },
    /// Reading or writing the connection failed.
    #[error("control socket {}: {source}", path.display())]
    Io {
        /// The socket path.
        path: PathBuf,
        /// The underlying error.
        source: io::Error,
    },
    /// No reply within the timeout.
    #[error("xvrrp at {} did not answer within {}s", path.display(), timeout.as_secs_f64())]
    Timeout {
        /// The socket path.
        path: PathBuf,
        /// The timeout.
        timeout: Duration,
    },
    /// The daemon hung up without a complete reply.
    #[error("xvrrp at {} closed the connection without replying", path.display())]
    Closed {
        /// The socket path.
        path: PathBuf,
    },
    /// The reply is not JSON, or too long.
    #[error("xvrrp at {} sent a malformed reply: {reason}", path.display())]
    BadReply {
        /// The socket path.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// The daemon refused a subscription.
    #[error("xvrrp refused the subscription: {0}")]
    Refused(String),
}

fn connect_reason(e: &io::Error) -> String {
    match e.kind() {
        ErrorKind::NotFound => "no such file (is the daemon running?)".to_string(),
        ErrorKind::ConnectionRefused => "connection refused (is the daemon running?)".to_string(),
        ErrorKind::PermissionDenied => {
            "permission denied (run as root or as a member of the socket's group)".to_string()
        }
        _ => format!("{e} (is the daemon running?)"),
    }
}

// ---------------------------------------------------------------------------
// Server

/// Who is at the other end of a connection, as the kernel recorded it when
/// the peer called `connect` (`SO_PEERCRED`, `SO_PEERGROUPS`).
#[derive(Debug, Clone, PartialEq, Eq)]
struct Peer {
    pid: libc::pid_t,
    uid: libc::uid_t,
    gid: libc::gid_t,
    /// Supplementary groups.
    groups: Vec<libc::gid_t>,
}

/// Who may use the control socket: root, the daemon's own user, and the
/// members of the socket's group when one is configured. The socket's mode
/// (0660 in a 0750 directory) already keeps others out; this check still
/// holds if the directory's mode is loosened or the socket reached otherwise.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Access {
    /// The daemon's effective uid.
    daemon_uid: libc::uid_t,
    /// The group given to [`CtlServer::bind`].
    group: Option<libc::gid_t>,
}

impl Access {
    fn allows(&self, peer: &Peer) -> bool {
        peer.uid == 0
            || peer.uid == self.daemon_uid
            || self
                .group
                .is_some_and(|g| peer.gid == g || peer.groups.contains(&g))
    }
}

/// `size_of::<T>() * n` as a socket option length.
fn option_len<T>(n: usize) -> io::Result<libc::socklen_t> {
    std::mem::size_of::<T>()
        .checked_mul(n)
        .and_then(|len| libc::socklen_t::try_from(len).ok())
        .ok_or_else(|| io::Error::from(ErrorKind::InvalidInput))
}

/// Reads the peer's credentials and supplementary groups as of its `connect`.
///
/// The groups come from `SO_PEERGROUPS` (Linux 4.13, older than any kernel
/// with AF_XDP) rather than the `Groups:` line of `/proc/<pid>/status`: they
/// are recorded with the uid at `connect`, so they cannot be those of another
/// process that reused the pid of a peer that exited.
fn peer_of(stream: &UnixStream) -> io::Result<Peer> {
    let fd = stream.as_raw_fd();
    let mut cred = libc::ucred {
        pid: 0,
        uid: 0,
        gid: 0,
    };
    let mut len = option_len::<libc::ucred>(1)?;
    // SAFETY: `cred` is a live ucred of `len` bytes, which getsockopt fills in.
    let rc = unsafe {
        libc::getsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_PEERCRED,
            std::ptr::from_mut(&mut cred).cast(),
            &mut len,
        )
    };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    let mut groups: Vec<libc::gid_t> = vec![0; 32];
    loop {
        let mut len = option_len::<libc::gid_t>(groups.len())?;
        // SAFETY: `groups` holds `len` bytes of gid_t, which getsockopt may fill in.
        let rc = unsafe {
            libc::getsockopt(
                fd,
                libc::SOL_SOCKET,
                libc::SO_PEERGROUPS,
                groups.as_mut_ptr().cast(),
                &mut len,
            )
        };
        let n = usize::try_from(len).unwrap_or(0) / std::mem::size_of::<libc::gid_t>();
        if rc == 0 {
            groups.truncate(n);
            break;
        }
        let e = io::Error::last_os_error();
        // ERANGE: the buffer is too small and `len` says how large it must be.
        if e.raw_os_error() == Some(libc::ERANGE) && n > groups.len() && n <= MAX_GROUPS {
            groups.resize(n, 0);
            continue;
        }
        return Err(e);
    }
    Ok(Peer {
        pid: cred.pid,
        uid: cred.uid,
        gid: cred.gid,
        groups,
    })
}

/// Bytes received from a client and not answered yet: complete lines, then
/// at most one partial line.
#[derive(Debug, Default)]
struct LineBuffer {
    buf: Vec<u8>,
    /// Bytes before this offset were taken as lines already.
    start: usize,
    /// Index in `buf` of the first newline at or after `start`: known, so
    /// that each byte is searched once however the lines are taken.
    newline: Option<usize>,
    /// Skipping the rest of an over-long line.
    discarding: bool,
}

impl LineBuffer {
    /// Whether [`pop`](Self::pop) has a line to give.
    fn has_line(&self, eof: bool) -> bool {
        self.newline.is_some() || (eof && self.start < self.buf.len())
    }

    /// Appends received bytes; true if they took a partial line past
    /// [`MAX_LINE`], in which case it is dropped up to its newline.
    ///
    /// The server appends only when no complete line is buffered, so an
    /// over-long line is the only one buffered and its error reply goes out
    /// in order.
    fn push(&mut self, mut data: &[u8]) -> bool {
        if self.discarding {
            let Some(nl) = data.iter().position(|&b| b == b'\n') else {
                return false;
            };
            self.discarding = false;
            data = data.get(nl + 1..).unwrap_or_default();
        }
        if self.start > 0 {
            self.buf.drain(..self.start);
            self.newline = self.newline.and_then(|nl| nl.checked_sub(self.start));
            self.start = 0;
        }
        let old_len = self.buf.len();
        self.buf.extend_from_slice(data);
        if self.newline.is_none() {
            self.newline = data.iter().position(|&b| b == b'\n').map(|i| old_len + i);
        }
        if self.newline.is_none() && self.buf.len() > MAX_LINE {
            self.buf.clear();
            self.discarding = true;
            return true;
        }
        false
    }

    /// Takes the next complete line, newline excluded; at end of input, the
    /// partial line too.
    fn pop(&mut self, eof: bool) -> Option<Vec<u8>> {
        let end = match self.newline {
            Some(nl) => nl,
            None if self.has_line(eof) => self.buf.len(),
            None => return None,
        };
        let line = self.buf.get(self.start..end)?.to_vec();
        self.start = (end + 1).min(self.buf.len());
        if self.start == self.buf.len() {
            self.buf.clear();
            self.start = 0;
            self.newline = None;
        } else {
            let rest = self.buf.get(self.start..).unwrap_or_default();
            self.newline = rest
                .iter()
                .position(|&b| b == b'\n')
                .map(|i| self.start + i);
        }
        Some(line)
    }
}

struct Client {
    stream: UnixStream,
    input: LineBuffer,
    output: Vec<u8>,
    subscribed: bool,
    /// The peer shut down its sending side: no input after what is buffered.
    read_closed: bool,
    /// The peer can receive nothing more: its requests are still carried
    /// out (a `priority` sent just before hanging up counts), replies dropped.
    write_closed: bool,
    /// The socket may hold unread input. mio reports readiness once per
    /// change (edge-triggered), so this stays set until a read would block.
    readable: bool,
    /// When the client connected or last sent a complete line.
    last_request: Instant,
    /// Since when its unread replies have been at [`MAX_OUTPUT`] or more.
    full_since: Option<Instant>,
}

/// The server end of the control socket, driven by the control thread's poll loop.
pub struct CtlServer {
    path: PathBuf,
    listener: UnixListener,
    first_token: usize,
    clients: Vec<Option<Client>>,
    /// Device and inode of the socket file this server created.
    file_id: Option<(u64, u64)>,
    access: Access,
    /// Connections may be waiting: accepting stopped at its budget, and mio
    /// will not report the listener again until another one arrives.
    accept_pending: bool,
    /// Requests that may still be answered in this pass of the control loop.
    allowance: usize,
    /// The slot [`service_pending`](Self::service_pending) starts from, so
    /// that every client gets its turn.
    cursor: usize,
}

impl std::fmt::Debug for CtlServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CtlServer")
            .field("path", &self.path)
            .field("clients", &self.clients.iter().flatten().count())
            .finish()
    }
}

fn setup_err<'p>(path: &'p Path, action: &'static str) -> impl FnOnce(io::Error) -> CtlError + 'p {
    move |source| CtlError::Setup {
        path: path.to_path_buf(),
        action,
        source,
    }
}

/// Looks up a group id by name with `getgrnam_r`.
fn group_id(name: &str) -> Result<libc::gid_t, CtlError> {
    let unknown = || CtlError::UnknownGroup(name.to_string());
    let cname = CString::new(name).map_err(|_| unknown())?;
    let mut buf_len = 1024usize;
    loop {
        let mut buf = vec![0 as libc::c_char; buf_len];
        // SAFETY: `group` is plain old data that getgrnam_r fills in.
        let mut group: libc::group = unsafe { std::mem::zeroed() };
        let mut result: *mut libc::group = std::ptr::null_mut();
        // SAFETY: every pointer refers to a live local of the stated size, and
        // `cname` is NUL-terminated; getgrnam_r writes only within `buf`.
        let rc = unsafe {
            libc::getgrnam_r(
                cname.as_ptr(),
                &mut group,
                buf.as_mut_ptr(),
                buf.len(),
                &mut result,
            )
        };
        if rc == libc::ERANGE && buf_len < 1 << 20 {
            buf_len *= 2;
            continue;
        }
        if rc != 0 || result.is_null() {
            return Err(unknown());
        }
        return Ok(group.gr_gid);
    }
}

/// `lchown(path, -1, gid)`: never follows a symbolic link.
fn chgrp(path: &Path, gid: libc::gid_t) -> io::Result<()> {
    let cpath = CString::new(path.as_os_str().as_bytes())
        .map_err(|_| io::Error::new(ErrorKind::InvalidInput, "path contains NUL"))?;
    // SAFETY: `cpath` is a valid NUL-terminated string; uid -1 leaves the owner unchanged.
    let rc = unsafe { libc::lchown(cpath.as_ptr(), libc::uid_t::MAX, gid) };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Sends a refused peer its one error line and closes the connection.
fn refuse(mut stream: UnixStream, reply: Response) {
    let mut line = reply.into_json().to_string().into_bytes();
    line.push(b'\n');
    // Best effort: the socket buffer of a fresh connection takes this line.
    let _ = stream.write(&line);
}

impl CtlServer {
    /// Binds the control socket at `path` and registers it with `registry`.
    ///
    /// Creates the parent directory (0750) if missing; refuses a symbolic link
    /// or a non-socket at `path`, and a socket a live daemon answers on;
    /// removes a stale socket; sets mode 0660 whatever the umask, and the
    /// group `group` if given. Uses tokens `first_token..=first_token + MAX_CLIENTS`.
    /// Lets in root, the process's effective user and the members of `group`.
    ///
    /// # Errors
    ///
    /// A [`CtlError`] naming the path and the step that failed.
    pub fn bind(
        path: &Path,
        group: Option<&str>,
        registry: &Registry,
        first_token: usize,
    ) -> Result<Self, CtlError> {
        if first_token.checked_add(MAX_CLIENTS).is_none() {
            return Err(CtlError::Register(io::Error::new(
                ErrorKind::InvalidInput,
                "token range overflows",
            )));
        }
        let gid = group.map(group_id).transpose()?;
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            if !parent.exists() {
                std::fs::DirBuilder::new()
                    .recursive(true)
                    .mode(DIR_MODE)
                    .create(parent)
                    .map_err(setup_err(parent, "create the directory"))?;
                std::fs::set_permissions(parent, std::fs::Permissions::from_mode(DIR_MODE))
                    .map_err(setup_err(parent, "set the directory's mode"))?;
                if let Some(gid) = gid {
                    chgrp(parent, gid).map_err(setup_err(parent, "set the directory's group"))?;
                }
            }
        }
        match std::fs::symlink_metadata(path) {
            Ok(meta) if meta.file_type().is_symlink() => {
                return Err(CtlError::Symlink {
                    path: path.to_path_buf(),
                })
            }
            Ok(meta) if meta.file_type().is_socket() => {
                match std::os::unix::net::UnixStream::connect(path) {
                    Ok(_) => {
                        return Err(CtlError::InUse {
                            path: path.to_path_buf(),
                        })
                    }
                    Err(e) if e.kind() == ErrorKind::ConnectionRefused => {
                        std::fs::remove_file(path)
                            .map_err(setup_err(path, "remove the stale socket"))?;
                    }
                    Err(e) => return Err(setup_err(path, "probe the existing socket")(e)),
                }
            }
            Ok(_) => {
                return Err(CtlError::NotSocket {
                    path: path.to_path_buf(),
                })
            }
            Err(e) if e.kind() == ErrorKind::NotFound => {}
            Err(e) => return Err(setup_err(path, "inspect the path")(e)),
        }
        let mut listener = UnixListener::bind(path).map_err(setup_err(path, "bind"))?;
        // The socket file is created with the process umask; fix its mode
        // explicitly. The 0750 parent keeps others out in the meantime.
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(SOCKET_MODE))
            .map_err(setup_err(path, "set the socket's mode"))?;
        if let Some(gid) = gid {
            chgrp(path, gid).map_err(setup_err(path, "set the socket's group"))?;
        }
        let file_id = std::fs::symlink_metadata(path)
            .ok()
            .map(|m| (m.dev(), m.ino()));
        registry
            .register(&mut listener, Token(first_token), Interest::READABLE)
            .map_err(CtlError::Register)?;
        let mut clients = Vec::with_capacity(MAX_CLIENTS);
        clients.resize_with(MAX_CLIENTS, || None);
        Ok(CtlServer {
            path: path.to_path_buf(),
            listener,
            first_token,
            clients,
            file_id,
            access: Access {
                // SAFETY: geteuid has no preconditions and cannot fail.
                daemon_uid: unsafe { libc::geteuid() },
                group: gid,
            },
            accept_pending: false,
            allowance: REQUESTS_PER_PASS,
            cursor: 0,
        })
    }

    /// The socket path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Whether `token` belongs to this server (its listener or a client).
    pub fn owns(&self, token: Token) -> bool {
        token.0 >= self.first_token && token.0 - self.first_token <= MAX_CLIENTS
    }

    /// Clients connected now.
    pub fn client_count(&self) -> usize {
        self.clients.iter().flatten().count()
    }

    /// Handles readiness of one of this server's tokens at `now`: accepts
    /// clients, reads request lines, calls `handler` for each well-formed one,
    /// queues and writes replies. Never blocks, and does a bounded amount of
    /// work: at most [`REQUESTS_PER_CALL`] requests (fewer once the pass's
    /// budget, see [`service_pending`](Self::service_pending), is spent), a
    /// bounded number of bytes read, a bounded number of connections
    /// accepted. What is left is remembered: [`pending_work`](Self::pending_work)
    /// says so and `service_pending` carries on. A client gets `subscribed`
    /// when `handler` answers its `subscribe` request with success.
    pub fn handle_event(
        &mut self,
        registry: &Registry,
        now: Instant,
        event: &mio::event::Event,
        handler: &mut dyn FnMut(&Request) -> Response,
    ) {
        let token = event.token().0;
        if token == self.first_token {
            self.accept(registry, now);
            return;
        }
        let Some(slot) = token.checked_sub(self.first_token + 1) else {
            return;
        };
        let Some(Some(client)) = self.clients.get_mut(slot) else {
            return;
        };
        // Any event may bring input, its end, or an error that a read
        // reports; a read that finds nothing costs one WouldBlock.
        client.readable = true;
        if event.is_write_closed() {
            client.write_closed = true;
        }
        if !client.service(now, &mut self.allowance, handler) {
            self.close(registry, slot);
        }
    }

    /// Whether work was left for later: request lines received and not
    /// answered, input not read, connections not accepted. The control loop
    /// then calls [`service_pending`](Self::service_pending) without
    /// sleeping. A client waiting for its peer to read its replies does not
    /// count: it is woken by its socket becoming writable.
    pub fn pending_work(&self) -> bool {
        self.accept_pending || self.clients.iter().flatten().any(Client::pending)
    }

    /// Starts a pass of the control loop at `now` and carries on with the
    /// work [`handle_event`](Self::handle_event) left: answers at most
    /// `budget` requests across all clients and [`REQUESTS_PER_CALL`] per
    /// client, starting after the client served last. The `handle_event`
    /// calls that follow, up to the next call of this, share what is left of
    /// `budget`, so that a pass answers at most `budget` requests in all.
    pub fn service_pending(
        &mut self,
        registry: &Registry,
        now: Instant,
        budget: usize,
        handler: &mut dyn FnMut(&Request) -> Response,
    ) {
        self.allowance = budget;
        if self.accept_pending {
            self.accept(registry, now);
        }
        let n = self.clients.len();
        let first = self.cursor;
        for i in 0..n {
            if self.allowance == 0 {
                break;
            }
            let slot = (first + i) % n;
            let Some(Some(client)) = self.clients.get_mut(slot) else {
                continue;
            };
            if !client.pending() {
                continue;
            }
            let before = self.allowance;
            if !client.service(now, &mut self.allowance, handler) {
                self.close(registry, slot);
            }
            // A client whose turn the budget cut short starts the next pass.
            let cut_short = self.allowance == 0 && before < REQUESTS_PER_CALL;
            self.cursor = if cut_short { slot } else { (slot + 1) % n };
        }
    }

    /// When [`handle_timeout`](Self::handle_timeout) next has a client to
    /// close, if ever.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.clients
            .iter()
            .flatten()
            .filter_map(Client::deadline)
            .min()
    }

    /// Closes the clients whose time is up at `now`: no complete request line
    /// for [`IDLE_TIMEOUT`] (subscribers excepted), or replies left unread at
    /// [`MAX_OUTPUT`] for [`STALL_TIMEOUT`]. So silent, half-open or stuck
    /// connections cannot hold the [`MAX_CLIENTS`] slots for ever.
    pub fn handle_timeout(&mut self, registry: &Registry, now: Instant) {
        for slot in 0..self.clients.len() {
            let Some(Some(client)) = self.clients.get(slot) else {
                continue;
            };
            if client.deadline().is_some_and(|d| d <= now) {
                let reason = if client.full_since.is_some() {
                    "its replies stayed unread"
                } else {
                    "it sent no request"
                };
                tracing::debug!(reason, "control client closed: timed out");
                self.close(registry, slot);
            }
        }
    }

    /// Sends `event` as one line to every subscribed client; a subscriber
    /// that it would take past [`MAX_OUTPUT`] of unread output, or that can
    /// no longer receive, is dropped rather than waited for.
    pub fn publish(&mut self, registry: &Registry, event: &Value) {
        let mut line = event.to_string().into_bytes();
        line.push(b'\n');
        let mut dropped = Vec::new();
        for (slot, client) in self.clients.iter_mut().enumerate() {
            let Some(c) = client else { continue };
            if !c.subscribed {
                continue;
            }
            if c.output.len() + line.len() > MAX_OUTPUT {
                tracing::debug!("control subscriber dropped: it does not read its events");
                dropped.push(slot);
                continue;
            }
            c.output.extend_from_slice(&line);
            c.flush();
            if c.write_closed {
                dropped.push(slot);
            }
        }
        for slot in dropped {
            self.close(registry, slot);
        }
    }

    /// Unlinks the socket file if it is still the one this server created.
    /// Also done on drop.
    pub fn shutdown(&mut self) {
        let Some(id) = self.file_id.take() else {
            return;
        };
        let same = std::fs::symlink_metadata(&self.path)
            .is_ok_and(|m| m.file_type().is_socket() && (m.dev(), m.ino()) == id);
        if same {
            if let Err(e) = std::fs::remove_file(&self.path) {
                tracing::warn!(path = %self.path.display(), error = %e, "cannot remove the control socket");
            }
        }
    }

    /// Accepts up to [`ACCEPTS_PER_CALL`] connections: lets in those whose
    /// credentials allow it while a slot is free, and refuses the others with
    /// one error line.
    fn accept(&mut self, registry: &Registry, now: Instant) {
        for _ in 0..ACCEPTS_PER_CALL {
            let mut stream = match self.listener.accept() {
                Ok((s, _)) => s,
                Err(e) if e.kind() == ErrorKind::WouldBlock => {
                    self.accept_pending = false;
                    return;
                }
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(e) => {
                    // Out of descriptors, most likely: retrying at once would
                    // spin, so wait until another connection is reported.
                    tracing::warn!(error = %e, "control socket accept failed");
                    self.accept_pending = false;
                    return;
                }
            };
            match peer_of(&stream) {
                Ok(peer) if self.access.allows(&peer) => {}
                Ok(peer) => {
                    tracing::warn!(
                        uid = peer.uid,
                        gid = peer.gid,
                        pid = peer.pid,
                        "control socket: client refused, not root, the daemon's user or in the socket's group"
                    );
                    let message = format!(
                        "uid {} may not use the control socket (run as root or as a member of the socket's group)",
                        peer.uid
                    );
                    refuse(stream, Response::error(PERMISSION_DENIED, message));
                    continue;
                }
                Err(e) => {
                    tracing::warn!(error = %e, "control socket: client refused, cannot read its credentials");
                    let message = format!("cannot read the credentials of the connection: {e}");
                    refuse(stream, Response::error(PERMISSION_DENIED, message));
                    continue;
                }
            }
            let Some(slot) = self.clients.iter().position(Option::is_none) else {
                tracing::warn!("control socket: client refused, {MAX_CLIENTS} already connected");
                let message = format!("too many clients (limit {MAX_CLIENTS})");
                refuse(stream, Response::error(BUSY, message));
                continue;
            };
            let token = Token(self.first_token + 1 + slot);
            if let Err(e) =
                registry.register(&mut stream, token, Interest::READABLE | Interest::WRITABLE)
            {
                tracing::warn!(error = %e, "cannot register a control client");
                continue;
            }
            if let Some(entry) = self.clients.get_mut(slot) {
                *entry = Some(Client::new(stream, now));
            }
        }
        // The budget is spent and more connections may be waiting.
        self.accept_pending = true;
    }

    fn close(&mut self, registry: &Registry, slot: usize) {
        if let Some(mut client) = self.clients.get_mut(slot).and_then(Option::take) {
            // Deregistering can only fail if the fd is already gone; dropping closes it anyway.
            let _ = registry.deregister(&mut client.stream);
        }
    }
}

impl Drop for CtlServer {
    fn drop(&mut self) {
        self.shutdown();
    }
}

impl Client {
    fn new(stream: UnixStream, now: Instant) -> Self {
        Client {
            stream,
            input: LineBuffer::default(),
            output: Vec::new(),
            subscribed: false,
            read_closed: false,
            write_closed: false,
            // A connection may carry data before its first readiness report.
            readable: true,
            last_request: now,
            full_since: None,
        }
    }

    /// Work is left that the peer does not hold up: lines received and not
    /// answered, or input not read yet.
    fn pending(&self) -> bool {
        self.output.len() < MAX_OUTPUT
            && (self.input.has_line(self.read_closed) || (self.readable && !self.read_closed))
    }

    /// When this client is to be closed unless something happens first.
    fn deadline(&self) -> Option<Instant> {
        let idle = if self.subscribed {
            None
        } else {
            self.last_request.checked_add(IDLE_TIMEOUT)
        };
        let stalled = self.full_since.and_then(|t| t.checked_add(STALL_TIMEOUT));
        idle.into_iter().chain(stalled).min()
    }

    /// Writes what it can, then answers at most `REQUESTS_PER_CALL` and
    /// `allowance` requests (counting them off `allowance`) and reads at most
    /// [`READ_PER_CALL`] bytes, stopping while [`MAX_OUTPUT`] of replies wait
    /// to be read, then writes again. Returns false when the client must be
    /// closed.
    fn service(
        &mut self,
        now: Instant,
        allowance: &mut usize,
        handler: &mut dyn FnMut(&Request) -> Response,
    ) -> bool {
        self.flush();
        let mut buf = [0u8; READ_CHUNK];
        let mut answered = 0;
        let mut read = 0;
        while self.output.len() < MAX_OUTPUT && answered < REQUESTS_PER_CALL && *allowance > 0 {
            if let Some(line) = self.input.pop(self.read_closed) {
                answered += 1;
                *allowance -= 1;
                self.last_request = now;
                self.answer(&line, handler);
                continue;
            }
            // Reading only once the buffered lines are answered bounds the
            // buffer to one line and one read.
            if self.read_closed || !self.readable || read >= READ_PER_CALL {
                break;
            }
            let room = READ_CHUNK.min(READ_PER_CALL - read);
            match self.stream.read(buf.get_mut(..room).unwrap_or_default()) {
                Ok(0) => {
                    self.read_closed = true;
                    self.readable = false;
                }
                Ok(n) => {
                    read += n;
                    if self.input.push(buf.get(..n).unwrap_or_default()) {
                        let reply = Response::error(
                            BAD_REQUEST,
                            RequestError::TooLong { max: MAX_LINE }.to_string(),
                        );
                        self.queue_reply(reply);
                    }
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => self.readable = false,
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(_) => return false,
            }
        }
        self.flush();
        self.full_since = if self.output.len() >= MAX_OUTPUT {
            Some(self.full_since.unwrap_or(now))
        } else {
            None
        };
        !self.finished()
    }

    /// Nothing more will happen on this connection.
    fn finished(&self) -> bool {
        if !self.read_closed || self.input.has_line(true) {
            return false;
        }
        // Every request is answered. A subscriber may shut down its sending
        // side and listen; a peer that can receive nothing is done.
        self.write_closed || (self.output.is_empty() && !self.subscribed)
    }

    fn answer(&mut self, line: &[u8], handler: &mut dyn FnMut(&Request) -> Response) {
        let reply = match parse_request(line) {
            Ok(req) => {
                let reply = handler(&req);
                if req == Request::Subscribe && matches!(reply, Response::Ok(_)) {
                    self.subscribed = true;
                }
                reply
            }
            Err(e) => Response::error(BAD_REQUEST, e.to_string()),
        };
        self.queue_reply(reply);
    }

    /// Queues a reply. Not bounded here: the caller answers only while less
    /// than [`MAX_OUTPUT`] is queued.
    fn queue_reply(&mut self, reply: Response) {
        if self.write_closed {
            return;
        }
        let line = match reply {
            Response::OkText(text) => text,
            other => other.into_json().to_string(),
        };
        self.output.extend_from_slice(line.as_bytes());
        self.output.push(b'\n');
    }

    /// Writes what the socket accepts. A write error means the peer can
    /// receive nothing more: the output is dropped from then on.
    fn flush(&mut self) {
        let mut written = 0;
        while !self.write_closed && written < self.output.len() {
            match self
                .stream
                .write(self.output.get(written..).unwrap_or_default())
            {
                Ok(0) => self.write_closed = true,
                Ok(n) => written += n,
                Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(_) => self.write_closed = true,
            }
        }
        if self.write_closed {
            self.output.clear();
        } else {
            self.output.drain(..written);
        }
    }
}

// ---------------------------------------------------------------------------
// Client

fn connect(path: &Path) -> Result<std::os::unix::net::UnixStream, CtlError> {
    std::os::unix::net::UnixStream::connect(path).map_err(|source| CtlError::Connect {
        path: path.to_path_buf(),
        source,
    })
}

fn send_line(
    stream: &mut std::os::unix::net::UnixStream,
    path: &Path,
    req: &Value,
) -> Result<(), CtlError> {
    let mut line = req.to_string().into_bytes();
    line.push(b'\n');
    stream.write_all(&line).map_err(|source| CtlError::Io {
        path: path.to_path_buf(),
        source,
    })
}

fn decode_reply(path: &Path, line: &[u8]) -> Result<Value, CtlError> {
    serde_json::from_slice(line).map_err(|e| CtlError::BadReply {
        path: path.to_path_buf(),
        reason: e.to_string(),
    })
}

/// Sends one request and reads one reply line, within `timeout` overall.
///
/// # Errors
///
/// [`CtlError::Connect`] when the daemon cannot be reached (its message asks
/// whether it is running), [`CtlError::Timeout`], [`CtlError::Closed`],
/// [`CtlError::BadReply`] or [`CtlError::Io`].
pub fn request(path: &Path, req: &Value, timeout: Duration) -> Result<Value, CtlError> {
    let deadline = Instant::now() + timeout;
    let timed_out = || CtlError::Timeout {
        path: path.to_path_buf(),
        timeout,
    };
    let mut stream = connect(path)?;
    stream
        .set_write_timeout(Some(timeout.max(Duration::from_millis(1))))
        .map_err(|source| CtlError::Io {
            path: path.to_path_buf(),
            source,
        })?;
    send_line(&mut stream, path, req).map_err(|e| match e {
        CtlError::Io { source, .. }
            if matches!(source.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) =>
        {
            timed_out()
        }
        other => other,
    })?;
    let mut reply = Vec::new();
    let mut buf = [0u8; READ_CHUNK];
    loop {
        let left = deadline
            .checked_duration_since(Instant::now())
            .filter(|d| !d.is_zero())
            .ok_or_else(timed_out)?;
        stream
            .set_read_timeout(Some(left))
            .map_err(|source| CtlError::Io {
                path: path.to_path_buf(),
                source,
            })?;
        match stream.read(&mut buf) {
            Ok(0) => {
                return Err(CtlError::Closed {
                    path: path.to_path_buf(),
                })
            }
            Ok(n) => {
                let data = buf.get(..n).unwrap_or_default();
                if let Some(nl) = data.iter().position(|&b| b == b'\n') {
                    reply.extend_from_slice(data.get(..nl).unwrap_or_default());
                    return decode_reply(path, &reply);
                }
                reply.extend_from_slice(data);
                if reply.len() > MAX_REPLY {
                    return Err(CtlError::BadReply {
                        path: path.to_path_buf(),
                        reason: format!("reply longer than {MAX_REPLY} bytes"),
                    });
                }
            }
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                return Err(timed_out())
            }
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(source) => {
                return Err(CtlError::Io {
                    path: path.to_path_buf(),
                    source,
                })
            }
        }
    }
}

/// Reads one line of at most `cap` bytes (newline excluded); `None` at EOF.
fn read_line_capped(reader: &mut impl BufRead, cap: usize) -> io::Result<Option<Vec<u8>>> {
    let mut line = Vec::new();
    loop {
        let chunk = match reader.fill_buf() {
            Ok(c) => c,
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        if chunk.is_empty() {
            return Ok(if line.is_empty() { None } else { Some(line) });
        }
        if let Some(nl) = chunk.iter().position(|&b| b == b'\n') {
            line.extend_from_slice(chunk.get(..nl).unwrap_or_default());
            reader.consume(nl + 1);
            return Ok(Some(line));
        }
        let n = chunk.len();
        line.extend_from_slice(chunk);
        reader.consume(n);
        if line.len() > cap {
            return Err(io::Error::new(ErrorKind::InvalidData, "line too long"));
        }
    }
}

/// The event stream of [`subscribe`]: one JSON value per state transition,
/// until the daemon closes the connection.
#[derive(Debug)]
pub struct Subscription {
    path: PathBuf,
    reader: BufReader<std::os::unix::net::UnixStream>,
    done: bool,
}

impl Iterator for Subscription {
    type Item = Result<Value, CtlError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        let item = match read_line_capped(&mut self.reader, MAX_REPLY) {
            Ok(Some(line)) => Some(decode_reply(&self.path, &line)),
            Ok(None) => None,
            Err(source) => Some(Err(CtlError::Io {
                path: self.path.clone(),
                source,
            })),
        };
        if !matches!(item, Some(Ok(_))) {
            self.done = true;
        }
        item
    }
}

/// Subscribes to state transitions: sends `subscribe`, checks the daemon's
/// acknowledgement (within [`DEFAULT_TIMEOUT`]), then yields each event line.
///
/// # Errors
///
/// As [`request`], plus [`CtlError::Refused`] if the daemon answers with an error.
pub fn subscribe(path: &Path) -> Result<Subscription, CtlError> {
    let io_err = |source| CtlError::Io {
        path: path.to_path_buf(),
        source,
    };
    let mut stream = connect(path)?;
    stream
        .set_write_timeout(Some(DEFAULT_TIMEOUT))
        .map_err(io_err)?;
    send_line(&mut stream, path, &Request::Subscribe.to_json())?;
    stream
        .set_read_timeout(Some(DEFAULT_TIMEOUT))
        .map_err(io_err)?;
    let mut reader = BufReader::new(stream);
    let ack = match read_line_capped(&mut reader, MAX_REPLY) {
        Ok(Some(line)) => decode_reply(path, &line)?,
        Ok(None) => {
            return Err(CtlError::Closed {
                path: path.to_path_buf(),
            })
        }
        Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
            return Err(CtlError::Timeout {
                path: path.to_path_buf(),
                timeout: DEFAULT_TIMEOUT,
            })
        }
        Err(e) => return Err(io_err(e)),
    };
    if ack.get("ok") != Some(&Value::Bool(true)) {
        let message = ack
            .pointer("/error/message")
            .and_then(Value::as_str)
            .unwrap_or("no reason given")
            .to_string();
        return Err(CtlError::Refused(message));
    }
    // Events arrive whenever a transition happens: wait for them indefinitely.
    reader.get_ref().set_read_timeout(None).map_err(io_err)?;
    Ok(Subscription {
        path: path.to_path_buf(),
        reader,
        done: false,
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn parses_every_command() {
        let cases: &[(&str, Request)] = &[
            (r#"{"cmd":"hello"}"#, Request::Hello),
            (r#"{"cmd":"status"}"#, Request::Status),
            (r#"{"cmd":"stats"}"#, Request::Stats),
            (
                r#"{"cmd":"priority","name":"lan-gw","priority":120}"#,
                Request::Priority {
                    name: "lan-gw".into(),
                    priority: 120,
                },
            ),
            (
                r#"{"cmd":"drain","name":"lan-gw"}"#,
                Request::Drain {
                    name: Some("lan-gw".into()),
                },
            ),
            (
                r#"{"cmd":"drain","all":true}"#,
                Request::Drain { name: None },
            ),
            (
                r#"{"cmd":"resume","all":true}"#,
                Request::Resume { name: None },
            ),
            (r#"{"cmd":"reload"}"#, Request::Reload),
            (r#"{"cmd":"routes"}"#, Request::Routes),
            (r#"{"cmd":"neighbors"}"#, Request::Neighbors),
            (
                r#"{"cmd":"capture","port":"lan0","count":10}"#,
                Request::Capture {
                    port: "lan0".into(),
                    count: Some(10),
                    filter: CaptureFilter::All,
                },
            ),
            (
                r#"{"cmd":"capture","port":"lan0","filter":"dropped"}"#,
                Request::Capture {
                    port: "lan0".into(),
                    count: None,
                    filter: CaptureFilter::Dropped,
                },
            ),
            (r#" {"cmd":"subscribe"} "#, Request::Subscribe),
        ];
        for (line, want) in cases {
            assert_eq!(parse_request(line.as_bytes()).as_ref(), Ok(want), "{line}");
            assert_eq!(
                parse_request(want.to_json().to_string().as_bytes()).as_ref(),
                Ok(want)
            );
        }
        assert_eq!(
            parse_request(b"{\"cmd\":\"status\"}\r"),
            Ok(Request::Status)
        );
    }

    #[test]
    fn rejects_malformed_requests() {
        let bad: &[(&[u8], RequestError)] = &[
            (b"", RequestError::Empty),
            (b"   ", RequestError::Empty),
            (b"{\"cmd\":\"status\"}\0", RequestError::Nul),
            (b"\xff", RequestError::Utf8),
            (b"[1]", RequestError::NotObject),
            (b"{}", RequestError::MissingCmd),
            (b"{\"cmd\":3}", RequestError::MissingCmd),
            (
                b"{\"cmd\":\"stat\"}",
                RequestError::UnknownCmd("stat".into()),
            ),
            (
                b"{\"cmd\":\"status\",\"x\":1}",
                RequestError::UnknownField {
                    cmd: "status",
                    field: "x".into(),
                },
            ),
            (
                b"{\"cmd\":\"priority\",\"name\":\"a\"}",
                RequestError::MissingField {
                    cmd: "priority",
                    field: "priority",
                },
            ),
            (
                b"{\"cmd\":\"priority\",\"name\":\"a\",\"priority\":0}",
                RequestError::BadField {
                    cmd: "priority",
                    field: "priority",
                    expected: "an integer from 1 to 255",
                },
            ),
            (
                b"{\"cmd\":\"priority\",\"name\":\"a\",\"priority\":256}",
                RequestError::BadField {
                    cmd: "priority",
                    field: "priority",
                    expected: "an integer from 1 to 255",
                },
            ),
            (
                b"{\"cmd\":\"priority\",\"name\":\"\",\"priority\":1}",
                RequestError::BadField {
                    cmd: "priority",
                    field: "name",
                    expected: "a non-empty string",
                },
            ),
            (
                b"{\"cmd\":\"capture\",\"port\":\"a\",\"filter\":\"tcp\"}",
                RequestError::BadField {
                    cmd: "capture",
                    field: "filter",
                    expected: "one of all, vrrp, arp, nd, forwarded, dropped",
                },
            ),
            (
                b"{\"cmd\":\"drain\"}",
                RequestError::NameOrAll { cmd: "drain" },
            ),
            (
                b"{\"cmd\":\"drain\",\"name\":\"a\",\"all\":true}",
                RequestError::NameOrAll { cmd: "drain" },
            ),
            (
                b"{\"cmd\":\"capture\"}",
                RequestError::MissingField {
                    cmd: "capture",
                    field: "port",
                },
            ),
        ];
        for (line, want) in bad {
            assert_eq!(
                parse_request(line).as_ref(),
                Err(want),
                "{}",
                String::from_utf8_lossy(line)
            );
        }
        assert!(matches!(
            parse_request(b"not json"),
            Err(RequestError::Json(_))
        ));
        assert_eq!(
            parse_request(&vec![b' '; MAX_LINE + 1]),
            Err(RequestError::TooLong { max: MAX_LINE })
        );
        // Deep nesting is refused by serde_json's recursion limit, not the stack.
        let deep = "[".repeat(10_000);
        assert!(matches!(
            parse_request(deep.as_bytes()),
            Err(RequestError::Json(_))
        ));
    }

    #[test]
    fn response_wire_form() {
        let mut m = Map::new();
        m.insert("version".into(), "0.1.0".into());
        assert_eq!(
            Response::Ok(m).to_json().to_string(),
            r#"{"ok":true,"version":"0.1.0"}"#
        );
        assert_eq!(
            Response::error("unknown-instance", "no instance \"x\"")
                .to_json()
                .to_string(),
            r#"{"error":{"code":"unknown-instance","message":"no instance \"x\""},"ok":false}"#
        );
    }

    #[test]
    fn connect_error_says_whether_the_daemon_runs() {
        let e = CtlError::Connect {
            path: "/run/xvrrp/xvrrp.sock".into(),
            source: io::Error::from(ErrorKind::NotFound),
        };
        assert_eq!(
            e.to_string(),
            "cannot reach xvrrp at /run/xvrrp/xvrrp.sock: no such file (is the daemon running?)"
        );
    }

    #[test]
    fn access_lets_in_root_the_daemon_user_and_the_socket_group() {
        let peer = |uid, gid, groups: &[libc::gid_t]| Peer {
            pid: 1234,
            uid,
            gid,
            groups: groups.to_vec(),
        };
        let grouped = Access {
            daemon_uid: 998,
            group: Some(120),
        };
        let alone = Access {
            daemon_uid: 998,
            group: None,
        };
        let cases: &[(Peer, bool, bool)] = &[
            // (peer, allowed with the group, allowed without one)
            (peer(0, 0, &[]), true, true),
            (peer(0, 5000, &[]), true, true),
            (peer(998, 998, &[]), true, true),
            (peer(1000, 120, &[]), true, false),
            (peer(1000, 1000, &[27, 120]), true, false),
            (peer(1000, 1000, &[]), false, false),
            (peer(1000, 1000, &[27, 121]), false, false),
            (peer(120, 1000, &[]), false, false),
        ];
        for (p, with_group, without) in cases {
            assert_eq!(grouped.allows(p), *with_group, "{p:?} with group 120");
            assert_eq!(alone.allows(p), *without, "{p:?} without a group");
        }
    }

    #[test]
    fn line_buffer_drops_an_over_long_line_up_to_its_newline() {
        let mut b = LineBuffer::default();
        assert!(!b.push(&vec![b'a'; MAX_LINE]));
        assert!(b.push(b"a"));
        assert!(!b.has_line(true));
        assert!(!b.push(&vec![b'a'; 3 * MAX_LINE]));
        assert!(!b.push(b"aaa\n{\"cmd\":\"hello\"}\npart"));
        assert_eq!(b.pop(false).as_deref(), Some(&b"{\"cmd\":\"hello\"}"[..]));
        assert_eq!(b.pop(false), None);
        assert_eq!(b.pop(true).as_deref(), Some(&b"part"[..]));
        assert_eq!(b.pop(true), None);
    }

    proptest! {
        #[test]
        fn line_buffer_gives_the_same_lines_however_the_bytes_arrive(
            lines in proptest::collection::vec("[a-z{}\":]{0,40}", 0..20),
            cuts in proptest::collection::vec(1usize..64, 1..40),
        ) {
            let data = lines.iter().map(|l| format!("{l}\n")).collect::<String>();
            let mut b = LineBuffer::default();
            let mut got = Vec::new();
            let mut rest = data.as_bytes();
            let mut cut = cuts.iter().cycle();
            while !rest.is_empty() {
                let n = (*cut.next().unwrap()).min(rest.len());
                let (chunk, tail) = rest.split_at(n);
                rest = tail;
                // As the server does: take every line before pushing more.
                prop_assert!(!b.push(chunk));
                while let Some(line) = b.pop(false) {
                    got.push(String::from_utf8(line).unwrap());
                }
            }
            prop_assert!(!b.has_line(true));
            prop_assert_eq!(got, lines);
        }

        #[test]
        fn arbitrary_bytes_never_panic(line in proptest::collection::vec(any::<u8>(), 0..512)) {
            let _ = parse_request(&line);
        }

        #[test]
        fn json_shaped_lines_never_panic(line in "[{}\\[\\]\":,a-z0-9 ]{0,80}") {
            let _ = parse_request(line.as_bytes());
        }
    }
}
