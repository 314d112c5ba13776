//! What the daemon keeps of each port's XDP filter while it runs: the
//! maps it writes (which virtual routers this appliance is master of, the
//! source of each one's current master) and the per-CPU counters it reads.
//!
//! The program (`dataplane/bpf/xvrrp.bpf.c`) drops, before any copy to the
//! AF_XDP rings (docs/conformance.md L01, L05, L08):
//! - VRRP that fails the advert validation ladder, up to the VRID and
//!   version checks, each under the reason the worker would have counted;
//! - valid-looking adverts beyond [`ADVERT_RATE`] per second (bursts of
//!   [`ADVERT_BURST`]) per port and CPU, except those from the current
//!   master of their virtual router, which have an allowance of their own
//!   ([`MASTER_RATE`], [`MASTER_BURST`]): a flood of plausible adverts
//!   cannot fill the ring that carries the forwarded traffic, nor push the
//!   master's adverts out;
//! - frames to a virtual MAC or address, and ARP/NS for a virtual address,
//!   while this appliance is not master of that router (`not-master`).
//!
//! It also counts `vmac-conflict` per virtual router: frames that another
//! station sent from the router's virtual MAC. While we are master every
//! one is a conflict; while we are backup only broken VRRP is (the master
//! legitimately sends adverts, gratuitous ARP and forwarded frames from
//! that MAC).
//!
//! The maps are taken out of the program's object at start, so that
//! writing them needs no `&mut` access to the filters; one mutex per port
//! serialises the control thread's writes with `stats` reads. No packet
//! path takes it.

use std::{
    net::IpAddr,
    sync::{Arc, Mutex, MutexGuard},
};

use arc_swap::ArcSwap;

use aya::maps::{Array, Map, MapData, PerCpuArray};
use xvrrp_control::{DropReason, RouterId};

use crate::{error::DataplaneError, process::InstanceView};

/// Router ids the program's per-router maps hold (`MAX_ROUTERS` in C).
pub const MAX_ROUTERS: usize = 1024;
/// (family, VRID) slots: IPv4 VRIDs first, then IPv6 (`VRID_SLOTS`).
const SLOT_V6: u32 = 256;
/// Valid-looking adverts per second per port and CPU, from anyone but the
/// current master of their virtual router (`ADVERT_RATE` in C).
pub const ADVERT_RATE: u32 = 4000;
/// Burst of [`ADVERT_RATE`]: every router of a port electing at once
/// (255 VRIDs × 2 families) fits in it.
pub const ADVERT_BURST: u32 = 512;
/// Adverts per second from a virtual router's current master (a master
/// sends at most one per 10 ms, plus one answer per interval).
pub const MASTER_RATE: u32 = 1000;
/// Burst of [`MASTER_RATE`].
pub const MASTER_BURST: u32 = 100;

/// The program's counters, in the order of `enum xdp_counter` in
/// `xvrrp.bpf.c`. The first ones are drops, named as [`DropReason`]s.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(usize)]
pub enum XdpCounter {
    /// VRRP in an IPv4/IPv6 header whose lengths do not fit the frame.
    Malformed = 0,
    /// VRRP in an IPv4 header with another version or a bad checksum.
    IpHeaderError,
    /// A VRRP fragment.
    Fragment,
    /// VRRP from a multicast, broadcast, unspecified or loopback source.
    SourceError,
    /// VRRP to another group, or to a broadcast or unspecified address.
    DestinationError,
    /// VRRP with a TTL / hop limit other than 255.
    IpTtlError,
    /// VRRP shorter than its header or its address count says.
    PacketLengthError,
    /// An unknown VRRP version, or one the VRID's router does not speak.
    VersionError,
    /// A VRRP type other than advertisement.
    InvalidType,
    /// A VRRP address count of 0.
    AddressCountError,
    /// A VRRP interval of 0.
    IntervalError,
    /// VRRPv2 with authentication.
    AuthType,
    /// A VRRP checksum that matches no accepted form.
    ChecksumError,
    /// VRRP for a (family, VRID) this port does not serve.
    VridError,
    /// A valid-looking advert beyond the port's rate.
    AdvertRateLimited,
    /// Traffic for a virtual router this appliance is not master of.
    NotMaster,
    /// Not a drop: adverts let through as their router's current master's.
    MasterAdverts,
    /// Not a drop: adverts handed to the worker, the master's included.
    AdvertsPassed,
}

impl XdpCounter {
    /// Every counter, in the program's order.
    pub const ALL: [XdpCounter; 18] = [
        XdpCounter::Malformed,
        XdpCounter::IpHeaderError,
        XdpCounter::Fragment,
        XdpCounter::SourceError,
        XdpCounter::DestinationError,
        XdpCounter::IpTtlError,
        XdpCounter::PacketLengthError,
        XdpCounter::VersionError,
        XdpCounter::InvalidType,
        XdpCounter::AddressCountError,
        XdpCounter::IntervalError,
        XdpCounter::AuthType,
        XdpCounter::ChecksumError,
        XdpCounter::VridError,
        XdpCounter::AdvertRateLimited,
        XdpCounter::NotMaster,
        XdpCounter::MasterAdverts,
        XdpCounter::AdvertsPassed,
    ];

    /// Number of counters.
    pub const COUNT: usize = Self::ALL.len();

    /// The drop reason this counter counts; `None` for the others.
    pub fn drop_reason(self) -> Option<DropReason> {
        Some(match self {
            XdpCounter::Malformed => DropReason::Malformed,
            XdpCounter::IpHeaderError => DropReason::IpHeaderError,
            XdpCounter::Fragment => DropReason::Fragment,
            XdpCounter::SourceError => DropReason::SourceError,
            XdpCounter::DestinationError => DropReason::DestinationError,
            XdpCounter::IpTtlError => DropReason::IpTtlError,
            XdpCounter::PacketLengthError => DropReason::PacketLengthError,
            XdpCounter::VersionError => DropReason::VersionError,
            XdpCounter::InvalidType => DropReason::InvalidType,
            XdpCounter::AddressCountError => DropReason::AddressCountError,
            XdpCounter::IntervalError => DropReason::IntervalError,
            XdpCounter::AuthType => DropReason::AuthType,
            XdpCounter::ChecksumError => DropReason::ChecksumError,
            XdpCounter::VridError => DropReason::VridError,
            XdpCounter::AdvertRateLimited => DropReason::AdvertRateLimited,
            XdpCounter::NotMaster => DropReason::NotMaster,
            XdpCounter::MasterAdverts | XdpCounter::AdvertsPassed => return None,
        })
    }
}

/// The counters of one port's program, summed over CPUs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct XdpPortStats {
    /// Frames dropped, by reason (indexed like [`DropReason::ALL`]; only
    /// the reasons of [`XdpCounter::drop_reason`] move).
    pub drops: [u64; DropReason::COUNT],
    /// Adverts let through as their router's current master's.
    pub master_adverts: u64,
    /// Adverts handed to the worker (the master's included).
    pub adverts_passed: u64,
    /// Frames from one of the port's virtual MACs that another station
    /// sent (all routers of the port).
    pub vmac_conflicts: u64,
}

impl Default for XdpPortStats {
    fn default() -> Self {
        Self {
            drops: [0; DropReason::COUNT],
            master_adverts: 0,
            adverts_passed: 0,
            vmac_conflicts: 0,
        }
    }
}

/// The (family, VRID) slot of the program's per-VRID maps.
pub(crate) fn vrid_slot(v6: bool, vrid: u8) -> u32 {
    u32::from(vrid) + if v6 { SLOT_V6 } else { 0 }
}

/// `id` as an index of the program's per-router maps.
///
/// # Errors
/// An id beyond [`MAX_ROUTERS`].
pub(crate) fn router_index(id: RouterId) -> Result<u32, DataplaneError> {
    u32::try_from(id.index())
        .ok()
        .filter(|i| (*i as usize) < MAX_ROUTERS)
        .ok_or_else(|| {
            DataplaneError::Unsupported(format!(
                "at most {MAX_ROUTERS} virtual routers are supported"
            ))
        })
}

/// The value of a `peer_masters` entry: the address (IPv4 in the first 4
/// bytes), then 1 for "known" and padding.
fn peer_entry(addr: IpAddr) -> [u8; 20] {
    let mut v = [0u8; 20];
    match addr {
        IpAddr::V4(a) => v[..4].copy_from_slice(&a.octets()),
        IpAddr::V6(a) => v[..16].copy_from_slice(&a.octets()),
    }
    v[16] = 1;
    v
}

/// The run-time maps of one port's program.
pub(crate) struct PortMaps {
    ifname: String,
    masters: Array<MapData, u32>,
    peer_masters: Array<MapData, [u8; 20]>,
    counters: PerCpuArray<MapData, [u64; XdpCounter::COUNT]>,
    conflicts: PerCpuArray<MapData, u64>,
}

impl PortMaps {
    /// Wraps the maps taken from `ifname`'s program.
    ///
    /// # Errors
    /// A map of another type or value size than expected.
    pub(crate) fn new(
        ifname: &str,
        masters: Map,
        peer_masters: Map,
        counters: Map,
        conflicts: Map,
    ) -> Result<Self, DataplaneError> {
        let err = |map: &'static str| {
            move |e: aya::maps::MapError| DataplaneError::Map {
                ifname: ifname.to_string(),
                map,
                source: Box::new(e),
            }
        };
        Ok(Self {
            ifname: ifname.to_string(),
            masters: Array::try_from(masters).map_err(err("masters"))?,
            peer_masters: Array::try_from(peer_masters).map_err(err("peer_masters"))?,
            counters: PerCpuArray::try_from(counters).map_err(err("counters"))?,
            conflicts: PerCpuArray::try_from(conflicts).map_err(err("conflicts"))?,
        })
    }

    /// The port's counters, summed over CPUs.
    fn counters(&self) -> Result<[u64; XdpCounter::COUNT], aya::maps::MapError> {
        let per_cpu = self.counters.get(&0, 0)?;
        let mut sum = [0u64; XdpCounter::COUNT];
        for cpu in per_cpu.iter() {
            for (s, n) in sum.iter_mut().zip(cpu) {
                *s = s.saturating_add(*n);
            }
        }
        Ok(sum)
    }

    /// Conflicts counted for router index `router`, summed over CPUs.
    fn conflicts(&self, router: u32) -> Result<u64, aya::maps::MapError> {
        Ok(self
            .conflicts
            .get(&router, 0)?
            .iter()
            .fold(0u64, |a, n| a.saturating_add(*n)))
    }
}

/// Where a router lives in the programs' maps.
#[derive(Debug, Clone, Copy)]
struct RouterSlot {
    port: usize,
    index: u32,
    vrid_slot: u32,
}

/// The run-time state of every port's program.
pub(crate) struct XdpControl {
    ports: Vec<Mutex<PortMaps>>,
    /// By [`RouterId`] (replaced on a reload while the metrics thread may
    /// read it).
    routers: ArcSwap<Vec<Option<RouterSlot>>>,
    /// The peer master last written per router (by [`RouterId`]), so that
    /// an unchanged one costs no system call.
    peers: Mutex<Vec<Option<IpAddr>>>,
}

impl XdpControl {
    /// The state of `ports` (by port index) serving `routers`.
    pub(crate) fn new(ports: Vec<PortMaps>, routers: &[InstanceView]) -> Self {
        let slots = Self::slots(routers);
        let n = slots.len();
        Self {
            ports: ports.into_iter().map(Mutex::new).collect(),
            routers: ArcSwap::from_pointee(slots),
            peers: Mutex::new(vec![None; n]),
        }
    }

    /// The routers are now `routers` (a reload): a router whose id was in
    /// use keeps its recorded peer master, a new id starts without one.
    pub(crate) fn set_routers(&self, routers: &[InstanceView]) {
        let slots = Self::slots(routers);
        let mut peers = self
            .peers
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let kept: Vec<Option<IpAddr>> = (0..slots.len())
            .map(|i| {
                slots
                    .get(i)
                    .copied()
                    .flatten()
                    .and_then(|_| peers.get(i).copied().flatten())
            })
            .collect();
        *peers = kept;
        self.routers.store(Arc::new(slots));
    }

    fn slots(routers: &[InstanceView]) -> Vec<Option<RouterSlot>> {
        let mut slots = Vec::new();
        for inst in routers {
            let Ok(index) = router_index(inst.id) else {
                continue;
            };
            let i = inst.id.index();
            if slots.len() <= i {
                slots.resize(i + 1, None);
            }
            if let Some(s) = slots.get_mut(i) {
                *s = Some(RouterSlot {
                    port: inst.port,
                    index,
                    vrid_slot: vrid_slot(!inst.vips6.is_empty(), inst.vrid),
                });
            }
        }
        slots
    }

    fn port(&self, port: usize) -> Option<MutexGuard<'_, PortMaps>> {
        // The control thread is the only writer and panics abort: a
        // poisoned lock cannot hold half-written state.
        self.ports
            .get(port)
            .map(|m| m.lock().unwrap_or_else(std::sync::PoisonError::into_inner))
    }

    /// Tells router `id`'s program whether this appliance is master of it.
    pub(crate) fn set_master(&self, id: RouterId, master: bool) {
        let Some(slot) = self.routers.load().get(id.index()).copied().flatten() else {
            return;
        };
        let Some(mut maps) = self.port(slot.port) else {
            return;
        };
        if let Err(e) = maps.masters.set(slot.index, u32::from(master), 0) {
            tracing::error!(
                port = %maps.ifname,
                router = %id,
                master,
                error = %e,
                "cannot update the XDP filter's ownership map: it goes on treating the router's traffic as before"
            );
        }
    }

    /// Records the source address of each router's current master as the
    /// control thread knows it: `Some(addr)` for a peer, `None` when no
    /// peer is master (we are, or none is known yet). Only changes reach
    /// the kernel. A peer that stops being master keeps its allowance until
    /// another peer replaces it: it is the likeliest router to come back.
    pub(crate) fn set_peer_masters(
        &self,
        masters: impl IntoIterator<Item = (RouterId, Option<IpAddr>)>,
    ) {
        let mut last = self
            .peers
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let routers = self.routers.load();
        for (id, addr) in masters {
            let (Some(addr), Some(seen)) = (addr, last.get_mut(id.index())) else {
                continue;
            };
            if *seen == Some(addr) {
                continue;
            }
            let Some(slot) = routers.get(id.index()).copied().flatten() else {
                continue;
            };
            let Some(mut maps) = self.port(slot.port) else {
                continue;
            };
            match maps.peer_masters.set(slot.vrid_slot, peer_entry(addr), 0) {
                Ok(()) => *seen = Some(addr),
                Err(e) => tracing::warn!(
                    port = %maps.ifname,
                    router = %id,
                    %addr,
                    error = %e,
                    "cannot record the master's address in the XDP filter: its adverts share the rate limit"
                ),
            }
        }
    }

    /// Every port's counters, by port index; a port whose maps cannot be
    /// read shows zeros (and a warning in the log).
    pub(crate) fn port_stats(&self) -> Vec<XdpPortStats> {
        (0..self.ports.len())
            .map(|p| {
                let Some(maps) = self.port(p) else {
                    return XdpPortStats::default();
                };
                let mut st = XdpPortStats::default();
                match maps.counters() {
                    Ok(c) => {
                        for (counter, n) in XdpCounter::ALL.iter().zip(c) {
                            if let Some(r) = counter.drop_reason() {
                                if let Some(d) = st.drops.get_mut(r as usize) {
                                    *d = n;
                                }
                            } else if *counter == XdpCounter::MasterAdverts {
                                st.master_adverts = n;
                            } else if *counter == XdpCounter::AdvertsPassed {
                                st.adverts_passed = n;
                            }
                        }
                    }
                    Err(e) => {
                        tracing::warn!(port = %maps.ifname, error = %e, "cannot read the XDP filter's counters")
                    }
                }
                st.vmac_conflicts = self
                    .routers
                    .load()
                    .iter()
                    .flatten()
                    .filter(|s| s.port == p)
                    .filter_map(|s| maps.conflicts(s.index).ok())
                    .sum();
                st
            })
            .collect()
    }

    /// The `vmac-conflict` count of every router, by [`RouterId`].
    pub(crate) fn vmac_conflicts(&self) -> Vec<u64> {
        self.routers
            .load()
            .iter()
            .map(|slot| {
                slot.and_then(|s| self.port(s.port).and_then(|m| m.conflicts(s.index).ok()))
                    .unwrap_or(0)
            })
            .collect()
    }
}
