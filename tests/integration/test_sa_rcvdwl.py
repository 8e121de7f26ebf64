"""SpamAssassin's welcomelists by relay and its envelope-vs-relay test (rules/sa_lists.c's
_rcvd lists, rules/sa_rcvdwl.c, rules/sa_eval_rcvdwl.c) against Debian's
`spamassassin -L -t`, on messages written for this test.

smtpgate is the receiving MTA: SpamAssassin gets each message with the Received field a
Postfix receiving MTA adds for the session's facts, smtpgate-rules gets it without that field
and the same facts as options (as test_sa_relays.py does), so both judge the same chain.  The
envelope sender is the message's Return-Path for SpamAssassin (its guess when no relay
names one; it must top the message, as the delivering MTA writes it), and smtpgate has it
as its MAIL FROM.  Both read the same admin file of welcomelist_from_rcvd,
def_welcomelist_from_rcvd and welcomelist_allows_relays lines and rules over the forgery
tests: smtpgate with --sa-local, spamassassin as one of its site files.  USER_IN_WELCOMELIST,
USER_IN_DEF_WELCOMELIST, the forgery rules, __RP_MATCHES_RCVD and every meta of the shipped
rules built on __RP_MATCHES_RCVD, and WelcomeListSubject's SUBJECT_IN_WELCOMELIST and
SUBJECT_IN_BLOCKLIST must agree on every message, and each message hits the rules it was
written for in both.

The rules are read where the package puts them and never copied here.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from sa_diff import SA_RULES, disagreements, gate_run, local_site, needs_spamassassin, sa_run, tool
from sa_diff import msg as _msg
from test_sa_relays import BY, postfix_rcvd

pytestmark = needs_spamassassin


LOCAL_CF = """\
welcomelist_from_rcvd joe@example.org example.org
whitelist_from_rcvd *@lists.example.net [81.2.69.0/24]
welcomelist_from_rcvd ann@example.com [81.2.69]
welcomelist_from_rcvd ann@example.com mx.example.com
welcomelist_allows_relays ann@example.com
welcomelist_from_rcvd v6@example.org [2a00:1450:4001::]/48
welcomelist_from_rcvd *@corp.example [192.168.1.20]
def_welcomelist_from_rcvd *@bank.example bank.example
def_welcomelist_from_rcvd carl@both.example both.example
welcomelist_from_rcvd carl@both.example both.example
welcomelist_from_rcvd gone@example.org example.org
unwelcomelist_from_rcvd gone@example.org
header T_FORGED_WL eval:check_forged_in_welcomelist()
header T_FORGED_WL_OLD eval:check_forged_in_whitelist()
header T_FORGED_DEF eval:check_forged_in_default_welcomelist()
header T_IN_WL_OLD eval:check_from_in_whitelist()
header T_IN_DEF_OLD eval:check_from_in_default_whitelist()
welcomelist_subject [Bug *] fixed
whitelist_subject minutes of ?? may
blocklist_subject make   MONEY fast
blacklist_subject (free)
header T_SUBJ_WL_OLD eval:check_subject_in_whitelist()
header T_SUBJ_BL_OLD eval:check_subject_in_blacklist()
"""
LOCAL_RULES = {"T_FORGED_WL", "T_FORGED_WL_OLD", "T_FORGED_DEF", "T_IN_WL_OLD", "T_IN_DEF_OLD",
               "T_SUBJ_WL_OLD", "T_SUBJ_BL_OLD"}

SUBJECT = "Subject: Minutes of the meeting\n"
BASE = "To: Bob <bob@example.net>\nDate: Mon, 07 Dec 2026 09:59:00 +0000\n"
PRIOR = ("Received: from mail.example.org (mail.example.org [81.2.69.160])\n"
         "\tby relay.example.org (Postfix) with ESMTP id 4ABC123\n"
         "\tfor <bob@example.net>; Mon,  7 Dec 2026 09:59:30 +0000 (UTC)\n")
PRIVATE = ("Received: from pc.corp.example (desk.corp.example [192.168.1.20])\n"
           "\tby gw.corp.example (Postfix) with ESMTP id 2A\n"
           "\tfor <bob@example.net>; Mon,  7 Dec 2026 09:59:20 +0000 (UTC)\n")

F = dict
PUB = "81.2.69.142"
# name -> (facts, Return-Path, From, the message's other fields, the rules it is written for)
CASES = {
    "wl_by_name": (F(ip=PUB, rdns="out.mail.example.org"), "joe@example.org", "joe@example.org",
                   "", {"USER_IN_WELCOMELIST", "T_IN_WL_OLD", "__RP_MATCHES_RCVD"}),
    "wl_forged": (F(ip=PUB, rdns="mail.other.example"), "joe@example.org", "joe@example.org", "",
                  {"T_FORGED_WL", "T_FORGED_WL_OLD"}),
    "wl_no_rdns_forged": (F(ip=PUB), "joe@example.org", "joe@example.org", "",
                          {"T_FORGED_WL", "T_FORGED_WL_OLD"}),
    "wl_cidr": (F(ip="81.2.69.10"), "x@lists.example.net", "news@lists.example.net", "",
                {"USER_IN_WELCOMELIST", "T_IN_WL_OLD"}),
    "wl_classful": (F(ip="81.2.69.20", rdns="h.example.net"), "ann@example.com",
                    "ann@example.com", "", {"USER_IN_WELCOMELIST", "T_IN_WL_OLD"}),
    "allows_relays": (F(ip="91.198.174.192", rdns="mx.elsewhere.example"), "ann@example.com",
                      "ann@example.com", "", set()),
    "wl_ipv6": (F(ip="2a00:1450:4001:80b::2005", rdns="mail-v6.example.com"),
                "v6@example.org", "v6@example.org", "", {"USER_IN_WELCOMELIST", "T_IN_WL_OLD"}),
    "def_wl": (F(ip=PUB, rdns="mx1.bank.example"), "news@bank.example", "Bank <news@bank.example>",
               "", {"USER_IN_DEF_WELCOMELIST", "T_IN_DEF_OLD", "__RP_MATCHES_RCVD"}),
    "def_forged": (F(ip=PUB, rdns="mx.other.example"), "news@bank.example",
                   "Bank <news@bank.example>", "", {"T_FORGED_DEF"}),
    "both_lists": (F(ip=PUB, rdns="mx.both.example"), "carl@both.example", "carl@both.example",
                   "", {"USER_IN_WELCOMELIST", "T_IN_WL_OLD", "USER_IN_DEF_WELCOMELIST",
                        "T_IN_DEF_OLD", "__RP_MATCHES_RCVD"}),
    "both_forged": (F(ip=PUB, rdns="mx.other.example"), "carl@both.example", "carl@both.example",
                    "", set()),
    "removed": (F(ip=PUB, rdns="mx.other.example"), "gone@example.org", "gone@example.org", "",
                set()),
    # the older relays of the message do not count once a relay is untrusted
    "older_relay": (F(ip=PUB, rdns="relay.other.example"), "joe@example.org", "joe@example.org",
                    PRIOR, {"T_FORGED_WL", "T_FORGED_WL_OLD"}),
    # the loopback client is trusted: the message's own relay is the first untrusted one
    "behind_loopback": (F(ip="127.0.0.1", rdns="localhost"), "joe@example.org",
                        "joe@example.org", PRIOR,
                        {"USER_IN_WELCOMELIST", "T_IN_WL_OLD", "__RP_MATCHES_RCVD"}),
    # every relay trusted (private): any of them may match
    "all_trusted": (F(ip="192.168.1.30", rdns="gw.corp.example"), "a@mail.corp.example",
                    "a@corp.example", PRIVATE,
                    {"USER_IN_WELCOMELIST", "T_IN_WL_OLD", "__RP_MATCHES_RCVD"}),
    "resent_from": (F(ip=PUB, rdns="mx.example.org"), "joe@example.org", "no@one.example",
                    "Resent-From: joe@example.org\n",
                    {"USER_IN_WELCOMELIST", "T_IN_WL_OLD", "__RP_MATCHES_RCVD"}),
    # __RP_MATCHES_RCVD: registered domains, a relay without a name, no dot
    "rp_registry": (F(ip=PUB, rdns="mta7.example.co.uk"), "b@shop.example.co.uk",
                    "b@example.com", "", {"__RP_MATCHES_RCVD"}),
    "rp_other_registrant": (F(ip=PUB, rdns="mta7.other.co.uk"), "b@shop.example.co.uk",
                            "b@example.com", "", set()),
    "rp_no_rdns": (F(ip=PUB), "b@example.com", "b@example.com", "", set()),
    "rp_dotless": (F(ip=PUB, rdns="localhost"), "b@localhost", "b@example.com", "", set()),
    # WelcomeListSubject: a glob anywhere in the decoded Subject, any case
    "subj_wl": (F(ip=PUB), "b@example.com", "b@example.com",
                "Subject: Re: [BUG 4711] fixed now\n", {"SUBJECT_IN_WELCOMELIST", "T_SUBJ_WL_OLD"}),
    "subj_wl_one_octet": (F(ip=PUB), "b@example.com", "b@example.com",
                          "Subject: Fwd: MINUTES of 12 May\n",
                          {"SUBJECT_IN_WELCOMELIST", "T_SUBJ_WL_OLD"}),
    "subj_wl_short": (F(ip=PUB), "b@example.com", "b@example.com",
                      "Subject: Minutes of 2 May\n", set()),
    "subj_bl_encoded": (F(ip=PUB), "b@example.com", "b@example.com",
                        "Subject: =?UTF-8?Q?Make___money_FAST_=E2=82=AC?=\n",
                        {"SUBJECT_IN_BLOCKLIST", "T_SUBJ_BL_OLD"}),
    "subj_bl_literal": (F(ip=PUB), "b@example.com", "b@example.com",
                        "Subject: all (Free) today\n", {"SUBJECT_IN_BLOCKLIST", "T_SUBJ_BL_OLD"}),
    "subj_bl_no_paren": (F(ip=PUB), "b@example.com", "b@example.com",
                         "Subject: all free today\n", set()),
}
TARGETS = set().union(*(c[4] for c in CASES.values()))


def rp_metas() -> set[str]:
    """The shipped metas that use __RP_MATCHES_RCVD."""
    text = (SA_RULES / "72_active.cf").read_text(encoding="latin-1")
    return set(re.findall(r"^\s*meta\s+(\w+)\s+[^\n]*\b__RP_MATCHES_RCVD\b", text, re.M)) - {
        "__RP_MATCHES_RCVD"}


@pytest.fixture(scope="module")
def local_cf(tmp_path_factory) -> tuple[Path, Path]:
    """The admin file, and a site folder for spamassassin: the site's files linked, and it."""
    cf, site = local_site(tmp_path_factory, "zz_rcvdwl", LOCAL_CF)
    return cf, site


@pytest.fixture(scope="module")
def lint(local_cf) -> str:
    cf, _ = local_cf
    p = tool("lint", "--sa", "--list", "--sa-local", cf)
    assert p.returncode == 0, p.stdout + p.stderr
    return p.stdout


@pytest.fixture(scope="module")
def compared(lint) -> set[str]:
    loaded = set(re.findall(r"^rule (\S+) ", lint, re.M))
    return loaded & (TARGETS | LOCAL_RULES | rp_metas())


@pytest.fixture(scope="module")
def both(tmp_path_factory, local_cf):
    cf, site = local_cf
    home = tmp_path_factory.mktemp("sa-home")
    work = tmp_path_factory.mktemp("msgs")
    out = {}
    for n, (name, (facts, rp, frm, fields, _)) in enumerate(CASES.items()):
        subject = "" if "Subject:" in fields else SUBJECT
        body = (f"{fields}From: {frm}\n{subject}{BASE}"
                f"Message-ID: <20261207095900.{4900 + n}@example.org>\n")
        helo = facts.get("rdns") or "client.example.org"
        # the delivering MTA's Return-Path tops the message (below a Received field
        # SpamAssassin would not trust it); smtpgate has the MAIL FROM itself
        rp_line = f"Return-Path: <{rp}>\n"
        sa_msg = _msg(rp_line + postfix_rcvd(facts["ip"], facts.get("rdns"), helo) + body)
        args: list[str | Path] = ["--sa-local", cf, "--by", BY, "--ip", facts["ip"],
                                  "--helo", helo, "--from", rp]
        if facts.get("rdns"):
            args += ["--name", facts["rdns"]]
        sa = sa_run(sa_msg, home, "rules", args=(f"--siteconfigpath={site}",))
        sg = gate_run(_msg(rp_line + body), work / f"{name}.eml", *args)
        out[name] = (sa.hits, sg.hits)
    return out


def test_lint_loads_the_relay_welcomelists(lint, compared):
    done = set(re.findall(r"^eval function implemented \d+: (\w+) ", lint, re.M))
    missing = set(re.findall(r"^eval function not implemented \d+: (\w+) ", lint, re.M))
    for fn in ("check_from_in_welcomelist", "check_from_in_default_welcomelist",
               "check_mailfrom_matches_rcvd", "check_forged_in_welcomelist",
               "check_forged_in_default_welcomelist", "check_subject_in_welcomelist",
               "check_subject_in_blocklist"):
        assert fn in done and fn not in missing, fn
    assert "Plugin::WelcomeListSubject is not emulated" not in lint
    # the old names too (the shipped files name them only in branches not taken, which lint
    # counts among the functions missing)
    for fn in ("check_forged_in_whitelist", "check_from_in_whitelist",
               "check_from_in_default_whitelist", "check_subject_in_whitelist",
               "check_subject_in_blacklist"):
        assert fn in done, fn
    assert "uses an eval test smtpgate lacks" not in lint
    # the _rcvd settings are read, with no warning about them
    for setting in ("welcomelist_from_rcvd", "whitelist_from_rcvd", "def_welcomelist_from_rcvd",
                    "unwelcomelist_from_rcvd", "welcomelist_allows_relays", "welcomelist_subject",
                    "whitelist_subject", "blocklist_subject", "blacklist_subject"):
        assert not re.search(rf"^ignored setting \d+: {setting}$", lint, re.M), setting
    assert "zz_rcvdwl.cf" not in lint
    assert TARGETS | LOCAL_RULES <= compared, (TARGETS | LOCAL_RULES) - compared
    metas = rp_metas()
    # all but the one that needs FromNameSpoof, a plugin smtpgate does not emulate
    assert len(metas) >= 15 and metas - compared == {"T_FROMNAME_SPOOFED_EMAIL"}, metas - compared


def test_a_bad_rcvd_line_is_named(tmp_path):
    cf = tmp_path / "bad.cf"
    cf.write_text("welcomelist_from_rcvd joe@example.org\n"
                  "def_welcomelist_from_rcvd a@b.example c.example d.example\n")
    p = tool("lint", "--sa", "--sa-local", cf)
    out = p.stdout + p.stderr
    assert re.search(rf"{re.escape(str(cf))}:1: .*welcomelist_from_rcvd: invalid value", out), out
    assert re.search(rf"{re.escape(str(cf))}:2: .*def_welcomelist_from_rcvd: invalid value",
                     out), out


@pytest.mark.time_limit(400)
def test_same_relay_welcomelist_hits_as_spamassassin(both, compared):
    out, agree = disagreements(both, compared, "relay welcomelist")
    wrong = []
    watched = TARGETS | LOCAL_RULES
    for name, case in CASES.items():
        for who, hits in zip(("spamassassin", "smtpgate"), both[name]):
            if watched & hits != case[4]:
                wrong.append((name, who, sorted(watched & hits), sorted(case[4])))
    assert wrong == []
    assert out == []
    assert agree == len(compared) * len(CASES)
