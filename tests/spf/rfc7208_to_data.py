#!/usr/bin/python3
"""Converts the open SPF project's YAML test suite into the flat file that
tests/unit/test_spf_rfc7208.c reads.

The DNS of each scenario is resolved here exactly as pyspf's own harness
(testspf.py) resolves it, so the C side only loads answers into libspf2's
zone layer: per owner name and type, either the records ("ok"), an empty
answer ("nodata") or a timeout ("timeout").  Names not listed are NXDOMAIN;
names starting with "error." time out (the C side's fallback layer).

Output lines, fields separated by one space, each field percent-encoded
(octets outside 0x21..0x7e and '%' as %XX, the empty string as "%"):
    scenario DESCRIPTION
    zone NAME TYPE ok|nodata|timeout [VALUE]
    test ID HOST MAILFROM HELO RESULT[,RESULT...] EXPLANATION|%-
Usage: rfc7208_to_data.py SUITE.yml[.gz] OUT
"""
import gzip
import sys

import yaml

TYPES = ("A", "AAAA", "MX", "PTR", "TXT")


def enc(s):
    if isinstance(s, str):
        b = s.encode("utf-8")
    else:
        b = bytes(s)
    if not b:
        return "%"
    out = []
    for c in b:
        if 0x21 <= c <= 0x7E and c != 0x25:
            out.append(chr(c))
        else:
            out.append("%%%02X" % c)
    return "".join(out)


def rdata(entries, name):
    """testspf.getrdata: SPF records stand in for TXT when no TXT is given."""
    txt, gen, out = [], True, []
    for m in entries:
        if not isinstance(m, dict):
            out.append(m)
            continue
        for t, v in m.items():
            if t in ("TXT", "SPF") and isinstance(v, str):
                v = (v,)
            if t == "TXT":
                gen = False
            elif t == "SPF" and gen:
                txt.append(("TXT", v))
            if v != ("NONE",):
                out.append((t, v))
    if gen:
        out.extend(txt)
    return out


class Timeout(Exception):
    pass


def lookup(zone, name, qtype, level=0):
    """testspf.DNSLookup, yielding (type, value)."""
    name = ".".join(l for l in name.split(".") if l)
    entries = zone.get(name.lower())
    if entries is None:
        if name.lower().startswith("error."):
            raise Timeout()
        return []
    res, timeout = [], True
    for e in entries:
        if e == "TIMEOUT":
            if timeout:
                raise Timeout()
            return res
        t, v = e
        if t == qtype:
            timeout = False
        if v == "TIMEOUT":
            if t == qtype:
                raise Timeout()
            continue
        res.append((t, v))
        if not level and t == "CNAME":
            res.extend(lookup(zone, v, qtype, 1))
    return res


def value(t, v):
    if t == "MX":
        return "%d %s" % (v[0], v[1].rstrip(".") if v[1] != "" else "")
    if t in ("TXT", "SPF"):
        joined = b"".join(s.encode("utf-8") if isinstance(s, str) else bytes(s) for s in v)
        # libspf2 keeps TXT NUL-terminated: DEL keeps such a record invalid.
        return joined.replace(b"\0", b"\x7f")
    if t in ("PTR", "CNAME"):
        return v.rstrip(".")
    return v


def main():
    src, dst = sys.argv[1], sys.argv[2]
    opener = gzip.open if src.endswith(".gz") else open
    with opener(src, "rb") as f:
        docs = list(yaml.safe_load_all(f))
    with open(dst, "w") as out:
        for doc in docs:
            out.write("scenario %s\n" % enc(doc["description"]))
            zone = {d.lower().rstrip("."): rdata(r, d) for d, r in doc.get("zonedata", {}).items()}
            for name in zone:
                for qt in TYPES:
                    try:
                        recs = [value(t, v) for t, v in lookup(zone, name, qt) if t == qt]
                    except Timeout:
                        out.write("zone %s %s timeout\n" % (enc(name), qt))
                        continue
                    if not recs:
                        out.write("zone %s %s nodata\n" % (enc(name), qt))
                    for r in recs:
                        out.write("zone %s %s ok %s\n" % (enc(name), qt, enc(r)))
            for tid, t in doc["tests"].items():
                res = t["result"]
                res = ",".join(res) if isinstance(res, list) else res
                exp = t.get("explanation")
                out.write("test %s %s %s %s %s %s\n" % (
                    enc(tid), enc(t["host"]), enc(t.get("mailfrom", "")), enc(t.get("helo", "")),
                    res, "%-" if exp is None else enc(exp)))


if __name__ == "__main__":
    main()
