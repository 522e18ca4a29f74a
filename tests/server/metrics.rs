//! `--metrics`: the Prometheus page is served, names every family with
//! HELP and TYPE, and its counters move with traffic on each transport.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream, UdpSocket};
use std::process::Command;
use std::time::Duration;

use crate::support::*;

#[test]
fn counters_move_with_traffic() {
    let dir = tempfile::tempdir().unwrap();
    let sock = format!("unix:{}", dir.path().join("m.sock").display());
    let server = ServerProc::start(&[
        "-l",
        "127.0.0.1:0",
        "-l",
        "udp://127.0.0.1:0",
        "-l",
        &sock,
        "--metrics",
        "127.0.0.1:0",
    ]);
    let line = server.wait_for_line("serving metrics on", Duration::from_secs(5));
    let metrics_port: u16 = line
        .rsplit_once(':')
        .and_then(|(_, rest)| rest.trim_end_matches("/metrics").parse().ok())
        .unwrap_or_else(|| panic!("no port in {line:?}"));
    let udp_line = server.wait_for_line("udp://", Duration::from_secs(1));
    let udp_port: u16 = udp_line.rsplit(' ').next().unwrap().parse().unwrap();

    let before = scrape(metrics_port);
    for family in [
        "echoes_connections_open gauge",
        "echoes_connections_total counter",
        "echoes_bytes_received_total counter",
        "echoes_bytes_sent_total counter",
        "echoes_errors_total counter",
        "echoes_udp_datagrams_total counter",
    ] {
        assert!(
            before.contains(&format!("# TYPE {family}")),
            "{family}\n{before}"
        );
        let name = family.split(' ').next().unwrap();
        assert!(before.contains(&format!("# HELP {name} ")), "{name}");
    }
    assert_eq!(
        sample(&before, r#"echoes_connections_total{transport="tcp"}"#),
        0
    );

    // TCP: one connection, 1000 bytes, and one held open.
    let mut conn = TcpStream::connect(server.addr()).unwrap();
    conn.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    conn.write_all(&[7u8; 1000]).unwrap();
    conn.shutdown(std::net::Shutdown::Write).unwrap();
    let mut echo = Vec::new();
    conn.read_to_end(&mut echo).unwrap();
    assert_eq!(echo.len(), 1000);
    let held = TcpStream::connect(server.addr()).unwrap();
    // Unix: the client's 46 bytes. UDP: two datagrams of 10.
    let out = run(
        Command::new(CLIENT).args(["-c", &sock]),
        b"",
        Duration::from_secs(20),
    );
    assert!(out.status.success(), "{}", out.stderr);
    let udp = UdpSocket::bind("127.0.0.1:0").unwrap();
    udp.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    for _ in 0..2 {
        udp.send_to(&[1u8; 10], ("127.0.0.1", udp_port)).unwrap();
        let mut buf = [0u8; 32];
        assert_eq!(udp.recv_from(&mut buf).unwrap().0, 10);
    }

    let mut after = String::new();
    // A shard counts an echo just after sending it, so the client may
    // have its reply a moment before the counters show it.
    wait_for(
        Duration::from_secs(5),
        "the held connection and the datagrams counted",
        || {
            after = scrape(metrics_port);
            sample(&after, r#"echoes_connections_open{transport="tcp"}"#) == 1
                && sample(&after, r#"echoes_bytes_sent_total{transport="udp"}"#) == 20
                && sample(&after, r#"echoes_bytes_sent_total{transport="tcp"}"#) == 1000
                && sample(&after, r#"echoes_bytes_sent_total{transport="unix"}"#) == 46
        },
    );
    let get = |s: &str| sample(&after, s);
    assert_eq!(get(r#"echoes_connections_total{transport="tcp"}"#), 2);
    assert_eq!(get(r#"echoes_bytes_received_total{transport="tcp"}"#), 1000);
    assert_eq!(get(r#"echoes_bytes_sent_total{transport="tcp"}"#), 1000);
    assert_eq!(get(r#"echoes_connections_total{transport="unix"}"#), 1);
    assert_eq!(get(r#"echoes_bytes_sent_total{transport="unix"}"#), 46);
    assert_eq!(get(r#"echoes_bytes_received_total{transport="udp"}"#), 20);
    assert_eq!(get(r#"echoes_bytes_sent_total{transport="udp"}"#), 20);
    assert_eq!(
        get(r#"echoes_udp_datagrams_total{transport="udp",result="answered"}"#),
        2
    );
    assert_eq!(get(r#"echoes_errors_total{transport="tcp",kind="io"}"#), 0);
    drop(held);
    wait_for(Duration::from_secs(5), "the held connection closed", || {
        sample(
            &scrape(metrics_port),
            r#"echoes_connections_open{transport="tcp"}"#,
        ) == 0
    });
}

#[test]
fn other_paths_and_methods_are_refused_politely() {
    let server = ServerProc::start(&["-l", "127.0.0.1:0", "--metrics", "127.0.0.1:0"]);
    let line = server.wait_for_line("serving metrics on", Duration::from_secs(5));
    let addr = line
        .split("http://")
        .nth(1)
        .unwrap()
        .trim_end_matches("/metrics")
        .to_string();
    for (request, status) in [
        ("GET /nope HTTP/1.1\r\n\r\n", "404"),
        ("POST /metrics HTTP/1.1\r\nContent-Length: 0\r\n\r\n", "405"),
        ("HEAD /metrics HTTP/1.1\r\n\r\n", "200"),
    ] {
        let mut conn = TcpStream::connect(&addr).unwrap();
        conn.set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        conn.write_all(request.as_bytes()).unwrap();
        let mut response = String::new();
        conn.read_to_string(&mut response).unwrap();
        assert!(
            response.starts_with(&format!("HTTP/1.1 {status}")),
            "{request:?}: {response}"
        );
        if request.starts_with("HEAD") {
            assert!(response.ends_with("\r\n\r\n"), "HEAD has no body");
        }
    }
    let out = run(
        Command::new(SERVER).args(["-l", "127.0.0.1:0", "--metrics", "udp://127.0.0.1:0"]),
        b"",
        Duration::from_secs(20),
    );
    assert_eq!(out.status.code(), Some(2), "{}", out.stderr);
    assert!(
        out.stderr.contains("--metrics takes HOST:PORT"),
        "{}",
        out.stderr
    );
}

/// The metrics port a server logged (`serving metrics on http://…`).
fn metrics_port(server: &ServerProc) -> u16 {
    let line = server.wait_for_line("serving metrics on", Duration::from_secs(5));
    line.rsplit_once(':')
        .and_then(|(_, rest)| rest.trim_end_matches("/metrics").parse().ok())
        .unwrap_or_else(|| panic!("no port in {line:?}"))
}

/// A scrape, timed: the body and how long it took, connect included.
fn timed_scrape(port: u16) -> (String, Duration) {
    let t0 = std::time::Instant::now();
    let body = scrape(port);
    (body, t0.elapsed())
}

/// The connections the endpoint holds at once (`MAX_CONCURRENT` in
/// src/metrics/http.rs).
const SLOTS: usize = 512;

/// 64 more connections that never send a request than the endpoint holds
/// at once do not hold a scrape up: idle ones are closed to make room for
/// it, and counted.
#[test]
fn idle_connections_do_not_delay_a_scrape() {
    let server = ServerProc::start(&["-l", "127.0.0.1:0", "--metrics", "127.0.0.1:0"]);
    let port = metrics_port(&server);
    let idle: Vec<TcpStream> = (0..SLOTS + 64)
        .map(|_| TcpStream::connect(("127.0.0.1", port)).unwrap())
        .collect();
    for _ in 0..3 {
        let (body, took) = timed_scrape(port);
        // Idle ones are evictable after 1 s; the 2 s head deadline would
        // free them all in any case, which the count of evicted below
        // tells apart. The rest is margin for a loaded machine.
        assert!(took < Duration::from_secs(3), "a scrape took {took:?}");
        assert!(body.contains("# TYPE echoes_connections_open gauge"));
    }
    let (page, _) = timed_scrape(port);
    let evicted = sample(
        &page,
        r#"echoes_metrics_connections_dropped_total{reason="evicted"}"#,
    );
    assert!(evicted >= 48, "{evicted} idle connections evicted");
    drop(idle);
}

/// A burst of 2,000 scrapes at once, four times as many as the endpoint
/// holds: every one is answered in full (the excess waits in the backlog,
/// none is closed unanswered), and the server's descriptors and memory
/// stay bounded meanwhile.
#[test]
fn a_burst_of_2000_concurrent_scrapes_is_answered_in_full() {
    let server = ServerProc::start(&["-l", "127.0.0.1:0", "--metrics", "127.0.0.1:0"]);
    let port = metrics_port(&server);
    scrape(port);
    let (fds_before, rss_before) = (server.fd_count(), server.rss_kib());
    // The most the server holds while the burst lasts.
    let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let pid = server.pid();
    let peak = std::thread::spawn({
        let done = done.clone();
        move || {
            let (mut fds, mut rss) = (0, 0);
            while !done.load(std::sync::atomic::Ordering::Relaxed) {
                fds = fds.max(fd_count(pid));
                rss = rss.max(rss_kib(pid));
                std::thread::sleep(Duration::from_millis(5));
            }
            (fds, rss)
        }
    });
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let answers: Vec<Result<Vec<u8>, String>> = rt.block_on(async {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let scrapes = (0..2000).map(|_| async move {
            let scrape = async {
                let mut c = tokio::net::TcpStream::connect(("127.0.0.1", port)).await?;
                c.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
                    .await?;
                let mut answer = Vec::new();
                c.read_to_end(&mut answer).await?;
                Ok::<_, std::io::Error>(answer)
            };
            match tokio::time::timeout(Duration::from_secs(60), scrape).await {
                Ok(answer) => answer.map_err(|e| e.to_string()),
                Err(_) => Err("no answer within 60 s".to_string()),
            }
        });
        futures_util::future::join_all(scrapes).await
    });
    done.store(true, std::sync::atomic::Ordering::Relaxed);
    let (fds_peak, rss_peak) = peak.join().unwrap();
    let failed: Vec<String> = answers
        .iter()
        .filter_map(|a| match a {
            Ok(a) if a.starts_with(b"HTTP/1.1 200 OK") && complete(a) => None,
            Ok(a) => Some(format!(
                "{:?}",
                String::from_utf8_lossy(&a[..a.len().min(80)])
            )),
            Err(e) => Some(e.clone()),
        })
        .collect();
    let page = scrape(port);
    let dropped = |reason: &str| {
        sample(
            &page,
            &format!("echoes_metrics_connections_dropped_total{{reason=\"{reason}\"}}"),
        )
    };
    assert!(
        failed.is_empty(),
        "{} of 2000 scrapes unanswered (the server counts {} evicted, {} timed out), e.g. {:?}",
        failed.len(),
        dropped("evicted"),
        dropped("timeout"),
        &failed[..failed.len().min(5)]
    );
    for reason in ["evicted", "timeout"] {
        assert_eq!(dropped(reason), 0, "{reason}");
    }
    // Bounded by the slots: a descriptor each, and a few KiB.
    assert!(
        fds_peak <= fds_before + SLOTS + 8,
        "{fds_before} descriptors before, {fds_peak} at the peak"
    );
    assert!(
        rss_peak < rss_before + 32 * 1024,
        "{rss_before} KiB before, {rss_peak} KiB at the peak"
    );
}

/// Whether an HTTP/1.1 answer holds its whole `Content-Length` of body.
fn complete(answer: &[u8]) -> bool {
    let text = String::from_utf8_lossy(answer);
    let Some((head, body)) = text.split_once("\r\n\r\n") else {
        return false;
    };
    let length = head.lines().find_map(|l| {
        let (name, value) = l.split_once(':')?;
        name.eq_ignore_ascii_case("content-length")
            .then(|| value.trim().parse::<usize>().ok())?
    });
    length == Some(body.len()) && body.contains("# TYPE echoes_connections_open gauge")
}

/// A connection that sends no request is closed after a short deadline
/// even when nobody else waits, and counted as a timeout.
#[test]
fn a_silent_connection_is_closed_after_the_header_deadline() {
    let server = ServerProc::start(&["-l", "127.0.0.1:0", "--metrics", "127.0.0.1:0"]);
    let port = metrics_port(&server);
    let mut silent = TcpStream::connect(("127.0.0.1", port)).unwrap();
    // Half a request: a slow sender gets no more time than a silent one.
    silent.write_all(b"GET /metrics HTTP/1.1\r\n").unwrap();
    silent
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let t0 = std::time::Instant::now();
    let mut rest = Vec::new();
    let _ = silent.read_to_end(&mut rest);
    let took = t0.elapsed();
    assert!(rest.is_empty(), "an answer to half a request");
    assert!(
        took >= Duration::from_millis(1500) && took < Duration::from_secs(5),
        "closed after {took:?}"
    );
    let (page, _) = timed_scrape(port);
    assert_eq!(
        sample(
            &page,
            r#"echoes_metrics_connections_dropped_total{reason="timeout"}"#
        ),
        1
    );
}

/// A TCP connection to 127.0.0.1:`port` from another loopback address,
/// 127.0.0.2: another host, as the server sees it.
/// A host whose peers reconnect as soon as they are closed, in a loop,
/// never keeps a scrape waiting: each scrape among them is answered within
/// 2 s, and only the flooding host's connections are closed for it.
#[test]
fn a_reconnecting_peer_cannot_starve_scrapes() {
    use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
    let server = ServerProc::start(&["-l", "127.0.0.1:0", "--metrics", "127.0.0.1:0"]);
    let port = metrics_port(&server);
    let stop = std::sync::Arc::new(AtomicBool::new(false));
    let reconnects = std::sync::Arc::new(AtomicU64::new(0));
    let hogs: Vec<_> = (0..48)
        .map(|_| {
            let (stop, reconnects) = (stop.clone(), reconnects.clone());
            std::thread::spawn(move || {
                let deadline = std::time::Instant::now() + Duration::from_secs(30);
                while !stop.load(Ordering::Relaxed) && std::time::Instant::now() < deadline {
                    let Ok(mut c) = connect_from([127, 0, 0, 2], SocketAddr::from(([127, 0, 0, 1], port))) else {
                        continue;
                    };
                    reconnects.fetch_add(1, Ordering::Relaxed);
                    // Hold it, silent, until the server closes it.
                    c.set_read_timeout(Some(Duration::from_millis(200)))
                        .unwrap();
                    let mut buf = [0u8; 64];
                    while !stop.load(Ordering::Relaxed)
                        && matches!(c.read(&mut buf), Err(ref e) if e.kind() == std::io::ErrorKind::WouldBlock)
                    {}
                }
            })
        })
        .collect();
    wait_for(Duration::from_secs(10), "the peers to churn", || {
        reconnects.load(Ordering::Relaxed) > 60
    });
    let mut slowest = Duration::ZERO;
    for _ in 0..10 {
        let (body, took) = timed_scrape(port);
        assert!(
            body.contains("# TYPE echoes_connections_open gauge"),
            "{body}"
        );
        slowest = slowest.max(took);
        std::thread::sleep(Duration::from_millis(100));
    }
    stop.store(true, Ordering::Relaxed);
    for h in hogs {
        h.join().unwrap();
    }
    assert!(
        slowest < Duration::from_secs(2),
        "a scrape took {slowest:?}"
    );
}

/// The value of one sample line, as a float (`process_*` values are).
fn sample_f64(page: &str, series: &str) -> f64 {
    page.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
        .unwrap_or_else(|| panic!("no sample {series} in:\n{page}"))
}

/// The standard `process_*` families and `echoes_build_info`, with the
/// values /proc gives for the server from outside.
#[test]
fn process_metrics_and_build_info_tell_the_truth() {
    let server =
        ServerProc::start_with_nofile(300, &["-l", "127.0.0.1:0", "--metrics", "127.0.0.1:0"]);
    let port = metrics_port(&server);
    let held: Vec<TcpStream> = (0..5)
        .map(|_| TcpStream::connect(server.addr()).unwrap())
        .collect();
    wait_for(Duration::from_secs(5), "5 connections accepted", || {
        server.count_lines("connection accepted") == 5
    });
    let page = scrape(port);
    for (name, kind) in [
        ("process_cpu_seconds_total", "counter"),
        ("process_resident_memory_bytes", "gauge"),
        ("process_virtual_memory_bytes", "gauge"),
        ("process_open_fds", "gauge"),
        ("process_max_fds", "gauge"),
        ("process_start_time_seconds", "gauge"),
        ("echoes_build_info", "gauge"),
    ] {
        assert!(
            page.contains(&format!("# TYPE {name} {kind}\n")),
            "{name}\n{page}"
        );
        assert!(page.contains(&format!("# HELP {name} ")), "{name}");
    }
    assert_eq!(
        sample(
            &page,
            &format!(
                "echoes_build_info{{version=\"{}\"}}",
                env!("CARGO_PKG_VERSION")
            )
        ),
        1
    );
    assert_eq!(sample_f64(&page, "process_max_fds"), 300.0);
    // The scrape's own connection was open while the page was made.
    let open = sample_f64(&page, "process_open_fds");
    wait_for(Duration::from_secs(5), "the scrape's socket closed", || {
        server.fd_count() as f64 == open - 1.0
    });
    let rss = sample_f64(&page, "process_resident_memory_bytes");
    let rss_now = (server.rss_kib() * 1024) as f64;
    assert!(
        rss > 0.5 * rss_now && rss < 2.0 * rss_now,
        "rss {rss} against {rss_now} in /proc"
    );
    assert!(sample_f64(&page, "process_virtual_memory_bytes") >= rss);
    let cpu = sample_f64(&page, "process_cpu_seconds_total");
    assert!(
        cpu >= 0.0 && cpu <= server.cpu_time().as_secs_f64() + 0.02,
        "{cpu} CPU seconds"
    );
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64();
    let started = sample_f64(&page, "process_start_time_seconds");
    assert!(
        started <= now + 1.0 && started > now - 60.0,
        "started at {started}, now {now}"
    );
    drop(held);
}
