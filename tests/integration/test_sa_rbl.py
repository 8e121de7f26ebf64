"""SpamAssassin's relay blocklist rules (DNSEval check_rbl, check_rbl_txt, check_rbl_sub)
with network tests on, against a loopback DNS server (dnsmasq) that holds the zones
zen.spamhaus.org and bl.spamcop.net and refuses every other name: nothing leaves the
machine.  The same messages go through smtpgate-rules test --sa --sa-network, through the
proxy with the rules plugin (spamassassin_network = true), and through spamassassin -t
with its dns_server set to the same server; the RCVD_IN_* rules must agree exactly."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from dnsserver import DnsServer, dnsmasq_available
from gate import plugin_dir, plugin_section
from sa_diff import gate_run, needs_spamassassin, sa_run
from sa_diff import msg as _msg

pytestmark = [needs_spamassassin,
              pytest.mark.skipif(not dnsmasq_available(), reason="dnsmasq not installed")]

X = "81.2.69.160"    # zen 127.0.0.4 (XBL)
Y = "203.0.113.9"    # zen 127.0.0.10 (PBL), and listed in bl.spamcop.net (TXT)
W = "198.51.100.7"   # zen 127.0.0.2 (SBL)
Z = "192.0.2.44"     # listed nowhere
RBL = {"RCVD_IN_SBL", "RCVD_IN_XBL", "RCVD_IN_PBL", "RCVD_IN_BL_SPAMCOP_NET"}


def rev(ip: str) -> str:
    return ".".join(reversed(ip.split(".")))


def received(ip: str, name: str, by: str, qid: str) -> str:
    return (f"Received: from {name} ({name} [{ip}])\n\tby {by} (Postfix) with ESMTP id {qid}\n"
            f"\tfor <bob@example.org>; Mon, 7 Dec 2026 10:00:00 +0000\n")


def message(*hops: tuple[str, str]) -> bytes:
    """hops newest first: (ip, name); each received by the next one's name, the newest
    by mx.example.org"""
    fields = ""
    for i, (ip, name) in enumerate(hops):
        by = "mx.example.org" if i == 0 else hops[i - 1][1]
        fields += received(ip, name, by, f"{i + 1}AB{i}")
    return _msg(fields + "From: alice@example.com\nTo: bob@example.org\nSubject: minutes\n"
                "Date: Mon, 7 Dec 2026 10:00:00 +0000\nMessage-ID: <rbl.1@example.com>\n")


MESSAGES = {
    # the last external relay is listed in XBL
    "xbl": (message((X, "x.example.net")), {"RCVD_IN_XBL"}),
    # the last external one in PBL and spamcop; X behind it is no longer the last: no XBL
    "pbl_spamcop": (message((Y, "y.example.net"), (X, "x.example.net")),
                    {"RCVD_IN_PBL", "RCVD_IN_BL_SPAMCOP_NET"}),
    # SBL is any untrusted relay (set zen, not -lastexternal)
    "sbl_older_hop": (message((Z, "z.example.net"), (W, "w.example.net")), {"RCVD_IN_SBL"}),
    # listed nowhere
    "clean": (message((Z, "z.example.net")), set()),
}


@pytest.fixture(scope="module")
def dns(tmp_path_factory):
    log = tmp_path_factory.mktemp("dns") / "dnsmasq.log"
    d = DnsServer(domains=["zen.spamhaus.org", "bl.spamcop.net"], log_path=log)
    d.host(f"{rev(X)}.zen.spamhaus.org", "127.0.0.4")
    d.host(f"{rev(Y)}.zen.spamhaus.org", "127.0.0.10")
    d.host(f"{rev(W)}.zen.spamhaus.org", "127.0.0.2")
    d.txt(f"{rev(Y)}.bl.spamcop.net", "Blocked - see https://www.spamcop.net/bl.shtml?" + Y)
    d.host(f"{rev(Y)}.bl.spamcop.net", "127.0.0.2")
    d.start()
    yield d
    d.stop()


def gate_hits(name: str, tmp_path: Path, dns) -> set[str]:
    data, _ = MESSAGES[name]
    g = gate_run(data, tmp_path / f"{name}.eml", "--sa-network", "--dns-server", dns.address)
    return g.hits


@pytest.mark.parametrize("name", sorted(MESSAGES))
def test_smtpgate_rules_hits_exactly(name, dns, tmp_path):
    assert gate_hits(name, tmp_path, dns) & RBL == MESSAGES[name][1]


def test_without_network_nothing_is_asked(dns, tmp_path):
    data, _ = MESSAGES["xbl"]
    before = Path(dns.log_path).read_text(errors="replace").count("query[")
    g = gate_run(data, tmp_path / "off.eml", "--dns-server", dns.address)
    assert g.hits & RBL == set()
    assert Path(dns.log_path).read_text(errors="replace").count("query[") == before


def test_unanswered_is_a_miss(tmp_path):
    # a server that is not there: every query times out, every rule misses
    d = DnsServer(domains=["zen.spamhaus.org"])
    d.start()
    addr = d.address
    d.stop()
    data, _ = MESSAGES["xbl"]
    g = gate_run(data, tmp_path / "t.eml", "--sa-network", "--dns-server", addr,
                 "--dns-timeout", "1")
    assert g.hits & RBL == set()


@pytest.fixture(scope="module")
def sa_site(tmp_path_factory, dns) -> Path:
    """/etc/spamassassin's files (its .pre files load the plugins) and a local.cf that points
    SpamAssassin's DNS at the loopback server; no Razor, Pyzor or DCC (not DNS)."""
    site = tmp_path_factory.mktemp("sasite")
    for f in Path("/etc/spamassassin").glob("*"):
        if f.is_file():
            shutil.copy(f, site / f.name)
    with open(site / "local.cf", "a") as fh:
        fh.write(f"\ndns_server {dns.address}\ndns_available yes\nrbl_timeout 5\n"
                 "use_razor2 0\nuse_pyzor 0\nuse_dcc 0\n")
    return site


@pytest.fixture(scope="module")
def sa_hits(sa_site, dns, tmp_path_factory) -> dict[str, set[str]]:
    home = tmp_path_factory.mktemp("sahome")
    out = {}
    for name, (data, _) in MESSAGES.items():
        r = sa_run(data, home, debug="rules", args=("--siteconfigpath", str(sa_site)),
                   local=False)
        out[name] = r.hits
    return out


@pytest.mark.parametrize("name", sorted(MESSAGES))
def test_spamassassin_agrees(name, sa_hits, dns, tmp_path):
    assert sa_hits[name] & RBL == MESSAGES[name][1], sa_hits[name]
    assert gate_hits(name, tmp_path, dns) & RBL == sa_hits[name] & RBL


def test_no_query_left_the_machine(sa_hits, dns):
    # dnsmasq has no upstream: each name it was asked it answered from its zones or refused,
    # and nothing was forwarded
    log = Path(dns.log_path).read_text(errors="replace")
    asked = re.findall(r"query\[\w+\] (\S+) from 127\.0\.0\.1", log)
    assert asked, log[-2000:]
    assert "forwarded" not in log
    assert any(n.endswith(".zen.spamhaus.org") for n in asked)


def test_through_the_proxy(gate_factory, recorder, smtpgate_binary, workdir, dns):
    so = plugin_dir(smtpgate_binary).parent.parent / "plugins" / "rules.so"
    if not so.exists():
        pytest.skip(f"{so} not built")
    th = workdir / "thresholds.rules"
    th.write_text("threshold tag 100\n")
    extra = plugin_section("rules", so, files=[str(th)], spamassassin=True,
                           spamassassin_network=True, spamassassin_dns_servers=dns.address,
                           spamassassin_dns_timeout=5)
    gate = gate_factory([recorder.address], extra=extra)
    recorder.wait_idle()
    gate.wait_log(r"plugin rules: spamassassin 4\.000001 \(score set 1\)")
    for name in sorted(MESSAGES):
        data, want = MESSAGES[name]
        mark = gate.log_mark()
        with gate.connect() as c:
            c.ehlo("client.example.org")
            replies = c.mail_transaction("alice@example.com", ["bob@example.org"], data)
            assert replies[-1].code == 250, replies[-1]
            c.quit()
        line = gate.wait_log(r"rules: score=\S+ required=\S+ verdict=\S+.*", mark).group(0)
        got = set(re.findall(r"\b(RCVD_IN_\w+)\(", line)) & RBL
        assert got == want, (name, line)
    recorder.wait_messages(len(MESSAGES))
