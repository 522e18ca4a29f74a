//! Pieces the three binaries' command lines share: the logging flags, the
//! clients' TLS trust flags and the value parsers, so that every binary reads addresses, durations and
//! sizes the same way and rejects bad ones with the same message (a usage
//! error, exit status 2).

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use crate::addr::{Addr, Transport};
use crate::logging::{LogFormat, Verbosity};
use crate::transport::tls::{self, Fingerprint, TlsClientSettings, TlsError};
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

/// The client side's TLS trust flags, shared by `echo-client` and
/// `echo-bench`: `--tls-ca`, `--tls-pin`, `-k`, `--tls-cert`, `--tls-key`.
#[derive(Debug, Clone, clap::Args)]
pub struct TlsClientArgs {
    /// Trust only these CA certificates (PEM) for tls:// [default: the system's]
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

impl TlsClientArgs {
    /// The TLS client configuration these flags describe, when `addr` is
    /// `tls://`; `None` for every other transport, which ignores them.
    pub fn client_config_for(
        self,
        addr: &Addr,
    ) -> Result<Option<Arc<rustls::ClientConfig>>, TlsError> {
        if addr.transport() != Transport::Tls {
            return Ok(None);
        }
        let settings = TlsClientSettings {
            ca: self.tls_ca,
            insecure: self.insecure,
            pin: self.tls_pin,
            identity: self.tls_cert.zip(self.tls_key),
        };
        tls::client_config(&settings).map(Some)
    }
}

/// What `--generate` writes to standard output, from the flag definitions
/// themselves, so the docs cannot drift from the flags.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Generate {
    /// A man page (roff), e.g. `echo-server --generate man > echo-server.1`
    Man,
    /// Bash completions
    CompleteBash,
    /// Zsh completions
    CompleteZsh,
    /// Fish completions
    CompleteFish,
}

/// Writes what `kind` asks for, for the program described by `cmd`.
pub fn generate(
    kind: Generate,
    mut cmd: clap::Command,
    out: &mut dyn std::io::Write,
) -> std::io::Result<()> {
    use clap_complete::Shell;
    let name = cmd.get_name().to_string();
    let shell = match kind {
        Generate::Man => return clap_mangen::Man::new(cmd).render(out),
        Generate::CompleteBash => Shell::Bash,
        Generate::CompleteZsh => Shell::Zsh,
        Generate::CompleteFish => Shell::Fish,
    };
    clap_complete::generate(shell, &mut cmd, name, out);
    Ok(())
}

/// Handles `--generate` for a binary: writes to standard output and
/// returns the exit status, or `None` when the flag was not given.
pub fn handle_generate<P: clap::CommandFactory>(
    kind: Option<Generate>,
) -> Option<std::process::ExitCode> {
    let kind = kind?;
    let mut out = std::io::stdout().lock();
    Some(match generate(kind, P::command(), &mut out) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        // `| head` closing the pipe early is not a failure.
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => std::process::ExitCode::SUCCESS,
        Err(e) => fail(P::command().get_name(), &e.into()),
    })
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
    s.parse().map_err(|e: crate::addr::AddrError| e.to_string())
}

/// Parses a `--listen` argument: an `ADDR`, maybe with `?proxy=MODE`.
pub fn parse_listen_addr(s: &str) -> Result<crate::addr::ListenAddr, String> {
    s.parse().map_err(|e: crate::addr::AddrError| e.to_string())
}

/// Parses a `--tls-pin` fingerprint (`AB:CD:…`, 64 hex digits).
pub fn parse_fingerprint(s: &str) -> Result<Fingerprint, String> {
    s.parse()
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
