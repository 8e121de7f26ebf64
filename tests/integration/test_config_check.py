"""`smtpgate -t` as an admin meets it: every mistake of a file in one run, each at its
own file:line, plugin options named by their plugin; and a reload that names the
settings it cannot apply and keeps working after the daemon left its directory."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import urllib.request
from pathlib import Path

from gate import Gate, run_config_test
from netutil import LOOPBACK, free_port, wait_until
from smtpclient import SMTPConn

HEAD = ('listen = {{"127.0.0.1:{port}"}}\nupstream main {{ address = "{up}" }}\n'
        'spool_dir = "{spool}"\nquarantine_dir = "{spool}/quarantine"\n'
        'allow_root = true\nclient_identity = "xclient"\n')


def write(workdir: Path, name: str, recorder, body: str) -> Path:
    conf = workdir / name
    conf.write_text(HEAD.format(port=free_port(), up=recorder.address, spool=workdir) + body)
    return conf


def errors(r: subprocess.CompletedProcess, conf: Path) -> list[tuple[int, str]]:
    return [(int(m.group(1)), m.group(2)) for m in
            re.finditer(rf"error: {re.escape(str(conf))}:(\d+): (.*)", r.stderr)]


def test_every_error_in_one_run_at_its_line(smtpgate_binary, workdir, recorder):
    conf = write(workdir, "three.conf", recorder,
                 'max_recipients = 0\n'             # line 7
                 'bare_newline = "sometimes"\n'     # line 8
                 'no_such_key = 5\n'                # line 9
                 'hostname = "unterminated\n'       # line 10
                 'workers = 2\n')
    r = run_config_test(smtpgate_binary, conf)
    assert r.returncode == 1
    found = errors(r, conf)
    assert sorted(found) == [
        (7, "'max_recipients' is 0; it must be from 1 to 100000"),
        (8, "'bare_newline' is \"sometimes\"; expected one of: reject, normalize"),
        (9, "no such option 'no_such_key'"),
        (10, "unterminated string"),
    ], r.stderr
    assert "configuration OK" not in r.stdout


def test_plugin_errors_name_the_plugin_and_nothing_spurious(smtpgate_binary, workdir, recorder):
    rules = Path(smtpgate_binary).resolve().parent / "plugins" / "rules.so"
    conf = write(workdir, "plugins.conf", recorder,
                 'plugin missing { path = "/nonexistent/rules.so" files = {"x.rules"} }\n'
                 f'plugin typo {{ path = "{rules}" files = {{"{workdir}/none.rules"}} '
                 'bogus = 1 }\n')
    r = run_config_test(smtpgate_binary, conf)
    assert r.returncode == 1
    found = dict(errors(r, conf))
    assert found[7].startswith("plugin missing: cannot load /nonexistent/rules.so"), r.stderr
    assert found[8] == "plugin typo (rules): no such option 'bogus'", r.stderr
    # The plugin that cannot load does not make its own options look unknown.
    assert "no such option 'files'" not in r.stderr


def test_shipped_config_passes_from_the_source_tree(smtpgate_binary):
    """etc/smtpgate.conf as shipped, run from the tree with only the paths of a build
    (the installed layout's are checked by test_install)."""
    repo = Path(__file__).resolve().parents[2]
    r = subprocess.run([str(smtpgate_binary), "-t", "-c", str(repo / "etc/smtpgate.conf"),
                        "-o", f'plugin_dir = "{Path(smtpgate_binary).resolve().parent / "plugins"}"',
                        "-o", 'plugin rules { path = "rules.so" files = {"rules/default.rules"} }',
                        "-o", 'spool_dir = "/tmp"', "-o", 'quarantine_dir = "/tmp/quarantine"',
                        "-o", 'user = ""', "-o", "allow_root = true"],
                       capture_output=True, text=True, cwd=repo, timeout=60)
    assert r.returncode == 0, r.stderr
    assert "configuration OK" in r.stdout


def test_reload_names_settings_that_need_a_restart(gate_factory, recorder):
    port = free_port()
    gate = gate_factory([recorder.address], metrics_listen=f"{LOOPBACK}:{port}")
    mark = gate.log_mark()
    gate.write_config(metrics_listen=f"{LOOPBACK}:{free_port()}", workers=3)
    gate.send_signal(signal.SIGHUP)
    line = gate.wait_log(r"reload: .*changed; .*next restart.*", mark).group(0)
    assert "'metrics_listen'" in line and "'workers'" in line, line
    gate.wait_log(r"reloaded configuration, generation 2", mark)
    # The running listener is still the old one.
    with urllib.request.urlopen(f"http://{LOOPBACK}:{port}/metrics", timeout=10) as r:
        assert r.status == 200


def test_relative_config_path_survives_daemon_mode(smtpgate_binary, workdir, recorder):
    """In the background the daemon leaves its directory; a relative -c still reloads."""
    g = Gate(smtpgate_binary, workdir, [recorder.address],
             {"hostname": "first.example.test", "pidfile": str(workdir / "bg.pid")}, name="bg")
    g.port = free_port()
    g.file_listen_port = g.port
    g.conf_path.write_text(g.config_text())
    r = subprocess.run([str(smtpgate_binary), "-c", g.conf_path.name], cwd=workdir,
                       capture_output=True, text=True, timeout=30,
                       env={**os.environ, "ASAN_OPTIONS": "detect_leaks=0"})
    assert r.returncode == 0, r.stderr
    pid = int(wait_until(lambda: (workdir / "bg.pid").exists() and
                         (workdir / "bg.pid").read_text().strip(), 15, "the pid file"))
    try:
        def greeting() -> str:
            c = SMTPConn(LOOPBACK, g.port, timeout=10)
            text = c.greeting.text
            c.close()
            return text

        assert "first.example.test" in wait_until(greeting, 15, "the daemon's greeting")
        g.settings["hostname"] = "second.example.test"
        g.conf_path.write_text(g.config_text())
        os.kill(pid, signal.SIGHUP)
        wait_until(lambda: "second.example.test" in greeting(), 15,
                   "the reloaded hostname in the greeting")
    finally:
        os.kill(pid, signal.SIGTERM)
        wait_until(lambda: not Path(f"/proc/{pid}").exists(), 30, "the daemon to stop")
