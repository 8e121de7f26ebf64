"""The client's verified name: forward-confirmed reverse DNS against a real DNS server on
loopback (dnsmasq), given to plugins, to the logs and to the upstream as XCLIENT NAME."""

from __future__ import annotations

import re
import time

import pytest

from dnsserver import DnsServer, dnsmasq_available
from gate import plugin_dir, plugin_section
from helpers import codes
from smtpclient import simple_message

pytestmark = pytest.mark.skipif(not dnsmasq_available(), reason="dnsmasq not installed")


@pytest.fixture
def dns(workdir):
    d = DnsServer(domains=["name.test", "127.in-addr.arpa"], log_path=workdir / "dnsmasq.log")
    d.host("client.name.test", "127.0.0.1")          # A and PTR: a name that leads back
    d.args.append("--ptr-record=2.0.0.127.in-addr.arpa,liar.name.test")
    d.host("liar.name.test", "127.0.0.9")            # ... and one that does not
    d.start()
    yield d
    d.stop()


def start(gate_factory, recorder, dns, smtpgate_binary, **settings):
    extra = plugin_section("names", plugin_dir(smtpgate_binary) / "test_policy.so",
                           name_header="X-Client-Name")
    g = gate_factory([recorder.address], extra=extra, client_name_lookup=True,
                     dns_nameserver=dns.address, **settings)
    recorder.wait_idle()
    return g


def send(gate, source=None):
    with gate.connect(source=source) as c:
        c.ehlo()
        assert codes(c.mail_transaction("s@example.test", ["r@example.test"],
                                        simple_message("name")))[-1] == 250
        c.quit()


def test_verified_name_reaches_plugins_logs_and_upstream(gate_factory, recorder, dns,
                                                         smtpgate_binary):
    gate = start(gate_factory, recorder, dns, smtpgate_binary)
    send(gate)
    [m] = recorder.wait_messages(1)
    assert m.xclient.get("NAME") == "client.name.test", m.xclient
    assert b"X-Client-Name: client.name.test\r\n" in m.content
    gate.wait_log(r"disconnect from client\.name\.test\[127\.0\.0\.1\]")


def test_name_that_does_not_lead_back_is_unavailable(gate_factory, recorder, dns,
                                                     smtpgate_binary):
    gate = start(gate_factory, recorder, dns, smtpgate_binary)
    send(gate, source="127.0.0.2")
    [m] = recorder.wait_messages(1)
    assert m.xclient.get("NAME") == "[UNAVAILABLE]", m.xclient
    assert b"X-Client-Name: -\r\n" in m.content
    gate.wait_log(r"disconnect from unknown\[127\.0\.0\.2\]")


def test_dns_down_is_tempunavail_within_the_bound(gate_factory, recorder, dns, smtpgate_binary):
    gate = start(gate_factory, recorder, dns, smtpgate_binary, dns_timeout=1)
    dns.stop()
    t0 = time.monotonic()
    with gate.connect() as c:
        greeted = time.monotonic() - t0
        c.ehlo()
        assert codes(c.mail_transaction("s@example.test", ["r@example.test"],
                                        simple_message("down")))[-1] == 250
        c.quit()
    assert greeted < 4.5, f"greeting took {greeted:.1f}s with dns_timeout = 1"
    [m] = recorder.wait_messages(1)
    assert m.xclient.get("NAME") == "[TEMPUNAVAIL]", m.xclient
