//! Load for the benchmarks: busy loops that hold every core, and a flood of
//! malformed and foreign VRRP advertisements sent onto the LAN from the
//! client as fast as an AF_PACKET socket takes them.
//!
//! Both are guards: dropping them stops what they started (the busy loops
//! by PID, the flood's thread by its flag), so a failing benchmark never
//! leaves the machine loaded.

use std::net::Ipv4Addr;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::Ordering;

use std::thread;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use xvrrp_wire::frames;
use xvrrp_wire::ipv4::Ipv4Packet;
use xvrrp_wire::vrrp::{AddrList, ChecksumKind, Version, VrrpRepr};
use xvrrp_wire::EthernetAddress;

use crate::bench_common::Background;
use crate::netns;

/// Busy loops (`sh -c 'while :; do :; done'`), one pinned to each core
/// with `taskset`; killed by PID when dropped.
#[derive(Debug)]
pub struct Hogs(Vec<Child>);

impl Hogs {
    /// Starts one busy loop per online core.
    ///
    /// # Errors
    /// `taskset` or `sh` missing, or a spawn failing (the loops already
    /// started are stopped).
    pub fn start() -> Result<Hogs> {
        netns::require(&["taskset", "sh"])?;
        let cores = thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get);
        let mut hogs = Hogs(Vec::new());
        for core in 0..cores {
            // taskset execs sh, so the child's PID is the loop's.
            let child = Command::new("taskset")
                .args(["-c", &core.to_string(), "sh", "-c", "while :; do :; done"])
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .context("start a busy loop")?;
            hogs.0.push(child);
        }
        Ok(hogs)
    }

    /// The busy loops' PIDs.
    pub fn pids(&self) -> Vec<u32> {
        self.0.iter().map(Child::id).collect()
    }
}

impl Drop for Hogs {
    fn drop(&mut self) {
        for child in &mut self.0 {
            if let Err(e) = netns::kill_child(child) {
                eprintln!("warning: stopping busy loop {}: {e:#}", child.id());
            }
        }
    }
}

/// The client's address, the source of the flood.
const CLIENT: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 100);
/// A locally administered source MAC: never a virtual MAC, so the switch
/// does not learn a virtual router's MAC on the client's port.
const FLOOD_MAC: EthernetAddress = EthernetAddress([0x02, 0, 0, 0, 0, 0x64]);
/// Frames per sendmmsg(2).
const BATCH: usize = 64;

/// The flood's frames, cycled: for every VRRPv3 advert with priority 250
/// (taken for valid, it would make the lab's master step down) for the
/// lab's VRID 1, one defect that must get it dropped (a bad checksum, TTL
/// 64, 6 bytes of VRRP, version 4); and valid adverts of foreign virtual
/// routers (VRIDs 10 to 249), which no appliance of the lab runs.
///
/// # Errors
/// A frame builder refusing its buffer (cannot happen: 128 bytes).
pub fn flood_frames() -> Result<Vec<Vec<u8>>> {
    let advert = |vrid: u8| -> Result<Vec<u8>> {
        let vips = [Ipv4Addr::new(192, 0, 2, 1)];
        let repr = VrrpRepr {
            version: Version::V3,
            vrid,
            priority: 250,
            max_advert_int: 1,
            addresses: AddrList::V4(&vips),
        };
        let mut buf = vec![0u8; 128];
        let len = frames::advert_v4(
            &mut buf,
            FLOOD_MAC,
            CLIENT,
            frames::VRRP_V4_MCAST,
            frames::VRRP_V4_MCAST_MAC,
            &repr,
            ChecksumKind::PseudoHeader,
        )
        .map_err(|e| anyhow!("build a flood advert: {e:?}"))?;
        buf.truncate(len);
        Ok(buf)
    };
    // Offsets in the frame: Ethernet 14, IPv4 20, then VRRP.
    const IP: usize = 14;
    const VRRP: usize = 34;
    let ip_edit = |frame: &mut Vec<u8>, edit: &dyn Fn(&mut Ipv4Packet<&mut [u8]>)| {
        if let Some(ip) = frame.get_mut(IP..) {
            let mut packet = Ipv4Packet::new_unchecked(ip);
            edit(&mut packet);
            packet.fill_checksum();
        }
    };
    let mut out = Vec::new();
    for foreign in 10u8..250 {
        let mut bad_sum = advert(1)?;
        if let Some(b) = bad_sum.get_mut(VRRP + 7) {
            *b ^= 0x01;
        }
        let mut ttl = advert(1)?;
        ip_edit(&mut ttl, &|p| p.set_ttl(64));
        let mut short = advert(1)?;
        ip_edit(&mut short, &|p| p.set_total_len(20 + 6));
        let mut v4 = advert(1)?;
        if let Some(b) = v4.get_mut(VRRP) {
            *b = 0x41;
        }
        // Cycle the defects so every batch carries each of them.
        match foreign % 4 {
            0 => out.push(bad_sum),
            1 => out.push(ttl),
            2 => out.push(short),
            _ => out.push(v4),
        }
        out.push(advert(foreign)?);
    }
    Ok(out)
}

/// What a flood sent.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct FloodReport {
    /// Frames the socket took.
    pub frames: u64,
    /// How long the flood ran.
    pub elapsed: Duration,
}

impl FloodReport {
    /// Frames per second.
    pub fn rate(&self) -> f64 {
        let secs = self.elapsed.as_secs_f64();
        if secs > 0.0 {
            crate::bench_common::f(self.frames) / secs
        } else {
            0.0
        }
    }
}

/// A thread in the client's namespace sending [`flood_frames`] out of
/// `eth0` as fast as the socket takes them, until stopped or dropped.
#[derive(Debug)]
pub struct Flood(Background<FloodReport>);

impl Flood {
    /// Starts the flood from `eth0` of namespace `ns`; returns once its
    /// socket is open.
    ///
    /// # Errors
    /// The namespace or interface is missing, or the socket cannot be
    /// opened (not root).
    pub fn start(ns: &str) -> Result<Flood> {
        let pattern = flood_frames()?;
        let ns = ns.to_owned();
        Background::start(
            "vrrp-flood",
            move || netns::enter(&ns).and_then(|()| RawSender::open("eth0")),
            move |sender, stop| {
                let mut report = FloodReport::default();
                let start = Instant::now();
                let mut at = 0usize;
                while !stop.load(Ordering::Relaxed) {
                    let end = (at + BATCH).min(pattern.len());
                    let batch = pattern.get(at..end).unwrap_or_default();
                    report.frames += u64::try_from(sender.send_batch(batch)?)?;
                    at = if end >= pattern.len() { 0 } else { end };
                }
                report.elapsed = start.elapsed();
                Ok(report)
            },
        )
        .map(Flood)
    }

    /// Stops the flood and returns what it sent.
    ///
    /// # Errors
    /// A send failed for another reason than a full socket buffer.
    pub fn stop(self) -> Result<FloodReport> {
        self.0.finish()
    }
}

/// An AF_PACKET socket bound to one interface, sending whole batches of
/// frames to the VRRP group MAC per system call.
pub(crate) struct RawSender {
    fd: OwnedFd,
    addr: libc::sockaddr_ll,
}

impl RawSender {
    /// Opens the socket on `ifname`; call it on a thread inside the
    /// interface's namespace.
    pub(crate) fn open(ifname: &str) -> Result<RawSender> {
        let name = std::ffi::CString::new(ifname)?;
        // SAFETY: plain socket(2) call; the result is checked before use.
        let fd = unsafe { libc::socket(libc::AF_PACKET, libc::SOCK_RAW, 0) };
        if fd < 0 {
            bail!("AF_PACKET socket: {}", std::io::Error::last_os_error());
        }
        // SAFETY: `fd` is a fresh descriptor owned by nothing else.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        // SAFETY: `name` is a valid NUL-terminated string.
        let ifindex = unsafe { libc::if_nametoindex(name.as_ptr()) };
        if ifindex == 0 {
            bail!("no interface {ifname}");
        }
        // Bypassing the qdisc only makes sending cheaper; failing to is harmless.
        let one: libc::c_int = 1;
        let len = libc::socklen_t::try_from(std::mem::size_of::<libc::c_int>())?;
        // SAFETY: `one` is a valid c_int for the length given.
        let _ = unsafe {
            libc::setsockopt(
                fd.as_raw_fd(),
                libc::SOL_PACKET,
                libc::PACKET_QDISC_BYPASS,
                std::ptr::addr_of!(one).cast(),
                len,
            )
        };
        // SAFETY: sockaddr_ll is plain data; all-zero is a valid value.
        let mut addr: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
        addr.sll_family = u16::try_from(libc::AF_PACKET)?;
        addr.sll_ifindex = i32::try_from(ifindex)?;
        addr.sll_halen = 6;
        addr.sll_addr[..6].copy_from_slice(&frames::VRRP_V4_MCAST_MAC.octets());
        Ok(RawSender { fd, addr })
    }

    /// Sends `frames` with one sendmmsg(2); returns how many left. A full
    /// socket buffer is back-pressure (0 sent), not an error.
    pub(crate) fn send_batch(&self, frames: &[Vec<u8>]) -> Result<usize> {
        let mut iovs: Vec<libc::iovec> = frames
            .iter()
            .map(|f| libc::iovec {
                iov_base: f.as_ptr().cast_mut().cast(),
                iov_len: f.len(),
            })
            .collect();
        let addr_len = u32::try_from(std::mem::size_of::<libc::sockaddr_ll>())?;
        let mut msgs: Vec<libc::mmsghdr> = iovs
            .iter_mut()
            .map(|iov| {
                // SAFETY: msghdr is plain data; all-zero is a valid value.
                let mut hdr: libc::msghdr = unsafe { std::mem::zeroed() };
                hdr.msg_name = std::ptr::addr_of!(self.addr).cast_mut().cast();
                hdr.msg_namelen = addr_len;
                hdr.msg_iov = iov;
                hdr.msg_iovlen = 1;
                libc::mmsghdr {
                    msg_hdr: hdr,
                    msg_len: 0,
                }
            })
            .collect();
        // SAFETY: every header points at `self.addr` and at one iovec of
        // `iovs`, whose buffers are the frames; all outlive the call, and
        // sendmmsg only reads them.
        let n = unsafe {
            libc::sendmmsg(
                self.fd.as_raw_fd(),
                msgs.as_mut_ptr(),
                u32::try_from(msgs.len())?,
                0,
            )
        };
        if n < 0 {
            let err = std::io::Error::last_os_error();
            if matches!(err.raw_os_error(), Some(libc::ENOBUFS | libc::EAGAIN)) {
                return Ok(0);
            }
            bail!("sendmmsg: {err}");
        }
        Ok(usize::try_from(n)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use xvrrp_wire::vrrp::VrrpPacket;

    #[test]
    fn flood_mixes_defects_and_foreign_routers() {
        let frames = flood_frames().unwrap();
        assert_eq!(frames.len(), 2 * 240);
        let mut valid_foreign = 0;
        let mut rejected_vrid1 = 0;
        for f in &frames {
            assert_eq!(&f[6..12], &FLOOD_MAC.0, "never a virtual MAC as source");
            let ip = Ipv4Packet::new_checked(&f[14..]).unwrap();
            assert!(ip.verify_checksum());
            let src = std::net::IpAddr::V4(ip.src_addr());
            let dst = std::net::IpAddr::V4(ip.dst_addr());
            let vrrp_len = usize::from(ip.total_len()) - 20;
            let vrrp = VrrpPacket::new_unchecked(&f[34..34 + vrrp_len]);
            match VrrpRepr::parse(&vrrp, src, dst) {
                Ok((r, _)) if ip.ttl() == 255 => {
                    assert_ne!(r.vrid, 1, "a valid advert for the lab's VRID");
                    valid_foreign += 1;
                }
                _ => rejected_vrid1 += 1,
            }
        }
        assert_eq!((valid_foreign, rejected_vrid1), (240, 240));
    }
}
