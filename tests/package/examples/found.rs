//! Finding the examples and pairing each client with its server line:
//! the rules are in the parent module's documentation.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::support;
use crate::support::SERVER;
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

#[derive(Debug, Clone, PartialEq)]
pub(super) enum Kind {
    Server,
    Client,
}

#[derive(Debug, Clone)]
pub(super) struct Example {
    /// Where it is written: `README.md:123` or `echo-bench --help`.
    pub(super) origin: String,
    /// 0 for the README, then one per binary's help.
    pub(super) lane: usize,
    pub(super) command: String,
    pub(super) kind: Kind,
}

/// One run: a server line alone, or a client with the server it needs.
#[derive(Debug, Clone)]
pub(super) struct Session {
    pub(super) server: Option<Example>,
    pub(super) client: Option<Example>,
}

/// What an address is served on, as far as matching goes.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Target {
    Stream(u16),
    Udp(u16),
    Unix(PathBuf),
}

/// Shell words, quotes removed (enough for the examples: no escapes).
pub(super) fn words(line: &str) -> Vec<String> {
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

/// The words that end a stage of a command line.
pub(super) const SEPARATORS: &[&str] = &["|", "&&", "||", ";"];

/// The program of each stage of a command line ([`SEPARATORS`]), after any
/// `NAME=value` assignments.
fn stages(line: &str) -> Vec<Vec<String>> {
    let mut all = Vec::new();
    let mut stage = Vec::new();
    for w in words(line) {
        if SEPARATORS.contains(&w.as_str()) {
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
pub(super) fn target(line: &str) -> Option<Target> {
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
pub(super) fn serves(line: &str) -> Vec<Target> {
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
pub(super) fn sessions() -> (Vec<Session>, Vec<String>) {
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
