#!/usr/bin/env python3
"""Size check: lists Rust functions and files of production code that are over a size mark.

Production code is every `.rs` file under the roots, except `tests.rs`, `*_tests.rs` and the
part of a file from a `#[cfg(test)]` module on. A function is counted from its `fn` line to
the line that closes its body; a file by its production lines.

Usage:
    scripts/size-check.py [--fn-lines N] [--file-lines M] [--allow PATH:NAME]... [ROOT...]

    --fn-lines N     longest function allowed, in lines (default 80)
    --file-lines M   longest file allowed, in production lines (default 400)
    --allow PATH:NAME
                     a function that may be longer, because it is markup rather than logic
                     (e.g. a maud page: `--allow dashboard/pages.rs:plan_page`); PATH matches the
                     end of the file's path. `--allow PATH` alone lets that file's length pass
                     (not its functions).
    ROOT             folders to walk (default `crates`)

Prints one line per finding (`FN <lines> <path>:<line> <name>` or `FILE <lines> <path>`) and
exits 1 if there was any, 0 if none (so CI can run it), 2 on a usage error.
"""
import argparse
import os
import re
import sys

TEST_MOD_RE = re.compile(r'^(pub(\([^)]*\))?\s+)?mod\s')
FN_RE = re.compile(r'^\s*(pub(\([^)]*\))?\s+)?(async\s+)?(const\s+)?(unsafe\s+)?fn\s+(\w+)')


def production_lines(lines):
    """The number of lines before the file's `#[cfg(test)] mod …`, or all of them."""
    for i, line in enumerate(lines):
        if line.strip() == '#[cfg(test)]' and i + 1 < len(lines) and TEST_MOD_RE.match(lines[i + 1]):
            return i
    return len(lines)


def functions(lines, end):
    """Yields (first line index, length, name) of each function with a body in lines[:end]."""
    for i in range(end):
        m = FN_RE.match(lines[i])
        if not m or lines[i].rstrip().endswith(';'):
            continue
        depth, started, j = 0, False, i
        while j < end:
            depth += lines[j].count('{') - lines[j].count('}')
            started = started or '{' in lines[j]
            if started and depth <= 0:
                break
            j += 1
        yield i, j - i + 1, m.group(6)


def allowed(path, name, allow):
    """Whether an --allow entry names this file's length (name None, entry `PATH`) or this
    function of it (entry `PATH:NAME`)."""
    for entry in allow:
        file_part, _, fn_part = entry.partition(':')
        if path.endswith(file_part) and fn_part == (name or ''):
            return True
    return False


def check(roots, fn_lines, file_lines, allow):
    """Returns the findings, one printable line each, in a stable order."""
    findings = []
    for root in roots:
        for dirpath, dirnames, filenames in os.walk(root):
            dirnames.sort()
            for filename in sorted(filenames):
                if not filename.endswith('.rs') or filename == 'tests.rs' or filename.endswith('_tests.rs'):
                    continue
                path = os.path.join(dirpath, filename)
                with open(path, encoding='utf-8') as f:
                    lines = f.read().split('\n')
                end = production_lines(lines)
                if end > file_lines and not allowed(path, None, allow):
                    findings.append(f'FILE {end:5d} {path}')
                for start, length, name in functions(lines, end):
                    if length > fn_lines and not allowed(path, name, allow):
                        findings.append(f'FN   {length:5d} {path}:{start + 1} {name}')
    return findings


def main():
    parser = argparse.ArgumentParser(
        description='List Rust functions and files over a size mark (exit 1 if any).')
    parser.add_argument('--fn-lines', type=int, default=80, help='longest function allowed (default 80)')
    parser.add_argument('--file-lines', type=int, default=400, help='longest file allowed (default 400)')
    parser.add_argument('--allow', action='append', default=[], metavar='PATH[:NAME]',
                        help='a markup-only function (or file) that may be longer; repeatable')
    parser.add_argument('roots', nargs='*', default=['crates'], help="folders to walk (default 'crates')")
    args = parser.parse_args()
    findings = check(args.roots, args.fn_lines, args.file_lines, args.allow)
    for line in findings:
        print(line)
    return 1 if findings else 0


if __name__ == '__main__':
    sys.exit(main())
