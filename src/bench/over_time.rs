//! `echo-bench merge --over-time`: the latencies second by second, from
//! the intervals of the `--save-hist` files (added up across files by the
//! wall-clock second they began in, see [`merge`](super::merge)), as rows
//! after the text report, or as the `intervals` key of the JSON one.

use std::fmt::Write as _;

use serde::Serialize;

use super::clock::rfc3339;
use super::report::{Interval, Report, fmt_us};

/// One second (one interval) of the over-time view.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct OverTimeRow {
    /// When it began, RFC 3339 in UTC: `2026-12-07T10:00:00Z`.
    pub start: String,
    /// How long it lasted, in seconds (1, or less for the last).
    pub seconds: f64,
    /// Latency samples in it: the messages (churn: operations) that
    /// completed in it; 0 in stream mode, which measures no latency.
    pub messages: u64,
    /// Median latency, in microseconds.
    pub p50_us: f64,
    /// 90th percentile.
    pub p90_us: f64,
    /// 99th percentile.
    pub p99_us: f64,
    /// Largest latency.
    pub max_us: f64,
}

impl OverTimeRow {
    fn new(interval: &Interval) -> OverTimeRow {
        let h = &interval.histogram;
        let us = |ns: u64| (ns as f64 / 100.0).round() / 10.0;
        let at = |q: f64| {
            if h.is_empty() {
                0.0
            } else {
                us(h.value_at_quantile(q))
            }
        };
        OverTimeRow {
            start: rfc3339(interval.start),
            seconds: (interval.length.as_secs_f64() * 1000.0).round() / 1000.0,
            messages: h.len(),
            p50_us: at(0.5),
            p90_us: at(0.9),
            p99_us: at(0.99),
            max_us: if h.is_empty() { 0.0 } else { us(h.max()) },
        }
    }
}

/// The report's intervals as rows, in order.
pub fn rows(report: &Report) -> Vec<OverTimeRow> {
    report.intervals.iter().map(OverTimeRow::new).collect()
}

/// The text report, then one line for each interval.
pub fn to_text(report: &Report) -> String {
    let mut out = report.to_text();
    let rows = rows(report);
    let _ = writeln!(
        out,
        "  over time   {} interval(s), by wall-clock second (UTC)",
        rows.len()
    );
    for r in &rows {
        let _ = writeln!(
            out,
            "    {}  {:>9} msgs  p50 {:>9}  p90 {:>9}  p99 {:>9}  max {:>9}",
            r.start,
            r.messages,
            fmt_us(r.p50_us),
            fmt_us(r.p90_us),
            fmt_us(r.p99_us),
            fmt_us(r.max_us),
        );
    }
    out
}

/// The JSON report with one more key, `intervals`: the rows, in order.
pub fn to_json(report: &Report) -> String {
    let mut value = match serde_json::to_value(report) {
        Ok(v) => v,
        Err(e) => return format!("{{\"error\":\"{e}\"}}"),
    };
    if let (Some(object), Ok(rows)) = (value.as_object_mut(), serde_json::to_value(rows(report))) {
        object.insert("intervals".to_string(), rows);
    }
    value.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bench::config::BenchConfig;
    use crate::bench::record::{Totals, new_histogram};
    use std::time::{Duration, UNIX_EPOCH};

    #[test]
    fn each_interval_is_a_row_with_its_own_percentiles() {
        let mut slow = new_histogram();
        let mut fast = new_histogram();
        for i in 1..=100u64 {
            fast.record(i * 1_000).unwrap();
            slow.record(i * 100_000).unwrap();
        }
        let mut totals = Totals::default();
        totals.hist.add(&fast).unwrap();
        totals.hist.add(&slow).unwrap();
        totals.messages = 200;
        let config = BenchConfig::new("127.0.0.1:7".parse().unwrap());
        let mut report = Report::new(&config, totals);
        let start = UNIX_EPOCH + Duration::from_secs(1_796_637_600);
        report.intervals = Interval::seconds(vec![fast, slow], start, Duration::from_millis(1500));
        let rows = rows(&report);
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[0].start, "2026-12-07T10:00:00Z");
        assert_eq!(rows[1].start, "2026-12-07T10:00:01Z");
        assert_eq!((rows[0].seconds, rows[1].seconds), (1.0, 0.5));
        assert_eq!((rows[0].messages, rows[1].messages), (100, 100));
        assert_eq!((rows[0].p50_us, rows[0].max_us), (50.0, 100.0));
        assert!((rows[1].p99_us - 9900.0).abs() <= 10.0, "{:?}", rows[1]);

        let text = to_text(&report);
        assert!(text.starts_with(&report.to_text()), "{text}");
        assert!(text.contains("over time   2 interval(s)"), "{text}");
        assert!(
            text.contains("2026-12-07T10:00:01Z        100 msgs"),
            "{text}"
        );

        let v: serde_json::Value = serde_json::from_str(&to_json(&report)).unwrap();
        assert_eq!(v["messages"], 200);
        assert_eq!(v["intervals"][1]["start"], "2026-12-07T10:00:01Z");
        assert_eq!(v["intervals"][1]["messages"], 100);
        assert_eq!(v["intervals"].as_array().unwrap().len(), 2);
    }
}
