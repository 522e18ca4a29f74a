//! Telling a service manager the server's state, the `sd_notify` protocol:
//! one datagram of `KEY=VALUE` lines to the Unix socket in `$NOTIFY_SOCKET`
//! (a path, or an abstract name written `@name`). systemd sets it for
//! `Type=notify` services; elsewhere it is unset and nothing is sent.
//!
//! ```
//! // Outside a `Type=notify` service `$NOTIFY_SOCKET` is unset, and
//! // nothing is sent: `Ok(false)`.
//! if std::env::var_os("NOTIFY_SOCKET").is_none() {
//!     assert!(!echoes::notify::ready()?);
//! }
//! # Ok::<(), std::io::Error>(())
//! ```

use std::io;
use std::os::unix::net::UnixDatagram;

/// Sends `state` (e.g. `READY=1`) to `$NOTIFY_SOCKET`. Returns whether
/// there was a socket to tell.
pub fn notify(state: &str) -> io::Result<bool> {
    let Some(path) = std::env::var_os("NOTIFY_SOCKET") else {
        return Ok(false);
    };
    let socket = UnixDatagram::unbound()?;
    let bytes = path.as_encoded_bytes();
    if let Some(name) = bytes.strip_prefix(b"@") {
        use std::os::linux::net::SocketAddrExt;
        let addr = std::os::unix::net::SocketAddr::from_abstract_name(name)?;
        socket.send_to_addr(state.as_bytes(), &addr)?;
    } else {
        socket.send_to(state.as_bytes(), path)?;
    }
    Ok(true)
}

/// Tells the service manager the server is listening.
pub fn ready() -> io::Result<bool> {
    notify("READY=1\nSTATUS=serving\n")
}

/// Tells the service manager the server is shutting down.
pub fn stopping() -> io::Result<bool> {
    notify("STOPPING=1\n")
}
