//! Planned handover: the `drain` and `resume` requests, their events, and
//! the confirmed drain on SIGTERM.
//!
//! The protocol is in the sans-IO core (`Instance::handle_drain`): a
//! drained master advertises priority 0 and keeps the addresses until it
//! hears the router that took over advertise as master. Draining a member
//! of a sync group drains the whole group (`Routers::drain_set`).

use std::time::{Duration, Instant};

use serde_json::{json, Value};
use xvrrp_control::{
    ctl_socket::Response,
    vrrp::{DrainState, Router, Routers, State},
    RouterId,
};

use super::Daemon;

/// A drain or resume the control loop carries out after answering it.
#[derive(Debug)]
pub(super) enum Handover {
    /// Drain the routers named (every one with `None`).
    Drain(Option<String>),
    /// Resume them.
    Resume(Option<String>),
}

/// The answer to `drain` (`resume: false`) or `resume` of `name`: the
/// routers it applies to, with the drain state each will be in.
pub(super) fn reply(routers: &Routers, name: Option<&str>, resume: bool) -> Response {
    let Some(ids) = routers.drain_set(name) else {
        return Response::Err {
            code: "unknown-instance",
            message: format!("no instance named {}", name.unwrap_or_default()),
        };
    };
    let instances: Vec<Value> = ids
        .iter()
        .filter_map(|id| routers.get(*id))
        .map(|r| {
            let drain = if resume {
                None
            } else {
                Some(
                    r.drain_state()
                        .unwrap_or(if r.instance().state() == State::Master {
                            DrainState::Draining
                        } else {
                            DrainState::Drained
                        }),
                )
            };
            json!({
                "name": r.spec().name,
                "state": r.state_name(),
                "drain": drain.map(DrainState::name),
                "master": r.instance().master_addr().map(|a| a.to_string()),
            })
        })
        .collect();
    let mut m = serde_json::Map::new();
    m.insert("instances".into(), Value::Array(instances));
    Response::Ok(m)
}

/// The event published when a router is drained, resumed, or hands over.
fn event(r: &Router, what: &str) -> Value {
    json!({
        "event": what,
        "instance": r.spec().name,
        "state": r.state_name(),
        "drain": r.drain_state().map(DrainState::name),
        "master": r.instance().master_addr().map(|a| a.to_string()),
    })
}

impl Daemon {
    /// Carries out a drain or resume that was answered (an unknown name was
    /// refused there and changes nothing here).
    pub(super) fn handover(&mut self, now: Instant, change: &Handover) {
        let (name, resume) = match change {
            Handover::Drain(name) => (name.as_deref(), false),
            Handover::Resume(name) => (name.as_deref(), true),
        };
        let Some(ids) = self.routers.drain_set(name) else {
            return;
        };
        if resume {
            self.routers.handle_resume(now, &ids);
        } else {
            self.routers.handle_drain(now, &ids);
        }
        let what = if resume { "resume" } else { "drain" };
        let events: Vec<_> = ids
            .iter()
            .filter_map(|id| self.routers.get(*id))
            .map(|r| {
                tracing::info!(instance = %r.spec().name, state = r.state_name(), "{what}");
                event(r, what)
            })
            .collect();
        for ev in events {
            self.publish_event(ev);
        }
        self.drain_actions(now);
    }

    /// Tells the fast path which routers are draining masters (their
    /// forwarded frames then leave from the port's own MAC).
    pub(super) fn note_draining(&self) {
        for r in self.routers.iter() {
            let draining = r.drain_state() == Some(DrainState::Draining);
            self.dp.set_draining(r.id(), draining);
        }
    }

    /// A drained master handed over: say so to subscribers and the log.
    pub(super) fn handed_over(&mut self, id: RouterId) {
        let Some(r) = self.routers.get(id) else {
            return;
        };
        let master = r.instance().master_addr();
        tracing::info!(instance = %r.spec().name, master = ?master, "drain: handover confirmed");
        let ev = event(r, "drain");
        self.publish_event(ev);
    }

    /// SIGTERM: drains every router, then runs the control loop until each
    /// router that was master has heard its successor advertise as master
    /// (it keeps forwarding until then), or until `limit` has passed with no
    /// successor heard. Logs which handovers were confirmed and which timed out.
    pub(super) fn drain_for_exit(&mut self, limit: Duration) {
        let start = Instant::now();
        let masters: Vec<RouterId> = self
            .routers
            .iter()
            .filter(|r| r.instance().state() == State::Master)
            .map(Router::id)
            .collect();
        let all = self.routers.drain_set(None).unwrap_or_default();
        self.routers.handle_drain(start, &all);
        self.drain_actions(start);
        let draining = |routers: &Routers| {
            masters
                .iter()
                .filter_map(|id| routers.get(*id))
                .any(|r| r.drain_state() == Some(DrainState::Draining))
        };
        while draining(&self.routers) && start.elapsed() < limit {
            std::thread::sleep(Duration::from_millis(1));
            self.step(Instant::now());
        }
        for r in masters.iter().filter_map(|id| self.routers.get(*id)) {
            let name = &r.spec().name;
            if r.drain_state() == Some(DrainState::Draining) {
                tracing::warn!(instance = %name, waited_ms = limit.as_millis(), "stop: no peer took over; giving up the addresses anyway");
            } else {
                let master = r.instance().master_addr();
                tracing::info!(instance = %name, master = ?master, "stop: handover confirmed");
            }
        }
    }
}
