//! A real browser: Debian's Chromium, headless, driven by Playwright
//! (`tests/browser/check.mjs`), opens the WebSocket test page at
//! `/.well-known/echoes` over `http://` and over `https://` with a
//! self-signed certificate, and must see `100 of 100 echoes checked`.
//! Over `https://` Chromium loads the page over HTTP/2 and opens the
//! WebSocket on the same connection, with an extended CONNECT (RFC 8441).
//! Screenshots go to `target/tmp/browser/`.
//!
//! `.ci/install` installs Chromium and Node.js (Debian packages) and the
//! pinned `playwright-core` (`npm ci` in `tests/browser`).

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use crate::support::*;

/// Runs the page check on `url`; returns the page's final status line.
fn check_page(url: &str, screenshot: &Path) -> String {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/browser");
    assert!(
        dir.join("node_modules/playwright-core").exists(),
        "playwright-core is not installed: run .ci/install (npm ci in tests/browser)"
    );
    let chromium = std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
    assert!(
        Path::new(&chromium).exists(),
        "no Chromium at {chromium}: run .ci/install (Debian package chromium)"
    );
    let out = run(
        Command::new("node")
            .arg(dir.join("check.mjs"))
            .arg(url)
            .arg(screenshot)
            .current_dir(&dir),
        b"",
        Duration::from_secs(120),
    );
    let status = String::from_utf8_lossy(&out.stdout).trim().to_string();
    assert!(
        out.status.success(),
        "the page on {url} did not finish: {status:?} ({:?})\n{}",
        out.status,
        out.stderr
    );
    let png = std::fs::read(screenshot).expect("a screenshot");
    assert!(png.starts_with(b"\x89PNG"), "the screenshot is not a PNG");
    status
}

#[test]
#[cfg_attr(
    not(has_browser),
    ignore = "needs Chromium and Playwright: run .ci/install (Debian chromium, npm ci in tests/browser)"
)]
fn chromium_checks_100_echoes_over_http_and_https() {
    let shots = Path::new(env!("CARGO_TARGET_TMPDIR")).join("browser");
    std::fs::create_dir_all(&shots).unwrap();
    let server = ServerProc::start(&[
        "-l",
        "http://127.0.0.1:0",
        "-l",
        "https://localhost:0",
        "--tls-self-signed",
        "-v",
    ]);
    let https_line = server.wait_for_line("starting up on https://", Duration::from_secs(5));
    let https_port: u16 = https_line
        .rsplit("port ")
        .next()
        .and_then(|p| p.trim().parse().ok())
        .unwrap_or_else(|| panic!("no port in {https_line:?}"));

    let http = format!("http://127.0.0.1:{}/.well-known/echoes", server.port);
    assert_eq!(
        check_page(&http, &shots.join("http.png")),
        "100 of 100 echoes checked"
    );

    let https = format!("https://localhost:{https_port}/.well-known/echoes");
    assert_eq!(
        check_page(&https, &shots.join("https.png")),
        "100 of 100 echoes checked"
    );
    // Chromium spoke HTTP/2 to the page's origin, so the WebSocket went
    // over that connection: RFC 8441's extended CONNECT, answered 200.
    assert_eq!(
        server.count_lines(&format!("CONNECT {https} HTTP/2.0: 200 OK")),
        1,
        "no WebSocket over HTTP/2 in the log:\n{}",
        server.lines_with("websocket").join("\n")
    );
    assert_eq!(
        server.count_lines("GET /.well-known/echoes HTTP/1.1: 101 Switching Protocols"),
        1,
        "no WebSocket over HTTP/1.1 in the log"
    );
}
