//! `echoes` against programs others wrote: the seed's Python programs,
//! the clients people reach for (socat, ncat, nc, openssl, curl), HAProxy
//! and nginx with the PROXY protocol and headers captured from them,
//! Python grpcio against the gRPC services,
//! Autobahn|Testsuite and a real browser. Where a new test goes:
//! tests/README.md.

#[path = "../support/mod.rs"]
mod support;

mod autobahn;
mod browser;
mod grpc;
mod l7_proxies;
mod proxy;
mod proxy_corpus;
mod seed;
mod tools;
