"""Mail flows through smtpgate as if the upstream answered, and only when needed.

Rule 1 (no acknowledgement before the upstream), rule 2 (transparent relay of
replies, lazy upstream connection) and rule 3 (the upstream learns the real
client by XCLIENT) from DESIGN.md, checked with swaks and smtplib as clients
and the recording upstream / smtp-sink behind.
"""

from __future__ import annotations

import re
import smtplib

from helpers import (assert_no_upstream_connection, assert_reply, codes, upstream_baseline,
                     wait_sessions_logged)
from netutil import LOOPBACK
from recorder import Script
from smtpclient import simple_message, swaks, swaks_final_reply


def test_one_message_via_swaks(gate, recorder):
    """swaks delivers one message; the client's final reply is the upstream's, word for word."""
    r = swaks(gate.address, "--to", "rcpt@example.test", "--from", "sender@example.test",
              "--header", "Subject: basic-swaks", "--body", "hello through smtpgate")
    final = swaks_final_reply(r.stdout)
    [m] = recorder.wait_messages(1)
    assert final == m.reply, f"client got {final!r}, upstream said {m.reply!r}\n{r.stdout}"
    assert r.returncode == 0, r.stdout + r.stderr
    assert m.mail_from == "sender@example.test" and m.rcpts == ["rcpt@example.test"]
    assert b"Subject: basic-swaks" in m.content and b"hello through smtpgate" in m.content


def test_one_message_via_smtplib_to_smtp_sink(sink, gate_factory):
    """smtplib through smtpgate into Postfix's smtp-sink: the message is captured.  smtp-sink
    offers XCLIENT without ADDR and answers it 250, so it cannot learn the real client:
    smtpgate refuses XCLIENT there, and this test says client_identity = none explicitly."""
    gate = gate_factory([sink.address], client_identity="none")
    content = simple_message("basic-smtplib", "via smtp-sink\r\n")
    with smtplib.SMTP(LOOPBACK, gate.port, timeout=30) as s:
        s.ehlo("client.example.test")
        assert s.sendmail("sender@example.test", ["a@example.test", "b@example.test"], content) == {}
    [m] = sink.wait_messages(1)
    assert m.mail_args.startswith("<sender@example.test>")
    assert [a.split()[0] for a in m.rcpt_args] == ["<a@example.test>", "<b@example.test>"]
    assert b"Subject: basic-smtplib" in m.message and b"via smtp-sink" in m.message


def test_upstream_conversation(gate, recorder):
    """Upstream sees EHLO (smtpgate's name), XCLIENT with the real client, EHLO again, then MAIL.

    XCLIENT carries the client's address, port and HELO name so that the MTA
    judges the real client (rule 3), and it is followed by a new EHLO as the
    XCLIENT protocol requires.
    """
    with gate.connect() as c:
        c.ehlo("helo-name.example.test")
        client_port = c.sock.getsockname()[1]
        replies = c.mail_transaction("s@example.test", ["r@example.test"], simple_message("order"))
        assert codes(replies) == [250, 250, 354, 250]
        c.quit()
    [m] = recorder.wait_messages(1)
    conn = recorder.connections[m.conn]
    verbs = conn.verbs
    assert verbs[:4] == ["EHLO", "XCLIENT", "EHLO", "MAIL"], verbs
    assert conn.commands[0][1] == gate.settings["hostname"]
    assert m.xclient.get("ADDR") == "127.0.0.1"
    assert m.xclient.get("PORT") == str(client_port)
    assert m.xclient.get("HELO") == "helo-name.example.test"
    assert "NAME" in m.xclient


def test_no_upstream_connection_for_helo_stage_client(gate, recorder):
    """A client that only greets, asks EHLO/HELO/NOOP/RSET/HELP and quits costs the upstream nothing."""
    baseline = upstream_baseline(recorder)
    mark = gate.log_mark()
    with gate.connect() as c:
        assert c.greeting.code == 220
        c.ehlo()
        assert c.cmd("HELO client.example.test").code == 250
        assert c.cmd("NOOP").code == 250
        assert c.cmd("RSET").code == 250
        c.cmd("HELP")
        assert c.quit().code == 221
    wait_sessions_logged(gate, mark)
    assert_no_upstream_connection(recorder, baseline)


def test_no_upstream_connection_for_client_refused_at_connect(recorder, gate_factory):
    """max_connections_per_client=1: the second connection gets 421 at connect and closes;
    neither connection opens anything upstream."""
    gate = gate_factory([recorder.address], max_connections_per_client=1)
    baseline = upstream_baseline(recorder)
    mark = gate.log_mark()
    with gate.connect() as first:
        first.ehlo()
        second = gate.connect(read_greeting=False)
        replies = second.read_until_closed()
        assert replies and replies[0].code == 421, f"second connection got {replies}"
        assert len(replies) == 1, replies
        second.close()
        assert first.cmd("NOOP").code == 250, "the first connection is unaffected"
        first.quit()
    wait_sessions_logged(gate, mark, 2)
    assert_no_upstream_connection(recorder, baseline)


def test_no_upstream_connection_for_client_at_error_limit(recorder, gate_factory):
    """A client that only sends junk until the hard error limit costs the upstream nothing."""
    gate = gate_factory([recorder.address], hard_error_limit=3)
    baseline = upstream_baseline(recorder)
    mark = gate.log_mark()
    with gate.connect() as c:
        c.ehlo()
        got = []
        for i in range(6):
            try:
                r = c.cmd(f"JUNK{i}")
            except Exception:
                break
            got.append(r.code)
            if r.code == 421:
                break
        assert 421 in got, f"no 421 after {len(got)} errors: {got}"
    wait_sessions_logged(gate, mark)
    assert_no_upstream_connection(recorder, baseline)


def test_many_messages_in_one_session(gate, recorder):
    """Twenty transactions in one client session all arrive, in order, each intact."""
    n = 20
    contents = [simple_message(f"many-{i}", f"message number {i}\r\n" * (i + 1)) for i in range(n)]
    with gate.connect() as c:
        c.ehlo()
        for i, content in enumerate(contents):
            replies = c.mail_transaction(f"s{i}@example.test", [f"r{i}@example.test"], content)
            assert codes(replies) == [250, 250, 354, 250], (i, [str(r) for r in replies])
        c.quit()
    msgs = recorder.wait_messages(n)
    assert [m.content for m in msgs] == contents
    assert [m.mail_from for m in msgs] == [f"s{i}@example.test" for i in range(n)]


def test_transaction_log_line_has_upstream_queue_id(gate, recorder):
    """One log line per transaction carries queued_as=<the upstream's queue id>, and one
    line per connection is written when the client leaves."""
    mark = gate.log_mark()
    with gate.connect() as c:
        c.ehlo()
        for i in range(2):
            assert c.mail_transaction("s@example.test", ["r@example.test"],
                                      simple_message(f"qid-{i}"))[-1].code == 250
        c.quit()
    msgs = recorder.wait_messages(2)
    wait_sessions_logged(gate, mark)
    tx = gate.tx_lines(mark)
    assert len(tx) == 2, tx
    for line, m in zip(tx, msgs):
        assert re.search(rf"queued_as={re.escape(m.qid)}(\s|$)", line), (line, m.qid)
    conn_lines = [l for l in gate.log_since(mark).splitlines() if "disconnect from" in l]
    assert len(conn_lines) == 1, conn_lines


def test_vrfy_is_relayed(gate, recorder):
    """VRFY needs the upstream: smtpgate opens the connection and relays its answer."""
    with gate.connect() as c:
        c.ehlo()
        r = c.cmd("VRFY someone@example.test")
        c.quit()
    assert r.code == 252, str(r)
    recorder.wait_idle()
    assert any("VRFY" in conn.verbs for conn in recorder.connections)


def test_swaks_pipelining_8bit_body(gate, recorder):
    """swaks with --pipeline and an 8-bit (UTF-8) body: accepted, the octets intact."""
    body = "caf\u00e9 \u00fcber na\u00efve"
    r = swaks(gate.address, "--pipeline", "--to", "rcpt@example.test", "--from", "s@example.test",
              "--header", "Subject: swaks-pipeline", "--body", body)
    assert swaks_final_reply(r.stdout).startswith("250"), r.stdout
    [m] = recorder.wait_messages(1)
    assert body.encode() in m.content


def test_greeting_is_smtpgates_own(gate, recorder):
    """The 220 greeting comes from smtpgate itself (its hostname), with no upstream connection."""
    baseline = upstream_baseline(recorder)
    mark = gate.log_mark()
    with gate.connect() as c:
        assert_reply(c.greeting, 220)
        assert gate.settings["hostname"] in c.greeting.text
        c.quit()
    wait_sessions_logged(gate, mark)
    assert_no_upstream_connection(recorder, baseline)


def test_rset_and_noop_between_transactions(gate, recorder):
    """RSET discards the envelope; a later transaction carries only its own recipients."""
    with gate.connect() as c:
        c.ehlo()
        assert c.cmd("MAIL FROM:<dropped@example.test>").code == 250
        assert c.cmd("RCPT TO:<dropped@example.test>").code == 250
        assert c.cmd("RSET").code == 250
        assert c.cmd("NOOP").code == 250
        replies = c.mail_transaction("kept@example.test", ["kept@example.test"], simple_message("rset"))
        assert replies[-1].code == 250
        c.quit()
    [m] = recorder.wait_messages(1)
    assert m.mail_from == "kept@example.test" and m.rcpts == ["kept@example.test"]



def test_xclient_without_addr_never_hides_the_client(sink, gate_factory):
    """Rule 3, fail closed: client_identity = xclient in front of an upstream whose XCLIENT
    lacks ADDR (smtp-sink offers "XCLIENT NAME HELO").  The upstream could only see
    smtpgate's own 127.0.0.1, so the client from 127.0.0.2 gets a 4xx and nothing is
    captured - never a message accepted under the wrong address."""
    gate = gate_factory([sink.address], client_identity="xclient")
    with gate.connect(source="127.0.0.2") as c:
        c.ehlo()
        replies = c.mail_transaction("s@example.test", ["r@example.test"], simple_message("no-addr"))
        c.quit()
    assert replies[-1].code // 100 == 4, [str(r) for r in replies]
    assert sink.messages() == []


def test_upstream_without_xclient_never_hides_the_client(recorder_factory, gate_factory):
    """Rule 3, fail closed: client_identity = xclient and an upstream that offers no
    XCLIENT at all: 4xx for the client, no message upstream."""
    rec = recorder_factory(caps=Script().caps - {"XCLIENT"})
    gate = gate_factory([rec.address], client_identity="xclient")
    with gate.connect(source="127.0.0.2") as c:
        c.ehlo()
        replies = c.mail_transaction("s@example.test", ["r@example.test"], simple_message("no-xclient"))
        c.quit()
    assert replies[-1].code // 100 == 4, [str(r) for r in replies]
    rec.wait_idle()
    assert rec.messages == []
    assert all("MAIL" not in conn.verbs for conn in rec.connections)


def test_xclient_answered_with_250_is_success(recorder_factory, gate_factory):
    """Any 2xx to XCLIENT is success (Postfix says 220, others 250): the upstream is
    usable, the message goes through and the upstream learned the real client."""
    rec = recorder_factory(xclient_reply="250 2.0.0 Ok")
    gate = gate_factory([rec.address], client_identity="xclient")
    with gate.connect(source="127.0.0.2") as c:
        assert c.ehlo().code == 250
        replies = c.mail_transaction("s@example.test", ["r@example.test"],
                                     simple_message("xclient-250"))
        c.quit()
    assert [r.code for r in replies] == [250, 250, 354, 250], [str(r) for r in replies]
    [m] = rec.wait_messages(1)
    assert m.xclient.get("ADDR") == "127.0.0.2", m.xclient
    assert "refused XCLIENT" not in gate.log_text()


def test_client_identity_none_sends_no_xclient(recorder, gate_factory):
    """client_identity = none: no XCLIENT goes upstream even though it is offered (the
    admin has said the upstream judges nobody by address)."""
    gate = gate_factory([recorder.address], client_identity="none",
                        client_identity_none_despite_xclient=True)
    with gate.connect() as c:
        c.ehlo()
        assert c.mail_transaction("s@example.test", ["r@example.test"],
                                  simple_message("identity-none"))[-1].code == 250
        c.quit()
    [m] = recorder.wait_messages(1)
    assert "XCLIENT" not in recorder.connections[m.conn].verbs
    assert m.xclient == {}


def test_xclient_respects_512_octets(gate, recorder):
    """A HELO name of 252 octets (near the longest legal domain name): every XCLIENT
    command stays within 512 octets (the upstream, like Postfix, refuses longer ones)
    and the name arrives whole."""
    helo = ("h" * 59 + ".") * 4 + "example.test"
    assert 250 <= len(helo) <= 255
    with gate.connect() as c:
        c.ehlo(helo)
        replies = c.mail_transaction("s@example.test", ["r@example.test"], simple_message("long-helo"))
        c.quit()
    assert replies[-1].code == 250, [str(r) for r in replies]
    [m] = recorder.wait_messages(1)
    lines = [arg for verb, arg in recorder.connections[m.conn].commands if verb == "XCLIENT"]
    assert lines and all(len("XCLIENT ") + len(a) + 2 <= 512 for a in lines), [len(a) for a in lines]
    assert m.xclient.get("HELO") == helo
    assert m.xclient.get("ADDR") == "127.0.0.1"


def test_xclient_values_are_xtext(gate, recorder):
    """XCLIENT values are xtext (RFC 1891): "+", "=" and other specials in the client's HELO
    are sent hex-escaped, so that the upstream reads back exactly what the client said."""
    helo = "odd+helo=name"
    with gate.connect() as c:
        c.ehlo(helo)
        replies = c.mail_transaction("s@example.test", ["r@example.test"], simple_message("xtext"))
        c.quit()
    assert replies[-1].code == 250, [str(r) for r in replies]
    [m] = recorder.wait_messages(1)
    assert m.xclient.get("HELO") == "odd+2Bhelo+3Dname", m.xclient


def test_per_client_limit_counts_each_address(recorder, gate_factory):
    """max_connections_per_client=1 limits one address, not everyone: while 127.0.0.1 holds
    its connection, a client from 127.0.0.2 is served."""
    gate = gate_factory([recorder.address], max_connections_per_client=1)
    with gate.connect(source="127.0.0.1") as first, gate.connect(source="127.0.0.2") as other:
        first.ehlo()
        assert other.greeting.code == 220
        other.ehlo()
        assert other.mail_transaction("s@example.test", ["r@example.test"],
                                      simple_message("other-address"))[-1].code == 250
        first.quit()
        other.quit()
    assert len(recorder.wait_messages(1)) == 1
