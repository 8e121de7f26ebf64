"""smtpgate-rules as an admin runs it: lint, test and bench on real files.

The binary is build/asan/smtpgate-rules when built (the test build), else
build/release/smtpgate-rules.  Exit statuses are part of the contract: lint
0/1, test 0 delivered / 1 refused, 2 for usage and unloadable rules.
"""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DEFAULT_RULES = ROOT / "rules" / "default.rules"
GTUBE = "XJS*C4JDBQADN1.NSBN3*2IDNEN*GTUBE-STANDARD-ANTI-UBE-TEST-EMAIL*C.34X"


def _binary() -> Path:
    for build in ("build/asan", "build/release"):
        p = ROOT / build / "smtpgate-rules"
        if p.exists():
            return p
    pytest.skip("smtpgate-rules is not built")


def run(*args: str | Path, timeout: float = 60) -> subprocess.CompletedProcess:
    env = dict(os.environ)
    env.setdefault("ASAN_OPTIONS", "abort_on_error=0:detect_leaks=1")
    return subprocess.run([str(_binary()), *map(str, args)], capture_output=True, text=True,
                          timeout=timeout, env=env)


def message(subject: str = "Quarterly report", body: str = "Hello Bob,\r\nsee you.\r\n",
            extra: str = "") -> str:
    return ("From: Alice <alice@example.org>\r\n"
            "To: Bob <bob@example.org>\r\n"
            f"Subject: {subject}\r\n"
            "Date: Tue, 1 Dec 2026 08:00:00 +0000\r\n"
            "Message-ID: <20261201080000.1@mail.example.org>\r\n"
            f"{extra}"
            "\r\n"
            f"{body}")


def write(tmp_path: Path, name: str, text: str) -> Path:
    p = tmp_path / name
    p.write_bytes(text.encode())
    return p


def test_lint_default_rules_ok():
    r = run("lint", DEFAULT_RULES)
    assert r.returncode == 0, r.stderr
    assert re.match(r"ok: \d+ rules in 1 file\n", r.stdout)
    assert r.stderr == ""


def test_lint_reports_every_error_with_position(tmp_path):
    bad = write(tmp_path, "bad.rules",
                "rule OK body /fine/ score 1\n"
                "rule BAD_TARGET hedaer /x/\n"
                "rule BAD_RE body /(unclosed/ score 1\n"
                "rule BAD_REPLY helo /x/ reject \"450 4.7.1 wrong class\"\n"
                "rule OK helo /again/\n")
    r = run("lint", bad)
    assert r.returncode == 1
    lines = r.stderr.splitlines()
    assert f"{bad}:2:17: unknown target \"hedaer\"" in lines[0]
    assert any(l.startswith(f"{bad}:4:32: reject reply: must start with a 5xx") for l in lines)
    assert any(l.startswith(f"{bad}:5:1: rule OK already defined at {bad}:1") for l in lines)
    assert any(l.startswith(f"{bad}:3:28: bad pattern: missing closing parenthesis") for l in lines)
    assert lines[-1] == "4 errors"


def test_lint_one_run_lists_every_error_and_warns_of_no_score(tmp_path):
    """A file with syntax errors still has the examples of its good rules run, and
    SpamAssassin's forms are named as such; a rule that can only score but has no
    score is a warning (exit 0 when nothing else is wrong)."""
    bad = write(tmp_path, "mixed.rules",
                "rule GOOD body /fine/ score 1 must-hit \"not here\"\n"
                "rule SA header Subject =~ /x/ score 1\n"
                "header SA2 Subject =~ /y/\n"
                "rule EV eval:check_for_missing_to_header()\n"
                "rule EX header exists:Date\n"
                "rule TF body /z/ score 1 tflags multiple\n"
                "rule RE body /(/ score 1\n")
    r = run("lint", bad)
    assert r.returncode == 1
    lines = r.stderr.splitlines()
    sa = "is SpamAssassin's syntax: load the file as SpamAssassin's (spamassassin_local), or "
    assert lines == [
        f"{bad}:1:40: must-hit example of GOOD does not hit",
        f'{bad}:2:24: "=~" {sa}write the pattern alone: /re/',
        f'{bad}:3:1: "header" {sa}write it as "rule NAME TARGET /re/ score N"',
        f'{bad}:4:9: "eval:" {sa}write a pattern rule (eval tests run from SpamAssassin\'s '
        "files only)",
        f'{bad}:5:16: "exists:Date" {sa}write: header Date exists',
        f'{bad}:6:26: "tflags" {sa}write tflags multiple maxhits=N as the clause multiple N, '
        "leave the others out",
        f"{bad}:7:16: bad pattern: missing closing parenthesis",
        "7 errors"], r.stderr
    ok = write(tmp_path, "noscore.rules",
               "rule NOSCORE body /a/\nrule __HELPER body /b/\nrule ACTS body /c/ reject\n"
               "rule WATCH body /d/ shadow\nrule TAGS body /e/ add-header \"X-E: 1\"\n"
               "rule RESCORED body /f/\nscore RESCORED 2\n")
    r = run("lint", ok)
    assert r.returncode == 0, r.stderr
    assert r.stderr == (f"{ok}:1:1: warning: rule NOSCORE has no score, so it counts 0 "
                        "(SpamAssassin's default is 1.0): give it \"score N\" or an action, or "
                        "name it __NOSCORE if it only feeds meta rules\n")
    assert r.stdout == "ok: 6 rules in 1 file\n"


def test_lint_checks_examples(tmp_path):
    f = write(tmp_path, "ex.rules",
              "rule HELO_IP helo /^\\d+\\.\\d+\\.\\d+\\.\\d+$/\n"
              "    must-hit \"192.0.2.1\"\n"
              "    must-hit \"[192.0.2.1]\"\n"
              "    must-not-hit \"mx.example.org\"\n")
    r = run("lint", f)
    assert r.returncode == 1
    assert f"{f}:3:14: must-hit example of HELO_IP does not hit" in r.stderr
    assert "1 example failed" in r.stderr


def test_lint_several_files_and_include(tmp_path):
    write(tmp_path, "inc.rules", "rule INCLUDED body /x/ score 1\n")
    a = write(tmp_path, "a.rules", "include \"inc.rules\"\nrule A meta INCLUDED && B score 1\n")
    b = write(tmp_path, "b.rules", "rule B header Subject /y/\n")
    r = run("lint", a, b)
    assert r.returncode == 0, r.stderr
    assert r.stdout == "ok: 3 rules in 3 files\n"
    c = write(tmp_path, "c.rules", "rule B helo /z/\n")
    r = run("lint", a, b, c)
    assert r.returncode == 1
    assert f"{c}:1:1: rule B already defined at {b}:1" in r.stderr


def test_gtube_message_is_rejected(tmp_path):
    eml = write(tmp_path, "gtube.eml", message(subject="Test", body=f"{GTUBE}\r\n"))
    r = run("test", DEFAULT_RULES, eml)
    assert r.returncode == 1, r.stdout + r.stderr
    assert re.search(r"^hit  content GTUBE  body  \"" + re.escape(GTUBE) + "\"", r.stdout, re.M)
    assert "verdict content: reject \"554 5.7.1 Message rejected: GTUBE test string\" (GTUBE)" \
        in r.stdout
    # refused: spam in the report, whatever the score (GTUBE scores nothing here)
    assert "X-Spam-Status: Yes, score=0.0 required=5.0 tests=GTUBE\n" in r.stdout, r.stdout


def _hits(out: str) -> list[str]:
    return [l.split()[2] for l in out.splitlines() if l.startswith("hit ")]


def test_default_rules_count_a_missing_field_once(tmp_path):
    """A missing From or Message-ID is MISSING_*'s alone; a malformed one is the other rule's."""
    eml = write(tmp_path, "nofrom.eml",
                "To: bob@example.org\r\nSubject: hello\r\n"
                "Date: Tue, 1 Dec 2026 08:00:00 +0000\r\n\r\nhi\r\n")
    r = run("test", DEFAULT_RULES, eml)
    assert r.returncode == 0, r.stdout + r.stderr
    assert _hits(r.stdout) == ["MISSING_MESSAGE_ID", "MISSING_FROM"], r.stdout
    assert "score 2.5 required 5.0\n" in r.stdout
    for from_, mid in (("undisclosed", "<123>"), ("<>", "<1234567890>"), ("", "")):
        eml = write(tmp_path, "bad.eml",
                    f"From: {from_}\r\nMessage-ID: {mid}\r\nSubject: hello\r\n"
                    "Date: Tue, 1 Dec 2026 08:00:00 +0000\r\n\r\nhi\r\n")
        r = run("test", DEFAULT_RULES, eml)
        assert _hits(r.stdout) == ["FROM_NO_ADDRESS", "MESSAGE_ID_NO_AT"], (from_, r.stdout)
        assert "score 2.0 required 5.0\n" in r.stdout
    eml = write(tmp_path, "good.eml", message())
    r = run("test", DEFAULT_RULES, eml)
    assert _hits(r.stdout) == ["__FROM_HAS_ADDRESS", "__MESSAGE_ID_HAS_AT"], r.stdout
    assert "score 0.0 required 5.0\n" in r.stdout


def test_clean_message_passes(tmp_path):
    eml = write(tmp_path, "clean.eml", message())
    r = run("test", DEFAULT_RULES, eml, "--ip", "192.0.2.10", "--helo", "mail.example.org",
            "--from", "alice@example.org", "--rcpt", "bob@example.org")
    assert r.returncode == 0, r.stdout + r.stderr
    # only the helpers that see a well-formed From and Message-ID
    assert _hits(r.stdout) == ["__FROM_HAS_ADDRESS", "__MESSAGE_ID_HAS_AT"], r.stdout
    assert "verdict content: continue" in r.stdout
    assert "X-Spam-Status: No, score=0.0 required=5.0 tests=none" in r.stdout


def test_tagged_message_and_stages(tmp_path):
    eml = write(tmp_path, "spammy.eml",
                "From: undisclosed\r\nTo: undisclosed-recipients:;\r\n"
                "Subject: FREE MONEY FOR YOU, CLAIM $5000 NOW\r\n\r\n"
                "<p>Click here to be removed</p> http://203.0.113.5/win\r\n")
    r = run("test", DEFAULT_RULES, eml, "--helo", "203.0.113.5", "--from", "x@example.com",
            "--rcpt", "a@example.org")
    assert r.returncode == 0, r.stdout + r.stderr
    out = r.stdout
    assert "hit  helo    HELO_BARE_IP  helo  \"203.0.113.5\"  score 1.5" in out
    assert re.search(r"^hit  content URI_BARE_IP  uri  \"http://203\.0\.113\.5/\"", out, re.M)
    assert "hit  content MISSING_DATE  header Date  (no text)" in out
    assert "subject-prefix \"[SPAM] \"" in out
    assert "add-header X-Spam-Flag: YES" in out
    status = re.search(r"^X-Spam-Status: (Yes, score=[\d.]+ required=5\.0 tests=.*?)\nX-Spam-Score",
                       out, re.M | re.S)
    assert status, out
    # folded as a header field (CRLF TAB; text mode reads LF TAB)
    tests = status.group(1).split("tests=")[1].replace("\n\t", "").split(",")
    assert "HELO_BARE_IP" in tests and "URI_BARE_IP" in tests and "MISSING_DATE" in tests
    assert "__HELO_SUSPECT" not in tests
    assert tests == sorted(tests)


def test_test_shows_every_matching_value_and_dumps(tmp_path):
    """Every value a rule matched (each field, each URI, each match in a text), not
    only the first; --dump-body/--dump-rawbody/--dump-uris show what the rules saw."""
    rules = write(tmp_path, "v.rules",
                  "rule RCVD header Received /by \\w+/ score 1\n"
                  "rule NUMS uri m{//\\d+\\.\\d+\\.\\d+\\.\\d+/} score 1\n"
                  "rule OOS body /o{2,}/ score 1\n"
                  "rule NOT_Z body !/zzz/ score 1\n"
                  "rule DIGIT helo /\\d+/ score 1\n")
    eml = write(tmp_path, "v.eml",
                "Received: by alpha\r\nReceived: from x by beta\r\nReceived: none\r\n"
                "Subject: x\r\nContent-Type: text/html\r\n\r\n"
                "<p>foo <b>booo</b></p>\r\n"
                '<a href="http://192.0.2.1/a">x</a> <a href="http://example.org/">y</a> '
                '<a href="http://198.51.100.2/b">z</a>\r\n')
    r = run("test", rules, eml, "--helo", "10.20.30.40", "--dump-body", "--dump-rawbody",
            "--dump-uris")
    assert r.returncode == 0, r.stdout + r.stderr
    out = r.stdout.splitlines()
    assert 'hit  helo    DIGIT  helo  "10", "20", "30", "40"  score 1.0' in out, r.stdout
    assert 'hit  content RCVD  header Received  "by alpha", "by beta"  score 1.0' in out
    assert ('hit  content NUMS  uri  "//192.0.2.1/", "//198.51.100.2/"  score 1.0' in out), \
        r.stdout
    assert 'hit  content OOS  body  "oo", "ooo"  score 1.0' in out, r.stdout
    assert "hit  content NOT_Z  body  (no text)  score 1.0" in out
    # the dumps come before the content stage's hits
    first_hit = out.index('hit  content RCVD  header Received  "by alpha", "by beta"  score 1.0')
    body_at = next(i for i, l in enumerate(out) if re.fullmatch(r"body: \d+ octets", l))
    raw_at = next(i for i, l in enumerate(out) if re.fullmatch(r"rawbody: \d+ octets", l))
    uris_at = out.index("uris: 3")
    assert body_at < raw_at < uris_at < first_hit
    body = out[body_at + 1:raw_at]
    assert all(l.startswith("|") for l in body) and "| foo booo" in body, body
    assert not any("<p>" in l for l in body)
    assert "| <p>foo <b>booo</b></p>" in out[raw_at + 1:uris_at]
    assert out[uris_at + 1:uris_at + 4] == ["uri http://192.0.2.1/a", "uri http://example.org/",
                                            "uri http://198.51.100.2/b"]
    # without the options, no dump
    r = run("test", rules, eml)
    assert "uris:" not in r.stdout and "body:" not in r.stdout


def test_helo_refusal_stops_at_helo(tmp_path):
    eml = write(tmp_path, "m.eml", message())
    r = run("test", DEFAULT_RULES, eml, "--helo", "localhost")
    assert r.returncode == 1
    assert "verdict helo: reject \"550 5.7.1 HELO localhost" in r.stdout
    assert "verdict content" not in r.stdout


def test_usage_and_unloadable(tmp_path):
    assert run().returncode == 2
    assert run("frobnicate").returncode == 2
    for verb in ("lint", "test", "bench"):
        r = run(verb, "--help")
        assert r.returncode == 0
        assert r.stdout.startswith(f"usage: smtpgate-rules {verb}")
    assert run("test", DEFAULT_RULES).returncode == 2
    broken = write(tmp_path, "broken.rules", "rule X body\n")
    eml = write(tmp_path, "m.eml", message())
    r = run("test", broken, eml)
    assert r.returncode == 2
    assert f"{broken}:1:12: expected a pattern after the target" in r.stderr
    assert run("test", DEFAULT_RULES, tmp_path / "missing.eml").returncode == 2


def test_bench_over_generated_messages(tmp_path):
    d = tmp_path / "msgs"
    d.mkdir()
    for i in range(20):
        body = "".join(f"line {k} of message {i}, nothing to see http://example.org/{k}\r\n"
                       for k in range(100))
        if i % 5 == 0:
            body += f"{GTUBE}\r\n"
        write(d, f"{i:03d}.eml", message(subject=f"Message {i}", body=body))
    r = run("bench", DEFAULT_RULES, d, "--seconds", "0.5")
    assert r.returncode == 0, r.stderr
    m = re.search(r"^(\d+) rounds, (\d+) messages in [\d.]+ s: (\d+) messages/s", r.stdout, re.M)
    assert m, r.stdout
    assert int(m.group(1)) >= 1 and int(m.group(2)) == 20 * int(m.group(1))
    assert int(m.group(3)) > 0
    assert r.stdout.startswith("20 messages (")
    assert "slowest rules (total ms, us per message):" in r.stdout
    assert run("bench", DEFAULT_RULES, tmp_path / "nowhere").returncode == 2


def test_native_score_statement_rescores_and_disables(tmp_path):
    """A local native file re-scores and turns off shipped rules and SpamAssassin's
    alike; the last score statement of a rule wins."""
    sa = tmp_path / "sa"
    sa.mkdir()
    write(sa, "10_t.cf", "body SA_ONE /one/\nscore SA_ONE 1.0\nbody SA_TWO /two/\n"
                         "score SA_TWO 2.0\nheader SA_SUBJ Subject =~ /Quarterly/\n")
    local = write(tmp_path, "local.rules",
                  "score SA_ONE 0\nscore SA_TWO 4.5\nscore SA_SUBJ 0\nscore SA_SUBJ 0.5\n"
                  "score GTUBE 0\nscore MISSING_DATE 3\n")
    eml = write(tmp_path, "m.eml", "From: Alice <alice@example.org>\r\nSubject: Quarterly\r\n"
                                   "Message-ID: <1@mail.example.org>\r\n\r\n"
                                   f"one two\r\n{GTUBE}\r\n")
    r = run("test", DEFAULT_RULES, local, eml, "--sa-dir", sa)
    assert r.returncode == 0, r.stdout + r.stderr
    assert [h for h in _hits(r.stdout) if not h.startswith("__")] == \
        ["MISSING_DATE", "SA_TWO", "SA_SUBJ"], r.stdout
    assert "score 8.0 required 5.0\n" in r.stdout
    assert "X-Spam-Status: Yes, score=8.0 required=5.0 tests=MISSING_DATE,SA_SUBJ,SA_TWO\n" \
        in r.stdout
    r = run("lint", DEFAULT_RULES, local, "--sa-dir", sa)
    assert r.returncode == 0, r.stdout + r.stderr


def test_bench_walks_a_folder_tree(tmp_path):
    """Subfolders are read (a Maildir's cur/ and new/); dot names and links to
    folders are not, so a link loop cannot trap the walk."""
    root = tmp_path / "Maildir"
    for sub, n in (("cur", 3), ("new", 2), ("archive/2026/12", 4), (".hidden", 5)):
        (root / sub).mkdir(parents=True)
        for i in range(n):
            write(root / sub, f"{i}.eml", message(subject=f"{sub} {i}"))
    write(root, ".dotfile", message())
    (root / "archive" / "loop").symlink_to(root)
    r = run("bench", DEFAULT_RULES, root, "--seconds", "0")
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("9 messages ("), r.stdout
    m = re.search(r"^(\d+) rounds, (\d+) messages", r.stdout, re.M)
    assert m and int(m.group(2)) == 9 * int(m.group(1)), r.stdout


def test_symbols_stand_in_for_other_plugins(tmp_path):
    """--symbol NAME=SCORE: what SPF or dnsbl would add, for symbol(NAME) and the score."""
    rules = write(tmp_path, "sym.rules",
                  'rule LISTED_FAIL meta symbol(SPF_FAIL) && symbol(DNSBL_ZEN_SPAMHAUS_ORG) '
                  'reject "550 5.7.1 SPF fail from a listed client"\n'
                  "rule SUBJ header Subject /offer/ score 1.5\n"
                  "threshold reject 5\n")
    msg = write(tmp_path, "m.eml", message(subject="special offer"))
    r = run("test", rules, msg, "--from", "a@b.example", "--symbol", "SPF_FAIL=2",
            "--symbol", "DNSBL_ZEN_SPAMHAUS_ORG=3")
    assert r.returncode == 1, r
    assert ('verdict mail: reject "550 5.7.1 SPF fail from a listed client" (LISTED_FAIL)'
            in r.stdout), r.stdout
    r = run("test", rules, msg, "--symbol", "SPF_SOFTFAIL=1", "--symbol", "DNSBL_ZEN_SPAMHAUS_ORG=3")
    assert r.returncode == 1, r
    assert "score 5.5 required 5.0\n" in r.stdout, r.stdout
    assert "(threshold reject)" in r.stdout, r.stdout
    # the folded field as printed (text mode reads its CRLF as a newline)
    assert ("X-Spam-Status: Yes, score=5.5 required=5.0 tests=DNSBL_ZEN_SPAMHAUS_ORG,\n"
            "\tSPF_SOFTFAIL,SUBJ\n") in r.stdout, r.stdout
    r = run("test", rules, msg, "--symbol", "NOSCORE")
    assert r.returncode == 2
    assert "--symbol NOSCORE: want NAME=SCORE" in r.stderr
