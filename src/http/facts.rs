//! What a connection knows of its peer before any request: the addresses
//! on the socket and, over TLS, what the handshake settled. The server
//! fills a [`ConnFacts`] when it accepts (another layer, such as the PROXY
//! protocol, may add to it), and every reflection shows it.

use std::net::SocketAddr;

use serde::Serialize;

use crate::transport::tls::Fingerprint;

/// The facts of one connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnFacts {
    /// The peer's address as seen on the socket.
    pub peer: SocketAddr,
    /// The server's address the connection came in on.
    pub local: SocketAddr,
    /// The TLS session, on `https://`.
    pub tls: Option<TlsFacts>,
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
