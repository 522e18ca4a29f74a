//! `echo-server`, and the library's `Server` it runs, over real sockets on
//! loopback: one module per area (a transport, a feature or an
//! operational promise). Where a new test goes: tests/README.md.
//!
//! `udp_batch` installs a counting global allocator for this whole binary
//! (each thread counts its own allocations, so the other tests are only
//! counted, never disturbed).

#[path = "../support/mod.rs"]
mod support;

mod activation;
mod h2;
mod http;
mod http_knobs;
mod limits;
mod metrics;
mod proxy;
mod shards;
mod shutdown;
mod signals;
mod systemd;
mod tcp;
mod tls;
mod udp;
mod udp_batch;
mod udp_guard;
mod unix;
mod websocket;
