//! Keeps the module map in `mod.rs` true: each module's uses (its
//! `super::` and `crate::bench::` paths, outside its tests) are exactly
//! the ones its row lists, and all of them are rows above it, so the
//! modules of the bench have no cycle.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// Test-only modules, which are not in the map.
const UNMAPPED: &[&str] = &["module_map"];

/// The first segments of the paths after each `prefix` in `code`:
/// `a` for `prefix a::b`, `a` and `b` for `prefix {a::x, b}`.
fn first_segments(code: &str, prefix: &str) -> Vec<String> {
    let ident = |s: &str| -> String {
        s.trim()
            .chars()
            .take_while(|c| c.is_alphanumeric() || *c == '_')
            .collect()
    };
    let mut out = Vec::new();
    for (at, _) in code.match_indices(prefix) {
        let rest = &code[at + prefix.len()..];
        if let Some(group) = rest.strip_prefix('{') {
            let (mut depth, mut start) = (0, 0);
            for (i, c) in group.char_indices() {
                match c {
                    '{' => depth += 1,
                    '}' if depth == 0 => {
                        out.push(ident(&group[start..i]));
                        break;
                    }
                    '}' => depth -= 1,
                    ',' if depth == 0 => {
                        out.push(ident(&group[start..i]));
                        start = i + 1;
                    }
                    _ => {}
                }
            }
        } else {
            out.push(ident(rest));
        }
    }
    out
}

/// `file` without its `mod tests { ... }` (in which `super` is the file's
/// own module).
fn without_tests(file: &str) -> String {
    const TESTS: &str = "#[cfg(test)]\nmod tests {";
    let Some(at) = file.find(TESTS) else {
        return file.to_string();
    };
    let mut depth = 1;
    for (i, c) in file[at + TESTS.len()..].char_indices() {
        match c {
            '{' => depth += 1,
            '}' => depth -= 1,
            _ => {}
        }
        if depth == 0 {
            return format!("{}{}", &file[..at], &file[at + TESTS.len() + i + 1..]);
        }
    }
    file[..at].to_string()
}

/// What `file` uses of the bench: its sibling modules, and `mod` for an
/// item of the root.
fn uses(file: &str, modules: &BTreeSet<String>, me: &str) -> BTreeSet<String> {
    let code: String = without_tests(file)
        .lines()
        .map(|line| line.split("//").next().unwrap_or_default())
        .collect::<Vec<_>>()
        .join("\n");
    let mut used = BTreeSet::new();
    for prefix in ["super::", "crate::bench::"] {
        for name in first_segments(&code, prefix) {
            if name.is_empty() || name == "self" || name == me {
                continue;
            }
            used.insert(if modules.contains(&name) {
                name
            } else {
                "mod".to_string()
            });
        }
    }
    used
}

/// The map's rows, in order: each module and the uses it lists.
fn map_rows(root: &str) -> Vec<(String, BTreeSet<String>)> {
    let name = |cell: &str| cell.trim().trim_matches(|c| "[]`".contains(c)).to_string();
    root.lines()
        .filter_map(|line| line.strip_prefix("//! |"))
        .map(|row| row.split('|').map(str::trim).collect::<Vec<_>>())
        .filter(|cells| cells.len() >= 3 && cells[0] != "module" && !cells[0].starts_with("---"))
        .map(|cells| {
            let listed = cells[cells.len() - 2]
                .split(',')
                .map(name)
                .filter(|n| !n.is_empty() && n != "—")
                .collect();
            (name(cells[0]), listed)
        })
        .collect()
}

#[test]
fn the_module_map_is_true_and_has_no_cycle() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/bench");
    let mut files = BTreeMap::new();
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let stem = path.file_stem().unwrap().to_string_lossy().into_owned();
        if path.extension().is_some_and(|e| e == "rs") && !UNMAPPED.contains(&stem.as_str()) {
            files.insert(stem, std::fs::read_to_string(&path).unwrap());
        }
    }
    let root = files.remove("mod").expect("src/bench/mod.rs");
    let modules: BTreeSet<String> = files.keys().cloned().collect();
    let rows = map_rows(&root);
    let listed: BTreeSet<String> = rows.iter().map(|(m, _)| m.clone()).collect();
    assert_eq!(listed, modules, "the map's rows against src/bench/*.rs");
    for (i, (module, listed_uses)) in rows.iter().enumerate() {
        let actual = uses(&files[module], &modules, module);
        assert_eq!(
            &actual, listed_uses,
            "what {module}.rs uses, against its row"
        );
        for used in &actual {
            assert!(
                rows[..i].iter().any(|(m, _)| m == used),
                "{module} uses {used}, which is not above it in the map"
            );
        }
    }
}

#[test]
fn paths_are_read_like_rust() {
    let code = "use super::{a, b::{c, d}, e::F};\nuse super::g::H;\nlet x = crate::bench::i::J;";
    assert_eq!(first_segments(code, "super::"), ["a", "b", "e", "g"]);
    assert_eq!(first_segments(code, "crate::bench::"), ["i"]);
    let modules = ["a", "g"].map(String::from).into();
    let file = "use super::{a, Root};\n#[cfg(test)]\nmod tests {\n use super::g; }\nuse super::g;";
    assert_eq!(
        uses(file, &modules, "x"),
        ["a", "g", "mod"].map(String::from).into()
    );
    let file = "use super::a;\n#[cfg(test)]\nmod tests {\n fn f() { super::g(); }\n}\n";
    assert_eq!(uses(file, &modules, "x"), ["a"].map(String::from).into());
}
