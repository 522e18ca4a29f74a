//! `echo-bench`'s own documentation: `--generate` (man page and shell
//! completions from the flag definitions), `--version` and `--help`.

use crate::support;
use crate::support::bench::{bench, stderr};

#[test]
#[cfg_attr(
    not(has_man),
    ignore = "needs man: run .ci/install (Debian package man-db)"
)]
fn generated_man_page_and_completions_are_real() {
    for kind in ["man", "complete-bash", "complete-zsh", "complete-fish"] {
        let out = bench(&["--generate", kind]);
        assert_eq!(out.status.code(), Some(0), "{kind}: {}", stderr(&out));
        let text = String::from_utf8(out.stdout).unwrap();
        // roff escapes dashes (`\-\-connect`), so look for the bare words.
        for word in ["connect", "save", "merge"] {
            assert!(text.contains(word), "{kind} does not mention {word}");
        }
        assert!(
            text.contains("echo-bench") || text.contains("echo\\-bench"),
            "{kind} does not name the program"
        );
    }
    let out = bench(&["--generate", "man"]);
    let text = support::render_man(&out.stdout, "echo-bench");
    for word in ["SYNOPSIS", "OPTIONS", "--save-hist", "SUBCOMMANDS", "merge"] {
        assert!(text.contains(word), "no {word} in:\n{text}");
    }
    // --generate stands alone.
    let out = bench(&["--generate", "man", "-c", "2"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
}

#[test]
fn version_and_help_say_what_it_is_and_how_to_use_it() {
    let out = bench(&["--version"]);
    assert_eq!(out.status.code(), Some(0));
    let version = String::from_utf8(out.stdout).unwrap();
    assert_eq!(
        version.trim(),
        format!("echo-bench {}", env!("CARGO_PKG_VERSION"))
    );

    let out = bench(&["--help"]);
    assert_eq!(out.status.code(), Some(0));
    let help = String::from_utf8(out.stdout).unwrap();
    for flag in [
        "--connect",
        "--rate",
        "--save-hist",
        "--tls-ca",
        "--insecure",
        "merge",
    ] {
        assert!(help.contains(flag), "--help does not mention {flag}");
    }
    let examples = &help[help.find("Examples:").expect("examples at the end")..];
    for example in [
        "echo-bench --connect 127.0.0.1:7 -c 50",
        "--rate 20000",
        "--plot",
        "udp://",
        "--save-hist",
        "echo-bench merge",
    ] {
        assert!(examples.contains(example), "no example with {example}");
    }
    // Every example line fits an 80-column terminal, unwrapped.
    for line in examples.lines() {
        assert!(line.len() <= 80, "too wide: {line:?}");
    }
}

/// Every binary's man page has EXIT STATUS, ENVIRONMENT and SIGNALS, keeps
/// its value names in the SYNOPSIS, and points at no page that nothing
/// generates (`echo-bench-merge(1)`).
#[test]
#[cfg_attr(
    not(has_man),
    ignore = "needs man: run .ci/install (Debian package man-db)"
)]
fn man_pages_say_exit_status_environment_signals_and_value_names() {
    let bins = [
        (support::SERVER, "[--read-size BYTES]"),
        (support::CLIENT, "[-c|--connect ADDR]"),
        (env!("CARGO_BIN_EXE_echo-bench"), "[-c|--connections N]"),
    ];
    for (bin, synopsis) in bins {
        let name = std::path::Path::new(bin)
            .file_name()
            .unwrap()
            .to_str()
            .unwrap();
        let out = std::process::Command::new(bin)
            .args(["--generate", "man"])
            .output()
            .unwrap();
        assert!(out.status.success());
        let roff = String::from_utf8_lossy(&out.stdout).into_owned();
        for section in ["EXIT STATUS", "ENVIRONMENT", "SIGNALS", "EXAMPLES"] {
            assert!(
                roff.contains(&format!(".SH {section}")),
                "{name}: no {section}"
            );
        }
        assert!(!roff.contains("echo\\-bench\\-merge("), "{name}: {roff}");
        // The text as man shows it (`man -l`; man-db is in .ci/apt-packages.txt).
        let text = support::render_man(&out.stdout, name);
        let flat = text.split_whitespace().collect::<Vec<_>>().join(" ");
        assert!(flat.contains(synopsis), "{name}: no {synopsis} in:\n{text}");
        assert!(flat.contains("RUST_LOG"), "{name}");
        assert!(flat.contains("SIGINT"), "{name}");
    }
}
