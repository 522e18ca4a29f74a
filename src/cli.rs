//! Pieces the three binaries' command lines share: the logging flags and
//! the value parsers, so that every binary reads addresses, durations and
//! sizes the same way and rejects bad ones with the same message (a usage
//! error, exit status 2).

use std::time::Duration;

use crate::addr::Addr;
use crate::logging::{LogFormat, Verbosity};
use crate::units;

/// `-v`, `-q` and `--log-format`.
#[derive(Debug, Clone, clap::Args)]
pub struct LogArgs {
    /// Debug logging: every chunk received and sent
    #[arg(short, long, conflicts_with = "quiet")]
    pub verbose: bool,
    /// Warnings and errors only
    #[arg(short, long)]
    pub quiet: bool,
    /// The shape of each log line on standard error
    #[arg(long, value_enum, default_value_t = LogFormat::Text, value_name = "FORMAT")]
    pub log_format: LogFormat,
}

impl LogArgs {
    /// The verbosity these flags ask for.
    pub fn verbosity(&self) -> Verbosity {
        if self.verbose {
            Verbosity::Verbose
        } else if self.quiet {
            Verbosity::Quiet
        } else {
            Verbosity::Normal
        }
    }

    /// Installs the logger these flags describe.
    pub fn init(&self) {
        crate::logging::init(self.verbosity(), self.log_format);
    }
}

/// Parses an `ADDR` argument.
pub fn parse_addr(s: &str) -> Result<Addr, String> {
    s.parse().map_err(|e: crate::addr::AddrError| e.to_string())
}

/// Parses a `DURATION` argument (`500ms`, `30s`, `2m`).
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    units::parse_duration(s).map_err(|e| e.to_string())
}

/// Parses a `BYTES` argument that must be at least 1 (`128`, `64KiB`).
pub fn parse_nonzero_size(s: &str) -> Result<usize, String> {
    let n = units::parse_size(s).map_err(|e| e.to_string())?;
    if n == 0 {
        return Err("must be at least 1 byte".into());
    }
    usize::try_from(n).map_err(|_| format!("size '{s}' is too large"))
}

/// Parses a count that must be at least 1 (connections, threads).
pub fn parse_nonzero_count(s: &str) -> Result<usize, String> {
    match s.trim().parse::<usize>() {
        Ok(0) => Err("must be at least 1".into()),
        Ok(n) => Ok(n),
        Err(_) => Err(format!("'{s}' is not a whole number")),
    }
}

/// Prints a fatal runtime error as one line, `PROGRAM: error: ...` with
/// its causes joined by `: `, and returns exit status 1.
pub fn fail(program: &str, err: &anyhow::Error) -> std::process::ExitCode {
    eprintln!("{program}: error: {err:#}");
    std::process::ExitCode::from(1)
}
