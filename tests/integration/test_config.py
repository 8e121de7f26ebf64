"""The configuration as an admin meets it: `smtpgate -t`, errors with file:line, -o overrides.

A broken file must be named with the line that is wrong, so the admin can
go straight there; overrides on the command line use the file's own syntax.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from gate import DEFAULT_SETTINGS, render_config, run_config_test
from netutil import LOOPBACK, free_port


def _write(workdir: Path, name: str, text: str) -> Path:
    p = workdir / name
    p.write_text(text)
    return p


def _valid_text(workdir: Path, comments: bool = False) -> str:
    """A complete valid config; without comment lines unless asked (comments are a
    subject of their own below)."""
    (workdir / "spool").mkdir(exist_ok=True)
    text = render_config([f"{LOOPBACK}:{free_port()}"], [f"{LOOPBACK}:{free_port()}"],
                         workdir / "spool",
                         {**DEFAULT_SETTINGS, "quarantine_dir": str(workdir / "quarantine")})
    if not comments:
        text = "".join(l for l in text.splitlines(True) if not l.startswith("#"))
    return text


def _with_line_appended(text: str, line: str) -> tuple[str, int]:
    """The text with `line` inserted before the upstream sections; returns (text, its line number)."""
    lines = text.splitlines()
    at = next(i for i, l in enumerate(lines) if l.startswith("upstream "))
    lines.insert(at, line)
    return "\n".join(lines) + "\n", at + 1


def test_valid_config_passes(smtpgate_binary, workdir):
    """`smtpgate -t` on a complete, valid config exits 0."""
    conf = _write(workdir, "ok.conf", _valid_text(workdir))
    r = run_config_test(smtpgate_binary, conf)
    assert r.returncode == 0, r.stdout + r.stderr


def in_tree_plugins(binary) -> tuple[str, ...]:
    """-o overrides that point the example config's installed plugin paths into the tree."""
    from gate import REPO, plugin_dir
    plugins = plugin_dir(binary).parent.parent / "plugins"
    return ("-o", f'plugin_dir = "{plugins}"',
            "-o", f'plugin rules {{ path = "rules.so" files = {{"{REPO}/rules/default.rules"}} }}')


def test_shipped_example_config_passes(smtpgate_binary, workdir):
    """The shipped etc/smtpgate.conf passes `-t` (its plugins taken from the build, its
    folders, which -t checks, made in the test's own folder)."""
    from gate import REPO
    (workdir / "spool").mkdir()
    r = run_config_test(smtpgate_binary, REPO / "etc" / "smtpgate.conf",
                        *in_tree_plugins(smtpgate_binary),
                        "-o", f'spool_dir = "{workdir}/spool"',
                        "-o", f'quarantine_dir = "{workdir}/spool/quarantine"',
                        # The service user the package creates (test_package.py
                        # checks the installed file with it).
                        "-o", 'user = ""')
    assert r.returncode == 0, r.stdout + r.stderr
    assert "plugin rules: rules" in r.stdout + r.stderr


@pytest.mark.parametrize("bad", [
    "no_such_setting = 1",
    "max_recipients = 0",
    'bare_newline = "sometimes"',
    'client_identity = "whatever"',
    "max_line_length = 100",
    "hard_error_limit = -3",
    'hostname = "bad host name"',
    "command_timeout = forty",
    'hostname == "x.example.test"',
], ids=["unknown-key", "out-of-range", "bad-enum", "bad-identity", "under-minimum",
        "negative", "bad-hostname", "not-a-number", "syntax"])
def test_error_names_file_and_line(smtpgate_binary, workdir, bad):
    """Each kind of mistake makes `-t` exit non-zero and name FILE:LINE of the bad line."""
    text, lineno = _with_line_appended(_valid_text(workdir), bad)
    conf = _write(workdir, "bad.conf", text)
    r = run_config_test(smtpgate_binary, conf)
    out = r.stdout + r.stderr
    assert r.returncode != 0, f"-t accepted {bad!r}:\n{out}"
    assert f"{conf}:{lineno}" in out, f"expected {conf}:{lineno} in:\n{out}"


def test_bad_upstream_address_named(smtpgate_binary, workdir):
    """An upstream address that is not host:port is refused, naming the file and line."""
    lines = _valid_text(workdir).splitlines()
    lineno = next(i + 1 for i, l in enumerate(lines) if l.strip().startswith("address ="))
    lines[lineno - 1] = '    address = "nowhere"'
    conf = _write(workdir, "badaddr.conf", "\n".join(lines) + "\n")
    r = run_config_test(smtpgate_binary, conf)
    out = r.stdout + r.stderr
    assert r.returncode != 0, out
    assert f"{conf}:{lineno}" in out, out


def test_missing_upstream_refused(smtpgate_binary, workdir):
    """A config without any upstream section is refused with a reason naming the file."""
    text = _valid_text(workdir)
    text = text[:text.index("upstream ")]
    conf = _write(workdir, "noupstream.conf", text)
    r = run_config_test(smtpgate_binary, conf)
    out = r.stdout + r.stderr
    assert r.returncode != 0, out
    assert "upstream" in out and str(conf) in out, out


def test_unreadable_file(smtpgate_binary, workdir):
    """A config file that does not exist: non-zero, and the message names it."""
    conf = workdir / "missing.conf"
    r = run_config_test(smtpgate_binary, conf)
    assert r.returncode != 0
    assert str(conf) in r.stdout + r.stderr


def test_bad_override_refused(smtpgate_binary, workdir):
    """A broken -o override makes -t fail even when the file is fine."""
    conf = _write(workdir, "ok.conf", _valid_text(workdir))
    r = run_config_test(smtpgate_binary, conf, "-o", "max_recipients = 0")
    assert r.returncode != 0, r.stdout + r.stderr


def test_override_listen_and_upstream(recorder, gate_factory):
    """-o 'listen = {...}' moves the listener: smtpgate serves on the port given on the
    command line, not the one in the file."""
    from netutil import is_listening
    gate = gate_factory([recorder.address], listen_via_override=True)
    assert not is_listening(gate.file_listen_port)
    with gate.connect() as c:
        c.ehlo()
        assert c.mail_transaction("s@example.test", ["r@example.test"], b"Subject: o\r\n\r\nx\r\n")[-1].code == 250
        c.quit()
    assert len(recorder.wait_messages(1)) == 1


def test_override_upstream_section(recorder_factory, gate_factory):
    """-o 'upstream u0 { address = ... }' replaces the file's upstream: mail goes there."""
    in_file, on_cmdline = recorder_factory(), recorder_factory()
    gate = gate_factory([in_file.address],
                        args=("-o", f'upstream u0 {{ address = "{on_cmdline.address}" }}'))
    with gate.connect() as c:
        c.ehlo()
        assert c.mail_transaction("s@example.test", ["r@example.test"], b"Subject: o\r\n\r\nx\r\n")[-1].code == 250
        c.quit()
    assert len(on_cmdline.wait_messages(1)) == 1
    assert in_file.messages == []


@pytest.mark.parametrize("comment", ["# a comment line", "## several hashes", "// a C++ comment",
                                     "/* a C comment */", "workers = 2  # trailing comment"],
                         ids=["hash", "hashes", "slashes", "c-comment", "trailing"])
def test_error_line_after_comments(smtpgate_binary, workdir, comment):
    """Comment lines above the mistake do not shift the line number reported."""
    body = _valid_text(workdir)
    text, lineno = _with_line_appended(f"{comment}\n{comment}\n{comment}\n" + body, "max_recipients = 0")
    conf = _write(workdir, "commented.conf", text)
    r = run_config_test(smtpgate_binary, conf)
    out = r.stdout + r.stderr
    assert r.returncode != 0, out
    assert f"{conf}:{lineno}:" in out, f"expected {conf}:{lineno} in:\n{out}"


def test_error_line_in_commented_example_config(smtpgate_binary, workdir):
    """A mistake typed into a copy of the (heavily commented) shipped etc/smtpgate.conf
    is reported at the line where the admin typed it."""
    from gate import REPO
    lines = (REPO / "etc" / "smtpgate.conf").read_text().splitlines()
    at = next(i for i, l in enumerate(lines) if l.startswith("max_recipients"))
    lines[at] = "max_recipients = 0"
    conf = _write(workdir, "edited-example.conf", "\n".join(lines) + "\n")
    r = run_config_test(smtpgate_binary, conf, *in_tree_plugins(smtpgate_binary))
    out = r.stdout + r.stderr
    assert r.returncode != 0, out
    assert f"{conf}:{at + 1}:" in out, f"expected {conf}:{at + 1} in:\n{out}"
