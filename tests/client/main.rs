//! `echo-client` against the real server and against servers that
//! misbehave on purpose: one module per transport. Where a new test goes:
//! tests/README.md.

#[path = "../support/mod.rs"]
mod support;

mod tcp;
mod udp;
mod web;
