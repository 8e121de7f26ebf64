"""Privileges and ports: started as root, smtpgate opens its ports and then runs
as its configured user with no capability left; root without a user is
refused; a port another process listens on is an error, never shared; the
workers still share the load of the one socket.
"""

from __future__ import annotations

import grp
import os
import pwd
import re
import signal
import socket
import subprocess
from pathlib import Path

import pytest

from gate import DEFAULT_SETTINGS, Gate, render_config
from helpers import assert_reply
from netutil import LOOPBACK, free_port, is_listening, wait_until
from smtpclient import simple_message

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root (privilege drop)")

SERVICE_USER = "nobody"
SERVICE_GROUP = "nogroup"


def proc_status(pid: int) -> dict[str, str]:
    fields = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        fields[key] = value.strip()
    return fields


def user_dirs(workdir: Path, name: str) -> tuple[Path, Path]:
    """A spool and a quarantine folder the service user owns."""
    pw = pwd.getpwnam(SERVICE_USER)
    spool = workdir / f"{name}-spool-owned"
    spool.mkdir()
    os.chown(spool, pw.pw_uid, grp.getgrnam(SERVICE_GROUP).gr_gid)
    spool.chmod(0o750)
    return spool, spool / "quarantine"


def run_start(binary: Path, workdir: Path, text: str, timeout: float = 20) -> subprocess.CompletedProcess:
    """smtpgate -f with this config, expected to exit by itself (a refused start)."""
    conf = workdir / "refused.conf"
    conf.write_text(text)
    env = {**os.environ, "ASAN_OPTIONS": "abort_on_error=0:detect_leaks=1"}
    return subprocess.run([str(binary), "-f", "-c", str(conf)], capture_output=True, text=True,
                          timeout=timeout, env=env, stdin=subprocess.DEVNULL)


def test_runs_as_its_user_with_no_capability(gate_factory, recorder, smtpgate_binary, workdir):
    spool, quarantine = user_dirs(workdir, "drop")
    settings = {"user": SERVICE_USER, "group": SERVICE_GROUP, "allow_root": False,
                "spool_dir": str(spool), "quarantine_dir": str(quarantine)}
    # LeakSanitizer stops the world with ptrace, which a process that gave up
    # root (no longer dumpable) cannot do to itself.
    gate = gate_factory([recorder.address], env={"ASAN_OPTIONS": "abort_on_error=0:detect_leaks=0"},
                        **settings)
    uid = pwd.getpwnam(SERVICE_USER).pw_uid
    gid = grp.getgrnam(SERVICE_GROUP).gr_gid
    st = proc_status(gate.pid)
    assert st["Uid"].split() == [str(uid)] * 4, st["Uid"]
    assert st["Gid"].split() == [str(gid)] * 4, st["Gid"]
    assert st["Groups"].split() == [str(gid)], st["Groups"]
    assert int(st["CapEff"], 16) == 0 and int(st["CapPrm"], 16) == 0, (st["CapEff"], st["CapPrm"])
    assert int(st["CapInh"], 16) == 0 and int(st["CapAmb"], 16) == 0
    # Every thread, not only the main one.
    for task in Path(f"/proc/{gate.pid}/task").iterdir():
        t = proc_status(int(task.name))
        assert t["Uid"].split() == [str(uid)] * 4 and int(t["CapEff"], 16) == 0, task.name
    assert re.search(rf"running as {SERVICE_USER} \(uid {uid}, gid {gid}\)", gate.log_text())
    with gate.connect() as c:
        c.ehlo()
        replies = c.mail_transaction("s@example.test", ["r@example.test"],
                                     simple_message("dropped", "as nobody\r\n"))
        assert_reply(replies[-1], 250)
        c.quit()
    assert len(recorder.wait_messages(1)) == 1
    gate.stop()
    assert gate.returncode == 0, gate.log_tail()


def test_root_without_user_is_refused(smtpgate_binary, workdir, recorder):
    (workdir / "spool").mkdir()
    settings = {k: v for k, v in DEFAULT_SETTINGS.items() if k != "allow_root"}
    settings["quarantine_dir"] = str(workdir / "spool" / "q")
    text = render_config([f"{LOOPBACK}:{free_port()}"], [recorder.address], workdir / "spool",
                         settings)
    r = run_start(smtpgate_binary, workdir, text)
    assert r.returncode == 1, r.stderr
    assert re.search(r"refusing to run as root: set user = \"smtpgate\".*or allow_root = true",
                     r.stderr), r.stderr


def test_unknown_user_is_an_error_of_minus_t(smtpgate_binary, workdir, recorder):
    (workdir / "spool").mkdir()
    text = render_config([f"{LOOPBACK}:{free_port()}"], [recorder.address], workdir / "spool",
                         {**DEFAULT_SETTINGS, "user": "no-such-user-here",
                          "quarantine_dir": str(workdir / "spool" / "q")})
    conf = workdir / "t.conf"
    conf.write_text(text)
    r = subprocess.run([str(smtpgate_binary), "-t", "-c", str(conf)], capture_output=True, text=True,
                       timeout=30)
    assert r.returncode == 1 and 'user "no-such-user-here": no such user' in r.stderr, r.stderr


def test_spool_the_user_cannot_write_is_an_error_of_minus_t(smtpgate_binary, workdir, recorder):
    spool = workdir / "root-spool"
    spool.mkdir(mode=0o755)  # root's; the service user may not write
    text = render_config([f"{LOOPBACK}:{free_port()}"], [recorder.address], spool,
                         {**DEFAULT_SETTINGS, "user": SERVICE_USER,
                          "quarantine_dir": str(spool / "q")})
    conf = workdir / "t.conf"
    conf.write_text(text)
    r = subprocess.run([str(smtpgate_binary), "-t", "-c", str(conf)], capture_output=True, text=True,
                       timeout=30)
    assert r.returncode == 1, r.stderr
    assert f'spool_dir "{spool}": not writable by the service user' in r.stderr, r.stderr
    assert f'quarantine_dir "{spool}/q"' in r.stderr, r.stderr


def test_missing_spool_is_an_error_of_minus_t(smtpgate_binary, workdir, recorder):
    text = render_config([f"{LOOPBACK}:{free_port()}"], [recorder.address], workdir / "nowhere",
                         {**DEFAULT_SETTINGS, "quarantine_dir": str(workdir / "q")})
    conf = workdir / "t.conf"
    conf.write_text(text)
    r = subprocess.run([str(smtpgate_binary), "-t", "-c", str(conf)], capture_output=True, text=True,
                       timeout=30)
    assert r.returncode == 1, r.stderr
    assert f'spool_dir "{workdir}/nowhere": No such file or directory' in r.stderr, r.stderr


# ---- ports ----

def _config_on(port: int, workdir: Path, upstream: str) -> str:
    (workdir / "spool").mkdir(exist_ok=True)
    return render_config([f"{LOOPBACK}:{port}"], [upstream], workdir / "spool",
                         {**DEFAULT_SETTINGS, "quarantine_dir": str(workdir / "spool" / "q")})


def test_port_of_an_smtp_sink_is_refused(sink, smtpgate_binary, workdir, recorder):
    r = run_start(smtpgate_binary, workdir, _config_on(sink.port, workdir, recorder.address))
    assert r.returncode == 1, r.stderr
    assert f"cannot listen on {LOOPBACK}:{sink.port}: Address already in use" in r.stderr, r.stderr
    # The sink still has its port to itself.
    with socket.create_connection((LOOPBACK, sink.port), timeout=10) as s:
        assert s.recv(100).startswith(b"220 sink.example.test")


def test_port_of_another_smtpgate_is_refused(gate, smtpgate_binary, workdir, recorder):
    r = run_start(smtpgate_binary, workdir, _config_on(gate.port, workdir, recorder.address))
    assert r.returncode == 1, r.stderr
    assert f"cannot listen on {LOOPBACK}:{gate.port}: Address already in use" in r.stderr, r.stderr
    assert gate.alive()


def test_workers_share_the_load(gate_factory, recorder):
    gate = gate_factory([recorder.address], workers=2, args=("-v",))
    mark = gate.log_mark()
    conns = [socket.create_connection(gate.address, timeout=10) for _ in range(40)]
    try:
        for s in conns:
            assert s.recv(100).startswith(b"220 ")
    finally:
        for s in conns:
            s.close()
    log = gate.log_since(mark)
    per_worker = {w: len(re.findall(rf"worker {w}: accepted a connection", log)) for w in (0, 1)}
    assert sum(per_worker.values()) == 40, per_worker
    assert all(n > 0 for n in per_worker.values()), per_worker
