//! The L7 path through the proxies people put in front of a backend:
//! `echo-bench` loads `echo-server` through nginx (`proxy_pass` for
//! HTTP/1.1 and h2, `grpc_pass` for gRPC) and HAProxy (`mode http`, h2 to
//! the backend for h2 and gRPC), every response body or payload checked:
//! the runs must end with messages and no error at all, so the proxy
//! changed no byte and lost no request.

use crate::support::bench::{bench, json, stderr};
use crate::support::proxies::{haproxy, nginx};
use crate::support::{ServerProc, free_port};

/// A 400 ms run against `url` with `extra`, which must have messages and
/// no error. (How many is not the point, and varies: in one CI run, h2
/// echoes through HAProxy took 150 to 350 ms each.)
fn loads_cleanly(what: &str, url: &str, extra: &[&str]) {
    let mut args = vec![
        "--connect",
        url,
        "-c",
        "4",
        "-d",
        "400ms",
        "--warmup",
        "100ms",
        "--json",
    ];
    args.extend_from_slice(extra);
    let out = bench(&args);
    assert!(out.status.success(), "{what}: {}", stderr(&out));
    let report = json(&out);
    assert_eq!(report["errors"], 0, "{what}: {report}");
    assert!(
        report["messages"].as_u64().unwrap() > 10,
        "{what}: {report}"
    );
}

#[test]
#[cfg_attr(
    not(has_nginx),
    ignore = "needs nginx: run .ci/install (Debian packages nginx, libnginx-mod-stream)"
)]
fn nginx_proxy_pass_and_grpc_pass_change_no_byte() {
    let server = ServerProc::start(&["-l", "http://127.0.0.1:0"]);
    let (h1, h2) = (free_port(), free_port());
    let _nginx = nginx(
        &format!(
            "http {{
  access_log off;
  client_body_temp_path {{dir}}/body;
  proxy_temp_path {{dir}}/proxy;
  upstream echo {{
    server 127.0.0.1:{echo};
    keepalive 16;
  }}
  server {{
    listen 127.0.0.1:{h1};
    location / {{
      proxy_pass http://echo;
      proxy_http_version 1.1;
      proxy_set_header Connection \"\";
    }}
  }}
  server {{
    listen 127.0.0.1:{h2} http2;
    location /grpc.testing.TestService/ {{
      grpc_pass grpc://127.0.0.1:{echo};
    }}
    location / {{
      proxy_pass http://echo;
      proxy_http_version 1.1;
      proxy_set_header Connection \"\";
    }}
  }}
}}
",
            echo = server.port
        ),
        &[h1, h2],
    );
    let (h1, h2) = (
        format!("http://127.0.0.1:{h1}/"),
        format!("http://127.0.0.1:{h2}/"),
    );
    loads_cleanly("nginx, HTTP/1.1 echo", &h1, &["-s", "4KiB"]);
    loads_cleanly(
        "nginx, HTTP/1.1 size",
        &h1,
        &["--http-request", "size", "-s", "64KiB"],
    );
    loads_cleanly(
        "nginx, h2 echo",
        &h2,
        &["--http2", "--pipeline", "4", "-s", "1KiB"],
    );
    loads_cleanly(
        "nginx grpc_pass",
        &h2,
        &["--grpc", "--pipeline", "4", "-s", "512"],
    );
}

#[test]
#[cfg_attr(
    not(has_haproxy),
    ignore = "needs HAProxy: run .ci/install (Debian package haproxy)"
)]
fn haproxy_mode_http_h1_h2_and_grpc_change_no_byte() {
    let server = ServerProc::start(&["-l", "http://127.0.0.1:0"]);
    let (h1, h2) = (free_port(), free_port());
    let config = format!(
        "global
  log stderr local0 err
defaults
  mode http
  timeout connect 5s
  timeout client 20s
  timeout server 20s
frontend h1
  bind 127.0.0.1:{h1}
  default_backend h1
backend h1
  http-reuse always
  server echo 127.0.0.1:{echo}
frontend h2
  # HTTP/1.1, or h2c with prior knowledge: HAProxy tells them apart.
  bind 127.0.0.1:{h2}
  default_backend h2
backend h2
  server echo 127.0.0.1:{echo} proto h2
",
        echo = server.port
    );
    let _haproxy = haproxy(&config, &[h1, h2]);
    let (h1, h2) = (
        format!("http://127.0.0.1:{h1}/"),
        format!("http://127.0.0.1:{h2}/"),
    );
    loads_cleanly("HAProxy, HTTP/1.1 echo", &h1, &["-s", "4KiB"]);
    loads_cleanly(
        "HAProxy, HTTP/1.1 size",
        &h1,
        &["--http-request", "size", "-s", "64KiB"],
    );
    loads_cleanly(
        "HAProxy, h2 echo",
        &h2,
        &["--http2", "--pipeline", "4", "-s", "1KiB"],
    );
    loads_cleanly(
        "HAProxy, gRPC over h2",
        &h2,
        &["--grpc", "--pipeline", "4", "-s", "512"],
    );
    // Churn through it too: a connection per request.
    loads_cleanly("HAProxy, HTTP/1.1 churn", &h1, &["-m", "churn"]);
}
