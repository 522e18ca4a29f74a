//! The signals a service meets besides SIGINT and SIGTERM (tests/server/shutdown.rs):
//! SIGHUP is a graceful close, SIGQUIT a forced one, SIGUSR1 and SIGUSR2 are
//! logged and harmless, signals ignored at start-up (`nohup`) stay ignored,
//! and a closed log pipe (SIGPIPE) does not end the server.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::os::unix::net::UnixStream;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::Stdio;
use std::sync::{Arc, Barrier};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::support::*;

/// A stream socket a test client can split into a reader and a writer.
trait Conn: Read + Write + Send + Sized + 'static {
    fn split(&self) -> Self;
    fn close_write(&self);
}

impl Conn for TcpStream {
    fn split(&self) -> Self {
        self.try_clone().unwrap()
    }
    fn close_write(&self) {
        self.shutdown(Shutdown::Write).unwrap();
    }
}

impl Conn for UnixStream {
    fn split(&self) -> Self {
        self.try_clone().unwrap()
    }
    fn close_write(&self) {
        self.shutdown(Shutdown::Write).unwrap();
    }
}

/// Sends 1 MiB on `conn` in paced 64 KiB pieces, waiting on `started`
/// after the third, then half-closes; returns whether the whole echo came
/// back unchanged.
fn transfer<C: Conn>(mut conn: C, seed: u64, started: Arc<Barrier>) -> JoinHandle<bool> {
    std::thread::spawn(move || {
        let data = pattern(seed, 1 << 20);
        let mut reader = conn.split();
        let reading = std::thread::spawn(move || {
            let mut got = Vec::new();
            reader.read_to_end(&mut got).map(|_| got)
        });
        for (k, piece) in data.chunks(64 * 1024).enumerate() {
            conn.write_all(piece).unwrap();
            if k == 2 {
                started.wait();
            }
            std::thread::sleep(Duration::from_millis(30));
        }
        conn.close_write();
        let got = reading.join().unwrap().expect("read the echo");
        got == data
    })
}

/// A server on TCP and on a Unix socket at `sock`, with `timeout` as its
/// shutdown timeout and SIGHUP, SIGINT and SIGQUIT at their defaults
/// whatever this test process inherited.
fn tcp_and_unix(sock: &Path, timeout: &str) -> ServerProc {
    let unix = format!("unix:{}", sock.display());
    let mut cmd = server_command(&[
        "-l",
        "127.0.0.1:0",
        "-l",
        &unix,
        "--shutdown-timeout",
        timeout,
    ]);
    let server = ServerProc::start_until(&mut cmd, "starting up on 127.0.0.1 port");
    server.wait_for_line("starting up on unix:", Duration::from_secs(5));
    server
}

/// SIGHUP (a closed terminal, a conventional "reload") mid-transfer: the
/// transfers over TCP and the Unix socket complete byte for byte, the
/// server logs `main: closing server`, removes its socket file and exits 0.
#[test]
fn sighup_lets_transfers_finish_then_exits_0() {
    let dir = tempfile::tempdir().unwrap();
    let sock = dir.path().join("hup.sock");
    let mut server = tcp_and_unix(&sock, "30s");
    let started = Arc::new(Barrier::new(3));
    let tcp = transfer(
        TcpStream::connect(server.addr()).unwrap(),
        1,
        started.clone(),
    );
    let unix = transfer(UnixStream::connect(&sock).unwrap(), 2, started.clone());
    started.wait();
    server.signal(libc::SIGHUP);
    server.wait_for_line("main: closing server", Duration::from_secs(5));
    assert!(tcp.join().unwrap(), "the TCP echo is incomplete or changed");
    assert!(
        unix.join().unwrap(),
        "the Unix echo is incomplete or changed"
    );
    let status = server.wait_exit(Duration::from_secs(30));
    assert_eq!(status.code(), Some(0), "{status:?}");
    assert!(!sock.exists(), "socket file left behind");
    assert_eq!(server.count_lines("main: closing server"), 1);
}

/// A second SIGHUP, like a second SIGTERM, closes what is still open at once.
#[test]
fn a_second_sighup_ends_it_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let sock = dir.path().join("hup2.sock");
    let mut server = tcp_and_unix(&sock, "60s");
    let _idle = UnixStream::connect(&sock).unwrap();
    server.wait_for_line("connection accepted", Duration::from_secs(5));
    server.signal(libc::SIGHUP);
    server.wait_for_line("main: closing server", Duration::from_secs(5));
    let t0 = Instant::now();
    server.signal(libc::SIGHUP);
    let status = server.wait_exit(Duration::from_secs(10));
    assert_eq!(status.code(), Some(0), "{status:?}");
    assert!(t0.elapsed() < Duration::from_secs(5));
    assert!(!sock.exists(), "socket file left behind");
}

/// SIGQUIT (Ctrl-\) is "quit now": no drain, whatever the shutdown
/// timeout, but still a clean exit 0 with the socket file removed (its
/// default action would dump core and leave the file).
#[test]
fn sigquit_closes_everything_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let sock = dir.path().join("quit.sock");
    let mut server = tcp_and_unix(&sock, "60s");
    let mut idle = TcpStream::connect(server.addr()).unwrap();
    server.wait_for_line("connection accepted", Duration::from_secs(5));
    let t0 = Instant::now();
    server.signal(libc::SIGQUIT);
    let status = server.wait_exit(Duration::from_secs(10));
    assert_eq!(status.code(), Some(0), "{status:?}");
    assert!(t0.elapsed() < Duration::from_secs(5));
    assert!(!sock.exists(), "socket file left behind");
    server.wait_for_line("main: closing server", Duration::from_secs(5));
    server.wait_for_line("closing 1 connection(s) still open", Duration::from_secs(5));
    idle.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    assert!(matches!(idle.read(&mut [0u8; 1]), Ok(0) | Err(_)));
}

/// SIGUSR1 and SIGUSR2, whose default action ends a process, are logged
/// and change nothing: the server goes on echoing, and stops only when
/// asked to.
#[test]
fn sigusr1_and_sigusr2_are_logged_and_harmless() {
    let mut server = ServerProc::start(&["-l", "127.0.0.1:0"]);
    let mut conn = TcpStream::connect(server.addr()).unwrap();
    for (sig, name) in [(libc::SIGUSR1, "SIGUSR1"), (libc::SIGUSR2, "SIGUSR2")] {
        server.signal(sig);
        server.wait_for_line(&format!("main: {name} ignored"), Duration::from_secs(5));
    }
    ping(&mut conn, b"still here", Duration::from_secs(5)).unwrap();
    assert!(server.child.try_wait().unwrap().is_none());
    assert_eq!(server.count_lines("closing server"), 0);
    drop(conn);
    server.signal(libc::SIGTERM);
    assert_eq!(server.wait_exit(Duration::from_secs(10)).code(), Some(0));
}

/// Whether `signo` is in the ignored set (`SigIgn`) of process `pid`.
fn ignores(pid: i32, signo: i32) -> bool {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let mask = status
        .lines()
        .find_map(|l| l.strip_prefix("SigIgn:"))
        .map(|hex| u64::from_str_radix(hex.trim(), 16).unwrap())
        .unwrap();
    mask & (1 << (signo - 1)) != 0
}

/// `nohup echo-server`: a SIGHUP the server was started with ignored stays
/// ignored (the kernel discards it), so closing the terminal does not stop
/// it; SIGTERM still does.
#[test]
fn a_sighup_ignored_at_start_stays_ignored() {
    let mut cmd = server_command(&["-l", "127.0.0.1:0"]);
    // SAFETY: signal(2) is async-signal-safe; nothing else runs between
    // fork and exec.
    unsafe {
        cmd.pre_exec(|| {
            libc::signal(libc::SIGHUP, libc::SIG_IGN);
            Ok(())
        });
    }
    let mut server = ServerProc::start_cmd(&mut cmd);
    assert!(ignores(server.pid(), libc::SIGHUP), "SIGHUP handled");
    assert!(!ignores(server.pid(), libc::SIGTERM));
    server.signal(libc::SIGHUP);
    let mut conn = TcpStream::connect(server.addr()).unwrap();
    ping(&mut conn, b"after SIGHUP", Duration::from_secs(5)).unwrap();
    assert!(server.child.try_wait().unwrap().is_none());
    drop(conn);
    server.signal(libc::SIGTERM);
    assert_eq!(server.wait_exit(Duration::from_secs(10)).code(), Some(0));
    assert_eq!(server.count_lines("main: closing server"), 1);
}

/// A script that starts the server in the background leaves SIGINT (and
/// SIGQUIT) ignored: `kill -INT` does nothing, so the server says so at
/// start-up, as a warning naming the signals that work.
#[test]
fn a_sigint_ignored_at_start_is_a_warning_naming_what_works() {
    let mut cmd = server_command(&["-l", "127.0.0.1:0"]);
    // SAFETY: signal(2) is async-signal-safe; nothing else runs between
    // fork and exec.
    unsafe {
        cmd.pre_exec(|| {
            libc::signal(libc::SIGINT, libc::SIG_IGN);
            Ok(())
        });
    }
    let mut server = ServerProc::start_cmd(&mut cmd);
    let line = server.wait_for_line("SIGINT was ignored", Duration::from_secs(5));
    assert!(
        line.ends_with("it stays ignored; SIGTERM or SIGHUP or SIGQUIT stops the server"),
        "{line}"
    );
    assert!(ignores(server.pid(), libc::SIGINT), "SIGINT handled");
    server.signal(libc::SIGTERM);
    assert_eq!(server.wait_exit(Duration::from_secs(10)).code(), Some(0));
}

/// Whoever reads the log goes away (`echo-server -v | head -1`): writing a
/// log line then fails with EPIPE instead of raising a fatal SIGPIPE, and
/// the server goes on echoing, logging every chunk into the closed pipe.
#[test]
fn a_closed_log_pipe_does_not_end_it() {
    let mut child = server_command(&["-l", "127.0.0.1:0", "-v"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut log = BufReader::new(child.stderr.take().unwrap());
    let mut line = String::new();
    while !line.contains("starting up on") {
        line.clear();
        assert!(log.read_line(&mut line).unwrap() > 0, "no starting up line");
    }
    let port: u16 = line.trim_end().rsplit(' ').next().unwrap().parse().unwrap();
    drop(log);
    let mut conn = TcpStream::connect(("127.0.0.1", port)).unwrap();
    for i in 0..20u64 {
        ping(&mut conn, &pattern(i, 1000), Duration::from_secs(5)).unwrap();
    }
    drop(conn);
    let mut again = TcpStream::connect(("127.0.0.1", port)).unwrap();
    ping(&mut again, b"still serving", Duration::from_secs(5)).unwrap();
    assert!(child.try_wait().unwrap().is_none(), "the server ended");
    drop(again);
    // SAFETY: kill(2) on our own child has no memory effects.
    assert_eq!(unsafe { libc::kill(child.id() as i32, libc::SIGTERM) }, 0);
    assert_eq!(
        wait_child(&mut child, Duration::from_secs(10)).code(),
        Some(0)
    );
}
