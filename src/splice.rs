//! Zero-copy echo for bulk transfers (`--zero-copy`): `splice(2)` from
//! the socket into a pipe and from the pipe back into the socket, so the
//! data never crosses into user space. For a 64 KiB chunk this saves the
//! server two copies, about a quarter of its CPU per megabyte; for small
//! messages it saves nothing and costs a little, so the echo loop uses it
//! only while a connection's reads are large (see [`crate::echo`]).
//!
//! It is off by default because of where the saving goes over loopback:
//! the echoed pages are the client's own, still referenced, so the
//! client's kernel cannot recycle its send buffer pages and pays for fresh
//! ones; measured on one machine (BENCHMARKS.md), the server's CPU per MB
//! fell by about a quarter while the loopback throughput fell by about a
//! third. Across a real network the client's pages are not involved.
//!
//! The pipe belongs to the worker thread, like the read buffer, and is
//! empty between two steps of any connection: what the socket will not
//! take back at once is read out of it into the connection's pending
//! buffer, and anything left after an error is discarded. So one pipe
//! serves every connection of the thread, and an idle connection holds
//! none.

use std::cell::RefCell;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

/// A thread's pipe. Its capacity is raised (to 1 MiB) so that one
/// splice can carry a whole read: each page of a socket buffer takes a
/// slot of the pipe, and the default 16 slots would cut reads short.
pub struct Pipe {
    read: OwnedFd,
    write: OwnedFd,
}

/// The pipe's capacity in bytes: room for the largest read even when every
/// page of it is a separate slot.
const CAPACITY: libc::c_int = 1 << 20;

thread_local! {
    /// `None` until first used; stays `None` if a pipe cannot be made
    /// (out of descriptors, say), and the echo loop copies instead.
    static PIPE: RefCell<Option<Option<Pipe>>> = const { RefCell::new(None) };
}

/// Runs `f` with this thread's pipe, making it on first use. Returns
/// `None` when there is no pipe to be had.
pub fn with_pipe<R>(f: impl FnOnce(&Pipe) -> R) -> Option<R> {
    PIPE.with_borrow_mut(|slot| {
        let pipe = slot.get_or_insert_with(|| Pipe::new().ok());
        pipe.as_ref().map(f)
    })
}

const FLAGS: libc::c_uint = libc::SPLICE_F_MOVE | libc::SPLICE_F_NONBLOCK;

impl Pipe {
    fn new() -> io::Result<Pipe> {
        let mut fds = [0 as libc::c_int; 2];
        // SAFETY: pipe2 writes two descriptors into the array it is given.
        if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_NONBLOCK | libc::O_CLOEXEC) } != 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: both descriptors are new and owned by nothing else.
        let (read, write) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
        // A smaller pipe still works, with shorter splices: ignore failure.
        // SAFETY: F_SETPIPE_SZ takes an int and changes no memory of ours.
        unsafe { libc::fcntl(write.as_raw_fd(), libc::F_SETPIPE_SZ, CAPACITY) };
        Ok(Pipe { read, write })
    }

    /// Moves up to `max` bytes from the socket `sock` into the pipe;
    /// `Ok(0)` is end of stream.
    pub fn fill(&self, sock: RawFd, max: usize) -> io::Result<usize> {
        // SAFETY: splice between two descriptors; no user memory involved.
        let n = unsafe {
            libc::splice(
                sock,
                std::ptr::null_mut(),
                self.write.as_raw_fd(),
                std::ptr::null_mut(),
                max,
                FLAGS,
            )
        };
        if n < 0 {
            Err(io::Error::last_os_error())
        } else {
            Ok(n as usize)
        }
    }

    /// Moves up to `n` bytes from the pipe into the socket `sock`.
    pub fn flush_to(&self, sock: RawFd, n: usize) -> io::Result<usize> {
        // SAFETY: as in `fill`.
        let w = unsafe {
            libc::splice(
                self.read.as_raw_fd(),
                std::ptr::null_mut(),
                sock,
                std::ptr::null_mut(),
                n,
                FLAGS,
            )
        };
        if w < 0 {
            Err(io::Error::last_os_error())
        } else {
            Ok(w as usize)
        }
    }

    /// Reads exactly `n` bytes out of the pipe into `out` (appending).
    pub fn read_into(&self, out: &mut Vec<u8>, n: usize) -> io::Result<()> {
        out.reserve(n);
        let mut left = n;
        while left > 0 {
            let spare = out.spare_capacity_mut();
            // SAFETY: read writes at most `left` bytes into the spare
            // capacity, which has room for at least that many.
            let r = unsafe { libc::read(self.read.as_raw_fd(), spare.as_mut_ptr().cast(), left) };
            if r < 0 {
                let e = io::Error::last_os_error();
                if e.kind() == io::ErrorKind::Interrupted {
                    continue;
                }
                return Err(e);
            }
            if r == 0 {
                return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "pipe ran dry"));
            }
            // SAFETY: read initialised these `r` bytes.
            unsafe { out.set_len(out.len() + r as usize) };
            left -= r as usize;
        }
        Ok(())
    }

    /// Throws away `n` bytes left in the pipe, so the next connection
    /// finds it empty.
    pub fn discard(&self, n: usize) {
        let mut sink = Vec::new();
        let _ = self.read_into(&mut sink, n);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};

    #[test]
    fn splices_through_and_reads_leftovers() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let mut client = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (server, _) = listener.accept().unwrap();
        server.set_nonblocking(true).unwrap();
        client.write_all(b"hello, pipe").unwrap();
        std::thread::sleep(std::time::Duration::from_millis(50));
        let pipe = Pipe::new().unwrap();
        let fd = server.as_raw_fd();
        assert_eq!(pipe.fill(fd, 64 * 1024).unwrap(), 11);
        assert_eq!(pipe.flush_to(fd, 7).unwrap(), 7);
        let mut rest = Vec::new();
        pipe.read_into(&mut rest, 4).unwrap();
        assert_eq!(rest, b"pipe");
        let mut echoed = [0u8; 7];
        client.read_exact(&mut echoed).unwrap();
        assert_eq!(&echoed, b"hello, ");
        // Nothing more to read: the socket says so.
        let e = pipe.fill(fd, 1024).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::WouldBlock);
    }
}
