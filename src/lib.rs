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
//! [`transport`] has the same for each kind of socket, with this crate's
//! client side ([`transport::connect`], [`transport::UdpClient`]); TLS
//! with a self-signed certificate needs the `tls` feature.
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
//! - `tls`: `tls://`, server and client (rustls, rcgen), and the TLS
//!   settings of [`transport`].
//! - `http`: `http://`, `https://`, `ws://` and `wss://` (hyper,
//!   tungstenite, serde_json), the `http` module; it takes `tls`.
//! - `bench`: the load generator, `bench`, with hdrhistogram and
//!   indicatif.
//! - `cli`: the binaries' own dependencies (clap, its man pages and
//!   completions, tracing-subscriber). Their command-line code lives with
//!   them in `src/bin/`, not in the library.
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
//! Twelve, one idea each, each with an example: [`addr`] (the `ADDR`
//! forms, and resolving them), [`server`] (bind, shards, limits,
//! shutdown), [`client`] (the seed's conversation, and HTTP and
//! WebSocket requests), [`transport`] (connecting any address, UDP's
//! client, the TLS settings), [`http`] (the settings of the `http://`
//! listeners, and the `size=` pattern), [`proxy`] (the PROXY protocol as
//! a codec, v1 and v2), [`metrics`] (the counters and their Prometheus
//! text), [`shutdown`] (the handle and the signals), [`units`] (durations
//! and sizes as the flags write them), [`activation`] (sockets passed by
//! systemd) and [`notify`] (readiness for systemd); with its feature,
//! [`bench`](mod@bench) (the load generator that checks every byte).
//! Inside the crate: `echo` (the per-connection loop, the hot path) with
//! `splice`, `runtime` (the one runtime builder) and `pyrepr` (Python's
//! `repr` of bytes).
//!
//! How they fit together (the path of a byte from `accept` to `send`, the
//! invariants every change keeps, where to add a transport) is in
//! [ARCHITECTURE.md](https://github.com/echoes-rs/echoes/blob/main/ARCHITECTURE.md).

#![deny(missing_docs)]

pub mod activation;
pub mod addr;
#[cfg(feature = "bench")]
pub mod bench;
pub mod client;
#[cfg(test)]
mod counting;
pub(crate) mod echo;
#[cfg(feature = "grpc")]
mod grpc;
#[cfg(feature = "http")]
pub mod http;
#[cfg(test)]
mod layers;
pub mod metrics;
pub mod notify;
pub mod proxy;
pub(crate) mod pyrepr;
pub(crate) mod runtime;
pub mod server;
#[cfg(feature = "http")]
mod serving;
pub mod shutdown;
pub(crate) mod splice;
pub mod transport;
pub mod units;

pub use addr::{Addr, ResolveError, Transport};
pub use client::{ClientError, ClientOptions};
pub use server::{Server, ServerConfig, ServerConfigError, ServerError, ServerStats};
pub use shutdown::ShutdownHandle;

/// Not part of the API: what the fuzz targets (`fuzz/`) and the
/// integration tests reach from outside the crate: the bytes repr of the
/// log lines, and the UDP loop and its guard on sockets a test makes
/// (forged sources, shared ports).
#[doc(hidden)]
pub mod fuzzing {
    pub use crate::pyrepr::PyBytes;
    pub use crate::transport::udp::serve as serve_udp;
    pub use crate::transport::udp_guard::Guard as UdpGuard;
}
