//! The `ADDR` forms of SPEC.md: `HOST:PORT`, `[V6]:PORT`, `tcp://`, `tls://`,
//! `udp://`, `unix:PATH`, and the web forms `http://`, `https://`, `ws://`
//! and `wss://` (with an optional `/PATH`), parsed into an [`Addr`] and
//! resolved into socket addresses.
//!
//! Parsing is pure (no DNS) so that a malformed address is a usage error
//! (exit 2) found before anything starts; resolving is a separate, runtime
//! step (exit 1 when a host does not resolve).
//!
//! ```
//! use echoes::{Addr, Transport};
//!
//! let addr: Addr = "tls://localhost:8443".parse()?;
//! assert_eq!(addr.transport(), Transport::Tls);
//! assert_eq!(addr.host_port(), Some(("localhost", 8443)));
//! // A bare HOST:PORT is plain TCP, as the seed's.
//! assert_eq!("127.0.0.1:10000".parse::<Addr>()?.transport(), Transport::Tcp);
//! // Malformed: an error to show, not a panic.
//! assert!("localhost:99999".parse::<Addr>().is_err());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::str::FromStr;

/// The default address, the Python example's: `localhost:10000`.
pub const DEFAULT_ADDR: &str = "localhost:10000";

/// Which protocol an address speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Transport {
    /// Plain TCP (`HOST:PORT` or `tcp://HOST:PORT`).
    Tcp,
    /// TCP with TLS (`tls://HOST:PORT`).
    Tls,
    /// UDP, RFC 862 (`udp://HOST:PORT`).
    Udp,
    /// A Unix stream socket (`unix:PATH`).
    Unix,
    /// HTTP/1.1 and HTTP/2 over TCP (`http://HOST:PORT`).
    Http,
    /// HTTP/1.1 and HTTP/2 over TLS (`https://HOST:PORT`).
    Https,
    /// WebSocket over HTTP (`ws://HOST:PORT/PATH`); a server listens for it
    /// on an `http://` listener.
    Ws,
    /// WebSocket over HTTPS (`wss://HOST:PORT/PATH`); a server listens for
    /// it on an `https://` listener.
    Wss,
}

impl Transport {
    /// The name used in URLs and logs: `tcp`, `tls`, `udp`, `unix`, `http`,
    /// `https`, `ws`, `wss`.
    pub fn as_str(self) -> &'static str {
        match self {
            Transport::Tcp => "tcp",
            Transport::Tls => "tls",
            Transport::Udp => "udp",
            Transport::Unix => "unix",
            Transport::Http => "http",
            Transport::Https => "https",
            Transport::Ws => "ws",
            Transport::Wss => "wss",
        }
    }

    /// Whether this is one of the web schemes, which take a path:
    /// `http://`, `https://`, `ws://`, `wss://`.
    pub fn is_web(self) -> bool {
        matches!(
            self,
            Transport::Http | Transport::Https | Transport::Ws | Transport::Wss
        )
    }

    /// The listener that serves this scheme: `ws://` is served by an
    /// `http://` listener and `wss://` by an `https://` one; every other
    /// transport by its own.
    pub fn listener(self) -> Transport {
        match self {
            Transport::Ws => Transport::Http,
            Transport::Wss => Transport::Https,
            other => other,
        }
    }
}

impl fmt::Display for Transport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A parsed, not yet resolved, address.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Addr {
    /// A host (name or IP literal, IPv6 without brackets) and port.
    Inet {
        /// TCP, TLS or UDP.
        transport: Transport,
        /// The host as given: `localhost`, `127.0.0.1`, `::1`.
        host: String,
        /// The port; 0 lets the system pick one when binding.
        port: u16,
    },
    /// A Unix stream socket path.
    Unix(PathBuf),
    /// A web address: `http://`, `https://`, `ws://` or `wss://`, a host and
    /// port, and the path a client asks for.
    Web {
        /// [`Transport::Http`], [`Transport::Https`], [`Transport::Ws`] or
        /// [`Transport::Wss`].
        transport: Transport,
        /// The host as given, as for [`Addr::Inet`].
        host: String,
        /// The port; 0 lets the system pick one when binding.
        port: u16,
        /// The path and query as given (`/chat?room=1`), or empty when the
        /// address has none (a client then asks for `/`). Printable ASCII
        /// without spaces, starting with `/`.
        path: String,
    },
}

/// Why an address did not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid address '{input}': {reason}")]
pub struct AddrError {
    pub(crate) input: String,
    pub(crate) reason: &'static str,
}

impl Addr {
    /// The protocol this address speaks.
    pub fn transport(&self) -> Transport {
        match self {
            Addr::Inet { transport, .. } | Addr::Web { transport, .. } => *transport,
            Addr::Unix(_) => Transport::Unix,
        }
    }

    /// The host and port of an IP address (every form but `unix:`).
    pub fn host_port(&self) -> Option<(&str, u16)> {
        match self {
            Addr::Inet { host, port, .. } | Addr::Web { host, port, .. } => Some((host, *port)),
            Addr::Unix(_) => None,
        }
    }

    /// The path a web client asks for: the address's path, or `/` when it
    /// has none; `None` for the other forms.
    pub fn web_path(&self) -> Option<&str> {
        match self {
            Addr::Web { path, .. } if path.is_empty() => Some("/"),
            Addr::Web { path, .. } => Some(path),
            _ => None,
        }
    }

    /// Resolves a host name to every socket address it names, in the
    /// resolver's order and without duplicates (`localhost` gives `::1` and
    /// `127.0.0.1`). IP literals are not looked up. The one resolver of
    /// the crate: the server binds, and the client connects to, what it
    /// returns, and both report its [`ResolveError`] as it is.
    pub async fn resolve(&self) -> Result<Vec<SocketAddr>, ResolveError> {
        let fail = |error| ResolveError {
            host: self
                .host_port()
                .map_or_else(|| self.to_string(), |(h, _)| h.to_string()),
            error,
        };
        let Some((host, port)) = self.host_port() else {
            return Err(fail(std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                "a unix socket path has no IP address",
            )));
        };
        if let Ok(ip) = host.parse::<IpAddr>() {
            return Ok(vec![SocketAddr::new(ip, port)]);
        }
        let mut found: Vec<SocketAddr> = Vec::new();
        for addr in tokio::net::lookup_host((host, port)).await.map_err(fail)? {
            if !found.contains(&addr) {
                found.push(addr);
            }
        }
        if found.is_empty() {
            return Err(fail(std::io::Error::new(
                std::io::ErrorKind::NotFound,
                "the name has no addresses",
            )));
        }
        Ok(found)
    }
}

/// Why a host name did not resolve: the server's and the client's one
/// error for it ([`Addr::resolve`]), a runtime failure (exit 1).
#[derive(Debug, thiserror::Error)]
#[error("cannot resolve {host}: {error}")]
pub struct ResolveError {
    /// The host as given.
    pub host: String,
    /// The resolver's error.
    pub error: std::io::Error,
}

impl FromStr for Addr {
    type Err = AddrError;

    fn from_str(input: &str) -> Result<Addr, AddrError> {
        let err = |reason| AddrError {
            input: input.to_string(),
            reason,
        };
        if let Some(path) = input.strip_prefix("unix:") {
            return unix_path(path).map(Addr::Unix).map_err(err);
        }
        let (transport, rest) = match input.split_once("://") {
            None if scheme_without_slashes(input) => return Err(err(NO_SLASHES)),
            None => (Transport::Tcp, input),
            Some(("tcp", rest)) => (Transport::Tcp, rest),
            Some(("tls", rest)) => (Transport::Tls, rest),
            Some(("udp", rest)) => (Transport::Udp, rest),
            Some(("http", rest)) => (Transport::Http, rest),
            Some(("https", rest)) => (Transport::Https, rest),
            Some(("ws", rest)) => (Transport::Ws, rest),
            Some(("wss", rest)) => (Transport::Wss, rest),
            Some(_) => {
                return Err(err(
                    "unknown scheme (expected tcp://, tls://, udp://, http://, https://, ws://, wss:// or unix:)",
                ));
            }
        };
        // A web address may name a path after its port; the others may not.
        let (rest, path) = match rest.find('/') {
            Some(at) if transport.is_web() => rest.split_at(at),
            _ => (rest, ""),
        };
        check_path(path).map_err(err)?;
        let (host, port) = host_port(rest).map_err(err)?;
        let host = host.to_string();
        if transport.is_web() {
            let path = path.to_string();
            return Ok(Addr::Web {
                transport,
                host,
                port,
                path,
            });
        }
        Ok(Addr::Inet {
            transport,
            host,
            port,
        })
    }
}

/// The path of a `unix:` address (what follows `unix:`), or what is
/// wrong with it. `unix:///run/echo.sock` is accepted as well as
/// `unix:/run/echo.sock`; `unix://tmp/x.sock` is not a relative path
/// (SPEC.md): in a URL, `tmp` would be a host.
fn unix_path(path: &str) -> Result<PathBuf, &'static str> {
    let path = match path.strip_prefix("//") {
        Some(abs) if !abs.is_empty() && !abs.starts_with('/') => {
            return Err(
                "unix:// needs an absolute path after it (unix:///tmp/echo.sock); \
                        a relative path is written unix:tmp/echo.sock",
            );
        }
        Some(abs) => abs,
        None => path,
    };
    if path.is_empty() {
        return Err("a unix address needs a path, e.g. unix:/tmp/echo.sock");
    }
    if path.contains('\0') {
        return Err("a path cannot contain a NUL byte");
    }
    Ok(PathBuf::from(path))
}

/// The host and port of `rest` (`HOST:PORT` or `[V6]:PORT`), or what is
/// wrong with it.
fn host_port(rest: &str) -> Result<(&str, u16), &'static str> {
    let (host, port) = if let Some(bracketed) = rest.strip_prefix('[') {
        let (v6, after) = bracketed
            .split_once(']')
            .ok_or("missing ']' after an IPv6 address")?;
        if v6.parse::<std::net::Ipv6Addr>().is_err() {
            return Err("not an IPv6 address inside [ ]");
        }
        let port = after.strip_prefix(':').ok_or("expected [V6]:PORT")?;
        (v6, port)
    } else {
        let (host, port) = rest
            .rsplit_once(':')
            .ok_or("expected HOST:PORT, e.g. localhost:10000")?;
        if host.contains(':') {
            return Err(colon_in_host(host));
        }
        (host, port)
    };
    if host.is_empty() {
        return Err("missing host (use 0.0.0.0 or [::] for every interface)");
    }
    if !host
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b"-._:%".contains(&b))
    {
        return Err("the host has characters no host name or IP address can have");
    }
    if port.is_empty() {
        return Err("missing port");
    }
    if !port.bytes().all(|b| b.is_ascii_digit()) {
        return Err("the port is not a number");
    }
    let port: u16 = port
        .parse()
        .map_err(|_| "the port must be between 0 and 65535")?;
    Ok((host, port))
}

/// What is wrong with a host that holds a colon: an IPv6 address without
/// brackets, or something else (a scheme written without its `//` is
/// caught before, by [`scheme_without_slashes`]).
fn colon_in_host(host: &str) -> &'static str {
    if host.parse::<std::net::Ipv6Addr>().is_ok() {
        return "an IPv6 address needs brackets, e.g. [::1]:10000";
    }
    "expected HOST:PORT or [V6]:PORT; the host has a ':' in it"
}

/// The hint for a scheme written without its `//`.
const NO_SLASHES: &str = "a scheme is followed by '//': write tcp://HOST:PORT, udp://HOST:PORT, \
                          tls://HOST:PORT (only unix: takes a bare path)";

/// Whether `input` starts with one of SPEC.md's schemes and a colon, but
/// not `://` (`tcp:127.0.0.1:7000`, `tcp:/x`): a look at the text only, so
/// that a hostile input cannot make it recurse.
fn scheme_without_slashes(input: &str) -> bool {
    const SCHEMES: [&str; 7] = ["tcp", "tls", "udp", "http", "https", "ws", "wss"];
    input
        .split_once(':')
        .is_some_and(|(scheme, rest)| SCHEMES.contains(&scheme) && !rest.starts_with("//"))
}

/// Checks the `/PATH` of a web address: empty, or `/` followed by what a
/// request line can carry as it is (printable ASCII, no space), without a
/// fragment, which is never sent.
fn check_path(path: &str) -> Result<(), &'static str> {
    if path.bytes().any(|b| !b.is_ascii_graphic()) {
        return Err("the path has a space or a character that needs %-encoding");
    }
    if path.contains('#') {
        return Err("a path cannot have a #fragment: it is never sent");
    }
    Ok(())
}

impl fmt::Display for Addr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            // `unix://` is stripped when parsing, so a path that itself
            // starts with `//` needs it written out to come back whole.
            Addr::Unix(path) if path.as_os_str().as_encoded_bytes().starts_with(b"//") => {
                write!(f, "unix://{}", path.display())
            }
            Addr::Unix(path) => write!(f, "unix:{}", path.display()),
            Addr::Inet {
                transport,
                host,
                port,
            } => {
                // `unix:PORT` would read back as a socket path.
                if *transport != Transport::Tcp || host == "unix" {
                    write!(f, "{transport}://")?;
                }
                write_host_port(f, host, *port)
            }
            Addr::Web {
                transport,
                host,
                port,
                path,
            } => {
                write!(f, "{transport}://")?;
                write_host_port(f, host, *port)?;
                f.write_str(path)
            }
        }
    }
}

fn write_host_port(f: &mut fmt::Formatter<'_>, host: &str, port: u16) -> fmt::Result {
    if host.contains(':') {
        write!(f, "[{host}]:{port}")
    } else {
        write!(f, "{host}:{port}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn inet(transport: Transport, host: &str, port: u16) -> Addr {
        Addr::Inet {
            transport,
            host: host.into(),
            port,
        }
    }

    fn web(transport: Transport, host: &str, port: u16, path: &str) -> Addr {
        Addr::Web {
            transport,
            host: host.into(),
            port,
            path: path.into(),
        }
    }

    #[test]
    fn parses_every_form() {
        use Transport::*;
        let table = [
            ("localhost:10000", inet(Tcp, "localhost", 10000)),
            ("127.0.0.1:0", inet(Tcp, "127.0.0.1", 0)),
            ("[::1]:7", inet(Tcp, "::1", 7)),
            ("tcp://example.com:65535", inet(Tcp, "example.com", 65535)),
            ("tls://localhost:443", inet(Tls, "localhost", 443)),
            ("udp://[::]:7", inet(Udp, "::", 7)),
            ("unix:/tmp/echo.sock", Addr::Unix("/tmp/echo.sock".into())),
            ("unix:///run/e.sock", Addr::Unix("/run/e.sock".into())),
            ("unix:rel.sock", Addr::Unix("rel.sock".into())),
            ("unix:tmp/x.sock", Addr::Unix("tmp/x.sock".into())),
            ("http://localhost:8080", web(Http, "localhost", 8080, "")),
            ("https://[::1]:443/", web(Https, "::1", 443, "/")),
            (
                "ws://127.0.0.1:80/chat?room=1",
                web(Ws, "127.0.0.1", 80, "/chat?room=1"),
            ),
            (
                "wss://echo.example:8443/a/b%20c",
                web(Wss, "echo.example", 8443, "/a/b%20c"),
            ),
        ];
        for (input, want) in table {
            assert_eq!(input.parse::<Addr>(), Ok(want), "{input}");
        }
    }

    #[test]
    fn rejects_malformed() {
        for bad in [
            "",
            "localhost",
            "localhost:",
            ":10000",
            "::1:10000",
            "[::1]",
            "[::1]10000",
            "[::1:10000",
            "[nothost]:1",
            "host:65536",
            "host:-1",
            "host:+1",
            "host:1x",
            "gopher://host:80",
            "tcp://host:80/path",
            "ws://host:80/a b",
            "ws://host:80/a#frag",
            "ws://host/path",
            "ws://:80/",
            "https://host:80x/",
            "ws://host:80/é",
            "tcp://",
            "unix:",
            "ho st:1",
            "host/x:1",
            "unix://tmp/x.sock",
            "unix://rel",
            "tcp:127.0.0.1:7000",
            "tcp:tcp:tcp:tcp:1",
            "tcp:////tcp:1",
        ] {
            assert!(bad.parse::<Addr>().is_err(), "{bad:?} should be rejected");
        }
    }

    #[test]
    fn display_round_trips() {
        for s in [
            "localhost:10000",
            "[::1]:7",
            "tls://a.b:1",
            "udp://1.2.3.4:5",
            "unix:/x",
            "unix:////x",
            "tcp://unix:1",
            "http://localhost:8080",
            "https://[::1]:1/",
            "ws://h:2/chat?x=1&y",
            "wss://unix:3/p",
        ] {
            let a: Addr = s.parse().unwrap();
            assert_eq!(a.to_string(), s);
            assert_eq!(a.to_string().parse::<Addr>().unwrap(), a);
        }
    }

    #[test]
    fn error_says_what_is_wrong() {
        let e = "::1:80".parse::<Addr>().unwrap_err().to_string();
        assert!(e.contains("brackets"), "{e}");
        let e = "localhost".parse::<Addr>().unwrap_err().to_string();
        assert!(e.contains("HOST:PORT"), "{e}");
        // A scheme without its `//` is not an IPv6 address.
        for typo in [
            "tcp:127.0.0.1:7000",
            "udp:[::1]:7",
            "tls:localhost:443",
            "tcp:/x",
            "http:/h:80",
        ] {
            let e = typo.parse::<Addr>().unwrap_err().to_string();
            assert!(e.contains("followed by '//'"), "{typo}: {e}");
            assert!(!e.contains("brackets"), "{typo}: {e}");
        }
        let e = "fe80::1:80".parse::<Addr>().unwrap_err().to_string();
        assert!(e.contains("brackets"), "{e}");
        let e = "unix://tmp/x.sock".parse::<Addr>().unwrap_err().to_string();
        assert!(e.contains("absolute path"), "{e}");
    }

    #[test]
    fn web_addresses_know_their_path_and_listener() {
        let a: Addr = "ws://h:1".parse().unwrap();
        assert_eq!(a.web_path(), Some("/"));
        assert_eq!(a.host_port(), Some(("h", 1)));
        assert_eq!(a.transport().listener(), Transport::Http);
        let a: Addr = "wss://h:1/x?y".parse().unwrap();
        assert_eq!(a.web_path(), Some("/x?y"));
        assert_eq!(a.transport().listener(), Transport::Https);
        assert_eq!("h:1".parse::<Addr>().unwrap().web_path(), None);
        let e = "ws://h:1/a b".parse::<Addr>().unwrap_err().to_string();
        assert!(e.contains("%-encoding"), "{e}");
    }

    #[tokio::test]
    async fn resolves_literals_without_dns() {
        let a: Addr = "[::1]:5".parse().unwrap();
        assert_eq!(a.resolve().await.unwrap(), vec!["[::1]:5".parse().unwrap()]);
    }

    #[tokio::test]
    async fn a_unix_path_does_not_resolve() {
        let a: Addr = "unix:/run/echo.sock".parse().unwrap();
        let e = a.resolve().await.unwrap_err();
        assert_eq!(e.host, "unix:/run/echo.sock");
        assert_eq!(e.error.kind(), std::io::ErrorKind::InvalidInput);
    }
}
