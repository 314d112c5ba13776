//! MAC addresses of `unicast_peers`, for the control thread's unicast
//! advertisements. The kernel resolves them: we read its IPv4 neighbour
//! table (/proc/net/arp, this namespace's) and, for a peer it does not know
//! yet, make it resolve one by sending an empty UDP datagram to the peer's
//! discard port from the port. Until then the advert goes out in a
//! broadcast frame, which the peer accepts as well. IPv6 peers get the
//! all-nodes multicast MAC with their unicast address (every IPv6 node
//! accepts that frame).

use std::{
    collections::HashMap,
    net::{IpAddr, Ipv4Addr, SocketAddr, UdpSocket},
    os::fd::AsRawFd,
    time::{Duration, Instant},
};

use xvrrp_wire::{ethernet::EthernetAddress, nd::ALL_NODES_MAC};

/// How often the kernel table is re-read, and a missing peer probed.
const REFRESH: Duration = Duration::from_secs(1);

/// Known peer MACs, refreshed from the kernel.
#[derive(Debug, Default)]
pub struct PeerMacs {
    /// (port, peer) → MAC.
    macs: HashMap<(String, Ipv4Addr), EthernetAddress>,
    refreshed: Option<Instant>,
    probed: HashMap<Ipv4Addr, Instant>,
    /// Known peers the kernel's table did not list at the last refresh.
    stale: Vec<(String, Ipv4Addr)>,
}

impl PeerMacs {
    /// The MAC to send `peer`'s advert to, out of `port`.
    pub fn lookup(&mut self, now: Instant, port: &str, peer: IpAddr) -> EthernetAddress {
        let IpAddr::V4(peer) = peer else {
            return ALL_NODES_MAC;
        };
        if self
            .refreshed
            .is_none_or(|t| now.saturating_duration_since(t) >= REFRESH)
        {
            let table =
                read_arp_table(&std::fs::read_to_string("/proc/net/arp").unwrap_or_default());
            // A peer the kernel lists no more (its entry aged out, or is
            // being re-probed) keeps its last MAC: falling back to broadcast
            // would flood the LAN for nothing. The probe below refreshes it.
            self.stale = self
                .macs
                .keys()
                .filter(|k| !table.contains_key(*k))
                .cloned()
                .collect();
            self.macs.extend(table);
            self.refreshed = Some(now);
        }
        let key = (port.to_owned(), peer);
        let known = self.macs.get(&key).copied();
        let due = self
            .probed
            .get(&peer)
            .is_none_or(|t| now.saturating_duration_since(*t) >= REFRESH);
        if (known.is_none() || self.stale.contains(&key)) && due {
            self.probed.insert(peer, now);
            if let Err(e) = probe(port, peer) {
                tracing::debug!(%peer, error = %e, "could not make the kernel resolve a unicast peer");
            }
        }
        known.unwrap_or(EthernetAddress::BROADCAST)
    }
}

/// Complete entries of `/proc/net/arp`, by (device, address).
fn read_arp_table(text: &str) -> HashMap<(String, Ipv4Addr), EthernetAddress> {
    text.lines()
        .skip(1)
        .filter_map(|line| {
            let f: Vec<&str> = line.split_whitespace().collect();
            let (ip, flags, mac, dev) = (f.first()?, f.get(2)?, f.get(3)?, f.get(5)?);
            // ATF_COM (0x2): the entry is resolved.
            let complete = u32::from_str_radix(flags.trim_start_matches("0x"), 16).ok()? & 0x2 != 0;
            complete.then_some(())?;
            Some((((*dev).to_owned(), ip.parse().ok()?), mac.parse().ok()?))
        })
        .collect()
}

/// Makes the kernel resolve `peer` on `port`: an empty datagram to its
/// discard port.
fn probe(port: &str, peer: Ipv4Addr) -> std::io::Result<()> {
    let sock = UdpSocket::bind("0.0.0.0:0")?;
    let name = port.as_bytes();
    let len = libc::socklen_t::try_from(name.len()).unwrap_or(0);
    // SAFETY: SO_BINDTODEVICE reads `len` bytes of the interface name.
    let rc = unsafe {
        libc::setsockopt(
            sock.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_BINDTODEVICE,
            name.as_ptr().cast(),
            len,
        )
    };
    if rc != 0 {
        return Err(std::io::Error::last_os_error());
    }
    sock.send_to(&[], SocketAddr::from((peer, 9))).map(|_| ())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn reads_complete_entries_by_port() {
        let table =
            "IP address       HW type     Flags       HW address            Mask     Device\n\
                     192.0.2.3        0x1         0x2         02:00:00:00:00:03     *        lan0\n\
                     192.0.2.9        0x1         0x0         00:00:00:00:00:00     *        lan0\n\
                     203.0.113.3      0x1         0x2         02:00:00:00:01:03     *        wan0\n\
                     garbage\n";
        let macs = read_arp_table(table);
        assert_eq!(macs.len(), 2);
        assert_eq!(
            macs[&("lan0".to_owned(), Ipv4Addr::new(192, 0, 2, 3))],
            "02:00:00:00:00:03".parse().unwrap()
        );
        assert!(macs.contains_key(&("wan0".to_owned(), Ipv4Addr::new(203, 0, 113, 3))));
    }
}
