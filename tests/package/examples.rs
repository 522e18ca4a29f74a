//! Every example in README.md and in each binary's `--help` passes as
//! written, against the server line the README (or the help) gives before
//! it.
//!
//! How examples are found, so that a new one is picked up by itself:
//! - README.md: every fenced code block without a language (or `sh`,
//!   `bash`, `console`). In a block with `$ ` prompts only the prompted
//!   lines are commands (the rest is output); otherwise every line whose
//!   first word could be a program is. `# comments` are dropped.
//! - `--help`: the lines after `Examples:` that have an `echo-server`,
//!   `echo-client` or `echo-bench` stage; a command ends where two spaces
//!   begin its description, and `#` lines are comments.
//!
//! What each command is:
//! - a **client** when a stage of it is `echo-client`, `echo-bench` or
//!   `curl`: it runs (under `bash -o pipefail`) against the latest server
//!   line before it that serves its target (the `--connect`/`-c` address,
//!   a URL's port, or the default `localhost:10000`; for a help text, its
//!   own server lines first, then the README's), and must exit 0. One
//!   with no server line for its target fails the test. `echo-bench
//!   merge` needs none.
//! - a **server** when it holds the word `echo-server` (`systemd-socket-
//!   activate ... echo-server` too): it serves the `-l`/`--listen` and
//!   `--metrics` addresses it names, or `localhost:10000`. Run alone, it
//!   must start and then exit 0 on SIGINT.
//! - **not run here** when its program is in [`found::NOT_RUN`] (building,
//!   installing as a system service, the peers' comparison): its whole
//!   code block is skipped, since the block's other lines depend on it.
//! - anything else fails the test: teach this file to run it, or list it
//!   in [`found::NOT_RUN`] with the reason.
//!
//! Placeholders: a `--tls-pin` value with `…` in it, or `FINGERPRINT`,
//! is the fingerprint the server logged; `ca.pem`, `server.pem`, `server.key`,
//! `client.pem` and `client.key` are made in the working folder (one per
//! README or help text, shared by its examples in order, so `echo-bench
//! merge *.hlog` finds the histogram saved before it).
//!
//! An `echo-bench` run is cut to [`BENCH_RUN`]: its `-d`/`--duration`
//! value is replaced, or `-d 1s` added. What an example shows (its flags
//! parse, it reaches the server, every byte comes back, the report and
//! the files it writes) does not depend on how long it runs, and two dozen
//! runs of the default 10 s were three of CI's twenty minutes.
//!
//! Each example runs in network and mount namespaces of its own
//! (`unshare`, as root or in a user namespace): ports as written (7,
//! 7007, 10000 ...) are free there, and `/tmp` is a fresh tmpfs, so
//! nothing collides with other tests or with the machine. The test binary
//! re-runs itself inside, with `ECHOES_EXAMPLE` naming the example.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

mod found;

use crate::support;
use crate::support::{Finished, SERVER, ServerProc};
use found::{Example, SEPARATORS, Session, Target, serves, sessions, target, words};

const INSIDE: &str = "ECHOES_EXAMPLE";
const WORKDIR: &str = "ECHOES_EXAMPLE_DIR";

#[test]
#[cfg_attr(
    not(has_curl),
    ignore = "needs curl: run .ci/install (Debian package curl)"
)]
fn every_example_passes_as_written() {
    let (sessions, problems) = sessions();
    if let Ok(index) = std::env::var(INSIDE) {
        let index: usize = index.parse().expect("an example number");
        inside_namespaces();
        run_session(
            &sessions[index],
            Path::new(&std::env::var(WORKDIR).unwrap()),
        );
        return;
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
    assert!(
        sessions.len() >= 40,
        "only {} examples found",
        sessions.len()
    );
    let root = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let lanes = sessions.iter().map(lane).max().unwrap_or(0) + 1;
    let failures: Vec<String> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..lanes)
            .map(|l| {
                let dir = root.path().join(format!("lane{l}"));
                std::fs::create_dir(&dir).unwrap();
                make_certificates(&dir);
                let sessions = &sessions;
                scope.spawn(move || {
                    let mut failed = Vec::new();
                    for (i, s) in sessions.iter().enumerate().filter(|(_, s)| lane(s) == l) {
                        if let Err(e) = run_isolated(i, &dir) {
                            failed.push(format!("{}\n{e}", describe(s)));
                        }
                    }
                    failed
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().unwrap())
            .collect()
    });
    assert!(
        failures.is_empty(),
        "{} example(s) failed:\n\n{}",
        failures.len(),
        failures.join("\n\n")
    );
}

fn lane(s: &Session) -> usize {
    s.client
        .as_ref()
        .or(s.server.as_ref())
        .map_or(0, |e| e.lane)
}

fn describe(s: &Session) -> String {
    let line = |e: &Option<Example>| {
        e.as_ref()
            .map(|e| format!("{}: {}", e.origin, e.command))
            .unwrap_or_default()
    };
    match (&s.server, &s.client) {
        (Some(_), Some(_)) => format!("{}\n  against {}", line(&s.client), line(&s.server)),
        _ => line(&s.server) + &line(&s.client),
    }
}

/// Runs session `index` in namespaces of its own: this test binary again.
fn run_isolated(index: usize, dir: &Path) -> Result<(), String> {
    let exe = std::env::current_exe().unwrap();
    let mut cmd = Command::new("unshare");
    // SAFETY: getuid has no memory effects.
    if unsafe { libc::getuid() } != 0 {
        cmd.args(["--user", "--map-root-user"]);
    }
    cmd.args(["--net", "--mount"])
        .arg(&exe)
        // Matched within the module path (`examples::…`); exactly one
        // test must run, or nothing was checked.
        .args(["every_example_passes_as_written", "--nocapture"])
        .args(["--test-threads", "1"])
        .env(INSIDE, index.to_string())
        .env(WORKDIR, dir);
    let out = support::run(&mut cmd, b"", Duration::from_secs(300));
    let stdout = String::from_utf8_lossy(&out.stdout);
    if out.status.success() && stdout.contains("test result: ok. 1 passed;") {
        return Ok(());
    }
    Err(format!("{}{}", tail(&stdout), tail(&out.stderr)))
}

fn tail(text: &str) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(40)..].join("\n") + "\n"
}

/// In the fresh namespaces: loopback up, and a /tmp of our own, so that
/// examples writing there (`unix:/tmp/echo.sock`) collide with nothing.
///
/// A checkout or target folder under /tmp (a clone in `/tmp`, CI's
/// scratch folder) would vanish under the new /tmp, and every example
/// with it: those folders are bind-mounted back, from a handle on the old
/// /tmp taken before it was covered.
fn inside_namespaces() {
    use std::ffi::CString;
    use std::os::unix::ffi::OsStrExt;
    support::loopback_up();
    let target = Path::new(SERVER).ancestors().nth(2).unwrap().to_path_buf();
    let mut keep: Vec<PathBuf> = [Path::new(env!("CARGO_MANIFEST_DIR")).to_path_buf(), target]
        .into_iter()
        .filter_map(|p| p.canonicalize().ok())
        .filter(|p| p.starts_with("/tmp"))
        .collect();
    keep.sort();
    keep.dedup_by(|inner, outer| inner.starts_with(outer));
    let old_tmp = std::fs::File::open("/tmp").expect("open /tmp");
    let mount = |source: &Path, target: &Path, fstype: Option<&str>, flags| {
        let source = CString::new(source.as_os_str().as_bytes()).unwrap();
        let target = CString::new(target.as_os_str().as_bytes()).unwrap();
        let fstype = fstype.map(|t| CString::new(t).unwrap());
        let fstype = fstype.as_ref().map_or(std::ptr::null(), |t| t.as_ptr());
        // SAFETY: every pointer is a NUL-terminated string that outlives
        // the call, or null where mount(2) allows it.
        let rc = unsafe {
            libc::mount(
                source.as_ptr(),
                target.as_ptr(),
                fstype,
                flags,
                std::ptr::null(),
            )
        };
        assert_eq!(
            rc,
            0,
            "mount {source:?} on {target:?}: {}",
            std::io::Error::last_os_error()
        );
    };
    mount(Path::new("tmpfs"), Path::new("/tmp"), Some("tmpfs"), 0);
    let old = PathBuf::from(format!(
        "/proc/self/fd/{}",
        std::os::fd::AsRawFd::as_raw_fd(&old_tmp)
    ));
    for path in keep {
        std::fs::create_dir_all(&path).expect("a mount point in the new /tmp");
        let source = old.join(path.strip_prefix("/tmp").unwrap());
        mount(&source, &path, None, libc::MS_BIND | libc::MS_REC);
    }
    assert!(
        Path::new(SERVER).exists(),
        "{SERVER} is not there inside the example's namespaces: /tmp was \
         replaced by a tmpfs, and the binaries could not be mounted back"
    );
}

/// Runs one session here: the server, then the client against it.
fn run_session(s: &Session, dir: &Path) {
    let bin_dir = Path::new(SERVER).parent().unwrap();
    let path = format!(
        "{}:{}",
        bin_dir.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let shell = |line: &str| {
        let mut cmd = Command::new("bash");
        cmd.args(["-o", "pipefail", "-c", line])
            .current_dir(dir)
            .env("PATH", &path)
            .env_remove("RUST_LOG")
            .env_remove("ECHOES_TEST_SERVER_ARGS");
        cmd
    };
    let mut server = s.server.as_ref().map(|e| {
        let srv = ServerProc::start_until(&mut shell(&format!("exec {}", e.command)), "");
        let ready = match s.client.as_ref().and_then(|c| target(&c.command)) {
            Some(t) => t,
            None => serves(&e.command).remove(0),
        };
        // A wrapper (systemd-socket-activate) starts the server on the
        // first connection.
        if words(&e.command).first().map(String::as_str) != Some("echo-server")
            && let Target::Stream(port) = ready
        {
            let _ = std::net::TcpStream::connect(("127.0.0.1", port));
        }
        srv.wait_for_line_where(Duration::from_secs(10), |l| names(l, &ready));
        srv
    });
    if let Some(client) = &s.client {
        let mut line = shortened(&client.command);
        if line.contains('…') || line.contains("FINGERPRINT") {
            let srv = server.as_ref().expect("a server for a fingerprint");
            let logged = srv.wait_for_line("fingerprint", Duration::from_secs(10));
            let fp = logged.split_whitespace().last().unwrap().to_string();
            line = words(&line)
                .into_iter()
                .map(|w| {
                    if w.contains('…') || w == "FINGERPRINT" {
                        fp.clone()
                    } else {
                        w
                    }
                })
                .collect::<Vec<_>>()
                .join(" ");
        }
        let started = Instant::now();
        let out: Finished = support::run(&mut shell(&line), b"", Duration::from_secs(120));
        let log = server
            .as_ref()
            .map(|s| s.lines().join("\n"))
            .unwrap_or_default();
        assert!(
            out.status.success(),
            "`{line}` exited with {} after {:?}\nstderr:\n{}\nstdout:\n{}\nserver log:\n{}",
            out.status,
            started.elapsed(),
            tail(&out.stderr),
            tail(&String::from_utf8_lossy(&out.stdout)),
            tail(&log)
        );
    }
    if let Some(srv) = server.as_mut() {
        srv.signal(libc::SIGINT);
        let status = srv.wait_exit(Duration::from_secs(20));
        assert!(
            status.success(),
            "the server exited with {status} on SIGINT:\n{}",
            tail(&srv.lines().join("\n"))
        );
    }
}

/// How long an example's `echo-bench` run lasts here.
const BENCH_RUN: &str = "1s";

/// `line` with its `echo-bench` run cut to [`BENCH_RUN`] (`merge` is left
/// as it is). Words are split on single spaces and joined back the same
/// way, so the rest of the line (quotes, `$(...)`) is untouched.
fn shortened(line: &str) -> String {
    let mut words: Vec<String> = line.split(' ').map(String::from).collect();
    let Some(bench) = words.iter().position(|w| w == "echo-bench") else {
        return line.to_string();
    };
    if words.get(bench + 1).is_some_and(|w| w == "merge") {
        return line.to_string();
    }
    let stage_end = words[bench..]
        .iter()
        .position(|w| SEPARATORS.contains(&w.as_str()))
        .map_or(words.len(), |i| bench + i);
    let stage = &mut words[bench..stage_end];
    if let Some(flag) = stage.iter().position(|w| w == "-d" || w == "--duration") {
        if let Some(value) = stage.get_mut(flag + 1) {
            *value = BENCH_RUN.to_string();
        }
    } else if let Some(flag) = stage.iter().position(|w| w.starts_with("--duration=")) {
        stage[flag] = format!("--duration={BENCH_RUN}");
    } else {
        words.insert(bench + 1, format!("-d {BENCH_RUN}"));
    }
    words.join(" ")
}

/// Whether a server's log line says it listens on `t`.
/// (Port 0 stands for any port: the server picks one.)
fn names(line: &str, t: &Target) -> bool {
    let port = |p: u16| {
        p == 0
            || line
                .trim_end_matches(" (from systemd)")
                .ends_with(&format!(" port {p}"))
    };
    if line.contains("serving metrics on http://") {
        return matches!(t, Target::Stream(p) if *p == 0 || line.contains(&format!(":{p}/")));
    }
    if !line.contains("starting up on") {
        return false;
    }
    match t {
        Target::Stream(p) => !line.contains("udp://") && port(*p),
        Target::Udp(p) => line.contains("udp://") && port(*p),
        Target::Unix(path) => line.contains(&path.display().to_string()),
    }
}

/// The certificates the examples name, in `dir`: a CA, and a server
/// (`localhost`, 127.0.0.1, ::1) and a client certificate it signed.
fn make_certificates(dir: &Path) {
    use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};
    let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca_key = KeyPair::generate().unwrap();
    std::fs::write(dir.join("ca.pem"), ca.self_signed(&ca_key).unwrap().pem()).unwrap();
    let issuer = Issuer::new(ca, ca_key);
    for (cert, key, names) in [
        (
            "server.pem",
            "server.key",
            vec!["localhost", "127.0.0.1", "::1"],
        ),
        ("client.pem", "client.key", vec!["client.example"]),
    ] {
        let params =
            CertificateParams::new(names.iter().map(|s| s.to_string()).collect::<Vec<_>>())
                .unwrap();
        let k = KeyPair::generate().unwrap();
        std::fs::write(dir.join(cert), params.signed_by(&k, &issuer).unwrap().pem()).unwrap();
        std::fs::write(dir.join(key), k.serialize_pem()).unwrap();
    }
}

#[test]
fn bench_runs_are_shortened_and_the_rest_left_alone() {
    assert_eq!(
        shortened("echo-bench --connect 127.0.0.1:7 -c 50 -s 64 -d 10s"),
        "echo-bench --connect 127.0.0.1:7 -c 50 -s 64 -d 1s"
    );
    assert_eq!(
        shortened("echo-bench --connect 127.0.0.1:7 --json | jq .ops"),
        "echo-bench -d 1s --connect 127.0.0.1:7 --json | jq .ops"
    );
    assert_eq!(
        shortened("echo-bench --connect x --duration=5s | head -c 3"),
        "echo-bench --connect x --duration=1s | head -c 3"
    );
    let start_at = "echo-bench --connect 127.0.0.1:7 -d 2s --start-at @$(($(date +%s) + 3))";
    assert_eq!(
        shortened(start_at),
        "echo-bench --connect 127.0.0.1:7 -d 1s --start-at @$(($(date +%s) + 3))"
    );
    for same in [
        "echo-bench merge *.hlog --plot all.svg",
        "echo-client hello",
    ] {
        assert_eq!(shortened(same), same);
    }
}
