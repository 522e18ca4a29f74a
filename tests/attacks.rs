//! What a real network does to an echo server, done to the real binary over
//! loopback: peers that never read, descriptor exhaustion, resets in the
//! middle of a transfer, and slow peers among fast ones. Each test checks
//! one promise of README's "Operations" section.
//!
//! The tests here take a lock so they run one at a time: each measures the
//! server (memory, CPU, latency), and two at once on a 2-core machine
//! would measure each other.

mod support;

use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use support::*;

static SERIAL: Mutex<()> = Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

/// 200 peers each try to send 8 MB and never read. The server stops
/// reading each once its echo is stuck, so what it holds per peer is
/// bounded (one chunk), not what the peer sent; and it goes on serving.
#[test]
fn silent_peers_cost_bounded_memory() {
    let _serial = serial();
    let server = ServerProc::start(&["-l", "127.0.0.1:0"]);
    let addr = server.addr();
    let mut warm = TcpStream::connect(addr).unwrap();
    ping(&mut warm, b"warm up", Duration::from_secs(10)).unwrap();
    let rss_before = server.rss_kib();
    let fds_before = server.fd_count();
    const PEERS: usize = 200;
    const EACH: usize = 8_000_000;
    let rt = runtime();
    let data: Arc<Vec<u8>> = Arc::new(pattern(8, EACH));
    let peers: Vec<(tokio::net::TcpStream, usize)> = rt.block_on(async {
        let tasks: Vec<_> = (0..PEERS)
            .map(|_| {
                let data = data.clone();
                tokio::spawn(async move {
                    use tokio::io::AsyncWriteExt;
                    // Small buffers on our side, so the kernel holds less
                    // of what we send and the server's limit shows sooner.
                    let socket = tokio::net::TcpSocket::new_v4().unwrap();
                    socket.set_send_buffer_size(64 * 1024).unwrap();
                    socket.set_recv_buffer_size(64 * 1024).unwrap();
                    let mut conn = socket.connect(addr).await.unwrap();
                    let mut sent = 0;
                    // Write until done, or until nothing is taken for
                    // 500 ms: backpressure has reached us.
                    while sent < data.len() {
                        let write = conn.write(&data[sent..]);
                        match tokio::time::timeout(Duration::from_millis(500), write).await {
                            Ok(Ok(n)) => sent += n,
                            Ok(Err(e)) => panic!("peer cut off after {sent} bytes: {e}"),
                            Err(_) => break,
                        }
                    }
                    (conn, sent)
                })
            })
            .collect();
        let mut peers = Vec::new();
        for t in tasks {
            peers.push(t.await.unwrap());
        }
        peers
    });
    let pushed: usize = peers.iter().map(|(_, n)| n).sum();
    let growth_kib = server.rss_kib().saturating_sub(rss_before);
    eprintln!(
        "{PEERS} silent peers pushed {} MB in all; server RSS grew {growth_kib} KiB",
        pushed / 1_000_000
    );
    assert!(
        growth_kib < 64 * 1024,
        "server RSS grew by {growth_kib} KiB with {PEERS} silent peers"
    );
    // Every peer is still connected: none was dropped to save memory.
    assert!(server.fd_count() >= fds_before + PEERS);
    // A new peer gets its echo promptly.
    let t0 = Instant::now();
    let mut fresh = TcpStream::connect(addr).unwrap();
    ping(&mut fresh, &pattern(1, 4096), Duration::from_secs(10)).unwrap();
    let took = t0.elapsed();
    assert!(took < Duration::from_secs(2), "new peer waited {took:?}");
    // And nothing a stuck peer sent was lost: one of them reads it all back.
    let (stuck, sent) = peers.into_iter().next().unwrap();
    let mut stuck = stuck.into_std().unwrap();
    stuck.set_nonblocking(false).unwrap();
    stuck.shutdown(Shutdown::Write).unwrap();
    stuck
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    let mut echoed = Vec::with_capacity(sent);
    stuck.read_to_end(&mut echoed).unwrap();
    assert_eq!(echoed.len(), sent);
    assert!(echoed[..] == data[..sent], "a stuck peer's echo differs");
    drop(rt);
}

/// With 64 descriptors and 200 peers, `accept` fails with EMFILE while
/// the backlog is full: the server logs it once, backs off instead of
/// spinning, keeps echoing for the peers it has, and serves the others as
/// descriptors free up.
#[test]
fn descriptor_exhaustion_backs_off_and_recovers() {
    let _serial = serial();
    let mut server = ServerProc::start_with_nofile(64, &["-l", "127.0.0.1:0"]);
    let addr = server.addr();
    const PEERS: usize = 200;
    let mut peers: Vec<TcpStream> = (0..PEERS)
        .map(|i| {
            let mut c = TcpStream::connect(addr).unwrap_or_else(|e| {
                // Seen once in CI, under load, and not reproduced: the
                // server's log says whether it was still serving.
                panic!(
                    "connect {i}: {e} (the backlog is 4096); the server's log:\n{}",
                    server.lines().join("\n")
                )
            });
            c.write_all(b"x").unwrap();
            c
        })
        .collect();
    server.wait_for_line("Too many open files", Duration::from_secs(10));
    std::thread::sleep(Duration::from_millis(200));
    // The episode: descriptors exhausted, a full backlog, the listener
    // readable all along. A busy loop would burn a whole core.
    let cpu0 = server.cpu_time();
    let t0 = Instant::now();
    std::thread::sleep(Duration::from_millis(1500));
    let cpu = server.cpu_time() - cpu0;
    let wall = t0.elapsed();
    eprintln!("out of descriptors: {cpu:?} of CPU in {wall:?}");
    assert!(
        cpu < wall / 4,
        "server used {cpu:?} of CPU in {wall:?} while out of descriptors"
    );
    assert_eq!(
        server.count_lines("failed"),
        1,
        "one line per burst; log:\n{}",
        server.lines().join("\n")
    );
    // Which peers the server took: those whose byte came back.
    let mut served = Vec::new();
    let mut waiting = Vec::new();
    for mut c in peers.drain(..) {
        c.set_nonblocking(true).unwrap();
        let mut b = [0u8; 1];
        match c.read(&mut b) {
            Ok(1) => served.push(c),
            Err(e) if e.kind() == ErrorKind::WouldBlock => waiting.push(c),
            other => panic!("a waiting peer was dropped: {other:?}"),
        }
    }
    assert!(
        !served.is_empty() && served.len() < PEERS,
        "{} of {PEERS} served under a 64-descriptor limit",
        served.len()
    );
    // Those it has still get their echo.
    for c in &mut served {
        c.set_nonblocking(false).unwrap();
        ping(c, b"still echoing", Duration::from_secs(10)).unwrap();
    }
    // As descriptors free up, the rest are accepted and echoed, with the
    // byte they sent while waiting.
    let first_wave = served.len();
    drop(served);
    let deadline = Instant::now() + Duration::from_secs(30);
    while !waiting.is_empty() && Instant::now() < deadline {
        waiting.retain_mut(|c| {
            let mut b = [0u8; 1];
            match c.read(&mut b) {
                Ok(1) => false, // echoed; closing it frees a descriptor
                Err(e) if e.kind() == ErrorKind::WouldBlock => true,
                other => panic!("a waiting peer was dropped: {other:?}"),
            }
        });
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(
        waiting.is_empty(),
        "{} peers never served after {first_wave} closed",
        waiting.len()
    );
    // Logged before the first peer served after the burst; the line may
    // still be in the pipe to the reader thread.
    assert!(wait_until(Duration::from_secs(5), || server
        .count_lines("again after")
        >= 1));
    assert!(server.child.try_wait().unwrap().is_none(), "server exited");
}

/// Runs `count` peers, `parallel` at a time, that each send `size` bytes,
/// read part of the echo, and reset the connection (SO_LINGER 0).
fn reset_peers(addr: SocketAddr, count: usize, parallel: usize, size: usize) {
    let threads: Vec<_> = (0..parallel)
        .map(|t| {
            std::thread::spawn(move || {
                let data = pattern(t as u64, size);
                for i in (t..count).step_by(parallel) {
                    let mut c = TcpStream::connect(addr).expect("connect");
                    c.write_all(&data).expect("write");
                    if i % 2 == 0 {
                        let mut part = vec![0u8; 1000];
                        c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
                        c.read_exact(&mut part).expect("part of the echo");
                    }
                    socket2::SockRef::from(&c)
                        .set_linger(Some(Duration::ZERO))
                        .unwrap();
                    drop(c); // RST, with the echo still flowing
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
}

/// 500 peers send, then reset mid-stream: every connection task ends and
/// closes its socket, so the server's descriptors return to where they were.
#[test]
fn resets_mid_stream_leave_no_descriptor_behind() {
    let _serial = serial();
    // One worker, warmed up by one bulk transfer, so that whatever a worker
    // keeps for good (with --zero-copy, a pipe) is in the baseline; what
    // must not grow is anything per peer.
    // --zero-copy: resets in the middle of a splice must not leave
    // anything behind either.
    let server = ServerProc::start(&["-l", "127.0.0.1:0", "--threads", "1", "--zero-copy"]);
    let bulk = pattern(99, 256 * 1024);
    let out = run(
        std::process::Command::new(CLIENT).args(["-c", &server.addr().to_string(), "--stdin"]),
        &bulk,
        Duration::from_secs(20),
    );
    assert!(out.status.success() && out.stdout == bulk, "{}", out.stderr);
    let fds_before = server.fd_count();
    reset_peers(server.addr(), 500, 25, 256 * 1024);
    let settled = wait_until(Duration::from_secs(10), || {
        server.fd_count() == fds_before && server.count_lines("closing") == 501
    });
    assert!(
        settled,
        "{} descriptors (was {fds_before}), {} of 501 closed",
        server.fd_count(),
        server.count_lines("closing")
    );
    let mut c = TcpStream::connect(server.addr()).unwrap();
    ping(&mut c, b"after the resets", Duration::from_secs(10)).unwrap();
}

/// The same in-process: the open-connections count and the runtime's
/// task count return to where they were.
#[test]
fn resets_mid_stream_leave_no_task_behind() {
    let _serial = serial();
    let rt = runtime();
    rt.block_on(async {
        let server =
            echoes::Server::bind(echoes::ServerConfig::new("127.0.0.1:0".parse().unwrap()))
                .await
                .unwrap();
        let addr = server.tcp_addrs()[0];
        let stats = server.stats();
        let shutdown = server.shutdown_handle();
        let running = tokio::spawn(server.run());
        tokio::time::sleep(Duration::from_millis(50)).await;
        let metrics = tokio::runtime::Handle::current().metrics();
        let tasks_before = metrics.num_alive_tasks();
        tokio::task::spawn_blocking(move || reset_peers(addr, 500, 25, 256 * 1024))
            .await
            .unwrap();
        // Wait for the last peers to be accepted too: a peer that reset
        // while still in the backlog is accepted after the others are done.
        let deadline = Instant::now() + Duration::from_secs(10);
        while (stats.total_connections() != 500
            || stats.open_connections() != 0
            || metrics.num_alive_tasks() != tasks_before)
            && Instant::now() < deadline
        {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert_eq!(stats.open_connections(), 0);
        assert_eq!(stats.total_connections(), 500);
        assert_eq!(metrics.num_alive_tasks(), tasks_before);
        shutdown.shutdown();
        running.await.unwrap().unwrap();
    });
}

/// A peer reading at 1 KB/s and a peer writing a byte at a time do not
/// stall 50 ping-pong peers: every round trip completes, and the 99th
/// percentile stays within a bound generous enough for a noisy machine.
#[test]
fn slow_peers_do_not_stall_fast_ones() {
    let _serial = serial();
    let server = ServerProc::start(&["-l", "127.0.0.1:0"]);
    let addr = server.addr();
    let stop = Arc::new(AtomicBool::new(false));
    // The slow reader: 8 MB sent, read back 100 bytes every 100 ms.
    let slow_reader = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            let mut c = TcpStream::connect(addr).unwrap();
            let mut w = c.try_clone().unwrap();
            w.set_write_timeout(Some(Duration::from_millis(100)))
                .unwrap();
            let writer = {
                let stop = stop.clone();
                std::thread::spawn(move || {
                    let chunk = pattern(3, 64 * 1024);
                    let mut sent = 0;
                    while sent < 8_000_000 && !stop.load(Ordering::Relaxed) {
                        match w.write(&chunk) {
                            Ok(n) => sent += n,
                            Err(e)
                                if matches!(
                                    e.kind(),
                                    ErrorKind::WouldBlock | ErrorKind::TimedOut
                                ) => {}
                            Err(e) => panic!("slow reader's writes: {e}"),
                        }
                    }
                })
            };
            c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
            let mut got = 0;
            let mut sip = [0u8; 100];
            while !stop.load(Ordering::Relaxed) {
                c.read_exact(&mut sip).expect("slow reader's echo");
                got += sip.len();
                std::thread::sleep(Duration::from_millis(100));
            }
            writer.join().unwrap();
            got
        })
    };
    // The slow writer: a byte every 50 ms, each echoed.
    let slow_writer = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            let mut c = TcpStream::connect(addr).unwrap();
            let mut n = 0;
            while !stop.load(Ordering::Relaxed) {
                ping(&mut c, b"s", Duration::from_secs(10)).expect("slow writer's echo");
                n += 1;
                std::thread::sleep(Duration::from_millis(50));
            }
            n
        })
    };
    std::thread::sleep(Duration::from_millis(300));
    const FAST: usize = 50;
    const ROUNDS: usize = 100;
    let start = Arc::new(Barrier::new(FAST));
    let fast: Vec<_> = (0..FAST)
        .map(|i| {
            let start = start.clone();
            std::thread::spawn(move || {
                let msg = pattern(i as u64, 512);
                let mut c = TcpStream::connect(addr).unwrap();
                c.set_nodelay(true).unwrap();
                start.wait();
                let mut rtts = Vec::with_capacity(ROUNDS);
                for _ in 0..ROUNDS {
                    let t0 = Instant::now();
                    ping(&mut c, &msg, Duration::from_secs(10)).expect("ping-pong");
                    rtts.push(t0.elapsed());
                }
                rtts
            })
        })
        .collect();
    let mut rtts: Vec<Duration> = fast
        .into_iter()
        .flat_map(|t| t.join().expect("a ping-pong peer failed"))
        .collect();
    stop.store(true, Ordering::Relaxed);
    let read_slowly = slow_reader.join().expect("slow reader");
    let wrote_slowly = slow_writer.join().expect("slow writer");
    rtts.sort();
    assert_eq!(rtts.len(), FAST * ROUNDS);
    let p50 = rtts[rtts.len() / 2];
    let p99 = rtts[rtts.len() * 99 / 100];
    let max = rtts[rtts.len() - 1];
    eprintln!(
        "ping-pong p50 {p50:?} p99 {p99:?} max {max:?}; slow reader read {read_slowly} B, slow writer {wrote_slowly} echoes"
    );
    assert!(
        p99 < Duration::from_millis(500),
        "p99 {p99:?} with slow peers"
    );
    assert!(read_slowly > 0 && wrote_slowly > 0);
}

/// A peer streaming as fast as it can shares a single worker thread with
/// 20 ping-pong peers: the echo loop must yield now and then, or the
/// streamer owns the thread and the others wait until it is done.
///
/// To make that wait certain rather than a matter of scheduling, the
/// server reads 128 bytes at a time (the seed's size) and the streamer's
/// socket has megabytes of buffer both ways: the server then never finds
/// the socket dry nor the echo refused, whatever the client's threads do,
/// for seconds on end.
#[test]
fn a_bulk_streamer_does_not_starve_the_others() {
    let _serial = serial();
    let server = ServerProc::start(&["-l", "127.0.0.1:0", "--threads", "1", "--read-size", "128"]);
    let addr = server.addr();
    const STREAM: usize = 16 << 20;
    let streaming = Arc::new(AtomicBool::new(true));
    let streamer = {
        let streaming = streaming.clone();
        std::thread::spawn(move || {
            let socket =
                socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
            socket.set_send_buffer_size(4 << 20).unwrap();
            socket.set_recv_buffer_size(4 << 20).unwrap();
            socket.connect(&addr.into()).unwrap();
            let mut w: TcpStream = socket.into();
            let mut r = w.try_clone().unwrap();
            let reader = std::thread::spawn(move || {
                let mut buf = vec![0u8; 1 << 20];
                let mut got = 0usize;
                while let Ok(n @ 1..) = r.read(&mut buf) {
                    got += n;
                }
                got
            });
            let t0 = Instant::now();
            w.write_all(&vec![0xab; STREAM]).expect("streamer's writes");
            w.shutdown(Shutdown::Write).unwrap();
            let got = reader.join().unwrap();
            streaming.store(false, Ordering::Relaxed);
            assert_eq!(got, STREAM, "streamer: short echo");
            t0.elapsed()
        })
    };
    std::thread::sleep(Duration::from_millis(100));
    const FAST: usize = 20;
    const ROUNDS: usize = 20;
    let fast: Vec<_> = (0..FAST)
        .map(|i| {
            let streaming = streaming.clone();
            std::thread::spawn(move || {
                let msg = pattern(i as u64, 100);
                let mut c = TcpStream::connect(addr).unwrap();
                let mut rtts = Vec::with_capacity(ROUNDS);
                for _ in 0..ROUNDS {
                    let t0 = Instant::now();
                    ping(&mut c, &msg, Duration::from_secs(30)).expect("ping-pong");
                    rtts.push(t0.elapsed());
                }
                (rtts, streaming.load(Ordering::Relaxed))
            })
        })
        .collect();
    let mut rtts = Vec::new();
    let mut done_while_streaming = 0;
    for t in fast {
        let (r, still_streaming) = t.join().expect("a ping-pong peer failed");
        rtts.extend(r);
        done_while_streaming += usize::from(still_streaming);
    }
    let streamed_in = streamer.join().expect("streamer");
    rtts.sort();
    let p99 = rtts[rtts.len() * 99 / 100];
    let max = rtts[rtts.len() - 1];
    eprintln!(
        "beside a 16 MB stream ({streamed_in:?}): ping-pong p50 {:?} p99 {p99:?} max {max:?}; {done_while_streaming} of {FAST} done while it streamed",
        rtts[rtts.len() / 2]
    );
    // Measured here with the machine loaded by other builds: p99 5 to 30
    // ms. When the loop did not yield, every ping-pong peer waited behind
    // the streamer, 170 to 770 ms at a time (until a short read let it
    // go). The bound sits between, five times above the first.
    assert!(
        p99 < Duration::from_millis(150),
        "p99 {p99:?} beside a streamer"
    );
}
