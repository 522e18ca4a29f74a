//! A run's latency histogram saved as an HdrHistogram interval log
//! (`--save-hist`), and read back (`echo-bench merge`).
//!
//! The file is the standard format that HdrHistogram's own tools read
//! (`HistogramLogProcessor`, the `hdrhistogram` crate's
//! `IntervalLogIterator`): a few header lines, then one interval line for
//! the measured window, its histogram in the V2 encoding, compressed, in
//! base64. Values are latencies in nanoseconds (the max column is in
//! milliseconds, as `#[MaxValueDivisor: 1000000.000]` says).
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
    IntervalLogIterator, IntervalLogWriterBuilder, LogEntry,
};
use hdrhistogram::serialization::{Deserializer, V2DeflateSerializer};

use super::record::new_histogram;
use super::report::Report;

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

/// `report` as the text of an interval log.
pub fn encode(report: &Report) -> Result<Vec<u8>, String> {
    let start = report.window_start.unwrap_or_else(SystemTime::now);
    let mut out = Vec::new();
    let mut serializer = V2DeflateSerializer::new();
    let mut writer = IntervalLogWriterBuilder::new()
        .add_comment("[Histogram log format version 1.3]")
        .add_comment("echo-bench latency histogram: values in nanoseconds, one interval for the measured window")
        .add_comment(&format!("{SUMMARY_PREFIX}{}", report.to_json()))
        .with_start_time(start)
        .with_base_time(start)
        .with_max_value_divisor(1e6)
        .begin_log_with(&mut out, &mut serializer)
        .map_err(|e| e.to_string())?;
    writer
        .write_histogram(
            &report.histogram,
            Duration::ZERO,
            Duration::from_secs_f64(report.seconds.max(0.0)),
            None,
        )
        .map_err(|e| format!("cannot encode the histogram: {e}"))?;
    Ok(out)
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

/// The report in the text of an interval log, with the sum of its
/// intervals' histograms and the start of the earliest.
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
        assert!(text.contains("#[BaseTime: 1700000000.123"), "{text}");
        let back = decode(&bytes).unwrap();
        assert_eq!(back.histogram, r.histogram);
        assert_eq!(back.to_json(), r.to_json());
        assert_eq!(back.window_start, r.window_start);
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
