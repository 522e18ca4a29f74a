//! `echo-server`: the seed's echo server, production grade. Flags only; the
//! work is in the `echoes` library.

use std::process::ExitCode;
use std::time::Duration;

use std::path::PathBuf;

use anyhow::Context;
use clap::parser::ValueSource;
use clap::{CommandFactory, FromArgMatches, Parser};
use echoes::activation::{self, InheritedSocket};
use echoes::cli::{self, LogArgs};
use echoes::transport::tls::{CertSource, TlsServerSettings};
use echoes::transport::udp_guard;
use echoes::{Addr, Server, ServerConfig, Transport, notify, server, shutdown};

/// An asynchronous echo server: whatever a peer sends comes back, in order.
#[derive(Debug, Parser)]
#[command(name = "echo-server", version, after_help = EXAMPLES)]
struct Args {
    // `help` rather than a doc comment: rustdoc would read `[V6]` as a link,
    // and an escaped `\[V6\]` would show its backslashes in --help.
    #[arg(short, long = "listen", value_name = "ADDR", value_parser = cli::parse_addr,
          default_value = echoes::addr::DEFAULT_ADDR,
          help = "Address to listen on (repeatable): HOST:PORT, [V6]:PORT, tcp://HOST:PORT, \
                  tls://HOST:PORT, udp://HOST:PORT, unix:PATH. Sockets passed by systemd \
                  (LISTEN_FDS) are used instead")]
    listen: Vec<Addr>,
    /// Largest single read, e.g. 128 (the seed's) or 64KiB
    #[arg(long, value_name = "BYTES", value_parser = cli::parse_nonzero_size,
          default_value = "64KiB")]
    read_size: usize,
    /// Serve at most N connections at once; the rest wait in the backlog
    #[arg(long, value_name = "N", value_parser = cli::parse_nonzero_count)]
    max_connections: Option<usize>,
    /// Serve at most N connections from one client IP address
    #[arg(long, value_name = "N", value_parser = cli::parse_nonzero_count)]
    max_connections_per_ip: Option<usize>,
    /// Close connections with no traffic for this long, e.g. 5m
    #[arg(long, value_name = "DURATION", value_parser = cli::parse_duration)]
    idle_timeout: Option<Duration>,
    /// Echo bulk transfers with splice(2), never copying them into the
    /// server: about a quarter less server CPU per MB, but over loopback
    /// the client pays for it (see BENCHMARKS.md)
    #[arg(long)]
    zero_copy: bool,
    /// On SIGINT/SIGTERM, let open connections finish for this long
    #[arg(long, value_name = "DURATION", value_parser = cli::parse_duration, default_value = "10s")]
    shutdown_timeout: Duration,
    /// Shards: threads, each with its own socket per address [default: one per core]
    #[arg(long, value_name = "N", value_parser = cli::parse_nonzero_count)]
    threads: Option<usize>,
    /// Serve Prometheus metrics at http://ADDR/metrics (ADDR is HOST:PORT)
    #[arg(long, value_name = "ADDR", value_parser = cli::parse_addr)]
    metrics: Option<Addr>,
    /// UDP replies per second to one source address; 0 for no limit
    #[arg(long, value_name = "PER_SECOND", default_value_t = udp_guard::DEFAULT_RATE)]
    udp_rate: u32,
    /// The TLS certificate chain (PEM), for tls:// addresses
    #[arg(long, value_name = "PEM", requires = "tls_key", group = "tls_source")]
    tls_cert: Option<PathBuf>,
    /// The TLS private key (PEM) of --tls-cert
    #[arg(long, value_name = "PEM", requires = "tls_cert")]
    tls_key: Option<PathBuf>,
    /// Make a self-signed TLS certificate at start-up; its SHA-256
    /// fingerprint is logged, for clients to pin (echo-client --tls-pin)
    #[arg(long, group = "tls_source")]
    tls_self_signed: bool,
    /// Require TLS clients to present a certificate issued by this CA (PEM):
    /// mutual TLS
    #[arg(long, value_name = "PEM", requires = "tls_source")]
    tls_client_ca: Option<PathBuf>,
    #[command(flatten)]
    log: LogArgs,
    /// Print a man page or shell completions, generated from these flags, and exit
    #[arg(long, value_enum, value_name = "KIND", exclusive = true)]
    generate: Option<cli::Generate>,
}

/// Ends `--help`: the seed's use, then one line per task. Each
/// `echo-server` command here is parsed by the tests below.
const EXAMPLES: &str = "\
Examples:
  echo-server                           the seed: localhost:10000
  echo-server -l 127.0.0.1:0 -v         a free port, logged; every chunk logged
  echo-server -l 0.0.0.0:7 -l [::]:7    port 7 on every interface, IPv4 and IPv6
  echo-server -l unix:/tmp/echo.sock    a Unix stream socket
  echo-server --metrics 127.0.0.1:9107  Prometheus text at /metrics

  Pipe bytes through it, like nc (every byte checked):
  head -c 1M /dev/urandom | echo-client --stdin | wc -c

  UDP (RFC 862), and a test:
  echo-server -l udp://127.0.0.1:7007
  echo-client -c udp://127.0.0.1:7007 one two

  TLS with a certificate made at start-up; the client pins the fingerprint
  the server logs (or -k: no check at all):
  echo-server -l tls://localhost:8443 --tls-self-signed
  echo-client -c tls://localhost:8443 --tls-pin FINGERPRINT hello";

fn main() -> ExitCode {
    let matches = Args::command().get_matches();
    let args = Args::from_arg_matches(&matches).unwrap_or_else(|e| e.exit());
    if let Some(code) = cli::handle_generate::<Args>(args.generate) {
        return code;
    }
    let listen_given = matches.value_source("listen") == Some(ValueSource::CommandLine);
    args.log.init();
    // Before any thread starts: the sockets systemd passed, if any.
    let inherited = match activation::take() {
        Ok(sockets) => sockets,
        Err(e) => return cli::fail("echo-server", &e.into()),
    };
    check_usage(&args, &inherited);
    if !inherited.is_empty() && listen_given {
        tracing::warn!(
            name = "main",
            "using the {} socket(s) passed by systemd; --listen is ignored",
            inherited.len()
        );
    }
    let result = echoes::runtime::current_thread()
        .context("cannot start the runtime")
        .and_then(|rt| rt.block_on(serve(args, inherited)));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => cli::fail("echo-server", &e),
    }
}

/// Flag combinations clap cannot express; each a usage error (exit 2).
fn check_usage(args: &Args, inherited: &[InheritedSocket]) {
    let usage = |msg: &str| -> ! {
        Args::command()
            .error(clap::error::ErrorKind::ArgumentConflict, msg)
            .exit()
    };
    let has_cert = args.tls_cert.is_some() || args.tls_self_signed;
    if inherited.is_empty() {
        let tls_listen = args.listen.iter().any(|a| a.transport() == Transport::Tls);
        if tls_listen && !has_cert {
            usage("tls:// needs a certificate: --tls-cert PEM --tls-key PEM, or --tls-self-signed");
        }
        if has_cert && !tls_listen {
            usage("--tls-cert and --tls-self-signed need a tls:// address to listen on");
        }
    }
    if let Some(m) = &args.metrics
        && m.transport() != Transport::Tcp
    {
        usage("--metrics takes HOST:PORT (plain HTTP)");
    }
}

async fn serve(args: Args, inherited: Vec<InheritedSocket>) -> anyhow::Result<()> {
    let tls = match (args.tls_cert, args.tls_key) {
        (Some(cert), Some(key)) => Some(CertSource::Files { cert, key }),
        _ if args.tls_self_signed => Some(CertSource::SelfSigned),
        _ => None,
    }
    .map(|cert| TlsServerSettings {
        cert,
        client_ca: args.tls_client_ca,
    });
    let config = ServerConfig {
        listen: args.listen,
        read_size: args.read_size,
        max_connections: args.max_connections,
        max_connections_per_ip: args.max_connections_per_ip,
        idle_timeout: args.idle_timeout,
        zero_copy: args.zero_copy,
        shutdown_timeout: args.shutdown_timeout,
        tls,
        tls_handshake_timeout: echoes::transport::tls::HANDSHAKE_TIMEOUT,
        udp_rate: args.udp_rate,
        metrics: args.metrics,
        threads: args.threads.unwrap_or_else(server::default_threads),
    };
    // Signals first: a SIGTERM right after start-up must still be graceful.
    let handle = echoes::ShutdownHandle::new();
    shutdown::on_signals(handle.clone()).context("cannot install signal handlers")?;
    let server = Server::bind_inherited(config, inherited, handle.clone()).await?;
    // systemd's Type=notify: ready once every socket is bound.
    notify::ready().context("cannot notify the service manager")?;
    let stopping = tokio::spawn(async move {
        handle.wait_shutdown().await;
        let _ = notify::stopping();
    });
    server.run().await?;
    // Told before the process ends, not left to a race with runtime teardown.
    let _ = stopping.await;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_example_parses() {
        let examples = cli::example_commands(EXAMPLES, "echo-server");
        assert!(examples.len() >= 6, "{examples:?}");
        for words in examples {
            if let Err(e) = Args::try_parse_from(&words) {
                panic!("{words:?}: {e}");
            }
        }
    }
}
