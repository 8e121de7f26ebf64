"""SpamAssassin 4's capture templates (feature_capture_rules) in smtpgate's rules engine,
against Debian's `spamassassin -L -t` on messages written for this test.

The shipped rules that use them: __GB_TO_ADDR captures the To address as the tag
GB_TO_ADDR, and six uri rules look for it in a link (%{GB_TO_ADDR}), with the meta
GB_CUSTOM_HTM_URI over four of them.  A small site file of this test's own (smtpgate reads it
with --sa-local, spamassassin as one of its site files) pins the semantics down: a value
with regex metacharacters matched literally, a template rule that does not run when its tag
was never captured (negated or not), several values of a `tflags multiple` rule, the last
rule to capture winning, \\%\\{NAME\\} as literal text (the \\%{NAME} Conf.pm documents is a
pattern Perl refuses, so both skip that rule), a rule whose priority runs it before the
capture, and one that its meta's priority brings down before it, a meta over template rules.
For these rules the two must agree on every message (the agreement counts and any
disagreement are printed), and each message hits exactly the rules it was written for in
both.

The rules are read where the package puts them and never copied here.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from sa_diff import disagreements, gate_run, lint_list, local_site, needs_spamassassin, sa_run, tool
from sa_diff import msg as _msg

pytestmark = needs_spamassassin


LOCAL_CF = r"""
header   __LC_REF        Subject =~ /\bref (?<LC_REF>\S+)/
body     LC_REF_BODY     /confirm %{LC_REF} now/
header   LC_REF_NOT_FROM From !~ /%{LC_REF}/
body     LC_REF_LITERAL  /confirm \%{LC_REF} now/
body     LC_REF_ESCAPED  /confirm \%\{LC_REF\} now/
body     __LC_ITEM       /\bitem (?<LC_ITEM>[a-z]+)/
tflags   __LC_ITEM       multiple
header   LC_ITEM_SUBJ    Subject =~ /\b%{LC_ITEM}\b/
header   __LC_WIN_H      X-Win =~ /(?<LC_WIN>\w+)/
body     __LC_WIN_B      /\bwinner (?<LC_WIN>\w+)/
header   LC_WIN_CHECK    X-Check =~ /^%{LC_WIN}$/
header   LC_EARLY        X-Check =~ /%{LC_WIN}/
priority LC_EARLY        -20000
meta     LC_META         LC_REF_BODY && LC_WIN_CHECK
body     LC_REF_BODY2    /confirm %{LC_REF}/
meta     LC_EARLY_META   LC_REF_BODY2 || __LC_ITEM
priority LC_EARLY_META   -20000
score    LC_REF_BODY     0.1
score    LC_REF_NOT_FROM 0.1
score    LC_REF_LITERAL  0.1
score    LC_REF_ESCAPED  0.1
score    LC_ITEM_SUBJ    0.1
score    LC_WIN_CHECK    0.1
score    LC_EARLY        0.1
score    LC_META         0.1
score    LC_REF_BODY2    0.1
score    LC_EARLY_META   0.1
"""

SHIPPED = {"__GB_TO_ADDR", "__GB_CUSTOM_HTM_URI0", "__GB_CUSTOM_HTM_URI1",
           "__GB_CUSTOM_HTM_URI2", "__GB_DRUPAL_URI", "GB_CUSTOM_HTM_URI",
           "T_GB_STORAGE_GOOGLE_EMAIL", "T_GB_YOUTUBE_EMAIL"}
LOCAL = {"__LC_REF", "LC_REF_BODY", "LC_REF_NOT_FROM", "LC_REF_ESCAPED", "__LC_ITEM",
         "LC_ITEM_SUBJ", "__LC_WIN_H", "__LC_WIN_B", "LC_WIN_CHECK", "LC_EARLY", "LC_META",
         "LC_REF_BODY2", "LC_EARLY_META"}
TARGETS = SHIPPED | LOCAL
# the escape Conf.pm documents, \%{NAME}: Perl refuses the rule for its brace, so both skip it
REFUSED = "LC_REF_LITERAL"

DATE = "Date: Mon, 07 Dec 2026 09:59:00 +0000\n"


def m(body: str, to: str | None = "Bob <bob@example.net>", subject: str = "Minutes",
      extra: str = "", n: int = 0) -> bytes:
    to_line = f"To: {to}\n" if to is not None else ""
    return _msg("Received: from mail.example.org (mail.example.org [192.0.2.10])\n"
                "\tby mx.example.net (Postfix) with ESMTP id 4711;\n"
                "\tMon, 07 Dec 2026 10:00:00 +0000\n"
                f"From: Alice <alice@example.org>\n{to_line}Subject: {subject}\n{extra}{DATE}"
                f"Message-ID: <20261207100000.{5100 + n}@mail.example.org>\n",
                f"Hello Bob,\n\n{body}\n\nAlice\n")


URI0 = {"__GB_TO_ADDR", "__GB_CUSTOM_HTM_URI0", "GB_CUSTOM_HTM_URI"}
MESSAGES = {
    "htm_uri": (m("see https://phish.example.com/login.html#bob@example.net now", n=1), URI0),
    "redirect_uri": (m("see https://redir.example.com/go?u=https://land.example.org/x#"
                       "bob@example.net now", n=2),
                     URI0 | {"__GB_CUSTOM_HTM_URI1"}),
    "email_param": (m("see https://forms.example.com/track/?email=bob@example.net now", n=3),
                    {"__GB_TO_ADDR", "__GB_CUSTOM_HTM_URI2", "GB_CUSTOM_HTM_URI"}),
    "drupal": (m("see https://site.example.com/sites/default/files/#bob@example.net now", n=4),
               URI0 | {"__GB_DRUPAL_URI"}),
    "google_storage": (m("see https://storage.cloud.google.com/bucket/page.html#bob@example.net",
                         n=5), URI0 | {"T_GB_STORAGE_GOOGLE_EMAIL"}),
    "youtube": (m("see https://www.youtube.com/attribution_link?a=abcdefghijklmnopqrst&u=/"
                  "bob@example.net", n=6), {"__GB_TO_ADDR", "T_GB_YOUTUBE_EMAIL"}),
    "other_address": (m("see https://phish.example.com/login.html#carol@example.net now", n=7),
                      {"__GB_TO_ADDR"}),
    # no To field: the rule matches the empty value, which sets no tag
    "no_to": (m("see https://phish.example.com/login.html#bob@example.net now", to=None, n=8),
              {"__GB_TO_ADDR"}),
    "case": (m("see https://phish.example.com/login.html#bob@example.net now",
               to="BOB@Example.NET", n=9), URI0),
    # + is a quantifier unquoted: bob+tag would match bobbtag
    "metachar": (m("see https://phish.example.com/login.html#bobbtag@example.net now",
                   to="Bob <bob+tag@example.net>", n=10), {"__GB_TO_ADDR"}),
    "metachar_literal": (m("see https://phish.example.com/login.html#bob+tag@example.net now",
                           to="Bob <bob+tag@example.net>", n=11), URI0),
    # the site file's rules
    "local_all": (m("please confirm a.b*c(d) now.\nitem pear item apple\nwinner second",
                    subject="ref a.b*c(d) and apple", extra="X-Win: first\nX-Check: second\n",
                    n=12),
                  {"__GB_TO_ADDR", "__LC_REF", "LC_REF_BODY", "LC_REF_NOT_FROM", "__LC_ITEM",
                   "LC_ITEM_SUBJ", "__LC_WIN_H", "__LC_WIN_B", "LC_WIN_CHECK", "LC_META",
                   "LC_EARLY_META"}),
    "local_quoted": (m("please confirm aXbbbcd now.", subject="ref a.b*c(d)",
                       extra="X-Win: first\nX-Check: first\n", n=13),
                     {"__GB_TO_ADDR", "__LC_REF", "LC_REF_NOT_FROM", "__LC_WIN_H",
                      "LC_WIN_CHECK"}),
    "local_none": (m("please confirm a.b*c(d) now.\nconfirm %{LC_REF} now", subject="hello",
                     extra="X-Check: first\n", n=14),
                   {"__GB_TO_ADDR", "LC_REF_ESCAPED"}),
}


@pytest.fixture(scope="module")
def local_cf(tmp_path_factory) -> tuple[Path, Path]:
    """The site file, and a site folder for spamassassin: the site's files linked, and it."""
    cf, site = local_site(tmp_path_factory, "zz_capture", LOCAL_CF)
    return cf, site


@pytest.fixture(scope="module")
def both(tmp_path_factory, local_cf):
    cf, site = local_cf
    home = tmp_path_factory.mktemp("sa-home")
    work = tmp_path_factory.mktemp("msgs")
    return {name: (sa_run(msg, home, "rules", args=(f"--siteconfigpath={site}",)).hits,
                   gate_run(msg, work / f"{name}.eml", "--sa-local", cf).hits)
            for name, (msg, _) in MESSAGES.items()}


def test_lint_loads_the_capture_rules(local_cf):
    lint = lint_list()
    assert "feature_capture_rules" not in lint
    loaded = set(re.findall(r"^rule (\S+) ", lint, re.M))
    assert SHIPPED <= loaded, SHIPPED - loaded
    cf, _ = local_cf
    p = tool("lint", "--sa", "--list", "--sa-local", cf)
    assert p.returncode == 0, p.stdout + p.stderr
    loaded = set(re.findall(r"^rule (\S+) ", p.stdout, re.M))
    assert TARGETS <= loaded, TARGETS - loaded
    assert REFUSED not in loaded
    assert re.search(r"^skipped 1: pattern error: unescaped left brace in \\%\{NAME\} "
                     rf"\(Perl refuses it\) \({REFUSED}\)$", p.stdout, re.M), p.stdout


@pytest.mark.time_limit(400)
def test_same_capture_hits_as_spamassassin(both):
    for name, (sa, sg) in both.items():
        assert REFUSED not in sa | sg, name
    out, agree = disagreements(both, TARGETS, "capture")
    wrong = []
    for name, (_, want) in MESSAGES.items():
        for who, hits in zip(("spamassassin", "smtpgate"), both[name]):
            if TARGETS & hits != want:
                wrong.append((name, who, sorted(TARGETS & hits), sorted(want)))
    for w in wrong:
        print("unexpected:", w)
    assert out == []
    assert wrong == []
    assert agree == len(TARGETS) * len(MESSAGES)
