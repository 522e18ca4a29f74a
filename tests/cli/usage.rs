//! The command lines as a user meets them: bad input gets one clear line
//! and the right exit status, never a panic; log levels and formats; and
//! `ECHOES_TEST_SERVER_ARGS` giving way to a test's own flags. (The
//! client's `--stdin` and its reports of a wrong or short echo are in
//! tests/client/tcp.rs.)

use std::net::TcpListener;
use std::process::Command;
use std::time::Duration;

use crate::support::*;

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
        // Refused before anything is bound, naming the address.
        (
            SERVER,
            vec![
                "-l".into(),
                format!("127.0.0.1:{refused_port}"),
                "-l".into(),
                format!("127.0.0.1:{refused_port}"),
            ],
            2,
            "is given twice",
        ),
        (
            SERVER,
            vec![
                "-l".into(),
                format!("127.0.0.1:{refused_port}"),
                "-l".into(),
                format!("http://127.0.0.1:{refused_port}"),
            ],
            2,
            "is the same place as",
        ),
        (
            SERVER,
            vec!["-l".into(), "tcp:/x".into()],
            2,
            "tcp://HOST:PORT",
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
