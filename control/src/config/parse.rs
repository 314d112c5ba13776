//! Walks a `toml_edit` document into a [`Config`], collecting every problem
//! with the byte offset of the key or value at fault.
//!
//! Each field is read on its own, so one bad value never hides another; a bad
//! field falls back to its default and the walk goes on. Cross-references
//! (ports, instance names, sync groups) are checked once everything is read,
//! using the offsets remembered for the values involved.

use std::collections::{HashMap, HashSet};
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use toml_edit::{ImDocument, InlineTable, Item, Table, Value};

use super::{
    format_duration, parse_duration, ChecksumMode, Config, Dataplane, Diagnostic, GarpConfig,
    Global, Idle, IfAddr, PortConfig, Queues, RouteConfig, RouterId, RouterSpec, SyncGroupConfig,
    TrackConfig, TrackTarget, Version, XdpMode, ZeroCopy,
};

/// Longest Linux interface name (IFNAMSIZ - 1).
const MAX_IFNAME: usize = 15;
/// Longest Unix socket path (sun_path is 108 bytes, NUL-terminated).
const MAX_SOCKET_PATH: usize = 107;
/// Bounds of the VRRPv3 advertisement interval (12 bits of centiseconds).
const V3_MIN_INTERVAL: Duration = Duration::from_millis(10);
const V3_MAX_INTERVAL: Duration = Duration::from_millis(40_950);
/// Highest queue id a port can list: the XDP program's socket map, indexed
/// by receive queue, has 64 slots.
const MAX_QUEUE_ID: i64 = 63;
/// Upper bound on gratuitous ARPs per transition, to keep a typo from flooding the LAN.
const MAX_GARP_COUNT: i64 = 1000;

const ROOT_KEYS: &[&str] = &[
    "global",
    "dataplane",
    "port",
    "vrrp",
    "sync_group",
    "route",
    "routes",
];
const GLOBAL_KEYS: &[&str] = &["control_socket", "socket_group", "metrics_listen", "notify"];
const DATAPLANE_KEYS: &[&str] = &["backend", "cores", "idle", "xdp_mode", "zero_copy", "batch"];
const PORT_KEYS: &[&str] = &["name", "queues"];
const VRRP_KEYS: &[&str] = &[
    "name",
    "port",
    "vrid",
    "version",
    "priority",
    "advert_interval",
    "preempt",
    "preempt_delay",
    "accept",
    "checksum",
    "addresses",
    "unicast_peers",
    "garp",
    "track",
];
const GARP_KEYS: &[&str] = &["count", "interval", "refresh"];
const TRACK_KEYS: &[&str] = &["port", "address", "route", "weight"];
const SYNC_GROUP_KEYS: &[&str] = &["name", "members"];
const ROUTE_KEYS: &[&str] = &["to", "via", "port"];
const ROUTES_KEYS: &[&str] = &["kernel"];

/// 1-based line and column (in characters) of byte offset `at` in `bytes`.
pub(super) fn line_col(bytes: &[u8], at: usize) -> (usize, usize) {
    let before = bytes.get(..at).unwrap_or(bytes);
    let line_start = before
        .iter()
        .rposition(|&b| b == b'\n')
        .map_or(0, |i| i + 1);
    let line = 1 + before.iter().filter(|&&b| b == b'\n').count();
    // Count characters, not bytes: skip UTF-8 continuation bytes.
    let col = 1 + before
        .get(line_start..)
        .unwrap_or_default()
        .iter()
        .filter(|&&b| b & 0xC0 != 0x80)
        .count();
    (line, col)
}

/// Parses and validates `text`, or returns every problem found, in file order.
pub(super) fn parse(text: &str) -> Result<Config, Vec<Diagnostic>> {
    let mut cx = Cx { diags: Vec::new() };
    let config = match ImDocument::parse(text) {
        Ok(doc) => read_root(&mut cx, doc.as_table()),
        Err(e) => {
            let at = e.span().map_or(0, |s| s.start);
            cx.err(at, syntax_message(e.message()));
            None
        }
    };
    match config {
        Some(config) if cx.diags.is_empty() => Ok(config),
        _ => {
            // Stable sort: problems at one place keep the order they were found in.
            cx.diags.sort_by_key(|(at, _)| *at);
            Err(cx
                .diags
                .into_iter()
                .map(|(at, message)| {
                    let (line, col) = line_col(text.as_bytes(), at);
                    Diagnostic { line, col, message }
                })
                .collect())
        }
    }
}

/// toml_edit's messages span several lines; a diagnostic is one line.
fn syntax_message(raw: &str) -> String {
    let parts: Vec<&str> = raw
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    if parts.is_empty() {
        "invalid TOML".to_string()
    } else {
        format!("invalid TOML: {}", parts.join("; "))
    }
}

// ---------------------------------------------------------------------------
// Document access

/// Collected problems, as (byte offset, message).
struct Cx {
    diags: Vec<(usize, String)>,
}

impl Cx {
    fn err(&mut self, at: usize, message: impl Into<String>) {
        self.diags.push((at, message.into()));
    }
}

/// A TOML node, whether it came from a standard or an inline construct.
#[derive(Clone, Copy)]
enum Node<'a> {
    Value(&'a Value),
    Table(&'a Table),
    Tables(&'a toml_edit::ArrayOfTables),
    Empty,
}

impl<'a> Node<'a> {
    fn from_item(item: &'a Item) -> Self {
        match item {
            Item::Value(v) => Node::Value(v),
            Item::Table(t) => Node::Table(t),
            Item::ArrayOfTables(a) => Node::Tables(a),
            Item::None => Node::Empty,
        }
    }

    fn kind(self) -> &'static str {
        match self {
            Node::Value(Value::String(_)) => "a string",
            Node::Value(Value::Integer(_)) => "an integer",
            Node::Value(Value::Float(_)) => "a float",
            Node::Value(Value::Boolean(_)) => "a boolean",
            Node::Value(Value::Datetime(_)) => "a datetime",
            Node::Value(Value::Array(_)) => "an array",
            Node::Value(Value::InlineTable(_)) | Node::Table(_) => "a table",
            Node::Tables(_) => "an array of tables",
            Node::Empty => "nothing",
        }
    }
}

/// A value with its name (for messages) and position.
#[derive(Clone)]
struct Field<'a> {
    node: Node<'a>,
    name: String,
    at: usize,
}

/// A table (standard or inline) with its name and the position of its header.
struct Section<'a> {
    entries: Vec<(Field<'a>, usize)>,
    name: String,
    at: usize,
}

impl<'a> Section<'a> {
    fn from_table(table: &'a Table, name: String, at: usize) -> Self {
        let at = table.span().map_or(at, |s| s.start);
        let entries = table
            .iter()
            .filter_map(|(k, _)| table.get_key_value(k))
            .map(|(key, item)| entry(key, item, at))
            .collect();
        Section { entries, name, at }
    }

    fn from_inline(table: &'a InlineTable, name: String, at: usize) -> Self {
        let at = table.span().map_or(at, |s| s.start);
        let entries = table
            .iter()
            .filter_map(|(k, _)| table.get_key_value(k))
            .map(|(key, item)| entry(key, item, at))
            .collect();
        Section { entries, name, at }
    }

    /// Reports every key not in `allowed`, at the key.
    fn check_keys(&self, cx: &mut Cx, allowed: &[&str]) {
        for (field, key_at) in &self.entries {
            if !allowed.contains(&field.name.as_str()) {
                let mut msg = format!(
                    "unknown key {:?} in {} (expected one of: {})",
                    field.name,
                    self.name,
                    allowed.join(", ")
                );
                if let Some(near) = closest(&field.name, allowed) {
                    msg.push_str(&format!("; did you mean {near:?}?"));
                }
                cx.err(*key_at, msg);
            }
        }
    }

    fn get(&self, key: &str) -> Option<Field<'a>> {
        self.entries
            .iter()
            .find(|(f, _)| f.name == key)
            .map(|(f, _)| f.clone())
    }

    /// The field, or an error at the section header if it is missing.
    fn require(&self, cx: &mut Cx, key: &str) -> Option<Field<'a>> {
        let field = self.get(key);
        if field.is_none() {
            cx.err(self.at, format!("missing key {key:?} in {}", self.name));
        }
        field
    }
}

fn entry<'a>(key: &'a toml_edit::Key, item: &'a Item, fallback: usize) -> (Field<'a>, usize) {
    let key_at = key.span().map_or(fallback, |s| s.start);
    let at = item.span().map_or(key_at, |s| s.start);
    let field = Field {
        node: Node::from_item(item),
        name: key.get().to_string(),
        at,
    };
    (field, key_at)
}

/// The allowed key within edit distance 2 of `key`, for "did you mean".
fn closest<'k>(key: &str, allowed: &[&'k str]) -> Option<&'k str> {
    allowed
        .iter()
        .map(|a| (edit_distance(key, a), *a))
        .filter(|(d, _)| *d <= 2)
        .min_by_key(|(d, _)| *d)
        .map(|(_, a)| a)
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = Vec::with_capacity(b.len() + 1);
        cur.push(i + 1);
        for (j, cb) in b.iter().enumerate() {
            let sub = prev.get(j).copied().unwrap_or(usize::MAX) + usize::from(ca != *cb);
            let del = prev
                .get(j + 1)
                .copied()
                .unwrap_or(usize::MAX)
                .saturating_add(1);
            let ins = cur.get(j).copied().unwrap_or(usize::MAX).saturating_add(1);
            cur.push(sub.min(del).min(ins));
        }
        prev = cur;
    }
    prev.last().copied().unwrap_or(0)
}

// ---------------------------------------------------------------------------
// Typed readers: each reports its own error and returns None on failure.

fn type_error(cx: &mut Cx, f: &Field<'_>, expected: &str) {
    cx.err(
        f.at,
        format!("{}: expected {expected}, found {}", f.name, f.node.kind()),
    );
}

fn string<'a>(cx: &mut Cx, f: &Field<'a>) -> Option<&'a str> {
    match f.node {
        Node::Value(Value::String(s)) => Some(s.value().as_str()),
        _ => {
            type_error(cx, f, "a string");
            None
        }
    }
}

/// A non-empty string without control characters.
fn ident(cx: &mut Cx, f: &Field<'_>) -> Option<String> {
    let s = string(cx, f)?;
    if s.is_empty() {
        cx.err(f.at, format!("{}: must not be empty", f.name));
        None
    } else if s.chars().any(char::is_control) {
        cx.err(
            f.at,
            format!("{}: must not contain control characters", f.name),
        );
        None
    } else {
        Some(s.to_string())
    }
}

fn boolean(cx: &mut Cx, f: &Field<'_>) -> Option<bool> {
    match f.node {
        Node::Value(Value::Boolean(b)) => Some(*b.value()),
        _ => {
            type_error(cx, f, "true or false");
            None
        }
    }
}

/// An integer within `lo..=hi`.
fn int_in(cx: &mut Cx, f: &Field<'_>, lo: i64, hi: i64) -> Option<i64> {
    match f.node {
        Node::Value(Value::Integer(i)) => {
            let v = *i.value();
            if (lo..=hi).contains(&v) {
                Some(v)
            } else {
                cx.err(
                    f.at,
                    format!("{}: {v} is out of range ({lo}..={hi})", f.name),
                );
                None
            }
        }
        _ => {
            type_error(cx, f, &format!("an integer ({lo}..={hi})"));
            None
        }
    }
}

fn duration(cx: &mut Cx, f: &Field<'_>) -> Option<Duration> {
    match f.node {
        Node::Value(Value::String(s)) => match parse_duration(s.value()) {
            Ok(d) => Some(d),
            Err(e) => {
                cx.err(f.at, format!("{}: {e}", f.name));
                None
            }
        },
        _ => {
            type_error(cx, f, "a duration string with a unit, like \"10ms\"");
            None
        }
    }
}

fn choice<T: Copy>(cx: &mut Cx, f: &Field<'_>, options: &[(&str, T)]) -> Option<T> {
    let s = string(cx, f)?;
    let found = options.iter().find(|(k, _)| *k == s).map(|(_, v)| *v);
    if found.is_none() {
        let names: Vec<&str> = options.iter().map(|(k, _)| *k).collect();
        cx.err(
            f.at,
            format!(
                "{}: unknown value {s:?} (expected one of: {})",
                f.name,
                names.join(", ")
            ),
        );
    }
    found
}

/// The elements of an array, each as a field named `name[i]`.
fn array<'a>(cx: &mut Cx, f: &Field<'a>) -> Option<Vec<Field<'a>>> {
    match f.node {
        Node::Value(Value::Array(a)) => Some(
            a.iter()
                .enumerate()
                .map(|(i, v)| Field {
                    node: Node::Value(v),
                    name: format!("{}[{i}]", f.name),
                    at: v.span().map_or(f.at, |s| s.start),
                })
                .collect(),
        ),
        _ => {
            type_error(cx, f, "an array");
            None
        }
    }
}

/// A table written as `[name]`, `name = { ... }` or dotted keys.
fn section<'a>(cx: &mut Cx, f: &Field<'a>, label: &str) -> Option<Section<'a>> {
    match f.node {
        Node::Table(t) => Some(Section::from_table(t, label.to_string(), f.at)),
        Node::Value(Value::InlineTable(t)) => {
            Some(Section::from_inline(t, label.to_string(), f.at))
        }
        _ => {
            type_error(cx, f, &format!("a table ({label})"));
            None
        }
    }
}

/// An array of tables, written as `[[name]]` blocks or an array of inline tables.
fn sections<'a>(cx: &mut Cx, f: &Field<'a>, label: &str) -> Vec<Section<'a>> {
    match f.node {
        Node::Tables(a) => a
            .iter()
            .map(|t| Section::from_table(t, label.to_string(), f.at))
            .collect(),
        Node::Value(Value::Array(a)) => {
            let mut out = Vec::new();
            for v in a.iter() {
                let at = v.span().map_or(f.at, |s| s.start);
                match v {
                    Value::InlineTable(t) => {
                        out.push(Section::from_inline(t, label.to_string(), at));
                    }
                    other => cx.err(
                        at,
                        format!(
                            "{}: expected a table ({label}), found {}",
                            f.name,
                            Node::Value(other).kind()
                        ),
                    ),
                }
            }
            out
        }
        _ => {
            type_error(cx, f, &format!("an array of tables ({label})"));
            Vec::new()
        }
    }
}

fn ip(cx: &mut Cx, f: &Field<'_>) -> Option<IpAddr> {
    let s = string(cx, f)?;
    match s.parse::<IpAddr>() {
        Ok(a) => Some(a),
        Err(_) => {
            cx.err(
                f.at,
                format!("{}: {s:?} is not an IPv4 or IPv6 address", f.name),
            );
            None
        }
    }
}

/// `"addr/len"` or a bare address (a host prefix).
fn if_addr(cx: &mut Cx, f: &Field<'_>) -> Option<IfAddr> {
    let s = string(cx, f)?;
    let (addr_text, len_text) = match s.split_once('/') {
        Some((a, l)) => (a, Some(l)),
        None => (s, None),
    };
    let Ok(addr) = addr_text.parse::<IpAddr>() else {
        cx.err(
            f.at,
            format!(
                "{}: {s:?} is not an address with an optional prefix length, like \"192.0.2.1/24\"",
                f.name
            ),
        );
        return None;
    };
    let max = if addr.is_ipv4() { 32 } else { 128 };
    let prefix_len = match len_text {
        None => max,
        Some(l) => match l.parse::<u8>() {
            Ok(n) if n <= max && !l.starts_with('+') => n,
            _ => {
                cx.err(
                    f.at,
                    format!("{}: prefix length {l:?} must be 0..={max}", f.name),
                );
                return None;
            }
        },
    };
    Some(IfAddr { addr, prefix_len })
}

fn path(cx: &mut Cx, f: &Field<'_>) -> Option<PathBuf> {
    let s = string(cx, f)?;
    if s.is_empty() {
        cx.err(f.at, format!("{}: must not be empty", f.name));
        None
    } else if s.contains('\0') {
        cx.err(f.at, format!("{}: must not contain NUL", f.name));
        None
    } else {
        Some(PathBuf::from(s))
    }
}

fn family(a: IpAddr) -> &'static str {
    if a.is_ipv4() {
        "IPv4"
    } else {
        "IPv6"
    }
}

fn host_bits_clear(a: IfAddr) -> bool {
    match a.addr {
        IpAddr::V4(v4) => {
            let bits = u32::from(v4);
            let mask = u32::MAX.checked_shr(u32::from(a.prefix_len)).unwrap_or(0);
            bits & mask == 0
        }
        IpAddr::V6(v6) => {
            let bits = u128::from(v6);
            let mask = u128::MAX.checked_shr(u32::from(a.prefix_len)).unwrap_or(0);
            bits & mask == 0
        }
    }
}

fn network_of(a: IfAddr) -> IfAddr {
    let addr = match a.addr {
        IpAddr::V4(v4) => {
            let mask = u32::MAX.checked_shr(u32::from(a.prefix_len)).unwrap_or(0);
            IpAddr::V4((u32::from(v4) & !mask).into())
        }
        IpAddr::V6(v6) => {
            let mask = u128::MAX.checked_shr(u32::from(a.prefix_len)).unwrap_or(0);
            IpAddr::V6((u128::from(v6) & !mask).into())
        }
    };
    IfAddr {
        addr,
        prefix_len: a.prefix_len,
    }
}

/// Whether `a` can serve as a virtual address or next hop.
fn unusable_reason(a: IpAddr) -> Option<&'static str> {
    if a.is_unspecified() {
        Some("the unspecified address")
    } else if a.is_multicast() {
        Some("a multicast address")
    } else if a.is_loopback() {
        Some("a loopback address")
    } else if a == IpAddr::V4(std::net::Ipv4Addr::BROADCAST) {
        Some("the broadcast address")
    } else {
        None
    }
}

// ---------------------------------------------------------------------------
// Sections

/// Positions of the values that cross-reference checks point at.
#[derive(Default)]
struct Positions {
    ports: Vec<Option<usize>>,
    vrrp: Vec<VrrpPositions>,
    groups: Vec<GroupPositions>,
    routes: Vec<RoutePositions>,
}

#[derive(Default)]
struct VrrpPositions {
    name: Option<usize>,
    port: Option<usize>,
    vrid: Option<usize>,
    family: Option<bool>,
    track: Vec<Option<usize>>,
}

#[derive(Default)]
struct GroupPositions {
    name: Option<usize>,
    members: Vec<Option<usize>>,
}

#[derive(Default)]
struct RoutePositions {
    to: Option<usize>,
    port: Option<usize>,
}

fn read_root(cx: &mut Cx, table: &Table) -> Option<Config> {
    let root = Section::from_table(table, "the top level".to_string(), 0);
    root.check_keys(cx, ROOT_KEYS);
    let mut pos = Positions::default();

    let global = match root.get("global") {
        Some(f) => {
            section(cx, &f, "[global]").map_or_else(Global::default, |s| read_global(cx, &s))
        }
        None => Global::default(),
    };
    let dataplane = match root.get("dataplane") {
        Some(f) => section(cx, &f, "[dataplane]")
            .map_or_else(Dataplane::default, |s| read_dataplane(cx, &s)),
        None => Dataplane::default(),
    };
    let ports = root.get("port").map_or_else(Vec::new, |f| {
        sections(cx, &f, "[[port]]")
            .iter()
            .map(|s| {
                let (p, at) = read_port(cx, s);
                pos.ports.push(at);
                p
            })
            .collect()
    });
    let vrrp = root.get("vrrp").map_or_else(Vec::new, |f| {
        sections(cx, &f, "[[vrrp]]")
            .iter()
            .enumerate()
            .map(|(i, s)| {
                let id = RouterId(u16::try_from(i).unwrap_or(u16::MAX));
                let (v, at) = read_vrrp(cx, s, id);
                pos.vrrp.push(at);
                v
            })
            .collect()
    });
    let sync_groups = root.get("sync_group").map_or_else(Vec::new, |f| {
        sections(cx, &f, "[[sync_group]]")
            .iter()
            .map(|s| {
                let (g, at) = read_sync_group(cx, s);
                pos.groups.push(at);
                g
            })
            .collect()
    });
    let routes = root.get("route").map_or_else(Vec::new, |f| {
        sections(cx, &f, "[[route]]")
            .iter()
            .map(|s| {
                let (r, at) = read_route(cx, s);
                pos.routes.push(at);
                r
            })
            .collect()
    });
    let kernel_routes = match root.get("routes") {
        Some(f) => section(cx, &f, "[routes]").is_some_and(|s| {
            s.check_keys(cx, ROUTES_KEYS);
            s.get("kernel")
                .and_then(|f| boolean(cx, &f))
                .unwrap_or(false)
        }),
        None => false,
    };

    let config = Config {
        global,
        dataplane,
        ports,
        vrrp,
        sync_groups,
        routes,
        kernel_routes,
    };
    cross_check(cx, &config, &pos);
    Some(config)
}

fn read_global(cx: &mut Cx, s: &Section<'_>) -> Global {
    s.check_keys(cx, GLOBAL_KEYS);
    let mut g = Global::default();
    if let Some(f) = s.get("control_socket") {
        if let Some(p) = path(cx, &f) {
            if p.as_os_str().len() > MAX_SOCKET_PATH {
                cx.err(
                    f.at,
                    format!(
                        "control_socket: path is longer than {MAX_SOCKET_PATH} bytes, the limit of a Unix socket address"
                    ),
                );
            } else {
                g.control_socket = p;
            }
        }
    }
    g.socket_group = s.get("socket_group").and_then(|f| ident(cx, &f));
    if let Some(f) = s.get("metrics_listen") {
        if let Some(text) = string(cx, &f) {
            match text.parse::<SocketAddr>() {
                Ok(a) => g.metrics_listen = Some(a),
                Err(_) => cx.err(
                    f.at,
                    format!(
                        "metrics_listen: {text:?} is not an address and port, like \"127.0.0.1:9477\" or \"[::1]:9477\""
                    ),
                ),
            }
        }
    }
    if let Some(f) = s.get("notify") {
        if let Some(p) = path(cx, &f) {
            if p.is_absolute() {
                g.notify = Some(p);
            } else {
                cx.err(f.at, "notify: must be an absolute path");
            }
        }
    }
    g
}

fn read_dataplane(cx: &mut Cx, s: &Section<'_>) -> Dataplane {
    s.check_keys(cx, DATAPLANE_KEYS);
    let mut d = Dataplane::default();
    if let Some(f) = s.get("backend") {
        // AF_XDP is the only backend: the key stays valid for files written
        // to SPEC §2, but a backend that would silently run as AF_XDP is refused.
        match string(cx, &f) {
            Some("af_xdp") | None => {}
            Some("af_packet") => cx.err(
                f.at,
                "backend: \"af_packet\" is not available in this version of xvrrp \
                 (AF_XDP is the only backend); write \"af_xdp\" or remove the key",
            ),
            Some(other) => cx.err(
                f.at,
                format!("backend: unknown value {other:?} (the only backend is \"af_xdp\")"),
            ),
        }
    }
    if let Some(f) = s.get("cores") {
        if let Some(items) = array(cx, &f) {
            if items.is_empty() {
                cx.err(f.at, "cores: list at least one core");
            }
            let mut cores = Vec::new();
            for item in &items {
                if let Some(c) = int_in(cx, item, 0, 4095) {
                    let c = usize::try_from(c).unwrap_or_default();
                    if cores.contains(&c) {
                        cx.err(item.at, format!("cores: core {c} is listed twice"));
                    } else {
                        cores.push(c);
                    }
                }
            }
            if !cores.is_empty() {
                d.cores = cores;
            }
        }
    }
    if let Some(f) = s.get("idle") {
        d.idle = choice(
            cx,
            &f,
            &[
                ("busy", Idle::Busy),
                ("adaptive", Idle::Adaptive),
                ("wait", Idle::Wait),
            ],
        )
        .unwrap_or(d.idle);
    }
    if let Some(f) = s.get("xdp_mode") {
        d.xdp_mode = choice(
            cx,
            &f,
            &[
                ("auto", XdpMode::Auto),
                ("native", XdpMode::Native),
                ("generic", XdpMode::Generic),
            ],
        )
        .unwrap_or(d.xdp_mode);
    }
    if let Some(f) = s.get("zero_copy") {
        d.zero_copy = choice(
            cx,
            &f,
            &[
                ("auto", ZeroCopy::Auto),
                ("on", ZeroCopy::On),
                ("off", ZeroCopy::Off),
            ],
        )
        .unwrap_or(d.zero_copy);
    }
    if let Some(f) = s.get("batch") {
        if let Some(b) = int_in(cx, &f, 1, 256) {
            d.batch = u32::try_from(b).unwrap_or(d.batch);
        }
    }
    d
}

fn interface_name(cx: &mut Cx, f: &Field<'_>) -> Option<String> {
    let n = ident(cx, f)?;
    if n.len() > MAX_IFNAME {
        cx.err(
            f.at,
            format!(
                "{}: interface name {n:?} is longer than {MAX_IFNAME} bytes",
                f.name
            ),
        );
        None
    } else if n == "." || n == ".." || n.contains(['/', ':']) || n.contains(char::is_whitespace) {
        cx.err(
            f.at,
            format!("{}: {n:?} is not a valid interface name", f.name),
        );
        None
    } else {
        Some(n)
    }
}

fn read_port(cx: &mut Cx, s: &Section<'_>) -> (PortConfig, Option<usize>) {
    s.check_keys(cx, PORT_KEYS);
    let name_field = s.require(cx, "name");
    let name = name_field.as_ref().and_then(|f| interface_name(cx, f));
    let at = name.as_ref().and(name_field.map(|f| f.at));
    let mut queues = Queues::All;
    if let Some(f) = s.get("queues") {
        match f.node {
            Node::Value(Value::String(v)) if v.value() == "all" => {}
            Node::Value(Value::String(v)) => cx.err(
                f.at,
                format!(
                    "queues: unknown value {:?} (expected \"all\" or a list of queue ids)",
                    v.value()
                ),
            ),
            Node::Value(Value::Array(_)) => {
                if let Some(items) = array(cx, &f) {
                    if items.is_empty() {
                        cx.err(f.at, "queues: list at least one queue, or write \"all\"");
                    }
                    let mut ids = Vec::new();
                    for item in &items {
                        if let Some(q) = int_in(cx, item, 0, MAX_QUEUE_ID) {
                            let q = u32::try_from(q).unwrap_or_default();
                            if ids.contains(&q) {
                                cx.err(item.at, format!("queues: queue {q} is listed twice"));
                            } else {
                                ids.push(q);
                            }
                        }
                    }
                    queues = Queues::List(ids);
                }
            }
            _ => type_error(cx, &f, "\"all\" or an array of queue ids"),
        }
    }
    (
        PortConfig {
            name: name.unwrap_or_default(),
            queues,
        },
        at,
    )
}

fn read_vrrp(cx: &mut Cx, s: &Section<'_>, id: RouterId) -> (RouterSpec, VrrpPositions) {
    s.check_keys(cx, VRRP_KEYS);
    let mut pos = VrrpPositions::default();

    let name_f = s.require(cx, "name");
    let name = name_f.as_ref().and_then(|f| ident(cx, f));
    pos.name = name.as_ref().and(name_f.map(|f| f.at));

    let port_f = s.require(cx, "port");
    let port = port_f.as_ref().and_then(|f| ident(cx, f));
    pos.port = port.as_ref().and(port_f.map(|f| f.at));

    let vrid_f = s.require(cx, "vrid");
    let vrid = vrid_f.as_ref().and_then(|f| match f.node {
        Node::Value(Value::Integer(i)) if *i.value() == 0 => {
            cx.err(f.at, "vrid: 0 is not a valid virtual router id (1..=255)");
            None
        }
        _ => int_in(cx, f, 1, 255),
    });
    let vrid = vrid.and_then(|v| u8::try_from(v).ok());
    pos.vrid = vrid.and(vrid_f.map(|f| f.at));

    let version_f = s.get("version");
    let version = match &version_f {
        Some(f) => match f.node {
            Node::Value(Value::Integer(i)) if matches!(*i.value(), 2 | 3) => {
                u8::try_from(*i.value()).ok()
            }
            Node::Value(Value::Integer(i)) => {
                cx.err(
                    f.at,
                    format!(
                        "version: {} is not a VRRP version xvrrp speaks (2 or 3)",
                        i.value()
                    ),
                );
                None
            }
            _ => {
                type_error(cx, f, "2 or 3");
                None
            }
        },
        None => Some(3),
    };

    let priority = match s.get("priority") {
        Some(f) => match f.node {
            Node::Value(Value::Integer(i)) if *i.value() == 0 => {
                cx.err(
                    f.at,
                    "priority: 0 is reserved for a master giving up (RFC 5798 §5.2.4); use 1..=254, or 255 for the address owner",
                );
                None
            }
            _ => int_in(cx, &f, 1, 255).and_then(|p| u8::try_from(p).ok()),
        },
        None => Some(100),
    };

    let interval_f = s.get("advert_interval");
    let advert_interval = interval_f.as_ref().and_then(|f| duration(cx, f));
    if let (Some(f), Some(d), Some(v)) = (&interval_f, advert_interval, version) {
        check_interval(cx, f.at, d, v);
    }

    let preempt = s.get("preempt").and_then(|f| boolean(cx, &f));
    let preempt_delay = s.get("preempt_delay").and_then(|f| duration(cx, &f));
    let accept = s.get("accept").and_then(|f| boolean(cx, &f));
    let checksum = s.get("checksum").and_then(|f| {
        choice(
            cx,
            &f,
            &[
                ("rfc9568", ChecksumMode::Rfc9568),
                ("pseudo-header", ChecksumMode::PseudoHeader),
            ],
        )
    });

    let addresses = match s.require(cx, "addresses") {
        Some(f) => read_addresses(cx, &f, version),
        None => Vec::new(),
    };
    let fam = addresses.first().map(|a| a.addr.is_ipv6());
    pos.family = fam;

    let mut unicast_peers = Vec::new();
    if let Some(f) = s.get("unicast_peers") {
        for item in array(cx, &f).unwrap_or_default() {
            let Some(peer) = ip(cx, &item) else { continue };
            if let Some(why) = unusable_reason(peer) {
                cx.err(item.at, format!("{}: {peer} is {why}", item.name));
            } else if fam.is_some_and(|v6| v6 != peer.is_ipv6()) {
                cx.err(
                    item.at,
                    format!(
                        "{}: {peer} is {} but the instance's addresses are {}",
                        item.name,
                        family(peer),
                        if fam == Some(true) { "IPv6" } else { "IPv4" }
                    ),
                );
            } else if unicast_peers.contains(&peer) {
                cx.err(item.at, format!("{}: {peer} is listed twice", item.name));
            } else {
                unicast_peers.push(peer);
            }
        }
    }

    let garp = match s.get("garp") {
        Some(f) => {
            section(cx, &f, "vrrp.garp").map_or_else(GarpConfig::default, |g| read_garp(cx, &g))
        }
        None => GarpConfig::default(),
    };

    let mut track = Vec::new();
    if let Some(f) = s.get("track") {
        for t in sections(cx, &f, "vrrp.track") {
            t.check_keys(cx, TRACK_KEYS);
            let weight = t
                .require(cx, "weight")
                .and_then(|f| int_in(cx, &f, -254, 254))
                .and_then(|w| i32::try_from(w).ok());
            let (port_f, address_f, route_f) = (t.get("port"), t.get("address"), t.get("route"));
            let given = [&port_f, &address_f, &route_f]
                .iter()
                .filter(|f| f.is_some())
                .count();
            if given != 1 {
                cx.err(
                    t.at,
                    "track: give exactly one of `port`, `address` or `route`, with a `weight`",
                );
            }
            let mut port_at = None;
            let target = if let Some(f) = &port_f {
                let port = ident(cx, f);
                port_at = port.as_ref().map(|_| f.at);
                port.map(TrackTarget::Port)
            } else if let Some(f) = &address_f {
                ip(cx, f).map(TrackTarget::Address)
            } else if let Some(f) = &route_f {
                if_addr(cx, f).and_then(|a| {
                    if host_bits_clear(a) {
                        Some(TrackTarget::Route(a))
                    } else {
                        cx.err(
                            f.at,
                            format!(
                                "route: {a} has host bits set; did you mean {}?",
                                network_of(a)
                            ),
                        );
                        None
                    }
                })
            } else {
                None
            };
            pos.track.push(port_at);
            track.push(TrackConfig {
                target: target.unwrap_or(TrackTarget::Port(String::new())),
                weight: weight.unwrap_or(0),
            });
        }
    }

    let vrid = vrid.unwrap_or(0);
    let interval = advert_interval.unwrap_or(Duration::from_secs(1));
    let v = RouterSpec {
        id,
        name: name.unwrap_or_default(),
        port: port.unwrap_or_default(),
        vrid,
        version: if version == Some(2) {
            Version::V2
        } else {
            Version::V3
        },
        vmac: RouterSpec::vmac_for(vrid, fam == Some(true)),
        priority: priority.unwrap_or(100),
        // In range once validated: 1..=4095 cs (v3) or 100..=25500 cs (v2).
        interval_cs: u16::try_from(interval.as_millis() / 10).unwrap_or(u16::MAX),
        preempt: preempt.unwrap_or(true),
        preempt_delay: preempt_delay.unwrap_or(Duration::ZERO),
        accept: accept.unwrap_or(true),
        checksum: checksum.unwrap_or(ChecksumMode::Rfc9568),
        addresses,
        unicast_peers,
        garp,
        track,
    };
    (v, pos)
}

fn check_interval(cx: &mut Cx, at: usize, d: Duration, version: u8) {
    if version == 2 {
        let whole = d.subsec_nanos() == 0 && (1..=255).contains(&d.as_secs());
        if !whole {
            cx.err(
                at,
                format!(
                    "advert_interval: VRRPv2 needs whole seconds from 1s to 255s, found {}",
                    format_duration(d)
                ),
            );
        }
    } else if d < V3_MIN_INTERVAL || d > V3_MAX_INTERVAL {
        cx.err(
            at,
            format!(
                "advert_interval: {} is out of range for VRRPv3 (10ms..=40.95s)",
                format_duration(d)
            ),
        );
    } else if !d.as_nanos().is_multiple_of(V3_MIN_INTERVAL.as_nanos()) {
        cx.err(
            at,
            format!(
                "advert_interval: {} is not a multiple of 10ms (VRRPv3 counts in centiseconds)",
                format_duration(d)
            ),
        );
    }
}

fn read_addresses(cx: &mut Cx, f: &Field<'_>, version: Option<u8>) -> Vec<IfAddr> {
    let Some(items) = array(cx, f) else {
        return Vec::new();
    };
    if items.is_empty() {
        cx.err(f.at, "addresses: list at least one virtual address");
    }
    let mut out: Vec<IfAddr> = Vec::new();
    for item in &items {
        let Some(a) = if_addr(cx, item) else { continue };
        if let Some(why) = unusable_reason(a.addr) {
            cx.err(item.at, format!("{}: {} is {why}", item.name, a.addr));
        } else if version == Some(2) && a.addr.is_ipv6() {
            cx.err(
                item.at,
                format!(
                    "{}: {} is IPv6, but VRRP version 2 (RFC 3768) carries IPv4 only; use version 3",
                    item.name, a.addr
                ),
            );
        } else if let Some(first) = out.first().filter(|x| x.addr.is_ipv6() != a.addr.is_ipv6()) {
            cx.err(
                item.at,
                format!(
                    "{}: {} is {} but {} is {}; use one instance per address family",
                    item.name,
                    a,
                    family(a.addr),
                    first,
                    family(first.addr)
                ),
            );
        } else if out.iter().any(|x| x.addr == a.addr) {
            cx.err(
                item.at,
                format!("{}: {} is listed twice", item.name, a.addr),
            );
        } else {
            out.push(a);
        }
    }
    out
}

fn read_garp(cx: &mut Cx, s: &Section<'_>) -> GarpConfig {
    s.check_keys(cx, GARP_KEYS);
    let mut g = GarpConfig::default();
    if let Some(f) = s.get("count") {
        if let Some(c) = int_in(cx, &f, 0, MAX_GARP_COUNT) {
            g.count = u32::try_from(c).unwrap_or(g.count);
        }
    }
    if let Some(f) = s.get("interval") {
        g.interval = duration(cx, &f).unwrap_or(g.interval);
    }
    if let Some(f) = s.get("refresh") {
        g.refresh = duration(cx, &f).unwrap_or(g.refresh);
    }
    g
}

fn read_sync_group(cx: &mut Cx, s: &Section<'_>) -> (SyncGroupConfig, GroupPositions) {
    s.check_keys(cx, SYNC_GROUP_KEYS);
    let mut pos = GroupPositions::default();
    let name_f = s.require(cx, "name");
    let name = name_f.as_ref().and_then(|f| ident(cx, f));
    pos.name = name.as_ref().and(name_f.map(|f| f.at));
    let mut members = Vec::new();
    if let Some(f) = s.require(cx, "members") {
        if let Some(items) = array(cx, &f) {
            if items.is_empty() {
                cx.err(f.at, "members: list at least one [[vrrp]] instance");
            }
            for item in &items {
                let m = ident(cx, item);
                pos.members.push(m.as_ref().map(|_| item.at));
                members.push(m.unwrap_or_default());
            }
        }
    }
    (
        SyncGroupConfig {
            name: name.unwrap_or_default(),
            members,
        },
        pos,
    )
}

fn read_route(cx: &mut Cx, s: &Section<'_>) -> (RouteConfig, RoutePositions) {
    s.check_keys(cx, ROUTE_KEYS);
    let mut pos = RoutePositions::default();
    let to_f = s.require(cx, "to");
    let to = to_f.as_ref().and_then(|f| {
        let a = if_addr(cx, f)?;
        if host_bits_clear(a) {
            Some(a)
        } else {
            cx.err(
                f.at,
                format!("to: {a} has host bits set; did you mean {}?", network_of(a)),
            );
            None
        }
    });
    pos.to = to.and(to_f.as_ref().map(|f| f.at));
    let via_f = s.require(cx, "via");
    let via = via_f.as_ref().and_then(|f| {
        let v = ip(cx, f)?;
        if let Some(why) = unusable_reason(v) {
            cx.err(f.at, format!("via: {v} is {why}"));
            None
        } else if to.is_some_and(|t| t.addr.is_ipv6() != v.is_ipv6()) {
            cx.err(
                f.at,
                format!(
                    "via: next hop {v} is {} but the destination is not",
                    family(v)
                ),
            );
            None
        } else {
            Some(v)
        }
    });
    let port_f = s.require(cx, "port");
    let port = port_f.as_ref().and_then(|f| ident(cx, f));
    pos.port = port.as_ref().and(port_f.map(|f| f.at));
    let unspecified = IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED);
    (
        RouteConfig {
            to: to.unwrap_or(IfAddr {
                addr: unspecified,
                prefix_len: 0,
            }),
            via: via.unwrap_or(unspecified),
            port: port.unwrap_or_default(),
        },
        pos,
    )
}

// ---------------------------------------------------------------------------
// Cross-references

fn cross_check(cx: &mut Cx, c: &Config, pos: &Positions) {
    let port_list = c
        .ports
        .iter()
        .map(|p| p.name.as_str())
        .filter(|n| !n.is_empty())
        .collect::<Vec<_>>()
        .join(", ");
    let mut ports = HashSet::new();
    for (p, at) in c.ports.iter().zip(&pos.ports) {
        if let Some(at) = at {
            if !ports.insert(p.name.as_str()) {
                cx.err(*at, format!("name: port {:?} is declared twice", p.name));
            }
        }
    }
    let missing_port = |cx: &mut Cx, at: usize, key: &str, name: &str| {
        if !ports.contains(name) {
            let known = if port_list.is_empty() {
                "none are declared".to_string()
            } else {
                format!("declared: {port_list}")
            };
            cx.err(at, format!("{key}: no [[port]] named {name:?} ({known})"));
        }
    };

    let mut names: HashMap<&str, usize> = HashMap::new();
    let mut vrids: HashMap<(&str, u8, bool), &str> = HashMap::new();
    for (v, p) in c.vrrp.iter().zip(&pos.vrrp) {
        if let Some(at) = p.name {
            if names.insert(v.name.as_str(), at).is_some() {
                cx.err(at, format!("name: instance {:?} is declared twice", v.name));
            }
        }
        if let Some(at) = p.port {
            missing_port(cx, at, "port", &v.port);
        }
        if let (Some(at), Some(_), Some(v6)) = (p.vrid, p.port, p.family) {
            if let Some(other) = vrids.insert((v.port.as_str(), v.vrid, v6), v.name.as_str()) {
                cx.err(
                    at,
                    format!(
                        "vrid: {} ({}) on port {:?} is already used by instance {other:?}",
                        v.vrid,
                        if v6 { "IPv6" } else { "IPv4" },
                        v.port
                    ),
                );
            }
        }
        for (t, at) in v.track.iter().zip(&p.track) {
            if let (Some(at), TrackTarget::Port(port)) = (at, &t.target) {
                missing_port(cx, *at, "track.port", port);
            }
        }
    }

    let mut groups = HashSet::new();
    let mut member_of: HashMap<&str, &str> = HashMap::new();
    for (g, p) in c.sync_groups.iter().zip(&pos.groups) {
        if let Some(at) = p.name {
            if !groups.insert(g.name.as_str()) {
                cx.err(
                    at,
                    format!("name: sync group {:?} is declared twice", g.name),
                );
            }
        }
        for (m, at) in g.members.iter().zip(&p.members) {
            let Some(at) = *at else { continue };
            if !names.contains_key(m.as_str()) {
                cx.err(at, format!("members: no [[vrrp]] instance named {m:?}"));
            } else if let Some(other) = member_of.insert(m.as_str(), g.name.as_str()) {
                if other == g.name {
                    cx.err(at, format!("members: {m:?} is listed twice"));
                } else {
                    cx.err(
                        at,
                        format!("members: {m:?} is already in sync group {other:?}"),
                    );
                }
            }
        }
    }

    let mut dests = HashSet::new();
    for (r, p) in c.routes.iter().zip(&pos.routes) {
        if let Some(at) = p.port {
            missing_port(cx, at, "port", &r.port);
        }
        if let Some(at) = p.to {
            if !dests.insert(r.to) {
                cx.err(at, format!("to: a route to {} is already declared", r.to));
            }
        }
    }
}
