#!/usr/bin/python3
"""The open SPF project's RFC 7208 suite, and pyspf's own cases, through the
plugin's real resolver: a DNS server on loopback (dnslib) serves each
scenario's zone, and spf-query -b (the plugin's spf_check and spf_dns, c-ares
on the wire) checks every case against it, once blocking in its thread and
once waiting on an event loop as smtpgate runs it (spf-query -a).

What the server answers follows pyspf's own harness (testspf.py), as the
in-memory runner's zone does (tests/spf/rfc7208_to_data.py), but as a DNS
server would: TXT records keep their character-strings apart, SPF records
stand in for TXT when a name has none, CNAMEs are followed (the CNAME and the
target's records in the answer), an empty answer for a name that exists, a
name not in the zone is NXDOMAIN, and TIMEOUT (and every name under "error.")
is a question never answered, which the check sees at its DNS timeout.  An
answer over the client's EDNS size is truncated so that c-ares asks again
over TCP, which the server answers on the same port.

A case passes when the result is one the suite allows and, where the suite
names an explanation, the explanation is the same ("DEFAULT" when the domain
gave none).  Cases answered otherwise on purpose are in EXPECTED_FAILURES with
the reason (and in plugins/spf/README.md): they print as XFAIL; one that
starts passing fails the run, so the list stays true.  The output ends with
cmocka's summary lines, counting every case once per way of checking, which
scripts/test-all.sh adds to its closing line.

Usage: suite_dns.py --spf-query PATH [--timeout SECONDS] SUITE.yml[.gz]...
"""
from __future__ import annotations

import argparse
import gzip
import os
import re
import subprocess
import sys
import threading

import yaml
from dnslib import AAAA, CNAME, MX, PTR, QTYPE, RCODE, RR, TXT, A, DNSError
from dnslib.server import BaseResolver, DNSHandler, DNSLogger, DNSServer

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from rfc7208_to_data import enc, rdata  # noqa: E402

EXPECTED_FAILURES = {
    "v-macro-ip6": "the suite wants %{i} nibbles of CAFE:BABE::1 in upper case, as pyspf copies "
                   "the case the address was written in; RFC 7208 7.3 fixes no case for them and "
                   "DNS names are case-insensitive: spf_macro writes lower case, like RFC 5952",
    "default-modifier": "pyspf's own default= modifier, which RFC 7208 does not have: an unknown "
                        "modifier is ignored (6), so the record ends in neutral",
    "default-modifier-harsh": "pyspf's default= modifier in its harsh mode (result "
                              "'ambiguous', which RFC 7208 does not have)",
}

# The in-memory runner's fixed %{r} and %{t}.
RECEIVER = "receiver.com"
NOW = 1000000000
EDNS_UDP = 1232
MAX_CNAMES = 8


class Unanswered(DNSError):
    """A question the zone leaves without answer (TIMEOUT): nothing is sent."""


def _bytes(s) -> bytes:
    return s.encode("utf-8") if isinstance(s, str) else bytes(s)


def _name(s) -> bytes:
    return _bytes(s).rstrip(b".").lower()


def _txt_strings(v) -> list[bytes]:
    """TXT character-strings as the zone gives them; one over 255 octets is cut
    into several, as no DNS record can carry it whole."""
    parts = [v] if isinstance(v, (str, bytes)) else list(v)
    out = []
    for p in parts:
        b = _bytes(p)
        out += [b[i:i + 255] for i in range(0, len(b), 255)] or [b""]
    return out


def _rr(owner, t: str, v) -> RR | None:
    if t == "A":
        return RR(owner, QTYPE.A, rdata=A(v), ttl=300)
    if t == "AAAA":
        return RR(owner, QTYPE.AAAA, rdata=AAAA(v), ttl=300)
    if t == "MX":
        return RR(owner, QTYPE.MX, rdata=MX(v[1] or ".", int(v[0])), ttl=300)
    if t == "PTR":
        return RR(owner, QTYPE.PTR, rdata=PTR(v or "."), ttl=300)
    if t == "CNAME":
        return RR(owner, QTYPE.CNAME, rdata=CNAME(v or "."), ttl=300)
    if t in ("TXT", "SPF"):
        return RR(owner, getattr(QTYPE, t), rdata=TXT(_txt_strings(v)), ttl=300)
    return None


class SuiteZone(BaseResolver):
    """One scenario's zone at a time; load() switches to the next."""

    def __init__(self):
        self.lock = threading.Lock()
        self.zone: dict[bytes, list] = {}

    def load(self, zonedata: dict | None):
        z = {_name(d): rdata(r, d) for d, r in (zonedata or {}).items()}
        with self.lock:
            self.zone = z

    def _answer(self, zone, owner, qname: bytes, qtype: str, depth: int) -> list | None:
        """The answer's records, None for NXDOMAIN; raises Unanswered."""
        entries = zone.get(qname)
        if entries is None:
            if qname.startswith(b"error."):
                raise Unanswered(qname)
            return None
        out, seen = [], False
        for e in entries:
            if e == "TIMEOUT":
                # testspf: a bare TIMEOUT times out the types not listed before it
                if not seen:
                    raise Unanswered(qname)
                break
            t, v = e
            if t == qtype:
                seen = True
            if v == "TIMEOUT":
                if t == qtype:
                    raise Unanswered(qname)
                continue
            if t == qtype:
                rr = _rr(owner, t, v)
                if rr is not None:
                    out.append(rr)
            elif t == "CNAME" and qtype != "CNAME":
                out.append(_rr(owner, "CNAME", v))
                if depth < MAX_CNAMES and v:
                    more = self._answer(zone, v.rstrip(".") + ".", _name(v), qtype, depth + 1)
                    out += more or []
        return out

    def resolve(self, request, handler):
        q = request.q
        reply = request.reply()
        qname = b".".join(q.qname.label).lower()
        with self.lock:
            zone = self.zone
        records = self._answer(zone, q.qname, qname, QTYPE.get(q.qtype), 0)
        if records is None:
            reply.header.rcode = RCODE.NXDOMAIN
        for rr in records or []:
            reply.add_answer(rr)
        return reply


class EdnsHandler(DNSHandler):
    # c-ares offers this much with EDNS0: a longer answer is truncated and
    # asked again over TCP.
    udplen = EDNS_UDP


class SuiteDns:
    """The zone served over UDP and TCP on one loopback port."""

    def __init__(self):
        self.zone = SuiteZone()
        quiet = DNSLogger(logf=lambda s: None)
        # UDP on a free port first, then TCP on that same port.
        for _ in range(20):
            self.udp = DNSServer(self.zone, address="127.0.0.1", port=0, logger=quiet,
                                 handler=EdnsHandler)
            self.port = self.udp.server.server_address[1]
            try:
                self.tcp = DNSServer(self.zone, address="127.0.0.1", port=self.port, tcp=True,
                                     logger=quiet, handler=EdnsHandler)
                break
            except OSError:
                self.udp.server.server_close()
        else:
            raise RuntimeError("no loopback port free for UDP and TCP at once")
        self.udp.start_thread()
        self.tcp.start_thread()

    def stop(self):
        for s in (self.udp, self.tcp):
            s.server.shutdown()
            s.server.server_close()


def load_suites(paths) -> list[dict]:
    docs = []
    for p in paths:
        opener = gzip.open if p.endswith(".gz") else open
        with opener(p, "rb") as f:
            docs += [d for d in yaml.safe_load_all(f) if d and d.get("tests")]
    return docs


class Checker:
    """spf-query -b against the server: one check per line, one block back."""

    def __init__(self, spf_query, port, timeout, on_loop):
        cmd = [spf_query, "-b", "-t", str(timeout), "-R", RECEIVER, "-N", str(NOW)]
        if on_loop:
            cmd.append("-a")
        cmd.append(f"127.0.0.1:{port}")
        self.proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE)

    def check(self, host, mailfrom, helo) -> dict[str, str]:
        line = f"{enc(mailfrom)} {enc(helo)} {enc(host)}\n"
        self.proc.stdin.write(line.encode())
        self.proc.stdin.flush()
        out = {}
        while True:
            raw = self.proc.stdout.readline()
            if not raw:
                raise RuntimeError("spf-query ended: " + self.proc.stderr.read().decode("utf-8", "replace"))
            raw = raw.rstrip(b"\n")
            if not raw:
                return out
            k, _, v = raw.decode("latin-1").partition("=")
            out[k] = v

    def close(self) -> tuple[int, str]:
        self.proc.stdin.close()
        err = self.proc.stderr.read().decode("utf-8", "replace")
        return self.proc.wait(timeout=60), err


def pct_decode(s: str) -> bytes:
    """spf-query -b's encoding undone: %XX to the octet."""
    return re.sub(rb"%([0-9A-Fa-f]{2})", lambda m: bytes([int(m.group(1), 16)]),
                  s.encode("latin-1"))


def run_mode(docs, dns, spf_query, timeout, on_loop, label) -> tuple[int, int, int, int]:
    checker = Checker(spf_query, dns.port, timeout, on_loop)
    passed = xfailed = wrong = total = 0
    for doc in docs:
        dns.zone.load(doc.get("zonedata"))
        for tid, t in doc["tests"].items():
            total += 1
            want = t["result"] if isinstance(t["result"], list) else [t["result"]]
            want_exp = t.get("explanation")
            r = checker.check(str(t["host"]), t.get("mailfrom", "") or "", t.get("helo", "") or "")
            got = r.get("result", "?")
            got_exp = pct_decode(r.get("explanation", "")) or b"DEFAULT"
            ok = got in want and (want_exp is None or _bytes(want_exp) == got_exp)
            xf = EXPECTED_FAILURES.get(tid)
            if ok and xf is None:
                passed += 1
                print(f"[       OK ] {label}: {tid}")
            elif ok:
                wrong += 1
                print(f"[  ERROR   ] {label}: {tid}: listed as an expected failure but passes")
            elif xf is not None:
                xfailed += 1
                print(f"[  XFAIL   ] {label}: {tid}: got {got}"
                      + (f" (exp: {got_exp.decode('utf-8', 'replace')})" if want_exp else "")
                      + f", suite wants {','.join(want)}"
                      + (f" with exp: {want_exp}" if want_exp else "") + f" ({xf})")
            else:
                wrong += 1
                problem = pct_decode(r.get("problem", "")).decode("utf-8", "replace") or "-"
                print(f"[  FAILED  ] {label}: {tid}: got {got} ({problem}; exp: "
                      f"{got_exp.decode('utf-8', 'replace')}), suite wants {','.join(want)}"
                      + (f" with exp: {want_exp}" if want_exp is not None else ""))
    rc, err = checker.close()
    if rc != 0 or "Sanitizer" in err:
        print(f"[  FAILED  ] {label}: spf-query exited with {rc}: {err.strip()[-2000:]}")
        wrong += 1
    print(f"[==========] {label}: {passed} of {total} correct, {xfailed} expected failure(s), "
          f"{wrong} wrong")
    return passed, xfailed, wrong, total


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--spf-query", required=True)
    # Long enough for any loopback answer under a sanitizer, short enough
    # that the suite's few unanswered questions cost little.
    ap.add_argument("--timeout", type=float, default=1.5)
    ap.add_argument("suites", nargs="+")
    a = ap.parse_args()
    docs = load_suites(a.suites)
    print(f"[==========] Running {sum(len(d['tests']) for d in docs)} cases of "
          f"{', '.join(os.path.basename(s) for s in a.suites)} over DNS on loopback, twice")
    dns = SuiteDns()
    try:
        totals = [run_mode(docs, dns, a.spf_query, a.timeout, loop, label)
                  for loop, label in ((False, "blocking"), (True, "on a loop"))]
    finally:
        dns.stop()
    passed = sum(t[0] for t in totals)
    xfailed = sum(t[1] for t in totals)
    wrong = sum(t[2] for t in totals)
    print(f"[==========] RFC 7208 and pyspf suites over DNS: {passed} correct, {xfailed} expected "
          f"failure(s), {wrong} wrong")
    print(f"[  PASSED  ] {passed + xfailed} test(s).")
    if wrong:
        print(f"[  FAILED  ] {wrong} test(s).")
    return 1 if wrong or passed == 0 else 0


if __name__ == "__main__":
    sys.exit(main())
