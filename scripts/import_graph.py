#!/usr/bin/env python3
"""The import graph between the files of src/, and its cycles.

An edge runs from a file to each file whose items it names: `crate::a::b`,
`super::x`, `self::x`, or a child module `x::` the file declares with
`mod x;`. Declaring a module (`mod x;`) is structure, not an import. Test
code (`#[cfg(test)] mod tests { ... }`, files named tests.rs) is left out.

    python3 scripts/import_graph.py          # cycles, then exit 1 if any
    python3 scripts/import_graph.py --edges  # every edge too

src/layers.rs keeps the same rule as a test; this script is for looking.
"""

import re
import sys
from pathlib import Path

SRC = Path(__file__).resolve().parent.parent / "src"


def module_of(path: Path) -> tuple:
    rel = path.relative_to(SRC).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] in ("mod", "lib"):
        parts = parts[:-1]
    return tuple(parts)


def strip(code: str) -> str:
    code = re.sub(r"//[^\n]*", "", code)
    code = re.sub(r"'(\\.|[^'\\])'", "''", code)
    code = re.sub(r'"(\\.|[^"\\\n])*"', '""', code)
    m = re.search(r"^#\[cfg\([^\n]*test[^\n]*\)\]\nmod tests \{", code, re.M)
    if m:
        code = code[: m.start()]
    return code


def expand_use(tree: str) -> list:
    """`a::{b, c::{d, e}}` -> ['a::b', 'a::c::d', 'a::c::e']."""
    tree = tree.strip()
    depth = 0
    for i, ch in enumerate(tree):
        if ch == "{" and depth == 0:
            prefix = tree[:i]
            inner = tree[i + 1 : tree.rindex("}")]
            parts, depth2, cur = [], 0, ""
            for c in inner:
                if c == "," and depth2 == 0:
                    parts.append(cur)
                    cur = ""
                    continue
                depth2 += c == "{"
                depth2 -= c == "}"
                cur += c
            parts.append(cur)
            out = []
            for p in parts:
                if p.strip():
                    out += [prefix + q for q in expand_use(p)]
            return out
    return [tree.split(" as ")[0].strip()]


def main() -> int:
    files = {module_of(p): p for p in SRC.rglob("*.rs") if p.name != "tests.rs" and "bin" not in p.relative_to(SRC).parts}
    edges = {}
    for mod, path in files.items():
        code = strip(path.read_text())
        children = set(re.findall(r"^\s*(?:pub(?:\([a-z]+\))?\s+)?mod\s+(\w+)\s*;", code, re.M))
        paths = []
        for m in re.finditer(r"\buse\s+([^;]+);", code):
            paths += expand_use(m.group(1))
        paths += re.findall(r"(?<![\w:])((?:crate|super|self)(?:::\w+)+)", code)
        for c in children:
            paths += [c + "::" + m for m in re.findall(rf"(?<![\w:]){c}::(\w+)", code)]
        targets = set()
        for p in paths:
            segs = p.split("::")
            if segs[0] == "crate":
                base, segs = (), segs[1:]
            elif segs[0] in ("super", "self"):
                base = mod
                while segs and segs[0] in ("super", "self"):
                    if segs[0] == "super":
                        base = base[:-1]
                    segs = segs[1:]
            elif segs[0] in children:
                base = mod
            else:
                continue
            full = base + tuple(segs)
            for n in range(len(full), -1, -1):
                if full[:n] in files:
                    if full[:n] != mod:
                        targets.add(full[:n])
                    break
        edges[mod] = targets
    # Tarjan's strongly connected components.
    index, low, on, stack, sccs, counter = {}, {}, set(), [], [], [0]
    sys.setrecursionlimit(10000)

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in edges.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                sccs.append(comp)

    for v in sorted(edges):
        if v not in index:
            visit(v)
    name = lambda m: "::".join(m) or "lib"
    if "--edges" in sys.argv:
        for v in sorted(edges):
            for w in sorted(edges[v]):
                print(f"{name(v)} -> {name(w)}")
    for comp in sccs:
        members = set(comp)
        print(f"cycle of {len(comp)}: " + ", ".join(sorted(map(name, comp))))
        for v in sorted(comp):
            inside = sorted(name(w) for w in edges[v] if w in members)
            print(f"    {name(v)} -> {', '.join(inside)}")
    print(f"{len(files)} files, {sum(map(len, edges.values()))} edges, {len(sccs)} cycles")
    return 1 if sccs else 0


if __name__ == "__main__":
    sys.exit(main())
