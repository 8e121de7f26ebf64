"""SpamAssassin's redirector_pattern setting (rules/sa_redir.c, followed by rules/sa_uri.c),
against Debian's `spamassassin -L -t` on messages written for this test.

The messages link through the redirectors the package ships (20_uri_tests.cf: zdnet's chkpt,
nate.com's /r/, a .gov externalLink.jhtml?url=, adtech.de's link=; 72_active.cf: google's
/url?q=) and through one of the admin's own, read from a local .cf file (smtpgate's --sa-local,
spamassassin's --siteconfigpath naming a folder with the site's files linked and this one).
Each target is a host the local uri rules match only when the redirector was followed.  Over
those rules, SpamAssassin's own uri rules and the URI eval rules, the two must agree on every
message (the agreement counts are printed), and each message hits the rules it was written
for in both.  The URI list itself, smtpgate-rules test --dump-uris's "sa-uri" lines, must be
SpamAssassin's: every "uri: cleaned uri:" of its debug log.

The rules are read where the package puts them and never copied here.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from sa_diff import disagreements, gate_run, local_site, needs_spamassassin, rule_types, sa_run, tool
from sa_diff import msg as _msg

pytestmark = needs_spamassassin


LOCAL_CF = """\
redirector_pattern m{^https?://go\\.redir-local\\.example\\.com/out/(.*)$}i
uri LR_TARGET m{^https?://(?:www\\.)?redir-target\\.example/}i
score LR_TARGET 0.01
uri LR_TARGET_BARE m{^(?:www\\.)?redir-target\\.example/}i
score LR_TARGET_BARE 0.01
uri LR_LOCAL_REDIR m{^https?://go\\.redir-local\\.example\\.com/}i
score LR_LOCAL_REDIR 0.01
body LR_REDIRECTOR eval:check_for_http_redirector()
score LR_REDIRECTOR 0.01
"""
LOCAL_RULES = {"LR_TARGET", "LR_TARGET_BARE", "LR_LOCAL_REDIR", "LR_REDIRECTOR"}
URI_EVALS = {"check_uri_truncated", "check_https_http_mismatch", "check_https_ip_mismatch",
             "check_for_http_redirector", "check_uri_host_listed",
             "check_uri_host_in_blocklist", "check_uri_host_in_welcomelist"}

DATE = "Date: Mon, 07 Dec 2026 09:59:00 +0000\n"


def m(body: str, n: int, html: bool = False) -> bytes:
    ctype = "Content-Type: text/html; charset=us-ascii\n" if html else ""
    return _msg("Received: from mail.example.org (mail.example.org [192.0.2.10])\n"
                "\tby mx.example.net (Postfix) with ESMTP id 4711;\n"
                "\tMon, 07 Dec 2026 10:00:00 +0000\n"
                "From: Alice <alice@example.org>\nTo: Bob <bob@example.net>\n"
                f"Subject: The link we spoke of\n{DATE}"
                f"Message-ID: <20261207100000.{5100 + n}@mail.example.org>\n"
                f"MIME-Version: 1.0\n{ctype}", body)


MESSAGES = {
    # the target as written after the redirector: no scheme, SpamAssassin adds one
    "zdnet": (m("Hello Bob,\n\nsee http://chkpt.zdnet.com/chkpt/abc1/www.redir-target.example/p"
                " today.\n", 1), {"LR_TARGET", "LR_TARGET_BARE"}),
    # a %-encoded target, decoded in its turn
    "nate": (m("Hello Bob,\n\nsee http://www2.nate.com/r/xy/"
               "http%3A%2F%2Fredir-target.example%2Fn today.\n", 2),
             {"LR_TARGET", "LR_REDIRECTOR"}),
    "gov": (m("Hello Bob,\n\nsee http://www.agency.example.gov/site/externalLink.jhtml?a=1"
              "&url=http://www.redir-target.example/g&b=2 today.\n", 3),
            {"LR_TARGET", "LR_REDIRECTOR"}),
    # a link: the text's URIs end at the first '|'
    "adtech_html": (m('<html><body><p>Hello Bob, see <a href="http://adserver.adtech.de/adlink'
                      '|3.0|5|link=redir-target.example/a;x=1">the page</a>.</p></body></html>\n',
                      4, html=True), {"LR_TARGET", "LR_TARGET_BARE"}),
    "google_html": (m('<html><body><p>Hello Bob, see <a href="http://www.google.com/url?sa=D'
                      '&amp;q=http://redir-target.example/gg&amp;x=1">the page</a>.</p>'
                      '</body></html>\n', 5, html=True), {"LR_TARGET", "LR_REDIRECTOR"}),
    # the admin's own redirector, and through it a shipped one
    "local": (m("Hello Bob,\n\nsee http://go.redir-local.example.com/out/redir-target.example/l"
                " today.\n", 6), {"LR_TARGET", "LR_TARGET_BARE", "LR_LOCAL_REDIR"}),
    "local_nested": (m("Hello Bob,\n\nsee http://go.redir-local.example.com/out/chkpt.zdnet.com/"
                       "chkpt/q1/www.redir-target.example/z today.\n", 7),
                     {"LR_TARGET", "LR_TARGET_BARE", "LR_LOCAL_REDIR"}),
    # the generic redirector, its target %-encoded (%41 decoded, %20 and %e9 kept)
    "generic_pct": (m("Hello Bob,\n\nsee http://click.example.com/go?u=http%3A%2F%2F"
                      "redir-target.example%2Fq%41%20%e9&v=1 today.\n", 9),
                    {"LR_TARGET", "LR_REDIRECTOR"}),
    # the host in a path that no redirector names: not a target
    "no_redirector": (m("Hello Bob,\n\nsee http://plain.example.com/go/www.redir-target.example/"
                        " today.\n", 8), set()),
}


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> tuple[Path, Path]:
    cf, d = local_site(tmp_path_factory, "zz_redir", LOCAL_CF)
    return cf, d


@pytest.fixture(scope="module")
def lint(site) -> str:
    cf, _ = site
    p = tool("lint", "--sa", "--list", "--sa-local", cf)
    assert p.returncode == 0, p.stdout + p.stderr
    return p.stdout


@pytest.fixture(scope="module")
def runs(tmp_path_factory, site):
    """message -> (SpamAssassin's run with the uri debug channel, smtpgate's with the list)"""
    cf, d = site
    home = tmp_path_factory.mktemp("sa-home")
    work = tmp_path_factory.mktemp("msgs")
    return {name: (sa_run(msg, home, "rules,uri", args=(f"--siteconfigpath={d}",)),
                   gate_run(msg, work / f"{name}.eml", "--sa-local", cf, "--dump-uris"))
            for name, (msg, _) in MESSAGES.items()}


def common_rules(lint: str) -> set[str]:
    types = rule_types(lint)
    evals = {r for r, f in re.findall(r"^rule (\w+) eval (\w+)\t", lint, re.M) if f in URI_EVALS}
    return {r for r, t in types.items() if t == "uri"} | evals | LOCAL_RULES


def test_lint_reads_the_setting(lint, site, tmp_path):
    # every shipped pattern compiles: no warning, the setting no longer ignored
    assert not re.search(r"^ignored setting \d+: redirector_pattern", lint, re.M), lint
    assert "redirector_pattern" not in tool("lint", "--sa").stdout
    assert LOCAL_RULES <= set(rule_types(lint))
    # a bad pattern of the admin's: a warning with its file and line, the rest loads
    bad = tmp_path / "bad.cf"
    bad.write_text("uri LR_X /x\\.example/\nredirector_pattern /a(/\nredirector_pattern\n")
    p = tool("lint", "--sa", "--sa-local", bad)
    out = p.stdout + p.stderr
    assert re.search(rf"{re.escape(str(bad))}:2: .*redirector_pattern: invalid pattern", out), out
    assert re.search(rf"{re.escape(str(bad))}:3: .*redirector_pattern: requires a value", out), out


def test_rules_agree_with_spamassassin(runs, lint):
    common = common_rules(lint)
    pairs = {name: (sa.hits, gate.hits) for name, (sa, gate) in runs.items()}
    diffs, agree = disagreements(pairs, common, "redirector")
    assert not diffs
    assert agree == len(common) * len(MESSAGES)


@pytest.mark.parametrize("name", sorted(MESSAGES))
def test_each_message_hits_its_rules(runs, name):
    sa, gate = runs[name]
    want = MESSAGES[name][1]
    assert sa.hits & LOCAL_RULES == want, sa.stderr[-3000:]
    assert gate.hits & LOCAL_RULES == want, gate.stdout


@pytest.mark.parametrize("name", sorted(MESSAGES))
def test_uri_list_is_spamassassins(runs, name):
    sa, gate = runs[name]
    sa_list = set(re.findall(r"dbg: uri: cleaned uri: (.*)$", sa.stderr, re.M))
    gate_list = set(re.findall(r"^sa-uri (.*)$", gate.stdout, re.M))
    assert sa_list, sa.stderr[-3000:]
    assert gate_list == sa_list
