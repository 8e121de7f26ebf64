"""SpamAssassin's add_header and report settings: with its files loaded, the X-Spam-* fields
smtpgate writes are the ones Debian's `spamassassin -L -t` writes on the same message, field
for field and octet for octet (differential, over small spam and ham messages), with
SpamAssassin's defaults and with an admin's local .cf that adds fields with other tags,
removes one, changes required_score, clears the fields and the report template.  Through the
proxy, the upstream receives those fields and not the ones the client forged.

What smtpgate cannot know is set in the local .cf for both sides: bayes_auto_learn 0
(smtpgate has no Bayes: its _AUTOLEARN_ is "disabled", SpamAssassin's otherwise says what it
learnt).  _REPORT_'s lines follow the tests sorted by name; SpamAssassin's follow the order
its rules ran, which is Perl's hash order and changes from run to run: that field is
compared as a set of lines.
"""

from __future__ import annotations

import re
import socket

import pytest

from gate import plugin_dir, plugin_section
from sa_diff import gate_run, needs_spamassassin, sa_run, spam_fields, tool
from sa_diff import msg as _msg

pytestmark = needs_spamassassin

GTUBE = "XJS*C4JDBQADN1.NSBN3*2IDNEN*GTUBE-STANDARD-ANTI-UBE-TEST-EMAIL*C.34X"

HAM = ("From: Alice Example <alice@example.org>\nTo: Bob <bob@example.net>\n"
       "Date: Mon, 07 Dec 2026 10:00:00 +0000\n"
       "Message-ID: <20261207100000.4711@mail.example.org>\n")

MESSAGES = {
    "ham": _msg("Received: from mail.example.org (mail.example.org [192.0.2.10])\n"
                "\tby mx.example.net (Postfix) with ESMTPS id 4A1B2C3D4E\n"
                "\tfor <bob@example.net>; Mon, 07 Dec 2026 10:00:01 +0000 (UTC)\n"
                + HAM + "Subject: minutes of the meeting\n"),
    "ham_short": _msg("From: a@example.com\nTo: b@example.org\nSubject: hello\n"
                      "Date: Mon, 7 Dec 2026 10:00:00 +0000\nMessage-ID: <x1@example.com>\n",
                      "hi there\n"),
    "gtube": _msg("From: a@example.com\nTo: b@example.org\nSubject: GTUBE\n"
                  "Message-ID: <x2@example.com>\n", f"{GTUBE}\n"),
    "headers": _msg('From: "" <x12345678901@example.com>\nTo: undisclosed\n'
                    "Subject: $500 for you\nDate: yesterday\nMessage-ID: <ab@x>\n",
                    "Hello, see the subject.\n"),
    "no_date": _msg("From: Carol <carol@example.org>\nTo: dave@example.net\n"
                    "Subject: FREE OFFER!!! ACT NOW\n", "Click below.\n"),
    "empty_body": _msg(HAM + "Subject: \n", ""),
    "body": _msg(HAM + "Subject: Buy now\n",
                 "Dear friend,\n\nThis is not spam. To be removed from our list, reply "
                 "with remove in the subject.\nBuy viagra today, 100% satisfaction "
                 "guaranteed.\n"),
    "long_tests": _msg('From: "" <12345678901234@example.com>\nTo: undisclosed\n'
                       "Subject: $$$ make MONEY fast $$$\nDate: yesterday\n"
                       "Message-ID: <q@x>\n",
                       f"{GTUBE}\nYou have been selected as a winner.\n"),
}

# What smtpgate cannot know, set for both sides
COMMON = "bayes_auto_learn 0\n"

CUSTOM = COMMON + r"""report_hostname gate.example.org
report_contact postmaster@example.org
required_score 2.5
add_header all Report _REPORT_
add_header spam Custom _SCORE(0)_/_REQD_ _YESNO(spammy,hammy)_ _TESTSSCORES(;)_
add_header ham Custom _SCORE(00)_ _YESNOCAPS(s,h)_ tests: _TESTS( )_ _STARS(+)_ [_UNKNOWN_] _BAYES_ _CONTACTADDRESS_
add_header all Multi line one\n line two _HITS_\tend \\ back
add_header all Summary "_SUMMARY_"
add_header all Relays _RELAYSUNTRUSTED_ _RELAYSTRUSTED_|
remove_header ham Level
add_header all Status _YESNO_ _SCORE_ again, later in the list
"""

CLEARED = COMMON + r"""clear_headers
remove_header all Checker-Version
clear_report_template
report a report of its own: _SCORE_
add_header spam Only spam, tests=_TESTSSCORES_, _YESNO_
"""

CONFIGS = {"default": COMMON, "custom": CUSTOM, "cleared": CLEARED}
# which messages each configuration is run on (spamassassin takes seconds a message)
PLAN = {"default": list(MESSAGES), "custom": list(MESSAGES),
        "cleared": ["ham_short", "gtube"]}


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    return tmp_path_factory.mktemp("sa_headers")


@pytest.fixture(scope="module")
def cf_files(workdir):
    out = {}
    for name, text in CONFIGS.items():
        p = workdir / f"{name}.cf"
        p.write_text(text)
        out[name] = p
    return out


@pytest.fixture(scope="module")
def runs(workdir, cf_files):
    """(config, message) -> (spamassassin's X-Spam-* fields, smtpgate's)."""
    home = workdir / "home"
    home.mkdir()
    out = {}
    for cfg, names in PLAN.items():
        for name in names:
            m = MESSAGES[name]
            sa = sa_run(m, home, debug="", args=("-p", str(cf_files[cfg])), status=False)
            gate = gate_run(m, workdir / f"{name}.eml", "--sa-local", cf_files[cfg])
            out[(cfg, name)] = (spam_fields(sa.stdout), spam_fields(gate.stdout))
    return out


def normal(fields: list[tuple[str, str]]) -> list:
    # _REPORT_'s and _SUMMARY_'s lines: SpamAssassin's come in Perl's hash order
    return [(n, sorted(x.lstrip() for x in v.split("\n"))
             if n in ("X-Spam-Report", "X-Spam-Summary") else v) for n, v in fields]


@pytest.mark.time_limit(400)
@pytest.mark.parametrize("cfg,name", [(c, n) for c, ns in PLAN.items() for n in ns])
def test_fields_match_spamassassin(runs, cfg, name):
    sa, gate = runs[(cfg, name)]
    assert sa, "spamassassin wrote no X-Spam-* field"
    assert normal(gate) == normal(sa)


@pytest.mark.time_limit(400)
def test_the_plan_covers_spam_and_ham(runs):
    """The corpus has both verdicts under each configuration, and the fields differ by it."""
    for cfg in ("default", "custom"):
        flags = {name: dict(runs[(cfg, name)][0]).get("X-Spam-Flag") for name in PLAN[cfg]}
        assert "YES" in flags.values() and None in flags.values(), flags
    custom = dict(runs[("custom", "ham")][1])
    assert "X-Spam-Level" not in custom and custom["X-Spam-Custom"].startswith("0")
    assert re.search(r"\[_UNKNOWN_\] 0\.5 postmaster@example\.org$",
                     re.sub(r"\s+", " ", custom["X-Spam-Custom"]))
    # add_header of a name already there moves it last
    assert runs[("custom", "ham")][1][-1][0] == "X-Spam-Status"
    # clear_headers keeps Checker-Version, which remove_header cannot remove
    cleared = runs[("cleared", "ham_short")][1]
    assert [n for n, _ in cleared] == ["X-Spam-Checker-Version"]
    assert [n for n, _ in runs[("cleared", "gtube")][1]] == ["X-Spam-Checker-Version",
                                                             "X-Spam-Only"]


@pytest.mark.time_limit(400)
def test_default_fields_name_this_host(runs):
    fields = dict(runs[("default", "ham")][1])
    assert fields["X-Spam-Checker-Version"] == (f"SpamAssassin 4.0.1 (2024-03-25) on "
                                                f"{socket.gethostname()}")


def test_lint_reads_the_settings(cf_files):
    p = tool("lint", "--sa", "--sa-local", cf_files["custom"])
    assert p.returncode == 0, p.stdout + p.stderr
    for setting in ("add_header", "remove_header", "clear_headers", "report",
                    "clear_report_template", "report_contact", "report_hostname",
                    "required_score"):
        assert not re.search(rf"^ignored setting \d+: {setting}\b", p.stdout, re.M), setting
    # what smtpgate deliberately does not act on stays listed, with why
    assert re.search(r"^ignored setting \d+: report_safe \(smtpgate adds fields, it never "
                     r"rewrites the message\)$", p.stdout, re.M), p.stdout
    assert re.search(r"^ignored setting \d+: bayes_auto_learn \(smtpgate has no Bayes", p.stdout,
                     re.M)
    assert re.search(r"^ignored setting \d+: ok_locales \(", p.stdout, re.M)
    assert re.search(r"^ignored setting \d+: unsafe_report \(", p.stdout, re.M)


def test_native_rules_alone_keep_their_fields(workdir):
    rules = workdir / "native.rules"
    rules.write_text('rule SUBJ_OFFER header Subject /offer/i\n    score 3.5\n')
    m = workdir / "native.eml"
    m.write_bytes(MESSAGES["no_date"])
    p = tool("test", rules, m)
    assert p.returncode == 0, p.stdout + p.stderr
    assert spam_fields(p.stdout) == [("X-Spam-Status", "No, score=3.5 required=5.0 "
                                      "tests=SUBJ_OFFER"),
                                     ("X-Spam-Score", "3.5"), ("X-Spam-Level", "***")]


def test_upstream_receives_the_fields(gate_factory, recorder, smtpgate_binary, workdir):
    so = plugin_dir(smtpgate_binary).parent.parent / "plugins" / "rules.so"
    if not so.exists():
        pytest.skip(f"{so} not built")
    th = workdir / "none.rules"
    th.write_text("# SpamAssassin's rules and thresholds only\n")
    local = workdir / "proxy.cf"
    local.write_text(COMMON + "report_hostname gate.example.org\nrequired_score 7\n"
                     "report_contact abuse@example.org\n"
                     "add_header all Custom _YESNO_ _REQD_ _CONTACTADDRESS_\n")
    extra = plugin_section("rules", so, files=[str(th)], spamassassin=True,
                           spamassassin_local=[str(local)])
    gate = gate_factory([recorder.address], extra=extra)
    recorder.wait_idle()
    forged = "X-Spam-Custom: forged\r\nX-Spam-Flag: YES\r\n"
    ham = ("From: alice@example.org\r\nTo: bob@example.org\r\nSubject: hello\r\n" + forged +
           "Date: Mon, 7 Dec 2026 10:00:00 +0000\r\nMessage-ID: <hdr.1@example.org>\r\n"
           "\r\nHello Bob,\r\n\r\nthe minutes are attached.\r\n").encode()
    spam = ("From: alice@example.org\r\nTo: bob@example.org\r\nSubject: gtube\r\n"
            "Date: Mon, 7 Dec 2026 10:00:00 +0000\r\nMessage-ID: <hdr.2@example.org>\r\n"
            f"\r\n{GTUBE}\r\n").encode()
    for m in (ham, spam):
        with gate.connect() as c:
            c.ehlo("mail.example.org")
            replies = c.mail_transaction("alice@example.org", ["bob@example.org"], m)
            assert replies[-1].code == 250, replies[-1]
            c.quit()
    got = recorder.wait_messages(2)
    fields = [spam_fields(x.content.decode("latin-1")) for x in got]
    for f, verdict in zip(fields, ("No", "Yes")):
        names = [n for n, _ in f]
        want = ["X-Spam-Checker-Version", "X-Spam-Level", "X-Spam-Status", "X-Spam-Custom"]
        if verdict == "Yes":
            want.insert(1, "X-Spam-Flag")
        assert names == want, f
        d = dict(f)
        assert d["X-Spam-Checker-Version"] == "SpamAssassin 4.0.1 (2024-03-25) on gate.example.org"
        assert d["X-Spam-Custom"] == f"{verdict} 7.0 abuse@example.org"
        st = re.fullmatch(r"(Yes|No), score=(-?\d+\.\d) required=7\.0 tests=(.+?)\s+"
                          r"autolearn=disabled version=4\.0\.1", d["X-Spam-Status"], re.S)
        assert st and st.group(1) == verdict, d["X-Spam-Status"]
        tests = re.sub(r"\s+", "", st.group(3)).split(",")
        # the loopback client is a trusted relay, the only one: ALL_TRUSTED, as behind an MTA
        assert "ALL_TRUSTED" in tests and tests == sorted(tests), tests
        assert d["X-Spam-Level"] == "*" * min(50, max(0, int(float(st.group(2)))))
    assert "GTUBE" in dict(fields[1])["X-Spam-Status"]
    assert b"forged" not in got[0].content
