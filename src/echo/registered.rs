//! A connection's registration with tokio's reactor, which follows what the
//! echo loop waits for.
//!
//! tokio registers a socket once, edge-triggered, for everything it may be
//! polled for. While the loop echoes that is right. But while an echo is
//! stuck (the peer is not taking it back), the loop waits for room to write
//! and nothing else, and every segment the peer sends meanwhile would still
//! wake the worker thread, which finds nothing to do and sleeps again: on
//! one loopback stream about ten wake-ups per stuck echo, each a context
//! switch for the server and a cross-core wake-up for the sender
//! (BENCHMARKS.md, "One stream, one core"). So while an echo is stuck, the
//! socket is registered for writing only, as the C epoll peer watches
//! `EPOLLOUT` alone and uvloop pauses reading. Data that arrives waits in
//! the kernel, as it would anyway, without a wake-up.
//!
//! A switch costs two `epoll_ctl` calls and tokio's small record of the
//! registration (one allocation), once per stuck echo at most; the
//! ping-pong path, where echoes are never stuck, never switches. Once the
//! stuck echo is written, the loop reads on without switching back (the
//! socket usually holds more: that is why the echo got stuck), and
//! registers for reading again only when a read finds the socket drained.
//! A registration made anew reports what is already there (`epoll_ctl`
//! polls the socket), so no edge is lost either way.

use std::io;

use tokio::io::unix::AsyncFd;

use crate::transport::{self, StreamSocket};

/// A socket registered with the reactor (for reading and writing, or for
/// writing only: the loop keeps track of which), or, after registering it
/// anew failed, bare: kept, so that it closes when the loop is dropped,
/// after the connection's registry entry (see `server::registry`), as
/// it would have otherwise. No larger than the registration alone.
pub(super) enum Registered<S: StreamSocket> {
    /// Registered.
    Fd(AsyncFd<S>),
    /// Registering anew failed; the loop has ended with that error.
    Bare(S),
    /// Only while being registered anew.
    Moving,
}

impl<S: StreamSocket> Registered<S> {
    /// The registration; an error once registering anew failed.
    pub(super) fn fd(&self) -> io::Result<&AsyncFd<S>> {
        match self {
            Registered::Fd(fd) => Ok(fd),
            Registered::Bare(_) | Registered::Moving => Err(io::Error::new(
                io::ErrorKind::NotConnected,
                "the connection's socket is no longer registered with the reactor",
            )),
        }
    }

    /// Registers the socket anew, for writing only or for reading and
    /// writing.
    pub(super) fn register(&mut self, writing_only: bool) -> io::Result<()> {
        let fd = match std::mem::replace(self, Registered::Moving) {
            Registered::Fd(fd) => fd,
            unregistered => {
                *self = unregistered;
                return self.fd().map(drop);
            }
        };
        let socket = fd.into_inner();
        let registered = if writing_only {
            transport::register_writer(socket)
        } else {
            transport::register_stream(socket)
        };
        match registered {
            Ok(fd) => {
                *self = Registered::Fd(fd);
                Ok(())
            }
            Err((socket, e)) => {
                *self = Registered::Bare(socket);
                Err(e)
            }
        }
    }
}
