//! The command lines of all three binaries as a user types them: flags
//! and their values, bad input as one clear line and the right exit
//! status, log levels and formats. Where a new test goes: tests/README.md.

#[path = "../support/mod.rs"]
mod support;

mod flags;
mod usage;
