"""SpamAssassin's own rule files, as Debian's spamassassin package installs them, loaded by
smtpgate's rules engine: smtpgate-rules lint accounts for every rule (loaded, or skipped under
a reason with its count); a GTUBE message is refused through the proxy by SpamAssassin's GTUBE
rule with the native rule set off; and small messages written for this test hit the same
header and body rules in smtpgate as in Debian's `spamassassin -L -t` (differential: per rule
and message the same hit or miss for the rules both evaluate; every disagreement is printed).

The rules are read where the package puts them and never copied here.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess

import pytest

import sa_diff

from gate import plugin_dir, plugin_section
from helpers import assert_reply
from sa_diff import gate_run, lint_list, needs_spamassassin, sa_run, tool
from sa_diff import msg as _msg

GTUBE = "XJS*C4JDBQADN1.NSBN3*2IDNEN*GTUBE-STANDARD-ANTI-UBE-TEST-EMAIL*C.34X"

pytestmark = needs_spamassassin


@pytest.fixture(scope="module")
def lint():
    return lint_list()


@pytest.fixture(scope="module")
def loaded(lint) -> set[str]:
    return {m.group(1) for m in re.finditer(r"^rule (\S+) ", lint, re.M)}


SKIP_LINE = re.compile(r"^skipped (\d+): (.+?)(?: \((\w+)(, \.\.\.)?\))?$")


def test_lint_accounts_for_every_rule(lint, loaded):
    lines = lint.split("\n")
    head = re.fullmatch(r"spamassassin: emulating 4\.000001, score set 0, (\d+) files read",
                        lines[0])
    assert head and int(head.group(1)) > 40, lines[0]
    counts = re.fullmatch(r"spamassassin: (\d+) rules defined, (\d+) loaded, (\d+) skipped",
                          lines[1])
    assert counts, lines[1]
    defined, nloaded, nskipped = map(int, counts.groups())
    assert nloaded > 1000 and nskipped > 0
    assert defined == nloaded + nskipped
    # every rule loaded is listed, and only those (the shipped native set is not loaded)
    assert len(loaded) == nloaded
    assert re.search(rf"^ok: {nloaded} rules in \d+ files$", lint, re.M)
    assert "GTUBE" in loaded and "SUBJECT_FUZZY_CHEAP" in loaded

    reasons: dict[str, int] = {}
    for line in lines:
        if line.startswith("skipped "):
            m = SKIP_LINE.match(line)
            assert m, line
            count, what, first, more = m.groups()
            assert (more is not None) == (int(count) > 1), line
            assert first is not None and first not in loaded, line
            reasons[what] = int(count)
    assert sum(reasons.values()) == nskipped
    # the reasons are each listed once, from the most frequent down
    ordered = [int(SKIP_LINE.match(x).group(1)) for x in lines if x.startswith("skipped ")]
    assert ordered == sorted(ordered, reverse=True)
    # each kind of reason the installed set has today
    kinds = {
        "plugin": r"plugin Mail::SpamAssassin::Plugin::\w+ is not emulated",
        # emulated, but Debian's .pre files do not load it (AntiVirus, FromNameSpoof)
        "plugin not loaded": r"plugin Mail::SpamAssassin::Plugin::\w+ is not loaded: no \.pre file "
                             r"loads it",
        "condition": r"condition false: if .+",
        "score 0": r"disabled: score 0",
        "meta": r"meta: every rule it uses is absent or skipped",
        "network": r"network test, network tests off",
    }
    for kind, rx in kinds.items():
        assert any(re.fullmatch(rx, w) for w in reasons), f"no {kind} reason in:\n{lint}"
    for w in reasons:
        assert any(re.fullmatch(rx, w) for rx in kinds.values()) or \
            w == "meta: uses an eval test smtpgate lacks" or \
            w.startswith(("unsupported construct: ", "unknown eval function ", "pattern error: ",
                          "needs Bayes", "pattern too large", "a native rule")), w
    # the patterns PCRE2 found too large load through their rewrite (rules/sa_bigre.c)
    assert not any("too large" in w for w in reasons), reasons
    assert "plugin Mail::SpamAssassin::Plugin::URIDNSBL is not emulated" in reasons
    # every eval function a shipped meta uses is there (the last were the relay welcomelist's)
    assert "meta: uses an eval test smtpgate lacks" not in reasons
    # the eval functions the skipped rules need, by name with their counts
    evals = dict(re.findall(r"^eval function not implemented (\d+): (\w+)", lint, re.M)[::-1])
    assert re.search(r"^eval function not implemented \d+: check_uridnsbl \(", lint, re.M)
    assert "check_for_missing_to_header" not in evals, evals
    # and those smtpgate runs natively, apart
    assert re.search(r"^eval function implemented 1: check_for_missing_to_header \(MISSING_HEADERS\)$",
                     lint, re.M)
    # every setting smtpgate does not use is named with its count (and why, when it never
    # will); required_score is used now
    assert not re.search(r"^ignored setting \d+: required_score\b", lint, re.M)
    assert re.search(r"^ignored setting \d+: report_safe \(", lint, re.M)


def test_native_file_with_spamassassin_syntax_is_an_error(tmp_path):
    f = tmp_path / "mine.rules"
    f.write_text("header SUBJ_FREE Subject =~ /free/i\n"
                 "rule FREE header Subject =~ /free/i score 1\n")
    p = tool("lint", f)
    assert p.returncode == 1
    assert p.stderr.splitlines() == [
        f"{f}:1:1: \"header\" is SpamAssassin's syntax: load the file as SpamAssassin's "
        "(spamassassin_local), or write it as \"rule NAME TARGET /re/ score N\"",
        f"{f}:2:26: \"=~\" is SpamAssassin's syntax: load the file as SpamAssassin's "
        "(spamassassin_local), or write the pattern alone: /re/",
        "2 errors",
    ]
    # a folder that is not there is an error of the load
    p = tool("lint", "--sa-dir", tmp_path / "none")
    assert p.returncode == 1
    assert f"spamassassin: cannot read the folder {tmp_path / 'none'}: No such file or directory" \
        in p.stderr.splitlines(), p.stderr
    # the same file read as SpamAssassin's: its rule loads
    sadir = tmp_path / "sa"
    sadir.mkdir()
    (sadir / "10_mine.cf").write_text("header SUBJ_FREE Subject =~ /free/i\nscore SUBJ_FREE 2\n")
    p = tool("lint", "--sa-dir", sadir, "--list")
    assert p.returncode == 0, p.stderr
    assert "spamassassin: 1 rules defined, 1 loaded, 0 skipped" in p.stdout
    assert "rule SUBJ_FREE header Subject\t2\ti\tfree\n" in p.stdout


def listed(lint: str) -> dict[str, tuple[float, str, str]]:
    """lint --list: NAME -> (score, flags, pattern)."""
    out = {}
    for line in lint.split("\n"):
        m = re.match(r"rule (\S+) [^\t]*\t([-\d.e+]+)\t([a-z]*)\t(.*)$", line)
        if m:
            out[m.group(1)] = (float(m.group(2)), m.group(3), m.group(4))
    return out


# SpamAssassin's own view of its configuration: each rule's type, its score in
# the score set in use (0: no network tests, no Bayes) and its compiled pattern.
SA_DUMP = r"""
use strict; use warnings;
use Mail::SpamAssassin;
use Mail::SpamAssassin::Util qw(qr_to_string);
my $sa = Mail::SpamAssassin->new({local_tests_only => 1, dont_copy_prefs => 1,
  userprefs_filename => '/dev/null', post_config_text => "use_bayes 0\n"});
$sa->init(1);
my $conf = $sa->{conf};
print "scoreset ", $conf->get_score_set(), "\n";
for my $name (sort keys %{$conf->{test_types}}) {
  # mimeheader rules keep their pattern in the MIMEHeader plugin's table
  my $qr = $conf->{test_qrs}->{$name} //
    ($conf->{mimeheader_tests}->{$name} ? $conf->{mimeheader_tests}->{$name}->{pattern} : undef);
  my $re = defined $qr ? qr_to_string($qr) : '';
  $re =~ s/[\r\n]/ /g;
  print join("\t", $name, $conf->{scores}->{$name} // 0, $re), "\n";
}
"""


def test_every_rule_loaded_is_spamassassins_own(lint, tmp_path):
    """Each rule smtpgate loads is one SpamAssassin itself loads from the same files, with
    the same score in the same score set, the same pattern and the same modifiers: the
    conditions, redefinitions, score lines and templates were read as SpamAssassin reads
    them."""
    env = dict(os.environ, HOME=str(tmp_path), LANG="C")
    p = subprocess.run(["perl", "-e", SA_DUMP], capture_output=True, timeout=300, env=env)
    assert p.returncode == 0, p.stderr.decode(errors="replace")[-2000:]
    lines = p.stdout.decode("latin-1").split("\n")
    assert lines[0] == "scoreset 0"
    theirs = {}
    for line in lines[1:]:
        if line:
            name, score, pattern = line.split("\t", 2)
            mods = ""
            while m := re.match(r"\(\?\^?([a-z]*)\)", pattern):
                mods += m.group(1) if m.group(1) != "aa" else ""
                pattern = pattern[m.end():]
            theirs[name] = (float(score), "".join(sorted(set(mods))), pattern)
    ours = listed(lint)
    assert len(ours) > 1000 and len(theirs) > len(ours)
    assert sorted(set(ours) - set(theirs)) == []
    wrong_score = [(n, theirs[n][0], s) for n, (s, _, _) in ours.items()
                   if not n.startswith("__") and abs(theirs[n][0] - s) > 1e-9]
    assert wrong_score == []
    wrong_pattern = [n for n, (_, f, pat) in ours.items()
                     if pat and (theirs[n][2] != pat or theirs[n][1] != "".join(sorted(f)))]
    assert wrong_pattern == [], [(n, theirs[n], ours[n]) for n in wrong_pattern[:3]]


def test_templates_expand_as_spamassassin_expands_them(lint, tmp_path):
    """Every ReplaceTags rule smtpgate loads has, byte for byte, the pattern
    SpamAssassin itself makes of it (its debug output of the expansion)."""
    env = dict(os.environ, HOME=str(tmp_path), LANG="C")
    p = subprocess.run(["spamassassin", "-D", "replacetags", "--lint"], capture_output=True,
                       timeout=300, env=env)
    theirs = {}
    for line in p.stderr.decode("latin-1").split("\n"):
        m = re.search(r"replacetags: replaced (\S+): '.*' => '(.*)'$", line)
        if m:
            # printed with its modifiers in front, backslashes doubled and every octet above
            # 0x7f written \x{HH} by SpamAssassin's logger (one pass: "\\x{C2}" is the
            # pattern's own escape, "\x{C2}" the logger's)
            pat = re.sub(r"^\(\?aa\)(?:\(\?[a-z]+\))?", "", m.group(2))
            theirs[m.group(1)] = re.sub(
                r"\\\\|\\x\{([0-9A-F]{2})\}",
                lambda t: "\\" if t.group(1) is None else chr(int(t.group(1), 16)), pat)
    assert len(theirs) > 50, p.stderr[-2000:]
    ours = {name: pattern for name, (_, _, pattern) in listed(lint).items()}
    both = sorted(set(theirs) & set(ours))
    assert len(both) > 50
    differ = [n for n in both if theirs[n] != ours[n]]
    assert differ == [], [(n, theirs[n][:80], ours[n][:80]) for n in differ[:3]]


# ---- the proxy ----

def test_gtube_refused_through_the_proxy(gate_factory, recorder, smtpgate_binary, workdir):
    so = plugin_dir(smtpgate_binary).parent.parent / "plugins" / "rules.so"
    if not so.exists():
        pytest.skip(f"{so} not built")
    # no native rule at all: only the thresholds, SpamAssassin's files for the rules
    th = workdir / "thresholds.rules"
    th.write_text('threshold reject 5 "550 5.7.1 Spam score too high"\n')
    local = workdir / "local.cf"
    local.write_text("# the admin's own SpamAssassin settings\n")
    extra = plugin_section("rules", so, files=[str(th)], spamassassin=True,
                           spamassassin_local=[str(local)])
    gate = gate_factory([recorder.address], extra=extra)
    recorder.wait_idle()
    m = gate.wait_log(r"plugin rules: spamassassin 4\.000001 \(score set 0\): (\d+) files, "
                      r"(\d+) rules defined, (\d+) loaded, (\d+) skipped")
    assert int(m.group(3)) > 1000 and int(m.group(2)) == int(m.group(3)) + int(m.group(4))
    gate.wait_log(r"plugin rules: spamassassin skipped \d+: plugin "
                  r"Mail::SpamAssassin::Plugin::URIDNSBL is not emulated \(")
    body = f"This is the GTUBE, the\r\n{GTUBE}\r\ntest string.\r\n"
    msg = ("From: alice@example.org\r\nTo: bob@example.org\r\nSubject: gtube\r\n"
           "Date: Mon, 7 Dec 2026 10:00:00 +0000\r\nMessage-ID: <gtube.1@example.org>\r\n"
           f"\r\n{body}").encode()
    with gate.connect() as c:
        c.ehlo("mail.example.org")
        replies = c.mail_transaction("alice@example.org", ["bob@example.org"], msg)
        assert_reply(replies[-1], 550, "5.7.1")
        assert "Spam score too high" in replies[-1].text
        c.quit()
    assert recorder.messages == []
    line = gate.wait_log(r"tx from=<alice@example\.org> .*").group(0)
    assert re.search(r"decided=rules verdict=reject", line), line
    assert re.search(r'hits=[^"]*\bGTUBE\(body\)', line), line
    score = float(re.search(r'rules="score=([\d.]+)', line).group(1))
    # SpamAssassin's GTUBE scores 1000; the loopback client is a trusted relay, the only one,
    # so ALL_TRUSTED takes 1 off, as SpamAssassin does behind an MTA on 127.0.0.1
    assert re.search(r"symbols=\S*\bALL_TRUSTED\(-1\.0\)", line), line
    assert score >= 999, line

    # the admin's local file, read last, disables the rule: after a reload GTUBE passes
    local.write_text("score GTUBE 0\n")
    mark = gate.log_mark()
    gate.send_signal(signal.SIGHUP)
    gate.wait_log(r"reloaded configuration, generation 2", mark)
    gate.wait_log(r"plugin rules: spamassassin skipped \d+: disabled: score 0 \([^)]*\)", mark)
    with gate.connect() as c:
        c.ehlo("mail.example.org")
        replies = c.mail_transaction("alice@example.org", ["bob@example.org"], msg)
        assert replies[-1].code == 250, replies[-1]
        c.quit()
    [m] = recorder.wait_messages(1)
    assert GTUBE.encode() in m.content


def test_message_model_through_the_proxy(gate_factory, recorder, smtpgate_binary, workdir):
    """EnvelopeFrom is the MAIL FROM the client gave; body is SpamAssassin's, per paragraph,
    on mail that came with CRLF line ends."""
    so = plugin_dir(smtpgate_binary).parent.parent / "plugins" / "rules.so"
    if not so.exists():
        pytest.skip(f"{so} not built")
    th = workdir / "thresholds.rules"
    th.write_text('threshold reject 5 "550 5.7.1 Spam score too high"\n')
    local = workdir / "local.cf"
    local.write_text("header LOCAL_ENVFROM EnvelopeFrom =~ /^bounce\\@example\\.net$/\n"
                     "score LOCAL_ENVFROM 3\n"
                     "body LOCAL_PARA /^Bad Credit today$/\n"
                     "score LOCAL_PARA 3\n")
    extra = plugin_section("rules", so, files=[str(th)], spamassassin=True,
                           spamassassin_local=[str(local)])
    gate = gate_factory([recorder.address], extra=extra)
    recorder.wait_idle()
    msg = ("From: alice@example.org\r\nTo: bob@example.org\r\nSubject: offer\r\n"
           "Date: Mon, 7 Dec 2026 10:00:00 +0000\r\nMessage-ID: <model.1@example.org>\r\n"
           "\r\nHello,\r\n\r\nBad\r\nCredit today\r\n\r\nAlice\r\n").encode()
    with gate.connect() as c:
        c.ehlo("mail.example.org")
        replies = c.mail_transaction("bounce@example.net", ["bob@example.org"], msg)
        assert_reply(replies[-1], 550, "5.7.1")
        c.quit()
    # the plugin's line has every hit with its target, the tx line the scored ones
    line = gate.wait_log(r"plugin rules: rules: score=\S+ required=5\.0 verdict=reject .*").group(0)
    assert re.search(r"\bLOCAL_ENVFROM\(header EnvelopeFrom\)", line), line
    assert re.search(r"\bLOCAL_PARA\(body\)", line), line
    line = gate.wait_log(r"tx from=<bounce@example\.net> .*").group(0)
    assert re.search(r"symbols=\S*\bLOCAL_ENVFROM\(3\.0\),LOCAL_PARA\(3\.0\)", line), line
    with gate.connect() as c:
        c.ehlo("mail.example.org")
        c.mail_transaction("alice@example.org", ["bob@example.org"], msg)
        c.quit()
    line = gate.wait_log(r"tx from=<alice@example\.org> .*").group(0)
    assert "LOCAL_ENVFROM" not in line, line
    assert re.search(r"symbols=\S*\bLOCAL_PARA\(3\.0\)", line), line


# ---- the differential against spamassassin -L -t ----

HAM_HEADERS = ("From: Alice Example <alice@example.org>\nTo: Bob <bob@example.net>\n"
               "Date: Mon, 07 Dec 2026 10:00:00 +0000\n"
               "Message-ID: <20261207100000.4711@mail.example.org>\n")

MESSAGES = {
    "headers": (_msg('From: "" <x12345678901@example.com>\nTo: undisclosed\n'
                     "Subject: $500 for you\nDate: yesterday\nMessage-ID: <ab@x>\n",
                     "Hello, see the subject.\n"),
                {"FROM_BLANK_NAME", "FROM_LOCAL_DIGITS", "SUBJ_DOLLARS", "INVALID_DATE",
                 "TO_MALFORMED", "MSGID_SHORT"}),
    "body": (_msg(HAM_HEADERS + "Subject: Buy now\n",
                  "Dear Friend,\n\nI can repair your bad credit with a one time offer.\n"
                  "Dear lucky winner, unclaimed money awaits you.\n"),
             {"SUBJ_BUY", "DEAR_FRIEND", "BAD_CREDIT", "ONE_TIME", "DEAR_WINNER",
              "UNCLAIMED_MONEY"}),
    "template": (_msg(HAM_HEADERS + "Subject: Ch3ap meds here\n", "Nothing else.\n"),
                 {"SUBJECT_FUZZY_CHEAP"}),
    "gtube": (_msg(HAM_HEADERS + "Subject: test\n", f"{GTUBE}\n"), {"GTUBE"}),
    "ham": (_msg(HAM_HEADERS + "Subject: Minutes of the meeting\n",
                 "Hi Bob,\n\nthe minutes are attached.\n\nAlice\n"), set()),
    # MIME, an encoded and folded Subject, HTML: for the disagreements list
    "mime": (_msg(HAM_HEADERS + "Subject: =?utf-8?q?Buy_cheap_watches?=\n =?utf-8?b?bm93IQ==?=\n"
                  "MIME-Version: 1.0\n"
                  'Content-Type: multipart/alternative; boundary="b1"\n',
                  "--b1\nContent-Type: text/plain; charset=utf-8\n"
                  "Content-Transfer-Encoding: quoted-printable\n\n"
                  "Dear Friend, a replica watch at a low price=21\n"
                  "--b1\nContent-Type: text/html; charset=utf-8\n\n"
                  "<html><body><p>Dear Friend, a <b>replica</b> watch at a low Price!</p>"
                  '<a href="http://192.0.2.7/buy">buy</a></body></html>\n'
                  "--b1--\n"),
             {"SUBJ_BUY", "DEAR_FRIEND"}),
}
TARGETS = set().union(*(want for _, want in MESSAGES.values()))


@pytest.fixture(scope="module")
def both(tmp_path_factory):
    home = tmp_path_factory.mktemp("sa-home")
    work = tmp_path_factory.mktemp("msgs")
    return {name: (sa_run(msg, home, "").tests, gate_run(msg, work / f"{name}.eml").hits)
            for name, (msg, _) in MESSAGES.items()}


def test_same_hits_as_spamassassin(both, loaded, lint):
    common = {r for r in loaded if not r.startswith("__")}
    disagreements, _ = sa_diff.disagreements(both, common)
    # the rules each message was written for: hit by both, exactly where meant
    for name, (msg, want) in MESSAGES.items():
        sa, sg = both[name]
        assert want <= sa, f"{name}: spamassassin misses {want - sa} (hits {sorted(sa)})"
        assert want <= sg, f"{name}: smtpgate misses {want - sg} (hits {sorted(sg)})"
        assert TARGETS & sa == want and TARGETS & sg == want, (name, sa, sg)
    # and no header rule disagrees: their model (fields joined, unset values) is SpamAssassin's
    header_rules = {m.group(1) for m in re.finditer(r"^rule (\S+) header ", lint, re.M)}
    bad = [d for d in disagreements if d.split()[1] in header_rules]
    assert bad == [], bad


def test_bench_and_test_take_the_same_options(loaded, tmp_path):
    d = tmp_path / "msgs"
    d.mkdir()
    for name, (msg, _) in MESSAGES.items():
        (d / f"{name}.eml").write_bytes(msg)
    p = tool("bench", "--sa", d, "--seconds", "0")
    assert p.returncode == 0, p.stderr
    assert re.search(rf"^{len(MESSAGES)} messages \(.*\) from {re.escape(str(d))}, "
                     rf"{len(loaded)} rules$", p.stdout, re.M), p.stdout
    # test with SpamAssassin's rules alone: GTUBE's 1000 points, no threshold to refuse
    p = tool("test", "--sa", d / "gtube.eml")
    assert p.returncode == 0, p.stdout + p.stderr
    assert re.search(r"^hit\s+content\s+GTUBE\s+body\s", p.stdout, re.M), p.stdout
    assert re.search(r"^score 10\d\d\.\d required 5\.0$", p.stdout, re.M), p.stdout
    # without --sa and without a file: usage
    assert tool("test", d / "gtube.eml").returncode == 2


# ---- SpamAssassin's model of a message: every regex rule, subrules included ----

MODEL_HEADERS = HAM_HEADERS + "Return-Path: <alice@example.org>\n"
MODEL = {
    # a line end inside a paragraph is a blank, a blank line a break; www. made http://
    "paragraphs": (_msg(MODEL_HEADERS + "Subject: Your credit\n",
                        "Dear Friend,\nI can repair your bad\ncredit with a one\ntime offer.\n\n"
                        "CLICK\n\nHERE\nVisit www.example.com/offer?id=7 today.\n"),
                   {"BAD_CREDIT", "ONE_TIME", "__SINGLE_WORD_LINE", "__LOCAL_PP_NONPPURL"}),
    # HTML rendered (title, no style), links normalised ("/" before "?"), rawbody not rendered
    "html": (_msg(MODEL_HEADERS + "Subject: News for you\nMIME-Version: 1.0\n"
                  'Content-Type: multipart/alternative; boundary="b1"\n',
                  "--b1\nContent-Type: text/plain; charset=us-ascii\n\nYou have won a prize\n"
                  "--b1\nContent-Type: text/html; charset=utf-8\n"
                  "Content-Transfer-Encoding: quoted-printable\n\n"
                  "<html><head><title>Winner</title><style>p {color:red}</style></head><body>=\n"
                  "<p>Dear lucky <b>winner</b>,</p><div>unclaimed money<br>awaits you</div>=\n"
                  '<p><a href=3D"http://192.0.2.7?claim=3D1">Click here</a> or '
                  '<a href=3D"www.example.net/x">=\nthere</a>'
                  '<img src=3D"http://img.example.com/p.gif" width=3D"1" height=3D"1"></p>'
                  "</body></html>\n--b1--\n"),
             {"DEAR_WINNER", "UNCLAIMED_MONEY", "NORMAL_HTTP_TO_IP", "__YOU_WON_01",
              "__HAS_IMG_SRC", "__ANY_TEXT_ATTACH"}),
    # the mbox separator is no field: the header section is the next lines
    "mbox": (b"From alice@example.org Mon Dec  7 10:00:00 2026\n" +
             _msg(MODEL_HEADERS + "Subject: Minutes\n",
                  "Hi Bob,\n\nthe minutes are attached.\n\nAlice\n").replace(b"\r\n", b"\n"),
             {"__HAS_FROM", "__HAS_SUBJECT", "__SANE_MSGID"}),
    "noheaders": (b"Hello Bob\nthis message has no header section at all.\n\nAlice\n",
                  {"__NONEMPTY_BODY"}),
    # MESSAGEID takes X-Message-Id first; a folded, encoded Subject; Cc folded
    "headers": (_msg('From: "Alice" <alice@example.org>\nTo: bob@example.net\n'
                     "Cc: carol@example.com,\n dave@example.com\n"
                     "Date: Mon, 07 Dec 2026 10:00:00 +0000\nX-Message-Id: <abc@x>\n"
                     "Message-ID: <20261207100000.4711@mail.example.org>\n"
                     "Subject: =?utf-8?q?Cheap_watches?=\n =?utf-8?b?bm93IQ==?=\n", "Hello\n"),
                {"MSGID_SHORT", "__TOCC_EXISTS"}),
    # base64 text with CRLF inside, a PDF part's fields for mimeheader
    "base64": (_msg(MODEL_HEADERS + "Subject: Report\nMIME-Version: 1.0\n"
                    'Content-Type: multipart/mixed; boundary="b2"\n',
                    "--b2\nContent-Type: text/plain; charset=utf-8\n"
                    "Content-Transfer-Encoding: base64\n\n"
                    "RGVhciBGcmllbmQsDQp0aGlzIGlzIGEgcmVwb3J0Lg0KDQpDTElDSyBIRVJFDQo=\n"
                    '--b2\nContent-Type: application/pdf; name="r.pdf"\n'
                    'Content-Disposition: attachment; filename="r.pdf"\n'
                    "Content-Transfer-Encoding: base64\n\nJVBERi0xLjQK\n--b2--\n"),
               {"DEAR_FRIEND", "__CLICK_HERE", "__PDF_ATTACH_MT", "__PDF_ATTACH_FN2"}),
    # an address of the text is a mailto: URI
    "mail": (_msg(MODEL_HEADERS + "Subject: contact\n",
                  "Write to claims.agent@winner-example.com today.\n"),
             {"__URI_MAILTO", "__HAS_URI"}),
    # EnvelopeFrom: SpamAssassin guesses it from Return-Path, smtpgate knows MAIL FROM
    "envfrom": (_msg(HAM_HEADERS + "Return-Path: <xkqzvbtw@example.com>\nSubject: Hi\n",
                     "Hi Bob\n"),
                {"HK_RANDOM_ENVFROM"}),
}
# what the model shapes: rules over a text of the message, not metas or evals
MODEL_TYPES = {"body", "rawbody", "uri", "header", "mimeheader", "full", "headers",
               "headers:raw"}


def envelope_from(msg: bytes) -> str | None:
    m = re.search(rb"^Return-Path: <([^>]*)>", msg, re.M)
    return m.group(1).decode() if m else None


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    home = tmp_path_factory.mktemp("sa-home-model")
    work = tmp_path_factory.mktemp("model")
    out = {}
    for name, (msg, _) in MODEL.items():
        path = work / f"{name}.eml"
        path.write_bytes(msg)
        env = envelope_from(msg)
        p = tool("test", "--sa", path, *(["--from", env] if env else []))
        assert p.returncode in (0, 1), p.stdout + p.stderr
        sg = {m.group(1) for m in re.finditer(r"^hit\s+content\s+(\S+)\s", p.stdout, re.M)}
        out[name] = (sa_run(msg, home).hits, sg, p.stdout)
    return out


def test_message_model_agrees_with_spamassassin(model, lint):
    types = {m.group(1): m.group(2) for m in re.finditer(r"^rule (\S+) (\S+)", lint, re.M)}
    common = {r for r, t in types.items() if t in MODEL_TYPES}
    assert {types[r] for r in common} >= {"body", "rawbody", "uri", "header", "mimeheader"}
    disagreements, _ = sa_diff.disagreements(
        {name: (sa, sg) for name, (sa, sg, _) in model.items()}, common)
    for name, (msg, want) in MODEL.items():
        sa, sg, _ = model[name]
        assert want <= sa, f"{name}: spamassassin misses {want - sa}"
        assert want <= sg, f"{name}: smtpgate misses {want - sg}"
    assert disagreements == []


def test_test_warns_of_mbox_line_and_missing_header_section(model):
    out = model["mbox"][2]
    assert re.search(r'^warning \S+mbox\.eml: the first line is an mbox "From " line, not a '
                     r"field: left out, as SpamAssassin does$", out, re.M), out
    assert "no header section" not in out
    out = model["noheaders"][2]
    assert re.search(r"^warning \S+noheaders\.eml: no header section: the message starts "
                     r"with its body$", out, re.M), out
    assert "warning" not in model["html"][2]


def test_envelope_from_is_the_smtp_fact(model, tmp_path):
    # the message says one sender, MAIL FROM another: smtpgate judges MAIL FROM
    path = tmp_path / "envfrom.eml"
    path.write_bytes(MODEL["envfrom"][0])
    p = tool("test", "--sa", path, "--from", "alice@example.org")
    assert p.returncode in (0, 1), p.stdout + p.stderr
    assert not re.search(r"^hit\s+content\s+HK_RANDOM_ENVFROM\s", p.stdout, re.M), p.stdout
    assert re.search(r'^hit\s+content\s+HK_RANDOM_ENVFROM\s+header EnvelopeFrom\s+"xkqzvbtw"',
                     model["envfrom"][2], re.M)
