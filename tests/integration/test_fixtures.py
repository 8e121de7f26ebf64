"""The test upstreams themselves, talked to directly (no smtpgate).

These tests need no smtpgate binary.  They prove the instruments work before
they are trusted to judge the daemon: smtp-sink captures what swaks sends,
the recorder records exact octets, XCLIENT and scripted failures, and the
private Postfix takes mail, honours XCLIENT from 127.0.0.1 and logs the
client it was told about.
"""

from __future__ import annotations

import smtplib

import pytest

from netutil import LOOPBACK
from recorder import Script
from smtpclient import SMTPConn, dot_stuff, simple_message, swaks, swaks_final_reply


def _host_port(address: str) -> tuple[str, int]:
    host, _, port = address.rpartition(":")
    return host, int(port)


def test_sink_captures_swaks_message(sink):
    """smtp-sink writes one capture file per transaction with the envelope and the body."""
    r = swaks(_host_port(sink.address), "--to", "rcpt@example.test", "--from", "s@example.test",
              "--header", "Subject: sink-fixture", "--body", "sink body line")
    assert r.returncode == 0, r.stdout + r.stderr
    assert swaks_final_reply(r.stdout).startswith("250"), r.stdout
    [msg] = sink.wait_messages(1)
    assert msg.mail_args == "<s@example.test>"
    assert msg.rcpt_args == ["<rcpt@example.test>"]
    assert b"Subject: sink-fixture" in msg.message
    assert b"sink body line" in msg.message


def test_sink_capabilities(sink_factory):
    """smtp-sink lacks SIZE/SMTPUTF8/CHUNKING; -8 drops 8BITMIME, -C drops XCLIENT."""
    plain = sink_factory()
    reduced = sink_factory("-8", "-C")
    with SMTPConn(*_host_port(plain.address)) as c:
        caps = c.ehlo().keywords()
    assert {"PIPELINING", "8BITMIME", "XCLIENT"} <= caps.keys()
    assert not {"SIZE", "SMTPUTF8", "CHUNKING"} & caps.keys()
    with SMTPConn(*_host_port(reduced.address)) as c:
        caps = c.ehlo().keywords()
    assert not {"8BITMIME", "XCLIENT"} & caps.keys()


def test_recorder_records_exact_content_via_smtplib(recorder):
    """smtplib's message arrives unstuffed, byte for byte, with a queue id in the reply."""
    content = simple_message("recorder-fixture", ".leading dot\r\n..two dots\r\nend\r\n")
    with smtplib.SMTP(LOOPBACK, recorder.port, timeout=20) as s:
        s.ehlo("fixture.example.test")
        assert s.has_extn("xclient") and s.has_extn("pipelining")
        refused = s.sendmail("s@example.test", ["a@example.test", "b@example.test"], content)
        assert refused == {}
    [m] = recorder.wait_messages(1)
    assert m.content == content
    assert m.rcpts == ["a@example.test", "b@example.test"]
    assert m.method == "DATA"
    assert m.qid and m.reply.endswith(f"queued as {m.qid}")


def test_recorder_xclient_and_command_log(recorder):
    """XCLIENT is answered with 220, needs a new EHLO, and its attributes are recorded."""
    with SMTPConn(LOOPBACK, recorder.port) as c:
        c.ehlo("proxy.example.test")
        r = c.cmd("XCLIENT ADDR=127.0.0.2 NAME=client.example.test PORT=4000 HELO=h.example PROTO=ESMTP")
        assert r.code == 220
        assert c.cmd("MAIL FROM:<s@example.test>").code == 503, "EHLO needed after XCLIENT"
        c.ehlo("proxy.example.test")
        replies = c.mail_transaction("s@example.test", ["r@example.test"], b"x\r\n")
        assert [r.code for r in replies] == [250, 250, 354, 250]
        c.quit()
    [m] = recorder.wait_messages(1)
    assert m.xclient["ADDR"] == "127.0.0.2"
    recorder.wait_idle()
    [conn] = recorder.connections
    assert conn.verbs == ["EHLO", "XCLIENT", "MAIL", "EHLO", "MAIL", "RCPT", "DATA", "QUIT"]
    assert not conn.is_probe


def test_recorder_scripted_refusals(recorder_factory):
    """Per-RCPT refusals and the final reply are replayed exactly as scripted."""
    rec = recorder_factory(rcpt_replies={"bad@example.test": "550 5.1.1 <bad@example.test>: no such user"},
                           final_reply="451 4.7.1 Try again later, please")
    with SMTPConn(LOOPBACK, rec.port) as c:
        c.ehlo()
        replies = c.mail_transaction("s@example.test", ["bad@example.test", "ok@example.test"], b"x\r\n")
    assert [r.code for r in replies] == [250, 550, 250, 354, 451]
    assert replies[1].first_line == "550 5.1.1 <bad@example.test>: no such user"
    assert replies[-1].first_line == "451 4.7.1 Try again later, please"
    assert rec.messages == []


def test_recorder_close_and_greeting(recorder_factory):
    """Scripted connection drops and a 421 greeting behave as documented."""
    rec = recorder_factory(close_at=frozenset({"MAIL"}))
    with SMTPConn(LOOPBACK, rec.port) as c:
        c.ehlo()
        c.send(b"MAIL FROM:<s@example.test>\r\n")
        assert c.read_until_closed() == []
    busy = recorder_factory(greeting="421 4.3.2 Service not available")
    c = SMTPConn(LOOPBACK, busy.port, read_greeting=False)
    replies = c.read_until_closed()
    assert [r.first_line for r in replies] == ["421 4.3.2 Service not available"]


def test_recorder_bdat(recorder_factory):
    """With CHUNKING offered, BDAT chunks (no CRLF at the end, bare LF inside) are recorded as sent."""
    rec = recorder_factory(caps=Script().caps | {"CHUNKING", "BINARYMIME"})
    part1, part2 = b"Subject: bdat\r\n\r\nline\n.\r\n", b"last line without CRLF"
    with SMTPConn(LOOPBACK, rec.port) as c:
        assert "CHUNKING" in c.ehlo().keywords()
        assert c.cmd("MAIL FROM:<s@example.test> BODY=BINARYMIME").code == 250
        assert c.cmd("RCPT TO:<r@example.test>").code == 250
        c.send(b"BDAT %d\r\n" % len(part1) + part1)
        assert c.read_reply().code == 250
        c.send(b"BDAT %d LAST\r\n" % len(part2) + part2)
        assert c.read_reply().code == 250
    [m] = rec.wait_messages(1)
    assert m.method == "BDAT" and m.content == part1 + part2


def test_recorder_long_lines_and_8bit(recorder):
    """Lines far beyond 1000 octets and every 8-bit octet value are recorded intact."""
    body = bytes(range(0x80, 0x100)) + b"\r\n" + b"x" * 20000 + b"\r\n"
    content = simple_message("long", body)
    with SMTPConn(LOOPBACK, recorder.port) as c:
        c.ehlo()
        replies = c.mail_transaction("s@example.test", ["r@example.test"], content, "BODY=8BITMIME")
    assert replies[-1].code == 250
    [m] = recorder.wait_messages(1)
    assert m.content == content
    assert m.wire == dot_stuff(content)
    assert m.mail_params == "BODY=8BITMIME"


def test_postfix_takes_mail_from_swaks(postfix):
    """The private Postfix accepts and delivers mail for example.test."""
    mark = postfix.log_mark()
    r = swaks(_host_port(postfix.address), "--to", "user@example.test", "--from", "s@example.test",
              "--header", "Subject: postfix-fixture-swaks")
    assert swaks_final_reply(r.stdout).startswith("250 2.0.0 Ok: queued as"), r.stdout
    postfix.wait_delivered(b"postfix-fixture-swaks")
    [d] = postfix.wait_sessions_closed(mark)
    assert d.count("mail") == 1 and d.count("data") == 1


def test_postfix_xclient_from_loopback(postfix):
    """Postfix accepts XCLIENT from 127.0.0.1 and logs the announced client, and
    refuses to relay for a client outside mynetworks (127.0.0.2)."""
    mark = postfix.log_mark()
    with SMTPConn(*_host_port(postfix.address)) as c:
        assert "XCLIENT" in c.ehlo().keywords()
        assert c.cmd("XCLIENT ADDR=127.0.0.2 NAME=client.example.test").code == 220
        c.ehlo()
        replies = c.mail_transaction("s@example.test", ["user@example.test"],
                                     simple_message("postfix-fixture-xclient"))
        assert replies[-1].code == 250, replies
        qid = replies[-1].lines[0].rsplit(" ", 1)[-1]
        assert c.cmd("MAIL FROM:<s@example.test>").code == 250
        relay = c.cmd("RCPT TO:<user@elsewhere.test>")
        assert relay.code in (454, 554) and "Relay access denied" in relay.text
        c.quit()
    postfix.wait_sessions_closed(mark)
    assert postfix.queue_ids_since(mark).get(qid) == "client.example.test[127.0.0.2]"


@pytest.mark.parametrize("client", ["smtplib", "raw"])
def test_postfix_takes_mail_from_smtplib_and_raw(postfix, client):
    """Both client kinds deliver to the private Postfix (a sanity check of the Maildir reader)."""
    subject = f"postfix-fixture-{client}"
    host, port = _host_port(postfix.address)
    if client == "smtplib":
        with smtplib.SMTP(host, port, timeout=20) as s:
            s.sendmail("s@example.test", ["user@example.test"], simple_message(subject))
    else:
        with SMTPConn(host, port) as c:
            c.ehlo()
            assert c.mail_transaction("s@example.test", ["user@example.test"],
                                      simple_message(subject))[-1].code == 250
            c.quit()
    postfix.wait_delivered(subject.encode())
