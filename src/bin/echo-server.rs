//! `echo-server`: the seed's echo server, production grade. Flags only; the
//! work is in the `echoes` library.

// What the three command lines share (flags, logging, man pages): the
// binaries' own code, not the library's API.
#[path = "cli/mod.rs"]
mod cli;

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use clap::parser::ValueSource;
use clap::{CommandFactory, FromArgMatches, Parser};
use cli::LogArgs;
use echoes::http::{self, HttpConfig};
use echoes::proxy::{self, ProxyMode, ProxySettings};
use echoes::server;
use echoes::server::ListenAddr;
use echoes::transport::{self, CertSource, TlsServerSettings};
use echoes::{Addr, Server, ServerConfig, activation, notify, shutdown};

/// An asynchronous echo server: whatever a peer sends comes back, in order.
#[derive(Debug, Parser)]
#[command(name = "echo-server", version, after_help = EXAMPLES)]
struct Args {
    // `help` rather than a doc comment: rustdoc would read `[V6]` as a link,
    // and an escaped `\[V6\]` would show its backslashes in --help.
    #[arg(short, long = "listen", value_name = "ADDR", value_parser = cli::parse_listen_addr,
          default_value = echoes::addr::DEFAULT_ADDR,
          help = "Address to listen on (repeatable): HOST:PORT, [V6]:PORT, tcp://HOST:PORT, \
                  tls://HOST:PORT, udp://HOST:PORT, unix:PATH, http://HOST:PORT, \
                  https://HOST:PORT (ws:// and wss:// are the same); ?proxy=optional|required|off \
                  after a stream address sets its PROXY protocol mode. Sockets passed by \
                  systemd (LISTEN_FDS) are used instead")]
    listen: Vec<ListenAddr>,
    /// Largest single read, e.g. 128 (the seed's) or 64KiB; reads go past
    /// 64 KiB only while a connection streams
    #[arg(long, value_name = "BYTES", value_parser = cli::parse_read_size,
          default_value = cli::format_size(server::DEFAULT_READ_SIZE as u64))]
    read_size: usize,
    /// Serve at most N connections at once; the rest wait in the backlog
    /// (0: no limit)
    #[arg(long, value_name = "N", value_parser = cli::parse_limit)]
    max_connections: Option<usize>,
    /// Serve at most N connections from one client IP address (0: no limit)
    #[arg(long, value_name = "N", value_parser = cli::parse_limit)]
    max_connections_per_ip: Option<usize>,
    /// Close connections with no traffic for this long, e.g. 5m (0: never)
    #[arg(long, value_name = "DURATION", value_parser = cli::parse_duration)]
    idle_timeout: Option<Duration>,
    /// Echo bulk transfers with splice(2), never copying them into the
    /// server: about a quarter less server CPU per MB, but over loopback
    /// the client pays for it (see BENCHMARKS.md)
    #[arg(long)]
    zero_copy: bool,
    /// On SIGINT, SIGTERM or SIGHUP, let open connections finish for this long
    #[arg(long, value_name = "DURATION", value_parser = cli::parse_duration,
          default_value = cli::format_duration(server::DEFAULT_SHUTDOWN_TIMEOUT))]
    shutdown_timeout: Duration,
    /// Shards: threads, each with its own socket per address [default: one per core]
    #[arg(long, value_name = "N", value_parser = cli::parse_threads)]
    threads: Option<usize>,
    /// Serve Prometheus metrics at http://ADDR/metrics (ADDR is HOST:PORT)
    #[arg(long, value_name = "ADDR", value_parser = cli::parse_addr)]
    metrics: Option<Addr>,
    /// UDP replies per second to one source address; 0 for no limit
    #[arg(long, value_name = "PER_SECOND", default_value_t = transport::DEFAULT_UDP_RATE)]
    udp_rate: u32,
    /// Require a PROXY protocol header (v1 or v2, as HAProxy's send-proxy
    /// or nginx's proxy_protocol send it) on every stream listener, before
    /// the data (before the TLS handshake on tls:// and https://); logs and names the
    /// client it gives. Not used over UDP
    #[arg(long)]
    proxy_protocol: bool,
    /// How long a peer has to send its whole PROXY header
    #[arg(long, value_name = "DURATION", value_parser = cli::parse_duration,
          default_value = cli::format_duration(proxy::DEFAULT_HEADER_TIMEOUT))]
    proxy_header_timeout: Duration,
    /// The TLS certificate chain (PEM), for tls:// and https:// addresses
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
    /// This server's name in HTTP reflections and the x-echo-server header
    /// [default: the host name]
    #[arg(long, value_name = "NAME", value_parser = parse_name)]
    name: Option<String>,
    /// The longest delay=… an HTTP request may ask for; 0 for no limit
    #[arg(long, value_name = "DURATION", value_parser = cli::parse_duration,
          default_value = cli::format_duration(http::DEFAULT_MAX_DELAY))]
    http_max_delay: Duration,
    /// The largest size=… an HTTP request may ask for; 0 for no limit
    #[arg(long, value_name = "BYTES", value_parser = cli::parse_size,
          default_value = cli::format_size(http::DEFAULT_MAX_SIZE))]
    http_max_size: u64,
    /// The largest HTTP request body (413 past it), at most 1GiB
    #[arg(long, value_name = "BYTES", value_parser = parse_memory_limit,
          default_value = cli::format_size(http::DEFAULT_MAX_BODY))]
    http_max_body: usize,
    /// How long an HTTP request head may take to arrive (408 past it), and
    /// an idle keep-alive connection may wait for its next request; 0 for no limit
    #[arg(long, value_name = "DURATION", value_parser = cli::parse_duration,
          default_value = cli::format_duration(http::DEFAULT_HEADER_TIMEOUT))]
    http_header_timeout: Duration,
    /// The most streams (requests, gRPC calls) an HTTP/2 connection may have
    /// open at once
    #[arg(long, value_name = "N", default_value_t = http::H2_MAX_STREAMS,
          value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    http_max_streams: u32,
    /// End each HTTP connection gracefully after this long (HTTP/2: GOAWAY),
    /// so that a balancer spreads long h2 and gRPC connections anew; 0 for never
    #[arg(long, value_name = "DURATION", value_parser = cli::parse_duration, default_value = "0")]
    http_max_age: Duration,
    /// Knobs for every HTTP request that does not turn them itself, in
    /// query syntax, e.g. 'status=503&delay=100ms' or 'header=Cache-Control:no-store':
    /// a request's own knob wins; held to the --http-max-* limits
    #[arg(long, value_name = "KNOBS")]
    http_default_knobs: Option<String>,
    /// The largest WebSocket message (closed with 1009 past it), at most 1GiB
    #[arg(long, value_name = "BYTES", value_parser = parse_memory_limit,
          default_value = cli::format_size(http::DEFAULT_WS_MAX_MESSAGE as u64))]
    ws_max_message: usize,
    /// The largest WebSocket frame, at most --ws-max-message
    #[arg(long, value_name = "BYTES", value_parser = parse_memory_limit,
          default_value = cli::format_size(http::DEFAULT_WS_MAX_FRAME as u64))]
    ws_max_frame: usize,
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
  echo-server --proxy-protocol          behind HAProxy (send-proxy) or nginx
  echo-server -l 0.0.0.0:7?proxy=optional   a PROXY header used when present

  Pipe bytes through it, like nc (every byte checked):
  head -c 1M /dev/urandom | echo-client --stdin | wc -c

  UDP (RFC 862), and a test:
  echo-server -l udp://127.0.0.1:7007
  echo-client -c udp://127.0.0.1:7007 one two

  HTTP/1.1 and HTTP/2, every request reflected, every WebSocket echoed,
  and a browser test page at http://127.0.0.1:8080/.well-known/echoes:
  echo-server -l http://127.0.0.1:8080 --name web-1
  echo-server -l https://localhost:8443 --tls-self-signed --http-max-body 16MiB
  echo-server -l http://127.0.0.1:8080 --http-default-knobs delay=250ms   a slow backend

  TLS with a certificate made at start-up; the client pins the fingerprint
  the server logs (or -k: no check at all):
  echo-server -l tls://localhost:8443 --tls-self-signed
  echo-client -c tls://localhost:8443 --tls-pin FINGERPRINT hello";

/// The man page's own sections.
const MAN: cli::ManSections = cli::ManSections {
    exit_status: "0: a clean shutdown (a signal, then every connection finished \
or was closed at --shutdown-timeout).\n\n\
1: a runtime failure: an address cannot be bound (in use, no permission, \
a live server on a unix socket), a host does not resolve, a certificate \
or key cannot be used.\n\n\
2: bad usage (an unknown flag, a malformed address, an absurd value).",
    environment: "LISTEN_FDS, LISTEN_PID, LISTEN_FDNAMES: sockets passed by \
systemd, served instead of --listen.\n\n\
NOTIFY_SOCKET: where to send READY=1 and STOPPING=1 (systemd's \
Type=notify).\n\n\
RUST_LOG: the log filter (tracing's EnvFilter syntax) when neither -q nor \
-v is given; an invalid one is reported and ignored.\n\n\
NO_COLOR: no colour on a terminal.",
    signals: "SIGINT, SIGTERM and SIGHUP: a graceful close: main: closing \
server is logged, the listeners close (Unix socket files are removed), \
open connections are served until their peers finish or \
--shutdown-timeout passes, then the server exits with status 0. A second \
such signal closes everything at once. SIGHUP is a close, not a reload.\n\n\
SIGQUIT: close every connection at once, remove the Unix socket files, \
exit 0.\n\n\
SIGUSR1, SIGUSR2: logged (main: SIGUSR1 ignored), nothing else.\n\n\
SIGPIPE is ignored: a peer that goes away is an error on its connection \
only.\n\n\
Any of SIGINT, SIGHUP, SIGQUIT, SIGUSR1 and SIGUSR2 that is ignored when \
the server starts (nohup, a background job) stays ignored; SIGTERM is \
always handled. Every other signal keeps its default action (SIGTSTP, \
SIGCONT: job control).",
};

fn main() -> ExitCode {
    let matches = cli::matches_or_exit(Args::command());
    let args = Args::from_arg_matches(&matches).unwrap_or_else(|e| cli::exit_usage(e));
    if let Some(code) = cli::handle_generate::<Args>(args.generate, &MAN) {
        return code;
    }
    let listen_given = matches.value_source("listen") == Some(ValueSource::CommandLine);
    args.log.init();
    // Before any thread starts: the sockets systemd passed, if any.
    let inherited = match activation::take() {
        Ok(sockets) => sockets,
        Err(e) => return cli::fail("echo-server", &e.into()),
    };
    let inherited_count = inherited.len();
    let config = server_config(&args, inherited);
    // The library checks the settings; a refusal is bad usage (exit 2).
    if let Err(e) = config.validate() {
        cli::usage_error(
            Args::command(),
            cli::server_config_message(&e, &args.listen),
        );
    }
    if inherited_count > 0 && listen_given {
        tracing::warn!(
            name = "main",
            "using the {inherited_count} socket(s) passed by systemd; --listen is ignored"
        );
    }
    let result = cli::runtime()
        .context("cannot start the runtime")
        .and_then(|rt| rt.block_on(serve(config)));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => cli::fail("echo-server", &e),
    }
}

/// The server's configuration, as the flags give it; a zero limit or
/// timeout is none (SPEC.md), and a flag left out keeps the library's
/// default.
fn server_config(args: &Args, inherited: Vec<activation::InheritedSocket>) -> ServerConfig {
    let off_if_zero = |d: Duration| (!d.is_zero()).then_some(d);
    let off_if_zero_n = |n: Option<usize>| n.filter(|&n| n > 0);
    let mut config = ServerConfig::default();
    config
        .listen(args.listen.iter().cloned())
        .inherited(inherited)
        .read_size(args.read_size)
        .max_connections(off_if_zero_n(args.max_connections))
        .max_connections_per_ip(off_if_zero_n(args.max_connections_per_ip))
        .idle_timeout(args.idle_timeout.and_then(off_if_zero))
        .zero_copy(args.zero_copy)
        .shutdown_timeout(args.shutdown_timeout)
        .tls(tls_settings(args))
        .udp_rate(args.udp_rate)
        .metrics(args.metrics.clone())
        .http(http_config(args))
        .proxy(proxy_settings(args))
        .threads(args.threads.unwrap_or_else(one_per_core));
    config
}

/// The default `--threads`: one shard per core.
fn one_per_core() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// The certificate the TLS flags name, if any.
fn tls_settings(args: &Args) -> Option<TlsServerSettings> {
    let cert = match (&args.tls_cert, &args.tls_key) {
        (Some(cert), Some(key)) => CertSource::Files {
            cert: cert.clone(),
            key: key.clone(),
        },
        _ if args.tls_self_signed => CertSource::SelfSigned,
        _ => return None,
    };
    Some(TlsServerSettings {
        cert,
        client_ca: args.tls_client_ca.clone(),
    })
}

/// `--proxy-protocol` for every stream listener, `?proxy=MODE` for one.
fn proxy_settings(args: &Args) -> ProxySettings {
    let mut proxy = ProxySettings::default();
    proxy
        .mode(if args.proxy_protocol {
            ProxyMode::Required
        } else {
            ProxyMode::Off
        })
        .header_timeout(args.proxy_header_timeout);
    proxy
}

/// The HTTP and WebSocket settings the flags give; a zero delay, size or
/// timeout is no limit.
fn http_config(args: &Args) -> HttpConfig {
    let off_if_zero = |d: Duration| (!d.is_zero()).then_some(d);
    let mut http = HttpConfig::default();
    if let Some(name) = &args.name {
        http.name(name.clone());
    }
    http.max_delay(off_if_zero(args.http_max_delay).unwrap_or(Duration::MAX))
        .max_size(match args.http_max_size {
            0 => u64::MAX,
            n => n,
        })
        .max_body(args.http_max_body as u64)
        .header_timeout(off_if_zero(args.http_header_timeout))
        .max_streams(args.http_max_streams)
        .max_age(off_if_zero(args.http_max_age))
        .ws_max_message(args.ws_max_message)
        .ws_max_frame(args.ws_max_frame);
    if let Some(knobs) = &args.http_default_knobs {
        http.default_knobs(knobs.clone());
    }
    http
}

/// Parses `--name`: what an HTTP header can carry, 1 to 255 characters.
fn parse_name(s: &str) -> Result<String, String> {
    if s.is_empty() || s.len() > 255 {
        return Err("a name is 1 to 255 characters".into());
    }
    if !s.bytes().all(|b| b.is_ascii_graphic() || b == b' ') {
        return Err("a name is printable ASCII (it goes out in an HTTP header)".into());
    }
    Ok(s.to_string())
}

/// Parses a size that the server may hold in memory for one peer: 1 byte
/// to 1 GiB.
fn parse_memory_limit(s: &str) -> Result<usize, String> {
    let n = cli::parse_nonzero_size(s)?;
    if n > 1 << 30 {
        return Err(format!(
            "'{s}' is over 1GiB, more than one peer should cost"
        ));
    }
    Ok(n)
}

async fn serve(mut config: ServerConfig) -> anyhow::Result<()> {
    // Signals first: a SIGTERM right after start-up must still be graceful.
    let handle = echoes::ShutdownHandle::new();
    shutdown::on_signals(handle.clone()).context("cannot install signal handlers")?;
    config.shutdown_handle(handle.clone());
    let server = Server::bind(config).await?;
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
