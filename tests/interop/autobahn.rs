//! Autobahn|Testsuite's `fuzzingclient` against the WebSocket echo of an
//! `http://` listener: every case of sections 1 to 11 must be OK or
//! NON-STRICT (INFORMATIONAL cases say nothing either way), and the
//! compression cases of 12 and 13 OK or UNIMPLEMENTED (the server offers
//! no permessage-deflate).
//!
//! The suite runs on Python 2.7, in the virtualenv `.ci/install` makes
//! (`.ci/autobahn-venv`). No install step can give a machine Python 2.7,
//! so the test is `#[ignore]`d: `.ci/run` runs it where pyenv's 2.7.18 (or
//! `ECHOES_PYTHON27`) is, and counts it as not run elsewhere. Run by hand
//! without Python 2.7, or without the virtualenv, it fails and says why. The run's reports (HTML per case) are left
//! in `target/tmp/autobahn/`; its summary is written beside them, and the
//! summary of the run kept in the repository is `docs/autobahn/`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use crate::support;
use crate::support::*;

/// The grades a case may have in `section`.
fn acceptable(section: u32, behavior: &str) -> bool {
    match section {
        1..=11 => matches!(behavior, "OK" | "NON-STRICT" | "INFORMATIONAL"),
        _ => matches!(behavior, "OK" | "UNIMPLEMENTED" | "INFORMATIONAL"),
    }
}

fn python27() -> PathBuf {
    std::env::var_os("ECHOES_PYTHON27")
        .map(PathBuf::from)
        .or_else(|| {
            std::env::var_os("HOME")
                .map(|h| Path::new(&h).join(".pyenv/versions/2.7.18/bin/python"))
        })
        .unwrap_or_default()
}

#[test]
#[ignore = "needs Python 2.7 (pyenv 2.7.18): .ci/run runs it where there is one"]
fn autobahn_fuzzingclient_grades_the_websocket_echo() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let wstest = root.join(".ci/autobahn-venv/bin/wstest");
    if !wstest.exists() {
        assert!(
            python27().exists(),
            "Autobahn|Testsuite needs Python 2.7 (pyenv's 2.7.18, or ECHOES_PYTHON27), \
             and this machine has none"
        );
        panic!(
            "Python 2.7 is here but Autobahn|Testsuite is not installed: run .ci/install \
             (it makes {})",
            wstest.display()
        );
    }
    let server = support::http::server("ws", &[]);
    let out_dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("autobahn");
    let _ = std::fs::remove_dir_all(&out_dir);
    std::fs::create_dir_all(&out_dir).unwrap();
    let spec = serde_json::json!({
        "outdir": out_dir.join("reports"),
        "servers": [{"agent": "echoes", "url": format!("ws://127.0.0.1:{}", server.port)}],
        "cases": ["*"],
        "exclude-cases": [],
        "exclude-agent-cases": {},
    });
    let spec_path = out_dir.join("fuzzingclient.json");
    std::fs::write(&spec_path, spec.to_string()).unwrap();
    let run = run(
        Command::new(&wstest)
            .args(["-m", "fuzzingclient", "-s"])
            .arg(&spec_path)
            .current_dir(&out_dir),
        b"",
        Duration::from_secs(600),
    );
    assert!(
        run.status.success(),
        "wstest failed: {:?}\n{}",
        run.status,
        run.stderr
    );
    let index: serde_json::Value = serde_json::from_slice(
        &std::fs::read(out_dir.join("reports/index.json")).expect("wstest wrote index.json"),
    )
    .unwrap();
    let cases = index["echoes"]
        .as_object()
        .expect("results for agent echoes");
    let mut by_section: BTreeMap<u32, BTreeMap<String, u32>> = BTreeMap::new();
    let mut failed = Vec::new();
    for (case, result) in cases {
        let section: u32 = case.split('.').next().unwrap().parse().unwrap();
        let behavior = result["behavior"].as_str().unwrap().to_string();
        if !acceptable(section, &behavior) {
            failed.push(format!(
                "{case}: {behavior} (close: {})",
                result["behaviorClose"]
            ));
        }
        *by_section
            .entry(section)
            .or_default()
            .entry(behavior)
            .or_default() += 1;
    }
    let summary = serde_json::json!({
        "agent": "echoes",
        "suite": "autobahntestsuite 25.10.1, fuzzingclient, every case",
        "cases": cases.len(),
        "by_section": by_section,
    });
    std::fs::write(
        out_dir.join("summary.json"),
        serde_json::to_string_pretty(&summary).unwrap(),
    )
    .unwrap();
    eprintln!(
        "Autobahn|Testsuite: {} cases, {} not acceptable; {}",
        cases.len(),
        failed.len(),
        summary["by_section"]
    );
    assert!(cases.len() >= 500, "only {} cases ran", cases.len());
    assert!(
        failed.is_empty(),
        "cases graded badly:\n{}",
        failed.join("\n")
    );
}
