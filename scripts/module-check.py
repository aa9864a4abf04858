#!/usr/bin/env python3
"""Module check: the worker's top-level modules must not import each other in a circle.

Reads every `crate::<module>` reference outside comments in each top-level module of a crate's `src/` (a folder
module counts as one module with all its files) and reports each pair of modules that refer to
each other and each longer cycle. `lib` and `main` are the roots and are left out.

Usage:
    scripts/module-check.py [SRC...]     (default crates/worker/src)

Exits 1 if it found a circle, 0 if none.
"""
import os
import re
import sys

REF_RE = re.compile(r"crate::([a-z_][a-z0-9_]*)")


def deps_of(src):
    deps = {}
    for folder, _, files in os.walk(src):
        for f in files:
            if not f.endswith(".rs"):
                continue
            path = os.path.join(folder, f)
            module = os.path.relpath(path, src).split(os.sep)[0].removesuffix(".rs")
            if module in ("lib", "main"):
                continue
            with open(path) as fh:
                text = fh.read()
            # Doc and comment lines name modules without importing them.
            code = "\n".join(l for l in text.splitlines() if not l.lstrip().startswith("//"))
            for m in REF_RE.finditer(code):
                if m.group(1) != module:
                    deps.setdefault(module, set()).add(m.group(1))
    return deps


def cycles(deps):
    """Strongly connected components with more than one module (Tarjan)."""
    index, low, stack, on, out, counter = {}, {}, [], set(), [], [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in deps.get(v, ()):
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
                out.append(sorted(comp))

    for v in sorted(deps):
        if v not in index:
            visit(v)
    return out


def main():
    found = False
    for src in sys.argv[1:] or ["crates/worker/src"]:
        for comp in cycles(deps_of(src)):
            found = True
            print(f"CIRCLE {src}: {' -> '.join(comp)}")
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
