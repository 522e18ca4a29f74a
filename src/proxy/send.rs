//! The client's side: the PROXY header a client writes before anything
//! else (before the TLS handshake on `tls://`), as HAProxy's `send-proxy`
//! does. This is what `echo-client --proxy-protocol` and `echo-bench
//! --proxy-protocol` use to test a balancer or backend that expects one;
//! [`transport::connect_with`](crate::transport::connect_with) writes it.

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use tokio::io::{AsyncWrite, AsyncWriteExt};

use super::encode::{MAX_STREAM_HEADER, encode_stream, encode_unknown};
use super::header::Version;

/// What to send before the data.
#[derive(Debug, Clone)]
pub struct ProxySend {
    /// v1 or v2.
    pub version: Version,
    /// The client address the header claims; `None`: the connection's
    /// real source address. Port 0 keeps the real source port.
    pub source: Option<SocketAddr>,
    /// Claim a different source on each connection: the n-th connection
    /// (from 0) of this value and its clones claims the source IP plus n.
    pub vary: bool,
    counter: Arc<AtomicU64>,
}

impl ProxySend {
    /// Headers of `version` from the real source address.
    pub fn new(version: Version) -> ProxySend {
        ProxySend {
            version,
            source: None,
            vary: false,
            counter: Arc::default(),
        }
    }

    /// The same, claiming `source` (`None`: the real one).
    pub fn with_source(mut self, source: Option<SocketAddr>) -> ProxySend {
        self.source = source;
        self
    }

    /// The same, claiming a different source on each connection when `vary`.
    pub fn varied(mut self, vary: bool) -> ProxySend {
        self.vary = vary;
        self
    }

    /// The header for the next connection, from `local` to `peer` (both
    /// `None` over a Unix socket), into `out`; returns its bytes.
    pub fn header<'a>(
        &self,
        local: Option<SocketAddr>,
        peer: Option<SocketAddr>,
        out: &'a mut [u8; MAX_STREAM_HEADER],
    ) -> &'a [u8] {
        let n = if self.vary {
            self.counter.fetch_add(1, Ordering::Relaxed)
        } else {
            0
        };
        let source = match (self.source, local) {
            (Some(s), Some(l)) if s.port() == 0 => SocketAddr::new(s.ip(), l.port()),
            (Some(s), _) => s,
            (None, Some(l)) => l,
            (None, None) => return encode_unknown(self.version),
        };
        let source = SocketAddr::new(offset(source.ip(), n), source.port());
        let destination = peer.unwrap_or_else(|| match source {
            SocketAddr::V4(_) => (Ipv4Addr::UNSPECIFIED, 0).into(),
            SocketAddr::V6(_) => (Ipv6Addr::UNSPECIFIED, 0).into(),
        });
        let len = encode_stream(self.version, source, destination, out);
        &out[..len]
    }

    /// Writes the next connection's header to `stream`.
    pub async fn write_to<W: AsyncWrite + Unpin>(
        &self,
        stream: &mut W,
        local: Option<SocketAddr>,
        peer: Option<SocketAddr>,
    ) -> io::Result<()> {
        let mut buf = [0u8; MAX_STREAM_HEADER];
        let header = self.header(local, peer, &mut buf);
        stream.write_all(header).await?;
        stream.flush().await
    }
}

/// `ip` plus `n`, wrapping within its family.
fn offset(ip: IpAddr, n: u64) -> IpAddr {
    match ip {
        IpAddr::V4(v4) => IpAddr::V4(Ipv4Addr::from(u32::from(v4).wrapping_add(n as u32))),
        IpAddr::V6(v6) => IpAddr::V6(Ipv6Addr::from(u128::from(v6).wrapping_add(u128::from(n)))),
    }
}

/// Parses `--proxy-source`: `IP:PORT`, `[V6]:PORT`, or a bare IP (which
/// keeps the real source port).
pub fn parse_source(s: &str) -> Result<SocketAddr, String> {
    if let Ok(addr) = s.parse::<SocketAddr>() {
        return Ok(addr);
    }
    let bare = s
        .strip_prefix('[')
        .and_then(|r| r.strip_suffix(']'))
        .unwrap_or(s);
    bare.parse::<IpAddr>()
        .map(|ip| SocketAddr::new(ip, 0))
        .map_err(|_| format!("invalid PROXY source '{s}': expected IP, IP:PORT or [V6]:PORT"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_claim_the_real_source_or_the_one_given() {
        let local: SocketAddr = "10.1.2.3:4567".parse().unwrap();
        let peer: SocketAddr = "10.9.9.9:80".parse().unwrap();
        let mut buf = [0u8; MAX_STREAM_HEADER];
        let v1 = ProxySend::new(Version::V1);
        assert_eq!(
            v1.header(Some(local), Some(peer), &mut buf),
            b"PROXY TCP4 10.1.2.3 10.9.9.9 4567 80\r\n"
        );
        let mut given = ProxySend::new(Version::V1);
        given.source = Some(parse_source("192.0.2.1").unwrap());
        assert_eq!(
            given.header(Some(local), Some(peer), &mut buf),
            b"PROXY TCP4 192.0.2.1 10.9.9.9 4567 80\r\n"
        );
        given.source = Some(parse_source("[2001:db8::1]:5").unwrap());
        assert_eq!(
            given.header(Some(local), Some(peer), &mut buf),
            b"PROXY TCP6 2001:db8::1 ::ffff:10.9.9.9 5 80\r\n"
        );
        assert_eq!(v1.header(None, None, &mut buf), b"PROXY UNKNOWN\r\n");
    }

    #[test]
    fn varied_sources_count_up_across_clones() {
        let local: SocketAddr = "10.0.0.254:1000".parse().unwrap();
        let mut send = ProxySend::new(Version::V1);
        send.vary = true;
        let other = send.clone();
        let mut buf = [0u8; MAX_STREAM_HEADER];
        let mut lines = Vec::new();
        for s in [&send, &other, &send] {
            lines.push(
                String::from_utf8(s.header(Some(local), Some(local), &mut buf).to_vec()).unwrap(),
            );
        }
        assert!(lines[0].starts_with("PROXY TCP4 10.0.0.254 "), "{lines:?}");
        assert!(lines[1].starts_with("PROXY TCP4 10.0.0.255 "), "{lines:?}");
        assert!(lines[2].starts_with("PROXY TCP4 10.0.1.0 "), "{lines:?}");
    }

    #[test]
    fn bad_sources_are_refused() {
        for bad in ["", "host:1", "1.2.3:4", "[::1]"] {
            if bad == "[::1]" {
                assert!(parse_source(bad).is_ok());
                continue;
            }
            assert!(parse_source(bad).is_err(), "{bad}");
        }
    }
}
