"""SpamAssassin's eval tests that smtpgate runs natively (rules/sa_eval*.c), against Debian's
`spamassassin -L -t` on messages written for this test, one or more per function: for every
eval rule smtpgate loads and SpamAssassin scores, the same hit or miss on every message (the
disagreements are listed; there must be none), and each message hits the rules it was written
for in both.  lint names the functions implemented apart from those that are not.

The rules are read where the package puts them and never copied here.
"""

from __future__ import annotations

import re

import pytest

from sa_diff import both_hits, lint_list, loaded_evals, needs_spamassassin
from sa_diff import msg as _msg

pytestmark = needs_spamassassin


RCVD = ("Received: from mail.example.org (mail.example.org [192.0.2.10])\n"
        "\tby mx.example.net (Postfix) with ESMTP id 4711;\n"
        "\tMon, 07 Dec 2026 10:00:00 +0000\n")
BASE = ("From: Alice Example <alice@example.org>\nTo: Bob <bob@example.net>\n"
        "Subject: Minutes of the meeting\n"
        "Message-ID: <20261207100000.4711@mail.example.org>\n")


def dated(date: str, extra: str = "") -> bytes:
    return _msg(RCVD + BASE + f"Date: {date}\n" + extra)


MESSAGES = {
    "plain": (dated("Mon, 07 Dec 2026 09:59:00 +0000"), set()),
    "no_to": (_msg(RCVD + "From: Alice <alice@example.org>\nSubject: hi\n"
                   "Date: Mon, 07 Dec 2026 09:59:00 +0000\n"
                   "Message-ID: <20261207100000.4712@mail.example.org>\n"), {"MISSING_HEADERS"}),
    "past_03_06": (dated("Mon, 07 Dec 2026 05:30:00 +0000"), {"DATE_IN_PAST_03_06"}),
    "past_06_12": (dated("Mon, 07 Dec 2026 01:00:00 +0000"), {"DATE_IN_PAST_06_12"}),
    "past_24_48": (dated("Sat, 05 Dec 2026 23:00:00 +0000"), {"DATE_IN_PAST_24_48"}),
    "past_96_xx": (dated("Tue, 01 Dec 2026 10:00:00 +0000"), {"DATE_IN_PAST_96_XX"}),
    "future_03_06": (dated("Mon, 07 Dec 2026 14:00:00 +0000"), {"DATE_IN_FUTURE_03_06"}),
    "future_06_12": (dated("Mon, 07 Dec 2026 12:00:00 -0500"), {"DATE_IN_FUTURE_06_12"}),
    "future_12_24": (dated("Tue, 08 Dec 2026 05:00:00 +0000"), {"DATE_IN_FUTURE_12_24"}),
    "future_24_48": (dated("Wed, 09 Dec 2026 01:00:00 +0000"), {"DATE_IN_FUTURE_24_48"}),
    "future_48_96": (dated("Thu, 10 Dec 2026 10:00:00 +0000"), {"DATE_IN_FUTURE_48_96"}),
    "zone_name": (dated("Mon, 7 Dec 2026 10:30:00 PST"), {"DATE_IN_FUTURE_06_12"}),
    "resent_date": (dated("Mon, 07 Dec 2026 09:59:00 +0000",
                          "Resent-Date: Mon, 07 Dec 2026 05:30:00 +0000\n"),
                    {"DATE_IN_PAST_03_06"}),
    "outlook_bad": (_msg(RCVD + "From: Alice <alice@example.org>\nTo: bob@example.net\n"
                         "Subject: hi\nDate: Mon, 07 Dec 2026 09:59:00 +0000\n"
                         "Message-ID: <00001234abcd$01234567$89abcdef@example.org>\n"),
                    {"MSGID_OUTLOOK_INVALID"}),
    "outlook_good": (_msg(RCVD + "From: Alice <alice@example.org>\nTo: bob@example.net\n"
                          "Subject: hi\nDate: Mon, 07 Dec 2026 09:59:00 +0000\n"
                          "Message-ID: <000001dd8631$01234567$89abcdef@example.org>\n"), set()),
    "from_8bit": (_msg(RCVD + "From: \"\xe9\xe8\xe0\xe9\xe8\xe0\" <x@example.org>\n"
                       "To: bob@example.net\nSubject: hi\n"
                       "Date: Mon, 07 Dec 2026 09:59:00 +0000\n"
                       "Message-ID: <20261207100000.4713@mail.example.org>\n"),
                  {"FROM_ILLEGAL_CHARS"}),
    "from_utf8": (_msg(RCVD + "From: \"\xc3\xa9\xc3\xa8\xc3\xa0\xc3\xa9\" <x@example.org>\n"
                       "To: bob@example.net\nSubject: hi\n"
                       "Date: Mon, 07 Dec 2026 09:59:00 +0000\n"
                       "Message-ID: <20261207100000.4714@mail.example.org>\n"), set()),
    "all_caps": (_msg(RCVD + "From: Alice <alice@example.org>\nTo: bob@example.net\n"
                      "Subject: BUY CHEAP WATCHES NOW\nDate: Mon, 07 Dec 2026 09:59:00 +0000\n"
                      "Message-ID: <20261207100000.4715@mail.example.org>\n"), {"SUBJ_ALL_CAPS"}),
    "re_caps": (_msg(RCVD + "From: Alice <alice@example.org>\nTo: bob@example.net\n"
                     "Subject: Re: Fwd: MEETING AT NOON\nDate: Mon, 07 Dec 2026 09:59:00 +0000\n"
                     "Message-ID: <20261207100000.4716@mail.example.org>\n"), {"SUBJ_ALL_CAPS"}),
    "caps_koi8": (_msg(RCVD + "From: Alice <alice@example.org>\nTo: bob@example.net\n"
                       "Subject: =?koi8-r?Q?HELLO_THERE?= FRIEND\n"
                       "Date: Mon, 07 Dec 2026 09:59:00 +0000\n"
                       "Message-ID: <20261207100000.4717@mail.example.org>\n"), set()),
    "caps_one_word": (_msg(RCVD + "From: Alice <alice@example.org>\nTo: bob@example.net\n"
                           "Subject: ANNOUNCEMENTS\nDate: Mon, 07 Dec 2026 09:59:00 +0000\n"
                           "Message-ID: <20261207100000.4718@mail.example.org>\n"), set()),
    "localpart": (_msg(RCVD + "From: Alice <alice@example.org>\nTo: Bob <bob@example.net>\n"
                       "Subject: bob, your invoice\nDate: Mon, 07 Dec 2026 09:59:00 +0000\n"
                       "Message-ID: <20261207100000.4719@mail.example.org>\n"),
                  {"LOCALPART_IN_SUBJECT"}),
    "localpart_re": (_msg(RCVD + "From: Alice <alice@example.org>\nTo: Bob <bob@example.net>\n"
                          "Subject: Re: hello bob\nDate: Mon, 07 Dec 2026 09:59:00 +0000\n"
                          "Message-ID: <20261207100000.4720@mail.example.org>\n"),
                     {"LOCALPART_IN_SUBJECT"}),
    "template": (dated("Mon, 07 Dec 2026 09:59:00 +0000", "X-Mailer: %MAILER_NAME 2.0\n"),
                 {"UNRESOLVED_TEMPLATE"}),
    "template_subject": (_msg(RCVD + "From: Alice <alice@example.org>\nTo: bob@example.net\n"
                              "Subject: 100%CERTAIN\nDate: Mon, 07 Dec 2026 09:59:00 +0000\n"
                              "Message-ID: <20261207100000.4721@mail.example.org>\n"), set()),
    "gmail_forged": (_msg(RCVD + "From: Alice <alice@gmail.com>\nTo: bob@example.net\n"
                          "Subject: hi\nDate: Mon, 07 Dec 2026 09:59:00 +0000\n"
                          "Message-ID: <20261207100000.4722@mail.example.org>\n"),
                     {"FORGED_GMAIL_RCVD"}),
    "gmail_real": (_msg("X-Received: by 10.1.2.3 with SMTP id abc123;\n"
                        "\tMon, 07 Dec 2026 09:59:00 -0800 (PST)\n" + RCVD +
                        "From: Alice <alice@gmail.com>\nTo: bob@example.net\n"
                        "Subject: hi\nDate: Mon, 07 Dec 2026 09:59:00 +0000\n"
                        "Message-ID: <20261207100000.4723@mail.example.org>\n"), set()),
    "ratware_id": (_msg(RCVD + "From: \"Alice\" <alice@example.org>\nTo: bob@example.net\n"
                        "Subject: hi\nDate: Mon, 07 Dec 2026 09:59:00 +0000\n"
                        "Message-ID: <ABCDEFGHIJKLMNOPQRSTUVWXYZAB.alice@example.org>\n"),
                   {"RATWARE_NAME_ID"}),
    # HEADER_FROM_DIFFERENT_DOMAINS: From's last two labels against the Return-Path's
    "envfrom_other": (_msg("Return-Path: <bounce@lists.example.com>\n" + RCVD + BASE +
                           "Date: Mon, 07 Dec 2026 09:59:00 +0000\n"),
                      {"HEADER_FROM_DIFFERENT_DOMAINS"}),
    "envfrom_same_sld": (_msg("Return-Path: <bounce@out.mail.Example.ORG>\n" + RCVD + BASE +
                              "Date: Mon, 07 Dec 2026 09:59:00 +0000\n"), set()),
    "envfrom_null": (_msg("Return-Path: <>\n" + RCVD + BASE +
                          "Date: Mon, 07 Dec 2026 09:59:00 +0000\n"), set()),
    "body_300": (_msg(RCVD + BASE + "Date: Mon, 07 Dec 2026 09:59:00 +0000\n",
                      "Hello Bob,\n" + "the minutes are attached to this message.\n" * 7),
                 set()),
    "body_long": (_msg(RCVD + BASE + "Date: Mon, 07 Dec 2026 09:59:00 +0000\n",
                       "Hello Bob,\n" + "the minutes are attached to this message.\n" * 40),
                  set()),
    # tvd_vertical_words: no element over 5 octets with spaces (the Subject is short)
    "no_spaces": (_msg(RCVD + "From: Alice <alice@example.org>\nTo: bob@example.net\n"
                       "Subject: hi\nDate: Mon, 07 Dec 2026 09:59:00 +0000\n"
                       "Message-ID: <20261207100000.4724@mail.example.org>\n",
                       "Thankyouforthemeeting\n\nAliceExample\n"), {"__TVD_SPACE_RATIO"}),
    "spaced_out": (_msg(RCVD + "From: Alice <alice@example.org>\nTo: bob@example.net\n"
                        "Subject: hi\nDate: Mon, 07 Dec 2026 09:59:00 +0000\n"
                        "Message-ID: <20261207100000.4725@mail.example.org>\n",
                        "F R E E   M O N E Y\n"), set()),
    # check_blank_line_ratio: BLANK_LINES_80_90 has score 0 in both (never run), but the
    # ratio over many blank lines must not make any other eval rule differ
    "blank_lines": (_msg(RCVD + BASE + "Date: Mon, 07 Dec 2026 09:59:00 +0000\n",
                         "Hello\n" + "\n" * 8 + "Bob\n"), set()),
}
TARGETS = set().union(*(want for _, want in MESSAGES.values()))
# check_body_length hits short bodies (most of the above): its rules per message
BODY_LENGTH = {"plain": {128, 256, 512, 1024}, "body_300": {512, 1024}, "body_long": set()}


@pytest.fixture(scope="module")
def lint() -> str:
    return lint_list()


@pytest.fixture(scope="module")
def eval_rules(lint) -> dict[str, str]:
    """The eval rules smtpgate loaded (those without a score too): name -> function."""
    return loaded_evals(lint)


@pytest.fixture(scope="module")
def both(tmp_path_factory):
    return both_hits({name: m for name, (m, _) in MESSAGES.items()}, tmp_path_factory)


def test_lint_names_the_implemented_functions(lint, eval_rules):
    done = dict((f, int(n)) for n, f in
                re.findall(r"^eval function implemented (\d+): (\w+) ", lint, re.M))
    missing = set(re.findall(r"^eval function not implemented \d+: (\w+) ", lint, re.M))
    for fn in ("check_for_missing_to_header", "check_for_shifted_date", "check_illegal_chars",
               "check_outlook_message_id", "check_header_count_range", "subject_is_all_caps",
               "check_for_to_in_subject", "check_unresolved_template",
               "check_for_forged_gmail_received_headers", "check_ratware_name_id",
               "check_equal_from_domains"):
        assert fn in done and fn not in missing, fn
    assert done["check_for_shifted_date"] == 12
    assert "check_uridnsbl" in missing and "check_uridnsbl" not in done
    assert done["check_rbl_sub"] == 48 and "check_rbl_sub" not in missing
    # every function an eval rule loaded uses is one lint says is implemented
    assert set(eval_rules.values()) <= set(done)
    assert TARGETS - {"RATWARE_NAME_ID"} <= set(eval_rules), TARGETS - set(eval_rules)


# spamassassin takes a second or two per message: the fixture runs it on every one
@pytest.mark.time_limit(400)
def test_same_eval_hits_as_spamassassin(both, eval_rules):
    disagreements = []
    for name, (sa, sg) in both.items():
        for rule in sorted(eval_rules):
            if (rule in sa) != (rule in sg):
                disagreements.append(f"{name}: {rule} ({eval_rules[rule]}) hit by "
                                     f"{'spamassassin only' if rule in sa else 'smtpgate only'}")
    print(f"\neval rules compared: {len(eval_rules)}; messages: {len(both)}; "
          f"disagreements: {len(disagreements)}")
    for d in disagreements:
        print("disagreement:", d)
    for name, (msg, want) in MESSAGES.items():
        sa, sg = both[name]
        assert TARGETS & sa == want, (name, "spamassassin", sorted(sa))
        assert TARGETS & sg == want, (name, "smtpgate", sorted(sg))
    for name, sizes in BODY_LENGTH.items():
        want = {f"__KAM_BODY_LENGTH_LT_{n}" for n in sizes}
        for who, hits in zip(("spamassassin", "smtpgate"), both[name]):
            assert {h for h in hits if h.startswith("__KAM_BODY_LENGTH_LT_")} == want, (name, who)
    assert disagreements == []
