//! The `Host` rules of RFC 9112 §3.2: an HTTP/1.1 request without a Host
//! header, with two, or with one whose value is not `host[:port]`, gets
//! 400. HTTP/1.0 may go without (it predates Host), and HTTP/2 names its
//! authority in `:authority`, so a Host header there is only checked for
//! its form.

use hyper::header::HOST;
use hyper::{HeaderMap, Version};

/// Why a request's Host is refused: the 400's reason.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BadHost {
    /// HTTP/1.1 without a Host header.
    Missing,
    /// More than one Host header.
    Repeated,
    /// A value that is not `host[:port]`.
    Malformed,
}

impl BadHost {
    /// The reason, as the 400's body says it.
    pub fn reason(self) -> &'static str {
        match self {
            BadHost::Missing => "an HTTP/1.1 request needs a Host header (RFC 9112 §3.2)",
            BadHost::Repeated => "a request has one Host header, not several (RFC 9112 §3.2)",
            BadHost::Malformed => "the Host header is not host[:port] (RFC 9112 §3.2)",
        }
    }
}

/// Checks the Host header of a request of `version` with `headers`.
pub fn check(version: Version, headers: &HeaderMap) -> Result<(), BadHost> {
    let mut hosts = headers.get_all(HOST).iter();
    match (hosts.next(), hosts.next()) {
        (None, _) if version == Version::HTTP_11 => Err(BadHost::Missing),
        (None, _) => Ok(()),
        (Some(_), Some(_)) => Err(BadHost::Repeated),
        (Some(value), None) if well_formed(value.as_bytes()) => Ok(()),
        (Some(_), None) => Err(BadHost::Malformed),
    }
}

/// Whether `value` is `uri-host [ ":" port ]` (RFC 3986): an IP literal
/// in brackets, or a reg-name (unreserved, percent-encoded and sub-delims
/// characters; no `@`, `/`, space or control), then a port of at most
/// five digits up to 65535.
fn well_formed(value: &[u8]) -> bool {
    let (host, port) = if value.starts_with(b"[") {
        let Some(end) = value.iter().position(|&b| b == b']') else {
            return false;
        };
        let literal = &value[1..end];
        let ok = !literal.is_empty()
            && literal
                .iter()
                .all(|&b| b.is_ascii_hexdigit() || b":.vV".contains(&b) || unreserved_or_sub(b));
        if !ok {
            return false;
        }
        (&value[..=end], &value[end + 1..])
    } else {
        match value.iter().rposition(|&b| b == b':') {
            Some(colon) => (&value[..colon], &value[colon..]),
            None => (value, &b""[..]),
        }
    };
    let reg_name_ok =
        host.starts_with(b"[") || host.iter().all(|&b| unreserved_or_sub(b) || b == b'%');
    let port_ok = match port {
        [] => true,
        [b':', digits @ ..] => {
            digits.len() <= 5
                && digits.iter().all(u8::is_ascii_digit)
                && std::str::from_utf8(digits)
                    .ok()
                    .is_none_or(|d| d.is_empty() || d.parse::<u32>().is_ok_and(|p| p <= 65535))
        }
        _ => false,
    };
    reg_name_ok && port_ok
}

/// RFC 3986's unreserved and sub-delims characters.
fn unreserved_or_sub(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"-._~!$&'()*+,;=".contains(&b)
}

#[cfg(test)]
mod tests {
    use super::*;
    use hyper::header::HeaderValue;

    fn with_hosts(hosts: &[&[u8]]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for v in hosts {
            h.append(HOST, HeaderValue::from_bytes(v).unwrap());
        }
        h
    }

    #[test]
    fn the_rules_of_rfc_9112() {
        let v11 = Version::HTTP_11;
        for ok in [
            &b"localhost"[..],
            b"localhost:8080",
            b"a.example",
            b"127.0.0.1:80",
            b"[::1]:8080",
            b"[::1]",
            b"xn--bcher-kva.example",
            b"a%20b",
            b"",
            b"host:",
        ] {
            assert_eq!(
                check(v11, &with_hosts(&[ok])),
                Ok(()),
                "{:?}",
                String::from_utf8_lossy(ok)
            );
        }
        for bad in [
            &b"a b"[..],
            b"user@evil.example",
            b"a.example/x",
            b"a.example:99999x",
            b"a.example:99999",
            b"a.example:123456",
            b"[::1",
            b"[::1]x",
            b"a\tb",
        ] {
            assert_eq!(
                check(v11, &with_hosts(&[bad])),
                Err(BadHost::Malformed),
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
        assert_eq!(check(v11, &with_hosts(&[])), Err(BadHost::Missing));
        assert_eq!(check(Version::HTTP_10, &with_hosts(&[])), Ok(()));
        assert_eq!(check(Version::HTTP_2, &with_hosts(&[])), Ok(()));
        assert_eq!(
            check(v11, &with_hosts(&[b"a", b"b"])),
            Err(BadHost::Repeated)
        );
        assert_eq!(
            check(v11, &with_hosts(&[b"a", b"a"])),
            Err(BadHost::Repeated)
        );
    }
}
