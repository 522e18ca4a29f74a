//! The client's log lines: the logger name the Python client uses, and
//! its first line.

use crate::addr::Addr;

/// The logger name of the client's lines, as the Python client names them.
pub(super) const NAME: &str = "echo_client";

/// The line that starts a conversation: `connecting to HOST port PORT`,
/// or `connecting to PATH` for a Unix socket.
pub(super) fn connect_line(addr: &Addr) -> String {
    match addr {
        Addr::Inet { host, port, .. } | Addr::Web { host, port, .. } => {
            format!("connecting to {host} port {port}")
        }
        Addr::Unix(path) => format!("connecting to {}", path.display()),
    }
}
