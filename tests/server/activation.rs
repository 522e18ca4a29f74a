//! Socket activation end to end: sockets passed the way systemd passes
//! them (descriptors from 3, `LISTEN_FDS`, `LISTEN_PID` naming the
//! server's own pid, `LISTEN_FDNAMES`) are served instead of `--listen`.

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::os::fd::{AsRawFd, RawFd};
use std::os::unix::net::UnixListener;
use std::os::unix::process::CommandExt;
use std::process::Command;
use std::time::Duration;

use crate::support::*;

/// `echo-server` with `fds` at 3, 4, …: a shell sets `LISTEN_PID` to its
/// own pid and `exec`s the server, which keeps that pid.
fn activated(fds: &[RawFd], names: &str, args: &[&str]) -> Command {
    let mut cmd = Command::new("sh");
    cmd.arg("-c")
        .arg("export LISTEN_PID=$$; exec \"$0\" \"$@\"")
        .arg(SERVER)
        .args(args)
        .env("LISTEN_FDS", fds.len().to_string())
        .env("LISTEN_FDNAMES", names);
    let fds = fds.to_vec();
    // SAFETY: only fcntl and dup2, which are async-signal-safe, run
    // between fork and exec.
    unsafe {
        cmd.pre_exec(move || {
            // Move every source out of the way first, so that placing one
            // at 3 + i cannot clobber another still to be placed.
            let mut high = Vec::with_capacity(fds.len());
            for &fd in &fds {
                let h = libc::fcntl(fd, libc::F_DUPFD_CLOEXEC, 100);
                if h < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                high.push(h);
            }
            for (i, &h) in high.iter().enumerate() {
                // dup2 clears close-on-exec on the new descriptor.
                if libc::dup2(h, 3 + i as RawFd) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
            }
            Ok(())
        });
    }
    cmd
}

/// Sends a message, half-closes with `half_close`, and reads the echo.
fn echo_over(mut conn: impl Read + Write, half_close: impl FnOnce()) -> Vec<u8> {
    conn.write_all(b"activated").unwrap();
    half_close();
    let mut echo = Vec::new();
    conn.read_to_end(&mut echo).unwrap();
    echo
}

#[test]
fn tcp_udp_and_unix_sockets_from_the_manager_are_served() {
    let tcp = TcpListener::bind("127.0.0.1:0").unwrap();
    let tcp_addr = tcp.local_addr().unwrap();
    let udp = UdpSocket::bind("127.0.0.1:0").unwrap();
    let udp_addr = udp.local_addr().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("act.sock");
    let unix = UnixListener::bind(&path).unwrap();
    let fds = [tcp.as_raw_fd(), udp.as_raw_fd(), unix.as_raw_fd()];
    // --listen is ignored (with a warning) when sockets are passed.
    let mut server = ServerProc::start_cmd(&mut activated(
        &fds,
        "web:dgram:local",
        &["-l", "127.0.0.1:1", "-v"],
    ));
    // The server has its own copies now.
    drop((tcp, udp, unix));
    assert_eq!(server.port, tcp_addr.port());
    server.wait_for_line(
        &format!(
            "starting up on udp://127.0.0.1 port {} (from systemd)",
            udp_addr.port()
        ),
        Duration::from_secs(5),
    );
    server.wait_for_line(
        &format!("starting up on unix:{} (from systemd)", path.display()),
        Duration::from_secs(5),
    );
    server.wait_for_line("--listen is ignored", Duration::from_secs(1));

    let tcp_conn = TcpStream::connect(tcp_addr).unwrap();
    tcp_conn
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let shut = tcp_conn.try_clone().unwrap();
    assert_eq!(
        echo_over(tcp_conn, || shut.shutdown(Shutdown::Write).unwrap()),
        b"activated"
    );
    let unix_conn = std::os::unix::net::UnixStream::connect(&path).unwrap();
    unix_conn
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let shut = unix_conn.try_clone().unwrap();
    assert_eq!(
        echo_over(unix_conn, || shut.shutdown(Shutdown::Write).unwrap()),
        b"activated"
    );
    assert_udp_echo(udp_addr);

    server.signal(libc::SIGTERM);
    assert!(server.wait_exit(Duration::from_secs(10)).success());
    assert!(
        path.exists(),
        "the manager's socket file is the manager's to remove"
    );
}

#[test]
fn a_tcp_socket_named_tls_is_served_with_tls() {
    let tcp = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = tcp.local_addr().unwrap().port();
    let server = ServerProc::start_cmd(&mut activated(
        &[tcp.as_raw_fd()],
        "tls",
        &["--tls-self-signed"],
    ));
    drop(tcp);
    let line = server.wait_for_line("starting up on", Duration::from_secs(1));
    assert!(
        line.contains(&format!("tls://127.0.0.1 port {port}")),
        "{line}"
    );
    let out = run(
        Command::new(CLIENT).args(["-c", &format!("tls://127.0.0.1:{port}"), "-k", "x"]),
        b"",
        Duration::from_secs(20),
    );
    assert!(out.status.success(), "{}", out.stderr);
}

#[test]
fn a_descriptor_that_is_not_a_socket_is_one_clear_line() {
    let file = std::fs::File::open("/dev/null").unwrap();
    let out = run(
        &mut activated(&[file.as_raw_fd()], "", &[]),
        b"",
        Duration::from_secs(20),
    );
    assert_eq!(out.status.code(), Some(1), "{}", out.stderr);
    let first = out.stderr.lines().next().unwrap_or_default();
    assert!(
        first.contains("socket activation: file descriptor 3: not a socket"),
        "{}",
        out.stderr
    );
}

#[test]
#[cfg_attr(
    not(has_systemd_socket_activate),
    ignore = "needs systemd-socket-activate: run .ci/install (Debian package systemd)"
)]
fn systemd_socket_activate_starts_it_on_the_first_connection() {
    let tool = "/usr/bin/systemd-socket-activate";
    assert!(
        std::path::Path::new(tool).exists(),
        "{tool} is not installed: run .ci/install (Debian package systemd)"
    );
    // A stand-in for systemd's notify socket, as Type=notify would set it;
    // the tool passes on only the variables named with -E.
    let dir = tempfile::tempdir().unwrap();
    let notify_path = dir.path().join("notify.sock");
    let notify = std::os::unix::net::UnixDatagram::bind(&notify_path).unwrap();
    notify
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let port = free_port();
    let mut cmd = Command::new(tool);
    cmd.args(["-l", &format!("127.0.0.1:{port}")])
        .arg("-E")
        .arg(format!("NOTIFY_SOCKET={}", notify_path.display()))
        .arg(SERVER);
    let mut server = ServerProc::start_until(&mut cmd, "Listening on");
    let out = run(
        Command::new(CLIENT).args(["-c", &format!("127.0.0.1:{port}")]),
        b"",
        Duration::from_secs(20),
    );
    assert!(out.status.success(), "{}", out.stderr);
    server.wait_for_line(
        &format!("main: starting up on 127.0.0.1 port {port} (from systemd)"),
        Duration::from_secs(5),
    );
    let mut buf = [0u8; 256];
    let n = notify.recv(&mut buf).expect("READY=1 on the notify socket");
    let msg = String::from_utf8_lossy(&buf[..n]);
    assert!(msg.lines().any(|l| l == "READY=1"), "{msg:?}");
    // The tool execs the server, so the signal reaches it.
    server.signal(libc::SIGTERM);
    assert_eq!(server.wait_exit(Duration::from_secs(10)).code(), Some(0));
    let n = notify
        .recv(&mut buf)
        .expect("STOPPING=1 on the notify socket");
    assert_eq!(&buf[..n], b"STOPPING=1\n");
}

/// Echoes `msg` over a new connection to `addr`.
fn ping_once(addr: std::net::SocketAddr, msg: &[u8]) {
    let mut c = TcpStream::connect(addr).unwrap();
    ping(&mut c, msg, Duration::from_secs(10)).unwrap();
}

/// The shards that logged `connection accepted`, once `count` are in.
fn accepting_shards(server: &ServerProc, count: usize) -> std::collections::BTreeSet<u64> {
    wait_for(Duration::from_secs(10), "every connection logged", || {
        server.shards_logging("connection accepted").len() >= count
    });
    server
        .shards_logging("connection accepted")
        .into_iter()
        .collect()
}

/// One socket per address, as a unit without `ReusePort=` passes them,
/// and more shards: one accept loop hands the connections to every shard
/// in turn. The UDP socket is served by one shard.
#[test]
fn one_passed_socket_is_shared_by_every_shard() {
    let tcp = TcpListener::bind("127.0.0.1:0").unwrap();
    let tcp_addr = tcp.local_addr().unwrap();
    let udp = UdpSocket::bind("127.0.0.1:0").unwrap();
    let udp_addr = udp.local_addr().unwrap();
    let mut server = ServerProc::start_cmd(&mut activated(
        &[tcp.as_raw_fd(), udp.as_raw_fd()],
        "",
        &["--threads", "3", "--log-format", "json"],
    ));
    drop((tcp, udp));
    assert_eq!(sockets_on_port("tcp", tcp_addr.port()), 1);
    for i in 0..9 {
        ping_once(tcp_addr, format!("shared {i}").as_bytes());
    }
    assert_eq!(
        accepting_shards(&server, 9),
        std::collections::BTreeSet::from([0, 1, 2])
    );
    assert_udp_echo(udp_addr);
    server.signal(libc::SIGTERM);
    assert!(server.wait_exit(Duration::from_secs(10)).success());
}

/// The fast path: a unit that lists an address once per shard with
/// `ReusePort=yes` (contrib/systemd/echoes-reuseport.socket) passes a
/// group of `SO_REUSEPORT` sockets, and each shard accepts on its own.
#[test]
fn sockets_passed_once_per_shard_give_each_shard_its_own() {
    use socket2::{Domain, Socket, Type};
    let group: Vec<Socket> = (0..3)
        .map(|_| Socket::new(Domain::IPV4, Type::STREAM, None).unwrap())
        .collect();
    let mut at: std::net::SocketAddr = "127.0.0.1:0".parse().unwrap();
    for s in &group {
        s.set_reuse_port(true).unwrap();
        s.bind(&at.into()).unwrap();
        s.listen(128).unwrap();
        at = s.local_addr().unwrap().as_socket().unwrap();
    }
    let fds: Vec<RawFd> = group.iter().map(AsRawFd::as_raw_fd).collect();
    let mut server = ServerProc::start_cmd(&mut activated(
        &fds,
        "",
        &["--threads", "3", "--log-format", "json"],
    ));
    drop(group);
    assert_eq!(server.port, at.port());
    assert_eq!(sockets_on_port("tcp", at.port()), 3);
    assert_eq!(server.count_lines("starting up"), 1, "one address");
    for i in 0..48 {
        ping_once(at, format!("own {i}").as_bytes());
    }
    assert_eq!(
        accepting_shards(&server, 48),
        std::collections::BTreeSet::from([0, 1, 2])
    );
    server.signal(libc::SIGTERM);
    assert!(server.wait_exit(Duration::from_secs(10)).success());
}

/// One datagram to `udp_addr` comes back as it was sent.
fn assert_udp_echo(udp_addr: SocketAddr) {
    let probe = UdpSocket::bind("127.0.0.1:0").unwrap();
    probe
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    probe.send_to(b"datagram", udp_addr).unwrap();
    let mut buf = [0u8; 16];
    let (n, _) = probe.recv_from(&mut buf).unwrap();
    assert_eq!(&buf[..n], b"datagram");
}
