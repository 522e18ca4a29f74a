//! `echo-bench --grpc` (unary) and `--grpc duplex` against a real
//! `echo-server` (h2c and TLS, streams, churn, open loop, the server's
//! `grpc` counters agreeing), and against a `grpc.testing.TestService`
//! server others wrote: Python grpcio, run here as an honest server (no
//! error) and as one that lies (a flipped payload byte is a `mismatch`,
//! an UNAVAILABLE a `status` error).

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Stdio};
use std::time::Duration;

use crate::support::bench::{bench, short_run, short_run_ok, stderr};
use crate::support::http::{python3, server};
use crate::support::{sample, scrape};

/// `extra`, with `--grpc` at the end unless it says which (`--grpc=duplex`).
fn grpc_args<'a>(extra: &[&'a str]) -> Vec<&'a str> {
    let mut args = extra.to_vec();
    if !extra.iter().any(|a| a.starts_with("--grpc")) {
        args.push("--grpc");
    }
    args
}

/// The bench with `--grpc` against `url` for 300 ms ([`short_run`]).
fn run(url: &str, extra: &[&str]) -> (serde_json::Value, std::process::Output) {
    short_run(url, &grpc_args(extra))
}

/// As [`run`], without an error and with some messages.
fn run_ok(url: &str, extra: &[&str]) -> serde_json::Value {
    short_run_ok(url, &grpc_args(extra))
}

#[test]
fn grpc_calls_to_echo_server_over_h2c_and_tls() {
    let plain = server("http", &["--metrics", "127.0.0.1:0"]);
    let url = format!("http://127.0.0.1:{}/", plain.port);
    let report = run_ok(&url, &["-c", "2", "-s", "1KiB", "--pipeline", "4"]);
    assert_eq!(report["size"], 1024);
    run_ok(&url, &["-m", "churn", "-c", "2"]);
    run_ok(&url, &["--rate", "200", "-c", "2", "-s", "64"]);
    // The server counted the calls as gRPC, none of them an error.
    let line = plain.wait_for_line("serving metrics on", Duration::from_secs(5));
    let port: u16 = line
        .rsplit(':')
        .next()
        .unwrap()
        .trim_end_matches("/metrics")
        .parse()
        .unwrap();
    let page = scrape(port);
    assert!(
        sample(&page, "echoes_connections_total{transport=\"grpc\"}") > 0,
        "{page}"
    );
    assert_eq!(
        sample(&page, "echoes_connections_open{transport=\"grpc\"}"),
        0
    );
    assert_eq!(
        sample(
            &page,
            "echoes_errors_total{transport=\"grpc\",kind=\"protocol\"}"
        ),
        0
    );
    let tls = server("https", &["--tls-self-signed"]);
    run_ok(
        &format!("https://127.0.0.1:{}/", tls.port),
        &["-k", "-s", "16KiB"],
    );
}

#[test]
fn duplex_ping_pong_on_one_call_per_connection() {
    let s = server("http", &["--metrics", "127.0.0.1:0"]);
    let url = format!("http://127.0.0.1:{}/", s.port);
    let run_duplex = |extra: &[&str]| run_ok(&url, &[extra, &["--grpc=duplex"]].concat());
    run_duplex(&["-c", "2", "-s", "1KiB"]);
    run_duplex(&["-c", "2", "--pipeline", "8", "-s", "64"]);
    run_duplex(&["--rate", "200", "-c", "2"]);
    let churn = run_duplex(&["-m", "churn", "-c", "2"]);
    let line = s.wait_for_line("serving metrics on", Duration::from_secs(5));
    let port: u16 = line
        .rsplit(':')
        .next()
        .unwrap()
        .trim_end_matches("/metrics")
        .parse()
        .unwrap();
    let calls = || {
        sample(
            &scrape(port),
            "echoes_connections_total{transport=\"grpc\"}",
        )
    };
    // Churn makes a call per operation...
    assert!(
        calls() >= churn["messages"].as_u64().unwrap(),
        "{} calls",
        calls()
    );
    // ...ping-pong one per connection, whatever the messages.
    let before = calls();
    let report = run_duplex(&["-c", "1"]);
    let made = calls() - before;
    let messages = report["messages"].as_u64().unwrap();
    assert!(
        messages > 10 && made <= 2,
        "{made} calls for {messages} messages"
    );
}

#[test]
fn a_status_the_server_answers_is_counted_and_the_run_fails() {
    // A message over the server's --http-max-body: RESOURCE_EXHAUSTED.
    let s = server("http", &["--http-max-body", "1KiB"]);
    let (report, out) = run(&format!("http://127.0.0.1:{}/", s.port), &["-s", "4KiB"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(
        report["error_kinds"]["status"].as_u64().unwrap() > 0,
        "{report}"
    );
    let first = report["first_error"].as_str().unwrap();
    assert!(
        first.starts_with("gRPC status 8 for /grpc.testing.TestService/UnaryCall"),
        "{first}"
    );
}

#[test]
fn grpc_on_a_stream_transport_is_a_usage_error() {
    let out = bench(&["--connect", "127.0.0.1:7", "--grpc"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("--grpc applies to http:// and https:// only, not tcp://"),
        "{}",
        stderr(&out)
    );
}

/// A grpc.testing.TestService with UnaryCall only, in Python grpcio (the
/// messages from the server's own .proto files, through grpc_tools): it
/// answers as the interop descriptions say, unless told to lie: `flip`
/// sets payload byte 7 of every 5th answer to 1, `unavailable` fails
/// every 4th call with UNAVAILABLE. Prints its port.
const PY_SERVER: &str = r#"
import subprocess, sys, tempfile, threading
from concurrent import futures
import grpc
from google.protobuf import descriptor_pb2, message_factory
proto_dir, lie = sys.argv[1], sys.argv[2]
with tempfile.NamedTemporaryFile(suffix=".pb") as out:
    subprocess.run([sys.executable, "-m", "grpc_tools.protoc", "-I" + proto_dir,
                    "--include_imports", "--descriptor_set_out=" + out.name,
                    "grpc/testing/test.proto"], check=True)
    fds = descriptor_pb2.FileDescriptorSet.FromString(out.read())
M = message_factory.GetMessages(list(fds.file))
Req, Resp, Payload = (M["grpc.testing." + n] for n in ["SimpleRequest", "SimpleResponse", "Payload"])
count = [0]
lock = threading.Lock()
def unary(req, ctx):
    with lock:
        count[0] += 1
        n = count[0]
    if lie == "unavailable" and n % 4 == 0:
        ctx.abort(grpc.StatusCode.UNAVAILABLE, "draining")
    body = bytearray(req.response_size)
    if lie == "flip" and n % 5 == 0 and len(body) > 7:
        body[7] = 1
    assert len(req.payload.body) == req.response_size
    return Resp(payload=Payload(body=bytes(body)))
OutReq, OutResp = (M["grpc.testing." + n] for n in ["StreamingOutputCallRequest", "StreamingOutputCallResponse"])
def duplex(reqs, ctx):
    for i, req in enumerate(reqs, 1):
        for p in req.response_parameters:
            body = bytearray(p.size)
            if lie == "flip" and i % 5 == 0 and len(body) > 7:
                body[7] = 1
            yield OutResp(payload=Payload(body=bytes(body)))
handler = grpc.method_handlers_generic_handler("grpc.testing.TestService", {
    "UnaryCall": grpc.unary_unary_rpc_method_handler(
        unary, request_deserializer=Req.FromString, response_serializer=Resp.SerializeToString),
    "FullDuplexCall": grpc.stream_stream_rpc_method_handler(
        duplex, request_deserializer=OutReq.FromString, response_serializer=OutResp.SerializeToString)})
server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
server.add_generic_rpc_handlers((handler,))
port = server.add_insecure_port("127.0.0.1:0")
server.start()
print(port, flush=True)
server.wait_for_termination(timeout=120)
"#;

/// The Python server, killed when dropped.
struct PyServer(Child, u16);

impl PyServer {
    fn start(lie: &str) -> PyServer {
        let protos = Path::new(env!("CARGO_MANIFEST_DIR")).join("proto");
        let mut child = python3()
            .args(["-c", PY_SERVER])
            .arg(&protos)
            .arg(lie)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("python3");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let port = line
            .trim()
            .parse()
            .unwrap_or_else(|_| panic!("no port: {line:?}"));
        PyServer(child, port)
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}/", self.1)
    }
}

impl Drop for PyServer {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
#[cfg_attr(
    not(has_py_grpc_tools),
    ignore = "needs Python's grpcio and grpcio-tools: run .ci/install (pip install -r .ci/requirements.txt)"
)]
fn python_grpcio_servers_honest_and_lying() {
    let honest = PyServer::start("none");
    run_ok(&honest.url(), &["-c", "2", "-s", "512", "--pipeline", "2"]);
    let flip = PyServer::start("flip");
    let (report, out) = run(&flip.url(), &["-s", "64"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(
        report["error_kinds"]["mismatch"].as_u64().unwrap() > 0,
        "{report}"
    );
    let first = report["first_error"].as_str().unwrap();
    assert_eq!(
        first,
        "response mismatch at byte 7 of the payload: expected 0x00, got 0x01"
    );
    let unavailable = PyServer::start("unavailable");
    let (report, out) = run(&unavailable.url(), &["-s", "64"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let status = report["error_kinds"]["status"].as_u64().unwrap();
    let messages = report["messages"].as_u64().unwrap();
    // One call in four: the connection goes on after each.
    assert!(
        status > 0 && messages >= 2 * status,
        "{status} of {messages}: {report}"
    );
    let first = report["first_error"].as_str().unwrap();
    assert!(first.starts_with("gRPC status 14 for"), "{first}");
    assert!(first.contains("(draining)"), "{first}");
}
