//! What the `echo-bench` tests share: running the binary with a bound on
//! its time, reading its JSON report, and an in-process `echoes::Server`.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::process::{Command, Output, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use echoes::Addr;
use serde_json::Value;

/// Runs `echo-bench` with `args`; kills it if it runs past 20 s.
/// The keys every `--json` report has, whatever the transport (README,
/// "echo-bench"; the library's own unit test checks the same list).
pub const REPORT_KEYS: [&str; 14] = [
    "mode",
    "connections",
    "size",
    "seconds",
    "messages",
    "msgs_per_sec",
    "mb_per_sec",
    "p50_us",
    "p90_us",
    "p99_us",
    "p999_us",
    "max_us",
    "errors",
    "error_kinds",
];

pub fn bench(args: &[&str]) -> Output {
    finish(spawn_bench(args), args)
}

/// Starts `echo-bench` with `args`, its output piped, for [`finish`].
pub fn spawn_bench(args: &[&str]) -> std::process::Child {
    Command::new(env!("CARGO_BIN_EXE_echo-bench"))
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// Waits for a spawned `echo-bench`, killing it if it runs past 20 s.
pub fn finish(mut child: std::process::Child, args: &[&str]) -> Output {
    let deadline = Instant::now() + Duration::from_secs(20);
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("echo-bench {args:?} ran past 20 s");
        }
        thread::sleep(Duration::from_millis(20));
    }
    child.wait_with_output().unwrap()
}

/// The JSON report: the last line of standard output.
pub fn json(out: &Output) -> Value {
    let stdout = String::from_utf8_lossy(&out.stdout);
    let last = stdout.lines().last().unwrap_or_default();
    serde_json::from_str(last).unwrap_or_else(|e| {
        panic!(
            "not JSON ({e}): {stdout:?}\nstderr: {}",
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

pub fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// An in-process `echoes::Server` on its own thread and runtime, stopped
/// when dropped.
pub struct RealServer {
    /// Every address it listens on, in the order given.
    pub addrs: Vec<Addr>,
    shutdown: echoes::ShutdownHandle,
    thread: Option<thread::JoinHandle<()>>,
}

impl RealServer {
    /// A plain TCP server on 127.0.0.1.
    pub fn start() -> RealServer {
        RealServer::with(echoes::ServerConfig::new("127.0.0.1:0".parse().unwrap()))
    }

    pub fn with(config: echoes::ServerConfig) -> RealServer {
        let (tx, rx) = std::sync::mpsc::channel();
        let thread = thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async {
                let server = echoes::Server::bind(config).await.unwrap();
                tx.send((server.local_addrs(), server.shutdown_handle()))
                    .unwrap();
                server.run().await.unwrap();
            });
        });
        let (addrs, shutdown) = rx.recv().unwrap();
        RealServer {
            addrs,
            shutdown,
            thread: Some(thread),
        }
    }

    /// The first TCP listener's socket address.
    pub fn tcp(&self) -> SocketAddr {
        self.addrs
            .iter()
            .find_map(|a| match a {
                Addr::Inet {
                    transport: echoes::Transport::Tcp,
                    host,
                    port,
                } => Some(SocketAddr::new(host.parse().unwrap(), *port)),
                _ => None,
            })
            .expect("a TCP listener")
    }
}

impl Drop for RealServer {
    fn drop(&mut self) {
        self.shutdown.shutdown();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Runs the bench against `url` for 300 ms after 50 ms of warm-up, with
/// `extra`; returns the JSON report and the whole output.
pub fn short_run(url: &str, extra: &[&str]) -> (Value, Output) {
    let mut args = vec![
        "--connect",
        url,
        "-d",
        "300ms",
        "--warmup",
        "50ms",
        "--json",
    ];
    args.extend_from_slice(extra);
    let out = bench(&args);
    (json(&out), out)
}

/// As [`short_run`], and the run must have had no error and some messages.
pub fn short_run_ok(url: &str, extra: &[&str]) -> Value {
    let (report, out) = short_run(url, extra);
    assert!(out.status.success(), "{extra:?}: {}", stderr(&out));
    assert_eq!(report["errors"], 0, "{extra:?}: {report}");
    assert!(report["messages"].as_u64().unwrap() > 0, "{report}");
    report
}
