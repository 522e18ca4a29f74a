//! Flags as a careless or hurried user gives them: absurd values are one
//! line and exit 2 (never a panic, an abort or a huge allocation), zero
//! means off, durations add up, messages say what is really wrong, the
//! `-c` of one binary given to the other is explained, TLS flags for a
//! plain address are refused, and under `--log-format json` every line
//! on standard error is JSON, fatal errors included.

use std::net::TcpListener;
use std::process::Command;
use std::time::Duration;

use crate::support::*;

const BENCH: &str = env!("CARGO_BIN_EXE_echo-bench");

fn one_line_and_status(bin: &str, args: &[&str], code: i32, needle: &str) {
    let out = run(Command::new(bin).args(args), b"", Duration::from_secs(30));
    assert_eq!(
        out.status.code(),
        Some(code),
        "{bin} {args:?}: {}",
        out.stderr
    );
    assert!(!out.stderr.contains("panicked"), "{args:?}: {}", out.stderr);
    let first = out.stderr.lines().next().unwrap_or_default();
    assert!(
        first.contains(needle),
        "{args:?}: want {needle:?} in {}",
        out.stderr
    );
}

#[test]
fn absurd_values_are_refused_in_one_line() {
    let cases: &[(&str, &[&str], &str)] = &[
        (
            SERVER,
            &["--max-connections", "2305843009213693952"],
            "at most 4294967295",
        ),
        (
            SERVER,
            &["--max-connections-per-ip", "18446744073709551615"],
            "at most",
        ),
        (
            SERVER,
            &["--max-connections", "99999999999999999999999"],
            "at most",
        ),
        (SERVER, &["--threads", "100000"], "at most 1024"),
        (
            SERVER,
            &["--threads", "18446744073709551615"],
            "at most 1024",
        ),
        (
            SERVER,
            &["--threads", "99999999999999999999999"],
            "at most 1024",
        ),
        (SERVER, &["--read-size", "1GiB"], "at most 4MiB"),
        (SERVER, &["--read-size", "4GiB"], "at most 4MiB"),
        (SERVER, &["--read-size", "64GiB"], "at most 4MiB"),
        (
            SERVER,
            &["--read-size", "18446744073709551615"],
            "at most 4MiB",
        ),
        (BENCH, &["--threads", "100000"], "at most 1024"),
        (BENCH, &["-c", "18446744073709551615"], "at most"),
        (BENCH, &["-c", "100000000"], "at most 1048576"),
        (CLIENT, &["--timeout", "0"], "more than 0"),
    ];
    for (bin, args, needle) in cases {
        one_line_and_status(bin, args, 2, needle);
    }
}

#[test]
fn the_bench_refuses_more_connections_than_it_may_open_files() {
    use std::os::unix::process::CommandExt;
    let mut cmd = Command::new(BENCH);
    cmd.args(["--connect", "127.0.0.1:9", "-c", "1000"]);
    // SAFETY: setrlimit is async-signal-safe and touches no parent memory.
    unsafe {
        cmd.pre_exec(|| {
            let lim = libc::rlimit {
                rlim_cur: 256,
                rlim_max: 256,
            };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &lim) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let out = run(&mut cmd, b"", Duration::from_secs(20));
    assert_eq!(out.status.code(), Some(2), "{}", out.stderr);
    assert!(out.stderr.contains("ulimit -n"), "{}", out.stderr);
}

#[test]
fn a_huge_message_size_costs_bounded_memory() {
    let server = ServerProc::start(&["-l", "127.0.0.1:0", "--threads", "1"]);
    let addr = server.addr().to_string();
    let (code, stderr, peak, _) = run_measured(
        Command::new(BENCH).args([
            "--connect",
            &addr,
            "-s",
            "8G",
            "-c",
            "4",
            "-d",
            "1s",
            "--warmup",
            "0s",
        ]),
        Duration::from_secs(30),
    );
    // No message of 8 GiB completes in a second: exit 1, not an abort.
    assert_eq!(code, Some(1), "{stderr}");
    assert!(stderr.contains("no message completed"), "{stderr}");
    assert!(peak < 100 * 1024, "peak RSS {peak} KiB");
}

#[test]
fn messages_say_what_is_wrong() {
    let cases: &[(&str, &[&str], &str)] = &[
        (SERVER, &["-l", "tcp:127.0.0.1:7000"], "followed by '//'"),
        (SERVER, &["-l", "unix://tmp/x.sock"], "absolute path"),
        (CLIENT, &["-c", "50"], "echo-client's -c is --connect"),
        (BENCH, &["-c", "127.0.0.1:7"], "--connect 127.0.0.1:7"),
        (
            CLIENT,
            &["-c", "127.0.0.1:1", "--tls-pin", &["AB"; 32].join(":")],
            "did you mean tls://127.0.0.1:1",
        ),
        (
            CLIENT,
            &["-c", "unix:/x", "-k"],
            "--insecure applies to tls://, wss:// and https:// addresses only",
        ),
        (
            BENCH,
            &["--connect", "127.0.0.1:1", "--tls-ca", "ca.pem"],
            "did you mean tls://",
        ),
        (SERVER, &["--idle-timeout", "1h30x"], "1h30m"),
    ];
    for (bin, args, needle) in cases {
        one_line_and_status(bin, args, 2, needle);
    }
}

#[test]
fn zero_means_off_and_durations_add_up() {
    // --idle-timeout 0: never idle, not closed at the first pause.
    let server = ServerProc::start(&[
        "-l",
        "127.0.0.1:0",
        "--idle-timeout",
        "0",
        "--max-connections",
        "0",
        "--max-connections-per-ip",
        "0",
    ]);
    let mut conn = std::net::TcpStream::connect(server.addr()).unwrap();
    ping(&mut conn, b"one", Duration::from_secs(5)).unwrap();
    std::thread::sleep(Duration::from_millis(300));
    ping(&mut conn, b"two", Duration::from_secs(5)).unwrap();
    assert_eq!(server.count_lines("idle for"), 0, "{:?}", server.lines());
    drop(server);
    // Compound durations.
    let server = ServerProc::start(&["-l", "127.0.0.1:0", "--idle-timeout", "1h30m"]);
    let mut conn = std::net::TcpStream::connect(server.addr()).unwrap();
    ping(&mut conn, b"x", Duration::from_secs(5)).unwrap();
}

/// Every line of `stderr` is one JSON object; the last one's level.
fn all_json(stderr: &str) -> String {
    assert!(!stderr.trim().is_empty(), "nothing on stderr");
    let mut level = String::new();
    for line in stderr.lines() {
        let v: serde_json::Value = serde_json::from_str(line)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {line:?} in\n{stderr}"));
        level = v["level"].as_str().unwrap_or_default().to_string();
    }
    level
}

#[test]
fn fatal_and_usage_errors_are_json_under_log_format_json() {
    let busy = TcpListener::bind("127.0.0.1:0").unwrap();
    let busy = busy.local_addr().unwrap().to_string();
    let refused = format!("127.0.0.1:{}", free_port());
    let json = ["--log-format", "json"];
    let cases: Vec<(&str, Vec<&str>, i32)> = vec![
        (SERVER, vec!["-l", &busy], 1),
        (CLIENT, vec!["-c", &refused], 1),
        (BENCH, vec!["--connect", &refused, "-d", "1s"], 1),
        (SERVER, vec!["--threads", "0"], 2),
        (CLIENT, vec!["--bogus"], 2),
        (BENCH, vec!["-c", "x"], 2),
        (CLIENT, vec!["--stdin", "hello"], 2),
        (SERVER, vec!["-l", "tls://127.0.0.1:0"], 2),
    ];
    for (bin, args, code) in cases {
        let out = run(
            Command::new(bin).args(json).args(&args),
            b"",
            Duration::from_secs(30),
        );
        assert_eq!(
            out.status.code(),
            Some(code),
            "{bin} {args:?}: {}",
            out.stderr
        );
        assert_eq!(all_json(&out.stderr), "error", "{bin} {args:?}");
    }
    // The bench's report stays on standard output; its error is JSON.
    let out = run(
        Command::new(BENCH).args(["-q", "--connect", &refused]),
        b"",
        Duration::from_secs(30),
    );
    assert_eq!(out.status.code(), Some(1), "{}", out.stderr);
    assert!(
        out.stderr.starts_with("echo-bench: error:"),
        "{}",
        out.stderr
    );
}

#[test]
fn an_invalid_rust_log_is_said() {
    let out = run(
        Command::new(CLIENT)
            .args(["-c", &format!("127.0.0.1:{}", free_port())])
            .env("RUST_LOG", "echoes=loud"),
        b"",
        Duration::from_secs(20),
    );
    let first = out.stderr.lines().next().unwrap_or_default();
    assert!(
        first.contains("RUST_LOG") && first.contains("not a valid filter"),
        "{}",
        out.stderr
    );
}

/// TLS failures say how to fix them: an X.509 version 1 certificate is
/// named as such (not "certificate and key do not go together", nor a
/// Rust Debug value), and an untrusted server names the ways to trust it.
#[test]
#[cfg_attr(
    not(has_openssl),
    ignore = "needs openssl: run .ci/install (Debian package openssl)"
)]
fn tls_messages_say_how_to_fix_it() {
    let dir = tempfile::tempdir().unwrap();
    let path = |name: &str| dir.path().join(name).to_str().unwrap().to_string();
    // openssl (in .ci/apt-packages.txt) makes a version 1 certificate when
    // signing a request without extensions.
    let openssl = |args: &[&str]| {
        let out = Command::new("openssl")
            .args(args)
            .current_dir(dir.path())
            .output();
        let out = out.expect("openssl is installed (.ci/apt-packages.txt)");
        assert!(
            out.status.success(),
            "openssl {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    openssl(&[
        "ecparam",
        "-name",
        "prime256v1",
        "-genkey",
        "-noout",
        "-out",
        "v1.key",
    ]);
    openssl(&[
        "req",
        "-new",
        "-key",
        "v1.key",
        "-subj",
        "/CN=localhost",
        "-out",
        "v1.csr",
    ]);
    openssl(&[
        "x509", "-req", "-in", "v1.csr", "-signkey", "v1.key", "-days", "2", "-out", "v1.pem",
    ]);
    let (cert, key) = (path("v1.pem"), path("v1.key"));
    let server = ServerProc::start(&["-l", "tls://127.0.0.1:0", "--tls-self-signed"]);
    let tls = format!("tls://127.0.0.1:{}", server.port);
    let cases: Vec<(&str, Vec<&str>, &str)> = vec![
        (
            SERVER,
            vec![
                "-l",
                "tls://127.0.0.1:0",
                "--tls-cert",
                &cert,
                "--tls-key",
                &key,
            ],
            "X.509 version 1",
        ),
        (
            CLIENT,
            vec!["-c", &tls, "-k", "--tls-cert", &cert, "--tls-key", &key],
            "X.509 version 1",
        ),
        (CLIENT, vec!["-c", &tls, "hi"], "--tls-pin"),
    ];
    for (bin, args, needle) in cases {
        let out = run(Command::new(bin).args(&args), b"", Duration::from_secs(20));
        assert_eq!(out.status.code(), Some(1), "{args:?}: {}", out.stderr);
        let last = out.stderr.lines().last().unwrap_or_default();
        assert!(last.contains(needle), "{args:?}: {}", out.stderr);
        assert!(
            !last.contains("do not go together") && !last.contains("Other("),
            "{last}"
        );
    }
}
