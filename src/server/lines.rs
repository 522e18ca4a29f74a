//! The contract's per-connection log lines (SPEC.md), each written here
//! and only here, whatever the transport: `connection accepted`, `idle
//! for …` and `closing`. The `starting up` and refusal lines belong to
//! binding and to the limits.

use std::fmt::Display;
use std::io;
use std::time::Duration;

use tracing::{debug, info};

use crate::echo::Ending;
use crate::metrics::{ErrorKind, Metrics};
use crate::transport::PeerName;
use crate::units::format_duration;

/// `connection accepted`, once a connection is admitted (after its PROXY
/// header and its TLS handshake, when it has them); `via` is what the
/// header added (` via proxy …`), or nothing.
pub(super) fn accepted(peer: PeerName, via: impl Display) {
    info!(name = %peer, "connection accepted{via}");
}

/// How a connection of `transport` ended (`idle for …`, or an error
/// counted and logged at debug), then `closing`.
pub(super) fn ended(
    metrics: &Metrics,
    transport: crate::addr::Transport,
    peer: PeerName,
    result: io::Result<Ending>,
    idle: Option<Duration>,
) {
    match result {
        Ok(Ending::Eof) => {}
        Ok(Ending::Idle) => info!(
            name = %peer,
            "idle for {}",
            idle.map(format_duration).unwrap_or_default()
        ),
        Err(e) => {
            metrics.error(transport, ErrorKind::Io);
            debug!(name = %peer, "connection error: {e}");
        }
    }
    info!(name = %peer, "closing");
}
