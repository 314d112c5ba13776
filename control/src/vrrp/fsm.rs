//! The vocabulary of the VRRP state machine: states, inputs and outputs
//! (RFC 9568 §6.4, RFC 3768 §6.4).

use std::fmt;
use std::net::IpAddr;

use serde::Serialize;

/// Protocol version of a virtual router: the wire crate's, the one version type.
pub use xvrrp_wire::vrrp::Version;

/// The three states of RFC 9568 §6.4.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum State {
    /// Waiting for a Startup event (RFC 9568 §6.4.1).
    #[serde(rename = "init")]
    Initialize,
    /// Monitoring the master (RFC 9568 §6.4.2).
    Backup,
    /// Forwarding for the virtual addresses (RFC 9568 §6.4.3).
    Master,
}

impl fmt::Display for State {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            State::Initialize => "init",
            State::Backup => "backup",
            State::Master => "master",
        })
    }
}

/// Why a state change happened; carried by [`Output::StateChanged`] for logs,
/// `status`, notify scripts and the sync-group driver.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Reason {
    /// Startup of a non-owner: Initialize → Backup (RFC 9568 §6.4.1).
    Startup,
    /// Startup of the address owner (priority 255): Initialize → Master (RFC 9568 §6.4.1).
    OwnerStartup,
    /// Master_Down_Timer expired with no master heard (RFC 9568 §6.4.2).
    MasterDown,
    /// Master_Down_Timer, shortened to Skew_Time by a priority-0 advert, expired (RFC 9568 §6.4.2).
    PriorityZero,
    /// Master_Down_Timer expired because lower-priority adverts were discarded
    /// while preemption was allowed (RFC 9568 §6.4.2).
    Preempt,
    /// A master heard a higher priority, or an equal one from a higher address (RFC 9568 §6.4.3).
    HigherPriority,
    /// A master found its own Adver_Timer overdue by more than Master_Down_Interval
    /// (the process was frozen), assumed a backup took over and stepped down.
    Stalled,
    /// Forced by a sync group so that its members share one state.
    SyncGroup,
    /// Shutdown event (RFC 9568 §6.4.2, §6.4.3).
    Shutdown,
    /// Not in the RFC: a drained master heard the peer that took over
    /// advertise as master, and handed the addresses over to it.
    Drain,
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Reason::Startup => "startup",
            Reason::OwnerStartup => "owner_startup",
            Reason::MasterDown => "master_down",
            Reason::PriorityZero => "priority_zero",
            Reason::Preempt => "preempt",
            Reason::HigherPriority => "higher_priority",
            Reason::Stalled => "stalled",
            Reason::SyncGroup => "sync_group",
            Reason::Shutdown => "shutdown",
            Reason::Drain => "drain",
        })
    }
}

/// A received advertisement, already parsed and validated by the codec
/// (version, VRID, TTL, checksum, authentication).
///
/// For version 2 `max_advert_int_cs` is the packet's Adver Int in seconds × 100.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Advert {
    /// Source address of the IP packet: the sender's primary address.
    pub src: IpAddr,
    /// Priority field; 0 means the sender is leaving the master role.
    pub priority: u8,
    /// Advertisement interval carried by the packet, in centiseconds.
    pub max_advert_int_cs: u16,
}

/// An action the I/O shell must carry out, drained with `Instance::poll_output`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Output {
    /// Build and send one advertisement with these fields.
    SendAdvert {
        /// Priority field to send (0 on shutdown or forced step-down).
        priority: u8,
        /// Interval field to send, in centiseconds (v2: seconds × 100).
        max_advert_int_cs: u16,
    },
    /// Announce the virtual addresses (gratuitous ARP / unsolicited NA);
    /// the shell applies the configured count and spacing.
    SendGarp,
    /// Start (`true`) or stop (`false`) answering and forwarding for the
    /// virtual addresses. Emitted only when ownership actually changes.
    SetOwnership {
        /// Whether the fast path now owns the virtual addresses.
        master: bool,
    },
    /// The instance moved from one state to another.
    StateChanged {
        /// Previous state.
        from: State,
        /// New state.
        to: State,
        /// Why.
        reason: Reason,
    },
}
