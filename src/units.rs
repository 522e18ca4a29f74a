//! Parsing of the durations and sizes users type on the command line.
//!
//! Durations: a number with a unit, `500ms`, `30s`, `2m`, `1h`, `1.5s`, or
//! several added up, `1h30m`, `2m 30s`; a bare number means seconds. Sizes: a number of bytes with an optional
//! binary multiplier, `128`, `64k`, `64KiB`, `1M`, `1MiB` (`k`, `K`, `KB` and
//! `KiB` are all 1024, as in iperf3). Both parsers reject anything else with a
//! message that says what was expected, and never panic, whatever the input.
//!
//! ```
//! use std::time::Duration;
//! use echoes::units::{format_duration, parse_duration, parse_size};
//!
//! assert_eq!(parse_duration("1m30s"), Ok(Duration::from_secs(90)));
//! assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
//! assert_eq!(parse_size("64KiB"), Ok(65536));
//! assert!(parse_size("64 apples").is_err());
//! assert_eq!(format_duration(Duration::from_millis(1500)), "1500ms"); // reads back the same
//! assert_eq!(format_duration(Duration::from_secs(120)), "120s");
//! ```

use std::time::Duration;

/// Why a duration or size did not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UnitError {
    /// The text was not a number followed by a known unit.
    #[error("invalid {what} '{input}': expected {expected}")]
    Malformed {
        /// "duration" or "size".
        what: &'static str,
        /// The text as given.
        input: String,
        /// What a valid value looks like.
        expected: &'static str,
    },
    /// The value does not fit.
    #[error("{what} '{input}' is too large")]
    TooLarge {
        /// "duration" or "size".
        what: &'static str,
        /// The text as given.
        input: String,
    },
}

const DURATION_FORM: &str = "a number with a unit, like 500ms, 30s, 2m, 1h or 1h30m";
const SIZE_FORM: &str = "a number of bytes, like 128, 64KiB or 1M";

/// Parses a duration such as `500ms`, `30s`, `2m`, `1h`, `1.5` (seconds),
/// or a sum of them, `1h30m`, `1m 30s` (largest unit first or not: the
/// parts are added).
pub fn parse_duration(input: &str) -> Result<Duration, UnitError> {
    let malformed = || UnitError::Malformed {
        what: "duration",
        input: input.to_string(),
        expected: DURATION_FORM,
    };
    let mut rest = input.trim();
    if rest.is_empty() {
        return Err(malformed());
    }
    let mut nanos = 0.0f64;
    let mut parts = 0;
    while !rest.is_empty() {
        let (number, after) = split_number(rest).ok_or_else(malformed)?;
        let unit_len = after
            .find(|c: char| c.is_ascii_digit() || c == '.' || c.is_whitespace())
            .unwrap_or(after.len());
        let (unit, after) = after.split_at(unit_len);
        // A bare number is seconds, but only on its own: `1h30` is a typo.
        if unit.is_empty() && (parts > 0 || !after.trim().is_empty()) {
            return Err(malformed());
        }
        let value: f64 = number.parse().map_err(|_| malformed())?;
        nanos += value * unit_nanos(unit).ok_or_else(malformed)?;
        parts += 1;
        rest = after.trim_start();
    }
    if !nanos.is_finite() || nanos < 0.0 {
        return Err(malformed());
    }
    // A year is far beyond any timeout anyone means; larger values are typos.
    if nanos > 366.0 * 86400e9 {
        return Err(UnitError::TooLarge {
            what: "duration",
            input: input.to_string(),
        });
    }
    Ok(Duration::from_nanos(nanos.round() as u64))
}

/// Nanoseconds in one `unit`; the empty unit is seconds.
fn unit_nanos(unit: &str) -> Option<f64> {
    Some(match unit {
        "ns" => 1.0,
        "us" | "µs" => 1e3,
        "ms" => 1e6,
        "" | "s" | "sec" | "secs" => 1e9,
        "m" | "min" | "mins" => 60e9,
        "h" | "hr" | "hrs" => 3600e9,
        "d" | "day" | "days" => 86400e9,
        _ => return None,
    })
}

/// Parses a size in bytes such as `128`, `64k`, `64KiB` or `1M`.
pub fn parse_size(input: &str) -> Result<u64, UnitError> {
    let malformed = || UnitError::Malformed {
        what: "size",
        input: input.to_string(),
        expected: SIZE_FORM,
    };
    let (number, unit) = split_number(input.trim()).ok_or_else(malformed)?;
    let multiplier: u64 = match unit.to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kb" | "kib" => 1 << 10,
        "m" | "mb" | "mib" => 1 << 20,
        "g" | "gb" | "gib" => 1 << 30,
        _ => return Err(malformed()),
    };
    let value: u64 = number.parse().map_err(|_| malformed())?;
    value
        .checked_mul(multiplier)
        .ok_or_else(|| UnitError::TooLarge {
            what: "size",
            input: input.to_string(),
        })
}

/// Splits `"1.5ms"` into `("1.5", "ms")`; `None` when there is no number.
fn split_number(s: &str) -> Option<(&str, &str)> {
    let end = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(s.len());
    let (number, unit) = s.split_at(end);
    if number.is_empty() || number == "." {
        return None;
    }
    Some((number, unit.trim_start()))
}

/// Formats a duration the way [`parse_duration`] reads it back, e.g. `250ms`.
pub fn format_duration(d: Duration) -> String {
    let ms = d.as_millis();
    if !d.subsec_nanos().is_multiple_of(1_000_000) {
        format!("{}us", d.as_micros())
    } else if !ms.is_multiple_of(1000) {
        format!("{ms}ms")
    } else {
        format!("{}s", d.as_secs())
    }
}

/// Formats a size the way [`parse_size`] reads it back: in the largest
/// binary unit that divides it, e.g. `64KiB`, `1MiB`, `100`.
pub fn format_size(n: u64) -> String {
    let units = [(30, "GiB"), (20, "MiB"), (10, "KiB")];
    match units
        .iter()
        .find(|(shift, _)| n != 0 && n.trailing_zeros() >= *shift)
    {
        Some((shift, unit)) => format!("{}{unit}", n >> shift),
        None => n.to_string(),
    }
}

/// A size for a message: as [`format_size`] writes it, with `bytes` after
/// a bare number (`64MiB`, `1536 bytes`), as limit messages say a
/// duration as `30s`.
pub fn describe_size(n: u64) -> String {
    let shown = format_size(n);
    if shown.bytes().all(|b| b.is_ascii_digit()) {
        format!("{shown} bytes")
    } else {
        shown
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_are_formatted_in_the_largest_unit_that_divides_them() {
        for (n, shown) in [
            (0, "0"),
            (100, "100"),
            (1536, "1536"),
            (64 << 10, "64KiB"),
            (1 << 20, "1MiB"),
            (16 << 20, "16MiB"),
            (3 << 30, "3GiB"),
        ] {
            assert_eq!(format_size(n), shown);
            assert_eq!(parse_size(shown), Ok(n));
        }
        assert_eq!(describe_size(64 << 20), "64MiB");
        assert_eq!(describe_size(1536), "1536 bytes");
    }

    #[test]
    fn durations() {
        let ok = [
            ("500ms", Duration::from_millis(500)),
            ("30s", Duration::from_secs(30)),
            ("30", Duration::from_secs(30)),
            ("2m", Duration::from_secs(120)),
            ("1h", Duration::from_secs(3600)),
            ("1.5s", Duration::from_millis(1500)),
            ("0", Duration::ZERO),
            ("250us", Duration::from_micros(250)),
            (" 10 ms ", Duration::from_millis(10)),
            ("1h30m", Duration::from_secs(5400)),
            ("1m 30s", Duration::from_secs(90)),
            ("1m30.5s", Duration::from_millis(90_500)),
            ("2d", Duration::from_secs(2 * 86400)),
            ("1s500ms", Duration::from_millis(1500)),
        ];
        for (input, want) in ok {
            assert_eq!(parse_duration(input), Ok(want), "{input}");
        }
        for bad in [
            "", "s", "ms", "-1s", "1x", "1.2.3s", "abc", "1e3s", ".", "nan", "1h30", "1h 30",
            "1hh", "1h-30m", "30 s x",
        ] {
            assert!(parse_duration(bad).is_err(), "{bad} should be rejected");
        }
        assert!(matches!(
            parse_duration("99999999h"),
            Err(UnitError::TooLarge { .. })
        ));
    }

    #[test]
    fn sizes() {
        let ok = [
            ("128", 128),
            ("64k", 65536),
            ("64KiB", 65536),
            ("64KB", 65536),
            ("1M", 1 << 20),
            ("2GiB", 2 << 30),
            ("0", 0),
        ];
        for (input, want) in ok {
            assert_eq!(parse_size(input), Ok(want), "{input}");
        }
        for bad in ["", "k", "1.5k", "-1", "12q", "0x10"] {
            assert!(parse_size(bad).is_err(), "{bad} should be rejected");
        }
        assert!(matches!(
            parse_size("99999999999999999999"),
            Err(UnitError::Malformed { .. })
        ));
        assert!(matches!(
            parse_size("99999999999G"),
            Err(UnitError::TooLarge { .. })
        ));
    }

    #[test]
    fn durations_round_trip() {
        for d in [
            Duration::from_millis(250),
            Duration::from_secs(30),
            Duration::from_micros(1500),
        ] {
            assert_eq!(parse_duration(&format_duration(d)), Ok(d));
        }
    }
}
