#!/usr/bin/python3
"""The size rule of docs/architecture.md, checked (make layers, so make test,
make lint and CI).

  no source file in daemon/ or common/ over MAX_FILE lines;
  no function there over MAX_FUNC lines (from its opening brace to its
  closing one), except the ones EXCEPTIONS names, each with its reason.

A function is found the way the code is written (clang-format, .clang-format):
its opening brace alone on a line in column 0, its closing brace alone on a
line in column 0. Initialisers of tables (`= {`) end their line with the
brace, so they are not counted as functions.

Usage: check_size.py [ROOT]   exit 0 when the tree keeps the rule, 1 with
one line per violation otherwise.
"""
import re
import sys
from pathlib import Path

MAX_FILE = 600
MAX_FUNC = 80

# "path:function": why it may be longer. Empty: none is.
EXCEPTIONS = {}

NAME = re.compile(r"([A-Za-z_][A-Za-z0-9_]*)\s*\(")


def functions(lines):
    """(name, first line number, length) of each function in a C file."""
    out = []
    start = None
    for i, line in enumerate(lines):
        if line.rstrip() == "{" and start is None:
            start = i
            name = "?"
            for j in range(i - 1, max(i - 8, -1), -1):
                m = NAME.search(lines[j])
                if m:
                    name = m.group(1)
                    break
        elif line.rstrip() == "}" and start is not None:
            out.append((name, start + 1, i - start + 1))
            start = None
    return out


def check(root):
    """The violations, and how many files and functions were looked at."""
    bad = []
    files = funcs = 0
    for top in ("daemon", "common"):
        for path in sorted((root / top).rglob("*.[ch]")):
            rel = path.relative_to(root)
            lines = path.read_text(errors="replace").split("\n")
            files += 1
            n = len(lines) - (1 if lines and lines[-1] == "" else 0)
            if n > MAX_FILE:
                bad.append("%s: %d lines (at most %d: split the module)" % (rel, n, MAX_FILE))
            if path.suffix != ".c":
                continue
            found = functions(lines)
            funcs += len(found)
            for name, first, length in found:
                key = "%s:%s" % (rel, name)
                if length > MAX_FUNC and key not in EXCEPTIONS:
                    bad.append("%s:%d: %s() is %d lines (at most %d)"
                               % (rel, first, name, length, MAX_FUNC))
    return bad, files, funcs


def main():
    root = Path(sys.argv[1] if len(sys.argv) > 1 else ".").resolve()
    bad, files, funcs = check(root)
    for b in bad:
        print(b)
    if not bad:
        print("size: ok (%d files up to %d lines, %d functions up to %d)"
              % (files, MAX_FILE, funcs, MAX_FUNC))
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
