"""PIPELINING (RFC 2920): whole batches in one write, replies in order.

Each batch is written with a single send() on a raw socket, so smtpgate finds
several commands in one read and must answer each, in order, exactly once -
including the commands whose answer comes from the upstream (MAIL, RCPT) and
the ones it answers itself (RSET, unknown commands, DATA's 354).
"""

from __future__ import annotations

from helpers import codes
from smtpclient import dot_stuff, simple_message


def test_advertised(gate):
    """PIPELINING is offered (the recorder offers it too)."""
    with gate.connect() as c:
        assert "PIPELINING" in c.ehlo().keywords()
        c.quit()


def test_transaction_in_one_write(gate, recorder):
    """MAIL, RCPT, RCPT, DATA in one write -> 250 250 250 354; message, dot and QUIT in
    one write -> 250 221."""
    content = simple_message("pipelined")
    with gate.connect() as c:
        c.ehlo()
        c.send(b"MAIL FROM:<s@example.test>\r\nRCPT TO:<a@example.test>\r\n"
               b"RCPT TO:<b@example.test>\r\nDATA\r\n")
        assert codes(c.read_replies(4)) == [250, 250, 250, 354]
        c.send(dot_stuff(content) + b"QUIT\r\n")
        final, bye = c.read_replies(2)
        assert final.code == 250 and bye.code == 221, (str(final), str(bye))
    [m] = recorder.wait_messages(1)
    assert m.rcpts == ["a@example.test", "b@example.test"]
    assert m.content == content


def test_rset_mid_transaction_in_batch(gate, recorder):
    """MAIL RCPT RSET MAIL RCPT DATA in one write: six replies in order, and only the
    second envelope reaches the upstream."""
    content = simple_message("pipelined-rset")
    with gate.connect() as c:
        c.ehlo()
        c.send(b"MAIL FROM:<first@example.test>\r\nRCPT TO:<first@example.test>\r\nRSET\r\n"
               b"MAIL FROM:<second@example.test>\r\nRCPT TO:<second@example.test>\r\nDATA\r\n")
        assert codes(c.read_replies(6)) == [250, 250, 250, 250, 250, 354]
        c.send(dot_stuff(content))
        assert c.read_reply().code == 250
        c.quit()
    [m] = recorder.wait_messages(1)
    assert m.mail_from == "second@example.test"
    assert m.rcpts == ["second@example.test"]
    assert m.content == content


def test_refused_recipient_in_batch(recorder_factory, gate_factory):
    """The upstream refuses the middle RCPT of a pipelined batch: its reply lands in its
    own slot, the others are accepted, and the message goes to the two others."""
    rec = recorder_factory(rcpt_replies={"nobody@example.test": "550 5.1.1 <nobody@example.test>: unknown"})
    gate = gate_factory([rec.address])
    with gate.connect() as c:
        c.ehlo()
        c.send(b"MAIL FROM:<s@example.test>\r\nRCPT TO:<a@example.test>\r\n"
               b"RCPT TO:<nobody@example.test>\r\nRCPT TO:<b@example.test>\r\nDATA\r\n")
        replies = c.read_replies(5)
        assert codes(replies) == [250, 250, 550, 250, 354], [str(r) for r in replies]
        assert replies[2].first_line == "550 5.1.1 <nobody@example.test>: unknown"
        c.send(dot_stuff(simple_message("pipelined-refused")))
        assert c.read_reply().code == 250
        c.quit()
    [m] = rec.wait_messages(1)
    assert m.rcpts == ["a@example.test", "b@example.test"]


def test_errors_inside_batch_keep_order(gate, recorder):
    """An unknown command and a bad-sequence command inside a batch get their errors in place."""
    with gate.connect() as c:
        c.ehlo()
        c.send(b"MAIL FROM:<s@example.test>\r\nBOGUS\r\nRCPT TO:<r@example.test>\r\n"
               b"MAIL FROM:<again@example.test>\r\nNOOP\r\nDATA\r\n")
        replies = c.read_replies(6)
        assert codes(replies) == [250, 500, 250, 503, 250, 354], [str(r) for r in replies]
        c.send(dot_stuff(simple_message("pipelined-errors")))
        assert c.read_reply().code == 250
        c.quit()
    [m] = recorder.wait_messages(1)
    assert m.mail_from == "s@example.test"


def test_back_to_back_transactions(gate, recorder):
    """The next transaction's MAIL RCPT DATA are written together with the previous
    message's final dot; both messages arrive, in order."""
    first, second = simple_message("b2b-1"), simple_message("b2b-2")
    with gate.connect() as c:
        c.ehlo()
        c.send(b"MAIL FROM:<one@example.test>\r\nRCPT TO:<r@example.test>\r\nDATA\r\n")
        assert codes(c.read_replies(3)) == [250, 250, 354]
        c.send(dot_stuff(first) + b"MAIL FROM:<two@example.test>\r\nRCPT TO:<r@example.test>\r\nDATA\r\n")
        assert codes(c.read_replies(4)) == [250, 250, 250, 354]
        c.send(dot_stuff(second) + b"QUIT\r\n")
        assert codes(c.read_replies(2)) == [250, 221]
    msgs = recorder.wait_messages(2)
    assert [m.mail_from for m in msgs] == ["one@example.test", "two@example.test"]
    assert [m.content for m in msgs] == [first, second]


def test_data_without_valid_recipient_in_batch(recorder_factory, gate_factory):
    """All RCPTs refused in a batch: DATA is refused (no 354), and no DATA goes upstream."""
    rec = recorder_factory(rcpt_replies={"x@example.test": "550 5.1.1 no", "y@example.test": "550 5.1.1 no"})
    gate = gate_factory([rec.address])
    with gate.connect() as c:
        c.ehlo()
        c.send(b"MAIL FROM:<s@example.test>\r\nRCPT TO:<x@example.test>\r\n"
               b"RCPT TO:<y@example.test>\r\nDATA\r\n")
        replies = c.read_replies(4)
        assert codes(replies)[:3] == [250, 550, 550]
        assert replies[3].code in (503, 554), f"DATA without recipients got {replies[3]}"
        assert c.cmd("RSET").code == 250
        c.quit()
    rec.wait_idle()
    assert rec.messages == []
    assert all("DATA" not in conn.verbs for conn in rec.connections)


def test_many_pipelined_transactions(gate, recorder):
    """Ten complete transactions, each one write, replies counted: nothing lost or doubled."""
    n = 10
    contents = [simple_message(f"many-pipelined-{i}") for i in range(n)]
    with gate.connect() as c:
        c.ehlo()
        for i, content in enumerate(contents):
            c.send(f"MAIL FROM:<s{i}@example.test>\r\nRCPT TO:<r@example.test>\r\nDATA\r\n".encode())
            assert codes(c.read_replies(3)) == [250, 250, 354], i
            c.send(dot_stuff(content))
            assert c.read_reply().code == 250, i
        c.quit()
    msgs = recorder.wait_messages(n)
    assert [m.content for m in msgs] == contents


def test_fifty_recipients_in_one_write(recorder_factory, gate_factory):
    """Fifty RCPTs in one write, every seventh refused by the upstream: fifty replies, each
    refusal in its own slot, and the message goes to exactly the accepted ones."""
    rcpts = [f"r{i:02d}@example.test" for i in range(50)]
    refused = {r for i, r in enumerate(rcpts) if i % 7 == 3}
    rec = recorder_factory(rcpt_replies={r: f"550 5.1.1 <{r}>: unknown user" for r in refused})
    gate = gate_factory([rec.address])
    with gate.connect() as c:
        c.ehlo()
        c.send(b"MAIL FROM:<s@example.test>\r\n"
               + b"".join(f"RCPT TO:<{r}>\r\n".encode() for r in rcpts) + b"DATA\r\n")
        replies = c.read_replies(52)
        assert replies[0].code == 250 and replies[-1].code == 354
        for r, reply in zip(rcpts, replies[1:-1]):
            if r in refused:
                assert reply.first_line == f"550 5.1.1 <{r}>: unknown user", (r, str(reply))
            else:
                assert reply.code == 250, (r, str(reply))
        c.send(dot_stuff(simple_message("fifty")))
        assert c.read_reply().code == 250
        c.quit()
    [m] = rec.wait_messages(1)
    assert m.rcpts == [r for r in rcpts if r not in refused]
