//! `echo-bench`, the real binary, against fake servers that misbehave and
//! against the real server: its transports, its reports and files, its
//! documentation, and the Kubernetes manifests that run it. Where a new
//! test goes: tests/README.md.

#[path = "../support/mod.rs"]
mod support;

mod cli;
mod grpc;
mod http;
mod k8s;
mod merge;
mod ops;
mod start_at;
mod tcp;
mod transports;
mod web;
