//! Answers to control-socket requests. Read-only: a request that changes
//! something (`priority`, `drain`, `resume`) is answered here and carried out by the control
//! loop once the client's lines are read. `reload` is not answered here at all: [`route`]
//! hands it to the control loop, so [`View::handle`] never sees it.

use std::time::Instant;

use serde_json::{json, Map, Value};
use xvrrp_control::{
    ctl_socket::{Request, Response},
    vrrp::Routers,
    CaptureFilter, DropReason,
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

/// Who answers a request.
pub(super) enum Route<'a> {
    /// `reload`: checked, answered and carried out by the control loop
    /// (`Daemon::serve_client`), which alone can change the routers.
    Reload,
    /// Every other request: answered by [`View::handle`].
    View(Query<'a>),
}

/// A request [`View::handle`] answers: every [`Request`] but `reload`.
#[derive(Debug, Clone, Copy)]
pub(super) enum Query<'a> {
    Hello,
    Status,
    Stats,
    Priority {
        name: &'a str,
        priority: u8,
    },
    Drain {
        name: Option<&'a str>,
    },
    Resume {
        name: Option<&'a str>,
    },
    Routes,
    Neighbors,
    Capture {
        port: &'a str,
        count: Option<u64>,
        filter: CaptureFilter,
    },
    Subscribe,
}

/// Splits `reload` off from the requests the view answers.
pub(super) fn route(req: &Request) -> Route<'_> {
    let query = match req {
        Request::Reload => return Route::Reload,
        Request::Hello => Query::Hello,
        Request::Status => Query::Status,
        Request::Stats => Query::Stats,
        Request::Priority { name, priority } => Query::Priority {
            name,
            priority: *priority,
        },
        Request::Drain { name } => Query::Drain {
            name: name.as_deref(),
        },
        Request::Resume { name } => Query::Resume {
            name: name.as_deref(),
        },
        Request::Routes => Query::Routes,
        Request::Neighbors => Query::Neighbors,
        Request::Capture {
            port,
            count,
            filter,
        } => Query::Capture {
            port,
            count: *count,
            filter: *filter,
        },
        Request::Subscribe => Query::Subscribe,
    };
    Route::View(query)
}

impl View<'_> {
    pub(super) fn handle(&self, query: Query<'_>) -> Response {
        match query {
            Query::Hello => ok(json!({"version": env!("CARGO_PKG_VERSION"), "name": "xvrrp"})),
            Query::Status => render::status(
                self.routers,
                self.dp,
                &self.dp.vmac_conflicts(),
                self.started,
                Instant::now(),
            ),
            Query::Stats => render::stats(
                self.routers,
                self.dp,
                self.control_drops,
                self.late_wakeups,
                self.tx,
            ),
            Query::Priority { name, priority } => {
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
            Query::Subscribe => ok(json!({"subscribed": true})),
            Query::Routes => ok(tables::routes(self.dp, self.kernel_routes)),
            Query::Neighbors => ok(tables::neighbours(self.dp, Instant::now())),
            Query::Capture {
                port,
                count,
                filter,
            } => self.capture.start(port, count, filter),
            Query::Drain { name } => super::drain::reply(self.routers, name, false),
            Query::Resume { name } => super::drain::reply(self.routers, name, true),
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
