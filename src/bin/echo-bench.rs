//! `echo-bench`: a load generator that measures any echo server and checks
//! every byte. Flags only; the work is in `echoes::bench`.

// What the three command lines share (flags, logging, man pages): the
// binaries' own code, not the library's API.
#[path = "cli/mod.rs"]
mod cli;

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use std::io::Write;

use clap::{CommandFactory, Parser};
use cli::{TlsArgsError, logging};
use echoes::Addr;
use echoes::bench::{self, BenchConfig, BenchError, HttpRequestKind, Mode, Report};

/// Measures an echo server: throughput, latency percentiles, and errors,
/// with every byte checked.
#[derive(Debug, Parser)]
#[command(name = "echo-bench", version, after_help = EXAMPLES,
          args_conflicts_with_subcommands = true)]
struct Args {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    run: RunArgs,
    #[command(flatten)]
    log: cli::LogArgs,
    /// Print a man page or shell completions, generated from these flags, and exit
    #[arg(long, value_enum, value_name = "KIND", exclusive = true)]
    generate: Option<cli::Generate>,
}

#[derive(Debug, clap::Subcommand)]
enum Command {
    /// Report runs saved with --save-hist (by several load machines, say)
    /// as one, histograms added: echo-bench merge FILE... [--over-time]
    /// [--json] [--plot FILE.svg] [--save-hist FILE]
    Merge(MergeArgs),
}

#[derive(Debug, clap::Args)]
struct MergeArgs {
    /// Files written by echo-bench --save-hist
    #[arg(value_name = "FILE", required = true)]
    files: Vec<PathBuf>,
    /// Also report each wall-clock second (UTC): messages, p50, p90, p99
    /// and max, the files' intervals of that second added; with --json,
    /// as the key intervals
    #[arg(long)]
    over_time: bool,
    #[command(flatten)]
    out: OutArgs,
}

/// What to do with the report, for a run and for a merge alike.
#[derive(Debug, clap::Args)]
struct OutArgs {
    /// Print the report as one JSON object on standard output
    #[arg(long)]
    json: bool,
    /// Write the latency distribution (percentile curve) to this SVG file
    #[arg(long, value_name = "FILE.svg")]
    plot: Option<PathBuf>,
    /// Save the latency histogram (HdrHistogram interval log, an interval
    /// per second tagged with the host name) and the report to this file,
    /// for echo-bench merge
    #[arg(long, value_name = "FILE")]
    save_hist: Option<PathBuf>,
}

#[derive(Debug, clap::Args)]
struct RunArgs {
    // The help is a string, not a doc comment: rustdoc would read `[V6]`
    // as a link, and an escaped `\[V6\]` would show its backslashes.
    #[arg(long, value_name = "ADDR", value_parser = cli::parse_addr,
          default_value = echoes::addr::DEFAULT_ADDR,
          help = "The server: HOST:PORT, [V6]:PORT, tcp://HOST:PORT, tls://HOST:PORT, \
                  udp://HOST:PORT, unix:PATH, ws://HOST:PORT/PATH, wss://HOST:PORT/PATH \
                  (each message one binary WebSocket message), http://HOST:PORT/PATH, \
                  https://HOST:PORT/PATH (each message one HTTP request, see --http-request)")]
    connect: Addr,
    /// Concurrent connections (churn: concurrent operations); the server
    /// is --connect ADDR
    #[arg(short, long, value_name = "N", value_parser = cli::parse_connections,
          default_value = "1")]
    connections: usize,
    /// Bytes per message (stream: per write), e.g. 64, 1KiB
    #[arg(short, long, value_name = "BYTES", value_parser = cli::parse_nonzero_size,
          default_value = "64")]
    size: usize,
    /// How long to measure, after the warm-up
    #[arg(short, long, value_name = "DURATION", value_parser = cli::parse_positive_duration,
          default_value = "10s")]
    duration: Duration,
    /// pingpong: send, await the echo, repeat; stream: write and read at
    /// once; churn: connect, echo one message, close
    #[arg(short, long, value_enum, default_value_t = Mode::Pingpong)]
    mode: Mode,
    /// Open loop at this total rate (messages or operations per second);
    /// latency counts from when each message was due
    #[arg(long, value_name = "MSGS_PER_SEC", value_parser = parse_rate)]
    rate: Option<f64>,
    /// Messages in flight per connection (pingpong)
    #[arg(long, value_name = "N", value_parser = cli::parse_nonzero_count, default_value = "1")]
    pipeline: usize,
    /// Run this long before measuring
    #[arg(long, value_name = "DURATION", value_parser = cli::parse_duration, default_value = "1s")]
    warmup: Duration,
    /// Begin measuring at this wall-clock time, so that several load
    /// machines measure the same window: RFC 3339 (2026-12-07T10:00:00Z,
    /// or with an offset, +01:00) or Unix seconds (@1796637600); at most
    /// 1 s past and 24 h ahead. Connections open first, the warm-up runs
    /// just before it
    #[arg(long, value_name = "TIME", value_parser = parse_start_at)]
    start_at: Option<std::time::SystemTime>,
    /// How long to wait to connect, and for an owed echo to move [default:
    /// 10s]; over udp://, for each datagram's reply, after which it counts
    /// as lost [default: 1s]
    #[arg(long, value_name = "DURATION", value_parser = cli::parse_positive_duration)]
    timeout: Option<Duration>,
    /// Over http:// and https://, what each message is: echo: POST
    /// PATH?echo_body with -s bytes, the same bytes must come back; size:
    /// GET PATH?size=SIZE, the body must be the server's size= pattern;
    /// reflect: GET PATH, the body must be JSON. A status other than 2xx
    /// is an error of kind status [default: echo]
    #[arg(long, value_enum, value_name = "KIND")]
    http_request: Option<HttpRequestKind>,
    /// Over http:// and https://, make each message a gRPC message to
    /// grpc.testing.TestService (HTTP/2) with -s bytes, asking for -s bytes
    /// back, which must be -s zeros: unary, one UnaryCall each; duplex,
    /// ping-pong on one FullDuplexCall per connection (--pipeline in flight
    /// on it). A status other than OK is an error of kind status
    #[arg(long, value_enum, value_name = "CALL", num_args = 0..=1,
          default_missing_value = "unary", conflicts_with_all = ["http_request", "http2"])]
    grpc: Option<GrpcCall>,
    /// Over http:// and https://, speak HTTP/2 (prior knowledge over
    /// http://, ALPN h2 over https://) instead of HTTP/1.1 with keep-alive;
    /// --pipeline N is then N concurrent streams per connection
    #[arg(long)]
    http2: bool,
    #[command(flatten)]
    tls: cli::TlsClientArgs,
    /// Send a PROXY protocol header of this version on every connection,
    /// before the data (before the TLS handshake on tls://); not over udp://
    #[arg(long, value_name = "VERSION")]
    proxy_protocol: Option<echoes::proxy::Version>,
    #[arg(long, value_name = "ADDR", value_parser = echoes::proxy::parse_source,
          requires = "proxy_protocol",
          help = "The client address the PROXY headers claim: IP, IP:PORT or [V6]:PORT \
                  [default: each connection's real source address]")]
    proxy_source: Option<std::net::SocketAddr>,
    /// Claim a different client on each connection: the n-th connection's
    /// PROXY header claims the source IP plus n
    #[arg(long, requires = "proxy_protocol")]
    proxy_vary_source: bool,
    /// Worker threads, each a single-threaded runtime (1 keeps the bench on one core)
    #[arg(long, value_name = "N", value_parser = cli::parse_threads, default_value = "1")]
    threads: usize,
    /// Local addresses to connect from, in turn: an IP, an IPv4 range
    /// (127.0.0.2-127.0.0.254), none, or auto (that range for plain TCP to
    /// a loopback address, so churn is not limited by one address's ports)
    #[arg(long, value_name = "SOURCE", value_parser = parse_source, default_value = "auto")]
    source: bench::Source,
    #[command(flatten)]
    out: OutArgs,
}

const EXAMPLES: &str = "\
Examples:
  # 50 connections, 64-byte ping-pong, for 10 s
  echo-bench --connect 127.0.0.1:7 -c 50 -s 64 -d 10s
  # open loop at 20k msg/s in total, the latency curve drawn as SVG
  echo-bench --connect 127.0.0.1:7 --rate 20000 -c 20 --plot latency.svg
  # UDP, one datagram per message; a reply later than --timeout is a loss
  # (echo-server answers one source 1000 times a second: --udp-rate 0)
  echo-bench --connect udp://127.0.0.1:7 -c 4 -s 512 --timeout 200ms
  # TLS connections per second, pinning the fingerprint echo-server logs
  echo-bench --connect tls://localhost:8443 --tls-pin FINGERPRINT -m churn
  # WebSocket (echo-server -l http://...), open loop at 2000 msg/s
  echo-bench --connect ws://127.0.0.1:8080/ -c 10 --rate 2000
  # HTTP/1.1 keep-alive, each message a POST whose body must come back
  echo-bench --connect http://127.0.0.1:8080/ -c 10 -s 1KiB
  # HTTP/2 over TLS (a self-signed certificate: -k), 8 streams per connection
  echo-bench --connect https://localhost:8444/ -k --http2 --pipeline 8
  # GET ?size=64KiB, each body checked against the server's size= pattern
  echo-bench --connect http://127.0.0.1:8080/ --http-request size -s 64KiB
  # gRPC unary calls to grpc.testing.TestService, 4 streams per connection
  echo-bench --connect http://127.0.0.1:8080/ --grpc --pipeline 4 -s 256
  # gRPC ping-pong on one FullDuplexCall per connection
  echo-bench --connect http://127.0.0.1:8080/ --grpc duplex -c 4 -s 256
  # one target, several load machines: save each histogram, then merge
  echo-bench --connect localhost:7 -c 50 --save-hist $(hostname).hlog
  echo-bench merge *.hlog --plot all.svg
  # the merged latencies second by second (UTC)
  echo-bench merge *.hlog --over-time

Exit status: 0 when every byte came back; 1 on errors (mismatch, short echo,
reset, timeout, refused connection, UDP loss, HTTP status not 2xx) or when a
file cannot be read or written; 2 on bad usage.";

fn parse_source(s: &str) -> Result<bench::Source, String> {
    s.parse()
}

fn parse_start_at(s: &str) -> Result<std::time::SystemTime, String> {
    bench::parse_start_at(s, std::time::SystemTime::now()).map_err(|e| e.to_string())
}

fn parse_rate(s: &str) -> Result<f64, String> {
    match s.trim().parse::<f64>() {
        Ok(r) if r.is_finite() && r > 0.0 => Ok(r),
        _ => Err(format!(
            "'{s}' is not a positive number of messages per second"
        )),
    }
}

/// The man page's own sections.
const MAN: cli::ManSections = cli::ManSections {
    exit_status: "0: every byte came back, and at least one message \
completed.\n\n\
1: errors during the run (mismatch, short echo, reset, timeout, refused \
connection, UDP loss, an HTTP status other than 2xx), no message completed, the server cannot be \
reached, or a file cannot be read or written.\n\n\
2: bad usage (an unknown flag, an absurd value, flags that do not go \
together).",
    environment: "RUST_LOG: the log filter (tracing's EnvFilter syntax) when \
neither -q nor -v is given; an invalid one is reported and ignored.\n\n\
NO_COLOR: no colour on a terminal.",
    signals: "SIGINT and SIGTERM end the bench at once (the default \
actions): no report is printed. SIGPIPE is ignored: a closed standard \
output (| head) loses the report, not the exit status.",
};

fn main() -> ExitCode {
    let args: Args = cli::parse_or_exit();
    if let Some(code) = cli::handle_generate::<Args>(args.generate, &MAN) {
        return code;
    }
    args.log.init();
    let quiet = args.log.quiet || args.log.log_format == logging::LogFormat::Json;
    match args.command {
        Some(Command::Merge(merge)) => merge_files(merge),
        None => run(args.run, !quiet),
    }
}

/// Exits with status 2 and `msg`, as clap does for bad usage.
fn usage(msg: &str) -> ! {
    cli::usage_error(Args::command(), msg)
}

/// The gRPC calls `--grpc` makes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum GrpcCall {
    /// One UnaryCall per message.
    Unary,
    /// Ping-pong on one FullDuplexCall per connection.
    Duplex,
}

fn run(args: RunArgs, progress: bool) -> ExitCode {
    let proxy = args.proxy_protocol.map(|version| {
        echoes::proxy::ProxySend::new(version)
            .with_source(args.proxy_source)
            .varied(args.proxy_vary_source)
    });
    let web = matches!(
        args.connect.transport(),
        echoes::addr::Transport::Http | echoes::addr::Transport::Https
    );
    if !web && (args.http2 || args.http_request.is_some() || args.grpc.is_some()) {
        let flag = if args.http2 {
            "--http2"
        } else if args.grpc.is_some() {
            "--grpc"
        } else {
            "--http-request"
        };
        usage(&format!(
            "{flag} applies to http:// and https:// only, not {}://",
            args.connect.transport()
        ));
    }
    let mut config = BenchConfig::new(args.connect);
    config
        .http_request(match args.grpc {
            Some(GrpcCall::Unary) => HttpRequestKind::Grpc,
            Some(GrpcCall::Duplex) => HttpRequestKind::GrpcDuplex,
            None => args.http_request.unwrap_or_default(),
        })
        .http2(args.http2)
        .mode(args.mode)
        .connections(args.connections)
        .size(args.size)
        .duration(args.duration)
        .warmup(args.warmup)
        .start_at(args.start_at)
        .rate(args.rate)
        .pipeline(args.pipeline)
        .threads(args.threads)
        .source(args.source)
        .progress(progress)
        .proxy(proxy);
    if let Some(timeout) = args.timeout {
        config.timeout(timeout);
    }
    if let Err(e) = config.validate() {
        usage(&cli::bench_config_message(&e));
    }
    if args.out.plot.is_some() && args.mode == Mode::Stream {
        usage("--plot draws latencies, which stream mode does not measure");
    }
    match args.tls.client_config_for(config.addr()) {
        Ok(tls) => config.tls(tls),
        Err(TlsArgsError::NotTls(msg)) => usage(&msg),
        Err(e) => return cli::fail("echo-bench", &e.into()),
    };
    // Before the run, not after it: a typo in a path must not cost the
    // measurement.
    if let Err(e) = args.out.check() {
        return cli::fail("echo-bench", &e);
    }
    let report = match bench::run(&config) {
        Ok(r) => r,
        Err(BenchError::Config(e)) => usage(&cli::bench_config_message(&e)),
        Err(e) => return cli::fail("echo-bench", &e.into()),
    };
    finish(&report, &args.out, false)
}

fn merge_files(args: MergeArgs) -> ExitCode {
    if let Err(e) = args.out.check() {
        return cli::fail("echo-bench", &e);
    }
    let mut runs = Vec::with_capacity(args.files.len());
    for path in &args.files {
        match bench::read_histogram(path) {
            Ok(run) => runs.push(run),
            Err(e) => return cli::fail("echo-bench", &e.into()),
        }
    }
    let merged = match bench::merge(&runs) {
        Ok(m) => m,
        Err(e) => return cli::fail("echo-bench", &e.into()),
    };
    for warning in &merged.warnings {
        logging::warning("echo-bench", warning);
    }
    finish(&merged.report, &args.out, args.over_time)
}

impl OutArgs {
    /// Checks that the output files can be written where they are asked for.
    fn check(&self) -> anyhow::Result<()> {
        for path in self.plot.iter().chain(&self.save_hist) {
            bench::check_output_path(path)?;
        }
        Ok(())
    }
}

/// Prints the report, writes the files asked for, and says how it went.
/// The report comes first: whatever fails after it, it is not lost.
/// `over_time` adds its intervals, second by second.
fn finish(report: &Report, out: &OutArgs, over_time: bool) -> ExitCode {
    let text = match (out.json, over_time) {
        (true, false) => format!("{}\n", report.to_json()),
        (true, true) => format!("{}\n", bench::over_time_json(report)),
        (false, false) => report.to_text(),
        (false, true) => bench::over_time_text(report),
    };
    // A closed standard output (`| head`) loses the report, nothing else.
    let _ = std::io::stdout().lock().write_all(text.as_bytes());
    let mut status = ExitCode::SUCCESS;
    if let Some(path) = &out.plot
        && let Err(e) = bench::write_plot(report, path)
    {
        let err = anyhow::Error::new(e).context(format!("cannot write {}", path.display()));
        status = cli::fail("echo-bench", &err);
    }
    if let Some(path) = &out.save_hist
        && let Err(e) = bench::write_histogram(report, path)
    {
        status = cli::fail("echo-bench", &e.into());
    }
    for note in &report.notes {
        logging::direct(tracing::Level::INFO, "echo-bench", note);
    }
    if report.errors > 0 {
        let first = report.first_error.as_deref().unwrap_or("");
        logging::fatal(
            "echo-bench",
            &format!(
                "{} error(s) ({}); first: {first}",
                report.errors,
                report.error_kinds.describe()
            ),
        );
        return ExitCode::from(1);
    }
    if report.messages == 0 {
        logging::fatal(
            "echo-bench",
            &format!("no message completed in {:.2} s", report.seconds),
        );
        return ExitCode::from(1);
    }
    status
}
