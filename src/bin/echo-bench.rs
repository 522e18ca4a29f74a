//! `echo-bench`: a load generator that measures any echo server and checks
//! every byte. Flags only; the work is in `echoes::bench`.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use echoes::Addr;
use echoes::bench::{self, BenchConfig, BenchError, Mode, Report};
use echoes::cli;

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
    /// Print a man page or shell completions, generated from these flags, and exit
    #[arg(long, value_enum, value_name = "KIND", exclusive = true)]
    generate: Option<cli::Generate>,
}

#[derive(Debug, clap::Subcommand)]
enum Command {
    /// Report runs saved with --save-hist (by several load machines, say)
    /// as one, histograms added: echo-bench merge FILE... [--json] [--plot
    /// FILE.svg] [--save-hist FILE]
    Merge(MergeArgs),
}

#[derive(Debug, clap::Args)]
struct MergeArgs {
    /// Files written by echo-bench --save-hist
    #[arg(value_name = "FILE", required = true)]
    files: Vec<PathBuf>,
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
    /// Save the latency histogram (HdrHistogram interval log) and the
    /// report to this file, for echo-bench merge
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
                  udp://HOST:PORT, unix:PATH")]
    connect: Addr,
    /// Concurrent connections (churn: concurrent operations)
    #[arg(short, long, value_name = "N", value_parser = cli::parse_nonzero_count,
          default_value = "1")]
    connections: usize,
    /// Bytes per message (stream: per write), e.g. 64, 1KiB
    #[arg(short, long, value_name = "BYTES", value_parser = cli::parse_nonzero_size,
          default_value = "64")]
    size: usize,
    /// How long to measure, after the warm-up
    #[arg(short, long, value_name = "DURATION", value_parser = parse_positive_duration,
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
    /// How long to wait to connect, and for an owed echo to move [default:
    /// 10s]; over udp://, for each datagram's reply, after which it counts
    /// as lost [default: 1s]
    #[arg(long, value_name = "DURATION", value_parser = parse_positive_duration)]
    timeout: Option<Duration>,
    #[command(flatten)]
    tls: cli::TlsClientArgs,
    /// Send a PROXY protocol header of this version on every connection,
    /// before the data (before the TLS handshake on tls://); not over udp://
    #[arg(long, value_name = "VERSION")]
    proxy_protocol: Option<echoes::proxy::Version>,
    #[arg(long, value_name = "ADDR", value_parser = echoes::proxy::send::parse_source,
          requires = "proxy_protocol",
          help = "The client address the PROXY headers claim: IP, IP:PORT or [V6]:PORT \
                  [default: each connection's real source address]")]
    proxy_source: Option<std::net::SocketAddr>,
    /// Claim a different client on each connection: the n-th connection's
    /// PROXY header claims the source IP plus n
    #[arg(long, requires = "proxy_protocol")]
    proxy_vary_source: bool,
    /// Worker threads, each a single-threaded runtime (1 keeps the bench on one core)
    #[arg(long, value_name = "N", value_parser = cli::parse_nonzero_count, default_value = "1")]
    threads: usize,
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
  echo-bench --connect udp://127.0.0.1:7 -c 4 -s 512 --timeout 200ms
  # TLS connections per second, trusting one CA
  echo-bench --connect tls://host:8443 --tls-ca ca.pem -m churn
  # behind a proxy (echo-server --proxy-protocol): a new client each time
  echo-bench --connect host:7 -m churn --proxy-protocol v2 --proxy-vary-source
  # one target, several load machines: save each histogram, then merge
  echo-bench --connect host:7 -c 50 --save-hist $(hostname).hlog
  echo-bench merge *.hlog --plot all.svg

Exit status: 0 when every byte came back; 1 on errors (mismatch, short echo,
reset, timeout, refused connection, UDP loss) or when a file cannot be read
or written; 2 on bad usage.";

fn parse_positive_duration(s: &str) -> Result<Duration, String> {
    let d = cli::parse_duration(s)?;
    if d.is_zero() {
        return Err("must be more than 0".into());
    }
    Ok(d)
}

fn parse_rate(s: &str) -> Result<f64, String> {
    match s.trim().parse::<f64>() {
        Ok(r) if r.is_finite() && r > 0.0 => Ok(r),
        _ => Err(format!(
            "'{s}' is not a positive number of messages per second"
        )),
    }
}

fn main() -> ExitCode {
    let args = Args::parse();
    if let Some(code) = cli::handle_generate::<Args>(args.generate) {
        return code;
    }
    match args.command {
        Some(Command::Merge(merge)) => merge_files(merge),
        None => run(args.run),
    }
}

/// Exits with status 2 and `msg`, as clap does for bad usage.
fn usage(msg: &str) -> ! {
    clap::Error::raw(clap::error::ErrorKind::ArgumentConflict, format!("{msg}\n")).exit()
}

fn run(args: RunArgs) -> ExitCode {
    let mut config = BenchConfig::new(args.connect);
    config.mode = args.mode;
    config.connections = args.connections;
    config.size = args.size;
    config.duration = args.duration;
    config.warmup = args.warmup;
    config.rate = args.rate;
    config.pipeline = args.pipeline;
    config.timeout = args.timeout.unwrap_or(config.timeout);
    config.threads = args.threads;
    config.progress = true;
    config.proxy = args.proxy_protocol.map(|version| {
        echoes::proxy::send::ProxySend::new(version)
            .with_source(args.proxy_source)
            .varied(args.proxy_vary_source)
    });
    if let Err(e) = config.validate() {
        usage(&e.to_string());
    }
    if args.out.plot.is_some() && config.mode == Mode::Stream {
        usage("--plot draws latencies, which stream mode does not measure");
    }
    match args.tls.client_config_for(&config.addr) {
        Ok(tls) => config.tls = tls,
        Err(e) => return cli::fail("echo-bench", &e.into()),
    }
    let report = match bench::run(&config) {
        Ok(r) => r,
        Err(BenchError::Config(msg)) => usage(&msg),
        Err(e) => return cli::fail("echo-bench", &e.into()),
    };
    finish(&report, &args.out)
}

fn merge_files(args: MergeArgs) -> ExitCode {
    let mut runs = Vec::with_capacity(args.files.len());
    for path in &args.files {
        match bench::histlog::read(path) {
            Ok(run) => runs.push(run),
            Err(e) => return cli::fail("echo-bench", &e.into()),
        }
    }
    let merged = match bench::merge::merge(&runs) {
        Ok(m) => m,
        Err(e) => return cli::fail("echo-bench", &e.into()),
    };
    for warning in &merged.warnings {
        eprintln!("echo-bench: warning: {warning}");
    }
    finish(&merged.report, &args.out)
}

/// Writes the files asked for, prints the report, and says how it went.
fn finish(report: &Report, out: &OutArgs) -> ExitCode {
    if let Some(path) = &out.plot
        && let Err(e) = bench::plot::write(report, path)
    {
        let err = anyhow::Error::new(e).context(format!("cannot write {}", path.display()));
        return cli::fail("echo-bench", &err);
    }
    if let Some(path) = &out.save_hist
        && let Err(e) = bench::histlog::write(report, path)
    {
        return cli::fail("echo-bench", &e.into());
    }
    if out.json {
        println!("{}", report.to_json());
    } else {
        print!("{}", report.to_text());
    }
    if report.errors > 0 {
        let first = report.first_error.as_deref().unwrap_or("");
        eprintln!(
            "echo-bench: error: {} error(s) ({}); first: {first}",
            report.errors,
            report.error_kinds.describe()
        );
        return ExitCode::from(1);
    }
    if report.messages == 0 {
        eprintln!(
            "echo-bench: error: no message completed in {:.2} s",
            report.seconds
        );
        return ExitCode::from(1);
    }
    ExitCode::SUCCESS
}
