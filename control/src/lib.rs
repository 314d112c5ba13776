//! Control plane: the configuration (validated into one [`RouterSpec`] per
//! virtual router), the sans-IO VRRP protocol, the control socket, and the
//! one list of drop reasons.
mod capture_filter;
pub mod config;
pub mod ctl_socket;
mod drop_reason;
pub mod vrrp;

pub use capture_filter::CaptureFilter;
pub use config::{RouterId, RouterSpec};
pub use drop_reason::DropReason;
