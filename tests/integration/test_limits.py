"""Protocol errors and limits get the reply codes of issue 2 and bounded behaviour.

Unknown command 500 5.5.1, bad sequence 503 5.5.1, syntax 501 (5.5.4),
command line over max_line_length 500 5.5.2 (and the session goes on),
SIZE over max_message_size 552 5.3.4 at MAIL, too many recipients 452 4.5.3,
the hard error limit (421 and close), connection limits (421 at connect),
the command timeout (421 and close), and bare-LF command lines accepted.
"""

from __future__ import annotations

import pytest

from helpers import assert_reply, codes
from smtpclient import ConnectionClosed, simple_message


def test_unknown_command(gate):
    """An unknown verb gets 500 5.5.1."""
    with gate.connect() as c:
        c.ehlo()
        assert_reply(c.cmd("FROBNICATE now"), 500, "5.5.1")
        c.quit()


@pytest.mark.parametrize("line", ["DATA", "RCPT TO:<r@example.test>"])
def test_bad_sequence(gate, line):
    """DATA or RCPT before MAIL gets 503 5.5.1."""
    with gate.connect() as c:
        c.ehlo()
        assert_reply(c.cmd(line), 503, "5.5.1")
        c.quit()


def test_mail_before_ehlo(gate):
    """MAIL before any HELO/EHLO is out of sequence: 503 5.5.1."""
    with gate.connect() as c:
        assert_reply(c.cmd("MAIL FROM:<s@example.test>"), 503, "5.5.1")
        c.quit()


@pytest.mark.parametrize("line", ["MAIL FROM:s@example.test>", "MAIL FROM:<s@example.test",
                                  "MAIL TO:<s@example.test>", "MAIL FROM:<s@example.test> SIZE=abc"])
def test_mail_syntax_error(gate, recorder, line):
    """A malformed MAIL gets 501 and nothing is sent upstream for it."""
    with gate.connect() as c:
        c.ehlo()
        r = c.cmd(line)
        assert r.code == 501, f"{line!r} got {r}"
        assert r.enhanced and r.enhanced.startswith("5."), str(r)
        c.quit()
    recorder.wait_idle()
    assert all(not any(v == "MAIL" for v in conn.verbs) for conn in recorder.connections)


def test_syntax_error_enhanced_code(gate):
    """A command with a syntax error in its arguments gets 501 5.5.4."""
    with gate.connect() as c:
        assert_reply(c.cmd("EHLO"), 501, "5.5.4")
        c.quit()


def test_command_line_too_long(gate):
    """A command line over 512 octets gets 500 5.5.2 and the session continues."""
    with gate.connect() as c:
        c.ehlo()
        assert_reply(c.cmd("NOOP " + "x" * 600), 500, "5.5.2")
        assert c.cmd("NOOP").code == 250
        assert_reply(c.cmd("MAIL FROM:<" + "a" * 520 + "@example.test>"), 500, "5.5.2")
        assert c.cmd("NOOP").code == 250
        c.quit()


def test_command_line_very_long_is_not_buffered(gate):
    """A 1 MiB line without any newline is refused (or the client dropped), never
    buffered without bound; smtpgate stays healthy for the next client."""
    c = gate.connect()
    c.ehlo()
    try:
        c.send(b"NOOP " + b"y" * (1 << 20) + b"\r\n")
        r = c.read_reply()
        assert r.code in (500, 421), str(r)
    except (ConnectionClosed, ConnectionResetError, BrokenPipeError):
        pass
    c.close()
    with gate.connect() as d:
        d.ehlo()
        d.quit()


def test_bare_lf_command_lines_accepted(gate, recorder):
    """Commands ending in a bare LF (a person typing into netcat) work."""
    with gate.connect() as c:
        c.send(b"EHLO typist.example.test\n")
        assert c.read_reply().code == 250
        c.send(b"NOOP\n")
        assert c.read_reply().code == 250
        c.send(b"MAIL FROM:<s@example.test>\nRCPT TO:<r@example.test>\nDATA\n")
        assert codes(c.read_replies(3)) == [250, 250, 354]
        c.send(b"Subject: typed\r\n\r\nhi\r\n.\r\n")
        assert c.read_reply().code == 250
        c.quit()
    recorder.wait_messages(1)


def test_size_over_limit_refused_at_mail(recorder, gate_factory):
    """SIZE= above max_message_size: 552 5.3.4 at MAIL; SIZE equal to it is fine."""
    gate = gate_factory([recorder.address], max_message_size=100_000)
    with gate.connect() as c:
        caps = c.ehlo().keywords()
        assert "SIZE" in caps and int(caps["SIZE"]) <= 100_000, caps
        assert_reply(c.cmd("MAIL FROM:<s@example.test> SIZE=100001"), 552, "5.3.4")
        assert c.cmd("MAIL FROM:<s@example.test> SIZE=100000").code == 250
        c.quit()


def test_too_many_recipients(recorder, gate_factory):
    """max_recipients=2: the third RCPT gets 452 4.5.3; the message goes to the first two."""
    gate = gate_factory([recorder.address], max_recipients=2)
    with gate.connect() as c:
        c.ehlo()
        replies = c.mail_transaction("s@example.test", ["a@example.test", "b@example.test",
                                                        "c@example.test"], simple_message("rcpt-limit"))
        assert codes(replies) == [250, 250, 250, 452, 354, 250], [str(r) for r in replies]
        assert_reply(replies[3], 452, "4.5.3")
        c.quit()
    [m] = recorder.wait_messages(1)
    assert m.rcpts == ["a@example.test", "b@example.test"]


def test_hard_error_limit(recorder, gate_factory):
    """hard_error_limit=3: errors are answered until the limit, then 421 and the
    connection closes; the count is bounded (no more than limit + 1 replies)."""
    gate = gate_factory([recorder.address], hard_error_limit=3)
    with gate.connect() as c:
        c.ehlo()
        c.send(b"".join(b"BAD%d\r\n" % i for i in range(10)))
        replies = c.read_until_closed(max_replies=20)
    assert replies, "no reply at all"
    assert replies[-1].code == 421, [str(r) for r in replies]
    assert all(r.code >= 500 for r in replies[:-1]), [str(r) for r in replies]
    assert len(replies) <= 4, f"{len(replies)} replies for a limit of 3: {[str(r) for r in replies]}"


def test_max_connections(recorder, gate_factory):
    """max_connections=2: a third simultaneous client gets 421 at connect; when one
    leaves, a new client is served again."""
    gate = gate_factory([recorder.address], max_connections=2, max_connections_per_client=10)
    a, b = gate.connect(), gate.connect()
    try:
        a.ehlo()
        b.ehlo()
        third = gate.connect(read_greeting=False)
        replies = third.read_until_closed()
        third.close()
        assert replies and replies[0].code == 421, replies
        a.quit()
        from netutil import wait_until

        def served():
            d = gate.connect(read_greeting=False)
            try:
                return d.read_reply().code == 220
            finally:
                d.close()
        wait_until(served, 15, "a new client to be served after one left")
    finally:
        a.close()
        b.close()


def test_command_timeout(recorder, gate_factory):
    """command_timeout=2: an idle client gets 421 and the connection is closed."""
    gate = gate_factory([recorder.address], command_timeout=2, connect_grace=2)
    with gate.connect(timeout=30) as c:
        c.ehlo()
        replies = c.read_until_closed()
    assert replies and replies[-1].code == 421, [str(r) for r in replies]


def test_connect_grace(recorder, gate_factory):
    """connect_grace=2: a client that connects and never says EHLO/HELO gets 421 and is
    closed, with no upstream connection."""
    gate = gate_factory([recorder.address], connect_grace=2)
    recorder.wait_idle()
    baseline = len(recorder.connections)
    with gate.connect(timeout=30) as c:
        replies = c.read_until_closed()
    assert replies and replies[-1].code == 421, [str(r) for r in replies]
    assert len(recorder.connections) == baseline


def test_data_timeout(recorder, gate_factory):
    """data_timeout=2: a client that stalls in the middle of DATA gets 421 and is closed;
    the half message never reaches the upstream."""
    gate = gate_factory([recorder.address], data_timeout=2)
    with gate.connect(timeout=30) as c:
        c.ehlo()
        c.send(b"MAIL FROM:<s@example.test>\r\nRCPT TO:<r@example.test>\r\nDATA\r\n")
        assert codes(c.read_replies(3)) == [250, 250, 354]
        c.send(b"Subject: stalled\r\n\r\nhalf a message\r\n")
        replies = c.read_until_closed()
    assert replies and replies[-1].code == 421, [str(r) for r in replies]
    recorder.wait_idle()
    assert recorder.messages == []
