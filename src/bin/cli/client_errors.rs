//! What a refused client or bench setting means in `echo-client`'s and
//! `echo-bench`'s flags: each [`ClientOptionsError`] and
//! [`BenchConfigError`] said with the flags that give the setting. The
//! matches are exhaustive (the errors are not `#[non_exhaustive]` for
//! this), so a new check cannot reach a user without words of its own.

#[cfg(feature = "bench")]
use echoes::bench::BenchConfigError;
use echoes::client::ClientOptionsError;

/// A PROXY header over UDP, in both programs' flags.
const PROXY_OVER_UDP: &str =
    "--proxy-protocol needs a stream: the PROXY protocol is not used over udp://";

/// `e` in `echo-client`'s flags.
pub fn client_options_message(e: &ClientOptionsError) -> String {
    match e {
        ClientOptionsError::ProxyOverUdp => PROXY_OVER_UDP.to_string(),
        // `--timeout`'s parser refuses 0 first.
        ClientOptionsError::ZeroTimeout => e.to_string(),
    }
}

/// `e` in `echo-bench`'s flags.
#[cfg(feature = "bench")]
pub fn bench_config_message(e: &BenchConfigError) -> String {
    use BenchConfigError as E;
    match e {
        // The same words as the flags' parsers, which refuse these first.
        E::NoThreads | E::TooManyThreads { .. } => format!("--threads: {e}"),
        E::NoConnections | E::TooManyConnections { .. } => format!("-c: {e}"),
        E::TooFewFiles { connections, limit } => format!(
            "-c {connections} needs as many open files, and this process may open {limit} \
             (ulimit -n): raise the limit or use fewer connections"
        ),
        E::PipelineOutOfRange { max } => format!("--pipeline must be between 1 and {max}"),
        E::RateInStreamMode => {
            "--rate does not apply to stream mode, which sends as fast as it can".into()
        }
        E::PipelineNeedsPingpong { .. } => "--pipeline applies to pingpong mode only".into(),
        E::ProxyOverUdp => PROXY_OVER_UDP.into(),
        E::UdpNeedsPingpong { mode } => format!(
            "--mode {} needs a connection; udp:// has none: use --mode pingpong \
             (each message one datagram) or a stream transport",
            mode.as_str()
        ),
        E::PipelineOverUdp => "--pipeline does not apply to udp://: each datagram's reply is \
                               awaited before the next is sent (use more connections, -c)"
            .into(),
        E::HttpStreamMode { transport } => format!(
            "--mode stream does not apply to {transport}://, which answers requests: use --mode \
             pingpong or churn (each message one request)"
        ),
        E::HttpPipelineNeedsH2 { .. } => "--pipeline over HTTP/1.1 would queue requests on one \
                                          connection: add --http2 (--pipeline N is then N \
                                          concurrent streams) or use more connections (-c)"
            .into(),
        E::UdpSizeTooLarge { size, max } => format!(
            "--size {size} does not fit in one UDP datagram: at most {max} bytes over udp://"
        ),
        E::StartAt(e) => format!("--start-at: {e}"),
        // These name no flag: the values that clap's parsers refuse
        // first.
        E::EmptyMessage | E::ZeroDuration | E::ZeroTimeout | E::RateNotPositive => e.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_refusals_are_said_with_flags() {
        assert_eq!(
            client_options_message(&ClientOptionsError::ProxyOverUdp),
            "--proxy-protocol needs a stream: the PROXY protocol is not used over udp://"
        );
        assert_eq!(
            client_options_message(&ClientOptionsError::ZeroTimeout),
            "the timeout must be more than 0"
        );
    }

    #[cfg(feature = "bench")]
    #[test]
    fn bench_refusals_name_the_flag_to_change() {
        use BenchConfigError as E;
        use echoes::bench::Mode;
        let cases = [
            (
                E::TooManyThreads { max: 1024 },
                "--threads: the number of threads must be at least 1 and at most 1024",
            ),
            (
                E::TooManyConnections { max: 8 },
                "-c: the number of connections must be at least 1 and at most 8",
            ),
            (
                E::TooFewFiles {
                    connections: 1000,
                    limit: 256,
                },
                "-c 1000 needs as many open files, and this process may open 256 (ulimit -n)",
            ),
            (
                E::PipelineOutOfRange { max: 65_536 },
                "--pipeline must be between 1 and 65536",
            ),
            (E::RateInStreamMode, "--rate does not apply to stream mode"),
            (
                E::PipelineNeedsPingpong { mode: Mode::Churn },
                "--pipeline applies to pingpong mode only",
            ),
            (E::ProxyOverUdp, "--proxy-protocol needs a stream"),
            (
                E::UdpNeedsPingpong { mode: Mode::Churn },
                "--mode churn needs a connection; udp:// has none: use --mode pingpong (each",
            ),
            (
                E::PipelineOverUdp,
                "--pipeline does not apply to udp://: each datagram's reply is awaited before",
            ),
            (
                E::UdpSizeTooLarge {
                    size: 65_508,
                    max: 65_507,
                },
                "--size 65508 does not fit in one UDP datagram: at most 65507 bytes",
            ),
            (E::ZeroTimeout, "the timeout must be more than 0"),
        ];
        for (e, start) in cases {
            let text = bench_config_message(&e);
            assert!(text.starts_with(start), "{text:?} should start {start:?}");
        }
    }
}
