"""Signals: SIGHUP reloads (a bad config is refused, the old one keeps serving;
sessions in flight keep what they started with), SIGTERM stops accepting but
lets sessions in flight finish, then exits 0 with no sanitizer report.
"""

from __future__ import annotations

import re
import signal

from helpers import assert_reply, codes
from netutil import is_listening, wait_until
from smtpclient import SMTPConn, dot_stuff, simple_message


def _second_rcpt_code(gate) -> int:
    """Open a session and return the reply code to a second RCPT (tells max_recipients)."""
    with gate.connect() as c:
        c.ehlo()
        assert c.cmd("MAIL FROM:<s@example.test>").code == 250
        assert c.cmd("RCPT TO:<a@example.test>").code == 250
        code = c.cmd("RCPT TO:<b@example.test>").code
        c.quit()
    return code


def test_sighup_applies_new_config_to_new_sessions(recorder, gate_factory):
    """max_recipients 1 -> 3 by SIGHUP: new sessions get the new limit; a session opened
    before the reload keeps the limit it started with."""
    gate = gate_factory([recorder.address], max_recipients=1)
    assert _second_rcpt_code(gate) == 452
    old = gate.connect()
    old.ehlo()
    gate.write_config(max_recipients=3)
    gate.send_signal(signal.SIGHUP)
    wait_until(lambda: _second_rcpt_code(gate) == 250, 15, "the reloaded max_recipients", interval=0.2)
    assert old.cmd("MAIL FROM:<s@example.test>").code == 250
    assert old.cmd("RCPT TO:<a@example.test>").code == 250
    assert_reply(old.cmd("RCPT TO:<b@example.test>"), 452, "4.5.3")
    old.quit()
    assert gate.alive()


def test_sighup_with_broken_config_keeps_serving(recorder, gate_factory):
    """A broken file on SIGHUP is refused with a log line naming it; the old config stays
    in force (same limits) and mail keeps flowing."""
    gate = gate_factory([recorder.address], max_recipients=1)
    mark = gate.log_mark()
    gate.conf_path.write_text(gate.config_text(max_recipients=5) + "this is not a setting\n")
    gate.send_signal(signal.SIGHUP)
    gate.wait_log(re.escape(str(gate.conf_path)), mark)
    assert gate.alive()
    assert _second_rcpt_code(gate) == 452, "the old max_recipients = 1 must still apply"
    with gate.connect() as c:
        c.ehlo()
        assert c.mail_transaction("s@example.test", ["r@example.test"],
                                  simple_message("after-bad-reload"))[-1].code == 250
        c.quit()
    assert len(recorder.wait_messages(1)) == 1


def test_sigterm_lets_session_in_flight_finish(recorder, gate_factory):
    """SIGTERM in the middle of DATA: the listener closes, the session in flight still
    completes (250 from the upstream, message delivered, QUIT answered), then smtpgate
    exits 0 with no sanitizer report."""
    gate = gate_factory([recorder.address], shutdown_grace=30)
    content = simple_message("sigterm-in-flight", b"line\r\n" * 200)
    wire = dot_stuff(content)
    c = gate.connect()
    c.ehlo()
    c.send(b"MAIL FROM:<s@example.test>\r\nRCPT TO:<r@example.test>\r\nDATA\r\n")
    assert codes(c.read_replies(3)) == [250, 250, 354]
    c.send(wire[: len(wire) // 2])
    gate.send_signal(signal.SIGTERM)
    wait_until(lambda: not is_listening(gate.port), 15, "smtpgate to stop listening")
    c.send(wire[len(wire) // 2:])
    final = c.read_reply()
    assert final.code == 250, str(final)
    bye = c.quit()
    assert bye is None or bye.code == 221
    [m] = recorder.wait_messages(1)
    assert m.content == content
    assert gate.wait_exit(45) == 0, gate.log_tail()
    gate.assert_clean_exit()


def test_sigterm_with_idle_client_exits_after_grace(recorder, gate_factory):
    """shutdown_grace=1 and an idle client that never leaves: smtpgate still exits, 0,
    within a bounded time, and the client is told (421) or disconnected."""
    gate = gate_factory([recorder.address], shutdown_grace=1)
    c = gate.connect()
    c.ehlo()
    gate.send_signal(signal.SIGTERM)
    assert gate.wait_exit(30) == 0, gate.log_tail()
    gate.assert_clean_exit()
    replies = c.read_until_closed()
    c.close()
    assert all(r.code == 421 for r in replies), [str(r) for r in replies]


def test_sigterm_with_session_holding_upstream(recorder, gate_factory):
    """SIGTERM while a client holds an open upstream connection (after MAIL) and then
    leaves: clean exit 0, no leak of the upstream connection."""
    gate = gate_factory([recorder.address], shutdown_grace=2)
    c = gate.connect()
    c.ehlo()
    assert c.cmd("MAIL FROM:<s@example.test>").code == 250
    gate.send_signal(signal.SIGTERM)
    c.quit()
    assert gate.wait_exit(30) == 0, gate.log_tail()
    gate.assert_clean_exit()


def test_new_connections_refused_after_sigterm(recorder, gate_factory):
    """After SIGTERM no new client is served (connection refused, or 421)."""
    gate = gate_factory([recorder.address], shutdown_grace=30)
    holder = gate.connect()
    holder.ehlo()
    gate.send_signal(signal.SIGTERM)
    wait_until(lambda: not is_listening(gate.port), 15, "smtpgate to stop listening")
    try:
        late = SMTPConn("127.0.0.1", gate.port, read_greeting=False, timeout=5)
    except OSError:
        late = None
    if late is not None:
        replies = late.read_until_closed()
        late.close()
        assert all(r.code == 421 for r in replies), [str(r) for r in replies]
    holder.quit()
    assert gate.wait_exit(45) == 0
    gate.assert_clean_exit()
