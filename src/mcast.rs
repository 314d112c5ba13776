//! Membership of the VRRP multicast groups (224.0.0.18, ff02::12) on each
//! port that runs multicast instances. The fast path reads the adverts, but
//! a real NIC filters multicast it was not asked for, and switches with
//! IGMP/MLD snooping forward a group only to members: joining through a
//! kernel socket programs the NIC filter and makes the kernel send the
//! IGMP/MLD reports. The sockets only hold the membership; they read nothing
//! (the XDP program takes the adverts before the kernel would deliver them).

use std::{
    net::{Ipv4Addr, Ipv6Addr, UdpSocket},
    os::fd::AsRawFd,
};

use anyhow::Context;

/// Sockets holding the memberships; dropping them leaves the groups.
#[derive(Debug, Default)]
pub struct Memberships {
    sockets: Vec<UdpSocket>,
}

impl Memberships {
    /// Joins `group` on the interface with index `ifindex`.
    pub fn join_v4(&mut self, group: Ipv4Addr, ifindex: u32) -> anyhow::Result<()> {
        let sock = UdpSocket::bind("0.0.0.0:0").context("opening a socket for IGMP membership")?;
        let req = libc::ip_mreqn {
            imr_multiaddr: libc::in_addr {
                s_addr: u32::from(group).to_be(),
            },
            imr_address: libc::in_addr { s_addr: 0 },
            imr_ifindex: i32::try_from(ifindex).unwrap_or(0),
        };
        setsockopt(&sock, libc::IPPROTO_IP, libc::IP_ADD_MEMBERSHIP, &req)
            .with_context(|| format!("joining {group}"))?;
        self.sockets.push(sock);
        Ok(())
    }

    /// Joins `group` on the interface with index `ifindex`.
    pub fn join_v6(&mut self, group: Ipv6Addr, ifindex: u32) -> anyhow::Result<()> {
        let sock = UdpSocket::bind("[::]:0").context("opening a socket for MLD membership")?;
        let req = libc::ipv6_mreq {
            ipv6mr_multiaddr: libc::in6_addr {
                s6_addr: group.octets(),
            },
            ipv6mr_interface: ifindex,
        };
        setsockopt(&sock, libc::IPPROTO_IPV6, libc::IPV6_ADD_MEMBERSHIP, &req)
            .with_context(|| format!("joining {group}"))?;
        self.sockets.push(sock);
        Ok(())
    }
}

fn setsockopt<T>(sock: &UdpSocket, level: i32, name: i32, value: &T) -> std::io::Result<()> {
    let len = libc::socklen_t::try_from(std::mem::size_of::<T>()).unwrap_or(0);
    // SAFETY: `value` points at a live T of `len` bytes, the type the option expects.
    let rc = unsafe {
        libc::setsockopt(
            sock.as_raw_fd(),
            level,
            name,
            (value as *const T).cast(),
            len,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}
