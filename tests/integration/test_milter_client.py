"""The milter plugin (plugins/milter, milter.so): real milters on loopback in
smtpgate's chain, called as Postfix calls them.

* A scripted libmilter milter (scripted_milter.py, python3-milter) gives every
  reply and makes every edit; the tests check what the client is told and
  what reaches the recording upstream, octet for octet where it matters, and
  the macros and connect facts the milter saw (X-Scripted).
* A packet-level milter (rawmilter.py) misbehaves on purpose: malformed,
  oversize and unknown replies, no reply, a closed connection, an edit it did
  not negotiate; each gets the configured default_action and one log line.
  It also records what the plugin sent: QUIT_NC reuse of one connection,
  protocol 2, SMFIP_SKIP and no-reply steps, body chunks of at most 65,535
  octets, the milter's own macro list.
* smtpgate-milter, driven by this plugin, gives the same verdicts and the
  same headers as the rules plugin in-process.
* OpenDKIM signs with a key from opendkim-genkey; a second OpenDKIM verifies
  with the key published by the tests' loopback DNS server: dkim=pass, and
  fail for a body changed after signing.

Each milter runs once per module; each test starts its own smtpgate.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from gate import REPO, plugin_section
from helpers import assert_reply, codes
from milter import Milter as SgMilter, find_milter_binary
from netutil import LOOPBACK, free_port, is_listening, wait_until
from rawmilter import SMFIP_NR_HDR, SMFIP_SKIP, RawMilter
from smtpclient import dot_stuff, simple_message

HERE = Path(__file__).resolve().parent
GTUBE = "XJS*C4JDBQADN1.NSBN3*2IDNEN*GTUBE-STANDARD-ANTI-UBE-TEST-EMAIL*C.34X"
TEMPFAIL_TEXT = ["4.7.1 Service unavailable - try again later"]


def milter_so(smtpgate_binary: Path) -> Path:
    so = Path(smtpgate_binary).resolve().parent / "plugins" / "milter.so"
    if not so.exists():
        pytest.skip(f"{so} not built")
    return so


def start_gate(gate_factory, recorder, smtpgate_binary, socket: str, name: str = "m",
               timeout: float | None = None, more: str = "", **options):
    opts = {"socket": socket, **options}
    if timeout is not None:
        opts["timeout"] = timeout
    extra = plugin_section(name, milter_so(smtpgate_binary), **opts) + "\n" + more
    g = gate_factory([recorder.address], extra=extra)
    recorder.wait_idle()
    return g


def header_block(content: bytes) -> str:
    return content.split(b"\r\n\r\n", 1)[0].decode()


# ---------------------------------------------------------------- scripted (libmilter)

@pytest.fixture(scope="module")
def scripted():
    port = free_port()
    proc = subprocess.Popen(["/usr/bin/python3", str(HERE / "scripted_milter.py"), str(port)],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        wait_until(lambda: is_listening(port) or proc.poll() is not None, 20,
                   "the scripted milter to listen")
        if proc.poll() is not None:
            pytest.fail(f"scripted milter exited: {proc.stdout.read().decode()[-2000:]}")
        yield f"inet:{LOOPBACK}:{port}"
    finally:
        proc.kill()
        proc.wait(10)


@pytest.fixture
def sgate(gate_factory, recorder, smtpgate_binary, scripted):
    return start_gate(gate_factory, recorder, smtpgate_binary, scripted, content_timeout=5,
                      timeout=10)


def test_every_edit_reaches_the_upstream(sgate, recorder):
    msg = simple_message("edits", "original body\r\n",
                         extra_headers="X-Change: old value\r\nX-Delete: goes away\r\n")
    with sgate.connect() as c:
        c.ehlo("client.example.test")
        replies = c.mail_transaction("a@example.test", ["b@example.test", "gone@example.test"],
                                     msg, mail_params="BODY=8BITMIME")
        assert codes(replies) == [250, 250, 250, 354, 250]
        c.quit()
    [m] = recorder.wait_messages(1)
    assert m.mail_from == "new-sender@example.test"
    assert m.mail_params == "SIZE=100"
    assert m.rcpts == ["b@example.test", "added@example.test", "addedpar@example.test"]
    assert m.rcpt_params == ["", "", "NOTIFY=NEVER"]
    head, body = m.content.split(b"\r\n\r\n", 1)
    lines = head.decode().split("\r\n")
    assert lines[0] == "X-Inserted: at the top"
    assert "X-Change: changed by milter" in lines
    assert not any(x.startswith("X-Delete") for x in lines), lines
    assert lines[-1] == "X-Added: added by milter"
    assert body == b"replaced body line 1\r\nreplaced body line 2\r\n"
    tx = sgate.wait_log(r"(\w+): tx from=").group(1)
    seen = next(x for x in lines if x.startswith("X-Scripted: "))
    port = re.search(r"port=(\d+)", seen).group(1)
    assert seen == (f"X-Scripted: helo=client.example.test from=<a@example.test>[BODY=8BITMIME] "
                    f"rcpts=<b@example.test>,<gone@example.test> i={tx}.1 client=127.0.0.1 "
                    f"port={port} family=inet j=smtpgate.example.test daemon=smtpgate "
                    f"client_addr=127.0.0.1 mail_addr=a@example.test")
    sgate.wait_log(rf"{tx}: disconnect from \S+:{port} ")  # the port is the client's


def test_big_replaced_body_is_streamed(sgate, recorder):
    with sgate.connect() as c:
        c.ehlo("client.example.test")
        assert codes(c.mail_transaction("a@example.test", ["b@example.test"],
                                        simple_message("bigbody", "small\r\n")))[-1] == 250
        c.quit()
    [m] = recorder.wait_messages(1)
    body = m.content.split(b"\r\n\r\n", 1)[1]
    assert body == (b"0123456789" * 9 + b"abcdefg\r\n") * 4000


def test_refusals_before_data(sgate, recorder):
    with sgate.connect() as c:
        r = c.cmd("EHLO reject-helo.test")
        assert r.code == 550 and r.lines == ["5.7.1 HELO refused by milter"]
        c.ehlo("client.example.test")
        r = c.cmd("MAIL FROM:<mailreject@example.test>")
        assert r.code == 553 and r.lines == ["5.7.1 Sender refused by milter"]
        r = c.cmd("MAIL FROM:<mailtempfail@example.test>")
        assert r.code == 451 and r.lines == TEMPFAIL_TEXT
        assert c.cmd("MAIL FROM:<ok@example.test>").code == 250
        r = c.cmd("RCPT TO:<rcptreject@example.test>")
        assert r.code == 550 and r.lines == ["5.7.1 First line", "5.7.1 Second line"]
        r = c.cmd("RCPT TO:<rcpttempfail@example.test>")
        assert r.code == 450 and r.lines == ["4.2.0 Mailbox busy"]
        assert c.cmd("RCPT TO:<fine@example.test>").code == 250
        assert c.cmd("DATA").code == 354
        c.send(dot_stuff(simple_message("plain")))
        assert c.read_reply().code == 250
        c.quit()
    [m] = recorder.wait_messages(1)
    assert m.rcpts == ["fine@example.test"]
    assert "rcpts=<fine@example.test> " in header_block(m.content)


def test_accept_and_discard_at_mail(sgate, recorder):
    with sgate.connect() as c:
        c.ehlo("client.example.test")
        assert codes(c.mail_transaction("mailaccept@example.test", ["r@example.test"],
                                        simple_message("accepted")))[-1] == 250
        assert codes(c.mail_transaction("maildiscard@example.test", ["r@example.test"],
                                        simple_message("dropped")))[-1] == 250
        c.quit()
    [m] = recorder.wait_messages(1)
    # accept: the milter is done with that message, which goes on unchanged
    assert m.mail_from == "mailaccept@example.test"
    assert "X-Scripted" not in header_block(m.content)
    time.sleep(0.3)
    assert len(recorder.messages) == 1
    assert re.search(r"tx from=<maildiscard@example\.test> .*result=discarded", sgate.log_text())
    # the milter was not asked the rest of the discarded message (it would not answer)
    assert "default_action" not in sgate.log_text()


def test_end_of_message_verdicts(sgate, recorder, workdir):
    with sgate.connect() as c:
        c.ehlo("client.example.test")
        r = c.mail_transaction("a@example.test", ["r@example.test"], simple_message("reject"))[-1]
        assert r.code == 554 and r.lines == ["5.7.1 Refused by milter", "5.7.1 at end of message"]
        r = c.mail_transaction("a@example.test", ["r@example.test"], simple_message("tempfail"))[-1]
        assert r.code == 451 and r.lines == TEMPFAIL_TEXT
        r = c.mail_transaction("a@example.test", ["r@example.test"], simple_message("discard"))[-1]
        assert r.code == 250
        r = c.mail_transaction("q@example.test", ["r@example.test"], simple_message("quarantine"))[-1]
        assert r.code == 250
        c.quit()
    time.sleep(0.3)
    assert recorder.messages == []
    files = list(Path(sgate.settings["quarantine_dir"]).glob("*.eml"))
    assert len(files) == 1, files
    text = files[0].read_bytes()
    assert b"X-Quarantine-Reason: scripted hold" in text
    assert b"X-Quarantine-Envelope-From: q@example.test" in text
    log = sgate.log_text()
    assert re.search(r"tx from=<q@example\.test> .*result=quarantined", log)


def test_progress_extends_the_timeout(gate_factory, recorder, smtpgate_binary, scripted):
    # three replies 0.6 s apart: each SMFIR_PROGRESS restarts the 1 s deadline
    g = start_gate(gate_factory, recorder, smtpgate_binary, scripted, content_timeout=1)
    with g.connect() as c:
        c.ehlo("client.example.test")
        r = c.mail_transaction("a@example.test", ["r@example.test"], simple_message("progress"))
        assert r[-1].code == 250
        c.quit()
    [m] = recorder.wait_messages(1)
    assert "X-Scripted" in header_block(m.content)
    assert "default_action" not in g.log_text()


@pytest.mark.parametrize("action,code,lines", [
    ("tempfail", 451, TEMPFAIL_TEXT),
    ("reject", 550, ["5.5.0 Service unavailable"]),
    ("accept", 250, None),
    ("quarantine", 250, None),
])
def test_stalled_milter_gets_default_action(gate_factory, recorder, smtpgate_binary, scripted,
                                            action, code, lines):
    g = start_gate(gate_factory, recorder, smtpgate_binary, scripted, content_timeout=1,
                   default_action=action)
    with g.connect() as c:
        c.ehlo("client.example.test")
        r = c.mail_transaction("a@example.test", ["r@example.test"], simple_message("sleep"))[-1]
        assert r.code == code
        if lines:
            assert r.lines == lines
        c.quit()
    g.wait_log(rf"plugin m: milter inet:127\.0\.0\.1:\d+: no reply to end of message within 1s "
               rf"\(content_timeout\); default_action {action}")
    time.sleep(0.3)
    if action == "accept":
        # as in Postfix, edits made before the failure stay made
        [m] = recorder.wait_messages(1)
        assert "X-Scripted: helo=client.example.test" in header_block(m.content)
    else:
        assert recorder.messages == []
    if action == "quarantine":
        assert len(list(Path(g.settings["quarantine_dir"]).glob("*.eml"))) == 1


def test_milter_down_is_default_action_at_connect(gate_factory, recorder, smtpgate_binary):
    dead = free_port()
    g = start_gate(gate_factory, recorder, smtpgate_binary, f"inet:127.0.0.1:{dead}")
    with g.connect(read_greeting=False) as c:
        r = c.read_reply()
        # a tempfail at connect is smtpgate's 421 greeting, with the milter's text
        assert r.code == 421 and r.lines == TEMPFAIL_TEXT
    g.wait_log(rf"milter inet:127\.0\.0\.1:{dead}: cannot connect: Connection refused; "
               r"default_action tempfail")
    g2 = start_gate(gate_factory, recorder, smtpgate_binary, f"inet:127.0.0.1:{dead}",
                    default_action="accept")
    with g2.connect() as c:
        c.ehlo("client.example.test")
        assert codes(c.mail_transaction("a@example.test", ["r@example.test"],
                                        simple_message("through")))[-1] == 250
        c.quit()
    recorder.wait_messages(1)


# ---------------------------------------------------------------- packet-level milter

@pytest.fixture(scope="module")
def raw():
    r = RawMilter().start()
    yield r
    r.stop()


@pytest.fixture
def rgate(gate_factory, recorder, smtpgate_binary, raw):
    raw.reset()
    return start_gate(gate_factory, recorder, smtpgate_binary, raw.address, content_timeout=1,
                      command_timeout=2, timeout=5)


def one_message(g, subject="raw", body="Hello.\r\n"):
    with g.connect() as c:
        c.ehlo("client.example.test")
        r = c.mail_transaction("a@example.test", ["r@example.test"], simple_message(subject, body))
        c.quit()
    return r


@pytest.mark.parametrize("mode,why", [
    ("malformed_eom", r"malformed reply 'y' to end of message: reply code is not 4xx or 5xx"),
    ("oversize_eom", r"packet length 16777216 out of range"),
    ("unknown_eom", r"malformed reply 'Z' to end of message: unknown reply command"),
    ("stall_eom", r"no reply to end of message within 1s \(content_timeout\)"),
    ("close_body", r"closed the connection waiting for body"),
    ("edit_eom", r"an edit it did not negotiate: addheader"),
])
def test_broken_milter_gets_default_action(rgate, raw, recorder, mode, why):
    raw.reset(mode, actions=0)
    r = one_message(rgate)[-1]
    assert r.code == 451 and r.lines == TEMPFAIL_TEXT
    rgate.wait_log(rf"milter inet:127\.0\.0\.1:\d+: {why}; default_action tempfail")
    assert recorder.messages == []
    # the next session has a milter that behaves, and passes
    raw.reset("continue")
    assert one_message(rgate)[-1].code == 250
    recorder.wait_messages(1)


def test_inet6_socket(gate_factory, recorder, smtpgate_binary):
    r6 = RawMilter("::1").start()
    try:
        g = start_gate(gate_factory, recorder, smtpgate_binary, r6.address)
        assert r6.address.startswith("inet:[::1]:")
        assert one_message(g)[-1].code == 250
        recorder.wait_messages(1)
        assert [cmd for _, cmd in r6.cmds()][:2] == [b"O", b"D"]
    finally:
        r6.stop()


def test_abort_when_the_transaction_ends_early(rgate, raw):
    with rgate.connect() as c:
        c.ehlo("client.example.test")
        assert c.cmd("MAIL FROM:<a@example.test>").code == 250
        assert c.cmd("RCPT TO:<r@example.test>").code == 250
        assert c.cmd("RSET").code == 250
        c.quit()
    wait_until(lambda: b"Q" in [cmd for _, cmd in raw.cmds()], 10, "SMFIC_QUIT")
    seq = [cmd for _, cmd in raw.cmds() if cmd != b"D"]
    assert seq == [b"O", b"C", b"H", b"M", b"R", b"A", b"Q"], seq


def test_negotiated_edit_is_applied(rgate, raw, recorder):
    raw.reset("edit_eom")
    assert one_message(rgate)[-1].code == 250
    [m] = recorder.wait_messages(1)
    assert header_block(m.content).split("\r\n")[-1] == "X-Raw: edited"


def test_quit_nc_reuses_one_connection(rgate, raw, recorder):
    for i in range(3):
        assert one_message(rgate, f"reuse {i}")[-1].code == 250
    recorder.wait_messages(3)
    wait_until(lambda: [c for _, c in raw.cmds()].count(b"K") == 3, 10, "three SMFIC_QUIT_NC")
    cmds = raw.cmds()
    assert {c for c, _ in cmds} == {1}, "one milter connection for three sessions"
    seq = [cmd for _, cmd in cmds if cmd != b"D"]
    assert seq.count(b"O") == 1
    assert seq.count(b"K") == 3, seq  # QUIT_NC after each session
    assert seq[:3] == [b"O", b"C", b"H"]
    assert seq[seq.index(b"K") + 1] == b"C"


def test_no_reuse_after_accept_at_end_of_message(rgate, raw, recorder):
    # libmilter is back to "after HELO" then, where it ignores QUIT_NC
    raw.reset("accept_eom")
    for i in range(2):
        assert one_message(rgate, f"accepted {i}")[-1].code == 250
    recorder.wait_messages(2)
    wait_until(lambda: [c for _, c in raw.cmds()].count(b"Q") == 2, 10, "two SMFIC_QUIT")
    assert {c for c, _ in raw.cmds()} == {1, 2}
    assert b"K" not in [cmd for _, cmd in raw.cmds()]


def test_no_reuse_after_a_session_without_message(rgate, raw):
    with rgate.connect() as c:
        c.ehlo("client.example.test")
        c.quit()
    wait_until(lambda: b"Q" in [cmd for _, cmd in raw.cmds()], 10, "SMFIC_QUIT")
    assert b"K" not in [cmd for _, cmd in raw.cmds()]


def test_protocol_2_milter(rgate, raw, recorder):
    raw.reset("continue", version=2, actions=0x1, protocol=0)
    assert one_message(rgate)[-1].code == 250
    recorder.wait_messages(1)
    wait_until(lambda: raw.cmds()[-1][1] == b"Q", 10, "SMFIC_QUIT")
    sent = [cmd for _, cmd in raw.cmds()]
    assert b"T" not in sent, "no SMFIC_DATA to a protocol 2 milter"
    assert sent[-1] == b"Q", "no QUIT_NC to a protocol 2 milter"
    for cmd in (b"C", b"H", b"M", b"R", b"L", b"N", b"B", b"E"):
        assert cmd in sent, cmd


def test_body_chunks_and_skip(rgate, raw, recorder):
    body = ("x" * 998 + "\r\n") * 150  # 150,000 octets
    assert one_message(rgate, body=body)[-1].code == 250
    chunks = [len(d) for _, cmd, d in raw.packets if cmd == b"B"]
    assert chunks == [65535, 65535, 150000 - 2 * 65535]
    raw.reset("skip_body", protocol=SMFIP_SKIP | SMFIP_NR_HDR)
    assert one_message(rgate, body=body)[-1].code == 250
    chunks = [len(d) for _, cmd, d in raw.packets if cmd == b"B"]
    assert chunks == [65535], "nothing more after SMFIR_SKIP"
    # no reply was wanted for the headers: they went without a wait
    assert [cmd for _, cmd in raw.cmds()].count(b"L") == 4
    [m1, m2] = recorder.wait_messages(2)
    assert m2.content.endswith(body.encode())


def test_macro_lists_the_milter_asks_for(rgate, raw, recorder):
    raw.reset("continue", macros={2: "{mail_addr} i {no_such_macro}", 3: "{rcpt_addr}"})
    assert one_message(rgate)[-1].code == 250
    pk = raw.packets
    for i, (_, cmd, data) in enumerate(pk):
        if cmd == b"M":
            mac = pk[i - 1]
            break
    assert mac[1] == b"D"
    tx = rgate.wait_log(r"(\w+): disconnect").group(1)
    assert mac[2] == b"M{mail_addr}\0a@example.test\0i\0" + f"{tx}.1".encode() + b"\0"
    rmac = [d for _, cmd, d in pk if cmd == b"D" and d[:1] == b"R"]
    assert rmac == [b"R{rcpt_addr}\0r@example.test\0"]
    cmac = [d for _, cmd, d in pk if cmd == b"D" and d[:1] == b"C"][0]
    names = cmac[1:].split(b"\0")[0::2]
    assert names[:5] == [b"j", b"{daemon_name}", b"{daemon_addr}", b"v", b"_"]


# ---------------------------------------------------------------- smtpgate-milter behind the plugin

RULES = r"""
rule GTUBE       body /XJS\*C4JDBQADN1\.NSBN3\*2IDNEN\*GTUBE-STANDARD-ANTI-UBE-TEST-EMAIL\*C\.34X/  score 1000
rule BAD_SENDER  mail_from  /^spammer@/i            reject "553 5.7.1 Sender blocked by rule"
rule CFO_GUARD   rcpt_to    /^cfo@/                 reject "550 5.7.1 Not for the CFO"
rule MONEY       header Subject  /money/i           score 3
rule CHEAP       body       /cheap pills/i          score 3
threshold tag 5  add-header "X-Spam-Flag: YES"
threshold reject 10  "550 5.7.1 Message content rejected"
"""


def rules_so(smtpgate_binary: Path) -> Path:
    return Path(smtpgate_binary).resolve().parent / "plugins" / "rules.so"


@pytest.fixture(scope="module")
def sg_milter(workbase, smtpgate_binary):
    binary = find_milter_binary()
    if binary is None:
        pytest.skip("smtpgate-milter not built")
    wd = Path(workbase) / "sg-milter"
    wd.mkdir(exist_ok=True)
    rules = wd / "local.rules"
    rules.write_text(RULES)
    plugins = plugin_section("rules", rules_so(smtpgate_binary), files=[str(rules)])
    m = SgMilter(binary, wd, free_port(), plugins).start()
    yield m, rules
    m.stop()
    m.assert_clean_exit()


SAMPLES = [
    ("spammer@example.test", ["r@example.test"], simple_message("hello")),
    ("a@example.test", ["cfo@example.test", "bob@example.test"], simple_message("to the cfo")),
    ("a@example.test", ["r@example.test"], simple_message("Money money", "cheap pills\r\n")),
    ("a@example.test", ["r@example.test"],
     simple_message("lots of money", "cheap pills\r\n" + GTUBE + "\r\n")),
    ("a@example.test", ["r@example.test"], simple_message("plain", "nothing to see\r\n")),
]


def run_samples(g):
    out = []
    with g.connect() as c:
        c.ehlo("client.example.test")
        for frm, rcpts, msg in SAMPLES:
            out.append([(r.code, [re.sub(r"queued as \w+", "queued as ID", x) for x in r.lines])
                        for r in c.mail_transaction(frm, rcpts, msg)])
            c.cmd("RSET")
        c.quit()
    return out


def test_smtpgate_milter_gives_the_rules_plugins_verdicts(gate_factory, recorder_factory,
                                                          smtpgate_binary, sg_milter):
    m, rules = sg_milter
    rec_in, rec_out = recorder_factory(), recorder_factory()
    inproc = gate_factory([rec_in.address],
                          extra=plugin_section("rules", rules_so(smtpgate_binary),
                                               files=[str(rules)]))
    via = gate_factory([rec_out.address],
                       extra=plugin_section("m", milter_so(smtpgate_binary),
                                            socket=f"inet:127.0.0.1:{m.port}"))
    rec_in.wait_idle()
    rec_out.wait_idle()
    a, b = run_samples(inproc), run_samples(via)
    assert a == b
    assert [x[-1][0] for x in a] == [553, 250, 250, 550, 250]
    assert a[1][1] == (550, ["5.7.1 Not for the CFO"])
    assert a[3][-1] == (550, ["5.7.1 Message content rejected"])
    ma, mb = rec_in.wait_messages(3), rec_out.wait_messages(3)

    def spam_headers(msg):
        return [x for x in header_block(msg.content).split("\r\n")
                if x.startswith(("X-Spam-Flag", "X-Spam-Score"))]
    assert [spam_headers(x) for x in ma] == [spam_headers(x) for x in mb]
    assert "X-Spam-Flag: YES" in spam_headers(mb[1])
    assert [x.rcpts for x in ma] == [x.rcpts for x in mb] == [["bob@example.test"],
                                                               ["r@example.test"],
                                                               ["r@example.test"]]


# ---------------------------------------------------------------- OpenDKIM

OPENDKIM = shutil.which("opendkim") or "/usr/sbin/opendkim"
GENKEY = shutil.which("opendkim-genkey") or "/usr/sbin/opendkim-genkey"


def dkim_dns_records(key: list[str]) -> list[tuple[str, ...]]:
    """The DKIM key, and SPF and DMARC records: sign.example.test publishes
    p=reject and allows loopback; rej.example.test publishes p=reject and
    allows only 192.0.2.1."""
    return [("sel._domainkey.sign.example.test", *key),
            ("sign.example.test", "v=spf1 ip4:127.0.0.0/8 -all"),
            ("_dmarc.sign.example.test", "v=DMARC1; p=reject"),
            ("rej.example.test", "v=spf1 ip4:192.0.2.1 -all"),
            ("_dmarc.rej.example.test", "v=DMARC1; p=reject")]


class OpenDkim:
    def __init__(self, wd: Path, name: str, conf: str) -> None:
        self.port = free_port()
        self.conf = wd / f"{name}.conf"
        self.conf.write_text(conf + f"Socket inet:{self.port}@127.0.0.1\n"
                             f"PidFile {wd}/{name}.pid\nBackground no\nSyslog no\n"
                             f"UserID root\n")
        self.log = wd / f"{name}.log"
        with open(self.log, "ab") as err:
            self.proc = subprocess.Popen([OPENDKIM, "-f", "-x", str(self.conf)],
                                         stdout=err, stderr=err)
        wait_until(lambda: is_listening(self.port) or self.proc.poll() is not None, 20,
                   f"opendkim {name} to listen")
        if self.proc.poll() is not None:
            raise RuntimeError(self.log.read_text()[-2000:])

    @property
    def socket(self) -> str:
        return f"inet:127.0.0.1:{self.port}"

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)


@pytest.fixture(scope="module")
def dkim_pair(workbase):
    from dnsserver import DnsServer, dnsmasq_available
    if not (Path(OPENDKIM).exists() and Path(GENKEY).exists()):
        pytest.skip("opendkim or opendkim-genkey not installed")
    if not dnsmasq_available():
        pytest.skip("dnsmasq not installed")
    # OpenDKIM refuses a configuration under a folder others may write (/tmp)
    (REPO / "build").mkdir(exist_ok=True)
    wd = Path(tempfile.mkdtemp(prefix="dkim-", dir=REPO / "build"))
    subprocess.run([GENKEY, "-b", "1024", "-d", "sign.example.test", "-s", "sel", "-D", str(wd)],
                   check=True, timeout=60)
    txt = (wd / "sel.txt").read_text()
    dns = DnsServer(domains=["sign.example.test", "rej.example.test"])
    key = re.findall(r'"([^"]*)"', txt)
    for d in dkim_dns_records(key):
        dns.txt(*d)
    dns.start()
    host, port = dns.address.split(":")
    (wd / "resolv.conf").write_text(f"nameserver {host}\n")
    unbound = wd / "unbound.conf"
    # OpenDKIM resolves with libunbound, which by itself answers NXDOMAIN for
    # the special-use name .test: nodefault lets the loopback server answer.
    unbound.write_text(f"server:\n  do-not-query-localhost: no\n  module-config: \"iterator\"\n"
                       f"  local-zone: \"test.\" nodefault\n"
                       f"forward-zone:\n  name: \".\"\n  forward-addr: {host}@{port}\n")
    started = []
    try:
        signer = OpenDkim(wd, "signer", f"Mode s\nDomain sign.example.test\nSelector sel\n"
                          f"KeyFile {wd}/sel.private\nCanonicalization relaxed/simple\n"
                          f"SignHeaders From,To,Subject\nInternalHosts 127.0.0.0/8\n"
                          f"On-NoSignature accept\n")
        started.append(signer)
        verifier = OpenDkim(wd, "verifier", f"Mode v\n"
                            f"AuthservID verify.example.test\nAlwaysAddARHeader yes\n"
                            f"PeerList /dev/null\nInternalHosts -\n"
                            f"ResolverConfiguration {unbound}\n")
        started.append(verifier)
        signer.key = key
        signer.wd = wd
        yield signer, verifier, dns
    finally:
        for d in started:
            d.stop()
        dns.stop()
        shutil.rmtree(wd, ignore_errors=True)


def test_opendkim_signs_and_a_second_opendkim_verifies(gate_factory, recorder_factory,
                                                       smtpgate_binary, dkim_pair):
    signer, verifier, _ = dkim_pair
    rec_signed, rec_checked = recorder_factory(), recorder_factory()
    sign_gate = gate_factory([rec_signed.address],
                             extra=plugin_section("dkim", milter_so(smtpgate_binary),
                                                  socket=signer.socket))
    verify_gate = gate_factory([rec_checked.address],
                               extra=plugin_section("dkimverify", milter_so(smtpgate_binary),
                                                    socket=verifier.socket))
    rec_signed.wait_idle()
    rec_checked.wait_idle()
    msg = (b"From: someone@sign.example.test\r\nTo: rcpt@example.test\r\n"
           b"Subject: signed\r\nMessage-ID: <dkim1@sign.example.test>\r\n\r\n"
           b"A body to sign.\r\nSecond line.\r\n")
    with sign_gate.connect() as c:
        c.ehlo("client.example.test")
        assert codes(c.mail_transaction("someone@sign.example.test", ["rcpt@example.test"],
                                        msg))[-1] == 250
        c.quit()
    [signed] = rec_signed.wait_messages(1)
    head = header_block(signed.content)
    assert head.startswith("DKIM-Signature: "), head
    sig = re.sub(r"\s+", " ", head.split("\r\n\r\n")[0])
    assert "d=sign.example.test" in sig and "s=sel" in sig
    tampered = signed.content.replace(b"A body to sign.", b"A body changed.")
    with verify_gate.connect() as c:
        c.ehlo("client.example.test")
        for content in (signed.content, tampered):
            assert codes(c.mail_transaction("someone@sign.example.test", ["rcpt@example.test"],
                                            content))[-1] == 250
        c.quit()
    good, bad = rec_checked.wait_messages(2)

    def ar(m):
        h = header_block(m.content)
        found = re.search(r"^Authentication-Results: ([^\r\n]*(?:\r\n[ \t][^\r\n]*)*)", h, re.M)
        assert found, h
        return re.sub(r"\s+", " ", found.group(1))
    assert re.search(r"verify\.example\.test; dkim=pass .*header\.d=sign\.example\.test", ar(good)), ar(good)
    assert re.search(r"verify\.example\.test; dkim=fail ", ar(bad)), ar(bad)


# ---------------------------------------------------------------- ClamAV

EICAR = r"X5O!P%@AP[4\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*"


class Daemon:
    """A milter or its back end run in the foreground by a test; stopped with
    SIGTERM, then killed after a bounded wait."""

    def __init__(self, argv: list[str], log: Path, port: int, what: str,
                 timeout: float = 90) -> None:
        self.port = port
        self.log = log
        with open(log, "ab") as err:
            self.proc = subprocess.Popen(argv, stdout=err, stderr=err, stdin=subprocess.DEVNULL)
        wait_until(lambda: is_listening(port) or self.proc.poll() is not None, timeout,
                   f"{what} to listen on {port}")
        if self.proc.poll() is not None:
            raise RuntimeError(f"{what} exited: {log.read_text()[-3000:]}")

    @property
    def socket(self) -> str:
        return f"inet:127.0.0.1:{self.port}"

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)


@pytest.fixture(scope="module")
def clamav(workbase):
    if not (shutil.which("clamd") or Path("/usr/sbin/clamd").exists()) or \
            not Path("/usr/sbin/clamav-milter").exists():
        pytest.skip("clamav-daemon / clamav-milter not installed")
    wd = Path(tempfile.mkdtemp(prefix="clamav-", dir=workbase))
    db = wd / "db"
    db.mkdir()
    # the only signature: EICAR's test string, written by the test (no download)
    (db / "smtpgate-test.ndb").write_text(f"Smtpgate-Test-EICAR:0:*:{EICAR.encode().hex()}\n")
    cport, mport, qport = free_port(), free_port(), free_port()
    (wd / "clamd.conf").write_text(
        f"Foreground yes\nTCPSocket {cport}\nTCPAddr 127.0.0.1\nDatabaseDirectory {db}\n"
        f"PidFile {wd}/clamd.pid\nLogFile {wd}/clamd.file.log\n")
    clamd = Daemon(["/usr/sbin/clamd", "-c", str(wd / "clamd.conf")], wd / "clamd.log", cport,
                   "clamd")
    milters = []
    for port, action in ((mport, "Reject"), (qport, "Quarantine")):
        conf = wd / f"milter-{action}.conf"
        conf.write_text(
            f"MilterSocket inet:{port}@127.0.0.1\nClamdSocket tcp:127.0.0.1:{cport}\n"
            f"Foreground yes\nPidFile {wd}/milter-{action}.pid\nOnInfected {action}\n"
            f"RejectMsg Virus found: %v\nAddHeader Replace\nLogFile {wd}/milter-{action}.file.log\n")
        milters.append(Daemon(["/usr/sbin/clamav-milter", "-c", str(conf)],
                              wd / f"milter-{action}.log", port, f"clamav-milter {action}"))
    yield milters[0], milters[1]
    for d in (*milters, clamd):
        d.stop()


def test_clamav_refuses_eicar_and_passes_clean_mail(gate_factory, recorder, smtpgate_binary,
                                                    clamav):
    reject, _ = clamav
    g = start_gate(gate_factory, recorder, smtpgate_binary, reject.socket, name="clamav")
    with g.connect() as c:
        c.ehlo("client.example.test")
        r = c.mail_transaction("a@example.test", ["r@example.test"],
                               simple_message("virus", EICAR + "\r\n"))[-1]
        assert r.code == 550 and r.lines == ["5.7.1 Virus found: Smtpgate-Test-EICAR.UNOFFICIAL"], r
        r = c.mail_transaction("a@example.test", ["r@example.test"],
                               simple_message("clean", "Nothing harmful here.\r\n"))[-1]
        assert r.code == 250
        c.quit()
    [m] = recorder.wait_messages(1)
    head = header_block(m.content)
    assert re.search(r"^X-Virus-Status: Clean\r?$", head, re.M), head
    assert re.search(r"^X-Virus-Scanned: clamav-milter ", head, re.M), head


def test_clamav_quarantines_eicar_when_told(gate_factory, recorder, smtpgate_binary, clamav):
    _, quarantine = clamav
    g = start_gate(gate_factory, recorder, smtpgate_binary, quarantine.socket, name="clamav")
    with g.connect() as c:
        c.ehlo("client.example.test")
        r = c.mail_transaction("a@example.test", ["r@example.test"],
                               simple_message("virus", EICAR + "\r\n"))[-1]
        assert r.code == 250
        c.quit()
    g.wait_log(r"tx from=<a@example\.test> .*result=quarantined")
    assert recorder.messages == []
    [f] = list(Path(g.settings["quarantine_dir"]).glob("*.eml"))
    assert b"X-Quarantine-Filter: clamav" in f.read_bytes()


# ---------------------------------------------------------------- SpamAssassin

@pytest.fixture(scope="module")
def spamass(workbase):
    if not (Path("/usr/sbin/spamd").exists() and Path("/usr/sbin/spamass-milter").exists()):
        pytest.skip("spamd / spamass-milter not installed")
    wd = Path(tempfile.mkdtemp(prefix="spamass-", dir=workbase))
    sport, mport = free_port(), free_port()
    # -L: local tests only, no DNS or network lookups
    spamd = Daemon(["/usr/sbin/spamd", "-L", "--listen", f"127.0.0.1:{sport}",
                    "--allowed-ips", "127.0.0.1", "--nouser-config", "-u", "nobody",
                    "--pidfile", str(wd / "spamd.pid"), "--max-children", "1"],
                   wd / "spamd.log", sport, "spamd", timeout=180)
    milter = Daemon(["/usr/sbin/spamass-milter", "-p", f"inet:{mport}@127.0.0.1", "-r", "5",
                     "-P", str(wd / "spamass.pid"), "--", "-d", "127.0.0.1", "-p", str(sport)],
                    wd / "spamass.log", mport, "spamass-milter")
    yield milter
    milter.stop()
    spamd.stop()


def test_spamassassin_refuses_gtube(gate_factory, recorder, smtpgate_binary, spamass):
    g = start_gate(gate_factory, recorder, smtpgate_binary, spamass.socket, name="spamass",
                   timeout=60, content_timeout=50)
    with g.connect() as c:
        c.ehlo("client.example.test")
        r = c.mail_transaction("a@example.test", ["r@example.test"],
                               simple_message("gtube", GTUBE + "\r\n"))[-1]
        assert r.code == 550 and r.lines == ["5.7.1 Blocked by SpamAssassin"], r
        r = c.mail_transaction("a@example.test", ["r@example.test"],
                               simple_message("ham", "An ordinary note about lunch.\r\n"))[-1]
        assert r.code == 250
        c.quit()
    [m] = recorder.wait_messages(1)
    assert re.search(r"^X-Spam-Checker-Version: SpamAssassin ", header_block(m.content), re.M)


# ---------------------------------------------------------------- rspamd

RSPAMD_DISABLED = ("fuzzy_check", "rbl", "surbl", "phishing", "asn", "emails", "url_redirector",
                   "rspamd_update", "dcc", "mx_check", "neural", "reputation", "greylist",
                   "ratelimit", "history_redis", "metric_exporter", "clickhouse", "elastic",
                   "p0f", "bimi", "external_services", "antivirus", "whitelist", "multimap")


@pytest.fixture(scope="module")
def rspamd(workbase):
    from dnsserver import DnsServer, dnsmasq_available
    if not Path("/usr/bin/rspamd").exists() or not dnsmasq_available():
        pytest.skip("rspamd or dnsmasq not installed")
    wd = Path(tempfile.mkdtemp(prefix="rspamd-", dir=workbase))
    for d in ("local.d", "override.d", "db", "run", "log"):
        (wd / d).mkdir()
    # every name rspamd asks for is the loopback server's NXDOMAIN: nothing leaves
    dns = DnsServer(domains=["example.test"])
    dns.start()
    proxy, normal, controller = free_port(), free_port(), free_port()
    ov = wd / "override.d"
    (ov / "worker-proxy.inc").write_text(
        f'bind_socket = "127.0.0.1:{proxy}";\nmilter = yes;\ntimeout = 120s;\n'
        f'upstream "local" {{ default = yes; self_scan = yes; }}\ncount = 1;\n')
    (ov / "worker-normal.inc").write_text(f'bind_socket = "127.0.0.1:{normal}";\ncount = 1;\n')
    (ov / "worker-controller.inc").write_text(f'bind_socket = "127.0.0.1:{controller}";\n')
    (ov / "options.inc").write_text(
        f'dns {{ nameserver = ["{dns.address}"]; timeout = 1s; retransmits = 1; }}\n'
        f'hs_cache_dir = "{wd}/db";\n')
    (ov / "logging.inc").write_text(f'type = "file";\nfilename = "{wd}/log/rspamd.log";\n'
                                    f'level = "info";\n')
    (wd / "local.d" / "milter_headers.conf").write_text(
        'use = ["x-spamd-result", "x-spam-status"];\nskip_local = false;\n'
        'skip_authenticated = false;\n')
    for mod in RSPAMD_DISABLED:
        (wd / "local.d" / f"{mod}.conf").write_text("enabled = false;\n")
    argv = ["/usr/bin/rspamd", "-f", "-u", "root", "-g", "root", "-c", "/etc/rspamd/rspamd.conf",
            f"--var=LOCAL_CONFDIR={wd}", f"--var=DBDIR={wd}/db", f"--var=RUNDIR={wd}/run",
            f"--var=LOGDIR={wd}/log", "-i"]
    try:
        d = Daemon(argv, wd / "rspamd.stderr", proxy, "rspamd proxy", timeout=120)
    except Exception:
        dns.stop()
        raise
    yield d
    d.stop()
    dns.stop()


def test_rspamd_refuses_gtube_and_tags_plain_mail(gate_factory, recorder, smtpgate_binary, rspamd):
    g = start_gate(gate_factory, recorder, smtpgate_binary, rspamd.socket, name="rspamd",
                   timeout=60, content_timeout=50)
    with g.connect() as c:
        c.ehlo("client.example.test")
        r = c.mail_transaction("a@example.test", ["r@example.test"],
                               simple_message("gtube", GTUBE + "\r\n"))[-1]
        assert r.code == 554 and r.lines == ["5.7.1 Gtube pattern"], r
        r = c.mail_transaction("a@example.test", ["r@example.test"],
                               simple_message("plain", "An ordinary note about lunch.\r\n"))[-1]
        assert r.code == 250
        c.quit()
    [m] = recorder.wait_messages(1)
    head = header_block(m.content)
    assert re.search(r"^X-Spamd-Result: default: False \[", head, re.M), head


# ---------------------------------------------------------------- the authentication stack

@pytest.fixture(scope="module")
def opendmarc(dkim_pair):
    """OpenDMARC in a network namespace of its own: it resolves with the C
    library, whose server is resolv.conf's on port 53, so a dnsmasq with the
    same records answers there, inside, and nothing can leave; smtpgate
    reaches the milter through a unix socket."""
    from dnsserver import DnsServer
    if not Path("/usr/sbin/opendmarc").exists() or not shutil.which("unshare"):
        pytest.skip("opendmarc or unshare not available")
    signer, _, _ = dkim_pair
    wd = signer.wd
    sock = wd / "opendmarc.sock"
    (wd / "dmarc-resolv.conf").write_text("nameserver 127.0.0.1\n")
    (wd / "opendmarc.conf").write_text(
        f"Socket local:{sock}\nAuthservID gate.example.test\n"
        f"TrustedAuthservIDs verify.example.test,gate.example.test\nRejectFailures true\n"
        # its own SPF check (libspf2) passes every loopback client, and the SPF
        # plugin's result is not among the header fields a later milter is
        # shown (only milters' own): DMARC decides on the DKIM result here
        f"SPFSelfValidate false\nPidFile {wd}/opendmarc.pid\n"
        f"Background false\nSyslog false\nUserID root\nIgnoreAuthenticatedClients false\n"
        # by default OpenDMARC lets mail from 127.0.0.1 by unchecked: the tests' client is there
        f"IgnoreHosts {wd}/dmarc-ignore-none\n")
    (wd / "dmarc-ignore-none").write_text("")
    inner = DnsServer(domains=["sign.example.test", "rej.example.test"])
    for d in dkim_dns_records(signer.key):
        inner.txt(*d)
    inner.port = 53
    dnsmasq = " ".join(f"'{a}'" for a in inner.command())
    # the namespace's dnsmasq writes down its pid, which the teardown ends
    dns_pid = wd / "dmarc-dns.pid"
    script = (f"ip link set lo up && mount --bind {wd}/dmarc-resolv.conf /etc/resolv.conf && "
              f"{{ {dnsmasq} & }} && echo $! > {dns_pid} && sleep 0.5 && "
              f"exec /usr/sbin/opendmarc -f -c {wd}/opendmarc.conf")
    log = open(wd / "opendmarc.log", "ab")
    proc = subprocess.Popen(["unshare", "-m", "-n", "--kill-child", "sh", "-c", script],
                            stdout=log, stderr=log, stdin=subprocess.DEVNULL)
    wait_until(lambda: sock.exists() or proc.poll() is not None, 30, "opendmarc's socket")
    if proc.poll() is not None:
        raise RuntimeError((wd / "opendmarc.log").read_text()[-3000:])
    yield f"unix:{sock}"
    proc.terminate()
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(5)
    log.close()
    if dns_pid.exists():
        import os
        import signal
        try:
            os.kill(int(dns_pid.read_text()), signal.SIGTERM)
        except (ProcessLookupError, ValueError):
            pass


def test_spf_dkim_and_dmarc_in_one_chain(gate_factory, recorder_factory, smtpgate_binary,
                                         dkim_pair, opendmarc):
    signer, verifier, dns = dkim_pair
    so = milter_so(smtpgate_binary)
    spf_so = Path(smtpgate_binary).resolve().parent / "plugins" / "spf.so"
    rec_signed, rec = recorder_factory(), recorder_factory()
    sign_gate = gate_factory([rec_signed.address],
                             extra=plugin_section("dkim", so, socket=signer.socket))
    chain = (plugin_section("spf", spf_so, nameserver=dns.address, on_fail="tag",
                            exempt_networks=[], authserv_id="gate.example.test")
             + "\n" + plugin_section("dkimverify", so, socket=verifier.socket)
             + "\n" + plugin_section("dmarc", so, socket=opendmarc))
    g = gate_factory([rec.address], extra=chain)
    rec_signed.wait_idle()
    rec.wait_idle()
    good = (b"From: someone@sign.example.test\r\nTo: rcpt@example.test\r\n"
            b"Subject: aligned\r\nMessage-ID: <dmarc1@sign.example.test>\r\n\r\nAligned.\r\n")
    with sign_gate.connect() as c:
        c.ehlo("client.example.test")
        assert codes(c.mail_transaction("someone@sign.example.test", ["rcpt@example.test"],
                                        good))[-1] == 250
        c.quit()
    [signed] = rec_signed.wait_messages(1)
    bad = (b"From: someone@rej.example.test\r\nTo: rcpt@example.test\r\n"
           b"Subject: forged\r\nMessage-ID: <dmarc2@rej.example.test>\r\n\r\nForged.\r\n")
    with g.connect() as c:
        c.ehlo("client.example.test")
        r = c.mail_transaction("someone@rej.example.test", ["rcpt@example.test"], bad)[-1]
        assert r.code == 550 and r.lines == ["5.7.1 rejected by DMARC policy for rej.example.test"], r
        r = c.mail_transaction("someone@sign.example.test", ["rcpt@example.test"],
                               signed.content)[-1]
        assert r.code == 250, r
        c.quit()
    [m] = rec.wait_messages(1)
    head = header_block(m.content)
    ars = [re.sub(r"\s+", " ", x) for x in
           re.findall(r"^Authentication-Results: ([^\r\n]*(?:\r\n[ \t][^\r\n]*)*)", head, re.M)]
    assert any(re.match(r"gate\.example\.test; spf=pass smtp\.mailfrom=someone@sign\.example\.test", a)
               for a in ars), ars
    assert any(re.match(r"verify\.example\.test; dkim=pass ", a) for a in ars), ars
    assert any(re.match(r"gate\.example\.test; dmarc=pass \(p=reject dis=none\) header\.from=sign\.example\.test", a)
               for a in ars), ars


# ---------------------------------------------------------------- configuration

def config_check(smtpgate_binary, workdir, recorder, name, sections):
    import os
    from gate import render_config, run_config_test
    (workdir / "q").mkdir(exist_ok=True)
    settings = {"quarantine_dir": str(workdir / "q"), "control_socket": ""}
    if os.geteuid() == 0:
        settings["allow_root"] = True
    text = render_config(["127.0.0.1:1"], [recorder.address], workdir, settings,
                         "\n".join(sections) + "\n")
    conf = workdir / name
    conf.write_text(text)
    lines = text.split("\n")
    at = {s.split()[1]: lines.index(s) + 1 for s in sections}
    r = run_config_test(smtpgate_binary, conf)
    return r, r.stdout + r.stderr, conf, at


def test_config_mistakes_name_the_line(smtpgate_binary, workdir, recorder):
    so = milter_so(smtpgate_binary)
    r, out, conf, at = config_check(smtpgate_binary, workdir, recorder, "values.conf", [
        f'plugin badhost {{ path = "{so}" socket = "inet:milter.example.com:8891" }}',
        f'plugin badport {{ path = "{so}" socket = "inet:127.0.0.1:70000" }}',
        f'plugin badact {{ path = "{so}" socket = "inet:127.0.0.1:1" default_action = "bounce" }}',
        f'plugin badproto {{ path = "{so}" socket = "inet:127.0.0.1:1" protocol = 7 }}',
    ])
    assert r.returncode == 1, out
    assert (f"{conf}:{at['badhost']}: plugin badhost: 'socket' is \"inet:milter.example.com:8891\": "
            f"the host must be a numeric address or localhost") in out, out
    assert (f"{conf}:{at['badport']}: plugin badport: 'socket' is \"inet:127.0.0.1:70000\": "
            f"expected a port from 1 to 65535 after the last ':'") in out, out
    assert (f"{conf}:{at['badact']}: plugin badact: 'default_action' is \"bounce\": "
            f"must be accept, reject, tempfail or quarantine") in out, out
    assert f"{conf}:{at['badproto']}: plugin badproto: 'protocol' is 7; it must be from 2 to 6" in out, out
    # what only init sees: a missing socket
    r, out, conf, at = config_check(smtpgate_binary, workdir, recorder, "init.conf", [
        f'plugin nosock {{ path = "{so}" }}'])
    assert r.returncode == 1, out
    assert (f"{conf}:{at['nosock']}: plugin nosock: socket: a milter plugin needs its milter's "
            f"socket") in out, out
    # a wait the section's own timeout would cut: warned, and the configuration stands
    r, out, conf, at = config_check(smtpgate_binary, workdir, recorder, "warn.conf", [
        f'plugin slow {{ path = "{so}" socket = "unix:/run/x.sock" content_timeout = 300 }}'])
    assert r.returncode == 0, out
    assert (f"{conf}:{at['slow']}: plugin slow: content_timeout: warning: 300s is not below "
            f"the section's timeout (30s)") in out, out


def test_a_later_milter_sees_the_fields_an_earlier_one_added(gate_factory, recorder,
                                                            smtpgate_binary, scripted, raw):
    raw.reset()
    so = milter_so(smtpgate_binary)
    extra = (plugin_section("first", so, socket=scripted, content_timeout=5) + "\n"
             + plugin_section("second", so, socket=raw.address, content_timeout=5))
    g = gate_factory([recorder.address], extra=extra)
    recorder.wait_idle()
    with g.connect() as c:
        c.ehlo("client.example.test")
        assert codes(c.mail_transaction("a@example.test", ["b@example.test"],
                                        simple_message("edits", "body\r\n")))[-1] == 250
        c.quit()
    recorder.wait_messages(1)
    names = [d.split(b"\0")[0].decode() for _, cmd, d in raw.packets if cmd == b"L"]
    # the field inserted at the top first, the received ones, then those appended
    assert names == ["X-Inserted", "From", "To", "Subject", "Message-ID", "X-Scripted",
                     "X-Added"], names


def test_milter_plugin_inside_smtpgate_milter(gate_factory, recorder, smtpgate_binary, workdir,
                                              scripted):
    """smtpgate -> smtpgate-milter -> the scripted milter: the plugin on a loop that
    ends with each MTA connection (nothing may stay on it; a connection kept for
    reuse is on no loop), edits passed on through both hops, a clean exit."""
    binary = find_milter_binary()
    if binary is None:
        pytest.skip("smtpgate-milter not built")
    so = milter_so(smtpgate_binary)
    inner = SgMilter(binary, workdir, free_port(),
                     plugin_section("scripted", so, socket=scripted, content_timeout=5,
                                    timeout=10),
                     name="relay-milter").start()
    try:
        g = start_gate(gate_factory, recorder, smtpgate_binary, f"inet:127.0.0.1:{inner.port}",
                       timeout=20, content_timeout=15)
        for _ in range(2):
            with g.connect() as c:
                c.ehlo("client.example.test")
                r = c.mail_transaction("mailreject@example.test", ["b@example.test"],
                                       simple_message("x"))
                assert r[0].code == 553 and r[0].lines == ["5.7.1 Sender refused by milter"]
                r = c.mail_transaction("a@example.test", ["b@example.test"],
                                       simple_message("edits", extra_headers="X-Change: old\r\n"))
                assert r[-1].code == 250
                c.quit()
        msgs = recorder.wait_messages(2)
        for m in msgs:
            head = header_block(m.content)
            assert m.mail_from == "new-sender@example.test"
            assert head.split("\r\n")[0] == "X-Inserted: at the top", head
            assert "X-Change: changed by milter" in head
            assert m.content.endswith(b"replaced body line 1\r\nreplaced body line 2\r\n")
        # The MTA side first, as an admin stops them: a milter connection the
        # outer smtpgate still holds (kept for its next session) would have
        # smtpgate-milter wait out its shutdown_grace for it.
        assert g.stop() == 0
    finally:
        inner.stop()
    inner.assert_clean_exit()


def test_configured_actions_and_macro_lists(gate_factory, recorder, smtpgate_binary, raw):
    import struct
    raw.reset("continue", version=4, actions=0x1)  # a milter answers at most the offer
    g = start_gate(gate_factory, recorder, smtpgate_binary, raw.address,
                   actions=["add_header", "del_rcpt"], protocol=4,
                   mail_macros="{mail_addr} i", rcpt_macros="", connect_macros="j")
    assert one_message(g)[-1].code == 250
    recorder.wait_messages(1)
    pk = raw.packets
    offer = next(d for _, cmd, d in pk if cmd == b"O")
    assert struct.unpack("!III", offer) == (4, 0x01 | 0x08, 0x1FF7FF)
    macros = {d[:1]: d[1:] for _, cmd, d in pk if cmd == b"D"}
    tx = g.wait_log(r"(\w+): disconnect").group(1)
    assert macros[b"C"] == b"j\0smtpgate.example.test\0"
    assert macros[b"M"] == b"{mail_addr}\0a@example.test\0i\0" + f"{tx}.1".encode() + b"\0"
    assert b"R" not in macros, "an empty list sends no macros"
