//! The lab wire's own cost of a master's adverts, for `bench control`.
//!
//! On veth, a sender's system call runs the switch's bridge and every
//! receiver's delivery (the backup's XDP program and socket copy) in the
//! sender's context, so an appliance's control thread is charged for the
//! lab's switching. This is the same adverts, from A's addresses and
//! virtual MACs at the same cadence and phases, sent by a bare loop
//! (SCHED_FIFO like the control thread, one sendmmsg(2) per phase) in A's
//! place: what putting those frames on this wire costs at the least. The
//! bench prints it beside A's control thread.

use std::net::{Ipv4Addr, Ipv6Addr};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Result};
use xvrrp_wire::vrrp::{AddrList, ChecksumKind, Version, VrrpRepr};
use xvrrp_wire::EthernetAddress;
use xvrrp_wire::{frames, nd};

use crate::bench_common::{set_fifo, Background};
use crate::load::RawSender;
use crate::netns;

/// The control thread's real-time priority (`src/daemon/os.rs`).
const CONTROL_RT_PRIORITY: i32 = 10;
/// Phases of half an interval the adverts are spread over, by router
/// index, as the daemon does (`PHASE_SLOTS` in `control/src/vrrp/router.rs`).
const PHASE_SLOTS: u32 = 32;

/// What the bare sender used while measured.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct BareCost {
    /// Its thread's CPU time (user + system).
    pub(crate) cpu: Duration,
    /// The system part.
    pub(crate) kernel: Duration,
    /// The window measured.
    pub(crate) wall: Duration,
    /// Adverts sent in it.
    pub(crate) sent: u64,
}

/// The advert of one router as the lab's A sends it.
pub(crate) struct Advertiser {
    /// A's primary IPv4 address on the port.
    pub(crate) v4_source: Ipv4Addr,
    /// A's link-local address on the port.
    pub(crate) v6_source: Ipv6Addr,
    pub(crate) priority: u8,
    pub(crate) interval: Duration,
}

impl Advertiser {
    /// The frames of routers `(vrid, virtual address)` in the daemon's
    /// order, grouped by phase slot.
    fn frames(&self, routers: &[(u8, std::net::IpAddr)]) -> Result<Vec<Vec<Vec<u8>>>> {
        let centis = u16::try_from(self.interval.as_millis() / 10)?;
        let mut slots = vec![Vec::new(); PHASE_SLOTS as usize];
        for (index, &(vrid, vip)) in routers.iter().enumerate() {
            let mut buf = vec![0u8; 128];
            let len = match vip {
                std::net::IpAddr::V4(a) => {
                    let vips = [a];
                    // The daemon's default checksum.
                    frames::advert_v4(
                        &mut buf,
                        EthernetAddress([0, 0, 0x5e, 0, 1, vrid]),
                        self.v4_source,
                        frames::VRRP_V4_MCAST,
                        frames::VRRP_V4_MCAST_MAC,
                        &self.repr(vrid, centis, AddrList::V4(&vips)),
                        ChecksumKind::Rfc9568,
                    )
                }
                std::net::IpAddr::V6(a) => {
                    // The link-local address derived from the virtual MAC
                    // first, as the daemon advertises it.
                    let vmac = EthernetAddress([0, 0, 0x5e, 0, 2, vrid]);
                    let vips = [nd::link_local_from_mac(vmac), a];
                    frames::advert_v6(
                        &mut buf,
                        vmac,
                        self.v6_source,
                        frames::VRRP_V6_MCAST,
                        frames::VRRP_V6_MCAST_MAC,
                        &self.repr(vrid, centis, AddrList::V6(&vips)),
                    )
                }
            }
            .map_err(|e| anyhow!("build an advert: {e:?}"))?;
            buf.truncate(len);
            let slot = u32::try_from(index)? % PHASE_SLOTS;
            if let Some(s) = slots.get_mut(slot as usize) {
                s.push(buf);
            }
        }
        Ok(slots)
    }

    fn repr<'a>(&self, vrid: u8, centis: u16, addresses: AddrList<'a>) -> VrrpRepr<'a> {
        VrrpRepr {
            version: Version::V3,
            vrid,
            priority: self.priority,
            max_advert_int: centis,
            addresses,
        }
    }
}

/// A thread in A's namespace sending the adverts until stopped.
pub(crate) struct BareSender {
    measure: Arc<AtomicBool>,
    thread: Background<BareCost>,
}

impl BareSender {
    /// Starts sending the adverts of `routers` on `ifname` of `ns`.
    pub(crate) fn start(
        ns: &str,
        ifname: &str,
        advertiser: &Advertiser,
        routers: &[(u8, std::net::IpAddr)],
    ) -> Result<BareSender> {
        let slots = advertiser.frames(routers)?;
        let interval = advertiser.interval;
        let measure = Arc::new(AtomicBool::new(false));
        let (ns, ifname) = (ns.to_owned(), ifname.to_owned());
        let measure_flag = Arc::clone(&measure);
        let thread = Background::start(
            "bare-sender",
            move || {
                netns::enter(&ns)
                    .and_then(|()| set_fifo(CONTROL_RT_PRIORITY))
                    .and_then(|()| RawSender::open(&ifname))
            },
            move |sender, stop| send_until(&sender, &slots, interval, &measure_flag, stop),
        )?;
        Ok(BareSender { measure, thread })
    }

    /// Starts the measured window.
    pub(crate) fn measure_from_now(&self) {
        self.measure.store(true, Ordering::Relaxed);
    }

    /// Stops sending; what the measured window cost.
    pub(crate) fn finish(self) -> Result<BareCost> {
        self.thread.finish()
    }
}

/// Sends each slot's frames at its phase of every interval (slot k leaves
/// k/32 of half an interval before the tick, as the daemon's phases do)
/// until `stop`; measures from when `measure` is first seen set.
fn send_until(
    sender: &RawSender,
    slots: &[Vec<Vec<u8>>],
    interval: Duration,
    measure: &AtomicBool,
    stop: &AtomicBool,
) -> Result<BareCost> {
    let slot_step = interval / 2 / PHASE_SLOTS;
    let start = Instant::now() + interval;
    let mut window: Option<(Instant, Duration, Duration, u64)> = None;
    let mut sent = 0u64;
    let mut tick = 0u32;
    while !stop.load(Ordering::Relaxed) {
        let base = start + interval * tick;
        // Latest phase first: slot k leaves k steps before the tick.
        for (k, frames) in slots.iter().enumerate().rev() {
            if frames.is_empty() {
                continue;
            }
            // Rounded up to the millisecond, as the daemon's poll(2)
            // timeouts are: phases due within one millisecond share a
            // wake-up.
            let due = base - slot_step * u32::try_from(k)?;
            let ms = due.saturating_duration_since(start).as_millis();
            sleep_until(start + Duration::from_millis(u64::try_from(ms)? + 1));
            let mut off = 0;
            while off < frames.len() {
                let batch = frames.get(off..).unwrap_or(&[]);
                let n = sender.send_batch(batch)?;
                if n == 0 {
                    break;
                }
                off += n;
            }
            sent += u64::try_from(off)?;
        }
        tick += 1;
        if window.is_none() && measure.load(Ordering::Relaxed) {
            let (user, system) = thread_cpu()?;
            window = Some((Instant::now(), user, system, sent));
        }
    }
    let Some((from, user0, system0, sent0)) = window else {
        return Ok(BareCost::default());
    };
    let (user, system) = thread_cpu()?;
    Ok(BareCost {
        cpu: (user + system).saturating_sub(user0 + system0),
        kernel: system.saturating_sub(system0),
        wall: from.elapsed(),
        sent: sent - sent0,
    })
}

fn sleep_until(due: Instant) {
    let now = Instant::now();
    if due > now {
        thread::sleep(due - now);
    }
}

/// The calling thread's user and system time (getrusage RUSAGE_THREAD).
fn thread_cpu() -> Result<(Duration, Duration)> {
    // SAFETY: rusage is plain data; all-zero is a valid value.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: `usage` is a writable rusage.
    let rc = unsafe { libc::getrusage(libc::RUSAGE_THREAD, &mut usage) };
    if rc != 0 {
        bail!("getrusage: {}", std::io::Error::last_os_error());
    }
    let tv = |t: libc::timeval| {
        Duration::from_secs(u64::try_from(t.tv_sec).unwrap_or(0))
            + Duration::from_micros(u64::try_from(t.tv_usec).unwrap_or(0))
    };
    Ok((tv(usage.ru_utime), tv(usage.ru_stime)))
}
