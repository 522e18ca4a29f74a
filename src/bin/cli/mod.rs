//! Pieces the three binaries' command lines share: the logging flags, the
//! clients' TLS trust flags and the value parsers, so that every binary reads addresses, durations and
//! sizes the same way and rejects bad ones with the same message (a usage
//! error, exit status 2).
//!
//! The binaries' own code, not the library's: each binary includes it
//! (`#[path = "cli/mod.rs"] mod cli;`), so the library's API has no
//! function that exits the process. Each binary uses part of it, hence
//! the `allow` below.
#![allow(dead_code, unused_imports)]

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use echoes::addr::{Addr, Transport};
#[cfg(feature = "bench")]
use echoes::bench::MAX_CONNECTIONS;
use echoes::server::{MAX_CONNECTION_LIMIT, MAX_THREADS, ServerConfigError};
use echoes::transport::{self as tls, Fingerprint, TlsClientSettings, TlsError};
use echoes::units;
use logging::{LogFormat, Verbosity};

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
        logging::init(self.verbosity(), self.log_format);
    }
}

/// The client side's TLS trust flags, shared by `echo-client` and
/// `echo-bench`: `--tls-ca`, `--tls-pin`, `-k`, `--tls-cert`, `--tls-key`.
#[derive(Debug, Clone, clap::Args)]
pub struct TlsClientArgs {
    /// Trust only these CA certificates (PEM) for tls://, wss:// and https://
    /// [default: the system's]
    #[arg(long, value_name = "PEM", group = "trust")]
    pub tls_ca: Option<PathBuf>,
    /// Trust the server certificate with this SHA-256 fingerprint, as
    /// echo-server logs it (AB:CD:…)
    #[arg(long, value_name = "SHA256", value_parser = parse_fingerprint, group = "trust")]
    pub tls_pin: Option<Fingerprint>,
    /// Do not check the server's certificate at all (testing only)
    #[arg(short = 'k', long, group = "trust")]
    pub insecure: bool,
    /// A client certificate (PEM) to present, for mutual TLS
    #[arg(long, value_name = "PEM", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// The private key (PEM) of --tls-cert
    #[arg(long, value_name = "PEM", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
}

/// Why the TLS flags could not be turned into a configuration.
#[derive(Debug, thiserror::Error)]
pub enum TlsArgsError {
    /// TLS flags were given for an address that does not speak TLS: a
    /// usage error (exit 2), since they would be ignored.
    #[error("{0}")]
    NotTls(String),
    /// The certificates or keys could not be used (exit 1).
    #[error(transparent)]
    Tls(#[from] TlsError),
}

impl TlsClientArgs {
    /// The flags given, as the user typed them.
    fn given(&self) -> Vec<&'static str> {
        let flags = [
            (self.tls_ca.is_some(), "--tls-ca"),
            (self.tls_pin.is_some(), "--tls-pin"),
            (self.insecure, "--insecure"),
            (self.tls_cert.is_some(), "--tls-cert"),
            (self.tls_key.is_some(), "--tls-key"),
        ];
        flags
            .iter()
            .filter(|(on, _)| *on)
            .map(|(_, f)| *f)
            .collect()
    }

    /// The TLS client configuration these flags describe, when `addr` is
    /// `tls://`, `wss://` or `https://`; `None` for every other transport.
    /// A TLS flag given for another transport is refused rather than
    /// ignored: it usually means the `tls://` was forgotten.
    pub fn client_config_for(
        self,
        addr: &Addr,
    ) -> Result<Option<Arc<rustls::ClientConfig>>, TlsArgsError> {
        if !matches!(
            addr.transport(),
            Transport::Tls | Transport::Wss | Transport::Https
        ) {
            let given = self.given();
            if given.is_empty() {
                return Ok(None);
            }
            let hint = if addr.transport() == Transport::Tcp {
                format!("; did you mean tls://{addr}?")
            } else {
                String::new()
            };
            let verb = if given.len() == 1 { "applies" } else { "apply" };
            return Err(TlsArgsError::NotTls(format!(
                "{} {verb} to tls://, wss:// and https:// addresses only, and {addr} is {}://{hint}",
                given.join(", "),
                addr.transport(),
            )));
        }
        let settings = TlsClientSettings {
            ca: self.tls_ca,
            insecure: self.insecure,
            pin: self.tls_pin,
            identity: self.tls_cert.zip(self.tls_key),
        };
        Ok(Some(tls::client_config(&settings)?))
    }
}

/// What `--generate` writes to standard output, from the flag definitions
/// themselves, so the docs cannot drift from the flags.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Generate {
    /// A man page (roff), to redirect into a file (`--generate man > PROGRAM.1`)
    Man,
    /// Bash completions
    CompleteBash,
    /// Zsh completions
    CompleteZsh,
    /// Fish completions
    CompleteFish,
}

/// Writes what `kind` asks for, for the program described by `cmd`; a man
/// page gets `sections` (EXIT STATUS, ENVIRONMENT, SIGNALS) too.
pub fn generate(
    kind: Generate,
    mut cmd: clap::Command,
    sections: &ManSections,
    out: &mut dyn std::io::Write,
) -> std::io::Result<()> {
    use clap_complete::Shell;
    let name = cmd.get_name().to_string();
    let shell = match kind {
        Generate::Man => return manpage::render(cmd, sections, out),
        Generate::CompleteBash => Shell::Bash,
        Generate::CompleteZsh => Shell::Zsh,
        Generate::CompleteFish => Shell::Fish,
    };
    clap_complete::generate(shell, &mut cmd, name, out);
    Ok(())
}

#[cfg(feature = "bench")]
pub use client_errors::bench_config_message;
pub use client_errors::client_options_message;
pub use config_errors::server_config_message;
pub use manpage::ManSections;

mod client_errors;
mod config_errors;
pub mod logging;
mod manpage;

/// Handles `--generate` for a binary: writes to standard output and
/// returns the exit status, or `None` when the flag was not given.
pub fn handle_generate<P: clap::CommandFactory>(
    kind: Option<Generate>,
    sections: &ManSections,
) -> Option<std::process::ExitCode> {
    let kind = kind?;
    let mut out = std::io::stdout().lock();
    Some(match generate(kind, P::command(), sections, &mut out) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        // `| head` closing the pipe early is not a failure.
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => std::process::ExitCode::SUCCESS,
        Err(e) => fail(P::command().get_name(), &e.into()),
    })
}

/// Whether the command line asks for `--log-format json`, read before
/// clap has parsed it: a usage error must be a JSON line too.
fn json_requested() -> bool {
    let args: Vec<String> = std::env::args().skip(1).collect();
    args.iter().enumerate().any(|(i, a)| {
        a == "--log-format=json"
            || (a == "--log-format" && args.get(i + 1).is_some_and(|v| v == "json"))
    })
}

/// Parses the command line into `P`, or exits as clap does (help and
/// version on standard output, status 0; usage errors, status 2), with a
/// usage error as one JSON line under `--log-format json`.
pub fn parse_or_exit<P: clap::Parser>() -> P {
    let matches = matches_or_exit(P::command());
    P::from_arg_matches(&matches).unwrap_or_else(|e| exit_usage(e))
}

/// As [`parse_or_exit`], but an unknown flag for which `hint` has words
/// (a flag of another program) gets them instead of clap's tip:
/// `unexpected argument '-d' found: HINT`.
pub fn parse_or_exit_hinting<P: clap::Parser>(hint: impl Fn(&str) -> Option<String>) -> P {
    let matches = P::command().try_get_matches().unwrap_or_else(|e| {
        use clap::error::{ContextKind, ContextValue, ErrorKind};
        if e.kind() == ErrorKind::UnknownArgument
            && let Some(ContextValue::String(arg)) = e.get(ContextKind::InvalidArg)
            && let Some(words) = hint(arg)
        {
            let msg = format!("unexpected argument '{arg}' found: {words}");
            exit_usage(P::command().error(ErrorKind::UnknownArgument, msg))
        }
        exit_usage(e)
    });
    P::from_arg_matches(&matches).unwrap_or_else(|e| exit_usage(e))
}

/// As [`parse_or_exit`], but the raw matches of `cmd` (to ask where a
/// value came from).
pub fn matches_or_exit(cmd: clap::Command) -> clap::ArgMatches {
    cmd.try_get_matches().unwrap_or_else(|e| exit_usage(e))
}

/// Exits with a clap error, with clap's exit status: under `--log-format
/// json` as one JSON line; else as clap prints it, its first line written
/// `PROGRAM: error: …` as a runtime error is, so every fatal line of a
/// program starts the same way.
pub fn exit_usage(err: clap::Error) -> ! {
    if err.use_stderr() && !(logging::json() || json_requested()) {
        let rendered = err.render().to_string();
        let program = logging::program_name();
        match rendered.strip_prefix("error: ") {
            Some(rest) => eprint!("{program}: error: {rest}"),
            None => eprint!("{rendered}"),
        }
        std::process::exit(err.exit_code());
    }
    if err.use_stderr() {
        let rendered = err.render().to_string();
        let first = rendered
            .lines()
            .find(|l| !l.trim().is_empty())
            .unwrap_or("");
        let message = first.strip_prefix("error: ").unwrap_or(first);
        logging::set_json(true);
        logging::fatal(&logging::program_name(), message);
        std::process::exit(err.exit_code());
    }
    err.exit()
}

/// Exits with status 2 and `msg`, a usage error clap cannot find by itself
/// (two flags that do not go together), for the program `cmd` describes.
pub fn usage_error(mut cmd: clap::Command, msg: impl std::fmt::Display) -> ! {
    exit_usage(cmd.error(clap::error::ErrorKind::ArgumentConflict, msg))
}

/// The `program` commands in a help text's examples, as argument lists
/// (the program name first), so each binary's tests can check that every
/// example still parses. A command is a line's text, or one stage of a
/// `|` pipeline on it, that starts with `program`; it ends where two
/// spaces begin the description column. Words are split on whitespace
/// (examples use no quotes).
pub fn example_commands(help: &str, program: &str) -> Vec<Vec<String>> {
    help.lines()
        .flat_map(|line| line.split(" | "))
        .map(|stage| stage.trim_start())
        .filter(|stage| stage.split_whitespace().next() == Some(program))
        .map(|stage| {
            let command = stage.split("  ").next().unwrap_or(stage);
            command.split_whitespace().map(String::from).collect()
        })
        .collect()
}

/// Parses an `ADDR` argument.
pub fn parse_addr(s: &str) -> Result<Addr, String> {
    s.parse()
        .map_err(|e: echoes::addr::AddrError| e.to_string())
}

/// Parses a `--listen` argument: an `ADDR`, maybe with `?proxy=MODE`.
pub fn parse_listen_addr(s: &str) -> Result<echoes::server::ListenAddr, String> {
    s.parse()
        .map_err(|e: echoes::addr::AddrError| e.to_string())
}

/// Parses a `--tls-pin` fingerprint (`AB:CD:…`, 64 hex digits).
pub fn parse_fingerprint(s: &str) -> Result<Fingerprint, String> {
    s.parse()
}

/// A duration as a `DURATION` argument is written (`30s`, `250ms`): how a
/// flag shows a library default as its own.
pub fn format_duration(d: Duration) -> String {
    units::format_duration(d)
}

/// A size as a `BYTES` argument is written (`64KiB`, `1MiB`, `100`): how
/// a flag shows a library default as its own.
pub fn format_size(n: u64) -> String {
    units::format_size(n)
}

/// Parses a `BYTES` argument, 0 included.
pub fn parse_size(s: &str) -> Result<u64, String> {
    units::parse_size(s).map_err(|e| e.to_string())
}

/// The runtime each binary runs on: single-threaded, like every runtime
/// of the crate (a server with several threads starts its shards itself).
pub fn runtime() -> std::io::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
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

/// Parses `--read-size`: 1 byte to [`MAX_READ_SIZE`](echoes::server::MAX_READ_SIZE) (the largest a
/// server takes).
pub fn parse_read_size(s: &str) -> Result<usize, String> {
    let n = units::parse_size(s).map_err(|e| e.to_string())?;
    // Past usize, it is past the limit: the library's one message says so.
    let n = usize::try_from(n).unwrap_or(usize::MAX);
    echoes::server::check_read_size(n).map_err(|e| e.to_string())?;
    Ok(n)
}

/// Parses a whole number, saying "too large" for one of too many digits.
fn whole_number(s: &str) -> Result<u128, String> {
    let t = s.trim();
    if t.is_empty() || !t.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!("'{s}' is not a whole number"));
    }
    t.parse::<u128>().map_err(|_| format!("'{s}' is too large"))
}

/// Parses a count that must be at least 1 (messages in flight, ...).
pub fn parse_nonzero_count(s: &str) -> Result<usize, String> {
    match whole_number(s)? {
        0 => Err("must be at least 1".into()),
        n => usize::try_from(n).map_err(|_| format!("'{s}' is too large")),
    }
}

/// Parses `--threads`: 1 to [`MAX_THREADS`], for a server and a bench
/// alike, refused in the library's words (one limit, one message).
pub fn parse_threads(s: &str) -> Result<usize, String> {
    let refused = || ServerConfigError::Threads { max: MAX_THREADS }.to_string();
    match whole_number(s)? {
        n if n == 0 || n > MAX_THREADS as u128 => Err(refused()),
        n => usize::try_from(n).map_err(|_| refused()),
    }
}

/// Parses a connection limit, 0 to [`MAX_CONNECTION_LIMIT`]; 0 means no limit
/// (SPEC.md: a zero for any limit means off), which the caller maps to
/// `None`.
pub fn parse_limit(s: &str) -> Result<usize, String> {
    let refused = || {
        let e = ServerConfigError::LimitTooLarge {
            max: MAX_CONNECTION_LIMIT,
        };
        format!("{e} (0 for no limit)")
    };
    match whole_number(s)? {
        n if n > MAX_CONNECTION_LIMIT as u128 => Err(refused()),
        n => usize::try_from(n).map_err(|_| refused()),
    }
}

/// Parses a duration of at least 1 ns (a timeout that must bound a wait).
pub fn parse_positive_duration(s: &str) -> Result<Duration, String> {
    let d = parse_duration(s)?;
    if d.is_zero() {
        return Err("must be more than 0".into());
    }
    Ok(d)
}

/// Parses `echo-client --connect ADDR`, and says what was meant when it
/// is given a number: `-c` is `--connect` in `echo-client` but the number
/// of connections in `echo-bench`.
pub fn parse_connect_addr(s: &str) -> Result<Addr, String> {
    if !s.trim().is_empty() && s.trim().bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!(
            "'{s}' is a number, not an address: echo-client's -c is --connect ADDR \
             (in echo-bench, -c is the number of connections)"
        ));
    }
    parse_addr(s)
}

/// Parses `echo-bench -c CONNECTIONS`, 1 to [`MAX_CONNECTIONS`], and says
/// what was meant when it is given an address: `-c` is `--connect` in
/// `echo-client`.
#[cfg(feature = "bench")]
pub fn parse_connections(s: &str) -> Result<usize, String> {
    if s.contains(':') && s.parse::<Addr>().is_ok() {
        return Err(format!(
            "'{s}' is an address: echo-bench's -c is the number of connections; \
             name the server with --connect {s} (echo-client's -c is --connect)"
        ));
    }
    let refused = || {
        let max = MAX_CONNECTIONS;
        echoes::bench::BenchConfigError::TooManyConnections { max }.to_string()
    };
    match whole_number(s)? {
        n if n == 0 || n > MAX_CONNECTIONS as u128 => Err(refused()),
        n => usize::try_from(n).map_err(|_| refused()),
    }
}

/// Prints a fatal runtime error as one line, `PROGRAM: error: ...` with
/// its causes joined by `: ` (one JSON object under `--log-format json`),
/// and returns exit status 1.
pub fn fail(program: &str, err: &anyhow::Error) -> std::process::ExitCode {
    logging::fatal(program, &format!("{err:#}"));
    std::process::ExitCode::from(1)
}

#[cfg(test)]
mod tests {
    use super::example_commands;

    #[test]
    fn example_commands_are_found_in_lines_and_pipelines() {
        let help = "\
Examples:
  echo-client                       the seed's conversation
  echo-client -c host:7 hi          two words
  tar c . | echo-client --stdin | tar t   a pipe
  echo-server -l udp://h:7
                                    test it with
                                      echo-client -c udp://h:7 x";
        let found = example_commands(help, "echo-client");
        let words: Vec<Vec<&str>> = found
            .iter()
            .map(|c| c.iter().map(String::as_str).collect())
            .collect();
        assert_eq!(
            words,
            vec![
                vec!["echo-client"],
                vec!["echo-client", "-c", "host:7", "hi"],
                vec!["echo-client", "--stdin"],
                vec!["echo-client", "-c", "udp://h:7", "x"],
            ]
        );
        assert_eq!(example_commands(help, "echo-server").len(), 1);
    }
}
