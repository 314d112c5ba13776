//! The XDP filter program: loading, attaching to a port, and the maps that
//! tell it which virtual MACs, addresses and VRIDs are the appliance's
//! business (the maps it needs while running are in [`crate::xdp_maps`]).
//!
//! One copy of the program is loaded per port so that each port has its own
//! XSKMAP (indexed by receive queue) and its own address maps.

use std::{os::fd::AsRawFd, thread, time::Duration, time::Instant};

use aya::{
    maps::{Array, HashMap, MapData, XskMap},
    programs::{Xdp, XdpMode},
    Ebpf,
};

use crate::{
    error::DataplaneError,
    process::InstanceView,
    xdp_maps::{self, PortMaps},
};

/// Slots of the program's socket map, indexed by receive queue: queues
/// 0 to 63 can be served.
pub const MAX_QUEUES: u32 = 64;

static PROGRAM: &[u8] = aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/xvrrp.bpf.o"));

/// How to attach the program.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AttachMode {
    /// Native (driver) mode, falling back to generic.
    Auto,
    /// Native (driver) mode only.
    Native,
    /// Generic (SKB) mode.
    Generic,
}

/// The filter attached to one port. Dropping it detaches the program.
pub struct PortFilter {
    ifname: String,
    ebpf: Ebpf,
    mode: &'static str,
}

impl std::fmt::Debug for PortFilter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PortFilter")
            .field("ifname", &self.ifname)
            .field("mode", &self.mode)
            .finish()
    }
}

fn boxed<E: std::error::Error + Send + Sync + 'static>(
    e: E,
) -> Box<dyn std::error::Error + Send + Sync> {
    Box::new(e)
}

fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut text = e.to_string();
    let mut cur = e.source();
    while let Some(inner) = cur {
        text.push_str(": ");
        text.push_str(&inner.to_string());
        cur = inner.source();
    }
    text.to_lowercase()
}

impl PortFilter {
    /// Loads the program for `ifname` into the kernel (the verifier runs
    /// here), attached nowhere yet: its maps are filled before it sees a
    /// frame, so that no advert is taken for one of a VRID not served.
    ///
    /// # Errors
    /// Load failures, with the interface named.
    pub fn load(ifname: &str) -> Result<Self, DataplaneError> {
        let ebpf = Ebpf::load(PROGRAM).map_err(|e| DataplaneError::Load {
            ifname: ifname.to_string(),
            source: boxed(e),
        })?;
        let mut filter = Self {
            ifname: ifname.to_string(),
            ebpf,
            mode: "detached",
        };
        filter.program()?.load().map_err(|e| DataplaneError::Load {
            ifname: ifname.to_string(),
            source: boxed(e),
        })?;
        Ok(filter)
    }

    /// Attaches the loaded program to its interface.
    ///
    /// A link left behind by a process that just died can linger for a few
    /// tens of milliseconds, so EBUSY is retried for up to two seconds.
    ///
    /// # Errors
    /// Attach failures, with the interface named.
    pub fn attach(&mut self, mode: AttachMode) -> Result<(), DataplaneError> {
        let ifname = self.ifname.clone();
        let program = self.program()?;
        let tries: &[(XdpMode, &'static str)] = match mode {
            AttachMode::Auto => &[(XdpMode::Driver, "native"), (XdpMode::Skb, "generic")],
            AttachMode::Native => &[(XdpMode::Driver, "native")],
            AttachMode::Generic => &[(XdpMode::Skb, "generic")],
        };
        let mut last_err = None;
        let mut used = "";
        'modes: for &(xdp_mode, name) in tries {
            let deadline = Instant::now() + Duration::from_secs(2);
            loop {
                match program.attach(&ifname, xdp_mode) {
                    Ok(_) => {
                        used = name;
                        last_err = None;
                        break 'modes;
                    }
                    Err(aya::programs::ProgramError::UnknownInterface { .. }) => {
                        return Err(DataplaneError::NoInterface { ifname })
                    }
                    Err(e) => {
                        let busy = error_chain(&e).contains("busy");
                        if !busy || Instant::now() >= deadline {
                            if mode == AttachMode::Auto && name == "native" {
                                tracing::warn!(
                                    port = ifname,
                                    error = %error_chain(&e),
                                    "native XDP attach failed; falling back to generic mode"
                                );
                            }
                            last_err = Some((name, e));
                            continue 'modes;
                        }
                        thread::sleep(Duration::from_millis(20));
                    }
                }
            }
        }
        if let Some((name, e)) = last_err {
            return Err(DataplaneError::Attach {
                ifname,
                mode: name,
                source: boxed(e),
            });
        }
        self.mode = used;
        Ok(())
    }

    /// The filter program of the object.
    fn program(&mut self) -> Result<&mut Xdp, DataplaneError> {
        let ifname = &self.ifname;
        self.ebpf
            .program_mut("xvrrp_filter")
            .ok_or_else(|| DataplaneError::Unsupported("XDP object lacks xvrrp_filter".into()))?
            .try_into()
            .map_err(|e| DataplaneError::Load {
                ifname: ifname.clone(),
                source: boxed(e),
            })
    }

    /// The attach mode that worked ("native" or "generic"; "detached"
    /// before [`PortFilter::attach`]).
    pub fn mode(&self) -> &'static str {
        self.mode
    }

    fn map_error(&self, map: &'static str, e: aya::maps::MapError) -> DataplaneError {
        DataplaneError::Map {
            ifname: self.ifname.clone(),
            map,
            source: boxed(e),
        }
    }

    fn map_data(&mut self, map: &'static str) -> Result<&mut aya::maps::Map, DataplaneError> {
        self.ebpf
            .map_mut(map)
            .ok_or_else(|| DataplaneError::Unsupported(format!("XDP object lacks the {map} map")))
    }

    /// Sets `key` to `value` in the hash map `map`.
    fn insert<K: aya::Pod, V: aya::Pod>(
        &mut self,
        map: &'static str,
        key: K,
        value: V,
    ) -> Result<(), DataplaneError> {
        let res = {
            let data = self.map_data(map)?;
            match HashMap::<&mut MapData, K, V>::try_from(data) {
                Ok(mut hash) => hash.insert(key, value, 0),
                Err(e) => Err(e),
            }
        };
        res.map_err(|e| self.map_error(map, e))
    }

    /// Sets entry `index` of the array map `map` to `value`.
    fn set<V: aya::Pod>(
        &mut self,
        map: &'static str,
        index: u32,
        value: V,
    ) -> Result<(), DataplaneError> {
        let res = {
            let data = self.map_data(map)?;
            match Array::<&mut MapData, V>::try_from(data) {
                Ok(mut array) => array.set(index, value, 0),
                Err(e) => Err(e),
            }
        };
        res.map_err(|e| self.map_error(map, e))
    }

    /// Removes `key` from the hash map `map` (a key that is not there is fine).
    fn remove<K: aya::Pod>(&mut self, map: &'static str, key: K) -> Result<(), DataplaneError> {
        let res = {
            let data = self.map_data(map)?;
            match HashMap::<&mut MapData, K, u32>::try_from(data) {
                Ok(mut hash) => match hash.remove(&key) {
                    Err(aya::maps::MapError::KeyNotFound) => Ok(()),
                    other => other,
                },
                Err(e) => Err(e),
            }
        };
        res.map_err(|e| self.map_error(map, e))
    }

    /// Takes map `map` out of the program's object, as an owned map.
    fn take(&mut self, map: &'static str) -> Result<aya::maps::Map, DataplaneError> {
        self.ebpf
            .take_map(map)
            .ok_or_else(|| DataplaneError::Unsupported(format!("XDP object lacks the {map} map")))
    }

    /// Points the program's slot for `queue` at an AF_XDP socket.
    ///
    /// # Errors
    /// Map update failure.
    pub fn set_socket(&mut self, queue: u32, fd: &impl AsRawFd) -> Result<(), DataplaneError> {
        let res = {
            let data = self.map_data("xsks")?;
            match XskMap::<&mut MapData>::try_from(data) {
                Ok(mut xsks) => xsks.set(queue, fd.as_raw_fd(), 0),
                Err(e) => Err(e),
            }
        };
        res.map_err(|e| self.map_error("xsks", e))
    }

    /// Makes virtual router `inst` (which runs on this port) the
    /// appliance's business: its virtual MAC and addresses, and its
    /// (family, VRID) for adverts. What is sent to its MAC or addresses,
    /// and ARP/NS for its addresses, goes to the appliance while it is
    /// master of it ([`crate::xdp_maps::XdpControl::set_master`]) and is
    /// dropped otherwise.
    ///
    /// # Errors
    /// A router id beyond the program's tables, or a map update failure.
    pub fn add_router(&mut self, inst: &InstanceView) -> Result<(), DataplaneError> {
        let router = xdp_maps::router_index(inst.id)?;
        self.insert("vmacs", inst.vmac.0, router)?;
        for (vip, _) in &inst.vips4 {
            // The program reads the address straight from the packet: network order.
            self.insert("vips4", u32::from_ne_bytes(vip.octets()), router)?;
        }
        for (vip, _) in &inst.vips6 {
            self.insert("vips6", vip.octets(), router)?;
        }
        let version = u32::from(inst.version.number());
        // The value is the router id + 1 (0: not served) and the version.
        let served = [router.saturating_add(1), version];
        if !inst.vips4.is_empty() {
            self.set("served", xdp_maps::vrid_slot(false, inst.vrid), served)?;
        }
        if !inst.vips6.is_empty() {
            self.set("served", xdp_maps::vrid_slot(true, inst.vrid), served)?;
        }
        Ok(())
    }

    /// Takes back what [`Self::add_router`] wrote for `old` (a router of
    /// this port that a reload removed or changed) except what one of
    /// `kept` (the port's routers after the reload) writes again: its
    /// virtual MAC, addresses and (family, VRID). The kept routers are
    /// then added, which overwrites the rest in place, so a router present
    /// before and after never misses an entry.
    ///
    /// # Errors
    /// A map update failure.
    pub fn remove_router(
        &mut self,
        old: &InstanceView,
        kept: &[InstanceView],
    ) -> Result<(), DataplaneError> {
        if !kept.iter().any(|k| k.vmac == old.vmac) {
            self.remove("vmacs", old.vmac.0)?;
        }
        for (vip, _) in &old.vips4 {
            if !kept.iter().any(|k| k.vips4.iter().any(|(a, _)| a == vip)) {
                self.remove("vips4", u32::from_ne_bytes(vip.octets()))?;
            }
        }
        for (vip, _) in &old.vips6 {
            if !kept.iter().any(|k| k.vips6.iter().any(|(a, _)| a == vip)) {
                self.remove("vips6", vip.octets())?;
            }
        }
        let slot = |v: &InstanceView| xdp_maps::vrid_slot(!v.vips6.is_empty(), v.vrid);
        if !kept.iter().any(|k| slot(k) == slot(old)) {
            self.set("served", slot(old), [0u32, 0u32])?;
        }
        Ok(())
    }

    /// Takes out of the program the maps the daemon writes and reads while
    /// it runs (ownership, peer masters, counters).
    ///
    /// # Errors
    /// A map missing from the object or of another type.
    pub(crate) fn take_runtime_maps(&mut self) -> Result<PortMaps, DataplaneError> {
        let (masters, peers, counters, conflicts) = (
            self.take("masters")?,
            self.take("peer_masters")?,
            self.take("counters")?,
            self.take("conflicts")?,
        );
        PortMaps::new(&self.ifname, masters, peers, counters, conflicts)
    }

    /// The loaded program's descriptor.
    #[cfg(test)]
    pub(crate) fn program_fd(&self) -> Option<std::os::fd::BorrowedFd<'_>> {
        use std::os::fd::AsFd;
        let program: &Xdp = self.ebpf.program("xvrrp_filter")?.try_into().ok()?;
        program.fd().ok().map(|fd| fd.as_fd())
    }
}
