//! The latency distribution as an SVG, written by hand.
//!
//! It is the percentile curve HdrHistogram's plotter draws: latency up the
//! y axis, percentile along an x axis scaled as `log10(1 / (1 - q))`, so
//! 0%, 90%, 99%, 99.9%, 99.99% ... are evenly spaced and the tail, where
//! the trouble is, gets as much room as the body.

use std::fmt::Write as _;
use std::io;
use std::path::Path;

use hdrhistogram::Histogram;

use super::report::{Report, fmt_us};

const WIDTH: f64 = 860.0;
const HEIGHT: f64 = 520.0;
const LEFT: f64 = 80.0;
const RIGHT: f64 = 30.0;
const TOP: f64 = 60.0;
const BOTTOM: f64 = 70.0;
/// Points along the curve.
const POINTS: usize = 400;

/// Writes the latency distribution of `report` to `path`, as an SVG.
pub fn write(report: &Report, path: &Path) -> io::Result<()> {
    std::fs::write(path, svg(report))
}

/// The x position, in decades, of quantile `q`: 0 at 0%, 1 at 90%, 2 at 99%.
#[cfg(test)]
pub fn decades(q: f64) -> f64 {
    if q >= 1.0 {
        f64::INFINITY
    } else {
        -(1.0 - q).log10()
    }
}

/// The label of the x tick at `d` decades: `0%`, `90%`, `99.9%`.
fn tick_label(d: u32) -> String {
    match d {
        0 => "0%".into(),
        1 => "90%".into(),
        2 => "99%".into(),
        _ => format!("99.{}%", "9".repeat(d as usize - 2)),
    }
}

/// A round axis maximum at or above `v`, and its tick step (1, 2 or 5 × 10^k).
fn nice_axis(v: f64) -> (f64, f64) {
    let v = if v > 0.0 { v } else { 1.0 };
    let rough = v / 5.0;
    let mag = 10f64.powf(rough.log10().floor());
    let step = [1.0, 2.0, 5.0, 10.0]
        .into_iter()
        .map(|m| m * mag)
        .find(|s| s * 5.0 >= v)
        .unwrap_or(10.0 * mag);
    ((v / step).ceil() * step, step)
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// The latency distribution of `report` as a standalone SVG document.
pub fn svg(report: &Report) -> String {
    let hist = &report.histogram;
    let mut out = String::new();
    title(&mut out, report);
    if !report.latency_measured || hist.is_empty() {
        let why = if report.latency_measured {
            "no latency samples were recorded"
        } else {
            "latency is not measured in stream mode"
        };
        let _ = writeln!(
            out,
            r#"<text x="{}" y="{}" text-anchor="middle" font-size="14">{why}</text>"#,
            WIDTH / 2.0,
            HEIGHT / 2.0
        );
        out.push_str("</svg>\n");
        return out;
    }
    let axes = Axes::for_histogram(hist);
    axes.draw(&mut out);
    curve(&mut out, &axes, hist);
    legend(&mut out, report);
    out.push_str("</svg>\n");
    out
}

/// The document's opening, its background and the title: what was run.
fn title(out: &mut String, report: &Report) {
    let _ = writeln!(
        out,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" viewBox="0 0 {WIDTH} {HEIGHT}" font-family="sans-serif" font-size="12">"#
    );
    let _ = writeln!(
        out,
        r#"<rect width="{WIDTH}" height="{HEIGHT}" fill="white"/>"#
    );
    let rate = report
        .rate
        .map(|r| format!(", open loop {r} msg/s"))
        .unwrap_or_default();
    let pipeline = if report.pipeline > 1 {
        format!(", pipeline {}", report.pipeline)
    } else {
        String::new()
    };
    let title = format!(
        "echo-bench {} {}: {} x {} B{pipeline}{rate}, {:.0} msg/s",
        report.mode.as_str(),
        report.addr,
        report.connections,
        report.size,
        report.msgs_per_sec
    );
    let _ = writeln!(
        out,
        r#"<text x="{}" y="28" text-anchor="middle" font-size="16">{}</text>"#,
        WIDTH / 2.0,
        escape(&title)
    );
}

/// The plot area's scales: percentile decades along x, latency up y.
struct Axes {
    /// Decades shown: 2 (99%) to 7 (99.99999%).
    x_max: f64,
    /// The top of the y axis, and its tick step, in `unit`.
    y_max: f64,
    y_step: f64,
    /// `µs` or `ms`, and microseconds to it.
    unit: &'static str,
    scale: f64,
}

const PLOT_W: f64 = WIDTH - LEFT - RIGHT;
const PLOT_H: f64 = HEIGHT - TOP - BOTTOM;

impl Axes {
    /// Scales that fit `hist`: as many decades as its samples can
    /// resolve (with n samples, the percentile 1 - 1/n is the last one
    /// that means anything), and a round latency above its maximum.
    fn for_histogram(hist: &Histogram<u64>) -> Axes {
        let samples = hist.len().max(10) as f64;
        let x_max = samples.log10().ceil().clamp(2.0, 7.0);
        let max_us = hist.max() as f64 / 1e3;
        let (unit, scale) = if max_us >= 2_000.0 {
            ("ms", 1e-3)
        } else {
            ("µs", 1.0)
        };
        let (y_max, y_step) = nice_axis(max_us * scale);
        Axes {
            x_max,
            y_max,
            y_step,
            unit,
            scale,
        }
    }

    /// The x position of `d` decades.
    fn x(&self, d: f64) -> f64 {
        LEFT + PLOT_W * (d.min(self.x_max) / self.x_max)
    }

    /// The y position of latency `v`, in `unit`.
    fn y(&self, v: f64) -> f64 {
        TOP + PLOT_H * (1.0 - (v / self.y_max).min(1.0))
    }

    /// The grid, the ticks, the frame and the axes' labels.
    fn draw(&self, out: &mut String) {
        let mut v = 0.0;
        while v <= self.y_max + self.y_step / 2.0 {
            let y = self.y(v);
            let _ = writeln!(
                out,
                r##"<line x1="{LEFT}" y1="{y:.1}" x2="{:.1}" y2="{y:.1}" stroke="#ddd"/><text x="{:.1}" y="{:.1}" text-anchor="end">{}</text>"##,
                LEFT + PLOT_W,
                LEFT - 8.0,
                y + 4.0,
                trim_number(v)
            );
            v += self.y_step;
        }
        for d in 0..=(self.x_max as u32) {
            let x = self.x(f64::from(d));
            let _ = writeln!(
                out,
                r##"<line x1="{x:.1}" y1="{TOP}" x2="{x:.1}" y2="{:.1}" stroke="#ddd"/><text x="{x:.1}" y="{:.1}" text-anchor="middle">{}</text>"##,
                TOP + PLOT_H,
                TOP + PLOT_H + 18.0,
                tick_label(d)
            );
        }
        let _ = writeln!(
            out,
            r##"<rect x="{LEFT}" y="{TOP}" width="{PLOT_W}" height="{PLOT_H}" fill="none" stroke="#444"/>"##
        );
        let _ = writeln!(
            out,
            r#"<text x="{:.1}" y="{:.1}" text-anchor="middle">percentile (log scale: each step is ten times rarer)</text>"#,
            LEFT + PLOT_W / 2.0,
            HEIGHT - 25.0
        );
        let _ = writeln!(
            out,
            r#"<text transform="translate(22 {:.1}) rotate(-90)" text-anchor="middle">latency ({})</text>"#,
            TOP + PLOT_H / 2.0,
            self.unit
        );
    }
}

/// The percentile curve of `hist`, [`POINTS`] segments long.
fn curve(out: &mut String, axes: &Axes, hist: &Histogram<u64>) {
    let mut points = String::new();
    for i in 0..=POINTS {
        let d = axes.x_max * i as f64 / POINTS as f64;
        let q = 1.0 - 10f64.powf(-d);
        let value = if i == POINTS {
            hist.max()
        } else {
            hist.value_at_quantile(q)
        };
        let y = axes.y(value as f64 / 1e3 * axes.scale);
        let _ = write!(points, "{:.1},{:.1} ", axes.x(d), y);
    }
    let _ = writeln!(
        out,
        r##"<polyline points="{}" fill="none" stroke="#1f6fb4" stroke-width="2"/>"##,
        points.trim_end()
    );
}

/// The figures the text report gives, for reading off exactly.
fn legend(out: &mut String, report: &Report) {
    let legend = [
        ("p50", report.p50_us),
        ("p90", report.p90_us),
        ("p99", report.p99_us),
        ("p99.9", report.p999_us),
        ("max", report.max_us),
    ];
    for (i, (name, value)) in legend.iter().enumerate() {
        let _ = writeln!(
            out,
            r#"<text x="{:.1}" y="{:.1}">{name} {}</text>"#,
            LEFT + 12.0,
            TOP + 20.0 + 16.0 * i as f64,
            fmt_us(*value)
        );
    }
    let _ = writeln!(
        out,
        r##"<text x="{:.1}" y="{:.1}" fill="#666">{} samples, latency from {}</text>"##,
        LEFT + 12.0,
        TOP + 20.0 + 16.0 * legend.len() as f64,
        report.histogram.len(),
        if report.latency_from == "due" {
            "when each message was due"
        } else {
            "send"
        }
    );
}

/// `2`, `0.5`, `12.5`: no trailing zeros on axis labels.
fn trim_number(v: f64) -> String {
    let s = format!("{v:.3}");
    let s = s.trim_end_matches('0').trim_end_matches('.');
    s.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bench::config::{BenchConfig, Mode};
    use crate::bench::record::Totals;

    #[test]
    fn ticks_read_like_hdrhistogram() {
        let labels: Vec<String> = (0..5).map(tick_label).collect();
        assert_eq!(labels, ["0%", "90%", "99%", "99.9%", "99.99%"]);
        assert!((decades(0.99) - 2.0).abs() < 1e-9);
        assert_eq!(decades(0.0), 0.0);
    }

    #[test]
    fn axes_are_round() {
        assert_eq!(nice_axis(7.3), (8.0, 2.0));
        assert_eq!(nice_axis(230.0), (250.0, 50.0));
        assert_eq!(nice_axis(0.0), (1.0, 0.2));
        assert_eq!(trim_number(0.5), "0.5");
        assert_eq!(trim_number(200.0), "200");
    }

    #[test]
    fn plots_the_percentile_curve() {
        let mut totals = Totals::default();
        for i in 1..=10_000u64 {
            totals.hist.record(i * 100).unwrap();
        }
        let config = BenchConfig::new("[::1]:7".parse().unwrap());
        let r = Report::new(&config, totals);
        let svg = svg(&r);
        assert!(svg.starts_with("<svg") && svg.trim_end().ends_with("</svg>"));
        assert!(svg.contains("<polyline"));
        for label in [
            "0%",
            "90%",
            "99%",
            "99.9%",
            "99.99%",
            "latency (µs)",
            "p99.9",
        ] {
            assert!(svg.contains(label), "missing {label}");
        }
        // Every point of the curve is inside the plot area.
        let points = svg.split("points=\"").nth(1).unwrap();
        let points = &points[..points.find('"').unwrap()];
        assert_eq!(points.split(' ').count(), POINTS + 1);
        for p in points.split(' ') {
            let (x, y) = p.split_once(',').unwrap();
            let (x, y): (f64, f64) = (x.parse().unwrap(), y.parse().unwrap());
            assert!((LEFT..=WIDTH - RIGHT).contains(&x), "{x}");
            assert!((TOP..=HEIGHT - BOTTOM).contains(&y), "{y}");
        }
    }

    #[test]
    fn no_samples_says_so() {
        let config = BenchConfig::new("127.0.0.1:7".parse().unwrap());
        let stream = config.clone().mode(Mode::Stream).clone();
        let svg = super::svg(&Report::new(&stream, Totals::default()));
        assert!(svg.contains("not measured in stream mode"));
        let config = config.clone().mode(Mode::Pingpong).clone();
        let svg = super::svg(&Report::new(&config, Totals::default()));
        assert!(svg.contains("no latency samples"));
    }
}
