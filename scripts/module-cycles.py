#!/usr/bin/env python3
"""Import cycles between the modules of a crate: prints each strongly connected group of
modules (files) that reach each other through `crate::`/`super::` paths, and the count.
Usage: scripts/module-cycles.py crates/gateway/src"""
import os, re, sys

root = sys.argv[1] if len(sys.argv) > 1 else "crates/gateway/src"
mods = {}
for dp, _, fs in os.walk(root):
    for f in fs:
        if f.endswith(".rs"):
            p = os.path.join(dp, f)
            rel = os.path.relpath(p, root)[:-3]
            name = "crate" if rel in ("lib", "main") else "crate::" + rel.replace(os.sep, "::")
            if name.endswith("::mod"):
                name = name[:-5]
            mods[name] = p

def resolve(cur, path):
    parts = path.split("::")
    if parts[0] == "super":
        base = cur.split("::")[:-1]
        while parts and parts[0] == "super":
            parts.pop(0)
            base = base[:-1] if len(base) > 1 else base
        parts = base + parts
    elif parts[0] == "self":
        parts = cur.split("::") + parts[1:]
    # longest known module prefix
    for n in range(len(parts), 0, -1):
        cand = "::".join(parts[:n])
        if cand in mods:
            return cand
    return None

edges = {m: set() for m in mods}
pat = re.compile(r"\b((?:crate|super|self)(?:::[A-Za-z_][A-Za-z0-9_]*)+)")
for m, p in mods.items():
    text = open(p).read()
    # ignore test modules
    text = re.split(r"#\[cfg\(test\)\]\s*mod tests", text)[0]
    hits = pat.findall(text)
    # Grouped imports: `use crate::{a::X, b}` and `use super::{X, y::Z}`.
    for base, group in re.findall(r"\b((?:crate|super|self)(?:::[A-Za-z_][A-Za-z0-9_]*)*)::\{([^}]*)\}", text):
        for item in group.split(","):
            item = item.strip().split(" as ")[0].strip()
            if item and item != "self":
                hits.append(base + "::" + item)
            elif item == "self":
                hits.append(base)
    for hit in hits:
        t = resolve(m, hit)
        # A file's own submodules and the crate root are not edges of a circle between
        # files; a child reaching up to its parent file is.
        if t and t != m and t != "crate":
            edges[m].add(t)

index, low, stack, on, sccs, counter = {}, {}, [], set(), [], [0]
def strong(v):
    index[v] = low[v] = counter[0]; counter[0] += 1
    stack.append(v); on.add(v)
    for w in edges[v]:
        if w not in index:
            strong(w); low[v] = min(low[v], low[w])
        elif w in on:
            low[v] = min(low[v], index[w])
    if low[v] == index[v]:
        comp = []
        while True:
            w = stack.pop(); on.discard(w); comp.append(w)
            if w == v:
                break
        if len(comp) > 1:
            sccs.append(sorted(comp))
sys.setrecursionlimit(10000)
for v in mods:
    if v not in index:
        strong(v)
for c in sccs:
    print(f"cycle of {len(c)}: " + ", ".join(x.replace("crate::", "") for x in c))
print(f"{len(sccs)} import cycles among {len(mods)} modules")
