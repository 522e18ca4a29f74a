//! What a user meets first: every binary answers `--version`, `--help`
//! ends with examples of the common tasks, and the package carries what
//! crates.io and `cargo install` need.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use crate::support::*;

const BENCH: &str = env!("CARGO_BIN_EXE_echo-bench");
const VERSION: &str = env!("CARGO_PKG_VERSION");

fn stdout_of(bin: &str, args: &[&str]) -> String {
    let out = run(Command::new(bin).args(args), b"", Duration::from_secs(20));
    assert!(out.status.success(), "{bin} {args:?}: {}", out.stderr);
    String::from_utf8(out.stdout).expect("UTF-8 output")
}

#[test]
fn every_binary_answers_version() {
    for bin in [SERVER, CLIENT, BENCH] {
        let out = stdout_of(bin, &["--version"]);
        assert!(out.trim_end().ends_with(VERSION), "{bin}: {out:?}");
    }
    assert_eq!(
        stdout_of(SERVER, &["-V"]).trim(),
        format!("echo-server {VERSION}")
    );
    assert_eq!(
        stdout_of(CLIENT, &["-V"]).trim(),
        format!("echo-client {VERSION}")
    );
}

#[test]
fn help_ends_with_examples_of_the_common_tasks() {
    for (bin, name) in [(SERVER, "echo-server"), (CLIENT, "echo-client")] {
        for flag in ["-h", "--help"] {
            let help = stdout_of(bin, &[flag]);
            let (flags, examples) = help
                .split_once("\nExamples:\n")
                .unwrap_or_else(|| panic!("{name} {flag}: no examples:\n{help}"));
            assert!(flags.contains("--version"), "{name} {flag}");
            // The seed's use (the bare command), nc-style piping, UDP, TLS.
            let bare = format!("  {name} ");
            assert!(
                examples
                    .lines()
                    .any(|l| l.starts_with(&bare) && l[bare.len()..].starts_with(' ')),
                "{name} {flag}: no bare example"
            );
            for needle in ["| echo-client --stdin |", "udp://", "tls://", "--tls-"] {
                assert!(examples.contains(needle), "{name} {flag}: no {needle:?}");
            }
        }
    }
}

#[test]
fn the_package_has_its_metadata_licences_and_changelog() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let manifest = std::fs::read_to_string(root.join("Cargo.toml")).unwrap();
    for key in [
        "description = ",
        "license = \"MIT OR Apache-2.0\"",
        "repository = ",
        "keywords = ",
        "categories = ",
        "rust-version = ",
        "readme = ",
    ] {
        assert!(
            manifest.lines().any(|l| l.starts_with(key)),
            "Cargo.toml lacks {key}"
        );
    }
    for file in ["LICENSE-MIT", "LICENSE-APACHE", "README.md", "CHANGELOG.md"] {
        assert!(root.join(file).is_file(), "{file} is missing");
    }
    let changelog = std::fs::read_to_string(root.join("CHANGELOG.md")).unwrap();
    for heading in ["## [Unreleased]", &format!("## [{VERSION}]")] {
        assert!(changelog.contains(heading), "CHANGELOG.md lacks {heading}");
    }
}

/// The README states the Rust version Cargo.toml declares (the one CI
/// tests with: .ci/check-rust-version).
#[test]
fn readme_states_the_declared_rust_version() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let manifest = std::fs::read_to_string(root.join("Cargo.toml")).unwrap();
    let declared = manifest
        .lines()
        .find_map(|l| l.strip_prefix("rust-version = \""))
        .and_then(|v| v.strip_suffix('"'))
        .expect("rust-version in Cargo.toml");
    let readme = std::fs::read_to_string(root.join("README.md")).unwrap();
    assert!(
        readme.contains(&format!("(Rust {declared} or newer")),
        "README.md does not say Rust {declared} or newer"
    );
}

/// The README backs each promise with a link to a test file and the names
/// of the tests in it; a renamed or deleted test must not leave a promise
/// pointing at nothing.
#[test]
fn readme_links_name_tests_that_exist() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let readme = std::fs::read_to_string(root.join("README.md")).unwrap();
    let mut checked = 0;
    for (i, _) in readme.match_indices("](tests/") {
        let rest = &readme[i + 2..];
        let file = &rest[..rest.find(')').expect("a closed link")];
        // A folder (of test data, say) only has to be there.
        if root.join(file).is_dir() {
            continue;
        }
        let source = std::fs::read_to_string(root.join(file))
            .unwrap_or_else(|e| panic!("README links {file}: {e}"));
        // What follows the link, up to the next link or the paragraph's end.
        let after = &rest[file.len() + 1..];
        let end = [after.find("]("), after.find("\n\n")]
            .into_iter()
            .flatten()
            .min()
            .unwrap_or(after.len());
        let names = after[..end].split('`').skip(1).step_by(2).filter(|w| {
            w.contains('_')
                && w.bytes()
                    .all(|b| b.is_ascii_lowercase() || b == b'_' || b.is_ascii_digit())
        });
        for name in names {
            assert!(
                source.contains(&format!("fn {name}(")),
                "README names `{name}` in {file}, which has no such test"
            );
            checked += 1;
        }
    }
    assert!(
        checked >= 15,
        "only {checked} test names found in README.md"
    );
}

/// The dependencies `cargo tree` lists for the library with `features`
/// (normal ones only: what an embedding program builds).
fn library_dependencies(features: &[&str]) -> Vec<String> {
    crate_tree("normal", features)
        .iter()
        .filter_map(|l| l.split(' ').next().map(String::from))
        .collect()
}

/// `cargo tree`'s lines over `edges`, one per crate reached (with
/// repeats), for `features`.
fn crate_tree(edges: &str, features: &[&str]) -> Vec<String> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let out = Command::new(env!("CARGO"))
        .args([
            "tree",
            "--offline",
            "--locked",
            "-e",
            edges,
            "--prefix",
            "none",
        ])
        .args(features)
        .arg("--manifest-path")
        .arg(root.join("Cargo.toml"))
        .output()
        .expect("cargo tree runs");
    assert!(
        out.status.success(),
        "cargo tree: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .expect("UTF-8")
        .lines()
        .map(String::from)
        .collect()
}

/// The README's "the first build compiles about N crates" is within a
/// tenth of what `cargo run --release --bin echo-server` compiles: the
/// package and every crate it reaches by normal and build dependencies.
#[test]
fn readme_says_how_many_crates_the_first_build_compiles() {
    let readme =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md")).unwrap();
    let said: usize = readme
        .split("The first build compiles about ")
        .nth(1)
        .and_then(|rest| rest.split(' ').next()?.parse().ok())
        .expect("README.md: 'The first build compiles about N crates'");
    let mut crates: Vec<String> = crate_tree("normal,build", &[])
        .iter()
        .map(|l| l.split(' ').take(2).collect::<Vec<_>>().join(" "))
        .collect();
    crates.sort();
    crates.dedup();
    let n = crates.len();
    assert!(
        said.abs_diff(n) * 10 <= n,
        "README.md says about {said} crates; the first build compiles {n}"
    );
}

/// An embedding program (`echoes = { …, default-features = false }`)
/// compiles none of the command lines' and the bench's dependencies,
/// which the default features (what `cargo install` builds) do bring.
/// .ci/run builds the library alone and runs its doctests, the embedding
/// examples among them.
#[test]
fn the_library_alone_needs_no_command_line_dependency() {
    let cli_only = [
        "clap",
        "clap_complete",
        "clap_mangen",
        "indicatif",
        "hdrhistogram",
        "tracing-subscriber",
    ];
    let alone = library_dependencies(&["--no-default-features"]);
    assert!(alone.iter().any(|d| d == "tokio"), "{alone:?}");
    for dep in cli_only {
        assert!(
            !alone.iter().any(|d| d == dep),
            "the library alone needs {dep}"
        );
    }
    let full = library_dependencies(&[]);
    for dep in cli_only {
        assert!(
            full.iter().any(|d| d == dep),
            "the default features lack {dep}"
        );
    }
}

/// The protocols are features: an embedder's TCP/UDP/Unix echo compiles
/// what the README says (at most 35 crates), none of TLS's or HTTP's;
/// `tls` brings rustls and not hyper; `http` brings hyper.
#[test]
fn an_embedders_tcp_echo_compiles_only_what_the_readme_says() {
    let distinct = |features: &[&str]| {
        let mut crates: Vec<String> = crate_tree("normal", features)
            .iter()
            .map(|l| l.split(' ').take(2).collect::<Vec<_>>().join(" "))
            .collect();
        crates.sort();
        crates.dedup();
        crates
    };
    let alone = distinct(&["--no-default-features"]);
    let besides = alone.len() - 1;
    let readme =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md")).unwrap();
    assert!(
        readme.contains(&format!("compiles {besides} crates besides")),
        "README.md should say {besides} crates besides echoes: {alone:?}"
    );
    assert!(besides < 35, "{alone:?}");
    let names = |crates: &[String]| -> Vec<String> {
        crates
            .iter()
            .map(|c| c.split(' ').next().unwrap_or("").to_string())
            .collect()
    };
    let alone = names(&alone);
    for heavy in [
        "hyper",
        "rustls",
        "rcgen",
        "tokio-tungstenite",
        "serde_json",
        "x509-parser",
    ] {
        assert!(
            !alone.contains(&heavy.to_string()),
            "{heavy} without features"
        );
    }
    let tls = names(&distinct(&["--no-default-features", "--features", "tls"]));
    assert!(tls.contains(&"rustls".to_string()) && !tls.contains(&"hyper".to_string()));
    let http = names(&distinct(&["--no-default-features", "--features", "http"]));
    assert!(http.contains(&"hyper".to_string()) && http.contains(&"rustls".to_string()));
}

/// A smoke run of the comparison scripts (`--quick`: one round of
/// one-second runs) never rewrites the tracked BENCHMARKS.md: it writes
/// under target/, and asking it to write BENCHMARKS.md is refused before
/// anything is built or run.
#[test]
fn smoke_runs_of_the_comparisons_leave_benchmarks_md_alone() {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
    let python = |args: &[&str]| {
        std::process::Command::new("python3")
            .args(args)
            .current_dir(repo)
            .output()
            .expect("python3 (the scripts need Python 3.11's standard library only)")
    };
    let quick_default = python(&[
        "-c",
        "import sys; sys.path.insert(0, 'scripts'); import compare_peers as c; \
         print(c.output_path(True, None)); print(c.output_path(False, None))",
    ]);
    assert!(quick_default.status.success(), "{quick_default:?}");
    let paths = String::from_utf8_lossy(&quick_default.stdout).into_owned();
    let paths: Vec<&str> = paths.lines().collect();
    let benchmarks = repo.join("BENCHMARKS.md");
    assert_ne!(
        Path::new(paths[0]),
        benchmarks,
        "--quick writes {}",
        paths[0]
    );
    assert!(paths[0].contains("/target/"), "--quick writes {}", paths[0]);
    assert_eq!(
        Path::new(paths[1]),
        benchmarks,
        "a full run writes {}",
        paths[1]
    );
    for args in [
        &[
            "scripts/compare_peers.py",
            "--quick",
            "--output",
            "BENCHMARKS.md",
        ][..],
        &["scripts/compare_web_peers.py", "--quick", "--update"][..],
    ] {
        let out = python(args);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(
            stderr.contains("does not write BENCHMARKS.md"),
            "{args:?}: {stderr}"
        );
    }
}
