//! A run's latency histogram saved as an HdrHistogram interval log
//! (`--save-hist`), and read back (`echo-bench merge`).
//!
//! The file is the standard format that HdrHistogram's own tools read
//! (`HistogramLogProcessor`, the `hdrhistogram` crate's
//! `IntervalLogIterator`): a few header lines, then one interval line for
//! each second of the measured window, its histogram in the V2 encoding,
//! compressed, in base64. Each line starts with `Tag=HOST,` (the host name
//! of the machine that wrote the file) and its start as seconds since the
//! Unix epoch (there is no `#[BaseTime]`, so the timestamps are absolute,
//! and the files of several machines line up by their clocks);
//! `#[StartTime]` is the start of the measured window. Values are
//! latencies in nanoseconds (the max column is in milliseconds, as
//! `#[MaxValueDivisor: 1000000.000]` says). Files written before there
//! were intervals per second hold one, for the whole window, relative to
//! a `#[BaseTime]`; they read back the same.
//!
//! What a histogram does not hold (messages of stream mode, bytes, errors,
//! the parameters of the run) rides along in one comment line, the JSON
//! report that `--json` prints, after `#echo-bench-run: `. Other tools
//! skip it as a comment; `merge` needs it, and checks that it agrees with
//! the histogram.

use std::io;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use hdrhistogram::Histogram;
use hdrhistogram::serialization::interval_log::{
    IntervalLogIterator, IntervalLogWriterBuilder, LogEntry, Tag,
};
use hdrhistogram::serialization::{Deserializer, V2DeflateSerializer};

use super::record::new_histogram;
use super::report::{Interval, Report};

/// The start of the comment line that carries the run's JSON report.
pub const SUMMARY_PREFIX: &str = "echo-bench-run: ";

/// Why a histogram file could not be written or read.
#[derive(Debug, thiserror::Error)]
pub enum HistLogError {
    /// The file could not be read.
    #[error("cannot read {}: {error}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// The system's error.
        error: io::Error,
    },
    /// The file could not be written.
    #[error("cannot write {}: {error}", path.display())]
    Write {
        /// The file.
        path: PathBuf,
        /// The system's error.
        error: io::Error,
    },
    /// The file is not an interval log, or one of its histograms is not
    /// a histogram, or it was not written by `echo-bench --save-hist`.
    #[error("{}: {reason}", path.display())]
    Invalid {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
}

/// What a `--save-hist` file holds.
#[derive(Debug, Clone)]
pub struct Saved {
    /// The file it was read from.
    pub path: PathBuf,
    /// The run's report, with the file's histogram and window start.
    pub report: Report,
}

/// Writes `report` (its histogram and its figures) to `path` as an
/// interval log.
pub fn write(report: &Report, path: &Path) -> Result<(), HistLogError> {
    let bytes = encode(report).map_err(|reason| HistLogError::Invalid {
        path: path.to_path_buf(),
        reason,
    })?;
    std::fs::write(path, bytes).map_err(|error| HistLogError::Write {
        path: path.to_path_buf(),
        error,
    })
}

/// `report` as the text of an interval log: one interval for each of
/// its [`intervals`](Report::intervals), or, when it has none, one for
/// the whole window.
pub fn encode(report: &Report) -> Result<Vec<u8>, String> {
    let start = report.window_start.unwrap_or_else(SystemTime::now);
    let whole = [Interval {
        start,
        length: Duration::from_secs_f64(report.seconds.max(0.0)),
        histogram: report.histogram.clone(),
    }];
    let intervals = match report.intervals.as_slice() {
        [] => &whole[..],
        some => some,
    };
    let host = tag(&crate::http::host_name());
    let mut out = Vec::new();
    let mut serializer = V2DeflateSerializer::new();
    let mut writer = IntervalLogWriterBuilder::new()
        .add_comment("[Histogram log format version 1.3]")
        .add_comment("echo-bench latency histogram: values in nanoseconds, one interval per second of the measured window, timestamps in seconds since the Unix epoch")
        .add_comment(&format!("{SUMMARY_PREFIX}{}", report.to_json()))
        .with_start_time(start)
        .with_max_value_divisor(1e6)
        .begin_log_with(&mut out, &mut serializer)
        .map_err(|e| e.to_string())?;
    for interval in intervals {
        let at = interval
            .start
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        writer
            .write_histogram(&interval.histogram, at, interval.length, Tag::new(&host))
            .map_err(|e| format!("cannot encode the histogram: {e}"))?;
    }
    Ok(out)
}

/// `name` as an interval's tag, which cannot hold commas or white space.
fn tag(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c == ',' || c.is_whitespace() {
                '_'
            } else {
                c
            }
        })
        .collect()
}

/// Reads a file that `--save-hist` wrote.
pub fn read(path: &Path) -> Result<Saved, HistLogError> {
    let bytes = std::fs::read(path).map_err(|error| HistLogError::Read {
        path: path.to_path_buf(),
        error,
    })?;
    let report = decode(&bytes).map_err(|reason| HistLogError::Invalid {
        path: path.to_path_buf(),
        reason,
    })?;
    Ok(Saved {
        path: path.to_path_buf(),
        report,
    })
}

/// The report in the text of an interval log, with its intervals, the
/// sum of their histograms, and the start of the earliest.
pub fn decode(bytes: &[u8]) -> Result<Report, String> {
    let text = std::str::from_utf8(bytes)
        .map_err(|_| "not an HdrHistogram interval log (not text)".to_string())?;
    let summary = text
        .lines()
        .find_map(|l| l.strip_prefix('#')?.strip_prefix(SUMMARY_PREFIX))
        .ok_or("no echo-bench run in it (not written by echo-bench --save-hist)")?;
    let mut report: Report = serde_json::from_str(summary)
        .map_err(|e| format!("the echo-bench run in it does not read back: {e}"))?;

    let mut hist = new_histogram();
    let mut base = Duration::ZERO;
    let mut start: Option<Duration> = None;
    let mut intervals = 0;
    let mut over_time = Vec::new();
    let mut deserializer = Deserializer::new();
    for entry in IntervalLogIterator::new(bytes) {
        match entry {
            Ok(LogEntry::BaseTime(t)) => base = t,
            Ok(LogEntry::StartTime(_)) => {}
            Ok(LogEntry::Interval(interval)) => {
                let raw = base64::engine::general_purpose::STANDARD
                    .decode(interval.encoded_histogram())
                    .map_err(|e| format!("histogram {}: not base64: {e}", intervals + 1))?;
                let h: Histogram<u64> = deserializer
                    .deserialize(&mut raw.as_slice())
                    .map_err(|e| format!("histogram {}: {e}", intervals + 1))?;
                hist.add(&h)
                    .map_err(|e| format!("histogram {}: {e:?}", intervals + 1))?;
                let at = base + interval.start_timestamp();
                start = Some(start.map_or(at, |s| s.min(at)));
                intervals += 1;
                over_time.push(Interval {
                    start: UNIX_EPOCH + at,
                    length: interval.duration(),
                    histogram: h,
                });
            }
            Err(e) => {
                return Err(format!(
                    "not an HdrHistogram interval log: {e:?} (at the line starting at byte {})",
                    match e {
                        hdrhistogram::serialization::interval_log::LogIteratorError::ParseError {
                            offset,
                        } => offset,
                    }
                ));
            }
        }
    }
    if intervals == 0 {
        return Err("no histogram in it".into());
    }
    if report.latency_measured && hist.len() != report.samples {
        return Err(format!(
            "its histogram holds {} samples, but its run says {}",
            hist.len(),
            report.samples
        ));
    }
    report.window_start = start.map(|s| UNIX_EPOCH + s);
    over_time.sort_by_key(|i| i.start);
    report.intervals = over_time;
    Ok(report.with_histogram(hist))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bench::config::{BenchConfig, Mode};
    use crate::bench::record::Totals;

    fn report(mode: Mode, samples: &[u64]) -> Report {
        let mut totals = Totals::default();
        for &ns in samples {
            totals.hist.record(ns).unwrap();
        }
        totals.messages = samples.len() as u64;
        totals.bytes = 64 * samples.len() as u64;
        totals.errors.loss = 2;
        totals.first_error = Some("loss: no reply".into());
        let config = BenchConfig::new("udp://127.0.0.1:7".parse().unwrap())
            .mode(mode)
            .clone();
        let mut r = Report::new(&config, totals);
        r.window_start = Some(UNIX_EPOCH + Duration::from_millis(1_700_000_000_123));
        r
    }

    #[test]
    fn a_saved_run_reads_back_the_same() {
        let samples: Vec<u64> = (1..=5000).map(|i| i * 977).collect();
        let r = report(Mode::Pingpong, &samples);
        let bytes = encode(&r).unwrap();
        let text = String::from_utf8(bytes.clone()).unwrap();
        assert!(
            text.starts_with("#[Histogram log format version 1.3]\n"),
            "{text}"
        );
        assert!(text.contains("#[StartTime: 1700000000.123"), "{text}");
        assert!(!text.contains("#[BaseTime"), "absolute timestamps: {text}");
        let host = tag(&crate::http::host_name());
        assert!(
            text.contains(&format!("\nTag={host},1700000000.123,10.000,")),
            "{text}"
        );
        let back = decode(&bytes).unwrap();
        assert_eq!(back.histogram, r.histogram);
        assert_eq!(back.to_json(), r.to_json());
        assert_eq!(back.window_start, r.window_start);
    }

    /// The file of a 3-second run, recorded as a worker records.
    #[test]
    fn a_three_second_run_saves_one_tagged_interval_per_second() {
        use crate::bench::record::{LiveCounters, MeasuredWindow, Recorder};
        use std::sync::Arc;
        use std::time::Instant;
        let rec = Recorder::new(Arc::new(LiveCounters::default()));
        let to = Instant::now();
        let from = to - Duration::from_secs(3);
        rec.set_window(MeasuredWindow { from, to });
        // 10, 20 and 30 messages in the three seconds, slower each second.
        for (second, n) in [(0u64, 10u32), (1, 20), (2, 30)] {
            for i in 0..n {
                let at = from + Duration::from_secs(second) + Duration::from_millis(i as u64 * 30);
                rec.completed(at, Some(Duration::from_micros(100 * (second + 1))));
            }
        }
        let mut totals = rec.totals();
        assert_eq!(totals.seconds.len(), 3);
        let seconds = std::mem::take(&mut totals.seconds);
        let config = BenchConfig::new("127.0.0.1:7".parse().unwrap())
            .duration(Duration::from_secs(3))
            .clone();
        let mut r = Report::new(&config, totals);
        let start = UNIX_EPOCH + Duration::from_millis(1_796_637_600_250);
        r.window_start = Some(start);
        r.intervals = Interval::seconds(seconds, start, Duration::from_secs(3));
        let bytes = encode(&r).unwrap();

        // HdrHistogram's own reader sees three tagged intervals, a second
        // apart, at absolute times, each with its second's samples.
        let mut seen = Vec::new();
        for entry in IntervalLogIterator::new(&bytes) {
            match entry.unwrap() {
                LogEntry::Interval(i) => {
                    let raw = base64::engine::general_purpose::STANDARD
                        .decode(i.encoded_histogram())
                        .unwrap();
                    let h: Histogram<u64> = Deserializer::new()
                        .deserialize(&mut raw.as_slice())
                        .unwrap();
                    assert!(i.tag().is_some_and(|t| !t.is_empty()), "tagged");
                    seen.push((i.start_timestamp(), i.duration(), h.len(), h.max() / 1000));
                }
                LogEntry::BaseTime(_) => panic!("no BaseTime: the timestamps are absolute"),
                LogEntry::StartTime(t) => assert_eq!(t, Duration::from_millis(1_796_637_600_250)),
            }
        }
        let second = |s: u64| Duration::from_millis(1_796_637_600_250 + 1000 * s);
        assert_eq!(
            seen,
            [
                (second(0), Duration::from_secs(1), 10, 100),
                (second(1), Duration::from_secs(1), 20, 200),
                (second(2), Duration::from_secs(1), 30, 300),
            ]
        );
        // And it reads back as the run: the whole, and the seconds.
        let back = decode(&bytes).unwrap();
        assert_eq!((back.samples, back.messages), (60, 60));
        assert_eq!(back.window_start, Some(start));
        let counts: Vec<u64> = back.intervals.iter().map(|i| i.histogram.len()).collect();
        assert_eq!(counts, [10, 20, 30]);
    }

    #[test]
    fn an_older_file_with_one_interval_reads_as_one() {
        // As --save-hist wrote before intervals per second: a BaseTime,
        // and one interval at 0 for the whole window.
        let r = report(Mode::Pingpong, &[1000, 2000, 3000]);
        let mut out = Vec::new();
        let mut serializer = V2DeflateSerializer::new();
        let start = r.window_start.unwrap();
        let mut writer = IntervalLogWriterBuilder::new()
            .add_comment(&format!("{SUMMARY_PREFIX}{}", r.to_json()))
            .with_start_time(start)
            .with_base_time(start)
            .begin_log_with(&mut out, &mut serializer)
            .unwrap();
        writer
            .write_histogram(&r.histogram, Duration::ZERO, Duration::from_secs(10), None)
            .unwrap();
        let back = decode(&out).unwrap();
        assert_eq!(back.samples, 3);
        assert_eq!(back.window_start, Some(start));
        assert_eq!(back.intervals.len(), 1);
        assert_eq!(back.intervals[0].start, start);
        assert_eq!(back.intervals[0].length, Duration::from_secs(10));
    }

    #[test]
    fn stream_mode_saves_its_figures_without_latencies() {
        let r = report(Mode::Stream, &[]);
        let back = decode(&encode(&r).unwrap()).unwrap();
        assert_eq!(back.to_json(), r.to_json());
    }

    #[test]
    fn what_is_not_a_saved_run_says_why() {
        let r = report(Mode::Pingpong, &[1000, 2000]);
        let good = String::from_utf8(encode(&r).unwrap()).unwrap();
        let cases = [
            (String::from("hello\n"), "no echo-bench run"),
            (
                good.replace("\"samples\":2", "\"samples\":3"),
                "holds 2 samples",
            ),
            (
                good.lines()
                    .filter(|l| l.starts_with('#'))
                    .map(|l| format!("{l}\n"))
                    .collect(),
                "no histogram",
            ),
            (format!("{good}0.000,1.000,2.000,@@@@\n"), "base64"),
            (format!("{good}0.000,1.000,2.000,AAAA\n"), "histogram 2"),
            (format!("{good}garbage line\n"), "interval log"),
        ];
        for (text, word) in cases {
            let e = decode(text.as_bytes()).unwrap_err();
            assert!(e.contains(word), "{e:?} should mention {word:?}");
        }
        assert!(decode(&[0xff, 0xfe]).unwrap_err().contains("not text"));
    }
}
