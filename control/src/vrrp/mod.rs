//! VRRP state machine, sans-IO (quinn-proto style, holo-vrrp file split).
//!
//! - [`fsm`]: states, reasons, the parsed advert input and the outputs.
//! - [`instance`]: one virtual router's RFC 9568 §6.4 / RFC 3768 §6.4 machine.
//! - [`timer`]: Skew_Time / Master_Down_Interval arithmetic and the timer table.
//! - [`sync`]: sync groups, whose members change state together.
//!
//! Nothing here reads a clock, a socket or a channel: the control thread
//! passes `now` into every input and carries out the drained outputs.

pub mod fsm;
pub mod instance;
pub mod sync;
pub mod timer;

pub use fsm::{Advert, Output, Reason, State, Version};
pub use instance::{Counters, Instance, InstanceConfig, OWNER_PRIORITY};
pub use sync::{propagate, SyncGroup};
pub use timer::{master_down_interval, skew_time, Timer, TimerTable};
