"""The filter chain: plugins refuse, hold, change and pass mail at every stage.

Real clients (smtplib, raw SMTP, swaks) talk to a real smtpgate loading real
shared objects (tests/plugins/*.c, built with the daemon) in front of the
recording upstream, which shows exactly what reached the MTA.
"""

from __future__ import annotations

import re
import signal
import smtplib
import threading
import time
import urllib.request
from pathlib import Path

import pytest

from gate import plugin_dir, plugin_section, run_config_test
from helpers import assert_no_upstream_connection, assert_reply, codes, upstream_baseline
from netutil import LOOPBACK, free_port, wait_until
from oracle import Oracle
from smtpclient import dot_stuff, simple_message, swaks


@pytest.fixture(scope="module")
def plugins(smtpgate_binary) -> Path:
    d = plugin_dir(smtpgate_binary)
    if not (d / "test_policy.so").exists():
        pytest.skip(f"test plugins not built in {d}")
    return d


def policy(plugins: Path, name: str = "policy", **options) -> str:
    return plugin_section(name, plugins / "test_policy.so", **options)


def start(gate_factory, recorder, extra: str, **settings):
    g = gate_factory([recorder.address], extra=extra, **settings)
    recorder.wait_idle()
    return g


# ---- refusals at each stage ----

def test_refused_at_connect_gets_554_and_only_quit(gate_factory, recorder, plugins):
    gate = start(gate_factory, recorder, policy(plugins, connect_reject=LOOPBACK,
                                                connect_reply="550 5.7.1 You are not welcome"))
    base = upstream_baseline(recorder)
    with gate.connect(read_greeting=False) as c:
        greeting = c.read_reply()
        assert_reply(greeting, 554, "5.7.1")
        assert "not welcome" in greeting.text
        assert_reply(c.cmd("EHLO client.example.test"), 503, "5.7.0")
        assert_reply(c.cmd("MAIL FROM:<a@example.test>"), 503, "5.7.0")
        assert c.cmd("QUIT").code == 221
    assert_no_upstream_connection(recorder, base)
    assert re.search(r"refused at connect from 127\.0\.0\.1 by policy", gate.log_text())


def test_tempfail_at_connect_gets_421_and_close(gate_factory, recorder, plugins):
    gate = start(gate_factory, recorder, policy(plugins, connect_reject=LOOPBACK,
                                                connect_reply="450 4.7.0 Busy, come back later"))
    with gate.connect(read_greeting=False) as c:
        r = c.read_reply()
        assert_reply(r, 421, "4.7.0")
        assert "come back later" in r.text
        assert c.is_closed()


def test_refused_at_helo_never_opens_upstream(gate_factory, recorder, plugins):
    gate = start(gate_factory, recorder, policy(plugins, helo_reject="bad.example"))
    base = upstream_baseline(recorder)
    with gate.connect() as c:
        r = c.cmd("EHLO bad.example")
        assert_reply(r, 550, "5.7.1")
        assert "bad HELO" in r.text
        assert_reply(c.cmd("MAIL FROM:<a@example.test>"), 503, "5.5.1")
        c.ehlo("good.example")
        c.quit()
    assert_no_upstream_connection(recorder, base)


def test_refused_at_mail_never_opens_upstream(gate_factory, recorder, plugins):
    gate = start(gate_factory, recorder, policy(plugins, mail_reject="spammer@example.test"))
    base = upstream_baseline(recorder)
    with smtplib.SMTP(LOOPBACK, gate.port, timeout=30) as s:
        s.ehlo("client.example.test")
        code, text = s.mail("spammer@example.test")
        assert code == 553 and text.startswith(b"5.7.1 Sender refused"), (code, text)
        s.rset()
    assert_no_upstream_connection(recorder, base)
    [tx] = [l for l in gate.log_text().splitlines() if " tx from=<spammer@" in l]
    assert "result=refused" in tx and "decided=policy verdict=reject" in tx


def test_mail_tempfail_default_reply(gate_factory, recorder, plugins):
    gate = start(gate_factory, recorder, policy(plugins, mail_tempfail="later@example.test"))
    with gate.connect() as c:
        c.ehlo()
        assert_reply(c.cmd("MAIL FROM:<later@example.test>"), 451, "4.7.1")
        c.quit()


def test_rcpt_refusal_is_per_recipient(gate_factory, recorder, plugins):
    gate = start(gate_factory, recorder, policy(plugins, rcpt_reject=["no@example.test"],
                                                rcpt_reply="550 5.1.1 No such user here"))
    with gate.connect() as c:
        c.ehlo()
        replies = c.mail_transaction("s@example.test",
                                     ["a@example.test", "no@example.test", "b@example.test"],
                                     simple_message("per-rcpt"))
        assert codes(replies) == [250, 250, 550, 250, 354, 250]
        assert replies[2].enhanced == "5.1.1" and "No such user" in replies[2].text
        c.quit()
    [m] = recorder.wait_messages(1)
    assert m.rcpts == ["a@example.test", "b@example.test"]


def test_data_refusal(gate_factory, recorder, plugins):
    gate = start(gate_factory, recorder, policy(plugins, data_reject_from="s@example.test"))
    with gate.connect() as c:
        c.ehlo()
        replies = c.mail_transaction("s@example.test", ["a@example.test"], simple_message("d"))
        assert codes(replies) == [250, 250, 554]
        assert "No data from you" in replies[-1].text
        # the session goes on: another sender gets through
        replies = c.mail_transaction("t@example.test", ["a@example.test"], simple_message("d2"))
        assert codes(replies) == [250, 250, 354, 250]
        c.quit()
    [m] = recorder.wait_messages(1)
    assert m.mail_from == "t@example.test"


def test_body_refusal_with_plugin_text_reaches_nothing_upstream(gate_factory, recorder, plugins):
    gate = start(gate_factory, recorder, policy(plugins, body_reject="BUY NOW",
                                                body_reply="550 5.7.1 Spam is not welcome"))
    r = swaks(gate.address, "--to", "rcpt@example.test", "--from", "s@example.test",
              "--body", "cheap pills, BUY NOW!")
    assert "550 5.7.1 Spam is not welcome" in r.stdout, r.stdout
    with gate.connect() as c:
        c.ehlo()
        ok = c.mail_transaction("s@example.test", ["a@example.test"], simple_message("clean"))
        assert codes(ok)[-1] == 250
        c.quit()
    [m] = recorder.wait_messages(1)
    assert b"Subject: clean" in m.content
    assert not any(b"BUY NOW" in x.content for x in recorder.messages)


def test_multiline_and_malformed_replies(gate_factory, recorder, plugins):
    gate = start(gate_factory, recorder, policy(
        plugins, rcpt_reject=["ml@example.test"],
        rcpt_reply="550 5.7.1 first line\n550 5.7.1 second line",
        malformed_reply_rcpt="odd@example.test"))
    with gate.connect() as c:
        c.ehlo()
        assert c.cmd("MAIL FROM:<s@example.test>").code == 250
        r = c.cmd("RCPT TO:<ml@example.test>")
        assert r.code == 550 and r.lines == ["5.7.1 first line", "5.7.1 second line"]
        assert r.raw.startswith(b"550-5.7.1 first line\r\n550 5.7.1 second line\r\n")
        # a 2xx "refusal" is not taken: the host's default refusal is sent instead
        r = c.cmd("RCPT TO:<odd@example.test>")
        assert_reply(r, 550, "5.7.1")
        assert r.text == "5.7.1 Recipient address refused"
        c.quit()


def test_garbage_verdict_becomes_failure_verdict(gate_factory, recorder, plugins):
    extra = policy(plugins, rcpt_garbage="g@example.test", failure_verdict="reject")
    gate = start(gate_factory, recorder, extra)
    with gate.connect() as c:
        c.ehlo()
        assert c.cmd("MAIL FROM:<s@example.test>").code == 250
        assert_reply(c.cmd("RCPT TO:<g@example.test>"), 550, "5.7.1")
        assert c.cmd("RCPT TO:<ok@example.test>").code == 250
        c.quit()
    assert "no valid verdict (42)" in gate.log_text()


def test_accept_skips_the_rest_of_the_chain(gate_factory, recorder, plugins):
    """Plugin one accepts at RCPT: plugin two, which would refuse the body, is not asked."""
    extra = (policy(plugins, "allow", rcpt_accept="vip@example.test") +
             policy(plugins, "content", body_reject="forbidden"))
    gate = start(gate_factory, recorder, extra)
    with gate.connect() as c:
        c.ehlo()
        msg = simple_message("vip", "forbidden words\r\n")
        assert codes(c.mail_transaction("s@example.test", ["vip@example.test"], msg))[-1] == 250
        assert codes(c.mail_transaction("s@example.test", ["x@example.test"], msg))[-1] == 550
        c.quit()
    assert len(recorder.wait_messages(1)) == 1


# ---- discard, quarantine ----

def test_discard_answers_250_and_nothing_goes_upstream(gate_factory, recorder, plugins):
    gate = start(gate_factory, recorder, policy(plugins, body_discard="DISCARD-ME"))
    base = upstream_baseline(recorder)
    with gate.connect() as c:
        c.ehlo()
        replies = c.mail_transaction("s@example.test", ["a@example.test"],
                                     simple_message("drop", "DISCARD-ME\r\n"))
        assert codes(replies) == [250, 250, 354, 250]
        c.quit()
    time.sleep(0.3)
    assert recorder.messages == []
    assert len(recorder.connections) > base  # MAIL/RCPT went up, the message did not
    assert re.search(r"tx from=<s@example.test> .*result=discarded", gate.log_text())


def test_quarantine_keeps_message_and_envelope(gate_factory, recorder, plugins, workdir):
    qdir = workdir / "quarantine"
    gate = start(gate_factory, recorder, policy(plugins, body_quarantine="SUSPECT"),
                 quarantine_dir=str(qdir))
    body = "this is SUSPECT content\r\n"
    with gate.connect() as c:
        c.ehlo("helo.example.test")
        replies = c.mail_transaction("s@example.test", ["a@example.test", "b@example.test"],
                                     simple_message("held", body))
        assert codes(replies) == [250, 250, 250, 354, 250]
        c.quit()
    files = list(qdir.glob("*.eml"))
    assert len(files) == 1, files
    text = files[0].read_bytes()
    for line in (b"X-Quarantine-Envelope-From: s@example.test", b"X-Quarantine-Envelope-To: a@example.test",
                 b"X-Quarantine-Envelope-To: b@example.test", b"X-Quarantine-Reason: test marker found",
                 b"X-Quarantine-Filter: policy", b"X-Quarantine-Helo: helo.example.test",
                 b"Subject: held", body.encode()):
        assert line in text, line
    assert recorder.messages == []
    assert "result=quarantined" in gate.log_text()


def test_quarantine_that_cannot_be_written_is_a_tempfail(gate_factory, recorder, plugins, workdir):
    # Usable at start (checked then), a file in its place by the first message.
    blocker = workdir / "goes-away"
    blocker.mkdir()
    gate = start(gate_factory, recorder, policy(plugins, body_quarantine="SUSPECT"),
                 quarantine_dir=str(blocker / "q"))
    blocker.rmdir()
    blocker.write_text("a file where the folder should be")
    with gate.connect() as c:
        c.ehlo()
        replies = c.mail_transaction("s@example.test", ["a@example.test"],
                                     simple_message("held", "SUSPECT\r\n"))
        assert_reply(replies[-1], 451, "4.3.0")
        c.quit()


# ---- edits ----

def test_header_edits_arrive_exactly(gate_factory, recorder, plugins):
    extra = policy(plugins, add_header="X-Added: yes", insert_header="X-Top: first",
                   change_header="Subject: changed subject", delete_header="X-Remove-Me")
    gate = start(gate_factory, recorder, extra)
    content = (b"Received: from a by b; Mon, 1 Jan 2024 00:00:00 +0000\r\n"
               b"From: s@example.test\r\n"
               b"Subject: original\r\n"
               b"X-Remove-Me: gone\r\n"
               b"X-Folded: part one\r\n\tpart two\r\n"
               b"\r\n"
               b"body line 1\r\n.leading dot\r\nlast line\r\n")
    with gate.connect() as c:
        c.ehlo()
        assert codes(c.mail_transaction("s@example.test", ["a@example.test"], content))[-1] == 250
        c.quit()
    [m] = recorder.wait_messages(1)
    assert m.content == (b"X-Top: first\r\n"
                         b"Received: from a by b; Mon, 1 Jan 2024 00:00:00 +0000\r\n"
                         b"From: s@example.test\r\n"
                         b"Subject: changed subject\r\n"
                         b"X-Folded: part one\r\n\tpart two\r\n"
                         b"X-Added: yes\r\n"
                         b"\r\n"
                         b"body line 1\r\n.leading dot\r\nlast line\r\n"), m.content


def test_session_id_header_and_replaced_body(gate_factory, recorder, plugins):
    extra = policy(plugins, session_header="X-Smtpgate-Tx",
                   replace_body="new body\nwith a bare LF\n.\nand a dot line\n")
    gate = start(gate_factory, recorder, extra)
    with gate.connect() as c:
        c.ehlo()
        assert codes(c.mail_transaction("s@example.test", ["a@example.test"],
                                        simple_message("rb", "old body\r\n")))[-1] == 250
        c.quit()
    [m] = recorder.wait_messages(1)
    head, _, body = m.content.partition(b"\r\n\r\n")
    assert re.search(rb"^X-Smtpgate-Tx: [0-9A-F]{13}\.1$", head, re.M), head
    # bare LFs from the plugin become CRLF: no line end the proxy did not see
    assert body == b"new body\r\nwith a bare LF\r\n.\r\nand a dot line\r\n", body


def test_large_spilled_message_with_header_edit(gate_factory, recorder, plugins):
    gate = start(gate_factory, recorder, policy(plugins, add_header="X-Big: yes"),
                 spill_threshold=65536)
    body = b"".join(b"line %08d of a large message\r\n" % i for i in range(120000))
    content = simple_message("big", body)
    with gate.connect() as c:
        c.ehlo()
        assert codes(c.mail_transaction("s@example.test", ["a@example.test"], content))[-1] == 250
        c.quit()
    [m] = recorder.wait_messages(1, timeout=60)
    head, _, got_body = m.content.partition(b"\r\n\r\n")
    assert head.endswith(b"X-Big: yes") and got_body == body


def test_envelope_edits(gate_factory, recorder, plugins):
    extra = policy(plugins, change_from="bounces@example.test", add_rcpt="archive@example.test",
                   del_rcpt="drop@example.test")
    gate = start(gate_factory, recorder, extra)
    with gate.connect() as c:
        c.ehlo()
        replies = c.mail_transaction("s@example.test", ["keep@example.test", "drop@example.test"],
                                     simple_message("env"), mail_params="BODY=8BITMIME")
        assert codes(replies)[-1] == 250
        c.quit()
    [m] = recorder.wait_messages(1)
    assert m.mail_from == "bounces@example.test"
    assert "BODY=8BITMIME" in m.mail_params
    assert m.rcpts == ["keep@example.test", "archive@example.test"]


def test_changed_envelope_refused_upstream_is_a_tempfail(gate_factory, recorder_factory, plugins):
    recorder = recorder_factory(rcpt_replies={"new@example.test": "550 5.1.1 unknown"})
    extra = policy(plugins, add_rcpt="new@example.test", del_rcpt="a@example.test")
    gate = start(gate_factory, recorder, extra)
    with gate.connect() as c:
        c.ehlo()
        replies = c.mail_transaction("s@example.test", ["a@example.test"], simple_message("x"))
        assert_reply(replies[-1], 451, "4.3.0")
        c.quit()
    assert recorder.messages == []


def test_changed_envelope_keeps_a_long_recipient(gate_factory, recorder_factory, plugins):
    """A recipient whose RCPT line is longer than any fixed buffer (here ORCPT near
    max_line_length) is sent again with the changed envelope: never dropped while the
    client is told 250."""
    recorder = recorder_factory(command_size_limit=4096)
    extra = policy(plugins, add_rcpt="archive@example.test")
    gate = start(gate_factory, recorder, extra, max_line_length=2048)
    orcpt = "rfc822;" + "x" * 1500 + "@example.test"
    with gate.connect() as c:
        c.ehlo()
        assert c.cmd("MAIL FROM:<s@example.test>").code == 250
        assert c.cmd(f"RCPT TO:<long@example.test> NOTIFY=FAILURE ORCPT={orcpt}").code == 250
        assert c.cmd("DATA").code == 354
        c.send(dot_stuff(simple_message("long rcpt")))
        final = c.read_reply()
        c.quit()
    if final.code == 250:
        [m] = recorder.wait_messages(1)
        assert m.rcpts == ["long@example.test", "archive@example.test"]
        assert f"ORCPT={orcpt}" in m.rcpt_params[0]
    else:
        assert_reply(final, 451, "4.3.0")
        assert recorder.messages == []


# ---- time: blocking, pending, timeouts ----

def wait_plugin(plugins: Path, **options) -> str:
    return plugin_section("wait", plugins / "test_wait.so", **options)


@pytest.mark.time_limit(60)
def test_blocking_plugin_does_not_stall_other_sessions(gate_factory, recorder, plugins):
    """A blocking callback sleeps 3 s on the work pool; meanwhile another client, on the same
    worker thread (workers = 1), completes a whole transaction."""
    gate = start(gate_factory, recorder, wait_plugin(plugins, slow_sender="slow@example.test",
                                                     sleep_ms=3000), workers=1)
    slow_done = {}

    def slow_client():
        with gate.connect() as c:
            c.ehlo()
            t0 = time.monotonic()
            r = c.cmd("MAIL FROM:<slow@example.test>")
            slow_done["elapsed"] = time.monotonic() - t0
            slow_done["code"] = r.code
            slow_done["at"] = time.monotonic()
            c.quit()

    t = threading.Thread(target=slow_client)
    t.start()
    time.sleep(0.5)
    with gate.connect() as c:
        c.ehlo()
        replies = c.mail_transaction("fast@example.test", ["a@example.test"], simple_message("fast"))
        fast_at = time.monotonic()
        c.quit()
    t.join(30)
    assert codes(replies)[-1] == 250
    assert slow_done["code"] == 250 and slow_done["elapsed"] >= 2.9
    assert fast_at < slow_done["at"], "the fast transaction waited for the slow plugin"


def test_pending_verdict_resolved_from_another_thread(gate_factory, recorder, plugins):
    gate = start(gate_factory, recorder, wait_plugin(plugins, pending_rcpt="p@example.test",
                                                     delay_ms=300))
    with gate.connect() as c:
        c.ehlo()
        t0 = time.monotonic()
        replies = c.mail_transaction("s@example.test", ["p@example.test"], simple_message("pend"))
        assert codes(replies) == [250, 250, 354, 250]
        assert time.monotonic() - t0 >= 0.3
        c.quit()
    assert len(recorder.wait_messages(1)) == 1


@pytest.mark.parametrize("failure, expect", [("tempfail", 451), ("continue", 250)])
def test_plugin_timeout_uses_failure_verdict(gate_factory, recorder, plugins, failure, expect):
    gate = start(gate_factory, recorder, wait_plugin(plugins, never_rcpt="n@example.test",
                                                     late_ms=2500, timeout=0.5,
                                                     failure_verdict=failure))
    with gate.connect() as c:
        c.ehlo()
        assert c.cmd("MAIL FROM:<s@example.test>").code == 250
        t0 = time.monotonic()
        r = c.cmd("RCPT TO:<n@example.test>")
        elapsed = time.monotonic() - t0
        assert r.code == expect and 0.4 <= elapsed < 2.0, (r, elapsed)
        c.quit()
    gate.wait_log(r"plugin wait: .*no verdict within 0\.500s: using " + failure)


def test_client_leaves_while_plugin_is_out(gate_factory, recorder, plugins):
    """The plugin resolves after the client has gone: nothing crashes, nothing leaks (the gate
    must exit cleanly under the sanitizers at teardown)."""
    gate = start(gate_factory, recorder, wait_plugin(plugins, pending_rcpt="p@example.test",
                                                     delay_ms=800))
    with gate.connect() as c:
        c.ehlo()
        c.cmd("MAIL FROM:<s@example.test>")
        c.send("RCPT TO:<p@example.test>\r\n")
    time.sleep(1.5)
    with gate.connect() as c:
        c.ehlo()
        assert codes(c.mail_transaction("s@example.test", ["a@example.test"],
                                        simple_message("after")))[-1] == 250
        c.quit()


# ---- verdicts that wait on the connection's event loop (host->event_loop) ----

def evloop_plugin(plugins: Path, **options) -> str:
    return plugin_section("loop", plugins / "test_evloop.so", **options)


@pytest.fixture
def oracle():
    o = Oracle(delays={"slow@example.test": 2.5},
               rejects={"no@example.test": "Not on the oracle's list"})
    yield o
    o.close()


@pytest.mark.time_limit(60)
def test_event_loop_verdict_leaves_the_worker_free(gate_factory, recorder, plugins, oracle):
    """A RCPT verdict waits 2.5 s on a socket of the plugin's, on the connection's own loop;
    with one worker thread, another client meanwhile completes a whole transaction, and
    a refusal the oracle gives arrives with its text.  The loop is the worker's and the
    plugin is told it outlives the connection."""
    gate = start(gate_factory, recorder, evloop_plugin(plugins, oracle=oracle.address),
                 workers=1)
    slow: dict[str, float | int] = {}

    def slow_client():
        with gate.connect() as c:
            c.ehlo()
            assert c.cmd("MAIL FROM:<s@example.test>").code == 250
            t0 = time.monotonic()
            r = c.cmd("RCPT TO:<slow@example.test>")
            slow.update(code=r.code, elapsed=time.monotonic() - t0, at=time.monotonic())
            c.quit()

    t = threading.Thread(target=slow_client)
    t.start()
    wait_until(lambda: any(a == "slow@example.test" for a, _ in oracle.asked), 10,
               "the plugin to ask the oracle about slow@")
    with gate.connect() as c:
        c.ehlo()
        assert c.cmd("MAIL FROM:<s@example.test>").code == 250
        refused = c.cmd("RCPT TO:<no@example.test>")
        assert_reply(refused, 550, "5.7.1")
        assert refused.lines == ["5.7.1 Not on the oracle's list"], str(refused)
        assert c.cmd("RSET").code == 250
        replies = c.mail_transaction("s@example.test", ["fast@example.test"],
                                     simple_message("evloop-fast"))
        fast_at = time.monotonic()
        c.quit()
    t.join(30)
    assert codes(replies) == [250, 250, 354, 250]
    assert slow["code"] == 250 and slow["elapsed"] >= 2.4, slow
    assert fast_at < slow["at"], "the fast transaction waited for the slow verdict"
    [m] = recorder.wait_messages(1)
    assert m.rcpts == ["fast@example.test"]
    assert b"\r\nX-Evloop: outlives=yes\r\n" in m.content, m.content[:400]


def test_event_loop_timer_verdict_with_its_reply(gate_factory, recorder, plugins):
    """A MAIL verdict from a timer on the loop: refused with the plugin's reply after the
    delay for one sender, accepted after it for another."""
    gate = start(gate_factory, recorder, evloop_plugin(plugins, delay_ms=300,
                                                       reject_sender="bad@example.test"))
    with gate.connect() as c:
        c.ehlo()
        t0 = time.monotonic()
        r = c.cmd("MAIL FROM:<bad@example.test>")
        assert time.monotonic() - t0 >= 0.3
        assert_reply(r, 550, "5.7.1")
        assert r.lines == ["5.7.1 refused after a wait on the loop"], str(r)
        t0 = time.monotonic()
        assert c.cmd("MAIL FROM:<good@example.test>").code == 250
        assert time.monotonic() - t0 >= 0.3
        c.quit()


@pytest.mark.time_limit(60)
def test_event_loop_verdict_after_the_host_gave_up(gate_factory, recorder, plugins):
    """The plugin's timer (1.5 s) outlasts its timeout (0.3 s): MAIL gets the failure
    verdict at the timeout, the session goes on, the client leaves, and the late resolve
    on the loop frees what was left of the connection (the sanitizer teardown checks)."""
    gate = start(gate_factory, recorder, evloop_plugin(plugins, delay_ms=1500, timeout=0.3))
    with gate.connect() as c:
        c.ehlo()
        t0 = time.monotonic()
        r = c.cmd("MAIL FROM:<s@example.test>")
        elapsed = time.monotonic() - t0
        assert_reply(r, 451, "4.7.1")
        assert 0.3 <= elapsed < 1.4, elapsed
        c.quit()
    time.sleep(1.6)
    with gate.connect() as c:
        c.ehlo()
        c.quit()
    assert re.search(r"plugin loop: \S+: no verdict within 0\.300s: using tempfail", gate.log_text()), \
        gate.log_text()[-2000:]


# ---- configuration ----

def write_conf(workdir: Path, recorder, extra: str) -> Path:
    conf = workdir / "t.conf"
    # -t checks the folders too: workdir's own, on the first line so that
    # the line numbers the tests name stay.
    conf.write_text(f'listen = {{"{LOOPBACK}:{free_port()}"}} spool_dir = "{workdir}" '
                    f'quarantine_dir = "{workdir}/quarantine"\n'
                    f'upstream main {{ address = "{recorder.address}" }}\n' + extra)
    return conf


def test_config_errors_name_file_and_line(smtpgate_binary, workdir, recorder, plugins):
    conf = write_conf(workdir, recorder, policy(plugins, no_such_option="x"))
    r = run_config_test(smtpgate_binary, conf)
    assert r.returncode != 0
    assert re.search(rf"{re.escape(str(conf))}:5: plugin policy \(test_policy\): no such option 'no_such_option'", r.stderr), \
        r.stderr

    conf = write_conf(workdir, recorder, policy(plugins, connect_reject=["a", "b"]))
    r = run_config_test(smtpgate_binary, conf)
    assert r.returncode != 0 and re.search(r"t\.conf:5: unexpected token", r.stderr), r.stderr

    conf = write_conf(workdir, recorder, policy(plugins, fail_init="true"))
    r = run_config_test(smtpgate_binary, conf)
    assert r.returncode != 0
    assert re.search(r"t\.conf:5: plugin policy: fail_init: refusing to start", r.stderr), r.stderr

    conf = write_conf(workdir, recorder, plugin_section("old", plugins / "test_oldabi.so"))
    r = run_config_test(smtpgate_binary, conf)
    assert r.returncode != 0
    assert re.search(r"test_oldabi\.so is built for plugin ABI version 42; this smtpgate has "
                     r"version 2", r.stderr), r.stderr

    conf = write_conf(workdir, recorder, plugin_section("gone", workdir / "missing.so"))
    r = run_config_test(smtpgate_binary, conf)
    assert r.returncode != 0 and re.search(r":4: plugin gone: cannot load", r.stderr), r.stderr

    conf = write_conf(workdir, recorder, policy(plugins, timeout="-1"))
    r = run_config_test(smtpgate_binary, conf)
    assert r.returncode != 0 and "'timeout' is \"-1\"" in r.stderr, r.stderr

    conf = write_conf(workdir, recorder, policy(plugins, rcpt_reject=["x@example.test"]))
    r = run_config_test(smtpgate_binary, conf)
    assert r.returncode == 0, r.stderr


def test_abi1_plugin_refused_at_load(smtpgate_binary, workdir, recorder, plugins):
    """A plugin built for plugin ABI 1 (its descriptor in ABI 1's layout) is refused with the
    line naming its section's file:line, the file and both versions; nothing of it runs."""
    conf = write_conf(workdir, recorder, plugin_section("one", plugins / "test_abi1.so",
                                                        greeting="hi"))
    r = run_config_test(smtpgate_binary, conf)
    assert r.returncode != 0
    assert re.search(rf"{re.escape(str(conf))}:4: plugin one: \S*test_abi1\.so is built for "
                     r"plugin ABI version 1; this smtpgate has version 2", r.stderr), r.stderr


def test_declared_ranges_refused_with_file_and_line(smtpgate_binary, workdir, recorder, plugins):
    """Integer options outside the range a plugin declares are refused by the host, naming
    the file, the line of the value, the instance and the key; the ends are allowed."""
    wait = plugins / "test_wait.so"
    conf = write_conf(workdir, recorder, plugin_section("slow", wait, delay_ms=-5))
    r = run_config_test(smtpgate_binary, conf)
    assert r.returncode != 0
    assert re.search(rf"{re.escape(str(conf))}:5: plugin slow: 'delay_ms' is -5; it must be "
                     r"from 0 to 600000", r.stderr), r.stderr

    conf = write_conf(workdir, recorder, plugin_section("slow", wait, sleep_ms=10,
                                                        late_ms=600001))
    r = run_config_test(smtpgate_binary, conf)
    assert r.returncode != 0
    assert re.search(r"t\.conf:6: plugin slow: 'late_ms' is 600001; it must be from 0 to "
                     r"600000", r.stderr), r.stderr

    conf = write_conf(workdir, recorder, plugin_section("slow", wait, delay_ms=0,
                                                        late_ms=600000))
    r = run_config_test(smtpgate_binary, conf)
    assert r.returncode == 0, r.stderr

    # a range the host cannot enforce (on a string) gets the plugin refused at load
    conf = write_conf(workdir, recorder, plugin_section("bad", plugins / "test_badrange.so"))
    r = run_config_test(smtpgate_binary, conf)
    assert r.returncode != 0
    assert re.search(r"t\.conf:4: plugin bad: \S*test_badrange\.so declares an unusable option "
                     r"'label'", r.stderr), r.stderr

    # the type is checked before the range
    conf = write_conf(workdir, recorder, plugin_section("slow", wait, delay_ms="soon"))
    r = run_config_test(smtpgate_binary, conf)
    assert r.returncode != 0
    assert re.search(r"t\.conf:5: plugin slow: 'delay_ms' is \"soon\": must be a whole number",
                     r.stderr), r.stderr


@pytest.mark.time_limit(90)
def test_reload_under_load_loses_no_transaction(gate_factory, recorder, plugins, workdir):
    """SIGHUP swaps the chain while clients send mail in a loop: every transaction that was
    given 250 is at the upstream, every refusal is by the chain in force for that session, and
    new sessions log the new chain generation."""
    first = policy(plugins, rcpt_reject=["old@example.test"])
    gate = start(gate_factory, recorder, first)
    results: list[int] = []
    stop = threading.Event()

    def sender():
        for i in range(400):
            if stop.is_set():
                return
            try:
                with gate.connect() as c:
                    c.ehlo()
                    r = c.mail_transaction("s@example.test", [f"u{i}@example.test"],
                                           simple_message(f"load {i}"))
                    results.append(r[-1].code)
                    c.quit()
            except Exception as e:  # noqa: BLE001 - recorded as a failure
                results.append(-1)
                print("client error", e)

    threads = [threading.Thread(target=sender) for _ in range(3)]
    for t in threads:
        t.start()
    time.sleep(1.0)
    mark = gate.log_mark()
    gate.extra = policy(plugins, rcpt_reject=["new@example.test"])
    gate.write_config()
    gate.send_signal(signal.SIGHUP)
    gate.wait_log(r"reloaded configuration, generation 2", mark)
    time.sleep(1.0)
    stop.set()
    for t in threads:
        t.join(60)
    assert results and all(code == 250 for code in results), results
    wait_until(lambda: len(recorder.messages) == len(results), 15, "all messages upstream")
    with gate.connect() as c:
        c.ehlo()
        assert c.cmd("MAIL FROM:<s@example.test>").code == 250
        assert c.cmd("RCPT TO:<old@example.test>").code == 250
        assert c.cmd("RCPT TO:<new@example.test>").code == 550
        c.quit()
    assert re.search(r"chain=2 ", gate.log_since(mark))


def test_broken_plugin_config_on_reload_keeps_old_chain(gate_factory, recorder, plugins):
    gate = start(gate_factory, recorder, policy(plugins, rcpt_reject=["old@example.test"]))
    mark = gate.log_mark()
    gate.extra = policy(plugins, fail_init="true")
    gate.write_config()
    gate.send_signal(signal.SIGHUP)
    gate.wait_log(r"reload refused", mark)
    with gate.connect() as c:
        c.ehlo()
        assert c.cmd("MAIL FROM:<s@example.test>").code == 250
        assert c.cmd("RCPT TO:<old@example.test>").code == 550
        c.quit()


def test_tx_log_line_and_metrics(gate_factory, recorder, plugins):
    port = free_port()
    extra = policy(plugins, "first") + plugin_section("noop", plugins / "test_noop.so")
    gate = start(gate_factory, recorder, extra, metrics_listen=f"{LOOPBACK}:{port}")
    with gate.connect() as c:
        c.ehlo()
        assert codes(c.mail_transaction("s@example.test", ["a@example.test"],
                                        simple_message("log")))[-1] == 250
        c.quit()
    line = gate.wait_log(r"tx from=<s@example.test> .*result=accepted.*").group(0)
    assert re.search(r"chain=1 decided=- verdict=continue filters=first:\d+\.\dms,noop:\d+\.\dms",
                     line), line
    text = urllib.request.urlopen(f"http://{LOOPBACK}:{port}/metrics", timeout=10).read().decode()
    assert re.search(r'^smtpgate_plugin_events_total\{plugin="first",event="connections"\} 1$',
                     text, re.M), text
    assert re.search(r'^smtpgate_plugin_verdicts_total\{plugin="noop",verdict="reject"\} 0$',
                     text, re.M), text
    assert re.search(r'^smtpgate_transactions_total\{result="accepted"\} 1$', text, re.M), text


def test_plugin_reads_host_members_guarded_by_size(gate_factory, recorder, plugins):
    """A plugin that tests host->tx_note and conn->host_name with SG_HAS before it uses them
    finds both on this host: its note, with the host name, is on the transaction's line."""
    gate = start(gate_factory, recorder, policy(plugins, note="guarded"))
    with gate.connect() as c:
        c.ehlo()
        assert codes(c.mail_transaction("s@example.test", ["a@example.test"],
                                        simple_message("has")))[-1] == 250
        c.quit()
    line = gate.wait_log(r"tx from=<s@example.test> .*result=accepted.*").group(0)
    assert 'policy="guarded host=smtpgate.example.test"' in line, line
