"""Greylisting exemptions by symbol inside a running smtpgate: the dnsbl plugin against a
real rbldnsd allowlist zone (DNSBL_ALLOWLISTED), the SPF plugin against a real dnsmasq
serving the SPF records (SPF_PASS), and the greylist plugin after them, with the
recording upstream.  Clients connect from addresses of 127.0.0.0/8.

Every outcome is asserted by its exact reply, by the greylist plugin's counters on
/metrics and by its note on the transaction's log line ("exempt symbol=NAME", "exempt
spf-pass=DOMAIN")."""

from __future__ import annotations

import re
import urllib.request

import pytest

from dnsserver import DnsServer, dnsmasq_available
from gate import plugin_dir, plugin_section, run_config_test
from netutil import LOOPBACK, free_port, wait_until
from rbldnsd import Rbldnsd, rbldnsd_available
from smtpclient import simple_message

GREY = "451 4.7.1 Greylisted, please try again in 300 seconds"


def so(binary, name: str):
    path = plugin_dir(binary).parent.parent / "plugins" / f"{name}.so"
    if not path.exists():
        pytest.skip(f"{path} not built")
    return path


@pytest.fixture(scope="module")
def rbl(tmp_path_factory):
    if not rbldnsd_available():
        pytest.skip("rbldnsd not installed")
    r = Rbldnsd(tmp_path_factory.mktemp("rbl"))
    # 127.0.0.40 is on the allowlist (answer 127.0.5.2); nobody is on the blocklist.
    r.zone("wl.test", "ip4set", ":127.0.5.2:Allowed\n127.0.0.40\n")
    r.zone("bl.test", "ip4set", ":127.0.0.2:Listed\n127.0.0.250\n")
    r.start()
    yield r
    r.stop()


@pytest.fixture(scope="module")
def spf_dns(tmp_path_factory):
    if not dnsmasq_available():
        pytest.skip("dnsmasq not installed")
    d = DnsServer(domains=["spf.test"],
                  log_path=tmp_path_factory.mktemp("dns") / "dnsmasq.log")
    d.txt("pass.spf.test", "v=spf1 ip4:127.0.0.0/8 -all")
    d.txt("soft.spf.test", "v=spf1 ~all")
    d.start()
    yield d
    d.stop()


class Gw:
    def __init__(self, gate, metrics_port: int):
        self.gate = gate
        self.metrics_port = metrics_port

    def counter(self, event: str) -> int:
        text = urllib.request.urlopen(f"http://{LOOPBACK}:{self.metrics_port}/metrics",
                                      timeout=10).read().decode()
        m = re.search(r'^smtpgate_plugin_events_total\{plugin="greylist",event="%s"\} (\d+)$'
                      % re.escape(event), text, re.M)
        return int(m.group(1)) if m else 0

    def tx_line(self, mark: int) -> str:
        return wait_until(lambda: next((l for l in self.gate.log_since(mark).splitlines()
                                        if ": tx from=" in l), None), 15, "a tx log line")


def start(gate_factory, recorder, extra: str) -> Gw:
    port = free_port()
    g = gate_factory([recorder.address], extra=extra, metrics_listen=f"{LOOPBACK}:{port}")
    recorder.wait_idle()
    return Gw(g, port)


def dnsbl_section(binary, rbl):
    return plugin_section("dnsbl", so(binary, "dnsbl"),
                          sites="bl.test=127.0.0.2*3, wl.test=127.0.5.2*-2",
                          nameservers=[rbl.address], threshold=3, allowlist_threshold=-1,
                          dns_timeout=3, timeout=10)


def spf_section(binary, dns):
    return plugin_section("spf", so(binary, "spf"), nameserver=dns.address,
                          exempt_networks=[], authserv_id="mx.example.test", dns_timeout=2,
                          timeout=10)


def greylist_section(binary, **options):
    return plugin_section("greylist", so(binary, "greylist"), **options)


def attempt(gw: Gw, source: str, helo: str, sender: str, rcpt: str):
    """One transaction: the RCPT reply, and the message sent when it was taken."""
    with gw.gate.connect(source=source) as c:
        assert c.greeting.code == 220, c.greeting
        assert c.ehlo(helo).code == 250
        replies = c.mail_transaction(sender, [rcpt], simple_message("greylist exemption"))
        assert replies[0].code == 250, replies
        if replies[1].code == 250:
            assert [r.code for r in replies[2:]] == [354, 250], replies
        else:
            assert c.cmd("RSET").code == 250
        c.quit()
    return replies[1]


# ---- DNSBL_ALLOWLISTED (the default exempt_symbols) ----

def test_dnsbl_allowlisted_client_passes_at_first_attempt(gate_factory, recorder, rbl,
                                                          smtpgate_binary):
    gw = start(gate_factory, recorder,
               dnsbl_section(smtpgate_binary, rbl) + greylist_section(smtpgate_binary))
    mark = gw.gate.log_mark()
    r = attempt(gw, "127.0.0.40", "client.test", "a@example.org", "user@example.test")
    assert r.code == 250, r
    [m] = recorder.wait_messages(1)
    assert (m.mail_from, m.rcpts) == ("a@example.org", ["user@example.test"])
    line = gw.tx_line(mark)
    assert ' greylist="exempt symbol=DNSBL_ALLOWLISTED" ' in line, line
    # A client the allowlist does not vouch for is greylisted at its first attempt.
    assert str(attempt(gw, "127.0.0.41", "client.test", "a@example.org",
                       "user@example.test")) == GREY
    assert gw.counter("exempt") == 1
    assert gw.counter("greylisted_new") == 1
    assert gw.counter("passed_known") == 0


def test_no_exempt_symbols_greylists_the_allowlisted_client(gate_factory, recorder, rbl,
                                                            smtpgate_binary):
    gw = start(gate_factory, recorder,
               dnsbl_section(smtpgate_binary, rbl)
               + greylist_section(smtpgate_binary, exempt_symbols=[]))
    assert str(attempt(gw, "127.0.0.40", "client.test", "a@example.org",
                       "user@example.test")) == GREY
    gw.gate.wait_log(r"plugin dnsbl: dnsbl: client \[127\.0\.0\.40\] allowlisted: score=-2 ")
    assert gw.counter("exempt") == 0
    assert gw.counter("greylisted_new") == 1


# ---- SPF pass of the sender's own domain ----

def test_spf_pass_aligned_exempt_when_configured(gate_factory, recorder, spf_dns,
                                                 smtpgate_binary):
    gw = start(gate_factory, recorder,
               spf_section(smtpgate_binary, spf_dns)
               + greylist_section(smtpgate_binary, exempt_spf_pass_aligned=True))
    mark = gw.gate.log_mark()
    r = attempt(gw, "127.0.0.42", "client.test", "a@Pass.Spf.Test", "user@example.test")
    assert r.code == 250, r
    [m] = recorder.wait_messages(1)
    assert m.rcpts == ["user@example.test"]
    line = gw.tx_line(mark)
    assert ' greylist="exempt spf-pass=Pass.Spf.Test" ' in line, line
    assert " symbols=SPF_PASS(0.0) " in line, line
    # softfail is no pass
    assert str(attempt(gw, "127.0.0.42", "client.test", "a@soft.spf.test",
                       "user@example.test")) == GREY
    # The null sender's SPF check is of the HELO name: it passes, but for no sender's
    # domain, so it exempts nothing.
    assert str(attempt(gw, "127.0.0.42", "pass.spf.test", "", "user@example.test")) == GREY
    gw.gate.wait_log(r"plugin spf: spf: identity=helo sender=<[^>]*> client=127\.0\.0\.42 "
                     r"result=pass ")
    assert gw.counter("exempt") == 1
    assert gw.counter("greylisted_new") == 2


def test_spf_pass_greylisted_when_not_configured(gate_factory, recorder, spf_dns,
                                                 smtpgate_binary):
    gw = start(gate_factory, recorder,
               spf_section(smtpgate_binary, spf_dns) + greylist_section(smtpgate_binary))
    assert str(attempt(gw, "127.0.0.43", "client.test", "a@pass.spf.test",
                       "user@example.test")) == GREY
    gw.gate.wait_log(r"plugin spf: spf: identity=mailfrom sender=<a@pass\.spf\.test> "
                     r"client=127\.0\.0\.43 result=pass ")
    assert gw.counter("exempt") == 0
    assert gw.counter("greylisted_new") == 1


def test_spf_pass_in_exempt_symbols_takes_any_pass(gate_factory, recorder, spf_dns,
                                                   smtpgate_binary):
    """exempt_symbols = {"SPF_PASS"} is the looser choice: the null sender's HELO pass
    counts too."""
    gw = start(gate_factory, recorder,
               spf_section(smtpgate_binary, spf_dns)
               + greylist_section(smtpgate_binary, exempt_symbols=["SPF_PASS"]))
    mark = gw.gate.log_mark()
    assert attempt(gw, "127.0.0.44", "pass.spf.test", "", "user@example.test").code == 250
    assert ' greylist="exempt symbol=SPF_PASS" ' in gw.tx_line(mark)
    [m] = recorder.wait_messages(1)
    assert m.mail_from == ""
    assert gw.counter("exempt") == 1
    assert gw.counter("greylisted_new") == 0


def test_bad_exempt_symbol_names_file_and_line(smtpgate_binary, recorder, workdir):
    conf = workdir / "greylist.conf"
    conf.write_text(f'listen = {{"{LOOPBACK}:{free_port()}"}}\n'
                    f'upstream main {{ address = "{recorder.address}" }}\n' +
                    greylist_section(smtpgate_binary, exempt_symbols=["DNSBL_ALLOWLISTED",
                                                                      "9LIVES"]))
    r = run_config_test(smtpgate_binary, conf)
    assert r.returncode != 0
    assert re.search(r"greylist\.conf:\d+: plugin greylist: 'exempt_symbols' is \"9LIVES\": "
                     r"want a symbol name \(letters, digits and '_', not starting with a "
                     r"digit, at most 128 octets\)", r.stderr), r.stderr
