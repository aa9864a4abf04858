#!/usr/bin/env python3
"""Module check: a crate's top-level modules must not import each other in a circle.

Reads every `crate::<module>` reference outside comments (grouped ones too: `crate::{a, b::C}`)
in each top-level module of a crate's `src/` (a folder module counts as one module with all its
files) and reports each pair of modules that refer to each other and each longer cycle. `lib` and `main` are the roots and are left out.

Usage:
    scripts/module-check.py [SRC...]     (default: every crates/*/src)

Exits 1 if it found a circle, 0 if none.
"""
import glob
import os
import re
import sys

REF_RE = re.compile(r"crate::([a-z_][a-z0-9_]*)")
# `crate::{a::x, b}`: the first segment of each item (one level of braces).
GROUP_RE = re.compile(r"crate::\{([^{}]*(?:\{[^{}]*\}[^{}]*)*)\}")
ITEM_RE = re.compile(r"(?:^|,)\s*([a-z_][a-z0-9_]*)\b")


def refs(code):
    """The modules `code` refers to through `crate::`."""
    out = {m.group(1) for m in REF_RE.finditer(code)}
    for g in GROUP_RE.finditer(code):
        inner = re.sub(r"\{[^{}]*\}", "", g.group(1))
        out.update(m.group(1) for m in ITEM_RE.finditer(inner))
    return out - {"self", "super"}


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
            for ref in refs(code):
                if ref != module:
                    deps.setdefault(module, set()).add(ref)
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
    default = sorted(glob.glob("crates/*/src"))
    for src in sys.argv[1:] or default:
        for comp in cycles(deps_of(src)):
            found = True
            print(f"CIRCLE {src}: {' -> '.join(comp)}")
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
