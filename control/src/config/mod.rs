//! The configuration file: types, loading and validation.
//!
//! The file is TOML; `xvrrp.example.toml` shows every key. Durations are
//! strings with a unit, unknown keys are errors, and `run` refuses a bad
//! file before it touches any interface (docs/conformance.md, "Product
//! rules").
//!
//! Parsing goes through `toml_edit`, which keeps the byte span of every key
//! and value, so each problem is reported as `FILE:LINE:COL: message` and all
//! problems in a file are reported together rather than one per run.
//!
//! Nothing here panics on any input: the parser is property-tested against
//! arbitrary text and mutations of the example file.

mod duration;
mod parse;
mod plan;
mod plan_json;
pub mod reload;

use std::fmt;
use std::io::Read;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use xvrrp_wire::ethernet::EthernetAddress;

pub use duration::{format_duration, parse_duration, DurationError};
pub use reload::{diff, InstanceChange, ReloadPlan};

/// Default path of the control socket.
pub const DEFAULT_CONTROL_SOCKET: &str = "/run/xvrrp/xvrrp.sock";

/// A configuration file larger than this is refused before parsing.
pub const MAX_FILE_LEN: u64 = 4 * 1024 * 1024;

/// A validated configuration, with every default resolved.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// `[global]`.
    pub global: Global,
    /// `[dataplane]`.
    pub dataplane: Dataplane,
    /// `[[port]]`, in file order.
    pub ports: Vec<PortConfig>,
    /// `[[vrrp]]`, in file order.
    pub vrrp: Vec<RouterSpec>,
    /// `[[sync_group]]`, in file order.
    pub sync_groups: Vec<SyncGroupConfig>,
    /// `[[route]]`: static routes, in file order.
    pub routes: Vec<RouteConfig>,
    /// `[routes] kernel`: mirror the kernel's main routing table.
    pub kernel_routes: bool,
}

/// `[global]`: process-wide settings.
#[derive(Debug, Clone, PartialEq)]
pub struct Global {
    /// Path of the control socket.
    pub control_socket: PathBuf,
    /// Group given access to the control socket.
    pub socket_group: Option<String>,
    /// Address of the Prometheus text endpoint.
    pub metrics_listen: Option<SocketAddr>,
    /// Program run with `INSTANCE STATE PRIORITY` on each transition.
    pub notify: Option<PathBuf>,
}

impl Default for Global {
    fn default() -> Self {
        Global {
            control_socket: PathBuf::from(DEFAULT_CONTROL_SOCKET),
            socket_group: None,
            metrics_listen: None,
            notify: None,
        }
    }
}

/// `[dataplane]`: how the fast path runs.
///
/// Its packet I/O is AF_XDP, the only backend: `backend = "af_xdp"` is
/// accepted (SPEC §2 lists the key) and `"af_packet"` is refused.
#[derive(Debug, Clone, PartialEq)]
pub struct Dataplane {
    /// One pinned polling worker per core listed.
    pub cores: Vec<usize>,
    /// What a worker does when its rings are empty.
    pub idle: Idle,
    /// How the XDP program is attached.
    pub xdp_mode: XdpMode,
    /// Whether AF_XDP sockets use zero-copy mode.
    pub zero_copy: ZeroCopy,
    /// Frames handled per ring pass (1..=256).
    pub batch: u32,
}

impl Default for Dataplane {
    fn default() -> Self {
        Dataplane {
            cores: vec![0],
            idle: Idle::Adaptive,
            xdp_mode: XdpMode::Auto,
            zero_copy: ZeroCopy::Auto,
            batch: 64,
        }
    }
}

/// What a worker does when it finds no work.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Idle {
    /// Spin without pause (`"busy"`).
    Busy,
    /// Spin, then back off (`"adaptive"`).
    Adaptive,
    /// Sleep until the rings signal (`"wait"`).
    Wait,
}

/// XDP attach mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum XdpMode {
    /// Native if the driver supports it, else generic (`"auto"`).
    Auto,
    /// Driver mode only (`"native"`).
    Native,
    /// SKB mode (`"generic"`).
    Generic,
}

/// AF_XDP zero-copy setting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ZeroCopy {
    /// Zero-copy where the driver supports it (`"auto"`).
    Auto,
    /// Zero-copy or fail (`"on"`).
    On,
    /// Always copy (`"off"`).
    Off,
}

/// `[[port]]`: an interface served by the fast path.
#[derive(Debug, Clone, PartialEq)]
pub struct PortConfig {
    /// Linux interface name.
    pub name: String,
    /// Which RX queues to serve.
    pub queues: Queues,
}

/// RX queues of a port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Queues {
    /// Every queue the interface has (`"all"`).
    All,
    /// These queue ids.
    List(Vec<u32>),
}

impl Queues {
    /// The queue ids selected on a port that has `available` receive queues.
    pub fn resolve(&self, available: u32) -> Vec<u32> {
        match self {
            Queues::All => (0..available.max(1)).collect(),
            Queues::List(ids) => ids.clone(),
        }
    }
}

/// The worker serving the `position`-th selected queue of a port, among
/// `workers`: each port's queues go to the workers in turn, its first queue
/// to worker 0. A port with at least as many queues as there are workers
/// thus has a socket in every worker, and a frame is sent out of it by the
/// worker that received it; a worker left without a queue on a port hands
/// the frames it forwards there to the port's first worker.
pub fn queue_worker(position: usize, workers: usize) -> usize {
    position % workers.max(1)
}

/// Checksum variant sent in VRRPv3 IPv4 advertisements: `"rfc9568"` (no
/// pseudo-header) or `"pseudo-header"` (RFC 5798 as keepalived and FRR send it).
pub use xvrrp_wire::vrrp::ChecksumKind as ChecksumMode;
pub use xvrrp_wire::vrrp::Version;

/// Index of a virtual router: its position among the `[[vrrp]]` tables, the
/// key of every per-router table (state machines, ownership flags, the fast
/// path's view, counters).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RouterId(pub u16);

impl RouterId {
    /// The id as a table index.
    pub const fn index(self) -> usize {
        self.0 as usize
    }
}

impl fmt::Display for RouterId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "#{}", self.0)
    }
}

/// `[[vrrp]]`: one virtual router, validated. The one description of a
/// router: the state machine's parameters, the fast path's view and what
/// `status` shows are all derived from it.
#[derive(Debug, Clone, PartialEq)]
pub struct RouterSpec {
    /// Its index among the configured routers.
    pub id: RouterId,
    /// Unique instance name.
    pub name: String,
    /// Name of the `[[port]]` it runs on.
    pub port: String,
    /// Virtual router id (1..=255).
    pub vrid: u8,
    /// Protocol version: 3 (RFC 5798/9568) or 2 (RFC 3768, IPv4 only).
    pub version: Version,
    /// The virtual MAC: 00:00:5e:00:01:VRID for IPv4, 00:00:5e:00:02:VRID
    /// for IPv6 (RFC 9568 §7.3).
    pub vmac: EthernetAddress,
    /// Priority (1..=255; 255 = address owner).
    pub priority: u8,
    /// Advertisement interval in centiseconds (v2: whole seconds × 100).
    pub interval_cs: u16,
    /// Whether a higher priority backup preempts a lower priority master.
    pub preempt: bool,
    /// How long to wait before preempting.
    pub preempt_delay: Duration,
    /// Accept packets addressed to the virtual addresses.
    pub accept: bool,
    /// Checksum variant sent (v3, IPv4).
    pub checksum: ChecksumMode,
    /// Virtual addresses as configured, all of one family.
    pub addresses: Vec<IfAddr>,
    /// Advertise by unicast to these peers instead of multicast.
    pub unicast_peers: Vec<IpAddr>,
    /// Gratuitous ARP / unsolicited NA on becoming master.
    pub garp: GarpConfig,
    /// Ports whose link state adjusts the priority.
    pub track: Vec<TrackConfig>,
}

impl RouterSpec {
    /// Whether the virtual addresses are IPv6.
    pub fn is_ipv6(&self) -> bool {
        self.addresses.first().is_some_and(|a| a.addr.is_ipv6())
    }

    /// The virtual MAC for `vrid` and a family.
    pub fn vmac_for(vrid: u8, ipv6: bool) -> EthernetAddress {
        if ipv6 {
            EthernetAddress::vrrp_v6(vrid)
        } else {
            EthernetAddress::vrrp_v4(vrid)
        }
    }

    /// The advertisement interval.
    pub fn advert_interval(&self) -> Duration {
        crate::vrrp::timer::cs_to_duration(self.interval_cs)
    }

    /// Skew_Time at the configured priority and interval.
    pub fn skew_time(&self) -> Duration {
        crate::vrrp::timer::skew_time(self.version, self.priority, self.interval_cs)
    }

    /// Master_Down_Interval at the configured priority and interval.
    pub fn master_down_interval(&self) -> Duration {
        crate::vrrp::timer::master_down_interval(self.version, self.priority, self.interval_cs)
    }

    /// The state machine's parameters, with `primary` (the port's address
    /// the adverts come from) as the router's own address.
    pub fn instance_config(&self, primary: IpAddr) -> crate::vrrp::InstanceConfig {
        crate::vrrp::InstanceConfig {
            name: self.name.clone(),
            vrid: self.vrid,
            version: self.version,
            priority: self.priority,
            advert_interval_cs: self.interval_cs,
            preempt: self.preempt,
            preempt_delay: self.preempt_delay,
            primary_addr: primary,
        }
    }

    /// The link-local address derived for an IPv6 instance whose addresses
    /// are all global: the EUI-64 address of the virtual MAC (RFC 4291
    /// App. A), the same on every router of the virtual router and the one
    /// a kernel gives an interface carrying that MAC (what FRR's macvlan has).
    pub fn derived_link_local(&self) -> Option<IfAddr> {
        let first = self.addresses.first()?;
        match first.addr {
            IpAddr::V6(a) if !a.is_unicast_link_local() => Some(IfAddr {
                addr: IpAddr::V6(xvrrp_wire::nd::link_local_from_mac(self.vmac)),
                prefix_len: 64,
            }),
            _ => None,
        }
    }

    /// The addresses as advertised and served: for IPv6, RFC 9568 §5.2.9
    /// wants the first to be link-local, so [`Self::derived_link_local`] is
    /// put first when the user gave only global ones.
    pub fn advertised_addresses(&self) -> Vec<IfAddr> {
        self.derived_link_local()
            .into_iter()
            .chain(self.addresses.iter().copied())
            .collect()
    }
}

/// An interface address, `"192.0.2.1/24"`; a bare address is a host address.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct IfAddr {
    /// The address.
    pub addr: IpAddr,
    /// Prefix length (≤ 32 for IPv4, ≤ 128 for IPv6).
    pub prefix_len: u8,
}

impl fmt::Display for IfAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix_len)
    }
}

/// `garp = { count, interval, refresh }`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GarpConfig {
    /// Gratuitous ARPs / unsolicited NAs sent on becoming master.
    pub count: u32,
    /// Gap between them.
    pub interval: Duration,
    /// Periodic repeat while master; zero turns it off.
    pub refresh: Duration,
}

impl Default for GarpConfig {
    fn default() -> Self {
        GarpConfig {
            count: 3,
            interval: Duration::from_millis(50),
            refresh: Duration::ZERO,
        }
    }
}

/// `track = [{ port | address | route, weight }]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrackConfig {
    /// What is watched.
    pub target: TrackTarget,
    /// Added to the priority while the target is down (-254..=254).
    pub weight: i32,
}

/// Something whose state moves priorities: up, or down.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum TrackTarget {
    /// The link of a `[[port]]` (`port = "wan0"`): up when administratively
    /// up with carrier.
    Port(String),
    /// An address (`address = "203.0.113.2"`): up while some interface of
    /// the appliance's namespace has it.
    Address(IpAddr),
    /// A route (`route = "0.0.0.0/0"`): up while the kernel's main table
    /// has a route to exactly this prefix.
    Route(IfAddr),
}

impl fmt::Display for TrackTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TrackTarget::Port(p) => write!(f, "port {p}"),
            TrackTarget::Address(a) => write!(f, "address {a}"),
            TrackTarget::Route(r) => write!(f, "route {r}"),
        }
    }
}

/// `[[sync_group]]`: instances that change state together.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyncGroupConfig {
    /// Group name.
    pub name: String,
    /// Names of the member `[[vrrp]]` instances.
    pub members: Vec<String>,
}

/// `[[route]]`: a static route of the fast path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteConfig {
    /// Destination network (host bits zero).
    pub to: IfAddr,
    /// Next hop.
    pub via: IpAddr,
    /// Egress `[[port]]`.
    pub port: String,
}

/// One problem found in a configuration file, at a 1-based line and column.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    /// 1-based line.
    pub line: usize,
    /// 1-based column, in characters.
    pub col: usize,
    /// What is wrong, in one line.
    pub message: String,
}

/// Why a configuration could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// The file is larger than [`MAX_FILE_LEN`].
    #[error("{}: file is larger than {max} bytes", path.display())]
    TooLarge {
        /// The file.
        path: PathBuf,
        /// The limit.
        max: u64,
    },
    /// The text has errors; one line per error.
    #[error("{}", render(origin, diagnostics))]
    Invalid {
        /// File name used in messages.
        origin: String,
        /// Every problem found, in file order.
        diagnostics: Vec<Diagnostic>,
    },
}

fn render(origin: &str, diagnostics: &[Diagnostic]) -> String {
    diagnostics
        .iter()
        .map(|d| format!("{origin}:{}:{}: {}", d.line, d.col, d.message))
        .collect::<Vec<_>>()
        .join("\n")
}

impl ConfigError {
    /// Every located problem (empty for I/O errors).
    pub fn errors(&self) -> &[Diagnostic] {
        match self {
            ConfigError::Invalid { diagnostics, .. } => diagnostics,
            ConfigError::Io { .. } | ConfigError::TooLarge { .. } => &[],
        }
    }
}

/// Reads and validates the configuration file at `path`.
///
/// # Errors
///
/// [`ConfigError::Io`] if it cannot be read, [`ConfigError::TooLarge`] beyond
/// [`MAX_FILE_LEN`], [`ConfigError::Invalid`] with every problem otherwise.
pub fn load(path: &Path) -> Result<Config, ConfigError> {
    let io = |source| ConfigError::Io {
        path: path.to_path_buf(),
        source,
    };
    let file = std::fs::File::open(path).map_err(io)?;
    let mut bytes = Vec::new();
    file.take(MAX_FILE_LEN + 1)
        .read_to_end(&mut bytes)
        .map_err(io)?;
    if bytes.len() as u64 > MAX_FILE_LEN {
        return Err(ConfigError::TooLarge {
            path: path.to_path_buf(),
            max: MAX_FILE_LEN,
        });
    }
    let origin = path.display().to_string();
    match String::from_utf8(bytes) {
        Ok(text) => parse(&text, &origin),
        Err(e) => {
            let bytes = e.as_bytes();
            let at = e.utf8_error().valid_up_to();
            let (line, col) = parse::line_col(bytes, at);
            Err(ConfigError::Invalid {
                origin,
                diagnostics: vec![Diagnostic {
                    line,
                    col,
                    message: "invalid UTF-8".to_string(),
                }],
            })
        }
    }
}

/// Validates configuration `text`; `origin` names it in messages.
///
/// # Errors
///
/// [`ConfigError::Invalid`] listing every problem found.
pub fn parse(text: &str, origin: &str) -> Result<Config, ConfigError> {
    parse::parse(text).map_err(|diagnostics| ConfigError::Invalid {
        origin: origin.to_string(),
        diagnostics,
    })
}

impl Config {
    /// The resolved plan `xvrrp check` prints: ports, workers, each instance
    /// with its defaults filled in and its derived timers, sync groups, routes.
    pub fn plan(&self) -> String {
        plan::render(self, &|_| None)
    }

    /// [`Self::plan`], with the receive queues of `"all"` resolved through
    /// `rx_queues` (the queue count of an interface present here, if any),
    /// so the plan lists the queues each worker will serve.
    pub fn plan_with(&self, rx_queues: &dyn Fn(&str) -> Option<u32>) -> String {
        plan::render(self, rx_queues)
    }

    /// The resolved plan as JSON (`xvrrp check --json`): the same facts as
    /// [`Config::plan_with`], durations in microseconds.
    pub fn plan_json_with(&self, rx_queues: &dyn Fn(&str) -> Option<u32>) -> serde_json::Value {
        plan_json::render(self, rx_queues)
    }

    /// The port named `name`.
    pub fn port(&self, name: &str) -> Option<&PortConfig> {
        self.ports.iter().find(|p| p.name == name)
    }

    /// The instance named `name`.
    pub fn instance(&self, name: &str) -> Option<&RouterSpec> {
        self.vrrp.iter().find(|v| v.name == name)
    }

    /// The index of the port named `name`.
    pub fn port_index(&self, name: &str) -> Option<usize> {
        self.ports.iter().position(|p| p.name == name)
    }
}
