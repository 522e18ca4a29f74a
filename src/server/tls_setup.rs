//! The TLS set-up of a server (with the `tls` feature): the acceptors its
//! `tls://` and `https://` listeners share, made once, before anything is
//! bound, and the names a self-signed certificate is made for.

use std::net::IpAddr;

use tokio_rustls::TlsAcceptor;
use tracing::info;

use super::config::ServerConfig;
use super::error::{ServerConfigError, ServerError};
use super::listen::ListenAddr;
use crate::activation::{InheritedSocket, SocketKind};
use crate::addr::Transport;
use crate::transport::tls::{self, CertSource};

/// The TLS acceptors, when some listener needs one: the plain one, and
/// the same certificate offering `h2` and `http/1.1` by ALPN for
/// `https://`. Logs the certificate's fingerprint.
pub(super) fn tls_acceptors(
    config: &ServerConfig,
) -> Result<Option<(TlsAcceptor, TlsAcceptor)>, ServerError> {
    match (&config.tls, config.wants_tls()) {
        (None, Some(scheme)) => Err(ServerConfigError::TlsWithoutCertificate { scheme }.into()),
        (Some(settings), Some(_)) => {
            let names = certificate_names(&config.listen, &config.inherited);
            let server_tls = tls::server_config(settings, &names)?;
            let how = match settings.cert {
                CertSource::SelfSigned => " (self-signed)",
                CertSource::Files { .. } => "",
            };
            info!(
                name = "main",
                "TLS certificate{how} SHA-256 fingerprint {}", server_tls.fingerprint
            );
            let https = tls::with_alpn(&server_tls.acceptor, &[b"h2", b"http/1.1"]);
            Ok(Some((server_tls.acceptor, https)))
        }
        (_, None) => Ok(None),
    }
}

/// The names a self-signed certificate is made for: every `tls://` host
/// that is not a wildcard, and the loopback names, so a local client can
/// check it whichever it connects to.
fn certificate_names(listen: &[ListenAddr], inherited: &[InheritedSocket]) -> Vec<String> {
    let mut names: Vec<String> = Vec::new();
    let mut add = |n: String| {
        if !names.contains(&n) {
            names.push(n);
        }
    };
    for addr in listen.iter().map(|l| &l.addr) {
        if let Some((host, _)) = addr.host_port()
            && matches!(
                addr.transport().listener(),
                Transport::Tls | Transport::Https
            )
            && !host.parse::<IpAddr>().is_ok_and(|ip| ip.is_unspecified())
        {
            add(host.to_string());
        }
    }
    for s in inherited.iter().filter(|s| s.wants_tls()) {
        if let SocketKind::Tcp(a) = s.kind
            && !a.ip().is_unspecified()
        {
            add(a.ip().to_string());
        }
    }
    for n in ["localhost", "127.0.0.1", "::1"] {
        add(n.to_string());
    }
    names
}
