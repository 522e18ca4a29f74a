//! Log lines as the Python example the crate began from writes them (see
//! the crate documentation), `NAME: MESSAGE`, on standard error.
//!
//! Every event names its logger in a `name` field, as Python's
//! `logging.getLogger(name)` does: `main`, `echo_client`, or a connection's
//! `echo_{host}_{port}`. The formatter writes `name: message` and nothing
//! else, so piped logs match the Python example's line for line; on a terminal the
//! name is coloured by level. `--log-format json` writes one JSON object a
//! line instead, with the time, level, name and message.
//!
//! Levels: `-q` warnings only, default info, `-v` debug; without either
//! flag `RUST_LOG` (an `EnvFilter` directive) decides.
//!
//! A program's own lines outside the logger, its fatal error above all,
//! go through [`direct`], so that under `--log-format json` every line on
//! standard error is one JSON object.

use std::fmt;
use std::io::IsTerminal;
use std::sync::atomic::{AtomicBool, Ordering};

use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::registry::LookupSpan;

/// How verbose the logs are, from the `-q`/`-v` flags.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Verbosity {
    /// `-q`: warnings and errors only.
    Quiet,
    /// No flag: info, or whatever `RUST_LOG` says when it is set.
    #[default]
    Normal,
    /// `-v`: debug, including every chunk received and sent.
    Verbose,
}

/// The shape of each log line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum LogFormat {
    /// `name: message`, as Python's `logging` prints with its default format.
    #[default]
    Text,
    /// One JSON object per line: `{"ts":…,"level":…,"name":…,"message":…}`,
    /// and `"shard":N` for lines a server shard logged.
    Json,
}

/// Whether standard error carries JSON lines (`--log-format json`): read
/// by [`fatal`] and [`warning`], which print outside the logger.
static JSON: AtomicBool = AtomicBool::new(false);

/// Says that standard error carries JSON lines from now on (or not).
/// [`init`] calls it; a binary calls it earlier when it must report a
/// usage error before the logger is installed.
pub fn set_json(json: bool) {
    JSON.store(json, Ordering::Relaxed);
}

/// Whether standard error carries JSON lines.
pub fn json() -> bool {
    JSON.load(Ordering::Relaxed)
}

/// Installs the global logger. Call once, at the start of a binary; a
/// second call (or a logger installed by someone else) is left alone.
///
/// A `RUST_LOG` that does not parse is not ignored in silence: the logger
/// falls back to info and says so in one warning line.
pub fn init(verbosity: Verbosity, format: LogFormat) {
    set_json(format == LogFormat::Json);
    let mut bad_rust_log = None;
    let filter = match verbosity {
        Verbosity::Quiet => EnvFilter::new("warn"),
        Verbosity::Verbose => EnvFilter::new(
            "debug,h2=info,hyper=info,hyper_util=info,tungstenite=info,tokio_tungstenite=info,rustls=info",
        ),
        Verbosity::Normal => match std::env::var("RUST_LOG") {
            Ok(value) if !value.trim().is_empty() => {
                EnvFilter::try_new(&value).unwrap_or_else(|e| {
                    bad_rust_log = Some(format!(
                        "RUST_LOG={value:?} is not a valid filter ({e}); logging at info instead"
                    ));
                    EnvFilter::new("info")
                })
            }
            _ => EnvFilter::new("info"),
        },
    };
    let stderr = std::io::stderr();
    let ansi =
        format == LogFormat::Text && stderr.is_terminal() && std::env::var_os("NO_COLOR").is_none();
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        // A log line that cannot be written (the reader of a piped log went
        // away: EPIPE) is dropped. By default tracing reports that with
        // `eprintln!`, which panics on the same closed pipe, in whichever
        // task logged: a connection would die for its log line.
        .log_internal_errors(false)
        .event_format(LineFormat { format, ansi })
        .try_init();
    if let Some(message) = bad_rust_log {
        warning(&program_name(), &message);
    }
}

/// This program's name, as the user typed it (`echo-client`).
pub fn program_name() -> String {
    std::env::args_os()
        .next()
        .and_then(|a| {
            std::path::Path::new(&a)
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
        })
        .unwrap_or_else(|| "echoes".into())
}

/// One JSON log line (without its newline), in the shape of the logger's:
/// `{"ts":…,"level":…,"name":…,"message":…}`.
pub fn json_line(level: Level, name: &str, message: &str) -> String {
    let mut obj = serde_json::Map::new();
    obj.insert("ts".into(), rfc3339_now().into());
    obj.insert("level".into(), level.as_str().to_ascii_lowercase().into());
    obj.insert("name".into(), name.into());
    obj.insert("message".into(), message.into());
    serde_json::Value::Object(obj).to_string()
}

/// Prints a program's own line at `level` on standard error, outside the
/// logger (which may be filtered, or not installed yet): `PROGRAM: error:
/// MESSAGE` as text, or one JSON object under `--log-format json`.
pub fn direct(level: Level, program: &str, message: &str) {
    use std::io::Write;
    let line = if json() {
        json_line(level, program, message)
    } else {
        let word = match level {
            Level::ERROR => "error",
            Level::WARN => "warning",
            _ => "note",
        };
        // One line, whatever the message holds.
        format!("{program}: {word}: {}", message.replace('\n', " "))
    };
    let _ = writeln!(std::io::stderr().lock(), "{line}");
}

/// A fatal error's line; see [`direct`].
pub fn fatal(program: &str, message: &str) {
    direct(Level::ERROR, program, message);
}

/// A warning's line; see [`direct`].
pub fn warning(program: &str, message: &str) {
    direct(Level::WARN, program, message);
}

/// The event formatter: see the module documentation.
#[derive(Debug, Clone, Copy)]
pub struct LineFormat {
    format: LogFormat,
    ansi: bool,
}

impl<S, N> FormatEvent<S, N> for LineFormat
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        _ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        let mut fields = Fields::default();
        event.record(&mut fields);
        let level = *event.metadata().level();
        let name = if fields.name.is_empty() {
            // Events from other crates (or without a name) fall back to the
            // module path, which is what Python's logger names are too.
            event.metadata().target()
        } else {
            fields.name.as_str()
        };
        match self.format {
            LogFormat::Text => {
                if self.ansi {
                    let colour = match level {
                        Level::ERROR => "\x1b[31m",
                        Level::WARN => "\x1b[33m",
                        Level::INFO => "\x1b[32m",
                        _ => "\x1b[2m",
                    };
                    write!(writer, "{colour}{name}\x1b[0m: {}", fields.message)?;
                } else {
                    write!(writer, "{name}: {}", fields.message)?;
                }
                writeln!(writer, "{}", fields.extra)
            }
            LogFormat::Json => {
                // Which shard logged it, so a user can see the spread.
                let shard = echoes::server::current_shard();
                if fields.json_extra.is_empty() && shard.is_none() {
                    return writeln!(writer, "{}", json_line(level, name, &fields.message));
                }
                let mut obj = serde_json::Map::new();
                obj.insert("ts".into(), rfc3339_now().into());
                obj.insert("level".into(), level.as_str().to_ascii_lowercase().into());
                obj.insert("name".into(), name.into());
                obj.insert("message".into(), fields.message.into());
                for (k, v) in fields.json_extra {
                    obj.insert(k, v.into());
                }
                if let Some(shard) = shard {
                    obj.insert("shard".into(), shard.into());
                }
                writeln!(writer, "{}", serde_json::Value::Object(obj))
            }
        }
    }
}

/// The fields of one event: its logger name, message, and any others.
#[derive(Default)]
struct Fields {
    name: String,
    message: String,
    /// Other fields as ` key=value`, appended to a text line.
    extra: String,
    json_extra: Vec<(String, String)>,
}

impl Visit for Fields {
    fn record_str(&mut self, field: &Field, value: &str) {
        match field.name() {
            "name" => self.name = value.to_string(),
            "message" => self.message = value.to_string(),
            other => self.push_extra(other, value.to_string()),
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        match field.name() {
            "name" => self.name = format!("{value:?}"),
            "message" => self.message = format!("{value:?}"),
            other => self.push_extra(other, format!("{value:?}")),
        }
    }
}

impl Fields {
    fn push_extra(&mut self, key: &str, value: String) {
        use std::fmt::Write;
        let _ = write!(self.extra, " {key}={value}");
        self.json_extra.push((key.to_string(), value));
    }
}

/// The current UTC time as RFC 3339 with milliseconds, without a date crate.
fn rfc3339_now() -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    let secs = now.as_secs();
    let (days, rem) = (secs / 86400, secs % 86400);
    let (y, m, d) = civil_from_days(days as i64);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{:03}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        now.subsec_millis()
    )
}

/// Days since 1970-01-01 to a proleptic Gregorian date (Howard Hinnant's algorithm).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

#[cfg(test)]
mod tests {
    use super::civil_from_days;

    #[test]
    fn dates() {
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(19_723), (2024, 1, 1));
        assert_eq!(civil_from_days(20_417), (2025, 11, 25));
        assert_eq!(civil_from_days(11_016), (2000, 2, 29));
    }
}
