"""scripts/check-layers.sh: the layering and cycle check over #include lines.

The detector is proven on small trees of the same shape first (an upward
include, a sibling front-end, a cycle inside one layer, a clean tree), then run
over this tree, which must be clean.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "check-layers.sh"


def check(tree: Path) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", str(SCRIPT), str(tree)], capture_output=True, text=True, timeout=60)


def make_tree(tmp: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        p = tmp / name
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(text)
    return tmp


CLEAN = {
    "util/log.h": "#pragma once\n",
    "util/log.c": '#include "util/log.h"\n',
    "codec/cmd.h": '#include "util/log.h"\n',
    "codec/cmd.c": '#include "codec/cmd.h"\n#include "util/log.h"\n',
    "chain/chain.c": '#include "codec/cmd.h"\n#include "smtpgate/plugin.h"\n',
    "daemon/main.c": '#include "chain/chain.h"\n',
    "chain/chain.h": "#pragma once\n",
    "milter/front.c": '#include "chain/chain.h"\n',
    "rules/rules.c": '#include "util/log.h"\n#include "rules_int.h"\n',
    "rules/rules_int.h": "#pragma once\n",
    "plugins/smtpgate/plugin.h": "#pragma once\n",
    "plugins/spf/spf.c": '#include "smtpgate/plugin.h"\n#include "spf_net.h"\n#include "util/log.h"\n',
    "plugins/spf/spf_net.h": "#pragma once\n",
}


def test_clean_tree_passes(tmp_path):
    r = check(make_tree(tmp_path, CLEAN))
    assert r.returncode == 0, r.stdout + r.stderr
    assert r.stdout.strip().splitlines()[-1] == "check-layers: 13 files, 0 problem(s)"


def test_lower_layer_including_higher_fails(tmp_path):
    files = dict(CLEAN)
    files["util/log.c"] = '#include "util/log.h"\n\n#include "codec/cmd.h"\n'
    r = check(make_tree(tmp_path, files))
    assert r.returncode == 1
    assert "util/log.c:3: util includes codec/cmd.h, of codec" in r.stdout


@pytest.mark.parametrize("src,include,why", [
    ("milter/front.c", "daemon/main.h", "milter includes daemon/main.h"),
    ("rules/rules.c", "codec/cmd.h", "rules includes codec/cmd.h"),
    ("plugins/spf/spf.c", "chain/chain.h", "plugin:spf includes chain/chain.h"),
    ("plugins/smtpgate/plugin.h", "util/log.h", "sdk includes util/log.h"),
])
def test_forbidden_neighbours_fail(tmp_path, src, include, why):
    files = dict(CLEAN)
    files["daemon/main.h"] = "#pragma once\n"
    files[src] = files[src] + f'#include "{include}"\n'
    r = check(make_tree(tmp_path, files))
    assert r.returncode == 1
    assert why in r.stdout


def test_cycle_inside_one_layer_fails(tmp_path):
    files = dict(CLEAN)
    files["daemon/worker.h"] = "#pragma once\n"
    files["daemon/session.h"] = "#pragma once\n"
    files["daemon/worker.c"] = '#include "daemon/worker.h"\n#include "daemon/session.h"\n'
    files["daemon/session.c"] = '#include "daemon/session.h"\n#include "daemon/worker.h"\n'
    r = check(make_tree(tmp_path, files))
    assert r.returncode == 1
    cycles = [l for l in r.stdout.splitlines() if l.startswith("include cycle")]
    assert cycles == ["include cycle between daemon/session, daemon/worker: "
                      "daemon/session.c:2 -> daemon/worker.h; daemon/worker.c:2 -> daemon/session.h"]


def test_missing_include_is_reported(tmp_path):
    files = dict(CLEAN)
    files["codec/cmd.c"] += '#include "codec/gone.h"\n'
    r = check(make_tree(tmp_path, files))
    assert r.returncode == 1
    assert 'codec/cmd.c:3: "codec/gone.h" is no file of the tree' in r.stdout


def test_this_tree_keeps_its_layers():
    r = subprocess.run(["bash", str(SCRIPT)], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr
    assert r.stdout.strip().splitlines()[-1].endswith(" files, 0 problem(s)")
