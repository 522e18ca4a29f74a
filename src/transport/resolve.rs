//! Resolving a client's address, and trying each address it resolves to.

use std::io;
use std::net::SocketAddr;

use super::error::ConnectError;
use crate::addr::Addr;

/// The host and port of an IP address (`tcp://`, `tls://`, `udp://`) and
/// the socket addresses its host resolves to, in the order to try them.
pub(crate) async fn resolve_inet(
    addr: &Addr,
) -> Result<(&str, u16, Vec<SocketAddr>), ConnectError> {
    let Addr::Inet { host, port, .. } = addr else {
        return Err(ConnectError::Unsupported(addr.transport()));
    };
    let targets = addr.resolve().await?;
    Ok((host, *port, targets))
}

/// Runs `attempt` on each of `targets` in turn and returns the first
/// success; when every one fails, the last one's error, as
/// [`ConnectError::Connect`] naming `target`.
pub(crate) async fn first_that_connects<T, F, Fut>(
    targets: Vec<SocketAddr>,
    target: &str,
    mut attempt: F,
) -> Result<T, ConnectError>
where
    F: FnMut(SocketAddr) -> Fut,
    Fut: Future<Output = io::Result<T>>,
{
    let mut last = io::Error::new(io::ErrorKind::NotFound, "no address to try");
    for to in targets {
        match attempt(to).await {
            Ok(done) => return Ok(done),
            Err(e) => last = e,
        }
    }
    Err(ConnectError::Connect {
        target: target.to_string(),
        error: last,
    })
}
