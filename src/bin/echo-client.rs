//! `echo-client`: the seed's echo client, checking every byte. Flags only;
//! the work is in the `echoes` library.

// What the three command lines share (flags, logging, man pages): the
// binaries' own code, not the library's API.
#[path = "cli/mod.rs"]
mod cli;

use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::Duration;

use clap::{CommandFactory, Parser};
use cli::{LogArgs, TlsArgsError, TlsClientArgs};
use echoes::Addr;
use echoes::addr::Transport;
use echoes::client::{self, ClientError, ClientOptions, SEED_MESSAGES};
use echoes::client::{HttpRequest, http_request};
use echoes::proxy::Version;
use echoes::proxy::{self, ProxySend};
use hyper::header::{HeaderName, HeaderValue};

/// Sends messages to an echo server, prints the conversation, checks the echo.
#[derive(Debug, Parser)]
#[command(name = "echo-client", version, after_help = EXAMPLES)]
struct Args {
    // `help` rather than a doc comment: rustdoc would read `[V6]` as a link,
    // and an escaped `\[V6\]` would show its backslashes in --help.
    #[arg(short, long, value_name = "ADDR", value_parser = cli::parse_connect_addr,
          default_value = echoes::addr::DEFAULT_ADDR,
          help = "The server: HOST:PORT, [V6]:PORT, tcp://HOST:PORT, tls://HOST:PORT, \
                  udp://HOST:PORT, unix:PATH, ws://HOST:PORT/PATH, wss://HOST:PORT/PATH; \
                  http://HOST:PORT/PATH or https://HOST:PORT/PATH sends one request and \
                  prints the response")]
    connect: Addr,
    /// Messages to send, each as its own write [default: the seed's three];
    /// `-` reads standard input instead. Over ws:// and wss://, each is one
    /// text message (with --stdin, each chunk of input one binary message)
    #[arg(value_name = "MESSAGE")]
    messages: Vec<String>,
    /// Stream standard input to the server and the echo to standard output
    #[arg(long)]
    stdin: bool,
    /// How long to wait to connect, and, once bytes are owed, for the
    /// server to take more or echo more (over udp://, for each reply; one
    /// resend follows)
    #[arg(long, value_name = "DURATION", value_parser = cli::parse_positive_duration,
          default_value = "10s")]
    timeout: Duration,
    /// Send a PROXY protocol header of this version before the data (before
    /// the TLS handshake on tls://), as a balancer would; not over udp://
    #[arg(long, value_name = "VERSION")]
    proxy_protocol: Option<Version>,
    #[arg(long, value_name = "ADDR", value_parser = proxy::parse_source,
          requires = "proxy_protocol",
          help = "The client address the PROXY header claims: IP, IP:PORT or [V6]:PORT \
                  [default: the real source address]")]
    proxy_source: Option<SocketAddr>,
    #[command(flatten)]
    tls: TlsClientArgs,
    #[command(flatten)]
    http: HttpArgs,
    #[command(flatten)]
    log: LogArgs,
    /// Print a man page or shell completions, generated from these flags, and exit
    #[arg(long, value_enum, value_name = "KIND", exclusive = true)]
    generate: Option<cli::Generate>,
}

/// The request over http:// and https://.
#[derive(Debug, clap::Args)]
struct HttpArgs {
    /// The request method, for http:// and https:// [default: GET, or POST
    /// with --data]
    #[arg(short = 'X', long, value_name = "METHOD", value_parser = client::parse_method)]
    method: Option<hyper::Method>,
    /// A request header, 'Name: value', for http:// and https:// (repeatable)
    #[arg(short = 'H', long = "header", value_name = "HEADER", value_parser = client::parse_header)]
    headers: Vec<(HeaderName, HeaderValue)>,
    /// The request body, for http:// and https://
    #[arg(long, value_name = "DATA")]
    data: Option<String>,
    /// Speak HTTP/2 (prior knowledge over http://, ALPN h2 over https://)
    #[arg(long)]
    http2: bool,
}

impl HttpArgs {
    fn given(&self) -> bool {
        self.method.is_some() || !self.headers.is_empty() || self.data.is_some() || self.http2
    }

    fn request(self) -> HttpRequest {
        let body = self.data.map(String::into_bytes).unwrap_or_default();
        let method = self.method.unwrap_or(if body.is_empty() {
            hyper::Method::GET
        } else {
            hyper::Method::POST
        });
        HttpRequest {
            method,
            headers: self.headers,
            body: body.into(),
            http2: self.http2,
        }
    }
}

/// Ends `--help`: the seed's use, then one line per task. Each
/// `echo-client` command here is parsed by the tests below.
const EXAMPLES: &str = "\
Examples:
  echo-client                           the seed's conversation, localhost:10000
  echo-client -c 127.0.0.1:7 hi there   two messages, two writes, echo checked
  echo-client -c unix:/tmp/echo.sock hello

  Through a listener that wants a PROXY header (echo-server --proxy-protocol):
  echo-client -c 127.0.0.1:7007 --proxy-protocol v2 --proxy-source 192.0.2.1 hi

  Pipe bytes through the server, like nc (every byte checked):
  tar c . | echo-client --stdin | tar t

  UDP (RFC 862): one datagram per message, each reply awaited:
  echo-client -c udp://127.0.0.1:7007 one two

  TLS to echo-server --tls-self-signed, pinning the fingerprint it logs
  (or -k: no check at all):
  echo-client -c tls://localhost:8443 --tls-pin FINGERPRINT hello

  WebSocket to echo-server -l http://127.0.0.1:8080: one message each:
  echo-client -c ws://127.0.0.1:8080/chat hello world

  One HTTP request; the server's reflection of it is printed:
  echo-client -c http://127.0.0.1:8080/api -X POST -H X-Trace:1 --data hi";

/// The man page's own sections.
const MAN: cli::ManSections = cli::ManSections {
    exit_status: "0: every byte came back, in order.\n\n\
1: a runtime failure: the server cannot be reached, the echo differs \
(echo mismatch at byte N), is short or has extra bytes, or a wait \
bounded by --timeout ran out.\n\n\
2: bad usage (an unknown flag, a malformed address or duration).\n\n\
With --stdin, a standard output closed early (| head) ends the client \
quietly, with status 0.",
    environment: "RUST_LOG: the log filter (tracing's EnvFilter syntax) when \
neither -q nor -v is given; an invalid one is reported and ignored.\n\n\
NO_COLOR: no colour on a terminal.",
    signals: "SIGINT and SIGTERM end the client at once (the default \
actions). SIGPIPE is ignored: a closed standard output ends --stdin \
quietly instead.",
};

/// The flags of echo-bench that a user may give echo-client, as
/// `(short, long)`: the client sends once, the bench loads.
const BENCH_FLAGS: [(&str, &str); 10] = [
    ("-d", "--duration"),
    ("-m", "--mode"),
    ("-s", "--size"),
    ("", "--connections"),
    ("", "--rate"),
    ("", "--warmup"),
    ("", "--json"),
    ("", "--plot"),
    ("", "--save-hist"),
    ("", "--pipeline"),
];

/// The words for a flag of echo-bench given to echo-client.
fn bench_flag_hint(arg: &str) -> Option<String> {
    let flag = arg.split('=').next().unwrap_or(arg);
    let (short, long) = BENCH_FLAGS
        .iter()
        .find(|(s, l)| (!s.is_empty() && flag == *s) || flag == *l)?;
    let both = if short.is_empty() {
        long.to_string()
    } else {
        format!("{short}/{long}")
    };
    Some(format!(
        "{both} is echo-bench's flag (echo-client sends each message once; \
         echo-bench --connect ADDR {arg} … loads a server)"
    ))
}

fn main() -> ExitCode {
    let args: Args = cli::parse_or_exit_hinting(bench_flag_hint);
    if let Some(code) = cli::handle_generate::<Args>(args.generate, &MAN) {
        return code;
    }
    args.log.init();
    let use_stdin = args.stdin || args.messages.iter().any(|m| m == "-");
    if use_stdin && args.messages.iter().any(|m| m != "-") {
        cli::usage_error(
            Args::command(),
            "messages cannot be combined with --stdin or '-'",
        );
    }
    let web = matches!(args.connect.transport(), Transport::Http | Transport::Https);
    if web && (use_stdin || !args.messages.is_empty()) {
        cli::usage_error(
            Args::command(),
            "http:// and https:// send one request: give its body with --data, not as messages",
        );
    }
    if !web && args.http.given() {
        cli::usage_error(
            Args::command(),
            "-X, -H, --data and --http2 apply to http:// and https:// only",
        );
    }
    let proxy = args
        .proxy_protocol
        .map(|version| ProxySend::new(version).with_source(args.proxy_source));
    let mut opts = ClientOptions::new(args.connect);
    opts.timeout(args.timeout).proxy(proxy);
    if let Err(e) = opts.validate() {
        cli::usage_error(Args::command(), cli::client_options_message(&e));
    }
    let tls = match args.tls.client_config_for(opts.addr()) {
        Ok(config) => config,
        Err(TlsArgsError::NotTls(msg)) => cli::usage_error(Args::command(), msg),
        Err(e) => return cli::fail("echo-client", &e.into()),
    };
    opts.tls(tls);
    let rt = match cli::runtime() {
        Ok(rt) => rt,
        Err(e) => return cli::fail("echo-client", &e.into()),
    };
    if web {
        let request = args.http.request();
        return match rt.block_on(http_request(&opts, &request, tokio::io::stdout())) {
            Ok(_) => ExitCode::SUCCESS,
            Err(e) => cli::fail("echo-client", &e.into()),
        };
    }
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
    // Not a plain drop, which would wait for the blocking read of standard
    // input to return: a client that has failed must not hang on it.
    rt.shutdown_background();
    match result {
        Ok(_) => ExitCode::SUCCESS,
        // `| head` took what it wanted: like cat, end quietly.
        Err(ClientError::OutputClosed) => ExitCode::SUCCESS,
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
