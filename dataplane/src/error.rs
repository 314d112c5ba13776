//! Errors of the fast path's set-up. The packet loop itself has no error
//! path: what goes wrong per packet is a counted drop.

use std::io;

/// Why the fast path could not start.
#[derive(Debug, thiserror::Error)]
pub enum DataplaneError {
    /// The port does not exist in this network namespace.
    #[error("interface {ifname} not found")]
    NoInterface {
        /// Port name from the config.
        ifname: String,
    },
    /// The port has no IPv4 address to source advertisements from.
    #[error(
        "interface {ifname} has no IPv4 address (an instance needs the port's primary address)"
    )]
    NoAddress {
        /// Port name from the config.
        ifname: String,
    },
    /// Loading the XDP filter into the kernel failed.
    #[error("loading the XDP program for {ifname}: {source}")]
    Load {
        /// Port name.
        ifname: String,
        /// What aya said.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// Attaching the XDP filter to the port failed.
    #[error("attaching the XDP program to {ifname} ({mode}): {source}")]
    Attach {
        /// Port name.
        ifname: String,
        /// Attach mode tried.
        mode: &'static str,
        /// What aya said.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// Updating one of the filter's maps failed.
    #[error("updating BPF map {map} for {ifname}: {source}")]
    Map {
        /// Port name.
        ifname: String,
        /// Map name.
        map: &'static str,
        /// What aya said.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// Creating the UMEM failed (often RLIMIT_MEMLOCK without CAP_IPC_LOCK).
    #[error("creating the AF_XDP UMEM for worker {worker}: {source}")]
    Umem {
        /// Worker index.
        worker: usize,
        /// What xsk-rs said.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// Binding an AF_XDP socket failed.
    #[error("binding an AF_XDP socket to {ifname} queue {queue}: {source}")]
    Bind {
        /// Port name.
        ifname: String,
        /// Queue id.
        queue: u32,
        /// What xsk-rs said.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// Any other operating-system error, with what was being done.
    #[error("{what}: {source}")]
    Io {
        /// What was being done.
        what: String,
        /// The OS error.
        #[source]
        source: io::Error,
    },
    /// The configuration cannot be served by the fast path.
    #[error("{0}")]
    Unsupported(String),
}
