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
//! this crate's client side: [`transport::tcp`], [`transport::tls`] (a
//! self-signed certificate), [`transport::udp`] and [`transport::unix`].
//!
//! It began as a port of the Python asyncio streams echo server and client
//! (PyMOTW's `asyncio_echo_server_coroutine.py`), and keeps their behaviour
//! and log lines: whatever a peer sends comes back, in order, byte for byte;
//! a peer that half-closes gets everything owed, then end of stream. The
//! library holds everything; the `echo-server`, `echo-client` and
//! `echo-bench` binaries only parse flags and call it.
//!
//! Modules, one idea each: [`addr`] (the `ADDR` forms), [`transport`] (what
//! each kind of socket provides: TCP, TLS, UDP and its reflection guard,
//! Unix), [`echo`] (the per-connection loop, the hot path), [`server`]
//! (bind, shards, accept, limits, shutdown, and the registry of open
//! connections), [`runtime`] (the one runtime builder), [`activation`] (sockets passed by
//! systemd), [`notify`] (readiness for systemd), [`metrics`] (counters and
//! the Prometheus page), [`proxy`] (the PROXY protocol, v1 and v2), [`shutdown`] (the handle and the signals),
//! [`client`], [`bench`](mod@bench) (the load generator that checks every
//! byte), [`logging`] (the seed's log format), [`pyrepr`] (Python's `repr`
//! of bytes), [`units`] (durations and sizes on the command line) and
//! [`cli`] (what the binaries' command lines share), with [`manpage`]
//! (their man pages).
//!
//! How they fit together (the path of a byte from `accept` to `send`, the
//! invariants every change keeps, where to add a transport) is in
//! [ARCHITECTURE.md](https://github.com/echoes-rs/echoes/blob/main/ARCHITECTURE.md).

#![deny(missing_docs)]

pub mod activation;
pub mod addr;
pub mod bench;
pub mod cli;
pub mod client;
pub mod echo;
pub mod http;
pub mod logging;
pub mod manpage;
pub mod metrics;
pub mod notify;
pub mod proxy;
pub mod pyrepr;
pub mod runtime;
pub mod server;
pub mod shutdown;
pub mod splice;
pub mod transport;
pub mod units;

pub use addr::{Addr, Transport};
pub use client::{ClientError, ClientOptions};
pub use pyrepr::PyBytes;
pub use server::{Server, ServerConfig, ServerError, ServerStats};
pub use shutdown::ShutdownHandle;
