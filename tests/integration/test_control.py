"""The control socket and smtpgate-ctl against a running smtpgate.

Each test starts a real smtpgate (the sanitizer build) with its control socket
in a folder of its own and drives it with the real smtpgate-ctl built next to
it, reading its --json answers (and, where it matters, the text a person
reads) and its exit status: 0 done, 1 refused or failed, 2 usage, 3 daemon not
reached.  Quarantine release goes to the private Postfix instance (and to the
recording upstream where the upstream must refuse); delivery is checked in
Postfix's mailbox and log.
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import stat
import subprocess
import threading
import time
from pathlib import Path

import pytest

from gate import REPO, plugin_dir, plugin_section
from helpers import codes
from netutil import LOOPBACK, wait_until
from recorder import Script
from smtpclient import ConnectionClosed, SMTPConn, dot_stuff, simple_message

VERSION = (REPO / "VERSION").read_text().strip()
CLIENT_ADDR = "127.0.0.2"


@pytest.fixture(scope="module")
def ctl_binary(smtpgate_binary) -> Path:
    env = os.environ.get("SMTPGATE_CTL")
    b = Path(env) if env else Path(smtpgate_binary).resolve().parent / "smtpgate-ctl"
    if not b.exists():
        pytest.skip(f"smtpgate-ctl not built next to {smtpgate_binary}")
    return b


@pytest.fixture(scope="module")
def plugins(smtpgate_binary) -> Path:
    d = plugin_dir(smtpgate_binary)
    if not (d / "test_policy.so").exists():
        pytest.skip(f"test plugins not built in {d}")
    return d


def run_ctl(ctl_binary, *args: str, timeout: float = 60) -> subprocess.CompletedProcess:
    env = {**os.environ, "ASAN_OPTIONS": "abort_on_error=0:detect_leaks=1"}
    return subprocess.run([str(ctl_binary), *args], capture_output=True, text=True,
                          timeout=timeout, env=env, stdin=subprocess.DEVNULL)


def ctl_json(ctl_binary, gate, *args: str, rc: int = 0, timeout: float = 60) -> dict:
    r = run_ctl(ctl_binary, "-s", gate.control_socket, "--json", *args, timeout=timeout)
    assert r.returncode == rc, (args, r.returncode, r.stdout, r.stderr)
    assert r.stdout.endswith("\n") and r.stdout.count("\n") == 1, r.stdout
    return json.loads(r.stdout)


def raw_request(path: str, line: bytes) -> dict:
    """One request straight to the socket, as any local program may send it."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(20)
        s.connect(path)
        s.sendall(line)
        data = b""
        while not data.endswith(b"\n"):
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
    return json.loads(data)


def quarantine_gate(gate_factory, upstream: str, plugins: Path, marker: str, **settings):
    return gate_factory([upstream], extra=plugin_section("policy", plugins / "test_policy.so",
                                                          body_quarantine=marker), **settings)


def quarantine_one(gate, marker: str, rcpts: list[str], subject: str, source: str | None = None,
                   sender: str = "s@example.test") -> str:
    """Send one message the policy quarantines; its ID."""
    qdir = Path(gate.settings["quarantine_dir"])
    before = set(qdir.glob("*.eml")) if qdir.exists() else set()
    with gate.connect(source=source) as c:
        c.ehlo("helo.example.test")
        replies = c.mail_transaction(sender, rcpts, simple_message(subject, f"body {marker}\r\n"))
        assert codes(replies)[-1] == 250, [str(r) for r in replies]
        c.quit()
    new = set(qdir.glob("*.eml")) - before
    assert len(new) == 1, new
    return new.pop().name[:-len(".eml")]


# ---- status ----

def test_status_fields_exact(ctl_binary, gate_factory, recorder, plugins):
    gate = gate_factory([recorder.address], extra=plugin_section(
        "policy", plugins / "test_policy.so", body_quarantine="NEVER-SENT"))
    st = ctl_json(ctl_binary, gate, "status")
    assert set(st) == {"ok", "command", "version", "pid", "started", "uptime_seconds",
                       "config_file", "generation", "draining", "workers", "sessions",
                       "max_connections", "listen", "upstreams", "plugins", "quarantine"}, st
    assert st["ok"] is True and st["command"] == "status"
    assert st["version"] == VERSION
    assert st["pid"] == gate.pid
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", st["started"]), st["started"]
    assert 0 <= st["uptime_seconds"] < 60
    assert st["config_file"] == str(gate.conf_path)
    assert st["generation"] == 1 and st["draining"] is False
    assert st["workers"] == 2 and st["sessions"] == 0
    assert st["max_connections"] == 200
    assert st["listen"] == [f"{LOOPBACK}:{gate.port}"]
    assert st["plugins"] == [{"name": "policy", "timeouts": 0}]
    assert st["quarantine"] == {"dir": gate.settings["quarantine_dir"], "messages": 0}
    [up] = st["upstreams"]
    # What the recorder's EHLO offers, as smtpgate's probe learned it.
    assert up == {"name": "u0", "address": recorder.address, "priority": 10, "health": "up",
                  "capabilities": up["capabilities"], "size_limit": 64 * 1024 * 1024}, up
    assert {"SIZE", "8BITMIME", "PIPELINING", "ENHANCEDSTATUSCODES"} <= set(up["capabilities"])
    with gate.connect() as c:
        c.ehlo()
        assert ctl_json(ctl_binary, gate, "status")["sessions"] == 1
        c.quit()


def test_status_counts_a_plugin_timeout_and_shows_a_down_upstream(ctl_binary, gate_factory,
                                                                   recorder, plugins):
    if not (plugins / "test_wait.so").exists():
        pytest.skip("test_wait.so not built")
    # The wait plugin sleeps past its timeout at MAIL; the second upstream never answers.
    gate = gate_factory([recorder.address, "127.0.0.1:9"], extra=plugin_section(
        "slow", plugins / "test_wait.so", timeout=1, slow_sender="slow@example.test",
        sleep_ms=3000))
    with gate.connect() as c:
        c.ehlo()
        c.cmd("MAIL FROM:<slow@example.test>")
        c.quit()
    st = ctl_json(ctl_binary, gate, "status")
    assert st["plugins"] == [{"name": "slow", "timeouts": 1}], st["plugins"]
    assert [(u["name"], u["health"], u["capabilities"]) for u in st["upstreams"]][1] == \
        ("u1", "down", [])


def test_status_as_text(ctl_binary, gate_factory, recorder):
    gate = gate_factory([recorder.address])
    r = run_ctl(ctl_binary, "-s", gate.control_socket, "status")
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert f"version: {VERSION}" in lines and "generation: 1" in lines, r.stdout
    assert "draining: no" in lines and "upstreams:" in lines
    assert "  - name: u0" in lines and "    health: up" in lines, r.stdout
    assert not any(l.startswith(("ok:", "command:")) for l in lines)


# ---- the socket ----

def test_socket_is_owner_only_and_mode_settable(ctl_binary, gate_factory, recorder):
    gate = gate_factory([recorder.address])
    st = os.stat(gate.control_socket)
    assert stat.S_ISSOCK(st.st_mode)
    assert stat.S_IMODE(st.st_mode) == 0o600
    assert st.st_uid == os.geteuid()
    other = gate_factory([recorder.address], control_socket_mode="0660")
    assert stat.S_IMODE(os.stat(other.control_socket).st_mode) == 0o660
    gate.stop()
    gate.assert_clean_exit()
    assert not os.path.exists(gate.control_socket)


def test_second_daemon_on_the_socket_refused_and_stale_socket_replaced(gate_factory, recorder,
                                                                      ctl_binary):
    first = gate_factory([recorder.address])
    second_dir = first.control_dir
    from gate import Gate, GateStartError
    second = Gate(first.binary, first.workdir, [recorder.address],
                  {"control_socket": first.control_socket}, name="second")
    with pytest.raises(GateStartError) as e:
        second.start(attempts=1)
    assert "another smtpgate answers there; refusing to start" in str(e.value)
    assert ctl_json(ctl_binary, first, "status")["pid"] == first.pid
    # A daemon that dies leaves its socket; the next one takes the place.
    first.proc.kill()
    first.proc.wait(10)
    first.returncode = 0
    first.clean_exit_checked = True
    assert stat.S_ISSOCK(os.stat(first.control_socket).st_mode)
    third = gate_factory([recorder.address], control_socket=first.control_socket)
    assert ctl_json(ctl_binary, third, "status")["pid"] == third.pid
    assert second_dir.exists()


# ---- reload ----

def test_reload_accepted_and_refused_with_file_and_line(ctl_binary, gate_factory, recorder):
    gate = gate_factory([recorder.address], hostname="first.example.test")
    gate.write_config(hostname="second.example.test")
    r = ctl_json(ctl_binary, gate, "reload")
    assert r == {"ok": True, "command": "reload", "generation": 2, "warnings": []}, r
    with gate.connect(read_greeting=False) as c:
        assert "second.example.test" in c.read_reply().text
    good = gate.conf_path.read_text()
    lines = good.splitlines()
    bad = good + 'max_recipients = "lots"\nno_such_key = 1\n'
    gate.conf_path.write_text(bad)
    r = ctl_json(ctl_binary, gate, "reload", rc=1)
    n = len(lines)
    assert r["ok"] is False and r["generation"] == 2, r
    assert r["error"] == "configuration has errors; the running one stays in force"
    assert r["errors"] == [
        f"{gate.conf_path}:{n + 1}: 'max_recipients' is \"lots\"; it must be a whole number",
        f"{gate.conf_path}:{n + 2}: no such option 'no_such_key'"], r["errors"]
    # The old configuration stays in force.
    assert ctl_json(ctl_binary, gate, "status")["generation"] == 2
    with gate.connect(read_greeting=False) as c:
        assert "second.example.test" in c.read_reply().text
    # Text: the refusal and each error, on stderr, exit 1.
    t = run_ctl(ctl_binary, "-s", gate.control_socket, "reload")
    assert t.returncode == 1
    assert t.stderr.startswith("error: configuration has errors"), t.stderr
    assert f"  - {gate.conf_path}:{n + 2}: no such option 'no_such_key'" in t.stderr.splitlines()
    assert "reload refused: configuration has errors; generation 2 stays in force" in gate.log_text()
    # A setting that needs a restart is said so.
    gate.conf_path.write_text(good.replace("workers = 2", "workers = 3"))
    r = ctl_json(ctl_binary, gate, "reload")
    assert r["generation"] == 3
    assert r["warnings"] == ["reload: 'workers' changed; it takes effect at the next restart "
                             "(the running daemon keeps the old value)"], r


# ---- sessions ----

def test_sessions_lists_each_client_with_its_state(ctl_binary, gate_factory, recorder):
    gate = gate_factory([recorder.address])
    assert ctl_json(ctl_binary, gate, "sessions") == {"ok": True, "command": "sessions",
                                                       "count": 0, "sessions": []}
    with gate.connect() as busy, gate.connect() as idle:
        busy.ehlo("busy.example.test")
        assert busy.cmd("MAIL FROM:<s@example.test>").code == 250
        assert busy.cmd("RCPT TO:<r@example.test>").code == 250
        time.sleep(0.3)
        r = ctl_json(ctl_binary, gate, "sessions")
        assert r["count"] == 2
        # Oldest first: busy connected first.
        by_port = {s["port"]: s for s in r["sessions"]}
        b = by_port[busy.sock.getsockname()[1]]
        i = by_port[idle.sock.getsockname()[1]]
        assert b["address"] == LOOPBACK and b["helo"] == "busy.example.test"
        assert b["state"] == "mail" and b["mail_from"] == "s@example.test"
        assert b["recipients"] == 1 and b["transactions"] == 0 and b["waiting_for"] is None
        assert b["listener"] == f"{LOOPBACK}:{gate.port}"
        assert 0.2 <= b["age_seconds"] < 30
        assert re.fullmatch(r"[0-9A-F]{13}", b["id"]), b["id"]
        assert i["state"] == "greeted" and i["helo"] is None and i["mail_from"] is None
        assert r["sessions"][0]["age_seconds"] >= r["sessions"][1]["age_seconds"]
        busy.quit()
        idle.quit()
    wait_until(lambda: ctl_json(ctl_binary, gate, "sessions")["count"] == 0, 10,
               "the sessions to end")


# ---- drain ----

@pytest.mark.time_limit(90)
def test_drain_finishes_the_transaction_in_flight_then_exits(ctl_binary, gate_factory,
                                                            recorder_factory):
    recorder = recorder_factory(final_delay=3.0)
    gate = gate_factory([recorder.address])
    recorder.wait_idle()
    result = {}
    with gate.connect() as c:
        c.ehlo()
        assert c.cmd("MAIL FROM:<s@example.test>").code == 250
        assert c.cmd("RCPT TO:<r@example.test>").code == 250
        assert c.cmd("DATA").code == 354

        def finish():
            c.send(dot_stuff(simple_message("in flight", "drained\r\n")))
            result["reply"] = c.read_reply()

        t = threading.Thread(target=finish)
        t.start()
        wait_until(lambda: ctl_json(ctl_binary, gate, "sessions")["sessions"][0]["waiting_for"]
                   == "upstream final reply", 10, "the message to be at the upstream")
        env = {**os.environ, "ASAN_OPTIONS": "abort_on_error=0:detect_leaks=1"}
        drain = subprocess.Popen([str(ctl_binary), "-s", gate.control_socket, "--json", "drain",
                                  "20"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                 text=True, env=env)
        gate.wait_log(r"control: drain asked by uid \d+, grace 20 s")
        # No new client is taken while the one in flight finishes: refused, or,
        # queued in the moment the workers let go of the port, closed unanswered.
        with pytest.raises((OSError, ConnectionClosed)):
            SMTPConn(LOOPBACK, gate.port, timeout=3)
        st = ctl_json(ctl_binary, gate, "status")
        assert st["draining"] is True and st["sessions"] == 1
        t.join(20)
        assert result["reply"].code == 250, str(result["reply"])
        assert "queued as" in result["reply"].text
        c.quit()
    out, err = drain.communicate(timeout=30)
    assert drain.returncode == 0, (out, err)
    answer = json.loads(out.splitlines()[0])
    assert answer == {"ok": True, "command": "drain", "draining": True, "already_draining": False,
                      "grace_seconds": 20, "sessions": 1}, answer
    # ctl returned once the daemon had closed the socket: it is exiting or gone.
    assert gate.wait_exit(15) == 0
    gate.assert_clean_exit()
    assert len(recorder.messages) == 1 and b"drained" in recorder.messages[0].content
    assert not os.path.exists(gate.control_socket)
    r = run_ctl(ctl_binary, "-s", gate.control_socket, "status")
    assert r.returncode == 3 and "cannot reach smtpgate" in r.stderr


def test_drain_text_waits_for_the_exit(ctl_binary, gate_factory, recorder):
    gate = gate_factory([recorder.address])
    r = run_ctl(ctl_binary, "-s", gate.control_socket, "drain")
    assert r.returncode == 0, r.stderr
    assert "grace_seconds: 10" in r.stdout.splitlines()
    assert r.stdout.rstrip().endswith("stopped: smtpgate has exited")
    assert gate.wait_exit(15) == 0
    gate.assert_clean_exit()


# ---- quarantine ----

@pytest.mark.time_limit(120)
def test_quarantine_list_show_release_to_postfix_exactly_once(ctl_binary, gate_factory, postfix,
                                                             plugins):
    marker = "QUARANTINE-CTL-RELEASE"
    gate = quarantine_gate(gate_factory, postfix.address, plugins, marker)
    qid = quarantine_one(gate, marker, ["a@example.test", "b@example.test"], "held for release",
                         source=CLIENT_ADDR)
    assert not [m for m in postfix.delivered() if marker.encode() in m]

    lst = ctl_json(ctl_binary, gate, "quarantine", "list")
    assert lst["count"] == 1 and lst["dir"] == gate.settings["quarantine_dir"]
    [e] = lst["messages"]
    assert e["id"] == qid and e["client"] == CLIENT_ADDR and e["helo"] == "helo.example.test"
    assert e["from"] == "s@example.test" and e["to"] == ["a@example.test", "b@example.test"]
    assert e["reason"] == "test marker found" and e["filter"] == "policy"
    path = Path(gate.settings["quarantine_dir"]) / f"{qid}.eml"
    text = path.read_bytes()
    body_at = text.index(b"X-Quarantine-Filter: policy\r\n") + len(b"X-Quarantine-Filter: policy\r\n")
    assert e["size"] == len(text) - body_at

    show = ctl_json(ctl_binary, gate, "quarantine", "show", qid)
    assert show["file"] == str(path) and show["message_truncated"] is False
    assert show["message"].encode() == text[body_at:]
    assert "X-Quarantine" not in show["message"] and "Subject: held for release" in show["message"]
    shown = run_ctl(ctl_binary, "-s", gate.control_socket, "quarantine", "show", qid)
    assert shown.returncode == 0 and f"body {marker}\n" in shown.stdout, shown.stdout

    mark = postfix.log_mark()
    rel = ctl_json(ctl_binary, gate, "quarantine", "release", qid, timeout=90)
    assert rel["released"] is True and rel["file_kept"] is False and rel["code"] == 250, rel
    assert rel["from"] == "s@example.test"
    assert [r["to"] for r in rel["recipients"]] == ["a@example.test", "b@example.test"]
    assert all(r["reply"].startswith("250 2.1.5") for r in rel["recipients"]), rel
    m = re.search(r"queued as (\S+)", rel["reply"])
    assert m, rel["reply"]
    pf_qid = m.group(1)
    assert not path.exists()

    delivered = postfix.wait_delivered(marker.encode(), n=2)
    # One copy per recipient, the envelope as it was, no X-Quarantine line.
    assert sorted(re.search(rb"^Delivered-To: (\S+)\r?$", d, re.M).group(1) for d in delivered) \
        == [b"a@example.test", b"b@example.test"]
    for d in delivered:
        assert re.search(rb"^Return-Path: <s@example.test>\r?$", d, re.M), d[:400]
        assert b"X-Quarantine" not in d
        assert b"Subject: held for release" in d
    # Postfix judged it as the quarantined client's.
    postfix.wait_sessions_closed(mark)
    clients = postfix.queue_ids_since(mark)
    assert clients.get(pf_qid, "").endswith(f"[{CLIENT_ADDR}]"), clients
    assert re.search(rf"quarantine: {re.escape(qid)} released by uid {os.geteuid()}: "
                     rf"from=<s@example\.test> to=<a@example\.test>,<b@example\.test> "
                     rf"upstream=u0\[{re.escape(postfix.address)}\]: 250 .*{pf_qid}",
                     gate.log_text()), gate.log_tail()
    # Once: a second release finds nothing, and nothing more arrives.
    again = ctl_json(ctl_binary, gate, "quarantine", "release", qid, rc=1)
    assert again["error"] == f"{qid}: no such quarantined message"
    time.sleep(1.5)
    assert len([m for m in postfix.delivered() if marker.encode() in m]) == 2
    assert ctl_json(ctl_binary, gate, "quarantine", "list")["count"] == 0


def test_release_refused_by_the_upstream_keeps_the_file(ctl_binary, gate_factory,
                                                        recorder_factory, plugins):
    marker = "QUARANTINE-CTL-REFUSED"
    recorder = recorder_factory()
    gate = quarantine_gate(gate_factory, recorder.address, plugins, marker)
    recorder.wait_idle()
    qid = quarantine_one(gate, marker, ["a@example.test", "gone@example.test"], "refused")
    path = Path(gate.settings["quarantine_dir"]) / f"{qid}.eml"
    recorder.script.rcpt_replies = {"gone@example.test": "550 5.1.1 No such user here"}
    rel = ctl_json(ctl_binary, gate, "quarantine", "release", qid, rc=1)
    assert rel["ok"] is False and rel["released"] is False and rel["file_kept"] is True
    assert rel["code"] == 550
    assert rel["reply"] == "<gone@example.test>: 550 5.1.1 No such user here", rel
    assert rel["error"] == "the upstream refused the release; the message stays in the quarantine"
    assert path.exists()
    # All or nothing: no message went, not even to the recipient it took.
    assert recorder.messages == []
    assert re.search(rf"quarantine: {re.escape(qid)} release refused .*gone@example\.test.*"
                     rf"550 5\.1\.1 No such user here; .* stays", gate.log_text())
    # A refusal at end of data, too.
    recorder.script.rcpt_replies = {}
    recorder.script.final_reply = "554 5.7.1 Still spam"
    rel = ctl_json(ctl_binary, gate, "quarantine", "release", qid, rc=1)
    assert rel["code"] == 554 and rel["reply"] == "554 5.7.1 Still spam" and path.exists()
    # Accepted at last: delivered once, without the X-Quarantine lines, file gone.
    recorder.script.final_reply = "250 2.0.0 Ok: queued as {qid}"
    base = len(recorder.messages)
    rel = ctl_json(ctl_binary, gate, "quarantine", "release", qid)
    assert rel["released"] is True and not path.exists()
    msgs = recorder.wait_messages(base + 1)
    assert len(msgs) == base + 1 == 1
    assert msgs[0].mail_from == "s@example.test"
    assert msgs[0].rcpts == ["a@example.test", "gone@example.test"]
    assert b"X-Quarantine" not in msgs[0].content and marker.encode() in msgs[0].content


def test_release_with_the_upstream_down_keeps_the_file(ctl_binary, gate_factory, recorder_factory,
                                                       plugins):
    marker = "QUARANTINE-CTL-DOWN"
    recorder = recorder_factory()
    gate = quarantine_gate(gate_factory, recorder.address, plugins, marker)
    recorder.wait_idle()
    qid = quarantine_one(gate, marker, ["a@example.test"], "down")
    recorder.stop()
    rel = ctl_json(ctl_binary, gate, "quarantine", "release", qid, rc=1)
    assert rel["code"] == 0 and rel["file_kept"] is True and rel["reply"].startswith("4"), rel
    assert rel["error"] == "the upstream could not be reached; the message stays in the quarantine"
    assert (Path(gate.settings["quarantine_dir"]) / f"{qid}.eml").exists()


def test_delete_and_ids_that_leave_the_folder(ctl_binary, gate_factory, recorder, plugins,
                                              workdir):
    marker = "QUARANTINE-CTL-DELETE"
    gate = quarantine_gate(gate_factory, recorder.address, plugins, marker)
    recorder.wait_idle()
    qid = quarantine_one(gate, marker, ["a@example.test"], "to delete")
    qdir = Path(gate.settings["quarantine_dir"])
    # A file beside the quarantine, and a link inside it to outside.
    outside = workdir / "secret.eml"
    outside.write_text("X-Quarantine-Date: d\n")
    (qdir / "link.eml").symlink_to(outside)
    sock = gate.control_socket
    for line in [b"quarantine show ../secret\n", b"quarantine delete ../secret\n",
                 b"quarantine release ../../etc/passwd\n", b"quarantine show /etc/passwd\n",
                 b"quarantine delete .hidden\n", b"quarantine delete a..b\n"]:
        r = raw_request(sock, line)
        assert r["ok"] is False and r["command"] is None, (line, r)
        assert r["error"] == "not a quarantine ID (letters, digits, '.', '_', '-'; no \"..\")"
    r = raw_request(sock, b"quarantine show link\n")
    assert r == {"ok": False, "command": "quarantine show",
                 "error": "link: not a quarantined message"}, r
    assert raw_request(sock, b"quarantine delete link\n")["ok"] is False
    assert (qdir / "link.eml").is_symlink() and outside.exists()
    # The link is listed as not a message of the quarantine, never read through.
    lst = ctl_json(ctl_binary, gate, "quarantine", "list")
    assert sorted(m["id"] for m in lst["messages"]) == sorted([qid, "link"])
    assert [m for m in lst["messages"] if m["id"] == "link"][0]["invalid"] is True
    # smtpgate-ctl refuses them itself: usage.
    r = run_ctl(ctl_binary, "-s", sock, "quarantine", "delete", "../secret")
    assert r.returncode == 2 and "not a quarantine ID" in r.stderr
    d = ctl_json(ctl_binary, gate, "quarantine", "delete", qid)
    assert d == {"ok": True, "command": "quarantine delete", "id": qid,
                 "file": str(qdir / f"{qid}.eml"), "deleted": True}
    assert not (qdir / f"{qid}.eml").exists()
    assert re.search(rf"quarantine: {re.escape(qid)} deleted by uid {os.geteuid()}",
                     gate.log_text())
    again = ctl_json(ctl_binary, gate, "quarantine", "delete", qid, rc=1)
    assert again["error"] == f"no quarantined message {qid}"
    assert recorder.messages == []


# ---- requests and exit codes ----

def test_bad_requests_answered_not_obeyed(gate_factory, recorder):
    gate = gate_factory([recorder.address])
    sock = gate.control_socket
    assert raw_request(sock, b"shutdown\n") == {"ok": False, "command": None,
                                                "error": "unknown command"}
    assert raw_request(sock, b"status now\n")["error"] == "this command takes no argument"
    assert raw_request(sock, b"drain 5s\n")["error"] == \
        "drain: GRACE must be whole seconds from 0 to 86400"
    assert raw_request(sock, b"x" * 2000)["error"] == "request line too long"
    assert raw_request(sock, b"STATUS\r\n")["command"] == "status"
    assert gate.alive()


def test_exit_codes(ctl_binary, gate_factory, recorder, workdir):
    gate = gate_factory([recorder.address])
    sock = gate.control_socket
    assert run_ctl(ctl_binary, "-s", sock, "status").returncode == 0
    # -c finds the socket in the configuration.
    r = run_ctl(ctl_binary, "-c", str(gate.conf_path), "--json", "status")
    assert r.returncode == 0 and json.loads(r.stdout)["pid"] == gate.pid, r.stderr
    assert run_ctl(ctl_binary, "-s", sock, "quarantine", "show", "NOSUCH1").returncode == 1
    for args in (["-s", sock], ["-s", sock, "frobnicate"], ["-s", sock, "drain", "-1"],
                 ["-s", sock, "quarantine"], ["--bogus", "status"],
                 ["-s", sock, "-c", str(gate.conf_path), "status"], ["-t", "0", "status"]):
        r = run_ctl(ctl_binary, *args)
        assert r.returncode == 2, (args, r.returncode, r.stderr)
    r = run_ctl(ctl_binary, "-s", str(workdir / "nothing.sock"), "status")
    assert r.returncode == 3 and "cannot reach smtpgate at" in r.stderr
    off = workdir / "off.conf"
    off.write_text(gate.conf_path.read_text() + 'control_socket = ""\n')
    r = run_ctl(ctl_binary, "-c", str(off), "status")
    assert r.returncode == 3 and 'control_socket is ""' in r.stderr
    # A listener that is not smtpgate's: no answer of ours.
    fake = workdir / "fake.sock"
    srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    srv.bind(str(fake))
    srv.listen(1)

    def answer_garbage():
        conn, _ = srv.accept()
        conn.recv(100)
        conn.sendall(b"220 hello\n")
        conn.close()

    t = threading.Thread(target=answer_garbage)
    t.start()
    r = run_ctl(ctl_binary, "-s", str(fake), "status")
    t.join(10)
    srv.close()
    assert r.returncode == 3 and "not an answer of smtpgate's" in r.stderr, r.stderr
    h = run_ctl(ctl_binary, "-h")
    assert h.returncode == 0 and "exit status: 0 done, 1 refused or failed, 2 usage, 3 daemon " \
        "not reached" in h.stdout
    v = run_ctl(ctl_binary, "--version")
    assert v.returncode == 0 and v.stdout.strip() == f"smtpgate-ctl {VERSION}"


def test_control_socket_off(gate_factory, recorder):
    gate = gate_factory([recorder.address], control_socket="")
    assert not any(gate.control_dir.iterdir())
    gate.stop()
    gate.assert_clean_exit()
