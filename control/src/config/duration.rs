//! Durations written as strings with a unit: `"10ms"`, `"1.5s"`, `"250us"`.
//!
//! Parsed with integer arithmetic so that `"40.95s"` is exactly 4095
//! centiseconds, which the VRRPv3 interval check relies on.

use std::time::Duration;

/// Why a duration string was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DurationError {
    /// Nothing was written.
    #[error("empty duration; write a number and a unit, like \"10ms\"")]
    Empty,
    /// The number is missing or malformed.
    #[error("invalid duration {0:?}; write a number and a unit, like \"10ms\" or \"1.5s\"")]
    BadNumber(String),
    /// The number has no unit.
    #[error("duration {0:?} needs a unit: ns, us, ms, s or m")]
    NoUnit(String),
    /// The unit is not one of ns, us, ms, s, m.
    #[error("unknown unit {unit:?} in duration {text:?} (expected ns, us, ms, s or m)")]
    BadUnit {
        /// The whole string.
        text: String,
        /// The unit found.
        unit: String,
    },
    /// The value is finer than a nanosecond.
    #[error("duration {0:?} is finer than a nanosecond")]
    TooPrecise(String),
    /// The value does not fit.
    #[error("duration {0:?} is too large")]
    TooLarge(String),
}

const NANOS_PER_SEC: u128 = 1_000_000_000;

/// Parses `"<number><unit>"` with unit ns, us (or µs), ms, s or m, and an
/// optional decimal fraction.
///
/// # Errors
///
/// A [`DurationError`] saying what is wrong with `text`.
pub fn parse_duration(text: &str) -> Result<Duration, DurationError> {
    if text.is_empty() {
        return Err(DurationError::Empty);
    }
    let split = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    if number.is_empty() {
        return Err(DurationError::BadNumber(text.to_string()));
    }
    let unit_nanos: u128 = match unit {
        "ns" => 1,
        "us" | "µs" => 1_000,
        "ms" => 1_000_000,
        "s" => NANOS_PER_SEC,
        "m" => 60 * NANOS_PER_SEC,
        "" => return Err(DurationError::NoUnit(text.to_string())),
        _ => {
            return Err(DurationError::BadUnit {
                text: text.to_string(),
                unit: unit.to_string(),
            })
        }
    };
    let (int, frac) = match number.split_once('.') {
        Some((i, f)) => (i, f),
        None => (number, ""),
    };
    let digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    if int.is_empty() || !digits(int) || !digits(frac) || (number.contains('.') && frac.is_empty())
    {
        return Err(DurationError::BadNumber(text.to_string()));
    }
    let too_large = || DurationError::TooLarge(text.to_string());
    let int: u128 = int.parse().map_err(|_| too_large())?;
    let mut nanos = int.checked_mul(unit_nanos).ok_or_else(too_large)?;
    if !frac.is_empty() {
        let frac_digits = frac.trim_end_matches('0');
        if frac_digits.len() > 12 {
            return Err(DurationError::TooPrecise(text.to_string()));
        }
        let scale = 10u128.pow(u32::try_from(frac_digits.len()).map_err(|_| too_large())?);
        let frac_value: u128 = if frac_digits.is_empty() {
            0
        } else {
            frac_digits.parse().map_err(|_| too_large())?
        };
        let scaled = frac_value.checked_mul(unit_nanos).ok_or_else(too_large)?;
        if scaled % scale != 0 {
            return Err(DurationError::TooPrecise(text.to_string()));
        }
        nanos = nanos.checked_add(scaled / scale).ok_or_else(too_large)?;
    }
    let secs = u64::try_from(nanos / NANOS_PER_SEC).map_err(|_| too_large())?;
    let sub = u32::try_from(nanos % NANOS_PER_SEC).map_err(|_| too_large())?;
    Ok(Duration::new(secs, sub))
}

/// Formats a duration in the largest unit that keeps it short, in a form
/// [`parse_duration`] reads back exactly: `10ms`, `1.5s`, `4.140625ms`, `0s`.
pub fn format_duration(d: Duration) -> String {
    let nanos = d.as_nanos();
    if nanos == 0 {
        return "0s".to_string();
    }
    let (unit_nanos, unit) = if nanos >= NANOS_PER_SEC {
        (NANOS_PER_SEC, "s")
    } else if nanos >= 1_000_000 {
        (1_000_000, "ms")
    } else if nanos >= 1_000 {
        (1_000, "us")
    } else {
        (1, "ns")
    };
    let int = nanos / unit_nanos;
    let rem = nanos % unit_nanos;
    if rem == 0 {
        return format!("{int}{unit}");
    }
    let width = unit_nanos.ilog10() as usize;
    let frac = format!("{rem:0width$}");
    format!("{int}.{}{unit}", frac.trim_end_matches('0'))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn parses_units_and_fractions() {
        assert_eq!(parse_duration("10ms"), Ok(Duration::from_millis(10)));
        assert_eq!(parse_duration("1s"), Ok(Duration::from_secs(1)));
        assert_eq!(parse_duration("1.5s"), Ok(Duration::from_millis(1500)));
        assert_eq!(parse_duration("40.95s"), Ok(Duration::from_millis(40_950)));
        assert_eq!(parse_duration("250us"), Ok(Duration::from_micros(250)));
        assert_eq!(parse_duration("7ns"), Ok(Duration::from_nanos(7)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("0s"), Ok(Duration::ZERO));
        assert_eq!(parse_duration("1.50s"), Ok(Duration::from_millis(1500)));
    }

    #[test]
    fn rejects_malformed() {
        assert_eq!(parse_duration(""), Err(DurationError::Empty));
        assert!(matches!(
            parse_duration("10"),
            Err(DurationError::NoUnit(_))
        ));
        assert!(matches!(
            parse_duration("10h"),
            Err(DurationError::BadUnit { .. })
        ));
        assert!(matches!(
            parse_duration("ms"),
            Err(DurationError::BadNumber(_))
        ));
        assert!(matches!(
            parse_duration("1.s"),
            Err(DurationError::BadNumber(_))
        ));
        assert!(matches!(
            parse_duration(".5s"),
            Err(DurationError::BadNumber(_))
        ));
        assert!(matches!(
            parse_duration("-1s"),
            Err(DurationError::BadNumber(_))
        ));
        assert!(matches!(
            parse_duration("1.2.3s"),
            Err(DurationError::BadNumber(_))
        ));
        assert!(matches!(
            parse_duration("10 ms"),
            Err(DurationError::BadUnit { .. })
        ));
        assert!(matches!(
            parse_duration("1.5ns"),
            Err(DurationError::TooPrecise(_))
        ));
        assert!(matches!(
            parse_duration("99999999999999999999999999999999999999999s"),
            Err(DurationError::TooLarge(_))
        ));
    }

    #[test]
    fn formats_shortest() {
        assert_eq!(format_duration(Duration::ZERO), "0s");
        assert_eq!(format_duration(Duration::from_millis(10)), "10ms");
        assert_eq!(format_duration(Duration::from_millis(1500)), "1.5s");
        assert_eq!(
            format_duration(Duration::from_nanos(4_140_625)),
            "4.140625ms"
        );
        assert_eq!(format_duration(Duration::from_nanos(999)), "999ns");
    }

    proptest! {
        #[test]
        fn format_then_parse_is_identity(nanos in any::<u64>()) {
            let d = Duration::from_nanos(nanos);
            prop_assert_eq!(parse_duration(&format_duration(d)), Ok(d));
        }

        #[test]
        fn arbitrary_text_never_panics(s in "\\PC{0,24}") {
            let _ = parse_duration(&s);
        }
    }
}
