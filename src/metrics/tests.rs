//! Unit tests of the `metrics` module.

use super::*;

#[test]
fn sent_is_received_less_unsent_across_threads() {
    let m = std::sync::Arc::new(Metrics::new());
    let b = m.bytes(Transport::Tcp);
    b.echoed(10);
    b.received_unsent(5, 3);
    assert_eq!(m.snapshot(Transport::Tcp).received, 15);
    assert_eq!(m.snapshot(Transport::Tcp).sent, 12);
    // The rest is written from another thread, whose shard goes negative.
    let m2 = m.clone();
    std::thread::spawn(move || m2.bytes(Transport::Tcp).sent_later(3))
        .join()
        .unwrap();
    let s = m.snapshot(Transport::Tcp);
    assert_eq!((s.received, s.sent), (15, 15));
    assert_eq!(m.snapshot(Transport::Udp), TransportSnapshot::default());
}

#[test]
fn exposition_has_help_type_and_labels() {
    let m = Metrics::new();
    m.opened(Transport::Unix);
    m.error(Transport::Tls, ErrorKind::TlsHandshake);
    m.udp(UdpResult::RefusedRate);
    let text = m.render();
    for name in [
        "echoes_connections_open",
        "echoes_connections_total",
        "echoes_bytes_received_total",
        "echoes_bytes_sent_total",
        "echoes_errors_total",
        "echoes_udp_datagrams_total",
        "echoes_metrics_connections_dropped_total",
        "echoes_build_info",
    ] {
        assert!(text.contains(&format!("# HELP {name} ")), "{name}");
        assert!(text.contains(&format!("# TYPE {name} ")), "{name}");
    }
    assert!(text.contains("echoes_connections_open{transport=\"unix\"} 1\n"));
    assert!(text.contains("echoes_connections_total{transport=\"unix\"} 1\n"));
    assert!(text.contains("echoes_errors_total{transport=\"tls\",kind=\"tls_handshake\"} 1\n"));
    assert!(!text.contains("transport=\"tcp\",kind=\"tls_handshake\""));
    assert!(
        text.contains("echoes_udp_datagrams_total{transport=\"udp\",result=\"refused_rate\"} 1\n")
    );
    assert!(text.contains(&format!(
        "echoes_build_info{{version=\"{}\"}} 1\n",
        env!("CARGO_PKG_VERSION")
    )));
    m.metrics_dropped(Dropped::Timeout);
    assert!(
        m.render()
            .contains("echoes_metrics_connections_dropped_total{reason=\"timeout\"} 1\n")
    );
    assert!(text.ends_with('\n'));
}

#[test]
fn http_and_ws_have_labels_and_bytes_each_way() {
    let m = Metrics::new();
    m.opened(Transport::Https);
    m.received(Transport::Http, 100);
    m.sent(Transport::Https, 4000);
    m.received(Transport::Wss, 7);
    m.sent(Transport::Ws, 7);
    m.error(Transport::Https, ErrorKind::TlsHandshake);
    m.error(Transport::Http, ErrorKind::BodyTooLarge);
    m.error(Transport::Ws, ErrorKind::Protocol);
    let s = m.snapshot(Transport::Http);
    assert_eq!((s.open, s.received, s.sent), (1, 100, 4000));
    let text = m.render();
    for line in [
        "echoes_connections_open{transport=\"http\"} 1\n",
        "echoes_bytes_sent_total{transport=\"http\"} 4000\n",
        "echoes_bytes_received_total{transport=\"ws\"} 7\n",
        "echoes_bytes_sent_total{transport=\"ws\"} 7\n",
        "echoes_errors_total{transport=\"http\",kind=\"tls_handshake\"} 1\n",
        "echoes_errors_total{transport=\"http\",kind=\"body_too_large\"} 1\n",
        "echoes_errors_total{transport=\"http\",kind=\"request_timeout\"} 0\n",
        "echoes_errors_total{transport=\"ws\",kind=\"protocol\"} 1\n",
    ] {
        assert!(text.contains(line), "{line:?} missing from\n{text}");
    }
    assert!(!text.contains("transport=\"ws\",kind=\"accept\""));
    assert!(!text.contains("transport=\"tcp\",kind=\"bad_request\""));
}
