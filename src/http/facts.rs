//! What a connection knows of its peer before any request: the addresses
//! on the socket and, over TLS, what the handshake settled. The server
//! fills a [`ConnFacts`] when it accepts (with the PROXY protocol header the
//! connection came with, if any), and every reflection shows it.

use std::net::SocketAddr;

use serde::Serialize;
use serde_json::{Map, Value, json};

use crate::proxy::{Command, ProxyHeader};
use crate::transport::tls::Fingerprint;

/// The facts of one connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnFacts {
    /// The client: the peer's address as seen on the socket, or the one a
    /// PROXY protocol header named.
    pub peer: SocketAddr,
    /// The server's address the connection came in on.
    pub local: SocketAddr,
    /// The TLS session, on `https://`.
    pub tls: Option<TlsFacts>,
    /// The PROXY protocol header the connection began with, if any.
    pub proxy: Option<ProxyFacts>,
}

/// A PROXY protocol header, as the reflection shows it: the proxy it came
/// through (the socket's own peer), and what the header said.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ProxyFacts {
    /// The proxy's IP address, as seen on the socket.
    pub address: String,
    /// The proxy's port.
    pub port: u16,
    /// `v1` or `v2`.
    pub version: &'static str,
    /// `PROXY`, or `LOCAL` (the proxy's own connection: a health check).
    pub command: &'static str,
    /// Where the client connected to, when the header names it.
    pub destination: Option<String>,
    /// The v2 TLVs, by name: `alpn`, `authority`, `crc32c`, `unique_id`
    /// (its text when it is printable ASCII, else hex), `ssl` (with its
    /// sub-TLVs; text that is not UTF-8 shows U+FFFD, as every text TLV
    /// does), `netns`, `aws_vpce_id`, and
    /// `other` as `[type, hex]` pairs; empty for v1.
    pub tlvs: Map<String, Value>,
}

impl ProxyFacts {
    /// The facts of `header`, which came from the proxy at `proxy`.
    pub fn of(header: &ProxyHeader, proxy: SocketAddr) -> ProxyFacts {
        let t = &header.tlvs;
        let mut tlvs = Map::new();
        let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
        if let Some(alpn) = &t.alpn {
            tlvs.insert("alpn".into(), text(alpn).into());
        }
        if let Some(authority) = &t.authority {
            tlvs.insert("authority".into(), authority.clone().into());
        }
        if let Some(crc) = t.crc32c {
            tlvs.insert("crc32c".into(), format!("{crc:08x}").into());
        }
        if let Some(id) = &t.unique_id {
            // HAProxy's are text; anything else is shown in hex.
            let shown = if crate::proxy::header::printable(id) {
                text(id)
            } else {
                hex(id)
            };
            tlvs.insert("unique_id".into(), shown.into());
        }
        if let Some(ssl) = &t.ssl {
            let value = json!({
                "client_ssl": ssl.client_ssl,
                "client_cert_conn": ssl.client_cert_conn,
                "client_cert_sess": ssl.client_cert_sess,
                "verify": ssl.verify,
                "version": ssl.version,
                "cn": ssl.cn,
                "cipher": ssl.cipher,
                "sig_alg": ssl.sig_alg,
                "key_alg": ssl.key_alg,
            });
            tlvs.insert("ssl".into(), value);
        }
        if let Some(netns) = &t.netns {
            tlvs.insert("netns".into(), netns.clone().into());
        }
        if let Some(vpce) = &t.aws_vpce_id {
            tlvs.insert("aws_vpce_id".into(), vpce.clone().into());
        }
        if !t.other.is_empty() {
            let other = t.other.iter().map(|(k, v)| json!([k, hex(v)])).collect();
            tlvs.insert("other".into(), Value::Array(other));
        }
        ProxyFacts {
            address: proxy.ip().to_canonical().to_string(),
            port: proxy.port(),
            version: header.version.as_str(),
            command: match header.command {
                Command::Proxy => "PROXY",
                Command::Local => "LOCAL",
            },
            destination: header.destination().map(|d| d.to_string()),
            tlvs,
        }
    }
}

/// Lower-case hex.
fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// What a TLS handshake settled.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TlsFacts {
    /// `TLSv1.3` or `TLSv1.2`.
    pub version: String,
    /// The cipher suite, as IANA names it (`TLS13_AES_256_GCM_SHA384`).
    pub cipher: String,
    /// The server name the client asked for (SNI), if it sent one.
    pub sni: Option<String>,
    /// The protocol ALPN chose (`h2`, `http/1.1`), if any.
    pub alpn: Option<String>,
    /// The client's certificate, under mutual TLS.
    pub client_certificate: Option<CertFacts>,
}

/// A client certificate, as the reflection shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CertFacts {
    /// The subject's distinguished name (`CN=client, O=Example`), or
    /// `(unparsable)` when the certificate cannot be read.
    pub subject: String,
    /// The SHA-256 fingerprint of the certificate, `AB:CD:…`.
    pub sha256: String,
}

impl TlsFacts {
    /// The facts of a finished server-side handshake.
    pub fn of(conn: &rustls::ServerConnection) -> TlsFacts {
        let version = match conn.protocol_version() {
            Some(rustls::ProtocolVersion::TLSv1_3) => "TLSv1.3".to_string(),
            Some(rustls::ProtocolVersion::TLSv1_2) => "TLSv1.2".to_string(),
            Some(other) => format!("{other:?}"),
            None => "unknown".to_string(),
        };
        let cipher = conn
            .negotiated_cipher_suite()
            .map_or_else(|| "unknown".to_string(), |s| format!("{:?}", s.suite()));
        TlsFacts {
            version,
            cipher,
            sni: conn.server_name().map(str::to_string),
            alpn: conn
                .alpn_protocol()
                .map(|p| String::from_utf8_lossy(p).into_owned()),
            client_certificate: conn
                .peer_certificates()
                .and_then(|chain| chain.first())
                .map(|leaf| CertFacts::of(leaf)),
        }
    }
}

impl CertFacts {
    /// The subject and fingerprint of a DER certificate.
    pub fn of(der: &[u8]) -> CertFacts {
        let subject = match x509_parser::parse_x509_certificate(der) {
            Ok((_, cert)) => cert.subject().to_string(),
            Err(_) => "(unparsable)".to_string(),
        };
        CertFacts {
            subject,
            sha256: Fingerprint::of(der).to_string(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_certificate_shows_its_subject_and_fingerprint() {
        let mut params = rcgen::CertificateParams::new(vec!["client".to_string()]).unwrap();
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "test client");
        params
            .distinguished_name
            .push(rcgen::DnType::OrganizationName, "Echoes");
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = params.self_signed(&key).unwrap();
        let facts = CertFacts::of(cert.der());
        assert!(
            facts.subject.contains("CN=test client"),
            "{}",
            facts.subject
        );
        assert!(facts.subject.contains("O=Echoes"), "{}", facts.subject);
        assert_eq!(facts.sha256, Fingerprint::of(cert.der()).to_string());
        assert_eq!(CertFacts::of(b"junk").subject, "(unparsable)");
    }
}
