//! `xvrrp reload` and SIGHUP: the configuration file is read again and
//! what changed takes effect while everything else keeps running.
//!
//! The comparison is [`xvrrp_control::config::diff`] (pure, unit-tested).
//! Here the shell checks the new file ([`prepare`]: nothing changes when
//! it is refused) and then carries it out ([`Daemon::apply_reload`]):
//!
//! 1. routers that go away (removed, or starting over) shut down as at
//!    exit: a master sends priority 0, then gives up its addresses;
//! 2. the routers that keep their state are carried over, with their
//!    timers and advert phase, into a new set indexed by the new file's
//!    order, and take their new settings; the others are created;
//! 3. the fast path serves the new set: routers carried over keep their
//!    slot, so their ownership flags and filter entries never change;
//! 4. the transmit templates, multicast memberships and the prober follow,
//!    and the new routers start as at startup.

use std::{collections::HashMap, net::IpAddr, path::Path, time::Instant};

use serde_json::{json, Map, Value};
use xvrrp_control::{
    config::{self, Config, ReloadPlan, TrackTarget},
    ctl_socket::Response,
    vrrp::{Router, Routers},
    RouterId,
};
use xvrrp_dataplane::{Dataplane, DataplaneConfig};

use super::{join_groups, primary_address, start_prober, sync_groups, Daemon};

/// A new configuration that passed every check, ready to be carried out.
pub(super) struct Prepared {
    cfg: Config,
    plan: ReloadPlan,
    dcfg: DataplaneConfig,
    /// The address each router that starts advertises from, by name.
    primaries: HashMap<String, IpAddr>,
}

/// Why a reload was refused; the running configuration stays.
pub(super) struct Refused {
    code: &'static str,
    message: String,
}

impl Refused {
    pub(super) fn response(self) -> Response {
        Response::Err {
            code: self.code,
            message: self.message,
        }
    }
}

/// Reads and checks the file at `path` against the `running` configuration.
///
/// # Errors
/// `bad-config`: the file's errors (`FILE:LINE:COL: message`, one a line),
/// or a router the fast path cannot serve; `restart-required`: settings
/// that take effect only at start changed.
pub(super) fn prepare(path: &Path, running: &Config, dp: &Dataplane) -> Result<Prepared, Refused> {
    let bad = |message: String| Refused {
        code: "bad-config",
        message,
    };
    let cfg = config::load(path).map_err(|e| bad(e.to_string()))?;
    let plan = config::diff(running, &cfg);
    if !plan.restart_required.is_empty() {
        return Err(Refused {
            code: "restart-required",
            message: format!(
                "{}: these settings take effect only when xvrrp starts; restart it to change them: {}",
                path.display(),
                plan.restart_required.join(", ")
            ),
        });
    }
    let dcfg = DataplaneConfig::from_config(&cfg).map_err(|e| bad(e.to_string()))?;
    let mut primaries = HashMap::new();
    for spec in cfg.vrrp.iter().filter(|s| !plan.keeps_state(&s.name)) {
        let primary = cfg
            .port_index(&spec.port)
            .and_then(|i| dp.port_info(i))
            .and_then(|info| primary_address(info, spec.is_ipv6()))
            .ok_or_else(|| {
                bad(format!(
                    "port {} has no address to advertise {} from",
                    spec.port, spec.name
                ))
            })?;
        primaries.insert(spec.name.clone(), primary);
    }
    Ok(Prepared {
        cfg,
        plan,
        dcfg,
        primaries,
    })
}

impl Prepared {
    /// What the reload changes, as the answer and the event carry it.
    pub(super) fn summary(&self) -> Map<String, Value> {
        summary(&self.plan)
    }
}

fn summary(plan: &ReloadPlan) -> Map<String, Value> {
    let changed: Vec<Value> = plan
        .changed
        .iter()
        .map(|c| json!({"name": c.name, "keys": c.keys, "restart": c.restart}))
        .collect();
    let mut m = Map::new();
    m.insert("unchanged".into(), json!(plan.unchanged));
    m.insert("changed".into(), json!(changed));
    m.insert("added".into(), json!(plan.added));
    m.insert("removed".into(), json!(plan.removed));
    m.insert("routes_changed".into(), json!(plan.routes_changed));
    m.insert(
        "sync_groups_changed".into(),
        json!(plan.sync_groups_changed),
    );
    m
}

impl Daemon {
    /// SIGHUP: like `xvrrp reload`, with a refusal logged.
    pub(super) fn reload_on_signal(&mut self, now: Instant) {
        match prepare(&self.config_path, &self.cfg, &self.dp) {
            Ok(prepared) => self.apply_reload(now, prepared),
            Err(refused) => tracing::error!(
                code = refused.code,
                "reload refused, the running configuration stays:\n{}",
                refused.message
            ),
        }
    }

    /// Carries out a checked reload (see the module's steps).
    pub(super) fn apply_reload(&mut self, now: Instant, prepared: Prepared) {
        let Prepared {
            cfg,
            plan,
            dcfg,
            primaries,
        } = prepared;
        // 1. Those that go away leave as at exit.
        let leaving: Vec<RouterId> = self
            .routers
            .iter()
            .filter(|r| !plan.keeps_state(&r.spec().name))
            .map(Router::id)
            .collect();
        for id in &leaving {
            self.routers.handle_shutdown_of(now, *id);
        }
        self.drain_actions(now);
        for id in &leaving {
            self.dp.set_master(*id, false);
        }
        // 2. The new set; link state known so far is kept.
        let up: HashMap<TrackTarget, bool> = self
            .routers
            .tracked()
            .map(|t| (t.clone(), self.routers.is_up(t)))
            .collect();
        let old = std::mem::replace(
            &mut self.routers,
            Routers::new(Vec::new(), Vec::new(), |_| true),
        );
        let mut kept: HashMap<String, Router> = old
            .into_routers()
            .into_iter()
            .filter(|r| plan.keeps_state(&r.spec().name))
            .map(|r| (r.spec().name.clone(), r))
            .collect();
        let (mut routers, mut carried, mut started) = (Vec::new(), Vec::new(), Vec::new());
        for spec in &cfg.vrrp {
            if let Some(mut r) = kept.remove(&spec.name) {
                carried.push(Some(r.id()));
                r.handle_reconfigure(now, spec.clone());
                routers.push(r);
            } else if let Some(primary) = primaries.get(&spec.name) {
                carried.push(None);
                started.push(spec.id);
                routers.push(Router::new(spec.clone(), *primary));
            }
        }
        let routers = Routers::new(routers, sync_groups(&cfg), |t| {
            up.get(t).copied().unwrap_or_else(|| crate::track::is_up(t))
        });
        // 3. The fast path.
        if let Err(e) = self.dp.reconfigure(&dcfg, &carried) {
            tracing::error!(error = %e, "reload: the fast path could not take every change; restart xvrrp");
        }
        self.tx.set_routers(&self.dp.tables().instances);
        self.routers = routers;
        self.drop_log.reloaded(&self.dp);
        // 4. Memberships, prober, then the routers' own changes.
        match join_groups(&cfg, &self.dp, &self.routers) {
            Ok(m) => self.memberships = m,
            Err(e) => tracing::error!(error = %e, "reload: joining the VRRP groups failed"),
        }
        match start_prober(&self.routers) {
            Ok(p) => std::mem::replace(&mut self.prober, p).retire(),
            Err(e) => tracing::error!(error = %e, "reload: the prober could not be restarted"),
        }
        self.cfg = cfg;
        self.routers.handle_reload(now, &started);
        self.drain_actions(now);
        if plan.is_noop() {
            tracing::info!(
                "configuration reloaded from {}: nothing changed",
                self.config_path.display()
            );
        } else {
            let changed: Vec<&str> = plan.changed.iter().map(|c| c.name.as_str()).collect();
            tracing::info!(
                unchanged = plan.unchanged.len(),
                changed = %changed.join(","),
                added = %plan.added.join(","),
                removed = %plan.removed.join(","),
                routes_changed = plan.routes_changed,
                sync_groups_changed = plan.sync_groups_changed,
                "configuration reloaded from {}",
                self.config_path.display()
            );
        }
        let mut event = summary(&plan);
        event.insert("event".into(), json!("reload"));
        self.publish_event(Value::Object(event));
    }
}
