//! What the kernel knows of a port: index, MAC, IPv4 addresses, queues.

use std::{
    ffi::CStr,
    io,
    net::{Ipv4Addr, Ipv6Addr},
};

use xvrrp_wire::ethernet::EthernetAddress;

use crate::error::DataplaneError;

/// A port's kernel facts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InterfaceInfo {
    /// Name.
    pub name: String,
    /// ifindex.
    pub index: u32,
    /// MAC address.
    pub mac: EthernetAddress,
    /// IPv4 addresses with prefix lengths, in kernel order (primary first).
    pub addrs_v4: Vec<(Ipv4Addr, u8)>,
    /// IPv6 addresses with prefix lengths, link-local ones included.
    pub addrs_v6: Vec<(Ipv6Addr, u8)>,
    /// Number of RX queues.
    pub rx_queues: u32,
}

/// Reads `name`'s facts from the current network namespace.
///
/// # Errors
/// `NoInterface` if it does not exist; I/O errors from getifaddrs.
pub fn interface_info(name: &str) -> Result<InterfaceInfo, DataplaneError> {
    let cname = std::ffi::CString::new(name).map_err(|_| DataplaneError::NoInterface {
        ifname: name.into(),
    })?;
    // SAFETY: cname is a valid NUL-terminated string.
    let index = unsafe { libc::if_nametoindex(cname.as_ptr()) };
    if index == 0 {
        return Err(DataplaneError::NoInterface {
            ifname: name.into(),
        });
    }
    let mut mac = None;
    let mut addrs_v4 = Vec::new();
    let mut addrs_v6 = Vec::new();
    for_each_ifaddr(|ifname, addr| {
        if ifname != name.as_bytes() {
            return;
        }
        match addr {
            IfAddr::Mac(m) => mac = Some(m),
            IfAddr::V4(a, prefix) => addrs_v4.push((a, prefix)),
            IfAddr::V6(a, prefix) => addrs_v6.push((a, prefix)),
        }
    })
    .map_err(|source| DataplaneError::Io {
        what: "listing interface addresses".into(),
        source,
    })?;
    let mac =
        mac.ok_or_else(|| DataplaneError::Unsupported(format!("{name} has no Ethernet address")))?;
    Ok(InterfaceInfo {
        name: name.into(),
        index,
        mac,
        addrs_v4,
        addrs_v6,
        rx_queues: rx_queue_count(name),
    })
}

/// One address of an interface, as `getifaddrs(3)` lists it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IfAddr {
    /// The interface's Ethernet address (an `AF_PACKET` entry whose
    /// address is 6 bytes long).
    Mac(EthernetAddress),
    /// An IPv4 address and its prefix length (32 if the entry has no netmask).
    V4(Ipv4Addr, u8),
    /// An IPv6 address and its prefix length (128 if the entry has no netmask).
    V6(Ipv6Addr, u8),
}

/// Calls `f(interface name, address)` for every address of this network
/// namespace's interfaces, in the kernel's order (an interface's primary
/// IPv4 address first). Entries without a name or address, and of other
/// families, are skipped.
///
/// # Errors
/// The error of `getifaddrs(3)`, in which case `f` is not called.
pub fn for_each_ifaddr(mut f: impl FnMut(&[u8], IfAddr)) -> io::Result<()> {
    /// The list `getifaddrs` returned, freed when dropped.
    struct List(*mut libc::ifaddrs);
    impl Drop for List {
        fn drop(&mut self) {
            // SAFETY: the pointer came from a successful getifaddrs and is
            // freed here only, once.
            unsafe { libc::freeifaddrs(self.0) };
        }
    }

    let mut head: *mut libc::ifaddrs = std::ptr::null_mut();
    // SAFETY: getifaddrs writes a list head, which `List` frees.
    if unsafe { libc::getifaddrs(&mut head) } != 0 {
        return Err(io::Error::last_os_error());
    }
    let list = List(head);
    let mut cur = list.0;
    while !cur.is_null() {
        // SAFETY: cur is a node of the list getifaddrs returned, which
        // `list` keeps until this function returns.
        let ifa = unsafe { &*cur };
        cur = ifa.ifa_next;
        if ifa.ifa_name.is_null() || ifa.ifa_addr.is_null() {
            continue;
        }
        // SAFETY: ifa_name is a NUL-terminated string owned by the list.
        let name = unsafe { CStr::from_ptr(ifa.ifa_name) }.to_bytes();
        // SAFETY: ifa_addr is non-null and points at a sockaddr of the family it names.
        let family = i32::from(unsafe { (*ifa.ifa_addr).sa_family });
        let addr = match family {
            libc::AF_PACKET => {
                // SAFETY: AF_PACKET addresses are sockaddr_ll.
                let ll = unsafe { &*ifa.ifa_addr.cast::<libc::sockaddr_ll>() };
                if ll.sll_halen != 6 {
                    continue;
                }
                let mut m = [0u8; 6];
                m.copy_from_slice(&ll.sll_addr[..6]);
                IfAddr::Mac(EthernetAddress(m))
            }
            libc::AF_INET => {
                // SAFETY: AF_INET addresses are sockaddr_in.
                let sin = unsafe { &*ifa.ifa_addr.cast::<libc::sockaddr_in>() };
                let addr = Ipv4Addr::from(u32::from_be(sin.sin_addr.s_addr));
                let prefix = if ifa.ifa_netmask.is_null() {
                    32
                } else {
                    // SAFETY: the netmask of an AF_INET address is a sockaddr_in.
                    let nm = unsafe { &*ifa.ifa_netmask.cast::<libc::sockaddr_in>() };
                    u8::try_from(u32::from_be(nm.sin_addr.s_addr).count_ones()).unwrap_or(32)
                };
                IfAddr::V4(addr, prefix)
            }
            libc::AF_INET6 => {
                // SAFETY: AF_INET6 addresses are sockaddr_in6.
                let sin6 = unsafe { &*ifa.ifa_addr.cast::<libc::sockaddr_in6>() };
                let addr = Ipv6Addr::from(sin6.sin6_addr.s6_addr);
                let prefix = if ifa.ifa_netmask.is_null() {
                    128
                } else {
                    // SAFETY: the netmask of an AF_INET6 address is a sockaddr_in6.
                    let nm = unsafe { &*ifa.ifa_netmask.cast::<libc::sockaddr_in6>() };
                    u8::try_from(u128::from_be_bytes(nm.sin6_addr.s6_addr).count_ones())
                        .unwrap_or(128)
                };
                IfAddr::V6(addr, prefix)
            }
            _ => continue,
        };
        f(name, addr);
    }
    Ok(())
}

/// RX queues of `name`, from sysfs (1 if unknown).
fn rx_queue_count(name: &str) -> u32 {
    rx_queues(name).unwrap_or(1)
}

/// RX queues of interface `name` in this network namespace, from sysfs;
/// `None` if there is no such interface here.
pub fn rx_queues(name: &str) -> Option<u32> {
    // A name with a slash would leave the interface's directory.
    if name.is_empty() || name.contains('/') {
        return None;
    }
    std::fs::read_dir(format!("/sys/class/net/{name}/queues"))
        .ok()
        .map(|dir| {
            let n = dir
                .filter_map(Result::ok)
                .filter(|e| e.file_name().to_string_lossy().starts_with("rx-"))
                .count();
            u32::try_from(n).unwrap_or(1).max(1)
        })
}

/// Is the link up (operationally)?
pub fn link_up(name: &str) -> bool {
    std::fs::read_to_string(format!("/sys/class/net/{name}/operstate"))
        .map(|s| matches!(s.trim(), "up" | "unknown"))
        .unwrap_or(false)
}

impl InterfaceInfo {
    /// The port's IPv6 link-local address (the source of VRRPv3/IPv6 adverts).
    pub fn link_local(&self) -> Option<Ipv6Addr> {
        self.addrs_v6
            .iter()
            .map(|(a, _)| *a)
            .find(Ipv6Addr::is_unicast_link_local)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    /// Loopback is in every namespace, with 127.0.0.1/8; `interface_info`
    /// reads it through the same walk.
    #[test]
    fn loopback_addresses_are_walked() {
        let mut lo = Vec::new();
        for_each_ifaddr(|name, addr| {
            if name == b"lo" {
                lo.push(addr);
            }
        })
        .unwrap();
        assert!(lo.contains(&IfAddr::V4(Ipv4Addr::LOCALHOST, 8)), "{lo:?}");
        let info = interface_info("lo").unwrap();
        assert!(info.addrs_v4.contains(&(Ipv4Addr::LOCALHOST, 8)));
    }
}
