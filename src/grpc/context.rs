//! What a call is held to and told: the server's limits, and the
//! connection it came on.

use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

/// The largest message a service answers with (a `response_size` above
/// it is refused): gRPC clients take at most 4 MiB by default, and each
/// answer is held whole while it is sent.
pub const MAX_RESPONSE_MESSAGE: usize = 4 << 20;

/// The limits the services hold calls to.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// The largest message a call may send (`--http-max-body`).
    pub max_message: usize,
    /// The largest answer a call may ask for (`--http-max-size`, at most
    /// [`MAX_RESPONSE_MESSAGE`]).
    pub max_response: usize,
    /// The longest wait a call may ask for (`--http-max-delay`).
    pub max_delay: Duration,
}

/// What a call is told of the connection it came on (an extension of
/// its request).
#[derive(Debug, Clone)]
pub struct Served {
    /// The server's `--name`.
    pub name: Arc<str>,
    /// The shard serving the connection.
    pub shard: usize,
    /// Set by a service that answers with a status the call asked for
    /// (`response_status`), so that it is not counted as an error.
    pub asked_status: Arc<AtomicBool>,
}
