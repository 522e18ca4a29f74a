//! Unix stream sockets: binding a path safely, accepting, and connecting.
//!
//! A socket file outlives the process that made it, so binding first asks
//! whether anyone is listening there: a file nobody answers on
//! (`ECONNREFUSED`) is what a crashed run leaves behind, and is replaced; a
//! live one belongs to another server, and binding fails rather than steal
//! its name. A file that is not a socket is never touched. The file this
//! server made is removed when its listener closes, unless another process
//! has replaced it meanwhile.
//!
//! An echo server on a socket file in a temporary directory, and a client:
//!
//! ```
//! use std::time::Duration;
//! use echoes::transport;
//! use echoes::{Addr, Server, ServerConfig};
//! use tokio::io::{AsyncReadExt, AsyncWriteExt};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let dir = tempfile::tempdir()?;
//! let path = dir.path().join("echo.sock");
//! let server = Server::bind(ServerConfig::new(Addr::Unix(path.clone()))).await?;
//! let shutdown = server.shutdown_handle();
//! let running = tokio::spawn(server.run());
//!
//! let mut conn = transport::connect(&Addr::Unix(path.clone()), Duration::from_secs(5)).await?;
//! conn.write_all(b"over a Unix socket").await?;
//! conn.shutdown().await?; // half-close: the server echoes, then closes
//! let mut echo = Vec::new();
//! conn.read_to_end(&mut echo).await?;
//! assert_eq!(echo, b"over a Unix socket");
//!
//! shutdown.shutdown();
//! running.await??;
//! assert!(!path.exists(), "the server removes the file it made");
//! # Ok(())
//! # }
//! ```

use std::io;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::time::Duration;

use socket2::{Domain, SockAddr, Socket, Type};
use tokio::net::UnixStream;

use super::error::ConnectError;

/// Binds a listening Unix stream socket at `path`, replacing a stale socket
/// file. The returned [`SocketFile`] removes the file when dropped.
pub fn bind(path: &Path) -> io::Result<(mio::net::UnixListener, SocketFile)> {
    match std::fs::symlink_metadata(path) {
        Ok(meta) if !meta.file_type().is_socket() => {
            return Err(io::Error::new(
                io::ErrorKind::AlreadyExists,
                "the path exists and is not a socket; not replacing it",
            ));
        }
        Ok(_) => {
            if is_live(path)? {
                return Err(io::Error::new(
                    io::ErrorKind::AddrInUse,
                    "another server is listening on this socket",
                ));
            }
            // Nobody listens: a crashed run's leftover.
            match std::fs::remove_file(path) {
                Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
                _ => {}
            }
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    let socket = Socket::new(Domain::UNIX, Type::STREAM, None)?;
    socket.set_nonblocking(true)?;
    socket.bind(&SockAddr::unix(path)?)?;
    let file = SocketFile::of(path)?;
    socket.listen(super::tcp::BACKLOG)?;
    let listener = mio::net::UnixListener::from_std(socket.into());
    Ok((listener, file))
}

/// Whether a server is listening on the socket file at `path`. The probe
/// is non-blocking, so a live server with a full backlog (`EAGAIN`) counts
/// as live instead of stalling start-up.
fn is_live(path: &Path) -> io::Result<bool> {
    let probe = Socket::new(Domain::UNIX, Type::STREAM, None)?;
    probe.set_nonblocking(true)?;
    match probe.connect(&SockAddr::unix(path)?) {
        Ok(()) => Ok(true),
        Err(e) if e.raw_os_error() == Some(libc::ECONNREFUSED) => Ok(false),
        Err(e) if e.raw_os_error() == Some(libc::ENOENT) => Ok(false),
        Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(true),
        Err(e) => Err(e),
    }
}

/// The socket file a listener made; removed on drop if it is still the
/// same file: same device, inode and change time (inode numbers are
/// reused at once on some file systems).
#[derive(Debug)]
pub struct SocketFile {
    path: PathBuf,
    id: (u64, u64, i64, i64),
}

fn identity(meta: &std::fs::Metadata) -> (u64, u64, i64, i64) {
    (meta.dev(), meta.ino(), meta.ctime(), meta.ctime_nsec())
}

impl SocketFile {
    fn of(path: &Path) -> io::Result<SocketFile> {
        let meta = std::fs::symlink_metadata(path)?;
        Ok(SocketFile {
            path: path.to_path_buf(),
            id: identity(&meta),
        })
    }
}

impl Drop for SocketFile {
    fn drop(&mut self) {
        if let Ok(meta) = std::fs::symlink_metadata(&self.path)
            && identity(&meta) == self.id
        {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

/// Connects to the Unix socket at `path` within `timeout`.
pub async fn connect(path: &Path, timeout: Duration) -> Result<UnixStream, ConnectError> {
    let err = |error| ConnectError::Connect {
        target: path.display().to_string(),
        error,
    };
    match tokio::time::timeout(timeout, UnixStream::connect(path)).await {
        Ok(Ok(stream)) => Ok(stream),
        Ok(Err(e)) => Err(err(e)),
        Err(_) => Err(err(io::Error::new(
            io::ErrorKind::TimedOut,
            "connection timed out",
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stale_file_is_replaced_live_one_refused_and_removed_on_drop() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("e.sock");
        // A crashed run: the file stays, nobody listens.
        drop(std::os::unix::net::UnixListener::bind(&path).unwrap());
        assert!(path.exists());
        let (live, file) = bind(&path).expect("stale file replaced");
        let err = bind(&path).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::AddrInUse, "{err}");
        drop(live);
        drop(file);
        assert!(!path.exists(), "socket file removed on drop");
    }

    #[test]
    fn a_regular_file_is_never_replaced() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("precious.txt");
        std::fs::write(&path, b"data").unwrap();
        let err = bind(&path).unwrap_err();
        assert!(err.to_string().contains("not a socket"), "{err}");
        assert_eq!(std::fs::read(&path).unwrap(), b"data");
    }

    #[test]
    fn a_replaced_file_is_not_removed() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("e.sock");
        let (listener, file) = bind(&path).unwrap();
        drop(listener);
        std::fs::remove_file(&path).unwrap();
        let _other = std::os::unix::net::UnixListener::bind(&path).unwrap();
        drop(file);
        assert!(path.exists(), "another server's socket file was kept");
    }
}
