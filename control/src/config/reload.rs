//! What a reload changes: the comparison of the running configuration
//! with a new one, as a pure function (`xvrrp reload`, SIGHUP).
//!
//! Instances are matched by name. One whose settings are all equal is
//! unchanged (its position in the file may move); one whose priority,
//! addresses, tracking, preemption, `accept`, checksum, unicast peers or
//! announcements changed keeps its state and takes the new values; one
//! whose port, VRID, version, address family, advertisement interval or
//! ownership (priority 255 on one side only) changed starts over: it leaves
//! like a removed instance and starts like an added one. Settings the fast
//! path or the process fixed at start (ports and queues, workers and their
//! cores, idle mode, XDP and zero-copy modes, batch, the control socket and
//! its group, the metrics endpoint, the kernel route mirror) cannot change
//! without a restart: a reload that changes them is refused.

use super::{Config, RouterSpec};
use crate::vrrp::OWNER_PRIORITY;

/// An instance whose settings changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InstanceChange {
    /// Its name.
    pub name: String,
    /// The keys that changed, as the file names them.
    pub keys: Vec<&'static str>,
    /// Whether it starts over (it goes down like a removed instance and
    /// starts like an added one) rather than keeping its state.
    pub restart: bool,
}

/// The difference between the running configuration and a new one.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReloadPlan {
    /// Settings changed that take effect only at start (the reload is
    /// refused while this is not empty).
    pub restart_required: Vec<&'static str>,
    /// Instances with the same settings, by name, in the new file's order.
    pub unchanged: Vec<String>,
    /// Instances with other settings, in the new file's order.
    pub changed: Vec<InstanceChange>,
    /// Instances only in the new file.
    pub added: Vec<String>,
    /// Instances only in the running configuration.
    pub removed: Vec<String>,
    /// Whether the static routes differ.
    pub routes_changed: bool,
    /// Whether the sync groups differ.
    pub sync_groups_changed: bool,
    /// Whether the notify program differs.
    pub notify_changed: bool,
}

impl ReloadPlan {
    /// Whether the named instance keeps its state across the reload
    /// (unchanged, or changed in place).
    pub fn keeps_state(&self, name: &str) -> bool {
        self.unchanged.iter().any(|n| n == name)
            || self.changed.iter().any(|c| c.name == name && !c.restart)
    }

    /// Whether the reload changes nothing at all.
    pub fn is_noop(&self) -> bool {
        self.changed.is_empty()
            && self.added.is_empty()
            && self.removed.is_empty()
            && !self.routes_changed
            && !self.sync_groups_changed
            && !self.notify_changed
    }
}

/// Compares the running configuration `old` with `new`.
pub fn diff(old: &Config, new: &Config) -> ReloadPlan {
    let mut plan = ReloadPlan {
        restart_required: restart_required(old, new),
        routes_changed: old.routes != new.routes,
        sync_groups_changed: old.sync_groups != new.sync_groups,
        notify_changed: old.global.notify != new.global.notify,
        ..ReloadPlan::default()
    };
    for spec in &new.vrrp {
        match old.instance(&spec.name) {
            None => plan.added.push(spec.name.clone()),
            Some(before) => {
                let keys = changed_keys(before, spec);
                if keys.is_empty() {
                    plan.unchanged.push(spec.name.clone());
                } else {
                    plan.changed.push(InstanceChange {
                        name: spec.name.clone(),
                        restart: needs_restart(before, spec),
                        keys,
                    });
                }
            }
        }
    }
    plan.removed = old
        .vrrp
        .iter()
        .filter(|s| new.instance(&s.name).is_none())
        .map(|s| s.name.clone())
        .collect();
    plan
}

fn restart_required(old: &Config, new: &Config) -> Vec<&'static str> {
    let (o, n) = (&old.global, &new.global);
    let (od, nd) = (&old.dataplane, &new.dataplane);
    [
        (
            o.control_socket != n.control_socket,
            "global.control_socket",
        ),
        (o.socket_group != n.socket_group, "global.socket_group"),
        (
            o.metrics_listen != n.metrics_listen,
            "global.metrics_listen",
        ),
        (od.cores != nd.cores, "dataplane.cores"),
        (od.idle != nd.idle, "dataplane.idle"),
        (od.xdp_mode != nd.xdp_mode, "dataplane.xdp_mode"),
        (od.zero_copy != nd.zero_copy, "dataplane.zero_copy"),
        (od.batch != nd.batch, "dataplane.batch"),
        (old.ports != new.ports, "port"),
        (old.kernel_routes != new.kernel_routes, "routes.kernel"),
    ]
    .into_iter()
    .filter_map(|(changed, key)| changed.then_some(key))
    .collect()
}

/// The keys of `[[vrrp]]` whose values differ (the position in the file
/// does not count).
fn changed_keys(a: &RouterSpec, b: &RouterSpec) -> Vec<&'static str> {
    [
        (a.port != b.port, "port"),
        (a.vrid != b.vrid, "vrid"),
        (a.version != b.version, "version"),
        (a.priority != b.priority, "priority"),
        (a.interval_cs != b.interval_cs, "advert_interval"),
        (a.preempt != b.preempt, "preempt"),
        (a.preempt_delay != b.preempt_delay, "preempt_delay"),
        (a.accept != b.accept, "accept"),
        (a.checksum != b.checksum, "checksum"),
        (a.addresses != b.addresses, "addresses"),
        (a.unicast_peers != b.unicast_peers, "unicast_peers"),
        (a.garp != b.garp, "garp"),
        (a.track != b.track, "track"),
    ]
    .into_iter()
    .filter_map(|(changed, key)| changed.then_some(key))
    .collect()
}

/// Whether the change from `a` to `b` makes another virtual router of it:
/// another port, VRID, version or family, another interval (every timer
/// of the election depends on it), or ownership gained or lost.
fn needs_restart(a: &RouterSpec, b: &RouterSpec) -> bool {
    a.port != b.port
        || a.vrid != b.vrid
        || a.version != b.version
        || a.is_ipv6() != b.is_ipv6()
        || a.interval_cs != b.interval_cs
        || (a.priority == OWNER_PRIORITY) != (b.priority == OWNER_PRIORITY)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    const BASE: &str = r#"
[global]
control_socket = "/run/t.sock"

[dataplane]
cores = [0]

[[port]]
name = "lan0"

[[port]]
name = "wan0"

[[vrrp]]
name = "lan"
port = "lan0"
vrid = 1
priority = 150
addresses = ["192.0.2.1/24"]

[[vrrp]]
name = "wan"
port = "wan0"
vrid = 2
addresses = ["203.0.113.1/24"]
"#;

    fn cfg(text: &str) -> Config {
        super::super::parse(text, "t.toml").unwrap()
    }

    #[test]
    fn the_same_file_changes_nothing() {
        let plan = diff(&cfg(BASE), &cfg(BASE));
        assert_eq!(plan.unchanged, vec!["lan", "wan"]);
        assert!(plan.is_noop());
        assert!(plan.restart_required.is_empty());
    }

    #[test]
    fn a_moved_instance_is_unchanged_and_added_and_removed_ones_are_named() {
        let old = cfg(BASE);
        let new = BASE.replace("name = \"lan\"", "name = \"lan2\"");
        let new = cfg(&format!(
            "{}\n[[vrrp]]\nname = \"lan\"\nport = \"lan0\"\nvrid = 1\npriority = 150\naddresses = [\"192.0.2.1/24\"]\n",
            new.replace("vrid = 1\n", "vrid = 3\n")
        ));
        let plan = diff(&old, &new);
        assert_eq!(plan.unchanged, vec!["wan", "lan"]);
        assert_eq!(plan.added, vec!["lan2"]);
        assert!(plan.removed.is_empty());
        assert!(plan.keeps_state("lan"));
        let new = cfg(&BASE.replace("name = \"wan\"", "name = \"wan-b\""));
        let plan = diff(&old, &new);
        assert_eq!(
            (plan.added, plan.removed),
            (vec!["wan-b".to_string()], vec!["wan".to_string()])
        );
    }

    #[test]
    fn priority_addresses_and_tracking_change_in_place() {
        let old = cfg(BASE);
        let new = cfg(&BASE
            .replace("priority = 150", "priority = 90\npreempt_delay = \"1s\"")
            .replace(
                "addresses = [\"192.0.2.1/24\"]",
                "addresses = [\"192.0.2.1/24\", \"192.0.2.2/24\"]\ntrack = [{ port = \"wan0\", weight = -20 }]",
            ));
        let plan = diff(&old, &new);
        assert_eq!(
            plan.changed,
            vec![InstanceChange {
                name: "lan".into(),
                keys: vec!["priority", "preempt_delay", "addresses", "track"],
                restart: false,
            }]
        );
        assert!(plan.keeps_state("lan") && plan.keeps_state("wan"));
        assert!(!plan.is_noop());
    }

    #[test]
    fn identity_interval_and_ownership_changes_restart_the_instance() {
        let old = cfg(BASE);
        for (from, to, key) in [
            ("vrid = 1\n", "vrid = 7\n", "vrid"),
            ("port = \"lan0\"", "port = \"wan0\"", "port"),
            (
                "priority = 150",
                "priority = 150\nadvert_interval = \"100ms\"",
                "advert_interval",
            ),
            ("priority = 150", "priority = 255", "priority"),
            (
                "addresses = [\"192.0.2.1/24\"]",
                "addresses = [\"2001:db8::1/64\"]",
                "addresses",
            ),
        ] {
            let plan = diff(&old, &cfg(&BASE.replace(from, to)));
            let change = plan.changed.first().unwrap();
            assert_eq!(
                (change.name.as_str(), change.restart),
                ("lan", true),
                "{key}"
            );
            assert!(change.keys.contains(&key), "{key}: {:?}", change.keys);
            assert!(!plan.keeps_state("lan"));
        }
    }

    #[test]
    fn process_and_fast_path_settings_need_a_restart() {
        let old = cfg(BASE);
        let new = cfg(&BASE
            .replace("cores = [0]", "cores = [0, 1]\nidle = \"wait\"")
            .replace("/run/t.sock", "/run/u.sock")
            .replace("name = \"wan0\"", "name = \"wan0\"\nqueues = [0]"));
        let plan = diff(&old, &new);
        assert_eq!(
            plan.restart_required,
            vec![
                "global.control_socket",
                "dataplane.cores",
                "dataplane.idle",
                "port"
            ]
        );
    }

    #[test]
    fn routes_sync_groups_and_notify_are_noticed() {
        let old = cfg(BASE);
        let new = cfg(&format!(
            "{}\n[[route]]\nto = \"198.51.100.0/24\"\nvia = \"203.0.113.9\"\nport = \"wan0\"\n\n[[sync_group]]\nname = \"g\"\nmembers = [\"lan\", \"wan\"]\n",
            BASE.replace(
                "control_socket = \"/run/t.sock\"",
                "control_socket = \"/run/t.sock\"\nnotify = \"/bin/true\""
            )
        ));
        let plan = diff(&old, &new);
        assert!(plan.routes_changed && plan.sync_groups_changed && plan.notify_changed);
        assert!(plan.changed.is_empty() && plan.restart_required.is_empty());
        assert!(!plan.is_noop());
    }
}
