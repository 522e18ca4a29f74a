//! The command lines as a user meets them: bad input gets one clear line
//! and the right exit status, never a panic; `--stdin` is byte exact; the
//! client reports a wrong or short echo; log levels and formats.

mod common;

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener};
use std::process::Command;
use std::time::Duration;

use common::*;

fn assert_one_clear_line(out: &Finished, needle: &str) {
    assert!(!out.stderr.contains("panicked"), "panic: {}", out.stderr);
    assert!(
        !out.stderr.contains("RUST_BACKTRACE"),
        "backtrace hint: {}",
        out.stderr
    );
    let first = out.stderr.lines().next().unwrap_or_default();
    assert!(
        first.contains(needle),
        "expected {needle:?} in the first line: {}",
        out.stderr
    );
}

#[test]
fn bad_input_table() {
    let busy = TcpListener::bind("127.0.0.1:0").unwrap();
    let busy_port = busy.local_addr().unwrap().port();
    let refused_port = free_port();
    let t = Duration::from_secs(20);
    // (binary, args, exit status, what the first line must say)
    let cases: Vec<(&str, Vec<String>, i32, &str)> = vec![
        (SERVER, vec!["--bogus".into()], 2, "unexpected argument"),
        (
            SERVER,
            vec!["-l".into(), "localhost".into()],
            2,
            "expected HOST:PORT",
        ),
        (SERVER, vec!["-l".into(), "::1:80".into()], 2, "brackets"),
        (
            SERVER,
            vec!["-l".into(), "host:99999".into()],
            2,
            "between 0 and 65535",
        ),
        (
            SERVER,
            vec!["-l".into(), "ftp://host:1".into()],
            2,
            "unknown scheme",
        ),
        (
            SERVER,
            vec!["--read-size".into(), "0".into()],
            2,
            "at least 1",
        ),
        (
            SERVER,
            vec!["--read-size".into(), "12q".into()],
            2,
            "invalid size",
        ),
        (
            SERVER,
            vec!["--idle-timeout".into(), "soon".into()],
            2,
            "invalid duration",
        ),
        (
            SERVER,
            vec!["--shutdown-timeout=-1s".into()],
            2,
            "invalid duration",
        ),
        (
            SERVER,
            vec!["--threads".into(), "0".into()],
            2,
            "at least 1",
        ),
        (
            SERVER,
            vec!["--max-connections".into(), "x".into()],
            2,
            "not a whole number",
        ),
        (
            SERVER,
            vec!["-l".into(), format!("127.0.0.1:{busy_port}")],
            1,
            "Address already in use",
        ),
        (
            SERVER,
            vec!["-l".into(), "no-such-host.invalid:1".into()],
            1,
            "cannot resolve no-such-host.invalid",
        ),
        (
            CLIENT,
            vec!["-c".into(), format!("127.0.0.1:{refused_port}")],
            1,
            "Connection refused",
        ),
        (
            CLIENT,
            vec!["-c".into(), "no-such-host.invalid:1".into()],
            1,
            "cannot resolve",
        ),
        (CLIENT, vec!["-c".into(), "[::1:1".into()], 2, "missing ']'"),
        (
            CLIENT,
            vec!["--timeout".into(), "1 fortnight".into()],
            2,
            "invalid duration",
        ),
        (
            CLIENT,
            vec!["--stdin".into(), "hello".into()],
            2,
            "cannot be combined",
        ),
    ];
    for (bin, args, code, needle) in cases {
        let mut out = run(Command::new(bin).args(&args), b"", t);
        // The client logs `connecting to` first; the error is the last line.
        if bin == CLIENT && code == 1 {
            out.stderr = out.stderr.lines().last().unwrap_or_default().to_string();
        }
        assert_eq!(
            out.status.code(),
            Some(code),
            "{bin} {args:?}: {}",
            out.stderr
        );
        assert_one_clear_line(&out, needle);
    }
    drop(busy);
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
fn client_reports_extra_bytes_as_extra() {
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
        out.stderr.contains("extra echo: sent 3 bytes, received 4"),
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

#[test]
fn quiet_json_and_rust_log() {
    let server = ServerProc::start(&["-l", "127.0.0.1:0", "--log-format", "json"]);
    let line = server.wait_for_line("starting up", Duration::from_secs(5));
    let v: serde_json::Value = serde_json::from_str(&line).expect("a JSON log line");
    assert_eq!(v["name"], "main");
    assert_eq!(v["level"], "info");
    assert_eq!(
        v["message"],
        format!("starting up on 127.0.0.1 port {}", server.port)
    );
    assert!(v["ts"].as_str().is_some_and(|t| t.ends_with('Z')));

    let addr = server.addr().to_string();
    let quiet = run(
        Command::new(CLIENT).args(["-q", "-c", &addr]),
        b"",
        Duration::from_secs(20),
    );
    assert!(quiet.status.success());
    assert_eq!(quiet.stderr, "", "-q shows warnings only");

    let debug = run(
        Command::new(CLIENT)
            .args(["-c", &addr, "--stdin"])
            .env("RUST_LOG", "debug"),
        b"xyz",
        Duration::from_secs(20),
    );
    assert!(debug.status.success());
    assert!(
        debug.stderr.contains("echo_client: sending b'xyz'"),
        "{}",
        debug.stderr
    );
}

#[test]
fn threads_flag_sets_the_shard_count() {
    for n in [1usize, 3] {
        let server = ServerProc::start(&["-l", "127.0.0.1:0", "--threads", &n.to_string()]);
        let names = || -> Vec<String> {
            std::fs::read_dir(format!("/proc/{}/task", server.pid()))
                .unwrap()
                .filter_map(|t| std::fs::read_to_string(t.ok()?.path().join("comm")).ok())
                .map(|c| c.trim().to_string())
                .collect()
        };
        let shards = || {
            names()
                .iter()
                .filter(|c| c.starts_with("echo-shard-"))
                .count()
        };
        // With one thread the main thread serves; no work-stealing workers ever.
        let want = if n == 1 { 0 } else { n };
        // The shards start once every socket is bound, after `starting up`.
        wait_until(Duration::from_secs(5), || shards() == want);
        let names = names();
        assert_eq!(shards(), want, "--threads {n}: {names:?}");
        assert!(!names.iter().any(|c| c == "tokio-rt-worker"), "{names:?}");
    }
}

/// `ECHOES_TEST_SERVER_ARGS` adds flags to every test's server, except
/// those the test passes itself.
#[test]
fn extra_server_args_yield_to_the_tests_own() {
    let args = ["-l", "127.0.0.1:0", "--threads", "1"];
    assert_eq!(
        extra_args(&args, "--engine uring --threads 4 -v"),
        ["--engine", "uring", "-v"]
    );
    assert_eq!(
        extra_args(&args, "--threads=2 --idle-timeout 5s"),
        ["--idle-timeout", "5s"]
    );
}
