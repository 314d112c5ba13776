//! `status` and `stats` as the control socket returns them (JSON).

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::time::{Duration, Instant};

use serde::Serialize;
use serde_json::{json, Map, Value};
use xvrrp_control::{
    config::{IfAddr, TrackConfig, TrackTarget},
    ctl_socket::Response,
    vrrp::{DrainState, Routers},
    DropReason,
};
use xvrrp_dataplane::{
    stats::SocketStats,
    xdp_maps::{XdpCounter, XdpPortStats},
    Dataplane,
};

use super::tx::TxCounters;

/// One router as `status` shows it, serialized straight from the
/// router's data: with hundreds of routers a tree of JSON values cost the
/// control thread ~10 ms per call, and every advert due meanwhile waited.
#[derive(Serialize)]
struct InstanceStatus<'a> {
    name: &'a str,
    port: &'a str,
    vrid: u8,
    version: u8,
    state: &'static str,
    drain: Option<&'static str>,
    priority: u8,
    effective_priority: u8,
    master: Option<IpAddr>,
    transitions: u64,
    since_ms: Option<u64>,
    advert_interval_ms: u64,
    master_adver_interval_ms: u64,
    skew_time_us: u64,
    master_down_interval_us: u64,
    preempt: bool,
    accept: bool,
    checksum: &'static str,
    peer_checksum: Option<&'static str>,
    #[serde(serialize_with = "as_strings")]
    addresses: &'a [IfAddr],
    track: Vec<Value>,
    address_list_errors: u64,
    adverts_rx: u64,
    adverts_tx: u64,
    takeovers_deferred: u64,
    takeovers_unconfirmed: u64,
    vmac_conflicts: u64,
}

/// `status`'s reply, `"ok": true` included.
#[derive(Serialize)]
struct StatusReply<'a> {
    ok: bool,
    instances: Vec<InstanceStatus<'a>>,
    dataplane: Value,
    uptime_ms: u64,
}

fn as_strings<S: serde::Serializer>(items: &&[IfAddr], ser: S) -> Result<S::Ok, S::Error> {
    ser.collect_seq(items.iter().map(ToString::to_string))
}

/// Every router: state, priorities, master, timers, counters (with
/// `vmac_conflicts` by router id, as `Dataplane::vmac_conflicts` reads
/// them); and how the fast path serves each port. The reply's text.
pub(super) fn status(
    routers: &Routers,
    dp: &Dataplane,
    vmac_conflicts: &[u64],
    started: Instant,
    now: Instant,
) -> Response {
    let instances = routers
        .iter()
        .map(|r| {
            let (s, f) = (r.spec(), r.instance());
            let c = r.counters();
            InstanceStatus {
                name: &s.name,
                port: &s.port,
                vrid: s.vrid,
                version: s.version.number(),
                state: r.state_name(),
                drain: r.drain_state().map(DrainState::name),
                priority: f.priority(),
                effective_priority: f.effective_priority(),
                master: f.master_addr(),
                transitions: f.transitions(),
                since_ms: f.since().map(|t| millis(now.saturating_duration_since(t))),
                advert_interval_ms: millis(s.advert_interval()),
                master_adver_interval_ms: u64::from(f.master_adver_interval_cs()) * 10,
                skew_time_us: micros(f.skew_time()),
                master_down_interval_us: micros(f.master_down_interval()),
                preempt: s.preempt,
                accept: s.accept,
                checksum: s.checksum.name(),
                peer_checksum: r.peer_checksum().map(|k| k.name()),
                addresses: &s.addresses,
                track: s.track.iter().map(|t| track_json(t, routers)).collect(),
                address_list_errors: c.address_list_errors,
                adverts_rx: c.adverts_rx,
                adverts_tx: c.adverts_tx,
                takeovers_deferred: c.takeovers_deferred,
                takeovers_unconfirmed: c.takeovers_unconfirmed,
                vmac_conflicts: vmac_conflicts.get(r.id().index()).copied().unwrap_or(0),
            }
        })
        .collect();
    let reply = StatusReply {
        ok: true,
        instances,
        dataplane: dataplane(dp),
        uptime_ms: millis(now.saturating_duration_since(started)),
    };
    match serde_json::to_string(&reply) {
        Ok(text) => Response::OkText(text),
        Err(e) => Response::error("internal", format!("status: {e}")),
    }
}

/// Per port: the XDP mode in use, zero-copy or copy sockets, each served
/// queue with its worker; per worker: its core and queues.
fn dataplane(dp: &Dataplane) -> Value {
    let layout = dp.layout();
    let ports: Vec<Value> = layout
        .iter()
        .map(|p| {
            let zero_copy = !p.queues.is_empty() && p.queues.iter().all(|q| q.zero_copy);
            json!({
                "name": p.name,
                "xdp_mode": p.xdp_mode,
                "zero_copy": zero_copy,
                "socket_mode": if zero_copy { "zero-copy" } else { "copy" },
                "rx_queues": p.rx_queues,
                "tx_worker": p.tx_worker,
                "queues": p.queues.iter().map(|q| json!({
                    "queue": q.queue,
                    "worker": q.worker,
                    "core": q.core,
                    "zero_copy": q.zero_copy,
                })).collect::<Vec<_>>(),
            })
        })
        .collect();
    let mut workers: Vec<(usize, Option<usize>, Vec<Value>)> = Vec::new();
    for p in layout {
        for q in &p.queues {
            let entry = json!({"port": p.name, "queue": q.queue});
            match workers.iter_mut().find(|(w, _, _)| *w == q.worker) {
                Some((_, _, list)) => list.push(entry),
                None => workers.push((q.worker, q.core, vec![entry])),
            }
        }
    }
    workers.sort_by_key(|(w, _, _)| *w);
    let workers: Vec<Value> = workers
        .into_iter()
        .map(|(w, core, queues)| {
            // Ports this worker has no socket on: sent through their tx_worker.
            let via: Map<String, Value> = layout
                .iter()
                .filter(|p| !p.queues.iter().any(|q| q.worker == w))
                .map(|p| (p.name.clone(), json!(p.tx_worker)))
                .collect();
            json!({"worker": w, "core": core, "queues": queues, "sends_via": via})
        })
        .collect();
    json!({"backend": "af_xdp", "ports": ports, "workers": workers})
}

/// One tracked target: `{"port": "wan0"}` (or `address`, `route`), its
/// weight, and whether it counts as up.
fn track_json(t: &TrackConfig, routers: &Routers) -> Value {
    let (kind, what) = match &t.target {
        TrackTarget::Port(p) => ("port", p.clone()),
        TrackTarget::Address(a) => ("address", a.to_string()),
        TrackTarget::Route(r) => ("route", r.to_string()),
    };
    json!({kind: what, "weight": t.weight, "up": routers.is_up(&t.target)})
}

/// Fast-path counters by port and worker, per-router advert counters, and
/// what the control thread itself refused. The reply's text.
pub(super) fn stats(
    routers: &Routers,
    dp: &Dataplane,
    control_drops: &[u64; DropReason::COUNT],
    late_wakeups: u64,
    tx: TxCounters,
) -> Response {
    let workers = dp.stats();
    let xsk = dp.xsk_stats();
    let xdp = dp.xdp_stats();
    let conflicts = dp.vmac_conflicts();
    let mut ports = Map::new();
    for (p, view) in dp.tables().ports.iter().enumerate() {
        let mut per_worker = Map::new();
        for (w, c) in workers.iter().enumerate() {
            let Some(pc) = c.ports.get(p) else { continue };
            let mut obj = Map::new();
            for (k, v) in pc.fields() {
                obj.insert(k.into(), json!(v));
            }
            let mut drops = Map::new();
            if let Some(d) = c.drops.get(p) {
                for reason in DropReason::ALL {
                    drops.insert(
                        reason.name().into(),
                        json!(d.get(reason as usize).copied().unwrap_or(0)),
                    );
                }
            }
            obj.insert("drops".into(), Value::Object(drops));
            obj.insert("idle_sleeps".into(), json!(c.idle_sleeps));
            if let Some(x) = xsk_json(&xsk, p, w) {
                obj.insert("xsk".into(), x);
            }
            per_worker.insert(w.to_string(), Value::Object(obj));
        }
        let mut port = json!({"workers": per_worker});
        if let (Some(st), Value::Object(obj)) = (xdp.get(p), &mut port) {
            xdp_json(obj, st);
        }
        ports.insert(view.name.clone(), port);
    }
    let instances: BTreeMap<&str, InstanceCounters> = routers
        .iter()
        .map(|r| {
            let c = r.counters();
            let counters = InstanceCounters {
                adverts_rx: c.adverts_rx,
                adverts_tx: c.adverts_tx,
                address_list_errors: c.address_list_errors,
                vmac_conflicts: conflicts.get(r.id().index()).copied().unwrap_or(0),
                state: r.state_name(),
            };
            (r.spec().name.as_str(), counters)
        })
        .collect();
    // Only the reasons the control thread saw, as before: a short object.
    let control: Map<String, Value> = DropReason::ALL
        .iter()
        .zip(control_drops)
        .filter(|(_, n)| **n > 0)
        .map(|(r, n)| (r.name().to_string(), json!(n)))
        .collect();
    let reply = StatsReply {
        ok: true,
        ports,
        instances,
        control: json!({
            "drops": control,
            "late_wakeups": late_wakeups,
            "tx": {"sent": tx.sent, "deferred": tx.deferred, "dropped": tx.dropped},
        }),
    };
    match serde_json::to_string(&reply) {
        Ok(text) => Response::OkText(text),
        Err(e) => Response::error("internal", format!("stats: {e}")),
    }
}

/// One router's counters in `stats` (serialized straight, as `status`).
#[derive(Serialize)]
struct InstanceCounters {
    adverts_rx: u64,
    adverts_tx: u64,
    #[serde(rename = "address-list-error")]
    address_list_errors: u64,
    #[serde(rename = "vmac-conflict")]
    vmac_conflicts: u64,
    state: &'static str,
}

/// `stats`'s reply, `"ok": true` included.
#[derive(Serialize)]
struct StatsReply<'a> {
    ok: bool,
    ports: Map<String, Value>,
    instances: BTreeMap<&'a str, InstanceCounters>,
    control: Value,
}

/// The XDP filter's counters of a port: `xdp_drops` by reason (every
/// reason the filter counts, zeros included) and `xdp`, what it let through
/// and the frames from our virtual MACs.
fn xdp_json(port: &mut Map<String, Value>, st: &XdpPortStats) {
    let drops: Map<String, Value> = XdpCounter::ALL
        .iter()
        .filter_map(|c| c.drop_reason())
        .map(|r| {
            let n = st.drops.get(r as usize).copied().unwrap_or(0);
            (r.name().to_owned(), json!(n))
        })
        .collect();
    port.insert("xdp_drops".into(), Value::Object(drops));
    port.insert(
        "xdp".into(),
        json!({
            "adverts_passed": st.adverts_passed,
            "master_adverts": st.master_adverts,
            "vmac_conflicts": st.vmac_conflicts,
        }),
    );
}

/// The kernel's counters of `worker`'s AF_XDP sockets on `port` (summed
/// over its queues: frames lost before the worker saw them), under the
/// kernel's names; `null` if they could not be read, `None` when the
/// worker has no socket there.
fn xsk_json(sockets: &[SocketStats], port: usize, worker: usize) -> Option<Value> {
    let sum = sockets
        .iter()
        .filter(|s| s.port == port && s.worker == worker)
        .map(|s| s.stats)
        .reduce(|a, b| a.zip(b).map(|(a, b)| a.sum(b)))?;
    Some(sum.map_or(Value::Null, |st| {
        Value::Object(
            st.fields()
                .iter()
                .map(|(k, v)| ((*k).to_owned(), json!(v)))
                .collect(),
        )
    }))
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

fn micros(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX)
}
