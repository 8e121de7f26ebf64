"""SpamAssassin's local plugins that smtpgate runs natively: FromNameSpoof (rules/sa_eval_fns.c),
AntiVirus (rules/sa_eval_av.c), URIEval (rules/sa_eval_uri.c) and HTTPSMismatch
(rules/sa_eval_https.c), against Debian's `spamassassin -L -t` on messages written for this test.

Debian's .pre files leave FromNameSpoof and AntiVirus out; here a site folder (the site's own
files linked, beside them a .pre file that loads the two and a .cf file that calls every
function the plugins register and lists an owner) is spamassassin's --siteconfigpath and
smtpgate's second --sa-dir, after the package's rules.  For every
rule of these functions smtpgate loads, and the shipped metas over them, the two must agree on
every message (the agreement counts are printed), and each message hits the rules it was
written for in both.  lint names the functions as implemented.

The rules are read where the package puts them and never copied here.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from sa_diff import SA_RULES, disagreements, gate_run, local_site, needs_spamassassin, sa_run, tool
from sa_diff import msg as _msg

pytestmark = needs_spamassassin

PLUGINS = ("FromNameSpoof", "AntiVirus")

LOCAL_CF = """\
header LP_FNS_SPOOF0 eval:check_fromname_spoof('0')
header LP_FNS_SPOOF2 eval:check_fromname_spoof('2')
header LP_FNS_DIFF eval:check_fromname_different()
header LP_FNS_DOMAIN eval:check_fromname_domain_differ()
header LP_FNS_EMAIL eval:check_fromname_contains_email()
header LP_FNS_OWNERS eval:check_fromname_owners_differ()
header LP_FNS_TO eval:check_fromname_equals_to()
header LP_FNS_REPLYTO eval:check_fromname_equals_replyto()
body LP_AV_EXE eval:check_microsoft_executable()
body LP_AV_NAME eval:check_suspect_name()
body LP_URI_TRUNCATED eval:check_uri_truncated()
body LP_HTTPS_IP eval:check_https_ip_mismatch()
body LP_HTTPS_3 eval:check_https_http_mismatch('1','3')
body LP_REDIRECTOR eval:check_for_http_redirector()
fns_add_addrlist (PayPal) *@paypal.com *@paypal-mail.com
"""

FUNCTIONS = {
    "check_fromname_spoof", "check_fromname_different", "check_fromname_domain_differ",
    "check_fromname_contains_email", "check_fromname_owners_differ", "check_fromname_equals_to",
    "check_fromname_equals_replyto", "check_microsoft_executable", "check_suspect_name",
    "check_uri_truncated", "check_https_ip_mismatch", "check_for_http_redirector",
    "check_https_http_mismatch",
}
# the shipped metas over them that smtpgate loads
METAS = {"T_FROMNAME_EQUALS_TO", "T_GB_FREEM_FROM_NOT_REPLY"}

DATE = "Date: Mon, 07 Dec 2026 09:59:00 +0000\n"
FNS_SPOOF = {"__PLUGIN_FROMNAME_SPOOF", "LP_FNS_SPOOF0", "LP_FNS_SPOOF2", "LP_FNS_DIFF",
             "LP_FNS_DOMAIN", "LP_FNS_EMAIL", "LP_FNS_OWNERS"}


def m(frm: str, to: str = "Bob <bob@example.net>", extra: str = "", n: int = 0,
      body: str = "Hello Bob,\n\nthe minutes are attached.\n") -> bytes:
    return _msg("Received: from mail.example.org (mail.example.org [192.0.2.10])\n"
                "\tby mx.example.net (Postfix) with ESMTP id 4711;\n"
                "\tMon, 07 Dec 2026 10:00:00 +0000\n"
                f"From: {frm}\nTo: {to}\n{extra}Subject: Minutes of the meeting\n{DATE}"
                f"Message-ID: <20261207100000.{4900 + n}@mail.example.org>\n", body)


MZ = "TVqQAAMAAAAEAAAA//8AALgAAAAAAAAAQAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\n"
AV_EXE = {"MICROSOFT_EXECUTABLE", "LP_AV_EXE"}
AV_NAME = {"MIME_SUSPECT_NAME", "LP_AV_NAME"}


def attached(ctype: str, content: str, cte: str = "base64", n: int = 0) -> bytes:
    """A message with a text part and one attachment."""
    return m("Alice <alice@example.org>", n=n,
             extra='MIME-Version: 1.0\nContent-Type: multipart/mixed; boundary="=_b"\n',
             body="--=_b\nContent-Type: text/plain; charset=us-ascii\n\nthe file is attached\n"
                  f"--=_b\nContent-Type: {ctype}\nContent-Transfer-Encoding: {cte}\n\n"
                  f"{content}--=_b--\n")


def html(body: str, n: int = 0) -> bytes:
    return m("Alice <alice@example.org>", n=n,
             extra="MIME-Version: 1.0\nContent-Type: text/html; charset=us-ascii\n",
             body=f"<html><body><p>Hello Bob,</p>\n{body}\n</body></html>\n")


MESSAGES = {
    # FromNameSpoof
    "fns_spoof": (m('"service@paypal.com" <evil@mail.spam.net>', n=1), FNS_SPOOF),
    "fns_same": (m('"bob@spam.net" <Bob@Spam.net>', n=2), {"LP_FNS_EMAIL"}),
    "fns_owner": (m('"service@paypal.com" <alerts@paypal-mail.com>', n=3),
                  {"LP_FNS_SPOOF0", "LP_FNS_SPOOF2", "LP_FNS_DIFF", "LP_FNS_DOMAIN",
                   "LP_FNS_EMAIL"}),
    "fns_replyto_to": (m('"ann@example.org" <x@spam.net>', to="Ann <ann@example.org>",
                         extra="Reply-To: ann@example.org\n", n=4),
                       FNS_SPOOF | {"LP_FNS_TO", "LP_FNS_REPLYTO", "__PLUGIN_FROMNAME_EQUALS_TO",
                                    "__FROM_EQ_REPLY", "T_FROMNAME_EQUALS_TO"}),
    "fns_to_case": (m('"Ann@Example.org" <x@spam.net>', to="Ann@Example.org", n=5), FNS_SPOOF),
    "fns_list_id": (m('"service@paypal.com" <evil@mail.spam.net>',
                      extra="List-Id: <minutes.lists.example.net>\n", n=6), set()),
    "fns_far": (m('"Customer care desk of our online service, do write to us any time at '
                  'help@paypal.com" <x@spam.net>', n=7), {"LP_FNS_EMAIL"}),
    "fns_subdomain": (m('"ann@news.shop.co.uk" <ann@shop.co.uk>', n=8),
                      {"LP_FNS_SPOOF0", "LP_FNS_DIFF", "LP_FNS_EMAIL"}),
    # AntiVirus
    "av_exe_name": (attached('application/octet-stream; name="Invoice.EXE"', "AAAA\n", n=9),
                    AV_EXE),
    "av_scr_text": (attached('text/plain; name="holiday.scr"', "hello\n", "7bit", n=10),
                    AV_EXE | AV_NAME),
    "av_mz_base64": (attached("application/octet-stream", MZ, n=11), AV_EXE),
    "av_uuencoded": (attached("text/plain", "begin 644 a\nM35JX`ab`cd````\nend\n", "7bit", n=12),
                     AV_EXE),
    "av_suspect": (attached('application/x-msdownload; name="photo.jpg"', "AAAA\n", n=13),
                   AV_NAME),
    "av_clean": (attached('application/pdf; name="report.pdf"', "JVBERi0xLjQK\n", n=14), set()),
    # URIEval and HTTPSMismatch
    "uri_truncated": (html('<a href="www.example.com/' + "y" * 8174 + '">the file</a>', n=15),
                      {"URI_TRUNCATED", "LP_URI_TRUNCATED"}),
    "https_http": (html('<a href="http://login.shop-secure.com/p">https://www.paypal.com/</a>\n'
                        '<a href="http://www.shop-secure.com/">shop</a>\n'
                        '<a href="http://help.shop-secure.net/">help</a>', n=16),
                   {"HTTPS_HTTP_MISMATCH"}),
    "https_ip": (html('<a href="http://192.0.2.1/login">https://www.bank.com/login</a>', n=17),
                 {"LP_HTTPS_IP"}),
    "redirector": (html('<a href="http://www.paypal.com/x">https://paypal.com/</a>\n'
                        '<a href="http://r.example.com/go?u=http://evil.example.net/">go</a>',
                        n=18), {"LP_REDIRECTOR"}),
}
TARGETS = set().union(*(want for _, want in MESSAGES.values()))


@pytest.fixture(scope="module")
def local_cf(tmp_path_factory) -> tuple[Path, Path]:
    """The admin file, and a site folder for spamassassin: the site's files linked, and it."""
    cf, site = local_site(tmp_path_factory, "zz_localplug", LOCAL_CF)
    (site / "zz_localplug.pre").write_text(
        "".join(f"loadplugin Mail::SpamAssassin::Plugin::{p}\n" for p in PLUGINS))
    return cf, site


@pytest.fixture(scope="module")
def lint(local_cf) -> str:
    p = tool("lint", "--sa", "--list", "--sa-dir", SA_RULES, "--sa-dir", local_cf[1])
    assert p.returncode == 0, p.stdout + p.stderr
    return p.stdout


@pytest.fixture(scope="module")
def compared(lint) -> set[str]:
    """The rules of these functions smtpgate loads, and the shipped metas over them."""
    evals = {r for r, f in re.findall(r"^rule (\w+) eval (\w+)\t", lint, re.M) if f in FUNCTIONS}
    loaded = set(re.findall(r"^rule (\w+) ", lint, re.M))
    return evals | (METAS & loaded)


@pytest.fixture(scope="module")
def both(tmp_path_factory, local_cf):
    _, site = local_cf
    home = tmp_path_factory.mktemp("sa-home")
    work = tmp_path_factory.mktemp("msgs")
    return {name: (sa_run(msg, home, "rules", args=(f"--siteconfigpath={site}",)).hits,
                   gate_run(msg, work / f"{name}.eml", "--sa-dir", SA_RULES, "--sa-dir", site).hits)
            for name, (msg, _) in MESSAGES.items()}


def test_plugins_load_only_when_asked():
    """Without a .pre file's loadplugin line, as Debian ships them, the two plugins are
    absent, said so, and their rules do not run (as in spamassassin)."""
    p = tool("lint", "--sa")
    assert p.returncode == 0, p.stdout + p.stderr
    for plugin, n in (("FromNameSpoof", 7), ("AntiVirus", 2)):
        assert re.search(rf"^skipped {n}: plugin Mail::SpamAssassin::Plugin::{plugin} is not "
                         r"loaded: no \.pre file loads it \(", p.stdout, re.M), p.stdout
    for plugin in ("URIEval", "HTTPSMismatch"):
        assert f"Plugin::{plugin} is not" not in p.stdout


def test_lint_names_the_functions(lint, compared):
    done = set(re.findall(r"^eval function implemented \d+: (\w+) ", lint, re.M))
    missing = set(re.findall(r"^eval function not implemented \d+: (\w+) ", lint, re.M))
    assert FUNCTIONS <= done, FUNCTIONS - done
    assert not FUNCTIONS & missing
    for p in PLUGINS:
        assert f"Plugin::{p} is not emulated" not in lint
    # the plugin's settings are read, not ignored
    for setting in ("fns_add_addrlist", "fns_ignore_dkim", "fns_ignore_headers", "fns_check"):
        assert not re.search(rf"^ignored setting \d+: {setting}$", lint, re.M), setting
    assert TARGETS <= compared, TARGETS - compared
    # the shipped rules of the plugins are loaded; HTTPS_IP_MISMATCH scores 0, so is off
    assert re.search(r"^skipped \d+: disabled: score 0 \(", lint, re.M)
    assert not re.search(r"^rule HTTPS_IP_MISMATCH ", lint, re.M)
    for rule in ("__PLUGIN_FROMNAME_SPOOF", "__PLUGIN_FROMNAME_EQUALS_TO", "__FROM_EQ_REPLY",
                 "T_FROMNAME_EQUALS_TO", "T_GB_FREEM_FROM_NOT_REPLY", "MICROSOFT_EXECUTABLE",
                 "MIME_SUSPECT_NAME", "URI_TRUNCATED", "HTTPS_HTTP_MISMATCH"):
        assert re.search(rf"^rule {rule} ", lint, re.M), rule


@pytest.mark.time_limit(400)
def test_same_hits_as_spamassassin(both, compared):
    out, agree = disagreements(both, compared, "local plugin")
    wrong = []
    for name, (_, want) in MESSAGES.items():
        for who, hits in zip(("spamassassin", "smtpgate"), both[name]):
            if TARGETS & hits != want:
                wrong.append((name, who, sorted(TARGETS & hits), sorted(want)))
    assert out == []
    assert wrong == []
    assert agree == len(compared) * len(MESSAGES)
