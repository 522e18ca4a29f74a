//! Counters of a running server, and their Prometheus text exposition.
//!
//! Bytes are counted on the hot path, so they live in shards, one cache
//! line pair each, picked by the worker thread: a chunk costs one relaxed
//! `fetch_add` on a line that thread alone writes (unless there are more
//! threads than shards), and a scrape sums the shards. Sent bytes are not
//! counted separately: the echo loop writes back what it read, so
//! `sent = received - unsent`, and only the rare chunk the kernel would not
//! take at once touches `unsent`. Connection events (open, close, errors)
//! are rare and use plain shared atomics.
//!
//! The server serves [`Metrics::render`] at `http://ADDR/metrics`; the page
//! ends with the standard `process_*` families (`process.rs`) and
//! `echoes_build_info`.
//!
//! A server's counters, read while it runs (what `--metrics` serves):
//!
//! ```
//! use echoes::{Server, ServerConfig, Transport};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let server = Server::bind(ServerConfig::new("127.0.0.1:0".parse()?)).await?;
//! let stats = server.stats();
//! let page = stats.metrics().render();
//! assert!(page.contains("# TYPE echoes_connections_open gauge"));
//! assert_eq!(stats.metrics().snapshot(Transport::Tcp).total, 0);
//! # Ok(())
//! # }
//! ```

mod counters;
mod dropped;
pub(crate) mod http;
mod process;
mod udp_result;

pub use counters::{ByteCounter, ErrorKind, Label, Metrics, TransportSnapshot};
pub use udp_result::UdpResult;
