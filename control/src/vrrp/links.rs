//! Debounced state of what the routers run on and track (ports' links,
//! addresses, routes), sans-IO.
//!
//! The shell reports what the kernel says (`handle_link`); a change counts
//! only once it has held for [`DEBOUNCE`], so a flapping carrier (or an
//! AF_XDP rebind blip) does not make the election flap with it.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use crate::config::TrackTarget;

/// How long a link must hold its new state before it counts.
pub const DEBOUNCE: Duration = Duration::from_millis(100);

/// Debounced up/down state of the watched targets.
#[derive(Debug, Default)]
pub struct LinkTracker {
    /// target → (state in force, pending change and since when).
    links: HashMap<TrackTarget, (bool, Option<(bool, Instant)>)>,
}

impl LinkTracker {
    /// Starts watching `target`, currently `up`.
    pub fn track(&mut self, target: &TrackTarget, up: bool) {
        self.links.insert(target.clone(), (up, None));
    }

    /// Whether `target` counts as up (targets not watched are up).
    pub fn is_up(&self, target: &TrackTarget) -> bool {
        self.links.get(target).is_none_or(|(up, _)| *up)
    }

    /// What is watched.
    pub fn targets(&self) -> impl Iterator<Item = &TrackTarget> {
        self.links.keys()
    }

    /// The kernel reported `target` as `up` at `now`.
    pub fn handle_link(&mut self, now: Instant, target: &TrackTarget, up: bool) {
        if let Some((current, pending)) = self.links.get_mut(target) {
            *pending = match *pending {
                _ if up == *current => None,
                Some((p, since)) if p == up => Some((p, since)),
                _ => Some((up, now)),
            };
        }
    }

    /// When the next pending change matures.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.links
            .values()
            .filter_map(|(_, p)| p.map(|(_, since)| since + DEBOUNCE))
            .min()
    }

    /// Applies the changes that held for [`DEBOUNCE`]; true if any did.
    pub fn handle_timeout(&mut self, now: Instant) -> bool {
        let mut changed = false;
        for (current, pending) in self.links.values_mut() {
            if let Some((up, since)) = *pending {
                if now >= since + DEBOUNCE {
                    *current = up;
                    *pending = None;
                    changed = true;
                }
            }
        }
        changed
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn port(name: &str) -> TrackTarget {
        TrackTarget::Port(name.to_owned())
    }

    #[test]
    fn a_change_counts_only_after_the_debounce() {
        let mut t = LinkTracker::default();
        let t0 = Instant::now();
        t.track(&port("wan0"), true);
        t.handle_link(t0, &port("wan0"), false);
        assert!(t.is_up(&port("wan0")));
        assert_eq!(t.poll_timeout(), Some(t0 + DEBOUNCE));
        assert!(!t.handle_timeout(t0 + DEBOUNCE / 2));
        assert!(t.handle_timeout(t0 + DEBOUNCE));
        assert!(!t.is_up(&port("wan0")));
        assert_eq!(t.poll_timeout(), None);
    }

    #[test]
    fn a_flap_shorter_than_the_debounce_changes_nothing() {
        let mut t = LinkTracker::default();
        let t0 = Instant::now();
        t.track(&port("wan0"), true);
        t.handle_link(t0, &port("wan0"), false);
        t.handle_link(t0 + Duration::from_millis(30), &port("wan0"), true);
        assert_eq!(t.poll_timeout(), None);
        assert!(!t.handle_timeout(t0 + DEBOUNCE * 2));
        assert!(t.is_up(&port("wan0")));
        // Repeated reports of the same pending state keep the first timestamp.
        t.handle_link(t0, &port("wan0"), false);
        t.handle_link(t0 + Duration::from_millis(50), &port("wan0"), false);
        assert_eq!(t.poll_timeout(), Some(t0 + DEBOUNCE));
        // Targets not watched are ignored and count as up.
        t.handle_link(t0, &port("lan9"), false);
        assert!(t.is_up(&port("lan9")));
    }
}
