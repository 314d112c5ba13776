//! VRRP, sans-IO (quinn-proto style, holo-vrrp file split).
//!
//! - [`fsm`]: states, reasons, the parsed advert input and the outputs.
//! - [`instance`]: one virtual router's RFC 9568 §6.4 / RFC 3768 §6.4 machine.
//! - [`timer`]: Skew_Time / Master_Down_Interval arithmetic and the timer table.
//! - [`advert`]: an advert as the fast path hands it over, and the address-list check.
//! - [`router`]: a router around its instance (announcement timers, link
//!   fault, tracking, local advert checks) and the set the control thread drives.
//! - [`links`]: debounced link state of the ports.
//! - [`sync`]: sync groups, whose members change state together.
//!
//! Nothing here reads a clock, a socket or a channel: the control thread
//! passes `now` into every input, in monotonically increasing order, and
//! carries out the drained outputs.

pub mod advert;
pub mod fsm;
pub mod instance;
pub mod links;
pub mod router;
pub mod sync;
pub mod timer;

pub use advert::{address_list_verdict, AddressList, RxAdvert};
pub use fsm::{Advert, Output, Reason, State, Version};
pub use instance::{Counters, Instance, InstanceConfig, OWNER_PRIORITY};
pub use router::{Action, DrainState, Notice, Router, RouterCounters, Routers, LATE_TIMER};
pub use sync::{propagate, propagate_fault, SyncGroup, SyncMember};
pub use timer::{master_down_interval, skew_time, Timer, TimerTable};
