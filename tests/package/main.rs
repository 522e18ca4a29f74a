//! What ships: the package's metadata, `--version` and `--help`, and every
//! example of README.md and of each `--help` run as written. Where a new
//! test goes: tests/README.md.

#[path = "../support/mod.rs"]
mod support;

mod examples;
mod metadata;
