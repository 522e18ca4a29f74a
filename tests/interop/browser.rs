//! A real browser: Debian's Chromium, headless, driven by Playwright
//! (`tests/browser/check.mjs`), opens the WebSocket test page at
//! `/.well-known/echoes` over `http://` and over `https://` with a
//! self-signed certificate, and must see `100 of 100 echoes checked`.
//! Over `https://` Chromium loads the page over HTTP/2 and opens the
//! WebSocket on the same connection, with an extended CONNECT (RFC 8441).
//!
//! What a user sees is checked too: every message the page sends is the
//! size asked for in bytes (UTF-8, counted as Chromium sends it) up to the
//! server's WebSocket limit, and a larger size is said to be capped; "Run
//! again" clears the old result at once; the chart's max is the table's
//! slowest; the chart is drawn for its real size and pixel ratio (also
//! after a resize); and at a phone's 390 px no figure wraps.
//! Screenshots (900 px, 390 px, 390 px at a device scale factor of 3) go
//! to `target/tmp/browser/`.
//!
//! `.ci/install` installs Chromium and Node.js (Debian packages) and the
//! pinned `playwright-core` (`npm ci` in `tests/browser`).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use serde_json::{Value, json};

use crate::support::*;

/// Where the screenshots go (`target/tmp/browser/`).
fn shots() -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("browser");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Opens the page once for each of `runs` (see `check.mjs` for their
/// form) in one browser; returns what each saw.
fn check_pages(runs: &[Value]) -> Vec<Value> {
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
    let spec = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(spec.path(), Value::from(runs.to_vec()).to_string()).unwrap();
    let out = run(
        Command::new("node")
            .arg(dir.join("check.mjs"))
            .arg(spec.path())
            .current_dir(&dir),
        b"",
        Duration::from_secs(240),
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "the browser did not get through the page ({:?}): {stdout}\n{}",
        out.status,
        out.stderr
    );
    let reports: Vec<Value> = serde_json::from_str(stdout.trim())
        .unwrap_or_else(|e| panic!("check.mjs printed no report ({e}): {stdout}"));
    assert_eq!(reports.len(), runs.len());
    for run in runs {
        let png = std::fs::read(run["screenshot"].as_str().unwrap()).expect("a screenshot");
        assert!(png.starts_with(b"\x89PNG"), "the screenshot is not a PNG");
    }
    reports
}

/// One run of the page at `url`, `width` CSS pixels wide at `scale`
/// device pixels a CSS pixel, its screenshot `shot` in [`shots`].
fn page_run(url: &str, shot: &str, width: u32, scale: u32) -> Value {
    json!({
        "url": url,
        "screenshot": shots().join(shot),
        "width": width,
        "height": 800,
        "scale": scale,
    })
}

/// The page ended with `status`, done.
fn assert_done(report: &Value, status: &str) {
    assert_eq!(report["status"], status, "{report:#}");
    assert_eq!(report["state"], "done", "{report:#}");
}

/// The chart's "max" label was the table's slowest whenever both showed.
fn assert_chart_is_table(report: &Value) {
    assert_eq!(
        report["chartVsTable"],
        json!([]),
        "the chart's max and the table's slowest disagreed (chart, table)"
    );
    assert!(
        report["compared"].as_u64() > Some(0),
        "the chart never showed its max: {report:#}"
    );
}

/// `canvas` is backed by its CSS size times the device pixel ratio.
fn assert_sharp(canvas: &Value) {
    let dpr = canvas["dpr"].as_f64().unwrap();
    for (backing, css) in [("width", "cssWidth"), ("height", "cssHeight")] {
        let want = canvas[css].as_f64().unwrap() * dpr;
        let got = canvas[backing].as_f64().unwrap();
        assert!(
            (got - want).abs() <= 1.0,
            "the chart's canvas is {got} device pixels for {want} ({css} × {dpr}): \
             stretched or blurry: {canvas}"
        );
    }
}

/// No figure of the table, nor its label, takes more than one line, and
/// the page does not scroll sideways.
fn assert_one_line(report: &Value) {
    let cells = report["cells"].as_array().unwrap();
    assert_eq!(cells.len(), 12, "six figures and their labels: {report:#}");
    for cell in cells {
        let height = cell["height"].as_f64().unwrap();
        let line = cell["lineHeight"].as_f64().unwrap();
        assert!(
            cell["lines"] == 1 && height < 1.5 * line,
            "{} wraps: {:?} is {height} px high, one line is {line} px",
            cell["id"],
            cell["text"]
        );
    }
    assert_eq!(report["overflow"], false, "the page scrolls sideways");
}

#[test]
#[cfg_attr(
    not(has_browser),
    ignore = "needs Chromium and Playwright: run .ci/install (Debian chromium, npm ci in tests/browser)"
)]
fn chromium_checks_100_echoes_over_http_and_https() {
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
    let https = format!("https://localhost:{https_port}/.well-known/echoes");
    let mut first = page_run(&http, "http.png", 900, 1);
    first["again"] = json!(true);
    let reports = check_pages(&[first, page_run(&https, "https.png", 900, 1)]);
    for report in &reports {
        assert_done(report, "100 of 100 echoes checked");
        assert_chart_is_table(report);
        assert_sharp(&report["canvas"]);
    }

    // "Run again" takes the old result down before the new socket opens.
    let clicked = &reports[0]["afterClick"];
    assert_eq!(clicked["state"], "running", "{clicked}");
    assert!(
        !clicked["status"].as_str().unwrap().contains("100 of 100"),
        "the old result stays up: {clicked}"
    );
    assert_eq!(clicked["checked"], "0 of 100", "{clicked}");
    assert_eq!(clicked["max"], "–", "the old slowest stays up: {clicked}");
    assert_eq!(
        clicked["chartInkedPixels"], 0,
        "the old chart stays up: {clicked}"
    );
    assert_eq!(reports[0]["again"]["status"], "100 of 100 echoes checked");

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
        2,
        "not two WebSockets over HTTP/1.1 (a run and its rerun) in the log"
    );
}

#[test]
#[cfg_attr(
    not(has_browser),
    ignore = "needs Chromium and Playwright: run .ci/install (Debian chromium, npm ci in tests/browser)"
)]
fn the_page_fits_a_phone_and_a_sharp_screen() {
    let server = ServerProc::start(&["-l", "http://127.0.0.1:0"]);
    let url = format!(
        "http://127.0.0.1:{}/.well-known/echoes?count=1000",
        server.port
    );
    let mut narrow = page_run(&url, "phone.png", 390, 1);
    narrow["resize"] = json!({ "width": 700, "height": 800 });
    let reports = check_pages(&[narrow, page_run(&url, "phone-dpr3.png", 390, 3)]);
    for report in &reports {
        assert_done(report, "1000 of 1000 echoes checked");
        assert_one_line(report);
        assert_chart_is_table(report);
        assert_sharp(&report["canvas"]);
    }
    assert_eq!(reports[1]["canvas"]["dpr"], 3);
    // Drawn again for its new size when the window is resized.
    let resized = &reports[0]["resized"];
    assert!(
        resized["cssWidth"].as_f64() > reports[0]["canvas"]["cssWidth"].as_f64(),
        "the chart did not grow with the window: {resized}"
    );
    assert_sharp(resized);
}

/// Every message sent was `size` bytes, and there were `count`.
fn assert_sent(report: &Value, count: usize, size: u64) {
    let sent: Vec<u64> = report["sent"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n.as_u64().unwrap())
        .collect();
    assert_eq!(sent.len(), count, "messages sent: {sent:?}");
    assert!(
        sent.iter().all(|&n| n == size),
        "asked for {size} bytes a message, sent {sent:?}"
    );
}

#[test]
#[cfg_attr(
    not(has_browser),
    ignore = "needs Chromium and Playwright: run .ci/install (Debian chromium, npm ci in tests/browser)"
)]
fn the_page_sends_the_size_asked_for_in_bytes_up_to_the_servers_limit() {
    let roomy = ServerProc::start(&["-l", "http://127.0.0.1:0"]);
    // Text messages hold é, € and 😀 (2, 3 and 4 bytes in UTF-8): sizes
    // that end inside one, one smaller than the page's own prefix, and
    // one over the old page's silent 1 MiB cap.
    let sizes: [u64; 5] = [1, 7, 64, 4099, (3 << 19) + 3];
    let runs: Vec<Value> = sizes
        .iter()
        .map(|size| {
            let url = format!(
                "http://127.0.0.1:{}/.well-known/echoes?count=6&size={size}",
                roomy.port
            );
            page_run(&url, &format!("size-{size}.png"), 900, 1)
        })
        .collect();
    // A server that takes 2 MiB messages, but at most 1 MiB a frame (a
    // browser may send a message as one frame), asked for 3 MiB.
    let tight = ServerProc::start(&[
        "-l",
        "http://127.0.0.1:0",
        "--ws-max-message",
        "2MiB",
        "--ws-max-frame",
        "1MiB",
    ]);
    let over = format!(
        "http://127.0.0.1:{}/.well-known/echoes?count=4&size=3MiB",
        tight.port
    );
    let mut all = runs;
    all.push(page_run(&over, "size-over-limit.png", 900, 1));
    let reports = check_pages(&all);

    for (size, report) in sizes.iter().zip(&reports) {
        assert_done(report, "6 of 6 echoes checked");
        assert_sent(report, 6, *size);
    }
    let capped = &reports[sizes.len()];
    assert_eq!(capped["state"], "done", "{capped:#}");
    assert_sent(capped, 4, 1 << 20);
    assert_eq!(
        capped["status"],
        "4 of 4 echoes checked, of 1MiB each, not the 3MiB asked for \
         (the server's --ws-max-frame)",
        "a capped run is said to be capped"
    );
}
