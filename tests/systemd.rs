//! Running under a service manager: readiness notification (sd_notify).

mod common;

use std::os::unix::net::UnixDatagram;
use std::process::Command;
use std::time::Duration;

use common::*;

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
        // man renders the page (when man is installed).
        let dir = tempfile::tempdir().unwrap();
        let page = dir.path().join(format!("{name}.1"));
        let out = run(
            Command::new(bin).args(["--generate", "man"]),
            b"",
            Duration::from_secs(20),
        );
        std::fs::write(&page, &out.stdout).unwrap();
        match Command::new("man")
            .arg("-l")
            .arg(&page)
            .env("MANPAGER", "cat")
            .env("MANWIDTH", "80")
            .output()
        {
            Ok(rendered) if rendered.status.success() => {
                let text = String::from_utf8_lossy(&rendered.stdout);
                assert!(
                    text.contains("SYNOPSIS") && text.contains("OPTIONS"),
                    "{text}"
                );
            }
            Ok(rendered) => panic!(
                "man -l failed: {}",
                String::from_utf8_lossy(&rendered.stderr)
            ),
            Err(_) => eprintln!("man is not installed; rendering not checked"),
        }
    }
}
