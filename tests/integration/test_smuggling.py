"""SMTP smuggling: no byte sequence may end a message for the upstream but not for smtpgate.

Rule 5.  Each published end-of-data variant (`\\n.\\n`, `\\r.\\r`, `\\n.\\r\\n`,
`\\r\\n.\\n`, `\\r\\n.\\r`, `\\r\\n.\\r\\r\\n`, NUL next to the dot...) is put in a
message, followed by a complete second transaction ("MAIL FROM / RCPT TO /
DATA / smuggled message") and then the real CRLF.CRLF.

The upstreams are lenient on purpose, so that these tests fail when a proxy
forwards such bytes unchanged:

* the private Postfix with its defaults (smtpd_forbid_bare_newline = no, and
  smtpgate in $mynetworks, which the exclusions default exempts anyway): it
  ends DATA at a "." line ended by a bare LF;
* the recorder in lenient_eod mode: it ends DATA at a "." line under any of
  CR, LF or CRLF and ignores NULs - the sloppiest receivers of the research.

The sanity tests at the top send the payloads straight to those upstreams
(no smtpgate) and observe the second, smuggled message appear: proof that the
detectors detect.  Through smtpgate, with bare_newline = reject the client
gets 554 5.6.0 and nothing reaches the upstream; with bare_newline =
normalize the message is delivered as ONE message whose body contains the
would-be commands as text.  NUL is refused in both modes.

Counting at Postfix uses smtpd's own "disconnect from ... mail=N data=N"
line, written when the upstream session ends: no guessing about delivery
timing.
"""

from __future__ import annotations

import pytest

from helpers import assert_reply, wait_sessions_logged
from netutil import LOOPBACK
from recorder import Script
from smtpclient import SMTPConn

SMUGGLED_FROM = "smuggled@evil.test"
VICTIM = "victim@example.test"

SEQUENCES = {
    "lf-dot-lf": b"\n.\n",
    "cr-dot-cr": b"\r.\r",
    "lf-dot-crlf": b"\n.\r\n",
    "crlf-dot-lf": b"\r\n.\n",
    "crlf-dot-cr": b"\r\n.\r",
    "crlf-dot-cr-crlf": b"\r\n.\r\r\n",
    "crlf-dot-nul-crlf": b"\r\n.\x00\r\n",
    "crlf-nul-dot-crlf": b"\r\n\x00.\r\n",
    "lf-nul-dot-lf": b"\n\x00.\n",
}
HAS_NUL = {k for k, v in SEQUENCES.items() if b"\x00" in v}
# The variants Postfix 3.7 with default settings takes as end of data (found by
# the sanity test below; the lenient recorder takes all of them).
POSTFIX_ENDS_AT = ["lf-dot-lf", "lf-dot-crlf", "crlf-dot-lf", "crlf-dot-cr-crlf"]


def payload(seq: bytes, tag: str) -> bytes:
    """Message text + smuggling sequence + a whole second transaction + the real end."""
    legit = (f"From: legit@example.test\r\nTo: {VICTIM}\r\nSubject: legit {tag}\r\n\r\n"
             f"legit body {tag}").encode()
    smuggled = (f"MAIL FROM:<{SMUGGLED_FROM}>\r\nRCPT TO:<{VICTIM}>\r\nDATA\r\n"
                f"From: {SMUGGLED_FROM}\r\nTo: {VICTIM}\r\nSubject: SMUGGLED {tag}\r\n\r\n"
                f"smuggled body {tag}\r\n").encode()
    return legit + seq + smuggled + b".\r\n"


def send_smuggling(host: str, port: int, seq: bytes, tag: str) -> list:
    """One session: MAIL, RCPT, DATA, the payload and QUIT in one write; all replies
    after the 354 until the server closes."""
    with SMTPConn(host, port, timeout=30) as c:
        c.ehlo("smuggler.example.test")
        for line in ("MAIL FROM:<legit@example.test>", f"RCPT TO:<{VICTIM}>"):
            r = c.cmd(line)
            assert r.code == 250, f"{line}: {r}"
        r = c.cmd("DATA")
        assert r.code == 354, str(r)
        c.send(payload(seq, tag) + b"QUIT\r\n")
        return c.read_until_closed()


def send_bdat_smuggling(host: str, port: int, seq: bytes, tag: str) -> list:
    """The same payload (without its final dot) as one BDAT LAST chunk."""
    body = payload(seq, tag)[:-3]
    with SMTPConn(host, port, timeout=30) as c:
        caps = c.ehlo("smuggler.example.test").keywords()
        if "CHUNKING" not in caps:
            pytest.skip("no CHUNKING offered by smtpgate here")
        assert c.cmd("MAIL FROM:<legit@example.test>").code == 250
        assert c.cmd(f"RCPT TO:<{VICTIM}>").code == 250
        c.send(b"BDAT %d LAST\r\n" % len(body) + body + b"QUIT\r\n")
        return c.read_until_closed()


class Outcome:
    def __init__(self, mail_commands: int, messages: int, bodies: list[bytes]) -> None:
        self.mail_commands = mail_commands
        self.messages = messages
        self.bodies = bodies


class PostfixView:
    """What reached the private Postfix since begin()."""

    kind = "postfix"

    def __init__(self, pf) -> None:
        self.pf = pf
        self.address = pf.address

    def begin(self) -> None:
        self.mark = self.pf.log_mark()

    def outcome(self, tag: str, expect_session: bool) -> Outcome:
        if expect_session:
            ds = self.pf.wait_sessions_closed(self.mark)
        else:
            ds = self.pf.disconnects_since(self.mark)
            c, d = self.pf.sessions_since(self.mark)
            if c != d:
                ds = self.pf.wait_sessions_closed(self.mark)
        mails = sum(d.count("mail") for d in ds)
        msgs = sum(d.count("data") + d.count("bdat") for d in ds)
        bodies = self.pf.wait_delivered(f"legit body {tag}".encode(), 1) if msgs else []
        if msgs > 1:
            bodies += self.pf.wait_delivered(f"SMUGGLED {tag}".encode(), 1)
        return Outcome(mails, msgs, bodies)


class RecorderView:
    """What reached the lenient recorder since begin()."""

    kind = "lenient-recorder"

    def __init__(self, rec) -> None:
        self.rec = rec
        self.address = rec.address

    def begin(self) -> None:
        self.rec.wait_idle()
        self.first_msg = len(self.rec.messages)
        self.first_conn = len(self.rec.connections)

    def outcome(self, tag: str, expect_session: bool) -> Outcome:
        self.rec.wait_idle()
        msgs = self.rec.messages[self.first_msg:]
        mails = sum(c.verbs.count("MAIL") for c in self.rec.connections[self.first_conn:])
        return Outcome(mails, len(msgs), [m.content for m in msgs])


@pytest.fixture(params=["postfix", "lenient-recorder"])
def lenient_upstream(request, recorder_factory):
    if request.param == "postfix":
        return PostfixView(request.getfixturevalue("postfix"))
    caps = Script().caps | {"CHUNKING"}
    return RecorderView(recorder_factory(lenient_eod=True, caps=caps))


def _host_port(address: str) -> tuple[str, int]:
    host, _, port = address.rpartition(":")
    return host, int(port)


# ---- the detectors detect (no smtpgate) ----

@pytest.mark.parametrize("name", POSTFIX_ENDS_AT)
def test_sanity_postfix_is_smugglable_directly(postfix, name):
    """Sent straight to the lenient Postfix, the sequence ends the first message and the
    smuggled second transaction is accepted: a second message appears."""
    view = PostfixView(postfix)
    view.begin()
    tag = f"direct-postfix-{name}"
    replies = send_smuggling(*_host_port(postfix.address), SEQUENCES[name], tag)
    got = view.outcome(tag, expect_session=True)
    assert got.mail_commands == 2 and got.messages == 2, [str(r) for r in replies]
    assert any(f"SMUGGLED {tag}".encode() in b for b in got.bodies)


@pytest.mark.parametrize("name", list(SEQUENCES))
def test_sanity_lenient_recorder_is_smugglable_directly(recorder_factory, name):
    """Sent straight to the lenient recorder, every variant smuggles a second message."""
    rec = recorder_factory(lenient_eod=True)
    tag = f"direct-recorder-{name}"
    send_smuggling(LOOPBACK, rec.port, SEQUENCES[name], tag)
    msgs = rec.wait_messages(2)
    assert len(msgs) == 2 and msgs[1].mail_from == SMUGGLED_FROM


@pytest.mark.parametrize("kind", ["postfix", "lenient-recorder"])
def test_sanity_clean_message_is_one_message(postfix, recorder_factory, kind):
    """Control: with only CRLF line ends, each lenient upstream sees exactly one message,
    so the counting above is not fooled by the payload's shape."""
    view = PostfixView(postfix) if kind == "postfix" else RecorderView(recorder_factory(lenient_eod=True))
    view.begin()
    tag = f"clean-{kind}"
    replies = send_smuggling(*_host_port(view.address), b"\r\n", tag)
    assert [r.code for r in replies] == [250, 221], [str(r) for r in replies]
    got = view.outcome(tag, expect_session=True)
    assert got.messages == 1 and got.mail_commands == 1


# ---- through smtpgate ----

@pytest.mark.parametrize("name", list(SEQUENCES))
def test_reject_mode_refuses_and_forwards_nothing(lenient_upstream, gate_factory, name):
    """bare_newline=reject: the client gets 554 5.6.0 for the whole message (and no reply
    to any smuggled command), and no message reaches the lenient upstream."""
    gate = gate_factory([lenient_upstream.address], bare_newline="reject")
    lenient_upstream.begin()
    mark = gate.log_mark()
    tag = f"reject-{lenient_upstream.kind}-{name}"
    replies = send_smuggling(LOOPBACK, gate.port, SEQUENCES[name], tag)
    assert replies, "no reply after the data"
    assert_reply(replies[0], 554, "5.6.0")
    assert [r.code for r in replies[1:]] in ([], [221]), [str(r) for r in replies]
    wait_sessions_logged(gate, mark)
    got = lenient_upstream.outcome(tag, expect_session=False)
    assert got.messages == 0, f"{got.messages} message(s) reached the upstream"
    assert got.mail_commands <= 1, "a smuggled MAIL reached the upstream"


@pytest.mark.parametrize("name", list(SEQUENCES))
def test_normalize_mode_delivers_one_message(lenient_upstream, gate_factory, name):
    """bare_newline=normalize: bare CR/LF become CRLF inside the message, which is
    delivered as ONE message with the would-be commands as body text.  NUL is refused
    (554 5.6.0) in this mode too."""
    gate = gate_factory([lenient_upstream.address], bare_newline="normalize")
    lenient_upstream.begin()
    mark = gate.log_mark()
    tag = f"normalize-{lenient_upstream.kind}-{name}"
    replies = send_smuggling(LOOPBACK, gate.port, SEQUENCES[name], tag)
    wait_sessions_logged(gate, mark)
    got = lenient_upstream.outcome(tag, expect_session=name not in HAS_NUL)
    assert got.mail_commands <= 1, "a smuggled MAIL reached the upstream"
    if name in HAS_NUL:
        assert_reply(replies[0], 554, "5.6.0")
        assert got.messages == 0
        return
    assert [r.code for r in replies] == [250, 221], [str(r) for r in replies]
    assert got.messages == 1, f"{got.messages} messages at the upstream"
    [body] = got.bodies
    assert f"MAIL FROM:<{SMUGGLED_FROM}>".encode() in body
    assert f"SMUGGLED {tag}".encode() in body


@pytest.mark.parametrize("name", ["crlf-dot-crlf"] + list(SEQUENCES))
def test_bdat_content_cannot_smuggle(lenient_upstream, gate_factory, name):
    """The same payloads inside a BDAT chunk (where CR, LF and "." mean nothing): either
    refused with 554 5.6.0 or delivered as one message; never a second transaction,
    even if smtpgate turns BDAT into DATA for the upstream."""
    seq = b"\r\n.\r\n" if name == "crlf-dot-crlf" else SEQUENCES[name]
    gate = gate_factory([lenient_upstream.address])
    lenient_upstream.begin()
    mark = gate.log_mark()
    tag = f"bdat-{lenient_upstream.kind}-{name}"
    replies = send_bdat_smuggling(LOOPBACK, gate.port, seq, tag)
    wait_sessions_logged(gate, mark)
    assert replies and replies[0].code in (250, 554), [str(r) for r in replies]
    got = lenient_upstream.outcome(tag, expect_session=replies[0].code == 250)
    assert got.mail_commands <= 1, "a smuggled MAIL reached the upstream"
    assert got.messages == (1 if replies[0].code == 250 else 0)
    if replies[0].code == 554:
        assert replies[0].enhanced == "5.6.0", str(replies[0])
