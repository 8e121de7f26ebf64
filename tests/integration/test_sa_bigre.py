"""SpamAssassin's form rules whose patterns PCRE2 finds too large (72_active.cf's
__FILL_THIS_FORM_* as ReplaceTags expands them) loaded through their rewrite with subroutine
calls (rules/sa_bigre.c), against Debian's `spamassassin -L -t` on messages written for this
test: a numbered five-item form, an unnumbered one, a three-item one, a loan application, a
bank-details request and a mail that asks for nothing.

Every one of the eight patterns must load now and lint must name no pattern as too large;
over every FILL_THIS_FORM rule smtpgate loaded (the metas over them too) the two agree on
every message (the agreement counts are printed, the disagreements listed), and each message
hits in SpamAssassin the rules it was written for, so that agreement is not that of silence.

The rules are read where the package puts them and never copied here.
"""

from __future__ import annotations

import pytest

from sa_diff import disagreements, gate_run, lint_list, needs_spamassassin, rule_types, sa_run
from sa_diff import msg as _msg
from sa_diff import tool

pytestmark = needs_spamassassin

BIG = {f"__FILL_THIS_FORM_{n}" for n in
       ("LONG1", "LONG2", "SHORT1", "SHORT2", "PARTIAL", "PARTIAL_RAW", "FRAUD_PHISH1", "LOAN1")}

_seq = iter(range(7100, 7200))


def msg(subject: str, body: str) -> bytes:
    n = next(_seq)
    return _msg("Received: from mx.far.example (mx.far.example [198.51.100.7])\n"
                f"\tby mx.mine.example (Postfix) with ESMTP id {n};\n"
                "\tMon, 07 Dec 2026 10:00:00 +0000\n"
                "From: Mr. Smith <smith@far.example>\nTo: Me <me@mine.example>\n"
                f"Subject: {subject}\nDate: Mon, 07 Dec 2026 10:00:00 +0000\n"
                f"Message-ID: <20261207100000.{n}@mx.far.example>\n", body)


MESSAGES = {
    "numbered": msg("Claim your funds", "Dear friend,\n\nfill in and return:\n\n"
                    "1. Your full name: ____________\n2. Your address: ____________\n"
                    "3. Your phone number: ________\n4. Your age: ________\n"
                    "5. Your occupation: _______\n\nRegards\n"),
    "unnumbered": msg("Claim your funds", "Dear friend,\n\nsend me your name, your address, "
                      "your telephone, your sex, your country, your bank name.\n\nRegards\n"),
    "three": msg("Claim your funds", "Dear friend,\n\n1. Name: ____ 2. Address: ____ "
                 "3. Phone: ____\n\nRegards\n"),
    "loan": msg("Loan offer", "Dear applicant,\n\nfor the loan we need:\n\n"
                "Your monthly income: ______\nThe amount needed: ______\n"
                "Loan duration: ______\n\nRegards\n"),
    "bank": msg("Transfer", "Dear friend,\n\nto release the transfer send:\n\n"
                "Your bank name: .........\nYour account number: .........\n"
                "Your swift code: .........\n\nRegards\n"),
    "nothing": msg("Minutes", "Hello Bob,\n\nplease send your comments on the minutes and "
                   "the address list to the office by Friday.\n\nRegards\n"),
}

# what SpamAssassin hits, among the big ones, on each message (checked: not vacuous)
WANT = {
    "numbered": {"__FILL_THIS_FORM_LONG1", "__FILL_THIS_FORM_SHORT1", "__FILL_THIS_FORM_PARTIAL",
                 "__FILL_THIS_FORM_PARTIAL_RAW", "__FILL_THIS_FORM_LOAN1"},
    "unnumbered": {"__FILL_THIS_FORM_LONG2", "__FILL_THIS_FORM_SHORT2",
                   "__FILL_THIS_FORM_FRAUD_PHISH1"},
    "three": {"__FILL_THIS_FORM_SHORT1", "__FILL_THIS_FORM_PARTIAL",
              "__FILL_THIS_FORM_PARTIAL_RAW"},
    "loan": {"__FILL_THIS_FORM_LOAN1", "__FILL_THIS_FORM_SHORT2", "__FILL_THIS_FORM_PARTIAL",
             "__FILL_THIS_FORM_PARTIAL_RAW"},
    "bank": {"__FILL_THIS_FORM_FRAUD_PHISH1", "__FILL_THIS_FORM_SHORT2",
             "__FILL_THIS_FORM_PARTIAL", "__FILL_THIS_FORM_PARTIAL_RAW"},
    "nothing": set(),
}


@pytest.fixture(scope="module")
def loaded() -> set[str]:
    return {r for r in rule_types(lint_list()) if "FILL_THIS_FORM" in r}


@pytest.fixture(scope="module")
def pairs(tmp_path_factory) -> dict[str, tuple[set[str], set[str]]]:
    home = tmp_path_factory.mktemp("sa-home")
    work = tmp_path_factory.mktemp("msgs")
    return {name: (sa_run(m, home, "rules").hits, gate_run(m, work / f"{name}.eml").hits)
            for name, m in MESSAGES.items()}


def test_big_patterns_load(loaded):
    assert BIG <= loaded, sorted(BIG - loaded)
    lint = tool("lint", "--sa")
    assert lint.returncode == 0, lint.stdout + lint.stderr
    assert "too large" not in lint.stdout + lint.stderr
    assert "__FILL_THIS_FORM" not in lint.stdout + lint.stderr


def test_spamassassin_hits_what_each_message_is_for(pairs):
    got = {name: sa & BIG for name, (sa, _) in pairs.items()}
    assert got == WANT


def test_no_disagreement(pairs, loaded):
    out, agree = disagreements(pairs, loaded)
    assert out == []
    assert agree == len(loaded) * len(MESSAGES)
