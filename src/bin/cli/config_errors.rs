//! What a refused server setting means in `echo-server`'s flags: each
//! [`ServerConfigError`] said with the flags that give the setting. The
//! match is exhaustive (the error is not `#[non_exhaustive]` for this),
//! so a new check cannot reach a user without words of its own.

use echoes::server::{ListenAddr, ServerConfigError};

/// `e` in the flags' words; `listen` is the `--listen` values as given, so
/// that an address is shown as the user wrote it (`?proxy=` included).
pub fn server_config_message(e: &ServerConfigError, listen: &[ListenAddr]) -> String {
    use ServerConfigError as E;
    let shown = |addr: &echoes::Addr| {
        listen
            .iter()
            .find(|l| l.addr == *addr)
            .map_or_else(|| addr.to_string(), ToString::to_string)
    };
    match e {
        E::TlsWithoutCertificate { scheme } => format!(
            "{scheme}:// needs a certificate: --tls-cert PEM --tls-key PEM, or --tls-self-signed"
        ),
        E::CertificateWithoutTls => {
            "--tls-cert and --tls-self-signed need a tls:// address (or https://) to listen on"
                .to_string()
        }
        E::PathOnListener { addr } => format!(
            "{}: a listening address takes no path (the server answers every path)",
            shown(addr)
        ),
        E::FrameOverMessage { .. } => {
            "--ws-max-frame cannot be larger than --ws-max-message".to_string()
        }
        E::MetricsNotTcp { .. } => "--metrics takes HOST:PORT (plain HTTP)".to_string(),
        E::DefaultKnobs { why } => format!("--http-default-knobs: {why}"),
        E::ZeroReadSize | E::ReadSizeTooLarge { .. } => format!("--read-size: {e}"),
        E::LimitTooLarge { .. } => format!("--max-connections, --max-connections-per-ip: {e}"),
        E::Threads { .. } => format!("--threads: {e}"),
        E::NoAddress => format!("--listen: {e}"),
        E::DuplicateListener { first, second } if first == second => format!(
            "--listen {} is given twice: each address can be listened on once",
            shown(second)
        ),
        E::DuplicateListener { .. } => format!("--listen: {e}"),
        E::NotBuilt { .. } => format!("--listen: {e}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Each refusal the flags can cause is said with the flags, as it was
    /// before the library checked them (tests/tls.rs and tests/http.rs
    /// hold the whole lines to it).
    #[test]
    fn refusals_are_said_with_flags() {
        use echoes::Transport;
        let listen: Vec<ListenAddr> = vec!["http://127.0.0.1:0/x?proxy=optional".parse().unwrap()];
        let addr = listen[0].addr.clone();
        let cases = [
            (
                ServerConfigError::TlsWithoutCertificate {
                    scheme: Transport::Https,
                },
                "https:// needs a certificate: --tls-cert PEM --tls-key PEM, or --tls-self-signed",
            ),
            (
                ServerConfigError::CertificateWithoutTls,
                "--tls-cert and --tls-self-signed need a tls:// address (or https://) to listen on",
            ),
            (
                ServerConfigError::PathOnListener { addr: addr.clone() },
                "http://127.0.0.1:0/x?proxy=optional: a listening address takes no path \
                 (the server answers every path)",
            ),
            (
                ServerConfigError::FrameOverMessage {
                    frame: 2,
                    message: 1,
                },
                "--ws-max-frame cannot be larger than --ws-max-message",
            ),
            (
                ServerConfigError::MetricsNotTcp { addr },
                "--metrics takes HOST:PORT (plain HTTP)",
            ),
            (
                ServerConfigError::DefaultKnobs {
                    why: "status=42: a status is a number from 200 to 599".into(),
                },
                "--http-default-knobs: status=42: a status is a number from 200 to 599",
            ),
        ];
        for (e, said) in cases {
            assert_eq!(server_config_message(&e, &listen), said);
        }
        for e in [
            ServerConfigError::ZeroReadSize,
            ServerConfigError::LimitTooLarge { max: 1 },
            ServerConfigError::Threads { max: 1 },
            ServerConfigError::NoAddress,
        ] {
            assert!(server_config_message(&e, &listen).starts_with("--"), "{e}");
        }
    }
}
