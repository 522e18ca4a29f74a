//! What every connection of one server shares.

use std::time::Duration;

/// The largest read of a connection that is not streaming, and the size of
/// the TLS loop's buffer: one read of a bulk transfer, and more than any
/// message of the request-response kind needs. See the module
/// documentation.
pub const BASE_READ: usize = 64 * 1024;

/// What every connection of one server shares.
#[derive(Debug, Clone, Copy)]
pub struct EchoOptions {
    /// The largest single read, in bytes (the seed's is 128); reads larger
    /// than [`BASE_READ`] only while a connection streams.
    pub read_size: usize,
    /// Close a connection with no traffic either way for this long.
    pub idle_timeout: Option<Duration>,
    /// Splice bulk transfers through the thread's pipe instead of copying
    /// them (see [`crate::splice`]).
    pub zero_copy: bool,
}
