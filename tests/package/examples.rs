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
//! - **not run here** when its program is in [`NOT_RUN`] (building,
//!   installing as a system service, the peers' comparison): its whole
//!   code block is skipped, since the block's other lines depend on it.
//! - anything else fails the test: teach this file to run it, or list it
//!   in [`NOT_RUN`] with the reason.
//!
//! Placeholders: a `--tls-pin` value with `…` in it, or `FINGERPRINT`,
//! is the fingerprint the server logged; `ca.pem`, `server.pem`, `server.key`,
//! `client.pem` and `client.key` are made in the working folder (one per
//! README or help text, shared by its examples in order, so `echo-bench
//! merge *.hlog` finds the histogram saved before it).
//!
//! Each example runs in network and mount namespaces of its own
//! (`unshare`, as root or in a user namespace): ports as written (7,
//! 7007, 10000 ...) are free there, and `/tmp` is a fresh tmpfs, so
//! nothing collides with other tests or with the machine. The test binary
//! re-runs itself inside, with `ECHOES_EXAMPLE` naming the example.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::support;
use crate::support::{Finished, SERVER, ServerProc};
use echoes::{Addr, Transport};

/// Programs whose examples are not run here, and why.
const NOT_RUN: &[(&str, &str)] = &[
    ("cargo", "builds, installs or runs the test suite itself"),
    ("cp", "installs systemd units: needs systemd as PID 1"),
    ("systemctl", "needs systemd as PID 1"),
    (
        "python3",
        "scripts/compare_peers.py takes minutes and builds the C peers",
    ),
    (
        "cd",
        "part of the fuzzing set-up (cargo fuzz, nightly flags)",
    ),
    // The "Other clients" block: each line needs an input file or a
    // terminal; tests/interop/tools.rs runs every one of them for real.
    ("socat", "tests/interop/tools.rs runs it"),
    ("ncat", "tests/interop/tools.rs runs it"),
    ("nc", "tests/interop/tools.rs runs it"),
    ("openssl", "tests/interop/tools.rs runs it"),
];

/// The programs a client example may run.
const CLIENTS: &[&str] = &["echo-client", "echo-bench", "curl"];

const INSIDE: &str = "ECHOES_EXAMPLE";
const WORKDIR: &str = "ECHOES_EXAMPLE_DIR";

#[derive(Debug, Clone, PartialEq)]
enum Kind {
    Server,
    Client,
}

#[derive(Debug, Clone)]
struct Example {
    /// Where it is written: `README.md:123` or `echo-bench --help`.
    origin: String,
    /// 0 for the README, then one per binary's help.
    lane: usize,
    command: String,
    kind: Kind,
}

/// One run: a server line alone, or a client with the server it needs.
#[derive(Debug, Clone)]
struct Session {
    server: Option<Example>,
    client: Option<Example>,
}

/// What an address is served on, as far as matching goes.
#[derive(Debug, Clone, PartialEq)]
enum Target {
    Stream(u16),
    Udp(u16),
    Unix(PathBuf),
}

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
        let mut line = client.command.clone();
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

/// Shell words, quotes removed (enough for the examples: no escapes).
fn words(line: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut word = String::new();
    let (mut quote, mut any) = (None, false);
    for c in line.chars() {
        match (quote, c) {
            (None, '\'' | '"') => (quote, any) = (Some(c), true),
            (Some(q), c) if c == q => quote = None,
            (None, c) if c.is_whitespace() => {
                if any {
                    out.push(std::mem::take(&mut word));
                    any = false;
                }
            }
            (_, c) => {
                word.push(c);
                any = true;
            }
        }
    }
    if any {
        out.push(word);
    }
    out
}

/// The program of each stage of a command line (`|`, `&&`, `;`), after any
/// `NAME=value` assignments.
fn stages(line: &str) -> Vec<Vec<String>> {
    let mut all = Vec::new();
    let mut stage = Vec::new();
    for w in words(line) {
        if ["|", "&&", "||", ";"].contains(&w.as_str()) {
            all.push(std::mem::take(&mut stage));
        } else if !(stage.is_empty() && w.contains('=') && !w.starts_with('-')) {
            stage.push(w);
        }
    }
    all.push(stage);
    all.retain(|s| !s.is_empty());
    all
}

/// The address a client example talks to; `None` when it needs no server.
fn target(line: &str) -> Option<Target> {
    for stage in stages(line) {
        let program = stage[0].as_str();
        if program == "echo-bench" && stage.get(1).is_some_and(|w| w == "merge") {
            return None;
        }
        if program == "curl" {
            let url = stage.iter().find(|w| w.starts_with("http://"))?;
            let hostport = url.trim_start_matches("http://").split('/').next()?;
            return to_target(&hostport.parse().ok()?);
        }
        if program == "echo-client" || program == "echo-bench" {
            let addr = flag_values(&stage, &["-c", "--connect"], program == "echo-bench")
                .pop()
                .unwrap_or_else(|| echoes::addr::DEFAULT_ADDR.to_string());
            return to_target(&addr.parse().ok()?);
        }
    }
    None
}

/// What a server example listens on.
fn serves(line: &str) -> Vec<Target> {
    let stage = &stages(line)[0];
    let mut addrs = flag_values(stage, &["-l", "--listen"], false);
    if addrs.is_empty() {
        addrs.push(echoes::addr::DEFAULT_ADDR.to_string());
    }
    addrs.extend(flag_values(stage, &["--metrics"], false));
    addrs
        .iter()
        .filter_map(|a| to_target(&a.parse::<echoes::server::ListenAddr>().ok()?.addr))
        .collect()
}

/// The values of `flags` in a stage (`-c X`, `--connect X`, `--connect=X`);
/// `long_only` leaves `-c` out (echo-bench's `-c` is a count).
fn flag_values(stage: &[String], flags: &[&str], long_only: bool) -> Vec<String> {
    let mut out = Vec::new();
    for (i, w) in stage.iter().enumerate() {
        for f in flags.iter().filter(|f| !long_only || f.starts_with("--")) {
            if w == f {
                out.extend(stage.get(i + 1).cloned());
            } else if let Some(v) = w.strip_prefix(&format!("{f}=")) {
                out.push(v.to_string());
            }
        }
    }
    out
}

fn to_target(addr: &Addr) -> Option<Target> {
    Some(match addr {
        Addr::Unix(p) => Target::Unix(p.clone()),
        Addr::Inet {
            transport: Transport::Udp,
            port,
            ..
        } => Target::Udp(*port),
        Addr::Inet { port, .. } | Addr::Web { port, .. } => Target::Stream(*port),
    })
}

/// Every example, paired with its server, and the problems found (an
/// example this file cannot run, or one with no server before it).
fn sessions() -> (Vec<Session>, Vec<String>) {
    let mut problems = Vec::new();
    let readme =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md")).unwrap();
    let mut lanes = vec![readme_examples(&readme, &mut problems)];
    for bin in [SERVER, support::CLIENT, env!("CARGO_BIN_EXE_echo-bench")] {
        let help = Command::new(bin)
            .arg("--help")
            .stderr(Stdio::null())
            .output()
            .unwrap();
        let name = Path::new(bin)
            .file_name()
            .unwrap()
            .to_string_lossy()
            .into_owned();
        let lane = lanes.len();
        lanes.push(help_examples(
            &String::from_utf8_lossy(&help.stdout),
            &name,
            lane,
        ));
    }
    let readme_servers: Vec<Example> = lanes[0]
        .iter()
        .filter(|e| e.kind == Kind::Server)
        .cloned()
        .collect();
    let mut sessions = Vec::new();
    for examples in &lanes {
        let mut servers: Vec<&Example> = Vec::new();
        for e in examples {
            if e.kind == Kind::Server {
                servers.push(e);
                sessions.push(Session {
                    server: Some(e.clone()),
                    client: None,
                });
                continue;
            }
            let Some(t) = target(&e.command) else {
                sessions.push(Session {
                    server: None,
                    client: Some(e.clone()),
                });
                continue;
            };
            // The latest server line before it that serves its target;
            // for a help text, then the README's.
            let found = servers.iter().rev().copied().chain(if e.lane > 0 {
                readme_servers.iter().rev().collect::<Vec<_>>()
            } else {
                Vec::new()
            });
            let fits = |s: &&Example| serves(&s.command).contains(&t) && proxy_fits(e, s);
            match found.into_iter().find(fits) {
                Some(s) => sessions.push(Session {
                    server: Some(s.clone()),
                    client: Some(e.clone()),
                }),
                None => problems.push(format!(
                    "{}: `{}`: no server line before it serves {t:?}",
                    e.origin, e.command
                )),
            }
        }
    }
    (sessions, problems)
}

/// Whether a client and a server agree on the PROXY protocol: a client
/// that sends a header needs a server that reads one, and one that sends
/// none a server that does not require it on every listener.
fn proxy_fits(client: &Example, server: &Example) -> bool {
    let required = server.command.contains("--proxy-protocol");
    if client.command.contains("--proxy-protocol") {
        required || server.command.contains("?proxy=")
    } else {
        !required
    }
}

/// The README's examples, in order (see the module documentation).
fn readme_examples(text: &str, problems: &mut Vec<String>) -> Vec<Example> {
    let mut out = Vec::new();
    let mut block: Option<(bool, Vec<(usize, String)>)> = None;
    for (n, line) in text.lines().enumerate() {
        if let Some(info) = line.trim_start().strip_prefix("```") {
            match block.take() {
                None => {
                    block = Some((
                        ["", "sh", "bash", "console", "shell"].contains(&info.trim()),
                        Vec::new(),
                    ))
                }
                Some((true, lines)) => out.extend(block_examples(&lines, problems)),
                Some((false, _)) => {}
            }
            continue;
        }
        if let Some((_, lines)) = block.as_mut() {
            lines.push((n + 1, line.to_string()));
        }
    }
    out
}

/// The examples of one code block; none when one of its commands is not
/// run here.
fn block_examples(lines: &[(usize, String)], problems: &mut Vec<String>) -> Vec<Example> {
    let prompted = lines.iter().any(|(_, l)| l.starts_with("$ "));
    let mut out = Vec::new();
    for (n, raw) in lines {
        let line = if prompted {
            match raw.strip_prefix("$ ") {
                Some(l) => l,
                None => continue,
            }
        } else {
            raw.as_str()
        };
        let command = strip_comment(line);
        let Some(first) = stages(&command).first().map(|s| s[0].clone()) else {
            continue;
        };
        let looks_like_program = first
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_./-".contains(c));
        if !looks_like_program {
            continue; // output, not a command
        }
        let origin = format!("README.md:{n}");
        match classify(&command) {
            Some(kind) => out.push(Example {
                origin,
                lane: 0,
                command,
                kind,
            }),
            None if NOT_RUN.iter().any(|(p, _)| *p == first) => return Vec::new(),
            None => problems.push(format!(
                "{origin}: `{command}`: `{first}` is neither run here nor listed in NOT_RUN \
                 (tests/package/examples.rs)"
            )),
        }
    }
    out
}

fn strip_comment(line: &str) -> String {
    let cut = line
        .char_indices()
        .find(|&(i, c)| c == '#' && (i == 0 || line[..i].ends_with(char::is_whitespace)))
        .map_or(line.len(), |(i, _)| i);
    line[..cut].trim().to_string()
}

fn classify(command: &str) -> Option<Kind> {
    let stages = stages(command);
    if stages.iter().any(|s| CLIENTS.contains(&s[0].as_str())) {
        return Some(Kind::Client);
    }
    if NOT_RUN.iter().any(|(p, _)| stages[0][0] == *p) {
        return None;
    }
    stages[0]
        .iter()
        .any(|w| w == "echo-server")
        .then_some(Kind::Server)
}

/// A help text's examples, in order.
fn help_examples(help: &str, name: &str, lane: usize) -> Vec<Example> {
    let Some(at) = help.find("Examples:") else {
        return Vec::new();
    };
    help[at..]
        .lines()
        .map(str::trim)
        .filter(|l| !l.starts_with('#'))
        .filter(|l| {
            l.split(" | ").any(|s| {
                ["echo-server", "echo-client", "echo-bench"]
                    .contains(&s.split_whitespace().next().unwrap_or(""))
            })
        })
        .filter_map(|l| {
            let command = l.split("  ").next().unwrap_or(l).trim().to_string();
            let kind = classify(&command)?;
            Some(Example {
                origin: format!("{name} --help"),
                lane,
                command,
                kind,
            })
        })
        .collect()
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
fn examples_are_found_and_paired() {
    let (sessions, _) = sessions();
    let find = |needle: &str| {
        sessions
            .iter()
            .find(|s| {
                s.client
                    .as_ref()
                    .is_some_and(|c| c.command.contains(needle))
            })
            .unwrap_or_else(|| panic!("no example with {needle}"))
    };
    // The Tour's bench line is served by a TCP line of the Tour.
    let tour = find("--rate 5000");
    assert!(serves(&tour.server.as_ref().unwrap().command).contains(&Target::Stream(7)));
    // A help example falls back on the README's server lines.
    let udp = find("-s 512 --timeout 200ms");
    assert!(udp.server.as_ref().unwrap().origin.starts_with("README.md"));
    assert_eq!(words("A=\"x y\" b 'c d'"), ["A=x y", "b", "c d"]);
    assert_eq!(
        strip_comment("echo-bench -c 1   # a # b"),
        "echo-bench -c 1"
    );
    assert_eq!(target("echo-bench merge *.hlog"), None);
    assert_eq!(
        target("curl -s http://127.0.0.1:9107/metrics"),
        Some(Target::Stream(9107))
    );
}
