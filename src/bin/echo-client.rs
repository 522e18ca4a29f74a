//! `echo-client`: the seed's echo client, checking every byte. Flags only;
//! the work is in the `echoes` library.

use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use echoes::Addr;
use echoes::cli::{self, LogArgs, TlsClientArgs};
use echoes::client::{self, ClientOptions, SEED_MESSAGES};

/// Sends messages to an echo server, prints the conversation, checks the echo.
#[derive(Debug, Parser)]
#[command(name = "echo-client", version, after_help = EXAMPLES)]
struct Args {
    // `help` rather than a doc comment: rustdoc would read `[V6]` as a link,
    // and an escaped `\[V6\]` would show its backslashes in --help.
    #[arg(short, long, value_name = "ADDR", value_parser = cli::parse_addr,
          default_value = echoes::addr::DEFAULT_ADDR,
          help = "The server: HOST:PORT, [V6]:PORT, tcp://HOST:PORT, tls://HOST:PORT, \
                  udp://HOST:PORT, unix:PATH")]
    connect: Addr,
    /// Messages to send, each as its own write [default: the seed's three];
    /// `-` reads standard input instead
    #[arg(value_name = "MESSAGE")]
    messages: Vec<String>,
    /// Stream standard input to the server and the echo to standard output
    #[arg(long)]
    stdin: bool,
    /// How long to wait to connect, and for the echo once it is owed (over
    /// udp://, for each reply; one resend follows)
    #[arg(long, value_name = "DURATION", value_parser = cli::parse_duration, default_value = "10s")]
    timeout: Duration,
    #[command(flatten)]
    tls: TlsClientArgs,
    #[command(flatten)]
    log: LogArgs,
    /// Print a man page or shell completions, generated from these flags, and exit
    #[arg(long, value_enum, value_name = "KIND", exclusive = true)]
    generate: Option<cli::Generate>,
}

/// Ends `--help`: the seed's use, then one line per task. Each
/// `echo-client` command here is parsed by the tests below.
const EXAMPLES: &str = "\
Examples:
  echo-client                           the seed's conversation, localhost:10000
  echo-client -c 127.0.0.1:7 hi there   two messages, two writes, echo checked
  echo-client -c unix:/tmp/echo.sock hello

  Pipe bytes through the server, like nc (every byte checked):
  tar c . | echo-client --stdin | tar t

  UDP (RFC 862): one datagram per message, each reply awaited:
  echo-client -c udp://127.0.0.1:7007 one two

  TLS to echo-server --tls-self-signed, pinning the fingerprint it logs
  (or -k: no check at all):
  echo-client -c tls://localhost:8443 --tls-pin FINGERPRINT hello";

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
    let tls = match args.tls.client_config_for(&args.connect) {
        Ok(config) => config,
        Err(e) => return cli::fail("echo-client", &e.into()),
    };
    let opts = ClientOptions {
        addr: args.connect,
        timeout: args.timeout,
        tls,
    };
    let rt = match echoes::runtime::current_thread() {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_example_parses() {
        let examples = cli::example_commands(EXAMPLES, "echo-client");
        assert!(examples.len() >= 5, "{examples:?}");
        // FINGERPRINT stands for the 64 hex digits echo-server logs.
        let pin = ["AB"; 32].join(":");
        for words in examples {
            let words: Vec<String> = words
                .into_iter()
                .map(|w| if w == "FINGERPRINT" { pin.clone() } else { w })
                .collect();
            if let Err(e) = Args::try_parse_from(&words) {
                panic!("{words:?}: {e}");
            }
        }
    }
}
