"""Envelope addresses: smtpgate accepts what the Postfix behind it accepts.

Postfix reads MAIL FROM and RCPT TO leniently by default
(strict_rfc821_envelopes = no): no brackets, blanks after the colon, RFC 5322
comments, a phrase before <address>, source routes, long quoted local parts.
Each form aiosmtpd's tests call valid (envelope_forms.py) is sent to the real
Postfix directly and then through smtpgate; the reply class must be the same.
Through smtpgate the upstream must get only the canonical <address>, and with
strict_envelopes = yes smtpgate refuses as RFC 5321 says (501), as it did
before the lenient reading existed.
"""

from __future__ import annotations

import re

import pytest

from envelope_forms import VALID_FORMS
from helpers import host_port
from netutil import LOOPBACK
from smtpclient import SMTPConn

# The upstream sees each form as this path.  None: Postfix refuses it, and so
# does smtpgate - a bare IPv4 address is no domain, "[IPv6::1]" no IPv6
# address, the blank ends "anne@machine(comment)." (Postfix: "example" is an
# unknown option), and two words of a local part need a dot between them.
CANONICAL: dict[str, str | None] = {
    "anne@example.com": "anne@example.com",
    "<anne@example.com>": "anne@example.com",
    " anne@example.com": "anne@example.com",
    " <anne@example.com>": "anne@example.com",
    "  anne@example.com": "anne@example.com",
    "  <anne@example.com>": "anne@example.com",
    "anne.arthur@example.com": "anne.arthur@example.com",
    "anne+promo@example.com": "anne+promo@example.com",
    "anne-arthur@example.com": "anne-arthur@example.com",
    "anne_arthur@example.com": "anne_arthur@example.com",
    "_@example.com": "_@example.com",
    "anne@127.0.0.1": None,
    "anne@[127.0.0.1]": "anne@[127.0.0.1]",
    "anne@[IPv6:2001:db8::1]": "anne@[IPv6:2001:db8::1]",
    "anne@[IPv6::1]": None,
    "anne(comment)@example.com": "anne@example.com",
    "(comment)anne@example.com": "anne@example.com",
    "anne@example.com(comment)": "anne@example.com",
    "anne@machine(comment).  example": None,
    "<@example.org:anne@example.com>": "anne@example.com",
    "<@example.net,@example.org:anne@example.com>": "anne@example.com",
    "anne@mail": "anne@mail",
    '""@example.com': '""@example.com',
    '<""@example.com>': '""@example.com',
    '" "@example.com': '" "@example.com',
    '"anne..arthur"@example.com': '"anne..arthur"@example.com',
    "mailhost!anne@example.com": "mailhost!anne@example.com",
    "anne%example.org@example.com": "anne%example.org@example.com",
    'much."more\\ unusual"@example.com': '"much.more unusual"@example.com',
    'very."(),:;<>[]".VERY."very@\\ "very.unusual@strange.example.com': None,
    "Fred\\ Bloggs@example.com": '"Fred Bloggs"@example.com',
    "Joe.\\\\Blow@example.com": '"Joe.\\\\Blow"@example.com',
    '"Abc@def"@example.com': '"Abc@def"@example.com',
    '"Fred Bloggs"@example.com': '"Fred Bloggs"@example.com',
    "customer/department=shipping@example.com": "customer/department=shipping@example.com",
    "$A12345@example.com": "$A12345@example.com",
    "!def!xyz%abc@example.com": "!def!xyz%abc@example.com",
    "a" * 65 + "@example.com": "a" * 65 + "@example.com",
    "b" * 488 + "@example.com": "b" * 488 + "@example.com",
    "c" * 500: "c" * 500,
}
assert set(CANONICAL) == set(VALID_FORMS)

# What RFC 5321 itself allows, which strict_envelopes = yes still takes.
STRICT_OK = frozenset({"<anne@example.com>", " <anne@example.com>",
                       "<@example.org:anne@example.com>",
                       "<@example.net,@example.org:anne@example.com>", '<""@example.com>'})

FORM_IDS = [f"form{i:02d}" for i in range(len(VALID_FORMS))]
SENDER = "MAIL FROM:<s@example.test>"


def _replies(conn: SMTPConn, form: str) -> tuple[int, int]:
    """The MAIL reply for the form as sender and the RCPT reply for it as recipient."""
    conn.ehlo()
    mail = conn.cmd(f"MAIL FROM:{form}").code
    conn.cmd("RSET")
    assert conn.cmd(SENDER).code == 250
    rcpt = conn.cmd(f"RCPT TO:{form}").code
    conn.cmd("RSET")
    return mail, rcpt


@pytest.fixture(scope="module")
def direct_replies(postfix) -> dict[str, tuple[int, int]]:
    """Postfix's own answer to every form, as a client in mynetworks; a session per
    form, so that Postfix's error counting never slows or ends one."""
    out = {}
    for form in VALID_FORMS:
        with SMTPConn(*host_port(postfix.address)) as direct:
            out[form] = _replies(direct, form)
            direct.quit()
    return out


def test_postfix_accepts_the_forms(direct_replies):
    """Postfix by default takes the forms smtpgate must take as well, and refuses
    the four CANONICAL says it does."""
    refused = {f for f, (m, r) in direct_replies.items() if m // 100 != 2 or r // 100 != 2}
    assert refused == {f for f, c in CANONICAL.items() if c is None}, direct_replies


@pytest.mark.parametrize("form", VALID_FORMS, ids=FORM_IDS)
def test_same_acceptance_as_postfix(form, direct_replies, postfix, gate_factory):
    """The same reply class through smtpgate (lenient by default) as from Postfix itself."""
    gate = gate_factory([postfix.address])
    with gate.connect(source=LOOPBACK) as c:
        via = _replies(c, form)
        c.quit()
    direct = direct_replies[form]
    assert [v // 100 for v in via] == [d // 100 for d in direct], (form, via, direct)


@pytest.mark.parametrize("form", VALID_FORMS, ids=FORM_IDS)
def test_upstream_gets_the_canonical_path(form, recorder_factory, gate_factory):
    """What reaches the upstream is "FROM:<canonical>" / "TO:<canonical>", nothing else."""
    rec = recorder_factory(command_size_limit=2048)
    gate = gate_factory([rec.address])
    rec.wait_idle()
    with gate.connect() as c:
        mail, rcpt = _replies(c, form)
        c.quit()
    rec.wait_closed_all()
    sent = [(v, a) for conn in rec.connections for v, a in conn.commands if v in ("MAIL", "RCPT")]
    want = CANONICAL[form]
    if want is None:
        assert mail // 100 == 5 and rcpt // 100 == 5, (mail, rcpt)
        assert sent == [("MAIL", "FROM:<s@example.test>")], sent
        return
    assert (mail, rcpt) == (250, 250), (form, mail, rcpt)
    assert sent == [("MAIL", f"FROM:<{want}>"), ("MAIL", "FROM:<s@example.test>"),
                    ("RCPT", f"TO:<{want}>")], sent


@pytest.mark.parametrize("form", VALID_FORMS, ids=FORM_IDS)
def test_strict_envelopes_keeps_rfc5321(form, direct_replies, postfix, gate_factory):
    """strict_envelopes = yes: 501 for every form RFC 5321 does not allow, Postfix's
    own answer for the others."""
    gate = gate_factory([postfix.address], strict_envelopes="yes")
    with gate.connect(source=LOOPBACK) as c:
        via = _replies(c, form)
        c.quit()
    if form in STRICT_OK:
        assert [v // 100 for v in via] == [d // 100 for d in direct_replies[form]], via
    else:
        assert via == (501, 501), (form, via)


# Senders whose canonical form needs quoting or escaping, and some that would
# read differently if a quote or bracket were lost on the way.
TRICKY_SENDERS = (
    "Fred\\ Bloggs@example.test",
    'much."more\\ unusual"@example.test',
    '"a>b SIZE=1"@example.test',
    '"<x@y> RCPT TO:<z@w>"@example.test',
    "Anne<anne(comment)@example.test>",
    '(c)"Abc@def"@example.test',
    '"x\\"y\\\\"@example.test',
)


def _sender_as_postfix_read_it(postfix, conn: SMTPConn, sender: str, marker: str) -> str:
    """Send one message; Postfix's own record of its sender (qmgr's from=<...>)."""
    mark = postfix.log_mark()
    conn.ehlo()
    assert conn.cmd(f"MAIL FROM:{sender}").code == 250, sender
    assert conn.cmd("RCPT TO:<user@example.test>").code == 250
    assert conn.cmd("DATA").code == 354
    conn.send(f"Subject: {marker}\r\n\r\nbody\r\n.\r\n".encode())
    final = conn.read_reply()
    assert final.code == 250, str(final)
    qid = final.text.rsplit(" ", 1)[-1]
    m = postfix.wait_log(rf"{re.escape(qid)}: from=<(.*)>, size=", mark)
    return m.group(1)


@pytest.mark.parametrize("sender", TRICKY_SENDERS, ids=[f"sender{i}" for i in range(len(TRICKY_SENDERS))])
def test_postfix_reads_the_same_sender(sender, postfix, gate_factory):
    """No smuggling through the rewrite: Postfix records the very sender through
    smtpgate that it records when the client talks to it directly."""
    with SMTPConn(*host_port(postfix.address)) as direct:
        want = _sender_as_postfix_read_it(postfix, direct, sender, "tricky-direct")
        direct.quit()
    gate = gate_factory([postfix.address])
    with gate.connect(source=LOOPBACK) as c:
        got = _sender_as_postfix_read_it(postfix, c, sender, "tricky-gate")
        c.quit()
    assert got == want, (sender, got, want)
