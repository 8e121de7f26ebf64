"""SpamAssassin's VBounce plugin run natively (rules/sa_eval_vbounce.c over the
welcomelist_bounce_relays list of rules/sa_lists.c), against Debian's `spamassassin -L -t` on
messages written for this test: bounces of mail that passed the admin's relays (a DSN with
message/delivery-status and message/rfc822 or text/rfc822-headers, text bounces quoting the
original Received field, plain or with "> ", a challenge-response request, a virus notice),
the same kinds as forged backscatter, an out-of-office reply and a normal mail, and the edges
of VBounce's word rules (one blank between two hosts, the last host of a folded field in a
message with LF line ends).  The relays are named under both names of the setting, one of
them a glob.

Both read the same admin file naming the relays: smtpgate with --sa-local, spamassassin as one
of its site files (--siteconfigpath naming a folder holding the site's own files, linked, and
this one).  Every rule of VBounce's rule file must load in smtpgate; over all of them the two
agree on every message (the agreement counts are printed, the disagreements listed), and each
message hits the bounce rules it was written for in both.  Without the file (no relay listed,
as shipped) a few of the messages are run again: the same agreement, and BOUNCE_MESSAGE never
fires.

The rules are read where the package puts them and never copied here.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from sa_diff import disagreements, gate_run, lint_list, local_site, needs_spamassassin, sa_run, tool
from sa_diff import msg as _msg

pytestmark = needs_spamassassin

VBOUNCE_CF = Path("/usr/share/spamassassin/20_vbounce.cf")
# the old name of the setting, and a glob, too
LOCAL_CF = ("welcomelist_bounce_relays relay.mine.example\n"
            "whitelist_bounce_relays *.out.mine.example\n")

# the rules each message is written for, among these
BOUNCE_RULES = {"BOUNCE_MESSAGE", "CRBOUNCE_MESSAGE", "VBOUNCE_MESSAGE", "OOOBOUNCE_MESSAGE",
                "ANY_BOUNCE_MESSAGE", "CHALLENGE_RESPONSE", "__MY_SERVERS_FOUND"}

OWN_RCVD = ("Received: from laptop.mine.example (laptop.mine.example [192.0.2.77])\n"
            "\tby relay.mine.example (Postfix) with ESMTPSA id 7A1;\n"
            "\tMon, 07 Dec 2026 09:58:00 +0000\n")
FORGED_RCVD = ("Received: from bot.spam.example (bot.spam.example [203.0.113.66])\n"
               "\tby mx.far.example (Postfix) with SMTP id 6B2;\n"
               "\tMon, 07 Dec 2026 09:58:00 +0000\n")

_seq = iter(range(6100, 6200))


def head(frm: str, subject: str, extra: str = "", rp: str = "<>") -> str:
    n = next(_seq)
    return (f"Return-Path: {rp}\n"
            "Received: from mx.far.example (mx.far.example [198.51.100.7])\n"
            f"\tby mx.mine.example (Postfix) with ESMTP id {n};\n"
            "\tMon, 07 Dec 2026 10:00:00 +0000\n"
            f"From: {frm}\nTo: Me <me@mine.example>\nSubject: {subject}\n"
            "Date: Mon, 07 Dec 2026 10:00:00 +0000\n"
            f"Message-ID: <20261207100000.{n}@mx.far.example>\n{extra}")


def dsn(rcvd: str, crlf: bool = True, part: str = "message/rfc822") -> bytes:
    h = head("Mail Delivery System <MAILER-DAEMON@mx.far.example>",
             "Undelivered Mail Returned to Sender",
             "MIME-Version: 1.0\nContent-Type: multipart/report; report-type=delivery-status;\n"
             "\tboundary=\"DSN1\"\n")
    body = ("This is a MIME-encapsulated message.\n\n--DSN1\nContent-Type: text/plain\n\n"
            "I'm sorry to have to inform you that your message could not\n"
            "be delivered to one or more recipients.\n\n"
            "--DSN1\nContent-Type: message/delivery-status\n\n"
            "Reporting-MTA: dns; mx.far.example\n\n"
            "Final-Recipient: rfc822; nobody@far.example\nAction: failed\nStatus: 5.1.1\n\n"
            f"--DSN1\nContent-Type: {part}\n\n"
            f"{rcvd}From: Me <me@mine.example>\nTo: nobody@far.example\n"
            "Subject: the minutes\n\nthe minutes are attached\n\n--DSN1--\n")
    if crlf:
        return _msg(h, body)
    return (h + "\n" + body).encode("latin-1")


def text_bounce(quoted: str, subject: str = "Mail delivery failed: returning message to sender",
                frm: str = "Mail Delivery System <Mailer-Daemon@mx.far.example>") -> bytes:
    return _msg(head(frm, subject),
                "This message was created automatically by mail delivery software.\n\n"
                "A message that you sent could not be delivered to one or more of its\n"
                "recipients. This is a permanent error.\n\n"
                "------ This is a copy of the message, including all the headers. ------\n\n"
                f"{quoted}From: Me <me@mine.example>\nSubject: the minutes\n\n"
                "the minutes are attached\n")


MESSAGES = {
    "dsn_own": (dsn(OWN_RCVD), {"__MY_SERVERS_FOUND"}),
    "dsn_forged": (dsn(FORGED_RCVD), {"BOUNCE_MESSAGE", "ANY_BOUNCE_MESSAGE"}),
    "text_own": (text_bounce(OWN_RCVD), {"__MY_SERVERS_FOUND"}),
    "text_forged": (text_bounce(FORGED_RCVD), {"BOUNCE_MESSAGE", "ANY_BOUNCE_MESSAGE"}),
    # quoted with "> ", through a host of the glob, written in upper case
    "quoted_glob": (text_bounce("".join("> " + ln + "\n" for ln in OWN_RCVD.replace(
        "relay.mine.example", "SMTP2.OUT.MINE.EXAMPLE").splitlines())), {"__MY_SERVERS_FOUND"}),
    # the returned header alone, as text/rfc822-headers
    "dsn_headers_own": (dsn(OWN_RCVD, part="text/rfc822-headers"), {"__MY_SERVERS_FOUND"}),
    # one blank between the two hosts: VBounce's /g has used it up, the relay is not read
    "one_blank": (text_bounce("Received: from bot.spam.example relay.mine.example (x)\n"
                              "\tby mx.far.example; Mon, 07 Dec 2026 09:58:00 +0000\n"),
                  {"BOUNCE_MESSAGE", "ANY_BOUNCE_MESSAGE"}),
    # LF line ends: the relay ends its folded field, no whitespace follows it
    "lf_last_host": (dsn("Received: from laptop (unknown [192.0.2.77])\n"
                         "\tby relay.mine.example\n", crlf=False),
                     {"BOUNCE_MESSAGE", "ANY_BOUNCE_MESSAGE"}),
    "cr_own": (_msg(head("Spam Filter <verify@cr.far.example>",
                         "Please Verify Your Email Address", rp="<verify@cr.far.example>"),
                    "Your message is held until you confirm you are a person.\n\n"
                    f"{OWN_RCVD}Subject: the minutes\n"),
               {"__MY_SERVERS_FOUND", "CHALLENGE_RESPONSE"}),
    "cr_forged": (_msg(head("Spam Filter <verify@cr.far.example>",
                            "Please Verify Your Email Address", rp="<verify@cr.far.example>"),
                       "Your message is held until you confirm you are a person.\n"),
                  {"CRBOUNCE_MESSAGE", "ANY_BOUNCE_MESSAGE"}),
    "virus_forged": (text_bounce(FORGED_RCVD, "Virus detected in a message from you",
                                 "Mail Scanner <scanner@av.far.example>"),
                     {"VBOUNCE_MESSAGE", "BOUNCE_MESSAGE", "ANY_BOUNCE_MESSAGE"}),
    "virus_own": (text_bounce(OWN_RCVD, "Virus detected in a message from you",
                              "Mail Scanner <scanner@av.far.example>"),
                  {"__MY_SERVERS_FOUND"}),
    "ooo": (_msg(head("Bob <bob@far.example>", "Out Of Office: the minutes",
                      "Auto-Submitted: auto-replied\n", rp="<bob@far.example>"),
                 "I am currently out of the office until Monday.\n"),
            {"OOOBOUNCE_MESSAGE", "ANY_BOUNCE_MESSAGE"}),
    "normal": (_msg(head("Bob <bob@far.example>", "your relay", rp="<bob@far.example>"),
                    "Hello,\n\nrelay.mine.example answered slowly today, nothing else.\n"),
               set()),
}
# run again without the relay file: name -> what they hit then
WITHOUT = {
    "dsn_own": set(),
    "dsn_forged": set(),
    "cr_own": {"CRBOUNCE_MESSAGE", "ANY_BOUNCE_MESSAGE"},
    "virus_own": {"VBOUNCE_MESSAGE", "ANY_BOUNCE_MESSAGE"},
    "ooo": {"OOOBOUNCE_MESSAGE", "ANY_BOUNCE_MESSAGE"},
}


def vbounce_rules() -> set[str]:
    """Every rule VBounce's rule file defines, read where the package puts it."""
    text = VBOUNCE_CF.read_text(encoding="latin-1")
    return set(re.findall(r"^\s*(?:header|body|rawbody|uri|full|meta)\s+(\w+)", text, re.M))


@pytest.fixture(scope="module")
def local_cf(tmp_path_factory) -> tuple[Path, Path]:
    """The relay file, and a site folder for spamassassin: the site's files linked, and it."""
    cf, site = local_site(tmp_path_factory, "zz_vbounce", LOCAL_CF)
    return cf, site


@pytest.fixture(scope="module")
def loaded(local_cf) -> set[str]:
    cf, _ = local_cf
    p = tool("lint", "--sa", "--list", "--sa-local", cf)
    assert p.returncode == 0, p.stdout + p.stderr
    return set(re.findall(r"^rule (\S+) ", p.stdout, re.M))


@pytest.fixture(scope="module")
def both(tmp_path_factory, local_cf):
    cf, site = local_cf
    home = tmp_path_factory.mktemp("sa-home")
    work = tmp_path_factory.mktemp("msgs")
    return {name: (sa_run(msg, home, "rules", args=(f"--siteconfigpath={site}",)).hits,
                   gate_run(msg, work / f"{name}.eml", "--sa-local", cf).hits)
            for name, (msg, _) in MESSAGES.items()}


@pytest.fixture(scope="module")
def both_without(tmp_path_factory):
    home = tmp_path_factory.mktemp("sa-home-plain")
    work = tmp_path_factory.mktemp("msgs-plain")
    return {name: (sa_run(MESSAGES[name][0], home, "rules").hits,
                   gate_run(MESSAGES[name][0], work / f"{name}.eml").hits)
            for name in WITHOUT}


def test_every_vbounce_rule_loads(loaded):
    lint = lint_list()
    names = vbounce_rules()
    assert len(names) == 176
    assert names <= loaded, sorted(names - loaded)
    assert "Plugin::VBounce is not emulated" not in lint
    for fn in ("check_welcomelist_bounce_relays", "have_any_bounce_relays"):
        assert re.search(rf"^eval function implemented 1: {fn} \(", lint, re.M), fn
        assert not re.search(rf"^eval function not implemented \d+: {fn} ", lint, re.M), fn
    # the other name sits in the branch for SpamAssassin before 4.0: implemented, not lacking
    assert not re.search(r"^eval function not implemented \d+: check_whitelist_bounce_relays ",
                         lint, re.M)
    # the setting is read, under both names
    p = tool("lint", "--sa")
    assert not re.search(r"^ignored setting \d+: (?:welcome|white)list_bounce_relays$",
                         p.stdout, re.M)


def _check(pairs, expected, rules):
    out, agree = disagreements(pairs, rules, "vbounce")
    wrong = []
    for name, want in expected.items():
        for who, hits in zip(("spamassassin", "smtpgate"), pairs[name]):
            if BOUNCE_RULES & hits != want:
                wrong.append((name, who, sorted(BOUNCE_RULES & hits), sorted(want)))
    assert wrong == []
    assert out == []
    assert agree == len(rules) * len(pairs)


@pytest.mark.time_limit(400)
def test_same_vbounce_hits_as_spamassassin(both, loaded):
    _check(both, {name: want for name, (_, want) in MESSAGES.items()}, vbounce_rules() & loaded)


@pytest.mark.time_limit(300)
def test_without_relays_as_spamassassin(both_without, loaded):
    _check(both_without, WITHOUT, vbounce_rules() & loaded)
    for name, (sa, sg) in both_without.items():
        assert "__HAVE_BOUNCE_RELAYS" not in sa | sg, name
