"""An upstream that breaks the protocol, and a client that half-closes, never cost a message.

Rule 1 in the cases a well-behaved upstream never shows: only 354 lets a
message go on after DATA, and only a reply after the whole message (the final
dot) can be its final reply.  A 2xx anywhere else is a protocol error: the
client gets 451 and keeps its copy, the upstream connection is dropped, and
nothing says "accepted".  And the other side: a client that shuts its sending
side after the final dot still gets every reply it is owed, and the
transaction is logged.
"""

from __future__ import annotations

import socket

from helpers import assert_reply, codes
from netutil import wait_until
from smtpclient import dot_stuff, simple_message


def _transaction(gate, content: bytes, timeout: float = 30):
    c = gate.connect(timeout=timeout)
    try:
        c.ehlo()
        return c.mail_transaction("s@example.test", ["r@example.test"], content)
    finally:
        c.quit()


def test_2xx_to_data_is_not_a_final_reply(recorder_factory, gate_factory):
    """The upstream answers DATA with 250 instead of 354: it never got the message,
    so the client gets 451 4.4.2, the recorder has nothing, the log says deferred."""
    rec = recorder_factory(data_reply="250 2.0.0 Ok")
    gate = gate_factory([rec.address])
    mark = gate.log_mark()
    replies = _transaction(gate, simple_message("data-2xx"))
    assert codes(replies) == [250, 250, 354, 451], [str(r) for r in replies]
    assert_reply(replies[-1], 451, "4.4.2")
    [line] = wait_until(lambda: gate.tx_lines(mark) or None, 15, "the transaction line")
    assert "result=deferred" in line and "result=accepted" not in line, line
    assert rec.messages == []
    gate.wait_log(r"reply 250 after DATA breaks the protocol", mark)
    assert gate.alive()


def test_2xx_to_data_then_next_message_goes_through(recorder_factory, gate_factory):
    """After the protocol error the session goes on: the next transaction opens a
    fresh upstream connection and is delivered once the upstream behaves."""
    rec = recorder_factory(data_reply="250 2.0.0 Ok")
    gate = gate_factory([rec.address])
    with gate.connect() as c:
        c.ehlo()
        first = c.mail_transaction("s@example.test", ["r@example.test"], simple_message("one"))
        rec.script.data_reply = None
        second = c.mail_transaction("s@example.test", ["r@example.test"], simple_message("two"))
        c.quit()
    assert first[-1].code == 451, [str(r) for r in first]
    assert second[-1].code == 250, [str(r) for r in second]
    [m] = rec.wait_messages(1)
    assert b"Subject: two" in m.content


def test_2xx_while_streaming_is_not_a_final_reply(recorder_factory, gate_factory):
    """The upstream says 250 after the first block of a 4 MB message, before the
    final dot: not a final reply.  The client gets 451 4.4.2 and nothing arrived."""
    rec = recorder_factory(body_reply="250 2.0.0 Ok: queued early")
    gate = gate_factory([rec.address])
    mark = gate.log_mark()
    body = ("x" * 998 + "\r\n") * 4096
    replies = _transaction(gate, simple_message("stream-2xx", body), timeout=60)
    assert codes(replies) == [250, 250, 354, 451], [str(r) for r in replies]
    assert_reply(replies[-1], 451, "4.4.2")
    [line] = wait_until(lambda: gate.tx_lines(mark) or None, 15, "the transaction line")
    assert "result=deferred" in line, line
    gate.wait_log(r"reply 250 after part of the message breaks the protocol", mark)
    assert rec.messages == []


def test_refusal_while_streaming_is_relayed(recorder_factory, gate_factory):
    """A 5xx while the message still goes out is a final reply: relayed exactly."""
    refusal = "552 5.3.4 Message too big for this system"
    rec = recorder_factory(body_reply=refusal)
    gate = gate_factory([rec.address])
    body = ("y" * 998 + "\r\n") * 4096
    replies = _transaction(gate, simple_message("stream-5xx", body), timeout=60)
    assert replies[-1].first_line == refusal, [str(r) for r in replies]
    assert rec.messages == []


def _half_closed_transaction(gate, subject: str, pipelined_quit: bool) -> list[bytes]:
    """EHLO..DATA one by one, then the message (and QUIT) in one write followed by
    shutdown(SHUT_WR); returns every reply line the server sent until it closed."""
    c = gate.connect(timeout=30)
    c.ehlo()
    assert c.cmd("MAIL FROM:<s@example.test>").code == 250
    assert c.cmd("RCPT TO:<r@example.test>").code == 250
    assert c.cmd("DATA").code == 354
    c.send(dot_stuff(simple_message(subject)) + (b"QUIT\r\n" if pipelined_quit else b""))
    c.sock.shutdown(socket.SHUT_WR)
    replies = c.read_until_closed()
    c.close()
    return [r.first_line for r in replies]


def test_half_closed_client_gets_final_reply_and_221(recorder_factory, gate_factory):
    """As smtp-sink does: after the dot and QUIT the client shuts its sending side;
    the upstream takes 1 s for its final reply; the client still gets the 250 and
    the 221, the message arrived once, and the transaction is logged."""
    rec = recorder_factory(final_delay=1.0)
    gate = gate_factory([rec.address])
    mark = gate.log_mark()
    lines = _half_closed_transaction(gate, "half-close-quit", pipelined_quit=True)
    assert len(lines) == 2, lines
    assert lines[0].startswith("250 2.0.0 Ok: queued as "), lines
    assert lines[1].startswith("221 "), lines
    [m] = rec.wait_messages(1)
    assert b"Subject: half-close-quit" in m.content
    [line] = wait_until(lambda: gate.tx_lines(mark) or None, 15, "the transaction line")
    assert "result=accepted" in line, line


def test_half_closed_client_without_quit(recorder_factory, gate_factory):
    """No QUIT at all: the final reply still reaches the client, then smtpgate
    closes; the session's disconnect line follows the transaction line."""
    rec = recorder_factory(final_delay=1.0)
    gate = gate_factory([rec.address])
    mark = gate.log_mark()
    lines = _half_closed_transaction(gate, "half-close-noquit", pipelined_quit=False)
    assert len(lines) == 1 and lines[0].startswith("250 2.0.0 Ok: queued as "), lines
    assert len(rec.wait_messages(1)) == 1
    log = gate.wait_log(r"disconnect from .*transactions=1 accepted=1", mark)
    assert log
    assert len(gate.tx_lines(mark)) == 1


def test_half_closed_client_mid_message_is_aborted(recorder_factory, gate_factory):
    """The sending side shut before the final dot: the message is incomplete, so
    nothing is relayed, the abort is logged, and the connection closes."""
    rec = recorder_factory()
    gate = gate_factory([rec.address])
    mark = gate.log_mark()
    c = gate.connect(timeout=30)
    c.ehlo()
    c.cmd("MAIL FROM:<s@example.test>")
    c.cmd("RCPT TO:<r@example.test>")
    assert c.cmd("DATA").code == 354
    c.send(b"Subject: cut\r\n\r\nno end\r\n")
    c.sock.shutdown(socket.SHUT_WR)
    assert c.read_until_closed() == []
    c.close()
    gate.wait_log(r"result=aborted", mark)
    rec.wait_idle()
    assert rec.messages == []


def test_overlong_greeting_fails_over(recorder_factory, gate_factory):
    """The preferred upstream's greeting is one 256 KiB line, so more than the
    16 KiB a reply may hold is read before its end is seen: like any malformed
    greeting it moves smtpgate to the next upstream, which takes the message."""
    first, second = recorder_factory(), recorder_factory()
    gate = gate_factory([(first.address, 10), (second.address, 20)])
    first.wait_idle()
    first.script.greeting = "220 " + "x" * (256 * 1024)
    mark = gate.log_mark()
    replies = _transaction(gate, simple_message("overlong-greeting"))
    assert replies[-1].code == 250, [str(r) for r in replies]
    assert len(second.wait_messages(1)) == 1
    assert first.messages == []
    gate.wait_log(r"over-long reply line", mark)
