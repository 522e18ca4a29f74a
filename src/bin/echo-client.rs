//! `echo-client`: the seed's echo client, checking every byte. Flags only;
//! the work is in the `echoes` library.

use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use echoes::Addr;
use echoes::cli::{self, LogArgs};
use echoes::client::{self, ClientOptions, SEED_MESSAGES};

/// Sends messages to an echo server, prints the conversation, checks the echo.
#[derive(Debug, Parser)]
#[command(name = "echo-client", version, after_help = EXAMPLES)]
struct Args {
    /// The server: HOST:PORT, [V6]:PORT, tcp://HOST:PORT
    #[arg(short, long, value_name = "ADDR", value_parser = cli::parse_addr,
          default_value = echoes::addr::DEFAULT_ADDR)]
    connect: Addr,
    /// Messages to send, each as its own write [default: the seed's three];
    /// `-` reads standard input instead
    #[arg(value_name = "MESSAGE")]
    messages: Vec<String>,
    /// Stream standard input to the server and the echo to standard output
    #[arg(long)]
    stdin: bool,
    /// How long to wait to connect, and for the echo once it is owed
    #[arg(long, value_name = "DURATION", value_parser = cli::parse_duration, default_value = "10s")]
    timeout: Duration,
    #[command(flatten)]
    log: LogArgs,
    /// Print a man page or shell completions, generated from these flags, and exit
    #[arg(long, value_enum, value_name = "KIND", exclusive = true)]
    generate: Option<cli::Generate>,
}

const EXAMPLES: &str = "\
Examples:
  echo-client                                   the seed's conversation with localhost:10000
  echo-client -c 127.0.0.1:7 hello world        two messages, two writes
  tar c dir | echo-client --stdin -c host:7 | tar t     nc-style, every byte checked";

fn main() -> ExitCode {
    let args = Args::parse();
    if let Some(code) = cli::handle_generate::<Args>(args.generate) {
        return code;
    }
    let use_stdin = args.stdin || args.messages.iter().any(|m| m == "-");
    if use_stdin && args.messages.iter().any(|m| m != "-") {
        clap::Error::raw(
            clap::error::ErrorKind::ArgumentConflict,
            "messages cannot be combined with --stdin or '-'\n",
        )
        .exit();
    }
    args.log.init();
    let opts = ClientOptions {
        addr: args.connect,
        timeout: args.timeout,
    };
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => return cli::fail("echo-client", &e.into()),
    };
    let result = rt.block_on(async {
        if use_stdin {
            client::pipe(&opts, tokio::io::stdin(), tokio::io::stdout()).await
        } else {
            let messages: Vec<Vec<u8>> = if args.messages.is_empty() {
                SEED_MESSAGES.iter().map(|m| m.to_vec()).collect()
            } else {
                args.messages.into_iter().map(String::into_bytes).collect()
            };
            client::send_messages(&opts, &messages).await
        }
    });
    match result {
        Ok(_) => ExitCode::SUCCESS,
        Err(e) => cli::fail("echo-client", &e.into()),
    }
}
