//! Parsing of the units users write: Kubernetes quantities (`512Mi`, `300m`) and durations (`5m`, `1m30s`).
//!
//! Both are bounded here, where they are parsed, so that no later arithmetic on them can overflow:
//! a duration is at most [`MAX_DURATION`] (it is added to a clock), a quantity is finite and at
//! most [`MAX_QUANTITY`] in magnitude (what Kubernetes can hold in a 64-bit value).

use std::time::Duration;

/// The longest duration accepted: 24 hours. Longer timeouts are typos, and a clock plus an
/// unbounded duration overflows.
pub const MAX_DURATION: Duration = Duration::from_secs(24 * 60 * 60);

/// The largest quantity accepted, in base units: 8Ei (2^63), the most Kubernetes stores.
pub const MAX_QUANTITY: f64 = 9_223_372_036_854_775_808.0;

/// Why a text is not a duration.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum DurationError {
    #[error("not a duration")]
    Malformed,
    #[error("too long: a duration is at most 24h")]
    TooLong,
    #[error("a duration must be longer than zero")]
    Zero,
}

impl DurationError {
    /// What to write instead.
    pub fn fix(self) -> &'static str {
        match self {
            DurationError::Malformed => "write it like `5m`, `90s` or `1m30s`",
            DurationError::TooLong => "use at most 24h, e.g. `10m` or `2h`",
            DurationError::Zero => "use e.g. `5m`",
        }
    }
}

/// Why a text is not a quantity Kubernetes accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum QuantityError {
    #[error("not a Kubernetes quantity")]
    Malformed,
    #[error("too large: a quantity is at most 8Ei")]
    TooLarge,
}

/// The value of a Kubernetes quantity in base units (cores, bytes).
///
/// Accepts what the API server accepts: a decimal number with an optional binary suffix
/// (`Ki` … `Ei`), decimal suffix (`n`, `u`, `m`, `k`, `M`, `G`, `T`, `P`, `E`) or exponent (`1e3`).
/// The value is finite and at most [`MAX_QUANTITY`] in magnitude; it may be negative.
pub fn parse_quantity(text: &str) -> Result<f64, QuantityError> {
    let text = text.trim();
    let number_end = text
        .char_indices()
        .find(|&(i, c)| !(c.is_ascii_digit() || c == '.' || (i == 0 && (c == '+' || c == '-'))))
        .map_or(text.len(), |(i, _)| i);
    let (number, suffix) = text.split_at(number_end);
    let digits = number.trim_start_matches(['+', '-']);
    if digits.is_empty() || digits == "." || digits.matches('.').count() > 1 {
        return Err(QuantityError::Malformed);
    }
    let value: f64 = number.parse().map_err(|_| QuantityError::Malformed)?;
    let factor = match suffix {
        "" => 1.0,
        "Ki" => 1024f64,
        "Mi" => 1024f64.powi(2),
        "Gi" => 1024f64.powi(3),
        "Ti" => 1024f64.powi(4),
        "Pi" => 1024f64.powi(5),
        "Ei" => 1024f64.powi(6),
        "n" => 1e-9,
        "u" => 1e-6,
        "m" => 1e-3,
        "k" => 1e3,
        "M" => 1e6,
        "G" => 1e9,
        "T" => 1e12,
        "P" => 1e15,
        "E" => 1e18,
        exponent if exponent.starts_with(['e', 'E']) => 10f64.powi(parse_exponent(&exponent[1..])?),
        _ => return Err(QuantityError::Malformed),
    };
    if value == 0.0 {
        // `0e999999` is zero, not zero times infinity.
        return Ok(0.0);
    }
    let scaled = value * factor;
    if scaled.is_finite() && scaled.abs() <= MAX_QUANTITY {
        Ok(scaled)
    } else {
        Err(QuantityError::TooLarge)
    }
}

/// The `N` of `eN`: a signed integer. One past `i32` saturates, which makes the value infinite
/// (or zero) and so too large (or zero), rather than malformed.
fn parse_exponent(text: &str) -> Result<i32, QuantityError> {
    let digits = text.strip_prefix(['+', '-']).unwrap_or(text);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(QuantityError::Malformed);
    }
    let negative = text.starts_with('-');
    Ok(match text.parse::<i32>() {
        Ok(power) => power,
        Err(_) if negative => i32::MIN,
        Err(_) => i32::MAX,
    })
}

/// Parses `90s`, `5m`, `1m30s`, `2h`, `500ms`, or a bare number of seconds: more than zero and
/// at most [`MAX_DURATION`].
pub fn parse_duration(text: &str) -> Result<Duration, DurationError> {
    let text = text.trim();
    if text.is_empty() {
        return Err(DurationError::Malformed);
    }
    let mut millis: u64 = 0;
    if text.bytes().all(|b| b.is_ascii_digit()) {
        millis = amount_millis(text, 1000)?;
    } else {
        // Check the whole text's shape first, so `99999999999999999999x` is malformed, not long.
        let steps = duration_steps(text).ok_or(DurationError::Malformed)?;
        for (amount, unit_millis) in steps {
            let step = amount_millis(amount, unit_millis)?;
            millis = millis.checked_add(step).ok_or(DurationError::TooLong)?;
        }
    }
    let duration = Duration::from_millis(millis);
    if duration > MAX_DURATION {
        Err(DurationError::TooLong)
    } else if duration.is_zero() {
        Err(DurationError::Zero)
    } else {
        Ok(duration)
    }
}

/// Splits `1m30s` into `[("1", 60_000), ("30", 1000)]`: digits, then a unit, repeated.
fn duration_steps(text: &str) -> Option<Vec<(&str, u64)>> {
    let mut steps = Vec::new();
    let mut rest = text;
    while !rest.is_empty() {
        let digits_end = rest.find(|c: char| !c.is_ascii_digit())?;
        if digits_end == 0 {
            return None;
        }
        let (amount, after) = rest.split_at(digits_end);
        let unit_end = after
            .find(|c: char| c.is_ascii_digit())
            .unwrap_or(after.len());
        let (unit, next) = after.split_at(unit_end);
        let unit_millis = match unit {
            "ms" => 1,
            "s" => 1000,
            "m" => 60 * 1000,
            "h" => 60 * 60 * 1000,
            _ => return None,
        };
        steps.push((amount, unit_millis));
        rest = next;
    }
    Some(steps)
}

/// `amount` (ASCII digits) of a unit of `unit_millis`, in milliseconds; too long if it overflows.
fn amount_millis(amount: &str, unit_millis: u64) -> Result<u64, DurationError> {
    amount
        .parse::<u64>()
        .ok()
        .and_then(|amount| amount.checked_mul(unit_millis))
        .ok_or(DurationError::TooLong)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn quantities() {
        assert_eq!(parse_quantity("300m"), Ok(0.3));
        assert_eq!(parse_quantity("1"), Ok(1.0));
        assert_eq!(parse_quantity("1.5"), Ok(1.5));
        assert_eq!(parse_quantity("512Mi"), Ok(512.0 * 1024.0 * 1024.0));
        assert_eq!(parse_quantity("1Gi"), Ok(1024f64.powi(3)));
        assert_eq!(parse_quantity("1e3"), Ok(1000.0));
        assert_eq!(parse_quantity("2k"), Ok(2000.0));
        assert_eq!(parse_quantity("-2"), Ok(-2.0));
        assert_eq!(parse_quantity("8Ei"), Ok(MAX_QUANTITY));
        for bad in [
            "", "Mi", "12MB", "1.2.3", "abc", "-", "5 Mi", "1mi", ".", "+.", "1e", "1e+", "1ex",
            "NaN", "inf", "1e3Mi", "9e18Ei",
        ] {
            assert_eq!(
                parse_quantity(bad),
                Err(QuantityError::Malformed),
                "{bad:?}"
            );
        }
    }

    /// Fuzzing found these: each was accepted as infinity (or NaN) and reached the API server.
    #[test]
    fn huge_quantities_are_too_large_not_infinite() {
        for huge in [
            "1e999999",
            "1e99999999999999999999",
            "9000000000000000000Ei",
            "9Ei",
            "8.000001Ei",
            "-9Ei",
            &"9".repeat(400),
        ] {
            assert_eq!(
                parse_quantity(huge),
                Err(QuantityError::TooLarge),
                "{huge:?}"
            );
        }
        assert_eq!(parse_quantity("0e999999"), Ok(0.0));
        assert_eq!(parse_quantity("1e-999999"), Ok(0.0));
        assert_eq!(parse_quantity("1e-99999999999999999999"), Ok(0.0));
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("300"), Ok(Duration::from_secs(300)));
        assert_eq!(parse_duration("5m"), Ok(Duration::from_secs(300)));
        assert_eq!(parse_duration("1m30s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("2h"), Ok(Duration::from_secs(7200)));
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("24h"), Ok(MAX_DURATION));
        assert_eq!(parse_duration("86400"), Ok(MAX_DURATION));
        for bad in [
            "",
            "m",
            "5x",
            "1.5m",
            "-3s",
            "s5",
            "1m30",
            "+5s",
            "5 m",
            "99999999999999999999x",
        ] {
            assert_eq!(
                parse_duration(bad),
                Err(DurationError::Malformed),
                "{bad:?}"
            );
        }
        for zero in ["0", "0s", "0h0m", "000ms"] {
            assert_eq!(parse_duration(zero), Err(DurationError::Zero), "{zero:?}");
        }
    }

    /// Real-cluster finding: `--timeout 18446744073709551615s` passed, and adding it to the
    /// clock panicked after every object was applied. Review found that the parser itself
    /// panicked on `10000000000000000h` and `307445734561825861m` (overflowing multiplication;
    /// debug builds panic, release builds wrapped to a wrong timeout) and, in every build, on
    /// `18446744073709551615s1s` (overflowing `Duration` sum), also in `rollout.timeout`.
    #[test]
    fn long_durations_are_refused_without_overflow() {
        for long in [
            "18446744073709551615s",
            "18446744073709551615",
            "10000000000000000h",
            "307445734561825861m",
            "18446744073709551615s1s",
            "18446744073709551616s",
            "99999999999999999999999",
            "5124095576030432h",
            "1000000000000000h",
            "18446744073709551615ms18446744073709551615ms",
            "24h1ms",
            "86401",
            "1441m",
        ] {
            assert_eq!(
                parse_duration(long),
                Err(DurationError::TooLong),
                "{long:?}"
            );
        }
        assert!(DurationError::TooLong.to_string().contains("at most 24h"));
    }

    /// `1h2m3s4ms`-style text for a duration, leaving out the zero parts.
    fn written(duration: Duration) -> String {
        let millis = duration.as_millis();
        let parts = [
            (millis / 3_600_000, "h"),
            (millis / 60_000 % 60, "m"),
            (millis / 1000 % 60, "s"),
            (millis % 1000, "ms"),
        ];
        parts
            .iter()
            .filter(|(amount, _)| *amount > 0)
            .map(|(amount, unit)| format!("{amount}{unit}"))
            .collect()
    }

    proptest! {
        #[test]
        fn written_durations_round_trip(millis in 1u64..=86_400_000) {
            let duration = Duration::from_millis(millis);
            prop_assert_eq!(parse_duration(&written(duration)), Ok(duration));
            if millis % 1000 == 0 {
                prop_assert_eq!(parse_duration(&(millis / 1000).to_string()), Ok(duration));
            }
        }

        #[test]
        fn longer_than_a_day_is_too_long(millis in 86_400_001u64..=u64::MAX) {
            let written = written(Duration::from_millis(millis));
            prop_assert_eq!(parse_duration(&written), Err(DurationError::TooLong));
        }

        #[test]
        fn any_duration_text_is_bounded(text in "[0-9hms]{0,40}|\\PC{0,40}") {
            if let Ok(duration) = parse_duration(&text) {
                prop_assert!(!duration.is_zero() && duration <= MAX_DURATION);
            }
        }

        #[test]
        fn any_quantity_is_finite_and_bounded(text in "[-+]?[0-9.]{0,30}([eE][-+]?[0-9]{0,12}|[KMGTPE]i?|[num])?|\\PC{0,30}") {
            if let Ok(value) = parse_quantity(&text) {
                prop_assert!(value.is_finite() && value.abs() <= MAX_QUANTITY, "{} -> {}", text, value);
            }
        }

        #[test]
        fn whole_numbers_are_themselves(number in 0u64..=(1 << 53)) {
            prop_assert_eq!(parse_quantity(&number.to_string()), Ok(number as f64));
        }
    }
}
