//! The one list of reasons a frame is dropped, shared by the fast path
//! (which counts them per worker and port) and the control thread (which
//! refuses a few adverts for reasons only it can see).

/// Why a frame was dropped, in the fast path or by the control thread: the
/// one list of drop reasons. The names are the counter keys shown by
/// `xvrrp stats`; the VRRP ones follow the RFC 9568 MIB statistics
/// (`vrrpv3StatisticsIpTtlErrors` → `ip-ttl-error`, ...).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(usize)]
pub enum DropReason {
    /// Too short or inconsistent Ethernet/IP framing.
    Malformed = 0,
    /// Malformed ARP (bad hardware/protocol type or lengths, short).
    ArpMalformed,
    /// VRRP: TTL/hop limit not 255.
    IpTtlError,
    /// VRRP: unknown version.
    VersionError,
    /// VRRP: type other than advertisement.
    InvalidType,
    /// VRRP: checksum matches no accepted variant.
    ChecksumError,
    /// VRRP: length inconsistent with the address count, or truncated.
    PacketLengthError,
    /// VRRP: interval zero.
    IntervalError,
    /// VRRPv2: authentication type other than 0.
    AuthType,
    /// VRRP: source address multicast, broadcast or unspecified.
    SourceError,
    /// VRRP: wrong destination for the mode.
    DestinationError,
    /// VRRP: IP header malformed (IHL, lengths, header checksum).
    IpHeaderError,
    /// VRRP: fragment.
    Fragment,
    /// VRRP: address count 0.
    AddressCountError,
    /// VRRP: no instance configured with this VRID on the port.
    VridError,
    /// The control thread's advertisement queue was full.
    PuntQueueFull,
    /// Frame to a virtual MAC (or ARP for a virtual address) while backup.
    NotMaster,
    /// Traffic to a virtual address that is not answered (accept off, or not ICMP echo).
    ToVirtualAddress,
    /// No route to the destination.
    NoRoute,
    /// Next hop's MAC unknown yet (an ARP request was sent instead).
    NoNeighbour,
    /// TTL reached zero while forwarding.
    TtlExceeded,
    /// The egress port cannot be sent on: no address or MAC to send from,
    /// or no worker has a socket on it.
    NoEgress,
    /// Not IPv4 / ARP (not handled yet by the fast path).
    Unhandled,
    /// Transmit ring full.
    TxRingFull,
    /// Control thread: our own advertisement, looped back.
    OwnAdvert,
    /// Control thread: a VRRPv2 advert listing other addresses than ours,
    /// from a router that is not the owner (RFC 3768 §7.1).
    AddressListError,
    /// An IP packet to forward or answer whose version field is wrong, or an
    /// IPv4 header whose checksum does not verify (RFC 1812 §5.2.2).
    BadIpHeader,
    /// The worker's list of frames waiting for the egress port's transmit
    /// ring was full, or it had no free frame to copy a handed-off one into.
    EgressFull,
    /// The egress port is served by another worker and that worker's
    /// hand-off queue was full (or the frame too large to hand off).
    HandoffFull,
    /// XDP filter: a valid-looking advert beyond the port's advert rate
    /// (the current master's adverts have an allowance of their own).
    AdvertRateLimited,
    /// An ARP request for a virtual address beyond the rate answered per
    /// sender (or in all).
    ArpRateLimited,
    /// A Neighbour Solicitation for a virtual address beyond the rate
    /// answered per sender (or in all).
    NdRateLimited,
}

impl DropReason {
    /// Every reason, in counter order.
    pub const ALL: [DropReason; 32] = [
        DropReason::Malformed,
        DropReason::ArpMalformed,
        DropReason::IpTtlError,
        DropReason::VersionError,
        DropReason::InvalidType,
        DropReason::ChecksumError,
        DropReason::PacketLengthError,
        DropReason::IntervalError,
        DropReason::AuthType,
        DropReason::SourceError,
        DropReason::DestinationError,
        DropReason::IpHeaderError,
        DropReason::Fragment,
        DropReason::AddressCountError,
        DropReason::VridError,
        DropReason::PuntQueueFull,
        DropReason::NotMaster,
        DropReason::ToVirtualAddress,
        DropReason::NoRoute,
        DropReason::NoNeighbour,
        DropReason::TtlExceeded,
        DropReason::NoEgress,
        DropReason::Unhandled,
        DropReason::TxRingFull,
        DropReason::OwnAdvert,
        DropReason::AddressListError,
        DropReason::BadIpHeader,
        DropReason::EgressFull,
        DropReason::HandoffFull,
        DropReason::AdvertRateLimited,
        DropReason::ArpRateLimited,
        DropReason::NdRateLimited,
    ];

    /// Number of reasons.
    pub const COUNT: usize = Self::ALL.len();

    /// Stable counter name.
    pub fn name(self) -> &'static str {
        match self {
            DropReason::Malformed => "malformed",
            DropReason::ArpMalformed => "arp-malformed",
            DropReason::IpTtlError => "ip-ttl-error",
            DropReason::VersionError => "version-error",
            DropReason::InvalidType => "invalid-type",
            DropReason::ChecksumError => "checksum-error",
            DropReason::PacketLengthError => "packet-length-error",
            DropReason::IntervalError => "interval-error",
            DropReason::AuthType => "auth-type",
            DropReason::SourceError => "source-error",
            DropReason::DestinationError => "destination-error",
            DropReason::IpHeaderError => "ip-header-error",
            DropReason::Fragment => "fragment",
            DropReason::AddressCountError => "address-count-error",
            DropReason::VridError => "vrid-error",
            DropReason::PuntQueueFull => "punt-queue-full",
            DropReason::NotMaster => "not-master",
            DropReason::ToVirtualAddress => "to-virtual-address",
            DropReason::NoRoute => "no-route",
            DropReason::NoNeighbour => "no-neighbour",
            DropReason::TtlExceeded => "ttl-exceeded",
            DropReason::NoEgress => "no-egress",
            DropReason::Unhandled => "unhandled",
            DropReason::TxRingFull => "tx-ring-full",
            DropReason::OwnAdvert => "own-advert",
            DropReason::AddressListError => "address-list-error",
            DropReason::BadIpHeader => "bad-ip-header",
            DropReason::EgressFull => "egress-full",
            DropReason::HandoffFull => "handoff-full",
            DropReason::AdvertRateLimited => "advert-rate-limited",
            DropReason::ArpRateLimited => "arp-rate-limited",
            DropReason::NdRateLimited => "nd-rate-limited",
        }
    }
}
