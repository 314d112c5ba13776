//! The event stream of `subscribe`: every event the daemon publishes goes
//! through [`Daemon::publish_event`], which stamps it with a sequence
//! number, a monotonic time and a wall-clock time, so subscribers see one
//! ordered stream (transitions, priority changes, drains, reloads).

use std::time::{Instant, SystemTime, UNIX_EPOCH};

use serde_json::{json, Value};

use super::Daemon;

/// What [`Daemon::publish_event`] stamps events with.
#[derive(Debug)]
pub(super) struct EventStamps {
    /// The daemon's start: `mono` counts from here.
    started: Instant,
    /// The last sequence number given (the first event gets 1).
    seq: u64,
}

impl EventStamps {
    pub(super) fn new(started: Instant) -> Self {
        Self { started, seq: 0 }
    }

    /// Adds `seq`, `mono` and `time` to `event` (an object; anything else
    /// is wrapped as `{"event": "other", "value": ...}`).
    fn stamp(&mut self, event: Value, now: Instant, wall: SystemTime) -> Value {
        let mut event = match event {
            Value::Object(map) => map,
            other => {
                let mut map = serde_json::Map::new();
                map.insert("event".into(), json!("other"));
                map.insert("value".into(), other);
                map
            }
        };
        self.seq += 1;
        let mono = now.saturating_duration_since(self.started).as_micros();
        // Seconds with microseconds, as a number.
        let mono = u64::try_from(mono).unwrap_or(u64::MAX) as f64 / 1e6;
        event.insert("seq".into(), json!(self.seq));
        event.insert("mono".into(), json!(mono));
        event.insert("time".into(), json!(rfc3339(wall)));
        Value::Object(event)
    }
}

impl Daemon {
    /// Publishes `event` (a JSON object with at least `"event": KIND`) to
    /// every subscriber, stamped with `seq` (1, 2, ... in publishing
    /// order), `mono` (seconds since the daemon started, monotonic) and
    /// `time` (wall clock, RFC 3339 UTC with milliseconds).
    pub(super) fn publish_event(&mut self, event: Value) {
        let event = self
            .event_stamps
            .stamp(event, Instant::now(), SystemTime::now());
        self.ctl.publish(self.poll.registry(), &event);
    }
}

/// `t` as RFC 3339 in UTC with milliseconds: `2026-12-02T11:40:01.123Z`
/// (times before 1970 print as the epoch).
pub(super) fn rfc3339(t: SystemTime) -> String {
    let since = t.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = since.as_secs();
    let (days, rem) = (secs / 86_400, secs % 86_400);
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{:03}Z",
        rem / 3600,
        rem / 60 % 60,
        rem % 60,
        since.subsec_millis()
    )
}

/// The proleptic Gregorian date `days` after 1970-01-01 (H. Hinnant's
/// `civil_from_days`, for non-negative days).
fn civil_from_days(days: u64) -> (u64, u64, u64) {
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + u64::from(m <= 2);
    (y, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn at(secs: u64, millis: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(secs) + Duration::from_millis(millis)
    }

    #[test]
    fn rfc3339_known_dates() {
        assert_eq!(rfc3339(at(0, 0)), "1970-01-01T00:00:00.000Z");
        assert_eq!(rfc3339(at(951_782_400, 5)), "2000-02-29T00:00:00.005Z");
        assert_eq!(rfc3339(at(951_868_800, 0)), "2000-03-01T00:00:00.000Z");
        assert_eq!(rfc3339(at(1_700_000_000, 999)), "2023-11-14T22:13:20.999Z");
        assert_eq!(rfc3339(at(4_102_444_799, 0)), "2099-12-31T23:59:59.000Z");
        assert_eq!(
            rfc3339(UNIX_EPOCH - Duration::from_secs(5)),
            "1970-01-01T00:00:00.000Z"
        );
    }

    #[test]
    fn stamps_count_up_and_keep_the_fields() {
        let start = Instant::now();
        let mut s = EventStamps::new(start);
        let a = s.stamp(
            json!({"event": "transition", "instance": "x"}),
            start + Duration::from_millis(1500),
            at(1_700_000_000, 0),
        );
        let b = s.stamp(
            json!(7),
            start + Duration::from_secs(2),
            at(1_700_000_001, 0),
        );
        assert_eq!(a["seq"], 1);
        assert_eq!(a["instance"], "x");
        assert_eq!(a["mono"], 1.5);
        assert_eq!(a["time"], "2023-11-14T22:13:20.000Z");
        assert_eq!(b["seq"], 2);
        assert_eq!(b["event"], "other");
        assert_eq!(b["value"], 7);
    }
}
