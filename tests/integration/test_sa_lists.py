"""SpamAssassin's list tests that smtpgate runs natively (rules/sa_lists.c and the eval
families over it: FreeMail, WLBLEval, HeaderEval's envelope and recipient tests), against
Debian's `spamassassin -L -t` on messages written for this test.

Both read the same admin file of lists: smtpgate with --sa-local, spamassassin as one of its
site files (--siteconfigpath naming a folder that holds the site's own files, linked, and this
one).  For every eval rule of these functions that smtpgate loads, the two must agree on every
message (the agreement counts are printed), and each message hits the rules it was written for
in both.  lint names the functions as implemented.

The rules are read where the package puts them and never copied here.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from sa_diff import both_hits, disagreements, lint_list, local_site, needs_spamassassin
from sa_diff import msg as _msg

pytestmark = needs_spamassassin


LOCAL_CF = """\
welcomelist_from friend@example.org *@trusted.example.com
blocklist_from *@spammer.example.com
welcomelist_to vip@example.net
more_spam_to more@example.net
all_spam_to all@example.net
blocklist_to *@blocked.example.com
blocklist_uri_host evil.example.com
welcomelist_uri_host nice.example.org
enlist_uri_host (SUSP_URI_NTLD) top !good.top
"""

FUNCTIONS = {
    "check_freemail_from", "check_freemail_header", "check_freemail_replyto",
    "check_freemail_body", "check_from_in_welcomelist", "check_from_in_whitelist",
    "check_from_in_blocklist", "check_from_in_blacklist", "check_to_in_welcomelist",
    "check_to_in_whitelist", "check_to_in_blocklist", "check_to_in_blacklist",
    "check_to_in_more_spam", "check_to_in_all_spam", "check_from_in_list", "check_to_in_list",
    "check_replyto_in_list", "check_uri_host_listed", "check_uri_host_in_blocklist",
    "check_uri_host_in_blacklist", "check_uri_host_in_welcomelist",
    "check_uri_host_in_whitelist", "check_for_matching_env_and_hdr_from",
    "check_ratware_envelope_from", "sorted_recipients", "similar_recipients",
}

DATE = "Date: Mon, 07 Dec 2026 09:59:00 +0000\n"


def m(frm: str, to: str = "Bob <bob@example.net>", extra: str = "", rp: str | None = None,
      body: str = "Hello Bob,\n\nthe minutes are attached.\n", n: int = 0) -> bytes:
    rp_line = f"Return-Path: <{rp}>\n" if rp is not None else ""
    return _msg(rp_line + "Received: from mail.example.org (mail.example.org [192.0.2.10])\n"
                "\tby mx.example.net (Postfix) with ESMTP id 4711;\n"
                "\tMon, 07 Dec 2026 10:00:00 +0000\n"
                f"From: {frm}\nTo: {to}\n{extra}Subject: Minutes of the meeting\n{DATE}"
                f"Message-ID: <20261207100000.{4800 + n}@mail.example.org>\n", body)


MESSAGES = {
    # FreeMail
    "fm_from_replyto": (m("Joe <joe1@gmail.com>", extra="Reply-To: ann@yahoo.com\n",
                          rp="joe1@gmail.com", n=1),
                        {"FREEMAIL_FROM", "__freemail_replyto", "__freemail_reply",
                         "__freemail_hdr_replyto", "FREEMAIL_ENVFROM_END_DIGIT"}),
    "fm_reply_body": (m("Joe <joe@gmail.com>", rp="joe@gmail.com", n=2,
                        body="Hello Bob,\n\nanswer to ann.smith@yahoo.com please.\n"),
                      {"FREEMAIL_FROM", "__freemail_reply"}),
    "fm_replyto_body": (m("Alice <alice@example.org>", extra="Reply-To: ann@yahoo.com\n",
                          rp="alice@example.org", n=3,
                          body="Hello Bob,\n\nor write to carl@hotmail.com today.\n"),
                        {"__freemail_replyto", "__freemail_hdr_replyto"}),
    "fm_replyto_digit": (m("Alice <alice@example.org>", extra="Reply-To: ann77@yahoo.com\n",
                           rp="alice@example.org", n=4),
                         {"__freemail_hdr_replyto", "FREEMAIL_REPLYTO_END_DIGIT"}),
    "fm_welcomelisted": (m("Support <support@gmail.com>", rp="support@gmail.com", n=5), set()),
    "fm_body_over_max": (m("Joe <joe@gmail.com>", rp="joe@gmail.com", n=6,
                           body="a@yahoo.com b@example.com c@example.net d@example.org "
                                "e@example.com\n"),
                         {"FREEMAIL_FROM"}),
    "fm_bulk_envfrom": (m("Joe <joe@gmail.com>", extra="Reply-To: ann@yahoo.com\n",
                          rp="bounce-12345@lists.example.com", n=7),
                        {"FREEMAIL_FROM", "__freemail_hdr_replyto"}),
    "fm_wrote": (m("Joe <joe@gmail.com>", rp="joe@gmail.com", n=8,
                   body="ann@yahoo.com wrote:\n> see http://x.example.com/?u=carl@hotmail.com\n"),
                 {"FREEMAIL_FROM"}),
    "fm_dispto": (m("Alice <alice@example.org>", rp="alice@example.org", n=9,
                    extra="Disposition-Notification-To: dn@yahoo.com\n"),
                  {"__FREEMAIL_DISPTO"}),
    # WLBLEval over the local file and the shipped lists
    "wl_from": (m("Friend <friend@example.org>", rp="friend@example.org", n=10),
                {"USER_IN_WELCOMELIST"}),
    "wl_from_wildcard": (m("A <a@trusted.example.com>", rp="a@trusted.example.com", n=11),
                         {"USER_IN_WELCOMELIST"}),
    "wl_envelope": (m("A <a@other.example.com>", rp="friend@example.org", n=12),
                    {"USER_IN_WELCOMELIST"}),
    "bl_from": (m("X <x@spammer.example.com>", rp="x@spammer.example.com", n=13),
                {"USER_IN_BLOCKLIST"}),
    "wl_to": (m("Alice <alice@example.org>", to="VIP <VIP@example.net>", rp="alice@example.org",
                n=14), {"USER_IN_WELCOMELIST_TO"}),
    "more_spam_cc": (m("Alice <alice@example.org>", extra="Cc: more@example.net\n",
                       rp="alice@example.org", n=15), {"USER_IN_MORE_SPAM_TO"}),
    "all_spam_to": (m("Alice <alice@example.org>", to="all@example.net", rp="alice@example.org",
                      n=16), {"USER_IN_ALL_SPAM_TO"}),
    "bl_to": (m("Alice <alice@example.org>", to="x@blocked.example.com", rp="alice@example.org",
                n=17), {"USER_IN_BLOCKLIST_TO"}),
    "rcvd_for": (_msg("Return-Path: <alice@example.org>\n"
                      "Received: from mail.example.org (mail.example.org [192.0.2.10])\n"
                      "\tby mx.example.net (Postfix) with ESMTP id 4712\n"
                      "\tfor <vip@example.net>; Mon, 07 Dec 2026 10:00:00 +0000\n"
                      "From: Alice <alice@example.org>\nTo: undisclosed-recipients:;\n"
                      "Subject: Minutes\n" + DATE +
                      "Message-ID: <20261207100000.4818@mail.example.org>\n"),
                 {"USER_IN_WELCOMELIST_TO"}),
    "paypal": (m("PayPal <service@paypal.com>", rp="service@paypal.com", n=19),
               {"__FROM_ADDRLIST_PAYPAL"}),
    "susp_ntld": (m("Shop <news@shop.example.top>", rp="news@shop.example.top", n=20,
                    extra="Reply-To: sales@mail.example.icu\n"),
                  {"__FROM_ADDRLIST_SUSPNTLD", "__REPLYTO_ADDRLIST_SUSPNTLD"}),
    "uri_hosts": (m("Alice <alice@example.org>", rp="alice@example.org", n=21,
                    body="Hello Bob,\n\nsee http://www.evil.example.com/x and\n"
                         "https://nice.example.org/ and http://cheap.example.top/deal\n"),
                  {"URI_HOST_IN_BLOCKLIST", "URI_HOST_IN_WELCOMELIST", "PDS_OTHER_BAD_TLD"}),
    "uri_excepted": (m("Alice <alice@example.org>", rp="alice@example.org", n=22,
                       body="Hello Bob,\n\nsee http://www.good.top/ only\n"), set()),
    # HeaderEval's envelope and recipient tests
    "sorted_recips": (m("Alice <alice@example.org>", rp="alice@example.org", n=23,
                        to="aa1@mx.example.com, aa2@mx.example.com, aa3@mx.example.com",
                        extra="Cc: aa4@mx.example.com, aa5@mx.example.com, aa6@mx.example.com,"
                              " aa7@mx.example.com\n"),
                      {"SORTED_RECIPS", "SUSPICIOUS_RECIPS"}),
    "ratware_efrom": (m("Alice <alice@example.org>", to="bob@mail.example.net", n=24,
                        rp="example.net.bob@sender.example.com"), {"RATWARE_EFROM"}),
    "env_differs": (m("Alice <alice@example.org>", rp="other@example.org", n=25), set()),
}
TARGETS = set().union(*(want for _, want in MESSAGES.values())) | {"__ENV_AND_HDR_FROM_MATCH"}
# the messages whose EnvelopeFrom (their Return-Path) is not their From address
ENV_OTHER = {"env_differs", "fm_bulk_envfrom", "wl_envelope", "ratware_efrom"}
ENV_MATCH = set(MESSAGES) - ENV_OTHER


@pytest.fixture(scope="module")
def lint() -> str:
    return lint_list()


@pytest.fixture(scope="module")
def local_cf(tmp_path_factory) -> tuple[Path, Path]:
    """The lists file, and a site folder for spamassassin: the site's files linked, and it."""
    cf, site = local_site(tmp_path_factory, "zz_lists", LOCAL_CF)
    return cf, site


@pytest.fixture(scope="module")
def eval_rules(tmp_path_factory, local_cf) -> dict[str, str]:
    """The eval rules of these functions smtpgate loads with the lists file: name -> function."""
    cf, _ = local_cf
    from sa_diff import tool
    p = tool("lint", "--sa", "--list", "--sa-local", cf)
    assert p.returncode == 0, p.stdout + p.stderr
    return {r: f for r, f in re.findall(r"^rule (\w+) eval (\w+)\t", p.stdout, re.M)
            if f in FUNCTIONS}


@pytest.fixture(scope="module")
def both(tmp_path_factory, local_cf):
    cf, site = local_cf
    return both_hits({name: m for name, (m, _) in MESSAGES.items()}, tmp_path_factory,
                     sa_args=(f"--siteconfigpath={site}",), gate_args=("--sa-local", cf))


def test_lint_names_the_list_functions(lint, eval_rules):
    done = dict((f, int(n)) for n, f in
                re.findall(r"^eval function implemented (\d+): (\w+) ", lint, re.M))
    missing = set(re.findall(r"^eval function not implemented \d+: (\w+) ", lint, re.M))
    for fn in ("check_freemail_from", "check_freemail_header", "check_freemail_replyto",
               "check_from_in_welcomelist", "check_from_in_blocklist", "check_to_in_welcomelist",
               "check_to_in_blocklist", "check_to_in_more_spam", "check_to_in_all_spam",
               "check_from_in_list", "check_replyto_in_list", "check_uri_host_listed",
               "check_uri_host_in_blocklist", "check_uri_host_in_welcomelist",
               "check_for_matching_env_and_hdr_from", "check_ratware_envelope_from",
               "sorted_recipients", "similar_recipients"):
        assert fn in done and fn not in missing, fn
    assert done["check_freemail_header"] == 6
    assert done["check_from_in_list"] == 4
    # the tests over the relays of the Received chain too (test_sa_rcvdwl.py)
    for fn in ("check_from_in_default_welcomelist", "check_mailfrom_matches_rcvd"):
        assert fn in done and fn not in missing, fn
    # the plugins load: their rules are not skipped as plugins not emulated
    assert "Plugin::WLBLEval is not emulated" not in lint
    assert "Plugin::FreeMail is not emulated" not in lint
    # the list settings are read, not ignored
    for setting in ("freemail_domains", "def_welcomelist_auth", "util_rb_tld", "util_rb_2tld",
                    "enlist_addrlist"):
        assert not re.search(rf"^ignored setting \d+: {setting}$", lint, re.M), setting
    assert TARGETS <= set(eval_rules), TARGETS - set(eval_rules)


@pytest.mark.time_limit(400)
def test_same_list_hits_as_spamassassin(both, eval_rules):
    pairs = {name: (sa, sg) for name, (sa, sg) in both.items()}
    out, agree = disagreements(pairs, set(eval_rules), "list eval")
    wrong = []
    for name, (_, want) in MESSAGES.items():
        want = want | ({"__ENV_AND_HDR_FROM_MATCH"} if name in ENV_MATCH else set())
        for who, hits in zip(("spamassassin", "smtpgate"), both[name]):
            if TARGETS & hits != want:
                wrong.append((name, who, sorted(TARGETS & hits), sorted(want)))
    assert wrong == []
    assert out == []
    assert agree == len(eval_rules) * len(MESSAGES)
