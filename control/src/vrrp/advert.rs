//! An advertisement as it crosses from the fast path to the control thread:
//! validated once by the worker, handed over as a small `Copy` value, never
//! as bytes to parse again.

use std::net::IpAddr;
use std::time::Instant;

use xvrrp_wire::vrrp::{ChecksumKind, Version};

use crate::config::RouterId;

/// What an advert's address list says about the sender's configuration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AddressList {
    /// The same addresses as ours (in any order), link-local first for IPv6.
    Matches,
    /// Different (or, for IPv6, no link-local first): a misconfiguration to
    /// count and log, but the advert still counts (VRRPv3, or the owner).
    Mismatch,
    /// Different, from a VRRPv2 router that is not the owner: dropped.
    Drop,
}

/// RFC 9568 §6.4.2 / RFC 3768 §7.1 (docs/conformance.md B16, B22): VRRPv3
/// accepts an advert listing other addresses and counts it; VRRPv2 drops
/// it unless the sender is the address owner (priority 255). An IPv6 list
/// should start with a link-local address.
///
/// `ours_len` and `is_ours` describe our list; `theirs` is the advert's, in
/// order, `theirs_len` long. Neither side allocates, so the fast path can
/// call this per advert.
pub fn address_list_verdict(
    version: Version,
    priority: u8,
    ours_len: usize,
    is_ours: impl Fn(IpAddr) -> bool,
    theirs_len: usize,
    theirs: impl IntoIterator<Item = IpAddr>,
) -> AddressList {
    let same_count = theirs_len == ours_len;
    let mut link_local_first = true;
    let mut all_ours = true;
    for (i, a) in theirs.into_iter().enumerate() {
        if i == 0 {
            if let IpAddr::V6(v6) = a {
                link_local_first = v6.is_unicast_link_local();
            }
        }
        all_ours &= is_ours(a);
    }
    if same_count && all_ours && link_local_first {
        AddressList::Matches
    } else if version == Version::V2 && priority != super::OWNER_PRIORITY {
        AddressList::Drop
    } else {
        AddressList::Mismatch
    }
}

/// A received advertisement the fast path validated (framing, TTL, version,
/// type, checksum, length, destination, VRID) and matched to its router.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RxAdvert {
    /// The virtual router it is for.
    pub router: RouterId,
    /// When the worker read it from the ring.
    pub arrival: Instant,
    /// Source address of the IP packet: the sender's primary address.
    pub src: IpAddr,
    /// Priority field (0: the sender leaves the master role).
    pub priority: u8,
    /// The interval it carries in centiseconds (v2's seconds × 100).
    pub max_advert_int_cs: u16,
    /// How a v3 IPv4 sender computed its checksum (`None` over IPv6).
    pub checksum: Option<ChecksumKind>,
    /// The address-list verdict against the router's own list.
    pub addresses: AddressList,
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn ips(list: &[&str]) -> Vec<IpAddr> {
        list.iter().map(|a| a.parse().unwrap()).collect()
    }

    fn verdict(version: Version, priority: u8, ours: &[IpAddr], theirs: &[IpAddr]) -> AddressList {
        address_list_verdict(
            version,
            priority,
            ours.len(),
            |a| ours.contains(&a),
            theirs.len(),
            theirs.iter().copied(),
        )
    }

    #[test]
    fn b16_b22_address_list_verdicts() {
        let ours = ips(&["192.0.2.1", "192.0.2.5"]);
        let (v2, v3) = (Version::V2, Version::V3);
        let same = ips(&["192.0.2.5", "192.0.2.1"]);
        let other = ips(&["192.0.2.1", "192.0.2.77"]);
        let fewer = ips(&["192.0.2.1"]);
        assert_eq!(verdict(v3, 100, &ours, &same), AddressList::Matches);
        assert_eq!(verdict(v2, 100, &ours, &same), AddressList::Matches);
        // B16: same count, other addresses; and another count.
        assert_eq!(verdict(v3, 100, &ours, &other), AddressList::Mismatch);
        assert_eq!(verdict(v3, 100, &ours, &fewer), AddressList::Mismatch);
        assert_eq!(verdict(v2, 100, &ours, &other), AddressList::Drop);
        assert_eq!(verdict(v2, 100, &ours, &fewer), AddressList::Drop);
        // The v2 owner is believed whatever it lists.
        assert_eq!(verdict(v2, 255, &ours, &other), AddressList::Mismatch);
        // B22: an IPv6 list must start with a link-local address.
        let ours6 = ips(&["fe80::200:5eff:fe00:201", "2001:db8:1::1"]);
        let global_first = ips(&["2001:db8:1::1", "fe80::200:5eff:fe00:201"]);
        assert_eq!(verdict(v3, 100, &ours6, &ours6), AddressList::Matches);
        assert_eq!(
            verdict(v3, 100, &ours6, &global_first),
            AddressList::Mismatch
        );
    }
}
