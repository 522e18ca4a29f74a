//! Headers captured from real senders (`tests/data/proxy/`), each as it
//! reached a plain TCP listener together with the client's first data:
//! HAProxy 2.6's `send-proxy`, `send-proxy-v2`, `send-proxy-v2-ssl-cn`
//! with `proxy-v2-options authority,crc32c,unique-id` behind a TLS
//! frontend, nginx 1.22's stream `proxy_protocol on`, and curl's
//! `--haproxy-protocol`. Each must parse to what its sender said, and the
//! data after it must be left alone.

use crate::support::props;

use std::path::Path;

use echoes::proxy::{self, Addresses, Parse, ProxyHeader, Version};

fn capture(name: &str) -> Vec<u8> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/proxy")
        .join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The header of a capture, and the data that followed it.
fn split(name: &str) -> (ProxyHeader, Vec<u8>) {
    let bytes = capture(name);
    props::proxy(&bytes);
    match proxy::parse(&bytes) {
        Ok(Parse::Header(h)) => {
            let rest = bytes[h.len..].to_vec();
            (h, rest)
        }
        other => panic!("{name}: {other:?}"),
    }
}

fn source_ip_port(h: &ProxyHeader) -> String {
    match &h.addresses {
        Addresses::Inet { source, .. } => source.to_string(),
        other => panic!("{other:?}"),
    }
}

#[test]
fn haproxy_send_proxy() {
    let (h, rest) = split("haproxy-send-proxy.bin");
    assert_eq!(h.version, Version::V1);
    assert_eq!(source_ip_port(&h), "127.0.0.1:38635");
    assert_eq!(h.destination().map(|d| d.port()), Some(18101));
    assert_eq!(rest, b"hello");
}

#[test]
fn haproxy_send_proxy_ipv6() {
    let (h, rest) = split("haproxy-send-proxy-ipv6.bin");
    assert_eq!(source_ip_port(&h), "[::1]:37447");
    assert_eq!(rest, b"hello");
}

#[test]
fn haproxy_send_proxy_v2() {
    let (h, rest) = split("haproxy-send-proxy-v2.bin");
    assert_eq!((h.version, h.len), (Version::V2, 28));
    assert_eq!(source_ip_port(&h), "127.0.0.1:35603");
    assert!(h.tlvs.is_empty());
    assert_eq!(rest, b"hello");
}

#[test]
fn haproxy_send_proxy_v2_ssl_with_authority_and_crc32c() {
    let (h, rest) = split("haproxy-send-proxy-v2-ssl-cn-authority-crc32c.bin");
    let t = &h.tlvs;
    assert!(t.crc32c.is_some(), "HAProxy's checksum checked: {t:?}");
    assert_eq!(t.alpn.as_deref(), Some(&b"h2"[..]));
    assert_eq!(t.authority.as_deref(), Some("echo.example"));
    let ssl = t.ssl.as_ref().expect("the SSL TLV");
    assert!(ssl.client_ssl);
    assert_eq!(ssl.version.as_deref(), Some("TLSv1.3"));
    assert_eq!(rest, b"tls hello");
}

#[test]
fn haproxy_send_proxy_v2_crc32c_and_unique_id() {
    let (h, rest) = split("haproxy-send-proxy-v2-crc32c-unique-id.bin");
    assert!(h.tlvs.crc32c.is_some());
    let id = h.tlvs.unique_id.as_deref().expect("the unique ID");
    assert!(
        id.starts_with(b"7F000001:"),
        "{:?}",
        String::from_utf8_lossy(id)
    );
    assert_eq!(rest, b"hello");
    // A bit flipped in the addresses: the checksum no longer matches.
    let mut bad = capture("haproxy-send-proxy-v2-crc32c-unique-id.bin");
    bad[17] ^= 1;
    assert!(matches!(
        proxy::parse(&bad),
        Err(proxy::HeaderError::Crc32c { .. })
    ));
}

#[test]
fn nginx_proxy_protocol_on() {
    let (h, rest) = split("nginx-proxy-protocol-on.bin");
    assert_eq!(h.version, Version::V1);
    assert_eq!(source_ip_port(&h), "127.0.0.1:33750");
    assert_eq!(rest, b"nginx hello");
}

#[test]
fn curl_haproxy_protocol() {
    let (h, rest) = split("curl-haproxy-protocol.bin");
    assert_eq!(h.version, Version::V1);
    assert_eq!(h.destination().map(|d| d.port()), Some(18200));
    assert!(rest.starts_with(b"GET / HTTP/1.1\r\n"), "{rest:?}");
}
