//! Keeps the crate's layers true: each top-level module uses (by
//! `crate::` paths, outside its tests) only modules on a lower floor of
//! [`FLOORS`], so the modules have no cycle and no import runs back up.
//! ARCHITECTURE.md's "Dependency rules" say the same in words.

mod files;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// The floors, lowest first. A module may use those of lower floors only;
/// modules of one floor know nothing of each other.
const FLOORS: &[&[&str]] = &[
    // Leaves: words, bytes, runtimes. `splice` is the hot path's kernel call.
    &[
        "units",
        "pyrepr",
        "runtime",
        "splice",
        "activation",
        "notify",
        "shutdown",
        "serving",
    ],
    // What an address is.
    &["addr"],
    // The PROXY protocol as a codec: bytes in, a header out, and back.
    // `proxy` knows nothing of sockets, metrics or servers.
    &["proxy"],
    // Counters and their page; they know addresses and header versions.
    &["metrics"],
    // What each kind of socket provides, client connects included.
    &["transport"],
    // The per-connection loop.
    &["echo"],
    // The gRPC services, which HTTP dispatches to.
    &["grpc"],
    // HTTP and WebSocket.
    &["http"],
    // The two ends.
    &["server", "client"],
    // The load generator.
    &["bench"],
];

/// Modules that are only tests, and the crate root.
const OUTSIDE: &[&str] = &["layers", "counting", "lib", "bin"];

/// `file` without comments and without its `mod tests { ... }` block.
pub(super) fn code_of(file: &str) -> String {
    let mut code: String = file
        .lines()
        .map(|l| match l.find("//") {
            Some(at) => &l[..at],
            None => l,
        })
        .collect::<Vec<_>>()
        .join("\n");
    // `#[cfg(test)]`, or `#[cfg(all(test, feature = …))]`, then `mod tests {`.
    if let Some(at) = code.find("\nmod tests {") {
        let attr = code[..at].rfind('\n').map_or(0, |n| n + 1);
        if code[attr..at].starts_with("#[cfg(") && code[attr..at].contains("test") {
            code.truncate(attr);
        }
    }
    code
}

/// The crate modules `code` names: `crate::a::…` and `crate::{a, b::…}`.
fn uses(code: &str) -> BTreeSet<String> {
    let ident = |s: &str| -> String {
        s.trim_start()
            .chars()
            .take_while(|c| c.is_alphanumeric() || *c == '_')
            .collect()
    };
    let mut out = BTreeSet::new();
    for (at, _) in code.match_indices("crate::") {
        let rest = &code[at + "crate::".len()..];
        match rest.strip_prefix('{') {
            Some(group) => {
                let group = &group[..group.find('}').unwrap_or(group.len())];
                out.extend(group.split(',').map(ident));
            }
            None => {
                out.insert(ident(rest));
            }
        }
    }
    out
}

/// Each top-level module's uses of the others, from the files under `src`.
fn graph(src: &Path) -> BTreeMap<String, BTreeSet<String>> {
    let known: BTreeSet<&str> = FLOORS.iter().flat_map(|f| f.iter().copied()).collect();
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut stack = vec![src.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
                continue;
            }
            if path.extension().is_none_or(|e| e != "rs") || path.ends_with("tests.rs") {
                continue;
            }
            let rel = path.strip_prefix(src).unwrap();
            let first = rel
                .components()
                .next()
                .unwrap()
                .as_os_str()
                .to_string_lossy();
            let module = first.trim_end_matches(".rs").to_string();
            if OUTSIDE.contains(&module.as_str()) {
                continue;
            }
            let used = uses(&code_of(&std::fs::read_to_string(&path).unwrap()));
            let entry = graph.entry(module.clone()).or_default();
            entry.extend(
                used.into_iter()
                    .filter(|u| *u != module && known.contains(u.as_str())),
            );
        }
    }
    graph
}

#[test]
fn every_module_uses_only_lower_floors() {
    let floor_of = |m: &str| FLOORS.iter().position(|f| f.contains(&m));
    let graph = graph(&Path::new(env!("CARGO_MANIFEST_DIR")).join("src"));
    let mut wrong = Vec::new();
    for (module, used) in &graph {
        let Some(own) = floor_of(module) else {
            wrong.push(format!("{module} is on no floor: add it to FLOORS"));
            continue;
        };
        for u in used {
            if floor_of(u).is_none_or(|f| f >= own) {
                wrong.push(format!("{module} uses {u}, which is not below it"));
            }
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
    // The rules hold of something: the server is seen using what it does.
    assert!(graph["server"].contains("transport"), "{graph:?}");
}

#[test]
fn uses_are_found_in_paths_and_groups() {
    let found = uses(
        "use crate::addr::Addr;\nuse crate::{metrics::X, proxy};\nfn f() { crate::units::x() }",
    );
    assert_eq!(
        found,
        ["addr", "metrics", "proxy", "units"]
            .map(String::from)
            .into()
    );
    assert!(code_of("a // crate::server\n").find("server").is_none());
}
