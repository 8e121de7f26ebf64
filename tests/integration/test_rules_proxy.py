"""The rules plugin inside a running smtpgate: rules refuse at their own stage, GTUBE at end
of data, tagged mail arrives with the report and the subject prefix, and SIGHUP swaps the rule
set under load (a broken file keeps the old rules)."""

from __future__ import annotations

import re
import signal
import threading
import time
from pathlib import Path

import pytest

from gate import REPO, plugin_dir, plugin_section
from helpers import assert_no_upstream_connection, assert_reply, codes, upstream_baseline
from netutil import wait_until
from smtpclient import simple_message

GTUBE = "XJS*C4JDBQADN1.NSBN3*2IDNEN*GTUBE-STANDARD-ANTI-UBE-TEST-EMAIL*C.34X"

RULES = r"""
rule BAD_HELO    helo       /^bad\.example$/        reject "550 5.7.1 Bad HELO, go away"
rule BAD_SENDER  mail_from  /^spammer@/i            reject "553 5.7.1 Sender blocked by rule"
rule CFO_GUARD   rcpt_to    /^cfo@/                 reject "550 5.7.1 Not for the CFO"
rule BLOCKED_NET client_addr 127.0.0.3/32           reject "554 5.7.1 Network refused"
rule MONEY       header Subject  /money/i           score 3
rule CHEAP       body       /cheap pills/i          score 3
rule LOUD        header Subject  /!!!/              score 0.5
threshold tag 5  add-header "X-Spam-Flag: YES"  subject-prefix "[SPAM] "
threshold reject 10  "550 5.7.1 Message content rejected"
"""


@pytest.fixture
def rules_so(smtpgate_binary) -> Path:
    so = plugin_dir(smtpgate_binary).parent.parent / "plugins" / "rules.so"
    if not so.exists():
        pytest.skip(f"{so} not built")
    return so


def rules_gate(gate_factory, recorder, rules_so, files, **settings):
    extra = plugin_section("rules", rules_so, files=[str(f) for f in files])
    g = gate_factory([recorder.address], extra=extra, **settings)
    recorder.wait_idle()
    return g


@pytest.fixture
def rulefile(workdir) -> Path:
    p = workdir / "local.rules"
    p.write_text(RULES)
    return p


def test_envelope_rules_refuse_at_their_stage(gate_factory, recorder, rules_so, rulefile):
    gate = rules_gate(gate_factory, recorder, rules_so, [rulefile])
    base = upstream_baseline(recorder)
    with gate.connect() as c:
        r = c.cmd("EHLO bad.example")
        assert_reply(r, 550, "5.7.1")
        assert "Bad HELO" in r.text
        c.ehlo("good.example")
        r = c.cmd("MAIL FROM:<spammer@example.test>")
        assert_reply(r, 553, "5.7.1")
        c.quit()
    assert_no_upstream_connection(recorder, base)
    with gate.connect() as c:
        c.ehlo("good.example")
        replies = c.mail_transaction("a@example.test", ["cfo@example.test", "bob@example.test"],
                                     simple_message("cfo"))
        assert codes(replies) == [250, 550, 250, 354, 250]
        assert "Not for the CFO" in replies[1].text
        c.quit()
    [m] = recorder.wait_messages(1)
    assert m.rcpts == ["bob@example.test"]
    with gate.connect(source="127.0.0.3", read_greeting=False) as c:
        r = c.read_reply()
        assert_reply(r, 554, "5.7.1")
        assert "Network refused" in r.text


def test_gtube_refused_at_end_of_data(gate_factory, recorder, rules_so):
    gate = rules_gate(gate_factory, recorder, rules_so, [REPO / "rules" / "default.rules"])
    with gate.connect() as c:
        c.ehlo("mail.example.test")
        replies = c.mail_transaction("a@example.test", ["r@example.test"],
                                     simple_message("gtube", f"test {GTUBE} test\r\n"))
        assert_reply(replies[-1], 554, "5.7.1")
        assert "GTUBE" in replies[-1].text
        c.quit()
    assert recorder.messages == []
    line = gate.wait_log(r"tx from=<a@example\.test> .*").group(0)
    assert re.search(r"result=refused .*decided=rules verdict=reject", line), line
    # the transaction's own line names the rules that hit and the score
    assert re.search(r' rules="score=[\d.]+ hits=[^"]*GTUBE\(body\)', line), line


def test_tagged_message_carries_report_and_prefix(gate_factory, recorder, rules_so, rulefile):
    gate = rules_gate(gate_factory, recorder, rules_so, [rulefile])
    forged = "X-Spam-Status: No, score=-100\r\n"
    with gate.connect() as c:
        c.ehlo("mail.example.test")
        msg = simple_message("Money money!!!", "buy cheap pills now\r\n", extra_headers=forged)
        assert codes(c.mail_transaction("a@example.test", ["r@example.test"], msg))[-1] == 250
        c.quit()
    [m] = recorder.wait_messages(1)
    head = m.content.split(b"\r\n\r\n", 1)[0].decode()
    assert re.search(r"^Subject: \[SPAM\] Money money!!!\r$", head, re.M), head
    assert re.search(r"^X-Spam-Flag: YES\r$", head, re.M), head
    status = re.search(r"^X-Spam-Status: (.*(?:\r\n[ \t].*)*)", head, re.M)
    assert status, head
    text = re.sub(r"\s+", " ", status.group(1))
    assert text.startswith("Yes, score=6.5 required=5.0"), text
    assert "tests=" in text and "CHEAP" in text and "MONEY" in text and "LOUD" in text, text
    assert re.search(r"^X-Spam-Score: 6\.5\r?$", head, re.M), head
    assert "score=-100" not in head, "the client's own X-Spam-Status survived"


@pytest.mark.time_limit(90)
def test_reload_under_load_and_broken_file(gate_factory, recorder, rules_so, rulefile):
    gate = rules_gate(gate_factory, recorder, rules_so, [rulefile])
    results: list[int] = []
    stop = threading.Event()

    def sender():
        for i in range(300):
            if stop.is_set():
                return
            with gate.connect() as c:
                c.ehlo("mail.example.test")
                r = c.mail_transaction("a@example.test", [f"u{i}@example.test"],
                                       simple_message(f"load {i}"))
                results.append(r[-1].code)
                c.quit()

    threads = [threading.Thread(target=sender) for _ in range(2)]
    for t in threads:
        t.start()
    time.sleep(1.0)
    mark = gate.log_mark()
    rulefile.write_text(RULES + 'rule NEW_RULE rcpt_to /^newly-blocked@/ reject\n')
    gate.send_signal(signal.SIGHUP)
    gate.wait_log(r"reloaded configuration, generation 2", mark)
    time.sleep(0.5)
    stop.set()
    for t in threads:
        t.join(60)
    assert results and all(code == 250 for code in results), results
    wait_until(lambda: len(recorder.messages) == len(results), 15, "every message upstream")
    with gate.connect() as c:
        c.ehlo("mail.example.test")
        assert c.cmd("MAIL FROM:<a@example.test>").code == 250
        assert c.cmd("RCPT TO:<newly-blocked@example.test>").code == 550
        c.quit()

    mark = gate.log_mark()
    rulefile.write_text(RULES + "rule BROKEN body /unclosed(/ score 1\n")
    gate.send_signal(signal.SIGHUP)
    m = gate.wait_log(r"local\.rules:\d+:\d+: .*", mark)
    gate.wait_log(r"reload refused", mark)
    assert "BROKEN" in m.group(0) or "unclosed" in m.group(0) or "missing" in m.group(0), m.group(0)
    with gate.connect() as c:
        c.ehlo("mail.example.test")
        assert c.cmd("MAIL FROM:<a@example.test>").code == 250
        assert c.cmd("RCPT TO:<newly-blocked@example.test>").code == 550  # old rules in force
        c.quit()
