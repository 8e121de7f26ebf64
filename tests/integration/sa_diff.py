"""What every differential test against Debian's SpamAssassin shares: running
`spamassassin -L -t` and `smtpgate-rules test --sa` on the same message, reading what each
says hit, and comparing the two over the rules both evaluate.

SpamAssassin's rules are read where the package puts them and never copied into this tree.
spamassassin takes one to three seconds a message: a test module runs it once per message,
in a module-scoped fixture.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SA_RULES = Path("/usr/share/spamassassin")
SA_SITE = Path("/etc/spamassassin")

needs_spamassassin = pytest.mark.skipif(
    not (SA_RULES / "20_head_tests.cf").exists() or shutil.which("spamassassin") is None,
    reason="Debian's spamassassin package is not installed")


def _tool() -> Path:
    for build in ("build/asan", "build/release"):
        p = ROOT / build / "smtpgate-rules"
        if p.exists():
            return p
    pytest.skip("smtpgate-rules is not built")


def tool(*args: str | Path, timeout: float = 120) -> subprocess.CompletedProcess:
    """smtpgate-rules with args; any sanitizer report fails the test."""
    env = dict(os.environ)
    env.setdefault("ASAN_OPTIONS", "abort_on_error=0:detect_leaks=1")
    # latin-1: SpamAssassin's patterns are octets, not UTF-8
    p = subprocess.run([str(_tool()), *map(str, args)], capture_output=True, encoding="latin-1",
                       timeout=timeout, env=env)
    assert "Sanitizer" not in p.stderr and "runtime error" not in p.stderr, p.stderr
    return p


def msg(headers: str, body: str = "Hello Bob,\n\nthe minutes are attached.\n") -> bytes:
    """A message as it comes over SMTP: CRLF line ends, octets as written (Latin-1)."""
    return (headers.replace("\n", "\r\n") + "\r\n" + body.replace("\n", "\r\n")).encode("latin-1")


def lint_list(*args: str | Path) -> str:
    """lint --sa --list with args (a --sa-local file)."""
    p = tool("lint", "--sa", "--list", *args)
    assert p.returncode == 0, p.stdout + p.stderr
    return p.stdout


def local_site(tmp_path_factory, name: str, cf_text: str) -> tuple[Path, Path]:
    """The test's own NAME.cf, and a site folder for spamassassin's --siteconfigpath holding
    it beside the installed site files (linked): smtpgate reads the same file with
    --sa-local, so both sides load the same local settings."""
    site = tmp_path_factory.mktemp("sa-site")
    for f in SA_SITE.iterdir():
        if f.is_file():
            (site / f.name).symlink_to(f)
    cf = site / f"{name}.cf"
    cf.write_text(cf_text)
    return cf, site


def rule_types(lint: str) -> dict[str, str]:
    """Every rule smtpgate loaded (subrules too): name -> its type as lint lists it."""
    return {m.group(1): m.group(2) for m in re.finditer(r"^rule (\S+) (\S+)", lint, re.M)}


def loaded_evals(lint: str, functions=None) -> dict[str, str]:
    """The eval rules smtpgate loaded (those without a score too), of the given functions
    or of all: name -> function."""
    return {m.group(1): m.group(2) for m in re.finditer(r"^rule (\w+) eval (\w+)\t", lint, re.M)
            if functions is None or m.group(2) in functions}


@dataclass
class SaRun:
    tests: set[str]   # the X-Spam-Status tests= list: the rules that scored
    hits: set[str]    # those and every rule the debug log says hit, subrules included
    score: float
    spam: bool        # SpamAssassin's verdict at its threshold (required=, 5.0 by default)
    stdout: str
    stderr: str


def sa_run(message: bytes, home: Path, debug: str = "rules,mimeheader",
           args: tuple[str, ...] = (), status: bool = True, local: bool = True) -> SaRun:
    """spamassassin -L -t on message, HOME in home (its user state stays there); local=False:
    without -L (network tests on: args must point its dns_server at loopback).  status=False:
    the settings given may have changed X-Spam-Status, so it is not read (tests and hits
    empty, score NaN, spam False); stdout still has the message as spamassassin wrote it."""
    env = dict(os.environ, HOME=str(home), LANG="C")
    cmd = ["spamassassin", *(["-L"] if local else []), "-t", *(["-D", debug] if debug else []),
           *args]
    p = subprocess.run(cmd, input=message, capture_output=True, timeout=180, env=env)
    assert p.returncode in (0, 1), p.stderr.decode(errors="replace")[-2000:]
    out, err = p.stdout.decode(errors="replace"), p.stderr.decode(errors="replace")
    if not status:
        return SaRun(set(), set(), float("nan"), False, out, err)
    m = re.search(r"^X-Spam-Status: (Yes|No), score=(-?[\d.]+) required=[\d.]+\s+tests=(.*?)"
                  r"(?:\s+autolearn=|\s+version=)", out, re.M | re.S)
    assert m, out[:2000]
    tests = {t for t in re.sub(r"\s+", "", m.group(3)).split(",") if t and t != "none"}
    logged = set(re.findall(r"dbg: (?:rules|mimeheader): ran (?:\S+ )?rule (\S+) ======> got hit",
                            err))
    return SaRun(tests, tests | logged, float(m.group(2)), m.group(1) == "Yes", out, err)


@dataclass
class GateRun:
    hits: set[str]
    score: float | None
    stdout: str


def gate_run(message: bytes, path: Path, *args: str | Path) -> GateRun:
    """smtpgate-rules test --sa on message, written to path first."""
    path.write_bytes(message)
    p = tool("test", "--sa", *args, path)
    assert p.returncode in (0, 1), p.stdout + p.stderr
    hits = {m.group(1) for m in re.finditer(r"^hit\s+content\s+(\S+)\s", p.stdout, re.M)}
    m = re.search(r"^X-Spam-Status: \w+, score=(-?[\d.]+)", p.stdout, re.M)
    return GateRun(hits, float(m.group(1)) if m else None, p.stdout)


def both_hits(messages: dict[str, bytes], tmp_path_factory, sa_args: tuple[str, ...] = (),
              gate_args: tuple[str | Path, ...] = ()) -> dict[str, tuple[set[str], set[str]]]:
    """message name -> (SpamAssassin's hits, smtpgate's) over the same bytes, each side run
    once per message with its extra arguments (a site config, a local .cf)."""
    home = tmp_path_factory.mktemp("sa-home")
    work = tmp_path_factory.mktemp("msgs")
    return {name: (sa_run(m, home, "rules", args=sa_args).hits,
                   gate_run(m, work / f"{name}.eml", *gate_args).hits)
            for name, m in messages.items()}


def disagreements(pairs: dict[str, tuple[set[str], set[str]]], common: set[str],
                  what: str = "") -> tuple[list[str], int]:
    """pairs: message -> (SpamAssassin's hits, smtpgate's).  Over the rules in common, every
    rule x message where the two differ, and the number of pairs where they agree; both are
    printed, so a run's log shows the agreement."""
    out, agree = [], 0
    for name, (sa, sg) in pairs.items():
        sa_c, sg_c = sa & common, sg & common
        for rule in sorted(sa_c ^ sg_c):
            out.append(f"{name}: {rule}{what and ' (' + what + ')'} hit by "
                       f"{'spamassassin only' if rule in sa_c else 'smtpgate only'}")
        agree += len(common) - len(sa_c ^ sg_c)
    print(f"\nrules both evaluate: {len(common)}; messages: {len(pairs)}; "
          f"agreements {agree} of {len(common) * len(pairs)}")
    for d in out:
        print("disagreement:", d)
    return out, agree


def spam_fields(text: str) -> list[tuple[str, str]]:
    """The X-Spam-* fields of a message's header section, or of smtpgate-rules test's output
    (a line "X-Spam-NAME: ..." and its continuation lines), in order: (name, value) with the
    folds kept as "\\n" plus the continuation's blank."""
    out: list[tuple[str, str]] = []
    cur = None
    for line in text.replace("\r\n", "\n").split("\n"):
        if cur is not None and line[:1] in (" ", "\t"):
            out[-1] = (out[-1][0], out[-1][1] + "\n" + line)
            continue
        cur = None
        m = re.match(r"(X-Spam-[A-Za-z0-9_-]+): ?(.*)", line)
        if m:
            cur = m.group(1)
            out.append((m.group(1), m.group(2)))
        elif line == "" and out:
            break
    return out
