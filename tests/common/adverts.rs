//! A's adverts as the wire sees them: captured on A's port of the switch
//! with kernel receive timestamps, so the gaps measured are those on the
//! wire, not those of a capture thread starved by the load.

use std::net::Ipv4Addr;
use std::os::fd::OwnedFd;
use std::time::Duration;

use anyhow::Result;
use xvrrp_lab::bench_control::{capture_socket, recv_advert, Family};

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
    match recv_advert(fd, src)? {
        ((Family::V4, v), ns) if v == vrid => Some(Duration::from_nanos(ns)),
        _ => None,
    }
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
