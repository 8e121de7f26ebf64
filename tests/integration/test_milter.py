"""smtpgate-milter inside a real Postfix: the filter chain as a milter.

A private Postfix (postfix_instance.py) with smtpd_milters pointing at
smtpgate-milter on a loopback port; clients talk SMTP to Postfix itself.  The
chain is the milter_policy test plugin (tests/plugins/milter_policy.c), whose
options script a verdict per stage:

  RCPT      blocked@example.test refused (550 5.7.1 ...), other recipients not
  eom       GTUBE in the body refused with the plugin's exact reply; another
            tempfailed with a two-line reply; one quarantined (Postfix's hold
            queue), one discarded; every message let through gets a header
  MAIL      (pending_ms) the verdict comes later from another thread

and the SPF plugin (plugins/spf) against a DNS server on loopback (dnsmasq):
a fail refused at MAIL with the record's explanation, a pass delivered with
Received-SPF and Authentication-Results (inserted, and a forged one deleted,
through the milter's header edits)

and the milter's own behaviour: reload on SIGHUP, the MTA's
milter_default_action when smtpgate-milter is not running, -t.  The last test
runs one message set through the proxy (smtpgate in front of the recording
upstream) and through the milter, with the same plugin section, and compares
the verdicts and the headers the chain added.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import tempfile
import threading
import time
from pathlib import Path

import pytest

from dnsserver import DnsServer, dnsmasq_available
from gate import Gate, plugin_section
from milter import Milter, find_milter_binary, policy_plugin_path, render_plugin
from netutil import LOOPBACK, free_port, is_listening, wait_until
from oracle import Oracle
from postfix_instance import PostfixInstance, postfix_available
from rbldnsd import Rbldnsd, rbldnsd_available
from recorder import Recorder
from smtpclient import SMTPConn, simple_message

GTUBE = "XJS*C4JDBQADN1.NSBN3*2IDNEN*GTUBE-STANDARD-ANTI-UBE-TEST-EMAIL*C.34X"

POLICY = {
    "reject_mail": ["bad@example.test"],
    "mail_reply": "550 5.7.1 Sender blocked by policy",
    "reject_rcpt": ["blocked@example.test"],
    "rcpt_reply": "550 5.7.1 Recipient blocked by policy",
    "body_reject": GTUBE,
    "body_reply": "554 5.7.1 Message content rejected: test marker found",
    "body_tempfail": "DEFER-ME-PLEASE",
    "tempfail_reply": "451-4.7.1 Deferred by policy\n451 4.7.1 Try again in a while",
    "quarantine_marker": "HOLD-ME-PLEASE",
    "quarantine_reason": "held by policy test",
    "discard_marker": "DROP-ME-PLEASE",
    "add_header": "X-Policy-Tag: checked by policy",
}

# What a site adds to main.cf (README "Running as a milter"), with short
# timeouts so that a test about a missing milter is quick.
MILTER_MAIN_CF = """
smtpd_milters = inet:127.0.0.1:{port}
non_smtpd_milters =
milter_protocol = 6
milter_default_action = tempfail
milter_connect_timeout = 5s
milter_command_timeout = 20s
milter_content_timeout = 30s
"""


@pytest.fixture(scope="module")
def milter_binary():
    b = find_milter_binary()
    if b is None:
        pytest.skip("smtpgate-milter not built (make)")
    if not policy_plugin_path(b).is_file():
        pytest.skip(f"test plugin {policy_plugin_path(b)} not built")
    return b


@pytest.fixture(scope="module")
def milter_port() -> int:
    return free_port()


@pytest.fixture(scope="module")
def mpostfix(workbase, milter_port):
    """A Postfix of its own (the session's `postfix` has no milter), with two more
    smtpd services: one with milter_default_action = accept, one whose milter is on
    a unix socket.  Services of their own, not a postconf and reload: an smtpd
    process from before a reload may still take the next session."""
    if not postfix_available():
        pytest.skip("Postfix not installed")
    if os.geteuid() != 0:
        pytest.skip("a private Postfix instance needs root")
    pf = PostfixInstance(workbase)
    pf.extra_main_cf = MILTER_MAIN_CF.format(port=milter_port)
    pf.accept_port, pf.unix_port = free_port(), free_port()
    pf.milter_unix_path = Path(tempfile.mkdtemp(prefix="milter-sock-", dir=workbase)) / "m.sock"
    pf.milter_unix_path.parent.chmod(0o755)
    pf.extra_master_cf = (f"{LOOPBACK}:{pf.accept_port} inet n - n - - smtpd\n"
                          f"  -o milter_default_action=accept\n"
                          f"{LOOPBACK}:{pf.unix_port} inet n - n - - smtpd\n"
                          f"  -o smtpd_milters=unix:{pf.milter_unix_path}\n")
    pf.start()
    wait_until(lambda: is_listening(pf.accept_port) and is_listening(pf.unix_port), 20,
               "the extra smtpd services to listen")
    yield pf
    pf.stop()


@pytest.fixture
def milter_factory(milter_binary, milter_port, workdir):
    """start(options=None, plugins=None, unix=None, settings=None) -> running Milter (on
    the module's port, or on the unix socket path given); each must exit cleanly."""
    started: list[Milter] = []

    def start(options: dict | None = None, plugins: str | None = None,
              unix: Path | None = None, settings: dict | None = None) -> Milter:
        for m in started:
            m.stop()
        if plugins is None:
            plugins = render_plugin("policy", policy_plugin_path(milter_binary),
                                    {**POLICY, **(options or {})})
        name = f"milter{len(started)}"
        m = Milter(milter_binary, workdir, milter_port, plugins, settings, name=name,
                   unix_path=unix)
        started.append(m)
        return m.start()

    yield start
    problems = []
    for m in started:
        try:
            m.stop()
            m.assert_clean_exit()
        except AssertionError as e:
            problems.append(str(e))
    assert not problems, "\n\n".join(problems)


@pytest.fixture
def milter(milter_factory):
    return milter_factory()


def connect(pf: PostfixInstance) -> SMTPConn:
    return SMTPConn(LOOPBACK, pf.port)


def queue_id(reply) -> str:
    m = re.search(r"queued as (\S+)", reply.text)
    assert m, f"no queue id in {reply}"
    return m.group(1)


def test_rcpt_refused_for_that_recipient_only(mpostfix, milter):
    """RCPT of the blocked recipient gets the plugin's reply; the others are accepted
    and the message reaches exactly them."""
    with connect(mpostfix) as c:
        c.ehlo()
        assert c.cmd("MAIL FROM:<s@example.test>").code == 250
        a = c.cmd("RCPT TO:<a@example.test>")
        blocked = c.cmd("RCPT TO:<blocked@example.test>")
        b = c.cmd("RCPT TO:<b@example.test>")
        assert (a.code, b.code) == (250, 250), (str(a), str(b))
        assert blocked.code == 550, str(blocked)
        assert blocked.lines == ["5.7.1 Recipient blocked by policy"], str(blocked)
        assert c.cmd("DATA").code == 354
        c.send(simple_message("milter-rcpt") + b".\r\n")
        assert c.read_reply().code == 250
        c.quit()
    copies = mpostfix.wait_delivered(b"Subject: milter-rcpt", n=2)
    delivered_to = sorted(re.search(rb"^Delivered-To: (\S+)", m, re.M).group(1) for m in copies)
    assert delivered_to == [b"a@example.test", b"b@example.test"]


def test_body_refused_at_end_of_data_with_exact_text(mpostfix, milter):
    mark = mpostfix.log_mark()
    with connect(mpostfix) as c:
        c.ehlo()
        replies = c.mail_transaction("s@example.test", ["user@example.test"],
                                     simple_message("milter-body", f"x {GTUBE} y\r\n"))
        c.quit()
    final = replies[-1]
    assert final.code == 554, str(final)
    assert final.lines == ["5.7.1 Message content rejected: test marker found"], str(final)
    mpostfix.wait_log(r"milter-reject: END-OF-MESSAGE .*5\.7\.1 Message content rejected", mark)


@pytest.mark.time_limit(120)
def test_large_message_spills_to_disk(mpostfix, milter_factory):
    """A 2 MB message with spill_threshold 64 KiB (the milter's copy goes on in an
    unlinked file in spool_dir): the plugin finds GTUBE at its very end, a clean one is
    tagged and delivered intact, and nothing is left in spool_dir."""
    m = milter_factory(settings={"spill_threshold": 65536})
    body = b"".join(b"line %08d of a large message\r\n" % i for i in range(64000))
    with connect(mpostfix) as c:
        c.ehlo()
        refused = c.mail_transaction("s@example.test", ["user@example.test"],
                                     simple_message("milter-big-gtube", body + GTUBE.encode()))
        clean = c.mail_transaction("s@example.test", ["user@example.test"],
                                   simple_message("milter-big-clean", body))
        c.quit()
    assert refused[-1].code == 554, str(refused[-1])
    assert clean[-1].code == 250, str(clean[-1])
    [msg] = mpostfix.wait_delivered(b"Subject: milter-big-clean", timeout=60)
    assert b"X-Policy-Tag: checked by policy\n" in msg
    assert msg.partition(b"\n\n")[2] == body.replace(b"\r\n", b"\n")
    assert not list(m.spool_dir.iterdir()), "a spill file was left in spool_dir"


def test_multiline_tempfail_reply(mpostfix, milter):
    """A two-line 4xx reply arrives as two lines, code and enhanced code on each."""
    with connect(mpostfix) as c:
        c.ehlo()
        replies = c.mail_transaction("s@example.test", ["user@example.test"],
                                     simple_message("milter-defer", "DEFER-ME-PLEASE\r\n"))
        c.quit()
    final = replies[-1]
    assert final.code == 451, str(final)
    assert final.lines == ["4.7.1 Deferred by policy", "4.7.1 Try again in a while"], str(final)


def test_tag_header_in_delivered_message(mpostfix, milter):
    """The header the plugin adds at eom is in the message Postfix delivers, once."""
    with connect(mpostfix) as c:
        c.ehlo()
        replies = c.mail_transaction("s@example.test", ["user@example.test"],
                                     simple_message("milter-tag", "plain body\r\n"))
        c.quit()
    assert replies[-1].code == 250, str(replies[-1])
    [msg] = mpostfix.wait_delivered(b"Subject: milter-tag")
    assert msg.count(b"X-Policy-Tag: checked by policy\n") == 1, msg[:2000]
    assert b"plain body" in msg


def test_connection_facts_from_the_mta(mpostfix, milter_factory):
    """The facts plugins see come from the connect call and the macros smtpgate-milter
    asked for ({daemon_addr} {daemon_port} are not in Postfix's default list)."""
    milter_factory({"facts_header": True})
    with connect(mpostfix) as c:
        c.ehlo("facts-client.example.test")
        local_port = c.sock.getsockname()[1]
        replies = c.mail_transaction("facts@example.test", ["a@example.test", "b@example.test"],
                                     simple_message("milter-facts"))
        c.quit()
    assert replies[-1].code == 250, str(replies[-1])
    copies = mpostfix.wait_delivered(b"Subject: milter-facts", n=2)
    facts = re.search(rb"^X-Policy-Facts: (.*)$", copies[0], re.M).group(1).decode()
    assert facts == (f"client=127.0.0.1:{local_port} name=- local=127.0.0.1:{mpostfix.port} "
                     "helo=facts-client.example.test tls=- login=- from=facts@example.test "
                     "nrcpt=2"), facts


@pytest.fixture
def spf_dns(workdir):
    if not dnsmasq_available():
        pytest.skip("dnsmasq not installed")
    d = DnsServer(domains=["spf.test"], log_path=workdir / "dnsmasq.log")
    d.txt("pass.spf.test", "v=spf1 ip4:127.0.0.1 -all")
    d.txt("fail.spf.test", "v=spf1 -all exp=why.spf.test")
    d.txt("why.spf.test", "%{i} may not send for %{d}")
    d.start()
    yield d
    d.stop()


@pytest.fixture
def spf_milter(milter_factory, milter_binary, spf_dns):
    so = milter_binary.parent / "plugins" / "spf.so"
    if not so.exists():
        pytest.skip(f"{so} not built")
    # Postfix's clients here come from 127.0.0.1: the loopback exemption is off.
    return milter_factory(plugins=plugin_section(
        "spf", so, nameserver=spf_dns.address, exempt_networks=[],
        authserv_id="mx.example.test", dns_timeout=2, timeout=10))


@pytest.fixture
def dnsbl_milter(milter_factory, milter_binary, workdir):
    """The dnsbl plugin on the milter's own per-connection event loop, against rbldnsd."""
    so = milter_binary.parent / "plugins" / "dnsbl.so"
    if not so.exists():
        pytest.skip(f"{so} not built")
    if not rbldnsd_available():
        pytest.skip("rbldnsd not installed")
    r = Rbldnsd(workdir)
    r.zone("bl.test", "ip4set", ":127.0.0.2:Listed\n127.0.0.10\n")
    r.start()
    m = milter_factory(plugins=plugin_section(
        "dnsbl", so, sites="bl.test=127.0.0.2*3", threshold=3, nameservers=[r.address],
        dns_timeout=2, timeout=10))
    yield m
    r.stop()


def test_dnsbl_listed_client_refused(mpostfix, dnsbl_milter):
    """Postfix hands the milter the client 127.0.0.10; the plugin's refusal at connect is
    Postfix's answer to the client's commands."""
    with SMTPConn(LOOPBACK, mpostfix.port, source="127.0.0.10") as c:
        r = c.cmd("EHLO client.test")
        if r.code == 250:  # Postfix applies a connect-stage refusal from MAIL on
            r = c.cmd("MAIL FROM:<a@example.test>")
        c.quit()
    assert r.first_line == ("554 5.7.1 Service unavailable; client [127.0.0.10] blocked "
                            "using bl.test"), str(r)
    with SMTPConn(LOOPBACK, mpostfix.port, source="127.0.0.11") as c:
        c.ehlo("client.test")
        assert c.cmd("MAIL FROM:<a@example.test>").code == 250
        c.quit()


def test_spf_fail_refused_at_mail(mpostfix, spf_milter):
    with connect(mpostfix) as c:
        c.ehlo("client.spf.test")
        r = c.cmd("MAIL FROM:<a@fail.spf.test>")
        c.quit()
    assert r.code == 550 and r.enhanced == "5.7.23", str(r)
    assert "127.0.0.1 may not send for fail.spf.test" in r.text, str(r)


def test_spf_pass_delivered_with_headers(mpostfix, spf_milter):
    forged = "Authentication-Results: mx.example.test; spf=pass smtp.mailfrom=x@forged.test\r\n"
    with connect(mpostfix) as c:
        c.ehlo("client.spf.test")
        replies = c.mail_transaction("a@pass.spf.test", ["user@example.test"],
                                     simple_message("milter-spf-pass", extra_headers=forged))
        c.quit()
    assert [r.code for r in replies] == [250, 250, 354, 250], [str(r) for r in replies]
    [msg] = mpostfix.wait_delivered(b"Subject: milter-spf-pass")
    head = msg.split(b"\n\n", 1)[0].decode()
    assert re.search(r"^Received-SPF: pass ", head, re.M), head
    assert re.search(r"^Authentication-Results: mx\.example\.test;\s+spf=pass"
                     r"\s*smtp\.mailfrom=(a@)?pass\.spf\.test", head, re.M), head
    assert "forged.test" not in head, "the forged Authentication-Results was not deleted"


def test_ratelimit_on_redis_in_milter_mode(mpostfix, milter_factory, milter_binary, workdir):
    """The ratelimit plugin with its state in a real redis-server, inside Postfix: each
    milter connection has an event loop of its own, freed after the connection, so the
    plugin's Redis connection lives and dies with it (the milter must exit cleanly); the
    count goes on across connections and the third MAIL is refused with the plugin's text."""
    from redis_server import RedisServer, redis_server_path
    if not redis_server_path():
        pytest.skip("redis-server not installed (Debian package redis-server)")
    so = milter_binary.parent / "plugins" / "ratelimit.so"
    if not so.exists():
        pytest.skip(f"{so} not built")
    redis = RedisServer(workdir).start()
    try:
        milter_factory(plugins=plugin_section("ratelimit", so, backend="redis",
                                              redis=redis.address,
                                              limit=["messages per sender 2/1h"]))
        got = []
        for _ in range(3):
            with connect(mpostfix) as c:
                c.ehlo("client.example.test")
                got.append(str(c.cmd("MAIL FROM:<flood@example.test>")))
                c.quit()
        assert got[:2] == ["250 2.1.0 Ok", "250 2.1.0 Ok"], got
        assert got[2] == "450 4.7.1 Error: too much mail from flood@example.test", got
        assert redis.command("KEYS", "*") == ["rl:messages:sender:3600000:flood@example.test"]
    finally:
        redis.stop()


@pytest.fixture
def rules_milter(milter_factory, milter_binary, workdir):
    so = milter_binary.parent / "plugins" / "rules.so"
    if not so.exists():
        pytest.skip(f"{so} not built")
    local = workdir / "milter.rules"
    local.write_text('rule RCPT_TRAP rcpt_to /^trap@/ reject "550 5.7.1 Trap address"\n'
                     'rule MONEY header Subject /money/i score 6\n')  # tag at 5: shipped set
    shipped = Path(__file__).resolve().parents[2] / "rules" / "default.rules"
    return milter_factory(plugins=plugin_section("rules", so, files=[str(shipped), str(local)]))


def test_rules_plugin_in_milter_mode(mpostfix, rules_milter):
    """The rules plugin inside Postfix: a rule refusing at RCPT refuses that recipient only,
    GTUBE is refused at end of data with the rule's own text, and a tagged message is
    delivered with the report headers and the subject prefix."""
    with connect(mpostfix) as c:
        c.ehlo("client.example.test")
        assert c.cmd("MAIL FROM:<s@example.test>").code == 250
        trap = c.cmd("RCPT TO:<trap@example.test>")
        assert trap.code == 550 and trap.lines == ["5.7.1 Trap address"], str(trap)
        assert c.cmd("RCPT TO:<user@example.test>").code == 250
        assert c.cmd("DATA").code == 354
        c.send(simple_message("milter-gtube", f"x {GTUBE} y\r\n") + b".\r\n")
        gtube = c.read_reply()
        assert gtube.code == 554, str(gtube)
        assert gtube.lines == ["5.7.1 Message rejected: GTUBE test string"], str(gtube)
        replies = c.mail_transaction("s@example.test", ["user@example.test"],
                                     simple_message("make money fast"))
        assert replies[-1].code == 250, str(replies[-1])
        c.quit()
    [msg] = mpostfix.wait_delivered(b"[SPAM] make money fast")
    head = msg.split(b"\n\n", 1)[0].decode()
    assert re.search(r"^Subject: \[SPAM\] make money fast$", head, re.M), head
    assert re.search(r"^X-Spam-Flag: YES$", head, re.M), head
    assert re.search(r"^X-Spam-Status: Yes, score=", head, re.M), head


def test_postfix_keeps_its_own_received_field_from_the_milter(mpostfix, milter_factory,
                                                              milter_binary, workdir):
    """The milter does not see the Received field Postfix's smtpd writes for the connection
    (the delivered message has it, the rules inside the milter find none), while it sees the
    client's own fields: why the rules plugin adds the connection as the newest relay of
    SpamAssassin's chain in smtpgate-milter too, as in the proxy."""
    so = milter_binary.parent / "plugins" / "rules.so"
    if not so.exists():
        pytest.skip(f"{so} not built")
    local = workdir / "received.rules"
    local.write_text("rule ANY_RECEIVED header Received /./ score 0.1\n"
                     "rule SUBJECT_SEEN header Subject /^relay check$/ score 0.2\n")
    milter_factory(plugins=plugin_section("rules", so, files=[str(local)]))
    with connect(mpostfix) as c:
        c.ehlo("relay-check.example.test")
        replies = c.mail_transaction("s@example.test", ["user@example.test"],
                                     simple_message("relay check"))
        assert replies[-1].code == 250, str(replies[-1])
        c.quit()
    [msg] = mpostfix.wait_delivered(b"relay check")
    head = msg.split(b"\n\n", 1)[0].decode()
    assert re.search(r"^Received: from relay-check\.example\.test \(\S+ \[127\.0\.0\.1\]\)",
                     head, re.M), head
    assert re.search(r"^X-Spam-Status: No, score=0\.2 required=5\.0 tests=SUBJECT_SEEN$",
                     head, re.M), head


def test_every_edit_through_postfix(mpostfix, milter_factory, milter_binary):
    """The chain's end-of-message edits carried out by Postfix (test_policy, the
    chain's own test plugin): insert, change and delete a header, replace the body,
    change the sender, add and delete a recipient."""
    so = milter_binary.parent / "tests" / "plugins" / "test_policy.so"
    if not so.exists():
        pytest.skip(f"{so} not built")
    milter_factory(plugins=plugin_section(
        "edits", so, insert_header="X-Inserted: at the top", change_header="X-Change-Me: changed",
        delete_header="X-Delete-Me", replace_body="replaced body\r\nsecond line\r\n",
        change_from="bounces@example.test", add_rcpt="archive@example.test",
        del_rcpt="drop@example.test"))
    with connect(mpostfix) as c:
        c.ehlo()
        replies = c.mail_transaction(
            "s@example.test", ["keep@example.test", "drop@example.test"],
            simple_message("milter-edits", "original body\r\n",
                           "X-Change-Me: original\r\nX-Delete-Me: yes\r\n"))
        c.quit()
    assert [r.code for r in replies] == [250, 250, 250, 354, 250], [str(r) for r in replies]
    copies = mpostfix.wait_delivered(b"Subject: milter-edits", n=2)
    delivered_to = sorted(re.search(rb"^Delivered-To: (\S+)", m, re.M).group(1) for m in copies)
    assert delivered_to == [b"archive@example.test", b"keep@example.test"]
    for m in copies:
        head, _, body = m.partition(b"\n\n")
        assert re.search(rb"^Return-Path: <bounces@example\.test>$", head, re.M), head
        assert re.search(rb"^X-Inserted: at the top$", head, re.M), head
        assert re.search(rb"^X-Change-Me: changed$", head, re.M), head
        assert b"X-Delete-Me" not in head and b"original" not in head, head
        assert body == b"replaced body\nsecond line\n", body


def test_quarantine_goes_to_the_hold_queue(mpostfix, milter):
    """smfi_quarantine: the client gets 250, the message waits in the hold queue
    (Postfix logs the milter's HOLD; the reason is in smtpgate-milter's log)."""
    mark = mpostfix.log_mark()
    with connect(mpostfix) as c:
        c.ehlo()
        replies = c.mail_transaction("s@example.test", ["user@example.test"],
                                     simple_message("milter-hold", "HOLD-ME-PLEASE\r\n"))
        c.quit()
    assert replies[-1].code == 250, str(replies[-1])
    qid = queue_id(replies[-1])
    try:
        mpostfix.wait_log(rf"{qid}: milter-hold: END-OF-MESSAGE .*milter triggers HOLD", mark)
        m = milter.wait_log(rf"queue_id={qid} action=quarantine "
                            r'reason="held by policy test" chain=\d+ decided=policy '
                            r"verdict=quarantine .*$")
        keys = re.findall(r"(?:^| )([a-z_]+)=", m.group(0))
        assert len(keys) == len(set(keys)), f"a key repeated on the line: {m.group(0)}"
        held = [q for q in mpostfix.queue() if q["queue_id"] == qid]
        assert held and held[0]["queue_name"] == "hold", mpostfix.queue()
        assert not [m for m in mpostfix.delivered() if b"Subject: milter-hold" in m]
    finally:
        mpostfix.delete_queued(qid)


def test_discard_is_accepted_and_dropped(mpostfix, milter):
    mark = mpostfix.log_mark()
    with connect(mpostfix) as c:
        c.ehlo()
        replies = c.mail_transaction("s@example.test", ["user@example.test"],
                                     simple_message("milter-drop", "DROP-ME-PLEASE\r\n"))
        c.quit()
    assert replies[-1].code == 250, str(replies[-1])
    mpostfix.wait_log(r"milter-discard: END-OF-MESSAGE", mark)
    assert not [m for m in mpostfix.delivered() if b"Subject: milter-drop" in m]


def test_pending_verdict_is_waited_for(mpostfix, milter_factory):
    """The mail verdict comes 300 ms later from another thread: MAIL waits for it."""
    milter_factory({"pending_ms": 300})
    with connect(mpostfix) as c:
        c.ehlo()
        t0 = time.monotonic()
        assert c.cmd("MAIL FROM:<s@example.test>").code == 250
        assert time.monotonic() - t0 >= 0.3
        assert c.cmd("RCPT TO:<user@example.test>").code == 250
        assert c.cmd("DATA").code == 354
        c.send(simple_message("milter-pending") + b".\r\n")
        assert c.read_reply().code == 250
        c.quit()
    mpostfix.wait_delivered(b"Subject: milter-pending")


def test_parallel_sessions(mpostfix, milter_factory):
    """Eight SMTP sessions at once: libmilter gives each its own thread, the chain
    and the plugin's pending verdicts run side by side; every message is tagged, the
    blocked recipient refused in each."""
    milter_factory({"pending_ms": 100})
    errors: list[str] = []

    def one(i: int) -> None:
        try:
            with connect(mpostfix) as c:
                c.ehlo(f"parallel-{i}.example.test")
                replies = c.mail_transaction("s@example.test",
                                             ["blocked@example.test", "user@example.test"],
                                             simple_message(f"milter-parallel-{i}"))
                c.quit()
            got = [r.code for r in replies]
            if got != [250, 550, 250, 354, 250]:
                errors.append(f"{i}: {got}")
        except Exception as e:  # reported below, with the session number
            errors.append(f"{i}: {e!r}")

    threads = [threading.Thread(target=one, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors, errors
    msgs = mpostfix.wait_delivered(b"Subject: milter-parallel-", n=8)
    assert all(m.count(b"X-Policy-Tag: checked by policy\n") == 1 for m in msgs)


def test_late_verdict_gets_the_failure_verdict(mpostfix, milter_factory):
    """A verdict slower than the plugin's timeout: its failure verdict (tempfail) applies."""
    milter_factory({"pending_ms": 1500, "timeout": 0.3})
    with connect(mpostfix) as c:
        c.ehlo()
        r = c.cmd("MAIL FROM:<s@example.test>")
        c.quit()
    assert 400 <= r.code < 500, str(r)
    # The late answer arrives after the host gave up and must be harmless.
    time.sleep(1.5)


def evloop_milter(milter_factory, milter_binary, **options):
    so = milter_binary.parent / "tests" / "plugins" / "test_evloop.so"
    if not so.exists():
        pytest.skip(f"{so} not built")
    return milter_factory(plugins=plugin_section("loop", so, **options))


@pytest.mark.time_limit(90)
def test_event_loop_verdicts_in_milter_mode(mpostfix, milter_factory, milter_binary):
    """Inside Postfix, a plugin that waits on host->event_loop (a socket to a line oracle)
    gets its answers while the libmilter thread runs the connection's own loop: the
    oracle's refusal reaches the client with its text, a slow answer (1 s) is waited for,
    and the plugin is told that this loop ends with the connection."""
    oracle = Oracle(delays={"slow@example.test": 1.0},
                    rejects={"no@example.test": "Not on the oracle's list"})
    try:
        evloop_milter(milter_factory, milter_binary, oracle=oracle.address)
        with connect(mpostfix) as c:
            c.ehlo()
            assert c.cmd("MAIL FROM:<s@example.test>").code == 250
            refused = c.cmd("RCPT TO:<no@example.test>")
            assert refused.code == 550 and refused.lines == ["5.7.1 Not on the oracle's list"], \
                str(refused)
            t0 = time.monotonic()
            assert c.cmd("RCPT TO:<slow@example.test>").code == 250
            assert time.monotonic() - t0 >= 0.9
            assert c.cmd("DATA").code == 354
            c.send(simple_message("milter-evloop") + b".\r\n")
            assert c.read_reply().code == 250
            c.quit()
    finally:
        oracle.close()
    [msg] = mpostfix.wait_delivered(b"Subject: milter-evloop")
    assert b"\nX-Evloop: outlives=no\n" in msg, msg[:600]


def test_event_loop_call_out_at_the_connection_end(mpostfix, milter_factory, milter_binary):
    """The plugin's timer (1.2 s) outlasts its timeout (0.3 s) and the client leaves at
    once: the failure verdict applies, and the connection's end runs the loop until the
    late resolve comes, so that nothing is left on it (clean exit, sanitizer teardown)."""
    m = evloop_milter(milter_factory, milter_binary, delay_ms=1200, timeout=0.3)
    with connect(mpostfix) as c:
        c.ehlo()
        r = c.cmd("MAIL FROM:<s@example.test>")
        c.quit()
    assert 400 <= r.code < 500, str(r)
    time.sleep(1.5)
    assert "still out" not in m.log_text()


def test_reload_on_sighup(mpostfix, milter_factory):
    """SIGHUP: the new chain for new connections; a broken file is refused and the
    old configuration stays in force."""
    m = milter_factory({"reject_rcpt": ["first@example.test"]})
    mark = m.log_mark()
    m.write_config(plugins=render_plugin("policy", policy_plugin_path(m.binary),
                                         {**POLICY, "reject_rcpt": ["second@example.test"]}))
    m.send_signal(signal.SIGHUP)
    m.wait_log(r"reloaded configuration, generation 2", mark)
    with connect(mpostfix) as c:
        c.ehlo()
        assert c.cmd("MAIL FROM:<s@example.test>").code == 250
        assert c.cmd("RCPT TO:<first@example.test>").code == 250
        assert c.cmd("RCPT TO:<second@example.test>").code == 550
        c.quit()

    mark = m.log_mark()
    m.write_config(text=m.config_text() + "milter { socket = \"tcp:1\" }\n")
    m.send_signal(signal.SIGHUP)
    m.wait_log(r"reload refused", mark)
    assert re.search(r"milter\d\.conf:\d+: milter socket \"tcp:1\"", m.log_since(mark)), \
        m.log_since(mark)
    assert m.alive()
    with connect(mpostfix) as c:
        c.ehlo()
        assert c.cmd("MAIL FROM:<s@example.test>").code == 250
        assert c.cmd("RCPT TO:<second@example.test>").code == 550
        c.quit()

    # libmilter's own signal thread would stop the milter on SIGHUP: a burst of
    # them must all reach the reload, none that thread.
    m.write_config(plugins=render_plugin("policy", policy_plugin_path(m.binary),
                                         {**POLICY, "reject_rcpt": ["second@example.test"]}))
    mark = m.log_mark()
    for _ in range(20):
        m.send_signal(signal.SIGHUP)
        time.sleep(0.05)
    wait_until(lambda: len(re.findall(r"reloaded configuration", m.log_since(mark))) == 20, 30,
               "20 reloads")
    assert m.alive() and "stopping" not in m.log_since(mark)
    with connect(mpostfix) as c:
        c.ehlo()
        assert c.cmd("MAIL FROM:<s@example.test>").code == 250
        assert c.cmd("RCPT TO:<second@example.test>").code == 550
        c.quit()


def test_milter_down_default_action(mpostfix, milter_factory):
    """smtpgate-milter not running: Postfix applies milter_default_action, tempfail
    (451 4.7.1) here; with accept, mail flows unfiltered."""
    m = milter_factory()
    assert m.stop() == 0
    with connect(mpostfix) as c:
        c.ehlo()
        r = c.cmd("MAIL FROM:<s@example.test>")
        c.quit()
    assert r.code == 451 and r.lines == ["4.7.1 Service unavailable - try again later"], str(r)
    with SMTPConn(LOOPBACK, mpostfix.accept_port) as c:
        c.ehlo()
        replies = c.mail_transaction("s@example.test", ["blocked@example.test"],
                                     simple_message("milter-down"))
        c.quit()
    assert [x.code for x in replies] == [250, 250, 354, 250], [str(x) for x in replies]
    [msg] = mpostfix.wait_delivered(b"Subject: milter-down")
    assert b"X-Policy-Tag" not in msg


def test_unix_socket(mpostfix, milter_factory):
    """A unix socket: Postfix reaches the milter there; stopped, the socket is gone."""
    m = milter_factory(unix=mpostfix.milter_unix_path)
    # The socket has the process umask; Postfix's smtpd runs as user postfix.
    os.chmod(m.unix_path, 0o666)
    with SMTPConn(LOOPBACK, mpostfix.unix_port) as c:
        c.ehlo()
        replies = c.mail_transaction("s@example.test", ["user@example.test"],
                                     simple_message("milter-unix"))
        c.quit()
    assert replies[-1].code == 250, str(replies[-1])
    [msg] = mpostfix.wait_delivered(b"Subject: milter-unix")
    assert b"X-Policy-Tag: checked by policy" in msg
    assert m.stop() == 0
    assert not m.unix_path.exists()


def test_config_check(milter_binary, workdir):
    """-t: a good file is OK (no upstream needed); a bad socket names file and line."""
    plugin = render_plugin("policy", policy_plugin_path(milter_binary), POLICY)
    good = workdir / "good.conf"
    # -t checks the folders the milter writes to: the test's own.
    good.write_text(f'spool_dir = "{workdir}" quarantine_dir = "{workdir}/q"\n'
                    f'milter {{\n    socket = "unix:{workdir}/m.sock"\n}}\n{plugin}\n')
    r = subprocess.run([str(milter_binary), "-t", "-c", str(good)], capture_output=True,
                       text=True, timeout=30)
    assert r.returncode == 0 and "configuration OK" in r.stdout, r.stdout + r.stderr
    bad = workdir / "bad.conf"
    bad.write_text('hostname = "h.example.test"\nmilter {\n    socket = "inet:99999@127.0.0.1"\n}\n')
    r = subprocess.run([str(milter_binary), "-t", "-c", str(bad)], capture_output=True,
                       text=True, timeout=30)
    assert r.returncode == 1, r.stdout + r.stderr
    assert f"{bad}:3: milter socket \"inet:99999@127.0.0.1\": port must be from 1 to 65535" \
        in r.stderr, r.stderr


# ---- one configuration, two deployment modes ----

# (name, sender, recipients, body): one of each verdict the policy gives.
MESSAGE_SET = [
    ("clean", "s@example.test", ["user@example.test"], "nothing to see\r\n"),
    ("rcpt", "s@example.test", ["blocked@example.test", "user@example.test"], "two rcpts\r\n"),
    ("mail", "bad@example.test", ["user@example.test"], "bad sender\r\n"),
    ("body", "s@example.test", ["user@example.test"], f"{GTUBE}\r\n"),
    ("defer", "s@example.test", ["user@example.test"], "DEFER-ME-PLEASE\r\n"),
    ("drop", "s@example.test", ["user@example.test"], "DROP-ME-PLEASE\r\n"),
    ("hold", "s@example.test", ["user@example.test"], "HOLD-ME-PLEASE\r\n"),
]

# Trace and delivery headers the MTA itself adds.
MTA_HEADERS = {"received", "return-path", "delivered-to", "x-original-to"}


def header_fields(content: bytes) -> list[str]:
    """The header fields of a message, unfolded, "Name: value", any line ending."""
    text = content.replace(b"\r\n", b"\n").decode("utf-8", "replace")
    head = text.split("\n\n", 1)[0]
    fields: list[str] = []
    for line in head.split("\n"):
        if line[:1] in (" ", "\t") and fields:
            fields[-1] += " " + line.strip()
        elif line:
            fields.append(line)
    return fields


def added_headers(received: bytes, sent: bytes) -> list[str]:
    before = set(header_fields(sent))
    return [f for f in header_fields(received)
            if f not in before and f.split(":", 1)[0].strip().lower() not in MTA_HEADERS]


def run_message_set(host: str, port: int, tag: str) -> tuple[dict, dict]:
    """Each message in its own session.  Returns name -> [(code, lines for a refusal)]
    and name -> the content sent."""
    outcomes, sent = {}, {}
    for name, sender, rcpts, body in MESSAGE_SET:
        # With a Date: of its own, so that Postfix adds none.
        content = simple_message(f"compare-{tag}-{name}", body,
                                 "Date: Tue, 01 Dec 2026 08:00:00 +0000\r\n")
        sent[name] = content
        with SMTPConn(host, port) as c:
            c.ehlo()
            replies = c.mail_transaction(sender, rcpts, content)
            c.quit()
        # 2xx/3xx texts are each MTA's own ("queued as ..."); refusals must match exactly.
        outcomes[name] = [(r.code, r.lines if r.code >= 400 else None) for r in replies]
    return outcomes, sent


@pytest.mark.time_limit(120)
def test_proxy_and_milter_give_the_same_verdicts_and_headers(
        mpostfix, milter_factory, gate_factory, recorder: Recorder, milter_binary, workdir):
    plugin_text = render_plugin("policy", policy_plugin_path(milter_binary), POLICY)

    gate: Gate = gate_factory([recorder.address], extra=plugin_text + "\n",
                              quarantine_dir=str(workdir / "quarantine"))
    recorder.wait_idle()
    proxy_outcomes, proxy_sent = run_message_set(*gate.address, "proxy")

    m = milter_factory(plugins=plugin_text)
    mark = mpostfix.log_mark()
    milter_outcomes, milter_sent = run_message_set(LOOPBACK, mpostfix.port, "milter")

    assert proxy_outcomes == milter_outcomes

    # What each MTA received of the messages that went through, and what the
    # chain added to them.
    passed = [n for n, o in milter_outcomes.items()
              if o[-1][0] == 250 and n not in ("drop", "hold")]
    assert passed == ["clean", "rcpt"], milter_outcomes
    recorded = {msg.content.split(b"Subject: compare-proxy-", 1)[1].split(b"\r\n", 1)[0]
                .decode(): msg for msg in recorder.wait_messages(len(passed))}
    assert sorted(recorded) == sorted(passed), sorted(recorded)
    for name in passed:
        [delivered] = mpostfix.wait_delivered(f"Subject: compare-milter-{name}".encode())
        proxy_added = added_headers(recorded[name].content, proxy_sent[name])
        milter_added = added_headers(delivered, milter_sent[name])
        assert proxy_added == milter_added == ["X-Policy-Tag: checked by policy"], \
            (name, proxy_added, milter_added)

    # Discarded and quarantined messages reached neither MTA's delivery.
    assert not [x for x in mpostfix.delivered()
                if b"compare-milter-drop" in x or b"compare-milter-hold" in x]
    held = mpostfix.wait_log(r"(\S+): milter-hold: END-OF-MESSAGE", mark).group(1)
    mpostfix.delete_queued(held)
    assert m.alive()
