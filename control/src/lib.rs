//! Control plane.
pub mod config;
pub mod ctl_socket;
pub mod vrrp;
