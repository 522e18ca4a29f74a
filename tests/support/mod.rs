//! What the integration tests share. Every test binary includes this
//! module (`#[path = "../support/mod.rs"] mod support;` in a
//! `tests/*/main.rs`), so a helper written once here serves them all:
//!
//! - here: run the real binaries (every server through
//!   [`server_command`], which adds `ECHOES_TEST_SERVER_ARGS`), find the
//!   port a server picked, send signals, read /proc, and wait with bounds;
//! - [`http`]: an `http://` listener, curl and raw HTTP/1.1;
//! - [`bench`]: `echo-bench` with a bound on its time, its JSON report,
//!   and an in-process `echoes::Server`;
//! - [`ws`]: a WebSocket server that misbehaves on purpose, and a
//!   throwaway CA;
//! - [`proxies`]: HAProxy and nginx on a config of the test's, stopped by PID;
//! - [`props`]: the properties the parsers must have, shared with the
//!   libFuzzer targets in `fuzz/`.
//!
//! Where a new test goes is in tests/README.md.
#![allow(dead_code)]

pub mod bench;
pub mod http;
pub mod props;
pub mod proxies;
pub mod ws;

use std::io::{BufRead, BufReader, Read};
use std::net::{SocketAddr, TcpStream};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Connects to `to` from the loopback address `from` (any of 127.0.0.0/8
/// works on Linux), so one test can be several client hosts.
///
/// A server that refuses a connection (a limit) accepts and resets it, and
/// the reset may land before `connect` returns: it then fails with
/// `ConnectionReset`, which is that refusal, not a failure to connect.
pub fn connect_from(from: [u8; 4], to: SocketAddr) -> std::io::Result<TcpStream> {
    let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None)?;
    socket.bind(&SocketAddr::from((from, 0)).into())?;
    socket.connect(&to.into())?;
    Ok(socket.into())
}

pub const SERVER: &str = env!("CARGO_BIN_EXE_echo-server");
pub const CLIENT: &str = env!("CARGO_BIN_EXE_echo-client");

/// An `echo-server` child process whose standard error is collected.
pub struct ServerProc {
    pub child: Child,
    pub port: u16,
    lines: Arc<Mutex<Vec<String>>>,
}

impl ServerProc {
    /// Starts `echo-server` with `args` (plus any from
    /// `ECHOES_TEST_SERVER_ARGS`) and waits for its first
    /// `starting up on HOST port PORT` line.
    pub fn start(args: &[&str]) -> ServerProc {
        Self::start_cmd(&mut server_command(args))
    }

    /// As [`start`](Self::start), with the server's descriptor limit
    /// (`RLIMIT_NOFILE`, soft and hard) set to `nofile`, as
    /// `prlimit --nofile=N` would.
    pub fn start_with_nofile(nofile: u64, args: &[&str]) -> ServerProc {
        use std::os::unix::process::CommandExt;
        let mut cmd = server_command(args);
        // SAFETY: setrlimit is async-signal-safe and touches no memory of
        // the parent; nothing else runs between fork and exec.
        unsafe {
            cmd.pre_exec(move || {
                let lim = libc::rlimit {
                    rlim_cur: nofile,
                    rlim_max: nofile,
                };
                if libc::setrlimit(libc::RLIMIT_NOFILE, &lim) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        Self::start_cmd(&mut cmd)
    }

    pub fn start_cmd(cmd: &mut Command) -> ServerProc {
        let (mut server, line) = Self::spawn_until(cmd, "spawn echo-server", "starting up on");
        // Text or JSON: the digits after the last "port ".
        server.port = port_in(&line).unwrap_or_else(|| panic!("no port in {line:?}"));
        server
    }

    /// Spawns `cmd` (`expect` is the panic message if it cannot be),
    /// collects its standard error line by line, and waits for a line
    /// containing `needle`; returns the server, `port` still 0, and that
    /// line.
    fn spawn_until(cmd: &mut Command, expect: &str, needle: &str) -> (ServerProc, String) {
        let mut child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect(expect);
        let stderr = child.stderr.take().expect("piped stderr");
        let lines = Arc::new(Mutex::new(Vec::new()));
        let sink = lines.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                sink.lock().unwrap().push(line);
            }
        });
        let server = ServerProc {
            child,
            port: 0,
            lines,
        };
        let line = server.wait_for_line(needle, Duration::from_secs(10));
        (server, line)
    }

    pub fn pid(&self) -> i32 {
        self.child.id() as i32
    }

    pub fn addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.port))
    }

    /// Every line logged so far.
    pub fn lines(&self) -> Vec<String> {
        self.lines.lock().unwrap().clone()
    }

    /// Waits until a line containing `needle` is logged, and returns it.
    pub fn wait_for_line(&self, needle: &str, timeout: Duration) -> String {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(l) = self.lines().into_iter().find(|l| l.contains(needle)) {
                return l;
            }
            assert!(
                Instant::now() < deadline,
                "no line with {needle:?} within {timeout:?}; log so far:\n{}",
                self.lines().join("\n")
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Waits until a logged line satisfies `pred`, and returns it.
    pub fn wait_for_line_where(&self, timeout: Duration, pred: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(l) = self.lines().into_iter().find(|l| pred(l)) {
                return l;
            }
            assert!(
                Instant::now() < deadline,
                "no such line within {timeout:?}; log so far:\n{}",
                self.lines().join("\n")
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    pub fn signal(&self, sig: i32) {
        // SAFETY: kill(2) on our own child's pid has no memory effects.
        let rc = unsafe { libc::kill(self.pid(), sig) };
        assert_eq!(rc, 0, "kill failed");
    }

    /// Waits for the process to exit, killing it if it outlives `timeout`.
    pub fn wait_exit(&mut self, timeout: Duration) -> ExitStatus {
        wait_child(&mut self.child, timeout)
    }

    /// Resident memory of the server, in KiB, from /proc.
    pub fn rss_kib(&self) -> u64 {
        rss_kib(self.pid())
    }

    /// Open file descriptors of the server, from /proc.
    pub fn fd_count(&self) -> usize {
        fd_count(self.pid())
    }

    /// CPU time the server has used so far (user + system), from /proc.
    pub fn cpu_time(&self) -> Duration {
        cpu_time(self.pid())
    }

    /// How many logged lines contain `needle`.
    pub fn count_lines(&self, needle: &str) -> usize {
        self.lines().iter().filter(|l| l.contains(needle)).count()
    }
}

/// The port a log line names: the digits after its last `port `.
fn port_in(line: &str) -> Option<u16> {
    line.rsplit_once("port ").and_then(|(_, rest)| {
        rest.chars()
            .take_while(char::is_ascii_digit)
            .collect::<String>()
            .parse()
            .ok()
    })
}

/// Starts `cmd` with SIGHUP, SIGINT and SIGQUIT at their default action,
/// whatever the test runner inherited (`nohup cargo test`, a background
/// job): a server started with them ignored says so on its first line,
/// and tests send them. A test that wants one ignored sets it after this.
pub fn default_signals(cmd: &mut Command) {
    use std::os::unix::process::CommandExt;
    // SAFETY: signal(2) is async-signal-safe; nothing else runs between
    // fork and exec.
    unsafe {
        cmd.pre_exec(|| {
            for signo in [libc::SIGHUP, libc::SIGINT, libc::SIGQUIT] {
                libc::signal(signo, libc::SIG_DFL);
            }
            Ok(())
        });
    }
}

/// The `echo-server` command with `args`, then the extra arguments in
/// `ECHOES_TEST_SERVER_ARGS` (split on whitespace), so that every test can
/// be run against another engine or configuration, e.g.
/// `ECHOES_TEST_SERVER_ARGS="--engine uring" cargo test`. A flag the test
/// passes itself wins: the extra one (and its value) is left out, since
/// the test needs it (`--threads 1` to share one thread, say).
///
/// SIGHUP, SIGINT and SIGQUIT start at their default action, whatever the
/// test runner inherited (`nohup cargo test`, a background job): the
/// server leaves those ignored at start-up alone, and tests send them.
pub fn server_command(args: &[&str]) -> Command {
    let mut cmd = Command::new(SERVER);
    cmd.args(args);
    default_signals(&mut cmd);
    if let Ok(extra) = std::env::var("ECHOES_TEST_SERVER_ARGS") {
        cmd.args(extra_args(args, &extra));
    }
    cmd
}

/// The words of `extra` whose flags `args` does not already give; a word
/// that does not start with `-` is the value of the flag before it.
pub fn extra_args(args: &[&str], extra: &str) -> Vec<String> {
    let mut kept = Vec::new();
    let mut skipping = false;
    for word in extra.split_whitespace() {
        if word.starts_with('-') {
            let flag = word.split('=').next().unwrap_or(word);
            skipping = args.iter().any(|a| a.split('=').next() == Some(flag));
        }
        if !skipping {
            kept.push(word.to_string());
        }
    }
    kept
}

/// Open file descriptors of process `pid`.
pub fn fd_count(pid: i32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .expect("read /proc/PID/fd")
        .count()
}

/// utime + stime of process `pid` (all its threads), from /proc/PID/stat.
pub fn cpu_time(pid: i32) -> Duration {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("read stat");
    // The command name may hold spaces; the fields after it do not.
    let rest = &stat[stat.rfind(')').expect("comm in stat") + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // Fields 14 and 15 of stat(5); `rest` starts at field 3.
    let ticks: u64 = fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap();
    // SAFETY: sysconf has no memory effects.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as u64;
    Duration::from_millis(ticks * 1000 / hz)
}

/// Polls `cond` every 10 ms until it holds or `timeout` passes; returns
/// whether it held.
pub fn wait_until(timeout: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if cond() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

impl Drop for ServerProc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn wait_child(child: &mut Child, timeout: Duration) -> ExitStatus {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(status) = child.try_wait().expect("try_wait") {
            return status;
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("process did not exit within {timeout:?}");
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

pub fn rss_kib(pid: i32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("read status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .expect("VmRSS in /proc status")
}

/// Output of a finished command, with a bound on how long it may run.
pub struct Finished {
    pub status: ExitStatus,
    pub stdout: Vec<u8>,
    pub stderr: String,
}

pub fn run(cmd: &mut Command, stdin: &[u8], timeout: Duration) -> Finished {
    default_signals(cmd);
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    let mut input = child.stdin.take().expect("stdin");
    let data = stdin.to_vec();
    let writer = std::thread::spawn(move || {
        use std::io::Write;
        let _ = input.write_all(&data);
    });
    let mut out = child.stdout.take().expect("stdout");
    let mut err = child.stderr.take().expect("stderr");
    let reader = std::thread::spawn(move || {
        let mut v = Vec::new();
        let _ = out.read_to_end(&mut v);
        v
    });
    let err_reader = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = err.read_to_string(&mut s);
        s
    });
    let status = wait_child(&mut child, timeout);
    let _ = writer.join();
    Finished {
        status,
        stdout: reader.join().unwrap(),
        stderr: err_reader.join().unwrap(),
    }
}

/// `roff` (a `--generate man` page) as `man -l` renders it, 80 columns
/// wide. A page man cannot render fails the test, and so does a missing
/// man: CI installs it (.ci/apt-packages.txt).
pub fn render_man(roff: &[u8], name: &str) -> String {
    let dir = tempfile::tempdir().unwrap();
    let page = dir.path().join(format!("{name}.1"));
    std::fs::write(&page, roff).unwrap();
    match Command::new("man")
        .arg("-l")
        .arg(&page)
        .env("MANPAGER", "cat")
        .env("MANWIDTH", "80")
        .output()
    {
        Ok(rendered) if rendered.status.success() => {
            String::from_utf8_lossy(&rendered.stdout).into_owned()
        }
        Ok(rendered) => panic!(
            "man -l failed: {}",
            String::from_utf8_lossy(&rendered.stderr)
        ),
        Err(e) => panic!("cannot run man ({e}): run .ci/install (Debian package man-db)"),
    }
}

/// A port that was free a moment ago (for servers that cannot bind port 0
/// and report it, like the seed's Python server).
pub fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

/// Sends `msg` and expects it back within `timeout`.
pub fn ping(conn: &mut TcpStream, msg: &[u8], timeout: Duration) -> std::io::Result<()> {
    use std::io::Write;
    conn.set_read_timeout(Some(timeout))?;
    conn.write_all(msg)?;
    let mut got = vec![0u8; msg.len()];
    conn.read_exact(&mut got)?;
    assert_eq!(got, msg);
    Ok(())
}

/// Connects, retrying for a while: for servers that log before they listen.
pub fn connect_retry(addr: SocketAddr, timeout: Duration) -> TcpStream {
    let deadline = Instant::now() + timeout;
    loop {
        match TcpStream::connect(addr) {
            Ok(s) => return s,
            Err(e) if Instant::now() < deadline => {
                let _ = e;
                std::thread::sleep(Duration::from_millis(20));
            }
            Err(e) => panic!("cannot connect to {addr}: {e}"),
        }
    }
}

/// Deterministic pseudo-random bytes (xorshift), so failures reproduce.
pub fn pattern(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

/// Transfers in flight for a shutdown test: `clients` peers each send
/// `len` bytes of [`pattern`] (seeded with their index) in 64 KiB pieces,
/// 30 ms apart, then half-close, while reading the echo to its end.
/// Returns once every peer has sent `pieces_first` pieces and is still
/// sending, so that a signal sent next lands mid-transfer; each peer's
/// thread then returns whether its echo came back whole and unchanged.
pub fn paced_transfers(
    addr: SocketAddr,
    clients: u64,
    len: usize,
    pieces_first: usize,
) -> Vec<std::thread::JoinHandle<bool>> {
    let started = Arc::new(std::sync::Barrier::new(clients as usize + 1));
    let peers = (0..clients)
        .map(|i| {
            let started = started.clone();
            std::thread::spawn(move || {
                let data = pattern(i, len);
                let mut conn = TcpStream::connect(addr).unwrap();
                conn.set_read_timeout(Some(Duration::from_secs(30)))
                    .unwrap();
                let mut reader = conn.try_clone().unwrap();
                let reading = std::thread::spawn(move || {
                    let mut got = Vec::new();
                    reader.read_to_end(&mut got).map(|_| got)
                });
                for (k, piece) in data.chunks(64 * 1024).enumerate() {
                    std::io::Write::write_all(&mut conn, piece).unwrap();
                    if k + 1 == pieces_first {
                        started.wait();
                    }
                    std::thread::sleep(Duration::from_millis(30));
                }
                conn.shutdown(std::net::Shutdown::Write).unwrap();
                reading.join().unwrap().expect("read echo") == data
            })
        })
        .collect();
    started.wait();
    peers
}

/// The seed's Python programs, beside this repository in `../shared/peers/python`
/// (or wherever `ECHOES_PEERS` points). Missing, they fail the test: the
/// tests that need them are `#[ignore]`d, and .ci/run runs them only where
/// the peers are.
pub fn seed_python(file: &str) -> std::path::PathBuf {
    let dir = std::env::var_os("ECHOES_PEERS")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| {
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/peers")
        });
    let path = dir.join("python").join(file);
    assert!(
        path.exists(),
        "{} not found: the seed's programs live in ../shared/peers beside the checkout (or set ECHOES_PEERS)",
        path.display()
    );
    path
}

impl ServerProc {
    /// Starts `cmd` and waits for a line containing `needle`: for servers
    /// whose first line names no port (`unix:`), or a wrapper that logs
    /// first. `port` is that line's `port N`, or 0.
    pub fn start_until(cmd: &mut Command, needle: &str) -> ServerProc {
        let (mut server, line) = Self::spawn_until(cmd, "spawn", needle);
        server.port = port_in(&line).unwrap_or(0);
        server
    }

    /// Lines logged so far that contain `needle`.
    pub fn lines_with(&self, needle: &str) -> Vec<String> {
        self.lines()
            .into_iter()
            .filter(|l| l.contains(needle))
            .collect()
    }
}

/// Polls `f` every 10 ms until it is true, failing the test if `timeout`
/// passes first.
pub fn wait_for(timeout: Duration, what: &str, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// The body of `GET /metrics` from a server's metrics port.
pub fn scrape(port: u16) -> String {
    use std::io::Write;
    let mut conn = TcpStream::connect(("127.0.0.1", port)).expect("connect to metrics");
    conn.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    conn.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    let mut response = String::new();
    conn.read_to_string(&mut response).expect("read metrics");
    let (head, body) = response.split_once("\r\n\r\n").expect("an HTTP response");
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    body.to_string()
}

/// The value of one sample line (`name{labels}`) in a metrics page.
pub fn sample(page: &str, series: &str) -> u64 {
    page.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
        .unwrap_or_else(|| panic!("no sample {series} in:\n{page}"))
}

/// Sockets bound to `127.0.0.1:port` in the kernel's tables, as `ss -ltn`
/// or `ss -lun` lists them: listening TCP sockets (`tcp`), or UDP sockets
/// (`udp`).
pub fn sockets_on_port(proto: &str, port: u16) -> usize {
    // Column 4 is the state: 0A is LISTEN; a UDP socket is always 07.
    let state = if proto == "tcp" { "0A" } else { "07" };
    let table = std::fs::read_to_string(format!("/proc/net/{proto}")).unwrap_or_default();
    table
        .lines()
        .skip(1)
        .map(|l| l.split_whitespace().collect::<Vec<_>>())
        .filter(|cols| cols.len() > 3 && cols[3] == state)
        // Only 127.0.0.1 (0100007F in the table's byte order): the kernel
        // gives the same ephemeral port to sockets on other addresses, so
        // a test running beside this one may hold it on 127.0.0.2 or ::1.
        .filter(|cols| cols[1] == format!("0100007F:{port:04X}"))
        // Distinct sockets (column 9 is the inode): the kernel writes the
        // table a page at a time, and when other tests open and close
        // sockets between two pages, a line can come twice.
        .filter_map(|cols| cols.get(9).copied())
        .collect::<std::collections::BTreeSet<_>>()
        .len()
}

impl ServerProc {
    /// The shards (the `shard` field of `--log-format json` lines) that
    /// logged a message equal to `message`, one entry per line.
    pub fn shards_logging(&self, message: &str) -> Vec<u64> {
        self.lines()
            .iter()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .filter(|v| v["message"] == message)
            .filter_map(|v| v["shard"].as_u64())
            .collect()
    }
}

/// Runs `cmd` to its end (killed past `limit`): its exit code, standard
/// error, peak resident memory in KiB (from `wait4`), and how long it ran.
// The child is reaped by `wait4` (for its rusage), which clippy cannot see.
#[allow(clippy::zombie_processes)]
pub fn run_measured(cmd: &mut Command, limit: Duration) -> (Option<i32>, String, u64, Duration) {
    let started = Instant::now();
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut err = child.stderr.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = std::io::Read::read_to_string(&mut err, &mut s);
        s
    });
    let pid = child.id() as i32;
    let killer = std::thread::spawn(move || {
        std::thread::sleep(limit);
        // SAFETY: kill on our own child's pid; harmless if it is gone
        // (it is not reaped until wait4 below returns).
        unsafe { libc::kill(pid, libc::SIGKILL) };
    });
    let mut status = 0;
    // SAFETY: rusage is plain integers, valid zeroed; wait4 fills it.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    let rc = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
    assert_eq!(rc, pid);
    let elapsed = started.elapsed();
    drop(killer);
    let code = libc::WIFEXITED(status).then(|| libc::WEXITSTATUS(status));
    (
        code,
        reader.join().unwrap(),
        usage.ru_maxrss as u64,
        elapsed,
    )
}

/// Runs the test `name` of this test binary again, alone, in a network
/// namespace of its own (`unshare --net`, as root, or in a user namespace
/// otherwise) with its loopback up, and checks that it passed there.
/// Returns `true` inside that namespace, where the test goes on, and
/// `false` in the caller, whose test is then done. For tests that change
/// the network's settings (sysctls) or need its ports as they are.
///
/// `name` is the test function's name: the harness matches it within the
/// module path (`tcp::name`), and exactly one test must run and pass.
pub fn isolated(name: &str) -> bool {
    const INSIDE: &str = "ECHOES_ISOLATED_TEST";
    if std::env::var(INSIDE).is_ok_and(|n| n == name) {
        loopback_up();
        return true;
    }
    let mut cmd = Command::new("unshare");
    // SAFETY: getuid has no memory effects.
    if unsafe { libc::getuid() } != 0 {
        cmd.args(["--user", "--map-root-user"]);
    }
    cmd.arg("--net")
        .arg(std::env::current_exe().unwrap())
        .args([name, "--nocapture", "--test-threads", "1"])
        .env(INSIDE, name);
    let out = run(&mut cmd, b"", Duration::from_secs(120));
    assert!(
        out.status.success()
            && String::from_utf8_lossy(&out.stdout).contains("test result: ok. 1 passed;"),
        "{name} in its own network namespace: {}\n{}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        out.stderr
    );
    false
}

/// Brings up the loopback interface of this network namespace (a new one
/// starts with it down).
pub fn loopback_up() {
    // SAFETY: plain system calls on a socket and a request struct of our own.
    unsafe {
        let fd = libc::socket(libc::AF_INET, libc::SOCK_DGRAM, 0);
        assert!(fd >= 0, "socket: {}", std::io::Error::last_os_error());
        let mut req: libc::ifreq = std::mem::zeroed();
        for (i, b) in b"lo".iter().enumerate() {
            req.ifr_name[i] = *b as libc::c_char;
        }
        assert_eq!(libc::ioctl(fd, libc::SIOCGIFFLAGS, &mut req), 0);
        req.ifr_ifru.ifru_flags |= libc::IFF_UP as libc::c_short;
        let up = libc::ioctl(fd, libc::SIOCSIFFLAGS, &req);
        assert_eq!(up, 0, "lo up: {}", std::io::Error::last_os_error());
        libc::close(fd);
    }
}
