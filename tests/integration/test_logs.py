"""What happened to this mail: smtpgate's log in the shape of Postfix's.

Per recipient a delivery line ("to=<r>, relay=..., dsn=..., status=sent
(reply), queued_as=Q") that leads by queued_as into the MTA's own log; per
refused envelope command a "reject: RCPT from name[addr]: reply; from=<s>
to=<r> proto=ESMTP helo=<h>" line, whoever refused it (smtpgate itself or
the upstream); the transaction line names the client.  Every line carries
one value per key.
"""

from __future__ import annotations

import re

from netutil import wait_until
from smtpclient import simple_message

KEY = re.compile(r"(?:^|[ ,])([a-z_]+)=")


def _assert_one_value_per_key(line: str) -> None:
    keys = KEY.findall(line.split(": ", 1)[1] if ": " in line else line)
    assert len(keys) == len(set(keys)), f"a key repeated: {line}"


def _lines(gate, mark: int, pattern: str, n: int) -> list[str]:
    rx = re.compile(pattern)

    def found():
        got = [l for l in gate.log_since(mark).splitlines() if rx.search(l)]
        return got if len(got) >= n else None
    return wait_until(found, 15, f"{n} log line(s) /{pattern}/")


def test_recipient_lines_and_upstream_refusal(recorder_factory, gate_factory):
    """Three recipients, the upstream refuses b: one reject line for b with the
    upstream's text, one delivery line each for a and c with the queue id, and
    the transaction line names the client's address."""
    refusal = "550 5.1.1 <b@example.test>: Recipient address rejected: User unknown"
    rec = recorder_factory(rcpt_replies={"b@example.test": refusal})
    gate = gate_factory([rec.address])
    mark = gate.log_mark()
    with gate.connect() as c:
        c.ehlo("client.example.test")
        replies = c.mail_transaction("s@example.test",
                                     ["a@example.test", "b@example.test", "c@example.test"],
                                     simple_message("logs"))
        c.quit()
    assert replies[-1].code == 250
    [m] = rec.wait_messages(1)
    qid = m.qid
    [reject] = _lines(gate, mark, r": reject: RCPT from ", 1)
    assert reject.endswith(
        f": reject: RCPT from unknown[127.0.0.1]: {refusal}; from=<s@example.test> "
        "to=<b@example.test> proto=ESMTP helo=<client.example.test>"), reject
    deliveries = _lines(gate, mark, r": to=<", 2)
    assert len(deliveries) == 2, deliveries
    for rcpt, line in zip(("a@example.test", "c@example.test"), deliveries):
        assert re.search(rf": to=<{re.escape(rcpt)}>, relay=u0\[127\.0\.0\.1:{rec.port}\], "
                         rf"delay=\d+\.\d{{3}}, dsn=2\.0\.0, status=sent "
                         rf"\(250 2\.0\.0 Ok: queued as {qid}\), queued_as={qid}$", line), line
        _assert_one_value_per_key(line)
    [tx] = gate.tx_lines(mark)
    assert " tx from=<s@example.test> nrcpt=2/3 " in tx, tx
    assert f" queued_as={qid} client=unknown[127.0.0.1] " in tx, tx
    _assert_one_value_per_key(tx)
    _assert_one_value_per_key(reject)


def test_refusals_by_smtpgate_are_logged(gate):
    """smtpgate's own refusals of envelope commands get the same reject line:
    an unknown MAIL parameter, RCPT before MAIL.  Other commands' errors do not."""
    mark = gate.log_mark()
    with gate.connect() as c:
        c.ehlo("helo.example.test")
        r1 = c.cmd("RCPT TO:<early@example.test>")
        r2 = c.cmd("MAIL FROM:<s@example.test> FROBNICATE=1")
        r3 = c.cmd("NOSUCHVERB")
        c.quit()
    assert r1.code == 503 and r2.code in (501, 555) and r3.code == 500
    lines = _lines(gate, mark, r": reject: ", 2)
    assert len(lines) == 2, lines
    assert lines[0].endswith(f": reject: RCPT from unknown[127.0.0.1]: {r1.first_line}; "
                             "to=<early@example.test> proto=ESMTP helo=<helo.example.test>"), lines[0]
    assert lines[1].endswith(f": reject: MAIL from unknown[127.0.0.1]: {r2.first_line}; "
                             "from=<s@example.test> proto=ESMTP helo=<helo.example.test>"), lines[1]


def test_logged_address_cannot_forge_lines(gate):
    """An address with octets outside printable ASCII is shown with '?' in their
    place (here UTF-8 without SMTPUTF8, refused): the log stays ASCII, and a
    client cannot fake a key on the line."""
    mark = gate.log_mark()
    with gate.connect() as c:
        c.ehlo()
        c.send("MAIL FROM:<jos\u00e9@example.test>\r\n".encode())
        r = c.read_reply()
        c.quit()
    assert r.code == 553, str(r)
    [line] = _lines(gate, mark, r": reject: MAIL", 1)
    assert "from=<jos??@example.test>" in line and line.isascii(), line


def test_journal_stream_lines(recorder, gate_factory, workdir):
    """Under systemd, stderr is the journal (JOURNAL_STREAM names its device and
    inode): lines carry no time stamp or name of smtpgate's own but a "<N>"
    prefix with the mail facility and the level (journald's SyslogLevelPrefix),
    so journalctl and a syslog daemon reading the journal put them with mail."""
    err = workdir / "smtpgate0.stderr"
    err.touch()
    st = err.stat()
    gate = gate_factory([recorder.address], env={"JOURNAL_STREAM": f"{st.st_dev}:{st.st_ino}"})
    recorder.wait_idle()
    with gate.connect() as c:
        c.ehlo()
        c.mail_transaction("s@example.test", ["r@example.test"], simple_message("journal"))
        c.quit()
    [tx] = wait_until(lambda: gate.tx_lines() or None, 15, "the transaction line")
    # LOG_MAIL (2 << 3) | LOG_INFO (6) = 22
    assert re.match(r"<22>[0-9A-F]{13}: tx from=<s@example\.test> ", tx), tx
    text = gate.log_text()
    assert not re.search(r"^\d{4}-\d\d-\d\dT", text, re.M), text[:500]
    # Every line smtpgate wrote has its prefix (sanitizer reports would not).
    own = [l for l in text.splitlines() if l]
    assert all(re.match(r"<\d+>", l) for l in own), [l for l in own if not l.startswith("<")]


def test_journal_stream_of_another_file_is_ignored(recorder, gate_factory, workdir):
    """JOURNAL_STREAM naming some other file (stderr redirected elsewhere by a
    wrapper): smtpgate's own time-stamped lines, as without systemd."""
    other = workdir / "not-stderr"
    other.touch()
    st = other.stat()
    gate = gate_factory([recorder.address], env={"JOURNAL_STREAM": f"{st.st_dev}:{st.st_ino}"})
    recorder.wait_idle()
    gate.wait_log(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z smtpgate\[\d+\]: ready: ")
    assert "<22>" not in gate.log_text()


def test_verdict_log_json_lines(recorder_factory, gate_factory, workdir):
    """verdict_log: one JSON object per transaction with the transaction line's
    facts; after the file is rotated and SIGHUP sent, the next line goes to a
    new file of that name."""
    import json
    import signal

    path = workdir / "verdicts.jsonl"
    rec = recorder_factory()
    gate = gate_factory([rec.address], verdict_log=str(path))
    rec.wait_idle()
    with gate.connect() as c:
        c.ehlo("client.example.test")
        c.mail_transaction("s@example.test", ["a@example.test", "b@example.test"],
                           simple_message("verdict-one"))
        c.quit()
    [m] = rec.wait_messages(1)
    [line] = wait_until(lambda: path.read_text().splitlines() or None, 15, "a verdict line")
    v = json.loads(line)
    assert v["result"] == "accepted" and v["reply_code"] == 250
    assert v["queued_as"] == m.qid and v["reply"] == f"2.0.0 Ok: queued as {m.qid}"
    assert v["from"] == "s@example.test" and v["rcpts"] == ["a@example.test", "b@example.test"]
    assert v["client_addr"] == "127.0.0.1" and v["client_name"] == "unknown"
    assert v["helo"] == "client.example.test" and v["size"] > 0
    assert v["upstream"] == f"u0[127.0.0.1:{rec.port}]"
    assert re.match(r"^[0-9A-F]{13}$", v["session"]) and v["duration"] >= 0

    rotated = workdir / "verdicts.jsonl.1"
    path.rename(rotated)
    mark = gate.log_mark()
    gate.send_signal(signal.SIGHUP)
    gate.wait_log(r"reloaded configuration, generation 2", mark)
    rec.script.final_reply = "554 5.7.1 Content refused"
    with gate.connect() as c:
        c.ehlo()
        c.mail_transaction("s@example.test", ["a@example.test"], simple_message("verdict-two"))
        c.quit()
    [line2] = wait_until(lambda: path.exists() and path.read_text().splitlines() or None, 15,
                         "a verdict line in the new file")
    v2 = json.loads(line2)
    assert v2["result"] == "rejected" and v2["reply_code"] == 554 and v2["queued_as"] is None
    assert len(rotated.read_text().splitlines()) == 1


def test_verdict_log_unwritable_keeps_running_config(recorder, gate_factory, workdir):
    """A verdict_log that cannot be opened refuses the new configuration, with
    the file and the reason; the running one stays and mail still flows."""
    import signal

    gate = gate_factory([recorder.address])
    recorder.wait_idle()
    mark = gate.log_mark()
    gate.write_config(verdict_log=str(workdir / "no-such-dir" / "v.jsonl"))
    gate.send_signal(signal.SIGHUP)
    gate.wait_log(r"verdict_log \"[^\"]*no-such-dir/v\.jsonl\": No such file or directory", mark)
    with gate.connect() as c:
        c.ehlo()
        replies = c.mail_transaction("s@example.test", ["a@example.test"], simple_message("still"))
        c.quit()
    assert replies[-1].code == 250
