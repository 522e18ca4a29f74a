//! Running under a service manager: readiness notification (sd_notify),
//! the unit files in `contrib/systemd/`, man pages and completions.

use std::os::unix::net::UnixDatagram;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use crate::support::*;

#[test]
fn tells_the_notify_socket_it_is_ready_then_stopping() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("notify.sock");
    let sock = UnixDatagram::bind(&path).unwrap();
    sock.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut server = ServerProc::start_cmd(
        Command::new(SERVER)
            .args(["-l", "127.0.0.1:0"])
            .env("NOTIFY_SOCKET", &path),
    );
    let mut buf = [0u8; 256];
    let n = sock.recv(&mut buf).expect("a READY datagram");
    let msg = std::str::from_utf8(&buf[..n]).unwrap();
    assert!(msg.lines().any(|l| l == "READY=1"), "{msg:?}");
    // Ready means listening: a client gets its echo right away.
    let out = run(
        Command::new(CLIENT).args(["-c", &server.addr().to_string(), "ready?"]),
        b"",
        Duration::from_secs(20),
    );
    assert!(out.status.success(), "{}", out.stderr);
    server.signal(libc::SIGTERM);
    let n = sock.recv(&mut buf).expect("a STOPPING datagram");
    assert_eq!(&buf[..n], b"STOPPING=1\n");
    assert_eq!(server.wait_exit(Duration::from_secs(10)).code(), Some(0));
}

#[test]
fn abstract_notify_socket_names_work_too() {
    let name = format!("echoes-test-{}", std::process::id());
    use std::os::linux::net::SocketAddrExt;
    let addr = std::os::unix::net::SocketAddr::from_abstract_name(name.as_bytes()).unwrap();
    let sock = UnixDatagram::bind_addr(&addr).unwrap();
    sock.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let _server = ServerProc::start_cmd(
        Command::new(SERVER)
            .args(["-l", "127.0.0.1:0"])
            .env("NOTIFY_SOCKET", format!("@{name}")),
    );
    let mut buf = [0u8; 256];
    let n = sock.recv(&mut buf).expect("a READY datagram");
    assert!(buf[..n].starts_with(b"READY=1\n"));
}

#[test]
#[cfg_attr(
    not(has_man),
    ignore = "needs man: run .ci/install (Debian package man-db)"
)]
fn generated_man_pages_and_completions_are_real() {
    for bin in [SERVER, CLIENT] {
        let name = std::path::Path::new(bin)
            .file_name()
            .unwrap()
            .to_str()
            .unwrap();
        for kind in ["man", "complete-bash", "complete-zsh", "complete-fish"] {
            let out = run(
                Command::new(bin).args(["--generate", kind]),
                b"",
                Duration::from_secs(20),
            );
            assert!(out.status.success(), "{name} {kind}: {}", out.stderr);
            let text = String::from_utf8(out.stdout).unwrap();
            // roff escapes dashes (`\-\-listen`), so look for the bare words.
            assert!(
                text.contains("listen") || text.contains("connect"),
                "{name} {kind} does not mention the flags"
            );
            assert!(
                text.contains(name) || text.contains(&name.replace('-', "\\-")),
                "{name} {kind}"
            );
        }
        // man renders the page.
        let out = run(
            Command::new(bin).args(["--generate", "man"]),
            b"",
            Duration::from_secs(20),
        );
        let text = render_man(&out.stdout, name);
        assert!(
            text.contains("SYNOPSIS") && text.contains("OPTIONS"),
            "{text}"
        );
    }
}

const ANALYZE: &str = "/usr/bin/systemd-analyze";
const UNITS: [&str; 3] = ["echoes.socket", "echoes.service", "echo-server.service"];
/// Where the unit files expect the binary (`cargo install --root /usr/local`).
const INSTALLED: &str = "/usr/local/bin/echo-server";

/// The unit files of `contrib/systemd/`, copied into `dir` with ExecStart
/// pointing at the binary just built, so that verify checks a real one.
fn units_in(dir: &Path) -> Vec<std::path::PathBuf> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("contrib/systemd");
    UNITS
        .iter()
        .map(|unit| {
            let text = std::fs::read_to_string(src.join(unit)).unwrap();
            if unit.ends_with(".service") {
                assert!(text.contains(INSTALLED), "{unit} runs {INSTALLED}");
            }
            let path = dir.join(unit);
            std::fs::write(&path, text.replace(INSTALLED, SERVER)).unwrap();
            path
        })
        .collect()
}

/// Fails the test when systemd-analyze is missing: CI installs it
/// (.ci/apt-packages.txt), and a check that did not run must not pass.
fn need_analyze() {
    assert!(
        Path::new(ANALYZE).exists(),
        "{ANALYZE} is not installed: run .ci/install (Debian package systemd)"
    );
}

#[test]
#[cfg_attr(
    not(has_systemd_analyze),
    ignore = "needs systemd-analyze: run .ci/install (Debian package systemd)"
)]
fn unit_files_pass_systemd_analyze_verify() {
    need_analyze();
    let dir = tempfile::tempdir().unwrap();
    let units = units_in(dir.path());
    let out = run(
        Command::new(ANALYZE).arg("verify").args(&units),
        b"",
        Duration::from_secs(60),
    );
    // verify exits 0 on unknown keys and bad values, but names them.
    assert!(
        out.status.success() && out.stderr.trim().is_empty(),
        "systemd-analyze verify: {}",
        out.stderr
    );
}

#[test]
#[cfg_attr(
    not(has_systemd_analyze),
    ignore = "needs systemd-analyze: run .ci/install (Debian package systemd)"
)]
fn services_keep_their_sandbox() {
    need_analyze();
    let dir = tempfile::tempdir().unwrap();
    for unit in units_in(dir.path()) {
        if unit.extension().is_some_and(|e| e == "service") {
            // The exposure score, 0 (locked down) to 10 (exposed), times
            // ten: both units score under 2 today; 2.5 leaves room for a
            // justified change, not for dropping the sandbox.
            let out = run(
                Command::new(ANALYZE)
                    .args(["security", "--offline=yes", "--threshold=25"])
                    .arg(&unit),
                b"",
                Duration::from_secs(60),
            );
            let report = String::from_utf8_lossy(&out.stdout);
            let overall = report.lines().last().unwrap_or_default();
            assert!(out.status.success(), "{}: {overall}", unit.display());
        }
    }
}

#[test]
fn services_wait_for_readiness_and_bind_what_the_docs_say() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("contrib/systemd");
    let read = |unit: &str| std::fs::read_to_string(dir.join(unit)).unwrap();
    let socket = read("echoes.socket");
    assert!(socket.contains("\nListenStream=7\n") && socket.contains("\nListenDatagram=7\n"));
    for unit in ["echoes.service", "echo-server.service"] {
        let text = read(unit);
        for key in [
            "Type=notify",
            "DynamicUser=yes",
            "NoNewPrivileges=yes",
            "ProtectSystem=strict",
            "PrivateTmp=yes",
            "RestrictAddressFamilies=",
            "MemoryMax=",
        ] {
            assert!(
                text.lines().any(|l| l.starts_with(key)),
                "{unit} lacks {key}"
            );
        }
    }
    let plain = read("echo-server.service");
    assert!(plain.contains("AmbientCapabilities=CAP_NET_BIND_SERVICE"));
    for addr in ["0.0.0.0:7", "[::]:7", "udp://0.0.0.0:7", "udp://[::]:7"] {
        assert!(plain.contains(&format!("--listen {addr}")), "{addr}");
    }
}

/// The fast path for shards: `echoes.socket` lists each port once per
/// shard of `echoes.service`, with `ReusePort=yes`, so systemd passes a
/// `SO_REUSEPORT` group with a socket for every shard.
#[test]
fn the_socket_unit_gives_every_shard_its_own_socket() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("contrib/systemd");
    let socket = std::fs::read_to_string(dir.join("echoes.socket")).unwrap();
    let service = std::fs::read_to_string(dir.join("echoes.service")).unwrap();
    assert!(socket.lines().any(|l| l == "ReusePort=yes"));
    let threads: usize = service
        .split("--threads ")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next()?.parse().ok())
        .expect("echoes.service gives --threads");
    assert!(threads > 1);
    for line in ["ListenStream=7", "ListenDatagram=7"] {
        let listed = socket.lines().filter(|l| *l == line).count();
        assert_eq!(listed, threads, "{line} once per shard");
    }
}
