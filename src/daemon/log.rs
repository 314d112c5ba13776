//! What the daemon writes to the journal about the routers and the fast
//! path: one line per event, and a rate-limited summary of drops.

use std::time::{Duration, Instant};

use xvrrp_control::{
    vrrp::{Notice, Reason, Routers, State},
    DropReason, RouterSpec,
};
use xvrrp_dataplane::Dataplane;

/// At most one log line about dropped frames per this period: a peer (or
/// an attacker) must not be able to flood the journal.
const DROP_LOG_PERIOD: Duration = Duration::from_secs(10);

/// Logs a router's notice (each is emitted once, or once per change).
pub(super) fn notice(spec: &RouterSpec, notice: Notice) {
    let instance = &spec.name;
    match notice {
        Notice::PortDown => {
            tracing::warn!(%instance, port = %spec.port, "port is down: instance in fault")
        }
        Notice::PortUp => {
            tracing::info!(%instance, port = %spec.port, "port is up again: instance restarts")
        }
        Notice::PriorityChanged(priority) => {
            tracing::info!(%instance, priority, "priority changed")
        }
        Notice::AddressListMismatch { peer } => tracing::warn!(
            %instance,
            %peer,
            "the peer advertises other virtual addresses than ours (or no link-local first): check both configurations"
        ),
        Notice::PeerChecksum { peer, theirs } => tracing::warn!(
            %instance,
            %peer,
            peer_checksum = theirs.name(),
            our_checksum = spec.checksum.name(),
            "the peer computes the VRRPv3 checksum the other way; we accept it, but a peer that checks strictly (keepalived, FRR) will drop our adverts: set `checksum` to match"
        ),
        Notice::PrimaryChanged { from, to } => tracing::warn!(
            %instance,
            port = %spec.port,
            %from,
            %to,
            "the port's primary address changed: adverts now come from the new one"
        ),
        Notice::PeerInterval { peer, theirs_cs } => tracing::warn!(
            %instance,
            %peer,
            peer_interval_ms = u32::from(theirs_cs) * 10,
            our_interval_ms = u32::from(spec.interval_cs) * 10,
            "the peer advertises another interval than ours"
        ),
    }
}

/// Logs a state change.
pub(super) fn transition(spec: &RouterSpec, from: State, to: State, reason: Reason, priority: u8) {
    tracing::info!(
        instance = %spec.name,
        from = %from,
        to = %to,
        reason = ?reason,
        priority,
        "state change"
    );
}

/// Summarises fast-path drops by reason (the workers' and the XDP
/// filters'), and frames from our own virtual MACs, at most once per
/// [`DROP_LOG_PERIOD`].
pub(super) struct DropLog {
    totals: [u64; DropReason::COUNT],
    /// `vmac-conflict` by router id, at the last line.
    conflicts: Vec<u64>,
    at: Instant,
}

impl DropLog {
    pub(super) fn new(now: Instant) -> Self {
        Self {
            totals: [0; DropReason::COUNT],
            conflicts: Vec::new(),
            at: now,
        }
    }

    /// Logs what the fast path dropped since the last line, and the
    /// routers whose virtual MAC another station used, if the period is
    /// over (the counters are read only then).
    pub(super) fn tick(&mut self, now: Instant, dp: &Dataplane, routers: &Routers) {
        if now.saturating_duration_since(self.at) < DROP_LOG_PERIOD {
            return;
        }
        self.log_conflicts(dp, routers);
        let mut totals = [0u64; DropReason::COUNT];
        let workers = dp.stats();
        let xdp = dp.xdp_stats();
        let ports = workers
            .iter()
            .flat_map(|w| &w.drops)
            .chain(xdp.iter().map(|x| &x.drops));
        for port in ports {
            for (t, n) in totals.iter_mut().zip(port) {
                *t += n;
            }
        }
        let new: Vec<String> = DropReason::ALL
            .iter()
            .zip(totals.iter().zip(&self.totals))
            // Backups drop traffic to the VMAC by design; not worth a line.
            .filter(|(r, (t, old))| t > old && **r != DropReason::NotMaster)
            .map(|(r, (t, old))| format!("{}={}", r.name(), t - old))
            .collect();
        if !new.is_empty() {
            tracing::warn!(
                period_s = DROP_LOG_PERIOD.as_secs(),
                "fast path dropped frames: {}",
                new.join(" ")
            );
        }
        self.totals = totals;
        self.at = now;
    }

    /// The routers were renumbered (a reload): the conflicts counted so
    /// far are the baseline of the next line.
    pub(super) fn reloaded(&mut self, dp: &Dataplane) {
        self.conflicts = dp.vmac_conflicts();
    }

    /// One warning per router whose virtual MAC arrived as the source of
    /// frames another station sent since the last line.
    fn log_conflicts(&mut self, dp: &Dataplane, routers: &Routers) {
        let conflicts = dp.vmac_conflicts();
        for r in routers.iter() {
            let i = r.id().index();
            let (n, old) = (
                conflicts.get(i).copied().unwrap_or(0),
                self.conflicts.get(i).copied().unwrap_or(0),
            );
            if n > old {
                let spec = r.spec();
                tracing::warn!(
                    instance = %spec.name,
                    port = %spec.port,
                    vmac = %spec.vmac,
                    state = r.state_name(),
                    period_s = DROP_LOG_PERIOD.as_secs(),
                    "vmac-conflict={}: another station sent frames from our virtual MAC (a second master, a loop, or a spoofer moving the switch's entry for it)",
                    n - old
                );
            }
        }
        self.conflicts = conflicts;
    }
}
