"""smtpgate in front of a real Postfix: the deployment the project exists for.

The private Postfix (postfix_instance.py) trusts XCLIENT from 127.0.0.1 only
and has mynetworks = 127.0.0.1/32.  A client connecting to smtpgate from
127.0.0.2 must therefore show up in Postfix's log as [127.0.0.2] (rule 3) and
be refused relaying exactly as if it had talked to Postfix itself; the
queue id Postfix gives is the one smtpgate logs as queued_as=.
"""

from __future__ import annotations

import re

from helpers import codes, host_port, wait_sessions_logged
from smtpclient import SMTPConn, dot_stuff, simple_message, swaks, swaks_final_reply

CLIENT_ADDR = "127.0.0.2"


def _queue_id(reply) -> str:
    m = re.search(r"queued as (\S+)", reply.text)
    assert m, f"no queue id in {reply}"
    return m.group(1)


def test_xclient_real_client_reaches_postfix_log(postfix, gate_factory):
    """A client from 127.0.0.2: Postfix logs client=...[127.0.0.2] for the queue id it
    returned, the client got Postfix's own "queued as" reply, and smtpgate's transaction
    line carries queued_as=<that id>."""
    gate = gate_factory([postfix.address])
    mark, gmark = postfix.log_mark(), gate.log_mark()
    with gate.connect(source=CLIENT_ADDR) as c:
        c.ehlo("real-client.example.test")
        replies = c.mail_transaction("s@example.test", ["user@example.test"],
                                     simple_message("postfix-xclient"))
        assert codes(replies) == [250, 250, 354, 250], [str(r) for r in replies]
        c.quit()
    qid = _queue_id(replies[-1])
    postfix.wait_sessions_closed(mark)
    clients = postfix.queue_ids_since(mark)
    assert qid in clients, (qid, clients)
    assert clients[qid].endswith(f"[{CLIENT_ADDR}]"), clients[qid]
    wait_sessions_logged(gate, gmark)
    assert any(re.search(rf"queued_as={qid}(\s|$)", l) for l in gate.tx_lines(gmark)), gate.tx_lines(gmark)
    postfix.wait_delivered(b"Subject: postfix-xclient")


def test_relay_judged_on_the_real_client(postfix, gate_factory):
    """Relaying to a foreign domain: refused for 127.0.0.2 (not in mynetworks) with
    exactly the reply Postfix gives that client directly, and allowed for 127.0.0.1."""
    gate = gate_factory([postfix.address])
    with SMTPConn(*host_port(postfix.address)) as direct:
        direct.ehlo()
        assert direct.cmd(f"XCLIENT ADDR={CLIENT_ADDR}").code == 220
        direct.ehlo("real-client.example.test")
        assert direct.cmd("MAIL FROM:<s@example.test>").code == 250
        expected = direct.cmd("RCPT TO:<user@elsewhere.test>")
        direct.quit()
    assert expected.code in (454, 554), str(expected)

    with gate.connect(source=CLIENT_ADDR) as c:
        c.ehlo("real-client.example.test")
        assert c.cmd("MAIL FROM:<s@example.test>").code == 250
        got = c.cmd("RCPT TO:<user@elsewhere.test>")
        c.quit()
    assert (got.code, got.lines) == (expected.code, expected.lines), f"{got} != {expected}"

    with gate.connect(source="127.0.0.1") as c:
        c.ehlo()
        assert c.cmd("MAIL FROM:<s@example.test>").code == 250
        assert c.cmd("RCPT TO:<user@elsewhere.test>").code == 250, "127.0.0.1 is in mynetworks"
        c.quit()


def test_swaks_through_smtpgate_into_postfix(postfix, gate_factory):
    """swaks -> smtpgate -> Postfix -> Maildir: delivered, with Postfix's reply relayed."""
    gate = gate_factory([postfix.address])
    r = swaks(gate.address, "--to", "user@example.test", "--from", "s@example.test",
              "--header", "Subject: swaks-postfix", "--body", "delivered by Postfix")
    assert swaks_final_reply(r.stdout).startswith("250 2.0.0 Ok: queued as "), r.stdout
    [msg] = postfix.wait_delivered(b"Subject: swaks-postfix")
    assert b"delivered by Postfix" in msg


def test_pipelined_batch_with_postfix_refusal(postfix, gate_factory):
    """A pipelined batch from 127.0.0.2 with a relay-denied RCPT in the middle: replies
    in order, and the message is delivered to the two local recipients only."""
    gate = gate_factory([postfix.address])
    with gate.connect(source=CLIENT_ADDR) as c:
        c.ehlo()
        c.send(b"MAIL FROM:<s@example.test>\r\nRCPT TO:<a@example.test>\r\n"
               b"RCPT TO:<x@elsewhere.test>\r\nRCPT TO:<b@example.test>\r\nDATA\r\n")
        replies = c.read_replies(5)
        assert codes(replies)[:2] == [250, 250] and codes(replies)[3:] == [250, 354], \
            [str(r) for r in replies]
        assert replies[2].code in (454, 554) and "Relay access denied" in replies[2].text
        c.send(dot_stuff(simple_message("postfix-pipelined")))
        assert c.read_reply().code == 250
        c.quit()
    copies = postfix.wait_delivered(b"Subject: postfix-pipelined", n=2)
    delivered_to = sorted(re.search(rb"^Delivered-To: (\S+)", m, re.M).group(1) for m in copies)
    assert delivered_to == [b"a@example.test", b"b@example.test"]


def test_bdat_into_postfix(postfix, gate_factory):
    """BDAT chunks through smtpgate into Postfix (which offers CHUNKING): delivered intact."""
    gate = gate_factory([postfix.address])
    body = b"".join(b"line %d with a dot next\r\n.\r\n" % i for i in range(50))
    content = simple_message("postfix-bdat", body)
    half = len(content) // 2
    with gate.connect() as c:
        assert "CHUNKING" in c.ehlo().keywords()
        assert c.cmd("MAIL FROM:<s@example.test>").code == 250
        assert c.cmd("RCPT TO:<user@example.test>").code == 250
        c.send(b"BDAT %d\r\n" % half + content[:half])
        assert c.read_reply().code == 250
        c.send(b"BDAT %d LAST\r\n" % (len(content) - half) + content[half:])
        final = c.read_reply()
        c.quit()
    assert final.code == 250 and "queued as" in final.text, str(final)
    [msg] = postfix.wait_delivered(b"Subject: postfix-bdat")
    assert body.replace(b"\r\n", b"\n") in msg  # Maildir files end lines in LF


def test_several_messages_distinct_queue_ids(postfix, gate_factory):
    """Five messages in one session: five distinct Postfix queue ids, each in smtpgate's log."""
    gate = gate_factory([postfix.address])
    gmark = gate.log_mark()
    qids = []
    with gate.connect() as c:
        c.ehlo()
        for i in range(5):
            replies = c.mail_transaction("s@example.test", ["user@example.test"],
                                         simple_message(f"postfix-many-{i}"))
            assert replies[-1].code == 250, str(replies[-1])
            qids.append(_queue_id(replies[-1]))
        c.quit()
    assert len(set(qids)) == 5
    wait_sessions_logged(gate, gmark)
    logged = " ".join(gate.tx_lines(gmark))
    for q in qids:
        assert f"queued_as={q}" in logged
