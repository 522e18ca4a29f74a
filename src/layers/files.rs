//! The finer rule: no cycle in the import graph between the files of
//! `src` (the library's; the binaries are leaves). An edge runs from a
//! file to each file whose items it names: `crate::a::b`, `super::x`,
//! `self::x`, or `x::` for a module `x` it declares. Declaring a module
//! is structure, not an import, so a parent that re-exports its children
//! is fine, and a child that imports from its parent file is a cycle:
//! what children share lives in a file of its own.
//! `scripts/import_graph.py` draws the same graph, to look at.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use super::code_of;

type Module = Vec<String>;

/// The module a file under `src` is: `server/admit.rs` is `server::admit`,
/// `server/mod.rs` and `server.rs` are `server`, `lib.rs` is the root.
fn module_of(rel: &Path) -> Module {
    let mut parts: Module = rel
        .with_extension("")
        .components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect();
    if matches!(parts.last().map(String::as_str), Some("mod" | "lib")) {
        parts.pop();
    }
    parts
}

fn is_ident(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

/// `a::{b, c::{d, e}}` as `a::b`, `a::c::d`, `a::c::e`.
fn expand_use(tree: &str) -> Vec<String> {
    let tree = tree.trim();
    let group = tree.find('{').zip(tree.rfind('}')).filter(|(o, c)| o < c);
    let Some((open, close)) = group else {
        let path = tree.split(" as ").next().unwrap_or(tree);
        return vec![path.trim().to_string()];
    };
    let (prefix, inner) = (&tree[..open], &tree[open + 1..close]);
    let (mut parts, mut depth, mut start) = (Vec::new(), 0, 0);
    for (i, c) in inner.char_indices() {
        match c {
            '{' => depth += 1,
            '}' => depth -= 1,
            ',' if depth == 0 => {
                parts.push(&inner[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    parts.push(&inner[start..]);
    parts
        .into_iter()
        .filter(|p| !p.trim().is_empty())
        .flat_map(|p| {
            expand_use(p)
                .into_iter()
                .map(move |q| format!("{prefix}{q}"))
        })
        .collect()
}

/// The paths `code` names that may lead into the crate: every `use`
/// tree, and every `crate::…`, `super::…`, `self::…` and `CHILD::…`.
fn paths(code: &str, children: &BTreeSet<String>) -> Vec<Vec<String>> {
    let mut out: Vec<String> = Vec::new();
    for (at, _) in code.match_indices("use ") {
        if code[..at].chars().next_back().is_some_and(is_ident) {
            continue;
        }
        let rest = &code[at + 4..];
        out.extend(expand_use(&rest[..rest.find(';').unwrap_or(rest.len())]));
    }
    let mut starts: Vec<&str> = vec!["crate::", "super::", "self::"];
    let childs: Vec<String> = children.iter().map(|c| format!("{c}::")).collect();
    starts.extend(childs.iter().map(String::as_str));
    for start in starts {
        for (at, _) in code.match_indices(start) {
            let before = code[..at].chars().next_back();
            if before.is_some_and(|c| is_ident(c) || c == ':') {
                continue;
            }
            let len = code[at..]
                .find(|c: char| !(is_ident(c) || c == ':'))
                .unwrap_or(code.len() - at);
            // `super::{a, b}` and `super::*` are `use` trees, read above.
            let path = code[at..at + len].trim_end_matches(':');
            if path.contains("::") {
                out.push(path.to_string());
            }
        }
    }
    out.into_iter()
        .map(|p| {
            p.split("::")
                .map(|s| s.trim().to_string())
                .filter(|s| !s.is_empty())
                .collect()
        })
        .collect()
}

/// Each file's edges to the others, from the files under `src`.
fn graph(src: &Path) -> BTreeMap<Module, BTreeSet<Module>> {
    let mut files: BTreeMap<Module, String> = BTreeMap::new();
    let mut stack = vec![src.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            let rel = path.strip_prefix(src).unwrap().to_path_buf();
            if path.is_dir() {
                if rel != Path::new("bin") {
                    stack.push(path);
                }
                continue;
            }
            if path.extension().is_none_or(|e| e != "rs") || path.ends_with("tests.rs") {
                continue;
            }
            let code = code_of(&std::fs::read_to_string(&path).unwrap());
            files.insert(module_of(&rel), code);
        }
    }
    let mut graph = BTreeMap::new();
    for (module, code) in &files {
        let children: BTreeSet<String> = code
            .lines()
            .filter_map(|l| {
                let l = l.trim();
                let decl = l.strip_suffix(';')?;
                let name = decl.rsplit_once("mod ")?.1;
                (decl.ends_with(&format!("mod {name}")) && name.chars().all(is_ident))
                    .then(|| name.to_string())
            })
            .collect();
        let mut targets = BTreeSet::new();
        for path in paths(code, &children) {
            let (mut base, mut rest) = (module.clone(), &path[..]);
            match rest.first().map(String::as_str) {
                Some("crate") => {
                    base.clear();
                    rest = &rest[1..];
                }
                Some("super" | "self") => {
                    while let Some(step) = rest.first().filter(|s| *s == "super" || *s == "self") {
                        if step == "super" {
                            base.pop();
                        }
                        rest = &rest[1..];
                    }
                }
                Some(first) if children.contains(first) => {}
                _ => continue,
            }
            base.extend(rest.iter().cloned());
            // The deepest file the path runs through.
            while !files.contains_key(&base) {
                base.pop();
            }
            if base != *module {
                targets.insert(base);
            }
        }
        graph.insert(module.clone(), targets);
    }
    graph
}

/// A cycle of `graph`, as the modules along it, if it has one.
fn a_cycle(graph: &BTreeMap<Module, BTreeSet<Module>>) -> Option<Vec<Module>> {
    #[derive(Clone, Copy, PartialEq)]
    enum Seen {
        Open,
        Done,
    }
    fn visit(
        at: &Module,
        graph: &BTreeMap<Module, BTreeSet<Module>>,
        seen: &mut BTreeMap<Module, Seen>,
        path: &mut Vec<Module>,
    ) -> Option<Vec<Module>> {
        seen.insert(at.clone(), Seen::Open);
        path.push(at.clone());
        for next in graph.get(at).into_iter().flatten() {
            match seen.get(next) {
                Some(Seen::Open) => {
                    let from = path.iter().position(|m| m == next).unwrap_or(0);
                    return Some(path[from..].to_vec());
                }
                Some(Seen::Done) => {}
                None => {
                    if let Some(cycle) = visit(next, graph, seen, path) {
                        return Some(cycle);
                    }
                }
            }
        }
        path.pop();
        seen.insert(at.clone(), Seen::Done);
        None
    }
    let mut seen = BTreeMap::new();
    for module in graph.keys() {
        if seen.contains_key(module) {
            continue;
        }
        if let Some(cycle) = visit(module, graph, &mut seen, &mut Vec::new()) {
            return Some(cycle);
        }
    }
    None
}

#[test]
fn no_file_imports_one_that_imports_it_back() {
    let graph = graph(&Path::new(env!("CARGO_MANIFEST_DIR")).join("src"));
    if let Some(cycle) = a_cycle(&graph) {
        let names: Vec<String> = cycle.iter().map(|m| m.join("::")).collect();
        panic!("a cycle between files: {} -> back", names.join(" -> "));
    }
    // The graph is not empty: admission is seen using the lease.
    let admit = &graph[&vec!["server".to_string(), "admit".to_string()]];
    assert!(
        admit.contains(&vec!["server".to_string(), "lease".to_string()]),
        "{admit:?}"
    );
}

#[test]
fn a_child_importing_from_its_parent_file_is_a_cycle() {
    let s = |v: &[&str]| -> Module { v.iter().map(|x| x.to_string()).collect() };
    let children = ["pipe".to_string()].into();
    let found = paths(
        "use super::{a::B, c};\nfn f() { pipe::go(); crate::x::y() }",
        &children,
    );
    assert!(found.contains(&s(&["super", "a", "B"])), "{found:?}");
    assert!(found.contains(&s(&["super", "c"])), "{found:?}");
    assert!(found.contains(&s(&["pipe", "go"])), "{found:?}");
    assert!(found.contains(&s(&["crate", "x", "y"])), "{found:?}");
    let graph: BTreeMap<Module, BTreeSet<Module>> = [
        (s(&["client"]), [s(&["client", "pipe"])].into()),
        (s(&["client", "pipe"]), [s(&["client"])].into()),
    ]
    .into();
    assert_eq!(a_cycle(&graph).map(|c| c.len()), Some(2));
}
