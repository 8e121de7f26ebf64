"""The SPF evaluation core against a real DNS server on loopback (dnsmasq).

spf-query (built from tests/spf/spf_query.c with the plugin's own check and
DNS code) asks dnsmasq on 127.0.0.1 through the plugin's resolver layer:
pass, fail with the domain's explanation, softfail, neutral, none, MX and
include chains, the null sender judged by HELO, a record too long for UDP
(TCP fallback), and temperror within the bound both when the server is
stopped and when it never answers.  Every test runs twice: with the check
blocking in its thread, and with it waiting on an event loop as the plugin
runs it in smtpgate (spf-query -a).  No query leaves the machine.
"""

from __future__ import annotations

import os
import socket
import subprocess
import time
from pathlib import Path

import pytest

from dnsserver import DnsServer, dnsmasq_available

REPO = Path(__file__).resolve().parents[2]
ZONE = "spf.test"


def spf_query_bin() -> Path:
    for c in (os.environ.get("SPF_QUERY_BIN"), REPO / "build/asan/tests/spf-query",
              REPO / "build/release/tests/spf-query"):
        if c and Path(c).is_file() and os.access(c, os.X_OK):
            return Path(c)
    pytest.fail("spf-query is not built (make BUILD=build/asan SANITIZE=1 all)")


ON_LOOP = False


@pytest.fixture(autouse=True, params=["blocking", "loop"])
def check_mode(request):
    """The check blocking in spf_check_host, or on a loop through spf_async."""
    global ON_LOOP
    ON_LOOP = request.param == "loop"
    yield
    ON_LOOP = False


def mode_args() -> list[str]:
    return ["-a"] if ON_LOOP else []


def query(nameserver: str, sender: str, helo: str, ip: str, timeout: float = 3,
          helo_only: bool = False) -> dict[str, str]:
    cmd = [str(spf_query_bin()), "-t", str(timeout), *mode_args()]
    if helo_only:
        cmd.append("-H")
    cmd += [sender or "<>", helo, ip, nameserver]
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout + 20)
    assert p.returncode == 0, p.stderr
    assert "ERROR: AddressSanitizer" not in p.stderr, p.stderr
    out = dict(line.split("=", 1) for line in p.stdout.splitlines() if "=" in line)
    return out


pytestmark = pytest.mark.skipif(not dnsmasq_available(), reason="dnsmasq-base not installed")


@pytest.fixture(scope="module")
def dns(tmp_path_factory):
    d = DnsServer([ZONE], log_path=tmp_path_factory.mktemp("dns") / "dnsmasq.log")
    d.txt(f"pass.{ZONE}", "v=spf1 ip4:127.0.0.0/24 -all")
    d.txt(f"fail.{ZONE}", f"v=spf1 ip4:192.0.2.1 -all exp=why.{ZONE}")
    d.txt(f"why.{ZONE}", "%{i} may not send for %{d} (sender %{s})")
    d.txt(f"soft.{ZONE}", "v=spf1 ~all")
    d.txt(f"neutral.{ZONE}", "v=spf1 ?all")
    d.txt(f"mx.{ZONE}", "v=spf1 mx -all")
    d.mx(f"mx.{ZONE}", f"mail.{ZONE}", 10)
    d.host(f"mail.{ZONE}", "127.0.0.2", "::2")
    d.txt(f"mail.{ZONE}", "v=spf1 a -all")
    d.txt(f"inc.{ZONE}", f"v=spf1 include:inc2.{ZONE} -all")
    d.txt(f"inc2.{ZONE}", f"v=spf1 include:pass.{ZONE} -all")
    d.txt(f"bad.{ZONE}", "v=spf1 ip4:1.2.3.4/33 -all")
    # 1.4 KiB in six strings: more than fits the 1232-octet EDNS answer.
    nets = " ".join(f"ip4:10.{i // 250}.{i % 250}.0/24" for i in range(96))
    record = f"v=spf1 {nets} ip4:127.0.0.9 -all"
    d.txt(f"big.{ZONE}", *[record[i:i + 250] for i in range(0, len(record), 250)])
    d.start()
    yield d
    d.stop()


def test_pass(dns):
    r = query(dns.address, f"user@pass.{ZONE}", "client.example", "127.0.0.5")
    assert r["result"] == "pass" and r["mechanism"] == "ip4:127.0.0.0/24"


def test_fail_with_explanation(dns):
    r = query(dns.address, f"user@fail.{ZONE}", "client.example", "127.0.0.5")
    assert r["result"] == "fail"
    assert r["explanation"] == f"127.0.0.5 may not send for fail.{ZONE} (sender user@fail.{ZONE})"


def test_softfail_and_neutral(dns):
    assert query(dns.address, f"u@soft.{ZONE}", "h.example", "127.0.0.5")["result"] == "softfail"
    assert query(dns.address, f"u@neutral.{ZONE}", "h.example", "127.0.0.5")["result"] == "neutral"


def test_none_for_a_domain_without_record(dns):
    r = query(dns.address, f"u@nothing.{ZONE}", "h.example", "127.0.0.5")
    assert r["result"] == "none"


def test_permerror_for_an_invalid_record(dns):
    r = query(dns.address, f"u@bad.{ZONE}", "h.example", "127.0.0.5")
    assert r["result"] == "permerror" and "cidr" in r["problem"]


def test_mx_over_ipv4_and_ipv6(dns):
    assert query(dns.address, f"u@mx.{ZONE}", "h.example", "127.0.0.2")["result"] == "pass"
    assert query(dns.address, f"u@mx.{ZONE}", "h.example", "::2")["result"] == "pass"
    assert query(dns.address, f"u@mx.{ZONE}", "h.example", "::3")["result"] == "fail"


def test_include_chain(dns):
    assert query(dns.address, f"u@inc.{ZONE}", "h.example", "127.0.0.7")["result"] == "pass"
    assert query(dns.address, f"u@inc.{ZONE}", "h.example", "192.0.2.7")["result"] == "fail"


def test_null_sender_is_judged_by_helo(dns):
    r = query(dns.address, "", f"mail.{ZONE}", "127.0.0.2")
    assert r["result"] == "pass" and r["identity"] == "helo"
    r = query(dns.address, "", f"mail.{ZONE}", "127.0.0.3")
    assert r["result"] == "fail" and r["identity"] == "helo"


def test_helo_identity_on_its_own(dns):
    r = query(dns.address, f"u@pass.{ZONE}", f"mail.{ZONE}", "127.0.0.3", helo_only=True)
    assert r["result"] == "fail" and r["identity"] == "helo"


def test_record_too_long_for_udp_comes_over_tcp(dns):
    r = query(dns.address, f"u@big.{ZONE}", "h.example", "127.0.0.9")
    assert r["result"] == "pass" and r["mechanism"] == "ip4:127.0.0.9"


def test_stopped_server_is_temperror_within_the_bound(tmp_path):
    d = DnsServer([ZONE], log_path=tmp_path / "dnsmasq.log")
    d.txt(f"pass.{ZONE}", "v=spf1 ip4:127.0.0.0/24 -all")
    d.start()
    address = d.address
    assert query(address, f"u@pass.{ZONE}", "h.example", "127.0.0.5")["result"] == "pass"
    d.stop()
    start = time.monotonic()
    r = query(address, f"u@pass.{ZONE}", "h.example", "127.0.0.5", timeout=2)
    assert r["result"] == "temperror"
    assert time.monotonic() - start < 2 + 5  # the bound, plus process start under ASan
    assert int(r["elapsed_ms"]) <= 2100


def test_silent_server_is_temperror_at_the_bound():
    # A UDP socket that reads queries and never answers: every try times out.
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        address = "127.0.0.1:%d" % s.getsockname()[1]
        r = query(address, f"u@pass.{ZONE}", "h.example", "127.0.0.5", timeout=1.5)
    assert r["result"] == "temperror"
    assert 1000 <= int(r["elapsed_ms"]) <= 1700, r


def _read_result(stream) -> dict[str, str]:
    """One result block (up to its empty line) from spf-query -r.  A hung
    spf-query is ended by the test's deadline (conftest), the loop by its count."""
    out = {}
    for _ in range(20):
        line = stream.readline()
        if line == "" or line == "\n":
            return out
        k, _, v = line.rstrip("\n").partition("=")
        out[k] = v
    raise AssertionError(f"spf-query printed no end of result: {out}")


@pytest.mark.parametrize("cache_bits, second", [(8, "pass"), (0, "temperror")])
def test_libspf2_cache_answers_while_the_server_is_down(tmp_path, cache_bits, second):
    d = DnsServer([ZONE], log_path=tmp_path / "dnsmasq.log", local_ttl=300)
    d.txt(f"pass.{ZONE}", "v=spf1 ip4:127.0.0.0/24 -all")
    d.start()
    p = subprocess.Popen([str(spf_query_bin()), *mode_args(), "-t", "1", "-c", str(cache_bits), "-r", "2",
                          f"u@pass.{ZONE}", "h.example", "127.0.0.5", d.address],
                         stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         text=True)
    try:
        assert _read_result(p.stdout)["result"] == "pass"
        d.stop()
        p.stdin.write("\n")
        p.stdin.flush()
        assert _read_result(p.stdout)["result"] == second
        p.stdin.close()
        assert p.wait(15) == 0
        assert "ERROR: AddressSanitizer" not in p.stderr.read()
    finally:
        if p.poll() is None:
            p.kill()
            p.wait(5)
        d.stop()


def test_names_made_by_macros_are_not_cached(tmp_path):
    # The record is cached; the exists: name built from %{l} is asked again
    # each time, so with the server gone the second check is a temperror.
    d = DnsServer([ZONE], log_path=tmp_path / "dnsmasq.log", local_ttl=300)
    d.txt(f"macro.{ZONE}", f"v=spf1 exists:%{{l}}.ok.{ZONE} -all")
    d.host(f"u.ok.{ZONE}", "127.0.0.1")
    d.start()
    p = subprocess.Popen([str(spf_query_bin()), *mode_args(), "-t", "1", "-c", "8", "-r", "2",
                          f"u@macro.{ZONE}", "h.example", "192.0.2.1", d.address],
                         stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         text=True)
    try:
        assert _read_result(p.stdout)["result"] == "pass"
        d.stop()
        p.stdin.write("\n")
        p.stdin.flush()
        r = _read_result(p.stdout)
        assert r["result"] == "temperror" and f"u.ok.{ZONE}" in r["problem"], r
        p.stdin.close()
        assert p.wait(15) == 0
    finally:
        if p.poll() is None:
            p.kill()
            p.wait(5)
        d.stop()


@pytest.mark.parametrize("local", ["$alice", "bob smith", '"quoted"'])
def test_local_parts_glibc_escapes_resolve(dns_odd, local):
    # exists:%{l} asks a name with an octet that presentation form escapes
    # ($, a space, UTF-8): its answer must still be taken as the answer.
    r = query(dns_odd.address, f"{local}@odd.{ZONE}", "h.example", "192.0.2.1", timeout=2)
    assert r["result"] == "pass", r
    assert r["mechanism"] == f"exists:%{{l}}.ok.{ZONE}"


@pytest.fixture(scope="module")
def dns_odd(tmp_path_factory):
    d = DnsServer([ZONE], log_path=tmp_path_factory.mktemp("dns") / "dnsmasq.log")
    d.txt(f"odd.{ZONE}", f"v=spf1 exists:%{{l}}.ok.{ZONE} -all")
    for local in ("$alice", "bob smith", '"quoted"'):
        d.host(f"{local}.ok.{ZONE}", "127.0.0.1")
    # Sub-addressing and SRS: include: targets made by %{l} hold + and =.
    d.txt(f"sub.{ZONE}", f"v=spf1 include:%{{l}}._spf.{ZONE} -all")
    d.txt(f"red.{ZONE}", f"v=spf1 redirect=%{{l}}._spf.{ZONE}")
    for local in ("bob+tag", "SRS0=HHH=TT=example.org=alice"):
        d.txt(f"{local}._spf.{ZONE}", "v=spf1 ip4:192.0.2.0/24 -all")
    d.start()
    yield d
    d.stop()


@pytest.mark.parametrize("local", ["bob+tag", "SRS0=HHH=TT=example.org=alice"])
@pytest.mark.parametrize("domain", ["sub", "red"])
def test_include_and_redirect_targets_made_by_macros(dns_odd, local, domain):
    # RFC 7208 7.3/4.8: an expanded domain-spec may hold any octet but the
    # dot in a label; pyspf and libspf2 give pass here.
    r = query(dns_odd.address, f"{local}@{domain}.{ZONE}", "h.example", "192.0.2.1", timeout=2)
    assert r["result"] == "pass", r
    r = query(dns_odd.address, f"{local}@{domain}.{ZONE}", "h.example", "198.51.100.1", timeout=2)
    assert r["result"] == "fail", r
