//! How a connection ends.

use std::io;

/// How a connection ended, when it ended without an I/O error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ending {
    /// The peer half-closed and everything was echoed.
    Eof,
    /// Nothing moved either way for the idle timeout.
    Idle,
}

/// A peer that reset before our half-close is not an error worth reporting.
pub(super) fn ignore_not_connected(e: io::Error) -> io::Result<()> {
    if e.kind() == io::ErrorKind::NotConnected {
        Ok(())
    } else {
        Err(e)
    }
}
