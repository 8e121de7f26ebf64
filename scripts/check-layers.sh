#!/usr/bin/env bash
# Checks the tree's layering over its #include "..." lines (make test runs it).
#
#   scripts/check-layers.sh [DIR]    prints each violation as FILE:LINE: what; exit 1 if any
#                                    (DIR: another tree of the same shape; default this one)
#
# The core's layers, lowest first: util codec message config chain daemon
# (the Makefile's LAYERS).  A file may include its own layer and lower ones.
# milter/ is a front-end beside daemon/: it stands on util..chain and neither
# front-end includes the other.  rules/ (the rule language) stands on util/
# only; a plugin (plugins/NAME/) on its own folder, the SDK header
# (plugins/smtpgate/), util/, codec/ (pure parsers over bytes: the milter
# plugin speaks codec/milter_wire's packets), rules/ and plugins/state/ (the
# state layer the reputation plugins share, which itself stands on util/ and
# the SDK header).  The SDK header includes nothing of
# the tree.  The core includes the SDK header and nothing else of plugins/ or
# rules/.
#
# Cycles: a file and its header of the same name are one unit (foo.c, foo.h);
# unit A depends on unit B when either of A's files includes B's header.  Any
# loop of such dependencies is reported, inside a layer too.  Tests are left
# out: they may include anything.
set -euo pipefail
cd "${1:-$(dirname "$0")/..}"
exec /usr/bin/python3 - "$@" <<'PY'
import os, re, sys

LAYERS = ["util", "codec", "message", "config", "chain", "daemon"]
RANK = {name: i for i, name in enumerate(LAYERS)}
RANK["milter"] = RANK["daemon"]
# Made by the build (Makefile: BUILD_INFO_H), of no layer.
GENERATED = {"smtpgate_build.h"}
INCLUDE = re.compile(r'^\s*#\s*include\s+"([^"]+)"')

def area(path):
    """The layer-like area a tree file belongs to."""
    parts = path.split("/")
    if parts[0] == "plugins":
        return "sdk" if len(parts) > 1 and parts[1] == "smtpgate" else "plugin:" + (parts[1] if len(parts) > 2 else "")
    return parts[0]

def allowed(src, dst):
    a, b = area(src), area(dst)
    if a == b:
        return True
    if b == "sdk":
        return a not in ("util", "rules")
    if a == "sdk":
        return False
    if a in RANK:
        if b not in RANK:
            return False
        if {a, b} == {"daemon", "milter"}:
            return False
        return RANK[b] <= RANK[a]
    if a == "rules":
        return b == "util"
    if a.startswith("plugin:"):
        # plugins/state/ is the plugins' own shared layer (rates and greylist
        # state): any plugin may stand on it, it stands on util/ only.
        return b in ("util", "codec", "rules") or (b == "plugin:state" and a != "plugin:state")
    return True

def resolve(src, name):
    for base in (os.path.dirname(src), ".", "plugins"):
        p = os.path.normpath(os.path.join(base, name))
        if os.path.isfile(p):
            return p
    return None

files = []
for top in LAYERS + ["milter", "rules", "plugins"]:
    for d, dirs, names in os.walk(top):
        dirs.sort()
        files += [os.path.join(d, n) for n in names if n.endswith((".c", ".h"))]
files.sort()

problems = []
deps = {}
def unit(path):
    return os.path.splitext(path)[0]

for f in files:
    with open(f, encoding="utf-8", errors="replace") as fh:
        for lineno, line in enumerate(fh, 1):
            m = INCLUDE.match(line)
            if not m:
                continue
            if m.group(1) in GENERATED:
                continue
            target = resolve(f, m.group(1))
            if target is None:
                problems.append(f'{f}:{lineno}: "{m.group(1)}" is no file of the tree')
                continue
            if not allowed(f, target):
                problems.append(f"{f}:{lineno}: {area(f)} includes {target}, of {area(target)}: "
                                "a lower layer, or a sibling, may not include it")
            if unit(target) != unit(f):
                deps.setdefault(unit(f), {}).setdefault(unit(target), (f, lineno))

# Cycles: Tarjan's strongly connected components over the unit graph.
index, low, stack, on, comps = {}, {}, [], set(), []
sys.setrecursionlimit(10000)
def strong(v):
    index[v] = low[v] = len(index)
    stack.append(v); on.add(v)
    for w in deps.get(v, {}):
        if w not in index:
            strong(w)
            low[v] = min(low[v], low[w])
        elif w in on:
            low[v] = min(low[v], index[w])
    if low[v] == index[v]:
        comp = []
        while True:
            w = stack.pop(); on.discard(w); comp.append(w)
            if w == v:
                break
        if len(comp) > 1:
            comps.append(sorted(comp))
for v in sorted(deps):
    if v not in index:
        strong(v)
for comp in comps:
    ties = []
    for a in comp:
        for b, (f, lineno) in sorted(deps.get(a, {}).items()):
            if b in comp:
                ties.append(f"{f}:{lineno} -> {b}.h")
    problems.append("include cycle between " + ", ".join(comp) + ": " + "; ".join(ties))

for p in problems:
    print(p)
print(f"check-layers: {len(files)} files, {len(problems)} problem(s)")
sys.exit(1 if problems else 0)
PY
