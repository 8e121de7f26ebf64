"""The SPF plugin inside a running smtpgate: a real client, a real DNS server on loopback
(dnsmasq) serving the test zones, the recording upstream.  The client connects from
127.0.0.1, so the plugin's default exemption of loopback is turned off here."""

from __future__ import annotations

import re
import time

import pytest

from dnsserver import DnsServer, dnsmasq_available
from gate import plugin_dir, plugin_section, run_config_test
from helpers import assert_no_upstream_connection, assert_reply, codes, upstream_baseline
from netutil import LOOPBACK, free_port
from smtpclient import simple_message

pytestmark = pytest.mark.skipif(not dnsmasq_available(), reason="dnsmasq not installed")


@pytest.fixture
def dns(workdir):
    d = DnsServer(domains=["spf.test"], log_path=workdir / "dnsmasq.log")
    d.txt("pass.spf.test", "v=spf1 ip4:127.0.0.1 -all")
    d.txt("fail.spf.test", "v=spf1 -all exp=why.spf.test")
    d.txt("why.spf.test", "%{i} may not send for %{d}")
    d.txt("soft.spf.test", "v=spf1 ~all")
    d.txt("helo.spf.test", "v=spf1 -all")
    d.start()
    yield d
    d.stop()


def spf_gate(gate_factory, recorder, dns, smtpgate_binary, **options):
    so = plugin_dir(smtpgate_binary).parent.parent / "plugins" / "spf.so"
    if not so.exists():
        pytest.skip(f"{so} not built")
    opts = {"nameserver": dns.address, "exempt_networks": [], "authserv_id": "mx.example.test",
            "dns_timeout": 2, "timeout": 10, **options}
    g = gate_factory([recorder.address], extra=plugin_section("spf", so, **opts))
    recorder.wait_idle()
    return g


def test_pass_delivered_with_headers(gate_factory, recorder, dns, smtpgate_binary):
    gate = spf_gate(gate_factory, recorder, dns, smtpgate_binary)
    forged = "Authentication-Results: mx.example.test; spf=pass smtp.mailfrom=x@forged.test\r\n"
    with gate.connect() as c:
        c.ehlo("client.spf.test")
        replies = c.mail_transaction("a@pass.spf.test", ["r@example.test"],
                                     simple_message("spf pass", extra_headers=forged))
        assert codes(replies) == [250, 250, 354, 250]
        c.quit()
    [m] = recorder.wait_messages(1)
    head = m.content.split(b"\r\n\r\n", 1)[0].decode()
    assert re.search(r"^Received-SPF: pass ", head, re.M), head
    assert re.search(r"^Authentication-Results: mx\.example\.test;\s+spf=pass"
                     r"\s*smtp\.mailfrom=(a@)?pass\.spf\.test", head, re.M), head
    assert "forged.test" not in head, "a forged Authentication-Results with our id survived"
    assert re.search(r"filters=spf:\d+\.\dms", gate.log_text())


def test_fail_refused_at_mail_with_explanation(gate_factory, recorder, dns, smtpgate_binary):
    gate = spf_gate(gate_factory, recorder, dns, smtpgate_binary)
    base = upstream_baseline(recorder)
    with gate.connect() as c:
        c.ehlo("client.spf.test")
        r = c.cmd("MAIL FROM:<a@fail.spf.test>")
        assert_reply(r, 550, "5.7.23")
        assert "127.0.0.1 may not send for fail.spf.test" in r.text, r
        c.quit()
    assert_no_upstream_connection(recorder, base)


def test_softfail_is_tagged_only(gate_factory, recorder, dns, smtpgate_binary):
    gate = spf_gate(gate_factory, recorder, dns, smtpgate_binary)
    with gate.connect() as c:
        c.ehlo("client.spf.test")
        assert codes(c.mail_transaction("a@soft.spf.test", ["r@example.test"],
                                        simple_message("soft")))[-1] == 250
        c.quit()
    [m] = recorder.wait_messages(1)
    assert re.search(rb"^Received-SPF: softfail ", m.content, re.M)


def test_null_sender_judged_by_helo(gate_factory, recorder, dns, smtpgate_binary):
    gate = spf_gate(gate_factory, recorder, dns, smtpgate_binary)
    with gate.connect() as c:
        c.ehlo("helo.spf.test")
        assert_reply(c.cmd("MAIL FROM:<>"), 550, "5.7.23")
        c.quit()


def test_helo_check_on_the_loop(gate_factory, recorder, dns, smtpgate_binary):
    """helo_check: the HELO identity checked at EHLO (on the connection's loop),
    its result kept for the connection: a failing HELO refuses a passing MAIL
    FROM (the stronger action wins), a passing one adds its own Received-SPF."""
    gate = spf_gate(gate_factory, recorder, dns, smtpgate_binary, helo_check=True)
    base = upstream_baseline(recorder)
    with gate.connect() as c:
        assert c.ehlo("helo.spf.test").code == 250
        r = c.cmd("MAIL FROM:<a@pass.spf.test>")
        assert_reply(r, 550, "5.7.23")
        assert "postmaster@helo.spf.test" in r.text, r
        c.quit()
    assert_no_upstream_connection(recorder, base)
    with gate.connect() as c:
        c.ehlo("pass.spf.test")
        replies = c.mail_transaction("a@pass.spf.test", ["r@example.test"],
                                     simple_message("helo checked"))
        assert codes(replies) == [250, 250, 354, 250]
        c.quit()
    [m] = recorder.wait_messages(1)
    head = m.content.split(b"\r\n\r\n", 1)[0].decode()
    assert len(re.findall(r"^Received-SPF: pass ", head, re.M)) == 2, head
    assert "identity=helo" in head and "identity=mailfrom" in head, head
    log = gate.log_text()
    assert re.search(r"spf: identity=helo sender=<postmaster@helo\.spf\.test> .*result=fail", log)
    assert re.search(r"spf: identity=helo sender=<postmaster@pass\.spf\.test> .*result=pass", log)


def test_dns_down_is_451_within_the_bound(gate_factory, recorder, dns, smtpgate_binary):
    gate = spf_gate(gate_factory, recorder, dns, smtpgate_binary, dns_timeout=1.5)
    dns.stop()
    with gate.connect() as c:
        c.ehlo("client.spf.test")
        t0 = time.monotonic()
        r = c.cmd("MAIL FROM:<a@pass.spf.test>")
        elapsed = time.monotonic() - t0
        assert_reply(r, 451, "4.7.24")
        assert elapsed < 4, f"temperror took {elapsed:.1f}s with dns_timeout = 1.5"
        c.quit()


def test_decide_at_rcpt_lets_postmaster_through(gate_factory, recorder, dns, smtpgate_binary):
    gate = spf_gate(gate_factory, recorder, dns, smtpgate_binary, decide_at="rcpt")
    with gate.connect() as c:
        c.ehlo("client.spf.test")
        assert c.cmd("MAIL FROM:<a@fail.spf.test>").code == 250
        assert_reply(c.cmd("RCPT TO:<user@example.test>"), 550, "5.7.23")
        assert c.cmd("RCPT TO:<postmaster@example.test>").code == 250
        c.quit()


def test_declared_ranges_refused_by_the_host(smtpgate_binary, recorder, workdir):
    """dns_timeout and dns_cache_bits carry their ranges in the plugin's option table; the host
    refuses a value outside them with the file, line and key, before the plugin's init."""
    so = plugin_dir(smtpgate_binary).parent.parent / "plugins" / "spf.so"
    if not so.exists():
        pytest.skip(f"{so} not built")
    for key, value, want in [("dns_cache_bits", 17, r"is 17; it must be from 0 to 16"),
                             ("dns_timeout", "0", r"is 0; it must be from 0\.1 to 120"),
                             ("dns_timeout", "121", r"is 121; it must be from 0\.1 to 120")]:
        conf = workdir / "spf.conf"
        conf.write_text(f'listen = {{"{LOOPBACK}:{free_port()}"}}\n'
                        f'upstream main {{ address = "{recorder.address}" }}\n' +
                        plugin_section("spf", so, **{key: value}))
        r = run_config_test(smtpgate_binary, conf)
        assert r.returncode != 0, (key, value)
        assert re.search(rf"spf\.conf:5: plugin spf: '{key}' {want}", r.stderr), r.stderr
