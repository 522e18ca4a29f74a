//! Wall-clock instants, as people write them: `--start-at TIME` read from
//! RFC 3339 (`2026-12-07T10:00:00Z`, `2026-12-07T11:00:00.5+01:00`) or
//! from Unix seconds (`@1796637600`, `@1796637600.25`), and the over-time
//! view's seconds written back as RFC 3339 in UTC. By hand: the proleptic
//! Gregorian calendar, no leap seconds, as Unix time counts.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// How far in the past a start time may be (the time it takes to type
/// the command and start it).
pub const START_AT_PAST: Duration = Duration::from_secs(1);

/// How far in the future a start time may be.
pub const START_AT_FUTURE: Duration = Duration::from_secs(24 * 3600);

/// Why a `--start-at` time was refused.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum StartAtError {
    /// Neither RFC 3339 nor `@` and Unix seconds.
    #[error(
        "'{0}' is not a time: give RFC 3339, as 2026-12-07T10:00:00Z, or Unix seconds, as @1796637600"
    )]
    Malformed(String),
    /// More than [`START_AT_PAST`] ago.
    #[error("'{given}' is {ago:.1} s in the past")]
    Past {
        /// The time as given.
        given: String,
        /// How long ago it was, in seconds.
        ago: f64,
    },
    /// More than [`START_AT_FUTURE`] ahead.
    #[error("'{given}' is more than 24 h ahead ({ahead:.0} s)")]
    TooFar {
        /// The time as given.
        given: String,
        /// How far ahead it is, in seconds.
        ahead: f64,
    },
}

/// Reads a start time, and checks it against `now`: no more than a second
/// in the past, no more than 24 hours ahead.
pub fn parse_start_at(s: &str, now: SystemTime) -> Result<SystemTime, StartAtError> {
    let at = parse_time(s.trim()).ok_or_else(|| StartAtError::Malformed(s.to_string()))?;
    check(at, s, now).map(|()| at)
}

/// Checks a start time against `now`, as [`parse_start_at`] does (its
/// errors give the time in RFC 3339).
pub fn check_start_at(at: SystemTime, now: SystemTime) -> Result<(), StartAtError> {
    check(at, &rfc3339(at), now)
}

/// `at`, written `given`, is at most a second ago and a day ahead.
fn check(at: SystemTime, given: &str, now: SystemTime) -> Result<(), StartAtError> {
    match at.duration_since(now) {
        Ok(ahead) if ahead > START_AT_FUTURE => Err(StartAtError::TooFar {
            given: given.to_string(),
            ahead: ahead.as_secs_f64(),
        }),
        Err(e) if e.duration() > START_AT_PAST => Err(StartAtError::Past {
            given: given.to_string(),
            ago: e.duration().as_secs_f64(),
        }),
        _ => Ok(()),
    }
}

/// `@SECONDS[.FRACTION]` or RFC 3339, as an instant (none before 1970).
fn parse_time(s: &str) -> Option<SystemTime> {
    if let Some(unix) = s.strip_prefix('@') {
        let (whole, nanos) = seconds_and_fraction(unix)?;
        return Some(UNIX_EPOCH + Duration::new(whole, nanos));
    }
    let b = s.as_bytes();
    // YYYY-MM-DDTHH:MM:SS, then [.fraction], then Z or ±HH:MM.
    if b.len() < 20 || b[4] != b'-' || b[7] != b'-' || b[13] != b':' || b[16] != b':' {
        return None;
    }
    if !matches!(b[10], b'T' | b't' | b' ') {
        return None;
    }
    let num = |from: usize, to: usize| -> Option<u64> { digits(s.get(from..to)?) };
    let (year, month, day) = (num(0, 4)?, num(5, 7)?, num(8, 10)?);
    let (hour, minute, second) = (num(11, 13)?, num(14, 16)?, num(17, 19)?);
    if !(1..=12).contains(&month)
        || day == 0
        || day > days_in_month(year, month)
        || hour > 23
        || minute > 59
        || second > 59
    {
        return None;
    }
    let rest = &s[19..];
    let (nanos, zone) = match rest.strip_prefix('.') {
        Some(frac) => {
            let end = frac
                .find(|c: char| !c.is_ascii_digit())
                .unwrap_or(frac.len());
            (fraction(&frac[..end])?, &frac[end..])
        }
        None => (0, rest),
    };
    let offset: i64 = match zone.as_bytes() {
        [b'Z' | b'z'] => 0,
        [sign @ (b'+' | b'-'), h1, h2, b':', m1, m2] => {
            let hh = digits(std::str::from_utf8(&[*h1, *h2]).ok()?)?;
            let mm = digits(std::str::from_utf8(&[*m1, *m2]).ok()?)?;
            if hh > 23 || mm > 59 {
                return None;
            }
            let secs = (hh * 3600 + mm * 60) as i64;
            if *sign == b'+' { secs } else { -secs }
        }
        _ => return None,
    };
    let local =
        days_from_civil(year, month, day) * 86_400 + (hour * 3600 + minute * 60 + second) as i64;
    let utc = u64::try_from(local - offset).ok()?;
    Some(UNIX_EPOCH + Duration::new(utc, nanos))
}

/// `t` as RFC 3339 in UTC, to the second: `2026-12-07T10:00:00Z`.
pub fn rfc3339(t: SystemTime) -> String {
    let secs = t.duration_since(UNIX_EPOCH).unwrap_or_default().as_secs();
    let (days, rem) = (secs / 86_400, secs % 86_400);
    let (year, month, day) = civil_from_days(days as i64);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem / 60 % 60,
        rem % 60
    )
}

/// ASCII digits only, as a number.
fn digits(s: &str) -> Option<u64> {
    if s.is_empty() || s.len() > 18 || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

/// `SECONDS[.FRACTION]`: whole seconds and nanoseconds.
fn seconds_and_fraction(s: &str) -> Option<(u64, u32)> {
    match s.split_once('.') {
        Some((whole, frac)) => Some((digits(whole)?, fraction(frac)?)),
        None => Some((digits(s)?, 0)),
    }
}

/// The digits after a decimal point, as nanoseconds (past the ninth, ignored).
fn fraction(s: &str) -> Option<u32> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let mut nanos = 0u32;
    for b in s.bytes().chain(std::iter::repeat(b'0')).take(9) {
        nanos = nanos * 10 + u32::from(b - b'0');
    }
    Some(nanos)
}

fn is_leap(year: u64) -> bool {
    (year.is_multiple_of(4) && !year.is_multiple_of(100)) || year.is_multiple_of(400)
}

fn days_in_month(year: u64, month: u64) -> u64 {
    match month {
        2 if is_leap(year) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a date (Howard Hinnant's `days_from_civil`).
fn days_from_civil(year: u64, month: u64, day: u64) -> i64 {
    let y = year as i64 - i64::from(month <= 2);
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = month as i64;
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + day as i64 - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The date of a day since 1970-01-01 (Hinnant's `civil_from_days`).
fn civil_from_days(days: i64) -> (i64, u64, u64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u64;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u64;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(secs: u64, nanos: u32) -> SystemTime {
        UNIX_EPOCH + Duration::new(secs, nanos)
    }

    #[test]
    fn rfc3339_and_unix_seconds_read_as_the_same_instant() {
        let now = at(1_796_630_000, 0);
        let want = at(1_796_637_600, 0);
        for s in [
            "2026-12-07T10:00:00Z",
            "2026-12-07t10:00:00z",
            "2026-12-07 10:00:00Z",
            "2026-12-07T11:30:00+01:30",
            "2026-12-07T05:00:00-05:00",
            "@1796637600",
            " @1796637600 ",
        ] {
            assert_eq!(parse_start_at(s, now), Ok(want), "{s}");
        }
        assert_eq!(
            parse_start_at("2026-12-07T10:00:00.25Z", now),
            Ok(at(1_796_637_600, 250_000_000))
        );
        assert_eq!(
            parse_start_at("@1796637600.000000001", now),
            Ok(at(1_796_637_600, 1))
        );
        // A leap day, and the turn of a century that is not one.
        assert_eq!(
            parse_time("2028-02-29T00:00:00Z"),
            Some(at(1_835_395_200, 0))
        );
        assert_eq!(parse_time("2100-02-29T00:00:00Z"), None);
    }

    #[test]
    fn what_is_not_a_time_is_malformed() {
        let now = at(1_796_630_000, 0);
        for s in [
            "",
            "tomorrow",
            "@",
            "@-5",
            "@1e9",
            "@12.",
            "2026-12-07",
            "2026-12-07T10:00:00",
            "2026-12-07T10:00Z",
            "2026-13-07T10:00:00Z",
            "2026-11-31T10:00:00Z",
            "2026-12-07T24:00:00Z",
            "2026-12-07T10:00:60Z",
            "2026-12-07T10:00:00+1:00",
            "2026-12-07T10:00:00.Z",
            "2026-12-07T10:00:00Zjunk",
            "+026-12-07T10:00:00Z",
        ] {
            assert!(
                matches!(parse_start_at(s, now), Err(StartAtError::Malformed(_))),
                "{s:?}: {:?}",
                parse_start_at(s, now)
            );
        }
        let e = parse_start_at("soon", now).unwrap_err().to_string();
        assert!(e.contains("'soon'") && e.contains("@1796637600"), "{e}");
    }

    #[test]
    fn a_start_long_past_or_too_far_ahead_is_refused() {
        let now = at(1_796_637_600, 0);
        assert_eq!(
            parse_start_at("@1796637599.5", now),
            Ok(at(1_796_637_599, 500_000_000))
        );
        let past = parse_start_at("@1796637590", now).unwrap_err();
        assert!(matches!(past, StartAtError::Past { .. }), "{past:?}");
        assert!(past.to_string().contains("10.0 s in the past"), "{past}");
        let day = 24 * 3600;
        assert!(parse_start_at(&format!("@{}", 1_796_637_600 + day), now).is_ok());
        let far = parse_start_at(&format!("@{}", 1_796_637_601 + day), now).unwrap_err();
        assert!(matches!(far, StartAtError::TooFar { .. }), "{far:?}");
        let e = check_start_at(at(1_796_637_500, 0), now).unwrap_err();
        assert_eq!(
            e.to_string(),
            "'2026-12-07T09:58:20Z' is 100.0 s in the past"
        );
    }

    #[test]
    fn seconds_are_written_as_rfc3339_in_utc() {
        assert_eq!(
            rfc3339(at(1_796_637_600, 999_000_000)),
            "2026-12-07T10:00:00Z"
        );
        assert_eq!(rfc3339(UNIX_EPOCH), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(at(951_782_400, 0)), "2000-02-29T00:00:00Z");
        for secs in [0, 951_782_400, 1_796_637_600, 4_102_444_800 + 86_399] {
            assert_eq!(parse_time(&rfc3339(at(secs, 0))), Some(at(secs, 0)));
        }
    }
}
