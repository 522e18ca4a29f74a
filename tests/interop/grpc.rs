//! gRPC on `http://` and `https://` listeners against a client others
//! wrote: Python grpcio runs every call shape of `grpc.testing.TestService`
//! with gRPC's interop behaviours, fortio's Ping, health Check and Watch
//! across a flip, and server reflection (`grpc_peer.py`, beside this file).
//! The packages come from .ci/requirements.txt.

use std::path::Path;
use std::time::Duration;

use crate::support::http::python3;
use crate::support::ws::Pki;
use crate::support::*;

/// The Python peer, given the target, the server's `.proto` files, the
/// base URL of its HTTP side (for the health flip) and a CA to trust.
fn grpc_peer(target: &str, http_base: &str, ca: Option<&Path>) {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/interop/grpc_peer.py");
    let protos = Path::new(env!("CARGO_MANIFEST_DIR")).join("proto");
    let mut cmd = python3();
    cmd.arg(&script).arg(target).arg(&protos).arg(http_base);
    if let Some(ca) = ca {
        cmd.arg(ca);
    }
    let out = run(&mut cmd, b"", Duration::from_secs(120));
    assert!(
        out.status.success() && out.stdout == b"ok\n",
        "grpc_peer.py on {target}: {:?}\n{}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        out.stderr
    );
}

#[test]
#[cfg_attr(
    not(all(has_py_grpc_tools, has_py_grpc_health, has_py_grpc_reflection)),
    ignore = "needs Python's grpcio, grpcio-tools, grpcio-health-checking and grpcio-reflection: run .ci/install (pip install -r .ci/requirements.txt)"
)]
fn grpcio_runs_every_call_shape_health_and_reflection_over_h2c() {
    let server = ServerProc::start(&["-l", "http://127.0.0.1:0", "--name", "grpc-peer-test"]);
    let target = format!("127.0.0.1:{}", server.port);
    grpc_peer(&target, &format!("http://{target}"), None);
}

#[test]
#[cfg_attr(
    not(all(has_py_grpc_tools, has_py_grpc_health, has_py_grpc_reflection)),
    ignore = "needs Python's grpcio, grpcio-tools, grpcio-health-checking and grpcio-reflection: run .ci/install (pip install -r .ci/requirements.txt)"
)]
fn grpcio_runs_every_call_shape_over_tls_with_alpn_h2() {
    let pki = Pki::new();
    let server = ServerProc::start(&[
        "-l",
        "https://127.0.0.1:0",
        "--tls-cert",
        &pki.arg("server.pem"),
        "--tls-key",
        &pki.arg("server.key"),
        "--name",
        "grpc-peer-test",
    ]);
    let target = format!("127.0.0.1:{}", server.port);
    grpc_peer(
        &target,
        &format!("https://{target}"),
        Some(&pki.path("ca.pem")),
    );
}
