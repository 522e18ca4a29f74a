//! `echo-bench`: a load generator that measures any echo server and checks
//! every byte. Flags only; the work is in `echoes::bench`.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use echoes::bench::{self, BenchConfig, BenchError, Mode};
use echoes::cli;
use echoes::transport::tls::{self, Fingerprint, TlsClientSettings};
use echoes::{Addr, Transport};

/// Measures an echo server: throughput, latency percentiles, and errors,
/// with every byte checked.
#[derive(Debug, Parser)]
#[command(version, after_help = EXAMPLES)]
struct Args {
    /// The server: HOST:PORT, [V6]:PORT, tcp://HOST:PORT, tls://HOST:PORT,
    /// udp://HOST:PORT, unix:PATH
    #[arg(long, value_name = "ADDR", value_parser = cli::parse_addr,
          default_value = echoes::addr::DEFAULT_ADDR)]
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
    /// Trust only these CA certificates (PEM) for tls:// [default: the system's]
    #[arg(long, value_name = "PEM", group = "trust")]
    tls_ca: Option<PathBuf>,
    /// Trust the server certificate with this SHA-256 fingerprint, as
    /// echo-server logs it (AB:CD:…)
    #[arg(long, value_name = "SHA256", value_parser = parse_fingerprint, group = "trust")]
    tls_pin: Option<Fingerprint>,
    /// Do not check the server's certificate at all (testing only)
    #[arg(short = 'k', long, group = "trust")]
    insecure: bool,
    /// A client certificate (PEM) to present, for mutual TLS
    #[arg(long, value_name = "PEM", requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// The private key (PEM) of --tls-cert
    #[arg(long, value_name = "PEM", requires = "tls_cert")]
    tls_key: Option<PathBuf>,
    /// Worker threads, each a single-threaded runtime (1 keeps the bench on one core)
    #[arg(long, value_name = "N", value_parser = cli::parse_nonzero_count, default_value = "1")]
    threads: usize,
    /// Print the report as one JSON object on standard output
    #[arg(long)]
    json: bool,
    /// Write the latency distribution (percentile curve) to this SVG file
    #[arg(long, value_name = "FILE.svg")]
    plot: Option<PathBuf>,
}

const EXAMPLES: &str = "\
Examples:
  echo-bench --connect 127.0.0.1:7 -c 50 -s 64 -d 10s      50 connections, 64-byte ping-pong
  echo-bench --connect 127.0.0.1:7 --rate 20000 -c 20       open loop, 20k msg/s in total
  echo-bench --connect 127.0.0.1:7 -m stream -s 64KiB       bulk throughput
  echo-bench --connect 127.0.0.1:7 -m churn -c 8 --json     connect/echo/close, as JSON

Exit status: 0 when every byte came back; 1 on errors (mismatch, short echo,
reset, timeout, refused connection); 2 on bad usage.";

fn parse_positive_duration(s: &str) -> Result<Duration, String> {
    let d = cli::parse_duration(s)?;
    if d.is_zero() {
        return Err("must be more than 0".into());
    }
    Ok(d)
}

fn parse_fingerprint(s: &str) -> Result<Fingerprint, String> {
    s.parse()
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
    let tls = if args.connect.transport() == Transport::Tls {
        let settings = TlsClientSettings {
            ca: args.tls_ca,
            insecure: args.insecure,
            pin: args.tls_pin,
            identity: args.tls_cert.zip(args.tls_key),
        };
        match tls::client_config(&settings) {
            Ok(config) => Some(config),
            Err(e) => return cli::fail("echo-bench", &e.into()),
        }
    } else {
        None
    };
    let mut config = BenchConfig::new(args.connect);
    config.mode = args.mode;
    config.connections = args.connections;
    config.size = args.size;
    config.duration = args.duration;
    config.warmup = args.warmup;
    config.rate = args.rate;
    config.pipeline = args.pipeline;
    config.timeout = args.timeout.unwrap_or(config.timeout);
    config.tls = tls;
    config.threads = args.threads;
    config.progress = true;
    let usage = |msg: &str| {
        clap::Error::raw(clap::error::ErrorKind::ArgumentConflict, format!("{msg}\n")).exit()
    };
    if let Err(e) = config.validate() {
        usage(&e.to_string());
    }
    if args.plot.is_some() && config.mode == Mode::Stream {
        usage("--plot draws latencies, which stream mode does not measure");
    }
    let report = match bench::run(&config) {
        Ok(r) => r,
        Err(BenchError::Config(msg)) => usage(&msg),
        Err(e) => return cli::fail("echo-bench", &e.into()),
    };
    if let Some(path) = &args.plot
        && let Err(e) = bench::plot::write(&report, path)
    {
        let err = anyhow::Error::new(e).context(format!("cannot write {}", path.display()));
        return cli::fail("echo-bench", &err);
    }
    if args.json {
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
