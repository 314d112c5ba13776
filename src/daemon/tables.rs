//! The `routes` and `neighbors` answers: the tables the workers use, read
//! from what the fast path publishes (the current route tables; each
//! worker's latest copy of its neighbour table), never from the workers'
//! own state.

use std::{net::IpAddr, time::Instant};

use serde_json::{json, Value};
use xvrrp_dataplane::{
    lpm::{Origin, Route, RouteAddr},
    neigh::REACHABLE_TIME,
    Dataplane,
};

/// Most routes one answer lists: a reply line must stay well under the
/// control socket's per-client output bound (1 MiB); `total` tells how
/// many there are.
pub(super) const ROUTES_SHOWN: usize = 5000;

/// `{"kernel": bool, "total": N, "shown": M, "routes": [...]}`: IPv4
/// routes, then IPv6, each by network and prefix length.
pub(super) fn routes(dp: &Dataplane, kernel: bool) -> Value {
    let tables = dp.tables();
    let port_name = |p: usize| dp.port_info(p).map(|i| i.name.clone());
    let total = tables.routes4.len() + tables.routes6.len();
    let list: Vec<Value> = tables
        .routes4
        .entries()
        .map(|(r, o)| route(r, o, port_name(r.port)))
        .chain(
            tables
                .routes6
                .entries()
                .map(|(r, o)| route(r, o, port_name(r.port))),
        )
        .take(ROUTES_SHOWN)
        .collect();
    json!({
        "kernel": kernel,
        "total": total,
        "shown": list.len(),
        "routes": list,
    })
}

fn route<A: RouteAddr + Into<IpAddr>>(r: &Route<A>, origin: Origin, port: Option<String>) -> Value {
    let net: IpAddr = r.net.into();
    json!({
        "to": format!("{net}/{}", r.len),
        "via": r.via.map(|v| Into::<IpAddr>::into(v).to_string()),
        "port": port,
        "origin": origin.name(),
    })
}

/// `{"workers": [{"worker": W, "copy_age_ms": A}], "neighbors": [...]}`:
/// every worker's latest copy (each worker resolves on its own, so one
/// address may appear once per worker). A copy older than the request is
/// refreshed for the next one.
pub(super) fn neighbours(dp: &Dataplane, now: Instant) -> Value {
    let copies = dp.neighbours();
    let mut workers = Vec::with_capacity(copies.len());
    let mut list = Vec::new();
    for (w, copy) in copies.iter().enumerate() {
        let age = copy
            .as_ref()
            .map(|c| now.saturating_duration_since(c.taken).as_millis());
        workers.push(json!({"worker": w, "copy_age_ms": age}));
        for e in copy.iter().flat_map(|c| &c.entries) {
            let age = now.saturating_duration_since(e.since);
            let state = match e.mac {
                Some(_) if age < REACHABLE_TIME => "reachable",
                Some(_) => "stale",
                None => "incomplete",
            };
            list.push((
                e.ip,
                w,
                json!({
                    "address": e.ip.to_string(),
                    "mac": e.mac.map(|m| m.to_string()),
                    "port": dp.port_info(e.port).map(|i| i.name.clone()),
                    "state": state,
                    "age_ms": age.as_millis(),
                    "worker": w,
                }),
            ));
        }
    }
    list.sort_by_key(|(ip, w, _)| (*ip, *w));
    let list: Vec<Value> = list.into_iter().map(|(_, _, v)| v).collect();
    json!({"workers": workers, "neighbors": list})
}
