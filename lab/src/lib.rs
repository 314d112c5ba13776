//! The xvrrp lab: test and demonstration tooling, kept out of the appliance.
//!
//! - [`lab`]: a gateway pair between a client LAN and a server WAN, built
//!   from network namespaces, veths and bridges, and a runner for xvrrp
//!   daemons inside it ([`lab::Appliance`]).
//! - [`flow`]: a numbered UDP flow that measures a failover's gap, plus ping
//!   and neighbour-table checks.
//! - [`netns`]: running programs and threads inside named namespaces, and
//!   [`netns::require`], which fails at once naming a program that is not
//!   installed.
//! - [`demo`]: the narrated `xvrrp demo`.
//! - [`bench_failover`], [`bench_control`]: `xvrrp bench failover` (the
//!   traffic gap of a failover, xvrrp beside keepalived, under load) and
//!   `xvrrp bench control` (the cost of 255 routers at 10 ms), each in a
//!   lab of its own; [`keepalived`] runs the baseline pair, [`load`] the
//!   busy loops and the VRRP flood.
//! - [`bench`]: `xvrrp bench`, end-to-end benchmarks in a lab of their own
//!   (the kernel as baseline, a trafgen generator, CPU per packet, latency).
//!
//! The `xvrrp` binary exposes the lab as its `lab`, `demo`, `bench` and
//! hidden `flow` commands (the `*Args` types are its clap arguments); the namespace
//! integration tests use the same code as a dev-dependency, so they drive
//! exactly what a user runs. `xvrrp run`, the appliance itself, never calls
//! into this crate.
//!
//! Building a lab or entering a namespace needs root and iproute2; errors
//! are `anyhow` errors with the failing command and its stderr as context.

#![cfg_attr(test, allow(clippy::unwrap_used))]

mod bare_sender;
pub mod bench;
mod bench_common;
pub mod bench_control;
pub mod bench_failover;
mod bench_plot;
pub mod demo;
pub mod flow;
pub mod keepalived;
pub mod lab;
pub mod load;
pub mod netns;
pub mod stall_probe;
