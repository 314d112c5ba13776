//! The resolved plan as JSON, for `xvrrp check --json`: what the daemon
//! would do with a configuration, every default filled in, every derived
//! timer computed (in microseconds), each queue with the worker serving it.

use std::time::Duration;

use serde_json::{json, Value};

use super::{
    plan::{checksum_name, RxQueues},
    queue_worker, Config, Idle, Queues, RouterSpec, XdpMode, ZeroCopy,
};

impl Idle {
    /// The configuration's spelling of the policy.
    pub fn as_str(self) -> &'static str {
        match self {
            Idle::Busy => "busy",
            Idle::Adaptive => "adaptive",
            Idle::Wait => "wait",
        }
    }
}

impl XdpMode {
    /// The configuration's spelling of the mode.
    pub fn as_str(self) -> &'static str {
        match self {
            XdpMode::Auto => "auto",
            XdpMode::Native => "native",
            XdpMode::Generic => "generic",
        }
    }
}

impl ZeroCopy {
    /// The configuration's spelling of the setting.
    pub fn as_str(self) -> &'static str {
        match self {
            ZeroCopy::Auto => "auto",
            ZeroCopy::On => "on",
            ZeroCopy::Off => "off",
        }
    }
}

fn micros(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX)
}

fn strings<T: ToString>(items: &[T]) -> Vec<String> {
    items.iter().map(ToString::to_string).collect()
}

pub(super) fn render(c: &Config, rx_queues: RxQueues<'_>) -> Value {
    let g = &c.global;
    let d = &c.dataplane;
    json!({
        "control_socket": g.control_socket.display().to_string(),
        "socket_group": g.socket_group,
        "metrics_listen": g.metrics_listen.map(|a| a.to_string()),
        "notify": g.notify.as_ref().map(|p| p.display().to_string()),
        "dataplane": {
            "cores": d.cores,
            "idle": d.idle.as_str(),
            "xdp_mode": d.xdp_mode.as_str(),
            "zero_copy": d.zero_copy.as_str(),
            "batch": d.batch,
        },
        "ports": c.ports.iter().map(|p| port(c, &p.name, &p.queues, rx_queues)).collect::<Vec<_>>(),
        "instances": c.vrrp.iter().map(instance).collect::<Vec<_>>(),
        "sync_groups": c.sync_groups.iter().map(|sg| json!({
            "name": sg.name,
            "members": sg.members,
        })).collect::<Vec<_>>(),
        "routes": c.routes.iter().map(|r| json!({
            "to": r.to.to_string(),
            "via": r.via.to_string(),
            "port": r.port,
        })).collect::<Vec<_>>(),
        "kernel_routes": c.kernel_routes,
    })
}

/// A port's queue selection and, when the queue ids are known (listed, or
/// counted on the interface where `check` runs), the worker of each queue;
/// `assignment` is null for `"all"` on an interface not present here.
fn port(c: &Config, name: &str, queues: &Queues, rx_queues: RxQueues<'_>) -> Value {
    let workers = c.dataplane.cores.len().max(1);
    let ids = match (queues, rx_queues(name)) {
        (Queues::List(ids), _) => Some(ids.clone()),
        (Queues::All, Some(count)) => Some(queues.resolve(count)),
        (Queues::All, None) => None,
    };
    let assignment = ids.map(|ids| {
        ids.iter()
            .enumerate()
            .map(|(i, q)| json!({"queue": q, "worker": queue_worker(i, workers)}))
            .collect::<Vec<_>>()
    });
    let selected = match queues {
        Queues::All => json!("all"),
        Queues::List(ids) => json!(ids),
    };
    json!({"name": name, "queues": selected, "assignment": assignment})
}

fn instance(v: &RouterSpec) -> Value {
    json!({
        "name": v.name,
        "port": v.port,
        "vrid": v.vrid,
        "version": v.version.number(),
        "family": if v.is_ipv6() { "ipv6" } else { "ipv4" },
        "vmac": v.vmac.to_string(),
        "priority": v.priority,
        "address_owner": v.priority == 255,
        "advert_interval_us": micros(v.advert_interval()),
        "skew_time_us": micros(v.skew_time()),
        "master_down_interval_us": micros(v.master_down_interval()),
        "preempt": v.preempt,
        "preempt_delay_us": micros(v.preempt_delay),
        "accept": v.accept,
        "checksum": checksum_name(v),
        "addresses": strings(&v.addresses),
        "derived_link_local": v.derived_link_local().map(|a| a.to_string()),
        "unicast_peers": strings(&v.unicast_peers),
        "announce": {
            "count": v.garp.count,
            "interval_us": micros(v.garp.interval),
            "refresh_us": micros(v.garp.refresh),
        },
        "track": v.track.iter().map(|t| json!({
            "target": t.target.to_string(),
            "weight": t.weight,
        })).collect::<Vec<_>>(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = r#"
[global]
control_socket = "/run/x.sock"

[dataplane]
cores = [0, 1]

[[port]]
name = "lan0"
queues = [0, 1, 2]

[[port]]
name = "wan0"

[[vrrp]]
name = "lan-gw"
port = "lan0"
vrid = 1
priority = 200
advert_interval = "100ms"
addresses = ["192.0.2.1/24"]
"#;

    #[test]
    fn the_json_plan_holds_the_resolved_values() {
        let c = crate::config::parse(TEXT, "t.toml").expect("valid");
        let wan_queues = |name: &str| (name == "wan0").then_some(2);
        let plan = render(&c, &wan_queues);
        assert_eq!(plan["control_socket"], "/run/x.sock");
        assert_eq!(plan["dataplane"]["cores"], json!([0, 1]));
        let lan = &plan["ports"][0];
        assert_eq!(lan["queues"], json!([0, 1, 2]));
        let workers: Vec<u64> = lan["assignment"]
            .as_array()
            .expect("assignment")
            .iter()
            .filter_map(|a| a["worker"].as_u64())
            .collect();
        assert_eq!(workers, [0, 1, 0]);
        assert_eq!(plan["ports"][1]["queues"], "all");
        assert_eq!(
            plan["ports"][1]["assignment"],
            json!([{"queue": 0, "worker": 0}, {"queue": 1, "worker": 1}])
        );
        let i = &plan["instances"][0];
        assert_eq!(i["vmac"], "00:00:5e:00:01:01");
        assert_eq!(i["advert_interval_us"], 100_000);
        assert_eq!(
            i["master_down_interval_us"].as_u64(),
            Some(micros(c.vrrp[0].master_down_interval()))
        );
        assert!(i["master_down_interval_us"].as_u64() > Some(300_000));
        assert_eq!(i["addresses"], json!(["192.0.2.1/24"]));
    }
}
