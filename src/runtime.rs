//! The one tokio runtime builder: every binary, the bench's threads and
//! each server shard run on a single-threaded runtime built here.
//!
//! Single-threaded everywhere: the server scales by running one such
//! runtime per shard, each on its own OS thread with its own sockets
//! ([`crate::server`]), and the bench by one per load thread, so nothing on
//! the hot path pays for a work-stealing scheduler.

use std::io;

use tokio::runtime::{Builder, Runtime};

/// A single-threaded runtime with I/O and timers enabled.
pub fn current_thread() -> io::Result<Runtime> {
    Builder::new_current_thread().enable_all().build()
}

/// The most threads, each with a runtime of its own, that one server
/// (`--threads`, [`ServerConfig::threads`](crate::ServerConfig::threads))
/// or one bench starts: more than one per core does not help, and a typo
/// like `100000` would try to start a hundred thousand threads.
pub const MAX_THREADS: usize = 1024;
