//! `echoes`: an asynchronous echo server, client and load generator.
//!
//! An echo server inside your own test: bind it on port 0, ask it which
//! port it got, talk to it, shut it down. This is the body of a
//! `#[tokio::test]`:
//!
//! ```
//! use echoes::{Server, ServerConfig};
//! use tokio::io::{AsyncReadExt, AsyncWriteExt};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let server = Server::bind(ServerConfig::new("127.0.0.1:0".parse()?)).await?;
//! let addr = server.tcp_addrs()[0];
//! let shutdown = server.shutdown_handle();
//! let running = tokio::spawn(server.run());
//!
//! let mut conn = tokio::net::TcpStream::connect(addr).await?;
//! conn.write_all(b"hello").await?;
//! conn.shutdown().await?; // half-close: the server echoes, then closes
//! let mut echo = Vec::new();
//! conn.read_to_end(&mut echo).await?;
//! assert_eq!(echo, b"hello");
//!
//! shutdown.shutdown(); // stop accepting; open connections may finish
//! running.await??;
//! # Ok(())
//! # }
//! ```
//!
//! Each transport's page has the same for its own kind of socket, with
//! this crate's client side: [`transport::tcp`], `transport::tls` (a
//! self-signed certificate; with the `tls` feature), [`transport::udp`]
//! and [`transport::unix`].
//!
//! Configure a server with [`ServerConfig`]'s setters (each says its
//! default); [`Server::bind`] checks the configuration first, and a
//! refusal is a [`ServerConfigError`], one variant per cause, so a program
//! can say it in its own words (`echo-server` names its flags).
//!
//! It began as a port of the Python asyncio streams echo server and client
//! (PyMOTW's `asyncio_echo_server_coroutine.py`), called *the seed* in
//! these docs and shown in the README's ["The seed, as you see
//! it"](https://github.com/echoes-rs/echoes#the-seed-as-you-see-it). It
//! keeps their behaviour and log lines: whatever a peer sends comes back,
//! in order, byte for byte; a peer that half-closes gets everything owed,
//! then end of stream; the logs say `NAME: MESSAGE`, data shown as Python's
//! `repr()` of bytes. The library holds everything; the `echo-server`,
//! `echo-client` and `echo-bench` binaries only parse flags and call it.
//!
//! # Features
//!
//! All on by default. Without any, the crate is TCP, UDP and Unix (with
//! the PROXY protocol, the limits, metrics and systemd), in about 30
//! crates.
//!
//! - `tls`: `tls://`, server and client (rustls, rcgen), the
//!   `transport::tls` module.
//! - `http`: `http://`, `https://`, `ws://` and `wss://` (hyper,
//!   tungstenite, serde_json), the `http` module; it takes `tls`.
//! - `cli`: what the binaries' command lines share, `cli` and `logging`,
//!   with clap, its man pages and completions, and tracing-subscriber.
//! - `bench`: the load generator, `bench`, with hdrhistogram and
//!   indicatif.
//!
//! `cargo install echoes` installs the three binaries, which need every
//! feature. A program that embeds the server or the client takes the
//! protocols it needs:
//! `echoes = { version = "0.1", default-features = false, features = ["tls"] }`.
//! An address of a protocol left out is refused, naming its feature
//! ([`ServerConfigError::NotBuilt`]).
//!
//! # Modules
//!
//! One idea each: [`addr`] (the `ADDR` forms, and resolving them),
//! [`server`] (bind, shards, accept, limits, shutdown), [`client`],
//! [`transport`] (what each kind of socket provides: TCP, TLS, UDP and its
//! reflection guard, Unix, WebSocket), [`http`] (the `http://` listeners),
//! [`proxy`] (the PROXY protocol, v1 and v2), [`metrics`] (counters and
//! the Prometheus page), [`shutdown`] (the handle and the signals),
//! [`activation`] (sockets passed by systemd) and [`notify`] (readiness
//! for systemd); with their features, [`bench`](mod@bench) (the load
//! generator that checks every byte), [`cli`] (what the binaries' command
//! lines share, their man pages included) and [`logging`] (the log lines).
//! Inside the crate: `echo` (the per-connection loop, the hot path) with
//! `splice`, `runtime` (the one runtime builder), `pyrepr` (Python's
//! `repr` of bytes) and `units` (durations and sizes as flags write them).
//!
//! How they fit together (the path of a byte from `accept` to `send`, the
//! invariants every change keeps, where to add a transport) is in
//! [ARCHITECTURE.md](https://github.com/echoes-rs/echoes/blob/main/ARCHITECTURE.md).

#![deny(missing_docs)]

pub mod activation;
pub mod addr;
#[cfg(feature = "bench")]
pub mod bench;
#[cfg(feature = "cli")]
pub mod cli;
pub mod client;
#[cfg(test)]
mod counting;
pub(crate) mod echo;
#[cfg(feature = "http")]
pub mod http;
#[cfg(test)]
mod layers;
#[cfg(feature = "cli")]
pub mod logging;
#[cfg(feature = "cli")]
mod manpage;
pub mod metrics;
pub mod notify;
pub mod proxy;
pub(crate) mod pyrepr;
pub(crate) mod runtime;
pub mod server;
pub mod shutdown;
pub(crate) mod splice;
pub mod transport;
pub(crate) mod units;

pub use addr::{Addr, ResolveError, Transport};
pub use client::{ClientError, ClientOptions};
pub use server::{Server, ServerConfig, ServerConfigError, ServerError, ServerStats};
pub use shutdown::ShutdownHandle;

/// Not part of the API: what the fuzz targets (`fuzz/`) and the property
/// tests (`tests/props`) exercise from outside the crate, the parsers of
/// durations and sizes and the bytes repr of the log lines.
#[doc(hidden)]
pub mod fuzzing {
    pub use crate::pyrepr::{PyBytes, cpython_reprs};
    pub use crate::units::{format_duration, parse_duration, parse_size};
}
