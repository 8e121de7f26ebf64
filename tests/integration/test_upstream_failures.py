"""When the upstream is down, slow, broken or says no, the client hears it - never a 250.

Rule 1: the client gets 250 for a message only after the upstream said 250
for it; a dead, hanging or disconnecting upstream turns into 421/451 for the
client within the configured timeouts.  Rule 2: the upstream's refusals are
relayed with code, enhanced code and text (multi-line kept multi-line).
Failover follows MX-like priority: lowest number first, the next on
connection failure or a 4xx greeting.
"""

from __future__ import annotations

import pytest

from helpers import assert_reply, codes
from netutil import closed_port, wait_until
from smtpclient import ConnectionClosed, simple_message


def _transaction(gate, rcpts=("r@example.test",), subject="failure", timeout=30):
    """Run one transaction, returning the replies (short if the session ended early)."""
    c = gate.connect(timeout=timeout)
    try:
        c.ehlo()
        try:
            return c.mail_transaction("s@example.test", list(rcpts), simple_message(subject))
        except ConnectionClosed:
            return []
    finally:
        c.quit()


def _assert_temporary_failure(replies) -> None:
    """The transaction ended in a 4xx (421 or 451 with a 4.x.x code) and nothing said 250 at the end."""
    assert replies, "the connection was dropped without any reply"
    last = replies[-1]
    assert last.code in (421, 451), f"expected 421/451, got {[str(r) for r in replies]}"
    assert last.enhanced and last.enhanced.startswith("4."), str(last)


def test_no_healthy_upstream_at_start(gate_factory):
    """The only upstream refuses connections when smtpgate starts: clients get
    421 4.3.2 at connect, and smtpgate keeps running."""
    gate = gate_factory([f"127.0.0.1:{closed_port()}"])
    c = gate.connect(read_greeting=False)
    replies = c.read_until_closed()
    c.close()
    assert replies, "no reply at connect"
    assert_reply(replies[0], 421, "4.3.2")
    assert gate.alive()


def test_upstream_died_after_start(recorder, gate_factory):
    """The upstream was healthy at the probe, then died: MAIL gets 451 4.4.1."""
    gate = gate_factory([recorder.address])
    recorder.wait_idle()
    recorder.stop()
    with gate.connect() as c:
        c.ehlo()
        r = c.cmd("MAIL FROM:<s@example.test>")
        c.quit()
    assert_reply(r, 451, "4.4.1")


def test_upstream_back_after_outage(recorder_factory, gate_factory):
    """After an outage the same upstream comes back on its port: within a bounded time
    (probe_interval=1) new transactions succeed again."""
    rec = recorder_factory()
    port = rec.port
    gate = gate_factory([rec.address], probe_interval=1)
    rec.wait_idle()
    rec.stop()
    _assert_temporary_failure(_transaction(gate, subject="during-outage"))
    back = recorder_factory(port=port)

    def delivered():
        try:
            replies = _transaction(gate, subject="after-outage")
        except (ConnectionClosed, OSError):
            return False
        return bool(replies) and replies[-1].code == 250
    wait_until(delivered, 20, "delivery after the upstream came back", interval=0.5)
    assert back.wait_messages(1)


def test_failover_when_first_refuses_connections(recorder, gate_factory):
    """Priority 10 refuses connections, priority 20 works: the message arrives at 20."""
    gate = gate_factory([(f"127.0.0.1:{closed_port()}", 10), (recorder.address, 20)])
    replies = _transaction(gate, subject="failover-dead")
    assert codes(replies) == [250, 250, 354, 250], [str(r) for r in replies]
    assert len(recorder.wait_messages(1)) == 1


def test_failover_when_first_dies_after_start(recorder_factory, gate_factory):
    """Both upstreams healthy at start; the preferred one dies: the next is used."""
    first, second = recorder_factory(), recorder_factory()
    gate = gate_factory([(first.address, 10), (second.address, 20)])
    first.wait_idle()
    second.wait_idle()
    first.stop()
    replies = _transaction(gate, subject="failover-died")
    assert codes(replies) == [250, 250, 354, 250], [str(r) for r in replies]
    assert len(second.wait_messages(1)) == 1


def test_preferred_upstream_is_used(recorder_factory, gate_factory):
    """Both healthy: the lower priority number gets the mail, whatever the listing order."""
    low, high = recorder_factory(), recorder_factory()
    gate = gate_factory([(high.address, 50), (low.address, 5)])
    assert _transaction(gate, subject="preferred")[-1].code == 250
    assert len(low.wait_messages(1)) == 1
    assert high.messages == []


def test_failover_on_4xx_greeting(recorder_factory, gate_factory):
    """The preferred upstream greets 421 (after the probe found it fine): the next one is used."""
    first, second = recorder_factory(), recorder_factory()
    gate = gate_factory([(first.address, 10), (second.address, 20)])
    first.wait_idle()
    first.script.greeting = "421 4.3.2 Too busy, try later"
    replies = _transaction(gate, subject="failover-421")
    assert replies[-1].code == 250, [str(r) for r in replies]
    assert len(second.wait_messages(1)) == 1


def test_one_of_three_recipients_refused(recorder_factory, gate_factory):
    """The upstream refuses one RCPT of three: exactly that one is refused (code,
    enhanced code and text relayed), and the message arrives for the other two."""
    refusal = "550 5.1.1 <b@example.test>: Recipient address rejected: User unknown"
    rec = recorder_factory(rcpt_replies={"b@example.test": refusal})
    gate = gate_factory([rec.address])
    replies = _transaction(gate, rcpts=("a@example.test", "b@example.test", "c@example.test"))
    assert codes(replies) == [250, 250, 550, 250, 354, 250], [str(r) for r in replies]
    assert replies[2].first_line == refusal
    [m] = rec.wait_messages(1)
    assert m.rcpts == ["a@example.test", "c@example.test"]


@pytest.mark.parametrize("reply", [
    "451 4.7.1 Greylisted, please try again in 300 seconds",
    "554 5.7.1 Message rejected: content policy",
    "452 4.3.1 Insufficient system storage",
])
def test_end_of_data_reply_relayed(recorder_factory, gate_factory, reply):
    """The upstream's 4xx/5xx at end of data reaches the client exactly."""
    rec = recorder_factory(final_reply=reply)
    gate = gate_factory([rec.address])
    replies = _transaction(gate)
    assert codes(replies)[:3] == [250, 250, 354]
    assert replies[-1].first_line == reply
    assert len(replies[-1].lines) == 1


def test_multiline_reply_relayed(recorder_factory, gate_factory):
    """A multi-line upstream reply is relayed multi-line, every line's text intact."""
    rec = recorder_factory(final_reply="550-5.7.1 First line of the refusal\r\n"
                                       "550-5.7.1 second line\r\n550 5.7.1 last line")
    gate = gate_factory([rec.address])
    last = _transaction(gate)[-1]
    assert last.code == 550
    assert last.lines == ["5.7.1 First line of the refusal", "5.7.1 second line", "5.7.1 last line"]


def test_mail_refusal_relayed(recorder_factory, gate_factory):
    """A 5xx to MAIL from the upstream is relayed exactly and nothing more happens upstream."""
    rec = recorder_factory(mail_reply="553 5.7.1 <s@example.test>: Sender address rejected: not owned")
    gate = gate_factory([rec.address])
    replies = _transaction(gate)
    assert replies[0].first_line == "553 5.7.1 <s@example.test>: Sender address rejected: not owned"
    assert rec.messages == []


@pytest.mark.parametrize("stage", ["MAIL", "RCPT", "DATA", "BODY", "EOD"])
def test_upstream_drops_connection(recorder_factory, gate_factory, stage):
    """The upstream closes the connection at a given stage: the client gets 421/451,
    never 250, and smtpgate stays healthy."""
    rec = recorder_factory(close_at=frozenset({stage}))
    gate = gate_factory([rec.address])
    _assert_temporary_failure(_transaction(gate, subject=f"drop-{stage}"))
    assert rec.messages == []
    assert gate.alive()


@pytest.mark.parametrize("stage", ["MAIL", "EOD"])
def test_upstream_hangs(recorder_factory, gate_factory, stage):
    """The upstream stops answering: after the upstream timeout (2 s) the client gets
    421/451, never a hang and never 250."""
    rec = recorder_factory(hang_at=frozenset({stage}))
    gate = gate_factory([rec.address], upstream_command_timeout=2, upstream_data_timeout=2,
                        upstream_final_timeout=2)
    _assert_temporary_failure(_transaction(gate, subject=f"hang-{stage}", timeout=40))
    assert rec.messages == []


def test_upstream_hangs_at_greeting(recorder_factory, gate_factory):
    """An upstream that accepts the connection but never greets: 4xx at MAIL after
    upstream_greeting_timeout."""
    rec = recorder_factory()
    gate = gate_factory([rec.address], upstream_greeting_timeout=2)
    rec.wait_idle()
    rec.script.hang_at = frozenset({"CONNECT"})
    with gate.connect(timeout=40) as c:
        c.ehlo()
        r = c.cmd("MAIL FROM:<s@example.test>")
        c.quit()
    assert r.code in (421, 451) and r.enhanced and r.enhanced.startswith("4."), str(r)


def test_upstream_garbage(recorder_factory, gate_factory):
    """An upstream answering MAIL with something that is not an SMTP reply: 4xx, not 250."""
    rec = recorder_factory(mail_reply="this is not smtp")
    gate = gate_factory([rec.address])
    replies = _transaction(gate, subject="garbage")
    assert replies and replies[0].code in (421, 451), [str(r) for r in replies]
    assert rec.messages == []

