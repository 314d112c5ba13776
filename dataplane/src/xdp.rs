//! The XDP filter program: loading, attaching to a port, and the maps that
//! tell it which virtual MACs and addresses are the appliance's business.
//!
//! One copy of the program is loaded per port so that each port has its own
//! XSKMAP (indexed by receive queue) and its own address maps.

use std::{
    net::{Ipv4Addr, Ipv6Addr},
    os::fd::AsRawFd,
    thread,
    time::Duration,
    time::Instant,
};

use aya::{
    maps::{HashMap, MapData, XskMap},
    programs::{Xdp, XdpMode},
    Ebpf,
};
use xvrrp_wire::ethernet::EthernetAddress;

use crate::error::DataplaneError;

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
    /// Loads the program and attaches it to `ifname`.
    ///
    /// A link left behind by a process that just died can linger for a few
    /// tens of milliseconds, so EBUSY is retried for up to two seconds.
    ///
    /// # Errors
    /// Load or attach failures, with the interface named.
    pub fn attach(ifname: &str, mode: AttachMode) -> Result<Self, DataplaneError> {
        let mut ebpf = Ebpf::load(PROGRAM).map_err(|e| DataplaneError::Load {
            ifname: ifname.to_string(),
            source: boxed(e),
        })?;
        let program: &mut Xdp = ebpf
            .program_mut("xvrrp_filter")
            .ok_or_else(|| DataplaneError::Unsupported("XDP object lacks xvrrp_filter".into()))?
            .try_into()
            .map_err(|e| DataplaneError::Load {
                ifname: ifname.to_string(),
                source: boxed(e),
            })?;
        program.load().map_err(|e| DataplaneError::Load {
            ifname: ifname.to_string(),
            source: boxed(e),
        })?;
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
                match program.attach(ifname, xdp_mode) {
                    Ok(_) => {
                        used = name;
                        last_err = None;
                        break 'modes;
                    }
                    Err(aya::programs::ProgramError::UnknownInterface { .. }) => {
                        return Err(DataplaneError::NoInterface {
                            ifname: ifname.to_string(),
                        })
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
                ifname: ifname.to_string(),
                mode: name,
                source: boxed(e),
            });
        }
        Ok(Self {
            ifname: ifname.to_string(),
            ebpf,
            mode: used,
        })
    }

    /// The attach mode that worked ("native" or "generic").
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

    /// Marks `key` in the hash map `map` (value 1: "the appliance's business").
    fn mark<K: aya::Pod>(&mut self, map: &'static str, key: K) -> Result<(), DataplaneError> {
        let res = {
            let data = self.map_data(map)?;
            match HashMap::<&mut MapData, K, u8>::try_from(data) {
                Ok(mut hash) => hash.insert(key, 1, 0),
                Err(e) => Err(e),
            }
        };
        res.map_err(|e| self.map_error(map, e))
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

    /// Redirects frames addressed to `mac` to the appliance.
    ///
    /// # Errors
    /// Map update failure.
    pub fn add_vmac(&mut self, mac: EthernetAddress) -> Result<(), DataplaneError> {
        self.mark("vmacs", mac.0)
    }

    /// Redirects ARP for, and IPv4 packets to, `addr` to the appliance.
    ///
    /// # Errors
    /// Map update failure.
    pub fn add_vip4(&mut self, addr: Ipv4Addr) -> Result<(), DataplaneError> {
        // The program reads the address straight from the packet: network order.
        self.mark("vips4", u32::from_ne_bytes(addr.octets()))
    }

    /// Redirects Neighbour Solicitations for, and IPv6 packets to, `addr`
    /// to the appliance.
    ///
    /// # Errors
    /// Map update failure.
    pub fn add_vip6(&mut self, addr: Ipv6Addr) -> Result<(), DataplaneError> {
        self.mark("vips6", addr.octets())
    }
}
