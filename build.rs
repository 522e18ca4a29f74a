//! Probes for the third-party tools the integration tests drive, so that
//! a test whose tool is missing is reported as not run (`ignored`, with
//! the tool's name and how to install it) instead of failing or passing.
//!
//! Each tool found sets a `cfg` (`has_socat`, `has_nginx`, …), and a test
//! that needs one carries
//! `#[cfg_attr(not(has_socat), ignore = "needs socat: …")]`. The library
//! and the binaries never look at these `cfg`s.
//!
//! The probe runs only in a checkout (where `.ci/run` is): a build of the
//! published crate, as a dependency or by `cargo install`, has no tests
//! and probes nothing. `ECHOES_REQUIRE_TOOLS=1` (set by `.ci/run`, after
//! `.ci/install`) turns a missing tool into a build error, so that CI
//! cannot pass with a test silently not run.

use std::env;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// A program the tests run: its `cfg`, its names on `PATH` (any one
/// will do) and where it comes from.
struct Program {
    cfg: &'static str,
    names: &'static [&'static str],
    from: &'static str,
}

const PROGRAMS: &[Program] = &[
    Program {
        cfg: "has_socat",
        names: &["socat"],
        from: "Debian package socat",
    },
    Program {
        cfg: "has_ncat",
        names: &["ncat"],
        from: "Debian package ncat",
    },
    Program {
        cfg: "has_nc",
        names: &["nc.openbsd"],
        from: "Debian package netcat-openbsd",
    },
    Program {
        cfg: "has_curl",
        names: &["curl"],
        from: "Debian package curl",
    },
    Program {
        cfg: "has_openssl",
        names: &["openssl"],
        from: "Debian package openssl",
    },
    Program {
        cfg: "has_man",
        names: &["man"],
        from: "Debian package man-db",
    },
    Program {
        cfg: "has_systemd_analyze",
        names: &["systemd-analyze"],
        from: "Debian package systemd",
    },
    Program {
        cfg: "has_systemd_socket_activate",
        names: &["systemd-socket-activate"],
        from: "Debian package systemd",
    },
    Program {
        cfg: "has_haproxy",
        names: &["haproxy"],
        from: "Debian package haproxy",
    },
    Program {
        cfg: "has_nginx",
        names: &["nginx"],
        from: "Debian packages nginx, libnginx-mod-stream",
    },
    Program {
        cfg: "has_node",
        names: &["node", "nodejs"],
        from: "Debian package nodejs",
    },
];

/// A Python module the tests import, with the `python3` on `PATH`.
struct PythonModule {
    cfg: &'static str,
    module: &'static str,
}

const PYTHON_MODULES: &[PythonModule] = &[
    PythonModule {
        cfg: "has_py_websockets",
        module: "websockets",
    },
    PythonModule {
        cfg: "has_py_yaml",
        module: "yaml",
    },
    // grpcio-tools (which brings grpcio and protobuf), and grpcio's
    // health and reflection clients.
    PythonModule {
        cfg: "has_py_grpc_tools",
        module: "grpc_tools",
    },
    PythonModule {
        cfg: "has_py_grpc_health",
        module: "grpc_health",
    },
    PythonModule {
        cfg: "has_py_grpc_reflection",
        module: "grpc_reflection",
    },
];

/// What prints the folder of Python's packages.
const PURELIB: &str = "import sysconfig; print(sysconfig.get_paths()['purelib'])";

/// `cfg`s set from more than one probe.
const DERIVED: &[&str] = &["has_browser"];

fn main() {
    println!("cargo::rerun-if-changed=build.rs");
    println!("cargo::rerun-if-env-changed=PATH");
    println!("cargo::rerun-if-env-changed=ECHOES_REQUIRE_TOOLS");
    println!("cargo::rerun-if-env-changed=CHROMIUM");
    let all = PROGRAMS.iter().map(|p| p.cfg);
    let all = all
        .chain(PYTHON_MODULES.iter().map(|m| m.cfg))
        .chain(DERIVED.iter().copied());
    for cfg in all {
        println!("cargo::rustc-check-cfg=cfg({cfg})");
    }
    if !Path::new(".ci/run").exists() {
        return; // not a checkout: no tests, nothing to probe
    }
    let path_dirs = search_path();
    for dir in &path_dirs {
        // A tool installed later changes its folder: probe again then.
        println!("cargo::rerun-if-changed={}", dir.display());
    }
    let mut have = Vec::new();
    let mut missing = Vec::new();
    for p in PROGRAMS {
        match p.names.iter().any(|n| find(&path_dirs, n).is_some()) {
            true => have.push(p.cfg),
            false => missing.push(format!("{} ({})", p.names[0], p.from)),
        }
    }
    let python = find(&path_dirs, "python3");
    for m in PYTHON_MODULES {
        let at = python.as_deref().and_then(|py| module_path(py, m.module));
        // Found: probe again if it changes. Missing: when Python's
        // packages change (a few files on a bare machine).
        let watch = match &at {
            Some(file) => file.parent().map(Path::to_path_buf),
            None => python.as_deref().and_then(|py| python_says(py, PURELIB)),
        };
        if let Some(watch) = watch {
            println!("cargo::rerun-if-changed={}", watch.display());
        }
        match at {
            Some(_) => have.push(m.cfg),
            None => missing.push(format!("Python's {} (.ci/requirements.txt)", m.module)),
        }
    }
    // The browser test: Node.js, Chromium and Playwright's library.
    let playwright = Path::new("tests/browser/node_modules/playwright-core/package.json");
    let watch = if playwright.exists() {
        playwright
    } else {
        Path::new("tests/browser")
    };
    println!("cargo::rerun-if-changed={}", watch.display());
    let chromium =
        env::var_os("CHROMIUM").map_or_else(|| "/usr/bin/chromium".into(), PathBuf::from);
    match have.contains(&"has_node") && playwright.exists() && chromium.exists() {
        true => have.push("has_browser"),
        false => missing.push(
            "Chromium and Playwright (Debian package chromium; npm ci in tests/browser)".into(),
        ),
    }
    for cfg in &have {
        println!("cargo::rustc-cfg={cfg}");
    }
    if !missing.is_empty() && env::var_os("ECHOES_REQUIRE_TOOLS").is_some_and(|v| v == "1") {
        panic!(
            "ECHOES_REQUIRE_TOOLS=1 but these tools are missing, so their tests would not run: {}. \
             Run .ci/install.",
            missing.join(", ")
        );
    }
}

/// The folders of `PATH`, and the `sbin` folders where Debian puts
/// servers (HAProxy, nginx) even when `PATH` lacks them.
fn search_path() -> Vec<PathBuf> {
    let mut dirs: Vec<PathBuf> = env::var_os("PATH")
        .map(|p| env::split_paths(&p).collect())
        .unwrap_or_default();
    for extra in ["/usr/sbin", "/usr/local/sbin", "/sbin"] {
        let extra = PathBuf::from(extra);
        if !dirs.contains(&extra) {
            dirs.push(extra);
        }
    }
    dirs.retain(|d| d.is_dir());
    dirs
}

/// The first executable file named `name` in `dirs`.
fn find(dirs: &[PathBuf], name: &str) -> Option<PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    dirs.iter().map(|d| d.join(name)).find(|p| {
        p.metadata()
            .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
    })
}

/// The file `python` imports `module` from, if it can import it.
fn module_path(python: &Path, module: &str) -> Option<PathBuf> {
    python_says(
        python,
        &format!("import {module}; print({module}.__file__)"),
    )
}

/// The path `script` prints, run by `python`, if it runs.
fn python_says(python: &Path, script: &str) -> Option<PathBuf> {
    let out = Command::new(python)
        .args(["-c", script])
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output()
        .ok()?;
    let path = String::from_utf8(out.stdout).ok()?;
    (out.status.success() && !path.trim().is_empty()).then(|| PathBuf::from(path.trim()))
}
