//! Answers to control-socket requests. Read-only: a request that changes
//! something (`priority`, `drain`, `resume`) is answered here and carried out by the control
//! loop once the client's lines are read.

use std::time::Instant;

use serde_json::{json, Map, Value};
use xvrrp_control::{
    ctl_socket::{Request, Response},
    vrrp::Routers,
    DropReason,
};
use xvrrp_dataplane::Dataplane;

use super::{capture::Launcher, render, tables, tx::TxCounters};

/// What the handlers read.
pub(super) struct View<'a> {
    pub(super) routers: &'a Routers,
    pub(super) dp: &'a Dataplane,
    pub(super) control_drops: &'a [u64; DropReason::COUNT],
    pub(super) late_wakeups: u64,
    pub(super) tx: TxCounters,
    pub(super) started: Instant,
    /// Whether the kernel's routes are mirrored.
    pub(super) kernel_routes: bool,
    /// Starts captures on their own threads.
    pub(super) capture: &'a Launcher,
}

impl View<'_> {
    pub(super) fn handle(&self, req: &Request) -> Response {
        match req {
            Request::Hello => ok(json!({"version": env!("CARGO_PKG_VERSION"), "name": "xvrrp"})),
            Request::Status => ok(render::status(
                self.routers,
                self.dp,
                &self.dp.vmac_conflicts(),
                self.started,
                Instant::now(),
            )),
            Request::Stats => ok(render::stats(
                self.routers,
                self.dp,
                self.control_drops,
                self.late_wakeups,
                self.tx,
            )),
            Request::Priority { name, priority } => {
                if self.routers.by_name(name).is_some() {
                    ok(json!({"name": name, "priority": priority}))
                } else {
                    Response::Err {
                        code: "unknown-instance",
                        message: format!("no instance named {name}"),
                    }
                }
            }
            // The server marks the client a subscriber on this success; the
            // control loop publishes every transition to subscribers.
            Request::Subscribe => ok(json!({"subscribed": true})),
            Request::Routes => ok(tables::routes(self.dp, self.kernel_routes)),
            Request::Neighbors => ok(tables::neighbours(self.dp, Instant::now())),
            // Checked, answered and carried out by the control loop
            // (`Daemon::serve_client`), which alone can change the routers.
            Request::Reload => Response::Err {
                code: "internal",
                message: "reload is served by the control loop".into(),
            },
            Request::Capture {
                port,
                count,
                filter,
            } => self.capture.start(port, *count, *filter),
            Request::Drain { name } => super::drain::reply(self.routers, name.as_deref(), false),
            Request::Resume { name } => super::drain::reply(self.routers, name.as_deref(), true),
        }
    }
}

fn ok(v: Value) -> Response {
    match v {
        Value::Object(m) => Response::Ok(m),
        other => {
            let mut m = Map::new();
            m.insert("result".into(), other);
            Response::Ok(m)
        }
    }
}
