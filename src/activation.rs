//! Socket activation: listening sockets handed over by systemd (or any
//! manager speaking its protocol), used instead of `--listen`.
//!
//! The protocol (`sd_listen_fds(3)`): `LISTEN_PID` is our pid, `LISTEN_FDS`
//! the number of sockets, which are file descriptors 3, 4, …, and
//! `LISTEN_FDNAMES` optionally names them, `:`-separated. What each socket
//! is (TCP, UDP or Unix) is asked of the socket itself (`SO_TYPE`,
//! `getsockname`), so the unit file is the one place it is said. A TCP
//! socket named `tls` (`FileDescriptorName=tls`) is served with TLS.
//!
//! The variables are left in the environment (changing it is unsound once
//! threads run), but the sockets are made close-on-exec, and they can be
//! taken only once per process.
//!
//! Outside a socket-activated service there is nothing to take, and the
//! server binds its `--listen` addresses instead:
//!
//! ```
//! // `LISTEN_PID` and `LISTEN_FDS` are not set for this process.
//! let inherited = echoes::activation::take()?;
//! assert!(inherited.is_empty());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::io;
use std::net::SocketAddr;
use std::os::fd::{FromRawFd, OwnedFd, RawFd};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};

use socket2::{SockAddr, Socket, Type};

/// The first descriptor passed, by the protocol.
pub const FIRST_FD: RawFd = 3;

/// What an inherited socket is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SocketKind {
    /// A listening TCP socket, bound to this address.
    Tcp(SocketAddr),
    /// A UDP socket, bound to this address.
    Udp(SocketAddr),
    /// A listening Unix stream socket, bound to this path (`None` when
    /// unnamed or abstract).
    Unix(Option<PathBuf>),
}

/// One socket passed by the service manager.
#[derive(Debug)]
pub struct InheritedSocket {
    /// The descriptor, now owned by this process.
    pub fd: OwnedFd,
    /// What it is.
    pub kind: SocketKind,
    /// Its `FileDescriptorName=`, when one was given.
    pub name: Option<String>,
}

impl InheritedSocket {
    /// Whether this is a TCP socket to be served with TLS (named `tls`).
    pub fn wants_tls(&self) -> bool {
        matches!(self.kind, SocketKind::Tcp(_)) && self.name.as_deref() == Some("tls")
    }
}

/// Why the passed sockets cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ActivationError {
    /// The variables are malformed.
    #[error("socket activation: {0}")]
    Env(String),
    /// A descriptor is not open, or not something this server can serve.
    #[error("socket activation: file descriptor {fd}: {reason}")]
    Socket {
        /// The descriptor.
        fd: RawFd,
        /// What is wrong with it.
        reason: String,
    },
}

/// Descriptors passed, each with its `FileDescriptorName=` if any.
pub type PassedFds = Vec<(RawFd, Option<String>)>;

/// Which descriptors the environment passes to process `pid`, and their
/// names: `None` when nothing is passed to it. Pure, for testing.
pub fn parse_env(
    listen_pid: Option<&str>,
    listen_fds: Option<&str>,
    names: Option<&str>,
    pid: u32,
) -> Result<Option<PassedFds>, ActivationError> {
    let (Some(listen_pid), Some(listen_fds)) = (listen_pid, listen_fds) else {
        return Ok(None);
    };
    let target: u32 = listen_pid
        .trim()
        .parse()
        .map_err(|_| ActivationError::Env(format!("LISTEN_PID={listen_pid:?} is not a pid")))?;
    if target != pid {
        // Meant for another process (a parent that did not clear them).
        return Ok(None);
    }
    let n: RawFd = listen_fds
        .trim()
        .parse()
        .ok()
        .filter(|n| (0..=1024).contains(n))
        .ok_or_else(|| ActivationError::Env(format!("LISTEN_FDS={listen_fds:?} is not a count")))?;
    if n == 0 {
        return Ok(None);
    }
    let names: Vec<Option<String>> = match names {
        Some(list) => list
            .split(':')
            .map(|s| (!s.is_empty()).then(|| s.to_string()))
            .collect(),
        None => Vec::new(),
    };
    Ok(Some(
        (0..n)
            .map(|i| (FIRST_FD + i, names.get(i as usize).cloned().flatten()))
            .collect(),
    ))
}

static TAKEN: AtomicBool = AtomicBool::new(false);

/// Takes the sockets the service manager passed to this process: empty
/// when none were (or they were already taken).
pub fn take() -> Result<Vec<InheritedSocket>, ActivationError> {
    let var = |k| std::env::var(k).ok();
    let Some(fds) = parse_env(
        var("LISTEN_PID").as_deref(),
        var("LISTEN_FDS").as_deref(),
        var("LISTEN_FDNAMES").as_deref(),
        std::process::id(),
    )?
    else {
        return Ok(Vec::new());
    };
    if TAKEN.swap(true, Ordering::SeqCst) {
        return Ok(Vec::new());
    }
    let mut sockets = Vec::new();
    for (fd, name) in fds {
        // SAFETY: fcntl(F_GETFD) only asks whether `fd` is open.
        if unsafe { libc::fcntl(fd, libc::F_GETFD) } == -1 {
            return Err(ActivationError::Socket {
                fd,
                reason: "not open, though LISTEN_FDS counts it".into(),
            });
        }
        // SAFETY: by the protocol, LISTEN_PID naming this process hands it
        // these open descriptors; `TAKEN` makes sure only one owner is made.
        let owned = unsafe { OwnedFd::from_raw_fd(fd) };
        sockets.push(classify(owned, name)?);
    }
    Ok(sockets)
}

/// Finds out what an inherited descriptor is, and readies it for tokio:
/// non-blocking, close-on-exec.
pub fn classify(fd: OwnedFd, name: Option<String>) -> Result<InheritedSocket, ActivationError> {
    use std::os::fd::AsRawFd;
    let raw = fd.as_raw_fd();
    let err = |reason: String| ActivationError::Socket { fd: raw, reason };
    let socket = Socket::from(fd);
    let ty = socket
        .r#type()
        .map_err(|e| err(format!("not a socket ({e})")))?;
    let local: SockAddr = socket
        .local_addr()
        .map_err(|e| err(format!("getsockname: {e}")))?;
    let kind = if ty == Type::DGRAM {
        let addr = local
            .as_socket()
            .ok_or_else(|| err("a datagram socket that is not UDP over IP".into()))?;
        SocketKind::Udp(addr)
    } else if ty == Type::STREAM {
        if !socket.is_listener().unwrap_or(false) {
            return Err(err(
                "a stream socket that is not listening (use Accept=no in the .socket unit)".into(),
            ));
        }
        if let Some(addr) = local.as_socket() {
            SocketKind::Tcp(addr)
        } else if local.is_unix() {
            SocketKind::Unix(local.as_pathname().map(PathBuf::from))
        } else {
            return Err(err("a stream socket of an unknown family".into()));
        }
    } else {
        return Err(err("neither a stream nor a datagram socket".into()));
    };
    let ready = || -> io::Result<()> {
        socket.set_nonblocking(true)?;
        socket.set_cloexec(true)
    };
    ready().map_err(|e| err(e.to_string()))?;
    Ok(InheritedSocket {
        fd: socket.into(),
        kind,
        name,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_is_parsed_per_the_protocol() {
        assert!(parse_env(None, None, None, 7).unwrap().is_none());
        assert!(
            parse_env(Some("8"), Some("1"), None, 7).unwrap().is_none(),
            "other pid"
        );
        assert!(parse_env(Some("7"), Some("0"), None, 7).unwrap().is_none());
        let got = parse_env(Some("7"), Some("3"), Some("web:tls"), 7)
            .unwrap()
            .unwrap();
        assert_eq!(
            got,
            vec![(3, Some("web".into())), (4, Some("tls".into())), (5, None)]
        );
        assert!(parse_env(Some("x"), Some("1"), None, 7).is_err());
        assert!(parse_env(Some("7"), Some("-1"), None, 7).is_err());
    }

    #[test]
    fn sockets_are_classified_by_asking_them() {
        let tcp = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = tcp.local_addr().unwrap();
        let s = classify(tcp.into(), Some("tls".into())).unwrap();
        assert_eq!(s.kind, SocketKind::Tcp(addr));
        assert!(s.wants_tls());

        let udp = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let addr = udp.local_addr().unwrap();
        assert_eq!(
            classify(udp.into(), None).unwrap().kind,
            SocketKind::Udp(addr)
        );

        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.sock");
        let unix = std::os::unix::net::UnixListener::bind(&path).unwrap();
        assert_eq!(
            classify(unix.into(), None).unwrap().kind,
            SocketKind::Unix(Some(path))
        );

        let listening = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let connected = std::net::TcpStream::connect(listening.local_addr().unwrap()).unwrap();
        let e = classify(connected.into(), None).unwrap_err();
        assert!(e.to_string().contains("not listening"), "{e}");

        let file = std::fs::File::open("/dev/null").unwrap();
        let e = classify(file.into(), None).unwrap_err();
        assert!(e.to_string().contains("not a socket"), "{e}");
    }
}
