//! TLS with rustls (the *ring* provider): server and client configuration
//! from PEM files or a fresh self-signed certificate, certificate
//! fingerprints for pinning, and connecting.
//!
//! The server side only builds a [`TlsAcceptor`]; the handshake runs in
//! each connection's own task, under [`HANDSHAKE_TIMEOUT`], so a slow or
//! garbage peer never holds up the accept loop. Providers are passed
//! explicitly instead of installed process-wide, so an embedding program's
//! own rustls set-up is left alone.
//!
//! An echo server over TLS with a certificate made at start-up (what
//! `--tls-self-signed` does), and a client that skips the certificate
//! check (`--insecure`); to check it instead, set `pin` to the
//! fingerprint the server logs (`--tls-pin`), or `ca` to a CA file:
//!
//! ```
//! use std::time::Duration;
//! use echoes::transport::{self, CertSource, TlsClientSettings, TlsServerSettings};
//! use echoes::{Server, ServerConfig};
//! use tokio::io::{AsyncReadExt, AsyncWriteExt};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let mut config = ServerConfig::new("tls://127.0.0.1:0".parse()?);
//! config.tls(TlsServerSettings {
//!     cert: CertSource::SelfSigned,
//!     client_ca: None,
//! });
//! let server = Server::bind(config).await?;
//! let addr = server.local_addrs()[0].clone(); // with the port picked
//! let shutdown = server.shutdown_handle();
//! let running = tokio::spawn(server.run());
//!
//! let client = transport::client_config(&TlsClientSettings {
//!     insecure: true,
//!     ..TlsClientSettings::default()
//! })?;
//! let timeout = Duration::from_secs(5);
//! let mut conn = transport::connect_with(&addr, timeout, Some(&client), None).await?;
//! conn.write_all(b"over TLS").await?;
//! conn.shutdown().await?; // close_notify: the server echoes, then closes
//! let mut echo = Vec::new();
//! conn.read_to_end(&mut echo).await?;
//! assert_eq!(echo, b"over TLS");
//!
//! shutdown.shutdown();
//! running.await??;
//! # Ok(())
//! # }
//! ```

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, WebPkiSupportedAlgorithms};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::server::WebPkiClientVerifier;
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, ServerConfig, SignatureScheme};
use sha2::{Digest, Sha256};
use tokio::net::TcpStream;
use tokio_rustls::{TlsAcceptor, TlsConnector};

use super::error::ConnectError;
pub use super::error::TlsError;
use crate::addr::Addr;

/// How long a peer has to complete the TLS handshake.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Where the server's certificate comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CertSource {
    /// A PEM certificate chain and its PEM private key (`--tls-cert`, `--tls-key`).
    Files {
        /// The certificate chain, leaf first.
        cert: PathBuf,
        /// The private key (PKCS#8, PKCS#1 or SEC1).
        key: PathBuf,
    },
    /// A certificate made at start-up for the listening names (`--tls-self-signed`).
    SelfSigned,
}

/// The server's TLS settings, as the flags give them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsServerSettings {
    /// The server's certificate.
    pub cert: CertSource,
    /// Require client certificates issued by these CAs (`--tls-client-ca`): mutual TLS.
    pub client_ca: Option<PathBuf>,
}

/// How the client decides to trust a server, and what it shows of itself.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TlsClientSettings {
    /// Trust only these CA certificates (`--tls-ca`) instead of the system's.
    pub ca: Option<PathBuf>,
    /// Trust any certificate (`--insecure`): for testing only.
    pub insecure: bool,
    /// Trust exactly the certificate with this SHA-256 fingerprint (`--tls-pin`).
    pub pin: Option<Fingerprint>,
    /// A client certificate and key to present, for mutual TLS.
    pub identity: Option<(PathBuf, PathBuf)>,
}

/// A certificate's SHA-256 fingerprint, shown as `AB:CD:…` as `openssl x509
/// -fingerprint -sha256` does; parsed with or without colons, any case.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Fingerprint(pub [u8; 32]);

impl Fingerprint {
    /// The fingerprint of a DER certificate.
    pub fn of(cert: &[u8]) -> Fingerprint {
        Fingerprint(Sha256::digest(cert).into())
    }
}

impl fmt::Display for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, b) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(":")?;
            }
            write!(f, "{b:02X}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Fingerprint({self})")
    }
}

impl FromStr for Fingerprint {
    type Err = String;

    fn from_str(s: &str) -> Result<Fingerprint, String> {
        let hex: Vec<u8> = s.bytes().filter(|&b| b != b':').collect();
        if hex.len() != 64 {
            return Err("a SHA-256 fingerprint is 64 hex digits (colons optional)".into());
        }
        let mut out = [0u8; 32];
        for (i, pair) in hex.chunks(2).enumerate() {
            let digits = std::str::from_utf8(pair).map_err(|_| "not hex".to_string())?;
            out[i] = u8::from_str_radix(digits, 16)
                .map_err(|_| format!("'{digits}' is not a hex byte"))?;
        }
        Ok(Fingerprint(out))
    }
}

fn provider() -> Arc<CryptoProvider> {
    static PROVIDER: OnceLock<Arc<CryptoProvider>> = OnceLock::new();
    PROVIDER
        .get_or_init(|| Arc::new(rustls::crypto::ring::default_provider()))
        .clone()
}

fn config_err(context: &'static str) -> impl FnOnce(rustls::Error) -> TlsError {
    move |error| TlsError::Config { context, error }
}

fn read(what: &'static str, path: &Path) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(|error| TlsError::Read {
        what,
        path: path.to_path_buf(),
        error,
    })
}

/// Reads every certificate in a PEM file; at least one.
pub fn load_certs(
    what: &'static str,
    path: &Path,
) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let pem = read(what, path)?;
    let invalid = |reason: String| TlsError::Invalid {
        what,
        path: path.to_path_buf(),
        reason,
    };
    let certs = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| invalid(e.to_string()))?;
    if certs.is_empty() {
        return Err(invalid("no PEM certificate in it".into()));
    }
    Ok(certs)
}

/// Reads the first private key in a PEM file.
pub fn load_key(path: &Path) -> Result<PrivateKeyDer<'static>, TlsError> {
    let pem = read("private key", path)?;
    PrivateKeyDer::from_pem_slice(&pem).map_err(|e| TlsError::Invalid {
        what: "private key",
        path: path.to_path_buf(),
        reason: match e {
            rustls::pki_types::pem::Error::NoItemsFound => "no PEM private key in it".into(),
            other => other.to_string(),
        },
    })
}

fn root_store(path: &Path) -> Result<RootCertStore, TlsError> {
    let mut roots = RootCertStore::empty();
    for cert in load_certs("CA certificate", path)? {
        roots.add(cert).map_err(|e| TlsError::Invalid {
            what: "CA certificate",
            path: path.to_path_buf(),
            reason: e.to_string(),
        })?;
    }
    Ok(roots)
}

/// Refuses a leaf certificate TLS cannot use, with the reason in words:
/// an X.509 version 1 certificate (no extensions, so no names) is what
/// `openssl x509 -req` makes without `-extfile`, and rustls would only
/// say `UnsupportedCertVersion` and blame the key.
fn check_leaf(what: &'static str, path: &Path, der: &[u8]) -> Result<(), TlsError> {
    if x509_version(der) == Some(1) {
        return Err(TlsError::Invalid {
            what,
            path: path.to_path_buf(),
            reason: "it is an X.509 version 1 certificate, and TLS needs version 3 \
                     (with extensions: openssl x509 -req ... -extfile with a subjectAltName)"
                .into(),
        });
    }
    Ok(())
}

/// The X.509 version of a DER certificate (1, 2 or 3), read from the start
/// of its `TBSCertificate`; `None` when it does not look like one.
fn x509_version(der: &[u8]) -> Option<u8> {
    /// Skips a SEQUENCE's tag and length; returns its contents' start.
    fn enter(der: &[u8]) -> Option<&[u8]> {
        let (&tag, rest) = der.split_first()?;
        let (&len, rest) = rest.split_first()?;
        if tag != 0x30 {
            return None;
        }
        let skip = if len & 0x80 == 0 {
            0
        } else {
            usize::from(len & 0x7f)
        };
        rest.get(skip..)
    }
    let tbs = enter(enter(der)?)?;
    match tbs {
        // [0] EXPLICIT Version: INTEGER v2 (1) or v3 (2).
        [0xa0, 0x03, 0x02, 0x01, v, ..] => Some(v + 1),
        [0xa0, ..] => None,
        // No version field: the DEFAULT, v1.
        _ => Some(1),
    }
}

/// A server configuration ready to accept, and the fingerprint of its
/// certificate (for the log line clients pin against).
pub struct ServerTls {
    /// The acceptor every TLS listener shares.
    pub acceptor: TlsAcceptor,
    /// SHA-256 of the leaf certificate.
    pub fingerprint: Fingerprint,
}

impl fmt::Debug for ServerTls {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ServerTls({})", self.fingerprint)
    }
}

/// Builds the server's TLS configuration. `names` are the host names and
/// IP addresses a self-signed certificate is made for.
pub fn server_config(
    settings: &TlsServerSettings,
    names: &[String],
) -> Result<ServerTls, TlsError> {
    let (chain, key) = match &settings.cert {
        CertSource::Files { cert, key } => (load_certs("certificate", cert)?, load_key(key)?),
        CertSource::SelfSigned => {
            let rcgen::CertifiedKey { cert, signing_key } =
                rcgen::generate_simple_self_signed(names.to_vec())?;
            let key = PrivateKeyDer::Pkcs8(signing_key.serialize_der().into());
            (vec![cert.der().clone()], key)
        }
    };
    if let CertSource::Files { cert, .. } = &settings.cert {
        check_leaf("certificate", cert, &chain[0])?;
    }
    let fingerprint = Fingerprint::of(&chain[0]);
    let builder = ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(config_err("TLS protocol versions"))?;
    let builder = match &settings.client_ca {
        None => builder.with_no_client_auth(),
        Some(ca) => {
            let verifier =
                WebPkiClientVerifier::builder_with_provider(Arc::new(root_store(ca)?), provider())
                    .build()
                    .map_err(|e| TlsError::Invalid {
                        what: "CA certificate",
                        path: ca.clone(),
                        reason: e.to_string(),
                    })?;
            builder.with_client_cert_verifier(verifier)
        }
    };
    let config = builder
        .with_single_cert(chain, key)
        .map_err(config_err("the certificate and key do not go together"))?;
    Ok(ServerTls {
        acceptor: TlsAcceptor::from(Arc::new(config)),
        fingerprint,
    })
}

/// The same server configuration, offering `protocols` by ALPN: what an
/// `https://` listener needs (`h2`, `http/1.1`), while `tls://` offers none.
pub fn with_alpn(acceptor: &TlsAcceptor, protocols: &[&[u8]]) -> TlsAcceptor {
    let mut config = ServerConfig::clone(acceptor.config());
    config.alpn_protocols = protocols.iter().map(|p| p.to_vec()).collect();
    TlsAcceptor::from(Arc::new(config))
}

/// Builds the client's TLS configuration from `settings`: the system's
/// trusted CAs unless `--tls-ca`, `--tls-pin` or `--insecure` says otherwise.
pub fn client_config(settings: &TlsClientSettings) -> Result<Arc<ClientConfig>, TlsError> {
    let builder = ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(config_err("TLS protocol versions"))?;
    let algorithms = provider().signature_verification_algorithms;
    let builder = if settings.insecure {
        builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(Lenient {
                pin: None,
                algorithms,
            }))
    } else if let Some(pin) = settings.pin {
        builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(Lenient {
                pin: Some(pin),
                algorithms,
            }))
    } else if let Some(ca) = &settings.ca {
        builder.with_root_certificates(root_store(ca)?)
    } else {
        builder.with_root_certificates(system_roots()?)
    };
    let config = match &settings.identity {
        None => builder.with_no_client_auth(),
        Some((cert, key)) => {
            let chain = load_certs("certificate", cert)?;
            check_leaf("client certificate", cert, &chain[0])?;
            builder
                .with_client_auth_cert(chain, load_key(key)?)
                .map_err(config_err(
                    "the client certificate and key do not go together",
                ))?
        }
    };
    Ok(Arc::new(config))
}

fn system_roots() -> Result<RootCertStore, TlsError> {
    let mut roots = RootCertStore::empty();
    let found = rustls_native_certs::load_native_certs();
    let (added, _ignored) = roots.add_parsable_certificates(found.certs);
    if added == 0 {
        return Err(TlsError::NoSystemRoots);
    }
    Ok(roots)
}

/// The client configuration used when none is given: the system's CAs,
/// loaded once.
pub fn default_client_config() -> Result<Arc<ClientConfig>, TlsError> {
    static DEFAULT: OnceLock<Arc<ClientConfig>> = OnceLock::new();
    if let Some(c) = DEFAULT.get() {
        return Ok(c.clone());
    }
    let config = client_config(&TlsClientSettings::default())?;
    Ok(DEFAULT.get_or_init(|| config).clone())
}

/// Accepts any certificate (`--insecure`), or exactly the pinned one; the
/// handshake signatures are still checked, so the peer holds the key.
#[derive(Debug)]
struct Lenient {
    pin: Option<Fingerprint>,
    algorithms: WebPkiSupportedAlgorithms,
}

impl ServerCertVerifier for Lenient {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        match self.pin {
            Some(pin) if Fingerprint::of(end_entity) != pin => {
                Err(rustls::Error::General(format!(
                    "the server's certificate has SHA-256 fingerprint {}, not the pinned {pin}",
                    Fingerprint::of(end_entity)
                )))
            }
            _ => Ok(ServerCertVerified::assertion()),
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

/// Connects over TCP, then shakes hands as a TLS client, naming the host
/// of `addr` for SNI and certificate checks.
pub async fn connect(
    addr: &Addr,
    timeout: Duration,
    config: Arc<ClientConfig>,
) -> Result<tokio_rustls::client::TlsStream<TcpStream>, ConnectError> {
    // A name that cannot be one is refused before connecting.
    server_name(addr)?;
    let tcp = super::tcp::connect(addr, timeout).await?;
    handshake(tcp, addr, timeout, config).await
}

/// The host of `addr` as a TLS server name, with its host and port.
fn server_name(addr: &Addr) -> Result<(ServerName<'static>, &str, u16), ConnectError> {
    let Addr::Inet { host, port, .. } = addr else {
        return Err(ConnectError::Unsupported(addr.transport()));
    };
    let name = ServerName::try_from(host.clone()).map_err(|e| ConnectError::Connect {
        target: format!("{host} port {port}"),
        error: io::Error::new(io::ErrorKind::InvalidInput, e),
    })?;
    Ok((name, host, *port))
}

/// Shakes hands as a TLS client over `tcp`, already connected to `addr`
/// (and past a PROXY header, say), within `timeout`.
pub async fn handshake(
    tcp: TcpStream,
    addr: &Addr,
    timeout: Duration,
    config: Arc<ClientConfig>,
) -> Result<tokio_rustls::client::TlsStream<TcpStream>, ConnectError> {
    let (name, host, port) = server_name(addr)?;
    let handshake = TlsConnector::from(config).connect(name, tcp);
    match tokio::time::timeout(timeout, handshake).await {
        Ok(Ok(stream)) => Ok(stream),
        Ok(Err(error)) => Err(ConnectError::Handshake {
            target: format!("{host} port {port}"),
            error: with_trust_hint(error),
        }),
        Err(_) => Err(ConnectError::Handshake {
            target: format!("{host} port {port}"),
            error: io::Error::new(io::ErrorKind::TimedOut, "TLS handshake timed out"),
        }),
    }
}

/// A TLS error in words a user can act on, with the client flags that
/// help: a certificate from an issuer this client does not trust says how
/// to trust it, and a server that wants a client certificate (mutual TLS;
/// over TLS 1.3 its alert comes with the first read) says how to give one.
/// Any other error is returned as it is.
pub fn with_trust_hint(error: io::Error) -> io::Error {
    use rustls::{AlertDescription, CertificateError, Error};
    let hint = match error.get_ref().and_then(|e| e.downcast_ref::<Error>()) {
        Some(Error::InvalidCertificate(CertificateError::UnknownIssuer)) => {
            "the server's certificate is not issued by a CA this client trusts: trust its CA \
             with --tls-ca PEM, or this certificate with --tls-pin SHA256 (echo-server logs its \
             fingerprint), or skip the check with -k (testing only)"
        }
        Some(Error::AlertReceived(AlertDescription::CertificateRequired)) => {
            "the server requires a client certificate (mutual TLS) and this client sent none: \
             give one with --tls-cert PEM --tls-key PEM"
        }
        _ => return error,
    };
    io::Error::new(error.kind(), hint)
}

#[cfg(test)]
mod tests;
