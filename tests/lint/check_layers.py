#!/usr/bin/python3
"""The include rule of docs/architecture.md, checked (make lint, so CI).

Layers, lowest first; a file may include only what its layer allows:

  common/             common/ only
  daemon/core/        common/, core/
  daemon/<domain>/    common/, core/, its own folder, and the public headers
                      of other domains (a header whose name ends in _impl.h
                      is internal to its folder)
  daemon/*.c|h (top)  anything: main.c, server.c and the route file are the
                      only places that know every domain

and no include circle among daemon/ modules (a module is a .c file with its
.h; module A depends on B when A.c or A.h includes B.h).

Usage: check_layers.py [ROOT]   exit 0 when the tree keeps the rule, 1 with
one line per violation otherwise.
"""
import re
import sys
from pathlib import Path

INCLUDE = re.compile(r'^\s*#\s*include\s+"([^"]+)"', re.M)
DOMAINS = ("agency", "portal", "notify", "stats", "admin")


def layer(rel):
    """('common'|'core'|'top'|domain name, ...) for a repository-relative path."""
    parts = rel.parts
    if parts[0] == "common":
        return "common"
    if parts[0] == "daemon":
        if len(parts) == 2:
            return "top"
        return parts[1]
    return None


def resolve(root, src, inc):
    """The repository-relative path an #include "inc" in src names, or None."""
    for base in (src.parent, root, root / "daemon"):
        p = (base / inc).resolve()
        if p.is_file():
            try:
                return p.relative_to(root)
            except ValueError:
                return None
    return None


def allowed(src_rel, dst_rel):
    src, dst = layer(src_rel), layer(dst_rel)
    if src is None or dst is None:
        return True, ""
    if src == "top":
        return True, ""
    if src == "common":
        return dst == "common", "common/ includes nothing from daemon/"
    if src == "core":
        return dst in ("common", "core"), "core/ includes only common/ and core/"
    if src not in DOMAINS:
        return False, "%s is not a known folder of daemon/ (%s)" % (src, ", ".join(DOMAINS))
    if dst in ("common", "core", src):
        return True, ""
    if dst == "top":
        return False, "a domain never includes the top level (main, server, routes)"
    if dst_rel.name.endswith("_impl.h"):
        return False, "%s is internal to daemon/%s/" % (dst_rel, dst)
    return True, ""


def modules(root):
    """{module: set of modules it depends on} for daemon/."""
    deps = {}
    for f in sorted((root / "daemon").rglob("*.[ch]")):
        rel = f.relative_to(root)
        mod = rel.with_suffix("")
        deps.setdefault(mod, set())
        for inc in INCLUDE.findall(f.read_text(errors="replace")):
            dst = resolve(root, f, inc)
            if dst is not None and dst.parts[0] == "daemon" and dst.suffix == ".h":
                other = dst.with_suffix("")
                if other != mod:
                    deps[mod].add(other)
    return deps


def cycles(deps):
    """Strongly connected components of more than one module (Tarjan)."""
    index, low, on, stack, out = {}, {}, set(), [], []
    counter = [0]

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

    sys.setrecursionlimit(10000)
    for v in list(deps):
        if v not in index:
            visit(v)
    return out


def main(argv):
    root = Path(argv[1] if len(argv) > 1 else ".").resolve()
    problems = []
    for top in ("common", "daemon"):
        for f in sorted((root / top).rglob("*.[ch]")):
            rel = f.relative_to(root)
            for inc in INCLUDE.findall(f.read_text(errors="replace")):
                dst = resolve(root, f, inc)
                if dst is None:
                    problems.append("%s: #include \"%s\" names no file of the tree" % (rel, inc))
                    continue
                ok, why = allowed(rel, dst)
                if not ok:
                    problems.append("%s: #include \"%s\": %s" % (rel, inc, why))
    for comp in cycles(modules(root)):
        problems.append("include circle: " + " -> ".join(str(m) for m in comp))
    for p in problems:
        print("layers: " + p)
    if problems:
        print("layers: %d violation(s) of the rule in docs/architecture.md" % len(problems))
        return 1
    print("layers: ok (common -> core -> domains -> top, no include circle)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
