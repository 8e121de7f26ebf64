"""One client must not slow the others: SPF checks stuck on a domain whose DNS
never answers wait on the connections' event loops, not on threads.

dnsmasq on loopback answers spf.test and forwards dead.test to a UDP socket
that reads nothing, so every look-up under dead.test waits for the plugin's
whole dns_timeout.  A hundred connections, all from one loopback address,
each start a MAIL FROM with a sender of its own under dead.test, with a work
pool of one thread (plugin_threads = 1): were the checks on the pool, one
would be asked at a time and the rest, and any other client's, would queue.
All hundred must be asked at once (dnsmasq forwards each name), and while
they are stuck a session from another address, with a sender whose SPF
record answers at once, must go through to the upstream in a small fraction
of the DNS timeout.  The bound (a quarter of it) is not a speed figure: a
queue behind the stuck checks would take the whole DNS time.
"""

from __future__ import annotations

import re
import socket
import time

import pytest

from dnsserver import DnsServer, dnsmasq_available
from gate import plugin_dir, plugin_section, run_config_test
from helpers import assert_reply, codes
from netutil import LOOPBACK, free_port
from smtpclient import SMTPConn, simple_message

pytestmark = pytest.mark.skipif(not dnsmasq_available(), reason="dnsmasq not installed")

STUCK = 100
DNS_TIMEOUT = 20.0
STUCK_SOURCE = "127.0.0.2"
HEALTHY_SOURCE = "127.0.0.4"


@pytest.fixture
def silent_udp():
    """A DNS server that never answers: it reads nothing at all."""
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind((LOOPBACK, 0))
    yield s.getsockname()[1]
    s.close()


@pytest.fixture
def dns(workdir, silent_udp):
    d = DnsServer(domains=["spf.test"], log_path=workdir / "dnsmasq.log")
    d.txt("pass.spf.test", "v=spf1 ip4:127.0.0.0/8 -all")
    d.args += [f"--server=/dead.test/{LOOPBACK}#{silent_udp}", "--dns-forward-max=1000"]
    d.start()
    yield d
    d.stop()


def spf_so(smtpgate_binary):
    so = plugin_dir(smtpgate_binary).parent.parent / "plugins" / "spf.so"
    if not so.exists():
        pytest.skip(f"{so} not built")
    return so


def dead_queries(dns_log) -> int:
    """How many of the stuck checks' names dnsmasq has forwarded."""
    text = dns_log.read_text(errors="replace")
    return len(set(re.findall(r"forwarded (d\d+)\.dead\.test", text)))


def test_healthy_session_is_not_queued_behind_stuck_checks(gate_factory, recorder, dns,
                                                            smtpgate_binary, workdir):
    opts = {"nameserver": dns.address, "exempt_networks": [], "dns_timeout": DNS_TIMEOUT,
            "timeout": DNS_TIMEOUT + 10, "helo_check": False}
    gate = gate_factory([recorder.address], max_connections_per_client=STUCK,
                        max_connections=STUCK + 20, plugin_threads=1,
                        extra=plugin_section("spf", spf_so(smtpgate_binary), **opts))
    recorder.wait_idle()
    stuck: list[SMTPConn] = []
    try:
        for i in range(STUCK):
            c = gate.connect(source=STUCK_SOURCE, timeout=60)
            stuck.append(c)
            # Pipelined, unread: no stuck client waits for its own replies.
            c.send(f"EHLO stuck.example\r\nMAIL FROM:<u{i}@d{i}.dead.test>\r\n")
        # Every check is out on the wire at once: none waits for a thread.
        deadline = time.monotonic() + 10
        while dead_queries(workdir / "dnsmasq.log") < STUCK and time.monotonic() < deadline:
            time.sleep(0.05)
        assert dead_queries(workdir / "dnsmasq.log") == STUCK
        start = time.monotonic()
        with gate.connect(source=HEALTHY_SOURCE, timeout=DNS_TIMEOUT * 2) as h:
            h.ehlo("healthy.example")
            replies = h.mail_transaction("a@pass.spf.test", ["r@example.test"],
                                         simple_message("healthy"))
            assert codes(replies) == [250, 250, 354, 250]
            h.quit()
        took = time.monotonic() - start
        assert took < DNS_TIMEOUT / 4, f"healthy session took {took:.1f}s"
        [m] = recorder.wait_messages(1)
        assert b"Received-SPF: pass" in m.content
        # None of the stuck checks has an answer yet: the healthy session did
        # not wait for them, it went past them.
        assert not re.search(r"dead\.test.*(temperror|no verdict)", gate.log_text())
    finally:
        for c in stuck:
            c.close()
    # Stopped with every check still out (their clients gone): the workers'
    # loops run on until each has ended at its DNS deadline, then smtpgate
    # exits cleanly (the teardown's sanitizer check: nothing of them leaked).
    assert gate.stop(timeout=DNS_TIMEOUT + 30) == 0
    log = gate.log_text()
    assert re.search(r"worker \d+: waiting for \d+ plugin calls still out", log), gate.log_tail()
    ended = set(re.findall(r"sender=<u(\d+)@d\d+\.dead\.test> client=\S+ result=temperror", log))
    assert len(ended) == STUCK, gate.log_tail()


def test_timeout_within_dns_timeout(gate_factory, recorder, dns, smtpgate_binary, workdir):
    so = spf_so(smtpgate_binary)
    conf = workdir / "spf.conf"
    conf.write_text(f'listen = {{"{LOOPBACK}:{free_port()}"}}\n'
                    f'upstream main {{ address = "{recorder.address}" }}\n'
                    f'spool_dir = "{workdir}"\nquarantine_dir = "{workdir}/quarantine"\n' +
                    plugin_section("spf", so, nameserver=dns.address, timeout=1, dns_timeout=2))
    r = run_config_test(smtpgate_binary, conf)
    assert r.returncode == 0, r.stderr
    assert re.search(r"spf\.conf:\d+: plugin spf: dns_timeout: warning: 2s is not below the "
                     r"plugin's timeout of 1s", r.stderr), r.stderr

    gate = gate_factory([recorder.address],
                        extra=plugin_section("spf", so, nameserver=dns.address, timeout=1,
                                             dns_timeout=2, exempt_networks=[],
                                             on_temperror="reject"))
    recorder.wait_idle()
    mark = len(gate.log_text())
    with gate.connect() as c:
        c.ehlo("client.example")
        r = c.cmd("MAIL FROM:<u@dead.test>")
        assert_reply(r, 451)
        m = gate.wait_log(r'plugin spf: .*no verdict within 1\.000s: using tempfail '
                          r'\(the client gets "(451 [^"]*)"\)', mark)
        assert m.group(1).split("\n")[0].startswith(f"{r.code} ")
        # The check ends later in temperror, refused by policy with 550: that
        # line must not read as the client's reply.
        late = gate.wait_log(r"plugin spf: .*550 5\.7\.24", mark, timeout=10)
        assert "after its timeout, not applied" in late.group(0), late.group(0)
        c.quit()
