//! A's adverts as the wire sees them: captured on A's port of the switch
//! with kernel receive timestamps, so the gaps measured are those on the
//! wire, not those of a capture thread starved by the load.

use std::net::Ipv4Addr;
use std::os::fd::{AsRawFd, OwnedFd};
use std::time::Duration;

use anyhow::Result;
use xvrrp_lab::bench_control::capture_socket;

use super::raw::Capture;

/// Records the kernel receive time of every advert A sends for `vrid`
/// from `src`, on A's port `ifname` of the switch (frames towards A
/// ignored), until finished.
pub(crate) fn advert_stamps(
    ns: &str,
    ifname: &str,
    src: Ipv4Addr,
    vrid: u8,
) -> Result<Capture<Duration>> {
    Capture::start(ns, ifname, capture_socket, move |fd| {
        recv_advert_stamp(fd, src, vrid)
    })
}

/// Receives one packet; its kernel timestamp (since the epoch) if it is an
/// IPv4 VRRP advert from `src` for `vrid`. `None` on a timeout or another
/// packet.
fn recv_advert_stamp(fd: &OwnedFd, src: Ipv4Addr, vrid: u8) -> Option<Duration> {
    let mut buf = [0u8; 2048];
    // u64 elements keep the control buffer aligned for cmsghdr.
    let mut control = [0u64; 16];
    let mut iov = libc::iovec {
        iov_base: buf.as_mut_ptr().cast(),
        iov_len: buf.len(),
    };
    // SAFETY: sockaddr_ll is plain data; all-zero is a valid value.
    let mut from: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
    // SAFETY: msghdr is plain data; all-zero is a valid value.
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_name = std::ptr::addr_of_mut!(from).cast();
    msg.msg_namelen = u32::try_from(std::mem::size_of::<libc::sockaddr_ll>()).ok()?;
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control.as_mut_ptr().cast();
    msg.msg_controllen = std::mem::size_of_val(&control);
    // SAFETY: `msg` points at `from`, `iov` (into `buf`) and `control`,
    // all live and of the lengths given.
    let n = unsafe { libc::recvmsg(fd.as_raw_fd(), &mut msg, 0) };
    let packet = buf.get(..usize::try_from(n).ok()?)?;
    if from.sll_protocol != u16::try_from(libc::ETH_P_IP).ok()?.to_be() {
        return None;
    }
    let first = *packet.first()?;
    let from_ip: [u8; 4] = packet.get(12..16)?.try_into().ok()?;
    let vrrp = packet.get(usize::from(first & 0x0f) * 4..)?;
    if first >> 4 != 4 || *packet.get(9)? != 112 || Ipv4Addr::from(from_ip) != src {
        return None;
    }
    if *vrrp.get(1)? != vrid {
        return None;
    }
    // SAFETY: `msg` was filled by recvmsg; the CMSG macros walk its
    // control buffer within msg_controllen.
    let mut cmsg = unsafe { libc::CMSG_FIRSTHDR(&msg) };
    while !cmsg.is_null() {
        // SAFETY: `cmsg` is non-null and inside the control buffer.
        let hdr = unsafe { &*cmsg };
        if hdr.cmsg_level == libc::SOL_SOCKET && hdr.cmsg_type == libc::SCM_TIMESTAMPNS {
            // SAFETY: an SCM_TIMESTAMPNS message carries one timespec;
            // read unaligned, the data need not be aligned for it.
            let ts: libc::timespec =
                unsafe { std::ptr::read_unaligned(libc::CMSG_DATA(cmsg).cast()) };
            return Some(
                Duration::from_secs(u64::try_from(ts.tv_sec).ok()?)
                    + Duration::from_nanos(u64::try_from(ts.tv_nsec).ok()?),
            );
        }
        // SAFETY: as above; returns null past the last message.
        cmsg = unsafe { libc::CMSG_NXTHDR(&msg, cmsg) };
    }
    None
}

/// Gaps between consecutive adverts: how many, p50, p99 and the largest.
pub(crate) struct Gaps {
    pub(crate) adverts: usize,
    pub(crate) p50: Duration,
    pub(crate) p99: Duration,
    pub(crate) max: Duration,
}

impl Gaps {
    pub(crate) fn of(stamps: &[Duration]) -> Gaps {
        let mut gaps: Vec<Duration> = stamps
            .windows(2)
            .map(|w| w[1].saturating_sub(w[0]))
            .collect();
        gaps.sort_unstable();
        let at = |q: usize| {
            gaps.get((gaps.len() * q / 100).min(gaps.len().saturating_sub(1)))
                .copied()
                .unwrap_or_default()
        };
        Gaps {
            adverts: stamps.len(),
            p50: at(50),
            p99: at(99),
            max: gaps.last().copied().unwrap_or_default(),
        }
    }
}

impl std::fmt::Display for Gaps {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let ms = |d: Duration| d.as_secs_f64() * 1000.0;
        write!(
            f,
            "{} adverts from A, gaps p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
            self.adverts,
            ms(self.p50),
            ms(self.p99),
            ms(self.max)
        )
    }
}
