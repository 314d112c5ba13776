//! VRRP timers and the interval arithmetic behind them.
//!
//! Skew_Time and Master_Down_Interval follow RFC 9568 §6.1 for version 3 and
//! RFC 3768 §6.1 for version 2. All arithmetic is done on integer nanoseconds
//! in `u64`: the largest product, 256 × 4095 cs × 10⁷ ns, is about 1.05 × 10¹³,
//! far below `u64::MAX`, so nothing overflows. Version 3 values are exact
//! except that a half nanosecond (when (256 − Priority) × interval is odd) is
//! rounded down, because `Duration` cannot hold it.

use std::time::{Duration, Instant};

use super::fsm::Version;

/// Nanoseconds in one centisecond, the unit of VRRPv3 intervals.
const NANOS_PER_CS: u64 = 10_000_000;
/// Nanoseconds in one second.
const NANOS_PER_SEC: u64 = 1_000_000_000;

/// Converts a centisecond count to a `Duration`.
pub fn cs_to_duration(cs: u16) -> Duration {
    Duration::from_nanos(u64::from(cs) * NANOS_PER_CS)
}

/// Skew_Time for a router of `priority` whose Master_Adver_Interval is `interval_cs`.
///
/// Version 3 (RFC 9568 §6.1): ((256 − Priority) × Master_Adver_Interval) / 256.
/// Version 2 (RFC 3768 §6.1): (256 − Priority) / 256 seconds, whatever the interval.
pub fn skew_time(version: Version, priority: u8, interval_cs: u16) -> Duration {
    let weight = 256 - u64::from(priority);
    let nanos = match version {
        Version::V3 => weight * u64::from(interval_cs) * NANOS_PER_CS / 256,
        Version::V2 => weight * NANOS_PER_SEC / 256,
    };
    Duration::from_nanos(nanos)
}

/// Master_Down_Interval: 3 × the master's advertisement interval + Skew_Time
/// (RFC 9568 §6.1; RFC 3768 §6.1 with Advertisement_Interval).
pub fn master_down_interval(version: Version, priority: u8, interval_cs: u16) -> Duration {
    cs_to_duration(interval_cs) * 3 + skew_time(version, priority, interval_cs)
}

/// The timers one virtual router runs (RFC 9568 §6.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Timer {
    /// Adver_Timer: the master's next periodic advertisement.
    Adver,
    /// Master_Down_Timer: a backup's deadline for hearing from the master.
    MasterDown,
}

/// Deadlines of the armed timers; a disarmed timer is `None`.
///
/// The table never fires anything by itself: the owner asks which timers are
/// due at an explicit `now` (quinn-proto style).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TimerTable([Option<Instant>; 2]);

impl TimerTable {
    fn slot(&mut self, timer: Timer) -> &mut Option<Instant> {
        let [adver, master_down] = &mut self.0;
        match timer {
            Timer::Adver => adver,
            Timer::MasterDown => master_down,
        }
    }

    /// Arms `timer` to expire at `deadline`, replacing any earlier deadline.
    pub fn set(&mut self, timer: Timer, deadline: Instant) {
        *self.slot(timer) = Some(deadline);
    }

    /// Disarms `timer`.
    pub fn stop(&mut self, timer: Timer) {
        *self.slot(timer) = None;
    }

    /// Disarms every timer.
    pub fn stop_all(&mut self) {
        self.0 = [None; 2];
    }

    /// The deadline of `timer`, if armed.
    pub fn get(&self, timer: Timer) -> Option<Instant> {
        let [adver, master_down] = self.0;
        match timer {
            Timer::Adver => adver,
            Timer::MasterDown => master_down,
        }
    }

    /// Whether `timer` is armed and its deadline is at or before `now`.
    pub fn is_due(&self, timer: Timer, now: Instant) -> bool {
        self.get(timer).is_some_and(|deadline| deadline <= now)
    }

    /// The earliest armed deadline.
    pub fn next_deadline(&self) -> Option<Instant> {
        self.0.iter().flatten().min().copied()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v3(priority: u8, cs: u16) -> (Duration, Duration) {
        (
            skew_time(Version::V3, priority, cs),
            master_down_interval(Version::V3, priority, cs),
        )
    }

    /// Exact value of (256 − p) × cs × 10⁷ / 256 ns, computed independently in u128.
    fn expected_skew_nanos(priority: u8, cs: u16) -> u128 {
        (256 - u128::from(priority)) * u128::from(cs) * 10_000_000 / 256
    }

    #[test]
    fn rfc9568_worked_example() {
        // Priority 100, 1 s interval: skew 156/256 s = 0.609375 s.
        let (skew, mdi) = v3(100, 100);
        assert_eq!(skew, Duration::from_micros(609_375));
        assert_eq!(mdi, Duration::from_micros(3_609_375));
    }

    #[test]
    fn v3_timing_table() {
        for priority in [1u8, 100, 200, 254, 255] {
            for cs in [1u16, 10, 100, 4095] {
                let (skew, mdi) = v3(priority, cs);
                let want_skew = expected_skew_nanos(priority, cs);
                assert_eq!(skew.as_nanos(), want_skew, "skew p={priority} cs={cs}");
                assert_eq!(
                    mdi.as_nanos(),
                    3 * u128::from(cs) * 10_000_000 + want_skew,
                    "mdi p={priority} cs={cs}"
                );
                // Skew never reaches one full interval, and shrinks as priority grows.
                assert!(skew < cs_to_duration(cs));
            }
        }
        // Spot values written out by hand.
        assert_eq!(v3(1, 4095).0, Duration::from_nanos(40_790_039_062)); // 255*4095/256 cs
        assert_eq!(v3(1, 4095).1, Duration::from_nanos(163_640_039_062));
        assert_eq!(v3(255, 1).0, Duration::from_nanos(39_062)); // 10 ms / 256, half-ns dropped
        assert_eq!(v3(255, 1).1, Duration::from_nanos(30_039_062));
        assert_eq!(v3(200, 10).0, Duration::from_micros(21_875)); // 56/256 × 100 ms
        assert_eq!(v3(254, 100).0, Duration::from_nanos(7_812_500));
    }

    #[test]
    fn v2_timing_table() {
        for (priority, skew_ns) in [
            (1u8, 996_093_750u64),
            (100, 609_375_000),
            (200, 218_750_000),
            (254, 7_812_500),
            (255, 3_906_250),
        ] {
            for secs in [1u16, 255] {
                let cs = secs * 100;
                assert_eq!(
                    skew_time(Version::V2, priority, cs),
                    Duration::from_nanos(skew_ns)
                );
                assert_eq!(
                    master_down_interval(Version::V2, priority, cs),
                    Duration::from_secs(3 * u64::from(secs)) + Duration::from_nanos(skew_ns)
                );
            }
        }
    }

    #[test]
    fn timer_table_tracks_earliest_deadline() {
        let t0 = Instant::now();
        let mut table = TimerTable::default();
        assert_eq!(table.next_deadline(), None);
        table.set(Timer::MasterDown, t0 + Duration::from_secs(3));
        table.set(Timer::Adver, t0 + Duration::from_secs(1));
        assert_eq!(table.next_deadline(), Some(t0 + Duration::from_secs(1)));
        assert!(!table.is_due(Timer::Adver, t0));
        assert!(table.is_due(Timer::Adver, t0 + Duration::from_secs(1)));
        table.stop(Timer::Adver);
        assert_eq!(table.next_deadline(), Some(t0 + Duration::from_secs(3)));
        table.stop_all();
        assert_eq!(table.next_deadline(), None);
        assert!(!table.is_due(Timer::MasterDown, t0 + Duration::from_secs(9)));
    }
}
