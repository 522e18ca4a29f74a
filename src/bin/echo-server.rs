//! `echo-server`: the seed's echo server, production grade. Flags only; the
//! work is in the `echoes` library.

use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use clap::Parser;
use echoes::cli::{self, LogArgs};
use echoes::{Addr, Server, ServerConfig, notify, server, shutdown};

/// An asynchronous echo server: whatever a peer sends comes back, in order.
#[derive(Debug, Parser)]
#[command(name = "echo-server", version, after_help = EXAMPLES)]
struct Args {
    /// Address to listen on (repeatable): HOST:PORT, [V6]:PORT, tcp://HOST:PORT
    #[arg(short, long = "listen", value_name = "ADDR", value_parser = cli::parse_addr,
          default_value = echoes::addr::DEFAULT_ADDR)]
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
    /// On SIGINT/SIGTERM, let open connections finish for this long
    #[arg(long, value_name = "DURATION", value_parser = cli::parse_duration, default_value = "10s")]
    shutdown_timeout: Duration,
    /// Worker threads [default: one per core]
    #[arg(long, value_name = "N", value_parser = cli::parse_nonzero_count)]
    threads: Option<usize>,
    #[command(flatten)]
    log: LogArgs,
    /// Print a man page or shell completions, generated from these flags, and exit
    #[arg(long, value_enum, value_name = "KIND", exclusive = true)]
    generate: Option<cli::Generate>,
}

const EXAMPLES: &str = "\
Examples:
  echo-server                              listen on localhost:10000, like the seed
  echo-server -l 0.0.0.0:7 -l [::]:7       every interface, both families
  echo-server -l 127.0.0.1:0 -v            a free port; log every chunk";

fn main() -> ExitCode {
    let args = Args::parse();
    if let Some(code) = cli::handle_generate::<Args>(args.generate) {
        return code;
    }
    args.log.init();
    let threads = args.threads.unwrap_or_else(server::default_threads);
    let result = server::runtime(threads)
        .context("cannot start the runtime")
        .and_then(|rt| rt.block_on(serve(args)));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => cli::fail("echo-server", &e),
    }
}

async fn serve(args: Args) -> anyhow::Result<()> {
    let config = ServerConfig {
        listen: args.listen,
        read_size: args.read_size,
        max_connections: args.max_connections,
        max_connections_per_ip: args.max_connections_per_ip,
        idle_timeout: args.idle_timeout,
        shutdown_timeout: args.shutdown_timeout,
    };
    // Signals first: a SIGTERM right after start-up must still be graceful.
    let handle = echoes::ShutdownHandle::new();
    shutdown::on_signals(handle.clone()).context("cannot install signal handlers")?;
    let server = Server::bind_with_handle(config, handle.clone()).await?;
    // systemd's Type=notify: ready once every socket is bound.
    notify::ready().context("cannot notify the service manager")?;
    tokio::spawn(async move {
        handle.wait_shutdown().await;
        let _ = notify::stopping();
    });
    server.run().await?;
    Ok(())
}
