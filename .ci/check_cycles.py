#!/usr/bin/env python3
"""Import cycles between lsmtune's source files.

Every file under src/ is a module. An edge A -> B means A names B through a `crate::`, `super::`
or `self::` path (in a `use` or inline). A parent naming its own descendants (declaring
them, re-exporting from them) is not an edge: the hierarchy is not a cycle. Unit-test modules
are left out. A cycle is a strongly connected component of two or more
files; the script prints each one and exits 1, so CI fails on a new cycle.

Usage: python3 .ci/check_cycles.py [SRC_DIR]
"""
import re
import sys
from pathlib import Path

src = Path(sys.argv[1] if len(sys.argv) > 1 else "src")


def module_of(path: Path) -> tuple:
    rel = path.relative_to(src).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] in ("mod", "lib", "main"):
        parts = parts[:-1]
    return tuple(parts)


modules = {module_of(p): p for p in src.rglob("*.rs")}


def strip(text: str) -> str:
    # Unit tests (`#[cfg(test)] mod tests`, at the end of a file by convention) are not part of
    # the module's dependencies.
    cut = re.search(r"#\[cfg\(test\)\]\s*mod\s+\w+\s*\{", text)
    if cut:
        text = text[: cut.start()]
    text = re.sub(r"//[^\n]*", "", text)
    text = re.sub(r"/\*.*?\*/", "", text, flags=re.S)
    return re.sub(r'"(\\.|[^"\\])*"', '""', text)


def resolve(here: tuple, path: list) -> tuple | None:
    """The longest module prefix of a path written in module `here`."""
    if not path:
        return None
    if path[0] == "crate":
        base, rest = (), path[1:]
    elif path[0] in ("super", "self"):
        base = list(here)
        rest = path
        while rest and rest[0] in ("super", "self"):
            if rest[0] == "super":
                base = base[:-1]
            rest = rest[1:]
        base = tuple(base)
    else:
        return None
    best = base if base in modules else None
    for i in range(1, len(rest) + 1):
        cand = base + tuple(rest[:i])
        if cand in modules:
            best = cand
    return best


def use_paths(text: str):
    """Every path a `use` names (braces expanded) and every inline crate/super path."""
    for m in re.finditer(r"\buse\s+([^;]+);", text):
        yield from expand(m.group(1).replace(" ", "").replace("\n", ""))
    for m in re.finditer(r"\b((?:crate|super|self)(?:::\w+)+)", text):
        yield m.group(1).split("::")


def expand(tree: str, prefix=()):
    depth, start, parts = 0, 0, []
    i = tree.find("{")
    if i < 0:
        yield list(prefix) + [p for p in re.split(r"::", re.sub(r"\bas\b.*", "", tree)) if p]
        return
    head = [p for p in tree[:i].split("::") if p]
    body = tree[i + 1 : tree.rfind("}")]
    for j, ch in enumerate(body):
        if ch == "{":
            depth += 1
        elif ch == "}":
            depth -= 1
        elif ch == "," and depth == 0:
            parts.append(body[start:j])
            start = j + 1
    parts.append(body[start:])
    for part in parts:
        if part:
            yield from expand(part, tuple(prefix) + tuple(head))


edges = {m: set() for m in modules}
for mod, path in modules.items():
    text = strip(path.read_text())
    # `pub use child::X` in a parent is a re-export, not a dependency of the child on it.
    for p in use_paths(text):
        target = resolve(mod, p)
        if target is None or target == mod:
            continue
        if target[: len(mod)] == mod:  # a parent naming its own descendants
            continue
        edges[mod].add(target)

# Tarjan's strongly connected components.
index, low, stack, on, sccs, counter = {}, {}, [], set(), [], [0]
sys.setrecursionlimit(10000)


def visit(v):
    index[v] = low[v] = counter[0]
    counter[0] += 1
    stack.append(v)
    on.add(v)
    for w in edges[v]:
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


for v in modules:
    if v not in index:
        visit(v)

name = lambda m: "::".join(("crate",) + m)
for comp in sccs:
    members = set(comp)
    print("cycle: " + ", ".join(sorted(name(m) for m in comp)))
    for a in sorted(comp):
        for b in sorted(edges[a] & members):
            print(f"  {name(a)} -> {name(b)}")
n_edges = sum(len(e) for e in edges.values())
print(f"{len(modules)} modules, {n_edges} edges, {len(sccs)} cycle(s)")
sys.exit(1 if sccs else 0)
