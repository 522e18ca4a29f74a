//! The echo itself over real sockets: exactness under any chunking and
//! concurrency, half-close, backpressure with bounded memory, and the
//! read size.

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use crate::support::*;
use echoes::{Server, ServerConfig};

/// Starts an in-process server on a free port with `tweak` applied.
async fn start(
    tweak: impl FnOnce(&mut ServerConfig),
) -> (
    SocketAddr,
    echoes::ShutdownHandle,
    tokio::task::JoinHandle<Result<(), echoes::ServerError>>,
) {
    let mut config = ServerConfig::new("127.0.0.1:0".parse().unwrap());
    tweak(&mut config);
    let server = Server::bind(config).await.expect("bind");
    let addr = server.tcp_addrs()[0];
    let handle = server.shutdown_handle();
    (addr, handle, tokio::spawn(server.run()))
}

/// Sends `data` in random-sized writes while reading the echo on another
/// thread; returns what came back after half-closing.
fn exchange(addr: SocketAddr, data: &[u8], seed: u64) -> Vec<u8> {
    let mut conn = TcpStream::connect(addr).expect("connect");
    conn.set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let mut reader = conn.try_clone().unwrap();
    let expected = data.len();
    let reading = std::thread::spawn(move || {
        let mut got = Vec::with_capacity(expected);
        reader.read_to_end(&mut got).expect("read echo");
        got
    });
    let sizes = pattern(seed, 4096);
    let mut off = 0;
    let mut i = 0;
    while off < data.len() {
        // 1..=4096 bytes, skewed small, so writes split and merge every way.
        let n = (usize::from(sizes[i % sizes.len()]) * usize::from(sizes[(i + 1) % sizes.len()])
            / 16
            + 1)
        .min(data.len() - off);
        conn.write_all(&data[off..off + n]).expect("write");
        off += n;
        i += 2;
    }
    conn.shutdown(Shutdown::Write).unwrap();
    reading.join().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exact_under_random_chunking_and_concurrency() {
    let (addr, shutdown, running) = start(|_| {}).await;
    let results = tokio::task::spawn_blocking(move || {
        let threads: Vec<_> = (0..40u64)
            .map(|i| {
                std::thread::spawn(move || {
                    let len = [0usize, 1, 127, 128, 129, 65535, 65536, 65537, 300_000]
                        [i as usize % 9]
                        + (i as usize * 7919) % 5000;
                    let data = pattern(i, len);
                    (data.clone(), exchange(addr, &data, i))
                })
            })
            .collect();
        threads
            .into_iter()
            .map(|t| t.join().unwrap())
            .collect::<Vec<_>>()
    })
    .await
    .unwrap();
    for (i, (sent, got)) in results.iter().enumerate() {
        assert_eq!(got.len(), sent.len(), "connection {i}: length");
        assert!(got == sent, "connection {i}: bytes differ");
    }
    shutdown.shutdown();
    running.await.unwrap().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn seed_read_size_128_is_exact_too() {
    let (addr, shutdown, running) = start(|c| {
        c.read_size(128);
    })
    .await;
    let data = pattern(9, 200_000);
    let sent = data.clone();
    let got = tokio::task::spawn_blocking(move || exchange(addr, &data, 3))
        .await
        .unwrap();
    assert!(got == sent);
    shutdown.shutdown();
    running.await.unwrap().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn half_close_gets_everything_then_end_of_stream() {
    let (addr, shutdown, running) = start(|_| {}).await;
    tokio::task::spawn_blocking(move || {
        let mut conn = TcpStream::connect(addr).unwrap();
        conn.set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        conn.write_all(b"first ").unwrap();
        // The echo flows while our side is still open...
        let mut buf = [0u8; 6];
        conn.read_exact(&mut buf).unwrap();
        assert_eq!(&buf, b"first ");
        // ...and after we half-close, what is owed arrives, then EOF.
        conn.write_all(b"last").unwrap();
        conn.shutdown(Shutdown::Write).unwrap();
        let mut rest = Vec::new();
        conn.read_to_end(&mut rest).unwrap();
        assert_eq!(rest, b"last");
    })
    .await
    .unwrap();
    shutdown.shutdown();
    running.await.unwrap().unwrap();
}

#[test]
fn a_peer_that_never_reads_costs_bounded_memory() {
    let server = ServerProc::start(&["-l", "127.0.0.1:0", "--threads", "1"]);
    let before = server.rss_kib();
    // Several peers push data and never read: the server stops reading
    // from them once their echo is stuck, so kernel buffers fill and the
    // writes block. Each writer stops after 64 MiB or 3 s.
    let pushed: Vec<_> = (0..8)
        .map(|_| {
            let addr = server.addr();
            std::thread::spawn(move || {
                let mut conn = TcpStream::connect(addr).unwrap();
                conn.set_write_timeout(Some(Duration::from_millis(500)))
                    .unwrap();
                let chunk = vec![0x5a; 64 * 1024];
                let deadline = Instant::now() + Duration::from_secs(3);
                let mut total = 0usize;
                while total < 64 << 20 && Instant::now() < deadline {
                    match conn.write(&chunk) {
                        Ok(n) => total += n,
                        Err(_) => break, // blocked: backpressure reached us
                    }
                }
                (conn, total)
            })
        })
        .collect();
    let conns: Vec<(TcpStream, usize)> = pushed.into_iter().map(|t| t.join().unwrap()).collect();
    let growth = server.rss_kib().saturating_sub(before);
    for (_, total) in &conns {
        assert!(
            *total < 64 << 20,
            "a peer pushed 64 MiB without backpressure"
        );
    }
    // A few 64 KiB buffers per stuck peer at most, not what they sent.
    assert!(growth < 8 * 1024, "server grew by {growth} KiB");
    // And it still serves others promptly.
    let mut other = TcpStream::connect(server.addr()).unwrap();
    other
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    other.write_all(b"still here").unwrap();
    let mut buf = [0u8; 10];
    other.read_exact(&mut buf).unwrap();
    assert_eq!(&buf, b"still here");
    // The stuck peers' data was kept, not dropped: read one back in full.
    let (mut conn, total) = conns.into_iter().next().unwrap();
    conn.shutdown(Shutdown::Write).unwrap();
    conn.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut echoed = Vec::new();
    conn.read_to_end(&mut echoed).unwrap();
    assert_eq!(echoed.len(), total);
    assert!(echoed.iter().all(|&b| b == 0x5a));
}

/// Descriptors of `pid` above standard error that are pipes: the
/// zero-copy path's once used, and any the server inherited (cargo's
/// jobserver, say), so tests compare with a count taken at start-up.
fn pipes_of(pid: i32) -> usize {
    let Ok(dir) = std::fs::read_dir(format!("/proc/{pid}/fd")) else {
        return 0;
    };
    dir.filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_str().and_then(|n| n.parse::<u32>().ok()) > Some(2))
        .filter_map(|e| std::fs::read_link(e.path()).ok())
        .filter(|target| target.to_string_lossy().starts_with("pipe:"))
        .count()
}

#[test]
fn bulk_transfers_take_the_zero_copy_path_and_stay_exact() {
    let server = ServerProc::start(&["-l", "127.0.0.1:0", "--threads", "1", "--zero-copy"]);
    let inherited = pipes_of(server.pid());
    // Small messages are copied: no pipe yet.
    let mut small = TcpStream::connect(server.addr()).unwrap();
    small
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    for _ in 0..20 {
        small.write_all(&[7u8; 64]).unwrap();
        let mut back = [0u8; 64];
        small.read_exact(&mut back).unwrap();
    }
    assert_eq!(
        pipes_of(server.pid()),
        inherited,
        "a pipe for 64-byte messages"
    );
    // Large reads switch to splice(2) through the worker's pipe: still
    // byte for byte, under any chunking, for several peers at once.
    let addr = server.addr();
    let peers: Vec<_> = (0..4u64)
        .map(|i| {
            std::thread::spawn(move || {
                let data = pattern(100 + i, 3 << 20);
                exchange(addr, &data, i) == data
            })
        })
        .collect();
    for (i, p) in peers.into_iter().enumerate() {
        assert!(p.join().unwrap(), "peer {i}: echo differs");
    }
    assert_eq!(
        pipes_of(server.pid()),
        inherited + 2,
        "one pipe (two ends) for the worker"
    );
}

#[test]
fn a_slow_reader_of_a_bulk_stream_gets_every_byte() {
    // The socket refuses part of a spliced chunk: the rest must come out
    // of the pipe into the connection's buffer, and arrive in order.
    let server = ServerProc::start(&["-l", "127.0.0.1:0", "--threads", "1", "--zero-copy"]);
    let mut conn = TcpStream::connect(server.addr()).unwrap();
    conn.set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let data = pattern(5, 16 << 20);
    let sent = data.clone();
    let mut writer = conn.try_clone().unwrap();
    let writing = std::thread::spawn(move || {
        for piece in sent.chunks(256 * 1024) {
            writer.write_all(piece).unwrap();
        }
        writer.shutdown(Shutdown::Write).unwrap();
    });
    let mut got = Vec::with_capacity(data.len());
    let mut buf = vec![0u8; 4096];
    let mut reads = 0u32;
    loop {
        let n = conn.read(&mut buf).unwrap();
        if n == 0 {
            break;
        }
        got.extend_from_slice(&buf[..n]);
        reads += 1;
        // Slow at first, so the server's sends fill up and come back short.
        if reads < 200 {
            std::thread::sleep(Duration::from_millis(2));
        }
    }
    writing.join().unwrap();
    assert_eq!(got.len(), data.len());
    assert!(got == data, "the echo differs");
}

#[test]
fn zero_copy_reads_larger_than_the_pipe_do_not_stall() {
    // A read size past the pipe's 1 MiB: a splice then stops where the
    // pipe is full, with data left in the socket, and must not be taken for
    // a drained socket (which waited for data the peer would never send).
    let server = ServerProc::start(&[
        "-l",
        "127.0.0.1:0",
        "--threads",
        "1",
        "--zero-copy",
        "--read-size",
        "4MiB",
    ]);
    let mut conn = TcpStream::connect(server.addr()).unwrap();
    conn.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    for i in 0..3 {
        let data = pattern(40 + i, 3 << 20);
        let mut writer = conn.try_clone().unwrap();
        let sent = data.clone();
        let writing = std::thread::spawn(move || writer.write_all(&sent).unwrap());
        let mut back = vec![0u8; data.len()];
        conn.read_exact(&mut back)
            .unwrap_or_else(|e| panic!("message {i}: {e}"));
        writing.join().unwrap();
        assert!(back == data, "message {i}: the echo differs");
    }
}

#[test]
fn debug_logging_still_shows_bulk_data() {
    // With -v every chunk is logged, so it must pass through memory.
    let server = ServerProc::start(&["-l", "127.0.0.1:0", "--threads", "1", "-v", "--zero-copy"]);
    let inherited = pipes_of(server.pid());
    let data = vec![b'z'; 200_000];
    let out = run(
        std::process::Command::new(CLIENT).args(["-c", &server.addr().to_string(), "--stdin"]),
        &data,
        Duration::from_secs(30),
    );
    assert!(out.status.success() && out.stdout == data, "{}", out.stderr);
    server.wait_for_line(": closing", Duration::from_secs(10));
    let logged: usize = server
        .lines()
        .iter()
        .filter_map(|l| l.split_once(": received b'").map(|(_, d)| d.len() - 1))
        .sum();
    assert_eq!(logged, data.len(), "every byte received is in the log");
    assert_eq!(
        pipes_of(server.pid()),
        inherited,
        "no pipe while chunks are logged"
    );
}

#[test]
fn without_zero_copy_bulk_transfers_are_copied() {
    let server = ServerProc::start(&["-l", "127.0.0.1:0", "--threads", "1"]);
    let inherited = pipes_of(server.pid());
    let data = pattern(8, 2 << 20);
    assert!(exchange(server.addr(), &data, 1) == data);
    assert_eq!(
        pipes_of(server.pid()),
        inherited,
        "a pipe without --zero-copy"
    );
}

/// Sends all of `data` with `flags` (`MSG_OOB`: its last byte is urgent).
fn send_flags(conn: &TcpStream, data: &[u8], flags: libc::c_int) {
    use std::os::fd::AsRawFd;
    let mut off = 0;
    while off < data.len() {
        let rest = &data[off..];
        // SAFETY: send(2) reads `rest.len()` bytes from a live slice.
        let n = unsafe { libc::send(conn.as_raw_fd(), rest.as_ptr().cast(), rest.len(), flags) };
        assert!(n > 0, "send: {}", std::io::Error::last_os_error());
        off += n as usize;
    }
}

/// Reads exactly `want.len()` bytes and checks them: a wait past the
/// timeout means the server sat on bytes it had.
fn expect_echo(conn: &mut TcpStream, want: &[u8], what: &str) {
    conn.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut got = vec![0u8; want.len()];
    conn.read_exact(&mut got)
        .unwrap_or_else(|e| panic!("{what}: {e}"));
    assert!(got == want, "{what}: the echo differs");
}

/// TCP urgent data (`MSG_OOB`, telnet's Synch) is a byte of the stream
/// like any other: it comes back in order, and nothing waits behind it
/// (a read stops just before the urgent byte, with it still queued), with
/// and without `--zero-copy` (whose splice(2) stops there too).
#[test]
fn urgent_data_comes_back_in_line() {
    for extra in [None, Some("--zero-copy")] {
        let mut args = vec!["-l", "127.0.0.1:0", "--threads", "1"];
        args.extend(extra);
        let server = ServerProc::start(&args);
        let mut conn = TcpStream::connect(server.addr()).unwrap();
        conn.set_nodelay(true).unwrap();
        // Bytes, then an urgent byte after more: each echo awaited before
        // anything else is sent, as a telnet user would.
        conn.write_all(b"ab").unwrap();
        send_flags(&conn, b"xU", libc::MSG_OOB);
        expect_echo(&mut conn, b"abxU", "an urgent byte after normal ones");
        send_flags(&conn, b"\xff\xf2", libc::MSG_OOB);
        expect_echo(&mut conn, b"\xff\xf2", "telnet's Synch");
        send_flags(&conn, b"!", libc::MSG_OOB);
        expect_echo(&mut conn, b"!", "an urgent byte alone");
        // Behind a large read: with --zero-copy the next read is a
        // splice, which stops at the mark too ("try again", for ever).
        let bulk = pattern(11, 20 * 1024);
        conn.write_all(&bulk).unwrap();
        expect_echo(&mut conn, &bulk, "a large read");
        let mut marked = bulk.clone();
        marked.push(b'Z');
        send_flags(&conn, &marked, libc::MSG_OOB);
        expect_echo(&mut conn, &marked, "an urgent byte after a large read");
        // And at the end of a bulk stream: splice then says end of stream,
        // with the urgent byte still queued.
        conn.write_all(&bulk).unwrap();
        expect_echo(&mut conn, &bulk, "a large read");
        send_flags(&conn, &marked, libc::MSG_OOB);
        conn.shutdown(Shutdown::Write).unwrap();
        let mut rest = Vec::new();
        conn.read_to_end(&mut rest).unwrap();
        assert!(
            rest == marked,
            "{} bytes back, {} sent ({extra:?})",
            rest.len(),
            marked.len()
        );
        // Urgent bytes anywhere in a stream in both directions at once.
        let mut conn = TcpStream::connect(server.addr()).unwrap();
        let bulk = pattern(12, 256 * 1024);
        let mut want = bulk.clone();
        want.push(b'Z');
        want.extend_from_slice(&bulk);
        want.push(b'E');
        let mut reader = conn.try_clone().unwrap();
        let reading = std::thread::spawn(move || {
            expect_echo(&mut reader, &want, "urgent bytes in a bulk transfer");
            reader
        });
        conn.write_all(&bulk).unwrap();
        send_flags(&conn, b"Z", libc::MSG_OOB);
        conn.write_all(&bulk).unwrap();
        send_flags(&conn, b"E", libc::MSG_OOB);
        let mut reader = reading.join().unwrap();
        conn.shutdown(Shutdown::Write).unwrap();
        let mut rest = Vec::new();
        reader.read_to_end(&mut rest).unwrap();
        assert!(
            rest.is_empty(),
            "{} bytes more than sent ({extra:?})",
            rest.len()
        );
    }
}
