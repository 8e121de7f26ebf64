"""The dnsbl plugin inside a running smtpgate, against real rbldnsd zones on loopback:
an IPv4 and IPv6 blocklist (bl.test), an allowlist (wl.test), an RHSBL (dbl.test), and a
zone routed to a nameserver that never answers (void.test).  Clients connect from
addresses of 127.0.0.0/8; an IPv6 client comes through a PROXY v1 header.

Symbols from the SPF plugin (dnsmasq serving the SPF records), the dnsbl plugin and the
rules plugin meet in one threshold decision at the end."""

from __future__ import annotations

import json
import re
import signal
import socket
import threading
import time
import urllib.request

import pytest

from dnsserver import DnsServer, dnsmasq_available
from edge import edge_gate_factory  # noqa: F401
from gate import plugin_dir, plugin_section
from helpers import assert_no_upstream_connection, assert_reply, codes, upstream_baseline
from netutil import LOOPBACK, free_port, wait_until
from rbldnsd import BlackHole, Rbldnsd, rbldnsd_available
from smtpclient import SMTPConn, simple_message

pytestmark = pytest.mark.skipif(not rbldnsd_available(), reason="rbldnsd not installed")

SITES = ("bl.test=127.0.0.[2..3]*3, bl.test=127.0.0.4*1, "
         "wl.test=127.0.[0..255].[1..3]*-2")


@pytest.fixture(scope="module")
def rbl(tmp_path_factory):
    r = Rbldnsd(tmp_path_factory.mktemp("rbl"))
    # 127.0.0.10 listed (answer 127.0.0.2); .11 answers 127.0.0.4 (the weight-1 entry);
    # .12 answers 127.0.0.9 (no filter takes it); .13 listed and allowlisted;
    # .14 for the cache test; .15 listed for the SPF/rules combination.
    r.zone("bl.test", "ip4set", ":127.0.0.2:Listed in bl.test\n127.0.0.10\n127.0.0.13\n"
           "127.0.0.14\n127.0.0.15\n127.0.0.11 :127.0.0.4:\n127.0.0.12 :127.0.0.9:\n")
    r.zone("bl.test", "ip6trie", ":127.0.0.2:Listed\n2001:db8:bad::/48\n")
    # .20 allowlisted (127.0.5.2 passes the filter); .21 answers 127.0.5.9, which does not
    r.zone("wl.test", "ip4set", ":127.0.5.2:Allowed\n127.0.0.13\n127.0.0.20\n"
           "127.0.0.21 :127.0.5.9:\n")
    r.zone("dbl.test", "dnset", ":127.0.1.2:Domain listed\nspam.test\n*.spamhelo.test\n")
    r.start()
    yield r
    r.stop()


@pytest.fixture(scope="module")
def blackhole():
    b = BlackHole()
    yield b
    b.close()


def dnsbl_so(binary):
    so = plugin_dir(binary).parent.parent / "plugins" / "dnsbl.so"
    if not so.exists():
        pytest.skip(f"{so} not built")
    return so


def dnsbl_section(binary, rbl, name="dnsbl", **options):
    opts = {"sites": SITES, "nameservers": [rbl.address], "threshold": 3,
            "allowlist_threshold": -1, "rhsbl_helo_sites": "dbl.test*3",
            "rhsbl_sender_sites": "dbl.test*3", "dns_timeout": 3, "timeout": 10, **options}
    return plugin_section(name, dnsbl_so(binary), **opts)


def start(gate_factory, recorder, extra, **settings):
    g = gate_factory([recorder.address], extra=extra, **settings)
    recorder.wait_idle()
    return g


def metrics(port: int) -> str:
    return urllib.request.urlopen(f"http://{LOOPBACK}:{port}/metrics", timeout=10).read().decode()


def event(text: str, name: str, plugin: str = "dnsbl") -> int:
    m = re.search(r'^smtpgate_plugin_events_total\{plugin="%s",event="%s"\} (\d+)$'
                  % (plugin, name), text, re.M)
    return int(m.group(1)) if m else 0


def tx_line(gate, mark=0):
    line = wait_until(lambda: next((l for l in gate.log_since(mark).splitlines()
                                    if ": tx from=" in l), None), 15, "a tx log line")
    return line


# ---- client lists ----

def test_listed_client_refused_at_the_greeting(gate_factory, recorder, rbl, smtpgate_binary):
    port = free_port()
    gate = start(gate_factory, recorder, dnsbl_section(smtpgate_binary, rbl),
                 metrics_listen=f"{LOOPBACK}:{port}")
    base = upstream_baseline(recorder)
    with gate.connect(source="127.0.0.10") as c:
        assert c.greeting.first_line == ("554 5.7.1 Service unavailable; client [127.0.0.10] "
                                         "blocked using bl.test")
        assert_reply(c.cmd("HELO client.test"), 503)
        c.quit()
    assert_no_upstream_connection(recorder, base)
    gate.wait_log(r"plugin dnsbl: dnsbl: client \[127\.0\.0\.10\] listed: score=3 threshold=3 "
                  r"listed=bl\.test\(3\)$")
    text = metrics(port)
    assert event(text, "listed") == 1
    assert event(text, "queries") == 2  # bl.test once for both its entries, wl.test
    assert event(text, "timeouts") == 0


def test_reply_filters_and_weights(gate_factory, recorder, rbl, smtpgate_binary):
    """.11 answers 127.0.0.4: only the weight-1 entry's filter takes it (1 < 3: passes, with
    its symbol); .12 answers 127.0.0.9, which no filter takes; .13 is on both lists:
    3 - 2 = 1, below the threshold."""
    gate = start(gate_factory, recorder, dnsbl_section(smtpgate_binary, rbl))
    for source, symbols in (("127.0.0.11", "DNSBL_BL_TEST(1.0) score=1.0"),
                            ("127.0.0.12", None),
                            ("127.0.0.13", "DNSBL_BL_TEST(3.0),DNSBL_WL_TEST(-2.0) score=1.0")):
        mark = gate.log_mark()
        with gate.connect(source=source) as c:
            assert c.greeting.code == 220, (source, c.greeting)
            c.ehlo("client.test")
            assert codes(c.mail_transaction("a@ok.test", ["r@example.test"],
                                            simple_message("hi")))[-1] == 250
            c.quit()
        line = tx_line(gate, mark)
        if symbols is None:
            assert " symbols=" not in line, line
        else:
            assert f" symbols={symbols} " in line, line


def test_allowlisted_client_skips_the_rhsbl_checks(gate_factory, recorder, rbl, smtpgate_binary):
    port = free_port()
    gate = start(gate_factory, recorder, dnsbl_section(smtpgate_binary, rbl),
                 metrics_listen=f"{LOOPBACK}:{port}")
    # not allowlisted (.21's answer fails wl.test's filter): a listed HELO name is refused
    with gate.connect(source="127.0.0.21") as c:
        assert c.greeting.code == 220
        r = c.cmd("EHLO x.spamhelo.test")
        assert r.first_line == ("554 5.7.1 Service unavailable; helo name x.spamhelo.test "
                                "blocked using dbl.test")
        c.quit()
    # allowlisted (.20, score -2 <= -1): the same HELO and a listed sender pass
    mark = gate.log_mark()
    with gate.connect(source="127.0.0.20") as c:
        assert c.greeting.code == 220
        assert c.ehlo("x.spamhelo.test").code == 250
        assert codes(c.mail_transaction("a@spam.test", ["r@example.test"],
                                        simple_message("allowlisted")))[-1] == 250
        c.quit()
    line = tx_line(gate, mark)
    assert " symbols=DNSBL_WL_TEST(-2.0),DNSBL_ALLOWLISTED(0.0) score=-2.0 " in line, line
    text = metrics(port)
    assert event(text, "allowlisted") == 1
    assert event(text, "listed") == 1  # the HELO name of .21


def test_rhsbl_sender_refused_at_mail(gate_factory, recorder, rbl, smtpgate_binary):
    gate = start(gate_factory, recorder, dnsbl_section(smtpgate_binary, rbl))
    with gate.connect(source="127.0.0.30") as c:
        c.ehlo("client.test")
        r = c.cmd("MAIL FROM:<someone@Spam.Test>")
        assert r.first_line == ("554 5.7.1 Service unavailable; sender domain Spam.Test "
                                "blocked using dbl.test")
        assert c.cmd("MAIL FROM:<someone@ok.test>").code == 250
        assert c.cmd("MAIL FROM:<>").code == 503  # nested MAIL: the session goes on
        c.quit()


def test_ipv6_client_in_nibble_form(edge_gate_factory, recorder, rbl, smtpgate_binary):
    """The client's address comes from a PROXY v1 header (trusted from 127.0.0.1)."""
    gate = edge_gate_factory([recorder.address], extra=dnsbl_section(smtpgate_binary, rbl),
                             listeners={"edge": {"proxy_protocol": "v1",
                                                 "proxy_trusted": ["127.0.0.1"]}})
    recorder.wait_idle()
    for client, want in (("2001:db8:bad::7", "554 5.7.1 Service unavailable; client "
                          "[2001:db8:bad::7] blocked using bl.test"),
                         ("2001:db8:900d::7", None)):
        with socket.create_connection(gate.addr("edge"), timeout=20) as s:
            s.sendall(f"PROXY TCP6 {client} ::1 40000 25\r\n".encode())
            f = s.makefile("rb")
            greeting = f.readline().decode().rstrip("\r\n")
            if want:
                assert greeting == want
            else:
                assert greeting.startswith("220 "), greeting
            s.sendall(b"QUIT\r\n")
    assert rbl.queries("7.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.d.a.b.0.8.b.d.0.1.0.0.2.bl.test") >= 1


# ---- the deadline and the cache ----

def test_zone_that_never_answers(gate_factory, recorder, rbl, blackhole, smtpgate_binary):
    """void.test's nameserver never answers: the session that asks it waits the deadline
    (2 s) and goes on as not listed; a parallel session on the same single worker, which
    does not ask it, completes in a small fraction of that time."""
    deadline = 2.0
    port = free_port()
    extra = dnsbl_section(smtpgate_binary, rbl, rhsbl_sender_sites="dbl.test*3, void.test",
                          site_nameservers=[f"void.test={blackhole.address}"],
                          dns_timeout=deadline)
    gate = start(gate_factory, recorder, extra, workers=1, metrics_listen=f"{LOOPBACK}:{port}")
    slow = gate.connect(source="127.0.0.31")
    slow.ehlo("client.test")
    result = {}

    def slow_mail():
        t0 = time.monotonic()
        result["reply"] = slow.cmd("MAIL FROM:<a@ok.test>")
        result["elapsed"] = time.monotonic() - t0

    t = threading.Thread(target=slow_mail)
    t.start()
    time.sleep(0.3)  # the slow session is waiting on void.test now
    t0 = time.monotonic()
    with gate.connect(source="127.0.0.32") as c:
        c.ehlo("client.test")
        assert codes(c.mail_transaction("", ["r@example.test"], simple_message("fast")))[-1] == 250
        c.quit()
    fast = time.monotonic() - t0
    t.join(20)
    assert not t.is_alive()
    assert result["reply"].code == 250, result["reply"]
    assert deadline - 0.05 <= result["elapsed"] < deadline + 1.5, result["elapsed"]
    assert fast < deadline / 4, f"a parallel session took {fast:.2f}s while another waited"
    slow.quit()
    slow.close()
    gate.wait_log(r"plugin dnsbl: dnsbl: void\.test did not answer for ok\.test\.void\.test "
                  r"within 2\.000s: counted as not listed")
    assert event(metrics(port), "timeouts") == 1


def test_cache_hit_asks_rbldnsd_once(gate_factory, recorder, rbl, smtpgate_binary):
    port = free_port()
    gate = start(gate_factory, recorder, dnsbl_section(smtpgate_binary, rbl, action="score"),
                 metrics_listen=f"{LOOPBACK}:{port}")
    name = "14.0.0.127.bl.test"
    before = rbl.queries(name)
    for _ in range(2):
        mark = gate.log_mark()
        with gate.connect(source="127.0.0.14") as c:
            assert c.greeting.code == 220  # action = score: listed, not refused
            c.ehlo("client.test")
            assert codes(c.mail_transaction("a@ok.test", ["r@example.test"],
                                            simple_message("cached")))[-1] == 250
            c.quit()
        assert " symbols=DNSBL_BL_TEST(3.0) score=3.0 " in tx_line(gate, mark)
    wait_until(lambda: rbl.queries(name) >= before + 1, 5, "rbldnsd's log line")
    time.sleep(0.2)
    assert rbl.queries(name) == before + 1
    text = metrics(port)
    # the first session asks bl.test, wl.test and dbl.test for the HELO name and the
    # sender's domain; the second one finds all four in the cache
    assert event(text, "queries") == 4
    assert event(text, "cache_hits") == 4
    assert event(text, "listed") == 2


def test_cache_carried_over_a_reload(gate_factory, recorder, rbl, smtpgate_binary):
    """SIGHUP loads a new instance; it shares the old one's answers (same cache_size)."""
    gate = start(gate_factory, recorder, dnsbl_section(smtpgate_binary, rbl, action="score"))
    name = "13.0.0.127.bl.test"
    before = rbl.queries(name)
    for i in range(2):
        with gate.connect(source="127.0.0.13") as c:
            assert c.greeting.code == 220
            c.quit()
        if i == 0:
            mark = gate.log_mark()
            gate.send_signal(signal.SIGHUP)
            gate.wait_log(r"reloaded configuration, generation 2", mark)
    time.sleep(0.2)
    assert rbl.queries(name) == before + 1


def test_verdict_log_has_symbols(gate_factory, recorder, rbl, smtpgate_binary, workdir):
    vlog = workdir / "verdicts.jsonl"
    gate = start(gate_factory, recorder, dnsbl_section(smtpgate_binary, rbl, action="score"),
                 verdict_log=str(vlog))
    with gate.connect(source="127.0.0.13") as c:
        c.ehlo("client.test")
        assert codes(c.mail_transaction("a@ok.test", ["r@example.test"],
                                        simple_message("json")))[-1] == 250
        c.quit()
    wait_until(lambda: vlog.exists() and vlog.read_text().strip(), 10, "a verdict log line")
    rec = json.loads(vlog.read_text().splitlines()[0])
    assert rec["symbols"] == {"DNSBL_BL_TEST": 3, "DNSBL_WL_TEST": -2}
    assert rec["score"] == 1


# ---- one score: SPF, dnsbl and rules ----

@pytest.fixture
def spf_dns(workdir):
    if not dnsmasq_available():
        pytest.skip("dnsmasq not installed")
    d = DnsServer(domains=["spf.test"], log_path=workdir / "dnsmasq.log")
    d.txt("soft.spf.test", "v=spf1 ~all")
    d.start()
    yield d
    d.stop()


def combined(smtpgate_binary, rbl, spf_dns, workdir, rules_text):
    so_dir = plugin_dir(smtpgate_binary).parent.parent / "plugins"
    for so in ("spf.so", "rules.so"):
        if not (so_dir / so).exists():
            pytest.skip(f"{so} not built")
    rules = workdir / "combined.rules"
    rules.write_text(rules_text)
    return (dnsbl_section(smtpgate_binary, rbl, action="score")
            + plugin_section("spf", so_dir / "spf.so", nameserver=spf_dns.address,
                             exempt_networks=[], authserv_id="mx.example.test", dns_timeout=2,
                             timeout=10)
            + plugin_section("rules", so_dir / "rules.so", files=[str(rules)], timeout=10))


THRESHOLD_RULES = ('rule SUBJ_OFFER header Subject /offer/ score 1.5\n'
                   'threshold tag 2 add-header "X-Spam-Flag: YES"\n'
                   'threshold reject 5 "550 5.7.1 Message scored as spam"\n')


def test_symbols_and_rules_in_one_threshold(gate_factory, recorder, rbl, spf_dns,
                                            smtpgate_binary, workdir):
    """SPF softfail (1) + bl.test (3) + SUBJ_OFFER (1.5) = 5.5 >= 5: refused at the end of
    data; from an unlisted client the same message scores 2.5 and is delivered tagged, the
    report naming every plugin's symbol."""
    gate = start(gate_factory, recorder,
                 combined(smtpgate_binary, rbl, spf_dns, workdir, THRESHOLD_RULES))
    mark = gate.log_mark()
    with gate.connect(source="127.0.0.15") as c:
        c.ehlo("client.test")
        replies = c.mail_transaction("a@soft.spf.test", ["r@example.test"],
                                     simple_message("special offer"))
        assert codes(replies) == [250, 250, 354, 550]
        assert replies[-1].first_line == "550 5.7.1 Message scored as spam"
        c.quit()
    line = tx_line(gate, mark)
    assert " decided=rules verdict=reject " in line, line
    assert (" symbols=DNSBL_BL_TEST(3.0),SPF_SOFTFAIL(1.0),SUBJ_OFFER(1.5) score=5.5 "
            in line), line
    mark = gate.log_mark()
    with gate.connect(source="127.0.0.33") as c:
        c.ehlo("client.test")
        assert codes(c.mail_transaction("a@soft.spf.test", ["r@example.test"],
                                        simple_message("special offer")))[-1] == 250
        c.quit()
    [m] = recorder.wait_messages(1)
    head = m.content.split(b"\r\n\r\n", 1)[0].decode()
    assert "X-Spam-Status: Yes, score=2.5 required=2.0 tests=SPF_SOFTFAIL,SUBJ_OFFER\r\n" in head, head
    assert "X-Spam-Score: 2.5\r\n" in head
    assert "X-Spam-Flag: YES\r\n" in head
    assert " symbols=SPF_SOFTFAIL(1.0),SUBJ_OFFER(1.5) score=2.5 " in tx_line(gate, mark)


def test_one_line_rule_on_symbols(gate_factory, recorder, rbl, spf_dns, smtpgate_binary,
                                  workdir):
    """SPF failed softly and the client is on a blocklist: refused at MAIL by one rule."""
    rules = ('rule LISTED_SOFTFAIL meta symbol(SPF_SOFTFAIL) && symbol(DNSBL_BL_TEST) '
             'reject "550 5.7.1 Listed client and SPF softfail"\n')
    gate = start(gate_factory, recorder, combined(smtpgate_binary, rbl, spf_dns, workdir, rules))
    with gate.connect(source="127.0.0.15") as c:
        c.ehlo("client.test")
        assert c.cmd("MAIL FROM:<a@soft.spf.test>").first_line == \
            "550 5.7.1 Listed client and SPF softfail"
        c.quit()
    with gate.connect(source="127.0.0.34") as c:
        c.ehlo("client.test")
        assert c.cmd("MAIL FROM:<a@soft.spf.test>").code == 250
        c.quit()


# ---- early talkers ----

def early_gate(gate_factory, recorder, rbl, smtpgate_binary, port):
    return start(gate_factory, recorder, dnsbl_section(smtpgate_binary, rbl), greet_delay=1,
                 metrics_listen=f"{LOOPBACK}:{port}")


def early_talkers(port: int) -> int:
    m = re.search(r"^smtpgate_early_talkers_total (\d+)$", metrics(port), re.M)
    return int(m.group(1)) if m else -1


def test_early_talker_refused(gate_factory, recorder, rbl, smtpgate_binary):
    """The client speaks after "220-" and before the final "220 ": refused and counted."""
    port = free_port()
    gate = early_gate(gate_factory, recorder, rbl, smtpgate_binary, port)
    base = upstream_baseline(recorder)
    with socket.create_connection(gate.address, timeout=20,
                                  source_address=("127.0.0.40", 0)) as s:
        f = s.makefile("rb")
        assert f.readline() == b"220-smtpgate.example.test ESMTP\r\n"
        s.sendall(b"EHLO bot.test\r\nMAIL FROM:<a@bot.test>\r\n")
        assert f.readline() == b"554 5.5.1 Error: SMTP protocol violation\r\n"
        assert f.readline() == b""  # disconnected
    assert early_talkers(port) == 1
    gate.wait_log(r"early talker 127\.0\.0\.40: 3\d octets before the greeting ended: refused")
    assert_no_upstream_connection(recorder, base)


def test_talker_at_once_refused(gate_factory, recorder, rbl, smtpgate_binary):
    """A client that talks the moment it connects, whether its octets come before "220-"
    (while the connect stage asks the lists) or after it: never greeted."""
    port = free_port()
    gate = early_gate(gate_factory, recorder, rbl, smtpgate_binary, port)
    with socket.create_connection(gate.address, timeout=20,
                                  source_address=("127.0.0.41", 0)) as s:
        s.sendall(b"EHLO bot.test\r\n")
        data = b""
        while not data.endswith(b"\r\n") or b"554" not in data:
            chunk = s.recv(4096)
            if not chunk:
                break
            data += chunk
        assert data.endswith(b"554 5.5.1 Error: SMTP protocol violation\r\n"), data
        assert b"220 " not in data, data
    assert early_talkers(port) == 1


def test_patient_client_passes(gate_factory, recorder, rbl, smtpgate_binary):
    port = free_port()
    gate = early_gate(gate_factory, recorder, rbl, smtpgate_binary, port)
    t0 = time.monotonic()
    with gate.connect(source="127.0.0.42") as c:
        waited = time.monotonic() - t0
        assert c.greeting.code == 220
        assert c.greeting.lines == ["smtpgate.example.test ESMTP", "smtpgate.example.test ESMTP"]
        assert waited >= 0.95, waited  # the final line came after greet_delay
        c.ehlo("client.test")
        assert codes(c.mail_transaction("a@ok.test", ["r@example.test"],
                                        simple_message("patient")))[-1] == 250
        c.quit()
    assert early_talkers(port) == 0


def test_allowlisted_client_not_delayed(gate_factory, recorder, rbl, smtpgate_binary):
    """127.0.0.20 is on wl.test (score -2 <= -1): DNSBL_ALLOWLISTED, a one-line greeting at
    once, and talking early costs it nothing."""
    port = free_port()
    gate = early_gate(gate_factory, recorder, rbl, smtpgate_binary, port)
    with gate.connect(source="127.0.0.20") as c:
        assert c.greeting.code == 220
        assert c.greeting.lines == ["smtpgate.example.test ESMTP"]
        c.send("EHLO client.test\r\nQUIT\r\n")
        assert c.read_reply().code == 250
        assert c.read_reply().code == 221
    assert early_talkers(port) == 0


def test_listener_without_delay(edge_gate_factory, recorder, rbl, smtpgate_binary):
    """greet_delay = 0 in a listener section (a submission port) beats the global 1 s."""
    gate = edge_gate_factory([recorder.address], extra=dnsbl_section(smtpgate_binary, rbl),
                             greet_delay=1, listeners={"submission": {"greet_delay": 0}})
    recorder.wait_idle()
    with SMTPConn(*gate.addr("submission"), source="127.0.0.43") as c:
        assert c.greeting.lines == ["smtpgate.example.test ESMTP"]
        c.quit()
    with gate.connect(source="127.0.0.43") as c:  # the plain listen address: delayed
        assert c.greeting.lines == ["smtpgate.example.test ESMTP", "smtpgate.example.test ESMTP"]
        c.quit()


def test_scored_rhsbl_symbols_not_doubled(gate_factory, recorder, rbl, smtpgate_binary):
    """action = score: a listed HELO given twice and a listed sender are one symbol each, with
    the site's weight; a second transaction with a clean sender drops the sender's."""
    gate = start(gate_factory, recorder, dnsbl_section(smtpgate_binary, rbl, action="score"))
    mark = gate.log_mark()
    with gate.connect(source="127.0.0.35") as c:
        assert c.ehlo("x.spamhelo.test").code == 250
        assert c.ehlo("x.spamhelo.test").code == 250
        assert codes(c.mail_transaction("a@spam.test", ["r@example.test"],
                                        simple_message("one")))[-1] == 250
        assert codes(c.mail_transaction("a@ok.test", ["r@example.test"],
                                        simple_message("two")))[-1] == 250
        c.quit()
    lines = wait_until(lambda: (lambda ls: ls if len(ls) >= 2 else None)(
        [l for l in gate.log_since(mark).splitlines() if ": tx from=" in l]), 15, "2 tx lines")
    assert " symbols=RHSBL_HELO_DBL_TEST(3.0),RHSBL_SENDER_DBL_TEST(3.0) score=6.0 " in lines[0]
    assert " symbols=RHSBL_HELO_DBL_TEST(3.0) score=3.0 " in lines[1]
