//! What `xvrrp capture` copies: the filter a capture request names, which
//! the fast path's workers apply before they copy a frame.

/// Which frames a capture copies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum CaptureFilter {
    /// Every frame the fast path sees on the port, both directions.
    #[default]
    All,
    /// VRRP advertisements (IPv4 protocol or IPv6 next header 112).
    Vrrp,
    /// ARP.
    Arp,
    /// IPv6 Neighbour Discovery (ICMPv6 types 133 to 137).
    Nd,
    /// Frames forwarded: received to be forwarded, or sent forwarded.
    Forwarded,
    /// Received frames the fast path dropped.
    Dropped,
}

impl CaptureFilter {
    /// Every filter, in the order the help lists them.
    pub const ALL: [CaptureFilter; 6] = [
        CaptureFilter::All,
        CaptureFilter::Vrrp,
        CaptureFilter::Arp,
        CaptureFilter::Nd,
        CaptureFilter::Forwarded,
        CaptureFilter::Dropped,
    ];

    /// The name used on the command line and in the request.
    pub fn name(self) -> &'static str {
        match self {
            CaptureFilter::All => "all",
            CaptureFilter::Vrrp => "vrrp",
            CaptureFilter::Arp => "arp",
            CaptureFilter::Nd => "nd",
            CaptureFilter::Forwarded => "forwarded",
            CaptureFilter::Dropped => "dropped",
        }
    }

    /// The filter named `name`.
    pub fn from_name(name: &str) -> Option<CaptureFilter> {
        Self::ALL.into_iter().find(|f| f.name() == name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_unknown_is_none() {
        for f in CaptureFilter::ALL {
            assert_eq!(CaptureFilter::from_name(f.name()), Some(f));
        }
        assert_eq!(CaptureFilter::from_name("tcp"), None);
    }
}
