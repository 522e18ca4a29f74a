//! `echo-client` over TCP: `--stdin` byte exact, and servers that
//! misbehave: one that never reads and floods it back costs bounded memory
//! and fails at once, with what was really received; one that never
//! answers is bounded by `--timeout`, even when the input arrives after
//! the client started waiting; a wrong byte, a short echo and an extra
//! byte are each reported as such; a closed standard output ends it
//! quietly.

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener};
use std::os::fd::AsRawFd;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::support::*;

/// A server that never reads, on a socket with small buffers, and sends
/// `first` and then `b'x'` for ever (until the client goes away).
fn flooding_server(first: Vec<u8>) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    // Accepted sockets inherit the listener's buffer sizes.
    set_buffer(listener.as_raw_fd(), libc::SO_RCVBUF, 4096);
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        let Ok((mut conn, _)) = listener.accept() else {
            return;
        };
        set_buffer(conn.as_raw_fd(), libc::SO_SNDBUF, 4096);
        if conn.write_all(&first).is_err() {
            return;
        }
        let junk = vec![b'x'; 64 * 1024];
        while conn.write_all(&junk).is_ok() {}
    });
    addr
}

fn set_buffer(fd: i32, option: i32, bytes: libc::c_int) {
    // SAFETY: setsockopt reads one int from the pointer given.
    let rc = unsafe {
        libc::setsockopt(
            fd,
            libc::SOL_SOCKET,
            option,
            (&bytes as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    assert_eq!(rc, 0);
}

/// Twelve messages of 120 kB: far more than the socket buffers hold.
fn big_messages() -> Vec<String> {
    (0..12)
        .map(|i| char::from(b'a' + i as u8).to_string().repeat(120_000))
        .collect()
}

#[test]
fn a_flooding_server_costs_bounded_memory_and_fails_fast() {
    if !isolated("a_flooding_server_costs_bounded_memory_and_fails_fast") {
        return;
    }
    // Small send buffers for every socket of this network namespace, so
    // that the client cannot write all its messages before the server's
    // flood is read (loopback's default lets it queue megabytes).
    std::fs::write("/proc/sys/net/ipv4/tcp_wmem", "4096 16384 65536").unwrap();
    let messages = big_messages();
    // Wrong bytes from the start: a mismatch at byte 0, told at once.
    let addr = flooding_server(Vec::new());
    let (code, stderr, peak_kib, took) = run_measured(
        Command::new(CLIENT)
            .args(["-q", "-c", &addr.to_string(), "--timeout", "3s"])
            .args(&messages),
        Duration::from_secs(30),
    );
    assert_eq!(code, Some(1), "{stderr}");
    assert!(stderr.contains("echo mismatch at byte 0"), "{stderr}");
    assert!(!stderr.contains("received 0"), "{stderr}");
    assert!(took < Duration::from_secs(2), "took {took:?}: {stderr}");
    assert!(peak_kib < 64 * 1024, "peak RSS {peak_kib} KiB: {stderr}");

    // The right bytes, sent before the client could send them, and more:
    // extra, and the error counts what really came.
    let all: Vec<u8> = messages.concat().into_bytes();
    let addr = flooding_server(all);
    let (code, stderr, peak_kib, took) = run_measured(
        Command::new(CLIENT)
            .args(["-q", "-c", &addr.to_string(), "--timeout", "3s"])
            .args(&messages),
        Duration::from_secs(30),
    );
    assert_eq!(code, Some(1), "{stderr}");
    assert!(stderr.contains("echo mismatch at byte "), "{stderr}");
    let received: u64 = stderr
        .rsplit("received ")
        .next()
        .and_then(|r| r.trim().trim_end_matches(')').parse().ok())
        .unwrap_or_else(|| panic!("no count in {stderr}"));
    assert!(received > 0, "{stderr}");
    assert!(took < Duration::from_secs(2), "took {took:?}: {stderr}");
    assert!(peak_kib < 64 * 1024, "peak RSS {peak_kib} KiB: {stderr}");
}

/// A server that accepts and reads, but never answers.
fn silent_server() -> (TcpListener, SocketAddr) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let l = listener.try_clone().unwrap();
    std::thread::spawn(move || {
        while let Ok((mut conn, _)) = l.accept() {
            std::thread::spawn(move || {
                let mut buf = [0u8; 4096];
                while matches!(std::io::Read::read(&mut conn, &mut buf), Ok(n) if n > 0) {}
            });
        }
    });
    (listener, addr)
}

#[test]
fn stdin_waits_are_bounded_by_the_timeout() {
    let (_listener, addr) = silent_server();
    // The input comes after the client has started to wait, and standard
    // input stays open: the wait for its echo is still bounded.
    let started = Instant::now();
    let mut child = Command::new(CLIENT)
        .args(["--stdin", "--timeout", "1s", "-c", &addr.to_string()])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    std::thread::sleep(Duration::from_millis(300));
    stdin.write_all(b"hello\n").unwrap();
    let status = wait_child(&mut child, Duration::from_secs(20));
    let took = started.elapsed();
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut stderr).unwrap();
    drop(stdin);
    assert_eq!(status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("timed out after 1s waiting for the echo (sent 6 bytes, received 0)"),
        "{stderr}"
    );
    assert!(took < Duration::from_secs(5), "took {took:?}");

    // A server that does not even read: the wait for it to take more.
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    set_buffer(listener.as_raw_fd(), libc::SO_RCVBUF, 4096);
    let out = run(
        Command::new(CLIENT).args([
            "--stdin",
            "--timeout",
            "1s",
            "-c",
            &listener.local_addr().unwrap().to_string(),
        ]),
        &vec![0u8; 8 << 20],
        Duration::from_secs(20),
    );
    assert_eq!(out.status.code(), Some(1), "{}", out.stderr);
    assert!(out.stderr.contains("timed out after 1s"), "{}", out.stderr);
}

#[test]
fn a_closed_stdout_ends_the_client_quietly() {
    let server = ServerProc::start(&["-l", "127.0.0.1:0"]);
    // `head` takes one byte and goes: the client's status is the second.
    let script = format!(
        "head -c 8M /dev/zero | {CLIENT} --stdin -c {} | head -c 1 > /dev/null; \
         echo \"status ${{PIPESTATUS[1]}}\"",
        server.addr()
    );
    let out = run(
        Command::new("bash").args(["-c", &script]),
        b"",
        Duration::from_secs(60),
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(stdout.trim(), "status 0", "{}", out.stderr);
    assert!(!out.stderr.contains("Broken pipe"), "{}", out.stderr);
    assert_eq!(out.stderr, "", "quietly");
}

#[test]
fn stdin_mode_is_byte_exact_for_10_mb_of_binary() {
    let server = ServerProc::start(&["-l", "127.0.0.1:0"]);
    let data = pattern(42, 10 * 1000 * 1000);
    let out = run(
        Command::new(CLIENT).args(["-c", &server.addr().to_string(), "-"]),
        &data,
        Duration::from_secs(60),
    );
    assert!(out.status.success(), "{}", out.stderr);
    assert_eq!(out.stdout.len(), data.len());
    assert!(out.stdout == data, "stdout differs from stdin");
    // nc-like: no transcript without -v.
    assert!(!out.stderr.contains("sending"), "{}", out.stderr);
}

/// A fake server that echoes through `mangle` after reading everything.
fn fake_server(mangle: fn(Vec<u8>) -> Vec<u8>) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        if let Ok((mut conn, _)) = listener.accept() {
            let mut got = Vec::new();
            let _ = conn.read_to_end(&mut got);
            let _ = conn.write_all(&mangle(got));
            let _ = conn.shutdown(Shutdown::Write);
        }
    });
    port
}

#[test]
fn client_reports_the_first_wrong_byte() {
    let port = fake_server(|mut v| {
        v[25] ^= 1;
        v
    });
    let out = run(
        Command::new(CLIENT).args(["-c", &format!("127.0.0.1:{port}")]),
        b"",
        Duration::from_secs(20),
    );
    assert_eq!(out.status.code(), Some(1), "{}", out.stderr);
    assert!(
        out.stderr.contains("echo mismatch at byte 25"),
        "{}",
        out.stderr
    );
}

#[test]
fn client_reports_a_short_echo() {
    let port = fake_server(|mut v| {
        v.truncate(10);
        v
    });
    let out = run(
        Command::new(CLIENT).args(["-c", &format!("127.0.0.1:{port}")]),
        b"",
        Duration::from_secs(20),
    );
    assert_eq!(out.status.code(), Some(1), "{}", out.stderr);
    assert!(
        out.stderr
            .contains("short echo: sent 46 bytes, received 10"),
        "{}",
        out.stderr
    );
}

#[test]
fn client_reports_extra_bytes_as_a_mismatch_at_their_offset() {
    let port = fake_server(|mut v| {
        v.extend_from_slice(b"!");
        v
    });
    let out = run(
        Command::new(CLIENT).args(["-c", &format!("127.0.0.1:{port}"), "--stdin"]),
        b"abc",
        Duration::from_secs(20),
    );
    assert_eq!(out.status.code(), Some(1), "{}", out.stderr);
    assert!(
        out.stderr
            .contains("echo mismatch at byte 3: an extra byte past the 3 sent (received 4)"),
        "{}",
        out.stderr
    );
}

#[test]
fn client_times_out_on_a_server_that_never_answers() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let out = run(
        Command::new(CLIENT).args(["-c", &addr.to_string(), "--timeout", "300ms", "hello"]),
        b"",
        Duration::from_secs(20),
    );
    assert_eq!(out.status.code(), Some(1), "{}", out.stderr);
    assert!(out.stderr.contains("timed out"), "{}", out.stderr);
    drop(listener);
}
